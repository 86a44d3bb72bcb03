"""The D-CPT law on the demo continual-pre-training study (proxies/demo_cpt/, issue 8's acceptance).

(a) **Extrapolation in D.** ``mixplan cpt fit`` (the full law: 3 model sizes) on the runs at the
    smaller continuation budgets; predict the largest budget's runs; mean absolute error (bits per
    byte) of both losses, next to the natural baseline, a power law in D fitted per (size, ratio)
    series on the same smaller budgets: ``L = E + B * D**-beta`` (E and B free in sign, so rising
    series are allowed; beta on a grid 0.01..3 with E, B by least squares for each beta: variable
    projection, the exact least-squares optimum over the grid), and for reference a log-log line
    ``log L = a + b log D`` (E not identified from 4 budgets).
(b) **Usage 1.** ``mixplan cpt fit`` on all the runs, ``mixplan cpt plan --max-general-rise T
    --relative`` at the largest budget and size with the measured base general loss as L_g0; the
    chosen domain share and its 95% interval. That share is then trained with the proxy (3 new seeds,
    each with its own base model) and the measured general-loss rise over each seed's base model is
    printed next to T.

Run: ``python tests/benchmarks/dcpt_demo.py [--rise 0.02] [--bootstrap 200] [--workers 2]`` (about
2 minutes: two fits with bootstrap and 3 proxy runs of 2M bytes). Prints a table and writes
``mixplan_dcpt_demo.json`` in the system temp directory (``--out`` to change).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mixplan import cli as cli_module  # noqa: E402
from mixplan.laws.dcpt import dcpt_loss, own_ratio  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RUNS = REPO / "proxies" / "demo_cpt" / "runs.csv"
CHECK_SEEDS = (11, 12, 13)
BETAS = np.linspace(0.01, 3.0, 300)


def cpt_cli(*argv: object) -> dict:
    """``mixplan cpt ARGV --json`` in-process; the JSON document (exit with mixplan's message on error)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli_module.main(["cpt", *map(str, argv), "--json"])
    if rc != 0:
        sys.exit(f"mixplan cpt {' '.join(map(str, argv))} failed: {err.getvalue().strip()}")
    return json.loads(out.getvalue())


def power_law_baseline(train: pd.DataFrame, test: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    """Per (size, ratio) series: predictions of ``E + B D^-beta`` and of the log-log line at ``test``."""
    pred_pl = np.empty(len(test))
    pred_ll = np.empty(len(test))
    for j, (_, row) in enumerate(test.iterrows()):
        s = train[(train["params"] == row["params"]) & np.isclose(train["ratio"], row["ratio"])]
        D, L = s["tokens"].to_numpy(float), s[col].to_numpy(float)
        best = (np.inf, None)
        for beta in BETAS:
            X = np.column_stack([np.ones_like(D), D ** -beta])
            coef, *_ = np.linalg.lstsq(X, L, rcond=None)
            sse = float(np.sum((X @ coef - L) ** 2))
            if sse < best[0]:
                best = (sse, (coef, beta))
        (E, B), beta = best[1]
        pred_pl[j] = E + B * row["tokens"] ** -beta
        b, a = np.polyfit(np.log(D), np.log(L), 1)
        pred_ll[j] = np.exp(a + b * np.log(row["tokens"]))
    return pred_pl, pred_ll


def law_predict(fit: dict, loss: str, frame: pd.DataFrame) -> np.ndarray:
    p = fit[loss]["params"]
    return dcpt_loss(frame["tokens"].to_numpy(float), own_ratio(frame["ratio"].to_numpy(float), loss), p,
                     frame["params"].to_numpy(float))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=RUNS)
    ap.add_argument("--rise", type=float, default=0.02, help="Usage 1 tolerance T, relative to the base general "
                    "loss (default 0.02 = 2%%)")
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "mixplan_dcpt_demo.json")
    args = ap.parse_args(argv)
    if not args.runs.is_file():
        sys.exit(f"{args.runs} not found: run python examples/cpt_study.py first")
    t0 = time.perf_counter()
    runs = pd.read_csv(args.runs)
    budgets = sorted(runs["tokens"].unique())
    top = budgets[-1]
    train, test = runs[runs["tokens"] < top], runs[runs["tokens"] == top]
    tmp = Path(tempfile.mkdtemp(prefix="mixplan_dcpt_demo_"))
    train.to_csv(tmp / "train.csv", index=False)
    cpt_cli("fit", tmp / "train.csv", "--general", "general_loss", "--domain", "domain_loss",
            "--bootstrap", 0, "--out", tmp / "fit_small.json")
    fit_small = json.loads((tmp / "fit_small.json").read_text())

    result: dict = {"runs": str(args.runs), "train_budgets": budgets[:-1], "test_budget": top,
                    "n_train": len(train), "n_test": len(test), "extrapolation": {}}
    print(f"(a) fit on {len(train)} runs at D = {', '.join(f'{b:,.0f}' for b in budgets[:-1])} bytes; "
          f"predict the {len(test)} runs at D = {top:,.0f} (MAE in bits per byte)\n")
    print(f"{'loss':<8} {'D-CPT (full law)':>17} {'E + B D^-beta':>15} {'log-log line':>13}   "
          f"{'max |err| D-CPT':>16} {'spread of test':>15}")
    for loss, col in (("general", "general_loss"), ("domain", "domain_loss")):
        y = test[col].to_numpy(float)
        law = law_predict(fit_small, loss, test)
        pl, ll = power_law_baseline(train, test, col)
        row = {"mae_dcpt": float(np.mean(np.abs(law - y))), "mae_power_law": float(np.mean(np.abs(pl - y))),
               "mae_loglog": float(np.mean(np.abs(ll - y))), "max_err_dcpt": float(np.max(np.abs(law - y))),
               "max_err_power_law": float(np.max(np.abs(pl - y))), "test_range": float(y.max() - y.min()),
               "params": fit_small[loss]["params"], "warnings": fit_small[loss]["warnings"]}
        # by size
        row["mae_dcpt_by_size"] = {str(int(n)): float(np.mean(np.abs((law - y)[test["params"].to_numpy() == n])))
                                   for n in sorted(test["params"].unique())}
        result["extrapolation"][loss] = row
        print(f"{loss:<8} {row['mae_dcpt']:>17.4f} {row['mae_power_law']:>15.4f} {row['mae_loglog']:>13.4f}   "
              f"{row['max_err_dcpt']:>16.4f} {row['test_range']:>15.4f}")
    for loss in ("general", "domain"):
        p = result["extrapolation"][loss]["params"]
        print(f"  {loss} law: " + ", ".join(f"{k} {v:.4g}" for k, v in p.items()))
        for w in result["extrapolation"][loss]["warnings"]:
            print(f"    warning: {w}")

    # the reduced law per size (one N at a time), same split
    print(f"\n  reduced law fitted per size (7 parameters each), MAE at D = {top:,.0f}:")
    result["extrapolation_reduced"] = {}
    for n in sorted(runs["params"].unique()):
        tr, te = train[train["params"] == n], test[test["params"] == n]
        tr.to_csv(tmp / f"train_{int(n)}.csv", index=False)
        cpt_cli("fit", tmp / f"train_{int(n)}.csv", "--general", "general_loss", "--domain", "domain_loss",
                "--bootstrap", 0, "--out", tmp / f"fit_{int(n)}.json")
        fit_n = json.loads((tmp / f"fit_{int(n)}.json").read_text())
        row = {}
        for loss, col in (("general", "general_loss"), ("domain", "domain_loss")):
            y = te[col].to_numpy(float)
            pl, _ = power_law_baseline(tr, te, col)
            row[loss] = {"mae_dcpt_reduced": float(np.mean(np.abs(law_predict(fit_n, loss, te) - y))),
                         "mae_power_law": float(np.mean(np.abs(pl - y)))}
        result["extrapolation_reduced"][str(int(n))] = row
        print(f"    N = 2**{int(np.log2(n))}: general {row['general']['mae_dcpt_reduced']:.4f} (power law "
              f"{row['general']['mae_power_law']:.4f}), domain {row['domain']['mae_dcpt_reduced']:.4f} (power law "
              f"{row['domain']['mae_power_law']:.4f})")

    # (b) Usage 1 on the fit to every run
    n_top = float(runs["params"].max())
    base = float(runs.loc[runs["params"] == n_top, "base_general_loss"].iloc[0])
    full = cpt_cli("fit", args.runs, "--general", "general_loss", "--domain", "domain_loss",
                   "--bootstrap", args.bootstrap, "--seed", 0, "--out", tmp / "fit_all.json")
    del full
    plan = cpt_cli("plan", tmp / "fit_all.json", "--tokens", top, "--params", n_top, "--max-general-rise", args.rise,
                   "--relative", "--base-general-loss", base)
    r_star = plan["domain_ratio"]
    lo, hi = plan["interval"]["lower"], plan["interval"]["upper"]
    T_abs = args.rise * base
    # the same rule on the fit to the smaller budgets (extrapolated to D = top)
    plan_small = cpt_cli("plan", tmp / "fit_small.json", "--tokens", top, "--params", n_top, "--max-general-rise",
                         args.rise, "--relative", "--base-general-loss", base)
    # the plan's own evidence: the rule on the runs at this size and budget (seed 0), linear between ratios
    g = runs[(runs["params"] == n_top) & (runs["tokens"] == top)].sort_values("ratio")
    rise = g["general_loss"].to_numpy() - base
    rr = g["ratio"].to_numpy()
    at_budget = plan["evidence"].get("runs_at_budget", {})
    grid_cross, grid_se = at_budget.get("crossing"), at_budget.get("crossing_se")
    print(f"\n(b) Usage 1: N = 2**{int(np.log2(n_top))} slots, D = {top:,.0f} bytes, T = {args.rise:.1%} of the base "
          f"general loss {base:.4f} (T = {T_abs:.4f} bpb)")
    iv = f"[{lo:.3f}, {hi:.3f}]" if lo is not None else "(no interval)"
    point = plan.get("point_ratio")
    print(f"  fit on all {len(runs)} runs:       r_d* = {r_star:.3f} (the interval's lower end; the law's own crossing "
          f"{point:.3f}), 95% {iv}" if r_star is not None else "  fit on all runs: no ratio satisfies T")
    ps = plan_small["domain_ratio"]
    ivs = (f"[{plan_small['interval']['lower']:.3f}, {plan_small['interval']['upper']:.3f}]"
           if plan_small["interval"]["lower"] is not None else "(no bootstrap)")
    print(f"  fit on the smaller budgets: r_d* = {ps:.3f} {ivs}" if ps is not None else
          "  fit on the smaller budgets: no ratio satisfies T")
    print("  measured on the grid (seed 0, linear between ratios; the plan's evidence): crossing at "
          + (f"{grid_cross:.3f}" if grid_cross is not None else "none")
          + (f" +- {grid_se:.3f}" if grid_se is not None else "")
          + f" (the law read the same way: {at_budget.get('law_crossing_same_ratios') or float('nan'):.3f})")
    for w in plan["warnings"]:
        print(f"    warning: {w}")
    fit_all = json.loads((tmp / "fit_all.json").read_text())
    g_pred_all = law_predict(fit_all, "general", g)
    g_pred_small = law_predict(fit_small, "general", g)
    print(f"\n  general loss at N = 2**{int(np.log2(n_top))}, D = {top:,.0f} (seed 0): measured vs the law")
    print(f"  {'r_d':>6} {'measured':>9} {'rise':>8} {'law (all)':>10} {'law (small D)':>14}")
    for j in range(len(g)):
        print(f"  {rr[j]:>6.3f} {g['general_loss'].iloc[j]:>9.4f} {rise[j]:>+8.4f} {g_pred_all[j]:>10.4f} "
              f"{g_pred_small[j]:>14.4f}")
    result["usage1_grid"] = {"ratio": rr.tolist(), "measured": g["general_loss"].tolist(),
                             "law_all": g_pred_all.tolist(), "law_small_budgets": g_pred_small.tolist()}

    checks = []
    if r_star is not None:
        from mixplan.demo import proxy_lm

        general = proxy_lm.general_mixture("code")
        bits = int(np.log2(n_top))
        base_tokens = int(runs["base_tokens"].iloc[0])
        jobs = [(general, "code", float(r_star), base_tokens, int(top), s, bits) for s in CHECK_SEEDS]
        for s, res in zip(CHECK_SEEDS, proxy_lm.run_cpts(jobs, processes=args.workers, progress=False)):
            checks.append({"seed": s, "general_loss": res["general_loss"], "base_general_loss": res["base_general_loss"],
                           "rise": res["general_loss"] - res["base_general_loss"],
                           "relative_rise": (res["general_loss"] - res["base_general_loss"]) / res["base_general_loss"],
                           "domain_loss": res["domain_loss"], "base_domain_loss": res["base_domain_loss"]})
        rises = np.array([c["rise"] for c in checks])
        rel = np.array([c["relative_rise"] for c in checks])
        pred_rise = float(dcpt_loss(top, 1 - r_star, json.loads((tmp / "fit_all.json").read_text())["general"]["params"],
                                    n_top) - base)
        print(f"\n  trained r_d = {r_star:.3f} at D = {top:,.0f}, seeds {', '.join(map(str, CHECK_SEEDS))}:")
        print(f"  {'seed':>6} {'base L_g':>9} {'L_g':>9} {'rise':>9} {'rel. rise':>10} {'L_d':>9}")
        for c in checks:
            print(f"  {c['seed']:>6} {c['base_general_loss']:>9.4f} {c['general_loss']:>9.4f} {c['rise']:>+9.4f} "
                  f"{c['relative_rise']:>+10.2%} {c['domain_loss']:>9.4f}")
        print(f"  measured rise {rises.mean():+.4f} +- {rises.std(ddof=1):.4f} bpb ({rel.mean():+.2%} +- "
              f"{rel.std(ddof=1):.2%}); predicted {pred_rise:+.4f}; T = {T_abs:.4f} bpb ({args.rise:.1%})")
        result["usage1_check"] = {"seeds": list(CHECK_SEEDS), "runs": checks, "rise_mean": float(rises.mean()),
                                  "rise_sd": float(rises.std(ddof=1)), "relative_rise_mean": float(rel.mean()),
                                  "relative_rise_sd": float(rel.std(ddof=1)), "predicted_rise": pred_rise}
    result["usage1"] = {"T_relative": args.rise, "T_absolute": T_abs, "base_general_loss": base, "params": n_top,
                        "tokens": top, "domain_ratio": r_star, "point_ratio": point, "interval": [lo, hi],
                        "domain_ratio_small_budget_fit": ps, "measured_grid_crossing": grid_cross,
                        "warnings": plan["warnings"]}
    result["seconds"] = round(time.perf_counter() - t0, 1)
    args.out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"\nwrote {args.out} ({result['seconds']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
