r"""Mixture regressors: mixture weights -> metric, with the scikit-learn estimator contract.

Presets (``MixtureRegressor(model=...)``):

``auto`` (default)
    Fits every candidate below that the run count supports, scores each by repeated K-fold
    cross-validation on the same folds, and stacks them: non-negative weights summing to one that
    minimise the out-of-fold squared error. The stack replaces the best single candidate only if it
    is better under *cross-fitted* weights (weights for each fold chosen on the other folds), so
    the choice itself is validated. Every candidate's CV scores are kept (``selection_``) so the
    user sees why.
``gp``
    Gaussian process (:mod:`mixplan.models.gp`), Matern 5/2 with one length scale per pool on
    :math:`\sqrt{w}`. The square-root map sends the simplex onto a sphere on which Euclidean distance
    is the Hellinger distance between mixtures, a natural geometry for distributions; it also
    stretches small shares, where a pool's effect on a loss changes fastest. Each log length
    scale has a Gaussian prior (centre 3x the features' typical spread, width 1) so that 17 length
    scales can be fitted from a few dozen runs; beyond ``ARD_MAX_POOLS`` pools one length scale is
    shared. At scale the hyper-parameters come from a seeded subset of the runs (``OPT_RUNS_*``) and
    the posterior from at most ``POSTERIOR_RUNS`` runs.
``gp-log``
    The same GP on :math:`\log(w + 0.01)` (the loss of a pool falls like a power of its data).
``lightgbm``
    LightGBM whose leaf size and leaf count follow the run count (RegMix's settings from 320 runs
    on; ``min_child_samples = clip(n/16, 3, 20)``, ``num_leaves = clip(n/8, 4, 31)``), so it can
    split from ten runs on; beyond 32 pools with 63 bins and 64 random pools per tree.
``regmix``
    LightGBM exactly as RegMix (Liu et al. 2025): gbdt, L2, 1,000 trees, learning rate 0.01,
    31 leaves, ``min_child_samples`` 20. RegMix early-stops on its *test* runs, which leaks the
    evaluation set, so the tree count is fixed. Needs 40 runs to make a single split.
``ridge``
    Ridge on standardised :math:`[w, \log(w + 0.01)]` (optionally pairwise products
    :math:`w_i w_j`), the penalty chosen by efficient leave-one-out CV.
``linear``
    Ridge on the raw weights (alpha 0.01), the linear baseline of the RegMix paper.
``dml``
    The Data Mixing Laws form :math:`c + k e^{t^\top w}` (:mod:`mixplan.models.mixing_law`), Huber loss,
    L-BFGS.
``bimix``
    BiMix's proportion law :math:`\sum_i F_i \max(w_i, 0.01)^{-\alpha_i}` (olmix's form, floored at 0.01)
    (:mod:`mixplan.models.power_laws`) plus a constant (``constant``: off in olmix), Huber loss,
    bounded L-BFGS-B.
``autoscale``
    AutoScale's law :math:`L + \sum_i (N_{0,i} + N w_i)^{-\gamma_i}` as olmix ships it, with :math:`N`
    fixed to the runs' training tokens (``tokens``: ``fit_model`` takes it from the runs table's
    ``tokens`` column); same fit.
``auto-wide``
    ``auto`` with ``bimix`` and ``autoscale`` among the candidates (``autoscale`` only when the runs have
    one training budget). They are not in ``auto``: on RegMix's runs they rank held-out runs worse than
    every default candidate, and cross-validating them slowed ``auto`` from 4.4-4.9 s to 8.0-8.5 s at
    100 runs (no race: every fold is fitted) and from 6.1-6.4 s to 7.5-7.9 s at 512 runs, where the race
    drops both after one fold (2.8x and 5.6x the best first-fold error); the stack was the same.

Models are saved without pickle: LightGBM's own text format, JSON for everything else.
"""

from __future__ import annotations

import json
import operator
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from ..exceptions import NotFittedError, ValidationError
from .._parallel import map_ordered, resolve_jobs
from .._stats import pearson, ridge_loo, spearman
from .gp import GaussianProcess, fit_gp
from .mixing_law import LogLinearForm, MixingLaw, fit_mixing_law
from .power_laws import AutoScale, BiMix, fit_autoscale, fit_bimix
from ..data.runs import check_enough_runs

__all__ = ["MixtureRegressor", "PRESETS", "CVReport", "cross_validate", "stack_weights", "cv_report"]

_RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-4, 3, 29))

