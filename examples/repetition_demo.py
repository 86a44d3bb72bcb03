"""Repetition-aware planning on the demo study: train the three optima at a budget that repeats data.

Plans the demo's main job (examples/demo_plan.toml) with the repetition-aware objective fitted on the
demo's proxy runs and their 4x-budget runs (``--repetition-runs proxies/demo/runs_4x.csv``), at two
target budgets: one where the repetition-blind optimum reads a pool many times (16M bytes: `news`
holds 351k) and one where no pool repeats (250k bytes). At each, trains the repetition-aware
(``recommended``), repetition-blind (no epoch caps) and hard-cap (4 epochs) mixtures with the demo
proxy LM, 3 seeds each, and prints predicted vs measured bits per byte::

    python examples/repetition_demo.py [--seeds 3] [--json-out results.json]

Exit code 0 when, at the repeating budget, the repetition-aware mixture has the lowest mean measured
loss and, at the budget without repetition, the three agree within noise (means within 2 pooled sd).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from contextlib import redirect_stdout
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from mixplan import Objective  # noqa: E402
from mixplan.cli import main as mixplan_main  # noqa: E402
from mixplan.demo import proxy_lm  # noqa: E402

HERE = Path(__file__).resolve().parent
MIXTURES = ("recommended", "repetition_blind", "hard_cap")
SEED_BASE = 7000  # as verify_plan.py: not the seeds of the shipped runs (1000 + i)


def plan_at(tokens: float, seed: int) -> dict:
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = mixplan_main(["plan", str(HERE / "demo_plan.toml"), "--tokens", str(tokens), "--repetition-runs",
                             str(HERE.parent / "proxies" / "demo" / "runs_4x.csv"), "--seed", str(seed), "--json"])
    if code != 0:
        raise SystemExit(f"mixplan plan at {tokens:g} failed (exit {code})")
    return json.loads(buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeating", type=float, default=16e6, help="budget where the blind optimum repeats (bytes)")
    ap.add_argument("--fresh", type=float, default=2.5e5, help="budget where nothing repeats (bytes)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0, help="plan seed")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)

    budgets = {"repeating": args.repeating, "fresh": args.fresh}
    plans = {k: plan_at(t, args.seed) for k, t in budgets.items()}
    objective = Objective.from_dict(plans["repeating"]["objective"])
    jobs = {(k, name, s): (plans[k]["mixtures"][name]["weights"], int(budgets[k]), SEED_BASE + s)
            for k in budgets for name in MIXTURES for s in range(args.seeds)}
    results = dict(zip(jobs, proxy_lm.run_proxies(jobs.values(), processes=args.workers)))

    out: dict = {"objective": objective.to_dict(), "seeds": args.seeds, "budgets": {}}
    ok = True
    for k, tokens in budgets.items():
        rep = plans[k]["repetition"]
        print(f"\n{k} budget: {tokens:,.0f} bytes; R* = {rep['r_star']:.3g}, gamma = {rep['gamma']:.3g}")
        print(f"{'mixture':<18}{'max epochs':>11}{'objective':>10}{'predicted run':>15}{'measured mean':>15}{'sd':>8}")
        rows = {}
        for name in MIXTURES:
            m = plans[k]["mixtures"][name]
            vals = np.array([objective.value_of(results[(k, name, s)]) for s in range(args.seeds)])
            # the objective searched, and the prediction on the scale of runs at this budget
            rows[name] = {"weights": m["weights"], "max_epochs": max(m["epochs"].values()),
                          "objective_at_budget": m["at_budget"]["objective"],
                          "predicted_run": m["at_budget"]["prediction"], "measured": vals.tolist(),
                          "mean": float(vals.mean()), "sd": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0}
            r = rows[name]
            print(f"{name:<18}{r['max_epochs']:>11.2f}{r['objective_at_budget']:>10.4f}{r['predicted_run']:>15.4f}"
                  f"{r['mean']:>15.4f}{r['sd']:>8.4f}")
        means = {n: r["mean"] for n, r in rows.items()}
        if k == "repeating":
            best = min(means, key=lambda n: objective.sense * means[n])
            passed = best == "recommended"
            print(f"lowest measured loss: {best} ({'PASS' if passed else 'FAIL'}: repetition-aware should win)")
        else:
            sd = float(np.sqrt(np.mean([r["sd"] ** 2 for r in rows.values()])))
            spread = max(means.values()) - min(means.values())
            passed = spread <= 2 * sd + 1e-12
            print(f"spread of the means {spread:.4f} vs 2 x pooled sd {2 * sd:.4f} ({'PASS' if passed else 'FAIL'}: "
                  "all three should agree)")
        ok &= passed
        out["budgets"][k] = {"tokens": tokens, "repetition": rep, "mixtures": rows, "pass": passed}
    if args.json_out:
        args.json_out.write_text(json.dumps(out, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
