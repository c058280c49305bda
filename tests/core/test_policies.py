"""Alert bookkeeping, retrain commands and rollbacks: when each decision is (and is not) made."""

from __future__ import annotations

import random

import orjson
import pytest

from detectors.alerting import AlertKey
from detectors.config import AlertConfig, RetrainConfig, RollbackConfig
from detectors.policies import AlertBook, RetrainPolicy, RollbackPolicy, Transition

RESOLVE_AFTER = 100
COOLDOWN = 1_000
KEY = AlertKey("data_drift", "feature", "age")


def book() -> AlertBook:
    return AlertBook(AlertConfig(resolve_after=RESOLVE_AFTER, cooldown=COOLDOWN))


# -- AlertBook -----------------------------------------------------------------------------------


def test_an_alert_fires_once_while_its_condition_holds():
    alerts = book()
    assert alerts.observe(KEY, False, 0) is None
    assert alerts.observe(KEY, True, 10) == Transition("firing", started_at=10, at=10)
    assert [alerts.observe(KEY, True, t) for t in range(20, 5_000, 50)] == [None] * 100
    assert alerts.firing(KEY)
    assert alerts.firing_keys() == [KEY]
    assert alerts.suppressed == 0


def test_an_alert_resolves_only_after_staying_clear_for_resolve_after():
    alerts = book()
    alerts.observe(KEY, True, 0)
    assert alerts.observe(KEY, False, 10) is None  # clear since 10
    assert alerts.observe(KEY, False, 10 + RESOLVE_AFTER - 1) is None
    assert alerts.firing(KEY)
    resolved = alerts.observe(KEY, False, 10 + RESOLVE_AFTER)
    assert resolved == Transition("resolved", started_at=0, at=10 + RESOLVE_AFTER)
    assert not alerts.firing(KEY)
    assert alerts.firing_keys() == []


def test_a_true_while_clearing_restarts_the_resolve_clock():
    alerts = book()
    alerts.observe(KEY, True, 0)
    alerts.observe(KEY, False, 10)
    assert alerts.observe(KEY, True, 60) is None  # still the same episode: no new firing
    assert alerts.observe(KEY, False, 70) is None  # clear again since 70
    assert alerts.observe(KEY, False, 10 + RESOLVE_AFTER) is None  # would have resolved
    assert alerts.observe(KEY, False, 70 + RESOLVE_AFTER - 1) is None
    assert alerts.observe(KEY, False, 70 + RESOLVE_AFTER) == Transition(
        "resolved", started_at=0, at=70 + RESOLVE_AFTER
    )


def test_resolve_now_skips_the_wait():
    alerts = book()
    alerts.observe(KEY, True, 0)
    assert alerts.observe(KEY, False, 5, resolve_now=True) == Transition("resolved", 0, 5)
    assert not alerts.firing(KEY)


