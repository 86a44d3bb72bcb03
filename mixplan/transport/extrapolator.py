r"""Projektor's optimal-transport performance extrapolator: predict, extrapolate in size, select.

Kang, Just, Sahu & Jia, "Performance Scaling via Optimal Transport" (NeurIPS 2023), re-implemented on
the CPU on top of :mod:`mixplan.transport.distance`. Each pool reveals a sample of embedded documents; a mixture
:math:`w` re-weights the pooled samples and :math:`\mathrm{OT}(w)` is its distance to the validation
set (:func:`mixplan.transport.distance.ot_distance`; one cost matrix, reused for every mixture).

**Stage 1** (a fixed training size :math:`N`). The paper's "pseudo-quadratic in OT" form

.. math::

    \hat L_N(w) = \Big(b_0 + \sum_{i<P} b_{1i} w_i + \sum_{i \le P} b_{2i} w_i^2\Big)\,\mathrm{OT}(w)
                 + c_0 + \sum_{i<P} c_{1i} w_i \;\Big[+ \sum_{i\le P} c_{2i} w_i^2\Big],

linear in its coefficients (the last pool's linear terms are dropped because :math:`\sum_i w_i = 1`
makes them collinear with the intercepts; the bracketed :math:`c_2` terms are off by default, as in
the official code). It is fitted by ridge regression on standardised features with the penalty chosen
by exact leave-one-out error over a grid that includes (almost) zero, i.e. ordinary least squares as in
the paper's code, when that predicts best.

**Stage 2** (sizes). With stage-1 fits at two sizes :math:`N_0 < N_1`, the parameter-free line in
:math:`\ln N`

.. math::

    \hat L_N(w) = (1 - s)\,\hat L_{N_0}(w) + s\,\hat L_{N_1}(w), \qquad s = \frac{\ln(N/N_0)}{\ln(N_1/N_0)},

exact at both anchors. ``size_space="log"`` applies it to :math:`\ln \hat L` instead (a power law in
:math:`N` is a straight line there, for a metric that tends to zero).

**Gradient** of the prediction in :math:`w` (chain rule through stage 2 and stage 1), with
:math:`\partial\mathrm{OT}/\partial w` from the dual potentials (:meth:`mixplan.transport.distance.OTResult.gradient`);
one OT solve per mixture gives the value and the whole gradient. **Selection**: spectral projected
gradient (Birgin, Martínez & Raydan 2000: Barzilai-Borwein steps, non-monotone Armijo line search) on
the box-constrained simplex of :mod:`mixplan.simplex`.

**Intervals** are split-conformal on the leave-one-out residuals. At a size between or beyond the
anchors the residual of each mixture run at *both* anchor sizes is combined the way the prediction
is, :math:`(1-s) r_0 + s r_1`, so the errors' correlation across sizes is kept. Alone they cover the
stage-1 error only: the straight line in :math:`\ln N` has no parameter that could absorb curvature.
**Check runs** at one larger size (:meth:`OTExtrapolator.calibrate`, mixplan's extension) estimate that
curvature, :math:`c\,s(s-1)`, shift the predictions by it and add its spread to the intervals. On the
demo study (``tests/benchmarks/ot_extrapolation.py``, bits per byte on reviews, predicting 32 runs at
4x the larger fitted size) the plain line was too optimistic by 0.074 on average (90% intervals held 1 of
32 runs); with 16 check runs the other 16 were predicted with MAE 0.017 and 31 of 32 inside. Predictions
beyond ``max_extrapolation`` x :math:`N_1` are flagged.

**Beyond the larger size without check runs** (issue 16) two sizes cannot tell the curvature, so the
interval there is not a calibrated one but the bracket the two sizes allow for a metric that keeps
moving the same way with less and less gain per doubling (monotone and convex in :math:`\ln N` for a
loss, e.g. any :math:`E + B N^{-\beta}`): between the straight line (such a curve lies on the far side
of its secant) and the larger anchor's own prediction (it does not turn back), each widened by the
stage-1 half-width. ``OTPrediction.bracketed`` says which predictions carry such a bracket.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from .._io import (check_writable, dumps_json, npz_bytes, read_json, saved_artefact, write_bytes_atomic,
                  write_text_atomic)
from .._stats import ridge_loo
from ..data.objective import direction
from ..exceptions import NotFittedError, ValidationError
from ..models.intervals import DEFAULT_LEVEL, conformal_quantile, coverage_radius_of, nearest_run
from .distance import OTResult, cost_matrix, ot_distance
from ..simplex import project

__all__ = ["OTExtrapolator", "OTPrediction", "Selection", "stage1_features", "size_weight",
           "interpolate_sizes", "load_extrapolator", "extrapolation_notes", "FORMAT_VERSION"]

FORMAT_VERSION = 1
MODEL_FILE, SPACE_FILE = "ot_model.json", "ot_space.npz"
_SIZE_SPACES = ("linear", "log")
#: Ridge penalties (on standardised features) compared by leave-one-out error; 1e-8 is ~OLS.
DEFAULT_ALPHAS = (1e-8, 1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
#: ``method="auto"`` solves exactly up to this many (revealed x validation) pairs: 4,000 x 4,000 takes
#: ~10-30 s per solve on 2 cores (POT's ``ot.emd2``, NumPy backend, d = 64; measured for mixplan), beyond
#: that Sinkhorn.
EXACT_MAX_PAIRS = 4000 * 4000
#: At least this many runs per stage-1 coefficient at each size.
RUNS_PER_COEFFICIENT = 1.5
#: Below this many runs seen at both anchor sizes, stage-2 intervals combine the two sizes'
#: quantiles as if independent instead of using paired residuals.
MIN_PAIRS = 10


# ----------------------------------------------------------------------------------------- pure math
def stage1_features(W: np.ndarray, ot_values: np.ndarray, offset_squares: bool = False) -> np.ndarray:
    """Stage-1 design matrix (no intercept column) for mixtures ``W`` (n x P) and their OT distances.

    Columns: OT; w_1..w_{P-1}; w_1 OT..w_{P-1} OT; w_1^2 OT..w_P^2 OT; [w_1^2..w_P^2].
    """
    W = np.atleast_2d(np.asarray(W, dtype=float))
    t = np.asarray(ot_values, dtype=float)[:, None]
    cols = [t, W[:, :-1], W[:, :-1] * t, W ** 2 * t]
    if offset_squares:
        cols.append(W ** 2)
    return np.hstack(cols)


def feature_names(pools: Sequence[str], offset_squares: bool = False) -> list[str]:
    """Names of the :func:`stage1_features` columns."""
    head = list(pools[:-1])
    names = ["OT", *(f"w_{p}" for p in head), *(f"w_{p}*OT" for p in head), *(f"w_{p}^2*OT" for p in pools)]
    return names + ([f"w_{p}^2" for p in pools] if offset_squares else [])


def _stage1_gradient(coef: np.ndarray, w: np.ndarray, ot_value: float, ot_grad: np.ndarray,
                     offset_squares: bool) -> np.ndarray:
    r""":math:`\nabla_w \hat L_N` of one mixture: partial derivatives in ``w`` plus :math:`\partial\hat L/\partial\mathrm{OT}\cdot\nabla\mathrm{OT}`."""
    P = w.size
    k = P - 1
    b0, b1, b2 = coef[0], coef[1 + k:1 + 2 * k], coef[1 + 2 * k:1 + 2 * k + P]
    c1 = coef[1:1 + k]
    g = np.zeros(P)
    g[:k] += c1 + b1 * ot_value
    g += 2.0 * b2 * w * ot_value
    if offset_squares:
        g += 2.0 * coef[1 + 2 * k + P:] * w
    d_ot = b0 + b1 @ w[:k] + b2 @ (w ** 2)
    return g + d_ot * ot_grad


def size_weight(N: float | np.ndarray, N0: float, N1: float) -> np.ndarray:
    r""":math:`s = \ln(N/N_0) / \ln(N_1/N_0)`: 0 at :math:`N_0`, 1 at :math:`N_1`, 2 at :math:`N_1^2/N_0`."""
    return np.log(np.asarray(N, dtype=float) / N0) / np.log(N1 / N0)


def interpolate_sizes(L0, L1, s, space: str = "linear") -> np.ndarray:
    r"""Stage 2: :math:`(1-s) L_0 + s L_1` (``space="linear"``) or :math:`L_0^{1-s} L_1^{s}` (``"log"``)."""
    L0, L1, s = (np.asarray(v, dtype=float) for v in (L0, L1, s))
    if space == "log":
        return np.exp((1.0 - s) * np.log(L0) + s * np.log(L1))
    return (1.0 - s) * L0 + s * L1


def _ridge_loo(F: np.ndarray, y: np.ndarray, alphas: Sequence[float]) -> tuple[float, np.ndarray, float, np.ndarray]:
    """Ridge on standardised ``F`` with an unpenalised intercept; the penalty minimising exact LOO error
    (:func:`mixplan._stats.ridge_loo`).

    Returns (alpha, coefficients on the raw features, intercept, LOO residuals at that alpha).
    """
    mu, sd = F.mean(axis=0), F.std(axis=0)
    sd[sd == 0] = 1.0
    fit = ridge_loo((F - mu) / sd, y, alphas)
    coef = fit.beta / sd
    return fit.alpha, coef, float(y.mean() - coef @ mu), fit.residuals


def _stage1_record(tokens: float, alpha: float, coef: np.ndarray, intercept: float, loo: np.ndarray,
                   W: np.ndarray, y: np.ndarray, run_ids: list[str], ot_values: np.ndarray) -> dict[str, Any]:
    """One size's stage-1 fit with its leave-one-out summary (R^2, MAE, Spearman of the LOO predictions)."""
    ss = float(np.sum((y - y.mean()) ** 2))
    return {"tokens": tokens, "n_runs": len(y), "alpha": alpha, "coef": coef, "intercept": intercept,
            "loo_residuals": loo, "weights": W, "y": y, "run_ids": run_ids, "ot": ot_values,
            "loo_r2": float(1.0 - np.sum(loo ** 2) / ss) if ss > 0 else float("nan"),
            "loo_mae": float(np.mean(np.abs(loo))),
            "loo_spearman": float(spearmanr(y - loo, y)[0]) if np.ptp(y) > 0 else float("nan")}


