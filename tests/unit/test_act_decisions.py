"""The pure decisions of ``driftline act``: parsing, planning, allowlist, max age, the retry
schedule and the acted-id log's replay."""

from __future__ import annotations

import random

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import Limits
from stream.act.acted import ActedLog, encode_mark, next_move
from stream.act.config import ActionsConfig, RetryConfig
from stream.act.delivery import Backoff
from stream.act.mlflow_action import resolve_intent
from stream.act.plan import DEAD_LETTERED, HttpStep, MlflowStep, Plan, plan, too_old
from stream.act.received import Received, Refusal, parse_record
from tests.act_cases import now_ms, retrain, rollback, stall_alert

LIMITS = Limits()
CONFIG = ActionsConfig.from_dict(
    {
        "allow": {"churn": ["champion"], "ranker": ["staging"]},
        "defaults": {"mlflow": {"versions": {"2": "12", "1": "11"}, "tag_on_retrain": True}},
        "models": {
            "churn": {"http": {"url": "http://127.0.0.1:9/hook"}},
            "fraud": {"enabled": False},
            "quiet": {"mlflow": None},
        },
    }
)


def received(payload: bytes) -> Received:
    event = parse_record(payload, "commands", LIMITS)
    assert isinstance(event, Received), event
    return event


# -- parsing ---------------------------------------------------------------------------------


def test_a_command_parses_with_its_kind_model_and_time() -> None:
    at = now_ms()
    event = received(rollback("churn", "2", "1", at_ms=at))
    assert (event.kind, event.model_id, event.time_ms) == ("rollback", "churn", at)
    assert event.rollback is not None
    assert event.rollback.to_version == "1"
    assert received(retrain("churn")).kind == "retrain"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (None, "record has no value (null)"),
        (b"not json", "not a driftline command CloudEvent"),
        (b"[1, 2]", "not a driftline command CloudEvent"),
        (b"[" * 40 + b"]" * 40, "JSON nested deeper than 32"),
        (b'{"pad": "' + b"x" * (1 << 20) + b'"}', "record is larger than 1048576 bytes"),
    ],
)
def test_a_malformed_record_is_refused_in_driftlines_words(payload, message) -> None:
    refusal = parse_record(payload, "commands", LIMITS)
    assert refusal == Refusal("invalid_command", message, cause=refusal.cause)
    assert refusal.reason in DEAD_LETTERED


def edited(payload: bytes, **changes) -> bytes:
    event = orjson.loads(payload)
    for path, value in changes.items():
        target = event
        *parents, leaf = path.split("__")
        for name in parents:
            target = target[name]
        target[leaf] = value
    return orjson.dumps(event)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"type": "io.driftline.command.deploy"}, "not a driftline command CloudEvent"),
        ({"id": "not-hex"}, "$.id: expected 32 lowercase hex digits"),
        ({"subject": "other"}, "$.subject: differs from $.data.model_id"),
        ({"data__to_version": "1 OR 1=1"}, "$.data: a model id or version is not in the"),
        ({"time": "yesterday"}, "$.time: not an RFC 3339 time"),
        ({"time": "2026-12-01T10:00:00.000"}, "$.time: has no time zone"),
        ({"data__reason": 3}, "not a driftline command CloudEvent"),
    ],
)
def test_a_command_that_breaks_the_contract_is_refused(changes, message) -> None:
    refusal = parse_record(edited(rollback(), **changes), "commands", LIMITS)
    assert isinstance(refusal, Refusal)
    assert refusal.reason == "invalid_command"
    assert refusal.message.startswith(message)


def test_an_alert_parses_only_on_the_alerts_topic() -> None:
    from schemas import encode, make_alert

    alert = encode(
        make_alert(
            "data_drift",
            model_id="churn",
            model_version="2",
            status="firing",
            signal="feature",
            detector="adwin",
            statistic=4.0,
            threshold=3.0,
            event_time_ms=now_ms(),
            started_at_ms=now_ms(),
            summary="x",
            feature="amount",
        )
    )
    assert parse_record(alert, "alerts", LIMITS).kind == "alerts"
    assert parse_record(alert, "commands", LIMITS).reason == "invalid_command"
    assert parse_record(rollback(), "alerts", LIMITS).reason == "invalid_alert"


# -- planning --------------------------------------------------------------------------------


