r"""Seeded synthetic proxy runs with a known best mixture, for tests and examples.

The true objective is a convex bowl on the simplex plus a curved (log) term,

.. math::

    y(w) = c + (w - w^\star)^\top A (w - w^\star) - b \sum_i w^\star_i \log(w_i + \epsilon)
           + \sigma \varepsilon,

whose minimiser over the simplex is close to (not exactly at) :math:`w^\star`; use
:func:`true_objective` with a fine search to find the exact optimum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["SyntheticStudy", "make_study"]


@dataclass(frozen=True)
class SyntheticStudy:
    names: list[str]
    w_star: np.ndarray
    A: np.ndarray
    c: float = 3.0
    b: float = 0.05
    eps: float = 1e-3

    def true_objective(self, W: np.ndarray) -> np.ndarray:
        W = np.atleast_2d(W)
        D = W - self.w_star
        quad = np.einsum("ni,ij,nj->n", D, self.A, D)
        return self.c + quad - self.b * (np.log(W + self.eps) * self.w_star).sum(axis=1)

    def runs(self, n: int, seed: int = 0, noise: float = 0.01, concentration: float = 1.0) -> pd.DataFrame:
        """``n`` runs on Dirichlet(concentration) mixtures with Gaussian noise of sd ``noise``."""
        rng = np.random.default_rng(seed)
        W = rng.dirichlet(np.full(len(self.names), concentration), size=n)
        y = self.true_objective(W) + noise * rng.normal(size=n)
        frame = pd.DataFrame(W, columns=[f"w_{p}" for p in self.names])
        frame.insert(0, "run_id", [f"syn-{i:04d}" for i in range(n)])
        frame["loss"] = y
        frame["loss_other"] = self.true_objective(W[:, ::-1]) + noise * rng.normal(size=n)
        return frame


def make_study(n_pools: int = 5, seed: int = 0) -> SyntheticStudy:
    """A random study: optimum ``w_star`` drawn from Dirichlet(2), a random positive-definite ``A``."""
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(n_pools, n_pools))
    A = M @ M.T / n_pools + np.eye(n_pools)
    return SyntheticStudy(names=[f"p{i}" for i in range(n_pools)], w_star=rng.dirichlet(np.full(n_pools, 2.0)), A=A)
