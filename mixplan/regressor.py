r"""Mixture regressors: mixture weights -> metric, with the scikit-learn estimator contract.

Three presets:

``regmix``
    LightGBM as in RegMix (Liu et al. 2025, ``regression.ipynb``): gbdt, L2 objective, 1,000 trees,
    learning rate 0.01, 31 leaves, ``min_child_samples`` 20, no bagging, no penalties. RegMix
    early-stops on its *test* runs; that leaks the evaluation set, so here the tree count is fixed.
``ridge``
    Ridge regression on the raw weights (alpha 0.01), the linear baseline of the RegMix paper.
``gp``
    A Gaussian process on :math:`\log(w + \epsilon)` (:math:`\epsilon` = 0.01): constant x
    Matern(5/2) with one length scale per pool, plus white noise, hyper-parameters by maximum
    marginal likelihood (L-BFGS-B, restarts). A pool's effect on a loss is close to logarithmic in
    its share (each pool's loss falls like a power of its data), so distances are measured on that
    scale; the GP is smooth, so the search cannot exploit the steps of a tree ensemble. Suited to
    tens to a few hundred runs (its cost grows with the cube of the run count).

Models are saved without pickle: LightGBM's own text format, the ridge coefficients in JSON, or the
GP's kernel hyper-parameters and training data in JSON (reloaded without re-optimising).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from .exceptions import NotFittedError, ValidationError
from .runs import check_enough_runs

__all__ = ["MixtureRegressor", "PRESETS", "CVReport", "cross_validate"]

PRESETS: dict[str, dict[str, Any]] = {
    "regmix": {"kind": "lightgbm", "boosting_type": "gbdt", "objective": "regression",
               "n_estimators": 1000, "learning_rate": 0.01, "num_leaves": 31,
               "min_child_samples": 20, "verbosity": -1},
    "ridge": {"kind": "ridge", "alpha": 0.01},
    "gp": {"kind": "gp", "eps": 0.01, "nu": 2.5, "n_restarts": 3},
}

#: The file a fitted model of each kind is saved as.
MODEL_FILES = {"lightgbm": "model.txt", "ridge": "linear.json", "gp": "gp.json"}

#: Inside cross-validation each fold model sees (k-1)/k of the runs: more folds, more runs per fold.
_CV_HINT = " (inside cross-validation, more --cv-folds give each fold model more runs)"

#: Runs needed per fitted parameter before a linear model is fitted at all.
RUNS_PER_PARAMETER = 2.0


class MixtureRegressor(RegressorMixin, BaseEstimator):
    """Predict a metric from mixture weights.

    Parameters
    ----------
    model : {"regmix", "ridge"}
        The preset (see the module docstring).
    params : dict, optional
        Overrides of the preset's settings (LightGBM keyword names, or ``alpha`` for ridge).
    random_state : int
        Seed handed to LightGBM (``seed``); ridge is deterministic.
    n_jobs : int
        Threads for LightGBM. Default 1: on a busy 2-core machine more threads are slower.

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of str, when fitted on a DataFrame
    booster_ : lightgbm.Booster (``regmix``)
    coef_, intercept_ : ndarray, float (``ridge``)
    """

    def __init__(self, model: str = "regmix", *, params: dict[str, Any] | None = None,
                 random_state: int = 0, n_jobs: int = 1) -> None:
        self.model = model
        self.params = params
        self.random_state = random_state
        self.n_jobs = n_jobs

    # -- settings ---------------------------------------------------------------------------------
    def _settings(self) -> dict[str, Any]:
        if self.model not in PRESETS:
            raise ValidationError(f"unknown model {self.model!r}; available: {sorted(PRESETS)}")
        settings = dict(PRESETS[self.model])
        for key, value in (self.params or {}).items():
            if key == "kind":
                raise ValidationError("'kind' is fixed by the preset; choose another model instead")
            settings[key] = value
        return settings

    @property
    def kind(self) -> str:
        return str(self._settings()["kind"])

    # -- fit / predict ----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "MixtureRegressor":
        X_arr, y_arr = self._check_xy(X, y)
        settings = self._settings()
        kind = settings.pop("kind")
        n, p = X_arr.shape
        self.check_run_count(n, p, "fitting on")
        self._reset()
        if kind == "lightgbm":
            import lightgbm as lgb

            est = lgb.LGBMRegressor(random_state=self.random_state, n_jobs=self.n_jobs, **settings)
            est.fit(X_arr, y_arr, sample_weight=sample_weight)
            self.booster_ = est.booster_
        elif kind == "gp":
            if sample_weight is not None:
                raise ValidationError("the gp model does not take sample weights")
            self.gp_ = _fit_gp(np.log(X_arr + settings["eps"]), y_arr, settings, self.random_state)
        else:
            from sklearn.linear_model import Ridge

            est = Ridge(alpha=float(settings.get("alpha", 0.01))).fit(X_arr, y_arr, sample_weight=sample_weight)
            self.coef_ = np.asarray(est.coef_, dtype=float)
            self.intercept_ = float(est.intercept_)
        self.n_features_in_ = p
        return self

    def check_run_count(self, n: int, p: int, where: str) -> None:
        """Refuse to fit from too few runs; ``where`` says where they come from (file, CV fold)."""
        settings = self._settings()
        if settings["kind"] == "lightgbm":
            min_leaf = int(settings.get("min_child_samples", 20))
            if n < 2 * min_leaf:
                raise ValidationError(
                    f"{where} {n} runs: too few for the {self.model!r} model: LightGBM needs at least "
                    f"{2 * min_leaf} runs (2 x min_child_samples = {min_leaf}) to make a single split "
                    f"and would predict a constant; add runs or use --model gp or ridge{_CV_HINT}")
        else:
            # ridge: P weights + intercept; gp: P length scales + amplitude + noise
            n_params = p + (2 if settings["kind"] == "gp" else 1)
            check_enough_runs(n, n_params, RUNS_PER_PARAMETER, f"the {self.model!r} model on {p} pools",
                              where, hint=f"add proxy runs or use --model ridge{_CV_HINT}")

    def _reset(self) -> None:
        for attr in ("booster_", "coef_", "intercept_", "gp_", "feature_names_in_"):
            self.__dict__.pop(attr, None)

    def predict(self, X: Any, *, num_iteration: int | None = None) -> np.ndarray:
        """Predict for mixtures ``X`` (n, n_pools).

        ``num_iteration`` (LightGBM only) scores with the first trees only: a cheap pre-filter.
        """
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError("this MixtureRegressor is not fitted yet; call fit(X, y) first")
        X_arr = self._check_x(X)
        if hasattr(self, "booster_"):
            return np.asarray(self.booster_.predict(X_arr, num_threads=self.n_jobs,
                                                    num_iteration=num_iteration), dtype=float)
        if hasattr(self, "gp_"):
            return np.asarray(self.gp_.predict(np.log(X_arr + self._settings()["eps"])), dtype=float)
        return X_arr @ self.coef_ + self.intercept_

    @property
    def n_trees_(self) -> int:
        return int(self.booster_.num_trees()) if hasattr(self, "booster_") else 0

    # -- persistence (no pickle) ------------------------------------------------------------------
    def to_files(self) -> dict[str, str]:
        """The fitted model as one text file, named by :data:`MODEL_FILES`."""
        if hasattr(self, "booster_"):
            text = self.booster_.model_to_string()
        elif hasattr(self, "coef_"):
            text = json.dumps({"coef": self.coef_.tolist(), "intercept": self.intercept_}, indent=2) + "\n"
        elif hasattr(self, "gp_"):
            gp = self.gp_
            text = json.dumps({"theta": gp.kernel_.theta.tolist(), "X": gp.X_train_.tolist(),
                               "y": gp.mixplan_y_.tolist(),
                               "log_marginal_likelihood": float(gp.log_marginal_likelihood_value_)}) + "\n"
        else:
            raise NotFittedError("this MixtureRegressor is not fitted yet; nothing to save")
        return {MODEL_FILES[self.kind]: text}

    @classmethod
    def from_files(cls, files: dict[str, str], model: str, params: dict[str, Any] | None,
                   random_state: int, n_features: int) -> "MixtureRegressor":
        est = cls(model=model, params=params, random_state=random_state)
        kind = est.kind
        text = files[MODEL_FILES[kind]]
        if kind == "lightgbm":
            import lightgbm as lgb

            est.booster_ = lgb.Booster(model_str=text)
        elif kind == "gp":
            doc = json.loads(text)
            est.gp_ = _fit_gp(np.asarray(doc["X"]), np.asarray(doc["y"]), est._settings(), random_state,
                              theta=np.asarray(doc["theta"]))
        else:
            doc = json.loads(text)
            est.coef_ = np.asarray(doc["coef"], dtype=float)
            est.intercept_ = float(doc["intercept"])
        est.n_features_in_ = n_features
        return est

    # -- validation -------------------------------------------------------------------------------
    def _check_x(self, X: Any) -> np.ndarray:
        X_arr = np.asarray(X, dtype=float)
        if X_arr.ndim != 2:
            raise ValidationError(f"mixtures must be a 2-D array (runs x pools), got shape {X_arr.shape}")
        if hasattr(self, "n_features_in_") and X_arr.shape[1] != self.n_features_in_:
            raise ValidationError(f"mixtures have {X_arr.shape[1]} pools; the model was fitted on "
                                  f"{self.n_features_in_}")
        if not np.all(np.isfinite(X_arr)):
            raise ValidationError("mixtures contain NaN or infinite weights")
        return X_arr

    def _check_xy(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        X_arr = self._check_x(X)
        y_arr = np.asarray(y, dtype=float).ravel()
        if y_arr.shape[0] != X_arr.shape[0]:
            raise ValidationError(f"{X_arr.shape[0]} mixtures but {y_arr.shape[0]} target values")
        if not np.all(np.isfinite(y_arr)):
            raise ValidationError("the target has NaN or infinite values")
        return X_arr, y_arr


def _fit_gp(F: np.ndarray, y: np.ndarray, settings: dict[str, Any], seed: int,
            theta: np.ndarray | None = None) -> Any:
    """Fit the ``gp`` preset on features ``F``; with ``theta`` (log hyper-parameters), refit without
    optimising, which reproduces a saved model exactly."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    p = F.shape[1]
    kernel = (ConstantKernel(1.0, (1e-3, 1e3)) * Matern(np.ones(p), (1e-2, 1e3), nu=float(settings["nu"]))
              + WhiteKernel(1e-3, (1e-8, 1.0)))
    if theta is not None:
        kernel = kernel.clone_with_theta(theta)
    gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed,
                                  optimizer=None if theta is not None else "fmin_l_bfgs_b",
                                  n_restarts_optimizer=int(settings["n_restarts"]))
    with warnings.catch_warnings():
        # A length scale at its bound only means the pool barely matters; not worth a warning.
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(F, y)
    gp.mixplan_y_ = np.array(y, dtype=float)  # the un-normalised targets, to save the model
    return gp


