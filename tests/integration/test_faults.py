"""What the live service survives, on the real broker: a killed worker, a restarted broker, a
backlog, a clean stop, floods of unknown models, and a model whose update raises.

Every test accounts for every produced event: read by a worker as ``ok`` (applied),
``deadletter`` (with its reason), ``skipped`` (a restored state already included it) or
``rerouted`` (sent to its model's partition, then read there)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import defaultdict

import orjson
import pytest

from schemas import Topics
from tests import scenarios
from tests.conftest import create_topics
from tests.integration.live import (
    accounted,
    cloudevents,
    group_offsets,
    inputs,
    produce,
    produce_fast,
    read_all,
    recent_t0,
    wait_committed,
)

pytestmark = pytest.mark.broker

HOUR_MS = 3_600_000
RETRAIN = "io.driftline.command.retrain"
ROLLBACK = "io.driftline.command.rollback"


def fleet(t0: int) -> tuple[list, list]:
    """Ten models in two parts: the first ends after the concept model's reference window and
    before its drift, and before the rollout model's new version."""
    concept = scenarios.concept_drift(n=4000, drift_at=2000, t0=t0)
    rollout = scenarios.rollout(n_old=1500, n_new=1500, t0=t0)
    fillers = [
        scenarios.covariate_shift(model=f"m-fill-{k}", n=3000, shift_at=3000, t0=t0, seed=10 + k)
        for k in range(8)
    ]

    def upto(records, pid):
        return next(
            i
            for i, (kind, p) in enumerate(records)
            if kind == "predictions" and orjson.loads(p)["prediction_id"] == pid
        )

    cuts = [
        (concept, upto(concept, "m-concept-1900")),
        (rollout, upto(rollout, "m-rollout-1400")),
        *((f, 1500) for f in fillers),
    ]
    first = [r for records, cut in cuts for r in records[:cut]]
    second = [r for records, cut in cuts for r in records[cut:]]
    return first, second


async def test_a_worker_killed_under_load_restarts_where_its_state_left_off(
    kafka_bootstrap, topics, workers
):
    first_part, second_part = fleet(recent_t0())
    total = len(first_part) + len(second_part)
    await produce(kafka_bootstrap, first_part, topics)
    first = workers().start()
    # The concept model's reference window is complete and saved (offsets committed after it).
    await wait_committed(kafka_bootstrap, first.app_id, inputs(topics))
    assert accounted(first, topics)["ok"] == len(first_part)

    # The rest arrives at ~4k events/s; the worker is killed a few thousand events in.
    async def trickle() -> None:
        for start in range(0, len(second_part), 400):
            await produce(kafka_bootstrap, second_part[start : start + 400], topics)
            await asyncio.sleep(0.1)

    producing = asyncio.create_task(trickle())
    while accounted(first, topics)["ok"] < len(first_part) + 3000:
        assert not producing.done(), "the worker fell too far behind to be killed under load"
        await asyncio.sleep(0.05)
    before_kill = accounted(first, topics)["ok"]
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    await producing
    committed, end = await group_offsets(kafka_bootstrap, first.app_id, inputs(topics))
    assert end == total
    assert len(first_part) <= committed <= before_kill  # no commit ahead of processing

    second = workers(app_id=first.app_id).start()
    second.wait_for(
        lambda: sum(accounted(second, topics).values()) >= end - committed,
        what="every event after the committed offsets",
    )
    counts = accounted(second, topics)
    # Every event after the committed offsets is read once: applied, or skipped because the
    # model's restored state already included it. Nothing is lost, nothing is read twice.
    assert sum(counts.values()) == end - committed, counts
    assert counts["deadletter"] == counts["rerouted"] == 0
    assert second.sample("driftline_state_total", outcome="restored") == 10
    assert second.sample("driftline_state_total", outcome="rejected") == 0
    # The concept detector continued from its saved reference: had it started over, its new
    # reference would include the drift and it would never fire.
    commands = await wait_commands(kafka_bootstrap, topics, {RETRAIN, ROLLBACK})
    ids_per_decision: dict[tuple[str, str], set[str]] = defaultdict(set)
    for command in commands:
        ids_per_decision[(command["type"], command["subject"])].add(command["id"])
    # One decision per model, and repeats of it (at-least-once delivery) carry the same id.
    assert ids_per_decision == {
        (RETRAIN, "m-concept"): ids_per_decision[(RETRAIN, "m-concept")],
        (ROLLBACK, "m-rollout"): ids_per_decision[(ROLLBACK, "m-rollout")],
    }
    assert all(len(ids) == 1 for ids in ids_per_decision.values()), ids_per_decision
    print(
        f"\nkilled after {before_kill:.0f} applied; committed {committed} of {end}; restart read "
        f"{counts}; {len(commands)} command records for {len(ids_per_decision)} decisions"
    )


