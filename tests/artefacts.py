"""One of every artefact mixplan writes and reads back, made by the commands that write them (in ~10 s):
shared by the damaged-artefact tests (tests/cli/test_artefacts.py) and the fuzz corpus (tests/fuzz)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pandas as pd

from mixplan.cli import main

REPO = Path(__file__).resolve().parents[1]


def quiet(argv: list) -> int:
    with contextlib.redirect_stdout(io.StringIO()):
        return main([str(a) for a in argv])


def ot_inputs(d: Path) -> None:
    """Three pools of made-up words, 16 mixtures run at two sizes: an OT study with a text featurizer in ~1 s."""
    rng = np.random.default_rng(0)
    vocab = {p: [f"{p}{i}" for i in range(30)] + [f"common{i}" for i in range(10)] for p in "abc"}
    pd.DataFrame([{"pool": p, "text": " ".join(rng.choice(vocab[p], 12))} for p in "abc" for _ in range(20)]).to_csv(
        d / "samples.csv", index=False)
    pd.DataFrame([{"text": " ".join(rng.choice(vocab["a"] + vocab["b"], 12))} for _ in range(20)]).to_csv(
        d / "val.csv", index=False)
    W = rng.dirichlet(np.ones(3), size=16)
    pd.DataFrame([{"run_id": f"r{i}-{int(n)}", **{f"w_{p}": W[i, k] for k, p in enumerate("abc")}, "tokens": n,
                   "loss": 3 - 0.1 * np.log(n / 1e6) + 0.5 * W[i, 2] + 0.01 * rng.normal()}
                  for n in (1e6, 2e6) for i in range(16)]).to_csv(d / "ot_runs.csv", index=False)


def make_artefacts(d: Path) -> Path:
    demo_runs = REPO / "proxies" / "demo" / "runs.csv"
    assert quiet(["plan", "--runs", demo_runs, "--pools", REPO / "pools" / "demo.toml", "--target", "bpb_reviews",
                   "--model", "ridge", "--tokens", "1e6", "--candidates", "1000", "--out", d / "plan"]) == 0
    for model in ("lightgbm", "gp"):
        assert quiet(["fit", demo_runs, "--target", "bpb_reviews", "--model", model, "--out", d / model]) == 0
    assert quiet(["filter", "--pools", REPO / "pools" / "demo_buckets.toml", "--runs",
                   REPO / "proxies" / "demo_buckets" / "filter_runs.csv", "--target", "bpb_wiki", "--bootstrap", "0",
                   "--budget", "1e6,1e7", "--out", d / "filter"]) == 0
    assert quiet(["cpt", "fit", REPO / "proxies" / "demo_cpt" / "runs.csv", "--general", "general_loss", "--domain",
                   "domain_loss", "--bootstrap", "0", "--target-params", "262144", "--out", d / "cpt.json"]) == 0
    rng = np.random.default_rng(0)
    N, D = np.repeat([1e7, 3e7, 1e8, 3e8], 4), np.tile([1e9, 3e9, 1e10, 3e10], 4)
    loss = (1.8 + 400 / N ** 0.34 + 410 / D ** 0.28) * np.exp(0.001 * rng.normal(size=16))
    pd.DataFrame({"params": N, "tokens": D, "loss": loss}).to_csv(d / "law_runs.csv", index=False)
    assert quiet(["laws", "fit", d / "law_runs.csv", "--law", "chinchilla", "--target", "loss", "--bootstrap", "2",
                   "--out", d / "law.json"]) == 0
    ot_inputs(d)
    assert quiet(["ot", "fit", "--runs", d / "ot_runs.csv", "--target", "loss", "--samples", d / "samples.csv",
                   "--validation", d / "val.csv", "--components", "4", "--out", d / "ot"]) == 0
    return d
