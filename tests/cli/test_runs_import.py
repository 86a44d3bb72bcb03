"""mixplan runs import (mixplan.data.evaluations): lm-evaluation-harness results and a W&B runs export
into a runs table that fit accepts; what could not be matched is listed, not dropped."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from mixplan.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "evaluations"


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_lm_eval_results_become_a_runs_table_that_fit_accepts(tmp_path, capsys):
    code, out, _ = _run(capsys, "runs", "import", "--lm-eval", FIXTURES / "lm_eval", "--mixtures",
                        FIXTURES / "mixtures.csv", "--out", tmp_path / "runs.csv", "--json")
    doc = json.loads(out)
    assert code == 0 and sorted(doc["matched"]) == [f"run-{i:02d}" for i in range(1, 13)]
    assert len(doc["matched"]["run-12"]) == 2  # two results files, one per task, merged
    assert doc["without_results"] == ["run-13"]
    assert len(doc["unmatched"]) == 1 and doc["unmatched"][0].startswith("run-99_")
    # run-12 was evaluated on the two tasks separately: the group's score exists only for the others
    assert doc["missing"] == {"acc_toy_group": ["run-12"], "stderr_acc_toy_group": ["run-12"]}
    assert doc["higher_is_better"]["acc_norm_toy_mc"] is True
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert list(runs.columns[:4]) == ["run_id", "w_web", "w_code", "w_books"]
    raw = json.loads(next((FIXTURES / "lm_eval").glob("run-02_*.json")).read_text())["results"]
    row = runs.set_index("run_id").loc["run-02"]
    assert row["acc_toy_mc"] == raw["toy_mc"]["acc,none"] and row["acc_norm_toy_mc2"] == raw["toy_mc2"]["acc_norm,none"]
    assert row["stderr_acc_toy_mc"] == pytest.approx(raw["toy_mc"]["acc_stderr,none"], rel=1e-9)  # 10 digits in CSV
    assert "acc_stderr_toy_mc" not in runs.columns  # mean(acc_*) must not average standard errors
    code, out, _ = _run(capsys, "fit", tmp_path / "runs.csv", "--target", "mean(acc_toy_mc*)", "--maximize",
                        "--model", "ridge", "--cv-folds", 3, "--out", tmp_path / "model")
    assert code == 0 and "Spearman" in out


def test_the_newest_of_two_measurements_is_kept_and_said(tmp_path, capsys):
    folder = tmp_path / "results"
    shutil.copytree(FIXTURES / "lm_eval", folder)
    older = next(folder.glob("run-01_*.json"))
    doc = json.loads(older.read_text())
    doc["date"] += 3600
    doc["results"]["toy_mc"]["acc,none"] = 0.875
    (folder / "again").mkdir()
    (folder / "again" / "run-01_2026-12-05T13-33-30.000000.json").write_text(json.dumps(doc))
    code, out, _ = _run(capsys, "runs", "import", "--lm-eval", folder, "--mixtures", FIXTURES / "mixtures.csv",
                        "--out", tmp_path / "runs.csv", "--json")
    rep = json.loads(out)
    assert code == 0 and any(r.startswith("run-01 acc_toy_mc: 0.875 from again/") for r in rep["replaced"])
    assert pd.read_csv(tmp_path / "runs.csv").set_index("run_id").loc["run-01", "acc_toy_mc"] == 0.875


def test_a_wandb_export_becomes_a_runs_table(tmp_path, capsys):
    export = next(FIXTURES.glob("wandb_export_*.csv"))
    code, out, _ = _run(capsys, "runs", "import", "--wandb", export, "--out", tmp_path / "runs.csv", "--json")
    doc = json.loads(out)
    assert code == 0 and sorted(doc["matched"]) == [f"proxy-{i:02d}" for i in range(1, 14) if i != 3]
    assert doc["left_out"] == ["proxy-03 (State crashed)"]
    assert doc["missing"] == {"eval/acc_arc_easy": ["proxy-04", "proxy-09"]}
    runs = pd.read_csv(tmp_path / "runs.csv").set_index("run_id")
    assert list(runs.columns[:3]) == ["w_books", "w_code", "w_web"]
    assert runs.loc["proxy-02", "eval/loss"] == 3.142 and runs.loc["proxy-02", "w_web"] == 0.2
    assert {"Runtime", "State", "Notes"}.isdisjoint(runs.columns)
    code, out, _ = _run(capsys, "fit", tmp_path / "runs.csv", "--target", "eval/loss", "--model", "ridge",
                        "--cv-folds", 3, "--out", tmp_path / "model")
    assert code == 0
    code, out, _ = _run(capsys, "runs", "import", "--wandb", export, "--include-unfinished", "--out",
                        tmp_path / "all.csv", "--json")
    assert code == 0 and len(json.loads(out)["matched"]) == 13


@pytest.mark.parametrize("argv, message", [
    (["--lm-eval", "FIX/lm_eval"], "--lm-eval needs --mixtures"),
    (["--lm-eval", "FIX/lm_eval", "--mixtures", "FIX/lm_eval"], "no 'weights' mapping"),
    (["--olmix", "FIX/mixtures.csv"], "--olmix needs --metrics"),
    (["--wandb", "FIX/mixtures.csv"], "no column 'Name'"),
    (["--wandb", "WANDB", "--weight-prefix", "nope."], "no column starts with --weight-prefix 'nope.'"),
    (["--lm-eval", "FIX/lm_eval", "--weight-prefix", "x."], "--weight-prefix goes with --wandb"),
])
def test_import_errors_are_one_line(tmp_path, capsys, argv, message):
    wandb = str(next(FIXTURES.glob("wandb_export_*.csv")))
    argv = [a.replace("FIX", str(FIXTURES)).replace("WANDB", wandb) for a in argv]
    code, _, err = _run(capsys, "runs", "import", *argv, "--out", tmp_path / "r.csv")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r.csv").exists()


def test_olmix_and_regmix_files_import_through_their_readers(tmp_path, capsys):
    (tmp_path / "ratios.csv").write_text(",run,name,index,web,code\n0,aa,exp-0000,0,0.7000000000000001,0.3\n"
                                         "1,bb,exp-0001,1,0.2,0.8\n")
    (tmp_path / "metrics.csv").write_text(",run,name,index,arc:rc::olmes\n0,bb,exp-0001,1,1.5\n1,aa,exp-0000,0,1.0\n")
    code, out, _ = _run(capsys, "runs", "import", "--olmix", tmp_path / "ratios.csv", "--metrics",
                        tmp_path / "metrics.csv", "--out", tmp_path / "runs.csv", "--json")
    assert code == 0 and sorted(json.loads(out)["matched"]) == ["exp-0000", "exp-0001"]
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert runs["run_id"].tolist() == ["exp-0000", "exp-0001"] and runs["arc:rc::olmes"].tolist() == [1.0, 1.5]
    (tmp_path / "mix.csv").write_text("index,train_the_pile_arxiv,train_the_pile_pile_cc\n1,0.25,0.75\n2,1.0,0.0\n")
    (tmp_path / "loss.csv").write_text("index,metric/the_pile_pile_cc_val_loss\n2,6.0\n1,5.0\n")
    code, out, _ = _run(capsys, "runs", "import", "--regmix", tmp_path / "mix.csv", "--metrics", tmp_path / "loss.csv",
                        "--out", tmp_path / "regmix.csv", "--json")
    assert code == 0 and pd.read_csv(tmp_path / "regmix.csv")["loss_pile_cc"].tolist() == [5.0, 6.0]
