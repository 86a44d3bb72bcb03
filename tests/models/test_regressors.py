"""Model zoo, stacking and model choice: known-truth checks."""

import numpy as np
import pytest

from mixplan import MixtureRegressor, fit_model, parse_objective, read_runs
from mixplan.models.mixing_law import _objective, fit_mixing_law, mixing_law
from mixplan.models.regressor import adaptive_lightgbm, stack_weights


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_mixing_law_recovers_known_parameters(sign):
    rng = np.random.default_rng(0)
    t = np.array([-2.0, 0.5, 1.0, -0.5])
    W = rng.dirichlet(np.ones(4), 200)
    y = mixing_law(W, 3.0, sign, -1.0, t)
    law = fit_mixing_law(W, y * (1 + 1e-4 * rng.normal(size=200)))
    assert law.sign == sign
    T = rng.dirichlet(np.ones(4), 500)
    truth = mixing_law(T, 3.0, sign, -1.0, t)
    assert np.max(np.abs(law.predict(T) - truth)) < 0.01 * np.ptp(truth)


def test_mixing_law_gradient_matches_central_differences():
    rng = np.random.default_rng(1)
    W = rng.dirichlet(np.ones(3), 50)
    y = rng.normal(size=50)
    x = rng.normal(0, 0.5, 5)
    _, g = _objective(x, W, y, -1.0, 0.1, 1e-3)
    h = 1e-6
    num = np.array([(_objective(x + h * e, W, y, -1.0, 0.1, 1e-3)[0] - _objective(x - h * e, W, y, -1.0, 0.1, 1e-3)[0])
                    / (2 * h) for e in np.eye(5)])
    assert np.allclose(g, num, rtol=1e-5, atol=1e-7)


def test_stack_weights_are_on_the_simplex_and_find_the_exact_column():
    rng = np.random.default_rng(0)
    y = rng.normal(size=100)
    P = np.column_stack([y + rng.normal(0, 1.0, 100), y, np.zeros(100)])
    w = stack_weights(P, y)
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0, abs=1e-9)
    assert w[1] == pytest.approx(1.0, abs=1e-6)
    # two equally noisy, independent columns: averaging halves the error variance
    P2 = np.column_stack([y + rng.normal(0, 1.0, 100), y + rng.normal(0, 1.0, 100)])
    assert np.all(np.abs(stack_weights(P2, y) - 0.5) < 0.2)


def test_adaptive_lightgbm_can_split_from_ten_runs():
    assert adaptive_lightgbm(10) == {"min_child_samples": 3, "num_leaves": 4}
    assert adaptive_lightgbm(5000) == {"min_child_samples": 20, "num_leaves": 31}
    X = np.random.default_rng(0).dirichlet(np.ones(4), 24)
    pred = MixtureRegressor("lightgbm").fit(X, X[:, 0]).predict(X)
    assert np.ptp(pred) > 0  # not a constant, unlike RegMix's settings below 40 runs


@pytest.mark.slow
def test_auto_reports_every_candidate_and_never_loses_to_the_best_one(synthetic):
    _, path, _ = synthetic
    runs = read_runs(path)
    X, y = runs.weights[:60], runs.metric("loss")[:60]
    reg = MixtureRegressor("auto", random_state=0).fit(X, y)
    rows = {r["model"]: r for r in reg.selection_}
    assert set(rows) == {"gp", "gp-log", "ridge", "dml", "lightgbm", "stack (cross-fitted weights)"}
    assert sum(reg.weights_.values()) == pytest.approx(1.0) and all(w > 0 for w in reg.weights_.values())
    singles = [r["rmse"] for m, r in rows.items() if not m.startswith("stack")]
    assert reg.cv_.rmse <= min(singles) + 1e-12
    assert reg.cv_.n_repeats == 3 and reg.cv_.oof.shape == (3, 60)
    again = MixtureRegressor("auto", random_state=0).fit(X, y)
    assert np.array_equal(reg.predict(X), again.predict(X))  # deterministic


def test_auto_skips_candidates_the_fold_size_cannot_support():
    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(17), 32)
    reg = MixtureRegressor("auto").fit(X, np.log(X[:, 0] + 0.01))
    rows = {r["model"]: r for r in reg.selection_}
    assert rows["dml"]["status"] == "skipped"
    assert "trains each fold model on 25 runs: too few to fit the 'dml' model" in rows["dml"]["reason"]


