"""What a worker must save and may commit: the synchronous book behind its checkpoints.

The input pipeline applies fetched records to the core, and every ``checkpoint_interval``
seconds writes the state of each model changed since the last checkpoint (with the input
positions it reflects) and then commits input offsets. The rules that make this exactly-once for
state live here, free of Kafka and of awaits, so they can be tested on their own:

- a model's saved record holds the positions of its partition at the moment it is saved, so a
  round may save models one at a time while events keep flowing;
- a round commits the positions it *started* at, which are at or before every saved record's;
- nothing is committed past events whose state could not be saved (too large): those events
  are read again;
- a model restored from the state topic skips, per topic, the offsets its state already holds
  (``resume``), until the positions have passed them.

Examples
--------
>>> book = CheckpointBook()
>>> book.assign({0})
{0}
>>> book.applied(("model.predictions", 0), 11, {"churn"})
>>> book.start_round(now=5.0)
>>> book.next_in_round()
'churn'
>>> book.saved_offsets("churn", ["model.predictions", "model.labels"])
{'model.predictions': 11, 'model.labels': 0}
>>> book.next_in_round() is None
True
>>> book.finish_round()
{('model.predictions', 0): 11}
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

__all__ = ["CheckpointBook"]


def _number(tp: Any) -> int:
    """The partition number of an input partition: aiokafka's ``TopicPartition`` (a named
    tuple) or a ``(topic, partition)`` tuple."""
    return tp[1]


class CheckpointBook:
    """Positions applied, models changed, and the checkpoint round in progress."""

    def __init__(self) -> None:
        #: Next offset to apply per input partition (what the core's state reflects).
        self.positions: dict[Any, int] = {}
        #: Input partition numbers this worker owns.
        self.owned: set[int] = set()
        #: model_id -> topic -> first offset its restored state does not include.
        self.resume: dict[str, dict[str, int]] = {}
        #: Models changed since their state was last written.
        self.dirty: set[str] = set()
        #: Models that emitted a command since their state was last written.
        self.commanded: set[str] = set()
        self.last_checkpoint = 0.0
        self._partition_of: dict[str, int] = {}
        self._round: list[str] | None = None  # models left to save, popped from the end
        self._round_offsets: dict[Any, int] = {}
        self._round_failed = False

    # -- what happened ---------------------------------------------------------------------

    def applied(self, tp: Any, next_offset: int, models: Iterable[str]) -> None:
        """Records of ``tp`` up to ``next_offset`` were handed to the core, changing ``models``."""
        self.positions[tp] = next_offset
        number = _number(tp)
        for model_id in models:
            self._partition_of[model_id] = number
            self.dirty.add(model_id)

    def changed(self, model_id: str) -> None:
        """A model changed outside a fetch (a stall check on the wall clock)."""
        self.dirty.add(model_id)

    def command_emitted(self, model_id: str) -> None:
        self.commanded.add(model_id)

    def take_commanded(self) -> list[str]:
        """The models to save at once, because they emitted a command (then forgotten)."""
        models, self.commanded = sorted(self.commanded), set()
        return models

    def partition_of(self, model_id: str) -> int | None:
        """The input partition of a model this worker holds, if any."""
        return self._partition_of.get(model_id)

    def saved_offsets(self, model_id: str, topics: Iterable[str]) -> dict[str, int] | None:
        """The input positions a state record of ``model_id`` written now reflects (None for a
        model this worker does not hold)."""
        number = self._partition_of.get(model_id)
        if number is None:
            return None
        # aiokafka's TopicPartition is a named tuple: a plain tuple finds it.
        return {topic: self.positions.get((topic, number), 0) for topic in topics}

    # -- a checkpoint spread over several fetches ----------------------------------------------

    def due(self, now: float, interval: float) -> bool:
        """Whether a round should start (none in progress, ``interval`` seconds passed)."""
        return self._round is None and now - self.last_checkpoint >= interval

    @property
    def in_round(self) -> bool:
        return self._round is not None

    def start_round(self, now: float) -> None:
        """Begin saving the models changed since the last checkpoint."""
        self.last_checkpoint = now
        self._round = sorted(self.dirty, reverse=True)  # popped from the end: sorted order
        self.dirty.clear()
        self._round_offsets = dict(self.positions)
        self._round_failed = False

    def next_in_round(self) -> str | None:
        """The next model of the round to save, or None when all were handed out."""
        if not self._round:
            return None
        return self._round.pop()

    def save_failed(self) -> None:
        """A model's state could not be written: the round must not commit."""
        self._round_failed = True

    def finish_round(self) -> dict[Any, int]:
        """End the round; the offsets it may commit (those it started at, owned partitions)."""
        self._round = None
        if self._round_failed:
            offsets = {}
        else:
            offsets = {
                tp: offset
                for tp, offset in self._round_offsets.items()
                if _number(tp) in self.owned
            }
        self._forget_resumes()
        return offsets

    # -- a whole checkpoint at once (stop, revoke) ----------------------------------------------

    def begin_checkpoint(self, now: float, only: Collection[int] | None = None) -> list[str]:
        """The models to save now (of partitions ``only``, or all); folds in an unfinished
        round."""
        if self._round is not None:
            self.dirty.update(self._round)
            self._round = None
        self.last_checkpoint = now
        self.commanded.clear()
        return sorted(m for m in self.dirty if only is None or self._partition_of.get(m) in only)

    def end_checkpoint(
        self, saved: Iterable[str], *, failed: bool, only: Collection[int] | None = None
    ) -> dict[Any, int]:
        """The models' state was written (all of it, unless ``failed``); the offsets that may
        be committed (none after a failure: those events must be processed again)."""
        self.dirty.difference_update(saved)
        self._forget_resumes()
        if failed:
            return {}
        return {
            tp: offset
            for tp, offset in self.positions.items()
            if only is None or _number(tp) in only
        }

    # -- ownership -----------------------------------------------------------------------------

    def assign(self, numbers: Collection[int]) -> set[int]:
        """Partitions arrive; the numbers not already owned (whose state must be loaded)."""
        new = set(numbers) - self.owned
        self.owned |= new
        return new

    def restored(self, model_id: str, number: int, offsets: dict[str, int]) -> None:
        """A model's state was loaded: its events before ``offsets`` are skipped."""
        self._partition_of[model_id] = number
        self.resume[model_id] = offsets

    def revoke(self, numbers: Collection[int]) -> list[str]:
        """Partitions leave (after their checkpoint): forget them; the models they held."""
        gone = [m for m, p in self._partition_of.items() if p in numbers]
        for model_id in gone:
            del self._partition_of[model_id]
            self.resume.pop(model_id, None)
            self.dirty.discard(model_id)
        for tp in [tp for tp in self.positions if _number(tp) in numbers]:
            del self.positions[tp]
        self.owned -= set(numbers)
        return gone

    def _forget_resumes(self) -> None:
        """Drop the skip marks the positions have passed (the hot path checks none then)."""
        for model_id, resume in list(self.resume.items()):
            offsets = self.saved_offsets(model_id, resume)
            if offsets is None or all(offsets[t] >= o for t, o in resume.items()):
                del self.resume[model_id]
