import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone

from mixplan import MixtureModel, MixtureRegressor, NotFittedError, ValidationError, fit_model, load_model, parse_objective, read_runs
from mixplan.exceptions import OutputExistsError


def test_estimator_contract():
    est = MixtureRegressor("ridge", params={"alpha": 0.1}, random_state=3)
    assert est.get_params() == {"model": "ridge", "params": {"alpha": 0.1}, "random_state": 3, "n_jobs": 1,
                                "cv_folds": 5, "cv_repeats": None}
    assert clone(est).get_params() == est.get_params()
    with pytest.raises(NotFittedError, match="not fitted yet"):
        est.predict(np.eye(3))
    with pytest.raises(ValidationError, match="unknown model 'gbm'"):
        MixtureRegressor("gbm").fit(np.eye(3), [1, 2, 3])


def test_lightgbm_refuses_too_few_runs():
    X = np.random.default_rng(0).dirichlet(np.ones(4), 30)
    with pytest.raises(ValidationError, match=r"fitting on 30 runs: too few for the 'regmix' model: LightGBM needs at "
                                              r"least 40 runs"):
        MixtureRegressor("regmix").fit(X, X[:, 0])


def test_unregularised_models_refuse_too_few_runs():
    X = np.random.default_rng(0).dirichlet(np.ones(6), 10)
    with pytest.raises(ValidationError, match=r"fitting on 10 runs: too few to fit the 'linear' model on 6 pools "
                                              r"\(7 parameters need at least 14 runs"):
        MixtureRegressor("linear").fit(X, X[:, 0])
    with pytest.raises(ValidationError, match=r"too few to fit the 'dml' model on 6 pools \(8 parameters"):
        MixtureRegressor("dml").fit(X, X[:, 0])
    # Regularised models (GP with a length-scale prior, ridge with a CV'd penalty) need MIN_RUNS only.
    MixtureRegressor("gp").fit(X, X[:, 0])
    with pytest.raises(ValidationError, match=r"fitting on 6 runs: too few for the 'ridge' model \(at least 8"):
        MixtureRegressor("ridge").fit(X[:6], X[:6, 0])


def test_run_count_is_checked_on_the_cross_validation_folds(tmp_path):
    # 45 runs pass LightGBM's 40-run minimum, but each 5-fold model trains on 36 of them.
    from mixplan.demo.synthetic import make_study

    path = tmp_path / "r.csv"
    make_study(4).runs(45).to_csv(path, index=False)
    runs = read_runs(path)
    with pytest.raises(ValidationError, match=r"r.csv: 5-fold cross-validation trains each fold model on 36 runs: "
                                              r"too few for the 'regmix' model"):
        fit_model(runs, parse_objective("loss", runs), "regmix")


def test_constant_target_is_refused(tmp_path):
    from mixplan.demo.synthetic import make_study

    frame = make_study(3).runs(30)
    frame["flat"] = 2.5
    frame.to_csv(tmp_path / "r.csv", index=False)
    runs = read_runs(tmp_path / "r.csv")
    with pytest.raises(ValidationError, match=r"the target 'flat' has the same value \(2.5\) in all 30 runs"):
        fit_model(runs, parse_objective("flat", runs), "ridge")


@pytest.mark.parametrize("model", ["regmix", "ridge", "gp", pytest.param("auto", marks=pytest.mark.slow)])
def test_fit_predicts_known_truth(synthetic, model):
    study, path, _ = synthetic
    runs = read_runs(path)
    m = fit_model(runs, parse_objective("loss", runs), model, seed=0)
    test = study.runs(200, seed=99, noise=0.0)
    pred = m.predict(test[[f"w_{p}" for p in study.names]].to_numpy())
    rho = spearmanr(pred.mean, test["loss"])[0]
    assert rho > {"regmix": 0.85, "ridge": 0.6, "gp": 0.95, "auto": 0.95}[model], rho
    assert m.cv["n_runs"] == 120 and m.cv["n_splits"] == 5
    assert np.all(pred.lower < pred.mean) and np.all(pred.mean < pred.upper)


@pytest.mark.parametrize("model", ["ridge", pytest.param("auto", marks=pytest.mark.slow)])
def test_interval_coverage_on_known_truth(synthetic, model):
    # Split-conformal on CV residuals (normalised by the GP sd for auto): 90% intervals should cover
    # roughly 90% of fresh noisy runs.
    study, path, _ = synthetic
    runs = read_runs(path)
    m = fit_model(runs, parse_objective("loss", runs), model, seed=0)
    assert m.adaptive == (model == "auto")
    test = study.runs(1000, seed=7, noise=0.005)
    pred = m.predict(test[[f"w_{p}" for p in study.names]].to_numpy(), level=0.9)
    cover = np.mean((test["loss"] >= pred.lower) & (test["loss"] <= pred.upper))
    assert 0.8 <= cover <= 0.98, cover


