"""The acted-id log on Kafka: a compacted topic, read to its end before acting, written
synchronously (``acks=all``, awaited) before act moves on.

The records' meaning is in :mod:`stream.act.acted`; this module only moves them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream.act.acted import ActedLog, MarkState, encode_mark

__all__ = ["ActedTopic", "partitions_of"]

log = logging.getLogger("driftline.act")

#: Compacted (the latest mark per key is all that matters); small segments so compaction keeps
#: the log act reads at every start short.
TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "segment.bytes": str(16 * 1024 * 1024),
    "min.cleanable.dirty.ratio": "0.1",
}


async def partitions_of(admin: AIOKafkaAdminClient, names: list[str]) -> list[TopicPartition]:
    """Every partition of the topics ``names``, asked of the cluster (a topic created a moment
    ago may take a few rounds to show its partitions)."""
    for _ in range(100):
        described = await admin.describe_topics(names)
        parts = [
            TopicPartition(topic["topic"], p["partition"])
            for topic in described
            if topic["error_code"] == 0
            for p in topic["partitions"]
        ]
        if {tp.topic for tp in parts} == set(names):
            return sorted(parts)
        await asyncio.sleep(0.1)
    raise RuntimeError(f"topics {names} have no partitions in the cluster's metadata")


class ActedTopic:
    """Reads and writes the log; ``producer`` is shared with the rest of act (None in a dry
    run: nothing is written)."""

    def __init__(
        self, name: str, kafka: dict[str, Any], producer: Any | None, replication: int
    ) -> None:
        self.name = name
        self.log = ActedLog()
        self._kafka = kafka
        self._producer = producer
        self._replication = replication
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []

    async def start(self, *, create: bool) -> bool:
        """Create the topic if missing (with ``create``), then read it to its end. False when
        it does not exist (a dry run before any real run)."""
        admin = AIOKafkaAdminClient(**self._kafka)
        await admin.start()
        try:
            exists = self.name in await admin.list_topics()
            if not exists and create:
                log.info("creating the compacted topic %s", self.name)
                await admin.create_topics(
                    [NewTopic(self.name, 1, self._replication, topic_configs=TOPIC_CONFIG)]
                )
                exists = True
            if not exists:
                return False
            self._partitions = await partitions_of(admin, [self.name])
        finally:
            await admin.close()
        self._consumer = AIOKafkaConsumer(enable_auto_commit=False, **self._kafka)
        await self._consumer.start()
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_beginning(*self._partitions)
        await self.catch_up()
        return True

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def catch_up(self) -> None:
        """Fold every record written so far (by this process or another) into :attr:`log`."""
        if self._consumer is None:
            return
        consumer = self._consumer
        ends = await consumer.end_offsets(self._partitions)
        while True:
            behind = [tp for tp, end in ends.items() if await consumer.position(tp) < end]
            if not behind:
                return
            batch = await consumer.getmany(*behind, timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    self.log.apply(record.key, record.value, record.offset)

    async def mark(
        self,
        state: MarkState,
        *,
        event_id: str,
        action: str,
        before: str | None = None,
        at_ms: int = 0,
    ) -> None:
        """Write a mark and wait until the broker has it (all in-sync replicas)."""
        assert self._producer is not None, "a dry run records nothing"
        key, value = encode_mark(
            state,
            event_id=event_id,
            action=action,  # type: ignore[arg-type]
            before=before,
            at_ms=at_ms,
        )
        sent = await self._producer.send_and_wait(self.name, value, key=key)
        self.log.apply(key, value, sent.offset)

    async def withdraw(self, *, event_id: str, action: str) -> None:
        """Forget a step (a tombstone): as if it had never been started."""
        assert self._producer is not None, "a dry run records nothing"
        key = f"{event_id}/{action}".encode()
        sent = await self._producer.send_and_wait(self.name, None, key=key)
        self.log.apply(key, None, sent.offset)
