r"""The Data Mixing Laws form (Ye et al. 2024, ``yegcjs/mixinglaws``) as a regressor.

.. math::

    L(w) = c + s \, e^{b + t^\top w}, \qquad s \in \{+1, -1\}

For a loss (``s = +1``) this is the paper's :math:`c + k\,e^{\sum_j t_j w_j}` with :math:`k = e^b`;
``s = -1`` lets the same form describe a metric that grows with a pool (an accuracy). Since
:math:`\sum_j w_j = 1`, adding a constant to every :math:`t_j` and subtracting it from :math:`b`
changes nothing; a small ridge penalty :math:`\lambda \lVert t \rVert^2` picks one representative.

Fitted as in the paper's code: Huber loss (on standardised targets, threshold ``delta``) minimised
by L-BFGS; both signs are tried and the lower loss wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

__all__ = ["LogLinearForm", "MixingLaw", "fit_mixing_law", "huber_with_derivative", "mixing_law"]


def mixing_law(W: np.ndarray, c: float, sign: float, b: float, t: np.ndarray) -> np.ndarray:
    """:math:`c + s\\,e^{b + W t}` for mixtures ``W`` (n, P)."""
    return c + sign * np.exp(np.clip(b + W @ t, -50.0, 50.0))


def huber_with_derivative(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss of residuals ``r`` (quadratic within ``delta``, linear beyond) and its derivative."""
    a = np.abs(r)
    quad = a <= delta
    return np.where(quad, 0.5 * r ** 2, delta * (a - 0.5 * delta)), np.where(quad, r, delta * np.sign(r))


def _objective(params: np.ndarray, W: np.ndarray, y: np.ndarray, sign: float, delta: float,
               l2: float) -> tuple[float, np.ndarray]:
    c, b, t = params[0], params[1], params[2:]
    e = sign * np.exp(np.clip(b + W @ t, -50.0, 50.0))
    loss, d = huber_with_derivative(c + e - y, delta)
    n = len(y)
    grad = np.empty_like(params)
    grad[0] = d.sum() / n
    grad[1] = (d * e).sum() / n
    grad[2:] = W.T @ (d * e) / n + 2.0 * l2 * t
    return float(loss.sum() / n + l2 * t @ t), grad


@dataclass(frozen=True)
class MixingLaw:
    """Fitted parameters on the original target scale (``c``) and the exponent's (``b``, ``t``)."""

    c: float
    sign: float
    b: float
    t: np.ndarray
    loss: float
    converged: bool

    def predict(self, W: np.ndarray) -> np.ndarray:
        return mixing_law(np.asarray(W, dtype=float), self.c, self.sign, self.b, self.t)

    def to_dict(self) -> dict[str, object]:
        return {"c": self.c, "sign": self.sign, "b": self.b, "t": self.t.tolist(), "loss": self.loss,
                "converged": self.converged}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> "MixingLaw":
        return cls(c=float(d["c"]), sign=float(d["sign"]), b=float(d["b"]),  # type: ignore[arg-type]
                   t=np.asarray(d["t"], dtype=float), loss=float(d["loss"]),  # type: ignore[arg-type]
                   converged=bool(d["converged"]))


@dataclass(frozen=True)
class LogLinearForm:
    r"""A prediction written as :math:`c + g^\top w + \sum_k a_k e^{b_k + t_k^\top w}`: a linear model, a
    mixing law (one term, :math:`a = s`), and their weighted sums; convex in :math:`w` when every
    :math:`a_k \ge 0` (what :mod:`mixplan.simplex.convex` minimises exactly)."""

    const: float
    g: np.ndarray
    a: np.ndarray
    b: np.ndarray
    T: np.ndarray  # (K, P)

    @classmethod
    def of_law(cls, law: MixingLaw) -> "LogLinearForm":
        return cls(const=law.c, g=np.zeros(len(law.t)), a=np.array([law.sign]), b=np.array([law.b]),
                   T=np.asarray(law.t, dtype=float)[None, :])

    @property
    def convex(self) -> bool:
        return bool(np.all(self.a >= 0))

    def scaled(self, k: float) -> "LogLinearForm":
        return LogLinearForm(const=k * self.const, g=k * self.g, a=k * self.a, b=self.b, T=self.T)

    def __add__(self, other: "LogLinearForm") -> "LogLinearForm":
        return LogLinearForm(const=self.const + other.const, g=self.g + other.g, a=np.concatenate([self.a, other.a]),
                             b=np.concatenate([self.b, other.b]), T=np.vstack([self.T, other.T]))

    def predict(self, W: np.ndarray) -> np.ndarray:
        W = np.atleast_2d(np.asarray(W, dtype=float))
        return self.const + W @ self.g + np.exp(np.clip(self.b[None, :] + W @ self.T.T, -50.0, 50.0)) @ self.a


def fit_mixing_law(W: np.ndarray, y: np.ndarray, *, delta: float = 0.1, l2: float = 1e-4,
                   maxiter: int = 1000, start: MixingLaw | None = None) -> MixingLaw:
    """Fit :func:`mixing_law` to mixtures ``W`` (n, P) and targets ``y`` (n,).

    The targets are standardised for the fit (so ``delta`` is in standard deviations); starting
    point puts the asymptote ``c`` one standard deviation below (loss) or above (metric) every
    observed value, for each sign; with ``start`` (e.g. the fit on more runs, inside a
    cross-validation) the one start is that law, with its sign.
    """
    W = np.asarray(W, dtype=float)
    y = np.asarray(y, dtype=float)
    mu, sd = float(y.mean()), float(y.std()) or 1.0
    z = (y - mu) / sd
    best: tuple[float, float, np.ndarray, bool] | None = None
    starts = [(s, None) for s in (1.0, -1.0)] if start is None else [
        (start.sign, np.r_[(start.c - mu) / sd, start.b - np.log(sd), start.t])]
    for sign, x0 in starts:
        if x0 is None:
            edge = z.min() if sign > 0 else z.max()
            x0 = np.r_[edge - sign, 0.0, np.zeros(W.shape[1])]  # gap of one sd: log(gap) = 0
        res = minimize(_objective, x0, args=(W, z, sign, delta, l2), jac=True, method="L-BFGS-B",
                       options={"maxiter": maxiter})
        if best is None or res.fun < best[0]:
            best = (float(res.fun), sign, res.x, bool(res.success))
    assert best is not None
    loss, sign, x, ok = best
    # Back to the original scale: y = mu + sd * (c + s e^{b + t.w}).
    return MixingLaw(c=mu + sd * float(x[0]), sign=sign, b=float(x[1]) + float(np.log(sd)), t=x[2:].copy(),
                     loss=loss, converged=ok)
