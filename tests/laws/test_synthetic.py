"""The rectified law of synthetic pools (SynthLLM): known-truth recovery, its Jacobian against finite
differences, and the plateau (where one more doubling gains less than a tolerance)."""

import numpy as np
import pytest

from mixplan.laws import SYNTHETIC, doubling_gain, fit_law, plateau_tokens, rectified_loss

TRUE = {"B": 400.0, "E": 1.9, "D_l": 2e7, "beta": 0.35}


def test_the_fit_recovers_known_parameters():
    D = np.geomspace(1e6, 3e10, 16)
    rng = np.random.default_rng(0)
    y = rectified_loss(D, TRUE) * np.exp(0.002 * rng.normal(size=D.size))
    fit = fit_law(SYNTHETIC, {"tokens": D}, y, n_bootstrap=20, seed=0)
    assert fit.params["E"] == pytest.approx(TRUE["E"], rel=0.05)
    assert fit.params["beta"] == pytest.approx(TRUE["beta"], rel=0.15)
    # the curve itself, inside the runs and one decade beyond them (where the plan uses it), to 1%
    for d in (1e8, 3e10, 3e11):
        assert rectified_loss(d, fit.params) == pytest.approx(rectified_loss(d, TRUE), rel=0.01)


def test_the_jacobian_matches_finite_differences():
    theta = np.array([np.log(TRUE["B"]), np.log(TRUE["E"]), np.log(TRUE["D_l"]), TRUE["beta"]])
    data = {"tokens": np.geomspace(1e5, 1e11, 7)}
    J = SYNTHETIC.jacobian(theta, data)
    h = 1e-6
    for k in range(4):
        step = np.zeros(4)
        step[k] = h
        fd = (SYNTHETIC.log_predict(theta + step, data) - SYNTHETIC.log_predict(theta - step, data)) / (2 * h)
        assert np.allclose(J[:, k], fd, rtol=1e-5, atol=1e-9), k


def test_the_plateau_is_where_a_doubling_gains_less_than_the_tolerance():
    D = plateau_tokens(TRUE, tol=1e-3)
    assert doubling_gain(D * 1.001, TRUE) < 1e-3 <= doubling_gain(D * 0.999, TRUE)
    assert plateau_tokens(TRUE, tol=1e-2) < D  # a coarser tolerance plateaus earlier
    # without the shift D_l the curve is a plain power law: the gain never rises, only falls
    assert plateau_tokens(TRUE | {"D_l": 1e-9}, tol=1e-3) == pytest.approx(D, rel=0.2)
    assert plateau_tokens(TRUE, tol=1e3) == 1.0  # no doubling ever gains that much
    assert plateau_tokens(TRUE | {"beta": 0.01, "B": 1e4}, tol=1e-6) == float("inf")


def test_a_synthetic_token_is_worth_what_the_law_says_it_adds():
    """V(D) = D_l/beta (1 - (1 + D/D_l)^-beta): its slope is L'(D)/L'(0) (finite differences), it starts at one
    token per token, saturates at D_l/beta, and is continuous at beta -> 0 (D_l log(1 + D/D_l))."""
    from mixplan.laws.synthetic import synthetic_value, value_ratio

    D_l, beta = TRUE["D_l"], TRUE["beta"]
    D = np.geomspace(1e4, 1e12, 9)
    h = D * 1e-6
    slope = (synthetic_value(D + h, D_l, beta) - synthetic_value(D - h, D_l, beta)) / (2 * h)
    dL = lambda x: -beta * TRUE["B"] * (D_l + x) ** (-beta - 1)  # noqa: E731 - the law's derivative
    assert np.allclose(slope, dL(D) / dL(0.0), rtol=1e-5)
    assert synthetic_value(1.0, D_l, beta) == pytest.approx(1.0, rel=1e-6)
    assert synthetic_value(1e20, D_l, beta) == pytest.approx(D_l / beta, rel=1e-4)
    assert synthetic_value(D, D_l, 1e-12) == pytest.approx(D_l * np.log1p(D / D_l), rel=1e-9)
    # relative to a reference read: 1 there, less further up the curve, more below it
    r = value_ratio(np.array([1e6, 1e7, 1e9]), D_l, beta, reference=1e7)
    assert r[1] == pytest.approx(1.0) and r[2] < 1 < r[0]
