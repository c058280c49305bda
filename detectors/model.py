"""Everything driftline knows about one model, and how each event changes it.

:class:`ModelState` owns, for one ``model_id``:

* a :class:`~detectors.features.FeatureMonitor` per feature (data drift, data quality);
* per version (:class:`VersionState`): prediction and score drift, concept drift on the error
  stream, rolling metrics and the performance check;
* the label join, the input and label stall detectors;
* its segments (:class:`~detectors.segments.Segments`), when its configuration names some;
* the alert book and the retrain and rollback policies.

It turns what changes into CloudEvents (alerts and commands). Time is event time throughout;
only the stall checks take a clock from outside (:meth:`ModelState.tick`).
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Any, ClassVar

from detectors.alerting import AlertKey, Reading
from detectors.base import StateError
from detectors.class_estimator import ClassPerformanceEstimator
from detectors.config import ModelConfig
from detectors.counters import Counters
from detectors.estimation_decisions import EstimationDecisions
from detectors.estimator import PerformanceEstimator
from detectors.factories import stall_detector
from detectors.feature_set import FeatureSet, SignalTable
from detectors.features import FeatureMonitor
from detectors.join import LabelJoiner, Outcome
from detectors.latency_decisions import LatencyDecisions
from detectors.loss_estimator import LossEstimator
from detectors.metrics import class_name
from detectors.numeric import NumericDriftDetector
from detectors.outbox import Emission, Outbox
from detectors.outcome_decisions import OutcomeDecisions
from detectors.policies import AlertBook, RetrainPolicy, RollbackPolicy
from detectors.saved_state import read_format, stamp
from detectors.segment_decisions import SegmentDecisions
from detectors.segments import Segments
from detectors.stall import StallDetector
from detectors.version import VersionState
from schemas import Input, Label, Prediction

__all__ = ["ModelState"]


# Versions never forgotten to make room (the newest, the latest, rollback's good and candidate):
# with max_versions below this, a model may track this many.
_PROTECTED_VERSIONS = 4


class ModelState:
    """All monitoring state of one model.

    Parameters
    ----------
    model_id
        The model.
    config
        Its configuration (defaults merged with its overrides).
    counters
        The monitor's shared totals.
    source
        CloudEvents ``source`` of what it emits.
    max_features
        Most features tracked; further names are refused and counted.
    """

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    STATE_FORMAT: ClassVar[int] = 1

    def __init__(
        self,
        model_id: str,
        config: ModelConfig,
        counters: Counters,
        source: str = "/driftline",
        max_features: int = 100,
    ) -> None:
        self.model_id = model_id
        self.config = config
        self.counters = counters
        self.source = source
        self.max_features = max_features
        self.versions: dict[str, VersionState] = {}
        self.latest_version: str | None = None
        self.regression: bool | None = {"regression": True, "classification": False}.get(
            config.task
        )
        self.features_from_inputs = False
        self.join = LabelJoiner(config.join, counters.join)
        self.stall_inputs = stall_detector(config.stall_inputs)
        self.stall_labels = stall_detector(config.stall_labels)
        self.alerts = AlertBook(config.alerts)
        self.retrain = RetrainPolicy(config.retrain, config.concept.min_effect)
        self.rollback = RollbackPolicy(config.rollback)
        self.watermark: int | None = None
        self.last_event_at: dict[str, int] = {}  # topic kind -> processing time of the last one
        #: Events applied since this state was made (not saved: the status page's rates).
        self.events_applied = 0
        self.outbox = Outbox(model_id, source, self.alerts, counters, lambda: self.latest_version)
        self.feature_set = FeatureSet(config, counters, self.alerts, self.outbox, max_features)
        self.decisions = OutcomeDecisions(
            model_id, source, config, self.alerts, self.retrain, self.rollback, self.outbox
        )
        self.latency_decisions = LatencyDecisions(
            model_id, source, config, self.rollback, self.outbox
        )
        #: The traffic split by ``segments`` names (None: the model has none).
        self.segments = Segments(config.segments, config.segmentation) if config.segments else None
        self.segment_decisions = SegmentDecisions(model_id, config, self.alerts, self.outbox)
        self.estimation_decisions = EstimationDecisions(
            model_id, config, self.outbox, self.retrain, self.decisions
        )

    @property
    def features(self) -> dict[str, FeatureMonitor]:
        """The model's feature monitors, by name."""
        return self.feature_set.monitors

    # -- entry points --------------------------------------------------------------------------

    def process(
        self, events: Sequence[Prediction | Input | Label], now: int | None
    ) -> list[Emission]:
        """Apply this model's events, in order; return the alerts and commands they cause.

        ``now`` is the processing clock of the live service (wall time, ms) or ``None`` in
        replay, where event time is the clock.
        """
        clock_limit = None if now is None else now + self.config.max_future
        watermark = self.watermark
        replay = now is None
        # Features, predictions and scores are processed as columns (numpy, one call per batch),
        # feature rows in runs split where a new version starts (which may rebaseline them).
        feature_set = self.feature_set
        run = feature_set.rows
        columns: dict[str, _Columns] = {}
        counts = {"prediction": 0, "input": 0, "label": 0}
        last_ts = {}
        versions = self.versions
        add_prediction = self.join.add_prediction
        segments = self.segments
        count = len(events)
        index = 0
        while index < count:
            event = events[index]
            index += 1
            if event.kind == "prediction" and segments is None:
                # A run of predictions of one tracked version: as columns (see _prediction_run).
                version = versions.get(event.model_version)  # type: ignore[union-attr]
                if version is not None and not version.holds_rows:
                    end = _run_end(events, index - 1, version.version)
                    if end - index + 1 >= _MIN_RUN:
                        run_events = events[index - 1 : end]
                        watermark = self._prediction_run(
                            run_events, version, columns, run, clock_limit, watermark, replay
                        )
                        counts["prediction"] += len(run_events)
                        last_ts["prediction"] = run_events[-1].timestamp
                        index = end
                        continue
            elif event.kind == "label":
                end = _label_run_end(events, index - 1)
                if end - index + 1 >= _MIN_RUN:
                    run_events = events[index - 1 : end]
                    watermark = self._label_run(run_events, clock_limit, watermark, replay)
                    counts["label"] += len(run_events)
                    last_ts["label"] = run_events[-1].timestamp
                    index = end
                    continue
            ts = event.timestamp
            if (clock_limit is None or ts <= clock_limit) and (watermark is None or ts > watermark):
                watermark = self.watermark = ts
            kind = event.kind
            counts[kind] += 1
            last_ts[kind] = ts
            if kind == "prediction":
                version = versions.get(event.model_version)  # type: ignore[union-attr]
                if version is None:
                    feature_set.flush()
                    run = feature_set.rows
                    version = self._new_version(event.model_version, event)  # type: ignore[union-attr,arg-type]
                # (Inlined: a busy worker runs this loop for every prediction.)
                if ts > version.last_seen:
                    version.last_seen = ts
                # version.version: the interned string, shared by every waiting prediction
                prediction = event.prediction  # type: ignore[union-attr]
                score = event.score  # type: ignore[union-attr]
                segment = 0
                if segments is not None:
                    segment = segments.code(event.tags, event.features)  # type: ignore[union-attr]
                    if segments.review_due:
                        self.segment_decisions.review(segments, ts)
                pid = event.prediction_id  # type: ignore[union-attr]
                row = None
                if version.regression:
                    # A regression version's estimator holds the prediction's features for its
                    # label (the join does not carry them): before the join, which may return
                    # the outcome of a label that came first.
                    loss = version.estimator
                    if loss is not None and loss.reading:  # type: ignore[union-attr]
                        row = loss.see(  # type: ignore[union-attr]
                            pid,
                            ts,
                            prediction,
                            None if self.features_from_inputs else event.features,  # type: ignore[union-attr]
                        )
                outcome = add_prediction(
                    pid,
                    ts,
                    version.version,
                    prediction,
                    score,
                    segment,
                )
                if outcome is not None:
                    self._outcome(outcome)
                column = columns.get(version.version)
                if column is None:
                    column = columns[version.version] = _Columns(version)
                column.times.append(ts)
                column.predictions.append(prediction)
                if score is not None:
                    column.add_score(ts, score, prediction)
                if row is not None:
                    column.loss_times.append(ts)
                    column.loss_rows.append(row)
                    column.loss_ids.append(pid)
                latency = event.latency_ms  # type: ignore[union-attr]
                if latency is not None:
                    column.latencies.append(latency)
                features = event.features  # type: ignore[union-attr]
                if features is not None and not self.features_from_inputs:
                    run.append((ts, features))
                if replay:
                    self._observe_stall("input_stall", self.stall_inputs, ts)
            elif kind == "input":
                if not self.features_from_inputs:
                    # From now on the model's inputs, not its predictions, carry the features:
                    # their set may differ, so features start afresh from the inputs.
                    self.features_from_inputs = True
                    feature_set.flush()
                    run = feature_set.rows
                    feature_set.rebaseline(ts, drop=True, reason="features now come from inputs")
                    # (None at prediction time: a regression version's MAE is not estimated.)
                    for tracked in versions.values():
                        loss = tracked.estimator
                        if type(loss) is LossEstimator and loss.reading:
                            loss.off("no_features")
                run.append((ts, event.features))  # type: ignore[union-attr]
                if replay:
                    self._observe_stall("input_stall", self.stall_inputs, ts)
            else:
                outcome = self.join.add_label(event.prediction_id, event.label, ts)  # type: ignore[union-attr]
                if outcome is not None:
                    self._outcome(outcome)
                if replay:
                    self._observe_stall("label_stall", self.stall_labels, ts)
        if len(run) >= feature_set.rows_due:
            feature_set.flush()
        for column in columns.values():
            self._flush_predictions(column)
        self.events_applied += len(events)
        table = self.counters.events
        for kind, count in counts.items():
            if count:
                table[kind] = table.get(kind, 0) + count
        for kind, ts in last_ts.items():
            self.last_event_at[kind] = ts if replay else now  # type: ignore[assignment]
        if not replay:
            assert now is not None
            if counts["prediction"] or counts["input"]:
                self._observe_stall("input_stall", self.stall_inputs, now)
            if counts["label"]:
                self._observe_stall("label_stall", self.stall_labels, now)
        if self.watermark is not None:
            self.join.expire(self.watermark)
        return self.outbox.take()

    def tick(self, now: int) -> list[Emission]:
        """Check the stall detectors at ``now`` (wall time live, the replay's watermark), and
        evaluate feature rows still waiting."""
        if self.feature_set.rows:
            self.feature_set.flush()
        for alert, detector in (
            ("input_stall", self.stall_inputs),
            ("label_stall", self.stall_labels),
        ):
            if detector.check(now):
                since = detector.stalled_since
                assert since is not None
                key = AlertKey(alert, "inputs" if alert == "input_stall" else "labels")
                self.outbox.signal(key, True, since, Reading.of(detector), "stall")
        return self.outbox.take()

    # -- predictions -----------------------------------------------------------------------

    def _prediction_run(
        self,
        events: Sequence[Prediction],
        version: VersionState,
        columns: dict[str, _Columns],
        feature_rows: list[tuple[int, Any]],
        clock_limit: int | None,
        watermark: int | None,
        replay: bool,
    ) -> int | None:
        """Apply a run of predictions of one tracked version (no segments, no rows held for
        an estimate): what :meth:`process` does one prediction at a time, as columns read
        with C-level loops, the join's one call a prediction in a tight loop. Returns the
        watermark.

        The same effects, in the same order where order shows: the watermark is a running
        maximum, read only after the batch; the join and the outcomes of labels that came
        first go prediction by prediction (with the replay's stall observations between them,
        whose resolutions are emitted in that order); the columns and feature rows wait for
        the end of the batch as before."""
        times = list(map(_TIMESTAMP, events))
        watermark = self._advance_watermark(times, clock_limit, watermark)
        latest = max(times)
        if latest > version.last_seen:
            version.last_seen = latest
        predictions = list(map(_PREDICTION, events))
        scores = list(map(_SCORE, events))
        identifier = version.version  # the interned string, shared by every waiting prediction
        add_prediction = self.join.add_prediction
        outcome_of = self._outcome
        if replay:
            observe, detector = self._observe_stall, self.stall_inputs
            for pid, ts, prediction, score in zip(
                map(_PREDICTION_ID, events), times, predictions, scores, strict=True
            ):
                outcome = add_prediction(pid, ts, identifier, prediction, score, 0)
                if outcome is not None:
                    outcome_of(outcome)
                observe("input_stall", detector, ts)
        else:
            for pid, ts, prediction, score in zip(
                map(_PREDICTION_ID, events), times, predictions, scores, strict=True
            ):
                outcome = add_prediction(pid, ts, identifier, prediction, score, 0)
                if outcome is not None:
                    outcome_of(outcome)
        column = columns.get(identifier)
        if column is None:
            column = columns[identifier] = _Columns(version)
        column.times += times
        column.predictions += predictions
        kinds = set(map(type, scores))
        if kinds == {float}:
            column.score_times += times
            column.scores += scores
            column.score_predictions += predictions
        elif kinds != {type(None)}:
            for ts, score, prediction in zip(times, scores, predictions, strict=True):
                if score is not None:
                    column.add_score(ts, score, prediction)
        latencies = [value for value in map(_LATENCY, events) if value is not None]
        if latencies:
            column.latencies += latencies
        if not self.features_from_inputs:
            feature_rows += [
                (ts, features)
                for ts, features in zip(times, map(_FEATURES, events), strict=True)
                if features is not None
            ]
        return watermark

    def _advance_watermark(
        self, times: list[int], clock_limit: int | None, watermark: int | None
    ) -> int | None:
        """The watermark after a run's event ``times``: their running maximum, as
        :meth:`process` keeps it one event at a time (times past ``clock_limit`` ignored)."""
        eligible = times if clock_limit is None else [t for t in times if t <= clock_limit]
        if eligible:
            top = max(eligible)
            if watermark is None or top > watermark:
                watermark = self.watermark = top
        return watermark

    def _label_run(
        self,
        events: Sequence[Label],
        clock_limit: int | None,
        watermark: int | None,
        replay: bool,
    ) -> int | None:
        """Apply a run of labels as :meth:`process` does one at a time (the join and each
        outcome in order, the replay's stall observations between them); the watermark."""
        times = list(map(_TIMESTAMP, events))
        watermark = self._advance_watermark(times, clock_limit, watermark)
        add_label = self.join.add_label
        outcome_of = self._outcome
        labelled = zip(map(_PREDICTION_ID, events), map(_LABEL, events), times, strict=True)
        if replay:
            observe, detector = self._observe_stall, self.stall_labels
            for pid, label, ts in labelled:
                outcome = add_label(pid, label, ts)
                if outcome is not None:
                    outcome_of(outcome)
                observe("label_stall", detector, ts)
        else:
            for pid, label, ts in labelled:
                outcome = add_label(pid, label, ts)
                if outcome is not None:
                    outcome_of(outcome)
        return watermark

    def _flush_predictions(self, column: _Columns) -> None:
        version = column.version
        if version.version not in self.versions:
            return  # forgotten meanwhile
        detector = version.prediction
        values = column.predictions
        if isinstance(detector, NumericDriftDetector):
            keep = [i for i, v in enumerate(values) if type(v) in (int, float)]
            numbers = [float(values[i]) for i in keep]
        else:
            keep = [i for i, v in enumerate(values) if type(v) is not float]
            numbers = [values[i] for i in keep]
        if numbers:
            times = [column.times[i] for i in keep]
            flips = detector.update_many(numbers)
            self.outbox.drift_flips(
                "prediction_drift", "prediction", None, version, detector, flips, times
            )
            self.outbox.settle("prediction_drift", "prediction", None, version, detector, times[-1])
        if column.latencies and version.add_latencies(column.latencies):
            self.latency_decisions.check(version, self.versions, column.times[-1])
        if column.scores and version.estimator is not None and version.estimator.on:
            self._estimate(version, column)
        if column.loss_rows:
            loss = version.estimator
            if type(loss) is LossEstimator and loss.on:
                verdicts = loss.add_predictions(
                    column.loss_times, column.loss_rows, column.loss_ids
                )
                if verdicts:
                    self.estimation_decisions.apply(version, verdicts)
        if column.scores:
            flips = version.score.update_many(column.scores)
            self.outbox.drift_flips(
                "prediction_drift", "score", None, version, version.score, flips, column.score_times
            )
            self.outbox.settle(
                "prediction_drift", "score", None, version, version.score, column.score_times[-1]
            )

    def _estimate(self, version: VersionState, column: _Columns) -> None:
        """A batch's scored predictions into the version's estimate: a binary version's
        probabilities of its positive class (a number, or read in a class map), a multiclass
        version's class maps."""
        estimator = version.estimator
        if type(estimator) is LossEstimator:
            return  # (a regression version's scores say nothing of its MAE)
        if type(estimator) is ClassPerformanceEstimator:
            if not column.maps:
                return
            _, times, maps, predictions = zip(*column.maps, strict=True)
            verdicts = estimator.add_predictions(list(times), list(maps), list(predictions))
        else:
            assert type(estimator) is PerformanceEstimator
            positive = version.metrics.positive_class  # type: ignore[union-attr]
            if positive is None:
                return
            times, scores, predictions = column.score_times, column.scores, column.score_predictions
            if column.maps:  # (the rare case: read each map at the positive class)
                times, scores, predictions = _positive_scores(column, class_name(positive))
            predicted = [value == positive for value in predictions]
            verdicts = estimator.add_predictions(times, scores, predicted)
        if verdicts:
            self.estimation_decisions.apply(version, verdicts)

    def _new_version(self, version_id: str, event: Prediction) -> VersionState:
        if self.regression is None:
            self.regression = type(event.prediction) is float
        version = VersionState(version_id, self.config, self.regression, event.timestamp)
        newer = (
            self.latest_version is None
            or event.timestamp >= self.versions[self.latest_version].first_seen
        )
        self.versions[version_id] = version
        self.rollback.version_seen(version_id)
        if newer:
            previous = self.latest_version
            self.latest_version = version_id
            if previous is not None and self.config.rebaseline_on_new_version:
                self.feature_set.rebaseline(event.timestamp)
        if len(self.versions) > self.config.max_versions:
            self._forget_oldest_version(keep=version_id)
        return version

    def _forget_oldest_version(self, keep: str) -> None:
        protected = {keep, self.latest_version, self.rollback.good, self.rollback.candidate}
        candidates = [v for v in self.versions.values() if v.version not in protected]
        if not candidates:
            return
        oldest = min(candidates, key=lambda v: v.last_seen)
        del self.versions[oldest.version]
        self.retrain.forget(oldest.version)
        for key in self.alerts.firing_keys():
            if key.version == oldest.version:
                self.outbox.resolve_now(key, oldest.last_seen, reason="version no longer tracked")
        self.alerts.forget(lambda key: key.version == oldest.version)

    # -- outcomes (a prediction with its label) ----------------------------------------------

    def _outcome(self, outcome: Outcome) -> None:
        version = self.versions.get(outcome.version)
        if version is None:
            return  # a version no longer tracked
        at = max(outcome.predicted_at, outcome.labelled_at)
        error = version.record_outcome(
            outcome.prediction,
            outcome.label,
            outcome.predicted_at,
            outcome.score,
            at,
            outcome.prediction_id,
        )
        if error is None:
            Counters.add(self.counters.quality, "label_type_mismatch")
            return
        segments = self.segments
        if segments is not None and segments.add_outcome(
            outcome.segment, error, outcome.predicted_at, bool(self.regression)
        ):
            self.segment_decisions.check(segments, at, bool(self.regression))
        self.decisions.apply(version, error, at)

    # -- alerts ----------------------------------------------------------------------------

    def _observe_stall(self, alert: str, detector: StallDetector, t: int) -> None:
        if detector.observe(t):
            key = AlertKey(alert, "inputs" if alert == "input_stall" else "labels")
            self.outbox.signal(key, False, t, Reading.of(detector), "stall", resolve_now=True)

    # -- reading ---------------------------------------------------------------------------

    def signals(self) -> list[tuple[str, str, float, float, bool]]:
        """(signal, feature or version, statistic, threshold, detected) of every detector."""
        out = self.feature_set.signals.rows()
        for version in self.versions.values():
            out += version.signal_rows()
        return out

    @property
    def feature_signals(self) -> SignalTable:
        """The features' readings (what :meth:`signals` reports of them), as columns."""
        return self.feature_set.signals

    def latest_signals(self) -> list[tuple[str, str, float, float, bool]]:
        """The rows of :meth:`signals` of the latest version's detectors."""
        latest = self.versions.get(self.latest_version) if self.latest_version else None
        return [] if latest is None else latest.signal_rows()

    # -- state -----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return stamp(
            self.STATE_FORMAT,
            {
                "model_id": self.model_id,
                "features": {name: m.to_state() for name, m in self.features.items()},
                "versions": {v: s.to_state() for v, s in self.versions.items()},
                "latest_version": self.latest_version,
                "regression": self.regression,
                "features_from_inputs": self.features_from_inputs,
                "join": self.join.to_state(),
                "stall_inputs": self.stall_inputs.to_state(),
                "stall_labels": self.stall_labels.to_state(),
                "alerts": self.alerts.to_state(),
                "retrain": self.retrain.to_state(),
                "rollback": self.rollback.to_state(),
                "watermark": self.watermark,
                "last_event_at": self.last_event_at,
                "rows": self.feature_set.rows,
                "rows_due": self.feature_set.rows_due,
                **({} if self.segments is None else {"segments": self.segments.to_state()}),
            },
        )

    def load_state(self, state: dict[str, Any]) -> None:
        read_format(state, "ModelState", self.STATE_FORMAT)
        if state.get("model_id") != self.model_id:
            raise StateError("state of another model")
        versions = state["versions"]
        if len(versions) > max(self.config.max_versions, _PROTECTED_VERSIONS):
            raise StateError("more versions than max_versions")
        self.versions = {
            str(v): VersionState.from_state(s, self.config) for v, s in versions.items()
        }
        self.latest_version = state["latest_version"]
        regression = state["regression"]
        self.regression = None if regression is None else bool(regression)
        self.features_from_inputs = bool(state["features_from_inputs"])
        self.join.load_state(state["join"])
        self.stall_inputs = StallDetector.from_state(state["stall_inputs"])
        self.stall_labels = StallDetector.from_state(state["stall_labels"])
        self.alerts.load_state(state["alerts"])
        self.retrain.load_state(state["retrain"])
        self.rollback.load_state(state["rollback"])
        watermark = state["watermark"]
        self.watermark = None if watermark is None else int(watermark)
        self.last_event_at = {str(k): int(v) for k, v in state["last_event_at"].items()}
        self.feature_set.load(state["features"], state["rows"], state["rows_due"])
        # Segments saved under another configuration (names, top, window) start afresh.
        saved = state.get("segments")
        if (
            self.segments is not None
            and isinstance(saved, dict)
            and saved.get("layout") == self.segments.layout()
        ):
            self.segments.load_state(saved)


