"""Decode and validate input events in one pass, with a precise error when they are wrong.

A Kafka message value holds one event (a JSON object) or, for high-volume producers, a JSON
array of events. :meth:`EventDecoder.decode_batch` accepts both and returns the valid events
plus, for every rejected one, a :class:`DecodeError` that names the field (a JSON path) and the
reason. Rejected events go to the dead-letter topic with that error; nothing is dropped silently.

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
import math
import re
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from schemas.events import ContractTypes, Event, EventKind, event_types, ms_to_rfc3339
from schemas.limits import ID_PATTERN, Limits

__all__ = ["DecodeError", "DecodedBatch", "EventDecoder", "Rejected", "REASONS"]

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

_ID = re.compile(ID_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
# Objects and arrays nest alike: counting depth, ``{}`` are brackets like ``[]``.
_AS_SQUARE = bytes.maketrans(b"{}", b"[]")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EVENT_PATH = re.compile(r"^\$(\[\d+\])?$")
_BOUND = re.compile(r"^Expected `\w+` ((?:>=|<=|>|<) \S+)$")
# What msgspec raises on bad input: its own errors, UnicodeDecodeError for invalid UTF-8 inside
# a string, RecursionError past its own nesting limit.
_PARSE_ERRORS = (msgspec.DecodeError, ValueError, RecursionError)
# Any JSON text, for objects that repeat a key (see EventDecoder._decode_last_values).
_LAST_VALUES = msgspec.json.Decoder(float_hook=float)
# Ids and names already checked, so the charset regexes run once per distinct value. Bounded:
# past this many, values are still checked, just not remembered.
_MAX_REMEMBERED = 65_536


class DecodeError(ValueError):
    """A record that does not meet the contract.

    Attributes
    ----------
    reason
        One of :data:`REASONS` (a short, bounded code).
    path
        JSON path of the offending part, ``$`` for the whole message.
    detail
        What is wrong, in words, with the offending value where that helps.
    """

    def __init__(self, reason: str, path: str, detail: str) -> None:
        assert reason in REASONS, reason
        self.reason = reason
        self.path = path
        self.detail = detail
        super().__init__(f"{path}: {detail}")

    def at(self, prefix: str) -> DecodeError:
        """The same error for an event found at ``prefix`` (an array element) in a message."""
        return DecodeError(self.reason, prefix + self.path[1:], self.detail)

    def as_headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers describing the error, for the dead-letter record."""
        return [
            ("driftline-error", str(self).encode()[:2048]),
            ("driftline-error-reason", self.reason.encode()),
            ("driftline-error-path", self.path.encode()[:512]),
        ]


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


