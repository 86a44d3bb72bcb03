"""`mixplan laws fit` and `mixplan budget`: outputs, the budget a fit buys, one-line errors."""

import numpy as np
import pandas as pd
import pytest

from mixplan.laws import (DATABLATIONS, PUBLISHED, chinchilla_loss, effective_data)
from mixplan.laws.hyperparameters import step_law


def _run(capsys, *argv):
    from mixplan.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_laws_fit_cli_writes_the_fit_and_budget_uses_it(anchors, tmp_path, capsys):
    import json

    pts = pd.read_csv(anchors / "chinchilla" / "chinchilla_fig4_svg_points.csv")
    pts = pts.rename(columns={"N_params": "params", "D_tokens": "tokens"})
    pts.to_csv(tmp_path / "runs.csv", index=False)
    code, out, _ = _run(capsys, "laws", "fit", tmp_path / "runs.csv", "--law", "chinchilla", "--target", "loss",
                        "--where", "epoch_excluded_outlier=False", "--bootstrap", "30", "--out", tmp_path / "fit.json")
    assert code == 0 and "95% bootstrap interval" in out
    fit = json.loads((tmp_path / "fit.json").read_text())
    assert fit["law"] == "chinchilla" and fit["n_points"] == 240 and set(fit["params"]) == {"A", "B", "E", "alpha", "beta"}
    assert fit["params"]["E"] == pytest.approx(1.817, rel=0.01) and len(fit["bootstrap"]) == 30
    assert set(fit["intervals"]) == set(fit["params"]) and isinstance(fit["warnings"], list)
    code, out, _ = _run(capsys, "budget", "--flops", 1e22, "--law", tmp_path / "fit.json", "--json")
    doc = json.loads(out)
    assert {"params", "tokens", "loss", "learning_rate", "batch_size", "pools"} <= set(doc)
    assert doc["loss_interval"]["lower"] < doc["loss"] < doc["loss_interval"]["upper"]
    assert 6 * doc["params"] * doc["tokens"] == pytest.approx(1e22)
    lr, bs = step_law(doc["params"], doc["tokens"])
    assert doc["learning_rate"] == pytest.approx(float(lr)) and doc["batch_size"] == pytest.approx(float(bs))
    code, out, _ = _run(capsys, "laws", "fit", tmp_path / "runs.csv", "--law", "chinchilla", "--target", "loss",
                        "--out", tmp_path / "fit.json")
    assert code == 2  # exists: refused without --force


def test_budget_with_unique_tokens_and_pools(tmp_path, capsys):
    import json

    code, out, _ = _run(capsys, "budget", "--flops", 1e22, "--unique-tokens", 25e9, "--law", "datablations", "--json")
    doc = json.loads(out)  # the README's optimal_allocation(1e22, 25e9)
    assert doc["params"] == pytest.approx(7022364735.879969) and doc["tokens"] == pytest.approx(237336955477.55075)
    assert doc["loss"] == pytest.approx(2.222129283251274) and doc["loss_interval"]["lower"] is None
    (tmp_path / "p.toml").write_text("[pools.web]\ntokens = 2e11\n[pools.code]\ntokens = 3e10\n")
    code, out, _ = _run(capsys, "budget", "--flops", 1e22, "--tokens", 2e11, "--pools", tmp_path / "p.toml",
                        "--mixture", "web=0.7", "--mixture", "code=0.3", "--json")
    pools = {p["pool"]: p for p in json.loads(out)["pools"]}
    assert pools["code"]["epochs"] == pytest.approx(2.0) and pools["web"]["epochs"] == pytest.approx(0.7)
    assert pools["web"]["discount"] == 1.0
    assert pools["code"]["discount"] == pytest.approx(float(effective_data(6e10, 3e10, DATABLATIONS["R_D_star"])) / 6e10)


