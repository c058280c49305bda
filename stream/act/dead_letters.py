"""Dead letters of ``driftline act``: the same shape as the worker's (stream/deadletter.py).

The original key and value, and headers that say what went wrong and where the record came
from::

    driftline-error             rollback of model 'x' refused: it is not listed in actions.allow
    driftline-error-reason      not_allowed            (one of REASONS)
    driftline-error-cause       a parser's own message (only when a parser refused the record)
    driftline-action            mlflow_rollback        (only when one step failed)
    driftline-source-topic      monitor.commands
    driftline-source-partition  0
    driftline-source-offset     17

Messages are driftline's own words and hold no secret (receivers are shown by scheme, host and
port; MLflow errors by their error code).

>>> letter = dead_letter("too_old", "decided 7200 s ago", key=b"m", value=b"{}",
...                      topic="monitor.commands", partition=0, offset=17)
>>> dict(letter.headers)["driftline-error-reason"], letter.reason
(b'too_old', 'too_old')
"""

from __future__ import annotations

from typing import Final

from stream.deadletter import DeadLetter, source_headers

__all__ = ["REASONS", "dead_letter"]

REASONS: Final = (
    "invalid_command",  # not a driftline command CloudEvent (or out of bounds)
    "invalid_alert",  # the same, on the alerts topic
    "not_allowed",  # a rollback of a model or alias outside actions.allow
    "too_old",  # older than actions.max_age
    "outcome_unknown",  # intent recorded, outcome not: not repeated
    "action_failed",  # refused for good (HTTP 4xx, unknown MLflow model or version)
    "retries_exhausted",  # still failing when the retry cap was reached
)
_MAX_HEADER: Final = 2048


def _header(text: str) -> bytes:
    return text.encode()[:_MAX_HEADER]


def dead_letter(
    reason: str,
    message: str,
    *,
    key: bytes | None,
    value: bytes | None,
    topic: str,
    partition: int,
    offset: int,
    cause: str | None = None,
    action: str | None = None,
) -> DeadLetter:
    """The dead-letter record for a refused or failed command (or alert)."""
    assert reason in REASONS, reason
    headers = [("driftline-error", _header(message)), ("driftline-error-reason", reason.encode())]
    if cause is not None:
        headers.append(("driftline-error-cause", _header(cause)))
    if action is not None:
        headers.append(("driftline-action", action.encode()))
    headers += source_headers(topic, partition, offset)
    return DeadLetter(
        key=key, value=value or b"", headers=headers, reason=reason, source_topic=topic
    )
