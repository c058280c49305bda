"""A local MLflow tracking server (SQLite backend) for the demo and the tests of ``driftline
act``, and registered models with versions in it.

Needs the full ``mlflow`` package (``mlflow-skinny`` has no server): ``pip install mlflow``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["MlflowServer", "MlflowServerError", "register_versions", "server_installed"]


class MlflowServerError(RuntimeError):
    """The server could not be started."""


class MlflowServer:
    """``mlflow server`` on 127.0.0.1:``port``, its database and artifacts in ``data_dir``."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "mlflow-server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> float:
        """Start it and wait until ``/health`` answers; the seconds that took."""
        started = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
        command = [
            mlflow,
            "server",
            "--backend-store-uri",
            f"sqlite:///{self.data_dir / 'mlflow.db'}",
            "--artifacts-destination",
            str(self.data_dir / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                # No job runner (three more processes, ~800 MB): the registry needs none.
                env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            )
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise MlflowServerError(
                    f"mlflow server exited with {self.process.returncode}:\n{self.tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return time.monotonic() - started
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise MlflowServerError(f"mlflow server did not answer in {timeout:.0f}s:\n{self.tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def register_versions(url: str, name: str, versions: int, alias: str | None = None) -> Any:
    """Register model ``name`` with versions 1..``versions`` (each from a run of its own, since
    MLflow 3 wants a version's source inside a run's artifacts); point ``alias`` at the last.
    Returns the client."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=url, registry_uri=url)
    # MLflow prints a link per finished run and logs while it waits for each version.
    quiet = logging.getLogger("mlflow")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            _register(client, name, versions)
    finally:
        quiet.setLevel(level)
    if alias is not None:
        client.set_registered_model_alias(name, alias, str(versions))
    return client


def _register(client: Any, name: str, versions: int) -> None:
    client.create_registered_model(name)
    for _ in range(versions):
        # The client API, not mlflow.start_run(): nothing printed, no global tracking URI.
        run = client.create_run(experiment_id="0")
        client.log_text(run.info.run_id, "driftline demo model", "model/MLmodel")
        client.set_terminated(run.info.run_id)
        client.create_model_version(
            name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
        )


def server_installed() -> bool:
    """Whether the full MLflow package (with its tracking server) is installed."""
    try:
        import mlflow.server  # noqa: F401
    except ImportError:
        return False
    return True
