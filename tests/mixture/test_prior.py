"""Regularisation toward a prior (--prior-strength): the KL term, its place in every search, the choice of
its strength by cross-validated regret, and the CLI option (issue 25, item 2)."""

import json

import numpy as np
import pytest

from mixplan import Pool, PoolSet, ValidationError, make_plan
from mixplan.cli import main
from mixplan.mixture.prior import (DEFAULT_GRID, StrengthCurve, choose_strength, kl_divergence, parse_strength,
                                   prior_penalty)
from mixplan.simplex import build_constraints, search


def _tv(a, b):
    return 0.5 * float(np.abs(np.asarray(a) - np.asarray(b)).sum())


# -- the KL term ----------------------------------------------------------------------------------------------


def test_kl_matches_a_hand_computation_and_zero_weights_cost_nothing():
    p = np.array([0.25, 0.25, 0.5])
    # 0.5 log(0.5/0.25) twice, and 0 log 0 = 0 for the empty third pool
    assert kl_divergence(np.array([0.5, 0.5, 0.0]), p)[0] == pytest.approx(np.log(2), abs=1e-15)
    # 0.2 log(0.2/0.25) + 0.3 log(0.3/0.25) + 0.5 log 1
    assert kl_divergence(np.array([0.2, 0.3, 0.5]), p)[0] == pytest.approx(
        0.2 * np.log(0.8) + 0.3 * np.log(1.2), abs=1e-15)
    assert kl_divergence(p, p)[0] == 0.0
    # a pinned (masked) pool's term is left out: only 0.5 log 2 remains
    assert kl_divergence(np.array([[0.5, 0.5, 0.0]]), p, free=[True, False, True])[0] == pytest.approx(
        0.5 * np.log(2), abs=1e-15)


def test_kl_outside_the_priors_support_is_infinite_and_lambda_zero_is_exactly_zero():
    p = np.array([0.5, 0.5, 0.0])
    assert kl_divergence(np.array([[0.4, 0.4, 0.2], [0.5, 0.5, 0.0]]), p).tolist() == [np.inf, 0.0]
    assert prior_penalty(0.0, p)(np.array([[0.4, 0.4, 0.2]])).tolist() == [0.0]  # no 0 * inf = NaN
    assert prior_penalty(2.0, np.array([0.25, 0.25, 0.5]))(np.array([[0.5, 0.5, 0.0]]))[0] == pytest.approx(
        2 * np.log(2))
    with pytest.raises(ValidationError, match="3 weights but the mixtures have 2"):
        kl_divergence(np.array([[0.5, 0.5]]), np.ones(3) / 3)


@pytest.mark.parametrize("text, value", [("auto", "auto"), ("AUTO", "auto"), ("0", 0.0), ("0.05", 0.05), (1, 1.0)])
def test_parse_strength_accepts_auto_and_numbers_at_least_zero(text, value):
    assert parse_strength(text) == value


@pytest.mark.parametrize("text", ["-0.1", "nan", "inf", "abc", "", True])
def test_parse_strength_refuses_anything_else_in_one_line(text):
    with pytest.raises(ValidationError, match="'auto' or a .*number >= 0") as err:
        parse_strength(text, "plan.toml, key 'prior_strength'")
    assert "\n" not in str(err.value) and "plan.toml" in str(err.value)


# -- the search: known-truth objectives --------------------------------------------------------------------------


PRIOR = np.array([0.4, 0.3, 0.2, 0.1])
FAR = np.array([0.0, 0.05, 0.15, 0.8])  # the score's own minimum, far from the prior


def _quadratic(W, fast=False):
    return ((np.atleast_2d(W) - FAR) ** 2).sum(axis=1)


