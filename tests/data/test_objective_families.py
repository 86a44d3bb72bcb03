"""Issue 25, item 4: ``family(...)`` terms, ``:weight`` suffixes, strict ``!`` drops and directions."""
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from mixplan import Pool, PoolSet, ValidationError, parse_objective
from mixplan.data.objective import Objective
from mixplan.data.runs import validate_runs
from mixplan.exceptions import MixplanWarning


@pytest.fixture
def runs():
    """Three runs: two bpb tasks (lower is better), two mmlu tasks and their average (names say neither)."""
    return validate_runs(pd.DataFrame({
        "run_id": ["a", "b", "c"], "w_x": [1.0, 0.5, 0.0], "w_y": [0.0, 0.5, 1.0],
        "bpb_code": [1.0, 2.0, 4.0], "bpb_news": [3.0, 1.0, 2.0],
        "mmlu_bio": [0.2, 0.4, 0.6], "mmlu_law": [0.4, 0.4, 0.1], "mmlu_avg": [0.3, 0.4, 0.35],
        "acc_arc": [0.5, 0.6, 0.7], "loss_x": [2.0, 3.0, 1.0], "t:1": [5.0, 6.0, 7.0]}))


def quiet(spec, runs, maximize=False):
    """Parse ``spec`` asserting that it warns about nothing."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", MixplanWarning)
        return parse_objective(spec, runs, maximize=maximize)


def coefs(obj):
    return dict(zip(obj.columns, obj.coefficients))


def test_family_with_weight_drop_and_direction_against_hand_values(runs):
    spec = "family(mmlu_*, !mmlu_avg; higher):0.5 + mean(bpb_*)"
    obj = quiet(spec, runs)
    # minimised: the bpb mean up-weighted by 1 (0.5 each), the two mmlu tasks as one term of weight 0.5, turned
    # toward 'better' (higher accuracy lowers the objective): -0.25 each
    assert coefs(obj) == pytest.approx({"mmlu_bio": -0.25, "mmlu_law": -0.25, "bpb_code": 0.5, "bpb_news": 0.5})
    assert obj.values(runs) == pytest.approx([0.5 * 4 - 0.25 * 0.6, 0.5 * 3 - 0.25 * 0.8, 0.5 * 6 - 0.25 * 0.7])
    assert obj.best(obj.values(runs)) == 1
    assert obj.families == (("family(mmlu_*, !mmlu_avg; higher)", ("mmlu_bio", "mmlu_law")),)
    assert obj.matched_lines() == [f"target {spec}: family(mmlu_*, !mmlu_avg; higher) matched 2 columns: mmlu_bio, "
                                   "mmlu_law", f"target {spec}: mean(bpb_*) matched 2 columns: bpb_code, bpb_news"]
    assert Objective.from_dict(json.loads(json.dumps(obj.to_dict()))) == obj
    # maximised, with the bpb tasks as a family too: the same objective negated - the same run is best
    up = quiet("family(mmlu_*, !mmlu_avg; higher):0.5 + family(bpb_*)", runs, maximize=True)
    assert up.values(runs) == pytest.approx(-obj.values(runs)) and up.best(up.values(runs)) == 1


def test_a_family_weighs_as_one_term_however_many_columns(runs):
    rng = np.random.default_rng(0)
    many = validate_runs(runs.frame.assign(**{f"mmlu_t{k}": rng.random(3) for k in range(57)}))
    obj = quiet("family(mmlu_t*; higher):0.5 + loss_x", many)
    c = coefs(obj)
    assert len(c) == 58 and c["loss_x"] == 1.0
    assert sum(abs(v) for k, v in c.items() if k.startswith("mmlu_t")) == pytest.approx(0.5)


def test_member_directions_come_from_names_then_the_objective(runs):
    # acc_arc is better higher, loss_x lower: minimised, the accuracy counts down and the loss up
    obj = quiet("family(acc_arc, loss_x)", runs)
    assert coefs(obj) == {"acc_arc": -0.5, "loss_x": 0.5}
    assert obj.values(runs) == pytest.approx([-0.25 + 1.0, -0.3 + 1.5, -0.35 + 0.5])
    assert coefs(quiet("family(acc_arc, loss_x)", runs, maximize=True)) == {"acc_arc": 0.5, "loss_x": -0.5}
    # a stated direction overrides the names (and a name saying the opposite is warned about as a wrong-way term)
    assert coefs(quiet("family(mmlu_bio, mmlu_law; lower)", runs, maximize=True)) == {"mmlu_bio": -0.5,
                                                                                     "mmlu_law": -0.5}
    with pytest.warns(MixplanWarning, match="'loss_x' looks like a loss but the objective maximizes it"):
        parse_objective("family(loss_x; higher)", runs, maximize=True)
    # names that say neither follow the objective: alone that is the user's --maximize, silently ...
    assert coefs(quiet("family(mmlu_bio, mmlu_law)", runs, maximize=True)) == {"mmlu_bio": 0.5, "mmlu_law": 0.5}
    # ... beside other terms a warning says how to state it
    with pytest.warns(MixplanWarning, match=r"family\(mmlu_bio, mmlu_law\): 2 of its columns \(mmlu_bio, mmlu_law\) "
                                            r"have names that say neither .* \(minimized\); write "
                                            r"family\(mmlu_bio, mmlu_law; higher\) if higher is better for them"):
        obj = parse_objective("family(mmlu_bio, mmlu_law) + mean(bpb_*)", runs)
    assert coefs(obj)["mmlu_bio"] == 0.5


def test_weight_forms_and_old_specs_unchanged(runs):
    base = coefs(quiet("0.5*family(bpb_*)", runs))
    assert base == {"bpb_code": 0.25, "bpb_news": 0.25}
    assert coefs(quiet("family(bpb_*):0.5", runs)) == base == coefs(quiet("2*family(bpb_*):0.25", runs))
    assert coefs(quiet("loss_x:2 + mean(bpb_*):1e-1", runs)) == pytest.approx({"loss_x": 2.0, "bpb_code": 0.05,
                                                                              "bpb_news": 0.05})
    assert coefs(quiet("t:1", runs)) == {"t:1": 1.0}  # a column whose name ends ':1' is that column
    # the grammar before families: the same columns, coefficients and values
    assert coefs(quiet("mean(bpb_*)", runs)) == {"bpb_code": 0.5, "bpb_news": 0.5}
    assert coefs(quiet("acc_arc - 0.5*loss_x", runs, maximize=True)) == {"acc_arc": 1.0, "loss_x": -0.5}
    assert coefs(quiet("mean(bpb_*)-0.25*bpb_code", runs)) == {"bpb_code": 0.25, "bpb_news": 0.5}
    assert quiet("mean(mmlu_*, !mmlu_avg)", runs).matched == (("mmlu_*, !mmlu_avg", ("mmlu_bio", "mmlu_law")),)


def test_an_aggregate_in_a_family_is_warned_about_with_the_family_fix(runs):
    fix = r"leave it out with family\(mmlu_\*, !mmlu_avg; higher\)"
    with pytest.warns(MixplanWarning, match=r"family\(mmlu_\*; higher\) matched 'mmlu_avg', which equals the mean "
                                            r"of the other 2 .* " + fix):
        parse_objective("family(mmlu_*; higher)", runs)


@pytest.mark.parametrize("spec, message", [
    ("mean(bpb_*, !bpb_nope)", r"^target 'mean\(bpb_\*, !bpb_nope\)': mean\(bpb_\*, !bpb_nope\) drops !bpb_nope, "
                               r"which matches none of the 2 columns bpb_\* matches \(bpb_code, bpb_news\); check"),
    ("family(mmlu_*, !loss_x; higher)", r"drops !loss_x, which matches none of the 3 columns mmlu_\* matches "
                                        r"\(mmlu_bio, mmlu_law, mmlu_avg\)"),
])
def test_a_drop_that_drops_nothing_is_warned_about(runs, spec, message):
    # a warning, not an error: one spec (mean(bpb_*, !bpb_mean)) serves tables with and without the aggregate
    with pytest.warns(MixplanWarning, match=message):
        parse_objective(spec, runs)


@pytest.mark.parametrize("spec, message", [
    ("family(mmlu_*; up)", r"family\(mmlu_\*; up\) states the direction 'up'; write '; higher' or '; lower'"),
    ("bpb_code - family(mmlu_*; higher)", r"the term '-1.0\*family\(mmlu_\*; higher\)' gives family\(mmlu_\*; "
                                          r"higher\) the weight -1; a family's weight is how much it counts \(> 0\)"),
    ("family(bpb_*):0", r"gives family\(bpb_\*\) the weight 0"),
    ("family(ppl_*)", r"family\(ppl_\*\) matches no metric column of .*; metric columns are \['bpb_code'"),
    ("family(!bpb_code)", r"family\(!bpb_code\) needs at least one pattern"),
    ("family(bpb_*):1e400", r"the coefficient 1e400 of the term 'family\(bpb_\*\):1e400' is not a finite number"),
    ("famly(bpb_*)", r"cannot read the term 'famly\(bpb_\*\)'; write .*"
                     r"'family\(glob\[; higher\|lower\]\)\[:weight\]'"),
])
def test_errors_are_one_line_naming_the_term(runs, spec, message):
    with pytest.raises(ValidationError, match=message) as err:
        parse_objective(spec, runs)
    assert "\n" not in str(err.value)


def test_cli_fit_with_a_family_target(capsys, synthetic, tmp_path):
    from mixplan.cli import main

    _, path, _ = synthetic
    frame = pd.read_csv(path)
    rng = np.random.default_rng(0)
    for k in ("code", "news"):
        frame[f"bpb_{k}"] = frame["loss"] * (1 + 0.02 * rng.standard_normal(len(frame)))
    for k in ("bio", "law", "math"):  # accuracies: better where the loss is lower
        frame[f"mmlu_{k}"] = 1.0 - 0.1 * frame["loss"] + 0.01 * rng.standard_normal(len(frame))
    frame.to_csv(tmp_path / "evals.csv", index=False)
    spec = "family(mmlu_*, !mmlu_math; higher):0.5 + mean(bpb_*)"
    code = main(["fit", str(tmp_path / "evals.csv"), "--target", spec, "--model", "ridge", "--out",
                 str(tmp_path / "m")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"target {spec}: family(mmlu_*, !mmlu_math; higher) matched 2 columns: mmlu_bio, mmlu_law\n" in out
    assert "objective family(mmlu_*, !mmlu_math; higher):0.5 + mean(bpb_*): 5-fold CV" in out
    assert "warning" not in out
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())["objective"]
    assert dict(zip(meta["columns"], meta["coefficients"])) == {"mmlu_bio": -0.25, "mmlu_law": -0.25,
                                                                  "bpb_code": 0.5, "bpb_news": 0.5}
    assert meta["matched"]["family(mmlu_*, !mmlu_math; higher)"] == ["mmlu_bio", "mmlu_law"]
    code = main(["fit", str(tmp_path / "evals.csv"), "--target", "family(mmlu_*; higher", "--model",
                 "ridge", "--out", str(tmp_path / "n")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "family(mmlu_*; higher" in err


def _family_runs(synthetic, tasks=6, noise=0.05, cancelling=True):
    """The synthetic runs plus ``tasks`` accuracies: one mixture effect (through the loss) plus per-task noise,
    which cancels in the family's mean when ``cancelling`` (a task's noise is the next one's, negated)."""
    _, path, _ = synthetic
    frame = pd.read_csv(path)
    rng = np.random.default_rng(0)
    e = noise * rng.standard_normal(len(frame))
    for k in range(tasks):
        e = -e if cancelling else noise * rng.standard_normal(len(frame))
        frame[f"mmlu_t{k}"] = 1.0 - 0.1 * frame["loss"] + e
    return validate_runs(frame)


