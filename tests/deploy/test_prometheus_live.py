"""A real Prometheus server scrapes a running worker, with the shipped alerting rules."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests import scenarios
from tests.conftest import free_port
from tests.integration.live import WorkerProcess, produce

pytestmark = [pytest.mark.broker, pytest.mark.prometheus]

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules.yml"


class PrometheusServer:
    def __init__(self, workdir: Path, target: str) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is needed (Debian package prometheus; .ci/run installs it)"
        self.port = free_port()
        config = workdir / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: [{RULES}]\n"
            "scrape_configs:\n"
            "  - job_name: driftline\n"
            f"    static_configs: [{{targets: ['{target}']}}]\n"
        )
        self.log = (workdir / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("prometheus did not become ready")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, **params: str) -> dict:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=5) as r:
            body = orjson.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def wait(self, what: str, predicate, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.5)
        raise TimeoutError(f"Prometheus never saw {what}")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)


async def test_prometheus_scrapes_the_worker_and_fires_a_drift_rule(
    kafka_bootstrap, topics, tmp_path
):
    worker = WorkerProcess(kafka_bootstrap, topics, tmp_path).start()
    prometheus = PrometheusServer(tmp_path, f"127.0.0.1:{worker.port}")
    try:
        prometheus.wait(
            "the worker up",
            lambda: any(s["value"][1] == "1" for s in prometheus.query('up{job="driftline"}')),
        )
        t0 = int(time.time() * 1000) - 3_600_000
        n = await produce(kafka_bootstrap, scenarios.covariate_shift(t0=t0), topics)
        prometheus.wait(
            "every event",
            lambda: (
                [
                    s["value"][1]
                    for s in prometheus.query(
                        f'driftline_events_total{{topic="{topics.predictions}",outcome="ok"}}'
                    )
                ]
                == [str(n)]
            ),
        )

        def drift_alert() -> list[dict]:
            return [
                a
                for a in prometheus.api("alerts")["alerts"]
                if a["labels"]["alertname"] == "DriftlineDataDrift"
            ]

        prometheus.wait(
            "DriftlineDataDrift firing", lambda: any(a["state"] == "firing" for a in drift_alert())
        )
        [alert] = drift_alert()
        assert alert["labels"]["model_id"] == "m-shift"
        assert alert["labels"]["feature"] == "f1"
        assert alert["labels"]["severity"] == "warning"
        assert "f1" in alert["annotations"]["summary"]

        names = {s["metric"]["__name__"] for s in prometheus.query('{__name__=~"driftline_.+"}')}
        for family in (
            "driftline_events_total",
            "driftline_drift_statistic",
            "driftline_drift_threshold",
            "driftline_drift_detected",
            "driftline_seconds_since_last_event",
            "driftline_consumer_lag",
            "driftline_models",
            "driftline_alerts_total",
        ):
            assert family in names, family
        statistic = prometheus.query(
            'driftline_drift_statistic{model_id="m-shift",signal="feature",feature="f1"}'
        )
        threshold = prometheus.query(
            'driftline_drift_threshold{model_id="m-shift",signal="feature",feature="f1"}'
        )
        assert float(statistic[0]["value"][1]) > float(threshold[0]["value"][1]) == 0.25
        # the other rules stay quiet
        others = [
            a["labels"]["alertname"]
            for a in prometheus.api("alerts")["alerts"]
            if a["labels"]["alertname"] != "DriftlineDataDrift"
        ]
        assert others == []
    finally:
        prometheus.stop()
        worker.stop()
