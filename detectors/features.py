"""One feature of one model: its type, its drift detector, its data quality.

The type is inferred from the first values unless configured: ``numeric`` when nearly all
non-null values are numbers, ``categorical`` otherwise; a categorical feature with more distinct
values in its reference than ``max_cardinality`` (ids, free text) becomes ``high_cardinality``
and is checked for nulls and type changes only.

Examples
--------
>>> from detectors.config import DriftConfig, QualityConfig
>>> monitor = FeatureMonitor("amount", "auto", DriftConfig(reference_size=100), QualityConfig())
>>> _ = monitor.update([float(i % 10) for i in range(300)])
>>> monitor.kind, monitor.ready
('numeric', True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain, islice
from typing import Any, ClassVar, Literal

import numpy as np

from detectors.base import StateError
from detectors.categorical import CategoricalDriftDetector
from detectors.config import DriftConfig, QualityConfig
from detectors.factories import categorical_detector, numeric_detector
from detectors.numeric import NumericDriftDetector
from detectors.quality import (
    CHECKS,
    NULLS,
    OUT_OF_RANGE,
    TYPE_CHANGE,
    UNKNOWN_CATEGORY,
    QualityCounter,
)
from detectors.saved_state import read_format, stamp

__all__ = ["FeatureMonitor", "FeatureUpdate"]

Kind = Literal["pending", "numeric", "categorical", "high_cardinality"]
# How many non-null values decide a feature's type.
_INFER = 200
# Share of numbers among them that makes a feature numeric.
_NUMERIC_SHARE = 0.95
_FEW = 8


@dataclass(slots=True)
class FeatureUpdate:
    """What one update of a feature changed: indices into the values given."""

    drift: list[int] = field(default_factory=list)
    quality: list[tuple[int, str, bool]] = field(default_factory=list)


class FeatureMonitor:
    """Type inference, drift and data quality of one feature."""

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    STATE_FORMAT: ClassVar[int] = 1

    def __init__(
        self,
        name: str,
        kind: Literal["auto", "numeric", "categorical"],
        drift: DriftConfig,
        quality: QualityConfig,
    ) -> None:
        self.name = name
        self.configured_kind = kind
        self.drift_config = drift
        self.quality_config = quality
        self.kind: Kind = "pending"
        self.detector: NumericDriftDetector | CategoricalDriftDetector | None = None
        self.quality = QualityCounter(quality.window, quality.min_samples, quality.rate_threshold)
        # While the type is pending: the non-null values, kept for the reference, and how many
        # nulls came with them (counted, not kept: a feature can be null for ever).
        self._buffer: list[Any] = []
        self._buffered_values = 0
        self._buffered_nulls = 0
        # Issues seen while the reference fills: the baseline the quality checks compare with.
        self._good_seen = 0
        self._reference_seen = 0
        self._reference_nulls = 0
        self._reference_type_changes = 0
        self._low = -np.inf
        self._high = np.inf
        self._ready = False
        if kind != "auto":
            self._become(kind)

    @property
    def ready(self) -> bool:
        """Whether the reference is complete and the feature is watched."""
        return self._ready

    @property
    def drift_detected(self) -> bool:
        return bool(self.detector is not None and self.detector.drift_detected)

    def values_until_decision(self) -> int | None:
        """Good values until the numeric detector can next flip (its block ends, or its
        reference completes); ``None`` for features without such a point."""
        detector = self.detector
        if self.kind == "numeric" and isinstance(detector, NumericDriftDetector):
            return detector.values_until_block
        return None

    def update(self, values: list[Any]) -> FeatureUpdate:
        """Observe values in order (``None`` for null or missing)."""
        if self.kind == "pending":
            present = list(filter(_not_none, values))
            needed = min(_INFER, self.drift_config.reference_size)
            if self._buffered_values + len(present) < needed:
                self._buffer.extend(present)
                self._buffered_values += len(present)
                self._buffered_nulls += len(values) - len(present)
                return FeatureUpdate()
            # Decide on the first ``needed`` non-null values only, however many came in this
            # batch: the kind must not depend on how events were batched.
            first = list(islice(chain(self._buffer, present), needed))
            share = sum(type(v) is float for v in first) / len(first)
            self._become("numeric" if share >= _NUMERIC_SHARE else "categorical")
            earlier, self._buffer = self._buffer, []
            nulls, self._buffered_nulls, self._buffered_values = self._buffered_nulls, 0, 0
            # The reference cannot be complete within what decided the type, so nothing in
            # the buffered values can flip; only the caller's own values carry indices. The
            # nulls among them count towards the reference's null rate, wherever they came.
            self._reference_seen += nulls
            self._reference_nulls += nulls
            if earlier:
                self._process(earlier)
        return self._process(values)

    # -- internals -----------------------------------------------------------------------------

    def _become(self, kind: Kind) -> None:
        self.kind = kind
        if kind == "numeric":
            self.detector = numeric_detector(self.drift_config)
        elif kind == "categorical":
            self.detector = categorical_detector(self.drift_config)
        else:
            self.detector = None

    def _process(self, values: list[Any]) -> FeatureUpdate:
        kinds = set(map(type, values))
        if self.kind == "numeric" and kinds == {float}:
            return self._process_numbers(values)
        if self.kind in ("categorical", "high_cardinality") and kinds <= {str, bool}:
            return self._process_categories(values)
        return self._process_mixed(values)

    def _process_numbers(self, values: list[float]) -> FeatureUpdate:
        """The common case, vectorised: every value a number."""
        out = FeatureUpdate()
        detector = self.detector
        assert isinstance(detector, NumericDriftDetector)
        # A few values (a busy fleet's usual share of one fetch): plain Python beats numpy's
        # per-call cost.
        few = len(values) <= _FEW
        array = values if few else np.array(values, dtype=np.float64)
        out.drift = detector.update_many(array)
        start = self._watched_from(len(values))
        if start is None:
            return out
        low, high = self._low, self._high
        if few:
            outside = sum(1 for v in values[start:] if v < low or v > high)
        else:
            watched = array[start:]
            outside = int(np.count_nonzero((watched < low) | (watched > high)))
        self._quality(out, len(values) - start, {"out_of_range": outside}, len(values))
        return out

    def _process_categories(self, values: list[Any]) -> FeatureUpdate:
        """Every value a string (or bool): a categorical feature's common case."""
        out = FeatureUpdate()
        detector = self.detector
        if detector is not None:
            out.drift = detector.update_many(values)
        start = self._watched_from(len(values))
        if start is None:
            return out
        unknown = 0
        if isinstance(self.detector, CategoricalDriftDetector):
            known = self.detector.knows
            unknown = sum(1 for v in values[start:] if not known(v))
        self._quality(out, len(values) - start, {"unknown_category": unknown}, len(values))
        return out

    def _watched_from(self, count: int) -> int | None:
        """Count ``count`` good values (already given to the detector); return the index from
        which they are watched for quality, or None while the reference is still filling."""
        was_ready, before = self._ready, self._good_seen
        self._good_seen += count
        if was_ready:
            return 0
        start = self._reference_part(count, before)
        return start if self._ready else None

    def _reference_part(self, count: int, before: int) -> int:
        """All ``count`` values were good: how many of them completed the reference (and switch
        the feature to watching, if they did)."""
        reference_size = self.drift_config.reference_size
        if self.detector is not None and not self.detector.ready:
            self._reference_seen += count
            return count
        taken = max(0, min(count, reference_size - before))
        self._reference_seen += taken
        self._finish_reference()
        return taken

    def _quality(
        self, out: FeatureUpdate, watched: int, counts: dict[str, int], total: int
    ) -> None:
        if watched:
            out.quality = [
                (total - 1, c, f) for c, f in self.quality.update_counts(watched, counts)
            ]

    def _process_mixed(self, values: list[Any]) -> FeatureUpdate:
        """Nulls, or values of another type: one at a time."""
        out = FeatureUpdate()
        numeric = self.kind == "numeric"
        flags = [0] * len(values)
        good_index: list[int] = []
        good: list[Any] = []
        for i, v in enumerate(values):
            if v is None:
                flags[i] = NULLS
            elif (type(v) is float) is numeric:
                good_index.append(i)
                good.append(v)
            else:
                flags[i] = TYPE_CHANGE
        # Index of the first value watched for quality; the ones before are reference period.
        watched_from = 0 if self._ready else len(values)
        became_ready = False
        if self.detector is not None and good:
            before = self._good_seen
            flips = self.detector.update_many(good)
            self._good_seen += len(good)
            out.drift = [good_index[f] for f in flips]
            if not self._ready and self.detector.ready:
                watched_from = good_index[self.drift_config.reference_size - before - 1] + 1
                became_ready = True
        elif self.detector is None and not self._ready and good:
            self._good_seen += len(good)
        if not self._ready:
            for flag in flags[:watched_from]:
                if flag == NULLS:
                    self._reference_nulls += 1
                elif flag == TYPE_CHANGE:
                    self._reference_type_changes += 1
            self._reference_seen += watched_from
        if became_ready:
            self._finish_reference()
        if self._ready and watched_from < len(values):
            watched = flags[watched_from:]
            self._flag_reference_issues(values, watched, watched_from)
            counts = {
                check: sum(1 for flag in watched if flag & bit) for check, bit in CHECKS.items()
            }
            self._quality(out, len(watched), counts, len(values))
        return out

    def _finish_reference(self) -> None:
        """The detector's reference just filled: bounds, cardinality, quality baseline."""
        detector = self.detector
        if isinstance(detector, CategoricalDriftDetector):
            if detector.reference_cardinality > self.drift_config.max_cardinality:
                self.kind = "high_cardinality"
                self.detector = None
        elif isinstance(detector, NumericDriftDetector) and detector.reference is not None:
            ref = detector.reference
            margin = self.quality_config.range_margin * float(ref[-1] - ref[0])
            self._low, self._high = float(ref[0]) - margin, float(ref[-1]) + margin
        seen = max(1, self._reference_seen)
        self.quality.set_baseline(
            {
                "nulls": self._reference_nulls / seen,
                "type_change": self._reference_type_changes / seen,
            }
        )
        self._ready = True

    def _flag_reference_issues(self, values: list[Any], flags: list[int], start: int) -> None:
        detector = self.detector
        if isinstance(detector, NumericDriftDetector):
            low, high = self._low, self._high
            for i, flag in enumerate(flags):
                if not flag:
                    v = values[start + i]
                    if v < low or v > high:
                        flags[i] = OUT_OF_RANGE
        elif isinstance(detector, CategoricalDriftDetector):
            for i, flag in enumerate(flags):
                if not flag and not detector.knows(values[start + i]):
                    flags[i] = UNKNOWN_CATEGORY

    # -- state ---------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return stamp(
            self.STATE_FORMAT,
            {
                "kind": self.kind,
                "detector": None if self.detector is None else self.detector.to_state(),
                "quality": self.quality.to_state(),
                "buffer": self._buffer,
                "buffered_values": self._buffered_values,
                "buffered_nulls": self._buffered_nulls,
                "good_seen": self._good_seen,
                "reference_seen": self._reference_seen,
                "reference_nulls": self._reference_nulls,
                "reference_type_changes": self._reference_type_changes,
                "low": None if not np.isfinite(self._low) else self._low,
                "high": None if not np.isfinite(self._high) else self._high,
                "ready": self._ready,
            },
        )

    def load_state(self, state: dict[str, Any]) -> None:
        read_format(state, "FeatureMonitor", self.STATE_FORMAT)
        kind = state["kind"]
        if kind not in ("pending", "numeric", "categorical", "high_cardinality"):
            raise StateError(f"unknown feature kind {kind!r}")
        self.kind = kind
        detector = state["detector"]
        if kind == "numeric":
            self.detector = NumericDriftDetector.from_state(detector)
        elif kind == "categorical":
            self.detector = CategoricalDriftDetector.from_state(detector)
        else:
            self.detector = None
        self.quality.load_state(state["quality"])
        buffer = list(state["buffer"])
        # (States saved before nulls were only counted hold them in the buffer.)
        nulls = int(state.get("buffered_nulls", 0)) + buffer.count(None)
        buffer = [value for value in buffer if value is not None]
        if len(buffer) > 10 * self.drift_config.reference_size:
            raise StateError("type-inference buffer too large")
        self._buffer = buffer
        self._buffered_values = len(buffer)
        self._buffered_nulls = nulls
        self._good_seen = int(state["good_seen"])
        self._reference_seen = int(state["reference_seen"])
        self._reference_nulls = int(state["reference_nulls"])
        self._reference_type_changes = int(state["reference_type_changes"])
        self._low = -np.inf if state["low"] is None else float(state["low"])
        self._high = np.inf if state["high"] is None else float(state["high"])
        self._ready = bool(state["ready"])


def _not_none(value: Any) -> bool:
    return value is not None
