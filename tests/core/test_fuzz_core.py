"""Property-based fuzzing of the monitoring core (:class:`detectors.monitor.Monitor`).

Random but valid traffic for a few models and versions (edge-case feature values, features
coming and going and changing type, skewed and out-of-order timestamps, re-sent predictions,
labels for unknown ids or before their prediction, regression and classification outcomes) is
fed in random batch splits, replayed or live, with stall checks in between. Whatever the
traffic:

* nothing raises out of ``process`` or ``tick`` and no model hits an internal error;
* every alert and command encodes, decodes back, validates against its published schema and
  holds finite numbers only;
* every model's state survives JSON at any cut, and a monitor restored from it carries on
  exactly like the original;
* the counters account for every event, label, alert and command.

The examples are deterministic (the ``ci`` hypothesis profile, see ``tests/conftest.py``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jsonschema
import msgspec
import orjson
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

import detectors.model as model_module
from detectors.alerting import AlertKey
from detectors.config import ConfigError, ModelConfig, MonitorConfig
from detectors.monitor import Monitor
from schemas import (
    ALERT_TYPES,
    COMMAND_TYPES,
    Alert,
    Command,
    EventDecoder,
    Label,
    Limits,
    Prediction,
    decode_alert,
    decode_command,
    encode,
)

T0 = 1_795_255_200_000  # 2026-11-21T10:00:00Z
LIMITS = Limits()
DECODER = EventDecoder()
HOUR = 3_600_000

# A small configuration: references, windows and sample counts of a few events, so that a
# short random stream reaches every detector, policy and cap (and the alerts flap).
SMALL = MonitorConfig.from_dict(
    {
        "defaults": {
            "drift": {
                "reference_size": 8,
                "block": 4,
                "span": 8,
                "confirm": 4,
                "window": 12,
                "min_samples": 4,
                "max_categories": 3,
                "max_cardinality": 4,
                "alpha": 0.05,
            },
            "prediction_drift": {
                "reference_size": 6,
                "block": 2,
                "span": 4,
                "confirm": 2,
                "window": 16,
                "min_samples": 8,
                "alpha": 0.3,
            },
            "concept": {
                "reference_size": 10,
                "block": 2,
                "span": 4,
                "confirm": 2,
                "min_errors": 1,
                "ph_threshold": 1,
                "alpha": 0.05,
            },
            "quality": {"window": 8, "min_samples": 2, "rate_threshold": 0.2},
            "stall_inputs": {"min_timeout": "1s", "max_timeout": "1m", "min_events": 3},
            "stall_labels": {"min_timeout": "1s", "max_timeout": "1m", "min_events": 3},
            "join": {
                "ttl": "1h",
                "max_pending": 20,
                "label_wait": "10m",
                "max_pending_labels": 3,
                "remember": 8,
            },
            "metrics": {"window": 6, "min_samples": 2},
            "alerts": {"resolve_after": 0, "cooldown": "1s"},
            "retrain": {"confirm_samples": 1, "cooldown": 0},
            "rollback": {"min_samples": 2, "max_samples": 8, "alpha": 0.5, "min_margin": 0},
            "max_versions": 2,
        },
        "models": {
            "reg": {"task": "regression", "features": {"b": "numeric", "c": "categorical"}},
            "cls": {"task": "classification", "metrics": {"positive_label": "yes"}},
            # Half of its events, by prediction id (detectors/sampling.py).
            "fraud.eu-west_1:v2@team+a": {"sample": 0.5},
        },
    }
)
CONFIGS = {"default": MonitorConfig(), "small": SMALL}

MODELS = ["m", "reg", "cls", "fraud.eu-west_1:v2@team+a"]
VERSIONS = ["1", "2", "3", "v.4"]
PREDICTION_IDS = ["p0", "p1", "p2", "p3", "é", "日本", "\u200b", "\x00", "🙂" * 3, "p" * 256]
FEATURE_NAMES = ["a", "b", "c", "é", "日本", "\u202e", " ", "x" * 256, "\x80"]

FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            *(0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308),
            *(-1.7976931348623157e308, 1e300, -1e300, 1.0, 0.5, 9007199254740993.0),
        ]
    ),
    st.integers(-5, 5).map(float),
)
STRINGS = st.one_of(
    st.sampled_from(["", "DE", "FR", "US", "日本", "\u200f", "yes", "no", " "]),
    st.text(max_size=6),
)
# What a feature holds after decoding: numbers are floats.
FEATURE_VALUES = st.one_of(st.none(), st.booleans(), FLOATS, STRINGS)
OUTCOMES = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(0, 2),
    FLOATS,
    st.sampled_from(["yes", "no", "", "日本"]),
)
PROBABILITIES = st.one_of(st.floats(0, 1), st.sampled_from([0.0, 1.0, 5e-324, 0.5, 1 - 2**-53]))
TIMESTAMPS = st.one_of(
    st.integers(T0 - 2 * HOUR, T0 + 2 * HOUR),  # out of order, minutes to hours apart
    st.integers(T0, T0 + 1000),  # near-simultaneous
    st.sampled_from([LIMITS.min_timestamp_ms, LIMITS.max_timestamp_ms, T0 + 365 * 24 * HOUR]),
)


@st.composite
def features(draw: st.DrawFn, rng: random.Random, shifted: bool) -> dict[str, Any]:
    """A feature row: regular features (``a`` numeric, ``c`` categorical, which shift with
    ``shifted`` for the drift detectors to find) and names that come and go with values of any
    type (now and then ``a`` and ``c`` too)."""
    row: dict[str, Any] = {}
    if rng.random() < 0.9:
        row["a"] = rng.gauss(4.0 if shifted else 0.0, 1.0)
        row["c"] = rng.choice(["US", "日本", ""] if shifted else ["DE", "FR"])
    if rng.random() < 0.3:
        names = FEATURE_NAMES[1:2] + FEATURE_NAMES[3:] if rng.random() < 0.9 else FEATURE_NAMES
        row.update(draw(st.dictionaries(st.sampled_from(names), FEATURE_VALUES, max_size=3)))
    return row


def outcome(draw: st.DrawFn, rng: random.Random, model: str, shifted: bool) -> Any:
    """A model's prediction (or true label): a regression value, a class, or anything."""
    if rng.random() < 0.03:
        return draw(OUTCOMES)  # an edge case, of any type
    if model == "reg":
        return rng.gauss(5.0 if shifted else 0.0, 1.0)
    if model == "cls":
        return "yes" if rng.random() < (0.9 if shifted else 0.2) else "no"
    if model == "m":
        return rng.random() < (0.9 if shifted else 0.3)
    return draw(OUTCOMES)


