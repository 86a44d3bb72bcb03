r"""The feasible set of mixtures: a box-constrained simplex, and the projection onto it.

.. math::

    \mathcal{W} = \{ w \in \mathbb{R}^P : \textstyle\sum_i w_i = 1,\; \ell_i \le w_i \le u_i \},
    \qquad u_i = \min\Big(\text{max\_weight}_i,\; \frac{\text{max\_epochs}_i \cdot T_i}{D}\Big),

where :math:`T_i` are a pool's unique tokens and :math:`D` is the target run's token budget
(availability: pool :math:`i` is read at most ``max_epochs`` times); pinned pools have
:math:`\ell_i = u_i`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..data.pools import PoolSet
from ..exceptions import InfeasibleError, ValidationError

__all__ = ["Constraints", "build_constraints", "active_constraints", "project", "cap_redistribute", "TOL"]

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

    @property
    def free(self) -> np.ndarray:
        return self.upper - self.lower > TOL

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
    solving :math:`\sum_i w_i = 1`; :math:`\tau` is found by bisection, vectorised over rows. Rows
    that are feasible already (to ``TOL``) are their own projection and are kept as they are.
    """
    V = np.atleast_2d(np.asarray(V, dtype=float))
    inside = ((np.abs(V.sum(axis=1) - 1.0) <= TOL) & (V >= lower - TOL).all(axis=1)
              & (V <= upper + TOL).all(axis=1))
    if inside.all():
        return _fix_sum(V.copy(), lower, upper)
    if inside.any():
        out = _fix_sum(V.copy(), lower, upper)
        out[~inside] = project(V[~inside], lower, upper, iters)
        return out
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