def test_several_columns_are_fitted_separately_and_combined(synthetic, tmp_path):
    _, path, _ = synthetic
    runs = read_runs(path)
    obj = parse_objective("0.25*loss + 0.75*loss_other", runs)
    m = fit_model(runs, obj, "gp", seed=0)
    assert [t.column for t in m.targets] == ["loss", "loss_other"]
    W = np.random.default_rng(5).dirichlet(np.ones(5), 20)
    pred = m.predict(W)
    assert np.allclose(pred.mean, 0.25 * pred.columns["loss"] + 0.75 * pred.columns["loss_other"], atol=1e-12)
    # the objective's CV residuals are the same combination of the columns' out-of-fold residuals
    res = 0.25 * m.targets[0].cv.residuals + 0.75 * m.targets[1].cv.residuals
    assert np.allclose(m.cv["residuals"], res, atol=1e-12)


def test_probability_of_being_better(synthetic):
    study, path, _ = synthetic
    runs = read_runs(path)
    m = fit_model(runs, parse_objective("loss", runs), "gp", seed=0)
    best = study.w_star
    others = np.vstack([best, np.eye(5)[0] * 0.9 + 0.02, np.full(5, 0.2)])
    p = m.prob_better(best, others)
    assert p[0] == pytest.approx(0.5)  # against itself
    assert p[1] > 0.99  # a near-vertex mixture is far worse on this bowl
    back = m.prob_better(others[2], best[None, :])
    assert back[0] == pytest.approx(1 - p[2], abs=1e-9)  # antisymmetric


def test_adaptive_intervals_widen_away_from_the_runs(synthetic):
    _, path, _ = synthetic
    runs = read_runs(path)
    m = fit_model(runs, parse_objective("loss", runs), "gp", seed=0)
    assert m.adaptive
    near = m.predict(runs.weights[:5])
    far = m.predict(np.eye(5)[:2] * 0.96 + 0.01)
    assert (far.upper - far.lower).min() > (near.upper - near.lower).max()


def test_ridge_penalty_is_the_one_scikit_learn_chooses():
    from sklearn.linear_model import RidgeCV

    from mixplan.models.regressor import PRESETS, ridge_loo_alpha

    alphas = PRESETS["ridge"]["alphas"]
    rng = np.random.default_rng(0)
    for _ in range(25):  # more runs than features and fewer, weak and strong signals
        n, p = int(rng.integers(15, 200)), int(rng.integers(2, 60))
        Z = rng.normal(size=(n, p))
        Z = (Z - Z.mean(axis=0)) / Z.std(axis=0)
        y = rng.normal() * Z[:, 0] + rng.uniform(0.01, 3) * rng.normal(size=n)
        assert ridge_loo_alpha(Z, y, alphas) == RidgeCV(alphas=alphas).fit(Z, y).alpha_


def test_auto_races_out_a_candidate_that_cannot_win_and_says_why():
    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(6), 300)
    y = np.log(X[:, 0] + 0.01) + 0.5 * X[:, 1] ** 2 + 0.01 * rng.normal(size=300)
    reg = MixtureRegressor("auto", params={"candidates": ["gp", "linear"]}).fit(X, y)
    rows = {r["model"]: r for r in reg.selection_}
    assert rows["linear"]["status"] == "skipped" and "it cannot win" in rows["linear"]["reason"]
    assert "x gp's" in rows["linear"]["reason"] and set(reg.candidates_) == {"gp"}
    # the race needs a first fold of 50 runs or more: with 200 runs (40 per fold) nobody is dropped
    small = MixtureRegressor("auto", params={"candidates": ["gp", "linear"]}).fit(X[:200], y[:200])
    assert set(small.candidates_) == {"gp", "linear"}
    assert {r["model"]: r["status"] for r in small.selection_}["linear"] in ("used", "candidate")


def test_gp_cross_validation_keeps_the_hyper_parameters_when_runs_are_many(monkeypatch):
    from mixplan.models import regressor as rg

    rng = np.random.default_rng(1)
    X = rng.dirichlet(np.ones(4), 130)  # 6 hyper-parameters: 120 runs or more keep them fixed
    y = np.sin(3 * X[:, 0]) + 0.01 * rng.normal(size=130)
    est = MixtureRegressor("gp").fit(X, y)
    train, test = np.arange(100), np.arange(100, 130)
    pred, sd = rg.fold_prediction(est, X, y, train, test)
    # a fixed-hyper-parameter fold model is the GP conditioned on the fold's runs with the full fit's theta
    ref = rg.fit_gp(np.sqrt(X[train]), y[train], groups=est.gp_.groups, theta=est.gp_.theta)
    assert np.allclose(pred, ref.predict(np.sqrt(X[test])), rtol=0, atol=1e-10)
    assert np.allclose(sd, ref.predict_std(np.sqrt(X[test])), rtol=1e-10)
    monkeypatch.setattr(rg, "FIXED_THETA_RUNS", 1000)  # too few runs per hyper-parameter: re-optimised
    pred2, _ = rg.fold_prediction(est, X, y, train, test)
    assert not np.allclose(pred2, pred, atol=1e-10)


