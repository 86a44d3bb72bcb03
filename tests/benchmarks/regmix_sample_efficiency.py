"""RegMix anchor benchmark: sample efficiency, interval calibration, all targets and fit time, through the CLI.

Everything runs through ``mixplan.cli.main`` in-process (``mixplan fit`` then ``mixplan predict``,
always ``--renormalize``) on RegMix's 1M proxy runs (``../shared/anchors/regmix/``, read in place):
512 ``train`` runs to fit on, 256 ``test`` runs to score on. What it measures:

1. Sample efficiency. For each size N in 32, 64, 128, 256, 512, five random subsets of N of the
   512 train runs (subset i is the first N of ``numpy.random.default_rng(seed + i).permutation(512)``,
   so the subsets of one i are nested across sizes and identical for every model; 512 is all runs,
   one subset). Each subset is written to a temporary CSV, fitted with ``--target loss_pile_cc``
   for ``auto`` and ``regmix``; reported: mean Spearman rho (and sd over subsets) on the 256 test
   runs, next to a goal per size and the issue's published reference rows. ``regmix`` is refused
   below 40 runs per CV fold (LightGBM would predict a constant); that refusal is shown as such.
2. Interval calibration: the share of test runs inside ``mixplan predict``'s 90% interval
   (lower <= y <= upper) and the mean interval width, from the same fits at 128 runs (each subset
   and the mean) and at 512. PASS (auto) if the coverage is within [85%, 95%].
3. All 13 loss targets at 512 runs: ONE ``mixplan fit --target 'mean(loss_*)'`` per model (one
   regressor per column), and the per-column predictions ``pred_<col>`` of ``mixplan predict``.
   PASS if auto's Spearman is nowhere below regmix's by more than 0.005.
4. Wall time of ``mixplan fit --model auto`` on 512 runs x 17 pools (target loss_pile_cc), median
   of 3 repetitions (the machine is shared). In-process: interpreter start and imports (~3 s) are
   not counted. PASS if <= 60 s.

Prints compact tables and a PASS/FAIL summary; writes everything (per-subset numbers included) to
``--out``. Exit code 0 when every check passes, 1 otherwise. The full run took 7 minutes on 2 cores.

Run::

    /work/venv/bin/python tests/benchmarks/regmix_sample_efficiency.py [--out RESULTS.json] [--seed 0]
    # quick look: two sizes, two subsets, auto only, no 13-target fit, one timing repetition
    /work/venv/bin/python tests/benchmarks/regmix_sample_efficiency.py --sizes 64 128 --subsets 2 \\
        --models auto --skip-targets --timing-repeats 1
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
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from _common import Refused, regmix_anchor_dir as anchor_dir, run_cli  # noqa: E402

TARGET = "loss_pile_cc"
ALL_TARGETS = "mean(loss_*)"
SIZES = (32, 64, 128, 256, 512)
N_SUBSETS = 5
MODELS = ("auto", "regmix")
#: Spearman rho that auto must reach on the test runs (mean over subsets), per training-set size.
GOAL = {32: 0.93, 64: 0.97, 128: 0.985, 256: 0.99, 512: 0.993}
#: The issue's published reference rows (None: LightGBM predicts a constant from 32 runs).
PUBLISHED = {"RegMix LightGBM (issue)": {32: None, 64: 0.899, 128: 0.968, 256: 0.984, 512: 0.990},
             "ridge on raw weights (issue)": {32: 0.844, 64: 0.841, 128: 0.885, 256: 0.896, 512: 0.901}}
CALIBRATION_SIZES = (128, 512)
COVERAGE_RANGE = (0.85, 0.95)  # acceptable empirical coverage of the nominal 90% intervals
MAX_GAP = 0.005  # auto may trail regmix by at most this much Spearman on any target
FIT_SECONDS_MAX = 60.0


def rho(pred: np.ndarray, truth: np.ndarray) -> float | None:
    """Spearman rho, or None when the predictions are constant (rho undefined)."""
    return None if np.ptp(pred) == 0 else float(spearmanr(pred, truth)[0])


# ------------------------------------------------------------------------------------------------
# fitting and scoring through the CLI


def fit_and_predict(runs_csv: Path, test_csv: Path, target: str, model: str, work: Path, seed: int,
                    ) -> tuple[pd.DataFrame, float]:
    """``mixplan fit`` on all rows of ``runs_csv``, ``mixplan predict`` on the test rows of ``test_csv``.

    Returns the prediction table and the fit's wall time (raises :class:`Refused`).
    """
    mdir, pred_csv = work / "model", work / "pred.csv"
    t0 = time.perf_counter()
    run_cli("fit", runs_csv, "--renormalize", "--target", target, "--model", model, "--out", mdir, "--seed", seed)
    fit_s = time.perf_counter() - t0
    run_cli("predict", mdir, test_csv, "--where", "split=test", "--where", "model_size=1M", "--renormalize",
        "--out", pred_csv)
    return pd.read_csv(pred_csv), fit_s


def score(pred: pd.DataFrame, truth: pd.DataFrame) -> dict[str, Any]:
    """Spearman rho, 90%-interval coverage and mean width of one prediction table on the test runs."""
    p = pred.merge(truth, on="run_id", validate="one_to_one")
    y, f = p[TARGET].to_numpy(), p["prediction"].to_numpy()
    return {"spearman": rho(f, y), "coverage90": float(np.mean((p["lower"] <= y) & (y <= p["upper"]))),
            "width90": float(np.mean(p["upper"] - p["lower"]))}


def subset_rows(n_train: int, size: int, i: int, seed: int) -> np.ndarray:
    """Row positions of subset ``i`` of ``size`` train runs (file order kept, so only membership varies)."""
    if size >= n_train:
        return np.arange(n_train)
    return np.sort(np.random.default_rng(seed + i).permutation(n_train)[:size])


def sample_efficiency(train: pd.DataFrame, runs_csv: Path, truth: pd.DataFrame, sizes: list[int],
                      n_subsets: int, models: list[str], tmp: Path, seed: int) -> list[dict[str, Any]]:
    """One record per (size, subset, model): scores, fit time, or the refusal message."""
    records = []
    for size in sizes:
        for i in range(1 if size >= len(train) else n_subsets):
            sub_csv = tmp / f"subset_n{size}_{i}.csv"
            train.iloc[subset_rows(len(train), size, i, seed)].to_csv(sub_csv, index=False)
            for model in models:
                rec: dict[str, Any] = {"size": size, "subset": i, "model": model}
                work = tmp / f"n{size}_{i}_{model}"
                try:
                    pred, fit_s = fit_and_predict(sub_csv, runs_csv, TARGET, model, work, seed)
                    rec |= {"status": "ok", "fit_s": fit_s} | score(pred, truth)
                except Refused as exc:
                    rec |= {"status": "refused", "message": str(exc)}
                records.append(rec)
                print(f"  n={size:<3} subset {i} {model:<7} " + (
                    f"rho {_fmt(rec['spearman'])}  cover {rec['coverage90']:.3f}  fit {rec['fit_s']:.1f} s"
                    if rec["status"] == "ok" else f"refused: {rec['message']}"), flush=True)
    return records


def summarize(records: list[dict[str, Any]], size: int, model: str) -> dict[str, Any]:
    """Mean (sd, min) over the subsets of one size and model; 'refused' when any subset was refused."""
    rows = [r for r in records if r["size"] == size and r["model"] == model]
    if not rows:
        return {"status": "not run"}
    refused = [r for r in rows if r["status"] != "ok"]
    if refused:
        return {"status": "refused", "refused_subsets": len(refused), "of": len(rows), "message": refused[0]["message"]}
    rhos = [r["spearman"] for r in rows]
    if any(v is None for v in rhos):  # constant predictions somewhere: no rank correlation to average
        return {"status": "constant predictions", "of": len(rows)}
    return {"status": "ok", "of": len(rows), "spearman_mean": float(np.mean(rhos)), "spearman_sd": float(np.std(rhos)),
            "spearman_min": float(np.min(rhos)), "coverage90_mean": float(np.mean([r["coverage90"] for r in rows])),
            "width90_mean": float(np.mean([r["width90"] for r in rows])),
            "fit_s_mean": float(np.mean([r["fit_s"] for r in rows]))}


# ------------------------------------------------------------------------------------------------
# the four sections' tables


def _fmt(v: float | None, digits: int = 4) -> str:
    return "const" if v is None else f"{v:.{digits}f}"


def _cell(s: dict[str, Any]) -> str:
    if s["status"] == "ok":
        return f"{s['spearman_mean']:.4f}±{s['spearman_sd']:.3f}" if s["of"] > 1 else f"{s['spearman_mean']:.4f}"
    if s["status"] == "refused" and s["refused_subsets"] < s["of"]:
        return f"{s['refused_subsets']}/{s['of']} refused"
    return s["status"]


def efficiency_table(summary: dict[str, dict[int, dict[str, Any]]], sizes: list[int]) -> dict[int, bool | None]:
    """Print the sample-efficiency table; return auto's PASS/FAIL per size (None if auto was not run)."""
    width = 15
    print(f"\n1. Sample efficiency: Spearman rho on the 256 test runs, {TARGET}, mean±sd over subsets")
    print(f"{'train runs':<30}" + "".join(f"{n:>{width}}" for n in sizes))
    for model, by_size in summary.items():
        print(f"{model:<30}" + "".join(f"{_cell(by_size[n]):>{width}}" for n in sizes))
    print(f"{'goal (auto)':<30}" + "".join(f"{'>=' + str(GOAL.get(n, '-')):>{width}}" for n in sizes))
    verdict: dict[int, bool | None] = {}
    for n in sizes:
        s = summary.get("auto", {}).get(n)
        verdict[n] = None if s is None or n not in GOAL else (s["status"] == "ok" and s["spearman_mean"] >= GOAL[n])
    if "auto" in summary:
        print(f"{'auto vs goal':<30}" + "".join(
            f"{'-' if verdict[n] is None else 'PASS' if verdict[n] else 'FAIL':>{width}}" for n in sizes))
        print(f"{'auto fit s (mean)':<30}" + "".join(
            f"{summary['auto'][n].get('fit_s_mean', float('nan')):>{width}.1f}" for n in sizes))
    for name, row in PUBLISHED.items():
        print(f"{name:<30}" + "".join(
            f"{'-' if n not in row else 'constant' if row[n] is None else f'{row[n]:.3f}':>{width}}" for n in sizes))
    return verdict


