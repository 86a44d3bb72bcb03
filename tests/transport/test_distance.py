"""OT distance of a mixture and its gradient from dual potentials (mixplan.transport.distance)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mixplan.exceptions import ValidationError
from mixplan.transport.distance import (
    OTConvergenceWarning,
    cost_matrix,
    mixture_measure,
    ot_distance,
    ot_gradient,
    pool_directions,
)

# The OT value is piecewise linear in w. A central difference is exact when both points lie on the
# same linear piece as w; with ~250 x 150 points the pieces are ~1e-5..1e-4 wide in w. Measured over 40
# seeds: step 1e-6 -> max relative error 3.7e-8 (median 2e-9); step 1e-5 straddles a vertex on 1 seed
# (0.57%) and steps 1e-3 / 1e-4 on many (0.1-1.5%): kinks of the LP, not errors of the formula.
FD_STEP = 1e-6
FD_RTOL = 1e-3


def gaussian_pools(seed: int, P: int = 4, n_per: int = 60, m: int = 150, d: int = 8):
    rng = np.random.default_rng(seed)
    centers = 1.5 * rng.normal(size=(P, d))
    X = np.concatenate([centers[p] + rng.normal(size=(n_per + p, d)) for p in range(P)])
    idx = np.repeat(np.arange(P), [n_per + p for p in range(P)])
    Y = rng.normal(size=(m, d)) + centers.mean(0)
    return cost_matrix(X, Y), idx, rng


def test_mixture_measure_reweights_each_pool():
    idx = np.array([0, 0, 1, 2, 2, 2])
    a = mixture_measure([0.5, 0.2, 0.3], idx)
    np.testing.assert_allclose(a, [0.25, 0.25, 0.2, 0.1, 0.1, 0.1])
    assert a.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(5))
def test_projektor_gradient_matches_central_differences(seed):
    C, idx, rng = gaussian_pools(seed)
    w = rng.dirichlet(np.ones(4))
    res = ot_distance(w, C, idx)
    assert res.converged and res.status == 1
    grad = res.gradient("projektor")
    D = pool_directions(w)
    assert np.allclose(D.sum(1), 0.0)
    fd = np.array([(ot_distance(w + FD_STEP * d, C, idx).distance - ot_distance(w - FD_STEP * d, C, idx).distance)
                   / (2 * FD_STEP) for d in D])
    rel = np.abs(fd - grad) / np.maximum(np.abs(grad), 1e-12)
    assert rel.max() <= FD_RTOL, (fd, grad)
    np.testing.assert_allclose(ot_gradient(w, C, idx), grad)


def test_tangent_gradient_matches_differences_along_pairs():
    C, idx, rng = gaussian_pools(11)
    w = rng.dirichlet(np.ones(4))
    tangent = ot_distance(w, C, idx).gradient("tangent")
    assert tangent.sum() == pytest.approx(0.0, abs=1e-9)
    for i, k in [(0, 1), (2, 3), (1, 3)]:
        d = np.zeros(4)
        d[i], d[k] = 1.0, -1.0
        fd = (ot_distance(w + FD_STEP * d, C, idx).distance
              - ot_distance(w - FD_STEP * d, C, idx).distance) / (2 * FD_STEP)
        assert fd == pytest.approx(tangent[i] - tangent[k], rel=FD_RTOL)


def test_gradient_does_not_depend_on_the_dual_constant():
    C, idx, rng = gaussian_pools(3)
    w = rng.dirichlet(np.ones(4))
    res = ot_distance(w, C, idx)
    shifted = type(res)(res.distance, res.f + 7.0, res.g - 7.0, res.method, res.converged, res.status, res.n_iter,
                        res.reg, res.weights, res.pool_index)
    np.testing.assert_allclose(shifted.gradient("projektor"), res.gradient("projektor"))
    np.testing.assert_allclose(shifted.gradient("tangent"), res.gradient("tangent"))
    np.testing.assert_allclose(shifted.gradient("raw"), res.gradient("raw") + 7.0)


def test_distance_is_zero_when_the_mixture_reproduces_validation():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(90, 6))
    idx = np.repeat([0, 1, 2], 30)
    # validation = pool samples with weights matching the mixture (0.5, 0.3, 0.2)
    w = np.array([0.5, 0.3, 0.2])
    C = cost_matrix(X, X)
    b = mixture_measure(w, idx)
    assert ot_distance(w, C, idx, b=b).distance == pytest.approx(0.0, abs=1e-10)
    assert ot_distance([0.2, 0.3, 0.5], C, idx, b=b).distance > 0.1


def test_sinkhorn_approaches_exact_as_reg_shrinks():
    C, idx, rng = gaussian_pools(2, n_per=30, m=80)
    w = rng.dirichlet(np.ones(4))
    exact = ot_distance(w, C, idx).distance
    errors = []
    # measured: +77% at 0.1 max(C), +5% at 0.01, +0.44% at 0.003 (log-domain solver), +0.04% at 0.001
    for rel_reg in (0.1, 0.01, 0.003):
        res = ot_distance(w, C, idx, method="sinkhorn", reg=rel_reg * C.max(), numItermax=100_000)
        assert res.converged
        assert res.distance >= exact - 1e-6 * exact
        errors.append(res.distance / exact - 1.0)
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.01  # within 1% of the exact cost at reg = 0.003 max(C)


def test_sinkhorn_handles_zero_weight_pools():
    C, idx, _ = gaussian_pools(4, n_per=20, m=50)
    res = ot_distance([0.5, 0.0, 0.5, 0.0], C, idx, method="sinkhorn")
    assert np.all(np.isfinite(res.f)) and np.all(np.isfinite(res.g))
    assert np.all(np.isfinite(res.gradient()))


def test_iteration_limit_warns():
    C, idx, rng = gaussian_pools(6)
    w = rng.dirichlet(np.ones(4))
    with pytest.warns(OTConvergenceWarning, match="numItermax"):
        res = ot_distance(w, C, idx, numItermax=10)
    assert not res.converged
    with pytest.warns(OTConvergenceWarning, match="numItermax"):
        res = ot_distance(w, C, idx, method="sinkhorn", reg=1e-3 * C.max(), numItermax=3)
    assert not res.converged
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ot_distance(w, C, idx).converged


@pytest.mark.parametrize("w, match", [
    ([0.6, -0.1, 0.3, 0.2], "negative"),
    ([0.5, 0.2, 0.2, 0.2], "sums to"),
    ([0.5, 0.5], "2 entries but there are 4 pools|only 2 entries"),
    ([0.2, 0.2, 0.2, 0.2, 0.2], "5 entries"),
    ([0.5, np.nan, 0.25, 0.25], "finite"),
])
def test_bad_weights_are_rejected(w, match):
    C, idx, _ = gaussian_pools(0, n_per=5, m=7)
    with pytest.raises(ValidationError, match=match):
        ot_distance(w, C, idx)


def test_bad_pool_index_and_cost_are_rejected():
    C, idx, _ = gaussian_pools(0, n_per=5, m=7)
    w = np.full(4, 0.25)
    with pytest.raises(ValidationError, match="rows"):
        ot_distance(w, C, idx[:-1])
    with pytest.raises(ValidationError, match="integer pool ids"):
        ot_distance(w, C, idx.astype(str))
    with pytest.raises(ValidationError, match="no samples"):
        ot_distance(w, C, np.where(idx == 2, 1, idx))  # pool 2 empty
    with pytest.raises(ValidationError, match="no samples"):
        mixture_measure([0.5, 0.0, 0.5], [0, 0, 2])
    with pytest.raises(ValidationError, match="must be 0..P-1"):
        ot_distance(w, C, np.where(idx == 0, -1, idx))
    with pytest.raises(ValidationError, match="columns"):
        ot_distance(w, C, idx, b=np.full(3, 1 / 3))
    with pytest.raises(ValidationError, match="NaN"):
        ot_distance(w, np.where(C > C.mean(), np.nan, C), idx)
    with pytest.raises(ValidationError, match="method"):
        ot_distance(w, C, idx, method="sliced")
    with pytest.raises(ValidationError, match="kind"):
        ot_gradient(w, C, idx, kind="full")
    with pytest.raises(ValidationError, match="features"):
        cost_matrix(np.ones((3, 2)), np.ones((3, 4)))
