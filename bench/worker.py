"""The live worker against the raw Kafka consumer, on the real broker, in one run.

    python bench/worker.py                       # everything (about 20 minutes)
    python bench/worker.py --only throughput     # or: arrays, latency, memory, fleet, scaleout
    python bench/worker.py --scale 0.02          # every size x 0.02: a smoke run

Figures printed:

throughput  events/s of a raw ``AIOKafkaConsumer.getmany`` loop decoding each message with
            orjson (the ceiling), of the script a user would write instead (the same loop plus
            river's ``ADWIN`` per numeric feature and ``PageHinkley`` on the score, per model),
            and of ``driftline worker`` (the real one, a separate process, a cold consumer
            group) on the same topic contents; and their ratios. Then the worker once more with
            every model at ``sample: 0.1`` (what a hot model's sample buys on a live worker).
            Workload: prediction events of ~400 bytes (10 numeric features, 1 categorical) for 100
            models, labels for 30 % of them (bench/workload.py); 1M predictions.
arrays      the same, with producers that publish JSON arrays of 100 events per message.
latency     p50 / p99 from an event's produce time to the alert or command it causes, at a
            steady offered load of 10k events/s: models whose inputs shift (data drift alerts)
            and models whose new version is worse (rollback commands). The CloudEvent's
            ``time`` is the causing event's timestamp, which the producer sets to its clock.
memory      worker RSS after warm-up and after 10M events, and the growth. Warm-up is 3M events:
            by then every bounded store is full (the 1M waiting predictions fill at ~2M).
fleet       RSS at 1,000 models x 20 features, per model; /metrics scrape time and size, read
            by this script and by a real Prometheus (its ``scrape_duration_seconds``); the
            status page and its API's response times (``--ui-cost``: the fleet again with the
            page off, and the difference in RSS).
scaleout    two workers in one consumer group: partitions and models split, total events/s.

``--baseline REF`` also runs the worker of git revision ``REF`` (checked out in a temporary
worktree) in the throughput and latency sections, on the same topic contents and load, and
prints its figures next to this checkout's: a before/after in one run, on one machine.
``--rounds N`` measures both workers' throughput N times each, alternated, and compares medians.

``--profile`` (with ``py-spy`` installed: ``pip install -e '.[bench]'``) samples the worker of
the throughput section for 10 s at full speed and prints where its time goes: the share of the
Kafka client, decoding and the monitoring core, and the functions with the most samples.

The broker is the project's own (``driftline kafka start`` machinery) on free ports unless
``DRIFTLINE_BOOTSTRAP_SERVERS`` is set. RSS is the worker's own ``process_resident_memory_bytes``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workload import COUNTRIES
from workload import events as workload

from schemas import Topics
from stream.harness import (
    PrometheusServer,
    Scrape,
    WorkerProcess,
    create_topics,
    free_port,
    prefixed_topics,
)
from stream.kafka_broker import BrokerConfig, LocalKafka

PARTITIONS = 8
LAST_SCRAPE = re.compile(r"^driftline_last_scrape_duration_seconds (\S+)$", re.MULTILINE)
SECTIONS = ["throughput", "arrays", "latency", "memory", "fleet", "scaleout"]


def new_topics(bootstrap: str, append_time: bool = False) -> Topics:
    """Six fresh topics; with ``append_time`` the outputs are stamped by the broker when
    appended to the log, so a record's timestamp says when the alert or command became
    readable."""
    topics = prefixed_topics(f"bench-{uuid.uuid4().hex[:6]}")
    config = {"message.timestamp.type": "LogAppendTime"} if append_time else {}
    configs = {topics.alerts: config, topics.commands: config}
    asyncio.run(create_topics(bootstrap, topics.all(), PARTITIONS, configs))
    return topics


# -- producing -------------------------------------------------------------------------------


async def produce(
    bootstrap: str, topics: Topics, records: Iterable[tuple[str, bytes, bytes]]
) -> int:
    """Produce ``(kind, key, value)`` records fast (batches per partition, Kafka's default
    partitioner); return how many."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, max_batch_size=1 << 20, max_request_size=4 << 20
    )
    await producer.start()
    batches: dict[tuple[str, int], object] = {}
    in_flight: list[asyncio.Future] = []
    count = 0
    try:
        for kind, key, value in records:
            topic = topics.predictions if kind == "predictions" else topics.labels
            partition = (murmur2(key) & 0x7FFFFFFF) % PARTITIONS
            batch = batches.get((topic, partition))
            if batch is None:
                batch = batches[(topic, partition)] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:  # type: ignore[attr-defined]
                in_flight.append(await producer.send_batch(batch, topic, partition=partition))
                batch = batches[(topic, partition)] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)  # type: ignore[attr-defined]
                if len(in_flight) > 64:
                    await asyncio.gather(*in_flight)
                    in_flight.clear()
            count += 1
        for (topic, partition), batch in batches.items():
            if batch.record_count():  # type: ignore[attr-defined]
                in_flight.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*in_flight)
    finally:
        await producer.stop()
    return count


