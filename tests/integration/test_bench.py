"""The benchmark keeps working: ``bench/worker.py`` at 1 % of its sizes against the session's
broker, every section but the 45-second latency run (a smoke test: its figures mean nothing
at this scale; the real ones come from ``python bench/worker.py``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_the_benchmark_runs_and_prints_every_figure(kafka_bootstrap):
    sections = ["throughput", "arrays", "memory", "fleet", "scaleout"]
    result = subprocess.run(
        [sys.executable, "bench/worker.py", "--scale", "0.01", "--baseline", "HEAD"]
        + [arg for s in sections for arg in ("--only", s)],
        cwd=ROOT,
        env={**os.environ, "DRIFTLINE_BOOTSTRAP_SERVERS": kafka_bootstrap},
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    number = r"[\d,.]+"
    assert re.search(rf"raw AIOKafkaConsumer\.getmany \+ orjson\.loads\s+{number} events/s", out)
    assert re.search(rf"the same \+ river ADWIN / PageHinkley \(naive\)\s+{number} events/s", out)
    assert re.search(r"median of 1: worker / naive\s+([\d.]+|nan)", out), out
    worker_lines = re.findall(r"ratio worker / raw\s+[\d.]+|too few to measure", out)
    assert len(worker_lines) >= 2, out  # plain and array messages
    # The worker of another revision (--baseline), on the same topic contents.
    assert re.search(r"baseline: HEAD \([0-9a-f]+\) in a worktree", out), out
    assert re.search(rf"driftline worker at HEAD\s+({number} events/s|nan)", out), out
    assert re.search(rf"growth after warm-up, medians of windows\s+-?{number} %", out), out
    assert re.search(r"RSS medians along the run \(MiB\)(\s+[\d,]+){8}", out), out
    assert re.search(rf"per model\s+{number}", out), out
    assert re.search(r"/metrics scrape: [\d,]+ series, [\d.]+ MB, median \d+ ms", out), out
    # At this size one worker may finish before the other joins: a share may be empty.
    assert re.search(r"worker 1: partitions \[[\d, ]*\], \d+ models", out), out
    assert re.search(r"worker 2: partitions \[[\d, ]*\], \d+ models", out), out