def calibration_table(records: list[dict[str, Any]], models: list[str]) -> dict[str, Any]:
    """Print the coverage of the 90% intervals at the calibration sizes; return the numbers and verdicts."""
    lo, hi = COVERAGE_RANGE
    print(f"\n2. Interval calibration: share of the 256 test runs inside the 90% interval (PASS for auto: "
          f"{lo:.0%}-{hi:.0%})")
    print(f"{'model':<8} {'train runs':>10} {'subset':>7} {'coverage':>9} {'mean width':>11}")
    out: dict[str, Any] = {}
    if not any(r["size"] in CALIBRATION_SIZES and r["status"] == "ok" for r in records):
        print(f"(no fits at {' or '.join(map(str, CALIBRATION_SIZES))} runs: add them to --sizes)")
    for model in models:
        for size in CALIBRATION_SIZES:
            rows = [r for r in records if r["size"] == size and r["model"] == model and r["status"] == "ok"]
            if not rows:
                continue
            for r in rows:
                if len(rows) > 1:
                    print(f"{model:<8} {size:>10} {r['subset']:>7} {r['coverage90']:>9.3f} {r['width90']:>11.4f}")
            cov, width = float(np.mean([r["coverage90"] for r in rows])), float(np.mean([r["width90"] for r in rows]))
            ok = lo <= cov <= hi
            label = "mean" if len(rows) > 1 else "all"
            print(f"{model:<8} {size:>10} {label:>7} {cov:>9.3f} {width:>11.4f}"
                  + (f"   {'PASS' if ok else 'FAIL'}" if model == "auto" else ""))
            out.setdefault(model, {})[str(size)] = {
                "coverage90_mean": cov, "width90_mean": width, "pass": ok if model == "auto" else None,
                "per_subset": [{k: r[k] for k in ("subset", "coverage90", "width90")} for r in rows]}
    return out


