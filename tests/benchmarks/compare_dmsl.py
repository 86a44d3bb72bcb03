"""``mixplan compare`` on Shukor et al.'s SlimPajama mixtures (../shared/anchors/dmsl/): issue 24's acceptance.

The mixtures are the "datasets" (``--by mixture_id``); only those trained at all four sizes (40). Each one's
Chinchilla law is fitted on its runs below 937M (122M, 310M, 680M; every token checkpoint) and predicts
937M at the 937M runs' final token count (35.28B); the 937M runs' final losses then say which of each
pair is really better. Acceptance: every pair with fitted P(better) >= 0.9 is confirmed. Also shown: the
pairs whose ranking at 122M (20B tokens, measured) differs from the predicted 937M ranking.

Target: the mean of the 7 SlimPajama domains' validation losses (rows with an empty domain cell, 16
cells at 310M, are left out). Why: the question is which mixture makes the better model overall, and
every mixture's own upweighted domain is in the mean with the same weight as the others, so no mixture
wins by construction (c4_loss alone would favour the mixtures heavy in c4 and commoncrawl).
openhermes_loss (instruction data, out of the pretraining distribution) is left out.

    python tests/benchmarks/compare_dmsl.py [--mixtures K] [--bootstrap B] [--target mean|c4] [--out RESULTS.json]
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


def check(df: pd.DataFrame, col: str, n_bootstrap: int = 200, seed: int = 0, p_min: float = 0.9) -> dict:
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
                                target=col)
    pairs = []
    for q in result.pairs:
        a, b = q["better"], q["other"]
        pairs.append(q | {"actual_better": a if actual[a] < actual[b] else b,
                          "confirmed": actual[a] < actual[b], "actual_gap": actual[b] - actual[a]})
    sure = [q for q in pairs if q["p_better"] is not None and q["p_better"] >= p_min]
    flips_small = [q for q in pairs if q["flips_smallest"]]
    return {"target": col, "mixtures": len(result.groups), "target_scale": {"params": TARGET_SIZE, "tokens": D},
            "measured": result.measured, "pairs": len(pairs), "p_min": p_min, "sure": len(sure),
            "sure_confirmed": sum(q["confirmed"] for q in sure),
            "all_confirmed": sum(q["confirmed"] for q in pairs),
            "flips_smallest": [{k: q[k] for k in ("better", "other", "p_better", "better_smallest", "actual_better",
                                                   "confirmed")} for q in flips_small],
            "sure_wrong": [q for q in sure if not q["confirmed"]],
            "mre_937": float(np.mean([abs(g["prediction"]["loss"] / actual[g["group"]] - 1) for g in result.groups])),
            "warnings": len(caught), "comparison": result}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mixtures", type=int, default=None, help="the first K mixtures only (default: all 40)")
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--target", choices=["mean", "c4"], default="mean")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    t = time.time()
    df, col = load(target=a.target, mixtures=a.mixtures)
    r = check(df, col, n_bootstrap=a.bootstrap)
    print(f"{r['mixtures']} mixtures, target {col}, fitted on 122M-680M, predicted at 937M / "
          f"{r['target_scale']['tokens']:.4g} tokens ({time.time() - t:.0f} s); mean relative error at 937M "
          f"{r['mre_937']:.4f}")
    print(f"pairs {r['pairs']}, with P(better) >= {r['p_min']}: {r['sure']}, of which confirmed by the 937M runs: "
          f"{r['sure_confirmed']}; all pairs confirmed: {r['all_confirmed']}")
    print(f"pairs whose 122M ranking differs from the predicted 937M ranking: {len(r['flips_smallest'])}")
    print(f"{'better@937M':>11} {'other':>6} {'P':>6} {'@122M':>6} {'actual':>7}")
    for q in r["flips_smallest"]:
        print(f"{q['better']:>11} {q['other']:>6} {q['p_better']:>6.3f} {q['better_smallest']:>6} "
              f"{q['actual_better']:>7}")
    for q in r["sure_wrong"]:
        print(f"NOT confirmed: {q['better']} over {q['other']} (P {q['p_better']:.3f}, actual gap "
              f"{q['actual_gap']:.4f})")
    if a.out:
        doc = {k: v for k, v in r.items() if k != "comparison"} | {"comparison": r["comparison"].to_dict()}
        a.out.write_text(json.dumps(doc, indent=1, default=float))
        print(f"written: {a.out}")


if __name__ == "__main__":
    main()
