r"""Hierarchical pools against a flat design (issue 25, item 1): a synthetic study with a known truth.

The world: 3 sources x 8 topics x 3 quality levels = 72 leaf pools (``web_t3_hq``); sources and topics are
groups (the manifest's nested form, ``[pools.web.topics.t3.quality.hq]``). Token counts are fixed by the
world's seed: sources 70 / 20 / 10 %, topics Dirichlet(2) inside a source, quality 15 / 35 / 50 %.
The true loss is smooth and acts at every level:

.. math::

    L(w) = 2.5 + \sum_k (S_k - S^*_k)^2 + 0.8 \sum_k \sum_t S_k (T_{kt}/S_k - \tau^*_{kt})^2
           - 0.3 \sum_i u_{q(i)} w_i + 0.02 \sum_i w_i^2 / s_i

with :math:`S_k` the source totals (best :math:`S^* = (0.45, 0.25, 0.30)`), :math:`T_{kt}` the topic totals
(best topic mix :math:`\tau^*` inside each source, drawn by the world's seed), quality utility
:math:`u = (0.3, 0.1, 0)` for (hq, mq, lq), and a repetition-like price of weight beyond a pool's token
share :math:`s_i`. The true optimum is found by SLSQP from several starts. Each run's measured loss is the
truth plus Gaussian noise (sd 0.003).

Per seed, two studies with the same number of runs (``--runs``, 96):

* ``flat`` - ``mixplan design --n`` on the 72 pools as a flat manifest (RegMix's strengths 0.1-5), then
  ``mixplan plan`` on the same flat manifest;
* ``hierarchical`` - the manifest with its groups: ``design`` draws source shares, then topic shares inside
  each source, then quality inside each topic (``--group-strengths 0.3:5``), and ``plan`` searches with
  hierarchical candidates.

Both fit the same model (``--model``, default gp). Score: the **true regret** of the recommended mixture,
:math:`L(w_{plan}) - L(w^*)`, and of the best observed run; mean over seeds (``--seeds``, default 0..9).

Acceptance (issue 25): the hierarchical study's mean true regret is below the flat one's.

Run::

    .venv/bin/python tests/benchmarks/hierarchy_design.py [--out RESULTS.json] [--seeds 0 1] [--runs 96]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from _common import cli

SOURCES = ("web", "books", "code")
QUALITY = ("hq", "mq", "lq")
N_TOPICS = 8
WORLD_SEED = 20_25


def world() -> dict:
    """The fixed synthetic world: leaf names, tokens, index arrays and the truth's parameters."""
    rng = np.random.default_rng(WORLD_SEED)
    src_share, q_share = np.array([0.7, 0.2, 0.1]), np.array([0.15, 0.35, 0.5])
    names, tokens, src, topic, qual = [], [], [], [], []
    topic_share = rng.dirichlet(np.full(N_TOPICS, 2.0), size=len(SOURCES))
    for k, s in enumerate(SOURCES):
        for t in range(N_TOPICS):
            for q, ql in enumerate(QUALITY):
                names.append(f"{s}_t{t}_{ql}")
                tokens.append(1e10 * src_share[k] * topic_share[k, t] * q_share[q])
                src.append(k)
                topic.append(k * N_TOPICS + t)
                qual.append(q)
    return {"names": names, "tokens": np.array(tokens), "src": np.array(src), "topic": np.array(topic),
            "qual": np.array(qual), "S_star": np.array([0.45, 0.25, 0.30]),
            "tau_star": rng.dirichlet(np.full(N_TOPICS, 1.0), size=len(SOURCES)), "u": np.array([0.3, 0.1, 0.0])}


def truth(W: np.ndarray, wd: dict) -> np.ndarray:
    """The true loss of mixtures ``W`` (n, 72) (module docstring)."""
    W = np.atleast_2d(W)
    S = np.stack([W[:, wd["src"] == k].sum(axis=1) for k in range(len(SOURCES))], axis=1)
    T = np.stack([W[:, wd["topic"] == j].sum(axis=1) for j in range(len(SOURCES) * N_TOPICS)], axis=1)
    T = T.reshape(len(W), len(SOURCES), N_TOPICS)
    within = T / np.maximum(S[:, :, None], 1e-12)
    topic_term = (S * ((within - wd["tau_star"][None]) ** 2).sum(axis=2)).sum(axis=1)
    share = wd["tokens"] / wd["tokens"].sum()
    return (2.5 + ((S - wd["S_star"]) ** 2).sum(axis=1) + 0.8 * topic_term - 0.3 * W @ wd["u"][wd["qual"]]
            + 0.02 * (W ** 2 / share).sum(axis=1))


def true_optimum(wd: dict) -> tuple[np.ndarray, float]:
    """The truth's minimum over the simplex: SLSQP from the token share and a few random starts."""
    P = len(wd["names"])
    rng = np.random.default_rng(0)
    starts = [wd["tokens"] / wd["tokens"].sum(), np.full(P, 1 / P)] + list(rng.dirichlet(np.ones(P), size=4))
    best = (None, np.inf)
    for x0 in starts:
        r = minimize(lambda w: truth(w, wd)[0], x0, method="SLSQP", bounds=[(0, 1)] * P,
                     constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}], options={"maxiter": 500})
        w = np.clip(r.x, 0, None)
        w /= w.sum()
        v = truth(w, wd)[0]
        if v < best[1]:
            best = (w, v)
    return best


