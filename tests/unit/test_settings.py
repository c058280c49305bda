"""Settings from the environment: defaults, overrides, clear errors, secrets never shown."""

from __future__ import annotations

import json

import pytest

from stream.settings import KafkaSecurity, Settings, SettingsError


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


SASL = {
    "DRIFTLINE_SASL_MECHANISM": "SCRAM-SHA-512",
    "DRIFTLINE_SASL_USERNAME": "driftline",
    "DRIFTLINE_SASL_PASSWORD": "s3cr3t-value",
}


@pytest.mark.parametrize(
    ("env", "named", "needs"),
    [
        (
            {"DRIFTLINE_SASL_USERNAME": "driftline"},
            "DRIFTLINE_SASL_USERNAME is set, but DRIFTLINE_SECURITY_PROTOCOL is PLAINTEXT "
            "(the default)",
            "SASL settings need SASL_PLAINTEXT or SASL_SSL",
        ),
        (
            {"DRIFTLINE_SECURITY_PROTOCOL": "PLAINTEXT", "DRIFTLINE_SASL_MECHANISM": "PLAIN"},
            "DRIFTLINE_SASL_MECHANISM is set, but DRIFTLINE_SECURITY_PROTOCOL is PLAINTEXT:",
            "SASL settings need SASL_PLAINTEXT or SASL_SSL",
        ),
        (
            {"DRIFTLINE_SECURITY_PROTOCOL": "plaintext", **SASL},
            "DRIFTLINE_SASL_MECHANISM, DRIFTLINE_SASL_USERNAME, DRIFTLINE_SASL_PASSWORD are set",
            "SASL settings need SASL_PLAINTEXT or SASL_SSL",
        ),
        (
            {"DRIFTLINE_SECURITY_PROTOCOL": "SSL", "DRIFTLINE_SASL_USERNAME": "driftline"},
            "DRIFTLINE_SASL_USERNAME is set, but DRIFTLINE_SECURITY_PROTOCOL is SSL:",
            "SASL settings need SASL_PLAINTEXT or SASL_SSL",
        ),
        (
            # Named as unused, not as a missing file: the protocol is what is wrong.
            {"DRIFTLINE_SSL_CAFILE": "/nonexistent/ca.pem"},
            "DRIFTLINE_SSL_CAFILE is set, but DRIFTLINE_SECURITY_PROTOCOL is PLAINTEXT",
            "SSL settings need SSL or SASL_SSL",
        ),
        (
            {"DRIFTLINE_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "DRIFTLINE_SSL_KEYFILE": "k", **SASL},
            "DRIFTLINE_SSL_KEYFILE is set, but DRIFTLINE_SECURITY_PROTOCOL is SASL_PLAINTEXT:",
            "SSL settings need SSL or SASL_SSL",
        ),
        (
            {"DRIFTLINE_SSL_CHECK_HOSTNAME": "false", "DRIFTLINE_SSL_CERTFILE": "c"},
            "DRIFTLINE_SSL_CERTFILE, DRIFTLINE_SSL_CHECK_HOSTNAME are set",
            "SSL settings need SSL or SASL_SSL",
        ),
        (
            {"DRIFTLINE_SASL_PASSWORD": "s3cr3t-value", "DRIFTLINE_SSL_CAFILE": "ca.pem"},
            "DRIFTLINE_SASL_PASSWORD, DRIFTLINE_SSL_CAFILE are set",
            "SASL settings need SASL_PLAINTEXT or SASL_SSL; SSL settings need SSL or SASL_SSL",
        ),
    ],
)
def test_security_settings_the_protocol_would_ignore_fail_at_start(env, named, needs):
    with pytest.raises(SettingsError) as error:
        Settings.from_env(env)
    message = str(error.value)
    assert named in message
    assert message.endswith(needs)
    assert "s3cr3t" not in message  # the variable is named, never its value


def test_settings_a_protocol_uses_are_accepted_with_it(tmp_path):
    cafile = tmp_path / "ca.pem"
    cafile.write_text("not read here")
    tls = {"DRIFTLINE_SSL_CAFILE": str(cafile), "DRIFTLINE_SSL_CHECK_HOSTNAME": "false"}
    s = Settings.from_env({"DRIFTLINE_SECURITY_PROTOCOL": "SSL", **tls})
    assert (s.security.ssl_cafile, s.security.ssl_check_hostname) == (cafile, False)
    s = Settings.from_env({"DRIFTLINE_SECURITY_PROTOCOL": "SASL_SSL", **tls, **SASL})
    assert (s.security.sasl_username, s.security.ssl_cafile) == ("driftline", cafile)
    s = Settings.from_env({"DRIFTLINE_SECURITY_PROTOCOL": "SASL_PLAINTEXT", **SASL})
    assert s.security.sasl_password == "s3cr3t-value"
    # Blank is unset, as for every other setting (a compose file's `${VAR:-}`).
    s = Settings.from_env({"DRIFTLINE_SASL_USERNAME": " ", "DRIFTLINE_SASL_PASSWORD": ""})
    assert s.security.protocol == "PLAINTEXT"


def test_a_password_file_does_not_count_as_a_sasl_setting(tmp_path):
    """The Kubernetes manifest always names the (optional) mounted secret: with PLAINTEXT the
    file is neither read nor an error, whether or not it exists."""
    secret = tmp_path / "password"
    secret.write_text("s3cr3t-value\n")
    for protocol in ("PLAINTEXT", "SSL"):
        env = {"DRIFTLINE_SECURITY_PROTOCOL": protocol, "DRIFTLINE_SASL_PASSWORD_FILE": str(secret)}
        assert Settings.from_env(env).security.sasl_password is None


def test_kafka_security_built_in_code_is_checked_the_same_way():
    with pytest.raises(SettingsError, match="DRIFTLINE_SASL_USERNAME is set"):
        KafkaSecurity(sasl_username="driftline")
    with pytest.raises(SettingsError, match="DRIFTLINE_SSL_CHECK_HOSTNAME is set"):
        KafkaSecurity("SASL_PLAINTEXT", "PLAIN", "u", "p", ssl_check_hostname=False)
    assert KafkaSecurity("SSL", ssl_check_hostname=False).client_kwargs()["ssl_context"]
