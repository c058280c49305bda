"""A real Prometheus server scrapes a running worker, with the shipped alerting rules."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from stream.harness import PrometheusServer
from tests import scenarios
from tests.integration.live import WorkerProcess, produce

pytestmark = [pytest.mark.broker, pytest.mark.prometheus]

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules.yml"


async def test_prometheus_scrapes_the_worker_and_fires_a_drift_rule(
    kafka_bootstrap, topics, tmp_path
):
    worker = WorkerProcess(kafka_bootstrap, topics, tmp_path).start()
    prometheus = PrometheusServer(tmp_path, f"127.0.0.1:{worker.port}", rules=RULES)
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
