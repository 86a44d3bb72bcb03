"""mixplan.mixture.sequential (batch Expected Improvement) and ``mixplan design --next``."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from mixplan import Pool, PoolSet, ValidationError, build_constraints, design_swarm, fit_model, parse_objective
from mixplan.cli import main
from mixplan.mixture.plan import make_plan
from mixplan.data.runs import read_runs
from mixplan.mixture.sequential import expected_improvement, next_run_ids, propose_next
from mixplan.demo.synthetic import make_study

FAST = {"n_candidates": 2048}  # fewer candidates than the default: same code paths, faster tests


def tv(A, B):
    return 0.5 * np.abs(A[:, None, :] - B[None, :, :]).sum(axis=2)


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def fit(frame, tmp_path, model="gp", name="runs.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    runs = read_runs(path)
    return fit_model(runs, parse_objective("loss", runs), model, seed=0, cv_repeats=1)


@pytest.fixture(scope="module")
def study():
    return make_study(5, seed=1)


@pytest.fixture
def constrained():
    """Pools with a floor, a cap and an availability cap at 1e6 proxy tokens (p3: 4 x 1e5 / 1e6 = 0.4)."""
    return PoolSet((Pool("p0", tokens=1e7, min_weight=0.05), Pool("p1", tokens=1e7, max_weight=0.5),
                    Pool("p2", tokens=1e7), Pool("p3", tokens=1e5), Pool("p4", tokens=1e7)))


def test_proposals_feasible_distinct_and_deterministic(study, constrained, tmp_path):
    model = fit(study.runs(40, seed=2, noise=0.005), tmp_path)
    kw = dict(tokens=1e6, seed=3, min_distance=0.05, **FAST)
    nxt = propose_next(model, constrained, 6, **kw)
    W = nxt.weights
    assert W.shape == (6, 5) and len(nxt) == 6
    assert build_constraints(constrained, 1e6).check(W, tol=1e-9).all()  # floors, caps, availability
    assert (W[:, 0] >= 0.05 - 1e-12).all() and (W[:, 1] <= 0.5 + 1e-12).all() and (W[:, 3] <= 0.4 + 1e-12).all()
    assert np.allclose(W, np.round(W, 4), atol=1e-12)  # rounded as design_swarm rounds: scored == written
    assert tv(W, model.train_weights).min() >= 0.05
    assert (tv(W, W) + np.eye(6)).min() >= 0.05
    assert nxt.nearest_distance.min() >= 0.05
    # The batch: believing a pick only lowers the sd and the incumbent, so EI can only fall.
    assert (nxt.acquisition > 0).all() and (np.diff(nxt.acquisition) <= 1e-12).all()
    assert nxt.prediction == pytest.approx(model.predict(W).mean)
    assert (nxt.prediction_sd > 0).all()
    again = propose_next(model, constrained, 6, **kw)
    assert np.array_equal(again.weights, W) and np.array_equal(again.acquisition, nxt.acquisition)
    other = propose_next(model, constrained, 6, **(kw | {"seed": 4}))
    assert not np.array_equal(other.weights, W)
    doc = nxt.to_dict()
    json.dumps(doc)
    assert len(doc["proposals"]) == 6 and doc["incumbent_run"] in model.train_ids


def test_maximize_and_pins(study, tmp_path):
    frame = study.runs(40, seed=2, noise=0.005)
    frame["score"] = -frame["loss"]
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    runs = read_runs(path)
    pools = PoolSet.from_names(study.names)
    lo = propose_next(fit(frame, tmp_path), pools, 3, seed=0, **FAST)
    hi = propose_next(fit_model(runs, parse_objective("score", runs, maximize=True), "gp", seed=0, cv_repeats=1),
                      pools, 3, seed=0, **FAST)
    # Maximising -loss is minimising loss: the same proposals, predictions with the other sign.
    assert np.array_equal(lo.weights, hi.weights)
    assert hi.prediction == pytest.approx(-lo.prediction) and hi.acquisition == pytest.approx(lo.acquisition)
    pinned = propose_next(fit(frame, tmp_path), pools, 3, pins={"p2": 0.2}, seed=0, **FAST)
    assert np.allclose(pinned.weights[:, 2], 0.2)


def test_expected_improvement_formula():
    # gain 0, sd 1: sd * phi(0); sd 0: the gain itself (or nothing)
    assert expected_improvement(np.array([0.0]), np.array([1.0]))[0] == pytest.approx(0.3989422804)
    assert expected_improvement(np.array([0.2, -0.2]), np.zeros(2)).tolist() == [0.2, 0.0]
    assert expected_improvement(np.array([-30.0]), np.array([1.0]))[0] >= 0.0


def test_needs_a_model_with_uncertainty(study, tmp_path):
    model = fit(study.runs(40, seed=2, noise=0.005), tmp_path, model="ridge")
    with pytest.raises(ValidationError, match=r"--next needs a model with an uncertainty model \(--model auto or gp\)"):
        propose_next(model, PoolSet.from_names(study.names), 3)
    gp = fit(study.runs(40, seed=2, noise=0.005), tmp_path)
    with pytest.raises(ValidationError, match=r"the number of proposals \(--next\) must be at least 1, got 0"):
        propose_next(gp, PoolSet.from_names(study.names), 0)
    with pytest.raises(ValidationError, match="lists"):
        propose_next(gp, PoolSet.from_names(study.names[::-1]), 2)
    with pytest.raises(ValidationError, match=r"only \d+ of 40 candidate mixtures are at least 0.9"):
        propose_next(gp, PoolSet.from_names(study.names), 40, min_distance=0.9, **FAST)


def test_run_ids_continue_the_sequence():
    assert next_run_ids("next", ["syn-1", "next-007", "next-2", "nextx-99"], 3) == ["next-008", "next-009", "next-010"]
    assert next_run_ids("r", [], 2) == ["r-001", "r-002"]
    assert next_run_ids("next", ["next-998"], 2) == ["next-0999", "next-1000"]  # one width per batch
    with pytest.raises(ValidationError, match="prefix '../x' is not allowed"):
        next_run_ids("../x", [], 1)


def test_suggestions_reduce_regret_on_a_known_truth(tmp_path):
    """24 random runs, then 3 rounds of 6 suggestions: the plan's true regret falls well below the
    initial swarm's and below a random swarm of the same 42 runs, and the suggested runs themselves
    are much better than the random ones (an acquisition with the wrong sign still helps the plan a
    little - any new run teaches the model - but its runs are the worst mixtures, not the best)."""
    from scipy.optimize import minimize

    study = make_study(6, seed=3)
    cons = [{"type": "eq", "fun": lambda w: w.sum() - 1}]
    best = minimize(lambda w: study.true_objective(w)[0], study.w_star, method="SLSQP", bounds=[(0, 1)] * 6,
                    constraints=cons, options={"ftol": 1e-12, "maxiter": 500})
    f_min = float(study.true_objective(np.clip(best.x, 0, 1) / np.clip(best.x, 0, 1).sum())[0])
    pools = PoolSet.from_names(study.names)
    swarm = design_swarm(pools, 42, seed=5).frame
    cols = [f"w_{p}" for p in study.names]
    rng = np.random.default_rng(0)
    swarm["loss"] = study.true_objective(swarm[cols].to_numpy()) + 0.01 * rng.normal(size=len(swarm))

    def plan_regret(frame):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plan = make_plan(fit(frame, tmp_path), pools, seed=0, n_candidates=5000)
        return float(study.true_objective(np.array([plan.recommended[p] for p in study.names]))[0]) - f_min

    frame = swarm.iloc[:24]
    initial = plan_regret(frame)
    for r in range(3):
        nxt = propose_next(fit(frame, tmp_path), pools, 6, seed=r, **FAST)
        y = study.true_objective(nxt.weights) + 0.01 * rng.normal(size=6)
        new = nxt.frame([f"next-{r}-{i}" for i in range(6)])[["run_id", *cols]].assign(loss=y)
        frame = pd.concat([frame, new], ignore_index=True)
    sequential = plan_regret(frame)
    random = plan_regret(swarm)
    assert sequential < 0.5 * initial and sequential < random, (initial, sequential, random)
    best_suggested = study.true_objective(frame[cols].to_numpy()[24:]).min() - f_min
    best_random = study.true_objective(swarm[cols].to_numpy()).min() - f_min
    assert best_suggested < 0.5 * best_random, (best_suggested, best_random)


# ------------------------------------------------------------------------------------------------ CLI


@pytest.fixture
def files(study, tmp_path):
    frame = study.runs(40, seed=2, noise=0.005)
    frame.loc[:2, "run_id"] = ["next-004", "next-011", "next-x"]  # a previous round's ids
    runs = tmp_path / "runs.csv"
    frame.to_csv(runs, index=False)
    manifest = tmp_path / "pools.toml"
    manifest.write_text("".join(f"[pools.{n}]\ntokens = {1e6 * (i + 1)}\n" for i, n in enumerate(study.names)))
    return runs, manifest, tmp_path


def test_cli_next_writes_design_deterministically(capsys, files):
    runs, manifest, tmp = files
    args = ["design", "--pools", manifest, "--next", 4, "--runs", runs, "--target", "loss", "--model", "gp",
            "--cv-repeats", 1, "--tokens", 1e6, "--seed", 7]
    code, out, err = run_cli(capsys, *args, "--out", tmp / "a")
    assert code == 0, err
    assert "4 proposals written" in out and "expected improvement" in out
    mix = pd.read_csv(tmp / "a" / "mixtures.csv")
    assert mix["run_id"].tolist() == ["next-012", "next-013", "next-014", "next-015"]  # after next-011
    assert list(mix.columns) == ["run_id", *[f"w_p{i}" for i in range(5)], "tokens", "expected_improvement",
                                 "prediction", "prediction_sd"]
    assert np.allclose(mix.filter(like="w_").sum(axis=1), 1, atol=1e-9)
    import yaml

    assert sorted(p.name for p in (tmp / "a" / "runs").iterdir()) == [f"{r}.yaml" for r in mix["run_id"]]
    cfg = yaml.safe_load((tmp / "a" / "runs" / "next-012.yaml").read_text())
    assert cfg["tokens"] == 1e6 and cfg["weights"]["p1"] == pytest.approx(mix["w_p1"][0])
    code, out, _ = run_cli(capsys, *args, "--out", tmp / "b", "--json")
    doc = json.loads(out)
    assert [p["run_id"] for p in doc["proposals"]] == mix["run_id"].tolist() and doc["model"] == "gp"
    for name in ["mixtures.csv", *(f"runs/{r}.yaml" for r in mix["run_id"])]:
        assert (tmp / "a" / name).read_bytes() == (tmp / "b" / name).read_bytes()
    # --where leaves next-011 out of the fit, but its id is still taken: numbering goes on after it
    frame = pd.read_csv(runs).assign(split=lambda f: np.where(f["run_id"] == "next-011", "test", "train"))
    frame.to_csv(tmp / "split.csv", index=False)
    where = [a if a != runs else tmp / "split.csv" for a in args]
    code, out, err = run_cli(capsys, *where, "--where", "split=train", "--out", tmp / "c", "--json")
    assert code == 0, err
    assert [p["run_id"] for p in json.loads(out)["proposals"]][0] == "next-012"


@pytest.mark.parametrize("argv, message", [
    (["--out", "{tmp}/d"], "give exactly one of --n N"),
    (["--n", "4", "--next", "2", "--out", "{tmp}/d"], "give exactly one of --n N"),
    (["--next", "0", "--runs", "{runs}", "--target", "loss", "--out", "{tmp}/d"],
     "argument --next: 0 is not an integer in [1, 10000]"),
    (["--next", "2", "--target", "loss", "--out", "{tmp}/d"], "--next needs --runs RUNS"),
    (["--next", "2", "--runs", "{runs}", "--out", "{tmp}/d"], "--next needs --target SPEC"),
    (["--n", "4", "--target", "loss", "--model", "gp", "--out", "{tmp}/d"],
     "--target, --model only apply to --next K"),
    (["--next", "2", "--runs", "{runs}", "--target", "loss", "--model", "ridge", "--out", "{tmp}/d"],
     "--next needs a model with an uncertainty model (--model auto or gp)"),
    (["--next", "2", "--runs", "{runs}", "--target", "nope", "--out", "{tmp}/d"], "no column 'nope'"),
    (["--next", "2", "--runs", "{runs}", "--target", "loss", "--pin", "p0=2", "--out", "{tmp}/d"],
     "pinned weight of 'p0' is 2.0"),
    (["--next", "2", "--runs", "{runs}", "--target", "loss", "--prefix", "a/b", "--out", "{tmp}/d"],
     "prefix 'a/b' is not allowed"),
    (["--next", "x", "--out", "{tmp}/d"], "argument --next: 'x' is not an integer in [1, 10000]"),
])
def test_cli_errors_are_one_line_exit_2(capsys, files, argv, message):
    runs, manifest, tmp = files
    argv = ["design", "--pools", str(manifest)] + [a.format(tmp=tmp, runs=runs) for a in argv]
    code, out, err = run_cli(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("mixplan") and message in lines[0], err
    assert not (tmp / "d").exists()


def test_cli_next_proposes_repetition_matched_runs_where_the_target_is_unsure(capsys, files):
    """design --next K --match-budget T: proposals for pools subsampled to D/T, chosen by the expected
    improvement of the repetition-aware objective at T (the small pools repeat there), without epoch caps."""
    from mixplan.data.pools import load_pools
    from mixplan.mixture.repetition import RepetitionModel, effective_mixture

    runs, manifest, tmp = files
    args = ["design", "--pools", manifest, "--next", 3, "--runs", runs, "--target", "loss", "--model", "gp",
            "--cv-repeats", 1, "--tokens", 1e6, "--seed", 7, "--match-budget", 2e7]
    code, out, err = run_cli(capsys, *args, "--out", tmp / "m", "--json")
    assert code == 0, err
    doc = json.loads(out)
    mix = pd.read_csv(tmp / "m" / "mixtures.csv")
    pools = load_pools(manifest)
    assert set(mix["subsample_fraction"]) == {1e6 / 2e7}
    U = mix[[f"unique_tokens_{p}" for p in pools.names]].to_numpy()
    assert np.allclose(U, pools.tokens / 20)
    W = mix[[f"w_{p}" for p in pools.names]].to_numpy()
    # the runs read the pools as the big run would: p0 (1e6 tokens) up to 20x its weight
    assert np.allclose(W * 1e6 / U, W * 2e7 / pools.tokens)
    assert doc["settings"]["match_budget"] == 2e7
    # the prediction is the repetition-aware objective at T (default R*, no log-data term)
    from mixplan import fit_model, parse_objective, read_runs

    table = read_runs(runs, pools)
    model = fit_model(table, parse_objective("loss", table), "gp", seed=7, cv_repeats=1)
    rep = RepetitionModel(r_star=15.39, gamma=0.0)
    want = model.predict_mean(effective_mixture(W, 2e7, pools.tokens, rep.r_star)[0])
    assert mix["prediction"].to_numpy() == pytest.approx(want, abs=0.02)
    cfg = (tmp / "m" / "runs" / f"{mix['run_id'][0]}.yaml").read_text()
    assert "subsample:" in cfg and "blake2b" in cfg
    code, out, err = run_cli(capsys, *[a for a in args if a not in ("--tokens", 1e6)], "--out", tmp / "x")
    assert code == 2 and "--match-budget needs --tokens" in err