def _positive_scores(column: _Columns, positive: str) -> tuple[list[int], list[float], list[Any]]:
    """A batch's scores of a binary version as probabilities of its ``positive`` class: numbers
    as sent, class maps read at that class (a map without it is left out)."""
    read: list[float | None] = list(column.scores)
    for slot, _, score, _ in column.maps:
        read[slot] = score.get(positive)
    kept = [i for i, value in enumerate(read) if value is not None]
    return (
        [column.score_times[i] for i in kept],
        [read[i] for i in kept],  # type: ignore[misc]
        [column.score_predictions[i] for i in kept],
    )


# Shortest run of predictions (or labels) worth reading as columns (below it, one at a time
# is as fast).
_MIN_RUN = 8
_TIMESTAMP = attrgetter("timestamp")
_PREDICTION = attrgetter("prediction")
_SCORE = attrgetter("score")
_PREDICTION_ID = attrgetter("prediction_id")
_LATENCY = attrgetter("latency_ms")
_FEATURES = attrgetter("features")
_LABEL = attrgetter("label")


def _label_run_end(events: Sequence[Any], start: int) -> int:
    """The end of the run of labels that starts at ``start``."""
    end, count = start, len(events)
    while end < count and events[end].kind == "label":
        end += 1
    return end


def _run_end(events: Sequence[Any], start: int, version: str) -> int:
    """The end of the run of predictions of ``version`` that starts at ``start``."""
    end, count = start, len(events)
    while end < count:
        event = events[end]
        if event.kind != "prediction" or event.model_version != version:
            break
        end += 1
    return end


