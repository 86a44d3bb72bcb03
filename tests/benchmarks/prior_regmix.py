"""RegMix anchor benchmark: ``mixplan plan --prior-strength auto`` against fixed strengths (issue 25, item 2).

On RegMix's 1M proxy runs (``../shared/anchors/regmix/``, read in place), for each target and model asked for:

1. ``mixplan plan --prior-strength auto`` on the 512 ``train`` runs (prior = the Pile token share, from a manifest
   generated from ``regmix_domains.csv``): the CV curve (strength -> regret, with its spread over the folds) and
   the chosen strength;
2. ``mixplan plan --prior-strength L`` for each fixed L in {0, 0.005, 0.01, 0.05, 0.1};
3. a judge that saw none of this: the ``regmix`` preset (LightGBM) fitted on the 256 ``test`` runs, which
   predicts every recommended mixture (and, as second and third opinions outside the acceptance, the ``gp``
   preset and the ``auto`` model fitted on the same runs: ``auto`` is the kind of model that judges the CV's
   folds). Each judge's own accuracy is printed too: fitted on the test runs, scored on the 512 train runs,
   everywhere and on their best tenth (where plans aim). On ``loss_pile_cc`` the LightGBM judge regresses the best
   runs toward the mean (bias +0.025 on the best tenth, lowest prediction 5.157 over runs measured down to 5.082;
   the GP and ``auto`` judges: -0.002 and +0.000): it cannot credit a mixture better than the runs it saw. And how
   firm the bar's verdict is: the same LightGBM refitted on ``--judge-bootstrap`` resamples of the test runs, and in
   how many of them auto's plan is at least as good as the best fixed strength.

Models: ``dml`` is the log-linear (Data Mixing Laws) model, whose plan is the exact convex optimum
(:mod:`mixplan.simplex.convex`): Olmix's documented setting (log-linear + exact proposer + KL), the one whose
strength its users sweep by hand, and the acceptance row. ``regmix`` (LightGBM; its plan is the search's
unrefined top-k mean) and ``auto`` are searched, and reported; the bar is checked on the first model asked for.

With several seeds it also prints how far one fixed strength's plan moves with the seed (the search's candidates;
0 for the exact ``dml`` plan) next to auto's excess over the best fixed strength: the best fixed strength in
hindsight is the best of five plans that each carry that much of the search's luck.

Acceptance (PASS/FAIL): for the first model and target, at every seed (the seed moves the CV folds and the
search), the auto plan's judged loss <= the best judged loss of the fixed strengths (+1e-9).

Run::

    .venv/bin/python tests/benchmarks/prior_regmix.py [--out RESULTS.json] [--seeds 0,1,2] [--models dml,regmix]
        [--targets loss_pile_cc] [--candidates 20000] [--judge-bootstrap 20]
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # pin threads before lightgbm is imported (through mixplan)

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _common import (cli, comma_list, fit_test_judges, judge_accuracy, judge_scores,  # noqa: E402
                     regmix_anchor_dir, regmix_study)

FIXED = (0.0, 0.005, 0.01, 0.05, 0.1)


def write_manifest(path: Path, pools) -> None:
    """``pools`` (RegMix's, :func:`_common.regmix_study`: the prior is the token share) as a manifest for the CLI."""
    path.write_text("".join(f"[pools.{p.name}]\ntokens = {p.tokens:.1f}\n" for p in pools.pools), encoding="utf-8")


def bootstrap_judges(test, objective, n: int) -> list:
    """The bar's judge (the ``regmix`` preset) refitted on ``n`` bootstrap resamples of the test runs (seeded by
    their index): the spread of its verdicts is the part of the bar that is the judge's own noise."""
    from mixplan import MixtureRegressor

    y = np.asarray(objective.values(test), dtype=float)
    out = []
    for b in range(n):
        idx = np.random.default_rng(b).integers(0, len(y), len(y))
        out.append(MixtureRegressor("regmix", random_state=b, n_jobs=1).fit(test.weights[idx], y[idx]))
    return out


def bootstrap_pass(g: pd.DataFrame) -> str | None:
    """In how many of the bootstrap judges auto's plan is <= the best fixed strength's (``"k/n"``)."""
    boot = np.array(g["bootstrap_judged"].tolist())  # (plans, judges)
    if boot.size == 0:
        return None
    auto, fixed = boot[(g["plan"] == "auto").to_numpy()][0], boot[(g["plan"] != "auto").to_numpy()].min(axis=0)
    return f"{int(np.sum(auto <= fixed + 1e-9))}/{boot.shape[1]}"


def seed_spread(table: pd.DataFrame, verdict: pd.DataFrame) -> pd.DataFrame | None:
    """Per target, model and judge: the largest spread over the seeds of one fixed strength's judged plan, and
    auto's mean excess over the best fixed strength (None with one seed)."""
    if table["seed"].nunique() < 2:
        return None
    judges = {"test_judge": ("LightGBM", "auto_judged", "best_fixed_judged"),
              "test_gp": ("GP", "auto_gp", "best_fixed_gp"), "test_auto": ("auto", "auto_auto", "best_fixed_auto")}
    rows = []
    fixed = table[table["plan"] != "auto"]
    for (target, model), g in fixed.groupby(["target", "model"], sort=False):
        v = verdict[(verdict["target"] == target) & (verdict["model"] == model)]
        for col, (name, auto, best) in judges.items():
            by_plan = g.groupby("plan")[col]
            rows.append({"target": target, "model": model, "judge": name,
                         "fixed_plan_seed_spread": float((by_plan.max() - by_plan.min()).max()),
                         "auto_minus_best_fixed": float((v[auto] - v[best]).mean())})
    return pd.DataFrame(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "mixplan_prior_regmix.json")
    ap.add_argument("--seeds", type=comma_list, default=["0", "1", "2"])
    ap.add_argument("--models", type=comma_list, default=["dml", "regmix"])
    ap.add_argument("--targets", type=comma_list, default=["loss_pile_cc"])
    ap.add_argument("--candidates", type=int, default=20000)
    ap.add_argument("--judge-bootstrap", type=int, default=20,
                    help="LightGBM judges refitted on bootstrap resamples of the test runs (0: none)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    runs_csv = regmix_anchor_dir() / "regmix_proxy_runs.csv"

    from mixplan import parse_objective

    pools, train, test, _ = regmix_study(args.targets[0])
    names = pools.names
    rows, curves = [], []
    with tempfile.TemporaryDirectory(prefix="mixplan_prior_") as tmp_name:
        manifest = Path(tmp_name) / "regmix_pools.toml"
        write_manifest(manifest, pools)
        accuracy = []
        for target in args.targets:
            objective = parse_objective(target, test)
            # LightGBM (the bar); second and third opinions: a GP, and the kind of model that judges the CV's folds
            fitted = fit_test_judges(test, objective)
            judges = {"test_judge": fitted["regmix"], "test_gp": fitted["gp"], "test_auto": fitted["auto"]}
            accuracy += judge_accuracy(judges, train, objective, target)
            boot = bootstrap_judges(test, objective, args.judge_bootstrap)
            for model in args.models:
                for seed in args.seeds:
                    common = ["--runs", runs_csv, "--where", "split=train", "--renormalize", "--target", target,
                              "--model", model, "--candidates", args.candidates, "--seed", seed, "--jobs", 1, "--json",
                              "--pools", manifest]
                    t = time.perf_counter()
                    plans = {"auto": json.loads(cli("plan", *common, "--prior-strength", "auto"))}
                    seconds = time.perf_counter() - t
                    plans |= {f"fixed {lam:g}": json.loads(cli("plan", *common, "--prior-strength", lam))
                              for lam in FIXED}
                    sel = plans["auto"]["prior_regularisation"]["selection"]
                    curves.append({"target": target, "model": model, "seed": seed, "selection": sel,
                                   "auto_plan_s": seconds})
                    for name, p in plans.items():
                        w = np.array([[p["recommended"][n] for n in names]])
                        rows.append({"target": target, "model": model, "seed": seed, "plan": name,
                                     "strength": p["prior_regularisation"]["strength"],
                                     "exact": bool(p["search"].get("exact", {}).get("used", False)),
                                     "plan_prediction": p["mixtures"]["recommended"]["prediction"],
                                     **judge_scores(judges, objective, w),
                                     "bootstrap_judged": [float(objective.score(j.predict(w))[0]) for j in boot],
                                     "kl_to_prior": p["prior_regularisation"]["kl"]["recommended"]})
    table = pd.DataFrame(rows)
    first = curves[0]
    print(f"CV curve of --prior-strength auto ({first['selection']['n_folds']} splits: 2 folds x 3 repeats; "
          f"model {first['model']}, {first['target']}, seed {first['seed']}); regret = judged score of the optimum - "
          "the best held-out run")
    print(f"{'strength':>9} {'mean regret':>12} {'se':>7} {'sd':>7}")
    for row in first["selection"]["curve"]:
        mark = "  <- chosen" if row["strength"] == first["selection"]["chosen"] else ""
        print(f"{row['strength']:>9g} {row['mean_regret']:>+12.4f} {row['se']:>7.4f} {row['sd']:>7.4f}{mark}")

    verdicts = []
    for (target, model, seed), g in table.groupby(["target", "model", "seed"], sort=False):
        best = float(g.loc[g["plan"] != "auto", "test_judge"].min())
        auto = g[g["plan"] == "auto"].iloc[0]
        verdicts.append({"target": target, "model": model, "seed": seed, "chosen": float(auto["strength"]),
                         "auto_judged": float(auto["test_judge"]), "best_fixed_judged": best,
                         "best_fixed": float(g.loc[g["test_judge"][g["plan"] != "auto"].idxmin(), "strength"]),
                         "pass": bool(auto["test_judge"] <= best + 1e-9), "auto_gp": float(auto["test_gp"]),
                         "best_fixed_gp": float(g.loc[g["plan"] != "auto", "test_gp"].min()),
                         "auto_auto": float(auto["test_auto"]),
                         "best_fixed_auto": float(g.loc[g["plan"] != "auto", "test_auto"].min()),
                         # the bar's verdict under judges refitted on resamples of the test runs: how firm it is
                         "bootstrap_pass": bootstrap_pass(g)})
    print("\nRecommended mixture's loss under the LightGBM judge fitted on the 256 test runs (test_gp, test_auto: a GP "
          "and the auto model fitted on them, second opinions); exact: the plan is the convex program's optimum")
    print(table.drop(columns="bootstrap_judged").to_string(index=False, float_format="%.4f"))
    print("\nThe judges' own accuracy: fitted on the 256 test runs, scored on the 512 train runs (in the objective's "
          "units, smaller is better; best tenth: the train runs with the lowest objective)")
    print(pd.DataFrame(accuracy).to_string(index=False, float_format="%.4f"))
    verdict = pd.DataFrame(verdicts)
    print("\nauto against the best fixed strength, per target, model and seed")
    print(verdict.to_string(index=False, float_format="%.4f"))
    spread = seed_spread(table, verdict)
    if spread is not None:
        print("\nHow far one fixed strength's plan moves with the seed (the search's candidates; max - min of its "
              "judged loss over the seeds, the largest over the fixed strengths) against auto's excess over the best "
              "fixed strength (mean over seeds): where the first is as large as the second, which fixed strength is "
              "best in hindsight is the search's luck")
        print(spread.to_string(index=False, float_format="%.4f"))
    gate = verdict[(verdict["model"] == args.models[0]) & (verdict["target"] == args.targets[0])]
    passed = bool(gate["pass"].all())
    runtime = time.perf_counter() - t0
    print(f"\nacceptance ({args.models[0]}, {args.targets[0]}, seeds {', '.join(args.seeds)}): auto judged <= the best "
          f"fixed strength at {int(gate['pass'].sum())} of {len(gate)} seeds: {'PASS' if passed else 'FAIL'}")
    print(f"runtime {runtime:.1f} s")
    doc = {"candidates": args.candidates, "seeds": args.seeds, "models": args.models, "targets": args.targets,
           "curves": curves, "table": table.to_dict(orient="records"), "verdicts": verdicts,
           "judge_accuracy": accuracy,
           "seed_spread": None if spread is None else spread.to_dict(orient="records"),
           "acceptance": {"model": args.models[0], "target": args.targets[0], "pass": passed}, "runtime_s": runtime}
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {args.out}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
