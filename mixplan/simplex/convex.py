r"""The exact optimum of a convex log-linear score over the feasible set, with a certificate.

Scores of the form

.. math::

    f(w) = g^\top w + \sum_k a_k\, e^{b_k + t_k^\top w} + \lambda \sum_{i \in F} w_i \log\frac{w_i}{p_i},
    \qquad a_k \ge 0,\ \lambda \ge 0,

(a linear model, the Data Mixing Laws form :math:`c + k\,e^{t^\top w}` of each objective column, their
positive combination, plus the KL to a prior of :mod:`mixplan.mixture.prior`) are convex, and the feasible
set :math:`\mathcal{W}` of :mod:`mixplan.simplex.constraints` (simplex, boxes, laminar group sums) is a
polytope, so a local optimum is the global one. :func:`minimise_convex` finds it with SLSQP (scipy) from a
feasible start and certifies it by the Frank-Wolfe gap

.. math::

    \mathrm{gap}(w) = \nabla f(w)^\top (w - s), \qquad s = \arg\min_{v \in \mathcal{W}} \nabla f(w)^\top v,

which bounds the distance to the optimum from above: :math:`f(w) - \min_{\mathcal{W}} f \le \mathrm{gap}(w)`
(convexity: :math:`f(v) \ge f(w) + \nabla f(w)^\top (v - w)` for every feasible :math:`v`). The linear
program for :math:`s` is solved by HiGHS (``scipy.optimize.linprog``). The KL's steep logarithm makes that
linearisation loose near small weights, so with a KL term a second bound keeps the KL exact and linearises
only the rest (:func:`_kl_bound`); the reported gap uses the better of the two.

A free pool with :math:`p_i = 0` is held at 0 when :math:`\lambda > 0` (any weight there costs
:math:`+\infty`); elsewhere the KL's derivative :math:`\log(w_i/p_i) + 1 \to -\infty` as :math:`w_i \to 0`
keeps the optimum inside, and the solver's lower bounds are lifted to :data:`KL_FLOOR` so that it never
evaluates the logarithm at 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..exceptions import ValidationError
from .constraints import TOL, Constraints

__all__ = ["ConvexResult", "minimise_convex", "KL_FLOOR"]

#: The smallest weight the solver gives a pool under a KL term (its optimum is never nearer 0 than this
#: unless the pool's prior is below about 1e-12 / e^(1 + 1/lambda * slope)).
KL_FLOOR = 1e-12


@dataclass(frozen=True)
class ConvexResult:
    """The optimum, its score :math:`f` (KL term included), the certificate, the start's :math:`f` and how it
    was found."""

    weights: np.ndarray
    value: float
    gap: float
    start_value: float
    iterations: int
    converged: bool
    message: str


def _smooth(w: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray, T: np.ndarray) -> tuple[float, np.ndarray]:
    r""":math:`h(w) = g^\top w + \sum_k a_k e^{b_k + t_k^\top w}` (:math:`f` without the KL) and its gradient."""
    E = np.exp(np.clip(b + T @ w, -50.0, 50.0))  # the same clip as models.mixing_law
    return float(g @ w + a @ E), g + T.T @ (a * E)


def minimise_convex(g: np.ndarray, a: np.ndarray, b: np.ndarray, T: np.ndarray, c: Constraints, start: np.ndarray,
                    *, strength: float = 0.0, prior: np.ndarray | None = None, kl_mask: np.ndarray | None = None,
                    maxiter: int = 1000, ftol: float = 1e-12) -> ConvexResult:
    r"""Minimise the convex :math:`f` (module docstring) over ``c`` from the feasible ``start``.

    Parameters
    ----------
    g : ndarray (P,)
        Linear coefficients.
    a, b : ndarray (K,)
        Each exponential term's factor (:math:`a_k \ge 0`: convexity) and offset.
    T : ndarray (K, P)
        Each exponential term's slopes.
    c : Constraints
    start : ndarray (P,)
        A feasible mixture (the search's optimum).
    strength, prior, kl_mask
        :math:`\lambda \ge 0`, the prior :math:`p` and the KL's pools :math:`F` (all by default).
    """
    from scipy.optimize import minimize

    g, a, b = (np.asarray(v, dtype=float) for v in (g, a, b))
    T = np.atleast_2d(np.asarray(T, dtype=float)).reshape(len(a), len(c.names))
    if np.any(a < 0):
        raise ValidationError("the exact proposer needs a convex score: every exponential term's factor must be >= 0")
    if strength > 0 and prior is None:
        raise ValidationError("a KL term needs the prior")
    P = len(c.names)
    mask = np.ones(P, bool) if kl_mask is None else np.asarray(kl_mask, bool)
    p = np.ones(P) if prior is None else np.asarray(prior, dtype=float)
    lower, upper = c.lower.copy(), c.upper.copy()
    if c.group_names:  # a member of a group capped (or pinned) at 0 is 0: no floor may be lifted there
        shut = (np.asarray(c.group_members, dtype=float)[c.group_upper <= TOL] > 0).any(axis=0)
        upper = np.where(shut & (lower <= TOL), lower, upper)
    if strength > 0:
        kl_free = mask & (upper - lower > TOL)
        upper = np.where(kl_free & (p <= 0), lower, upper)  # weight there costs +inf (its floor is 0: plan checks)
        lower = np.where(kl_free & (p > 0), np.maximum(lower, np.minimum(KL_FLOOR, upper)), lower)
    fixed = upper - lower <= TOL
    free = np.flatnonzero(~fixed)
    w0 = c.project(np.clip(np.asarray(start, dtype=float), lower, upper)[None, :])[0]  # feasible for c, whatever
    base = np.where(fixed, lower, w0)

    def full(x: np.ndarray) -> np.ndarray:
        w = base.copy()
        w[free] = x
        return w

    def f_and_grad(w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """f, its gradient, and the gradient of its smooth part h (what the KL bound linearises)."""
        value, grad_h = _smooth(w, g, a, b, T)
        grad = grad_h
        if strength > 0:
            on = mask & (w > 0) & (p > 0)
            logs = np.log(np.where(on, w, 1.0)) - np.log(np.where(on, p, 1.0))
            value += strength * float(np.sum(np.where(on, w * logs, 0.0)))
            grad = grad_h + strength * np.where(on, logs + 1.0, 0.0)
        return value, grad, grad_h

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad, _ = f_and_grad(full(x))
        return value, grad[free]

    cons = [{"type": "eq", "fun": lambda x: np.array([x.sum() + base[fixed].sum() - 1.0]),
             "jac": lambda x: np.ones((1, len(free)))}]
    A, rhs = _group_rows(c)
    if len(A):  # b - A w >= 0 over the free pools, the fixed ones' part moved to the right
        Af, slack = A[:, free], rhs - A[:, fixed] @ base[fixed]
        cons.append({"type": "ineq", "fun": lambda x: slack - Af @ x, "jac": lambda x: -Af})
    if len(free) == 0:
        w = base
        value = f_and_grad(w)[0]
        return ConvexResult(weights=w, value=value, gap=0.0, start_value=value, iterations=0, converged=True,
                            message="nothing free")
    res = minimize(fun, w0[free], jac=True, method="SLSQP", bounds=list(zip(lower[free], upper[free])),
                   constraints=cons, options={"maxiter": maxiter, "ftol": ftol})
    w = c.project(full(np.clip(res.x, lower[free], upper[free]))[None, :])[0]  # clean the solver's slack
    if strength > 0:
        w = np.where(mask & (p > 0) & (w < KL_FLOOR) & (upper > lower), np.minimum(KL_FLOOR, upper), w)
        w = c.project(w[None, :])[0]
    value, grad, grad_h = f_and_grad(w)
    start = f_and_grad(w0)
    start_value = start[0]
    if not value <= start_value:  # a solver that wandered off keeps the start (never worse than the search)
        w, (value, grad, grad_h) = w0, start
    # the linear program over the original floors (the lifted ones are a subset: a bound there need not hold)
    bound = _frank_wolfe_bound(w, value, grad, c, c.lower, upper)
    if strength > 0 and np.all(mask[free] & (p[free] > 0)):
        bound = max(bound, _kl_bound(w, value, grad_h, free, strength, p))
    return ConvexResult(weights=w, value=value, gap=float(max(0.0, value - bound)), start_value=start_value,
                        iterations=int(res.nit), converged=bool(res.success), message=str(res.message))


def _group_rows(c: Constraints) -> tuple[np.ndarray, np.ndarray]:
    """The groups' finite floors and caps as rows of :math:`A w \le b` (none for a flat set)."""
    M = np.asarray(c.group_members, dtype=float).reshape(len(c.group_names), len(c.names))
    lo, hi = np.isfinite(c.group_lower), np.isfinite(c.group_upper)
    return np.vstack([-M[lo], M[hi]]), np.concatenate([-c.group_lower[lo], c.group_upper[hi]])


def _frank_wolfe_bound(w: np.ndarray, value: float, grad: np.ndarray, c: Constraints, lower: np.ndarray,
                       upper: np.ndarray) -> float:
    r""":math:`f(w) - \nabla f(w)^\top (w - s)`, :math:`s` the best vertex of the solver's feasible set for the
    linearised :math:`f` (module docstring): a lower bound on :math:`\min f` there (:math:`-\infty` if the LP
    fails)."""
    from scipy.optimize import linprog

    A, rhs = _group_rows(c)
    lp = linprog(grad, A_ub=A if len(A) else None, b_ub=rhs if len(A) else None, A_eq=np.ones((1, len(w))),
                 b_eq=[1.0], bounds=list(zip(lower, upper)), method="highs")
    return value - float(grad @ (w - lp.x)) if lp.status == 0 else -np.inf


def _kl_bound(w: np.ndarray, value: float, grad_h: np.ndarray, free: np.ndarray, lam: float, p: np.ndarray) -> float:
    r"""A second lower bound on :math:`\min f` when every free pool is under the KL: linearise only :math:`h`
    and keep the KL exact, over the free pools' simplex :math:`\{v \ge 0, \sum v = m\}` (their boxes and
    groups dropped: a relaxation). By the Gibbs variational principle its minimum is
    :math:`m \phi + \lambda m \log m` with :math:`\phi = -\lambda \log \sum_i p_i e^{-\partial_i h / \lambda}`;
    tight where the Frank-Wolfe bound is loose, near a weight the KL keeps barely above 0."""
    m = float(w[free].sum())
    if m <= 0:
        return -np.inf
    z = np.log(p[free]) - grad_h[free] / lam
    phi = -lam * (z.max() + np.log(np.exp(z - z.max()).sum()))
    kl_free = float(np.sum(w[free] * (np.log(w[free]) - np.log(p[free]))))
    # f(w) minus the free pools' linearised h and KL at w, plus the relaxation's minimum
    return value - float(grad_h[free] @ w[free]) - lam * kl_free + m * phi + lam * m * np.log(m)
