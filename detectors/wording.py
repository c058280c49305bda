"""What an alert says: its severity, the name of what decided it, the pair it reports and its
summary, in driftline's own words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from detectors.base import DriftDetector
from detectors.error_rate import ErrorRateDriftDetector
from detectors.features import FeatureMonitor
from detectors.performance import Verdict

__all__ = [
    "SEVERITY",
    "MetricView",
    "QualityView",
    "concept_summary",
    "decided",
    "detector_name",
    "performance_summary",
]

DETECTOR_NAMES = {"data_quality": "data_quality", "performance_degradation": "rolling_metric"}
# How each alert type is judged by default.
SEVERITY = {
    "data_drift": "warning",
    "prediction_drift": "warning",
    "concept_drift": "critical",
    "performance_degradation": "critical",
    "input_stall": "critical",
    "label_stall": "warning",
    "data_quality": "warning",
    "latency_degradation": "warning",
    "segment_degradation": "warning",
    "estimated_performance_degradation": "warning",
}


class QualityView:
    """A data-quality check seen as a detector (statistic: the rate; threshold: its line)."""

    def __init__(self, monitor: FeatureMonitor, check: str) -> None:
        self.statistic = monitor.quality.rate(check)
        self.threshold = monitor.quality.threshold(check)
        self.drift_detected = monitor.quality.firing(check)


@dataclass
class MetricView:
    """The pair a decision was taken on, seen as a detector."""

    statistic: float
    threshold: float
    drift_detected: bool


def detector_name(alert: str, detector: object) -> str:
    """What an alert reports as its ``detector``: the drift detector's trigger, else the
    name of the alert's own test."""
    trigger = detector.trigger if isinstance(detector, DriftDetector) else ""
    return trigger or DETECTOR_NAMES.get(alert, "psi+chi2")


def decided(concept: Any) -> Any:
    """What a concept drift alert reports: the pair that decided the transition (the error
    detector's :attr:`~ErrorRateDriftDetector.decision`), or the detector itself."""
    if isinstance(concept, ErrorRateDriftDetector):
        statistic, threshold = concept.decision
        return MetricView(statistic, threshold, concept.drift_detected)
    return concept


def concept_summary(model_id: str, version: str, concept: Any) -> str | None:
    if not isinstance(concept, ErrorRateDriftDetector):
        return None
    statistic, threshold = concept.decision
    reference = concept.reference_rate
    if concept.drift_detected:
        return (
            f"concept drift on {model_id} {version}: the error rate since the estimated change, "
            f"{statistic:.4f}, is at or above {threshold:.4f}, the rate at which a rise that "
            f"long is significant (reference {reference:.4f})"
        )
    return (
        f"concept drift on {model_id} {version} is over: the error rate of the latest outcomes, "
        f"{statistic:.4f}, is back below {threshold:.4f} (reference {reference:.4f})"
    )


def performance_summary(model_id: str, version: str, verdict: Verdict) -> str:
    rising = verdict.metric in ("rmse", "log_loss", "brier", "calibration_error")  # worse: higher
    if verdict.degraded:
        worse = "above" if rising else "below"
        return (
            f"performance degradation on {model_id} {version}: {verdict.metric} "
            f"{verdict.value:.4g} over the last {verdict.outcomes:,} outcomes is significantly "
            f"{worse} {verdict.line:.4g} (the smallest change that matters from its reference "
            f"{verdict.reference:.4g}; z {verdict.z:.2f} > {verdict.critical:.2f})"
        )
    back = "below" if rising else "above"
    return (
        f"performance of {model_id} {version} is back: {verdict.metric} {verdict.value:.4g} is "
        f"significantly {back} {verdict.line:.4g}, halfway back to its reference "
        f"{verdict.reference:.4g} (z {verdict.z:.2f} > {verdict.critical:.2f})"
    )
