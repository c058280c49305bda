"""The input pipeline's decisions without a broker: routing, the checkpoint book, restore, and a
whole fetch through ``InputPipeline`` with a fake producer (the broker-backed paths are in
tests/integration/test_worker.py and test_faults.py)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import ConsumerRecord

from detectors.monitor import Monitor
from stream.checkpoints import CheckpointBook
from stream.pipeline import InputPipeline
from stream.restore import latest_states, restore_models
from stream.routing import Route, Router, reroute_cause
from stream.settings import Settings
from stream.state import StateCodec

TS = 1_795_255_200_000
PARTITIONS = 4
PREDICTIONS, LABELS = "model.predictions", "model.labels"

# -- routing -----------------------------------------------------------------------------------


def test_a_models_partition_is_where_the_java_compatible_producer_puts_its_key():
    partitioner = DefaultPartitioner()
    rng = random.Random(7)
    router = Router(PARTITIONS)
    for _ in range(500):
        model_id = "".join(rng.choice("abcdefghij-_.0123456789") for _ in range(rng.randint(1, 30)))
        expected = partitioner(model_id.encode(), list(range(PARTITIONS)), list(range(PARTITIONS)))
        assert router.home(model_id) == expected


def test_one_rule_says_ok_rerouted_or_skipped():
    router = Router(PARTITIONS)
    home = router.home("churn")
    away = (home + 1) % PARTITIONS
    assert router.route("churn", PREDICTIONS, home, 5) is Route.OK
    assert router.route("churn", PREDICTIONS, away, 5) is Route.REROUTED
    router.resume["churn"] = {PREDICTIONS: 6, LABELS: 2}
    assert router.route("churn", PREDICTIONS, home, 5) is Route.SKIPPED
    assert router.route("churn", PREDICTIONS, home, 6) is Route.OK
    assert router.route("churn", LABELS, home, 1) is Route.SKIPPED
    # a topic the saved state does not mention was never applied
    assert router.route("churn", "model.inputs", home, 0) is Route.OK
    # a re-routed event is re-routed whatever the resume marks say
    assert router.route("churn", PREDICTIONS, away, 0) is Route.REROUTED


def test_reroute_causes_tell_the_producer_what_to_change():
    home = Router(PARTITIONS).home("churn")
    crc = __import__("zlib").crc32(b"churn") % PARTITIONS
    other = next(p for p in range(PARTITIONS) if p not in (home, crc))
    assert reroute_cause(None, "churn", other, PARTITIONS) == "unkeyed"
    assert reroute_cause(b"fraud", "churn", other, PARTITIONS) == "other_key"
    assert reroute_cause(b"churn", "churn", crc, PARTITIONS) == "librdkafka_partitioner"
    assert reroute_cause(b"churn", "churn", other, PARTITIONS) == "other_partitioner"


def test_a_router_needs_a_partition():
    with pytest.raises(ValueError, match="partitions"):
        Router(0)


# -- the checkpoint book ----------------------------------------------------------------------


def tp(topic: str, number: int) -> TopicPartition:
    return TopicPartition(topic, number)


def test_a_round_commits_the_positions_it_started_at_not_later_ones():
    book = CheckpointBook()
    book.assign({0, 1})
    book.applied(tp(PREDICTIONS, 0), 10, {"a", "b"})
    book.applied(tp(PREDICTIONS, 1), 4, {"c"})
    assert book.due(now=30.0, interval=30.0)
    book.start_round(now=30.0)
    assert not book.due(now=90.0, interval=30.0)  # a round is under way
    first = book.next_in_round()
    # events keep flowing while the round saves models one at a time
    book.applied(tp(PREDICTIONS, 0), 20, {"a"})
    assert book.saved_offsets(first, [PREDICTIONS, LABELS]) == {PREDICTIONS: 20, LABELS: 0}
    assert [book.next_in_round(), book.next_in_round(), book.next_in_round()] == ["b", "c", None]
    assert book.finish_round() == {tp(PREDICTIONS, 0): 10, tp(PREDICTIONS, 1): 4}
    assert book.dirty == {"a"}  # changed during the round: saved by the next one
    assert not book.due(now=59.0, interval=30.0)
    assert book.due(now=60.0, interval=30.0)


def test_a_round_with_a_state_that_could_not_be_saved_commits_nothing():
    book = CheckpointBook()
    book.assign({0})
    book.applied(tp(PREDICTIONS, 0), 10, {"a"})
    book.start_round(now=1.0)
    book.next_in_round()
    book.save_failed()
    assert book.finish_round() == {}
    book.applied(tp(PREDICTIONS, 0), 11, {"a"})
    models = book.begin_checkpoint(now=2.0)
    assert book.end_checkpoint(models, failed=True) == {}
    assert book.end_checkpoint(models, failed=False) == {tp(PREDICTIONS, 0): 11}


def test_a_whole_checkpoint_folds_in_an_unfinished_round_and_keeps_to_its_partitions():
    book = CheckpointBook()
    book.assign({0, 1})
    book.applied(tp(PREDICTIONS, 0), 3, {"a", "b"})
    book.applied(tp(PREDICTIONS, 1), 7, {"c"})
    book.command_emitted("c")
    book.start_round(now=1.0)
    assert book.next_in_round() == "a"
    models = book.begin_checkpoint(now=2.0, only={1})
    assert models == ["c"]
    assert not book.in_round
    assert book.commanded == set()
    assert book.end_checkpoint(models, failed=False, only={1}) == {tp(PREDICTIONS, 1): 7}
    assert book.dirty == {"b"}  # "a" was saved by the round, "b" not yet


def test_revoked_partitions_are_forgotten_with_their_models():
    book = CheckpointBook()
    assert book.assign({0, 1}) == {0, 1}
    assert book.assign({1, 2}) == {2}
    book.applied(tp(PREDICTIONS, 0), 3, {"a"})
    book.applied(tp(LABELS, 1), 5, {"b"})
    book.restored("c", 1, {PREDICTIONS: 9})
    assert sorted(book.revoke({1})) == ["b", "c"]
    assert book.owned == {0, 2}
    assert book.positions == {tp(PREDICTIONS, 0): 3}
    assert book.resume == {}
    assert book.dirty == {"a"}
    assert book.partition_of("b") is None
    assert book.saved_offsets("b", [LABELS]) is None


def test_skip_marks_are_forgotten_once_the_positions_pass_them():
    book = CheckpointBook()
    book.assign({0})
    book.restored("a", 0, {PREDICTIONS: 10, LABELS: 4})
    book.applied(tp(PREDICTIONS, 0), 10, {"a"})
    book.end_checkpoint(book.begin_checkpoint(now=1.0), failed=False)
    assert "a" in book.resume  # labels not yet past offset 4
    book.applied(tp(LABELS, 0), 4, {"a"})
    book.end_checkpoint(book.begin_checkpoint(now=2.0), failed=False)
    assert book.resume == {}


def test_commanded_models_are_taken_once():
    book = CheckpointBook()
    book.command_emitted("b")
    book.command_emitted("a")
    assert book.take_commanded() == ["a", "b"]
    assert book.take_commanded() == []


# -- restore -----------------------------------------------------------------------------------


def test_the_latest_record_per_model_wins_and_a_tombstone_starts_afresh():
    latest = latest_states(
        [(0, b"a", b"old"), (1, b"b", b"x"), (0, b"a", b"new"), (1, b"b", None), (2, None, b"z")]
    )
    assert latest == {"a": (0, b"new"), "b": (1, None)}


def test_restore_loads_good_records_and_refuses_the_rest_whole():
    codec = StateCodec(b"k" * 32)
    source = Monitor()
    source.process([_prediction("a", "p1"), _prediction("bad-offsets", "p2")], now=TS)
    good = codec.encode("a", {"offsets": {PREDICTIONS: 3}, "state": source.model_state("a")})
    bad_offsets = codec.encode(
        "bad-offsets",
        {"offsets": {PREDICTIONS: "three"}, "state": source.model_state("bad-offsets")},
    )
    unsigned = StateCodec(None).encode("u", {"offsets": {}, "state": source.model_state("a")})
    monitor = Monitor()
    restored = restore_models(
        {"a": (2, good), "bad-offsets": (1, bad_offsets), "u": (3, unsigned), "t": (0, None)},
        codec=codec,
        monitor=monitor,
    )
    assert restored.models == {"a": (2, {PREDICTIONS: 3})}
    assert sorted(restored.rejected) == ["bad-offsets", "u"]
    # a refused record loads nothing: its model is not half restored without its offsets
    assert sorted(monitor.models) == ["a"]
    assert monitor.model_state("a") == source.model_state("a")


# -- a fetch through InputPipeline with a fake producer ----------------------------------------


class FakeProducer:
    """Faust's producer as the pipeline uses it: ``send`` returns a future of the ack."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, topic, key, value, partition, timestamp, headers):
        self.sent.append(
            {
                "topic": topic,
                "key": key,
                "value": value,
                "partition": partition,
                "timestamp": timestamp,
                "headers": dict(headers or ()),
            }
        )
        ack = asyncio.get_running_loop().create_future()
        ack.set_result(None)
        return ack

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["topic"] == topic]


