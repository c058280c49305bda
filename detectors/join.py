"""Joining labels to predictions by ``prediction_id``, in bounded memory.

Predictions wait for their label for ``ttl`` of event time (default 7 days). Labels can also
arrive *before* their prediction (the three topics are consumed independently): such a label
waits ``label_wait`` for it. Every label ends up counted as exactly one of:

``joined``
    matched a waiting prediction;
``late``
    its prediction had already expired (remembered for the last ``remember`` expiries);
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
>>> joiner.add_label("p1", False, 500)
Outcome(version='v1', prediction=True, label=False, predicted_at=0, labelled_at=500)
>>> joiner.add_prediction("p2", 100, "v1", True)
>>> joiner.expire(2000)
>>> joiner.add_label("p2", True, 2100) is None, joiner.counts["expired"], joiner.counts["late"]
(True, 1, 1)
"""

from __future__ import annotations

import zlib
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Final

from detectors.base import StateError
from detectors.config import JoinConfig

__all__ = ["LabelJoiner", "Outcome", "OUTCOMES"]

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


class _RecentIds:
    """A bounded first-in-first-out set of ids, kept as 32-bit hashes (memory: ~100 B each)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._order: deque[int] = deque()
        self._members: dict[int, int] = {}

    @staticmethod
    def key(prediction_id: str) -> int:
        return zlib.crc32(prediction_id.encode())

    def add(self, prediction_id: str) -> None:
        key = self.key(prediction_id)
        self._order.append(key)
        self._members[key] = self._members.get(key, 0) + 1
        if len(self._order) > self.size:
            old = self._order.popleft()
            left = self._members[old] - 1
            if left:
                self._members[old] = left
            else:
                del self._members[old]

    def __contains__(self, prediction_id: str) -> bool:
        return bool(self._members) and zlib.crc32(prediction_id.encode()) in self._members

    def dump(self) -> list[int]:
        return list(self._order)

    def load(self, keys: list[int]) -> None:
        self._order = deque()
        self._members = {}
        for key in keys[-self.size :]:
            self._order.append(int(key))
            self._members[int(key)] = self._members.get(int(key), 0) + 1


class LabelJoiner:
    """Waiting predictions and early labels of one model."""

    def __init__(self, config: JoinConfig, totals: dict[str, int] | None = None) -> None:
        self.config = config
        # Totals shared by all of a monitor's models (they outlive a model moved elsewhere).
        self._totals = totals if totals is not None else {}
        # prediction_id -> (predicted_at, version, prediction); insertion order ~ event time
        self._predictions: OrderedDict[str, tuple[int, str, Any]] = OrderedDict()
        # prediction_id -> (labelled_at, label): labels that came before their prediction
        self._labels: OrderedDict[str, tuple[int, Any]] = OrderedDict()
        self._expired = _RecentIds(config.remember)
        self._joined = _RecentIds(config.remember)
        self.counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)

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
        self, prediction_id: str, predicted_at: int, version: str, prediction: Any
    ) -> Outcome | None:
        """Hold a prediction for its label; return the outcome at once if the label is here."""
        early = self._labels.pop(prediction_id, None)
        if early is not None:
            self._count("joined", 1)
            self._joined.add(prediction_id)
            return Outcome(version, prediction, early[1], predicted_at, early[0])
        if prediction_id in self._predictions or prediction_id in self._joined:
            return None  # a re-sent prediction (at-least-once producers): keep the first
        self._predictions[prediction_id] = (predicted_at, version, prediction)
        if len(self._predictions) > self.config.max_pending:
            self.evict(1)
        return None

    def add_label(self, prediction_id: str, label: Any, labelled_at: int) -> Outcome | None:
        """Join a label to its prediction, or hold it, or count it late or duplicate."""
        waiting = self._predictions.pop(prediction_id, None)
        if waiting is not None:
            self._count("joined", 1)
            self._joined.add(prediction_id)
            predicted_at, version, prediction = waiting
            return Outcome(version, prediction, label, predicted_at, labelled_at)
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
        predictions = self._predictions
        while predictions:
            prediction_id, (predicted_at, _, _) = next(iter(predictions.items()))
            if predicted_at >= cutoff:
                break
            predictions.popitem(last=False)
            self._expired.add(prediction_id)
            self._count("expired", 1)
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
        dropped = 0
        while dropped < count and self._predictions:
            prediction_id, _ = self._predictions.popitem(last=False)
            self._expired.add(prediction_id)  # a label for it is late, not unknown
            dropped += 1
        self._count("evicted", dropped)
        return dropped

    # -- state ---------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            # (id, (time, version, prediction)) pairs: orjson writes tuples as arrays, no copy
            "predictions": list(self._predictions.items()),
            "labels": list(self._labels.items()),
            "expired": self._expired.dump(),
            "joined": self._joined.dump(),
            "counts": self.counts,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        predictions = state["predictions"]
        labels = state["labels"]
        if (
            len(predictions) > self.config.max_pending
            or len(labels) > self.config.max_pending_labels
        ):
            raise StateError("more waiting predictions or labels than the limits allow")
        self._predictions = OrderedDict(
            (str(pid), (int(t), str(v), _scalar(p))) for pid, (t, v, p) in predictions
        )
        self._labels = OrderedDict(
            (str(pid), (int(t), _scalar(label))) for pid, (t, label) in labels
        )
        self._expired.load(state["expired"])
        self._joined.load(state["joined"])
        self.counts = {k: int(state["counts"].get(k, 0)) for k in OUTCOMES}


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise StateError(f"a prediction or label must be a scalar, got {type(value).__name__}")
