"""The live service on the real broker: ``driftline worker`` as users run it."""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import orjson
import pytest

from tests import scenarios
from tests.integration.live import WorkerProcess, cloudevents, produce, read_all
from tests.scenarios import MALFORMED

pytestmark = pytest.mark.broker

HOUR = 3_600_000


def recent_t0() -> int:
    """Event time an hour ago: scenarios run 400 s of event time, all in the past."""
    return int(time.time() * 1000) - HOUR


@pytest.fixture
def worker_factory(workers):
    return workers


def processed(worker: WorkerProcess, topic: str) -> float:
    return worker.sample("driftline_events_total", topic=topic, outcome="ok")


async def test_covariate_drift_on_one_feature_gives_one_data_drift_alert(
    kafka_bootstrap, topics, worker_factory
):
    worker = worker_factory().start()
    n = await produce(kafka_bootstrap, scenarios.covariate_shift(t0=recent_t0()), topics)
    worker.wait_for(lambda: processed(worker, topics.predictions) == n, what="all predictions")
    worker.wait_for(
        lambda: worker.sample("driftline_alerts_total", type="io.driftline.alert.data_drift") >= 1,
        what="a data drift alert",
    )
    alerts = cloudevents(await read_all(kafka_bootstrap, topics.alerts))
    drift = [a for a in alerts if a["type"] == "io.driftline.alert.data_drift"]
    assert [(a["subject"], a["data"]["feature"], a["data"]["status"]) for a in drift] == [
        ("m-shift", "f1", "firing")
    ]
    assert {a["data"].get("feature") for a in alerts} <= {"f1", None}
    assert (
        worker.sample(
            "driftline_drift_detected", model_id="m-shift", signal="feature", feature="f1"
        )
        == 1.0
    )
    assert (
        worker.sample(
            "driftline_drift_detected", model_id="m-shift", signal="feature", feature="f2"
        )
        == 0.0
    )


async def test_concept_drift_with_delayed_labels_gives_an_alert_and_one_retrain(
    kafka_bootstrap, topics, worker_factory
):
    worker = worker_factory().start()
    records = scenarios.concept_drift(t0=recent_t0(), label_delay=200)
    await produce(kafka_bootstrap, records, topics)
    worker.wait_for(
        lambda: worker.sample("driftline_commands_total", type="io.driftline.command.retrain") >= 1,
        what="a retrain command",
    )
    labels = sum(1 for kind, _ in records if kind == "labels")
    worker.wait_for(lambda: processed(worker, topics.labels) == labels, what="all labels")
    commands = cloudevents(await read_all(kafka_bootstrap, topics.commands))
    assert [(c["type"], c["subject"]) for c in commands] == [
        ("io.driftline.command.retrain", "m-concept")
    ]
    assert commands[0]["data"]["reason"] == "concept_drift"
    alerts = cloudevents(await read_all(kafka_bootstrap, topics.alerts))
    assert any(
        a["type"] == "io.driftline.alert.concept_drift" and a["data"]["status"] == "firing"
        for a in alerts
    )
    assert worker.sample("driftline_label_join_total", outcome="joined") == labels


async def test_a_worse_version_is_rolled_back_once_and_an_equal_one_never(
    kafka_bootstrap, topics, worker_factory
):
    worker = worker_factory().start()
    t0 = recent_t0()
    worse = scenarios.rollout(model="m-worse", new_error=0.3, t0=t0)
    equal = scenarios.rollout(model="m-equal", new_error=0.1, t0=t0, seed=9)
    records = sorted(worse + equal, key=lambda r: orjson.loads(r[1])["timestamp"])
    await produce(kafka_bootstrap, records, topics)
    labels = sum(1 for kind, _ in records if kind == "labels")
    worker.wait_for(lambda: processed(worker, topics.labels) == labels, what="all labels")
    commands = cloudevents(await read_all(kafka_bootstrap, topics.commands))
    rollbacks = [c for c in commands if c["type"] == "io.driftline.command.rollback"]
    assert [
        (c["subject"], c["data"]["from_version"], c["data"]["to_version"]) for c in rollbacks
    ] == [("m-worse", "2", "1")]