def as_arrays(
    records: Iterable[tuple[str, bytes, bytes]], size: int
) -> Iterator[tuple[str, bytes, bytes]]:
    """The same events, ``size`` per message as a JSON array (per topic and key)."""
    pending: dict[tuple[str, bytes], list[bytes]] = {}
    for kind, key, value in records:
        bucket = pending.setdefault((kind, key), [])
        bucket.append(value)
        if len(bucket) == size:
            yield kind, key, b"[" + b",".join(bucket) + b"]"
            bucket.clear()
    for (kind, key), bucket in pending.items():
        if bucket:
            yield kind, key, b"[" + b",".join(bucket) + b"]"


class Counted:
    """Counts events passing through (arrays count their elements)."""

    def __init__(self, records: Iterable[tuple[str, bytes, bytes]]) -> None:
        self.records = records
        self.events = 0

    def __iter__(self) -> Iterator[tuple[str, bytes, bytes]]:
        for record in self.records:
            self.events += 1
            yield record


# -- consuming -------------------------------------------------------------------------------


def _input_consumer(bootstrap: str, topics: Topics, group: str) -> AIOKafkaConsumer:
    """A consumer of the input topics from the start, in a fresh group named after ``group``."""
    return AIOKafkaConsumer(
        topics.predictions,
        topics.labels,
        bootstrap_servers=bootstrap,
        group_id=f"{group}-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 << 20,
        fetch_max_bytes=64 << 20,
    )


async def raw_consumer(bootstrap: str, topics: Topics, expected_events: int) -> float:
    """The ceiling: getmany + orjson.loads of every message; events/s."""
    consumer = _input_consumer(bootstrap, topics, "raw")
    await consumer.start()
    events = 0
    start = None
    try:
        while events < expected_events:
            batch = await consumer.getmany(timeout_ms=1000, max_records=20_000)
            for records in batch.values():
                if start is None:
                    start = time.perf_counter()
                for record in records:
                    decoded = orjson.loads(record.value)
                    events += len(decoded) if isinstance(decoded, list) else 1
        elapsed = time.perf_counter() - (start or time.perf_counter())
    finally:
        await consumer.stop()
    return events / elapsed


async def naive_consumer(bootstrap: str, topics: Topics, expected_events: int) -> float:
    """What a user would write instead of driftline: the raw loop plus, per model, river's
    ``ADWIN`` on each numeric feature and ``PageHinkley`` on the score; events/s. (No
    validation, join, metrics, quality, stalls, state, checkpoints or dead letters.)"""
    from river import drift

    consumer = _input_consumer(bootstrap, topics, "naive")
    await consumer.start()
    features: dict[tuple[str, str], drift.ADWIN] = {}
    scores: dict[str, drift.PageHinkley] = {}
    drifts = events = 0
    start = None
    try:
        while events < expected_events:
            batch = await consumer.getmany(timeout_ms=1000, max_records=20_000)
            for records in batch.values():
                if start is None:
                    start = time.perf_counter()
                for record in records:
                    decoded = orjson.loads(record.value)
                    for event in decoded if isinstance(decoded, list) else (decoded,):
                        events += 1
                        if "prediction" not in event:
                            continue  # a label
                        model = event["model_id"]
                        for name, value in (event.get("features") or {}).items():
                            if type(value) is float or type(value) is int:
                                detector = features.get((model, name))
                                if detector is None:
                                    detector = features[(model, name)] = drift.ADWIN()
                                detector.update(value)
                                drifts += detector.drift_detected
                        score = event.get("score")
                        if type(score) is float:
                            detector = scores.get(model)
                            if detector is None:
                                detector = scores[model] = drift.PageHinkley()
                            detector.update(score)
                            drifts += detector.drift_detected
        elapsed = time.perf_counter() - (start or time.perf_counter())
    finally:
        await consumer.stop()
    return events / elapsed


class Worker(WorkerProcess):
    """``driftline worker`` as the benchmark runs it: eight partitions, warnings only,
    launched at once (``code``: a checkout whose packages to run instead of this one)."""

    #: The interpreter every worker runs with (``--worker-python``); this one's by default.
    interpreter: str | None = None

    def __init__(
        self,
        bootstrap: str,
        topics: Topics,
        workdir: Path,
        app_id: str,
        extra: dict[str, str] | None = None,
        code: Path | None = None,
        config: str | None = None,
    ) -> None:
        super().__init__(
            bootstrap,
            topics,
            workdir,
            app_id=app_id,
            env=extra,
            config=config,
            partitions=PARTITIONS,
            log_level="warn",
            code=code,
            python=self.interpreter,
        )
        self.launch()

    def wait_started(self, timeout: float = 90) -> Worker:
        self.wait_for(self.serving, timeout, "the worker to serve /metrics")
        return self

    def processed(self, text: str | None = None) -> float:
        scrape = self.scrape(text)
        return sum(
            scrape.total("driftline_events_total", outcome=o)
            for o in ("ok", "deadletter", "skipped")
        )

    def applied(self, text: str | None = None) -> float:
        """Events applied (``ok``): after a hand-over, the skipped re-reads are not counted."""
        return self.scrape(text).total("driftline_events_total", outcome="ok")

    def rss(self, text: str | None = None) -> float:
        return self.scrape(text).total("process_resident_memory_bytes")


