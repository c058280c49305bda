"""Isotonic calibration: a non-decreasing map from a model's score to the probability that the
label is the positive class, learned from labelled outcomes.

Pool adjacent violators (PAV) over the outcomes sorted by score, ties pooled first: each block
of scores gets the share of positives in it, and blocks merge until the shares never decrease.
The map is that share from a block's lowest score to its highest, linear between two blocks,
flat below the first and above the last: scikit-learn's ``IsotonicRegression`` with
``out_of_bounds="clip"`` (the tests hold the two together). Any monotone
score works (a probability that is not calibrated, a margin squashed into [0, 1]): only the
order of the scores matters to the fit.

The map is a few hundred breakpoints at most (one per block, blocks of at least
``min_block`` outcomes so that the extremes are not single outcomes of probability 0 or 1),
saved as plain numbers.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> scores = rng.random(20_000)
>>> positive = rng.random(20_000) < scores**2  # a score that over-states the probability
>>> calibration = IsotonicCalibration.fit(scores, positive)
>>> np.round(calibration(np.array([0.1, 0.5, 0.9])), 2)
array([0.  , 0.25, 0.83])
"""

from __future__ import annotations

import itertools
import math
from typing import Any, ClassVar

import numpy as np

from detectors.base import StateError
from detectors.saved_state import read_format, stamp

__all__ = ["ClassCalibration", "IsotonicCalibration"]

#: Most breakpoints a saved map may have.
MAX_BREAKPOINTS = 10_000
#: Most classes a class calibration maps.
MAX_CLASSES = 64


class IsotonicCalibration:
    """A fitted map score -> probability (see the module's docstring).

    Parameters
    ----------
    scores, probabilities
        Breakpoints: increasing scores and their non-decreasing probabilities.
    """

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    STATE_FORMAT: ClassVar[int] = 1

    def __init__(self, scores: np.ndarray, probabilities: np.ndarray) -> None:
        self.scores = np.asarray(scores, dtype=np.float64)
        self.probabilities = np.asarray(probabilities, dtype=np.float64)

    @classmethod
    def fit(
        cls, scores: np.ndarray, positive: np.ndarray, min_block: int = 20
    ) -> IsotonicCalibration:
        """Fit on labelled outcomes: their scores, and whether each label is positive."""
        scores = np.asarray(scores, dtype=np.float64)
        if len(scores) == 0:
            raise ValueError("no outcome to calibrate on")
        order = np.argsort(scores, kind="stable")
        x = scores[order]
        y = np.asarray(positive, dtype=np.float64)[order]
        # Ties first: one block per distinct score.
        starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])
        counts = np.diff(np.r_[starts, len(x)]).astype(np.float64)
        sums_y = np.add.reduceat(y, starts)
        distinct = x[starts].tolist()
        blocks = _pool(counts.tolist(), sums_y.tolist(), distinct, min_block)
        xs: list[float] = []
        ps: list[float] = []
        for n, sum_y, low, high in blocks:
            for score in (low, high) if high > low else (low,):
                xs.append(score)
                ps.append(sum_y / n)
        return cls(np.array(xs), np.array(ps))

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """The calibrated probabilities of ``scores``."""
        return np.interp(scores, self.scores, self.probabilities)

    # -- state ----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return stamp(
            self.STATE_FORMAT,
            {"scores": self.scores.tolist(), "probabilities": self.probabilities.tolist()},
        )

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> IsotonicCalibration:
        read_format(state, "IsotonicCalibration", cls.STATE_FORMAT)
        scores = [float(v) for v in state["scores"]]
        probabilities = [float(v) for v in state["probabilities"]]
        if not 0 < len(scores) == len(probabilities) <= MAX_BREAKPOINTS:
            raise StateError("a calibration map has 1 to 10,000 breakpoints, as many of each")
        if not all(math.isfinite(v) for v in scores) or any(
            not 0.0 <= p <= 1.0 for p in probabilities
        ):
            raise StateError("a calibration map's scores are finite, its probabilities in [0, 1]")
        if any(b < a for a, b in itertools.pairwise(scores)) or any(
            b < a for a, b in itertools.pairwise(probabilities)
        ):
            raise StateError("a calibration map does not decrease")
        return cls(np.array(scores), np.array(probabilities))


