r"""How much to filter, by compute: the best keep-fraction of a quality-bucketed pool at each budget.

"Keep the top 10%" is right for a small run and wrong for a large one: the best data loses its value
when repeated (Goyal et al., CVPR 2024, "Scaling Laws for Data Filtering — Data Curation cannot be
Compute Agnostic", arXiv 2404.07177; code ``locuslab/scaling_laws_data_filtering``). With a pool cut
into buckets by a score (:mod:`mixplan.data.buckets`) and each bucket's QQT parameters — utility
:math:`b` and half-life :math:`\tau` in passes, with a shared scale :math:`a` and irreducible error
:math:`d` — the error of training on the union of the :math:`k` best buckets for :math:`n` samples is
the QQT union law (:func:`mixplan.laws.qqt.qqt_union_error`), and the best keep-fraction at a budget is
the :math:`k` with the lowest predicted error (the authors' ``estimate_best_buckets``).

Two choices of mixplan's, both equal to the authors' procedure on their data:

* **Unions follow the score.** The candidates are the top-:math:`k` buckets *by score* (a keep
  threshold), not the :math:`k` lowest :math:`b` (the authors sort by :math:`b`; on their deciles
  the two orders agree). A fit whose :math:`b` is not monotone in score order is flagged.
* **Unequal buckets** (e.g. top 10/20/30/50%) are mixed as whole multiples of the smallest bucket
  (:meth:`mixplan.data.buckets.BucketSpec.units`): a bucket twice as large is two equal pools with the same
  parameters in the uniform mixture. With equal buckets this is exactly the published law.

Uncertainty: when the parameters come from :func:`fit_buckets` (bootstrap refits per bucket, from
:func:`mixplan.laws.fitting.fit_law`), every bootstrap draw is pushed through the union law, giving
each prediction a percentile interval and each budget the probability that the chosen union is best.
Published constants have no intervals; the plan says so.

Functions here are pure (data in, results out); :mod:`mixplan.cli.filter` is the command line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._checks import check_number, show_cell
from .._io import read_json, saved_artefact, write_json_atomic
from ..data.buckets import LAW_DEFAULTS, BucketSpec
from ..data.objective import with_objective_column
from ..exceptions import ValidationError
from ..laws.fitting import fit_law
from ..laws.qqt import QQT_NORMALIZER, QQT_OBJECTIVES, QQTBestUnion, qqt_law, qqt_union_error, rank_unions

__all__ = ["BucketFit", "FilterFit", "FilterPlan", "fit_buckets", "load_fit", "plan_filter", "union_errors",
           "FIT_KIND", "A_GRID", "D_GRID"]

FIT_KIND = "mixplan.filter_fit"
#: Shared ``a`` and ``d`` scanned when freed (the authors' ``ablations/finding_a.py`` in
#: ``locuslab/scaling_laws_data_filtering``; Goyal et al. 2024, arXiv 2404.07177).
A_GRID: tuple[float, ...] = (0.01, 0.015, 0.018, 0.02, 0.022, 0.025, 0.03)
D_GRID: tuple[float, ...] = tuple(float(x) for x in np.linspace(0.02, 0.15, 10))
# Relative error of a union run's prediction above which the fit report warns: about twice the
# noise of single runs in the authors' setting; larger misses mean the union law does not hold here.
_UNION_CHECK_WARN = 0.05


# ----------------------------------------------------------------------------------------------------
# The union law over buckets
# ----------------------------------------------------------------------------------------------------

def union_errors(budgets: Any, sizes: Sequence[float], units: Sequence[int], a: float, b: Sequence[float],
                 tau: Sequence[float], d: float, *, objective: str = "effective_utility",
                 tau_scaling: bool = True, ks: Sequence[int] | None = None) -> np.ndarray:
    """Predicted error of the union of the ``k`` best buckets at each budget: shape (len(budgets), len(ks)).

    ``sizes`` are the buckets' sizes (best first), ``units`` each size as a whole multiple of the
    smallest (:meth:`BucketSpec.units`). Union ``k`` is :func:`qqt_union_error` over ``sum(units[:k])``
    equal pools of ``sum(sizes[:k]) / sum(units[:k])`` samples, bucket ``i`` repeated ``units[i]`` times.
    """
    sizes, units = np.asarray(sizes, dtype=float), np.asarray(units, dtype=int)
    b, tau = np.asarray(b, dtype=float), np.asarray(tau, dtype=float)
    ks = range(1, len(sizes) + 1) if ks is None else ks
    n = np.atleast_1d(np.asarray(budgets, dtype=float))
    return np.column_stack([_union_error_of(range(k), n, sizes[:k].sum(), units, a, b, tau, d, objective, tau_scaling)
                            for k in ks])


def _union_error_of(members, n, S, units, a, b, tau, d, objective, tau_scaling=True) -> np.ndarray:
    """Union-law error of any set of buckets (``members``), of total size ``S``, after ``n`` samples: the
    buckets as ``sum(units[members])`` equal pools, bucket ``i`` repeated ``units[i]`` times."""
    m = list(members)
    u = units[m]
    return qqt_union_error(n, S / u.sum(), a, np.repeat(b[m], u), np.repeat(tau[m], u), d, objective=objective,
                           tau_scale_with_pool_count=tau_scaling)


# ----------------------------------------------------------------------------------------------------
# Fitting each bucket from the user's runs
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BucketFit:
    """One bucket's fitted (b, tau): values, bootstrap intervals, refits and the fitter's warnings."""

    name: str
    b: float
    tau: float
    intervals: dict[str, tuple[float, float]]
    n_points: int
    objective_value: float
    converged: bool
    warnings: list[str]
    bootstrap: np.ndarray | None  # (R, 2): b, tau of the refits

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "b": self.b, "tau": self.tau,
                "intervals": {k: list(v) for k, v in self.intervals.items()}, "n_points": self.n_points,
                "huber_objective": self.objective_value, "converged": self.converged, "warnings": self.warnings,
                "bootstrap": None if self.bootstrap is None else self.bootstrap.tolist()}


@dataclass(frozen=True)
class FilterFit:
    """Fitted QQT parameters of a pool's buckets (``FIT.json``)."""

    pool: str
    objective: str
    a: float
    d: float
    fixed: tuple[str, ...]
    unit: str
    buckets: tuple[BucketFit, ...]
    level: float
    warnings: list[str] = field(default_factory=list)
    union_checks: list[dict[str, Any]] = field(default_factory=list)
    metric: str = ""
    source: str = ""

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.buckets]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": FIT_KIND, "version": 1, "pool": self.pool, "objective": self.objective, "a": self.a,
                "d": self.d, "fixed": list(self.fixed), "unit": self.unit, "level": self.level,
                "metric": self.metric, "source": self.source, "warnings": self.warnings,
                "union_checks": self.union_checks, "buckets": [b.to_dict() for b in self.buckets]}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: str = "FIT.json") -> "FilterFit":
        if not isinstance(doc, Mapping) or doc.get("kind") != FIT_KIND:
            raise ValidationError(f"{where}: not a filter fit (expected \"kind\": \"{FIT_KIND}\"); write one with "
                                  "'mixplan filter --pools POOLS --runs RUNS --target COL --out DIR'")
        with saved_artefact(where, "filter fit", "rewrite it with 'mixplan filter --runs' (a fit holds pool, "
                            "objective, a, d and buckets with name, b, tau)"):
            buckets = tuple(BucketFit(
                name=str(b["name"]), b=float(b["b"]), tau=float(b["tau"]),
                intervals={k: (float(v[0]), float(v[1])) for k, v in b.get("intervals", {}).items()},
                n_points=int(b.get("n_points", 0)), objective_value=float(b.get("huber_objective", float("nan"))),
                converged=bool(b.get("converged", True)), warnings=list(b.get("warnings", [])),
                bootstrap=(None if b.get("bootstrap") is None
                           else np.asarray(b["bootstrap"], dtype=float).reshape(-1, 2)))
                for b in doc["buckets"])
            fit = cls(pool=str(doc["pool"]), objective=str(doc["objective"]), a=float(doc["a"]), d=float(doc["d"]),
                      fixed=tuple(doc.get("fixed", ())), unit=str(doc.get("unit", "tokens")), buckets=buckets,
                      level=float(doc.get("level", 0.95)), warnings=list(doc.get("warnings", [])),
                      union_checks=list(doc.get("union_checks", [])), metric=str(doc.get("metric", "")),
                      source=str(doc.get("source", "")))
        if fit.objective not in QQT_OBJECTIVES:
            raise ValidationError(f"{where}: objective {fit.objective!r} is not one of {list(QQT_OBJECTIVES)}")
        return fit

    def save(self, path: str | Path, *, force: bool = False) -> Path:
        """Write the fit as JSON (``FIT.json``); read by :meth:`load`."""
        write_json_atomic(path, self.to_dict(), force=force)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> FilterFit:
        """A fit written by :meth:`save`."""
        doc = read_json(path, "a FIT.json from 'mixplan filter --runs ... --out DIR'", "not a filter fit")
        return cls.from_dict(doc, str(path))

    def report(self) -> str:
        fixed = ", ".join(f"{k} = {getattr(self, k):g} ({'fixed' if k in self.fixed else 'fitted by a grid scan'})"
                          for k in ("a", "d"))
        lines = [f"QQT {self.objective} fit of pool {self.pool!r}'s buckets ({self.metric or 'metric'}; {fixed})",
                 f"{'bucket':>14} {'b':>10} {'tau':>9}  {int(round(100 * self.level))}% intervals (bootstrap)   points"]
        for bf in self.buckets:
            bi, ti = bf.intervals.get("b", (math.nan, math.nan)), bf.intervals.get("tau", (math.nan, math.nan))
            lines.append(f"{bf.name:>14} {bf.b:>10.4g} {bf.tau:>9.4g}  b [{bi[0]:.4g}, {bi[1]:.4g}]  "
                         f"tau [{ti[0]:.4g}, {ti[1]:.4g}]   {bf.n_points}")
        for c in self.union_checks:
            lines.append(f"union check {c['bucket']} at {c['samples']:.4g}: measured {c['measured']:.5g}, predicted "
                         f"{c['predicted']:.5g} ({100 * c['relative_error']:+.2f}%)")
        lines += [f"warning: {w}" for bf in self.buckets for w in (f"bucket {bf.name!r}: {x}" for x in bf.warnings)]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def load_fit(path: str | Path) -> FilterFit:
    """Read a ``FIT.json`` written by :meth:`FilterFit.save` (``mixplan filter --runs ... --out DIR``)."""
    return FilterFit.load(path)


