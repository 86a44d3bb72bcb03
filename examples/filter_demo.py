"""Filtering thresholds that depend on compute, on the demo study's real text (issue 7).

One pool of the demo study (``wiki``, raw Wikipedia wikitext) is cut into quality buckets by a
document score computed offline from the text, the proxy LM (:mod:`mixplan.demo.proxy_lm`) is trained
on single buckets at 2-10 epochs to fit each bucket's QQT utility ``b`` and half-life ``tau``
(:func:`mixplan.filtering.fit_buckets`), and the planner (:func:`mixplan.filtering.plan_filter`)
predicts the best keep-fraction at two budgets where repetition differs strongly. The unions are then
trained at both budgets and the measured best keep-fraction is printed next to the predicted one.

Documents and score
-------------------
The unit is a training *chunk* of the pool (~1,500 bytes, the unit the proxy's sampler shuffles and
repeats; wiki has only ~95 training articles, too few to cut into 10% buckets). The score is a
Gopher-style prose heuristic: the share of whitespace-separated tokens that are plain words (ASCII
letters, optionally followed by punctuation), so running prose ranks above wiki markup, tables,
templates and link lists. It never looks at any evaluation text. The metric is the proxy's held-out
bits per byte on prose it never trains on: the mean of ``bpb_news`` (Lee news articles) and
``bpb_reviews`` (movie-review sentences) -- "prose bpb" (lower is better, positive: a QQT error).

Budgets
-------
Buckets are the top 10 / 20 / 30 / 50 % of chunks (the last bucket is two 10% units: see
``BucketSpec.units``). The small budget sees the top 10% about 1.5 times; the large one about 10
times. ``a`` and ``d`` (shared) are chosen by a grid scan on the metric's scale (the authors' values
are for ImageNet error), ``a`` from where ``a n / Z >= 1`` for every fitting run (the law's regime).
The QQT variant is the effective-data one by default: the proxy repeats data like an LM (nearly as
good as fresh for ~4 epochs, then less; proxies/demo/README.md), which is what it models;
``--objective effective_utility`` for the other. ``--reuse`` refits from the saved runs.

Cost of the full run: 20 fitting runs (77 MB of training) and 24 evaluation runs (71 MB), about
150 MB at ~4 s per MB per worker.

Run: ``python examples/filter_demo.py --workers 2`` (about 5-10 minutes on 2 free cores; writes
``--out``, default ``$TMPDIR/mixplan_filter_demo/``), or ``--quick`` for a smoke run on a 600 kB subset
(~1 min).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

POOL = "wiki"
FRACTIONS = (0.1, 0.2, 0.3, 0.5)
EPOCHS = (2, 4, 6, 8, 10)
def pool_chunks(pool_bytes: int | None) -> list[int]:
    """Chunk ids of the pool used here: all, or a fixed random subset of about ``pool_bytes``."""
    from mixplan.demo.corpora import load_pools

    pool = load_pools()[POOL]
    ids = np.arange(pool.n_chunks)
    if pool_bytes is None:
        return ids.tolist()
    lengths = np.diff(pool.chunk_offsets)
    perm = np.random.default_rng(7).permutation(ids)
    keep = perm[: int(np.searchsorted(np.cumsum(lengths[perm]), pool_bytes)) + 1]
    return np.sort(keep).tolist()


def train(job: tuple[tuple[int, ...], int, int]) -> dict[str, float]:
    """One proxy run on the union of chunks ``ids`` for ``tokens`` bytes (seeded): held-out bpb.

    As :func:`mixplan.demo.proxy_lm.run_proxy` with the pool replaced by the union: the sampler walks
    the union's chunks in a new shuffled order each epoch, so every chunk is seen equally often (the
    QQT union law's uniform mixture)."""
    from mixplan.demo.corpora import EVAL_ONLY, TRAIN_POOLS, load_pools
    from mixplan.demo.proxy_lm import ProxyLM, sample_stream
    from mixplan.demo.quality import chunk_subset

    ids, tokens, seed = job
    pools = dict(load_pools())
    pools[POOL] = chunk_subset(pools[POOL], ids)
    rng = np.random.default_rng([int(seed), 0x6D78])
    model = ProxyLM().fit(sample_stream(pools, {POOL: 1.0}, int(tokens), rng))
    # `pools` holds the same cached pool objects; the union keeps POOL's held-out text
    out = {f"bpb_{n}": model.bits_per_byte(pools[n].heldout) for n in TRAIN_POOLS + EVAL_ONLY}
    out["prose_bpb"] = 0.5 * (out["bpb_news"] + out["bpb_reviews"])
    return out


