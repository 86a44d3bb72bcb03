"""What `mixplan plan` (and `cpt plan`, `predict`) print says what it means: every column of a table
describes the mixture it is named after, the candidate count adds up, a probability stands beside the
prediction it is of, numerical-zero weights are 0, each warning is printed once, every option has help."""

import argparse
import json

import numpy as np
import pytest

from mixplan.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _table(lines, title, n):
    """The header and ``n`` rows (split on whitespace) of the text table under the line ``title``."""
    i = lines.index(title)
    return lines[i + 1].split(), [line.split() for line in lines[i + 2:i + 2 + n]]


def test_pool_tables_fill_every_mixture_column_and_the_search_counts_add_up(capsys, synthetic):
    _, runs, manifest = synthetic
    argv = ["plan", "--runs", runs, "--pools", manifest, "--target", "loss", "--model", "ridge", "--tokens", "2e6",
            "--candidates", "2000", "--pin", "p0=0.1"]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    lines = out.splitlines()
    # 1. no column of the recommended mixture alone among the mixtures' columns
    assert "epochs@budget" not in out
    w_head, w_rows = _table(lines, "weights:", 5)
    e_head, e_rows = _table(lines, "epochs at the target budget (2e+06 tokens):", 5)
    assert w_head == e_head == ["pool", "recommended", "top_k_mean", "token_proportional", "uniform", "best_observed"]
    assert all(len(r) == len(w_head) for r in w_rows + e_rows)
    assert lines[lines.index("epochs at the target budget (2e+06 tokens):") + 7] == (
        "active constraints of the recommended mixture: p0 pinned")
    # each mixture's own epochs: weight x 2e6 / the pool's tokens (p_i has (i + 1) million)
    for i, (w, e) in enumerate(zip(w_rows, e_rows)):
        assert w[0] == e[0] == f"p{i}"
        for wk, ek in zip(w[1:], e[1:]):
            assert float(ek) == pytest.approx(float(wk) * 2 / (i + 1), abs=0.006)
    # 2. the candidates: 2000 sampled, plus the vertices/edges and the 120 proxy runs, and the counts add up
    search = next(line for line in lines if line.startswith("search: "))
    total = int(search.split()[1])
    parts = search[search.index("(") + 1:search.index(")")].split(", ")
    assert parts[0] == "2000 sampled" and parts[-1] == "120 proxy runs", search
    assert sum(int(p.split()[0]) for p in parts) == total > 2000
    doc = json.loads(run(capsys, *argv, "--json")[1])
    origins = doc["search"]["candidates_by_origin"]
    assert origins["dirichlet"] == 2000 and sum(origins.values()) == doc["search"]["n_prefilter_scored"] == total


def _p_column(lines, header_start, names, column="P(recommended better)"):
    """mixture -> the probability printed in ``column`` of the table starting with ``header_start``."""
    i = next(k for k, line in enumerate(lines) if line.lstrip().startswith(header_start))
    start = lines[i].index(column)
    out = {}
    for line in lines[i + 1:i + 1 + len(names)]:
        cell = line[start:start + len(column)].strip()  # right-aligned under its header; blank for itself
        out[line.split()[0]] = float(cell) if cell else None
    return out


def test_p_recommended_better_is_of_the_prediction_beside_it(capsys, synthetic):
    # Repetition-aware at 1e8 tokens: the recommendation is the best at the budget, so the repetition-blind
    # optimum is predicted better at the proxy scale. The main table printed P at the budget (0.85) beside
    # that better proxy prediction; now each table's P is of its own prediction.
    _, runs, manifest = synthetic
    argv = ["plan", "--runs", runs, "--pools", manifest, "--target", "loss", "--model", "gp", "--tokens", "1e8",
            "--r-star", "15.4", "--gamma", "0.05", "--candidates", "2000"]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    doc = json.loads(run(capsys, *argv, "--json")[1])
    mix, rec = doc["mixtures"], doc["mixtures"]["recommended"]
    lines = out.splitlines()
    shown_proxy = _p_column(lines, "mixture predicted", mix)
    shown_budget = _p_column(lines, "mixture objective@budget", mix)
    better_at_proxy = [n for n, m in mix.items() if m["prediction"] < rec["prediction"]]
    assert "repetition_blind" in better_at_proxy  # the case of the issue: a row predicted better
    for n, m in mix.items():
        if n == "recommended":
            assert shown_proxy[n] is None and shown_budget[n] is None
            continue
        proxy, budget = m["p_recommended_better_proxy"], m["p_recommended_better"]
        assert (proxy > 0.5) == (m["prediction"] > rec["prediction"]), (n, proxy)
        assert (budget > 0.5) == (m["at_budget"]["objective"] > rec["at_budget"]["objective"]), (n, budget)
        assert shown_proxy[n] == pytest.approx(proxy, abs=0.005) and shown_budget[n] == pytest.approx(budget, abs=0.005)
    assert shown_proxy["repetition_blind"] < 0.5 < shown_budget["repetition_blind"]


