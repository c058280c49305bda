"""Process-wide tuning of ``driftline worker`` and ``driftline replay`` (stream/worker.py)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

GLIBC = platform.libc_ver()[0] == "glibc"


def run(code: str, **env: str) -> str:
    """In a fresh interpreter: mallopt and the collector's settings are process-wide."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"} | env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_the_mmap_threshold_is_fixed_on_glibc():
    assert run("from stream.worker import fix_malloc_threshold as f; print(f())") == "True"


def test_an_operators_malloc_setting_is_left_alone():
    code = "from stream.worker import fix_malloc_threshold as f; print(f())"
    assert run(code, MALLOC_MMAP_THRESHOLD_="65536") == "False"


def test_the_collector_runs_young_collections_rarely_and_freezes_startup_objects():
    code = (
        "import gc; from stream.worker import tune_gc; tune_gc(); "
        "print(gc.get_threshold()[0], gc.get_freeze_count() > 0)"
    )
    assert run(code) == "100000 True"
