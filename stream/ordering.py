"""The three input topics applied in record-timestamp order, per partition number.

A label joins its prediction only if the prediction was applied first. The topics are
consumed independently, so a fetch can bring a partition's labels long before the predictions
they belong to (a backlog at a cold start or after a restart: labels are ~4x smaller, so a
fetch of the same bytes reaches hours further into the labels topic), and the early-label
store would overflow. Kafka Streams solves the same problem for joins in its
``PartitionGroup``: it keeps each input partition's fetched records and always takes the one
with the smallest timestamp, waiting (``max.task.idle.ms``) for a partition with nothing
buffered. :class:`TimestampMerge` is driftline's equivalent, for partition *p* of
``model.predictions``, ``model.inputs`` and ``model.labels`` (co-partitioned by ``model_id``).

The timestamp is the Kafka record's (producer ``CreateTime``, or the broker's
``LogAppendTime``), not the event's own: it is known before a record is decoded, it orders a
message holding an array of events as one unit, and it says when the record entered Kafka,
which is what "a prediction already in Kafka" means; an event's timestamp is whatever its
producer wrote (labels are often stamped with the time of the outcome, or of the prediction).

Rule, for each partition number with records held: every topic has a *frontier*, the newest
timestamp known to have been fetched from it,

- +inf when its partition has nothing held and is caught up (nothing more in Kafka: a quiet
  partition never holds the others back);
- otherwise the newest record timestamp fetched from it so far (-inf before the first one).

Records up to the smallest frontier are released, each partition in offset order (a record
with a larger timestamp holds back the ones behind it, as in Kafka Streams). Like Kafka
Streams (``max.task.idle.ms`` at its default), the merge waits for records that are known to
be in Kafka or whose partition has not answered yet, and never for a caught-up partition. As a
safety valve that Kafka Streams does not have, a partition number that made no progress for
``max_wait`` seconds while holding records (another topic's partition lags but its records do
not come: a leader away for long) has its records released anyway, counted in
:attr:`TimestampMerge.forced`; a label released that way waits for its prediction in the
early-label store (``join.label_wait``, ``join.max_pending_labels``).

Examples
--------
>>> from collections import namedtuple
>>> R = namedtuple("R", "offset timestamp")
>>> merge = TimestampMerge(["predictions", "labels"], max_held=100, max_wait=5.0)
>>> merge.add(("labels", 0), [R(0, 150), R(1, 300)])
>>> merge.add(("predictions", 0), [R(0, 100), R(1, 200)])
>>> def show(released):
...     return {tp: [r.offset for r in records] for tp, records in released.items()}
>>> show(merge.release(caught_up=set(), now=0.0))  # more predictions up to 300 may follow
{('predictions', 0): [0, 1], ('labels', 0): [0]}
>>> show(merge.release(caught_up={("predictions", 0)}, now=0.1))  # nothing more of them
{('labels', 0): [1]}
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Protocol

__all__ = ["TimestampMerge"]

_INF = float("inf")
_NONE = float("-inf")
_TIMESTAMP = attrgetter("timestamp")


class Record(Protocol):
    """What the merge reads of a Kafka record."""

    offset: int
    timestamp: int


@dataclass(slots=True)
class _Partition:
    """One input partition's records that are fetched but not yet released: ``records[start:]``
    with their timestamps alongside, so that a release is a binary search and a slice while
    the timestamps increase (as they do from one producer's clock)."""

    records: list[Any] = field(default_factory=list)
    stamps: list[int] = field(default_factory=list)
    start: int = 0
    #: Whether ``stamps[start:]`` never decreases.
    ordered: bool = True
    #: Newest record timestamp fetched from this partition (-inf before the first one).
    newest: float = _NONE

    def __len__(self) -> int:
        return len(self.records) - self.start

    def add(self, records: Sequence[Any]) -> None:
        if self.start and self.start * 2 >= len(self.records):  # drop what was released
            del self.records[: self.start], self.stamps[: self.start]
            self.start = 0
        stamps = list(map(_TIMESTAMP, records))
        if self.ordered:
            self.ordered = (len(self) == 0 or self.stamps[-1] <= stamps[0]) and stamps == sorted(
                stamps
            )
        self.records.extend(records)
        self.stamps.extend(stamps)
        newest = stamps[-1] if self.ordered else max(stamps)
        if newest > self.newest:
            self.newest = newest

    def take(self, bound: float) -> list[Any]:
        """The records up to ``bound``: a prefix in offset order."""
        start, stamps = self.start, self.stamps
        if self.newest <= bound:
            end = len(stamps)
        elif self.ordered:
            end = bisect_right(stamps, bound, start)
        else:
            end = start
            while end < len(stamps) and stamps[end] <= bound:
                end += 1
        taken = self.records[start:end]
        self.start = end
        if end == len(stamps):
            self.records, self.stamps, self.start, self.ordered = [], [], 0, True
        return taken


class TimestampMerge:
    """Fetched records of co-partitioned topics, released in record-timestamp order.

    Parameters
    ----------
    topics
        The co-partitioned input topics, in the order released records are listed.
    max_held
        Most records held per partition; :meth:`is_full` tells the consumer to stop fetching
        it until some are released.
    max_wait
        Seconds a partition number may hold records without progress before they are
        released anyway (0: records are never held).
    key
        Builds the key of a topic's partition (``aiokafka.TopicPartition``; tuples by default).
    """

    def __init__(
        self,
        topics: Sequence[str],
        *,
        max_held: int,
        max_wait: float,
        key: Callable[[str, int], Hashable] = lambda topic, partition: (topic, partition),
    ) -> None:
        self.topics = tuple(topics)
        self.max_held = max_held
        self.max_wait = max_wait
        self.key = key
        #: Records released before their turn, after ``max_wait`` without progress.
        self.forced = 0
        #: Partition numbers whose records the last :meth:`release` forced out.
        self.forced_partitions: list[int] = []
        self._parts: dict[Hashable, _Partition] = {}
        self._holding: set[int] = set()  # partition numbers with records held
        self._full: set[Hashable] = set()
        self._stuck_since: dict[int, float] = {}  # partition number -> last progress

    # -- input -----------------------------------------------------------------------------

    def add(self, tp: Any, records: Sequence[Any]) -> None:
        """Hold a fetch's records of one partition (in offset order)."""
        if not records:
            return
        part = self._parts.get(tp)
        if part is None:
            part = self._parts[tp] = _Partition()
        part.add(records)
        self._holding.add(tp[1])
        if len(part) >= self.max_held:
            self._full.add(tp)

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget everything held for these partition numbers (they left this consumer: the
        next owner reads them again from the committed offsets)."""
        numbers = set(partitions)
        for tp in [tp for tp in self._parts if tp[1] in numbers]:
            del self._parts[tp]
            self._full.discard(tp)
        self._holding -= numbers
        for number in numbers:
            self._stuck_since.pop(number, None)

    # -- reading ---------------------------------------------------------------------------

    @property
    def held(self) -> int:
        """Records fetched and not yet released."""
        return sum(len(part) for part in self._parts.values())

    def is_full(self, tp: Any) -> bool:
        return tp in self._full

    @property
    def any_full(self) -> bool:
        return bool(self._full)

    def waiting_on(self) -> list[Any]:
        """Partitions whose caught-up state decides a release: those with nothing held, of a
        partition number that holds records."""
        out = []
        for number in self._holding:
            for topic in self.topics:
                tp = self.key(topic, number)
                part = self._parts.get(tp)
                if part is None or not len(part):
                    out.append(tp)
        return out

    # -- release ---------------------------------------------------------------------------

    def release(self, caught_up: Collection[Any], now: float) -> dict[Any, list[Any]]:
        """Take the records whose turn has come.

        Parameters
        ----------
        caught_up
            Partitions (of :meth:`waiting_on`) known to have nothing more in Kafka.
        now
            Monotonic seconds, for ``max_wait``.
        """
        out: dict[Any, list[Any]] = {}
        self.forced_partitions = []
        for number in sorted(self._holding):
            parts = []
            bound = _INF
            for topic in self.topics:
                tp = self.key(topic, number)
                part = self._parts.get(tp)
                if part is not None and len(part):
                    frontier = part.newest
                elif tp in caught_up:
                    frontier = _INF
                else:
                    frontier = part.newest if part is not None else _NONE
                bound = min(bound, frontier)
                parts.append((tp, part))
            released = self._take(parts, bound, out)
            if not any(part is not None and len(part) for _, part in parts):
                self._stuck_since.pop(number, None)
            elif self.max_wait <= 0:  # ordering switched off
                self.forced += self._take(parts, _INF, out)
            elif released or number not in self._stuck_since:
                self._stuck_since[number] = now  # progress: the wait starts again
            elif now - self._stuck_since[number] >= self.max_wait:
                self.forced += self._take(parts, _INF, out)
                self.forced_partitions.append(number)
                self._stuck_since.pop(number, None)
        self._holding = {tp[1] for tp, part in self._parts.items() if len(part)}
        return out

    def _take(self, parts: list[tuple[Any, _Partition | None]], bound: float, out: dict) -> int:
        """Move each partition's records up to ``bound`` (a prefix in offset order) to
        ``out``; return how many."""
        count = 0
        for tp, part in parts:
            if part is None or not len(part):
                continue
            taken = part.take(bound)
            if not taken:
                continue
            if len(part) < self.max_held:
                self._full.discard(tp)
            already = out.get(tp)
            if already is None:
                out[tp] = taken
            else:
                already.extend(taken)
            count += len(taken)
        return count
