"""The configuration made into detectors: every detector the core builds is built here, from
its section of :class:`~detectors.config.ModelConfig`."""

from __future__ import annotations

from detectors.categorical import CategoricalDriftDetector
from detectors.config import ConceptConfig, DriftConfig, LatencyConfig, ModelConfig, StallConfig
from detectors.error_rate import ErrorRateDriftDetector
from detectors.latency import LatencyWindow
from detectors.numeric import NumericDriftDetector
from detectors.performance import PerformanceTest
from detectors.score_test import ScoreTest
from detectors.stall import StallDetector

__all__ = [
    "categorical_detector",
    "concept_detector",
    "latency_window",
    "numeric_detector",
    "performance_test",
    "stall_detector",
]


def numeric_detector(config: DriftConfig) -> NumericDriftDetector:
    """A numeric feature's (or a score's, a regression's prediction's) drift detector."""
    return NumericDriftDetector(
        reference_size=config.reference_size,
        block=config.block,
        adwin_delta=config.adwin_delta,
        ph_delta=config.ph_delta,
        ph_threshold=config.ph_threshold,
        span=config.span,
        min_shift=config.min_shift,
        enter=config.enter,
        confirm=config.confirm,
    )


def categorical_detector(config: DriftConfig) -> CategoricalDriftDetector:
    """A categorical feature's (or a class prediction's) drift detector."""
    return CategoricalDriftDetector(
        reference_size=config.reference_size,
        window=config.window,
        min_samples=config.min_samples,
        psi_threshold=config.psi_threshold,
        alpha=config.alpha,
        max_categories=config.max_categories,
    )


def concept_detector(
    concept: ConceptConfig, regression: bool
) -> ErrorRateDriftDetector | NumericDriftDetector:
    """A version's concept drift detector: on 0/1 errors, or on a regression's absolute
    errors."""
    if regression:
        # Absolute errors: ranked against the reference's, increases only.
        return NumericDriftDetector(
            reference_size=concept.reference_size,
            block=concept.block,
            adwin_delta=concept.adwin_delta,
            span=concept.span,
            min_shift=concept.min_shift,
            enter=concept.enter,
            confirm=concept.confirm,
            direction="up",
            spread=False,
            track_change_point=True,
        )
    else:
        return ErrorRateDriftDetector(
            reference_size=concept.reference_size,
            reference_outcomes=concept.reference_outcomes,
            adwin_delta=concept.adwin_delta,
            ph_delta=concept.ph_delta,
            ph_threshold=concept.ph_threshold,
            alpha=concept.alpha,
            min_effect=concept.min_effect,
            min_errors=concept.min_errors,
            reference_errors=concept.reference_errors,
            max_reference=concept.max_reference,
        )


def performance_test(config: ModelConfig, regression: bool) -> PerformanceTest | ScoreTest:
    """A version's performance test, as its model's configuration says: on a score metric
    when ``metrics.signal`` names one (classifiers only: regression is watched on RMSE)."""
    metrics = config.metrics
    if metrics.signal != "f1" and not regression:
        return ScoreTest(
            metrics.signal,
            auc_drop=metrics.auc_drop,
            loss_relative_rise=metrics.loss_relative_rise,
            calibration_margin=metrics.calibration_margin,
            alpha=metrics.alpha,
            min_evidence=metrics.min_evidence,
            window=metrics.window,
            max_reference=metrics.max_reference,
        )
    return PerformanceTest(
        task="regression" if regression else "classification",
        relative_drop=metrics.relative_drop,
        floor=metrics.f1_floor,
        rmse_relative_rise=metrics.rmse_relative_rise,
        alpha=metrics.alpha,
        min_evidence=metrics.min_evidence,
        window=metrics.window,
        max_window=metrics.max_window,
        max_reference=metrics.max_reference,
    )


def stall_detector(config: StallConfig) -> StallDetector:
    """An input or label stall detector, as its section of the configuration says."""
    return StallDetector(
        timeout_ms=config.timeout,
        min_timeout_ms=config.min_timeout,
        max_timeout_ms=config.max_timeout,
        multiplier=config.multiplier,
        min_events=config.min_events,
    )


def latency_window(config: LatencyConfig) -> LatencyWindow:
    """A version's latency window (made when its first ``latency_ms`` arrives)."""
    return LatencyWindow(
        reference_size=config.reference_size,
        window=config.window,
        alpha=config.alpha,
        min_rise=config.min_rise,
    )
