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

import numpy as np

__all__ = ["ESTIMATED_METRICS", "Estimate", "estimate_binary", "estimate_metric"]

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


def estimate_binary(
    p: np.ndarray, predicted: np.ndarray, scores: np.ndarray | None = None
) -> Estimate:
    """The estimated metrics of a window: calibrated probabilities ``p``, whether each
    prediction is the positive class, and (for ROC AUC) the raw scores that order them."""
    p = np.asarray(p, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.bool_)
    n = len(p)
    values: dict[str, float] = {}
    stderr: dict[str, float] = {}
    spread: dict[str, float] = {}
    if n == 0:
        return Estimate(values, stderr, 0, spread)
    q = 1.0 - p
    var = p * q
    tp = float(p[predicted].sum())
    fp = float(q[predicted].sum())
    fn = float(p[~predicted].sum())
    var_tp = float(var[predicted].sum())
    var_fn = float(var[~predicted].sum())
    predicted_positive = tp + fp  # the count of predicted positives
    values["accuracy"] = (tp + (n - predicted_positive - fn)) / n
    stderr["accuracy"] = math.sqrt(var_tp + var_fn) / n  # TN = n_neg - FN: same variance
    yhat = predicted.astype(np.float64)
    hit = p * yhat  # expected true positive, per prediction
    spread["accuracy"] = float(np.std(hit + q * (1.0 - yhat))) / math.sqrt(n)
    if predicted_positive > 0:
        values["precision"] = tp / predicted_positive
        stderr["precision"] = math.sqrt(var_tp) / predicted_positive
        spread["precision"] = _ratio_spread(hit, yhat, values["precision"])
    positives = tp + fn
    if positives > 0:
        values["recall"] = tp / positives
        stderr["recall"] = math.sqrt(fn * fn * var_tp + tp * tp * var_fn) / positives**2
        spread["recall"] = _ratio_spread(hit, p, values["recall"])
    denominator = tp + fn + predicted_positive  # 2 TP + FP + FN
    if denominator > 0:
        values["f1"] = 2.0 * tp / denominator
        d_tp = 2.0 * (fn + predicted_positive) / denominator**2
        d_fn = -2.0 * tp / denominator**2
        stderr["f1"] = math.sqrt(d_tp * d_tp * var_tp + d_fn * d_fn * var_fn)
        spread["f1"] = _ratio_spread(2.0 * hit, p + yhat, values["f1"])
    if scores is not None:
        auc = _expected_auc(np.asarray(scores, dtype=np.float64), p)
        if auc is not None:
            values["roc_auc"] = auc
            n1, n0 = positives, float(q.sum())
            stderr["roc_auc"] = spread["roc_auc"] = _hanley_mcneil(auc, n1, n0)
    return Estimate(values, stderr, n, spread)


def estimate_metric(
    p: np.ndarray, predicted: np.ndarray, metric: str
) -> tuple[float, float] | None:
    """One estimated metric and its spread (what a check needs), in a few array operations:
    the same values :func:`estimate_binary` gives (ROC AUC through it).

    >>> p = np.array([0.9, 0.8, 0.6, 0.3, 0.1])
    >>> value, spread = estimate_metric(p, p > 0.5, "f1")
    >>> round(value, 3) == round(estimate_binary(p, p > 0.5).values["f1"], 3)
    True
    """
    if metric == "roc_auc" or not len(p):
        full = estimate_binary(p, predicted, p if metric == "roc_auc" else None)
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


def _expected_auc(scores: np.ndarray, p: np.ndarray) -> float | None:
    """Expected concordant (positive, negative) pairs over expected pairs (ties one half)."""
    order = np.argsort(scores, kind="stable")
    s, pos = scores[order], p[order]
    neg = 1.0 - pos
    # Per group of tied scores: the negatives strictly below it, and its own.
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    group_pos = np.add.reduceat(pos, starts)
    group_neg = np.add.reduceat(neg, starts)
    below = np.cumsum(group_neg) - group_neg
    concordant = float((group_pos * below).sum() + 0.5 * (group_pos * group_neg).sum())
    # A prediction is not a pair with itself: its own p (1 - p) is counted in the tie term.
    concordant -= 0.5 * float((pos * neg).sum())
    pairs = float(pos.sum() * neg.sum() - (pos * neg).sum())
    if pairs <= 0.0:
        return None
    return concordant / pairs


def _hanley_mcneil(auc: float, n1: float, n0: float) -> float:
    if n1 < 1.0 or n0 < 1.0:
        return math.inf
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc * auc / (1.0 + auc)
    variance = (
        auc * (1.0 - auc) + (n1 - 1.0) * (q1 - auc * auc) + (n0 - 1.0) * (q2 - auc * auc)
    ) / (n1 * n0)
    return math.sqrt(max(variance, 0.0))
