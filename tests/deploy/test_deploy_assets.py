"""The deployment assets under deploy/ parse, agree with each other, and agree with driftline.

Nothing here needs Docker, Kubernetes, Grafana or a broker: these are structural checks. The
metric names the dashboard and the alerting rules query are checked against what driftline's
own collector exposes after processing real events.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from detectors.config import MonitorConfig
from detectors.monitor import Monitor
from schemas import REASONS, Label, Prediction, Topics
from stream.metrics import DriftlineMetrics
from stream.pipeline import PipelineStats
from stream.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "driftline-dashboard.json"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
KUBERNETES = DEPLOY / "kubernetes"
RULES = DEPLOY / "prometheus" / "rules.yml"

T0 = 1795255200000
# Digits too: driftline_model_f1.
METRIC = re.compile(r"^(driftline_[a-z0-9_]+|process_[a-z0-9_]+|up)$")
#: Exposed outside driftline's collector: by the client library (Linux) and by Prometheus.
OUTSIDE = {"process_resident_memory_bytes", "up"}


# -- helpers ------------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or Grafana query) refers to."""
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    tokens = re.findall(r"(?<![$\w])[A-Za-z_:][A-Za-z0-9_:]*", unquoted)
    return {token for token in tokens if METRIC.match(token)}


@cache
def collected() -> tuple[frozenset[str], frozenset[str]]:
    """(every name driftline exposes, the names that have samples) after real traffic."""
    monitor = Monitor(max_models=2)
    events: list[Any] = []
    for i in range(1200):
        events.append(
            Prediction(
                model_id="classifier",
                model_version="1",
                prediction_id=f"c{i}",
                timestamp=T0 + i,
                prediction=i % 3 == 0,
                features={"amount": float(i % 17), "country": "FR" if i % 2 else "DE"},
                latency_ms=float(5 + i % 29),
                score=(i % 10) / 10,
            )
        )
        events.append(
            Label(model_id="classifier", prediction_id=f"c{i}", timestamp=T0 + i, label=i % 2 == 0)
        )
        events.append(
            Prediction(
                model_id="regressor",
                model_version="1",
                prediction_id=f"r{i}",
                timestamp=T0 + i,
                prediction=float(i % 11),
                features={"size": float(i % 13)},
            )
        )
        events.append(
            Label(model_id="regressor", prediction_id=f"r{i}", timestamp=T0 + i, label=float(i % 7))
        )
    # A third model is over the cap: counted as refused.
    events.append(
        Prediction(
            model_id="over-the-cap",
            model_version="1",
            prediction_id="x",
            timestamp=T0,
            prediction=True,
        )
    )
    monitor.process(events)

    topics = Topics()
    stats = PipelineStats()
    stats.events[(topics.predictions, "ok")] += 2401
    stats.events[(topics.labels, "ok")] += 2400
    stats.events[(topics.predictions, "deadletter")] += 1
    stats.deadletters[(topics.predictions, REASONS[0])] += 1
    stats.state["saved"] += 2
    exposition = DriftlineMetrics(
        monitor,
        stats,
        topic_of_kind={
            "prediction": topics.predictions,
            "input": topics.inputs,
            "label": topics.labels,
        },
        lag=lambda: {(topics.predictions, 0): 0},
    )
    names: set[str] = set()
    sampled: set[str] = set()
    for family in text_string_to_metric_families(exposition.render().decode()):
        names.add(family.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        for sample in family.samples:
            names.add(sample.name)
            sampled.add(sample.name)
    return frozenset(names), frozenset(sampled)


def exposed() -> frozenset[str]:
    return collected()[0]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def bind_mounts(svc: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of the service's bind mounts (named volumes left out)."""
    out = []
    for volume in svc.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                out.append((volume["source"], volume["target"]))
            continue
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/", "~")):
            out.append((source, target))
    return out


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends in a continuation line"
    out = []
    for line in lines:
        instruction, _, arguments = line.partition(" ")
        out.append((instruction.upper(), arguments.strip()))
    return out


def manifests() -> dict[str, dict[str, Any]]:
    """Kubernetes manifests by kind (one of each kind here)."""
    kustomization = load_yaml(KUBERNETES / "kustomization.yaml")
    out: dict[str, dict[str, Any]] = {}
    for name in kustomization["resources"]:
        for document in yaml.safe_load_all((KUBERNETES / name).read_text()):
            assert document["kind"] not in out, f"two {document['kind']} manifests"
            out[document["kind"]] = document
    return out


def pod_spec() -> dict[str, Any]:
    return manifests()["Deployment"]["spec"]["template"]["spec"]


def container() -> dict[str, Any]:
    (only,) = pod_spec()["containers"]
    return only


def env_of(c: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item.get("value") for item in c.get("env", [])}


def mount_path_of(volume: str) -> str:
    (path,) = [m["mountPath"] for m in container()["volumeMounts"] if m["name"] == volume]
    return path


def volume(name: str) -> dict[str, Any]:
    (found,) = [v for v in pod_spec()["volumes"] if v["name"] == name]
    return found


# -- everything parses ----------------------------------------------------------------------


YAML_FILES = sorted([*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")])
JSON_FILES = sorted(DEPLOY.rglob("*.json"))


def test_the_assets_exist():
    for path in (
        DASHBOARD,
        DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml",
        DEPLOY / "grafana" / "provisioning" / "dashboards" / "driftline.yml",
        DOCKERFILE,
        ROOT / ".dockerignore",
        COMPOSE,
        DEPLOY / "prometheus" / "prometheus-compose.yml",
        KUBERNETES / "kustomization.yaml",
    ):
        assert path.is_file(), path


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_parses(path):
    documents = list(yaml.safe_load_all(path.read_text()))
    assert documents
    assert all(document is not None for document in documents)


@pytest.mark.parametrize("path", JSON_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_json_parses(path):
    assert json.loads(path.read_text())


# -- what driftline exposes -----------------------------------------------------------------


def test_the_collector_fixture_exposes_every_family_with_samples():
    names, sampled = collected()
    # Families present even when empty, and the traffic above gave each of these samples.
    for name in (
        "driftline_events_total",
        "driftline_deadletter_total",
        "driftline_label_join_total",
        "driftline_refused_total",
        "driftline_state_total",
        "driftline_models",
        "driftline_consumer_lag",
        "driftline_drift_statistic",
        "driftline_drift_threshold",
        "driftline_drift_detected",
        "driftline_model_f1",
        "driftline_model_precision",
        "driftline_model_recall",
        "driftline_model_accuracy",
        "driftline_model_mae",
        "driftline_model_rmse",
        "driftline_model_outcomes",
        "driftline_model_reference_ready",
        "driftline_model_reference_starved",
        "driftline_model_reference_count",
        "driftline_model_confusion",
        "driftline_model_roc_auc",
        "driftline_model_log_loss",
        "driftline_model_brier",
        "driftline_model_calibration_error",
        "driftline_model_latency_seconds",
        "driftline_seconds_since_last_event",
    ):
        assert name in sampled, name
    for name in ("driftline_alerts_total", "driftline_commands_total", "driftline_alerts_firing"):
        assert name in names, name
    assert "driftline_events" not in sampled  # counters are exposed with _total


def test_metric_name_extraction():
    expr = (
        'sum by (topic) (rate(driftline_events_total{type="io.driftline.alert.x"}[5m]))'
        " * $__rate_interval"
        ' / on() up{job="driftline"} + process_resident_memory_bytes{model_id=~"$model_id"}'
        " or driftline_model_f1"
    )
    assert metric_names(expr) == {
        "driftline_events_total",
        "driftline_model_f1",
        "up",
        "process_resident_memory_bytes",
    }


# -- Grafana --------------------------------------------------------------------------------


def test_dashboard_identity():
    board = dashboard()
    assert board["uid"] == "driftline"
    assert board["title"] == "driftline"
    assert board["schemaVersion"] == 39


def test_dashboard_variables():
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    datasource = variables["datasource"]
    assert datasource["type"] == "datasource"
    assert datasource["query"] == "prometheus"
    model = variables["model_id"]
    assert model["type"] == "query"
    query = model["query"] if isinstance(model["query"], str) else model["query"]["query"]
    assert re.fullmatch(
        r"label_values\(\s*driftline_seconds_since_last_event\s*,\s*model_id\s*\)", query
    )
    assert model["includeAll"] is True
    assert model["multi"] is True
    assert model["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_every_panel_has_a_query_on_the_datasource_variable():
    ids = []
    for panel in panels(dashboard()["panels"]):
        ids.append(panel["id"])
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target.get("datasource", panel["datasource"]) == panel["datasource"]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_dashboard_queries_only_metrics_driftline_exposes():
    board = dashboard()
    used: dict[str, set[str]] = {}
    for panel in panels(board["panels"]):
        for target in panel.get("targets", []):
            for name in metric_names(target["expr"]):
                used.setdefault(name, set()).add(panel["title"])
    for variable in board["templating"]["list"]:
        query = variable.get("query")
        query = query.get("query", "") if isinstance(query, dict) else query or ""
        for name in metric_names(query):
            used.setdefault(name, set()).add(f"variable {variable['name']}")
    unknown = {name: where for name, where in used.items() if name not in exposed() | OUTSIDE}
    assert not unknown, unknown
    # The panels the dashboard is for.
    for name in (
        "driftline_events_total",
        "driftline_deadletter_total",
        "driftline_alerts_firing",
        "driftline_drift_statistic",
        "driftline_drift_threshold",
        "driftline_drift_detected",
        "driftline_model_f1",
        "driftline_model_precision",
        "driftline_model_recall",
        "driftline_model_accuracy",
        "driftline_model_mae",
        "driftline_model_rmse",
        "driftline_seconds_since_last_event",
        "driftline_label_join_total",
        "driftline_commands_total",
        "driftline_consumer_lag",
        "driftline_models",
        "driftline_refused_total",
        "process_resident_memory_bytes",
    ):
        assert name in used, name


#: Grafana's variables, replaced by values Prometheus accepts.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "$model_id": ".*"}


@pytest.mark.prometheus
def test_dashboard_queries_are_valid_promql(tmp_path):
    tool = shutil.which("promtool")
    assert tool, "promtool is needed (Debian package prometheus; .ci/run installs it)"
    rules = []
    for panel in panels(dashboard()["panels"]):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"{panel['title']}: unknown variable in {expr}"
            rules.append({"record": f"dashboard:query_{len(rules)}", "expr": expr})
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [tool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_grafana_provisioning_matches_compose():
    datasources = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    (source,) = datasources["datasources"]
    assert source["name"] == "Prometheus"
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "prometheus" in compose()["services"]

    providers = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "driftline.yml")
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    path = PurePosixPath(provider["options"]["path"])
    assert path == PurePosixPath("/var/lib/grafana/dashboards")
    mounts = dict(bind_mounts(service("grafana")))
    assert PurePosixPath(mounts["./grafana/driftline-dashboard.json"]).parent == path
    targets = set(mounts.values())
    assert "/etc/grafana/provisioning/datasources" in targets
    assert "/etc/grafana/provisioning/dashboards" in targets


# -- Docker ---------------------------------------------------------------------------------


def test_dockerfile_runs_the_worker_on_6066():
    instructions = dockerfile()
    by_name: dict[str, list[str]] = {}
    for name, arguments in instructions:
        by_name.setdefault(name, []).append(arguments)
    assert by_name["FROM"][0].startswith("python:3.11-slim")
    assert "6066" in " ".join(by_name["EXPOSE"]).split()
    assert json.loads(by_name["ENTRYPOINT"][-1]) == ["driftline"]
    assert json.loads(by_name["CMD"][-1]) == ["worker"]
    user = by_name["USER"][-1].split(":")[0]
    assert user not in ("root", "0")
    (healthcheck,) = by_name["HEALTHCHECK"]
    assert "/healthz" in healthcheck
    assert "6066" in healthcheck
    env = " ".join(by_name["ENV"])
    assert "DRIFTLINE_WEB_HOST=0.0.0.0" in env
    assert "DRIFTLINE_DATA_DIR=/tmp/driftline" in env
    assert any("pip install --no-cache-dir ." in run for run in by_name["RUN"])


def test_dockerfile_copies_what_the_build_needs():
    sources = []
    for name, arguments in dockerfile():
        if name == "COPY":
            parts = [p for p in arguments.split() if not p.startswith("--")]
            sources.extend(parts[:-1])
    for source in sources:
        assert (ROOT / source).exists(), source
    copied = {PurePosixPath(s.rstrip("/")) for s in sources}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {PurePosixPath(p) for p in wheel["packages"]}
    needed |= {PurePosixPath(p) for p in wheel.get("force-include", {})}
    needed |= {PurePosixPath("pyproject.toml"), PurePosixPath(pyproject["project"]["readme"])}
    needed |= {PurePosixPath(p) for p in pyproject["project"].get("license-files", [])}
    assert needed <= copied, needed - copied


def test_dockerignore_keeps_the_context_small_but_complete():
    ignored = {
        line.strip().strip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for entry in (".venv", ".cache", ".git", "tests", "bench"):
        assert entry in ignored, entry
    assert ignored & {"__pycache__", "**/__pycache__"}
    for entry in ("schemas", "detectors", "stream", "deploy", "pyproject.toml", "README.md"):
        assert entry not in ignored, entry


# -- docker compose -------------------------------------------------------------------------


def test_compose_services():
    assert {"kafka", "worker", "prometheus", "grafana"} <= set(compose()["services"])


def test_compose_worker_reaches_the_advertised_broker():
    kafka = environment(service("kafka"))
    (advertised,) = [
        listener.split("://", 1)[1]
        for listener in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
        if listener.startswith("PLAINTEXT://")
    ]
    host, _, port = advertised.rpartition(":")
    assert host in compose()["services"]
    worker = service("worker")
    assert environment(worker)["DRIFTLINE_BOOTSTRAP_SERVERS"] == f"{host}:{port}"
    assert f":{port}" in kafka["KAFKA_LISTENERS"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "test" in service("kafka")["healthcheck"]
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_compose_worker_is_built_from_the_dockerfile_and_publishes_6066():
    worker = service("worker")
    context = (DEPLOY / worker["build"]["context"]).resolve()
    assert context == ROOT
    assert (context / worker["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert "6066:6066" in [str(p) for p in worker["ports"]]
    settings = Settings.from_env(environment(worker))
    assert settings.partitions == 8


def test_compose_volume_sources_exist():
    for name, svc in compose()["services"].items():
        for source, _ in bind_mounts(svc):
            assert (DEPLOY / source).exists(), f"{name}: {source}"


def test_compose_prometheus_uses_the_compose_config_and_the_rules():
    mounts = dict(bind_mounts(service("prometheus")))
    assert mounts["./prometheus/prometheus-compose.yml"] == "/etc/prometheus/prometheus.yml"
    assert mounts["./prometheus/rules.yml"] == "/etc/prometheus/rules.yml"


def test_prometheus_compose_config_scrapes_the_worker():
    config = load_yaml(DEPLOY / "prometheus" / "prometheus-compose.yml")
    assert config["rule_files"] == ["rules.yml"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "driftline"  # DriftlineWorkerDown: up{job="driftline"}
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    assert targets == ["worker:6066"]
    # Otherwise the same as the standalone configuration.
    standalone = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    for group in standalone["scrape_configs"][0]["static_configs"]:
        group["targets"] = ["worker:6066"]
    assert config == standalone


# -- Kubernetes -----------------------------------------------------------------------------


def test_kustomization_lists_every_manifest():
    listed = load_yaml(KUBERNETES / "kustomization.yaml")["resources"]
    present = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(listed) == sorted(present)
    for name in listed:
        assert (KUBERNETES / name).is_file(), name


def test_manifests_kinds_and_no_namespace():
    found = manifests()
    assert {"Deployment", "Service", "PodMonitor", "PrometheusRule", "ConfigMap"} <= set(found)
    for kind, manifest in found.items():
        assert "namespace" not in manifest["metadata"], kind


def test_deployment_shape():
    deployment = manifests()["Deployment"]
    assert deployment["metadata"]["name"] == "driftline"
    assert deployment["spec"]["replicas"] == 2
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "driftline"
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    c = container()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert c["image"] == f"ghcr.io/driftline/driftline:{version}"
    assert c["args"] == ["worker"]
    assert pod_spec()["terminationGracePeriodSeconds"] == 60
    assert c["resources"]["limits"]["memory"] == "1Gi"
    assert str(c["resources"]["limits"]["cpu"]) == "1"
    assert set(c["resources"]["requests"]) == {"cpu", "memory"}


def test_the_http_port_is_6066_and_everything_refers_to_it():
    ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    assert ports["http"] == 6066
    pod_labels = manifests()["Deployment"]["spec"]["template"]["metadata"]["labels"]

    svc = manifests()["Service"]["spec"]
    assert svc.get("type", "ClusterIP") == "ClusterIP"
    (port,) = svc["ports"]
    assert port["name"] == "http"
    assert port["port"] == 6066
    assert port["targetPort"] == "http"
    assert svc["selector"].items() <= pod_labels.items()

    monitor = manifests()["PodMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "http"
    assert endpoint["path"] == "/metrics"
    # DriftlineWorkerDown queries up{job="driftline"}.
    assert {"targetLabel": "job", "replacement": "driftline"}.items() <= next(
        r for r in endpoint["relabelings"] if r["targetLabel"] == "job"
    ).items()


@pytest.mark.parametrize("probe", ["readinessProbe", "livenessProbe"])
def test_probes_use_healthz(probe):
    check = container()[probe]["httpGet"]
    assert check["path"] == "/healthz"
    assert check["port"] == "http"


def test_security_context_and_writable_data_dir():
    c = container()
    pod = pod_spec().get("securityContext", {})
    assert c["securityContext"].get("runAsNonRoot", pod.get("runAsNonRoot")) is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    env = env_of(c)
    data_dir = env["DRIFTLINE_DATA_DIR"]
    assert "emptyDir" in volume("data")
    assert mount_path_of("data") == data_dir


def test_sasl_password_comes_from_the_mounted_secret():
    env = env_of(container())
    path = PurePosixPath(env["DRIFTLINE_SASL_PASSWORD_FILE"])
    secret = volume("kafka-secret")["secret"]
    assert secret["secretName"] == "driftline-kafka"
    assert secret["optional"] is True
    (item,) = secret["items"]
    assert item["key"] == "password"
    (mount,) = [m for m in container()["volumeMounts"] if m["name"] == "kafka-secret"]
    assert mount["readOnly"] is True
    assert path == PurePosixPath(mount["mountPath"]) / item["path"]
    assert "DRIFTLINE_SASL_PASSWORD" not in env  # a file, not the value


def test_configmap_settings_and_config_file():
    configmap = manifests()["ConfigMap"]
    data = configmap["data"]
    refs = [e["configMapRef"]["name"] for e in container()["envFrom"] if "configMapRef" in e]
    assert configmap["metadata"]["name"] in refs
    assert data["DRIFTLINE_WEB_HOST"] == "0.0.0.0"
    # The config file is mounted where DRIFTLINE_CONFIG_FILE says.
    config_volume = volume("config")["configMap"]
    assert config_volume["name"] == configmap["metadata"]["name"]
    (item,) = [i for i in config_volume["items"] if i["key"] == "driftline.yaml"]
    mounted = PurePosixPath(mount_path_of("config")) / item["path"]
    assert PurePosixPath(data["DRIFTLINE_CONFIG_FILE"]) == mounted
    # The settings are valid (the file itself is not on this machine).
    env = {
        key: value
        for key, value in data.items()
        if key.startswith("DRIFTLINE_") and key != "DRIFTLINE_CONFIG_FILE"
    }
    settings = Settings.from_env(env)
    assert settings.partitions == int(data["DRIFTLINE_PARTITIONS"])
    assert settings.web_port == 6066
    # A real configuration, which the worker accepts.
    raw = yaml.safe_load(data["driftline.yaml"])
    config = MonitorConfig.from_dict(raw)
    assert config.models


def test_prometheusrule_is_rules_yml():
    rule = manifests()["PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"]["groups"] == load_yaml(RULES)["groups"]


def test_rules_query_only_metrics_driftline_exposes():
    used: set[str] = set()
    for group in load_yaml(RULES)["groups"]:
        for rule in group["rules"]:
            used |= metric_names(rule["expr"])
    assert used, "no metric found in rules.yml"
    assert used - (exposed() | OUTSIDE) == set()
