"""OT extrapolator (Projektor) on the demo study: size extrapolation, selection speed, trained selection.

Not collected by pytest. Run from the repository root::

    python tests/benchmarks/ot_extrapolation.py [--out PATH] [--no-train] [--repeats 3]

1. **Extrapolation to 4B.** ``mixplan ot fit`` on the demo runs at B/2 (``runs_half.csv``) and B
   (``runs.csv``), revealed samples ``demo`` (200 pieces of 512 bytes per pool) and the target's
   held-out text as the validation set; then predict the 32 runs at 4B (``runs_4x.csv``, the same
   mixtures at four times the budget). Side by side on those 32 runs (MAE, Spearman rho, coverage and
   width of the 90% intervals where a method has them):

   * ``ot`` / ``ot-log``: the OT extrapolator, stage 2 on the metric (the paper) / on its log;
   * ``... + 16 check runs``: the same, with stage 2's curvature calibrated on 16 of the 4B runs
     (``--check-runs``) and scored on the other 16 (two folds, so every run is scored once);
   * ``regressor``: ``mixplan fit runs.csv`` (model auto) predicting at B - what the core plan shows;
   * ``regressor ln-line``: the regressor fitted at B/2 and at B, joined by the same straight line in
     ln N (stage 2 without OT);
   * ``regressor + OT trend``: the regressor at B plus the OT extrapolator's change from B to 4B
     (``mixplan plan --ot-mode size``);
   * ``naive``: the measured value of the same mixture at B.

2. **Selection speed.** ``OTExtrapolator.select`` on 6 and 8 pools of 200 revealed samples against
   2,000 validation points (64-d unit vectors in Gaussian clusters, exact OT), stage 1 fitted on 48
   synthetic runs at two sizes; median seconds over ``--repeats`` cold starts (cache empty). Goal: <= 10 s.

3. **Trained selection** (skipped with ``--no-train``). ``mixplan plan examples/demo_plan.toml
   --tokens 4e6 --ot DIR``: the core plan's recommendation (regressor, availability caps at 4B) and the
   OT-selected mixture (same caps), and the size-mode recommendation, each trained with the demo proxy
   LM at 4B with 3 seeds; measured bits per byte on reviews beside the predictions.

Prints tables and writes JSON to ``--out`` (default: a file in the system temp directory). Needs the
demo extra (``pip install -e '.[demo]'``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from _common import cli  # noqa: E402
from mixplan.transport.extrapolator import OTExtrapolator, interpolate_sizes, size_weight  # noqa: E402
from mixplan.transport.study import load_ot_study  # noqa: E402

DEMO = REPO / "proxies" / "demo"
POOLS = REPO / "pools" / "demo.toml"
B = 1_000_000
TARGETS = {"bpb_reviews": "demo:reviews", "bpb_mean": "demo:wiki,news,bible,code,docs"}
TRAIN_SEEDS = (7000, 7001, 7002)


def _scores(pred: np.ndarray, y: np.ndarray, lower=None, upper=None) -> dict:
    out = {"mae": float(np.mean(np.abs(pred - y))), "spearman": float(spearmanr(pred, y)[0])}
    if lower is not None:
        out |= {"coverage": float(np.mean((y >= lower) & (y <= upper))), "width": float(np.mean(upper - lower))}
    return out


def extrapolation(tmp: Path, target: str, validation: str) -> dict:
    large = pd.read_csv(DEMO / "runs_4x.csv")
    small = pd.read_csv(DEMO / "runs.csv").set_index("run_id")
    base_ids = [r.removesuffix("-4x") for r in large["run_id"]]
    y = large[target].to_numpy()
    wcols = [c for c in large.columns if c.startswith("w_")]
    W = large[wcols].to_numpy()
    rows = {}
    t0 = time.perf_counter()
    for space in ("linear", "log"):
        d = tmp / f"ot-{target}-{space}"
        cli("ot", "fit", "--runs", DEMO / "runs_half.csv", "--runs", DEMO / "runs.csv", "--pools", POOLS,
            "--target", target, "--samples", "demo", "--validation", validation, "--size-space", space,
            "--out", d, "--force", "--json")
        cli("ot", "predict", d, DEMO / "runs_4x.csv", "--tokens", 4 * B, "--out", d / "pred.csv", "--force")
        p = pd.read_csv(d / "pred.csv")
        name = "ot" if space == "linear" else "ot-log"
        rows[name] = _scores(p["prediction"].to_numpy(), y, p["lower"].to_numpy(), p["upper"].to_numpy())
        # Curvature from check runs: calibrate on one half of the 4B runs, score the other half (both ways).
        pred, lo, hi = np.empty(len(y)), np.empty(len(y)), np.empty(len(y))
        for fold in (0, 1):
            cal, test = np.arange(len(y)) % 2 == fold, np.arange(len(y)) % 2 != fold
            est = load_ot_study(d).calibrate(W[cal], np.full(cal.sum(), 4.0 * B), y[cal])
            pr = est.predict(W[test], 4 * B)
            pred[test], lo[test], hi[test] = pr.mean, pr.lower, pr.upper
        rows[f"{name} + 16 check runs"] = _scores(pred, y, lo, hi)
    fit_seconds = (time.perf_counter() - t0) / 2
    preds = {}
    for name, runs in (("half", "runs_half.csv"), ("full", "runs.csv")):
        d = tmp / f"reg-{target}-{name}"
        cli("fit", DEMO / runs, "--pools", POOLS, "--target", target, "--out", d, "--force", "--json")
        cli("predict", d, DEMO / "runs_4x.csv", "--pools", POOLS, "--out", d / "pred.csv", "--force")
        preds[name] = pd.read_csv(d / "pred.csv")
    full, half = preds["full"], preds["half"]
    rows["regressor"] = _scores(full["prediction"].to_numpy(), y, full["lower"].to_numpy(), full["upper"].to_numpy())
    s = size_weight(4 * B, B / 2, B)
    line = interpolate_sizes(half["prediction"].to_numpy(), full["prediction"].to_numpy(), s)
    rows["regressor ln-line"] = _scores(line, y)
    est = load_ot_study(tmp / f"ot-{target}-linear")
    delta, q = est.increment(W, 4 * B, B)
    trend = full["prediction"].to_numpy() + delta
    half_w = np.hypot(full["upper"].to_numpy() - full["prediction"].to_numpy(), q)
    # as plan --ot-mode size: beyond the larger size without check runs, the bracket up to no further gain
    far = full["prediction"].to_numpy() + est.far_increment(W, B)
    rows["regressor + OT trend"] = _scores(trend, y, np.minimum(trend, far) - half_w, np.maximum(trend, far) + half_w)
    rows["naive (value at B)"] = _scores(small.loc[base_ids, target].to_numpy(), y)
    stage1 = {f"{s_['tokens']:.0f}": {k: s_[k] for k in ("n_runs", "loo_r2", "loo_mae", "loo_spearman")}
              for s_ in est.to_dict()["stage1"]}
    return {"target": target, "validation": validation, "n_test": len(y), "methods": rows, "stage1": stage1,
            "ot_fit_seconds": fit_seconds}


def selection_speed(n_pools: int, repeats: int, per_pool: int = 200, m: int = 2000, d: int = 64) -> dict:
    rng = np.random.default_rng(n_pools)
    centres = rng.normal(size=(n_pools, d))
    X = np.vstack([c + 0.8 * rng.normal(size=(per_pool, d)) for c in centres])
    index = np.repeat(np.arange(n_pools), per_pool)
    mix = rng.dirichlet(np.ones(n_pools))
    Y = centres[rng.choice(n_pools, size=m, p=mix)] + 0.8 * rng.normal(size=(m, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y /= np.linalg.norm(Y, axis=1, keepdims=True)
    R = 48
    Wr = rng.dirichlet(np.full(n_pools, 0.7), size=R)
    probe = OTExtrapolator().fit(X, index, Y, np.vstack([Wr] * 2), np.r_[np.full(R, B / 2), np.full(R, B)],
                                 rng.normal(size=2 * R))
    ot = probe.distances(Wr)
    y = np.r_[3.2 + 1.5 * ot * (1 + 0.2 * Wr[:, 0]), 3.0 + 1.4 * ot * (1 + 0.2 * Wr[:, 0])] + rng.normal(0, 0.005, 2 * R)
    secs, info = [], {}
    est = OTExtrapolator().fit(X, index, Y, np.vstack([Wr] * 2), np.r_[np.full(R, B / 2), np.full(R, B)], y)
    for _ in range(repeats):
        est._cache.clear()  # cold: the runs' OT results would otherwise serve the starting points
        t0 = time.perf_counter()
        sel = est.select(4 * B)
        secs.append(time.perf_counter() - t0)
        info = {"iterations": sel.iterations, "ot_solves": sel.ot_solves, "converged": sel.converged}
    return {"pools": n_pools, "revealed": per_pool * n_pools, "validation": m, "seconds": secs,
            "median_seconds": float(np.median(secs)), **info}


def trained_selection(tmp: Path) -> dict:
    from mixplan.demo import proxy_lm

    doc = {}
    for mode in ("compare", "size"):
        out = cli("plan", REPO / "examples" / "demo_plan.toml", "--tokens", 4 * B, "--ot",
                  tmp / "ot-bpb_reviews-linear", "--ot-mode", mode, "--json")
        doc[mode] = json.loads(out)
    pools = doc["compare"]["pools"]
    chosen = {"plan recommended (regressor)": doc["compare"]["mixtures"]["recommended"],
              "OT selected": doc["compare"]["mixtures"]["ot_selected"],
              "size-mode recommended": doc["size"]["mixtures"]["recommended"]}
    jobs, keys = [], []
    for name, m in chosen.items():
        w = {p: float(f"{m['weights'][p]:.10g}") for p in pools}
        total = sum(w.values())
        w = {p: v / total for p, v in w.items()}
        for seed in TRAIN_SEEDS:
            jobs.append((w, 4 * B, seed))
            keys.append(name)
    t0 = time.perf_counter()
    results = proxy_lm.run_proxies(jobs, processes=2)
    seconds = time.perf_counter() - t0
    rows = {}
    for name, m in chosen.items():
        vals = [r["bpb_reviews"] for k, r in zip(keys, results) if k == name]
        at_size = doc["size"]["mixtures"]["recommended"].get("at_size") if name.startswith("size") else None
        rows[name] = {"weights": m["weights"], "measured_mean": float(np.mean(vals)),
                      "measured_sd": float(np.std(vals, ddof=1)), "measured": vals,
                      "regressor_at_B": m["prediction"], "ot_at_4B": m["ot"]["prediction"],
                      "ot_interval": [m["ot"]["lower"], m["ot"]["upper"]],
                      "size_mode_at_4B": None if at_size is None else at_size["prediction"]}
    return {"mixtures": rows, "train_seconds": seconds,
            "ot_selection": doc["compare"]["ot"]["selection"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "mixplan_ot_extrapolation.json")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-train", action="store_true")
    args = ap.parse_args()
    if not (DEMO / "runs_half.csv").is_file():
        sys.exit(f"{DEMO / 'runs_half.csv'} not found: regenerate the demo study (examples/demo_study.py)")
    report = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()}}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        report["extrapolation"] = [extrapolation(tmp, target, val) for target, val in TARGETS.items()]
        for e in report["extrapolation"]:
            print(f"\n{e['target']}: predict the {e['n_test']} demo runs at 4B (fit: B/2 and B; validation "
                  f"{e['validation']}); stage-1 LOO: " + ", ".join(
                      f"{k}: R2 {v['loo_r2']:.3f}, rho {v['loo_spearman']:.3f}" for k, v in e["stage1"].items()))
            frame = pd.DataFrame(e["methods"]).T
            print(frame.to_string(float_format=lambda v: f"{v:.4f}"))
        report["selection"] = [selection_speed(p, args.repeats) for p in (6, 8)]
        print("\nselection (exact OT, cold cache):")
        print(pd.DataFrame(report["selection"]).drop(columns="seconds").to_string(index=False))
        if not args.no_train:
            report["trained"] = trained_selection(tmp)
            print(f"\ntrained at 4B with seeds {TRAIN_SEEDS} (bpb_reviews; {report['trained']['train_seconds']:.0f} s):")
            rows = [{"mixture": k, "measured": f"{v['measured_mean']:.4f} +- {v['measured_sd']:.4f}",
                     "OT predicted @4B": f"{v['ot_at_4B']:.4f} [{v['ot_interval'][0]:.4f}, {v['ot_interval'][1]:.4f}]",
                     "regressor @B": f"{v['regressor_at_B']:.4f}",
                     "size mode @4B": "" if v["size_mode_at_4B"] is None else f"{v['size_mode_at_4B']:.4f}",
                     "weights": " ".join(f"{p} {w:.3f}" for p, w in v["weights"].items())}
                    for k, v in report["trained"]["mixtures"].items()]
            print(pd.DataFrame(rows).to_string(index=False))
    args.out.write_text(json.dumps(report, indent=1))
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