PRESETS: dict[str, dict[str, Any]] = {
    "auto": {"kind": "auto", "candidates": ["gp", "gp-log", "ridge", "dml", "lightgbm"]},
    "auto-wide": {"kind": "auto", "candidates": ["gp", "gp-log", "ridge", "dml", "lightgbm", "bimix", "autoscale"]},
    "gp": {"kind": "gp", "features": "sqrt", "eps": 0.01, "ard": True, "prior_scale": 3.0, "prior_width": 1.0,
           "maxiter": 200, "opt_runs": None},
    "gp-log": {"kind": "gp", "features": "log", "eps": 0.01, "ard": True, "prior_scale": 3.0, "prior_width": 1.0,
               "maxiter": 200, "opt_runs": None},
    "lightgbm": {"kind": "lightgbm", "adaptive": True, "boosting_type": "gbdt", "objective": "regression",
                 "n_estimators": 1000, "learning_rate": 0.01, "verbosity": -1},
    "regmix": {"kind": "lightgbm", "boosting_type": "gbdt", "objective": "regression",
               "n_estimators": 1000, "learning_rate": 0.01, "num_leaves": 31,
               "min_child_samples": 20, "verbosity": -1},
    "ridge": {"kind": "ridge", "features": "log+raw", "pairwise": False, "eps": 0.01, "alphas": list(_RIDGE_ALPHAS)},
    "linear": {"kind": "ridge", "features": "raw", "pairwise": False, "alpha": 0.01},
    "dml": {"kind": "dml", "delta": 0.1, "l2": 1e-4},
    "bimix": {"kind": "bimix", "constant": True, "eps": 0.01, "delta": 0.1},
    "autoscale": {"kind": "autoscale", "tokens": None, "delta": 0.1},
}
#: Presets that take the runs' training tokens (``tokens``) from ``fit_model``.
TOKEN_MODELS = ("autoscale",)

#: The file a fitted model of each kind is saved as.
MODEL_FILES = {"lightgbm": "model.txt", "ridge": "ridge.json", "gp": "gp.json", "dml": "dml.json",
               "bimix": "bimix.json", "autoscale": "autoscale.json", "auto": "auto.json"}

#: Inside cross-validation each fold model sees (k-1)/k of the runs: more folds, more runs per fold.
_CV_HINT = " (inside cross-validation, more --cv-folds give each fold model more runs)"

#: Runs needed per fitted parameter before an unregularised model is fitted at all.
RUNS_PER_PARAMETER = 2.0
#: Fewest runs for a regularised model (GP with a length-scale prior, ridge with a CV'd penalty).
MIN_RUNS = 8
#: Above this many pools the GP has one length scale shared by every pool instead of one per pool:
#: hundreds of length scales cost hundreds of optimiser dimensions and over-fit. Measured (held-out
#: Spearman of the sqrt-GP / log-GP on synthetic studies): 100 pools x 512 runs, shared 0.885 / 0.902
#: against one per pool 0.840 / 0.838; 400 x 512: 0.260 / 0.236 against 0.147 / 0.114; 50 x 2,000:
#: 0.941 / 0.964 against 0.938 / 0.962. (Eight groups of pools ranked by their correlation with the
#: target did worse than both, 0.835 / 0.777 at 100 x 512, and chose features on the held-out folds'
#: targets: their cross-validation was optimistic, 0.43 against 0.11 on held-out runs.)
ARD_MAX_POOLS = 32
#: Beyond this many runs a GP's hyper-parameters are optimised on a seeded subset of them (the posterior
#: still conditions on every run): 1,024 runs with one length scale per pool, 512 with a shared one.
#: Measured on synthetic studies (held-out Spearman, fit seconds): 17 pools x 2,000 runs, sqrt-GP
#: exact 0.9872 (27 s), 1,024-run subset 0.9814, 768 0.9725; log-GP 0.9759 either way. 400 pools x
#: 2,000 runs (eight groups of length scales): exact 0.3925 / 0.3845 (61 s / 58 s), 512-run subset
#: 0.3982 / 0.3913 (3.5 s / 2.6 s).
OPT_RUNS_ARD, OPT_RUNS_SHARED = 1024, 512
#: Beyond this many runs the GP conditions on a seeded subset of them ("subset of data"): its n^3 work
#: and n^2 memory (134 MB per matrix here) stay bounded; the other candidates use every run.
POSTERIOR_RUNS = 4096
#: Cross-validation keeps a GP's hyper-parameters fixed (fold models condition on their runs with the
#: full fit's hyper-parameters, instead of re-optimising them) once there are this many runs per
#: hyper-parameter: the hyper-parameters then carry little of any one fold's information, and the CV
#: costs one Cholesky factorisation per fold instead of an optimisation.
FIXED_THETA_RUNS = 20
#: auto's race: when a test fold holds at least this many runs, a candidate whose error on the first
#: fold is more than ``RACE_RATIO`` times the best candidate's is not cross-validated further (it
#: cannot win, and a model that much worse earns next to no stacking weight); the report says so.
RACE_MIN_FOLD = 50
RACE_RATIO = 2.0
#: Kinds whose fold models start from the fit on all runs (which auto therefore makes first).
WARM_STARTED = ("gp", "dml", "bimix", "autoscale")


def _features(X: np.ndarray, kind: str, eps: float) -> np.ndarray:
    if kind == "sqrt":
        return np.sqrt(X)
    if kind == "log":
        return np.log(X + eps)
    if kind == "raw":
        return X
    if kind == "log+raw":
        return np.hstack([X, np.log(X + eps)])
    raise ValidationError(f"unknown feature map {kind!r}; use sqrt, log, raw or log+raw")


def _seeded_subset(n: int, size: int, seed: int) -> np.ndarray | None:
    """``size`` of ``n`` run indices drawn with ``seed`` (sorted), or None when there are not more."""
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False)) if n > size else None


def _length_groups(n_pools: int, settings: dict[str, Any]) -> np.ndarray:
    """The GP's length-scale group of every pool: its own up to ``ARD_MAX_POOLS`` pools (with ``ard``),
    one shared by all beyond (and with ``ard`` off)."""
    ard = bool(settings["ard"]) and n_pools <= ARD_MAX_POOLS
    return np.arange(n_pools) if ard else np.zeros(n_pools, dtype=int)


