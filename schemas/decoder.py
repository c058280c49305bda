"""Decode and validate input events in one pass, with a precise error when they are wrong.

A Kafka message value holds one event (a JSON object) or, for high-volume producers, a JSON
array of events. :meth:`EventDecoder.decode_batch` accepts both and returns the valid events
plus, for every rejected one, a :class:`DecodeError` that names the field (a JSON path) and the
reason. Rejected events go to the dead-letter topic with that error; nothing is dropped silently.

msgspec validates while it parses, which keeps valid events fast. When it refuses one, the error
is driftline's own: :class:`~schemas.explain.EventValidator` reads the record again and names the
fault in words that do not depend on msgspec's version; msgspec's message only rides along as
:attr:`DecodeError.cause`.

Examples
--------
>>> decoder = EventDecoder()
>>> try:
...     decoder.decode("label", b'{"model_id": "m 1", "prediction_id": "p", '
...                             b'"timestamp": 1795255200000, "label": 0}')
... except DecodeError as e:
...     print(e.reason, e.path)
invalid_value $.model_id
>>> batch = decoder.decode_batch("label", b'''[
...     {"model_id": "m1", "prediction_id": "p1", "timestamp": 1795255200000, "label": 1},
...     {"model_id": "m1", "prediction_id": "p2", "timestamp": 1795255200, "label": 0}]''')
>>> len(batch.events), batch.rejected[0].index, batch.rejected[0].error.path
(1, 1, '$[1].timestamp')
>>> print(batch.rejected[0].error.detail)  # doctest: +NORMALIZE_WHITESPACE
1795255200 is outside the accepted range 2000-01-01T00:00:00.000Z .. 2200-01-01T00:00:00.000Z:
epoch milliseconds expected (this looks like epoch seconds)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter, itemgetter, methodcaller, sub
from typing import Any, Final

import msgspec

from schemas.events import Event, EventKind, event_types
from schemas.explain import EventValidator, Problem, id_problem, name_problem, too_deep
from schemas.limits import Limits

__all__ = [
    "DecodeError",
    "DecodedBatch",
    "EventDecoder",
    "JSONParser",
    "Rejected",
    "REASONS",
    "nesting_depth",
]

#: Every value the ``reason`` of a :class:`DecodeError` can take: a bounded set, safe as a
#: Prometheus label value.
REASONS: Final = (
    "too_large",  # the message is bigger than max_message_bytes
    "too_deep",  # nesting deeper than max_depth
    "invalid_json",  # not JSON, not UTF-8, truncated, NaN/Infinity literals
    "not_an_object",  # valid JSON, but not an event object (or an array of them)
    "missing_field",
    "wrong_type",
    "invalid_value",  # charset, range, non-finite number, unparseable timestamp
    "too_long",  # a string longer than its limit
    "too_many",  # too many features, classes or events in one message
    # Not the decoder's: valid events the monitoring core gave back (detectors.monitor.Rejection).
    "model_limit",  # a new model while max_models are tracked already
    "internal_error",  # the core raised while applying the model's events; the model was reset
)

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
# Objects and arrays nest alike: counting depth, ``{}`` are brackets like ``[]``.
_AS_SQUARE = bytes.maketrans(b"{}", b"[]")
# What msgspec raises on bad input: its own errors, ValueError (UnicodeDecodeError in older
# versions), RecursionError past its own nesting limit.
_PARSE_ERRORS = (msgspec.DecodeError, ValueError, RecursionError)
# Any JSON text, for objects that repeat a key (see EventDecoder._decode_last_values).
_LAST_VALUES = msgspec.json.Decoder(float_hook=float)
#: The error when msgspec refuses a record and driftline's own check finds no fault in it (they
#: are kept in agreement by a property test, so this is a safety net, not a path in use).
UNEXPLAINED: Final = Problem(
    "invalid_value", "$", "rejected by the parser (its message is in driftline-error-cause)"
)
_FIRST_BYTE = itemgetter(slice(0, 1))
_WITHOUT_OPENERS = methodcaller("translate", None, b"{[")
# Ids and names already checked, so the charset regexes run once per distinct value. Bounded:
# past this many, values are still checked, just not remembered.
_MAX_REMEMBERED = 65_536


class DecodeError(ValueError):
    """A record that does not meet the contract.

    ``reason``, ``path`` and ``detail`` are driftline's own words, the same whatever the
    versions of the libraries underneath; ``cause`` is the parser's message, for information.

    Attributes
    ----------
    reason
        One of :data:`REASONS` (a short, bounded code).
    path
        JSON path of the offending part, ``$`` for the whole message.
    detail
        What is wrong, in words, with the offending value where that helps.
    cause
        The parser's (msgspec's) own message when the parser refused the record, else None. It
        may change from one library version to the next: show it, never match on it.
    """

    def __init__(self, reason: str, path: str, detail: str, cause: str | None = None) -> None:
        assert reason in REASONS, reason
        self.reason = reason
        self.path = path
        self.detail = detail
        self.cause = cause
        super().__init__(f"{path}: {detail}")

    def at(self, prefix: str) -> DecodeError:
        """The same error for an event found at ``prefix`` (an array element) in a message."""
        return DecodeError(self.reason, prefix + self.path[1:], self.detail, self.cause)

    def as_headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers describing the error, for the dead-letter record.

        ``driftline-error-cause`` (the parser's message) is there only when there is one.

        >>> error = DecodeError("wrong_type", "$.label", "expected ...", cause="(msgspec's words)")
        >>> error.as_headers()  # doctest: +NORMALIZE_WHITESPACE
        [('driftline-error', b'$.label: expected ...'), ('driftline-error-reason', b'wrong_type'),
         ('driftline-error-path', b'$.label'), ('driftline-error-cause', b"(msgspec's words)")]
        """
        headers = [
            ("driftline-error", _header(str(self), 2048)),
            ("driftline-error-reason", self.reason.encode()),
            ("driftline-error-path", _header(self.path, 512)),
        ]
        if self.cause is not None:
            headers.append(("driftline-error-cause", _header(self.cause, 1024)))
        return headers


