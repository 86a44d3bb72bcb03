r"""Score specs: a document score column, or a weighted composite of several.

A composite ``0.6*dclm + 0.4*fasttext`` rates document :math:`i` by

.. math:: s_i = \sum_j w_j z_{ij}, \qquad z_{ij} = \Phi^{-1}\big((r_{ij} - 3/8) / (n + 1/4)\big),

with :math:`r_{ij}` the (average) rank of document :math:`i` by column :math:`j` among the :math:`n`
documents rated together (:func:`normal_scores`, Blom's rank-based normal scores). Scores are
higher-is-better in specs: ``-1*perplexity`` for a lower-is-better one.

Why rank-based normal scores: ratings come on unrelated scales and shapes (a classifier's probability
piled up near 1, a perplexity with a long tail, a 1-5 grade); raw values or z-scores would let the
widest or most skewed score dominate a weighted sum, and an outlier move it. Ranks fix that, and
mapping them to normal quantiles keeps the tails apart (the top 1% and the top 10% differ as much as a
latent Gaussian quality would), where plain percentiles squeeze them together. Only the order of each
score matters, so a score and any increasing transform of it are the same; a composite's values depend
on the documents rated together (its units are those of the normal scores, not of any column).

Pure parsing (no ``eval``) and arithmetic: :func:`parse_composite`, :func:`normal_scores`,
:func:`composite_values` (columns as arrays) and :func:`composite_scores` (a table's columns). Used by
the manifest's bucketing ``score`` (:mod:`mixplan.data.buckets`, :mod:`mixplan.data.scan`) and by
:mod:`mixplan.filtering.ratings`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .._checks import show_cell
from .._stats import normal_ppf, ranks
from ..exceptions import ValidationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Composite", "canonical_spec", "composite_scores", "composite_values", "normal_scores", "numeric_column",
           "parse_composite"]

_EXAMPLE = "'0.6*dclm + 0.4*fasttext'"
_COEF = r"(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TERM = re.compile(rf"^(?:(?P<coef>{_COEF})\s*\*\s*)?(?P<col>[^\s*+()]+)$")


@dataclass(frozen=True)
class Composite:
    """A score spec: ``value = sum_j weight_j * z_j`` over columns ``j`` (``z``: :func:`normal_scores`);
    ``spec`` is its canonical text (``0.6*dclm + 0.4*fasttext``; a lone column with weight 1 is its name)."""

    spec: str
    terms: tuple[tuple[str, float], ...]

    @property
    def columns(self) -> list[str]:
        return [c for c, _ in self.terms]

    @property
    def weights(self) -> dict[str, float]:
        return dict(self.terms)

    @property
    def single(self) -> bool:
        """A lone column with weight 1 (its ordering is the column's own)."""
        return len(self.terms) == 1 and self.terms[0][1] == 1.0


def canonical_spec(terms: Sequence[tuple[str, float]]) -> str:
    """The canonical text of ``(column, weight)`` terms: ``0.6*dclm + 0.4*fasttext``, ``-perplexity``.

    A weight is written as the shortest text that reads back as the same float (``repr``: ``0.6``,
    ``0.1234567``, ``1e-07``; ``5`` for ``5.0``), because the text is what a manifest stores and scan
    re-reads: rounding it would cut by other weights than the ones given."""
    out = ""
    for i, (col, w) in enumerate(terms):
        mag = "" if abs(w) == 1 else f"{_weight_text(abs(w))}*"
        sign = ("-" if w < 0 else "") if i == 0 else (" - " if w < 0 else " + ")
        out += f"{sign}{mag}{col}"
    return out


def _weight_text(w: float) -> str:
    """``repr(w)`` (round-trip exact) without a trailing ``.0``: ``5`` for 5.0, ``1e+20`` for 1e20."""
    text = repr(float(w))
    return text[:-2] if text.endswith(".0") else text


def _split_terms(spec: str) -> list[str]:
    """Split at ``+`` (not in a number's exponent) and at a ``-`` after a space (a hyphen inside a column
    name, ``acc_arc-easy``, is part of it); a ``-`` term keeps its sign."""
    parts, cur = [], ""
    for i, ch in enumerate(spec):
        exponent = i > 1 and spec[i - 1] in "eE" and spec[i - 2].isdigit()
        if ch == "+" and not exponent:
            parts.append(cur)
            cur = ""
        elif ch == "-" and not exponent and i > 0 and spec[i - 1].isspace() and cur.strip():
            parts.append(cur)
            cur = "-"
        else:
            cur += ch
    return parts + [cur]


def parse_composite(spec: Any, columns: Sequence[str] | None = None, where: str = "") -> Composite:
    """Read a score spec: a column name, or terms ``[w*]column`` joined by ``+`` / `` - `` (e.g.
    ``0.6*dclm + 0.4*fasttext``, ``-1*perplexity``). With ``columns`` (a table's), every column must be
    one of them (``where``, e.g. ``"docs.csv: "``, starts the error). No ``eval``."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValidationError(f"{where}score spec {spec!r} is empty; name a score column or a weighted sum, e.g. "
                              f"{_EXAMPLE}")
    text = spec.strip()
    if columns is not None and text in columns:  # any column name, also one with '+' or spaces in it
        return Composite(text, ((text, 1.0),))
    weights: dict[str, float] = {}
    for raw in _split_terms(text):
        term, sign = raw.strip(), 1.0
        if term.startswith("-"):
            term, sign = term[1:].strip(), -1.0
        m = _TERM.match(term)
        if not term or not m:
            what = "an empty term" if not term else f"the term {raw.strip()!r}"
            raise ValidationError(f"{where}score spec {spec!r}: cannot read {what}; write a column or 'w1*col1 + "
                                  f"w2*col2', e.g. {_EXAMPLE}")
        w = sign * (float(m["coef"]) if m["coef"] else 1.0)
        if not math.isfinite(w):
            raise ValidationError(f"{where}score spec {spec!r}: the weight {m['coef']} is not a finite number; use "
                                  "a smaller one")
        weights[m["col"]] = weights.get(m["col"], 0.0) + w
    if not any(weights.values()):
        raise ValidationError(f"{where}score spec {spec!r}: every weight is 0; give at least one score a weight, e.g. "
                              f"{_EXAMPLE}")
    terms = tuple((c, w) for c, w in weights.items() if w != 0)
    if columns is not None:
        missing = [c for c, _ in terms if c not in columns]
        if missing:
            raise ValidationError(f"{where}no column {missing[0]!r} (score spec {spec!r}); the columns are "
                                  f"{list(map(str, columns))}")
    return Composite(canonical_spec(terms), terms)


def normal_scores(values: Any) -> np.ndarray:
    r"""Rank-based normal scores (Blom): :math:`\Phi^{-1}((r - 3/8) / (n + 1/4))`, ``r`` the average rank.

    Why this common scale for composites: see the module docstring (only each score's order matters;
    the tails stay apart)."""
    v = np.asarray(values, dtype=float)
    n = v.size
    if n == 0:
        return v.copy()
    return np.asarray(normal_ppf((ranks(v) - 0.375) / (n + 0.25)), dtype=float)


def composite_values(columns: Mapping[str, Any], spec: Composite) -> np.ndarray:
    """Each document's composite ``sum_j w_j z_j`` of ``spec``, ``z_j`` the :func:`normal_scores` of
    column ``j`` over the documents given (``columns[j]``: one finite value per document, the same
    documents in every column)."""
    values = [np.asarray(columns[c], dtype=float) for c in spec.columns]
    n = len(values[0]) if values else 0
    if any(v.shape != (n,) for v in values):
        raise ValidationError(f"score spec {spec.spec!r}: its columns must hold one value per document each")
    return sum((w * normal_scores(v) for v, (_, w) in zip(values, spec.terms)), np.zeros(n))


def numeric_column(frame: "pd.DataFrame", column: str, where: str = "") -> np.ndarray:
    """The finite numbers of ``frame[column]``; the first row that is not one is an error (``where`` starts it)."""
    import pandas as pd

    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise ValidationError(f"{where}row {int(bad[0]) + 1}, column {column!r}: "
                              f"{show_cell(frame[column].iloc[bad[0]])} is not a finite number; every document needs a "
                              "numeric score (drop unscored rows first)")
    return values


def composite_scores(frame: "pd.DataFrame", spec: str | Composite, where: str = "") -> np.ndarray:
    """Each row's composite ``sum_j w_j z_j`` of ``spec`` (:func:`normal_scores` of each column over the
    rows of ``frame``); ``where`` (e.g. ``"docs.csv: "``) starts the errors."""
    cols = [str(c) for c in frame.columns]
    comp = spec if isinstance(spec, Composite) else parse_composite(spec, cols, where)
    missing = [c for c in comp.columns if c not in cols]
    if missing:
        raise ValidationError(f"{where}no column {missing[0]!r} (score spec {comp.spec!r}); the columns are {cols}")
    return composite_values({c: numeric_column(frame, c, where) for c in comp.columns}, comp)
