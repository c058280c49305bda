"""How good a multiclass classifier's class -> probability scores are, over its last labelled
outcomes.

For the last ``window`` outcomes of a version whose predictions send a class -> probability
map ``p`` (a class missing from the map has probability 0), with ``y`` the label's class:

``roc_auc``
    macro one-vs-rest: for each class ``c`` with both positives (label ``c``) and negatives in
    the window, the binary ROC AUC of ``p_c`` (Mann-Whitney, average ranks), then their plain
    mean. Only the first ``max_classes`` classes seen are tracked for it: classes first seen
    after that count in the three metrics below, but not in the AUC. Not reported while no
    tracked class has both positives and negatives;
``log_loss``
    ``-mean(log p_y)``, ``p_y`` clipped to [eps, 1 - eps] (eps the float's machine epsilon);
    a label absent from its map has ``p_y = 0``;
``brier``
    the multiclass Brier score, ``mean(sum_c (p_c - [c = y])^2)`` (from 0, to 2 when every
    outcome puts all its mass on a wrong class): per outcome, ``sum_c p_c^2 - 2 p_y + 1``;
``calibration_error``
    top-label expected calibration error over ``bins`` equal-width bins of the confidence
    ``max_c p_c``: ``sum_b (n_b / n) |mean(correct_b) - mean(confidence_b)|``, where
    ``correct`` is 1 when the top class is the label (``1 / m`` when the label is one of ``m``
    classes tied at the top: a random tie-break's expected accuracy).

Per outcome the window keeps ``p_y``, ``sum_c p_c^2``, the confidence and ``correct`` (four
floats), the label's tracked class, and ``p_c`` of each tracked class (a column of ``window``
floats each, allocated when the class is first seen): at most ``8 * (4 + max_classes)``
bytes an outcome. The metrics are computed from the window when read and cached until the
next outcome, as :class:`~detectors.score_quality.ScoreQuality`'s.

Examples
--------
>>> quality = ClassScoreQuality(window=4)
>>> for scores, label in [
...     ({"cat": 0.7, "dog": 0.2, "fox": 0.1}, "cat"),
...     ({"cat": 0.2, "dog": 0.5, "fox": 0.3}, "dog"),
...     ({"cat": 0.1, "dog": 0.3, "fox": 0.6}, "dog"),
...     ({"cat": 0.3, "dog": 0.3, "fox": 0.4}, "fox"),
... ]:
...     quality.update(scores, label)
>>> {k: round(v, 3) for k, v in quality.values().items()}
{'roc_auc': 0.847, 'log_loss': 0.793, 'brier': 0.48, 'calibration_error': 0.5}
"""

from __future__ import annotations

import math
from array import array
from typing import Any, ClassVar

import numpy as np

from detectors.base import StateError
from detectors.saved_state import read_format, stamp
from detectors.score_quality import roc_auc

__all__ = ["ClassScoreQuality"]

_CLIP = float(np.finfo(np.float64).eps)
#: A label of a class not tracked for the AUC.
_UNTRACKED = 255
#: Largest sum of squared probabilities a saved outcome may hold (a map of that many entries).
_MAX_SQUARES = 10_000.0


