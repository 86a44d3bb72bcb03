"""The core acceptance check on real data: RegMix's 1M proxy runs through the CLI contract."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from mixplan.cli import main


def test_regmix_preset_ranks_test_runs(anchors, tmp_path, capsys):
    runs = anchors / "regmix" / "regmix_proxy_runs.csv"
    assert main(["fit", str(runs), "--where", "split=train", "--renormalize", "--target", "loss_pile_cc",
                 "--model", "regmix", "--out", str(tmp_path / "m"), "--json"]) == 0
    cv = json.loads(capsys.readouterr().out)["cv"]
    assert cv["n_runs"] == 512
    assert main(["predict", str(tmp_path / "m"), str(runs), "--where", "split=test", "--renormalize",
                 "--out", str(tmp_path / "p.csv")]) == 0
    pred = pd.read_csv(tmp_path / "p.csv")
    truth = pd.read_csv(runs).set_index("run_id").loc[pred["run_id"], "loss_pile_cc"].to_numpy()
    assert len(pred) == 256
    rho = spearmanr(pred["prediction"], truth)[0]
    # Published 0.9845 (RegMix Table 2, 1M); with 1,000 trees and no test-set early stopping: 0.990.
    assert rho >= 0.985, rho
    coverage = np.mean((truth >= pred["lower"]) & (truth <= pred["upper"]))
    assert 0.85 <= coverage <= 0.98, coverage


@pytest.mark.slow
def test_regmix_plan_beats_regmix_recipe_prediction(anchors, tmp_path, capsys):
    runs = anchors / "regmix" / "regmix_proxy_runs.csv"
    assert main(["plan", "--runs", str(runs), "--where", "split=train", "--renormalize", "--target",
                 "loss_pile_cc", "--json", "--cv-folds", "2"]) == 0
    plan = json.loads(capsys.readouterr().out)
    rec, best = plan["mixtures"]["recommended"], plan["mixtures"]["best_observed"]
    # The recommendation is predicted at least as good as the best observed run and is Pile-CC heavy,
    # like RegMix's own pick (0.87-0.89 Pile-CC, regmix.md section 6).
    assert rec["prediction"] <= best["prediction"]
    assert 0.75 <= rec["weights"]["pile_cc"] <= 0.97
    assert "token_proportional" not in plan["mixtures"]  # no manifest: token shares unknown


@pytest.mark.slow
def test_auto_is_sample_efficient(anchors, tmp_path, capsys):
    # Issue 3's goal at 64 runs is a mean Spearman >= 0.97 over 5 subsets (regmix preset: 0.899);
    # this subset measured 0.975 when the test was written.
    frame = pd.read_csv(anchors / "regmix" / "regmix_proxy_runs.csv")
    frame = frame[frame["model_size"] == "1M"]
    train = frame[frame["split"] == "train"]
    train.iloc[np.random.default_rng(0).choice(len(train), 64, replace=False)].to_csv(tmp_path / "t.csv", index=False)
    frame[frame["split"] == "test"].to_csv(tmp_path / "test.csv", index=False)
    assert main(["fit", str(tmp_path / "t.csv"), "--renormalize", "--target", "loss_pile_cc",
                 "--out", str(tmp_path / "m"), "--json"]) == 0
    fit = json.loads(capsys.readouterr().out)
    assert {r["model"] for r in fit["targets"][0]["selection"]} >= {"gp", "gp-log", "ridge", "dml", "lightgbm"}
    assert main(["predict", str(tmp_path / "m"), str(tmp_path / "test.csv"), "--renormalize",
                 "--out", str(tmp_path / "p.csv")]) == 0
    pred = pd.read_csv(tmp_path / "p.csv")
    truth = frame.set_index("run_id").loc[pred["run_id"], "loss_pile_cc"].to_numpy()
    assert spearmanr(pred["prediction"], truth)[0] >= 0.965
    coverage = np.mean((truth >= pred["lower"]) & (truth <= pred["upper"]))
    assert 0.8 <= coverage <= 0.99, coverage
