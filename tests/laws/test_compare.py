"""mixplan compare (issue 24, item 4): a law per group, P(better) at a target scale, crossings, ranking flips."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixplan.cli.main import main
from mixplan.exceptions import ExtrapolationWarning, MixplanWarning, ValidationError
from mixplan.laws import chinchilla_loss
from mixplan.laws.compare import compare_groups, crossings, p_better, p_better_run, run_noise

# Known truth: "a" learns faster at small N (smaller A), "b" has the lower floor E. Along D = 20 N the gap
# is (A_b - A_a) / N^alpha - (E_a - E_b) (the data terms are equal), zero at N* = (400 / 0.3)^(1 / 0.34).
TRUE = {"a": dict(A=200.0, B=410.0, E=2.0, alpha=0.34, beta=0.28),
        "b": dict(A=600.0, B=410.0, E=1.7, alpha=0.34, beta=0.28)}
CROSSING = (400 / 0.3) ** (1 / 0.34)  # 1.55e9
N_RUNS = np.repeat([1e7, 2e7, 4e7, 8e7, 1.6e8], 4)
D_RUNS = N_RUNS * np.tile([10, 20, 40, 80], 5)


def synthetic(noise: float = 0.002, seed: int = 0, groups=("a", "b")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for g in groups:
        loss = chinchilla_loss(N_RUNS, D_RUNS, **TRUE[g]) * np.exp(noise * rng.normal(size=len(N_RUNS)))
        rows += [{"dataset": g, "params": n, "tokens": d, "loss": v} for n, d, v in zip(N_RUNS, D_RUNS, loss)]
    return pd.DataFrame(rows)


def compare(frame: pd.DataFrame, **options):
    options = {"n_bootstrap": 40, "by": "dataset"} | options
    return compare_groups({"params": frame.params.to_numpy(), "tokens": frame.tokens.to_numpy()},
                          frame.loss.to_numpy(), frame.dataset.to_numpy(), **options)


@pytest.mark.slow  # two fits with 30 refits each: ~3 s
def test_crossing_interval_covers_the_true_crossing_and_p_better_is_right_on_each_side():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # rows with independent noise, no run's noise shared by several (run_sd=0: the row bootstrap alone)
        far = compare(synthetic(), params=3e10, tokens=6e11, n_bootstrap=30, run_sd=0.0)
    pair = far.pairs[0]
    assert (pair["better"], pair["other"]) == ("b", "a") and pair["p_better"] > 0.9
    [cross] = pair["crossings"]
    lo, hi = cross["interval"]
    assert lo <= CROSSING <= hi and hi / lo < 10, cross
    assert cross["params"] == pytest.approx(CROSSING, rel=0.5) and cross["better_after"] == "b"
    assert pair["refits_crossing"] > 0.9
    # Measured at 1.6e8, a is ahead there: the decision at the largest measured scale is the wrong one.
    assert pair["better_largest"] == "a" and pair["flips_largest"]
    flips = [str(w.message) for w in caught if "ranking at the largest measured scale" in str(w.message)]
    assert len(flips) == 1 and issubclass(caught[0].category, MixplanWarning)
    extrapolated = [w for w in caught if w.category is ExtrapolationWarning]
    assert any("N = 3e+10 is 188x the largest fitted N" in str(w.message) for w in extrapolated)
    assert far.groups[0]["prediction"]["extrapolation"]  # each prediction says how far beyond it lies
    assert far.ranking == ["b", "a"]


def test_before_the_crossing_the_early_leader_is_sure_and_nothing_is_warned():
    # Before the crossing (inside the runs' range) a is better, and sure of it; no flip, so no warning.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        near = compare(synthetic(), params=1e8, tokens=2e9, n_bootstrap=20)
    assert (near.pairs[0]["better"], near.pairs[0]["p_better"] > 0.9) == ("a", True)
    assert not near.pairs[0]["flips_largest"]
    assert not [w for w in caught if "ranking" in str(w.message)]
    assert not [w for w in caught if w.category is ExtrapolationWarning]


def test_compute_target_puts_each_group_at_its_own_optimum_and_the_result_is_json_ready():
    result = compare(synthetic(), flops=1e21, n_bootstrap=10)
    shapes = {(g["params"], g["tokens"]) for g in result.groups}
    assert len(shapes) == 2  # the two laws split C differently
    for g in result.groups:
        assert 6 * g["params"] * g["tokens"] == pytest.approx(1e21, rel=1e-9)
    doc = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert doc["scale"]["allocation"] == "compute-optimal per group" and doc["ranking"] == result.ranking
    assert "2 groups by 'dataset'" in result.report()


def same_law_runs(run_noise_sd: float, groups: int = 6, seed: int = 0) -> pd.DataFrame:
    """Groups with one and the same law: each size one run, its 4 checkpoints sharing the run's offset (sd
    ``run_noise_sd`` in log-loss) besides a small own noise -- rows a bootstrap over rows treats as independent."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(groups):
        for n in np.unique(N_RUNS):
            offset = run_noise_sd * rng.normal()
            for d in n * np.array([10, 20, 40, 80]):
                rows.append({"dataset": f"g{g}", "params": n, "tokens": d,
                             "loss": chinchilla_loss(n, d, **TRUE["a"]) * np.exp(offset + 0.0005 * rng.normal())})
    return pd.DataFrame(rows)


