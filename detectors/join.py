"""Joining labels to predictions by ``prediction_id``, in bounded memory.

Predictions wait for their label for ``ttl`` of event time (default 7 days). Labels can also
arrive *before* their prediction (the three topics are consumed independently): such a label
waits ``label_wait`` for it. Every label ends up counted as exactly one of:

``joined``
    matched a waiting prediction;
``late``
    its prediction had already expired (the last ``remember // 2`` to ``remember`` expiries
    are remembered, as 32-bit hashes);
``duplicate``
    its prediction was already joined to an earlier label, or an earlier label for the same
    prediction is already waiting;
``unknown_id``
    no prediction with that id arrived within ``label_wait``.

And every prediction as joined, ``expired`` (no label within ``ttl``) or ``evicted`` (pushed
out by ``max_pending``, oldest first).

Examples
--------
>>> from detectors.config import JoinConfig
>>> joiner = LabelJoiner(JoinConfig(ttl=1000))
>>> joiner.add_prediction("p1", 0, "v1", True)
>>> outcome = joiner.add_label("p1", False, 500)
>>> outcome.version, outcome.prediction, outcome.label, outcome.predicted_at, outcome.labelled_at
('v1', True, False, 0, 500)
>>> joiner.add_prediction("p2", 100, "v1", True)
>>> joiner.expire(2000)
>>> joiner.add_label("p2", True, 2100) is None, joiner.counts["expired"], joiner.counts["late"]
(True, 1, 1)
"""

from __future__ import annotations

import math
import zlib
from array import array
from collections import OrderedDict
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, ClassVar, Final

from detectors.base import StateError
from detectors.config import JoinConfig
from detectors.saved_state import read_format, stamp

__all__ = ["LabelJoiner", "Outcome", "OUTCOMES", "SEGMENT_CODES", "on_grid"]

#: Counted outcomes (the ``outcome`` label of ``driftline_label_join_total``).
OUTCOMES: Final = ("joined", "expired", "evicted", "late", "duplicate", "unknown_id")


@dataclass(frozen=True, slots=True)
class Outcome:
    """A prediction with its label."""

    version: str
    prediction: Any
    label: Any
    predicted_at: int
    labelled_at: int
    #: The prediction's probability score, when it sent one: a float in [0, 1] (a binary
    #: model's, of its positive class) or a class -> probability map; every probability kept
    #: to 1 / 65,536.
    score: float | dict[str, float] | None = None
    #: The prediction's segments, as the model's segmentation coded them (0: none).
    segment: int = 0
    #: The prediction's id (not compared: an outcome is what was predicted and labelled).
    prediction_id: str = field(default="", compare=False)


#: (version, prediction) combinations a joiner codes its waiting predictions with.
_CODES = 1024
#: A probability score is kept to 1 / _STEPS (exact for halves, quarters, ...) as one of the
#: levels of a waiting prediction's code (0: no score).
_STEPS = float(1 << 16)
_LEVELS = 1 << 17
#: Segment codes a waiting prediction carries (detectors/segments.py).
SEGMENT_CODES: Final = 1 << 16
#: Most entries of a saved class -> probability score (ten times the decoder's default bound).
MAX_SCORE_CLASSES: Final = 10_000
#: Distinct class-name tuples of waiting maps a joiner shares (a model has one or a few).
_SHARED_NAMES = 64


