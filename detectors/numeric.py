"""Drift in a numeric stream: a feature, a score, a regression prediction or absolute error.

How it decides, and why
-----------------------
1. **Reference.** The first ``reference_size`` values are the reference (what "normal" is).
2. **Standardise.** Each later value becomes its mid-rank among the reference values (the
   probability integral transform), centred and scaled by the reference's own ranks. Whatever the
   feature's units or shape (skewed, heavy-tailed, discrete), a stationary stream then has mean 0
   and variance 1, so one set of thresholds fits every feature. (river's Page-Hinkley reads its
   threshold in the input's units: at river's defaults it raises hundreds to thousands of false
   alarms per 100k values on ordinary features.)
3. **Blocks.** Standardised values are averaged over blocks of ``block`` values. A block mean
   times ``sqrt(block)`` is close to standard normal whatever the feature (central limit), the
   change detectors run once per block instead of once per value (32x less work), and, as a
   fleet of models sends millions of values a day, 32x fewer tests means 32x fewer chances of a
   false alarm.
4. **Detect a change** with river's ADWIN and Page-Hinkley on the block means (PH without
   fading, ``alpha=1``: a classic CUSUM, tuned to shifts of ``min_shift``), and with a second
   pair on the *spread* ``|2u - 1|``, which moves when the variance changes but the median
   does not.
5. **Confirm against the reference.** An EWMA of the block means (and of the spread) must stand
   at least ``min_shift`` reference standard deviations, and ``enter`` of its own standard
   errors, away from the reference within ``confirm`` values of the change. Change detectors
   say "something changed"; the level says "and it is now materially different from normal",
   which filters their rare false alarms and gives a statistic that means something on a
   dashboard. Shifts under ``min_shift`` (a quarter of a standard deviation by default; a PSI of
   about 0.06) are deliberately not drift.
6. **Resolve with hysteresis** when the EWMA is back within half of that line. For one ``span``
   after, change detections are ignored: they are the detectors noticing the return to normal.

Examples
--------
>>> import random
>>> rng = random.Random(7)
>>> detector = NumericDriftDetector(reference_size=500)
>>> stream = [rng.gauss(10, 2) for _ in range(3000)] + [rng.gauss(12, 2) for _ in range(1000)]
>>> flips = detector.update_many(stream)
>>> flips[0], round(detector.statistic, 2), detector.drift_detected
(3123, 0.83, True)
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections.abc import Sequence
from typing import Any, Final, Literal

import numpy as np
from river import drift

from detectors._river import dump_adwin, dump_page_hinkley, load_adwin, load_page_hinkley
from detectors.base import DriftDetector, StateError

__all__ = ["NumericDriftDetector"]

_UNIFORM_STD: Final = 1.0 / math.sqrt(12.0)


class NumericDriftDetector(DriftDetector):
    """Drift of a numeric stream against its reference window.

    Parameters
    ----------
    reference_size
        How many values form the reference.
    block
        Values averaged into one observation of the change detectors.
    adwin_delta
        ADWIN's confidence parameter (river's default).
    ph_delta, ph_threshold
        Page-Hinkley's allowed drift and alarm threshold, on block means scaled to unit
        variance. 0.7 and 10 are a CUSUM tuned to shifts of a quarter of a standard deviation
        (1.4 in block units), with about a million blocks between false triggers.
    span
        Span of the EWMA level, in values.
    min_shift
        Smallest shift of the level, in reference standard deviations, that is a drift.
    enter
        The level must also be this many of its own standard errors from the reference.
    confirm
        For how many values after a change detection the level may confirm it.
    direction
        ``"both"``, or ``"up"`` to watch for increases only (an absolute error).
    spread
        Also watch the spread of the values.
    track_change_point
        Estimate where a change began (:attr:`change_index`) from where Page-Hinkley's
        cumulative sum was last at its extreme (the retrain command uses it).
    """

    takes = "numbers"

    def __init__(
        self,
        reference_size: int = 1000,
        block: int = 32,
        adwin_delta: float = 0.002,
        ph_delta: float = 0.7,
        ph_threshold: float = 10.0,
        span: int = 512,
        min_shift: float = 0.25,
        enter: float = 3.0,
        confirm: int = 1024,
        direction: Literal["both", "up"] = "both",
        spread: bool = True,
        track_change_point: bool = False,
    ) -> None:
        if reference_size < 2:
            raise ValueError(f"reference_size must be at least 2, got {reference_size}")
        if block < 1:
            raise ValueError(f"block must be at least 1, got {block}")
        if not 0 < adwin_delta < 1:
            raise ValueError(f"adwin_delta must be in (0, 1), got {adwin_delta}")
        if ph_delta < 0 or ph_threshold <= 0:
            raise ValueError("ph_delta must be >= 0 and ph_threshold > 0")
        if span < block:
            raise ValueError(f"span ({span}) must be at least one block ({block})")
        if min_shift <= 0 or enter <= 0:
            raise ValueError("min_shift and enter must be positive")
        if confirm < block:
            raise ValueError(f"confirm ({confirm}) must be at least one block ({block})")
        if direction not in ("both", "up"):
            raise ValueError(f"direction must be 'both' or 'up', got {direction!r}")
        self.reference_size = reference_size
        self.block = block
        self.adwin_delta = adwin_delta
        self.ph_delta = ph_delta
        self.ph_threshold = ph_threshold
        self.span = span
        self.min_shift = min_shift
        self.enter = enter
        self.confirm = confirm
        self.direction = direction
        self.spread = spread
        self.track_change_point = track_change_point
        blocks_per_span = span / block
        self._alpha = 2.0 / (blocks_per_span + 1.0)
        # Standard error of the EWMA of block means, in reference standard deviations.
        self._sigma = math.sqrt(self._alpha / (2.0 - self._alpha)) / math.sqrt(block)
        self._enter_line = max(min_shift, enter * self._sigma)
        self._exit_line = self._enter_line / 2
        self._root_block = math.sqrt(block)
        super().__init__()

    def _reset(self) -> None:
        # Filled into a flat array, not a list of float objects: a fleet fills thousands of
        # references at once, and the freed floats would leave the heap fragmented.
        self._reference = array("d")
        # Sorted reference: a compact array (bisect for a few values, a numpy view for batches).
        self._sorted: array[float] | None = None
        self._ties = False
        self._center = 0.0
        self._scale = 1.0
        self._spread_center = 0.0
        self._spread_scale = 1.0
        # clock=1: check every block (river's default of 32 would mean every 512 values).
        self._adwin = drift.ADWIN(delta=self.adwin_delta, clock=1)
        self._ph = drift.PageHinkley(
            min_instances=8,
            delta=self.ph_delta,
            threshold=self.ph_threshold,
            alpha=1.0,
            mode="up" if self.direction == "up" else "both",
        )
        self._adwin_spread = drift.ADWIN(delta=self.adwin_delta, clock=1)
        self._ph_spread = drift.PageHinkley(
            min_instances=8, delta=self.ph_delta, threshold=self.ph_threshold, alpha=1.0
        )
        # Standardised values of the unfinished block (flat arrays: a fleet has many).
        self._carry = array("d")
        self._carry_spread = array("d")
        self._level = 0.0
        self._level_spread = 0.0
        self._pending = 0  # blocks left to confirm a proposed change
        self._refractory = 0  # blocks during which proposals are ignored
        self._trigger = ""
        self._in_drift = False
        self._n = 0  # values seen since the reference
        self._change_index = 0
        self._ph_low_index = 0
        self._ph_high_index = 0

    # -- reading -------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether the reference is complete and the detector is watching."""
        return self._sorted is not None

    @property
    def drift_detected(self) -> bool:
        return self._in_drift

    @property
    def values_until_block(self) -> int:
        """Values until the current block ends (or the reference is complete)."""
        if self._sorted is None:
            return self.reference_size - len(self._reference)
        return self.block - len(self._carry)

    @property
    def statistic(self) -> float:
        """The EWMA level's distance from the reference, in reference standard deviations
        (the larger of location and spread)."""
        location = self._level if self.direction == "up" else abs(self._level)
        return max(location, abs(self._level_spread)) if self.spread else location

    @property
    def threshold(self) -> float:
        """The :attr:`statistic` that confirms a drift."""
        return self._enter_line

    @property
    def resolve_threshold(self) -> float:
        """The :attr:`statistic` below which a drift resolves."""
        return self._exit_line

    @property
    def trigger(self) -> str:
        """Which change detector started the current (or last) drift."""
        return self._trigger

    @property
    def level(self) -> float:
        """The signed EWMA location level (reference standard deviations)."""
        return self._level

    @property
    def n(self) -> int:
        """Values seen since the reference was complete."""
        return self._n

    @property
    def change_index(self) -> int:
        """Estimated index (values since the reference) where the last change began; kept
        with ``track_change_point``."""
        return self._change_index

    @property
    def reference(self) -> np.ndarray | None:
        """The sorted reference values, once complete."""
        return None if self._sorted is None else np.frombuffer(self._sorted, dtype=np.float64)

    # -- updating ------------------------------------------------------------------------------

    def update_many(self, values: Sequence[float] | np.ndarray) -> list[int]:
        """Update with many values; return the indices at which :attr:`drift_detected` flipped.

        A flip is reported at the last value of the block that caused it.
        """
        offset = 0
        if self._sorted is None:
            offset = self._fill_reference(values)
            if self._sorted is None:
                return []
            values = values[offset:]
        if len(values) == 0:
            return []
        if len(values) <= 8:  # numpy's per-call cost dominates small batches
            location, spread = self._standardise_few(values)
            return self._blocks(location, spread, offset)
        array_values = np.asarray(values, dtype=np.float64)
        return self._blocks_array(*self._standardise(array_values), offset)

    def _fill_reference(self, values: Sequence[float] | np.ndarray) -> int:
        need = self.reference_size - len(self._reference)
        taken = values[:need]
        if isinstance(taken, np.ndarray):
            self._reference.frombytes(taken.astype(np.float64, copy=False).tobytes())
        else:
            self._reference.extend(map(float, taken))
        if len(self._reference) >= self.reference_size:
            self._freeze_reference()
        return len(taken)

    def _freeze_reference(self) -> None:
        ref = np.sort(np.frombuffer(self._reference, dtype=np.float64))
        self._reference = array("d")
        self._sorted = array("d", ref.tobytes())
        self._ties = bool(np.any(ref[1:] == ref[:-1]))
        ranks = self._ranks(ref)
        self._center = float(ranks.mean())
        std = float(ranks.std())
        # A constant reference: any other value is a change, at uniform scale.
        self._scale = std if std > 1e-9 else _UNIFORM_STD
        spread = np.abs(2.0 * ranks - 1.0)
        self._spread_center = float(spread.mean())
        spread_std = float(spread.std())
        self._spread_scale = spread_std if spread_std > 1e-9 else _UNIFORM_STD

    def _ranks(self, x: np.ndarray) -> np.ndarray:
        ref = self.reference
        assert ref is not None
        low = ref.searchsorted(x, "left")  # the method: no numpy dispatch wrapper
        # Only a value equal to a reference value sits between left and right: one place
        # apart, or more where the reference repeats it. The second search runs for those
        # values only (a binary search over a reference out of cache costs ~50 ns a value).
        n = len(ref)
        hit = ref[np.minimum(low, n - 1)] == x
        high = low + hit
        if self._ties:
            hits = np.flatnonzero(hit)
            if len(hits):
                high[hits] = ref.searchsorted(x[hits], "right")
        return (low + high) / (2.0 * n)

    def _standardise(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        ranks = self._ranks(x)
        location = (ranks - self._center) / self._scale
        if not self.spread:
            return location, None
        spread = (np.abs(2.0 * ranks - 1.0) - self._spread_center) / self._spread_scale
        return location, spread

    def _standardise_few(self, values: Sequence[float]) -> tuple[list[float], list[float] | None]:
        ref = self._sorted
        assert ref is not None
        n2 = 2.0 * len(ref)
        ranks = [(bisect.bisect_left(ref, x) + bisect.bisect_right(ref, x)) / n2 for x in values]
        location = [(u - self._center) / self._scale for u in ranks]
        if not self.spread:
            return location, None
        spread = [(abs(2.0 * u - 1.0) - self._spread_center) / self._spread_scale for u in ranks]
        return location, spread

    def _blocks_array(
        self, location: np.ndarray, spread: np.ndarray | None, offset: int
    ) -> list[int]:
        """Block means with numpy: only the per-block work is Python."""
        block = self.block
        total = len(location)
        head = block - len(self._carry)  # values that complete the unfinished block
        if total < head:
            return self._blocks(
                location.tolist(), None if spread is None else spread.tolist(), offset
            )
        flips: list[int] = []
        # The unfinished block first (same arithmetic as _blocks), then whole blocks.
        if self._carry:
            flips += self._blocks(
                location[:head].tolist(), None if spread is None else spread[:head].tolist(), offset
            )
            start = head
        else:
            start = 0
        whole = (total - start) // block
        end = start + whole * block
        if whole:
            # math.fsum per block keeps exactly the arithmetic of the scalar path (so results
            # do not depend on how values were batched); rows as lists make it cheap.
            fsum = math.fsum
            rows = location[start:end].reshape(whole, block).tolist()
            means = [fsum(row) / block for row in rows]
            if spread is not None:
                rows = spread[start:end].reshape(whole, block).tolist()
                spreads = [fsum(row) / block for row in rows]
            else:
                spreads = [0.0] * whole
            for k in range(whole):
                if self._step(means[k], spreads[k]):
                    flips.append(offset + start + (k + 1) * block - 1)
            self._n += whole * block
        if end < total:
            self._carry = array("d", location[end:].tobytes())
            if spread is not None:
                self._carry_spread = array("d", spread[end:].tobytes())
            self._n += total - end
        return flips

    def _blocks(self, location: list[float], spread: list[float] | None, offset: int) -> list[int]:
        flips: list[int] = []
        block = self.block
        carry, carry_spread = self._carry, self._carry_spread
        start = 0
        total = len(location)
        while start < total:
            take = min(block - len(carry), total - start)
            carry.extend(location[start : start + take])
            if spread is not None:
                carry_spread.extend(spread[start : start + take])
            start += take
            if len(carry) == block:
                mean = math.fsum(carry) / block
                mean_spread = math.fsum(carry_spread) / block if spread is not None else 0.0
                del carry[:], carry_spread[:]
                if self._step(mean, mean_spread):
                    flips.append(offset + start - 1)
        self._n += total
        return flips

    def _step(self, mean: float, mean_spread: float) -> bool:
        """One block; return True if the drift state flipped."""
        adwin, ph = self._adwin, self._ph
        adwin.update(mean)
        ph.update(mean * self._root_block)
        if self.track_change_point:
            if ph._sum_increase <= ph._min_increase:
                self._ph_low_index = self._n
            if ph._sum_decrease >= ph._max_decrease:
                self._ph_high_index = self._n
        alpha = self._alpha
        self._level += alpha * (mean - self._level)
        location_level = self._level if self.direction == "up" else abs(self._level)
        spread_level = 0.0
        spread_hit = False
        if self.spread:
            self._adwin_spread.update(mean_spread)
            self._ph_spread.update(mean_spread * self._root_block)
            self._level_spread += alpha * (mean_spread - self._level_spread)
            spread_level = abs(self._level_spread)
            spread_hit = self._adwin_spread._drift_detected or self._ph_spread._drift_detected
        if self._in_drift:
            if location_level < self._exit_line and spread_level < self._exit_line:
                self._in_drift = False
                self._refractory = max(1, self.span // self.block)
                return True
            return False
        if self._refractory:
            self._refractory -= 1
            return False
        if adwin._drift_detected or ph._drift_detected or spread_hit:
            if not self._pending:
                if ph._drift_detected:
                    self._trigger = "page_hinkley"
                elif adwin._drift_detected:
                    self._trigger = "adwin"
                else:
                    self._trigger = "spread"
                if self.track_change_point:
                    self._estimate_change()
            self._pending = max(1, self.confirm // self.block)
        if self._pending:
            self._pending -= 1
            if location_level > self._enter_line or spread_level > self._enter_line:
                self._in_drift = True
                self._pending = 0
                return True
        return False

    def _estimate_change(self) -> None:
        # Page-Hinkley's cumulative sum is lowest (highest) just before an increase (decrease)
        # begins: a sharper estimate than ADWIN's cut, whose buckets grow in powers of two.
        ph = self._ph
        rise = ph._sum_increase - ph._min_increase
        fall = ph._max_decrease - ph._sum_decrease
        up = self.direction == "up" or rise >= fall
        self._change_index = (self._ph_low_index if up else self._ph_high_index) + self.block

    # -- state ---------------------------------------------------------------------------------

    def _dump(self) -> dict[str, Any]:
        return {
            "reference": self._reference.tolist(),
            "sorted": None if self._sorted is None else self._sorted.tolist(),
            "center": self._center,
            "scale": self._scale,
            "spread_center": self._spread_center,
            "spread_scale": self._spread_scale,
            "adwin": dump_adwin(self._adwin),
            "ph": dump_page_hinkley(self._ph),
            "adwin_spread": dump_adwin(self._adwin_spread),
            "ph_spread": dump_page_hinkley(self._ph_spread),
            "carry": self._carry.tolist(),
            "carry_spread": self._carry_spread.tolist(),
            "level": self._level,
            "level_spread": self._level_spread,
            "pending": self._pending,
            "refractory": self._refractory,
            "trigger": self._trigger,
            "in_drift": self._in_drift,
            "n": self._n,
            "change_index": self._change_index,
            "ph_low_index": self._ph_low_index,
            "ph_high_index": self._ph_high_index,
        }

    def _load(self, state: dict[str, Any]) -> None:
        reference = [float(v) for v in state["reference"]]
        if len(reference) > self.reference_size:
            raise StateError("reference longer than reference_size")
        self._reference = array("d", reference)
        if state["sorted"] is not None:
            ordered = np.asarray(state["sorted"], dtype=np.float64)
            if ordered.ndim != 1 or len(ordered) != self.reference_size:
                raise StateError("reference of the wrong size")
            if not np.all(np.isfinite(ordered)) or np.any(np.diff(ordered) < 0):
                raise StateError("reference is not sorted finite values")
            self._sorted = array("d", ordered.tobytes())
            self._ties = bool(np.any(ordered[1:] == ordered[:-1]))
        for name in ("center", "scale", "spread_center", "spread_scale", "level", "level_spread"):
            value = float(state[name])
            if not math.isfinite(value):
                raise StateError(f"{name} is not finite")
            setattr(self, f"_{name}", value)
        if self._scale <= 0 or self._spread_scale <= 0:
            raise StateError("scales must be positive")
        carry = [float(v) for v in state["carry"]]
        carry_spread = [float(v) for v in state["carry_spread"]]
        if len(carry) >= self.block or len(carry_spread) >= self.block:
            raise StateError("unfinished block too long")
        self._carry, self._carry_spread = array("d", carry), array("d", carry_spread)
        load_adwin(self._adwin, state["adwin"])
        load_page_hinkley(self._ph, state["ph"])
        load_adwin(self._adwin_spread, state["adwin_spread"])
        load_page_hinkley(self._ph_spread, state["ph_spread"])
        self._pending = int(state["pending"])
        self._refractory = int(state["refractory"])
        self._trigger = str(state["trigger"])
        self._in_drift = bool(state["in_drift"])
        self._n = int(state["n"])
        self._change_index = int(state["change_index"])
        self._ph_low_index = int(state["ph_low_index"])
        self._ph_high_index = int(state["ph_high_index"])
