r"""The feasible set of mixtures: a box-constrained simplex, and the projection onto it.

.. math::

    \mathcal{W} = \{ w \in \mathbb{R}^P : \textstyle\sum_i w_i = 1,\; \ell_i \le w_i \le u_i \},
    \qquad u_i = \min\Big(\text{max\_weight}_i,\; \frac{\text{max\_epochs}_i \cdot T_i}{D}\Big),

where :math:`T_i` are a pool's unique tokens and :math:`D` is the target run's token budget
(availability: pool :math:`i` is read at most ``max_epochs`` times); pinned pools have
:math:`\ell_i = u_i`. Groups of pools (:mod:`mixplan.data.hierarchy`, a laminar family: any two are
nested or disjoint) add :math:`L_g \le \sum_{i \in g} w_i \le U_g` (a group's floor, cap or pin).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..data.pools import PoolSet
from ..exceptions import InfeasibleError, ValidationError

__all__ = ["Constraints", "build_constraints", "active_constraints", "active_group_constraints", "project",
           "cap_redistribute", "TOL",
           "group_depth", "leaf_group"]

#: Slack in bound and sum checks.
TOL = 1e-9


@dataclass(frozen=True)
class Constraints:
    """Per-pool bounds of the feasible set, and which rule set each bound."""

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    lower_reason: tuple[str, ...]
    upper_reason: tuple[str, ...]
    tokens: float | None = None
    #: Groups: names, (G, P) 0/1 membership, bounds on the sums of their leaves and what set them, and each
    #: group's enclosing group (-1 at the top); empty for a flat set.
    group_names: tuple[str, ...] = ()
    group_members: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    group_lower: np.ndarray = field(default_factory=lambda: np.zeros(0))
    group_upper: np.ndarray = field(default_factory=lambda: np.zeros(0))
    group_lower_reason: tuple[str, ...] = ()
    group_upper_reason: tuple[str, ...] = ()
    group_parent: tuple[int, ...] = ()

    @property
    def free(self) -> np.ndarray:
        return self.upper - self.lower > TOL

    def subgroups(self, g: int) -> list[int]:
        """The groups directly inside group ``g`` (-1: the top level), in order."""
        return [h for h, p in enumerate(self.group_parent) if p == g]

    def group_totals(self, W: np.ndarray) -> np.ndarray:
        """(n, groups): each group's total weight, the sum of its leaves."""
        return np.atleast_2d(W) @ self.group_members.T if self.group_names else np.zeros((len(np.atleast_2d(W)), 0))

    def check(self, W: np.ndarray, tol: float = 1e-7, group_tol: float | None = None) -> np.ndarray:
        """Boolean mask of rows of ``W`` that satisfy every constraint (within ``tol``; the groups' sums within
        ``group_tol``, default ``tol``)."""
        W = np.atleast_2d(W)
        ok = ((np.abs(W.sum(axis=1) - 1) <= tol) & np.all(W >= self.lower - tol, axis=1)
              & np.all(W <= self.upper + tol, axis=1))
        if self.group_names:
            gt = tol if group_tol is None else group_tol
            S = self.group_totals(W)
            ok &= np.all(S >= self.group_lower - gt, axis=1) & np.all(S <= self.group_upper + gt, axis=1)
        return ok

    def project(self, V: np.ndarray) -> np.ndarray:
        r"""Each row of ``V`` made feasible: :func:`project` for a flat set; with groups, level by level from
        the top - the children's sums (leaves and groups) are projected onto :math:`\{\sum = t,\ \text{box}\}`
        (:math:`t = 1` at the top, then each group's projected total), each group's box being its own bounds
        met with its children's. A feasible row is its own image (so the search's moves and candidates keep
        their meaning); an infeasible one is not the exact Euclidean projection across levels."""
        if not self.group_names:
            return project(V, self.lower, self.upper)
        V = np.atleast_2d(np.asarray(V, dtype=float))
        lo, hi, leaves_of, subgroups_of = self._group_tree
        out = np.empty_like(V)

        def level(g: int, total: np.ndarray) -> None:
            leaves, subs = leaves_of[g], subgroups_of[g]
            X = np.column_stack([V[:, leaves]] + [V @ self.group_members[h][:, None] for h in subs])
            Y = project(X, np.concatenate([self.lower[leaves], lo[subs]]),
                        np.concatenate([self.upper[leaves], hi[subs]]), total=total)
            out[:, leaves] = Y[:, :len(leaves)]
            for k, h in enumerate(subs):
                level(h, Y[:, len(leaves) + k])

        level(-1, np.ones(len(V)))
        return out

    @cached_property
    def _group_tree(self) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray], dict[int, list[int]]]:
        """What :meth:`project` walks, once per constraint set (the searches project thousands of times): the
        groups' effective bounds, and each group's own leaves and sub-groups (-1: the top level)."""
        lo, hi = _effective_group_bounds(self)
        parent_of = leaf_group(self)
        levels = range(-1, len(self.group_names))
        return lo, hi, {g: np.flatnonzero(parent_of == g) for g in levels}, {g: self.subgroups(g) for g in levels}

    def to_dict(self) -> dict[str, object]:
        return {n: {"lower": float(lo), "upper": float(hi), "lower_reason": lr, "upper_reason": ur}
                for n, lo, hi, lr, ur in zip(self.names, self.lower, self.upper, self.lower_reason,
                                             self.upper_reason)}

    def groups_dict(self) -> dict[str, object]:
        """Each group's bounds on its total, what set them, and its leaves."""
        return {g: {"lower": float(self.group_lower[k]), "upper": float(self.group_upper[k]),
                    "lower_reason": self.group_lower_reason[k], "upper_reason": self.group_upper_reason[k],
                    "members": [n for n, m in zip(self.names, self.group_members[k]) if m]}
                for k, g in enumerate(self.group_names)}


