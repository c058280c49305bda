"""The input path of the live service: whole Kafka fetches into the monitoring core.

Faust hands every message to an agent as an Event through a channel: about 90 us of framework
work per message on the machine driftline is measured on (11k messages/s), an order of magnitude
below what one worker must keep up with. So the input agents here are *batch* agents: one
consumer per worker fetches up to ``max_batch`` records from the three input topics at once and
gives each topic's records to a short handler, which decodes them and feeds the core in one
call. Everything else (producer, web server, timers, lifecycle) is Faust's.

Partitioning: producers key records by ``model_id``; the three input topics have the same number
of partitions and the consumer uses a range assignor, so partition *p* of every input topic goes
to the same worker: one worker owns all of a model's events and state. An event read on another
partition than its ``model_id``'s (an unkeyed record, another key, librdkafka's default CRC32
partitioner) is re-routed to its model's partition, counted ``rerouted`` by cause, and the fix
is logged once per topic and cause.

Ordering: a fetch's records are held in a :class:`~stream.ordering.TimestampMerge` and handed
to the core in record-timestamp order across the three topics, per partition number, so a
label never overtakes an older prediction that is already in Kafka (see stream/ordering.py).
Offsets committed and saved with state are those of the records handed over, never of held
ones.

Delivery and state:

1. the records whose turn has come are decoded, rejected ones go to the dead-letter topic, the
   core runs;
2. alerts and commands are produced (CloudEvents, key ``model_id``);
3. every ``checkpoint_interval`` seconds: outputs are flushed (acknowledged by the broker), then
   the state of every model changed since the last checkpoint is written to the compacted state
   topic with the input offsets it reflects (a model at a time, in slices of a few
   milliseconds between fetches), then the offsets the round started at are committed. A model
   that emitted a command has its state written at once, after the command is acknowledged.

A worker that dies and restarts (or a partition moving to another worker) reloads each model's
state and skips, per model, the events its state already includes: state is updated exactly
once. Alerts, commands and dead letters are at least once: those produced after the last
checkpoint are produced again, with the same CloudEvent ids (dead letters with the same source
offsets), so consumers drop repeats by id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import IllegalStateError
from mode import Service

from detectors.monitor import Monitor, Rejection
from schemas import DecodeError, EventDecoder, encode
from schemas.cloudevents import Alert, Command
from stream.checkpoints import CheckpointBook
from stream.deadletter import DeadLetter, decode_record, valid_events
from stream.ordering import TimestampMerge
from stream.restore import latest_states, restore_models
from stream.routing import REROUTE_FIX, Route, Router, reroute_cause
from stream.settings import Settings
from stream.state import MAX_STATE_BYTES, StateCodec

__all__ = ["InputPipeline", "PipelineStats"]

logger = logging.getLogger("driftline.pipeline")

CLOUDEVENTS_HEADERS = [("content-type", b"application/cloudevents+json; charset=utf-8")]
# Outputs waiting for the broker's acknowledgement before they are awaited.
_MAX_IN_FLIGHT = 5_000


def _rejection_error(rejection: Rejection) -> DecodeError:
    """The dead letter's error for events the core gave back: driftline's words; for a core
    that raised, what it raised rides along as the cause."""
    if rejection.reason == "internal_error":
        return DecodeError(
            "internal_error",
            "$",
            "updating this model raised: the model was reset and starts afresh "
            "(what was raised is in driftline-error-cause)",
            cause=rejection.error,
        )
    return DecodeError(rejection.reason, "$", rejection.error)


@dataclass
class PipelineStats:
    """Counters the metrics collector reads at scrape time."""

    events: Counter[tuple[str, str]] = field(default_factory=Counter)
    deadletters: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: (topic, cause) of records read away from their model's partition, re-routed there.
    rerouted: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: Records fetched and waiting for their turn in timestamp order (now).
    order_held: int = 0
    #: Records applied before their turn, after ``order_wait`` without progress.
    order_forced: int = 0
    state: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    last_batch_at: float = 0.0
    started_at: float = field(default_factory=time.monotonic)


class _Rebalance(ConsumerRebalanceListener):
    """Saves state before partitions leave, loads it when they arrive."""

    def __init__(self, pipeline: InputPipeline) -> None:
        self.pipeline = pipeline

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.pipeline.revoke(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self.pipeline.assign(list(assigned))


class InputPipeline(Service):
    """Batched consumption of the input topics into a :class:`Monitor`.

    What it decides is elsewhere, synchronous and tested on its own: where an event goes
    (:class:`~stream.routing.Router`), what to save and commit
    (:class:`~stream.checkpoints.CheckpointBook`), what the state topic's records restore
    (:func:`~stream.restore.restore_models`), which records' turn has come
    (:class:`~stream.ordering.TimestampMerge`). This class moves records and awaits.
    """

    def __init__(
        self,
        *,
        producer: Any,
        settings: Settings,
        monitor: Monitor,
        declare: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.producer = producer
        self.settings = settings
        self.monitor = monitor
        self.declare = declare
        self.stats = PipelineStats()
        self.codec = StateCodec(settings.state_key)
        self.decoder = EventDecoder(settings.limits)
        self.topics = settings.topics
        self.kinds = settings.topics.inputs_by_kind
        self.state_topic = settings.state_topic_name
        self.consumer: AIOKafkaConsumer | None = None
        self.healthy = False
        self.error: str | None = None
        self.book = CheckpointBook()
        self.book.last_checkpoint = time.monotonic()
        #: Set once the input topics' partition count is known (at start).
        self.router: Router | None = None
        # Held while a fetch is processed, state is saved or a rebalance step runs; never
        # across getmany() or an offset commit (both can wait for a rebalance, whose callbacks
        # take this lock).
        self._lock = asyncio.Lock()
        self._in_flight: list[Any] = []
        # Fetched records wait here until their turn in record-timestamp order (per partition
        # number, across the input topics): see stream/ordering.py.
        self.order = TimestampMerge(
            list(self.kinds),
            max_held=max(1, settings.max_batch // 4),
            max_wait=settings.order_wait,
            key=TopicPartition,
        )
        self._fetched: dict[TopicPartition, int] = {}  # next offset the consumer returns
        self._blocking: list[TopicPartition] = []  # lagging partitions that hold others back
        self._warned: set[tuple[str, str]] = set()  # (topic, cause) of re-routes logged

    # -- lifecycle -----------------------------------------------------------------------------

    async def on_start(self) -> None:
        if self.declare is not None:
            await self.declare()
        settings = self.settings
        self.consumer = AIOKafkaConsumer(
            group_id=settings.app_id,
            enable_auto_commit=False,
            auto_offset_reset=settings.auto_offset_reset,
            partition_assignment_strategy=(RangePartitionAssignor,),
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
            **settings.kafka_kwargs(),
        )
        await self.consumer.start()
        partitions = await self._partition_counts()
        counts = set(partitions.values())
        if len(counts) != 1 or 0 in counts:
            self.error = f"input topics must be co-partitioned (same partition count): {partitions}"
            raise RuntimeError(self.error)
        self.router = Router(counts.pop(), resume=self.book.resume)
        self.consumer.subscribe(list(self.kinds), listener=_Rebalance(self))
        logger.info("consuming %s as group %s", ", ".join(self.kinds), settings.app_id)

    async def _partition_counts(self) -> dict[str, int]:
        """Each input topic's partition count: from the consumer's metadata, or (topics just
        created) asked of the cluster."""
        assert self.consumer is not None
        found = {topic: self.consumer.partitions_for_topic(topic) for topic in self.kinds}
        if all(found.values()):
            return {topic: len(numbers or ()) for topic, numbers in found.items()}
        admin = AIOKafkaAdminClient(**self.settings.kafka_kwargs())
        await admin.start()
        try:
            described = await admin.describe_topics(list(self.kinds))
        finally:
            await admin.close()
        counts = dict.fromkeys(self.kinds, 0)
        for topic in described:
            if topic["topic"] in counts and topic["error_code"] == 0:
                counts[topic["topic"]] = len(topic["partitions"])
        return counts

    async def on_stop(self) -> None:
        self.healthy = False
        if self.consumer is not None:
            try:
                await self.checkpoint()
            except Exception:
                logger.exception("final checkpoint failed")
            await self.consumer.stop()

    @Service.task
    async def _run(self) -> None:
        assert self.consumer is not None
        self.healthy = True
        book = self.book
        try:
            while not self.should_stop:
                records = await self._fetch()
                async with self._lock:
                    released = await self._in_order(records)
                    if released:
                        await self.handle(released)
                if book.commanded:
                    await self._save_commanded()
                if book.due(time.monotonic(), self.settings.checkpoint_interval):
                    book.start_round(time.monotonic())
                if book.in_round:
                    await self._advance_round()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.healthy = False
            self.error = f"{type(exc).__name__}: {exc}"
            logger.exception("input pipeline stopped")
            raise

    # -- ordering --------------------------------------------------------------------------------

    async def _fetch(self) -> dict[TopicPartition, list[Any]]:
        """The next records: first those of partitions that hold others back (the consumer
        returns what it prefetched in arrival order, and a lagging partition's records would
        otherwise wait behind whole fetches of the others), then any partition with room."""
        assert self.consumer is not None
        max_records = self.settings.max_batch
        if self._blocking:
            blocking = [tp for tp in self._blocking if tp in self.consumer.assignment()]
            self._blocking = []
            if blocking:
                records = await self.consumer.getmany(
                    *blocking, timeout_ms=0, max_records=max_records
                )
                if records:
                    return records
        return await self.consumer.getmany(
            *self._fetchable(), timeout_ms=100, max_records=max_records
        )

    def _fetchable(self) -> tuple[TopicPartition, ...]:
        """The partitions to fetch from: all (an empty tuple), or those with room to hold."""
        order = self.order
        if not order.any_full or self.consumer is None:
            return ()
        return tuple(tp for tp in self.consumer.assignment() if not order.is_full(tp))

    async def _in_order(
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
                self.settings.order_wait,
            )
        self.stats.order_held = order.held
        self.stats.order_forced = order.forced
        return released

    async def _caught_up(self, tp: TopicPartition) -> bool:
        """Whether the consumer has returned everything in ``tp`` up to its last known end
        (the high watermark of its latest fetch response): nothing more of it is in Kafka."""
        assert self.consumer is not None
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

    # -- processing ----------------------------------------------------------------------------

    async def handle(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        """One fetch: decode, route (core, re-route, skip), run the core, publish."""
        assert self.router is not None
        stats = self.stats
        events: list[Any] = []
        labels: list[Any] = []
        decode = self.decoder.decode
        route = self.router.route
        for tp, records in fetched.items():
            kind = self.kinds.get(tp.topic)
            if kind is None or not records:
                continue
            topic, partition = tp.topic, tp.partition
            into = labels if kind == "label" else events
            ok = 0
            models: set[str] = set()
            for record in records:
                value = record.value
                if value is not None and value[:1] == b"{":
                    # The common case, one event per message: no batch wrapper.
                    try:
                        decoded = [decode(kind, value)]
                    except DecodeError as error:
                        self._dead_letter(
                            DeadLetter.of(
                                error,
                                key=record.key,
                                value=value,
                                topic=topic,
                                partition=partition,
                                offset=record.offset,
                            )
                        )
                        continue
                else:
                    decoded, dead = decode_record(
                        self.decoder,
                        kind,
                        topic=topic,
                        partition=partition,
                        offset=record.offset,
                        key=record.key,
                        value=value,
                    )
                    for letter in dead:
                        self._dead_letter(letter)
                for event in decoded:
                    model_id = event.model_id
                    where = route(model_id, topic, partition, record.offset)
                    if where is Route.OK:
                        ok += 1
                        models.add(model_id)
                        into.append(event)
                    elif where is Route.REROUTED:
                        self._reroute(record, topic, model_id, event)
                    else:
                        stats.events[(topic, where.value)] += 1
            self.book.applied(tp, records[-1].offset + 1, models)
            if ok:
                stats.events[(topic, "ok")] += ok
        events.extend(labels)  # labels after this fetch's predictions: they may join at once
        if events:
            self._publish(self.monitor.process(events, now=int(time.time() * 1000)))
            if self.monitor.rejections:
                self._dead_letter_rejected(fetched, self.monitor.take_rejections())
        stats.batches += 1
        stats.last_batch_at = time.monotonic()
        if len(self._in_flight) > _MAX_IN_FLIGHT:
            await self.flush()

    def _dead_letter_rejected(
        self, fetched: dict[TopicPartition, list[Any]], rejections: list[Rejection]
    ) -> None:
        """Dead-letter the events the core gave back (a model over ``max_models``, or one whose
        update raised): found again in the fetch, by the rule ``handle`` kept them by."""
        assert self.router is not None
        route = self.router.route
        rejected = {r.model_id: r for r in rejections}
        for r in rejections:
            if r.reason == "internal_error":
                logger.error("model %s was reset after an internal error: %s", r.model_id, r.error)
                self._forget_state(r.model_id)
        for tp, records in fetched.items():
            kind = self.kinds.get(tp.topic)
            if kind is None:
                continue
            topic, partition = tp.topic, tp.partition
            for record in records:
                for index, event in valid_events(self.decoder, kind, record.value):
                    r = rejected.get(event.model_id)
                    if (
                        r is None
                        or route(event.model_id, topic, partition, record.offset) is not Route.OK
                    ):
                        continue
                    self.stats.events[(topic, "ok")] -= 1
                    self._dead_letter(
                        DeadLetter.of(
                            _rejection_error(r),
                            key=record.key,
                            value=record.value if index is None else msgspec.json.encode(event),
                            topic=topic,
                            partition=partition,
                            offset=record.offset,
                            index=index,
                        )
                    )

    def _forget_state(self, model_id: str) -> None:
        """Tombstone a reset model's saved state: a restart must not bring back what failed."""
        partition = self.book.partition_of(model_id)
        if partition is not None:
            self._send(self.state_topic, model_id.encode(), None, partition=partition)

    def _reroute(self, record: Any, topic: str, model_id: str, event: Any) -> None:
        """Send an event read away from its model's partition to that partition (the worker
        owning it applies it there), keeping the record's timestamp for the ordering."""
        assert self.router is not None
        home = self.router.home(model_id)
        cause = reroute_cause(record.key, model_id, record.partition, self.router.partitions)
        self.stats.events[(topic, "rerouted")] += 1
        self.stats.rerouted[(topic, cause)] += 1
        if (topic, cause) not in self._warned:
            self._warned.add((topic, cause))
            logger.warning(
                "%s: records for model %s arrive on partition %d, not on its partition %d: "
                "re-routed there (counted in driftline_rerouted_total). %s",
                topic,
                model_id,
                record.partition,
                home,
                REROUTE_FIX[cause],
            )
        self._send(
            topic,
            model_id.encode(),
            msgspec.json.encode(event),
            partition=home,
            # (Seconds, rounded so that Faust's conversion back gives the same millisecond.)
            timestamp=(record.timestamp + 0.5) / 1000 if record.timestamp >= 0 else None,
        )

    def _dead_letter(self, letter: DeadLetter) -> None:
        self.stats.events[(letter.source_topic, "deadletter")] += 1
        self.stats.deadletters[(letter.source_topic, letter.reason)] += 1
        self._send(self.topics.deadletter, letter.key, letter.value, headers=letter.headers)

    def _publish(self, outputs: list[Alert | Command]) -> None:
        for out in outputs:
            topic = self.topics.alerts if isinstance(out, Alert) else self.topics.commands
            if isinstance(out, Command):
                self.book.command_emitted(out.subject)
            self._send(topic, out.subject.encode(), encode(out), headers=CLOUDEVENTS_HEADERS)

    def _send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp: float | None = None,
    ) -> None:
        # Faust's producer takes the timestamp in seconds.
        self._in_flight.append(
            asyncio.ensure_future(
                self.producer.send(topic, key, value, partition, timestamp, headers)
            )
        )

    async def flush(self) -> None:
        pending, self._in_flight = self._in_flight, []
        # Each send resolves to a future of the broker's acknowledgement.
        acks = await asyncio.gather(*pending)
        await asyncio.gather(*acks)

    async def tick(self) -> None:
        """Stall checks on the wall clock (called by a Faust timer)."""
        outputs = self.monitor.tick(int(time.time() * 1000))
        for r in self.monitor.take_rejections():
            logger.error("model %s was reset after an internal error: %s", r.model_id, r.error)
            self._forget_state(r.model_id)
        for out in outputs:
            self.book.changed(out.subject)
        self._publish(outputs)
        if outputs:
            await self.flush()

    # -- checkpoints and rebalances ------------------------------------------------------------

    async def checkpoint(self, only: set[int] | None = None) -> dict[TopicPartition, int]:
        """A whole checkpoint at once (stop, revoke): outputs acknowledged, then the state of
        every changed model written, then input offsets committed."""
        async with self._lock:
            offsets = await self._save_state(only)
        if offsets:
            await self._commit(offsets)
        return offsets

    async def _save_state(self, only: set[int] | None) -> dict[TopicPartition, int]:
        """Flush outputs and write the state of changed models (of partitions ``only``); the
        offsets that may be committed. Called with the lock held."""
        book = self.book
        models = book.begin_checkpoint(time.monotonic(), only)
        await self.flush()
        failed = False
        for model_id in models:
            failed |= not self._save_model(model_id)
        await self.flush()
        return book.end_checkpoint(models, failed=failed, only=only)

    async def _save_commanded(self) -> None:
        """Save at once the state of models that emitted a command (once the command is
        acknowledged): a restart then skips the events that caused it, and does not repeat a
        command whose automation may already have acted. Only those models: their records hold
        their own input positions, so no offset commit (nor anyone else's state) is needed."""
        async with self._lock:
            await self.flush()
            for model_id in self.book.take_commanded():
                self._save_model(model_id)
            await self.flush()

    async def _advance_round(self, budget: float = 0.01) -> None:
        """Save the next models of the round for at most ``budget`` seconds; when the round is
        done, commit the offsets it started at (see stream/checkpoints.py)."""
        book = self.book
        async with self._lock:
            await self.flush()  # outputs acknowledged before the state that follows
            started = time.perf_counter()
            while time.perf_counter() - started < budget:
                model_id = book.next_in_round()
                if model_id is None:
                    break
                if not self._save_model(model_id):
                    book.save_failed()
            else:
                return  # out of time: the round goes on after the next fetch
            await self.flush()  # the state records acknowledged
            offsets = book.finish_round()
        if offsets:
            await self._commit(offsets)

    def _save_model(self, model_id: str) -> bool:
        """Send one model's state (with the input positions it reflects); False if too large."""
        offsets = self.book.saved_offsets(model_id, self.kinds)
        if offsets is None or model_id not in self.monitor.models:
            return True
        blob = self.codec.encode(
            model_id, {"offsets": offsets, "state": self.monitor.model_state(model_id)}
        )
        if len(blob) > MAX_STATE_BYTES:
            self.stats.state["failed"] += 1
            logger.error("state of %s is %d bytes: too large to save", model_id, len(blob))
            return False
        partition = self.book.partition_of(model_id)
        self._send(self.state_topic, model_id.encode(), blob, partition=partition)
        self.stats.state["saved"] += 1
        return True

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.consumer is None:
            return
        try:
            await asyncio.wait_for(self.consumer.commit(offsets), timeout=10)
        except Exception as exc:  # noqa: BLE001 - the next checkpoint (or owner) commits again
            logger.warning("offset commit failed (%s); retried at the next checkpoint", exc)

    async def revoke(self, partitions: list[TopicPartition]) -> None:
        """Partitions leave this worker: save their models' state, commit, forget them."""
        numbers = {tp.partition for tp in partitions if tp.topic in self.kinds}
        if not numbers:
            return
        async with self._lock:
            offsets = await self._save_state(numbers)
            gone = self.book.revoke(numbers)
            self.monitor.drop_models(gone)
            for tp in [tp for tp in self._fetched if tp.partition in numbers]:
                del self._fetched[tp]
            # Held records were never applied: the next owner reads them from the commit.
            self.order.drop(numbers)
        if offsets:
            await self._commit(offsets)
        logger.info("revoked partitions %s (%d models handed over)", sorted(numbers), len(gone))

    async def assign(self, partitions: list[TopicPartition]) -> None:
        """Partitions arrive: load their models' state."""
        numbers = {tp.partition for tp in partitions if tp.topic in self.kinds}
        async with self._lock:
            new = self.book.assign(numbers)
            if new:
                await self._restore(new)

    async def _restore(self, partitions: set[int]) -> None:
        """Load the state of every model on these partitions from the state topic."""
        started = time.monotonic()
        records = await self._read_state_topic(partitions)
        restored = restore_models(latest_states(records), codec=self.codec, monitor=self.monitor)
        for model_id, (partition, offsets) in restored.models.items():
            self.book.restored(model_id, partition, offsets)
        for model_id, reason in restored.rejected.items():
            logger.warning("state of %s rejected, starting it afresh: %s", model_id, reason)
        self.stats.state["restored"] += len(restored.models)
        self.stats.state["rejected"] += len(restored.rejected)
        logger.info(
            "restored %d models from partitions %s in %.2fs (%d rejected)",
            len(restored.models),
            sorted(partitions),
            time.monotonic() - started,
            len(restored.rejected),
        )

    async def _read_state_topic(
        self, partitions: set[int]
    ) -> list[tuple[int, bytes | None, bytes | None]]:
        """Every ``(partition, key, value)`` of the state topic's partitions, in offset order."""
        reader = AIOKafkaConsumer(
            enable_auto_commit=False,
            max_partition_fetch_bytes=MAX_STATE_BYTES + 1024 * 1024,
            fetch_max_bytes=MAX_STATE_BYTES + 1024 * 1024,
            **self.settings.kafka_kwargs(),
        )
        await reader.start()
        out: list[tuple[int, bytes | None, bytes | None]] = []
        try:
            tps = [TopicPartition(self.state_topic, p) for p in sorted(partitions)]
            reader.assign(tps)
            await reader.seek_to_beginning(*tps)
            ends = await reader.end_offsets(tps)
            remaining = {tp for tp in tps if ends[tp] > 0}
            while remaining:
                fetched = await reader.getmany(*remaining, timeout_ms=1000)
                for tp, records in fetched.items():
                    out.extend((tp.partition, r.key, r.value) for r in records)
                    if await reader.position(tp) >= ends[tp]:
                        remaining.discard(tp)
        finally:
            await reader.stop()
        return out

    # -- reading -------------------------------------------------------------------------------

    def lag(self) -> dict[tuple[str, int], int]:
        """Records behind the end of each owned input partition."""
        consumer = self.consumer
        if consumer is None:
            return {}
        positions = self.book.positions
        out = {}
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is not None:
                out[(tp.topic, tp.partition)] = max(0, high - positions.get(tp, high))
        return out

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.healthy else "failing",
            "error": self.error,
            "partitions": sorted(self.book.owned),
            "models": len(self.monitor.models),
            "batches": self.stats.batches,
            "seconds_since_last_batch": (
                round(time.monotonic() - self.stats.last_batch_at, 3)
                if self.stats.last_batch_at
                else None
            ),
        }
