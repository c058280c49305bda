"""Data quality of one feature: nulls, type changes, unknown categories, out-of-range values.

Each observation of a feature gets a set of issue flags. Over the last ``window`` observations,
each issue's rate is compared with its rate during the reference period (some features are null
by design): a check fires when the rate exceeds the baseline by ``rate_threshold``, with at least
``min_samples`` observations, and resolves when the excess falls below half of that.

Examples
--------
>>> counter = QualityCounter(window=100, min_samples=50, rate_threshold=0.1)
>>> counter.set_baseline({"nulls": 0.02})
>>> flips = counter.update([NULLS if i % 4 == 0 else 0 for i in range(100)])
>>> flips[0][1], counter.firing("nulls"), round(counter.rate("nulls"), 2)
('nulls', True, 0.25)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any, Final

from detectors.base import StateError

__all__ = [
    "CHECKS",
    "NULLS",
    "OUT_OF_RANGE",
    "TYPE_CHANGE",
    "UNKNOWN_CATEGORY",
    "QualityCounter",
]

NULLS: Final = 1
TYPE_CHANGE: Final = 2
UNKNOWN_CATEGORY: Final = 4
OUT_OF_RANGE: Final = 8
#: Check name -> flag bit. The names are the ``signal`` of data-quality alerts.
CHECKS: Final = {
    "nulls": NULLS,
    "type_change": TYPE_CHANGE,
    "unknown_category": UNKNOWN_CATEGORY,
    "out_of_range": OUT_OF_RANGE,
}


class QualityCounter:
    """Rolling issue rates of one feature, against their reference baseline.

    Parameters
    ----------
    window
        Observations the rates are taken over.
    min_samples
        Fewest observations before a check may fire.
    rate_threshold
        Excess rate over the baseline that fires a check.
    """

    def __init__(self, window: int = 1000, min_samples: int = 200, rate_threshold: float = 0.05):
        if window < 1 or not 1 <= min_samples <= window:
            raise ValueError("need window >= 1 and 1 <= min_samples <= window")
        if not 0 < rate_threshold < 1:
            raise ValueError(f"rate_threshold must be in (0, 1), got {rate_threshold}")
        self.window = window
        self.min_samples = min_samples
        self.rate_threshold = rate_threshold
        self._flags: deque[int] = deque()
        self._counts = dict.fromkeys(CHECKS, 0)
        self._totals = dict.fromkeys(CHECKS, 0)
        self._baseline = dict.fromkeys(CHECKS, 0.0)
        self._firing = dict.fromkeys(CHECKS, False)

    def set_baseline(self, rates: dict[str, float]) -> None:
        for check, rate in rates.items():
            self._baseline[check] = float(rate)

    def rate(self, check: str) -> float:
        return self._counts[check] / len(self._flags) if self._flags else 0.0

    def threshold(self, check: str) -> float:
        """The rate at which ``check`` fires."""
        return self._baseline[check] + self.rate_threshold

    def firing(self, check: str) -> bool:
        return self._firing[check]

    def totals(self) -> dict[str, int]:
        """Issues counted since the start, per check."""
        return dict(self._totals)

    def update(self, flags: Iterable[int]) -> list[tuple[int, str, bool]]:
        """Add observations' flags; return ``(index, check, firing)`` for each state change."""
        out: list[tuple[int, str, bool]] = []
        window, counts, totals = self._flags, self._counts, self._totals
        for i, flag in enumerate(flags):
            window.append(flag)
            if flag:
                for check, bit in CHECKS.items():
                    if flag & bit:
                        counts[check] += 1
                        totals[check] += 1
            if len(window) > self.window:
                old = window.popleft()
                if old:
                    for check, bit in CHECKS.items():
                        if old & bit:
                            counts[check] -= 1
            if flag or self._any_firing():
                self._evaluate(i, out)
        return out

    def _any_firing(self) -> bool:
        return any(self._firing.values())

    def _evaluate(self, index: int, out: list[tuple[int, str, bool]]) -> None:
        n = len(self._flags)
        if n < self.min_samples:
            return
        for check in CHECKS:
            excess = self._counts[check] / n - self._baseline[check]
            if not self._firing[check] and excess > self.rate_threshold:
                self._firing[check] = True
                out.append((index, check, True))
            elif self._firing[check] and excess < self.rate_threshold / 2:
                self._firing[check] = False
                out.append((index, check, False))

    def to_state(self) -> dict[str, Any]:
        return {
            "flags": list(self._flags),
            "totals": self._totals,
            "baseline": self._baseline,
            "firing": self._firing,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        flags = [int(f) for f in state["flags"]]
        if len(flags) > self.window or any(not 0 <= f < 16 for f in flags):
            raise StateError("quality flags out of bounds")
        self._flags = deque(flags)
        self._counts = {c: sum(1 for f in flags if f & b) for c, b in CHECKS.items()}
        self._totals = {c: int(state["totals"][c]) for c in CHECKS}
        self._baseline = {c: float(state["baseline"][c]) for c in CHECKS}
        self._firing = {c: bool(state["firing"][c]) for c in CHECKS}