def _header(text: str, limit: int) -> bytes:
    """``text`` as UTF-8 of at most ``limit`` bytes, cut between characters."""
    data = text.encode("utf-8", "backslashreplace")
    if len(data) <= limit:
        return data
    return data[:limit].decode("utf-8", "ignore").encode()


@dataclass(slots=True)
class Rejected:
    """One rejected event: its position in an array message (``None`` for a lone object), the
    error, and the bytes that were rejected (the whole message, or the array element)."""

    index: int | None
    error: DecodeError
    raw: bytes


@dataclass(slots=True)
class DecodedBatch:
    """What one message decoded to."""

    events: list[Event] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


class JSONParser:
    """The parser an :class:`EventDecoder` validates with while it parses (msgspec).

    Its verdicts decide what is accepted; its messages only ride along as a dead letter's
    cause. A decoder can be given another parser with the same verdicts (the tests give one
    that words every refusal in nonsense, or one that must never be called).

    Parameters
    ----------
    limits
        The bounds the event types enforce.
    """

    def __init__(self, limits: Limits | None = None) -> None:
        self.types = event_types(limits or Limits())
        #: One decoder per event kind: ``events[kind].decode(payload) -> Event``.
        self.events: Mapping[EventKind, Any] = {
            kind: msgspec.json.Decoder(t) for kind, t in self.types.items()
        }
        #: A JSON array's elements, unparsed: ``elements.decode(payload) -> list[Raw]``.
        self.elements: Any = msgspec.json.Decoder(list[msgspec.Raw])

    def last_values(self, kind: EventKind, payload: bytes) -> Event:
        """An event from an object that repeats a key, on each key's last value."""
        # msgspec's own JSON rules (UTF-8, no NaN, no lone surrogates), the last value of a key
        # kept; 1e999 read as inf, for the validation to refuse where it is kept.
        return msgspec.convert(_LAST_VALUES.decode(payload), self.types[kind])


