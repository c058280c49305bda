"""What a labelled outcome decides for its version: concept drift and the retrain it asks
for, performance degradation and its retrain, and a rollback of a version that does worse than
the last good one."""

from __future__ import annotations

from typing import Any

from detectors.alerting import Reading
from detectors.config import ModelConfig
from detectors.error_rate import ErrorRateDriftDetector
from detectors.outbox import Outbox, alert_key
from detectors.performance import Verdict
from detectors.policies import AlertBook, RetrainPolicy, RollbackPolicy, Transition
from detectors.version import VersionState
from detectors.wording import concept_summary, decided, performance_summary
from schemas import Evidence, make_retrain, make_rollback

__all__ = ["OutcomeDecisions"]

# The performance check runs once per this many outcomes (it reads the confusion matrix).
_PERFORMANCE_EVERY = 10


class OutcomeDecisions:
    """The decisions one model's labelled outcomes lead to (its policies hold what they
    remember; this holds none of its own)."""

    def __init__(
        self,
        model_id: str,
        source: str,
        config: ModelConfig,
        alerts: AlertBook,
        retrain: RetrainPolicy,
        rollback: RollbackPolicy,
        outbox: Outbox,
    ) -> None:
        self.model_id = model_id
        self.source = source
        self.config = config
        self.alerts = alerts
        self.retrain = retrain
        self.rollback = rollback
        self.outbox = outbox

    def apply(self, version: VersionState, error: float, at: int) -> None:
        """``version``'s latest outcome (its metrics and performance test already updated):
        its ``error`` (0/1, or absolute for regression), decided at event time ``at``."""
        concept = version.concept
        flips = concept.update_many((error,))
        for _ in flips:
            self._concept_flip(version, at)
        if isinstance(concept, ErrorRateDriftDetector):
            for _ in concept.escalations:
                self._concept_escalated(version, concept, at)
        if not flips:
            self.outbox.settle("concept_drift", "error", None, version, concept, at)
        if concept.drift_detected and self.retrain.outcome(version.version, at):
            self._retrain_for_drift(version, at)
        if version.outcomes % _PERFORMANCE_EVERY == 0:
            self._check_performance(version, at)
        decision = self.rollback.outcome(version.version, error, version.regression)
        if decision is not None:
            command = make_rollback(
                model_id=self.model_id,
                from_version=decision.from_version,
                to_version=decision.to_version,
                reason="worse_than_previous_version",
                evidence=Evidence(
                    detector=decision.test,
                    statistic=decision.statistic,
                    threshold=decision.threshold,
                    signal="error",
                    details=decision.details,
                ),
                decided_at_ms=at,
                source=self.source,
            )
            self.outbox.emit(command)

    def _change_time(self, version: VersionState, concept: Any, at: int) -> int:
        """Event time of the concept detector's estimated change point (``at`` if not kept)."""
        change = version.time_ago(concept.n - concept.change_index)
        return change if change is not None else at

    def _concept_flip(self, version: VersionState, at: int) -> None:
        concept = version.concept
        if concept.drift_detected:
            level = concept.level if isinstance(concept, ErrorRateDriftDetector) else 0.0
            self.retrain.drift_started(
                version.version, at, self._change_time(version, concept, at), level
            )
        else:
            self.retrain.drift_ended(version.version)
        self.outbox.signal(
            alert_key("concept_drift", "error", None, version),
            concept.drift_detected,
            at,
            Reading.of(decided(concept)),
            concept.trigger,
            summary=concept_summary(self.model_id, version.version, concept),
        )

    def _concept_escalated(
        self, version: VersionState, concept: ErrorRateDriftDetector, at: int
    ) -> None:
        """A drift rose further while its alert was firing: a new, worse episode. The open one
        resolves at once, the new one fires (whatever the cooldown) and may ask for a retrain
        of its own (the first one's may have been for a smaller change, or for none)."""
        key = alert_key("concept_drift", "error", None, version)
        self.outbox.resolve_now(
            key, at, "superseded by a larger rise of the error rate", "superseded"
        )
        self.retrain.drift_started(
            version.version, at, self._change_time(version, concept, at), concept.level
        )
        self.outbox.signal(
            key,
            True,
            at,
            Reading.of(decided(concept)),
            concept.trigger,
            reopen=True,
            summary=concept_summary(self.model_id, version.version, concept),
        )

    def _retrain_for_drift(self, version: VersionState, at: int) -> None:
        episode = self.retrain.episode(version.version)
        assert episode is not None
        started, change_point = episode
        concept = version.concept
        details: dict[str, Any] = {"outcomes_since_drift": self.config.retrain.confirm_samples}
        statistic, threshold = concept.statistic, concept.threshold
        if isinstance(concept, ErrorRateDriftDetector):
            statistic, threshold = concept.decision
            details["error_rate_reference"] = concept.reference_rate
            details["error_rate_episode"] = concept.level
            details["error_rate_recent"] = concept.statistic
        else:
            details["abs_error_level_std"] = concept.level
        self.command_retrain(
            version,
            at,
            "concept_drift",
            started,
            change_point,
            Evidence(
                detector=concept.trigger,
                statistic=statistic,
                threshold=threshold,
                signal="error",
                details=details,
            ),
        )

    def _performance_signal(
        self, version: VersionState, metric: str, verdict: Verdict, degraded: bool, at: int
    ) -> Transition | None:
        """Observe ``metric``'s performance alert of ``version``, reporting ``verdict``."""
        return self.outbox.signal(
            alert_key("performance_degradation", metric, None, version),
            degraded,
            at,
            Reading(float(verdict.value), float(verdict.line)),
            f"{metric}_test",
            summary=performance_summary(self.model_id, version.version, verdict),
        )

    def _check_performance(self, version: VersionState, at: int) -> None:
        performance = version.performance
        verdict = performance.check()
        if verdict is None:
            return  # warming up, or too little evidence in the window yet
        if not performance.degraded:
            self.retrain.degradation_over(version.version)
        # One alert per version and metric; a metric that recovered keeps reporting "clear"
        # until its alert resolves (after resolve_after), whichever metric is worst now.
        for key in self.alerts.firing_keys():
            if (
                key.alert == "performance_degradation"
                and key.version == version.version
                and (key.signal != verdict.metric or not verdict.degraded)
            ):
                # The verdict that found it back (the pair that decides the resolve).
                recovery = performance.recovery
                shown = recovery if recovery and recovery.metric == key.signal else verdict
                self._performance_signal(version, key.signal, shown, False, at)
        if not verdict.degraded:
            return
        transition = self._performance_signal(version, verdict.metric, verdict, True, at)
        if (
            transition is not None
            and transition.status == "firing"
            and self.retrain.degraded(version.version, at)
        ):
            change = version.time_ago(performance.change_point())
            self.command_retrain(
                version,
                at,
                "performance_degradation",
                at,
                change if change is not None else version.first_seen,
                Evidence(
                    detector=f"{verdict.metric}_test",
                    statistic=verdict.value,
                    threshold=verdict.line,
                    signal=verdict.metric,
                    details={
                        "reference": verdict.reference,
                        "z": round(verdict.z, 3),
                        "critical_z": round(verdict.critical, 3),
                        "window_outcomes": verdict.outcomes,
                        "reference_outcomes": verdict.reference_outcomes,
                    },
                ),
            )

    def command_retrain(
        self,
        version: VersionState,
        at: int,
        reason: str,
        episode: int,
        window_start: int,
        evidence: Evidence,
    ) -> None:
        command = make_retrain(
            model_id=self.model_id,
            model_version=version.version,
            reason=reason,
            evidence=evidence,
            window_start_ms=min(window_start, at),
            decided_at_ms=at,
            episode_ms=episode,
            source=self.source,
        )
        concept = version.concept
        # The error rate the retrain was for: a later drift must rise above it to ask again.
        level = concept.statistic if isinstance(concept, ErrorRateDriftDetector) else 0.0
        self.retrain.commanded(version.version, at, level)
        self.outbox.emit(command)