def group_depth(c: Constraints) -> np.ndarray:
    """Each group's depth (0 at the top)."""
    out = np.zeros(len(c.group_names), dtype=int)
    for k in range(len(out)):
        p = c.group_parent[k]
        while p >= 0:
            out[k] += 1
            p = c.group_parent[p]
    return out


def leaf_group(c: Constraints) -> np.ndarray:
    """Each leaf's innermost group (-1: none): of the groups holding it, the deepest."""
    out = np.full(len(c.names), -1)
    for k in np.argsort(group_depth(c), kind="stable"):  # outermost first, so the innermost is written last
        out[c.group_members[k] > 0] = k
    return out


def _effective_group_bounds(c: Constraints) -> tuple[np.ndarray, np.ndarray]:
    r"""Each group's bounds met with what its children can reach: :math:`[\max(L_g, \sum \ell), \min(U_g,
    \sum u)]` over its children (leaves' boxes, sub-groups' effective bounds), computed from the innermost."""
    lo, hi = c.group_lower.copy(), c.group_upper.copy()
    parent_of = leaf_group(c)
    for g in np.argsort(-group_depth(c), kind="stable"):  # innermost first
        leaves = parent_of == g
        subs = c.subgroups(g)
        lo[g] = max(lo[g], c.lower[leaves].sum() + lo[subs].sum())
        hi[g] = min(hi[g], c.upper[leaves].sum() + hi[subs].sum())
    return lo, hi


