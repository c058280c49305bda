"""Helpers for tests of the live service: run ``driftline worker`` as users run it (a separate
process, configured by environment), produce records, read what comes out."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2

from schemas import Topics
from tests.conftest import free_port

HOUR = 3_600_000
#: What happens to an input event a worker reads (``driftline_events_total{outcome}``).
OUTCOMES = ("ok", "deadletter", "skipped", "rerouted")


def recent_t0() -> int:
    """Event time an hour ago: scenarios then run in the past, whatever their length."""
    return int(time.time() * 1000) - HOUR


def inputs(topics: Topics) -> list[str]:
    return [topics.predictions, topics.inputs, topics.labels]


def accounted(worker: WorkerProcess, topics: Topics) -> dict[str, float]:
    """Input events read by ``worker``, by outcome, over the three input topics."""
    out = dict.fromkeys(OUTCOMES, 0.0)
    for labels, value in worker.samples("driftline_events_total"):
        if labels.get("topic") in inputs(topics) and labels.get("outcome") in out:
            out[labels["outcome"]] += value
    return out


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<labels>.*)\})? (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


class WorkerProcess:
    """One ``driftline worker`` subprocess."""

    def __init__(
        self,
        bootstrap: str,
        topics: Topics,
        workdir: Path,
        *,
        app_id: str | None = None,
        config: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.workdir = workdir
        self.app_id = app_id or f"dl-{uuid.uuid4().hex[:10]}"
        self.port = free_port()
        self.config_path: Path | None = None
        if config is not None:
            self.config_path = workdir / f"{self.app_id}.yaml"
            self.config_path.write_text(config)
        self.extra_env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.app_id}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "DRIFTLINE_BOOTSTRAP_SERVERS": self.bootstrap,
                "DRIFTLINE_APP_ID": self.app_id,
                "DRIFTLINE_WEB_PORT": str(self.port),
                "DRIFTLINE_WEB_HOST": "127.0.0.1",
                "DRIFTLINE_PARTITIONS": "4",
                "DRIFTLINE_CHECKPOINT_INTERVAL": "1",
                "DRIFTLINE_TICK_INTERVAL": "0.2",
                "DRIFTLINE_DATA_DIR": str(self.workdir / "faust"),
                "DRIFTLINE_TOPIC_PREDICTIONS": self.topics.predictions,
                "DRIFTLINE_TOPIC_INPUTS": self.topics.inputs,
                "DRIFTLINE_TOPIC_LABELS": self.topics.labels,
                "DRIFTLINE_TOPIC_ALERTS": self.topics.alerts,
                "DRIFTLINE_TOPIC_COMMANDS": self.topics.commands,
                "DRIFTLINE_TOPIC_DEADLETTER": self.topics.deadletter,
            }
        )
        if self.config_path is not None:
            env["DRIFTLINE_CONFIG_FILE"] = str(self.config_path)
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "worker", "-l", "info"],
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.tail()}")
            health = self.health()
            if health and health.get("status") == "ok" and health.get("partitions"):
                return self
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready within {timeout}s:\n{self.tail()}")

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return orjson.loads(response.read())
        except OSError:
            return None

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            return response.read().decode()

    def samples(self, name: str, text: str | None = None) -> list[tuple[dict[str, str], float]]:
        """Every sample of one metric on /metrics (or in ``text``, one scrape of it), as
        (labels, value)."""
        out = []
        for line in (self.metrics() if text is None else text).splitlines():
            match = _SAMPLE.match(line)
            if match and match.group("name") == name:
                labels = dict(_LABEL.findall(match.group("labels") or ""))
                out.append((labels, float(match.group("value"))))
        return out

    def sample(self, name: str, text: str | None = None, **labels: str) -> float:
        """The value of the sample of ``name`` with these labels (0 when absent), on /metrics
        or in ``text``."""
        for have, value in self.samples(name, text):
            if all(have.get(k) == v for k, v in labels.items()):
                return value
        return 0.0

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 60.0, what: str = ""
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"worker died while waiting for {what}:\n{self.tail()}")
            time.sleep(0.25)
        raise TimeoutError(f"timed out waiting for {what}:\n{self.tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


async def produce(bootstrap: str, records: list[tuple[str, bytes]], topics: Topics) -> int:
    """Produce scenario records, keyed by model_id as the contract asks."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        for kind, payload in records:
            try:
                key = orjson.loads(payload)["model_id"].encode()
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
                key = b"unkeyed"
            await producer.send(getattr(topics, kind), payload, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    return len(records)


async def read_all(bootstrap: str, topic: str, settle: float = 1.0) -> list[Any]:
    """Every record on a topic so far (stops once nothing new arrived for ``settle`` s)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    out: list[Any] = []
    try:
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < settle:
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                out.extend(messages)
                quiet_since = time.monotonic()
    finally:
        await consumer.stop()
    return out


def cloudevents(records: list[Any]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records]


async def produce_fast(
    bootstrap: str, records: Iterable[tuple[Any, ...]], partitions: int = 4
) -> int:
    """Produce ``(topic, key, value)`` or ``(topic, key, value, timestamp_ms)`` records in whole
    batches per partition (Kafka's default partitioner on the key): ~10x faster than one
    ``send`` per record, for big backlogs."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, max_batch_size=1 << 20, max_request_size=4 << 20
    )
    await producer.start()
    batches: dict[tuple[str, int], Any] = {}
    in_flight: list[Any] = []
    count = 0
    try:
        for topic, key, value, *stamp in records:
            timestamp = stamp[0] if stamp else None
            partition = (murmur2(key) & 0x7FFFFFFF) % partitions
            batch = batches.get((topic, partition))
            if batch is None:
                batch = batches[(topic, partition)] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=timestamp) is None:  # full
                in_flight.append(await producer.send_batch(batch, topic, partition=partition))
                batch = batches[(topic, partition)] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=timestamp)
                if len(in_flight) > 32:
                    await asyncio.gather(*in_flight)
                    in_flight.clear()
            count += 1
        for (topic, partition), batch in batches.items():
            if batch.record_count():
                in_flight.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*in_flight)
    finally:
        await producer.stop()
    return count


async def group_offsets(bootstrap: str, group: str, names: list[str]) -> tuple[int, int]:
    """(offsets committed by ``group``, end offsets) summed over every partition of ``names``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = [
            TopicPartition(name, p)
            for name in names
            for p in sorted(consumer.partitions_for_topic(name) or ())
        ]
        if not parts:
            await consumer._client.force_metadata_update()
            parts = [
                TopicPartition(name, p)
                for name in names
                for p in sorted(consumer.partitions_for_topic(name) or ())
            ]
        committed = 0
        for tp in parts:
            committed += await consumer.committed(tp) or 0
        ends = await consumer.end_offsets(parts)
        return committed, sum(ends.values())
    finally:
        await consumer.stop()


async def wait_committed(bootstrap: str, group: str, names: list[str], within: float = 60.0) -> int:
    """Until the group committed up to the end of every partition (at most ``within``
    seconds); return the offsets' sum."""
    deadline = time.monotonic() + within
    while True:
        committed, end = await group_offsets(bootstrap, group, names)
        if committed == end:
            return committed
        if time.monotonic() > deadline:
            raise TimeoutError(f"group {group} committed {committed} of {end}")
        await asyncio.sleep(0.5)
