r"""Which rating to filter by: from proxy runs that filtered a pool by different scores, the score (or
weighted composite of scores) that predicts the target best, with cross-validated evidence.

A pool's documents may carry several ratings (``mixplan scan``'s ``scores``; DataMan's 14 quality
criteria and overall score). A proxy run kept the top ``keep`` fraction of the documents by a *score
spec* :math:`s` -- a column, or a composite such as ``0.6*dclm + 0.4*fasttext`` -- and measured the
target :math:`y` (lower is better). Two levels of evidence, :func:`fit_ratings`:

(i) **Curves** (always). Per spec, :math:`y_s(k) = c_0 + c_1 u + c_2 u^2 [+ c_3 \log T]` with
    :math:`u = \log k` (the degree drops with fewer distinct keeps; :math:`\log T` when the runs' token
    budgets :math:`T` differ), fitted to the runs that filtered by :math:`s`; runs at ``keep = 1`` kept
    every document whatever their spec, so they belong to every curve. Ridge with its penalty chosen
    by (exact) leave-one-out; the CV error is nested leave-one-out. The spec with the lowest predicted
    best target :math:`\min_k y_s(k)` over the measured keeps is chosen; P(best) is the share of
    residual-bootstrap refits (the pooled leave-one-out residuals added to the fitted values) in which
    it stays lowest.

(ii) **Documents** (given the documents' scores). Each score column :math:`j` is put on one scale, the
    rank-based normal scores :math:`z_j`, and a run is described by its kept set's means
    :math:`x_j = \overline{z_j}` (the top ``keep`` of the documents by its spec). The target is modelled as

    .. math:: y = c + \sum_j \beta_j x_j + g(u, \log T).

    As the :math:`x_j` are means over the kept set, :math:`\sum_j \beta_j x_j` is the kept set's mean of
    the composite :math:`\sum_j \beta_j z_j`: under the model the best documents to keep, at any fraction,
    are the top ones by the composite with weights :math:`w_j = -\beta_j`. Candidates, compared on the
    same repeated K-fold splits: each single score (its :math:`x_j` and :math:`g`), each composite spec a
    run used (its fixed weights), the composite learned over all the scores (ridge, penalty by inner
    leave-one-out) and, as a reference, :math:`g` alone. The learned composite is chosen only when its
    squared CV error is lower than the best given spec's by more than two paired standard errors (CV
    noise); P(best) is the share of bootstrap resamples of the runs (of their CV errors) in which the
    chosen candidate has the lowest error. The best keep is the chosen model's minimum over the measured
    keeps, for the documents kept by the chosen spec, at the runs' largest budget.

The documents table should be the pool the runs filtered (a uniform sample of it approximates the kept
sets). Scores are higher-is-better in specs: write ``-1*perplexity`` for a lower-is-better one.
Everything here is pure and deterministic given ``seed``; :mod:`mixplan.cli.filter` is the command line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._checks import check_number, show_cell
from .._stats import ridge_loo
from ..data.composite import (Composite, canonical_spec, composite_scores, normal_scores, numeric_column,
                              parse_composite)
from ..data.objective import with_objective_column
from ..exceptions import ValidationError

__all__ = ["Composite", "RatingCandidate", "RatingsFit", "RATINGS_KIND", "composite_scores", "fit_ratings",
           "is_ratings_table", "normal_scores", "parse_composite"]

RATINGS_KIND = "mixplan.ratings_fit"
#: Ridge penalties tried, relative to the number of runs (features standardised; the intercept is free).
_PENALTIES = np.logspace(-6, 2, 17)
#: Points of the keep grid (log-spaced between the smallest and largest measured keep, plus those keeps).
_GRID = 60
#: A spec's curve with fewer runs than this has at most one degree of freedom left for its CV.
_FEW_RUNS = 4
#: P(best) below this is reported as not decisive.
_DECISIVE = 0.8
#: The learned composite must beat the best given spec by this many paired standard errors (CV noise).
_NOISE_SE = 2.0
#: The document model needs at least this many runs (its CV has folds of about a fifth of them).
_MIN_DOCUMENT_RUNS = 6


# Score specs (a column or a weighted composite of columns: Composite, parse_composite, normal_scores,
# composite_scores) are mixplan.data.composite's: the manifest's bucketing score reads them too.

def is_ratings_table(columns: Sequence[str]) -> bool:
    """A runs table for :func:`fit_ratings` (``score`` and ``keep``, no ``bucket``), not a bucket table."""
    return "score" in columns and "keep" in columns and "bucket" not in columns


# ----------------------------------------------------------------------------------------------------
# Ridge with its penalty chosen by exact leave-one-out
# ----------------------------------------------------------------------------------------------------

def _ridge(X: np.ndarray, y: np.ndarray, penalties: Any = _PENALTIES) -> tuple[float, np.ndarray, float]:
    """Intercept, coefficients (on the raw features) and the relative penalty chosen among ``penalties`` (times
    the number of rows, on standardised features) by exact leave-one-out (:func:`mixplan._stats.ridge_loo`).
    Constant features get 0; ties (within a relative 1e-12) go to the larger penalty."""
    n, p = X.shape
    coef = np.zeros(p)
    if p == 0 or n < 2:
        return float(np.mean(y)), coef, 0.0
    mu, sd = X.mean(axis=0), X.std(axis=0)
    ok = sd > 1e-12 * np.maximum(1.0, np.abs(mu))
    if not ok.any():
        return float(np.mean(y)), coef, 0.0
    order = sorted(map(float, np.atleast_1d(penalties)), reverse=True)
    fit = ridge_loo((X[:, ok] - mu[ok]) / sd[ok], y, [lam * n for lam in order], rtol=1e-12)
    coef[ok] = fit.beta / sd[ok]
    return float(np.mean(y)) - float(mu @ coef), coef, order[fit.index]


def _ridge_signed(X: np.ndarray, y: np.ndarray, m: int, penalties: Any = _PENALTIES
                  ) -> tuple[float, np.ndarray, float]:
    """:func:`_ridge` with the coefficients of the first ``m`` features (kept-set scores, oriented so that
    higher is better) held <= 0: a feature whose coefficient comes out positive is dropped (the largest
    first) and the rest refitted, until none is."""
    active = list(range(X.shape[1]))
    while True:
        b0, c, lam = _ridge(X[:, active], y, penalties)
        positive = [(v, a) for a, v in zip(active, c) if a < m and v > 0]
        if not positive:
            coef = np.zeros(X.shape[1])
            coef[active] = c
            return b0, coef, lam
        active.remove(max(positive)[1])


def _predict(model: tuple[float, np.ndarray, float], X: np.ndarray) -> np.ndarray:
    return model[0] + X @ model[1]


def _cv_errors(X: np.ndarray, y: np.ndarray, splits: Sequence[np.ndarray], m: int = 0
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per run, the held-out squared error and residual (measured - predicted) averaged over the splits it
    was held out in; each split's mean squared error. The penalty is chosen inside each training set
    (nested CV); the first ``m`` coefficients are held <= 0 (:func:`_ridge_signed`)."""
    n = len(y)
    total, resid, count, fold_mse = np.zeros(n), np.zeros(n), np.zeros(n), []
    for test in splits:
        train = np.setdiff1d(np.arange(n), test)
        r = y[test] - _predict(_ridge_signed(X[train], y[train], m), X[test])
        total[test] += r ** 2
        resid[test] += r
        count[test] += 1
        fold_mse.append(float(np.mean(r ** 2)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count, np.array(fold_mse), resid / count


def _cv_summary(fold_mse: np.ndarray) -> tuple[float, float]:
    """CV RMSE (the root of the folds' mean squared error: unbiased for the MSE, unlike the mean of the
    folds' RMSEs with folds of a few runs) and the sd over the folds of their RMSE."""
    if len(fold_mse) == 0 or not np.isfinite(fold_mse).all():
        return math.nan, math.nan
    sd = float(np.std(np.sqrt(fold_mse), ddof=1)) if len(fold_mse) > 1 else math.nan
    return math.sqrt(float(np.mean(fold_mse))), sd


# ----------------------------------------------------------------------------------------------------
# The runs
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Runs:
    y: np.ndarray
    keep: np.ndarray
    labels: list[str | None]  # canonical spec per run (None: an unfiltered run, keep = 1)
    specs: dict[str, Composite]  # label -> parsed spec, in order of first appearance
    tokens: np.ndarray | None
    tokens_column: str | None

    @property
    def budget(self) -> float | None:
        return None if self.tokens is None else float(self.tokens.max())


def _read_runs(frame: pd.DataFrame, target: str, where: str) -> _Runs:
    missing = [c for c in ("score", "keep") if c not in frame.columns]
    if missing:
        raise ValidationError(f"{where}: no {missing[0]!r} column; a ratings run names the score spec it filtered by "
                              "(score, e.g. dclm or '0.6*dclm + 0.4*fasttext') and the fraction of documents it kept "
                              f"(keep, in (0, 1]); columns are {list(map(str, frame.columns))}")
    frame = with_objective_column(frame, target, where)
    values = pd.to_numeric(frame[target], errors="coerce").to_numpy(dtype=float)
    t_col = next((c for c in ("tokens", "samples") if c in frame.columns), None)
    if len(frame) < 3:
        raise ValidationError(f"{where}: {len(frame)} run{'s' if len(frame) != 1 else ''}; comparing scores needs "
                              "runs filtered by each of them at several keep fractions (at least 3 runs)")
    y, keep, labels, specs, tokens = [], [], [], {}, []
    for pos, (_, row) in enumerate(frame.iterrows()):
        at = f"{where}: row {pos + 1}, "
        yv = values[pos]
        if not np.isfinite(yv):
            raise ValidationError(f"{at}column {target!r}: {show_cell(row[target])} is not a finite number (the "
                                  "target: an error or loss, lower is better)")
        k = check_number(row["keep"], f"{at}column 'keep'", lo=0.0, hi=1.0, lo_open=True, coerce=True,
                         why="the fraction of documents the run kept", fix="e.g. 0.2 for the top 20%")
        raw = row["score"]
        blank = raw is None or (isinstance(raw, float) and math.isnan(raw)) or not str(raw).strip()
        if blank:
            if k != 1.0:
                raise ValidationError(f"{at}column 'score': empty, but the run kept {k:g} of the documents; name the "
                                      "score spec it filtered by (only an unfiltered run, keep = 1, may leave it "
                                      "empty)")
            label = None
        else:
            comp = parse_composite(str(raw), None, at + "column 'score': ")
            label = comp.spec
            specs.setdefault(label, comp)
        if t_col is not None:
            tokens.append(check_number(row[t_col], f"{at}column {t_col!r}", lo=0.0, lo_open=True, coerce=True,
                                       why="tokens (or samples) the run trained on"))
        y.append(float(yv))
        keep.append(k)
        labels.append(label)
    y_arr = np.array(y)
    if np.ptp(y_arr) == 0:
        raise ValidationError(f"{where}: the target {target!r} is {y_arr[0]:g} in every run; nothing tells the scores "
                              "apart")
    return _Runs(y=y_arr, keep=np.array(keep), labels=labels, specs=specs,
                 tokens=np.array(tokens) if t_col is not None else None, tokens_column=t_col)


def _keep_grid(keeps: np.ndarray) -> np.ndarray:
    """Keeps between the smallest and largest measured one (log-spaced), and the measured ones."""
    lo, hi = float(keeps.min()), float(keeps.max())
    inner = np.geomspace(lo, hi, _GRID)[1:-1] if hi > lo else np.zeros(0)
    return np.unique(np.r_[inner, keeps])


def _keep_terms(u: np.ndarray, log_t: np.ndarray | None, degree: int) -> np.ndarray:
    cols = [u ** (d + 1) for d in range(degree)] + ([log_t] if log_t is not None else [])
    return np.column_stack(cols) if cols else np.zeros((len(u), 0))


# ----------------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RatingCandidate:
    """One candidate of one level: a score spec (or the keep-only reference), its CV error (RMSE over the
    held-out folds: mean and sd), its predicted best target and keep, and P(best)."""

    name: str
    kind: str  # "score", "composite" (a spec the runs used), "learned composite", "keep only"
    level: str  # "curves" or "documents"
    runs: int
    cv_rmse: float
    cv_rmse_sd: float
    folds: int
    cv_mse: float  # mean over the runs of their held-out squared error
    predicted_best: float
    best_keep: float
    p_best: float
    weights: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "level": self.level, "runs": self.runs,
                "cv_rmse": _finite(self.cv_rmse), "cv_rmse_sd": _finite(self.cv_rmse_sd), "folds": self.folds,
                "cv_mse": _finite(self.cv_mse), "predicted_best": _finite(self.predicted_best),
                "best_keep": _finite(self.best_keep), "p_best": _finite(self.p_best), "weights": self.weights}


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


@dataclass(frozen=True)
class RatingsFit:
    """Which score spec to filter by (:func:`fit_ratings`): the choice, the evidence of both levels, the best
    keep at the runs' budget and warnings. ``level`` says which level chose (``documents`` when a
    documents table was given, else ``curves``)."""

    target: str
    source: str
    documents: str | None
    n_runs: int
    n_documents: int | None
    level: str
    chosen: str
    chosen_kind: str
    best_keep: float
    predicted_best: float
    p_best: float
    budget: float | None
    budget_column: str | None
    runner_up: str | None
    margin: dict[str, Any]
    candidates: tuple[RatingCandidate, ...]
    curve: pd.DataFrame
    seed: int
    folds: int | None  # of the document model's CV (None: curves only, leave-one-out)
    repeats: int
    n_bootstrap: int
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def candidates_table(self) -> pd.DataFrame:
        rows = []
        for c in self.candidates:
            d = c.to_dict()
            d["weights"] = "" if not c.weights else " ".join(f"{k}={v:.4g}" for k, v in c.weights.items())
            d["chosen"] = c.level == self.level and c.name == self.chosen
            rows.append(d)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": RATINGS_KIND, "version": 1, "target": self.target, "source": self.source,
                "documents": self.documents, "runs": self.n_runs, "n_documents": self.n_documents,
                "level": self.level, "chosen": self.chosen, "chosen_kind": self.chosen_kind,
                "best_keep": _finite(self.best_keep), "predicted_best": _finite(self.predicted_best),
                "p_best": _finite(self.p_best), "budget": self.budget, "budget_column": self.budget_column,
                "runner_up": self.runner_up,
                "margin": {k: (_finite(v) if isinstance(v, float) else v) for k, v in self.margin.items()},
                "candidates": [c.to_dict() for c in self.candidates], "seed": self.seed, "folds": self.folds,
                "repeats": self.repeats, "bootstrap": self.n_bootstrap, "warnings": self.warnings,
                "notes": self.notes, "curve": self.curve.to_dict(orient="records")}

    def report(self) -> str:
        at = "" if self.budget is None else f" at {self.budget:.4g} {self.budget_column}"
        how = (f"document model over {self.n_documents} documents of {self.documents}; {self.folds}-fold CV x "
               f"{self.repeats}" if self.level == "documents" else "curves per spec, leave-one-out")
        lines = [f"ratings: which score to filter by, from {self.n_runs} runs of {self.source} (target "
                 f"{self.target!r}, lower is better)",
                 f"chosen: {self.chosen!r} ({self.chosen_kind}; {how}); best keep {self.best_keep:.3g}{at}, predicted "
                 f"{self.predicted_best:.5g}; P(best) "
                 + (f"{self.p_best:.2f}" if math.isfinite(self.p_best) else "- (no bootstrap)")]
        m = self.margin
        if self.runner_up is not None and self.level == "documents":
            z = m["paired_se"]
            how = (f"lower by {z:.1f} paired SE over the runs" if z >= 0 else
                   f"higher by {-z:.1f} paired SE over the runs, within CV noise: the simpler spec is kept")
            lines.append(f"  CV RMSE {m['chosen_cv_rmse']:.4g} vs {m['runner_up_cv_rmse']:.4g} for {self.runner_up!r} "
                         f"(next); its squared error is {how}")
        elif self.runner_up is not None:
            lines.append(f"  predicted best {self.predicted_best:.5g} vs {m['runner_up_best']:.5g} for "
                         f"{self.runner_up!r} (next): {m['difference']:.4g} better (bootstrap sd {m['sd']:.2g})")
        for level, title in (("documents", "document model: y = c + sum_j beta_j mean_kept(z_j) + g(keep, tokens); "
                              "curves under the chosen model"),
                             ("curves", "curves per spec: y(keep) from its own runs (and the unfiltered ones)")):
            cands = [c for c in self.candidates if c.level == level]
            if not cands:
                continue
            width = max(12, *(len(c.name) for c in cands))
            lines += [title, f"  {'candidate':<{width}} {'kind':<17} {'runs':>4} {'CV RMSE (± sd, folds)':>24} "
                             f"{'P(best)':>7} {'predicted best':>14} {'at keep':>7}"]
            for c in cands:
                cv = f"{c.cv_rmse:.4g} ± {c.cv_rmse_sd:.2g} ({c.folds})" if math.isfinite(c.cv_rmse) else "-"
                pb = f"{c.p_best:.2f}" if math.isfinite(c.p_best) else "-"
                pr = f"{c.predicted_best:.5g}" if math.isfinite(c.predicted_best) else "-"
                kp = f"{c.best_keep:.3g}" if math.isfinite(c.best_keep) else "-"
                mark = "*" if c.level == self.level and c.name == self.chosen else " "
                lines.append(f"{mark} {c.name:<{width}} {c.kind:<17} {c.runs:>4} {cv:>24} {pb:>7} {pr:>14} {kp:>7}")
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------
# Level (i): a curve per spec
# ----------------------------------------------------------------------------------------------------

