"""Regenerate the demo continual-pre-training (CPT) study: proxies/demo_cpt/ (runs, noise, card).

A base proxy model (:func:`mixplan.demo.proxy_lm.train_base`) is trained on the general mixture
(wiki + news + bible, token-proportional) and then continued (:func:`mixplan.demo.proxy_lm.run_cpt`:
same weights and Adagrad state, a fresh linearly decaying step size) on ``ratio`` code + ``1 - ratio``
general data, over

* the D-CPT paper's 9 domain ratios (laws.md section 4.1: general:domain 10:0 ... 0:10),
* 5 continuation budgets, 125k ... 2M bytes (x2 steps),
* 3 model sizes (hash-table bits 18 / 20 / 22, reported as N = 2**bits weight slots),

one seed for the whole grid (so each size has one base model, reused by all its 45 runs), plus a
seed-noise measurement (one cell, 5 seeds, each with its own base model).

Deterministic: the same command gives byte-identical files (checked: two runs, identical tables;
timings are not measured into the files). About 10 CPU-minutes, 5-7 minutes on 2 cores::

    python examples/cpt_study.py --workers 2 --force
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mixplan._io import check_writable, write_table_atomic, write_text_atomic  # noqa: E402
from mixplan.demo import corpora, proxy_lm  # noqa: E402
from mixplan.laws.dcpt import DCPT_RATIOS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DOMAIN = "code"
SIZES = proxy_lm.CPT_TABLE_BITS  # table_bits 18, 20, 22
BUDGETS = (125_000, 250_000, 500_000, 1_000_000, 2_000_000)  # continuation bytes
RATIOS = DCPT_RATIOS  # domain shares 0, 0.1, 0.2, 1/3, 0.5, 2/3, 0.8, 0.9, 1
BASE_TOKENS = proxy_lm.CPT_BASE_TOKENS  # 1M bytes of the general mixture
GRID_SEED = 0
NOISE_CELL = {"table_bits": 22, "tokens": 1_000_000, "ratio": 0.5}
NOISE_SEEDS = (0, 1, 2, 3, 4)
#: Measured once (2-core shared x86-64, numpy 2.x; not written by the run, to keep files byte-identical).
TIMING = ("the whole study (135 grid runs + 4 extra noise runs; each worker trains a base model per size and seed "
          "it meets) took 5 minutes on 2 worker processes (7 on a busier machine); a 1M-byte continuation at 2**22 "
          "slots takes ~5 s of training plus ~1.5 s to evaluate 6 held-out sets, a 1M-byte base model ~9 s")
COLUMNS = ["run_id", "params", "table_bits", "tokens", "ratio", "seed", "base_tokens", "general_loss", "domain_loss",
           "base_general_loss", "base_domain_loss"]


def run_id(bits: int, tokens: int, ratio: float, seed: int) -> str:
    return f"cpt-b{bits}-d{tokens // 1000}k-r{ratio:.3f}-s{seed}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "proxies" / "demo_cpt", help="folder to write")
    ap.add_argument("--force", action="store_true", help="overwrite the shipped files")
    args = ap.parse_args(argv)
    runs_path, noise_path, card_path = args.out / "runs.csv", args.out / "noise.csv", args.out / "README.md"
    check_writable([runs_path, noise_path, card_path], args.force)

    t0 = time.perf_counter()
    pools = corpora.load_pools()
    general = proxy_lm.general_mixture(DOMAIN, pools)
    jobs: dict[str, tuple] = {}
    # Size by size, largest budgets first: each worker trains a size's base model once and reuses it.
    for bits in SIZES:
        for tokens in sorted(BUDGETS, reverse=True):
            for ratio in RATIOS:
                jobs[run_id(bits, tokens, ratio, GRID_SEED)] = (general, DOMAIN, ratio, BASE_TOKENS, tokens,
                                                               GRID_SEED, bits)
    noise_ids = []
    for seed in NOISE_SEEDS:
        rid = run_id(NOISE_CELL["table_bits"], NOISE_CELL["tokens"], NOISE_CELL["ratio"], seed)
        noise_ids.append(rid)
        jobs.setdefault(rid, (general, DOMAIN, NOISE_CELL["ratio"], BASE_TOKENS, NOISE_CELL["tokens"], seed,
                              NOISE_CELL["table_bits"]))
    results = dict(zip(jobs, proxy_lm.run_cpts(jobs.values(), processes=args.workers)))

    def row(rid: str) -> dict:
        g, d, ratio, base_tokens, tokens, seed, bits = jobs[rid]
        res = results[rid]
        return ({"run_id": rid, "params": proxy_lm.cpt_params(bits), "table_bits": bits, "tokens": tokens,
                 "ratio": ratio, "seed": seed, "base_tokens": base_tokens}
                | {k: res[k] for k in COLUMNS[7:]}
                | {k: v for k, v in res.items() if k.startswith("bpb_")})

    grid_ids = [run_id(b, t, r, GRID_SEED) for b in SIZES for t in BUDGETS for r in RATIOS]
    runs = pd.DataFrame([row(r) for r in grid_ids])
    noise = pd.DataFrame([row(r) for r in noise_ids])
    write_table_atomic(runs_path, runs, force=args.force)
    write_table_atomic(noise_path, noise, force=args.force)
    write_text_atomic(card_path, card_text(runs, noise, general, pools), force=args.force)
    print(f"wrote {runs_path} ({len(runs)} runs), {noise_path} ({len(noise)} runs), {card_path} "
          f"in {time.perf_counter() - t0:.0f} s")
    return 0


def card_text(runs: pd.DataFrame, noise: pd.DataFrame, general: dict, pools: dict) -> str:
    gen = ", ".join(f"{p} {w:.4f}" for p, w in general.items())
    gen_pools = ", ".join(general)
    bits_list = " / ".join(str(b) for b in SIZES)
    budgets = ", ".join(f"{t:,}" for t in BUDGETS)
    ratios = ", ".join(f"{r:.4g}" for r in RATIOS)
    size_rows = []
    for bits in SIZES:
        s = runs[runs["table_bits"] == bits]
        top = s[s["tokens"] == max(BUDGETS)]
        size_rows.append(f"| {bits} | {proxy_lm.cpt_params(bits):,} | {s['base_general_loss'].iloc[0]:.4f} | "
                         f"{s['base_domain_loss'].iloc[0]:.4f} | {top['general_loss'].min():.4f} | "
                         f"{top['domain_loss'].min():.4f} |")
    big = runs[runs["table_bits"] == max(SIZES)]
    head = " | ".join(f"{t // 1000}k" for t in BUDGETS)
    rule = " | ".join("---" for _ in BUDGETS)

    def grid(col: str) -> str:
        lines = []
        for r in RATIOS:
            cells = " | ".join(f"{big[(big['tokens'] == t) & np.isclose(big['ratio'], r)][col].iloc[0]:.4f}"
                               for t in BUDGETS)
            lines.append(f"| {r:.3f} | {cells} |")
        return "\n".join(lines)

    metrics = ["general_loss", "domain_loss"] + [c for c in noise.columns if c.startswith("bpb_")]
    def rise_sd(m: str) -> str:
        return f"{(noise[m] - noise['base_' + m]).std(ddof=1):.4f}" if "base_" + m in noise else "-"

    noise_rows = "\n".join(f"| `{m}` | {noise[m].mean():.4f} | {noise[m].std(ddof=1):.4f} | {rise_sd(m)} |"
                           for m in metrics)
    cell = NOISE_CELL
    return f"""# Demo continual-pre-training study: a base proxy model continued on code + general text

