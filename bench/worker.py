"""The live worker against the raw Kafka consumer, on the real broker, in one run.

    python bench/worker.py                       # everything (about 15 minutes)
    python bench/worker.py --only throughput     # or: arrays, latency, memory, fleet, scaleout

Figures printed:

throughput  events/s of a raw ``AIOKafkaConsumer.getmany`` loop decoding each message with
            orjson (the ceiling), and of ``driftline worker`` (the real one, a separate process,
            a cold consumer group) on the same topic contents; and their ratio. Workload:
            prediction events of ~400 bytes (10 numeric features, 1 categorical) for 100
            models, labels for 30 % of them (bench/workload.py).
arrays      the same, with producers that publish JSON arrays of 100 events per message.
latency     p50 / p99 from an event's produce time to the alert or command it causes, at a
            steady offered load of 10k events/s (models whose new version is worse: rollback
            commands; models whose inputs shift: data drift alerts).
memory      worker RSS after warm-up and after 10M events (growth %).
fleet       RSS at 1,000 models x 20 features, per model; /metrics scrape time.
scaleout    two workers in one consumer group: partitions and models split, total events/s.

The broker is the project's own (``driftline kafka start`` machinery) on free ports unless
``DRIFTLINE_BOOTSTRAP_SERVERS`` is set.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workload import events as workload

from stream.kafka_broker import BrokerConfig, LocalKafka

PARTITIONS = 8
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode()


def metric_sum(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            head, _, value = line.rpartition(" ")
            if head.split("{")[0] == name:
                total += float(value)
    return total


class Topics:
    def __init__(self, prefix: str) -> None:
        self.predictions = f"{prefix}.model.predictions"
        self.inputs = f"{prefix}.model.inputs"
        self.labels = f"{prefix}.model.labels"
        self.alerts = f"{prefix}.monitor.alerts"
        self.commands = f"{prefix}.monitor.commands"
        self.deadletter = f"{prefix}.monitor.deadletter"

    def all(self) -> list[str]:
        return [
            self.predictions,
            self.inputs,
            self.labels,
            self.alerts,
            self.commands,
            self.deadletter,
        ]

    def env(self) -> dict[str, str]:
        return {f"DRIFTLINE_TOPIC_{k.upper()}": v for k, v in vars(self).items()}


async def create_topics(bootstrap: str, topics: Topics) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics.all()])
    finally:
        await admin.close()


async def produce_workload(
    bootstrap: str,
    topics: Topics,
    n: int,
    models: int,
    *,
    features: int = 10,
    array: int = 1,
    t0: int | None = None,
) -> int:
    """Produce ``n`` predictions (and their labels); return the number of events produced."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=20,
        max_batch_size=1 << 20,
        max_request_size=4 << 20,
    )
    await producer.start()
    sent = 0
    pending: dict[tuple[str, bytes], list[bytes]] = {}
    try:
        for kind, key, value in workload(n, models=models, features=features, t0=t0):
            topic = topics.predictions if kind == "predictions" else topics.labels
            sent += 1
            if array == 1:
                await producer.send(topic, value, key=key)
                continue
            bucket = pending.setdefault((topic, key), [])
            bucket.append(value)
            if len(bucket) == array:
                await producer.send(topic, b"[" + b",".join(bucket) + b"]", key=key)
                bucket.clear()
        for (topic, key), bucket in pending.items():
            if bucket:
                await producer.send(topic, b"[" + b",".join(bucket) + b"]", key=key)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def raw_consumer(bootstrap: str, topics: Topics, expected_messages: int) -> float:
    """The ceiling: getmany + orjson.loads of every message; events/s."""
    consumer = AIOKafkaConsumer(
        topics.predictions,
        topics.labels,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 << 20,
        fetch_max_bytes=64 << 20,
    )
    await consumer.start()
    events = messages = 0
    start = None
    try:
        while messages < expected_messages:
            batch = await consumer.getmany(timeout_ms=1000, max_records=20_000)
            for records in batch.values():
                if start is None:
                    start = time.perf_counter()
                for record in records:
                    decoded = orjson.loads(record.value)
                    events += len(decoded) if isinstance(decoded, list) else 1
                    messages += 1
        elapsed = time.perf_counter() - (start or time.perf_counter())
    finally:
        await consumer.stop()
    return events / elapsed


