"""``driftline act`` as users run it (a process of its own) against the real broker, a real
MLflow tracking server and a real HTTP receiver that reads requests with the CloudEvents SDK."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import murmur2

from stream.harness import ActProcess, free_port
from stream.mlflow_server import register_versions
from tests.act_cases import now_ms, parsed_by_sdk, retrain, rollback, same_event, stall_alert
from tests.integration.live import group_offsets, read_all, wait_committed

pytestmark = [pytest.mark.broker, pytest.mark.slow]


# -- helpers ---------------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def produce(bootstrap: str, topic: str, *records: tuple[str, bytes]) -> None:
    """Records keyed by model_id, as the worker publishes commands."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()


async def until(predicate: Callable[[], Any], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def dead_letters(bootstrap: str, topic: str, count: int, within: float = 30.0) -> list:
    deadline = time.monotonic() + within
    while True:
        records = await read_all(bootstrap, topic, settle=0.5)
        if len(records) >= count or time.monotonic() > deadline:
            return records
        await asyncio.sleep(0.3)


def headers_of(record: Any) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}


def done(act: ActProcess, action: str, outcome: str = "done") -> float:
    return act.sample("driftline_actions_total", action=action, outcome=outcome)


def alias_version(client: Any, name: str, alias: str = "champion") -> str:
    return str(client.get_model_version_by_alias(name, alias).version)


