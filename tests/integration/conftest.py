"""Fixtures of the live-service tests."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from schemas import Topics
from stream.harness import ActProcess
from stream.kafka_broker import BrokerConfig, LocalKafka
from tests.conftest import free_port
from tests.integration.live import WorkerProcess


@pytest.fixture
def workers(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Make ``driftline worker`` processes for this test's topics (or those given as ``on``),
    on the session's broker unless ``bootstrap`` is given; any still running at the end are
    killed."""
    started: list[WorkerProcess] = []

    def make(bootstrap: str = kafka_bootstrap, on: Topics | None = None, **kwargs) -> WorkerProcess:
        worker = WorkerProcess(bootstrap, on or topics, tmp_path, **kwargs)
        started.append(worker)
        return worker

    yield make
    for worker in started:
        if worker.process is not None and worker.process.poll() is None:
            worker.stop(signal.SIGKILL)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker of this test's own, for tests that stop and start it."""
    broker = LocalKafka(
        BrokerConfig(port=free_port(), controller_port=free_port(), data_dir=tmp_path / "kafka")
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow tracking server (SQLite backend) for the session, on a free port; or the
    one ``DRIFTLINE_MLFLOW_URL`` names (started by yourself, to iterate faster)."""
    from stream.mlflow_server import MlflowServer

    if os.environ.get("DRIFTLINE_MLFLOW_URL"):
        yield os.environ["DRIFTLINE_MLFLOW_URL"]
        return

    server = MlflowServer(tmp_path_factory.mktemp("mlflow"), free_port())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def acts(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> Iterator[Callable[..., ActProcess]]:
    """Make ``driftline act`` processes for this test's topics; any still running at the end
    are killed."""
    started: list[ActProcess] = []

    def make(**kwargs) -> ActProcess:
        act = ActProcess(kafka_bootstrap, topics, tmp_path, **kwargs)
        started.append(act)
        return act

    yield make
    for act in started:
        if act.process is not None and act.process.poll() is None:
            act.stop(signal.SIGKILL)
