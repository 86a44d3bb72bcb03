"""Scale benchmark (issue 22): time and peak memory of ``mixplan fit`` and ``mixplan plan`` as pools and
runs grow, with the fitted model's held-out accuracy beside them so that speed is never bought with it.

Synthetic studies (``mixplan.demo.synthetic.make_study(P, seed)``): runs on Dirichlet(1) mixtures over P
pools, a smooth convex target with a log term plus Gaussian noise (sd 0.005); every pool has 1e9 tokens.
For each size P x n of the grid, one study (seed 0), n training runs (seed 1) and 500 held-out mixtures
(seed 2), then, each in a fresh process (interpreter start and imports included, as a user waits):

- ``mixplan fit RUNS --pools POOLS --target loss --out DIR`` (``--model auto``);
- ``mixplan plan --runs RUNS --pools POOLS --target loss --out DIR`` (fits again, then searches).

Reported per size: wall and CPU seconds and peak RSS of each command (``os.wait4``; medians of
``--repeats`` runs, the machine is shared), fit + plan wall, and the Spearman rho of the fitted model's predictions against the noise-free target on the 500
held-out mixtures. Checks (issue 22): 400 x 2,000 fit + plan <= 60 s wall and peak RSS <= 4 GB;
17 x 512 fit <= 5 s and plan <= 5 s. ``--repetition`` adds the repetition-aware demo plan
(``--tokens 16e6 --repetition-runs proxies/demo/runs_4x.csv``), checked <= 30 s. ``--jobs`` is passed
to both commands (default: the commands' own default, every core).

Run::

    python tests/benchmarks/scale.py [--sizes 17x512 400x2000 ...] [--repetition] [--out RESULTS.json]
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # pin BLAS threads: --jobs decides the parallelism

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from _common import REPO  # noqa: E402

GRID = ("8x2000", "17x512", "17x2000", "50x2000", "400x128", "400x512", "400x2000")
N_TEST = 500
NOISE = 0.005
BIG, BIG_WALL, BIG_RSS_GB = "400x2000", 60.0, 4.0
REGMIX, REGMIX_WALL = "17x512", 5.0
REPETITION_WALL = 30.0


#: The checkout whose ``mixplan`` the commands run (``--code``: e.g. a worktree of an older commit, for
#: a side-by-side "before"); its folder is the commands' working directory, so it is imported first.
CODE = [REPO]


def measured(argv: list[str], jobs: int | None) -> dict[str, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (GB) of ``mixplan ARGV`` in a fresh process."""
    cmd = [sys.executable, "-c", "import sys; from mixplan.cli import main; sys.exit(main(sys.argv[1:]))", *argv]
    if jobs is not None:
        cmd += ["--jobs", str(jobs)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=CODE[0], env=dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1",
                                                     HF_DATASETS_OFFLINE="1"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"mixplan {' '.join(argv)} failed ({proc.returncode}): {stderr.decode()[-2000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_gb": usage.ru_maxrss / 1024 ** 2}


def write_study(folder: Path, n_pools: int, n_runs: int) -> tuple[Path, Path, Any]:
    from mixplan.demo.synthetic import make_study

    study = make_study(n_pools, seed=0)
    runs = study.runs(n_runs, seed=1, noise=NOISE).drop(columns=["loss_other"])
    runs_csv = folder / "runs.csv"
    runs.to_csv(runs_csv, index=False, float_format="%.10g")
    pools_toml = folder / "pools.toml"
    pools_toml.write_text("".join(f"[pools.{p}]\ntokens = 1000000000\n" for p in study.names), encoding="utf-8")
    return runs_csv, pools_toml, study


def held_out_spearman(model_dir: Path, study: Any) -> float:
    """Spearman of the saved model's predictions (``mixplan predict`` of the code measured) against the
    noise-free target on the held-out mixtures."""
    W = np.random.default_rng(2).dirichlet(np.ones(len(study.names)), size=N_TEST)
    mixes = model_dir.parent / "held_out.csv"
    frame = pd.DataFrame(W, columns=[f"w_{p}" for p in study.names])
    frame.insert(0, "run_id", [f"t{i}" for i in range(N_TEST)])
    frame.to_csv(mixes, index=False, float_format="%.17g")
    measured(["predict", str(model_dir), str(mixes), "--out", str(model_dir.parent / "pred.csv")], None)
    pred = pd.read_csv(model_dir.parent / "pred.csv")["prediction"].to_numpy()
    return float(spearmanr(pred, study.true_objective(W))[0])


