"""Detection figures: false alarms and detection delays, for driftline's detectors and policies
and for river's ADWIN and Page-Hinkley at their defaults on the same streams.

    python bench/detection.py [--only SECTION ...] [--seeds 200] [--baseline REF]

Sections:

``numeric``
    Numeric features: stationary streams of five shapes and scales; abrupt mean shifts of 0.5, 1
    and 2 standard deviations and a 4x variance change at value 10,000 (``--detector-seeds``).
``errors``
    Error streams (0/1) straight into the detectors: stationary at 2 %, 10 % and 30 %, and rises
    10 % -> 20 % and 2 % -> 6 % (``--detector-seeds``).
``rare``
    Whole models through :class:`~detectors.monitor.Monitor`, as the service runs them: a binary
    classifier with 0.5 %, 1 %, 5 % or 30 % positives (recall 0.8, precision ~0.76), one
    prediction every 2 s or less often (the change comes four days in), labels 5 min, 1 h, 6 h or
    2 days later (by seed; each label +-50 %, so they arrive out of order). Stationary streams:
    performance and concept episodes and retrain commands per 100k outcomes. The same streams
    where half the positives start to look like negatives (recall 0.8 -> 0.4): streams
    detected, median delay in labelled outcomes after the change, retrains, and where the
    retrain's window starts.
``models``
    A weak but stable model (30 % positives, recall 0.12, F1 ~0.21) and a strong one (5 %
    positives, F1 ~0.95): false degradations and retrains per 100k outcomes.
``synthetic``
    river's synthetic concept-drift streams (SEA, Agrawal, Hyperplane, ConceptDriftStream
    sudden and gradual): a Hoeffding tree trained on the first 5,000 samples, then frozen;
    its predictions and labels (100 samples late) through the Monitor, and its 0/1 errors
    through river's ADWIN at its defaults. Drifts detected, median delay, false alarms before
    the drift, and retrains after it. The streams are cached in ``.cache/detection``.

``--baseline REF`` runs the ``rare``, ``models`` and ``synthetic`` sections again with the
detectors of git revision ``REF`` (a temporary worktree first on ``PYTHONPATH``), on the same
streams, and prints its figures next to this checkout's. ``--baseline-seeds`` sets its seeds
(its false alarms are frequent enough to need fewer).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
from river import drift

from detectors.error_rate import ErrorRateDriftDetector
from detectors.numeric import NumericDriftDetector

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "detection"

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


def detector_sections(seeds: range, only: set[str]) -> None:
    """The ``numeric`` and ``errors`` sections: detectors fed values directly."""
    numeric = {
        "driftline": (ours, NumericDriftDetector),
        "river ADWIN": (river_alarms, drift.ADWIN),
        "river PH": (river_alarms, drift.PageHinkley),
    }
    if "numeric" in only:
        print("Numeric features: false alarms per 100k stationary values")
        print(f"{'':14}" + "".join(f"{s:>14}" for s in SHAPES))
        for name, (run, factory) in numeric.items():
            cells = []
            for make in SHAPES.values():
                total = sum(
                    len(run(factory, make(np.random.default_rng(s), 100_000))) for s in seeds
                )
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
        print()
    if "errors" not in only:
        return
    errors = {
        "driftline": (ours, ErrorRateDriftDetector),
        "river ADWIN": (river_alarms, drift.ADWIN),
        "river PH up": (river_alarms, lambda: drift.PageHinkley(mode="up")),
    }
    print("Error streams (0/1): false alarms per 100k stationary outcomes")
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
    print()


# -- whole models through the Monitor ------------------------------------------------------------

T0 = 1_795_255_200_000
SPACING_MS = 2_000  # one prediction every 2 s: 43,200 a day, so two days of labels fit the join
DELAYS_MS = (300_000, 3_600_000, 21_600_000, 172_800_000)  # 5 min, 1 h, 6 h, 2 days

# positive rate, outcomes of a stationary stream, the change's index, outcomes of a changed one
RARE = {
    "0.5 %": (0.005, 150_000, 50_000, 120_000),
    "1 %": (0.01, 100_000, 25_000, 60_000),
    "5 %": (0.05, 50_000, 6_000, 20_000),
    "30 %": (0.30, 50_000, 3_000, 10_000),
}
MODELS = {
    # positive rate, recall, false positive rate
    "weak (F1 ~0.21)": (0.30, 0.12, 0.01),
    "strong (F1 ~0.95)": (0.05, 0.95, 0.0026),
}
MODELS_OUTCOMES = 50_000


def classifier(
    rng: np.random.Generator,
    n: int,
    positive_rate: float,
    recall: float,
    false_positive_rate: float,
    change: int | None = None,
    recall_after: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions of a binary classifier; from ``change`` on, ``recall_after``."""
    labels = rng.random(n) < positive_rate
    caught = np.full(n, recall)
    if change is not None:
        caught[change:] = recall_after
    predicted = np.where(labels, rng.random(n) < caught, rng.random(n) < false_positive_rate)
    return labels, predicted


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def through_monitor(
    labels: np.ndarray, predicted: np.ndarray, delays_ms: np.ndarray, spacing_ms: int = SPACING_MS
) -> tuple[list[tuple[str, str, int]], list[tuple[int, int]], np.ndarray]:
    """Run a stream through a fresh Monitor (default configuration), in event-time order.

    Returns the alerts (type, status, event time), the retrain commands (decision time,
    window start) and every outcome's label time.
    """
    from detectors.monitor import Monitor  # the checkout's, or the baseline's
    from schemas import Label, Prediction

    n = len(labels)
    predicted_at = T0 + np.arange(n, dtype=np.int64) * spacing_ms
    labelled_at = predicted_at + delays_ms.astype(np.int64)
    # Predictions and labels merged by event time (a label after its prediction).
    times = np.concatenate([predicted_at, labelled_at])
    order = np.lexsort((np.arange(2 * n), times))
    label_list, predicted_list = labels.tolist(), predicted.tolist()
    at_list = times.tolist()
    monitor = Monitor()
    emitted = []
    batch = []
    for position in order.tolist():
        at = at_list[position]
        if position < n:
            batch.append(
                Prediction(
                    model_id="m",
                    model_version="1",
                    prediction_id=str(position),
                    timestamp=at,
                    prediction=predicted_list[position],
                )
            )
        else:
            i = position - n
            batch.append(
                Label(model_id="m", prediction_id=str(i), timestamp=at, label=label_list[i])
            )
        if len(batch) == 2_000:
            emitted += monitor.process(batch)
            batch = []
    emitted += monitor.process(batch)
    alerts, retrains = [], []
    for event in emitted:
        data = event.data
        if event.type.endswith(".retrain"):
            retrains.append((ms(event.time), ms(data.window.start)))
        elif event.type.startswith("io.driftline.alert."):
            alerts.append((event.type.rsplit(".", 1)[1], data.status, ms(data.event_time)))
    return alerts, retrains, labelled_at


