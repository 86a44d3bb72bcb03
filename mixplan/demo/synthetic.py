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
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..laws.data_constrained import DATABLATIONS
from ..laws.mixture import pool_effective_tokens

if TYPE_CHECKING:
    from ..data.pools import PoolSet
    from ..mixture.buckets import BucketLayout

__all__ = ["SyntheticStudy", "make_study", "BudgetWorld", "make_budget_world", "BucketedWorld",
           "make_bucketed_world"]


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

    def effective_tokens(self, W: np.ndarray, tokens: float, available: np.ndarray | None = None) -> np.ndarray:
        """Each pool's effective tokens (:func:`mixplan.laws.pool_effective_tokens`; a pool read less than
        once counts what was read). ``available``: the unique tokens a run could read of each pool, (P,) or
        per run (n, P), when it trained on subsamples (default: the whole pools)."""
        return pool_effective_tokens(W, tokens, self.unique_tokens if available is None else available, self.r_star)

    def true_loss(self, W: np.ndarray, tokens: float, available: np.ndarray | None = None) -> np.ndarray:
        Dp = self.effective_tokens(W, tokens, available) / self.reference
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

    def measure(self, W: np.ndarray, tokens: float, seed: int = 0, noise: float = 0.005,
                available: np.ndarray | None = None) -> np.ndarray:
        """The true loss plus Gaussian noise of sd ``noise`` (a trained run's seed-to-seed spread)."""
        rng = np.random.default_rng(seed)
        return self.true_loss(W, tokens, available) + noise * rng.normal(size=len(np.atleast_2d(W)))


def make_budget_world(n_pools: int = 8, seed: int = 0, r_star: float = DATABLATIONS["R_D_star"]) -> BudgetWorld:
    """Pools of 20M-2B unique tokens (log-uniform), the smallest the most valuable, exponents 0.2-0.6;
    repeated tokens decay with ``r_star`` (default Muennighoff et al.'s R_D* = 15.39)."""
    rng = np.random.default_rng(seed)
    U = np.sort(np.exp(rng.uniform(np.log(2e7), np.log(2e9), n_pools)))
    value = np.sort(rng.uniform(0.3, 2.0, n_pools))[::-1]  # smallest pool, largest value
    exponent = rng.uniform(0.2, 0.6, n_pools)
    return BudgetWorld(names=[f"pool{i}" for i in range(n_pools)], unique_tokens=U, value=value, exponent=exponent,
                       r_star=float(r_star))