def test_budget_refuses_to_mix_units(tmp_path, capsys):
    """Compute laws count a model's tokens: pools counted in bytes need the bytes per token, and their
    epochs then follow from the budget times that ratio."""
    import json

    body = "[pools.web]\ntokens = 8e11\n[pools.code]\ntokens = 1.2e11\n"
    (tmp_path / "bytes.toml").write_text('[study]\ntoken_unit = "bytes"\n' + body)
    (tmp_path / "bpe.toml").write_text('[study]\ntoken_unit = "tokenizer:tokenizer.json"\n' + body)
    argv = ("budget", "--flops", 1e22, "--tokens", 2e11, "--mixture", "web=0.7", "--mixture", "code=0.3", "--json")
    code, _, err = _run(capsys, *argv, "--pools", tmp_path / "bytes.toml")
    assert code == 2 and "the pool manifest counts bytes" in err and "--units-per-token" in err
    assert len(err.strip().splitlines()) == 1
    code, out, _ = _run(capsys, *argv, "--pools", tmp_path / "bytes.toml", "--units-per-token", 4)
    doc = json.loads(out)
    pools = {p["pool"]: p for p in doc["pools"]}
    assert doc["pool_budget"] == pytest.approx(8e11) and doc["pool_unit"] == "bytes"
    assert pools["code"]["epochs"] == pytest.approx(2.0) and pools["web"]["epochs"] == pytest.approx(0.7)
    assert doc["tokens"] == pytest.approx(2e11)  # the run shape itself stays in tokens
    code, out, _ = _run(capsys, *argv, "--pools", tmp_path / "bpe.toml")  # a tokenizer's tokens: no conversion
    assert code == 0 and {p["pool"]: p for p in json.loads(out)["pools"]}["code"]["epochs"] == pytest.approx(0.5)
    code, _, err = _run(capsys, *argv, "--pools", tmp_path / "bpe.toml", "--units-per-token", 4)
    assert code == 2 and "drop --units-per-token" in err


