"""One regression version's MAE estimated before labels: direct loss estimation (DLE) of
:mod:`detectors.loss_estimation`, wired as :mod:`detectors.estimator` wires CBPE for a binary
classifier (the same statuses, checks, alert and honesty).

**Features.** The error model reads a prediction's numeric features and the prediction itself.
Its columns are the numeric features (int or float values) of the first prediction the version
sends, sorted by name, at most :data:`MAX_FEATURES` and at most what the reference can fit
(``reference_size / 20 - 1``, :data:`~detectors.loss_estimation.MIN_OUTCOMES_PER_COLUMN` outcomes
a design column); a value missing or not a finite number later reads as the reference's mean of
its column. A version whose first prediction has no numeric feature, or whose model sends its
features on the inputs topic (:attr:`detectors.model.ModelState.features_from_inputs`: none at
prediction time), is not estimated: status ``no_features``. (An estimate from the prediction
alone was tried on ``bench/dle.py``'s streams and refused: the harmless shift, which moves the
prediction and not the error, alerted in 5 of 10 streams, and the harmful one was missed in 9
of 10.)

**Reference.** The join (:mod:`detectors.join`) does not carry features: the rows of the
version's predictions wait here, by prediction id, until their label joins (at most
``2 x reference_size``, in arrival order; when full, the oldest is dropped once it is older
than the join's ``ttl`` and can no longer be joined, otherwise a new prediction is not held:
the ones held are the first ones, and labels that never come free their room after ``ttl``;
once on, a held prediction keeps its predicted absolute error in place of its row).
The first ``reference_size`` labelled outcomes with a held row fit
:class:`~detectors.loss_estimation.AbsoluteErrorModel`; estimation is then on.

**Estimate.** Over the last ``window`` predictions from the fit on (a ring of their rows and of
their :meth:`~detectors.loss_estimation.AbsoluteErrorModel.row_terms`, and the running sums of
those: what ``/metrics`` shows), every ``check_every`` predictions (counted, so a replay and
the live service check at the same events, the sums then taken afresh from the ring), the
estimated MAE is judged against the reference's (:func:`judge_rise`): *degraded* when it is
significantly above ``reference x (1 + min_rise)``,
``z = (value - line) / spread > z(1 - alpha)``, with ``spread`` the window's sampling, the
reference's and the coefficients' uncertainty
(:meth:`~detectors.loss_estimation.AbsoluteErrorModel.from_sums`); clear again once back
below the line. ``outside``: the share of the window's predictions with an input beyond the
reference's range, where the estimate saturates (inputs are clipped to that range).
``stderr``: how far the MAE a window of labels realises falls from a right estimate (the
reference's residual variance of ``|error|`` over ``n``).

**Honesty.** Once on, labelled outcomes with a held row are gathered in blocks of ``window``:
each block's estimated MAE against the MAE it realised; the mean absolute gap is the running
estimation error.

**Memory.** Held predictions (at most ``2 x reference_size``): a row each while collecting,
a number each once on (their batch estimated; ~0.3 kB an entry, ~1 MB at the defaults); the
window, ``8 (3 + 3 inputs)`` bytes a slot (170 kB with five features and the defaults, 1.6 MB
with 63); the reference's rows until the fit.

**Assumptions and limits** (``bench/dle.md``). What errors follow given the inputs stays the
reference's: concept drift does not move the estimate (the realised MAE and the concept
detector see it). Beyond the reference's range the estimate holds at the range's edge: a rise
shows, its size not.

Examples
--------
>>> import numpy as np
>>> from detectors.config_sections import EstimationConfig
>>> rng = np.random.default_rng(2)
>>> estimator = LossEstimator(EstimationConfig(reference_size=1000, window=500))
>>> def prediction(shift=0.0):
...     x = {"a": float(rng.normal(shift)), "b": float(rng.normal())}
...     return x, x["a"] + x["b"], abs(float(rng.normal(0.0, np.exp(0.5 * x["a"]))))
>>> for i in range(1000):  # predictions labelled at once: the reference
...     features, yhat, error = prediction()
...     _ = estimator.see(f"p{i}", i, yhat, features)
...     estimator.add_outcome(f"p{i}", error, i)
>>> estimator.status, estimator.columns
('on', ['a', 'b'])
>>> rows = [(*f.values(), yhat) for f, yhat, _ in (prediction(1.0) for _ in range(500))]
>>> verdicts = estimator.add_predictions(list(range(1000, 1500)), rows)
>>> estimate = estimator.estimate()  # (the true MAE: 0.90 before, 1.49 after)
>>> round(estimator.reference.values["mae"], 2), round(estimate.values["mae"], 2)
(0.9, 1.4)
>>> verdicts[-1].degraded
True
"""