Generated by `examples/cpt_study.py` (deterministic; regenerate with
`python examples/cpt_study.py --workers 2 --force`). Everything here is produced by mixplan itself;
no text is stored: the pools are read at run time from installed packages (`pip install -e '.[demo]'`).
For the D-CPT law (`mixplan cpt fit` / `mixplan cpt plan`, ../../shared/reference/laws.md section 4).

## Files

| file | rows | what |
| --- | --- | --- |
| `runs.csv` | {len(runs)} | the grid: {len(SIZES)} sizes x {len(BUDGETS)} continuation budgets x {len(RATIOS)} domain ratios, seed {GRID_SEED} |
| `noise.csv` | {len(noise)} | one cell (2**{cell['table_bits']} slots, {cell['tokens']:,} bytes, ratio {cell['ratio']}) with seeds {', '.join(map(str, NOISE_SEEDS))} (seed {GRID_SEED} is also in `runs.csv`) |

Columns: `run_id`; `params` N = 2**`table_bits` (the proxy's weight slots: its "model size");
`tokens` continuation bytes D; `ratio` the **domain** share r_d of the continuation (general share
r_g = 1 - r_d; general:domain 8:2 is 0.2); `seed`; `base_tokens` bytes of the base model's training;
`general_loss` mean held-out bits per byte over the general pools ({gen_pools}) after continual
pre-training; `domain_loss` held-out bpb of `{DOMAIN}`; `base_general_loss`, `base_domain_loss` the same
for the base model before continual pre-training (one base per size and seed, so constant within a
size in `runs.csv`); `bpb_<pool>` held-out bpb of every pool after continual pre-training (`docs`,
Python's documentation, is in neither loss: see below; `reviews` is evaluation-only).

Fit it with `mixplan cpt fit proxies/demo_cpt/runs.csv --general general_loss --domain domain_loss`
(the three sizes give the full law; add `--where table_bits=22` for the reduced law at one size).

## Generator

* **Proxy model:** `mixplan.demo.proxy_lm.ProxyLM` (hashed byte log-linear model, one pass of
  Adagrad with a linearly decaying step size; see its docstring), default orders and step size.
* **Sizes:** `table_bits` {bits_list}, reported as N = 2**table_bits weight slots. Every feature of
  every byte hashes into the one table, so a smaller table means more collisions: fewer effective
  parameters. Checked: larger tables give lower losses at every budget (table below).
* **Base model** (`proxy_lm.train_base`): a fresh model trained on {BASE_TOKENS:,} bytes of the
  general mixture, token-proportional over the pools outside the domain's group
  (`proxy_lm.CPT_GROUPS`): {gen}. `docs` is left out of both the general data and the general loss
  because it is prose about Python that code training improves a lot (a code-adjacent pool; with it
  in the general loss, training on code *lowers* the general loss and no ratio has a cost).
  The base stream depends on the seed only, so all sizes see the same base data.
* **Continual pre-training** (`proxy_lm.run_cpt`): the base model's weights **and Adagrad
  accumulators** are kept; one more pass with a fresh step size decaying linearly from
  {proxy_lm.LEARNING_RATE} to 0 over the continuation (CPT re-warms the schedule), over `tokens` bytes
  of `ratio` x {DOMAIN} + (1 - `ratio`) x the general mixture (streams as `proxy_lm.sample_stream`;
  the general data are fresh draws from the same pools as the base data, so some of it is replay).
  Each budget is its own run (its own schedule), not a checkpoint of a longer run.
* **Grid:** ratios (domain share) {ratios} (the D-CPT paper's 9, laws.md 4.1); budgets {budgets}
  bytes; sizes 2**{bits_list} slots; seed {GRID_SEED} throughout.
* **Tokenizer:** none: UTF-8 bytes, so losses are bits per byte. Held-out split as `proxies/demo/`.
* **Timing:** {TIMING}.

## Sizes: the knob works

Base model after {BASE_TOKENS:,} general bytes, and the best continual-pre-training losses at the
largest budget ({max(BUDGETS):,} bytes), per size:

| table_bits | N (slots) | base general bpb | base {DOMAIN} bpb | best general bpb at {max(BUDGETS) // 1000}k | best {DOMAIN} bpb at {max(BUDGETS) // 1000}k |
| --- | --- | --- | --- | --- | --- |
{chr(10).join(size_rows)}

## The grid at 2**{max(SIZES)} slots

General loss (base {big['base_general_loss'].iloc[0]:.4f}) by domain ratio (rows) and continuation budget (columns):

| r_d | {head} |
| --- | {rule} |
{grid('general_loss')}

Domain ({DOMAIN}) loss (base {big['base_domain_loss'].iloc[0]:.4f}):

| r_d | {head} |
| --- | {rule} |
{grid('domain_loss')}

## Noise

{len(noise)} seeds of one cell (2**{cell['table_bits']} slots, {cell['tokens']:,} bytes, r_d = {cell['ratio']}); every
seed has its own base model and streams. sd of the rise is the sd of (loss - the seed's base loss);
the base models' own spread is in it (a base model's code loss varies with the general data it saw), so
compare seeds' domain losses directly and their general losses through the rise over their own base
(as the Usage-1 check in `tests/benchmarks/dcpt_demo.py` does).

| metric | mean | seed sd | sd of rise over base |
| --- | --- | --- | --- |
{noise_rows}
"""


if __name__ == "__main__":
    sys.exit(main())
