"""Direct loss estimation (DLE) of a regression model's MAE before labels: does it hold up?

    python bench/dle.py [--seeds 20]

For each seed a regression model serves a stream of predictions, one every 10 s of event time
(8,640 a day), whose labels come a day later. Five inputs ``x ~ N(0, I)``; the truth is
``y = x0 + 1.5 x2 + 0.8 x3 + b(x) + s(x) e`` with ``e ~ N(0, 1)``, the model
``yhat = x0 + 1.5 x2 + 0.8 x3`` (it misses ``b``, a bias in ``x3``), bias and noise smooth on
even seeds, in steps on odd ones:

    even  b(x) = c (x3^2 - 1)    s(x) = 0.5 exp(g x0)                     c ~ U(0.15, 0.3)
    odd   b(x) = 3c [x3 > 1]     s(x) = 0.25 + 0.25 |x0| + h [x1 > 0.5]   g ~ U(0.35, 0.55)
                                                                          h ~ U(0.4, 0.6)

so the absolute error depends on ``x0``, ``x1`` and ``x3``, not on ``x2`` or ``x4`` (which
move the prediction). The first 2,000 labelled outcomes are the reference: each candidate
learns ``(x, yhat) -> |y - yhat|`` on them, then estimates the MAE of the last 1,000
predictions (from the reference on), checked every 100 with a one-sided test against the
reference (see ``check``). From day 2 on, ``shift``:

``hurts``     ``x0, x1 ~ N(1, 1)``: inputs move to where the model is worse, inside the
              reference's range (the MAE rises by 30-55 %);
``beyond``    ``x0 ~ N(3, 0.5)``: most inputs beyond the reference's range (MAE x1.7-4);
``harmless``  ``x2, x4 ~ N(2, 1)``: the predictions move (by +3 on average, many beyond the
              reference's range), the error does not;
``concept``   inputs unchanged, labels ``y + 0.5``: the realised MAE rises, the estimate must
              not move;
(none)        seven stationary days: false alarms.

The candidates (see their classes): ridge regressions on the standardised inputs and their
squares, of ``|e|`` or ``log |e|``, their inputs clipped to the reference's range or not, the
penalty fixed or chosen by leave-one-out; ``loss_estimation.py``, the one kept
(:class:`detectors.loss_estimation.AbsoluteErrorModel`: ridge, leave-one-out, clipped, and the
coefficients' uncertainty in its band); an additive model of quantile bins, a grid of bins over
the two most telling inputs, k nearest neighbours. ``oracle`` is the true conditional expected
absolute error, the best any candidate can do; ``constant`` the reference MAE, no model at all.

The figures, per candidate:

* *track*: mean absolute gap between the estimated MAE of a window and the MAE it realised
  (its labels), over every check of the run, in % of the reference MAE; *track after*: over
  the checks whose window is all shifted;
* *alert*: streams whose alert "estimated MAE significantly above reference" fired after the
  shift and before the first shifted label came (day 3), and the median delay in hours;
  *early*: streams whose alert fired before the shift;
* *moved*: the estimate's change (mean over the shifted day and a half against the half day
  before the shift), in % of the reference MAE;
* *max z*: the highest test statistic over the harmless streams' checks;
* *false /100k*: alerts per 100,000 stationary predictions; *(none)*: the same with no
  margin; *z sd*: the standard deviation of the test statistic on stationary streams with no
  margin (1 if the band is right);
* *fit ms*, *us/pred*: to fit on the reference, and per prediction in batches of 100.

The check: ``E`` the mean of the predicted absolute errors over the window, ``R`` the same over
the reference (the model's own in-sample estimate: a model's bias cancels), ``s`` and ``s_ref``
their standard errors (the predicted errors' standard deviations over sqrt(n)); the line is
``R (1 + min_rise)``, ``z = (E - line) / sqrt(s^2 + s_ref^2)``, fires past ``z(1 - alpha)`` and
clears once ``z <= 0`` (as the binary estimator's check). ``loss_estimation.py`` adds the
coefficients' uncertainty to the band (its module's docstring).
"""