def ridge_loo_alpha(Z: np.ndarray, y: np.ndarray, alphas: Any) -> float:
    """The penalty of ``alphas`` with the smallest mean squared leave-one-out error of a ridge with an
    unpenalised intercept (the first on ties), as scikit-learn's ``RidgeCV`` chooses it
    (:func:`mixplan._stats.ridge_loo`)."""
    return ridge_loo(Z, y, list(alphas)).alpha


def _pairwise(X: np.ndarray) -> np.ndarray:
    i, j = np.triu_indices(X.shape[1], k=1)
    return X[:, i] * X[:, j]


def adaptive_lightgbm(n_runs: int, n_pools: int = 0) -> dict[str, float]:
    """Leaf size and leaf count of the ``lightgbm`` preset for ``n_runs`` training runs; beyond
    ``ARD_MAX_POOLS`` pools also 63 histogram bins and a random ``64 / n_pools`` of the pools per tree
    (a tree's split search scans every pool's every bin: at 400 pools and 255 bins a 1,000-tree fit took
    31 s; with these settings 2 s, at the same or better held-out accuracy on synthetic studies)."""
    out: dict[str, float] = {"min_child_samples": int(np.clip(n_runs // 16, 3, 20)),
                             "num_leaves": int(np.clip(n_runs // 8, 4, 31))}
    if n_pools > ARD_MAX_POOLS:
        out |= {"max_bin": 63, "colsample_bytree": min(1.0, 64 / n_pools)}
    return out


class MixtureRegressor(RegressorMixin, BaseEstimator):
    """Predict a metric from mixture weights.

    Parameters
    ----------
    model : str
        A preset name (see the module docstring); ``"auto"`` chooses and stacks by CV.
    params : dict, optional
        Overrides of the preset's settings (LightGBM keyword names; ``alpha``/``alphas``/``pairwise``
        for ridge; ``prior_scale``/``prior_width``/``ard``/``features`` for gp; ``constant``/``eps`` for bimix;
        ``tokens`` (the runs' training tokens N) for autoscale, and auto hands it to its autoscale candidate;
        ``candidates`` for auto).
    random_state : int
        Seed for LightGBM and the CV folds of ``auto``.
    n_jobs : int
        Parallel workers for ``auto``'s candidates and folds (threads; every model itself runs on one
        thread, so the result is the same for any ``n_jobs``). Default 1.
    cv_folds, cv_repeats : int
        Folds and repeats of ``auto``'s model choice; ``cv_repeats=None`` adapts to the run count
        (3 below 128 runs, 2 below 256, else 1: more runs make one repeat stable and costly).

    Attributes
    ----------
    n_features_in_ : int
    booster_ (lightgbm) ; coef_, intercept_, scale_, shift_ (ridge) ; gp_ (gp) ; law_ (dml)
    candidates_ : dict name -> fitted MixtureRegressor (auto)
    weights_ : dict name -> stacking weight, the components actually used (auto)
    selection_ : list of dicts, every candidate's CV scores or the reason it was skipped (auto)
    cv_ : CVReport of the chosen model on the selection folds (auto)
    """

    def __init__(self, model: str = "auto", *, params: dict[str, Any] | None = None,
                 random_state: int = 0, n_jobs: int = 1, cv_folds: int = 5, cv_repeats: int | None = None) -> None:
        self.model = model
        self.params = params
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.cv_folds = cv_folds
        self.cv_repeats = cv_repeats

    # -- settings ---------------------------------------------------------------------------------
    def _settings(self) -> dict[str, Any]:
        if self.model not in PRESETS:
            raise ValidationError(f"unknown model {self.model!r}; available: {', '.join(sorted(PRESETS))}")
        settings = dict(PRESETS[self.model])
        for key, value in (self.params or {}).items():
            if key == "kind":
                raise ValidationError("'kind' is fixed by the preset; choose another model instead")
            settings[key] = value
        return settings

    @property
    def kind(self) -> str:
        return str(self._settings()["kind"])

    def _repeats(self, n: int) -> int:
        if self.cv_repeats is not None:
            return int(self.cv_repeats)
        return 3 if n < 128 else 2 if n < 256 else 1

    # -- fit / predict ----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> "MixtureRegressor":
        X_arr, y_arr = self._check_xy(X, y)
        settings = self._settings()
        kind = settings.pop("kind")
        n, p = X_arr.shape
        self.check_run_count(n, p, "fitting on")
        self._reset()
        self.n_features_in_ = p
        if kind == "auto":
            self._fit_auto(X_arr, y_arr, settings)
        elif kind == "lightgbm":
            import lightgbm as lgb

            if settings.pop("adaptive", False):
                settings = adaptive_lightgbm(n, p) | settings
            # One thread: multi-threaded training sums histograms in a varying order (not bit-reproducible).
            est = lgb.LGBMRegressor(random_state=self.random_state, n_jobs=1, **settings)
            est.fit(X_arr, y_arr)
            self.booster_ = est.booster_
        elif kind == "gp":
            self._fit_gp(X_arr, y_arr, settings)
        elif kind == "dml":
            full = getattr(self, "_cv_from", None)  # inside cross-validation: start from the full fit
            self.law_ = fit_mixing_law(X_arr, y_arr, delta=float(settings["delta"]), l2=float(settings["l2"]),
                                       start=None if full is None else full.law_)
        elif kind == "bimix":
            full = getattr(self, "_cv_from", None)
            self.law_ = fit_bimix(X_arr, y_arr, constant=bool(settings["constant"]), eps=float(settings["eps"]),
                                  delta=float(settings["delta"]), start=None if full is None else full.law_)
        elif kind == "autoscale":
            full = getattr(self, "_cv_from", None)
            self.law_ = fit_autoscale(X_arr, y_arr, float(settings["tokens"]), delta=float(settings["delta"]),
                                      start=None if full is None else full.law_)
        else:
            self._fit_ridge(X_arr, y_arr, settings)
        return self

    def _fit_gp(self, X: np.ndarray, y: np.ndarray, settings: dict[str, Any]) -> None:
        F = _features(X, settings["features"], settings["eps"])
        keep = _seeded_subset(len(y), POSTERIOR_RUNS, self.random_state)
        if keep is not None:  # beyond POSTERIOR_RUNS runs the GP conditions on a seeded subset of them
            F, y = F[keep], y[keep]
        n, p = F.shape
        # Inside cross-validation the full fit's GP is handed over: kept fixed when its runs are many per
        # hyper-parameter, otherwise the starting point.
        full = getattr(self, "_cv_from", None)
        full = None if full is None else full.gp_
        if full is not None and len(full.y) >= FIXED_THETA_RUNS * len(full.theta):
            self.gp_ = fit_gp(F, y, groups=full.groups, theta=full.theta)
            return
        groups = full.groups if full is not None else _length_groups(p, settings)
        spread = float(np.log(max(F.std(axis=0).mean(), 1e-6) * np.sqrt(p)))
        prior = (spread + float(np.log(settings["prior_scale"])), float(settings["prior_width"]))
        opt_runs = settings.get("opt_runs") or (OPT_RUNS_ARD if groups.max() + 1 == p else OPT_RUNS_SHARED)
        subset = _seeded_subset(n, int(opt_runs), self.random_state)  # the hyper-parameters' runs
        theta0 = None if full is None else full.theta
        self.gp_ = fit_gp(F, y, groups=groups, prior=prior, maxiter=int(settings["maxiter"]), theta0=theta0,
                          starts=() if theta0 is not None else (0.0,), subset=subset)

    def _ridge_design(self, X: np.ndarray, settings: dict[str, Any]) -> np.ndarray:
        F = _features(X, settings["features"], settings.get("eps", 0.01))
        return np.hstack([F, _pairwise(X)]) if settings.get("pairwise") else F

    def _fit_ridge(self, X: np.ndarray, y: np.ndarray, settings: dict[str, Any]) -> None:
        from sklearn.linear_model import Ridge

        F = self._ridge_design(X, settings)
        if settings["features"] == "raw":  # the RegMix baseline: raw weights, fixed penalty
            shift, scale = np.zeros(F.shape[1]), np.ones(F.shape[1])
        else:
            shift, scale = F.mean(axis=0), F.std(axis=0)
            scale[scale == 0] = 1.0
        Z = (F - shift) / scale
        self.alpha_ = float(settings["alpha"]) if "alpha" in settings else ridge_loo_alpha(Z, y, settings["alphas"])
        est = Ridge(alpha=self.alpha_).fit(Z, y)
        self.coef_ = np.asarray(est.coef_, dtype=float)
        self.intercept_ = float(est.intercept_)
        self.shift_, self.scale_ = shift, scale

    def _fit_auto(self, X: np.ndarray, y: np.ndarray, settings: dict[str, Any]) -> None:
        n, p = X.shape
        folds = min(self.cv_folds, n)
        repeats = self._repeats(n)
        fold_runs = n - int(np.ceil(n / folds))
        selection: list[dict[str, Any]] = []
        progress = getattr(self, "_progress", None)
        jobs = resolve_jobs(self.n_jobs)
        tasks = fold_tasks(n, folds, repeats, self.random_state)
        ests: dict[str, MixtureRegressor] = {}
        for name in settings["candidates"]:
            if name not in PRESETS or PRESETS[name]["kind"] == "auto":
                raise ValidationError(f"auto: unknown candidate {name!r}; choose from "
                                      f"{', '.join(sorted(m for m in PRESETS if PRESETS[m]['kind'] != 'auto'))}")
            tokens = {"tokens": settings["tokens"]} if name in TOKEN_MODELS and settings.get("tokens") else None
            est = MixtureRegressor(name, params=tokens, random_state=self.random_state, n_jobs=1)
            try:
                est.check_run_count(fold_runs, p, f"{folds}-fold cross-validation trains each fold model on")
            except ValidationError as exc:
                selection.append({"model": name, "status": "skipped", "reason": str(exc)})
                continue
            ests[name] = est
        if not ests:
            raise ValidationError(f"auto: no candidate model can be fitted from {fold_runs} runs per CV fold; "
                                  "add proxy runs")

        # Every candidate's first fold (a GP or a mixing law is fitted on all runs first: its fold models
        # start from it, or keep a GP's hyper-parameters); then the race; then the survivors' other folds
        # and full fits.
        seconds: dict[str, float] = {}

        def first_fold(name: str) -> tuple[np.ndarray, np.ndarray | None]:
            start = time.perf_counter()
            if ests[name].kind in WARM_STARTED:
                ests[name].fit(X, y)
            out = fold_prediction(ests[name], X, y, tasks[0][1], tasks[0][2])
            seconds[name] = time.perf_counter() - start
            return out

        firsts = dict(zip(ests, map_ordered(first_fold, list(ests), jobs, progress)))
        test0 = tasks[0][2]
        first_rmse = {m: float(np.sqrt(np.mean((y[test0] - pred) ** 2))) for m, (pred, _) in firsts.items()}
        survivors = list(ests)
        if len(test0) >= RACE_MIN_FOLD and len(ests) > 1:
            lead = min(first_rmse, key=first_rmse.__getitem__)
            for m in list(survivors):
                if first_rmse[m] > RACE_RATIO * first_rmse[lead]:
                    survivors.remove(m)
                    selection.append({"model": m, "status": "skipped", "reason": (
                        f"its error on the first of {folds} folds (RMSE {first_rmse[m]:.4g}) was "
                        f"{first_rmse[m] / first_rmse[lead]:.1f}x {lead}'s ({first_rmse[lead]:.4g}): it cannot "
                        "win, so it was not cross-validated further")})

        # The survivors' other folds and the full fits not made yet, as one list of independent tasks,
        # the slowest candidate's first (the order only balances the workers: results are keyed).
        slow_first = sorted(survivors, key=lambda m: -seconds[m])
        work: list[tuple[str, int]] = [(m, k) for m in slow_first for k in range(1, len(tasks))]
        work += [(m, -1) for m in slow_first if ests[m].kind not in WARM_STARTED]

        def run(item: tuple[str, int]) -> tuple[np.ndarray, np.ndarray | None] | None:
            m, k = item
            if k < 0:
                ests[m].fit(X, y)
                return None
            return fold_prediction(ests[m], X, y, tasks[k][1], tasks[k][2])

        results = dict(zip(work, map_ordered(run, work, jobs, progress)))
        reports = {m: _cv_of(tasks, [firsts[m]] + [results[(m, k)] for k in range(1, len(tasks))], y, folds,
                             repeats, self.random_state) for m in survivors}
        fitted = {m: ests[m] for m in survivors}
        names = list(fitted)
        P = np.stack([reports[m].oof for m in names], axis=-1)  # (repeats, n, models)
        best = min(names, key=lambda m: reports[m].rmse)
        stacked_oof = _cross_fitted_stack(P, y, folds, repeats, self.random_state)
        stacked = cv_report(stacked_oof, y, folds, repeats, self.random_state)
        if len(names) > 1 and stacked.rmse < reports[best].rmse:
            w = stack_weights(P.reshape(-1, len(names)), np.tile(y, repeats))
            weights = {m: float(v) for m, v in zip(names, w) if v >= 0.01}
            total = sum(weights.values())
            self.weights_ = {m: v / total for m, v in weights.items()}
            self.cv_ = stacked
        else:
            self.weights_ = {best: 1.0}
            self.cv_ = reports[best]
        # Each candidate's out-of-fold predictions (mean over repeats) are kept: a report draws them.
        for m in names:
            selection.append({"model": m, "status": "used" if m in self.weights_ else "candidate",
                              "weight": self.weights_.get(m, 0.0)} | reports[m].to_dict()
                             | {"oof_mean": reports[m].oof.mean(axis=0).tolist()})
        selection.append({"model": "stack (cross-fitted weights)",
                          "status": "used" if len(self.weights_) > 1 else "candidate",
                          "weight": None} | stacked.to_dict() | {"oof_mean": stacked.oof.mean(axis=0).tolist()})
        self.candidates_ = fitted
        self.selection_ = selection
        if "gp" in reports and reports["gp"].oof_std is not None:  # the GP shapes the intervals
            self.cv_ = self.cv_.with_std(reports["gp"].oof_std)

    def check_run_count(self, n: int, p: int, where: str) -> None:
        """Refuse to fit from too few runs; ``where`` says where they come from (file, CV fold)."""
        settings = self._settings()
        kind = settings["kind"]
        if kind == "lightgbm" and not settings.get("adaptive"):
            min_leaf = int(settings.get("min_child_samples", 20))
            if n < 2 * min_leaf:
                raise ValidationError(
                    f"{where} {n} runs: too few for the {self.model!r} model: LightGBM needs at least "
                    f"{2 * min_leaf} runs (2 x min_child_samples = {min_leaf}) to make a single split "
                    f"and would predict a constant; add runs or use --model auto, gp or lightgbm{_CV_HINT}")
        elif kind in ("dml", "bimix", "autoscale") or (kind == "ridge" and "alpha" in settings):
            tokens = settings.get("tokens")
            if kind == "autoscale" and not (isinstance(tokens, (int, float, np.number)) and not isinstance(tokens, bool)
                                            and np.isfinite(tokens) and tokens > 0):
                raise ValidationError(
                    f"{where} runs without one training budget: the 'autoscale' model needs the tokens N every run "
                    f"trained on (got {tokens!r}); give the runs table a 'tokens' column with one positive value, "
                    "or use another --model")
            n_params = {"dml": p + 2, "bimix": 2 * p + bool(settings.get("constant")), "autoscale": 2 * p + 1,
                        "ridge": p + 1}[kind]
            check_enough_runs(n, n_params, RUNS_PER_PARAMETER, f"the {self.model!r} model on {p} pools",
                              where, hint=f"add proxy runs or use --model auto or gp{_CV_HINT}")
        elif n < MIN_RUNS:
            raise ValidationError(f"{where} {n} runs: too few for the {self.model!r} model (at least {MIN_RUNS} "
                                  f"runs); add proxy runs{_CV_HINT}")

    def _reset(self) -> None:
        for attr in ("booster_", "coef_", "intercept_", "shift_", "scale_", "alpha_", "gp_", "law_",
                     "candidates_", "weights_", "selection_", "cv_", "feature_names_in_"):
            self.__dict__.pop(attr, None)

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError("this MixtureRegressor is not fitted yet; call fit(X, y) first")

    def predict(self, X: Any, *, num_iteration: int | None = None) -> np.ndarray:
        """Predict for mixtures ``X`` (n, n_pools).

        ``num_iteration`` (LightGBM only) scores with the first trees only: a cheap pre-filter.
        """
        self._check_fitted()
        X_arr = self._check_x(X)
        if hasattr(self, "weights_"):
            return sum(w * self.candidates_[m].predict(X_arr, num_iteration=num_iteration)
                       for m, w in self.weights_.items())
        if hasattr(self, "booster_"):
            return np.asarray(self.booster_.predict(X_arr, num_threads=resolve_jobs(self.n_jobs),
                                                    num_iteration=num_iteration), dtype=float)
        settings = self._settings()
        if hasattr(self, "gp_"):
            return self.gp_.predict(_features(X_arr, settings["features"], settings["eps"]))
        if hasattr(self, "law_"):
            return self.law_.predict(X_arr)
        return ((self._ridge_design(X_arr, settings) - self.shift_) / self.scale_) @ self.coef_ + self.intercept_

    def log_linear_form(self) -> LogLinearForm | None:
        """The prediction as a :class:`~mixplan.models.mixing_law.LogLinearForm` (a mixing law, a linear model
        on raw weights, or a stack of them), or None for any other model (trees, GPs, log features)."""
        self._check_fitted()
        if hasattr(self, "weights_"):
            forms = [self.candidates_[m].log_linear_form() for m in self.weights_]
            if any(f is None for f in forms):
                return None
            return reduce(operator.add, (f.scaled(w) for f, w in zip(forms, self.weights_.values())))
        if hasattr(self, "law_"):  # a mixing law; BiMix and AutoScale keep theirs in law_ too, and are not log-linear
            return LogLinearForm.of_law(self.law_) if isinstance(self.law_, MixingLaw) else None
        settings = self._settings()
        if hasattr(self, "coef_") and settings["features"] == "raw" and not settings.get("pairwise"):
            g = self.coef_ / self.scale_
            return LogLinearForm(const=self.intercept_ - float(self.shift_ @ g), g=g, a=np.zeros(0), b=np.zeros(0),
                                 T=np.zeros((0, len(g))))
        return None

    @property
    def tree_share(self) -> float:
        """The share of the prediction made by boosted trees: 1 for LightGBM, its stacking weight in a stack, 0
        otherwise. Trees predict a piecewise-constant surface, whose steps a local search would chase."""
        self._check_fitted()
        if hasattr(self, "weights_"):
            return float(sum(w * self.candidates_[m].tree_share for m, w in self.weights_.items()))
        return 1.0 if hasattr(self, "booster_") else 0.0

    def uncertainty_model(self) -> tuple[GaussianProcess, Any] | None:
        """The GP whose posterior shapes intervals and correlations, with its feature map, or None.

        For ``auto`` this is the ``gp`` candidate, fitted whether or not the stack uses it.
        """
        self._check_fitted()
        est = self.candidates_.get("gp") if hasattr(self, "candidates_") else self
        if est is None or not hasattr(est, "gp_"):
            return None
        s = est._settings()
        return est.gp_, (lambda W: _features(np.atleast_2d(np.asarray(W, dtype=float)), s["features"], s["eps"]))

    @property
    def n_trees_(self) -> int:
        return int(self.booster_.num_trees()) if hasattr(self, "booster_") else 0

    @property
    def components(self) -> dict[str, float]:
        """Preset name -> weight of the models whose predictions are averaged (one for a single preset)."""
        return dict(self.weights_) if hasattr(self, "weights_") else {self.model: 1.0}

    # -- persistence (no pickle) ------------------------------------------------------------------
    def file_names(self) -> list[str]:
        """The names :meth:`to_files` writes, without serialising the model."""
        self._check_fitted()
        if hasattr(self, "candidates_"):
            return ["auto.json"] + [f"{name}.{f}" for name, est in self.candidates_.items() for f in est.file_names()]
        return [MODEL_FILES[self.kind]]

    def to_files(self) -> dict[str, str]:
        """The fitted model as text files (name -> content); ``auto`` prefixes its candidates' files."""
        self._check_fitted()
        if hasattr(self, "candidates_"):
            files = {"auto.json": json.dumps({"weights": self.weights_, "selection": self.selection_,
                                              "candidates": list(self.candidates_)}, indent=2, sort_keys=True) + "\n"}
            for name, est in self.candidates_.items():
                for fname, text in est.to_files().items():
                    files[f"{name}.{fname}"] = text
            return files
        if hasattr(self, "booster_"):
            text = self.booster_.model_to_string()
        elif hasattr(self, "coef_"):
            text = json.dumps({"coef": self.coef_.tolist(), "intercept": self.intercept_, "alpha": self.alpha_,
                               "shift": self.shift_.tolist(), "scale": self.scale_.tolist()}, indent=2) + "\n"
        elif hasattr(self, "gp_"):
            gp = self.gp_
            text = json.dumps({"theta": gp.theta.tolist(), "ard": gp.ard, "groups": gp.groups.tolist(),
                               "F": gp.F.tolist(), "y": gp.y.tolist(),
                               "log_marginal_likelihood": gp.log_marginal_likelihood,
                               "converged": gp.converged}) + "\n"
        else:
            text = json.dumps(self.law_.to_dict(), indent=2) + "\n"
        return {MODEL_FILES[self.kind]: text}

    @classmethod
    def from_files(cls, files: dict[str, str], model: str, params: dict[str, Any] | None,
                   random_state: int, n_features: int) -> "MixtureRegressor":
        """Rebuild a fitted regressor from :meth:`to_files` output. Damaged files raise what decoding them
        trips over (KeyError, ValueError, ...): the reader names the file (``mixplan._io.saved_artefact``)."""
        est = cls(model=model, params=params, random_state=random_state)
        kind = est.kind
        text = files[MODEL_FILES[kind]]
        if kind == "auto":
            doc = json.loads(text)
            names = doc["candidates"]
            single = {m for m in PRESETS if PRESETS[m]["kind"] != "auto"}
            if not (isinstance(names, list) and all(n in single for n in map(str, names))):
                raise ValueError(f"candidates {names!r} are not a list of models")
            est.candidates_ = {
                name: cls.from_files({k[len(name) + 1:]: v for k, v in files.items() if k.startswith(name + ".")},
                                     name, None, random_state, n_features)
                for name in names}
            est.weights_ = {k: float(v) for k, v in doc["weights"].items()}
            est.selection_ = doc["selection"]
        elif kind == "lightgbm":
            import lightgbm as lgb

            _check_tree_offsets(text)
            with _native_stderr_silenced():
                est.booster_ = lgb.Booster(model_str=text)
        elif kind == "gp":
            doc = json.loads(text)
            F, y, theta = (np.asarray(doc[k], dtype=float) for k in ("F", "y", "theta"))
            est.gp_ = fit_gp(F, y, ard=bool(doc["ard"]), groups=doc.get("groups"), theta=theta)
        elif kind == "dml":
            est.law_ = MixingLaw.from_dict(json.loads(text))
        elif kind == "bimix":
            est.law_ = BiMix.from_dict(json.loads(text))
        elif kind == "autoscale":
            est.law_ = AutoScale.from_dict(json.loads(text))
        else:
            doc = json.loads(text)
            est.coef_ = np.asarray(doc["coef"], dtype=float)
            est.intercept_ = float(doc["intercept"])
            est.alpha_ = float(doc["alpha"])
            est.shift_ = np.asarray(doc["shift"], dtype=float)
            est.scale_ = np.asarray(doc["scale"], dtype=float)
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


def _check_tree_offsets(text: str) -> None:
    """Raise ValueError unless every tree of a LightGBM model string starts where its header's ``tree_sizes`` say.

    LightGBM parses the trees in parallel at those offsets; in a file cut short, or with a byte added or lost,
    a worker thread fails and aborts the whole process (std::terminate: no exception to catch)."""
    start = text.find("\nTree=") + 1
    sizes = re.search(r"^tree_sizes=(.*)$", text[:start] if start else text, re.M)
    if sizes is None:
        return  # no offsets: LightGBM reads the trees one after the other, and raises on a bad one
    pos = start
    for k, size in enumerate(int(v) for v in sizes.group(1).split()):
        if not start or not text.startswith(f"Tree={k}\n", pos):
            raise ValueError(f"tree {k} is not where the header's tree_sizes put it (the file was cut short or "
                             "edited)")
        pos += size


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """LightGBM's C++ core prints "[LightGBM] [Fatal] MSG" to file descriptor 2 before raising MSG as an
    exception: silenced, so that a rejected model file is said once, in mixplan's one-line error."""
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (a service without stderr): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# ------------------------------------------------------------------------------------------------
# cross-validation and stacking


@dataclass(frozen=True)
class CVReport:
    """Repeated K-fold cross-validation of a regressor on the proxy runs.

    ``oof`` (repeats, n) holds each run's out-of-fold prediction in every repeat; scores are means
    over repeats. ``oof_std`` (same shape, optional) is the GP's predictive standard deviation at the
    held-out runs, used to scale intervals to the local uncertainty.
    """

    n_splits: int
    n_repeats: int
    n_runs: int
    spearman: float
    pearson: float
    mae: float
    rmse: float
    oof: np.ndarray
    y: np.ndarray
    seed: int
    oof_std: np.ndarray | None = field(default=None)

    @property
    def residuals(self) -> np.ndarray:
        """All out-of-fold residuals ``y - oof``, repeats concatenated."""
        return (self.y[None, :] - self.oof).ravel()

    def with_std(self, oof_std: np.ndarray) -> "CVReport":
        from dataclasses import replace

        return replace(self, oof_std=np.asarray(oof_std, dtype=float))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready scores; an undefined correlation (constant predictions) becomes None."""
        def num(v: float) -> float | None:
            return None if np.isnan(v) else v

        return {"n_splits": self.n_splits, "n_repeats": self.n_repeats, "n_runs": self.n_runs,
                "spearman": num(self.spearman), "pearson": num(self.pearson), "mae": self.mae,
                "rmse": self.rmse, "seed": self.seed}


def _folds(n: int, n_splits: int, n_repeats: int, seed: int) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    from sklearn.model_selection import KFold

    return [list(KFold(n_splits=n_splits, shuffle=True, random_state=seed + r).split(np.zeros(n)))
            for r in range(n_repeats)]


def fold_tasks(n: int, n_splits: int, n_repeats: int, seed: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Every fold of every repeat as ``(repeat, train, test)``, in the order the CV visits them."""
    return [(r, train, test) for r, splits in enumerate(_folds(n, n_splits, n_repeats, seed))
            for train, test in splits]


def cv_report(oof: np.ndarray, y: np.ndarray, n_splits: int, n_repeats: int, seed: int,
            oof_std: np.ndarray | None = None) -> CVReport:
    rhos, rs = [], []
    for row in oof:
        const = np.ptp(row) == 0 or np.ptp(y) == 0
        rhos.append(float("nan") if const else spearman(row, y))
        rs.append(float("nan") if const else pearson(row, y))
    res = y[None, :] - oof
    return CVReport(n_splits=n_splits, n_repeats=n_repeats, n_runs=len(y), spearman=float(np.mean(rhos)),
                    pearson=float(np.mean(rs)), mae=float(np.mean(np.abs(res))),
                    rmse=float(np.sqrt(np.mean(res ** 2))), oof=oof, y=y, seed=seed, oof_std=oof_std)


def fold_prediction(estimator: MixtureRegressor, X: np.ndarray, y: np.ndarray, train: np.ndarray,
                    test: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The fold model's predictions for the held-out runs ``test`` (and the GP's predictive sd there):
    ``estimator`` refitted on the runs ``train``.

    A fitted GP or mixing-law estimator hands itself to the fold model: a GP's hyper-parameters are
    kept fixed when the runs are many per hyper-parameter (``FIXED_THETA_RUNS``: the fold model
    conditions on its runs with them, one Cholesky factorisation), otherwise they are the starting point
    of the fold model's own optimisation (one start instead of a cold one: the same optimum, reached
    faster); a mixing law starts from the full fit's parameters and sign.
    """
    from sklearn.base import clone

    est = clone(estimator)
    if hasattr(estimator, "gp_") or hasattr(estimator, "law_"):
        est._cv_from = estimator
    est.fit(X[train], y[train])
    pred = est.predict(X[test])
    if estimator.kind != "gp":
        return pred, None
    gp, feats = est.uncertainty_model()  # type: ignore[misc]
    return pred, gp.predict_std(feats(X[test]))


def cross_validate(estimator: MixtureRegressor, X: np.ndarray, y: np.ndarray, n_splits: int = 5,
                   seed: int = 0, progress: Any = None, n_repeats: int = 1, n_jobs: int = 1) -> CVReport:
    """Repeated shuffled K-fold CV (repeat ``r`` shuffles with ``seed + r``); the fold models are fitted
    by :func:`fold_prediction` on up to ``n_jobs`` threads (same numbers for any ``n_jobs``)."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if n_splits < 2 or n_splits > len(y):
        raise ValidationError(f"cv folds must be between 2 and the number of runs ({len(y)}), got {n_splits}")
    tasks = fold_tasks(len(y), n_splits, n_repeats, seed)
    results = map_ordered(lambda t: fold_prediction(estimator, X, y, t[1], t[2]), tasks, n_jobs, progress)
    return _cv_of(tasks, results, y, n_splits, n_repeats, seed)


def _cv_of(tasks: list[tuple[int, np.ndarray, np.ndarray]], results: list[tuple[np.ndarray, np.ndarray | None]],
           y: np.ndarray, n_splits: int, n_repeats: int, seed: int) -> CVReport:
    """The CV report from every fold's predictions (and GP sds), in the order of ``tasks``."""
    oof = np.empty((n_repeats, len(y)))
    std = np.empty((n_repeats, len(y))) if results[0][1] is not None else None
    for (r, _, test), (pred, sd) in zip(tasks, results):
        oof[r, test] = pred
        if std is not None:
            std[r, test] = sd
    return cv_report(oof, y, n_splits, n_repeats, seed, std)


def stack_weights(P: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative weights summing to one minimising :math:`\\lVert y - P w \\rVert^2` (P: n x models).

    Solved as non-negative least squares with the sum-to-one constraint as a heavily weighted
    extra row (exact to ~1e-9 at the weight used).
    """
    from scipy.optimize import nnls

    scale = 1e4 * max(1.0, float(np.abs(P).max()))
    A = np.vstack([P, np.full((1, P.shape[1]), scale)])
    w, _ = nnls(A, np.r_[y, scale], maxiter=50 * P.shape[1])
    s = w.sum()
    return w / s if s > 0 else np.full(P.shape[1], 1.0 / P.shape[1])


def _cross_fitted_stack(P: np.ndarray, y: np.ndarray, n_splits: int, n_repeats: int, seed: int) -> np.ndarray:
    """Stacked out-of-fold predictions whose weights never saw the run they predict: for each fold,
    weights are fitted on the other folds' out-of-fold predictions."""
    out = np.empty(P.shape[:2])
    for r, splits in enumerate(_folds(len(y), n_splits, n_repeats, seed)):
        for train, test in splits:
            out[r, test] = P[r, test] @ stack_weights(P[r, train], y[train])
    return out
