"""QQT laws (laws.md section 1) against the authors' numbers (anchors) and against data sampled from the law."""

import numpy as np
import pandas as pd
import pytest

from mixplan import ValidationError
from mixplan.laws.fitting import grid_points, fit_law
from mixplan.laws.qqt import (QQT_NORMALIZER, QQT_OBJECTIVES, QQT_PUBLISHED, qqt_best_union, qqt_decayed_utility,
                              qqt_effective_data_error, qqt_effective_samples, qqt_error, qqt_law, qqt_union_error)

S = 12_800_000  # one T-MARS decile of DataComp-medium
UTIL, DATA = QQT_PUBLISHED["tmars_imagenet1k_utility"], QQT_PUBLISHED["tmars_imagenet1k_data"]
TOP10 = UTIL["pools"]["tmars_top0to10p"]
CURVE = {"effective_utility": qqt_error, "effective_data": qqt_effective_data_error}


def _top(fit: dict, k: int) -> tuple[list, list, list]:
    pools = sorted(fit["pools"].values(), key=lambda p: p["b"])[:k]
    return [p["a"] for p in pools], [p["b"] for p in pools], [p["tau"] for p in pools]


# ---------------------------------------------------------------------------------------------------------------
# Anchors: the authors' code at cf5ced1
# ---------------------------------------------------------------------------------------------------------------

def test_published_constants_are_the_parameter_file(anchors):
    ref = pd.read_csv(anchors / "qqt" / "qqt_fitted_params.csv")
    assert len(ref) == 10
    for row in ref.itertuples():
        fit = QQT_PUBLISHED[row.fit_id]
        pool = (fit["pools"] | fit["control"])[row.pool_key]
        assert fit["objective"] == row.objective and fit["pool_size"] == row.pool_size_samples
        assert (pool["a"], pool["b"], pool["tau"]) == (row.a, row.b, row.tau)  # full precision, exactly
        assert fit["a"] == row.a == row.best_a and fit["best_sse"] == row.fit_best_loss
        assert fit["normalizer"] == row.normalizer == QQT_NORMALIZER and row.base == 0.5
        if row.objective == "effective_utility":
            assert fit["d"] == row.d
        else:  # not stored; the driver's default --d 0.1
            assert np.isnan(row.d) and fit["d"] == 0.1
    assert list(UTIL["control"]) == list(DATA["control"]) == ["tmars_top0to40p_random25p"]


def test_repo_estimates_all_rows(anchors):
    # 2 fits x 8 budgets (32M-6.4B) x top10/20/30/40 x tau rescaled or not, from objective.py.
    ref = pd.read_csv(anchors / "qqt" / "qqt_repo_estimates.csv")
    assert len(ref) == 128 and ref["in_repo_printout"].sum() == 32
    worst = 0.0
    for (fit_id, k, scaled), rows in ref.groupby(["fit_id", "n_buckets", "tau_scaled_by_n_buckets"]):
        fit = QQT_PUBLISHED[fit_id]
        assert (rows["objective"] == fit["objective"]).all() and (rows["pool_samples"] == k * S).all()
        y = qqt_union_error(rows["samples_seen"].to_numpy(), S, *_top(fit, k), rows["d"].iloc[0],
                            objective=fit["objective"], tau_scale_with_pool_count=bool(scaled))
        worst = max(worst, float(np.max(np.abs(y / rows["est_error"].to_numpy() - 1))))
        assert np.allclose(100 * (1 - y), rows["est_acc_pct"], rtol=1e-12, atol=0)
    assert worst < 1e-12, worst  # measured 2.1e-15


def test_repo_printout_table():
    # laws.md 1.8: what estimate_best_pool.py prints (accuracy %, 2 decimals), utility and effective-data fits.
    budgets = [32e6, 64e6, 128e6, 640e6]
    printed = {"effective_utility": [[18.25, 15.84, 13.42, 11.68], [24.62, 23.30, 20.40, 17.99],
                                     [28.73, 29.60, 26.77, 24.13], [31.18, 38.55, 37.56, 35.14]],
               "effective_data": [[18.25, 17.14, 15.98, 13.91], [24.58, 24.42, 23.23, 20.83],
                                  [28.63, 30.53, 29.55, 26.94], [30.77, 39.02, 40.09, 37.92]]}
    for fit in (UTIL, DATA):
        res = qqt_best_union(budgets, fit["pools"], pool_size=S, d=fit["d"], objective=fit["objective"])
        assert np.round(100 * (1 - res.errors), 2).tolist() == printed[fit["objective"]]


