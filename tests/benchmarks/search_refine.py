"""Known-truth benchmark of the search's last step: refine the top-k mean locally, or stop at it?

``mixplan.simplex.search`` averages the best-scored candidates (RegMix's top-k mean) and then refines that mean
by local moves accepted whenever the model's score drops. ``make_plan`` skips the refinement when the model is
mostly boosted trees (``MixtureModel.tree_share > TREE_SHARE_UNREFINED``, 0.5): a tree ensemble predicts a
piecewise-constant surface, and a local search takes every step down it, steps that are leaf boundaries fitted
to a few runs. This benchmark is
the evidence for that default, where the truth is known: synthetic studies (``mixplan.demo.synthetic.make_study``,
the worlds of ``prior_known_truth.py``: 8 pools, a prior half the true optimum and half a random mixture, noisy
runs), the plan of each model with and without the refinement, at several prior strengths and search seeds.
Besides the presets (``--models``), stacks of the ``auto`` model's own fitted GP and LightGBM candidates at fixed
tree shares (``--shares``; ``auto`` picks the GP alone in most of these worlds) locate the share above which
stopping at the top-k mean is better: ``mixplan.mixture.plan.TREE_SHARE_UNREFINED``. With the default 20,000
candidates these worlds find the top-k mean better for smooth models too; RegMix's real runs do not
(``search_refine_regmix.py``), and the rule follows the real runs.

True regret = true objective of the recommended mixture - the true optimum (the search on the true objective,
20,000 candidates and refinement). The table gives the mean and median over worlds x seeds, and the spread over
seeds (the standard deviation across the search seeds, averaged over worlds): how much the recommendation moves
with ``--seed``.

Run::

    .venv/bin/python tests/benchmarks/search_refine.py [--models regmix,gp] [--worlds 10] [--runs 200]
        [--shares 0.25,0.5,0.75] [--seeds 3] [--candidates 20000] [--out RESULTS.json]
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # pin threads before lightgbm is imported (through mixplan)

import argparse
import copy
import sys
import time
import warnings

import numpy as np
import pandas as pd

from _common import comma_list, known_truth_options, known_truth_worlds, write_results  # noqa: E402

STRENGTHS = (0.0, 0.01, 0.1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=comma_list, default=["regmix", "gp"])
    ap.add_argument("--shares", type=lambda t: [float(v) for v in comma_list(t)], default=[0.25, 0.5, 0.75],
                    help="tree shares of GP + LightGBM stacks")
    # LightGBM's CV needs >= 50 runs; 20,000 candidates: the plan's default
    known_truth_options(ap, runs=200, out="mixplan_search_refine.json", candidates=20_000)
    ap.add_argument("--seeds", type=int, default=3, help="search seeds per world and strength")
    args = ap.parse_args()
    warnings.simplefilter("ignore")  # extrapolation notes on every plan: the regret is the measure here

    from mixplan import fit_model, make_plan
    from mixplan.mixture.plan import TREE_SHARE_UNREFINED
    from mixplan.simplex.optimizer import REFINE_ROUNDS  # the search's default refinement

    t0 = time.perf_counter()
    rows = []
    for world, study, pools, runs, objective, truth in known_truth_worlds(args, 0.5):
        models = {kind: fit_model(runs, objective, kind, seed=0, jobs=1) for kind in args.models}
        auto = fit_model(runs, objective, "auto", seed=0, jobs=1) if args.shares else None
        for share in args.shares:
            # The auto model's stack replaced by its GP and LightGBM candidates at this share: a benchmark's
            # device to reach stacks auto does not choose here (it fits every candidate).
            if not {"gp", "lightgbm"} <= set(auto.targets[0].regressor.candidates_):
                sys.exit(f"world {world}: auto's race dropped the GP or LightGBM candidate; use fewer --runs")
            stack = copy.deepcopy(auto)
            stack.targets[0].regressor.weights_ = {"gp": 1 - share, "lightgbm": share}
            models[f"gp+lightgbm {share:g}"] = stack
        for kind, model in models.items():
            for strength in STRENGTHS:
                for seed in range(args.seeds):
                    for step, rounds in (("refined", REFINE_ROUNDS), ("top-k mean", 0)):
                        plan = make_plan(model, pools, seed=seed, n_candidates=args.candidates,
                                         prior_strength=strength, refine_rounds=rounds)
                        w = np.array([plan.recommended[n] for n in pools.names])
                        rows.append({"world": world, "model": kind, "tree_share": model.tree_share,
                                     "strength": strength, "seed": seed, "step": step,
                                     "true_regret": float(study.true_objective(w)[0]) - truth})
        print(f"world {world} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    table = pd.DataFrame(rows)
    keys = ["model", "strength", "step"]
    spread = table.groupby(keys + ["world"])["true_regret"].std(ddof=1).groupby(keys).mean()
    summary = table.groupby(keys)["true_regret"].agg(mean="mean", median="median").join(
        spread.rename("seed_sd")).reset_index()
    print(f"\n{args.worlds} worlds, {args.pools} pools, {args.runs} runs each (noise {args.noise}), {args.seeds} "
          f"search seeds, {args.candidates} candidates; true regret of the recommended mixture")
    print(summary.to_string(index=False, float_format="%.5f"))
    overall = table.pivot_table(index="model", columns="step", values="true_regret", aggfunc="mean")
    overall["tree_share"] = table.groupby("model")["tree_share"].mean()
    overall["plan's step"] = np.where(overall["tree_share"] > TREE_SHARE_UNREFINED, "top-k mean", "refined")
    print(f"\nmean true regret over strengths (the plan stops at the top-k mean above a tree share of "
          f"{TREE_SHARE_UNREFINED:g}):")
    print(overall.to_string(float_format="%.5f"))
    write_results(args, {"summary": summary.to_dict(orient="records"), "rows": rows}, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
