"""Kafka security on the real broker: ``driftline worker`` authenticating with SCRAM-SHA-512
over SASL_SSL (and SASL_PLAINTEXT) to the project's own broker, with a CA made for this run.

One broker serves the whole module: PLAINTEXT (topics are created there), SASL_SSL and
SASL_PLAINTEXT listeners, one SCRAM user. Passwords are random per run; nothing secret is kept.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError, KafkaConnectionError
from aiokafka.helpers import create_ssl_context

from schemas import Topics
from stream.kafka_broker import BrokerConfig, LocalKafka, SaslListeners, ScramUser
from tests import scenarios
from tests.conftest import create_topics, free_port, unique_topics
from tests.integration.live import WorkerProcess

pytestmark = pytest.mark.broker

USER = "driftline-worker"
MECHANISM = "SCRAM-SHA-512"
EVENTS = 200


@dataclass
class SecureKafka:
    broker: LocalKafka
    cafile: Path
    password: str

    def bootstrap(self, protocol: str) -> str:
        if protocol == "SASL_SSL":
            return self.broker.sasl_ssl_bootstrap_servers
        return self.broker.sasl_plaintext_bootstrap_servers


def _openssl(folder: Path, *args: str, env: dict[str, str] | None = None) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:  # fail, never skip: CI must prove security on the real broker
        pytest.fail("the openssl command is needed to make the test CA (apt-get install openssl)")
    subprocess.run(
        [openssl, *args],
        cwd=folder,
        env={**os.environ, **(env or {})},
        check=True,
        capture_output=True,
        timeout=60,
    )


def make_certificates(folder: Path, keystore_password: str) -> tuple[Path, Path]:
    """A self-signed CA and a server certificate for localhost/127.0.0.1 in a PKCS12 keystore;
    returns (CA file, keystore). The ``cryptography`` package is not installed in the project's
    environment (nor a dependency), so the ``openssl`` CLI makes them. EC keys: quick to make."""
    folder.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        folder,
        *("req", "-x509", "-new", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2"),
        *("-subj", "/CN=driftline test CA"),
        *("-addext", "basicConstraints=critical,CA:TRUE"),
        *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
    )
    _openssl(
        folder,
        *("req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr"),
        *("-subj", "/CN=localhost"),
    )
    (folder / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    _openssl(
        folder,
        *("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key"),
        *("-CAcreateserial", "-days", "2", "-out", "server.pem", "-extfile", "server.ext"),
    )
    # The password through the environment, not argv (`ps`).
    _openssl(
        folder,
        *("pkcs12", "-export", "-in", "server.pem", "-inkey", "server.key"),
        *("-certfile", "ca.pem", "-name", "broker", "-out", "server.p12"),
        *("-passout", "env:KEYSTORE_PASSWORD"),
        env={"KEYSTORE_PASSWORD": keystore_password},
    )
    return folder / "ca.pem", folder / "server.p12"


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    root = tmp_path_factory.mktemp("secure-kafka")
    keystore_password = secrets.token_urlsafe(16)
    cafile, keystore = make_certificates(root / "tls", keystore_password)
    password = secrets.token_urlsafe(24)
    broker = LocalKafka(
        BrokerConfig(
            port=free_port(),
            controller_port=free_port(),
            data_dir=root / "kafka",
            sasl=SaslListeners(
                users=(ScramUser(USER, password, MECHANISM),),
                sasl_ssl_port=free_port(),
                keystore=keystore,
                keystore_password=keystore_password,
                sasl_plaintext_port=free_port(),
            ),
        )
    )
    try:
        broker.start()
        yield SecureKafka(broker, cafile, password)
    finally:
        broker.stop()
    # The broker wrote neither password into its own logs (Kafka prints passwords [hidden]).
    for name in ("server.log", "stdout.log"):
        text = (root / "kafka" / name).read_text(errors="replace")
        assert password not in text
        assert keystore_password not in text


@pytest.fixture
async def secure_topics(secure_kafka: SecureKafka, request: pytest.FixtureRequest) -> Topics:
    """Fresh topics for this test, created over the PLAINTEXT listener."""
    names = unique_topics(request)
    await create_topics(secure_kafka.broker.bootstrap_servers, names.all())
    return names


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        if worker.process is not None and worker.process.poll() is None:
            worker.stop(signal.SIGKILL)


def worker_env(kafka: SecureKafka, protocol: str, password: str, folder: Path) -> dict[str, str]:
    """The worker's security settings, the password in a file as a deployment mounts it."""
    password_file = folder / f"sasl-password-{secrets.token_hex(4)}"
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    env = {
        "DRIFTLINE_SECURITY_PROTOCOL": protocol,
        "DRIFTLINE_SASL_MECHANISM": MECHANISM,
        "DRIFTLINE_SASL_USERNAME": USER,
        "DRIFTLINE_SASL_PASSWORD_FILE": str(password_file),
    }
    if protocol == "SASL_SSL":
        env["DRIFTLINE_SSL_CAFILE"] = str(kafka.cafile)
    return env