class EventDecoder:
    """Decode Kafka message values into typed events, enforcing :class:`~schemas.Limits`.

    Unknown fields are ignored, so producers can add fields before driftline knows them. When
    a key appears twice in one object the last value wins (msgspec's and most parsers' rule).

    Parameters
    ----------
    limits
        Bounds applied to every message.
    parser
        What parses and validates (default: :class:`JSONParser` for ``limits``).
    validator
        What names the fault of a record the parser refused (default:
        :class:`~schemas.explain.EventValidator` for ``limits``).
    """

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        parser: JSONParser | None = None,
        validator: EventValidator | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.parser = parser or JSONParser(self.limits)
        self.validator = validator or EventValidator(self.limits)
        self._single = self.parser.events
        self._elements = self.parser.elements
        self._good_ids: set[str] = set()
        self._good_names: set[str] = set()

    def decode(self, kind: EventKind, payload: bytes) -> Event:
        """Decode one event object; raise :class:`DecodeError` if it breaks the contract."""
        self._check_size(payload)
        return self._decode_one(kind, payload)

    def decode_batch(self, kind: EventKind, payload: bytes) -> DecodedBatch:
        """Decode a message holding one event or a JSON array of events.

        A bad element of an array rejects that element only; the others are kept.
        """
        out = DecodedBatch()
        try:
            self._check_size(payload)
            if payload.lstrip()[:1] != b"[":
                out.events.append(self._decode_one(kind, payload))
                return out
            elements = self._split_array(payload)
        except DecodeError as error:
            out.rejected.append(Rejected(None, error, payload))
            return out
        for index, element in enumerate(elements):
            raw = bytes(element)
            try:
                out.events.append(self._decode_one(kind, raw, depth_used=1))
            except DecodeError as error:
                out.rejected.append(Rejected(index, error.at(f"$[{index}]"), raw))
        return out

    def decode_many(self, kind: EventKind, payloads: Sequence[bytes | None]) -> list[Event] | None:
        """Decode messages that each hold one event object: the events, one per payload and in
        order, or ``None`` when any payload is something else or breaks the contract.

        The fast path of a fetch: every check of :meth:`decode`, made over the whole sequence
        with C-level loops (no Python frame per message). It decides nothing on its own: on
        ``None`` the caller decodes the payloads one at a time (:meth:`decode_batch`), which
        gives each its verdict and error, so a dead letter's reason and path never depend on
        which path read it. Each payload is parsed on its own (joining them into one JSON
        text would let two malformed messages make two well-formed events across their
        boundary).

        >>> decoder = EventDecoder()
        >>> labels = [b'{"model_id": "m", "prediction_id": "p%d", "timestamp": 1795255200000, '
        ...           b'"label": 1}' % i for i in range(3)]
        >>> [event.prediction_id for event in decoder.decode_many("label", labels)]
        ['p0', 'p1', 'p2']
        >>> decoder.decode_many("label", [*labels, b'{"model_id": "m"}']) is None
        True
        """
        if not payloads:
            return []
        limits = self.limits
        try:
            if max(map(len, payloads)) > limits.max_message_bytes:  # type: ignore[arg-type]
                return None
            if set(map(_FIRST_BYTE, payloads)) != {b"{"}:  # type: ignore[arg-type]
                return None  # arrays, leading whitespace, anything else: one at a time
        except TypeError:  # a null value
            return None
        # The bracket screen of _check_depth; a payload that fails it is measured one at a time.
        openers = map(sub, map(len, payloads), map(len, map(_WITHOUT_OPENERS, payloads)))  # type: ignore[arg-type]
        if max(openers) > limits.max_depth:
            return None
        try:
            events: list[Any] = list(map(self._single[kind].decode, payloads))
        except (*_PARSE_ERRORS, msgspec.ValidationError):
            return None
        if not self._charsets_known(kind, events):
            return None
        return events

    def _charsets_known(self, kind: EventKind, events: list[Any]) -> bool:
        """Whether the ids and names of ``events`` pass :meth:`_check_charsets` (new ones are
        checked and remembered; any fault: False)."""
        try:
            ids = set(map(_MODEL_ID, events))
            if kind == "prediction":
                ids.update(map(_MODEL_VERSION, events))
            elif kind == "input":
                ids.update(filter(None, map(_MODEL_VERSION, events)))
            new_ids = ids - self._good_ids
            for value in new_ids:
                self._check_id(value, "$")
            mappings = [filter(None, map(_FEATURES, events))] if kind != "label" else []
            if kind == "prediction":
                scores = map(_SCORE, events)
                mappings += [
                    filter(_is_dict, scores),  # type: ignore[list-item]
                    filter(None, map(_TAGS, events)),
                ]
            good_names = self._good_names
            for found in mappings:
                maps = list(found)
                if all(map(good_names.issuperset, maps)):
                    continue
                self._check_names(dict.fromkeys(chain.from_iterable(maps)), "$")
        except DecodeError:
            return False
        return True

    # -- internals -------------------------------------------------------------------------

    def _check_size(self, payload: bytes) -> None:
        if len(payload) > self.limits.max_message_bytes:
            raise DecodeError(
                "too_large",
                "$",
                f"message is {len(payload)} bytes; at most {self.limits.max_message_bytes} "
                "accepted (max_message_bytes)",
            )

    def _check_depth(self, payload: bytes, depth_used: int) -> None:
        # A message cannot nest deeper than the number of brackets it opens: counting them is a
        # C-speed screen, and only payloads that open many get measured properly.
        allowed = self.limits.max_depth - depth_used
        # (One C pass, cheaper than two counts.)
        if len(payload) - len(payload.translate(None, b"{[")) <= allowed:
            return
        if nesting_depth(payload, allowed) > allowed:
            raise DecodeError(*too_deep(self.limits))

    def _split_array(self, payload: bytes) -> list[msgspec.Raw]:
        try:
            elements = self._elements.decode(payload)
        except _PARSE_ERRORS as exc:
            raise self._explain(exc, self.validator.json_problem, payload) from None
        if not elements:
            raise DecodeError("not_an_object", "$", "empty array: expected at least one event")
        if len(elements) > self.limits.max_batch_events:
            raise DecodeError(
                "too_many",
                "$",
                f"{len(elements)} events in one message; at most "
                f"{self.limits.max_batch_events} accepted (max_batch_events)",
            )
        return elements

    def _decode_one(self, kind: EventKind, payload: bytes, depth_used: int = 0) -> Event:
        self._check_depth(payload, depth_used)
        try:
            event = self._single[kind].decode(payload)
        except msgspec.ValidationError as exc:
            event = self._decode_last_values(kind, payload, depth_used, exc)
        except _PARSE_ERRORS as exc:
            raise self._explain(exc, self.validator.problem, kind, payload, depth_used) from None
        self._check_charsets(event)
        return event

    def _decode_last_values(
        self, kind: EventKind, payload: bytes, depth_used: int, exc: Exception
    ) -> Event:
        """Decide an object that repeats a key on the last values, as the contract says.

        msgspec keeps a repeated key's last value but validates every one, so an invalid
        earlier value would reject an event whose kept value is valid. Only on the error path:
        valid events never come here.
        """
        if not _repeats_a_key(payload):
            raise self._explain(exc, self.validator.problem, kind, payload, depth_used) from None
        try:
            return self.parser.last_values(kind, payload)
        except _PARSE_ERRORS as again:
            raise self._explain(again, self.validator.problem, kind, payload, depth_used) from None

    def _explain(
        self, exc: BaseException, find: Callable[..., Problem | None], *args: Any
    ) -> DecodeError:
        """The parser refused a record: driftline's own words for why, its message as the cause.

        ``find(*args)`` is the validator's check that names the fault.
        """
        cause = str(exc)[:1024] or type(exc).__name__
        try:
            problem = find(*args) or UNEXPLAINED
        except Exception:  # noqa: BLE001 - explaining must never turn a bad record into a crash
            problem = UNEXPLAINED
        return DecodeError(*problem, cause=cause)

    def _check_charsets(self, event: Any) -> None:
        good_ids = self._good_ids
        model_id = event.model_id
        if model_id not in good_ids:
            self._check_id(model_id, "$.model_id")
        version = getattr(event, "model_version", None)
        if version is not None and version not in good_ids:
            self._check_id(version, "$.model_version")
        features = getattr(event, "features", None)
        if features and not self._good_names.issuperset(features):
            self._check_names(features, "$.features")
        score = getattr(event, "score", None)
        if type(score) is dict and not self._good_names.issuperset(score):
            self._check_names(score, "$.score")
        tags = getattr(event, "tags", None)
        if tags and not self._good_names.issuperset(tags):
            self._check_names(tags, "$.tags")

    def _check_id(self, value: str, path: str) -> None:
        problem = id_problem(value, path)
        if problem is not None:
            raise DecodeError(*problem)
        if len(self._good_ids) < _MAX_REMEMBERED:
            self._good_ids.add(value)

    def _check_names(self, mapping: dict[str, Any], path: str) -> None:
        for name in mapping:
            if name in self._good_names:
                continue
            problem = name_problem(name, path)
            if problem is not None:
                raise DecodeError(*problem)
            if len(self._good_names) < _MAX_REMEMBERED:
                self._good_names.add(name)


