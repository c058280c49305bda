"""A model's segments: the values of its ``segments`` names (a prediction's ``tags``, else its
categorical features), the slots that track the most frequent ones, and the error sums per slot.

A model configured with ``segments: [country, device]`` splits its traffic by each name on its
own: ``country=PT`` is one segment, ``device=ios`` another. Per name the ``segmentation.top``
most frequent values are tracked (:mod:`detectors.segment_slots`), every other value (and a
prediction without the name) is ``other``. A prediction's slots travel with it through the
label join as one code (mixed radix, below :data:`~detectors.join.SEGMENT_CODES`); its labelled
outcome adds its error to those slots (:mod:`detectors.segment_errors`). A value is read from
``tags`` first, then from ``features``: a string as it is, a boolean as ``true`` / ``false``, a
whole number without its fraction (``12``); other numbers are not segments (``other``).

Every ``period`` predictions the slots are reviewed (traffic, a new frequent value, appeared
and vanished values), and every ``segmentation.check_every`` outcomes the segments are tested
(:mod:`detectors.segment_decisions` says what that decides). Both counts are the model's own,
so a replay and the live service check at the same events, however they are batched.

Examples
--------
>>> from detectors.config_sections import SegmentationConfig
>>> segments = Segments(("country", "tier"), SegmentationConfig(top=3))
>>> code = segments.code({"country": "PT", "tier": "gold"}, None)
>>> segments.slots_of(code, predicted_at=1), segments.describe(0, 1), segments.describe(1, 1)
((1, 1), ('country', 'PT'), ('tier', 'gold'))
>>> segments.slots_of(segments.code(None, {"country": "DE", "tier": 2.0}), predicted_at=1)
(2, 2)
>>> segments.describe(1, 2)
('tier', '2')
"""

from __future__ import annotations

from typing import Any, ClassVar

from detectors.base import StateError
from detectors.config_sections import SegmentationConfig
from detectors.saved_state import read_format, stamp
from detectors.segment_errors import SegmentErrors, SegmentTest
from detectors.segment_slots import OTHER, SegmentSlots

__all__ = ["Segments"]

#: Predictions of the model between two reviews of its slots.
PERIOD = 1000


class Segments:
    """The segments of one model.

    Parameters
    ----------
    names
        The segment names (tags or categorical features), at most 4.
    config
        The model's ``segmentation`` settings.
    """

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    STATE_FORMAT: ClassVar[int] = 1

    def __init__(self, names: tuple[str, ...], config: SegmentationConfig) -> None:
        self.names = names
        self.config = config
        self.radix = config.top + 1
        self.slots = [
            SegmentSlots(config.top, PERIOD, reference=config.reference, min_share=config.min_share)
            for _ in names
        ]
        #: The error sums, from the first outcome on (they need to know the model's task).
        self.errors: SegmentErrors | None = None
        self.predictions = 0
        self.outcomes = 0

    # -- predictions --------------------------------------------------------------------------

    def code(self, tags: dict[str, str] | None, features: dict[str, Any] | None) -> int:
        """A prediction's segment code (its slot per name), counted."""
        code, place = 0, 1
        for name, slots in zip(self.names, self.slots, strict=True):
            value = tags.get(name) if tags else None
            if value is None and features:
                value = _as_segment(features.get(name))
            code += slots.slot(value) * place
            place *= self.radix
        self.predictions += 1
        return code

    @property
    def review_due(self) -> bool:
        """The prediction just coded ends a review period."""
        return self.predictions % PERIOD == 0

    def review(self, at: int) -> list[tuple[int, str, int, str]]:
        """Review every name's slots at event time ``at``; return the changes as
        ``(name index, "evicted" | "tracked", slot, value)`` (an evicted slot's sums are
        cleared)."""
        changes = []
        for index, slots in enumerate(self.slots):
            for change, slot, value in slots.review(at, self.predictions):
                if change == "tracked" and self.errors is not None:
                    self.errors.clear(index, slot)
                changes.append((index, change, slot, value))
        return changes

    # -- outcomes -----------------------------------------------------------------------------

    def slots_of(self, code: int, predicted_at: int) -> tuple[int, ...]:
        """The slots a prediction's code names, ``other`` where the slot has changed hands
        since the prediction was made."""
        slots = []
        for name_slots in self.slots:
            code, slot = divmod(code, self.radix)
            if slot != OTHER and predicted_at <= name_slots.since(slot):
                slot = OTHER
            slots.append(slot)
        return tuple(slots)

    def add_outcome(self, code: int, error: float, predicted_at: int, regression: bool) -> bool:
        """A labelled outcome's error into its slots; True when a check is due."""
        errors = self.errors
        if errors is None:
            errors = self.errors = SegmentErrors(
                len(self.names), self.radix, self.config.window, regression
            )
        errors.add(self.slots_of(code, predicted_at), error)
        self.outcomes += 1
        return self.outcomes % self.config.check_every == 0

    def tests(self) -> list[tuple[int, int, SegmentTest]]:
        """(name index, slot, test) of every tracked value with ``min_outcomes`` effective
        outcomes, and the rest as many."""
        errors = self.errors
        if errors is None:
            return []
        minimum = self.config.min_outcomes
        out = []
        for index, slots in enumerate(self.slots):
            for slot, _ in slots.tracked():
                test = errors.test(index, slot, self.config.min_rise)
                if test.outcomes >= minimum and test.rest_outcomes >= minimum:
                    out.append((index, slot, test))
        return out

    def describe(self, index: int, slot: int) -> tuple[str, str]:
        """(name, value) of a slot; the value is ``other`` for slot 0."""
        value = self.slots[index].value(slot)
        return self.names[index], "other" if value is None else value

    # -- state ----------------------------------------------------------------------------

    def layout(self) -> dict[str, Any]:
        """What a saved state must have been made with to load (another configuration starts
        the segments afresh: see :meth:`ModelState.load_state`)."""
        return {"names": list(self.names), "top": self.config.top, "window": self.config.window}

    def to_state(self) -> dict[str, Any]:
        return stamp(
            self.STATE_FORMAT,
            {
                "layout": self.layout(),
                "slots": [slots.to_state() for slots in self.slots],
                "errors": None if self.errors is None else self.errors.to_state(),
                "regression": None if self.errors is None else self.errors.regression,
                "predictions": self.predictions,
                "outcomes": self.outcomes,
            },
        )

    def load_state(self, state: dict[str, Any]) -> None:
        read_format(state, "Segments", self.STATE_FORMAT)
        if state["layout"] != self.layout():
            raise StateError("segments saved for another segmentation")
        for slots, saved in zip(self.slots, state["slots"], strict=True):
            slots.load_state(saved)
        self.errors = None
        if state["errors"] is not None:
            self.errors = SegmentErrors(
                len(self.names), self.radix, self.config.window, bool(state["regression"])
            )
            self.errors.load_state(state["errors"])
        self.predictions = int(state["predictions"])
        self.outcomes = int(state["outcomes"])


def _as_segment(value: Any) -> str | None:
    """A feature's value as a segment value (None: not one)."""
    if type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is float and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return None