def build_constraints(pools: PoolSet, tokens: float | None = None,
                      pins: Mapping[str, float] | None = None,
                      floors: Mapping[str, float] | None = None) -> Constraints:
    """Bounds from the manifest (floors, caps; a group's on the sum of its leaves), availability at ``tokens``,
    pinned weights (a pool's, or a group's total) and extra ``floors`` (a design's required pools or groups)."""
    names = tuple(pools.names)
    gnames = tuple(g.name for g in pools.groups)
    pins = dict(pins or {})
    group_pins = {k: pins.pop(k) for k in list(pins) if k in gnames and k not in names}
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
        if value > upper[i] + TOL:
            raise InfeasibleError(f"pool {name!r} is pinned at {value:g} but its {ur[i]} cap is {upper[i]:.6g}"
                                  f"{detail(i)}; lower the pin or relax the cap")
        if value < lower[i] - TOL:
            raise InfeasibleError(f"pool {name!r} is pinned at {value:g} below its floor min_weight "
                                  f"{lower[i]:g}; raise the pin or lower the floor")
        lower[i] = upper[i] = value
        lr[i] = ur[i] = "pinned"
    for i, name in enumerate(names):
        if lower[i] > upper[i] + TOL:
            raise InfeasibleError(f"pool {name!r}: its floor min_weight {lower[i]:g} is above its cap {upper[i]:.6g} "
                                  f"set by {ur[i]}{detail(i)}; lower the floor, raise max_epochs or lower the target "
                                  "tokens")
    if lower.sum() > 1 + TOL:
        raise InfeasibleError(f"floors and pins add up to {lower.sum():.6g} > 1; lower some min_weight or pins")
    if upper.sum() < 1 - TOL:
        detail = ""
        if tokens is not None:
            have = float(np.sum(pools.max_epochs * pools.tokens))
            detail = (f": at {tokens:.6g} target tokens the pools supply at most {have:.6g} tokens within "
                      f"their max_epochs")
        raise InfeasibleError(f"the caps add up to {upper.sum():.6g} < 1{detail}; raise max_epochs or max_weight, "
                              "add data, or lower the target tokens")
    for name, value in (floors or {}).items():
        if name in names:
            i = names.index(name)
            if value > lower[i]:
                lower[i], lr[i] = min(value, upper[i]), "required"
    c = Constraints(names, lower, upper, tuple(lr), tuple(ur), tokens)
    if not pools.groups:
        unknown = [n for n in floors or {} if n not in names]
        if unknown:
            raise ValidationError(f"required pool {unknown[0]!r} is not in the manifest; pools are {list(names)}")
        return c
    return _with_groups(c, pools, group_pins, {k: v for k, v in (floors or {}).items() if k not in names})


def _with_groups(c: Constraints, pools: PoolSet, pins: Mapping[str, float], floors: Mapping[str, float]) -> Constraints:
    """``c`` with the manifest's groups: their floors and caps, ``pins`` of their totals, extra ``floors``;
    refused when a group's bounds cannot be met by its leaves' or the top level's sums cannot reach 1."""
    from dataclasses import replace

    gnames = [g.name for g in pools.groups]
    unknown = [n for n in floors if n not in gnames]
    if unknown:
        raise ValidationError(f"required pool {unknown[0]!r} is neither a pool nor a group of the manifest; pools are "
                              f"{list(c.names)[:8]}, groups {gnames}")
    M = pools.group_matrix()
    glo = np.array([g.min_weight for g in pools.groups])
    ghi = np.array([g.max_weight for g in pools.groups])
    lr = ["min_weight" if v > 0 else "" for v in glo]
    ur = ["max_weight" if v < 1 else "" for v in ghi]
    for name, value in pins.items():
        k = gnames.index(name)
        if not 0 <= value <= 1:
            raise ValidationError(f"pinned total of group {name!r} is {value}; it must be between 0 and 1")
        if value > ghi[k] + TOL or value < glo[k] - TOL:
            raise InfeasibleError(f"group {name!r} is pinned at {value:g} outside its bounds [{glo[k]:g}, {ghi[k]:g}] "
                                  "(min_weight, max_weight); move the pin or relax the group's bounds")
        glo[k] = ghi[k] = value
        lr[k] = ur[k] = "pinned"
    for name, value in floors.items():
        k = gnames.index(name)
        if value > glo[k]:
            glo[k], lr[k] = min(value, ghi[k]), "required"
    c = replace(c, group_names=tuple(gnames), group_members=M, group_lower=glo, group_upper=ghi,
                group_lower_reason=tuple(lr), group_upper_reason=tuple(ur),
                group_parent=tuple(gnames.index(g.parent) if g.parent else -1 for g in pools.groups))
    lo, hi = _effective_group_bounds(c)
    for k, g in enumerate(gnames):
        if lo[k] > hi[k] + TOL:
            what = "pin" if lr[k] == "pinned" else "floor"
            raise InfeasibleError(f"group {g!r}: its total must be in [{lo[k]:.6g}, {hi[k]:.6g}] (its {what} and "
                                  "cap met with its leaves' floors and caps, availability included), an empty range; "
                                  "relax the group's bounds or its leaves'")
    top = leaf_group(c) == -1
    tops = c.subgroups(-1)
    if c.lower[top].sum() + lo[tops].sum() > 1 + TOL:
        raise InfeasibleError(f"the floors and pins of the top-level pools and groups add up to "
                              f"{c.lower[top].sum() + lo[tops].sum():.6g} > 1; lower some floors or pins")
    if c.upper[top].sum() + hi[tops].sum() < 1 - TOL:
        raise InfeasibleError(f"the caps of the top-level pools and groups add up to "
                              f"{c.upper[top].sum() + hi[tops].sum():.6g} < 1; raise a group's max_weight or pins")
    return c


