r"""A fitted study model: one regressor per objective column + objective + pools + CV evidence.

This is what ``mixplan fit`` writes to a model directory and ``mixplan predict`` / ``mixplan plan``
use. An objective such as ``0.5*loss_a + 0.5*loss_b`` (or ``mean(loss_*)``) is fitted one column at
a time - every column has its own model choice - and the predictions are combined with the
objective's coefficients. With ``family_model="auto"`` a ``family(...)`` term of the objective may instead be
fitted by one shared model of its coefficient-weighted sum :math:`\sum_{j \in F} c_j y_j` (one mapping from the
mixture for all its columns), when that predicts the family's sum better in cross-validation on the same folds
than the per-column models' combined out-of-fold predictions (lower RMSE); both CV scores are reported
(``family_fits``). Every prediction comes with an interval and the evidence behind it: the
nearest proxy run and whether the mixture lies in the region the proxy runs cover.

Intervals are split-conformal on the repeated cross-validation's out-of-fold residuals *of the
objective* (the coefficient-weighted sum of the columns' residuals on the same folds, so that
correlated errors across columns are propagated as they are). When every column has a GP
uncertainty model (``auto`` and ``gp``), the residuals are normalised by the GP's predictive
standard deviation and the interval is :math:`\hat y(w) \pm q \, \sigma(w)` - wider far from the
runs, narrower near them ("normalised conformal"); otherwise it has a constant half-width ``q``.
Either way ``q`` is the ceil((N+1) level)-th smallest of the N out-of-fold scores.

Model directory (no pickle anywhere)::

    meta.json                 pools, objective, per-column model choice and CV, out-of-fold
                              predictions, versions
    train_runs.csv            the runs it was fitted on: run_id, weights, objective columns
    target<k>/...             column k's regressor (LightGBM text model, JSON for the rest; auto
                              keeps every candidate: auto.json, gp.gp.json, lightgbm.model.txt, ...)
"""

from __future__ import annotations

import operator
import os
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._version import __version__
from .._parallel import resolve_jobs
from .._stats import normal_cdf, normal_ppf
from .._io import (check_writable, dumps_json, library_versions, read_json, read_table, saved_artefact, table_csv,
                  write_text_atomic)
from ..exceptions import MixplanWarning, ValidationError
from ..data.objective import Objective, objective_warnings
from .regressor import PRESETS, TOKEN_MODELS, CVReport, MixtureRegressor, cross_validate, cv_report, fold_tasks
from ..data.runs import RunTable
from .mixing_law import LogLinearForm
from .intervals import DEFAULT_LEVEL, conformal_quantile, coverage_radius_of, nearest_run

__all__ = ["MixtureModel", "Prediction", "fit_model", "load_model", "DEFAULT_LEVEL"]

FORMAT_VERSION = 2


@dataclass(frozen=True)
class Prediction:
    """Predictions for a batch of mixtures, with intervals and evidence (arrays of length n)."""

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    level: float
    nearest_run: list[str]
    nearest_distance: np.ndarray  # total-variation distance (half the L1 distance) to that run
    covered: np.ndarray  # bool: within the region the proxy runs cover
    columns: dict[str, np.ndarray]  # the prediction of every objective column

    def row(self, i: int) -> dict[str, Any]:
        return {"prediction": float(self.mean[i]), "lower": float(self.lower[i]),
                "upper": float(self.upper[i]), "level": self.level,
                "nearest_run": self.nearest_run[i], "nearest_distance": float(self.nearest_distance[i]),
                "covered": bool(self.covered[i])}


@dataclass
class TargetFit:
    """The regressor of one objective column and its cross-validation on the shared folds.

    ``coefficient`` None: the objective's coefficient of ``column``; a shared family model (``column`` the
    family's term, its values the family's weighted sum already) has 1."""

    column: str
    regressor: MixtureRegressor
    cv: CVReport
    coefficient: float | None = None


