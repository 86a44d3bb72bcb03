"""``mixplan compare`` on Shukor et al.'s SlimPajama mixtures (../shared/anchors/dmsl/): issue 24's acceptance.

The mixtures are the "datasets" (``--by mixture_id``); only those trained at all four sizes (40). Each one's
Chinchilla law is fitted on its runs below 937M (122M, 310M, 680M; every token checkpoint) and predicts
937M at the 937M runs' final token count (35.28B); the 937M runs' final losses then say which of each
pair is really better. Acceptance: every pair with P(better) >= 0.9 is confirmed. The refits carry each
run's noise, measured one size out (``mixplan.laws.compare``: the 10 token checkpoints of a run share its
noise, which resampling rows alone does not see); ``--run-noise 0`` gives the row bootstrap alone, to
compare. Shown for P(better) and for P(run) (the chance one run of the predicted-better mixture beats one
of the other: one run of each is what the 937M data are): at each threshold t the pairs with P >= t, how
many the 937M runs confirm and how many P itself expects to be wrong (the sum of 1 - P: a calibrated
P >= 0.9 is wrong up to 1 time in 10), P in bins against the share confirmed (reliability), the Brier
score and the log score. Also shown: the pairs whose ranking at 122M (20B tokens, measured) differs from
the predicted 937M ranking.

Target: the mean of the 7 SlimPajama domains' validation losses (rows with an empty domain cell, 16
cells at 310M, are left out). Why: the question is which mixture makes the better model overall, and
every mixture's own upweighted domain is in the mean with the same weight as the others, so no mixture
wins by construction (c4_loss alone would favour the mixtures heavy in c4 and commoncrawl).
openhermes_loss (instruction data, out of the pretraining distribution) is left out.

    python tests/benchmarks/compare_dmsl.py [--mixtures K] [--bootstrap B] [--target mean|c4] [--run-noise SD]
        [--out RESULTS.json]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from mixplan.laws.compare import compare_groups

DMSL = Path(__file__).resolve().parents[2].parent / "shared" / "anchors" / "dmsl" / "dmsl_llm_slimpajama_fit.csv"
DOMAINS = ("arxiv", "book", "c4", "github", "commoncrawl", "stackexchange", "wikipedia")
TARGET_SIZE = 937e6
THRESHOLDS = (0.6, 0.8, 0.9, 0.95, 0.99)
BINS = (0.0, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


def load(path: Path = DMSL, target: str = "mean", mixtures: int | None = None) -> tuple[pd.DataFrame, str]:
    """The runs of the mixtures present at all four sizes (the first ``mixtures`` of them by id), with the
    target column; returns (frame, target column)."""
    df = pd.read_csv(path)
    col = "mean_domain_loss" if target == "mean" else "c4_loss"
    if target == "mean":
        df[col] = df[[f"{d}_loss" for d in DOMAINS]].mean(axis=1, skipna=False)
    df = df[np.isfinite(df[col])]
    sizes = df.groupby("mixture_id").model_size.nunique()
    keep = sorted(sizes.index[sizes == df.model_size.nunique()])[:mixtures]
    return df[df.mixture_id.isin(keep)].reset_index(drop=True), col


def check(df: pd.DataFrame, col: str, n_bootstrap: int = 200, seed: int = 0, p_min: float = 0.9,
          run_sd: float | None = None) -> dict:
    """Fit below 937M, predict 937M, confirm with the 937M runs' final losses; the numbers of the report."""
    train = df[df.model_size < TARGET_SIZE]
    big = df[df.model_size == TARGET_SIZE]
    final = big[big.n_tokens == big.n_tokens.max()]
    D = float(final.n_tokens.max())
    actual = final.groupby("mixture_id")[col].mean().to_dict()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = compare_groups({"params": train.model_size.to_numpy(), "tokens": train.n_tokens.to_numpy()},
                                train[col].to_numpy(), train.mixture_id.to_numpy(), params=TARGET_SIZE, tokens=D,
                                n_bootstrap=n_bootstrap, seed=seed, where=str(DMSL.name), by="mixture_id",
                                target=col, run_sd=run_sd)
    pairs = []
    for q in result.pairs:
        a, b = q["better"], q["other"]
        pairs.append(q | {"actual_better": a if actual[a] < actual[b] else b,
                          "confirmed": actual[a] < actual[b], "actual_gap": actual[b] - actual[a]})
    scored = [q for q in pairs if q["p_better"] is not None]
    hit = np.array([q["confirmed"] for q in scored], dtype=float)
    sure = [q for q in scored if q["p_better"] >= p_min]
    flips_small = [q for q in pairs if q["flips_smallest"]]
    return {"target": col, "mixtures": len(result.groups), "target_scale": {"params": TARGET_SIZE, "tokens": D},
            "measured": result.measured, "pairs": len(pairs), "p_min": p_min, "sure": len(sure),
            "sure_confirmed": sum(q["confirmed"] for q in sure),
            "all_confirmed": sum(q["confirmed"] for q in pairs),
            "sure_run": sum(q["p_run"] >= p_min for q in scored),
            "sure_run_confirmed": sum(q["confirmed"] for q in scored if q["p_run"] >= p_min),
            "flips_smallest": [{k: q[k] for k in ("better", "other", "p_better", "p_run", "better_smallest",
                                                   "actual_better", "confirmed")} for q in flips_small],
            "sure_wrong": [q for q in sure if not q["confirmed"]],
            "mre_937": float(np.mean([abs(g["prediction"]["loss"] / actual[g["group"]] - 1) for g in result.groups])),
            "run_noise": result.run_noise,
            "calibration": {k: calibration(np.array([q[k] for q in scored]), hit) for k in ("p_run", "p_better")},
            "warnings": len(caught), "comparison": result}


