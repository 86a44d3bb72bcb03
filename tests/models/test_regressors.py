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
