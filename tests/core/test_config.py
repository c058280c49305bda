"""MonitorConfig: defaults, per-model overrides, durations, and errors that name their entry."""

from __future__ import annotations

import math

import pytest

from detectors.config import (
    ConfigError,
    ModelConfig,
    MonitorConfig,
    StallConfig,
    parse_duration,
)

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def write(tmp_path, text: str):
    path = tmp_path / "driftline.yaml"
    path.write_text(text)
    return path


def config_error(data) -> str:
    with pytest.raises(ConfigError) as info:
        MonitorConfig.from_dict(data)
    return str(info.value)


# -- defaults and overrides ----------------------------------------------------------------------


@pytest.mark.parametrize("data", [None, {}, {"defaults": None, "models": None}])
def test_no_configuration_means_the_built_in_defaults(data):
    config = MonitorConfig.from_dict(data)
    assert config == MonitorConfig()
    assert config.for_model("anything") == ModelConfig()


@pytest.mark.parametrize("text", ["", "# nothing configured yet\n", "defaults:\nmodels:\n"])
def test_an_empty_yaml_file_means_the_built_in_defaults(tmp_path, text):
    assert MonitorConfig.from_yaml(write(tmp_path, text)) == MonitorConfig()


def test_model_overrides_merge_with_the_defaults_section(tmp_path):
    path = write(
        tmp_path,
        """
defaults:
  join: {ttl: 3d}
  alerts: {resolve_after: 10m, cooldown: 30m}
models:
  fraud:
    task: classification
    join: {max_pending: 500}
    alerts: {cooldown: 1h}
    features: {country: categorical, user_id: ignore}
""",
    )
    config = MonitorConfig.from_yaml(path)
    fraud = config.for_model("fraud")
    assert fraud.join.ttl == 3 * DAY  # from defaults
    assert fraud.join.max_pending == 500  # from the model
    assert fraud.alerts.resolve_after == 10 * MINUTE  # from defaults
    assert fraud.alerts.cooldown == HOUR  # the model wins over defaults
    assert fraud.task == "classification"
    assert fraud.features == {"country": "categorical", "user_id": "ignore"}
    # Untouched settings keep their built-in values.
    assert fraud.drift == ModelConfig().drift
    other = config.for_model("churn")
    assert other is config.defaults
    assert other.join.ttl == 3 * DAY
    assert other.join.max_pending == ModelConfig().join.max_pending
    assert other.alerts.cooldown == 30 * MINUTE
    assert other.task == "auto"


def test_stall_labels_overrides_start_from_their_own_defaults():
    config = MonitorConfig.from_dict(
        {"defaults": {"stall_labels": {"timeout": "5m"}, "stall_inputs": {"multiplier": 4}}}
    )
    labels, inputs = config.defaults.stall_labels, config.defaults.stall_inputs
    assert labels.timeout == 5 * MINUTE
    assert (labels.min_timeout, labels.max_timeout) == (HOUR, 7 * DAY)
    assert (inputs.min_timeout, inputs.max_timeout) == (MINUTE, DAY)
    assert inputs.multiplier == 4.0
    assert labels.multiplier == StallConfig().multiplier
    # And so a max_timeout below the labels' own 1h minimum is refused (fine for inputs).
    MonitorConfig.from_dict({"defaults": {"stall_inputs": {"max_timeout": "30m"}}})
    message = config_error({"models": {"m1": {"stall_labels": {"max_timeout": "30m"}}}})
    assert message.startswith("models.m1.stall_labels: ")


def test_an_optional_duration_accepts_null():
    config = MonitorConfig.from_dict({"defaults": {"stall_inputs": {"timeout": None}}})
    assert config.defaults.stall_inputs.timeout is None


# -- durations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        ("250ms", 250),
        ("30s", 30 * SECOND),
        ("5m", 5 * MINUTE),
        ("2h", 2 * HOUR),
        ("7d", 7 * DAY),
        ("1.5h", 90 * MINUTE),
        (" 10 s ", 10 * SECOND),
        (0, 0),
        (45, 45 * SECOND),
        (1.5, 1_500),
    ],
)
def test_durations_parse_to_milliseconds(value, ms):
    assert parse_duration(value) == ms
    config = MonitorConfig.from_dict({"defaults": {"join": {"ttl": value}}})
    assert config.defaults.join.ttl == ms


