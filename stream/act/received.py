"""A record from the commands (or alerts) topic, parsed and bounded, or the reason it is not one.

Every record is untrusted: its size and nesting are checked before parsing (schemas.limits), it
must be a driftline command (or alert) CloudEvent by the published schema, and the fields act
uses as names (``id``, the model, its versions) must fit the contract's charset, because they
become Kafka keys, MLflow names and tags.

Examples
--------
>>> from schemas import Limits
>>> received = parse_record(b'{"specversion": "1.0"}', "commands", Limits())
>>> received.reason, received.message
('invalid_command', 'not a driftline command CloudEvent')
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Final, Literal

import msgspec
import orjson

from schemas import Limits
from schemas.cloudevents import Alert, Command, RollbackData, decode_alert, decode_command
from schemas.decoder import nesting_depth
from schemas.events import rfc3339_to_ms
from schemas.limits import ID_PATTERN

__all__ = ["Kind", "Received", "Refusal", "parse_record"]

#: ``retrain`` and ``rollback`` (commands topic) or ``alerts`` (alerts topic).
Kind = Literal["retrain", "rollback", "alerts"]
_EVENT_ID: Final = re.compile(r"^[0-9a-f]{32}$")
_NAME: Final = re.compile(ID_PATTERN)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a record is not acted on. ``reason`` is short and bounded (a metric label and the
    dead letter's ``driftline-error-reason``); ``message`` is driftline's own words; ``cause``
    is a parser's message, informative only."""

    reason: str
    message: str
    cause: str | None = None


@dataclass(frozen=True, slots=True)
class Received:
    """A valid command or alert.

    ``raw`` is the record's value as it came (the structured CloudEvent, forwarded unchanged);
    ``envelope`` its JSON, for the binary HTTP mode.
    """

    id: str
    kind: Kind
    model_id: str
    time_ms: int
    raw: bytes
    envelope: dict[str, Any]
    event: Command | Alert

    @property
    def rollback(self) -> RollbackData | None:
        data = self.event.data
        return data if isinstance(data, RollbackData) else None


def parse_record(
    value: bytes | None, topic: Literal["commands", "alerts"], limits: Limits
) -> Received | Refusal:
    """Parse one record's value; never raises for bad input."""
    what = "command" if topic == "commands" else "alert"
    invalid = f"invalid_{what}"
    if value is None:
        return Refusal(invalid, "record has no value (null)")
    if len(value) > limits.max_message_bytes:
        return Refusal(invalid, f"record is larger than {limits.max_message_bytes} bytes")
    if nesting_depth(value, limits.max_depth) > limits.max_depth:
        return Refusal(invalid, f"JSON nested deeper than {limits.max_depth}")
    try:
        envelope = orjson.loads(value)
        event: Command | Alert = (
            decode_command(value) if topic == "commands" else decode_alert(value)
        )
    except (orjson.JSONDecodeError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        return Refusal(invalid, f"not a driftline {what} CloudEvent", cause=str(exc)[:512])
    if not _EVENT_ID.match(event.id):
        return Refusal(invalid, "$.id: expected 32 lowercase hex digits")
    model_id = event.data.model_id
    if event.subject != model_id:
        return Refusal(invalid, "$.subject: differs from $.data.model_id")
    versions = [model_id]
    if isinstance(event, Command):
        data = event.data
        versions += (
            [data.from_version, data.to_version]
            if isinstance(data, RollbackData)
            else [data.model_version]
        )
    for name in versions:
        if len(name) > limits.max_id_length or not _NAME.match(name):
            return Refusal(
                invalid, "$.data: a model id or version is not in the contract's charset"
            )
    try:
        stamp = dt.datetime.fromisoformat(event.time)
    except ValueError:
        return Refusal(invalid, "$.time: not an RFC 3339 time")
    if stamp.tzinfo is None:
        return Refusal(invalid, "$.time: has no time zone")
    time_ms = rfc3339_to_ms(stamp)
    if isinstance(event, Command):
        kind: Kind = "rollback" if isinstance(event.data, RollbackData) else "retrain"
    else:
        kind = "alerts"
    return Received(
        id=event.id,
        kind=kind,
        model_id=model_id,
        time_ms=time_ms,
        raw=value,
        envelope=envelope,
        event=event,
    )