def run_all(jobs, workers: int):
    """:func:`train` for every job, in job order, on ``workers`` spawned single-thread workers."""
    from mixplan.demo.proxy_lm import run_jobs

    # the proxy study's runner (run_proxies takes mixtures, not chunk unions); no bar, as before
    return run_jobs(train, list(jobs), workers, progress=False, desc="filter runs")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="smoke run: 600 kB subset, 1 seed, epochs 1-4")
    ap.add_argument("--fit-seeds", type=int, default=1, help="seeds per fitting run (default 1: the proxy's seed "
                    "noise, ~0.3%% of bpb, is far below the 2%% the law is fitted through)")
    ap.add_argument("--eval-seeds", type=int, default=None, help="seeds per evaluation run (default 3, quick 1)")
    ap.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "mixplan_filter_demo"),
                    help="folder for buckets, manifest, runs, fit and summary (default: in the temp folder, so "
                         "nothing lands in the repository)")
    ap.add_argument("--objective", choices=["effective_data", "effective_utility"], default="effective_data",
                    help="QQT variant (default effective_data: repetition discounts the data, as in Muennighoff et al., "
                         "which is how the demo proxy LM repeats - see proxies/demo/README.md)")
    ap.add_argument("--reuse", action="store_true",
                    help="refit and re-plan from runs.csv and eval_runs.csv already in --out (no training)")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)

    from mixplan._io import check_writable, write_json_atomic, write_table_atomic, write_text_atomic
    from mixplan.filtering.scores import bucket_scores, manifest_snippet
    from mixplan.demo.corpora import load_pools as demo_pools
    from mixplan.demo.proxy_lm import limit_threads
    from mixplan.demo.quality import prose_score
    from mixplan.filtering import fit_buckets, plan_filter
    from mixplan.laws.qqt import QQT_NORMALIZER
    from mixplan.data.pools import load_pools

    limit_threads(1)
    quick = args.quick
    seeds = args.fit_seeds
    eval_seeds = args.eval_seeds or (1 if quick else 3)
    epochs = (1, 2, 3, 4) if quick else EPOCHS
    out = Path(args.out)
    files = {k: out / f for k, f in (("buckets", "buckets.csv"), ("manifest", "pools.toml"), ("runs", "runs.csv"),
                                      ("eval", "eval_runs.csv"), ("fit", "FIT.json"), ("summary", "summary.csv"))}
    reused = ("runs", "eval") if args.reuse else ()
    if args.reuse and not all(files[k].is_file() for k in reused):
        sys.exit(f"--reuse: {files['runs']} and {files['eval']} must exist (run once without --reuse)")
    check_writable([f for k, f in files.items() if k not in reused], args.force)
    t0 = time.time()

    # 1. Score every chunk offline and cut the buckets (the numbers a manifest needs).
    pool = demo_pools()[POOL]
    ids = np.array(pool_chunks(600_000 if quick else None))
    off = pool.chunk_offsets
    scores = np.array([prose_score(pool.train[off[i]: off[i + 1]].tobytes()) for i in ids])
    sizes = np.diff(off)[ids].astype(float)
    table = bucket_scores(scores, FRACTIONS, tokens=sizes)
    order = ids[np.argsort(-scores, kind="stable")]  # best first, as bucket_scores ranks
    ends = np.cumsum(table["documents"].to_numpy())
    members = [tuple(int(i) for i in order[lo:hi]) for lo, hi in zip(np.r_[0, ends[:-1]], ends)]
    snippet = manifest_snippet(table, pool=POOL, score="prose_words", total_tokens=float(sizes.sum()),
                               total_documents=len(ids))
    write_table_atomic(files["buckets"], table, force=args.force)
    write_text_atomic(files["manifest"], '[study]\nname = "filter-demo"\ntoken_unit = "bytes"\n\n' + snippet,
                      force=args.force)
    spec = load_pools(files["manifest"]).bucketed[0].buckets
    print(f"{POOL}: {len(ids)} chunks, {sizes.sum():,.0f} bytes, bucketed by prose score", flush=True)
    print(table.to_string(index=False), flush=True)

    # 2. Fitting runs: each bucket alone at 2-10 epochs (the authors' design), `seeds` seeds.
    jobs, rows = [], []
    for name, mem, size in zip(spec.names, members, spec.sizes()):
        for e in epochs:
            for s in range(seeds):
                jobs.append((mem, int(round(e * size)), 100 + s))
                rows.append({"bucket": name, "samples": int(round(e * size)), "pool_size": size, "epochs": e,
                             "seed": 100 + s})
    # 3. Evaluation runs: every union at a small and a large budget (top 10% seen ~1.5 and ~10 times).
    top10 = float(spec.sizes()[0])
    budgets = (int(1.5 * top10), int(10 * top10))
    eval_jobs, eval_rows = [], []
    for k in range(1, len(members) + 1):
        union = tuple(sorted(i for m in members[:k] for i in m))
        for n in budgets:
            for s in range(eval_seeds):
                eval_jobs.append((union, n, 200 + s))
                eval_rows.append({"bucket": spec.union_label(k), "buckets": k, "samples": n, "seed": 200 + s})
    if args.reuse:
        runs, evals = pd.read_csv(files["runs"]), pd.read_csv(files["eval"])
        if len(runs) != len(jobs) or len(evals) != len(eval_jobs):
            sys.exit("--reuse: the saved runs do not match this design (other --quick/--fit-seeds/--eval-seeds?)")
        print(f"reusing {len(runs)} fitting and {len(evals)} evaluation runs from {out}", flush=True)
    else:
        print(f"{len(jobs)} fitting runs + {len(eval_jobs)} evaluation runs on {args.workers} workers", flush=True)
        results = run_all(jobs + eval_jobs, args.workers)
        runs = pd.concat([pd.DataFrame(rows), pd.DataFrame(results[:len(jobs)])], axis=1)
        evals = pd.concat([pd.DataFrame(eval_rows), pd.DataFrame(results[len(jobs):])], axis=1)
        write_table_atomic(files["runs"], runs, force=args.force)
        write_table_atomic(files["eval"], evals, force=args.force)
        print(f"proxy runs done in {time.time() - t0:.0f} s", flush=True)

    # 4. Fit (b, tau) per bucket; a and d shared, scanned on the metric's scale. The a grid starts where
    # a n / Z >= 1 for every fitting run: below it a more negative b means a *worse* bucket and averaging
    # utilities over a union (the union law) loses its meaning.
    y = runs["prose_bpb"].to_numpy()
    a_min = QQT_NORMALIZER / float(runs["samples"].min())
    fit = fit_buckets(spec, runs, "prose_bpb", objective=args.objective, free=("a", "d"),
                      a_grid=tuple(np.geomspace(a_min, 1e3 * a_min, 13)),
                      d_grid=tuple(np.linspace(0.0, 0.9 * y.min(), 10)), n_bootstrap=40 if quick else 200,
                      seed=0, where=str(files["runs"]))
    write_json_atomic(files["fit"], fit.to_dict(), force=args.force)
    print(fit.report(), flush=True)

    # 5. Predicted vs measured best keep-fraction at both budgets.
    plan = plan_filter(spec, budgets, fit=fit)
    measured = evals.groupby(["samples", "buckets"])["prose_bpb"].agg(["mean", "std", "count"]).reset_index()
    summary = []
    for i, n in enumerate(budgets):
        m = measured[measured["samples"] == n].sort_values("buckets")
        pred = plan.result.errors[i]
        for k in range(1, len(spec.buckets) + 1):
            row = m[m["buckets"] == k].iloc[0]
            summary.append({"budget": n, "epochs_of_top10": n / top10, "choice": spec.union_label(k),
                            "measured": row["mean"], "measured_sd": row["std"], "seeds": int(row["count"]),
                            "predicted": pred[k - 1], "lower": plan.lower[i, k - 1], "upper": plan.upper[i, k - 1]})
    summary = pd.DataFrame(summary)
    write_table_atomic(files["summary"], summary, force=args.force)
    print(plan.report(), flush=True)
    print("\nmeasured vs predicted prose bpb (lower is better):")
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for n in budgets:
        s = summary[summary["budget"] == n]
        print(f"budget {n:,} bytes ({n / top10:.1f} epochs of the top 10%): best measured "
              f"{s.loc[s['measured'].idxmin(), 'choice']}, predicted {s.loc[s['predicted'].idxmin(), 'choice']}")
    print(f"done in {time.time() - t0:.0f} s; outputs in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
