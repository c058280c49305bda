"""Has a model version's probability-score quality degraded against its own reference?

``metrics.signal`` chooses what ``performance_degradation`` watches: ``f1`` (the default: F1,
recall and precision of a binary model, accuracy of a multiclass one, see
:mod:`detectors.performance`) or one score metric of :mod:`detectors.score_quality` /
:mod:`detectors.class_score_quality`, tested here: ``roc_auc``, ``log_loss``, ``brier`` or
``calibration_error``. Regression models are always watched on RMSE.

**Reference.** The version's first three disjoint windows of ``window`` scored outcomes each
(``metrics.window``: the score metrics' own window) that hold the evidence the metric needs
(ROC AUC: defined, with at least ``min_evidence`` positives and as many negatives over its
classes); a window that does not is passed over, up to ``max_reference`` scored outcomes
(then the version is *starved* and never judged). The reference ``r`` is the mean of their
three values, its variance ``v_ref`` the mean of their variances over 3: a third of one
window's. Windows of the same length on both sides: a metric's bias on a finite window (the
ECE's is upward) is the same in the reference and the window, and cancels in the test. A
version that turns multiclass starts its reference afresh.

**Window.** The score metrics' current window, judged once it holds only outcomes after the
reference (``window`` of them), every 10 outcomes as the other performance checks. Its value
``w`` and variance ``v_now``:

============================  ==================================  ============================
metric                        value                               variance of the value
============================  ==================================  ============================
``log_loss``, ``brier``       mean of the per-outcome terms       sample variance / n (Welch)
``roc_auc``                   Mann-Whitney AUC (multiclass: the   Hanley-McNeil, per class:
                              mean over its classes)              ``(A(1-A) + (n1-1)(Q1-A^2) +
                                                                  (n0-1)(Q2-A^2)) / (n1 n0)``,
                                                                  ``Q1 = A/(2-A)``,
                                                                  ``Q2 = 2A^2/(1+A)``; the
                                                                  mean's: ``sum / K^2``
``calibration_error``         ECE over 10 bins                    delta method, the bins'
                                                                  gaps independent:
                                                                  ``sum_b n_b s_b^2 / n^2``,
                                                                  ``s_b^2`` the sample
                                                                  variance of ``y - p`` (top
                                                                  label: ``correct - conf``)
                                                                  in bin ``b``
============================  ==================================  ============================

**Degraded** when ``w`` is significantly worse than the line: a one-sided z test,
``z = (w - line) / sqrt(v_now + c^2 v_ref) > z(1 - alpha)`` (for ROC AUC, higher is better:
``(line - w)``), ``c`` the line's slope in ``r``. Lines, the smallest change that matters:

* ``log_loss``, ``brier``: ``(1 + loss_relative_rise) r`` (``c = 1 + loss_relative_rise``);
* ``roc_auc``: ``r - auc_drop``;
* ``calibration_error``: ``r + calibration_margin``.

**Resolved** only when ``w`` is significantly *better* than that line: the same test the
other way, ``-z > z(0.95)`` (one-sided 5 %). Not F1's "at ``alpha``, past the line halfway
back" (:mod:`detectors.performance`): on a window of ``metrics.window`` outcomes these
metrics' standard errors are about half the margins (ROC AUC ~0.016 at 1,000 outcomes), so a
model back to its reference would sit less than one standard error past a halfway line, and
never resolve. Firing needs ``z > z(1 - alpha)`` (3.09 SE worse than the line at the default
``alpha``), resolving 1.64 SE better: ~4.7 standard errors apart, no flapping.

Examples
--------
>>> import random
>>> from detectors.score_quality import ScoreQuality
>>> rng = random.Random(1)
>>> quality, test = ScoreQuality(window=500), ScoreTest("roc_auc", window=500)
>>> def outcome(noise):
...     positive = rng.random() < 0.3
...     score = min(1.0, max(0.0, 0.35 + 0.3 * positive + rng.gauss(0, noise)))
...     quality.update(score, positive)
...     test.observe(quality)
>>> for _ in range(2_000):
...     outcome(0.15)
>>> verdict = test.check()
>>> verdict.degraded, round(verdict.value, 2), round(verdict.line, 2)
(False, 0.92, 0.89)
>>> for _ in range(1_000):  # noisier scores
...     outcome(0.4)
>>> verdict = test.check()
>>> verdict.degraded, round(verdict.value, 2), round(verdict.line, 2)
(True, 0.77, 0.89)
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, ClassVar, Final

import numpy as np

from detectors.base import StateError
from detectors.class_score_quality import ClassScoreQuality
from detectors.performance import Verdict
from detectors.saved_state import read_format, stamp
from detectors.score_quality import ScoreQuality, hanley_mcneil

__all__ = ["SCORE_SIGNALS", "ScoreTest"]

#: The score metrics ``metrics.signal`` may name.
SCORE_SIGNALS: Final = ("roc_auc", "log_loss", "brier", "calibration_error")

# Quality kinds, one reference each (a version that turns multiclass starts afresh).
_KINDS: Final = {ScoreQuality: "binary", ClassScoreQuality: "multiclass"}
# Disjoint windows the reference is the mean of.
_REFERENCE_WINDOWS: Final = 3
# One-sided significance of a recovery (see the module's docstring).
_RECOVERY_ALPHA: Final = 0.05


class ScoreTest:
    """Degradation of one version's score ``metric`` against its own reference.

    Parameters
    ----------
    metric
        One of :data:`SCORE_SIGNALS`.
    auc_drop
        The smallest drop of ROC AUC that matters.
    loss_relative_rise
        The smallest relative rise of log loss or Brier score that matters.
    calibration_margin
        The smallest rise of the calibration error that matters.
    alpha
        One-sided significance of each decision.
    min_evidence
        Positives and negatives the reference's ROC AUC must rest on.
    window
        The score metrics' window (outcomes): the reference and the judged window alike.
    max_reference
        Most scored outcomes the reference waits for its evidence.
    """

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    STATE_FORMAT: ClassVar[int] = 1

    def __init__(
        self,
        metric: str,
        auc_drop: float = 0.03,
        loss_relative_rise: float = 0.15,
        calibration_margin: float = 0.03,
        alpha: float = 1e-3,
        min_evidence: int = 50,
        window: int = 1000,
        max_reference: int = 100_000,
    ) -> None:
        if metric not in SCORE_SIGNALS:
            raise ValueError(f"metric must be one of {', '.join(SCORE_SIGNALS)}, got {metric!r}")
        if not 0 < auc_drop < 0.5 or loss_relative_rise <= 0 or not 0 < calibration_margin < 1:
            raise ValueError(
                "need 0 < auc_drop < 0.5, loss_relative_rise > 0 and 0 < calibration_margin < 1"
            )
        if not 0 < alpha < 0.5 or min_evidence < 1 or not 2 <= window <= max_reference:
            raise ValueError(
                "need 0 < alpha < 0.5, min_evidence >= 1, 2 <= window <= max_reference"
            )
        self.metric = metric
        self.auc_drop = auc_drop
        self.loss_relative_rise = loss_relative_rise
        self.calibration_margin = calibration_margin
        self.alpha = alpha
        self.min_evidence = min_evidence
        self.window = window
        self.max_reference = max_reference
        self._source: ScoreQuality | ClassScoreQuality | None = None
        self._reset(None)

    def _reset(self, kind: str | None) -> None:
        self._kind = kind
        self._seen = 0  # scored outcomes of this kind
        self._frozen_at = 0  # _seen when the reference was taken
        self._collected: list[tuple[float, float]] = []  # (value, variance) of its windows
        self._reference: tuple[float, float] | None = None  # (value, its variance)
        self._degraded = False
        #: The last check's verdict, and the one that found the last degradation over.
        self.last: Verdict | None = None
        self.recovery: Verdict | None = None

    # -- reading -------------------------------------------------------------------------------

    @property
    def watched(self) -> tuple[str, ...]:
        return (self.metric,)

    @property
    def critical(self) -> float:
        return NormalDist().inv_cdf(1 - self.alpha)

    @property
    def ready(self) -> bool:
        return self._reference is not None

    @property
    def degraded(self) -> bool:
        return self._degraded

    @property
    def starved(self) -> bool:
        """No window of the first ``max_reference`` scored outcomes held the evidence."""
        return self._reference is None and self._seen >= self.max_reference

    def evidence(self) -> dict[str, int]:
        """Scored outcomes toward the reference, and windows of them that counted."""
        return {
            "outcomes": self._frozen_at if self._reference is not None else self._seen,
            "windows": len(self._collected),
        }

    # -- updating ------------------------------------------------------------------------------

    # (Decisions are not what this test reads: the score metrics' window is.)
    def update(self, positive: bool, predicted: bool) -> None:
        """A binary outcome's decision: not read (see :meth:`observe`)."""

    def update_correct(self, correct: bool) -> None:
        """A multiclass outcome's decision: not read (see :meth:`observe`)."""

    def observe(self, quality: ScoreQuality | ClassScoreQuality) -> None:
        """``quality`` has just taken a scored outcome: its window is what is judged."""
        self._source = quality
        kind = _KINDS[type(quality)]
        if kind != self._kind:
            self._reset(kind)
        self._seen += 1
        if (
            self._reference is None
            and self._seen % self.window == 0
            and self._seen <= self.max_reference
            and quality.n == self.window
        ):
            statistic = self._statistic(quality, reference=True)
            if statistic is not None:
                collected = self._collected
                collected.append(statistic)
                if len(collected) == _REFERENCE_WINDOWS:
                    value = math.fsum(v for v, _ in collected) / _REFERENCE_WINDOWS
                    variance = math.fsum(v for _, v in collected) / _REFERENCE_WINDOWS**2
                    self._reference = (value, variance)
                    self._frozen_at = self._seen

    def attach(self, quality: ScoreQuality | ClassScoreQuality | None) -> None:
        """The score metrics restored with the version (no outcome)."""
        if quality is not None and _KINDS[type(quality)] == self._kind:
            self._source = quality

    # -- the test ------------------------------------------------------------------------------

    def _statistic(
        self, quality: ScoreQuality | ClassScoreQuality, reference: bool = False
    ) -> tuple[float, float] | None:
        """(value, variance of the value) of the metric over ``quality``'s window; ``None``
        without the evidence it needs."""
        metric = self.metric
        if metric in ("log_loss", "brier"):
            losses = quality.outcome_losses(metric)
            n = len(losses)
            return float(np.mean(losses)), float(np.var(losses, ddof=1)) / n
        if metric == "roc_auc":
            parts = quality.auc_parts()
            if not parts:
                return None
            if reference and (
                sum(p for _, p, _ in parts) < self.min_evidence
                or sum(q for _, _, q in parts) < self.min_evidence
            ):
                return None
            value = math.fsum(a for a, _, _ in parts) / len(parts)
            variance = math.fsum(hanley_mcneil(*part) for part in parts) / len(parts) ** 2
            return value, variance
        which, gaps = quality.calibration_gaps()
        n = len(gaps)
        bins = quality.bins
        counts = np.bincount(which, minlength=bins)
        sums = np.bincount(which, weights=gaps, minlength=bins)
        squares = np.bincount(which, weights=gaps * gaps, minlength=bins)
        value = float(np.abs(sums).sum() / n)
        # per bin, s_b^2 = (sum d^2 - (sum d)^2 / n_b) / (n_b - 1)
        filled = counts > 1
        spread = (squares[filled] - sums[filled] ** 2 / counts[filled]) / (counts[filled] - 1)
        variance = float(np.sum(counts[filled] * np.maximum(spread, 0.0))) / (n * n)
        # (a bin of one outcome: its gap's variance at most 1/4)
        variance += float(np.count_nonzero(counts == 1)) * 0.25 / (n * n)
        return value, variance

    def _line(self, reference: float) -> tuple[float, float]:
        """(line, its slope in the reference): the smallest change that matters away."""
        if self.metric == "roc_auc":
            return reference - self.auc_drop, 1.0
        if self.metric == "calibration_error":
            return reference + self.calibration_margin, 1.0
        factor = 1 + self.loss_relative_rise
        return factor * reference, factor

    def check(self) -> Verdict | None:
        """Judge the window now; ``None`` while warming up, until the window holds only
        outcomes after the reference, or without the evidence the metric needs. Updates
        :attr:`degraded`."""
        quality = self._source
        if (
            self._reference is None
            or quality is None
            or self._seen - self._frozen_at < self.window
            or quality.n < self.window
        ):
            return None
        now = self._statistic(quality)
        if now is None:
            return None
        value, v_now = now
        reference, v_ref = self._reference
        recovering = self._degraded
        line, slope = self._line(reference)
        spread = math.sqrt(v_now + slope * slope * v_ref) or 1e-300
        worse = (line - value) if self.metric == "roc_auc" else (value - line)  # > 0: worse
        if recovering:
            critical = NormalDist().inv_cdf(1 - _RECOVERY_ALPHA)
            z = -worse / spread
            degraded = not z > critical
        else:
            critical = self.critical
            z = worse / spread
            degraded = z > critical
        verdict = Verdict(
            metric=self.metric,
            value=value,
            line=line,
            reference=reference,
            z=z,
            critical=critical,
            degraded=degraded,
            outcomes=quality.n,
            reference_outcomes=self.window,
        )
        if self._degraded and not degraded:
            self.recovery = verdict
        self._degraded = degraded
        self.last = verdict
        return verdict

    def change_point(self) -> int:
        """Outcomes ago where the change began: the window's start (as for RMSE)."""
        return self._source.n if self._source is not None else 0

    # -- state ---------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return stamp(
            self.STATE_FORMAT,
            {
                "signal": self.metric,
                "kind": self._kind,
                "seen": self._seen,
                "frozen_at": self._frozen_at,
                "collected": [list(pair) for pair in self._collected],
                "reference": None if self._reference is None else list(self._reference),
                "degraded": self._degraded,
            },
        )

    def load_state(self, state: dict[str, Any]) -> None:
        read_format(state, "ScoreTest", self.STATE_FORMAT)
        if state.get("signal") != self.metric:
            raise StateError(f"a {state.get('signal')!r} score test, not {self.metric!r}")
        kind = state["kind"]
        if kind not in (None, *_KINDS.values()):
            raise StateError(f"unknown score kind {kind!r}")
        seen, frozen_at = int(state["seen"]), int(state["frozen_at"])
        if not 0 <= frozen_at <= seen:
            raise StateError("score test counts out of bounds")
        collected = [_pair(pair) for pair in state["collected"]]
        if len(collected) > _REFERENCE_WINDOWS:
            raise StateError("score test reference out of bounds")
        reference = state["reference"]
        if reference is not None:
            reference = _pair(reference)
        self._reset(kind)
        self._seen, self._frozen_at = seen, frozen_at
        self._collected, self._reference = collected, reference
        self._degraded = bool(state["degraded"]) and reference is not None


def _pair(saved: Any) -> tuple[float, float]:
    """A saved (value, variance)."""
    if not isinstance(saved, list) or len(saved) != 2:
        raise StateError("score test reference out of bounds")
    value, variance = (float(x) for x in saved)
    if not (math.isfinite(value) and math.isfinite(variance) and variance >= 0):
        raise StateError("score test reference out of bounds")
    return value, variance
