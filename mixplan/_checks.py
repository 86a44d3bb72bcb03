"""Checks of user-given values shared across the package: numbers and names."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from .exceptions import ValidationError

__all__ = ["NAME_PATTERN", "real_number"]

#: A pool or bucket name: letters, digits, ``_ . -``, not starting with punctuation.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def real_number(value: Any, where: str, tail: str = "", *, allow_inf: bool = False) -> float:
    """``value`` as a float: a real number (not a bool), finite unless ``allow_inf``. Errors end with ``tail``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValidationError(f"{where}: {value!r} is not a number{tail}")
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValidationError(f"{where}: {value!r} is not a finite number{tail}")
    return v
