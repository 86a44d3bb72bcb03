"""Exceptions and warnings raised by mixplan.

Every error mixplan raises on purpose derives from :class:`MixplanError`, so a caller (and the CLI)
can catch one class. Messages say what was wrong, where (file, row, column) and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "MixplanError",
    "ValidationError",
    "InfeasibleError",
    "NotFittedError",
    "OutputExistsError",
    "MixplanWarning",
    "ExtrapolationWarning",
]


class MixplanError(Exception):
    """Base class of every error mixplan raises on purpose."""


class ValidationError(MixplanError, ValueError):
    """An input file or argument breaks a documented rule (schema, range, sums, names)."""


class InfeasibleError(MixplanError, ValueError):
    """The constraints admit no mixture (floors above 1, caps below 1, too little data)."""


class NotFittedError(MixplanError, AttributeError):
    """An estimator was used before ``fit``."""


class OutputExistsError(MixplanError, FileExistsError):
    """An output path exists and overwriting was not asked for (``--force``)."""


class MixplanWarning(UserWarning):
    """Base class of mixplan's warnings."""


class ExtrapolationWarning(MixplanWarning):
    """A prediction or recommendation lies outside the region the proxy runs cover."""
