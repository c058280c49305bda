"""Backlogs of a million predictions and their million labels, already in Kafka when a worker
starts: every label joins its prediction, whatever order the topics' records are fetched in.

The traffic is what a backlog of real traffic holds (``bench/workload.py: delayed_labels``):
predictions over six hours for 20 models, each labelled once, minutes to hours later, every
record stamped when it was produced, and a model whose features come from ``model.inputs``.
A label is half the size of a prediction, so a fetch of the same bytes reaches hours further
into the labels topic: a worker that applied fetches as they came lost labels whose
predictions it had not read yet (the early-label store overflowed, counted ``unknown_id``).
The worker applies the three topics in record-timestamp order (stream/ordering.py).

Each test checks, for every worker process: every label it applied joined
(``joined`` = labels applied, ``unknown_id``, ``late``, ``duplicate``, ``expired`` and
``evicted`` all 0), and together the processes account for every record.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter

import pytest

from bench.workload import delayed_labels
from schemas import Topics
from tests.conftest import create_topics, unique_topics
from tests.integration.live import (
    WorkerProcess,
    accounted,
    group_offsets,
    inputs,
    produce_fast,
    wait_committed,
)

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PREDICTIONS = 1_000_000
JOIN_OUTCOMES = ("joined", "expired", "evicted", "late", "duplicate", "unknown_id")


async def produce_backlog(bootstrap: str, topics: Topics) -> Counter[str]:
    """The six hours of traffic, produced with their timestamps; records per topic kind."""
    await create_topics(bootstrap, topics.all())
    counts: Counter[str] = Counter()

    def records():
        for kind, key, value, timestamp in delayed_labels(PREDICTIONS):
            counts[kind] += 1
            yield getattr(topics, kind), key, value, timestamp

    await produce_fast(bootstrap, records())
    return counts


@pytest.fixture(scope="module")
def backlog(kafka_bootstrap: str, request: pytest.FixtureRequest) -> tuple[Topics, Counter[str]]:
    """One backlog for the module's tests (each reads it with consumer groups of its own)."""
    topics = unique_topics(request)
    started = time.monotonic()
    counts = asyncio.run(produce_backlog(kafka_bootstrap, topics))
    print(f"\nbacklog {dict(counts)} produced in {time.monotonic() - started:.0f}s")
    return topics, counts


def assert_every_applied_label_joined(worker: WorkerProcess, topics: Topics) -> float:
    """Every label this worker applied joined its prediction; return how many it applied."""
    text = worker.metrics()  # one scrape: the counters of one moment
    applied = worker.sample("driftline_events_total", text, topic=topics.labels, outcome="ok")
    outcomes = {
        o: worker.sample("driftline_label_join_total", text, outcome=o) for o in JOIN_OUTCOMES
    }
    seen = {
        **outcomes,
        "applied": applied,
        "forced": worker.sample("driftline_order_forced_total", text),
    }
    assert outcomes["joined"] == applied, str(seen)
    assert {o: n for o, n in outcomes.items() if o != "joined" and n} == {}, str(seen)
    return applied


def wait_read(workers: list[WorkerProcess], topics: Topics, total: float) -> None:
    """Until the workers together read ``total`` input events (any outcome)."""
    started = time.monotonic()

    def done() -> float:
        return sum(sum(accounted(w, topics).values()) for w in workers)

    while done() < total:
        for worker in workers:
            worker.wait_for(lambda: True)  # raises if it died
        assert time.monotonic() - started < 600, f"{done()} of {total} after 600 s"
        time.sleep(0.5)
    assert done() == total


def models_of(worker: WorkerProcess) -> set[str]:
    return {labels["model_id"] for labels, _ in worker.samples("driftline_model_outcomes")}


async def test_every_label_of_a_backlog_joins_at_every_cold_start(backlog, workers):
    topics, sent = backlog
    total = sum(sent.values())
    for start in range(3):  # the race was timing-dependent: one lucky start proves nothing
        worker = workers(on=topics).start()
        started = time.monotonic()
        wait_read([worker], topics, total)
        elapsed = time.monotonic() - started
        applied = assert_every_applied_label_joined(worker, topics)
        assert applied == sent["labels"]
        assert accounted(worker, topics)["ok"] == total
        assert len(models_of(worker)) == 20
        forced = worker.sample("driftline_order_forced_total")
        print(f"\ncold start {start}: {total} events in {elapsed:.0f}s, forced {forced:.0f}")
        worker.stop()


