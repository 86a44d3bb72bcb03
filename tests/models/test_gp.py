"""The GP of mixplan.models.gp against finite differences, scikit-learn and its own closed forms."""

import numpy as np
import pytest

from mixplan.models.gp import fit_gp, neg_log_marginal_likelihood


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