class _RecentIds:
    """The most recent ids, as 32-bit hashes in two fixed open-addressing tables.

    Ids enter the current table (a *generation*); when it holds ``size // 2`` ids it becomes
    the previous one and the table before it is cleared, so the last ``size // 2`` to ``size``
    ids are remembered. Memory: two tables of 4-byte slots, a power of two >= ``0.8 * size``
    each, allocated at the first id (32 KiB for the default 5,000, against ~130 bytes per id
    in a Python set).
    """

    _EMPTY: Final = 0

    def __init__(self, size: int) -> None:
        self.size = size
        self.generation = max(1, size // 2)
        # Linear probing stays short while a table is at most 5/8 full.
        self._capacity = 1 << max(4, math.ceil(math.log2(self.generation * 8 / 5)))
        self._mask = self._capacity - 1
        self._current: array[int] | None = None
        self._previous: array[int] | None = None
        self._count = 0  # ids in the current generation

    @staticmethod
    def key(prediction_id: str) -> int:
        return zlib.crc32(prediction_id.encode()) or 1  # 0 marks an empty slot

    def add(self, prediction_id: str) -> None:
        self._add_key(self.key(prediction_id))

    def _add_key(self, key: int) -> None:
        table = self._current
        if table is None:
            table = self._current = array("I", bytes(4 * self._capacity))
        mask = self._mask
        slot = key & mask
        while (found := table[slot]) != key:
            if found == self._EMPTY:
                table[slot] = key
                self._count += 1
                if self._count >= self.generation:
                    self._previous = table
                    self._current = array("I", bytes(4 * self._capacity))
                    self._count = 0
                return
            slot = (slot + 1) & mask

    def __contains__(self, prediction_id: str) -> bool:
        if self._current is None:
            return False
        key = zlib.crc32(prediction_id.encode()) or 1
        return _probe(self._current, key, self._mask) or (
            self._previous is not None and _probe(self._previous, key, self._mask)
        )

    def __len__(self) -> int:
        previous = self.generation if self._previous is not None else 0
        return previous + self._count

    def dump(self) -> list[int]:
        """The remembered keys, the previous generation's first, each generation's in
        ascending order: the order of a table's slots depends on the order the keys came in
        (linear probing), so it would not survive a load and a save."""
        return [
            key
            for table in (self._previous, self._current)
            if table is not None
            for key in sorted(filter(None, table))  # filter in C: most slots are empty
        ]

    def load(self, keys: list[int]) -> None:
        self._current = self._previous = None
        self._count = 0
        for key in keys[-self.size :]:
            key = int(key)
            if not 0 < key < 1 << 32:
                raise StateError(f"a remembered id hash must be a 32-bit number, got {key}")
            self._add_key(key)


def _probe(table: array[int], key: int, mask: int) -> bool:
    slot = key & mask
    while (found := table[slot]) != key:
        if not found:
            return False
        slot = (slot + 1) & mask
    return True


class LabelJoiner:
    """Waiting predictions and early labels of one model."""

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    #: 2: a waiting prediction may carry its probability score as a fourth element.
    #: 3: that fourth element may also be an object, class -> probability (or null: none),
    #: and a fifth, the prediction's segment code, follows when it has one.
    STATE_FORMAT: ClassVar[int] = 3

    def __init__(self, config: JoinConfig, totals: dict[str, int] | None = None) -> None:
        self.config = config
        # Totals shared by all of a monitor's models (they outlive a model moved elsewhere).
        self._totals = totals if totals is not None else {}
        # prediction_id -> its waiting prediction, insertion order ~ event time. A million wait
        # by default, so each is one int where it can be: predicted_at * _CODES + the index of
        # its (version, prediction) in _combos (a few versions x a few classes); otherwise
        # (regression values, past _CODES combinations) the tuple (predicted_at, version,
        # prediction). ~100 bytes less a prediction than the tuple. A plain dict, not an
        # OrderedDict: 53 bytes less a prediction (a quarter of a fleet's memory). The oldest
        # is its first entry, found past the holes its deletions leave: _removed counts them,
        # and the dict is rebuilt without them once they outnumber a quarter of its entries.
        self._predictions: dict[str, int | tuple[int, str, Any]] = {}
        self._removed = 0
        self._combos: list[tuple[str, Any]] = []
        self._combo_codes: dict[tuple[str, type, Any], int] = {}
        # A waiting class -> probability score is (its class names, shared, and its
        # probabilities as float32 bytes: exact on the 1 / 65,536 grid), ~4 bytes a class.
        self._names: dict[tuple[str, ...], tuple[str, ...]] = {}
        # prediction_id -> (labelled_at, label): labels that came before their prediction
        self._labels: OrderedDict[str, tuple[int, Any]] = OrderedDict()
        self._expired = _RecentIds(config.remember)
        self._joined = _RecentIds(config.remember)
        self.counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)

    def _pack(
        self, predicted_at: int, version: str, prediction: Any, level: int = 0, segment: int = 0
    ) -> int | tuple[Any, ...]:
        """A waiting prediction, its score as ``level`` (0: none; else 1 + score x _STEPS) and
        its segment code."""
        key = (version, type(prediction), prediction)  # True == 1, but they are other classes
        code = self._combo_codes.get(key)
        if code is None:
            if type(prediction) is float or len(self._combos) >= _CODES:
                score = (level - 1) / _STEPS if level else None
                return (predicted_at, version, prediction, score, segment)
            code = self._combo_codes[key] = len(self._combos)
            self._combos.append((version, prediction))
        return ((predicted_at * _LEVELS + level) * SEGMENT_CODES + segment) * _CODES + code

    def _pack_map(
        self,
        predicted_at: int,
        version: str,
        prediction: Any,
        probabilities: dict[str, float],
        segment: int = 0,
    ) -> tuple[Any, ...]:
        """A waiting prediction with a class -> probability score (already on the grid)."""
        names = tuple(probabilities)
        shared = self._names.get(names)
        if shared is None:
            shared = names
            if len(self._names) < _SHARED_NAMES:
                self._names[names] = names
        levels = array("f", probabilities.values()).tobytes()
        return (predicted_at, version, prediction, (shared, levels), segment)

    def _waiting(
        self,
        predicted_at: int,
        version: str,
        prediction: Any,
        score: int | dict[str, float],
        segment: int,
    ) -> int | tuple[Any, ...]:
        """A waiting prediction with its score (a level, 0: none; or a map) and segment."""
        if type(score) is int:
            return self._pack(predicted_at, version, prediction, score, segment)
        return self._pack_map(predicted_at, version, prediction, score, segment)  # type: ignore[arg-type]

    def _unpack(
        self, waiting: int | tuple[Any, ...]
    ) -> tuple[int, str, Any, float | dict[str, float] | None, int]:
        if type(waiting) is tuple:
            score = waiting[3]
            if type(score) is not tuple:
                return waiting  # type: ignore[return-value]
            names, levels = score
            probabilities = dict(zip(names, array("f", levels).tolist(), strict=True))
            return waiting[0], waiting[1], waiting[2], probabilities, waiting[4]
        rest, code = divmod(waiting, _CODES)  # floor division: exact for any sign
        rest, segment = divmod(rest, SEGMENT_CODES)
        predicted_at, level = divmod(rest, _LEVELS)
        version, prediction = self._combos[code]
        return predicted_at, version, prediction, (level - 1) / _STEPS if level else None, segment

    def _count(self, outcome: str, amount: int) -> None:
        self.counts[outcome] += amount
        self._totals[outcome] = self._totals.get(outcome, 0) + amount

    @property
    def pending(self) -> int:
        """Predictions waiting for a label."""
        return len(self._predictions)

    @property
    def pending_labels(self) -> int:
        """Labels waiting for their prediction."""
        return len(self._labels)

    def add_prediction(
        self,
        prediction_id: str,
        predicted_at: int,
        version: str,
        prediction: Any,
        score: float | dict[str, float] | None = None,
        segment: int = 0,
    ) -> Outcome | None:
        """Hold a prediction for its label; return the outcome at once if the label is here.

        ``score``: its probability score, kept when a float in [0, 1] or a class ->
        probability map (of probabilities in [0, 1]); ``segment``: its segment code (below
        :data:`SEGMENT_CODES`)."""
        # A score is kept at a level (exact for halves, quarters, ...), whichever topic comes
        # first: a replay and the live service must decide alike.
        level = 0
        probabilities = None
        if score is not None:
            if type(score) is float:
                if 0.0 <= score <= 1.0:
                    level = int(score * _STEPS + 1.5)
            else:
                probabilities = on_grid(score)  # type: ignore[arg-type]
        early = self._labels.pop(prediction_id, None)
        if early is not None:
            self._count("joined", 1)
            self._joined.add(prediction_id)
            kept = (
                probabilities
                if probabilities is not None
                else ((level - 1) / _STEPS if level else None)
            )
            return Outcome(
                version, prediction, early[1], predicted_at, early[0], kept, segment, prediction_id
            )
        if prediction_id in self._predictions or prediction_id in self._joined:
            return None  # a re-sent prediction (at-least-once producers): keep the first
        self._predictions[prediction_id] = (
            self._pack(predicted_at, version, prediction, level, segment)
            if probabilities is None
            else self._pack_map(predicted_at, version, prediction, probabilities, segment)
        )
        excess = len(self._predictions) - self.config.max_pending
        if excess > 0:
            # 1/256 of the cap at once: one scan past the dict's holes per chunk, not per
            # prediction (the oldest go first either way, and the cap holds).
            self.evict(excess + (self.config.max_pending >> 8))
        return None

    def add_label(self, prediction_id: str, label: Any, labelled_at: int) -> Outcome | None:
        """Join a label to its prediction, or hold it, or count it late or duplicate."""
        waiting = self._predictions.pop(prediction_id, None)
        if waiting is not None:
            self._removed_some(1)
            self._count("joined", 1)
            self._joined.add(prediction_id)
            predicted_at, version, prediction, score, segment = self._unpack(waiting)
            return Outcome(
                version, prediction, label, predicted_at, labelled_at, score, segment, prediction_id
            )
        if prediction_id in self._joined or prediction_id in self._labels:
            self._count("duplicate", 1)
        elif prediction_id in self._expired:
            self._count("late", 1)
        else:
            self._labels[prediction_id] = (labelled_at, label)
            if len(self._labels) > self.config.max_pending_labels:
                self._labels.popitem(last=False)
                self._count("unknown_id", 1)
        return None

    def expire(self, watermark: int) -> None:
        """Drop predictions older than ``ttl`` and early labels older than ``label_wait``."""
        cutoff = watermark - self.config.ttl
        expired = []
        for prediction_id, waiting in self._predictions.items():
            if self._unpack(waiting)[0] >= cutoff:
                break
            expired.append(prediction_id)
        if expired:
            self._drop(expired)
            self._count("expired", len(expired))
        label_cutoff = watermark - self.config.label_wait
        labels = self._labels
        while labels:
            labelled_at, _ = next(iter(labels.values()))
            if labelled_at >= label_cutoff:
                break
            labels.popitem(last=False)
            self._count("unknown_id", 1)

    def evict(self, count: int) -> int:
        """Drop the ``count`` oldest waiting predictions (memory pressure); return how many."""
        oldest = list(islice(self._predictions, max(0, count)))
        self._drop(oldest)  # a label for one of them is late, not unknown
        self._count("evicted", len(oldest))
        return len(oldest)

    def _drop(self, prediction_ids: list[str]) -> None:
        """Forget waiting predictions (expired or evicted), remembering their ids."""
        predictions, expired = self._predictions, self._expired
        for prediction_id in prediction_ids:
            del predictions[prediction_id]
            expired.add(prediction_id)
        self._removed_some(len(prediction_ids))

    def _removed_some(self, count: int) -> None:
        """Count ``count`` deletions; past a quarter of the entries, rebuild the waiting
        predictions without the holes the deletions left (same order)."""
        self._removed += count
        if self._removed > 64 + (len(self._predictions) >> 2):
            self._predictions = dict(self._predictions)
            self._removed = 0

    # -- state ---------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return stamp(
            self.STATE_FORMAT,
            {
                # (id, [time, version, prediction]) pairs, with the score (a number, or an object
                # class -> probability) as a fourth element when the prediction has one, and its
                # segment code as a fifth when it has one (orjson writes tuples as arrays)
                "predictions": [
                    (pid, unpacked if unpacked[4] else unpacked[: 3 if unpacked[3] is None else 4])
                    for pid, w in self._predictions.items()
                    for unpacked in (self._unpack(w),)
                ],
                "labels": list(self._labels.items()),
                "expired": self._expired.dump(),
                "joined": self._joined.dump(),
                "counts": self.counts,
            },
        )

    def load_state(self, state: dict[str, Any]) -> None:
        fmt = read_format(state, "LabelJoiner", self.STATE_FORMAT)
        predictions = state["predictions"]
        if fmt == 1 and any(len(w) != 3 for _, w in predictions):
            raise StateError("a format-1 waiting prediction is [time, version, prediction]")
        if fmt == 2 and any(len(w) > 4 for _, w in predictions):
            raise StateError(
                "a format-2 waiting prediction is [time, version, prediction(, score)]"
            )
        labels = state["labels"]
        if (
            len(predictions) > self.config.max_pending
            or len(labels) > self.config.max_pending_labels
        ):
            raise StateError("more waiting predictions or labels than the limits allow")
        self._combos, self._combo_codes, self._names = [], {}, {}
        self._removed = 0
        self._predictions = dict(
            (
                str(pid),
                self._waiting(
                    int(w[0]), str(w[1]), _scalar(w[2]), _saved_score(w, fmt), _segment(w)
                ),
            )
            for pid, w in predictions
        )
        self._labels = OrderedDict(
            (str(pid), (int(t), _scalar(label))) for pid, (t, label) in labels
        )
        self._expired.load(state["expired"])
        self._joined.load(state["joined"])
        self.counts = {k: int(state["counts"].get(k, 0)) for k in OUTCOMES}


