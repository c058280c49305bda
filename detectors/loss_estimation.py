"""A regression model's MAE estimated before labels: direct loss estimation (DLE).

A small model of the absolute error ``|y - yhat|`` from a prediction's numeric features and
the prediction itself is learned on labelled reference outcomes; the estimated MAE of a window
of predictions is the mean of their predicted absolute errors.

**The model.** Ridge regression of the absolute error on ``[u, u^2]``, ``u`` the inputs
(features and prediction) standardised on the reference and *clipped to the reference's
range* (beyond it a polynomial extrapolates: the estimate holds at the range's edge instead),
the design columns standardised in turn, an intercept not penalised. The penalty is the one
of a grid (``1e-1`` to ``1e5``) with the least leave-one-out squared error, in closed form from
one SVD. A prediction is floored at 1 % of the reference MAE. ``2 (d + 1) + 1`` coefficients
for ``d`` features, whatever the reference's size; ~0.3 us a prediction in batches of 100.

**The estimate and its band** (:meth:`AbsoluteErrorModel.estimate`). Over a window of ``n``
predictions, ``value`` is the mean predicted absolute error; ``reference`` the same over the
reference outcomes (the model's own in-sample estimate: its bias cancels in a comparison). The
``spread`` of ``value - reference`` has three parts: the window's inputs are a sample
(``sd / sqrt(n)`` of the predicted errors), so are the reference's, and the coefficients are
estimates: since the reference's mean design row is zero, ``value - reference`` is the
window's mean design row ``m`` times the coefficients, of variance ``m C m`` with ``C`` their
sandwich (heteroscedasticity-robust) covariance. That last term is ~0 while inputs look like
the reference's and grows as they move to where the reference had little to say: a shift
that moves the prediction but not the error is not taken for a rise. :meth:`rise_z` is the
one-sided test ``z = (value - reference (1 + min_rise)) / spread``.

The estimate is a function of the window's sums (:meth:`row_terms`, summed): a window can be
kept as running sums of ``4 + 2 (d + 1)`` numbers.

**Assumptions and limits** (``bench/dle.py``, ``bench/dle.md``). The error's law given the
inputs stays the reference's (no concept drift: a change in what labels follow given inputs is
invisible to it, as it is to CBPE). It learns what the reference shows: beyond the reference's
range the inputs are clipped, so the estimate saturates (a rise still shows, its size not);
``outside`` is the share of the window's predictions with an input beyond that range.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> def outcomes(n, shift=0.0):
...     x = rng.normal(0.0, 1.0, (n, 3))
...     x[:, 0] += shift
...     yhat = x[:, 0] + x[:, 1]
...     y = yhat + 0.5 * np.exp(0.5 * x[:, 0]) * rng.standard_normal(n)  # noisier as x0 grows
...     return x, yhat, np.abs(y - yhat)
>>> x, yhat, errors = outcomes(2000)
>>> model = AbsoluteErrorModel.fit(x, yhat, errors)
>>> round(model.reference, 3), round(float(errors.mean()), 3)  # in-sample: the same
(0.457, 0.457)
>>> x, yhat, errors = outcomes(1000, shift=1.0)  # inputs move to where the model is worse
>>> estimate = model.estimate(x, yhat)
>>> round(estimate.value, 2), round(float(errors.mean()), 2)  # estimated, realised
(0.73, 0.76)
>>> round(model.rise_z(estimate, min_rise=0.1), 1)  # significantly above reference + 10 %
10.1
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from detectors.base import StateError
from detectors.saved_state import read_format, stamp

__all__ = ["AbsoluteErrorModel", "MaeEstimate"]

#: Most inputs (features and the prediction) a model takes: its state is at most
#: ~(2 x 64)^2 numbers (the coefficients' covariance).
MAX_INPUTS = 64
#: Fewest reference outcomes per design column to fit on.
MIN_OUTCOMES_PER_COLUMN = 10
#: The penalties the leave-one-out error chooses from.
PENALTIES = np.logspace(-1, 5, 25)


@dataclass(frozen=True, slots=True)
class MaeEstimate:
    """The estimated MAE of a window of predictions, and the standard error of its difference
    from the reference's (see the module's docstring)."""

    value: float
    spread: float
    n: int
    #: Share of the window's predictions with an input beyond the reference's range.
    outside: float


class AbsoluteErrorModel:
    """A fitted model of a regression model's absolute error (see the module's docstring):
    build it with :meth:`fit` or :meth:`from_state`."""

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    STATE_FORMAT: ClassVar[int] = 1

    def __init__(
        self,
        *,
        center: np.ndarray,
        scale: np.ndarray,
        low: np.ndarray,
        high: np.ndarray,
        column_center: np.ndarray,
        column_scale: np.ndarray,
        intercept: float,
        coefficients: np.ndarray,
        covariance: np.ndarray,
        floor: float,
        penalty: float,
        reference: float,
        reference_spread: float,
        reference_size: int,
    ) -> None:
        self.center, self.scale = center, scale
        self.low, self.high = low, high
        self.column_center, self.column_scale = column_center, column_scale
        self.intercept = intercept
        self.coefficients = coefficients
        self.covariance = covariance
        self.floor = floor
        self.penalty = penalty
        #: Mean predicted absolute error over the reference, and its standard error.
        self.reference = reference
        self.reference_spread = reference_spread
        self.reference_size = reference_size

    @property
    def inputs(self) -> int:
        """Features and the prediction: the width of the rows it takes."""
        return len(self.center)

    # -- fit ------------------------------------------------------------------------------

    @classmethod
    def fit(
        cls, features: np.ndarray, predictions: np.ndarray, abs_errors: np.ndarray
    ) -> AbsoluteErrorModel:
        """Fit on labelled reference outcomes: their numeric features (one row each), the
        model's predictions and their absolute errors (all finite)."""
        z = _inputs(features, predictions)
        errors = np.asarray(abs_errors, dtype=np.float64)
        n, inputs = z.shape
        if len(errors) != n:
            raise ValueError("features, predictions and abs_errors must have as many rows")
        if inputs > MAX_INPUTS:
            raise ValueError(f"at most {MAX_INPUTS - 1} features")
        if n < MIN_OUTCOMES_PER_COLUMN * 2 * inputs:
            raise ValueError(
                f"at least {MIN_OUTCOMES_PER_COLUMN * 2 * inputs} outcomes for {inputs - 1} "
                "features"
            )
        if not (np.isfinite(z).all() and np.isfinite(errors).all()) or (errors < 0).any():
            raise ValueError("inputs must be finite, absolute errors finite and >= 0")
        center = z.mean(axis=0)
        scale = z.std(axis=0)
        scale[scale == 0.0] = 1.0  # (a constant input: 0 once clipped to its range)
        u = (z - center) / scale
        low, high = u.min(axis=0), u.max(axis=0)
        raw = np.column_stack([u, u * u])
        column_center = raw.mean(axis=0)
        column_scale = raw.std(axis=0)
        column_scale[column_scale == 0.0] = 1.0
        a = (raw - column_center) / column_scale
        intercept = float(errors.mean())
        t = errors - intercept
        left, s, right_t = np.linalg.svd(a, full_matrices=False)
        projected = left.T @ t
        squares = left * left
        best = (math.inf, 0.0)
        for penalty in PENALTIES.tolist():
            shrink = s * s / (s * s + penalty)
            residuals = t - left @ (shrink * projected)
            leverage = squares @ shrink + 1.0 / n
            loo = float(np.mean((residuals / (1.0 - leverage)) ** 2))
            if loo < best[0]:
                best = (loo, penalty)
        penalty = best[1]
        coefficients = right_t.T @ (s / (s * s + penalty) * projected)
        # The coefficients' sandwich covariance: (A'A + lI)^-1 A' diag(r^2) A (A'A + lI)^-1.
        inverse = (right_t.T / (s * s + penalty)) @ right_t
        residuals = t - a @ coefficients
        middle = a.T @ (a * (residuals * residuals)[:, None])
        covariance = inverse @ middle @ inverse
        floor = 0.01 * intercept
        fitted = np.maximum(intercept + a @ coefficients, floor)
        return cls(
            center=center,
            scale=scale,
            low=low,
            high=high,
            column_center=column_center,
            column_scale=column_scale,
            intercept=intercept,
            coefficients=coefficients,
            covariance=(covariance + covariance.T) / 2,
            floor=floor,
            penalty=penalty,
            reference=float(fitted.mean()),
            reference_spread=float(fitted.std()) / math.sqrt(n),
            reference_size=n,
        )

    # -- predict ----------------------------------------------------------------------------

    def design(self, features: np.ndarray, predictions: np.ndarray) -> np.ndarray:
        """The standardised design rows ``[u, u^2]`` of predictions (inputs clipped to the
        reference's range; the reference's rows average to zero)."""
        return self._design(self._standardised(features, predictions))

    def _standardised(self, features: np.ndarray, predictions: np.ndarray) -> np.ndarray:
        return (_inputs(features, predictions) - self.center) / self.scale

    def _design(self, z: np.ndarray) -> np.ndarray:
        u = np.clip(z, self.low, self.high)
        return (np.column_stack([u, u * u]) - self.column_center) / self.column_scale

    def predict(self, features: np.ndarray, predictions: np.ndarray) -> np.ndarray:
        """The predicted absolute error of each prediction."""
        return self._predict(self.design(features, predictions))

    def _predict(self, design: np.ndarray) -> np.ndarray:
        # (A row's sum of products, not a BLAS product: a prediction's value must not depend
        # on the batch it came in, for a replay and the live service to decide alike.)
        return np.maximum(self.intercept + (design * self.coefficients).sum(axis=1), self.floor)

    def row_terms(self, features: np.ndarray, predictions: np.ndarray) -> np.ndarray:
        """Per prediction: its predicted absolute error, that squared, 1 if an input is beyond
        the reference's range, its design row. Summed over a window, what :meth:`from_sums`
        takes."""
        z = self._standardised(features, predictions)
        outside = ((z < self.low) | (z > self.high)).any(axis=1)
        design = self._design(z)
        predicted = self._predict(design)
        return np.column_stack([predicted, predicted * predicted, outside, design])

    def estimate(self, features: np.ndarray, predictions: np.ndarray) -> MaeEstimate:
        """The estimated MAE of a window of predictions and its spread."""
        terms = self.row_terms(features, predictions)
        return self.from_sums(len(terms), terms.sum(axis=0))

    def from_sums(self, n: int, sums: np.ndarray) -> MaeEstimate:
        """The estimate of a window from the sums of its :meth:`row_terms`."""
        if n <= 0:
            raise ValueError("an estimate needs a prediction")
        value = float(sums[0]) / n
        variance = max(float(sums[1]) / n - value * value, 0.0) / n
        mean_row = np.asarray(sums[3:], dtype=np.float64) / n
        model = max(float(mean_row @ self.covariance @ mean_row), 0.0)
        spread = math.sqrt(variance + self.reference_spread**2 + model)
        return MaeEstimate(value, spread, n, float(sums[2]) / n)

    def rise_z(self, estimate: MaeEstimate, min_rise: float = 0.0) -> float:
        """How far the estimate is above ``reference * (1 + min_rise)``, in spreads."""
        line = self.reference * (1.0 + min_rise)
        if estimate.spread <= 0.0:
            return math.copysign(math.inf, estimate.value - line) if estimate.value != line else 0.0
        return (estimate.value - line) / estimate.spread

    # -- state ------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return stamp(
            self.STATE_FORMAT,
            {
                "center": self.center.tolist(),
                "scale": self.scale.tolist(),
                "low": self.low.tolist(),
                "high": self.high.tolist(),
                "column_center": self.column_center.tolist(),
                "column_scale": self.column_scale.tolist(),
                "intercept": self.intercept,
                "coefficients": self.coefficients.tolist(),
                "covariance": self.covariance.tolist(),
                "floor": self.floor,
                "penalty": self.penalty,
                "reference": self.reference,
                "reference_spread": self.reference_spread,
                "reference_size": self.reference_size,
            },
        )

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> AbsoluteErrorModel:
        read_format(state, "AbsoluteErrorModel", cls.STATE_FORMAT)
        try:
            inputs = len(state["center"])
            if not 1 <= inputs <= MAX_INPUTS:
                raise StateError(f"an absolute-error model takes 1 to {MAX_INPUTS} inputs")
            vectors = {
                key: _vector(state[key], inputs) for key in ("center", "scale", "low", "high")
            }
            vectors |= {
                key: _vector(state[key], 2 * inputs)
                for key in ("column_center", "column_scale", "coefficients")
            }
            covariance = np.array(
                [_vector(row, 2 * inputs) for row in state["covariance"]], dtype=np.float64
            )
            numbers = {
                key: float(state[key])
                for key in ("intercept", "floor", "penalty", "reference", "reference_spread")
            }
            size = int(state["reference_size"])
        except (KeyError, TypeError, ValueError) as error:
            raise StateError(f"absolute-error model state is malformed: {error}") from None
        if covariance.shape != (2 * inputs, 2 * inputs):
            raise StateError("an absolute-error model's covariance is square, 2 x inputs wide")
        if (
            not all(math.isfinite(v) for v in numbers.values())
            or numbers["floor"] < 0.0
            or numbers["reference_spread"] < 0.0
            or size < 1
            or (vectors["scale"] <= 0.0).any()
            or (vectors["column_scale"] <= 0.0).any()
            or (vectors["low"] > vectors["high"]).any()
        ):
            raise StateError("absolute-error model state out of bounds")
        return cls(covariance=covariance, reference_size=size, **vectors, **numbers)


def _inputs(features: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    return np.column_stack([x, np.asarray(predictions, dtype=np.float64)])


def _vector(values: Any, length: int) -> np.ndarray:
    out = np.array([float(v) for v in values], dtype=np.float64)
    if len(out) != length or not np.isfinite(out).all():
        raise StateError(f"expected {length} finite numbers")
    return out
