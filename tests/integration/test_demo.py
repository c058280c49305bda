"""The README's first command: ``driftline demo`` runs to the end and catches every incident."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_demo_runs_to_the_end_and_catches_every_scripted_incident(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DRIFTLINE_BOOTSTRAP_SERVERS"}
    env["DRIFTLINE_CACHE_DIR"] = str(tmp_path)  # its own broker, data and logs
    jars = os.environ.get("DRIFTLINE_KAFKA_LIBS")
    if jars is None:
        from stream.kafka_broker import libs_dir

        env["DRIFTLINE_KAFKA_LIBS"] = str(libs_dir())
    result = subprocess.run(
        [sys.executable, "-m", "stream.cli", "demo", "--speed", "4"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    for incident in (
        "concept drift",
        "bad rollout",
        "covariate shift",
        "model goes silent",
        "slow rollout",
        "failing segment",
        "estimated drop",
        "malformed events",
    ):
        assert any(
            line.strip().startswith("CAUGHT") and incident in line for line in out.splitlines()
        ), incident
    assert "no false alarm" in out
    # The status page: its address printed, every caught incident on its model's timeline.
    assert "status page at http://127.0.0.1:" in out
    assert any(
        line.strip().startswith("SHOWN") and "on the status page" in line
        for line in out.splitlines()
    ), out[-2000:]
    assert "COMMAND rollback  churn-predictor: 2 -> 1" in out
    assert "COMMAND rollback  ranker: 2 -> 1  (latency_rollout_test" in out
    assert "COMMAND retrain   fraud-detector" in out
    assert "stopping the local broker" in out
    # Without --mlflow it says how to see the rollbacks carried out by driftline act.
    assert "driftline demo --mlflow (needs pip install mlflow)" in out
    # the demo's broker is gone: nothing left listening
    assert "driftline demo: broker ready" in out
