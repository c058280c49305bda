"""Rolling performance of one model version over its last ``window`` joined outcomes.

Classification keeps **one** river ``ConfusionMatrix`` that precision, recall, F1 and accuracy
all read (about 12x cheaper than updating separate rolling metrics), updated with each new
outcome and reverted with the one leaving the window. Binary when a positive class is
configured or the classes are booleans or 0/1 (positive ``True`` / ``1``); macro-averaged over
classes otherwise. Regression keeps MAE and RMSE from running sums.

Examples
--------
>>> metrics = RollingClassification(window=4)
>>> for y_true, y_pred in [(1, 1), (0, 1), (1, 0), (0, 0), (1, 1)]:
...     metrics.update(y_true, y_pred)
>>> {k: round(v, 3) for k, v in metrics.values().items()}
{'precision': 0.5, 'recall': 0.5, 'f1': 0.5, 'accuracy': 0.5}
>>> regression = RollingRegression(window=3)
>>> for y_true, y_pred in [(1.0, 2.0), (2.0, 2.0), (3.0, 5.0)]:
...     regression.update(y_true, y_pred)
>>> {k: round(v, 3) for k, v in regression.values().items()}
{'mae': 1.0, 'rmse': 1.291}
"""

from __future__ import annotations

import math
from collections import Counter, deque
from typing import Any, ClassVar

from river import metrics

from detectors.base import StateError
from detectors.saved_state import read_format, stamp

__all__ = ["MAX_ERROR", "RollingClassification", "RollingRegression", "bounded_error", "class_name"]


#: Distinct (label, prediction) pairs whose tuple the window shares (a few classes make few).
_SHARED_PAIRS = 256
# RollingClassification's positive class not decided since the set of classes last changed.
_UNKNOWN: Any = object()