class Worker:
    def __init__(
        self,
        bootstrap: str,
        topics: Topics,
        workdir: Path,
        app_id: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        env = dict(os.environ)
        env.update(
            {
                "DRIFTLINE_BOOTSTRAP_SERVERS": bootstrap,
                "DRIFTLINE_APP_ID": app_id,
                "DRIFTLINE_WEB_PORT": str(self.port),
                "DRIFTLINE_WEB_HOST": "127.0.0.1",
                "DRIFTLINE_PARTITIONS": str(PARTITIONS),
                "DRIFTLINE_DATA_DIR": str(workdir / f"faust-{app_id}"),
                **topics.env(),
                **(extra or {}),
            }
        )
        self.log = (workdir / f"{app_id}-{self.port}.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "worker", "-l", "warn"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if "driftline_models" in scrape(self.url):
                    return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("worker did not start")

    def metrics(self) -> str:
        return scrape(self.url)

    def processed(self) -> float:
        text = self.metrics()
        return sum(
            metric_sum(text, "driftline_events_total", outcome=o)
            for o in ("ok", "deadletter", "rerouted", "skipped")
        )

    def rss(self) -> float:
        return metric_sum(self.metrics(), "process_resident_memory_bytes")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()


def wait_processed(worker: Worker, total: int, timeout: float = 3600) -> tuple[float, float]:
    """Poll until ``total`` events are processed; return (first, last) times of progress."""
    first = last = None
    seen = 0.0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = time.monotonic()
        seen = worker.processed()
        if seen > 0 and first is None:
            first = now
        if seen >= total:
            last = now
            break
        time.sleep(0.05)
    if last is None or first is None:
        raise TimeoutError(f"processed {seen:.0f} of {total}")
    return first, last


def throughput(bootstrap: str, workdir: Path, n: int, array: int = 1) -> None:
    topics = Topics(f"bench-{uuid.uuid4().hex[:6]}")
    asyncio.run(create_topics(bootstrap, topics))
    start = time.perf_counter()
    total = asyncio.run(produce_workload(bootstrap, topics, n, 100, array=array))
    messages = total if array == 1 else -(-total // array) + 200
    print(
        f"  produced {total:,} events ({n:,} predictions, 100 models"
        f"{f', arrays of {array}' if array > 1 else ''}) in {time.perf_counter() - start:.0f}s"
    )
    raw_messages = total if array == 1 else None
    raw = asyncio.run(raw_consumer(bootstrap, topics, raw_messages or _count(bootstrap, topics)))
    print(f"  raw AIOKafkaConsumer.getmany + orjson.loads:  {raw:>10,.0f} events/s")
    worker = Worker(bootstrap, topics, workdir, f"bench-{uuid.uuid4().hex[:6]}")
    try:
        first, last = wait_processed(worker, total)
        # The first progress is seen one poll after the worker starts processing.
        rate = total / max(1e-6, last - first)
        print(f"  driftline worker (cold consumer group):       {rate:>10,.0f} events/s")
        print(f"  ratio worker / raw:                           {rate / raw:>10.2f}")
        del messages
    finally:
        worker.stop()


def _count(bootstrap: str, topics: Topics) -> int:
    async def count() -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await consumer.start()
        try:
            from aiokafka import TopicPartition

            tps = [
                TopicPartition(t, p)
                for t in (topics.predictions, topics.labels)
                for p in range(PARTITIONS)
            ]
            ends = await consumer.end_offsets(tps)
            return sum(ends.values())
        finally:
            await consumer.stop()

    return asyncio.run(count())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        choices=["throughput", "arrays", "latency", "memory", "fleet", "scaleout"],
        action="append",
    )
    parser.add_argument(
        "--events",
        type=int,
        default=1_000_000,
        help="predictions for the throughput runs (default 1M)",
    )
    args = parser.parse_args()
    wanted = set(args.only or ["throughput", "arrays", "latency", "memory", "fleet", "scaleout"])
    workdir = Path(tempfile.mkdtemp(prefix="driftline-bench-"))
    broker = None
    bootstrap = os.environ.get("DRIFTLINE_BOOTSTRAP_SERVERS")
    print(
        f"driftline benchmark, {time.strftime('%Y-%m-%d')}, {platform.node()}: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
    )
    try:
        if not bootstrap:
            broker = LocalKafka(
                BrokerConfig(
                    port=free_port(), controller_port=free_port(), data_dir=workdir / "kafka"
                )
            )
            seconds = broker.start()
            bootstrap = broker.bootstrap_servers
            print(f"broker: Kafka (project's own) on {bootstrap}, started in {seconds:.1f}s")
        if "throughput" in wanted:
            print("\nthroughput")
            throughput(bootstrap, workdir, args.events)
        if "arrays" in wanted:
            print("\nthroughput, producers sending JSON arrays of 100 events")
            throughput(bootstrap, workdir, args.events, array=100)
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
