"""What a model's segments decide: ``segment_degradation`` alerts, and the ``segment_appeared``
and ``segment_vanished`` data-quality checks.

``segment_degradation`` (signal ``error_rate``, or ``mae`` for regression)
    at each check, every tested segment against the rest of the model's traffic
    (:mod:`detectors.segment_errors`), at ``alpha / k`` for ``k`` segments tested. It fires
    when ``z`` passes that critical value and stays firing while the segment's error is still
    above its line (``z > 0``); then it resolves after ``alerts.resolve_after``. The alert's
    ``segment`` names the failing segment; the comparison's figures are in ``details``.
``data_quality`` / ``segment_appeared``, ``segment_vanished``
    at each review of the slots (:mod:`detectors.segment_slots`).

A value that loses its slot resolves its alerts at once (``segment no longer tracked``).
"""

from __future__ import annotations

from statistics import NormalDist

from detectors.alerting import AlertKey, Reading
from detectors.config import ModelConfig
from detectors.outbox import Outbox
from detectors.policies import AlertBook
from detectors.segment_slots import VANISHED_EXPECTED
from detectors.segments import Segments

__all__ = ["SegmentDecisions"]

ALERT = "segment_degradation"


class SegmentDecisions:
    """The segment decisions of one model."""

    def __init__(
        self, model_id: str, config: ModelConfig, alerts: AlertBook, outbox: Outbox
    ) -> None:
        self.model_id = model_id
        self.config = config.segmentation
        self.alerts = alerts
        self.outbox = outbox

    def review(self, segments: Segments, at: int) -> None:
        """Review the slots at event time ``at``: values that lost their slot, values that
        appeared or vanished."""
        for index, change, _, value in segments.review(at):
            if change == "evicted":
                self._forget((segments.names[index], value), at)
        firing = self.alerts.firing
        for index, slots in enumerate(segments.slots):
            name = segments.names[index]
            shares = slots.shares()
            for slot, value in slots.tracked():
                segment = (name, value)
                key = AlertKey("data_quality", "segment_appeared", segment=segment)
                appeared = slots.appeared(slot)
                if appeared or firing(key):
                    share = shares[slot]
                    self.outbox.signal(
                        key,
                        appeared,
                        at,
                        Reading(share, self.config.min_share),
                        "segment_traffic",
                        summary=f"segment {name}={value} of {self.model_id} "
                        + (f"appeared: {share:.1%} of the traffic" if appeared else "is not new"),
                        details={"share": round(share, 6)},
                    )
                key = AlertKey("data_quality", "segment_vanished", segment=segment)
                vanished = slots.vanished(slot)
                if vanished or firing(key):
                    silent, share = slots.silence(slot)
                    self.outbox.signal(
                        key,
                        vanished,
                        at,
                        Reading(silent * share, VANISHED_EXPECTED),
                        "segment_traffic",
                        summary=f"segment {name}={value} of {self.model_id} "
                        + (
                            f"vanished: no prediction in the last {silent} (it had {share:.1%})"
                            if vanished
                            else "is back"
                        ),
                        details={
                            "predictions_since_seen": silent,
                            "share_when_seen": round(share, 6),
                        },
                    )

    def check(self, segments: Segments, at: int, regression: bool) -> None:
        """Test every segment with enough outcomes at event time ``at``."""
        tests = segments.tests()
        if not tests:
            return
        critical = NormalDist().inv_cdf(1.0 - self.config.alpha / len(tests))
        signal = "mae" if regression else "error_rate"
        for index, slot, test in tests:
            name, value = segments.describe(index, slot)
            key = AlertKey(ALERT, signal, segment=(name, value))
            # Fires past the corrected critical value; stays while still above its line.
            worse = test.z > (0.0 if self.alerts.firing(key) else critical)
            if not worse and not self.alerts.firing(key):
                continue  # the common case: nothing to observe (cheap)
            self.outbox.signal(
                key,
                worse,
                at,
                Reading(test.error, test.line),
                "segment_two_sample_test",
                summary=(
                    f"{signal.replace('_', ' ')} of segment {name}={value} of {self.model_id} is "
                    f"{test.error:.4g} against {test.rest_error:.4g} for the rest of its traffic"
                ),
                details={
                    signal: round(test.error, 6),
                    f"rest_{signal}": round(test.rest_error, 6),
                    "line": round(test.line, 6),
                    "outcomes": round(test.outcomes, 1),
                    "rest_outcomes": round(test.rest_outcomes, 1),
                    "z": round(test.z, 3),
                    "critical": round(critical, 3),
                    "segments_tested": len(tests),
                },
            )

    def _forget(self, segment: tuple[str, str], at: int) -> None:
        for key in self.alerts.firing_keys():
            if key.segment == segment:
                self.outbox.resolve_now(key, at, reason="segment no longer tracked")
        self.alerts.forget(lambda key: key.segment == segment)
