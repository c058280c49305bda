"""Prometheus metrics of the live service, read from the core at scrape time.

Nothing is updated per event: a custom collector walks the monitor's counters and models when
Prometheus scrapes (client_python's recommended pattern for state that already exists). Label
values come from untrusted input, so every label set is bounded: models by ``max_models``,
features by ``max_features_per_model``, versions by ``max_versions``; refusals are counted.

Metric names are part of driftline's interface (dashboards and alert rules rely on them):

=====================================================  =================================
``driftline_events_total{topic, outcome}``             ok | deadletter | rerouted | skipped
``driftline_deadletter_total{topic, reason}``          reasons of schemas.REASONS
``driftline_alerts_total{type}``                       CloudEvents type
``driftline_commands_total{type}``                     CloudEvents type
``driftline_alerts_firing{model_id, type}``            alerts firing now
``driftline_drift_statistic{model_id, signal, feature}``  and ``_threshold``, ``_detected``
``driftline_model_precision{model_id, model_version}``  ``_recall``, ``_f1``, ``_accuracy``,
                                                       ``_mae``, ``_rmse``, ``_outcomes``
``driftline_seconds_since_last_event{model_id, topic}``
``driftline_label_join_total{outcome}``                joined, expired, evicted, late, ...
``driftline_refused_total{what}``                      model | feature
``driftline_data_quality_checks_fired_total{check}``   quality checks that started firing
``driftline_consumer_lag{topic, partition}``           records behind the end of the log
``driftline_models``                                   models tracked
``driftline_state_total{outcome}``                     saved | restored | rejected | failed
=====================================================  =================================
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from detectors.monitor import Monitor

if TYPE_CHECKING:
    from stream.pipeline import PipelineStats

__all__ = ["DriftlineCollector", "new_registry"]

_KIND_OF_SIGNAL = {"feature": "feature", "prediction": "", "score": "", "error": ""}


class DriftlineCollector(Collector):
    """Exposes a :class:`Monitor` and the pipeline's counters."""

    def __init__(
        self,
        monitor: Monitor,
        stats: PipelineStats,
        topic_of_kind: dict[str, str],
        lag: Callable[[], dict[tuple[str, int], int]] | None = None,
    ) -> None:
        self.monitor = monitor
        self.stats = stats
        self.topic_of_kind = topic_of_kind
        self.lag = lag

    def collect(self) -> Iterator[Metric]:
        yield from self._counters()
        yield from self._models()
        if self.lag is not None:
            lag = GaugeMetricFamily(
                "driftline_consumer_lag",
                "Records between the consumer's position and the end of each input partition.",
                labels=["topic", "partition"],
            )
            for (topic, partition), behind in sorted(self.lag().items()):
                lag.add_metric([topic, str(partition)], behind)
            yield lag

    def _counters(self) -> Iterator[Metric]:
        stats, counters = self.stats, self.monitor.counters
        events = CounterMetricFamily(
            "driftline_events", "Input events by topic and outcome.", labels=["topic", "outcome"]
        )
        for (topic, outcome), count in sorted(stats.events.items()):
            events.add_metric([topic, outcome], count)
        yield events
        dead = CounterMetricFamily(
            "driftline_deadletter",
            "Rejected records by topic and reason.",
            labels=["topic", "reason"],
        )
        for (topic, reason), count in sorted(stats.deadletters.items()):
            dead.add_metric([topic, reason], count)
        yield dead
        for name, table, text in (
            ("driftline_alerts", counters.alerts, "Alerts published, by CloudEvents type."),
            ("driftline_commands", counters.commands, "Commands published, by CloudEvents type."),
        ):
            family = CounterMetricFamily(name, text, labels=["type"])
            for kind, count in sorted(table.items()):
                family.add_metric([kind], count)
            yield family
        join = CounterMetricFamily(
            "driftline_label_join", "Label join outcomes.", labels=["outcome"]
        )
        for outcome, count in sorted(counters.join.items()):
            join.add_metric([outcome], count)
        yield join
        refused = CounterMetricFamily(
            "driftline_refused",
            "Models and features not tracked because a cap was reached (events still counted).",
            labels=["what"],
        )
        for what, count in sorted(counters.refused.items()):
            refused.add_metric([what], count)
        yield refused
        quality = CounterMetricFamily(
            "driftline_data_quality_checks_fired",
            "Data quality checks that started firing, by check.",
            labels=["check"],
        )
        for check, count in sorted(counters.quality.items()):
            quality.add_metric([check], count)
        yield quality
        state = CounterMetricFamily(
            "driftline_state", "Model state records by outcome.", labels=["outcome"]
        )
        for outcome, count in sorted(stats.state.items()):
            state.add_metric([outcome], count)
        yield state
        models = GaugeMetricFamily("driftline_models", "Models tracked by this worker.")
        models.add_metric([], len(self.monitor.models))
        yield models

    def _models(self) -> Iterator[Metric]:
        statistic = GaugeMetricFamily(
            "driftline_drift_statistic",
            "Each detector's statistic (features: per feature; prediction, score and error: "
            "of the latest version).",
            labels=["model_id", "signal", "feature"],
        )
        threshold = GaugeMetricFamily(
            "driftline_drift_threshold",
            "The statistic at which each detector confirms a drift.",
            labels=["model_id", "signal", "feature"],
        )
        detected = GaugeMetricFamily(
            "driftline_drift_detected",
            "1 while a detector is in drift.",
            labels=["model_id", "signal", "feature"],
        )
        firing = GaugeMetricFamily(
            "driftline_alerts_firing",
            "Alerts firing now, by model and type.",
            labels=["model_id", "type"],
        )
        per_version = {
            name: GaugeMetricFamily(
                f"driftline_model_{name}", text, labels=["model_id", "model_version"]
            )
            for name, text in (
                ("precision", "Rolling precision (binary, or macro-averaged)."),
                ("recall", "Rolling recall (binary, or macro-averaged)."),
                ("f1", "Rolling F1 (binary, or macro-averaged)."),
                ("accuracy", "Rolling accuracy."),
                ("mae", "Rolling mean absolute error (regression)."),
                ("rmse", "Rolling root mean squared error (regression)."),
                ("outcomes", "Labelled outcomes in the rolling window."),
            )
        }
        since = GaugeMetricFamily(
            "driftline_seconds_since_last_event",
            "Seconds since the model's last event on each input topic (wall clock).",
            labels=["model_id", "topic"],
        )
        now_ms = time.time() * 1000
        for model_id, state in self.monitor.models.items():
            latest = state.latest_version
            for signal, name, value, line, on in state.signals():
                if signal != "feature" and name != latest:
                    continue
                labels = [model_id, signal, name if signal == "feature" else ""]
                statistic.add_metric(labels, value)
                threshold.add_metric(labels, line)
                detected.add_metric(labels, 1.0 if on else 0.0)
            open_alerts: dict[str, int] = {}
            for key in state.alerts.firing_keys():
                open_alerts[key[0]] = open_alerts.get(key[0], 0) + 1
            for kind, count in sorted(open_alerts.items()):
                firing.add_metric([model_id, f"io.driftline.alert.{kind}"], count)
            minimum = state.config.metrics.min_samples
            for version in state.versions.values():
                n = version.metrics.n
                labels = [model_id, version.version]
                per_version["outcomes"].add_metric(labels, n)
                if n < minimum:
                    continue
                for name, value in version.metrics.values().items():
                    per_version[name].add_metric(labels, value)
            for kind, at in state.last_event_at.items():
                since.add_metric(
                    [model_id, self.topic_of_kind.get(kind, kind)], max(0.0, (now_ms - at) / 1000)
                )
        yield statistic
        yield threshold
        yield detected
        yield firing
        yield from per_version.values()
        yield since


def new_registry(collector: DriftlineCollector) -> CollectorRegistry:
    """A registry of its own (tests and several apps in one process never collide)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ProcessCollector(registry=registry)
    return registry
