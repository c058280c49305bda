"""The /metrics text driftline writes itself: escaped, parseable, and equal to the core's values."""

from __future__ import annotations

import math
import random

import pytest
from prometheus_client.parser import text_string_to_metric_families

from detectors.monitor import Monitor
from schemas import Label, Prediction
from stream.metrics import DriftlineMetrics, escape, number
from stream.pipeline import PipelineStats

T0 = 1_795_255_200_000
NASTY = ['fraud "v2"', "back\\slash", "new\nline", "ünïcødé ✓", "plain"]


def monitor_with_traffic(model_ids: list[str], feature_names: list[str]) -> Monitor:
    rng = random.Random(7)
    monitor = Monitor(max_models=len(model_ids))
    events = []
    for i in range(1_500):
        for model_id in model_ids:
            pid = f"{model_id}-{i}"
            events.append(
                Prediction(
                    model_id=model_id,
                    model_version=NASTY[i % len(NASTY)],
                    prediction_id=pid,
                    timestamp=T0 + i * 10,
                    prediction=rng.random() < 0.4,
                    score=rng.random(),
                    latency_ms=rng.lognormvariate(3, 0.5),
                    features={name: rng.gauss(0, 1) for name in feature_names},
                )
            )
            events.append(
                Label(model_id=model_id, prediction_id=pid, timestamp=T0 + i * 10 + 5, label=True)
            )
    for start in range(0, len(events), 4_000):
        monitor.process(events[start : start + 4_000])
    return monitor


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in out, f"series {key} written twice"
            out[key] = sample.value
    return out


@pytest.fixture(scope="module")
def exposed() -> tuple[Monitor, dict]:
    monitor = monitor_with_traffic(NASTY, NASTY)
    stats = PipelineStats()
    stats.events[("model.predictions", "ok")] = 7
    stats.deadletters[("model.predictions", 'bad "json"')] = 2
    text = DriftlineMetrics(
        monitor, stats, topic_of_kind={"prediction": "model.predictions"}, lag=lambda: {}
    ).render()
    return monitor, samples(text.decode())


def test_label_values_from_input_round_trip_through_the_parser(exposed):
    monitor, series = exposed
    features = {
        dict(labels)["feature"]
        for name, labels in series
        if name == "driftline_drift_statistic" and dict(labels)["signal"] == "feature"
    }
    models = {dict(labels)["model_id"] for name, labels in series if "model_id" in dict(labels)}
    versions = {
        dict(labels)["model_version"]
        for name, labels in series
        if name == "driftline_model_outcomes"
    }
    assert features == set(NASTY)
    assert models == set(NASTY)
    assert versions == {v for state in monitor.models.values() for v in state.versions}
    assert (
        series[
            (
                "driftline_deadletter_total",
                (("reason", 'bad "json"'), ("topic", "model.predictions")),
            )
        ]
        == 2
    )


def test_every_detector_and_metric_value_is_the_cores(exposed):
    monitor, series = exposed
    checked = core_values_exposed(monitor, series)
    # every model: each feature's detector, and four metrics of each of its versions
    assert checked >= len(NASTY) * (len(NASTY) + 4 * len(NASTY))


def test_scrapes_follow_the_core_as_it_changes():
    """What a scrape remembers from the last one (label texts, threshold and detected lines,
    metrics read after the same update) never shows a value the core no longer has: scraped
    between batches of traffic that shifts features, stops sending one, then serves a new
    version (a rebaseline: a new signal table)."""
    rng = random.Random(11)
    monitor = monitor_with_traffic(["m1", "m2"], ["a", "b", "c"])
    metrics = DriftlineMetrics(monitor, PipelineStats(), topic_of_kind={})
    flags = []
    for batch in range(12):
        series = samples(metrics.render().decode())
        assert core_values_exposed(monitor, series) > 0
        flags.append(
            sorted(v for (name, _), v in series.items() if name == "driftline_drift_detected")
        )
        events = []
        for i in range(400):
            t = T0 + 20_000 + (batch * 400 + i) * 10
            for model_id in ("m1", "m2"):
                pid = f"{model_id}-late-{batch}-{i}"
                shift = 3.0 if batch >= 3 else 0.0
                features = {"a": rng.gauss(shift, 1), "b": rng.gauss(0, 1)}
                if batch < 6:  # from then on, c is sent no more
                    features["c"] = rng.gauss(-shift, 1)
                events.append(
                    Prediction(
                        model_id=model_id,
                        model_version=NASTY[0] if batch < 9 else NASTY[1],  # a new version
                        prediction_id=pid,
                        timestamp=t,
                        prediction=rng.random() < 0.5,
                        score=rng.random(),
                        features=features,
                    )
                )
                events.append(
                    Label(model_id=model_id, prediction_id=pid, timestamp=t + 5, label=i % 3 == 0)
                )
        monitor.process(events)
    assert flags[0] != flags[-1]  # the shift was detected, and the scrapes said so


