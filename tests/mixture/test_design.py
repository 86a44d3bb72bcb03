from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixplan import Pool, PoolSet, ValidationError, design_swarm


def ps():
    return PoolSet(tuple(Pool(n, tokens=t, min_weight=f) for n, t, f in
                         [("big", 1e6, 0.0), ("mid", 1e5, 0.0), ("small", 1e3, 0.005), ("tiny", 1e2, 0.0)]))


def test_swarm_is_feasible_distinct_and_deterministic():
    d = design_swarm(ps(), 64, seed=3, tokens=1e5)
    W = d.frame[[c for c in d.frame if c.startswith("w_")]].to_numpy()
    assert len(W) == 64 and d.frame["run_id"].is_unique
    assert np.allclose(W.sum(axis=1), 1, atol=1e-9)
    assert (W[:, 2] >= 0.005 - 1e-12).all()  # the floor holds in every run
    # availability at the proxy budget: tiny has 100 tokens x 4 epochs over 1e5 tokens
    assert (W[:, 3] <= 4e-3 + 1e-12).all()
    tv = 0.5 * np.abs(W[:, None] - W[None]).sum(axis=2) + np.eye(64)
    assert tv.min() >= 0.01
    assert d.coverage["small"]["runs_nonzero"] == 64
    again = design_swarm(ps(), 64, seed=3, tokens=1e5)
    assert again.frame.equals(d.frame)


def test_swarm_keeps_distance_from_existing_runs():
    first = design_swarm(ps(), 20, seed=0)
    W0 = first.frame[[c for c in first.frame if c.startswith("w_")]].to_numpy()
    second = design_swarm(ps(), 20, seed=0, existing=W0, min_distance=0.05)
    W1 = second.frame[[c for c in second.frame if c.startswith("w_")]].to_numpy()
    assert (0.5 * np.abs(W1[:, None] - W0[None]).sum(axis=2)).min() >= 0.05


def test_swarm_errors():
    with pytest.raises(ValidationError, match="--n must be at least 1"):
        design_swarm(ps(), 0)
    two = PoolSet((Pool("a", tokens=1, max_weight=0.5), Pool("b", tokens=1, max_weight=0.5)))
    with pytest.raises(ValidationError, match=r"only 1 of 5 mixtures are at least 0.01 apart"):
        design_swarm(two, 5)


def test_repetition_matched_runs_read_every_pool_as_often_as_the_big_run(tmp_path):
    """design --match-budget T --tokens D: each pool subsampled to D/T of its unique tokens, so a run's epochs
    at D equal the big run's at T with the same weights (to 5%: here exactly); the document rule is
    deterministic per seed, nested in the fraction and keeps about that fraction."""
    import yaml

    from mixplan.cli import main
    from mixplan.data.pools import load_pools
    from mixplan.data.subsample import keep_document, subsample_mask

    repo = Path(__file__).resolve().parents[2]
    pools = load_pools(repo / "pools" / "demo.toml")
    assert main(["design", "--pools", str(repo / "pools" / "demo.toml"), "--n", "16", "--tokens", "1e6",
                 "--match-budget", "16e6", "--out", str(tmp_path / "m")]) == 0
    frame = pd.read_csv(tmp_path / "m" / "mixtures.csv")
    for p in pools:
        run_epochs = frame[f"w_{p.name}"] * 1e6 / frame[f"unique_tokens_{p.name}"]
        target_epochs = frame[f"w_{p.name}"] * 16e6 / p.tokens
        assert np.allclose(run_epochs, target_epochs, rtol=0.05) and np.all(np.abs(run_epochs - target_epochs) < 1e-9)
    cfg = yaml.safe_load((tmp_path / "m" / "runs" / f"{frame['run_id'][0]}.yaml").read_text())
    assert cfg["subsample"]["fraction"] == pytest.approx(1 / 16) and "blake2b" in cfg["subsample"]["rule"]
    assert cfg["subsample"]["pools"]["news"]["unique_tokens"] == pytest.approx(pools.by_name("news").tokens / 16)
    keys = range(20_000)
    a, b = subsample_mask(keys, "news", 1 / 16, seed=3), subsample_mask(keys, "news", 1 / 16, seed=3)
    assert (a == b).all() and abs(a.mean() - 1 / 16) < 0.005
    assert not (a == subsample_mask(keys, "news", 1 / 16, seed=4)).all()  # another seed, another subsample
    assert not (subsample_mask(keys, "news", 1 / 16, seed=3) & ~subsample_mask(keys, "news", 1 / 8, seed=3)).any()
    assert keep_document(7, "news", 1 / 16, seed=3) == bool(a[7])
    assert main(["design", "--pools", str(repo / "pools" / "demo.toml"), "--n", "4", "--match-budget", "16e6",
                 "--out", str(tmp_path / "x")]) == 2  # the proxy budget is needed