def _few_runs_warning(label: str, n: int, distinct: int, degree: int, coefficients: int) -> str:
    """Why a spec's curve from ``n`` runs at ``distinct`` keeps (polynomial ``degree`` in log keep, plus a
    log-budget term when ``coefficients`` counts one) is weak evidence, and what runs would fix it."""
    shape = ("a constant", "a line", "a quadratic")[degree]
    why, need = [], []
    if degree < 2:  # a line or a constant has its minimum at an edge: it cannot show a best keep inside
        why.append("it cannot bend to show a best keep")
        need.append("runs at >= 3 keep fractions")
    if n < _FEW_RUNS:
        why.append(f"{n} run{'s' if n != 1 else ''} for its {coefficients} coefficients leave "
                   f"{max(n - coefficients, 0)} to check it")
        need.append(f">= {_FEW_RUNS} runs")
    return (f"score spec {label!r}: {n} run{'s' if n != 1 else ''} at {distinct} keep fraction"
            f"{'s' if distinct != 1 else ''} (counting the unfiltered ones): its curve is {shape} in log keep, and "
            f"{' and '.join(why)}; give it {' and '.join(need)} (an unfiltered run, keep = 1, counts for every spec)")


def _fit_curves(runs: _Runs, n_bootstrap: int, rng: np.random.Generator, warnings: list[str]):
    """Per spec: its curve, nested-LOO CV, predicted best (keep) and residual-bootstrap P(best)."""
    u = np.log(runs.keep)
    shared = runs.keep == 1.0
    labels = np.array([lb if lb is not None else "" for lb in runs.labels], dtype=object)
    log_t = None if runs.tokens is None else np.log(runs.tokens)
    fits = []
    for label in runs.specs:
        own = (labels == label) & ~shared
        if not own.any():
            warnings.append(f"score spec {label!r} has no run with keep < 1: nothing shows what filtering by it does; "
                            "it is left out")
            continue
        idx = np.flatnonzero(own | shared)
        distinct = len(np.unique(runs.keep[idx]))
        degree = min(2, distinct - 1)
        use_t = log_t is not None and len(np.unique(log_t[idx])) > 1
        lt = log_t[idx] if use_t else None
        X, y = _keep_terms(u[idx], lt, degree), runs.y[idx]
        if len(idx) < _FEW_RUNS or distinct < 3:
            warnings.append(_few_runs_warning(label, len(idx), distinct, degree, degree + 1 + use_t))
        model = _ridge(X, y)
        loo = (_cv_errors(X, y, [np.array([i]) for i in range(len(idx))]) if len(idx) >= 3
               else (np.full(len(idx), np.nan),) * 3)
        grid = _keep_grid(runs.keep[idx])
        G = _keep_terms(np.log(grid), None if lt is None else np.full(len(grid), math.log(runs.budget)), degree)
        curve = _predict(model, G)
        fits.append({"label": label, "idx": idx, "X": X, "G": G, "grid": grid, "curve": curve, "model": model,
                     "fitted": _predict(model, X), "loo": loo})
    if not fits:
        raise ValidationError("no run filtered anything (every keep is 1): run each score at keep fractions below 1")
    # Residual bootstrap: the pooled, centred leave-one-out residuals (honest, a little wide) added to each
    # curve's fitted values, one draw per run (an unfiltered run shared by the curves gets the same draw).
    pool = np.concatenate([f["loo"][2] for f in fits])
    pool = pool[np.isfinite(pool)]
    pool = pool - pool.mean() if pool.size else pool
    best = np.array([f["curve"].min() for f in fits])
    draws = np.full((n_bootstrap, len(fits)), np.nan)
    if pool.size >= 2 and n_bootstrap > 0:
        for b in range(n_bootstrap):
            e = rng.choice(pool, size=len(runs.y))
            for j, f in enumerate(fits):
                lam = f["model"][2]
                draws[b, j] = _predict(_ridge(f["X"], f["fitted"] + e[f["idx"]], [lam]), f["G"]).min()
    order = np.argsort(best, kind="stable")
    p_best = (np.bincount(np.argmin(draws, axis=1), minlength=len(fits)) / n_bootstrap
              if np.isfinite(draws).all() and n_bootstrap > 0 else np.full(len(fits), np.nan))
    cands = []
    for j, f in enumerate(fits):
        sq, fold, _ = f["loo"]
        rmse, sd = _cv_summary(fold)
        cands.append(RatingCandidate(
            name=f["label"], kind="score" if len(runs.specs[f["label"]].terms) == 1 else "composite", level="curves",
            runs=len(f["idx"]), cv_rmse=rmse, cv_rmse_sd=sd, folds=len(fold), cv_mse=float(np.mean(sq)),
            predicted_best=float(best[j]),
            best_keep=float(f["grid"][np.argmin(f["curve"])]), p_best=float(p_best[j])))
    margin: dict[str, Any] = {}
    runner = None
    if len(fits) > 1:
        c, r = int(order[0]), int(order[1])
        runner = fits[r]["label"]
        diff = draws[:, r] - draws[:, c]
        margin = {"runner_up_best": float(best[r]), "difference": float(best[r] - best[c]),
                  "sd": float(np.std(diff, ddof=1)) if np.isfinite(diff).all() and len(diff) > 1 else math.nan}
    sizes = [len(f["grid"]) for f in fits]
    curve = pd.DataFrame({"level": "curves", "spec": np.repeat([f["label"] for f in fits], sizes),
                          "keep": np.concatenate([f["grid"] for f in fits]),
                          "predicted": np.concatenate([f["curve"] for f in fits])})
    return cands, int(order[0]), runner, margin, curve