def all_targets(runs_csv: Path, runs: pd.DataFrame, models: list[str], tmp: Path, seed: int) -> dict[str, Any]:
    """Section 3: one multi-column fit per model on the 512 train runs; per-column test Spearman."""
    test = runs[runs["split"] == "test"].set_index("run_id")
    result: dict[str, Any] = {}
    for model in models:
        work = tmp / f"all_targets_{model}"
        pred, fit_s = fit_and_predict(_train_csv(runs, tmp), runs_csv, ALL_TARGETS, model, work, seed)
        pred = pred.set_index("run_id").loc[test.index]
        cols = sorted(c[len("pred_"):] for c in pred.columns if c.startswith("pred_"))
        y_obj = test[cols].mean(axis=1).to_numpy()
        result[model] = {
            "fit_s": fit_s,
            "spearman": {c: rho(pred[f"pred_{c}"].to_numpy(), test[c].to_numpy()) for c in cols},
            "objective": {"spearman": rho(pred["prediction"].to_numpy(), y_obj),
                          "coverage90": float(np.mean((pred["lower"] <= y_obj) & (y_obj <= pred["upper"])))}}
        print(f"  {model}: {len(cols)} columns fitted in {fit_s:.1f} s", flush=True)
    return result


def _train_csv(runs: pd.DataFrame, tmp: Path) -> Path:
    """The 512 train runs as a file of their own (fit_and_predict fits on every row of its input)."""
    path = tmp / "train.csv"
    if not path.exists():
        runs[runs["split"] == "train"].to_csv(path, index=False)
    return path


