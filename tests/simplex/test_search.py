import numpy as np
import pytest
from scipy.optimize import minimize

from mixplan import InfeasibleError, Pool, PoolSet, ValidationError
from mixplan.simplex import (active_constraints, best_distinct, build_constraints, cap_redistribute, dirichlet, project,
                            sample_mixtures, search, structural_points)


def pools(**kw):
    spec = {"a": dict(tokens=100.0), "b": dict(tokens=50.0), "c": dict(tokens=10.0), "d": dict(tokens=1.0)}
    for name, extra in kw.items():
        spec[name] = spec[name] | extra
    return PoolSet(tuple(Pool(name=n, **v) for n, v in spec.items()))


def test_availability_caps_and_reasons():
    c = build_constraints(pools(c={"max_weight": 0.3}), tokens=100.0)
    # cap_i = min(max_weight, max_epochs * tokens_i / D) with the default 4 epochs
    assert np.allclose(c.upper, [1.0, 1.0, 0.3, 0.04])
    assert c.upper_reason == ("", "", "max_weight", "availability")


def test_infeasible_budget_message():
    with pytest.raises(InfeasibleError, match=r"at 1e\+06 target tokens the pools supply at most 644 tokens"):
        build_constraints(pools(), tokens=1e6)


def test_floor_above_availability_cap_is_infeasible():
    with pytest.raises(InfeasibleError, match=r"pool 'd': its floor min_weight 0.1 is above its cap 0.04 set by "
                                              r"availability \(4 epochs of 1 tokens at a budget of 100\)"):
        build_constraints(pools(d={"min_weight": 0.1}), tokens=100.0)


def test_pins():
    c = build_constraints(pools(), pins={"b": 0.25})
    assert c.lower[1] == c.upper[1] == 0.25
    with pytest.raises(InfeasibleError, match=r"pool 'd' is pinned at 0.5 but its availability cap is 0.04"):
        build_constraints(pools(), tokens=100.0, pins={"d": 0.5})
    with pytest.raises(ValidationError, match=r"pinned pool 'zz' is not in the manifest"):
        build_constraints(pools(), pins={"zz": 0.1})
    with pytest.raises(InfeasibleError, match=r"floors and pins add up to 1.2 > 1"):
        build_constraints(pools(), pins={"a": 0.6, "b": 0.6})


def test_project_matches_a_generic_solver():
    rng = np.random.default_rng(0)
    lo, hi = np.array([0.0, 0.1, 0.0, 0.05]), np.array([0.6, 0.5, 0.3, 0.2])
    V = rng.normal(scale=0.7, size=(20, 4))
    W = project(V, lo, hi)
    assert np.allclose(W.sum(axis=1), 1, atol=1e-12)
    assert np.all(W >= lo - 1e-12) and np.all(W <= hi + 1e-12)
    for v, w in zip(V, W):
        ref = minimize(lambda x: np.sum((x - v) ** 2), np.full(4, 0.25), method="SLSQP", bounds=list(zip(lo, hi)),
                       constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1}], options={"ftol": 1e-14}).x
        assert np.allclose(w, ref, atol=1e-6)


def test_cap_redistribute_is_exact_in_one_pass():
    lo, hi = np.zeros(4), np.array([0.2, 0.3, 1.0, 1.0])
    W = np.array([[0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]])
    R = cap_redistribute(W, lo, hi)
    assert np.allclose(R.sum(axis=1), 1) and np.all(R <= hi + 1e-12)
    assert R[0, 0] == pytest.approx(0.2) and R[1, 0] == pytest.approx(0.2)


def test_dirichlet_tiny_concentrations_never_nan():
    rng = np.random.default_rng(0)
    W = dirichlet(np.full((5000, 17), 1e-3), rng)
    assert np.isfinite(W).all() and np.allclose(W.sum(axis=1), 1)
    assert (W.max(axis=1) > 0.99).mean() > 0.9  # near one-hot, as expected