@pytest.mark.parametrize(
    "value", ["5", "5 minutes", "5M", "m", "", "-5s", "1e3s", True, None, [5], {"s": 5}, -1]
)
def test_bad_durations_are_refused_with_their_path(value):
    assert config_error({"defaults": {"join": {"ttl": value}}}).startswith("defaults.join.ttl: ")


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan], ids=str)
def test_non_finite_durations_are_a_config_error(value):
    """Bug: ``parse_duration`` rounds ``value * 1000`` without checking it is finite
    (config.py, ``ms = round(value * _SECOND)``), so ``ttl: .inf`` or ``ttl: .nan`` in a YAML
    file escapes as OverflowError / a bare ValueError with no path instead of a ConfigError."""
    with pytest.raises(ConfigError, match=r"^defaults\.join\.ttl: "):
        MonitorConfig.from_dict({"defaults": {"join": {"ttl": value}}})


# -- errors name their entry ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "path"),
    [
        # unknown names
        ({"defaultz": {}}, "defaultz"),
        ({"defaults": {"tsk": "auto"}}, "defaults.tsk"),
        ({"defaults": {"join": {"tll": "2d"}}}, "defaults.join.tll"),
        ({"models": {"m1": {"drift": {"windw": 10}}}}, "models.m1.drift.windw"),
        # shapes
        ({"models": ["m1"]}, "models"),
        ({"models": {"m1": 5}}, "models.m1"),
        ({"defaults": {"join": [1, 2]}}, "defaults.join"),
        ({"defaults": {"features": ["age"]}}, "defaults.features"),
        # wrong types: int, float, bool, str-or-number, Literal
        ({"defaults": {"drift": {"window": "big"}}}, "defaults.drift.window"),
        ({"defaults": {"drift": {"window": 10.5}}}, "defaults.drift.window"),
        ({"defaults": {"drift": {"window": True}}}, "defaults.drift.window"),
        ({"defaults": {"drift": {"ph_threshold": "high"}}}, "defaults.drift.ph_threshold"),
        ({"defaults": {"drift": {"ph_threshold": False}}}, "defaults.drift.ph_threshold"),
        ({"defaults": {"retrain": {"enabled": "yes"}}}, "defaults.retrain.enabled"),
        ({"defaults": {"retrain": {"enabled": 1}}}, "defaults.retrain.enabled"),
        ({"defaults": {"metrics": {"positive_label": [1]}}}, "defaults.metrics.positive_label"),
        ({"defaults": {"metrics": {"positive_label": 0.5}}}, "defaults.metrics.positive_label"),
        ({"defaults": {"metrics": {"f1_floor": "high"}}}, "defaults.metrics.f1_floor"),
        ({"models": {"m1": {"task": "clasification"}}}, "models.m1.task"),
        ({"defaults": {"task": 1}}, "defaults.task"),
        # impossible values
        ({"defaults": {"alerts": {"cooldown": -5}}}, "defaults.alerts.cooldown"),
        ({"defaults": {"drift": {"window": 0}}}, "defaults.drift.window"),
        ({"defaults": {"join": {"max_pending": -1}}}, "defaults.join.max_pending"),
        ({"defaults": {"drift": {"span": 8, "block": 16}}}, "defaults.drift"),
        ({"defaults": {"prediction_drift": {"confirm": 4}}}, "defaults.prediction_drift"),
        ({"models": {"m1": {"concept": {"min_shift": 0}}}}, "models.m1.concept.min_shift"),
        ({"defaults": {"drift": {"window": 100, "min_samples": 101}}}, "defaults.drift"),
        ({"defaults": {"quality": {"window": 100, "min_samples": 200}}}, "defaults.quality"),
        (
            {"defaults": {"stall_inputs": {"min_timeout": "2h", "max_timeout": "1h"}}},
            "defaults.stall_inputs",
        ),
        ({"defaults": {"rollback": {"min_samples": 500, "max_samples": 400}}}, "defaults.rollback"),
        ({"defaults": {"drift": {"enter": 0}}}, "defaults.drift.enter"),
        ({"defaults": {"rollback": {"margin": -0.1}}}, "defaults.rollback.margin"),
        ({"defaults": {"metrics": {"f1_floor": 1.5}}}, "defaults.metrics.f1_floor"),
        # alpha-like values must lie strictly between 0 and 1
        ({"defaults": {"drift": {"alpha": 0}}}, "defaults.drift.alpha"),
        ({"defaults": {"drift": {"alpha": 1}}}, "defaults.drift.alpha"),
        ({"defaults": {"drift": {"adwin_delta": 1.5}}}, "defaults.drift.adwin_delta"),
        ({"defaults": {"concept": {"alpha": -0.01}}}, "defaults.concept.alpha"),
        ({"defaults": {"rollback": {"alpha": 1.0}}}, "defaults.rollback.alpha"),
        ({"defaults": {"quality": {"rate_threshold": 0.0}}}, "defaults.quality.rate_threshold"),
        ({"models": {"m1": {"metrics": {"relative_drop": 2}}}}, "models.m1.metrics.relative_drop"),
        # feature kinds
        ({"defaults": {"features": {"age": "numerical"}}}, "defaults.features.age"),
        ({"models": {"m1": {"features": {"country": "text"}}}}, "models.m1.features.country"),
        ({"models": {"m1": {"features": {"country": None}}}}, "models.m1.features.country"),
    ],
    ids=repr,
)
def test_every_error_is_a_config_error_starting_with_the_entrys_path(data, path):
    assert config_error(data).startswith(f"{path}: ")


