"""What a version's inference latency decides: ``latency_degradation`` alerts and, when the
configuration names latency as a reason, the rollback of a new version slower than the last good
one.

Three alerts per version (signal, what fires it), checked each time the window slides:

``latency_p99``
    the window's p99 is significantly and materially above the version's own reference p99
    (a model server whose tail creeps up);
``latency_p99_rollout``
    a new version's p99 is significantly and materially above the last good version's (a slow
    rollout), judged from the new version's first full window on;
``latency_p99_slo``
    the window's p99 is over ``latency.slo_p99``, from the first full window on.

See :mod:`detectors.latency` for the test.
"""

from __future__ import annotations

from detectors.alerting import AlertKey, Reading
from detectors.config import ModelConfig
from detectors.latency import Rise
from detectors.outbox import Outbox
from detectors.policies import RollbackPolicy, Transition
from detectors.version import VersionState
from schemas import Evidence, make_rollback

__all__ = ["LatencyDecisions"]

ALERT = "latency_degradation"


class LatencyDecisions:
    """The latency decisions of one model (its rollback policy holds what they remember)."""

    def __init__(
        self,
        model_id: str,
        source: str,
        config: ModelConfig,
        rollback: RollbackPolicy,
        outbox: Outbox,
    ) -> None:
        self.model_id = model_id
        self.source = source
        self.config = config
        self.rollback = rollback
        self.outbox = outbox

    def check(self, version: VersionState, versions: dict[str, VersionState], at: int) -> None:
        """``version``'s window slid at event time ``at``: observe its three alerts."""
        latency = version.latency
        if latency is None or not latency.window_full:
            return
        name = version.version
        if latency.ready:
            rise = latency.rise()
            self._signal(version, "latency_p99", rise, "latency_reference_test", at)
        slo = self.config.latency.slo_p99
        if slo is not None:
            p99 = latency.p99
            self.outbox.signal(
                AlertKey(ALERT, "latency_p99_slo", "", name),
                p99 > slo,
                at,
                Reading(p99, float(slo)),
                "latency_slo",
                summary=(
                    f"p99 latency of {self.model_id} {name} is {p99:.1f} ms, "
                    f"{'over' if p99 > slo else 'within'} its SLO of {slo} ms"
                ),
                details={"p99_ms": round(p99, 3), "slo_p99_ms": slo},
            )
        self._check_rollout(version, versions, at)

    def _check_rollout(
        self, version: VersionState, versions: dict[str, VersionState], at: int
    ) -> None:
        """A new version against the last good one's p99 (counted from when it was first
        compared: the good version's p99 at that moment is the baseline)."""
        latency = version.latency
        assert latency is not None
        rollback = self.rollback
        if latency.baseline is None:
            good = versions.get(rollback.good) if rollback.good is not None else None
            if (
                version.version != rollback.candidate
                or good is None
                or good.latency is None
                or not good.latency.window_full
            ):
                return
            latency.watch(good.latency.p99, good.latency.window_n)
        rise = latency.rise_over_baseline()
        transition = self._signal(
            version, "latency_p99_rollout", rise, "latency_rollout_test", at, rollout=True
        )
        if (
            transition is not None
            and transition.status == "firing"
            and "latency" in self.config.rollback.reasons
            and self.config.rollback.enabled
            and rollback.candidate == version.version
            and rollback.good is not None
        ):
            to_version = rollback.good
            rollback.roll_back(version.version)
            self.outbox.emit(
                make_rollback(
                    model_id=self.model_id,
                    from_version=version.version,
                    to_version=to_version,
                    reason="slower_than_previous_version",
                    evidence=Evidence(
                        detector="latency_rollout_test",
                        statistic=rise.p99,
                        threshold=rise.line,
                        signal="latency_p99",
                        details=rise.details(),
                    ),
                    decided_at_ms=at,
                    source=self.source,
                )
            )

    def _signal(
        self,
        version: VersionState,
        signal: str,
        rise: Rise,
        detector: str,
        at: int,
        rollout: bool = False,
    ) -> Transition | None:
        against = "the last good version's" if rollout else "its reference"
        state = "above" if rise.significant else "back near"
        return self.outbox.signal(
            AlertKey(ALERT, signal, "", version.version),
            rise.significant,
            at,
            Reading(rise.p99, rise.line),
            detector,
            summary=(
                f"p99 latency of {self.model_id} {version.version} is {rise.p99:.1f} ms, "
                f"{state} {against} {rise.threshold:.1f} ms"
            ),
            details=rise.details(),
        )