def _prediction(model_id: str, pid: str, *, ts: int = TS, x: float = 1.0) -> Any:
    from schemas import EventDecoder

    return EventDecoder().decode("prediction", _prediction_bytes(model_id, pid, ts=ts, x=x))


def _prediction_bytes(model_id: str, pid: str, *, ts: int = TS, x: float = 1.0) -> bytes:
    return orjson.dumps(
        {
            "model_id": model_id,
            "model_version": "1",
            "prediction_id": pid,
            "timestamp": ts,
            "prediction": True,
            "score": 0.8,
            "features": {"x": x},
        }
    )


def _label_bytes(model_id: str, pid: str) -> bytes:
    return orjson.dumps(
        {"model_id": model_id, "prediction_id": pid, "timestamp": TS, "label": True}
    )


def _record(topic: str, partition: int, offset: int, value: bytes | None, key: bytes | None):
    return ConsumerRecord(topic, partition, offset, TS + offset, 0, key, value, None, 0, 0, ())


def _pipeline(producer: FakeProducer, *, max_models: int = 1_000) -> InputPipeline:
    settings = Settings(state_key=b"k" * 32, max_models=max_models)
    pipeline = InputPipeline(
        producer=producer, settings=settings, monitor=Monitor(max_models=max_models)
    )
    pipeline.router = Router(PARTITIONS, resume=pipeline.book.resume)
    return pipeline


