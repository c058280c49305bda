"""Typed models of the three input events: predictions, inputs and labels.

The models are ``msgspec.Struct`` types whose annotations carry the contract's constraints, so
:class:`schemas.decoder.EventDecoder` validates while it parses, in one pass. The published JSON
Schema files next to this module (``prediction.schema.json`` and friends) describe the same
contract for producers in other languages; a test keeps the two in agreement.

After decoding, ``timestamp`` is always epoch milliseconds (``int``), whether the producer sent
milliseconds or an RFC 3339 string.

Examples
--------
>>> from schemas import EventDecoder
>>> event = EventDecoder().decode("prediction", b'''{"model_id": "fraud", "model_version": "3",
...     "prediction_id": "p-1", "timestamp": "2026-11-21T10:00:00Z", "prediction": true,
...     "score": 0.91, "features": {"amount": 120.5, "country": "DE"}}''')
>>> event.timestamp, event.prediction, event.features["country"]
(1795255200000, True, 'DE')
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, ClassVar, Literal, get_type_hints

import msgspec
from msgspec import Meta

from schemas.limits import Limits

__all__ = [
    "ContractTypes",
    "Event",
    "EventKind",
    "Input",
    "Label",
    "Prediction",
    "Scalar",
    "Outcome",
    "event_types",
    "ms_to_rfc3339",
    "rfc3339_to_ms",
]

EventKind = Literal["prediction", "input", "label"]
#: A feature value after decoding (numbers are floats).
Scalar = None | bool | float | str
#: A prediction or a label: a class (bool, int, str) or a regression target (float).
Outcome = bool | int | float | str

_MAX_FLOAT = 1.7976931348623157e308
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def rfc3339_to_ms(value: dt.datetime) -> int:
    """Epoch milliseconds of a timezone-aware datetime (sub-millisecond digits truncated)."""
    delta = value - _EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def ms_to_rfc3339(ms: int) -> str:
    """RFC 3339 UTC string with milliseconds, as used in every CloudEvent ``time``.

    >>> ms_to_rfc3339(1795255200123)
    '2026-11-21T10:00:00.123Z'
    """
    seconds, millis = divmod(ms, 1000)
    stamp = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{millis:03d}Z"


class ContractTypes:
    """The contract's field types (``Annotated`` with their constraints) for one set of limits.

    Charset rules on ids and names (``ID_PATTERN``, no control characters) are checked by
    :class:`~schemas.decoder.EventDecoder` after parsing, against a cache of values already
    seen: as ``Meta(pattern=...)`` constraints they cost 3x the whole parse.
    """

    def __init__(self, limits: Limits) -> None:
        finite = Annotated[float, Meta(ge=-_MAX_FLOAT, le=_MAX_FLOAT)]
        # Classes are often integers: outcomes keep ints (64-bit) apart from floats.
        integer = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
        text = Annotated[str, Meta(max_length=limits.max_string_length)]
        # Each alias carries its own description: typing caches equal Annotated objects, and
        # event_types() tells the aliases apart by identity.
        name = Annotated[
            str,
            Meta(min_length=1, max_length=limits.max_name_length, description="feature name"),
        ]
        probability = Annotated[float, Meta(ge=0.0, le=1.0)]
        # Feature numbers are all floats: msgspec converts integer tokens, so any JSON number
        # that fits a finite float is accepted and the core never meets an unconvertible int.
        scalar = None | bool | finite | text

        self.Id = Annotated[
            str, Meta(min_length=1, max_length=limits.max_id_length, description="model id")
        ]
        self.OptionalId = self.Id | None
        self.OpaqueId = Annotated[
            str,
            Meta(min_length=1, max_length=limits.max_opaque_id_length, description="opaque id"),
        ]
        self.OptionalOpaqueId = self.OpaqueId | None
        self.Timestamp = (
            Annotated[int, Meta(ge=limits.min_timestamp_ms, le=limits.max_timestamp_ms)]
            | Annotated[dt.datetime, Meta(tz=True)]
        )
        self.Outcome = bool | integer | finite | text
        self.Features = Annotated[dict[name, scalar], Meta(max_length=limits.max_features)]
        self.OptionalFeatures = self.Features | None
        self.OptionalScore = (
            probability
            | Annotated[dict[name, probability], Meta(max_length=limits.max_classes)]
            | None
        )
        self.OptionalLatency = Annotated[float, Meta(ge=0.0, le=_MAX_FLOAT)] | None
        self.OptionalTags = Annotated[dict[name, text], Meta(max_length=limits.max_tags)] | None


_DEFAULT_LIMITS = Limits()
_T = ContractTypes(_DEFAULT_LIMITS)


class _EventBase(msgspec.Struct, gc=False):
    kind: ClassVar[EventKind]
    # Accepted event-time range, for timestamps given as RFC 3339 strings (integers are bounded
    # by their annotation, which is cheaper).
    _ts_range: ClassVar[tuple[int, int]] = (
        _DEFAULT_LIMITS.min_timestamp_ms,
        _DEFAULT_LIMITS.max_timestamp_ms,
    )

    def __post_init__(self) -> None:
        ts = self.timestamp  # type: ignore[attr-defined]
        if type(ts) is not int:
            ms = rfc3339_to_ms(ts)
            low, high = self._ts_range
            if not low <= ms <= high:
                raise ValueError(
                    f"timestamp {ts.isoformat()} is outside the accepted range "
                    f"{ms_to_rfc3339(low)} .. {ms_to_rfc3339(high)}"
                )
            self.timestamp = ms  # type: ignore[attr-defined]


class Prediction(_EventBase):
    """A model's prediction, published by the model server on ``model.predictions``.

    Parameters
    ----------
    model_id, model_version
        Which model and which rollout of it made the prediction.
    prediction_id
        Joins the prediction to its label.
    timestamp
        Event time, epoch milliseconds.
    prediction
        The predicted class (bool, int, str) or value (float).
    features
        Optional inputs, name -> number / string / bool / null.
    score
        Optional score in [0, 1], or class -> probability.
    latency_ms
        Optional serving latency.
    tags
        Optional request entities that are not model inputs (customer tier, region, device),
        name -> string: what a model's ``segments`` may be defined by.
    event_id
        Optional producer-side id of this event.
    """

    kind: ClassVar[EventKind] = "prediction"

    model_id: _T.Id
    model_version: _T.Id
    prediction_id: _T.OpaqueId
    timestamp: _T.Timestamp
    prediction: _T.Outcome
    features: _T.OptionalFeatures = None
    score: _T.OptionalScore = None
    latency_ms: _T.OptionalLatency = None
    event_id: _T.OptionalOpaqueId = None
    tags: _T.OptionalTags = None


class Input(_EventBase):
    """A model's raw inputs, published on ``model.inputs`` (optional for producers)."""

    kind: ClassVar[EventKind] = "input"

    model_id: _T.Id
    timestamp: _T.Timestamp
    features: _T.Features
    model_version: _T.OptionalId = None
    prediction_id: _T.OptionalOpaqueId = None
    event_id: _T.OptionalOpaqueId = None


