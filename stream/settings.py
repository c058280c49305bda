"""Settings, read from ``DRIFTLINE_*`` environment variables.

Every setting has a default that works on a laptop with ``driftline kafka start``. Secrets (the
SASL password) come from the environment or from a file named by ``*_FILE``; they are never
printed, logged or exported as metrics: :meth:`Settings.describe` masks them.

Examples
--------
>>> s = Settings.from_env({"DRIFTLINE_BOOTSTRAP_SERVERS": "kafka:9092",
...                        "DRIFTLINE_TOPIC_LABELS": "prod.labels",
...                        "DRIFTLINE_MAX_FEATURES": "200"})
>>> s.bootstrap_servers, s.topics.labels, s.limits.max_features
('kafka:9092', 'prod.labels', 200)
>>> Settings.from_env({"DRIFTLINE_WEB_PORT": "http"})
Traceback (most recent call last):
...
stream.settings.SettingsError: DRIFTLINE_WEB_PORT: expected an integer, got 'http'
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas import Limits, Topics

__all__ = ["Settings", "SettingsError", "KafkaSecurity"]

PREFIX = "DRIFTLINE_"
_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
#: Settings that only a SASL protocol uses (``SASL_PASSWORD_FILE`` is not one: see from_env).
_SASL_SETTINGS = ("SASL_MECHANISM", "SASL_USERNAME", "SASL_PASSWORD")
#: Settings that only a TLS protocol uses.
_SSL_SETTINGS = ("SSL_CAFILE", "SSL_CERTFILE", "SSL_KEYFILE", "SSL_CHECK_HOSTNAME")


class SettingsError(ValueError):
    """A setting is missing, malformed or inconsistent; the message names the variable."""


@dataclass(frozen=True)
class KafkaSecurity:
    """How driftline authenticates to Kafka. The password is held, never shown."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True

    def __post_init__(self) -> None:
        given = {
            "SASL_MECHANISM": self.sasl_mechanism,
            "SASL_USERNAME": self.sasl_username,
            "SASL_PASSWORD": self.sasl_password,
            "SSL_CAFILE": self.ssl_cafile,
            "SSL_CERTFILE": self.ssl_certfile,
            "SSL_KEYFILE": self.ssl_keyfile,
            "SSL_CHECK_HOSTNAME": None if self.ssl_check_hostname else False,
        }
        self.check_protocol(
            self.protocol, [name for name, value in given.items() if value is not None]
        )
        if self.protocol.startswith("SASL_"):
            if self.sasl_mechanism not in _SASL_MECHANISMS:
                raise SettingsError(
                    f"{PREFIX}SASL_MECHANISM: {self.sasl_mechanism!r} is not one of "
                    f"{_SASL_MECHANISMS} (required with {self.protocol})"
                )
            if not self.sasl_username or not self.sasl_password:
                raise SettingsError(
                    f"{PREFIX}SASL_USERNAME and {PREFIX}SASL_PASSWORD (or "
                    f"{PREFIX}SASL_PASSWORD_FILE) are required with {self.protocol}"
                )
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise SettingsError(f"{PREFIX}{name.upper()}: no file at {path}")

    @staticmethod
    def check_protocol(protocol: str, given: Iterable[str], *, default: bool = False) -> None:
        """Refuse an unknown protocol, and settings the protocol would silently ignore.

        ``given`` names the settings that were given (``"SASL_USERNAME"``, ``"SSL_CAFILE"``,
        ...); ``default`` says the protocol is PLAINTEXT because none was set. The message names
        the variables, never their values.
        """
        if protocol not in _SECURITY_PROTOCOLS:
            raise SettingsError(
                f"{PREFIX}SECURITY_PROTOCOL: {protocol!r} is not one of {_SECURITY_PROTOCOLS}"
            )
        given = set(given)
        groups: list[tuple[list[str], str]] = []
        if not protocol.startswith("SASL_"):
            sasl = [name for name in _SASL_SETTINGS if name in given]
            groups.append((sasl, "SASL settings need SASL_PLAINTEXT or SASL_SSL"))
        if protocol not in ("SSL", "SASL_SSL"):
            ssl = [name for name in _SSL_SETTINGS if name in given]
            groups.append((ssl, "SSL settings need SSL or SASL_SSL"))
        unused = [name for names, _ in groups for name in names]
        needs = [need for names, need in groups if names]
        if unused:
            names = ", ".join(PREFIX + name for name in unused)
            verb = "is" if len(unused) == 1 else "are"
            shown = f"{protocol} (the default)" if default else protocol
            raise SettingsError(
                f"{names} {verb} set, but {PREFIX}SECURITY_PROTOCOL is {shown}: " + "; ".join(needs)
            )

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka clients (producer, consumer, admin)."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            context = create_ssl_context(
                cafile=str(self.ssl_cafile) if self.ssl_cafile else None,
                certfile=str(self.ssl_certfile) if self.ssl_certfile else None,
                keyfile=str(self.ssl_keyfile) if self.ssl_keyfile else None,
            )
            context.check_hostname = self.ssl_check_hostname
            kwargs["ssl_context"] = context
        if self.protocol.startswith("SASL_"):
            kwargs.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password,
            )
        return kwargs


