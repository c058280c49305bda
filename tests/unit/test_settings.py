"""Settings from the environment: defaults, overrides, clear errors, secrets never shown."""

from __future__ import annotations

import json

import pytest

from stream.settings import Settings, SettingsError


def test_defaults_work_without_any_environment():
    s = Settings.from_env({})
    assert s.bootstrap_servers == "127.0.0.1:9092"
    assert s.topics.predictions == "model.predictions"
    assert s.limits.max_message_bytes == 1 << 20
    assert s.web_port == 6066


def test_every_topic_and_limit_is_overridable():
    env = {
        "DRIFTLINE_TOPIC_PREDICTIONS": "a.p",
        "DRIFTLINE_TOPIC_INPUTS": "a.i",
        "DRIFTLINE_TOPIC_LABELS": "a.l",
        "DRIFTLINE_TOPIC_ALERTS": "a.a",
        "DRIFTLINE_TOPIC_COMMANDS": "a.c",
        "DRIFTLINE_TOPIC_DEADLETTER": "a.d",
        "DRIFTLINE_MAX_MESSAGE_BYTES": "2048",
        "DRIFTLINE_MAX_FEATURES": "10",
        "DRIFTLINE_MAX_DEPTH": "8",
        "DRIFTLINE_MAX_STRING_LENGTH": "64",
        "DRIFTLINE_MAX_ID_LENGTH": "32",
    }
    s = Settings.from_env(env)
    assert s.topics.all() == ["a.p", "a.i", "a.l", "a.a", "a.c", "a.d"]
    assert (s.limits.max_message_bytes, s.limits.max_features, s.limits.max_depth) == (2048, 10, 8)
    assert (s.limits.max_string_length, s.limits.max_id_length) == (64, 32)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DRIFTLINE_WEB_PORT": "x"}, "DRIFTLINE_WEB_PORT"),
        ({"DRIFTLINE_WEB_PORT": "70000"}, "DRIFTLINE_WEB_PORT"),
        ({"DRIFTLINE_MAX_FEATURES": "-1"}, "max_features"),
        ({"DRIFTLINE_TOPIC_LABELS": "model.predictions"}, "distinct"),
        ({"DRIFTLINE_TOPIC_LABELS": "bad topic"}, "not a valid Kafka topic"),
        ({"DRIFTLINE_SECURITY_PROTOCOL": "TLS"}, "DRIFTLINE_SECURITY_PROTOCOL"),
        ({"DRIFTLINE_SECURITY_PROTOCOL": "SASL_SSL"}, "DRIFTLINE_SASL_MECHANISM"),
        (
            {"DRIFTLINE_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "DRIFTLINE_SASL_MECHANISM": "PLAIN"},
            "DRIFTLINE_SASL_USERNAME",
        ),
        ({"DRIFTLINE_CONFIG_FILE": "/nonexistent/driftline.yaml"}, "DRIFTLINE_CONFIG_FILE"),
        (
            {
                "DRIFTLINE_SECURITY_PROTOCOL": "SASL_SSL",
                "DRIFTLINE_SASL_MECHANISM": "SCRAM-SHA-512",
                "DRIFTLINE_SASL_USERNAME": "u",
                "DRIFTLINE_SASL_PASSWORD_FILE": "/nonexistent/secret",
            },
            "cannot read",
        ),
    ],
)
def test_bad_settings_fail_at_start_naming_the_variable(env, message):
    with pytest.raises((SettingsError, ValueError), match=message):
        Settings.from_env(env)


def test_password_from_a_file_is_used_but_never_described(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("s3cr3t-value\n")
    s = Settings.from_env(
        {
            "DRIFTLINE_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "DRIFTLINE_SASL_MECHANISM": "SCRAM-SHA-512",
            "DRIFTLINE_SASL_USERNAME": "driftline",
            "DRIFTLINE_SASL_PASSWORD_FILE": str(secret),
        }
    )
    assert s.kafka_kwargs()["sasl_plain_password"] == "s3cr3t-value"
    shown = json.dumps(s.describe()) + repr(s) + str(s)
    assert "s3cr3t" not in shown
    assert s.describe()["security"]["sasl_password"] == "***"


def test_password_in_env_and_file_at_once_is_ambiguous(tmp_path):
    secret = tmp_path / "p"
    secret.write_text("x")
    with pytest.raises(SettingsError, match="not both"):
        Settings.from_env(
            {
                "DRIFTLINE_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "DRIFTLINE_SASL_PASSWORD": "y",
                "DRIFTLINE_SASL_PASSWORD_FILE": str(secret),
            }
        )


def test_a_secret_file_is_read_only_when_the_protocol_uses_it():
    """A deployment may mount an optional, absent password file for a PLAINTEXT cluster."""
    s = Settings.from_env({"DRIFTLINE_SASL_PASSWORD_FILE": "/nonexistent/secret"})
    assert s.security.sasl_password is None