class Label(_EventBase):
    """Ground truth for an earlier prediction, published on ``model.labels``."""

    kind: ClassVar[EventKind] = "label"

    model_id: _T.Id
    prediction_id: _T.OpaqueId
    timestamp: _T.Timestamp
    label: _T.Outcome
    event_id: _T.OptionalOpaqueId = None


Event = Prediction | Input | Label

_BASE_TYPES: dict[EventKind, type[_EventBase]] = {
    "prediction": Prediction,
    "input": Input,
    "label": Label,
}


def _alias_names() -> dict[int, str]:
    names = {id(value): key for key, value in vars(_T).items()}
    assert len(names) == len(vars(_T)), "two contract type aliases are the same object"
    return names


def event_types(limits: Limits) -> dict[EventKind, type[_EventBase]]:
    """The event models for ``limits``: the module's classes, or subclasses with other bounds.

    Subclasses keep ``isinstance(event, Prediction)`` true whatever the limits.

    >>> types = event_types(Limits(max_features=5))
    >>> issubclass(types["prediction"], Prediction)
    True
    """
    if limits == _DEFAULT_LIMITS:
        return dict(_BASE_TYPES)
    custom = ContractTypes(limits)
    names = _alias_names()
    out: dict[EventKind, type[_EventBase]] = {}
    for kind, base in _BASE_TYPES.items():
        hints = get_type_hints(base, include_extras=True)
        struct_fields = []
        for field_name, default in zip(
            base.__struct_fields__,
            (msgspec.NODEFAULT,) * (len(base.__struct_fields__) - len(base.__struct_defaults__))
            + base.__struct_defaults__,
            strict=True,
        ):
            annotation = getattr(custom, names[id(hints[field_name])])
            if default is msgspec.NODEFAULT:
                struct_fields.append((field_name, annotation))
            else:
                struct_fields.append((field_name, annotation, default))
        out[kind] = msgspec.defstruct(
            base.__name__,
            struct_fields,
            bases=(base,),
            namespace={"_ts_range": (limits.min_timestamp_ms, limits.max_timestamp_ms)},
            module=__name__,
            gc=False,
        )
    return out
