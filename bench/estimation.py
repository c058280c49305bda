"""Performance estimation before labels, side by side with NannyML's CBPE, and its cost.

    python bench/estimation.py [--seeds 20] [--nannyml PYTHON]

For each seed, a binary classifier (``P(y | x) = sigmoid(3x - 1.5)``; its score that
probability, or a monotone distortion of it on odd seeds) serves 20,000 reference predictions
(labelled) and 20,000 analysis predictions whose inputs crowd its decision boundary from the
middle on (F1 0.77 -> 0.64). Both estimators calibrate on the reference and estimate F1 and ROC
AUC per chunk of 1,000 analysis predictions; the figure is the mean absolute error against what
each chunk realised (its labels, which neither saw).

* driftline: its core's calibration and estimate (:mod:`detectors.calibration`,
  :mod:`detectors.estimation`), as a version's estimator computes them;
* NannyML: ``nannyml.CBPE`` (``problem_type="classification_binary"``, ``chunk_size=1000``).
  It is not one of driftline's dependencies (it pins its own numpy, pandas and plotting
  stack): give a Python that has it with ``--nannyml`` (or ``NANNYML_PYTHON``), e.g.
  ``python -m venv .nannyml && .nannyml/bin/pip install nannyml==0.13.1 statsmodels``.

Also printed: driftline's cost per prediction of the estimation (the Monitor over the same
stream with ``estimation.enabled`` on and off, predictions and labels, in-process; medians of
six alternated runs each), for this binary model, for a calibrated 3-class model sending
class -> probability maps, and for a regression model sending five numeric features whose MAE
is estimated (DLE, :mod:`detectors.loss_estimator`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors.calibration import IsotonicCalibration  # (the repository's, not an install)
from detectors.config import MonitorConfig
from detectors.estimation import estimate_binary
from detectors.monitor import Monitor
from schemas import Label, Prediction

REFERENCE = ANALYSIS = 20_000
CHUNK = 1000
T0 = 1_795_255_200_000

NANNYML_SCRIPT = """
import json, sys
import numpy as np, pandas as pd, nannyml as nml
data = np.load(sys.argv[1])
out = {}
for seed in json.loads(sys.argv[2]):
    ref = pd.DataFrame({"p": data[f"ref_p_{seed}"], "yhat": data[f"ref_yhat_{seed}"],
                        "y": data[f"ref_y_{seed}"]})
    ana = pd.DataFrame({"p": data[f"ana_p_{seed}"], "yhat": data[f"ana_yhat_{seed}"]})
    cbpe = nml.CBPE(y_pred_proba="p", y_pred="yhat", y_true="y", metrics=["f1", "roc_auc"],
                    chunk_size=CHUNK, problem_type="classification_binary")
    cbpe.fit(ref)
    result = cbpe.estimate(ana).filter(period="analysis").to_df()
    out[str(seed)] = {m: result[(m, "value")].tolist() for m in ("f1", "roc_auc")}
print(json.dumps(out))
""".replace("CHUNK", str(CHUNK))


def stream(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = REFERENCE + ANALYSIS
    crowded = np.arange(n) >= REFERENCE + ANALYSIS // 2
    x = np.where(crowded, rng.normal(0.5, 0.25, n), rng.normal(0.0, 1.0, n))
    truth = 1 / (1 + np.exp(-(3 * x - 1.5)))
    y = rng.random(n) < truth
    score = truth if seed % 2 == 0 else 1 / (1 + np.exp(-(1.2 * (3 * x - 1.5) + 0.4)))
    return {"p": np.round(score, 6), "yhat": score > 0.5, "y": y}


def realised(y: np.ndarray, yhat: np.ndarray, p: np.ndarray) -> dict[str, float]:
    tp = np.count_nonzero(y & yhat)
    f1 = 2 * tp / (np.count_nonzero(y) + np.count_nonzero(yhat))
    ranks = np.argsort(np.argsort(p, kind="stable"), kind="stable") + 1.0
    n1 = np.count_nonzero(y)
    auc = (ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(y) - n1))
    return {"f1": float(f1), "roc_auc": float(auc)}


def driftline_estimates(data: dict[str, np.ndarray]) -> dict[str, list[float]]:
    calibration = IsotonicCalibration.fit(data["p"][:REFERENCE], data["y"][:REFERENCE])
    out: dict[str, list[float]] = {"f1": [], "roc_auc": []}
    for start in range(REFERENCE, REFERENCE + ANALYSIS, CHUNK):
        part = slice(start, start + CHUNK)
        scores = data["p"][part]
        estimate = estimate_binary(calibration(scores), data["yhat"][part], scores)
        for metric in out:
            out[metric].append(estimate.values[metric])
    return out


def nannyml_estimates(python: str, streams: dict[int, dict[str, np.ndarray]]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "streams.npz"
        arrays = {}
        for seed, data in streams.items():
            for name in ("p", "yhat", "y"):
                arrays[f"ref_{name}_{seed}"] = data[name][:REFERENCE]
                arrays[f"ana_{name}_{seed}"] = data[name][REFERENCE:]
        np.savez(path, **arrays)
        result = subprocess.run(
            [python, "-c", NANNYML_SCRIPT, str(path), json.dumps(list(streams))],
            capture_output=True,
            text=True,
            check=True,
        )
    return {int(k): v for k, v in json.loads(result.stdout.strip().splitlines()[-1]).items()}


def binary_events(seed: int) -> list:
    """The stream's predictions, each followed by its label."""
    data = stream(seed)
    events = []
    for i in range(REFERENCE + ANALYSIS):
        ts = T0 + i * 1000
        events.append(
            Prediction(
                model_id="m",
                model_version="1",
                prediction_id=f"p{i}",
                timestamp=ts,
                prediction=bool(data["yhat"][i]),
                score=float(data["p"][i]),
            )
        )
        events.append(
            Label(model_id="m", prediction_id=f"p{i}", timestamp=ts, label=bool(data["y"][i]))
        )
    return events


