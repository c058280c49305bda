"""Fixtures of the live-service tests."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from schemas import Topics
from tests.integration.live import WorkerProcess


@pytest.fixture
def workers(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Make ``driftline worker`` processes for this test's topics (on the session's broker
    unless ``bootstrap`` is given); any still running at the end are killed."""
    started: list[WorkerProcess] = []

    def make(bootstrap: str = kafka_bootstrap, **kwargs) -> WorkerProcess:
        worker = WorkerProcess(bootstrap, topics, tmp_path, **kwargs)
        started.append(worker)
        return worker

    yield make
    for worker in started:
        if worker.process is not None and worker.process.poll() is None:
            worker.stop(signal.SIGKILL)
