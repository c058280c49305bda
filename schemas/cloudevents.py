"""Alerts and commands: CloudEvents 1.0 in structured JSON mode.

driftline publishes two kinds of CloudEvent:

* **alerts** on ``monitor.alerts`` (``io.driftline.alert.*``), each ``firing`` then ``resolved``;
* **commands** on ``monitor.commands`` that automation acts on:
  ``io.driftline.command.retrain`` and ``io.driftline.command.rollback``.

The CloudEvents ``id`` is derived from the decision itself (model, version, signal, episode
start, ...), never from a clock or a counter, so the same decision always carries the same id:
after a restart or a redelivery a consumer drops duplicates by ``id``.

Examples
--------
>>> alert = make_alert(
...     "data_drift", model_id="fraud", model_version="3", status="firing", signal="feature",
...     detector="adwin+page_hinkley", statistic=4.2, threshold=3.0, feature="amount",
...     event_time_ms=1795255200000, started_at_ms=1795255200000, summary="amount drifted")
>>> alert.type, alert.subject, alert.data.feature
('io.driftline.alert.data_drift', 'fraud', 'amount')
>>> decode_alert(encode(alert)) == alert
True
"""

from __future__ import annotations

import hashlib
from typing import Any, Final, Literal

import msgspec
import orjson

from schemas.events import ms_to_rfc3339

__all__ = [
    "ALERT_TYPES",
    "COMMAND_TYPES",
    "SEVERITIES",
    "Alert",
    "AlertData",
    "Command",
    "Evidence",
    "RetrainData",
    "RollbackData",
    "SegmentAlertData",
    "TimeWindow",
    "decision_id",
    "decode_alert",
    "decode_command",
    "encode",
    "make_alert",
    "make_retrain",
    "make_rollback",
]

SPECVERSION: Final = "1.0"
DEFAULT_SOURCE: Final = "/driftline"

#: Short alert kind -> CloudEvents type.
ALERT_TYPES: Final = {
    kind: f"io.driftline.alert.{kind}"
    for kind in (
        "data_drift",
        "prediction_drift",
        "concept_drift",
        "performance_degradation",
        "input_stall",
        "label_stall",
        "data_quality",
        "latency_degradation",
        "segment_degradation",
        "estimated_performance_degradation",
    )
}
#: Short command kind -> CloudEvents type.
COMMAND_TYPES: Final = {kind: f"io.driftline.command.{kind}" for kind in ("retrain", "rollback")}
SEVERITIES: Final = ("info", "warning", "critical")

Status = Literal["firing", "resolved"]
Severity = Literal["info", "warning", "critical"]
#: Small, typed extra facts about a decision (sample counts, rates before and after, ...).
Details = dict[str, int | float | str | bool | None]


class AlertData(msgspec.Struct, kw_only=True):
    """The ``data`` of an alert."""

    model_id: str
    #: The version the signal was measured on; the latest seen for model-level signals
    #: (stalls, data drift), ``None`` when the model has not served a prediction yet.
    model_version: str | None
    status: Status
    severity: Severity
    #: What was watched: ``feature``, ``prediction``, ``score``, ``error``, ``f1``, ``inputs``,
    #: ``labels``, or a data-quality check (``nulls``, ``unknown_category``, ``type_change``,
    #: ``out_of_range``).
    signal: str
    #: The detector or test that decided, e.g. ``adwin+page_hinkley``, ``psi+chi2``, ``stall``.
    detector: str
    statistic: float
    threshold: float
    #: The feature concerned, where one applies.
    feature: str | None = None
    #: Event time (RFC 3339) the alert refers to: when the detector crossed its threshold for
    #: ``firing``, when it cleared for ``resolved``.
    event_time: str
    #: Event time the episode started; the same for its ``firing`` and ``resolved`` alerts.
    started_at: str
    summary: str
    details: Details = {}


class SegmentAlertData(AlertData, kw_only=True):
    """The ``data`` of an alert about one segment of a model's traffic
    (``segment_degradation``, and the ``segment_appeared`` / ``segment_vanished`` data-quality
    checks): the same fields and the segment, e.g. ``{"country": "PT"}``."""

    segment: dict[str, str]


class Evidence(msgspec.Struct, kw_only=True):
    """Why a command was issued: the detector or test, its statistic and threshold."""

    detector: str
    statistic: float
    threshold: float
    signal: str | None = None
    details: Details = {}


class TimeWindow(msgspec.Struct, kw_only=True):
    """An event-time window, RFC 3339 strings, ``start`` inclusive."""

    start: str
    end: str


class RetrainData(msgspec.Struct, kw_only=True):
    """The ``data`` of ``io.driftline.command.retrain``."""

    model_id: str
    model_version: str
    #: ``concept_drift``, ``performance_degradation`` or (when asked for)
    #: ``estimated_performance_degradation``.
    reason: str
    evidence: Evidence
    #: From the estimated change point (the prediction time of the first outcome of the changed
    #: segment) up to the decision: the window of predictions a retraining job should draw
    #: fresh labelled data from.
    window: TimeWindow


class RollbackData(msgspec.Struct, kw_only=True):
    """The ``data`` of ``io.driftline.command.rollback``."""

    model_id: str
    from_version: str
    to_version: str
    reason: str
    evidence: Evidence


class _CloudEvent(msgspec.Struct, kw_only=True):
    specversion: str = SPECVERSION
    id: str
    source: str
    type: str
    time: str
    subject: str
    datacontenttype: str = "application/json"


class Alert(_CloudEvent, kw_only=True):
    """A CloudEvent on ``monitor.alerts``."""

    data: AlertData


