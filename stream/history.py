"""What the status page and the replay report draw: each model's recent history, in bounded
memory, sampled from the :class:`~detectors.monitor.Monitor` at fixed steps of time.

Live, the worker samples on wall time; a replay samples on its watermark (event time), so a
report of a backtest covers the backtest's days. Every ``step_ms`` (one minute by default) a
model gets one point: its events in the step (hence events/s), the realised and the estimated
F1 (MAE for regression) of its latest version, and each feature's drift statistic as a share
of its threshold (1: at the threshold), the worst of them kept as a series of its own. Alerts
and commands are kept as a timeline (the last ``max_events`` per model).

**Memory.** A series is a ring of ``points`` float32 (the model's) or float16 (a feature's
ratio: three significant digits are plenty for a line against 1), the steps they hold shared
by every model: with the defaults, 24 h at one-minute steps, ``1,440 x (16 + 2 F)`` bytes a
model with ``F`` features, 52 kB with 10 features, 81 kB with 20 (81 MB at 1,000 models); and
up to ``max_events`` timeline entries of a few hundred bytes each. Features beyond
``max_features`` per model are not drawn (they stay on ``/metrics``).

Nothing here changes the Monitor: it is read, never written.

Examples
--------
>>> from detectors.monitor import Monitor
>>> from schemas import Prediction
>>> monitor, history = Monitor(), History(step_ms=1000, points=60)
>>> for i in range(5):
...     event = Prediction(model_id="m", model_version="1", prediction_id=f"p{i}",
...                        timestamp=1_000 * i, prediction=0.5, features={"x": 0.1 * i})
...     history.record(monitor.process([event]))
...     history.sample(monitor, 1_000 * i)
>>> history.models["m"].series("events_per_second", history.order()).tolist()  # first: none
[nan, 1.0, 1.0, 1.0, 1.0]
>>> history.models["m"].state
'healthy'
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.model import ModelState
from detectors.monitor import Monitor
from detectors.outbox import Emission
from schemas import Alert, Command, RollbackData

__all__ = ["History", "ModelHistory", "STATES", "TimelineEntry"]

#: A model's state on the page, worst first.
STATES = ("rolling back", "stalled", "degraded", "drifting", "healthy")
#: Which firing alerts put a model in which state.
_STATE_OF_ALERT = {
    "input_stall": "stalled",
    "label_stall": "stalled",
    "performance_degradation": "degraded",
    "estimated_performance_degradation": "degraded",
    "latency_degradation": "degraded",
    "segment_degradation": "degraded",
    "data_drift": "drifting",
    "prediction_drift": "drifting",
    "concept_drift": "drifting",
}
#: The model's own series (float32 rings).
SERIES = ("events_per_second", "metric", "estimated_metric", "worst_drift")


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """An alert's transition or a command, as a timeline shows it."""

    at: int  # event time, ms
    kind: str  # "alert" or "command"
    type: str  # data_drift, ..., retrain, rollback
    status: str  # firing, resolved (commands: "sent")
    version: str | None
    signal: str
    feature: str | None
    summary: str

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "kind": self.kind,
            "type": self.type,
            "status": self.status,
            "model_version": self.version,
            "signal": self.signal,
            "feature": self.feature,
            "summary": self.summary,
        }


