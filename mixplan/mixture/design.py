"""Designing the next proxy runs: a RegMix-style swarm that respects floors, caps and availability.

RegMix draws Dirichlet mixtures centred on the tempered token prior at concentrations from 0.1 to 5
and rejects draws above a cap; small pools then come out at exactly 0 in most runs and floors make
rejection sampling accept nothing (RegMix issue #10). Here the floors are reserved first and only the
free mass is drawn, caps are enforced by redistribution (:mod:`mixplan.simplex`), weights below
``min_nonzero`` are moved to the pool's floor, and near-duplicates (of each other and of runs that
already exist) are dropped. The report counts, per pool, how many designed runs exercise it.

With groups of pools (:mod:`mixplan.data.hierarchy`) the draws are hierarchical
(:func:`mixplan.simplex.sample_hierarchical`): group shares first, at strengths ``group_strengths``, then the
leaves inside each group at ``strengths``; the groups' floors and caps hold in every run. ``required`` pools
or groups get at least ``2 * min_nonzero`` in every run (never zeroed).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._checks import check_number
from .._io import check_writable, write_table_atomic, write_text_atomic
from ..data.pools import PoolSet
from ..exceptions import ValidationError
from ..models.intervals import nearest_run
from ..data.runs import SUBSAMPLE_COLUMN, UNIQUE_PREFIX, coverage_table, pool_coverage
from ..simplex import DEFAULT_STRENGTHS, build_constraints, cap_redistribute, sample_mixtures

__all__ = ["Design", "design_swarm", "write_design", "matched_columns", "check_match_budget"]



@dataclass(frozen=True)
class Design:
    """Designed mixtures (``frame``: run_id + ``w_<pool>``) and per-pool coverage statistics."""

    frame: pd.DataFrame
    coverage: dict[str, dict[str, float]]
    settings: dict[str, object]

    def to_dict(self) -> dict[str, Any]:
        return {"runs": len(self.frame), "coverage": self.coverage, "settings": self.settings}

    def report(self) -> str:
        """How much the designed runs exercise each pool (:func:`mixplan.data.runs.coverage_table`)."""
        return "\n".join(coverage_table(self.coverage))


def design_swarm(pools: PoolSet, n: int, *, seed: int = 0, tokens: float | None = None,
                 temperature: float | None = None, strengths: tuple[float, ...] = DEFAULT_STRENGTHS,
                 min_nonzero: float = 2e-4, decimals: int = 4, min_distance: float = 0.01,
                 existing: np.ndarray | None = None, prefix: str = "run", oversample: int = 20,
                 buckets: Any = None, threshold_share: float = 0.5, match_budget: float | None = None,
                 group_strengths: tuple[float, ...] | None = None, required: Sequence[str] = ()) -> Design:
    """Draw ``n`` distinct feasible proxy mixtures.

    Parameters
    ----------
    buckets : BucketLayout, optional
        ``pools`` are this layout's quality buckets (:mod:`mixplan.mixture.buckets`): a share
        ``threshold_share`` of the draws is threshold-shaped (pool weights drawn as for whole pools, then
        each bucketed pool's top buckets, a random count of them, in proportion to their sizes), the
        rest free over the buckets, so that the runs show both policies the plan compares.
    strengths, group_strengths : tuple of float
        Dirichlet strengths drawn from, per run: of the leaves (inside their groups), and of the levels
        above them (default: ``strengths``). Small values give runs concentrated on few pools (or groups).
    required : sequence of str
        Pools or groups that every run reads: their floor becomes at least ``2 * min_nonzero``.
    tokens : float, optional
        The proxy runs' token budget: caps each pool at ``max_epochs * pool tokens / tokens``.
    min_nonzero : float
        Weights below this (above the floor) are moved to the floor (RegMix: 2e-4).
    decimals : int
        Weights are rounded to this many decimals (the row still sums to 1 exactly).
    min_distance : float
        Minimum total-variation distance between any two designed runs, and to ``existing`` runs.
    match_budget : float, optional
        Repetition-matched runs for a big run of ``match_budget`` tokens: every pool is subsampled to the
        fraction ``tokens / match_budget`` of its unique tokens (``unique_tokens_<pool>`` columns), so that a
        run at ``tokens`` reads each pool as many times as the big run would with the same weights. The
        manifest's epoch caps are not applied (the runs must show the repetition the big run prices).
    temperature : float, optional
        The prior's temperature (weights around the token shares to this power): 0.5 as RegMix, or 0 (the
        uniform prior) for repetition-matched runs, so that the small pools - the ones the big run repeats -
        get weights that read them from 0 to about ``T / (K U_i)`` times, not only the few percent their
        token share gives them.
    """
    if temperature is None:
        temperature = 0.5 if match_budget is None else 0.0
    if n < 1:
        raise ValidationError(f"--n must be at least 1, got {n}")
    check_prefix(prefix)
    if match_budget is not None:
        check_match_budget(tokens, match_budget)
    floors = {r: 2 * min_nonzero for r in required}  # above the zeroing threshold, whatever the rounding
    c = build_constraints(pools, tokens if match_budget is None else None, floors=floors)
    if buckets is not None and pools.groups:
        raise ValidationError("--buckets with groups of pools: not supported yet; plan the bucketed pools whole or "
                              "drop the manifest's parent keys")
    index = {n: i for i, n in enumerate(pools.names)}
    reads = np.zeros((len(required), len(pools)))
    for k, r in enumerate(required):
        reads[k, [index[m] for m in (pools.group_by_name(r).members if r not in index else (r,))]] = 1.0
    rng = np.random.default_rng(seed)
    if buckets is not None:
        if list(buckets.names) != pools.names:
            raise ValidationError(f"the bucket layout's pools {list(buckets.names)} are not the design's {pools.names}")
        if not 0.0 <= threshold_share <= 1.0:
            raise ValidationError(f"threshold_share must be in [0, 1], got {threshold_share!r}")
        c_pools = build_constraints(buckets.pools, tokens)
    ref = np.empty((0, len(pools))) if existing is None else np.asarray(existing, dtype=float)
    # Accepted runs follow the existing ones in one preallocated array (no re-stacking per draw).
    accepted = np.empty((len(ref) + n, len(pools)))
    accepted[:len(ref)] = ref
    m = len(ref)
    for _ in range(8):  # a few rounds of oversampling; only tight constraints need more than one
        W = sample_mixtures(n * oversample, pools.prior, c, rng, temperature, strengths, group_strengths)
        if buckets is not None:  # threshold-shaped draws, interleaved with the free ones
            shaped = rng.random(len(W)) < threshold_share
            V = sample_mixtures(int(shaped.sum()), buckets.pools.prior, c_pools, rng, temperature, strengths)
            keep = rng.integers(1, buckets.n_buckets[None, :] + 1, size=(len(V), len(buckets.pools)))
            W[shaped] = cap_redistribute(buckets.threshold(V, keep), c.lower, c.upper)
        W = sparsify_round(W, c.lower, c.upper, min_nonzero, decimals)
        if c.group_names:  # zeroing and rounding move a group's total by a few units of the last decimal
            W = W[c.check(W, tol=1e-9, group_tol=min(len(pools) * 10.0 ** -decimals, 1e-3))]
        if required:  # every run reads the required pools and groups (at least one leaf of each)
            W = W[(W @ reads.T > 0).all(axis=1)]
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
    if match_budget is not None:
        frame = matched_columns(frame, pools, tokens, match_budget)
    coverage = pool_coverage(W, pools.names)
    settings = {"seed": seed, "n": n, "tokens": tokens, "temperature": temperature, "strengths": list(strengths),
                "min_nonzero": min_nonzero, "decimals": decimals, "min_distance": min_distance}
    if pools.groups:
        settings |= {"groups": [g.name for g in pools.groups],
                     "group_strengths": list(strengths if group_strengths is None else group_strengths)}
    if required:
        settings |= {"required": list(required)}
    if buckets is not None:
        settings |= {"buckets": True, "threshold_share": threshold_share}
    if match_budget is not None:
        settings |= {"match_budget": match_budget, "subsample_fraction": tokens / match_budget}
    return Design(frame=frame, coverage=coverage, settings=settings)


def check_match_budget(tokens: float | None, match_budget: float) -> None:
    """Repetition-matched runs need the proxy budget ``tokens``, below the big run's ``match_budget``."""
    if tokens is None:
        raise ValidationError("--match-budget needs --tokens: the proxy runs' budget")
    check_number(match_budget, "--match-budget", lo=tokens, why="the big run's budget is above the proxies'")


