"""A real, single-node Apache Kafka broker (KRaft) for tests, the demo and laptops.

The broker's jars come from Maven Central through the dependency-only Maven file
``deploy/kafka/pom.xml`` (one pinned Kafka version) into an ignored cache folder. No Docker, no
tarball: ``java -cp 'libs/*' kafka.Kafka server.properties``.

Layout of a data dir::

    server.properties   log4j2.properties   broker.pid   server.log   stdout.log   kraft/

Optionally (:class:`SaslListeners`) the broker also listens with SASL_SSL and/or SASL_PLAINTEXT
(SCRAM) on ports of their own, with SCRAM users created when the storage is formatted; the
PLAINTEXT listener stays and keeps carrying controller and admin traffic.

Examples
--------
>>> broker = LocalKafka(BrokerConfig(port=19092, data_dir=Path("/tmp/k")))
>>> broker.bootstrap_servers
'127.0.0.1:19092'
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "BrokerConfig",
    "BrokerError",
    "LocalKafka",
    "SaslListeners",
    "ScramUser",
    "cache_dir",
    "kafka_version",
]

_PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT_ROOT = _PACKAGE_DIR.parent
_DEFAULT_JVM_OPTS = "-Xms256m -Xmx1g -XX:+UseSerialGC"
_READY_LINE = "Kafka Server started"
#: SCRAM mechanisms Kafka's ``StorageTool format --add-scram`` accepts, with their hash.
_SCRAM_HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
_SCRAM_ITERATIONS = 4096  # Kafka's default and its minimum for both mechanisms
_KEYSTORE_TYPES = ("PKCS12", "JKS", "PEM")


class BrokerError(RuntimeError):
    """The broker could not be fetched, started or stopped; the message says why."""


def _in_checkout() -> bool:
    return (_CHECKOUT_ROOT / "pyproject.toml").is_file() and (
        _CHECKOUT_ROOT / "deploy" / "kafka" / "pom.xml"
    ).is_file()


def cache_dir() -> Path:
    """Where jars and default broker data live: ``DRIFTLINE_CACHE_DIR``, else ``.cache`` in a
    source checkout, else ``~/.cache/driftline``."""
    configured = os.environ.get("DRIFTLINE_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    if _in_checkout():
        return _CHECKOUT_ROOT / ".cache"
    return Path.home() / ".cache" / "driftline"


def pom_path() -> Path:
    """The Maven file: the checkout's ``deploy/kafka/pom.xml``, or the installed copy."""
    if _in_checkout():
        return _CHECKOUT_ROOT / "deploy" / "kafka" / "pom.xml"
    return _PACKAGE_DIR / "kafka_pom.xml"


def kafka_version() -> str:
    """The one Kafka version driftline pins (read from the Maven file, its single source)."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom_path().read_text())
    if not match:
        raise BrokerError(f"no <kafka.version> in {pom_path()}")
    return match.group(1).strip()


def libs_dir() -> Path:
    """The broker's classpath folder: ``DRIFTLINE_KAFKA_LIBS``, else the cache."""
    configured = os.environ.get("DRIFTLINE_KAFKA_LIBS")
    if configured:
        return Path(configured).expanduser()
    return cache_dir() / "kafka" / kafka_version() / "libs"


def fetch_jars(quiet: bool = True) -> Path:
    """Resolve the broker's jars from Maven Central into :func:`libs_dir` (once)."""
    libs = libs_dir()
    marker = libs / f"kafka_2.13-{kafka_version()}.jar"
    if marker.is_file():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Maven (mvn) is needed once to fetch the Kafka broker jars from Maven Central; "
            "install it (apt-get install maven), or set DRIFTLINE_KAFKA_LIBS to a folder "
            "holding the broker's jars"
        )
    libs.mkdir(parents=True, exist_ok=True)
    cmd = [mvn, "-B", "-f", str(pom_path()), f"-Dlibs.dir={libs}", "dependency:copy-dependencies"]
    if quiet:
        cmd.insert(1, "-q")
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not marker.is_file():
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
        raise BrokerError(f"mvn could not fetch the Kafka jars (exit {result.returncode}):\n{tail}")
    return libs


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    candidate = Path(home) / "bin" / "java" if home else None
    if candidate is not None and candidate.is_file():
        return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise BrokerError("java is needed to run the Kafka broker (Java 17+); none on PATH")
    return found


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _argfile_quote(argument: str) -> str:
    # A Java launcher @argument file: one quoted argument per line, \\ and \" escaped.
    return '"' + argument.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _cluster_id() -> str:
    # Kafka's Uuid.randomUuid(): 16 random bytes, URL-safe base64 without padding, never
    # starting with '-' (it would read as a command-line flag).
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


