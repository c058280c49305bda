"""``driftline worker`` and ``driftline replay`` as processes (stream/worker.py): process-wide
memory tuning (stream/process_memory.py), and a worker that cannot start saying why in one
line."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

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
    assert run("from stream.process_memory import fix_malloc_threshold as f; print(f())") == "True"


def test_an_operators_malloc_setting_is_left_alone():
    code = "from stream.process_memory import fix_malloc_threshold as f; print(f())"
    assert run(code, MALLOC_MMAP_THRESHOLD_="65536") == "False"


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
def test_free_pages_inside_the_heap_go_back_to_the_system():
    # 64 KB blocks (heap, under the 128 KiB mmap threshold) with a survivor after each, so
    # that the heap cannot shrink from its top: freeing the blocks alone leaves them resident.
    code = """
from stream.process_memory import fix_malloc_threshold, release_free_memory
fix_malloc_threshold()
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
blocks, survivors = [], []
for _ in range(4000):
    blocks.append(bytearray(b"x" * 65536))
    survivors.append(bytearray(b"y" * 4096))
del blocks
before = rss()
released = release_free_memory()
print(released, (before - rss()) // 2**20)
"""
    released, freed_mib = run(code).split()
    assert released == "True"
    assert int(freed_mib) >= 150, freed_mib  # of the ~250 MiB the blocks held


def test_the_collector_runs_young_collections_rarely_and_freezes_startup_objects():
    code = (
        "import gc; from stream.process_memory import tune_gc; tune_gc(); "
        "print(gc.get_threshold()[0], gc.get_freeze_count() > 0)"
    )
    assert run(code) == "100000 True"


def worker(tmp_path: Path, **settings: str) -> tuple[int, list[str]]:
    """``driftline worker`` as a user starts it, with only these ``DRIFTLINE_*`` settings:
    (exit code, lines of output, stdout and stderr together)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    result = subprocess.run(
        [sys.executable, "-m", "stream.cli", "worker"],
        env=env | {"DRIFTLINE_DATA_DIR": str(tmp_path)} | settings,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    return result.returncode, result.stdout.splitlines()


def test_sasl_settings_without_a_sasl_protocol_stop_the_worker_in_one_line(tmp_path):
    code, lines = worker(
        tmp_path, DRIFTLINE_SASL_USERNAME="driftline", DRIFTLINE_SASL_PASSWORD="s3cr3t-value"
    )
    assert code == 2
    assert lines == [
        "driftline: DRIFTLINE_SASL_USERNAME, DRIFTLINE_SASL_PASSWORD are set, but "
        "DRIFTLINE_SECURITY_PROTOCOL is PLAINTEXT (the default): SASL settings need "
        "SASL_PLAINTEXT or SASL_SSL"
    ]
    assert not any("s3cr3t" in line for line in lines)


def test_an_unreachable_bootstrap_server_stops_the_worker_in_one_line(tmp_path):
    port = free_port()  # nothing listens there
    code, lines = worker(tmp_path, DRIFTLINE_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}")
    assert code == 1
    assert len(lines) == 2, lines
    assert lines[0].startswith("driftline worker settings: {")  # printed at every start
    assert lines[1] == (
        f"driftline: cannot connect to Kafka at 127.0.0.1:{port}: connection refused "
        "(check DRIFTLINE_BOOTSTRAP_SERVERS)"
    )


def test_a_bootstrap_list_that_does_not_parse_is_a_configuration_error(tmp_path):
    code, lines = worker(tmp_path, DRIFTLINE_BOOTSTRAP_SERVERS="127.0.0.1:kafka")
    assert code == 2
    assert lines[-1] == (
        "driftline: DRIFTLINE_BOOTSTRAP_SERVERS: '127.0.0.1:kafka' is not a comma-separated "
        "list of host:port"
    )
    assert not any(line.startswith("Traceback") for line in lines)
