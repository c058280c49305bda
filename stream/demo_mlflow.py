"""``driftline demo --mlflow``: the demo's rollbacks acted on by ``driftline act`` in a local
MLflow Model Registry.

A local tracking server (SQLite) holds ``churn-predictor`` and ``ranker``, each with versions 1
and 2 and the alias ``champion`` at 2 (the version the demo rolls out); ``driftline act`` runs
beside the worker with an ``actions:`` section that allows exactly those two rollbacks; the demo
watches the registry and shows when the alias comes back to 1.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from schemas import Topics
from stream.harness import ActProcess, free_port
from stream.mlflow_server import MlflowServer, register_versions, server_installed

__all__ = ["INSTALL_HINT", "MODELS", "DemoRegistry", "server_installed"]

INSTALL_HINT = (
    "driftline demo --mlflow needs the full MLflow package (its tracking server): "
    "pip install mlflow   (or pip install -e '.[dev]' in a checkout)"
)
#: The models whose rollbacks act carries out, and the alias it moves.
MODELS = ("churn-predictor", "ranker")
ALIAS = "champion"


class DemoRegistry:
    """The local MLflow server, ``driftline act``, and what the registry shows."""

    def __init__(self, workdir: Path, run_id: str) -> None:
        self.server = MlflowServer(workdir / f"mlflow-{run_id}", free_port(5000))
        self.workdir = workdir
        self.run_id = run_id
        self.act: ActProcess | None = None
        self._client: Any = None
        #: Model -> the version the alias points at now.
        self.serving: dict[str, str] = {}

    @property
    def url(self) -> str:
        return self.server.url

    def start(self, bootstrap: str, topics: Topics) -> float:
        """Start the server, register the models, start act; seconds taken (blocking: call
        it in a thread)."""
        started = time.monotonic()
        self.server.start()
        for name in MODELS:
            self._client = register_versions(self.url, name, 2, alias=ALIAS)
            self.serving[name] = "2"
        config = {
            "actions": {
                "allow": {name: [ALIAS] for name in MODELS},
                "defaults": {"mlflow": {"tracking_uri": self.url, "alias": ALIAS}},
            }
        }
        self.act = ActProcess(
            bootstrap,
            topics,
            self.workdir,
            app_id=f"driftline-demo-{self.run_id}",
            config=json.dumps(config),  # JSON is YAML
            log_level="warning",
            port=free_port(6067),
            new_session=True,
        )
        self.act.launch()
        self.act.wait_for(self.act.serving, 90, "driftline act to start")
        return time.monotonic() - started

    def read_aliases(self) -> dict[str, str]:
        """Model -> version the alias points at, read from the registry (blocking)."""
        return {
            name: str(self._client.get_model_version_by_alias(name, ALIAS).version)
            for name in MODELS
        }

    async def watch(self, on_change: Any) -> None:
        """Call ``on_change(model, old, new)`` whenever an alias moves."""
        while True:
            try:
                now = await asyncio.to_thread(self.read_aliases)
            except Exception:  # noqa: BLE001 - a slow or restarting server: look again
                now = self.serving
            for name, version in now.items():
                if version != self.serving.get(name):
                    on_change(name, self.serving.get(name), version)
                    self.serving[name] = version
            await asyncio.sleep(0.5)

    def stop(self) -> None:
        import signal

        if self.act is not None and self.act.alive():
            self.act.stop(signal.SIGTERM, 30)
        self.server.stop()