from __future__ import annotations

import math
from collections import OrderedDict
from functools import lru_cache
from statistics import NormalDist
from typing import Any, ClassVar

import numpy as np

from detectors.base import StateError
from detectors.config_sections import EstimationConfig
from detectors.estimation import Estimate
from detectors.estimator import STATUSES, EstimateVerdict
from detectors.loss_estimation import MAX_INPUTS, MIN_OUTCOMES_PER_COLUMN, AbsoluteErrorModel
from detectors.saved_state import read_format, stamp

__all__ = ["LOSS_METRICS", "MAX_FEATURES", "LossEstimator", "judge_rise"]

#: The metrics estimated for a regression version.
LOSS_METRICS = ("mae",)
#: Most feature columns (the prediction is the error model's last input).
MAX_FEATURES = MAX_INPUTS - 1
#: The join's default ttl (a prediction held longer can no longer be joined).
_TTL = 7 * 86_400_000


def judge_rise(
    config: EstimationConfig,
    reference: float,
    value: float,
    spread: float,
    degraded: bool,
    above_since: int | None,
    at: int,
    outside: float | None = None,
) -> EstimateVerdict:
    """A check of an estimated MAE (``value``, with the ``spread`` of its difference from the
    reference's) against ``reference x (1 + config.min_rise)``, at event time ``at``, for an
    estimate ``degraded`` or not until now and above its line since ``above_since``: degraded
    past the critical value, clear once back below the line (:func:`detectors.estimator.judge`
    with higher worse)."""
    line = reference * (1.0 + config.min_rise)
    z = (value - line) / spread if spread > 0 else 0.0
    critical = _critical(config.alpha)
    degraded = z > critical if not degraded else z > 0.0
    since = at if above_since is None or z <= 0 else above_since
    return EstimateVerdict("mae", value, line, reference, z, critical, degraded, at, since, outside)


