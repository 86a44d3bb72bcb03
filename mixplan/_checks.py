"""The one checker of user-given numbers (and names) for the whole package.

Every message has one form, ``"{where}: {value!r} must be {rule} ({why}); {fix}"`` (``is not a
number`` / ``is not a finite number`` / ``is not an integer`` when the value is not even that), so a
user reads the same kind of sentence whichever file, field or argument was wrong.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from .exceptions import ValidationError

__all__ = ["NAME_PATTERN", "check_number", "check_numbers", "show_cell"]

#: A pool or bucket name: letters, digits, ``_ . -``, not starting with punctuation.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def show_cell(value: Any) -> str:
    """A table cell as the user wrote it: numbers plain (``1.5``, not numpy's ``np.float64(1.5)``), text quoted,
    and ``an empty cell`` for a missing one (pandas reads an empty cell, and ``nan``, as NaN)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)) or type(value).__name__ == "NAType":
        return "an empty cell"
    return repr(value)


def _tail(why: str, fix: str) -> str:
    return (f" ({why})" if why else "") + (f"; {fix}" if fix else "")


def _rule(v: float, lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str | None:
    """The rule ``v`` breaks (``"> 0"``, ``"in (0, 1]"``), or None."""
    low = lo is not None and (v < lo or (lo_open and v == lo))
    high = hi is not None and (v > hi or (hi_open and v == hi))
    if not (low or high):
        return None
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    return f"{'>' if lo_open else '>='} {lo:g}" if low else f"{'<' if hi_open else '<='} {hi:g}"


def check_number(value: Any, where: str, *, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = False, hi_open: bool = False, integer: bool = False, allow_inf: bool = False,
                 coerce: bool = False, why: str = "", fix: str = "") -> float:
    """``value`` as a float (an ``int`` with ``integer``): a real number, not a bool (text only with
    ``coerce``, e.g. a table cell), finite unless ``allow_inf``, within ``lo`` / ``hi`` (open or closed).
    Anything else is a :class:`ValidationError` of the module's one form."""
    tail = _tail(why, fix)
    if coerce and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    # a cell (coerce) is shown as a cell; any value by its plain repr, not numpy's type
    shown = show_cell(value) if coerce else repr(value.item() if isinstance(value, np.generic) else value)
    if integer:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValidationError(f"{where}: {shown} is not an integer{tail}")
        v: float = int(value)
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValidationError(f"{where}: {shown} is not a number{tail}")
        v = float(value)
        if math.isnan(v) or (math.isinf(v) and not allow_inf):
            raise ValidationError(f"{where}: {shown} is not a finite number{tail}")
    rule = _rule(v, lo, hi, lo_open, hi_open)
    if rule:
        raise ValidationError(f"{where}: {shown} must be {rule}{tail}")
    return v


def check_numbers(values: Any, where: str, *, lo: float | None = None, hi: float | None = None,
                  lo_open: bool = False, hi_open: bool = False, why: str = "", fix: str = "") -> np.ndarray:
    """:func:`check_number` for a number or an array of them (returned as a float array); the message
    names the first element that breaks a rule, with its index for arrays."""
    tail = _tail(why, fix)
    try:
        v = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValidationError(f"{where}: {values!r} is not a number or an array of numbers{tail}") from None
    flat = v.ravel()
    bad = ~np.isfinite(flat)
    if lo is not None:
        bad |= (flat <= lo) if lo_open else (flat < lo)
    if hi is not None:
        bad |= (flat >= hi) if hi_open else (flat > hi)
    if bad.any():  # vectorised test; the message is built for the first bad element only
        i = int(np.flatnonzero(bad)[0])
        x, at = float(flat[i]), f" (element {i})" if v.ndim else ""
        rule = "a finite number" if not math.isfinite(x) else _rule(x, lo, hi, lo_open, hi_open)
        raise ValidationError(f"{where}: {x!r}{at} {'is not' if not math.isfinite(x) else 'must be'} {rule}{tail}")
    return v