async def test_a_silent_model_stalls_while_another_keeps_going_then_resolves(
    kafka_bootstrap, topics, worker_factory
):
    config = "models:\n  m-silent:\n    stall_inputs: {timeout: 2s}\n"
    worker = worker_factory(config=config).start()

    async def send(models, seconds: float) -> None:
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            now = int(time.time() * 1000)
            records = [
                (
                    "predictions",
                    orjson.dumps(
                        {
                            "model_id": m,
                            "model_version": "1",
                            "prediction_id": f"{m}-{now}-{i}",
                            "timestamp": now,
                            "prediction": True,
                        }
                    ),
                )
                for m in models
            ]
            await produce(kafka_bootstrap, records, topics)
            i += 1
            await asyncio.sleep(0.1)

    await send(["m-live", "m-silent"], 2.0)
    await send(["m-live"], 4.5)  # m-silent goes quiet for longer than its 2 s timeout
    firing = worker.sample(
        "driftline_alerts_firing", model_id="m-silent", type="io.driftline.alert.input_stall"
    )
    assert firing == 1.0
    assert (
        worker.sample(
            "driftline_seconds_since_last_event", model_id="m-silent", topic=topics.predictions
        )
        > 2.0
    )
    await send(["m-live", "m-silent"], 1.5)
    worker.wait_for(
        lambda: (
            worker.sample(
                "driftline_alerts_firing",
                model_id="m-silent",
                type="io.driftline.alert.input_stall",
            )
            == 0.0
        ),
        what="the stall to resolve",
    )
    alerts = cloudevents(await read_all(kafka_bootstrap, topics.alerts))
    stalls = [
        (a["subject"], a["data"]["status"])
        for a in alerts
        if a["type"] == "io.driftline.alert.input_stall"
    ]
    assert stalls == [("m-silent", "firing"), ("m-silent", "resolved")]


async def test_malformed_records_are_dead_lettered_counted_and_the_worker_keeps_going(
    kafka_bootstrap, topics, worker_factory
):
    worker = worker_factory().start()
    await produce(kafka_bootstrap, [(kind, payload) for kind, payload, _ in MALFORMED], topics)
    good = scenarios.covariate_shift(n=300, t0=recent_t0())
    await produce(kafka_bootstrap, good, topics)
    worker.wait_for(lambda: processed(worker, topics.predictions) == 300, what="good events")
    letters = await read_all(kafka_bootstrap, topics.deadletter)
    assert len(letters) == len(MALFORMED)
    headers = [{k: v.decode() for k, v in letter.headers} for letter in letters]
    expected = sorted((getattr(topics, kind), reason) for kind, _, reason in MALFORMED)
    got = sorted((h["driftline-source-topic"], h["driftline-error-reason"]) for h in headers)
    assert got == expected
    originals = {payload for _, payload, _ in MALFORMED}
    assert {letter.value for letter in letters} <= originals | {b""}
    for h in headers:
        assert h["driftline-error"].startswith(h["driftline-error-path"] + ": ")
        assert int(h["driftline-source-offset"]) >= 0
        assert 0 <= int(h["driftline-source-partition"]) < 4
    total = sum(v for _, v in worker.samples("driftline_deadletter_total"))
    assert total == len(MALFORMED)
    assert worker.health()["status"] == "ok"


async def test_records_not_keyed_by_model_id_are_rerouted_and_processed_once(
    kafka_bootstrap, topics, worker_factory
):
    from aiokafka import AIOKafkaProducer

    worker = worker_factory().start()
    records = scenarios.covariate_shift(n=400, t0=recent_t0())
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    for i, (_, payload) in enumerate(records):  # round-robin, no key: the wrong partitions
        await producer.send(topics.predictions, payload, partition=i % 4)
    await producer.stop()
    worker.wait_for(lambda: processed(worker, topics.predictions) == 400, what="every event")
    rerouted = worker.sample("driftline_events_total", topic=topics.predictions, outcome="rerouted")
    assert 200 <= rerouted <= 400  # three quarters land on the wrong partition
    await asyncio.sleep(1.5)
    assert processed(worker, topics.predictions) == 400  # each counted once, not twice


async def test_metrics_families_are_served_with_sane_values(
    kafka_bootstrap, topics, worker_factory
):
    worker = worker_factory().start()
    records = scenarios.concept_drift(n=1200, drift_at=100_000, t0=recent_t0())
    await produce(kafka_bootstrap, records, topics)
    # labels may be fetched before their predictions (other partitions): they wait, then join
    worker.wait_for(
        lambda: worker.sample("driftline_label_join_total", outcome="joined") == 1200,
        what="every label joined",
    )
    text = worker.metrics()
    for family in (
        "driftline_events_total",
        "driftline_deadletter_total",
        "driftline_alerts_total",
        "driftline_commands_total",
        "driftline_drift_statistic",
        "driftline_drift_threshold",
        "driftline_drift_detected",
        "driftline_model_precision",
        "driftline_model_recall",
        "driftline_model_f1",
        "driftline_model_accuracy",
        "driftline_seconds_since_last_event",
        "driftline_label_join_total",
        "driftline_consumer_lag",
        "process_resident_memory_bytes",
        "driftline_faust_http_status_codes",
    ):
        assert f"# TYPE {family.removesuffix('_total')}" in text, family
    for name in ("precision", "recall", "f1", "accuracy"):
        value = worker.sample(f"driftline_model_{name}", model_id="m-concept", model_version="1")
        assert 0.8 <= value <= 1.0, (name, value)  # 10 % errors
    assert (
        worker.sample(
            "driftline_drift_threshold", model_id="m-concept", signal="feature", feature="x"
        )
        == 0.25
    )
    # Serving a scrape is timed, and the next scrape says what the one before it took.
    assert 0 < worker.sample("driftline_last_scrape_duration_seconds") < 10
    lags = worker.samples("driftline_consumer_lag")
    assert len(lags) == 12
    assert all(value == 0 for _, value in lags)
    since = worker.sample(
        "driftline_seconds_since_last_event", model_id="m-concept", topic=topics.labels
    )
    assert 0 <= since < 60


