r"""Constrained search over mixtures.

The feasible set is a box-constrained simplex

.. math::

    \mathcal{W} = \{ w \in \mathbb{R}^P : \textstyle\sum_i w_i = 1,\; \ell_i \le w_i \le u_i \},
    \qquad u_i = \min\Big(\text{max\_weight}_i,\; \frac{\text{max\_epochs}_i \cdot T_i}{D}\Big),

where :math:`T_i` are a pool's unique tokens and :math:`D` is the target run's token budget
(availability: pool :math:`i` is read at most ``max_epochs`` times); pinned pools have
:math:`\ell_i = u_i`. The search minimises a score (the regressor's prediction, signed so that
smaller is better) over :math:`\mathcal{W}`:

1. candidates: Dirichlet draws centred on the tempered prior at several concentrations (as RegMix),
   drawn for the *free* mass above the floors so floors never cause rejection (RegMix issue #10),
   then capped by redistributing excess mass over the head-room of the other pools (one exact pass);
   plus the vertices and edge mid-points of :math:`\mathcal{W}` and any extra points (proxy runs);
2. a cheap pre-filter score (e.g. the first trees of a boosted model) keeps the most promising
   fraction, which is re-scored exactly;
3. the mean of the top-k exact scores (RegMix's regulariser), then
4. a local refinement from that mean: random pair transfers and Gaussian moves projected onto
   :math:`\mathcal{W}`, accepted only when the exact score improves, inside a trust region
   (total-variation radius) around the top-k mean.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from .exceptions import InfeasibleError, ValidationError
from .pools import PoolSet

__all__ = ["Constraints", "build_constraints", "project", "cap_redistribute", "dirichlet",
           "sample_mixtures", "search", "SearchResult", "active_constraints", "best_distinct", "DEFAULT_STRENGTHS"]

#: RegMix's concentration grid: 15 values log-spaced from 0.1 (near one-hot) to 5 (near the prior).
DEFAULT_STRENGTHS = tuple(float(s) for s in np.geomspace(0.1, 5.0, 15))
_TOL = 1e-9

Score = Callable[[np.ndarray, bool], np.ndarray]


@dataclass(frozen=True)
class Constraints:
    """Per-pool bounds of the feasible set, and which rule set each bound."""

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    lower_reason: tuple[str, ...]
    upper_reason: tuple[str, ...]
    tokens: float | None = None

    @property
    def free(self) -> np.ndarray:
        return self.upper - self.lower > _TOL

    def check(self, W: np.ndarray, tol: float = 1e-7) -> np.ndarray:
        """Boolean mask of rows of ``W`` that satisfy every constraint (within ``tol``)."""
        W = np.atleast_2d(W)
        return ((np.abs(W.sum(axis=1) - 1) <= tol) & np.all(W >= self.lower - tol, axis=1)
                & np.all(W <= self.upper + tol, axis=1))

    def to_dict(self) -> dict[str, object]:
        return {n: {"lower": float(lo), "upper": float(hi), "lower_reason": lr, "upper_reason": ur}
                for n, lo, hi, lr, ur in zip(self.names, self.lower, self.upper, self.lower_reason,
                                             self.upper_reason)}


def build_constraints(pools: PoolSet, tokens: float | None = None,
                      pins: Mapping[str, float] | None = None) -> Constraints:
    """Bounds from the manifest (floors, caps), availability at ``tokens``, and pinned weights."""
    names = tuple(pools.names)
    lower, upper = pools.min_weight.copy(), pools.max_weight.copy()
    lr = ["min_weight" if v > 0 else "" for v in lower]
    ur = ["max_weight" if v < 1 else "" for v in upper]
    if tokens is not None:
        if not np.isfinite(tokens) or tokens <= 0:
            raise ValidationError(f"target tokens must be a positive number, got {tokens!r}")
        avail = pools.max_epochs * pools.tokens / tokens
        for i, a in enumerate(avail):
            if a < upper[i]:
                upper[i], ur[i] = a, "availability"
    def detail(i: int) -> str:
        """Where an availability cap comes from, for messages."""
        if ur[i] != "availability":
            return ""
        return f" ({pools.max_epochs[i]:g} epochs of {pools.tokens[i]:.6g} tokens at a budget of {tokens:.6g})"

    for name, value in (pins or {}).items():
        if name not in names:
            raise ValidationError(f"pinned pool {name!r} is not in the manifest; pools are {list(names)}")
        if not 0 <= value <= 1:
            raise ValidationError(f"pinned weight of {name!r} is {value}; it must be between 0 and 1")
        i = names.index(name)
        if value > upper[i] + _TOL:
            raise InfeasibleError(f"pool {name!r} is pinned at {value:g} but its {ur[i]} cap is {upper[i]:.6g}"
                                  f"{detail(i)}; lower the pin or relax the cap")
        if value < lower[i] - _TOL:
            raise InfeasibleError(f"pool {name!r} is pinned at {value:g} below its floor min_weight "
                                  f"{lower[i]:g}; raise the pin or lower the floor")
        lower[i] = upper[i] = value
        lr[i] = ur[i] = "pinned"
    for i, name in enumerate(names):
        if lower[i] > upper[i] + _TOL:
            raise InfeasibleError(f"pool {name!r}: its floor min_weight {lower[i]:g} is above its cap {upper[i]:.6g} "
                                  f"set by {ur[i]}{detail(i)}; lower the floor, raise max_epochs or lower the target "
                                  "tokens")
    if lower.sum() > 1 + _TOL:
        raise InfeasibleError(f"floors and pins add up to {lower.sum():.6g} > 1; lower some min_weight or pins")
    if upper.sum() < 1 - _TOL:
        detail = ""
        if tokens is not None:
            have = float(np.sum(pools.max_epochs * pools.tokens))
            detail = (f": at {tokens:.6g} target tokens the pools supply at most {have:.6g} tokens within "
                      f"their max_epochs")
        raise InfeasibleError(f"the caps add up to {upper.sum():.6g} < 1{detail}; raise max_epochs or max_weight, "
                              "add data, or lower the target tokens")
    return Constraints(names, lower, upper, tuple(lr), tuple(ur), tokens)


def active_constraints(w: np.ndarray, c: Constraints, tol: float = 1e-6) -> dict[str, str]:
    """Which bound each pool sits on: ``{pool: "floor (min_weight)" | "cap (availability)" | ...}``."""
    out = {}
    for i, n in enumerate(c.names):
        if c.lower_reason[i] == "pinned":
            out[n] = "pinned"
        elif c.upper[i] < 1 and w[i] >= c.upper[i] - tol:
            out[n] = f"cap ({c.upper_reason[i] or 'max_weight'})"
        elif c.lower[i] > 0 and w[i] <= c.lower[i] + tol:
            out[n] = f"floor ({c.lower_reason[i]})"
    return out


def project(V: np.ndarray, lower: np.ndarray, upper: np.ndarray, iters: int = 60) -> np.ndarray:
    r"""Euclidean projection of each row of ``V`` onto :math:`\{\sum w = 1, \ell \le w \le u\}`.

    The projection is :math:`w = \mathrm{clip}(v - \tau, \ell, u)` with the scalar :math:`\tau`
    solving :math:`\sum_i w_i = 1`; :math:`\tau` is found by bisection, vectorised over rows.
    """
    V = np.atleast_2d(np.asarray(V, dtype=float))
    lo_t = (V - upper).min(axis=1) - 1.0
    hi_t = (V - lower).max(axis=1) + 1.0
    for _ in range(iters):
        mid = 0.5 * (lo_t + hi_t)
        s = np.clip(V - mid[:, None], lower, upper).sum(axis=1)
        big = s > 1
        lo_t = np.where(big, mid, lo_t)
        hi_t = np.where(big, hi_t, mid)
    W = np.clip(V - (0.5 * (lo_t + hi_t))[:, None], lower, upper)
    return _fix_sum(W, lower, upper)


def _fix_sum(W: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    # Put the last rounding error (~1e-15) on the coordinate with the most room.
    err = 1.0 - W.sum(axis=1)
    room = np.where(err[:, None] > 0, upper - W, W - lower)
    j = room.argmax(axis=1)
    W[np.arange(len(W)), j] += err
    return W


def cap_redistribute(W: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Clip rows at ``upper`` and hand the excess to the other pools in proportion to their head-room.

    Exact in one pass whenever ``sum(upper) >= 1``: a pool receives ``excess * room_i / sum(room)``,
    never more than its room. Rows must already be above ``lower`` and sum to 1.
    """
    clipped = np.minimum(W, upper)
    excess = W.sum(axis=1) - clipped.sum(axis=1)
    room = upper - clipped
    total = room.sum(axis=1)
    share = np.divide(room, total[:, None], out=np.zeros_like(room), where=total[:, None] > 0)
    return _fix_sum(clipped + excess[:, None] * share, lower, upper)