@pytest.mark.parametrize("checkpoint_interval", ["3600", "1"], ids=["before", "between"])
async def test_every_label_joins_after_a_sigkill_restart(
    kafka_bootstrap, backlog, workers, checkpoint_interval
):
    """Killed before its first checkpoint (everything after the start is read again), or
    between two."""
    topics, sent = backlog
    total = sum(sent.values())
    env = {"DRIFTLINE_CHECKPOINT_INTERVAL": checkpoint_interval}
    first = workers(on=topics, env=env).start()
    first.wait_for(lambda: accounted(first, topics)["ok"] >= 0.4 * total, timeout=300)
    assert_every_applied_label_joined(first, topics)
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    committed, end = await group_offsets(kafka_bootstrap, first.app_id, inputs(topics))
    labels_committed, _ = await group_offsets(kafka_bootstrap, first.app_id, [topics.labels])
    assert end == total
    if checkpoint_interval == "3600":
        assert committed == 0

    second = workers(on=topics, app_id=first.app_id, env=env).start()
    wait_read([second], topics, end - committed)
    counts = accounted(second, topics)
    assert counts["deadletter"] == counts["rerouted"] == 0
    applied = assert_every_applied_label_joined(second, topics)
    skipped = second.sample("driftline_events_total", topic=topics.labels, outcome="skipped")
    # Every label after the committed offsets was applied (and joined) or already in a restored
    # state (saved at a checkpoint, or at once after a command); those before them were joined
    # by the first worker.
    assert applied + skipped == sent["labels"] - labels_committed


async def test_every_label_joins_when_a_second_worker_takes_over_partitions(
    kafka_bootstrap, backlog, workers
):
    topics, sent = backlog
    total = sum(sent.values())
    first = workers(on=topics).start()
    first.wait_for(lambda: accounted(first, topics)["ok"] >= 0.3 * total, timeout=300)
    second = workers(on=topics, app_id=first.app_id).start()
    await wait_committed(kafka_bootstrap, first.app_id, inputs(topics), within=600)
    pair = (first, second)
    applied = [assert_every_applied_label_joined(w, topics) for w in pair]
    # Model state is updated exactly once: every event applied once, by one of the two
    # (re-reads after the hand-over, if any, are skipped).
    assert sum(applied) == sent["labels"]
    assert sum(accounted(w, topics)["ok"] for w in pair) == total
    # The partitions were split: each model on one worker, all of them somewhere.
    assert second.health()["partitions"]
    mine, theirs = models_of(first), models_of(second)
    assert theirs
    assert not (mine & theirs)
    assert len(mine | theirs) == 20


async def test_every_label_joins_across_a_broker_restart(own_broker, workers, request):
    bootstrap = own_broker.bootstrap_servers
    topics = unique_topics(request)
    sent = await produce_backlog(bootstrap, topics)
    total = sum(sent.values())
    worker = workers(bootstrap, on=topics).start()
    worker.wait_for(lambda: accounted(worker, topics)["ok"] >= 0.3 * total, timeout=300)
    own_broker.stop()  # a clean stop, then a start on the same log directory
    await asyncio.sleep(3)
    own_broker.start()
    await wait_committed(bootstrap, worker.app_id, inputs(topics), within=600)
    assert worker.process is not None
    assert worker.process.poll() is None  # it never died
    counts = accounted(worker, topics)
    assert counts["deadletter"] == counts["rerouted"] == 0
    # A rebalance after the restart re-reads from the last commit: applied again from the
    # restored state, or skipped; every label applied joined, each time.
    applied = assert_every_applied_label_joined(worker, topics)
    skipped = worker.sample("driftline_events_total", topic=topics.labels, outcome="skipped")
    assert applied + skipped >= sent["labels"]