def test_hundreds_of_pools_share_one_length_scale():
    rng = np.random.default_rng(2)
    X = rng.dirichlet(np.ones(80), 120)
    y = 3 * X[:, 0] + 2 * X[:, 1] + 0.01 * rng.normal(size=120)
    est = MixtureRegressor("gp").fit(X, y)
    groups = est.gp_.groups
    assert len(est.gp_.theta) == 3 and not groups.any() and not est.gp_.ard
    assert MixtureRegressor("gp").fit(X[:, :5] / X[:, :5].sum(axis=1, keepdims=True), y).gp_.ard  # 5 pools: ARD
    files = est.to_files()
    back = MixtureRegressor.from_files(files, "gp", None, 0, 80)
    assert np.array_equal(back.gp_.groups, groups) and np.array_equal(back.predict(X[:5]), est.predict(X[:5]))
    assert adaptive_lightgbm(500, 400) == {"min_child_samples": 20, "num_leaves": 31, "max_bin": 63,
                                           "colsample_bytree": 0.16}


def test_auto_gives_the_same_model_for_any_number_of_workers():
    rng = np.random.default_rng(3)
    X = rng.dirichlet(np.ones(5), 90)
    y = np.log(X[:, 2] + 0.02) + 0.02 * rng.normal(size=90)
    one = MixtureRegressor("auto", n_jobs=1).fit(X, y)
    two = MixtureRegressor("auto", n_jobs=3).fit(X, y)
    assert one.to_files() == two.to_files()
    assert np.array_equal(one.cv_.oof, two.cv_.oof) and np.array_equal(one.predict(X), two.predict(X))


def test_beyond_its_run_limit_the_gp_conditions_on_a_seeded_subset(monkeypatch):
    from mixplan.models import regressor as rg

    rng = np.random.default_rng(4)
    X = rng.dirichlet(np.ones(4), 90)
    y = np.sin(3 * X[:, 0]) + 0.01 * rng.normal(size=90)
    monkeypatch.setattr(rg, "POSTERIOR_RUNS", 60)
    monkeypatch.setattr(rg, "OPT_RUNS_ARD", 40)
    est = MixtureRegressor("gp", random_state=3).fit(X, y)
    keep = rg._seeded_subset(90, 60, 3)
    assert est.gp_.F.shape == (60, 4) and np.array_equal(est.gp_.y, y[keep])
    again = MixtureRegressor("gp", random_state=3).fit(X, y)
    assert np.array_equal(again.predict(X), est.predict(X))
    assert rg._seeded_subset(60, 60, 3) is None and len(rg._seeded_subset(61, 60, 0)) == 60


def test_a_stack_of_log_linear_models_is_one_log_linear_form():
    rng = np.random.default_rng(3)
    X = rng.dirichlet(np.ones(4), 120)
    y = mixing_law(X, 2.0, 1.0, -0.5, np.array([-2.0, 1.0, 0.5, 0.0])) + 0.01 * rng.normal(size=120)
    reg = MixtureRegressor("auto", params={"candidates": ["dml", "linear"]}).fit(X, y)
    assert set(reg.candidates_) == {"dml", "linear"}  # 120 runs: no race, both fitted
    reg.weights_ = {"dml": 0.7, "linear": 0.3}  # any stack of the two (the CV put all on dml here)
    form = reg.log_linear_form()
    T = rng.dirichlet(np.ones(4), 200)
    np.testing.assert_allclose(form.predict(T), reg.predict(T), rtol=0, atol=1e-12)
    assert len(form.a) == 1 and form.a[0] == pytest.approx(0.7 * reg.candidates_["dml"].law_.sign) and form.convex
    assert np.any(form.g != 0)  # the linear member's slope
    gp = MixtureRegressor("gp").fit(X, y)
    assert gp.log_linear_form() is None


def test_tree_share_is_the_trees_weight_in_the_prediction():
    rng = np.random.default_rng(4)
    X = rng.dirichlet(np.ones(4), 120)
    y = np.log(X[:, 0] + 0.01) + 0.01 * rng.normal(size=120)
    assert MixtureRegressor("regmix").fit(X, y).tree_share == 1.0
    assert MixtureRegressor("linear").fit(X, y).tree_share == 0.0
    reg = MixtureRegressor("auto", params={"candidates": ["linear", "lightgbm"]}).fit(X, y)
    assert set(reg.candidates_) == {"linear", "lightgbm"}
    reg.weights_ = {"linear": 0.6, "lightgbm": 0.4}  # any stack of the two
    assert reg.tree_share == pytest.approx(0.4)
