"""Turning Kafka records into events, and rejected ones into dead-letter records.

Every input record ends up either as events for the monitoring core or on the dead-letter topic,
with the original bytes and headers that say what was wrong and where it came from::

    driftline-error            "$.model_id: expected a string, got an integer (7)"
    driftline-error-reason     wrong_type            (one of schemas.REASONS)
    driftline-error-path       $.model_id
    driftline-error-cause      the parser's own message   (only when the parser refused it)
    driftline-source-topic     model.predictions
    driftline-source-partition 3
    driftline-source-offset    1234
    driftline-source-index     7                     (only for an element of an array message)

``driftline-error``, ``-reason`` and ``-path`` are driftline's own words, stable across library
versions; ``driftline-error-cause`` is informative only and may change with the parser's version.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas import DecodeError, Event, EventDecoder, EventKind

__all__ = ["DeadLetter", "decode_record", "source_headers", "valid_events"]


@dataclass(slots=True)
class DeadLetter:
    """A record (or one element of an array record) to publish on the dead-letter topic."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    reason: str
    source_topic: str

    @classmethod
    def of(
        cls,
        error: DecodeError,
        *,
        key: bytes | None,
        value: bytes,
        topic: str,
        partition: int,
        offset: int,
        index: int | None = None,
    ) -> DeadLetter:
        headers = [*error.as_headers(), *source_headers(topic, partition, offset)]
        if index is not None:
            headers.append(("driftline-source-index", str(index).encode()))
        return cls(key=key, value=value, headers=headers, reason=error.reason, source_topic=topic)


def source_headers(topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    """Where a dead letter's record came from, as headers (the worker's and act's alike)."""
    return [
        ("driftline-source-topic", topic.encode()),
        ("driftline-source-partition", str(partition).encode()),
        ("driftline-source-offset", str(offset).encode()),
    ]


def decode_record(
    decoder: EventDecoder,
    kind: EventKind,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
) -> tuple[list[Event], list[DeadLetter]]:
    """Decode one Kafka record into events and dead letters; never raises for bad input."""
    if value is None:
        error = DecodeError("invalid_json", "$", "record has no value (null)")
        dead = DeadLetter.of(
            error, key=key, value=b"", topic=topic, partition=partition, offset=offset
        )
        return [], [dead]
    batch = decoder.decode_batch(kind, value)
    dead_letters = [
        DeadLetter.of(
            rejected.error,
            key=key,
            value=rejected.raw,
            topic=topic,
            partition=partition,
            offset=offset,
            index=rejected.index,
        )
        for rejected in batch.rejected
    ]
    return batch.events, dead_letters


def valid_events(
    decoder: EventDecoder, kind: EventKind, value: bytes | None
) -> list[tuple[int | None, Event]]:
    """A record's valid events again, each with its index in an array message (None for a
    single-event message): to find what the core was given, after it gave some back."""
    if value is None:
        return []
    if value[:1] == b"{":
        try:
            return [(None, decoder.decode(kind, value))]
        except DecodeError:
            return []
    batch = decoder.decode_batch(kind, value)
    bad = {rejected.index for rejected in batch.rejected}
    indices = (i for i in range(len(batch.events) + len(bad)) if i not in bad)
    return list(zip(indices, batch.events, strict=False))