class LossEstimator:
    """Estimated MAE of one regression version (see the module's docstring).

    Parameters
    ----------
    config
        The model's ``estimation`` settings.
    ttl
        The model's ``join.ttl``: how long a held prediction can still be joined.
    """

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    STATE_FORMAT: ClassVar[int] = 1

    def __init__(self, config: EstimationConfig, ttl: int = _TTL) -> None:
        self.config = config
        self.ttl = ttl
        self.status = "collecting"
        #: Whether predictions are read (collecting or on): checked for every prediction.
        self.reading = True
        #: The feature columns, fixed at the first prediction (None: none seen yet).
        self.columns: list[str] | None = None
        self.model: AbsoluteErrorModel | None = None
        #: Event time estimation started: only later predictions enter the window.
        self.on_since = 0
        #: The estimate over the reference outcomes (what the window's is judged against).
        self.reference: Estimate | None = None
        #: Mean squared gap between a reference outcome's absolute error and its prediction.
        self.residual_variance = 0.0
        # Predictions waiting for their label: prediction id -> (event time, raw row), or once
        # on and the row estimated, (event time, its predicted absolute error).
        self._held: OrderedDict[str, tuple[int, tuple[Any, ...] | float]] = OrderedDict()
        self._limit = 2 * config.reference_size
        # The reference outcomes: raw rows and absolute errors.
        self._ref_rows: list[tuple[Any, ...]] = []
        self._ref_errors: list[float] = []
        # The window (a ring from the fit on, slot = predictions since then % window): rows as
        # read (missing values filled), their row terms (zeros in slots not yet written), and
        # the running sums of those.
        self._rows = np.zeros((0, 0))
        self._terms = np.zeros((0, 0))
        self._sums = np.zeros(0)
        self._next = 0
        self.n = 0
        self.predictions = 0  # since the fit: the check cadence
        self._cached: Estimate | None = None
        #: The last check's share of the window beyond the reference's range.
        self.outside: float | None = None
        self.degraded = False
        self.below_since: int | None = None
        # The running estimation error: a block of labelled outcomes (their rows or predicted
        # absolute errors, as held; their absolute errors).
        self._block: tuple[list[tuple[Any, ...] | float], list[float]] = ([], [])
        self.error_sums = {"mae": 0.0}
        self.error_blocks = 0

    @property
    def on(self) -> bool:
        return self.status == "on"

    @property
    def pristine(self) -> bool:
        """Nothing seen yet (a version's state leaves it out: older states keep their form)."""
        return self.status == "collecting" and self.columns is None

    # -- predictions ----------------------------------------------------------------------------

    def see(
        self, prediction_id: str, ts: int, prediction: Any, features: dict[str, Any] | None
    ) -> tuple[Any, ...] | None:
        """A prediction as it comes (``features`` None: it has none at prediction time): held
        for its label, and its row returned for :meth:`add_predictions` (None: not estimated,
        a prediction that is not a number or without features)."""
        columns = self.columns
        if columns is None:
            columns = self._choose(features)
            if columns is None:
                return None
        if not features or type(prediction) not in (int, float):
            return None
        row = (*map(features.get, columns), prediction)
        held = self._held
        if len(held) >= self._limit:
            oldest = next(iter(held))
            if held[oldest][0] > ts - self.ttl:
                return row  # every prediction held can still be joined
            del held[oldest]
        if prediction_id not in held:
            held[prediction_id] = (ts, row)
        return row

    def _choose(self, features: dict[str, Any] | None) -> list[str] | None:
        names = sorted(k for k, v in (features or {}).items() if type(v) in (int, float))
        if not names:
            self.off("no_features")
            return None
        fits = self.config.reference_size // (2 * MIN_OUTCOMES_PER_COLUMN) - 1
        self.columns = names[: min(MAX_FEATURES, fits)]
        return self.columns

    def add_predictions(
        self, times: list[int], rows: list[tuple[Any, ...]], ids: list[str] | None = None
    ) -> list[EstimateVerdict]:
        """A batch of predictions' rows (from :meth:`see`), event times and ids, once on; return
        the checks made (one per ``check_every``). The predictions held for their labels keep
        their predicted absolute error from now on, not their row."""
        model = self.model
        if not self.on or model is None or not rows:
            return []
        if times[0] <= self.on_since:  # (only around the fit: later events come later)
            kept = [i for i, t in enumerate(times) if t > self.on_since]
            times, rows = [times[i] for i in kept], [rows[i] for i in kept]
            ids = None if ids is None else [ids[i] for i in kept]
            if not rows:
                return []
        x = self._filled(_matrix(rows))
        terms = model.row_terms(x[:, :-1], x[:, -1])
        if ids is not None:
            held = self._held
            for pid, row, predicted in zip(ids, rows, terms[:, 0].tolist(), strict=True):
                entry = held.get(pid)
                if entry is not None and entry[1] is row:
                    held[pid] = (entry[0], predicted)
        size, every = self.config.window, self.config.check_every
        verdicts = []
        done, total = 0, len(rows)
        while done < total:
            take = min(every - self.predictions % every, total - done)
            self._write(x[done : done + take], terms[done : done + take])
            done += take
            self.predictions += take
            self.n = min(size, self.n + take)
            self._cached = None
            if self.predictions % every == 0 and self.n == size:
                verdicts.append(self.check(int(times[done - 1])))
        return verdicts

    def _filled(self, x: np.ndarray) -> np.ndarray:
        """Missing values as the reference's means."""
        assert self.model is not None
        missing = np.isnan(x)
        return np.where(missing, self.model.center, x) if missing.any() else x

    def _write(self, rows: np.ndarray, terms: np.ndarray) -> None:
        """Into the ring from its next slot, wrapping (at most a window of them); the running
        sums follow (what leaves, zeros in slots never written, out; what comes, in)."""
        size = self.config.window
        count = len(rows)
        start = (self._next + max(0, count - size)) % size
        rows, terms = rows[-size:], terms[-size:]
        first = min(len(rows), size - start)
        for ring, part in (
            (slice(start, start + first), slice(0, first)),
            (slice(0, len(rows) - first), slice(first, None)),
        ):
            if ring.start == ring.stop:
                continue
            self._sums -= self._terms[ring].sum(axis=0)
            self._sums += terms[part].sum(axis=0)
            self._rows[ring] = rows[part]
            self._terms[ring] = terms[part]
        self._next = (self._next + count) % size

    def estimate(self) -> Estimate | None:
        """The estimated MAE over the window (None until it is full, or when off), from its
        running sums."""
        if self._cached is not None:
            return self._cached
        model = self.model
        if model is None or self.n < self.config.window:
            return None
        found = model.from_sums(self.n, self._sums)
        self._cached = Estimate(
            {"mae": found.value},
            {"mae": math.sqrt(self.residual_variance / self.n)},
            self.n,
            {"mae": found.spread},
        )
        return self._cached

    def check(self, at: int) -> EstimateVerdict:
        """The window's estimate judged at event time ``at`` (its sums taken afresh from the
        ring, in slot order: the same bits whatever the batches)."""
        model = self.model
        assert model is not None
        self._sums = self._terms.sum(axis=0)
        self._cached = None
        found = model.from_sums(self.n, self._sums)
        self.outside = found.outside
        verdict = judge_rise(
            self.config,
            model.reference,
            found.value,
            found.spread,
            self.degraded,
            self.below_since,
            at,
            found.outside,
        )
        self.degraded = verdict.degraded
        self.below_since = verdict.below_since
        return verdict

    # -- labelled outcomes ----------------------------------------------------------------------

    def add_outcome(self, prediction_id: str, abs_error: float, at: int = 0) -> None:
        """A labelled outcome: its prediction's id and absolute error, decided at event time
        ``at`` (a prediction not held is not used)."""
        held = self._held.pop(prediction_id, None)
        if held is None or not math.isfinite(abs_error):
            return
        if self.status == "collecting":
            self._ref_rows.append(held[1])
            self._ref_errors.append(abs_error)
            if len(self._ref_errors) >= self.config.reference_size:
                self._fit(at)
        elif self.on:
            rows, errors = self._block
            rows.append(held[1])
            errors.append(abs_error)
            if len(rows) >= self.config.window:
                self._compare_block()

    def _fit(self, at: int) -> None:
        x = _matrix(self._ref_rows)
        errors = np.array(self._ref_errors)
        known = ~np.isnan(x)
        counts = known.sum(axis=0)
        means = np.where(known, x, 0.0).sum(axis=0) / np.maximum(counts, 1)
        x = np.where(known, x, means)
        try:
            model = AbsoluteErrorModel.fit(x[:, :-1], x[:, -1], errors)
        except ValueError:  # (not expected: the columns are bounded, the values finite)
            self.off("poor_calibration")
            return
        predicted = model.predict(x[:, :-1], x[:, -1])
        self.residual_variance = float(np.mean((errors - predicted) ** 2))
        self._start(model)
        self.on_since = at
        self._ref_rows, self._ref_errors = [], []

    def _start(self, model: AbsoluteErrorModel) -> None:
        size = self.config.window
        self.model = model
        self.reference = Estimate(
            {"mae": model.reference},
            {"mae": math.sqrt(self.residual_variance / model.reference_size)},
            model.reference_size,
            {"mae": model.reference_spread},
        )
        self._rows = np.zeros((size, model.inputs))
        # (Column-major: a check sums each term over the window in one contiguous pass.)
        self._terms = np.zeros((size, 3 + 2 * model.inputs), order="F")
        self._sums = np.zeros(3 + 2 * model.inputs)
        self.status = "on"

    def off(self, reason: str) -> None:
        """Estimation off for good, with its reason (a status of :data:`STATUSES`)."""
        self.__init__(self.config, self.ttl)  # type: ignore[misc]
        self.status = reason
        self.reading = False

    def _compare_block(self) -> None:
        assert self.model is not None
        (entries, errors), self._block = self._block, ([], [])
        # (Rows of outcomes labelled before their batch was estimated: predicted now, alike.)
        rows = [entry for entry in entries if type(entry) is tuple]
        predicted = np.array([0.0 if type(entry) is tuple else entry for entry in entries])
        if rows:
            x = self._filled(_matrix(rows))
            predicted[[type(entry) is tuple for entry in entries]] = self.model.predict(
                x[:, :-1], x[:, -1]
            )
        estimated = float(predicted.mean())
        self.error_sums["mae"] += abs(estimated - float(np.mean(errors)))
        self.error_blocks += 1

    def estimation_error(self) -> dict[str, float]:
        """Mean absolute gap between estimated and realised MAE over the blocks compared."""
        if not self.error_blocks:
            return {}
        return {"mae": self.error_sums["mae"] / self.error_blocks}

    # -- state ----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        held = self._held
        count = self.config.window if self.n == self.config.window else self.n
        return stamp(
            self.STATE_FORMAT,
            {
                "status": self.status,
                "columns": self.columns,
                "on_since": self.on_since,
                "model": None if self.model is None else self.model.to_state(),
                "residual_variance": self.residual_variance,
                "held": [
                    [pid, ts, entry]
                    for (pid, (ts, _)), entry in zip(
                        held.items(), _entries([entry for _, entry in held.values()]), strict=True
                    )
                ],
                "collected": [_plain(self._ref_rows), self._ref_errors],
                "window": self._rows[:count].tolist(),
                "next": self._next,
                "sums": self._sums.tolist(),
                "predictions": self.predictions,
                "outside": self.outside,
                "degraded": self.degraded,
                "below_since": self.below_since,
                "block": [_entries(self._block[0]), self._block[1]],
                "error_sums": self.error_sums,
                "error_blocks": self.error_blocks,
            },
        )

    def load_state(self, state: dict[str, Any]) -> None:
        read_format(state, "LossEstimator", self.STATE_FORMAT)
        config = self.config
        try:
            self._load(state)
        except (KeyError, TypeError, ValueError, IndexError) as error:
            self.__init__(config, self.ttl)  # type: ignore[misc]
            raise StateError(f"loss estimation state is malformed: {error!r}") from None
        except StateError:
            self.__init__(config, self.ttl)  # type: ignore[misc]
            raise

    def _load(self, state: dict[str, Any]) -> None:
        config = self.config
        status = str(state["status"])
        if status not in STATUSES:
            raise StateError(f"unknown estimation status {status!r}")
        columns = state["columns"]
        model_state = state["model"]
        if (status == "on") != (model_state is not None):
            raise StateError("estimation is on exactly when it has an error model")
        if columns is not None:
            columns = [str(c) for c in columns]
            if not 1 <= len(columns) <= MAX_FEATURES or len(set(columns)) != len(columns):
                raise StateError(f"1 to {MAX_FEATURES} distinct feature columns")
        width = 0 if columns is None else len(columns) + 1
        held = state["held"]
        rows, errors = state["collected"]
        block_rows, block_errors = state["block"]
        if (
            len(held) > self._limit
            or not len(rows) == len(errors) < config.reference_size
            or not len(block_rows) == len(block_errors) < config.window
            or (columns is None and (held or rows or model_state is not None))
        ):
            raise StateError("loss estimation state out of bounds")
        every_error = [float(e) for e in (*errors, *block_errors)]
        if not all(math.isfinite(e) and e >= 0.0 for e in every_error):
            raise StateError("absolute errors must be finite and >= 0")
        residual = float(state["residual_variance"])
        if not (math.isfinite(residual) and residual >= 0.0):
            raise StateError("residual variance must be finite and >= 0")
        self.__init__(config, self.ttl)  # type: ignore[misc]
        self.status = status
        self.reading = status in ("collecting", "on")
        self.columns = columns
        self.on_since = int(state["on_since"])
        self.residual_variance = residual
        for pid, ts, entry in held:
            self._held[str(pid)] = (int(ts), _entry(entry, width))
        self._ref_rows = [_row(row, width) for row in rows]
        self._ref_errors = every_error[: len(errors)]
        self._block = ([_entry(e, width) for e in block_rows], every_error[len(errors) :])
        if status != "on" and any(type(e) is float for _, e in self._held.values()):
            raise StateError("a predicted absolute error held before the error model")
        if model_state is not None:
            model = AbsoluteErrorModel.from_state(model_state)
            if model.inputs != width:
                raise StateError("the error model takes the feature columns and the prediction")
            self._start(model)
            window = np.array(state["window"], dtype=np.float64).reshape(-1, width)
            count, nxt = len(window), int(state["next"])
            sums = np.array([float(v) for v in state["sums"]])
            if (
                count > config.window
                or not 0 <= nxt < config.window
                or (count < config.window and nxt != count % config.window)
                or not np.isfinite(window).all()
                or sums.shape != self._sums.shape
                or not np.isfinite(sums).all()
            ):
                raise StateError("loss estimation window out of bounds")
            if count:
                self._rows[:count] = window
                self._terms[:count] = model.row_terms(window[:, :-1], window[:, -1])
            self._next, self.n, self._sums = nxt, count, sums
        outside = state["outside"]
        self.outside = None if outside is None else float(outside)
        self.predictions = int(state["predictions"])
        if self.predictions < 0:
            raise StateError("a negative count of predictions")
        self.degraded = bool(state["degraded"])
        below = state["below_since"]
        self.below_since = None if below is None else int(below)
        self.error_sums = {"mae": float(state["error_sums"]["mae"])}
        self.error_blocks = int(state["error_blocks"])