@dataclass(frozen=True)
class Settings:
    """Everything the worker, replay and the demo need to know."""

    bootstrap_servers: str = "127.0.0.1:9092"
    #: Consumer group and Faust app id; workers with the same id share the partitions.
    app_id: str = "driftline"
    topics: Topics = field(default_factory=Topics)
    limits: Limits = field(default_factory=Limits)
    security: KafkaSecurity = field(default_factory=KafkaSecurity)
    #: Interface and port of the HTTP server (``/metrics``, ``/healthz``).
    web_host: str = "0.0.0.0"  # noqa: S104 - Prometheus scrapes from another host by default
    web_port: int = 6066
    #: Optional per-model YAML configuration (thresholds, feature types).
    config_file: Path | None = None
    #: Partitions for topics driftline creates; input topics must share one count.
    partitions: int = 8
    replication_factor: int = 1
    #: Caps on what untrusted input can make driftline track (memory and metric series).
    max_models: int = 1_000
    max_features_per_model: int = 100
    #: Most predictions waiting for their label, over all models (the largest stores give up
    #: their oldest first): ~300 bytes each.
    max_pending_predictions: int = 1_000_000
    #: CloudEvents ``source`` of every alert and command.
    source: str = "/driftline"
    #: Compacted topic holding each model's state (default: ``<app_id>.state``).
    state_topic: str | None = None
    #: HMAC key signing state records; with one set, unsigned or tampered state is refused.
    state_key: bytes | None = field(default=None, repr=False)
    #: Seconds between checkpoints (state written, then input offsets committed). Each round
    #: costs ~2.5 ms of CPU per changed model (20 features), spread between fetches; rarer rounds
    #: keep the latency tail down, at the price of more events re-read after a crash.
    checkpoint_interval: float = 30.0
    #: Seconds between stall checks on the wall clock.
    tick_interval: float = 1.0
    #: Most records handed to the core per fetch.
    max_batch: int = 20_000
    #: The three input topics are applied in record-timestamp order, per partition number
    #: (stream/ordering.py): records wait for older ones of another topic that are in Kafka but
    #: not fetched yet, never for a caught-up partition. A safety valve: after this many seconds
    #: without progress (a partition's leader away for long), they are applied anyway.
    order_wait: float = 30.0
    #: Where a fresh consumer group starts reading: ``earliest`` (the backlog) or ``latest``.
    auto_offset_reset: str = "earliest"
    #: Faust's working directory (it writes nothing else there with driftline's setup).
    data_dir: Path | None = None
    #: The status page (``/``, ``/models/...``) and its JSON API (``/api/...``); off: only
    #: ``/metrics`` and ``/healthz`` are served.
    web_ui: bool = True
    #: Seconds between two points of the page's series, and points kept per series (the
    #: defaults: 24 h at one-minute steps).
    history_step: float = 60.0
    history_points: int = 1_440
    #: ``driftline act``: its consumer group (default ``<app_id>.act``), the port of its
    #: ``/metrics`` and ``/healthz``, and its compacted log of acted-on ids (default
    #: ``<commands topic>.acted``).
    act_group: str | None = None
    act_web_port: int = 6067
    acted_topic: str | None = None

    def __post_init__(self) -> None:
        if not self.bootstrap_servers.strip():
            raise SettingsError(f"{PREFIX}BOOTSTRAP_SERVERS must not be empty")
        if not 0 < self.web_port < 65536:
            raise SettingsError(f"{PREFIX}WEB_PORT: {self.web_port} is not a TCP port")
        for name in (
            "partitions",
            "replication_factor",
            "max_models",
            "max_features_per_model",
            "max_pending_predictions",
        ):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{PREFIX}{name.upper()} must be positive")
        if self.config_file is not None and not Path(self.config_file).is_file():
            raise SettingsError(f"{PREFIX}CONFIG_FILE: no file at {self.config_file}")
        if self.checkpoint_interval <= 0 or self.tick_interval <= 0:
            raise SettingsError(f"{PREFIX}CHECKPOINT_INTERVAL and TICK_INTERVAL must be positive")
        if self.max_batch <= 0:
            raise SettingsError(f"{PREFIX}MAX_BATCH must be positive")
        if self.history_step < 0.1 or not 2 <= self.history_points <= 100_000:
            raise SettingsError(
                f"{PREFIX}HISTORY_STEP must be at least 0.1 s and HISTORY_POINTS 2 to 100,000"
            )
        if self.order_wait < 0:
            raise SettingsError(f"{PREFIX}ORDER_WAIT must not be negative")
        if self.auto_offset_reset not in ("earliest", "latest"):
            raise SettingsError(f"{PREFIX}AUTO_OFFSET_RESET must be earliest or latest")
        if self.state_key is not None and len(self.state_key) < 16:
            raise SettingsError(f"{PREFIX}STATE_KEY must be at least 16 bytes")
        state = self.state_topic_name
        if state in self.topics.all():
            raise SettingsError(f"{PREFIX}TOPIC_STATE must differ from the other topics")
        if not 0 < self.act_web_port < 65536:
            raise SettingsError(f"{PREFIX}ACT_WEB_PORT: {self.act_web_port} is not a TCP port")
        if self.acted_topic_name in [*self.topics.all(), state]:
            raise SettingsError(f"{PREFIX}TOPIC_ACTED must differ from the other topics")

    @property
    def act_group_name(self) -> str:
        return self.act_group or f"{self.app_id}.act"

    @property
    def acted_topic_name(self) -> str:
        return self.acted_topic or f"{self.topics.commands}.acted"

    @property
    def state_topic_name(self) -> str:
        return self.state_topic or f"{self.app_id}.state"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``environ`` (default: ``os.environ``)."""
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        topics = Topics(
            **{
                f.name: reader.text(f"TOPIC_{f.name.upper()}", getattr(Topics(), f.name))
                for f in dataclasses.fields(Topics)
            }
        )
        try:
            limits = Limits(
                **{
                    f.name: reader.integer(f.name.upper(), getattr(Limits(), f.name))
                    for f in dataclasses.fields(Limits)
                }
            )
        except ValueError as exc:
            raise SettingsError(f"{PREFIX}MAX_*: {exc}") from None
        protocol = reader.text("SECURITY_PROTOCOL", "PLAINTEXT").upper()
        # SASL or SSL settings the protocol would ignore are an error, checked before any of
        # them is read. DRIFTLINE_SASL_PASSWORD counts (it is only ever set on purpose);
        # DRIFTLINE_SASL_PASSWORD_FILE does not, and is read only when the protocol uses it: a
        # deployment may mount an (optional, absent) secret file for a PLAINTEXT cluster, as
        # deploy/kubernetes/deployment.yaml does.
        given = [name for name in _SASL_SETTINGS + _SSL_SETTINGS if reader.optional(name)]
        KafkaSecurity.check_protocol(
            protocol, given, default=reader.optional("SECURITY_PROTOCOL") is None
        )
        security = KafkaSecurity(
            protocol=protocol,
            sasl_mechanism=reader.optional("SASL_MECHANISM"),
            sasl_username=reader.optional("SASL_USERNAME"),
            sasl_password=reader.secret("SASL_PASSWORD") if protocol.startswith("SASL_") else None,
            ssl_cafile=reader.path("SSL_CAFILE"),
            ssl_certfile=reader.path("SSL_CERTFILE"),
            ssl_keyfile=reader.path("SSL_KEYFILE"),
            ssl_check_hostname=reader.boolean("SSL_CHECK_HOSTNAME", True),
        )
        defaults = cls.__dataclass_fields__
        return cls(
            bootstrap_servers=reader.text(
                "BOOTSTRAP_SERVERS", defaults["bootstrap_servers"].default
            ),
            app_id=reader.text("APP_ID", defaults["app_id"].default),
            topics=topics,
            limits=limits,
            security=security,
            web_host=reader.text("WEB_HOST", defaults["web_host"].default),
            web_port=reader.integer("WEB_PORT", defaults["web_port"].default),
            config_file=reader.path("CONFIG_FILE"),
            partitions=reader.integer("PARTITIONS", defaults["partitions"].default),
            replication_factor=reader.integer(
                "REPLICATION_FACTOR", defaults["replication_factor"].default
            ),
            max_models=reader.integer("MAX_MODELS", defaults["max_models"].default),
            max_features_per_model=reader.integer(
                "MAX_FEATURES_PER_MODEL", defaults["max_features_per_model"].default
            ),
            max_pending_predictions=reader.integer(
                "MAX_PENDING_PREDICTIONS", defaults["max_pending_predictions"].default
            ),
            source=reader.text("SOURCE", defaults["source"].default),
            state_topic=reader.optional("TOPIC_STATE"),
            state_key=_encoded(reader.secret("STATE_KEY")),
            checkpoint_interval=reader.number(
                "CHECKPOINT_INTERVAL", defaults["checkpoint_interval"].default
            ),
            tick_interval=reader.number("TICK_INTERVAL", defaults["tick_interval"].default),
            max_batch=reader.integer("MAX_BATCH", defaults["max_batch"].default),
            order_wait=reader.number("ORDER_WAIT", defaults["order_wait"].default),
            auto_offset_reset=reader.text(
                "AUTO_OFFSET_RESET", defaults["auto_offset_reset"].default
            ).lower(),
            data_dir=reader.path("DATA_DIR"),
            web_ui=reader.boolean("WEB_UI", defaults["web_ui"].default),
            history_step=reader.number("HISTORY_STEP", defaults["history_step"].default),
            history_points=reader.integer("HISTORY_POINTS", defaults["history_points"].default),
            act_group=reader.optional("ACT_GROUP"),
            act_web_port=reader.integer("ACT_WEB_PORT", defaults["act_web_port"].default),
            acted_topic=reader.optional("TOPIC_ACTED"),
        )

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def kafka_kwargs(self) -> dict[str, Any]:
        """Connection keyword arguments for any aiokafka client."""
        return {"bootstrap_servers": self.bootstrap_servers, **self.security.client_kwargs()}

    def describe(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets masked: safe to print and log."""
        out = dataclasses.asdict(self)
        security = out["security"]
        if security.get("sasl_password"):
            security["sasl_password"] = "***"  # noqa: S105 - the mask, not a password
        out["state_key"] = "***" if self.state_key else None
        out["state_topic"] = self.state_topic_name
        out["act_group"] = self.act_group_name
        out["acted_topic"] = self.acted_topic_name
        return _stringify(out)


