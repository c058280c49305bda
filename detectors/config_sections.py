"""The settings of each concern of the monitoring core, with the defaults that need no file.

One frozen dataclass per section of a model's configuration (``drift``, ``concept``, ``join``,
``metrics``, ...), and :class:`ModelConfig` holding them all. Reading a YAML file or a mapping
into them, and the ranges each setting accepts, are :mod:`detectors.config`'s. Durations are
milliseconds of event time (fields marked as durations read ``30s``, ``5m``, ``7d`` in a file).

Examples
--------
>>> ModelConfig().join.ttl == 7 * 86_400_000
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "AlertConfig",
    "ConceptConfig",
    "DriftConfig",
    "FeatureKind",
    "JoinConfig",
    "LatencyConfig",
    "MetricsConfig",
    "ModelConfig",
    "QualityConfig",
    "RetrainConfig",
    "RollbackConfig",
    "RollbackReason",
    "ScoreSignal",
    "StallConfig",
]


def _ms(**kw: Any) -> Any:
    """A duration field: read from seconds or a string such as ``"5m"`` (see
    :func:`detectors.config.parse_duration`)."""
    return field(metadata={"duration": True}, **kw)


@dataclass(frozen=True)
class DriftConfig:
    """Data drift (features) and prediction drift: see :mod:`detectors.numeric` and
    :mod:`detectors.categorical` for what each knob does."""

    reference_size: int = 1000
    block: int = 32
    adwin_delta: float = 0.002
    ph_delta: float = 0.7
    ph_threshold: float = 10.0
    span: int = 512
    min_shift: float = 0.25
    enter: float = 3.0
    confirm: int = 1024
    window: int = 1000
    min_samples: int = 500
    psi_threshold: float = 0.1
    alpha: float = 1e-4
    max_categories: int = 50
    #: A string feature with more distinct values than this in its first ``reference_size``
    #: values (ids, free text) is not tested for drift or unknown categories.
    max_cardinality: int = 200


@dataclass(frozen=True)
class ConceptConfig:
    """Concept drift on the error stream of joined predictions (increases only): see
    :mod:`detectors.error_rate` (classification) and :mod:`detectors.numeric` (regression's
    absolute errors)."""

    #: classification: the fewest outcomes of the reference (it is cut short at a rise that
    #: comes while it grows, never below this); regression: the reference sample of absolute
    #: errors
    reference_size: int = 1000
    #: classification: the reference grows until it holds this many outcomes (a rate known
    #: within a few per cent, or a 10 % rise is lost in its noise) and ``reference_errors``
    #: errors, or ``max_reference`` outcomes
    reference_outcomes: int = 5000
    reference_errors: int = 100
    max_reference: int = 50_000
    adwin_delta: float = 0.002
    #: classification: Page-Hinkley on errors standardised by the reference rate; a small
    #: delta so slow rises are proposed too (only the count confirms)
    ph_delta: float = 0.05
    ph_threshold: float = 35.0
    #: classification: significance and minimum relative rise of the confirming error count
    alpha: float = 1e-4
    min_effect: float = 0.1
    min_errors: int = 50
    #: regression: the numeric detector on rank-standardised absolute errors (see DriftConfig)
    block: int = 32
    span: int = 512
    min_shift: float = 0.25
    enter: float = 3.0
    confirm: int = 1024


@dataclass(frozen=True)
class QualityConfig:
    window: int = 1000
    min_samples: int = 200
    rate_threshold: float = 0.05
    #: Values further than this fraction of the reference range beyond its min or max are
    #: out of range.
    range_margin: float = 0.1


@dataclass(frozen=True)
class StallConfig:
    #: A fixed timeout, or ``None`` to learn one from the gaps between events.
    timeout: int | None = _ms(default=None)
    min_timeout: int = _ms(default=60_000)
    max_timeout: int = _ms(default=86_400_000)
    multiplier: float = 10.0
    min_events: int = 20


@dataclass(frozen=True)
class JoinConfig:
    #: How long a prediction waits for its label (event time).
    ttl: int = _ms(default=7 * 86_400_000)
    #: Most predictions waiting per model; the oldest are evicted first.
    max_pending: int = 100_000
    #: How long a label that arrived before its prediction waits for it.
    label_wait: int = _ms(default=3_600_000)
    max_pending_labels: int = 10_000
    #: How many expired or joined prediction ids are remembered to tell late and duplicate
    #: labels from unknown ones (the last ``remember // 2`` to ``remember`` of each kind, as
    #: 32-bit hashes: 64 KiB per model at the default). Forgetting turns a late or duplicate
    #: label into an unknown one; only a label *and* its prediction re-sent after that could
    #: join twice.
    remember: int = 5_000


ScoreSignal = Literal["f1", "roc_auc", "log_loss", "brier", "calibration_error"]


@dataclass(frozen=True)
class MetricsConfig:
    #: Rolling window of joined outcomes, per model version.
    window: int = 1000
    #: Outcomes before the rolling metrics are reported (performance waits for evidence:
    #: min_evidence).
    min_samples: int = 200
    #: The positive class of a binary model; ``None``: ``True`` / ``1`` when the classes are
    #: booleans or 0/1, otherwise metrics are macro-averaged over classes.
    positive_label: bool | int | str | None = None
    #: Absolute F1 floor; ``None`` to use ``relative_drop`` below the version's own reference.
    f1_floor: float | None = None
    #: The smallest drop of F1, recall or precision below the version's reference that matters:
    #: degradation is a drop significantly beyond it (detectors/performance.py).
    relative_drop: float = 0.25
    #: Regression: the smallest rise of RMSE above the version's reference that matters.
    rmse_relative_rise: float = 0.5
    #: One-sided significance of the degradation (and recovery) test.
    alpha: float = 1e-3
    #: Errors the reference must hold, 4x as many positives and predicted positives (the same
    #: number of each is the least the test window must hold): a reference of a handful of
    #: positives is a coin toss.
    min_evidence: int = 50
    #: Most outcomes the test window grows to for rare positives, and the reference waits for.
    max_window: int = 50_000
    max_reference: int = 100_000
    #: Classes the exposed confusion matrix names (the most frequent in the window); the rest
    #: are folded into ``other``.
    confusion_classes: int = 8
    #: What ``performance_degradation`` watches on a classifier: ``f1`` (F1, recall and
    #: precision; accuracy when multiclass) or a score metric (detectors/score_test.py).
    #: Regression models are watched on RMSE whatever this says.
    signal: ScoreSignal = "f1"
    #: The smallest drop of ROC AUC below the version's reference that matters.
    auc_drop: float = 0.03
    #: The smallest relative rise of log loss or Brier score that matters.
    loss_relative_rise: float = 0.15
    #: The smallest rise of the expected calibration error that matters.
    calibration_margin: float = 0.03


@dataclass(frozen=True)
class AlertConfig:
    #: A firing alert resolves only after its condition stayed clear this long (anti-flapping).
    resolve_after: int = _ms(default=300_000)
    #: After a resolve, the same alert does not fire again for this long.
    cooldown: int = _ms(default=900_000)


@dataclass(frozen=True)
class RetrainConfig:
    enabled: bool = True
    #: Joined outcomes after concept drift is confirmed for it to count as sustained.
    confirm_samples: int = 100
    #: At most one retrain command per model version in this much event time.
    cooldown: int = _ms(default=6 * 3_600_000)
    #: Also retrain when rolling F1 (RMSE for regression) degrades.
    on_performance: bool = True


@dataclass(frozen=True)
class LatencyConfig:
    """Inference latency (a prediction's ``latency_ms``) per version: see
    :mod:`detectors.latency`."""

    #: A version's first latencies: its reference p99.
    reference_size: int = 2000
    #: Latencies in the rolling window the quantiles and the tests read (it slides by a
    #: quarter of itself).
    window: int = 1000
    #: Significance of a p99 rise (against the reference, or the last good version's p99).
    alpha: float = 1e-4
    #: A rise must bring the window's p99 to at least (1 + min_rise) x the baseline's.
    min_rise: float = 0.2
    #: Alert whenever the window's p99 is over this (a duration: ``250ms``), from the first
    #: full window on; None: no SLO.
    slo_p99: int | None = _ms(default=None)


RollbackReason = Literal["errors", "latency"]


@dataclass(frozen=True)
class RollbackConfig:
    enabled: bool = True
    #: What rolls a new version back: significantly more errors than the last good version
    #: (``errors``), a significantly higher p99 latency than it (``latency``), or either.
    reasons: tuple[RollbackReason, ...] = ("errors",)
    #: Labelled outcomes of the new version before the first test.
    min_samples: int = 200
    #: The test is repeated at 2x, 4x, ... min_samples up to this; then the version is good.
    max_samples: int = 3200
    #: Family-wise significance over all the tests of one rollout.
    alpha: float = 0.01
    #: The new version must be worse by more than this fraction of the old error (and at least
    #: ``min_margin`` absolute) to be rolled back: a version as good as the old one never is.
    margin: float = 0.2
    min_margin: float = 0.01


@dataclass(frozen=True)
class SegmentationConfig:
    """How a model's segments (``segments: [country, device]``) are watched: see
    :mod:`detectors.segments`."""

    #: Values tracked per segment name, the most frequent by traffic; the rest are ``other``.
    top: int = 20
    #: Mean life, in the model's labelled outcomes, of the weights the segments' error rates
    #: are averaged with (each outcome's weight decays by 1 - 1/window per later outcome).
    window: int = 10_000
    #: Family-wise significance of one check over all the segments it tests (Bonferroni).
    alpha: float = 1e-3
    #: A segment is degraded when its error rate (MAE for regression) is significantly above
    #: (1 + min_rise) x the rest of the model's traffic's.
    min_rise: float = 0.25
    #: Effective outcomes (Kish) a segment must hold to be tested.
    min_outcomes: int = 200
    #: Labelled outcomes between two checks.
    check_every: int = 500
    #: Predictions of the model before a segment value seen for the first time is news
    #: (``segment_appeared``).
    reference: int = 10_000
    #: A segment that appears is reported once it carries this share of the traffic.
    min_share: float = 0.01


EstimatedMetric = Literal["f1", "accuracy", "precision", "recall", "roc_auc"]


@dataclass(frozen=True)
class EstimationConfig:
    """Performance estimated before labels come: a classifier's metrics from its calibrated
    scores (:mod:`detectors.estimation`, :mod:`detectors.estimator` for binary and
    :mod:`detectors.class_estimator` for class -> probability maps), a regression model's MAE
    from its predictions' numeric features (:mod:`detectors.loss_estimator`). ``metric``,
    ``min_drop``, ``min_class_outcomes`` and ``tolerance`` are a classifier's, ``min_rise`` a
    regression model's; the others are shared."""

    enabled: bool = True
    #: Labelled outcomes with a score the calibration is learned from (the version's first;
    #: a regression version's: with numeric features, for its error model).
    reference_size: int = 2000
    #: ... and at least this many of each class among them (the reference grows up to
    #: 10 x reference_size to find them; then estimation is off: too_few_labels).
    min_class_outcomes: int = 50
    #: Predictions the estimate is taken over (the latest, labelled or not).
    window: int = 1000
    #: Predictions between two checks of the estimate.
    check_every: int = 100
    #: The metric the estimated_performance_degradation alert watches.
    metric: EstimatedMetric = "f1"
    #: The smallest drop of the estimated metric below its reference that matters (absolute).
    min_drop: float = 0.03
    #: A regression model's: the smallest rise of its estimated MAE above the reference's
    #: that matters, relative (0.1: 10 % above).
    min_rise: float = 0.1
    #: One-sided significance of the drop.
    alpha: float = 1e-3
    #: Largest gap between the estimate and the realised metric on held-out reference outcomes
    #: (a cross-fit of the calibration) for estimation to be trusted; beyond it (and beyond
    #: the sampling error of the gap): off.
    tolerance: float = 0.05
    #: Also ask for a retrain when the estimate degrades (off: an estimate can be wrong).
    retrain: bool = False


FeatureKind = Literal["auto", "numeric", "categorical", "ignore"]


@dataclass(frozen=True)
class ModelConfig:
    task: Literal["auto", "classification", "regression"] = "auto"
    features: dict[str, FeatureKind] = field(default_factory=dict)
    drift: DriftConfig = field(default_factory=DriftConfig)
    prediction_drift: DriftConfig = field(default_factory=DriftConfig)
    concept: ConceptConfig = field(default_factory=ConceptConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    stall_inputs: StallConfig = field(default_factory=StallConfig)
    stall_labels: StallConfig = field(
        default_factory=lambda: StallConfig(min_timeout=3_600_000, max_timeout=7 * 86_400_000)
    )
    join: JoinConfig = field(default_factory=JoinConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    alerts: AlertConfig = field(default_factory=AlertConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    rollback: RollbackConfig = field(default_factory=RollbackConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    #: Tags (``tags`` of a prediction) or categorical features whose values split the model's
    #: traffic into segments, each name on its own (at most 4 names).
    segments: tuple[str, ...] = ()
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    estimation: EstimationConfig = field(default_factory=EstimationConfig)
    #: When a new version starts serving, start data drift over from a fresh reference (a
    #: retrained model was trained on the new data).
    rebaseline_on_new_version: bool = True
    #: Versions whose metrics and drift are kept per model (the oldest is forgotten).
    max_versions: int = 5
    #: Events stamped further than this in the future of the processing clock (live service)
    #: do not move the model's event-time watermark.
    max_future: int = _ms(default=3_600_000)
    #: The share of the model's events monitored, in (0, 1]: a prediction is kept when a hash
    #: of its ``prediction_id`` falls under it, and its label (and input) by the same rule,
    #: so joins stay whole (:mod:`detectors.sampling`). For a model busier than one worker;
    #: 1: every event.
    sample: float = 1.0
