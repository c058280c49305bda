"""Thresholds and windows of the monitoring core, and the optional per-model YAML file.

Every setting has a default that works with no configuration at all; feature types are inferred.
A YAML file can override any of them for all models (``defaults:``) or for one (``models:``)::

    defaults:
      alerts: {resolve_after: 10m, cooldown: 30m}
      join: {ttl: 3d}
    models:
      fraud-detector:
        task: classification
        metrics: {positive_label: fraud, f1_floor: 0.6}
        features: {country: categorical, user_id: ignore}
        stall_inputs: {timeout: 5m}

Durations are numbers of seconds or strings such as ``250ms``, ``30s``, ``5m``, ``2h``, ``7d``;
internally everything is milliseconds of event time. A file with an unknown key, a wrong type or
an impossible value is refused at start with the path of the offending entry.

Examples
--------
>>> config = MonitorConfig.from_dict({"models": {"m1": {"join": {"ttl": "2d"}}}})
>>> config.for_model("m1").join.ttl, config.for_model("other").join.ttl
(172800000, 604800000)
>>> MonitorConfig.from_dict({"defaults": {"join": {"tll": "2d"}}})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
detectors.config.ConfigError: defaults.join.tll: unknown setting; valid: ttl, max_pending, ...
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

__all__ = [
    "AlertConfig",
    "ConceptConfig",
    "ConfigError",
    "DriftConfig",
    "JoinConfig",
    "MetricsConfig",
    "ModelConfig",
    "MonitorConfig",
    "QualityConfig",
    "RetrainConfig",
    "RollbackConfig",
    "StallConfig",
    "parse_duration",
]

_SECOND = 1000
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class ConfigError(ValueError):
    """The configuration is wrong; the message starts with the path of the offending entry."""


def _ms(**kw: Any) -> Any:
    return field(metadata={"duration": True}, **kw)


def parse_duration(value: Any, where: str = "duration") -> int:
    """Milliseconds from seconds (a number) or a string like ``"30s"``, ``"5m"``, ``"7d"``.

    >>> parse_duration("90m"), parse_duration(1.5), parse_duration("250ms")
    (5400000, 1500, 250)
    """
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a duration, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ConfigError(f"{where}: a duration must be finite, got {value!r}")
        ms = round(value * _SECOND)
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*", value)
        if not match:
            raise ConfigError(
                f"{where}: {value!r} is not a duration (a number of seconds, or e.g. 30s, 5m, 7d)"
            )
        ms = round(float(match.group(1)) * _UNITS[match.group(2)])
    else:
        raise ConfigError(f"{where}: expected a duration, got {type(value).__name__}")
    if ms < 0:
        raise ConfigError(f"{where}: must not be negative")
    return ms


@dataclass(frozen=True)
class DriftConfig:
    """Data drift (features) and prediction drift: see :mod:`detectors.numeric` and
    :mod:`detectors.categorical` for what each knob does."""

    reference_size: int = 1000
    block: int = 32
    adwin_delta: float = 0.002
    ph_delta: float = 0.7
    ph_threshold: float = 10.0
    span: int = 512
    min_shift: float = 0.25
    enter: float = 3.0
    confirm: int = 1024
    window: int = 1000
    min_samples: int = 500
    psi_threshold: float = 0.1
    alpha: float = 1e-4
    max_categories: int = 50
    #: A string feature with more distinct values than this in its first ``reference_size``
    #: values (ids, free text) is not tested for drift or unknown categories.
    max_cardinality: int = 200


@dataclass(frozen=True)
class ConceptConfig:
    """Concept drift on the error stream of joined predictions (increases only): see
    :mod:`detectors.error_rate` (classification) and :mod:`detectors.numeric` (regression's
    absolute errors)."""

    #: classification: the fewest outcomes of the reference (it is cut short at a rise that
    #: comes while it grows, never below this); regression: the reference sample of absolute
    #: errors
    reference_size: int = 1000
    #: classification: the reference grows until it holds this many outcomes (a rate known
    #: within a few per cent, or a 10 % rise is lost in its noise) and ``reference_errors``
    #: errors, or ``max_reference`` outcomes
    reference_outcomes: int = 5000
    reference_errors: int = 100
    max_reference: int = 50_000
    adwin_delta: float = 0.002
    #: classification: Page-Hinkley on errors standardised by the reference rate; a small
    #: delta so slow rises are proposed too (only the count confirms)
    ph_delta: float = 0.05
    ph_threshold: float = 35.0
    #: classification: significance and minimum relative rise of the confirming error count
    alpha: float = 1e-4
    min_effect: float = 0.1
    min_errors: int = 50
    #: regression: the numeric detector on rank-standardised absolute errors (see DriftConfig)
    block: int = 32
    span: int = 512
    min_shift: float = 0.25
    enter: float = 3.0
    confirm: int = 1024


@dataclass(frozen=True)
class QualityConfig:
    window: int = 1000
    min_samples: int = 200
    rate_threshold: float = 0.05
    #: Values further than this fraction of the reference range beyond its min or max are
    #: out of range.
    range_margin: float = 0.1


@dataclass(frozen=True)
class StallConfig:
    #: A fixed timeout, or ``None`` to learn one from the gaps between events.
    timeout: int | None = _ms(default=None)
    min_timeout: int = _ms(default=60_000)
    max_timeout: int = _ms(default=86_400_000)
    multiplier: float = 10.0
    min_events: int = 20


@dataclass(frozen=True)
class JoinConfig:
    #: How long a prediction waits for its label (event time).
    ttl: int = _ms(default=7 * 86_400_000)
    #: Most predictions waiting per model; the oldest are evicted first.
    max_pending: int = 100_000
    #: How long a label that arrived before its prediction waits for it.
    label_wait: int = _ms(default=3_600_000)
    max_pending_labels: int = 10_000
    #: How many expired or joined prediction ids are remembered to tell late and duplicate
    #: labels from unknown ones (the last ``remember // 2`` to ``remember`` of each kind, as
    #: 32-bit hashes: 64 KiB per model at the default). Forgetting turns a late or duplicate
    #: label into an unknown one; only a label *and* its prediction re-sent after that could
    #: join twice.
    remember: int = 5_000


@dataclass(frozen=True)
class MetricsConfig:
    #: Rolling window of joined outcomes, per model version.
    window: int = 1000
    #: Outcomes before the rolling metrics are reported (performance waits for evidence:
    #: min_evidence).
    min_samples: int = 200
    #: The positive class of a binary model; ``None``: ``True`` / ``1`` when the classes are
    #: booleans or 0/1, otherwise metrics are macro-averaged over classes.
    positive_label: bool | int | str | None = None
    #: Absolute F1 floor; ``None`` to use ``relative_drop`` below the version's own reference.
    f1_floor: float | None = None
    #: The smallest drop of F1, recall or precision below the version's reference that matters:
    #: degradation is a drop significantly beyond it (detectors/performance.py).
    relative_drop: float = 0.25
    #: Regression: the smallest rise of RMSE above the version's reference that matters.
    rmse_relative_rise: float = 0.5
    #: One-sided significance of the degradation (and recovery) test.
    alpha: float = 1e-3
    #: Errors the reference must hold, 4x as many positives and predicted positives (the same
    #: number of each is the least the test window must hold): a reference of a handful of
    #: positives is a coin toss.
    min_evidence: int = 50
    #: Most outcomes the test window grows to for rare positives, and the reference waits for.
    max_window: int = 50_000
    max_reference: int = 100_000


@dataclass(frozen=True)
class AlertConfig:
    #: A firing alert resolves only after its condition stayed clear this long (anti-flapping).
    resolve_after: int = _ms(default=300_000)
    #: After a resolve, the same alert does not fire again for this long.
    cooldown: int = _ms(default=900_000)


@dataclass(frozen=True)
class RetrainConfig:
    enabled: bool = True
    #: Joined outcomes after concept drift is confirmed for it to count as sustained.
    confirm_samples: int = 100
    #: At most one retrain command per model version in this much event time.
    cooldown: int = _ms(default=6 * 3_600_000)
    #: Also retrain when rolling F1 (RMSE for regression) degrades.
    on_performance: bool = True


@dataclass(frozen=True)
class RollbackConfig:
    enabled: bool = True
    #: Labelled outcomes of the new version before the first test.
    min_samples: int = 200
    #: The test is repeated at 2x, 4x, ... min_samples up to this; then the version is good.
    max_samples: int = 3200
    #: Family-wise significance over all the tests of one rollout.
    alpha: float = 0.01
    #: The new version must be worse by more than this fraction of the old error (and at least
    #: ``min_margin`` absolute) to be rolled back: a version as good as the old one never is.
    margin: float = 0.2
    min_margin: float = 0.01


FeatureKind = Literal["auto", "numeric", "categorical", "ignore"]


@dataclass(frozen=True)
class ModelConfig:
    task: Literal["auto", "classification", "regression"] = "auto"
    features: dict[str, FeatureKind] = field(default_factory=dict)
    drift: DriftConfig = field(default_factory=DriftConfig)
    prediction_drift: DriftConfig = field(default_factory=DriftConfig)
    concept: ConceptConfig = field(default_factory=ConceptConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    stall_inputs: StallConfig = field(default_factory=StallConfig)
    stall_labels: StallConfig = field(
        default_factory=lambda: StallConfig(min_timeout=3_600_000, max_timeout=7 * 86_400_000)
    )
    join: JoinConfig = field(default_factory=JoinConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    alerts: AlertConfig = field(default_factory=AlertConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    rollback: RollbackConfig = field(default_factory=RollbackConfig)
    #: When a new version starts serving, start data drift over from a fresh reference (a
    #: retrained model was trained on the new data).
    rebaseline_on_new_version: bool = True
    #: Versions whose metrics and drift are kept per model (the oldest is forgotten).
    max_versions: int = 5
    #: Events stamped further than this in the future of the processing clock (live service)
    #: do not move the model's event-time watermark.
    max_future: int = _ms(default=3_600_000)


@dataclass(frozen=True)
class MonitorConfig:
    """Defaults for every model, and per-model overrides."""

    defaults: ModelConfig = field(default_factory=ModelConfig)
    models: dict[str, ModelConfig] = field(default_factory=dict)

    def for_model(self, model_id: str) -> ModelConfig:
        return self.models.get(model_id, self.defaults)

    @classmethod
    def from_dict(cls, data: Any) -> MonitorConfig:
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ConfigError("the configuration must be a mapping with 'defaults' and 'models'")
        unknown = set(data) - {"defaults", "models"}
        if unknown:
            raise ConfigError(f"{sorted(unknown)[0]}: unknown section; valid: defaults, models")
        defaults_raw = data.get("defaults")
        defaults_raw = {} if defaults_raw is None else defaults_raw
        defaults = _build(ModelConfig, defaults_raw, "defaults")
        models: dict[str, ModelConfig] = {}
        raw_models = data.get("models")
        raw_models = {} if raw_models is None else raw_models
        if not isinstance(raw_models, dict):
            raise ConfigError("models: expected a mapping of model_id -> settings")
        for model_id, overrides in raw_models.items():
            merged = _merge(
                defaults_raw, {} if overrides is None else overrides, f"models.{model_id}"
            )
            models[str(model_id)] = _build(ModelConfig, merged, f"models.{model_id}")
        return cls(defaults=defaults, models=models)

    @classmethod
    def from_yaml(cls, path: str | Path) -> MonitorConfig:
        """Load and validate a YAML file (``yaml.safe_load``: no tags, no code)."""
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None


def _merge(base: Any, override: Any, where: str) -> dict[str, Any]:
    if not isinstance(override, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(override).__name__}")
    out = dict(base) if isinstance(base, dict) else {}
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "features":
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _build(cls: type, raw: Any, where: str, base: Any = None) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in raw if k not in fields]
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown setting; valid: {', '.join(fields)}")
    values = {}
    for name, value in raw.items():
        f = fields[name]
        path = f"{where}.{name}"
        if f.metadata.get("duration"):
            values[name] = (
                None if value is None and _optional(hints[name]) else parse_duration(value, path)
            )
        elif dataclasses.is_dataclass(hints[name]):
            # Start from this field's own default (stall_labels is not stall_inputs).
            default = f.default_factory() if callable(f.default_factory) else None
            values[name] = _build(hints[name], {} if value is None else value, path, base=default)
        else:
            values[name] = _coerce(hints[name], value, path)
    try:
        built = dataclasses.replace(base, **values) if base is not None else cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    _check_ranges(built, where)
    return built


def _optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


def _coerce(hint: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, {} if value is None else value, path)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not one of {', '.join(map(str, args))}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(option, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{path}: {value!r} is not valid")
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping")
        _, value_type = args
        return {str(k): _coerce(value_type, v, f"{path}.{k}") for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{path}: expected a finite number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{path}: unsupported setting type {hint!r}")  # pragma: no cover


_POSITIVE_INTS = {
    "reference_size",
    "span",
    "confirm",
    "window",
    "min_samples",
    "max_categories",
    "max_cardinality",
    "min_events",
    "max_pending",
    "max_pending_labels",
    "remember",
    "confirm_samples",
    "max_samples",
    "max_versions",
    "block",
    "min_errors",
    "reference_errors",
    "reference_outcomes",
    "max_reference",
    "min_evidence",
    "max_window",
}
# Smallest values the detectors accept (a setting they refuse would reset every model at its
# first event, so it is refused here, at start).
_MINIMUMS = {
    (DriftConfig, "reference_size"): 2,
    (DriftConfig, "max_categories"): 2,
    (ConceptConfig, "reference_size"): 10,
    (ConceptConfig, "reference_outcomes"): 10,
}
# Largest values of settings that size memory up front: join.remember's id tables are allocated
# at a model's first label (~16 bytes per remembered id and model: 2**31 asked for 32 GB).
_MAXIMUMS = {(JoinConfig, "remember"): 1_000_000}
_UNIT_INTERVAL = {"adwin_delta", "alpha", "rate_threshold", "relative_drop"}
# The significance of a one-sided z test: below one half.
_HALF_INTERVAL = {(MetricsConfig, "alpha")}


def _check_ranges(obj: Any, where: str) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        path = f"{where}.{f.name}"
        if f.name in _POSITIVE_INTS and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"{path}: must be a positive integer, got {value!r}")
        minimum = _MINIMUMS.get((type(obj), f.name))
        if minimum is not None and value < minimum:
            raise ConfigError(f"{path}: must be at least {minimum}, got {value!r}")
        maximum = _MAXIMUMS.get((type(obj), f.name))
        if maximum is not None and value > maximum:
            raise ConfigError(f"{path}: must be at most {maximum}, got {value!r}")
        if f.name in _UNIT_INTERVAL and not 0 < value < 1:
            raise ConfigError(f"{path}: must be between 0 and 1, got {value!r}")
        if (type(obj), f.name) in _HALF_INTERVAL and not value < 0.5:
            raise ConfigError(f"{path}: must be below 0.5, got {value!r}")
        if (
            f.name in ("ph_threshold", "psi_threshold", "enter", "min_shift", "multiplier")
            and value <= 0
        ):
            raise ConfigError(f"{path}: must be positive, got {value!r}")
        if f.name in (
            "ph_delta",
            "margin",
            "min_margin",
            "range_margin",
            "rmse_relative_rise",
            "min_effect",
        ) and (value < 0):
            raise ConfigError(f"{path}: must not be negative, got {value!r}")
        if f.name == "f1_floor" and value is not None and not 0 <= value <= 1:
            raise ConfigError(f"{path}: must be between 0 and 1, got {value!r}")
    if isinstance(obj, DriftConfig | ConceptConfig) and not obj.block <= obj.span:
        raise ConfigError(f"{where}: span ({obj.span}) must be at least one block ({obj.block})")
    if isinstance(obj, DriftConfig | ConceptConfig) and not obj.block <= obj.confirm:
        raise ConfigError(f"{where}: confirm must be at least one block ({obj.block})")
    if isinstance(obj, DriftConfig) and obj.min_samples > obj.window:
        raise ConfigError(f"{where}: min_samples must not exceed window")
    if isinstance(obj, QualityConfig) and obj.min_samples > obj.window:
        raise ConfigError(f"{where}: min_samples must not exceed window")
    if isinstance(obj, StallConfig) and obj.min_timeout > obj.max_timeout:
        raise ConfigError(f"{where}: min_timeout must not exceed max_timeout")
    if isinstance(obj, StallConfig) and obj.min_timeout <= 0:
        raise ConfigError(f"{where}.min_timeout: must be positive, got {obj.min_timeout}")
    if isinstance(obj, StallConfig) and obj.timeout is not None and obj.timeout <= 0:
        raise ConfigError(f"{where}.timeout: must be positive (or null), got {obj.timeout}")
    if isinstance(obj, ConceptConfig) and obj.max_reference < obj.reference_size:
        raise ConfigError(f"{where}: max_reference must be at least reference_size")
    if isinstance(obj, MetricsConfig) and not obj.window <= min(obj.max_window, obj.max_reference):
        raise ConfigError(f"{where}: need window <= max_window and window <= max_reference")
    if isinstance(obj, MetricsConfig) and obj.f1_floor is not None and not 0 < obj.f1_floor < 1:
        raise ConfigError(f"{where}.f1_floor: must be between 0 and 1 (exclusive)")
    if isinstance(obj, RollbackConfig) and obj.max_samples < obj.min_samples:
        raise ConfigError(f"{where}: max_samples must be at least min_samples")
