"""Small statistics shared across layers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["RidgeLOO", "conformal_quantile", "normal_cdf", "normal_ppf", "pearson", "ranks", "ridge_loo", "spearman"]


def conformal_quantile(residuals: np.ndarray, level: float) -> float:
    """Split-conformal half-width: the ceil((n + 1) level)-th smallest absolute residual (capped at the largest)."""
    r = np.sort(np.abs(residuals))
    k = int(np.ceil((len(r) + 1) * level)) - 1
    return float(r[min(max(k, 0), len(r) - 1)])


# Correlations and normal quantiles without importing scipy.stats (which takes ~0.7 s to import: it
# builds every distribution's docstring), so that a command's start-up stays short.
def ranks(a: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``a``, ties given their average rank (as ``scipy.stats.rankdata``)."""
    a = np.asarray(a, dtype=float)
    order = np.argsort(a, kind="mergesort")
    s = a[order]
    new = np.r_[True, s[1:] != s[:-1]]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(s)]
    out = np.empty(len(a))
    out[order] = ((starts + ends + 1) / 2.0)[np.cumsum(new) - 1]
    return out


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's correlation (NaN when either side is constant)."""
    a = np.asarray(a, dtype=float) - np.mean(a)
    b = np.asarray(b, dtype=float) - np.mean(b)
    den = float(np.sqrt((a @ a) * (b @ b)))
    return float(np.clip((a @ b) / den, -1.0, 1.0)) if den > 0 else float("nan")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation: Pearson's on the average ranks."""
    return pearson(ranks(a), ranks(b))


def normal_cdf(x: np.ndarray | float) -> np.ndarray | float:
    """The standard normal distribution function."""
    from scipy.special import ndtr

    return ndtr(x)


def normal_ppf(p: np.ndarray | float) -> np.ndarray | float:
    """The standard normal quantile function."""
    from scipy.special import ndtri

    return ndtri(p)


class RidgeLOO(NamedTuple):
    """:func:`ridge_loo`'s choice: the penalty (and its place in ``alphas``), the slopes on ``Z``, the
    intercept, and each penalty's LOO error (in the order given) with the chosen one's residuals."""

    index: int
    alpha: float
    beta: np.ndarray
    intercept: float
    errors: np.ndarray
    residuals: np.ndarray


def ridge_loo(Z: np.ndarray, y: np.ndarray, alphas: Sequence[float], rtol: float = 0.0) -> RidgeLOO:
    r"""Ridge :math:`\min_{b_0, \beta} \lVert y - b_0 - Z\beta \rVert^2 + \alpha \lVert\beta\rVert^2` (an
    unpenalised intercept) with the penalty of ``alphas`` whose exact leave-one-out error is smallest; a later
    penalty must beat the best so far by the relative margin ``rtol`` (the caller orders ``alphas`` for its
    ties: the first wins).

    One thin SVD of the centred design :math:`Z_c = U S V^\top` (its numerical rank) serves every penalty:
    the hat matrix is :math:`H = \tfrac1n \mathbf 1\mathbf 1^\top + U \operatorname{diag}(s^2/(s^2+\alpha))
    U^\top`, the leave-one-out residual :math:`(y_i - \hat y_i)/(1 - H_{ii})` and
    :math:`\beta = V \operatorname{diag}(s/(s^2+\alpha)) U^\top y_c`. (scikit-learn's ``RidgeCV`` rebuilds
    the hat matrix's diagonal per penalty: 2 s per fit at 400 pools and 1,600 runs, against 0.3 s.)
    """
    Z = np.asarray(Z, dtype=float)
    y = np.asarray(y, dtype=float)
    z_mean, y_mean = Z.mean(axis=0), float(y.mean())
    U, s, Vt = np.linalg.svd(Z - z_mean, full_matrices=False)
    keep = s > s.max(initial=0.0) * max(Z.shape) * np.finfo(float).eps
    U, s, Vt = U[:, keep], s[keep], Vt[keep]
    Uy = U.T @ (y - y_mean)
    U2 = U ** 2
    errors = np.empty(len(alphas))
    best = None
    for i, a in enumerate(map(float, alphas)):
        shrink = s ** 2 / (s ** 2 + a)
        resid = (y - y_mean - U @ (shrink * Uy)) / np.maximum(1.0 - (1.0 / len(y) + U2 @ shrink), 1e-12)
        errors[i] = float(np.mean(resid ** 2))
        if best is None or errors[i] < errors[best[0]] * (1.0 - rtol):
            best = (i, resid)
    assert best is not None, "ridge_loo needs at least one penalty"
    alpha = float(alphas[best[0]])
    beta = Vt.T @ (s / (s ** 2 + alpha) * Uy)
    return RidgeLOO(index=best[0], alpha=alpha, beta=beta, intercept=y_mean - float(z_mean @ beta), errors=errors,
                    residuals=best[1])