class RollingClassification:
    """Precision, recall, F1 and accuracy over a count window, from one confusion matrix.

    Parameters
    ----------
    window
        Outcomes in the window.
    positive_label
        The positive class; ``None`` to infer (``True`` / ``1``) or macro-average.
    """

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    STATE_FORMAT: ClassVar[int] = 1

    def __init__(self, window: int = 1000, positive_label: Any = None) -> None:
        if window < 1:
            raise ValueError(f"window must be positive, got {window}")
        self.window = window
        self.positive_label = positive_label
        self._pairs: deque[tuple[Any, Any]] = deque()
        self._shared: dict[tuple[type, Any, type, Any], tuple[Any, Any]] = {}
        self._cm = metrics.ConfusionMatrix()
        self._classes: Counter[Any] = Counter()
        self._readers: tuple[Any, ...] | None = None
        self._mode: tuple[str, Any] | None = None
        # Once a third class shows up, metrics stay macro-averaged: F1 must not change meaning
        # from one window to the next.
        self._multiclass = False
        self._positive: Any = _UNKNOWN
        # What values() and confusion() last read, with the update it was read after: a scrape
        # of a thousand models rereads every window, most of them unchanged since the last one.
        self._updates = 0
        self._values_read: tuple[int, dict[str, float]] | None = None
        self._confusion_read: tuple[int, int, list[tuple[str, str, int]]] | None = None

    @property
    def n(self) -> int:
        return len(self._pairs)

    def update(self, y_true: Any, y_pred: Any) -> None:
        # The window holds the same few (label, prediction) pairs over and over: one shared
        # tuple each (keyed by type too: True and 1 are equal keys but different classes).
        key = (type(y_true), y_true, type(y_pred), y_pred)
        pair = self._shared.get(key)
        if pair is None:
            pair = (y_true, y_pred)
            if len(self._shared) < _SHARED_PAIRS:
                self._shared[key] = pair
        self._pairs.append(pair)
        self._updates += 1
        self._cm.update(y_true, y_pred)
        classes = self._classes
        if y_true not in classes or y_pred not in classes:
            self._positive = _UNKNOWN  # the set of classes grows: decide again
        classes[y_true] += 1
        classes[y_pred] += 1
        if len(self._pairs) > self.window:
            old_true, old_pred = self._pairs.popleft()
            self._cm.revert(old_true, old_pred)
            for old in (old_true, old_pred):
                left = self._classes[old] - 1
                if left:
                    self._classes[old] = left
                else:
                    del self._classes[old]
                    self._positive = _UNKNOWN

    def _binary_positive(self) -> Any:
        # Decided again only when the set of classes in the window changed (read per outcome).
        positive = self._positive
        if positive is _UNKNOWN:
            positive = self._positive = self._decide_positive()
        return positive

    def _decide_positive(self) -> Any:
        if self.positive_label is not None:
            return self.positive_label
        if self._multiclass:
            return None
        classes = set(self._classes)
        if classes <= {True, False} or classes <= {0, 1}:
            return True if any(type(c) is bool for c in classes) else 1
        self._multiclass = True
        return None

    def values(self) -> dict[str, float]:
        """Current precision, recall, F1 and accuracy (binary or macro)."""
        read = self._values_read
        if read is None or read[0] != self._updates:
            read = self._values_read = (self._updates, self._read_values())
        return dict(read[1])

    def _read_values(self) -> dict[str, float]:
        positive = self._binary_positive()
        mode = ("binary", positive) if positive is not None else ("macro", None)
        if positive is None:
            return self._macro()
        if mode != self._mode:
            cm = self._cm
            self._readers = (
                metrics.Precision(cm=cm, pos_val=positive),
                metrics.Recall(cm=cm, pos_val=positive),
                metrics.F1(cm=cm, pos_val=positive),
                metrics.Accuracy(cm=cm),
            )
            self._mode = mode
        assert self._readers is not None
        precision, recall, f1, accuracy = (float(r.get()) for r in self._readers)
        return {"precision": precision, "recall": recall, "f1": f1, "accuracy": accuracy}

    def _macro(self) -> dict[str, float]:
        """Macro averages from the shared confusion matrix, as river's MacroPrecision,
        MacroRecall and MacroF1 define them, but summed exactly (``math.fsum``): river sums over
        a set of classes, whose order follows string hashing, so its last digit could differ
        between two runs of the same replay."""
        cm = self._cm
        classes = cm.classes
        if not classes:
            return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "accuracy": 0.0}
        precisions, recalls, f1s = [], [], []
        for c in classes:
            hit = cm[c][c]
            p = hit / cm.sum_col[c] if cm.sum_col[c] else 0.0
            r = hit / cm.sum_row[c] if cm.sum_row[c] else 0.0
            precisions.append(p)
            recalls.append(r)
            f1s.append(2 * p * r / (p + r) if p + r else 0.0)
        n = len(classes)
        return {
            "precision": math.fsum(precisions) / n,
            "recall": math.fsum(recalls) / n,
            "f1": math.fsum(f1s) / n,
            "accuracy": cm.total_true_positives / cm.total_weight if cm.total_weight else 0.0,
        }

    def confusion(self, top: int) -> list[tuple[str, str, int]]:
        """(label, predicted, outcomes) of the window's confusion matrix, non-zero cells only:
        the ``top`` classes seen most in the window by name, every other class folded into
        ``other`` (a bounded set of Prometheus series). Classes are named as in JSON
        (``true``, ``false``, ``3``, ``fraud``).

        >>> m = RollingClassification(window=10)
        >>> for y_true, y_pred in [("a", "a"), ("a", "b"), ("c", "c"), ("d", "a")]:
        ...     m.update(y_true, y_pred)
        >>> m.confusion(top=2)  # a and c are the busiest; b and d become other
        [('a', 'a', 1), ('a', 'other', 1), ('c', 'c', 1), ('other', 'a', 1)]
        """
        read = self._confusion_read
        if read is None or read[0] != self._updates or read[1] != top:
            read = self._confusion_read = (self._updates, top, self._read_confusion(top))
        return list(read[2])

    def _read_confusion(self, top: int) -> list[tuple[str, str, int]]:
        kept = {c for c, _ in sorted(self._classes.items(), key=_busiest)[:top]}
        cells: Counter[tuple[str, str]] = Counter()
        for y_true, row in self._cm.data.items():
            name = class_name(y_true) if y_true in kept else "other"
            for y_pred, count in row.items():
                if count:
                    predicted = class_name(y_pred) if y_pred in kept else "other"
                    cells[(name, predicted)] += int(count)
        return sorted((label, predicted, n) for (label, predicted), n in cells.items())

    @property
    def positive_class(self) -> Any:
        """The positive class of a binary model (``None``: multiclass, macro-averaged)."""
        return self._binary_positive()

    @property
    def averaging(self) -> str:
        """``binary`` or ``macro``: how the current values are computed."""
        return "binary" if self._binary_positive() is not None else "macro"

    def to_state(self) -> dict[str, Any]:
        return stamp(
            self.STATE_FORMAT,
            {"pairs": [list(p) for p in self._pairs], "multiclass": self._multiclass},
        )

    def load_state(self, state: dict[str, Any]) -> None:
        read_format(state, "RollingClassification", self.STATE_FORMAT)
        pairs = state["pairs"]
        if len(pairs) > self.window:
            raise StateError("more outcomes than the window holds")
        self._pairs = deque()
        self._cm = metrics.ConfusionMatrix()
        self._classes = Counter()
        self._positive = _UNKNOWN
        self._readers = None
        self._mode = None
        for y_true, y_pred in pairs:
            for value in (y_true, y_pred):
                if not isinstance(value, bool | int | float | str):
                    raise StateError("classes must be scalars")
            self.update(y_true, y_pred)
        self._multiclass = bool(state.get("multiclass", False))
        self._positive = _UNKNOWN
        self._values_read = self._confusion_read = None


