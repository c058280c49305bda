"""The event contract over a real Kafka broker: every event kind produced, consumed and decoded,
and malformed records reported precisely on the dead-letter topic."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas import (
    EventDecoder,
    Evidence,
    decode_alert,
    decode_command,
    encode,
    make_alert,
    make_retrain,
    make_rollback,
)
from stream.deadletter import decode_record
from tests.contract_cases import TS, VALID

pytestmark = pytest.mark.broker


async def consume(bootstrap: str, topic: str, count: int, seconds: float = 30.0) -> list:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list = []
    try:
        async with asyncio.timeout(seconds):
            while len(records) < count:
                batch = await consumer.getmany(timeout_ms=500)
                for messages in batch.values():
                    records.extend(messages)
    finally:
        await consumer.stop()
    return records


@pytest.fixture
async def producer(kafka_bootstrap):
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    yield producer
    await producer.stop()


@pytest.mark.parametrize("kind", ["prediction", "input", "label"])
async def test_input_events_round_trip_through_kafka(kafka_bootstrap, topics, producer, kind):
    topic = {"prediction": topics.predictions, "input": topics.inputs, "label": topics.labels}[kind]
    docs = VALID[kind]
    for doc in docs:
        await producer.send_and_wait(topic, orjson.dumps(doc), key=doc["model_id"].encode())
    # and the high-volume form: one message holding a JSON array of events
    await producer.send_and_wait(topic, orjson.dumps(docs), key=docs[0]["model_id"].encode())

    records = await consume(kafka_bootstrap, topic, len(docs) + 1)
    decoder = EventDecoder()
    events = []
    for record in records:
        decoded, dead = decode_record(
            decoder,
            kind,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
        )
        assert dead == []
        assert all(e.model_id == record.key.decode() for e in decoded[:1])
        events.extend(decoded)
    assert len(events) == 2 * len(docs)
    by_id = {}
    for event in events:
        by_id.setdefault((event.model_id, getattr(event, "prediction_id", None)), []).append(event)
    for doc in docs:
        twins = by_id[(doc["model_id"], doc.get("prediction_id"))]
        assert len(twins) == 2
        assert twins[0] == twins[1]


async def test_alerts_and_commands_round_trip_through_kafka(kafka_bootstrap, topics, producer):
    evidence = Evidence(detector="adwin", statistic=0.3, threshold=0.1, signal="error")
    alert = make_alert(
        "concept_drift",
        model_id="m",
        model_version="2",
        status="firing",
        signal="error",
        detector="adwin",
        statistic=0.3,
        threshold=0.1,
        event_time_ms=TS,
        started_at_ms=TS,
        summary="error rate rose",
        severity="critical",
    )
    commands = [
        make_retrain(
            model_id="m",
            model_version="2",
            reason="concept_drift",
            evidence=evidence,
            window_start_ms=TS,
            decided_at_ms=TS + 1,
            episode_ms=TS,
        ),
        make_rollback(
            model_id="m",
            from_version="3",
            to_version="2",
            reason="worse",
            evidence=evidence,
            decided_at_ms=TS,
        ),
    ]
    await producer.send_and_wait(topics.alerts, encode(alert), key=b"m")
    for command in commands:
        await producer.send_and_wait(topics.commands, encode(command), key=b"m")

    [alert_record] = await consume(kafka_bootstrap, topics.alerts, 1)
    assert decode_alert(alert_record.value) == alert
    command_records = await consume(kafka_bootstrap, topics.commands, 2)
    assert [decode_command(r.value) for r in command_records] == commands


async def test_malformed_records_land_in_deadletter_with_precise_headers(
    kafka_bootstrap, topics, producer
):
    good = VALID["prediction"][0]
    bad_values = [
        b"not json at all",
        orjson.dumps(dict(good, timestamp=1795255200)),  # seconds, not milliseconds
        orjson.dumps(dict(good, features={"amount": "x" * 2000})),
        orjson.dumps([good, dict(good, model_id="bad id")]),  # one good, one bad in an array
    ]
    for value in bad_values:
        await producer.send_and_wait(topics.predictions, value, key=b"fraud", partition=0)
    await producer.send_and_wait(topics.predictions, None, key=b"fraud", partition=0)

    records = await consume(kafka_bootstrap, topics.predictions, len(bad_values) + 1)
    decoder = EventDecoder()
    accepted = 0
    for record in records:
        events, dead = decode_record(
            decoder,
            "prediction",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
        )
        accepted += len(events)
        for letter in dead:
            await producer.send_and_wait(
                topics.deadletter, letter.value, key=letter.key, headers=letter.headers
            )
    assert accepted == 1  # the good element of the array message

    letters = await consume(kafka_bootstrap, topics.deadletter, 5)
    seen = []
    for letter in letters:
        headers = {k: v.decode() for k, v in letter.headers}
        assert headers["driftline-source-topic"] == topics.predictions
        assert headers["driftline-source-partition"] == "0"
        assert int(headers["driftline-source-offset"]) in range(5)
        assert headers["driftline-error"].startswith(headers["driftline-error-path"] + ": ")
        seen.append(
            (
                int(headers["driftline-source-offset"]),
                headers.get("driftline-source-index"),
                headers["driftline-error-reason"],
                headers["driftline-error-path"],
                letter.value,
            )
        )
    seen.sort()
    assert [s[:4] for s in seen] == [
        (0, None, "invalid_json", "$"),
        (1, None, "invalid_value", "$.timestamp"),
        (2, None, "too_long", "$.features.amount"),
        (3, "1", "invalid_value", "$[1].model_id"),
        (4, None, "invalid_json", "$"),
    ]
    # the original bytes are kept: the whole record, or the rejected array element
    assert seen[0][4] == bad_values[0]
    assert orjson.loads(seen[3][4])["model_id"] == "bad id"
