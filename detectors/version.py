"""What driftline tracks per model version: prediction and score drift, concept drift on the
error stream, rolling metrics, the performance test, and when its outcomes were predicted."""

from __future__ import annotations

from array import array
from itertools import repeat
from typing import Any, ClassVar

from detectors.base import StateError
from detectors.categorical import CategoricalDriftDetector
from detectors.class_estimator import ClassPerformanceEstimator
from detectors.class_score_quality import ClassScoreQuality
from detectors.config import ModelConfig
from detectors.error_rate import ErrorRateDriftDetector
from detectors.estimator import PerformanceEstimator
from detectors.factories import (
    categorical_detector,
    concept_detector,
    latency_window,
    numeric_detector,
    performance_test,
)
from detectors.latency import LatencyWindow
from detectors.loss_estimator import LossEstimator
from detectors.metrics import (
    RollingClassification,
    RollingRegression,
    bounded_error,
    class_name,
)
from detectors.numeric import NumericDriftDetector
from detectors.saved_state import read_format, stamp
from detectors.score_quality import ScoreQuality
from detectors.score_test import ScoreTest

__all__ = ["Estimator", "VersionState"]

#: A version's performance estimated before labels.
Estimator = PerformanceEstimator | ClassPerformanceEstimator | LossEstimator

# Outcome times kept per version to date a change point (the retrain window's start): one in
# every _TIME_STRIDE outcomes, the last _OUTCOME_TIMES of those (a performance window holds up
# to 50,000 outcomes when positives are rare).
_OUTCOME_TIMES = 8192
_TIME_STRIDE = 8
_TIME_SPAN = 8  # samples each side of a change point whose median dates it


