"""``driftline act``'s settings and its refusals at start."""

from __future__ import annotations

import pytest

from stream.act import app
from stream.settings import Settings, SettingsError


def test_act_settings_default_from_the_app_id_and_the_commands_topic():
    s = Settings.from_env({"DRIFTLINE_APP_ID": "prod", "DRIFTLINE_TOPIC_COMMANDS": "x.cmd"})
    assert (s.act_group_name, s.acted_topic_name, s.act_web_port) == (
        "prod.act",
        "x.cmd.acted",
        6067,
    )
    s = Settings.from_env(
        {
            "DRIFTLINE_ACT_GROUP": "acting",
            "DRIFTLINE_TOPIC_ACTED": "acted.ids",
            "DRIFTLINE_ACT_WEB_PORT": "7000",
        }
    )
    assert (s.act_group_name, s.acted_topic_name, s.act_web_port) == ("acting", "acted.ids", 7000)
    assert s.describe()["acted_topic"] == "acted.ids"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DRIFTLINE_TOPIC_ACTED": "monitor.alerts"}, "DRIFTLINE_TOPIC_ACTED must differ"),
        ({"DRIFTLINE_ACT_WEB_PORT": "70000"}, "DRIFTLINE_ACT_WEB_PORT: 70000 is not a TCP port"),
    ],
)
def test_act_settings_refuse_what_cannot_work(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def run(tmp_path, monkeypatch, capsys, config: str, *, installed: bool) -> tuple[int, str]:
    path = tmp_path / "driftline.yaml"
    path.write_text(config)
    monkeypatch.setattr(app, "mlflow_available", lambda: installed)
    for name in ("DRIFTLINE_CONFIG_FILE", "DRIFTLINE_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    code = app.run_act(path)
    return code, capsys.readouterr().err


def test_without_mlflow_an_mlflow_action_stops_act_with_the_install_command(
    tmp_path, monkeypatch, capsys
):
    config = "actions:\n  models:\n    churn:\n      mlflow: {alias: prod}\n"
    code, err = run(tmp_path, monkeypatch, capsys, config, installed=False)
    assert code == 2
    assert "pip install 'driftline[mlflow]'" in err


def test_a_configuration_error_stops_act_with_its_path_and_no_secret(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOOK_TOKEN", "s3cr3t")
    config = (
        "actions:\n  defaults:\n    http:\n      url: http://h/\n"
        "      headers: {Authorization: {env: HOOK_TOKEN}}\n      timeout: fast\n"
    )
    code, err = run(tmp_path, monkeypatch, capsys, config, installed=True)
    assert code == 2
    assert "actions.defaults.http.timeout: 'fast' is not a duration" in err
    assert "s3cr3t" not in err


def test_a_missing_configuration_file_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DRIFTLINE_CONFIG_FILE", raising=False)
    assert app.run_act(None) == 2
    assert "--config FILE or DRIFTLINE_CONFIG_FILE" in capsys.readouterr().err
