"""The quantity a plan optimises: one metric column or a weighted sum of several.

Spec grammar (no ``eval``): terms joined by ``+`` or ``-``, each ``[coefficient*]ITEM[:weight]`` where ITEM is
``column``, ``mean(patterns)`` or ``family(patterns[; higher|lower])`` and ``patterns`` is a comma-separated list
of shell-style globs over column names, ``!glob`` leaving the columns it matches out::

    loss_pile_cc
    mean(loss_*)
    0.7*bpb_news + 0.3*mean(bpb_*)
    mean(acc_*) - 0.5*loss_pile_cc          # with --maximize: accuracies up, the loss down
    mean(bpb_*, !bpb_mean)                  # '!pattern' leaves columns out
    family(mmlu_*; higher):0.5 + mean(bpb_*)

A term's weight is its coefficient times its ``:weight`` (``0.5*x`` and ``x:0.5`` are the same; a term that is
itself a column name, ``x:0.5``, stays that column). ``mean(p)`` gives each of its ``n`` columns ``c/n``: the
glob's columns count as one term however many there are. ``family(p)`` does the same, and also turns each member
toward "better": its weight is an importance (> 0) and a member counts with the sign that makes the objective
better when the member gets better - ``+`` when it is better in the objective's own direction (lower, or higher
with ``--maximize``), ``-`` otherwise. A member's direction is ``; higher`` / ``; lower`` when given, else its
name's (:func:`metric_sense`: ``acc``/``f1``/... higher, ``loss``/``bpb``/... lower), else the objective's own
(warned about when the objective has other terms: ``mmlu_*`` says neither). So under the default (minimise),
``family(mmlu_*; higher):0.5 + mean(bpb_*)`` is ``mean(bpb_*) - 0.5*mean(mmlu_*)``. Under ``--maximize`` a
family keeps its members' directions but a plain term (a column, ``mean(...)``) is taken as written, so
``family(mmlu_*; higher):0.5 + family(bpb_*)`` (every term a family) is the spec whose best mixtures do not
depend on the flag. Values stay in the
metrics' units (no standardisation: the objective is a fixed linear combination of columns, reproducible
from its coefficients alone).

A ``!glob`` that leaves out none of the columns its term's globs match (a misspelt or absent metric) is an error
naming the columns it could have left out.

The columns each ``mean(...)`` matched are recorded (:attr:`Objective.matched`) and shown by ``fit``,
``plan`` and ``validate``. A matched column that is an aggregate of the others (their mean or sum, or a
``*_mean``/``*_avg``/``*_sum``/``*_total`` column that follows their mean) is warned about: averaging
it in counts the others twice.

A ``-`` between terms needs a space or a closing parenthesis before it (``a - b``, ``mean(x_*)-b``):
column names may hold hyphens (``acc_arc-easy``). The sign of each term is its direction within the
objective; the objective's own direction is ``maximize``. A term whose name says which way is better
(``loss``, ``bpb``, ``ppl``: lower; ``acc``, ``f1``, ``exact_match``: higher) and that counts the wrong
way is warned about (:class:`~mixplan.exceptions.MixplanWarning`): a mixed objective's sign error would
otherwise silently optimise a metric the wrong way.

A coefficient that is not a finite number (``1e400*x``), or an objective that overflows a float on some
run (columns near 1e308), is an error naming the term or the row.
"""

from __future__ import annotations

import fnmatch
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._checks import show_cell
from ..exceptions import MixplanWarning, ValidationError
from .runs import RunTable

__all__ = ["Objective", "direction", "metric_sense", "objective_warnings", "parse_objective",
           "with_objective_column"]

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TERM = re.compile(rf"^\s*(?:(?P<coef>{_NUMBER})\s*\*\s*)?"
                   rf"(?:(?P<kind>mean|family)\((?P<glob>[^()]+)\)|(?P<col>[^*()+\s][^*()+]*?))"
                   rf"(?:\s*:\s*(?P<weight>{_NUMBER}))?\s*$")