def on_grid(probabilities: dict[str, float]) -> dict[str, float] | None:
    """A class -> probability score with each probability rounded half up to 1 / 65,536 (the
    grid of a binary score); ``None`` when empty or when a value is not a probability.

    >>> on_grid({"cat": 0.7, "dog": 0.3}) == {"cat": 45875 / 65536, "dog": 19661 / 65536}
    True
    >>> on_grid({"cat": 1.5}), on_grid({})
    (None, None)
    """
    kept = {}
    for name, p in probabilities.items():
        if not 0.0 <= p <= 1.0:  # (NaN too)
            return None
        kept[name] = int(p * _STEPS + 0.5) / _STEPS
    return kept or None


def _saved_score(waiting: Any, fmt: int) -> int | dict[str, float]:
    """A saved waiting prediction's score: its level (0: none), or (format 3) its class ->
    probability map; [time, version, prediction] or with a fourth element, the score."""
    if not 3 <= len(waiting) <= 5:
        raise StateError("a waiting prediction is [time, version, prediction(, score(, segment))]")
    if len(waiting) == 3 or waiting[3] is None:
        return 0
    score = waiting[3]
    if isinstance(score, dict):
        if fmt < 3:
            raise StateError(f"a format-{fmt} waiting prediction's score is a number")
        return _saved_map(score)
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise StateError("a waiting prediction's score is a number or an object")
    score = float(score)
    if not 0.0 <= score <= 1.0:
        raise StateError("a waiting prediction's score must be in [0, 1]")
    return int(score * _STEPS + 1.5)  # (1 + the score rounded half up to a step)


def _saved_map(score: dict[Any, Any]) -> dict[str, float]:
    """A saved class -> probability score, checked and put back on the grid."""
    if not 0 < len(score) <= MAX_SCORE_CLASSES:
        raise StateError(
            f"a waiting class -> probability score has 1 to {MAX_SCORE_CLASSES} entries"
        )
    if not all(type(name) is str for name in score):
        raise StateError("a waiting class -> probability score is keyed by class names")
    values = score.values()
    if not all(
        not isinstance(p, bool) and isinstance(p, int | float) and 0.0 <= p <= 1.0 for p in values
    ):
        raise StateError("a waiting class -> probability score holds probabilities in [0, 1]")
    kept = on_grid({name: float(p) for name, p in score.items()})
    assert kept is not None  # (checked above)
    return kept


def _segment(waiting: Any) -> int:
    """A saved waiting prediction's segment code: its fifth element, if any."""
    if len(waiting) < 5:
        return 0
    segment = waiting[4]
    if type(segment) is not int or not 0 <= segment < SEGMENT_CODES:
        raise StateError(f"a waiting prediction's segment code must be in [0, {SEGMENT_CODES})")
    return segment


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise StateError(f"a prediction or label must be a scalar, got {type(value).__name__}")
