"""One binary classifier version's estimated performance: its calibration, the window of
predictions the estimate is taken over, the estimate's reference, and how wrong it has been.

**Calibration.** The version's first ``reference_size`` labelled outcomes with a score (at
least ``min_class_outcomes`` of each class among them; the reference grows up to ten times
that to find them) are its reference. The calibration (:class:`IsotonicCalibration`) is
cross-fitted first: each half of the reference calibrated by the other, the out-of-fold
estimate must be within ``tolerance`` of what the reference realised (F1 and accuracy; a gap
beyond it must also be beyond the estimate's sampling error, z(0.99)), and the scores must
order the labels at all (ROC AUC >= 0.55). Then it is learned on the whole reference. Otherwise
estimation is *off* for the version, with the reason: ``too_few_labels``,
``uninformative_scores``, ``poor_calibration``.

**Estimate.** Over the last ``window`` predictions (labelled or not) from calibration on; every
``check_every`` predictions (counted, so a replay and the live service check at the same
events) the estimate (:func:`~detectors.estimation.estimate_binary`) is compared with the
reference's (the same estimate over the reference outcomes): *degraded* when the estimated
``metric`` is significantly below ``reference - min_drop``,
``z = (line - estimate) / sqrt(s^2 + s_ref^2) > z(1 - alpha)`` with ``s`` the spread of each
estimate (:mod:`detectors.estimation`); clear again once the estimate is back above the line.
What ``/metrics`` shows is kept as the window's five running sums
(:func:`~detectors.estimation.window_sums`: a scrape of a thousand models reads numbers, not
windows), with ROC AUC taken at every check that ends a quarter window.

**Honesty.** From calibration on, labelled outcomes are gathered in blocks of ``window``: each
block's estimate (from its calibrated scores) is compared with what it realised, and the mean
absolute gap per metric is the running estimation error.

Examples
--------
>>> import numpy as np
>>> from detectors.config_sections import EstimationConfig
>>> rng = np.random.default_rng(1)
>>> estimator = PerformanceEstimator(EstimationConfig(reference_size=2000, window=500))
>>> for score in rng.beta(2, 2, 2000).tolist():  # labelled outcomes of a calibrated model
...     estimator.add_outcome(score, score > 0.5, bool(rng.random() < score))
>>> estimator.status
'on'
>>> verdicts = estimator.add_predictions(list(range(1000)), rng.beta(2, 2, 1000).tolist(), None)
>>> round(estimator.estimate().values["f1"], 2), round(estimator.reference.values["f1"], 2)
(0.7, 0.7)
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, ClassVar

import numpy as np

from detectors.base import StateError
from detectors.calibration import IsotonicCalibration
from detectors.config_sections import EstimationConfig
from detectors.estimation import (
    Estimate,
    estimate_binary,
    estimate_from_sums,
    estimate_metric,
    expected_auc,
    window_sums,
)
from detectors.saved_state import read_format, stamp
from detectors.score_quality import roc_auc

__all__ = ["EstimateVerdict", "PerformanceEstimator", "STATUSES", "judge"]

#: What a version's estimation is doing (``driftline_model_estimation_status``):
#: ``no_features`` is a regression version's (:mod:`detectors.loss_estimator`).
STATUSES = (
    "collecting",
    "on",
    "too_few_labels",
    "uninformative_scores",
    "poor_calibration",
    "no_features",
)
#: Metrics whose running estimation error is kept.
_ERROR_METRICS = ("accuracy", "f1")


@dataclass(frozen=True, slots=True)
class EstimateVerdict:
    """A check of the estimate against its reference."""

    metric: str
    value: float
    line: float
    reference: float
    z: float
    critical: float
    degraded: bool
    #: Event time of the prediction the check was made at.
    at: int
    #: Event time of the first check of this run below the line (the estimate's change).
    since: int
    #: A regression version's (estimated MAE, above its line when worse): the share of the
    #: window's predictions with an input beyond the reference's range (None: a classifier's).
    outside: float | None = None

    @property
    def below_since(self) -> int | None:
        """The run beyond the line (below it; above it for an error) this check is part of
        (None: not beyond it)."""
        return self.since if self.z > 0 else None


def judge(
    config: EstimationConfig,
    reference: Estimate,
    value: float,
    spread: float,
    degraded: bool,
    below_since: int | None,
    at: int,
) -> EstimateVerdict:
    """A check of an estimated ``config.metric`` (``value``, with its ``spread``) against the
    reference's, at event time ``at``, for an estimate ``degraded`` or not until now and below
    its line since ``below_since``: degraded past the critical value, clear once back above the
    line."""
    metric = config.metric
    ref = reference.values[metric]
    line = ref - config.min_drop
    spread = math.hypot(spread, reference.spread[metric])
    z = (line - value) / spread if spread > 0 else 0.0
    critical = NormalDist().inv_cdf(1.0 - config.alpha)
    degraded = z > critical if not degraded else z > 0.0
    since = at if below_since is None or z <= 0 else below_since
    return EstimateVerdict(metric, value, line, ref, z, critical, degraded, at, since)


class PerformanceEstimator:
    """Estimated performance of one binary version (see the module's docstring).

    Parameters
    ----------
    config
        The model's ``estimation`` settings.
    """

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    STATE_FORMAT: ClassVar[int] = 1

    def __init__(self, config: EstimationConfig) -> None:
        self.config = config
        self.status = "collecting"
        self.calibration: IsotonicCalibration | None = None
        #: Event time estimation started: only later predictions enter the window (whichever
        #: batch they came in, as events come in time order).
        self.on_since = 0
        #: The estimate over the reference outcomes (what the window's is judged against).
        self.reference: Estimate | None = None
        # The reference outcomes: score, predicted positive, label positive.
        self._ref_scores = array("d")
        self._ref_predicted = bytearray()
        self._ref_positive = bytearray()
        # The window of predictions (a ring, from calibration on).
        size = config.window
        self._scores = np.zeros(size)
        self._predicted = np.zeros(size, dtype=np.bool_)
        # Their calibrated probabilities, and the window's sums of them (window_sums): a scrape
        # reads the estimate from five numbers, not the window (ROC AUC, a sort, at most every
        # quarter window: _auc, and the predictions count it was taken at).
        self._calibrated = np.zeros(size)
        self._sums = np.zeros(5)
        self._auc: tuple[float, float, int] | None = None
        self._next = 0
        self.n = 0
        self.predictions = 0  # since calibration: the check cadence
        self.degraded = False
        self.below_since: int | None = None
        self._cached: Estimate | None = None
        # The running estimation error: a block of labelled outcomes (scores, predicted
        # positives, positives), and per metric the sum of absolute gaps and the blocks compared.
        self._block: tuple[list[float], list[bool], list[bool]] = ([], [], [])
        self.error_sums = dict.fromkeys(_ERROR_METRICS, 0.0)
        self.error_blocks = 0

    # -- labelled outcomes --------------------------------------------------------------------

    def add_outcome(self, score: float, predicted: bool, positive: bool, at: int = 0) -> None:
        """A labelled outcome with its score, whether it was predicted positive, and whether
        its label is positive, decided at event time ``at``."""
        if self.status == "collecting":
            self._ref_scores.append(score)
            self._ref_predicted.append(predicted)
            self._ref_positive.append(positive)
            self._maybe_calibrate()
            if self.status == "on":
                self.on_since = at
        elif self.status == "on":
            scores, predictions, positives = self._block
            scores.append(score)
            predictions.append(predicted)
            positives.append(positive)
            if len(scores) >= self.config.window:
                self._compare_block()

    def _maybe_calibrate(self) -> None:
        config = self.config
        n = len(self._ref_scores)
        if n < config.reference_size:
            return
        positive = np.frombuffer(self._ref_positive, dtype=np.bool_)
        positives = int(positive.sum())
        if min(positives, n - positives) < config.min_class_outcomes:
            if n >= 10 * config.reference_size:
                self._off("too_few_labels")
            return
        scores = np.frombuffer(self._ref_scores, dtype=np.float64)
        predicted = np.frombuffer(self._ref_predicted, dtype=np.bool_)
        auc = roc_auc(scores, positive)
        if auc is None or auc < 0.55:
            self._off("uninformative_scores")
            return
        # Cross-fit: each half calibrated by the other; the out-of-fold estimate against what
        # the reference realised. Off when the gap is material and beyond its sampling error.
        halves = (slice(0, None, 2), slice(1, None, 2))
        out_of_fold = np.empty(n)
        for fit, held in (halves, halves[::-1]):
            out_of_fold[held] = IsotonicCalibration.fit(scores[fit], positive[fit])(scores[held])
        estimate = estimate_binary(out_of_fold, predicted)
        realised = _realised(predicted, positive)
        critical = NormalDist().inv_cdf(0.99)
        poor = [
            m
            for m in _ERROR_METRICS
            if m not in estimate.values
            or m not in realised
            or abs(estimate.values[m] - realised[m]) - config.tolerance
            > critical * estimate.stderr[m]
        ]
        if poor:
            self._off("poor_calibration")
            return
        self.calibration = IsotonicCalibration.fit(scores, positive)
        self.reference = estimate_binary(self.calibration(scores), predicted, scores)
        self.status = "on"
        self._release_reference()

    def _off(self, reason: str) -> None:
        self.status = reason
        self._release_reference()

    def _release_reference(self) -> None:
        self._ref_scores, self._ref_predicted, self._ref_positive = (
            array("d"),
            bytearray(),
            bytearray(),
        )

    def _compare_block(self) -> None:
        assert self.calibration is not None
        block, self._block = self._block, ([], [], [])
        scores = np.array(block[0])
        predicted = np.array(block[1], dtype=np.bool_)
        positive = np.array(block[2], dtype=np.bool_)
        estimate = estimate_binary(self.calibration(scores), predicted)
        realised = _realised(predicted, positive)
        for metric in _ERROR_METRICS:
            if metric in estimate.values and metric in realised:
                self.error_sums[metric] += abs(estimate.values[metric] - realised[metric])
        self.error_blocks += 1

    def estimation_error(self) -> dict[str, float]:
        """Mean absolute gap between estimate and realised metric over the blocks compared."""
        if not self.error_blocks:
            return {}
        return {m: total / self.error_blocks for m, total in self.error_sums.items()}

    # -- predictions ----------------------------------------------------------------------------

    @property
    def on(self) -> bool:
        return self.status == "on"

    def add_predictions(
        self, times: list[int], scores: list[float], predicted: list[bool] | None
    ) -> list[EstimateVerdict]:
        """A batch of predictions (``predicted``: which are the positive class; None: the
        scores above one half), once on; return the checks made (one per ``check_every``)."""
        if not self.on:
            return []
        at = np.asarray(times, dtype=np.int64)
        values = np.asarray(scores, dtype=np.float64)
        flags = values > 0.5 if predicted is None else np.asarray(predicted, dtype=np.bool_)
        if at[0] <= self.on_since:  # (only around calibration: later events come later)
            keep = at > self.on_since
            at, values, flags = at[keep], values[keep], flags[keep]
        size, every = self.config.window, self.config.check_every
        verdicts = []
        done, total = 0, len(values)
        while done < total:
            # up to the next check
            take = min(every - self.predictions % every, total - done)
            self._write(values[done : done + take], flags[done : done + take])
            done += take
            self.predictions += take
            self.n = min(size, self.n + take)
            self._cached = None
            if self.predictions % every == 0 and self.n == size:
                verdict = self.check(int(at[done - 1]))
                if verdict is not None:
                    verdicts.append(verdict)
        return verdicts

    def _write(self, values: np.ndarray, flags: np.ndarray) -> None:
        """Into the ring, from its next slot, wrapping (at most one window at a time); the
        window's sums follow (what leaves out, what comes in)."""
        assert self.calibration is not None
        size, start = self.config.window, self._next
        values, flags = values[-size:], flags[-size:]
        calibrated = self.calibration(values)
        first = min(len(values), size - start)
        rest = len(values) - first
        parts = (
            (slice(start, start + first), slice(0, first)),
            (slice(0, rest), slice(first, None)),
        )
        for wrapped, (ring_part, part) in enumerate(parts):
            # The slots from the next one on are empty until the window is full; once it
            # wraps, they hold the oldest predictions, which leave.
            if self.n == size or (wrapped and rest):
                self._sums -= window_sums(self._calibrated[ring_part], self._predicted[ring_part])
            self._scores[ring_part] = values[part]
            self._predicted[ring_part] = flags[part]
            self._calibrated[ring_part] = calibrated[part]
            self._sums += window_sums(calibrated[part], flags[part])
        self._next = (start + len(values)) % size

    def _window(self) -> tuple[np.ndarray, np.ndarray]:
        """The window's scores and predicted positives, oldest first (sums in the same order
        before and after a restart: the same bits)."""
        order = np.r_[self._next : self.config.window, 0 : self._next]
        return self._scores[order], self._predicted[order]

    def estimate(self) -> Estimate | None:
        """The estimate over the window (None until it is full, or when off): from its sums;
        ROC AUC as the last check that ended a quarter window found it."""
        if self._cached is not None:
            return self._cached
        if self.calibration is None or self.n < self.config.window:
            return None
        estimate = estimate_from_sums(self.n, self._sums)
        auc = self._auc
        if auc is not None:
            estimate.values["roc_auc"] = auc[0]
            estimate.stderr["roc_auc"] = estimate.spread["roc_auc"] = auc[1]
        self._cached = estimate
        return estimate

    def check(self, at: int) -> EstimateVerdict | None:
        reference = self.reference
        if self.calibration is None or reference is None or self.n < self.config.window:
            return None
        metric = self.config.metric
        scores, predicted = self._window()
        # (Only the metric watched: a check every check_every predictions stays ~30 us.)
        calibrated = self.calibration(scores)
        # ROC AUC (a sort) for /metrics: at every check that ends a quarter window, the same
        # checks whatever the batches.
        every = self.config.check_every
        if (self.predictions // every) % max(1, self.config.window // 4 // every) == 0:
            found = expected_auc(scores, calibrated)
            self._auc = None if found is None else (*found, self.predictions)
        estimated = estimate_metric(calibrated, predicted, metric, scores)
        if estimated is None or metric not in reference.values:
            return None
        verdict = judge(self.config, reference, *estimated, self.degraded, self.below_since, at)
        self.degraded = verdict.degraded
        self.below_since = verdict.below_since
        return verdict

    # -- state ----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        order = (
            list(range(self._next, self.config.window)) + list(range(self._next))
            if self.n == self.config.window
            else list(range(self.n))
        )
        reference = self.reference
        return stamp(
            self.STATE_FORMAT,
            {
                "status": self.status,
                "on_since": self.on_since,
                "calibration": None if self.calibration is None else self.calibration.to_state(),
                "reference": None if reference is None else reference.to_state(),
                "collected": [
                    list(self._ref_scores),
                    "".join("1" if v else "0" for v in self._ref_predicted),
                    "".join("1" if v else "0" for v in self._ref_positive),
                ],
                "window": [
                    self._scores[order].tolist(),
                    "".join("1" if flag else "0" for flag in self._predicted[order].tolist()),
                ],
                "predictions": self.predictions,
                "sums": self._sums.tolist(),
                "auc": None if self._auc is None else list(self._auc),
                "degraded": self.degraded,
                "below_since": self.below_since,
                "block": [[s, p, y] for s, p, y in zip(*self._block, strict=True)],
                "error_sums": self.error_sums,
                "error_blocks": self.error_blocks,
            },
        )

    def load_state(self, state: dict[str, Any]) -> None:
        read_format(state, "PerformanceEstimator", self.STATE_FORMAT)
        config = self.config
        status = str(state["status"])
        if status not in STATUSES:
            raise StateError(f"unknown estimation status {status!r}")
        calibration = state["calibration"]
        reference = state["reference"]
        if (status == "on") != (calibration is not None and reference is not None):
            raise StateError("estimation is on exactly when it has a calibration and reference")
        scores, predicted, positive = state["collected"]
        window_scores, window_predicted = state["window"]
        bits = predicted + positive + window_predicted
        if (
            not len(scores) == len(predicted) == len(positive) <= 10 * config.reference_size
            or len(window_scores) != len(window_predicted)
            or len(window_scores) > config.window
            or len(state["block"]) >= config.window
            or set(bits) - {"0", "1"}
        ):
            raise StateError("estimation state out of bounds")
        values = [float(v) for v in scores] + [float(v) for v in window_scores]
        if not all(0.0 <= v <= 1.0 for v in values):
            raise StateError("scores must be probabilities")
        self.__init__(config)  # type: ignore[misc]
        self.status = status
        self.on_since = int(state["on_since"])
        if calibration is not None:
            self.calibration = IsotonicCalibration.from_state(calibration)
        if reference is not None:
            self.reference = Estimate.from_state(reference)
        self._ref_scores = array("d", (float(v) for v in scores))
        self._ref_predicted = bytearray(c == "1" for c in predicted)
        self._ref_positive = bytearray(c == "1" for c in positive)
        count = len(window_scores)
        self._scores[:count] = [float(v) for v in window_scores]
        self._predicted[:count] = [flag == "1" for flag in window_predicted]
        self._next, self.n = count % config.window, count
        if self.calibration is not None and count:
            self._calibrated[:count] = self.calibration(self._scores[:count])
            saved = state.get("sums")
            self._sums = (
                np.array([float(v) for v in saved])
                if saved is not None and len(saved) == 5
                else window_sums(self._calibrated[:count], self._predicted[:count])
            )
        self.predictions = int(state["predictions"])
        auc = state.get("auc")
        if auc is not None:
            self._auc = (float(auc[0]), float(auc[1]), int(auc[2]))
        self.degraded = bool(state["degraded"])
        below = state["below_since"]
        self.below_since = None if below is None else int(below)
        block = state["block"]
        self._block = (
            [float(s) for s, _, _ in block],
            [bool(p) for _, p, _ in block],
            [bool(y) for _, _, y in block],
        )
        self.error_sums = {m: float(state["error_sums"][m]) for m in _ERROR_METRICS}
        self.error_blocks = int(state["error_blocks"])


def _realised(predicted: np.ndarray, positive: np.ndarray) -> dict[str, float]:
    """The metrics a set of labelled outcomes realised."""
    tp = int(np.count_nonzero(predicted & positive))
    fp = int(np.count_nonzero(predicted & ~positive))
    fn = int(np.count_nonzero(~predicted & positive))
    n = len(predicted)
    out = {"accuracy": (n - fp - fn) / n} if n else {}
    if 2 * tp + fp + fn:
        out["f1"] = 2 * tp / (2 * tp + fp + fn)
    return out