def wait_processed(
    workers: list[Worker], total: int, timeout: float = 3600, every: float = 0.1
) -> tuple[float, float]:
    """Poll until the workers processed ``total`` events; return (first, last) progress times."""
    first = last = None
    seen = 0.0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = time.monotonic()
        seen = sum(w.processed() for w in workers)
        if seen > 0 and first is None:
            first = now
        if seen >= total:
            last = now
            break
        time.sleep(every)
    if last is None or first is None:
        raise TimeoutError(f"processed {seen:.0f} of {total}")
    return first, last


def mib(value: float) -> str:
    return f"{value / 2**20:,.0f} MiB"


# -- sections --------------------------------------------------------------------------------


def _frame(frame: str) -> str:
    """py-spy's ``function (path:line)`` as ``function (last/two.py)``."""
    function, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{function} ({'/'.join(Path(path).parts[-2:])})"


# Where a sample's time goes: the first of these found on its stack names its share.
_SHARES = (
    ("monitoring core (detectors/)", "Monitor.process"),
    ("decode and validate (schemas/)", "EventDecoder.decode"),
    ("Kafka client (aiokafka: socket reads, fetch parsing)", "aiokafka/"),
)


def profile_summary(raw: str, top: int = 25) -> str:
    """A py-spy ``--format raw`` profile: shares, then the functions with most samples."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    shares: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_frame(f) for f in stack.split(";")]
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
        share = next((name for name, marker in _SHARES if marker in stack), "other")
        shares[share] += samples
    if not total:
        return "  (no samples)"
    lines = [f"  {total:,} samples; share of the worker's time:"]
    for name, _ in (*_SHARES, ("other", "")):
        lines.append(f"    {100 * shares[name] / total:5.1f} %  {name}")
    lines.append("  functions by share of samples, with callees / own (the event loop's left out):")
    below_loop = [(f, n) for f, n in inclusive.most_common() if n < 0.95 * total][:top]
    for frame, samples in below_loop:
        lines.append(
            f"    {100 * samples / total:5.1f} / {100 * own[frame] / total:4.1f} %  {frame}"
        )
    return "\n".join(lines)


def profile_worker(worker: Worker, seconds: float = 10.0) -> None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("  --profile: py-spy is not installed (pip install -e '.[bench]')")
        return
    out = worker.log_path.with_suffix(".profile")
    result = subprocess.run(
        [
            spy,
            "record",
            "--pid",
            str(worker.process.pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not out.exists():
        print(f"  --profile: py-spy failed: {result.stderr.strip()[-300:]}")
        return
    print(f"  profile of the worker at full speed (py-spy, {seconds:.0f} s):")
    print(profile_summary(out.read_text()))


def throughput(
    bootstrap: str,
    workdir: Path,
    n: int,
    array: int = 1,
    profile: bool = False,
    baseline: tuple[str, Path] | None = None,
    rounds: int = 1,
    sampled: bool = False,
) -> float:
    topics = new_topics(bootstrap)
    start = time.perf_counter()
    counted = Counted(workload(n, models=100))
    records = counted if array == 1 else as_arrays(counted, array)
    messages = asyncio.run(produce(bootstrap, topics, records))
    total = counted.events
    print(
        f"  produced {total:,} events ({n:,} predictions, 100 models) in {messages:,} "
        f"messages in {time.perf_counter() - start:.0f}s"
    )
    if profile:  # sampled while it works through the backlog; its rate is not measured
        worker = Worker(bootstrap, topics, workdir, new_app_id()).wait_started()
        try:
            while worker.processed() < total * 0.1:
                time.sleep(0.05)
            profile_worker(worker)
            wait_processed([worker], total)
        finally:
            worker.stop()
        return float("nan")
    raw = asyncio.run(raw_consumer(bootstrap, topics, total))
    print(f"  raw AIOKafkaConsumer.getmany + orjson.loads   {raw:>10,.0f} events/s")
    naive = asyncio.run(naive_consumer(bootstrap, topics, total))
    print(f"  the same + river ADWIN / PageHinkley (naive)  {naive:>10,.0f} events/s")
    print(f"  ratio naive / raw                             {naive / raw:>10.2f}")
    if baseline is None:
        rate = worker_rate(Worker(bootstrap, topics, workdir, new_app_id()), total)
        print(f"  driftline worker (cold consumer group)        {rate:>10,.0f} events/s")
        print(f"  ratio worker / raw                            {rate / raw:>10.2f}")
        print(f"  ratio worker / naive                          {rate / naive:>10.2f}")
        if sampled:
            sampled_rate(bootstrap, topics, workdir, total, rate)
        return rate
    name, code = baseline
    befores, rates = [], []
    # Alternated (before, now, now, before, ...): a drift of the machine's speed over the run
    # falls on both alike.
    for round_ in range(rounds):
        order = [True, False] if round_ % 2 == 0 else [False, True]
        for is_before in order:
            if is_before:
                got = worker_rate(
                    Worker(bootstrap, topics, workdir, new_app_id(), code=code), total
                )
                befores.append(got)
                print(f"  driftline worker at {name}".ljust(46) + f"{got:>10,.0f} events/s")
            else:
                got = worker_rate(Worker(bootstrap, topics, workdir, new_app_id()), total)
                rates.append(got)
                print(
                    "  driftline worker (cold consumer group)".ljust(46) + f"{got:>10,.0f} events/s"
                )
    before, rate = statistics.median(befores), statistics.median(rates)
    print(f"  median of {rounds}: worker at {name} / raw".ljust(46) + f"{before / raw:>10.2f}")
    print(f"  median of {rounds}: worker / raw".ljust(46) + f"{rate / raw:>10.2f}")
    print(f"  median of {rounds}: worker at {name} / naive".ljust(46) + f"{before / naive:>10.2f}")
    print(f"  median of {rounds}: worker / naive".ljust(46) + f"{rate / naive:>10.2f}")
    print(f"  ratio worker / worker at {name}".ljust(46) + f"{rate / before:>10.2f}")
    if sampled:
        sampled_rate(bootstrap, topics, workdir, total, rate)
    return rate


def sampled_rate(bootstrap: str, topics: Topics, workdir: Path, total: int, full: float) -> None:
    """The worker again with every model at ``sample: 0.1``: what a hot model's sample buys
    on a live worker (every event is still read, decoded and hashed)."""
    config = "defaults:\n  sample: 0.1\n"
    rate = worker_rate(Worker(bootstrap, topics, workdir, new_app_id(), config=config), total)
    print("  driftline worker, every model at sample: 0.1".ljust(46) + f"{rate:>10,.0f} events/s")
    print("  ratio sampled worker / worker".ljust(46) + f"{rate / full:>10.2f}")


def new_app_id() -> str:
    return f"bench-{uuid.uuid4().hex[:6]}"


def worker_rate(worker: Worker, total: int) -> float:
    """Events/s of a worker (a cold consumer group) through a backlog of ``total`` events."""
    worker.wait_started()
    try:
        first, last = wait_processed([worker], total)
    finally:
        worker.stop()
    if last - first < 1.0:
        # Progress is first seen one poll (0.1 s) after it starts: too coarse for a rate.
        print(f"  driftline worker: all {total:,} events in under 1 s, too few to measure")
        return float("nan")
    # The rate is slightly high by at most one poll interval (0.1 s) over the run.
    return total / (last - first)


# Latency scenario: 100 models at a steady total of 10k events/s (predictions and labels).
SHIFTED = range(0, 40)  # inputs f0..f4 shift by 1.5 sd: data drift alerts
ROLLED_OUT = range(40, 80)  # a new version with 4x the error rate: rollback commands
WARM_UP_S = 30.0  # references complete, first version has its outcomes
STAGGER_S = 0.5  # incident k starts at WARM_UP_S + k * STAGGER_S


class LatencyFleet:
    """The scenario's events, due at ``tick(now_ms, due)``; the sender stamps each one with its
    clock just before handing it to the producer (its produce time)."""

    def __init__(self, models: int, rate: float, start_ms: int, seed: int = 3) -> None:
        self.rng = random.Random(seed)
        self.models = models
        self.start_ms = start_ms
        label_share = [1.0 if m in ROLLED_OUT else 0.3 for m in range(models)]
        # Predictions per second such that predictions plus labels make ``rate``.
        self.prediction_rate = rate / (1 + sum(label_share) / models)
        self.label_share = label_share
        self.labels: deque[tuple[int, bytes, dict]] = deque()  # (due ms, key, label)
        self.sent = 0  # events: predictions and labels
        self.predicted = 0

    def incident_at(self, model: int, group: range) -> float:
        return self.start_ms + (WARM_UP_S + (model - group.start) * STAGGER_S) * 1000

    def tick(self, now_ms: int, due: int) -> list[tuple[str, bytes, dict]]:
        out: list[tuple[str, bytes, dict]] = []
        rng = self.rng
        while self.predicted < due:
            m = self.predicted % self.models
            self.predicted += 1
            model = f"model-{m:03d}"
            values: dict[str, float | str] = {f"f{j}": rng.gauss(j, 1 + j / 5) for j in range(10)}
            version, error_rate = "1", 0.1
            if m in SHIFTED and now_ms >= self.incident_at(m, SHIFTED):
                for j in range(5):
                    values[f"f{j}"] += 1.5 * (1 + j / 5)  # type: ignore[operator]
            if m in ROLLED_OUT and now_ms >= self.incident_at(m, ROLLED_OUT):
                version, error_rate = "2", 0.4
            values["country"] = COUNTRIES[int(rng.random() ** 2 * len(COUNTRIES))]
            truth = rng.random() < 0.3
            prediction = truth if rng.random() >= error_rate else not truth
            pid = f"{self.predicted:010d}"
            event = {
                "model_id": model,
                "model_version": version,
                "prediction_id": pid,
                "prediction": prediction,
                "score": rng.random(),
                "features": values,
            }
            out.append(("predictions", model.encode(), event))
            if rng.random() < self.label_share[m]:
                label = {"model_id": model, "prediction_id": pid, "label": truth}
                self.labels.append((now_ms + 200, model.encode(), label))
        while self.labels and self.labels[0][0] <= now_ms:
            _, key, label = self.labels.popleft()
            out.append(("labels", key, label))
        self.sent += len(out)
        return out


async def _latency_run(bootstrap: str, topics: Topics, rate: float, seconds: float) -> dict:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=5
    )
    await consumer.start()
    parts = [
        TopicPartition(t, p) for t in (topics.alerts, topics.commands) for p in range(PARTITIONS)
    ]
    consumer.assign(parts)
    await consumer.seek_to_end(*parts)
    received: list[tuple[str, float, float]] = []
    stop = asyncio.Event()

    async def listen() -> None:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=50)
            now = time.time()
            for records in batch.values():
                for record in records:
                    event = orjson.loads(record.value)
                    at = datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()
                    kind = event["type"].rsplit(".", 1)[-1]
                    if event["data"].get("status", "firing") == "firing":
                        # record.timestamp: when the broker appended it (LogAppendTime)
                        received.append((kind, (now - at) * 1000, record.timestamp - at * 1000))

    listener = asyncio.create_task(listen())
    # Batches of up to 1 MiB: with the 16 KiB default, aiokafka (one batch in flight per
    # partition) makes send() wait ~100 ms at this rate, which would count as our latency.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, max_batch_size=1 << 20)
    await producer.start()
    start = time.time()
    fleet = LatencyFleet(100, rate, int(start * 1000))
    behind = 0.0
    try:
        while (elapsed := time.time() - start) < seconds:
            now_ms = int(time.time() * 1000)
            for kind, key, event in fleet.tick(now_ms, int(elapsed * fleet.prediction_rate)):
                topic = topics.predictions if kind == "predictions" else topics.labels
                event["timestamp"] = int(time.time() * 1000)  # its produce time
                await producer.send(topic, orjson.dumps(event), key=key)
            behind = max(behind, time.time() - start - elapsed)
            await asyncio.sleep(0.005)
        await producer.flush()
        await asyncio.sleep(3)  # the last alerts
    finally:
        stop.set()
        await listener
        await producer.stop()
        await consumer.stop()
    return {"received": received, "sent": fleet.sent, "seconds": time.time() - start}


def latency(
    bootstrap: str, workdir: Path, seconds: float, baseline: tuple[str, Path] | None = None
) -> None:
    if baseline is not None:
        print(f"  the worker at {baseline[0]}:")
        latency_of(bootstrap, workdir, seconds, code=baseline[1])
        print("  this checkout's worker:")
    latency_of(bootstrap, workdir, seconds)


def latency_of(bootstrap: str, workdir: Path, seconds: float, code: Path | None = None) -> None:
    topics = new_topics(bootstrap, append_time=True)
    worker = Worker(bootstrap, topics, workdir, new_app_id(), code=code).wait_started()
    try:
        # Let the worker join its group and own every partition before the clock starts.
        time.sleep(5)
        result = asyncio.run(_latency_run(bootstrap, topics, 10_000, seconds))
        processed = worker.processed()
    finally:
        worker.stop()
    print(
        f"  offered {result['sent'] / (result['seconds'] - 3):,.0f} events/s for "
        f"{result['seconds'] - 3:.0f}s ({result['sent']:,} events, {processed:,.0f} processed)"
    )
    by_kind: dict[str, list[tuple[float, float]]] = {}
    for kind, total, in_worker in result["received"]:
        if not kind.endswith("_stall"):  # timer-driven, not caused by an event
            by_kind.setdefault(kind, []).append((total, in_worker))
    everything = [pair for pairs in by_kind.values() for pair in pairs]
    print("                                  event produced -> alert or command")
    print("                                in the log (readable)    read by a consumer")
    for name, pairs in [*sorted(by_kind.items()), ("all alerts and commands", everything)]:
        if not pairs:
            continue
        logged = sorted(in_log for _, in_log in pairs)
        read = sorted(total for total, _ in pairs)
        print(
            f"  {name:<24} n={len(pairs):>4}  p50 {percentile(logged, 50):>4.0f} ms"
            f"  p99 {percentile(logged, 99):>4.0f} ms    p50 {percentile(read, 50):>4.0f} ms"
            f"  p99 {percentile(read, 99):>4.0f} ms"
        )


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def memory(bootstrap: str, workdir: Path, total: int, warm_up: int) -> None:
    topics = new_topics(bootstrap)
    worker = Worker(bootstrap, topics, workdir, new_app_id()).wait_started()
    samples: list[tuple[float, float]] = []
    try:
        # Event time runs 100 ms per prediction: 10M events span ~12 days, so predictions
        # without labels expire (7-day TTL) as well as being evicted by the pending cap.
        predictions = int(total / 1.3)
        counted = Counted(workload(predictions, models=100, step_ms=100))
        producing = in_thread(lambda: asyncio.run(produce(bootstrap, topics, counted)))
        at_warm_up = None
        while True:
            text = worker.metrics()
            done, rss = worker.processed(text), worker.rss(text)
            samples.append((done, rss))
            if at_warm_up is None and done >= warm_up:
                at_warm_up = (done, rss)
            if not producing.is_alive() and done >= counted.events:
                break
            time.sleep(1)
        producing.join()
    finally:
        worker.stop()
    end_done, end_rss = samples[-1]
    if at_warm_up is None:
        raise RuntimeError("never warmed up")
    start = at_warm_up[0]
    after = [(done, rss) for done, rss in samples if done >= start]
    peak = max(rss for _, rss in after)
    print(f"  RSS after warm-up ({start:>12,.0f} events)  {mib(at_warm_up[1]):>10}")
    print(f"  RSS at the end    ({end_done:>12,.0f} events)  {mib(end_rss):>10}")
    print(f"  peak RSS after warm-up                       {mib(peak):>10}")
    # One sample swings by tens of MiB with the checkpoint rounds (every 30 s, each changed
    # model's state serialised and produced): the trend is the median of a window, a seventh of
    # the run after warm-up (1M events at full size), at its start and at its end.
    window = (end_done - start) / 7

    def median_near(mark: float) -> float:
        """Median RSS of the samples within half a window of ``mark`` (else the nearest)."""
        near = [rss for done, rss in after if abs(done - mark) <= window / 2]
        return statistics.median(near or [min(after, key=lambda s: abs(s[0] - mark))[1]])

    first = median_near(start + window / 2)
    last = median_near(end_done - window / 2)
    curve = [median_near(start + k * window) for k in range(8)]
    medians = " ".join(f"{value / 2**20:,.0f}" for value in curve)
    print(f"  RSS medians along the run (MiB)              {medians}")
    trend = 100 * (last / first - 1)
    single = 100 * (end_rss / at_warm_up[1] - 1)
    print(f"  growth after warm-up, medians of windows     {trend:>9.1f} %")
    print(f"  growth after warm-up, single samples         {single:>9.1f} %")


def in_thread(target: Callable[[], object]) -> threading.Thread:
    """Run ``target`` in a thread (the producer) while the main thread samples the worker."""
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def fleet(
    bootstrap: str, workdir: Path, models: int, per_model: int, features: int, web_ui: bool = True
) -> float:
    """The fleet's figures; return its RSS (median)."""
    topics = new_topics(bootstrap)
    worker = Worker(
        bootstrap,
        topics,
        workdir,
        f"bench-{uuid.uuid4().hex[:6]}",
        extra={
            "DRIFTLINE_MAX_MODELS": str(max(1000, models)),
            "DRIFTLINE_WEB_UI": "1" if web_ui else "0",
            # (A point every second: the history's sampling runs as often as it can.)
            "DRIFTLINE_HISTORY_STEP": "2",
        },
    ).wait_started()
    try:
        idle = worker.rss()
        start = time.perf_counter()
        counted = Counted(workload(models * per_model, models=models, features=features))
        asyncio.run(produce(bootstrap, topics, counted))
        print(
            f"  produced {counted.events:,} events ({per_model:,} predictions per model, "
            f"{features} numeric features + 1 categorical) in {time.perf_counter() - start:.0f}s"
        )
        # Consumed while produced: the rate is the producer's, so it is not printed.
        wait_processed([worker], counted.events, every=1.0)
        text = worker.metrics()
        tracked = Scrape(text).total("driftline_models")
        # Over one checkpoint interval (30 s): a round serialises every changed model's state,
        # so one sample may land on its transient or not; the median is the resident figure.
        rss_samples = []
        for _ in range(31):
            rss_samples.append(worker.rss())
            time.sleep(1)
        rss, peak = statistics.median(rss_samples), max(rss_samples)
        print(f"  models tracked                               {tracked:>10,.0f}")
        print(f"  RSS idle / with the fleet (median of 30 s)   {mib(idle):>10} / {mib(rss)}")
        print(f"  RSS with the fleet, highest of those samples {mib(peak):>10}")
        per_model = (rss - idle) / tracked / 1024
        print(f"  per model                                    {per_model:>7,.0f} KiB")
        times, served = [], []
        for _ in range(21):
            t = time.perf_counter()
            body = worker.metrics()
            times.append((time.perf_counter() - t) * 1000)
            # (what serving the scrape before this one took, timed inside the worker)
            served.append(float(LAST_SCRAPE.search(body).group(1)))  # type: ignore[union-attr]
        times, served = times[1:], served[1:]
        series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
        print(
            f"  /metrics scrape: {series:,} series, {len(body) / 1e6:.1f} MB, "
            f"median {statistics.median(times):.0f} ms, max {max(times):.0f} ms (20 scrapes, "
            "request to last byte, read by this script)"
        )
        print(
            f"  the same scrapes as the worker served them: median "
            f"{1000 * statistics.median(served):.0f} ms, max {1000 * max(served):.0f} ms "
            "(driftline_last_scrape_duration_seconds)"
        )
        prometheus_scrapes(worker, workdir)
        if web_ui:
            one = sorted(worker.get_json("/api/models")["models"], key=lambda m: m["model_id"])
            for path in ("/", "/api/models", f"/api/models/{one[0]['model_id']}"):
                times = []
                for _ in range(20):
                    t = time.perf_counter()
                    size = len(worker._get(path, timeout=30))
                    times.append((time.perf_counter() - t) * 1000)
                print(
                    f"  GET {path:<28} {size / 1e6:5.2f} MB, median "
                    f"{statistics.median(times):.0f} ms, max {max(times):.0f} ms (20 requests)"
                )
        return rss
    finally:
        worker.stop()