class _Columns:
    """A batch's predictions and scores of one version, gathered for one detector call each."""

    def __init__(self, version: VersionState) -> None:
        self.version = version
        self.times: list[int] = []
        self.predictions: list[Any] = []
        self.score_times: list[int] = []
        self.scores: list[float] = []
        self.score_predictions: list[Any] = []
        # Class -> probability scores (their top one is in ``scores``), kept whole for the
        # estimate: slot in ``scores``, prediction time, map, prediction.
        self.maps: list[tuple[int, int, dict[str, float], Any]] = []
        self.latencies: list[float] = []
        # A regression version's rows for its estimated MAE (features and prediction).
        self.loss_times: list[int] = []
        self.loss_rows: list[tuple[Any, ...]] = []
        self.loss_ids: list[str] = []

    def add_score(self, ts: int, score: float | dict[str, float], prediction: Any) -> None:
        # A class -> probability score is watched through its top probability (confidence).
        if type(score) is float:
            self.score_times.append(ts)
            self.scores.append(score)
            self.score_predictions.append(prediction)
            return
        value = max(score.values(), default=None)  # type: ignore[union-attr]
        if value is not None:
            self.maps.append((len(self.scores), ts, score, prediction))  # type: ignore[arg-type]
            self.score_times.append(ts)
            self.scores.append(float(value))
            self.score_predictions.append(prediction)