_MODEL_ID = attrgetter("model_id")
_MODEL_VERSION = attrgetter("model_version")
_FEATURES = attrgetter("features")
_SCORE = attrgetter("score")
_TAGS = attrgetter("tags")


def _is_dict(value: Any) -> bool:
    return type(value) is dict


def nesting_depth(payload: bytes, limit: int) -> int:
    """Nesting depth of a JSON text, counting past ``limit`` only as far as ``limit + 1``."""
    # Strings may hold brackets: drop them, keep only the brackets, then peel off the innermost
    # pairs one level per pass. All C-speed byte operations; at most ``limit + 1`` passes.
    # One kind of bracket, so one replace per pass: peeling ``{}`` then ``[]`` in the same pass
    # would peel two levels of ``[{}]``, and alternating nesting would count half its depth.
    brackets = _STRING.sub(b"", payload).translate(_AS_SQUARE, _NOT_BRACKET)
    depth = 0
    while brackets and depth <= limit:
        peeled = brackets.replace(b"[]", b"")
        if peeled == brackets:
            break  # unbalanced: the parser reports that
        brackets = peeled
        depth += 1
    return depth


def _repeats_a_key(payload: bytes) -> bool:
    """Whether any object in a JSON text has a key twice (False if it is not JSON)."""
    repeated = False

    def pairs(items: list[tuple[str, Any]]) -> None:
        nonlocal repeated
        if not repeated and len({key for key, _ in items}) != len(items):
            repeated = True

    def skip(_: str) -> int:
        return 0  # only the keys matter

    try:
        json.loads(
            payload, object_pairs_hook=pairs, parse_int=skip, parse_float=skip, parse_constant=skip
        )
    except (ValueError, RecursionError):
        return False
    return repeated