@dataclass(frozen=True)
class ScramUser:
    """A SCRAM user written into the cluster metadata when the storage is formatted."""

    name: str
    password: str = field(repr=False)
    mechanism: str = "SCRAM-SHA-512"

    def __post_init__(self) -> None:
        if self.mechanism not in _SCRAM_HASHES:
            raise BrokerError(f"SCRAM mechanism {self.mechanism!r} is not one of {_SCRAM_HASHES}")
        # Kafka splits the --add-scram value on commas and strips one pair of quotes.
        if not self.name or "," in self.name or '"' in self.name:
            raise BrokerError(f"SCRAM user name {self.name!r} is empty or holds ',' or '\"'")
        if not self.password:
            raise BrokerError(f"SCRAM user {self.name!r} needs a password")

    def add_scram_argument(self) -> str:
        """``--add-scram`` value with a salted password, so the password itself never reaches
        the JVM (the salted one still authenticates against this broker: keep it private)."""
        salt = secrets.token_bytes(16)
        salted = hashlib.pbkdf2_hmac(
            _SCRAM_HASHES[self.mechanism], self.password.encode(), salt, _SCRAM_ITERATIONS
        )
        encode = base64.b64encode
        return (
            f"{self.mechanism}=[name={self.name},iterations={_SCRAM_ITERATIONS},"
            f'salt="{encode(salt).decode()}",saltedpassword="{encode(salted).decode()}"]'
        )


@dataclass
class SaslListeners:
    """Extra SCRAM-authenticated listeners, each on its own port (tests, laptops).

    Clients authenticate as one of ``users``; no authorizer runs, so any authenticated user may
    do anything. The keystore (PKCS12, JKS or PEM with key and certificate chain) serves TLS on
    the SASL_SSL listener; no client certificate is asked for. Users are written when the
    storage is formatted: a data dir formatted earlier keeps the users it was formatted with.
    """

    users: tuple[ScramUser, ...]
    sasl_ssl_port: int | None = None
    keystore: Path | None = None
    keystore_type: str = "PKCS12"
    #: Written to server.properties (mode 0600), where Kafka reads it; Kafka logs it hidden.
    keystore_password: str | None = field(default=None, repr=False)
    sasl_plaintext_port: int | None = None

    def __post_init__(self) -> None:
        self.users = tuple(self.users)
        if not self.users:
            raise BrokerError("SASL listeners need at least one SCRAM user")
        if self.sasl_ssl_port is None and self.sasl_plaintext_port is None:
            raise BrokerError("SASL listeners need sasl_ssl_port, sasl_plaintext_port or both")
        if self.keystore_type not in _KEYSTORE_TYPES:
            raise BrokerError(
                f"keystore type {self.keystore_type!r} is not one of {_KEYSTORE_TYPES}"
            )
        if self.sasl_ssl_port is not None:
            if self.keystore is None:
                raise BrokerError("the SASL_SSL listener needs a keystore")
            self.keystore = Path(self.keystore).expanduser().resolve()
            if self.keystore_type != "PEM" and not self.keystore_password:
                raise BrokerError(f"a {self.keystore_type} keystore needs its password")

    @property
    def mechanisms(self) -> list[str]:
        return sorted({user.mechanism for user in self.users})

    def named_ports(self) -> dict[str, int]:
        """Listener name (same as its security protocol) to port, for the listeners in use."""
        ports = {"SASL_SSL": self.sasl_ssl_port, "SASL_PLAINTEXT": self.sasl_plaintext_port}
        return {name: port for name, port in ports.items() if port is not None}

    def properties(self) -> dict[str, str]:
        """``server.properties`` entries for the listeners (merged into the base ones)."""
        out: dict[str, str] = {}
        for name in self.named_ports():
            prefix = f"listener.name.{name.lower()}"
            out[f"{prefix}.sasl.enabled.mechanisms"] = ",".join(self.mechanisms)
            for mechanism in self.mechanisms:
                # Broker side of SCRAM: credentials come from the cluster metadata, so the
                # login module needs no user of its own (no inter-broker SASL here).
                out[f"{prefix}.{mechanism.lower()}.sasl.jaas.config"] = (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                )
            if name == "SASL_SSL":
                out[f"{prefix}.ssl.keystore.location"] = str(self.keystore)
                out[f"{prefix}.ssl.keystore.type"] = self.keystore_type
                if self.keystore_password:
                    out[f"{prefix}.ssl.keystore.password"] = self.keystore_password
                out[f"{prefix}.ssl.client.auth"] = "none"
        return out


