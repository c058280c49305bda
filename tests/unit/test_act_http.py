"""The HTTP action's requests: both CloudEvents modes (read back with the reference SDK), the
signature, the secrets, and which answers are retried."""

from __future__ import annotations

import hashlib
import hmac

import orjson
import pytest

from schemas import Limits
from stream.act.config import ActionsConfig
from stream.act.delivery import Verdict
from stream.act.http_action import HttpReceiver, classify_status, percent_encode
from stream.act.received import parse_record
from tests.act_cases import parsed_by_sdk, rollback, same_event


def receiver(mode: str, tmp_path, env: dict[str, str] | None = None) -> HttpReceiver:
    secret = tmp_path / "signing-key"
    secret.write_text("k3y-from-a-file\n")
    config = ActionsConfig.from_dict(
        {
            "defaults": {
                "http": {
                    "url": "https://hooks.example.com/driftline?token=abc",
                    "mode": mode,
                    "headers": {"Authorization": {"env": "DL_TEST_HOOK_AUTH"}},
                    "signature": {
                        "header": "X-Driftline-Signature",
                        "secret": {"file": str(secret)},
                    },
                }
            }
        }
    )
    return HttpReceiver.from_config(config.for_model("m").http)


@pytest.fixture
def auth(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DL_TEST_HOOK_AUTH", "Bearer t0ken")
    return "Bearer t0ken"


@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_both_modes_parse_back_to_the_same_cloudevent(mode, tmp_path, auth) -> None:
    raw = rollback("churn", "2", "1", source="/driftline/prod eu")
    event = parse_record(raw, "commands", Limits())
    headers, body = receiver(mode, tmp_path).request(event)
    attributes, data = parsed_by_sdk(headers, body)
    assert same_event(raw, attributes, data)
    assert attributes["source"] == "/driftline/prod eu"
    original = orjson.loads(raw)
    if mode == "structured":
        assert body == raw  # the event exactly as it was on the topic
        assert headers["Content-Type"].startswith("application/cloudevents+json")
    else:
        assert headers["Content-Type"] == "application/json"
        assert headers["ce-source"] == "/driftline/prod%20eu"
        assert orjson.loads(body) == original["data"]
    assert headers["Authorization"] == auth


def test_the_signature_is_the_bodys_hmac_sha256(tmp_path, auth) -> None:
    event = parse_record(rollback(), "commands", Limits())
    for mode in ("structured", "binary"):
        headers, body = receiver(mode, tmp_path).request(event)
        expected = hmac.new(b"k3y-from-a-file", body, hashlib.sha256).hexdigest()
        assert headers["X-Driftline-Signature"] == f"sha256={expected}"


def test_a_receiver_never_shows_its_secrets(tmp_path, auth) -> None:
    shown = repr(receiver("binary", tmp_path))
    assert "t0ken" not in shown
    assert "k3y" not in shown
    assert "token=abc" not in shown


def test_a_missing_secret_stops_act_at_start(tmp_path, monkeypatch) -> None:
    from detectors.config import ConfigError

    monkeypatch.delenv("DL_TEST_HOOK_AUTH", raising=False)
    with pytest.raises(ConfigError, match="DL_TEST_HOOK_AUTH is not set"):
        receiver("structured", tmp_path)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DONE),
        (202, Verdict.DONE),
        (204, Verdict.DONE),
        (301, Verdict.FAILED),
        (400, Verdict.FAILED),
        (401, Verdict.FAILED),
        (404, Verdict.FAILED),
        (408, Verdict.RETRY),
        (425, Verdict.RETRY),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (503, Verdict.RETRY),
    ],
)
def test_which_answers_are_retried(status: int, verdict: Verdict) -> None:
    assert classify_status(status) is verdict


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("plain-ascii_/x:1", "plain-ascii_/x:1"),
        ("a b", "a%20b"),
        ('"q"', "%22q%22"),
        ("50%", "50%25"),
        ("é", "%C3%A9"),
        ("\n", "%0A"),
    ],
)
def test_header_values_are_percent_encoded_as_the_binding_asks(value, encoded) -> None:
    assert percent_encode(value) == encoded
