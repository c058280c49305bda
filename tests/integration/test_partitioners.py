"""Producers with the Kafka clients people use, mixed: confluent-kafka (librdkafka) at its
default partitioner (CRC32, ``consistent_random``), confluent-kafka with ``murmur2_random``
(Java-compatible), and aiokafka (murmur2), every record keyed by ``model_id``.

librdkafka's default puts a keyed record on another partition than Kafka's default partitioner
does, so a model's predictions and labels can land on two partitions, owned by two workers.
The worker re-routes every record that is not on its model's partition, whatever its key: two
workers in one group then hold each model once, and every label joins.
"""

from __future__ import annotations

import asyncio
import time
import zlib

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from confluent_kafka import Producer

from tests.conftest import PARTITIONS
from tests.integration.live import WorkerProcess, accounted, recent_t0

pytestmark = pytest.mark.broker

PER_MODEL = 600


def _models(count: int, crc_differs: bool) -> list[str]:
    """Model ids whose librdkafka default partition differs from (or equals) the murmur2 one."""
    out = []
    for n in range(1000):
        name = f"client-{n}"
        key = name.encode()
        differs = zlib.crc32(key) % PARTITIONS != (murmur2(key) & 0x7FFFFFFF) % PARTITIONS
        if differs == crc_differs:
            out.append(name)
        if len(out) == count:
            return out
    raise AssertionError("not enough model ids")


# Each model's predictions are produced by one client; all labels by aiokafka.
LIBRDKAFKA_DEFAULT = _models(2, crc_differs=True)
LIBRDKAFKA_MURMUR2 = _models(4, crc_differs=True)[2:]
AIOKAFKA = ["client-aio-a", "client-aio-b"]


def _prediction(model: str, i: int, t0: int) -> bytes:
    return orjson.dumps(
        {
            "model_id": model,
            "model_version": "1",
            "prediction_id": f"{model}-{i}",
            "timestamp": t0 + i * 10,
            "prediction": i % 3 == 0,
            "features": {"x": i % 17},
        }
    )


def _label(model: str, i: int, t0: int) -> bytes:
    return orjson.dumps(
        {
            "model_id": model,
            "prediction_id": f"{model}-{i}",
            "timestamp": t0 + i * 10 + 5000,
            "label": i % 2 == 0,
        }
    )


def models_of(worker: WorkerProcess) -> set[str]:
    return {labels["model_id"] for labels, _ in worker.samples("driftline_model_outcomes")}


async def test_mixed_clients_and_partitioners_each_model_on_one_worker_every_label_joins(
    kafka_bootstrap, topics, workers
):
    first = workers().start()
    second = workers(app_id=first.app_id).start()
    first.wait_for(
        lambda: (
            len(first.health()["partitions"]) + len(second.health()["partitions"]) == PARTITIONS
        ),
        what="the two workers to split the partitions",
    )
    t0 = recent_t0()
    default = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 5})
    java_compatible = Producer(
        {"bootstrap.servers": kafka_bootstrap, "linger.ms": 5, "partitioner": "murmur2_random"}
    )
    aio = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=5)
    await aio.start()
    try:
        # Live traffic: each second a slice of predictions, and the labels of the slice before.
        step = 100
        for start in range(0, PER_MODEL + step, step):
            for i in range(start, min(start + step, PER_MODEL)):
                for model in LIBRDKAFKA_DEFAULT:
                    default.produce(topics.predictions, _prediction(model, i, t0), model.encode())
                for model in LIBRDKAFKA_MURMUR2:
                    java_compatible.produce(
                        topics.predictions, _prediction(model, i, t0), model.encode()
                    )
                for model in AIOKAFKA:
                    await aio.send(
                        topics.predictions, _prediction(model, i, t0), key=model.encode()
                    )
            default.flush()
            java_compatible.flush()
            for i in range(max(0, start - step), start):
                for model in LIBRDKAFKA_DEFAULT + LIBRDKAFKA_MURMUR2 + AIOKAFKA:
                    await aio.send(topics.labels, _label(model, i, t0), key=model.encode())
            await aio.flush()
            await asyncio.sleep(0.5)
    finally:
        await aio.stop()
    models = LIBRDKAFKA_DEFAULT + LIBRDKAFKA_MURMUR2 + AIOKAFKA
    sent = 2 * PER_MODEL * len(models)
    rerouted = PER_MODEL * len(LIBRDKAFKA_DEFAULT)
    pair = (first, second)

    def applied() -> float:
        return sum(accounted(w, topics)["ok"] for w in pair)

    deadline = time.monotonic() + 60
    while applied() < sent:
        assert time.monotonic() < deadline, f"{applied()} of {sent} applied"
        await asyncio.sleep(0.5)
    # Every prediction of the librdkafka-default producer was re-routed (once), and applied by
    # the worker owning its model; nothing else was.
    assert sum(accounted(w, topics)["rerouted"] for w in pair) == rerouted
    causes = {
        labels["cause"]: sum(
            w.sample("driftline_rerouted_total", topic=topics.predictions, cause=labels["cause"])
            for w in pair
        )
        for w in pair
        for labels, _ in w.samples("driftline_rerouted_total")
    }
    assert causes == {"librdkafka_partitioner": rerouted}
    assert applied() == sent
    # Each model lives on one worker.
    mine, theirs = models_of(first), models_of(second)
    assert mine
    assert theirs
    assert not (mine & theirs)
    assert mine | theirs == set(models)
    # Every label joined its prediction.
    joined = sum(w.sample("driftline_label_join_total", outcome="joined") for w in pair)
    unknown = sum(w.sample("driftline_label_join_total", outcome="unknown_id") for w in pair)
    assert (joined, unknown) == (PER_MODEL * len(models), 0)
    # The workers said what to change, once per producer pattern, naming the setting.
    logs = [w.log_path.read_text() for w in pair]
    warnings = [line for log in logs for line in log.splitlines() if "murmur2_random" in line]
    assert 1 <= len(warnings) <= 2, warnings  # once per worker that met it