@pytest.mark.parametrize("argv, message", [
    (["budget", "--flops", "-1"], "argument --flops: -1 is not a number > 0"),
    (["budget", "--flops", "1e22", "--params", "1e9", "--tokens", "1e9"], "give --params or --tokens, not both"),
    (["budget", "--flops", "1e22", "--law", "kaplan"], "no such file"),
    (["budget", "--flops", "1e22", "--mixture", "a=1"], "--mixture needs --pools"),
    (["budget", "--flops", "1e22", "--units-per-token", "4"], "--units-per-token goes with --pools"),
])
def test_budget_errors_are_one_line(capsys, argv, message):
    code, out, err = _run(capsys, *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_laws_fit_cli_names_the_bad_row(tmp_path, capsys):
    N = np.repeat(np.logspace(7.5, 9.5, 3), 8)
    D = np.tile(np.logspace(9, 11.5, 8), 3)
    L = chinchilla_loss(N, D, **PUBLISHED["hoffmann"])
    frame = pd.DataFrame({"params": N, "tokens": D, "loss": L})
    frame.loc[4, "loss"] = -2.0
    frame.to_csv(tmp_path / "r.csv", index=False)
    code, _, err = _run(capsys, "laws", "fit", tmp_path / "r.csv", "--law", "chinchilla", "--target", "loss")
    assert code == 2 and "r.csv: the loss in row 5 is -2.0; losses must be positive" in err
    code, _, err = _run(capsys, "laws", "fit", tmp_path / "r.csv", "--law", "chinchilla", "--target", "bpb")
    assert code == 2 and "no column 'bpb'" in err


def test_laws_fit_cli_qqt_with_fixed_parameters(tmp_path, capsys):
    import json

    from mixplan.laws import QQT_PUBLISHED, qqt_error

    pool = QQT_PUBLISHED["tmars_imagenet1k_utility"]["pools"]["tmars_top0to10p"]
    S = 12_800_000
    n = np.repeat(np.array([2, 4, 6, 8, 10]) * S, 2)
    y = qqt_error(n, S, 0.025, pool["b"], pool["tau"], 0.1)
    pd.DataFrame({"tokens": n, "unique_tokens": S, "error": y}).to_csv(tmp_path / "q.csv", index=False)
    code, out, err = _run(capsys, "laws", "fit", tmp_path / "q.csv", "--law", "qqt", "--target", "error",
                          "--fix", "a=0.025", "--fix", "d=0.1", "--bootstrap", "5", "--json")
    assert code == 0, err
    fit = json.loads(out)
    assert fit["params"]["b"] == pytest.approx(pool["b"], rel=1e-4) and fit["params"]["tau"] == pytest.approx(
        pool["tau"], rel=1e-3)
    assert sorted(fit["fixed"]) == ["a", "d"]
    code, _, err = _run(capsys, "laws", "fit", tmp_path / "q.csv", "--law", "qqt", "--target", "error", "--fix", "k=1")
    assert code == 2 and "the qqt law's parameters are a, b, tau, d" in err


def test_laws_fit_target_is_an_objective_spec(tmp_path, capsys):
    # --target means the same on every command: a column, or a weighted sum / mean of columns.
    import json

    N = np.repeat(np.logspace(7.5, 9.5, 3), 8)
    D = np.tile(np.logspace(9, 11.5, 8), 3)
    L = chinchilla_loss(N, D, **PUBLISHED["hoffmann"])
    frame = pd.DataFrame({"params": N, "tokens": D, "loss_a": 0.9 * L, "loss_b": 1.1 * L, "loss": L})
    frame.to_csv(tmp_path / "r.csv", index=False)
    fits = {}
    for target in ("loss", "mean(loss_*)", "0.5*loss_a + 0.5*loss_b"):
        code, out, err = _run(capsys, "laws", "fit", tmp_path / "r.csv", "--law", "chinchilla", "--target", target,
                              "--bootstrap", "0", "--json")
        assert code == 0, err
        fits[target] = json.loads(out)
        assert fits[target]["target"] == target
    for target in ("mean(loss_*)", "0.5*loss_a + 0.5*loss_b"):
        assert fits[target]["params"] == pytest.approx(fits["loss"]["params"], rel=1e-6)
    code, _, err = _run(capsys, "laws", "fit", tmp_path / "r.csv", "--law", "chinchilla", "--target", "mean(bpb_*)")
    assert code == 2 and "mean(bpb_*) matches no metric column" in err


# Issue 23: laws fit and budget say what the runs support.

def _grid_runs(path, loss=None, **law):
    """24 runs on a 3 x 8 grid of (params, tokens), noise-free losses from Chinchilla's law (``law``)."""
    N = np.repeat(np.logspace(7.5, 9.5, 3), 8)
    D = np.tile(np.logspace(9, 11.5, 8), 3)
    frame = pd.DataFrame({"params": N, "tokens": D,
                          "loss": chinchilla_loss(N, D, **(law or PUBLISHED["hoffmann"])) if loss is None else loss})
    frame.to_csv(path, index=False)
    return frame


@pytest.mark.parametrize("column, cell, message", [
    ("loss", "oops", "r.csv: column 'loss', row 4: 'oops' is not a number; fix that cell or leave the row out"),
    ("params", "1B", "r.csv: column 'params', row 4: '1B' is not a number"),
    ("tokens", "lots", "r.csv: column 'tokens', row 4: 'lots' is not a number"),
])
def test_laws_fit_names_the_text_cell_in_a_numeric_column(tmp_path, capsys, column, cell, message):
    frame = _grid_runs(tmp_path / "r.csv")
    frame[column] = frame[column].astype(object)
    frame.loc[3, column] = cell
    frame.to_csv(tmp_path / "r.csv", index=False)
    code, out, err = _run(capsys, "laws", "fit", tmp_path / "r.csv", "--law", "chinchilla", "--target", "loss")
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1, err


def test_laws_fit_refuses_copies_of_too_few_points(tmp_path, capsys):
    # 20 copies of one run used to report "converged" with zero-width intervals.
    pd.DataFrame({"params": [1e8] * 20, "tokens": [1e10] * 20, "loss": [3.0] * 20}).to_csv(tmp_path / "r.csv",
                                                                                       index=False)
    code, out, err = _run(capsys, "laws", "fit", tmp_path / "r.csv", "--law", "chinchilla", "--target", "loss")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert ("r.csv: the 20 runs hold 1 distinct (params, tokens) point; the chinchilla law's 5 parameters need at "
            "least 5 distinct points") in err


def test_laws_fit_on_a_degenerate_design_does_not_say_converged(tmp_path, capsys):
    # Every run at one token count: E, B and beta trade off exactly; the fit is a minimum, not an answer.
    import json

    N = np.logspace(7, 9.5, 20)
    L = chinchilla_loss(N, 1e10, **PUBLISHED["hoffmann"]) * np.exp(0.005 * np.random.default_rng(1).normal(size=20))
    pd.DataFrame({"params": N, "tokens": 1e10, "loss": L}).to_csv(tmp_path / "r.csv", index=False)
    argv = ("laws", "fit", tmp_path / "r.csv", "--law", "chinchilla", "--target", "loss", "--bootstrap", "0")
    code, out, _ = _run(capsys, *argv)
    header = out.splitlines()[0]
    assert code == 0 and "converged" not in header and "the runs do NOT identify the parameters" in header, header
    assert ("warning: not identifiable from these runs: they leave B (b = log B), E (e = log E), beta free (every "
            "run has tokens = 1e+10") in out
    code, out, _ = _run(capsys, *argv, "--json")
    assert json.loads(out)["identified"] is False and json.loads(out)["converged"] is True


def test_laws_fit_bound_warning_names_the_parameter_as_the_table_does(tmp_path, capsys):
    # No irreducible loss (E = 0): e = log E runs to its lower bound -5, which the table prints as E.
    _grid_runs(tmp_path / "r.csv", A=400.0, B=400.0, E=0.0, alpha=0.34, beta=0.28)
    code, out, _ = _run(capsys, "laws", "fit", tmp_path / "r.csv", "--law", "chinchilla", "--target", "loss",
                        "--bootstrap", "0")
    row = next(line.split() for line in out.splitlines() if line.split()[:1] == ["E"])
    assert code == 0 and row[1] == "0.00673795"
    assert f"warning: parameter E = {row[1]} (e = log E = -5) is at its lower bound" in out, out
    assert "parameter e " not in out and "(none: no bootstrap refits)" in out


def test_budget_says_how_far_it_extrapolates_a_fit(tmp_path, capsys):
    import json

    rng = np.random.default_rng(0)
    N = np.repeat(np.geomspace(2.6e5, 4e6, 4), 6)
    D = np.tile(np.geomspace(1e7, 1e9, 6), 4)
    L = chinchilla_loss(N, D, **PUBLISHED["epoch"]) * np.exp(0.01 * rng.normal(size=len(N)))
    pd.DataFrame({"params": N, "tokens": D, "loss": L}).to_csv(tmp_path / "r.csv", index=False)
    fit_path = tmp_path / "fit.json"
    code, out, err = _run(capsys, "laws", "fit", tmp_path / "r.csv", "--law", "chinchilla", "--target", "loss",
                          "--bootstrap", "0", "--out", fit_path)
    assert code == 0, err
    assert "runs span params [2.6e+05, 4e+06], tokens [1e+07, 1e+09]" in out
    fitted = json.loads(fit_path.read_text())
    assert fitted["fitted_range"]["params"] == pytest.approx([2.6e5, 4e6])
    assert fitted["fitted_range"]["params_x_tokens"] == pytest.approx([2.6e12, 4e15])
    code, out, err = _run(capsys, "budget", "--flops", 1e22, "--law", fit_path)
    assert code == 0 and err == ""
    shape = json.loads(_run(capsys, "budget", "--flops", 1e22, "--law", fit_path, "--json")[1])
    N_big, D_big = shape["params"], shape["tokens"]
    assert (f"warning: extrapolation: N = {N_big:.3g} is {N_big / 4e6:.3g}x the largest fitted N (4e+06)"
            in out.splitlines())
    assert f"warning: extrapolation: D = {D_big:.3g} is {D_big / 1e9:.3g}x the largest fitted D (1e+09)" in out
    assert (f"warning: extrapolation: C = 1e+22 is {1e22 / 2.4e16:.3g}x the largest fitted run's compute 6 N D "
            "(2.4e+16)") in out
    assert len(shape["warnings"]) == 3 and shape["fitted_range"]["tokens"] == pytest.approx([1e7, 1e9])
    code, out, _ = _run(capsys, "budget", "--flops", 1e12, "--law", fit_path)  # below the runs, too
    assert "x below the smallest fitted N (2.6e+05)" in out
    code, out, _ = _run(capsys, "budget", "--flops", 1e14, "--law", fit_path)  # inside: nothing to say
    assert code == 0 and "warning" not in out
    del fitted["fitted_range"]  # a FIT.json from before the range was stored
    (tmp_path / "old.json").write_text(json.dumps(fitted))
    code, out, _ = _run(capsys, "budget", "--flops", 1e22, "--law", tmp_path / "old.json")
    assert code == 0 and "warning: the fit's range of runs is unknown" in out


@pytest.mark.parametrize("weights, message", [
    (["news=-1", "code=2"], "--mixture news: -1.0 must be >= 0"),
    (["news=nan", "code=1"], "--mixture news: nan is not a finite number"),
    (["news=inf", "code=1"], "--mixture news: inf is not a finite number"),
    (["news=0", "code=0"], "--mixture gives every pool weight 0 (news, code)"),
])
def test_budget_refuses_a_mixture_that_is_not_one(tmp_path, capsys, weights, message):
    (tmp_path / "p.toml").write_text("[pools.news]\ntokens = 2e11\n[pools.code]\ntokens = 3e10\n")
    argv = ["budget", "--flops", "1e22", "--pools", tmp_path / "p.toml"]
    for w in weights:
        argv += ["--mixture", w]
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1, err


def test_laws_fit_help_describes_the_command_and_its_law(capsys):
    from mixplan.cli import main

    with pytest.raises(SystemExit):
        main(["laws", "fit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Fit a scaling law to proxy runs" in text
    assert "--law LAW the law: chinchilla (E + A/N^alpha + B/D^beta; columns params, tokens)" in text
    text = text.replace("mixture- ", "mixture-")  # argparse wraps lines at hyphens
    assert "mixture-additive, mixture-joint or mixture-effective (also the w_<pool> weights)" in text
