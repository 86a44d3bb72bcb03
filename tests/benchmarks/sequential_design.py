"""Sequential design benchmark: rounds of ``mixplan design --next`` vs a random swarm, equal run counts.

Known truth (default). For each seed, a synthetic study (:func:`mixplan.demo.synthetic.make_study`,
``--pools`` pools, runs measured with Gaussian noise ``--noise``) and two ways to spend the same
number of proxy runs:

* random: ``mixplan design --n N0+K*R`` (a RegMix-style swarm); its first N runs are a random swarm
  of N runs;
* sequential: the first N0 runs of that swarm, then R rounds of ``mixplan design --next K`` (the
  proposals are measured on the truth with the same noise and appended).

At every total run count N = N0, N0+K, ..., N0+K*R, ``mixplan plan`` recommends a mixture from each
arm's runs and its regret is ``true_objective(recommended) - true minimum``; the true minimum over
the simplex is found by SLSQP from several starts (the objective is convex) and checked against a
fine :func:`mixplan.simplex.search` on the truth. Both arms go through the CLI in-process. Printed:
median regret over seeds per run count and how often the sequential arm is better; JSON has every
seed.

Demo (``--demo``): the same comparison on the demo proxy LM (``mixplan.demo.proxy_lm``, target
``bpb_reviews``, ``pools/demo.toml``, proxy budget 1M bytes). The random arm is a slice of the
shipped swarm ``proxies/demo/runs.csv`` (designed by ``design_swarm``; demo seed d uses runs
48d+1 .. 48d+48, so no training is needed for it); the sequential arm starts from the first
``--demo-n0`` runs of that slice and trains ``--demo-rounds`` rounds of ``--demo-k`` proposals.
Every recommended mixture is then trained with ``--proxy-seeds`` proxy seeds (the same seeds for
every mixture, so that differences are not seed noise), as does the plan from all 128 shipped runs
(the reference); regret = measured mean - the best measured mean of all recommendations.

Run::

    /work/venv/bin/python tests/benchmarks/sequential_design.py [--seeds 8] [--out RESULTS.json]
    /work/venv/bin/python tests/benchmarks/sequential_design.py --demo [--demo-seeds 2] [--workers 2]
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
from statistics import median

import numpy as np
import pandas as pd

from _common import cli  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEMO_RUNS = REPO / "proxies" / "demo" / "runs.csv"
DEMO_POOLS = REPO / "pools" / "demo.toml"
DEMO_TARGET = "bpb_reviews"
DEMO_TOKENS = 1_000_000
EVAL_SEED_BASE = 7000  # proxy seeds of the evaluation runs (as examples/verify_plan.py)
NEXT_SEED_BASE = 30_000  # proxy seeds of the trained proposals (the shipped runs use 1000 + i)


def plan_weights(runs_csv: Path, pools: Path, target: str, model: str, names: list[str],
                 tokens: float | None = None) -> np.ndarray:
    extra = ["--tokens", tokens] if tokens is not None else []
    doc = json.loads(cli("plan", "--runs", runs_csv, "--pools", pools, "--target", target, "--model", model,
                         "--json", *extra))
    return np.array([doc["recommended"][p] for p in names])


def propose(runs_csv: Path, pools: Path, target: str, model: str, k: int, out: Path, seed: int,
            tokens: float | None = None) -> pd.DataFrame:
    extra = ["--tokens", tokens] if tokens is not None else []
    cli("design", "--pools", pools, "--next", k, "--runs", runs_csv, "--target", target, "--model", model,
        "--out", out, "--seed", seed, "--json", *extra)
    return pd.read_csv(out / "mixtures.csv")


# ------------------------------------------------------------------------------------ known truth


def true_minimum(study) -> float:
    """Minimum of the (convex) true objective over the simplex: SLSQP from several starts, checked
    by a fine constrained search on the truth itself."""
    from scipy.optimize import minimize

    from mixplan.data.pools import PoolSet
    from mixplan.simplex import build_constraints, search

    P = len(study.names)
    cons = [{"type": "eq", "fun": lambda w: w.sum() - 1}]
    values = []
    for x0 in [study.w_star, np.full(P, 1 / P), *np.eye(P) * 0.5 + 0.5 / P]:
        r = minimize(lambda w: study.true_objective(w)[0], x0, method="SLSQP", bounds=[(0, 1)] * P,
                     constraints=cons, options={"ftol": 1e-13, "maxiter": 1000})
        w = np.clip(r.x, 0, 1)
        values.append(float(study.true_objective(w / w.sum())[0]))
    c = build_constraints(PoolSet.from_names(study.names))
    s = search(lambda W, fast: study.true_objective(W), c, np.full(P, 1 / P), n_candidates=200_000,
               refine_rounds=64)
    return min(min(values), s.score)


def synthetic_seed(seed: int, args: argparse.Namespace, tmp: Path) -> dict:
    from mixplan.demo.synthetic import make_study

    study = make_study(args.pools, seed=seed)
    names = study.names
    cols = [f"w_{p}" for p in names]
    f_min = true_minimum(study)
    d = tmp / f"seed{seed}"
    d.mkdir()
    manifest = d / "pools.toml"
    manifest.write_text("".join(f"[pools.{n}]\ntokens = 1e9\n" for n in names), encoding="utf-8")
    total = args.n0 + args.k * args.rounds
    cli("design", "--pools", manifest, "--n", total, "--out", d / "swarm", "--seed", seed, "--json")
    swarm = pd.read_csv(d / "swarm" / "mixtures.csv")
    rng = np.random.default_rng([seed, 1])
    swarm["loss"] = study.true_objective(swarm[cols].to_numpy()) + args.noise * rng.normal(size=len(swarm))
    counts = [args.n0 + args.k * r for r in range(args.rounds + 1)]

    def regret(runs: pd.DataFrame, name: str) -> float:
        path = d / f"{name}.csv"
        runs.to_csv(path, index=False)
        w = plan_weights(path, manifest, "loss", args.model, names)
        return float(study.true_objective(w)[0]) - f_min

    random_regret = [regret(swarm.iloc[:n], f"random_{n}") for n in counts]
    runs = swarm.iloc[:args.n0].copy()
    seq_regret = [random_regret[0]]  # the same N0 runs
    noise_rng = np.random.default_rng([seed, 2])
    for r in range(args.rounds):
        path = d / f"sequential_{len(runs)}.csv"
        runs.to_csv(path, index=False)
        new = propose(path, manifest, "loss", args.model, args.k, d / f"next{r}", seed=r)
        new = new[["run_id", *cols]].copy()
        new["loss"] = study.true_objective(new[cols].to_numpy()) + args.noise * noise_rng.normal(size=len(new))
        runs = pd.concat([runs, new], ignore_index=True)
        seq_regret.append(regret(runs, f"sequential_{len(runs)}"))
    return {"seed": seed, "true_minimum": f_min, "counts": counts, "random": random_regret,
            "sequential": seq_regret}


def synthetic(args: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="mixplan_seq_") as tmp:
        for seed in range(args.seeds):
            t = time.perf_counter()
            rows.append(synthetic_seed(seed, args, Path(tmp)))
            r = rows[-1]
            print(f"seed {seed}: random {np.round(r['random'], 4).tolist()}  sequential "
                  f"{np.round(r['sequential'], 4).tolist()}  ({time.perf_counter() - t:.0f} s)", flush=True)
    counts = rows[0]["counts"]
    R = np.array([r["random"] for r in rows])
    S = np.array([r["sequential"] for r in rows])
    print(f"\nKnown truth: {args.pools} pools, noise sd {args.noise}, model {args.model}, {args.seeds} seeds; "
          f"regret = true objective of the plan's recommendation - true minimum")
    print(f"sequential = {args.n0} random runs + rounds of {args.k} from 'mixplan design --next {args.k}'")
    print(f"{'runs':>5} {'random median':>14} {'sequential median':>18} {'random mean':>12} "
          f"{'sequential mean':>16} {'sequential better':>18}")
    table = []
    for j, n in enumerate(counts):
        better = int((S[:, j] < R[:, j]).sum())
        row = {"runs": n, "random_median": float(np.median(R[:, j])), "sequential_median": float(np.median(S[:, j])),
               "random_mean": float(R[:, j].mean()), "sequential_mean": float(S[:, j].mean()),
               "sequential_better": better, "seeds": len(rows)}
        table.append(row)
        print(f"{n:>5} {row['random_median']:>14.4f} {row['sequential_median']:>18.4f} {row['random_mean']:>12.4f} "
              f"{row['sequential_mean']:>16.4f} {f'{better}/{len(rows)}' if j else '(same runs)':>18}")
    runtime = time.perf_counter() - t0
    print(f"runtime {runtime:.0f} s")
    return {"mode": "synthetic", "settings": {"pools": args.pools, "seeds": args.seeds, "n0": args.n0, "k": args.k,
                                               "rounds": args.rounds, "noise": args.noise, "model": args.model},
            "table": table, "per_seed": rows, "runtime_s": runtime}


# ------------------------------------------------------------------------------------------ demo


def train(jobs: list[tuple[dict, int, int]], workers: int) -> list[dict]:
    from mixplan.demo import proxy_lm

    return proxy_lm.run_proxies(jobs, processes=workers, progress=False)


def demo(args: argparse.Namespace) -> dict:
    from mixplan import Objective

    t0 = time.perf_counter()
    shipped = pd.read_csv(DEMO_RUNS)
    names = [c[2:] for c in shipped.columns if c.startswith("w_")]
    cols = [f"w_{p}" for p in names]
    objective = Objective(DEMO_TARGET, (DEMO_TARGET,), (1.0,))
    total = args.demo_n0 + args.demo_k * args.demo_rounds
    if total * args.demo_seeds > len(shipped):
        sys.exit(f"{args.demo_seeds} demo seeds x {total} runs exceed the {len(shipped)} shipped runs")
    counts = [args.demo_n0 + args.demo_k * r for r in range(args.demo_rounds + 1)]
    recommended: dict[str, np.ndarray] = {}
    timings = {"fit_and_plan_s": 0.0, "train_s": 0.0}
    trained = 0
    with tempfile.TemporaryDirectory(prefix="mixplan_seq_demo_") as tmp_name:
        tmp = Path(tmp_name)

        def plan(runs: pd.DataFrame, name: str) -> np.ndarray:
            path = tmp / f"{name}.csv"
            runs.to_csv(path, index=False)
            t = time.perf_counter()
            w = plan_weights(path, DEMO_POOLS, DEMO_TARGET, args.demo_model, names, DEMO_TOKENS)
            timings["fit_and_plan_s"] += time.perf_counter() - t
            return w

        recommended["all128"] = plan(shipped, "all128")
        for d in range(args.demo_seeds):
            block = shipped.iloc[d * total:(d + 1) * total].reset_index(drop=True)
            for n in counts[1:]:
                recommended[f"d{d}/random/{n}"] = plan(block.iloc[:n], f"d{d}_random_{n}")
            runs = block.iloc[:args.demo_n0].copy()
            recommended[f"d{d}/start/{args.demo_n0}"] = plan(runs, f"d{d}_start")
            for r in range(args.demo_rounds):
                path = tmp / f"d{d}_seq_{len(runs)}.csv"
                runs.to_csv(path, index=False)
                t = time.perf_counter()
                new = propose(path, DEMO_POOLS, DEMO_TARGET, args.demo_model, args.demo_k, tmp / f"d{d}_next{r}",
                              seed=r, tokens=DEMO_TOKENS)
                timings["fit_and_plan_s"] += time.perf_counter() - t
                base = NEXT_SEED_BASE + 1000 * d + len(runs)  # a fresh proxy seed for every trained run
                jobs = [({p: float(row[f"w_{p}"]) for p in names}, DEMO_TOKENS, base + i)
                        for i, (_, row) in enumerate(new.iterrows())]
                t = time.perf_counter()
                metrics = train(jobs, args.workers)
                timings["train_s"] += time.perf_counter() - t
                trained += len(jobs)
                rows = [{"run_id": rid} | {c: row[c] for c in cols} | {"tokens": DEMO_TOKENS, "seed": job[2]} | m
                        for rid, (_, row), job, m in zip(new["run_id"], new.iterrows(), jobs, metrics)]
                runs = pd.concat([runs, pd.DataFrame(rows)], ignore_index=True)
                best_new = min(objective.value_of(m) for m in metrics)
                print(f"demo seed {d} round {r + 1}: {len(jobs)} proposals trained, best {DEMO_TARGET} "
                      f"{best_new:.4f} (best so far {runs[DEMO_TARGET].min():.4f})", flush=True)
                recommended[f"d{d}/sequential/{len(runs)}"] = plan(runs, f"d{d}_seq_{len(runs)}")
        # Every recommendation trained with the same proxy seeds.
        keys = list(recommended)
        jobs = [({p: float(w) for p, w in zip(names, recommended[k])}, DEMO_TOKENS, EVAL_SEED_BASE + s)
                for k in keys for s in range(args.proxy_seeds)]
        t = time.perf_counter()
        out = train(jobs, args.workers)
        timings["train_s"] += time.perf_counter() - t
        trained += len(jobs)
    measured = {k: np.array([objective.value_of(out[i * args.proxy_seeds + s]) for s in range(args.proxy_seeds)])
                for i, k in enumerate(keys)}
    best = min(float(v.mean()) for v in measured.values())
    table = []
    print(f"\nDemo proxy LM: {DEMO_TARGET} (bits per byte, smaller is better) of each plan's recommendation, "
          f"trained with {args.proxy_seeds} proxy seeds; model {args.demo_model}")
    print(f"regret = measured mean - best measured mean of all recommendations ({best:.4f})")
    print(f"{'demo seed':>9} {'runs':>5} {'random':>16} {'sequential':>16} {'regret random':>14} "
          f"{'regret seq':>11}")
    for d in range(args.demo_seeds):
        for n in counts:
            ra = measured[f"d{d}/start/{n}"] if n == args.demo_n0 else measured[f"d{d}/random/{n}"]
            sq = measured[f"d{d}/start/{n}"] if n == args.demo_n0 else measured[f"d{d}/sequential/{n}"]
            row = {"demo_seed": d, "runs": n, "random_mean": float(ra.mean()), "random_sd": float(ra.std(ddof=1)),
                   "sequential_mean": float(sq.mean()), "sequential_sd": float(sq.std(ddof=1)),
                   "random_regret": float(ra.mean()) - best, "sequential_regret": float(sq.mean()) - best}
            table.append(row)
            print(f"{d:>9} {n:>5} {ra.mean():>9.4f} ± {ra.std(ddof=1):.4f} {sq.mean():>9.4f} ± {sq.std(ddof=1):.4f} "
                  f"{row['random_regret']:>14.4f} {row['sequential_regret']:>11.4f}")
    ref = measured["all128"]
    print(f"reference: plan from all {len(shipped)} shipped runs: {ref.mean():.4f} ± {ref.std(ddof=1):.4f}")
    for n in counts[1:]:
        r = [t["random_regret"] for t in table if t["runs"] == n]
        s = [t["sequential_regret"] for t in table if t["runs"] == n]
        print(f"median regret at {n} runs: random {median(r):.4f}, sequential {median(s):.4f}")
    runtime = time.perf_counter() - t0
    print(f"runtime {runtime:.0f} s (fits and plans {timings['fit_and_plan_s']:.0f} s, {trained} proxy runs trained "
          f"in {timings['train_s']:.0f} s on {args.workers} workers)")
    return {"mode": "demo", "settings": {"n0": args.demo_n0, "k": args.demo_k, "rounds": args.demo_rounds,
                                          "seeds": args.demo_seeds, "proxy_seeds": args.proxy_seeds,
                                          "model": args.demo_model, "target": DEMO_TARGET, "tokens": DEMO_TOKENS},
            "table": table, "best_measured": best,
            "recommended": {k: dict(zip(names, map(float, w))) for k, w in recommended.items()},
            "measured": {k: v.tolist() for k, v in measured.items()}, "runtime_s": runtime,
            "timings_s": timings, "proxy_runs_trained": trained}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "mixplan_sequential_design.json")
    ap.add_argument("--seeds", type=int, default=8, help="synthetic studies (seeds 0..N-1)")
    ap.add_argument("--pools", type=int, default=8)
    ap.add_argument("--n0", type=int, default=24, help="initial random runs of the sequential arm")
    ap.add_argument("--k", type=int, default=8, help="proposals per round")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--noise", type=float, default=0.01, help="sd of the synthetic measurement noise")
    ap.add_argument("--model", default="gp", help="model of plan and design --next (default gp: auto is ~30x slower)")
    ap.add_argument("--demo", action="store_true", help="run the demo proxy-LM comparison instead (trains runs)")
    ap.add_argument("--demo-seeds", type=int, default=2)
    ap.add_argument("--demo-n0", type=int, default=24)
    ap.add_argument("--demo-k", type=int, default=8)
    ap.add_argument("--demo-rounds", type=int, default=3)
    ap.add_argument("--demo-model", default="auto")
    ap.add_argument("--proxy-seeds", type=int, default=3, help="proxy seeds per evaluated recommendation")
    ap.add_argument("--workers", type=int, default=2, help="processes training proxy runs")
    args = ap.parse_args()
    doc = demo(args) if args.demo else synthetic(args)
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
