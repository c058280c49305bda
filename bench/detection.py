"""Detection figures: false alarms per 100k stationary values and detection delays, for
driftline's detectors and for river's ADWIN and Page-Hinkley at their defaults on the same
streams.

    python bench/detection.py [--seeds 10]

Numeric features: stationary streams of five shapes and scales; abrupt mean shifts of 0.5, 1 and
2 standard deviations and a 4x variance change at value 10,000. Error streams (0/1): stationary
at 2 %, 10 % and 30 %, and rises 10 % -> 20 % and 2 % -> 6 %.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from river import drift

from detectors.error_rate import ErrorRateDriftDetector
from detectors.numeric import NumericDriftDetector

SHAPES = {
    "normal x1000": lambda r, n: r.normal(5000, 1000, n),
    "lognormal": lambda r, n: r.lognormal(0, 1, n),
    "poisson(3)": lambda r, n: r.poisson(3, n).astype(float),
    "bimodal": lambda r, n: np.where(r.random(n) < 0.3, r.normal(-3, 0.5, n), r.normal(2, 1, n)),
    "cauchy": lambda r, n: r.standard_cauchy(n),
}


def river_alarms(factory, values) -> list[int]:
    detector, hits = factory(), []
    for i, v in enumerate(values):
        detector.update(float(v))
        if detector.drift_detected:
            hits.append(i)
    return hits


def ours(factory, values) -> list[int]:
    return factory().update_many(values)[::2]  # episode starts


def first_after(hits: list[int], start: int) -> float:
    later = [h for h in hits if h >= start]
    return later[0] - start if later else math.inf


def row(name: str, values: list[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    missed = len(values) - len(finite)
    mean = f"{np.mean(finite):7.0f}" if finite else "      -"
    return f"{name:>10} {mean}" + (f" ({missed} missed)" if missed else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    seeds = range(args.seeds)
    numeric = {
        "driftline": (ours, NumericDriftDetector),
        "river ADWIN": (river_alarms, drift.ADWIN),
        "river PH": (river_alarms, drift.PageHinkley),
    }
    print("Numeric features: false alarms per 100k stationary values")
    print(f"{'':14}" + "".join(f"{s:>14}" for s in SHAPES))
    for name, (run, factory) in numeric.items():
        cells = []
        for make in SHAPES.values():
            total = sum(len(run(factory, make(np.random.default_rng(s), 100_000))) for s in seeds)
            cells.append(total / len(seeds))
        print(f"{name:14}" + "".join(f"{c:14.2f}" for c in cells))
    print("\nNumeric features: mean detection delay (values after the change)")
    changes = {
        "+0.5 sd": lambda x: x + 0.5,
        "+1 sd": lambda x: x + 1.0,
        "+2 sd": lambda x: x + 2.0,
        "sd x2": lambda x: x * 2.0,
    }
    print(f"{'':14}" + "".join(f"{c:>18}" for c in changes))
    for name, (run, factory) in numeric.items():
        cells = []
        for change in changes.values():
            delays = []
            for s in seeds:
                r = np.random.default_rng(1000 + s)
                x = r.normal(0, 1, 20_000)
                x[10_000:] = change(x[10_000:])
                delays.append(first_after(run(factory, x), 10_000))
            cells.append(row("", delays))
        print(f"{name:14}" + "".join(f"{c:>18}" for c in cells))

    errors = {
        "driftline": (ours, ErrorRateDriftDetector),
        "river ADWIN": (river_alarms, drift.ADWIN),
        "river PH up": (river_alarms, lambda: drift.PageHinkley(mode="up")),
    }
    print("\nError streams (0/1): false alarms per 100k stationary outcomes")
    rates = (0.02, 0.1, 0.3)
    print(f"{'':14}" + "".join(f"{f'{p:.0%} errors':>14}" for p in rates))
    for name, (run, factory) in errors.items():
        cells = []
        for p in rates:
            total = sum(
                len(run(factory, (np.random.default_rng(s).random(100_000) < p).tolist()))
                for s in seeds
            )
            cells.append(total / len(seeds))
        print(f"{name:14}" + "".join(f"{c:14.2f}" for c in cells))
    print("\nError streams: mean detection delay (outcomes after the rise)")
    rises = ((0.1, 0.2), (0.02, 0.06))
    print(f"{'':14}" + "".join(f"{f'{a:.0%} -> {b:.0%}':>18}" for a, b in rises))
    for name, (run, factory) in errors.items():
        cells = []
        for before, after in rises:
            delays = []
            for s in seeds:
                r = np.random.default_rng(2000 + s)
                e = (r.random(20_000) < before).astype(float)
                e[10_000:] = r.random(10_000) < after
                delays.append(first_after(run(factory, e.tolist()), 10_000))
            cells.append(row("", delays))
        print(f"{name:14}" + "".join(f"{c:>18}" for c in cells))


if __name__ == "__main__":
    main()
