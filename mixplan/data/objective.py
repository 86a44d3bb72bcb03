"""The quantity a plan optimises: one metric column or a weighted sum of several.

Spec grammar (no ``eval``): terms joined by ``+`` or ``-``, each ``[coefficient*]column`` or
``[coefficient*]mean(pattern)``, where ``pattern`` is a shell-style glob over column names::

    loss_pile_cc
    mean(loss_*)
    0.7*bpb_news + 0.3*mean(bpb_*)
    mean(acc_*) - 0.5*loss_pile_cc          # with --maximize: accuracies up, the loss down

A ``-`` between terms needs a space or a closing parenthesis before it (``a - b``, ``mean(x_*)-b``):
column names may hold hyphens (``acc_arc-easy``). The sign of each term is its direction within the
objective; the objective's own direction is ``maximize``. A term whose name says which way is better
(``loss``, ``bpb``, ``ppl``: lower; ``acc``, ``f1``, ``exact_match``: higher) and that counts the wrong
way is warned about (:class:`~mixplan.exceptions.MixplanWarning`): a mixed objective's sign error would
otherwise silently optimise a metric the wrong way.
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

__all__ = ["Objective", "direction", "metric_sense", "parse_objective", "with_objective_column"]

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
    _warn_wrong_way(spec, coefs, maximize)
    return Objective(spec=spec.strip(), columns=tuple(coefs), coefficients=tuple(coefs.values()),
                     maximize=maximize)


#: Name fragments that say which way a metric is better (as tokens of the column name).
_LOWER_IS_BETTER = ("loss", "bpb", "ppl", "perplexity", "nll", "error", "err", "bits")
_HIGHER_IS_BETTER = ("acc", "accuracy", "f1", "exact", "em", "score", "bleu", "rouge", "pass", "mcc")


def metric_sense(column: str) -> int:
    """-1 when the column's name says lower is better, +1 when higher is, 0 when it does not say."""
    parts = set(re.split(r"[^a-z0-9]+", column.lower()))
    lower, higher = bool(parts & set(_LOWER_IS_BETTER)), bool(parts & set(_HIGHER_IS_BETTER))
    return 0 if lower == higher else (-1 if lower else 1)


def _warn_wrong_way(spec: str, coefs: Mapping[str, float], maximize: bool) -> None:
    import warnings

    from ..exceptions import MixplanWarning

    goal = 1 if maximize else -1
    wrong = [c for c, k in coefs.items() if metric_sense(c) * goal * np.sign(k) < 0]
    if wrong:
        kind = "a loss" if metric_sense(wrong[0]) < 0 else "a score"
        warnings.warn(f"target {spec!r}: {wrong[0]!r} looks like {kind} but the objective "
                      f"{'maximizes' if maximize else 'minimizes'} it{' (and ' + str(len(wrong) - 1) + ' more)' if len(wrong) > 1 else ''}; "
                      f"flip its sign or {'drop' if maximize else 'add'} --maximize if that is not meant",
                      MixplanWarning, stacklevel=3)


def _split_terms(spec: str) -> list[str]:
    """Split on '+' and '-' outside parentheses, not inside a number's exponent (1e+3, 1e-3) and, for '-',
    only after a space or ')' (a hyphen inside a column name is part of it); a '-' term is negated."""
    terms, depth, cur = [], 0, ""
    for i, ch in enumerate(spec):
        depth += ch == "("
        depth -= ch == ")"
        exponent = i > 1 and spec[i - 1] in "eE" and spec[i - 2].isdigit()
        minus = ch == "-" and depth == 0 and cur.strip() not in ("", "-") and (spec[i - 1].isspace() or spec[i - 1] == ")")
        if (ch == "+" and depth == 0 and not exponent) or (minus and not exponent):
            terms.append(cur)
            cur = "-" if ch == "-" else ""
        else:
            cur += ch
    terms.append(cur)
    if any(not t.strip() or t.strip() == "-" for t in terms):
        raise ValidationError(f"target {spec!r}: empty term around '+' or '-'")
    return [_negate(t.strip()) if t.strip().startswith("-") else t for t in terms]


def _negate(term: str) -> str:
    """'-0.5*x' / '- x' / '--0.5*x' as a term with its coefficient's sign flipped."""
    body = term[1:].strip()
    m = _TERM.match(body)
    if not m:
        return "-" + body  # the caller reports the unreadable term
    coef = -(float(m["coef"]) if m["coef"] else 1.0)
    rest = f"mean({m['glob']})" if m["glob"] else m["col"].strip()
    return f"{coef!r}*{rest}"


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
