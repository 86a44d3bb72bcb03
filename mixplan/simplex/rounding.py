r"""A mixture a person would type: weights at :math:`D` decimals that sum to exactly 1.

Rounding each weight on its own breaks the sum (``0.333 + 0.333 + 0.333``). The largest-remainder
method (Hamilton's apportionment) works in whole units of :math:`10^{-D}`:

.. math::

    q_i = w_i\,10^{D}, \qquad r_i = \lfloor q_i \rfloor + [\,i \in \text{the } k \text{ largest }
    q_i - \lfloor q_i \rfloor\,], \qquad k = 10^{D} - \textstyle\sum_i \lfloor q_i \rfloor,

so :math:`\sum_i r_i = 10^{D}` exactly and :math:`|r_i 10^{-D} - w_i| < 10^{-D}` for every pool.
Ties go to the earlier pool, so the result is deterministic. A weight that is already a whole number of
units (a pin such as 0.2) keeps it: the :math:`k` units go to positive remainders only.

Before rounding, pools below ``min_weight`` are dropped and the rest renormalised (pools in ``fixed``,
e.g. pinned ones, keep their weight; the others share what the dropped pools held). What dropping and
rounding cost is for the caller to predict (:func:`mixplan.mixture.plan.make_plan`, ``mixplan export``).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import numpy as np

from .._checks import check_number
from ..exceptions import ValidationError

__all__ = ["round_mixture", "weight_text"]

#: Decimals beyond this are finer than a float's 16 significant digits can round-trip as units.
MAX_DECIMALS = 12


def round_mixture(weights: Sequence[float] | np.ndarray, decimals: int | None = None, min_weight: float = 0.0,
                  fixed: Sequence[bool] | np.ndarray | None = None) -> np.ndarray:
    """``weights`` with pools under ``min_weight`` dropped (the rest renormalised, ``fixed`` pools kept as
    they are), then rounded to ``decimals`` by largest remainder (``None``: not rounded).

    The result sums to 1 exactly in units of :math:`10^{-D}`: :func:`weight_text` writes it as decimals
    that add up to 1 digit by digit. (As binary floats, 0.41 + 0.57 + 0.01 + 0.01 is 1 - 1.1e-16: no
    float rounding can make every decimal weight exact; exports therefore write the decimal text.)
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim != 1 or not w.size:
        raise ValidationError("round_mixture: weights must be a non-empty 1-D array (one weight per pool)")
    if np.any(~np.isfinite(w)) or np.any(w < -1e-12):
        raise ValidationError(f"round_mixture: weights must be finite and >= 0, got {w.tolist()}")
    w = np.clip(w, 0.0, None)
    if w.sum() <= 0:
        raise ValidationError("round_mixture: every weight is 0; a mixture needs at least one positive weight")
    w = w / w.sum()
    keep = np.zeros(len(w), dtype=bool) if fixed is None else np.asarray(fixed, dtype=bool)
    check_number(min_weight, "--min-weight", lo=0.0, hi=1.0, fix="e.g. 0.01 drops pools under 1%")
    if min_weight > 0:
        drop = (w < min_weight) & ~keep
        free = ~drop & ~keep
        if drop.any() and not free.any():
            raise ValidationError(f"--min-weight {min_weight:g} drops every pool that is not pinned (largest weight "
                                  f"{w[~keep].max():.4g}); lower it")
        w = np.where(drop, 0.0, w)
        room = 1.0 - w[keep].sum()  # what the free pools share once the dropped weight is handed back
        if drop.any():
            w[free] = w[free] * room / w[free].sum()
    if decimals is None:
        return w
    if isinstance(decimals, bool) or not isinstance(decimals, (int, np.integer)) or not 0 <= decimals <= MAX_DECIMALS:
        raise ValidationError(f"--round: {decimals!r} must be a whole number of decimals from 0 to {MAX_DECIMALS}")
    scale = 10 ** int(decimals)
    q = w * scale
    units = np.floor(q + 1e-9)  # 0.29 * 100 is 28.999999999999996: a float a hair under a whole unit is that unit
    rest = q - units
    k = scale - int(units.sum())
    if k < 0 or k > len(w):  # cannot happen for weights summing to 1; say so rather than return a wrong sum
        raise ValidationError(f"round_mixture: internal error, {k} units to hand out over {len(w)} pools")
    order = np.lexsort((np.arange(len(w)), -rest))  # largest remainder first, ties to the earlier pool
    units[order[:k]] += 1
    return units / scale


def weight_text(weight: float, decimals: int | None) -> str:
    """A weight as written in an export: ``decimals`` fixed decimals (so that rounded weights add up to 1
    digit by digit), else the shortest text that reads back as the same float."""
    if decimals is None:
        return repr(float(weight))
    return str(Decimal(repr(float(weight))).quantize(Decimal(1).scaleb(-int(decimals))))
