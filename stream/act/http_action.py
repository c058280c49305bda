"""POST a CloudEvent to any CloudEvents HTTP receiver (CloudEvents HTTP protocol binding 1.0).

* **structured** mode: ``Content-Type: application/cloudevents+json``, the body is the event's
  JSON exactly as it was on the topic;
* **binary** mode: every attribute but ``data`` as a ``ce-<name>`` header (percent-encoded as
  the binding asks), ``Content-Type`` the event's ``datacontenttype``, the body its ``data``.

Headers for authentication take their values from environment variables or files (read once,
at start); with ``signature:`` the body's HMAC-SHA256 goes in the header named there, as
``sha256=<hex>``. Neither is ever logged, nor put in an error or a dead letter: messages show
the receiver's scheme, host and port only.

Examples
--------
>>> headers, body = binary_request({"specversion": "1.0", "id": "1", "source": "/driftline",
...     "type": "t", "subject": "fraud model", "datacontenttype": "application/json",
...     "data": {"a": 1}})
>>> headers["ce-subject"], headers["Content-Type"], body
('fraud%20model', 'application/json', b'{"a":1}')
>>> sign(b"key", b"body")
'sha256=515aae133b435d4000956731f68ae5cf5eb85d4f0dc6a546d2bfcd3595ec1ae1'
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, Final

import orjson

from stream.act.config import HttpConfig
from stream.act.delivery import Attempt, Verdict
from stream.act.received import Received

__all__ = [
    "STRUCTURED_CONTENT_TYPE",
    "HttpReceiver",
    "binary_request",
    "classify_status",
    "percent_encode",
    "sign",
    "structured_request",
]

STRUCTURED_CONTENT_TYPE: Final = "application/cloudevents+json; charset=utf-8"
#: Statuses worth another try (RFC 9110: timeout, too early, too many requests; any 5xx).
_RETRY_STATUSES: Final = frozenset({408, 425, 429})


def percent_encode(value: str) -> str:
    """A ``ce-*`` header value: space, ``"``, ``%`` and anything outside printable ASCII
    percent-encoded (UTF-8), as the HTTP binding (3.1.3.2) asks.

    >>> percent_encode('Euro € "x" 100%')
    'Euro%20%E2%82%AC%20%22x%22%20100%25'
    """
    out = []
    for char in value:
        if "\x21" <= char <= "\x7e" and char not in '"%':
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode())
    return "".join(out)


def structured_request(raw: bytes) -> tuple[dict[str, str], bytes]:
    """Headers and body of a structured-mode request: the event JSON unchanged."""
    return {"Content-Type": STRUCTURED_CONTENT_TYPE}, raw


def binary_request(envelope: Mapping[str, Any]) -> tuple[dict[str, str], bytes]:
    """Headers and body of a binary-mode request."""
    headers = {}
    for name, value in envelope.items():
        if name in ("data", "datacontenttype", "data_base64") or value is None:
            continue
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        headers[f"ce-{name}"] = percent_encode(text)
    headers["Content-Type"] = str(envelope.get("datacontenttype") or "application/json")
    return headers, orjson.dumps(envelope.get("data"))


def sign(secret: bytes, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def classify_status(status: int) -> Verdict:
    """2xx: done; 408, 425, 429 and 5xx: retry; anything else (4xx, and 3xx since redirects
    are not followed, so that auth headers never go to another host): failed."""
    if 200 <= status < 300:
        return Verdict.DONE
    if status in _RETRY_STATUSES or status >= 500:
        return Verdict.RETRY
    return Verdict.FAILED


class HttpReceiver:
    """One configured receiver, its secrets read (see :meth:`from_config`)."""

    def __init__(
        self, config: HttpConfig, headers: dict[str, str], signing_key: bytes | None
    ) -> None:
        self.config = config
        self._headers = headers
        self._signing_key = signing_key

    def __repr__(self) -> str:
        return f"HttpReceiver({self.config.origin()}, {self.config.mode})"

    @classmethod
    def from_config(cls, config: HttpConfig) -> HttpReceiver:
        """Read the header values and the signing key now (a ConfigError naming the reference,
        never the value, when one cannot be read)."""
        headers = {name: ref.read() for name, ref in config.headers.items()}
        key = config.signature.secret.read().encode() if config.signature else None
        return cls(config, headers, key)

    def request(self, event: Received) -> tuple[dict[str, str], bytes]:
        """Headers (secrets included) and body of the request for ``event``."""
        if self.config.mode == "structured":
            headers, body = structured_request(event.raw)
        else:
            headers, body = binary_request(event.envelope)
        headers.update(self._headers)
        if self.config.signature is not None and self._signing_key is not None:
            headers[self.config.signature.header] = sign(self._signing_key, body)
        return headers, body

    async def send(self, session: Any, event: Received) -> Attempt:
        """One POST with the configured timeout; never raises for a network failure."""
        import aiohttp

        headers, body = self.request(event)
        where = f"POST {self.config.origin()}"
        timeout = aiohttp.ClientTimeout(total=self.config.timeout / 1000)
        try:
            async with session.post(
                self.config.url,
                data=body,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                status = response.status
        except aiohttp.ClientConnectorError as exc:
            # No connection, so no request: the receiver certainly has nothing.
            return Attempt(Verdict.RETRY, f"{where}: {type(exc).__name__}", reached=False)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # The class name only: some of aiohttp's messages repeat the URL.
            return Attempt(Verdict.RETRY, f"{where}: {type(exc).__name__}")
        return Attempt(classify_status(status), f"{where}: HTTP {status}")