def test_floors_on_tiny_pools_hold_without_rejection():
    # RegMix issue #10: a floor on a pool whose prior is ~0.1% made rejection sampling accept nothing.
    names = [f"p{i}" for i in range(17)]
    toks = np.r_[1000.0 * np.ones(16), 1.0]
    ps = PoolSet(tuple(Pool(n, tokens=t, min_weight=0.01 if n == "p16" else 0.0) for n, t in zip(names, toks)))
    c = build_constraints(ps)
    W = sample_mixtures(10_000, ps.prior, c, np.random.default_rng(0))
    assert c.check(W).all()
    assert (W[:, 16] >= 0.01 - 1e-12).all()
    assert len(W) == 10_000


def test_samples_respect_caps_and_cover_the_edges():
    c = build_constraints(pools(a={"max_weight": 0.5}, b={"min_weight": 0.1}), tokens=100.0)
    W = sample_mixtures(20_000, np.full(4, 0.25), c, np.random.default_rng(1))
    assert c.check(W).all()
    assert W[:, 0].max() > 0.49  # the cap is reached, not just approached
    S = structural_points(c)
    assert c.check(S).all() and len(S) == 4 + 6


def test_search_finds_known_optimum():
    rng = np.random.default_rng(3)
    target = np.array([0.5, 0.3, 0.15, 0.05])
    A = np.diag([1.0, 2.0, 3.0, 4.0])

    def score(W, fast):
        D = W - target
        return np.einsum("ni,ij,nj->n", D, A, D)

    c = build_constraints(pools())
    r = search(score, c, np.full(4, 0.25), seed=0, n_candidates=5000)
    assert np.abs(r.weights - target).max() < 0.02
    assert r.score <= r.topk_score <= r.best_candidate_score + 1.0  # refinement never makes it worse
    # With a binding cap, the optimum moves to the cap and the constraint is reported active.
    c2 = build_constraints(pools(a={"max_weight": 0.4}))
    r2 = search(score, c2, np.full(4, 0.25), seed=0, n_candidates=5000)
    assert r2.weights[0] == pytest.approx(0.4, abs=1e-6)
    assert active_constraints(r2.weights, c2) == {"a": "cap (max_weight)"}
    assert c2.check(r2.candidates).all()


def test_search_is_deterministic():
    c = build_constraints(pools())
    score = lambda W, fast: (W ** 2).sum(axis=1)  # noqa: E731
    a = search(score, c, np.full(4, 0.25), seed=5, n_candidates=2000)
    b = search(score, c, np.full(4, 0.25), seed=5, n_candidates=2000)
    assert np.array_equal(a.weights, b.weights) and np.array_equal(a.candidates, b.candidates)


def test_structural_points_scale_with_the_pools():
    many = PoolSet(tuple(Pool(name=f"p{i}", tokens=1.0) for i in range(300)))
    c = build_constraints(many)
    S = structural_points(c)
    from mixplan.simplex.sampling import MAX_EDGES

    assert len(S) == 300 + MAX_EDGES and c.check(S).all()
    assert np.array_equal(S[:300], np.eye(300))  # every vertex, then a seeded choice of edge mid-points
    mids = S[300:]
    assert np.all((mids == 0.5).sum(axis=1) == 2) and len(np.unique(mids, axis=0)) == MAX_EDGES
    assert np.array_equal(structural_points(c), S)  # deterministic
    few = build_constraints(pools())
    assert len(structural_points(few)) == 4 + 6


def test_projection_keeps_feasible_rows_and_projects_the_rest():
    c = build_constraints(pools(a={"max_weight": 0.5}))
    V = np.array([[0.25, 0.25, 0.25, 0.25], [0.9, 0.1, 0.0, 0.0], [0.3, 0.3, 0.3, 0.3]])
    W = project(V, c.lower, c.upper)
    assert np.array_equal(W[0], V[0]) and c.check(W).all()
    assert np.allclose(W[1:], np.vstack([project(V[i:i + 1], c.lower, c.upper) for i in (1, 2)]), atol=1e-12)


def test_best_distinct_keeps_one_copy_of_a_mixture_given_twice():
    w = np.array([0.5, 0.3, 0.2])
    C = np.array([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.3, 0.3, 0.4]])
    rows = best_distinct(w, w.copy(), C, np.array([0.0, 1.0, 2.0]), 3)
    assert rows.shape == (3, 3) and np.array_equal(rows[0], w)
    assert np.array_equal(rows[1], C[1]) and np.array_equal(rows[2], C[2])  # C[0] is w itself