@dataclass(frozen=True)
class CVReport:
    """K-fold cross-validation of a regressor on the proxy runs.

    ``oof`` holds each run's out-of-fold prediction; ``residuals = y - oof``.
    """

    n_splits: int
    n_runs: int
    spearman: float
    pearson: float
    mae: float
    rmse: float
    oof: np.ndarray
    residuals: np.ndarray
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; an undefined correlation (constant predictions) becomes None."""
        def num(v: float) -> float | None:
            return None if np.isnan(v) else v

        return {"n_splits": self.n_splits, "n_runs": self.n_runs, "spearman": num(self.spearman),
                "pearson": num(self.pearson), "mae": self.mae, "rmse": self.rmse, "seed": self.seed}


def cross_validate(estimator: MixtureRegressor, X: np.ndarray, y: np.ndarray, n_splits: int = 5,
                   seed: int = 0, progress: Any = None) -> CVReport:
    """Shuffled K-fold CV; reports Spearman, Pearson, MAE and RMSE of the out-of-fold predictions."""
    from scipy.stats import pearsonr, spearmanr
    from sklearn.base import clone
    from sklearn.model_selection import KFold

    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if n_splits < 2 or n_splits > len(y):
        raise ValidationError(f"cv folds must be between 2 and the number of runs ({len(y)}), got {n_splits}")
    oof = np.empty_like(y)
    for train, test in KFold(n_splits=n_splits, shuffle=True, random_state=seed).split(X):
        oof[test] = clone(estimator).fit(X[train], y[train]).predict(X[test])
        if progress is not None:
            progress.update(1)
    const = np.ptp(oof) == 0 or np.ptp(y) == 0
    rho = float("nan") if const else float(spearmanr(oof, y)[0])
    r = float("nan") if const else float(pearsonr(oof, y)[0])
    res = y - oof
    return CVReport(n_splits=n_splits, n_runs=len(y), spearman=rho, pearson=r,
                    mae=float(np.mean(np.abs(res))), rmse=float(np.sqrt(np.mean(res ** 2))),
                    oof=oof, residuals=res, seed=seed)
