"""Helpers for tests of the live service: run ``driftline worker`` as users run it (a separate
process, configured by environment), produce records, read what comes out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import murmur2

from schemas import Topics
from stream import harness

HOUR = 3_600_000
#: What happens to an input event a worker reads (``driftline_events_total{outcome}``).
OUTCOMES = ("ok", "deadletter", "skipped", "rerouted")


def recent_t0() -> int:
    """Event time an hour ago: scenarios then run in the past, whatever their length."""
    return int(time.time() * 1000) - HOUR


def inputs(topics: Topics) -> list[str]:
    return [topics.predictions, topics.inputs, topics.labels]


def accounted(worker: WorkerProcess, topics: Topics) -> dict[str, float]:
    """Input events read by ``worker``, by outcome, over the three input topics."""
    out = dict.fromkeys(OUTCOMES, 0.0)
    for labels, value in worker.samples("driftline_events_total"):
        if labels.get("topic") in inputs(topics) and labels.get("outcome") in out:
            out[labels["outcome"]] += value
    return out


class WorkerProcess(harness.WorkerProcess):
    """``driftline worker`` as the tests run it: checkpoints every second, stall checks every
    0.2 s (``env`` adds or overrides settings)."""

    def __init__(self, *args: Any, env: dict[str, str] | None = None, **kwargs: Any) -> None:
        settings = {"DRIFTLINE_CHECKPOINT_INTERVAL": "1", "DRIFTLINE_TICK_INTERVAL": "0.2"}
        super().__init__(*args, env={**settings, **(env or {})}, **kwargs)


async def produce(bootstrap: str, records: list[tuple[str, bytes]], topics: Topics) -> int:
    """Produce scenario records, keyed by model_id as the contract asks."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        for kind, payload in records:
            try:
                key = orjson.loads(payload)["model_id"].encode()
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
                key = b"unkeyed"
            await producer.send(getattr(topics, kind), payload, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    return len(records)


async def read_all(bootstrap: str, topic: str, settle: float = 1.0) -> list[Any]:
    """Every record on a topic so far (stops once nothing new arrived for ``settle`` s)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    out: list[Any] = []
    try:
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < settle:
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                out.extend(messages)
                quiet_since = time.monotonic()
    finally:
        await consumer.stop()
    return out


def cloudevents(records: list[Any]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records]


async def produce_fast(
    bootstrap: str, records: Iterable[tuple[Any, ...]], partitions: int = 4
) -> int:
    """Produce ``(topic, key, value)`` or ``(topic, key, value, timestamp_ms)`` records in whole
    batches per partition (Kafka's default partitioner on the key): ~10x faster than one
    ``send`` per record, for big backlogs."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, max_batch_size=1 << 20, max_request_size=4 << 20
    )
    await producer.start()
    batches: dict[tuple[str, int], Any] = {}
    in_flight: list[Any] = []
    count = 0
    try:
        for topic, key, value, *stamp in records:
            timestamp = stamp[0] if stamp else None
            partition = (murmur2(key) & 0x7FFFFFFF) % partitions
            batch = batches.get((topic, partition))
            if batch is None:
                batch = batches[(topic, partition)] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=timestamp) is None:  # full
                in_flight.append(await producer.send_batch(batch, topic, partition=partition))
                batch = batches[(topic, partition)] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=timestamp)
                if len(in_flight) > 32:
                    await asyncio.gather(*in_flight)
                    in_flight.clear()
            count += 1
        for (topic, partition), batch in batches.items():
            if batch.record_count():
                in_flight.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*in_flight)
    finally:
        await producer.stop()
    return count


async def partitions_of(bootstrap: str, names: list[str]) -> list[TopicPartition]:
    """Every partition of the topics ``names`` (each must exist), asked of the cluster."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    parts = [
        TopicPartition(topic["topic"], p["partition"])
        for topic in described
        if topic["error_code"] == 0
        for p in topic["partitions"]
    ]
    assert {tp.topic for tp in parts} == set(names), f"not all of {names} exist"
    return sorted(parts)


async def group_offsets(bootstrap: str, group: str, names: list[str]) -> tuple[int, int]:
    """(offsets committed by ``group``, end offsets) summed over every partition of ``names``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = await partitions_of(bootstrap, names)
        committed = 0
        for tp in parts:
            committed += await consumer.committed(tp) or 0
        ends = await consumer.end_offsets(parts)
        return committed, sum(ends.values())
    finally:
        await consumer.stop()


async def wait_committed(bootstrap: str, group: str, names: list[str], within: float = 60.0) -> int:
    """Until the group committed up to the end of every partition (at most ``within``
    seconds); return the offsets' sum."""
    deadline = time.monotonic() + within
    while True:
        committed, end = await group_offsets(bootstrap, group, names)
        if committed == end:
            return committed
        if time.monotonic() > deadline:
            raise TimeoutError(f"group {group} committed {committed} of {end}")
        await asyncio.sleep(0.5)
