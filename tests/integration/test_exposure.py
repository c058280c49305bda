"""What the worker exposes and what it trusts, on the real broker: the HTTP server serves two
pages on the interface it is told, and state records from Kafka are data, never code."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from tests import scenarios
from tests.integration.live import (
    accounted,
    group_offsets,
    inputs,
    produce,
    read_all,
    recent_t0,
)

pytestmark = pytest.mark.broker


def status(url: str, method: str = "GET") -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize("web_ui", [True, False], ids=["page", "no-page"])
def test_only_driftlines_pages_are_served_read_only_and_only_on_the_chosen_interface(
    workers, web_ui
):
    env = {} if web_ui else {"DRIFTLINE_WEB_UI": "0"}
    worker = workers(env=env).start()  # DRIFTLINE_WEB_HOST=127.0.0.1
    assert status(f"{worker.url}/metrics") == 200
    assert status(f"{worker.url}/healthz") == 200
    pages = ("/", "/api/models")
    for path in pages:
        assert status(f"{worker.url}{path}") == (200 if web_ui else 404), path
    # Faust's own pages (router, tables, graph, stats) are all off.
    for path in ("/router/", "/table/", "/graph/", "/stats/", "/signal/", "/metrics/x"):
        assert status(f"{worker.url}{path}") == 404, path
    # Nothing takes input that changes state: only GET is answered.
    for path in ("/metrics", *pages, "/api/models/m"):
        for method in ("POST", "PUT", "DELETE"):
            assert status(f"{worker.url}{path}", method=method) in (404, 405), (method, path)
    # Bound to 127.0.0.1 only: another loopback address of the same host is refused.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", worker.port), timeout=5).close()


async def test_tampered_or_foreign_state_records_are_refused_not_executed(
    kafka_bootstrap, topics, workers, tmp_path: Path
):
    key_file = tmp_path / "state.key"
    key_file.write_bytes(b"a state key made for this test, 32+ bytes long")
    env = {"DRIFTLINE_STATE_KEY_FILE": str(key_file)}
    t0 = recent_t0()
    records = scenarios.concept_drift(n=1500, t0=t0) + scenarios.covariate_shift(n=1500, t0=t0)
    await produce(kafka_bootstrap, records, topics)
    first = workers(env=env).start()
    first.wait_for(lambda: accounted(first, topics)["ok"] == len(records), what="every event")
    assert first.stop() == 0  # a clean stop: both models' states saved
    committed, end = await group_offsets(kafka_bootstrap, first.app_id, inputs(topics))
    assert committed == end

    state_topic = f"{first.app_id}.state"
    saved = {r.key: r.value for r in await read_all(kafka_bootstrap, state_topic)}
    assert set(saved) == {b"m-concept", b"m-shift"}
    assert all(blob.startswith(b"DLS1") for blob in saved.values())  # signed
    # m-concept: its signed record with the offsets changed, the MAC left as it was.
    forged = saved[b"m-concept"].replace(b'"offsets":{', b'"offsets":{"x":0,', 1)
    assert forged != saved[b"m-concept"]
    # m-shift: a pickle that would create a file if anything unpickled it.
    marker = tmp_path / "pwned"
    payload = f"cposix\nsystem\n(S'touch {marker}'\ntR.".encode()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(state_topic, forged, key=b"m-concept")
        await producer.send_and_wait(state_topic, payload, key=b"m-shift")
    finally:
        await producer.stop()

    second = workers(app_id=first.app_id, env=env).start()
    second.wait_for(
        lambda: second.sample("driftline_state_total", outcome="rejected") == 2,
        what="both records refused",
    )
    assert second.sample("driftline_state_total", outcome="restored") == 0
    assert not marker.exists()
    log = second.log_path.read_text()
    assert "state of m-concept rejected" in log
    assert "state of m-shift rejected" in log
    # Refused state means a fresh start for those models, not a stop: new events are applied.
    more = scenarios.covariate_shift(n=300, t0=t0 + 200_000, seed=9)
    more = [(k, p.replace(b'"m-shift-', b'"m-shift-late-')) for k, p in more]
    await produce(kafka_bootstrap, more, topics)
    second.wait_for(lambda: accounted(second, topics)["ok"] == 300, what="new events")
    assert second.health()["status"] == "ok"