class ClassScoreQuality:
    """Probability-score metrics of a multiclass classifier over a count window.

    Parameters
    ----------
    window
        Outcomes in the window.
    bins
        Equal-width bins of the calibration error.
    max_classes
        Classes tracked for the one-vs-rest ROC AUC (the first ones seen), at most 254.
    """

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    STATE_FORMAT: ClassVar[int] = 1

    def __init__(self, window: int = 1000, bins: int = 10, max_classes: int = 16) -> None:
        if window < 1 or bins < 1 or not 1 <= max_classes < _UNTRACKED:
            raise ValueError("need window >= 1, bins >= 1 and 1 <= max_classes <= 254")
        self.window = window
        self.bins = bins
        self.max_classes = max_classes
        # Plain buffers, set item by item (cheaper than numpy's per item), read as arrays.
        self._true = array("d", bytes(8 * window))  # p of the label
        self._squares = array("d", bytes(8 * window))  # sum_c p_c^2
        self._confidence = array("d", bytes(8 * window))
        self._correct = array("d", bytes(8 * window))
        self._label = bytearray(window)  # the label's tracked class, or _UNTRACKED
        self._classes: dict[str, int] = {}  # tracked class -> its column
        self._columns: list[array[float]] = []
        self._next = 0
        self.n = 0
        self._cached: dict[str, float] | None = None

    @property
    def classes(self) -> list[str]:
        """The classes tracked for the ROC AUC, first seen first."""
        return list(self._classes)

    def _track(self, name: str) -> int:
        column = self._classes.get(name)
        if column is None:
            if len(self._classes) >= self.max_classes:
                return _UNTRACKED
            column = self._classes[name] = len(self._columns)
            # (Earlier outcomes did not name the class: probability 0.)
            self._columns.append(array("d", bytes(8 * self.window)))
        return column

    def update(self, scores: dict[str, float], label: str) -> None:
        """One labelled outcome: its class -> probability ``scores`` (non-empty), and the name of
        its label's class (a JSON object's key: ``"true"``, ``"3"``, ``"cat"``)."""
        values = list(scores.values())
        confidence = max(values)
        p_true = scores.get(label, 0.0)
        slot = self._next
        self._true[slot] = p_true
        self._squares[slot] = math.fsum(p * p for p in values)
        self._confidence[slot] = confidence
        self._correct[slot] = 1.0 / values.count(confidence) if p_true == confidence else 0.0
        if len(self._classes) < self.max_classes:
            for name in scores:
                if name not in self._classes:
                    self._track(name)
        self._label[slot] = self._track(label)
        for name, column in self._classes.items():
            self._columns[column][slot] = scores.get(name, 0.0)
        self._next = (slot + 1) % self.window
        self.n = min(self.n + 1, self.window)
        self._cached = None

    def _order(self) -> np.ndarray | slice:
        """Window slots, oldest first (sums in the same order before and after a restart)."""
        if self.n < self.window:
            return slice(0, self.n)
        return np.r_[self._next : self.window, 0 : self._next]

    def _read(self, buffer: array[float], order: np.ndarray | slice) -> np.ndarray:
        return np.frombuffer(buffer, dtype=np.float64)[order].copy()

    def values(self) -> dict[str, float]:
        """``roc_auc`` (when a tracked class has both positives and negatives in the window),
        ``log_loss``, ``brier`` and ``calibration_error``; empty before the first outcome."""
        if self._cached is not None:
            return self._cached
        if not self.n:
            return {}
        order = self._order()
        labels = np.frombuffer(self._label, dtype=np.uint8)[order]
        out: dict[str, float] = {}
        aucs = [
            auc
            for column in self._classes.values()
            if (auc := roc_auc(self._read(self._columns[column], order), labels == column))
            is not None
        ]
        if aucs:
            out["roc_auc"] = math.fsum(aucs) / len(aucs)
        p_true = self._read(self._true, order)
        out["log_loss"] = float(-np.mean(np.log(np.clip(p_true, _CLIP, 1 - _CLIP))))
        out["brier"] = float(np.mean(self._read(self._squares, order) - 2 * p_true + 1))
        confidence = self._read(self._confidence, order)
        which = np.minimum((confidence * self.bins).astype(np.int64), self.bins - 1)
        gap = np.abs(
            np.bincount(which, weights=self._read(self._correct, order), minlength=self.bins)
            - np.bincount(which, weights=confidence, minlength=self.bins)
        )
        out["calibration_error"] = float(gap.sum() / len(confidence))
        self._cached = out
        return out

    # -- per outcome (what the score test reads, detectors/score_test.py) ---------------------

    def outcome_losses(self, metric: str) -> np.ndarray:
        """Each outcome's ``log_loss`` or ``brier`` term in the window, oldest first."""
        order = self._order()
        p_true = self._read(self._true, order)
        if metric == "brier":
            return self._read(self._squares, order) - 2 * p_true + 1
        return -np.log(np.clip(p_true, _CLIP, 1 - _CLIP))

    def auc_parts(self) -> list[tuple[float, int, int]]:
        """(ROC AUC, positives, negatives) of each tracked class with both in the window."""
        order = self._order()
        labels = np.frombuffer(self._label, dtype=np.uint8)[order]
        parts = []
        for column in self._classes.values():
            positive = labels == column
            auc = roc_auc(self._read(self._columns[column], order), positive)
            if auc is not None:
                positives = int(np.count_nonzero(positive))
                parts.append((auc, positives, len(labels) - positives))
        return parts

    def calibration_gaps(self) -> tuple[np.ndarray, np.ndarray]:
        """Each outcome's calibration bin (of its confidence) and ``correct - confidence``."""
        order = self._order()
        confidence = self._read(self._confidence, order)
        which = np.minimum((confidence * self.bins).astype(np.int64), self.bins - 1)
        return which, self._read(self._correct, order) - confidence

    # -- state ---------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        order = self._order()
        labels = np.frombuffer(self._label, dtype=np.uint8)[order]
        return stamp(
            self.STATE_FORMAT,
            {
                "classes": self.classes,
                # per outcome, oldest first: the label's tracked class (-1: not tracked)
                "labels": [-1 if c == _UNTRACKED else int(c) for c in labels],
                "true": self._read(self._true, order).tolist(),
                "squares": self._read(self._squares, order).tolist(),
                "confidence": self._read(self._confidence, order).tolist(),
                "correct": self._read(self._correct, order).tolist(),
                "columns": [self._read(c, order).tolist() for c in self._columns],
            },
        )

    def load_state(self, state: dict[str, Any]) -> None:
        read_format(state, "ClassScoreQuality", self.STATE_FORMAT)
        classes, labels, columns = state["classes"], state["labels"], state["columns"]
        n = len(labels)
        if (
            n > self.window
            or len(classes) > self.max_classes
            or len(columns) != len(classes)
            or not all(type(c) is str for c in classes)
            or len(set(classes)) != len(classes)
        ):
            raise StateError("class score window out of bounds")
        if not all(type(c) is int and -1 <= c < len(classes) for c in labels):
            raise StateError("a label must be a tracked class's index, or -1")
        series = [state[key] for key in ("true", "squares", "confidence", "correct")]
        series += columns
        if any(len(values) != n for values in series):
            raise StateError("class score window out of bounds")
        floats = [[float(v) for v in values] for values in series]
        squares = floats.pop(1)
        if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for values in floats for v in values):
            raise StateError("class scores must be probabilities")
        if not all(math.isfinite(v) and 0.0 <= v <= _MAX_SQUARES for v in squares):
            raise StateError("a sum of squared probabilities out of bounds")
        self.__init__(self.window, self.bins, self.max_classes)  # type: ignore[misc]
        floats.insert(1, squares)
        buffers = (self._true, self._squares, self._confidence, self._correct)
        for buffer, values in zip(buffers, floats[:4], strict=True):
            buffer[:n] = array("d", values)
        self._label[:n] = bytes(_UNTRACKED if c == -1 else c for c in labels)
        for name in classes:
            self._track(name)
        for column, values in zip(self._columns, floats[4:], strict=True):
            column[:n] = array("d", values)
        self._next = n % self.window
        self.n = n