def score_stream(
    alerts: list[tuple[str, str, int]],
    retrains: list[tuple[int, int]],
    labelled_at: np.ndarray,
    change: int | None,
    watched: tuple[str, ...] = ("performance_degradation", "concept_drift"),
    spacing_ms: int = SPACING_MS,
) -> dict[str, Any]:
    """Episodes before the change, and the first detection, delay and retrains after it."""
    n = len(labelled_at)
    if change is None:
        boundary = math.inf
    else:
        boundary = int(labelled_at[change:].min())  # the first changed outcome's label
    firing = [(kind, at) for kind, status, at in alerts if status == "firing" and kind in watched]
    out: dict[str, Any] = {"outcomes": n if change is None else change}
    for kind in watched:
        out[kind] = sum(1 for k, at in firing if k == kind and at < boundary)
    out["retrains"] = sum(1 for at, _ in retrains if at < boundary)
    if change is None:
        return out
    after = sorted(at for _, at in firing if at >= boundary)
    changed = np.sort(labelled_at[change:])
    out["delay"] = int(np.searchsorted(changed, after[0], side="right")) if after else None
    later = [(at, start) for at, start in retrains if at >= boundary]
    out["retrains_after"] = len(later)
    change_ms = T0 + change * spacing_ms
    # Where the first retrain's window starts, in predictions from the change (negative: before).
    out["window_offset"] = (later[0][1] - change_ms) / spacing_ms if later else None
    return out