# ----------------------------------------------------------------------------------------------------
# Level (ii): the kept sets' scores from the documents
# ----------------------------------------------------------------------------------------------------

def _kept_means(Z: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Row m-1: the means of every column of ``Z`` over the top ``m`` documents by ``Z @ weights`` (ties in
    document order)."""
    order = np.argsort(-(Z @ weights), kind="stable")
    return np.cumsum(Z[order], axis=0) / np.arange(1, len(Z) + 1)[:, None]


def _fit_documents(runs: _Runs, documents: pd.DataFrame, where: str, folds: int, repeats: int, n_bootstrap: int,
                   rng: np.random.Generator, warnings: list[str], notes: list[str]):
    """The document model (level ii): candidates, CV, the choice, P(best) and the curves under the chosen model."""
    n = len(runs.y)
    if n < _MIN_DOCUMENT_RUNS:
        raise ValidationError(f"{n} runs: the document model's CV needs at least {_MIN_DOCUMENT_RUNS} (drop "
                              "--documents to compare the scores' curves alone)")
    cols = [str(c) for c in documents.columns]
    specs = {lb: parse_composite(c.spec, cols, f"{where}: ") for lb, c in runs.specs.items()}
    J = list(dict.fromkeys(col for c in specs.values() for col in c.columns))
    if len(documents) < 2:
        raise ValidationError(f"{where}: {len(documents)} document{'s' if len(documents) != 1 else ''}; the kept sets "
                              "need the pool's documents (or a uniform sample of thousands)")
    Z = np.column_stack([normal_scores(numeric_column(documents, c, f"{where}: ")) for c in J])
    N = len(Z)
    if N < 200:
        warnings.append(f"{where} holds {N} documents: the kept sets' means are rough; give the pool's documents (or a "
                        "uniform sample of thousands)")
    # Each column's direction: as the runs' specs use it (a lower-is-better rating appears as '-1*COL').
    sign = np.array([-1.0 if all(c.weights.get(j, 0.0) <= 0 for c in specs.values()) else 1.0 for j in J])
    wvec = {lb: np.array([c.weights.get(j, 0.0) for j in J]) for lb, c in specs.items()}
    means = {lb: _kept_means(Z, w) for lb, w in wvec.items()}

    def kept(label: str | None, keep: float) -> np.ndarray:
        return Z.mean(axis=0) if label is None else means[label][min(max(round(keep * N), 1), N) - 1]

    Xs = np.vstack([kept(lb, k) for lb, k in zip(runs.labels, runs.keep)]) * sign  # oriented: higher is better
    degree = min(2, len(np.unique(runs.keep)) - 1)
    use_t = runs.tokens is not None and len(np.unique(runs.tokens)) > 1
    log_t = np.log(runs.tokens) if use_t else None
    G = _keep_terms(np.log(runs.keep), log_t, degree)
    # Candidates: name, kind, oriented weights over J (None: no spec), number of score features, and how the
    # features are made from the oriented kept means X and the keep terms g (score features first).
    cands: list[tuple[str, str, np.ndarray | None, int, Any]] = [("(keep only)", "keep only", None, 0, lambda X, g: g)]
    for j, col in enumerate(J):
        cands.append((canonical_spec(((col, float(sign[j])),)), "score", np.eye(len(J))[j], 1,
                      lambda X, g, j=j: np.column_stack([X[:, j], g])))
    for lb, c in specs.items():
        if len(c.terms) > 1:  # one column with a weight orders as the column: its score candidate
            w = wvec[lb] * sign
            cands.append((lb, "composite", w, 1, lambda X, g, w=w: np.column_stack([X @ w, g])))
    if len(J) > 1:
        cands.append(("(learned composite)", "learned composite", None, len(J), lambda X, g: np.column_stack([X, g])))
    K = min(folds, n)
    splits = [s for _ in range(repeats) for s in np.array_split(rng.permutation(n), K)]
    sq, fold_mse = {}, {}
    for name, _, _, m, make in cands:
        sq[name], fold_mse[name], _ = _cv_errors(make(Xs, G), runs.y, splits, m)
    # A rating is declared higher-is-better by the specs: a kept-set score whose coefficient comes out > 0 (more of
    # it, a worse target) explains which runs used which filter, not what the documents are worth: held at 0.
    reversed_ = [cands[i + 1][0] for i in range(len(J)) if _ridge(cands[i + 1][4](Xs, G), runs.y)[1][0] > 0]
    if reversed_:
        notes.append(f"more of {', '.join(map(repr, reversed_))} in the kept set goes with a worse target here: "
                     "its coefficient is held at 0 (a rating's direction is the specs'; write '-1*COL' in the runs' "
                     "score column for a lower-is-better one)")
    lc = next((i for i, c in enumerate(cands) if c[1] == "learned composite"), None)
    if lc is not None:  # its weights: -beta of the full fit, >= 0 on the oriented scores
        coef = _ridge_signed(cands[lc][4](Xs, G), runs.y, len(J))[1][: len(J)]
        w = -coef / np.sum(np.abs(coef)) if np.any(coef != 0) else coef
        w = np.array([float(f"{x:.3g}") for x in w])
        if np.any(w != 0):
            name = canonical_spec(tuple((c, float(x * s_)) for c, x, s_ in zip(J, w, sign) if x != 0))
            name = name if name not in sq else f"{name} (learned)"  # the same weights as a spec of the runs
            sq[name], fold_mse[name] = sq.pop("(learned composite)"), fold_mse.pop("(learned composite)")
            cands[lc] = (name, "learned composite", w, len(J), cands[lc][4])
        else:
            notes.append("the learned composite gives every score weight 0: left out")
            cands.pop(lc)
            lc = None
    given = [c for c in cands if c[1] in ("score", "composite")]
    mse = {c[0]: float(np.mean(sq[c[0]])) for c in cands}
    best_given = min(given, key=lambda c: mse[c[0]])
    chosen = best_given

    def paired(a: str, b: str) -> tuple[float, float]:
        """Mean and standard error over the runs of (squared error of a) - (squared error of b)."""
        d = sq[a] - sq[b]
        return float(np.mean(d)), float(np.std(d, ddof=1) / math.sqrt(n))

    def in_se(gain: float, se: float) -> str:
        """'lower by 2.3' / 'higher by 0.4': a squared-error difference in paired standard errors."""
        z = gain / se if se > 0 else (math.inf if gain > 0 else 0.0)
        return f"{'lower' if z >= 0 else 'higher'} by {abs(z):.1f}"

    grid = _keep_grid(runs.keep)
    gG = _keep_terms(np.log(grid), None if log_t is None else np.full(len(grid), math.log(runs.budget)), degree)
    m_grid = np.clip(np.round(grid * N).astype(int), 1, N) - 1

    def curves_under(c) -> dict[str, np.ndarray]:
        """Each candidate spec's predicted target along the keep grid under candidate ``c``'s model (fitted
        to every run), at the largest budget."""
        model = _ridge_signed(c[4](Xs, G), runs.y, c[3])
        return {name: _predict(model, c[4](_kept_means(Z, w * sign)[m_grid] * sign, gG))
                for name, _, w, _, _ in cands if w is not None}

    if lc is not None:
        gain, se = paired(best_given[0], cands[lc][0])
        under = curves_under(cands[lc])
        promise = float(under[best_given[0]].min() - under[cands[lc][0]].min())
        noise = _cv_summary(fold_mse[cands[lc][0]])[0]
        if not (gain > _NOISE_SE * se and gain > 0):
            notes.append(f"the learned composite {cands[lc][0]!r} is not better than {best_given[0]!r} by more than CV "
                         f"noise (its squared error is {in_se(gain, se)} paired SE; lower by {_NOISE_SE:g} needed): "
                         f"{best_given[0]!r} is kept")
        elif not promise > noise:
            # It explains the runs better, but filtering by it is predicted to gain less than one run's noise:
            # the simpler, measured filter is kept (a composite is worth its runs only when the gain shows).
            notes.append(f"the learned composite {cands[lc][0]!r} predicts the runs better than {best_given[0]!r} "
                         f"(squared error {in_se(gain, se)} paired SE) but filtering by it is predicted to gain "
                         f"{promise:.3g}, less "
                         f"than one run's noise ({noise:.3g}, its CV RMSE): {best_given[0]!r} is kept")
        else:
            chosen = cands[lc]
            notes.append(f"the learned composite's squared CV error is {in_se(gain, se)} paired SE than "
                         f"{best_given[0]!r}'s, and filtering by it is predicted to gain {promise:.3g} (CV RMSE "
                         f"{noise:.3g}): "
                         "chosen")
    choosable = given + ([cands[lc]] if lc is not None else [])
    table = np.column_stack([sq[c[0]] for c in choosable])
    if n_bootstrap:
        boot = rng.integers(0, n, size=(n_bootstrap, n))
        wins = np.argmin(table[boot].mean(axis=1), axis=1)
        p_best = {c[0]: float(np.mean(wins == k)) for k, c in enumerate(choosable)}
    else:
        p_best = {}
    rivals = sorted((c for c in choosable if c[0] != chosen[0]), key=lambda c: mse[c[0]])
    runner = rivals[0][0] if rivals else None
    margin: dict[str, Any] = {"chosen_cv_rmse": _cv_summary(fold_mse[chosen[0]])[0]}
    if runner is not None:
        gain, se = paired(runner, chosen[0])
        margin |= {"runner_up_cv_rmse": _cv_summary(fold_mse[runner])[0], "mse_difference": gain, "mse_se": se,
                   "paired_se": gain / se if se > 0 else math.inf}
    gain, se = paired("(keep only)", chosen[0])
    if not gain > _NOISE_SE * se:
        warnings.append(f"{chosen[0]!r} explains the target no better than the keep fraction alone (squared CV error "
                        f"{in_se(gain, se)} paired SE): the runs do not tell the scores apart; add runs, or "
                        "keep fractions where the scores' kept sets differ more")
    # Curves under the chosen model: each candidate spec's kept sets along the keep grid, at the largest budget.
    under = curves_under(chosen)
    out, curves = [], []
    for name, kind, w, _, _ in cands:
        best = at = math.nan
        if w is not None:
            pred = under[name]
            curves.append(pd.DataFrame({"level": "documents", "spec": name, "keep": grid, "predicted": pred}))
            best, at = float(pred.min()), float(grid[np.argmin(pred)])
        rmse, sd = _cv_summary(fold_mse[name])
        out.append(RatingCandidate(
            name=name, kind=kind, level="documents", runs=n, cv_rmse=rmse, cv_rmse_sd=sd, folds=len(splits),
            cv_mse=mse[name], predicted_best=best, best_keep=at, p_best=p_best.get(name, math.nan),
            weights=None if w is None or kind == "score" else {j: float(x * s_) for j, x, s_ in zip(J, w, sign)
                                                                if x != 0}))
    chosen_weights = {j: float(x * s_) for j, x, s_ in zip(J, chosen[2], sign) if x != 0}
    return out, chosen[0], chosen[1], chosen_weights, runner, margin, pd.concat(curves, ignore_index=True), N, K


# ----------------------------------------------------------------------------------------------------
# The fit
# ----------------------------------------------------------------------------------------------------

def _same_filter(a: dict[str, float], b: dict[str, float]) -> bool:
    r"""Whether weights ``a`` and ``b`` (column -> weight) make the same filter: :math:`a = c\,b` for some
    :math:`c > 0` (a positive multiple of a composite orders the documents as it does), up to float noise."""
    if set(a) != set(b) or not a:
        return False
    cols = sorted(a)
    x, y = np.array([a[c] for c in cols]), np.array([b[c] for c in cols])
    return bool(np.allclose(x / np.abs(x).max(), y / np.abs(y).max(), rtol=1e-9, atol=1e-12))


def fit_ratings(runs: pd.DataFrame, target: str, documents: pd.DataFrame | None = None, *, seed: int = 0,
                n_bootstrap: int = 200, folds: int = 5, repeats: int = 10, where: str = "runs",
                documents_where: str = "documents") -> RatingsFit:
    """Which score spec to filter by, from proxy runs that filtered by different ones (see the module
    docstring for the two levels).

    ``runs``: columns ``score`` (the spec a run filtered by: a column name or a composite such as
    ``0.6*dclm + 0.4*fasttext``; empty only for an unfiltered run, ``keep = 1``), ``keep`` (the fraction
    of documents kept, in (0, 1]), optionally ``tokens`` (or ``samples``) trained on, and the ``target``
    (a column or an objective spec such as ``mean(err_*)``; lower is better). ``documents``: one row per
    document of the pool, with every score column the specs name. ``seed`` fixes the CV splits and the
    bootstrap draws.
    """
    if folds < 2 or repeats < 1 or n_bootstrap < 0:
        raise ValidationError("fit_ratings: folds must be >= 2, repeats >= 1 and n_bootstrap >= 0")
    data = _read_runs(runs, target, where)
    rng = np.random.default_rng(seed)
    warnings: list[str] = []
    notes: list[str] = []
    c_cands, c_best, c_runner, c_margin, c_curve = _fit_curves(data, n_bootstrap, rng, warnings)
    cands = list(c_cands)
    curve = c_curve
    level, n_docs = "curves", None
    chosen = c_cands[c_best]
    chosen_name, chosen_kind, runner, margin = chosen.name, chosen.kind, c_runner, c_margin
    K = None
    if documents is not None:
        d_cands, d_name, d_kind, d_weights, d_runner, d_margin, d_curve, n_docs, K = _fit_documents(
            data, documents, documents_where, folds, repeats, n_bootstrap, rng, warnings, notes)
        cands = d_cands + cands
        curve = pd.concat([d_curve, c_curve], ignore_index=True)
        level, chosen_name, chosen_kind, runner, margin = "documents", d_name, d_kind, d_runner, d_margin
        chosen = next(c for c in d_cands if c.name == d_name)
        if not _same_filter(d_weights, data.specs[c_cands[c_best].name].weights):  # '0.5*dclm' is 'dclm'
            warnings.append(f"the curves per spec favour {c_cands[c_best].name!r}, the document model {d_name!r}: the "
                            "document model is chosen (it uses every run for every score); confirm with a run filtered "
                            "by each at the best keep")
    if math.isfinite(chosen.p_best) and chosen.p_best < _DECISIVE:
        warnings.append(f"P(best) of {chosen_name!r} is {chosen.p_best:.2f}: not decisive; add runs (more keep "
                        "fractions or seeds) for the close candidates")
    lo, hi = float(data.keep.min()), float(data.keep.max())
    if chosen.best_keep == 1.0:
        notes.append(f"keeping every document is predicted best at this budget: filtering by {chosen_name!r} does not "
                     "pay here (it may at a smaller budget)")
    elif chosen.best_keep in (lo, hi) and lo < hi:
        edge = "smallest" if chosen.best_keep == lo else "largest"
        warnings.append(f"the best keep {chosen.best_keep:.3g} is the {edge} one measured: the optimum may lie beyond; "
                        f"add runs {'below' if edge == 'smallest' else 'above'} it")
    if data.tokens is not None and len(np.unique(data.tokens)) > 1:
        notes.append(f"the runs trained on {len(np.unique(data.tokens))} budgets: predictions are at the largest, "
                     f"{data.budget:.4g} {data.tokens_column} (log {data.tokens_column} is a term of the models)")
    return RatingsFit(target=target, source=where, documents=None if documents is None else documents_where,
                      n_runs=len(data.y), n_documents=n_docs, level=level, chosen=chosen_name, chosen_kind=chosen_kind,
                      best_keep=chosen.best_keep, predicted_best=chosen.predicted_best, p_best=chosen.p_best,
                      budget=data.budget, budget_column=data.tokens_column, runner_up=runner, margin=margin,
                      candidates=tuple(cands), curve=curve, seed=seed, folds=K, repeats=repeats,
                      n_bootstrap=n_bootstrap, warnings=warnings, notes=notes)