def dirichlet(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rows ~ Dirichlet(alpha[row]) for a 2-D ``alpha``, robust to tiny concentrations.

    Uses :math:`G_a = G_{a+1} U^{1/a}` in log space, so that small ``alpha`` (near one-hot draws)
    never underflows to an all-zero row.
    """
    alpha = np.asarray(alpha, dtype=float)
    log_g = np.log(rng.standard_gamma(alpha + 1.0)) + np.log(rng.random(alpha.shape)) / alpha
    log_g -= log_g.max(axis=1, keepdims=True)
    g = np.exp(log_g)
    return g / g.sum(axis=1, keepdims=True)


def sample_mixtures(n: int, prior: np.ndarray, c: Constraints, rng: np.random.Generator,
                    temperature: float = 0.5, strengths: tuple[float, ...] = DEFAULT_STRENGTHS) -> np.ndarray:
    r"""``n`` feasible mixtures: floors + free mass :math:`\times` Dirichlet(:math:`s\,q`), then capped.

    :math:`q \propto \text{prior}^{\,t}` over the free pools (temperature :math:`t`, RegMix uses 0.5)
    and :math:`s` is drawn uniformly from ``strengths`` for each row.
    """
    if n <= 0:
        return np.empty((0, len(prior)))
    free = c.free
    W = np.tile(c.lower, (n, 1))
    mass = 1.0 - c.lower.sum()
    if free.any() and mass > _TOL:
        q = np.power(np.maximum(prior[free], 1e-12), temperature)
        q /= q.sum()
        s = rng.choice(np.asarray(strengths, dtype=float), size=n)
        W[:, free] += mass * dirichlet(s[:, None] * q[None, :], rng)
    return cap_redistribute(W, c.lower, c.upper)


def structural_points(c: Constraints) -> np.ndarray:
    """Vertices and edge mid-points of the simplex, projected onto the feasible set.

    Dirichlet draws around a good point never reach one-hot or two-pool mixtures; these do.
    """
    idx = np.flatnonzero(c.free)
    P = len(c.names)
    pts = [np.eye(P)[i] for i in idx]
    pts += [0.5 * (np.eye(P)[i] + np.eye(P)[j]) for a, i in enumerate(idx) for j in idx[a + 1:]]
    if not pts:
        return project(c.lower[None, :], c.lower, c.upper)
    return project(np.array(pts), c.lower, c.upper)


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
           refine_rounds: int = 16, refine_batch: int = 256, trust_radius: float = 0.25) -> SearchResult:
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
    """
    if top_k < 1:
        raise ValidationError(f"top_k must be >= 1, got {top_k}")
    if not 0 < prefilter_keep <= 1:
        raise ValidationError(f"prefilter_keep must be in (0, 1], got {prefilter_keep}")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    parts = [sample_mixtures(n_candidates, prior, c, rng, temperature, strengths), structural_points(c)]
    origin = [np.full(len(parts[0]), "dirichlet"), np.full(len(parts[1]), "vertex_or_edge")]
    if extra is not None and len(extra):
        parts.append(project(np.asarray(extra, dtype=float), c.lower, c.upper))
        origin.append(np.full(len(extra), "proxy_run"))
    C = np.vstack(parts)
    org = np.concatenate(origin)
    pre = np.asarray(score(C, True), dtype=float)
    n_keep = min(len(C), max(top_k * 4, int(np.ceil(prefilter_keep * len(C)))))
    keep = np.argpartition(pre, n_keep - 1)[:n_keep] if n_keep < len(C) else np.arange(len(C))
    exact = np.full(len(C), np.nan)
    exact[keep] = score(C[keep], False)
    k = min(top_k, n_keep)
    top = keep[np.argsort(exact[keep], kind="stable")[:k]]
    topk_w = project(C[top].mean(axis=0)[None, :], c.lower, c.upper)[0]
    topk_s = float(score(topk_w[None, :], False)[0])
    best_i = int(top[0])
    w, s, steps, n_exact = _refine(score, topk_w, topk_s, c, rng, refine_rounds, refine_batch, trust_radius)
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
        V = project(V, c.lower, c.upper)
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
    """``first``, ``second`` (e.g. a plan's recommended mixture and its top-k mean), then the
    best-scored (lowest finite ``scores``) ``candidates`` at least ``spacing`` apart in total
    variation from every mixture chosen so far; at most ``n`` rows. Several promising bets, not one
    mixture's neighbourhood n times."""
    chosen = [np.asarray(first, dtype=float), np.asarray(second, dtype=float)]
    order = np.argsort(np.where(np.isnan(scores), np.inf, scores), kind="stable")
    for i in order:
        if len(chosen) >= n or not np.isfinite(scores[i]):
            break
        if min(0.5 * np.abs(candidates[i] - w).sum() for w in chosen) >= spacing:
            chosen.append(candidates[i])
    return np.vstack(chosen[:n])