def test_a_rollback_moves_the_alias_to_the_mapped_version_and_tags_the_old_one() -> None:
    event = received(rollback("churn", "2", "1"))
    decided = plan(event, CONFIG)
    assert isinstance(decided, Plan)
    mlflow, http = decided.steps
    assert isinstance(mlflow, MlflowStep)
    assert isinstance(http, HttpStep)
    assert (mlflow.registered_model, mlflow.alias, mlflow.to_version, mlflow.tag_version) == (
        "churn",
        "champion",
        "11",
        "12",
    )
    assert mlflow.tags["driftline.rollback.command_id"] == event.id
    assert mlflow.tags["driftline.rollback.reason"] == "worse_than_previous_version"
    assert orjson.loads(mlflow.tags["driftline.rollback.evidence"])["details"] == {
        "errors_after": 40
    }
    assert (mlflow.key, http.key) == (f"{event.id}/mlflow", f"{event.id}/http")
    assert (mlflow.action, http.action) == ("mlflow_rollback", "http_rollback")


def test_a_retrain_tags_the_version_when_asked() -> None:
    decided = plan(received(retrain("ranker", "2")), CONFIG)
    (step,) = decided.steps
    assert (step.to_version, step.tag_version, step.action) == (None, "12", "mlflow_retrain")
    assert set(step.tags) >= {"driftline.retrain.window_start", "driftline.retrain.reason"}


@pytest.mark.parametrize(
    ("payload", "reason", "message"),
    [
        (
            rollback("billing"),
            "not_allowed",
            "rollback of model 'billing' refused: it is not listed in actions.allow",
        ),
        (
            rollback("ranker"),
            "not_allowed",
            "rollback of model 'ranker' refused: alias 'champion' is not listed in "
            "actions.allow.ranker",
        ),
        (rollback("fraud"), "disabled", "actions are off for model 'fraud'"),
        (retrain("quiet"), "no_action", "no action is configured for retrain of this model"),
    ],
)
def test_refusals_say_why(payload, reason, message) -> None:
    config = CONFIG
    if reason == "disabled":
        config = ActionsConfig.from_dict(
            {"allow": {"fraud": ["champion"]}, "models": {"fraud": {"enabled": False}}}
        )
    assert plan(received(payload), config) == Refusal(reason, message)
    assert (reason in DEAD_LETTERED) == (reason == "not_allowed")


def test_an_http_rollback_also_needs_the_model_in_the_allowlist() -> None:
    config = ActionsConfig.from_dict({"defaults": {"http": {"url": "http://h/"}}})
    assert plan(received(rollback("churn")), config).reason == "not_allowed"
    assert isinstance(plan(received(retrain("churn")), config), Plan)


@given(age=st.integers(min_value=-(10**9), max_value=10**10), max_age=st.integers(1, 10**9))
def test_max_age_refuses_exactly_what_is_older(age: int, max_age: int) -> None:
    now = 1_795_255_200_000
    refusal = too_old(time_ms=now - age, now_ms=now, max_age_ms=max_age)
    assert (refusal is not None) == (age > max_age)
    if refusal is not None:
        assert refusal.reason == "too_old"


# -- retry schedule --------------------------------------------------------------------------


@given(
    first=st.integers(1, 10_000),
    extra=st.integers(0, 100_000),
    factor=st.floats(1.0, 10.0),
    jitter=st.floats(0.0, 0.99),
    attempt=st.integers(1, 500),
    draw=st.floats(0.0, 0.999999),
)
def test_every_delay_stays_within_its_jitter_band_and_the_cap(
    first, extra, factor, jitter, attempt, draw
) -> None:
    config = RetryConfig(first_delay=first, max_delay=first + extra, factor=factor, jitter=jitter)
    delay = Backoff(config).delay_ms(attempt, draw)
    nominal = min(first + extra, first * factor ** min(attempt - 1, 64))
    assert 1 <= delay <= config.max_delay
    assert nominal * (1 - jitter) - 1 <= delay <= nominal * (1 + jitter) + 1


def test_the_schedule_stops_at_the_count_or_the_time_cap() -> None:
    by_count = Backoff(RetryConfig(first_delay=100, max_delay=100, jitter=0, attempts=3))
    assert [by_count.next_delay_ms(n, 0, 0.5) for n in (1, 2, 3)] == [100, 100, None]
    by_time = Backoff(
        RetryConfig(first_delay=1000, max_delay=4000, jitter=0, attempts=100, give_up_after=6000)
    )
    elapsed, delays = 0, []
    while (delay := by_time.next_delay_ms(len(delays) + 1, elapsed, 0.5)) is not None:
        delays.append(delay)
        elapsed += delay
    assert delays == [1000, 2000]  # a third pause (4 s) would end after 6 s
    assert elapsed <= 6000


def test_jitter_spreads_retries_that_failed_together() -> None:
    backoff = Backoff(RetryConfig(first_delay=1000, jitter=0.5))
    rng = random.Random(7)
    delays = {backoff.delay_ms(3, rng.random()) for _ in range(50)}
    assert len(delays) > 25
    assert min(delays) >= 2000
    assert max(delays) <= 6000


# -- the acted-id log ------------------------------------------------------------------------

ID = "ab" * 16