@st.composite
def documents(draw: st.DrawFn) -> list[tuple[str, dict[str, Any]]]:
    """(kind, document) pairs the decoder accepts: a stream of predictions, inputs and labels
    whose ids mostly match (a label before, after or without its prediction; re-sent
    predictions), versions that roll out, time that mostly moves on (with skew), and a shift
    halfway (features, predictions and errors) for the detectors to find.

    The stream's shape and regular values come from a seeded ``random.Random`` (realistic
    noise); the edge cases it mixes in are Hypothesis's own values.
    """
    count = draw(st.integers(10, 400))
    # (A plain seeded generator: Hypothesis's own random.Random can draw infinite normals.)
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    out: list[tuple[str, dict[str, Any]]] = []
    predicted: dict[str, dict[str, Any]] = {}  # model -> prediction id -> prediction
    version_of = dict.fromkeys(MODELS, 0)
    clock = T0
    weights = [rng.choice([1, 10]) for _ in MODELS]  # a model or two bring most of the traffic
    for i in range(count):
        shifted = i > count // 2
        model = rng.choices(MODELS, weights)[0]
        clock += rng.choice([1000, 1000, 0, 1, 60_000])
        ts = draw(TIMESTAMPS) if rng.random() < 0.05 else clock
        kind = rng.choice(["prediction", "prediction", "label", "label", "input"])
        if kind == "input" and model != MODELS[3] and rng.random() < 0.9:
            kind = "label"  # (inputs take over a model's features: mostly one model sends them)
        known = predicted.setdefault(model, {})
        if kind == "prediction":
            if model != "m" and rng.random() < 0.03:
                version_of[model] += 1  # a new version rolls out (and rebaselines)
            pid = f"p{i}"
            if known and rng.random() < 0.05:
                pid = rng.choice(sorted(known))  # re-sent
            elif rng.random() < 0.05:
                pid = draw(st.sampled_from(PREDICTION_IDS))
            value = outcome(draw, rng, model, shifted)
            known.setdefault(pid, value)
            doc: dict[str, Any] = {
                "model_id": model,
                "model_version": VERSIONS[version_of[model] % len(VERSIONS)],
                "prediction_id": pid,
                "timestamp": ts,
                "prediction": value,
            }
            if rng.random() < 0.8:
                row = draw(features(rng, shifted))
                doc["features"] = row if rng.random() < 0.95 else None
            if rng.random() < 0.5:
                doc["score"] = (
                    rng.random()
                    if rng.random() < 0.8
                    else draw(
                        PROBABILITIES
                        | st.dictionaries(st.sampled_from(["yes", "no", "日本"]), PROBABILITIES)
                        | st.none()
                    )
                )
            if rng.random() < 0.2:
                doc["latency_ms"] = draw(st.floats(0, 1e308) | st.none())
        elif kind == "input":
            doc = {"model_id": model, "timestamp": ts, "features": draw(features(rng, shifted))}
            if rng.random() < 0.5:
                doc["model_version"] = draw(st.sampled_from(VERSIONS))
        else:
            roll = rng.random()
            if known and roll < 0.8:
                pid = rng.choice(list(known)[-20:])  # its prediction came, lately
            elif roll < 0.9:
                pid = f"p{i + rng.randint(1, 5)}"  # ... or may come after
            else:
                pid = draw(st.sampled_from(PREDICTION_IDS))  # unknown, mostly
            if pid in known and rng.random() < (0.3 if shifted else 0.9):
                label = known[pid]  # mostly right before the shift, mostly wrong after it
                if model == "reg" and isinstance(label, float):
                    label += rng.gauss(0.0, 0.1)
            else:
                label = outcome(draw, rng, model, False)
            doc = {"model_id": model, "prediction_id": pid, "timestamp": ts, "label": label}
        out.append((kind, doc))
    return out


