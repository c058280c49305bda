"""Is a model version performing worse than its own reference? Counts, tests and margins.

A rolling F1 compared with a fraction of the version's first window is a coin toss when
positives are rare: a first window of 1,000 outcomes at 1 % positives holds ~10 of them, so its
F1 is whatever luck made it, and so is every window after it. Here every figure is a
**proportion of counted trials**, judged with its uncertainty:

=========  ======================  ==========  =======================================
metric     trials                  successes   note
=========  ======================  ==========  =======================================
f1         TP + FP + FN            TP          F1 = 2q / (1 + q), q the Jaccard index
recall     TP + FN (positives)     TP
precision  TP + FP (predicted)     TP
accuracy   every outcome           correct     multiclass models
rmse       every outcome           (mean of squared errors, Welch's z; regression)
=========  ======================  ==========  =======================================

A binary classifier is watched on F1, recall and precision together (each test at a third of
``alpha``): a recall that halves is plain on the positives, while F1 moves less. A multiclass
model is watched on accuracy, a regression model on RMSE.

**Reference.** The version's outcomes from its first one, grown until it holds at least
``window`` outcomes, ``min_evidence`` errors and ``4 * min_evidence`` trials of every watched
metric (positives and predicted positives, for a binary classifier), at most ``max_reference``
outcomes. Until then the version is *warming up*: nothing is judged, and the
counts are on ``/metrics``; a version whose reference never gets there says so, it does not
alarm.

**Window.** When the reference is complete, the test window's length is set so that the
reference's rates expect ``4 * min_evidence`` trials of every watched metric in it (at least
``window``, at most ``max_window`` outcomes): rare positives get a longer window, not a noisier
one.

**Degraded** when the window's metric is *significantly* below the line
``(1 - relative_drop) x reference`` (or a fixed ``floor``): a one-sided two-sample z-test on the
trials, both samples' uncertainty counted, at ``alpha``. The relative drop is the smallest effect
that matters, not the trigger: an unchanged model sits ``relative_drop`` above the line, many
standard errors away once the evidence is there. **Resolved** only when the metric is
significantly *above* the line halfway back to the reference: the same test the other way, so
one incident is one firing and one resolve. Regression: the mean squared error against
``(1 + rmse_relative_rise)^2`` times the reference's.

Examples
--------
>>> import random
>>> rng = random.Random(3)
>>> test = PerformanceTest("classification", min_evidence=50)
>>> def outcome(recall):
...     positive = rng.random() < 0.05
...     predicted = rng.random() < recall if positive else rng.random() < 0.005
...     test.update(positive, predicted)
>>> for _ in range(20_000):
...     outcome(0.8)
>>> verdict = test.check()  # the metric closest to its line
>>> verdict.metric, verdict.degraded, round(verdict.value, 2), round(verdict.line, 2)
('precision', False, 0.88, 0.66)
>>> for _ in range(20_000):  # half the positives now look like negatives
...     outcome(0.4)
>>> verdict = test.check()
>>> verdict.metric, verdict.degraded, round(verdict.value, 2), round(verdict.line, 2)
('recall', True, 0.44, 0.58)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, ClassVar, Final

from detectors.base import StateError
from detectors.saved_state import read_format, stamp

__all__ = ["METRICS", "PerformanceTest", "Verdict"]

#: Metrics watched, per kind of model.
METRICS: Final = {
    "binary": ("f1", "recall", "precision"),
    "accuracy": ("accuracy",),
    "regression": ("rmse",),
}

# A binary outcome's code: bit 0 the label is positive, bit 1 the prediction is.
_TN, _FN, _FP, _TP = 0, 1, 2, 3
# Trials and successes of each metric, as sets of codes (accuracy: codes 1 = correct, 0 = not).
_TRIALS = {
    "recall": (_FN, _TP),
    "precision": (_FP, _TP),
    "f1": (_FN, _FP, _TP),
    "accuracy": (0, 1),
}
_SUCCESS = {"recall": (_TP,), "precision": (_TP,), "f1": (_TP,), "accuracy": (1,)}
# Largest regression error counted: 100,000 of its fourth powers still sum to a finite float.
_MAX_ERROR = 1e70
# The window holds this many times min_evidence trials of the watched metric.
_WINDOW_EVIDENCE = 4


@dataclass(frozen=True, slots=True)
class Verdict:
    """One check: the window's ``value`` against ``line``, and what the test concluded.

    ``z`` is the test statistic of the decision the check is about: degradation (``value``
    significantly below ``line``; above for ``rmse``) while not degraded, recovery (significantly
    back past ``line``, then the halfway line) while degraded. ``degraded`` is the state after
    the check.
    """

    metric: str
    value: float
    line: float
    reference: float
    z: float
    critical: float
    degraded: bool
    outcomes: int
    reference_outcomes: int


class PerformanceTest:
    """Degradation of one model version's performance against its own reference.

    Parameters
    ----------
    task
        ``classification`` (binary until :meth:`update_correct` says otherwise) or
        ``regression``.
    relative_drop
        Smallest relative drop of a classifier's metrics that matters.
    floor
        A fixed line for F1 instead of ``(1 - relative_drop) x reference``.
    rmse_relative_rise
        Regression: smallest relative rise of RMSE that matters.
    alpha
        One-sided significance of each decision.
    min_evidence
        Positives, predicted positives and errors the reference must hold (outcomes, for
        regression), and trials the window must hold before a decision.
    window, max_window
        Bounds of the test window (outcomes).
    max_reference
        Most outcomes the reference grows to while waiting for evidence.
    """

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    STATE_FORMAT: ClassVar[int] = 1

    def __init__(
        self,
        task: str = "classification",
        relative_drop: float = 0.25,
        floor: float | None = None,
        rmse_relative_rise: float = 0.5,
        alpha: float = 1e-3,
        min_evidence: int = 50,
        window: int = 1000,
        max_window: int = 50_000,
        max_reference: int = 100_000,
    ) -> None:
        if task not in ("classification", "regression"):
            raise ValueError(f"task must be classification or regression, got {task!r}")
        if not 0 < relative_drop < 1 or rmse_relative_rise < 0:
            raise ValueError("need 0 < relative_drop < 1 and rmse_relative_rise >= 0")
        if floor is not None and not 0 < floor < 1:
            raise ValueError(f"floor must be in (0, 1), got {floor}")
        if not 0 < alpha < 0.5 or min_evidence < 1:
            raise ValueError("need 0 < alpha < 0.5 and min_evidence >= 1")
        if not 1 <= window <= max_window or max_reference < window:
            raise ValueError("need 1 <= window <= max_window and max_reference >= window")
        self.task = task
        self.relative_drop = relative_drop
        self.floor = floor
        self.rmse_relative_rise = rmse_relative_rise
        self.alpha = alpha
        self.min_evidence = min_evidence
        self.window = window
        self.max_window = max_window
        self.max_reference = max_reference
        self._reset()

    def _reset(self) -> None:
        self._mode = "regression" if self.task == "regression" else "binary"
        self._ref = [0, 0, 0, 0]  # binary: counts per code; accuracy: [wrong, correct]
        self._ref_sums = [0, 0.0, 0.0]  # regression: n, sum of e^2, sum of e^4 (scaled)
        self._ready = False
        self._size = 0  # the window's length, once ready
        # The window, a ring once full (``_ring`` is its oldest slot): outcome codes
        # (classification) or squared errors (regression).
        self._codes = bytearray()
        self._squares: list[float] = []
        self._ring = 0
        self._counts = [0, 0, 0, 0]
        self._degraded = False
        self._firing = ""  # the metric whose degradation is firing
        #: The last check's verdict, and the one that found the last degradation over.
        self.last: Verdict | None = None
        self.recovery: Verdict | None = None

    # -- reading -------------------------------------------------------------------------------

    @property
    def watched(self) -> tuple[str, ...]:
        """The metrics tested (a binary classifier shows a third class: accuracy from then on)."""
        return METRICS[self._mode]

    @property
    def critical(self) -> float:
        """The z each of the watched metrics' tests must pass (``alpha`` shared among them)."""
        return NormalDist().inv_cdf(1 - self.alpha / len(self.watched))

    @property
    def ready(self) -> bool:
        """Whether the reference holds enough evidence to judge the window against."""
        return self._ready

    @property
    def degraded(self) -> bool:
        return self._degraded

    def evidence(self) -> dict[str, int]:
        """The reference's counts (what "warming up" waits for)."""
        if self._mode == "regression":
            return {"outcomes": int(self._ref_sums[0])}
        if self._mode == "accuracy":
            wrong, right = self._ref[0], self._ref[1]
            return {"outcomes": wrong + right, "errors": wrong}
        tn, fn, fp, tp = self._ref
        return {
            "outcomes": tn + fn + fp + tp,
            "positives": tp + fn,
            "predicted_positives": tp + fp,
            "errors": fp + fn,
        }

    # -- updating ------------------------------------------------------------------------------

    def update(self, positive: bool, predicted: bool) -> None:
        """A binary outcome: is the label the positive class, is the prediction."""
        if self._mode != "binary":
            if self._mode == "regression":
                raise ValueError("a regression test takes errors (update_error)")
            self._add(1 if positive == predicted else 0)
            return
        self._add((2 if predicted else 0) | (1 if positive else 0))

    def update_correct(self, correct: bool) -> None:
        """A multiclass outcome: from now on the version is tested on accuracy."""
        if self._mode == "binary":
            self._switch_to_accuracy()
        self._add(1 if correct else 0)

    def update_error(self, error: float) -> None:
        """A regression outcome's error (prediction - label)."""
        # Bounded so that fourth powers, summed over the reference, stay finite.
        error = max(-_MAX_ERROR, min(_MAX_ERROR, error))
        square = error * error
        if not self._ready:
            self._ref_sums[0] += 1
            self._ref_sums[1] += square
            self._ref_sums[2] += square * square
            if self._ref_sums[0] >= max(self.window, self.min_evidence):
                self._freeze_regression()
            return
        squares = self._squares
        if len(squares) < self._size:
            squares.append(square)
        else:
            squares[self._ring] = square
            self._ring = (self._ring + 1) % self._size

    def _add(self, code: int) -> None:
        if not self._ready:
            if sum(self._ref) < self.max_reference:
                self._ref[code] += 1
                if self._reference_complete():
                    self._freeze()
            return
        codes, counts = self._codes, self._counts
        counts[code] += 1
        if len(codes) < self._size:
            codes.append(code)
        else:
            ring = self._ring
            counts[codes[ring]] -= 1
            codes[ring] = code
            self._ring = (ring + 1) % self._size

    def _switch_to_accuracy(self) -> None:
        tn, fn, fp, tp = self._ref
        self._mode = "accuracy"
        self._ref = [fn + fp, tn + tp, 0, 0]
        self._ready = False
        self._codes = bytearray()
        self._ring = 0
        self._counts = [0, 0, 0, 0]
        self._degraded = False
        self._firing = ""
        if self._reference_complete():
            self._freeze()

    def _reference_complete(self) -> bool:
        """At least ``window`` outcomes, ``min_evidence`` errors, and as many trials of every
        watched metric as the window will hold (positives, predicted positives): the line is
        only as sure as the reference it is drawn from."""
        evidence = self.evidence()
        if evidence["outcomes"] < self.window or evidence["errors"] < self.min_evidence:
            return False
        wanted = _WINDOW_EVIDENCE * self.min_evidence
        return all(self._trials(metric, self._ref)[0] >= wanted for metric in self.watched)

    @property
    def starved(self) -> bool:
        """The reference reached ``max_reference`` outcomes without the evidence it needs."""
        return not self._ready and self.evidence()["outcomes"] >= self.max_reference

    def _freeze(self) -> None:
        n = sum(self._ref)
        rate = min(self._trials(metric, self._ref)[0] for metric in self.watched) / n
        wanted = _WINDOW_EVIDENCE * self.min_evidence
        size = math.ceil(wanted / rate) if rate > 0 else self.max_window
        self._size = min(self.max_window, max(self.window, size))
        self._ready = True

    def _freeze_regression(self) -> None:
        self._size = self.window
        self._ready = True

    # -- the test ------------------------------------------------------------------------------

    @staticmethod
    def _trials(metric: str, counts: list[int]) -> tuple[int, int]:
        """(trials, successes) of ``metric`` in ``counts``."""
        return (
            sum(counts[c] for c in _TRIALS[metric]),
            sum(counts[c] for c in _SUCCESS[metric]),
        )

    @staticmethod
    def _to_metric(metric: str, p: float) -> float:
        """The metric of a proportion of successes (F1 from the Jaccard index)."""
        return 2 * p / (1 + p) if metric == "f1" else p

    @staticmethod
    def _to_proportion(metric: str, value: float) -> float:
        return value / (2 - value) if metric == "f1" else value

    def check(self) -> Verdict | None:
        """Judge the window now; ``None`` while warming up or while the window holds too little
        evidence. Updates :attr:`degraded`."""
        if not self._ready:
            return None
        if self._mode == "regression":
            verdict = self._check_regression()
        elif self._degraded:
            verdict = self._judge(self._firing, recovering=True)
        else:
            verdicts = [self._judge(metric, recovering=False) for metric in self.watched]
            judged = [v for v in verdicts if v is not None]
            verdict = max(judged, key=lambda v: v.z) if judged else None
        if verdict is not None:
            if self._degraded and not verdict.degraded:
                self.recovery = verdict
            self._degraded = verdict.degraded
            self._firing = verdict.metric if verdict.degraded else ""
            self.last = verdict
        return verdict

    def _judge(self, metric: str, recovering: bool) -> Verdict | None:
        """Is ``metric`` significantly below its line (or, ``recovering``, above the line
        halfway back)?"""
        n_now, s_now = self._trials(metric, self._counts)
        if n_now < self.min_evidence:
            return None
        n_ref, s_ref = self._trials(metric, self._ref)
        p_ref = s_ref / n_ref
        p_now = s_now / n_now
        reference = self._to_metric(metric, p_ref)
        fixed = self.floor is not None and metric == "f1"
        factor = 1 - self.relative_drop / (2 if recovering else 1)
        line = self.floor if fixed else factor * reference
        if fixed and recovering:
            line = min(1.0, self.floor + (reference - self.floor) / 2)  # type: ignore[operator]
        # Agresti-Caffo: one success and one failure added keep the variances honest at the
        # extremes (a perfect reference, a window without a single success).
        v_now = _smoothed_variance(s_now, n_now)
        slope = 0.0 if fixed else self._line_slope(metric, p_ref, factor)
        v_line = slope * slope * _smoothed_variance(s_ref, n_ref)
        q_line = self._to_proportion(metric, line)
        spread = math.sqrt(v_now + v_line)
        critical = self.critical
        if recovering:
            z = (p_now - q_line) / spread
            degraded = not z > critical
        else:
            z = (q_line - p_now) / spread
            degraded = z > critical
        return Verdict(
            metric=metric,
            value=self._to_metric(metric, p_now),
            line=line,
            reference=reference,
            z=z,
            critical=critical,
            degraded=degraded,
            outcomes=len(self._codes),
            reference_outcomes=sum(self._ref),
        )

    @staticmethod
    def _line_slope(metric: str, p_ref: float, factor: float) -> float:
        """d(line as a proportion) / d(reference proportion): the line's variance."""
        if metric != "f1":
            return factor
        f_line = factor * 2 * p_ref / (1 + p_ref)
        return factor * (2 / (1 + p_ref) ** 2) * (2 / (2 - f_line) ** 2)

    def _check_regression(self) -> Verdict | None:
        squares = self._squares
        n_now = len(squares)
        if n_now < max(self.min_evidence, self.window // 2):
            return None
        n_ref, ref_sum, ref_sum2 = self._ref_sums
        ref_mse = ref_sum / n_ref
        # Scaled by the larger mean square: fourth powers of huge errors stay finite.
        scale = max(ref_mse, math.fsum(squares) / n_now, 1e-300)
        now = [s / scale for s in squares]
        m_now = math.fsum(now) / n_now
        v_now = max(0.0, math.fsum((x - m_now) ** 2 for x in now) / max(1, n_now - 1)) / n_now
        m_ref = ref_mse / scale
        v_ref = max(0.0, ref_sum2 / (scale * scale) / n_ref - m_ref * m_ref) / n_ref
        rise = (1 + self.rmse_relative_rise) ** 2
        reference = math.sqrt(ref_mse)
        if not self._degraded:
            factor = rise
            z = (m_now - factor * m_ref) / math.sqrt(v_now + factor * factor * v_ref + 1e-300)
            degraded = z > self.critical
        else:
            factor = (1 + self.rmse_relative_rise / 2) ** 2
            z = (factor * m_ref - m_now) / math.sqrt(v_now + factor * factor * v_ref + 1e-300)
            degraded = not z > self.critical
        return Verdict(
            metric="rmse",
            value=math.sqrt(m_now * scale),
            line=reference * math.sqrt(factor),
            reference=reference,
            z=z,
            critical=self.critical,
            degraded=degraded,
            outcomes=n_now,
            reference_outcomes=int(n_ref),
        )

    # -- where the change began ----------------------------------------------------------------

    def change_point(self) -> int:
        """Outcomes ago (within the window) where the firing (or worst) metric most likely
        changed: the split of the window's trials that maximises the two-segment binomial
        likelihood (the window's start for regression)."""
        if self._mode == "regression":
            return len(self._squares)
        metric = self._firing or (self.last.metric if self.last else self.watched[0])
        trial, success = set(_TRIALS[metric]), set(_SUCCESS[metric])
        ring = self._ring
        window = self._codes[ring:] + self._codes[:ring]  # oldest first
        total_n, total_s = self._trials(metric, self._counts)
        best, best_at = -math.inf, 0
        n = s = 0
        for i, code in enumerate(window):
            if code not in trial:
                continue
            n += 1
            s += code in success
            if n < 5 or total_n - n < 5:
                continue
            ll = _loglik(s, n) + _loglik(total_s - s, total_n - n)
            if ll > best:
                best, best_at = ll, i + 1
        return len(window) - best_at

    # -- state ---------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return stamp(
            self.STATE_FORMAT,
            {
                "mode": self._mode,
                "ref": list(self._ref),
                "ref_sums": list(self._ref_sums),
                "ready": self._ready,
                "size": self._size,
                "codes": self._codes.hex(),
                "squares": list(self._squares),
                "ring": self._ring,
                "degraded": self._degraded,
                "firing": self._firing,
            },
        )

    def load_state(self, state: dict[str, Any]) -> None:
        read_format(state, "PerformanceTest", self.STATE_FORMAT)
        mode = state["mode"]
        if mode not in ("binary", "accuracy", "regression"):
            raise StateError(f"unknown performance mode {mode!r}")
        ref = [int(c) for c in state["ref"]]
        codes = bytearray.fromhex(state["codes"])
        size = int(state["size"])
        if len(ref) != 4 or min(ref) < 0 or not 0 <= size <= self.max_window:
            raise StateError("performance reference out of bounds")
        if len(codes) > size or any(c > 3 for c in codes):
            raise StateError("performance window out of bounds")
        squares = [float(s) for s in state["squares"]]
        if len(squares) > size or not all(math.isfinite(s) and s >= 0 for s in squares):
            raise StateError("performance window out of bounds")
        sums = [float(x) for x in state["ref_sums"]]
        if len(sums) != 3 or not all(math.isfinite(x) and x >= 0 for x in sums):
            raise StateError("performance reference out of bounds")
        self._mode = mode
        self._ref = ref
        self._ref_sums = [int(sums[0]), sums[1], sums[2]]
        self._ready = bool(state["ready"])
        self._size = size
        self._codes = codes
        self._counts = [codes.count(c) for c in range(4)]
        self._squares = squares
        self._ring = int(state["ring"]) % max(1, size)
        self._degraded = bool(state["degraded"])
        firing = str(state.get("firing", ""))
        if firing and firing not in METRICS[mode]:
            raise StateError(f"unknown performance metric {firing!r}")
        self._firing = firing


def _smoothed_variance(successes: int, trials: int) -> float:
    p = (successes + 1) / (trials + 2)
    return p * (1 - p) / (trials + 2)


def _loglik(s: int, n: int) -> float:
    if n == 0 or s == 0 or s == n:
        return 0.0
    p = s / n
    return s * math.log(p) + (n - s) * math.log(1 - p)
