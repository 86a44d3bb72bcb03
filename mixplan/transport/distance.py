r"""Optimal-transport distance of a data mixture to a validation set, and its gradient in the mixture.

Setting (Projektor, Kang et al. 2023). Pool :math:`p \in \{1..P\}` reveals :math:`n_p` embedded samples
:math:`x_j, j \in S_p`; the validation set has samples :math:`y_k` with weights :math:`b_k`
(uniform by default). A mixture :math:`w \in \Delta^{P-1}` is represented by *re-weighting* the pooled
samples, never by re-sampling them:

.. math::

    a_j(w) = \frac{w_{p(j)}}{n_{p(j)}} , \qquad \sum_j a_j = \sum_p w_p = 1 .

The distance is the Kantorovich problem with a cost matrix :math:`C_{jk} = c(x_j, y_k)` that the caller
computes once (:func:`cost_matrix`) and reuses for every mixture:

.. math::

    \mathrm{OT}(w) = \min_{\pi \ge 0,\ \pi\mathbf 1 = a(w),\ \pi^\top\mathbf 1 = b} \langle \pi, C\rangle
                  = \max_{f_j + g_k \le C_{jk}} \langle f, a(w)\rangle + \langle g, b\rangle .

Exact solver: network simplex (POT ``ot.emd2(..., log=True)``), which also returns the dual potentials
:math:`(f, g)` (``log['u']``, ``log['v']``). Entropic solver: Sinkhorn (``ot.sinkhorn``; log-domain once
:math:`\max C/\varepsilon \ge 200`), whose value :math:`\langle \pi_\varepsilon, C\rangle` is biased *upwards*
for large :math:`\varepsilon` and tends to the exact value as :math:`\varepsilon \to 0` (at a cost of more
iterations).

Gradient. :math:`\mathrm{OT}` is convex and piecewise linear in :math:`a`, and away from degenerate vertices
the optimal :math:`f` is its gradient. By the chain rule through :math:`a(w)`,

.. math::

    \frac{\partial \mathrm{OT}}{\partial w_p} = \bar f_p + c , \qquad
    \bar f_p = \frac{1}{n_p} \sum_{j \in S_p} f_j ,

where :math:`c` is arbitrary: the duals are defined only up to :math:`(f + c, g - c)`, and this constant is
invisible to any direction :math:`d` that keeps the total mass, :math:`\sum_p d_p = 0`. Two such uses:

* Projektor's "calibrated gradient" (the default, ``kind="projektor"``) is the derivative along
  :math:`d^{(i)} = e_i - \sum_{k\ne i} \frac{w_k}{1 - w_i} e_k` (pool :math:`i` grows, the others shrink in
  proportion):

  .. math::

      D_i \mathrm{OT} = \bar f_i - \frac{\sum_{k \ne i} w_k \bar f_k}{1 - w_i}
                     = \operatorname{mean}_{j \in S_i} f_j - \operatorname{mean}_{j \notin S_i,\ a} f_j ,

  which with equal per-sample weights :math:`1/N` is Projektor's
  :math:`\frac1{n_i}\big(\sum_{S_i} f_j - \frac{n_i}{N-n_i}\sum_{\notin S_i} f_j\big)`.
  (At :math:`w_i = 1` the others have no mass to shrink; the unweighted mean of the others is used.)
* ``kind="tangent"``: :math:`\bar f - \operatorname{mean}(\bar f)\mathbf 1`, the Euclidean projection onto the
  simplex's tangent space (what projected-gradient ascent/descent on :math:`\Delta^{P-1}` needs).
  ``kind="raw"`` returns :math:`\bar f` with POT's centred duals.

Checked against central finite differences of :math:`\mathrm{OT}` along :math:`d^{(i)}`
(``tests/test_ot.py``): relative error :math:`\le 4\cdot10^{-8}` with step :math:`10^{-6}` on random
Gaussian pools (250 x 150 and 2,000 x 2,000 points). Because the LP is piecewise linear, a finite
difference is exact when its step stays inside one linear piece; at a degenerate vertex (ties in the
weights, e.g. a mixture that reproduces the validation set exactly) the duals are not unique and the
gradient is one of the subgradients.

For Sinkhorn the returned potentials are those of the KL-to-:math:`a\otimes b` formulation,
:math:`\tilde f = \varepsilon(\log u - \log a)`, extended to zero-mass samples by the soft
:math:`c`-transform; the same formulas then give the gradient of the *entropic* objective, an
approximation of the exact one (not checked by tests).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import ot as _pot
from scipy.special import logsumexp

from ..exceptions import MixplanError, MixplanWarning, ValidationError

__all__ = [
    "OTConvergenceWarning",
    "OTResult",
    "cost_matrix",
    "mixture_measure",
    "ot_distance",
    "ot_gradient",
    "pool_directions",
]

#: Tolerance on ``sum(w) == 1`` and ``sum(b) == 1``.
SUM_TOL = 1e-6
_METHODS = ("exact", "sinkhorn")
_GRADIENT_KINDS = ("projektor", "tangent", "raw")
#: Sinkhorn uses the scaling-domain solver while max(C)/reg is below this, the log-domain one above.
_KNOPP_MAX_RATIO = 200.0


class OTConvergenceWarning(MixplanWarning):
    """The OT solver stopped at its iteration limit before reaching optimality / its tolerance."""


# ----------------------------------------------------------------------------------------------- inputs
def _as_weights(w, n_pools: int | None, name: str = "w") -> np.ndarray:
    try:
        w = np.asarray(w, dtype=float)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be a 1-D array of numbers, got {type(w).__name__}") from None
    if w.ndim != 1 or w.size == 0:
        raise ValidationError(f"{name} must be a non-empty 1-D array, got shape {w.shape}")
    if n_pools is not None and w.size != n_pools:
        raise ValidationError(f"{name} has {w.size} entries but there are {n_pools} pools; give one weight per pool "
                              "(in the order of the pool ids 0..P-1 used in pool_index)")
    if not np.all(np.isfinite(w)):
        i = int(np.flatnonzero(~np.isfinite(w))[0])
        raise ValidationError(f"{name}[{i}] is {w[i]!r}; weights must be finite")
    if np.any(w < -1e-12):
        i = int(np.flatnonzero(w < -1e-12)[0])
        raise ValidationError(f"{name}[{i}] = {w[i]!r} is negative; weights must be >= 0 "
                              "(a mixture lies on the simplex)")
    s = float(w.sum())
    if abs(s - 1.0) > SUM_TOL:
        raise ValidationError(f"{name} sums to {s!r}, not 1; normalise it (divide by its sum) before calling")
    w = np.clip(w, 0.0, None)
    return w / w.sum()


def _as_pool_index(pool_index, n_rows: int | None = None, n_pools: int | None = None) -> np.ndarray:
    idx = np.asarray(pool_index)
    if idx.ndim != 1 or idx.size == 0:
        raise ValidationError(f"pool_index must be a non-empty 1-D array of pool ids, got shape {idx.shape}")
    if idx.dtype.kind == "f" and np.all(np.isfinite(idx)) and np.all(idx == np.round(idx)):
        idx = idx.astype(np.int64)
    if idx.dtype.kind not in "iu":
        raise ValidationError(f"pool_index must hold integer pool ids 0..P-1 (dtype {idx.dtype} given); map pool "
                              "names to ids first, e.g. with np.unique(names, return_inverse=True)")
    if n_rows is not None and idx.size != n_rows:
        raise ValidationError(f"pool_index has {idx.size} entries but the cost matrix has {n_rows} rows (pooled "
                              "samples); give one pool id per row of C, in the same order")
    if idx.min() < 0:
        raise ValidationError(f"pool_index contains {int(idx.min())}; pool ids must be 0..P-1")
    if n_pools is not None and idx.max() >= n_pools:
        raise ValidationError(f"pool_index refers to pool {int(idx.max())} but w has only {n_pools} entries "
                              f"(pools 0..{n_pools - 1}); give one weight per pool")
    counts = np.bincount(idx, minlength=n_pools or 0)
    if n_pools is not None and idx.max() < n_pools - 1:
        raise ValidationError(f"w has {n_pools} entries but pool_index only uses pool ids 0..{int(idx.max())}; give "
                              "one weight per pool, and at least one revealed sample for every pool")
    if np.any(counts == 0):
        empty = np.flatnonzero(counts == 0).tolist()
        raise ValidationError(f"pool(s) {empty} have no samples in pool_index; every pool needs at least one "
                              "revealed sample: drop those pools from w or add their samples to C")
    return idx.astype(np.int64)


def _as_cost(C) -> np.ndarray:
    C = np.asarray(C, dtype=float)
    if C.ndim != 2 or 0 in C.shape:
        raise ValidationError(f"C must be a non-empty 2-D cost matrix (pooled samples x validation samples), "
                              f"got shape {C.shape}; build it with mixplan.transport.distance.cost_matrix(X, Y)")
    if not np.all(np.isfinite(C)):
        raise ValidationError("C contains NaN or infinite costs; check the feature vectors for NaN/inf")
    return C


def _as_target(b, m: int) -> np.ndarray:
    if b is None:
        return np.full(m, 1.0 / m)
    b = np.asarray(b, dtype=float)
    if b.ndim != 1 or b.size != m:
        raise ValidationError(f"b has shape {b.shape} but the cost matrix has {m} columns (validation samples); "
                              "give one weight per column, or b=None for uniform weights")
    return _as_weights(b, None, name="b")


# ----------------------------------------------------------------------------------------------- public
def mixture_measure(weights, pool_index) -> np.ndarray:
    r"""Per-sample weights :math:`a_j = w_{p(j)} / n_{p(j)}` that represent mixture ``weights`` on the pooled samples.

    ``weights`` has one entry per pool (on the simplex); ``pool_index[j]`` is the pool id (0..P-1) of pooled
    sample ``j``. The result sums to 1.
    """
    w = _as_weights(weights, None)
    idx = _as_pool_index(pool_index, n_pools=w.size)
    counts = np.bincount(idx, minlength=w.size)
    return (w / counts)[idx]


def cost_matrix(X, Y, metric: str = "sqeuclidean") -> np.ndarray:
    """Ground-cost matrix between pooled samples ``X`` (n x d) and validation samples ``Y`` (m x d).

    ``metric`` is ``"sqeuclidean"`` (default, Projektor's cost up to a factor 1/2), ``"euclidean"`` or any
    metric :func:`scipy.spatial.distance.cdist` accepts. Compute it once per study and pass it to every
    :func:`ot_distance` call.
    """
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float)
    for name, Z in (("X", X), ("Y", Y)):
        if Z.ndim != 2 or 0 in Z.shape:
            raise ValidationError(f"{name} must be a non-empty 2-D array (samples x features), got shape {Z.shape}")
        if not np.all(np.isfinite(Z)):
            raise ValidationError(f"{name} contains NaN or infinite features; clean or re-embed those samples")
    if X.shape[1] != Y.shape[1]:
        raise ValidationError(f"X has {X.shape[1]} features but Y has {Y.shape[1]}; embed both with the same "
                              "featuriser")
    try:
        C = _pot.dist(X, Y, metric=metric)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"unknown metric {metric!r} ({exc}); use 'sqeuclidean', 'euclidean' or a "
                              "scipy cdist metric") from None
    return np.maximum(np.asarray(C, dtype=float), 0.0)


def pool_directions(w) -> np.ndarray:
    r"""Rows :math:`d^{(i)} = e_i - \sum_{k\ne i} \frac{w_k}{1-w_i} e_k`: Projektor's gradient directions (P x P)."""
    w = _as_weights(w, None)
    P = w.size
    D = np.empty((P, P))
    for i in range(P):
        rest = np.delete(w, i)
        s = rest.sum()
        share = rest / s if s > 1e-15 else np.full(P - 1, 1.0 / max(P - 1, 1))
        D[i] = np.insert(-share, i, 1.0)
    return D


@dataclass(frozen=True, eq=False)
class OTResult:
    """OT distance of one mixture, its dual potentials and the solver's convergence report.

    ``f`` (one value per pooled sample) and ``g`` (one per validation sample) are the dual potentials;
    ``converged`` is False when the solver stopped at ``numItermax`` (an :class:`OTConvergenceWarning`
    was then issued). ``n_iter`` is the Sinkhorn iteration count (None for the exact solver);
    ``status`` is POT's result code for the exact solver (1 = optimal, 3 = iteration limit) or a short text.
    """

    distance: float
    f: np.ndarray
    g: np.ndarray
    method: str
    converged: bool
    status: int | str
    n_iter: int | None
    reg: float | None
    weights: np.ndarray = field(repr=False)
    pool_index: np.ndarray = field(repr=False)

    @property
    def pool_potentials(self) -> np.ndarray:
        r""":math:`\bar f_p`, the mean dual potential of each pool's samples (= raw gradient)."""
        counts = np.bincount(self.pool_index, minlength=self.weights.size)
        return np.bincount(self.pool_index, weights=self.f, minlength=self.weights.size) / counts

    def gradient(self, kind: str = "projektor") -> np.ndarray:
        """Gradient of the distance in the mixture weights (see the module docstring for ``kind``)."""
        if kind not in _GRADIENT_KINDS:
            raise ValidationError(f"unknown gradient kind {kind!r}; use one of {', '.join(_GRADIENT_KINDS)}")
        fbar = self.pool_potentials
        if kind == "raw":
            return fbar
        if kind == "tangent":
            return fbar - fbar.mean()
        return pool_directions(self.weights) @ fbar


def ot_distance(w, C, pool_index, b=None, method: str = "exact", reg: float | None = None,
                numItermax: int | None = None, stopThr: float = 1e-9, warm_start: OTResult | None = None) -> OTResult:
    """OT distance between mixture ``w`` of the pooled samples and the validation samples.

    Parameters
    ----------
    w : (P,) mixture weights on the simplex, one per pool id.
    C : (n, m) cost matrix, pooled samples x validation samples (:func:`cost_matrix`).
    pool_index : (n,) pool id 0..P-1 of every row of ``C``.
    b : (m,) validation weights (default uniform).
    method : ``"exact"`` (network simplex, a few thousand points per side) or ``"sinkhorn"``
        (entropic OT; biased upwards, the bias shrinks with ``reg``: about +33% at ``reg = 0.05 max(C)``
        and +4% at ``0.01 max(C)`` on 2,000 x 2,000 Gaussian points, d = 64).
    reg : entropic regularisation in the units of ``C`` (Sinkhorn only); default ``0.01 * max(C)``.
    numItermax : iteration limit. Exact default ``max(10**7, 10*n*m)`` (POT's 1e5 stops short of optimal at
        ~2000 points); Sinkhorn default 10,000.
    stopThr : Sinkhorn tolerance on the marginal violation (L2 norm).
    warm_start : a result for a nearby mixture on the same cost matrix; its potentials start the exact
        solver (POT's ``potentials_init``; ~35% faster at 2,000 points when the mixtures are close).
        The answer does not depend on it; Sinkhorn ignores it.
    """
    if method not in _METHODS:
        raise ValidationError(f"unknown method {method!r}; use 'exact' or 'sinkhorn'")
    C = _as_cost(C)
    n, m = C.shape
    w = _as_weights(w, None)
    idx = _as_pool_index(pool_index, n_rows=n, n_pools=w.size)
    a = (w / np.bincount(idx, minlength=w.size))[idx]
    bb = _as_target(b, m)
    if numItermax is not None and (int(numItermax) != numItermax or numItermax < 1):
        raise ValidationError(f"numItermax must be a positive integer, got {numItermax!r}")
    if method == "exact":
        init = None if warm_start is None or warm_start.f.shape != (n,) else (warm_start.f, warm_start.g)
        return _exact(a, bb, C, w, idx, int(numItermax) if numItermax else max(10_000_000, 10 * n * m), init)
    if reg is None:
        reg = 0.01 * float(C.max()) if C.max() > 0 else 1.0
    if not (np.isfinite(reg) and reg > 0):
        raise ValidationError(f"reg must be a positive number, got {reg!r}")
    return _sinkhorn(a, bb, C, w, idx, float(reg), int(numItermax) if numItermax else 10_000, stopThr)


def ot_gradient(w, C, pool_index, b=None, kind: str = "projektor", numItermax: int | None = None) -> np.ndarray:
    """∂OT/∂w from the exact solver's dual potentials (``kind``: ``projektor``, ``tangent`` or ``raw``).

    To get the distance as well from the same solve, call :func:`ot_distance` and ``result.gradient(kind)``.
    """
    if kind not in _GRADIENT_KINDS:
        raise ValidationError(f"unknown gradient kind {kind!r}; use one of {', '.join(_GRADIENT_KINDS)}")
    return ot_distance(w, C, pool_index, b=b, method="exact", numItermax=numItermax).gradient(kind)


# ----------------------------------------------------------------------------------------------- solvers
def _exact(a, b, C, w, idx, numItermax: int, init=None) -> OTResult:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*numItermax reached.*")
        cost, log = _pot.emd2(a, b, C, numItermax=numItermax, log=True, center_dual=True, potentials_init=init)
    code = int(log["result_code"])
    if code in (0, 2):
        raise MixplanError(f"the exact OT solver reports the problem as {log['warning']!r} (result code {code}); "
                           "check that C is finite and the weights are valid")
    converged = code == 1
    if not converged:
        warnings.warn(f"exact OT stopped at numItermax={numItermax} before optimality ({C.shape[0]} x "
                      f"{C.shape[1]} points); the distance and gradient are approximate: raise numItermax",
                      OTConvergenceWarning, stacklevel=3)
    return OTResult(float(cost), np.asarray(log["u"], dtype=float), np.asarray(log["v"], dtype=float), "exact",
                    converged, code, None, None, w, idx)


def _sinkhorn(a, b, C, w, idx, reg: float, numItermax: int, stopThr: float) -> OTResult:
    rows, cols = a > 0, b > 0
    Cs = C[np.ix_(rows, cols)]
    # Plain (scaling-domain) Sinkhorn is several times faster; exp(-C/reg) underflows below reg ~ max(C)/700,
    # so the log-domain variant takes over for small reg.
    solver = "sinkhorn" if float(Cs.max()) / reg < _KNOPP_MAX_RATIO else "sinkhorn_log"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan, log = _pot.sinkhorn(a[rows], b[cols], Cs, reg, method=solver, numItermax=numItermax,
                                  stopThr=stopThr, log=True, warn=False)
    log_v = np.asarray(log["log_v"]) if "log_v" in log else np.log(np.asarray(log["v"]))
    err = float(log["err"][-1]) if log["err"] else np.inf
    n_iter = int(log["niter"]) + 1
    converged = bool(np.isfinite(err) and (err < stopThr or n_iter < numItermax))
    if not (np.all(np.isfinite(plan)) and np.all(np.isfinite(log_v))):
        raise MixplanError(f"Sinkhorn overflowed at reg={reg:g}; increase reg")
    if not converged:
        warnings.warn(f"Sinkhorn stopped at numItermax={numItermax} with marginal error {err:.2e} > "
                      f"stopThr={stopThr:g} (reg={reg:g}); raise numItermax or reg", OTConvergenceWarning,
                      stacklevel=3)
    distance = float(np.sum(plan * Cs))
    # Potentials of the KL(pi | a x b) formulation, extended to zero-mass points by soft c-transforms.
    g = np.empty(C.shape[1])
    g[cols] = reg * (log_v - np.log(b[cols]))
    f = -reg * logsumexp(np.log(b[cols])[None, :] + (g[cols][None, :] - C[:, cols]) / reg, axis=1)
    if not np.all(cols):
        g[~cols] = -reg * logsumexp(np.log(a[rows])[:, None] + (f[rows][:, None] - C[rows][:, ~cols]) / reg, axis=0)
    shift = float(a @ f - b @ g) / 2.0  # centre as POT does for the exact duals: <a, f> = <b, g>
    return OTResult(distance, f - shift, g + shift, "sinkhorn", converged, "converged" if converged else
                    "numItermax reached", n_iter, reg, w, idx)
