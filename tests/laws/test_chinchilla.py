"""Chinchilla L(N, D) and the compute-optimal allocation against the published table."""

import pytest

from mixplan.laws import (PUBLISHED, compute_optimal)


def test_compute_optimal_allocation_matches_the_table(anchors):
    # laws.md 3.1 [re-computed]: at C = 5.76e23, Epoch "replicate exactly": N 7.319e10, D 1.312e12
    N, D = compute_optimal(5.76e23, PUBLISHED["epoch-replicate"])
    assert float(N) == pytest.approx(7.319e10, rel=1e-3) and float(D) == pytest.approx(1.312e12, rel=1e-3)
    assert 6 * N * D == pytest.approx(5.76e23, rel=1e-12)
    N, D = compute_optimal(5.76e23, PUBLISHED["hoffmann"])
    assert float(N) == pytest.approx(3.219e10, rel=1e-3) and float(D) == pytest.approx(2.982e12, rel=1e-3)
