import numpy as np
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