@st.composite
def traffic(draw: st.DrawFn) -> Traffic:
    """Events (decoded from their JSON, as the service sees them), cut into batches."""
    docs = draw(documents())
    events = [DECODER.decode(kind, orjson.dumps(doc)) for kind, doc in docs]  # type: ignore[arg-type]
    cuts = sorted(draw(st.sets(st.integers(1, len(events)), max_size=8)) | {len(events)})
    batches, start = [], 0
    # Half the time in the live pipeline's order: a fetch's predictions, then its labels and
    # inputs (so a model's batch holds runs of predictions, see ModelState._prediction_run).
    fetch_order = draw(st.booleans())
    for end in cuts:
        batch = events[start:end]
        if fetch_order:
            batch.sort(key=lambda event: event.kind != "prediction")
        batches.append(batch)
        start = end
    live = draw(st.booleans())
    steps: list[Step] = []
    clock = T0
    for batch in batches:
        if live:  # wall time moves on, sometimes behind the events' own times
            clock += draw(st.integers(0, 10 * 60_000))
        steps.append(Step(batch, clock if live else None))
        if draw(st.integers(0, 2)) == 0:
            last = max(e.timestamp for e in batch)
            tick = clock if live else last
            steps.append(Step([], tick + draw(st.sampled_from([0, 1, 999, 61_000, 2 * HOUR]))))
    return Traffic(
        config=draw(st.sampled_from(["small", "small", "default"])),
        steps=steps,
        max_models=draw(st.sampled_from([1000, 3, 1])),
        max_features=draw(st.sampled_from([100, 2])),
        max_pending_total=draw(st.sampled_from([1_000_000, 4])),
        restore_at=draw(st.integers(0, len(steps) - 1)),
    )


@dataclass
class Step:
    """A batch for ``process`` (with the live clock, or ``None`` in replay), or a ``tick``."""

    events: list[Any]
    now: int | None

    @property
    def is_tick(self) -> bool:
        return not self.events


@dataclass
class Traffic:
    config: str
    steps: list[Step]
    max_models: int
    max_features: int
    max_pending_total: int
    restore_at: int

    def monitor(self) -> Monitor:
        return Monitor(
            CONFIGS[self.config],
            max_models=self.max_models,
            max_features_per_model=self.max_features,
            max_pending_total=self.max_pending_total,
        )


@dataclass
class Run:
    """What a monitor emitted and refused over a traffic, step by step."""

    emitted: list[list[Alert | Command]] = field(default_factory=list)
    refused: list[dict[str, int]] = field(default_factory=list)  # model -> events, per step


def run_step(monitor: Monitor, step: Step, run: Run) -> None:
    if step.is_tick:
        assert step.now is not None
        out = monitor.tick(step.now)
    else:
        out = monitor.process(step.events, step.now)
    rejections = monitor.take_rejections()
    assert [r for r in rejections if r.reason == "internal_error"] == [], "the core raised"
    assert all(r.reason == "model_limit" for r in rejections)
    run.emitted.append(out)
    run.refused.append({r.model_id: r.events for r in rejections})


SCHEMAS = {
    name: json.loads(resources.files("schemas").joinpath(f"{name}.schema.json").read_text())
    for name in ("alert", "command")
}
VALIDATORS = {
    name: jsonschema.validators.validator_for(schema)(schema) for name, schema in SCHEMAS.items()
}