def rare_task(case: str, seed: int, changed: bool) -> dict[str, Any]:
    positive_rate, stationary, change, total = RARE[case]
    rng = np.random.default_rng([13, int(positive_rate * 1000), seed, changed])
    n = total if changed else stationary
    at = change if changed else None
    labels, predicted = classifier(
        rng, n, positive_rate, 0.8, positive_rate * 0.25, at, recall_after=0.4
    )
    delay = DELAYS_MS[seed % len(DELAYS_MS)]
    delays = delay * rng.uniform(0.5, 1.5, n)
    # The change comes four days in (labels of unchanged traffic have arrived by then, however
    # late): at least one prediction every 2 s, fewer for the shorter streams.
    spacing = max(SPACING_MS, math.ceil(4 * 86_400_000 / change))
    alerts, retrains, labelled_at = through_monitor(labels, predicted, delays, spacing)
    return score_stream(alerts, retrains, labelled_at, at, spacing_ms=spacing)


def models_task(case: str, seed: int) -> dict[str, Any]:
    positive_rate, recall, false_positive_rate = MODELS[case]
    rng = np.random.default_rng([14, seed, len(case)])
    labels, predicted = classifier(rng, MODELS_OUTCOMES, positive_rate, recall, false_positive_rate)
    delays = DELAYS_MS[seed % len(DELAYS_MS)] * rng.uniform(0.5, 1.5, MODELS_OUTCOMES)
    return score_stream(*through_monitor(labels, predicted, delays), None)


# -- river's synthetic concept-drift streams -----------------------------------------------------

TRAIN, DRIFT_AT, SYNTHETIC_N = 5_000, 15_000, 27_000
LABEL_LAG = 100  # samples


def synthetic_source(case: str, seed: int) -> tuple[Iterator, int]:
    """A river stream with one drift, and the sample where the drift starts."""
    from river.datasets import synth

    def sudden(before: Iterator, after: Iterator) -> Iterator:
        return itertools.chain(itertools.islice(before, DRIFT_AT), after)

    if case == "SEA sudden":
        return sudden(
            synth.SEA(0, noise=0.05, seed=seed), synth.SEA(3, noise=0.05, seed=seed + 1)
        ), DRIFT_AT
    if case == "Agrawal sudden":
        return sudden(
            synth.Agrawal(classification_function=0, seed=seed),
            synth.Agrawal(classification_function=2, seed=seed + 1),
        ), DRIFT_AT
    if case == "Hyperplane sudden":
        return sudden(
            synth.Hyperplane(seed=seed, n_features=10),
            synth.Hyperplane(seed=seed + 10_000, n_features=10),
        ), DRIFT_AT
    width = 3_000
    if case == "SEA gradual":
        stream = synth.ConceptDriftStream(
            stream=synth.SEA(0, noise=0.05, seed=seed),
            drift_stream=synth.SEA(3, noise=0.05, seed=seed + 1),
            position=DRIFT_AT,
            width=width,
            seed=seed,
        )
        return iter(stream), DRIFT_AT - width // 2
    if case == "Agrawal gradual":
        stream = synth.ConceptDriftStream(
            stream=synth.Agrawal(classification_function=1, seed=seed),
            drift_stream=synth.Agrawal(classification_function=4, seed=seed + 1),
            position=DRIFT_AT,
            width=width,
            seed=seed,
        )
        return iter(stream), DRIFT_AT - width // 2
    raise ValueError(case)


SYNTHETIC = ("SEA sudden", "Agrawal sudden", "Hyperplane sudden", "SEA gradual", "Agrawal gradual")


