"""What a version's estimated performance decides: ``estimated_performance_degradation`` alerts,
and (``estimation.retrain``, off by default) a retrain command.

Each check of the estimate (:mod:`detectors.estimator`, :mod:`detectors.class_estimator`,
:mod:`detectors.loss_estimator`) observes the version's alert: it fires when the estimated
metric is significantly below its reference's line (a regression version's estimated MAE:
above it), stays while it is beyond the line, then resolves after ``alerts.resolve_after``
(cooldown as for every alert). A classifier's alert is decided by ``cbpe``, with signal the
metric watched; a regression version's by ``dle``, signal ``mae``, its details with
``outside``, the share of the window's predictions beyond the reference's range. A retrain
asked for on an estimate follows the retrain policy (cooldown, a drift that already asked) and
says so in its reason, ``estimated_performance_degradation``.
"""

from __future__ import annotations

from detectors.alerting import AlertKey, Reading
from detectors.config import ModelConfig
from detectors.estimator import EstimateVerdict
from detectors.outbox import Outbox
from detectors.outcome_decisions import OutcomeDecisions
from detectors.policies import RetrainPolicy
from detectors.version import VersionState
from schemas import Evidence

__all__ = ["EstimationDecisions"]

ALERT = "estimated_performance_degradation"


class EstimationDecisions:
    """The estimated-performance decisions of one model."""

    def __init__(
        self,
        model_id: str,
        config: ModelConfig,
        outbox: Outbox,
        retrain: RetrainPolicy,
        outcomes: OutcomeDecisions,
    ) -> None:
        self.model_id = model_id
        self.config = config.estimation
        self.outbox = outbox
        self.retrain = retrain
        self.outcomes = outcomes

    def apply(self, version: VersionState, verdicts: list[EstimateVerdict]) -> None:
        """The checks of ``version``'s estimate made in a batch of predictions."""
        for verdict in verdicts:
            key = AlertKey(ALERT, verdict.metric, "", version.version)
            if not verdict.degraded and not self.outbox.alerts.firing(key):
                continue  # the common case: nothing to observe
            rising = verdict.outside is not None  # (an error: higher is worse)
            if rising:
                state = "above" if verdict.degraded else "back below"
                detector = "dle"
                summary = (
                    f"estimated {verdict.metric} of {self.model_id} {version.version} is "
                    f"{verdict.value:.4g}, {state} {verdict.line:.4g} (reference "
                    f"{verdict.reference:.4g} + {self.config.min_rise:.0%}), before labels"
                )
            else:
                state = "below" if verdict.degraded else "back above"
                detector = "cbpe"
                summary = (
                    f"estimated {verdict.metric} of {self.model_id} {version.version} is "
                    f"{verdict.value:.3f}, {state} {verdict.line:.3f} (reference "
                    f"{verdict.reference:.3f}), before labels"
                )
            transition = self.outbox.signal(
                key,
                verdict.degraded,
                verdict.at,
                Reading(verdict.value, verdict.line),
                detector,
                summary=summary,
                details=_details(verdict),
            )
            if (
                self.config.retrain
                and transition is not None
                and transition.status == "firing"
                and self.retrain.degraded(version.version, verdict.at)
            ):
                self.outcomes.command_retrain(
                    version,
                    verdict.at,
                    ALERT,
                    verdict.since,
                    verdict.since,
                    Evidence(
                        detector=detector,
                        statistic=verdict.value,
                        threshold=verdict.line,
                        signal=f"estimated_{verdict.metric}",
                        details=_details(verdict),
                    ),
                )


def _details(verdict: EstimateVerdict) -> dict[str, float | int | str | bool | None]:
    details: dict[str, float | int | str | bool | None] = {
        "reference": round(verdict.reference, 6),
        "z": round(verdict.z, 3),
        "critical_z": round(verdict.critical, 3),
    }
    if verdict.outside is not None:
        details["outside"] = round(verdict.outside, 4)
    return details
