"""The ``actions:`` section of the YAML file the worker reads: what ``driftline act`` does.

Same shape as the worker's sections: settings for every model (``defaults:``), overrides per
model (``models:``, merged over the defaults one sub-section deep), plus settings of the
process itself::

    actions:
      max_age: 1h                  # older commands (CloudEvent time) are not acted on
      allow:                       # the only models (and MLflow aliases) a rollback may touch
        churn-predictor: [champion]
      retry: {first_delay: 1s, max_delay: 1m, attempts: 10, give_up_after: 10m}
      defaults:
        mlflow: {tracking_uri: "http://mlflow:5000"}
      models:
        churn-predictor:
          mlflow: {registered_model: churn, versions: {"2": "7"}}
          http:
            url: https://hooks.example.com/driftline
            mode: binary
            headers: {Authorization: {env: HOOK_AUTHORIZATION}}
            signature: {header: X-Driftline-Signature, secret: {file: /run/secrets/hook}}
        fraud-detector: {enabled: false}

Secrets (header values, the signing key) are never written in the file: each is a reference
``{env: NAME}`` or ``{file: PATH}``, read once at start. A wrong key, type or value is refused
at start with the path of the entry, and never with a secret's value.

Examples
--------
>>> config = ActionsConfig.from_dict({
...     "allow": {"churn": ["champion"]},
...     "defaults": {"mlflow": {"tracking_uri": "http://127.0.0.1:5000"}},
...     "models": {"fraud": {"enabled": False}}})
>>> config.for_model("churn").mlflow.alias, config.for_model("fraud").enabled
('champion', False)
>>> ActionsConfig.from_dict({"defaults": {"mlflow": {"alais": "x"}}})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
detectors.config.ConfigError: actions.defaults.mlflow.alais: unknown setting; valid: ...
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import yaml

from detectors.config import ConfigError, parse_duration

__all__ = [
    "ActionsConfig",
    "HttpConfig",
    "MlflowConfig",
    "ModelActions",
    "RetryConfig",
    "SecretRef",
    "SignatureConfig",
    "load_actions",
]

#: What an HTTP receiver may be sent (``forward:``); ``alerts`` makes act read the alerts topic.
FORWARDABLE: Final = ("retrain", "rollback", "alerts")
#: Header names a receiver's configuration may not set: act writes them itself.
_RESERVED_HEADERS: Final = ("content-type", "content-length", "host")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")
#: A secret file larger than this is a mistake (a whole directory's worth of bytes, a binary).
_MAX_SECRET_BYTES = 64 * 1024


@dataclass(frozen=True)
class SecretRef:
    """Where a secret comes from: an environment variable or a file. Only the reference is
    shown (``repr``, messages); the value is read by :meth:`read`."""

    env: str | None = None
    file: Path | None = None

    def describe(self) -> str:
        return f"env {self.env}" if self.env else f"file {self.file}"

    def read(self, environ: Mapping[str, str] | None = None) -> str:
        """The secret; a :class:`ConfigError` naming the reference (never the value) when it
        cannot be read."""
        if self.env is not None:
            value = (os.environ if environ is None else environ).get(self.env)
            if not value:
                raise ConfigError(f"environment variable {self.env} is not set or empty")
            return value
        assert self.file is not None
        try:
            with self.file.open("rb") as handle:
                raw = handle.read(_MAX_SECRET_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"cannot read the secret file {self.file}: {exc.strerror}") from None
        if len(raw) > _MAX_SECRET_BYTES:
            raise ConfigError(f"the secret file {self.file} is larger than 64 KiB")
        try:
            value = raw.decode().rstrip("\r\n")
        except UnicodeDecodeError:
            raise ConfigError(f"the secret file {self.file} is not UTF-8 text") from None
        if not value:
            raise ConfigError(f"the secret file {self.file} is empty")
        return value


@dataclass(frozen=True)
class MlflowConfig:
    """The MLflow Model Registry action.

    On ``rollback`` the registered model's ``alias`` is pointed at the MLflow version of
    ``to_version`` and the rolled-back version (``from_version``) is tagged with the command's
    evidence; on ``retrain``, with ``tag_on_retrain``, the version the command names is tagged.
    driftline versions map to MLflow versions by ``versions`` (driftline -> MLflow); a version
    not listed maps to itself.
    """

    #: Tracking/registry server; None: MLflow's own default (``MLFLOW_TRACKING_URI``).
    tracking_uri: str | None = None
    #: Registered model name; None: the model_id.
    registered_model: str | None = None
    alias: str = "champion"
    versions: dict[str, str] = field(default_factory=dict)
    tag_on_retrain: bool = False
    #: Milliseconds one registry call may take (MLflow's own retries are turned off: act's
    #: retry policy is the only one).
    timeout: int = 30_000

    def mlflow_version(self, driftline_version: str) -> str:
        """The MLflow version of a driftline version (``versions``, else the same string).

        >>> MlflowConfig(versions={"v2": "7"}).mlflow_version("v2")
        '7'
        >>> MlflowConfig().mlflow_version("3")
        '3'
        """
        return self.versions.get(driftline_version, driftline_version)


@dataclass(frozen=True)
class SignatureConfig:
    """An HMAC-SHA256 of the request body, hex, sent as ``sha256=<hex>`` in ``header``."""

    header: str
    secret: SecretRef


@dataclass(frozen=True)
class HttpConfig:
    """A CloudEvents HTTP receiver."""

    url: str
    #: ``structured``: the event JSON as the body (``application/cloudevents+json``);
    #: ``binary``: ``ce-*`` headers and the event's data as the body.
    mode: Literal["structured", "binary"] = "structured"
    headers: dict[str, SecretRef] = field(default_factory=dict)
    signature: SignatureConfig | None = None
    #: Milliseconds per request (connection included).
    timeout: int = 10_000
    forward: tuple[str, ...] = ("retrain", "rollback")

    def origin(self) -> str:
        """Scheme, host and port of ``url``: what messages show (a path or a query string may
        hold a token, as many webhook URLs do)."""
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or ''}{port}"


@dataclass(frozen=True)
class ModelActions:
    """What act does for one model (or every model without its own entry)."""

    enabled: bool = True
    mlflow: MlflowConfig | None = None
    http: HttpConfig | None = None


@dataclass(frozen=True)
class RetryConfig:
    """Retries of a failed action: exponential backoff with jitter, capped in count and time.

    ``first_delay``, ``max_delay`` and ``give_up_after`` are milliseconds; ``attempts`` counts
    the first one too.
    """

    first_delay: int = 1_000
    max_delay: int = 60_000
    factor: float = 2.0
    #: Each delay is drawn uniformly within +/- this fraction of its nominal value.
    jitter: float = 0.2
    attempts: int = 10
    give_up_after: int = 600_000


@dataclass(frozen=True)
class ActionsConfig:
    """The whole ``actions:`` section."""

    defaults: ModelActions = field(default_factory=ModelActions)
    models: dict[str, ModelActions] = field(default_factory=dict)
    #: model_id -> MLflow aliases a rollback may move. A model not listed is never rolled
    #: back (by MLflow or by an HTTP receiver).
    allow: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Milliseconds: a command whose CloudEvent ``time`` is older is not acted on.
    max_age: int = 3_600_000
    retry: RetryConfig = field(default_factory=RetryConfig)

    def for_model(self, model_id: str) -> ModelActions:
        return self.models.get(model_id, self.defaults)

    def every_model(self) -> list[ModelActions]:
        return [self.defaults, *self.models.values()]

    @property
    def reads_alerts(self) -> bool:
        """Whether some receiver wants alerts (then act reads the alerts topic too)."""
        return any(m.http and "alerts" in m.http.forward for m in self.every_model())

    @property
    def uses_mlflow(self) -> bool:
        return any(m.enabled and m.mlflow for m in self.every_model())

    @classmethod
    def from_dict(cls, data: Any, where: str = "actions") -> ActionsConfig:
        if data is None:
            return cls()
        raw = _mapping(data, where)
        _known(raw, where, ("defaults", "models", "allow", "max_age", "retry"))
        defaults_raw = _mapping(raw.get("defaults") or {}, f"{where}.defaults")
        defaults = _model(defaults_raw, f"{where}.defaults")
        models = {}
        for model_id, overrides in _mapping(raw.get("models") or {}, f"{where}.models").items():
            path = f"{where}.models.{model_id}"
            merged = dict(defaults_raw)
            for key, value in _mapping(overrides or {}, path).items():
                base = merged.get(key)
                both = isinstance(value, dict) and isinstance(base, dict)
                merged[key] = {**base, **value} if both else value
            models[str(model_id)] = _model(merged, path)
        allow = {}
        for model_id, aliases in _mapping(raw.get("allow") or {}, f"{where}.allow").items():
            path = f"{where}.allow.{model_id}"
            if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
                raise ConfigError(f"{path}: expected a list of MLflow aliases (may be empty)")
            allow[str(model_id)] = tuple(aliases)
        max_age = parse_duration(raw.get("max_age", "1h"), f"{where}.max_age")
        if max_age <= 0:
            raise ConfigError(f"{where}.max_age: must be positive")
        return cls(
            defaults=defaults,
            models=models,
            allow=allow,
            max_age=max_age,
            retry=_retry(raw.get("retry") or {}, f"{where}.retry"),
        )


def load_actions(path: str | Path) -> ActionsConfig:
    """The ``actions:`` section of a YAML file (an empty one when the file has none)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: the configuration must be a mapping")
    try:
        return ActionsConfig.from_dict((data or {}).get("actions"))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


