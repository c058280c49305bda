"""One multiclass classifier version's estimated performance, from the class -> probability
maps of its predictions: the multiclass counterpart of :mod:`detectors.estimator`, with the same
statuses, checks and honesty.

**Classes.** The classes of the reference's maps and labels, the first ``MAX_CLASSES`` seen,
fixed at calibration: a prediction's probabilities of other classes are not read (a calibrated
row is scaled to sum to 1), and a prediction of a class outside them is left out of the window.

**Calibration.** The version's first ``reference_size`` labelled outcomes with a map (two
classes at least with ``min_class_outcomes`` labels each among them; the reference grows up to
twice that to find them, then estimation is off: ``too_few_labels``) are its reference: one
isotonic map per class, that class against the rest, rows scaled to sum to 1
(:class:`~detectors.calibration.ClassCalibration`). Cross-fitted first, as the binary one: the
out-of-fold estimate of accuracy and macro F1 within ``tolerance`` of what the reference
realised (or within its sampling error), and the macro one-vs-rest ROC AUC of the raw scores at
least 0.55; otherwise off (``poor_calibration``, ``uninformative_scores``).

**Estimate.** Over the last ``window`` predictions (from calibration on), every
``check_every`` predictions: accuracy, and the macro means over the classes of the one-vs-rest
precision, recall, F1 and ROC AUC (:func:`~detectors.estimation.estimate_multiclass`), judged
against the reference's as a binary version's (:func:`~detectors.estimator.judge`). What
``/metrics`` shows is the last check's estimate (at most ``check_every`` predictions old); ROC
AUC is taken at the checks that end a quarter window, unless it is the metric watched.

**Honesty.** Labelled outcomes in blocks of ``window``: each block's estimate against what it
realised (accuracy, and macro F1 over the classes, a class without a label or a prediction in
the block counting 0), the mean absolute gap per metric the running estimation error.

Memory: ``8 K`` bytes a prediction in the window and an outcome in the reference or a block,
``K`` the classes (at most ``MAX_CLASSES``): with the defaults and 16 classes, 128 kB a version
(the reference, 256 to 512 kB, is released at calibration).

Examples
--------
>>> import numpy as np
>>> from detectors.config_sections import EstimationConfig
>>> rng = np.random.default_rng(3)
>>> def calibrated_outcome():  # a calibrated 3-class model: the label drawn from its scores
...     p = rng.dirichlet([0.7, 0.7, 0.7])
...     scores = {name: float(v) for name, v in zip("abc", p)}
...     return scores, "abc"[int(p.argmax())], "abc"[int(rng.choice(3, p=p))]
>>> estimator = ClassPerformanceEstimator(EstimationConfig(window=500))
>>> for _ in range(2000):
...     estimator.add_outcome(*calibrated_outcome())
>>> estimator.status, estimator.classes
('on', ['a', 'b', 'c'])
>>> maps, predicted = zip(*[calibrated_outcome()[:2] for _ in range(1000)])
>>> verdicts = estimator.add_predictions(list(range(1, 1001)), list(maps), list(predicted))
>>> estimate = estimator.estimate()
>>> abs(estimate.values["accuracy"] - estimator.reference.values["accuracy"]) < 0.05
True
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Any, ClassVar

import numpy as np

from detectors.base import StateError
from detectors.calibration import ClassCalibration
from detectors.config_sections import EstimationConfig
from detectors.estimation import Estimate, estimate_multiclass
from detectors.estimator import STATUSES, EstimateVerdict, judge
from detectors.saved_state import read_format, stamp
from detectors.score_quality import roc_auc

__all__ = ["MAX_CLASSES", "ClassPerformanceEstimator"]

#: Most classes a multiclass version's estimate tracks.
MAX_CLASSES = 16
#: Metrics whose running estimation error is kept.
_ERROR_METRICS = ("accuracy", "f1")


class ClassPerformanceEstimator:
    """Estimated performance of one multiclass version (see the module's docstring).

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
        self.classes: list[str] = []
        self._index: dict[str, int] = {}
        self.calibration: ClassCalibration | None = None
        #: Event time estimation started: only later predictions enter the window.
        self.on_since = 0
        self.reference: Estimate | None = None
        # Reference outcomes: rows of class scores (a class first seen later reads 0 in the
        # rows before it), the predicted and the label class index (-1: not tracked).
        self._ref_rows: list[list[float]] = []
        self._ref_predicted: list[int] = []
        self._ref_labels: list[int] = []
        # The window (a ring of raw score rows, from calibration on) and its last estimate.
        self._scores = np.zeros((0, 0))
        self._predicted = np.zeros(0, dtype=np.int64)
        self._next = 0
        self.n = 0
        self.predictions = 0  # since calibration: the check cadence
        self._last: Estimate | None = None
        self._auc: tuple[float, float] | None = None
        self.degraded = False
        self.below_since: int | None = None
        # The running estimation error: a block of labelled outcomes, the gaps found so far.
        self._block: tuple[list[dict[str, float]], list[int], list[int]] = ([], [], [])
        self.error_sums = dict.fromkeys(_ERROR_METRICS, 0.0)
        self.error_blocks = 0

    @property
    def on(self) -> bool:
        return self.status == "on"

    def _row(self, scores: dict[str, float]) -> list[float]:
        return [scores.get(name, 0.0) for name in self.classes]

    # -- labelled outcomes --------------------------------------------------------------------

    def add_outcome(
        self, scores: dict[str, float], predicted: str, label: str, at: int = 0
    ) -> None:
        """A labelled outcome: its class -> probability ``scores``, the names of its predicted
        and its label's class, decided at event time ``at``."""
        if self.status == "collecting":
            for name in (*scores, predicted, label):
                if name not in self._index and len(self.classes) < MAX_CLASSES:
                    self._index[name] = len(self.classes)
                    self.classes.append(name)
            self._ref_rows.append(self._row(scores))
            self._ref_predicted.append(self._index.get(predicted, -1))
            self._ref_labels.append(self._index.get(label, -1))
            self._maybe_calibrate()
            if self.on:
                self.on_since = at
        elif self.on:
            rows, predictions, labels = self._block
            rows.append(scores)  # (as sent: made a row when the block is compared)
            predictions.append(self._index.get(predicted, -1))
            labels.append(self._index.get(label, -1))
            if len(rows) >= self.config.window:
                self._compare_block()

    def _reference_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        k = len(self.classes)
        scores = np.array([row + [0.0] * (k - len(row)) for row in self._ref_rows])
        return scores, np.array(self._ref_predicted), np.array(self._ref_labels)

    def _maybe_calibrate(self) -> None:
        config = self.config
        n = len(self._ref_rows)
        if n < config.reference_size:
            return
        k = len(self.classes)
        counts = np.bincount(np.array(self._ref_labels) + 1, minlength=k + 1)[1:]
        if k < 2 or int((counts >= config.min_class_outcomes).sum()) < 2:
            if n >= 2 * config.reference_size:
                self._off("too_few_labels")
            return
        scores, predicted, labels = self._reference_arrays()
        if not (predicted >= 0).any():
            self._off("poor_calibration")  # (no tracked prediction to estimate)
            return
        aucs = [
            roc_auc(scores[:, c], labels == c)
            for c in range(k)
            if 0 < counts[c] < n  # (both classes present)
        ]
        known = [a for a in aucs if a is not None]
        if not known or sum(known) / len(known) < 0.55:
            self._off("uninformative_scores")
            return
        halves = (slice(0, None, 2), slice(1, None, 2))
        out_of_fold = np.empty_like(scores)
        for fit, held in (halves, halves[::-1]):
            calibration = ClassCalibration.fit(scores[fit], labels[fit])
            out_of_fold[held] = calibration(scores[held])
        kept = predicted >= 0
        estimate = estimate_multiclass(out_of_fold[kept], predicted[kept])
        realised = _realised(predicted[kept], labels[kept], k)
        critical = NormalDist().inv_cdf(0.99)
        if any(
            m not in estimate.values
            or abs(estimate.values[m] - realised[m]) - config.tolerance
            > critical * estimate.stderr[m]
            for m in _ERROR_METRICS
        ):
            self._off("poor_calibration")
            return
        self.calibration = ClassCalibration.fit(scores, labels)
        self.reference = estimate_multiclass(
            self.calibration(scores[kept]), predicted[kept], scores[kept]
        )
        self.status = "on"
        self._scores = np.zeros((config.window, k))
        self._predicted = np.zeros(config.window, dtype=np.int64)
        self._release_reference()

    def _off(self, reason: str) -> None:
        self.status = reason
        self._release_reference()

    def _release_reference(self) -> None:
        self._ref_rows, self._ref_predicted, self._ref_labels = [], [], []

    def _compare_block(self) -> None:
        assert self.calibration is not None
        block, self._block = self._block, ([], [], [])
        scores = np.array([self._row(row) for row in block[0]])
        predicted, labels = np.array(block[1]), np.array(block[2])
        kept = predicted >= 0
        if not kept.any():
            return
        estimate = estimate_multiclass(self.calibration(scores[kept]), predicted[kept])
        realised = _realised(predicted[kept], labels[kept], len(self.classes))
        for metric in _ERROR_METRICS:
            if metric in estimate.values:
                self.error_sums[metric] += abs(estimate.values[metric] - realised[metric])
        self.error_blocks += 1

    def estimation_error(self) -> dict[str, float]:
        """Mean absolute gap between estimate and realised metric over the blocks compared."""
        if not self.error_blocks:
            return {}
        return {m: total / self.error_blocks for m, total in self.error_sums.items()}

    # -- predictions ----------------------------------------------------------------------------

    def add_predictions(
        self, times: list[int], scores: list[dict[str, float]], predicted: list[Any]
    ) -> list[EstimateVerdict]:
        """A batch of predictions (their class -> probability maps, and the names of their
        predicted classes), once on; return the checks made (one per ``check_every``)."""
        if not self.on:
            return []
        index = self._index
        rows, flags, at = [], [], []
        for ts, row, name in zip(times, scores, predicted, strict=True):
            slot = index.get(name, -1)
            if slot >= 0 and ts > self.on_since:
                rows.append(self._row(row))
                flags.append(slot)
                at.append(ts)
        every, size = self.config.check_every, self.config.window
        verdicts = []
        done, total = 0, len(rows)
        while done < total:
            take = min(every - self.predictions % every, total - done)
            self._write(rows[done : done + take], flags[done : done + take])
            done += take
            self.predictions += take
            self.n = min(size, self.n + take)
            if self.predictions % every == 0 and self.n == size:
                verdict = self.check(at[done - 1])
                if verdict is not None:
                    verdicts.append(verdict)
        return verdicts

    def _write(self, rows: list[list[float]], flags: list[int]) -> None:
        size = self.config.window
        slots = (self._next + np.arange(len(rows))) % size
        self._scores[slots] = rows
        self._predicted[slots] = flags
        self._next = int(slots[-1] + 1) % size

    def _window(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.r_[self._next : self.config.window, 0 : self._next]
        return self._scores[order], self._predicted[order]

    def estimate(self) -> Estimate | None:
        """The estimate of the last check (None before the window's first, or when off)."""
        return self._last

    def check(self, at: int) -> EstimateVerdict | None:
        reference = self.reference
        if self.calibration is None or reference is None or self.n < self.config.window:
            return None
        metric = self.config.metric
        scores, predicted = self._window()
        every = self.config.check_every
        with_auc = (
            metric == "roc_auc"
            or (self.predictions // every) % max(1, self.config.window // 4 // every) == 0
        )
        estimate = estimate_multiclass(
            self.calibration(scores), predicted, scores if with_auc else None
        )
        if with_auc:
            auc = estimate.values.get("roc_auc")
            self._auc = None if auc is None else (auc, estimate.stderr["roc_auc"])
        elif self._auc is not None:
            estimate.values["roc_auc"] = self._auc[0]
            estimate.stderr["roc_auc"] = estimate.spread["roc_auc"] = self._auc[1]
        self._last = estimate
        if metric not in estimate.values or metric not in reference.values:
            return None
        verdict = judge(
            self.config,
            reference,
            estimate.values[metric],
            estimate.spread[metric],
            self.degraded,
            self.below_since,
            at,
        )
        self.degraded = verdict.degraded
        self.below_since = verdict.below_since
        return verdict

    # -- state ----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        scores, predicted = (
            self._window()
            if self.n == self.config.window
            else (
                self._scores[: self.n],
                self._predicted[: self.n],
            )
        )
        return stamp(
            self.STATE_FORMAT,
            {
                "status": self.status,
                "classes": self.classes,
                "on_since": self.on_since,
                "calibration": None if self.calibration is None else self.calibration.to_state(),
                "reference": None if self.reference is None else self.reference.to_state(),
                "collected": [self._ref_rows, self._ref_predicted, self._ref_labels],
                "window": [scores.tolist(), predicted.tolist()],
                "predictions": self.predictions,
                "last": None if self._last is None else self._last.to_state(),
                "auc": None if self._auc is None else list(self._auc),
                "degraded": self.degraded,
                "below_since": self.below_since,
                "block": [
                    [self._row(row) for row in self._block[0]],
                    self._block[1],
                    self._block[2],
                ],
                "error_sums": self.error_sums,
                "error_blocks": self.error_blocks,
            },
        )

    def load_state(self, state: dict[str, Any]) -> None:
        read_format(state, "ClassPerformanceEstimator", self.STATE_FORMAT)
        config = self.config
        status = str(state["status"])
        if status not in STATUSES:
            raise StateError(f"unknown estimation status {status!r}")
        classes = [str(c) for c in state["classes"]]
        calibration, reference = state["calibration"], state["reference"]
        if (status == "on") != (calibration is not None and reference is not None):
            raise StateError("estimation is on exactly when it has a calibration and reference")
        rows, ref_predicted, ref_labels = state["collected"]
        window_rows, window_predicted = state["window"]
        block = state["block"]
        k = len(classes)
        if (
            k > MAX_CLASSES
            or len(set(classes)) != k
            or not len(rows) == len(ref_predicted) == len(ref_labels) <= 2 * config.reference_size
            or len(window_rows) != len(window_predicted)
            or len(window_rows) > config.window
            or len(block) != 3
            or not len(block[0]) == len(block[1]) == len(block[2]) < config.window
        ):
            raise StateError("estimation state out of bounds")
        every_row = [*rows, *window_rows, *block[0]]
        if any(len(row) > k for row in every_row) or not all(
            0.0 <= float(v) <= 1.0 for row in every_row for v in row
        ):
            raise StateError("class scores must be probabilities, one per class")
        indices = [*ref_predicted, *ref_labels, *window_predicted, *block[1], *block[2]]
        if not all(-1 <= int(i) < k for i in indices):
            raise StateError("a class index out of range")
        self.__init__(config)  # type: ignore[misc]
        self.status = status
        self.classes = classes
        self._index = {name: i for i, name in enumerate(classes)}
        self.on_since = int(state["on_since"])
        if calibration is not None:
            self.calibration = ClassCalibration.from_state(calibration)
            if len(self.calibration.maps) != k:
                raise StateError("one calibration map per class")
            self._scores = np.zeros((config.window, k))
            self._predicted = np.zeros(config.window, dtype=np.int64)
            count = len(window_rows)
            if count and any(len(row) != k for row in window_rows):
                raise StateError("a window row per class")
            if count:
                self._scores[:count] = window_rows
                self._predicted[:count] = [int(i) for i in window_predicted]
            self._next, self.n = count % config.window, count
        if reference is not None:
            self.reference = Estimate.from_state(reference)
        last = state["last"]
        self._last = None if last is None else Estimate.from_state(last)
        self._ref_rows = [[float(v) for v in row] for row in rows]
        self._ref_predicted = [int(i) for i in ref_predicted]
        self._ref_labels = [int(i) for i in ref_labels]
        self.predictions = int(state["predictions"])
        auc = state["auc"]
        self._auc = None if auc is None else (float(auc[0]), float(auc[1]))
        self.degraded = bool(state["degraded"])
        below = state["below_since"]
        self.below_since = None if below is None else int(below)
        self._block = (
            [{c: float(v) for c, v in zip(classes, row, strict=False)} for row in block[0]],
            [int(i) for i in block[1]],
            [int(i) for i in block[2]],
        )
        self.error_sums = {m: float(state["error_sums"][m]) for m in _ERROR_METRICS}
        self.error_blocks = int(state["error_blocks"])


def _realised(predicted: np.ndarray, labels: np.ndarray, classes: int) -> dict[str, float]:
    """Accuracy and macro F1 over ``classes`` that labelled outcomes realised (a class without
    a label or a prediction among them counts 0)."""
    f1 = []
    for c in range(classes):
        p, y = predicted == c, labels == c
        tp = int(np.count_nonzero(p & y))
        denominator = int(np.count_nonzero(p)) + int(np.count_nonzero(y))
        f1.append(2.0 * tp / denominator if denominator else 0.0)
    return {"accuracy": float(np.mean(predicted == labels)), "f1": float(np.mean(f1))}
