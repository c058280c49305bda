"""Run ``driftline worker`` as users run it, and read what it exposes.

One harness for the demo, the benchmarks and the broker tests: the worker in a process of its
own, configured by environment only (as in production); its ``/metrics`` read with
prometheus_client's own text parser; topics created with aiokafka's admin client.

>>> scrape = Scrape('driftline_events_total{topic="t",outcome="ok"} 3.0\\n'
...                 'driftline_events_total{topic="t",outcome="deadletter"} 1.0\\n')
>>> scrape.total("driftline_events_total"), scrape.value("driftline_events_total", outcome="ok")
(4.0, 3.0)
>>> sorted(scrape.label_values("driftline_events_total", "outcome"))
['deadletter', 'ok']
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, Self

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from schemas import Topics

__all__ = [
    "ActProcess",
    "PrometheusServer",
    "Scrape",
    "WorkerProcess",
    "create_topics",
    "free_port",
    "prefixed_topics",
    "topic_environment",
]

_CHECKOUT = Path(__file__).resolve().parents[1]  # holds stream/, detectors/, schemas/


def free_port(preferred: int | None = None) -> int:
    """A free TCP port on 127.0.0.1: ``preferred`` if it is free, else any."""
    with socket.socket() as s:
        if preferred is not None:
            try:
                s.bind(("127.0.0.1", preferred))
                return preferred
            except OSError:
                pass
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prefixed_topics(prefix: str) -> Topics:
    """The contract's six topics, each name under ``prefix``."""
    defaults = Topics()
    return Topics(**{f.name: f"{prefix}.{getattr(defaults, f.name)}" for f in fields(Topics)})


def topic_environment(topics: Topics) -> dict[str, str]:
    """The settings that point a worker at ``topics``."""
    return {f"DRIFTLINE_TOPIC_{f.name.upper()}": getattr(topics, f.name) for f in fields(Topics)}


async def create_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int = 4,
    configs: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Create the topics of ``names`` that do not exist yet (``configs``: per topic)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, partitions, 1, topic_configs=dict((configs or {}).get(name, {})))
            for name in dict.fromkeys(names)
            if name not in existing
        ]
        if missing:
            await admin.create_topics(missing)
    finally:
        await admin.close()