def prometheus_scrapes(worker: Worker, workdir: Path, interval: float = 2.0, n: int = 20) -> None:
    """The scrape as a real Prometheus reports it, over ``n`` scrapes ``interval`` seconds
    apart: its ``scrape_duration_seconds`` runs from the request to the samples parsed and
    appended to its storage, so on a shared machine it holds Prometheus's own work too."""
    if shutil.which("prometheus") is None:
        print("  (no prometheus binary: Debian package prometheus; its scrape figure skipped)")
        return
    where = workdir / f"prometheus-{worker.port}"
    where.mkdir()
    prometheus = PrometheusServer(where, f"127.0.0.1:{worker.port}", interval=f"{interval:g}s")
    try:
        window = f"{int(n * interval)}s"

        def figure(expr: str) -> float | None:
            result = prometheus.query(expr)
            return float(result[0]["value"][1]) if result else None

        prometheus.wait(
            f"{n} scrapes",
            lambda: (figure(f"count_over_time(scrape_duration_seconds[{window}])") or 0) >= n,
            timeout=n * interval + 60,
        )
        median, top = (
            figure(f"quantile_over_time({q}, scrape_duration_seconds[{window}]) * 1000")
            for q in (0.5, 1)
        )
        print(
            f"  /metrics as Prometheus scrapes it: median {median:.0f} ms, max {top:.0f} ms "
            f"({n} scrapes, every {interval:g} s; its scrape_duration_seconds, which includes "
            "Prometheus's own parsing and storing of every series)"
        )
    finally:
        prometheus.stop()


