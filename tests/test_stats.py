"""mixplan._stats against scipy.stats (which the commands no longer import: it takes ~0.7 s)."""

import numpy as np
import pytest
from scipy.stats import norm, pearsonr, rankdata, spearmanr

from mixplan._parallel import map_ordered, resolve_jobs
from mixplan._stats import normal_cdf, normal_ppf, pearson, ranks, spearman


def test_ranks_and_correlations_equal_scipy_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(3, 60))
        a = rng.integers(0, 6, n).astype(float)  # many ties
        b = rng.normal(size=n)
        assert np.array_equal(ranks(a), rankdata(a))
        assert spearman(a, b) == pytest.approx(spearmanr(a, b)[0], abs=1e-12)
        assert pearson(a, b) == pytest.approx(pearsonr(a, b)[0], abs=1e-12)
    assert np.isnan(pearson(np.ones(5), np.arange(5.0)))


def test_normal_quantiles_equal_scipy():
    x = np.linspace(-6, 6, 101)
    assert np.allclose(normal_cdf(x), norm.cdf(x), rtol=1e-14, atol=0)
    p = np.linspace(0.001, 0.999, 99)
    assert np.allclose(normal_ppf(p), norm.ppf(p), rtol=1e-12, atol=1e-14)


def test_ordered_map_is_the_same_for_any_number_of_workers():
    class Count:
        n = 0

        def update(self, k):
            self.n += k

    bar = Count()
    items = list(range(23))
    assert map_ordered(lambda x: x * x, items, 4, bar) == [x * x for x in items] == map_ordered(lambda x: x * x, items)
    assert bar.n == 23 and resolve_jobs(3) == 3 and resolve_jobs(None) >= 1 and resolve_jobs(-1) == resolve_jobs(0)


def test_ridge_loo_matches_refitting_without_each_row():
    from sklearn.linear_model import Ridge

    from mixplan._stats import ridge_loo

    rng = np.random.default_rng(0)
    Z = rng.normal(size=(30, 4))
    y = Z @ [1.0, -0.5, 0.0, 0.2] + 0.3 * rng.normal(size=30)
    alphas = [10.0, 1.0, 0.1]
    fit = ridge_loo(Z, y, alphas)
    for k, a in enumerate(alphas):  # the exact LOO error: refit on n - 1 rows, predict the one left out
        loo = [y[i] - Ridge(alpha=a).fit(np.delete(Z, i, 0), np.delete(y, i)).predict(Z[i:i + 1])[0]
               for i in range(30)]
        assert fit.errors[k] == pytest.approx(np.mean(np.square(loo)), rel=1e-10)
    assert fit.index == int(np.argmin(fit.errors)) and fit.alpha == alphas[fit.index]
    full = Ridge(alpha=fit.alpha).fit(Z, y)
    np.testing.assert_allclose(fit.beta, full.coef_, rtol=1e-10)
    assert fit.intercept == pytest.approx(full.intercept_, rel=1e-10)
    # a later penalty must win by the relative margin: with a huge margin the first stays
    assert ridge_loo(Z, y, alphas, rtol=0.99).index == 0
