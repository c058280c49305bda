"""Segment figures over many seeded streams: false alarms of 20 equal segments, and the delay
before a segment whose errors double is flagged (the streams of tests/core/test_segments.py,
through the core's classes).

    python bench/segments.py [--seeds 50] [--workers 2]

Prints, for 20 segments of equal traffic at 10 % errors, alarms per stream of 2M outcomes
(100k per segment); and for one segment going 10 % -> 20 % (error rate) or MAE 0.1 -> 0.2 at
outcome 20,000 (the model's error rises 5 %): streams flagged, naming that segment, and the
delay in outcomes of the model (a twentieth of them the segment's).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.core.test_segments import run_stream  # (the tests' streams)

NULL_OUTCOMES = 2_000_000
CHANGE_AT, CHANGE_OUTCOMES = 20_000, 80_000


def null_task(seed: int) -> int:
    return sum(status == "firing" for _, status, _ in run_stream(1000 + seed, NULL_OUTCOMES))


def change_task(spec: tuple[int, bool]) -> float | None:
    seed, regression = spec
    alerts = run_stream(2000 + seed, CHANGE_OUTCOMES, fail_at=CHANGE_AT, regression=regression)
    firing = [(i, c) for i, status, c in alerts if status == "firing"]
    if not firing or firing[0][1] != "c03":
        return None
    return float(firing[0][0] - CHANGE_AT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    with Pool(args.workers) as pool:
        nulls = pool.map(null_task, range(args.seeds))
        changes = {
            name: pool.map(change_task, [(seed, regression) for seed in range(args.seeds)])
            for name, regression in (("error_rate", False), ("mae", True))
        }
    outcomes = args.seeds * NULL_OUTCOMES
    print(f"20 equal segments, {args.seeds} streams x {NULL_OUTCOMES:,} outcomes:")
    print(
        f"  alarms {sum(nulls)} in {outcomes:,} outcomes "
        f"({sum(nulls) / (outcomes / 20) * 100_000:.3f} per 100k outcomes of a segment); "
        f"streams with an alarm: {sum(n > 0 for n in nulls)}"
    )
    for name, delays in changes.items():
        found = [d for d in delays if d is not None]
        text = f"median {statistics.median(found):,.0f}, max {max(found):,.0f}" if found else "-"
        print(
            f"one segment's {name} doubles: flagged in {len(found)}/{len(delays)} streams; "
            f"delay (outcomes of the model) {text}"
        )
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
