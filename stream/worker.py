"""``driftline worker``: settings from the environment, then the Faust worker."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from detectors.config import ConfigError, MonitorConfig
from stream.kafka_probe import KafkaStartupError, check_kafka
from stream.process_memory import fix_malloc_threshold, tune_gc
from stream.settings import Settings, SettingsError

__all__ = ["run_worker"]


def run_worker(config_path: Path | None = None, loglevel: str = "info") -> int:
    """Start the live service; return the exit code: 2 on a configuration error, 1 when Kafka
    cannot be used as configured (unreachable, TLS refused, login refused), each told in one
    line."""
    try:
        settings = Settings.from_env()
        path = config_path or settings.config_file
        config = MonitorConfig.from_yaml(path) if path else MonitorConfig()
    except (ConfigError, SettingsError) as exc:
        print(f"driftline: {exc}", file=sys.stderr)
        return 2
    # The effective settings, secrets masked: what this worker will do, for the operator's log.
    print(
        "driftline worker settings: " + json.dumps(settings.describe(), sort_keys=True),
        file=sys.stderr,
        flush=True,
    )
    try:
        check_kafka(settings)
    except SettingsError as exc:
        print(f"driftline: {exc}", file=sys.stderr)
        return 2
    except KafkaStartupError as exc:
        print(f"driftline: {exc}", file=sys.stderr)
        return 1
    import faust

    from stream.app import create_app

    app = create_app(settings, config)
    fix_malloc_threshold()
    tune_gc()
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    worker.execute_from_commandline()
    return 0
