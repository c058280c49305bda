"""The input topics fetched, and handed on in record-timestamp order.

The consumer returns what it prefetched in arrival order; :class:`~stream.ordering.TimestampMerge`
holds a fetch's records until their turn (see stream/ordering.py for the rule). What the merge
cannot know is asked of the consumer here: whether a partition is caught up (nothing more of it
in Kafka), and which partitions to fetch first (those that hold the others back) or at all
(those with room to hold).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError

from stream.ordering import TimestampMerge

__all__ = ["OrderedFetcher"]

logger = logging.getLogger("driftline.pipeline")


class OrderedFetcher:
    """Fetches from a consumer and releases records in timestamp order, per partition number.

    Parameters
    ----------
    consumer
        A started consumer of the input topics.
    topics
        The input topics (co-partitioned).
    max_batch
        Most records per fetch; a partition holds at most a quarter of it.
    order_wait
        Seconds a partition number may hold records without progress before they are released
        anyway (``DRIFTLINE_ORDER_WAIT``).
    """

    def __init__(
        self, consumer: AIOKafkaConsumer, topics: Sequence[str], max_batch: int, order_wait: float
    ) -> None:
        self.consumer = consumer
        self.max_batch = max_batch
        self.order_wait = order_wait
        self.order = TimestampMerge(
            list(topics), max_held=max(1, max_batch // 4), max_wait=order_wait, key=TopicPartition
        )
        self._fetched: dict[TopicPartition, int] = {}  # next offset the consumer returns
        self._blocking: list[TopicPartition] = []  # lagging partitions that hold others back

    async def fetch(self) -> dict[TopicPartition, list[Any]]:
        """The next records: first those of partitions that hold others back (the consumer
        returns what it prefetched in arrival order, and a lagging partition's records would
        otherwise wait behind whole fetches of the others), then any partition with room."""
        consumer = self.consumer
        if self._blocking:
            blocking = [tp for tp in self._blocking if tp in consumer.assignment()]
            self._blocking = []
            if blocking:
                records = await consumer.getmany(
                    *blocking, timeout_ms=0, max_records=self.max_batch
                )
                if records:
                    return records
        return await consumer.getmany(
            *self._fetchable(), timeout_ms=100, max_records=self.max_batch
        )

    def _fetchable(self) -> tuple[TopicPartition, ...]:
        """The partitions to fetch from: all (an empty tuple), or those with room to hold."""
        order = self.order
        if not order.any_full:
            return ()
        return tuple(tp for tp in self.consumer.assignment() if not order.is_full(tp))

    async def release(
        self, fetched: dict[TopicPartition, list[Any]]
    ) -> dict[TopicPartition, list[Any]]:
        """Hold a fetch's records; return those whose turn in timestamp order has come."""
        order = self.order
        for tp, records in fetched.items():
            if records:
                order.add(tp, records)
                self._fetched[tp] = records[-1].offset + 1
        waiting = order.waiting_on()
        if not waiting and not order.held:
            return {}
        caught_up = []
        blocking = []
        for tp in waiting:
            (caught_up if await self._caught_up(tp) else blocking).append(tp)
        released = order.release(caught_up, time.monotonic())
        self._blocking = blocking
        for number in order.forced_partitions:
            logger.warning(
                "partition %d: no records from %s for %gs (DRIFTLINE_ORDER_WAIT): what the other "
                "input topics held was applied out of timestamp order (early labels wait for "
                "their prediction in the early-label store)",
                number,
                ", ".join(sorted(tp.topic for tp in blocking if tp.partition == number)) or "?",
                self.order_wait,
            )
        return released

    async def _caught_up(self, tp: TopicPartition) -> bool:
        """Whether the consumer has returned everything in ``tp`` up to its last known end
        (the high watermark of its latest fetch response): nothing more of it is in Kafka."""
        high = self.consumer.highwater(tp)
        if high is None:  # not fetched yet: unknown
            return False
        end = self._fetched.get(tp)
        if end is None or end < high:
            # The consumer's position also steps over transaction markers and compacted gaps.
            try:
                end = await asyncio.wait_for(self.consumer.position(tp), timeout=1.0)
            except (IllegalStateError, TimeoutError):
                return False
            self._fetched[tp] = end
        return end >= high

    def drop(self, numbers: Collection[int]) -> None:
        """Partitions left this worker: forget what was fetched from them, and held."""
        for tp in [tp for tp in self._fetched if tp.partition in numbers]:
            del self._fetched[tp]
        self.order.drop(numbers)