def scaleout(bootstrap: str, workdir: Path, n: int, single: float | None) -> None:
    topics = new_topics(bootstrap)
    counted = Counted(workload(n, models=100))
    asyncio.run(produce(bootstrap, topics, counted))
    app_id = f"bench-{uuid.uuid4().hex[:6]}"
    workers = [Worker(bootstrap, topics, workdir, app_id) for _ in range(2)]
    try:
        for worker in workers:
            worker.wait_started()
        # The first worker to join takes every partition until the second one's join moves
        # half of them: the total rate is measured from the moment both own a share.
        split_at = split_done = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            owned = [set(w.health()["partitions"]) for w in workers]
            done = sum(w.applied() for w in workers)
            if split_at is None and all(owned) and not owned[0] & owned[1]:
                split_at, split_done = time.monotonic(), done
            if done >= counted.events:
                break
            time.sleep(0.1)
        else:
            raise TimeoutError("the two workers did not finish")
        end = time.monotonic()
        for k, worker in enumerate(workers):
            text = worker.metrics()
            print(
                f"  worker {k + 1}: partitions {worker.health()['partitions']}, "
                f"{len(Scrape(text).label_values('driftline_model_outcomes', 'model_id'))} models, "
                f"{worker.applied(text):,.0f} events applied, "
                f"{Scrape(text).total('driftline_events_total', outcome='skipped'):,.0f} skipped"
            )
        ids = [w.scrape().label_values("driftline_model_outcomes", "model_id") for w in workers]
        print(f"  models on both workers                       {len(ids[0] & ids[1]):>10}")
        if split_at is None or split_done is None or end - split_at < 1.0:
            print("  total: the partitions were not split long enough to measure")
            return
        rate = (counted.events - split_done) / (end - split_at)
        print(
            f"  total while both own partitions              {rate:>10,.0f} events/s "
            f"({counted.events - split_done:,.0f} events)"
        )
        if single and single == single:
            print(f"  total / one worker                           {rate / single:>10.2f}")
    finally:
        for worker in workers:
            worker.stop()


