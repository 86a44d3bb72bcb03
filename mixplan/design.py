"""Designing the next proxy runs: a RegMix-style swarm that respects floors, caps and availability.

RegMix draws Dirichlet mixtures centred on the tempered token prior at concentrations from 0.1 to 5
and rejects draws above a cap; small pools then come out at exactly 0 in most runs and floors make
rejection sampling accept nothing (RegMix issue #10). Here the floors are reserved first and only the
free mass is drawn, caps are enforced by redistribution (:mod:`mixplan.search`), weights below
``min_nonzero`` are moved to the pool's floor, and near-duplicates (of each other and of runs that
already exist) are dropped. The report counts, per pool, how many designed runs exercise it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .exceptions import ValidationError
from .pools import PoolSet
from .search import DEFAULT_STRENGTHS, build_constraints, cap_redistribute, sample_mixtures

__all__ = ["Design", "design_swarm"]


@dataclass(frozen=True)
class Design:
    """Designed mixtures (``frame``: run_id + ``w_<pool>``) and per-pool coverage statistics."""

    frame: pd.DataFrame
    coverage: dict[str, dict[str, float]]
    settings: dict[str, object]


def design_swarm(pools: PoolSet, n: int, *, seed: int = 0, tokens: float | None = None,
                 temperature: float = 0.5, strengths: tuple[float, ...] = DEFAULT_STRENGTHS,
                 min_nonzero: float = 2e-4, decimals: int = 4, min_distance: float = 0.01,
                 existing: np.ndarray | None = None, prefix: str = "run", oversample: int = 20) -> Design:
    """Draw ``n`` distinct feasible proxy mixtures.

    Parameters
    ----------
    tokens : float, optional
        The proxy runs' token budget: caps each pool at ``max_epochs * pool tokens / tokens``.
    min_nonzero : float
        Weights below this (above the floor) are moved to the floor (RegMix: 2e-4).
    decimals : int
        Weights are rounded to this many decimals (the row still sums to 1 exactly).
    min_distance : float
        Minimum total-variation distance between any two designed runs, and to ``existing`` runs.
    """
    if n < 1:
        raise ValidationError(f"--n must be at least 1, got {n}")
    c = build_constraints(pools, tokens)
    rng = np.random.default_rng(seed)
    kept: list[np.ndarray] = []
    ref = np.empty((0, len(pools))) if existing is None else np.asarray(existing, dtype=float)
    for _ in range(8):  # a few rounds of oversampling; only tight constraints need more than one
        W = sample_mixtures(n * oversample, pools.prior, c, rng, temperature, strengths)
        W = _sparsify_round(W, c.lower, c.upper, min_nonzero, decimals)
        for w in W:
            pool_ = np.vstack([ref] + ([np.array(kept)] if kept else []))
            if len(pool_) and (0.5 * np.abs(pool_ - w).sum(axis=1)).min() < min_distance:
                continue
            kept.append(w)
            if len(kept) == n:
                break
        if len(kept) == n:
            break
    if len(kept) < n:
        raise ValidationError(f"only {len(kept)} of {n} mixtures are at least {min_distance} apart under these "
                              "constraints; lower --min-distance or ask for fewer runs")
    W = np.array(kept)
    width = len(str(n))
    frame = pd.DataFrame(W, columns=[f"w_{p}" for p in pools.names])
    frame.insert(0, "run_id", [f"{prefix}-{i + 1:0{width}d}" for i in range(n)])
    if tokens is not None:
        frame["tokens"] = tokens
    coverage = {p: {"runs_nonzero": int((W[:, i] > 0).sum()), "fraction_nonzero": float((W[:, i] > 0).mean()),
                    "mean_weight": float(W[:, i].mean()), "max_weight": float(W[:, i].max())}
                for i, p in enumerate(pools.names)}
    settings = {"seed": seed, "n": n, "tokens": tokens, "temperature": temperature, "strengths": list(strengths),
                "min_nonzero": min_nonzero, "decimals": decimals, "min_distance": min_distance}
    return Design(frame=frame, coverage=coverage, settings=settings)


def _sparsify_round(W: np.ndarray, lower: np.ndarray, upper: np.ndarray, min_nonzero: float,
                    decimals: int) -> np.ndarray:
    W = W.copy()
    tiny = (W - lower < min_nonzero) & (W > lower)
    W[tiny] = lower[np.nonzero(tiny)[1]]
    W /= W.sum(axis=1, keepdims=True)
    W = cap_redistribute(np.maximum(W, lower), lower, upper)
    # Round, then put the rounding remainder on the largest weight that has room for it.
    R = np.round(W, decimals)
    R = np.clip(R, np.ceil(lower * 10 ** decimals) / 10 ** decimals, np.floor(upper * 10 ** decimals) / 10 ** decimals)
    err = np.round(1.0 - R.sum(axis=1), decimals)
    j = np.argmax(np.where((R + err[:, None] >= lower) & (R + err[:, None] <= upper), R, -1), axis=1)
    R[np.arange(len(R)), j] = np.round(R[np.arange(len(R)), j] + err, decimals)
    return R