@dataclass
class BrokerConfig:
    """Where and how one local broker runs."""

    port: int = 9092
    data_dir: Path = field(default_factory=lambda: cache_dir() / "kafka-data")
    controller_port: int | None = None  # default: port + 1
    host: str = "127.0.0.1"
    #: Extra ``server.properties`` entries (tests add SASL/SSL listeners here).
    properties: dict[str, str] = field(default_factory=dict)
    jvm_opts: str = field(
        default_factory=lambda: os.environ.get("DRIFTLINE_KAFKA_JVM_OPTS", _DEFAULT_JVM_OPTS)
    )
    #: Optional SASL_SSL / SASL_PLAINTEXT listeners with SCRAM users (None: PLAINTEXT only).
    sasl: SaslListeners | None = None

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser().resolve()
        if self.controller_port is None:
            self.controller_port = self.port + 1


class LocalKafka:
    """Format, start, probe and stop one single-node KRaft broker."""

    def __init__(self, config: BrokerConfig | None = None) -> None:
        self.config = config or BrokerConfig()
        self._process: subprocess.Popen[bytes] | None = None

    # -- paths -------------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    @property
    def sasl_ssl_bootstrap_servers(self) -> str:
        """``host:port`` of the SASL_SSL listener (BrokerError when there is none)."""
        if self.config.sasl is None or self.config.sasl.sasl_ssl_port is None:
            raise BrokerError("this broker has no SASL_SSL listener")
        return f"{self.config.host}:{self.config.sasl.sasl_ssl_port}"

    @property
    def sasl_plaintext_bootstrap_servers(self) -> str:
        """``host:port`` of the SASL_PLAINTEXT listener (BrokerError when there is none)."""
        if self.config.sasl is None or self.config.sasl.sasl_plaintext_port is None:
            raise BrokerError("this broker has no SASL_PLAINTEXT listener")
        return f"{self.config.host}:{self.config.sasl.sasl_plaintext_port}"

    @property
    def _pid_file(self) -> Path:
        return self.config.data_dir / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.config.data_dir / "server.log"

    @property
    def _properties_file(self) -> Path:
        return self.config.data_dir / "server.properties"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> float:
        """Start the broker unless it already runs; return seconds until it accepted requests."""
        begin = time.monotonic()
        if self.pid() is not None:
            return 0.0
        cfg = self.config
        if _port_open(cfg.host, cfg.port):
            raise BrokerError(
                f"port {cfg.port} on {cfg.host} is already taken by another process; "
                "choose another with --port"
            )
        for port in cfg.sasl.named_ports().values() if cfg.sasl else []:
            if _port_open(cfg.host, port):
                raise BrokerError(f"SASL listener port {port} on {cfg.host} is already taken")
        libs = fetch_jars()
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        classpath = f"{libs}/*"
        java = _java()
        if not (cfg.data_dir / "kraft" / "meta.properties").is_file():
            self._format(java, classpath)
        command = [
            java,
            *cfg.jvm_opts.split(),
            f"-Dlog4j2.configurationFile={cfg.data_dir / 'log4j2.properties'}",
            "-cp",
            classpath,
            "kafka.Kafka",
            str(self._properties_file),
        ]
        if self.log_file.exists():
            self.log_file.unlink()
        with open(cfg.data_dir / "stdout.log", "wb") as stdout:
            self._process = subprocess.Popen(
                command,
                stdout=stdout,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # outlives `driftline kafka start`; not hit by Ctrl-C
                cwd=cfg.data_dir,
            )
        self._pid_file.write_text(str(self._process.pid))
        deadline = begin + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._pid_file.unlink(missing_ok=True)
                raise BrokerError(
                    f"the broker exited with code {self._process.returncode} while starting:\n"
                    + self._log_tail()
                )
            if _port_open(cfg.host, cfg.port) and self._saw_ready_line():
                return time.monotonic() - begin
            time.sleep(0.1)
        self.stop()
        raise BrokerError(f"the broker did not start within {timeout:.0f}s:\n{self._log_tail()}")

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop the broker cleanly (SIGTERM, then SIGKILL past ``timeout``); True if it ran."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._alive(pid):
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
            while self._alive(pid):
                time.sleep(0.05)
        self._pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """SIGKILL the broker (fault-injection tests): no clean shutdown."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while self._alive(pid):
                time.sleep(0.05)
            self._pid_file.unlink(missing_ok=True)

    def pid(self) -> int | None:
        """The running broker's pid, or None. Stale pid files are ignored."""
        try:
            pid = int(self._pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if not self._alive(pid) or not self._is_our_broker(pid):
            return None
        return pid

    def status(self) -> dict[str, object]:
        pid = self.pid()
        return {
            "running": pid is not None,
            "pid": pid,
            "bootstrap_servers": self.bootstrap_servers,
            "accepting": pid is not None and _port_open(self.config.host, self.config.port),
            "kafka_version": kafka_version(),
            "data_dir": str(self.config.data_dir),
        }

    # -- internals ---------------------------------------------------------------------------

    def _alive(self, pid: int) -> bool:
        if self._process is not None and self._process.pid == pid:
            return self._process.poll() is None  # reaps our own child
        try:
            with open(f"/proc/{pid}/stat") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
            return state not in ("Z", "X")
        except (FileNotFoundError, IndexError):
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def _is_our_broker(self, pid: int) -> bool:
        # Guard against pid reuse: only signal a java process running our server.properties.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return True  # no /proc (not Linux): trust the pid file
        return str(self._properties_file).encode() in cmdline

    def _saw_ready_line(self) -> bool:
        try:
            return _READY_LINE in self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return False

    def _log_tail(self, lines: int = 30) -> str:
        chunks = []
        for path in (self.log_file, self.config.data_dir / "stdout.log"):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                chunks.append(f"--- {path} ---\n" + "\n".join(text))
        return "\n".join(chunks) or "(no broker output)"

    def _format(self, java: str, classpath: str) -> None:
        jvm = [
            java,
            "-cp",
            classpath,
            f"-Dlog4j2.configurationFile={self.config.data_dir / 'log4j2.properties'}",
        ]
        tool = [
            "kafka.tools.StorageTool",
            "format",
            "-t",
            _cluster_id(),
            "-c",
            str(self._properties_file),
        ]
        if self.config.sasl is None:
            result = subprocess.run(jvm + tool, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise BrokerError(
                    f"formatting the broker's storage failed:\n{result.stdout}{result.stderr}"
                )
            return
        scram = [user.add_scram_argument() for user in self.config.sasl.users]
        for argument in scram:
            tool += ["--add-scram", argument]
        # StorageTool reads SCRAM users only from its arguments. They hold salted passwords (the
        # passwords never leave Python), and go through a Java @argument file (mode 0600,
        # deleted at once) rather than argv, where `ps` would show them to every local user.
        argfile = self.config.data_dir / "format.args"
        argfile.unlink(missing_ok=True)
        descriptor = os.open(argfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write("".join(f"{_argfile_quote(arg)}\n" for arg in tool))
        try:
            result = subprocess.run(
                [*jvm, f"@{argfile}"], capture_output=True, text=True, check=False
            )
        finally:
            argfile.unlink(missing_ok=True)
        if result.returncode != 0:
            output = result.stdout + result.stderr
            for argument in scram:  # Kafka may echo a bad --add-scram value back
                output = output.replace(argument, "SCRAM-...=[***]")
            raise BrokerError(f"formatting the broker's storage failed:\n{output}")

    def _write_config(self) -> None:
        cfg = self.config
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{cfg.host}:{cfg.controller_port}",
            "listeners": f"PLAINTEXT://{cfg.host}:{cfg.port},CONTROLLER://{cfg.host}:{cfg.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{cfg.host}:{cfg.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(cfg.data_dir / "kraft"),
            # One node: the defaults assume three brokers.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Small and quick on two cores.
            "group.initial.rebalance.delay.ms": "0",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.num.partitions": "1",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "num.partitions": "1",
            "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
            "auto.create.topics.enable": "false",
        }
        if cfg.sasl is not None:
            for name, port in cfg.sasl.named_ports().items():
                properties["listeners"] += f",{name}://{cfg.host}:{port}"
                properties["advertised.listeners"] += f",{name}://{cfg.host}:{port}"
                properties["listener.security.protocol.map"] += f",{name}:{name}"
            properties.update(cfg.sasl.properties())
        properties.update(cfg.properties)
        text = "# Written by driftline on every start; edit BrokerConfig.properties instead.\n"
        text += "".join(f"{k}={v}\n" for k, v in properties.items())
        if cfg.sasl is not None:
            # It may hold the keystore password: readable by its owner only.
            self._properties_file.touch(mode=0o600)
            self._properties_file.chmod(0o600)
        self._properties_file.write_text(text)
        (cfg.data_dir / "log4j2.properties").write_text(
            "status = warn\n"
            "appender.file.type = File\n"
            "appender.file.name = FILE\n"
            f"appender.file.fileName = {self.log_file}\n"
            "appender.file.layout.type = PatternLayout\n"
            "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = INFO\n"
            "rootLogger.appenderRef.file.ref = FILE\n"
            # The state-change and request loggers are noisy at INFO and say nothing useful here.
            "logger.statechange.name = state.change.logger\n"
            "logger.statechange.level = WARN\n"
            "logger.request.name = kafka.request.logger\n"
            "logger.request.level = WARN\n"
        )