@pytest.mark.slow  # twelve fits with 40 refits each: ~10 s
def test_runs_noise_is_measured_one_size_out_and_keeps_p_better_from_calling_ties():
    # Known truth: every group has the same law, so no pair has a better one; each run (a size's 4
    # checkpoints) is off it by sd 0.01. Resampling rows alone, refits agree too well and P(better) calls
    # most pairs; with the runs' noise measured one size out and carried by every refit, it rarely does.
    frame = same_law_runs(0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = compare(frame, params=3.2e8, tokens=6.4e9)
        rows_only = compare(frame, params=3.2e8, tokens=6.4e9, run_sd=0.0)
    noise = result.run_noise
    assert 0.005 < noise["sd_log"] < 0.05 and noise["groups"] == 6 and not noise["given"], noise
    sure = sum(q["p_better"] >= 0.9 for q in result.pairs)
    assert sure <= 2 and sum(q["p_better"] >= 0.9 for q in rows_only.pairs) >= 5, sure
    assert sum(q["p_run"] >= 0.9 for q in result.pairs) <= sure
    assert "one run's noise: sd" in result.report() and "measured one size out" in result.report()
    assert "P(run)" in result.report() and "sd 0 in log-loss, given" in rows_only.report()
    with pytest.raises(ValidationError, match=r"one run's noise \(--run-noise\): -1.0 must be >= 0 \(sd in log-loss\)"):
        compare(frame, params=3.2e8, run_sd=-1.0, n_bootstrap=0)


def test_pure_helpers():
    x = np.geomspace(1, 1e4, 5)
    gap = np.array([[1.0, 0.5, -0.5, -1.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    c = crossings(x, gap)
    assert np.isnan(c[1]).all() and np.isfinite(c[0]).sum() == 2
    assert c[0, 1] == pytest.approx(np.sqrt(10 * 100))  # halfway in log N between 10 and 100
    a = np.log(np.array([[1.0], [2.0], [3.0], [4.0]]))
    b = np.log(np.array([[2.0], [2.0], [1.0]]))  # one refit fewer: paired on the first three
    assert p_better(a, b)[0] == pytest.approx((1 + 0.5 + 0) / 3)
    # One refit, a 0.01 lower in log-loss, each run off by sd 0.01 / sqrt 2: the gap's sd is 0.01, P = Phi(1).
    assert p_better_run(np.array([[0.0]]), np.array([[0.01]]), 0.01 / np.sqrt(2))[0] == pytest.approx(0.841345, 1e-5)
    assert p_better_run(np.array([[0.0], [np.nan]]), np.array([[0.01], [0.0]]), 0.01)[0] == pytest.approx(
        0.5 * 0.760250, 1e-5)  # a lost refit counts as not better, as in p_better
    assert run_noise({"x": 0.01, "y": -0.01, "z": 0.0, "w": float("nan")}) == pytest.approx(0.01)  # sd, ddof 1
    assert run_noise({"x": 0.01}) is None


def test_run_noise_moves_a_runs_rows_together_in_the_refits():
    # A constant law fitted to 2 runs x 3 rows of log-loss 0: resampling rows alone gives refits of 0; an offset
    # of sd 0.1 per run gives refits spread as the mean of the runs' offsets over the resample (about 0.1^2 / 2),
    # where an offset per row would give 0.1^2 / 6.
    from mixplan.laws.fitting import Law, bootstrap_refits

    law = Law(name="constant", theta_names=("c",), log_predict=lambda t, d: np.asarray(t)[0] + 0 * d["x"],
              named=lambda t: {"c": float(np.asarray(t)[0])}, bounds=((-5.0, 5.0),), grid=((0.0,),), columns=("x",))
    data, y, runs = {"x": np.arange(6.0)}, np.zeros(6), np.array([0, 0, 0, 1, 1, 1])

    def boot(**noise):
        return np.array(bootstrap_refits(law, np.array([0.0]), data, y, delta=10.0, n_bootstrap=400, seed=3,
                                         runs=runs, **noise)[0])[:, 0]

    assert np.all(boot(run_sd=0.0) == 0.0)
    spread = boot(run_sd=0.1, noise_seed=[3, 7])
    assert 0.0035 < spread.var() < 0.0075, spread.var()
    assert np.array_equal(spread, boot(run_sd=0.1, noise_seed=[3, 7]))  # deterministic
    assert not np.array_equal(spread, boot(run_sd=0.1, noise_seed=[3, 8]))  # another group: other noise


def test_without_refits_nothing_is_called_sure():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = compare(synthetic(), params=1e8, n_bootstrap=0, run_sd=0.0)
        noisy = compare(synthetic(), params=1e8, n_bootstrap=0, run_sd=0.01)
    assert plain.pairs[0]["p_better"] is None and plain.pairs[0]["p_run"] is None
    # with a given noise, P(run) rests on the fits and the runs' noise alone
    assert noisy.pairs[0]["p_better"] is None and 0.5 <= noisy.pairs[0]["p_run"] <= 1.0


def test_errors_name_the_group_and_what_to_do():
    frame = synthetic()
    with pytest.raises(ValidationError, match="names 1 group .a.; a comparison needs two or more"):
        compare(frame[frame.dataset == "a"], params=1e9)
    few = pd.concat([frame[frame.dataset == "a"], frame[frame.dataset == "b"].head(3)])
    with pytest.raises(ValidationError, match=r"runs \(dataset = b\): 3 points are too few"):
        compare(few, params=1e9)
    with pytest.raises(ValidationError, match="no target scale"):
        compare(frame)


# -- the command line --------------------------------------------------------------------------------------------

def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_and_out(capsys, tmp_path):
    runs = tmp_path / "runs.csv"
    synthetic().to_csv(runs, index=False)
    out = tmp_path / "cmp.json"
    with pytest.warns(MixplanWarning, match="the ranking at the largest measured scale"):
        code, stdout, err = run(capsys, "compare", runs, "--by", "dataset", "--params", "3e10", "--tokens", "6e11",
                                "--bootstrap", "10", "--json", "--out", out)
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["ranking"] == ["b", "a"] and doc["pairs"][0]["better"] == "b"
    assert doc["pairs"][0]["crossings"] and doc["measured"]["largest"]["params"] == 1.6e8
    assert json.loads(out.read_text())["ranking"] == ["b", "a"]
    noise = doc["run_noise"]
    assert noise["groups"] == 2 and noise["sd_log"] > 0 and not noise["given"], noise  # measured one size out
    # every row its own run, with a given noise: the refits carry it and the report says it was given
    frame = synthetic().assign(run=lambda f: np.arange(len(f)))
    frame.to_csv(runs, index=False)
    code, stdout, err = run(capsys, "compare", runs, "--by", "dataset", "--params", "1e8", "--bootstrap", "5",
                            "--run-column", "run", "--run-noise", "0.01")
    assert code == 0 and "one run's noise: sd 0.01 in log-loss, given" in stdout, err


def test_cli_text_with_params_alone_uses_the_path_ratio(capsys, tmp_path):
    runs = tmp_path / "runs.csv"
    synthetic().to_csv(runs, index=False)
    code, stdout, err = run(capsys, "compare", runs, "--by", "dataset", "--params", "1e8", "--bootstrap", "0",
                            "--tokens-per-param", "runs")
    assert code == 0, err
    assert "target: params 1e+08, tokens 2.828e+09" in stdout  # the runs' geometric-mean ratio, 28.3
    assert "pairs at the target" in stdout and " n/a " in stdout  # no refits, no P(better)


@pytest.mark.parametrize("args, message", [
    (["--by", "nope", "--params", "1e9"], "no column 'nope' to group the runs by (--by)"),
    (["--by", "dataset"], "no target scale: give --params N (and --tokens D), or --flops C"),
    (["--by", "dataset", "--params", "1e9", "--flops", "1e20"], "not both"),
    (["--by", "dataset", "--params", "1e9", "--law", "data-constrained"], "needs the column unique_tokens"),
    (["--by", "dataset", "--params", "1e9", "--where", "dataset=a"], "a comparison needs two or more"),
    (["--by", "dataset", "--params", "1e9", "--tokens-per-param", "abc"], "--tokens-per-param: 'abc'"),
    (["--by", "dataset", "--params", "1e9", "--target", "nope"], "no column 'nope'"),
    (["--by", "dataset", "--params", "1e9", "--run-column", "seed"], "no column 'seed' naming the runs"),
    (["--by", "dataset", "--params", "1e9", "--run-noise", "-0.1"], "--run-noise"),
])
def test_cli_errors_are_one_line(capsys, tmp_path, args, message):
    runs = tmp_path / "runs.csv"
    synthetic().to_csv(runs, index=False)
    code, out, err = run(capsys, "compare", runs, *args, "--bootstrap", "2")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("mixplan: error: ") and message in lines[0], err


def test_cli_text_cell_and_missing_group_name_the_row(capsys, tmp_path):
    frame = synthetic()
    frame["loss"] = frame["loss"].astype(object)
    frame.loc[5, "loss"] = "n/a"
    runs = tmp_path / "runs.csv"
    frame.to_csv(runs, index=False)
    code, out, err = run(capsys, "compare", runs, "--by", "dataset", "--params", "1e9", "--bootstrap", "2")
    assert code == 2 and err.count("\n") == 1 and "dataset = a" in err and "row 6" in err, err
    frame = synthetic()
    frame.loc[3, "dataset"] = None
    frame.to_csv(runs, index=False)
    code, out, err = run(capsys, "compare", runs, "--by", "dataset", "--params", "1e9", "--bootstrap", "2")
    assert code == 2 and "row 4 has no 'dataset' value" in err, err


# -- Shukor et al.'s SlimPajama mixtures (issue 24's acceptance, reduced; the full check is
#    tests/benchmarks/compare_dmsl.py) ----------------------------------------------------------------------

@pytest.mark.slow  # four mixtures' fits: ~10 s
def test_dmsl_pairs_sure_at_937m_are_confirmed(anchors):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        from compare_dmsl import check, load
    finally:
        sys.path.pop(0)
    # The first 4 mixtures (by id). On all 40 (the benchmark, 200 refits) the 937M runs confirm all 337 pairs with
    # P(better) >= 0.9 (resampling rows alone, without the runs' noise: 500 of 506).
    df, col = load(anchors / "dmsl" / "dmsl_llm_slimpajama_fit.csv", mixtures=4)
    r = check(df, col, n_bootstrap=30)
    assert r["mixtures"] == 4 and r["pairs"] == 6 and r["mre_937"] < 0.03
    assert r["sure"] >= 3, r  # the test says something only if some pairs are sure
    assert r["sure_confirmed"] == r["sure"], r["sure_wrong"]
    assert r["run_noise"]["groups"] == 4 and 0 < r["run_noise"]["sd_log"] < 0.02, r["run_noise"]