class EventDecoder:
    """Decode Kafka message values into typed events, enforcing :class:`~schemas.Limits`.

    Unknown fields are ignored, so producers can add fields before driftline knows them. When
    a key appears twice in one object the last value wins (msgspec's and most parsers' rule).

    Parameters
    ----------
    limits
        Bounds applied to every message.
    """

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._contract = ContractTypes(self.limits)
        self._types = event_types(self.limits)
        self._single = {k: msgspec.json.Decoder(t) for k, t in self._types.items()}
        self._elements = msgspec.json.Decoder(list[msgspec.Raw])
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
        depth = _max_depth(payload, allowed)
        if depth > allowed:
            raise DecodeError(
                "too_deep",
                "$",
                f"JSON nests more than {self.limits.max_depth} levels deep (max_depth)",
            )

    def _split_array(self, payload: bytes) -> list[msgspec.Raw]:
        try:
            elements = self._elements.decode(payload)
        except _PARSE_ERRORS as exc:
            raise self._explain(payload, exc) from None
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
            event = self._decode_last_values(kind, payload, exc)
        except _PARSE_ERRORS as exc:
            raise self._explain(payload, exc) from None
        self._check_charsets(event)
        return event

    def _decode_last_values(self, kind: EventKind, payload: bytes, exc: Exception) -> Event:
        """Decide an object that repeats a key on the last values, as the contract says.

        msgspec keeps a repeated key's last value but validates every one, so an invalid
        earlier value would reject an event whose kept value is valid (and the error would
        quote the kept value). Only on the error path: valid events never come here.
        """
        if not _repeats_a_key(payload):
            raise self._explain(payload, exc) from None
        try:
            # msgspec's own JSON rules (UTF-8, no NaN, no lone surrogates), the last value of a
            # key kept; 1e999 read as inf, for the validation below to refuse where it is kept.
            document = _LAST_VALUES.decode(payload)
        except _PARSE_ERRORS:
            raise self._explain(payload, exc) from None
        try:
            return msgspec.convert(document, self._types[kind])
        except _PARSE_ERRORS as again:
            raise self._explain(payload, again) from None

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

    def _check_id(self, value: str, path: str) -> None:
        if not _ID.fullmatch(value):
            raise DecodeError(
                "invalid_value",
                path,
                f"{_show(value)} is not a valid id: letters, digits and . _ : @ + - only, "
                f"starting with a letter or digit ({ID_PATTERN})",
            )
        if len(self._good_ids) < _MAX_REMEMBERED:
            self._good_ids.add(value)

    def _check_names(self, mapping: dict[str, Any], path: str) -> None:
        for name in mapping:
            if name in self._good_names:
                continue
            if _CONTROL.search(name):
                raise DecodeError(
                    "invalid_value",
                    _child_path(path, name),
                    f"name {_show(name)} contains control characters",
                )
            if len(self._good_names) < _MAX_REMEMBERED:
                self._good_names.add(name)

    def _explain(self, payload: bytes, exc: BaseException) -> DecodeError:
        """Turn msgspec's error into a DecodeError with a precise path and a readable reason."""
        try:
            return self._explain_unsafe(payload, exc)
        except Exception:  # noqa: BLE001 - explaining must never turn a bad record into a crash
            return DecodeError("invalid_value", "$", str(exc)[:500])

    def _explain_unsafe(self, payload: bytes, exc: BaseException) -> DecodeError:
        if isinstance(exc, RecursionError):
            return DecodeError(
                "too_deep", "$", "JSON nests too many levels deep to parse (max_depth)"
            )
        if isinstance(exc, UnicodeDecodeError):
            return DecodeError(
                "invalid_json", "$", f"JSON is malformed: not valid UTF-8 ({exc.reason})"
            )
        message = str(exc)
        if not isinstance(exc, msgspec.ValidationError):
            if b"NaN" in payload or b"Infinity" in payload:
                message += " (NaN and Infinity are not JSON; send finite numbers only)"
            return DecodeError("invalid_json", "$", message)
        what, _, where = message.partition(" - at `")
        where = where.rstrip("`")
        if where.startswith("key` in `"):  # a bad dict key: msgspec names the dict only
            where = where[len("key` in `") :] + "[...]"
        document = _parse_quietly(payload)
        if "[...]" in where:
            refined = self._refine_mapping_error(document, where)
            if refined is not None:
                return refined
        if not where and what.startswith("timestamp "):  # raised by the models' __post_init__
            where = "$.timestamp"
        path = where or "$"
        value = _lookup(document, where) if where else document
        return _classify(what, path, value, self.limits)

    def _refine_mapping_error(self, document: Any, where: str) -> DecodeError | None:
        """msgspec reports a bad dict entry as ``$.features[...]``: find which key it is."""
        head = where.split("[...]", 1)[0]
        mapping = _lookup(document, head)
        if not isinstance(mapping, dict):
            return None
        contract = self._contract
        value_type = contract.Probability if head.endswith("score") else contract.FeatureValue
        for key, value in mapping.items():
            for checked, expected in ((key, contract.Name), (value, value_type)):
                try:
                    msgspec.convert(checked, expected, strict=True)
                except msgspec.ValidationError as exc:
                    what = str(exc).partition(" - at `")[0]
                    return _classify(what, _child_path(head, key), checked, self.limits)
        return None


def _max_depth(payload: bytes, limit: int) -> int:
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