def _busiest(item: tuple[Any, int]) -> tuple[int, str]:
    return (-item[1], class_name(item[0]))


def class_name(value: Any) -> str:
    """A class as JSON writes it (True -> ``true``), for a label value."""
    if type(value) is bool:
        return "true" if value else "false"
    return str(value)


#: Largest regression error counted (in absolute value). Two finite floats can be further apart
#: than the float range itself, and squares of errors past ~1e154 overflow: bounded, every sum
#: over errors (metrics, rollback tests) stays finite, and so do the alerts and saved states.
MAX_ERROR = 1e100


def bounded_error(y_true: float, y_pred: float) -> float:
    """``y_pred - y_true``, within +-:data:`MAX_ERROR`."""
    return max(-MAX_ERROR, min(MAX_ERROR, float(y_pred) - float(y_true)))


class RollingRegression:
    """MAE and RMSE over a count window."""

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    STATE_FORMAT: ClassVar[int] = 1

    def __init__(self, window: int = 1000) -> None:
        if window < 1:
            raise ValueError(f"window must be positive, got {window}")
        self.window = window
        self._errors: deque[float] = deque()
        self._abs = 0.0
        self._sq = 0.0
        self._since_refresh = 0

    @property
    def n(self) -> int:
        return len(self._errors)

    def update(self, y_true: float, y_pred: float) -> None:
        error = bounded_error(y_true, y_pred)
        self._errors.append(error)
        self._abs += abs(error)
        self._sq += error * error
        if len(self._errors) > self.window:
            old = self._errors.popleft()
            self._abs -= abs(old)
            self._sq -= old * old
        self._since_refresh += 1
        if self._since_refresh >= 10 * self.window:
            # Running sums drift with float rounding: recompute now and then.
            self._abs = math.fsum(abs(e) for e in self._errors)
            self._sq = math.fsum(e * e for e in self._errors)
            self._since_refresh = 0

    def values(self) -> dict[str, float]:
        n = len(self._errors)
        if not n:
            return {"mae": 0.0, "rmse": 0.0}
        return {"mae": self._abs / n, "rmse": math.sqrt(max(0.0, self._sq) / n)}

    def to_state(self) -> dict[str, Any]:
        # The running sums too: recomputed, they would differ in the last bits, and a restored
        # model would not carry on exactly like the original.
        return stamp(
            self.STATE_FORMAT,
            {
                "errors": list(self._errors),
                "sums": [self._abs, self._sq, self._since_refresh],
            },
        )

    def load_state(self, state: dict[str, Any]) -> None:
        read_format(state, "RollingRegression", self.STATE_FORMAT)
        errors = [float(e) for e in state["errors"]]
        if len(errors) > self.window or not all(math.isfinite(e) for e in errors):
            raise StateError("regression errors out of bounds")
        errors = [max(-MAX_ERROR, min(MAX_ERROR, e)) for e in errors]  # (older states)
        self._errors = deque(errors)
        self._abs = math.fsum(abs(e) for e in errors)
        self._sq = math.fsum(e * e for e in errors)
        self._since_refresh = 0
        sums = state.get("sums")  # (older states have none: recomputed above)
        if sums is not None:
            total_abs, total_sq, since = float(sums[0]), float(sums[1]), int(sums[2])
            if not (math.isfinite(total_abs) and math.isfinite(total_sq)):
                raise StateError("regression sums out of bounds")
            self._abs, self._sq, self._since_refresh = total_abs, total_sq, since