async def wait_commands(bootstrap: str, topics: Topics, kinds: set[str]) -> list[dict]:
    """Every command on the topic, once it holds one of each of ``kinds`` (or after 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        commands = cloudevents(await read_all(bootstrap, topics.commands, settle=0.5))
        if kinds <= {c["type"] for c in commands} or time.monotonic() > deadline:
            return commands


async def test_a_stopped_worker_commits_everything_it_processed(kafka_bootstrap, topics, workers):
    records = scenarios.covariate_shift(n=2000, t0=recent_t0())
    await produce(kafka_bootstrap, records, topics)
    worker = workers(env={"DRIFTLINE_CHECKPOINT_INTERVAL": "3600"}).start()  # no periodic one
    worker.wait_for(lambda: accounted(worker, topics)["ok"] == 2000, what="every event")
    committed, end = await group_offsets(kafka_bootstrap, worker.app_id, inputs(topics))
    assert committed < end  # nothing committed yet: only the stop can have done it
    assert worker.stop(signal.SIGTERM) == 0
    committed, end = await group_offsets(kafka_bootstrap, worker.app_id, inputs(topics))
    assert committed == end == 2000


async def test_a_restarted_broker_is_rejoined_and_nothing_is_lost(own_broker, topics, workers):
    bootstrap = own_broker.bootstrap_servers
    # The ``topics`` fixture made its topics on the session broker: make them here too.
    await create_topics(bootstrap, [getattr(topics, f) for f in Topics.__dataclass_fields__])
    first_part, second_part = fleet(recent_t0())
    await produce(bootstrap, first_part, topics)
    worker = workers(bootstrap).start()
    worker.wait_for(lambda: accounted(worker, topics)["ok"] == len(first_part), what="part one")

    own_broker.stop()  # a clean stop, then a start on the same log directory
    await asyncio.sleep(3)
    own_broker.start()
    await produce(bootstrap, second_part, topics)
    worker.wait_for(
        lambda: accounted(worker, topics)["ok"] >= len(first_part) + len(second_part),
        timeout=120,
        what="everything after the broker came back",
    )
    assert worker.process is not None
    assert worker.process.poll() is None  # it never died
    counts = accounted(worker, topics)
    # A rebalance after the restart re-reads from the last commit: skipped, not applied twice.
    assert counts["ok"] == len(first_part) + len(second_part), counts
    assert counts["deadletter"] == 0
    worker.wait_for(lambda: worker.sample("driftline_commands_total", type=RETRAIN) == 1)
    worker.wait_for(lambda: (worker.health() or {}).get("status") == "ok", what="healthy")


async def test_a_backlog_of_a_million_events_is_caught_up_in_bounded_memory(
    kafka_bootstrap, topics, workers
):
    from bench.workload import events

    names = {"predictions": topics.predictions, "labels": topics.labels}
    stream = ((names[kind], key, value) for kind, key, value in events(770_000, models=100))
    produced = await produce_fast(kafka_bootstrap, stream)
    assert produced >= 1_000_000
    backlog_bytes = 400 * produced  # ~400 bytes per event
    # Memory is what the models keep (bounded by caps), not what waits in the log: over the
    # second half of the backlog (~200 MB of records) RSS grows by a fraction of that at most.
    worker = workers(env={"DRIFTLINE_MAX_PENDING_PREDICTIONS": "100000"}).start()
    peak = at_half = 0.0
    started = time.monotonic()
    while True:
        done = sum(accounted(worker, topics).values())
        rss = worker.sample("process_resident_memory_bytes")
        if done >= produced / 2 and not at_half:
            at_half = rss
        peak = max(peak, rss)
        if done >= produced:
            break
        worker.wait_for(lambda: True)  # raises if it died
        assert time.monotonic() - started < 300, f"{done} of {produced} after 300 s"
        await asyncio.sleep(0.5)
    elapsed = time.monotonic() - started
    counts = accounted(worker, topics)
    assert counts["ok"] == produced, counts
    assert worker.sample("driftline_label_join_total", outcome="evicted") > 0  # the cap held
    print(
        f"\nbacklog of {produced} events: {elapsed:.0f}s; RSS {at_half / 2**20:.0f} MiB half-way, "
        f"peak {peak / 2**20:.0f} MiB"
    )
    assert at_half > 0
    assert peak - at_half < 0.5 * backlog_bytes / 2


async def test_a_flood_of_new_models_and_features_is_capped_counted_and_dead_lettered(
    kafka_bootstrap, topics, workers
):
    t0 = recent_t0()
    records = []
    for i in range(3000):
        model = f"flood-{i % 300}"
        features = {f"name-{i}-{j}": float(j) for j in range(5)}  # new names every event
        records.append(
            (
                "predictions",
                orjson.dumps(
                    {
                        "model_id": model,
                        "model_version": "1",
                        "prediction_id": str(i),
                        "timestamp": t0 + i,
                        "prediction": True,
                        "features": features,
                    }
                ),
            )
        )
    worker = workers(
        env={"DRIFTLINE_MAX_MODELS": "20", "DRIFTLINE_MAX_FEATURES_PER_MODEL": "8"}
    ).start()
    await produce(kafka_bootstrap, records, topics)
    worker.wait_for(lambda: sum(accounted(worker, topics).values()) == 3000, what="every event")
    counts = accounted(worker, topics)
    assert worker.sample("driftline_models") == 20
    assert counts["ok"] == 20 * 10  # ten events for each of the 20 models tracked
    assert counts["deadletter"] == 280 * 10
    assert worker.sample("driftline_refused_total", what="model") == 2800
    # 10 events x 5 new names each, 8 of them tracked, for each tracked model (feature rows
    # wait for the core's next tick: the count may come a moment after the events' own)
    refused = 20 * (10 * 5 - 8)
    worker.wait_for(
        lambda: worker.sample("driftline_refused_total", what="feature") >= refused,
        what="the refused features",
    )
    assert worker.sample("driftline_refused_total", what="feature") == refused
    letters = await read_all(kafka_bootstrap, topics.deadletter)
    assert len(letters) == 2800
    reasons = {dict(letter.headers)["driftline-error-reason"] for letter in letters}
    assert reasons == {b"model_limit"}
    models_in_letters = {orjson.loads(letter.value)["model_id"] for letter in letters}
    assert len(models_in_letters) == 280
    # Prometheus sees the capped set only: no series for a refused model or feature.
    text = worker.metrics()
    model_ids = {
        line.split('model_id="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if 'model_id="' in line
    }
    assert len(model_ids) <= 20
    features = {
        line.split('feature="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if 'feature="' in line
    }
    assert len(features) <= 20 * 8 + 2


FAULT = """
# Fault injection for one test, loaded by the worker's interpreter at startup (PYTHONPATH).
from detectors.model import ModelState