class Command(_CloudEvent, kw_only=True):
    """A CloudEvent on ``monitor.commands``."""

    data: RetrainData | RollbackData


class _RawCommand(_CloudEvent, kw_only=True):
    data: dict[str, Any]


class _SegmentOnly(msgspec.Struct):
    segment: dict[str, str] | None = None


class _AlertSegment(msgspec.Struct):
    data: _SegmentOnly


_alert_decoder = msgspec.json.Decoder(Alert)
_segment_decoder = msgspec.json.Decoder(_AlertSegment)
_raw_command_decoder = msgspec.json.Decoder(_RawCommand)


def decision_id(*parts: str | int | None) -> str:
    """A stable id for a decision: the same parts always give the same id.

    >>> decision_id("rollback", "fraud", "4", "3") == decision_id("rollback", "fraud", "4", "3")
    True
    >>> len(decision_id("x"))
    32
    """
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def encode(event: Alert | Command) -> bytes:
    """JSON bytes of a CloudEvent (orjson: the fastest encoder here)."""
    return orjson.dumps(msgspec.to_builtins(event))


def decode_alert(payload: bytes) -> Alert:
    """Parse and validate an alert CloudEvent (for consumers and tests); an alert about a
    segment has :class:`SegmentAlertData`."""
    alert = _alert_decoder.decode(payload)
    if alert.type not in ALERT_TYPES.values():
        raise msgspec.ValidationError(f"unknown alert type {alert.type!r} - at `$.type`")
    segment = _segment_decoder.decode(payload).data.segment
    if segment is not None:
        fields = msgspec.structs.asdict(alert.data)
        alert = msgspec.structs.replace(alert, data=SegmentAlertData(**fields, segment=segment))
    return alert


def decode_command(payload: bytes) -> Command:
    """Parse and validate a command CloudEvent, choosing its ``data`` model by ``type``."""
    raw = _raw_command_decoder.decode(payload)
    if raw.type == COMMAND_TYPES["retrain"]:
        data: RetrainData | RollbackData = msgspec.convert(raw.data, RetrainData)
    elif raw.type == COMMAND_TYPES["rollback"]:
        data = msgspec.convert(raw.data, RollbackData)
    else:
        raise msgspec.ValidationError(f"unknown command type {raw.type!r} - at `$.type`")
    fields = {f: getattr(raw, f) for f in _CloudEvent.__struct_fields__}
    return Command(**fields, data=data)


def make_alert(
    kind: str,
    *,
    model_id: str,
    model_version: str | None,
    status: Status,
    signal: str,
    detector: str,
    statistic: float,
    threshold: float,
    event_time_ms: int,
    started_at_ms: int,
    summary: str,
    feature: str | None = None,
    severity: Severity = "warning",
    details: Details | None = None,
    source: str = DEFAULT_SOURCE,
    segment: dict[str, str] | None = None,
) -> Alert:
    """Build an alert; its id is fixed by (model, version, kind, signal, feature, episode,
    status, and the segment when there is one): two versions firing the same alert in the same
    millisecond get two ids."""
    ce_type = ALERT_TYPES[kind]
    parts: list[str | int | None] = [
        "alert",
        model_id,
        model_version,
        ce_type,
        signal,
        feature,
        started_at_ms,
        status,
    ]
    fields: dict[str, Any] = {
        "model_id": model_id,
        "model_version": model_version,
        "status": status,
        "severity": severity,
        "signal": signal,
        "detector": detector,
        "statistic": float(statistic),
        "threshold": float(threshold),
        "feature": feature,
        "event_time": ms_to_rfc3339(event_time_ms),
        "started_at": ms_to_rfc3339(started_at_ms),
        "summary": summary,
        "details": details or {},
    }
    if segment:
        parts += [f"{name}={value}" for name, value in sorted(segment.items())]
        data: AlertData = SegmentAlertData(**fields, segment=dict(segment))
    else:
        data = AlertData(**fields)
    return Alert(
        id=decision_id(*parts),
        source=source,
        type=ce_type,
        time=ms_to_rfc3339(event_time_ms),
        subject=model_id,
        data=data,
    )


def make_retrain(
    *,
    model_id: str,
    model_version: str,
    reason: str,
    evidence: Evidence,
    window_start_ms: int,
    decided_at_ms: int,
    episode_ms: int,
    source: str = DEFAULT_SOURCE,
) -> Command:
    """Build a retrain command; its id is fixed by (model, version, reason, episode start)."""
    return Command(
        id=decision_id("retrain", model_id, model_version, reason, episode_ms),
        source=source,
        type=COMMAND_TYPES["retrain"],
        time=ms_to_rfc3339(decided_at_ms),
        subject=model_id,
        data=RetrainData(
            model_id=model_id,
            model_version=model_version,
            reason=reason,
            evidence=evidence,
            window=TimeWindow(
                start=ms_to_rfc3339(window_start_ms), end=ms_to_rfc3339(decided_at_ms)
            ),
        ),
    )


def make_rollback(
    *,
    model_id: str,
    from_version: str,
    to_version: str,
    reason: str,
    evidence: Evidence,
    decided_at_ms: int,
    source: str = DEFAULT_SOURCE,
) -> Command:
    """Build a rollback command; its id is fixed by (model, from, to): one rollback per pair."""
    return Command(
        id=decision_id("rollback", model_id, from_version, to_version),
        source=source,
        type=COMMAND_TYPES["rollback"],
        time=ms_to_rfc3339(decided_at_ms),
        subject=model_id,
        data=RollbackData(
            model_id=model_id,
            from_version=from_version,
            to_version=to_version,
            reason=reason,
            evidence=evidence,
        ),
    )
