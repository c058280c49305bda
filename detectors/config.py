"""The optional per-model YAML file, read into the settings of :mod:`detectors.config_sections`.

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
an impossible value is refused at start with the path of the offending entry. The sections
themselves (each setting, its default and what it does) are in detectors/config_sections.py;
reading, merging per model and the ranges each setting accepts are here.

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

from detectors.config_sections import (
    AlertConfig,
    ConceptConfig,
    DriftConfig,
    EstimationConfig,
    FeatureKind,
    JoinConfig,
    LatencyConfig,
    MetricsConfig,
    ModelConfig,
    QualityConfig,
    RetrainConfig,
    RollbackConfig,
    SegmentationConfig,
    StallConfig,
)

__all__ = [
    "AlertConfig",
    "ConceptConfig",
    "ConfigError",
    "DriftConfig",
    "EstimationConfig",
    "FeatureKind",
    "JoinConfig",
    "LatencyConfig",
    "MetricsConfig",
    "ModelConfig",
    "MonitorConfig",
    "QualityConfig",
    "RetrainConfig",
    "RollbackConfig",
    "SegmentationConfig",
    "StallConfig",
    "parse_duration",
]

_SECOND = 1000
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class ConfigError(ValueError):
    """The configuration is wrong; the message starts with the path of the offending entry."""


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
        # ``actions:`` belongs to ``driftline act`` (stream/act/config.py), which reads the
        # same file: the worker leaves it alone.
        unknown = set(data) - {"defaults", "models", "actions"}
        if unknown:
            raise ConfigError(
                f"{sorted(unknown)[0]}: unknown section; valid: defaults, models, actions"
            )
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
    if origin is tuple:
        # (Only tuple[T, ...]: a YAML list of T.)
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list")
        item = args[0]
        items = tuple(_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(set(items)) != len(items):
            raise ConfigError(f"{path}: {value!r} names an entry twice")
        return items
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
    "confusion_classes",
    "top",
    "min_outcomes",
    "check_every",
    "reference",
    "min_class_outcomes",
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
_MAXIMUMS = {(JoinConfig, "remember"): 1_000_000, (SegmentationConfig, "top"): 255}
_UNIT_INTERVAL = {
    "adwin_delta",
    "alpha",
    "rate_threshold",
    "relative_drop",
    "min_share",
    "calibration_margin",
    "min_drop",
    "tolerance",
}
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
            f.name
            in (
                "ph_threshold",
                "psi_threshold",
                "enter",
                "min_shift",
                "multiplier",
                "loss_relative_rise",
            )
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
            "min_rise",
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
    if isinstance(obj, MetricsConfig) and not 0 < obj.auc_drop < 0.5:
        raise ConfigError(f"{where}.auc_drop: must be between 0 and 0.5, got {obj.auc_drop!r}")
    if isinstance(obj, MetricsConfig) and obj.signal != "f1" and obj.window < 2:
        raise ConfigError(f"{where}.window: a score signal needs a window of at least 2")
    if isinstance(obj, ModelConfig) and obj.task == "regression" and obj.metrics.signal != "f1":
        raise ConfigError(
            f"{where}.metrics.signal: {obj.metrics.signal} is a classifier's score metric; "
            "a regression model is watched on RMSE (leave signal at f1)"
        )
    if isinstance(obj, RollbackConfig) and not obj.reasons:
        raise ConfigError(f"{where}.reasons: name at least one (or set enabled: false)")
    if isinstance(obj, LatencyConfig) and obj.slo_p99 is not None and obj.slo_p99 <= 0:
        raise ConfigError(f"{where}.slo_p99: must be positive (or null), got {obj.slo_p99}")
    if isinstance(obj, LatencyConfig) and obj.reference_size < 100:
        raise ConfigError(f"{where}.reference_size: must be at least 100")
    if isinstance(obj, LatencyConfig) and obj.window < 4:
        raise ConfigError(f"{where}.window: must be at least 4")
    if isinstance(obj, ModelConfig):
        _check_segments(obj, where)
        if not 0 < obj.sample <= 1:
            raise ConfigError(
                f"{where}.sample: the share of the model's events monitored must be above 0 "
                f"and at most 1 (1: every event), got {obj.sample!r}"
            )
    if isinstance(obj, EstimationConfig) and obj.reference_size < 100:
        raise ConfigError(f"{where}.reference_size: must be at least 100")
    if isinstance(obj, RollbackConfig) and obj.max_samples < obj.min_samples:
        raise ConfigError(f"{where}: max_samples must be at least min_samples")


def _check_segments(config: ModelConfig, where: str) -> None:
    names = config.segments
    if any(not name for name in names):
        raise ConfigError(f"{where}.segments: a segment name must not be empty")
    if len(names) > _MAX_SEGMENT_NAMES:
        raise ConfigError(f"{where}.segments: at most {_MAX_SEGMENT_NAMES} names, got {len(names)}")
    # A waiting prediction carries its segments as one code of at most 16 bits.
    if (config.segmentation.top + 1) ** len(names) > 1 << 16:
        raise ConfigError(
            f"{where}: (segmentation.top + 1) ** len(segments) must be at most 65536: "
            f"{config.segmentation.top} values of {len(names)} segment names are too many"
        )


_MAX_SEGMENT_NAMES = 4