_process = ModelState.process


def process(self, events, now=None):
    if self.model_id == "boom":
        raise RuntimeError("injected fault")
    return _process(self, events, now)


ModelState.process = process
"""


async def test_a_model_whose_update_raises_is_reset_and_its_events_dead_lettered(
    kafka_bootstrap, topics, workers, tmp_path
):
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(FAULT)
    worker = workers(env={"PYTHONPATH": str(inject)}).start()
    t0 = recent_t0()
    fine = scenarios.covariate_shift(model="fine", n=200, t0=t0)
    boom = scenarios.covariate_shift(model="boom", n=30, t0=t0, seed=5)
    await produce(kafka_bootstrap, fine + boom, topics)
    worker.wait_for(lambda: sum(accounted(worker, topics).values()) == 230, what="every event")
    counts = accounted(worker, topics)
    assert counts["ok"] == 200
    assert counts["deadletter"] == 30
    assert worker.sample("driftline_model_resets_total", cause="internal_error") >= 1
    assert worker.health()["status"] == "ok"
    letters = await read_all(kafka_bootstrap, topics.deadletter)
    assert len(letters) == 30
    for letter in letters:
        headers = dict(letter.headers)
        assert headers["driftline-error-reason"] == b"internal_error"
        assert headers["driftline-error"] == (
            b"$: updating this model raised: the model was reset and starts afresh "
            b"(what was raised is in driftline-error-cause)"
        )
        assert headers["driftline-error-cause"] == b"RuntimeError: injected fault"
        assert orjson.loads(letter.value)["model_id"] == "boom"  # the original record
    assert {int(dict(r.headers)["driftline-source-offset"]) for r in letters} == set(range(30))
    assert "model boom was reset after an internal error" in worker.log_path.read_text()
    # Its saved state (if any) is tombstoned: a restart must not bring back what failed.
    state = await read_all(kafka_bootstrap, f"{worker.app_id}.state")
    assert any(r.key == b"boom" and r.value is None for r in state)


def _prediction(pid: int, ts: int) -> tuple[str, bytes]:
    return (
        "predictions",
        orjson.dumps(
            {
                "model_id": "messy",
                "model_version": "1",
                "prediction_id": f"p{pid}",
                "timestamp": ts,
                "prediction": pid % 3 == 0,
                "features": {"x": pid % 17},
            }
        ),
    )


def _label(pid: str, ts: int) -> tuple[str, bytes]:
    return (
        "labels",
        orjson.dumps({"model_id": "messy", "prediction_id": pid, "timestamp": ts, "label": True}),
    )


async def test_messy_labels_and_clocks_are_counted_and_bounded(kafka_bootstrap, topics, workers):
    """Labels early, late, twice, never, or for ids nobody sent; events out of order and from a
    producer whose clock runs hours ahead: every label lands in exactly one join outcome, the
    stores stay within their caps, the worker stays healthy."""
    # Labels may be read before every prediction (another topic): the store holds them all.
    worker = workers(config="defaults:\n  join: {max_pending_labels: 2000}\n").start()
    t0 = recent_t0()
    stamps = [t0 + i * 100 for i in range(2000)]
    for i in range(0, 2000, 10):  # every tenth pair swapped: out of order
        stamps[i], stamps[i + 1] = stamps[i + 1], stamps[i]
    for i in range(5, 2000, 20):  # a producer clock three hours ahead (max_future: 1 h)
        stamps[i] += 3 * HOUR_MS
    early = [_label(f"p{i}", t0 + i * 100) for i in range(1000)]
    predictions = [_prediction(i, ts) for i, ts in enumerate(stamps)]
    later = [_label(f"p{i}", t0 + i * 100 + 5000) for i in range(1000, 1500)]
    repeats = [_label(f"p{i}", t0 + i * 100 + 9000) for i in range(1000, 1200)]
    await produce(kafka_bootstrap, early + predictions + later + repeats, topics)
    worker.wait_for(lambda: accounted(worker, topics)["ok"] == 3700, what="the first 3,700")
    # ids nobody predicted, more than the early-label store holds
    strangers = [_label(f"nobody-{i}", t0 + 250_000 + i) for i in range(5000)]
    await produce(kafka_bootstrap, strangers, topics)
    worker.wait_for(lambda: accounted(worker, topics)["ok"] == 8700, what="every event")

    def outcome(name: str) -> float:
        return worker.sample("driftline_label_join_total", outcome=name)

    assert outcome("joined") == 1500  # early or not
    assert outcome("duplicate") == 200
    # The early-label store holds 2,000: the rest of the strangers were pushed out, counted.
    assert outcome("unknown_id") == 3000
    assert outcome("late") == 0
    assert worker.sample("driftline_deadletter_total") == 0
    assert worker.health()["status"] == "ok"
    # Timestamps from the future did not become the model's clock: nothing expired early.
    assert outcome("expired") == 0
