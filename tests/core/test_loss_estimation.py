"""A regression model's MAE estimated before labels (DLE, detectors/loss_estimation.py):
seeded heteroscedastic models, windows of 1,000 predictions against a reference of 2,000
labelled outcomes (the statistical experiment at length: bench/dle.py)."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import orjson
import pytest
from sklearn.linear_model import Ridge, RidgeCV

from detectors.base import StateError
from detectors.loss_estimation import PENALTIES, AbsoluteErrorModel

REFERENCE = 2000
WINDOW = 1000
SEEDS = range(20)
CRITICAL = NormalDist().inv_cdf(1 - 1e-3)  # the one-sided test at alpha = 0.001
MIN_RISE = 0.1


def outcomes(
    seed: int, n: int, shift: str | None = None, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, predictions, absolute errors) of a linear model that misses a bias in x3,
    its noise growing with x0 (even seeds: smoothly; odd: in steps, also with x1); x2 and x4
    move the prediction, not the error. ``shift``: ``hurts`` (x0, x1 ~ N(1, 1): MAE +30-55 %),
    ``harmless`` (x2, x4 ~ N(2, 1)), ``concept`` (labels + 0.5), ``beyond`` (x0 ~ N(5, 0.3),
    beyond the reference's range)."""
    law = np.random.default_rng(seed)  # the seed's model, whatever the draw
    c, g, h = law.uniform(0.15, 0.3), law.uniform(0.35, 0.55), law.uniform(0.4, 0.6)
    rng = rng if rng is not None else law
    x = rng.normal(0.0, 1.0, (n, 5))
    if shift == "hurts":
        x[:, :2] += 1.0
    elif shift == "harmless":
        x[:, [2, 4]] += 2.0
    elif shift == "beyond":
        x[:, 0] = rng.normal(5.0, 0.3, n)
    yhat = x[:, 0] + 1.5 * x[:, 2] + 0.8 * x[:, 3]
    if seed % 2 == 0:
        scale = 0.5 * np.exp(g * x[:, 0])
        bias = c * (x[:, 3] ** 2 - 1)
    else:
        scale = 0.25 + 0.25 * np.abs(x[:, 0]) + h * (x[:, 1] > 0.5)
        bias = 3 * c * (x[:, 3] > 1)
    y = yhat + bias + scale * rng.standard_normal(n) + (0.5 if shift == "concept" else 0.0)
    return x, yhat, np.abs(y - yhat)


def fitted(seed: int) -> AbsoluteErrorModel:
    return AbsoluteErrorModel.fit(*outcomes(seed, REFERENCE))


def test_the_estimate_tracks_a_shift_that_hurts_and_alerts():
    """Inputs move to where the model is worse (the MAE up 20 % or more, 35 % on average):
    over 20 seeds the estimated MAE of a shifted window is within 10 % of the reference MAE of
    what it realised on average (30 % at worst; the realised MAE of a window is itself a
    draw, ~3 %), and significantly above reference + 10 % in every one."""
    gaps, rises = [], []
    for seed in SEEDS:
        x, yhat, errors = outcomes(seed, REFERENCE)
        model = AbsoluteErrorModel.fit(x, yhat, errors)
        reference = float(errors.mean())
        x, yhat, shifted = outcomes(seed, WINDOW, "hurts", np.random.default_rng(1000 + seed))
        rises.append(shifted.mean() / reference)
        assert rises[-1] >= 1.2, seed  # the shift hurts
        estimate = model.estimate(x, yhat)
        gaps.append(abs(estimate.value - shifted.mean()) / reference)
        assert model.rise_z(estimate, MIN_RISE) > CRITICAL, seed
        assert estimate.outside < 0.1  # (a few inputs beyond the reference's range)
    assert np.mean(rises) >= 1.35
    assert np.mean(gaps) <= 0.1, np.mean(gaps)
    assert max(gaps) <= 0.3, max(gaps)


def test_a_harmless_shift_and_concept_drift_raise_no_alert():
    """Inputs that move the prediction but not the error: no significant rise (the estimate
    may move, the band knows how far it extrapolates). Labels that change while inputs do not:
    the estimate stays where it was (3 % of the reference on average, no alert) while the
    realised MAE rises (by 10 % or more, 25 % on average)."""
    moves, rises = [], []
    for seed in SEEDS:
        model = fitted(seed)
        x, yhat, _ = outcomes(seed, WINDOW, "harmless", np.random.default_rng(2000 + seed))
        assert model.rise_z(model.estimate(x, yhat), MIN_RISE) < CRITICAL, seed
        x, yhat, errors = outcomes(seed, WINDOW, "concept", np.random.default_rng(3000 + seed))
        estimate = model.estimate(x, yhat)
        moves.append(abs(estimate.value - model.reference) / model.reference)
        assert model.rise_z(estimate, MIN_RISE) < CRITICAL, seed
        rises.append(errors.mean() / model.reference)
        assert rises[-1] >= 1.1, seed
    assert np.mean(moves) <= 0.03
    assert np.mean(rises) >= 1.25


