"""The worker's start-up check: can Kafka be used as configured?

Faust's producer would fail a moment later on a wrong password or an unreachable server, but
aiokafka's bootstrap logs each server's error and raises a generic connection error: the cause
is lost and the operator gets a traceback. :func:`probe_kafka` connects as the worker's clients
will (TLS, SASL, one metadata request) and tells failures apart by their exception class, never
by a library's message, as :class:`KafkaStartupError`: one line in driftline's words naming the
settings to check, never a secret.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl

from stream.settings import PREFIX, Settings, SettingsError

__all__ = ["KafkaStartupError", "check_kafka", "probe_kafka", "PROBE_TIMEOUT"]

#: Seconds the start-up probe waits for each bootstrap server (connect, TLS, SASL, metadata).
PROBE_TIMEOUT = 10.0


class KafkaStartupError(Exception):
    """Kafka cannot be used as configured. The message is one line in driftline's words that
    names the settings to check; it never holds a secret."""


async def probe_kafka(settings: Settings, per_server: float = PROBE_TIMEOUT) -> str:
    """Connect to the bootstrap servers in turn, as the worker's Kafka clients will (TLS, SASL,
    one metadata request), until one answers; return its ``host:port``.

    Faust's producer would fail the same way a moment later, but aiokafka's bootstrap logs each
    server's error and raises a generic connection error: the cause is lost and the operator
    gets a traceback. Here each failure is told apart by its exception class (never by a
    library's message) and raised as :class:`KafkaStartupError`. A refused login ends the probe
    at once (the credentials are the cluster's, and retrying them could lock the account).
    """
    from aiokafka.conn import collect_hosts, create_conn
    from aiokafka.errors import (
        KafkaConnectionError,
        KafkaError,
        SaslAuthenticationFailed,
        UnsupportedSaslMechanismError,
    )
    from aiokafka.protocol.metadata import MetadataRequest

    security = settings.security
    try:
        hosts = collect_hosts(settings.bootstrap_servers, randomize=False)
        if not hosts or not all(host for host, _, _ in hosts):
            raise ValueError(settings.bootstrap_servers)
    except ValueError:
        raise SettingsError(
            f"{PREFIX}BOOTSTRAP_SERVERS: {settings.bootstrap_servers!r} is not a comma-separated "
            "list of host:port"
        ) from None
    servers = f"{PREFIX}BOOTSTRAP_SERVERS"
    protocol = f"{PREFIX}SECURITY_PROTOCOL"
    tls = (f"{PREFIX}SSL_CAFILE", f"{PREFIX}SSL_CHECK_HOSTNAME")
    failures: list[tuple[str, str, tuple[str, ...]]] = []  # (server, what happened, check)
    for host, port, _ in hosts:
        server = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            conn = await asyncio.wait_for(
                create_conn(
                    host,
                    port,
                    client_id=f"{settings.app_id}-probe",
                    request_timeout_ms=int(per_server * 1000),
                    **security.client_kwargs(),
                ),
                per_server,
            )
            try:
                await asyncio.wait_for(conn.send(MetadataRequest([])), per_server)
            finally:
                await asyncio.wait([conn.close()], timeout=2)
            return server
        except SaslAuthenticationFailed:
            raise KafkaStartupError(
                f"authentication failed for user {security.sasl_username} at {server} with "
                f"{security.sasl_mechanism} (check {PREFIX}SASL_USERNAME / {PREFIX}SASL_PASSWORD)"
            ) from None
        except UnsupportedSaslMechanismError:
            raise KafkaStartupError(
                f"{server} does not offer the SASL mechanism {security.sasl_mechanism} "
                f"(check {PREFIX}SASL_MECHANISM)"
            ) from None
        # The order matters: TimeoutError and the ssl and socket errors are all OSErrors.
        except TimeoutError:
            failures.append((server, f"no answer within {per_server:g} s", (servers,)))
        except ssl.SSLCertVerificationError:
            failures.append((server, "its TLS certificate is not trusted", tls))
        except ssl.SSLError:
            failures.append((server, "the TLS handshake failed", (protocol,)))
        except socket.gaierror:
            failures.append((server, "unknown host", (servers,)))
        except ConnectionRefusedError:
            failures.append((server, "connection refused", (servers,)))
        except (ConnectionError, KafkaConnectionError):
            # Closed mid-handshake: most often a listener that speaks another protocol, or
            # something other than Kafka at that address.
            what = "the connection was closed during the handshake"
            failures.append((server, what, (protocol, servers)))
        except OSError:
            failures.append((server, "cannot connect", (servers,)))
        except KafkaError:
            failures.append((server, "the broker refused the handshake", (protocol,)))
    checks = " / ".join(dict.fromkeys(name for _, _, names in failures for name in names))
    raise KafkaStartupError(
        "cannot connect to Kafka at "
        + "; ".join(f"{server}: {what}" for server, what, _ in failures)
        + f" (check {checks})"
    )


def check_kafka(settings: Settings) -> None:
    """Run :func:`probe_kafka` on an event loop of its own, aiokafka's logging silenced: the
    probe reports what went wrong itself, in one line."""
    aiokafka_logger = logging.getLogger("aiokafka")
    level = aiokafka_logger.level
    aiokafka_logger.setLevel(logging.CRITICAL + 1)
    try:
        asyncio.run(probe_kafka(settings))
    finally:
        aiokafka_logger.setLevel(level)
