"""The ``driftline`` command.

::

    driftline demo [--duration 60] [--speed 1] [--mlflow]          see it work, in a minute
    driftline worker [--config FILE] [-l info]                     the live service
    driftline act [--config FILE] [--dry-run]                      commands -> MLflow, HTTP
    driftline replay EVENTS.jsonl [--config FILE] [--out FILE]   the core over a file
                     [--report HTML]                               ... and its HTML report
    driftline replay --from-kafka --since T [--until T]            ... over the input topics
    driftline replay --predictions P.csv [--labels L.csv]          ... over CSV or Parquet
    driftline kafka fetch|start|stop|status                        a local Kafka broker
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


def _replay(args: argparse.Namespace) -> int:
    from detectors.config import ConfigError, MonitorConfig
    from stream.replay import replay_file, replay_source
    from stream.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
        config_path = args.config or settings.config_file
        config = MonitorConfig.from_yaml(config_path) if config_path else None
    except (ConfigError, SettingsError) as exc:
        print(f"driftline: {exc}", file=sys.stderr)
        return 2
    from stream.replay_sources import SourceError, kafka_records, parse_time, table_records

    sources = [args.events is not None, args.from_kafka, args.predictions is not None]
    if sum(sources) != 1:
        print(
            "driftline: replay one source: a JSON-lines FILE, --from-kafka (with --since), "
            "or --predictions (and --labels)",
            file=sys.stderr,
        )
        return 2
    records = None
    try:
        if args.from_kafka:
            if args.since is None:
                print("driftline: --from-kafka needs --since", file=sys.stderr)
                return 2
            since = parse_time(args.since)
            until = parse_time(args.until) if args.until else None
            records = kafka_records(settings, since, until)
            title = f"driftline replay of the input topics from {args.since}"
        elif args.predictions is not None:
            for path in (args.predictions, args.labels):
                if path is not None and not path.is_file():
                    print(f"driftline: no file at {path}", file=sys.stderr)
                    return 2
            records = table_records(
                args.predictions,
                args.labels,
                settings.topics,
                model_id=args.model_id,
                model_version=args.model_version,
            )
            title = f"driftline replay of {args.predictions.name}"
    except SourceError as exc:
        print(f"driftline: {exc}", file=sys.stderr)
        return 2
    if records is None and str(args.events) != "-" and not Path(args.events).is_file():
        print(f"driftline: no file at {args.events}", file=sys.stderr)
        return 2
    from stream.process_memory import fix_malloc_threshold, tune_gc

    fix_malloc_threshold()
    tune_gc()
    out = open(args.out, "wb") if args.out else sys.stdout.buffer  # noqa: SIM115
    options = {
        "config": config,
        "topics": settings.topics,
        "limits": settings.limits,
        "batch_size": args.batch_size,
        "max_models": settings.max_models,
        "max_features_per_model": settings.max_features_per_model,
        "report": args.report,
    }
    try:
        if records is None:
            summary = replay_file(args.events, out, **options)
        else:
            summary = replay_source(records, out, title=title, **options)
    except SourceError as exc:
        print(f"driftline: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.out:
            out.close()
        else:
            out.flush()
    print(summary.describe(), file=sys.stderr)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from stream.demo import run_demo

    return run_demo(duration=args.duration, speed=args.speed, mlflow=args.mlflow)


def _worker(args: argparse.Namespace) -> int:
    from stream.worker import run_worker

    return run_worker(config_path=args.config, loglevel=args.loglevel)


def _act(args: argparse.Namespace) -> int:
    from stream.act.app import run_act

    return run_act(config_path=args.config, dry_run=args.dry_run, loglevel=args.loglevel)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="driftline",
        description="Watch ML models in production from their Kafka streams.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo",
        help="a local broker, the worker and a simulated fleet with scripted incidents",
        description="Start a local Kafka broker (unless DRIFTLINE_BOOTSTRAP_SERVERS is set), "
        "the worker and a simulated model fleet; watch drift, stalls, retrain and rollback "
        "commands happen live. Exits 0 when every scripted incident was caught.",
    )
    demo.add_argument("--duration", type=float, default=60.0, help="demo seconds (default 60)")
    demo.add_argument(
        "--speed", type=float, default=1.0, help="run the script this many times faster"
    )
    demo.add_argument(
        "--mlflow",
        action="store_true",
        help="also a local MLflow registry, where driftline act carries out the rollbacks "
        "(needs pip install mlflow)",
    )
    demo.set_defaults(handler=_demo)

    worker = commands.add_parser(
        "worker",
        help="run the live service (Faust app) against Kafka",
        description="Consume model.predictions, model.inputs and model.labels; publish alerts, "
        "commands and dead letters; serve /metrics and /healthz. Settings come from DRIFTLINE_* "
        "environment variables.",
    )
    worker.add_argument("--config", type=Path, default=None, help="per-model YAML configuration")
    worker.add_argument(
        "-l", "--loglevel", default="info", choices=["debug", "info", "warn", "error", "crit"]
    )
    worker.set_defaults(handler=_worker)

    act = commands.add_parser(
        "act",
        help="act on retrain and rollback commands: MLflow Model Registry, CloudEvents HTTP",
        description="Read the commands topic (and the alerts topic when a receiver asks for "
        "alerts) in a consumer group of its own; move MLflow aliases and POST CloudEvents as "
        "the actions: section of the configuration file says, at most once per CloudEvent id; "
        "serve /metrics and /healthz on DRIFTLINE_ACT_WEB_PORT.",
    )
    act.add_argument("--config", type=Path, default=None, help="the YAML file with actions:")
    act.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be done (JSON lines); act on, record and commit nothing",
    )
    act.add_argument(
        "-l", "--loglevel", default="info", choices=["debug", "info", "warning", "error"]
    )
    act.set_defaults(handler=_act)

    replay = commands.add_parser(
        "replay",
        help="run the monitoring core over a JSON-lines file of Kafka records",
        description='Replay recorded records (one {"topic": ..., "value": ...} per line) '
        "through the monitoring core; print every alert, command and dead letter as JSON lines. "
        "Use it to backtest thresholds on a log of production traffic.",
    )
    replay.add_argument(
        "events", type=Path, nargs="?", default=None, help="JSON-lines file, or - for stdin"
    )
    replay.add_argument(
        "--from-kafka",
        action="store_true",
        help="read the input topics (DRIFTLINE_BOOTSTRAP_SERVERS, ...) instead, joining no group",
    )
    replay.add_argument("--since", help="with --from-kafka: ISO 8601 time or epoch ms")
    replay.add_argument("--until", help="with --from-kafka: ISO 8601 time or epoch ms")
    replay.add_argument(
        "--predictions", type=Path, help="a CSV or Parquet table of predictions instead"
    )
    replay.add_argument("--labels", type=Path, help="with --predictions: a table of labels")
    replay.add_argument("--model-id", help="with --predictions: model_id of rows without one")
    replay.add_argument(
        "--model-version", help="with --predictions: model_version of rows without one"
    )
    replay.add_argument("--config", type=Path, default=None, help="per-model YAML configuration")
    replay.add_argument("--out", type=Path, default=None, help="output file (default stdout)")
    replay.add_argument(
        "--report",
        type=Path,
        default=None,
        help="also write an HTML report of the backtest (one self-contained file)",
    )
    replay.add_argument(
        "--batch-size", type=int, default=10_000, help="records per core batch (default 10000)"
    )
    replay.set_defaults(handler=_replay)

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
