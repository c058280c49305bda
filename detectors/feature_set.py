"""A model's features: a :class:`~detectors.features.FeatureMonitor` each (created as names
appear, up to a cap), the feature rows waiting for a block's worth, and each feature's latest
readings for the scrape."""

from __future__ import annotations

from array import array
from itertools import repeat
from operator import itemgetter
from typing import Any

from detectors.alerting import AlertKey, Reading
from detectors.base import StateError
from detectors.config import ModelConfig
from detectors.counters import Counters
from detectors.features import FeatureMonitor
from detectors.outbox import Outbox
from detectors.policies import AlertBook
from detectors.wording import QualityView

__all__ = ["FeatureSet", "SignalTable"]

_QUALITY_CHECKS = ("nulls", "type_change", "unknown_category", "out_of_range")
_FEATURE_ALERTS = frozenset({"data_quality", "data_drift"})
_MAX_ROWS = 4096  # waiting feature rows a saved state may hold (a block's worth, normally)


class FeatureSet:
    """The features of one model.

    Feature rows wait in :attr:`rows` until the next numeric block can complete (or the next
    tick): a busy fleet brings a few rows per model per fetch, and every feature costs a dozen
    calls per batch whatever its size. Numeric drift decides only at block ends, so it sees no
    delay; quality and categorical checks wait at most a block's rows or a tick.
    """

    def __init__(
        self,
        config: ModelConfig,
        counters: Counters,
        alerts: AlertBook,
        outbox: Outbox,
        max_features: int,
    ) -> None:
        self.config = config
        self.counters = counters
        self.alerts = alerts
        self.outbox = outbox
        self.max_features = max_features
        self.monitors: dict[str, FeatureMonitor] = {}
        self.signals = SignalTable()
        self.rows: list[tuple[int, dict[str, Any]]] = []
        self.rows_due = 1

    def flush(self) -> None:
        """Apply the waiting rows now; set how many may wait before the next decision."""
        rows, self.rows = self.rows, []
        self.apply(rows)
        due = self.config.drift.block
        for monitor in self.monitors.values():
            rows_left = monitor.values_until_decision()
            if rows_left is not None and rows_left < due:
                due = rows_left
        self.rows_due = max(1, due)

    def apply(self, run: list[tuple[int, dict[str, Any]]]) -> None:
        """Update every feature with ``run`` (event time, feature row), in order."""
        if not run:
            return
        times = [ts for ts, _ in run]
        dicts = [features for _, features in run]
        columns = _columns(dicts)
        names: dict[str, None] = dict.fromkeys(self.monitors)
        # New names in sorted order: the order features are created in (and refused in, past
        # the cap) must not depend on the batch.
        seen = columns.keys() if columns is not None else set().union(*dicts)
        names.update(dict.fromkeys(sorted(seen - names.keys())))
        count = len(dicts)
        # Only alerts already firing can need settling (one that fires in this batch cannot).
        unsettled = {
            key.feature for key in self.alerts.firing_keys() if key.alert in _FEATURE_ALERTS
        }
        for name in names:
            monitor = self.monitors.get(name)
            if monitor is None:
                kind = self.config.features.get(name, "auto")
                if kind == "ignore":
                    continue
                if len(self.monitors) >= self.max_features:
                    Counters.add(self.counters.refused, "feature")
                    continue
                monitor = FeatureMonitor(name, kind, self.config.drift, self.config.quality)
                self.monitors[name] = monitor
            if columns is None:
                values = list(map(dict.get, dicts, repeat(name, count)))
            else:
                column = columns.get(name)
                values = [None] * count if column is None else list(column)
            update = monitor.update(values)
            detector = monitor.detector
            self.signals.note(name, detector)
            if update.drift and detector is not None:
                self.outbox.drift_flips(
                    "data_drift", "feature", name, None, detector, update.drift, times
                )
            for index, check, firing in update.quality:
                if firing:
                    Counters.add(self.counters.quality, check)
                self.outbox.signal(
                    AlertKey("data_quality", check, name),
                    firing,
                    times[index],
                    Reading.of(QualityView(monitor, check)),
                    "data_quality",
                )
            if name not in unsettled:
                continue
            for check in _QUALITY_CHECKS:
                self.outbox.settle(
                    "data_quality", check, name, None, QualityView(monitor, check), times[-1]
                )
            if detector is not None:
                self.outbox.settle("data_drift", "feature", name, None, detector, times[-1])

    def rebaseline(
        self, at: int, *, drop: bool = False, reason: str = "rebaselined for a new model version"
    ) -> None:
        """Data drift and quality start again from a fresh reference (a new version serves), or
        from nothing (``drop``: the features now come from elsewhere)."""
        for key in self.alerts.firing_keys():
            if key.alert in ("data_drift", "data_quality") and key.feature in self.monitors:
                self.outbox.resolve_now(key, at, reason=reason)
        self.signals = SignalTable()
        if drop:
            self.monitors = {}
            return
        for name, old in list(self.monitors.items()):
            self.monitors[name] = FeatureMonitor(
                name, old.configured_kind, self.config.drift, self.config.quality
            )

    # -- state -------------------------------------------------------------------------------

    def load(self, features: dict[str, Any], rows: list[Any], rows_due: int) -> None:
        """Restore from the parts of a model's saved state."""
        if len(features) > self.max_features:
            raise StateError("more features than max_features")
        self.monitors = {}
        for name, feature_state in features.items():
            kind = self.config.features.get(name, "auto")
            monitor = FeatureMonitor(
                name, "auto" if kind == "ignore" else kind, self.config.drift, self.config.quality
            )
            monitor.load_state(feature_state)
            self.monitors[str(name)] = monitor
        self.signals = SignalTable()
        for name, monitor in self.monitors.items():
            self.signals.note(name, monitor.detector)
        if len(rows) > _MAX_ROWS:
            raise StateError("too many waiting feature rows")
        self.rows = [(int(ts), _feature_row(row)) for ts, row in rows]
        self.rows_due = max(1, int(rows_due))


