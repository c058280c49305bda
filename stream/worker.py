"""``driftline worker``: settings from the environment, then the Faust worker."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import logging
import os
import sys
from pathlib import Path

from detectors.config import ConfigError, MonitorConfig
from stream.kafka_probe import KafkaStartupError, check_kafka
from stream.settings import Settings, SettingsError

__all__ = ["fix_malloc_threshold", "run_worker", "tune_gc"]

#: glibc's mallopt parameter number for the mmap threshold.
_M_MMAP_THRESHOLD = -3


def tune_gc() -> None:
    """Collect the young generation every 100k allocations instead of 700.

    A worker holds millions of long-lived objects (references, waiting predictions) and
    allocates hundreds of thousands of short-lived ones per second (events); at CPython's
    default thresholds the collector ran ~400 times per 400k events and doubled the cost of
    decoding them (7.3 vs 3.1 us per event, measured). What was allocated at start-up is frozen
    out of collection altogether.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def fix_malloc_threshold(size: int = 128 * 1024) -> bool:
    """Serve blocks of ``size`` bytes and more from mmap, always (glibc only; True if set).

    glibc raises its mmap threshold whenever such a block is freed, up to 32 MiB; from then on
    large blocks (Kafka fetch responses, state records, producer batches) come from the heap,
    whose free space is seldom returned: the RSS of a busy worker drifted up by tens of MiB
    and swung by more with every checkpoint. Setting the threshold stops the adjustment
    (``man mallopt``): ``python bench/worker.py --only memory`` measured 580 MiB after warm-up
    without, 477 MiB with. A ``MALLOC_MMAP_THRESHOLD_`` in the environment is left to rule.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, size))
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False


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