def test_single_pool_curves(anchors):
    # 2 fits x 5 pools x 0.5..50 epochs of a 12.8M pool, from func_effective_utility / func_effective_data.
    ref = pd.read_csv(anchors / "qqt" / "qqt_single_pool_curves.csv")
    assert len(ref) == 110
    worst = 0.0
    for _, rows in ref.groupby(["fit_id", "pool_key"]):
        r = rows.iloc[0]
        y = CURVE[r["objective"]](rows["samples_seen"].to_numpy(), S, r["a"], r["b"], r["tau"], r["d"])
        worst = max(worst, float(np.max(np.abs(y / rows["est_error"].to_numpy() - 1))))
    assert worst < 1e-12, worst  # measured 1.5e-16
    # laws.md 1.4: half a pass of the effective-data top-10% curve is above 1.
    assert qqt_effective_data_error(6.4e6, S, 0.022, DATA["pools"]["tmars_top0to10p"]["b"],
                                    DATA["pools"]["tmars_top0to10p"]["tau"], 0.1) == pytest.approx(1.0395367859590474,
                                                                                                   rel=1e-14)


@pytest.mark.parametrize("fit_id", ["tmars_imagenet1k_utility", "tmars_imagenet1k_data"])
@pytest.mark.parametrize("scaled", [True, False])
def test_best_pool_regimes(anchors, fit_id, scaled):
    ref = pd.read_csv(anchors / "qqt" / "qqt_best_pool_regimes.csv")
    ref = ref[(ref["fit_id"] == fit_id) & (ref["tau_scaled_by_n_buckets"] == scaled)]
    fit = QQT_PUBLISHED[fit_id]
    grid = np.logspace(np.log10(2e7), np.log10(1e10), 400)
    res = qqt_best_union(grid, fit["pools"], pool_size=S, d=fit["d"], objective=fit["objective"],
                         tau_scale_with_pool_count=scaled)
    got = [(f"top{10 * k}", k, int(lo), int(hi)) for k, lo, hi in res.regimes()]
    want = list(ref[["best_pool", "n_buckets", "from_samples_seen", "to_samples_seen"]].itertuples(index=False,
                                                                                                    name=None))
    assert got == want
    assert [int(c[0]) for c in res.crossovers] == ref["from_samples_seen"].tolist()[1:]
    assert res.order == tuple(fit["pools"])  # the deciles are already most useful first


def test_top10_plateau():
    # laws.md 1.8 [re-computed]: the utility-fit top-10% curve flattens at 0.6881.
    y = qqt_error([1e10, 1e11], S, 0.025, TOP10["b"], TOP10["tau"], 0.1)
    assert np.round(y, 4).tolist() == [0.6881, 0.6881]


# ---------------------------------------------------------------------------------------------------------------
# The formulas and their quirks (laws.md 1.3-1.6)
# ---------------------------------------------------------------------------------------------------------------

def test_decay_and_quirks_of_the_single_pool_curve():
    a, b, tau, d, Z = 0.025, -0.16, 6.7272727272727275, 0.1, QQT_NORMALIZER
    assert qqt_decayed_utility(b, tau, 1) == b
    assert qqt_decayed_utility(b, tau, 1 + tau) == pytest.approx(b / 2, rel=1e-15)
    assert np.allclose(qqt_decayed_utility(b, tau, [1, 2, 3]), b * 0.5 ** (np.arange(3) / tau), rtol=1e-15)
    # First pass: (a n / Z)^b + d, a inside the power.
    n = np.array([1e6, 6.4e6, S - 1])
    assert np.allclose(qqt_error(n, S, a, b, tau, d), (a * n / Z) ** b + d, rtol=1e-14)
    assert np.allclose(qqt_effective_data_error(n, S, a, b, tau, d), (a * n / Z) ** b + d, rtol=1e-14)
    # d is added before the product; the loop reaches e = K at exact multiples (last factor 1).
    b1, b2 = b * 0.5 ** (1 / tau), b * 0.5 ** (2 / tau)
    first = (a * S / Z) ** b + d
    assert qqt_error(2 * S, S, a, b, tau, d) == pytest.approx(first * 2.0 ** b1, rel=1e-14)
    assert qqt_error(3 * S, S, a, b, tau, d) == pytest.approx(first * 2.0 ** b1 * 1.5 ** b2, rel=1e-14)
    assert qqt_error(2.5 * S, S, a, b, tau, d) == pytest.approx(first * 2.0 ** b1 * 1.25 ** b2, rel=1e-14)
    assert qqt_error(3 * S, S, a, b, tau, d) == pytest.approx(qqt_error(3 * S - 1e-3, S, a, b, tau, d), rel=1e-10)
    # Effective data: pass e counts 0.5^(e/tau) per sample.
    assert qqt_effective_samples(2.5 * S, S, a, tau) == pytest.approx(
        a * S / Z * (1 + 0.5 ** (1 / tau) + 0.5 * 0.5 ** (2 / tau)), rel=1e-14)
    # Vectorised over budgets = one budget at a time.
    grid = np.geomspace(1e6, 3e9, 37)
    for f in CURVE.values():
        assert np.allclose(f(grid, S, a, b, tau, d), [float(f(x, S, a, b, tau, d)) for x in grid], rtol=1e-14, atol=0)