def _feature_row(features: Any) -> dict[str, Any]:
    """A waiting feature row from state: a name -> scalar mapping, as the decoder makes."""
    if not isinstance(features, dict) or not all(
        isinstance(k, str) and (v is None or type(v) in (bool, float, str))
        for k, v in features.items()
    ):
        raise StateError("a waiting feature row is not a mapping of names to scalars")
    return features


def _columns(dicts: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]] | None:
    """Feature columns when every row has the same names as the first (a producer's usual way),
    or None. One pass over the rows, each read once: taking a column at a time from a fetch's
    worth of rows reads every row once per feature, out of cache each time."""
    first = dicts[0]
    width = len(first)
    if width < 2:
        return None
    names = tuple(first)
    try:
        rows = list(map(itemgetter(*names), dicts))
    except KeyError:
        return None
    # Every row holds these names; the same count means no row holds others.
    if set(map(len, dicts)) != {width}:
        return None
    return dict(zip(names, zip(*rows, strict=True), strict=True))


class SignalTable:
    """Each feature's latest (statistic, threshold, detected), side by side in one array.

    Written just after a feature's detector ran (its memory is in cache then) and read at every
    scrape: walking a thousand models' detectors cold costs ~1 µs a feature on the machine
    driftline is measured on (cache and TLB misses), reading one array per model a fraction.
    A detector's readings change only when it runs, so the table is never stale; it starts
    empty with fresh detectors (a rebaseline) and is rebuilt when state is loaded.

    The features' slots follow each other in the order of :attr:`slots` (a feature that leaves
    takes its three numbers with it), so :meth:`columns` reads each column with one stride;
    :attr:`layout` counts the changes of names or slots.

    >>> from types import SimpleNamespace as Detector
    >>> table = SignalTable()
    >>> table.note("a", Detector(ready=True, statistic=0.5, threshold=4.0, drift_detected=False))
    >>> table.note("b", Detector(ready=True, statistic=5.0, threshold=4.0, drift_detected=True))
    >>> table.note("a", None)  # a leaves (its detector is gone)
    >>> names, statistics, thresholds, detected = table.columns()
    >>> names, statistics.tolist(), thresholds.tolist(), detected.tolist(), table.layout
    (['b'], [5.0], [4.0], [1.0], 3)
    """

    def __init__(self) -> None:
        self.slots: dict[str, int] = {}
        self.values = array("d")
        self.layout = 0

    def note(self, name: str, detector: Any) -> None:
        if detector is None or not detector.ready:  # none (high cardinality) or still filling
            slot = self.slots.pop(name, None)
            if slot is not None:  # (rare: a rebaseline starts a new table) close the gap
                del self.values[slot : slot + 3]
                self.slots = {n: s - 3 if s > slot else s for n, s in self.slots.items()}
                self.layout += 1
            return
        slot = self.slots.get(name)
        if slot is None:
            slot = self.slots[name] = len(self.values)
            self.values.extend((0.0, 0.0, 0.0))
            self.layout += 1
        values = self.values
        values[slot] = detector.statistic
        values[slot + 1] = detector.threshold
        values[slot + 2] = 1.0 if detector.drift_detected else 0.0

    def columns(self) -> tuple[list[str], array[float], array[float], array[float]]:
        """(names, statistics, thresholds, detected: 1.0 or 0.0), each in the order of slots."""
        values = self.values
        return list(self.slots), values[0::3], values[1::3], values[2::3]

    def rows(self) -> list[tuple[str, str, float, float, bool]]:
        """As :meth:`ModelState.signals` reports them: ("feature", name, statistic, ...)."""
        values = self.values
        return [
            ("feature", name, values[slot], values[slot + 1], values[slot + 2] == 1.0)
            for name, slot in self.slots.items()
        ]
