"""The repetition-aware objective (mixplan.mixture.repetition) and its place in the plan."""

import json

import numpy as np
import pytest

from mixplan import ValidationError, fit_model, load_pools, make_plan, parse_objective, read_runs
from mixplan.mixture.repetition import RepetitionModel, effective_mixture, fit_repetition


def test_without_repetition_the_objective_is_the_proxy_prediction():
    rng = np.random.default_rng(0)
    W = rng.dirichlet(np.ones(4), 50)
    available = np.array([1e6, 2e6, 3e6, 4e6])
    f = lambda V: V @ np.array([1.0, 2.0, 3.0, 4.0]) + np.sin(V[:, 0])  # noqa: E731
    rep = RepetitionModel(r_star=3.0, gamma=0.4)
    # at 1e6 tokens no pool can be read more than once
    assert np.array_equal(rep.objective(f, W, 1e6, available), f(W))


def test_more_epochs_never_add_effective_data():
    available = np.array([1e5, 1e7])
    shares = np.linspace(0.01, 0.99, 60)
    W = np.column_stack([shares, 1 - shares])
    for r_star in (0.5, 5.0, 15.4, 200.0):
        Wt, frac = effective_mixture(W, 4e6, available, r_star)
        eff_small = Wt[:, 0] * frac * 4e6
        drawn = W[:, 0] * 4e6
        assert np.all(np.diff(eff_small) >= -1e-6)  # more drawn, never less effective
        assert np.all(np.diff(eff_small / drawn) <= 1e-12)  # ... but each token is worth less
        assert np.all(eff_small <= drawn + 1e-6) and np.all(frac <= 1 + 1e-12)


def test_a_synthetic_pool_is_valued_by_its_own_law_relative_to_the_proxy_budget():
    """A pool with a rectified law (D_l, beta): at the proxy budget the objective is the proxy prediction
    exactly; at 100x its tokens count as V(wT)/V(w T_p) * T_p/T of what they did (value_ratio), never
    more than they were, so the optimum moves weight off it as the budget grows."""
    from mixplan.laws.synthetic import value_ratio

    available = np.array([1e12, 1e12, 1e12])  # nothing repeats: only the law discounts
    law = np.array([[np.nan, np.nan], [np.nan, np.nan], [2e5, 0.5]])
    rng = np.random.default_rng(1)
    W = rng.dirichlet(np.ones(3), 40)
    f = lambda V: 3.0 - V @ np.array([0.5, 0.6, 0.9])  # noqa: E731 - the synthetic pool looks best at proxy scale
    Tp = 1e6
    rep = RepetitionModel(r_star=15.0, gamma=0.2, proxy_tokens=Tp, synthetic=law)
    assert np.allclose(rep.objective(f, W, Tp, available), f(W), rtol=0, atol=1e-12)
    T = 100 * Tp
    Wt, frac = rep.effective(W, T, available)
    eff = W * T
    eff[:, 2] *= value_ratio(W[:, 2] * T, 2e5, 0.5, W[:, 2] * Tp)
    assert np.allclose(Wt, eff / eff.sum(axis=1, keepdims=True)) and np.allclose(frac, eff.sum(axis=1) / T)
    assert np.all(Wt[:, 2] <= W[:, 2] + 1e-12) and np.all(frac <= 1 + 1e-12)
    # without its law the synthetic pool wins everything at 100x; with it, the plateaued pool loses its lead
    shares = np.linspace(0.0, 1.0, 101)
    grid = np.column_stack([0.5 * (1 - shares), 0.5 * (1 - shares), shares])
    blind = RepetitionModel(r_star=15.0, gamma=0.2, proxy_tokens=Tp).objective(f, grid, T, available)
    priced = rep.objective(f, grid, T, available)
    assert shares[np.argmin(blind)] == 1.0 and shares[np.argmin(priced)] <= 0.5
    # A synthetic pool small enough to repeat at the proxy budget: its law still changes nothing there (it is
    # valued against what the proxy runs made of it, repetition included), and discounts it further above.
    small = np.array([1e12, 1e12, 2e5])
    without = RepetitionModel(r_star=15.0, gamma=0.2, proxy_tokens=Tp)
    assert (W[:, 2] * Tp > small[2]).any()
    assert np.allclose(rep.objective(f, W, Tp, small), without.objective(f, W, Tp, small), rtol=0, atol=1e-12)
    assert np.all(rep.effective(W, T, small)[0][:, 2] <= without.effective(W, T, small)[0][:, 2] + 1e-12)
    # A model given rather than fitted knows no proxy budget: it needs one to value the pool by its law.
    with pytest.raises(ValidationError, match="relative to the proxy runs' budget"):
        RepetitionModel(r_star=15.0, gamma=0.0, synthetic=law).effective(W, T, available)
    given = RepetitionModel(r_star=15.0, gamma=0.0, synthetic=law, law_reference=Tp)
    assert given.at_scale(np.zeros(3), T) is None  # the reference does not make the shift known
    assert np.allclose(given.effective(W, T, available)[0], rep.effective(W, T, available)[0])