def targets_table(result: dict[str, Any]) -> tuple[bool | None, float | None]:
    """Print per-target Spearman of every model; return PASS/FAIL of auto vs regmix and the worst gap
    (None, None unless both were fitted)."""
    models = list(result)
    cols = list(next(iter(result.values()))["spearman"])
    both = {"auto", "regmix"} <= set(models)
    print(f"\n3. All {len(cols)} loss targets, 512 train runs, one fit of {ALL_TARGETS!r} per model: test Spearman")
    print(f"{'target':<26}" + "".join(f"{m:>9}" for m in models) + (f"{'auto-regmix':>12}" if both else ""))
    gaps = []
    for c in cols:
        vals = {m: result[m]["spearman"][c] for m in models}
        line = f"{c:<26}" + "".join(f"{_fmt(v):>9}" for v in vals.values())
        if both:
            gap = None if None in (vals["auto"], vals["regmix"]) else vals["auto"] - vals["regmix"]
            gaps.append(gap)
            line += f"{'n/a' if gap is None else f'{gap:+.4f}':>12}"
        print(line)
    print(f"{'objective (mean)':<26}" + "".join(f"{_fmt(result[m]['objective']['spearman']):>9}" for m in models))
    print(f"{'objective 90% coverage':<26}" + "".join(f"{result[m]['objective']['coverage90']:>9.3f}" for m in models))
    if not both:
        return None, None
    # An undefined rho (constant prediction) of auto counts as a failure; of regmix as a win for auto.
    worst = min((g for g in gaps if g is not None), default=0.0)
    failed = any(g is None and result["auto"]["spearman"][c] is None for g, c in zip(gaps, cols))
    print(f"worst auto - regmix: {worst:+.4f} (limit -{MAX_GAP})")
    return not failed and worst >= -MAX_GAP, worst


def fit_timing(runs: pd.DataFrame, tmp: Path, seed: int, repeats: int) -> dict[str, Any]:
    """Section 4: wall time of ``mixplan fit --model auto`` on the 512 train runs, ``repeats`` times."""
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        run_cli("fit", _train_csv(runs, tmp), "--renormalize", "--target", TARGET, "--model", "auto",
            "--out", tmp / f"timing_{r}", "--seed", seed)
        times.append(time.perf_counter() - t0)
        print(f"  repetition {r + 1}: {times[-1]:.1f} s", flush=True)
    med = median(times)
    print(f"\n4. mixplan fit --model auto, 512 runs x 17 pools, {TARGET}: median {med:.1f} s of {repeats} "
          f"({', '.join(f'{t:.1f}' for t in times)}); limit {FIT_SECONDS_MAX:.0f} s: "
          f"{'PASS' if med <= FIT_SECONDS_MAX else 'FAIL'}")
    return {"times_s": times, "median_s": med, "limit_s": FIT_SECONDS_MAX, "pass": med <= FIT_SECONDS_MAX}


# ------------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "mixplan_regmix_sample_efficiency.json")
    ap.add_argument("--seed", type=int, default=0, help="subset i is drawn with default_rng(seed + i); fits use --seed")
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="training-set sizes (default: all)")
    ap.add_argument("--subsets", type=int, default=N_SUBSETS, help=f"subsets per size below 512 (default {N_SUBSETS})")
    ap.add_argument("--models", nargs="+", default=list(MODELS), help="models to compare (default: auto regmix)")
    ap.add_argument("--skip-targets", action="store_true", help="skip section 3 (the 13-target fits)")
    ap.add_argument("--timing-repeats", type=int, default=3, help="repetitions of the timed fit (0 skips section 4)")
    return ap.parse_args()


