"""Prometheus metrics of the live service, read from the core at scrape time.

Nothing is updated per event: at scrape time :class:`DriftlineMetrics` walks the monitor's
counters and models (client_python's recommended pattern for state that already exists, a
custom collector) and writes the text format itself. A thousand models with twenty features
are ~90,000 series, and client_python's ``Metric``/``Sample`` objects cost ~5 µs a series: half
a second of a worker's single event loop at every scrape. Written directly it takes a tenth of
that (``python bench/worker.py --only fleet``). Process metrics and Faust's web sensor stay on a
client_python registry (:func:`new_registry`), appended to the same response.

Label values come from untrusted input: they are escaped as the format requires, and every
label set is bounded: models by ``max_models``, features by ``max_features_per_model``,
versions by ``max_versions``; refusals are counted.

Metric names are part of driftline's interface (dashboards and alert rules rely on them):

=====================================================  =================================
``driftline_events_total{topic, outcome}``             ok | deadletter | rerouted | skipped
``driftline_deadletter_total{topic, reason}``          reasons of schemas.REASONS
``driftline_rerouted_total{topic, cause}``             unkeyed | other_key | librdkafka_partitioner
                                                       | other_partitioner
``driftline_order_held``                               records waiting for timestamp order
``driftline_order_forced_total``                       records applied before their turn
``driftline_alerts_total{type}``                       CloudEvents type
``driftline_commands_total{type}``                     CloudEvents type
``driftline_alerts_firing{model_id, type}``            alerts firing now
``driftline_drift_statistic{model_id, signal, feature}``  and ``_threshold``, ``_detected``
``driftline_model_precision{model_id, model_version}``  ``_recall``, ``_f1``, ``_accuracy``,
                                                       ``_mae``, ``_rmse``, ``_outcomes``,
                                                       ``_roc_auc``, ``_log_loss``, ``_brier``,
                                                       ``_calibration_error``
``driftline_model_reference_ready{model_id,``          1 once the reference of ``test``
``model_version, test}``                               (performance | concept) holds enough
                                                       evidence; 0 while warming up
``driftline_model_reference_starved{...}``            1: the reference stopped growing at its
                                                       bound short of evidence (never judges)
``driftline_model_reference_count{model_id,``          the reference's ``count``: outcomes,
``model_version, test, count}``                        positives, predicted_positives, errors
``driftline_model_confusion{model_id,``                outcomes in the rolling window by label and
``model_version, label, predicted}``                   predicted class (top classes, rest: other)
``driftline_model_latency_seconds{model_id,``          inference latency over the rolling window,
``model_version, quantile}``                           quantile 0.5 | 0.95 | 0.99
``driftline_model_latency_reference_p99_seconds{...}``  a version's reference p99
``driftline_model_estimated_f1{model_id,``            a classifier version's metrics (macro for
``model_version}``                                     multiclass) estimated from its calibrated
                                                       scores over its last predictions, before
                                                       labels: also ``_accuracy``,
                                                       ``_precision``, ``_recall``, ``_roc_auc``
``driftline_model_estimated_mae{model_id,``           a regression version's MAE estimated from
``model_version}``                                     its predictions' numeric features (DLE)
``driftline_model_estimated_stderr{..., metric}``      each estimate's sampling standard error
``driftline_model_estimation_error{..., metric}``      mean absolute gap estimate - realised, over
                                                       blocks of labelled outcomes
``driftline_model_estimation_status{..., status}``     1 for the version's status: collecting | on
                                                       | too_few_labels | uninformative_scores
                                                       | poor_calibration | no_features
``driftline_segment_error{model_id, segment,``         a segment's error rate (MAE for regression),
``value}``                                             decayed over segmentation.window outcomes;
                                                       top values of each name, the rest: other
``driftline_segment_outcomes{...}``                    its effective (Kish) labelled outcomes
``driftline_segment_traffic_share{...}``               its share of the predictions
``driftline_seconds_since_last_event{model_id, topic}``
``driftline_label_join_total{outcome}``                joined, expired, evicted, late, ...
``driftline_events_sampled_out_total{model_id,``       events a model's sample left out (not
``topic}``                                             applied, not joined: counted here)
``driftline_model_sample_rate{model_id}``              a sampled model's ``sample`` (below 1)
``driftline_refused_total{what}``                      model | feature
``driftline_model_resets_total{cause}``                internal_error (the core raised)
``driftline_data_quality_checks_fired_total{check}``   quality checks that started firing
``driftline_consumer_lag{topic, partition}``           records behind the end of the log
``driftline_models``                                   models tracked
``driftline_state_total{outcome}``                     saved | restored | rejected | failed
=====================================================  =================================
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CollectorRegistry, ProcessCollector

from detectors.estimation import ESTIMATED_METRICS
from detectors.loss_estimator import LOSS_METRICS
from detectors.metrics import RollingClassification
from detectors.monitor import Monitor

if TYPE_CHECKING:
    from stream.pipeline import PipelineStats

__all__ = ["CONTENT_TYPE", "DriftlineMetrics", "new_registry"]

#: The Prometheus text format, version 0.0.4.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_PER_VERSION = (
    ("precision", "Rolling precision (binary, or macro-averaged)."),
    ("recall", "Rolling recall (binary, or macro-averaged)."),
    ("f1", "Rolling F1 (binary, or macro-averaged)."),
    ("accuracy", "Rolling accuracy."),
    ("mae", "Rolling mean absolute error (regression)."),
    ("rmse", "Rolling root mean squared error (regression)."),
    ("roc_auc", "Rolling ROC AUC of the probability scores (multiclass: macro one-vs-rest)."),
    ("log_loss", "Rolling log loss of the probability scores."),
    ("brier", "Rolling Brier score of the probability scores (multiclass: summed over classes)."),
    ("calibration_error", "Rolling expected calibration error (10 bins; multiclass: top label)."),
)


def escape(value: str) -> str:
    r"""A label value as the text format writes it (backslash, double quote, newline).

    >>> print(escape('a "quoted" \\ back\nslash'))
    a \"quoted\" \\ back\nslash
    """
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def number(value: float) -> str:
    """A sample value as the text format writes it.

    >>> number(0.25), number(3), number(float("inf")), number(float("nan"))
    ('0.25', '3.0', '+Inf', 'NaN')
    """
    value = float(value)
    if value - value == 0.0:  # finite
        return repr(value)
    if value != value:
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"


def _header(name: str, kind: str, text: str) -> str:
    return f"# HELP {name} {text}\n# TYPE {name} {kind}\n"


class _Samples:
    r"""A family's samples as (series text, value) pairs, their values written all at once.

    ``repr`` of a float costs ~1.2 us here, orjson's (shortest round trip too) ~0.13 us in a
    list: at 1,000 models that was most of a scrape. Non-finite values, which JSON lacks, are
    written by :func:`number`.

    >>> samples = _Samples("# TYPE x gauge\n")
    >>> samples.add('x{a="1"} ', 0.1)
    >>> samples.add('x{a="2"} ', float("nan"))
    >>> samples.add('x{a="3"} ', 1e-07)
    >>> print(samples.text(), end="")
    # TYPE x gauge
    x{a="1"} 0.1
    x{a="2"} NaN
    x{a="3"} 1e-7
    """

    __slots__ = ("head", "series", "values")

    def __init__(self, head: str) -> None:
        self.head = head
        self.series: list[str] = []
        self.values: list[Any] = []

    def add(self, series: str, value: Any) -> None:
        self.series.append(series)
        self.values.append(value)

    def text(self) -> str:
        values = self.values
        if not values:
            return self.head
        try:
            written = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)
        except TypeError:  # (not a number: never expected, but a scrape must not fail)
            texts = list(map(number, values))
        else:
            texts = written[1:-1].decode().split(",")
            if b"null" in written:  # NaN and infinities
                texts = [
                    number(v) if t == "null" else t for t, v in zip(texts, values, strict=True)
                ]
        # One join over head, series, value, newline, series, ...: no string made per line.
        n = len(texts)
        parts: list[str] = [self.head] * (3 * n + 1)
        parts[1::3] = self.series
        parts[2::3] = texts
        parts[3::3] = ["\n"] * n
        return "".join(parts)


def _family(
    name: str, kind: str, text: str, labels: tuple[str, ...], rows: Iterable[tuple[tuple, float]]
) -> str:
    """A whole (small) family: ``rows`` of (label values, value)."""
    lines = [_header(name, kind, text)]
    for values, value in rows:
        if labels:
            pairs = ",".join(
                f'{label}="{escape(str(v))}"' for label, v in zip(labels, values, strict=True)
            )
            lines.append(f"{name}{{{pairs}}} {number(value)}\n")
        else:
            lines.append(f"{name} {number(value)}\n")
    return "".join(lines)


class DriftlineMetrics:
    """driftline's metrics of a :class:`Monitor` and the pipeline's counters, as text.

    Examples
    --------
    >>> from detectors.monitor import Monitor
    >>> from stream.pipeline import PipelineStats
    >>> text = DriftlineMetrics(Monitor(), PipelineStats(), topic_of_kind={}).render().decode()
    >>> lines = text.splitlines()
    >>> for line in lines[lines.index("# TYPE driftline_models gauge") :][:2]:
    ...     print(line)
    # TYPE driftline_models gauge
    driftline_models 0.0
    """

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
        # model_id -> [its state, escaped id, (signal, name) -> label set and fixed lines, its
        # features' label texts and threshold and detected lines with what they were written
        # from (signal table, layout, thresholds, detected), or None]. Bounded like the models:
        # entries of models no longer tracked go at the next scrape.
        self._label_cache: dict[str, list[Any]] = {}
        #: What serving the previous scrape took (the web server sets it).
        self.last_scrape_seconds = 0.0

    def render(self) -> bytes:
        """The text exposition of every driftline metric (UTF-8)."""
        return "".join(self.families()).encode()

    def families(self) -> list[str]:
        """The exposition's texts, a family (or a few small ones) each, in order: one snapshot,
        taken at once. The worker sends them one by one, so a fleet's ~10 MB is never joined
        into one buffer, encoded whole, and copied again into the socket's."""
        parts = self._counters()
        parts.extend(self._models())
        if self.lag is not None:
            parts.append(
                _family(
                    "driftline_consumer_lag",
                    "gauge",
                    "Records between the consumer's position and the end of each input partition.",
                    ("topic", "partition"),
                    sorted(self.lag().items()),
                )
            )
        return parts

    def _counters(self) -> list[str]:
        stats, counters = self.stats, self.monitor.counters

        def counter(name: str, text: str, label: str, table: dict) -> str:
            rows = (((key,), count) for key, count in sorted(table.items()))
            return _family(f"{name}_total", "counter", text, (label,), rows)

        return [
            _family(
                "driftline_events_total",
                "counter",
                "Input events by topic and outcome.",
                ("topic", "outcome"),
                sorted(stats.events.items()),
            ),
            _family(
                "driftline_deadletter_total",
                "counter",
                "Rejected records by topic and reason.",
                ("topic", "reason"),
                sorted(stats.deadletters.items()),
            ),
            _family(
                "driftline_rerouted_total",
                "counter",
                "Events read away from their model's partition and re-routed there, by topic "
                "and cause (unkeyed, other_key, librdkafka_partitioner, other_partitioner).",
                ("topic", "cause"),
                sorted(stats.rerouted.items()),
            ),
            _family(
                "driftline_order_held",
                "gauge",
                "Records fetched and waiting for their turn in record-timestamp order.",
                (),
                [((), stats.order_held)],
            ),
            _family(
                "driftline_order_forced_total",
                "counter",
                "Records applied before their turn in timestamp order, after DRIFTLINE_ORDER_WAIT "
                "seconds without progress on another input topic's partition.",
                (),
                [((), stats.order_forced)],
            ),
            counter(
                "driftline_alerts",
                "Alerts published, by CloudEvents type.",
                "type",
                counters.alerts,
            ),
            counter(
                "driftline_commands",
                "Commands published, by CloudEvents type.",
                "type",
                counters.commands,
            ),
            counter("driftline_label_join", "Label join outcomes.", "outcome", counters.join),
            _family(
                "driftline_events_sampled_out_total",
                "counter",
                "Events of a model configured with sample below 1 that its sample left out "
                "(counted, not applied: neither monitored nor joined), by model and topic.",
                ("model_id", "topic"),
                sorted(
                    ((model_id, self.topic_of_kind.get(kind, kind)), count)
                    for (model_id, kind), count in counters.sampled.items()
                ),
            ),
            counter(
                "driftline_refused",
                "Models and features not tracked because a cap was reached "
                "(a refused model's events are dead-lettered).",
                "what",
                counters.refused,
            ),
            counter(
                "driftline_model_resets",
                "Models whose state was reset, by cause (internal_error: a bug, please report).",
                "cause",
                counters.resets,
            ),
            counter(
                "driftline_data_quality_checks_fired",
                "Data quality checks that started firing, by check.",
                "check",
                counters.quality,
            ),
            counter("driftline_state", "Model state records by outcome.", "outcome", stats.state),
            _family(
                "driftline_models",
                "gauge",
                "Models tracked by this worker.",
                (),
                [((), len(self.monitor.models))],
            ),
            _family(
                "driftline_last_scrape_duration_seconds",
                "gauge",
                "Seconds this worker took to serve the previous scrape of /metrics: rendering "
                "every series and writing them out (it grows with the fleet; 0 before one).",
                (),
                [((), self.last_scrape_seconds)],
            ),
        ]

    def _models(self) -> list[str]:
        # The hot part of a scrape: one f-string per series, labels escaped once per model.
        statistic = _Samples(
            _header(
                "driftline_drift_statistic",
                "gauge",
                "Each detector's statistic (features: per feature; prediction, score and "
                "error: of the latest version).",
            )
        )
        threshold = [
            _header(
                "driftline_drift_threshold",
                "gauge",
                "The statistic at which each detector confirms a drift.",
            )
        ]
        detected = [_header("driftline_drift_detected", "gauge", "1 while a detector is in drift.")]
        firing = [
            _header("driftline_alerts_firing", "gauge", "Alerts firing now, by model and type.")
        ]
        per_version = {
            name: _Samples(_header(f"driftline_model_{name}", "gauge", text))
            for name, text in _PER_VERSION
        }
        outcomes = [
            _header("driftline_model_outcomes", "gauge", "Labelled outcomes in the rolling window.")
        ]
        reference_ready = [
            _header(
                "driftline_model_reference_ready",
                "gauge",
                "1 once a version's reference (performance test or concept detector) holds "
                "enough evidence to judge against; 0 while warming up.",
            )
        ]
        reference_starved = [
            _header(
                "driftline_model_reference_starved",
                "gauge",
                "1 when a version's reference stopped growing at its bound without enough "
                "evidence: that test will not judge the version.",
            )
        ]
        reference_count = [
            _header(
                "driftline_model_reference_count",
                "gauge",
                "Counts in a version's reference: outcomes, positives, predicted positives, "
                "errors.",
            )
        ]
        confusion = [
            _header(
                "driftline_model_confusion",
                "gauge",
                "Labelled outcomes in a version's rolling window by label and predicted class "
                "(the metrics.confusion_classes most frequent classes; the rest as other).",
            )
        ]
        latency = _Samples(
            _header(
                "driftline_model_latency_seconds",
                "gauge",
                "Inference latency (the predictions' latency_ms) of each version over its "
                "rolling window: quantile 0.5, 0.95, 0.99.",
            )
        )
        latency_reference = _Samples(
            _header(
                "driftline_model_latency_reference_p99_seconds",
                "gauge",
                "A version's reference p99 latency (its first latencies), once complete.",
            )
        )
        estimated = {
            name: _Samples(
                _header(
                    f"driftline_model_estimated_{name}",
                    "gauge",
                    f"A classifier version's {name} (macro for multiclass) estimated from its "
                    "calibrated scores over its last estimation.window predictions, labelled "
                    "or not (CBPE).",
                )
            )
            for name in ESTIMATED_METRICS
        }
        estimated |= {
            name: _Samples(
                _header(
                    f"driftline_model_estimated_{name}",
                    "gauge",
                    f"A regression version's {name.upper()} estimated from its predictions' "
                    "numeric features over its last estimation.window predictions, labelled or "
                    "not (DLE).",
                )
            )
            for name in LOSS_METRICS
        }
        estimated_stderr = _Samples(
            _header(
                "driftline_model_estimated_stderr",
                "gauge",
                "The sampling standard error of each estimated metric (labels are draws).",
            )
        )
        estimation_error = _Samples(
            _header(
                "driftline_model_estimation_error",
                "gauge",
                "Mean absolute gap between a version's estimated and realised metric, over the "
                "blocks of labelled outcomes compared so far.",
            )
        )
        estimation_status = [
            _header(
                "driftline_model_estimation_status",
                "gauge",
                "1 for what a version's estimation is doing: collecting its reference, on, or "
                "off and why (too_few_labels, uninformative_scores, poor_calibration, "
                "no_features).",
            )
        ]
        segment_error = _Samples(
            _header(
                "driftline_segment_error",
                "gauge",
                "Error rate (MAE for regression) of each segment of a model's traffic, its "
                "outcomes' weights decaying over segmentation.window outcomes (value other: "
                "the values not tracked).",
            )
        )
        segment_outcomes = _Samples(
            _header(
                "driftline_segment_outcomes",
                "gauge",
                "Effective (Kish) labelled outcomes behind driftline_segment_error.",
            )
        )
        segment_share = _Samples(
            _header(
                "driftline_segment_traffic_share",
                "gauge",
                "Each segment's share of a model's predictions (decayed by review period).",
            )
        )
        sample_rate = _Samples(
            _header(
                "driftline_model_sample_rate",
                "gauge",
                "The share of a model's events monitored (its sample setting), for models "
                "sampled below 1: drift, metrics and rates are of that sample.",
            )
        )
        since = _Samples(
            _header(
                "driftline_seconds_since_last_event",
                "gauge",
                "Seconds since the model's last event on each input topic (wall clock).",
            )
        )
        now_ms = time.time() * 1000
        topic_of_kind = self.topic_of_kind
        models = self.monitor.models
        cache = self._label_cache
        if len(cache) > len(models):  # models forgotten or moved to another worker
            for model_id in cache.keys() - models.keys():
                del cache[model_id]
        # (Bound once: per version signal, the loop below does nothing else than these appends.)
        statistic_series, statistic_values = statistic.series.append, statistic.values.append
        threshold_line, detected_line = threshold.append, detected.append
        for model_id, state in models.items():
            cached = cache.get(model_id)
            if cached is None or cached[0] is not state:
                cached = cache[model_id] = [state, escape(model_id), {}, None]
            _, model, lines, block = cached
            # Features: a model's statistics in one stride of its signal table; its threshold
            # and detected lines as two texts, rewritten only when one of them changed.
            table = state.feature_signals
            names, statistics, thresholds, flags = table.columns()
            if (
                block is None
                or block[0] is not table
                or block[1] != table.layout
                or block[2] != thresholds
                or block[3] != flags
            ):
                labels = [
                    f'{{model_id="{model}",signal="feature",feature="{escape(name)}"}} '
                    for name in names
                ]
                block = cached[3] = (
                    table,
                    table.layout,
                    thresholds,
                    flags,
                    [f"driftline_drift_statistic{text}" for text in labels],
                    "".join(
                        f"driftline_drift_threshold{text}{number(value)}\n"
                        for text, value in zip(labels, thresholds, strict=True)
                    ),
                    "".join(
                        f"driftline_drift_detected{text}{number(value)}\n"
                        for text, value in zip(labels, flags, strict=True)
                    ),
                )
            statistic.series += block[4]
            statistic.values += statistics
            threshold_line(block[5])
            detected_line(block[6])
            version_signals = state.latest_signals()
            if len(lines) > len(version_signals) + 16:  # versions come and go: drop the old ones
                lines.clear()
            for signal, name, value, line, on in version_signals:
                entry = lines.get((signal, name))
                if entry is None or entry[1] != line:
                    # Label sets and thresholds change rarely: written once, reused.
                    labels = f'{{model_id="{model}",signal="{signal}",feature=""}} '
                    entry = lines[(signal, name)] = (
                        f"driftline_drift_statistic{labels}",
                        line,
                        f"driftline_drift_threshold{labels}{number(line)}\n",
                        f"driftline_drift_detected{labels}1.0\n",
                        f"driftline_drift_detected{labels}0.0\n",
                    )
                statistic_series(entry[0])
                statistic_values(value)
                threshold_line(entry[2])
                detected_line(entry[3] if on else entry[4])
            open_alerts: dict[str, int] = {}
            for key in state.alerts.firing_keys():
                open_alerts[key.alert] = open_alerts.get(key.alert, 0) + 1
            for kind, count in sorted(open_alerts.items()):
                firing.append(
                    f'driftline_alerts_firing{{model_id="{model}",'
                    f'type="io.driftline.alert.{escape(kind)}"}} {count}.0\n'
                )
            minimum = state.config.metrics.min_samples
            top_classes = state.config.metrics.confusion_classes
            for version in state.versions.values():
                n = version.metrics.n
                labels = f'{{model_id="{model}",model_version="{escape(version.version)}"}} '
                outcomes.append(f"driftline_model_outcomes{labels}{n}.0\n")
                for test, ready, starved, counts in version.references():
                    tested = f'{labels[:-2]},test="{test}"'
                    reference_ready.append(
                        f"driftline_model_reference_ready{tested}}} {1.0 if ready else 0.0}\n"
                    )
                    reference_starved.append(
                        f"driftline_model_reference_starved{tested}}} {1.0 if starved else 0.0}\n"
                    )
                    for count, value in counts.items():
                        reference_count.append(
                            f'driftline_model_reference_count{tested},count="{count}"}} {value}.0\n'
                        )
                window = version.latency
                if window is not None:
                    for q, value in window.quantiles().items():
                        latency.add(
                            f'driftline_model_latency_seconds{labels[:-2]},quantile="{q}"}} ',
                            value / 1000,
                        )
                    if window.ready:
                        latency_reference.add(
                            f"driftline_model_latency_reference_p99_seconds{labels}",
                            window.reference_p99 / 1000,
                        )
                estimator = version.estimator
                if estimator is not None:
                    estimation_status.append(
                        f"driftline_model_estimation_status{labels[:-2]},"
                        f'status="{estimator.status}"}} 1.0\n'
                    )
                    estimate = estimator.estimate()
                    if estimate is not None:
                        for name, value in estimate.values.items():
                            estimated[name].add(f"driftline_model_estimated_{name}{labels}", value)
                            estimated_stderr.add(
                                f'driftline_model_estimated_stderr{labels[:-2]},metric="{name}"}} ',
                                estimate.stderr[name],
                            )
                    for name, value in estimator.estimation_error().items():
                        estimation_error.add(
                            f'driftline_model_estimation_error{labels[:-2]},metric="{name}"}} ',
                            value,
                        )
                if n < minimum:
                    continue
                for name, value in version.metrics.values().items():
                    per_version[name].add(f"driftline_model_{name}{labels}", value)
                if version.score_quality is not None:
                    for name, value in version.score_quality.values().items():
                        per_version[name].add(f"driftline_model_{name}{labels}", value)
                if isinstance(version.metrics, RollingClassification):
                    for label, predicted, count in version.metrics.confusion(top_classes):
                        confusion.append(
                            f'driftline_model_confusion{labels[:-2]},label="{escape(label)}",'
                            f'predicted="{escape(predicted)}"}} {count}.0\n'
                        )
            segments = state.segments
            if segments is not None:
                for index, slots in enumerate(segments.slots):
                    shares = slots.shares()
                    for slot in (0, *(slot for slot, _ in slots.tracked())):
                        name, value = segments.describe(index, slot)
                        labels = (
                            f'{{model_id="{model}",segment="{escape(name)}",'
                            f'value="{escape(value)}"}} '
                        )
                        segment_share.add(f"driftline_segment_traffic_share{labels}", shares[slot])
                        if segments.errors is None:
                            continue
                        error, weight = segments.errors.summary(index, slot)
                        segment_outcomes.add(f"driftline_segment_outcomes{labels}", weight)
                        if weight >= minimum:
                            segment_error.add(f"driftline_segment_error{labels}", error)
            rate = state.config.sample
            if rate < 1.0:
                sample_rate.add(f'driftline_model_sample_rate{{model_id="{model}"}} ', rate)
            for kind, at in state.last_event_at.items():
                topic = escape(topic_of_kind.get(kind, kind))
                seconds = max(0.0, (now_ms - at) / 1000)
                since.add(
                    f'driftline_seconds_since_last_event{{model_id="{model}",topic="{topic}"}} ',
                    seconds,
                )
        families = [
            statistic,
            threshold,
            detected,
            firing,
            *per_version.values(),
            outcomes,
            reference_ready,
            reference_starved,
            reference_count,
            confusion,
            latency,
            latency_reference,
            *estimated.values(),
            estimated_stderr,
            estimation_error,
            estimation_status,
            segment_error,
            segment_outcomes,
            segment_share,
            sample_rate,
            since,
        ]
        return [
            family.text() if isinstance(family, _Samples) else "".join(family)
            for family in families
        ]


def new_registry() -> CollectorRegistry:
    """client_python's registry for the rest: process metrics, and Faust's sensor (app.py).

    A registry of its own, so tests and several apps in one process never collide.
    """
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    return registry
