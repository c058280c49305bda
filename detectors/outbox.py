"""One model's alerts and commands as they are decided.

The alert book (:class:`~detectors.policies.AlertBook`) decides when an alert fires or
resolves; the outbox words it as a CloudEvent, counts it and collects it for the caller.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from detectors.alerting import AlertKey, Reading
from detectors.counters import Counters
from detectors.error_rate import ErrorRateDriftDetector
from detectors.policies import AlertBook, Transition
from detectors.version import VersionState
from detectors.wording import SEVERITY, concept_summary, decided, detector_name
from schemas import make_alert
from schemas.cloudevents import Alert, Command

__all__ = ["Emission", "Outbox", "alert_key"]

Emission = Alert | Command


def alert_key(
    alert: str, signal: str, feature: str | None, version: VersionState | None
) -> AlertKey:
    return AlertKey.of(alert, signal, feature, None if version is None else version.version)


class Outbox:
    """The CloudEvents one model decided, in order.

    Parameters
    ----------
    model_id, source
        Whose alerts, and the CloudEvents ``source``.
    alerts
        The model's alert book.
    counters
        The monitor's totals (alerts and commands, by type).
    latest_version
        The model's latest version now (what a model-wide alert reports).
    """

    def __init__(
        self,
        model_id: str,
        source: str,
        alerts: AlertBook,
        counters: Counters,
        latest_version: Callable[[], str | None],
    ) -> None:
        self.model_id = model_id
        self.source = source
        self.alerts = alerts
        self.counters = counters
        self.latest_version = latest_version
        self.events: list[Emission] = []

    def take(self) -> list[Emission]:
        """What was decided since the last call."""
        events, self.events = self.events, []
        return events

    def drift_flips(
        self,
        alert: str,
        signal: str,
        feature: str | None,
        version: VersionState | None,
        detector: Any,
        flips: list[int],
        times: Sequence[int],
    ) -> None:
        # A flip list alternates states, ending in the detector's current one.
        state = detector.drift_detected
        states = [state if (len(flips) - k) % 2 == 1 else not state for k in range(len(flips))]
        key = alert_key(alert, signal, feature, version)
        name = detector_name(alert, detector)
        for index, firing in zip(flips, states, strict=True):
            self.signal(key, firing, times[index], Reading.of(detector), name)

    def settle(
        self,
        alert: str,
        signal: str,
        feature: str | None,
        version: VersionState | None,
        detector: Any,
        at: int,
    ) -> None:
        """Give a clear-but-not-yet-resolved alert the chance to resolve (``resolve_after``)."""
        if detector.drift_detected or not self.alerts.any_firing:
            return
        key = alert_key(alert, signal, feature, version)
        if self.alerts.firing(key):
            name = detector_name(alert, detector)
            summary = None
            if isinstance(detector, ErrorRateDriftDetector):
                assert version is not None
                summary = concept_summary(self.model_id, version.version, detector)
                detector = decided(detector)
            self.signal(key, False, at, Reading.of(detector), name, summary=summary)

    def signal(
        self,
        key: AlertKey,
        condition: bool,
        at: int,
        reading: Reading,
        detector: str,
        *,
        resolve_now: bool = False,
        reopen: bool = False,
        summary: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> Transition | None:
        """Observe an alert's condition; emit the alert when it fires or resolves.

        ``reading`` is the pair that decided the transition, and ``detector`` the name of what
        decided it. ``summary`` replaces the generic one (which says the statistic crossed,
        or is back within, its threshold). ``reopen``: a new episode starts now even while the
        key is quiet after a resolve (an escalation).
        """
        if reopen:
            transition: Transition | None = self.alerts.reopen(key, at)
        else:
            transition = self.alerts.observe(key, condition, at, resolve_now=resolve_now)
        if transition is None:
            return None
        alert, signal, feature, version, segment = key
        statistic, threshold = reading
        if alert.endswith("_stall"):
            statistic, threshold = statistic / 1000.0, threshold / 1000.0  # seconds
        if summary is None:
            what = f"{signal} {feature}" if feature else signal
            if segment:
                what += f" of segment {segment[0]}={segment[1]}"
            verb = "crossed" if transition.status == "firing" else "back within"
            summary = (
                f"{alert.replace('_', ' ')} on {self.model_id}"
                f"{' ' + version if version else ''}: {what} {verb} its threshold"
            )
        self.emit(
            make_alert(
                alert,
                model_id=self.model_id,
                model_version=version if version is not None else self.latest_version(),
                status=transition.status,  # type: ignore[arg-type]
                signal=signal,
                detector=detector or "unchanged",
                statistic=statistic if math.isfinite(statistic) else 0.0,
                threshold=threshold if math.isfinite(threshold) else 0.0,
                feature=feature or None,
                event_time_ms=transition.at,
                started_at_ms=transition.started_at,
                summary=summary,
                severity=SEVERITY[alert],  # type: ignore[arg-type]
                details=details,
                source=self.source,
                segment=dict([segment]) if segment else None,
            )
        )
        return transition

    def resolve_now(self, key: AlertKey, at: int, reason: str, detector: str = "reset") -> None:
        """Resolve ``key`` at once, for ``reason``: no test decided it, so its statistic and
        threshold are 0 and its detector says why (``reset``, ``superseded``)."""
        transition = self.alerts.observe(key, False, at, resolve_now=True)
        if transition is None:
            return
        alert, signal, feature = key.alert, key.signal, key.feature or None
        # A version's alert resolves for that version.
        version = key.version if key.version is not None else self.latest_version()
        self.emit(
            make_alert(
                alert,
                model_id=self.model_id,
                model_version=version,
                status="resolved",
                signal=signal,
                detector=detector,
                statistic=0.0,
                threshold=0.0,
                feature=feature,
                event_time_ms=at,
                started_at_ms=transition.started_at,
                summary=f"{alert} resolved: {reason}",
                severity=SEVERITY[alert],  # type: ignore[arg-type]
                source=self.source,
                segment=dict([key.segment]) if key.segment else None,
            )
        )

    def emit(self, event: Emission) -> None:
        if isinstance(event, Alert):
            Counters.add(self.counters.alerts, event.type)
        else:
            Counters.add(self.counters.commands, event.type)
        self.events.append(event)