def test_fit_recovers_a_known_repetition_model():
    rng = np.random.default_rng(1)
    available = np.array([2e5, 1e6, 5e6])
    f = lambda V: 3.0 - 0.5 * V[:, 0] - 0.2 * np.log(V[:, 1] + 0.05) + 0.3 * V[:, 2] ** 2  # noqa: E731
    truth = RepetitionModel(r_star=4.0, gamma=0.15)
    W = rng.dirichlet(np.ones(3), 60)
    T = np.repeat([1e6, 4e6], 30)
    y = np.empty(60)
    for t in (1e6, 4e6):
        i = T == t
        y[i] = truth.objective(f, W[i], t, available) - 0.15 * np.log(t / 1e6) + 0.002 * rng.normal(size=i.sum())
    rep = fit_repetition(f, W, T, y, available, 1e6, n_bootstrap=30, seed=0)
    assert rep.r_star == pytest.approx(4.0, rel=0.3) and rep.gamma == pytest.approx(0.15, rel=0.1)
    assert rep.intervals["r_star"][0] < 4.0 < rep.intervals["r_star"][1]
    assert rep.rmse < rep.rmse_blind


def test_fit_refuses_runs_that_cannot_measure_repetition():
    W = np.full((10, 2), 0.5)
    f = lambda V: V[:, 0]  # noqa: E731
    with pytest.raises(ValidationError, match="needs runs at two budgets"):
        fit_repetition(f, W, np.full(10, 1e6), np.ones(10), np.array([1e9, 1e9]), 1e6)
    with pytest.raises(ValidationError, match="no run repeats any pool"):
        fit_repetition(f, W, np.r_[np.full(5, 1e6), np.full(5, 2e6)], np.ones(10), np.array([1e9, 1e9]), 1e6)


def test_plan_shows_the_three_optima_and_keeps_floors_and_caps(synthetic, tmp_path):
    study, path, _ = synthetic
    manifest = tmp_path / "pools.toml"
    # p2 is small (it repeats at the budget) and has a floor; p4 has a cap
    manifest.write_text("[pools.p0]\ntokens = 4e6\n[pools.p1]\ntokens = 4e6\n"
                        "[pools.p2]\ntokens = 2e5\nmin_weight = 0.02\n[pools.p3]\ntokens = 4e6\n"
                        "[pools.p4]\ntokens = 4e6\nmax_weight = 0.1\n")
    pools = load_pools(manifest)
    runs = read_runs(path, pools)
    model = fit_model(runs, parse_objective("loss", runs), "gp", seed=0)
    rep = RepetitionModel(r_star=2.0, gamma=0.05)
    for caps in (False, True):
        plan = make_plan(model, pools, tokens=4e6, repetition=rep, combine_caps=caps, n_candidates=3000)
        rec = np.array(list(plan.mixtures["recommended"]["weights"].values()))
        assert {"repetition_blind", "hard_cap", "recommended"} <= set(plan.mixtures)
        assert rec.sum() == pytest.approx(1.0) and rec[2] >= 0.02 - 1e-9 and rec[4] <= 0.1 + 1e-9
        if caps:  # manifest default max_epochs = 4 on the 2e5-token pool: w <= 0.2
            assert rec[2] * 4e6 / 2e5 <= 4 + 1e-6
        at = {n: m["at_budget"]["objective"] for n, m in plan.mixtures.items()}
        if not caps:  # the repetition-aware optimum is best under its own objective
            assert at["recommended"] <= min(at["repetition_blind"], at["hard_cap"]) + 1e-9
        assert plan.to_dict()["repetition"]["r_star"] == 2.0
    blind = plan.mixtures["repetition_blind"]
    assert max(blind["epochs"].values()) > 4  # the blind optimum ignores max_epochs
    assert json.loads(json.dumps(plan.to_dict()))  # JSON-ready