def _models_on(partition: int, count: int) -> list[str]:
    router = Router(PARTITIONS)
    found = (f"m{i}" for i in range(10_000))
    return [m for m in found if router.home(m) == partition][:count]


def test_a_fetch_is_routed_dead_lettered_and_applied_by_one_rule():
    async def run() -> None:
        producer = FakeProducer()
        pipeline = _pipeline(producer)
        topics = pipeline.settings.topics
        here, there = _models_on(0, 1)[0], _models_on(2, 1)[0]
        records = [
            _record(topics.predictions, 0, 0, _prediction_bytes(here, "p0"), here.encode()),
            _record(topics.predictions, 0, 1, b'{"model_id": 7}', here.encode()),
            _record(topics.predictions, 0, 2, _prediction_bytes(there, "q0"), None),
            _record(topics.predictions, 0, 3, None, here.encode()),
            _record(
                topics.predictions,
                0,
                4,
                b"[" + _prediction_bytes(here, "p1") + b", 5]",
                here.encode(),
            ),
        ]
        label = _record(topics.labels, 0, 0, _label_bytes(here, "p0"), here.encode())
        await pipeline.handle(
            {
                TopicPartition(topics.predictions, 0): records,
                TopicPartition(topics.labels, 0): [label],
            }
        )
        await pipeline.outputs.flush()

        stats = pipeline.stats.events
        assert stats[(topics.predictions, "ok")] == 2
        assert stats[(topics.predictions, "rerouted")] == 1
        assert stats[(topics.predictions, "deadletter")] == 3
        assert stats[(topics.labels, "ok")] == 1
        dead = producer.on(topics.deadletter)
        assert [
            (d["headers"]["driftline-source-offset"], d["headers"].get("driftline-source-index"))
            for d in dead
        ] == [
            (b"1", None),
            (b"3", None),
            (b"4", b"1"),
        ]
        assert {d["headers"]["driftline-error-reason"] for d in dead} >= {b"wrong_type"}
        (moved,) = [m for m in producer.on(topics.predictions)]
        assert moved["partition"] == 2
        assert moved["key"] == there.encode()
        assert pipeline.stats.rerouted[(topics.predictions, "unkeyed")] == 1
        assert pipeline.monitor.counters.join.get("joined") == 1
        assert pipeline.book.positions == {
            TopicPartition(topics.predictions, 0): 5,
            TopicPartition(topics.labels, 0): 1,
        }
        assert pipeline.book.dirty == {here}

    asyncio.run(run())