def median_of(argv: list[str], jobs: int | None, repeats: int) -> dict[str, Any]:
    """:func:`measured` ``repeats`` times (``--force``: the same output folder); medians and every run."""
    runs = [measured(argv + (["--force"] if k else []), jobs) for k in range(repeats)]
    return {key: median(r[key] for r in runs) for key in runs[0]} | {"runs": runs}


def one_size(size: str, jobs: int | None, repeats: int) -> dict[str, Any]:
    n_pools, n_runs = (int(v) for v in size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        runs_csv, pools_toml, study = write_study(folder, n_pools, n_runs)
        common = ["--pools", str(pools_toml), "--target", "loss"]
        fit = median_of(["fit", str(runs_csv), *common, "--out", str(folder / "fit")], jobs, repeats)
        plan = median_of(["plan", "--runs", str(runs_csv), *common, "--out", str(folder / "plan")], jobs, repeats)
        rho = held_out_spearman(folder / "fit", study)
    return {"size": size, "pools": n_pools, "runs": n_runs, "fit": fit, "plan": plan,
            "fit_plus_plan_wall_s": fit["wall_s"] + plan["wall_s"], "held_out_spearman": rho}


def repetition_plan(jobs: int | None, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return median_of(["plan", "--runs", "proxies/demo/runs.csv", "--pools", "pools/demo.toml", "--target",
                          "bpb_reviews", "--tokens", "16e6", "--repetition-runs", "proxies/demo/runs_4x.csv",
                          "--out", str(Path(tmp) / "plan")], jobs, repeats)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=list(GRID), help="POOLSxRUNS, e.g. 17x512 (default: the grid)")
    ap.add_argument("--repetition", action="store_true", help="also time the repetition-aware demo plan")
    ap.add_argument("--jobs", type=int, default=None, help="--jobs for both commands (default: theirs)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each command; medians are reported")
    ap.add_argument("--code", type=Path, default=REPO, help="the checkout whose mixplan runs (default: this one)")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = ap.parse_args()
    CODE[0] = args.code.resolve()

    rows = []
    print(f"{'pools x runs':>12} | {'fit wall':>8} {'cpu':>6} {'RSS GB':>6} | {'plan wall':>9} {'cpu':>6} "
          f"{'RSS GB':>6} | {'fit+plan':>8} | {'held-out rho':>12}")
    for size in args.sizes:
        r = one_size(size, args.jobs, args.repeats)
        rows.append(r)
        f, p = r["fit"], r["plan"]
        print(f"{size:>12} | {f['wall_s']:8.1f} {f['cpu_s']:6.1f} {f['peak_rss_gb']:6.2f} | {p['wall_s']:9.1f} "
              f"{p['cpu_s']:6.1f} {p['peak_rss_gb']:6.2f} | {r['fit_plus_plan_wall_s']:8.1f} | "
              f"{r['held_out_spearman']:12.4f}", flush=True)
    checks: dict[str, bool] = {}
    by_size = {r["size"]: r for r in rows}
    if BIG in by_size:
        big = by_size[BIG]
        checks[f"{BIG} fit + plan <= {BIG_WALL:g} s"] = big["fit_plus_plan_wall_s"] <= BIG_WALL
        checks[f"{BIG} peak RSS <= {BIG_RSS_GB:g} GB"] = max(big["fit"]["peak_rss_gb"],
                                                            big["plan"]["peak_rss_gb"]) <= BIG_RSS_GB
    if REGMIX in by_size:
        checks[f"{REGMIX} fit <= {REGMIX_WALL:g} s"] = by_size[REGMIX]["fit"]["wall_s"] <= REGMIX_WALL
        checks[f"{REGMIX} plan <= {REGMIX_WALL:g} s"] = by_size[REGMIX]["plan"]["wall_s"] <= REGMIX_WALL
    repetition = None
    if args.repetition:
        repetition = repetition_plan(args.jobs, args.repeats)
        print(f"repetition-aware demo plan: {repetition['wall_s']:.1f} s wall, {repetition['cpu_s']:.1f} s CPU, "
              f"{repetition['peak_rss_gb']:.2f} GB")
        checks[f"repetition-aware demo plan <= {REPETITION_WALL:g} s"] = repetition["wall_s"] <= REPETITION_WALL
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "repetition_plan": repetition, "checks": checks,
                                        "cpu_count": os.cpu_count()}, indent=2) + "\n", encoding="utf-8")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
