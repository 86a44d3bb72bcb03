"""The exact proposer (mixplan.simplex.convex): closed forms, linear programs, a dense grid, and its certificate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from mixplan.data.pools import Pool, PoolSet, load_pools
from mixplan.exceptions import ValidationError
from mixplan.simplex import build_constraints
from mixplan.simplex.convex import minimise_convex

PRIOR = np.array([0.4, 0.3, 0.2, 0.1])
NO_EXP = dict(a=np.zeros(0), b=np.zeros(0), T=np.zeros((0, 4)))


def _pools(**kw):
    return PoolSet(tuple(Pool(f"p{i}", tokens=t, **kw) for i, t in enumerate(PRIOR * 1e6)))


def _f(w, g, a, b, T, lam=0.0, p=PRIOR):
    w = np.asarray(w, dtype=float)
    kl = np.sum(np.where(w > 0, w * np.log(np.where(w > 0, w, 1) / p), 0.0), axis=-1)
    return w @ g + np.exp(b + w @ T.T) @ a + lam * kl


def test_linear_plus_kl_is_the_gibbs_distribution():
    # min g.w + lam KL(w || p) over the simplex: w_i = p_i exp(-g_i / lam) / Z
    g, lam = np.array([0.3, 0.0, -0.2, 0.1]), 0.05
    truth = PRIOR * np.exp(-g / lam)
    truth /= truth.sum()
    r = minimise_convex(g, c=build_constraints(_pools()), start=np.full(4, 0.25), strength=lam, prior=PRIOR, **NO_EXP)
    # f is flat to second order at its minimum: a value within 1e-12 puts the weights within about 1e-6
    np.testing.assert_allclose(r.weights, truth, atol=1e-6)
    assert r.gap < 1e-10 and r.value == pytest.approx(_f(truth, g, lam=lam, **NO_EXP), abs=1e-12)
    assert r.value <= r.start_value


def test_linear_alone_reaches_the_linear_programs_optimum_under_caps():
    g = np.array([0.3, -0.1, -0.2, 0.1])
    c = build_constraints(_pools(max_weight=0.35))  # the best pool is capped: the optimum is a vertex of the box
    lp = linprog(g, A_eq=np.ones((1, 4)), b_eq=[1.0], bounds=list(zip(c.lower, c.upper)), method="highs")
    r = minimise_convex(g, c=c, start=np.full(4, 0.25), **NO_EXP)
    assert r.value == pytest.approx(lp.fun, abs=1e-10) and r.gap < 1e-10
    assert bool(c.check(r.weights[None, :])[0])


def _exp_problem(seed):
    rng = np.random.default_rng(seed)
    return dict(g=rng.normal(0, 0.1, 3), a=rng.uniform(0.1, 1.0, 2), b=rng.normal(0, 0.3, 2),
                T=rng.normal(0, 2.0, (2, 3)))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("lam", [0.0, 0.02])
def test_exponential_terms_beat_every_point_of_a_dense_grid(seed, lam):
    q = _exp_problem(seed)
    p = np.array([0.5, 0.3, 0.2])
    c = build_constraints(PoolSet(tuple(Pool(f"p{i}", tokens=t) for i, t in enumerate(p * 1e6))))
    r = minimise_convex(c=c, start=np.full(3, 1 / 3), strength=lam, prior=p, **q)
    n = 400  # the simplex on a grid of step 1/400
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1))
    keep = i + j <= n
    G = np.column_stack([i[keep], j[keep], n - i[keep] - j[keep]]) / n
    grid_best = float(np.min(_f(G, p=p, lam=lam, **q)))
    assert r.value <= grid_best + 1e-12
    assert r.value == pytest.approx(float(_f(r.weights, p=p, lam=lam, **q)), abs=1e-12)
    assert r.gap < 1e-8
    # no feasible neighbour is better (zero-sum moves kept inside the simplex)
    rng = np.random.default_rng(seed)
    D = rng.normal(0, 1e-3, (2000, 3))
    D -= D.mean(axis=1, keepdims=True)
    V = r.weights + D
    V = V[np.all(V > 0, axis=1)]
    assert np.all(_f(V, p=p, lam=lam, **q) >= r.value - 1e-12)


def test_the_gap_bounds_the_distance_to_the_optimum_when_the_solver_stops_early():
    q = _exp_problem(0)
    p = np.array([0.5, 0.3, 0.2])
    c = build_constraints(PoolSet(tuple(Pool(f"p{i}", tokens=t) for i, t in enumerate(p * 1e6))))
    best = minimise_convex(c=c, start=np.full(3, 1 / 3), strength=0.02, prior=p, **q)
    early = minimise_convex(c=c, start=np.array([0.8, 0.1, 0.1]), strength=0.02, prior=p, maxiter=1, **q)
    assert early.value - best.value <= early.gap + 1e-12
    assert early.value <= early.start_value  # never worse than where it started


def test_groups_and_pins_hold_and_the_pinned_group_splits_by_gibbs(tmp_path):
    path = tmp_path / "pools.toml"
    path.write_text("[pools.web]\n" + "".join(f"[pools.p{i}]\ntokens = {t}\n" + ('parent = "web"\n' if i < 2 else "")
                                          for i, t in enumerate(PRIOR * 1e6)))
    pools = load_pools(path)
    c = build_constraints(pools, pins={"web": 0.3})  # the group's total is pinned; its members are free
    g, lam = np.array([0.3, 0.0, -0.2, 0.1]), 0.1
    start = np.array([0.15, 0.15, 0.35, 0.35])
    r = minimise_convex(g, c=c, start=start, strength=lam, prior=pools.prior, **NO_EXP)
    # inside and outside the pinned group the KL-regularised linear optimum is Gibbs, scaled to each side's total
    p = pools.prior
    inside = p[:2] * np.exp(-g[:2] / lam)
    outside = p[2:] * np.exp(-g[2:] / lam)
    truth = np.concatenate([0.3 * inside / inside.sum(), 0.7 * outside / outside.sum()])
    np.testing.assert_allclose(r.weights, truth, atol=1e-6)
    assert bool(c.check(r.weights[None, :])[0]) and r.gap < 1e-9


def test_a_pinned_pool_and_a_pool_outside_the_priors_support():
    p = np.array([0.5, 0.0, 0.3, 0.2])
    pools = PoolSet(tuple(Pool(f"p{i}", tokens=1e6) for i in range(4)))
    c = build_constraints(pools, pins={"p3": 0.4})
    g = np.array([0.0, -5.0, 0.0, 0.0])  # the prior-0 pool is by far the best for the linear part
    r = minimise_convex(g, c=c, start=np.array([0.3, 0.0, 0.3, 0.4]), strength=0.1, prior=p,
                        kl_mask=np.array([True, True, True, False]), **NO_EXP)
    assert r.weights[1] == 0.0 and r.weights[3] == pytest.approx(0.4, abs=1e-12)
    np.testing.assert_allclose(r.weights[[0, 2]], 0.6 * np.array([0.5, 0.3]) / 0.8, atol=1e-6)


def test_a_concave_term_is_refused():
    with pytest.raises(ValidationError, match="convex"):
        minimise_convex(np.zeros(4), np.array([-1.0]), np.zeros(1), np.ones((1, 4)), build_constraints(_pools()),
                        np.full(4, 0.25))


def test_the_bound_holds_when_the_optimum_is_below_the_kl_floor():
    # min g.w + KL(w || p): Gibbs puts ~e^-2000 on p1 and p2, far below the solver's floor of 1e-12
    c = build_constraints(PoolSet(tuple(Pool(f"p{i}", tokens=1e6) for i in range(3))))
    g, p = np.array([0.0, 2000.0, 3000.0]), np.array([0.4, 0.3, 0.3])
    r = minimise_convex(g, np.zeros(0), np.zeros(0), np.zeros((0, 3)), c, np.full(3, 1 / 3), strength=1.0, prior=p)
    true_min = -np.log(np.sum(p * np.exp(-g)))
    assert r.value - true_min <= r.gap + 1e-12


def test_a_group_pinned_at_zero_keeps_its_members_at_zero_under_the_kl(tmp_path):
    path = tmp_path / "pools.toml"
    path.write_text("[pools.web]\n" + "".join(f"[pools.p{i}]\ntokens = 1e6\n" + ('parent = "web"\n' if i < 2 else "")
                                          for i in range(4)))
    pools = load_pools(path)
    c = build_constraints(pools, pins={"web": 0.0})
    g, lam = np.array([0.0, 0.1, 0.2, 0.3]), 0.05
    r = minimise_convex(g, c=c, start=np.array([0, 0, 0.5, 0.5]), strength=lam, prior=np.full(4, 0.25), **NO_EXP)
    outside = np.exp(-g[2:] / lam)
    np.testing.assert_allclose(r.weights, np.r_[0.0, 0.0, outside / outside.sum()], atol=1e-6)
    assert r.converged and r.gap < 1e-9