#: The directions a ``family(...; DIRECTION)`` can state, as :func:`metric_sense` values.
_FAMILY_DIRECTIONS = {"higher": 1, "lower": -1}


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
    #: Each ``mean(...)`` pattern of the spec and the columns it matched (a glob can catch more than meant);
    #: a ``family(...)`` term is recorded under its whole text, ``family(mmlu_*; higher)``.
    matched: tuple[tuple[str, tuple[str, ...]], ...] = ()

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
                   coefficients=tuple(float(c) for c in doc["coefficients"]), maximize=bool(doc["maximize"]),
                   matched=tuple((str(p), tuple(map(str, cols))) for p, cols in doc.get("matched", {}).items()))

    def to_dict(self) -> dict[str, object]:
        return {"spec": self.spec, "columns": list(self.columns),
                "coefficients": list(self.coefficients), "maximize": self.maximize,
                "matched": {p: list(cols) for p, cols in self.matched}}

    @property
    def families(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Each ``family(...)`` term (its text) and its member columns."""
        return tuple((p, cols) for p, cols in self.matched if _is_family(p))

    def matched_lines(self) -> list[str]:
        """One line per ``mean(...)``/``family(...)`` of the spec naming the columns it matched (empty without
        globs)."""
        whole = len(self.matched) == 1 and self.spec == _label(self.matched[0][0])
        return [(f"target {self.spec}" if whole else f"target {self.spec}: {_label(p)}")
                + f" matched {len(cols)} column{'s' if len(cols) > 1 else ''}: {', '.join(cols)}"
                for p, cols in self.matched]


def _is_family(key: str) -> bool:
    """A :attr:`Objective.matched` key of a ``family(...)`` term (a bare pattern holds no parenthesis)."""
    return key.startswith("family(")


def _label(key: str) -> str:
    """A :attr:`Objective.matched` key as the term it came from."""
    return key if _is_family(key) else f"mean({key})"


def _with_drop(key: str, column: str) -> str:
    """The term of ``key`` with ``!column`` added to its globs (before a family's direction)."""
    if not _is_family(key):
        return f"mean({key}, !{column})"
    globs, semi, how = key[len("family("):-1].partition(";")
    return f"family({globs.strip()}, !{column}{'; ' + how.strip() if semi else ''})"


def parse_objective(spec: str, runs: RunTable, maximize: bool = False) -> Objective:
    """Resolve ``spec`` against the columns of ``runs``; unknown columns or empty globs are errors."""
    if not spec or not spec.strip():
        raise ValidationError("the target is empty; name a metric column, e.g. --target loss_pile_cc")
    coefs: dict[str, float] = {}
    globs: dict[str, tuple[str, ...]] = {}
    available = runs.metric_columns
    for raw in _split_terms(spec):
        m = _TERM.match(raw)
        if not m:
            raise ValidationError(f"target {spec!r}: cannot read the term {raw.strip()!r}; write 'column', "
                                  "'coef*column', 'coef*mean(glob)' or 'family(glob[; higher|lower])[:weight]'")
        col, weight = (m["col"] or "").strip(), m["weight"]
        if col and weight is not None and raw[m.start("col"):m.end("weight")] in available:
            col, weight = raw[m.start("col"):m.end("weight")], None  # a column named 'x:0.5' is that column
        coef = (float(m["coef"]) if m["coef"] else 1.0) * (float(weight) if weight is not None else 1.0)
        if not np.isfinite(coef):  # '1e400' reads as inf: every value of the objective would be inf or nan
            what = m["coef"] if m["coef"] and not np.isfinite(float(m["coef"])) else weight
            raise ValidationError(f"target {spec!r}: the coefficient {what} of the term {raw.strip()!r} is not "
                                  "a finite number (beyond the largest float, about 1.8e308); use a smaller one")
        if m["kind"] == "family":
            key, members = _family(spec, raw, m["glob"], coef, maximize, available, runs.source)
            globs[key] = tuple(members)
            for c, sign in members.items():
                coefs[c] = coefs.get(c, 0.0) + sign * coef / len(members)
        elif m["glob"]:
            pattern = m["glob"].strip()
            matched = _glob_columns(spec, pattern, available, "mean")
            if not matched:
                raise ValidationError(f"target {spec!r}: mean({m['glob']}) matches no metric column of "
                                      f"{runs.source}; metric columns are {available[:12]}")
            globs[pattern] = tuple(matched)
            for c in matched:
                coefs[c] = coefs.get(c, 0.0) + coef / len(matched)
        else:
            runs.metric(col)  # raises a precise error when missing or not numeric
            coefs[col] = coefs.get(col, 0.0) + coef
    values = {col: runs.metric(col) for col in coefs}
    _check_magnitude(spec, coefs, values, runs)
    objective = Objective(spec=spec.strip(), columns=tuple(coefs), coefficients=tuple(coefs.values()),
                          maximize=maximize, matched=tuple(globs.items()))
    for note in objective_warnings(objective, values.__getitem__):
        warnings.warn(note, MixplanWarning, stacklevel=2)
    return objective


def _family(spec: str, raw: str, inner: str, weight: float, maximize: bool, available: list[str],
            source: str) -> tuple[str, dict[str, int]]:
    """A ``family(globs[; higher|lower])`` term: its key (its text) and each member's sign, +1 when the member
    is better in the objective's direction (``maximize``), -1 when it is better the other way (see the module's
    docstring); a member whose direction is unknown counts +1."""
    globs, semi, how = inner.partition(";")
    globs, how = globs.strip(), how.strip().lower()
    if semi and how not in _FAMILY_DIRECTIONS:
        raise ValidationError(f"target {spec!r}: family({inner}) states the direction {how!r}; write "
                              f"'; higher' or '; lower' after the globs (larger or smaller is better)")
    key = f"family({globs}{'; ' + how if semi else ''})"
    if not weight > 0:
        raise ValidationError(f"target {spec!r}: the term {raw.strip()!r} gives {key} the weight {weight:g}; a "
                              "family's weight is how much it counts (> 0): its sign comes from its direction "
                              "('; higher' or '; lower', else its columns' names)")
    matched = _glob_columns(spec, globs, available, "family")
    if not matched:
        raise ValidationError(f"target {spec!r}: {key} matches no metric column of {source}; metric columns are "
                              f"{available[:12]}")
    goal = 1 if maximize else -1
    stated = _FAMILY_DIRECTIONS.get(how, 0)
    return key, {c: -1 if (stated or metric_sense(c)) * goal < 0 else 1 for c in matched}


def _glob_columns(spec: str, pattern: str, available: list[str], kind: str = "mean") -> list[str]:
    """The columns a ``mean(...)``/``family(...)`` pattern matches: a comma-separated list of shell-style globs,
    where ``!glob`` leaves the columns it matches out (``bpb_*, !bpb_mean``); a ``!glob`` that leaves nothing
    out is warned about, naming the columns it could have (a warning, not an error: one spec serves tables with
    and without the aggregate column, as ``mean(bpb_*, !bpb_mean)`` always has)."""
    parts = [p.strip() for p in pattern.split(",")]
    if any(p in ("", "!") for p in parts) or all(p.startswith("!") for p in parts):
        raise ValidationError(f"target {spec!r}: {kind}({pattern}) needs at least one pattern and no empty one, "
                              f"e.g. {kind}(bpb_*, !bpb_mean)")
    keep = [p for p in parts if not p.startswith("!")]
    drop = [p[1:].strip() for p in parts if p.startswith("!")]
    kept = [c for c in available if any(fnmatch.fnmatchcase(c, p) for p in keep)]
    for p in drop:
        if kept and not any(fnmatch.fnmatchcase(c, p) for c in kept):
            warnings.warn(f"target {spec!r}: {kind}({pattern}) drops !{p}, which matches none of the "
                          f"{len(kept)} columns {', '.join(keep)} matches ({', '.join(kept[:12])}"
                          f"{', ...' if len(kept) > 12 else ''}); check the name", MixplanWarning, stacklevel=3)
    return [c for c in kept if not any(fnmatch.fnmatchcase(c, p) for p in drop)]


#: The largest objective (or column) magnitude a fit can use: beyond it squared errors overflow a float (~1.8e308).
MAX_MAGNITUDE = 1e150


def _check_magnitude(spec: str, coefs: Mapping[str, float], values: Mapping[str, np.ndarray], runs: Any) -> None:
    """Refuse an objective that overflows a float on some run (each column is finite by now, but a large
    coefficient or columns near 1e308 add up to inf), or whose columns or value exceed :data:`MAX_MAGNITUDE`:
    its CV, intervals and JSON would be inf or nan."""
    for col, v in values.items():  # each column is fitted on its own
        big = np.flatnonzero(np.abs(v) > MAX_MAGNITUDE)
        if big.size:
            i = int(big[0])
            raise ValidationError(f"target {spec!r}: column {col!r} is {v[i]:.4g} on {runs.describe_row(i)}: beyond "
                                  f"{MAX_MAGNITUDE:g} a fit's squared errors overflow a float; rescale the column")
    with np.errstate(over="ignore", invalid="ignore"):
        terms = {col: c * values[col] for col, c in coefs.items()}
        total = np.asarray(sum(terms.values()), dtype=float)
    bad = np.flatnonzero(~(np.abs(total) <= MAX_MAGNITUDE))
    if bad.size:
        i = int(bad[0])
        col = max(terms, key=lambda k: abs(terms[k][i]) if np.isfinite(terms[k][i]) else np.inf)
        finite = bool(np.isfinite(total[i]))
        why = (f"beyond {MAX_MAGNITUDE:g} a fit's squared errors overflow a float" if finite
               else "the sum of the terms is beyond the largest float (about 1.8e308)")
        more = f" and {bad.size - 1} more row{'s' if bad.size > 2 else ''}" if bad.size > 1 else ""
        raise ValidationError(
            f"target {spec!r}: the objective {f'is {total[i]:.4g}' if finite else 'overflows'} on "
            f"{runs.describe_row(i)}{more} (its term {'' if coefs[col] == 1 else f'{coefs[col]:g}*'}{col} is "
            f"{terms[col][i]:.4g}): {why}; "
            f"rescale column {col!r} or its coefficient")


#: Name parts of a column that holds an aggregate (mean, sum) of other columns.
_AGGREGATE_NAMES = {"mean", "avg", "average", "sum", "total", "overall", "aggregate", "macro", "micro"}
#: Correlation with the others' mean above which an aggregate-named matched column is taken for one.
_AGGREGATE_CORRELATION = 0.95


def objective_warnings(objective: Objective, metric: Callable[[str], np.ndarray]) -> list[str]:
    """What to warn about ``objective`` (``metric(column)``: a column's values): a term counted the wrong way
    for its name, and a ``mean(...)`` that matched an aggregate of its other columns."""
    notes = [] if (n := _wrong_way(objective)) is None else [n]
    notes += _undirected(objective)
    for pattern, cols in objective.matched:
        if len(cols) < 2:
            continue
        V = np.column_stack([metric(c) for c in cols])
        for j, col in enumerate(cols):
            how = _aggregate_of(col, V[:, j], np.delete(V, j, axis=1))
            if how:
                others = [c for c in cols if c != col]
                notes.append(f"target {objective.spec!r}: {_label(pattern)} matched {col!r}, which {how} of the "
                             f"other {len(others)} matched column{'s' if len(others) > 1 else ''} "
                             f"({', '.join(others[:6])}{', ...' if len(others) > 6 else ''}): the mean counts them "
                             f"twice; leave it out with {_with_drop(pattern, col)} unless that is meant")
    return notes


def _aggregate_of(name: str, v: np.ndarray, others: np.ndarray) -> str | None:
    """How column ``v`` is an aggregate of the columns ``others`` (n, k), or None: their mean or sum to 1e-6
    (relative) on every row, or a name saying so and a correlation of at least 0.95 with their mean."""
    if np.ptp(v) == 0:  # a constant column is refused by the fit with its own message
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        for what, agg in (("mean", others.mean(axis=1)), ("sum", others.sum(axis=1))):
            if np.all(np.abs(v - agg) <= 1e-6 * np.maximum(np.abs(v), np.abs(agg))):
                return f"equals the {what}"
        mean = others.mean(axis=1)
        named = bool(set(re.split(r"[^a-z0-9]+", name.lower())) & _AGGREGATE_NAMES)
        if not named or len(v) < 3 or np.ptp(v) == 0 or np.ptp(mean) == 0:
            return None
        r = float(np.corrcoef(v, mean)[0, 1])
    return f"looks like an aggregate (its name; correlation {r:.3f} with the mean)" if r >= _AGGREGATE_CORRELATION \
        else None


#: Name fragments that say which way a metric is better (as tokens of the column name).
_LOWER_IS_BETTER = ("loss", "bpb", "ppl", "perplexity", "nll", "error", "err", "bits")
_HIGHER_IS_BETTER = ("acc", "accuracy", "f1", "exact", "em", "score", "bleu", "rouge", "pass", "mcc")


def metric_sense(column: str) -> int:
    """-1 when the column's name says lower is better, +1 when higher is, 0 when it does not say."""
    parts = set(re.split(r"[^a-z0-9]+", column.lower()))
    lower, higher = bool(parts & set(_LOWER_IS_BETTER)), bool(parts & set(_HIGHER_IS_BETTER))
    return 0 if lower == higher else (-1 if lower else 1)


def _wrong_way(objective: Objective) -> str | None:
    """The warning for terms whose names say they count the wrong way, or None."""
    maximize = objective.maximize
    goal = 1 if maximize else -1
    wrong = [c for c, k in zip(objective.columns, objective.coefficients) if metric_sense(c) * goal * np.sign(k) < 0]
    if not wrong:
        return None
    kind = "a loss" if metric_sense(wrong[0]) < 0 else "a score"
    more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
    return (f"target {objective.spec!r}: {wrong[0]!r} looks like {kind} but the objective "
            f"{'maximizes' if maximize else 'minimizes'} it{more}; "
            f"flip its sign or {'drop' if maximize else 'add'} --maximize if that is not meant")


def _undirected(objective: Objective) -> list[str]:
    """A warning per ``family(...)`` without a stated direction, beside other terms, whose members' names say
    neither way: they count in the objective's direction, which the other terms may not share (``mmlu_*``
    minimised beside ``bpb_*``)."""
    notes = []
    for key, cols in objective.families:
        unknown = [c for c in cols if metric_sense(c) == 0]
        if ";" in key or not unknown or set(objective.columns) <= set(cols):
            continue
        other, way = ("lower", "maximized") if objective.maximize else ("higher", "minimized")
        notes.append(f"target {objective.spec!r}: {key}: {len(unknown)} of its columns ({', '.join(unknown[:4])}"
                     f"{', ...' if len(unknown) > 4 else ''}) have names that say neither higher nor lower is "
                     f"better, so they count as the objective does ({way}); write {key[:-1]}; {other}) if {other} "
                     "is better for them")
    return notes


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
    rest = f"{m['kind']}({m['glob']})" if m["glob"] else m["col"].strip()
    return f"{coef!r}*{rest}" + (f":{m['weight']}" if m["weight"] is not None else "")


class _TableMetrics:
    """What :func:`parse_objective` reads of a run table (metric columns, one checked column, the file),
    for a plain table such as ``laws fit``'s or ``filter --runs``'s."""

    def __init__(self, frame: pd.DataFrame, source: str) -> None:
        self.frame, self.source = frame, source
        self.metric_columns = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]

    def describe_row(self, i: int) -> str:
        """Row ``i`` as messages name it (1-based data row)."""
        return f"row {i + 1}"

    def metric(self, column: str) -> np.ndarray:
        if column not in self.frame.columns:
            raise ValidationError(f"{self.source}: no column {column!r} (columns: "
                                  f"{', '.join(map(str, self.frame.columns))})")
        values = pd.to_numeric(self.frame[column], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ValidationError(f"{self.source}: row {int(bad[0]) + 1}, column {column!r}: "
                                  f"{show_cell(self.frame[column].iloc[int(bad[0])])} is not a finite number")
        return values


def with_objective_column(frame: pd.DataFrame, spec: str, source: str) -> pd.DataFrame:
    """``frame`` with a column named ``spec`` holding the objective ``spec``: a column (then ``frame`` is
    returned as it is, and the caller checks that column row by row), or a weighted sum of columns such as
    ``'0.5*err_a + 0.5*err_b'`` or ``'mean(err_*)'`` (the ``--target`` of every command)."""
    if spec in frame.columns:
        return frame
    table = _TableMetrics(frame, source)
    return frame.assign(**{spec: parse_objective(spec, table).values(table)})  # type: ignore[arg-type]
