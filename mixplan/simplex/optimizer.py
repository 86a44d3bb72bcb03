r"""Constrained search over mixtures: minimise a score (the regressor's prediction, signed so that
smaller is better) over the feasible set :math:`\mathcal{W}` of :mod:`mixplan.simplex.constraints`.

1. candidates: Dirichlet draws centred on the tempered prior at several concentrations
   (:func:`mixplan.simplex.sampling.sample_mixtures`), plus the vertices and edge mid-points of
   :math:`\mathcal{W}` and any extra points (proxy runs);
2. a cheap pre-filter score (e.g. the first trees of a boosted model) keeps the most promising
   fraction, which is re-scored exactly;
3. the mean of the top-k exact scores (RegMix's regulariser), then
4. a local refinement from that mean: random pair transfers and Gaussian moves projected onto
   :math:`\mathcal{W}`, accepted only when the exact score improves, inside a trust region
   (total-variation radius) around the top-k mean (``refine_rounds=0`` stops at the mean: what
   :func:`mixplan.mixture.plan.make_plan` does for a model mostly of boosted trees, whose steps the
   refinement would chase).

An optional ``penalty`` :math:`\rho(w)` (e.g. :math:`\lambda\,\mathrm{KL}(w \| p)`, :mod:`mixplan.mixture.prior`)
is added to both the pre-filter and the exact score wherever the search ranks or accepts mixtures, so it
minimises :math:`s(w) + \rho(w)`; the scores it records stay the model's own :math:`s`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..exceptions import ValidationError
from .constraints import Constraints
from .sampling import DEFAULT_STRENGTHS, sample_mixtures, structural_points

__all__ = ["Score", "SearchResult", "search", "best_distinct"]

Score = Callable[[np.ndarray, bool], np.ndarray]
#: The refinement's rounds by default (each a batch of trial moves, accepted when the score drops).
REFINE_ROUNDS = 16


@dataclass
class SearchResult:
    """Outcome of :func:`search`. Scores are "smaller is better" (the caller's sign)."""

    weights: np.ndarray
    score: float
    topk_weights: np.ndarray
    topk_score: float
    best_candidate: np.ndarray
    best_candidate_score: float
    candidates: np.ndarray
    candidate_origin: np.ndarray
    prefilter_scores: np.ndarray
    exact_scores: np.ndarray  # NaN where a candidate was not re-scored
    n_prefilter: int
    n_exact: int
    refine_steps: int
    seconds: float
    settings: dict[str, object] = field(default_factory=dict)


def search(score: Score, c: Constraints, prior: np.ndarray, *, seed: int = 0, n_candidates: int = 20_000,
           top_k: int = 128, prefilter_keep: float = 0.05, extra: np.ndarray | None = None,
           temperature: float = 0.5, strengths: tuple[float, ...] = DEFAULT_STRENGTHS,
           refine_rounds: int = REFINE_ROUNDS, refine_batch: int = 256, trust_radius: float = 0.25,
           penalty: Callable[[np.ndarray], np.ndarray] | None = None) -> SearchResult:
    """Minimise ``score`` over the feasible set (see the module docstring for the algorithm).

    Parameters
    ----------
    score : callable ``(W, fast) -> scores``
        Smaller is better. With ``fast=True`` it may return a cheaper approximation (pre-filter).
    c : Constraints
    prior : ndarray (P,)
        Centre of the Dirichlet candidates.
    n_candidates, top_k, prefilter_keep
        Dirichlet draws, how many best exact scores are averaged, fraction re-scored exactly.
    extra : ndarray (m, P), optional
        More candidates (e.g. the proxy runs); projected onto the feasible set first.
    refine_rounds, refine_batch, trust_radius
        Local refinement budget and the total-variation radius it may move from the top-k mean.
    penalty : callable ``W -> penalties``, optional
        Added to every score the search ranks by (module docstring); the recorded scores exclude it.
    """
    if top_k < 1:
        raise ValidationError(f"top_k must be >= 1, got {top_k}")
    if not 0 < prefilter_keep <= 1:
        raise ValidationError(f"prefilter_keep must be in (0, 1], got {prefilter_keep}")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    parts = [sample_mixtures(n_candidates, prior, c, rng, temperature, strengths), structural_points(c, rng=rng)]
    origin = [np.full(len(parts[0]), "dirichlet"), np.full(len(parts[1]), "vertex_or_edge")]
    if extra is not None and len(extra):
        parts.append(c.project(np.asarray(extra, dtype=float)))
        origin.append(np.full(len(extra), "proxy_run"))
    C = np.vstack(parts)
    org = np.concatenate(origin)
    def pen(W: np.ndarray) -> np.ndarray:
        return np.zeros(len(W)) if penalty is None else np.asarray(penalty(W), dtype=float)

    pre = np.asarray(score(C, True), dtype=float)
    pen_c = pen(C)
    n_keep = min(len(C), max(top_k * 4, int(np.ceil(prefilter_keep * len(C)))))
    keep = np.argpartition(pre + pen_c, n_keep - 1)[:n_keep] if n_keep < len(C) else np.arange(len(C))
    exact = np.full(len(C), np.nan)
    exact[keep] = score(C[keep], False)
    k = min(top_k, n_keep)
    top = keep[np.argsort(exact[keep] + pen_c[keep], kind="stable")[:k]]
    topk_w = c.project(C[top].mean(axis=0)[None, :])[0]
    topk_s = float(score(topk_w[None, :], False)[0])
    best_i = int(top[0])
    total = score if penalty is None else (lambda W, fast: np.asarray(score(W, fast), dtype=float) + pen(W))
    w, s, steps, n_exact = _refine(total, topk_w, topk_s + float(pen(topk_w[None, :])[0]), c, rng, refine_rounds,
                                   refine_batch, trust_radius)
    s -= float(pen(w[None, :])[0])  # the model's own score of the optimum, as recorded for every other mixture
    return SearchResult(
        weights=w, score=s, topk_weights=topk_w, topk_score=topk_s, best_candidate=C[best_i],
        best_candidate_score=float(exact[best_i]), candidates=C, candidate_origin=org, prefilter_scores=pre,
        exact_scores=exact, n_prefilter=len(C), n_exact=n_keep + 1 + n_exact, refine_steps=steps,
        seconds=time.perf_counter() - t0,
        settings={"seed": seed, "n_candidates": n_candidates, "top_k": k, "prefilter_keep": prefilter_keep,
                  "temperature": temperature, "strengths": list(strengths), "refine_rounds": refine_rounds,
                  "refine_batch": refine_batch, "trust_radius": trust_radius})


def _refine(score: Score, w0: np.ndarray, s0: float, c: Constraints, rng: np.random.Generator,
            rounds: int, batch: int, radius: float) -> tuple[np.ndarray, float, int, int]:
    free = np.flatnonzero(c.free)
    if rounds <= 0 or len(free) < 2 or radius <= 0:
        return w0, s0, 0, 0
    w, s, step, moves, evaluated = w0.copy(), s0, radius / 2, 0, 0
    for _ in range(rounds):
        half = batch // 2
        # Pair transfers: move mass from one free pool to another (axis moves suit tree models).
        V = np.tile(w, (batch, 1))
        i = rng.choice(free, size=half)
        j = rng.choice(free, size=half)
        amt = rng.random(half) * step
        V[np.arange(half), i] -= amt
        V[np.arange(half), j] += amt
        # Gaussian moves on the free pools, zero-sum before projection.
        noise = rng.normal(size=(batch - half, len(free))) * step / np.sqrt(len(free))
        noise -= noise.mean(axis=1, keepdims=True)
        V[half:, free] += noise
        V = c.project(V)
        tv = 0.5 * np.abs(V - w0).sum(axis=1)
        V = V[tv <= radius + 1e-12]
        if len(V) == 0:
            step /= 2
            continue
        f = np.asarray(score(V, False), dtype=float)
        evaluated += len(V)
        b = int(np.argmin(f))
        if f[b] < s - 1e-12:
            w, s, moves = V[b], float(f[b]), moves + 1
        else:
            step /= 2
    return w, s, moves, evaluated


def best_distinct(first: np.ndarray, second: np.ndarray, candidates: np.ndarray, scores: np.ndarray,
             n: int, spacing: float = 0.05) -> np.ndarray:
    """``first``, ``second`` (e.g. a plan's recommended mixture and its top-k mean; once if they are the same
    mixture, as when the search was not refined), then the best-scored (lowest finite ``scores``) ``candidates``
    at least ``spacing`` apart in total variation from every mixture chosen so far; at most ``n`` rows. Several
    promising bets, not one mixture's neighbourhood n times."""
    chosen = [np.asarray(first, dtype=float), np.asarray(second, dtype=float)]
    if np.array_equal(chosen[0], chosen[1]):
        chosen.pop()
    order = np.argsort(np.where(np.isnan(scores), np.inf, scores), kind="stable")
    for i in order:
        if len(chosen) >= n or not np.isfinite(scores[i]):
            break
        if min(0.5 * np.abs(candidates[i] - w).sum() for w in chosen) >= spacing:
            chosen.append(candidates[i])
    return np.vstack(chosen[:n])