class ModelHistory:
    """One model's series over the last ``points`` steps (slot ``s % points`` holds step
    ``s``, as the :class:`History`'s clock says), and its timeline."""

    def __init__(self, points: int, max_features: int, max_events: int) -> None:
        self.points = points
        self.max_features = max_features
        self.values = np.full((len(SERIES), points), np.nan, dtype=np.float32)
        #: Feature -> its statistic / threshold per slot.
        self.features: dict[str, np.ndarray] = {}
        self.timeline: deque[TimelineEntry] = deque(maxlen=max_events)
        self.last_step = -1
        self.state = "healthy"
        self.state_since: int | None = None
        #: The version a rollback command was sent for, and when (event time).
        self.rolling_back: tuple[str, int] | None = None
        # (events counted, time) at the last sample, and at the previous step's last one.
        self._last: tuple[int, int] | None = None
        self._base: tuple[int, int] | None = None

    def add_point(self, step: int, model: ModelState, now: int, step_ms: int) -> None:
        """The point of ``step`` (a later call in the same step overwrites it)."""
        slot = step % self.points
        total = model.events_applied
        if step != self.last_step:
            # A new step: the slot's old point goes. Its rate counts from the previous step's
            # last sample (the first point has none: no rate).
            self.values[:, slot] = np.nan
            for ratios in self.features.values():
                ratios[slot] = np.nan
            self._base = self._last
        if self._base is not None and now > self._base[1]:
            self.values[0, slot] = (total - self._base[0]) * 1000 / (now - self._base[1])
        self._last = (total, now)
        self.last_step = step
        latest = model.versions.get(model.latest_version or "")
        if latest is not None:
            metric = "mae" if model.regression else "f1"
            value = latest.metrics.values().get(metric) if latest.metrics.n else None
            self.values[1, slot] = np.nan if value is None else value
            estimator = latest.estimator
            estimate = None if estimator is None else estimator.estimate()
            if estimate is not None and metric in estimate.values:
                self.values[2, slot] = estimate.values[metric]
        worst = -math.inf
        for signal, name, statistic, threshold, _ in model.signals():
            if signal != "feature" or not threshold or not math.isfinite(statistic):
                continue
            ratio = statistic / threshold
            ratios = self.features.get(name)
            if ratios is None:
                if len(self.features) >= self.max_features:
                    continue
                ratios = self.features[name] = np.full(self.points, np.nan, dtype=np.float16)
            ratios[slot] = min(ratio, 60_000.0)  # (float16's range)
            worst = max(worst, ratio)
        if worst > -math.inf:
            self.values[3, slot] = worst
        self._update_state(model, now, step_ms)

    def _update_state(self, model: ModelState, now: int, step_ms: int) -> None:
        # (From the model's alert book: after a restart, its restored state says the same.)
        starts: dict[str, int] = {}
        for key, since in model.alerts.firing_since().items():
            kind = _STATE_OF_ALERT.get(key.alert)
            if kind is not None:
                starts[kind] = min(since, starts.get(kind, since))
        state = next((s for s in STATES[1:-1] if s in starts), "healthy")
        # Rolling back: a rollback was asked for and the version it moves away from still
        # serves (a prediction within the last two steps). Once its traffic stops, it is done.
        if self.rolling_back is not None:
            version, _ = self.rolling_back
            serving = model.versions.get(version)
            if serving is not None and serving.last_seen >= now - 2 * step_ms:
                state = "rolling back"
            else:
                self.rolling_back = None
        if state != self.state:
            # Since when: the first alert of that kind still firing (event time), else now.
            self.state, self.state_since = state, starts.get(state, now)

    def record(self, entry: TimelineEntry) -> None:
        self.timeline.append(entry)
        if entry.type == "rollback" and entry.version is not None:
            self.rolling_back = (entry.version, entry.at)

    def series(self, name: str, order: np.ndarray) -> np.ndarray:
        """A series' points in ``order`` (the clock's slots, oldest first): float32, NaN where
        the step had no value (JSON's null: ``orjson.OPT_SERIALIZE_NUMPY``)."""
        return self.values[SERIES.index(name)][order]

    def feature_series(self, name: str, order: np.ndarray) -> np.ndarray:
        return self.features[name][order].astype(np.float32)

    def coarsen(self, order: np.ndarray, slots: np.ndarray) -> None:
        """Twice the step: the points in ``order`` move to ``slots`` (a pair of steps to one
        slot: events/s their mean, the other series their later value)."""
        values = self.values[:, order]
        features = {name: ratios[order] for name, ratios in self.features.items()}
        self.values[:] = np.nan
        for ratios in self.features.values():
            ratios[:] = np.nan
        previous = -1
        for i, slot in enumerate(slots.tolist()):
            rate = values[0, i]
            if slot != previous or np.isnan(self.values[0, slot]):
                self.values[0, slot] = rate
            elif not np.isnan(rate):
                self.values[0, slot] = (self.values[0, slot] + rate) / 2
            previous = slot
            for row in range(1, len(SERIES)):
                if not np.isnan(values[row, i]):
                    self.values[row, slot] = values[row, i]
            for name, ratios in features.items():
                if not np.isnan(ratios[i]):
                    self.features[name][slot] = ratios[i]
        self.last_step //= 2

    def nbytes(self) -> int:
        return self.values.nbytes + sum(r.nbytes for r in self.features.values())