def partition(key: str, partitions: int = 4) -> int:
    """The partition Kafka's default partitioner gives ``key`` (murmur2)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def event_id(command: bytes) -> str:
    return orjson.loads(command)["id"]


class Receiver:
    """A CloudEvents HTTP receiver: records every request; answers ``status``."""

    def __init__(self, port: int | None = None, status: int = 200) -> None:
        self.port = port or free_port()
        self.status = status
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events?token=secret-in-url"

    async def start(self) -> Receiver:
        async def receive(request: web.Request) -> web.Response:
            self.requests.append((dict(request.headers), await request.read()))
            return web.Response(status=self.status)

        app = web.Application()
        app.router.add_post("/events", receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def http_config(url: str, **extra: Any) -> dict[str, Any]:
    return {"url": url, **extra}


def yaml_config(actions: dict[str, Any]) -> str:
    # JSON is YAML: the configuration as the tests build it, exactly.
    return json.dumps({"actions": actions})


FAST_RETRY = {"first_delay": "100ms", "max_delay": "500ms", "attempts": 8, "give_up_after": "3s"}


# -- MLflow ----------------------------------------------------------------------------------


async def test_a_rollback_moves_the_alias_once_and_refusals_are_dead_lettered(
    kafka_bootstrap, topics, acts, mlflow_url
):
    name = unique("churn")
    client = register_versions(mlflow_url, name, 2, alias="champion")
    act = acts(
        config=yaml_config(
            {
                "allow": {name: ["champion"]},
                "defaults": {"mlflow": {"tracking_uri": mlflow_url, "timeout": "10s"}},
            }
        )
    ).start()
    command = rollback(name, "2", "1")
    await produce(kafka_bootstrap, topics.commands, (name, command))
    await until(lambda: done(act, "mlflow_rollback") == 1, 60, "the rollback")
    assert alias_version(client, name) == "1"
    tags = client.get_model_version(name, "2").tags
    assert tags["driftline.rollback.command_id"] == event_id(command)
    assert tags["driftline.rollback.reason"] == "worse_than_previous_version"
    assert json.loads(tags["driftline.rollback.evidence"])["details"] == {"errors_after": 40}

    # Someone promotes 2 again by hand; the same command (same id) again does nothing.
    client.set_registered_model_alias(name, "champion", "2")
    too_old = rollback(name, "1", "2", at_ms=now_ms() - 2 * 3_600_000)  # another id
    await produce(
        kafka_bootstrap,
        topics.commands,
        (name, command),
        ("billing", rollback("billing", "2", "1")),
        (name, too_old),
        (name, b"{not json"),
    )
    await until(lambda: done(act, "mlflow_rollback", "duplicate") == 1, 30, "the repeat")
    letters = await dead_letters(kafka_bootstrap, topics.deadletter, 3)
    assert alias_version(client, name) == "2"
    assert done(act, "mlflow_rollback") == 1
    reasons = sorted(headers_of(r)["driftline-error-reason"] for r in letters)
    assert reasons == ["invalid_command", "not_allowed", "too_old"]
    for record in letters:
        headers = headers_of(record)
        assert headers["driftline-source-topic"] == topics.commands
        assert int(headers["driftline-source-offset"]) >= 0
        assert headers["driftline-error"]
    by_reason = {headers_of(r)["driftline-error-reason"]: r for r in letters}
    assert by_reason["not_allowed"].key == b"billing"
    assert by_reason["too_old"].value == too_old
    await wait_committed(kafka_bootstrap, act.app_id + ".act", [topics.commands], within=20)


async def test_a_restart_in_the_crash_window_acts_once(
    kafka_bootstrap, topics, acts, mlflow_url, tmp_path
):
    name, hooked = unique("ranker"), unique("hooked")
    client = register_versions(mlflow_url, name, 2, alias="champion")
    receiver = await Receiver().start()
    config = yaml_config(
        {
            "allow": {name: ["champion"]},
            "defaults": {"mlflow": {"tracking_uri": mlflow_url}},
            "models": {hooked: {"mlflow": None, "http": http_config(receiver.url)}},
        }
    )
    app_id = unique("act")
    crashing = {"DRIFTLINE_ACT_FAULT": "kill_after_effect"}
    try:
        # MLflow: killed right after the alias moved, before the outcome was recorded.
        first = acts(app_id=app_id, config=config, env=crashing).start()
        await produce(kafka_bootstrap, topics.commands, (name, rollback(name, "2", "1")))
        await until(lambda: first.process.poll() is not None, 60, "the first act to die")
        assert first.process.returncode == -signal.SIGKILL
        assert alias_version(client, name) == "1"
        # Started again: it finds the intent, reads the registry, finishes without acting.
        second = acts(app_id=app_id, config=config).start()
        await until(lambda: done(second, "mlflow_rollback", "recovered") == 1, 30, "recovery")
        assert done(second, "mlflow_rollback") == 0
        assert alias_version(client, name) == "1"
        await wait_committed(kafka_bootstrap, app_id + ".act", [topics.commands], within=20)
        second.stop()

        # HTTP: killed right after the receiver answered; the event is not sent again.
        third = acts(app_id=app_id, config=config, env=crashing).start()
        command = retrain(hooked)
        await produce(kafka_bootstrap, topics.commands, (hooked, command))
        await until(lambda: third.process.poll() is not None, 60, "the third act to die")
        assert len(receiver.requests) == 1
        fourth = acts(app_id=app_id, config=config).start()
        await until(lambda: done(fourth, "http_retrain", "unknown") == 1, 30, "the unknown")
        (letter,) = await dead_letters(kafka_bootstrap, topics.deadletter, 1)
        assert headers_of(letter)["driftline-error-reason"] == "outcome_unknown"
        assert headers_of(letter)["driftline-action"] == "http_retrain"
        assert letter.value == command
        assert len(receiver.requests) == 1
        assert "secret-in-url" not in fourth.tail(200)
    finally:
        await receiver.stop()


# -- HTTP ------------------------------------------------------------------------------------


async def test_the_event_arrives_intact_in_both_modes_with_auth_and_signature(
    kafka_bootstrap, topics, acts, tmp_path
):
    receiver = await Receiver().start()
    key_file = tmp_path / "signing-key"
    key_file.write_text("file-k3y\n")
    signed = {"header": "X-Driftline-Signature", "secret": {"file": str(key_file)}}
    auth = {"Authorization": {"env": "DL_HOOK_AUTH"}}
    config = yaml_config(
        {
            "allow": {"binary-m": []},
            "models": {
                "structured-m": {"http": http_config(receiver.url, headers=auth, signature=signed)},
                "binary-m": {
                    "http": http_config(receiver.url, mode="binary", headers=auth, signature=signed)
                },
                # Asks for alerts: act reads the alerts topic too.
                "alerted-m": {
                    "http": http_config(
                        receiver.url, headers=auth, signature=signed, forward=["alerts"]
                    )
                },
            },
        }
    )
    act = acts(config=config, env={"DL_HOOK_AUTH": "Bearer env-t0ken"}).start()
    sent = {"structured-m": retrain("structured-m"), "binary-m": rollback("binary-m", "2", "1")}
    sent["alerted-m"] = stall_alert("alerted-m")
    try:
        await produce(kafka_bootstrap, topics.commands, *list(sent.items())[:2])
        await produce(kafka_bootstrap, topics.alerts, ("alerted-m", sent["alerted-m"]))
        await until(lambda: len(receiver.requests) == 3, 30, "three requests")
        for headers, body in receiver.requests:
            attributes, data = parsed_by_sdk(headers, body)
            assert same_event(sent[attributes["subject"]], attributes, data)
            binary = attributes["subject"] == "binary-m"
            assert ("ce-id" in {h.lower() for h in headers}) == binary
            assert headers["Authorization"] == "Bearer env-t0ken"
            expected = hmac.new(b"file-k3y", body, hashlib.sha256).hexdigest()
            assert headers["X-Driftline-Signature"] == f"sha256={expected}"
        assert done(act, "http_retrain") == 1
        assert done(act, "http_rollback") == 1
        assert done(act, "http_alerts") == 1
        log = act.tail(500)
        for secret in ("env-t0ken", "file-k3y", "secret-in-url"):
            assert secret not in log
    finally:
        await receiver.stop()


async def test_a_receiver_down_for_30_s_gets_the_event_once_it_is_back(
    kafka_bootstrap, topics, acts
):
    receiver, other = Receiver(), await Receiver().start()
    # A model whose commands land in another partition, with a receiver that is up.
    quick = next(f"quick-{i}" for i in range(100) if partition(f"quick-{i}") != partition("late-m"))
    retry = {"first_delay": "500ms", "max_delay": "2s", "attempts": 100, "give_up_after": "50s"}
    config = yaml_config(
        {
            "retry": retry,
            "defaults": {"http": http_config(receiver.url)},
            "models": {quick: {"http": http_config(other.url)}},
        }
    )
    first = acts(config=config).start()
    command = retrain("late-m")
    await produce(kafka_bootstrap, topics.commands, ("late-m", command))
    await until(lambda: first.sample("driftline_act_retries_in_flight") == 1, 20, "a retry")
    down_since = time.monotonic()
    # Retrying holds up its own partition only.
    await produce(kafka_bootstrap, topics.commands, (quick, retrain(quick)))
    await until(lambda: len(other.requests) == 1, 10, "the other partition's command")
    assert done(first, "http_retrain") == 1  # the quick one only
    # Stopped meanwhile (a deploy): no attempt ever connected, so the next act sends it as
    # new, neither twice nor as outcome_unknown.
    assert first.stop() == 0
    act = acts(app_id=first.app_id, config=config).start()
    await until(lambda: act.sample("driftline_act_retries_in_flight") == 1, 20, "a retry again")
    await asyncio.sleep(30 - (time.monotonic() - down_since))
    await receiver.start()
    try:
        await until(lambda: done(act, "http_retrain") == 1, 10, "delivery after the outage")
        assert time.monotonic() - down_since >= 30
        assert len(receiver.requests) == 1
        assert receiver.requests[0][1] == command
        assert len(other.requests) == 1
        assert act.sample("driftline_act_retries_in_flight") == 0
        assert await read_all(kafka_bootstrap, topics.deadletter, settle=0.5) == []
    finally:
        await receiver.stop()
        await other.stop()


async def test_a_receiver_that_never_comes_back_leads_to_a_dead_letter(
    kafka_bootstrap, topics, acts
):
    gone = f"http://127.0.0.1:{free_port()}/events"
    config = yaml_config({"retry": FAST_RETRY, "defaults": {"http": http_config(gone)}})
    act = acts(config=config).start()
    command = retrain("lonely-m")
    started = time.monotonic()
    await produce(kafka_bootstrap, topics.commands, ("lonely-m", command))
    (letter,) = await dead_letters(kafka_bootstrap, topics.deadletter, 1)
    assert time.monotonic() - started < 15
    headers = headers_of(letter)
    assert headers["driftline-error-reason"] == "retries_exhausted"
    assert headers["driftline-action"] == "http_retrain"
    assert letter.value == command
    assert done(act, "http_retrain", "failed") == 1
    # Given up for good: a restart does not try again.
    act.stop()
    again = acts(app_id=act.app_id, config=config).start()
    await produce(kafka_bootstrap, topics.commands, ("lonely-m", command))
    await until(lambda: done(again, "http_retrain", "duplicate") == 1, 30, "the duplicate")


async def test_a_dry_run_prints_what_it_would_do_and_changes_nothing(
    kafka_bootstrap, topics, acts, mlflow_url
):
    name = unique("dry")
    client = register_versions(mlflow_url, name, 2, alias="champion")
    config = yaml_config(
        {"allow": {name: ["champion"]}, "defaults": {"mlflow": {"tracking_uri": mlflow_url}}}
    )
    act = acts(config=config, dry_run=True).start()
    command = rollback(name, "2", "1")
    await produce(kafka_bootstrap, topics.commands, (name, command), ("other", b"[]"))
    await until(lambda: done(act, "mlflow_rollback", "dry_run") == 1, 30, "the dry run")
    await until(lambda: '"refused": "invalid_command"' in act.tail(200), 10, "the refusal")
    lines = [json.loads(line) for line in act.tail(200).splitlines() if line.startswith("{")]
    (would,) = [line for line in lines if line.get("id") == event_id(command)]
    assert would["would"].endswith(
        "set alias 'champion' to version 1; tag version 2 with "
        "driftline.rollback.command_id, driftline.rollback.evidence, "
        "driftline.rollback.reason, driftline.rollback.time, "
        "driftline.rollback.to_version"
    )
    assert alias_version(client, name) == "2"
    assert await read_all(kafka_bootstrap, topics.deadletter, settle=0.5) == []
    committed, _ = await group_offsets(kafka_bootstrap, act.app_id + ".act", [topics.commands])
    assert committed == 0
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        assert f"{topics.commands}.acted" not in await admin.list_topics()  # nothing recorded
    finally:
        await admin.close()
