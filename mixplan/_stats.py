"""Small statistics shared across layers."""

from __future__ import annotations

import numpy as np

__all__ = ["conformal_quantile", "normal_cdf", "normal_ppf", "pearson", "ranks", "spearman"]


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