def run_sections(args: argparse.Namespace, runs: pd.DataFrame, runs_csv: Path, sizes: list[int], tmp: Path,
                 doc: dict[str, Any]) -> list[tuple[str, bool | None]]:
    """Run sections 1-4, fill ``doc`` with their numbers; return (check, PASS/FAIL/None) pairs."""
    train = runs[runs["split"] == "train"].reset_index(drop=True)
    truth = runs.loc[runs["split"] == "test", ["run_id", TARGET]]
    print(f"Fitting {args.models} on subsets of the {len(train)} train runs ({TARGET}) ...", flush=True)
    records = sample_efficiency(train, runs_csv, truth, sizes, args.subsets, args.models, tmp, args.seed)
    summary = {m: {n: summarize(records, n, m) for n in sizes} for m in args.models}
    passed = efficiency_table(summary, sizes)
    verdicts = [(f"auto Spearman at {n} runs >= {GOAL[n]}", v) for n, v in passed.items()]
    doc["sample_efficiency"] = {"records": records,
                                "summary": {m: {str(n): s for n, s in by.items()} for m, by in summary.items()},
                                "goal": {str(n): g for n, g in GOAL.items()},
                                "published": {k: {str(n): v for n, v in row.items()} for k, row in PUBLISHED.items()}}

    doc["calibration"] = calibration_table(records, args.models)
    lo, hi = COVERAGE_RANGE
    verdicts += [(f"auto 90% interval coverage at {n} runs in [{lo}, {hi}]", c["pass"])
                 for n, c in doc["calibration"].get("auto", {}).items()]

    if not args.skip_targets:
        print(f"\nFitting {ALL_TARGETS!r} on the 512 train runs ...", flush=True)
        targets = all_targets(runs_csv, runs, args.models, tmp, args.seed)
        ok, worst = targets_table(targets)
        verdicts.append((f"auto never below regmix by more than {MAX_GAP} Spearman on any target", ok))
        doc["all_targets"] = targets | {"worst_auto_minus_regmix": worst, "pass": ok}

    if args.timing_repeats > 0:
        print(f"\nTiming mixplan fit --model auto on the 512 train runs ({args.timing_repeats}x) ...", flush=True)
        doc["fit_time"] = fit_timing(runs, tmp, args.seed, args.timing_repeats)
        verdicts.append((f"median fit time <= {FIT_SECONDS_MAX:.0f} s", doc["fit_time"]["pass"]))
    return verdicts


def main() -> int:
    args = parse_args()
    t0 = time.perf_counter()
    runs_csv = anchor_dir() / "regmix_proxy_runs.csv"
    runs = pd.read_csv(runs_csv)
    runs = runs[runs["model_size"] == "1M"]
    n_train = int((runs["split"] == "train").sum())
    sizes = sorted(set(args.sizes))
    if any(not 1 <= n <= n_train for n in sizes):
        sys.exit(f"--sizes must be between 1 and {n_train}")
    doc: dict[str, Any] = {"seed": args.seed, "target": TARGET, "n_train": n_train,
                           "n_test": int((runs["split"] == "test").sum()), "sizes": sizes, "subsets": args.subsets,
                           "models": args.models}
    with tempfile.TemporaryDirectory(prefix="mixplan_sample_eff_") as tmp:
        try:
            verdicts = run_sections(args, runs, runs_csv, sizes, Path(tmp), doc)
        except Refused as exc:  # only the subset fits may be refused; anywhere else it is a broken benchmark
            sys.exit(f"mixplan failed: {exc}")

    checked = [(name, v) for name, v in verdicts if v is not None]
    print("\nSummary")
    for name, v in checked:
        print(f"  {'PASS' if v else 'FAIL'}  {name}")
    doc["summary"] = [{"check": name, "pass": bool(v)} for name, v in checked]
    doc["runtime_s"] = time.perf_counter() - t0
    print(f"runtime {doc['runtime_s']:.0f} s")
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {args.out}")
    return 0 if all(v for _, v in checked) else 1


if __name__ == "__main__":
    sys.exit(main())
