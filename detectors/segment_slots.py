"""Which values of one segment name (``country``, ``device``, ...) a model tracks, in bounded
memory: the ``top`` most frequent by traffic, each in a slot; every other value is ``other``.

Slots fill in order of first sight. Once they are full, untracked values are counted with the
Misra-Gries summary (at most ``4 x top`` counters), and at each *review* (every ``period``
predictions of the model) the most frequent untracked value of the period takes the slot of
the least frequent tracked one when it had more than twice that slot's rate (a margin, so that
two values of equal traffic do not swap back and forth). A slot's traffic is its predictions
per period, decayed by ``decay`` per review; its rate, that traffic over the periods' weights
since its value took it.

A review also reports what changed in the model's data:

*appeared*
    a value that took a slot after the model's first ``reference`` predictions, and within the
    last ``reference`` predictions, carries at least ``min_share`` of the traffic;
*vanished*
    a tracked value got no prediction for so long that its share of the traffic (when it was
    last seen) made at least :data:`VANISHED_EXPECTED` predictions expected: the chance of that
    silence, were it still there, is below ``exp(-VANISHED_EXPECTED)`` (one in a million).
    A vanished value keeps its slot (so that it is seen back) for ``reference`` predictions
    of silence; then it may lose it like any other.

Examples
--------
>>> slots = SegmentSlots(top=2, period=4)
>>> [slots.slot(value) for value in ["PT", "DE", "PT", "FR"]]
[1, 2, 1, 0]
>>> slots.review(at=0, predictions=4)
[]
>>> [slots.slot(value) for value in ["FR"] * 4]
[0, 0, 0, 0]
>>> slots.review(at=10, predictions=8)  # FR had 4 in the period; DE about 0.5 a period
[('evicted', 2, 'DE'), ('tracked', 2, 'FR')]
>>> slots.value(2), slots.slot("DE")
('FR', 0)
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from detectors.base import StateError
from detectors.saved_state import read_format, stamp

__all__ = ["SegmentSlots", "VANISHED_EXPECTED", "OTHER"]

#: The slot of every value not tracked (and of predictions without the name).
OTHER: Final = 0
#: Predictions a vanished value's traffic share made expected during its silence.
VANISHED_EXPECTED: Final = 14.0


class SegmentSlots:
    """The tracked values of one segment name.

    Parameters
    ----------
    top
        Slots (values tracked); slot 0 is ``other``.
    period
        Predictions of the model between two reviews.
    decay
        Factor a slot's traffic keeps at each review.
    reference
        Predictions of the model before a value that takes a slot is news.
    min_share
        Traffic share at which a new value is reported.
    """

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    STATE_FORMAT: ClassVar[int] = 1

    def __init__(
        self,
        top: int = 20,
        period: int = 1000,
        decay: float = 0.9,
        reference: int = 10_000,
        min_share: float = 0.01,
    ) -> None:
        if top < 1 or period < 1 or not 0.0 < decay < 1.0:
            raise ValueError("need top >= 1, period >= 1 and 0 < decay < 1")
        self.top = top
        self.period = period
        self.decay = decay
        self.reference = reference
        self.min_share = min_share
        self._slots: dict[str, int] = {}  # tracked value -> its slot
        self._values: list[str | None] = [None] * (top + 1)  # slot -> value (None: free)
        self._free = top  # slots without a value
        # Per slot (0: other): predictions in this period, decayed traffic per period, when
        # (event time) and after how many predictions of the model its value took it, the
        # share it had in the last period it was seen, predictions since.
        self._seen = [0] * (top + 1)
        self._traffic = [0.0] * (top + 1)
        self._since = [0] * (top + 1)
        self._placed_after = [0] * (top + 1)
        self._share = [0.0] * (top + 1)
        self._silent = [0] * (top + 1)
        self._age = [0] * (top + 1)  # reviews since the slot's value took it
        self._candidates: dict[str, int] = {}  # Misra-Gries counts of untracked values
        self._predictions = 0  # of the model, at the last review

    # -- per prediction ---------------------------------------------------------------------

    def slot(self, value: str | None) -> int:
        """The slot of a prediction's value (``None``: the name is absent), counted."""
        slot = self._slots.get(value) if value is not None else OTHER  # type: ignore[arg-type]
        if slot is None:
            slot = self._place(value)  # type: ignore[arg-type]
        self._seen[slot] += 1
        return slot

    def _place(self, value: str) -> int:
        if self._free:
            slot = self._values.index(None, 1)
            self._take(slot, value)
            return slot
        candidates = self._candidates
        if value in candidates:
            candidates[value] += 1
        elif len(candidates) < 4 * self.top:
            candidates[value] = 1
        else:  # Misra-Gries: every counter loses one (amortised O(1): each was counted once)
            for key in list(candidates):
                if candidates[key] == 1:
                    del candidates[key]
                else:
                    candidates[key] -= 1
        return OTHER

    def _take(self, slot: int, value: str, at: int = 0, traffic: float = 0.0) -> None:
        self._slots[value] = slot
        self._values[slot] = value
        self._free -= 1
        self._since[slot] = at
        self._placed_after[slot] = self._predictions
        self._traffic[slot] = traffic
        self._share[slot] = 0.0
        self._silent[slot] = 0
        self._age[slot] = 1 if traffic else 0

    # -- reading --------------------------------------------------------------------------

    def value(self, slot: int) -> str | None:
        """The value in ``slot`` (None: free, or ``other``)."""
        return self._values[slot]

    def since(self, slot: int) -> int:
        """Event time the slot's value took it (a prediction made before counts as other)."""
        return self._since[slot]

    def tracked(self) -> list[tuple[int, str]]:
        """(slot, value) of the tracked values."""
        return [(slot, v) for slot, v in enumerate(self._values) if v is not None]

    def shares(self) -> list[float]:
        """Each slot's share of the traffic (decayed predictions per period; 0: other)."""
        total = sum(self._traffic)
        return [t / total if total else 0.0 for t in self._traffic]

    def traffic(self) -> list[float]:
        """Each slot's decayed predictions per period (0: other)."""
        return list(self._traffic)

    def rate(self, slot: int) -> float:
        """The slot's predictions per period: its traffic over the weights of the periods
        since its value took it."""
        age = self._age[slot]
        weights = (1.0 - self.decay**age) / (1.0 - self.decay) if age else 1.0
        return self._traffic[slot] / weights

    def appeared(self, slot: int) -> bool:
        """The slot's value is new (see the module's docstring)."""
        placed = self._placed_after[slot]
        return (
            self._values[slot] is not None
            and placed >= self.reference
            and self._predictions - placed < self.reference
            and self.shares()[slot] >= self.min_share
        )

    def vanished(self, slot: int) -> bool:
        """The slot's value has been silent for too long (see the module's docstring)."""
        return self._silent[slot] * self._share[slot] >= VANISHED_EXPECTED

    def _kept(self, slot: int) -> bool:
        """A vanished value keeps its slot for ``reference`` predictions of silence."""
        return self.vanished(slot) and self._silent[slot] < self.reference

    def silence(self, slot: int) -> tuple[int, float]:
        """(predictions since the slot's value was last seen, its share then)."""
        return self._silent[slot], self._share[slot]

    # -- review -----------------------------------------------------------------------------

    def review(self, at: int, predictions: int) -> list[tuple[str, int, str]]:
        """End a period at event time ``at``, after ``predictions`` of the model: update the
        traffic, let a frequent untracked value take a slot. Returns what changed:
        ``("evicted", slot, old value)`` and ``("tracked", slot, new value)``."""
        counted = predictions - self._predictions
        self._predictions = predictions
        seen, traffic = self._seen, self._traffic
        for slot, count in enumerate(seen):
            traffic[slot] = traffic[slot] * self.decay + count
            self._age[slot] += 1
        total = sum(traffic)
        for slot in range(1, self.top + 1):
            if seen[slot]:
                self._silent[slot] = 0
                self._share[slot] = traffic[slot] / total if total else 0.0
            elif self._values[slot] is not None:
                self._silent[slot] += counted
        changes: list[tuple[str, int, str]] = []
        if self._candidates and not self._free:
            value, count = max(self._candidates.items(), key=lambda item: (item[1], item[0]))
            weakest = min(
                (slot for slot in range(1, self.top + 1) if not self._kept(slot)),
                key=lambda slot: (self.rate(slot), slot),
                default=None,
            )
            if weakest is not None and count > 2.0 * self.rate(weakest):
                old = self._values[weakest]
                assert old is not None
                del self._slots[old]
                self._values[weakest] = None
                self._free += 1
                self._take(weakest, value, at, traffic=float(count))
                changes += [("evicted", weakest, old), ("tracked", weakest, value)]
        self._candidates.clear()
        self._seen = [0] * (self.top + 1)
        return changes

    # -- state ----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return stamp(
            self.STATE_FORMAT,
            {
                "values": self._values[1:],
                "seen": self._seen,
                "traffic": self._traffic,
                "since": self._since,
                "placed_after": self._placed_after,
                "share": self._share,
                "silent": self._silent,
                "age": self._age,
                "candidates": self._candidates,
                "predictions": self._predictions,
            },
        )

    def load_state(self, state: dict[str, Any]) -> None:
        read_format(state, "SegmentSlots", self.STATE_FORMAT)
        size = self.top + 1
        values = [None if v is None else str(v) for v in state["values"]]
        names = ("seen", "traffic", "since", "placed_after", "share", "silent", "age")
        columns = [state[k] for k in names]
        if len(values) != self.top or any(len(column) != size for column in columns):
            raise StateError(f"segment slots saved for another top (expected {self.top})")
        tracked = [v for v in values if v is not None]
        if len(set(tracked)) != len(tracked):
            raise StateError("a segment value holds two slots")
        candidates = {str(k): int(v) for k, v in state["candidates"].items()}
        if len(candidates) > 4 * self.top or any(v < 1 for v in candidates.values()):
            raise StateError("segment candidates out of bounds")
        self._values = [None, *values]
        self._slots = {v: slot for slot, v in enumerate(self._values) if v is not None}
        self._free = values.count(None)
        self._seen = [int(v) for v in state["seen"]]
        self._traffic = [float(v) for v in state["traffic"]]
        self._since = [int(v) for v in state["since"]]
        self._placed_after = [int(v) for v in state["placed_after"]]
        self._share = [float(v) for v in state["share"]]
        self._silent = [int(v) for v in state["silent"]]
        self._age = [int(v) for v in state["age"]]
        self._candidates = candidates
        self._predictions = int(state["predictions"])
