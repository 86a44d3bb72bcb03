r"""Quality buckets inside the mixture (issue 17, first part): the search space of a plan in which a
bucketed pool enters as its disjoint buckets, and the *threshold* policy on it.

A pool cut into quality buckets (:mod:`mixplan.data.buckets`) is, for the mixture, several pools: its
buckets :math:`j = 1..m_p` (best first) with :math:`U_{pj}` tokens each. Two policies choose their
weights:

- **threshold** -- keep the best :math:`k_p` buckets and sample them uniformly, the classic filter
  ("keep the top 30%"): a pool weight :math:`v_p` and a keep-count :math:`k_p` give the buckets

  .. math::

      w_{pj} = v_p \, \frac{U_{pj}}{\sum_{l \le k_p} U_{pl}} \quad (j \le k_p), \qquad w_{pj} = 0 \quad (j > k_p),

  so every kept bucket is read the same number of times (:math:`w_{pj} T / U_{pj}` does not depend on
  :math:`j`), exactly as when the filtered pool is one pool; with :math:`k_p = m_p` it *is* the whole pool;
- **quality-weighted** -- free weights per bucket (a superset: e.g. the top 10% read four times and
  the next 20% once).

:class:`BucketLayout` holds the columns (bucket pools named ``POOL_BUCKET``, whole pools by their
name) and maps between pool-level and bucket-level mixtures. :func:`plan_policies` finds, for a
loss of bucket-level mixtures (an at-scale model's prediction at the target budget, or a known
truth), the best mixture under each policy side by side: whole pools (every bucket kept), the
threshold policy (every combination of keep-counts, each with its best pool weights) and the
quality-weighted policy (the bucket simplex, started from the other two's optima, so it is never
worse than them under the same loss).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..data.pools import Pool, PoolSet
from ..exceptions import ValidationError
from ..simplex import build_constraints, search

__all__ = ["BucketLayout", "bucket_column", "PolicyResult", "plan_policies", "POLICIES", "MAX_KEEP_COMBINATIONS"]

#: The policies :func:`plan_policies` compares.
POLICIES = ("whole pools", "threshold", "quality-weighted")
#: Keep-count combinations searched one by one; beyond this the threshold policy searches them by
#: coordinate descent (one pool's keep-count at a time).
MAX_KEEP_COMBINATIONS = 512
#: Sweeps over the pools at most in that coordinate search (it stops at the first sweep that changes nothing).
MAX_KEEP_SWEEPS = 10


def bucket_column(pool: str, bucket: str) -> str:
    """The name a bucket of ``pool`` has as a pool of the mixture (``wiki_top10``): the runs table's
    weight column is ``w_`` + this name."""
    return f"{pool}_{bucket}"


@dataclass(frozen=True)
class BucketLayout:
    """The mixture's columns when bucketed pools enter as their buckets.

    ``names[c]`` is column ``c``'s pool name, ``parent[c]`` the index of its pool in ``pools``,
    ``rank[c]`` its bucket's rank within that pool (0 = best; 0 for a whole pool) and ``sizes[c]`` its
    tokens."""

    pools: PoolSet
    names: tuple[str, ...]
    parent: np.ndarray
    rank: np.ndarray
    sizes: np.ndarray

    @classmethod
    def from_pools(cls, pools: PoolSet) -> "BucketLayout":
        names, parent, rank, sizes = [], [], [], []
        for i, p in enumerate(pools):
            if p.buckets is None:
                names.append(p.name)
                parent.append(i)
                rank.append(0)
                sizes.append(float(p.tokens))
                continue
            for j, b in enumerate(p.buckets.buckets):
                names.append(bucket_column(p.name, b.name))
                parent.append(i)
                rank.append(j)
                sizes.append(float(b.tokens))
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise ValidationError(f"{pools.path or 'pool set'}: the bucket pool {dup!r} has the name of another pool; "
                                  "rename the pool or the bucket")
        return cls(pools=pools, names=tuple(names), parent=np.array(parent), rank=np.array(rank),
                   sizes=np.array(sizes, dtype=float))

    @property
    def groups(self) -> list[str]:
        """Per column, the name of the pool it belongs to (a bucket's parent): the ``groups`` of
        :func:`mixplan.mixture.scale.fit_at_scale` and :func:`mixplan.laws.mixture_effective_law`."""
        return [self.pools[int(i)].name for i in self.parent]

    @property
    def n_buckets(self) -> np.ndarray:
        """Buckets per pool (1 for a whole pool)."""
        return np.bincount(self.parent, minlength=len(self.pools))

    def bucket_pools(self) -> PoolSet:
        """The columns as a :class:`PoolSet`: a bucket is a pool of its tokens with its parent's
        ``max_epochs`` and its own ``r_star`` (else its parent's). A bucketed pool's
        ``min_weight``/``max_weight`` bound its total weight in the threshold and whole-pool policies
        (:func:`plan_policies`); the free policy's search over the buckets does not enforce them yet
        (refused: see :func:`plan_policies`)."""
        out = []
        for name, i, j, size in zip(self.names, self.parent, self.rank, self.sizes):
            p: Pool = self.pools[int(i)]
            if p.buckets is None:
                d = p.derivation
                if d is not None and d.parent is not None and self.pools.by_name(d.parent).buckets is not None:
                    # Its parent is split into bucket columns here: the link (parent, part) is the manifest's
                    # (self.pools); the column keeps its kind.
                    p = replace(p, derivation=replace(d, parent=None, buckets=(), fraction=None, tokens=None))
                out.append(p)
                continue
            own = p.buckets.buckets[int(j)].r_star
            out.append(Pool(name, tokens=float(size), description=f"{p.name}: quality bucket", max_epochs=p.max_epochs,
                            group=p.group or p.name, r_star=p.r_star if own is None else own, parent=p.parent))
        # A group sums its pools' bucket columns (the groups of pools stay groups of columns).
        cols = {p.name: [n for n, i in zip(self.names, self.parent) if int(i) == k] for k, p in enumerate(self.pools)}
        groups = tuple(replace(g, members=tuple(c for m in g.members for c in cols[m]),
                               children=tuple(c for m in g.children for c in cols.get(m, [m])))
                       for g in self.pools.groups)
        return replace(self.pools, pools=tuple(out), groups=groups)

    def _keep(self, keep: Mapping[str, int] | Sequence[int] | np.ndarray) -> np.ndarray:
        """Keep-counts per pool (whole pools: 1), checked."""
        m = self.n_buckets
        if isinstance(keep, Mapping):
            unknown = sorted(set(keep) - set(self.pools.names))
            if unknown:
                raise ValidationError(f"keep: {unknown[0]!r} is not a pool; pools are {', '.join(self.pools.names)}")
            k = np.array([int(keep.get(n, m[i])) for i, n in enumerate(self.pools.names)])
        else:
            k = np.asarray(keep, dtype=int)
        if k.shape[-1] != len(m) or np.any(k < 1) or np.any(k > m):
            raise ValidationError(f"keep-counts {np.asarray(k).tolist()}: one per pool, from 1 to its number of "
                                  f"buckets {m.tolist()}")
        return k

    def threshold(self, pool_weights: np.ndarray, keep: Mapping[str, int] | Sequence[int] | np.ndarray) -> np.ndarray:
        """Bucket-level mixtures (n, columns) of the threshold policy: pool weights (n, pools) spread over
        each pool's best ``keep`` buckets in proportion to their sizes. ``keep``: one count per pool (or
        per row and pool; a mapping by pool name, missing pools kept whole)."""
        V = np.atleast_2d(np.asarray(pool_weights, dtype=float))
        if V.shape[1] != len(self.pools):
            raise ValidationError(f"pool weights for {V.shape[1]} pools; the layout has {len(self.pools)}")
        k = np.broadcast_to(self._keep(keep), V.shape)
        kept = self.rank[None, :] < k[:, self.parent]  # (n, C)
        size = np.where(kept, self.sizes, 0.0)
        total = np.zeros_like(V)
        np.add.at(total.T, self.parent, size.T)
        return V[:, self.parent] * size / total[:, self.parent]

    def pool_weights(self, W: np.ndarray) -> np.ndarray:
        """Each pool's total weight (n, pools) of bucket-level mixtures ``W`` (n, columns)."""
        W = np.atleast_2d(np.asarray(W, dtype=float))
        out = np.zeros((len(W), len(self.pools)))
        np.add.at(out.T, self.parent, W.T)
        return out

    def read(self, W: np.ndarray, min_weight: float = 1e-6) -> np.ndarray:
        """Per row and column: whether the mixture reads it (weight above ``min_weight``: a search leaves
        crumbs no one would train on)."""
        return np.atleast_2d(np.asarray(W, dtype=float)) > min_weight

    def keep_fraction(self, W: np.ndarray, min_weight: float = 1e-6) -> np.ndarray:
        """Per row and pool: the share of the pool's tokens in buckets the mixture reads (:meth:`read`);
        1 for a whole pool read at all."""
        R = self.read(W, min_weight)
        read = np.zeros((len(R), len(self.pools)))
        np.add.at(read.T, self.parent, (np.where(R, self.sizes, 0.0)).T)
        whole = np.zeros(len(self.pools))
        np.add.at(whole, self.parent, self.sizes)
        return read / whole


@dataclass(frozen=True)
class PolicyResult:
    """The best bucket-level mixture under one policy, and what it means per pool."""

    policy: str
    weights: np.ndarray  # (columns,)
    loss: float
    pool_weights: np.ndarray  # (pools,)
    keep_fraction: np.ndarray  # (pools,) share of each pool's tokens in buckets read
    keep: np.ndarray | None  # keep-counts per pool (threshold, whole pools); None for quality-weighted
    #: How the keep-counts were searched (threshold policy): every combination, or coordinate descent.
    search: str = ""

    def to_dict(self, layout: BucketLayout) -> dict[str, Any]:
        return {"policy": self.policy, "loss": self.loss,
                "weights": {n: float(w) for n, w in zip(layout.names, self.weights)},
                "pool_weights": {n: float(w) for n, w in zip(layout.pools.names, self.pool_weights)},
                "keep_fraction": {n: float(f) for n, f in zip(layout.pools.names, self.keep_fraction)},
                "keep": None if self.keep is None else {n: int(k) for n, k in zip(layout.pools.names, self.keep)},
                **({"search": self.search} if self.search else {})}


def plan_policies(loss: Callable[[np.ndarray], np.ndarray], layout: BucketLayout, *, seed: int = 0,
                  n_candidates: int = 4000, **search_options: Any) -> dict[str, PolicyResult]:
    """The best mixture under each of :data:`POLICIES` for ``loss`` (bucket-level mixtures (n, columns)
    -> values to minimise), within the manifest's pool floors and caps (no availability caps: the loss
    is expected to price repetition, as an at-scale model does).

    The threshold policy searches the pool weights for every combination of keep-counts (the bucketed
    pools' counts multiply), with the whole-pools optimum as an extra start; beyond
    :data:`MAX_KEEP_COMBINATIONS` combinations, by coordinate descent instead: from every pool kept whole,
    each bucketed pool's keep-count in turn is set to its best value with the others held, until a sweep
    over the pools changes nothing (at most :data:`MAX_KEEP_SWEEPS`; a local optimum over keep-counts, said
    in the result's ``search``). The quality-weighted policy searches the bucket simplex from the
    Dirichlet candidates plus both other optima. ``search_options`` go to every search (e.g. ``refine_rounds=0``
    for a loss mostly of boosted trees: :func:`mixplan.mixture.plan.model_search_options`)."""
    m = layout.n_buckets
    bounded = [p.name for p in layout.pools if p.buckets is not None and (p.min_weight > 0 or p.max_weight < 1)]
    if bounded:
        raise ValidationError(f"pool {bounded[0]!r} is cut into buckets and has a min_weight/max_weight: a bound on a "
                              "pool's total over its buckets is not supported by the free policy's search yet; drop "
                              "the bound or plan the pool whole")
    combos = int(np.prod(m.astype(float)))
    pools = layout.pools
    c = build_constraints(pools)
    prior = np.full(len(pools), 1.0 / len(pools))

    def result(policy: str, W: np.ndarray, keep: np.ndarray | None) -> PolicyResult:
        return PolicyResult(policy, W, float(loss(W[None, :])[0]), layout.pool_weights(W)[0],
                            layout.keep_fraction(W)[0], keep)

    unrefined = search_options.get("refine_rounds") == 0

    def best_of(r: Any) -> tuple[np.ndarray, float]:
        """The search's refined mixture or its best single candidate (a start given as ``extra`` among
        them), whichever is lower: a policy's optimum is never worse than a start it was given. Not when the
        search stops at its top-k mean (a loss mostly of trees): there the lowest single prediction is mostly
        the trees' noise, which the mean is there to average out."""
        if unrefined or r.score <= r.best_candidate_score:
            return r.weights, r.score
        return r.best_candidate, r.best_candidate_score

    def best_pools(keep: np.ndarray, extra: list[np.ndarray], n: int) -> tuple[np.ndarray, float]:
        return best_of(search(lambda V, fast: loss(layout.threshold(V, keep)), c, prior, seed=seed, n_candidates=n,
                              extra=np.array(extra) if extra else None, **search_options))

    v_whole, s_whole = best_pools(m, [], n_candidates)
    out = {"whole pools": result("whole pools", layout.threshold(v_whole, m)[0], m)}
    cheap = max(n_candidates // 4, 200)
    if combos <= MAX_KEEP_COMBINATIONS:
        best = (np.inf, m, v_whole)
        for keep in itertools.product(*[range(1, k + 1) for k in m]):
            k = np.array(keep)
            # Every combination gets a cheaper search, warm-started at the whole-pools optimum; the best one
            # is searched again in full.
            v, s = best_pools(k, [v_whole], cheap)
            if s < best[0]:
                best = (s, k, v)
        how = f"every combination of keep-counts ({combos})"
    else:
        best, searched, sweeps = (s_whole, m.copy(), v_whole), 0, 0
        for sweeps in range(1, MAX_KEEP_SWEEPS + 1):
            changed = False
            for i in np.flatnonzero(m > 1):
                for count in range(1, m[i] + 1):
                    if count == best[1][i]:
                        continue
                    k = best[1].copy()
                    k[i] = count
                    v, s = best_pools(k, [best[2], v_whole], cheap)  # warm: the current optimum's weights
                    searched += 1
                    if s < best[0] - 1e-12:
                        best, changed = (s, k, v), True
            if not changed:
                break
        how = (f"coordinate descent over keep-counts ({combos:.3g} combinations > {MAX_KEEP_COMBINATIONS}): "
               f"{searched} searched in {sweeps} sweeps; a local optimum")
    v, _ = best_pools(best[1], [best[2], v_whole], n_candidates)
    out["threshold"] = replace(result("threshold", layout.threshold(v, best[1])[0], best[1]), search=how)
    cb = build_constraints(layout.bucket_pools())
    starts = np.vstack([out["whole pools"].weights, out["threshold"].weights])
    w, _ = best_of(search(lambda W, fast: loss(W), cb, np.full(len(layout.names), 1.0 / len(layout.names)),
                          seed=seed, n_candidates=n_candidates, extra=starts, **search_options))
    out["quality-weighted"] = result("quality-weighted", w, None)
    return out
