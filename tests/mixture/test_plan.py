"""make_plan itself (the CLI's `plan` is tested in tests/cli): on a known-truth study the recommended
mixture is the best predicted one, its *true* regret is small next to the simple baselines', its
interval covers the true value, and pins and availability caps are honoured."""

import json

import numpy as np
import pytest
from scipy.optimize import minimize

from mixplan import ExtrapolationWarning, Pool, PoolSet, ValidationError, make_plan


@pytest.fixture(scope="module")
def study_and_model(tmp_path_factory, synthetic_study):
    return synthetic_study(tmp_path_factory.mktemp("plan"), 120, "gp")


def _true_optimum(study, lower, upper):
    """The truth's minimum over {sum w = 1, lower <= w <= upper} (SLSQP from the best of 2,000 draws)."""
    rng = np.random.default_rng(0)
    W = np.clip(rng.dirichlet(np.ones(len(lower)), 2000), lower, upper)
    W /= W.sum(axis=1, keepdims=True)
    w0 = W[np.argmin(study.true_objective(W))]
    res = minimize(lambda w: float(study.true_objective(w)[0]), w0, method="SLSQP",
                   bounds=list(zip(lower, upper)), constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
                   options={"ftol": 1e-12, "maxiter": 500})
    return float(study.true_objective(res.x)[0])


def test_recommendation_is_the_predicted_best_with_small_true_regret(study_and_model):
    study, pools, model = study_and_model
    plan = make_plan(model, pools, tokens=4e6, seed=0)
    best = _true_optimum(study, np.zeros(5), np.ones(5))
    truth = {k: float(study.true_objective(np.array(list(m["weights"].values())))[0]) for k, m in plan.mixtures.items()}
    regret = {k: v - best for k, v in truth.items()}
    # noise sd 0.005 on 120 runs; measured when written: recommended 0.0040, best observed 0.0197
    # Measured when written (noise sd 0.005, 120 runs, GP): recommended 0.0155, top-k mean 0.0102, best
    # observed 0.0145, token-proportional 0.310, uniform 0.702. The search guarantees the best *predicted*
    # value, not the best true one: within noise of the best run, far better than the simple baselines.
    assert regret["recommended"] < 0.03 and regret["recommended"] < 0.1 * regret["token_proportional"], regret
    rec = plan.mixtures["recommended"]
    assert all(rec["prediction"] <= m["prediction"] + 1e-12 for m in plan.mixtures.values())
    assert rec["lower"] <= truth["recommended"] <= rec["upper"] and rec["lower"] < rec["prediction"] < rec["upper"]
    assert sum(plan.recommended.values()) == pytest.approx(1.0, abs=1e-9)
    json.dumps(plan.to_dict())  # JSON-ready


def test_pins_and_availability_caps_are_honoured(study_and_model):
    study, pools, model = study_and_model
    plan = make_plan(model, pools, tokens=4e6, pins={"p4": 0.3}, seed=0)
    assert plan.recommended["p4"] == pytest.approx(0.3, abs=1e-12) and plan.active["p4"] == "pinned"
    # 4e7 tokens: pool p_i (i + 1 million tokens, max 4 epochs) may supply at most 0.1 (i + 1) of the run;
    # the truth wants 0.6 of p4, capped at 0.5
    plan = make_plan(model, pools, tokens=4e7, seed=0)
    caps = np.array([0.1 * (i + 1) for i in range(5)])
    w = np.array([plan.recommended[p] for p in pools.names])
    assert np.all(w <= np.minimum(caps, 1) + 1e-9) and w.sum() == pytest.approx(1.0, abs=1e-9)
    assert any("cap" in v for v in plan.active.values()), plan.active
    best_capped = _true_optimum(study, np.zeros(5), np.minimum(caps, 1))
    assert float(study.true_objective(w)[0]) - best_capped < 0.02


