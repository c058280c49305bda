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
from operator import attrgetter
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from mode import Service

from detectors.monitor import Monitor, Rejection
from schemas import DecodeError, EventDecoder
from schemas.cloudevents import Alert, Command
from stream.checkpoints import CheckpointBook
from stream.deadletter import DeadLetter, decode_record, valid_events
from stream.fetcher import OrderedFetcher
from stream.history import History
from stream.outputs import Outputs
from stream.restore import latest_states, read_state_topic, restore_models
from stream.routing import Route, Router
from stream.settings import Settings
from stream.state import MAX_STATE_BYTES, StateCodec

__all__ = ["InputPipeline", "PipelineStats"]

logger = logging.getLogger("driftline.pipeline")

_VALUE = attrgetter("value")
_MODEL_ID = attrgetter("model_id")

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
    (:class:`~stream.fetcher.OrderedFetcher` over :class:`~stream.ordering.TimestampMerge`);
    what is produced goes through :class:`~stream.outputs.Outputs`. This class moves records
    and awaits.
    """

    def __init__(
        self,
        *,
        producer: Any,
        settings: Settings,
        monitor: Monitor,
        declare: Any = None,
        history: History | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.producer = producer
        self.settings = settings
        self.monitor = monitor
        #: The status page's history: alerts and commands go into its timelines.
        self.history = history
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
        self.outputs = Outputs(producer, settings.topics, self.state_topic, self.stats)
        #: Fetches, and releases records in timestamp order (set at start, with the consumer).
        self.fetcher: OrderedFetcher | None = None

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
        self.fetcher = OrderedFetcher(
            self.consumer, list(self.kinds), settings.max_batch, settings.order_wait
        )
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
        fetcher = self.fetcher
        assert fetcher is not None
        self.healthy = True
        book = self.book
        try:
            while not self.should_stop:
                records = await fetcher.fetch()
                async with self._lock:
                    released = await fetcher.release(records)
                    self.stats.order_held = fetcher.order.held
                    self.stats.order_forced = fetcher.order.forced
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

    # -- processing ----------------------------------------------------------------------------

    async def handle(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        """One fetch: decode, route (core, re-route, skip), run the core, publish."""
        assert self.router is not None
        stats = self.stats
        events: list[Any] = []
        labels: list[Any] = []
        decode = self.decoder.decode
        decode_many = self.decoder.decode_many
        route = self.router.route
        ok_route, rerouted = Route.OK, Route.REROUTED  # (enum members read once: ~0.1 us each)
        for tp, records in fetched.items():
            kind = self.kinds.get(tp.topic)
            if kind is None or not records:
                continue
            topic, partition = tp.topic, tp.partition
            into = labels if kind == "label" else events
            # The common case first: every record one valid event, every model at home here.
            fast = decode_many(kind, list(map(_VALUE, records)))
            if fast is not None:
                models = set(map(_MODEL_ID, fast))
                if self.router.at_home(models, topic, partition, records[0].offset):
                    into.extend(fast)
                    self.book.applied(tp, records[-1].offset + 1, models)
                    stats.events[(topic, "ok")] += len(fast)
                    continue
            ok = 0
            models = set()
            for position, record in enumerate(records):
                value = record.value
                if fast is not None:
                    decoded = [fast[position]]
                elif value is not None and value[:1] == b"{":
                    # The common case, one event per message: no batch wrapper.
                    try:
                        decoded = [decode(kind, value)]
                    except DecodeError as error:
                        self.outputs.dead_letter(
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
                        self.outputs.dead_letter(letter)
                for event in decoded:
                    model_id = event.model_id
                    where = route(model_id, topic, partition, record.offset)
                    if where is ok_route:
                        ok += 1
                        models.add(model_id)
                        into.append(event)
                    elif where is rerouted:
                        self.outputs.reroute(record, topic, event, self.router)
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
        if self.outputs.in_flight > _MAX_IN_FLIGHT:
            await self.outputs.flush()

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
                    self.outputs.dead_letter(
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
            self.outputs.state(model_id, None, partition)

    def _publish(self, outputs: list[Alert | Command]) -> None:
        self.outputs.cloudevents(outputs)
        if self.history is not None:
            self.history.record(outputs)
        for out in outputs:
            if isinstance(out, Command):
                self.book.command_emitted(out.subject)

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
            await self.outputs.flush()

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
        await self.outputs.flush()
        failed = False
        for model_id in models:
            failed |= not self._save_model(model_id)
        await self.outputs.flush()
        return book.end_checkpoint(models, failed=failed, only=only)

    async def _save_commanded(self) -> None:
        """Save at once the state of models that emitted a command (once the command is
        acknowledged): a restart then skips the events that caused it, and does not repeat a
        command whose automation may already have acted. Only those models: their records hold
        their own input positions, so no offset commit (nor anyone else's state) is needed."""
        async with self._lock:
            await self.outputs.flush()
            for model_id in self.book.take_commanded():
                self._save_model(model_id)
            await self.outputs.flush()

    async def _advance_round(self, budget: float = 0.01) -> None:
        """Save the next models of the round for at most ``budget`` seconds; when the round is
        done, commit the offsets it started at (see stream/checkpoints.py)."""
        book = self.book
        async with self._lock:
            await self.outputs.flush()  # outputs acknowledged before the state that follows
            started = time.perf_counter()
            while time.perf_counter() - started < budget:
                model_id = book.next_in_round()
                if model_id is None:
                    break
                if not self._save_model(model_id):
                    book.save_failed()
            else:
                return  # out of time: the round goes on after the next fetch
            await self.outputs.flush()  # the state records acknowledged
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
        assert partition is not None  # (saved_offsets said the model is held here)
        self.outputs.state(model_id, blob, partition)
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
            if self.fetcher is not None:
                # Held records were never applied: the next owner reads them from the commit.
                self.fetcher.drop(numbers)
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
        records = await read_state_topic(self.settings.kafka_kwargs(), self.state_topic, partitions)
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
