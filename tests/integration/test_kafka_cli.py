"""`driftline kafka start|status|stop` against the real broker, twice in a row."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from tests.conftest import free_port

pytestmark = pytest.mark.broker


def driftline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args], capture_output=True, text=True, timeout=180
    )


async def broker_answers(bootstrap: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        return isinstance(await admin.list_topics(), list)
    finally:
        await admin.close()


async def test_start_then_stop_works_twice_in_a_row(tmp_path):
    port, controller = free_port(), free_port()
    where = ["--port", str(port), "--controller-port", str(controller), "--data-dir", str(tmp_path)]
    for _ in range(2):
        started = driftline("kafka", "start", *where)
        assert started.returncode == 0, started.stderr
        assert f"127.0.0.1:{port}" in started.stdout
        status = driftline("kafka", "status", *where)
        assert status.returncode == 0
        assert json.loads(status.stdout)["running"] is True
        assert await broker_answers(f"127.0.0.1:{port}")

        again = driftline("kafka", "start", *where)
        assert again.returncode == 0
        assert "already running" in again.stdout

        stopped = driftline("kafka", "stop", *where)
        assert stopped.returncode == 0
        assert "Kafka stopped" in stopped.stdout
        after = driftline("kafka", "status", *where)
        assert after.returncode == 3
        assert json.loads(after.stdout)["running"] is False
    # the data dir was formatted once, then reused by the second start
    assert (tmp_path / "kraft" / "meta.properties").is_file()


def test_a_taken_port_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = driftline("kafka", "start", "--port", str(port), "--data-dir", str(tmp_path))
    assert result.returncode == 1
    assert "already taken" in result.stderr
