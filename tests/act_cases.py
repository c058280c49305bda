"""Commands and configurations shared by the tests of ``driftline act``."""

from __future__ import annotations

import time

from schemas import Evidence, encode, make_alert, make_retrain, make_rollback

EVIDENCE = Evidence(
    detector="two_proportion_z", statistic=4.1, threshold=2.33, details={"errors_after": 40}
)


def now_ms() -> int:
    return int(time.time() * 1000)


def rollback(
    model_id: str = "churn",
    from_version: str = "2",
    to_version: str = "1",
    *,
    at_ms: int | None = None,
    source: str = "/driftline",
) -> bytes:
    """A rollback command as the worker publishes it (decided ``at_ms``, default now)."""
    return encode(
        make_rollback(
            model_id=model_id,
            from_version=from_version,
            to_version=to_version,
            reason="worse_than_previous_version",
            evidence=EVIDENCE,
            decided_at_ms=now_ms() if at_ms is None else at_ms,
            source=source,
        )
    )


def retrain(model_id: str = "churn", version: str = "2", *, at_ms: int | None = None) -> bytes:
    at = now_ms() if at_ms is None else at_ms
    return encode(
        make_retrain(
            model_id=model_id,
            model_version=version,
            reason="concept_drift",
            evidence=EVIDENCE,
            window_start_ms=at - 60_000,
            decided_at_ms=at,
            episode_ms=at - 60_000,
        )
    )


def stall_alert(model_id: str, summary: str = "no inputs for 2x the usual gap") -> bytes:
    """An input-stall alert, firing now, as the worker publishes it."""
    return encode(
        make_alert(
            "input_stall",
            model_id=model_id,
            model_version="1",
            status="firing",
            signal="inputs",
            detector="stall",
            statistic=2.0,
            threshold=1.0,
            event_time_ms=now_ms(),
            started_at_ms=now_ms(),
            summary=summary,
        )
    )


def parsed_by_sdk(headers: dict[str, str], body: bytes) -> tuple[dict, object]:
    """Attributes and data of an HTTP request as the CloudEvents SDK reads it (either mode; the
    SDK's ``time`` back to the contract's RFC 3339 string)."""
    from cloudevents.core.bindings.http import HTTPMessage, from_http_event

    event = from_http_event(
        HTTPMessage(headers={k.lower(): v for k, v in headers.items()}, body=body)
    )
    attributes = dict(event.get_attributes())
    stamp = attributes.get("time")
    if stamp is not None:
        attributes["time"] = (
            stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
        )
    return attributes, event.get_data()


def same_event(raw: bytes, attributes: dict, data: object) -> bool:
    """Whether what the SDK read is the event ``raw`` (its JSON), every attribute and data."""
    import orjson

    original = orjson.loads(raw)
    expected = {k: v for k, v in original.items() if k != "data"}
    return attributes == expected and data == original["data"]
