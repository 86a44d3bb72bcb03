"""Small statistics shared across layers."""

from __future__ import annotations

import numpy as np

__all__ = ["conformal_quantile"]


def conformal_quantile(residuals: np.ndarray, level: float) -> float:
    """Split-conformal half-width: the ceil((n + 1) level)-th smallest absolute residual (capped at the largest)."""
    r = np.sort(np.abs(residuals))
    k = int(np.ceil((len(r) + 1) * level)) - 1
    return float(r[min(max(k, 0), len(r) - 1)])
