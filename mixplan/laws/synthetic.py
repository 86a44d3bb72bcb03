r"""The rectified data law of synthetic pools (SynthLLM, Qin et al. 2025, arXiv 2503.19551).

Synthetic data follows a *rectified* scaling law in the tokens :math:`D` a model reads from it,

.. math::  L(D) = E + \frac{B}{(D_l + D)^{\beta}},

where :math:`D_l` is the "pre-learned" data size that shifts the curve: the loss falls as a power law once
:math:`D \gg D_l` and flattens towards :math:`E`. In their study the gains plateau near 300B tokens, and
larger models need fewer synthetic tokens to reach it. Past its plateau a synthetic pool's tokens are worth
little: :func:`doubling_gain` says how much one more doubling buys at :math:`D`, and
:func:`plateau_tokens` where that falls below a tolerance.

Fitted like every law here (:func:`mixplan.laws.fit_law`: Huber on log-loss, L-BFGS-B, bootstrap) in the
parameters :math:`(b, e, l, \beta)` with :math:`B = e^b`, :math:`E = e^e`, :math:`D_l = e^l`, from runs on
that pool at several token counts (a ``tokens`` column).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .fitting import Law

__all__ = ["SYNTHETIC", "doubling_gain", "plateau_tokens", "rectified_loss", "synthetic_value", "value_ratio"]


def rectified_loss(D: np.ndarray | float, params: Mapping[str, float]) -> np.ndarray:
    r""":math:`E + B / (D_l + D)^\beta` for parameters by name (``B``, ``E``, ``D_l``, ``beta``)."""
    D = np.asarray(D, dtype=float)
    return params["E"] + params["B"] / np.power(params["D_l"] + D, params["beta"])


def doubling_gain(D: np.ndarray | float, params: Mapping[str, float]) -> np.ndarray:
    """How much the loss falls when the tokens read double from ``D``: :math:`L(D) - L(2D)` (>= 0)."""
    D = np.asarray(D, dtype=float)
    return rectified_loss(D, params) - rectified_loss(2.0 * D, params)


def synthetic_value(D: np.ndarray | float, D_l: np.ndarray | float, beta: np.ndarray | float) -> np.ndarray:
    r"""What :math:`D` tokens of a pool under the rectified law are worth, in first tokens:

    .. math::  V(D) = \int_0^D \frac{L'(x)}{L'(0)}\,dx = \frac{D_l}{\beta}\left(1 - (1 + D/D_l)^{-\beta}\right),

    the loss the pool's tokens buy, divided by what its first token buys. :math:`V(D) \approx D` while
    :math:`D \ll D_l`, and :math:`V \to D_l/\beta` (the pool's ceiling, whatever is read): past the plateau a
    token is worth :math:`(1 + D/D_l)^{-(1+\beta)}` of a first one. Only :math:`D_l` and :math:`\beta` matter
    (:math:`B` and :math:`E` scale and shift the loss). :math:`\beta \to 0` gives :math:`D_l \log(1 + D/D_l)`.
    """
    D, D_l, beta = (np.asarray(v, dtype=float) for v in (D, D_l, beta))
    x = np.log1p(D / D_l)
    small = np.abs(beta * x) < 1e-8  # -expm1(-b x)/b -> x as b -> 0, without 0/0
    safe = np.where(small, 1.0, beta)
    return D_l * np.where(small, x, -np.expm1(-safe * x) / safe)


def value_ratio(D: np.ndarray | float, D_l: np.ndarray | float, beta: np.ndarray | float,
                reference: np.ndarray | float | None = None) -> np.ndarray:
    """:func:`synthetic_value` per token at ``D`` -- :math:`V(D)/D`, 1 at :math:`D = 0` -- divided by the same at
    ``reference`` tokens (None: at 0). With ``reference`` the tokens a proxy run read, a run at the proxy budget
    keeps its value exactly (ratio 1) and a larger one is discounted by how much further up the curve it is."""
    def per_token(x):
        x = np.asarray(x, dtype=float)
        pos = x > 0
        return np.where(pos, synthetic_value(np.where(pos, x, 1.0), D_l, beta) / np.where(pos, x, 1.0), 1.0)

    out = per_token(D)
    return out if reference is None else out / per_token(reference)


def plateau_tokens(params: Mapping[str, float], tol: float = 1e-3, low: float = 1.0, high: float = 1e16) -> float:
    """The tokens beyond which one more doubling improves the loss by less than ``tol`` (in the loss's unit):
    the pool's plateau. The gain of a doubling rises from 0 (while :math:`D \\ll D_l`) to a peak, then falls
    for good: the plateau is where it falls below ``tol`` after the peak (bisected in log D). ``low`` when no
    doubling on ``[low, high]`` gains ``tol``; ``inf`` when doublings still gain ``tol`` at ``high``."""
    grid = np.geomspace(low, high, 401)
    gains = doubling_gain(grid, params)
    peak = int(np.argmax(gains))
    if gains[peak] < tol:
        return float(low)
    if gains[-1] >= tol:
        return float("inf")
    lo, hi = np.log(grid[peak]), np.log(high)
    for _ in range(100):  # bisection in log D to well below a part in 1e12
        mid = 0.5 * (lo + hi)
        if doubling_gain(np.exp(mid), params) >= tol:
            lo = mid
        else:
            hi = mid
    return float(np.exp(hi))


def _log_predict(theta: np.ndarray, data: Mapping[str, np.ndarray]) -> np.ndarray:
    b, e, l, beta = theta
    logDl = np.logaddexp(l, np.log(data["tokens"]))  # log(D_l + D), without overflow
    return np.logaddexp(b - beta * logDl, e)


def _jacobian(theta: np.ndarray, data: Mapping[str, np.ndarray]) -> np.ndarray:
    """d log L / d (b, e, l, beta): the soft-max weights of the two terms, and the chain rule through
    log(D_l + D), whose derivative in l is D_l / (D_l + D)."""
    b, e, l, beta = theta
    logD = np.log(data["tokens"])
    logDl = np.logaddexp(l, logD)
    T = np.stack([b - beta * logDl, np.full_like(logDl, e)], axis=1)
    P = np.exp(T - T.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    share = np.exp(l - logDl)  # D_l / (D_l + D)
    return np.column_stack([P[:, 0], P[:, 1], -P[:, 0] * beta * share, -P[:, 0] * logDl])


def _named(theta: np.ndarray) -> dict[str, float]:
    b, e, l, beta = (float(t) for t in theta)
    return {"B": float(np.exp(b)), "E": float(np.exp(e)), "D_l": float(np.exp(l)), "beta": beta}


SYNTHETIC = Law(
    name="synthetic", theta_names=("b", "e", "l", "beta"), log_predict=_log_predict, named=_named,
    bounds=((-5.0, 60.0), (-5.0, 3.0), (0.0, 40.0), (0.0, 3.0)),
    grid=(tuple(np.arange(0.0, 41.0, 10.0)), tuple(np.arange(-1.0, 1.01, 0.5)), tuple(np.arange(0.0, 31.0, 10.0)),
          tuple(np.arange(0.25, 2.01, 0.5))),
    columns=("tokens",), jacobian=_jacobian)