def _column(frame: pd.DataFrame, names: Sequence[str]) -> str | None:
    return next((c for c in names if c in frame.columns), None)


def _runs_points(spec: BucketSpec, frame: pd.DataFrame, target: str, where: str):
    """Per row: bucket indices, samples seen, union size (law unit), metric, 1-based file row."""
    if "bucket" not in frame.columns:
        raise ValidationError(f"{where}: no 'bucket' column; each run names the bucket it trained on (e.g. top10) "
                              "or the union (e.g. top_20)")
    n_col = _column(frame, ("samples", "samples_seen", "tokens"))
    if n_col is None:
        raise ValidationError(f"{where}: no column of samples seen; name it 'samples' (or 'tokens')")
    size_col = _column(frame, ("pool_size", "unique_tokens", "unique_samples"))
    ep_col = "epochs" if "epochs" in frame.columns else None
    if target not in frame.columns:
        raise ValidationError(f"{where}: no column {target!r} (columns: {', '.join(map(str, frame.columns))})")
    sizes = spec.sizes()
    out = []
    for pos, (idx, row) in enumerate(frame.iterrows()):
        r = pos + 1  # data rows counted from 1, as mixplan.data.runs does
        at = f"{where}: row {r}, "
        members = spec.resolve(row["bucket"], f"{at}column 'bucket': ")
        n = check_number(row[n_col], f"{at}column {n_col!r}", lo=0.0, lo_open=True, coerce=True, why="samples seen")
        y = row[target]
        try:
            y = float(y)
        except (TypeError, ValueError):
            y = math.nan
        if not math.isfinite(y) or y <= 0:
            raise ValidationError(f"{at}column {target!r}: {show_cell(row[target])} must be a positive error or loss "
                                  "(lower is better; for an accuracy use 1 - accuracy)")
        if size_col is not None:
            S = check_number(row[size_col], f"{at}column {size_col!r}", lo=0.0, lo_open=True, coerce=True,
                             why="the pool size the run repeated")
        elif ep_col is not None:
            S = n / check_number(row[ep_col], f"{at}column 'epochs'", lo=0.0, lo_open=True, coerce=True,
                                 why="passes over the bucket(s)")
        else:
            S = float(sizes[list(members)].sum())
        out.append((members, n, S, y, r))
    return out


