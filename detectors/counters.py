"""Totals a :class:`~detectors.monitor.Monitor` exposes as Prometheus counters."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Counters"]


@dataclass
class Counters:
    """Totals a :class:`Monitor` exposes as Prometheus counters; shared by all its models."""

    events: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)
    commands: dict[str, int] = field(default_factory=dict)
    join: dict[str, int] = field(default_factory=dict)
    quality: dict[str, int] = field(default_factory=dict)
    #: Models reset, by cause: ``internal_error`` when the core raised while updating one.
    resets: dict[str, int] = field(default_factory=dict)
    #: Events a model's sample left out (``sample`` below 1), by (model_id, kind): counted
    #: here instead of applied (:mod:`detectors.sampling`). A model's entries go with it when
    #: it leaves the monitor (:meth:`~detectors.monitor.Monitor.drop_models`).
    sampled: dict[tuple[str, str], int] = field(default_factory=dict)

    def sampled_by_kind(self) -> dict[str, int]:
        """:attr:`sampled` summed over models, by kind."""
        out: dict[str, int] = {}
        for (_, kind), count in self.sampled.items():
            out[kind] = out.get(kind, 0) + count
        return out

    @staticmethod
    def add(table: dict[str, int], key: str, amount: int = 1) -> None:
        table[key] = table.get(key, 0) + amount
