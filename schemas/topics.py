"""Topic names of the contract. Each is a setting (``DRIFTLINE_TOPIC_*``); these are defaults."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

from schemas.events import EventKind

__all__ = ["Topics", "INPUT_KINDS"]

#: Which event kind each input topic carries, by the field name in :class:`Topics`.
INPUT_KINDS: Final[dict[str, EventKind]] = {
    "predictions": "prediction",
    "inputs": "input",
    "labels": "label",
}


@dataclass(frozen=True, slots=True)
class Topics:
    """Where driftline reads and writes.

    Producers key every input record by ``model_id`` (UTF-8): that co-partitions the three input
    topics so one worker owns all of a model's events and state.

    >>> Topics().kind_of("model.labels")
    'label'
    """

    predictions: str = "model.predictions"
    inputs: str = "model.inputs"
    labels: str = "model.labels"
    alerts: str = "monitor.alerts"
    commands: str = "monitor.commands"
    deadletter: str = "monitor.deadletter"

    def __post_init__(self) -> None:
        names = [getattr(self, f.name) for f in fields(self)]
        if len(set(names)) != len(names):
            raise ValueError(f"topic names must be distinct, got {names}")
        for name in names:
            if not name or len(name) > 249 or not all(c.isalnum() or c in "._-" for c in name):
                raise ValueError(f"{name!r} is not a valid Kafka topic name")

    @property
    def inputs_by_kind(self) -> dict[str, EventKind]:
        """Input topic name -> event kind."""
        return {getattr(self, attr): kind for attr, kind in INPUT_KINDS.items()}

    def kind_of(self, topic: str) -> EventKind:
        """The event kind an input topic carries; ``KeyError`` for any other topic."""
        return self.inputs_by_kind[topic]

    def all(self) -> list[str]:
        return [getattr(self, f.name) for f in fields(self)]
