"""Real-run check of the search's last step: refine the top-k mean locally, or stop at it? (RegMix's runs.)

``search_refine.py`` answers on known truth; this script asks RegMix's runs (``../shared/anchors/regmix/``, read in
place). For each model (``--models``), target (``--targets``: Pile-CC and six other domains' losses) and seed, the
model is fitted on the 512 ``train`` runs and planned twice with ``make_plan`` (pools: tokens = the token share x
250e9, 20,000 candidates): refined (``refine_rounds=16``) and stopped at the top-k mean (``refine_rounds=0``). Both
mixtures are judged by models that saw none of the train runs, fitted on the 256 ``test`` runs: the ``regmix``
preset (LightGBM, the judge issue 25 names), a GP and ``auto``; each judge's own accuracy on the train runs is
printed too (everywhere and on their best tenth, where plans aim). A third mixture per model: RegMix's own recipe
(the top-128 of 100,000 draws from Dirichlet(token share), scored by the same model), against the plan's step.

Reported per model and judge: the mean and median over targets x seeds of (top-k mean's judged loss - refined's),
and in how many the top-k mean is better. The plan's rule (``mixplan.mixture.plan.TREE_SHARE_UNREFINED``) stops
at the top-k mean for a model mostly of trees and refines the others: the rule holds where the more accurate
judges find the top-k mean better for ``regmix`` and the refinement better for ``auto``. Measured (defaults, 305 s):
for ``regmix`` the top-k mean is better by 0.026 / 0.030 on average under the GP / ``auto`` judges (12 and 14 of 14;
LightGBM: +0.004, 7 of 14), for ``auto`` worse by 0.009 / 0.007 (better in 2 and 1 of 14; LightGBM: worse by
0.018). The LightGBM judge is the least accurate where plans aim (Spearman 0.35-0.82 on the train runs' best tenth
over the 7 targets, against 0.91-0.97 for the GP and ``auto``). RegMix's recipe against the plan, GP / ``auto``
judges: +0.008 / +0.015 with ``regmix`` (better in 4 and 1 of 14), +0.004 / +0.004 with ``auto`` (4 and 5 of 14);
LightGBM: -0.005 and +0.012. On Pile-CC alone the recipe looked better (``search_speed.py``); over 7 targets it is
not.

Run::

    .venv/bin/python tests/benchmarks/search_refine_regmix.py [--models regmix,auto] [--seeds 0,1]
        [--targets loss_pile_cc,...] [--candidates 20000] [--out RESULTS.json]
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # pin threads before lightgbm is imported (through mixplan)

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from _common import (TEST_JUDGES, comma_list, fit_test_judges, judge_accuracy, judge_scores,  # noqa: E402
                     regmix_recipe, regmix_study, write_results)

TARGETS = ("loss_pile_cc", "loss_arxiv", "loss_freelaw", "loss_github", "loss_hackernews", "loss_stackexchange",
           "loss_wikipedia_en")
STEPS = {"refined": 16, "top-k mean": 0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=comma_list, default=["regmix", "auto"])
    ap.add_argument("--targets", type=comma_list, default=list(TARGETS))
    ap.add_argument("--seeds", type=comma_list, default=["0", "1"])
    ap.add_argument("--candidates", type=int, default=20000)
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "mixplan_search_refine_regmix.json")
    args = ap.parse_args()
    warnings.simplefilter("ignore")  # extrapolation notes on every plan: the judged loss is the measure here

    from mixplan import fit_model, make_plan
    from mixplan.mixture.plan import TREE_SHARE_UNREFINED

    t0 = time.perf_counter()
    rows, accuracy = [], []
    for target in args.targets:
        pools, train, test, objective = regmix_study(target)
        judges = fit_test_judges(test, objective)
        accuracy += judge_accuracy(judges, train, objective, target)
        for kind in args.models:
            for seed in map(int, args.seeds):
                model = fit_model(train, objective, kind, seed=seed, jobs=1)
                row = {"model": kind, "target": target, "seed": seed, "tree_share": model.tree_share}
                for step, rounds in STEPS.items():
                    plan = make_plan(model, pools, seed=seed, n_candidates=args.candidates, refine_rounds=rounds)
                    w = np.array([[plan.recommended[n] for n in pools.names]])
                    row |= {f"{step}, {j}": v for j, v in judge_scores(judges, objective, w).items()}
                # RegMix's own recipe with this model (top-128 of 100,000 draws from Dirichlet(token share))
                w = regmix_recipe(lambda W: objective.score(model.predict_mean(W)), pools.prior, seed)
                row |= {f"RegMix recipe, {j}": v for j, v in judge_scores(judges, objective, w).items()}
                rows.append(row)
                print(", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()),
                      flush=True)
    table = pd.DataFrame(rows)
    summary = []
    for kind, g in table.groupby("model", sort=False):
        plan = "top-k mean" if g["tree_share"].median() > TREE_SHARE_UNREFINED else "refined"
        for j in TEST_JUDGES:
            diff = g[f"top-k mean, {j}"] - g[f"refined, {j}"]
            recipe = g[f"RegMix recipe, {j}"] - g[f"{plan}, {j}"]
            summary.append({"model": kind, "judge": j, "mean_topk_minus_refined": float(diff.mean()),
                            "median": float(diff.median()), "topk_better": int((diff < 0).sum()), "of": len(diff),
                            "tree_share_median": float(g["tree_share"].median()), "plan_step": plan,
                            "mean_recipe_minus_plan": float(recipe.mean()), "recipe_better": int((recipe < 0).sum())})
    print("\nThe judges' own accuracy: fitted on the 256 test runs, scored on the 512 train runs (score units, smaller "
          "is better; best tenth: the train runs with the lowest objective)")
    print(pd.DataFrame(accuracy).to_string(index=False, float_format="%.4f"))
    print(f"\nJudged loss of the top-k mean minus the refined mixture's, and of RegMix's recipe minus the plan's (its "
          f"step by the rule) ({len(args.targets)} targets x {len(args.seeds)} seeds; negative: the first is better)")
    print(pd.DataFrame(summary).to_string(index=False, float_format="%.4f"))
    write_results(args, {"rows": rows, "summary": summary, "judge_accuracy": accuracy}, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
