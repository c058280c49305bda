"""Data quality of one feature: nulls, type changes, unknown categories, out-of-range values.

Issues are counted per batch of observations; over (about) the last ``window`` observations,
each issue's rate is compared with its rate during the reference period (some features are null
by design): a check fires when the rate exceeds the baseline by ``rate_threshold``, with at least
``min_samples`` observations, and resolves when the excess falls below half of that. Counting
per batch (not per value) keeps the hot path free of per-value Python work; the window moves by
whole batches.

Examples
--------
>>> counter = QualityCounter(window=100, min_samples=50, rate_threshold=0.1)
>>> counter.set_baseline({"nulls": 0.02})
>>> counter.update_counts(100, {"nulls": 25})
[('nulls', True)]
>>> counter.firing("nulls"), round(counter.rate("nulls"), 2)
(True, 0.25)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Final

from detectors.base import StateError
from detectors.saved_state import read_format, stamp

__all__ = [
    "CHECKS",
    "NULLS",
    "OUT_OF_RANGE",
    "TYPE_CHANGE",
    "UNKNOWN_CATEGORY",
    "QualityCounter",
]

NULLS: Final = 1
TYPE_CHANGE: Final = 2
UNKNOWN_CATEGORY: Final = 4
OUT_OF_RANGE: Final = 8
#: Check name -> flag bit. The names are the ``signal`` of data-quality alerts.
CHECKS: Final = {
    "nulls": NULLS,
    "type_change": TYPE_CHANGE,
    "unknown_category": UNKNOWN_CATEGORY,
    "out_of_range": OUT_OF_RANGE,
}
_NAMES: Final = tuple(CHECKS)


class QualityCounter:
    """Rolling issue rates of one feature, against their reference baseline.

    Parameters
    ----------
    window
        Observations the rates are taken over (whole batches: the window holds at least this
        many once full, and at most one batch more).
    min_samples
        Fewest observations before a check may fire.
    rate_threshold
        Excess rate over the baseline that fires a check.
    """

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    STATE_FORMAT: ClassVar[int] = 1

    def __init__(self, window: int = 1000, min_samples: int = 200, rate_threshold: float = 0.05):
        if window < 1 or not 1 <= min_samples <= window:
            raise ValueError("need window >= 1 and 1 <= min_samples <= window")
        if not 0 < rate_threshold < 1:
            raise ValueError(f"rate_threshold must be in (0, 1), got {rate_threshold}")
        self.window = window
        self.min_samples = min_samples
        self.rate_threshold = rate_threshold
        # Per batch: its observations ``n`` when it had no issue (the usual case), else
        # (n, nulls, type changes, unknown categories, out of range). One deque, not two: a
        # fleet keeps tens of thousands of these windows, each deque ~0.5 KiB at least.
        self._chunks: deque[int | tuple[int, int, int, int, int]] = deque()
        self._n = 0
        self._counts = [0, 0, 0, 0]
        self._totals = dict.fromkeys(CHECKS, 0)
        self._baseline = dict.fromkeys(CHECKS, 0.0)
        self._firing = dict.fromkeys(CHECKS, False)

    def set_baseline(self, rates: Mapping[str, float]) -> None:
        for check, rate in rates.items():
            self._baseline[check] = float(rate)

    def rate(self, check: str) -> float:
        return self._counts[_NAMES.index(check)] / self._n if self._n else 0.0

    def threshold(self, check: str) -> float:
        """The rate at which ``check`` fires."""
        return self._baseline[check] + self.rate_threshold

    def firing(self, check: str) -> bool:
        return self._firing[check]

    def totals(self) -> dict[str, int]:
        """Issues counted since the start, per check."""
        return dict(self._totals)

    def update(self, flags: Iterable[int]) -> list[tuple[str, bool]]:
        """Add observations given as flag bits (:data:`CHECKS`); see :meth:`update_counts`."""
        counts = dict.fromkeys(CHECKS, 0)
        n = 0
        for flag in flags:
            n += 1
            if flag:
                for check, bit in CHECKS.items():
                    if flag & bit:
                        counts[check] += 1
        return self.update_counts(n, counts)

    def update_counts(self, n: int, counts: Mapping[str, int]) -> list[tuple[str, bool]]:
        """Add a batch of ``n`` observations with ``counts`` issues per check; return
        ``(check, firing)`` for each check whose state changed."""
        if n <= 0:
            return []
        chunk = (
            tuple(int(counts.get(check, 0)) for check in _NAMES) if any(counts.values()) else None
        )
        self._chunks.append(n if chunk is None else (n, *chunk))  # type: ignore[arg-type]
        self._n += n
        if chunk is not None:
            for i, count in enumerate(chunk):
                if count:
                    self._counts[i] += count
                    self._totals[_NAMES[i]] += count
        chunks = self._chunks
        while chunks:
            old = chunks[0]
            size = old if type(old) is int else old[0]  # type: ignore[index]
            if self._n - size < self.window:
                break
            chunks.popleft()
            self._n -= size
            if type(old) is not int:
                for i, count in enumerate(old[1:]):  # type: ignore[index]
                    self._counts[i] -= count
        if chunk is None and not any(self._counts) and not any(self._firing.values()):
            return []  # no issue in the window and none firing: nothing can change (hot path)
        return self._evaluate()

    def _evaluate(self) -> list[tuple[str, bool]]:
        out: list[tuple[str, bool]] = []
        n = self._n
        if n < self.min_samples:
            return out
        for i, check in enumerate(_NAMES):
            excess = self._counts[i] / n - self._baseline[check]
            if not self._firing[check] and excess > self.rate_threshold:
                self._firing[check] = True
                out.append((check, True))
            elif self._firing[check] and excess < self.rate_threshold / 2:
                self._firing[check] = False
                out.append((check, False))
        return out

    def to_state(self) -> dict[str, Any]:
        return stamp(
            self.STATE_FORMAT,
            {
                "chunks": [
                    [c, [0, 0, 0, 0]] if type(c) is int else [c[0], list(c[1:])]  # type: ignore[index]
                    for c in self._chunks
                ],
                "totals": self._totals,
                "baseline": self._baseline,
                "firing": self._firing,
            },
        )

    def load_state(self, state: dict[str, Any]) -> None:
        read_format(state, "QualityCounter", self.STATE_FORMAT)
        chunks = [(int(n), tuple(int(x) for x in c)) for n, c in state["chunks"]]
        if any(n <= 0 or len(c) != 4 or min(c) < 0 or max(c) > n for n, c in chunks):
            raise StateError("quality counts out of bounds")
        if len(chunks) > self.window:
            raise StateError("more quality chunks than the window holds")
        self._chunks = deque((n, *c) if any(c) else n for n, c in chunks)
        self._n = sum(n for n, _ in chunks)
        self._counts = [sum(c[i] for _, c in chunks) for i in range(4)]
        self._totals = {c: int(state["totals"][c]) for c in CHECKS}
        self._baseline = {c: float(state["baseline"][c]) for c in CHECKS}
        self._firing = {c: bool(state["firing"][c]) for c in CHECKS}