def calibration(P: np.ndarray, hit: np.ndarray) -> dict:
    """P(better) of the predicted-better side against whether the 937M runs confirm it: per threshold the pairs
    at or above it, confirmed, and expected wrong (sum of 1 - P); per bin of P the mean P and the share
    confirmed; the Brier score mean (P - hit)^2 and the log score -mean log P(outcome) (P clipped to
    [1e-3, 1 - 1e-3]: a refit count of 200 cannot say more)."""
    rows = [{"p_min": t, "pairs": int((P >= t).sum()), "confirmed": int(hit[P >= t].sum()),
             "expected_wrong": float(np.sum(1 - P[P >= t]))} for t in THRESHOLDS]
    bins = []
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        s = (P >= lo) & ((P < hi) if hi < 1 else (P <= hi))
        if s.any():
            bins.append({"bin": [lo, hi], "pairs": int(s.sum()), "mean_p": float(P[s].mean()),
                         "confirmed": float(hit[s].mean())})
    c = np.clip(P, 1e-3, 1 - 1e-3)
    return {"thresholds": rows, "bins": bins, "brier": float(np.mean((P - hit) ** 2)),
            "log_score": float(-np.mean(hit * np.log(c) + (1 - hit) * np.log(1 - c)))}


def print_calibration(c: dict, title: str) -> None:
    print(title)
    print(f"  {'P >=':>5} {'pairs':>6} {'confirmed':>9} {'wrong':>6} {'expected wrong (sum 1-P)':>25}")
    for t in c["thresholds"]:
        print(f"  {t['p_min']:>5} {t['pairs']:>6} {t['confirmed']:>9} {t['pairs'] - t['confirmed']:>6} "
              f"{t['expected_wrong']:>25.1f}")
    print(f"  reliability: {'P in':>12} {'pairs':>6} {'mean P':>7} {'confirmed':>9}")
    for b in c["bins"]:
        shown = f"[{b['bin'][0]}, {b['bin'][1]}" + ("]" if b["bin"][1] == 1 else ")")
        print(f"  {'':>12} {shown:>12} {b['pairs']:>6} {b['mean_p']:>7.3f} {b['confirmed']:>9.3f}")
    print(f"  Brier score {c['brier']:.4f}, log score {c['log_score']:.4f} (lower is better)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mixtures", type=int, default=None, help="the first K mixtures only (default: all 40)")
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--target", choices=["mean", "c4"], default="mean")
    ap.add_argument("--run-noise", type=float, default=None, metavar="SD",
                    help="one run's noise in log-loss (default: measured one size out; 0: the row bootstrap alone)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    t = time.time()
    df, col = load(target=a.target, mixtures=a.mixtures)
    r = check(df, col, n_bootstrap=a.bootstrap, run_sd=a.run_noise)
    print(f"{r['mixtures']} mixtures, target {col}, fitted on 122M-680M, predicted at 937M / "
          f"{r['target_scale']['tokens']:.4g} tokens ({time.time() - t:.0f} s); mean relative error at 937M "
          f"{r['mre_937']:.4f}")
    print(f"one run's noise measured one size out: sd {r['run_noise']['sd_log']:.5f} in log-loss "
          f"over {r['run_noise']['groups']} mixtures")
    print(f"pairs {r['pairs']}, with P(better) >= {r['p_min']}: {r['sure']}, of which confirmed by the 937M runs: "
          f"{r['sure_confirmed']}; with P(run) >= {r['p_min']}: {r['sure_run']}, confirmed "
          f"{r['sure_run_confirmed']}; all pairs confirmed: {r['all_confirmed']}")
    for k, what in (("p_better", "P(better)"), ("p_run", "P(run)")):
        print_calibration(r["calibration"][k], f"calibration of {what} against the 937M runs:")
    print(f"pairs whose 122M ranking differs from the predicted 937M ranking: {len(r['flips_smallest'])}")
    print(f"{'better@937M':>11} {'other':>6} {'P':>6} {'@122M':>6} {'actual':>7}")
    for q in r["flips_smallest"]:
        print(f"{q['better']:>11} {q['other']:>6} {q['p_better']:>6.3f} {q['better_smallest']:>6} "
              f"{q['actual_better']:>7}")
    for q in r["sure_wrong"]:
        print(f"NOT confirmed: {q['better']} over {q['other']} (P(better) {q['p_better']:.3f}, P(run) "
              f"{q['p_run']:.3f}, actual gap {q['actual_gap']:.4f})")
    if a.out:
        doc = {k: v for k, v in r.items() if k != "comparison"} | {
            "comparison": r["comparison"].to_dict()}
        a.out.write_text(json.dumps(doc, indent=1, default=float))
        print(f"written: {a.out}")


if __name__ == "__main__":
    main()