def fit_buckets(spec: BucketSpec, runs: pd.DataFrame, target: str, *, objective: str | None = None,
                free: Sequence[str] = (), a: float | None = None, d: float | None = None,
                a_grid: Sequence[float] = A_GRID, d_grid: Sequence[float] = D_GRID, n_bootstrap: int = 200,
                level: float = 0.95, seed: int = 0, n_starts: int = 5, delta: float = 1e-3,
                where: str = "runs") -> FilterFit:
    """Fit each bucket's utility ``b`` and half-life ``tau`` from runs on single buckets.

    ``runs`` has a ``bucket`` column (a bucket name, or a union ``top_20`` / ``a+b``), samples seen
    (``samples`` or ``tokens``), the size repeated (``pool_size`` / ``unique_tokens``, or ``epochs``;
    default: the bucket sizes of the manifest) and the ``target`` error (lower is better). Each bucket
    is fitted with the laws engine (:func:`fit_law` on :func:`qqt_law`, Huber on log-error, bootstrap
    intervals) with ``a`` and ``d`` shared and fixed, as the authors do: ``a``/``d`` given here, else the
    manifest's ``law`` table, else the authors' values. ``free`` ("a", "d") scans them on ``a_grid`` /
    ``d_grid`` (default the authors' grids :data:`A_GRID`, :data:`D_GRID` of ``finding_a.py``, made for
    ImageNet error: give grids on the scale of your metric) for the lowest total objective — the union
    law needs one shared ``a``. Runs on unions of several buckets are not fitted: they
    check the union law (``union_checks``: measured vs predicted).
    """
    objective = objective or spec.objective
    if objective not in QQT_OBJECTIVES:
        raise ValidationError(f"objective {objective!r} is not known; use one of {list(QQT_OBJECTIVES)}")
    bad = sorted(set(free) - {"a", "d"})
    if bad:
        raise ValidationError(f"--free {bad[0]}: only the shared a and d can be freed (b and tau are always fitted)")
    default_a = spec.a if "a" in spec.given or objective == spec.objective else LAW_DEFAULTS[objective]["a"]
    default_d = spec.d if "d" in spec.given or objective == spec.objective else LAW_DEFAULTS[objective]["d"]
    a0 = float(default_a if a is None else a)
    d0 = float(default_d if d is None else d)
    points = _runs_points(spec, with_objective_column(runs, target, where), target, where)
    per_bucket: list[list[tuple]] = [[] for _ in spec.buckets]
    unions = []
    for p in points:
        (per_bucket[p[0][0]] if len(p[0]) == 1 else unions).append(p)
    missing = [spec.buckets[i].name for i, pts in enumerate(per_bucket) if not pts]
    if missing:
        raise ValidationError(f"{where}: bucket {missing[0]!r} of pool {spec.pool!r} has no runs of its own; "
                              "each bucket's (b, tau) is fitted from runs on that bucket alone (the authors trained "
                              "each bucket for 2-10 epochs): add them")

    def data(pts):
        return ({"tokens": np.array([p[1] for p in pts]), "unique_tokens": np.array([p[2] for p in pts])},
                np.array([p[3] for p in pts]), [p[4] for p in pts])

    datas = [data(pts) for pts in per_bucket]  # (columns, metric, rows) per bucket

    warnings: list[str] = []
    if free:
        a_grid = tuple(a_grid) if "a" in free else (a0,)
        d_grid = tuple(d_grid) if "d" in free else (d0,)
        best = None
        for av in a_grid:
            for dv in d_grid:
                law = qqt_law(objective, a=av, d=dv)
                total = sum(fit_law(law, dd, y, n_bootstrap=0, n_starts=2, delta=delta, where=where,
                                    rows=rows).objective for dd, y, rows in datas)
                if best is None or total < best[0]:
                    best = (total, av, dv)
        _, a0, d0 = best
        for k, g, v in (("a", a_grid, a0), ("d", d_grid, d0)):
            if k in free and v in (g[0], g[-1]):
                warnings.append(f"the shared {k} = {v:g} is at the edge of its scan {g[0]:g}..{g[-1]:g}: the runs do "
                                f"not pin it down; fix it (a published value) or add runs inside the first pass")
        warnings.append("a and d were chosen by a grid scan; the bootstrap intervals of b and tau hold them at the "
                        "chosen values (they do not include their uncertainty)")
    law = qqt_law(objective, a=a0, d=d0)
    fits = []
    for i, (dd, y, rows) in enumerate(datas):
        f = fit_law(law, dd, y, n_bootstrap=n_bootstrap, level=level, seed=seed + i, n_starts=n_starts, delta=delta,
                    where=f"{where} (bucket {spec.buckets[i].name!r})", rows=rows)
        boot = None if f.bootstrap is None else f.bootstrap[:, [1, 2]]  # named order: a, b, tau, d
        fits.append(BucketFit(name=spec.buckets[i].name, b=f.params["b"], tau=f.params["tau"],
                              intervals={k: f.intervals[k] for k in ("b", "tau") if k in f.intervals},
                              n_points=f.n_points, objective_value=f.objective, converged=f.converged,
                              warnings=list(f.warnings), bootstrap=boot))
    n_min = min(float(np.min(dd["tokens"])) for dd, _, _ in datas)
    if a0 * n_min / QQT_NORMALIZER < 1:
        warnings.append(f"a = {a0:g} puts a*n/Z = {a0 * n_min / QQT_NORMALIZER:.3g} below 1 at the smallest run "
                        f"(n = {n_min:g}, Z = {QQT_NORMALIZER:g}): there a more negative b means a worse bucket and the "
                        f"union law's mean utility loses its meaning; give a >= {QQT_NORMALIZER / n_min:.3g} (--free a "
                        "with a grid in that range, or the law table's a)")
    bs = np.array([f.b for f in fits])
    if len(bs) > 1 and np.any(np.diff(bs) < 0):
        warnings.append(f"the fitted utilities b = {np.round(bs, 4).tolist()} are not increasing from the best bucket "
                        f"down: a lower-scored bucket looks more useful, so the {spec.score!r} order may not be a "
                        "quality order (keep-thresholds still follow the score)")
    checks = []
    if unions:
        units, taus = spec.units(), np.array([f.tau for f in fits])
        for members, n, S, y, r in unions:
            pred = float(_union_error_of(members, n, S, units, a0, bs, taus, d0, objective)[()])
            rel = pred / y - 1
            checks.append({"row": r, "bucket": "+".join(spec.buckets[i].name for i in members), "samples": n,
                           "pool_size": S, "measured": y, "predicted": float(pred), "relative_error": float(rel)})
        worst = max(checks, key=lambda c: abs(c["relative_error"]))
        if abs(worst["relative_error"]) > _UNION_CHECK_WARN:
            warnings.append(f"the union law misses run row {worst['row']} ({worst['bucket']}) by "
                            f"{100 * worst['relative_error']:+.1f}%: the buckets do not combine as the QQT union law "
                            "says here; trust unions that were measured over predicted ones")
    return FilterFit(pool=spec.pool, objective=objective, a=a0, d=d0,
                     fixed=tuple(k for k in ("a", "d") if k not in free), unit=spec.unit, buckets=tuple(fits),
                     level=level, warnings=warnings, union_checks=checks, metric=target, source=where)