def replay(*marks: tuple) -> ActedLog:
    log = ActedLog()
    for state, action, *before in marks:
        log.apply(*encode_mark(state, event_id=ID, action=action, before=(before or [None])[0]))
    return log


def test_replay_keeps_the_latest_mark_per_step() -> None:
    log = replay(("intent", "mlflow", "2"), ("intent", "http"), ("done", "http"))
    assert log.get(f"{ID}/mlflow").before == "2"
    assert next_move(log.get(f"{ID}/mlflow"), "mlflow") == "recheck"
    assert next_move(log.get(f"{ID}/http"), "http") == "skip"
    assert next_move(log.get("other/http"), "http") == "act"
    assert len(log) == 2


@pytest.mark.parametrize("outcome", ["done", "failed", "unknown"])
def test_an_outcome_ends_a_step_for_good(outcome: str) -> None:
    log = replay(("intent", "http"), (outcome, "http"))
    assert next_move(log.get(f"{ID}/http"), "http") == "skip"


def test_an_intent_without_outcome_is_not_blindly_repeated() -> None:
    log = replay(("intent", "http"), ("intent", "mlflow", None))
    assert next_move(log.get(f"{ID}/http"), "http") == "unknown"
    assert next_move(log.get(f"{ID}/mlflow"), "mlflow") == "recheck"


@pytest.mark.parametrize("value", [b"garbage", b'{"state": "maybe"}', b"{" + b" " * 5000 + b"}"])
def test_an_unreadable_mark_never_leads_to_acting_again(value: bytes) -> None:
    log = ActedLog()
    log.apply(f"{ID}/http".encode(), value)
    assert next_move(log.get(f"{ID}/http"), "http") == "skip"


def test_an_older_record_read_late_never_replaces_a_newer_one() -> None:
    log = ActedLog()
    intent = encode_mark("intent", event_id=ID, action="http")
    done = encode_mark("done", event_id=ID, action="http")
    log.apply(*intent, 10)
    log.apply(*done, 11)  # written by this process...
    log.apply(*intent, 10)  # ...while a catch-up read the topic
    assert log.get(f"{ID}/http").state == "done"


def test_a_tombstone_forgets_a_step() -> None:
    log = replay(("done", "http"))
    log.apply(f"{ID}/http".encode(), None)
    assert next_move(log.get(f"{ID}/http"), "http") == "act"


@pytest.mark.parametrize(
    ("before", "current", "target", "move"),
    [
        ("2", "1", "1", "finish"),  # the alias moved before the crash: only record it
        ("2", "2", "1", "act"),  # it had not moved yet
        (None, None, "1", "act"),  # there was no alias, there still is none
        ("2", "3", "1", "unknown"),  # someone moved it since: never undone by act
        (None, None, None, "act"),  # a retrain's tags: idempotent
    ],
)
def test_an_mlflow_intent_is_resolved_by_reading_the_registry(before, current, target, move):
    assert resolve_intent(before=before, current=current, target=target) == move


def test_an_alert_goes_only_to_receivers_that_ask_for_alerts() -> None:
    config = ActionsConfig.from_dict(
        {
            "defaults": {"http": {"url": "http://h/"}},
            "models": {"watched": {"http": {"url": "http://h/", "forward": ["alerts"]}}},
        }
    )
    assert config.reads_alerts

    def alert(model_id: str) -> Received:
        return parse_record(stall_alert(model_id, "silent"), "alerts", LIMITS)

    (step,) = plan(alert("watched"), config).steps
    assert (step.kind, step.action) == ("alerts", "http_alerts")
    assert plan(alert("other"), config).reason == "no_action"
    assert plan(received(retrain("watched")), config).reason == "no_action"


async def test_mlflow_errors_are_classified_by_error_code_never_by_text(monkeypatch) -> None:
    import time as clock

    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, RESOURCE_DOES_NOT_EXIST

    from stream.act.delivery import Verdict
    from stream.act.mlflow_action import MlflowRegistry

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    registry = MlflowRegistry(1_000)
    config = ActionsConfig.from_dict(
        {"allow": {"churn": ["champion"]}, "defaults": {"mlflow": {"timeout": "200ms"}}}
    )
    (step,) = plan(received(rollback("churn")), config).steps

    def failing(code: int):
        def call() -> None:
            raise MlflowException("words that may change", error_code=code)

        return call

    gone = await registry._call(step, "update", failing(RESOURCE_DOES_NOT_EXIST))
    broken = await registry._call(step, "update", failing(INTERNAL_ERROR))
    slow = await registry._call(step, "update", lambda: clock.sleep(0.5))
    assert (gone.verdict, broken.verdict, slow.verdict) == (
        Verdict.FAILED,
        Verdict.RETRY,
        Verdict.RETRY,
    )
    assert gone.detail == "MLflow update of 'churn': RESOURCE_DOES_NOT_EXIST"
