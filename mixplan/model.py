"""A fitted study model: regressor + objective + pools + cross-validation evidence.

This is what ``mixplan fit`` writes to a model directory and ``mixplan predict`` / ``mixplan plan``
use. Every prediction comes with an interval (split-conformal on the out-of-fold residuals of the
cross-validation) and the evidence behind it: the nearest proxy run and whether the mixture lies in
the region the proxy runs cover.

Model directory (no pickle anywhere)::

    model.txt | linear.json | gp.json   the regressor (LightGBM text model, ridge coefficients,
                                        or GP hyper-parameters + training data)
    meta.json                 pools, objective, model preset, seed, CV report, versions
    train_runs.csv            the runs it was fitted on: run_id, weights, objective value
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from ._io import check_writable, dumps_json, library_versions, read_table, table_csv, write_text_atomic
from .exceptions import ValidationError
from .objective import Objective
from .regressor import MODEL_FILES, PRESETS, CVReport, MixtureRegressor, cross_validate
from .runs import RunTable

__all__ = ["MixtureModel", "Prediction", "fit_model", "load_model", "DEFAULT_LEVEL"]

DEFAULT_LEVEL = 0.9
#: Quantile of the proxy runs' own nearest-neighbour distances that bounds "covered" mixtures.
COVERAGE_QUANTILE = 0.95
FORMAT_VERSION = 1


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

    def row(self, i: int) -> dict[str, Any]:
        return {"prediction": float(self.mean[i]), "lower": float(self.lower[i]),
                "upper": float(self.upper[i]), "level": self.level,
                "nearest_run": self.nearest_run[i], "nearest_distance": float(self.nearest_distance[i]),
                "covered": bool(self.covered[i])}


@dataclass
class MixtureModel:
    """A regressor fitted to one objective over one set of pools, with its CV evidence."""

    regressor: MixtureRegressor
    objective: Objective
    pools: list[str]
    cv: dict[str, Any]
    halfwidth: dict[str, float]  # interval half-width by level (as a string key, e.g. "0.9")
    train_ids: list[str]
    train_weights: np.ndarray
    train_y: np.ndarray
    seed: int
    coverage_radius: float
    source: str = ""

    def predict(self, weights: np.ndarray, level: float = DEFAULT_LEVEL) -> Prediction:
        W = np.atleast_2d(np.asarray(weights, dtype=float))
        mean = self.regressor.predict(W)
        hw = self.interval_halfwidth(level)
        idx, dist = self.nearest(W)
        return Prediction(mean=mean, lower=mean - hw, upper=mean + hw, level=level,
                          nearest_run=[self.train_ids[i] for i in idx], nearest_distance=dist,
                          covered=dist <= self.coverage_radius + 1e-12)

    def interval_halfwidth(self, level: float) -> float:
        if not 0 < level < 1:
            raise ValidationError(f"interval level {level} must be between 0 and 1 (e.g. 0.9)")
        key = f"{level:g}"
        if key not in self.halfwidth:
            res = np.asarray(self.cv["residuals"], dtype=float)
            self.halfwidth[key] = _conformal_quantile(res, level)
        return self.halfwidth[key]

    def nearest(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index of and total-variation distance to the nearest proxy run, for each row of W."""
        return nearest_run(W, self.train_weights)

    # -- persistence ------------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "mixplan_version": __version__,
            "versions": library_versions(),
            "model": self.regressor.model, "params": self.regressor.params,
            "random_state": self.regressor.random_state, "seed": self.seed,
            "pools": self.pools, "objective": self.objective.to_dict(),
            "cv": {k: v for k, v in self.cv.items() if k != "residuals"},
            "cv_residuals": [float(r) for r in self.cv["residuals"]],
            "interval": {"method": "split-conformal quantile of |out-of-fold CV residual|",
                         "halfwidth": self.halfwidth},
            "coverage_radius": self.coverage_radius, "source": self.source,
        }

    def save(self, directory: str | os.PathLike[str], force: bool = False) -> list[Path]:
        """Write the model directory; everything is serialised before the first file is written."""
        d = Path(directory)
        table = pd.DataFrame(self.train_weights, columns=[f"w_{p}" for p in self.pools])
        table.insert(0, "run_id", self.train_ids)
        table["objective"] = self.train_y
        texts = self.regressor.to_files() | {"meta.json": dumps_json(self.meta()),
                                              "train_runs.csv": table_csv(table)}
        check_writable([d / name for name in texts], force)  # refuse before writing anything
        for name, text in texts.items():
            write_text_atomic(d / name, text, force=force)
        for stale in set(MODEL_FILES.values()) - set(texts):
            (d / stale).unlink(missing_ok=True)  # a previous model of another kind (only with force)
        return [d / name for name in texts]


def cv_summary(cv: dict[str, Any]) -> str:
    """One line: the cross-validation scores of a model (an undefined correlation shows as n/a)."""
    def corr(v: float | None) -> str:
        return "n/a" if v is None or np.isnan(v) else f"{v:.4f}"

    return (f"{cv['n_splits']}-fold CV on {cv['n_runs']} runs: Spearman {corr(cv['spearman'])}, "
            f"Pearson {corr(cv['pearson'])}, MAE {cv['mae']:.4g}, RMSE {cv['rmse']:.4g}")


def _conformal_quantile(residuals: np.ndarray, level: float) -> float:
    r = np.sort(np.abs(residuals))
    k = int(np.ceil((len(r) + 1) * level)) - 1
    return float(r[min(max(k, 0), len(r) - 1)])


