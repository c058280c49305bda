"""A binary classifier's metrics estimated from calibrated probabilities, before any label
(confidence-based performance estimation, CBPE).

If ``p_i`` is the calibrated probability that prediction ``i``'s label is the positive class,
the expected confusion matrix of a window of predictions is

    TP = sum of p over predicted positives        FP = sum of (1 - p) over predicted positives
    FN = sum of p over predicted negatives        TN = sum of (1 - p) over predicted negatives

and the estimated metrics are those of that matrix: accuracy ``(TP + TN) / n``, precision
``TP / (TP + FP)``, recall ``TP / (TP + FN)``, F1 ``2 TP / (2 TP + FP + FN)``; ROC AUC is the
expected share of (positive, negative) pairs the scores order right,
``sum_{i, j} p_i (1 - p_j) [s_i > s_j] / sum_{i != j} p_i (1 - p_j)`` (ties one half).

**Sampling band** (``stderr``). Even a perfect estimate differs from the metric a window
realises: its labels are draws. Given the ``p_i`` the counts are sums of independent
Bernoullis, so ``Var(TP) = sum p (1 - p)`` over predicted positives, ``Var(FN)`` the same over
predicted negatives; each metric's standard error follows by the delta method (ROC AUC:
Hanley-McNeil with the expected class counts).

**Spread of the estimate** (``spread``). Two windows of predictions from the same inputs give
two estimates: each estimate is a ratio of window means (F1: ``mean(2 p yhat) / mean(p +
yhat)``), whose standard error is ``sd(a - R b) / (mean(b) sqrt(n))`` (linearised, ``R`` the
ratio). That is what tells a moved estimate from a window's chance (ROC AUC: its ``stderr``).

**Assumption.** The probability of a label given the score stays what it was when calibrated
(no concept drift). Input drift that moves predictions to where the model is less sure lowers
the estimate, as it lowers the realised metrics; a change in what labels follow a given score
is invisible to it: that is what the realised metrics and concept drift are for.

Examples
--------
>>> import numpy as np
>>> p = np.array([0.9, 0.8, 0.6, 0.3, 0.1])
>>> predicted = p > 0.5
>>> estimate = estimate_binary(p, predicted, scores=p)
>>> {m: round(v, 3) for m, v in estimate.values.items()}
{'accuracy': 0.78, 'precision': 0.767, 'recall': 0.852, 'f1': 0.807, 'roc_auc': 0.887}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.base import StateError
from detectors.score_quality import hanley_mcneil

__all__ = [
    "ESTIMATED_METRICS",
    "Estimate",
    "estimate_binary",
    "estimate_from_sums",
    "estimate_metric",
    "estimate_multiclass",
    "expected_auc",
    "window_sums",
]

#: The metrics estimated for a binary classifier.
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


@dataclass(frozen=True, slots=True)
class Estimate:
    """Estimated metrics of a window and their standard errors (a metric is missing when the
    window cannot define it, e.g. precision without a predicted positive)."""

    values: dict[str, float]
    stderr: dict[str, float]
    n: int
    spread: dict[str, float] = field(default_factory=dict)

    def to_state(self) -> dict[str, Any]:
        return {"values": self.values, "stderr": self.stderr, "spread": self.spread, "n": self.n}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Estimate:
        """The estimate :meth:`to_state` saved (a classifier's: its metrics are known ones)."""
        estimate = cls(
            {str(k): float(v) for k, v in state["values"].items()},
            {str(k): float(v) for k, v in state["stderr"].items()},
            int(state["n"]),
            {str(k): float(v) for k, v in state["spread"].items()},
        )
        if set(estimate.values) - set(ESTIMATED_METRICS):
            raise StateError("unknown estimated metric")
        return estimate


def window_sums(p: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """The five sums an estimate is made of: ``sum p``, ``sum yhat``, ``sum p yhat``,
    ``sum p^2``, ``sum p^2 yhat`` (``yhat`` 1 for a predicted positive). They add up over
    parts of a window (a window's estimate can be kept as predictions come and go)."""
    p = np.asarray(p, dtype=np.float64)
    yhat = np.asarray(predicted, dtype=np.bool_).astype(np.float64)
    p2 = p * p
    return np.array([p.sum(), yhat.sum(), p @ yhat, p2.sum(), p2 @ yhat])


def estimate_binary(
    p: np.ndarray, predicted: np.ndarray, scores: np.ndarray | None = None
) -> Estimate:
    """The estimated metrics of a window: calibrated probabilities ``p``, whether each
    prediction is the positive class, and (for ROC AUC) the raw scores that order them."""
    p = np.asarray(p, dtype=np.float64)
    estimate = estimate_from_sums(len(p), window_sums(p, predicted))
    if scores is not None and estimate.n:
        auc = expected_auc(np.asarray(scores, dtype=np.float64), p)
        if auc is not None:
            estimate.values["roc_auc"] = auc[0]
            estimate.stderr["roc_auc"] = estimate.spread["roc_auc"] = auc[1]
    return estimate


def estimate_from_sums(n: int, sums: np.ndarray) -> Estimate:
    """The estimated accuracy, precision, recall and F1 of a window of ``n`` predictions from
    its :func:`window_sums`, with their bands and spreads (no ROC AUC: it needs an order)."""
    values: dict[str, float] = {}
    stderr: dict[str, float] = {}
    spread: dict[str, float] = {}
    if n == 0:
        return Estimate(values, stderr, 0, spread)
    s_p, s_y, s_py, s_p2, s_p2y = (float(v) for v in sums)
    tp, fn = s_py, s_p - s_py  # (FP = s_y - TP)
    var_tp = s_py - s_p2y  # sum of p (1 - p) over predicted positives
    var_fn = max((s_p - s_p2) - var_tp, 0.0)  # ... over predicted negatives
    values["accuracy"] = (n - s_p - s_y + 2.0 * s_py) / n
    stderr["accuracy"] = math.sqrt(max(var_tp, 0.0) + var_fn) / n  # TN = n_neg - FN
    # Per prediction the expected correctness is p (predicted positive) or 1 - p.
    squares = s_p2y + (n - s_y) - 2.0 * (s_p - s_py) + (s_p2 - s_p2y)
    variance = max(squares / n - values["accuracy"] ** 2, 0.0)
    spread["accuracy"] = math.sqrt(variance / n)
    if s_y > 0:
        precision = values["precision"] = tp / s_y
        stderr["precision"] = math.sqrt(max(var_tp, 0.0)) / s_y
        # sum (hit - R yhat)^2, hit = p yhat: the linearised ratio's deviations
        deviations = s_p2y - 2.0 * precision * s_py + precision * precision * s_y
        spread["precision"] = math.sqrt(max(deviations, 0.0)) / s_y
    positives = tp + fn
    if positives > 0:
        recall = values["recall"] = tp / positives
        stderr["recall"] = math.sqrt(fn * fn * var_tp + tp * tp * var_fn) / positives**2
        deviations = s_p2y - 2.0 * recall * s_p2y + recall * recall * s_p2
        spread["recall"] = math.sqrt(max(deviations, 0.0)) / s_p
    denominator = tp + fn + s_y  # 2 TP + FP + FN
    if denominator > 0:
        f1 = values["f1"] = 2.0 * tp / denominator
        d_tp = 2.0 * (fn + s_y) / denominator**2
        d_fn = -2.0 * tp / denominator**2
        stderr["f1"] = math.sqrt(max(d_tp * d_tp * var_tp + d_fn * d_fn * var_fn, 0.0))
        # top 2 hit, bottom p + yhat
        deviations = 4.0 * s_p2y - 4.0 * f1 * (s_p2y + s_py) + f1 * f1 * (s_p2 + 2.0 * s_py + s_y)
        spread["f1"] = math.sqrt(max(deviations, 0.0)) / denominator
    return Estimate(values, stderr, n, spread)


def estimate_multiclass(
    p: np.ndarray, predicted: np.ndarray, scores: np.ndarray | None = None
) -> Estimate:
    """The estimated metrics of a multiclass window: ``p[i, c]`` the calibrated probability
    that prediction ``i``'s label is class ``c`` (rows summing to 1), ``predicted[i]`` the
    index of its predicted class, ``scores`` (for ROC AUC) the raw class scores.

    Accuracy is ``mean_i p[i, predicted[i]]``; precision, recall, F1 and ROC AUC are the
    macro means over classes of the one-vs-rest binary estimates (:func:`estimate_binary`,
    class ``c`` against the rest), their bands and spreads combined as if the classes were
    independent (``sqrt(sum s_c^2) / K``).

    >>> p = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4], [0.1, 0.1, 0.8]])
    >>> estimate = estimate_multiclass(p, np.array([0, 1, 2, 2]))
    >>> round(estimate.values["accuracy"], 3), round(estimate.values["f1"], 3)
    (0.675, 0.67)
    """
    p = np.asarray(p, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.int64)
    n, classes = p.shape
    values: dict[str, float] = {}
    stderr: dict[str, float] = {}
    spread: dict[str, float] = {}
    if n == 0:
        return Estimate(values, stderr, 0, spread)
    right = p[np.arange(n), predicted]  # the probability that each prediction is right
    values["accuracy"] = float(right.mean())
    stderr["accuracy"] = math.sqrt(float((right * (1.0 - right)).sum())) / n
    spread["accuracy"] = float(right.std()) / math.sqrt(n)
    # Each class against the rest: the five window sums of every class at once.
    yhat = (predicted[:, None] == np.arange(classes)).astype(np.float64)
    p2 = p * p
    sums = np.stack([p.sum(0), yhat.sum(0), (p * yhat).sum(0), p2.sum(0), (p2 * yhat).sum(0)])
    per_class = [estimate_from_sums(n, sums[:, c]) for c in range(classes)]
    if scores is not None:
        for c, estimate in enumerate(per_class):
            auc = expected_auc(np.asarray(scores[:, c], dtype=np.float64), p[:, c])
            if auc is not None:
                estimate.values["roc_auc"] = auc[0]
                estimate.stderr["roc_auc"] = estimate.spread["roc_auc"] = auc[1]
    for metric in ("precision", "recall", "f1", "roc_auc"):
        known = [e for e in per_class if metric in e.values]
        if not known:
            continue
        k = len(known)
        values[metric] = sum(e.values[metric] for e in known) / k
        stderr[metric] = math.sqrt(sum(e.stderr[metric] ** 2 for e in known)) / k
        spread[metric] = math.sqrt(sum(e.spread[metric] ** 2 for e in known)) / k
    return Estimate(values, stderr, n, spread)


def estimate_metric(
    p: np.ndarray, predicted: np.ndarray, metric: str, scores: np.ndarray | None = None
) -> tuple[float, float] | None:
    """One estimated metric and its spread (what a check needs), in a few array operations:
    the same values :func:`estimate_binary` gives (ROC AUC through it).

    >>> p = np.array([0.9, 0.8, 0.6, 0.3, 0.1])
    >>> value, spread = estimate_metric(p, p > 0.5, "f1")
    >>> round(value, 3) == round(estimate_binary(p, p > 0.5).values["f1"], 3)
    True
    """
    if metric == "roc_auc" or not len(p):
        # (ROC AUC orders by the raw scores: calibrated ones tie across a map's flat steps)
        full = estimate_binary(
            p, predicted, (p if scores is None else scores) if metric == "roc_auc" else None
        )
        return (full.values[metric], full.spread[metric]) if metric in full.values else None
    yhat = predicted.astype(np.float64)
    hit = p * yhat
    if metric == "accuracy":
        correct = hit + (1.0 - p) * (1.0 - yhat)
        return float(correct.mean()), float(correct.std()) / math.sqrt(len(p))
    bottom = {"f1": p + yhat, "precision": yhat, "recall": p}[metric]
    top = 2.0 * hit if metric == "f1" else hit
    total = float(bottom.sum())
    if total <= 0.0:
        return None
    value = float(top.sum()) / total
    return value, _ratio_spread(top, bottom, value)


def _ratio_spread(top: np.ndarray, bottom: np.ndarray, ratio: float) -> float:
    """The standard error of ``mean(top) / mean(bottom)`` over windows like this one."""
    return float(np.std(top - ratio * bottom)) / (float(np.mean(bottom)) * math.sqrt(len(top)))


def expected_auc(scores: np.ndarray, p: np.ndarray) -> tuple[float, float] | None:
    """The expected ROC AUC of a window, expected concordant (positive, negative) pairs over
    expected pairs (ties one half), and its Hanley-McNeil standard error."""
    order = np.argsort(scores, kind="stable")
    s, pos = scores[order], p[order]
    neg = 1.0 - pos
    self_pairs = float(pos @ neg)  # a prediction is not a pair with itself
    pairs = float(pos.sum()) * float(neg.sum()) - self_pairs
    if pairs <= 0.0:
        return None
    distinct = s[1:] != s[:-1]
    if distinct.all():  # the usual case: no ties, the negatives strictly below each
        concordant = float(pos @ (np.cumsum(neg) - neg))
    else:
        starts = np.flatnonzero(np.r_[True, distinct])
        group_pos = np.add.reduceat(pos, starts)
        group_neg = np.add.reduceat(neg, starts)
        below = np.cumsum(group_neg) - group_neg
        concordant = float(group_pos @ below + 0.5 * (group_pos @ group_neg)) - 0.5 * self_pairs
    auc = concordant / pairs
    return auc, _hanley_mcneil(auc, float(p.sum()), float(neg.sum()))


def _hanley_mcneil(auc: float, n1: float, n0: float) -> float:
    """Hanley-McNeil's standard error (infinite below one outcome of a class)."""
    if n1 < 1.0 or n0 < 1.0:
        return math.inf
    return math.sqrt(max(hanley_mcneil(auc, n1, n0), 0.0))