def _parse_quietly(payload: bytes) -> Any:
    # The standard library, not orjson: it reads 1e999 as inf and keeps huge integers, so the
    # offending value can be shown. Only on the error path, and after the size and depth checks.
    try:
        return json.loads(payload, parse_int=_parse_int)
    except (ValueError, RecursionError):
        return None


def _parse_int(text: str) -> int | float:
    # Python refuses to convert integers of more than 4300 digits; they are infinite to us.
    if len(text) < 4000:
        return int(text)
    return float("-inf") if text.startswith("-") else float("inf")


def _lookup(document: Any, where: str) -> Any:
    """Follow a msgspec path like ``$.features[...]`` or ``$.score`` as far as it goes."""
    node = document
    for key, index in re.findall(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]", where):
        try:
            if key:
                node = node[key]
            elif index != "...":
                node = node[int(index)]
            else:
                return node
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _child_path(parent: str, key: str) -> str:
    if _IDENTIFIER.fullmatch(key):
        return f"{parent}.{key}"
    return f"{parent}[{json.dumps(key)}]"


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=True, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _classify(what: str, path: str, value: Any, limits: Limits) -> DecodeError:
    """Map one of msgspec's validation messages to a reason code and plain words."""
    if what.startswith("timestamp "):  # already in plain words (the models' __post_init__)
        return DecodeError("invalid_value", path, what)
    if what.startswith("Object missing required field"):
        name = what.split("`")[1]
        full = f"{path}.{name}" if path != "$" else f"$.{name}"
        return DecodeError("missing_field", full, f"required field {name!r} is missing")
    if what.startswith("Expected `object`, got") and _EVENT_PATH.match(path):
        got = what.rsplit("got ", 1)[1]
        return DecodeError("not_an_object", path, f"expected an event object, got {got}")
    if "of length <=" in what:
        limit = what.rsplit("<=", 1)[1].strip()
        if what.startswith(("Expected `object`", "Expected `array`")):
            count = len(value) if isinstance(value, dict | list) else "too many"
            return DecodeError("too_many", path, f"{count} entries; at most {limit} accepted")
        size = len(value) if isinstance(value, str) else "too many"
        return DecodeError("too_long", path, f"string of {size} characters; at most {limit}")
    if "of length >=" in what:
        return DecodeError("invalid_value", path, "must not be empty")
    if what == "Number out of range":
        if isinstance(value, float) and not math.isfinite(value):
            return DecodeError("invalid_value", path, "must be a finite number")
        return DecodeError(
            "invalid_value", path, f"{_show(value)} is out of range (finite numbers only)"
        )
    if path.endswith(".timestamp"):
        if isinstance(value, int) and not isinstance(value, bool):
            hint = " (this looks like epoch seconds)" if 0 < value < 10**11 else ""
            return DecodeError(
                "invalid_value",
                path,
                f"{value} is outside the accepted range "
                f"{ms_to_rfc3339(limits.min_timestamp_ms)} .. "
                f"{ms_to_rfc3339(limits.max_timestamp_ms)}: epoch milliseconds expected{hint}",
            )
        if isinstance(value, str):
            return DecodeError(
                "invalid_value",
                path,
                f"{_show(value)} is not an RFC 3339 timestamp with an offset "
                "(e.g. 2026-11-21T10:00:00Z) nor epoch milliseconds",
            )
    bound = _BOUND.match(what)
    if bound and isinstance(value, float) and not math.isfinite(value):
        return DecodeError("invalid_value", path, f"must be a finite number, got {_show(value)}")
    if bound and len(bound.group(1)) > 40:  # the float range, spelt out as an integer
        return DecodeError(
            "invalid_value", path, f"{_show(value)} is too large: numbers must be finite floats"
        )
    if bound:
        return DecodeError("invalid_value", path, f"{_show(value)} must be {bound.group(1)}")
    if what.startswith("Expected `"):
        return DecodeError("wrong_type", path, f"expected {what[9:]}")
    return DecodeError("invalid_value", path, what)
