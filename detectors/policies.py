"""The decisions: when an alert fires or resolves, when to retrain, when to roll back.

Alert fatigue is the top complaint about every monitoring tool, so :class:`AlertBook` keeps at
most one firing alert per key (model, alert type, signal, feature or version), resolves only
after the condition stayed clear for ``resolve_after`` (no flapping), and keeps a resolved alert
quiet for ``cooldown``.

:class:`RetrainPolicy` asks for a retrain once per drift episode: when concept drift has held for
``confirm_samples`` more labelled outcomes, or when a performance test finds the version
degraded, and at most once per model version per ``cooldown``, unless the new episode's error
rate is above the one the last retrain was for by the drift's minimum effect (a larger change
than the one retrained for, or than a false alarm's, is never lost to the cooldown).

:class:`RollbackPolicy` compares a newly rolled-out version with the last good one on labelled
outcomes, with a one-sided test of "worse by more than a margin" repeated at 1x, 2x, 4x ...
``min_samples`` outcomes, each at ``alpha / number of tests`` (Bonferroni: the whole rollout
keeps its false-rollback rate under ``alpha``, and a version exactly as good as the old one must
beat the margin too, so it practically never is). If the new version is significantly worse it
emits one rollback; if it survives every test it becomes the new last good version.

Examples
--------
>>> from detectors.config import AlertConfig
>>> book = AlertBook(AlertConfig(resolve_after=60_000, cooldown=600_000))
>>> book.observe(("data_drift", "feature", "age"), True, 1_000)
Transition(status='firing', started_at=1000, at=1000)
>>> book.observe(("data_drift", "feature", "age"), True, 2_000) is None  # already firing
True
>>> book.observe(("data_drift", "feature", "age"), False, 5_000) is None  # clear, but not yet long
True
>>> book.observe(("data_drift", "feature", "age"), False, 65_000)
Transition(status='resolved', started_at=1000, at=65000)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, ClassVar

from detectors.alerting import AlertKey
from detectors.base import StateError
from detectors.config import AlertConfig, RetrainConfig, RollbackConfig
from detectors.saved_state import read_format, stamp

__all__ = ["AlertBook", "RetrainPolicy", "RollbackDecision", "RollbackPolicy", "Transition"]


@dataclass(frozen=True, slots=True)
class Transition:
    """An alert's change of state: ``firing`` (episode starts) or ``resolved`` (it ends)."""

    status: str
    started_at: int
    at: int


class AlertBook:
    """Firing/resolved bookkeeping for every alert key of one model."""

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    STATE_FORMAT: ClassVar[int] = 1

    def __init__(self, config: AlertConfig) -> None:
        self.config = config
        self._started: dict[AlertKey, int] = {}  # firing keys -> episode start
        self._clear_since: dict[AlertKey, int] = {}
        self._quiet_until: dict[AlertKey, int] = {}
        self.suppressed = 0

    def firing(self, key: AlertKey) -> bool:
        return key in self._started

    @property
    def any_firing(self) -> bool:
        """Whether any alert is firing (the common answer, no: checked before building a key)."""
        return bool(self._started)

    def firing_keys(self) -> list[AlertKey]:
        return list(self._started)

    def firing_since(self) -> dict[AlertKey, int]:
        """Each firing key and the event time its episode started."""
        return dict(self._started)

    def observe(
        self, key: AlertKey, condition: bool, now: int, *, resolve_now: bool = False
    ) -> Transition | None:
        """Record the condition of ``key`` at ``now``; return a transition if one happens.

        ``resolve_now`` skips ``resolve_after`` (a stalled stream that resumed is over).
        """
        started = self._started.get(key)
        if started is None:
            if not condition:
                return None
            if now < self._quiet_until.get(key, -math.inf):
                self.suppressed += 1
                return None
            self._started[key] = now
            self._clear_since.pop(key, None)
            return Transition("firing", now, now)
        if condition:
            self._clear_since.pop(key, None)
            return None
        clear_since = self._clear_since.setdefault(key, now)
        if resolve_now or now - clear_since >= self.config.resolve_after:
            del self._started[key]
            self._clear_since.pop(key, None)
            self._quiet_until[key] = now + self.config.cooldown
            return Transition("resolved", started, now)
        return None

    def reopen(self, key: AlertKey, now: int) -> Transition:
        """Start a new episode of ``key`` now, whether it is firing, clear or quiet: a drift
        that escalated (the caller resolved the old episode first)."""
        self._started[key] = now
        self._clear_since.pop(key, None)
        self._quiet_until.pop(key, None)
        return Transition("firing", now, now)

    def forget(self, predicate: Callable[[AlertKey], bool]) -> None:
        """Drop every key for which ``predicate(key)`` is true (a forgotten model version)."""
        for table in (self._started, self._clear_since, self._quiet_until):
            for key in [k for k in table if predicate(k)]:
                del table[key]

    def to_state(self) -> dict[str, Any]:
        return stamp(
            self.STATE_FORMAT,
            {
                "started": [[k.saved(), v] for k, v in self._started.items()],
                "clear_since": [[k.saved(), v] for k, v in self._clear_since.items()],
                "quiet_until": [[k.saved(), v] for k, v in self._quiet_until.items()],
                "suppressed": self.suppressed,
            },
        )

    def load_state(self, state: dict[str, Any]) -> None:
        read_format(state, "AlertBook", self.STATE_FORMAT)

        def table(rows: list[Any]) -> dict[AlertKey, int]:
            return {AlertKey.from_saved(key): int(value) for key, value in rows}

        self._started = table(state["started"])
        self._clear_since = table(state["clear_since"])
        self._quiet_until = table(state["quiet_until"])
        self.suppressed = int(state["suppressed"])


