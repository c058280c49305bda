"""Concept drift of a classifier: a rise in its 0/1 error stream.

Rare errors break normal-theory thresholds: at a 1 % error rate an EWMA or a z-scored CUSUM sees
a few errors at a time, and a burst of three reads as a drift. So the change detectors here
(river's ADWIN on the raw errors, Page-Hinkley on the standardised ones, increases only) only
*propose* a drift, with Page-Hinkley's estimate of where it began. It is *confirmed* by counting:
the errors since that point must be significantly more than the reference rate predicts (a
Poisson tail below ``alpha``) and exceed it by at least ``min_effect`` (relative). The longer the
rise lasts, the more power the count has, so subtle rises are confirmed too, later; a proposal
whose segment falls back to the reference rate is dropped.

The statistic is the error rate over the last ``window`` outcomes (sized so the reference rate
expects ``min_errors`` errors in it, so rare and common errors are judged alike); the threshold
is the rate at which that window alone would confirm. A drift resolves when the rate over three
windows is back within a quarter of ``min_effect`` of the reference rate, judged only on
outcomes that came after the drift was confirmed: resolving late beats flapping.

Examples
--------
>>> import random
>>> rng = random.Random(11)
>>> detector = ErrorRateDriftDetector(reference_size=500)
>>> errors = [float(rng.random() < 0.05) for _ in range(6000)]
>>> errors += [float(rng.random() < 0.15) for _ in range(3000)]
>>> flips = detector.update_many(errors)
>>> flips[0] > 6000, round(detector.statistic, 3), round(detector.threshold, 3)
(True, 0.156, 0.082)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

from river import drift

from detectors._river import dump_adwin, dump_page_hinkley, load_adwin, load_page_hinkley
from detectors.base import Detector, StateError
from detectors.categorical import chi2_sf

__all__ = ["ErrorRateDriftDetector", "poisson_tail"]


def poisson_tail(mean: float, k: int) -> float:
    """P(X >= k) for X ~ Poisson(mean), via the chi-squared relation.

    >>> round(poisson_tail(10.0, 20), 4)
    0.0035
    """
    if k <= 0:
        return 1.0
    return 1.0 - chi2_sf(2.0 * mean, 2 * k)


class ErrorRateDriftDetector(Detector):
    """A rise of a 0/1 error rate above its reference.

    Parameters
    ----------
    reference_size
        Outcomes that set the reference error rate (smoothed: (errors + 1) / (n + 2)).
    adwin_delta, ph_delta, ph_threshold
        River's ADWIN and Page-Hinkley (on errors standardised by the reference rate).
    alpha
        Significance of the confirming count.
    min_effect
        The window's rate must exceed the reference by at least this fraction of it.
    min_errors
        Errors the reference rate expects in the window, which sets the window's size.
    min_window, max_window
        Bounds of the window.
    confirm
        Most outcomes after a proposal during which it may be confirmed.
    """

    def __init__(
        self,
        reference_size: int = 500,
        adwin_delta: float = 0.002,
        ph_delta: float = 0.25,
        ph_threshold: float = 35.0,
        alpha: float = 1e-4,
        min_effect: float = 0.2,
        min_errors: int = 50,
        min_window: int = 500,
        max_window: int = 5000,
        confirm: int = 5000,
    ) -> None:
        if reference_size < 10:
            raise ValueError(f"reference_size must be at least 10, got {reference_size}")
        if not 0 < alpha < 1 or not 0 < adwin_delta < 1:
            raise ValueError("alpha and adwin_delta must be in (0, 1)")
        if min_effect < 0 or min_errors < 1:
            raise ValueError("min_effect must be >= 0 and min_errors >= 1")
        if not 1 <= min_window <= max_window:
            raise ValueError("need 1 <= min_window <= max_window")
        if ph_delta < 0 or ph_threshold <= 0 or confirm < 1:
            raise ValueError("need ph_delta >= 0, ph_threshold > 0 and confirm >= 1")
        self.reference_size = reference_size
        self.adwin_delta = adwin_delta
        self.ph_delta = ph_delta
        self.ph_threshold = ph_threshold
        self.alpha = alpha
        self.min_effect = min_effect
        self.min_errors = min_errors
        self.min_window = min_window
        self.max_window = max_window
        self.confirm = confirm
        super().__init__()

    def _reset(self) -> None:
        self._ref_n = 0
        self._ref_errors = 0
        self._rate = 0.0  # reference error rate, once ready
        self._scale = 1.0
        self._window_size = 0
        self._enter = 0  # errors in the window that confirm a drift
        self._resolve_size = 0  # outcomes the resolve decision is taken over (3 windows)
        self._leave = 0  # errors in those below which a drift resolves
        self._long_count = 0
        self._window: deque[int] = deque()
        self._count = 0
        self._adwin = drift.ADWIN(delta=self.adwin_delta)
        self._ph = drift.PageHinkley(
            min_instances=30,
            delta=self.ph_delta,
            threshold=self.ph_threshold,
            alpha=1.0,
            mode="up",
        )
        self._history = bytearray()  # the last max_window errors, to count a segment's errors
        self._pending = 0
        self._segment_n = 0
        self._segment_errors = 0
        self._since_confirmed = 0
        self._trigger = ""
        self._in_drift = False
        self._n = 0
        self._ph_low_index = 0
        self._change_index = 0

    # -- reading -------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._window_size > 0

    @property
    def drift_detected(self) -> bool:
        return self._in_drift

    @property
    def statistic(self) -> float:
        """Error rate over the window."""
        return self._count / len(self._window) if self._window else 0.0

    @property
    def threshold(self) -> float:
        """Error rate over the window that confirms a drift."""
        return self._enter / self._window_size if self._window_size else 0.0

    @property
    def resolve_threshold(self) -> float:
        """Error rate over three windows below which a drift resolves."""
        return self._leave / self._resolve_size if self._resolve_size else 0.0

    @property
    def reference_rate(self) -> float:
        return self._rate

    @property
    def trigger(self) -> str:
        return self._trigger

    @property
    def n(self) -> int:
        """Outcomes seen since the reference was complete."""
        return self._n

    @property
    def change_index(self) -> int:
        """Estimated index (outcomes since the reference) where the last rise began."""
        return self._change_index

    # -- updating ------------------------------------------------------------------------------

    def update(self, x: float) -> None:
        self.update_many((x,))

    def update_many(self, values: Sequence[float]) -> list[int]:
        """Update with 0/1 errors; return the indices at which :attr:`drift_detected` flipped."""
        flips: list[int] = []
        start = 0
        if not self.ready:
            for start, value in enumerate(values, start=1):  # noqa: B007 - used after the loop
                self._ref_n += 1
                self._ref_errors += value >= 0.5
                if self._ref_n >= self.reference_size:
                    self._freeze_reference()
                    break
            else:
                return flips
        adwin, ph = self._adwin, self._ph
        rate, scale = self._rate, self._scale
        window, size, history = self._window, self._window_size, self._history
        leave, long_size = self._leave, self._resolve_size
        keep = max(self.max_window, long_size + 1)
        for i in range(start, len(values)):
            error = 1 if values[i] >= 0.5 else 0
            adwin.update(error)
            ph.update((error - rate) / scale)
            index = self._n
            self._n += 1
            if ph._sum_increase <= ph._min_increase:
                self._ph_low_index = index
            window.append(error)
            self._count += error
            if len(window) > size:
                self._count -= window.popleft()
            history.append(error)
            self._long_count += error
            if len(history) > long_size:
                self._long_count -= history[-long_size - 1]
            if len(history) > keep:
                del history[: len(history) - keep]
            if self._in_drift:
                # Judge a return only on outcomes that came after the drift was confirmed.
                self._since_confirmed += 1
                if self._long_count < leave and self._since_confirmed >= long_size:
                    self._in_drift = False
                    flips.append(i)
                continue
            if (adwin._drift_detected or ph._drift_detected) and not self._pending:
                self._propose(index, "page_hinkley" if ph._drift_detected else "adwin")
            elif self._pending:
                self._segment_n += 1
                self._segment_errors += error
            if self._pending:
                self._pending -= 1
                if self._confirmed():
                    self._in_drift = True
                    self._pending = 0
                    self._since_confirmed = 0
                    flips.append(i)
        return flips

    def _propose(self, index: int, trigger: str) -> None:
        """A change detector fired at ``index``: open a segment from the estimated start."""
        self._trigger = trigger
        begin = max(self._ph_low_index + 1, index + 1 - len(self._history))
        self._change_index = begin
        counted = self._history[len(self._history) - (index + 1 - begin) :]
        self._segment_n = len(counted)
        self._segment_errors = sum(counted)
        self._pending = self.confirm

    def _confirmed(self) -> bool:
        n, k = self._segment_n, self._segment_errors
        if n < self.min_window // 4:
            return False
        expected = self._rate * n
        if k <= expected:
            # Back at (or under) the reference rate: not a rise. Drop the proposal.
            if n >= self._window_size:
                self._pending = 0
            return False
        if k < expected * (1 + self.min_effect):
            return False
        return poisson_tail(expected, k) < self.alpha

    def _freeze_reference(self) -> None:
        rate = (self._ref_errors + 1) / (self._ref_n + 2)
        self._rate = rate
        clamped = min(max(rate, 0.005), 0.995)
        self._scale = math.sqrt(clamped * (1 - clamped))
        size = math.ceil(self.min_errors / rate)
        self._window_size = min(self.max_window, max(self.min_window, size))
        expected = rate * self._window_size
        k = max(1, math.ceil(expected))
        while poisson_tail(expected, k) >= self.alpha:
            k += 1
        effect = math.ceil(expected * (1 + self.min_effect) + 1e-9)
        self._enter = min(self._window_size, max(k, effect))
        # Resolved once the rate over three windows is back near the reference: within a
        # quarter of the minimum effect (a marginal drift must not flap).
        self._resolve_size = 3 * self._window_size
        long_expected = rate * self._resolve_size
        self._leave = max(1, math.ceil(long_expected * (1 + self.min_effect / 4)))

    # -- state ---------------------------------------------------------------------------------

    def _dump(self) -> dict[str, Any]:
        return {
            "ref_n": self._ref_n,
            "ref_errors": self._ref_errors,
            "window": "".join(map(str, self._window)),
            "history": self._history.decode(),
            "segment_n": self._segment_n,
            "segment_errors": self._segment_errors,
            "since_confirmed": self._since_confirmed,
            "adwin": dump_adwin(self._adwin),
            "ph": dump_page_hinkley(self._ph),
            "pending": self._pending,
            "trigger": self._trigger,
            "in_drift": self._in_drift,
            "n": self._n,
            "ph_low_index": self._ph_low_index,
            "change_index": self._change_index,
        }

    def _load(self, state: dict[str, Any]) -> None:
        self._ref_n = int(state["ref_n"])
        self._ref_errors = int(state["ref_errors"])
        if not 0 <= self._ref_errors <= self._ref_n <= self.reference_size:
            raise StateError("reference counts out of bounds")
        if self._ref_n >= self.reference_size:
            self._freeze_reference()
        window = state["window"]
        if len(window) > max(self._window_size, 0) or set(window) - {"0", "1"}:
            raise StateError("error window out of bounds")
        self._window = deque(int(c) for c in window)
        self._count = sum(self._window)
        history = state["history"]
        if len(history) > max(self.max_window, self._resolve_size + 1) or set(history) - {
            "\x00",
            "\x01",
        }:
            raise StateError("error history out of bounds")
        self._history = bytearray(history.encode())
        self._long_count = sum(self._history[-self._resolve_size :]) if self._resolve_size else 0
        self._segment_n = int(state["segment_n"])
        self._segment_errors = int(state["segment_errors"])
        self._since_confirmed = int(state["since_confirmed"])
        if not 0 <= self._segment_errors <= self._segment_n:
            raise StateError("segment counts out of bounds")
        load_adwin(self._adwin, state["adwin"])
        load_page_hinkley(self._ph, state["ph"])
        self._pending = int(state["pending"])
        self._trigger = str(state["trigger"])
        self._in_drift = bool(state["in_drift"])
        self._n = int(state["n"])
        self._ph_low_index = int(state["ph_low_index"])
        self._change_index = int(state["change_index"])