def _pool(
    counts: list[float], sums_y: list[float], scores: list[float], min_block: int
) -> list[tuple[float, float, float, float]]:
    """Pool adjacent violators on blocks (count, sum of labels, lowest score, highest score),
    one per distinct score to begin with; then merge blocks smaller than ``min_block`` into
    their neighbour (merging keeps the shares non-decreasing)."""
    stack: list[tuple[float, float, float, float]] = []
    for n, sum_y, score in zip(counts, sums_y, scores, strict=True):
        current = (n, sum_y, score, score)
        # Merge while the previous block's share is not below this one's.
        while stack and stack[-1][1] * current[0] >= current[1] * stack[-1][0]:
            previous = stack.pop()
            current = _join(previous, current)
        stack.append(current)
    merged: list[tuple[float, float, float, float]] = []
    for block in stack:
        if merged and merged[-1][0] < min_block:
            merged[-1] = _join(merged[-1], block)
        else:
            merged.append(block)
    if len(merged) > 1 and merged[-1][0] < min_block:
        last = merged.pop()
        merged[-1] = _join(merged[-1], last)
    return merged


def _join(
    low: tuple[float, float, float, float], high: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    return (low[0] + high[0], low[1] + high[1], low[2], high[3])


class ClassCalibration:
    """A multiclass model's calibration: one isotonic map per class (that class against the
    rest, :class:`IsotonicCalibration`), each row of calibrated probabilities then scaled to
    sum to 1 (a row the maps all send to 0 stays as the model's scores, scaled).

    Parameters
    ----------
    maps
        One map per class, in the order of the score columns.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> truth = rng.dirichlet([1, 1, 1], 5000)
    >>> labels = (rng.random((5000, 1)) > truth.cumsum(axis=1)).sum(axis=1)
    >>> sharp = truth**3 / (truth**3).sum(axis=1, keepdims=True)  # over-confident scores
    >>> calibration = ClassCalibration.fit(sharp, labels)
    >>> confidence = calibration(sharp).max(axis=1).mean()  # the raw scores: 0.82
    >>> accuracy = (sharp.argmax(axis=1) == labels).mean()
    >>> round(float(confidence), 2), round(float(accuracy), 2)
    (0.62, 0.61)
    """

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    STATE_FORMAT: ClassVar[int] = 1

    def __init__(self, maps: list[IsotonicCalibration]) -> None:
        self.maps = maps

    @classmethod
    def fit(cls, scores: np.ndarray, labels: np.ndarray, min_block: int = 20) -> ClassCalibration:
        """Fit on labelled outcomes: their class scores ``(n, K)`` and label indices."""
        scores = np.asarray(scores, dtype=np.float64)
        labels = np.asarray(labels)
        return cls(
            [
                IsotonicCalibration.fit(scores[:, c], labels == c, min_block)
                for c in range(scores.shape[1])
            ]
        )

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities of ``scores`` ``(n, K)``, rows summing to 1."""
        scores = np.asarray(scores, dtype=np.float64)
        calibrated = np.column_stack([m(scores[:, c]) for c, m in enumerate(self.maps)])
        totals = calibrated.sum(axis=1, keepdims=True)
        fallback = scores / np.maximum(scores.sum(axis=1, keepdims=True), 1e-300)
        return np.where(totals > 0, calibrated / np.where(totals > 0, totals, 1.0), fallback)

    def to_state(self) -> dict[str, Any]:
        return stamp(self.STATE_FORMAT, {"maps": [m.to_state() for m in self.maps]})

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ClassCalibration:
        read_format(state, "ClassCalibration", cls.STATE_FORMAT)
        maps = state["maps"]
        if not 2 <= len(maps) <= MAX_CLASSES:
            raise StateError(f"a class calibration has 2 to {MAX_CLASSES} maps")
        return cls([IsotonicCalibration.from_state(m) for m in maps])