# ----------------------------------------------------------------------------------------------------
# Planning: the best keep-fraction per budget
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FilterPlan:
    """The best union of buckets (keep-fraction) per budget, with runner-up, margin and crossovers.

    ``result`` holds the grid (``QQTBestUnion``: ``errors[i, k-1]`` is union ``k`` at ``budgets[i]``,
    ``order`` the bucket names best first). ``lower``/``upper`` are percentile intervals of the errors
    over the bootstrap draws and ``p_best[i]`` the share of draws in which the chosen union is best
    (all NaN without a fit). ``crossovers`` adds to each grid switch the refined budget (bisection
    between the two grid points on the two unions' curves).
    """

    spec: BucketSpec
    result: QQTBestUnion
    lower: np.ndarray
    upper: np.ndarray
    p_best: np.ndarray
    crossovers: tuple[dict[str, Any], ...]
    objective: str
    tau_scaling: bool
    a: float
    d: float
    b: np.ndarray
    tau: np.ndarray
    level: float
    params_source: str
    notes: list[str]
    thresholds: tuple[dict[str, Any], ...] = ()

    @property
    def labels(self) -> list[str]:
        return [self.spec.union_label(k) for k in range(1, len(self.spec.buckets) + 1)]

    def best_table(self) -> pd.DataFrame:
        r, rows = self.result, np.arange(len(self.result.budgets))
        lab = self.labels
        best = r.best - 1
        ru = np.where(r.runner_up > 0, r.runner_up - 1, 0)
        return pd.DataFrame({
            "budget": r.budgets, "best": [lab[k] for k in best], "best_buckets": r.best,
            "keep_fraction": [self.spec.keep_fraction(k + 1) for k in best],
            "predicted": r.errors[rows, best], "lower": self.lower[rows, best], "upper": self.upper[rows, best],
            "p_best": self.p_best,
            "runner_up": [lab[k] if r.runner_up[i] > 0 else "" for i, k in enumerate(ru)],
            "runner_up_predicted": np.where(r.runner_up > 0, r.errors[rows, ru], np.nan), "margin": r.margin})

    def curve_table(self) -> pd.DataFrame:
        """Long table budget x choice -> predicted metric (and interval): for plotting."""
        r, lab = self.result, self.labels
        B, K = r.errors.shape
        return pd.DataFrame({
            "budget": np.repeat(r.budgets, K), "choice": lab * B, "buckets": np.tile(np.arange(1, K + 1), B),
            "keep_fraction": [self.spec.keep_fraction(k) for k in range(1, K + 1)] * B,
            "predicted": r.errors.ravel(), "lower": self.lower.ravel(), "upper": self.upper.ravel(),
            "best": (r.best[:, None] == np.arange(1, K + 1)[None, :]).ravel()})

    def to_dict(self) -> dict[str, Any]:
        best = self.best_table()
        return {"pool": self.spec.pool, "score": self.spec.score, "objective": self.objective,
                "tau_scaling": self.tau_scaling, "unit": self.spec.unit, "a": self.a, "d": self.d,
                "level": self.level, "params_source": self.params_source, "notes": self.notes,
                "buckets": [{"name": bk.name, "top": bk.top, "cutoff": bk.cutoff, "size": float(s), "b": float(b),
                             "tau": float(t)}
                            for bk, s, b, t in zip(self.spec.buckets, self.spec.sizes(), self.b, self.tau)],
                "choices": self.labels,
                "budgets": [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                             for k, v in row.items()} for row in best.to_dict(orient="records")],
                "crossovers": list(self.crossovers), "thresholds": list(self.thresholds)}

    def report(self) -> str:
        lab = self.labels
        lines = [f"pool {self.spec.pool!r} bucketed by {self.spec.score!r}: choices {', '.join(lab)}; QQT "
                 f"{self.objective}, tau {'scaled' if self.tau_scaling else 'not scaled'} by the number of buckets; "
                 f"parameters: {self.params_source}",
                 f"{'budget':>12} {'best':>12} {'predicted':>10} {'interval':>21} {'P(best)':>8} "
                 f"{'runner-up':>12} {'margin':>9}"]
        for row in self.best_table().itertuples(index=False):
            iv = "" if not math.isfinite(row.lower) else f"[{row.lower:.4g}, {row.upper:.4g}]"
            pb = "" if not math.isfinite(row.p_best) else f"{row.p_best:.2f}"
            mg = "" if not math.isfinite(row.margin) else f"{row.margin:.3g}"
            lines.append(f"{row.budget:>12.4g} {row.best:>12} {row.predicted:>10.5g} {iv:>21} {pb:>8} "
                         f"{row.runner_up:>12} {mg:>9}")
        if self.crossovers:
            lines.append("crossovers (the best choice changes):")
            for c in self.crossovers:
                lines.append(f"  {c['from']} -> {c['to']} at about {c['refined']:.4g} (grid: first at "
                             f"{c['budget']:.4g}, after {c['previous_budget']:.4g})")
        else:
            lines.append("no crossover: the same choice is best at every budget")
        for t in self.thresholds:
            if t["lower"] is not None or t["upper"] is not None or t["never"]:
                lo = "-" if t["lower"] is None else f"{t['lower']:.4g}"
                hi = "beyond the grid" if t["upper"] is None else f"{t['upper']:.4g}"
                at = "never on this grid" if t["budget"] is None else f"from {t['budget']:.4g}"
                lines.append(f"keep more than {t['beyond']}: {at}; {int(round(100 * self.level))}% interval "
                             f"[{lo}, {hi}] ({100 * t['never']:.0f}% of draws never on this grid)")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _refine(lo: float, hi: float, k_before: int, k_after: int, f) -> float:
    """Budget between ``lo`` and ``hi`` where union ``k_after`` becomes better than ``k_before`` (bisection
    in log budget on the sign of their difference; the grid says it changes in between)."""
    def diff(x):
        e = f(x, [k_before, k_after])
        return e[0, 1] - e[0, 0]
    a, b = math.log(lo), math.log(hi)
    if diff(lo) <= 0 or diff(hi) > 0:  # a third union in between, or a tie: keep the grid point
        return hi
    for _ in range(50):
        m = 0.5 * (a + b)
        if diff(math.exp(m)) <= 0:
            b = m
        else:
            a = m
    return math.exp(b)