def _log_residuals(y: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Residuals of ``log y`` from residuals of ``y`` (prediction ``y - r``)."""
    return np.log(y) - np.log(y - r)


def _weights_key(w: np.ndarray) -> bytes:
    return np.round(np.asarray(w, dtype=float), 9).tobytes()


# ----------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class OTPrediction:
    """Predictions at one size for a batch of mixtures (arrays of length n), with evidence and flags."""

    tokens: float
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    level: float
    ot: np.ndarray
    nearest_run: list[str]
    nearest_distance: np.ndarray
    covered: np.ndarray  # within the proxy runs' coverage radius and the fitted OT range
    size_ratio: float  # tokens / the largest anchor size
    extrapolated: bool  # tokens beyond max_extrapolation x the largest anchor
    #: beyond the larger anchor without check runs: the interval is the two sizes' bracket, not calibrated
    bracketed: bool = False

    def row(self, i: int) -> dict[str, Any]:
        return {"prediction": float(self.mean[i]), "lower": float(self.lower[i]), "upper": float(self.upper[i]),
                "level": self.level, "ot": float(self.ot[i]), "nearest_run": self.nearest_run[i],
                "nearest_distance": float(self.nearest_distance[i]), "covered": bool(self.covered[i]),
                "tokens": self.tokens, "size_ratio": self.size_ratio, "size_extrapolated": self.extrapolated,
                "interval_kind": "bracket from two sizes" if self.bracketed else "calibrated"}


@dataclass(frozen=True)
class Selection:
    """The mixture chosen by projected-gradient descent on the predicted metric, and how it was found."""

    weights: np.ndarray
    prediction: OTPrediction
    start: str  # which starting point led here
    iterations: int
    ot_solves: int
    seconds: float
    converged: bool
    history: list[float] = field(repr=False, default_factory=list)  # objective per accepted iterate

    def report(self, pools: Sequence[str], active: Mapping[str, str] | None = None) -> str:
        """The chosen mixture (with the bound each pool sits on, ``active``), its prediction and the search."""
        active = active or {}
        p = self.prediction.row(0)
        return "\n".join([
            f"OT-selected mixture at {self.prediction.tokens:.6g} tokens:",
            *(f"  {n:>12s} {w:.4f}" + (f"  ({active[n]})" if n in active else "") for n, w in zip(pools, self.weights)),
            f"predicted {p['prediction']:.4f} [{p['lower']:.4f}, {p['upper']:.4f}] ({p['level']:.0%}), OT distance "
            f"{p['ot']:.4g}, nearest run {p['nearest_run']} (TV {p['nearest_distance']:.3f})",
            f"projected gradient from {self.start}: {self.iterations} iterations, {self.ot_solves} OT solves, "
            f"{self.seconds:.2f} s" + ("" if self.converged else " (stopped before convergence)")])

    def to_dict(self, pools: Sequence[str]) -> dict[str, Any]:
        """JSON form; without ``seconds``, so that outputs are byte-identical run to run."""
        return {"weights": dict(zip(pools, map(float, self.weights))), **self.prediction.row(0),
                "start": self.start, "iterations": self.iterations, "ot_solves": self.ot_solves,
                "converged": self.converged}


# ----------------------------------------------------------------------------------------- estimator
class OTExtrapolator:
    """Projektor's OT extrapolator (see the module docstring).

    Parameters
    ----------
    method : ``"exact"`` (network simplex; a few thousand points per side), ``"sinkhorn"`` (entropic, biased
        upwards) or ``"auto"``: exact up to :data:`EXACT_MAX_PAIRS` sample pairs, Sinkhorn beyond, with its
        relative error against the exact value measured on a 1,000 x 1,000 subsample and reported.
    reg : Sinkhorn regularisation (units of the cost); default ``0.01 max(C)``.
    metric : ground cost between embeddings (:func:`mixplan.transport.distance.cost_matrix`).
    offset_squares : add the :math:`c_2 w_i^2` terms to stage 1.
    alphas : ridge penalties compared by leave-one-out error.
    size_space : stage 2 on the metric (``"linear"``, the paper) or on its logarithm (``"log"``).
    level : interval coverage.
    max_extrapolation : predictions beyond this multiple of the largest anchor size are flagged.
    maximize : the metric is better when larger (selection maximises it).
    """

    def __init__(self, *, method: str = "auto", reg: float | None = None, metric: str = "sqeuclidean",
                 offset_squares: bool = False, alphas: Sequence[float] = DEFAULT_ALPHAS,
                 size_space: str = "linear", level: float = DEFAULT_LEVEL, max_extrapolation: float = 10.0,
                 maximize: bool = False, numItermax: int | None = None) -> None:
        self.method = method
        self.reg = reg
        self.metric = metric
        self.offset_squares = offset_squares
        self.alphas = alphas
        self.size_space = size_space
        self.level = level
        self.max_extrapolation = max_extrapolation
        self.maximize = maximize
        self.numItermax = numItermax

    # ------------------------------------------------------------------ fitting
    def _check_params(self) -> None:
        if self.method not in ("auto", "exact", "sinkhorn"):
            raise ValidationError(f"method must be 'auto', 'exact' or 'sinkhorn', got {self.method!r}")
        if self.size_space not in _SIZE_SPACES:
            raise ValidationError(f"size_space must be one of {_SIZE_SPACES}, got {self.size_space!r}")
        if not 0 < self.level < 1:
            raise ValidationError(f"level must be in (0, 1), got {self.level!r}")
        if not self.max_extrapolation >= 1:
            raise ValidationError(f"max_extrapolation must be >= 1, got {self.max_extrapolation!r}")
        if len(self.alphas) == 0 or min(self.alphas) < 0:
            raise ValidationError("alphas must be a non-empty list of penalties >= 0")

    def fit(self, X: np.ndarray, pool_index: np.ndarray, Y: np.ndarray, W: np.ndarray, tokens: np.ndarray,
            y: np.ndarray, *, pools: Sequence[str] | None = None, run_ids: Sequence[str] | None = None,
            b: np.ndarray | None = None, anchors: tuple[float, float] | None = None,
            source: str = "runs") -> "OTExtrapolator":
        """Fit stage 1 at every training size in ``tokens`` and choose the stage-2 anchors.

        Parameters
        ----------
        X, pool_index : embedded revealed samples (n x d) and the pool id (0..P-1) of each.
        Y : embedded validation samples (m x d); ``b`` their weights (default uniform).
        W, tokens, y : proxy runs: mixtures (R x P), training size of each run, measured metric.
        anchors : the two sizes for stage 2 (default: the two largest sizes with enough runs).
        """
        self._check_params()
        W = np.atleast_2d(np.asarray(W, dtype=float))
        tokens = np.asarray(tokens, dtype=float).ravel()
        y = np.asarray(y, dtype=float).ravel()
        R, P = W.shape
        if not (len(tokens) == len(y) == R):
            raise ValidationError(f"W has {R} runs but tokens has {len(tokens)} and y {len(y)}; give one per run")
        bad = np.flatnonzero(~np.isfinite(y) | ~np.isfinite(tokens) | (tokens <= 0))
        if bad.size:
            i = int(bad[0])
            who = f"run {run_ids[i]!r}" if run_ids is not None else f"run {i}"
            raise ValidationError(f"{source}: {who} has metric {y[i]!r} and tokens {tokens[i]!r}; the metric must be "
                                  "finite and tokens positive (drop or fix the run)")
        if self.size_space == "log" and np.any(y <= 0):
            raise ValidationError(f"{source}: size_space='log' needs a positive metric; use size_space='linear'")
        self.pools_ = list(pools) if pools is not None else [f"pool{i}" for i in range(P)]
        if len(self.pools_) != P:
            raise ValidationError(f"{len(self.pools_)} pool names for {P} weight columns")
        self.run_ids_ = list(run_ids) if run_ids is not None else [f"run{i}" for i in range(R)]
        self.X_, self.Y_ = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
        self.pool_index_ = np.asarray(pool_index)
        self.b_ = None if b is None else np.asarray(b, dtype=float)
        self._prepare_space()
        # measured once here and saved in the report: an exact 1,000 x 1,000 solve, not worth repeating on load
        self.sinkhorn_error_ = self._sinkhorn_error() if self.method_ == "sinkhorn" else None
        if int(self.pool_index_.max()) + 1 != P:
            raise ValidationError(f"the revealed samples cover {int(self.pool_index_.max()) + 1} pools but the runs "
                                  f"have {P} weight columns; give samples for every pool, in the runs' pool order")

        ot_values = self.distances(W)
        n_coef = 1 + stage1_features(W[:1], ot_values[:1], self.offset_squares).shape[1]
        need = int(np.ceil(RUNS_PER_COEFFICIENT * n_coef))
        sizes, counts = np.unique(tokens, return_counts=True)
        usable = [float(s) for s, c in zip(sizes, counts) if c >= need]
        skipped = {float(s): int(c) for s, c in zip(sizes, counts) if c < need}
        if not usable:
            raise ValidationError(f"{source}: no training size has enough runs for stage 1: {n_coef} coefficients on "
                                  f"{P} pools need at least {need} runs at one size; sizes have "
                                  f"{dict(zip(sizes.tolist(), counts.tolist()))} runs")
        self.stage1_: dict[float, dict[str, Any]] = {}
        for s in usable:
            m = tokens == s
            F = stage1_features(W[m], ot_values[m], self.offset_squares)
            alpha, coef, intercept, loo = _ridge_loo(F, y[m], self.alphas)
            self.stage1_[s] = _stage1_record(s, alpha, coef, intercept, loo, W[m], y[m],
                                             [self.run_ids_[i] for i in np.flatnonzero(m)], ot_values[m])
        if anchors is None:
            anchors = tuple(usable[-2:])
        anchors = tuple(float(a) for a in anchors)
        for a in anchors:
            if a not in self.stage1_:
                raise ValidationError(f"anchor size {a:g} has no stage-1 fit; sizes fitted: {usable}"
                                      + (f" (skipped for too few runs: {skipped})" if skipped else ""))
        if len(anchors) not in (1, 2) or (len(anchors) == 2 and anchors[0] >= anchors[1]):
            raise ValidationError(f"anchors must be one size or two increasing sizes, got {anchors}")
        self.anchors_ = anchors
        self.curvature_ = None
        self.skipped_sizes_ = skipped
        self._derive_from_stage1()
        return self

    def _derive_from_stage1(self) -> None:
        """The runs' evidence (ids, mixtures, OT range, coverage radius, paired residuals) from ``stage1_``.

        Shared by :meth:`fit` and :func:`load_extrapolator`, so that a loaded study predicts exactly what
        the fitted one did. Only the runs of fitted sizes count: runs at sizes skipped for too few runs
        inform no prediction (and are not saved), so they do not widen the region the model covers.
        """
        fits = list(self.stage1_.values())
        self.run_ids_ = [i for f in fits for i in f["run_ids"]]
        self.train_weights_ = np.vstack([f["weights"] for f in fits])
        all_ot = np.concatenate([f["ot"] for f in fits])
        self.ot_range_ = (float(all_ot.min()), float(all_ot.max()))
        # a mixture run at two sizes is one point
        self.coverage_radius_ = coverage_radius_of(np.unique(self.train_weights_, axis=0))
        self._pair_residuals()

    def _prepare_space(self) -> None:
        self.cost_ = cost_matrix(self.X_, self.Y_, metric=self.metric)
        self._cache: dict[bytes, OTResult] = {}
        self._solves = 0
        n, m = self.cost_.shape
        self.method_ = self.method if self.method != "auto" else ("exact" if n * m <= EXACT_MAX_PAIRS else "sinkhorn")

    def _sinkhorn_error(self, size: int = 1000) -> float:
        """Relative error of Sinkhorn vs exact OT on a subsample (uniform pool mixture), for the report."""
        rng = np.random.default_rng(0)
        n, m = self.cost_.shape
        P = int(self.pool_index_.max()) + 1
        rows = np.sort(np.concatenate([rng.permutation(np.flatnonzero(self.pool_index_ == p))[:max(1, size // P)]
                                       for p in range(P)]))
        cols = np.sort(rng.permutation(m)[:size])
        C = self.cost_[np.ix_(rows, cols)]
        w = np.full(P, 1.0 / P)
        exact = ot_distance(w, C, self.pool_index_[rows], method="exact").distance
        approx = ot_distance(w, C, self.pool_index_[rows], method="sinkhorn", reg=self.reg).distance
        return float(approx / exact - 1.0)

    def _pair_residuals(self) -> None:
        """LOO residuals of the mixtures run at both anchors, in the stage-2 space."""
        self.pairs_ = None
        if len(self.anchors_) < 2:
            return
        f0, f1 = (self.stage1_[a] for a in self.anchors_)
        k0 = {_weights_key(w): i for i, w in enumerate(f0["weights"])}
        idx = [(k0[_weights_key(w)], j) for j, w in enumerate(f1["weights"]) if _weights_key(w) in k0]
        if len(idx) < MIN_PAIRS:
            return
        i0, i1 = np.array(idx).T
        r0, r1 = f0["loo_residuals"][i0], f1["loo_residuals"][i1]
        if self.size_space == "log":  # residuals of the log metric
            r0, r1 = _log_residuals(f0["y"][i0], r0), _log_residuals(f1["y"][i1], r1)
        self.pairs_ = np.vstack([r0, r1])

    # ------------------------------------------------------------------ OT
    def _check_fitted(self) -> None:
        if not hasattr(self, "stage1_"):
            raise NotFittedError("this OTExtrapolator is not fitted yet; call fit(...) or load_extrapolator(dir)")

    def distance(self, w: np.ndarray, warm: dict[str, Any] | None = None) -> OTResult:
        """OT distance (and dual potentials) of one mixture, cached by its weights.

        Cached results are solved cold, so a prediction never depends on what was solved before. A
        descent passes ``warm`` (its own cache, holding the last result under ``"last"``): solves then
        start from the previous potentials (~35% faster) and stay out of the shared cache.
        """
        key = _weights_key(w)
        hit = self._cache.get(key) if warm is None else warm.get(key, self._cache.get(key))
        if hit is None:
            hit = ot_distance(np.asarray(w, dtype=float) / np.sum(w), self.cost_, self.pool_index_, b=self.b_,
                              method=self.method_, reg=self.reg, numItermax=self.numItermax,
                              warm_start=None if warm is None else warm.get("last"))
            self._solves += 1
            if warm is not None:
                warm[key] = warm["last"] = hit
                return hit
            if len(self._cache) > 4096:  # bounded memory; a study predicts a few thousand mixtures at most
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def distances(self, W: np.ndarray) -> np.ndarray:
        """OT distance of every row of ``W``."""
        W = np.atleast_2d(np.asarray(W, dtype=float))
        return np.array([self.distance(w).distance for w in W])

    # ------------------------------------------------------------------ prediction
    def _check_weights(self, W: np.ndarray) -> np.ndarray:
        W = np.atleast_2d(np.asarray(W, dtype=float))
        if W.shape[1] != len(self.pools_):
            raise ValidationError(f"mixtures have {W.shape[1]} weights but the extrapolator was fitted on "
                                  f"{len(self.pools_)} pools {self.pools_}")
        if np.any(~np.isfinite(W)) or np.any(W < -1e-12) or np.any(np.abs(W.sum(axis=1) - 1) > 1e-6):
            i = int(np.flatnonzero(~(np.isfinite(W).all(axis=1) & (W >= -1e-12).all(axis=1)
                                     & (np.abs(W.sum(axis=1) - 1) <= 1e-6)))[0])
            raise ValidationError(f"mixture {i} has weights {W[i].tolist()}; weights must be >= 0 and sum to 1")
        return np.clip(W, 0.0, None)

    def _stage1(self, size: float, W: np.ndarray, ot_values: np.ndarray) -> np.ndarray:
        f = self.stage1_[size]
        return stage1_features(W, ot_values, self.offset_squares) @ f["coef"] + f["intercept"]

    def _at_anchors(self, W: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """OT distances of the mixtures ``W`` and their stage-1 predictions at each anchor size."""
        ot_values = self.distances(W)
        return ot_values, [self._stage1(a, W, ot_values) for a in self.anchors_]

    def _size_weight(self, tokens: float) -> float:
        if len(self.anchors_) == 1:
            return 0.0
        return float(size_weight(tokens, *self.anchors_))

    def _curvature(self, s: float) -> tuple[float, float]:
        """(shift, extra half-width) of the curvature correction at size weight ``s`` (0, 0 without check runs)."""
        c = self.curvature_
        if c is None:
            return 0.0, 0.0
        x = s * (s - 1.0)
        return c["coef"] * x, abs(x / c["x"]) * conformal_quantile(c["residuals"], self.level)

    def _halfwidth(self, s: float) -> float:
        return float(np.hypot(self._stage1_halfwidth(s), self._curvature(s)[1]))

    def _stage1_halfwidth(self, s: float) -> float:
        if len(self.anchors_) == 1 or s == 0.0:
            return conformal_quantile(self.stage1_[self.anchors_[0]]["loo_residuals"], self.level)
        if self.pairs_ is not None:
            return conformal_quantile((1.0 - s) * self.pairs_[0] + s * self.pairs_[1], self.level)
        fits = [self.stage1_[a] for a in self.anchors_]
        q = [_log_residuals(f["y"], f["loo_residuals"]) if self.size_space == "log" else f["loo_residuals"]
             for f in fits]
        q0, q1 = (conformal_quantile(r, self.level) for r in q)
        return float(np.hypot((1.0 - s) * q0, s * q1))

    def _stage2(self, L0, L1, s: float) -> np.ndarray:
        """The ln-size line through the anchors, plus the curvature correction when check runs calibrated it."""
        shift = self._curvature(s)[0]
        if self.size_space == "log":
            return interpolate_sizes(L0, L1, s, "log") * np.exp(shift)
        return interpolate_sizes(L0, L1, s, "linear") + shift

    def calibrate(self, W: np.ndarray, tokens: np.ndarray, y: np.ndarray,
                  run_ids: Sequence[str] | None = None, source: str = "check runs") -> "OTExtrapolator":
        r"""Correct stage 2 for curvature with *check runs* at one size :math:`N_c > N_1` (mixplan's extension).

        A straight line in :math:`\ln N` misses a curved trend by about :math:`c\,s(s-1)` (zero at both
        anchors, :math:`s` as in :func:`size_weight`). The runs' mean residual at :math:`N_c` gives
        :math:`\hat c`; predictions then add :math:`\hat c\, s(s-1)` (on the log scale for
        ``size_space="log"``), and intervals add, in quadrature, the conformal quantile of the centred
        residuals scaled by :math:`|s(s-1)| / (s_c(s_c-1))`. Needs at least 5 runs; the mixtures need not
        be among the fitted ones.
        """
        self._check_fitted()
        if len(self.anchors_) < 2:
            raise ValidationError(f"{source}: check runs calibrate stage 2; fit runs at two sizes first")
        W = self._check_weights(W)
        tokens = np.asarray(tokens, dtype=float).ravel()
        y = np.asarray(y, dtype=float).ravel()
        sizes = np.unique(tokens)
        if len(sizes) != 1 or len(y) != len(W) or len(tokens) != len(W):
            raise ValidationError(f"{source}: check runs must all have one training size (found "
                                  f"{sizes.tolist()}), one metric and one weight row per run")
        Nc = float(sizes[0])
        if not Nc > self.anchors_[-1]:
            raise ValidationError(f"{source}: check runs at {Nc:g} tokens must be larger than the largest fitted "
                                  f"size {self.anchors_[-1]:g}")
        if len(y) < 5 or not np.all(np.isfinite(y)) or (self.size_space == "log" and np.any(y <= 0)):
            raise ValidationError(f"{source}: need at least 5 check runs with finite (for size_space='log': "
                                  f"positive) metrics; got {len(y)}")
        self.curvature_ = None
        sc = self._size_weight(Nc)
        L0, L1 = self._at_anchors(W)[1]
        pred = interpolate_sizes(L0, L1, sc, self.size_space)
        e = np.log(y) - np.log(pred) if self.size_space == "log" else y - pred
        x = sc * (sc - 1.0)
        self.curvature_ = {"tokens": Nc, "x": float(x), "coef": float(e.mean() / x), "residuals": e - e.mean(),
                           "mean_residual": float(e.mean()), "n_runs": len(e),
                           "run_ids": list(run_ids) if run_ids is not None else [f"check{i}" for i in range(len(e))]}
        return self

    def _check_tokens(self, tokens: float) -> float:
        tokens = float(tokens)
        if not (np.isfinite(tokens) and tokens > 0):
            raise ValidationError(f"tokens must be a positive number, got {tokens!r}")
        if len(self.anchors_) == 1 and tokens != self.anchors_[0]:
            raise ValidationError(f"the extrapolator was fitted at one size ({self.anchors_[0]:g}); it predicts only "
                                  "there. Fit runs at a second size to extrapolate (stage 2)")
        return tokens

    def predict(self, W: np.ndarray, tokens: float) -> OTPrediction:
        """Predicted metric at ``tokens`` for each mixture in ``W``, with intervals and evidence."""
        self._check_fitted()
        tokens = self._check_tokens(tokens)
        W = self._check_weights(W)
        ot_values, L = self._at_anchors(W)
        s = self._size_weight(tokens)
        if len(self.anchors_) == 1:
            mean = L[0]
        else:
            L0, L1 = L
            if self.size_space == "log" and (np.any(L0 <= 0) or np.any(L1 <= 0)):
                raise ValidationError("stage 1 predicts a non-positive metric for some mixture; size_space='log' "
                                      "cannot extrapolate it: use size_space='linear'")
            mean = self._stage2(L0, L1, s)
        q = self._halfwidth(s)
        if self.size_space == "log" and len(self.anchors_) == 2:
            lower, upper = mean * np.exp(-q), mean * np.exp(q)
        else:
            lower, upper = mean - q, mean + q
        bracketed = len(self.anchors_) == 2 and s > 1.0 and self.curvature_ is None
        if bracketed:  # no calibration beyond N1: the bracket between the line and the larger anchor
            L1 = L[1]
            q1 = self._stage1_halfwidth(1.0)
            far = (L1 * np.exp(q1), L1 * np.exp(-q1)) if self.size_space == "log" else (L1 + q1, L1 - q1)
            lower, upper = np.minimum(lower, np.minimum(*far)), np.maximum(upper, np.maximum(*far))
        idx, dist = nearest_run(W, self.train_weights_)
        lo, hi = self.ot_range_
        pad = 0.05 * (hi - lo)
        covered = (dist <= self.coverage_radius_ + 1e-12) & (ot_values >= lo - pad) & (ot_values <= hi + pad)
        ratio = tokens / self.anchors_[-1]
        return OTPrediction(tokens, mean, lower, upper, self.level, ot_values,
                            [self.run_ids_[i] for i in idx], dist, covered, float(ratio),
                            bool(ratio > self.max_extrapolation), bracketed)

    def increment(self, W: np.ndarray, tokens: float, base_tokens: float) -> tuple[np.ndarray, float]:
        r"""Predicted change of the metric from ``base_tokens`` to ``tokens``, and its interval half-width.

        The size trend that another predictor fitted at ``base_tokens`` (the regressor on the proxy runs)
        lacks: :math:`\hat L_N(w) - \hat L_{N_b}(w)`. The half-width is the conformal quantile of
        :math:`(s_N - s_b)(r_1 - r_0)` over the mixtures run at both anchors (the linear-space residuals,
        also for ``size_space="log"``, where it is a first-order approximation).
        """
        self._check_fitted()
        if len(self.anchors_) < 2:
            raise ValidationError("a size increment needs stage 2: fit the OT extrapolator on runs at two sizes")
        W = self._check_weights(W)
        tokens, base_tokens = self._check_tokens(tokens), self._check_tokens(base_tokens)
        L0, L1 = self._at_anchors(W)[1]
        s, sb = self._size_weight(tokens), self._size_weight(base_tokens)
        delta = self._stage2(L0, L1, s) - self._stage2(L0, L1, sb)
        f0, f1 = (self.stage1_[a] for a in self.anchors_)
        if self.pairs_ is not None and self.size_space == "linear":
            q = conformal_quantile((s - sb) * (self.pairs_[1] - self.pairs_[0]), self.level)
        else:
            q = abs(s - sb) * float(np.hypot(conformal_quantile(f0["loo_residuals"], self.level),
                                             conformal_quantile(f1["loo_residuals"], self.level)))
        curv = self.curvature_
        if curv is not None:  # the correction's own uncertainty, between the two sizes
            q = float(np.hypot(q, abs((s * (s - 1) - sb * (sb - 1)) / curv["x"])
                               * conformal_quantile(curv["residuals"], self.level)))
        return delta, float(q)

    def far_increment(self, W: np.ndarray, base_tokens: float) -> np.ndarray:
        """The other end of the bracket beyond the larger size (see the module docstring) as a change
        from ``base_tokens``: the larger anchor's prediction minus the prediction at ``base_tokens``."""
        self._check_fitted()
        L0, L1 = self._at_anchors(self._check_weights(W))[1]
        return L1 - self._stage2(L0, L1, self._size_weight(self._check_tokens(base_tokens)))

    def value_and_gradient(self, w: np.ndarray, tokens: float,
                           warm: dict[str, Any] | None = None) -> tuple[float, np.ndarray]:
        """Predicted metric of one mixture at ``tokens`` and its gradient in ``w`` (one OT solve).

        The gradient is the raw one (any constant can be added: only directions along the simplex
        matter); project it on the feasible set's tangent space before use. ``warm``: see :meth:`distance`.
        """
        self._check_fitted()
        w = np.asarray(w, dtype=float)
        res = self.distance(w, warm)
        t, gt = res.distance, res.gradient("raw")
        parts = []
        for a in self.anchors_:
            value = float(self._stage1(a, w[None], np.array([t]))[0])
            parts.append((value, _stage1_gradient(self.stage1_[a]["coef"], w, t, gt, self.offset_squares)))
        if len(parts) == 1:
            return parts[0]
        s = self._size_weight(tokens)
        (L0, g0), (L1, g1) = parts
        L = float(self._stage2(L0, L1, s))  # the curvature correction does not depend on w
        if self.size_space == "log":
            return L, L * ((1.0 - s) * g0 / L0 + s * g1 / L1)
        return L, (1.0 - s) * g0 + s * g1

    # ------------------------------------------------------------------ selection
    def select(self, tokens: float, lower: np.ndarray | None = None, upper: np.ndarray | None = None, *,
               starts: dict[str, np.ndarray] | None = None, max_iter: int = 100, tol: float = 1e-4,
               ftol: float | None = None, time_limit: float | None = None) -> Selection:
        """Best mixture at ``tokens`` for the predicted metric, by spectral projected gradient.

        The feasible set is ``{sum w = 1, lower <= w <= upper}`` (:func:`mixplan.simplex.build_constraints`
        gives these from the manifest's floors, caps and availability). ``starts`` maps names to starting
        mixtures (default: uniform and the best proxy run); each start's value is one OT solve and the
        descent runs from the best. Stops when the projected gradient ``P(w - grad) - w`` is below ``tol``
        (max absolute entry), when five iterations gained less than ``ftol`` together (default: 1% of
        the prediction interval's half-width at ``tokens``: finer optimisation is below what the model can
        tell apart; the OT distance is piecewise linear, so the last digits come slowly), after
        ``max_iter`` iterations or past ``time_limit`` seconds.
        """
        self._check_fitted()
        tokens = self._check_tokens(tokens)
        P = len(self.pools_)
        lo = np.zeros(P) if lower is None else np.asarray(lower, dtype=float)
        hi = np.ones(P) if upper is None else np.asarray(upper, dtype=float)
        if lo.shape != (P,) or hi.shape != (P,) or np.any(lo > hi + 1e-12) or lo.sum() > 1 + 1e-9 or hi.sum() < 1 - 1e-9:
            raise ValidationError("lower/upper must give one bound per pool with lower <= upper, sum(lower) <= 1 "
                                  "<= sum(upper)")
        sense = direction(self.maximize)
        if ftol is None:
            ftol = 0.01 * self._halfwidth(self._size_weight(tokens))
        t0 = time.perf_counter()
        solves0 = self._solves

        warm: dict[str, Any] = {}

        def fg(w: np.ndarray) -> tuple[float, np.ndarray]:
            v, g = self.value_and_gradient(w, tokens, warm)
            return sense * v, sense * g

        def proj(v: np.ndarray) -> np.ndarray:
            return project(v, lo, hi)[0]

        if starts is None:
            anchor = self.stage1_[self.anchors_[-1]]
            best = int(np.argmin(sense * anchor["y"]))
            starts = {"uniform": np.full(P, 1.0 / P), f"best run {anchor['run_ids'][best]}": anchor["weights"][best]}
        scored = []
        for name, w in starts.items():
            w = proj(np.asarray(w, dtype=float))
            f, g = fg(w)
            scored.append((f, name, w, g))
        f, start, x, g = min(scored, key=lambda r: r[0])
        history, memory = [f], [f]
        best_f, best_x = f, x
        lam_min, lam_max = 1e-10, 1e10
        d = proj(x - g) - x
        lam = 1.0 / max(float(np.max(np.abs(d))), 1e-12) * 0.1  # first step moves at most 0.1 in any weight
        converged, it = False, 0
        for it in range(1, max_iter + 1):
            if float(np.max(np.abs(proj(x - g) - x))) < tol:  # projected-gradient stationarity (SPG's test)
                converged = True
                break
            d = proj(x - lam * g) - x
            f_ref = max(memory[-10:])
            gd = float(g @ d)
            step = 1.0
            while True:  # non-monotone Armijo backtracking with safeguarded quadratic interpolation
                xn = x + step * d
                fn, gn = fg(xn)
                if fn <= f_ref + 1e-4 * step * gd or step < 1e-6:
                    break
                denom = 2.0 * (fn - f - step * gd)
                step_q = -gd * step ** 2 / denom if denom > 0 else 0.5 * step
                step = float(np.clip(step_q, 0.1 * step, 0.5 * step))
            sv, yv = xn - x, gn - g
            sy = float(sv @ yv)
            lam = float(np.clip(float(sv @ sv) / sy, lam_min, lam_max)) if sy > 0 else lam_max
            x, f, g = xn, fn, gn
            if f < best_f:  # the non-monotone search may end above the best point it visited
                best_f, best_x = f, x
            history.append(f)
            memory.append(f)
            if len(history) > 5 and min(history[:-5]) - min(history[-5:]) < ftol:
                converged = True
                break
            if time_limit is not None and time.perf_counter() - t0 > time_limit:
                break
        pred = self.predict(best_x[None], tokens)
        return Selection(best_x, pred, start, it, self._solves - solves0, time.perf_counter() - t0, converged,
                         [sense * h for h in history])

    # ------------------------------------------------------------------ reporting / persistence
    def report(self) -> str:
        """The fit as text: samples, OT range, stage 1 per size (leave-one-out), stage 2 and its intervals."""
        import pandas as pd

        r = self.to_dict()
        rows = [{"tokens": f"{s['tokens']:.6g}", "runs": s["n_runs"], "ridge alpha": f"{s['alpha']:.3g}",
                 "LOO R2": f"{s['loo_r2']:.4f}", "LOO MAE": f"{s['loo_mae']:.4g}", "LOO Spearman": f"{s['loo_spearman']:.4f}",
                 f"{r['level']:.0%} half-width": f"{s['halfwidth']:.4g}"} for s in r["stage1"]]
        sm = r["samples"]
        lines = [f"OT extrapolator on {len(r['pools'])} pools: {sm['revealed']} revealed samples "
                 f"({', '.join(f'{p} {n}' for p, n in zip(r['pools'], sm['per_pool']))}) vs {sm['validation']} "
                 f"validation samples, {sm['dimension']}-d features, {r['method']} OT"
                 + ("" if r["sinkhorn_relative_error"] is None else
                    f" (vs exact on a 1000 x 1000 subsample: {r['sinkhorn_relative_error']:+.1%})"),
                 f"OT distance of the runs: {r['ot_range'][0]:.4g} .. {r['ot_range'][1]:.4g}",
                 "stage 1 (leave-one-out):", pd.DataFrame(rows).to_string(index=False)]
        if len(r["anchors"]) == 2:
            lines.append(f"stage 2: straight line in ln N through {r['anchors'][0]:.6g} and {r['anchors'][1]:.6g} "
                         f"({r['size_space']} metric); intervals from "
                         + (f"{r['paired_runs']} mixtures run at both sizes" if r["paired_runs"] else
                            "the two sizes' errors combined as independent")
                         + ("; with the line's curvature error from the check runs" if r["curvature"] else
                            "; they do NOT include the line's own (curvature) error: add --check-runs"))
        else:
            lines.append(f"one size fitted ({r['anchors'][0]:.6g}): no size extrapolation; add runs at a second size")
        if r["curvature"] is not None:
            c = r["curvature"]
            lines.append(f"curvature from {c['n_runs']} check runs at {c['tokens']:.6g}: mean residual of the line "
                         f"{c['mean_residual']:+.4g}, so predictions add {c['coef']:+.4g} s(s-1); check-run spread "
                         f"{c['halfwidth_at_check_size']:.4g} ({r['level']:.0%}) enters the intervals")
        if r["skipped_sizes"]:
            lines.append(f"sizes with too few runs for stage 1 (ignored): {r['skipped_sizes']}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Per-size stage-1 fit quality (leave-one-out), the anchors and the settings, JSON-ready."""
        self._check_fitted()
        return {
            "pools": self.pools_, "anchors": list(self.anchors_), "size_space": self.size_space,
            "level": self.level, "method": self.method_, "sinkhorn_relative_error": self.sinkhorn_error_,
            "metric": self.metric, "maximize": self.maximize,
            "ot_range": list(self.ot_range_), "coverage_radius": self.coverage_radius_,
            "samples": {"revealed": int(self.X_.shape[0]), "validation": int(self.Y_.shape[0]),
                        "dimension": int(self.X_.shape[1]),
                        "per_pool": np.bincount(self.pool_index_, minlength=len(self.pools_)).tolist()},
            "skipped_sizes": {f"{k:g}": v for k, v in self.skipped_sizes_.items()},
            "paired_runs": None if self.pairs_ is None else int(self.pairs_.shape[1]),
            "curvature": None if self.curvature_ is None else {
                k: self.curvature_[k] for k in ("tokens", "coef", "mean_residual", "n_runs")}
            | {"halfwidth_at_check_size": conformal_quantile(self.curvature_["residuals"], self.level)},
            "stage1": [{k: f[k] for k in ("tokens", "n_runs", "alpha", "loo_r2", "loo_mae", "loo_spearman")}
                       | {"halfwidth": conformal_quantile(f["loo_residuals"], self.level),
                          "coefficients": dict(zip(["intercept", *feature_names(self.pools_, self.offset_squares)],
                                                   [f["intercept"], *map(float, f["coef"])]))}
                       for f in self.stage1_.values()],
        }

    @classmethod
    def load(cls, directory: str | Path) -> OTExtrapolator:
        """An extrapolator written by :meth:`save` (see :func:`load_extrapolator`)."""
        return load_extrapolator(directory)

    def save(self, directory: str | Path, force: bool = False) -> list[Path]:
        """Write ``ot_model.json`` (settings, coefficients, runs) and ``ot_space.npz`` (embeddings) to ``directory``."""
        self._check_fitted()
        d = Path(directory)
        paths = [d / MODEL_FILE, d / SPACE_FILE]
        check_writable(paths, force)
        params = {k: getattr(self, k) for k in ("method", "reg", "metric", "offset_squares", "size_space", "level",
                                                "max_extrapolation", "maximize", "numItermax")}
        doc = {"format": "mixplan-ot-extrapolator", "format_version": FORMAT_VERSION, "params": params,
               "alphas": list(map(float, self.alphas)), "pools": self.pools_, "anchors": list(self.anchors_),
               "skipped_sizes": {f"{k!r}": v for k, v in self.skipped_sizes_.items()},
               "stage1": [{"tokens": f["tokens"], "alpha": f["alpha"], "intercept": f["intercept"],
                           "coef": f["coef"].tolist(), "run_ids": f["run_ids"], "y": f["y"].tolist(),
                           "weights": f["weights"].tolist(), "loo_residuals": f["loo_residuals"].tolist(),
                           "ot": f["ot"].tolist()}
                          for f in self.stage1_.values()],
               "curvature": None if self.curvature_ is None else
               self.curvature_ | {"residuals": self.curvature_["residuals"].tolist()},
               "report": self.to_dict()}
        arrays = {"X": self.X_, "Y": self.Y_, "pool_index": self.pool_index_.astype(np.int64)}
        if self.b_ is not None:
            arrays["b"] = self.b_
        # Both files' contents first (dumps_json refuses a non-finite number): a refusal leaves no folder behind.
        # Fixed zip timestamps (np.savez stamps the current time): the same fit gives byte-identical files.
        text, data = dumps_json(doc), npz_bytes(arrays)
        d.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(paths[1], data, force=force)
        write_text_atomic(paths[0], text, force=force)
        return paths


def load_extrapolator(directory: str | Path) -> OTExtrapolator:
    """Load an extrapolator saved by :meth:`OTExtrapolator.save` (no pickle)."""

    d = Path(directory)
    meta_path, space_path = d / MODEL_FILE, d / SPACE_FILE
    for p in (meta_path, space_path):
        if not p.is_file():
            raise ValidationError(f"{p} not found: {d} is not a saved OT extrapolator (mixplan ot fit --out DIR)")
    refit = "refit it with 'mixplan ot fit --out DIR'"
    doc = read_json(meta_path, "a saved OT extrapolator (mixplan ot fit --out DIR)", "not a mixplan OT extrapolator")
    if not isinstance(doc, dict):
        raise ValidationError(f"{meta_path}: not a mixplan OT extrapolator (a JSON object is expected); {refit}")
    if doc.get("format") != "mixplan-ot-extrapolator" or doc.get("format_version") != FORMAT_VERSION:
        raise ValidationError(f"{meta_path}: not a mixplan OT extrapolator of format version {FORMAT_VERSION} "
                              f"(found {doc.get('format')!r} version {doc.get('format_version')!r}); {refit}")
    with saved_artefact(space_path, "OT study's embeddings", refit):
        if not zipfile.is_zipfile(space_path):  # np.load would take it for a pickle it may not open
            raise ValueError("not a zip archive of arrays")
        # from bytes: a damaged archive makes np.load fail with the file it opened left open (a ResourceWarning)
        with np.load(io.BytesIO(space_path.read_bytes()), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        X, Y, pool_index = arrays["X"], arrays["Y"], arrays["pool_index"]
    with saved_artefact(meta_path, "OT extrapolator", refit):
        return _extrapolator_from(doc, X, Y, pool_index, arrays.get("b"))


def _extrapolator_from(doc: dict[str, Any], X: np.ndarray, Y: np.ndarray, pool_index: np.ndarray,
                       b: np.ndarray | None) -> OTExtrapolator:
    est = OTExtrapolator(**doc["params"], alphas=tuple(doc["alphas"]))
    est.pools_ = list(doc["pools"])
    est.X_, est.Y_, est.pool_index_, est.b_ = X, Y, pool_index, b
    est._prepare_space()
    # measured at fit time and saved in the report (an exact 1,000 x 1,000 solve); only a file without it
    # pays for the measurement again
    est.sinkhorn_error_ = doc.get("report", {}).get("sinkhorn_relative_error")
    if est.sinkhorn_error_ is None and est.method_ == "sinkhorn":
        est.sinkhorn_error_ = est._sinkhorn_error()
    est.stage1_ = {}
    for f in doc["stage1"]:
        est.stage1_[float(f["tokens"])] = _stage1_record(
            float(f["tokens"]), float(f["alpha"]), np.asarray(f["coef"], dtype=float), float(f["intercept"]),
            np.asarray(f["loo_residuals"], dtype=float), np.asarray(f["weights"], dtype=float),
            np.asarray(f["y"], dtype=float), list(f["run_ids"]),
            np.asarray(f["ot"], dtype=float))  # OT values stored: re-solving every run would cost minutes
    for size, f in est.stage1_.items():  # decoded is not usable: arrays of mismatched lengths fail only when used
        fitted = est._stage1(size, f["weights"], f["ot"])
        if fitted.shape != f["y"].shape or not np.all(np.isfinite(fitted)):
            raise ValueError(f"its stage-1 fit at {size:g} tokens does not reproduce its own runs")
    est.anchors_ = tuple(float(a) for a in doc["anchors"])
    est.skipped_sizes_ = {float(k): int(v) for k, v in doc.get("skipped_sizes", {}).items()}
    est._derive_from_stage1()
    curv = doc.get("curvature")
    est.curvature_ = None if curv is None else curv | {"residuals": np.asarray(curv["residuals"], dtype=float)}
    return est


def extrapolation_notes(pred: OTPrediction) -> list[str]:
    """What a prediction extrapolates: beyond ``max_extrapolation`` x the largest fitted size, or outside
    the region the proxy runs cover."""
    notes = []
    if pred.extrapolated:
        notes.append(f"{pred.tokens:.6g} tokens is {pred.size_ratio:.3g} x the largest fitted size: the straight line "
                     "in ln N has not been validated that far out; fit runs at a larger size")
    if pred.bracketed:
        notes.append(f"beyond the larger fitted size two sizes cannot tell the curvature: the intervals at "
                     f"{pred.tokens:.6g} tokens are the bracket between the straight line in ln N and the larger size's "
                     "own prediction (a metric that keeps improving with less gain per doubling), not calibrated "
                     "intervals; calibrate with check runs at a larger size (mixplan ot fit --check-runs)")
    if not np.all(pred.covered):
        notes.append(f"{int(np.sum(~pred.covered))} of {len(pred.covered)} mixtures lie outside the region the proxy "
                     "runs cover (far from every run, or an OT distance outside the fitted range)")
    return notes