class RetrainPolicy:
    """One retrain command per drift episode and per version cooldown.

    The caller reports concept-drift episodes (:meth:`drift_started`, :meth:`drift_ended`),
    labelled outcomes (:meth:`outcome`) and performance degradation (:meth:`degraded`); each
    returns the reason to retrain now, or ``None``.
    """

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    STATE_FORMAT: ClassVar[int] = 1

    def __init__(self, config: RetrainConfig, min_effect: float = 0.2) -> None:
        self.config = config
        self.min_effect = min_effect
        # version -> [episode start, change point estimate, outcomes since start, done, level]
        self._episodes: dict[str, list[Any]] = {}
        self._last_command: dict[str, int] = {}
        self._last_level: dict[str, float] = {}  # error rate of the episode last retrained for
        # Versions retrained for a performance degradation that is still open (its error rate).
        self._open_degradation: dict[str, float] = {}

    def drift_started(self, version: str, at: int, change_point: int, level: float = 0.0) -> None:
        """A concept drift episode of ``version`` (its error rate ``level``) was confirmed."""
        self._episodes[version] = [at, change_point, 0, False, level]

    def drift_ended(self, version: str) -> None:
        self._episodes.pop(version, None)

    def episode(self, version: str) -> tuple[int, int] | None:
        """(episode start, estimated change point) of the version's drift, if one is open."""
        episode = self._episodes.get(version)
        return None if episode is None else (episode[0], episode[1])

    def outcome(self, version: str, now: int) -> bool:
        """A labelled outcome of ``version``; True when drift is now sustained enough."""
        episode = self._episodes.get(version)
        if episode is None or episode[3] or not self.config.enabled:
            return False
        episode[2] += 1
        if episode[2] < self.config.confirm_samples:
            return False
        # Sustained. Within the cooldown of an earlier retrain, or while the degradation a
        # retrain was asked for is still open, only a larger change asks again; otherwise that
        # retrain covered this episode too (one incident, one retrain: not a second one when
        # the cooldown runs out while the same incident is still open).
        episode[3] = True
        free = self._allowed(version, now) and version not in self._open_degradation
        return free or self._larger(version, episode[4])

    def degradation_over(self, version: str) -> None:
        """The performance degradation of ``version`` is over (or there is none)."""
        self._open_degradation.pop(version, None)

    def _larger(self, version: str, level: float) -> bool:
        """Whether an episode at error rate ``level`` is a larger change than the one the last
        retrain of ``version`` was for (by the drift's minimum effect)."""
        last = self._last_level.get(version)
        # (An unknown level, 0, is never exceeded: the cooldown holds.)
        return last is not None and last > 0 and level >= last * (1 + self.min_effect)

    def degraded(self, version: str, now: int) -> bool:
        """Performance of ``version`` just degraded; True when that should trigger a retrain."""
        if not (self.config.enabled and self.config.on_performance):
            return False
        episode = self._episodes.get(version)
        if episode is not None and episode[3]:
            return False  # this drift already asked for a retrain
        return self._allowed(version, now)

    def _allowed(self, version: str, now: int) -> bool:
        last = self._last_command.get(version)
        return last is None or now - last >= self.config.cooldown

    def commanded(self, version: str, now: int, level: float = 0.0) -> None:
        """A retrain of ``version`` was commanded, for its open drift episode or, outside one,
        for a degradation at error rate ``level`` (0: unknown)."""
        self._last_command[version] = now
        episode = self._episodes.get(version)
        if episode is not None:
            episode[3] = True
            self._last_level[version] = episode[4]
        else:  # for a performance degradation
            self._last_level[version] = level
            self._open_degradation[version] = level

    def forget(self, version: str) -> None:
        self._episodes.pop(version, None)
        self._last_command.pop(version, None)
        self._last_level.pop(version, None)
        self._open_degradation.pop(version, None)

    def to_state(self) -> dict[str, Any]:
        return stamp(
            self.STATE_FORMAT,
            {
                "episodes": self._episodes,
                "last_command": self._last_command,
                "last_level": self._last_level,
                "open_degradation": self._open_degradation,
            },
        )

    def load_state(self, state: dict[str, Any]) -> None:
        read_format(state, "RetrainPolicy", self.STATE_FORMAT)
        # (Older states have no levels: 0, which never counts as a larger change.)
        self._episodes = {
            str(v): [int(e[0]), int(e[1]), int(e[2]), bool(e[3]), float(e[4] if len(e) > 4 else 0)]
            for v, e in state["episodes"].items()
        }
        self._last_command = {str(v): int(t) for v, t in state["last_command"].items()}
        self._last_level = {str(v): float(x) for v, x in state.get("last_level", {}).items()}
        self._open_degradation = {
            str(v): float(x) for v, x in state.get("open_degradation", {}).items()
        }