@pytest.mark.slow
def test_plan_cli_repetition_options(synthetic, tmp_path, capsys):
    from mixplan.cli import main

    _, path, manifest = synthetic
    out = tmp_path / "out"
    assert main(["plan", "--runs", str(path), "--pools", str(manifest), "--target", "loss", "--model", "gp",
                 "--tokens", "4e6", "--r-star", "2", "--gamma", "0.05", "--budget-range", "1e5:4e6",
                 "--budget-steps", "3", "--candidates", "2000", "--out", str(out)]) == 0
    assert "repetition-aware objective at 4e+06" in capsys.readouterr().out
    sweep = (out / "budget_sweep.csv").read_text().splitlines()
    assert sweep[0].startswith("tokens,w_p0") and len(sweep) == 4
    for argv, msg in ((["--gamma", "0.1"], "--gamma goes with --r-star"),
                      (["--r-star", "2", "--repetition-runs", str(path)], "not both"),
                      (["--budget-range", "5:1"], "write LO:HI with 0 < LO < HI"),
                      (["--flops", "1e20", "--tokens", "1e6"], "--tokens or as --flops, not both")):
        code = main(["plan", "--runs", str(path), "--pools", str(manifest), "--target", "loss", *argv])
        err = capsys.readouterr().err
        assert code == 2 and msg in err, err


def test_manifest_r_star_overrides_the_model_for_its_pool(tmp_path):
    from mixplan.data.pools import load_pools as load

    (tmp_path / "p.toml").write_text("[pools.a]\ntokens = 1e5\nr_star = 0.5\n[pools.b]\ntokens = 1e5\n")
    pools = load(tmp_path / "p.toml")
    assert np.isnan(pools.r_star[1]) and pools.r_star[0] == 0.5
    rep = RepetitionModel(r_star=50.0, gamma=0.0)
    assert np.array_equal(rep.per_pool(pools.r_star), [0.5, 50.0])
    W = np.array([[0.5, 0.5]])
    Wt, frac = effective_mixture(W, 1e6, pools.tokens, rep.per_pool(pools.r_star))
    assert Wt[0, 0] < 0.5 < Wt[0, 1]  # pool a's repeats are worth less than pool b's
    (tmp_path / "bad.toml").write_text("[pools.a]\ntokens = 1e5\nr_star = -1\n")
    with pytest.raises(ValidationError, match="r_star"):
        load(tmp_path / "bad.toml")