def _first_beyond(n: np.ndarray, best: np.ndarray, k: int) -> np.ndarray:
    """First grid budget at which the best union keeps more than ``k`` buckets (inf if none); ``best``
    is (B,) or (R, B)."""
    more = best > k
    return np.where(more.any(axis=-1), n[np.argmax(more, axis=-1)], np.inf)


def _thresholds(spec: BucketSpec, n: np.ndarray, best: np.ndarray, draws: np.ndarray | None,
                level: float) -> tuple[dict[str, Any], ...]:
    """Per k: the first budget where keeping more than the k best buckets is best, with a percentile
    interval over the bootstrap draws (grid resolution). Robust where two unions nearly tie and the
    best flips back and forth: it asks only when to stop filtering at top-k."""
    out = []
    for k in range(1, len(spec.buckets)):
        x = float(_first_beyond(n, best, k))
        row = {"beyond": spec.union_label(k), "buckets": k, "budget": x if math.isfinite(x) else None,
               "lower": None, "upper": None, "never": 0.0}
        if draws is not None:
            xs = _first_beyond(n, draws, k)
            # "never" as a finite sentinel above the grid: quantiles of inf are NaN.
            big = float(n[-1]) * 10
            lo, hi = np.quantile(np.where(np.isfinite(xs), xs, big), [(1 - level) / 2, (1 + level) / 2])
            lo, hi = (math.inf if v >= big else v for v in (lo, hi))
            row |= {"lower": float(lo) if math.isfinite(lo) else None,
                    "upper": float(hi) if math.isfinite(hi) else None, "never": float(np.mean(~np.isfinite(xs)))}
        out.append(row)
    return tuple(out)