@lru_cache(maxsize=16)
def _critical(alpha: float) -> float:
    return NormalDist().inv_cdf(1.0 - alpha)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _matrix(rows: list[tuple[Any, ...]]) -> np.ndarray:
    """Raw rows as floats, NaN where a value is missing, not a number or not finite."""
    try:
        x = np.array(rows, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        x = np.array([[_number(v) for v in row] for row in rows], dtype=np.float64)
    finite = np.isfinite(x)
    if not finite.all():
        x[~finite] = np.nan
    return x


def _plain(rows: list[tuple[Any, ...]]) -> list[list[float | None]]:
    """Raw rows as saved: numbers, null where missing."""
    if not rows:
        return []
    return [[None if v != v else v for v in row] for row in _matrix(rows).tolist()]


def _entries(entries: list[tuple[Any, ...] | float]) -> list[list[float | None] | float]:
    """Held rows and predicted absolute errors as saved: a row a list, an error a number."""
    rows = iter(_plain([entry for entry in entries if type(entry) is tuple]))
    return [next(rows) if type(entry) is tuple else entry for entry in entries]


def _entry(value: Any, width: int) -> tuple[float, ...] | float:
    """A saved held row, or predicted absolute error."""
    if isinstance(value, list):
        return _row(value, width)
    number = float(value)
    if not (math.isfinite(number) and number >= 0.0):
        raise StateError("a predicted absolute error must be finite and >= 0")
    return number


def _row(values: Any, width: int) -> tuple[float, ...]:
    """A saved row (numbers or null, ``width`` of them) as held."""
    if len(values) != width:
        raise StateError(f"a row of {width} values")
    row = tuple(math.nan if v is None else float(v) for v in values)
    if any(math.isinf(v) for v in row):
        raise StateError("a row's values must be finite (or null)")
    return row