def test_p_recommended_better_is_low_for_a_baseline_predicted_better(capsys, synthetic):
    # Pinning p4 (the truth wants 0.6 of it) to 0.05 makes the unconstrained best observed run better.
    _, runs, manifest = synthetic
    code, out, err = run(capsys, "plan", "--runs", runs, "--pools", manifest, "--target", "loss", "--model", "ridge",
                         "--tokens", "2e6", "--candidates", "2000", "--pin", "p4=0.05", "--json")
    mix = json.loads(out)["mixtures"]
    assert mix["best_observed"]["prediction"] < mix["recommended"]["prediction"]
    assert mix["best_observed"]["p_recommended_better"] < 0.5
    assert "p_recommended_better_proxy" not in mix["best_observed"]  # decided at the proxy scale: one P


def test_numerical_zero_weights_are_zero_in_the_sweep_and_the_json(capsys, repo):
    # The Data Mixing Laws fit of the demo runs puts everything on news; the search's projection left
    # 1.1e-16 on another pool, printed as 1.11e-16 in the budget sweep.
    argv = ["plan", "--runs", repo / "proxies/demo/runs.csv", "--pools", repo / "pools/demo.toml", "--target",
            "bpb_reviews", "--model", "dml", "--candidates", "2000", "--budget-range", "1e5:1e6", "--budget-steps", "2"]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "e-1" not in out.split("recommended mixture by target budget:")[1]
    doc = json.loads(run(capsys, *argv, "--json")[1])
    weights = [m["weights"] for m in doc["mixtures"].values()] + [
        {k: v for k, v in row.items() if k.startswith("w_")} for row in doc["budget_sweep"]]
    assert any(0.0 in w.values() for w in weights)
    for w in weights:
        v = np.array(list(w.values()))
        assert not np.any((v != 0) & (np.abs(v) < 1e-9)), w
        assert v.sum() == pytest.approx(1.0, abs=1e-12)


def test_cpt_plan_prints_each_warning_once(capsys, repo, tmp_path):
    # The fit's warnings are both laws' and both hit e's lower bound: the same line came out twice.
    fit = tmp_path / "fit.json"
    code, _, err = run(capsys, "cpt", "fit", repo / "proxies/demo_cpt/runs.csv", "--general", "general_loss",
                       "--domain", "domain_loss", "--where", "table_bits=22", "--bootstrap", "0", "--out", fit)
    assert code == 0, err
    laws = json.loads(fit.read_text())
    both = set(laws["general"]["warnings"]) & set(laws["domain"]["warnings"])
    assert both, "the fit no longer has a warning of both laws; this test needs one"
    code, out, err = run(capsys, "cpt", "plan", fit, "--domain-tokens", "2e5")
    assert code == 0, err
    shown = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert len(shown) == len(set(shown)) and all(f"warning: fit: {w}" in shown for w in both), shown
    code, out, _ = run(capsys, "cpt", "plan", fit, "--domain-tokens", "2e5", "--json")
    warnings = json.loads(out)["warnings"]
    assert len(warnings) == len(set(warnings))


def _actions(parser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, (*path, name))
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


@pytest.mark.parametrize("command", ["validate", "fit", "predict", "plan", "design", "filter"])
def test_every_option_and_positional_has_help(command):
    from mixplan.cli.main import build_parser

    missing = [f"{' '.join(path)} {a.option_strings or a.metavar}" for path, a in _actions(build_parser())
               if path[:1] == (command,) and not a.help]
    assert not missing


def test_help_explains_layout_model_dir_and_predict_out(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for words in ("regmix (RUNS a mixture CSV and --metrics a loss CSV", "olmix (RUNS ratios.csv",
                  "MODEL_DIR a fitted model: the folder of 'mixplan fit --out'",
                  "--out PRED.csv write the predictions here", "RUNS the mixtures to predict"):
        assert words in text, words


def test_refine_flag_overrides_the_trees_rule_and_a_bad_config_value_is_one_line(capsys, synthetic, tmp_path):
    _, runs, manifest = synthetic
    base = ["plan", "--runs", runs, "--pools", manifest, "--target", "loss", "--candidates", "1000", "--json"]
    trees = json.loads(run(capsys, *base, "--model", "regmix")[1])["search"]
    assert trees["tree_share"] == 1.0 and trees["refine_rounds"] == 0  # auto: the trees' rule
    forced = json.loads(run(capsys, *base, "--model", "regmix", "--refine", "on")[1])["search"]
    assert forced["refine_rounds"] == 16 and forced["n_exact_scored"] > trees["n_exact_scored"]
    off = json.loads(run(capsys, *base, "--model", "ridge", "--refine", "off")[1])["search"]
    assert off["tree_share"] == 0.0 and off["refine_rounds"] == 0 and off["refine_moves"] == 0
    config = tmp_path / "plan.toml"
    config.write_text(f"runs = '{runs}'\npools = '{manifest}'\ntarget = 'loss'\nrefine = 'sometimes'\n")
    code, _, err = run(capsys, "plan", config)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "key 'refine'" in err and "auto, on, off" in err
