"""Prometheus metrics of ``driftline act``, created once against an injected registry.

========================================================  ====================================
``driftline_actions_total{action, outcome}``              what became of each step or event
``driftline_act_deadletters_total{reason}``               records sent to the dead-letter topic
``driftline_act_retries_in_flight``                       steps waiting to be tried again
``driftline_act_acted_ids``                               step keys in the acted-id log
``driftline_act_last_event_age_seconds``                  age (CloudEvent time) of the latest
                                                          event read
========================================================  ====================================

Every label value comes from a fixed set (:data:`ACTIONS`, :data:`OUTCOMES`, the refusal and
failure reasons), never from a record: a flood of bad commands cannot add series.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> metrics = ActMetrics.create(registry)
>>> metrics.count("http_rollback", "done")
>>> registry.get_sample_value("driftline_actions_total",
...                           {"action": "http_rollback", "outcome": "done"})
1.0
"""

from __future__ import annotations

from typing import Final, NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["ACTIONS", "OUTCOMES", "ActMetrics"]

#: ``none``: a refusal of the whole event, before any step.
ACTIONS: Final = (
    "mlflow_rollback",
    "mlflow_retrain",
    "http_retrain",
    "http_rollback",
    "http_alerts",
    "none",
)
OUTCOMES: Final = (
    "done",  # the effect happened
    "recovered",  # found done (or finished) after a crash between intent and outcome
    "duplicate",  # acted on before: skipped
    "failed",  # given up: a permanent error, or retries exhausted (dead-lettered)
    "unknown",  # intent without outcome, not repeated (dead-lettered)
    "dry_run",  # --dry-run: printed only
    "disabled",
    "no_action",
    "not_allowed",
    "too_old",
    "invalid",
)


class ActMetrics(NamedTuple):
    actions: Counter
    deadletters: Counter
    retries_in_flight: Gauge
    acted_ids: Gauge
    last_event_age: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ActMetrics:
        return cls(
            actions=Counter(
                "driftline_actions_total",
                "Steps (and refused events) of driftline act, by action and outcome",
                ["action", "outcome"],
                registry=registry,
            ),
            deadletters=Counter(
                "driftline_act_deadletters_total",
                "Records driftline act sent to the dead-letter topic, by reason",
                ["reason"],
                registry=registry,
            ),
            retries_in_flight=Gauge(
                "driftline_act_retries_in_flight",
                "Steps waiting to be tried again",
                registry=registry,
            ),
            acted_ids=Gauge(
                "driftline_act_acted_ids",
                "Step keys in the acted-id log",
                registry=registry,
            ),
            last_event_age=Gauge(
                "driftline_act_last_event_age_seconds",
                "Age, by its CloudEvent time, of the latest event read",
                registry=registry,
            ),
        )

    def count(self, action: str, outcome: str) -> None:
        assert action in ACTIONS, action
        assert outcome in OUTCOMES, outcome
        self.actions.labels(action, outcome).inc()