def test_unions_of_one_pool_are_the_single_pool_curves():
    grid = np.geomspace(1e6, 5e9, 50)
    for fit in (UTIL, DATA):
        p = fit["pools"]["tmars_top20to30p"]
        single = CURVE[fit["objective"]](grid, S, p["a"], p["b"], p["tau"], fit["d"])
        for scaled in (True, False):
            union = qqt_union_error(grid, S, p["a"], [p["b"]], [p["tau"]], fit["d"], objective=fit["objective"],
                                    tau_scale_with_pool_count=scaled)
            assert np.allclose(union, single, rtol=1e-12, atol=0)


def test_union_averages_utilities_and_the_tau_switch():
    a, b, tau, d = 0.025, np.array([-0.16, -0.1]), np.array([2.0, 5.0]), 0.1
    n = 3 * 2 * S  # three passes over the union of two pools
    for scaled, factor in ((True, 2), (False, 1)):
        beff = [np.mean(b * 0.5 ** (e / (tau * factor))) for e in range(4)]
        want = (d + (a * 2 * S / QQT_NORMALIZER) ** beff[0]) * 2.0 ** beff[1] * 1.5 ** beff[2]
        got = qqt_union_error(n, S, [a, a], b, tau, d, tau_scale_with_pool_count=scaled)
        assert got == pytest.approx(want, rel=1e-14)
    # Effective data: delta-weighted utility, discounted growth, d at the end.
    delta = [0.5 ** (e / (2 * tau)) for e in range(3)]
    beff = [np.sum(b * de) / np.sum(de) for de in delta]
    N = np.cumsum([np.mean(de) for de in delta]) * a * 2 * S / QQT_NORMALIZER
    want = N[0] ** beff[0] * (N[1] / N[0]) ** beff[1] * (N[2] / N[1]) ** beff[2] + d
    assert qqt_union_error(n, S, a, b, tau, d, objective="effective_data") == pytest.approx(want, rel=1e-14)


def test_best_union_reports_runner_up_margin_and_crossovers():
    pools = {"low": {"a": 0.025, "b": -0.085, "tau": 2.27}, "high": {"a": 0.025, "b": -0.16, "tau": 6.73},
             "mid": {"a": 0.025, "b": -0.125, "tau": 8.55}}
    grid = np.geomspace(2e7, 1e10, 60)
    res = qqt_best_union(grid, pools, pool_size=S, d=0.1)
    assert res.order == ("high", "mid", "low") and res.union(2) == ("high", "mid")
    assert res.errors.shape == (60, 3) and set(res.best) <= {1, 2, 3} and (res.runner_up != res.best).all()
    rows = np.arange(60)
    assert np.array_equal(res.errors[rows, res.best - 1], res.errors.min(axis=1))
    assert np.allclose(res.margin, res.errors[rows, res.runner_up - 1] - res.errors.min(axis=1))
    assert (res.margin >= 0).all()
    assert res.best[0] == 1 and res.best[-1] > 1 and len(res.crossovers) >= 1
    for budget, before, after in res.crossovers:
        i = int(np.flatnonzero(grid == budget)[0])
        assert (res.best[i - 1], res.best[i]) == (before, after)
    one = qqt_best_union(1e8, {"only": pools["mid"]}, pool_size=S, d=0.1)
    assert one.best.tolist() == [1] and one.runner_up.tolist() == [0] and np.isnan(one.margin).all()
    assert not one.crossovers and one.regimes() == [(1, 1e8, 1e8)]