def test_a_model_of_other_pools_is_refused(study_and_model):
    _, pools, model = study_and_model
    other = PoolSet(tuple(Pool(f"q{i}", tokens=1e6) for i in range(5)))
    with pytest.raises(ValidationError, match="the model was fitted on pools"):
        make_plan(model, other)


def test_epoch_caps_that_cannot_be_met_do_not_stop_a_repetition_aware_plan(study_and_model):
    # 1e8 tokens from pools of 1-5 million tokens: four epochs of everything cover only 0.6 of the run.
    from mixplan import InfeasibleError
    from mixplan.mixture.repetition import RepetitionModel

    _, pools, model = study_and_model
    with pytest.raises(InfeasibleError, match="the caps add up to 0.6 < 1"):
        make_plan(model, pools, tokens=1e8, seed=0)
    rep = RepetitionModel(r_star=15.4, gamma=0.05)
    with pytest.warns(ExtrapolationWarning, match="epoch caps cannot be met"):
        plan = make_plan(model, pools, tokens=1e8, seed=0, repetition=rep)
    assert "hard_cap" not in plan.mixtures and "repetition_blind" in plan.mixtures
    assert sum(plan.recommended.values()) == pytest.approx(1.0, abs=1e-9)
    assert max(plan.mixtures["recommended"]["epochs"].values()) > 4  # repetition priced, not capped
    assert not any(m["feasible"] for m in plan.mixtures.values())
    assert any("epoch caps cannot be met at 1e+08 tokens" in w for w in plan.warnings), plan.warnings
    assert "the caps add up to 0.6 < 1" in plan.to_dict()["repetition"]["hard_caps_unmet"]
    with pytest.raises(InfeasibleError):  # the caps were asked for: then they do stop the plan
        make_plan(model, pools, tokens=1e8, seed=0, repetition=rep, combine_caps=True)


def test_the_cli_plans_with_repetition_where_the_caps_cannot_be_met(synthetic, tmp_path, capsys):
    from mixplan.cli import main

    _, runs, manifest = synthetic
    argv = ["plan", "--runs", str(runs), "--pools", str(manifest), "--target", "loss", "--model", "ridge",
            "--tokens", "1e8", "--candidates", "2000"]
    assert main(argv) == 3 and "the caps add up to 0.6 < 1" in capsys.readouterr().err
    assert main(argv + ["--r-star", "15.4", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "hard_cap" not in doc["mixtures"] and "the caps add up" in doc["repetition"]["hard_caps_unmet"]



@pytest.fixture(scope="module")
def tree_study(tmp_path_factory, synthetic_study):
    return synthetic_study(tmp_path_factory.mktemp("plan_trees"), 120, "regmix")


def test_a_model_of_trees_stops_at_the_top_k_mean(tree_study, study_and_model):
    # Trees predict steps a local refinement would chase (TREE_SHARE_UNREFINED: the known-truth benchmark).
    _, pools, trees = tree_study
    assert trees.tree_share == 1.0
    plan = make_plan(trees, pools, seed=0, n_candidates=2000)
    assert plan.search["refine_rounds"] == 0 and plan.search["refine_moves"] == 0
    assert np.array_equal(plan.result.weights, plan.result.topk_weights)
    assert "their top-k mean, not refined" in plan.report()
    asked = make_plan(trees, pools, seed=0, n_candidates=2000, refine_rounds=4)  # asked for: refined
    assert asked.search["refine_rounds"] == 4 and asked.result.n_exact > plan.result.n_exact
    _, pools, gp = study_and_model  # a smooth model is refined
    smooth = make_plan(gp, pools, seed=0, n_candidates=2000)
    assert gp.tree_share == 0.0 and smooth.search["refine_rounds"] == 16 and smooth.search["refine_moves"] > 0
    assert "refinement trials" in smooth.report()
    assert "boosted trees, whose steps a local search would chase" in plan.report()
    told = make_plan(gp, pools, seed=0, n_candidates=2000, refine_rounds=0)  # asked for, not the trees' rule
    assert "their top-k mean, not refined (refine_rounds 0)" in told.report()
