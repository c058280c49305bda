"""The ``driftline`` command.

::

    driftline kafka fetch|start|stop|status   a local single-node Kafka broker
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from stream.kafka_broker import BrokerConfig, BrokerError, LocalKafka, fetch_jars, kafka_version

__all__ = ["main"]


def _broker_from(args: argparse.Namespace) -> LocalKafka:
    config = BrokerConfig(port=args.port, controller_port=args.controller_port)
    if args.data_dir is not None:
        config = BrokerConfig(
            port=args.port, controller_port=args.controller_port, data_dir=args.data_dir
        )
    return LocalKafka(config)


def _kafka(args: argparse.Namespace) -> int:
    if args.action == "fetch":
        libs = fetch_jars(quiet=False)
        print(f"Kafka {kafka_version()} broker jars in {libs}")
        return 0
    broker = _broker_from(args)
    if args.action == "start":
        was_running = broker.pid() is not None
        seconds = broker.start(timeout=args.timeout)
        verb = "already running" if was_running else f"started in {seconds:.1f}s"
        print(
            f"Kafka {kafka_version()} {verb} on {broker.bootstrap_servers} "
            f"(pid {broker.pid()}, data {broker.config.data_dir})"
        )
        return 0
    if args.action == "stop":
        stopped = broker.stop(timeout=args.timeout)
        print("Kafka stopped" if stopped else "Kafka was not running")
        return 0
    status = broker.status()
    print(json.dumps(status, indent=2))
    return 0 if status["running"] else 3  # 3: "not running", as in the LSB init conventions


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="driftline",
        description="Watch ML models in production from their Kafka streams.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    kafka = commands.add_parser(
        "kafka",
        help="a local single-node Kafka broker (KRaft) from Maven Central jars",
        description="Fetch, start, stop or probe a local single-node Kafka broker.",
    )
    kafka.add_argument("action", choices=["fetch", "start", "stop", "status"])
    kafka.add_argument("--port", type=int, default=9092, help="client port (default 9092)")
    kafka.add_argument(
        "--controller-port", type=int, default=None, help="KRaft controller port (default port+1)"
    )
    kafka.add_argument(
        "--data-dir", type=Path, default=None, help="broker data and logs (default .cache)"
    )
    kafka.add_argument(
        "--timeout", type=float, default=90.0, help="seconds to wait for start or stop"
    )
    kafka.set_defaults(handler=_kafka)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except BrokerError as exc:
        print(f"driftline: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
