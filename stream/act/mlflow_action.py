"""Move a registered model's alias and tag versions in an MLflow Model Registry.

Only MLflow's public client (``mlflow.MlflowClient``) is used, in a worker thread (it is
blocking) with a timeout. MLflow's own HTTP retries are turned off in this process
(``MLFLOW_HTTP_REQUEST_MAX_RETRIES=0`` unless set) and its request timeout set to the longest
configured ``timeout``: act's retry policy is the only one, and its timeout the one that holds.

Both effects are idempotent (setting an alias to the version it already has, setting a tag to
its value), which is what lets a crash between acting and recording be resolved by reading the
registry again (:meth:`MlflowRegistry.recheck`).

Errors are classified by MLflow's ``error_code``, never by message text: an unknown model or
version, an invalid value or a refused permission will not change by trying again (failed);
anything else (a server error, a refused connection, the timeout) is retried.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Callable
from typing import Any, Final, TypeVar

from stream.act.delivery import Attempt, Verdict
from stream.act.plan import MlflowStep

__all__ = ["MLFLOW_MISSING", "MlflowRegistry", "mlflow_available", "resolve_intent"]

T = TypeVar("T")

MLFLOW_MISSING: Final = (
    "the mlflow: action needs the MLflow client, which is not installed: "
    "pip install 'driftline[mlflow]' (or: pip install mlflow-skinny)"
)
#: error_code values that trying again will not change.
_PERMANENT: Final = frozenset(
    {
        "RESOURCE_DOES_NOT_EXIST",
        "INVALID_PARAMETER_VALUE",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "BAD_REQUEST",
        "ENDPOINT_NOT_FOUND",
        "INVALID_STATE",
    }
)


def mlflow_available() -> bool:
    """Whether the MLflow client can be imported."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    return True


class MlflowRegistry:
    """The registry calls of the MLflow steps, one client per tracking URI."""

    def __init__(self, longest_timeout_ms: int) -> None:
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault(
            "MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, math.ceil(longest_timeout_ms / 1000)))
        )
        import mlflow

        self._mlflow = mlflow
        self._clients: dict[str | None, Any] = {}

    def _client(self, step: MlflowStep) -> Any:
        uri = step.config.tracking_uri
        if uri not in self._clients:
            self._clients[uri] = self._mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        return self._clients[uri]

    async def _call(self, step: MlflowStep, what: str, fn: Callable[[], T]) -> T | Attempt:
        """``fn()`` in a thread with the step's timeout, or the failed :class:`Attempt`."""
        from mlflow.exceptions import MlflowException

        where = f"MLflow {what} of {step.registered_model!r}"
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn), step.config.timeout / 1000)
        except TimeoutError:
            return Attempt(Verdict.RETRY, f"{where}: no answer in {step.config.timeout} ms")
        except MlflowException as exc:
            code = str(exc.error_code)
            verdict = Verdict.FAILED if code in _PERMANENT else Verdict.RETRY
            return Attempt(verdict, f"{where}: {code}")
        except Exception as exc:  # noqa: BLE001 - whatever the client raises is worth a retry
            return Attempt(Verdict.RETRY, f"{where}: {type(exc).__name__}")

    async def alias_version(self, step: MlflowStep) -> str | Attempt | None:
        """The version ``step.alias`` points at now (None: no such alias), or the failed
        attempt."""
        from mlflow.exceptions import MlflowException

        client = self._client(step)

        def read() -> str | None:
            try:
                found = client.get_model_version_by_alias(step.registered_model, step.alias)
            except MlflowException as exc:
                if str(exc.error_code) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                    # The alias is not set; whether the model exists shows when it is set.
                    return None
                raise
            return str(found.version)

        return await self._call(step, "alias lookup", read)

    async def apply(self, step: MlflowStep, *, move_alias: bool = True) -> Attempt:
        """Set the alias (a rollback's, unless ``move_alias`` is false) and the tags: the whole
        effect, idempotent."""
        client = self._client(step)

        def write() -> None:
            if step.to_version is not None and move_alias:
                client.set_registered_model_alias(
                    step.registered_model, step.alias, step.to_version
                )
            for name, value in step.tags.items():
                client.set_model_version_tag(step.registered_model, step.tag_version, name, value)

        result = await self._call(step, "update", write)
        if isinstance(result, Attempt):
            return result
        return Attempt(Verdict.DONE, step.describe())


def resolve_intent(*, before: str | None, current: str | None, target: str | None) -> str:
    """After a crash between an MLflow step's intent and its outcome: ``finish`` (the alias is
    at the target already: only the idempotent tags are set again), ``act`` (the alias has not
    moved since the intent: the effect did not happen), or ``unknown`` (someone else moved it
    since: act will not move it back).

    >>> resolve_intent(before="2", current="1", target="1")
    'finish'
    >>> resolve_intent(before="2", current="2", target="1")
    'act'
    >>> resolve_intent(before="2", current="3", target="1")
    'unknown'
    >>> resolve_intent(before=None, current=None, target=None)  # a retrain's tags only
    'act'
    """
    if target is None:
        return "act"
    if current == target:
        return "finish"
    if current == before:
        return "act"
    return "unknown"
