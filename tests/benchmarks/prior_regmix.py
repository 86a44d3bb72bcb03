"""RegMix anchor benchmark: ``mixplan plan --prior-strength auto`` against fixed strengths (issue 25, item 2).

On RegMix's 1M proxy runs (``../shared/anchors/regmix/``, read in place), target ``loss_pile_cc``:

1. ``mixplan plan --prior-strength auto`` on the 512 ``train`` runs (``--model regmix``, LightGBM as RegMix;
   prior = the Pile token share, from a manifest generated from ``regmix_domains.csv``): the CV curve
   (strength -> regret, with its spread over the folds) and the chosen strength;
2. ``mixplan plan --prior-strength L`` for each fixed L in {0, 0.005, 0.01, 0.05, 0.1};
3. a judge that saw none of this: the ``regmix`` preset (LightGBM) fitted on the 256 ``test`` runs, which
   predicts every recommended mixture (and, as a second opinion outside the acceptance, the ``gp`` preset
   fitted on the same runs).

Acceptance (PASS/FAIL): the auto plan's judged loss <= the best judged loss of the fixed strengths (+1e-9).

Fast path: ``--candidates`` 5000 Dirichlet candidates per search (the CLI's default is 20000; the auto
choice runs 2 folds x 3 repeats x 10 strengths of searches), one worker (``--jobs 1``), seed 0: deterministic.

Run::

    .venv/bin/python tests/benchmarks/prior_regmix.py [--out RESULTS.json] [--seed 0] [--candidates 5000]
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

from _common import cli, regmix_anchor_dir  # noqa: E402

TARGET = "loss_pile_cc"
FIXED = (0.0, 0.005, 0.01, 0.05, 0.1)
SAIL_REGMIX_TOKENS = 250e9  # size of sail/regmix-data (regmix.md section 2), as regmix_accuracy.py


def write_manifest(path: Path, domains: pd.DataFrame) -> None:
    """Pools with tokens = the Pile token share x 250e9: the prior is the token share (RegMix's)."""
    path.write_text("".join(f"[pools.{d.domain}]\ntokens = {d.prior_token_share * SAIL_REGMIX_TOKENS:.1f}\n"
                            for d in domains.itertuples()), encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "mixplan_prior_regmix.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--candidates", type=int, default=5000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    anchors = regmix_anchor_dir()
    runs_csv = anchors / "regmix_proxy_runs.csv"
    domains = pd.read_csv(anchors / "regmix_domains.csv")
    names = list(domains["domain"])
    common = ["--runs", runs_csv, "--where", "split=train", "--renormalize", "--target", TARGET, "--model", "regmix",
              "--candidates", args.candidates, "--seed", args.seed, "--jobs", 1, "--json"]
    with tempfile.TemporaryDirectory(prefix="mixplan_prior_") as tmp_name:
        manifest = Path(tmp_name) / "regmix_pools.toml"
        write_manifest(manifest, domains)
        t = time.perf_counter()
        auto = json.loads(cli("plan", *common, "--pools", manifest, "--prior-strength", "auto"))
        auto_seconds = time.perf_counter() - t
        fixed = {lam: json.loads(cli("plan", *common, "--pools", manifest, "--prior-strength", lam)) for lam in FIXED}

        from mixplan import fit_model, parse_objective, read_runs
        from mixplan.data.pools import load_pools

        pools = load_pools(manifest)
        test = read_runs(runs_csv, pools, renormalize=True, where={"split": "test"})
        objective = parse_objective(TARGET, test)
        judge = fit_model(test, objective, "regmix", seed=args.seed, jobs=1)
        # a second opinion (not the acceptance): a GP fitted on the same test runs
        second = fit_model(test, objective, "gp", seed=args.seed, jobs=1)

    def judged(plan: dict, model=judge) -> float:
        return float(model.predict_mean(np.array([[plan["recommended"][n] for n in names]]))[0])

    sel = auto["prior_regularisation"]["selection"]
    print(f"CV curve of --prior-strength auto ({sel['n_folds']} splits: 2 folds x 3 repeats; model regmix, {TARGET}); "
          "regret = judged score of the optimum - the best held-out run")
    print(f"{'strength':>9} {'mean regret':>12} {'se':>7} {'sd':>7}")
    for row in sel["curve"]:
        mark = "  <- chosen" if row["strength"] == sel["chosen"] else ""
        print(f"{row['strength']:>9g} {row['mean_regret']:>+12.4f} {row['se']:>7.4f} {row['sd']:>7.4f}{mark}")
    rows = [{"plan": f"fixed {lam:g}", "strength": lam, "plan_prediction": p["mixtures"]["recommended"]["prediction"],
             "test_judge": judged(p), "test_gp": judged(p, second),
             "kl_to_prior": p["prior_regularisation"]["kl"]["recommended"]}
            for lam, p in fixed.items()]
    rows.append({"plan": "auto", "strength": sel["chosen"],
                 "plan_prediction": auto["mixtures"]["recommended"]["prediction"], "test_judge": judged(auto),
                 "test_gp": judged(auto, second),
                 "kl_to_prior": auto["prior_regularisation"]["kl"]["recommended"]})
    table = pd.DataFrame(rows)
    print(f"\nRecommended mixture's {TARGET}: the plan's own prediction (train model) and the LightGBM judge fitted on "
          "the 256 test runs (test_gp: a GP fitted on them, a second opinion)")
    print(table.to_string(index=False, float_format="%.4f"))
    best_fixed = float(table.loc[table["plan"] != "auto", "test_judge"].min())
    got = float(table.loc[table["plan"] == "auto", "test_judge"].iloc[0])
    passed = got <= best_fixed + 1e-9
    runtime = time.perf_counter() - t0
    print(f"\nacceptance: auto (strength {sel['chosen']:g}) judged {got:.4f} <= best fixed {best_fixed:.4f}: "
          f"{'PASS' if passed else 'FAIL'}")
    print(f"runtime {runtime:.1f} s (auto plan {auto_seconds:.1f} s)")
    doc = {"target": TARGET, "model": "regmix", "candidates": args.candidates, "seed": args.seed,
           "selection": sel, "table": table.to_dict(orient="records"),
           "acceptance": {"auto_test_judge": got, "best_fixed_test_judge": best_fixed, "pass": bool(passed)},
           "runtime_s": runtime, "auto_plan_s": auto_seconds}
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {args.out}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