def test_a_shared_family_model_is_chosen_by_cv_and_round_trips(synthetic, tmp_path):
    from mixplan.models.mixture_model import fit_model, load_model

    runs = _family_runs(synthetic)
    obj = quiet("family(mmlu_*; higher):0.5 + loss", runs)
    model = fit_model(runs, obj, "gp", cv_folds=3, cv_repeats=1, family_model="auto")
    (fit,) = model.family_fits
    members = [f"mmlu_t{k}" for k in range(6)]
    assert fit["family"] == "family(mmlu_*; higher)" and fit["columns"] == members
    # the per-column score is that of the columns' combined out-of-fold predictions, against the family's sum
    per = fit_model(runs, obj, "gp", cv_folds=3, cv_repeats=1)
    s = sum(-0.5 / 6 * runs.metric(c) for c in members)
    oof = sum(-0.5 / 6 * t.cv.oof for t in per.targets if t.column in members)
    assert fit["per_column"]["rmse"] == pytest.approx(float(np.sqrt(np.mean((oof - s) ** 2))))
    # chosen on the evidence: the tasks' noise cancels in their mean, which one model learns far better
    assert fit["chosen"] == "shared" and fit["shared"]["rmse"] < 0.5 * fit["per_column"]["rmse"]
    assert [t.column for t in model.targets] == ["loss", "family(mmlu_*; higher)"] and model.coefficients == (1.0, 1.0)
    assert np.allclose(model.train_y, obj.values(runs))
    # the objective's own CV combines the loss's out-of-fold predictions with the shared model's
    oof_obj = model.targets[0].cv.oof + model.targets[1].cv.oof
    assert model.cv["rmse"] == pytest.approx(float(np.sqrt(np.mean((oof_obj - obj.values(runs)) ** 2))))
    assert "family(mmlu_*; higher): shared model (lower CV RMSE); CV RMSE of the family's weighted sum: per-column" \
        in model.report()
    W = runs.weights[:5]
    assert np.allclose(model.predict_mean(W), model.targets[0].regressor.predict(W) +
                       model.targets[1].regressor.predict(W))
    model.save(tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert np.allclose(back.predict_mean(W), model.predict_mean(W)) and back.family_fits == model.family_fits
    assert back.cv["rmse"] == pytest.approx(model.cv["rmse"]) and back.fit_warnings == model.fit_warnings
    # forced either way
    shared = fit_model(runs, obj, "lightgbm", cv_folds=3, cv_repeats=1, family_model="shared")
    assert [t.column for t in shared.targets] == ["loss", "family(mmlu_*; higher)"] and shared.family_fits == []
    with pytest.raises(ValidationError, match=r"family model 'joint' is not one of per-column, shared, auto"):
        fit_model(runs, obj, "lightgbm", family_model="joint")


def test_next_runs_weigh_a_shared_family_model_by_its_own_coefficient(synthetic):
    from mixplan.mixture.sequential import propose_next
    from mixplan.models.mixture_model import fit_model

    runs = _family_runs(synthetic)
    obj = quiet("family(mmlu_*; higher):0.5 + loss", runs)
    model = fit_model(runs, obj, "gp", cv_folds=3, cv_repeats=1, family_model="shared")
    pools = PoolSet(tuple(Pool(n, tokens=1e6 * (i + 1)) for i, n in enumerate(runs.pools)))
    # the objective has 7 columns, the model 2 targets: each target counts with the model's coefficient (1, 1),
    # not with an objective column's (the family's members, -0.5/6 each, have no target of their own)
    nxt = propose_next(model, pools, 3, seed=0, n_candidates=1024)
    assert nxt.weights.shape == (3, 5) and np.all(np.isfinite(nxt.acquisition)) and np.all(nxt.prediction_sd > 0)
    np.testing.assert_allclose(nxt.prediction, model.predict_mean(nxt.weights), rtol=0, atol=1e-9)
    gp_sd = [t.regressor.uncertainty_model()[0].predict_std(t.regressor.uncertainty_model()[1](nxt.weights),
                                                             noise=False) for t in model.targets]
    kappa = model.interval_scale(0.9) / 1.6448536269514722  # the calibration propose_next applies (level 0.9)
    np.testing.assert_allclose(nxt.prediction_sd, kappa * np.sqrt(gp_sd[0] ** 2 + gp_sd[1] ** 2), rtol=1e-6)


def test_cli_family_model_auto_reports_both_scores(capsys, synthetic, tmp_path):
    from mixplan.cli import main

    runs = _family_runs(synthetic, noise=0.01, cancelling=False)
    runs.frame.to_csv(tmp_path / "evals.csv", index=False)
    code = main(["fit", str(tmp_path / "evals.csv"), "--target", "family(mmlu_*; higher):0.5 + loss", "--model",
                 "ridge", "--family-model", "auto", "--out", str(tmp_path / "m"), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    (fit,) = doc["family_fits"]
    assert fit["chosen"] in ("shared", "per-column") and set(fit["shared"]) == set(fit["per_column"]) == \
        {"spearman", "pearson", "mae", "rmse"}
    assert (fit["chosen"] == "shared") == (fit["shared"]["rmse"] < fit["per_column"]["rmse"])
    columns = [t["column"] for t in doc["targets"]]
    assert columns == (["loss", "family(mmlu_*; higher)"] if fit["chosen"] == "shared"
                       else [f"mmlu_t{k}" for k in range(6)] + ["loss"])