def test_large_strength_pulls_the_optimum_to_the_prior_and_zero_leaves_it():
    pools = PoolSet(tuple(Pool(f"p{i}", tokens=t) for i, t in enumerate(PRIOR * 1e6)))
    c = build_constraints(pools)
    opts = dict(seed=0, n_candidates=2000, extra=None)
    free = search(_quadratic, c, PRIOR, **opts)
    assert _tv(free.weights, FAR) < 0.02
    same = search(_quadratic, c, PRIOR, penalty=prior_penalty(0.0, PRIOR), **opts)
    np.testing.assert_array_equal(same.weights, free.weights)  # lambda = 0: the same search, bit for bit
    pulled = search(_quadratic, c, PRIOR, penalty=prior_penalty(1e3, PRIOR), **opts)
    assert _tv(pulled.weights, PRIOR) < 0.01, pulled.weights
    # the recorded score is the model's own, not the penalised one
    assert pulled.score == pytest.approx(float(_quadratic(pulled.weights)[0]))


def test_a_linear_score_reaches_the_closed_form_optimum():
    # min a.w + lam KL(w || p) over the simplex: w_i = p_i exp(-a_i / lam) / Z (Gibbs), a convex problem
    a, lam = np.array([0.3, 0.0, -0.2, 0.1]), 0.2
    truth = PRIOR * np.exp(-a / lam)
    truth /= truth.sum()
    pools = PoolSet(tuple(Pool(f"p{i}", tokens=t) for i, t in enumerate(PRIOR * 1e6)))
    r = search(lambda W, fast: np.atleast_2d(W) @ a, build_constraints(pools), PRIOR, seed=0, n_candidates=4000,
               penalty=prior_penalty(lam, PRIOR))
    assert _tv(r.weights, truth) < 0.01, (r.weights, truth)


def test_pins_stay_and_the_free_pools_go_to_the_prior_restricted_to_them():
    pools = PoolSet(tuple(Pool(f"p{i}", tokens=t) for i, t in enumerate(PRIOR * 1e6)))
    c = build_constraints(pools, pins={"p3": 0.5})  # pinned far above its prior of 0.1
    free = ~np.array([False, False, False, True])
    r = search(_quadratic, c, PRIOR, seed=0, n_candidates=2000, penalty=prior_penalty(1e3, PRIOR, free))
    assert r.weights[3] == pytest.approx(0.5, abs=1e-12)
    # I-projection: the free pools keep the prior's proportions, scaled to the 0.5 left
    np.testing.assert_allclose(r.weights[:3], 0.5 * PRIOR[:3] / PRIOR[:3].sum(), atol=0.01)


# -- the plan ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plan_inputs(tmp_path_factory, synthetic_study):
    _, pools, model = synthetic_study(tmp_path_factory.mktemp("prior"), 80, "ridge")
    return pools, model


def test_plan_with_strength_zero_is_the_plan_without_the_option(plan_inputs):
    pools, model = plan_inputs
    base = make_plan(model, pools, seed=0, n_candidates=1000, pins={"p0": 0.1})
    zero = make_plan(model, pools, seed=0, n_candidates=1000, pins={"p0": 0.1}, prior_strength=0.0)
    assert zero.recommended == base.recommended
    assert base.prior is None and "prior_regularisation" not in base.to_dict()
    assert zero.prior["strength"] == 0.0 and zero.prior["source"] == "token share"
    assert zero.prior["pinned_excluded"] == ["p0"]
    assert zero.prior["prior"] == pytest.approx(dict(zip(pools.names, pools.token_share)))


def test_plan_with_a_large_strength_recommends_the_prior(plan_inputs):
    pools, model = plan_inputs
    base = make_plan(model, pools, seed=0, n_candidates=1000)
    plan = make_plan(model, pools, seed=0, n_candidates=1000, prior_strength=100.0)
    rec = [plan.recommended[n] for n in pools.names]
    assert _tv(rec, pools.token_share) < 0.01 < _tv([base.recommended[n] for n in pools.names], pools.token_share)
    kl = plan.prior["kl"]
    assert kl["token_proportional"] == 0.0 and kl["recommended"] < 1e-3
    assert "KL(w || prior)" in plan.report()


