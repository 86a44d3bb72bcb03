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

from ..laws.data_constrained import DATABLATIONS
from ..laws.mixture import pool_effective_tokens

__all__ = ["SyntheticStudy", "make_study", "BudgetWorld", "make_budget_world"]


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


@dataclass(frozen=True)
class BudgetWorld:
    r"""A known-truth world in which the best mixture moves with the budget (issue 16's benchmark).

    Pool :math:`i` has :math:`U_i` unique tokens, a value :math:`c_i` and an exponent :math:`\gamma_i`;
    at a budget of :math:`T` tokens a mixture :math:`w` reads :math:`w_i T` tokens of it, worth
    Muennighoff et al.'s effective tokens :math:`D'_i` (repeated tokens decay with :math:`R^*`), and

    .. math::

        L(w, T) = E + \Big(\sum_i c_i\, (D'_i / T_0)^{\gamma_i}\Big)^{-1}.

    Each pool's term is a power law in its own effective tokens: a small, valuable pool wins at a small
    budget and is exhausted (repeated) at a large one, where pools that keep scaling take over.
    """

    names: list[str]
    unique_tokens: np.ndarray
    value: np.ndarray
    exponent: np.ndarray
    E: float = 2.0
    r_star: float = DATABLATIONS["R_D_star"]  # Muennighoff et al.'s fitted R_D*
    reference: float = 1e8

    def effective_tokens(self, W: np.ndarray, tokens: float) -> np.ndarray:
        """Each pool's effective tokens (:func:`mixplan.laws.pool_effective_tokens`; a pool read less than
        once counts what was read)."""
        return pool_effective_tokens(W, tokens, self.unique_tokens, self.r_star)

    def true_loss(self, W: np.ndarray, tokens: float) -> np.ndarray:
        Dp = self.effective_tokens(W, tokens) / self.reference
        terms = np.where(Dp > 0, self.value * np.power(np.where(Dp > 0, Dp, 1.0), self.exponent), 0.0)
        return self.E + 1.0 / terms.sum(axis=1)

    def optimum(self, tokens: float, starts: int = 16, seed: int = 0) -> tuple[np.ndarray, float]:
        """The true best mixture at ``tokens`` (SLSQP on the simplex from the best of random draws)."""
        from scipy.optimize import minimize

        rng = np.random.default_rng(seed)
        K = len(self.names)
        W = np.vstack([rng.dirichlet(np.full(K, 0.5), 4000), np.eye(K), np.full((1, K), 1.0 / K)])
        best_w, best = None, np.inf
        for w0 in W[np.argsort(self.true_loss(W, tokens))[:starts]]:
            res = minimize(lambda w: float(self.true_loss(w, tokens)[0]), w0, method="SLSQP", bounds=[(0, 1)] * K,
                           constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
                           options={"ftol": 1e-12, "maxiter": 500})
            w = np.clip(res.x, 0, 1) / np.clip(res.x, 0, 1).sum()
            value = float(self.true_loss(w, tokens)[0])
            if value < best:
                best_w, best = w, value
        return best_w, best

    def measure(self, W: np.ndarray, tokens: float, seed: int = 0, noise: float = 0.005) -> np.ndarray:
        """The true loss plus Gaussian noise of sd ``noise`` (a trained run's seed-to-seed spread)."""
        rng = np.random.default_rng(seed)
        return self.true_loss(W, tokens) + noise * rng.normal(size=len(np.atleast_2d(W)))


def make_budget_world(n_pools: int = 8, seed: int = 0, r_star: float = DATABLATIONS["R_D_star"]) -> BudgetWorld:
    """Pools of 20M-2B unique tokens (log-uniform), the smallest the most valuable, exponents 0.2-0.6;
    repeated tokens decay with ``r_star`` (default Muennighoff et al.'s R_D* = 15.39)."""
    rng = np.random.default_rng(seed)
    U = np.sort(np.exp(rng.uniform(np.log(2e7), np.log(2e9), n_pools)))
    value = np.sort(rng.uniform(0.3, 2.0, n_pools))[::-1]  # smallest pool, largest value
    exponent = rng.uniform(0.2, 0.6, n_pools)
    return BudgetWorld(names=[f"pool{i}" for i in range(n_pools)], unique_tokens=U, value=value, exponent=exponent,
                       r_star=float(r_star))
