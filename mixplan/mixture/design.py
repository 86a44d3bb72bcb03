"""Designing the next proxy runs: a RegMix-style swarm that respects floors, caps and availability.

RegMix draws Dirichlet mixtures centred on the tempered token prior at concentrations from 0.1 to 5
and rejects draws above a cap; small pools then come out at exactly 0 in most runs and floors make
rejection sampling accept nothing (RegMix issue #10). Here the floors are reserved first and only the
free mass is drawn, caps are enforced by redistribution (:mod:`mixplan.search`), weights below
``min_nonzero`` are moved to the pool's floor, and near-duplicates (of each other and of runs that
already exist) are dropped. The report counts, per pool, how many designed runs exercise it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..exceptions import ValidationError
from ..models.mixture_model import nearest_run
from ..data.pools import PoolSet
from ..simplex import DEFAULT_STRENGTHS, build_constraints, cap_redistribute, sample_mixtures

__all__ = ["Design", "design_swarm", "pool_coverage", "coverage_table"]


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
    check_prefix(prefix)
    c = build_constraints(pools, tokens)
    rng = np.random.default_rng(seed)
    ref = np.empty((0, len(pools))) if existing is None else np.asarray(existing, dtype=float)
    # Accepted runs follow the existing ones in one preallocated array (no re-stacking per draw).
    accepted = np.empty((len(ref) + n, len(pools)))
    accepted[:len(ref)] = ref
    m = len(ref)
    for _ in range(8):  # a few rounds of oversampling; only tight constraints need more than one
        W = sample_mixtures(n * oversample, pools.prior, c, rng, temperature, strengths)
        W = sparsify_round(W, c.lower, c.upper, min_nonzero, decimals)
        for w in W:
            if m and nearest_run(w[None, :], accepted[:m])[1][0] < min_distance:
                continue
            accepted[m] = w
            m += 1
            if m == len(accepted):
                break
        if m == len(accepted):
            break
    kept = accepted[len(ref):m]
    if len(kept) < n:
        raise ValidationError(f"only {len(kept)} of {n} mixtures are at least {min_distance} apart under these "
                              "constraints; lower --min-distance or ask for fewer runs")
    W = kept
    width = len(str(n))
    frame = pd.DataFrame(W, columns=[f"w_{p}" for p in pools.names])
    frame.insert(0, "run_id", [f"{prefix}-{i + 1:0{width}d}" for i in range(n)])
    if tokens is not None:
        frame["tokens"] = tokens
    coverage = pool_coverage(W, pools.names)
    settings = {"seed": seed, "n": n, "tokens": tokens, "temperature": temperature, "strengths": list(strengths),
                "min_nonzero": min_nonzero, "decimals": decimals, "min_distance": min_distance}
    return Design(frame=frame, coverage=coverage, settings=settings)


def pool_coverage(W: np.ndarray, names: list[str]) -> dict[str, dict[str, float]]:
    """How much a set of runs exercises each pool: runs with a non-zero weight, mean and max weight."""
    return {p: {"runs_nonzero": int((W[:, i] > 0).sum()), "mean_weight": float(W[:, i].mean()),
                "max_weight": float(W[:, i].max())} for i, p in enumerate(names)}


def coverage_table(coverage: dict[str, dict[str, float]]) -> list[str]:
    """:func:`pool_coverage` as text lines."""
    lines = [f"{'pool':<24} {'runs > 0':>9} {'mean w':>8} {'max w':>8}"]
    lines += [f"{p:<24} {c['runs_nonzero']:>9} {c['mean_weight']:>8.4f} {c['max_weight']:>8.4f}"
              for p, c in coverage.items()]
    return lines


def check_prefix(prefix: str) -> None:
    """Run ids become file names: letters, digits, '_', '-', '.', no '..'."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", prefix) or ".." in prefix:
        raise ValidationError(f"run id prefix {prefix!r} is not allowed: use letters, digits, '_', '-', '.' "
                              "(run ids become file names)")


def sparsify_round(W: np.ndarray, lower: np.ndarray, upper: np.ndarray, min_nonzero: float,
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