from __future__ import annotations

import os

# One core (before numpy loads its BLAS).
os.environ["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS", "1")
os.environ["OPENBLAS_NUM_THREADS"] = os.environ.get("OPENBLAS_NUM_THREADS", "1")
os.environ["MKL_NUM_THREADS"] = os.environ.get("MKL_NUM_THREADS", "1")

import argparse
import math
import sys
import time
from pathlib import Path
from statistics import NormalDist

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors.loss_estimation import AbsoluteErrorModel  # (the repository's, not an install)

PER_DAY = 8640  # predictions a day, one every 10 s; a label comes PER_DAY predictions later
SHIFT = 2 * PER_DAY  # the first shifted prediction
FIRST_SHIFTED_LABEL = SHIFT + PER_DAY
DAYS = 3.5
STATIONARY_DAYS = 7.0
REFERENCE = 2000
WINDOW = 1000
EVERY = 100
ALPHA = 1e-3
MIN_RISE = 0.1  # an estimated MAE 10 % above the reference's is what matters
INPUTS = 5
SHIFTS = ("hurts", "beyond", "harmless", "concept", None)
SEED_BASE = {"hurts": 0, "beyond": 1000, "harmless": 2000, "concept": 3000, None: 4000}


# -- the streams ---------------------------------------------------------------------------


def _erf(v: np.ndarray) -> np.ndarray:
    """Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7)."""
    sign = np.sign(v)
    a = np.abs(v)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return sign * (1.0 - poly * np.exp(-a * a))


