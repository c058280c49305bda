"""How good a binary classifier's probability scores are, over its last labelled outcomes.

For the last ``window`` outcomes of a version that sends a probability ``score`` (of the
positive class), with ``y`` = 1 when the label is the positive class:

``roc_auc``
    the probability that a positive scores above a negative (ties count one half): the
    Mann-Whitney statistic from average ranks, ``(R+ - n+(n+ + 1)/2) / (n+ n-)``; undefined
    (not reported) until the window holds both classes;
``log_loss``
    ``-mean(y log p + (1 - y) log(1 - p))``, ``p`` clipped to [eps, 1 - eps] (eps the float's
    machine epsilon, as scikit-learn does);
``brier``
    ``mean((p - y)^2)``;
``calibration_error``
    the expected calibration error over ``bins`` equal-width bins of ``p``:
    ``sum_b (n_b / n) |mean(y_b) - mean(p_b)|``.

They are computed from the window when read (numpy, ~0.1 ms for 1,000 outcomes) and cached
until the next outcome: a scrape or a check reads them, not every outcome.

Examples
--------
>>> quality = ScoreQuality(window=4)
>>> for score, positive in [(0.9, True), (0.2, False), (0.6, False), (0.7, True)]:
...     quality.update(score, positive)
>>> {k: round(v, 3) for k, v in quality.values().items()}
{'roc_auc': 1.0, 'log_loss': 0.4, 'brier': 0.125, 'calibration_error': 0.3}
"""

from __future__ import annotations

import math
from array import array
from typing import Any, ClassVar

import numpy as np

from detectors.base import StateError
from detectors.saved_state import read_format, stamp

__all__ = ["ScoreQuality", "roc_auc"]

_CLIP = float(np.finfo(np.float64).eps)


class ScoreQuality:
    """Probability-score metrics of a binary classifier over a count window.

    Parameters
    ----------
    window
        Outcomes in the window.
    bins
        Equal-width bins of the calibration error.
    """

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    STATE_FORMAT: ClassVar[int] = 1

    def __init__(self, window: int = 1000, bins: int = 10) -> None:
        if window < 1 or bins < 1:
            raise ValueError("window and bins must be positive")
        self.window = window
        self.bins = bins
        # Plain buffers (an item is set for every outcome: ~4x cheaper than a numpy array's),
        # viewed as numpy arrays when the metrics are read.
        self._scores = array("d", bytes(8 * window))
        self._positive = bytearray(window)
        self._next = 0  # slot of the next outcome
        self.n = 0
        self._cached: dict[str, float] | None = None

    def update(self, score: float, positive: bool) -> None:
        """One labelled outcome: its score (probability of the positive class), and whether
        its label is the positive class."""
        slot = self._next
        self._scores[slot] = score
        self._positive[slot] = positive
        self._next = (slot + 1) % self.window
        self.n = min(self.n + 1, self.window)
        self._cached = None

    def _window(self) -> tuple[np.ndarray, np.ndarray]:
        """The window's scores and labels, oldest first (sums in the same order before and
        after a restart: the same values to the last bit)."""
        scores = np.frombuffer(self._scores, dtype=np.float64)
        positive = np.frombuffer(self._positive, dtype=np.bool_)
        if self.n < self.window:
            return scores[: self.n].copy(), positive[: self.n].copy()
        order = np.r_[self._next : self.window, 0 : self._next]
        return scores[order], positive[order]

    def values(self) -> dict[str, float]:
        """``roc_auc`` (when both classes are in the window), ``log_loss``, ``brier`` and
        ``calibration_error``; empty before the first outcome."""
        if self._cached is not None:
            return self._cached
        if not self.n:
            return {}
        p, y = self._window()
        out: dict[str, float] = {}
        auc = roc_auc(p, y)
        if auc is not None:
            out["roc_auc"] = auc
        clipped = np.clip(p, _CLIP, 1 - _CLIP)
        out["log_loss"] = float(-np.mean(np.where(y, np.log(clipped), np.log1p(-clipped))))
        out["brier"] = float(np.mean((p - y) ** 2))
        which = np.minimum((p * self.bins).astype(np.int64), self.bins - 1)
        gap = np.abs(
            np.bincount(which, weights=y.astype(np.float64), minlength=self.bins)
            - np.bincount(which, weights=p, minlength=self.bins)
        )
        out["calibration_error"] = float(gap.sum() / len(p))  # sum_b n_b/n |mean y - mean p|
        self._cached = out
        return out

    # -- per outcome (what the score test reads, detectors/score_test.py) ---------------------

    def outcome_losses(self, metric: str) -> np.ndarray:
        """Each outcome's ``log_loss`` or ``brier`` term in the window, oldest first."""
        p, y = self._window()
        if metric == "brier":
            return (p - y) ** 2
        clipped = np.clip(p, _CLIP, 1 - _CLIP)
        return -np.where(y, np.log(clipped), np.log1p(-clipped))

    def auc_parts(self) -> list[tuple[float, int, int]]:
        """(ROC AUC, positives, negatives) of the window; none without both classes."""
        p, y = self._window()
        auc = roc_auc(p, y)
        positives = int(np.count_nonzero(y))
        return [] if auc is None else [(auc, positives, len(y) - positives)]

    def calibration_gaps(self) -> tuple[np.ndarray, np.ndarray]:
        """Each outcome's calibration bin and ``y - p``."""
        p, y = self._window()
        return np.minimum((p * self.bins).astype(np.int64), self.bins - 1), y - p

    # -- state ---------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        p, y = self._window()
        return stamp(
            self.STATE_FORMAT,
            {"scores": p.tolist(), "positive": "".join("1" if v else "0" for v in y)},
        )

    def load_state(self, state: dict[str, Any]) -> None:
        read_format(state, "ScoreQuality", self.STATE_FORMAT)
        scores, positive = state["scores"], state["positive"]
        if len(scores) > self.window or len(scores) != len(positive) or set(positive) - {"0", "1"}:
            raise StateError("score window out of bounds")
        values = [float(s) for s in scores]
        if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values):
            raise StateError("scores must be probabilities")
        self.__init__(self.window, self.bins)  # type: ignore[misc]
        for value, flag in zip(values, positive, strict=True):
            self.update(value, flag == "1")


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """The Mann-Whitney ROC AUC of ``scores`` from average ranks (ties count one half);
    ``None`` unless ``positive`` holds both classes."""
    positives = int(np.count_nonzero(positive))
    negatives = len(positive) - positives
    if not positives or not negatives:
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - counts + (counts + 1) / 2)[inverse]
    rank_sum = float(ranks[positive].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def hanley_mcneil(auc: float, positives: float, negatives: float) -> float:
    """The variance of a ROC AUC over ``positives`` and ``negatives`` (Hanley & McNeil,
    1982): ``(A(1-A) + (n1-1)(Q1-A^2) + (n0-1)(Q2-A^2)) / (n1 n0)``, ``Q1 = A/(2-A)``,
    ``Q2 = 2A^2/(1+A)``."""
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    return (
        auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)
    ) / (positives * negatives)
