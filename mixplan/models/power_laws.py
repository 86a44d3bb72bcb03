r"""Two per-pool power laws of the mixture, as olmix ships them: BiMix and AutoScale.

**BiMix** (Ge et al. 2024), its proportion part (olmix's ``bimix`` regressor):

.. math::

    f(w) = c + \sum_i F_i \, \max(w_i, \varepsilon)^{-\alpha_i}, \qquad F_i \ge 0,\ \alpha_i \ge 0

The paper's law is bivariate (proportion and training steps) and per validation domain; with one
budget the step factor is a constant, and olmix sums the per-domain terms so that one law serves
any target. olmix fits no constant; here ``c`` is on by default (``constant=False`` drops it) because
it fits slightly better out of sample (RegMix 1M train runs, target Pile-CC loss: 5-fold CV Spearman
0.9637 with it, 0.9631 without; on the 256 test runs 0.9679 and 0.9671). A pool's weight is floored
at :math:`\varepsilon = 0.01` before the power, because a weight of 0 makes :math:`w^{-\alpha}`
infinite and a tiny floor lets every absent pool dominate the prediction (:math:`10^{12\alpha}` at
olmix's :math:`10^{-12}`, against at most :math:`10^{3\alpha}` for a present pool at RegMix's
weight resolution 0.001). 0.01 is the offset of mixplan's log features (``gp-log``, ``ridge``) and
the best of {1e-3, 3e-3, 0.01, 0.03, 0.1} by 5-fold CV on RegMix's train runs (Spearman 0.925,
0.949, 0.963, 0.944, 0.822 without the constant, at scipy's default tolerances; olmix's 1e-12 gives
0.752 on the test runs, as olmix measured).

**AutoScale** (Kang et al. 2024), the law olmix fits as its ``autoscale`` regressor:

.. math::

    f(w) = L + \sum_i \bigl(N_{0,i} + N w_i\bigr)^{-\gamma_i}, \qquad N_{0,i} \ge 0,\ \gamma_i > 0

with :math:`N` the tokens a run trains on. In one study every run has the same budget, so
:math:`N` is a constant and the runs carry no information about how the loss moves with it: the
law's point (extrapolating across budgets) is out of reach. :math:`N` is therefore **fixed** to the
runs' budget (the ``tokens`` column), not fitted. Caveat: a term is :math:`N^{-\gamma_i} (a_i +
w_i)^{-\gamma_i}` and the law has no free amplitude, so :math:`N` sets each term's size through its
exponent and the fit depends on the unit of ``tokens`` (review of issue 25: held-out Spearman on
RegMix 0.974, 0.773 and 0.868 with :math:`N` = 1, 1e2 and 1e8); it is kept as olmix ships it, for
comparison, and a free amplitude per term (which removes :math:`N`) is left for later. The fit
estimates :math:`a_i = N_{0,i}/N \ge 0` (so :math:`N_{0,i} = a_i N`), :math:`\gamma_i` and
:math:`L \le \min y`. The term's base is floored
at :math:`10^{-12} N` (olmix's lower bound of :math:`a_i`) only so that :math:`N_{0,i} = 0` with
:math:`w_i = 0` stays finite: the fitted offset :math:`a_i` does what BiMix's floor does, and a floor
of 1e-3 measured worse (5-fold CV Spearman on RegMix's train runs 0.672 against 0.737).

Both are fitted like :mod:`mixplan.models.mixing_law`: a Huber loss on the residuals divided by the
targets' standard deviation (threshold ``delta`` in standard deviations), minimised by L-BFGS-B
with analytic gradients inside the bounds, from a fixed grid of starts (deterministic: no random
draws); with ``start`` (the fit on all runs, inside a cross-validation) the one start is that law.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import lsq_linear, minimize

from .mixing_law import huber_with_derivative

__all__ = ["BiMix", "AutoScale", "bimix_law", "autoscale_law", "fit_bimix", "fit_autoscale", "EPS", "AUTOSCALE_EPS"]

#: The floor of a pool's weight in BiMix (see the module docstring).
EPS = 0.01
#: The floor of ``a_i + w_i`` in AutoScale (see the module docstring).
AUTOSCALE_EPS = 1e-12
#: Upper bound of the exponents: beyond it ``eps ** -exponent`` leaves double precision's useful range.
MAX_EXPONENT = 5.0
#: Lower bound of AutoScale's exponents (the law asks for gamma > 0).
MIN_GAMMA = 1e-6
#: L-BFGS-B's stopping tolerances: scipy's relative reduction test is against max(|loss|, 1), and a good
#: fit's loss (squared residuals in standard deviations) is far below 1, so the default 2.2e-9 stops a
#: fit whose residuals are still 10x the noise (measured on synthetic data drawn from the law).
FTOL, GTOL = 1e-11, 1e-8
_BIMIX_STARTS = (0.1, 0.5, 1.0)  # alpha shared by every pool; F and c then solved by least squares
_AUTOSCALE_STARTS = (0.1, 0.3, 1.0)  # a term's size at the uniform mixture, in standard deviations of y


def bimix_law(W: np.ndarray, c: float, F: np.ndarray, alpha: np.ndarray, eps: float = EPS) -> np.ndarray:
    """:math:`c + \\sum_i F_i \\max(w_i, \\varepsilon)^{-\\alpha_i}` for mixtures ``W`` (n, P)."""
    return c + np.exp(-np.log(np.maximum(W, eps)) * alpha) @ F


def autoscale_law(W: np.ndarray, L: float, a: np.ndarray, gamma: np.ndarray, tokens: float,
                  eps: float = AUTOSCALE_EPS) -> np.ndarray:
    """:math:`L + \\sum_i (N a_i + N w_i)^{-\\gamma_i}` (base floored at :math:`N\\varepsilon`) for ``W`` (n, P)."""
    return L + np.exp(-(np.log(tokens) + np.log(np.maximum(a + W, eps))) * gamma).sum(axis=1)


def _bimix_objective(params: np.ndarray, logZ: np.ndarray, y: np.ndarray, sd: float,
                     delta: float) -> tuple[float, np.ndarray]:
    P = logZ.shape[1]
    c, F, alpha = params[0], params[1:P + 1], params[P + 1:]
    Z = np.exp(-logZ * alpha)  # (n, P): max(w, eps)^-alpha
    loss, d = huber_with_derivative((c + Z @ F - y) / sd, delta)
    g = d / (len(y) * sd)  # d(mean loss)/d(prediction)
    grad = np.empty_like(params)
    grad[0] = g.sum()
    grad[1:P + 1] = Z.T @ g
    grad[P + 1:] = -F * ((logZ * Z).T @ g)
    return float(loss.mean()), grad


def _autoscale_objective(params: np.ndarray, W: np.ndarray, y: np.ndarray, sd: float, delta: float,
                         log_n: float, eps: float) -> tuple[float, np.ndarray]:
    P = W.shape[1]
    L, a, gamma = params[0], params[1:P + 1], params[P + 1:]
    base = a + W
    floored = base <= eps
    logu = log_n + np.log(np.maximum(base, eps))
    T = np.exp(-logu * gamma)  # (n, P): the terms
    loss, d = huber_with_derivative((L + T.sum(axis=1) - y) / sd, delta)
    g = d / (len(y) * sd)
    grad = np.empty_like(params)
    grad[0] = g.sum()
    grad[1:P + 1] = -gamma * (np.where(floored, 0.0, T / np.maximum(base, eps)).T @ g)
    grad[P + 1:] = -((logu * T).T @ g)
    return float(loss.mean()), grad


@dataclass(frozen=True)
class BiMix:
    """A fitted :func:`bimix_law` (``c`` is 0 when fitted with ``constant=False``)."""

    c: float
    F: np.ndarray
    alpha: np.ndarray
    eps: float
    loss: float
    converged: bool

    def predict(self, W: np.ndarray) -> np.ndarray:
        return bimix_law(np.asarray(W, dtype=float), self.c, self.F, self.alpha, self.eps)

    def to_dict(self) -> dict[str, object]:
        return {"law": "bimix", "c": self.c, "F": self.F.tolist(), "alpha": self.alpha.tolist(), "eps": self.eps,
                "loss": self.loss, "converged": self.converged}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> "BiMix":
        return cls(c=float(d["c"]), F=np.asarray(d["F"], dtype=float),  # type: ignore[arg-type]
                   alpha=np.asarray(d["alpha"], dtype=float), eps=float(d["eps"]),  # type: ignore[arg-type]
                   loss=float(d["loss"]), converged=bool(d["converged"]))  # type: ignore[arg-type]


@dataclass(frozen=True)
class AutoScale:
    """A fitted :func:`autoscale_law`; ``a`` = :math:`N_{0,i}/N`, ``tokens`` = the fixed :math:`N`."""

    L: float
    a: np.ndarray
    gamma: np.ndarray
    tokens: float
    eps: float
    loss: float
    converged: bool

    @property
    def N0(self) -> np.ndarray:
        """The offsets :math:`N_{0,i} = a_i N`, in tokens."""
        return self.a * self.tokens

    def predict(self, W: np.ndarray) -> np.ndarray:
        return autoscale_law(np.asarray(W, dtype=float), self.L, self.a, self.gamma, self.tokens, self.eps)

    def to_dict(self) -> dict[str, object]:
        return {"law": "autoscale", "L": self.L, "a": self.a.tolist(), "gamma": self.gamma.tolist(),
                "tokens": self.tokens, "eps": self.eps, "loss": self.loss, "converged": self.converged}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> "AutoScale":
        return cls(L=float(d["L"]), a=np.asarray(d["a"], dtype=float),  # type: ignore[arg-type]
                   gamma=np.asarray(d["gamma"], dtype=float), tokens=float(d["tokens"]),  # type: ignore[arg-type]
                   eps=float(d["eps"]), loss=float(d["loss"]), converged=bool(d["converged"]))  # type: ignore[arg-type]


def _scale(y: np.ndarray) -> float:
    sd = float(y.std())
    return sd if sd > 0 else max(abs(float(y.mean())), 1.0)


def fit_bimix(W: np.ndarray, y: np.ndarray, *, constant: bool = True, eps: float = EPS, delta: float = 0.1,
              maxiter: int = 2000, start: BiMix | None = None) -> BiMix:
    """Fit :func:`bimix_law` to mixtures ``W`` (n, P) and targets ``y`` (n,).

    Starts: every pool's exponent at 0.1, 0.5 and 1, and for each the amplitudes (and constant) that
    minimise the squared error given the exponents (a bounded linear least squares: the law is linear
    in :math:`F` and :math:`c`); the lowest Huber loss of the three optimisations wins.
    """
    W = np.asarray(W, dtype=float)
    y = np.asarray(y, dtype=float)
    P = W.shape[1]
    logZ = np.log(np.maximum(W, eps))
    sd = _scale(y)
    c_bound = (None, None) if constant else (0.0, 0.0)
    bounds = [c_bound] + [(0.0, None)] * P + [(0.0, MAX_EXPONENT)] * P
    starts = []
    if start is not None:
        starts.append(np.r_[start.c if constant else 0.0, start.F, start.alpha])
    else:
        for a0 in _BIMIX_STARTS:
            A = np.exp(-logZ * a0)
            if constant:
                lo, hi = np.r_[-np.inf, np.zeros(P)], np.full(P + 1, np.inf)
                sol = lsq_linear(np.hstack([np.ones((len(y), 1)), A]), y, bounds=(lo, hi)).x
            else:
                sol = np.r_[0.0, lsq_linear(A, y, bounds=(0.0, np.inf)).x]
            starts.append(np.r_[sol, np.full(P, a0)])
    best = None
    for x0 in starts:
        res = minimize(_bimix_objective, x0, args=(logZ, y, sd, delta), jac=True, method="L-BFGS-B",
                       bounds=bounds, options={"maxiter": maxiter, "ftol": FTOL, "gtol": GTOL})
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    x = best.x
    return BiMix(c=float(x[0]), F=x[1:P + 1].copy(), alpha=x[P + 1:].copy(), eps=eps, loss=float(best.fun),
                 converged=bool(best.success))


def fit_autoscale(W: np.ndarray, y: np.ndarray, tokens: float, *, eps: float = AUTOSCALE_EPS, delta: float = 0.1,
                  maxiter: int = 2000, start: AutoScale | None = None) -> AutoScale:
    """Fit :func:`autoscale_law` with :math:`N` = ``tokens`` held fixed (see the module docstring).

    Starts: :math:`a_i = 1/P` (olmix's), every exponent such that a term at the uniform mixture is 0.1,
    0.3 or 1 standard deviation of ``y``, and :math:`L` the mean remainder (at most :math:`\\min y`);
    the lowest Huber loss of the three optimisations wins.
    """
    W = np.asarray(W, dtype=float)
    y = np.asarray(y, dtype=float)
    n, P = W.shape
    tokens = float(tokens)
    log_n = float(np.log(tokens))
    sd = _scale(y)
    ymin = float(y.min())
    bounds = [(None, ymin)] + [(0.0, None)] * P + [(MIN_GAMMA, MAX_EXPONENT)] * P
    starts = []
    if start is not None:
        starts.append(np.r_[min(start.L, ymin), start.a, start.gamma])
    else:
        a0 = np.full(P, 1.0 / P)
        log_u0 = log_n + float(np.log(2.0 / P))  # log(N (a0 + 1/P))
        for size in _AUTOSCALE_STARTS:
            g0 = float(np.clip(-np.log(size * sd) / log_u0 if log_u0 != 0 else 0.5, 1e-3, MAX_EXPONENT))
            terms = np.exp(-(log_n + np.log(np.maximum(a0 + W, eps))) * g0).sum(axis=1)
            starts.append(np.r_[min(float(np.mean(y - terms)), ymin), a0, np.full(P, g0)])
    best = None
    for x0 in starts:
        res = minimize(_autoscale_objective, x0, args=(W, y, sd, delta, log_n, eps), jac=True,
                       method="L-BFGS-B", bounds=bounds, options={"maxiter": maxiter, "ftol": FTOL, "gtol": GTOL})
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    x = best.x
    return AutoScale(L=float(x[0]), a=x[1:P + 1].copy(), gamma=x[P + 1:].copy(), tokens=tokens, eps=eps,
                     loss=float(best.fun), converged=bool(best.success))
