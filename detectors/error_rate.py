"""Concept drift of a classifier: a rise in its 0/1 error stream.

Rare errors break normal-theory thresholds: at a 1 % error rate an EWMA or a z-scored CUSUM sees
a few errors at a time, and a burst of three reads as a drift. So the change detectors here
(river's ADWIN on the raw errors, Page-Hinkley on the standardised ones, increases only) only
*propose* a drift, with an estimate of where it began (the split of the recent errors into two
rates that fits them best). It is *confirmed* by counting: the errors since that point must be
significantly more than the reference's (a conditional binomial test of the segment's errors
against the reference's: given both counts, is the segment's share of them too large for equal
rates? ``alpha``) and exceed the reference rate by at least ``min_effect`` (relative). The test
carries the reference's own uncertainty: a reference of five errors cannot make an ordinary
cluster look significant. The segment is the most extreme of many the recent history holds, so
a short one must clear a stricter level (``alpha`` times its share of the history: a scan
statistic), unless ADWIN's own two-window test has backed the proposal. The longer the rise
lasts, the more power the count has, so subtle rises are confirmed too, later; a proposal whose
segment falls back to the reference rate is dropped.

The reference is the first ``reference_size`` outcomes, grown until it holds
``reference_outcomes`` outcomes and ``reference_errors`` errors (at most ``max_reference``
outcomes): a rate estimated from a handful of errors, or from a thousand outcomes of a model
that errs a third of the time, is not precise enough to tell a 10 % rise from its own noise.
A drift that comes while the reference grows must not become part of it: each new error checks
the last ``reference_size // 2`` outcomes against the rest, and a significant, material rise
ends the reference before them; they are then watched as the first outcomes after it.

The statistic is the error rate over the last ``window`` outcomes (sized so the reference rate
expects ``min_errors`` errors in it, so rare and common errors are judged alike); the threshold
is the rate at which that window alone would confirm. An alert reports the pair that decided
it instead (:attr:`ErrorRateDriftDetector.decision`): the rate of the confirming segment and the
rate at which a segment that long confirms. A drift resolves when the rate over three windows is
back within a quarter of ``min_effect`` of the reference rate, judged only on outcomes that came
after the drift was confirmed: resolving late beats flapping.

A confirmed drift does not blind the detector: from the confirmation on, the change detectors
watch the errors again, against the episode's own level, and a further rise that the same test
confirms is an *escalation* (:attr:`ErrorRateDriftDetector.escalations`): a new, worse episode.

Examples
--------
>>> import random
>>> rng = random.Random(11)
>>> detector = ErrorRateDriftDetector(reference_size=500)
>>> errors = [float(rng.random() < 0.05) for _ in range(6000)]
>>> errors += [float(rng.random() < 0.15) for _ in range(3000)]
>>> flips = detector.update_many(errors)
>>> flips[0] > 6000, round(detector.statistic, 3), round(detector.threshold, 3)
(True, 0.154, 0.085)
>>> rate, line = detector.decision  # the confirming segment's rate, and where it confirms
>>> rate >= line > detector.reference_rate
True
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable, Sequence
from statistics import NormalDist
from typing import Any

from river import drift

from detectors._river import dump_adwin, dump_page_hinkley, load_adwin, load_page_hinkley
from detectors.base import DriftDetector, StateError
from detectors.binomial import binomial_tail
from detectors.rate_change import (
    MIN_SEGMENT,
    MIN_SEGMENT_ERRORS,
    best_split,
    confirming_errors,
    scan_alpha,
    spread,
)

__all__ = ["ErrorRateDriftDetector"]


class ErrorRateDriftDetector(DriftDetector):
    """A rise of a 0/1 error rate above its reference.

    Parameters
    ----------
    reference_size
        Fewest outcomes that set the reference error rate (smoothed: (errors + 1) / (n + 2)).
    reference_outcomes, reference_errors, max_reference
        The reference grows until it holds ``reference_outcomes`` outcomes and
        ``reference_errors`` errors, or ``max_reference`` outcomes; a rise while it grows cuts
        it short (never below ``reference_size``).
    adwin_delta, ph_delta, ph_threshold
        River's ADWIN and Page-Hinkley (on errors standardised by the reference rate).
    alpha
        Significance of the confirming count.
    min_effect
        The segment's rate (or the window's, where a gradual rise has got to) must exceed the
        reference by at least this fraction of it.
    min_errors
        Errors the reference rate expects in the window, which sets the window's size.
    min_window, max_window
        Bounds of the window.
    confirm
        Most outcomes after a proposal during which it may be confirmed.
    """

    takes = "errors"

    def __init__(
        self,
        reference_size: int = 500,
        adwin_delta: float = 0.002,
        ph_delta: float = 0.05,
        ph_threshold: float = 35.0,
        alpha: float = 1e-4,
        min_effect: float = 0.1,
        min_errors: int = 50,
        min_window: int = 500,
        max_window: int = 5000,
        confirm: int = 5000,
        reference_errors: int = 100,
        max_reference: int = 50_000,
        reference_outcomes: int = 5000,
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
        if max_reference < reference_size or reference_errors < 1:
            raise ValueError("need max_reference >= reference_size and reference_errors >= 1")
        if reference_outcomes < 1:
            raise ValueError("need reference_outcomes >= 1")
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
        self.reference_errors = reference_errors
        self.max_reference = max_reference
        self.reference_outcomes = reference_outcomes
        # Standard scores this far below the test's level are never significant.
        self._far_z = max(0.0, NormalDist().inv_cdf(1 - alpha) - 1.5)
        super().__init__()

    def _reset(self) -> None:
        self._ref_n = 0
        self._ref_errors = 0
        self._rate = 0.0  # reference error rate, once ready
        self._scale = 1.0
        # What the change detectors watch the errors against: the reference, or the open
        # episode's level (then a proposal is a candidate escalation).
        self._watch_rate = 0.0
        self._watch_scale = 1.0
        self._window_size = 0
        self._enter = 0  # errors in the window that confirm a drift
        self._resolve_size = 0  # outcomes the resolve decision is taken over (3 windows)
        self._leave = 0  # errors in those below which a drift resolves
        self._long_count = 0
        self._window: deque[int] = deque()
        self._count = 0
        self._history = bytearray()  # the last max_window errors, to count a segment's errors
        self._pending = 0
        self._segment_n = 0
        self._segment_errors = 0
        self._since_confirmed = 0
        self._trigger = ""
        self._in_drift = False
        self._n = 0
        self._restart_change_detectors(0.0, 1.0)  # (watching starts at the reference's rate)
        self._change_index = 0
        # The pair that decided the last transition: (statistic, threshold).
        self._decision = (0.0, 0.0)
        # The open episode's level (errors, outcomes of its confirming segment), against which
        # a further rise (an escalation) is judged.
        self._level = (0, 0)
        #: Indices (of the last update_many) where a drift escalated into a worse episode.
        self.escalations: list[int] = []

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
    def reference_evidence(self) -> tuple[int, int]:
        """(errors, outcomes) of the reference, so far."""
        return self._ref_errors, self._ref_n

    @property
    def decision(self) -> tuple[float, float]:
        """(statistic, threshold) that decided the last transition: on confirming, the error
        rate of the segment since the estimated change and the rate at which a segment that
        long confirms (the statistic is at or above it); on resolving, the rate over the last three
        windows and the rate below which the drift resolves (the statistic is below it)."""
        return self._decision

    @property
    def level(self) -> float:
        """Error rate of the open episode's confirming segment (0 outside an episode)."""
        errors, n = self._level
        return errors / n if n else 0.0

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

    def update_many(self, values: Sequence[float]) -> list[int]:
        """Update with 0/1 errors; return the indices at which :attr:`drift_detected` flipped."""
        flips: list[int] = []
        self.escalations = []
        start, replay = 0, b""
        if not self.ready:
            start, replay = self._grow_reference(values)
            if not self.ready:
                return flips
        if replay:
            # Outcomes held back from a reference cut short by a rise: watched now, as if
            # they came at the outcome that cut it.
            at = start - 1
            items: Iterable[tuple[int, float]] = itertools.chain(
                ((at, value) for value in replay), enumerate(values[start:], start=start)
            )
        else:
            items = enumerate(values[start:], start=start)
        adwin, ph = self._adwin, self._ph
        rate, scale = self._watch_rate, self._watch_scale
        window, size, history = self._window, self._window_size, self._history
        leave, long_size = self._leave, self._resolve_size
        keep = max(self.max_window, long_size + 1)
        for i, value in items:
            error = 1 if value >= 0.5 else 0
            adwin.update(error)
            ph.update((error - rate) / scale)
            index = self._n
            self._n += 1
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
                    self._pending = 0
                    self._level = (0, 0)
                    self._decision = (self._long_count / long_size, self.resolve_threshold)
                    flips.append(i)
                    self._restart_change_detectors(self._rate, self._scale)
                    adwin, ph = self._adwin, self._ph
                    rate, scale = self._watch_rate, self._watch_scale
                    continue
            fired = adwin._drift_detected or ph._drift_detected
            if fired and not self._pending:
                self._propose(index, "page_hinkley" if ph._drift_detected else "adwin")
            elif (
                not self._pending
                and not self._in_drift
                and self._count >= self._enter
                and len(window) == size
            ):
                # The window alone is past the line (a rise too slow for the change detectors).
                self._propose(index, "window")
            elif self._pending:
                if adwin._drift_detected:
                    self._trigger = "adwin"  # ADWIN's two-window test backs the proposal
                self._segment_n += 1
                self._segment_errors += error
                # Split afresh every window, and whenever a change detector fires again while
                # the proposal waits: a new rise may have begun since (else a stale proposal of
                # ordinary noise would dilute a sudden jump until the next periodic split).
                if fired or self._segment_n % size == 0:
                    self._resplit(index)
            if self._pending:
                self._pending -= 1
                if self._confirmed():
                    self._pending = 0
                    self._since_confirmed = 0
                    self._level = (self._segment_errors, self._segment_n)
                    if self._in_drift:
                        self.escalations.append(i)
                    else:
                        self._in_drift = True
                        flips.append(i)
                    # Watch on, against the episode's level: a further rise escalates.
                    level = max(self.level, self._rate)
                    self._restart_change_detectors(level, spread(level))
                    adwin, ph = self._adwin, self._ph
                    rate, scale = self._watch_rate, self._watch_scale
        return flips

    def _grow_reference(self, values: Sequence[float]) -> tuple[int, bytes]:
        """Add outcomes to the reference until it is complete; return how many of ``values``
        it took and the outcomes to watch first (a cut-off rise, else none).

        A reference that waits for ``reference_errors`` errors can take tens of thousands of
        outcomes from a model that rarely errs, and a drift may come meanwhile: it must not
        become the reference. So once the reference holds ``reference_size`` outcomes beyond
        a block of the last ``reference_size // 2``, every error checks that block against
        the rest; a block significantly and materially above it ends the reference before the
        block, and the block's outcomes are watched as the first after the reference.
        """
        history = self._history
        block = self.reference_size // 2
        for taken, value in enumerate(values, start=1):
            error = value >= 0.5
            self._ref_n += 1
            self._ref_errors += error
            history.append(error)
            if len(history) > self.max_window:
                del history[: len(history) - self.max_window]
            if self._ref_n >= self.max_reference or (
                self._ref_n >= max(self.reference_size, self.reference_outcomes)
                and self._ref_errors >= self.reference_errors
            ):
                self._freeze_reference()
                self._history = bytearray()
                return taken, b""
            if error and self._ref_n >= self.reference_size + block and len(history) >= block:
                recent = bytes(history[-block:])
                if self._rise_in_reference(recent.count(1), block):
                    self._ref_n -= block
                    self._ref_errors -= recent.count(1)
                    self._freeze_reference()
                    self._history = bytearray()
                    return taken, recent
        return len(values), b""

    def _rise_in_reference(self, errors: int, block: int) -> bool:
        """Whether the last ``block`` outcomes of a growing reference hold ``errors`` errors
        significantly and materially more than the outcomes before them (one block of
        ``ref_n / block`` candidates: the significance is divided among them)."""
        base_n, base_errors = self._ref_n - block, self._ref_errors - errors
        if errors * base_n <= (base_errors + 1) * block * (1 + self.min_effect):
            return False
        alpha = scan_alpha(self.alpha, block, self._ref_n)
        return binomial_tail(self._ref_errors, block / self._ref_n, errors) < alpha

    def _restart_change_detectors(self, rate: float, scale: float) -> None:
        """Fresh change detectors around ``rate`` (after a confirmation or a resolve)."""
        self._adwin = drift.ADWIN(delta=self.adwin_delta)
        self._ph = drift.PageHinkley(
            min_instances=30,
            delta=self.ph_delta,
            threshold=self.ph_threshold,
            alpha=1.0,
            mode="up",
        )
        self._watch_rate, self._watch_scale = rate, scale

    def _propose(self, index: int, trigger: str) -> None:
        """A change detector fired at ``index``: open a segment from the estimated start (the
        split of the recent errors into two rates that fits them best), and judge it as it
        grows."""
        self._trigger = trigger
        ago, errors = self._recent_rise()
        self._change_index = index + 1 - ago
        self._segment_n = ago
        self._segment_errors = errors
        self._pending = self.confirm

    def _resplit(self, index: int) -> None:
        """Estimate the change point again with what came since the proposal: a proposal
        made early (or late) would otherwise judge a segment diluted by unchanged outcomes."""
        ago, errors = self._recent_rise()
        if ago and self._tail(errors, ago) <= self._tail(self._segment_errors, self._segment_n):
            # (The more convincing of the two: a segment that began before the kept history
            # holds more evidence than any split of the history can.)
            self._change_index = index + 1 - ago
            self._segment_n = ago
            self._segment_errors = errors

    def _recent_rise(self) -> tuple[int, int]:
        """(outcomes, errors) of the recent segment whose rise fits best (0, 0 if none)."""
        history = self._history
        # Within an episode, only what came after its confirmation can hold a further rise.
        span = min(len(history), self._since_confirmed if self._in_drift else len(history))
        recent = history[len(history) - span :]
        ago = best_split(recent)
        return ago, (sum(recent[len(recent) - ago :]) if ago else 0)

    def _baseline(self) -> tuple[int, int, float]:
        """(errors, outcomes, rate) a segment is judged against: the reference, or, within an
        episode, the episode's confirming segment (an escalation must rise above it)."""
        if self._in_drift and self._level[1]:
            errors, n = self._level
            return errors, n, max(errors / n, self._rate)
        return self._ref_errors, self._ref_n, self._rate

    def _tail(self, k: int, n: int) -> float:
        """P-value of ``k`` errors in ``n`` outcomes against the baseline (conditional test)."""
        base_errors, base_n, _ = self._baseline()
        return binomial_tail(k + base_errors, n / (n + base_n), k) if n else 1.0

    def _confirmed(self) -> bool:
        n, k = self._segment_n, self._segment_errors
        if n < MIN_SEGMENT or k < MIN_SEGMENT_ERRORS:
            return False
        base_errors, base_n, base_rate = self._baseline()
        expected = base_rate * n
        if k <= expected:
            # Back at (or under) the baseline rate: not a rise. Drop the proposal.
            if n >= self._window_size:
                self._pending = 0
            return False
        # The size of the rise is judged on where the rate is now (the last window of the
        # segment): a gradual change dilutes its segment's rate with the way up.
        window = self._window
        recent = self._count / len(window) if n >= len(window) else k / n
        if max(recent, k / n) < base_rate * (1 + self.min_effect):
            return False
        total, share = k + base_errors, n / (n + base_n)
        if k - total * share < self._far_z * math.sqrt(total * share * (1 - share)):
            # Far from significant by the normal approximation (a right-skewed binomial's tail
            # is heavier still): skip the exact tail, the costly part of a pending proposal.
            return False
        if binomial_tail(total, share, k) >= self._alpha_for(n):
            return False
        self._decision = (k / n, self._confirming_errors(n, base_errors, base_n, base_rate) / n)
        return True

    def _confirming_errors(self, n: int, base_errors: int, base_n: int, base_rate: float) -> int:
        """The fewest errors in ``n`` outcomes that confirm a rise over the baseline."""
        return confirming_errors(
            n, base_errors, base_n, base_rate, self.min_effect, self._alpha_for(n)
        )

    def _alpha_for(self, n: int) -> float:
        """Significance for a rise over a segment of ``n`` outcomes (a scan statistic, see
        :func:`~detectors.rate_change.scan_alpha`): the candidates are segments of the last
        window."""
        if self._trigger == "adwin":
            return self.alpha
        return scan_alpha(self.alpha, n, max(self._window_size, len(self._history)))

    def _freeze_reference(self) -> None:
        rate = (self._ref_errors + 1) / (self._ref_n + 2)
        self._rate = rate
        self._scale = spread(rate)
        self._watch_rate, self._watch_scale = rate, self._scale
        size = math.ceil(self.min_errors / rate)
        self._window_size = min(self.max_window, max(self.min_window, size))
        self._enter = min(
            self._window_size,
            self._confirming_errors(self._window_size, self._ref_errors, self._ref_n, rate),
        )
        # Resolved once the rate over three windows is back near the reference: within a
        # quarter of the minimum effect (a marginal drift must not flap).
        self._resolve_size = 3 * self._window_size
        long_expected = rate * self._resolve_size
        self._leave = max(1, math.ceil(long_expected * (1 + self.min_effect / 4)))

    # -- state ---------------------------------------------------------------------------------

    def _dump(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
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
            "change_index": self._change_index,
            "decision": list(self._decision),
            "level": list(self._level),
            "watch": [self._watch_rate, self._watch_scale],
        }

    def _load(self, state: dict[str, Any]) -> None:
        self._ref_n = int(state["ref_n"])
        self._ref_errors = int(state["ref_errors"])
        if not 0 <= self._ref_errors <= self._ref_n <= self.max_reference:
            raise StateError("reference counts out of bounds")
        # (Older states have no "ready": their reference was complete at reference_size.)
        if state.get("ready", self._ref_n >= self.reference_size):
            if self._ref_n < self.reference_size:
                raise StateError("reference counts out of bounds")
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
        self._change_index = int(state["change_index"])
        # (States saved before escalations existed have none of these: an episode's level is
        # then unknown and escalations are judged against the reference.)
        decision = state.get("decision", [0.0, 0.0])
        self._decision = (float(decision[0]), float(decision[1]))
        errors, n = (int(x) for x in state.get("level", [0, 0]))
        if not 0 <= errors <= n:
            raise StateError("episode level out of bounds")
        self._level = (errors, n)
        watch = state.get("watch")
        if watch is not None:
            self._watch_rate, self._watch_scale = float(watch[0]), float(watch[1])
            if not (0 <= self._watch_rate <= 1 and 0 < self._watch_scale <= 1):
                raise StateError("watched rate out of bounds")