def test_a_resolved_alert_stays_quiet_for_cooldown_then_fires_again():
    alerts = book()
    alerts.observe(KEY, True, 0)
    resolved_at = 10 + RESOLVE_AFTER
    alerts.observe(KEY, False, 10)
    assert alerts.observe(KEY, False, resolved_at).status == "resolved"
    quiet = [resolved_at + 1, resolved_at + COOLDOWN // 2, resolved_at + COOLDOWN - 1]
    assert [alerts.observe(KEY, True, t) for t in quiet] == [None] * 3
    assert alerts.suppressed == 3
    assert not alerts.firing(KEY)
    again = resolved_at + COOLDOWN + 1
    assert alerts.observe(KEY, True, again) == Transition("firing", again, again)
    assert alerts.suppressed == 3


def test_keys_are_independent():
    alerts = book()
    other = AlertKey("data_drift", "feature", "income")
    alerts.observe(KEY, True, 0)
    assert alerts.observe(other, True, 50) == Transition("firing", 50, 50)
    alerts.observe(KEY, False, 60)
    assert alerts.observe(KEY, False, 60 + RESOLVE_AFTER).status == "resolved"
    assert alerts.firing(other)  # still firing: its condition never cleared
    assert alerts.firing_keys() == [other]
    # KEY is in its cooldown; that keeps neither `other` nor a third key quiet.
    third = AlertKey("stall", "inputs")
    assert alerts.observe(third, True, 200) == Transition("firing", 200, 200)
    assert alerts.observe(KEY, True, 200) is None
    assert alerts.suppressed == 1


def test_firing_and_resolved_carry_the_same_started_at():
    rng = random.Random(1)
    alerts = book()
    open_since: dict[tuple, int] = {}
    transitions = 0
    for t in range(0, 200_000, 7):
        key = AlertKey("drift", rng.choice("abc"))
        transition = alerts.observe(key, rng.random() < 0.3, t)
        if transition is None:
            continue
        transitions += 1
        if transition.status == "firing":
            assert key not in open_since
            open_since[key] = transition.started_at
        else:
            assert transition.started_at == open_since.pop(key)
    assert transitions > 20


def random_observations(seed: int, n: int) -> list[tuple]:
    rng = random.Random(seed)
    return [
        (AlertKey("drift", rng.choice("ab"), "", "v1"), rng.random() < 0.4, t, rng.random() < 0.02)
        for t in range(0, 30 * n, 30)
    ]


@pytest.mark.parametrize("cut", [1, 500, 1_234])
def test_alert_book_state_round_trip_through_json_continues_identically(cut):
    observations = random_observations(seed=2, n=2_000)
    original = book()
    for key, condition, now, resolve_now in observations[:cut]:
        original.observe(key, condition, now, resolve_now=resolve_now)
    restored = book()
    restored.load_state(orjson.loads(orjson.dumps(original.to_state())))
    assert restored.firing_keys() == original.firing_keys()
    assert restored.suppressed == original.suppressed
    rest = [
        (
            original.observe(key, condition, now, resolve_now=resolve_now),
            restored.observe(key, condition, now, resolve_now=resolve_now),
        )
        for key, condition, now, resolve_now in observations[cut:]
    ]
    assert [r for _, r in rest] == [o for o, _ in rest]
    assert sum(o is not None for o, _ in rest) > 10
    assert restored.suppressed == original.suppressed


# -- RetrainPolicy -------------------------------------------------------------------------------

CONFIRM = 5
RETRAIN_COOLDOWN = 10_000


def retrain(**overrides) -> RetrainPolicy:
    return RetrainPolicy(
        RetrainConfig(**{"confirm_samples": CONFIRM, "cooldown": RETRAIN_COOLDOWN, **overrides})
    )


def test_one_retrain_command_per_drift_episode():
    policy = retrain()
    assert policy.outcome("v1", 0) is False  # no drift: nothing to confirm
    policy.drift_started("v1", at=100, change_point=90)
    assert policy.episode("v1") == (100, 90)
    answers = [policy.outcome("v1", 100 + i) for i in range(1, 200)]
    assert answers.index(True) == CONFIRM - 1  # the confirm_samples-th outcome
    assert answers.count(True) == 1


def test_an_episode_within_the_cooldown_is_covered_unless_it_is_a_larger_change():
    policy = retrain()
    policy.drift_started("v1", at=0, change_point=0, level=0.10)
    answers = [policy.outcome("v1", t) for t in range(1, CONFIRM + 1)]
    assert answers[-1] is True
    policy.commanded("v1", CONFIRM)
    policy.drift_ended("v1")
    assert policy.episode("v1") is None
    # A second episode at about the same error rate, within the cooldown: the retrain just
    # asked for covers it, also once the cooldown has run out (one incident, one retrain).
    policy.drift_started("v1", at=1_000, change_point=900, level=0.11)
    within = [policy.outcome("v1", t) for t in range(1_001, CONFIRM + RETRAIN_COOLDOWN, 100)]
    assert within == [False] * len(within)
    assert policy.outcome("v1", CONFIRM + RETRAIN_COOLDOWN) is False
    # A larger change (20 % above the level retrained for) asks at once, cooldown or not.
    policy.drift_started("v1", at=2_000, change_point=1_900, level=0.12)
    assert [policy.outcome("v1", 2_000 + i) for i in range(1, CONFIRM + 1)][-1] is True
    policy.commanded("v1", 2_000 + CONFIRM)
    # After the cooldown, a new episode asks whatever its level.
    later = 2_000 + CONFIRM + RETRAIN_COOLDOWN
    policy.drift_started("v1", at=later, change_point=later, level=0.05)
    assert [policy.outcome("v1", later + i) for i in range(1, CONFIRM + 1)][-1] is True
    # Another version has its own cooldown.
    policy.drift_started("v2", at=1_000, change_point=900)
    assert [policy.outcome("v2", 1_000 + i) for i in range(CONFIRM)][-1] is True


def test_a_performance_retrain_covers_a_drift_at_the_error_rate_it_was_asked_at():
    policy = retrain()
    assert policy.degraded("v1", 0) is True
    policy.commanded("v1", 0, level=0.30)  # no episode open: the error rate then
    policy.drift_started("v1", at=10, change_point=5, level=0.33)
    assert [policy.outcome("v1", 10 + i) for i in range(1, CONFIRM + 1)] == [False] * CONFIRM
    policy.drift_ended("v1")
    policy.drift_started("v1", at=20, change_point=15, level=0.37)  # 0.30 x 1.2 = 0.36
    assert [policy.outcome("v1", 20 + i) for i in range(1, CONFIRM + 1)][-1] is True
    # While the degradation retrained for is open, a drift at its level is covered even after
    # the cooldown; once it is over, the next drift asks.
    policy.commanded("v3", 0, level=0.30)
    late = 2 * RETRAIN_COOLDOWN
    policy.drift_started("v3", at=late, change_point=late, level=0.31)
    assert not any(policy.outcome("v3", late + i) for i in range(1, CONFIRM + 1))
    policy.drift_ended("v3")
    policy.degradation_over("v3")
    policy.drift_started("v3", at=late + 10, change_point=late, level=0.31)
    assert [policy.outcome("v3", late + 10 + i) for i in range(1, CONFIRM + 1)][-1] is True
    # An unknown level (0) is never exceeded: the cooldown holds.
    policy.commanded("v2", 0)
    policy.drift_started("v2", at=10, change_point=5, level=0.9)
    assert not any(policy.outcome("v2", 10 + i) for i in range(1, CONFIRM + 1))


def test_degraded_asks_for_a_retrain_unless_the_episode_already_did_or_in_cooldown():
    policy = retrain()
    assert policy.degraded("v1", 0) is True  # no episode, never commanded
    policy.commanded("v1", 0)
    assert policy.degraded("v1", RETRAIN_COOLDOWN - 1) is False
    assert policy.degraded("v1", RETRAIN_COOLDOWN) is True
    policy.degradation_over("v1")
    policy.drift_started("v1", at=RETRAIN_COOLDOWN, change_point=0)
    assert policy.degraded("v1", RETRAIN_COOLDOWN) is True  # open episode, not commanded yet
    assert [policy.outcome("v1", RETRAIN_COOLDOWN) for _ in range(CONFIRM)][-1] is True
    much_later = 10 * RETRAIN_COOLDOWN
    assert policy.degraded("v1", much_later) is False  # this episode already asked
    policy.drift_ended("v1")
    assert policy.degraded("v1", much_later) is True


def test_degraded_is_ignored_when_on_performance_is_off():
    assert retrain(on_performance=False).degraded("v1", 0) is False


def test_a_disabled_retrain_policy_never_commands():
    policy = retrain(enabled=False)
    policy.drift_started("v1", at=0, change_point=0)
    assert not any(policy.outcome("v1", t) for t in range(0, 100 * RETRAIN_COOLDOWN, 1_000))
    assert policy.degraded("v1", 0) is False


def test_retrain_state_round_trip_through_json_continues_identically():
    original = retrain()
    original.drift_started("v1", at=0, change_point=0, level=0.1)
    original.drift_started("v2", at=0, change_point=0)
    for t in range(CONFIRM):
        original.outcome("v1", t)
    original.commanded("v1", CONFIRM)
    original.outcome("v2", 1)
    restored = retrain()
    restored.load_state(orjson.loads(orjson.dumps(original.to_state())))
    for policy in (original, restored):
        policy.drift_ended("v1")
        policy.drift_started("v1", at=100, change_point=50, level=0.2)  # larger: asks again
    times = range(CONFIRM, 3 * RETRAIN_COOLDOWN, 500)
    for version in ("v1", "v2"):
        got = [(restored.outcome(version, t), restored.degraded(version, t)) for t in times]
        want = [(original.outcome(version, t), original.degraded(version, t)) for t in times]
        assert got == want
        assert any(command for command, _ in got)
    assert restored.episode("v1") == original.episode("v1") == (100, 50)


# -- RollbackPolicy ------------------------------------------------------------------------------

MIN, MAX = 50, 400


def rollback(**overrides) -> RollbackPolicy:
    return RollbackPolicy(
        RollbackConfig(**{"min_samples": MIN, "max_samples": MAX, "alpha": 0.01, **overrides})
    )


def every(k: int, n: int) -> list[float]:
    """``n`` 0/1 errors, one every ``k`` outcomes."""
    return [float(i % k == k - 1) for i in range(n)]


def feed(policy: RollbackPolicy, version: str, errors: list[float], regression=False) -> list:
    policy.version_seen(version)
    return [policy.outcome(version, e, regression) for e in errors]


def test_the_first_version_is_the_good_one():
    policy = rollback()
    policy.version_seen("v1")
    assert (policy.good, policy.candidate) == ("v1", None)


def test_the_baseline_waits_for_its_late_labels_before_the_candidate_is_judged():
    """Labels lag: the new version often starts serving before the old one's labels are in.
    The old version stays the baseline; the test runs once both sides have enough outcomes."""
    policy = rollback()
    policy.version_seen("v1")
    policy.version_seen("v2")  # v1 has no labelled outcome yet
    assert (policy.good, policy.candidate) == ("v1", "v2")
    worse = feed(policy, "v2", every(2, MIN))  # 50 % errors, but nothing to compare with yet
    assert all(d is None for d in worse)
    decisions = feed(policy, "v1", every(20, MIN))  # v1's late labels: 5 % errors
    assert all(d is None for d in decisions)
    decision = policy.outcome("v2", 1.0, False)  # the next outcome of v2 runs the due test
    assert decision is not None
    assert (decision.from_version, decision.to_version) == ("v2", "v1")


def test_a_baseline_that_never_gets_labels_yields_to_the_candidate_at_max_samples():
    policy = rollback()
    policy.version_seen("v1")
    decisions = feed(policy, "v2", every(10, MAX))
    assert all(d is None for d in decisions)
    assert (policy.good, policy.candidate) == ("v2", None)
    policy.version_seen("v3")
    assert (policy.good, policy.candidate) == ("v2", "v3")


@pytest.mark.parametrize(("min_samples", "max_samples"), [(50, 400), (50, 300), (30, 30)])
def test_tests_run_at_min_samples_doubling_up_to_max_samples(min_samples, max_samples):
    policy = rollback(min_samples=min_samples, max_samples=max_samples)
    feed(policy, "v1", every(10, min_samples))
    policy.version_seen("v2")
    # A test ran where the next one was scheduled further, or where the candidate stopped
    # being one (read from the saved state: the schedule is part of the saved form).
    tested_at = []
    scheduled = policy.to_state()["next_check"]
    for n_outcomes, error in enumerate(every(10, 4 * max_samples), start=1):
        assert policy.outcome("v2", error, False) is None
        now = policy.to_state()["next_check"]
        if now != scheduled or policy.candidate != "v2":
            tested_at.append(n_outcomes)
        scheduled = now
        if policy.candidate != "v2":
            break
    expected, n = [], min_samples
    while n <= max_samples:
        expected.append(n)
        n *= 2
    assert tested_at == expected
    assert (policy.good, policy.candidate) == ("v2", None)


def test_a_clearly_worse_candidate_is_rolled_back_once():
    policy = rollback()
    feed(policy, "v1", every(20, 2 * MIN))  # 5% errors
    decisions = feed(policy, "v2", every(2, 3 * MAX))  # 50% errors
    found = [(i + 1, d) for i, d in enumerate(decisions) if d is not None]
    assert len(found) == 1
    at, decision = found[0]
    # 25/50 errors against 5/100: far past any reasonable threshold at the very first test.
    assert at == MIN
    assert (decision.from_version, decision.to_version) == ("v2", "v1")
    assert decision.test == "two_proportion_z"
    assert decision.statistic > decision.threshold > 0
    assert decision.details["error_rate_new"] == pytest.approx(0.5)
    assert decision.details["error_rate_old"] == pytest.approx(0.05)
    assert decision.details["samples_new"] == MIN
    assert decision.details["tests"] == 4  # 50, 100, 200, 400
    assert (policy.good, policy.candidate) == ("v1", None)
    assert "v2" in policy.rolled_back
    # Seen again (late predictions), it is not tested again.
    assert feed(policy, "v2", every(2, MAX)) == [None] * MAX
    assert (policy.good, policy.candidate) == ("v1", None)


def test_a_candidate_as_good_as_the_baseline_is_promoted_after_max_samples():
    policy = rollback()
    feed(policy, "v1", every(10, MAX))
    decisions = feed(policy, "v2", every(10, MAX - 1))
    assert decisions == [None] * (MAX - 1)
    assert (policy.good, policy.candidate) == ("v1", "v2")
    assert policy.outcome("v2", 0.0, False) is None  # the MAX-th outcome: the last test
    assert (policy.good, policy.candidate) == ("v2", None)
    assert policy.rolled_back == set()


def absolute_errors(level: float, n: int) -> list[float]:
    """Deterministic absolute errors around ``level`` (mean ``level``, some spread)."""
    return [level * (0.5 + (i % 5) / 4) for i in range(n)]


def test_regression_rolls_back_a_version_with_much_larger_absolute_errors():
    policy = rollback()
    feed(policy, "v1", absolute_errors(1.0, 2 * MIN), regression=True)
    decisions = feed(policy, "v2", absolute_errors(5.0, 3 * MAX), regression=True)
    found = [d for d in decisions if d is not None]
    assert len(found) == 1
    decision = found[0]
    assert (decision.from_version, decision.to_version) == ("v2", "v1")
    assert decision.test == "welch_z_mae"
    assert decision.statistic > decision.threshold
    assert decision.details["mae_new"] == pytest.approx(5.0)
    assert decision.details["mae_old"] == pytest.approx(1.0)
    assert (policy.good, policy.candidate) == ("v1", None)


def test_regression_keeps_a_version_with_the_same_absolute_errors():
    policy = rollback()
    feed(policy, "v1", absolute_errors(1.0, MAX), regression=True)
    assert feed(policy, "v2", absolute_errors(1.0, MAX), regression=True) == [None] * MAX
    assert (policy.good, policy.candidate) == ("v2", None)


def rollout_events(seed: int) -> list[tuple]:
    """Three rollouts: one as good as the baseline, one worse, one much worse, with the previous
    version's outcomes still arriving while the new one is tested."""
    rng = random.Random(seed)
    events: list[tuple] = [("seen", "v1")]
    events += [("outcome", "v1", float(rng.random() < 0.1)) for _ in range(2 * MIN)]
    previous = "v1"
    for version, rate in (("v2", 0.1), ("v3", 0.2), ("v4", 0.6)):
        events.append(("seen", version))
        for _ in range(MAX + MAX // 2):
            serving = version if rng.random() < 0.8 else previous
            events.append(("outcome", serving, float(rng.random() < rate)))
        previous = version
    return events


def play(policy: RollbackPolicy, events: list[tuple]) -> list:
    out = []
    for event in events:
        if event[0] == "seen":
            policy.version_seen(event[1])
        else:
            out.append(policy.outcome(event[1], event[2], False))
    return out


@pytest.mark.parametrize("cut", [30, 150, 600, 1_000, 1_500])
def test_rollback_state_round_trip_through_json_continues_identically(cut):
    events = rollout_events(seed=3)
    original = rollback()
    play(original, events[:cut])
    restored = rollback()
    restored.load_state(orjson.loads(orjson.dumps(original.to_state())))
    assert (restored.good, restored.candidate) == (original.good, original.candidate)
    got, want = play(restored, events[cut:]), play(original, events[cut:])
    assert got == want
    assert (restored.good, restored.candidate) == (original.good, original.candidate)
    assert restored.rolled_back == original.rolled_back
    assert "v4" in original.rolled_back  # the stream did reach a decision