@dataclass(frozen=True, slots=True)
class RollbackDecision:
    from_version: str
    to_version: str
    test: str
    statistic: float
    threshold: float
    details: dict[str, float | int | str]


class _ErrorStats:
    """Errors of one version: a window (for the baseline) or everything (for a candidate)."""

    def __init__(self, limit: int | None) -> None:
        self.values: deque[float] = deque(maxlen=limit)
        self.total = 0.0
        self.total_sq = 0.0

    def add(self, error: float) -> None:
        if self.values.maxlen is not None and len(self.values) == self.values.maxlen:
            old = self.values[0]
            self.total -= old
            self.total_sq -= old * old
        self.values.append(error)
        self.total += error
        self.total_sq += error * error

    @property
    def n(self) -> int:
        return len(self.values)

    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    def variance(self) -> float:
        n = self.n
        if n < 2:
            return 0.0
        return max(0.0, (self.total_sq - self.total * self.total / n) / (n - 1))


class RollbackPolicy:
    """Compare a new version with the last good one; roll back if it is significantly worse.

    Errors are 0/1 for classification (a two-proportion z-test on error rates) and absolute
    errors for regression (Welch's z on mean absolute errors).
    """

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    STATE_FORMAT: ClassVar[int] = 1

    def __init__(self, config: RollbackConfig) -> None:
        self.config = config
        self.good: str | None = None  # the last good version
        self.candidate: str | None = None
        self.rolled_back: set[str] = set()
        self._stats: dict[str, _ErrorStats] = {}
        self._next_check = config.min_samples
        self._checks = self._count_checks()
        self._regression = False

    def _count_checks(self) -> int:
        n, k = self.config.min_samples, 0
        while n <= self.config.max_samples:
            k += 1
            n *= 2
        return max(1, k)

    def version_seen(self, version: str) -> None:
        """A prediction of ``version`` arrived (call for every new version, in order).

        The last good version stays the baseline even if its labels have not arrived yet:
        labels lag, and the old version's keep coming after the new one starts serving.
        """
        if version in self.rolled_back or version == self.good or version == self.candidate:
            return
        if self.good is None or not self.config.enabled:
            if self.good is not None:
                self._drop(self.good)
            self.good = version  # the first version is the baseline by definition
            self._stats[version] = _ErrorStats(self.config.max_samples)
            return
        if self.candidate is not None:
            self._drop(self.candidate)
        self.candidate = version
        self._stats[version] = _ErrorStats(None)
        self._next_check = self.config.min_samples

    def _drop(self, version: str) -> None:
        self._stats.pop(version, None)

    def outcome(self, version: str, error: float, regression: bool) -> RollbackDecision | None:
        """A labelled outcome of ``version``; return a decision to roll back, at most once."""
        self._regression = regression
        stats = self._stats.get(version)
        if stats is None:
            return None
        stats.add(error)
        if version != self.candidate or stats.n < self._next_check:
            return None
        assert self.good is not None
        if self._stats[self.good].n < self.config.min_samples:
            # The baseline's labels have not come yet: wait for them (the check stays due),
            # unless the new version has seen everything a rollout is judged on.
            if stats.n >= self.config.max_samples:
                self._promote(version, stats)
            return None
        self._next_check *= 2
        decision = self._test(version)
        if decision is not None:
            self.rolled_back.add(version)
            self.candidate = None
            self._drop(version)
            return decision
        if self._next_check > self.config.max_samples:
            self._promote(version, stats)  # survived every test
        return None

    def roll_back(self, version: str) -> None:
        """``version`` is rolled back for another reason than its errors (its latency): it is
        no longer a candidate, and never tested again."""
        self.rolled_back.add(version)
        if self.candidate == version:
            self.candidate = None
            self._drop(version)

    def _promote(self, version: str, stats: _ErrorStats) -> None:
        """``version`` is the new last good version."""
        assert self.good is not None
        self._drop(self.good)
        self.good = version
        self._stats[version] = _trim(stats, self.config.max_samples)
        self.candidate = None

    def _test(self, version: str) -> RollbackDecision | None:
        assert self.good is not None
        new, old = self._stats[version], self._stats[self.good]
        level = self.config.alpha / self._checks
        critical = NormalDist().inv_cdf(1 - level)
        old_mean, new_mean = old.mean(), new.mean()
        margin = max(self.config.min_margin, self.config.margin * old_mean)
        if self._regression:
            spread = new.variance() / new.n + old.variance() / old.n
            test = "welch_z_mae"
            excess = new_mean - old_mean - margin
        else:
            # Agresti-Caffo: one error and one success added to each side keeps the test honest
            # at small counts, where the plain Wald test rolls back too easily.
            new_rate = (new.total + 1) / (new.n + 2)
            old_rate = (old.total + 1) / (old.n + 2)
            spread = new_rate * (1 - new_rate) / (new.n + 2) + old_rate * (1 - old_rate) / (
                old.n + 2
            )
            test = "two_proportion_z"
            excess = new_rate - old_rate - margin
        if spread > 0:
            z = excess / math.sqrt(spread)
        else:
            z = math.inf if excess > 0 else -math.inf
        if z <= critical:
            return None
        metric = "mae" if self._regression else "error_rate"
        return RollbackDecision(
            from_version=version,
            to_version=self.good,
            test=test,
            statistic=z if math.isfinite(z) else 1e9,
            threshold=critical,
            details={
                f"{metric}_new": new_mean,
                f"{metric}_old": old_mean,
                "samples_new": new.n,
                "samples_old": old.n,
                "margin": margin,
                "alpha": self.config.alpha,
                "tests": self._checks,
            },
        )

    def to_state(self) -> dict[str, Any]:
        return stamp(
            self.STATE_FORMAT,
            {
                "good": self.good,
                "candidate": self.candidate,
                "rolled_back": sorted(self.rolled_back),
                "stats": {v: list(s.values) for v, s in self._stats.items()},
                "limits": {v: s.values.maxlen for v, s in self._stats.items()},
                # The running sums too: recomputed, they would differ in the last bits after
                # values left a window, and a restored model would decide differently at the margin.
                "sums": {v: [s.total, s.total_sq] for v, s in self._stats.items()},
                "next_check": self._next_check,
                "regression": self._regression,
            },
        )

    def load_state(self, state: dict[str, Any]) -> None:
        read_format(state, "RollbackPolicy", self.STATE_FORMAT)
        self.good = state["good"]
        self.candidate = state["candidate"]
        self.rolled_back = {str(v) for v in state["rolled_back"]}
        self._stats = {}
        for version, values in state["stats"].items():
            limit = state["limits"][version]
            if limit is not None and len(values) > limit:
                raise StateError("more outcomes than the window holds")
            stats = _ErrorStats(limit)
            for value in values:
                stats.add(float(value))
            sums = state.get("sums", {}).get(version)  # (older states have none)
            if sums is not None:
                total, total_sq = float(sums[0]), float(sums[1])
                if not (math.isfinite(total) and math.isfinite(total_sq)):
                    raise StateError("rollback sums out of bounds")
                stats.total, stats.total_sq = total, total_sq
            self._stats[str(version)] = stats
        self._next_check = int(state["next_check"])
        self._regression = bool(state["regression"])


def _trim(stats: _ErrorStats, limit: int) -> _ErrorStats:
    trimmed = _ErrorStats(limit)
    for value in list(stats.values)[-limit:]:
        trimmed.add(value)
    return trimmed
