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
