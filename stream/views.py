"""What ``/api/models`` and ``/api/models/{model_id}`` answer, and what the pages draw: views
built from the :class:`~detectors.monitor.Monitor` (now) and the
:class:`~stream.history.History` (recent past), written by :func:`as_json` as
``schemas/status.schema.json`` describes.

Times are milliseconds since the epoch (event time in a replay, wall time live). A series is
a numpy array of points, oldest first, NaN (JSON's null) where its step had no value;
``times[i]`` is the start of point ``i``'s step. The overview's sparklines are the last
:data:`SPARK_POINTS` points.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson

from detectors.model import ModelState
from detectors.monitor import Monitor
from stream.history import History, ModelHistory

__all__ = ["SPARK_POINTS", "as_json", "model_view", "models_view"]

#: Points of a sparkline on the overview.
SPARK_POINTS = 120
_NONE = np.zeros(0, dtype=np.float32)
#: Timeline entries shown per model on the overview.
LATEST_EVENTS = 5


def models_view(monitor: Monitor, history: History) -> dict[str, Any]:
    """Every model's row: state, versions, rate, current metrics, sparklines, latest events."""
    rows = []
    order = history.order()
    for model_id in sorted(monitor.models):
        model = monitor.models[model_id]
        past = history.models.get(model_id)
        rows.append(_summary(model_id, model, past, order[-SPARK_POINTS:], LATEST_EVENTS))
    return {"now": history.now, "step_ms": history.step_ms, "models": rows}


def model_view(monitor: Monitor, history: History, model_id: str) -> dict[str, Any] | None:
    """One model in full (None when the Monitor does not know it): its row with the whole
    series, every feature's ratio to its threshold over time, versions and their metrics, and
    the timeline."""
    model = monitor.models.get(model_id)
    if model is None:
        return None
    past = history.models.get(model_id)
    order = history.order()
    view = _summary(model_id, model, past, order, history.max_events)
    view["now"] = history.now
    view["step_ms"] = history.step_ms
    view["times"] = [] if past is None else history.times()
    current = {
        name: (statistic, threshold, detected)
        for signal, name, statistic, threshold, detected in model.signals()
        if signal == "feature"
    }
    features = []
    for name in sorted(current.keys() | (set() if past is None else set(past.features))):
        statistic, threshold, detected = current.get(name, (None, None, False))
        features.append(
            {
                "name": name,
                "statistic": _number(statistic),
                "threshold": _number(threshold),
                "detected": bool(detected),
                "ratio": _NONE
                if past is None or name not in past.features
                else past.feature_series(name, order),
            }
        )
    view["features"] = features
    view["version_details"] = [_version(model, name) for name in sorted(model.versions)]
    return view


def _summary(
    model_id: str, model: ModelState, past: ModelHistory | None, order: np.ndarray, events: int
) -> dict[str, Any]:
    latest = model.latest_version
    version = model.versions.get(latest or "")
    metric = "mae" if model.regression else "f1"
    value = None
    estimated = None
    if version is not None:
        if version.metrics.n:
            value = version.metrics.values().get(metric)
        estimate = None if version.estimator is None else version.estimator.estimate()
        if estimate is not None:
            estimated = estimate.values.get(metric)
    worst = None
    for signal, name, statistic, threshold, detected in model.signals():
        if signal != "feature" or not threshold or not math.isfinite(statistic):
            continue
        if worst is None or statistic / threshold > worst["statistic"] / worst["threshold"]:
            worst = {
                "name": name,
                "statistic": statistic,
                "threshold": threshold,
                "detected": bool(detected),
            }
    series: dict[str, np.ndarray] = {}
    rate = None
    if past is not None:
        for name in ("events_per_second", "metric", "estimated_metric", "worst_drift"):
            series[name] = past.series(name, order)
        rates = series["events_per_second"]
        known = rates[np.isfinite(rates)]
        rate = float(known[-1]) if len(known) else None
    firing = [
        {
            "type": key.alert,
            "signal": key.signal,
            "feature": key.feature or None,
            "model_version": key.version,
            "since": since,
        }
        for key, since in sorted(model.alerts.firing_since().items(), key=lambda kv: kv[1])
    ]
    return {
        "model_id": model_id,
        "state": "healthy" if past is None else past.state,
        "state_since": None if past is None else past.state_since,
        "latest_version": latest,
        "versions": sorted(model.versions),
        "events_per_second": rate,
        "sample": model.config.sample,
        "metric": metric,
        "value": _number(value),
        "estimated": _number(estimated),
        "worst_feature": worst,
        "series": series,
        "firing": firing,
        "timeline": [] if past is None else [e.as_json() for e in list(past.timeline)[-events:]],
    }


def as_json(view: dict[str, Any]) -> bytes:
    """A view as the API sends it (its series are numpy arrays: NaN becomes null)."""
    return orjson.dumps(view, option=orjson.OPT_SERIALIZE_NUMPY)


def _version(model: ModelState, name: str) -> dict[str, Any]:
    version = model.versions[name]
    estimator = version.estimator
    estimate = None if estimator is None else estimator.estimate()
    metrics = version.metrics.values() if version.metrics.n else {}
    return {
        "version": name,
        "latest": name == model.latest_version,
        "first_seen": version.first_seen,
        "last_seen": version.last_seen,
        "outcomes": version.metrics.n,
        "metrics": {k: _number(v) for k, v in metrics.items()},
        "estimation": None if estimator is None else estimator.status,
        "estimated": {}
        if estimate is None
        else {k: _number(v) for k, v in estimate.values.items()},
    }


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
