"""Is one segment of a model's traffic significantly worse than the rest? Decayed error sums per
segment slot, and a two-sample test with a correction for the number of segments tested.

**Averages.** Each labelled outcome of the model adds its error ``e`` (0/1 for a classifier,
the absolute error for regression) with weight ``w``, to its segment slot of every segment
name and to the model's total; weights decay by ``lambda = 1 - 1/window`` per later outcome
(kept exact with one growing scale, rescaled now and then), so every sum holds the recent
outcomes, about ``window`` of the model's. Per slot: ``W = sum w``, ``W2 = sum w^2``,
``E = sum w e`` and ``E2 = sum w e^2``; the rest of the traffic is the total minus the slot.

**Test.** A segment's mean error ``m = E / W`` with Kish's effective sample size
``n = W^2 / W2``, the same for the rest (``m_r``, ``n_r``). The segment is *degraded* when

    z = (m - (1 + min_rise) m_r) / sqrt(v + (1 + min_rise)^2 v_r)  >  z(1 - alpha / k)

where ``k`` is the number of segments the check tests (Bonferroni: 20 segments do not mean
20 times the false alarms) and the variances are those of the means: for a classifier
``p (1 - p) / (n + 2)`` with ``p = (m n + 1) / (n + 2)`` (Agresti-Caffo: one error and one
success added keep them honest at 0 errors); for regression the weighted variance of the
errors times ``W2 / W^2`` (Welch). ``min_rise`` is the smallest rise that matters: a segment
only slightly worse than the rest is not news, however many outcomes show it. A segment is
tested once it and the rest hold ``min_outcomes`` effective outcomes each.

Examples
--------
>>> import random
>>> rng = random.Random(7)
>>> errors = SegmentErrors(names=1, slots=3, window=2000)
>>> for _ in range(20_000):  # slot 2 errs twice as often as the others (20 % vs 10 %)
...     slot = rng.randrange(3)
...     errors.add((slot,), float(rng.random() < (0.2 if slot == 2 else 0.1)))
>>> [round(errors.test(0, slot, min_rise=0.25).z, 1) for slot in (1, 2)]
[-8.0, 7.4]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from detectors.base import StateError
from detectors.saved_state import read_format, stamp

__all__ = ["SegmentErrors", "SegmentTest"]

# The scale outcomes are weighted with grows by 1 / lambda an outcome; past this, every sum is
# divided by it (W2 holds squares: 1e100^2 is still a float).
_RESCALE = 1e100


@dataclass(frozen=True, slots=True)
class SegmentTest:
    """One segment against the rest of the traffic."""

    #: Mean error (error rate, or MAE) of the segment and of the rest.
    error: float
    rest_error: float
    #: Effective outcomes (Kish) of the segment and of the rest.
    outcomes: float
    rest_outcomes: float
    #: (1 + min_rise) x the rest's mean error: what the segment is tested against.
    line: float
    z: float


class SegmentErrors:
    """Decayed error sums of every segment slot of one model.

    Parameters
    ----------
    names
        Segment names (each outcome has one slot per name).
    slots
        Slots per name (``top + 1``: slot 0 is ``other``).
    window
        Mean life of an outcome's weight, in outcomes.
    regression
        Errors are absolute errors (Welch's variance) rather than 0/1.
    """

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    STATE_FORMAT: ClassVar[int] = 1

    def __init__(self, names: int, slots: int, window: int, regression: bool = False) -> None:
        if names < 1 or slots < 2 or window < 2:
            raise ValueError("need names >= 1, slots >= 2 and window >= 2")
        self.names = names
        self.slots = slots
        self.window = window
        self.regression = regression
        self._grow = 1.0 / (1.0 - 1.0 / window)
        self._scale = 1.0
        # [W, W2, E, E2] per (name, slot), flat: name * slots + slot; and the model's total.
        self._sums = [[0.0] * (names * slots) for _ in range(4)]
        self._total = [0.0, 0.0, 0.0, 0.0]

    def add(self, slots: Sequence[int], error: float) -> None:
        """One labelled outcome: its slot per segment name, and its error."""
        w = self._scale
        w2, we = w * w, w * error
        we2 = we * error
        weights, squares, errors, errors2 = self._sums
        base = 0
        for slot in slots:
            index = base + slot
            weights[index] += w
            squares[index] += w2
            errors[index] += we
            errors2[index] += we2
            base += self.slots
        total = self._total
        total[0] += w
        total[1] += w2
        total[2] += we
        total[3] += we2
        self._scale = w * self._grow
        if self._scale > _RESCALE:
            self._rescale()

    def _rescale(self) -> None:
        scale = self._scale
        for column, power in zip(self._sums, (1, 2, 1, 1), strict=True):
            factor = scale**power
            for i, value in enumerate(column):
                column[i] = value / factor
        self._total = [v / scale**p for v, p in zip(self._total, (1, 2, 1, 1), strict=True)]
        self._scale = 1.0

    def clear(self, name: int, slot: int) -> None:
        """Forget a slot's sums (a new value took it); the total keeps its outcomes."""
        for column in self._sums:
            column[name * self.slots + slot] = 0.0

    def summary(self, name: int, slot: int) -> tuple[float, float]:
        """(mean error, effective outcomes) of a slot (0.0, 0.0 when it has none)."""
        return _mean_and_size(*(column[name * self.slots + slot] for column in self._sums))

    def total(self) -> tuple[float, float]:
        """(mean error, effective outcomes) of the model's traffic."""
        return _mean_and_size(*self._total)

    def test(self, name: int, slot: int, min_rise: float) -> SegmentTest:
        """The slot against the rest of the model's traffic (see the module's docstring)."""
        w, w2, e, e2 = (column[name * self.slots + slot] for column in self._sums)
        rest = [t - s for t, s in zip(self._total, (w, w2, e, e2), strict=True)]
        error, outcomes = _mean_and_size(w, w2, e, e2)
        rest_error, rest_outcomes = _mean_and_size(*rest)
        factor = 1.0 + min_rise
        line = factor * rest_error
        if outcomes <= 0.0 or rest_outcomes <= 0.0:
            return SegmentTest(error, rest_error, outcomes, rest_outcomes, line, 0.0)
        v = self._variance(w, w2, e, e2)
        v_rest = self._variance(*rest)
        spread = math.sqrt(v + factor * factor * v_rest)
        z = (error - line) / spread if spread > 0.0 else 0.0
        return SegmentTest(error, rest_error, outcomes, rest_outcomes, line, z)

    def _variance(self, w: float, w2: float, e: float, e2: float) -> float:
        """The variance of a mean error (see the module's docstring)."""
        mean, n = _mean_and_size(w, w2, e, e2)
        if not self.regression:
            p = (mean * n + 1.0) / (n + 2.0)
            return p * (1.0 - p) / (n + 2.0)
        spread = max(e2 / w - mean * mean, 0.0)
        return spread / n if n > 1.0 else math.inf

    # -- state ----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return stamp(
            self.STATE_FORMAT,
            {"scale": self._scale, "sums": self._sums, "total": self._total},
        )

    def load_state(self, state: dict[str, Any]) -> None:
        read_format(state, "SegmentErrors", self.STATE_FORMAT)
        sums = [[float(v) for v in column] for column in state["sums"]]
        total = [float(v) for v in state["total"]]
        size = self.names * self.slots
        if len(sums) != 4 or any(len(column) != size for column in sums) or len(total) != 4:
            raise StateError(f"segment error sums saved for another layout (expected {size})")
        values = [v for column in sums for v in column] + total
        if not all(math.isfinite(v) and v >= 0.0 for v in values):
            raise StateError("segment error sums must be finite and not negative")
        scale = float(state["scale"])
        if not 1.0 <= scale <= _RESCALE * self._grow:
            raise StateError("segment weight scale out of bounds")
        self._sums, self._total, self._scale = sums, total, scale


def _mean_and_size(w: float, w2: float, e: float, e2: float) -> tuple[float, float]:
    """(mean, Kish's effective sample size) of weighted sums."""
    if w <= 0.0 or w2 <= 0.0:
        return 0.0, 0.0
    return e / w, w * w / w2