@dataclass(frozen=True)
class BucketedWorld:
    r"""A known-truth world of pools cut into quality buckets (issue 17's benchmark).

    Pool :math:`p` has :math:`U_p` unique tokens cut by cumulative top fractions into buckets
    :math:`j` (best first) of :math:`U_{pj}` tokens and quality :math:`q_{pj}` (:math:`q_{p1} = 1`,
    falling); a whole pool is one bucket. At a budget of :math:`T` tokens a bucket-level mixture
    :math:`w` reads :math:`w_{pj} T` tokens of bucket :math:`j`, worth its effective tokens
    :math:`D'_{pj}` (Muennighoff et al., :math:`R^*`), and

    .. math::

        L(w, T) = E + \Big(\sum_p c_p \big(\textstyle\sum_j q_{pj} D'_{pj} / T_0\big)^{\gamma_p}\Big)^{-1}.

    A pool's value is a power law in its quality-weighted effective tokens: a better bucket is worth
    more per token but, being smaller, repeats sooner. With equal qualities and its buckets read in
    proportion to their sizes (the threshold policy keeping them all), a pool is exactly the whole
    pool (effective tokens scale with the bucket at a fixed number of epochs).
    """

    pools: list[str]
    tokens: np.ndarray  # each pool's unique tokens
    tops: tuple[tuple[float, ...], ...]  # cumulative top fractions per pool, ending at 1 ((1.0,): a whole pool)
    quality: tuple[tuple[float, ...], ...]  # per bucket, best first
    value: np.ndarray
    exponent: np.ndarray
    E: float = 2.0
    r_star: float = DATABLATIONS["R_D_star"]
    reference: float = 1e8
    #: R* by bucket rank (best first) instead of one ``r_star``: e.g. the best data losing its value
    #: sooner when repeated, as QQT's utility half-lives suggest -- outside the fitted law's family.
    rank_r_star: tuple[float, ...] | None = None

    @cached_property
    def _layout(self) -> BucketLayout:
        from ..mixture.buckets import BucketLayout

        return BucketLayout.from_pools(self.pool_set())

    @cached_property
    def column_r_star(self) -> np.ndarray:
        """R* of every bucket (column of :meth:`layout`): ``r_star``, or ``rank_r_star`` by the bucket's rank."""
        rank = self._layout.rank
        if self.rank_r_star is None:
            return np.full(len(rank), self.r_star)
        return np.asarray(self.rank_r_star, dtype=float)[np.minimum(rank, len(self.rank_r_star) - 1)]

    def pool_set(self) -> PoolSet:
        """The world's pools as a manifest would give them (bucketed pools with ``buckets`` = ``tops``)."""
        from ..data.buckets import parse_buckets
        from ..data.pools import Pool, PoolSet

        out = []
        for name, U, tops in zip(self.pools, self.tokens, self.tops):
            spec = None if len(tops) == 1 else parse_buckets({"score": "quality", "buckets": list(tops)}, name,
                                                             float(U), None)
            out.append(Pool(name, tokens=float(U), max_epochs=np.inf, buckets=spec))
        return PoolSet(tuple(out), name="bucketed world")

    def layout(self) -> BucketLayout:
        """The buckets as pools (built once: the truth is evaluated in the planners' inner loops)."""
        return self._layout

    def true_loss(self, W: np.ndarray, tokens: float) -> np.ndarray:
        """The true loss of bucket-level mixtures ``W`` (n, columns of :meth:`layout`) at ``tokens``."""
        lay = self._layout
        q = np.concatenate([np.asarray(qs, dtype=float) for qs in self.quality])
        Dp = pool_effective_tokens(np.atleast_2d(W), tokens, lay.sizes, self.column_r_star) * q / self.reference
        S = np.zeros((len(Dp), len(self.pools)))
        np.add.at(S.T, lay.parent, Dp.T)
        terms = np.where(S > 0, self.value * np.power(np.where(S > 0, S, 1.0), self.exponent), 0.0)
        return self.E + 1.0 / terms.sum(axis=1)

    def measure(self, W: np.ndarray, tokens: float, seed: int = 0, noise: float = 0.005) -> np.ndarray:
        """The true loss plus Gaussian noise of sd ``noise``."""
        rng = np.random.default_rng(seed)
        return self.true_loss(W, tokens) + noise * rng.normal(size=len(np.atleast_2d(W)))

    def isolated_keep(self, pool: int, tokens: float) -> int:
        """The keep-count a filter chosen for pool ``pool`` *on its own* would take when the pool gets
        ``tokens`` (the best threshold for training on that pool alone: most quality-weighted effective
        tokens) -- "plan, then filter each pool", with the truth as the filter's law."""
        cols = self._layout.parent == pool  # the pool's buckets, best first
        sizes, r = self._layout.sizes[cols], self.column_r_star[cols]
        q = np.asarray(self.quality[pool], dtype=float)
        value = []
        for k in range(1, len(sizes) + 1):
            w = sizes[:k] / sizes[:k].sum()
            value.append(float((q[:k] * pool_effective_tokens(w[None, :], tokens, sizes[:k], r[:k])[0]).sum()))
        return int(np.argmax(value)) + 1


def make_bucketed_world(n_pools: int = 5, n_bucketed: int = 2, seed: int = 0,
                        r_star: float = DATABLATIONS["R_D_star"],
                        rank_r_star: tuple[float, ...] | None = None) -> BucketedWorld:
    """Pools of 50M-5B unique tokens (log-uniform, the first the smallest), values 0.3-2 (the smallest pool
    the most valuable), exponents 0.2-0.6; the first ``n_bucketed`` pools cut at the top 10/30/60/100%
    with qualities 1 > q_2 > q_3 > q_4 (drawn, the worst 0.1-0.4)."""
    rng = np.random.default_rng(seed)
    U = np.sort(np.exp(rng.uniform(np.log(5e7), np.log(5e9), n_pools)))
    value = np.sort(rng.uniform(0.3, 2.0, n_pools))[::-1]
    exponent = rng.uniform(0.2, 0.6, n_pools)
    tops, quality = [], []
    for i in range(n_pools):
        if i < n_bucketed:
            tops.append((0.1, 0.3, 0.6, 1.0))
            worst = rng.uniform(0.1, 0.4)
            quality.append(tuple(float(v) for v in np.geomspace(1.0, worst, 4)))
        else:
            tops.append((1.0,))
            quality.append((1.0,))
    return BucketedWorld(pools=[f"pool{i}" for i in range(n_pools)], tokens=U, tops=tuple(tops),
                         quality=tuple(quality), value=value, exponent=exponent, r_star=float(r_star),
                         rank_r_star=rank_r_star)