def matched_columns(frame: pd.DataFrame, pools: PoolSet, tokens: float, match_budget: float) -> pd.DataFrame:
    """``frame`` with the columns of repetition-matched runs: ``subsample_fraction`` = ``tokens / match_budget``
    and each pool's ``unique_tokens_<pool>`` at that fraction (each pool subsampled: a run at ``tokens`` reads
    it as often as the big run at ``match_budget`` would)."""
    frame = frame.copy()
    frame[SUBSAMPLE_COLUMN] = tokens / match_budget
    for p in pools:
        frame[f"{UNIQUE_PREFIX}{p.name}"] = p.tokens * tokens / match_budget
    return frame


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


def write_design(out: str | os.PathLike[str], frame: pd.DataFrame, pools: Sequence[str], *, seed: int = 0,
                 tokens: float | None = None, force: bool = False) -> list[Path]:
    """Write a design folder: ``mixtures.csv`` (``frame``: run_id + ``w_<pool>``) and one
    ``runs/<run_id>.yaml`` per run (its weights, seed and tokens) for a training launcher to read.

    Nothing is written if any file exists (unless ``force``) or if ``runs/`` holds run files of another
    design; with ``force`` those are removed, so that the folder never mixes two designs. Returns the
    files written."""
    import yaml

    out = Path(out)
    files: dict[Path, str | None] = {out / "mixtures.csv": None}
    for _, row in frame.iterrows():
        cfg = {"run_id": row["run_id"], "seed": seed, "weights": {p: float(row[f"w_{p}"]) for p in pools}}
        if tokens is not None:
            cfg["tokens"] = float(tokens)
        if f"{UNIQUE_PREFIX}{pools[0]}" in frame.columns:  # a repetition-matched run: what to train on, exactly
            from ..data.subsample import SUBSAMPLE_RULE

            cfg["subsample"] = {"fraction": float(row[SUBSAMPLE_COLUMN]), "rule": SUBSAMPLE_RULE, "seed": seed,
                                "pools": {
                p: {"unique_tokens": float(row[f"{UNIQUE_PREFIX}{p}"])} for p in pools}}
        files[out / "runs" / f"{row['run_id']}.yaml"] = yaml.safe_dump(cfg, sort_keys=False)
    check_writable(files, force)
    stale = sorted(set((out / "runs").glob("*.yaml")) - set(files))
    if stale and not force:
        raise ValidationError(f"{out / 'runs'} holds {len(stale)} run file(s) of another design (first: {stale[0].name}); "
                              "choose another --out or pass --force to replace that design")
    for path in stale:  # with force the old design is replaced, not mixed with the new one
        path.unlink()
    write_table_atomic(out / "mixtures.csv", frame, force=force)
    for path, text in files.items():
        if text is not None:
            write_text_atomic(path, text, force=force)
    return list(files)