def multiclass_events(seed: int) -> list:
    """A calibrated 3-class model (``P(y | x) = softmax(2 W x)``, ``x`` in the plane) sending
    class -> probability maps, each prediction followed by its label."""
    rng = np.random.default_rng(seed)
    n = REFERENCE + ANALYSIS
    angles = np.array([np.pi / 2, -np.pi / 6, 7 * np.pi / 6])
    logits = rng.normal(size=(n, 2)) @ (2 * np.column_stack([np.cos(angles), np.sin(angles)])).T
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = (rng.random((n, 1)) > p.cumsum(axis=1)).sum(axis=1).clip(0, 2)
    names = ("a", "b", "c")
    events = []
    for i, row in enumerate(np.round(p, 6).tolist()):
        ts = T0 + i * 1000
        scores = dict(zip(names, row, strict=True))
        events.append(
            Prediction(
                model_id="m",
                model_version="1",
                prediction_id=f"p{i}",
                timestamp=ts,
                prediction=names[int(np.argmax(row))],
                score=scores,
            )
        )
        events.append(
            Label(model_id="m", prediction_id=f"p{i}", timestamp=ts, label=names[labels[i]])
        )
    return events


def regression_events(seed: int) -> list:
    """A regression model (``bench/dle.py``'s law: ``yhat = x0 + 1.5 x2 + 0.8 x3`` of five
    numeric features, its noise growing with x0) sending its features, each prediction
    followed by its label."""
    rng = np.random.default_rng(seed)
    n = REFERENCE + ANALYSIS
    x = np.round(rng.normal(size=(n, 5)), 6)
    yhat = np.round(x[:, 0] + 1.5 * x[:, 2] + 0.8 * x[:, 3], 6)
    y = np.round(yhat + 0.5 * np.exp(0.45 * x[:, 0]) * rng.standard_normal(n), 6)
    names = ("x0", "x1", "x2", "x3", "x4")
    events = []
    rows = zip(x.tolist(), yhat.tolist(), y.tolist(), strict=True)
    for i, (row, prediction, label) in enumerate(rows):
        ts = T0 + i * 1000
        features = dict(zip(names, row, strict=True))
        events.append(Prediction("m", "1", f"p{i}", ts, prediction, features=features))
        events.append(Label(model_id="m", prediction_id=f"p{i}", timestamp=ts, label=label))
    return events


def cost_per_prediction(events: list) -> tuple[float, float]:
    """Seconds per prediction (with its label) through the Monitor, estimation on and off."""
    configs = {
        enabled: MonitorConfig.from_dict({"defaults": {"estimation": {"enabled": enabled}}})
        for enabled in (True, False)
    }
    runs: dict[bool, list[float]] = {True: [], False: []}
    # Alternated (on, off, off, on, ...) and medians: this machine's speed drifts.
    for round_ in range(6):
        for enabled in (True, False) if round_ % 2 == 0 else (False, True):
            monitor = Monitor(configs[enabled])
            start = time.perf_counter()
            for i in range(0, len(events), 1000):
                monitor.process(events[i : i + 1000])
            runs[enabled].append((time.perf_counter() - start) / (len(events) / 2))
    timings = [statistics.median(runs[True]), statistics.median(runs[False])]
    return timings[0], timings[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--nannyml", default=os.environ.get("NANNYML_PYTHON"))
    args = parser.parse_args()
    streams = {seed: stream(seed) for seed in range(args.seeds)}
    truth = {
        seed: [
            realised(
                data["y"][s : s + CHUNK], data["yhat"][s : s + CHUNK], data["p"][s : s + CHUNK]
            )
            for s in range(REFERENCE, REFERENCE + ANALYSIS, CHUNK)
        ]
        for seed, data in streams.items()
    }
    ours = {seed: driftline_estimates(data) for seed, data in streams.items()}
    theirs = nannyml_estimates(args.nannyml, streams) if args.nannyml else None
    print(f"{args.seeds} streams x {ANALYSIS // CHUNK} chunks of {CHUNK} analysis predictions")
    for metric in ("f1", "roc_auc"):
        for name, estimates in (("driftline", ours), ("NannyML CBPE", theirs)):
            if estimates is None:
                print(f"  {metric:<8} {name:<13} (no --nannyml: not run)")
                continue
            errors = [
                abs(estimates[seed][metric][k] - truth[seed][k][metric])
                for seed in streams
                for k in range(ANALYSIS // CHUNK)
            ]
            print(f"  {metric:<8} {name:<13} mean absolute error {np.mean(errors):.4f}")
    for kind, events in (
        ("binary", binary_events(0)),
        ("3-class", multiclass_events(0)),
        ("regression (5 features)", regression_events(0)),
    ):
        on, off = cost_per_prediction(events)
        print(
            f"driftline Monitor, a {kind} prediction and its label: {off * 1e6:.1f} us without "
            f"estimation, {on * 1e6:.1f} us with it ({(on - off) * 1e6:+.1f} us)"
        )


if __name__ == "__main__":
    main()