class History:
    """Every model's :class:`ModelHistory`, sampled from a Monitor.

    Parameters
    ----------
    step_ms
        Time between two points of a series.
    points
        Points kept per series (``points * step_ms``: how far back a series goes).
    max_features
        Features drawn per model.
    max_events
        Timeline entries kept per model.
    stretch
        Keep everything from the first point on (a replay's report): once the points would
        span more than ``points`` steps, the step doubles and pairs of points merge, instead
        of the oldest going.
    """

    def __init__(
        self,
        step_ms: int = 60_000,
        points: int = 1_440,
        max_features: int = 100,
        max_events: int = 200,
        stretch: bool = False,
    ) -> None:
        if step_ms <= 0 or points <= 1:
            raise ValueError("a history needs a positive step and at least two points")
        self.step_ms = step_ms
        self.points = points
        self.max_features = max_features
        self.max_events = max_events
        self.stretch = stretch
        self.models: dict[str, ModelHistory] = {}
        self.now: int | None = None
        #: The clock every model's series share: the step each slot holds (-1: none yet).
        self.steps = np.full(points, -1, dtype=np.int64)
        self.first_step: int | None = None

    def _model(self, model_id: str) -> ModelHistory:
        history = self.models.get(model_id)
        if history is None:
            history = self.models[model_id] = ModelHistory(
                self.points, self.max_features, self.max_events
            )
        return history

    def sample(self, monitor: Monitor, now: int) -> None:
        """A point per model for the step ``now`` falls in; models the Monitor forgot go."""
        self.now = now
        if self.first_step is None:
            self.first_step = now // self.step_ms
        while self.stretch and now // self.step_ms - self.first_step >= self.points:
            self._coarsen()
        step = now // self.step_ms
        self.steps[step % self.points] = step
        models = monitor.models
        for gone in self.models.keys() - models.keys():
            del self.models[gone]
        for model_id, model in models.items():
            self._model(model_id).add_point(step, model, now, self.step_ms)

    def order(self) -> np.ndarray:
        """The slots with a step, oldest first."""
        held = np.flatnonzero(self.steps >= 0)
        return held[np.argsort(self.steps[held], kind="stable")]

    def times(self) -> list[int]:
        """Start of each point's step (ms), oldest first."""
        return [int(s) * self.step_ms for s in self.steps[self.order()].tolist()]

    def _coarsen(self) -> None:
        order = self.order()
        steps = self.steps[order] // 2
        slots = steps % self.points
        self.steps[:] = -1
        self.steps[slots] = steps
        for history in self.models.values():
            history.coarsen(order, slots)
        self.step_ms *= 2
        assert self.first_step is not None
        self.first_step //= 2

    def record(self, emissions: list[Emission]) -> None:
        """Alerts and commands into their models' timelines."""
        for emission in emissions:
            data = emission.data
            if isinstance(emission, Alert):
                entry = TimelineEntry(
                    _millis(data.event_time),
                    "alert",
                    emission.type.rsplit(".", 1)[-1],
                    data.status,
                    data.model_version,
                    data.signal,
                    data.feature,
                    data.summary,
                )
            else:
                entry = _command_entry(emission)
            self._model(data.model_id).record(entry)

    def nbytes(self) -> int:
        """Bytes held by the series (the timelines' entries aside)."""
        return self.steps.nbytes + sum(h.nbytes() for h in self.models.values())


def _millis(text: str) -> int:
    return int(np.datetime64(text.rstrip("Z"), "ms").astype(np.int64))


def _command_entry(command: Command) -> TimelineEntry:
    data = command.data
    at = _millis(command.time)  # (a command's time: the event time it was decided at)
    if isinstance(data, RollbackData):
        summary = f"rollback from {data.from_version} to {data.to_version}: {data.reason}"
        return TimelineEntry(
            at, "command", "rollback", "sent", data.from_version, data.reason, None, summary
        )
    summary = f"retrain {data.model_version}: {data.reason}"
    return TimelineEntry(
        at, "command", "retrain", "sent", data.model_version, data.reason, None, summary
    )
