"""Which alert: the key under which the alert book tracks one alert of one model.

>>> key = AlertKey.of("concept_drift", "error", version="3")
>>> key.alert, key.feature, key.version, key.saved()
('concept_drift', '', '3', ['concept_drift', 'error', '', '3'])
>>> AlertKey.from_saved(["data_drift", "feature", "age"])
AlertKey(alert='data_drift', signal='feature', feature='age', version=None)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from detectors.base import StateError

__all__ = ["AlertKey"]


class AlertKey(NamedTuple):
    """An alert of one model: its kind (``data_drift``, ...), the signal it watches
    (``feature``, ``prediction``, ``score``, ``error``, a metric, a quality check, ...), the
    feature (empty when none) and the model version (None for alerts of the whole model)."""

    alert: str
    signal: str
    feature: str = ""
    version: str | None = None

    @classmethod
    def of(
        cls, alert: str, signal: str, feature: str | None = None, version: str | None = None
    ) -> AlertKey:
        return cls(alert, signal, feature or "", version)

    def saved(self) -> list[str]:
        """As saved state holds it: three parts, or four with a version."""
        parts = [self.alert, self.signal, self.feature]
        return parts if self.version is None else [*parts, self.version]

    @classmethod
    def from_saved(cls, parts: Sequence[object]) -> AlertKey:
        if not 2 <= len(parts) <= 4:
            raise StateError(f"an alert key has 2 to 4 parts, not {len(parts)}")
        text = [str(part) for part in parts]
        return cls(*text) if len(text) < 4 else cls(text[0], text[1], text[2], text[3])