def test_events_the_core_refuses_are_dead_lettered_and_rerouted_ones_are_not():
    async def run() -> None:
        producer = FakeProducer()
        pipeline = _pipeline(producer, max_models=1)
        topics = pipeline.settings.topics
        first, second = _models_on(0, 2)
        elsewhere = _models_on(1, 1)[0]
        records = [
            _record(topics.predictions, 0, 0, _prediction_bytes(first, "a"), first.encode()),
            _record(topics.predictions, 0, 1, _prediction_bytes(second, "b"), second.encode()),
            _record(topics.predictions, 0, 2, _prediction_bytes(elsewhere, "c"), None),
            _record(topics.predictions, 0, 3, _prediction_bytes(second, "d"), second.encode()),
        ]
        await pipeline.handle({TopicPartition(topics.predictions, 0): records})
        await pipeline.outputs.flush()
        dead = producer.on(topics.deadletter)
        assert [d["headers"]["driftline-source-offset"] for d in dead] == [b"1", b"3"]
        assert pipeline.stats.events[(topics.predictions, "ok")] == 1
        assert pipeline.stats.events[(topics.predictions, "deadletter")] == 2
        assert pipeline.stats.events[(topics.predictions, "rerouted")] == 1

    asyncio.run(run())


def test_a_restart_from_a_checkpoint_applies_each_event_once(monkeypatch):
    # Stall checks keep wall-clock arrival times in the state: one clock for both workers.
    monkeypatch.setattr(time, "time", lambda: 1_796_000_000.0)

    async def run() -> None:
        producer = FakeProducer()
        pipeline = _pipeline(producer)
        topics = pipeline.settings.topics
        model = _models_on(3, 1)[0]
        tp3 = TopicPartition(topics.predictions, 3)
        pipeline.book.assign({3})
        batch = [
            _record(topics.predictions, 3, i, _prediction_bytes(model, f"p{i}", x=i), None)
            for i in range(6)
        ]
        await pipeline.handle({tp3: batch[:4]})
        assert await pipeline.checkpoint() == {tp3: 4}
        await pipeline.handle({tp3: batch[4:]})  # applied, then the worker dies
        expected = pipeline.monitor.model_state(model)

        # the next owner restores from the state topic and reads again from the commit: here,
        # from an older offset still (a commit that did not make it), 0
        records = [
            (m["partition"], m["key"], m["value"]) for m in producer.on(pipeline.state_topic)
        ]
        restarted = _pipeline(FakeProducer())
        restarted.book.assign({3})
        restored = restore_models(
            latest_states(records), codec=restarted.codec, monitor=restarted.monitor
        )
        for model_id, (partition, offsets) in restored.models.items():
            restarted.book.restored(model_id, partition, offsets)
        await restarted.handle({tp3: batch})
        stats = restarted.stats.events
        assert stats[(topics.predictions, "skipped")] == 4
        assert stats[(topics.predictions, "ok")] == 2
        assert restarted.monitor.model_state(model) == expected

    asyncio.run(run())