def core_values_exposed(monitor: Monitor, series: dict) -> int:
    """Assert every detector's and every metric's series is the core's value; how many."""
    checked = 0
    for model_id, state in monitor.models.items():
        for signal, name, value, line, on in state.signals():
            if signal != "feature" and name != state.latest_version:
                continue
            labels = (
                ("feature", name if signal == "feature" else ""),
                ("model_id", model_id),
                ("signal", signal),
            )
            assert series[("driftline_drift_statistic", labels)] == pytest.approx(value, abs=0)
            assert series[("driftline_drift_threshold", labels)] == pytest.approx(line, abs=0)
            assert series[("driftline_drift_detected", labels)] == float(on)
            checked += 1
        for version in state.versions.values():
            labels = (("model_id", model_id), ("model_version", version.version))
            assert series[("driftline_model_outcomes", labels)] == version.metrics.n
            if version.metrics.n >= state.config.metrics.min_samples:
                for metric, value in version.metrics.values().items():
                    assert series[(f"driftline_model_{metric}", labels)] == value
                    checked += 1
                assert version.score_quality is not None  # binary, with scores
                for metric, value in version.score_quality.values().items():
                    assert series[(f"driftline_model_{metric}", labels)] == value
                    checked += 1
    exposed_features = {
        (dict(labels)["model_id"], dict(labels)["feature"])
        for name, labels in series
        if name == "driftline_drift_statistic" and dict(labels)["signal"] == "feature"
    }
    assert exposed_features == {
        (model_id, name)
        for model_id, state in monitor.models.items()
        for signal, name, *_ in state.signals()
        if signal == "feature"
    }
    return checked


def test_references_warming_up_are_exposed_with_their_counts(exposed):
    monitor, series = exposed
    seen = 0
    for model_id, state in monitor.models.items():
        for version in state.versions.values():
            performance = version.performance.evidence()
            errors, outcomes = version.concept.reference_evidence
            wanted = {
                "performance": performance,
                "concept": {"outcomes": outcomes, "errors": errors},
            }
            ready = {"performance": version.performance.ready, "concept": version.concept.ready}
            for test, counts in wanted.items():
                labels = (
                    ("model_id", model_id),
                    ("model_version", version.version),
                    ("test", test),
                )
                assert series[("driftline_model_reference_ready", labels)] == float(ready[test])
                assert series[("driftline_model_reference_starved", labels)] == 0.0
                for count, value in counts.items():
                    key = (
                        "driftline_model_reference_count",
                        tuple(sorted((*labels, ("count", count)))),
                    )
                    assert series[key] == value
                    seen += 1
    # 300 outcomes a version, every label positive: a reference far from complete.
    assert seen == len(NASTY) * len(NASTY) * (4 + 2)
    assert not any(
        value for (name, _), value in series.items() if name == "driftline_model_reference_ready"
    )


