"""The ids act has acted on: the in-memory view of the compacted ``<commands topic>.acted``.

Each step of an event (``<event id>/mlflow``, ``<event id>/http``) is recorded there twice: an
**intent** before the effect, then its **outcome** (``done``, ``failed`` or ``unknown``) once it
is known. Compaction keeps the latest record per key. At start (and before every batch, so a
partition taken over from another act process is covered too) act reads the topic up to its
end, folding records with :meth:`ActedLog.apply`, and then decides per step with
:func:`next_move`:

==============  ==================  ========================================================
latest record   MLflow step         HTTP step
==============  ==================  ========================================================
none            act                 act
intent          recheck: read the   unknown: the request may or may not have reached the
                registry, then      receiver, so it is not sent again; dead-lettered
                finish or act       (``outcome_unknown``)
outcome         skip (duplicate)    skip (duplicate)
==============  ==================  ========================================================

A record that cannot be read counts as an outcome (``unknown``): a damaged log entry must never
make act repeat an effect.

Examples
--------
>>> log = ActedLog()
>>> key, value = encode_mark("intent", event_id="ab" * 16, action="mlflow", before="3")
>>> log.apply(key, value)
>>> next_move(log.get(key.decode()), "mlflow"), next_move(log.get(key.decode()), "http")
('recheck', 'unknown')
>>> log.apply(*encode_mark("done", event_id="ab" * 16, action="mlflow"))
>>> next_move(log.get(key.decode()), "mlflow")
'skip'
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec
import orjson

__all__ = ["ActedLog", "Mark", "MarkState", "Move", "encode_mark", "next_move"]

MarkState = Literal["intent", "done", "failed", "unknown"]
Move = Literal["act", "recheck", "unknown", "skip"]
#: States that end a step: the effect happened, was given up, or can no longer be known.
OUTCOMES: Final = frozenset({"done", "failed", "unknown"})
#: Larger records are not act's own: read as ``unknown``.
_MAX_MARK_BYTES: Final = 4_096


class Mark(msgspec.Struct, frozen=True, kw_only=True):
    """One record of the log. ``before`` is the version an MLflow alias pointed at when the
    intent was recorded (None: no such alias, or not an alias step)."""

    state: MarkState
    action: str = ""
    before: str | None = None
    at_ms: int = 0


_decoder = msgspec.json.Decoder(Mark)
_UNREADABLE: Final = Mark(state="unknown")


class ActedLog:
    """The latest :class:`Mark` per step key."""

    def __init__(self) -> None:
        self._marks: dict[str, Mark] = {}
        self._offsets: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._marks)

    def apply(self, key: bytes | None, value: bytes | None, offset: int | None = None) -> None:
        """Fold one record of the topic (a tombstone, ``value`` None, forgets the key).

        ``offset`` is the record's offset in the (one-partition) topic: a record older than
        the one already folded for its key is ignored, so reading the topic while this process
        writes to it never brings back an intent it has already replaced.
        """
        if key is None:
            return
        name = key.decode(errors="replace")
        if offset is not None:
            if offset <= self._offsets.get(name, -1):
                return
            self._offsets[name] = offset
        if value is None:
            self._marks.pop(name, None)
            return
        if len(value) > _MAX_MARK_BYTES:
            self._marks[name] = _UNREADABLE
            return
        try:
            self._marks[name] = _decoder.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self._marks[name] = _UNREADABLE

    def get(self, key: str) -> Mark | None:
        return self._marks.get(key)


def next_move(mark: Mark | None, action: Literal["mlflow", "http"]) -> Move:
    """What to do with a step given its latest mark (the table in the module's docstring)."""
    if mark is None:
        return "act"
    if mark.state in OUTCOMES:
        return "skip"
    return "recheck" if action == "mlflow" else "unknown"


def encode_mark(
    state: MarkState,
    *,
    event_id: str,
    action: Literal["mlflow", "http"],
    before: str | None = None,
    at_ms: int = 0,
) -> tuple[bytes, bytes]:
    """Key and value of a record of the log."""
    mark = Mark(state=state, action=action, before=before, at_ms=at_ms)
    return f"{event_id}/{action}".encode(), orjson.dumps(msgspec.to_builtins(mark))