def test_a_pool_of_prior_zero(plan_inputs):
    from dataclasses import replace

    pools, model = plan_inputs
    zero = PoolSet(tuple(replace(p, prior=0.0 if i == 1 else 1.0) for i, p in enumerate(pools)))
    plan = make_plan(model, zero, seed=0, n_candidates=500, prior_strength=0.1)
    # the uniform mixture reads the pool of prior 0: its KL is infinite, written as null (plan.json stays valid)
    assert plan.prior["kl"]["uniform"] is None and plan.recommended[pools.names[1]] == 0.0
    json.dumps(plan.to_dict(), allow_nan=False)
    assert "uniform infinite (weight on a pool of prior 0)" in plan.report()
    assert "the manifest's per-pool prior" in plan.report()
    floored = PoolSet(tuple(replace(p, min_weight=0.05) if i == 1 else p for i, p in enumerate(zero)))
    with pytest.raises(ValidationError, match=f"pool '{pools.names[1]}' has prior 0 but must get weight"):
        make_plan(model, floored, seed=0, n_candidates=500, prior_strength=0.1)


def test_plan_refuses_a_strength_without_a_prior(plan_inputs):
    _, model = plan_inputs
    with pytest.raises(ValidationError, match="needs a prior"):
        make_plan(model, PoolSet.from_names(model.pools), seed=0, n_candidates=500, prior_strength=0.1)


# -- the exact proposer (log-linear models) ------------------------------------------------------------------


@pytest.fixture(scope="module")
def law_inputs(tmp_path_factory, synthetic_study):
    _, pools, model = synthetic_study(tmp_path_factory.mktemp("law"), 80, "dml")
    return pools, model


@pytest.mark.parametrize("kind", ["dml", "linear"])
def test_score_form_is_the_models_own_score(tmp_path, synthetic_study, kind):
    _, _, model = synthetic_study(tmp_path, 80, kind)
    W = np.random.default_rng(0).dirichlet(np.ones(5), 50)
    form = model.score_form()
    np.testing.assert_allclose(form.predict(W), model.objective.score(model.predict_mean(W)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["ridge", "gp", "bimix"])
def test_models_outside_the_log_linear_family_have_no_form(tmp_path, synthetic_study, kind):
    study, pools, model = synthetic_study(tmp_path, 80, kind)
    assert model.score_form() is None
    plan = make_plan(model, pools, seed=0, n_candidates=300)  # the search alone (BiMix keeps a law_ too)
    assert "exact" not in plan.search


def test_the_exact_line_says_when_a_later_step_chose_the_recommendation(law_inputs):
    from dataclasses import replace

    from mixplan.mixture.repetition import RepetitionModel

    pools, model = law_inputs
    capped = PoolSet(tuple(replace(p, max_epochs=4.0) for p in pools))
    plan = make_plan(model, capped, tokens=2e7, seed=0, n_candidates=500, repetition=RepetitionModel(r_star=3.0,
                                                                                                    gamma=0.2))
    exact = plan.search["exact"]
    assert exact["used"] and exact["of"].startswith("the proxy-scale optimum")
    assert "exact proposer for the proxy-scale optimum" in plan.report()


def test_a_mixing_law_plan_is_exact_and_does_not_depend_on_the_seed(law_inputs):
    pools, model = law_inputs
    plans = [make_plan(model, pools, seed=s, n_candidates=500, prior_strength=0.05) for s in (0, 3)]
    a, b = ([p.recommended[n] for n in pools.names] for p in plans)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)  # the searches differ; the optimum they lead to does not
    form, prior = model.score_form(), pools.prior
    for plan in plans:
        exact = plan.search["exact"]
        assert exact["used"] and exact["gap"] < 1e-8
        rec = np.array([plan.recommended[n] for n in pools.names])
        searched = np.array(exact["search_weights"])

        def f(w):
            return form.predict(w)[0] + 0.05 * kl_divergence(w, prior)[0]

        assert f(rec) <= f(searched) + 1e-12 and exact["score"] == pytest.approx(f(rec), abs=1e-9)
        assert "exact proposer (the score is convex and log-linear" in plan.report()