def test_numbers_and_escapes_follow_the_text_format():
    assert [number(v) for v in (0.1, 2, True, math.inf, -math.inf)] == [
        "0.1",
        "2.0",
        "1.0",
        "+Inf",
        "-Inf",
    ]
    assert number(math.nan) == "NaN"
    assert escape('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    assert escape("plain ✓") == "plain ✓"


def test_values_written_in_bulk_parse_back_to_the_same_numbers():
    """A family's values go through orjson in one call: every float parses back to itself
    (extremes, subnormals, negative zero, numpy scalars), and non-finite ones are spelled as
    the text format spells them."""
    import numpy as np

    from stream.metrics import _Samples

    rng = random.Random(3)
    values = [rng.uniform(-1, 1) * 10.0 ** rng.randint(-320, 300) for _ in range(2_000)]
    values += [0.0, -0.0, 5e-324, 1.7976931348623157e308, 1e16, 1e-5, 3.0, 0.1]
    values += [np.float64(0.3), np.float32(0.25), 7, math.inf, -math.inf, math.nan]
    samples = _Samples("# TYPE x gauge\n")
    for i, value in enumerate(values):
        samples.add(f'x{{i="{i}"}} ', value)
    text = samples.text()
    (family,) = text_string_to_metric_families(text)
    parsed = [sample.value for sample in family.samples]
    assert len(parsed) == len(values)
    for written, value in zip(parsed, values, strict=True):
        if math.isnan(value):
            assert math.isnan(written)
        else:
            assert written == float(value)
            assert math.copysign(1, written) == math.copysign(1, value)
    assert text.endswith('x{i="2011"} +Inf\nx{i="2012"} -Inf\nx{i="2013"} NaN\n')


def test_latency_quantiles_are_exposed_in_seconds_per_version(exposed):
    monitor, series = exposed
    seen = 0
    for model_id, state in monitor.models.items():
        for version in state.versions.values():
            assert version.latency is not None
            for q, value in version.latency.quantiles().items():
                labels = (
                    ("model_id", model_id),
                    ("model_version", version.version),
                    ("quantile", str(q)),
                )
                assert series[("driftline_model_latency_seconds", labels)] == value / 1000
                seen += 1
            # 300 latencies a version: its reference (2,000) is not complete, so no reference p99
            reference = (("model_id", model_id), ("model_version", version.version))
            assert ("driftline_model_latency_reference_p99_seconds", reference) not in series
    assert seen == 3 * len(NASTY) * len(NASTY)


def test_the_confusion_matrix_is_exposed_per_version_and_sums_to_the_window(exposed):
    monitor, series = exposed
    checked = 0
    for model_id, state in monitor.models.items():
        for version in state.versions.values():
            cells = {
                (dict(labels)["label"], dict(labels)["predicted"]): value
                for name, labels in series
                if name == "driftline_model_confusion"
                and dict(labels)["model_id"] == model_id
                and dict(labels)["model_version"] == version.version
                for value in [series[(name, labels)]]
            }
            if version.metrics.n < state.config.metrics.min_samples:
                assert cells == {}
                continue
            assert sum(cells.values()) == version.metrics.n
            assert cells == {(t, p): n for t, p, n in version.metrics.confusion(8)}
            assert {t for t, _ in cells} <= {"true", "false"}
            checked += 1
    assert checked > 0


def test_segments_are_exposed_with_escaped_values_and_bounded_series():
    """Tag values written by producers become label values: escaped, and at most
    segmentation.top of them per name (the rest as other)."""
    from detectors.config import MonitorConfig

    config = MonitorConfig.from_dict(
        {"defaults": {"segments": ["tier"], "segmentation": {"top": 3, "window": 2000}}}
    )
    monitor = Monitor(config)
    rng = random.Random(3)
    events = []
    for i in range(3_000):
        pid = f"p{i}"
        tier = rng.choice([*NASTY, "t6", "t7"])
        events.append(
            Prediction(
                model_id="m",
                model_version="1",
                prediction_id=pid,
                timestamp=T0 + i,
                prediction=True,
                tags={"tier": tier},
            )
        )
        events.append(
            Label(model_id="m", prediction_id=pid, timestamp=T0 + i, label=rng.random() < 0.8)
        )
    monitor.process(events)
    metrics = DriftlineMetrics(monitor, PipelineStats(), topic_of_kind={}, lag=lambda: {})
    series = samples(metrics.render().decode())
    segments = monitor.models["m"].segments
    shares = {
        dict(labels)["value"]: value
        for (name, labels), value in series.items()
        if name == "driftline_segment_traffic_share"
    }
    tracked = {value for _, value in segments.slots[0].tracked()}
    assert set(shares) == tracked | {"other"}
    assert len(tracked) == 3
    assert tracked <= set(NASTY)  # the first three values seen, as they were written
    assert sum(shares.values()) == pytest.approx(1.0)
    for value in tracked:
        labels = (("model_id", "m"), ("segment", "tier"), ("value", value))
        index = next(slot for slot, v in segments.slots[0].tracked() if v == value)
        error, outcomes = segments.errors.summary(0, index)
        assert series[("driftline_segment_outcomes", labels)] == pytest.approx(outcomes)
        assert outcomes >= 200  # metrics.min_samples: the error is exposed from there on
        assert series[("driftline_segment_error", labels)] == pytest.approx(error)


def test_a_multiclass_versions_score_metrics_are_exposed_in_the_same_families():
    rng = random.Random(3)
    classes = ["cat", "dog", "fox"]
    monitor = Monitor()
    events = []
    for i in range(600):
        truth = rng.choice(classes)
        weights = {c: rng.random() + (1.5 if c == truth else 0.0) for c in classes}
        total = sum(weights.values())
        pid = f"p{i}"
        events.append(
            Prediction(
                model_id="multi",
                model_version="v1",
                prediction_id=pid,
                timestamp=T0 + i,
                prediction=max(weights, key=weights.__getitem__),
                score={c: w / total for c, w in weights.items()},
            )
        )
        events.append(Label(model_id="multi", prediction_id=pid, timestamp=T0 + i, label=truth))
    monitor.process(events)
    series = samples(DriftlineMetrics(monitor, PipelineStats(), topic_of_kind={}).render().decode())
    quality = monitor.models["multi"].versions["v1"].score_quality
    values = quality.values()
    assert set(values) == {"roc_auc", "log_loss", "brier", "calibration_error"}
    labels = (("model_id", "multi"), ("model_version", "v1"))
    for metric, value in values.items():
        assert series[(f"driftline_model_{metric}", labels)] == value
    assert 0.5 < values["roc_auc"] <= 1


def test_estimated_metrics_their_band_error_and_status_are_exposed():
    from stream.replay import replay
    from tests import scenarios
    from tests.core.test_golden import CONFIG, lines

    monitor = Monitor(CONFIG)
    for _ in replay(lines(scenarios.estimated_drop()), monitor=monitor):
        pass
    metrics = DriftlineMetrics(monitor, PipelineStats(), topic_of_kind={}, lag=lambda: {})
    series = samples(metrics.render().decode())
    estimator = monitor.models["m-estimate"].versions["1"].estimator
    labels = (("model_id", "m-estimate"), ("model_version", "1"))
    estimate = estimator.estimate()
    assert set(estimate.values) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    for name, value in estimate.values.items():
        assert series[(f"driftline_model_estimated_{name}", labels)] == value
        band = ("driftline_model_estimated_stderr", (("metric", name), *labels))
        assert series[band] == estimate.stderr[name]
    errors = estimator.estimation_error()
    assert errors
    for name, value in errors.items():
        assert series[("driftline_model_estimation_error", (("metric", name), *labels))] == value
    status = {
        dict(key)["status"]: value
        for (name, key), value in series.items()
        if name == "driftline_model_estimation_status" and dict(key)["model_id"] == "m-estimate"
    }
    assert status == {"on": 1.0}


def test_a_multiclass_estimate_is_exposed():
    """A multiclass version's estimate (from its class maps) is on /metrics as a binary's."""
    from stream.replay import replay
    from tests import scenarios
    from tests.core.test_golden import CONFIG, lines

    monitor = Monitor(CONFIG)
    for _ in replay(lines(scenarios.multiclass()), monitor=monitor):
        pass
    metrics = DriftlineMetrics(monitor, PipelineStats(), topic_of_kind={}, lag=lambda: {})
    series = samples(metrics.render().decode())
    estimator = monitor.models["m-multi"].versions["1"].estimator
    assert estimator.status == "on"
    estimate = estimator.estimate()
    labels = (("model_id", "m-multi"), ("model_version", "1"))
    assert {"accuracy", "f1"} <= set(estimate.values)
    for name, value in estimate.values.items():
        assert series[(f"driftline_model_estimated_{name}", labels)] == value
    status = ("driftline_model_estimation_status", (*labels, ("status", "on")))
    assert series[status] == 1.0


def test_estimated_mae_its_band_error_and_status_are_exposed():
    """A regression version's estimated MAE (DLE) is on /metrics as a classifier's estimate,
    with its band, its estimation error and its status; a regression model without numeric
    features says why it is not estimated."""
    from stream.replay import replay
    from tests import scenarios
    from tests.core.test_golden import CONFIG, lines

    monitor = Monitor(CONFIG)
    records = scenarios.estimated_mae_rise() + scenarios.regression()
    for _ in replay(lines(records), monitor=monitor):
        pass
    metrics = DriftlineMetrics(monitor, PipelineStats(), topic_of_kind={}, lag=lambda: {})
    series = samples(metrics.render().decode())
    estimator = monitor.models["m-dle"].versions["1"].estimator
    labels = (("model_id", "m-dle"), ("model_version", "1"))
    estimate = estimator.estimate()
    assert set(estimate.values) == {"mae"}
    assert series[("driftline_model_estimated_mae", labels)] == estimate.values["mae"]
    band = ("driftline_model_estimated_stderr", (("metric", "mae"), *labels))
    assert series[band] == estimate.stderr["mae"] > 0
    errors = estimator.estimation_error()
    assert set(errors) == {"mae"}
    error = ("driftline_model_estimation_error", (("metric", "mae"), *labels))
    assert series[error] == errors["mae"]
    status = {
        (dict(key)["model_id"], dict(key)["status"]): value
        for (name, key), value in series.items()
        if name == "driftline_model_estimation_status"
    }
    # (m-reg sends its features on the inputs topic: none at prediction time.)
    assert status == {("m-dle", "on"): 1.0, ("m-reg", "no_features"): 1.0}