# -- parsing ----------------------------------------------------------------------------------


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _known(raw: dict[str, Any], where: str, valid: tuple[str, ...]) -> None:
    for key in raw:
        if key not in valid:
            raise ConfigError(f"{where}.{key}: unknown setting; valid: {', '.join(valid)}")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def _positive_ms(value: Any, where: str) -> int:
    ms = parse_duration(value, where)
    if ms <= 0:
        raise ConfigError(f"{where}: must be positive")
    return ms


def _model(raw: dict[str, Any], where: str) -> ModelActions:
    _known(raw, where, ("enabled", "mlflow", "http"))
    mlflow = raw.get("mlflow")
    http = raw.get("http")
    return ModelActions(
        enabled=_flag(raw.get("enabled", True), f"{where}.enabled"),
        mlflow=None if mlflow is None else _mlflow(_mapping(mlflow, f"{where}.mlflow"), where),
        http=None if http is None else _http(_mapping(http, f"{where}.http"), where),
    )


def _mlflow(raw: dict[str, Any], parent: str) -> MlflowConfig:
    where = f"{parent}.mlflow"
    _known(
        raw,
        where,
        ("tracking_uri", "registered_model", "alias", "versions", "tag_on_retrain", "timeout"),
    )
    versions = {}
    for key, value in _mapping(raw.get("versions") or {}, f"{where}.versions").items():
        # YAML reads an unquoted 2 as an integer: both sides are version strings.
        if isinstance(key, bool) or isinstance(value, bool):
            raise ConfigError(f"{where}.versions.{key}: expected version strings")
        versions[str(key)] = _text(str(value), f"{where}.versions.{key}")
    tracking_uri = raw.get("tracking_uri")
    registered = raw.get("registered_model")
    return MlflowConfig(
        tracking_uri=None if tracking_uri is None else _text(tracking_uri, f"{where}.tracking_uri"),
        registered_model=None
        if registered is None
        else _text(registered, f"{where}.registered_model"),
        alias=_text(raw.get("alias", "champion"), f"{where}.alias"),
        versions=versions,
        tag_on_retrain=_flag(raw.get("tag_on_retrain", False), f"{where}.tag_on_retrain"),
        timeout=_positive_ms(raw.get("timeout", "30s"), f"{where}.timeout"),
    )