def test_identification_names_the_pools_the_runs_never_repeated_as_often():
    from mixplan.mixture.repetition import identification

    names = ["a", "b", "c"]
    out = identification(names, np.array([20.0, 3.0, 0.5]), np.array([2.0, 2.0, 0.1]))
    assert not out["identified"] and list(out["short_pools"]) == ["a"]  # 3x is within 2 x 2 epochs: priced
    assert "news" not in out["message"] and "a 20x" in out["message"] and "2x" in out["message"]
    assert identification(names, np.array([3.9, 1.0, 1.0]), np.array([2.0, 0.5, 0.5]))["identified"]
    same = identification(names, np.array([1.0, 1.0, 1.0]), np.array([1.0, 1.0, 1.0]), rmse=0.05, rmse_blind=0.05)
    assert not same["identified"] and same["no_better_than_ignoring"] and "no better than ignoring" in same["message"]
    edge = identification(names, np.array([1.0, 1.0, 1.0]), np.array([1.0, 1.0, 1.0]), r_star=1e4)
    assert not edge["identified"] and edge["r_star_at_bound"] and "R* = 1e+04 sits at the end" in edge["message"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_known_truth_worlds_warn_when_the_larger_runs_never_repeat_as_the_plan_does(seed):
    """Issue 11's worlds (8 pools of 20M-2B tokens, proxy runs at 1e8, 32 of them again at 4e8): the plan at
    1e10 reads its most repeated pool far more often than any run did; the plan says so, names the pool and
    withholds the intervals at the budget of every mixture that repeats it that far."""
    import warnings

    from mixplan.data.objective import parse_objective
    from mixplan.exceptions import MixplanWarning
    from mixplan.mixture.plan import make_plan
    from mixplan.mixture.repetition import fit_repetition_runs
    from mixplan.models.mixture_model import fit_model

    t0 = 1e8
    world, pools, runs, more = _budget_world_runs(seed)
    W = runs.weights
    model = fit_model(runs, parse_objective("loss", runs), "ridge", seed=seed)
    rep = fit_repetition_runs(model, runs, more, pools.tokens, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MixplanWarning)
        plan = make_plan(model, pools, tokens=1e10, seed=seed, repetition=rep, n_candidates=3000)
    epochs = plan.mixtures["recommended"]["epochs"]
    most = max(epochs, key=epochs.get)
    reached = dict(zip(world.names, rep.reached))  # over every run: the proxies at 1e8 and the 32 at 4e8
    k = world.names.index(most)
    assert reached[most] == pytest.approx(max((W[:, k] * t0).max(), (W[:32, k] * 4 * t0).max()) / pools.tokens[k])
    ident = plan.identification
    assert epochs[most] > 2 * max(reached[most], 1.0)  # in these worlds the plan repeats beyond every run (20-85x)
    assert not ident["identified"] and most in ident["short_pools"]
    assert any(w.startswith("repetition is not identified") for w in plan.warnings)
    assert plan.mixtures["recommended"]["at_budget"]["lower"] is None
    assert "repetition not identified" in plan.mixtures["recommended"]["at_budget"]["interval_withheld"]
    assert "unknown" in plan.report()  # the at-budget table prints no interval for it
    assert plan.to_dict()["repetition_identification"] == plan.identification


def _budget_world_runs(seed, matched=None):
    """Issue 11's world: 96 proxy runs at 1e8, and 32 runs that show repetition - at 4e8 on the whole pools,
    or repetition-matched for a big run of ``matched`` tokens (1e8 on pools subsampled to 1e8 / matched)."""
    from mixplan.data.pools import Pool, PoolSet
    from mixplan.data.runs import validate_runs
    from mixplan.demo.synthetic import make_budget_world
    from mixplan.mixture.design import design_swarm

    t0 = 1e8
    world = make_budget_world(8, seed)
    pools = PoolSet(tuple(Pool(n, tokens=float(u)) for n, u in zip(world.names, world.unique_tokens)))
    design = design_swarm(pools, 96, seed=seed, tokens=t0).frame
    W = design[[f"w_{p}" for p in world.names]].to_numpy()
    runs = validate_runs(design.assign(tokens=t0, loss=world.measure(W, t0, seed=seed)), pools, source="proxy")
    if matched is None:
        frame = design.iloc[:32].assign(tokens=4 * t0, loss=world.measure(W[:32], 4 * t0, seed=seed + 1))
    else:
        frame = design_swarm(pools, 32, seed=seed + 500, tokens=t0, match_budget=matched, prefix="m").frame
        Wm = frame[[f"w_{p}" for p in world.names]].to_numpy()
        frame = frame.assign(loss=world.measure(Wm, t0, seed=seed + 1, available=world.unique_tokens * t0 / matched))
    return world, pools, runs, validate_runs(frame, pools, source="more")


def test_repetition_matched_runs_identify_r_star_where_larger_runs_do_not():
    """Issue 21 on a known-truth world (R* = 15.39): 32 runs at 1e8 on pools subsampled to 1/100 read the
    pools as often as a run at 1e10 does, so the repetition fit measures R* (within 5%: measured 15.27-15.74
    over 10 worlds), the at-scale law's R* too, and the plan at 1e10 says repetition is identified; the same
    plan from 32 runs at 4e8 does not (its R* falls back or wanders: 10-25)."""
    import warnings

    from mixplan.exceptions import MixplanWarning
    from mixplan.mixture.repetition import fit_repetition_runs
    from mixplan.mixture.scale import fit_at_scale

    world, pools, runs, more = _budget_world_runs(0, matched=1e10)
    assert more.subsampled and not runs.subsampled
    U = more.unique_tokens(pools.tokens)
    assert np.allclose(U, pools.tokens * 1e8 / 1e10, rtol=1e-12)
    epochs = more.weights * 1e8 / U
    assert np.allclose(epochs, more.weights * 1e10 / pools.tokens, rtol=1e-9)  # the big run's epochs, exactly
    model = fit_model(runs, parse_objective("loss", runs), "ridge", seed=0)
    rep = fit_repetition_runs(model, runs, more, pools.tokens, seed=0)
    available = np.vstack([runs.unique_tokens(pools.tokens), U])
    W, T = np.vstack([runs.weights, more.weights]), np.r_[runs.frame["tokens"], more.frame["tokens"]]
    y = np.r_[runs.frame["loss"], more.frame["loss"]]
    scale = fit_at_scale(model, W, T, y, pools.tokens, proxy_tokens=1e8, seed=0, available=available)
    assert scale.fit.params["R_star"] == pytest.approx(world.r_star, rel=0.05)
    assert scale.max_epochs == pytest.approx(epochs.max(axis=0))
    assert list(scale.holdout)  # the matched runs were predicted out of scale (as a budget of 1e10) first
    assert all(h["predicted"] == pytest.approx(1e10) for h in scale.holdout.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MixplanWarning)
        plan = make_plan(model, pools, tokens=1e10, seed=0, repetition=rep, scale=scale, n_candidates=3000)
    assert plan.identification["identified"], plan.identification["message"]
    truth = world.true_loss(np.array(list(plan.mixtures["recommended"]["weights"].values())), 1e10)[0]
    assert truth - world.optimum(1e10)[1] < 1e-4  # true regret of the recommendation at 100x the proxy budget


def test_matched_runs_are_cross_validated_and_an_unchecked_level_is_said(monkeypatch):
    """Repetition-matched runs stand in for the big run: the at-scale model is chosen by 5-fold
    cross-validation over them (the other runs and folds in the fit), measured subsamples that differ a
    little from run to run (+-5% here) are one held-out budget; with no run on the whole pools above the proxy
    budget, nothing checked how the level falls with more fresh data, so the intervals span the level of every
    model within LEVEL_WINDOW of the chosen one's error -- until runs at a larger real budget check it. Here the
    law (the world's own form) predicts the matched runs 40x better than the regressor's models: none is
    plausible beside it; with the window opened wide both are, and the intervals span their levels."""
    from mixplan.mixture import scale as scale_module
    from mixplan.mixture.scale import fit_at_scale

    world, pools, runs, more = _budget_world_runs(0, matched=1e10)
    model = fit_model(runs, parse_objective("loss", runs), "ridge", seed=0)
    jitter = np.random.default_rng(0).uniform(0.95, 1.05, more.weights.shape)
    available = np.vstack([runs.unique_tokens(pools.tokens), more.unique_tokens(pools.tokens) * jitter])
    W, T = np.vstack([runs.weights, more.weights]), np.r_[runs.frame["tokens"], more.frame["tokens"]]
    y = np.r_[runs.frame["loss"], more.frame["loss"]]
    scale = fit_at_scale(model, W, T, y, pools.tokens, proxy_tokens=1e8, seed=0, available=available, n_bootstrap=20)
    assert len(scale.matched) == 1 and scale.matched[0] == pytest.approx(1e10, rel=0.02)
    assert {h["folds"] for h in scale.holdout.values()} == {5}
    assert {h["n"] for h in scale.holdout.values()} == {32}
    assert "cross-validation over the repetition-matched runs" in scale.report()
    h = scale.holdout
    assert scale.chosen == "effective-data law" == min(h, key=lambda n: h[n]["centred_rmse"])
    assert min(v["centred_rmse"] for v in h.values() if v is not h[scale.chosen]) > 20 * h[scale.chosen]["centred_rmse"]
    assert scale.level_models == {} and "level above" not in scale.report()
    monkeypatch.setattr(scale_module, "LEVEL_WINDOW", 1e3)
    scale = fit_at_scale(model, W, T, y, pools.tokens, proxy_tokens=1e8, seed=0, available=available, n_bootstrap=20)
    assert set(scale.level_models) == {"regressor + law change", "repetition-aware regressor"}
    assert "level above 1e+08: no held-out run on the whole pools" in scale.report()
    Q = more.weights[:5]
    for p, mean in zip(scale.predict(Q, 1e10, pools.tokens), scale.predict_mean(Q, 1e10)):
        assert p["prediction"] == pytest.approx(mean)
        assert len(p["evidence"]["level_unchecked"]) == 2
        for other in p["evidence"]["level_unchecked"].values():
            assert p["lower"] < other < p["upper"]
    # 16 proxy mixtures at 4e8 on the whole pools: the level above the proxy budget is held out and checked
    big = world.measure(runs.weights[:16], 4e8, seed=3)
    checked = fit_at_scale(model, np.vstack([W, runs.weights[:16]]), np.r_[T, np.full(16, 4e8)], np.r_[y, big],
                           pools.tokens, proxy_tokens=1e8, seed=0, n_bootstrap=20,
                           available=np.vstack([available, np.broadcast_to(pools.tokens, (16, len(pools)))]))
    assert checked.level_models == {} and "level above" not in checked.report()


def test_subsampled_runs_are_checked_and_never_train_the_regressor(tmp_path):
    from mixplan.mixture.repetition import check_whole_pools

    _, pools, runs, more = _budget_world_runs(1, matched=1e10)
    bad = more.frame.copy()
    bad.loc[3, "unique_tokens_pool2"] = 2 * pools.tokens[2]
    from mixplan.data.runs import validate_runs

    with pytest.raises(ValidationError, match=r"row 4 \(run_id 'm-04'\), column 'unique_tokens_pool2': .* must be in "
                                              r"\(0, .*\(the pool's tokens\)"):
        validate_runs(bad, pools, source="more").unique_tokens(pools.tokens)
    frac = more.frame.drop(columns=[c for c in more.frame if c.startswith("unique_tokens_")])
    only = validate_runs(frac, pools, source="more")  # subsample_fraction alone: every pool at that fraction
    assert np.allclose(only.unique_tokens(pools.tokens), more.unique_tokens(pools.tokens))
    assert "subsample_fraction" not in only.metric_columns and "unique_tokens_pool0" not in more.metric_columns
    with pytest.raises(ValidationError, match="trained on subsamples of the pools"):
        check_whole_pools(more)


def test_bootstrap_refits_profile_the_same_objective_as_the_fit():
    from mixplan.mixture import repetition as rp

    rng = np.random.default_rng(4)
    available = np.array([2e5, 1e6, 5e6])
    f = lambda V: 3.0 - 0.5 * V[:, 0] - 0.2 * np.log(V[:, 1] + 0.05) + 0.3 * V[:, 2] ** 2  # noqa: E731
    W = rng.dirichlet(np.ones(3), 80)
    T = np.repeat([1e6, 3e6, 8e6], [30, 25, 25]).astype(float)
    truth = RepetitionModel(r_star=6.0, gamma=0.1)
    y = truth.objective(f, W, T, available, reference_tokens=1e6) + 0.002 * rng.normal(size=80)
    calls = []
    counted = lambda V: calls.append(len(V)) or f(V)  # noqa: E731
    profile = rp._profile_grid(counted, W, T, available, 1e6)
    assert len(calls) == 1 and calls[0] == rp.PROFILE_GRID * 80  # the regressor is called once
    for idx in (np.arange(80), rng.integers(0, 80, 80)):
        r_star, gamma = rp._profile_fit(*profile, y, idx)
        x = rp._fit_once(f, W[idx], T[idx], y[idx], available, 1e6, np.array([np.log(15.0), 0.0]))
        assert r_star == pytest.approx(float(np.exp(x[0])), rel=0.03) and gamma == pytest.approx(float(x[1]), abs=0.005)
