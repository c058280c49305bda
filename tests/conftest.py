"""Shared fixtures: one real Kafka broker per test session, fresh topics for every test.

Set ``DRIFTLINE_BOOTSTRAP_SERVERS`` to run the broker tests against a broker you started
yourself; otherwise the session starts the project's own (``stream.kafka_broker``) on free
ports in a temporary folder, and stops it at the end. Broker tests never skip: without Java or
the jars they fail and say why.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from schemas import Topics
from stream.harness import create_topics, free_port
from stream.kafka_broker import BrokerConfig, LocalKafka

PARTITIONS = 4


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka | None]:
    """The session's broker, or None when DRIFTLINE_BOOTSTRAP_SERVERS names an external one."""
    if os.environ.get("DRIFTLINE_BOOTSTRAP_SERVERS"):
        yield None
        return
    broker = LocalKafka(
        BrokerConfig(
            port=free_port(),
            controller_port=free_port(),
            data_dir=tmp_path_factory.mktemp("kafka"),
        )
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: LocalKafka | None) -> str:
    """``host:port`` of the session's broker."""
    if kafka_broker is None:
        return os.environ["DRIFTLINE_BOOTSTRAP_SERVERS"]
    return kafka_broker.bootstrap_servers


@pytest.fixture
async def topics(kafka_bootstrap: str, request: pytest.FixtureRequest) -> AsyncIterator[Topics]:
    """The contract's six topics under names unique to this test, created on the broker."""
    names = unique_topics(request)
    await create_topics(kafka_bootstrap, names.all(), PARTITIONS)
    return names


def unique_topics(request: pytest.FixtureRequest) -> Topics:
    """The contract's six topic names, suffixed with this test's name and a random tag."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:60].strip("-")
    suffix = f"{slug}.{uuid.uuid4().hex[:8]}"
    return Topics(
        predictions=f"model.predictions.{suffix}",
        inputs=f"model.inputs.{suffix}",
        labels=f"model.labels.{suffix}",
        alerts=f"monitor.alerts.{suffix}",
        commands=f"monitor.commands.{suffix}",
        deadletter=f"monitor.deadletter.{suffix}",
    )


def _hypothesis_profiles() -> None:
    """Property-based tests run the same examples on every machine and every run (``ci``, the
    default): no example database, no per-example deadline on a busy machine. Set
    ``HYPOTHESIS_PROFILE=explore`` to search further, with fresh random examples."""
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "ci",
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=100,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.register_profile("explore", max_examples=2000, deadline=None)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


_hypothesis_profiles()