def manifest(wd: dict, hierarchical: bool) -> str:
    lines = ['[study]', 'name = "hierarchy benchmark"', ""]
    if not hierarchical:
        return "\n".join(lines + [f"[pools.{n}]\ntokens = {t:.6g}\n" for n, t in zip(wd["names"], wd["tokens"])])
    for k, s in enumerate(SOURCES):
        lines.append(f"[pools.{s}]\n")
        for t in range(N_TOPICS):
            lines.append(f"[pools.{s}.topics.t{t}]\n")
            for q, ql in enumerate(QUALITY):
                i = wd["names"].index(f"{s}_t{t}_{ql}")
                lines.append(f"[pools.{s}.topics.t{t}.quality.{ql}]\ntokens = {wd['tokens'][i]:.6g}\n")
    return "\n".join(lines)


def study(wd: dict, arm: str, seed: int, n_runs: int, model: str, folder: Path, opt: float) -> dict:
    hier = arm == "hierarchical"
    pools = folder / f"{arm}.toml"
    pools.write_text(manifest(wd, hier))
    design = folder / f"{arm}_design_{seed}"
    cli("design", "--pools", pools, "--n", n_runs, "--out", design, "--seed", seed, "--force",
        *(["--group-strengths", "0.3:5"] if hier else []))
    frame = pd.read_csv(design / "mixtures.csv")
    W = frame[[f"w_{n}" for n in wd["names"]]].to_numpy()
    noise = np.random.default_rng(1000 + seed).normal(0, 0.003, len(W))
    frame["loss"] = truth(W, wd) + noise
    frame.to_csv(folder / f"{arm}_runs_{seed}.csv", index=False)
    out = folder / f"{arm}_plan_{seed}"
    t0 = time.perf_counter()
    cli("plan", "--pools", pools, "--runs", folder / f"{arm}_runs_{seed}.csv", "--target", "loss", "--model", model,
        "--seed", seed, "--candidates", 5000, "--out", out, "--force")
    seconds = time.perf_counter() - t0
    plan = json.loads((out / "plan.json").read_text())
    w = np.array([plan["recommended"][n] for n in wd["names"]])
    true_runs = truth(W, wd)
    return {"arm": arm, "seed": seed, "regret": float(truth(w, wd)[0] - opt),
            "best_run_regret": float(true_runs.min() - opt), "cv_spearman": plan["cv"]["spearman"],
            "plan_seconds": seconds}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    ap.add_argument("--runs", type=int, default=96)
    ap.add_argument("--model", default="gp")
    ap.add_argument("--out", help="write the results as JSON")
    args = ap.parse_args()
    wd = world()
    w_opt, opt = true_optimum(wd)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for arm in ("flat", "hierarchical"):
                rows.append(study(wd, arm, seed, args.runs, args.model, Path(tmp), opt))
                r = rows[-1]
                print(f"seed {seed} {arm:>12}: true regret {r['regret']:.5f} (best run {r['best_run_regret']:.5f}, "
                      f"CV rho {r['cv_spearman']:.3f})", file=sys.stderr)
    frame = pd.DataFrame(rows)
    summary = frame.groupby("arm")[["regret", "best_run_regret", "cv_spearman", "plan_seconds"]].mean()
    wins = int((frame[frame.arm == "hierarchical"]["regret"].to_numpy()
                < frame[frame.arm == "flat"]["regret"].to_numpy()).sum())
    share = wd["tokens"] / wd["tokens"].sum()
    baselines = {"token share": float(truth(share, wd)[0] - opt),
                 "uniform": float(truth(np.full(len(share), 1 / len(share)), wd)[0] - opt)}
    print(f"72 leaf pools (3 sources x 8 topics x 3 quality levels), {args.runs} runs per study, model "
          f"{args.model}, {len(args.seeds)} seeds; true optimum {opt:.4f}; regret of fixed mixtures: "
          + ", ".join(f"{k} {v:.5f}" for k, v in baselines.items()))
    print(summary.to_string(float_format=lambda v: f"{v:.5f}"))
    passed = bool(summary.loc["hierarchical", "regret"] < summary.loc["flat", "regret"])
    print(f"hierarchical lower regret in {wins} of {len(args.seeds)} seeds; acceptance (mean regret below flat): "
          f"{'met' if passed else 'NOT met'}")
    if args.out:
        Path(args.out).write_text(json.dumps({
            "runs": args.runs, "model": args.model, "seeds": args.seeds, "true_optimum": opt,
            "baseline_regret": baselines,
            "summary": {a: {k: float(v) for k, v in row.items()} for a, row in summary.iterrows()},
            "hierarchical_wins": wins, "acceptance_met": passed, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
