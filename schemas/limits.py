"""Bounds on everything parsed from a topic.

Every input record is untrusted: these limits keep one bad producer from exhausting memory, CPU
or Prometheus. Each is a setting (``DRIFTLINE_MAX_*``) with a default that fits real traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["Limits", "ID_PATTERN", "MIN_TIMESTAMP_MS", "MAX_TIMESTAMP_MS"]

#: ``model_id`` and ``model_version``: they become Kafka keys, Prometheus label values and parts
#: of state keys, so they are restricted to a charset that is safe in all three.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+\-]*$"

#: 2000-01-01T00:00:00Z. Anything earlier is almost always epoch *seconds* sent by mistake.
MIN_TIMESTAMP_MS = 946_684_800_000
#: 2200-01-01T00:00:00Z.
MAX_TIMESTAMP_MS = 7_258_118_400_000


@dataclass(frozen=True, slots=True)
class Limits:
    """Size and shape limits applied while decoding input events.

    Parameters
    ----------
    max_message_bytes
        Largest accepted Kafka message value, checked before parsing.
    max_batch_events
        Most events in one message that carries a JSON array of events.
    max_features
        Most entries in ``features``.
    max_classes
        Most entries in a class -> probability ``score``.
    max_tags
        Most entries in a prediction's ``tags`` (request entities: name -> string).
    max_depth
        Deepest nesting of JSON arrays and objects in a message, unknown fields included.
    max_id_length
        Longest ``model_id`` / ``model_version``.
    max_opaque_id_length
        Longest ``prediction_id`` / ``event_id``.
    max_name_length
        Longest feature, class or tag name.
    max_string_length
        Longest string value (a categorical feature, a tag, a string prediction or label).
    min_timestamp_ms, max_timestamp_ms
        Accepted event-time range, epoch milliseconds.

    Examples
    --------
    >>> Limits().max_features
    1000
    >>> Limits(max_features=0)
    Traceback (most recent call last):
    ...
    ValueError: max_features must be a positive integer, got 0
    """

    max_message_bytes: int = 1 << 20
    max_batch_events: int = 10_000
    max_features: int = 1_000
    max_classes: int = 1_000
    max_tags: int = 100
    max_depth: int = 32
    max_id_length: int = 128
    max_opaque_id_length: int = 256
    max_name_length: int = 256
    max_string_length: int = 1_024
    min_timestamp_ms: int = MIN_TIMESTAMP_MS
    max_timestamp_ms: int = MAX_TIMESTAMP_MS

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("timestamp_ms"):
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise ValueError(f"{f.name} must be a non-negative integer, got {value!r}")
            elif not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{f.name} must be a positive integer, got {value!r}")
        if self.min_timestamp_ms >= self.max_timestamp_ms:
            raise ValueError("min_timestamp_ms must be below max_timestamp_ms")
        if self.max_depth < 3:
            # An array of events holding a features object is three levels deep.
            raise ValueError(f"max_depth must be at least 3, got {self.max_depth}")