def assert_finite(value: Any, where: str = "data") -> None:
    if isinstance(value, float):
        assert math.isfinite(value), f"{where} is {value}"
    elif isinstance(value, dict):
        for key, item in value.items():
            assert_finite(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            assert_finite(item, f"{where}[{index}]")


def check_emission(emitted: Alert | Command) -> None:
    payload = encode(emitted)
    document = orjson.loads(payload)
    assert_finite(msgspec.to_builtins(emitted.data))
    json.dumps(document, allow_nan=False)  # strict JSON: no NaN or Infinity anywhere
    if isinstance(emitted, Alert):
        assert emitted.type in ALERT_TYPES.values()
        assert decode_alert(payload) == emitted
        VALIDATORS["alert"].validate(document)
    else:
        assert emitted.type in COMMAND_TYPES.values()
        assert decode_command(payload) == emitted
        VALIDATORS["command"].validate(document)


def restore(original: Monitor, traffic: Traffic) -> Monitor:
    """A fresh monitor with every model's state, through JSON bytes, as the service saves it."""
    fresh = traffic.monitor()
    for model_id in original.models:
        state = orjson.loads(orjson.dumps(original.model_state(model_id)))
        json.dumps(state, allow_nan=False)  # orjson writes NaN as null: there must be none
        fresh.load_model_state(model_id, state)
        again = orjson.loads(orjson.dumps(fresh.model_state(model_id)))
        assert comparable(again) == comparable(state), "the state changed on a reload"
    return fresh


def comparable(state: Any, key: str = "") -> Any:
    """A model state, with what may legitimately change on a reload made equal: sets.

    Remembered prediction ids (``expired``, ``joined``) are hash tables dumped in slot order,
    which depends on the order the keys went in; a categorical detector's ``known`` categories
    are a frozenset, dumped in hash order. (River also starts a Page-Hinkley bound at the int
    -1, which reloads as -1.0: equal values.)
    """
    if isinstance(state, dict):
        return {k: comparable(v, k) for k, v in state.items()}
    if isinstance(state, list):
        items = [comparable(v) for v in state]
        return sorted(items, key=repr) if key in ("expired", "joined", "known") else items
    return state


# -- the properties ------------------------------------------------------------------------


@given(traffic=traffic())
@settings(max_examples=max(20, settings().max_examples))
def test_any_valid_traffic_is_monitored_without_errors_and_accounted_for(
    traffic: Traffic,
) -> None:
    monitor = traffic.monitor()
    run = Run()
    for step in traffic.steps:
        run_step(monitor, step, run)
        for emitted in run.emitted[-1]:
            check_emission(emitted)
        restore(monitor, traffic)  # at every cut, the states reload (the original carries on)
    note(f"counters: {monitor.counters}")
    check_counters(monitor, traffic, run)
    check_alert_episodes(run)


def check_counters(monitor: Monitor, traffic: Traffic, run: Run) -> None:
    counters = monitor.counters
    given_events: Counter[str] = Counter()
    refused_events = 0
    for step, refused in zip(traffic.steps, run.refused, strict=True):
        refused_events += sum(refused.values())
        for event in step.events:
            if event.model_id in refused:
                continue
            given_events[event.kind] += 1
    # Every event is counted by kind, applied or left out by its model's sample, or refused
    # with its model (and given back).
    sampled = counters.sampled_by_kind()
    applied = {k: n - sampled.get(k, 0) for k, n in given_events.items()}
    assert counters.events == {k: n for k, n in applied.items() if n}
    assert all(
        CONFIGS[traffic.config].for_model(model_id).sample < 1 for model_id, _ in counters.sampled
    )
    assert counters.refused.get("model", 0) == refused_events
    assert sum(len(s.events) for s in traffic.steps) == sum(given_events.values()) + refused_events
    labels_applied = applied.get("label", 0)
    assert counters.resets == {}
    # Every label applied is joined, late, a duplicate, an unknown id, or still waiting.
    join = counters.join
    waiting = sum(state.join.pending_labels for state in monitor.models.values())
    counted = sum(join.get(k, 0) for k in ("joined", "late", "duplicate", "unknown_id"))
    assert counted + waiting == labels_applied, (join, waiting, labels_applied)
    # ... and every prediction is joined, expired, evicted or waiting at most once (a re-sent
    # prediction is not counted again).
    predictions = applied.get("prediction", 0)
    pending = sum(state.join.pending for state in monitor.models.values())
    consumed = sum(join.get(k, 0) for k in ("joined", "expired", "evicted"))
    assert consumed + pending <= predictions
    # The monitor never holds more waiting predictions than its cap.
    assert pending <= traffic.max_pending_total
    assert len(monitor.models) <= traffic.max_models
    for state in monitor.models.values():
        assert len(state.features) <= traffic.max_features
        # (Past max_versions only versions that may not be forgotten: the newest, the latest,
        # rollback's good and candidate.)
        max_versions = CONFIGS[traffic.config].for_model(state.model_id).max_versions
        assert len(state.versions) <= max(max_versions, 4)
    # Every alert and command emitted was counted, and nothing else.
    emitted = [e for out in run.emitted for e in out]
    alerts = Counter(e.type for e in emitted if isinstance(e, Alert))
    commands = Counter(e.type for e in emitted if isinstance(e, Command))
    assert counters.alerts == dict(alerts)
    assert counters.commands == dict(commands)


def check_alert_episodes(run: Run) -> None:
    """Each alert episode fires once, then resolves at most once, in that order."""
    state: dict[tuple[Any, ...], str] = {}
    for out in run.emitted:
        for emitted in out:
            if not isinstance(emitted, Alert):
                continue
            data = emitted.data
            version = data.model_version if emitted.type in VERSION_ALERTS else None
            key = (emitted.type, data.model_id, data.signal, data.feature, version)
            if data.status == "firing":
                assert state.get(key) != "firing", f"{key} fired twice without resolving"
            else:
                assert state.get(key) == "firing", f"{key} resolved without firing"
            state[key] = data.status


VERSION_ALERTS = {
    ALERT_TYPES[k] for k in ("prediction_drift", "concept_drift", "performance_degradation")
}


@given(traffic=traffic())
@settings(max_examples=max(20, settings().max_examples // 2))
def test_a_monitor_restored_from_its_state_carries_on_like_the_original(
    traffic: Traffic,
) -> None:
    original = traffic.monitor()
    first, second = Run(), Run()
    restored: Monitor | None = None
    for index, step in enumerate(traffic.steps):
        if index == traffic.restore_at:
            restored = restore(original, traffic)
        run_step(original, step, first)
        if restored is not None:
            run_step(restored, step, second)
    after = first.emitted[traffic.restore_at :]
    assert [[encode(e) for e in out] for out in second.emitted] == [
        [encode(e) for e in out] for out in after
    ]
    assert second.refused == first.refused[traffic.restore_at :]
    if restored is not None:
        assert set(restored.models) == set(original.models)
        for model_id in original.models:
            mine = orjson.loads(orjson.dumps(restored.model_state(model_id)))
            theirs = orjson.loads(orjson.dumps(original.model_state(model_id)))
            assert comparable(mine) == comparable(theirs)


# -- configurations: whatever the configuration accepts, the core can run --------------------

_SECTIONS = [
    "drift",
    "prediction_drift",
    "concept",
    "quality",
    "stall_inputs",
    "stall_labels",
    "join",
    "metrics",
    "alerts",
    "retrain",
    "rollback",
]
_SMALL_INTS = st.integers(0, 12) | st.sampled_from([1, 2, 10, 100, 2**31])
_FLOATS = st.sampled_from([0.0, 1e-12, 0.01, 0.25, 0.5, 0.99, 1.0, 1.5, 100.0, 1e12])
_DURATIONS = st.sampled_from([0, 0.001, 1, 60, "0s", "1ms", "2h", None])


def _value_for(default: Any, duration: bool) -> Any:
    if duration:
        return _DURATIONS
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return _SMALL_INTS
    if isinstance(default, float):
        return _FLOATS
    return st.none() | _FLOATS | st.sampled_from(["yes", True, 1])  # optional settings


@st.composite
def config_overrides(draw: st.DrawFn) -> dict[str, Any]:
    """A few settings of the ``defaults`` section, anywhere in their range or past it."""
    defaults = ModelConfig()
    overrides: dict[str, Any] = {"features": {"a": "numeric", "c": "categorical"}}
    for section in draw(st.lists(st.sampled_from(_SECTIONS), max_size=4, unique=True)):
        fields = dataclasses.fields(getattr(defaults, section))
        chosen = draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3, unique=True))
        overrides[section] = {
            f.name: draw(
                _value_for(getattr(getattr(defaults, section), f.name), "duration" in f.metadata)
            )
            for f in chosen
        }
    if draw(st.booleans()):
        overrides["max_versions"] = draw(st.integers(0, 5))
    if draw(st.booleans()):
        overrides["task"] = draw(st.sampled_from(["auto", "classification", "regression"]))
    if draw(st.booleans()):
        overrides["sample"] = draw(_FLOATS)
    return overrides


def _scripted_traffic() -> list[Step]:
    """Two models (classification, regression), three versions, features of both kinds,
    labels, inputs; replayed, then live, with stall checks."""
    rng = random.Random(7)
    events: list[Any] = []
    for i in range(90):
        ts = T0 + i * 1000
        version = str(1 + i // 30)
        for model, value in (("m", rng.random() < 0.3), ("reg", rng.gauss(0, 1))):
            doc = {
                "model_id": model,
                "model_version": version,
                "prediction_id": f"p{i}",
                "timestamp": ts,
                "prediction": value,
                "features": {"a": rng.gauss(0, 1), "c": rng.choice("xyz"), "d": None},
                "score": rng.random(),
            }
            events.append(DECODER.decode("prediction", orjson.dumps(doc)))
            label = {"model_id": model, "prediction_id": f"p{i}", "timestamp": ts, "label": value}
            events.append(DECODER.decode("label", orjson.dumps(label)))
    events.append(DECODER.decode("input", orjson.dumps({**MINIMAL_INPUT, "timestamp": T0})))
    steps = [Step(events[k : k + 97], None) for k in range(0, len(events), 97)]
    steps.append(Step([], T0 + 200_000))
    steps.append(Step(events[-50:], T0 + 400_000))
    steps.append(Step([], T0 + 10 * HOUR))
    return steps


MINIMAL_INPUT = {"model_id": "m", "features": {"a": 1.0}}
SCRIPTED = _scripted_traffic()


@given(overrides=config_overrides())
@settings(max_examples=max(20, settings().max_examples // 2))
def test_every_configuration_accepted_is_one_the_core_runs_with(overrides: dict[str, Any]) -> None:
    try:
        config = MonitorConfig.from_dict({"defaults": overrides})
    except ConfigError as error:
        refused = str(error)
    else:
        refused = None
    if refused is not None:
        note(f"refused: {refused}")
        assert refused.startswith("defaults.")  # the path of the offending setting
        return
    monitor = Monitor(config)
    run = Run()
    for step in SCRIPTED:
        run_step(monitor, step, run)  # no internal error: every detector accepted its settings
        for emitted in run.emitted[-1]:
            check_emission(emitted)
        fresh = Monitor(config)
        for model_id in monitor.models:  # ... and the states it makes reload
            fresh.load_model_state(
                model_id, orjson.loads(orjson.dumps(monitor.model_state(model_id)))
            )


def _numeric_settings() -> list[tuple[str, str, bool]]:
    defaults = ModelConfig()
    out = [("", "max_versions", False), ("", "max_future", True), ("", "sample", False)]
    for section in _SECTIONS:
        for f in dataclasses.fields(getattr(defaults, section)):
            value = getattr(getattr(defaults, section), f.name)
            duration = "duration" in f.metadata
            if duration or (isinstance(value, int | float) and not isinstance(value, bool)):
                out.append((section, f.name, duration))
    return out


# Ascending; past the small ones, values other settings' defaults require (span >= block...).
_CANDIDATES = {
    "int": [*range(21), 32, 64, 200, 1000, 10_000],
    "float": [0.0, 1e-12, 1e-6, 0.01, 0.1, 0.5],
    "duration": [0, "1ms", "2ms", "1s", "1m", "1h", "1d"],
}


def _smallest_accepted(section: str, name: str, duration: bool) -> tuple[Any, MonitorConfig]:
    default = getattr(getattr(ModelConfig(), section) if section else ModelConfig(), name)
    kind = "duration" if duration else "int" if isinstance(default, int) else "float"
    for value in _CANDIDATES[kind]:
        settings_ = {name: value}
        raw = settings_ if not section else {section: settings_}
        try:
            return value, MonitorConfig.from_dict({"defaults": {**SCRIPT_FEATURES, **raw}})
        except ConfigError:
            continue
    raise AssertionError(f"no small value of {section}.{name} is accepted")


SCRIPT_FEATURES = {"features": {"a": "numeric", "c": "categorical"}}


@pytest.mark.parametrize(
    ("section", "name", "duration"),
    _numeric_settings(),
    ids=[f"{section or 'model'}.{name}" for section, name, _ in _numeric_settings()],
)
def test_the_smallest_value_a_setting_accepts_is_one_the_core_runs_with(
    section: str, name: str, duration: bool
) -> None:
    """Each setting at the lowest value the configuration lets through: no model may be reset
    at its first events because a detector refuses what the configuration accepted."""
    value, config = _smallest_accepted(section, name, duration)
    monitor = Monitor(config)
    run = Run()
    for step in SCRIPTED:
        run_step(monitor, step, run)
    assert monitor.counters.resets == {}, f"{section}.{name}={value!r}"
    assert set(monitor.models) == {"m", "reg"}
    fresh = Monitor(config)
    for model_id in monitor.models:
        fresh.load_model_state(model_id, orjson.loads(orjson.dumps(monitor.model_state(model_id))))


# -- regressions found by fuzzing ----------------------------------------------------------


@pytest.mark.parametrize(
    ("settings_", "path"),
    [
        ({"concept": {"reference_size": 9}}, "defaults.concept.reference_size"),
        ({"concept": {"reference_outcomes": 0}}, "defaults.concept.reference_outcomes"),
        ({"drift": {"reference_size": 1}}, "defaults.drift.reference_size"),
        ({"prediction_drift": {"max_categories": 1}}, "defaults.prediction_drift.max_categories"),
        ({"drift": {"block": 0}}, "defaults.drift.block"),
        ({"concept": {"min_errors": 0}}, "defaults.concept.min_errors"),
        ({"stall_inputs": {"min_timeout": 0}}, "defaults.stall_inputs.min_timeout"),
        ({"stall_labels": {"timeout": "0s"}}, "defaults.stall_labels.timeout"),
        # Accepted, it allocated 32 GB of id tables at the first label: the worker was killed.
        ({"join": {"remember": 2**31}}, "defaults.join.remember"),
    ],
)
def test_settings_the_detectors_refuse_are_refused_at_start(
    settings_: dict[str, Any], path: str
) -> None:
    """These passed the configuration's checks; then every model's first events raised in a
    detector's constructor and the model was reset, over and over (internal_error), or the
    first label allocated more memory than the machine had."""
    with pytest.raises(ConfigError) as info:
        MonitorConfig.from_dict({"defaults": settings_})
    assert str(info.value).startswith(path + ":")


def test_a_model_tracking_more_versions_than_max_versions_still_reloads() -> None:
    """Versions that may not be forgotten (the newest, the latest, rollback's good and
    candidate) can outnumber a small max_versions; such a state was refused on reload
    ("more versions than max_versions"), so the model started from scratch after a restart."""
    monitor = Monitor(MonitorConfig.from_dict({"defaults": {"max_versions": 1}}))
    for version, ts in (("1", T0), ("2", T0 + 1000), ("3", T0 + 500)):  # 3 is not the latest
        prediction = {
            "model_id": "m",
            "model_version": version,
            "prediction_id": version,
            "timestamp": ts,
            "prediction": True,
        }
        monitor.process([DECODER.decode("prediction", orjson.dumps(prediction))])
    assert sorted(monitor.models["m"].versions) == ["1", "2", "3"]
    fresh = Monitor(monitor.config)
    fresh.load_model_state("m", orjson.loads(orjson.dumps(monitor.model_state("m"))))
    assert sorted(fresh.models["m"].versions) == ["1", "2", "3"]


def test_a_feature_that_is_always_null_keeps_a_bounded_state_that_reloads() -> None:
    """While a feature's type was pending, every null was buffered: a feature always null
    grew its buffer (memory and saved state) with every event, and past 10 x reference_size
    entries the model's state was refused on reload."""
    config = MonitorConfig.from_dict({"defaults": {"drift": {"reference_size": 10}}})
    monitor = Monitor(config)
    batch = [
        DECODER.decode(
            "prediction",
            orjson.dumps(
                {
                    "model_id": "m",
                    "model_version": "1",
                    "prediction_id": f"p{i}",
                    "timestamp": T0 + i,
                    "prediction": True,
                    "features": {"always_null": None, "late": None if i < 300 else float(i)},
                }
            ),
        )
        for i in range(320)
    ]
    monitor.process(batch[:300])
    model = monitor.models["m"]
    assert model.features["always_null"].to_state()["buffer"] == []  # counted, not kept
    state = orjson.loads(orjson.dumps(monitor.model_state("m")))
    fresh = Monitor(config)
    fresh.load_model_state("m", state)  # (raised StateError: type-inference buffer too large)
    # The nulls still count towards the reference's null rate once the type is known.
    for m in (monitor, fresh):
        m.process(batch[300:])
        m.tick(T0 + 320)  # (feature rows wait for a block's worth, or a tick)
        late = m.models["m"].features["late"]
        assert late.kind == "numeric"
        assert late.to_state()["reference_nulls"] == 300


@pytest.mark.parametrize(
    ("prediction", "label"),
    [(1e308, 0.0), (1e308, -1e308), (-1.7976931348623157e308, 1.7976931348623157e308)],
)
def test_regression_errors_beyond_the_float_range_keep_metrics_and_state_finite(
    prediction: float, label: float
) -> None:
    """Finite predictions and labels whose errors overflow: two errors of 1e308 in the metrics
    window made reloading the state raise OverflowError (math.fsum), which the service's
    restore loop does not catch; an error of 1e308 - -1e308 is inf, which went into the
    concept detector's reference and made every saved state of the model unloadable."""
    config = MonitorConfig.from_dict(
        {"defaults": {"task": "regression", "metrics": {"window": 4, "min_samples": 2}}}
    )
    monitor = Monitor(config)
    out: list[Alert | Command] = []
    for i in range(30):
        value, truth = (prediction, label) if i % 2 else (0.5, 0.25)
        docs = [
            ("prediction", {**MINIMAL_PREDICTION, "prediction_id": f"p{i}", "prediction": value}),
            ("label", {**MINIMAL_LABEL, "prediction_id": f"p{i}", "label": truth}),
        ]
        events = [DECODER.decode(kind, orjson.dumps(doc)) for kind, doc in docs]  # type: ignore[arg-type]
        out += monitor.process(events)
    assert monitor.take_rejections() == []
    for emitted in out:
        check_emission(emitted)
    metrics = monitor.models["m"].versions["1"].metrics.values()
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    state = orjson.loads(orjson.dumps(monitor.model_state("m")))
    json.dumps(state, allow_nan=False)
    Monitor(config).load_model_state("m", state)


MINIMAL_PREDICTION = {"model_id": "m", "model_version": "1", "timestamp": T0}
MINIMAL_LABEL = {"model_id": "m", "timestamp": T0 + 1}


def test_the_alerts_of_a_forgotten_version_resolve_for_that_version() -> None:
    """A version's firing alert resolved when the version was forgotten (max_versions) named
    the latest version instead, so the firing alert of the old one never resolved for a
    consumer, and the new one resolved without having fired."""
    config = MonitorConfig.from_dict(
        {"defaults": {"max_versions": 1, "rollback": {"enabled": False}}}
    )
    monitor = Monitor(config)

    def predict(version: str, ts: int) -> list[Alert | Command]:
        doc = {**MINIMAL_PREDICTION, "model_version": version, "prediction_id": version}
        doc["prediction"] = True
        return monitor.process(
            [DECODER.decode("prediction", orjson.dumps({**doc, "timestamp": ts}))]
        )

    predict("1", T0)
    key = AlertKey("performance_degradation", "f1", "", "1")
    assert monitor.models["m"].alerts.observe(key, True, T0) is not None  # version 1's fires
    (resolved,) = predict("2", T0 + 1000)  # version 1 is forgotten: its alert resolves
    assert resolved.type == ALERT_TYPES["performance_degradation"]
    assert (resolved.data.status, resolved.data.model_version) == ("resolved", "1")
    assert sorted(monitor.models["m"].versions) == ["2"]


def restored_half_way(config: MonitorConfig, events: list, cut: int) -> tuple[Monitor, Monitor]:
    """Model ``m`` run through ``events`` uninterrupted, and saved at ``cut``, reloaded into a
    fresh monitor and run through the rest: (uninterrupted, restored)."""
    original = Monitor(config)
    original.process(events[:cut])
    restored = Monitor(config)
    restored.load_model_state("m", orjson.loads(orjson.dumps(original.model_state("m"))))
    for monitor in (original, restored):
        monitor.process(events[cut:])
    return original, restored


def test_a_restored_regression_model_carries_on_bit_for_bit() -> None:
    """The rolling MAE/RMSE sums were recomputed on reload (exactly, with math.fsum) while the
    running model kept its rounded running sums: after a restart the RMSE, hence the
    performance reference, differed in the last bits (0.68322517284858 vs 0.6832251728485801)
    and decisions near a threshold could differ from an uninterrupted run."""
    config = MonitorConfig.from_dict({"defaults": {"task": "regression"}})
    rng = random.Random(3)
    events = []
    for i in range(400):
        value = rng.gauss(0, 1)
        events += [
            DECODER.decode(
                "prediction",
                orjson.dumps({**MINIMAL_PREDICTION, "prediction_id": f"p{i}", "prediction": value}),
            ),
            DECODER.decode(
                "label",
                orjson.dumps(
                    {**MINIMAL_LABEL, "prediction_id": f"p{i}", "label": value + rng.gauss(0, 1)}
                ),
            ),
        ]
    original, restored = restored_half_way(config, events, 300)
    mine, theirs = (m.models["m"].versions["1"] for m in (restored, original))
    assert mine.metrics.values() == theirs.metrics.values()
    assert mine.performance.to_state() == theirs.performance.to_state()
    assert mine.performance.check() == theirs.performance.check()


def test_a_restored_rollback_test_carries_on_bit_for_bit() -> None:
    """Same for the rollback test's running sums of the last good version's errors: reloaded,
    they were summed afresh, and the z statistic of the next test differed in the last bits
    (1.529028591617037 vs 1.5290285916170365)."""
    config = MonitorConfig.from_dict(
        {"defaults": {"task": "regression", "rollback": {"min_samples": 10, "max_samples": 20}}}
    )
    rng = random.Random(5)
    events = []
    for i in range(200):
        value = rng.gauss(0, 1)
        prediction = {**MINIMAL_PREDICTION, "prediction_id": f"p{i}", "prediction": value}
        label = {**MINIMAL_LABEL, "prediction_id": f"p{i}", "label": value + rng.gauss(0, 1)}
        events += [
            DECODER.decode("prediction", orjson.dumps(prediction)),
            DECODER.decode("label", orjson.dumps(label)),
        ]
    original, restored = restored_half_way(config, events, 300)
    mine, theirs = (m.models["m"].rollback.to_state()["sums"]["1"] for m in (restored, original))
    assert mine == theirs


@given(traffic=traffic())
@settings(max_examples=max(20, settings().max_examples))
def test_runs_of_predictions_as_columns_decide_as_one_at_a_time(traffic: Traffic) -> None:
    """A batch's runs of predictions are applied as columns (ModelState._prediction_run): the
    same alerts and commands, in the same order, and the same state as one at a time."""
    runs, single = traffic.monitor(), traffic.monitor()
    taken = 0
    real_run = model_module.ModelState._prediction_run

    def counted(self: Any, events: Any, *args: Any) -> Any:
        nonlocal taken
        taken += 1
        return real_run(self, events, *args)

    for step in traffic.steps:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(model_module.ModelState, "_prediction_run", counted)
            by_runs = Run()
            run_step(runs, step, by_runs)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(model_module, "_MIN_RUN", 1 << 30)  # never a run: one at a time
            one_by_one = Run()
            run_step(single, step, one_by_one)
        assert [encode(e) for e in by_runs.emitted[-1]] == [
            encode(e) for e in one_by_one.emitted[-1]
        ]
        assert by_runs.refused == one_by_one.refused
    assert runs.counters == single.counters
    assert runs.models.keys() == single.models.keys()
    for model_id in runs.models:
        assert comparable(orjson.loads(orjson.dumps(runs.model_state(model_id)))) == comparable(
            orjson.loads(orjson.dumps(single.model_state(model_id)))
        )
    note(f"prediction runs taken: {taken}")


def test_a_batch_of_predictions_is_taken_as_one_run() -> None:
    """The property above compares something: a batch of one version's predictions is one run
    (and the fuzzed traffic in the pipeline's order holds such runs)."""
    monitor = Monitor()
    events = [
        DECODER.decode(
            "prediction",
            orjson.dumps(
                {
                    "model_id": "m",
                    "model_version": "1",
                    "prediction_id": f"p{i}",
                    "timestamp": T0 + i,
                    "prediction": i % 2 == 0,
                    "score": 0.5,
                }
            ),
        )
        for i in range(40)
    ]
    monitor.process(events[:1])  # the version is tracked from its first prediction
    assert run_lengths(monitor, events[1:], "_prediction_run") == [39]


def run_lengths(monitor: Monitor, events: list[Any], method: str) -> list[int]:
    """Process ``events``; the length of every run ``ModelState.<method>`` was given."""
    seen: list[int] = []
    real = getattr(model_module.ModelState, method)

    def spy(self: Any, run: Any, *args: Any) -> Any:
        seen.append(len(run))
        return real(self, run, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model_module.ModelState, method, spy)
        monitor.process(events)
    return seen


def test_a_batch_of_labels_is_taken_as_one_run() -> None:
    """Likewise for labels: a batch of a model's labels is one run, and they join."""
    monitor = Monitor()
    predictions = [
        Prediction(
            model_id="m",
            model_version="1",
            prediction_id=f"p{i}",
            timestamp=T0 + i,
            prediction=i % 2 == 0,
        )
        for i in range(20)
    ]
    labels = [
        Label(model_id="m", prediction_id=f"p{i}", timestamp=T0 + 100 + i, label=True)
        for i in range(20)
    ]
    monitor.process(predictions)
    assert run_lengths(monitor, labels, "_label_run") == [20]
    assert monitor.models["m"].join.counts["joined"] == 20
