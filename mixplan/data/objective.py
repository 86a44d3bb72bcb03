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
import pandas as pd

from ..exceptions import ValidationError
from .runs import RunTable

__all__ = ["Objective", "direction", "parse_objective", "with_objective_column"]

_TERM = re.compile(r"^\s*(?:(?P<coef>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*\*\s*)?"
                   r"(?:mean\((?P<glob>[^()]+)\)|(?P<col>[^*()+\s][^*()+]*?))\s*$")


def direction(maximize: bool) -> float:
    """+1 when smaller is better, -1 when larger is better: a value times it is a score to minimise."""
    return -1.0 if maximize else 1.0


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
        """+1 when smaller is better, -1 when larger is better (see :func:`direction`)."""
        return direction(self.maximize)

    # The objective's direction is applied through these (estimators that keep only ``maximize`` use
    # :func:`direction`): searches minimise scores.
    def score(self, values: Any) -> Any:
        """Objective values as scores to minimise (the same for "smaller is better")."""
        return self.sense * values

    def unscore(self, scores: Any) -> Any:
        """Scores back to objective values (the inverse of :meth:`score`)."""
        return self.sense * scores

    def best(self, values: Any) -> int:
        """Index of the best of ``values`` (the first of equals)."""
        return int(np.argmin(self.score(np.asarray(values, dtype=float))))

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


class _TableMetrics:
    """What :func:`parse_objective` reads of a run table (metric columns, one checked column, the file),
    for a plain table such as ``laws fit``'s or ``filter --runs``'s."""

    def __init__(self, frame: pd.DataFrame, source: str) -> None:
        self.frame, self.source = frame, source
        self.metric_columns = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]

    def metric(self, column: str) -> np.ndarray:
        if column not in self.frame.columns:
            raise ValidationError(f"{self.source}: no column {column!r} (columns: "
                                  f"{', '.join(map(str, self.frame.columns))})")
        values = pd.to_numeric(self.frame[column], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raw = self.frame[column].iloc[int(bad[0])]
            raw = raw.item() if isinstance(raw, np.generic) else raw  # nan, not np.float64(nan)
            raise ValidationError(f"{self.source}: row {int(bad[0]) + 1}, column {column!r}: {raw!r} is not a finite "
                                  "number")
        return values


def with_objective_column(frame: pd.DataFrame, spec: str, source: str) -> pd.DataFrame:
    """``frame`` with a column named ``spec`` holding the objective ``spec``: a column (then ``frame`` is
    returned as it is, and the caller checks that column row by row), or a weighted sum of columns such as
    ``'0.5*err_a + 0.5*err_b'`` or ``'mean(err_*)'`` (the ``--target`` of every command)."""
    if spec in frame.columns:
        return frame
    table = _TableMetrics(frame, source)
    return frame.assign(**{spec: parse_objective(spec, table).values(table)})  # type: ignore[arg-type]