# ---------------------------------------------------------------------------------------------------------------
# Fitting
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("objective", QQT_OBJECTIVES)
def test_law_log_predict_is_the_curve(objective):
    rng = np.random.default_rng(0)
    pool = rng.uniform(1e6, 2e7, 25)
    n = pool * np.r_[1.0, 2.0, 5.0, rng.uniform(0.3, 15, 22)]
    data = {"tokens": n, "unique_tokens": pool}
    law = qqt_law(objective)
    assert law.theta_names == ("log_a", "log_neg_b", "log_tau", "d") and law.vectorized and not law.fixed
    grid = grid_points(law)[:, ::29]
    named = [law.named(g) for g in grid.T]
    block = law.log_predict(grid, {k: v[:, None] for k, v in data.items()})
    want = np.column_stack([np.log(CURVE[objective](n, pool, **p)) for p in named])
    assert block.shape == want.shape and np.allclose(block, want, rtol=0, atol=1e-13)
    assert np.allclose(law.log_predict(grid[:, 3], data), want[:, 3], rtol=0, atol=1e-13)
    assert named[3] == pytest.approx({"a": np.exp(grid[0, 3]), "b": -np.exp(grid[1, 3]), "tau": np.exp(grid[2, 3]),
                                      "d": grid[3, 3]})
    fixed = qqt_law(objective, a=0.02, d=0.1)
    assert fixed.theta_names == ("log_neg_b", "log_tau") and fixed.fixed == ("a", "d")
    theta = np.log([0.2, 3.0])
    assert fixed.named(theta) == pytest.approx({"a": 0.02, "b": -0.2, "tau": 3.0, "d": 0.1})
    assert np.allclose(fixed.log_predict(theta, data), np.log(CURVE[objective](n, pool, 0.02, -0.2, 3.0, 0.1)),
                       rtol=0, atol=1e-13)
    only_tau = qqt_law(objective, a=0.02, b=-0.2, d=0.1)  # b fixed stays b
    assert np.allclose(only_tau.log_predict(np.log([3.0]), data), fixed.log_predict(theta, data), rtol=0, atol=1e-15)


def test_noiseless_fit_of_all_four_parameters():
    # Runs inside the first pass are needed: from n >= S on, a and d enter only through (a S / Z)^b + d.
    n = np.repeat(np.array([0.25, 0.5, 1, 2, 4, 6, 8, 10, 16]) * S, 2)
    y = qqt_error(n, S, 0.025, -0.125, 8.545454545454547, 0.1)
    fit = fit_law(qqt_law(), {"tokens": n, "unique_tokens": np.full(n.size, S)}, y, n_bootstrap=0, n_starts=5)
    assert fit.params == pytest.approx({"a": 0.025, "b": -0.125, "tau": 8.545454545454547, "d": 0.1}, rel=2e-3)


# Issue 4: 1% noise, >= 90% of 50 seeded trials. Measured when written: b 46, tau 46 of 50 (both at once 46) with
# 80 bootstrap refits; 45, 45 (44) with 40. At 2% noise: 90 of 100 trials with 40 refits, 94 of 100 with 200; with
# one run per epoch instead of 4 the tau intervals reach the bound (median width > 1000 passes).
TRIALS, N_BOOTSTRAP, HITS, NOISE = 50, 80, 45, 0.01


@pytest.mark.slow
def test_fit_of_b_and_tau_recovers_them_inside_intervals():
    # The authors' design: 2, 4, 6, 8, 10 epochs of a 12.8M pool, here 4 noisy runs per point (1% multiplicative
    # noise); a and d fixed as the authors share them. The top-10% utility fit is the truth.
    truth = {"b": TOP10["b"], "tau": TOP10["tau"]}
    law = qqt_law(a=0.025, d=0.1)
    n = np.repeat(np.array([2, 4, 6, 8, 10]) * S, 4)
    hits, b_hat, tau_hat = dict.fromkeys(truth, 0), [], []
    for seed in range(TRIALS):
        rng = np.random.default_rng(seed)
        y = qqt_error(n, S, 0.025, truth["b"], truth["tau"], 0.1) * (1 + NOISE * rng.normal(size=n.size))
        fit = fit_law(law, {"tokens": n, "unique_tokens": np.full(n.size, S)}, y, n_bootstrap=N_BOOTSTRAP,
                      n_starts=1, seed=seed)
        for k, v in truth.items():
            hits[k] += fit.intervals[k][0] <= v <= fit.intervals[k][1]
        b_hat.append(fit.params["b"])
        tau_hat.append(fit.params["tau"])
    assert abs(np.mean(b_hat) / truth["b"] - 1) < 0.03 and np.std(b_hat) < 0.015  # b to ~5% per fit
    assert 5 < np.median(tau_hat) < 9  # tau only roughly: the 2-10 epoch design pins it weakly
    assert min(hits.values()) >= HITS, hits


