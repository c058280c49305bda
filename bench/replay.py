"""Throughput of ``driftline replay`` (the pure core plus decoding) over the benchmark workload.

    python bench/replay.py [--events 1000000] [--models 100]

Writes the workload to a JSON-lines file under .cache/bench (once), replays it with the real
command, and prints events/s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import events

TOPICS = {"predictions": b"model.predictions", "labels": b"model.labels"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="predictions to generate")
    parser.add_argument("--models", type=int, default=100)
    args = parser.parse_args()
    folder = Path(__file__).resolve().parents[1] / ".cache" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / f"replay-{args.events}-{args.models}.jsonl"
    if not source.exists():
        with source.open("wb") as f:
            for kind, _, value in events(args.events, models=args.models, t0=1_795_255_200_000):
                f.write(b'{"topic":"' + TOPICS[kind] + b'","value":' + value + b"}\n")
    lines = sum(1 for _ in source.open("rb"))
    print(f"{source.name}: {lines:,} records ({source.stat().st_size / 1e6:.0f} MB)")
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "stream.cli", "replay", str(source), "--out", "/dev/null"],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - start
    print(result.stderr.strip())
    print(f"wall time including start-up: {wall:.1f}s -> {lines / wall:,.0f} records/s")


if __name__ == "__main__":
    main()
