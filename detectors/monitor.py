"""The monitoring core: batches of events in, alerts and commands out. No Kafka, no clock.

The live service (``stream/``) and ``driftline replay`` drive the same :class:`Monitor`::

    monitor = Monitor(MonitorConfig.from_yaml("driftline.yaml"))
    out = monitor.process(events)           # replay: event time is the clock
    out = monitor.process(events, now=ms)   # live: ``now`` is wall time
    out += monitor.tick(now=ms)             # stall checks, while nothing arrives

``process`` applies each model's events in the order given and returns CloudEvents (alerts
and commands) in the order they were decided. The same input gives the same output. A model
configured with ``sample`` below 1 is given only the events its sample keeps
(:mod:`detectors.sampling`); the others are counted in ``counters.sampled``, by model and kind.

Examples
--------
>>> from schemas import Prediction
>>> monitor = Monitor()
>>> events = [Prediction(model_id="m", model_version="1", prediction_id=str(i),
...                      timestamp=1_795_255_200_000 + i, prediction=i % 2 == 0)
...           for i in range(10)]
>>> monitor.process(events)
[]
>>> monitor.counters.events
{'prediction': 10}
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from detectors.base import StateError
from detectors.config import MonitorConfig
from detectors.counters import Counters
from detectors.model import ModelState
from detectors.sampling import split
from schemas import Input, Label, Prediction
from schemas.cloudevents import Alert, Command

__all__ = ["Monitor", "Rejection"]

Event = Prediction | Input | Label
Emission = Alert | Command


@dataclass(frozen=True, slots=True)
class Rejection:
    """Events of one model that a batch gave back instead of applying.

    ``reason`` is ``model_limit`` (the model would exceed ``max_models``) or ``internal_error``
    (the core raised while applying them: the model was reset, ``error`` says what was raised).
    """

    model_id: str
    reason: str
    error: str
    events: int


#: Layout version of :meth:`Monitor.model_state`; states of another version are refused.
STATE_VERSION = 1


class Monitor:
    """Per-model monitoring state, updated by batches of events.

    Parameters
    ----------
    config
        Thresholds and per-model overrides; defaults work with no configuration.
    source
        CloudEvents ``source`` of every alert and command.
    max_models
        Most models tracked at once; events of further models are counted as refused.
    max_features_per_model
        Most features tracked per model; further names are counted as refused.
    max_pending_total
        Most predictions waiting for labels, over all models; the largest stores give up
        their oldest first.
    """

    #: What an exception raised while applying a model's events does: reset that model and
    #: give its events back (the service's choice: one model's bug must not stop the others),
    #: or, when False, propagate (the core's tests, so a slip is a traceback, not an alert
    #: fewer).
    reset_on_error: ClassVar[bool] = True

    def __init__(
        self,
        config: MonitorConfig | None = None,
        *,
        source: str = "/driftline",
        max_models: int = 1_000,
        max_features_per_model: int = 100,
        max_pending_total: int = 1_000_000,
    ) -> None:
        self.config = config or MonitorConfig()
        self.source = source
        self.max_models = max_models
        self.max_features_per_model = max_features_per_model
        self.max_pending_total = max_pending_total
        self.models: dict[str, ModelState] = {}
        self.counters = Counters()
        self.rejections: list[Rejection] = []

    # -- processing ----------------------------------------------------------------------------

    def process(self, events: Sequence[Event], now: int | None = None) -> list[Emission]:
        """Apply a batch of events; return the alerts and commands they cause."""
        by_model: dict[str, list[Event]] = {}
        for event in events:
            bucket = by_model.get(event.model_id)
            if bucket is None:
                bucket = by_model[event.model_id] = []
            bucket.append(event)
        out: list[Emission] = []
        for model_id, model_events in by_model.items():
            state = self._model(model_id)
            if state is None:
                Counters.add(self.counters.refused, "model", len(model_events))
                self.rejections.append(
                    Rejection(
                        model_id,
                        "model_limit",
                        f"max_models ({self.max_models}) models are tracked already",
                        len(model_events),
                    )
                )
                continue
            rate = state.config.sample
            kept, left_out = (model_events, None) if rate >= 1.0 else split(model_events, rate)
            try:
                if kept:
                    out.extend(state.process(kept, now))
            except Exception as exc:  # noqa: BLE001 - one model's bug must not stop the others
                # Every event of the batch goes back, those left out of the sample too: each
                # is counted once, dead-lettered.
                self._failed(model_id, exc, len(model_events))
                continue
            if left_out:
                sampled = self.counters.sampled
                for kind, count in left_out.items():
                    sampled[model_id, kind] = sampled.get((model_id, kind), 0) + count
        self._bound_pending()
        return out

    def tick(self, now: int) -> list[Emission]:
        """Check every model for stalls at ``now``."""
        out: list[Emission] = []
        for model_id, state in list(self.models.items()):
            try:
                out.extend(state.tick(now))
            except Exception as exc:  # noqa: BLE001
                self._failed(model_id, exc, 0)
        return out

    def take_rejections(self) -> list[Rejection]:
        """The events given back since the last call (to be dead-lettered by the caller)."""
        rejections, self.rejections = self.rejections, []
        return rejections

    def _failed(self, model_id: str, exc: Exception, events: int) -> None:
        if not self.reset_on_error:
            raise exc
        # A half-applied update leaves the model's state inconsistent: start it afresh. The
        # outputs it decided in this batch are lost with it; its events go back to the caller.
        self.models.pop(model_id, None)
        Counters.add(self.counters.resets, "internal_error")
        detail = f"{type(exc).__name__}: {exc}"[:500]
        self.rejections.append(Rejection(model_id, "internal_error", detail, events))

    def _model(self, model_id: str) -> ModelState | None:
        state = self.models.get(model_id)
        if state is None:
            if len(self.models) >= self.max_models:
                return None
            state = ModelState(
                model_id,
                self.config.for_model(model_id),
                self.counters,
                source=self.source,
                max_features=self.max_features_per_model,
            )
            self.models[model_id] = state
        return state

    def _bound_pending(self) -> None:
        joins = [state.join for state in self.models.values()]
        pending = [join.pending for join in joins]
        excess = sum(pending) - self.max_pending_total
        if excess <= 0:
            return
        # Water-filling: trim the largest stores down to one level, exactly ``excess`` in all
        # (one pass over the models, not one per slice: a thousand models evict every fetch).
        order = sorted(range(len(joins)), key=pending.__getitem__, reverse=True)
        top = 0
        for k, index in enumerate(order):
            top += pending[index]
            below = pending[order[k + 1]] if k + 1 < len(order) else 0
            if top - (k + 1) * below >= excess:
                level, spare = divmod(top - excess, k + 1)
                for rank, chosen in enumerate(order[: k + 1]):
                    # ``spare`` stores keep one more, so exactly ``excess`` go.
                    keep = level + (1 if rank < spare else 0)
                    if pending[chosen] > keep:
                        joins[chosen].evict(pending[chosen] - keep)
                return

    # -- state ---------------------------------------------------------------------------------

    def model_state(self, model_id: str) -> dict[str, Any]:
        """One model's whole state, as plain JSON-able data."""
        return {"version": STATE_VERSION, "model": self.models[model_id].to_state()}

    def load_model_state(self, model_id: str, data: dict[str, Any]) -> None:
        """Restore one model from :meth:`model_state`'s output; :class:`StateError` if it does
        not fit (the model then starts from scratch)."""
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise StateError(f"model state version {data.get('version')!r} is not supported")
        if model_id not in self.models and len(self.models) >= self.max_models:
            raise StateError("max_models reached")
        state = ModelState(
            model_id,
            self.config.for_model(model_id),
            self.counters,
            source=self.source,
            max_features=self.max_features_per_model,
        )
        try:
            state.load_state(data["model"])
        except StateError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise StateError(f"model state of {model_id} is malformed: {exc}") from None
        self.models[model_id] = state

    def drop_models(self, model_ids: Iterable[str]) -> None:
        """Forget models (their partition moved to another worker), and their counts of
        sampled events (series bounded by the models tracked)."""
        dropped = set()
        for model_id in model_ids:
            self.models.pop(model_id, None)
            dropped.add(model_id)
        sampled = self.counters.sampled
        for key in [key for key in sampled if key[0] in dropped]:
            del sampled[key]