# ---------------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------------

def test_clear_errors():
    a, b, tau = 0.025, -0.16, 6.7
    with pytest.raises(ValidationError, match=r"samples seen n: 0.0 must be > 0 .* pass budgets > 0"):
        qqt_error(0, S, a, b, tau, 0.1)
    with pytest.raises(ValidationError, match=r"samples seen n: -1.0 \(element 1\) must be > 0"):
        qqt_effective_data_error([1e7, -1], S, a, b, tau, 0.1)
    with pytest.raises(ValidationError, match=r"samples seen n: 0.0 \(element 0\)"):
        qqt_best_union([0, 1e8], UTIL["pools"], pool_size=S, d=0.1)
    with pytest.raises(ValidationError, match=r"pool_size: 0.0 must be > 0 .* unique samples of the pool"):
        qqt_error(1e8, 0, a, b, tau, 0.1)
    with pytest.raises(ValidationError, match=r"pool_size: -5.0 must be > 0"):
        qqt_union_error(1e8, -5, a, [b], [tau], 0.1)
    with pytest.raises(ValidationError, match=r"tau: 0.0 must be > 0 .* half-life .* pass tau > 0"):
        qqt_error(1e8, S, a, b, 0, 0.1)
    with pytest.raises(ValidationError, match=r"tau: -1.0 \(element 1\) must be > 0"):
        qqt_union_error(1e8, S, a, [b, b], [tau, -1], 0.1)
    with pytest.raises(ValidationError, match=r"tau: -2.0"):
        qqt_decayed_utility(b, -2, 1)
    with pytest.raises(ValidationError, match=r"tau: 0.0"):
        qqt_law(tau=0)
    with pytest.raises(ValidationError, match=r"tau: 0.0"):
        qqt_best_union(1e8, {"x": {"a": a, "b": b, "tau": 0}}, pool_size=S, d=0.1)
    with pytest.raises(ValidationError, match=r"pool list is empty; pass a mapping"):
        qqt_best_union(1e8, {}, pool_size=S, d=0.1)
    with pytest.raises(ValidationError, match=r"pools must map pool names to .* got list"):
        qqt_best_union(1e8, [TOP10], pool_size=S, d=0.1)
    with pytest.raises(ValidationError, match=r"a union needs at least one pool"):
        qqt_union_error(1e8, S, a, [], [], 0.1)
    with pytest.raises(ValidationError, match=r"must share a \(got a = \[0.025, 0.022\]\).*Refit the pools with one"):
        qqt_union_error(1e8, S, [0.025, 0.022], [b, b], [tau, tau], 0.1)
    mixed = {"x": {"a": 0.025, "b": b, "tau": tau}, "y": {"a": 0.022, "b": -0.1, "tau": tau}}
    with pytest.raises(ValidationError, match=r"must share a"):
        qqt_best_union(1e9, mixed, pool_size=S, d=0.1)
    with pytest.raises(ValidationError, match=r"one b and one tau per pool"):
        qqt_union_error(1e8, S, a, [b, b], [tau], 0.1)
    with pytest.raises(ValidationError, match=r"every pool needs numbers 'a', 'b' and 'tau'"):
        qqt_best_union(1e8, {"x": {"a": a, "b": b}}, pool_size=S, d=0.1)
    with pytest.raises(ValidationError, match=r"objective 'utility' is not known; use one of"):
        qqt_union_error(1e8, S, a, [b], [tau], 0.1, objective="utility")
    with pytest.raises(ValidationError, match=r"strictly increasing"):
        qqt_best_union([1e9, 1e8], UTIL["pools"], pool_size=S, d=0.1)
    with pytest.raises(ValidationError, match=r"a: 0.0 must be > 0"):
        qqt_error(1e8, S, 0, b, tau, 0.1)
    with pytest.raises(ValidationError, match=r"nothing to fit"):
        qqt_law(a=a, b=b, tau=tau, d=0.1)
    with pytest.raises(ValidationError, match=r"passes over a pool .* check the units"):
        qqt_error(1e15, 1, a, b, tau, 0.1)