class VersionState:
    """What is tracked per model version: prediction drift, concept drift, metrics."""

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    STATE_FORMAT: ClassVar[int] = 1

    def __init__(self, version: str, config: ModelConfig, regression: bool, first_seen: int):
        self.version = version
        self.regression = regression
        self.first_seen = first_seen
        self.last_seen = first_seen
        drift = config.prediction_drift
        self.prediction: NumericDriftDetector | CategoricalDriftDetector = (
            numeric_detector(drift) if regression else categorical_detector(drift)
        )
        self.score = numeric_detector(drift)
        self.concept: ErrorRateDriftDetector | NumericDriftDetector = concept_detector(
            config.concept, regression
        )
        metrics = config.metrics
        self.metrics: RollingClassification | RollingRegression = (
            RollingRegression(metrics.window)
            if regression
            else RollingClassification(metrics.window, metrics.positive_label)
        )
        self.performance = performance_test(config, regression)
        self._latency_config = config.latency
        self._metrics_window = metrics.window
        #: ROC AUC, log loss, Brier, calibration, once the version's outcomes carry scores: of a
        #: binary model's probabilities, or a multiclass model's class -> probability maps.
        self.score_quality: ScoreQuality | ClassScoreQuality | None = None
        #: Inference latency, once the version's predictions carry ``latency_ms``.
        self.latency: LatencyWindow | None = None
        #: Its performance estimated before labels (``estimation.enabled``): a classifier's once
        #: its outcomes carry scores (binary, or multiclass from class maps); a regression
        #: version's MAE from the start (off, ``no_features``, when its predictions have none).
        self.estimator: Estimator | None = None
        self._estimation = config.estimation
        if regression and config.estimation.enabled:
            self.estimator = LossEstimator(config.estimation, config.join.ttl)
        self.outcomes = 0
        # Prediction times of every _TIME_STRIDE-th outcome: a ring buffer of _OUTCOME_TIMES, grown
        # as outcomes come (a fleet's versions mostly see far fewer).
        self.outcome_times = array("q")

    @property
    def holds_rows(self) -> bool:
        """Whether its predictions' features are held until their labels (a regression
        version's estimated MAE, while it reads them)."""
        estimator = self.estimator
        return bool(self.regression and estimator is not None and estimator.reading)  # type: ignore[union-attr]

    def add_latencies(self, values: list[float]) -> int:
        """Add ``latency_ms`` values; return how many times the window slid (checks due)."""
        if self.latency is None:
            self.latency = latency_window(self._latency_config)
        return self.latency.update_many(values)

    def record_outcome(
        self,
        prediction: Any,
        label: Any,
        predicted_at: int,
        score: float | dict[str, float] | None = None,
        at: int | None = None,
        prediction_id: str = "",
    ) -> float | None:
        """A labelled outcome into the rolling metrics, the score metrics and the performance
        test; its error (0/1, or absolute for regression), or None when a regression's label or
        prediction is not a number (counted by the caller).

        ``score``: a binary model's probability of its positive class (or a class ->
        probability map, read at the positive class's name), or a multiclass model's class ->
        probability map (a float score says nothing of several classes: not used); ``at``: the
        event time it is decided at (default: ``predicted_at``); ``prediction_id``: the
        prediction's (a regression version's estimator held its features by it)."""
        performance = self.performance
        if self.regression:
            if type(prediction) not in (int, float) or type(label) not in (int, float):
                return None
            signed = bounded_error(label, prediction)
            error = abs(signed)
            self.metrics.update(float(label), float(prediction))
            performance.update_error(signed)
            estimator = self.estimator
            if type(estimator) is LossEstimator and estimator.reading:
                estimator.add_outcome(prediction_id, error, predicted_at if at is None else at)
        else:
            error = 0.0 if prediction == label else 1.0
            metrics = self.metrics
            metrics.update(label, prediction)  # type: ignore[arg-type]
            positive = metrics.positive_class  # type: ignore[union-attr]
            if positive is None:
                performance.update_correct(prediction == label)
                if type(score) is dict:
                    self._class_scores(score, label)
                    if type(performance) is ScoreTest:
                        performance.observe(self.score_quality)  # type: ignore[arg-type]
                    if self._estimation.enabled:
                        self._class_estimate(
                            score, prediction, label, predicted_at if at is None else at
                        )
            else:
                performance.update(label == positive, prediction == positive)
                if type(score) is dict:
                    score = score.get(class_name(positive))
                if score is not None:
                    quality = self.score_quality
                    if quality is None:
                        quality = self.score_quality = ScoreQuality(self._metrics_window)
                    quality.update(score, label == positive)  # type: ignore[union-attr,arg-type]
                    if type(performance) is ScoreTest:
                        performance.observe(quality)
                    if self._estimation.enabled:
                        estimator = self.estimator
                        if type(estimator) is not PerformanceEstimator:
                            estimator = self.estimator = PerformanceEstimator(self._estimation)
                        estimator.add_outcome(
                            score,  # type: ignore[arg-type]
                            prediction == positive,
                            label == positive,
                            predicted_at if at is None else at,
                        )
        self.outcomes += 1
        # The change point is dated by prediction time: a retraining job selects the
        # predictions made since the change, whose labels came later.
        self.note_outcome_time(predicted_at)
        return error

    def _class_scores(self, score: dict[str, float], label: Any) -> None:
        quality = self.score_quality
        if not isinstance(quality, ClassScoreQuality):
            # (A version that turned multiclass: its binary score metrics end, as its F1 did.)
            quality = self.score_quality = ClassScoreQuality(self._metrics_window)
        quality.update(score, class_name(label))

    def _class_estimate(
        self, score: dict[str, float], prediction: Any, label: Any, at: int
    ) -> None:
        estimator = self.estimator
        if type(estimator) is not ClassPerformanceEstimator:
            # (A version that turned multiclass: its binary estimate ends, as its F1 did.)
            estimator = self.estimator = ClassPerformanceEstimator(self._estimation)
        estimator.add_outcome(score, class_name(prediction), class_name(label), at)

    def signal_rows(self) -> list[tuple[str, str, float, float, bool]]:
        """(signal, version, statistic, threshold, detected) of the version's ready detectors:
        its prediction, score and error streams."""
        return [
            (signal, self.version, d.statistic, d.threshold, d.drift_detected)
            for signal, d in (
                ("prediction", self.prediction),
                ("score", self.score),
                ("error", self.concept),
            )
            if d.ready
        ]

    def note_outcome_time(self, at: int) -> None:
        """The prediction time of the outcome just counted (``outcomes``)."""
        index = self.outcomes - 1
        if index % _TIME_STRIDE:
            return
        times = self.outcome_times
        slot = (index // _TIME_STRIDE) % _OUTCOME_TIMES
        if slot >= len(times):
            times.extend(repeat(0, slot - len(times) + 1))
        times[slot] = at

    def time_ago(self, count: int) -> int | None:
        """Prediction time where the last ``count`` outcomes begin, if still kept.

        Outcomes come in label order: when labels arrive out of order (delays that vary by a
        day), the one outcome at that index may have been predicted a day off. The median of
        the prediction times kept around it (``_TIME_SPAN`` samples each side, one every
        ``_TIME_STRIDE`` outcomes) is where the predictions of that stretch were made.
        """
        index = self.outcomes - max(1, count)
        if index < 0:
            return None
        stride = index // _TIME_STRIDE
        newest = (self.outcomes - 1) // _TIME_STRIDE
        if newest - stride >= _OUTCOME_TIMES:
            return None
        oldest = max(0, newest - _OUTCOME_TIMES + 1, stride - _TIME_SPAN)
        times = self.outcome_times
        near = sorted(
            times[k % _OUTCOME_TIMES]
            for k in range(oldest, min(newest, stride + _TIME_SPAN) + 1)
            if k % _OUTCOME_TIMES < len(times)
        )
        return near[len(near) // 2] if near else None

    def references(self) -> list[tuple[str, bool, bool, dict[str, int]]]:
        """(test, ready, starved, counts) of the references the version's alarms judge against.

        ``performance``: the performance test's reference (outcomes, positives, predicted
        positives, errors); ``concept``: the error-rate detector's (errors, outcomes). Until a
        reference is ready its version is *warming up*; a starved one stopped growing at its
        bound without the evidence it needs, and will not judge.
        """
        performance = self.performance
        out = [("performance", performance.ready, performance.starved, performance.evidence())]
        concept = self.concept
        if isinstance(concept, ErrorRateDriftDetector):
            errors, outcomes = concept.reference_evidence
            counts = {"outcomes": outcomes, "errors": errors}
            out.append(("concept", concept.ready, False, counts))
        return out

    def to_state(self) -> dict[str, Any]:
        # (Latency only when the version has any: states of versions without keep their form.)
        latency = {} if self.latency is None else {"latency": self.latency.to_state()}
        quality = self.score_quality
        if quality is not None:
            key = (
                "class_score_quality" if isinstance(quality, ClassScoreQuality) else "score_quality"
            )
            latency[key] = quality.to_state()
        estimator = self.estimator
        # (A regression version's estimator only once it has seen a prediction: states saved
        # before it keep their form.)
        if estimator is not None and not (type(estimator) is LossEstimator and estimator.pristine):
            key = _ESTIMATOR_KEYS[type(estimator)]
            latency[key] = estimator.to_state()
        return stamp(
            self.STATE_FORMAT,
            {
                **latency,
                "version": self.version,
                "regression": self.regression,
                "first_seen": self.first_seen,
                "last_seen": self.last_seen,
                "prediction": self.prediction.to_state(),
                "score": self.score.to_state(),
                "concept": self.concept.to_state(),
                "metrics": self.metrics.to_state(),
                "outcomes": self.outcomes,
                "outcome_times": self.outcome_times.tolist(),
                "time_stride": _TIME_STRIDE,
                "performance": self.performance.to_state(),
            },
        )

    @classmethod
    def from_state(cls, state: dict[str, Any], config: ModelConfig) -> VersionState:
        read_format(state, "VersionState", cls.STATE_FORMAT)
        version = cls(str(state["version"]), config, bool(state["regression"]), 0)
        version.first_seen = int(state["first_seen"])
        version.last_seen = int(state["last_seen"])
        detector_type = type(version.prediction)
        version.prediction = detector_type.from_state(state["prediction"])
        version.score = NumericDriftDetector.from_state(state["score"])
        version.concept = type(version.concept).from_state(state["concept"])
        version.metrics.load_state(state["metrics"])
        version.outcomes = int(state["outcomes"])
        times = state["outcome_times"]
        if len(times) > _OUTCOME_TIMES:
            raise StateError("more outcome times than kept")
        # (States saved before the stride kept every outcome's time, indexed otherwise: they
        # are dropped, and only change points older than the restart go undated.)
        if state.get("time_stride") == _TIME_STRIDE:
            version.outcome_times = array("q", (int(t) for t in times))
        performance = state.get("performance")
        # (Older states, or another signal configured since: the reference starts afresh.)
        if performance is not None and performance.get("signal", "f1") == _signal(version):
            version.performance.load_state(performance)
        quality = state.get("score_quality")
        if quality is not None:
            version.score_quality = ScoreQuality(config.metrics.window)
            version.score_quality.load_state(quality)
        estimator = state.get("estimator")
        if estimator is not None and config.estimation.enabled:
            version.estimator = PerformanceEstimator(config.estimation)
            version.estimator.load_state(estimator)
        estimator = state.get("class_estimator")
        if estimator is not None and config.estimation.enabled:
            version.estimator = ClassPerformanceEstimator(config.estimation)
            version.estimator.load_state(estimator)
        estimator = state.get("loss_estimator")
        if estimator is not None and type(version.estimator) is LossEstimator:
            version.estimator.load_state(estimator)
        quality = state.get("class_score_quality")
        if quality is not None:
            version.score_quality = ClassScoreQuality(config.metrics.window)
            version.score_quality.load_state(quality)
        if isinstance(version.performance, ScoreTest):
            version.performance.attach(version.score_quality)
        latency = state.get("latency")
        if latency is not None:
            version.latency = latency_window(config.latency)
            version.latency.load_state(latency)
        return version


_ESTIMATOR_KEYS: dict[type, str] = {
    PerformanceEstimator: "estimator",
    ClassPerformanceEstimator: "class_estimator",
    LossEstimator: "loss_estimator",
}


def _signal(version: VersionState) -> str:
    """What the version's performance test watches (``f1``: counts, or RMSE)."""
    performance = version.performance
    return performance.metric if isinstance(performance, ScoreTest) else "f1"