def nearest_run(W: np.ndarray, ref: np.ndarray, exclude_self: bool = False,
                max_elements: int = 4_000_000) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``W``: index of the nearest row of ``ref`` and their total-variation distance.

    Computed in chunks of at most ``max_elements`` differences (~32 MB). With ``exclude_self``
    (``W`` is ``ref``), a row is not its own neighbour.
    """
    W = np.atleast_2d(W)
    chunk = max(1, max_elements // max(1, ref.size))
    idx = np.empty(len(W), dtype=int)
    dist = np.empty(len(W))
    for s in range(0, len(W), chunk):
        d = 0.5 * np.abs(W[s:s + chunk, None, :] - ref[None, :, :]).sum(axis=2)
        if exclude_self:
            d[np.arange(len(d)), np.arange(s, s + len(d))] = np.inf
        idx[s:s + chunk] = d.argmin(axis=1)
        dist[s:s + chunk] = d[np.arange(len(d)), idx[s:s + chunk]]
    return idx, dist


def _coverage_radius(W: np.ndarray) -> float:
    """The COVERAGE_QUANTILE of each proxy run's distance to its nearest other run."""
    if len(W) < 2:
        return 0.0
    return float(np.quantile(nearest_run(W, W, exclude_self=True)[1], COVERAGE_QUANTILE))


def fit_model(runs: RunTable, objective: Objective, model: str = "regmix", *, seed: int = 0,
              cv_folds: int = 5, params: dict[str, Any] | None = None, progress: Any = None,
              levels: tuple[float, ...] = (DEFAULT_LEVEL,)) -> MixtureModel:
    """Fit ``model`` to ``objective`` on ``runs`` and cross-validate it (same seed, same folds)."""
    X = runs.weights
    y = objective.values(runs)
    if np.ptp(y) == 0:
        raise ValidationError(f"{runs.source}: the target {objective.spec!r} has the same value ({y[0]:g}) in all "
                              f"{len(y)} runs; there is nothing to learn - check the column")
    reg = MixtureRegressor(model=model, params=params, random_state=seed, n_jobs=1)
    folds = min(cv_folds, len(y))
    # Each CV fold trains on fewer runs than the table has: check the smallest fold, with its reason.
    reg.check_run_count(len(y) - int(np.ceil(len(y) / folds)), X.shape[1],
                        f"{runs.source}: {folds}-fold cross-validation trains each fold model on")
    cv: CVReport = cross_validate(reg, X, y, n_splits=folds, seed=seed, progress=progress)
    reg.fit(X, y)
    if progress is not None:
        progress.update(1)
    cvd = cv.to_dict() | {"residuals": cv.residuals.tolist()}
    return MixtureModel(regressor=reg, objective=objective, pools=list(runs.pools), cv=cvd,
                        halfwidth={f"{lv:g}": _conformal_quantile(cv.residuals, lv) for lv in levels},
                        train_ids=runs.run_ids, train_weights=X, train_y=y, seed=seed,
                        coverage_radius=_coverage_radius(X), source=runs.source)


def load_model(directory: str | os.PathLike[str]) -> MixtureModel:
    """Load a model directory written by :meth:`MixtureModel.save` (no pickle)."""
    d = Path(directory)
    meta_path = d / "meta.json"
    if not meta_path.is_file():
        raise ValidationError(f"{d}: not a mixplan model directory (no meta.json); create one with 'mixplan fit'")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{meta_path}: not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise ValidationError(f"{meta_path}: not a mixplan model description (a JSON object is expected)")
    try:
        return _model_from_meta(d, meta_path, meta)
    except ValidationError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValidationError(f"{meta_path}: damaged or incomplete ({type(exc).__name__}: {exc}); refit the "
                              "model with mixplan fit") from exc


def _model_from_meta(d: Path, meta_path: Path, meta: dict[str, Any]) -> MixtureModel:
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValidationError(f"{meta_path}: format_version {meta.get('format_version')!r} is not "
                              f"{FORMAT_VERSION}; refit the model with this mixplan version")
    if meta.get("model") not in PRESETS:
        raise ValidationError(f"{meta_path}: unknown model {meta.get('model')!r}; known: {sorted(PRESETS)}")
    name = MODEL_FILES[PRESETS[meta["model"]]["kind"]]
    if not (d / name).is_file():
        raise ValidationError(f"{d}: {name} is missing; the model directory is incomplete (refit with mixplan fit)")
    files = {name: (d / name).read_text(encoding="utf-8")}
    pools = list(meta["pools"])
    reg = MixtureRegressor.from_files(files, meta["model"], meta.get("params"), meta["random_state"], len(pools))
    table = read_table(d / "train_runs.csv")
    cv = dict(meta["cv"]) | {"residuals": meta["cv_residuals"]}
    return MixtureModel(
        regressor=reg,
        objective=Objective.from_dict(meta["objective"]),
        pools=pools, cv=cv, halfwidth={k: float(v) for k, v in meta["interval"]["halfwidth"].items()},
        train_ids=table["run_id"].astype(str).tolist(),
        train_weights=table[[f"w_{p}" for p in pools]].to_numpy(dtype=float),
        train_y=table["objective"].to_numpy(dtype=float), seed=int(meta["seed"]),
        coverage_radius=float(meta["coverage_radius"]), source=str(meta.get("source", "")))
