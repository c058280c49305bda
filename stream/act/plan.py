"""A command (or alert) and the configuration in, the actions to take (or a refusal) out.

Pure: no I/O, no clock (the time is an argument). Decisions, in order:

1. the model's actions are switched off (``enabled: false``)  -> refused, ``disabled``
2. a rollback of a model not in ``actions.allow``, or an MLflow alias not listed for it
                                                              -> refused, ``not_allowed``
3. nothing configured for this model and kind                 -> refused, ``no_action``
4. otherwise one step per configured action (MLflow, HTTP).

The age check (:func:`too_old`) comes later, in the loop, once the acted-id log has said which
steps are new: a command already acted on is a duplicate, whatever its age.

Examples
--------
>>> from stream.act.config import ActionsConfig
>>> config = ActionsConfig.from_dict({"defaults": {"mlflow": {}}, "allow": {"churn": []}})
>>> too_old(time_ms=0, now_ms=3_600_001, max_age_ms=3_600_000).reason
'too_old'
>>> too_old(time_ms=0, now_ms=3_600_000, max_age_ms=3_600_000) is None
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import orjson

from schemas.cloudevents import Evidence, RetrainData, RollbackData
from stream.act.config import ActionsConfig, HttpConfig, MlflowConfig
from stream.act.received import Kind, Received, Refusal

__all__ = [
    "DEAD_LETTERED",
    "HttpStep",
    "MlflowStep",
    "Plan",
    "Step",
    "plan",
    "too_old",
]

#: Refusals that go to the dead-letter topic; the others (``disabled``, ``no_action``) are what
#: the configuration asks for, only counted.
DEAD_LETTERED: Final = frozenset({"invalid_command", "invalid_alert", "not_allowed", "too_old"})
#: MLflow refuses longer model version tag values; evidence is cut to fit.
_MAX_TAG_VALUE: Final = 4_000


@dataclass(frozen=True, slots=True)
class MlflowStep:
    """Point ``alias`` at ``to_version`` (rollback; None for a retrain) and set ``tags`` on
    ``tag_version``, in the registered model ``registered_model``. Versions are MLflow's."""

    event_id: str
    kind: Kind
    registered_model: str
    alias: str
    to_version: str | None
    tag_version: str
    tags: dict[str, str]
    config: MlflowConfig

    @property
    def key(self) -> str:
        """Its key in the acted-id log."""
        return f"{self.event_id}/mlflow"

    @property
    def action(self) -> str:
        """Its ``action`` label value."""
        return f"mlflow_{self.kind}"

    def describe(self) -> str:
        where = f"MLflow model {self.registered_model!r}"
        tags = f"tag version {self.tag_version} with {', '.join(sorted(self.tags))}"
        if self.to_version is None:
            return f"{where}: {tags}"
        return f"{where}: set alias {self.alias!r} to version {self.to_version}; {tags}"


@dataclass(frozen=True, slots=True)
class HttpStep:
    """POST the CloudEvent to a receiver."""

    event_id: str
    kind: Kind
    config: HttpConfig

    @property
    def key(self) -> str:
        return f"{self.event_id}/http"

    @property
    def action(self) -> str:
        return f"http_{self.kind}"

    def describe(self) -> str:
        return f"POST the CloudEvent ({self.config.mode} mode) to {self.config.origin()}"


Step = MlflowStep | HttpStep


@dataclass(frozen=True, slots=True)
class Plan:
    """The steps for one event, in the order they run."""

    steps: list[Step] = field(default_factory=list)


def plan(event: Received, config: ActionsConfig) -> Plan | Refusal:
    """The actions ``config`` asks for on ``event``, or why none is taken."""
    model = config.for_model(event.model_id)
    if not model.enabled:
        return Refusal("disabled", f"actions are off for model {event.model_id!r}")
    rollback = event.rollback
    if rollback is not None and event.model_id not in config.allow:
        return Refusal(
            "not_allowed",
            f"rollback of model {event.model_id!r} refused: it is not listed in actions.allow",
        )
    steps: list[Step] = []
    mlflow = model.mlflow
    if mlflow is not None and rollback is not None:
        if mlflow.alias not in config.allow[event.model_id]:
            return Refusal(
                "not_allowed",
                f"rollback of model {event.model_id!r} refused: alias {mlflow.alias!r} is not "
                f"listed in actions.allow.{event.model_id}",
            )
        steps.append(_rollback_step(event, rollback, mlflow))
    elif mlflow is not None and event.kind == "retrain" and mlflow.tag_on_retrain:
        assert isinstance(event.event.data, RetrainData)
        steps.append(_retrain_step(event, event.event.data, mlflow))
    if model.http is not None and event.kind in model.http.forward:
        steps.append(HttpStep(event_id=event.id, kind=event.kind, config=model.http))
    if not steps:
        return Refusal("no_action", f"no action is configured for {event.kind} of this model")
    return Plan(steps)


def too_old(*, time_ms: int, now_ms: int, max_age_ms: int) -> Refusal | None:
    """Refuse an event whose CloudEvent ``time`` is more than ``max_age_ms`` before ``now_ms``."""
    age = now_ms - time_ms
    if age <= max_age_ms:
        return None
    return Refusal(
        "too_old",
        f"decided {age / 1000:.0f} s ago, more than actions.max_age ({max_age_ms / 1000:.0f} s)",
    )


def _evidence(evidence: Evidence) -> str:
    text = orjson.dumps(
        {
            "detector": evidence.detector,
            "statistic": evidence.statistic,
            "threshold": evidence.threshold,
            "signal": evidence.signal,
            "details": evidence.details,
        }
    ).decode()
    return text if len(text) <= _MAX_TAG_VALUE else text[: _MAX_TAG_VALUE - 3] + "..."


def _rollback_step(event: Received, data: RollbackData, mlflow: MlflowConfig) -> MlflowStep:
    return MlflowStep(
        event_id=event.id,
        kind=event.kind,
        registered_model=mlflow.registered_model or event.model_id,
        alias=mlflow.alias,
        to_version=mlflow.mlflow_version(data.to_version),
        tag_version=mlflow.mlflow_version(data.from_version),
        tags={
            "driftline.rollback.command_id": event.id,
            "driftline.rollback.reason": data.reason,
            "driftline.rollback.to_version": data.to_version,
            "driftline.rollback.time": event.event.time,
            "driftline.rollback.evidence": _evidence(data.evidence),
        },
        config=mlflow,
    )


def _retrain_step(event: Received, data: RetrainData, mlflow: MlflowConfig) -> MlflowStep:
    return MlflowStep(
        event_id=event.id,
        kind=event.kind,
        registered_model=mlflow.registered_model or event.model_id,
        alias=mlflow.alias,
        to_version=None,
        tag_version=mlflow.mlflow_version(data.model_version),
        tags={
            "driftline.retrain.command_id": event.id,
            "driftline.retrain.reason": data.reason,
            "driftline.retrain.window_start": data.window.start,
            "driftline.retrain.window_end": data.window.end,
            "driftline.retrain.evidence": _evidence(data.evidence),
        },
        config=mlflow,
    )
