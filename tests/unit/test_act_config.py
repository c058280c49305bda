"""The ``actions:`` section: what it accepts, what it refuses and how it says so."""

from __future__ import annotations

import pytest

from detectors.config import ConfigError, MonitorConfig
from stream.act.config import ActionsConfig, HttpConfig, SecretRef, load_actions

FULL = {
    "max_age": "30m",
    "allow": {"churn": ["champion"], "ranker": []},
    "retry": {"first_delay": "200ms", "max_delay": "2s", "attempts": 5, "give_up_after": "10s"},
    "defaults": {
        "mlflow": {"tracking_uri": "http://127.0.0.1:5000", "timeout": "5s"},
        "http": {"url": "https://hooks.example.com/x?token=abc", "mode": "binary"},
    },
    "models": {
        "churn": {"mlflow": {"registered_model": "churn-clf", "versions": {2: 7}}},
        "ranker": {"http": {"forward": ["alerts"]}},
        "fraud": {"enabled": False},
        "quiet": {"mlflow": None, "http": None},
    },
}


def test_a_full_section_reads_into_settings_per_model() -> None:
    config = ActionsConfig.from_dict(FULL)
    churn = config.for_model("churn")
    assert churn.mlflow is not None
    assert (churn.mlflow.registered_model, churn.mlflow.tracking_uri) == (
        "churn-clf",
        "http://127.0.0.1:5000",
    )
    # Integers in YAML are version strings on both sides.
    assert churn.mlflow.mlflow_version("2") == "7"
    assert churn.mlflow.mlflow_version("3") == "3"
    assert churn.mlflow.timeout == 5_000
    assert churn.http is not None
    assert churn.http.mode == "binary"
    # A model's sub-section is merged over the defaults' one.
    ranker = config.for_model("ranker")
    assert ranker.http is not None
    assert (ranker.http.url, ranker.http.forward) == (FULL["defaults"]["http"]["url"], ("alerts",))
    assert config.for_model("fraud").enabled is False
    quiet = config.for_model("quiet")
    assert (quiet.mlflow, quiet.http) == (None, None)
    assert config.for_model("anything-else").mlflow.registered_model is None
    assert config.allow == {"churn": ("champion",), "ranker": ()}
    assert (config.max_age, config.retry.first_delay, config.retry.attempts) == (1_800_000, 200, 5)
    assert config.reads_alerts
    assert config.uses_mlflow


def test_an_empty_section_does_nothing() -> None:
    config = ActionsConfig.from_dict(None)
    assert config.for_model("m").mlflow is None
    assert config.for_model("m").http is None
    assert not config.allow
    assert not config.reads_alerts
    assert not config.uses_mlflow


@pytest.mark.parametrize(
    ("raw", "starts"),
    [
        ({"defualts": {}}, "actions.defualts: unknown setting"),
        ({"defaults": {"mlflow": {"alais": "x"}}}, "actions.defaults.mlflow.alais: unknown"),
        ({"models": {"m": {"enabled": "no"}}}, "actions.models.m.enabled: expected true or false"),
        ({"defaults": {"http": {"url": "ftp://x"}}}, "actions.defaults.http.url: expected an http"),
        ({"defaults": {"http": {"url": "http://h:port/"}}}, "actions.defaults.http.url:"),
        (
            {"defaults": {"http": {"url": "http://h", "mode": "batch"}}},
            "actions.defaults.http.mode: 'batch' is not one of structured, binary",
        ),
        (
            {"defaults": {"http": {"url": "http://h", "forward": ["deploy"]}}},
            "actions.defaults.http.forward: expected a list of retrain, rollback, alerts",
        ),
        (
            {"defaults": {"http": {"url": "http://h", "headers": {"Authorization": "Bearer x"}}}},
            "actions.defaults.http.headers.Authorization: expected {env: VARIABLE} or {file: PATH}",
        ),
        (
            {"defaults": {"http": {"url": "http://h", "headers": {"ce-id": {"env": "X"}}}}},
            "actions.defaults.http.headers.ce-id: act sets this header itself",
        ),
        (
            {"defaults": {"http": {"url": "http://h", "signature": {"header": "X-Sig"}}}},
            "actions.defaults.http.signature.secret: expected {env: VARIABLE}",
        ),
        ({"allow": {"m": "champion"}}, "actions.allow.m: expected a list of MLflow aliases"),
        ({"max_age": "soon"}, "actions.max_age: 'soon' is not a duration"),
        ({"max_age": 0}, "actions.max_age: must be positive"),
        ({"retry": {"jitter": 1.5}}, "actions.retry.jitter: must be at least 0 and less than 1"),
        ({"retry": {"attempts": 0}}, "actions.retry.attempts: expected a positive integer"),
        ({"retry": {"factor": 0.5}}, "actions.retry.factor: must be at least 1"),
        (
            {"retry": {"first_delay": "5s", "max_delay": "1s"}},
            "actions.retry.max_delay: must be at least first_delay",
        ),
    ],
)
def test_a_wrong_entry_is_refused_with_its_path(raw: dict, starts: str) -> None:
    with pytest.raises(ConfigError) as error:
        ActionsConfig.from_dict(raw)
    assert str(error.value).startswith(starts)


def test_the_worker_reads_a_file_with_actions_and_act_reads_its_actions(tmp_path) -> None:
    path = tmp_path / "driftline.yaml"
    path.write_text(
        "defaults:\n  join: {ttl: 2d}\n"
        "actions:\n  allow: {churn: [champion]}\n  defaults:\n    mlflow: {alias: prod}\n"
    )
    assert MonitorConfig.from_yaml(path).defaults.join.ttl == 172_800_000
    assert load_actions(path).for_model("churn").mlflow.alias == "prod"
    path.write_text("defaults: {}\n")
    assert load_actions(path).for_model("churn").mlflow is None


def test_a_file_error_names_the_file(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("actions:\n  max_age: -5\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: actions\.max_age: must not be negative"):
        load_actions(path)


def test_secrets_come_from_env_or_file_and_errors_never_show_them(tmp_path) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cr3t-value\n")
    assert SecretRef(file=secret).read() == "s3cr3t-value"
    assert SecretRef(env="HOOK").read({"HOOK": "other-s3cr3t"}) == "other-s3cr3t"
    with pytest.raises(ConfigError, match="environment variable HOOK is not set") as unset:
        SecretRef(env="HOOK").read({})
    with pytest.raises(ConfigError, match="cannot read the secret file") as missing:
        SecretRef(file=tmp_path / "absent").read()
    secret.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        SecretRef(file=secret).read()
    for error in (unset, missing):
        assert "s3cr3t" not in str(error.value)
    assert "s3cr3t" not in repr(SecretRef(env="HOOK"))


def test_messages_show_a_receiver_by_origin_only() -> None:
    config = HttpConfig(url="https://user:pw@hooks.example.com:8443/T0/B1/xyz?token=abc")
    assert config.origin() == "https://hooks.example.com:8443"
