"""RegMix anchor benchmark: every model of the zoo side by side, through the mixplan CLI.

On RegMix's 1M proxy runs (``../shared/anchors/regmix/``, read in place): ``mixplan fit`` on the 512
``train`` runs (``--renormalize``, target ``loss_pile_cc``) with each ``--model``, then ``mixplan predict``
on the 256 ``test`` runs: Spearman rho, Pearson r, MAE, the 90% intervals' coverage and mean width, and
the fit's wall time (fit + its cross-validation). olmix's own regressors, measured on the same split
(``shared/reference/peers.md``), are printed next to their counterparts.

``autoscale`` needs the runs' training tokens: the table is written to a temporary file with RegMix's
``train_tokens`` (1e9 for every run) as mixplan's ``tokens`` column; nothing else changes.

Run::

    .venv/bin/python tests/benchmarks/regmix_zoo.py [--out RESULTS.json] [--seed 0] [--models bimix,autoscale]
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

import pandas as pd

from _common import regmix_anchor_dir  # noqa: E402
from regmix_accuracy import TARGET, accuracy  # noqa: E402

MODELS = ("auto", "auto-wide", "gp", "gp-log", "lightgbm", "regmix", "ridge", "linear", "dml", "bimix", "autoscale")
#: olmix's regressors on the same split (peers.md: its source at HEAD 9586977), by the mixplan preset
#: whose law or learner matches.
OLMIX = {"regmix": ("lightgbm", 0.990), "dml": ("log_linear", 0.962), "gp": ("gp", 0.951),
         "autoscale": ("autoscale", 0.771), "bimix": ("bimix", 0.752)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "mixplan_regmix_zoo.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated presets (default: all)")
    args = ap.parse_args()
    runs = pd.read_csv(regmix_anchor_dir() / "regmix_proxy_runs.csv")
    truth = runs.loc[runs["split"] == "test", ["run_id", TARGET]]
    results = {}
    with tempfile.TemporaryDirectory(prefix="mixplan_zoo_") as tmp_name:
        tmp = Path(tmp_name)
        runs_csv = tmp / "regmix_runs_with_tokens.csv"
        runs.assign(tokens=runs["train_tokens"]).drop(columns="train_tokens").to_csv(runs_csv, index=False)
        for m in args.models.split(","):
            start = time.perf_counter()
            results[m] = accuracy(m, runs_csv, tmp, args.seed, truth) | {"seconds": time.perf_counter() - start}
            results[m].pop("model_dir")
    print(f"Model zoo: fit on 512 RegMix 1M train runs, {TARGET}, evaluated on {len(truth)} test runs")
    print(f"{'model':<10} {'rho':>6} {'r':>6} {'MAE':>7} {'90% cover':>9} {'90% width':>9} {'fit s':>6} | olmix rho")
    for m, a in results.items():
        ref = f"{OLMIX[m][1]:.3f} ({OLMIX[m][0]})" if m in OLMIX else ""
        print(f"{m:<10} {a['spearman']:>6.3f} {a['pearson']:>6.3f} {a['mae']:>7.4f} {a['coverage90']:>9.3f} "
              f"{a['width90']:>9.4f} {a['seconds']:>6.1f} | {ref}")
    args.out.write_text(json.dumps({"results": results, "olmix": OLMIX, "seed": args.seed}, indent=2) + "\n",
                        encoding="utf-8")
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