@dataclass
class MixtureModel:
    """Regressors fitted to the columns of one objective over one set of pools, with CV evidence."""

    targets: list[TargetFit]
    objective: Objective
    pools: list[str]
    train_ids: list[str]
    train_weights: np.ndarray
    train_y: np.ndarray  # the objective's value in every training run
    seed: int
    coverage_radius: float
    source: str = ""
    #: Per ``family(...)`` term fitted both ways: both CV scores and the choice (see :func:`fit_model`).
    family_fits: list[dict[str, Any]] = field(default_factory=list)
    #: Every objective column's values in the training runs (a shared family model keeps no column of its own).
    column_values: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.coefficients = target_coefficients(self.objective, self.targets)
        self.column_values = {t.column: t.cv.y for t in self.targets if t.coefficient is None} | self.column_values
        self.cv = self._objective_cv()

    # -- the objective's out-of-fold evidence ------------------------------------------------------
    @property
    def regressor(self) -> MixtureRegressor:
        """The regressor of a single-column objective (the first column's otherwise)."""
        return self.targets[0].regressor

    @property
    def adaptive(self) -> bool:
        """Intervals scaled by the GP's predictive standard deviation (every column has a GP)."""
        return all(t.cv.oof_std is not None and t.regressor.uncertainty_model() is not None for t in self.targets)

    def _objective_cv(self) -> dict[str, Any]:
        coef = self.coefficients
        oof = sum(c * t.cv.oof for c, t in zip(coef, self.targets))
        first = self.targets[0].cv
        rep = cv_report(np.asarray(oof), self.train_y, first.n_splits, first.n_repeats, first.seed)
        d = rep.to_dict() | {"residuals": rep.residuals.tolist()}
        if self.adaptive:
            var = sum(c ** 2 * t.cv.oof_std ** 2 for c, t in zip(coef, self.targets))
            d["scores"] = (np.abs(rep.residuals) / np.sqrt(np.asarray(var)).ravel()).tolist()
        else:
            d["scores"] = np.abs(rep.residuals).tolist()
        d["interval_method"] = ("normalised split-conformal: |out-of-fold residual| / GP predictive sd"
                                if self.adaptive else "split-conformal: |out-of-fold residual|")
        d["model"] = "+".join(sorted({t.regressor.model for t in self.targets}))
        return d

    @property
    def halfwidth(self) -> dict[str, float]:
        """The conformal quantile ``q`` at the default level (a half-width unless intervals are adaptive)."""
        return {f"{DEFAULT_LEVEL:g}": self.interval_scale(DEFAULT_LEVEL)}

    def interval_scale(self, level: float) -> float:
        if not 0 < level < 1:
            raise ValidationError(f"interval level {level} must be between 0 and 1 (e.g. 0.9)")
        return conformal_quantile(np.asarray(self.cv["scores"], dtype=float), level)

    # -- prediction --------------------------------------------------------------------------------
    def predict_columns(self, W: np.ndarray, num_iteration: int | None = None) -> dict[str, np.ndarray]:
        """Every objective column's prediction (``num_iteration``: LightGBM's first trees only)."""
        return {t.column: t.regressor.predict(W, num_iteration=num_iteration) for t in self.targets}

    def combine(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """The objective from its columns' predictions: the coefficient-weighted sum."""
        return np.asarray(sum(c * columns[t.column] for c, t in zip(self.coefficients, self.targets)))

    def predict_mean(self, W: np.ndarray, num_iteration: int | None = None) -> np.ndarray:
        """The objective's predicted mean alone (no interval, no evidence): what searches score."""
        return self.combine(self.predict_columns(W, num_iteration))

    def score_form(self) -> LogLinearForm | None:
        """The objective's score (``objective.score`` of :meth:`predict_mean`) as a
        :class:`~mixplan.models.mixing_law.LogLinearForm` when every column's model has one, else None."""
        forms = [t.regressor.log_linear_form() for t in self.targets]
        if any(f is None for f in forms):
            return None
        return reduce(operator.add, (f.scaled(self.objective.sense * k) for f, k in zip(forms, self.coefficients)))

    @property
    def tree_share(self) -> float:
        """The share of the objective's prediction made by boosted trees: each column's
        :attr:`~mixplan.models.regressor.MixtureRegressor.tree_share`, weighted by how much that column moves the
        objective (|coefficient| x the sd of its values over the training runs), so that a column of small weight
        does not decide how the whole objective is searched."""
        sway = np.array([abs(k) * float(np.std(t.cv.y)) for k, t in zip(self.coefficients, self.targets)])
        shares = np.array([t.regressor.tree_share for t in self.targets])
        return float(shares @ sway / sway.sum()) if sway.sum() > 0 else float(shares.mean())

    def predict_sd(self, W: np.ndarray) -> np.ndarray:
        """The interval's shape: the GP predictive sd of the objective (ones for constant intervals)."""
        if not self.adaptive:
            return np.ones(len(W))
        var = np.zeros(len(W))
        for c, t in zip(self.coefficients, self.targets):
            gp, feats = t.regressor.uncertainty_model()  # type: ignore[misc]
            var += c ** 2 * gp.predict_std(feats(W)) ** 2
        return np.sqrt(var)

    def predict(self, weights: np.ndarray, level: float = DEFAULT_LEVEL) -> Prediction:
        W = np.atleast_2d(np.asarray(weights, dtype=float))
        cols = self.predict_columns(W)
        mean = self.combine(cols)
        hw = self.interval_scale(level) * self.predict_sd(W)
        idx, dist = self.nearest(W)
        return Prediction(mean=mean, lower=mean - hw, upper=mean + hw, level=level,
                          nearest_run=[self.train_ids[i] for i in idx], nearest_distance=dist,
                          covered=dist <= self.coverage_radius + 1e-12, columns=cols)

    def prob_better(self, w: np.ndarray, others: np.ndarray, level: float = DEFAULT_LEVEL,
                    offsets: np.ndarray | None = None) -> np.ndarray:
        r"""Probability that mixture ``w`` has a better objective than each row of ``others``.

        The difference of the two predicted objectives is treated as Gaussian. Its standard deviation
        comes from the GP posterior covariance of the two mixtures (latent function: correlated
        errors of nearby mixtures cancel), scaled by :math:`\kappa = q / z`, the ratio of the
        conformal quantile at ``level`` to the Gaussian one, so that the GP's spread matches the
        out-of-fold errors. Without a GP the two errors are taken as independent with sd
        :math:`q / z` each. ``offsets`` (one per row of ``[w, *others]``) are added to the predicted
        objectives first: the repetition-aware objective's data term.
        """
        O = np.atleast_2d(np.asarray(others, dtype=float))
        W = np.vstack([np.asarray(w, dtype=float)[None, :], O])
        pred = self.predict_mean(W) + (0.0 if offsets is None else np.asarray(offsets, dtype=float))
        q, z = self.interval_scale(level), float(normal_ppf(0.5 + level / 2))
        if not z > 0:  # 0.5 + level / 2 rounds to 0.5 below a level of ~2e-16 (found by the fuzz corpus)
            raise ValidationError(f"interval level {level!r} is too small to calibrate P(better) (its Gaussian "
                                  "quantile is 0); give a level such as 0.9")
        kappa = q / z
        if self.adaptive:
            var = np.zeros(len(O))
            for c, t in zip(self.coefficients, self.targets):
                gp, feats = t.regressor.uncertainty_model()  # type: ignore[misc]
                C = gp.predict_cov(feats(W))
                var += c ** 2 * (C[0, 0] + np.diag(C)[1:] - 2 * C[0, 1:])
            sd = kappa * np.sqrt(np.maximum(var, 0.0))
        else:
            sd = np.full(len(O), kappa * np.sqrt(2.0))
        gain = self.objective.score(pred[1:] - pred[0])  # > 0: w is better
        with np.errstate(divide="ignore", invalid="ignore"):
            p = normal_cdf(gain / sd)
        return np.where(sd > 0, p, np.where(gain > 0, 1.0, np.where(gain < 0, 0.0, 0.5)))

    def nearest(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index of and total-variation distance to the nearest proxy run, for each row of W."""
        return nearest_run(W, self.train_weights)

    # -- reports ----------------------------------------------------------------------------------
    def baseline_warnings(self) -> list[str]:
        """A warning when the model's out-of-fold error is worse than predicting, for every held-out run, the
        mean of its fold's training runs (the same folds): then the model has learnt nothing usable."""
        first = self.targets[0].cv
        y = self.train_y
        base = np.empty((first.n_repeats, len(y)))
        for r, train, test in fold_tasks(len(y), first.n_splits, first.n_repeats, first.seed):
            base[r, test] = y[train].mean()
        res = y[None, :] - base
        mae, rmse = float(np.mean(np.abs(res))), float(np.sqrt(np.mean(res ** 2)))
        if self.cv["mae"] <= mae and self.cv["rmse"] <= rmse:
            return []
        r2 = 1 - self.cv["rmse"] ** 2 / rmse ** 2
        return [f"the {self.cv['model']} fit of {self.objective.spec!r} predicts held-out runs worse than their "
                f"mean does: CV MAE {self.cv['mae']:.4g} vs {mae:.4g} and RMSE {self.cv['rmse']:.4g} vs {rmse:.4g} "
                f"for predicting the mean (CV R^2 {r2:.3g} relative to it); add runs, use fewer pools or try "
                "another --model before trusting its predictions"]

    @property
    def fit_warnings(self) -> list[str]:
        """Everything to warn about the fit: the objective's (a term counted the wrong way, a glob that matched
        an aggregate of its columns) and a cross-validation worse than predicting the mean."""
        return objective_warnings(self.objective, self.column_values.__getitem__) + self.baseline_warnings()

    def to_dict(self) -> dict[str, Any]:
        """The fit, JSON-ready: objective, the objective's CV (without per-run residuals), each column's model,
        the fit's warnings."""
        return {"objective": self.objective.to_dict(),
                "cv": {k: v for k, v in self.cv.items() if k not in ("residuals", "scores")},
                "targets": self.target_summaries(), "family_fits": self.family_fits, "warnings": self.fit_warnings}

    def report(self, level: float = 0.9) -> str:
        """The columns each glob of the objective matched; per column the chosen components and every
        candidate's CV; the objective's CV; the intervals; the fit's warnings."""
        lines = self.objective.matched_lines()
        for t in self.targets:
            comps = " + ".join(f"{w:.2f} {m}" for m, w in t.regressor.components.items())
            lines.append(f"{t.column}: {t.regressor.model} -> {comps}; {cv_summary(t.cv.to_dict())}")
            for row in getattr(t.regressor, "selection_", []):
                if row["status"] == "skipped":
                    lines.append(f"    {row['model']:<30} skipped: {row['reason']}")
                else:
                    spearman = "  n/a " if row["spearman"] is None else f"{row['spearman']:.4f}"
                    lines.append(f"    {row['model']:<30} {row['status']:<9} Spearman {spearman}  "
                                 f"RMSE {row['rmse']:.4g}  MAE {row['mae']:.4g}")
        for f in self.family_fits:
            lines.append(f"{f['family']}: {f['chosen']} model ({f['reason']}); CV RMSE of the family's weighted sum: "
                         f"per-column {f['per_column']['rmse']:.4g} (Spearman {_corr(f['per_column']['spearman'])}), "
                         f"shared {f['shared']['rmse']:.4g} (Spearman {_corr(f['shared']['spearman'])})")
        if len(self.targets) > 1 or self.family_fits:
            lines.append(f"objective {self.objective.spec}: {cv_summary(self.cv)}")
        lines += [f"warning: {w}" for w in self.fit_warnings]
        q = self.interval_scale(level)  # last: 'mixplan fit' ends this line with where the model went
        lines.append(f"{level:.0%} intervals: prediction +- {q:.3g} x GP predictive sd" if self.adaptive
                     else f"{level:.0%} intervals: prediction +- {q:.4g}")
        return "\n".join(lines)

    # -- persistence ------------------------------------------------------------------------------
    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> MixtureModel:
        """A model directory written by :meth:`save` (see :func:`load_model`)."""
        return load_model(directory)

    def target_summaries(self) -> list[dict[str, Any]]:
        """Per objective column: its model, the components used, every candidate's CV scores and its own
        CV (the candidates' out-of-fold predictions stay in the model's files, for reports)."""
        def scores(selection: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
            return None if selection is None else [{k: v for k, v in row.items() if k != "oof_mean"}
                                                   for row in selection]

        return [{"column": t.column, "coefficient": t.coefficient, "dir": f"target{k}", "model": t.regressor.model,
                 "params": t.regressor.params,
                 "components": t.regressor.components, "files": sorted(t.regressor.file_names()),
                 "selection": scores(getattr(t.regressor, "selection_", None)), "cv": t.cv.to_dict()}
                for k, t in enumerate(self.targets)]

    def meta(self) -> dict[str, Any]:
        targets = [summary | {"cv_oof": t.cv.oof.tolist(),
                              "cv_oof_std": None if t.cv.oof_std is None else t.cv.oof_std.tolist()}
                   for summary, t in zip(self.target_summaries(), self.targets)]
        return {
            "format_version": FORMAT_VERSION,
            "mixplan_version": __version__,
            "versions": library_versions(),
            "random_state": self.regressor.random_state, "seed": self.seed,
            "pools": self.pools, "objective": self.objective.to_dict(), "targets": targets,
            "cv": self.to_dict()["cv"],
            "coverage_radius": self.coverage_radius, "source": self.source, "family_fits": self.family_fits,
        }

    def save(self, directory: str | os.PathLike[str], force: bool = False) -> list[Path]:
        """Write the model directory; everything is serialised before the first file is written."""
        d = Path(directory)
        table = pd.DataFrame(self.train_weights, columns=[f"w_{p}" for p in self.pools])
        table.insert(0, "run_id", self.train_ids)
        for t in self.targets:
            table[t.column] = t.cv.y
        for col, v in self.column_values.items():  # the columns a shared family model sums
            table[col] = v
        texts = {"meta.json": dumps_json(self.meta()), "train_runs.csv": table_csv(table)}
        for k, t in enumerate(self.targets):
            texts |= {f"target{k}/{name}": text for name, text in t.regressor.to_files().items()}
        check_writable([d / name for name in texts] + _target_dirs(d), force)  # refuse before writing anything
        for stale in _target_dirs(d):  # a previous model's columns (only with force)
            shutil.rmtree(stale)
        for name, text in texts.items():
            (d / name).parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(d / name, text, force=force)
        return [d / name for name in texts]


def target_coefficients(objective: Objective, targets: Sequence[TargetFit]) -> tuple[float, ...]:
    """Each target's coefficient in the objective: its column's, or a shared family model's own."""
    coef = dict(zip(objective.columns, objective.coefficients))
    return tuple(coef[t.column] if t.coefficient is None else t.coefficient for t in targets)


def _target_dirs(d: Path) -> list[Path]:
    return sorted(p for p in d.glob("target*") if p.is_dir()) if d.is_dir() else []


def _corr(v: float | None) -> str:
    return "n/a" if v is None or np.isnan(v) else f"{v:.4f}"


def cv_summary(cv: dict[str, Any]) -> str:
    """One line: the cross-validation scores of a model (an undefined correlation shows as n/a)."""
    corr = _corr
    reps = cv.get("n_repeats", 1)
    folds = f"{cv['n_splits']}-fold CV" + (f" x {reps} repeats" if reps > 1 else "")
    return (f"{folds} on {cv['n_runs']} runs: Spearman {corr(cv['spearman'])}, "
            f"Pearson {corr(cv['pearson'])}, MAE {cv['mae']:.4g}, RMSE {cv['rmse']:.4g}")


def fit_model(runs: RunTable, objective: Objective, model: str = "auto", *, seed: int = 0,
              cv_folds: int = 5, params: dict[str, Any] | None = None, progress: Any = None,
              cv_repeats: int | None = None, jobs: int | None = 1, family_model: str = "per-column") -> MixtureModel:
    r"""Fit ``model`` to every column of ``objective`` on ``runs``, each cross-validated on the same
    folds (same seed, same repeats), so that the columns' out-of-fold errors can be combined.
    ``jobs``: parallel workers (None: every core); the result is the same for any number.

    ``family_model``: how a ``family(...)`` term whose columns no other term uses is fitted - ``per-column``
    (a model per column, as any term), ``shared`` (one model of the family's weighted sum
    :math:`s = \sum_{j \in F} c_j y_j`) or ``auto`` (both, on the same folds; the shared model when its
    out-of-fold RMSE on :math:`s` is below that of the per-column models' combined out-of-fold predictions
    :math:`\sum_j c_j \hat y_j^{oof}`). Both CV scores are kept in :attr:`MixtureModel.family_fits`."""
    if family_model not in _FAMILY_MODELS:
        raise ValidationError(f"family model {family_model!r} is not one of {', '.join(_FAMILY_MODELS)} "
                              "(--family-model)")
    X = runs.weights
    y = objective.values(runs)
    if np.ptp(y) == 0:
        raise ValidationError(f"{runs.source}: the target {objective.spec!r} has the same value ({y[0]:g}) in all "
                              f"{len(y)} runs; there is nothing to learn - check the column")
    if not 2 <= cv_folds <= len(y):
        raise ValidationError(f"{runs.source}: {cv_folds} cross-validation folds for {len(y)} runs; use between 2 "
                              f"and {len(y)} (--cv-folds; 5 is usual)")
    folds = cv_folds
    params = _with_budget(runs, model, params)

    def fit_one(column: str, yc: np.ndarray, coefficient: float | None = None) -> TargetFit:
        reg = MixtureRegressor(model=model, params=params, random_state=seed, n_jobs=resolve_jobs(jobs), cv_folds=folds,
                               cv_repeats=cv_repeats)
        if np.ptp(yc) == 0:
            raise ValidationError(f"{runs.source}: column {column!r} of the objective has the same value "
                                  f"({yc[0]:g}) in all {len(yc)} runs; there is nothing to learn - drop it")
        # Each CV fold trains on fewer runs than the table has: check the smallest fold, with its reason.
        reg.check_run_count(len(y) - int(np.ceil(len(y) / folds)), X.shape[1],
                            f"{runs.source}: {folds}-fold cross-validation trains each fold model on")
        reg._progress = progress
        reg.fit(X, yc)
        if reg.kind == "auto":
            cv = reg.cv_
        else:
            cv = cross_validate(reg, X, yc, n_splits=folds, seed=seed, progress=progress,
                                n_repeats=reg._repeats(len(y)), n_jobs=reg.n_jobs)
        del reg._progress
        return TargetFit(column=column, regressor=reg, cv=cv, coefficient=coefficient)

    values = {column: runs.metric(column) for column in objective.columns}
    coef = dict(zip(objective.columns, objective.coefficients))
    targets = [] if family_model == "shared" else [fit_one(column, values[column]) for column in objective.columns]
    family_fits = []
    for key, members in _separate_families(objective) if family_model != "per-column" else []:
        s = np.asarray(sum(coef[c] * values[c] for c in members), dtype=float)
        if np.ptp(s) == 0:
            continue  # (a family that cancels out; its columns are fitted one by one)
        shared = fit_one(key, s, coefficient=1.0)
        if family_model == "shared":
            targets.append(shared)
            continue
        own = [t for t in targets if t.column in members]
        first = own[0].cv
        combined = cv_report(np.asarray(sum(coef[t.column] * t.cv.oof for t in own)), s, first.n_splits,
                             first.n_repeats, first.seed)
        better = shared.cv.rmse < combined.rmse
        family_fits.append({"family": key, "columns": list(members), "chosen": "shared" if better else "per-column",
                            "reason": "lower CV RMSE" if better else "shared CV RMSE not lower",
                            "per_column": {k: v for k, v in combined.to_dict().items() if k in _SCORES},
                            "shared": {k: v for k, v in shared.cv.to_dict().items() if k in _SCORES}})
        if better:
            targets = [t for t in targets if t.column not in members] + [shared]
    if family_model == "shared":  # the columns outside any separate family, one by one
        inside = {c for t in targets for c in dict(objective.families)[t.column]}
        targets = [fit_one(c, values[c]) for c in objective.columns if c not in inside] + targets
    model = MixtureModel(targets=targets, objective=objective, pools=list(runs.pools), train_ids=runs.run_ids,
                         train_weights=X, train_y=y, seed=seed, coverage_radius=coverage_radius_of(X),
                         source=runs.source, family_fits=family_fits, column_values=values)
    for note in model.baseline_warnings():  # (the objective's own warnings came when it was parsed)
        warnings.warn(note, MixplanWarning, stacklevel=2)
    return model


#: The ways :func:`fit_model` can fit a ``family(...)`` term.
_FAMILY_MODELS = ("per-column", "shared", "auto")
_SCORES = ("spearman", "pearson", "mae", "rmse")


def _separate_families(objective: Objective) -> list[tuple[str, tuple[str, ...]]]:
    r"""The ``family(...)`` terms of ``objective`` with at least 2 columns and none in an earlier family: the
    objective is :math:`\sum_c k_c y_c` over its columns, so any columns that no two groups share can be summed
    (with their whole coefficients :math:`k_c`, a column term's included) and modelled as one."""
    out, seen = [], set()
    for key, members in objective.families:
        if len(members) >= 2 and not set(members) & seen:
            out.append((key, members))
        seen |= set(members)
    return out


def _with_budget(runs: RunTable, model: str, params: dict[str, Any] | None) -> dict[str, Any] | None:
    """``params`` with ``tokens`` = the runs' one training budget (their ``tokens`` column) when ``model`` is,
    or ``auto`` has a candidate that is, a law in the training tokens (``autoscale``); unchanged otherwise."""
    settings = PRESETS.get(model, {}) | (params or {})
    wanted = [model] if settings.get("kind") != "auto" else list(settings.get("candidates", []))
    if not set(wanted) & set(TOKEN_MODELS) or "tokens" in settings and settings["tokens"] is not None:
        return params
    if "tokens" not in runs.frame.columns:
        return params  # the law's check says what is missing (auto: it skips the candidate with that reason)
    budgets = np.unique(runs.frame["tokens"].to_numpy(dtype=float))
    if len(budgets) != 1:
        if settings.get("kind") == "auto":
            return params
        raise ValidationError(f"{runs.source}: the runs trained on {len(budgets)} different token budgets "
                              f"({budgets.min():g} to {budgets.max():g}); the {model!r} model is fitted within one "
                              "budget: select one with --where tokens=VALUE")
    return (params or {}) | {"tokens": float(budgets[0])}


_REFIT = "refit the model with 'mixplan fit'"


def load_model(directory: str | os.PathLike[str]) -> MixtureModel:
    """Load a model directory written by :meth:`MixtureModel.save` (no pickle)."""
    d = Path(directory)
    meta_path = d / "meta.json"
    if not meta_path.is_file():
        raise ValidationError(f"{d}: not a mixplan model directory (no meta.json); create one with 'mixplan fit'")
    meta = read_json(meta_path, "a model directory from 'mixplan fit'", "not a mixplan model description")
    if not isinstance(meta, dict):
        raise ValidationError(f"{meta_path}: not a mixplan model description (a JSON object is expected)")
    with saved_artefact(meta_path, "model description", _REFIT):
        return _model_from_meta(d, meta_path, meta)


def _model_from_meta(d: Path, meta_path: Path, meta: dict[str, Any]) -> MixtureModel:
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValidationError(f"{meta_path}: format_version {meta.get('format_version')!r} is not "
                              f"{FORMAT_VERSION}; refit the model with this mixplan version")
    pools = list(meta["pools"])
    table = read_table(d / "train_runs.csv")
    objective = Objective.from_dict(meta["objective"])
    targets = []
    for t in meta["targets"]:
        if t["model"] not in PRESETS:
            raise ValidationError(f"{meta_path}: unknown model {t['model']!r}; known: {sorted(PRESETS)}")
        for name in t["files"]:
            path = d / t["dir"] / name
            if not path.is_file():
                raise ValidationError(f"{d}: {t['dir']}/{name} is missing; the model directory is incomplete "
                                      "(refit with mixplan fit)")
        # a damaged regressor file is named (an 'auto' column's several files: their folder)
        where = d / t["dir"] / (t["files"][0] if len(t["files"]) == 1 else "")
        with saved_artefact(where, f"{t['model']} regressor", _REFIT):
            files = {name: (d / t["dir"] / name).read_text(encoding="utf-8") for name in t["files"]}
            reg = MixtureRegressor.from_files(files, t["model"], t.get("params"), meta["random_state"], len(pools))
            # Decoded is not usable: arrays of the wrong length or non-finite numbers would only fail (or
            # answer NaN) at the first prediction, so predict once here, at the uniform mixture.
            with np.errstate(all="ignore"):  # a damaged number's overflow is reported as the line below, once
                probe = reg.predict(np.full((1, len(pools)), 1.0 / len(pools)))
            if not np.all(np.isfinite(probe)):
                raise ValueError(f"it predicts {probe[0]} at the uniform mixture")
        cvd = t["cv"]
        with saved_artefact(d / "train_runs.csv", "table of a model's training runs", _REFIT):
            y = table[t["column"]].to_numpy(dtype=float)
        oof = np.asarray(t["cv_oof"], dtype=float)
        cv = cv_report(oof, y, cvd["n_splits"], cvd["n_repeats"], cvd["seed"],
                     None if t["cv_oof_std"] is None else np.asarray(t["cv_oof_std"], dtype=float))
        coefficient = t.get("coefficient")
        targets.append(TargetFit(column=t["column"], regressor=reg, cv=cv,
                                 coefficient=None if coefficient is None else float(coefficient)))
    y_obj = sum(k * t.cv.y for k, t in zip(target_coefficients(objective, targets), targets))
    with saved_artefact(d / "train_runs.csv", "table of a model's training runs", _REFIT):
        train_ids = table["run_id"].astype(str).tolist()
        train_weights = table[[f"w_{p}" for p in pools]].to_numpy(dtype=float)
        columns = {c: table[c].to_numpy(dtype=float) for c in objective.columns}
    return MixtureModel(
        targets=targets, objective=objective, pools=pools, train_ids=train_ids, train_weights=train_weights,
        train_y=np.asarray(y_obj, dtype=float), seed=int(meta["seed"]),
        coverage_radius=float(meta["coverage_radius"]), source=str(meta.get("source", "")),
        family_fits=list(meta.get("family_fits", [])), column_values=columns)