def folded_mean(bias: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``E |b + s e|``, ``e ~ N(0, 1)``."""
    r = bias / scale
    return scale * math.sqrt(2 / math.pi) * np.exp(-0.5 * r * r) + bias * _erf(r / math.sqrt(2))


def stream(seed: int, shift: str | None, days: float = DAYS) -> dict[str, np.ndarray]:
    """Inputs, predictions, labels and the true conditional expected absolute error."""
    rng = np.random.default_rng(seed)
    n = int(days * PER_DAY)
    shifted = (np.arange(n) >= SHIFT) & (shift is not None)
    mean = np.zeros((n, INPUTS))
    sd = np.ones((n, INPUTS))
    if shift == "hurts":
        mean[shifted, 0] = mean[shifted, 1] = 1.0
    elif shift == "beyond":
        mean[shifted, 0], sd[shifted, 0] = 3.0, 0.5
    elif shift == "harmless":
        mean[shifted, 2] = mean[shifted, 4] = 2.0
    x = rng.normal(mean, sd)
    c = rng.uniform(0.15, 0.3)
    if seed % 2 == 0:
        scale = 0.5 * np.exp(rng.uniform(0.35, 0.55) * x[:, 0])
    else:
        scale = 0.25 + 0.25 * np.abs(x[:, 0]) + rng.uniform(0.4, 0.6) * (x[:, 1] > 0.5)
    yhat = x[:, 0] + 1.5 * x[:, 2] + 0.8 * x[:, 3]
    if seed % 2 == 0:
        bias = c * (x[:, 3] ** 2 - 1)
    else:
        bias = 3 * c * (x[:, 3] > 1)
    y = (
        yhat
        + bias
        + scale * rng.standard_normal(n)
        + np.where(shifted & (shift == "concept"), 0.5, 0.0)
    )
    return {"x": x, "yhat": yhat, "y": y, "expected": folded_mean(bias, scale)}


# -- the candidates ------------------------------------------------------------------------


class Constant:
    """No model: the reference's MAE."""

    def fit(self, x, yhat, err):
        self.value = float(err.mean())
        return self

    def predict(self, x, yhat):
        return np.full(len(yhat), self.value)


class Oracle:
    """The true conditional expected absolute error (under the reference's labels)."""

    def fit(self, x, yhat, err):
        return self

    def predict(self, x, yhat):
        raise NotImplementedError  # (read from the stream)


def _inputs(x: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    return np.column_stack([x, yhat])


class Standardised:
    """Inputs centred and scaled by the reference; optionally clipped to its range."""

    clip = False

    def _fit_scale(self, z: np.ndarray) -> np.ndarray:
        self.mu, self.sd = z.mean(axis=0), z.std(axis=0) + 1e-12
        u = (z - self.mu) / self.sd
        self.low, self.high = u.min(axis=0), u.max(axis=0)
        return u

    def _scale(self, z: np.ndarray) -> np.ndarray:
        u = (z - self.mu) / self.sd
        return np.clip(u, self.low, self.high) if self.clip else u


class Ridge(Standardised):
    """Ridge regression on ``[u, u^2]`` (columns standardised on the reference, an intercept
    not penalised), ``u`` the standardised inputs; of the absolute error (``log=False``,
    floored at 1 % of the reference MAE) or of its log (``log=True``, back with exp and the
    in-sample ratio of means). The penalty ``ridge``, or (``ridge=None``) the one of a grid
    with the least leave-one-out squared error (closed form, from an SVD)."""

    GRID = np.logspace(-1, 5, 25)

    def __init__(self, log: bool = False, clip: bool = False, ridge: float | None = 1.0):
        self.log, self.clip, self.ridge = log, clip, ridge

    def _design(self, u: np.ndarray) -> np.ndarray:
        return (np.column_stack([u, u * u]) - self.a_mu) / self.a_sd

    def fit(self, x, yhat, err):
        u = self._fit_scale(_inputs(x, yhat))
        raw = np.column_stack([u, u * u])
        self.a_mu, self.a_sd = raw.mean(axis=0), raw.std(axis=0) + 1e-12
        a = self._design(u)
        self.floor = 0.01 * float(err.mean())
        target = np.log(np.maximum(err, self.floor)) if self.log else err
        self.b = float(target.mean())
        t = target - self.b
        left, s, right_t = np.linalg.svd(a, full_matrices=False)
        ut = left.T @ t
        grid = self.GRID if self.ridge is None else np.array([self.ridge])
        best = None
        for lam in grid:
            shrink = s * s / (s * s + lam)
            fitted = left @ (shrink * ut)
            leverage = (left * left) @ shrink + 1.0 / len(t)
            loo = float(np.mean(((t - fitted) / (1.0 - leverage)) ** 2))
            if best is None or loo < best[0]:
                best = (loo, lam)
        self.lam = best[1]
        self.w = right_t.T @ (s / (s * s + self.lam) * ut)
        self.factor = 1.0
        if self.log:
            self.factor = float(err.mean() / np.exp(self.b + a @ self.w).mean())
        return self

    def predict(self, x, yhat):
        f = self.b + self._design(self._scale(_inputs(x, yhat))) @ self.w
        if self.log:
            return self.factor * np.exp(np.minimum(f, 50.0))
        return np.maximum(f, self.floor)


class AdditiveBins:
    """``|error| ~ c + sum_j h_j(bin of input j)``: quantile bins of each input (the
    reference's), fitted by backfitting with shrinkage (a bin's value is its residuals' sum
    over its count + ``shrink``); beyond the reference's range, the edge bins."""

    def __init__(self, bins: int = 8, shrink: float = 10.0, passes: int = 10):
        self.bins, self.shrink, self.passes = bins, shrink, passes

    def _index(self, z: np.ndarray) -> list[np.ndarray]:
        return [np.searchsorted(e, z[:, j], side="right") for j, e in enumerate(self.edges)]

    def fit(self, x, yhat, err):
        z = _inputs(x, yhat)
        q = np.linspace(0, 1, self.bins + 1)[1:-1]
        self.edges = [np.unique(np.quantile(z[:, j], q)) for j in range(z.shape[1])]
        index = self._index(z)
        self.c = float(err.mean())
        self.h = [np.zeros(len(e) + 1) for e in self.edges]
        fitted = np.full(len(err), self.c)
        for _ in range(self.passes):
            for j, idx in enumerate(index):
                fitted -= self.h[j][idx]
                sums = np.bincount(idx, err - fitted, minlength=len(self.h[j]))
                counts = np.bincount(idx, minlength=len(self.h[j]))
                self.h[j] = sums / (counts + self.shrink)
                fitted += self.h[j][idx]
        self.floor = 0.01 * self.c
        return self

    def predict(self, x, yhat):
        out = np.full(len(yhat), self.c)
        for j, idx in enumerate(self._index(_inputs(x, yhat))):
            out += self.h[j][idx]
        return np.maximum(out, self.floor)


class GridBins:
    """A grid of quantile bins over the two inputs whose bins explain most of the absolute
    error, each cell's mean shrunk to the overall mean (``shrink`` outcomes' worth)."""

    def __init__(self, bins: int = 6, shrink: float = 20.0):
        self.bins, self.shrink = bins, shrink

    def fit(self, x, yhat, err):
        z = _inputs(x, yhat)
        q = np.linspace(0, 1, self.bins + 1)[1:-1]
        edges = [np.unique(np.quantile(z[:, j], q)) for j in range(z.shape[1])]
        explained = []
        for j, e in enumerate(edges):
            idx = np.searchsorted(e, z[:, j], side="right")
            means = np.bincount(idx, err) / np.maximum(np.bincount(idx), 1)
            explained.append(np.var(means[idx]))
        self.pick = np.argsort(explained)[-2:]
        self.edges = [edges[j] for j in self.pick]
        cell = self._cell(z)
        size = (len(self.edges[0]) + 1) * (len(self.edges[1]) + 1)
        self.c = float(err.mean())
        sums = np.bincount(cell, err - self.c, minlength=size)
        self.values = self.c + sums / (np.bincount(cell, minlength=size) + self.shrink)
        return self

    def _cell(self, z):
        a = np.searchsorted(self.edges[0], z[:, self.pick[0]], side="right")
        b = np.searchsorted(self.edges[1], z[:, self.pick[1]], side="right")
        return a * (len(self.edges[1]) + 1) + b

    def predict(self, x, yhat):
        return self.values[self._cell(_inputs(x, yhat))]


class NearestNeighbours(Standardised):
    """The mean absolute error of the ``k`` nearest reference outcomes (standardised inputs)."""

    def __init__(self, k: int = 50):
        self.k = k

    def fit(self, x, yhat, err):
        self.ref = self._fit_scale(_inputs(x, yhat))
        self.err = err.copy()
        self.norms = (self.ref**2).sum(axis=1)
        return self

    def predict(self, x, yhat):
        u = self._scale(_inputs(x, yhat))
        out = np.empty(len(u))
        for start in range(0, len(u), 2000):
            part = u[start : start + 2000]
            d = self.norms[None, :] - 2.0 * part @ self.ref.T
            near = np.argpartition(d, self.k, axis=1)[:, : self.k]
            out[start : start + 2000] = self.err[near].mean(axis=1)
        return out


class Shipped:
    """:class:`detectors.loss_estimation.AbsoluteErrorModel` (ridge, penalty by leave-one-out,
    inputs clipped to the reference's range, the coefficients' uncertainty in the band), its
    estimate and test from the window's sums as an estimator would keep them."""

    def fit(self, x, yhat, err):
        self.model = AbsoluteErrorModel.fit(x, yhat, err)
        return self

    def predict(self, x, yhat):
        return self.model.predict(x, yhat)


def candidates() -> dict[str, object]:
    return {
        "oracle": Oracle(),
        "constant": Constant(),
        "ridge |e|": Ridge(),
        "ridge |e| clip": Ridge(clip=True),
        "ridge |e| loo clip": Ridge(ridge=None, clip=True),
        "loss_estimation.py": Shipped(),
        "ridge log|e|": Ridge(log=True),
        "ridge log clip": Ridge(log=True, clip=True),
        "bins additive": AdditiveBins(),
        "bins grid top2": GridBins(),
        "k-NN k=50": NearestNeighbours(),
    }


# -- the checks ----------------------------------------------------------------------------


def rolling(values: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of ``values[end - WINDOW + 1 : end + 1]`` per end."""
    s1 = np.r_[0.0, np.cumsum(values)]
    s2 = np.r_[0.0, np.cumsum(values * values)]
    total = s1[ends + 1] - s1[ends + 1 - WINDOW]
    squares = s2[ends + 1] - s2[ends + 1 - WINDOW]
    mean = total / WINDOW
    return mean, np.sqrt(np.maximum(squares / WINDOW - mean * mean, 0.0))


def alerts(z: np.ndarray) -> np.ndarray:
    """Whether the alert is firing at each check: fires past z(1 - ALPHA), clears at z <= 0."""
    critical = NormalDist().inv_cdf(1.0 - ALPHA)
    firing = np.zeros(len(z), dtype=np.bool_)
    on = False
    for i, value in enumerate(z.tolist()):
        on = value > critical if not on else value > 0.0
        firing[i] = on
    return firing


def check(
    predicted: np.ndarray, start: int, reference: np.ndarray, min_rise: float = MIN_RISE
) -> dict[str, np.ndarray]:
    """Every EVERY predictions once the window (predictions from ``start`` on) is full: the
    estimate, z, and whether the alert is firing (``predicted`` holds the whole stream's
    predicted absolute errors, ``reference`` the reference's)."""
    n = len(predicted)
    ends = np.arange(start + WINDOW - 1, n, EVERY)
    estimate, sd = rolling(predicted, ends)
    ref = float(reference.mean())
    s_ref = float(reference.std()) / math.sqrt(len(reference))
    spread = np.hypot(sd / math.sqrt(WINDOW), s_ref)
    # (no spread, no test: the constant's estimate never moves)
    z = (estimate - ref * (1.0 + min_rise)) / np.where(spread > 1e-9 * ref, spread, np.inf)
    return {"ends": ends, "estimate": estimate, "z": z, "firing": alerts(z), "reference": ref}


def check_shipped(model: AbsoluteErrorModel, data: dict, start: int) -> tuple[dict, dict]:
    """The checks of :class:`AbsoluteErrorModel` (with the margin, and with none): each
    window's estimate from the sums of its row terms."""
    terms = model.row_terms(data["x"][start:], data["yhat"][start:])
    sums = np.concatenate([np.zeros((1, terms.shape[1])), np.cumsum(terms, axis=0)])
    ends = np.arange(start + WINDOW - 1, len(data["yhat"]), EVERY)
    out = []
    for min_rise in (MIN_RISE, 0.0):
        estimate, z = np.empty(len(ends)), np.empty(len(ends))
        for i, end in enumerate((ends - start).tolist()):
            found = model.from_sums(WINDOW, sums[end + 1] - sums[end + 1 - WINDOW])
            estimate[i], z[i] = found.value, model.rise_z(found, min_rise)
        out.append({"ends": ends, "estimate": estimate, "z": z, "firing": alerts(z)})
    return out[0], out[1]


def run(name: str, model, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    err = np.abs(data["y"] - data["yhat"])
    x, yhat = data["x"], data["yhat"]
    ref = slice(0, REFERENCE)
    start = REFERENCE + PER_DAY  # the last reference label has come: estimation is on
    if name == "oracle":
        predicted = data["expected"].copy()
    else:
        model.fit(x[ref], yhat[ref], err[ref])
        predicted = np.zeros(len(yhat))
        predicted[ref] = model.predict(x[ref], yhat[ref])
        predicted[start:] = model.predict(x[start:], yhat[start:])
    if isinstance(model, Shipped):
        out, free = check_shipped(model.model, data, start)
        out |= {"reference_mae": float(err[ref].mean()), "start": start, "n": len(yhat)}
        out["realised"] = rolling(err, out["ends"])[0]
        out["free"] = free
        out["lam"] = model.model.penalty
        return out
    out = check(predicted, start, predicted[ref])
    out["realised"] = rolling(err, out["ends"])[0]
    out["reference_mae"] = float(err[ref].mean())
    out["start"] = start
    out["n"] = len(yhat)
    out["free"] = check(predicted, start, predicted[ref], 0.0)
    out["lam"] = getattr(model, "lam", math.nan)
    return out


def firsts(result: dict) -> int | None:
    """The index of the prediction whose check first fired (None: never)."""
    fired = np.flatnonzero(result["firing"][1:] & ~result["firing"][:-1]) + 1
    if result["firing"][0]:
        fired = np.r_[0, fired]
    return int(result["ends"][fired[0]]) if len(fired) else None


def firings(result: dict) -> int:
    f = result["firing"]
    return int(f[0]) + int(np.count_nonzero(f[1:] & ~f[:-1]))


# -- the figures ---------------------------------------------------------------------------


def summarise(shift: str | None, results: list[dict]) -> dict[str, float]:
    row: dict[str, float] = {}
    track = [np.mean(np.abs(r["estimate"] - r["realised"])) / r["reference_mae"] for r in results]
    row["track"] = 100 * float(np.mean(track))
    if shift is None:
        predictions = sum(r["n"] - r["start"] for r in results)
        row["false"] = 1e5 * sum(firings(r) for r in results) / predictions
        row["false0"] = 1e5 * sum(firings(r["free"]) for r in results) / predictions
        z = np.concatenate([r["free"]["z"] for r in results])
        row["zsd"] = float(np.std(z)) if np.isfinite(z).all() else math.nan
        return row
    after = [r["ends"] - WINDOW + 1 >= SHIFT for r in results]
    row["track_after"] = 100 * float(
        np.mean(
            [
                np.mean(np.abs(r["estimate"][a] - r["realised"][a])) / r["reference_mae"]
                for r, a in zip(results, after, strict=True)
            ]
        )
    )
    before = [(r["ends"] < SHIFT) & (r["ends"] >= SHIFT - PER_DAY // 2) for r in results]
    moved = [
        (r["estimate"][a].mean() - r["estimate"][b].mean()) / r["reference_mae"]
        for r, a, b in zip(results, after, before, strict=True)
    ]
    row["moved"] = 100 * float(np.mean(moved))
    row["moved_min"] = 100 * float(np.min(moved))
    row["moved_max"] = 100 * float(np.max(moved))
    row["max_z"] = float(max(np.max(r["z"]) for r in results))
    fired = [firsts(r) for r in results]
    row["early"] = sum(f is not None and f < SHIFT for f in fired)
    timely = [f for f in fired if f is not None and SHIFT <= f < FIRST_SHIFTED_LABEL]
    row["alerts"] = len(timely)
    row["any_alert"] = sum(f is not None for f in fired)
    delays = [(f - SHIFT) / 360 for f in timely]  # 360 predictions an hour
    row["delay_h"] = float(np.median(delays)) if delays else math.nan
    row["delay_max"] = float(np.max(delays)) if delays else math.nan
    return row


def realised_rise(data: dict[str, np.ndarray]) -> float:
    err = np.abs(data["y"] - data["yhat"])
    return float(err[SHIFT:].mean() / err[:SHIFT].mean() - 1.0)


def cost(model, data: dict[str, np.ndarray]) -> tuple[float, float]:
    """Seconds to fit on the reference, and per prediction to predict in batches of 100."""
    err = np.abs(data["y"] - data["yhat"])
    x, yhat = data["x"], data["yhat"]
    begin = time.perf_counter()
    model.fit(x[:REFERENCE], yhat[:REFERENCE], err[:REFERENCE])
    fitted = time.perf_counter() - begin
    begin = time.perf_counter()
    for s in range(REFERENCE, REFERENCE + 10_000, EVERY):
        model.predict(x[s : s + EVERY], yhat[s : s + EVERY])
    return fitted, (time.perf_counter() - begin) / 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    begin = time.perf_counter()
    models = candidates()
    rows: dict[str, dict] = {name: {} for name in models}
    rises: dict[str | None, list[float]] = {}
    for shift in SHIFTS:
        days = STATIONARY_DAYS if shift is None else DAYS
        streams = [stream(SEED_BASE[shift] + seed, shift, days) for seed in range(args.seeds)]
        rises[shift] = [realised_rise(d) for d in streams]
        for name, model in models.items():
            results = [run(name, model, d) for d in streams]
            rows[name][shift] = summarise(shift, results)
    n = args.seeds
    print(
        f"{n} streams a scenario; reference {REFERENCE}, window {WINDOW}, checked every "
        f"{EVERY}, alpha {ALPHA}, margin +{MIN_RISE:.0%}; labels a day late; "
        f"{n * int(STATIONARY_DAYS * PER_DAY - REFERENCE - PER_DAY):,} stationary predictions"
    )
    for shift in SHIFTS[:-1]:
        r = 100 * np.array(rises[shift])
        print(
            f"  realised MAE from day 2 against before, {shift}: {r.mean():+.0f} % "
            f"(streams {r.min():+.0f} to {r.max():+.0f})"
        )
    print(
        "\nTracking (% of the reference MAE) and alerts: shift that hurts, inside the reference's"
    )
    print("range (hurts) and beyond it (beyond); alert n/N before the first shifted label")
    header = (
        f"{'candidate':<21}|{'track':>7}{'after':>7}{'alert':>7}{'delay h':>11}{'early':>6} |"
        f"{'track':>7}{'after':>7}{'alert':>7}{'delay h':>11}"
    )
    print(header)
    print("-" * len(header))
    for name in models:
        h, b = rows[name]["hurts"], rows[name]["beyond"]
        print(
            f"{name:<21}|{h['track']:>6.1f}%{h['track_after']:>6.1f}%{h['alerts']:>4}/{n:<2}"
            f"{h['delay_h']:>5.1f} ({h['delay_max']:>3.1f}){h['early']:>6} |"
            f"{b['track']:>6.1f}%{b['track_after']:>6.1f}%{b['alerts']:>4}/{n:<2}"
            f"{b['delay_h']:>5.1f} ({b['delay_max']:>3.1f})"
        )
    print("\nHarmless shift and concept drift: the estimate's move (% of the reference MAE, mean")
    print("and range over streams), streams alerted, highest z; stationary: alerts per 100k")
    print("predictions (with the margin, and with none) and the sd of z with none; cost")
    header = (
        f"{'candidate':<21}|{'harmless: moved':>22}{'alert':>6}{'max z':>7} |"
        f"{'concept: moved':>22}{'alert':>6} |{'false/100k':>11}{'(none)':>7}{'z sd':>6} |"
        f"{'fit ms':>7}{'us/pred':>8}"
    )
    print(header)
    print("-" * len(header))
    cost_data = stream(9999, None, 1.5)
    for name, model in models.items():
        ok, c, s = rows[name]["harmless"], rows[name]["concept"], rows[name][None]
        fit_s, per = (math.nan, math.nan) if name == "oracle" else cost(model, cost_data)
        print(
            f"{name:<21}|{ok['moved']:>+6.1f} ({ok['moved_min']:>+5.1f}, {ok['moved_max']:>+5.1f})"
            f"{ok['any_alert']:>6}{ok['max_z']:>7.1f} |"
            f"{c['moved']:>+6.1f} ({c['moved_min']:>+5.1f}, {c['moved_max']:>+5.1f})"
            f"{c['any_alert']:>6} |{s['false']:>11.2f}{s['false0']:>7.1f}{s['zsd']:>6.2f} |"
            f"{1e3 * fit_s:>7.1f}{1e6 * per:>8.1f}"
        )
    print(f"\nruntime {time.perf_counter() - begin:.0f} s")


if __name__ == "__main__":
    main()
