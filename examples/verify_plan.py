"""Closed loop on the demo study: train the proxy LM on the plan's mixtures and compare with predictions.

Trains the recommended, token-proportional, uniform and best-observed mixtures of a demo plan at the
plan's target budget, several seeds each, and prints measured vs predicted objective::

    python examples/verify_plan.py                      # plans with examples/demo_plan.toml first
    python examples/verify_plan.py --plan out/plan.json --seeds 3 --json-out verify.json
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
MIXTURES = ("recommended", "token_proportional", "uniform", "best_observed")
SEED_BASE = 7000


def load_plan(path: Path | None, config: Path) -> dict:
    if path is not None:
        return json.loads(path.read_text())
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = mixplan_main(["plan", str(config), "--json"])
    if code != 0:
        raise SystemExit(f"mixplan plan {config} failed (exit {code})")
    return json.loads(buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plan", type=Path, help="plan.json from 'mixplan plan --out' (default: plan now)")
    ap.add_argument("--config", type=Path, default=HERE / "demo_plan.toml")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--tokens", type=int, help="training budget (default: the plan's target tokens)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json-out", type=Path, help="also write the results as JSON")
    args = ap.parse_args(argv)

    plan = load_plan(args.plan, args.config)
    tokens = int(args.tokens or plan["target_tokens"] or proxy_lm.DEMO_TOKENS)
    objective = Objective.from_dict(plan["objective"])
    jobs = {f"{name}/{s}": (plan["mixtures"][name]["weights"], tokens, SEED_BASE + s)
            for name in MIXTURES if name in plan["mixtures"] for s in range(args.seeds)}
    results = dict(zip(jobs, proxy_lm.run_proxies(jobs.values(), processes=args.workers)))

    rows = {}
    for name in MIXTURES:
        if name not in plan["mixtures"]:
            continue
        m = plan["mixtures"][name]
        vals = np.array([objective.value_of(results[f"{name}/{s}"]) for s in range(args.seeds)])
        rows[name] = {"predicted": m["prediction"], "lower": m["lower"], "upper": m["upper"],
                      "measured": vals.tolist(), "measured_mean": float(vals.mean()),
                      "measured_sd": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                      "inside_interval": int(((vals >= m["lower"]) & (vals <= m["upper"])).sum())}
    sense = objective.sense
    print(f"objective: {objective.spec} ({'maximize' if objective.maximize else 'minimize'}) at "
          f"{tokens:,} tokens, {args.seeds} seeds")
    print(f"{'mixture':<20}{'predicted':>10}  {'interval':<20}{'measured mean':>14}{'sd':>8}  in interval")
    for name, r in rows.items():
        print(f"{name:<20}{r['predicted']:>10.4f}  [{r['lower']:.4f}, {r['upper']:.4f}]  "
              f"{r['measured_mean']:>12.4f}{r['measured_sd']:>8.4f}  {r['inside_interval']}/{args.seeds}")
    rec = rows["recommended"]["measured_mean"]
    beats = {n: bool(sense * rec < sense * r["measured_mean"]) for n, r in rows.items() if n != "recommended"}
    for n, ok in beats.items():
        print(f"recommended beats {n}: {'yes' if ok else 'NO'} "
              f"({rec:.4f} vs {rows[n]['measured_mean']:.4f})")
    if args.json_out:
        args.json_out.write_text(json.dumps({"tokens": tokens, "seeds": args.seeds, "objective": objective.to_dict(),
                                             "mixtures": rows, "recommended_beats": beats}, indent=2) + "\n")
    return 0 if all(beats.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