def test_stationary_windows_are_within_their_band():
    """Stationary windows: no alert, and ``(estimate - reference) / spread`` with no margin is
    standard normal (mean within 0.25 of 0, sd within 15 % of 1) over 100 seeds x 4 windows."""
    zs = []
    for seed in range(100):
        model = fitted(seed)
        rng = np.random.default_rng(4000 + seed)
        for _ in range(4):
            x, yhat, _ = outcomes(seed, WINDOW, rng=rng)
            estimate = model.estimate(x, yhat)
            assert model.rise_z(estimate, MIN_RISE) < CRITICAL, seed
            zs.append(model.rise_z(estimate))
    assert abs(np.mean(zs)) < 0.25, np.mean(zs)
    assert 0.85 < np.std(zs) < 1.15, np.std(zs)


def test_the_band_knows_the_coefficients_uncertainty():
    """One harmless window, 100 references: the estimate minus the reference's varies from
    reference to reference as the band's coefficient term says (within 25 %)."""
    x, yhat, _ = outcomes(0, WINDOW, "harmless", np.random.default_rng(5000))
    gaps, predicted = [], []
    for k in range(100):
        model = AbsoluteErrorModel.fit(*outcomes(0, REFERENCE, rng=np.random.default_rng(k)))
        terms = model.row_terms(x, yhat).sum(axis=0)
        mean_row = terms[3:] / WINDOW
        gaps.append(terms[0] / WINDOW - model.reference)
        predicted.append(math.sqrt(mean_row @ model.covariance @ mean_row))
    assert np.std(gaps) == pytest.approx(np.mean(predicted), rel=0.25)


def test_inputs_beyond_the_reference_are_clipped_and_counted():
    """Beyond the reference's range the estimate holds at the range's edge (it does not
    extrapolate; here still above the reference: an alert); ``outside`` says how much of the
    window is beyond it."""
    for seed in range(4):
        model = fitted(seed)
        x, yhat, errors = outcomes(seed, WINDOW, "beyond", np.random.default_rng(6000 + seed))
        estimate = model.estimate(x, yhat)
        assert estimate.outside > 0.9
        assert model.rise_z(estimate, MIN_RISE) > CRITICAL
        assert estimate.value < 2 * errors.mean()
        far = model.estimate(x + 10.0, yhat + 10.0)
        assert far.value == model.estimate(x + 100.0, yhat + 100.0).value


@pytest.mark.parametrize("seed", range(5))
def test_the_fit_is_scikit_learns_ridge_with_leave_one_out_penalty(seed):
    """On the same design, RidgeCV's efficient leave-one-out picks the same penalty and Ridge
    the same coefficients."""
    x, yhat, errors = outcomes(seed, REFERENCE)
    model = AbsoluteErrorModel.fit(x, yhat, errors)
    design = model.design(x, yhat)
    chosen = RidgeCV(alphas=PENALTIES).fit(design, errors)
    assert chosen.alpha_ == pytest.approx(model.penalty)
    theirs = Ridge(alpha=model.penalty).fit(design, errors)
    np.testing.assert_allclose(model.coefficients, theirs.coef_, rtol=1e-6, atol=1e-10)
    assert model.intercept == pytest.approx(theirs.intercept_)
    np.testing.assert_allclose(
        model.predict(x, yhat), np.maximum(theirs.predict(design), model.floor), rtol=1e-9
    )


def test_the_model_saves_and_loads():
    model = fitted(3)
    state = orjson.loads(orjson.dumps(model.to_state()))
    loaded = AbsoluteErrorModel.from_state(state)
    x, yhat, _ = outcomes(3, 500, "harmless", np.random.default_rng(7))
    assert np.array_equal(loaded.predict(x, yhat), model.predict(x, yhat))
    assert loaded.estimate(x, yhat) == model.estimate(x, yhat)
    assert len(orjson.dumps(state)) < 20_000  # 5 features: 12 coefficients, a 12 x 12 matrix
    for broken in (
        {**state, "coefficients": state["coefficients"][:-1]},
        {**state, "covariance": state["covariance"][:-1]},
        {**state, "scale": [0.0] * len(state["scale"])},
        {**state, "intercept": "nan"},
        {**state, "format": 2},
        {k: v for k, v in state.items() if k != "low"},
    ):
        with pytest.raises(StateError):
            AbsoluteErrorModel.from_state(broken)


def test_impossible_fits_are_refused():
    x, yhat, errors = outcomes(0, REFERENCE)
    with pytest.raises(ValueError, match="outcomes"):
        AbsoluteErrorModel.fit(x[:50], yhat[:50], errors[:50])
    with pytest.raises(ValueError, match="finite"):
        AbsoluteErrorModel.fit(x, yhat, np.r_[errors[:-1], np.nan])
    with pytest.raises(ValueError, match="rows"):
        AbsoluteErrorModel.fit(x, yhat, errors[:-1])
    constant = x.copy()
    constant[:, 4] = 1.0  # a constant feature is 0 once clipped
    model = AbsoluteErrorModel.fit(constant, yhat, errors)
    assert np.isfinite(model.predict(x, yhat)).all()
