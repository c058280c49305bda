"""Models' state back from the state topic's records: what a worker does when partitions arrive.

The state topic is compacted and keyed by ``model_id``; a record's value is a
:class:`~stream.state.StateCodec` blob holding the model's state and the input positions it
reflects, a tombstone (no value) a model that was reset and must start afresh.
:func:`read_state_topic` reads the records (the one function here that awaits); what they mean
is decided by :func:`latest_states` and :func:`restore_models`, synchronously.

Examples
--------
>>> from detectors.monitor import Monitor
>>> from stream.state import StateCodec
>>> codec, monitor = StateCodec(None), Monitor()
>>> latest = latest_states([(0, b"churn", b"not a state"), (0, b"fraud", None)])
>>> restored = restore_models(latest, codec=codec, monitor=monitor)
>>> restored.models, sorted(restored.rejected)
({}, ['churn'])
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from detectors.base import StateError
from detectors.monitor import Monitor
from stream.state import MAX_STATE_BYTES, StateCodec, StateRejected

__all__ = ["Restored", "latest_states", "read_state_topic", "restore_models"]


@dataclass
class Restored:
    """What was loaded into the core, and what was refused (those models start afresh)."""

    #: model_id -> (input partition number, topic -> first offset its state does not hold).
    models: dict[str, tuple[int, dict[str, int]]] = field(default_factory=dict)
    #: model_id -> why its record was refused.
    rejected: dict[str, str] = field(default_factory=dict)


def latest_states(
    records: Iterable[tuple[int, bytes | None, bytes | None]],
) -> dict[str, tuple[int, bytes | None]]:
    """The last record per model of ``(partition, key, value)`` records in offset order, as
    compaction would leave it (records without a key are not a model's)."""
    latest: dict[str, tuple[int, bytes | None]] = {}
    for partition, key, value in records:
        if key is not None:
            latest[key.decode("utf-8", "replace")] = (partition, value)
    return latest


def restore_models(
    latest: Mapping[str, tuple[int, bytes | None]], *, codec: StateCodec, monitor: Monitor
) -> Restored:
    """Load each model's latest state record into ``monitor``; a record that does not decode,
    verify or load is refused with the reason, and its model starts afresh."""
    restored = Restored()
    for model_id, (partition, blob) in latest.items():
        if blob is None:
            continue  # a tombstone
        try:
            record = codec.decode(model_id, blob)
            offsets = {str(t): int(o) for t, o in record["offsets"].items()}
            monitor.load_model_state(model_id, record["state"])
        except (StateRejected, StateError, KeyError, TypeError, ValueError, AttributeError) as exc:
            restored.rejected[model_id] = f"{type(exc).__name__}: {exc}"
            continue
        restored.models[model_id] = (partition, offsets)
    return restored


async def read_state_topic(
    kafka_kwargs: dict[str, Any], topic: str, partitions: Collection[int]
) -> list[tuple[int, bytes | None, bytes | None]]:
    """Every ``(partition, key, value)`` of the state topic's ``partitions``, in offset order,
    read from the beginning to the end they had when the read started (no consumer group)."""
    reader = AIOKafkaConsumer(
        enable_auto_commit=False,
        max_partition_fetch_bytes=MAX_STATE_BYTES + 1024 * 1024,
        fetch_max_bytes=MAX_STATE_BYTES + 1024 * 1024,
        **kafka_kwargs,
    )
    await reader.start()
    out: list[tuple[int, bytes | None, bytes | None]] = []
    try:
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        ends = await reader.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            fetched = await reader.getmany(*remaining, timeout_ms=1000)
            for tp, records in fetched.items():
                out.extend((tp.partition, r.key, r.value) for r in records)
                if await reader.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await reader.stop()
    return out