async def test_a_scraper_that_leaves_mid_scrape_is_no_error_and_the_next_scrape_is_whole(
    kafka_bootstrap, topics, worker_factory
):
    # /metrics is written family by family: a body larger than the sockets' buffers (a fleet's,
    # here ~7 MB: 600 models x 30 features, references of 20 values) is still being written when
    # a scraper gives up (Prometheus's timeout). Its leaving is not an error to log.
    worker = worker_factory(config="defaults:\n  drift: {reference_size: 20}\n").start()
    t0 = recent_t0()

    def prediction(m: int, i: int) -> bytes:
        features = {f"feature_with_a_long_name_{j:02d}": i + j / 8 + 0.1 for j in range(30)}
        return orjson.dumps(
            {
                "model_id": f"model-with-a-long-name-{m:03d}",
                "model_version": "1",
                "prediction_id": f"{m}-{i}",
                "timestamp": t0 + i,
                "prediction": 0.5,
                "features": features,
            }
        )

    records = [("predictions", prediction(m, i)) for i in range(25) for m in range(600)]
    n = await produce(kafka_bootstrap, records, topics)
    worker.wait_for(lambda: processed(worker, topics.predictions) == n, what="all predictions")
    assert len(worker.metrics()) > 6_000_000  # (else the body fits the buffers: nothing tested)
    with socket.socket() as scraper:
        scraper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # (before connecting)
        scraper.connect(("127.0.0.1", worker.port))
        scraper.sendall(b"GET /metrics HTTP/1.1\r\nHost: driftline\r\n\r\n")
        assert scraper.recv(1024).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(1)  # the worker's side fills up and waits
        scraper.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
    whole = worker.scrape()
    assert whole.total("driftline_models") == 600
    assert whole.total("process_resident_memory_bytes") > 0  # (the last family: all there)
    await asyncio.sleep(1)  # (an error would be logged by now)
    log = worker.log_path.read_text()
    assert "Traceback" not in log
    assert "Error handling request" not in log


async def test_a_restarted_worker_resumes_each_models_state(
    kafka_bootstrap, topics, worker_factory
):
    """Stop the worker between the reference and the drift: if the concept detector started
    from scratch, its new reference would include the drift and it would never fire."""
    records = scenarios.concept_drift(n=4000, drift_at=2000, t0=recent_t0())
    cut = next(
        i
        for i, (kind, p) in enumerate(records)
        if kind == "predictions" and orjson.loads(p)["prediction_id"] == "m-concept-1900"
    )
    first = worker_factory()
    first.start()
    await produce(kafka_bootstrap, records[:cut], topics)
    before_labels = sum(1 for kind, _ in records[:cut] if kind == "labels")
    first.wait_for(
        lambda: first.sample("driftline_label_join_total", outcome="joined") == before_labels,
        what="first half, every label joined",
    )
    first.wait_for(
        lambda: first.sample("driftline_state_total", outcome="saved") >= 1, what="a checkpoint"
    )
    outcomes = first.sample("driftline_model_outcomes", model_id="m-concept", model_version="1")
    assert outcomes == 1000  # a full window
    assert first.stop() == 0  # SIGTERM: a clean stop saves and commits

    second = worker_factory(app_id=first.app_id).start()
    second.wait_for(
        lambda: second.sample("driftline_state_total", outcome="restored") == 1,
        what="the model's state",
    )
    assert (
        second.sample("driftline_model_outcomes", model_id="m-concept", model_version="1") == 1000
    )
    await produce(kafka_bootstrap, records[cut:], topics)
    second.wait_for(
        lambda: second.sample("driftline_commands_total", type="io.driftline.command.retrain") == 1,
        what="the retrain after the drift",
    )
    commands = cloudevents(await read_all(kafka_bootstrap, topics.commands))
    assert [c["type"] for c in commands] == ["io.driftline.command.retrain"]
    # nothing from before the restart was processed twice
    assert (
        second.sample("driftline_events_total", topic=topics.predictions, outcome="ok")
        == 4000 - 1900
    )