def plan_filter(spec: BucketSpec, budgets: Any, *, fit: FilterFit | None = None, objective: str | None = None,
                tau_scaling: bool = True, level: float = 0.95, max_draws: int = 100) -> FilterPlan:
    """The best keep-fraction of ``spec``'s pool at each budget (samples or tokens seen, ``spec.unit``).

    Parameters come from ``fit`` (:func:`fit_buckets`; intervals from its bootstrap refits, at most
    ``max_draws`` of them) or else from the manifest's per-bucket ``b``/``tau`` (published constants:
    no intervals). ``objective`` defaults to the fit's, else the manifest's; a fit is only valid for the
    objective it was made with. ``budgets`` must be positive; they are sorted (and duplicates dropped)
    so that crossovers are ordered.
    """
    n = np.atleast_1d(np.asarray(budgets, dtype=float))
    if n.ndim != 1 or n.size == 0:
        raise ValidationError("budgets: give at least one budget (samples or tokens seen)")
    bad = np.flatnonzero(~np.isfinite(n) | (n <= 0))
    if len(bad):
        raise ValidationError(f"budget {float(n[bad[0]])!r} must be a positive number of {spec.unit} seen; pass "
                              "budgets > 0, e.g. --budget 1e8,1e9")
    n = np.unique(n)
    notes: list[str] = []
    if fit is not None:
        if fit.names != spec.names:
            raise ValidationError(f"{fit.source or 'FIT.json'}: its buckets {fit.names} are not pool {spec.pool!r}'s "
                                  f"buckets {spec.names}; refit with this manifest, or plan with the manifest it was "
                                  "made with")
        if objective is not None and objective != fit.objective:
            raise ValidationError(f"--objective {objective}: the fit was made for {fit.objective!r}; b and tau mean "
                                  "different things in the two laws: refit with this objective or drop --objective")
        objective, a, d = fit.objective, fit.a, fit.d
        b = np.array([bf.b for bf in fit.buckets])
        tau = np.array([bf.tau for bf in fit.buckets])
        source = f"fitted ({fit.source or 'FIT.json'}; {fit.metric or 'metric'})"
        notes += fit.warnings
    else:
        objective = objective or spec.objective
        missing = [bk.name for bk in spec.buckets if bk.b is None]
        if missing:
            raise ValidationError(f"{spec.where}pool {spec.pool!r}, bucket {missing[0]!r}: no b and tau; give them in "
                                  "the manifest (e.g. from a paper) or fit them from runs (--runs RUNS --target COL, "
                                  "or --fit FIT.json)")
        if objective != spec.objective:
            raise ValidationError(f"--objective {objective}: the manifest's b and tau are for {spec.objective!r} "
                                  "([pools.X.law] objective); they do not transfer between the two laws")
        a, d = spec.a, spec.d
        b = np.array([bk.b for bk in spec.buckets])
        tau = np.array([bk.tau for bk in spec.buckets])
        source = "the manifest's constants"
        notes.append("parameters are constants from the manifest (e.g. published): predictions have no intervals; "
                     "fit them from your runs (--runs) for intervals")
    if fit is None and len(b) > 1 and np.any(np.diff(b) < 0):  # a fit already warns about it
        notes.append(f"b = {np.round(b, 4).tolist()} is not increasing from the best-scored bucket down; unions still "
                     "follow the score (a keep-threshold), unlike the authors' sort by b")
    sizes, units = spec.sizes(), spec.units()
    if np.any(units > 1):
        notes.append(f"buckets of unequal size are mixed as {units.tolist()} equal parts (mixplan's extension of the "
                     "union law; exact for equal buckets)")

    def errors(x, ks=None, bb=b, tt=tau):
        return union_errors(x, sizes, units, a, bb, tt, d, objective=objective, tau_scaling=tau_scaling, ks=ks)

    E = errors(n)
    result = rank_unions(n, spec.names, E)
    best = result.best
    switch = np.flatnonzero(best[1:] != best[:-1]) + 1
    crossovers = tuple({"budget": x, "previous_budget": float(n[i - 1]), "from": spec.union_label(kb),
                        "to": spec.union_label(ka), "from_buckets": kb, "to_buckets": ka,
                        "refined": _refine(float(n[i - 1]), x, kb, ka, errors)}
                       for (x, kb, ka), i in zip(result.crossovers, switch))
    lower = np.full_like(E, np.nan)
    upper = np.full_like(E, np.nan)
    p_best = np.full(len(n), np.nan)
    draw_best = None  # best union (k) per bootstrap draw and budget
    if fit is not None:
        boots = [bf.bootstrap for bf in fit.buckets]
        if any(bt is None or len(bt) < 2 for bt in boots):
            notes.append("the fit has no bootstrap refits: no intervals (refit with --bootstrap > 1)")
        else:
            R = min(max_draws, min(len(bt) for bt in boots))
            # Bucket fits are independent, so pairing their r-th refits is a draw from the joint.
            draws = np.stack([errors(n, None, np.array([bt[r, 0] for bt in boots]),
                                     np.array([bt[r, 1] for bt in boots])) for r in range(R)])
            q = [(1 - level) / 2, (1 + level) / 2]
            lower, upper = np.quantile(draws, q[0], axis=0), np.quantile(draws, q[1], axis=0)
            draw_best = np.argmin(draws, axis=2) + 1
            p_best = np.mean(draw_best == best[None, :], axis=0)
            notes.append(f"intervals: {int(round(100 * level))}% of {R} bootstrap refits per bucket pushed through the "
                         "union law; P(best) is the share of them in which the chosen union is best")
    thresholds = _thresholds(spec, n, best, draw_best, level)
    return FilterPlan(spec=spec, result=result, lower=lower, upper=upper, p_best=p_best, crossovers=crossovers,
                      objective=objective, tau_scaling=tau_scaling, a=a, d=d, b=b, tau=tau, level=level,
                      params_source=source, notes=notes, thresholds=thresholds)