def test_an_impossible_default_is_reported_under_defaults_not_each_model():
    message = config_error({"defaults": {"drift": {"span": 1}}, "models": {"m1": {}}})
    assert message.startswith("defaults.drift: ")


@pytest.mark.parametrize(
    "path",
    [
        "drift.enter",
        "drift.ph_threshold",
        "stall_inputs.multiplier",
        "rollback.margin",
    ],
)
def test_nan_is_refused_where_a_positive_or_non_negative_number_is_required(path):
    """Bug: the range checks in ``_check_ranges`` (config.py, ``value <= 0`` and
    ``value < 0``) are comparisons that are all False for NaN, so ``enter: .nan`` (or any of
    these) is accepted and silently disables the threshold it sets."""
    section, name = path.split(".")
    with pytest.raises(ConfigError) as info:
        MonitorConfig.from_dict({"defaults": {section: {name: math.nan}}})
    assert str(info.value).startswith(f"defaults.{section}")


# -- files -------------------------------------------------------------------------------------


def test_yaml_errors_name_the_file_then_the_entry(tmp_path):
    path = write(tmp_path, "defaults:\n  join:\n    tll: 2d\n")
    with pytest.raises(ConfigError) as info:
        MonitorConfig.from_yaml(path)
    assert str(info.value).startswith(f"{path}: defaults.join.tll: ")


def test_invalid_yaml_is_a_config_error(tmp_path):
    path = write(tmp_path, "defaults: {join: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        MonitorConfig.from_yaml(path)
    assert str(info.value).startswith(f"{path}: ")


def test_yaml_python_tags_are_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "executed"
    path = write(tmp_path, f'defaults: !!python/object/apply:os.system ["echo hi > {marker}"]\n')
    with pytest.raises(ConfigError) as info:
        MonitorConfig.from_yaml(path)
    assert str(info.value).startswith(f"{path}: ")
    assert not marker.exists()


@pytest.mark.parametrize("make", ["missing", "directory"])
def test_a_file_that_cannot_be_read_is_a_config_error_naming_it(tmp_path, make):
    path = tmp_path / "nowhere.yaml"
    if make == "directory":
        path.mkdir()
    with pytest.raises(ConfigError) as info:
        MonitorConfig.from_yaml(path)
    assert str(info.value).startswith(f"{path}: ")