def test_a_maximised_loss_law_is_not_convex_and_the_search_stands(tmp_path):
    from mixplan import fit_model, parse_objective, read_runs
    from mixplan.demo.synthetic import make_study

    study = make_study(5, seed=1)
    study.runs(80, seed=2, noise=0.005).to_csv(tmp_path / "runs.csv", index=False)
    pools = PoolSet(tuple(Pool(n, tokens=1e6 * (i + 1)) for i, n in enumerate(study.names)))
    runs = read_runs(tmp_path / "runs.csv", pools)
    model = fit_model(runs, parse_objective("loss", runs, maximize=True), "dml", seed=0)
    assert not model.score_form().convex  # maximising c + k e^(t.w), k > 0: a concave score to minimise
    plan = make_plan(model, pools, seed=0, n_candidates=500)
    assert plan.search["exact"]["used"] is False
    assert plan.recommended == pytest.approx(dict(zip(pools.names, plan.result.weights)))
    assert "exact proposer not used" in plan.report()


# -- choosing the strength ---------------------------------------------------------------------------------------


def _study(truth):
    """Folds over 50 fake runs; the refit's optimum under each strength minimises the biased model
    ``_quadratic`` + lam KL; the judge is ``truth`` (smaller is better)."""
    pools = PoolSet(tuple(Pool(f"p{i}", tokens=t) for i, t in enumerate(PRIOR * 1e6)))
    c = build_constraints(pools)
    folds = [(np.setdiff1d(np.arange(50), np.arange(k, 50, 5)), np.arange(k, 50, 5)) for k in range(5)]

    def optimise(train, grid):
        return np.array([search(_quadratic, c, PRIOR, seed=len(train), n_candidates=1000, refine_rounds=4,
                                penalty=prior_penalty(g, PRIOR)).weights for g in grid])

    return choose_strength(folds, np.zeros(50), optimise, lambda test, W: truth(W), grid=(0.0, 0.01, 0.1, 1.0, 10.0))


def test_auto_picks_strong_shrinkage_when_the_model_is_biased_away_from_the_prior():
    curve = _study(lambda W: ((np.atleast_2d(W) - PRIOR) ** 2).sum(axis=1))  # the truth is best at the prior
    assert curve.chosen == 10.0
    assert np.all(np.diff(curve.mean) < 0)  # more shrinkage, less regret, strength by strength


def test_auto_picks_no_shrinkage_when_the_model_is_right():
    curve = _study(_quadratic)
    assert curve.chosen == 0.0
    d = curve.to_dict()
    assert [r["strength"] for r in d["curve"]] == [0.0, 0.01, 0.1, 1.0, 10.0] and d["n_folds"] == 5
    assert all(len(r["fold_regret"]) == 5 and r["sd"] >= 0 for r in d["curve"])


def test_choose_strength_needs_two_strengths_and_two_folds():
    with pytest.raises(ValidationError, match="at least 2 strengths"):
        choose_strength([(np.arange(2), np.arange(2))] * 2, np.zeros(2), None, None, grid=[0.1])
    with pytest.raises(ValidationError, match="at least 2 folds"):
        choose_strength([(np.arange(2), np.arange(2))], np.zeros(2), None, None)
    assert DEFAULT_GRID[0] == 0 and {0.005, 0.01, 0.05, 0.1} <= set(DEFAULT_GRID)


# -- the CLI -----------------------------------------------------------------------------------------------------


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("bad", ["-1", "abc", "nan"])
def test_cli_refuses_a_bad_strength_in_one_line(capsys, synthetic, bad):
    _, runs, manifest = synthetic
    code, _, err = _run(capsys, "plan", "--runs", runs, "--pools", manifest, "--target", "loss",
                        f"--prior-strength={bad}")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--prior-strength" in err and "'auto' or a number >= 0" in err