REPO = Path(__file__).resolve().parents[1]


def checkout(ref: str, where: Path) -> Path:
    """A detached worktree of ``ref`` (removed at the end of the run)."""
    subprocess.run(
        ["git", "worktree", "add", "--detach", "--quiet", str(where), ref], cwd=REPO, check=True
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=where, capture_output=True, text=True
    ).stdout.strip()
    print(f"baseline: {ref} ({commit}) in a worktree")
    return where


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=SECTIONS, action="append")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size")
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help="also run the worker of this git revision (throughput, latency), same run",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="with --baseline: measure both workers this many times each, alternated (medians)",
    )
    parser.add_argument(
        "--ui-cost",
        action="store_true",
        help="fleet: run it again with the status page off, and print what the page costs",
    )
    parser.add_argument(
        "--worker-python",
        metavar="PATH",
        help="run the workers with this interpreter (a runtime-only environment, e.g. one "
        "made from requirements.lock: the dev extras' imports inflate an idle worker's RSS)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the throughput worker with py-spy (its rate is then not measured)",
    )
    args = parser.parse_args()
    # (absolute, not resolved: a venv's python is a symlink that must stay one)
    Worker.interpreter = args.worker_python and os.path.abspath(args.worker_python)
    wanted = set(args.only or SECTIONS)
    scale = args.scale
    workdir = Path(tempfile.mkdtemp(prefix="driftline-bench-"))
    broker = None
    bootstrap = os.environ.get("DRIFTLINE_BOOTSTRAP_SERVERS")
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(
        f"driftline benchmark, {time.strftime('%Y-%m-%d')}, {platform.machine()}, "
        f"{os.cpu_count()} cores, {memory_gib:.0f} GiB, Python {platform.python_version()}"
    )
    if args.worker_python:
        print(f"workers run with {args.worker_python}")
    try:
        if not bootstrap:
            broker = LocalKafka(
                BrokerConfig(
                    port=free_port(), controller_port=free_port(), data_dir=workdir / "kafka"
                )
            )
            seconds = broker.start()
            bootstrap = broker.bootstrap_servers
            print(f"broker: Apache Kafka (the project's own launcher), started in {seconds:.1f}s")
        baseline = None
        if args.baseline:
            baseline = (args.baseline, checkout(args.baseline, workdir / "baseline"))
        single = None
        if "throughput" in wanted:
            print("\nthroughput")
            single = throughput(
                bootstrap,
                workdir,
                int(1_000_000 * scale),
                baseline=baseline,
                rounds=args.rounds,
                sampled=True,
            )
            if args.profile:
                print("\nprofile, the throughput workload again")
                throughput(bootstrap, workdir, int(1_000_000 * scale), profile=True)
        if "arrays" in wanted:
            print("\nthroughput, producers sending JSON arrays of 100 events")
            throughput(bootstrap, workdir, int(1_000_000 * scale), array=100)
        if "latency" in wanted:
            print("\nlatency, produce -> alert or command, 10k events/s offered")
            latency(bootstrap, workdir, max(45.0, 90 * min(1.0, scale * 10)), baseline)
        if "memory" in wanted:
            print("\nmemory, 100 models x 10 features")
            memory(bootstrap, workdir, int(10_000_000 * scale), int(3_000_000 * scale))
        if "fleet" in wanted:
            print("\nfleet, 1,000 models x 20 features")
            models = max(10, int(1000 * min(1.0, scale * 10)))
            with_ui = fleet(bootstrap, workdir, models, max(100, int(3_500 * scale)), 20)
            if args.ui_cost:
                print("\nfleet again, the status page off (DRIFTLINE_WEB_UI=0)")
                without = fleet(
                    bootstrap, workdir, models, max(100, int(3_500 * scale)), 20, web_ui=False
                )
                print(
                    f"  the page's history adds {mib(with_ui - without)} to the fleet's RSS "
                    f"({100 * (with_ui / without - 1):+.1f} %)"
                )
        if "scaleout" in wanted:
            print("\nscale-out, two workers in one consumer group")
            scaleout(bootstrap, workdir, int(1_000_000 * scale), single)
    finally:
        if broker is not None:
            broker.stop()
        if args.baseline:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(workdir / "baseline")],
                cwd=REPO,
                capture_output=True,
                check=False,
            )
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