async def produce_authenticated(
    kafka: SecureKafka, protocol: str, records: list[tuple[str, bytes]], topics: Topics
) -> int:
    """Produce scenario records as a SCRAM client over ``protocol`` (not the PLAINTEXT port)."""
    auth: dict[str, Any] = {
        "security_protocol": protocol,
        "sasl_mechanism": MECHANISM,
        "sasl_plain_username": USER,
        "sasl_plain_password": kafka.password,
    }
    if protocol == "SASL_SSL":
        auth["ssl_context"] = create_ssl_context(cafile=str(kafka.cafile))
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap(protocol), acks="all", linger_ms=5, **auth
    )
    await producer.start()
    try:
        for kind, payload in records:
            key = orjson.loads(payload)["model_id"].encode()
            await producer.send(getattr(topics, kind), payload, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    return len(records)


def assert_secret_not_exposed(worker: WorkerProcess, secret: str) -> None:
    log = worker.log_path.read_text(errors="replace")
    assert secret not in log
    if worker.process is not None and worker.process.poll() is None:
        assert secret not in worker.metrics()
        assert secret not in page(f"{worker.url}/healthz")


def page(url: str) -> str:
    """A page's body, also when it answers with an error (``/healthz`` is 503 while failing)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except urllib.error.HTTPError as error:
        return error.read().decode()


async def committed_offsets(kafka: SecureKafka, group: str) -> dict[Any, Any]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.broker.bootstrap_servers)
    await admin.start()
    try:
        # On a broker where no group ever committed, the offsets topic is created by this
        # first question, and until then it has no coordinator to answer.
        deadline = time.monotonic() + 30
        while True:
            try:
                return await admin.list_consumer_group_offsets(group)
            except GroupCoordinatorNotAvailableError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await admin.close()


def fails_to_start(worker: WorkerProcess) -> str:
    """Start a worker that must exit at once with one line; return that line after checking
    that it is all the worker said besides its settings, with no traceback."""
    with pytest.raises(RuntimeError, match="worker exited"):
        worker.start(timeout=30)
    assert worker.process is not None
    assert worker.process.returncode == 1
    lines = worker.log_path.read_text(errors="replace").splitlines()
    assert not any(line.startswith("Traceback") for line in lines), worker.tail()
    assert len(lines) == 2, worker.tail()
    settings, error = lines  # the settings line, printed at every start, and the error
    assert settings.startswith("driftline worker settings: {"), worker.tail()
    return error


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
async def test_worker_authenticates_with_scram_and_processes_events(
    secure_kafka: SecureKafka,
    secure_topics: Topics,
    workers: list[WorkerProcess],
    tmp_path: Path,
    protocol: str,
) -> None:
    env = worker_env(secure_kafka, protocol, secure_kafka.password, tmp_path)
    worker = WorkerProcess(secure_kafka.bootstrap(protocol), secure_topics, tmp_path, env=env)
    workers.append(worker)
    worker.start(timeout=60)

    t0 = int(time.time() * 1000) - 3_600_000
    records = scenarios.covariate_shift(n=EVENTS, t0=t0)
    await produce_authenticated(secure_kafka, protocol, records, secure_topics)
    worker.wait_for(
        lambda: (
            worker.sample("driftline_events_total", topic=secure_topics.predictions, outcome="ok")
            == EVENTS
        ),
        timeout=60,
        what=f"{EVENTS} events over {protocol}",
    )
    assert (worker.health() or {}).get("status") == "ok"
    assert '"sasl_password": "***"' in worker.log_path.read_text()  # the settings line, masked
    assert_secret_not_exposed(worker, secure_kafka.password)


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
async def test_a_wrong_password_stops_the_worker_with_one_line_and_processes_nothing(
    secure_kafka: SecureKafka,
    secure_topics: Topics,
    workers: list[WorkerProcess],
    tmp_path: Path,
    protocol: str,
) -> None:
    wrong = secrets.token_urlsafe(24)
    env = worker_env(secure_kafka, protocol, wrong, tmp_path)
    server = secure_kafka.bootstrap(protocol)
    worker = WorkerProcess(server, secure_topics, tmp_path, env=env)
    workers.append(worker)
    # Events are waiting: had the worker got in, it would have read them.
    await produce_authenticated(
        secure_kafka, protocol, scenarios.covariate_shift(n=50), secure_topics
    )

    # The start-up probe is refused before Faust starts; the worker says so and exits.
    assert fails_to_start(worker) == (
        f"driftline: authentication failed for user {USER} at {server} with {MECHANISM} "
        "(check DRIFTLINE_SASL_USERNAME / DRIFTLINE_SASL_PASSWORD)"
    )
    # Nothing was read: the worker's consumer group never committed an offset.
    assert await committed_offsets(secure_kafka, worker.app_id) == {}
    assert_secret_not_exposed(worker, wrong)
    assert_secret_not_exposed(worker, secure_kafka.password)


async def test_a_broker_certificate_the_worker_does_not_trust_stops_it_with_one_line(
    secure_kafka: SecureKafka, secure_topics: Topics, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    env = worker_env(secure_kafka, "SASL_SSL", secure_kafka.password, tmp_path)
    del env["DRIFTLINE_SSL_CAFILE"]  # the system's CAs only: the test CA is unknown to them
    server = secure_kafka.bootstrap("SASL_SSL")
    worker = WorkerProcess(server, secure_topics, tmp_path, env=env)
    workers.append(worker)
    assert fails_to_start(worker) == (
        f"driftline: cannot connect to Kafka at {server}: its TLS certificate is not trusted "
        "(check DRIFTLINE_SSL_CAFILE / DRIFTLINE_SSL_CHECK_HOSTNAME)"
    )
    assert_secret_not_exposed(worker, secure_kafka.password)


async def test_a_worker_without_sasl_at_a_sasl_listener_stops_with_one_line(
    secure_kafka: SecureKafka, secure_topics: Topics, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    # PLAINTEXT (the default) at a SASL_PLAINTEXT listener: the broker answers the version
    # request, then drops a client that asks for metadata without logging in.
    server = secure_kafka.bootstrap("SASL_PLAINTEXT")
    worker = WorkerProcess(server, secure_topics, tmp_path)
    workers.append(worker)
    assert fails_to_start(worker) == (
        f"driftline: cannot connect to Kafka at {server}: the connection was closed during the "
        "handshake (check DRIFTLINE_SECURITY_PROTOCOL / DRIFTLINE_BOOTSTRAP_SERVERS)"
    )


async def test_the_tls_listener_is_verified_against_the_test_ca(
    secure_kafka: SecureKafka, caplog: pytest.LogCaptureFixture
) -> None:
    # A client trusting only the system's CAs must refuse the broker's certificate: TLS is
    # real, and the CA file given to the worker is what made it trust the broker.
    producer = AIOKafkaProducer(
        bootstrap_servers=secure_kafka.bootstrap("SASL_SSL"),
        security_protocol="SASL_SSL",
        sasl_mechanism=MECHANISM,
        sasl_plain_username=USER,
        sasl_plain_password=secure_kafka.password,
        ssl_context=create_ssl_context(),
        request_timeout_ms=10_000,
    )
    caplog.set_level(logging.ERROR, logger="aiokafka")
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
