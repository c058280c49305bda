"""Alerts inside the core: which alert (:class:`AlertKey`, under which the alert book tracks
one alert of one model) and what it reports (:class:`Reading`, the pair that decided it).

>>> key = AlertKey.of("concept_drift", "error", version="3")
>>> key.alert, key.feature, key.version, key.saved()
('concept_drift', '', '3', ['concept_drift', 'error', '', '3'])
>>> AlertKey.from_saved(["data_drift", "feature", "age"])
AlertKey(alert='data_drift', signal='feature', feature='age', version=None, segment=())
>>> key = AlertKey.of("segment_degradation", "error_rate", segment=("country", "PT"))
>>> key.saved(), AlertKey.from_saved(key.saved()) == key
(['segment_degradation', 'error_rate', '', '', ['country', 'PT']], True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from detectors.base import StateError

__all__ = ["AlertKey", "Reading"]


class AlertKey(NamedTuple):
    """An alert of one model: its kind (``data_drift``, ...), the signal it watches
    (``feature``, ``prediction``, ``score``, ``error``, a metric, a quality check, ...), the
    feature (empty when none), the model version (None for alerts of the whole model) and the
    segment of its traffic, ``(name, value)`` (empty when none)."""

    alert: str
    signal: str
    feature: str = ""
    version: str | None = None
    segment: tuple[str, str] | tuple[()] = ()

    @classmethod
    def of(
        cls,
        alert: str,
        signal: str,
        feature: str | None = None,
        version: str | None = None,
        segment: tuple[str, str] | tuple[()] = (),
    ) -> AlertKey:
        return cls(alert, signal, feature or "", version, segment)

    def saved(self) -> list[Any]:
        """As saved state holds it: three parts, four with a version, five with a segment (the
        version then ``""`` when there is none)."""
        parts: list[Any] = [self.alert, self.signal, self.feature]
        if self.segment:
            return [*parts, self.version or "", list(self.segment)]
        return parts if self.version is None else [*parts, self.version]

    @classmethod
    def from_saved(cls, parts: Sequence[object]) -> AlertKey:
        if not 2 <= len(parts) <= 5:
            raise StateError(f"an alert key has 2 to 5 parts, not {len(parts)}")
        if len(parts) == 5:
            segment = parts[4]
            if not isinstance(segment, list | tuple) or len(segment) != 2:
                raise StateError("an alert key's segment is [name, value]")
            name, value = (str(part) for part in segment)
            return cls(
                str(parts[0]), str(parts[1]), str(parts[2]), str(parts[3]) or None, (name, value)
            )
        text = [str(part) for part in parts]
        return cls(*text) if len(text) < 4 else cls(text[0], text[1], text[2], text[3])


class _Read(Protocol):
    @property
    def statistic(self) -> float: ...
    @property
    def threshold(self) -> float: ...


class Reading(NamedTuple):
    """The statistic an alert reports and the threshold it was judged against.

    >>> Reading.of(Reading(0.4, 0.25))
    Reading(statistic=0.4, threshold=0.25)
    """

    statistic: float
    threshold: float

    @classmethod
    def of(cls, source: _Read) -> Reading:
        """The pair a detector (or a view of a decision) shows now."""
        return cls(float(source.statistic), float(source.threshold))