def _secret(value: Any, where: str) -> SecretRef:
    # A plain string is refused on purpose: secrets never sit in the file itself.
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in ("env", "file"):
        raise ConfigError(
            f"{where}: expected {{env: VARIABLE}} or {{file: PATH}} (secrets are never written "
            "in the configuration file)"
        )
    kind, name = next(iter(value.items()))
    name = _text(name, f"{where}.{kind}")
    return SecretRef(env=name) if kind == "env" else SecretRef(file=Path(name).expanduser())


def _http(raw: dict[str, Any], parent: str) -> HttpConfig:
    where = f"{parent}.http"
    _known(raw, where, ("url", "mode", "headers", "signature", "timeout", "forward"))
    url = _text(raw.get("url"), f"{where}.url")
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number
        valid = False
    if not valid:
        raise ConfigError(f"{where}.url: expected an http:// or https:// URL")
    mode = raw.get("mode", "structured")
    if mode not in ("structured", "binary"):
        raise ConfigError(f"{where}.mode: {mode!r} is not one of structured, binary")
    headers = {}
    for name, ref in _mapping(raw.get("headers") or {}, f"{where}.headers").items():
        path = f"{where}.headers.{name}"
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise ConfigError(f"{path}: not a valid HTTP header name")
        if name.lower() in _RESERVED_HEADERS or name.lower().startswith("ce-"):
            raise ConfigError(f"{path}: act sets this header itself")
        headers[name] = _secret(ref, path)
    signature = None
    if raw.get("signature") is not None:
        sig = _mapping(raw["signature"], f"{where}.signature")
        _known(sig, f"{where}.signature", ("header", "secret"))
        header = _text(sig.get("header"), f"{where}.signature.header")
        if not _HEADER_NAME.match(header):
            raise ConfigError(f"{where}.signature.header: not a valid HTTP header name")
        signature = SignatureConfig(
            header=header, secret=_secret(sig.get("secret"), f"{where}.signature.secret")
        )
    forward = raw.get("forward", ["retrain", "rollback"])
    if not isinstance(forward, list) or not forward or any(f not in FORWARDABLE for f in forward):
        raise ConfigError(f"{where}.forward: expected a list of {', '.join(FORWARDABLE)}")
    return HttpConfig(
        url=url,
        mode=mode,
        headers=headers,
        signature=signature,
        timeout=_positive_ms(raw.get("timeout", "10s"), f"{where}.timeout"),
        forward=tuple(dict.fromkeys(forward)),
    )