def test_cli_config_strength_is_checked(capsys, synthetic, tmp_path):
    _, runs, manifest = synthetic
    config = tmp_path / "plan.toml"
    config.write_text(f"runs = '{runs}'\npools = '{manifest}'\ntarget = 'loss'\nprior_strength = 'lots'\n")
    code, _, err = _run(capsys, "plan", config)
    assert code == 2 and "key 'prior_strength'" in err and len(err.strip().splitlines()) == 1


def test_cli_auto_reports_the_curve_and_the_manifests_prior(capsys, synthetic, tmp_path):
    _, runs, _ = synthetic
    manifest = tmp_path / "pools_prior.toml"  # a per-pool prior (not normalised: the plan normalises it)
    manifest.write_text("".join(f"[pools.p{i}]\ntokens = 1e6\nprior = {v}\n" for i, v in enumerate([4, 3, 1, 1, 1])))
    # one call (the choice fits 6 refits and 6 'auto' judges): the printed plan, and plan.json
    code, out, _ = _run(capsys, "plan", "--runs", runs, "--pools", manifest, "--target", "loss", "--model", "ridge",
                        "--candidates", 500, "--prior-strength", "auto", "--out", tmp_path / "plan")
    assert code == 0
    assert "search regularised toward the prior (the manifest's per-pool prior)" in out
    assert "strength chosen by cross-validated regret" in out and "<- chosen" in out
    assert sum(line.strip().startswith(f"{g:g} ") for g in DEFAULT_GRID for line in out.splitlines()) >= len(
        DEFAULT_GRID)
    doc = json.loads((tmp_path / "plan" / "plan.json").read_text())["prior_regularisation"]
    assert doc["prior"] == pytest.approx({"p0": 0.4, "p1": 0.3, "p2": 0.1, "p3": 0.1, "p4": 0.1})
    sel = doc["selection"]
    assert [r["strength"] for r in sel["curve"]] == list(DEFAULT_GRID) and sel["n_folds"] == 6  # 2 folds x 3
    assert "judge the optimum with the 'auto' model fitted on the held-out runs alone" in sel["rule"]
    means = [r["mean_regret"] for r in sel["curve"]]
    assert doc["strength"] == sel["chosen"] == DEFAULT_GRID[int(np.argmin(means))]
    assert "minus the chosen's (+- paired se)" in out and sel["chosen"] in sel["tied_with_chosen"]
    assert all(r["gap_to_chosen"] >= 0 and r["gap_se"] >= 0 for r in sel["curve"])


def test_the_curve_reports_each_strengths_paired_gap_to_the_chosen_one():
    # fold k judges every strength on the same runs: a shared fold effect cancels from the paired gap
    fold = np.array([[0.0], [1.0], [2.0], [3.0]])
    regret = fold + np.array([[0.10, 0.00, 0.01, 0.30],
                              [0.12, 0.00, -0.01, 0.31],
                              [0.11, 0.00, 0.02, 0.29],
                              [0.09, 0.00, -0.02, 0.30]])
    curve = StrengthCurve(grid=np.array([0.0, 0.01, 0.1, 1.0]), regret=regret, chosen=0.01, rule="test")
    assert curve.gap == pytest.approx([0.105, 0.0, 0.0, 0.30])
    assert curve.gap_se[1] == 0 and curve.gap_se[0] == pytest.approx(np.std([0.10, 0.12, 0.11, 0.09], ddof=1) / 2)
    assert np.all(curve.se > 0.6)  # the marginal se carries the fold effect; the paired one does not
    assert list(curve.tied) == [0.01, 0.1]  # 0.1's gap (0) is within its se; 0 and 1 are clearly worse
    d = curve.to_dict()
    assert d["tied_with_chosen"] == [0.01, 0.1] and d["curve"][3]["gap_to_chosen"] == pytest.approx(0.30)
