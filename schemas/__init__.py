"""driftline's event contract: typed events, their decoder, and the CloudEvents it emits.

The JSON Schema files in this package (``*.schema.json``) publish the same contract for
producers and consumers written in any language.
"""

from schemas.cloudevents import (
    ALERT_TYPES,
    COMMAND_TYPES,
    Alert,
    AlertData,
    Command,
    Evidence,
    RetrainData,
    RollbackData,
    SegmentAlertData,
    TimeWindow,
    decision_id,
    decode_alert,
    decode_command,
    encode,
    make_alert,
    make_retrain,
    make_rollback,
)
from schemas.decoder import REASONS, DecodedBatch, DecodeError, EventDecoder, Rejected
from schemas.events import (
    Event,
    EventKind,
    Input,
    Label,
    Prediction,
    event_types,
    ms_to_rfc3339,
)
from schemas.explain import EventValidator, Problem
from schemas.limits import Limits
from schemas.topics import Topics

__all__ = [
    # input events
    "Event",
    "EventKind",
    "Prediction",
    "Input",
    "Label",
    "event_types",
    "ms_to_rfc3339",
    # decoding
    "EventDecoder",
    "DecodeError",
    "DecodedBatch",
    "Rejected",
    "REASONS",
    "EventValidator",
    "Problem",
    "Limits",
    "Topics",
    # output events
    "ALERT_TYPES",
    "COMMAND_TYPES",
    "Alert",
    "AlertData",
    "SegmentAlertData",
    "Command",
    "Evidence",
    "RetrainData",
    "RollbackData",
    "TimeWindow",
    "decision_id",
    "decode_alert",
    "decode_command",
    "encode",
    "make_alert",
    "make_retrain",
    "make_rollback",
]