class Scrape:
    """One read of ``/metrics``: every sample, by name and labels."""

    def __init__(self, text: str) -> None:
        self.samples: list[tuple[str, dict[str, str], float]] = [
            (sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def of(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        """(labels, value) of every sample of ``name`` that has these labels."""
        return [
            (have, value)
            for sample_name, have, value in self.samples
            if sample_name == name and all(have.get(k) == v for k, v in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float:
        """The first matching sample's value; 0 when there is none."""
        found = self.of(name, **labels)
        return found[0][1] if found else 0.0

    def total(self, name: str, **labels: str) -> float:
        """The sum of the matching samples."""
        return sum(value for _, value in self.of(name, **labels))

    def label_values(self, name: str, label: str) -> set[str]:
        return {have[label] for have, _ in self.of(name) if label in have}


class WorkerProcess:
    """One ``driftline worker`` process.

    Parameters
    ----------
    bootstrap, topics
        The broker and the topics the worker reads and writes.
    workdir
        Where its log, configuration file and local data go.
    app_id
        Its consumer group (one per worker group); a fresh one by default.
    config
        A YAML configuration, written to a file the worker is pointed at.
    env
        More settings (``DRIFTLINE_*``), over the harness's own.
    partitions, log_level
        ``DRIFTLINE_PARTITIONS`` and the worker's ``-l``.
    code
        A checkout whose packages to run instead of this one (a benchmark's baseline).
    python
        The interpreter to run it with (a benchmark's runtime-only environment: this
        checkout's packages on its path); this process's own by default.
    new_session
        Start it in a session of its own (Ctrl-C in a terminal then reaches the caller only).
    """

    def __init__(
        self,
        bootstrap: str,
        topics: Topics,
        workdir: Path,
        *,
        app_id: str | None = None,
        config: str | None = None,
        env: Mapping[str, str] | None = None,
        partitions: int = 4,
        log_level: str = "info",
        code: Path | None = None,
        python: str | None = None,
        port: int | None = None,
        new_session: bool = False,
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.workdir = workdir
        self.app_id = app_id or f"dl-{uuid.uuid4().hex[:10]}"
        self.port = port or free_port()
        self.partitions = partitions
        self.log_level = log_level
        self.code = code
        self.python = python
        self.new_session = new_session
        self.config_path: Path | None = None
        if config is not None:
            self.config_path = workdir / f"{self.app_id}-{self.port}.yaml"
            self.config_path.write_text(config)
        self.extra_env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.app_id}-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "DRIFTLINE_BOOTSTRAP_SERVERS": self.bootstrap,
                "DRIFTLINE_APP_ID": self.app_id,
                "DRIFTLINE_WEB_PORT": str(self.port),
                "DRIFTLINE_WEB_HOST": "127.0.0.1",
                "DRIFTLINE_PARTITIONS": str(self.partitions),
                "DRIFTLINE_DATA_DIR": str(self.workdir / f"faust-{self.app_id}-{self.port}"),
                **topic_environment(self.topics),
            }
        )
        if self.config_path is not None:
            env["DRIFTLINE_CONFIG_FILE"] = str(self.config_path)
        if self.code is not None or self.python is not None:
            env["PYTHONPATH"] = str(self.code or _CHECKOUT)
        env.update(self.extra_env)
        return env

    # -- life ----------------------------------------------------------------------------------

    def command(self) -> list[str]:
        """The ``driftline`` sub-command and its arguments."""
        return ["worker", "-l", self.log_level]

    def launch(self) -> Self:
        """Start the process and return at once (see :meth:`serving`, :meth:`start`)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.python or sys.executable, "-m", "stream.cli", *self.command()],
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=self.new_session,
            )
        return self

    def start(self, timeout: float = 60.0, *, assigned: bool = True) -> Self:
        """Start the worker and wait until it serves ``/metrics`` and, with ``assigned``,
        reports itself healthy with partitions assigned."""
        self.launch()
        self.wait_for(
            (lambda: self.assigned()) if assigned else self.serving,
            timeout,
            "the worker to start",
        )
        return self

    def serving(self) -> bool:
        """Whether ``/metrics`` answers (with the worker's own metrics)."""
        try:
            return "driftline_models" in self._get("/metrics", timeout=5)
        except OSError:
            return False

    def assigned(self) -> bool:
        """Whether the worker is healthy and owns partitions."""
        health = self.health()
        return bool(health and health.get("status") == "ok" and health.get("partitions"))

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Signal the worker and wait for it (killed after ``timeout``); its exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 60.0, what: str = ""
    ) -> None:
        """Poll ``predicate`` until true; fail with the log's tail if the worker dies first
        or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"worker exited with {self.process.returncode} while waiting for {what}:\n"
                    f"{self.tail()}"
                )
            time.sleep(0.2)
        raise TimeoutError(f"timed out waiting for {what}:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # -- reading -------------------------------------------------------------------------------

    def health(self) -> dict[str, Any] | None:
        """``/healthz`` (its body also while it answers 503), or None while it does not
        answer."""
        try:
            return orjson.loads(self._get("/healthz", timeout=5))
        except urllib.error.HTTPError as error:
            return orjson.loads(error.read())
        except OSError:
            return None

    def metrics(self) -> str:
        """The text of ``/metrics``; an error with the log's tail if the worker has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.tail()}")
        return self._get("/metrics", timeout=30)

    def scrape(self, text: str | None = None) -> Scrape:
        """``/metrics`` parsed (or ``text``, an earlier read of it)."""
        return Scrape(self.metrics() if text is None else text)

    def samples(self, name: str, text: str | None = None) -> list[tuple[dict[str, str], float]]:
        """Every sample of ``name``, as (labels, value)."""
        return self.scrape(text).of(name)

    def sample(self, name: str, text: str | None = None, **labels: str) -> float:
        """The sample of ``name`` with these labels (0 when absent)."""
        return self.scrape(text).value(name, **labels)

    def get_json(self, path: str, timeout: float = 5.0) -> Any:
        """The JSON the worker answers at ``path`` (``/api/models``, ...)."""
        return orjson.loads(self._get(path, timeout))

    def _get(self, path: str, timeout: float) -> str:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=timeout) as response:  # noqa: S310
            return response.read().decode()


class ActProcess(WorkerProcess):
    """One ``driftline act`` process: the same harness, its own consumer group
    (``<app_id>.act``), ``/metrics`` and ``/healthz`` on ``port``; ``config`` is the YAML file
    with the ``actions:`` section; ``dry_run`` adds ``--dry-run``."""

    def __init__(self, *args: Any, dry_run: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dry_run = dry_run

    def command(self) -> list[str]:
        return ["act", "-l", self.log_level, *(["--dry-run"] if self.dry_run else [])]

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env["DRIFTLINE_ACT_WEB_PORT"] = env.pop("DRIFTLINE_WEB_PORT")
        return env

    def serving(self) -> bool:
        try:
            return "driftline_actions_total" in self._get("/metrics", timeout=5)
        except OSError:
            return False


class PrometheusServer:
    """A real Prometheus (Debian's ``prometheus`` package) scraping ``target`` every
    ``interval``, with ``rules`` loaded; its data in ``workdir``."""

    def __init__(
        self, workdir: Path, target: str, *, rules: Path | None = None, interval: str = "1s"
    ) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError(
                "prometheus is needed (Debian package prometheus; .ci/run installs it)"
            )
        self.port = free_port()
        config = workdir / "prometheus.yml"
        config.write_text(
            f"global: {{scrape_interval: {interval}, evaluation_interval: {interval}}}\n"
            + (f"rule_files: [{rules}]\n" if rules is not None else "")
            + "scrape_configs:\n"
            "  - job_name: driftline\n"
            f"    static_configs: [{{targets: ['{target}']}}]\n"
        )
        self.log = (workdir / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:  # noqa: S310
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("prometheus did not become ready")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, **params: str) -> dict:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=5) as r:  # noqa: S310
            body = orjson.loads(r.read())
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus answered {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def wait(self, what: str, predicate: Callable[[], object], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.5)
        raise TimeoutError(f"Prometheus never saw {what}")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)
        self.log.close()