def _encoded(secret: str | None) -> bytes | None:
    return None if secret is None else secret.encode()


def _stringify(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stringify(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def optional(self, name: str) -> str | None:
        value = self.env.get(PREFIX + name)
        return value.strip() if value is not None and value.strip() else None

    def text(self, name: str, default: str) -> str:
        return self.optional(name) or default

    def integer(self, name: str, default: int) -> int:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            return int(raw.replace("_", ""))
        except ValueError:
            raise SettingsError(f"{PREFIX}{name}: expected an integer, got {raw!r}") from None

    def number(self, name: str, default: float) -> float:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{PREFIX}{name}: expected a number, got {raw!r}") from None

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.optional(name)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{PREFIX}{name}: expected true or false, got {raw!r}")

    def path(self, name: str) -> Path | None:
        raw = self.optional(name)
        return Path(raw).expanduser() if raw else None

    def secret(self, name: str) -> str | None:
        """A secret from ``DRIFTLINE_<NAME>`` or the file named by ``DRIFTLINE_<NAME>_FILE``."""
        direct = self.env.get(PREFIX + name)
        file_name = self.optional(name + "_FILE")
        if direct and file_name:
            raise SettingsError(f"set {PREFIX}{name} or {PREFIX}{name}_FILE, not both")
        if file_name:
            try:
                return Path(file_name).expanduser().read_text().rstrip("\r\n")
            except OSError as exc:
                # The path is not secret; the contents are never read into a message.
                raise SettingsError(
                    f"{PREFIX}{name}_FILE: cannot read {file_name}: {exc.strerror}"
                ) from None
        return direct or None
