"""Every topic the live service uses, declared once.

Input topics and the state topic must share one partition count (co-partitioning by
``model_id``); driftline creates missing topics with ``DRIFTLINE_PARTITIONS`` partitions and
checks existing input topics at start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stream.settings import Settings
from stream.state import MAX_STATE_BYTES

__all__ = ["DeclaredTopics", "declare_topics"]


@dataclass(frozen=True)
class DeclaredTopics:
    predictions: Any
    inputs: Any
    labels: Any
    alerts: Any
    commands: Any
    deadletter: Any
    state: Any

    def all(self) -> list[Any]:
        return [
            self.predictions,
            self.inputs,
            self.labels,
            self.alerts,
            self.commands,
            self.deadletter,
            self.state,
        ]


def declare_topics(app: Any, settings: Settings) -> DeclaredTopics:
    """Faust topic objects for every topic (raw bytes values: driftline decodes itself)."""

    def topic(name: str, **extra: Any) -> Any:
        return app.topic(
            name,
            value_type=bytes,
            key_type=bytes,
            value_serializer="raw",
            key_serializer="raw",
            partitions=settings.partitions,
            replicas=settings.replication_factor,
            **extra,
        )

    names = settings.topics
    return DeclaredTopics(
        predictions=topic(names.predictions),
        inputs=topic(names.inputs),
        labels=topic(names.labels),
        alerts=topic(names.alerts),
        commands=topic(names.commands),
        deadletter=topic(names.deadletter),
        # Compacted: the latest record per model is its state. Small segments keep the
        # uncompacted tail (read on every restore) short.
        state=topic(
            settings.state_topic_name,
            compacting=True,
            config={
                "max.message.bytes": str(MAX_STATE_BYTES),
                "segment.bytes": str(64 * 1024 * 1024),
                "segment.ms": str(10 * 60 * 1000),
                "min.cleanable.dirty.ratio": "0.1",
            },
        ),
    )