@pytest.mark.parametrize("model", ["regmix", "ridge", "gp", "dml", pytest.param("auto", marks=pytest.mark.slow)])
def test_save_load_round_trip_without_pickle(synthetic, tmp_path, model):
    study, path, _ = synthetic
    runs = read_runs(path)
    m = fit_model(runs, parse_objective("mean(loss*)", runs), model, seed=4)
    out = tmp_path / "model"
    m.save(out)
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "target0", "target1", "train_runs.csv"]
    files = sorted(p.name for p in (out / "target0").iterdir())
    if model == "auto":  # every candidate is kept, named by its preset
        assert files == ["auto.json", "dml.dml.json", "gp-log.gp.json", "gp.gp.json", "lightgbm.model.txt",
                         "ridge.ridge.json"]
    else:
        assert files == [{"regmix": "model.txt", "ridge": "ridge.json", "gp": "gp.json", "dml": "dml.json"}[model]]
    assert files == sorted(m.targets[0].regressor.file_names())  # what meta.json lists, without serialising
    for p in [*out.glob("*.*"), *out.glob("target*/*")]:  # text only: no pickle anywhere
        p.read_text(encoding="utf-8")
    meta = json.loads((out / "meta.json").read_text())
    assert meta["pools"] == study.names and meta["seed"] == 4 and "lightgbm" in meta["versions"]
    again = load_model(out)
    assert MixtureModel.load(out).meta() == again.meta()  # the method and the function read alike
    W = np.random.default_rng(1).dirichlet(np.ones(5), 50)
    a, b = m.predict(W), again.predict(W)
    assert np.allclose(a.mean, b.mean, rtol=0, atol=1e-10)
    if model in ("regmix", "ridge"):  # LightGBM text and ridge JSON round-trip bit for bit; the GP refactorises
        assert np.array_equal(a.mean, b.mean)
    assert np.allclose(a.upper, b.upper, rtol=0, atol=1e-9)
    assert a.nearest_run == b.nearest_run
    with pytest.raises(OutputExistsError, match="exists"):
        m.save(out)
    m.save(out, force=True)


def test_load_errors(tmp_path, synthetic):
    with pytest.raises(ValidationError, match="not a mixplan model directory"):
        load_model(tmp_path)
    (tmp_path / "meta.json").write_text("[1, 2]")
    with pytest.raises(ValidationError, match="a JSON object is expected"):
        load_model(tmp_path)
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(ValidationError, match="not valid JSON"):
        load_model(tmp_path)
    _, path, _ = synthetic
    runs = read_runs(path)
    fit_model(runs, parse_objective("loss", runs), "ridge").save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    (tmp_path / "m" / "meta.json").write_text(json.dumps(meta | {"format_version": 99}))
    with pytest.raises(ValidationError, match="format_version 99 is not 2; refit"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "pools"}))
    with pytest.raises(ValidationError, match=r"not a mixplan model description \(missing 'pools'\)"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "meta.json").write_text(json.dumps(meta))
    (tmp_path / "m" / "target0" / "ridge.json").unlink()
    with pytest.raises(ValidationError, match="target0/ridge.json is missing"):
        load_model(tmp_path / "m")


def test_nearest_run_evidence(synthetic):
    study, path, _ = synthetic
    runs = read_runs(path)
    m = fit_model(runs, parse_objective("loss", runs), "ridge")
    pred = m.predict(runs.weights[:3])
    assert pred.nearest_run == runs.run_ids[:3]
    assert np.allclose(pred.nearest_distance, 0) and pred.covered.all()
    far = m.predict(np.eye(5)[:1])  # a vertex: far from Dirichlet(1) runs
    assert far.nearest_distance[0] > m.coverage_radius and not far.covered[0]


def test_cv_summary_shows_undefined_correlation_as_na():
    from mixplan.models.mixture_model import cv_summary

    cv = {"n_splits": 5, "n_runs": 40, "spearman": None, "pearson": float("nan"), "mae": 0.1, "rmse": 0.2}
    assert cv_summary(cv) == "5-fold CV on 40 runs: Spearman n/a, Pearson n/a, MAE 0.1, RMSE 0.2"


def test_tree_share_weighs_each_column_by_how_much_it_moves_the_objective(synthetic, tmp_path):
    from dataclasses import replace
    from types import SimpleNamespace

    _, path, _ = synthetic
    frame = pd.read_csv(path)
    frame["loss10"] = 10 * frame["loss"]  # moves the objective 10x as much as loss
    frame.to_csv(tmp_path / "two.csv", index=False)
    runs = read_runs(tmp_path / "two.csv")
    m = fit_model(runs, parse_objective("loss + loss10", runs), "ridge", seed=0)
    assert m.tree_share == 0.0
    trees, smooth = SimpleNamespace(tree_share=1.0), SimpleNamespace(tree_share=0.0)
    m.targets = [replace(m.targets[0], regressor=trees), replace(m.targets[1], regressor=smooth)]
    assert m.tree_share == pytest.approx(1 / 11)  # the trees' column sways the objective a tenth as much
    m.targets = [replace(m.targets[0], regressor=smooth), replace(m.targets[1], regressor=trees)]
    assert m.tree_share == pytest.approx(10 / 11)