def active_constraints(w: np.ndarray, c: Constraints, tol: float = 1e-6) -> dict[str, str]:
    """Which bound each pool sits on: ``{pool: "floor (min_weight)" | "cap (availability)" | ...}``."""
    return _active(c.names, w, c.lower, c.upper, c.lower_reason, c.upper_reason, tol)


def active_group_constraints(w: np.ndarray, c: Constraints, tol: float = 1e-6) -> dict[str, str]:
    """:func:`active_constraints` for the groups: which bound each group's total (the sum of its leaves)
    sits on."""
    if not c.group_names:
        return {}
    return _active(c.group_names, c.group_totals(w)[0], c.group_lower, c.group_upper, c.group_lower_reason,
                   c.group_upper_reason, tol)


def _active(names: tuple[str, ...], values: np.ndarray, lower: np.ndarray, upper: np.ndarray,
            lower_reason: tuple[str, ...], upper_reason: tuple[str, ...], tol: float) -> dict[str, str]:
    out = {}
    for n, v, lo, hi, why_lo, why_hi in zip(names, values, lower, upper, lower_reason, upper_reason):
        if why_lo == "pinned":
            out[n] = "pinned"
        elif hi < 1 and v >= hi - tol:
            out[n] = f"cap ({why_hi or 'max_weight'})"
        elif lo > 0 and v <= lo + tol:
            out[n] = f"floor ({why_lo})"
    return out


def project(V: np.ndarray, lower: np.ndarray, upper: np.ndarray, iters: int = 60,
            total: np.ndarray | None = None) -> np.ndarray:
    r"""Euclidean projection of each row of ``V`` onto :math:`\{\sum w = t, \ell \le w \le u\}` (:math:`t` =
    ``total`` per row, default 1).

    The projection is :math:`w = \mathrm{clip}(v - \tau, \ell, u)` with the scalar :math:`\tau`
    solving :math:`\sum_i w_i = t`; :math:`\tau` is found by bisection, vectorised over rows. Rows
    that are feasible already (to ``TOL``) are their own projection and are kept as they are.
    """
    V = np.atleast_2d(np.asarray(V, dtype=float))
    t = np.ones(len(V)) if total is None else np.broadcast_to(np.asarray(total, dtype=float), (len(V),))
    inside = ((np.abs(V.sum(axis=1) - t) <= TOL) & (V >= lower - TOL).all(axis=1)
              & (V <= upper + TOL).all(axis=1))
    if inside.all():
        return _fix_sum(V.copy(), lower, upper, t)
    if inside.any():
        out = _fix_sum(V.copy(), lower, upper, t)
        out[~inside] = project(V[~inside], lower, upper, iters, t[~inside])
        return out
    lo_t = (V - upper).min(axis=1) - 1.0
    hi_t = (V - lower).max(axis=1) + 1.0
    for _ in range(iters):
        mid = 0.5 * (lo_t + hi_t)
        s = np.clip(V - mid[:, None], lower, upper).sum(axis=1)
        big = s > t
        lo_t = np.where(big, mid, lo_t)
        hi_t = np.where(big, hi_t, mid)
    W = np.clip(V - (0.5 * (lo_t + hi_t))[:, None], lower, upper)
    return _fix_sum(W, lower, upper, t)


def _fix_sum(W: np.ndarray, lower: np.ndarray, upper: np.ndarray, total: np.ndarray | float = 1.0) -> np.ndarray:
    # Put the last rounding error (~1e-15) on the coordinate with the most room.
    err = total - W.sum(axis=1)
    room = np.where(err[:, None] > 0, upper - W, W - lower)
    j = room.argmax(axis=1)
    W[np.arange(len(W)), j] += err
    # where no coordinate had room (a group of total ~0) the error would leave one just outside its bounds
    # (-1e-15, which a runs table refuses as a negative weight): the sum keeps a 1e-15 error instead
    return np.clip(W, lower, upper, out=W)


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