def synthetic_stream(case: str, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(labels, predictions) of the frozen model after training, and the drift's index in them
    (cached: a Hoeffding tree costs ~1 s a stream)."""
    from river import tree

    path = CACHE / f"{case.replace(' ', '-')}-{seed}.npz"
    if path.exists():
        cached = np.load(path)
        return cached["labels"], cached["predicted"], int(cached["drift"])
    source, drift_at = synthetic_source(case, seed)
    model = tree.HoeffdingTreeClassifier()
    labels, predicted = [], []
    for i, (x, y) in enumerate(itertools.islice(source, SYNTHETIC_N)):
        if i < TRAIN:
            model.learn_one(x, y)
        else:
            labels.append(bool(y))
            predicted.append(bool(model.predict_one(x)))
    out = np.array(labels), np.array(predicted), drift_at - TRAIN
    CACHE.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.npz")
    np.savez(temporary, labels=out[0], predicted=out[1], drift=out[2])
    temporary.replace(path)
    return out


def synthetic_task(case: str, seed: int, adwin: bool) -> dict[str, Any]:
    labels, predicted, drift_at = synthetic_stream(case, seed)
    delays = np.full(len(labels), LABEL_LAG * SPACING_MS, dtype=np.int64)
    alerts, retrains, labelled_at = through_monitor(labels, predicted, delays)
    out = score_stream(alerts, retrains, labelled_at, drift_at, watched=("concept_drift",))
    if adwin:
        hits = river_alarms(drift.ADWIN, (labels != predicted).astype(float))
        out["adwin_false"] = sum(1 for h in hits if h < drift_at)
        later = [h for h in hits if h >= drift_at]
        out["adwin_delay"] = later[0] - drift_at + 1 if later else None
    return out


# -- running and printing ------------------------------------------------------------------------


def _task(spec: tuple) -> tuple[tuple, dict[str, Any]]:
    kind, *args = spec
    if kind == "rare":
        return spec, rare_task(*args)
    if kind == "models":
        return spec, models_task(*args)
    return spec, synthetic_task(*args)


def tasks(only: set[str], seeds: int, adwin: bool, rare: str = "both") -> list[tuple]:
    out: list[tuple] = []
    for seed in range(seeds):
        if "rare" in only:
            kinds = {"both": (False, True), "stationary": (False,), "change": (True,)}[rare]
            out += [("rare", case, seed, changed) for case in RARE for changed in kinds]
        if "models" in only:
            out += [("models", case, seed) for case in MODELS]
        if "synthetic" in only:
            out += [("synthetic", case, seed, adwin) for case in SYNTHETIC]
    return out


def run_all(specs: list[tuple], workers: int) -> dict[tuple, dict[str, Any]]:
    with Pool(workers) as pool:
        return dict(pool.imap_unordered(_task, specs, chunksize=1))


def per_100k(results: list[dict[str, Any]], key: str) -> float:
    outcomes = sum(r["outcomes"] for r in results)
    return 100_000 * sum(r[key] for r in results) / outcomes if outcomes else math.nan


def median(values: list[float | None]) -> str:
    finite = [v for v in values if v is not None]
    return f"{np.median(finite):,.0f}" if finite else "-"


def summarise(results: dict[tuple, dict[str, Any]]) -> dict[str, Any]:
    """The printed figures, as plain data (what the baseline's run hands back)."""
    out: dict[str, Any] = {}
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for spec, result in results.items():
        key = (spec[0], spec[1], spec[3] if spec[0] == "rare" else False)
        groups.setdefault(key, []).append(result)
    for (kind, case, changed), rows in sorted(groups.items()):
        figures: dict[str, Any] = {"streams": len(rows)}
        figures["performance_per_100k"] = (
            per_100k(rows, "performance_degradation") if kind != "synthetic" else None
        )
        figures["concept_per_100k"] = per_100k(rows, "concept_drift")
        figures["retrains_per_100k"] = per_100k(rows, "retrains")
        if changed or kind == "synthetic":
            delays = [r["delay"] for r in rows]
            figures["detected"] = sum(d is not None for d in delays)
            figures["median_delay"] = median(delays)
            figures["false_before"] = sum(
                r.get("performance_degradation", 0) + r["concept_drift"] for r in rows
            )
            detected = [r for r in rows if r["delay"] is not None]
            figures["one_retrain_after"] = sum(r["retrains_after"] == 1 for r in detected)
            figures["retrains_after"] = sum(r["retrains_after"] for r in rows)
            figures["window_offset"] = median([r["window_offset"] for r in rows])
        if kind == "synthetic" and "adwin_delay" in rows[0]:
            adwin = [r["adwin_delay"] for r in rows]
            figures["adwin_detected"] = sum(d is not None for d in adwin)
            figures["adwin_median_delay"] = median(adwin)
            figures["adwin_false_before"] = sum(r["adwin_false"] for r in rows)
        out[f"{kind}|{case}|{'change' if changed else 'stationary'}"] = figures
    return out


def report(columns: dict[str, dict[str, Any]]) -> None:
    """Print each section's table, one block per policy (this checkout, the baseline)."""
    keys = sorted({key for figures in columns.values() for key in figures})

    def show(title: str, kind: str, change: str, fields: list[tuple[str, str, str]]) -> None:
        rows = [k for k in keys if k.startswith(f"{kind}|") and k.endswith(f"|{change}")]
        if not rows:
            return
        print(title)
        print(f"{'':20}{'policy':>12}" + "".join(f"{label:>{width}}" for label, _, width in fields))
        for key in rows:
            case = key.split("|")[1]
            for policy, figures in columns.items():
                if key not in figures:
                    continue
                cells = []
                for _, name, width in fields:
                    value = figures[key].get(name)
                    if isinstance(value, float):
                        value = f"{value:.2f}"
                    cells.append(f"{'-' if value is None else value:>{width}}")
                print(f"{case:20}{policy:>12}" + "".join(cells))
        print()

    per_100k_fields = [
        ("streams", "streams", "8"),
        ("performance", "performance_per_100k", "13"),
        ("concept", "concept_per_100k", "9"),
        ("retrains", "retrains_per_100k", "10"),
    ]
    show(
        "Imbalanced classifiers, stationary: episodes and retrains per 100k outcomes",
        "rare",
        "stationary",
        per_100k_fields,
    )
    show(
        "Recall on positives halves: streams detected, median delay (labelled outcomes after the "
        "change),\nfalse episodes before it, retrains after it, retrain window start - change "
        "(predictions)",
        "rare",
        "change",
        [
            ("streams", "streams", "8"),
            ("detected", "detected", "10"),
            ("delay", "median_delay", "9"),
            ("false before", "false_before", "14"),
            ("one retrain", "one_retrain_after", "13"),
            ("window", "window_offset", "9"),
        ],
    )
    show(
        "Weak and strong stable models: episodes and retrains per 100k outcomes",
        "models",
        "stationary",
        per_100k_fields,
    )
    show(
        "river's synthetic drifts (frozen Hoeffding tree): concept drifts detected, median delay "
        "(labelled\noutcomes), false alarms before the drift, detected drifts followed by exactly "
        "one retrain;\nriver ADWIN at its defaults on the same error streams",
        "synthetic",
        "stationary",
        [
            ("streams", "streams", "8"),
            ("detected", "detected", "10"),
            ("delay", "median_delay", "8"),
            ("false", "false_before", "7"),
            ("one retrain", "one_retrain_after", "13"),
            ("ADWIN det.", "adwin_detected", "12"),
            ("delay", "adwin_median_delay", "8"),
            ("false", "adwin_false_before", "7"),
        ],
    )


def baseline_figures(
    ref: str, only: set[str], seeds: int, workers: int, rare: str
) -> dict[str, Any]:
    """Run the model sections with the detectors of git revision ``ref``."""
    workdir = Path(tempfile.mkdtemp(prefix="driftline-detection-"))
    where = workdir / "baseline"
    try:
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(where), ref],
            cwd=REPO,
            check=True,
        )
        env = {**os.environ, "PYTHONPATH": str(where)}
        sections = [name for name in ("rare", "models", "synthetic") if name in only]
        command = [sys.executable, str(Path(__file__).resolve()), "--json"]
        command += ["--seeds", str(seeds), "--workers", str(workers), "--no-adwin"]
        command += ["--rare", rare]
        for name in sections:
            command += ["--only", name]
        done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
        return json.loads(done.stdout)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(where)], cwd=REPO, check=False)
        shutil.rmtree(workdir, ignore_errors=True)


SECTIONS = ("numeric", "errors", "rare", "models", "synthetic")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=SECTIONS, action="append")
    parser.add_argument("--seeds", type=int, default=200, help="streams per case (models)")
    parser.add_argument("--detector-seeds", type=int, default=10, help="numeric, errors")
    parser.add_argument("--baseline", metavar="REF", help="also run git revision REF's policy")
    parser.add_argument("--baseline-seeds", type=int, default=50)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--rare", choices=("both", "stationary", "change"), default="both", help="rare's streams"
    )
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-adwin", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    only = set(args.only or SECTIONS)
    if not args.json:
        detector_sections(range(args.detector_seeds), only)
    specs = tasks(only, args.seeds, adwin=not args.no_adwin, rare=args.rare)
    if not specs:
        return
    figures = summarise(run_all(specs, args.workers))
    if args.json:
        json.dump(figures, sys.stdout)
        return
    columns = {"driftline": figures}
    if args.baseline:
        columns[args.baseline[:12]] = baseline_figures(
            args.baseline, only, args.baseline_seeds, args.workers, args.rare
        )
    report(columns)


if __name__ == "__main__":
    main()
