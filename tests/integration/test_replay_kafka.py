"""``driftline replay --from-kafka``: the input topics over a time range, read without a
consumer group, give the CloudEvents a file of the same records gives."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from stream.harness import topic_environment
from stream.replay import replay_file
from tests import scenarios
from tests.core.test_golden import CONFIG, lines

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]


async def produce_at_event_time(bootstrap: str, records, topics) -> None:
    """Each record keyed by its model, stamped with its event's time (as a model server that
    sets the record timestamp does)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for kind, payload in records:
            event = orjson.loads(payload)
            await producer.send(
                getattr(topics, kind),
                payload,
                key=event["model_id"].encode(),
                timestamp_ms=event["timestamp"],
            )
        await producer.flush()
    finally:
        await producer.stop()


def run_cli(arguments: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """``driftline replay ARGUMENTS`` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", "replay", *arguments],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=300,
        check=False,
    )


async def groups(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {g[0] for g in await admin.list_consumer_groups()}
    finally:
        await admin.close()


async def test_a_time_range_of_the_topics_replays_as_a_file_of_it(
    kafka_bootstrap, topics, tmp_path
):
    records = scenarios.rollout() + scenarios.covariate_shift(n=3000)
    records.sort(key=lambda r: orjson.loads(r[1])["timestamp"])
    await produce_at_event_time(kafka_bootstrap, records, topics)
    # From the 1,000th record's time to the last's (excluded): the rollback and the drift
    # are inside.
    times = [orjson.loads(v)["timestamp"] for _, v in records]
    since, until = times[1000], times[-1]
    inside = [r for r, t in zip(records, times, strict=True) if since <= t < until]
    path = tmp_path / "inside.jsonl"
    path.write_bytes(b"\n".join(lines(inside)) + b"\n")
    expected = io.BytesIO()
    replay_file(path, expected, config=CONFIG)
    assert b"io.driftline.command.rollback" in expected.getvalue()
    assert b"io.driftline.alert.data_drift" in expected.getvalue()

    config = tmp_path / "config.yaml"
    config.write_text("defaults: {}\n")
    before = await groups(kafka_bootstrap)
    out = tmp_path / "out.jsonl"
    env = {
        **os.environ,
        "DRIFTLINE_BOOTSTRAP_SERVERS": kafka_bootstrap,
        **topic_environment(topics),
    }
    done = run_cli(
        [
            "--from-kafka",
            "--since",
            str(since),
            "--until",
            str(until),
            "--out",
            str(out),
        ],
        env,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    # (Records of one millisecond on two partitions may come in either order: compare sets.)
    assert sorted(out.read_bytes().splitlines()) == sorted(expected.getvalue().splitlines())
    assert f"replayed {len(inside)} records" in done.stderr.decode()
    assert await groups(kafka_bootstrap) == before  # no group joined


def test_an_unreachable_broker_is_one_clear_line(tmp_path):
    env = {**os.environ, "DRIFTLINE_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    done = run_cli(["--from-kafka", "--since", "0"], env)
    assert done.returncode == 2
    assert done.stderr.decode().startswith("driftline: cannot read the input topics at 127.0.0.1:1")
