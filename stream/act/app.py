"""``driftline act``: commands (and, if asked, alerts) in, actions in other tools out.

The shell around the pure pieces: it only moves records and awaits. Per record, in partition
order:

1. parse it (:mod:`stream.act.received`) and plan it (:mod:`stream.act.plan`); a refusal is
   counted, and dead-lettered when it is an error (invalid, ``not_allowed``, ``too_old``);
2. per step, read its latest mark in the acted-id log (:mod:`stream.act.acted`): skip a
   duplicate, resolve an intent left by a crash, or act: **record the intent, act (with retries,
   :mod:`stream.act.delivery`), record the outcome**;
3. commit the record's offset only then: everything about it is durable.

So a record is read at least once, and each step's effect happens at most once per CloudEvent
id, except for an MLflow step, which a crash between its effect and its outcome may repeat,
harmlessly: setting an alias or a tag is idempotent, and the registry is read first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from detectors.config import ConfigError
from stream.act.acted import next_move
from stream.act.acted_topic import ActedTopic, partitions_of
from stream.act.config import ActionsConfig, load_actions
from stream.act.dead_letters import dead_letter
from stream.act.delivery import Attempt, Backoff, Verdict
from stream.act.http_action import HttpReceiver
from stream.act.metrics import ActMetrics
from stream.act.mlflow_action import (
    MLFLOW_MISSING,
    MlflowRegistry,
    mlflow_available,
    resolve_intent,
)
from stream.act.plan import DEAD_LETTERED, HttpStep, MlflowStep, Step, plan, too_old
from stream.act.received import Received, Refusal, parse_record
from stream.settings import Settings, SettingsError

__all__ = ["ActService", "run_act"]

log = logging.getLogger("driftline.act")

#: Testing only: ``kill_after_effect`` makes the process SIGKILL itself right after an effect
#: and before its outcome is recorded: the crash window, made deterministic.
FAULT_ENV = "DRIFTLINE_ACT_FAULT"


class _Stopping(Exception):
    """A stop was asked for while a step waited to retry: leave without committing.
    ``reached``: whether any attempt may have reached the other side."""

    def __init__(self, reached: bool) -> None:
        super().__init__("stopping")
        self.reached = reached


class ActService:
    """One ``driftline act`` process.

    Parameters
    ----------
    settings, config
        ``DRIFTLINE_*`` settings and the ``actions:`` section.
    dry_run
        Print what would be done (one JSON line per step or refusal on ``out``); act on
        nothing, record nothing, commit nothing, and join no consumer group.
    clock, draw
        Wall-clock seconds and a uniform draw in [0, 1) (the backoff's jitter); injected for
        tests.
    """

    def __init__(
        self,
        settings: Settings,
        config: ActionsConfig,
        *,
        dry_run: bool = False,
        out: TextIO = sys.stdout,
        clock: Callable[[], float] = time.time,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.config = config
        self.dry_run = dry_run
        self.out = out
        self.clock = clock
        self.draw = draw
        self.registry = CollectorRegistry()
        self.metrics = ActMetrics.create(self.registry)
        self.backoff = Backoff(config.retry)
        self.stop = asyncio.Event()
        self.partitions: list[str] = []
        self.ready = False
        # Secrets are read here, once: a missing one stops act at start.
        self._receivers: dict[int, HttpReceiver] = {
            id(m.http): HttpReceiver.from_config(m.http) for m in config.every_model() if m.http
        }
        self._mlflow: MlflowRegistry | None = None
        if config.uses_mlflow and not dry_run:
            longest = max(m.mlflow.timeout for m in config.every_model() if m.mlflow)
            self._mlflow = MlflowRegistry(longest)
        self._fault = os.environ.get(FAULT_ENV)
        self._producer: Any = None
        self._acted: ActedTopic | None = None
        self._session: Any = None

    # -- life ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Until :attr:`stop` is set."""
        from aiohttp import ClientSession
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
        from aiokafka.admin import AIOKafkaAdminClient

        kafka = self.settings.kafka_kwargs()
        topics = self.settings.topics
        names = [topics.commands] + ([topics.alerts] if self.config.reads_alerts else [])
        web = await self._serve()
        consumer = None
        try:
            if not self.dry_run:
                self._producer = AIOKafkaProducer(acks="all", **kafka)
                await self._producer.start()
            self._acted = ActedTopic(
                self.settings.acted_topic_name,
                kafka,
                self._producer,
                self.settings.replication_factor,
            )
            await self._acted.start(create=not self.dry_run)
            consumer = AIOKafkaConsumer(
                group_id=self.settings.act_group_name,
                enable_auto_commit=False,
                auto_offset_reset=self.settings.auto_offset_reset,
                **kafka,
            )
            await consumer.start()
            if self.dry_run:
                # No group join (a running act keeps its partitions); the group's committed
                # offsets still say where a real run would start.
                admin = AIOKafkaAdminClient(**kafka)
                await admin.start()
                try:
                    consumer.assign(await partitions_of(admin, names))
                finally:
                    await admin.close()
            else:
                consumer.subscribe(names)
            self._session = ClientSession()
            self.ready = True
            log.info(
                "driftline act %sreading %s (group %s); acted-id log %s holds %d keys",
                "(dry run) " if self.dry_run else "",
                ", ".join(names),
                self.settings.act_group_name,
                self.settings.acted_topic_name,
                len(self._acted.log),
            )
            running: dict[Any, asyncio.Task[None]] = {}
            try:
                while not self.stop.is_set():
                    batch = await consumer.getmany(timeout_ms=300)
                    assigned = consumer.assignment()
                    self.partitions = sorted(f"{tp.topic}:{tp.partition}" for tp in assigned)
                    for tp, task in list(running.items()):
                        if task.done():
                            del running[tp]
                            error = task.exception()
                            if error is not None and not isinstance(error, _Stopping):
                                raise error  # a bug in a step stops act, loudly
                            if tp in assigned:
                                consumer.resume(tp)
                    if not batch:
                        continue
                    await self._acted.catch_up()
                    for tp, records in batch.items():
                        if tp in running:
                            # Given back by a rebalance while its records are still being
                            # acted on: fetch these again once they are done.
                            consumer.seek(tp, records[0].offset)
                            consumer.pause(tp)
                            continue
                        # One task per partition: a step retrying for minutes holds up the
                        # later records of its own partition only (order kept per model).
                        consumer.pause(tp)
                        running[tp] = asyncio.create_task(self._partition(consumer, tp, records))
                    self.metrics.acted_ids.set(len(self._acted.log))
            finally:
                # Steps waiting to retry leave at once (_Stopping); requests in flight end
                # within their timeout; their records are read again at the next start.
                self.stop.set()
                for result in await asyncio.gather(*running.values(), return_exceptions=True):
                    if isinstance(result, BaseException) and not isinstance(result, _Stopping):
                        log.error("a partition's task failed", exc_info=result)
        finally:
            self.ready = False
            if self._session is not None:
                await self._session.close()
            if consumer is not None:
                await consumer.stop()
            if self._acted is not None:
                await self._acted.stop()
            if self._producer is not None:
                await self._producer.stop()
            await web.cleanup()

    async def _partition(self, consumer: Any, tp: Any, records: list[Any]) -> None:
        """A partition's fetched records, in order; each committed once all about it is
        durable."""
        from aiokafka.errors import CommitFailedError

        for record in records:
            await self.handle(record)
            if self.dry_run:
                continue
            try:
                await consumer.commit({tp: record.offset + 1})
            except CommitFailedError:
                # The partition moved to another act: it reads the record again and finds its
                # steps in the acted-id log.
                log.warning("commit of %s refused after a rebalance", tp)

    async def _serve(self) -> Any:
        from aiohttp import web

        async def metrics(request: web.Request) -> web.Response:
            body = generate_latest(self.registry)
            return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

        async def healthz(request: web.Request) -> web.Response:
            status = "ok" if self.ready else "starting"
            body = {
                "status": status,
                "dry_run": self.dry_run,
                "partitions": self.partitions,
                "acted_ids": len(self._acted.log) if self._acted else 0,
            }
            return web.json_response(body, status=200 if self.ready else 503)

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/healthz", healthz)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self.settings.web_host, self.settings.act_web_port).start()
        return runner

    # -- one record ----------------------------------------------------------------------------

    async def handle(self, record: Any) -> None:
        """Everything about one record, durable when this returns."""
        kind = "alerts" if record.topic == self.settings.topics.alerts else "commands"
        event = parse_record(record.value, kind, self.settings.limits)
        if isinstance(event, Refusal):
            await self._refuse(event, record, "none", outcome="invalid")
            return
        now_ms = int(self.clock() * 1000)
        self.metrics.last_event_age.set(max(0.0, (now_ms - event.time_ms) / 1000))
        decided = plan(event, self.config)
        if isinstance(decided, Refusal):
            await self._refuse(decided, record, "none", event=event)
            return
        moves = [
            (step, next_move(self._acted.log.get(step.key) if self._acted else None, _kind(step)))
            for step in decided.steps
        ]
        new = [step for step, move in moves if move in ("act", "recheck")]
        old = too_old(time_ms=event.time_ms, now_ms=now_ms, max_age_ms=self.config.max_age)
        if new and old is not None:
            for step in new:
                self.metrics.count(step.action, "too_old")
            await self._refuse(old, record, None, event=event)
            moves = [(step, move) for step, move in moves if step not in new]
        for step, move in moves:
            await self._step(step, move, event, record)

    async def _step(self, step: Step, move: str, event: Received, record: Any) -> None:
        if self.dry_run:
            self._print(
                id=event.id,
                type=event.event.type,
                model_id=event.model_id,
                action=step.action,
                would="nothing: acted on before" if move == "skip" else step.describe(),
                move=move,
            )
            self.metrics.count(step.action, "dry_run")
            return
        if move == "skip":
            log.info("%s %s of %s: acted on before, skipped", step.action, event.id, event.model_id)
            self.metrics.count(step.action, "duplicate")
            return
        if move == "unknown":
            await self._unknown(
                step,
                record,
                "act stopped between sending this event and recording the outcome: "
                "it may or may not have arrived, so it is not sent again",
            )
            return
        if isinstance(step, MlflowStep):
            await self._mlflow_step(step, move, event, record)
        else:
            await self._http_step(step, event, record)

    async def _mlflow_step(self, step: MlflowStep, move: str, event: Received, record: Any) -> None:
        assert self._mlflow is not None
        assert self._acted is not None
        registry = self._mlflow
        move_alias = step.to_version is not None
        recovered = move == "recheck"
        if step.to_version is None:
            before = None
        else:
            found: dict[str, str | None] = {}

            async def lookup() -> Attempt:
                result = await registry.alias_version(step)
                if isinstance(result, Attempt):
                    return result
                found["version"] = result
                return Attempt(Verdict.DONE)

            looked = await self._retrying(step, lookup)
            if looked.verdict is not Verdict.DONE:
                await self._failed(step, looked, record)
                return
            before = found["version"]
        if recovered:
            mark = self._acted.log.get(step.key)
            resolution = resolve_intent(
                before=mark.before if mark else None, current=before, target=step.to_version
            )
            if resolution == "unknown":
                await self._unknown(
                    step,
                    record,
                    f"act stopped between moving alias {step.alias!r} and recording it, and the "
                    f"alias has been moved to version {before} since: it is not moved again",
                )
                return
            # "finish": the alias is there already; only the (idempotent) tags are set again.
            move_alias = resolution == "act" and move_alias
            log.info(
                "%s %s of %s: intent found after a restart, alias at %s: %s",
                step.action,
                event.id,
                event.model_id,
                before,
                "finishing" if resolution == "finish" else "acting",
            )
        else:
            await self._acted.mark(
                "intent", event_id=event.id, action="mlflow", before=before, at_ms=self._now_ms()
            )
        result = await self._retrying(step, lambda: registry.apply(step, move_alias=move_alias))
        if result.verdict is Verdict.DONE:
            self._crash_point()
            await self._acted.mark("done", event_id=event.id, action="mlflow", at_ms=self._now_ms())
            self.metrics.count(step.action, "recovered" if recovered else "done")
            log.info("%s %s of %s: %s", step.action, event.id, event.model_id, result.detail)
        else:
            await self._failed(step, result, record)

    async def _http_step(self, step: HttpStep, event: Received, record: Any) -> None:
        assert self._acted is not None
        receiver = self._receivers[id(step.config)]
        session = self._session
        await self._acted.mark("intent", event_id=event.id, action="http", at_ms=self._now_ms())
        try:
            result = await self._retrying(step, lambda: receiver.send(session, event))
        except _Stopping as stopping:
            if not stopping.reached:
                # Stopped while retrying, and no attempt ever connected: nothing can have
                # arrived, so the intent is withdrawn and the next start sends it normally.
                await self._acted.withdraw(event_id=event.id, action="http")
            raise
        if result.verdict is Verdict.DONE:
            self._crash_point()
            await self._acted.mark("done", event_id=event.id, action="http", at_ms=self._now_ms())
            self.metrics.count(step.action, "done")
            log.info("%s %s of %s: %s", step.action, event.id, event.model_id, result.detail)
        else:
            await self._failed(step, result, record)

    async def _retrying(self, step: Step, attempt: Callable[[], Awaitable[Attempt]]) -> Attempt:
        """``attempt()`` until it is not worth retrying or the retry cap is reached."""
        started = time.monotonic()
        made = 0
        reached = False
        while True:
            made += 1
            result = await attempt()
            reached |= result.reached
            if result.verdict is not Verdict.RETRY:
                return result
            elapsed = time.monotonic() - started
            delay = self.backoff.next_delay_ms(made, elapsed * 1000, self.draw())
            if delay is None:
                return Attempt(
                    Verdict.RETRY,
                    f"{result.detail} (gave up after {made} attempts in {elapsed:.1f} s)",
                )
            log.warning(
                "%s: %s; attempt %d failed, next in %.1f s",
                step.action,
                result.detail,
                made,
                delay / 1000,
            )
            self.metrics.retries_in_flight.inc()
            try:
                await asyncio.wait_for(self.stop.wait(), delay / 1000)
            except TimeoutError:
                continue
            finally:
                self.metrics.retries_in_flight.dec()
            raise _Stopping(reached)

    # -- outcomes ------------------------------------------------------------------------------

    async def _failed(self, step: Step, result: Attempt, record: Any) -> None:
        assert self._acted is not None
        reason = "retries_exhausted" if result.verdict is Verdict.RETRY else "action_failed"
        await self._dead_letter(reason, result.detail, record, action=step.action)
        await self._acted.mark(
            "failed", event_id=step.event_id, action=_kind(step), at_ms=self._now_ms()
        )
        self.metrics.count(step.action, "failed")
        log.error("%s %s failed (%s): %s", step.action, step.event_id, reason, result.detail)

    async def _unknown(self, step: Step, record: Any, message: str) -> None:
        assert self._acted is not None
        await self._dead_letter("outcome_unknown", message, record, action=step.action)
        await self._acted.mark(
            "unknown", event_id=step.event_id, action=_kind(step), at_ms=self._now_ms()
        )
        self.metrics.count(step.action, "unknown")
        log.error("%s %s: outcome unknown: %s", step.action, step.event_id, message)

    async def _refuse(
        self,
        refusal: Refusal,
        record: Any,
        action: str | None,
        *,
        event: Received | None = None,
        outcome: str | None = None,
    ) -> None:
        if action is not None:
            self.metrics.count(action, outcome or refusal.reason)
        subject = f"{event.event.type} {event.id} of {event.model_id}" if event else "record"
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        if self.dry_run:
            self._print(id=event.id if event else None, refused=refusal.reason, why=refusal.message)
            return
        if refusal.reason in DEAD_LETTERED:
            log.warning(
                "%s at %s refused (%s): %s", subject, where, refusal.reason, refusal.message
            )
            await self._dead_letter(refusal.reason, refusal.message, record, cause=refusal.cause)
        else:
            log.info("%s at %s: %s", subject, where, refusal.message)

    async def _dead_letter(
        self,
        reason: str,
        message: str,
        record: Any,
        *,
        cause: str | None = None,
        action: str | None = None,
    ) -> None:
        letter = dead_letter(
            reason,
            message,
            key=record.key,
            value=record.value,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            cause=cause,
            action=action,
        )
        await self._producer.send_and_wait(
            self.settings.topics.deadletter, letter.value, key=letter.key, headers=letter.headers
        )
        self.metrics.deadletters.labels(reason).inc()

    # -- small things --------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _print(self, **fields: Any) -> None:
        print(json.dumps({"dry_run": True, **fields}), file=self.out, flush=True)

    def _crash_point(self) -> None:
        if self._fault == "kill_after_effect":
            os.kill(os.getpid(), signal.SIGKILL)


def _kind(step: Step) -> Any:
    return "mlflow" if isinstance(step, MlflowStep) else "http"


def run_act(config_path: Path | None, *, dry_run: bool = False, loglevel: str = "info") -> int:
    """``driftline act``; the exit code: 2 on a configuration error (told in one line)."""
    try:
        settings = Settings.from_env()
        path = config_path or settings.config_file
        if path is None:
            raise ConfigError(
                "driftline act needs the configuration file with an actions: section "
                "(--config FILE or DRIFTLINE_CONFIG_FILE)"
            )
        config = load_actions(path)
        if config.uses_mlflow and not dry_run and not mlflow_available():
            raise ConfigError(MLFLOW_MISSING)
        service = ActService(settings, config, dry_run=dry_run)
    except (ConfigError, SettingsError) as exc:
        print(f"driftline: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(logging, loglevel.upper(), logging.INFO),
        format="[%(asctime)s] %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    if not config.allow:
        log.warning("actions.allow is empty: every rollback will be refused")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, service.stop.set)
        await service.run()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0