def _retry(raw: Any, where: str) -> RetryConfig:
    raw = _mapping(raw, where)
    _known(
        raw, where, ("first_delay", "max_delay", "factor", "jitter", "attempts", "give_up_after")
    )
    defaults = RetryConfig()
    factor = raw.get("factor", defaults.factor)
    jitter = raw.get("jitter", defaults.jitter)
    attempts = raw.get("attempts", defaults.attempts)
    for name, value in (("factor", factor), ("jitter", jitter)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ConfigError(f"{where}.{name}: expected a number, got {value!r}")
    if factor < 1:
        raise ConfigError(f"{where}.factor: must be at least 1")
    if not 0 <= jitter < 1:
        raise ConfigError(f"{where}.jitter: must be at least 0 and less than 1")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ConfigError(f"{where}.attempts: expected a positive integer, got {attempts!r}")
    first = _positive_ms(raw.get("first_delay", "1s"), f"{where}.first_delay")
    longest = _positive_ms(raw.get("max_delay", "60s"), f"{where}.max_delay")
    if longest < first:
        raise ConfigError(f"{where}.max_delay: must be at least first_delay")
    return RetryConfig(
        first_delay=first,
        max_delay=longest,
        factor=float(factor),
        jitter=float(jitter),
        attempts=attempts,
        give_up_after=_positive_ms(raw.get("give_up_after", "10m"), f"{where}.give_up_after"),
    )
