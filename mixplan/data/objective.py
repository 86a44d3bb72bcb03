"""The quantity a plan optimises: one metric column or a weighted sum of several.

Spec grammar (no ``eval``): terms joined by ``+``, each ``[coefficient*]column`` or
``[coefficient*]mean(pattern)``, where ``pattern`` is a shell-style glob over column names::

    loss_pile_cc
    mean(loss_*)
    0.7*bpb_news + 0.3*mean(bpb_*)
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..exceptions import ValidationError
from .runs import RunTable

__all__ = ["Objective", "parse_objective"]

_TERM = re.compile(r"^\s*(?:(?P<coef>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*\*\s*)?"
                   r"(?:mean\((?P<glob>[^()]+)\)|(?P<col>[^*()+\s][^*()+]*?))\s*$")


@dataclass(frozen=True)
class Objective:
    """A resolved objective: ``value = sum_j coefficients[j] * run[columns[j]]``.

    ``maximize`` tells the search which way is better; predictions stay in the metric's units.
    """

    spec: str
    columns: tuple[str, ...]
    coefficients: tuple[float, ...]
    maximize: bool = False

    @property
    def sense(self) -> float:
        """+1 when smaller is better, -1 when larger is better (multiply to get a loss)."""
        return -1.0 if self.maximize else 1.0

    def values(self, runs: RunTable) -> np.ndarray:
        return sum(c * runs.metric(col) for col, c in zip(self.columns, self.coefficients))  # type: ignore[return-value]

    def value_of(self, metrics: Mapping[str, float]) -> float:
        """The objective of one run given its metrics by column name."""
        return float(sum(c * metrics[col] for col, c in zip(self.columns, self.coefficients)))

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "Objective":
        """Inverse of :meth:`to_dict` (as stored in meta.json and plan.json)."""
        return cls(spec=str(doc["spec"]), columns=tuple(doc["columns"]),
                   coefficients=tuple(float(c) for c in doc["coefficients"]), maximize=bool(doc["maximize"]))

    def to_dict(self) -> dict[str, object]:
        return {"spec": self.spec, "columns": list(self.columns),
                "coefficients": list(self.coefficients), "maximize": self.maximize}


def parse_objective(spec: str, runs: RunTable, maximize: bool = False) -> Objective:
    """Resolve ``spec`` against the columns of ``runs``; unknown columns or empty globs are errors."""
    if not spec or not spec.strip():
        raise ValidationError("the target is empty; name a metric column, e.g. --target loss_pile_cc")
    coefs: dict[str, float] = {}
    available = runs.metric_columns
    for raw in _split_terms(spec):
        m = _TERM.match(raw)
        if not m:
            raise ValidationError(f"target {spec!r}: cannot read the term {raw.strip()!r}; write "
                                  "'column', 'coef*column' or 'coef*mean(glob)'")
        coef = float(m["coef"]) if m["coef"] else 1.0
        if m["glob"]:
            matched = [c for c in available if fnmatch.fnmatchcase(c, m["glob"].strip())]
            if not matched:
                raise ValidationError(f"target {spec!r}: mean({m['glob']}) matches no metric column of "
                                      f"{runs.source}; metric columns are {available[:12]}")
            for c in matched:
                coefs[c] = coefs.get(c, 0.0) + coef / len(matched)
        else:
            col = m["col"].strip()
            runs.metric(col)  # raises a precise error when missing or not numeric
            coefs[col] = coefs.get(col, 0.0) + coef
    for col in coefs:
        runs.metric(col)
    return Objective(spec=spec.strip(), columns=tuple(coefs), coefficients=tuple(coefs.values()),
                     maximize=maximize)


def _split_terms(spec: str) -> list[str]:
    # Split on '+' outside parentheses and not inside a number's exponent (1e+3).
    terms, depth, cur = [], 0, ""
    for i, ch in enumerate(spec):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "+" and depth == 0 and not (i > 0 and spec[i - 1] in "eE" and i > 1 and spec[i - 2].isdigit()):
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    terms.append(cur)
    if any(not t.strip() for t in terms):
        raise ValidationError(f"target {spec!r}: empty term around '+'")
    return terms
