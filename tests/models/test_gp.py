"""The GP of mixplan.models.gp against finite differences, scikit-learn and its own closed forms."""

import numpy as np
import pytest

from mixplan.models import gp as gp_module
from mixplan.models.gp import fit_gp, inverse_from_cholesky, length_groups, neg_log_marginal_likelihood


def _data(n=40, p=5, seed=0):
    rng = np.random.default_rng(seed)
    F = np.sqrt(rng.dirichlet(np.ones(p), n))
    y = np.sin(3 * F[:, 0]) + F[:, 1] ** 2 + 0.01 * rng.normal(size=n)
    return F, (y - y.mean()) / y.std()


@pytest.mark.parametrize("ard,prior", [(True, None), (True, (0.5, 1.0)), (False, None)])
def test_gradient_matches_central_differences(ard, prior):
    F, y = _data()
    rng = np.random.default_rng(1)
    theta = np.r_[0.2, rng.normal(0, 0.3, F.shape[1] if ard else 1), np.log(0.05)]
    _, grad = neg_log_marginal_likelihood(theta, F, y, ard, prior)
    h = 1e-6
    num = np.array([(neg_log_marginal_likelihood(theta + h * e, F, y, ard, prior)[0]
                     - neg_log_marginal_likelihood(theta - h * e, F, y, ard, prior)[0]) / (2 * h)
                    for e in np.eye(len(theta))])
    assert np.max(np.abs(grad - num)) <= 1e-5 * max(1.0, np.max(np.abs(num)))


def test_grouped_length_scales_gradient_and_special_cases():
    F, y = _data(p=6)
    groups = np.array([0, 1, 1, 2, 0, 2])
    rng = np.random.default_rng(2)
    theta = np.r_[0.1, rng.normal(0, 0.3, 3), np.log(0.03)]
    f = lambda t: neg_log_marginal_likelihood(t, F, y, True, (0.2, 1.0), groups)  # noqa: E731
    _, grad = f(theta)
    h = 1e-6
    num = np.array([(f(theta + h * e)[0] - f(theta - h * e)[0]) / (2 * h) for e in np.eye(len(theta))])
    assert np.max(np.abs(grad - num)) <= 1e-5 * max(1.0, np.max(np.abs(num)))
    # one group is the shared length scale; one group per feature is ARD
    shared = np.r_[0.1, 0.4, np.log(0.03)]
    assert neg_log_marginal_likelihood(shared, F, y, False)[0] == pytest.approx(
        neg_log_marginal_likelihood(shared, F, y, True, None, np.zeros(6, dtype=int))[0], rel=1e-12)
    assert np.array_equal(length_groups(6, True), np.arange(6))
    with pytest.raises(ValueError, match="every group used"):
        length_groups(3, True, np.array([0, 2, 2]))


def test_inverse_from_cholesky_and_blocked_predictions_are_exact(monkeypatch):
    F, y = _data(n=60)
    gp = fit_gp(F, y)
    K = gp.chol @ gp.chol.T
    assert np.allclose(inverse_from_cholesky(gp.chol), np.linalg.inv(K), rtol=1e-8, atol=1e-8 * np.abs(np.linalg.inv(K)).max())
    T = np.sqrt(np.random.default_rng(5).dirichlet(np.ones(5), 37))
    mean, sd = gp.predict(T), gp.predict_std(T)
    monkeypatch.setattr(gp_module, "PREDICT_BLOCK", 7 * len(y))  # blocks of 7 rows: 6 blocks, the last short
    # other block sizes sum in another order: equal to rounding (3e-11 on predictions of size 3)
    assert np.max(np.abs(gp.predict(T) - mean)) <= 1e-9 * np.abs(mean).max()
    assert np.max(np.abs(gp.predict_std(T) - sd)) <= 1e-9 * sd.max()


def test_hyper_parameters_from_a_subset_condition_on_every_run():
    F, y = _data(n=80)
    sub = np.arange(0, 80, 2)
    gp = fit_gp(F, y, subset=sub)
    # the hyper-parameters are those that maximise the subset's likelihood (targets standardised over all runs)
    yn = (y - y.mean()) / y.std()
    ref = fit_gp(F[sub], y[sub])
    assert gp.F.shape[0] == 80 and len(gp.theta) == len(ref.theta)
    assert -neg_log_marginal_likelihood(gp.theta, F[sub], yn[sub])[0] >= \
        -neg_log_marginal_likelihood(ref.theta, F[sub], yn[sub])[0] - 1e-3
    full = fit_gp(F, y, theta=gp.theta)  # the posterior conditions on every run with those hyper-parameters
    assert np.array_equal(full.alpha, gp.alpha) and np.array_equal(full.chol, gp.chol)


def test_marginal_likelihood_equals_scikit_learn():
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    F, y = _data()
    theta = np.r_[0.3, np.log([0.5, 0.8, 1.2, 2.0, 0.7]), np.log(0.02)]
    kernel = (ConstantKernel(np.exp(theta[0])) * Matern(np.exp(theta[1:-1]), nu=2.5)
              + WhiteKernel(np.exp(theta[-1])))
    ref = GaussianProcessRegressor(kernel, optimizer=None).fit(F, y).log_marginal_likelihood_value_
    # mixplan adds a 1e-9 jitter to the diagonal; scikit-learn adds alpha=1e-10
    assert -neg_log_marginal_likelihood(theta, F, y)[0] == pytest.approx(ref, rel=1e-7)


def test_leave_one_out_closed_form_equals_refits():
    F, y = _data(n=25)
    gp = fit_gp(F, y)
    mean, sd = gp.loo()
    for i in (0, 7, 24):
        keep = np.arange(len(y)) != i
        # same hyper-parameters and the same standardisation, one run fewer
        sub = fit_gp(F[keep], y[keep], theta=gp.theta)
        sub_pred = gp.y_mean + gp.y_scale * (sub._cross(F[i:i + 1]) @ np.linalg.solve(
            sub.chol @ sub.chol.T, (y[keep] - gp.y_mean) / gp.y_scale))
        assert mean[i] == pytest.approx(float(sub_pred[0]), abs=1e-8)
    assert np.all(sd > 0)


def test_condition_adds_observations_and_shrinks_uncertainty():
    F, y = _data()
    gp = fit_gp(F[:30], y[:30])
    new = gp.condition(F[30:], y[30:])
    assert new.F.shape[0] == 40 and np.array_equal(new.theta, gp.theta)
    assert np.all(new.predict_std(F[30:], noise=False) < gp.predict_std(F[30:], noise=False))
    cov = gp.predict_cov(F[30:33])
    assert np.allclose(np.sqrt(np.diag(cov)), gp.predict_std(F[30:33], noise=False), rtol=1e-6, atol=1e-10)


def test_fit_recovers_a_smooth_function():
    rng = np.random.default_rng(3)
    F = rng.uniform(0, 1, (80, 3))
    f = lambda Z: np.sin(4 * Z[:, 0]) + 0.5 * Z[:, 1]  # noqa: E731 - the third feature is irrelevant
    gp = fit_gp(F, f(F) + 0.01 * rng.normal(size=80))
    T = rng.uniform(0, 1, (200, 3))
    assert np.sqrt(np.mean((gp.predict(T) - f(T)) ** 2)) < 0.03
    assert gp.length_scales[2] > 3 * gp.length_scales[0]  # ARD finds the irrelevant feature
    assert gp.noise == pytest.approx(1e-4, rel=1.0)
