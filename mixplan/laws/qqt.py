r"""Quality–quantity trade-off (QQT) laws for filtered, repeated data (Goyal et al., CVPR 2024).

Goyal, Maini, Lipton, Raghunathan, Kolter, "Scaling Laws for Data Filtering: Data Curation cannot be
Compute Agnostic", CVPR 2024, arXiv 2404.07177; code ``locuslab/scaling_laws_data_filtering``
(``objective.py`` and ``estimate_best_pool.py`` at ``cf5ced1``), "the authors' code" below. Every
formula below is the one the authors' code computes, quirks included.

**Utility decay** (the authors' ``objective.py``). A pool's utility :math:`b < 0` (the exponent of
:math:`y = a n^b`) halves every :math:`\tau` passes: during pass :math:`k = 1, 2, \dots`

.. math::

    b_k = b \cdot 0.5^{(k-1)/\tau}.

**Single pool, utility fit** (``objective.py::func_effective_utility``). Samples seen :math:`n`, pool
size :math:`S`, normaliser :math:`Z = 10^5`, :math:`K = \lfloor n/S \rfloor` and, for passes
:math:`e = 0, \dots, K` (0-based),
:math:`h_e = a \min(S(e+1), n)/Z`, :math:`l_e = a S e / Z`, :math:`b_e = b\, 0.5^{e/\tau}`:

.. math::

    y(n) = \left[h_0^{\,b_0} + d\right] \prod_{e=1}^{K} (h_e / l_e)^{b_e}.

Quirks kept: :math:`a` sits *inside* the power (it rescales :math:`n`; within the first pass
:math:`y = (a n / Z)^b + d`); :math:`d` is added *before* the product, so the floor shrinks with the
repetition factors too; the loop runs to :math:`e = K` even when :math:`n = KS` (the last factor is
then 1); :math:`0^p := 0`.

**Single pool, effective-data fit** (``objective.py::func_effective_data``; repetition discounts the
sample count, the exponent is unchanged):

.. math::

    n_\mathrm{eff} = \sum_{e=0}^{K} (h_e - l_e)\, 0.5^{e/\tau}, \qquad y(n) = n_\mathrm{eff}^{\,b} + d.

**Unions of pools** (``objective.py``, driven by ``estimate_best_pool.py::estimate_best_buckets``).
:math:`p` equal-size pools with a *shared* :math:`a` (the code asserts it) and their own
:math:`(b_i, \tau_i)`, mixed uniformly; :math:`S_\mathrm{tot} = pS`, :math:`h_e, l_e` as above with
:math:`S_\mathrm{tot}`, and :math:`\tau_i' = p\,\tau_i` when ``tau_scale_with_pool_count`` (the
authors' driver multiplies every :math:`\tau_i` by the number of pools; whether the paper's law
includes this could not be confirmed from the paper's text — hence a switch, default True as in the
repository). Utility fit (``func_effective_utility_aggregation``), the plain
mean of the decayed utilities:

.. math::

    \bar b(e) = \frac1p \sum_i b_i\, 0.5^{e/\tau_i'}, \qquad
    y(n) = \left[d + h_0^{\,\bar b(0)}\right] \prod_{e=1}^{K} (h_e/l_e)^{\bar b(e)}.

Effective-data fit (``func_effective_data_aggregation``), a :math:`\delta`-weighted mean and
:math:`d` added at the end, with :math:`\delta_i(e) = 0.5^{e/\tau_i'}`:

.. math::

    \bar b(e) = \frac{\sum_i b_i \delta_i(e)}{\sum_i \delta_i(e)}, \quad
    N_0 = h_0, \quad N_e = N_{e-1} + \frac{h_e - l_e}{p} \sum_i \delta_i(e), \quad
    y(n) = N_0^{\,\bar b(0)} \prod_{e=1}^{K} (N_e / N_{e-1})^{\bar b(e)} + d.

With one pool both reduce to the single-pool curves.

**Best union** (``estimate_best_pool.py::estimate_best_buckets``): sort the pools by :math:`b`
ascending (most useful first), evaluate the top-:math:`k` unions, :math:`k = 1..P`, at each budget
and take the lowest error. :func:`qqt_best_union` does this on a budget grid and also reports the runner-up, the
margin and the budgets where the best union changes (the paper's point: the best filter depends on
compute; the switch points of the published fits are checked in ``tests/laws/test_qqt.py``).

**Constants** (the authors' ``results/parameter_values.jsonl@cf5ced1``): :data:`QQT_PUBLISHED` —
ImageNet-1k zero-shot error, T-MARS deciles of DataComp-medium, both fits. **Fitting**
(:func:`qqt_law`): mixplan's recipe (Huber on log-error, L-BFGS-B from a grid, bootstrap intervals;
the Chinchilla recipe of :mod:`.fitting`). The authors instead grid-searched the SSE of raw error on
linspace grids (their ``grid_search.py``, ``process_128_grid.py``); to reproduce their numbers use
their grids, not this fitter. QQT discounts the *exponent*; the data-constrained law
(:mod:`.data_constrained`) discounts the *token count*; their constants do not transfer (a design
note of mixplan's).

The law is only meaningful near the fitted range (25.6M–128M samples of a 12.8M pool); below it the
curves can exceed 1 (half a pass of the published effective-data top-10% fit gives 1.0395;
``tests/laws/test_qqt.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._checks import check_numbers
from ..exceptions import ValidationError
from .fitting import Law

__all__ = ["QQT_NORMALIZER", "QQT_OBJECTIVES", "QQT_PUBLISHED", "QQT_SOURCE", "QQTBestUnion", "qqt_best_union",
           "qqt_decayed_utility", "qqt_effective_data_error", "qqt_effective_samples", "qqt_error", "qqt_law",
           "qqt_union_error"]

#: Samples are divided by this before the power (``objective.py``: ``normalizer=100_000``).
QQT_NORMALIZER: float = 100_000.0
#: The two published fits, named as the authors' ``--objective`` flag.
QQT_OBJECTIVES: tuple[str, ...] = ("effective_utility", "effective_data")
#: Where the published parameters come from (Goyal et al. 2024; the authors' parameter file).
QQT_SOURCE = ("locuslab/scaling_laws_data_filtering:results/parameter_values.jsonl@cf5ced1 "
              "(file deleted at ba37663); Goyal et al., CVPR 2024, arXiv 2404.07177")

# More passes than this are far outside any fitted range, and the curves loop over passes.
_MAX_PASSES = 1_000_000
# Elements per block when all passes are evaluated at once.
_CHUNK = 2_000_000
_LN2 = float(np.log(2.0))


def _pool(a: float, b: float, tau: float) -> dict[str, float]:
    return {"a": a, "b": b, "tau": tau}


#: Published fits (Goyal et al. 2024, arXiv 2404.07177), full precision as stored in
#: ``locuslab/scaling_laws_data_filtering:results/parameter_values.jsonl@cf5ced1`` (file deleted at
#: ``ba37663``). ImageNet-1k zero-shot **error**; T-MARS score
#: deciles of DataComp-medium, 12.8M samples each. ``pools`` are the four deciles the driver searches
#: (most useful first); ``control`` is the random 25% of the top 40% that the driver drops
#: (``b_values[:-1]``). The effective-data fit stores no ``d``; 0.1 is the driver's ``--d`` default,
#: used for every published estimate.
QQT_PUBLISHED: dict[str, dict[str, Any]] = {
    "tmars_imagenet1k_utility": {
        "objective": "effective_utility", "metric": "imagenet1k_zeroshot_error",
        "a": 0.025, "d": 0.1, "d_note": "as stored", "pool_size": 12_800_000, "normalizer": QQT_NORMALIZER,
        "pools": {
            "tmars_top0to10p": _pool(0.025, -0.16, 6.7272727272727275),
            "tmars_top10to20p": _pool(0.025, -0.125, 8.545454545454547),
            "tmars_top20to30p": _pool(0.025, -0.1, 5.2727272727272725),
            "tmars_top30to40p": _pool(0.025, -0.085, 2.2727272727272725),
        },
        "control": {"tmars_top0to40p_random25p": _pool(0.025, -0.12000000000000001, 6.0)},
        "best_sse": 2.8984396075529056e-05,
        "source": QQT_SOURCE,
    },
    "tmars_imagenet1k_data": {
        "objective": "effective_data", "metric": "imagenet1k_zeroshot_error",
        "a": 0.022, "d": 0.1, "d_note": "not stored; estimate_best_pool.py default --d 0.1",
        "pool_size": 12_800_000, "normalizer": QQT_NORMALIZER,
        "pools": {
            "tmars_top0to10p": _pool(0.022, -0.18227272727272728, 4.0),
            "tmars_top10to20p": _pool(0.022, -0.14484848484848487, 4.363636363636363),
            "tmars_top20to30p": _pool(0.022, -0.1353030303030303, 2.909090909090909),
            "tmars_top30to40p": _pool(0.022, -0.09757575757575758, 1.4545454545454546),
        },
        "control": {"tmars_top0to40p_random25p": _pool(0.022, -0.141969696969697, 3.4545454545454546)},
        "best_sse": 2.529372953280392e-05,
        "source": QQT_SOURCE,
    },
}


# ----------------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------------

def _positive(name: str, value: Any, what: str, fix: str) -> np.ndarray:
    return check_numbers(value, f"qqt: {name}", lo=0.0, lo_open=True, why=what, fix=fix)


def _finite(name: str, value: Any, what: str) -> np.ndarray:
    return check_numbers(value, f"qqt: {name}", why=what)


def _check_budgets(n: Any) -> np.ndarray:
    return _positive("samples seen n", n, "the training budget in samples",
                     "pass budgets > 0 (the law is meaningful near the fitted 2-10 passes over a pool)")


def _check_pool_size(S: Any) -> np.ndarray:
    return _positive("pool_size", S, "samples in one pool", "pass the number of unique samples of the pool, > 0")


def _check_tau(tau: Any) -> np.ndarray:
    return _positive("tau", tau, "the half-life of a pool's utility, in passes",
                     "pass tau > 0; the published fits have tau between 1.45 and 8.5 passes")


def _check_a(a: Any) -> np.ndarray:
    return _positive("a", a, "the scale of samples seen inside the power",
                     "pass a > 0; the published fits use a = 0.025 (utility) and 0.022 (effective data)")


def _check_normalizer(Z: float) -> float:
    return float(_positive("normalizer", Z, "samples are divided by it", "use the authors' 100000"))


def _check_objective(objective: str) -> str:
    if objective not in QQT_OBJECTIVES:
        raise ValidationError(f"qqt: objective {objective!r} is not known; use one of {list(QQT_OBJECTIVES)} "
                              "('effective_utility' decays the exponent, 'effective_data' the sample count)")
    return objective


def _broadcast(**arrays: np.ndarray) -> None:
    try:
        np.broadcast_shapes(*(np.shape(v) for v in arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{k} {np.shape(v)}" for k, v in arrays.items())
        raise ValidationError(f"qqt: the inputs do not broadcast together ({shapes}); pass scalars or arrays of "
                              "one shape") from None


def _passes(n: np.ndarray, S: np.ndarray) -> tuple[np.ndarray, int]:
    """Completed passes ``K = n // S`` (Python's floor division, as the authors) and their maximum."""
    K = np.floor_divide(n, S)
    kmax = int(np.max(K)) if np.size(K) else 0
    if kmax > _MAX_PASSES:
        raise ValidationError(f"qqt: {kmax} passes over a pool (samples seen / pool size) is far outside the range "
                              f"the law was fitted on (2-10 passes); the curves loop over passes and stop at "
                              f"{_MAX_PASSES}: check the units of samples seen and pool size")
    return K, kmax


# ----------------------------------------------------------------------------------------------------
# Curves, as the authors' code computes them (no validation here)
# ----------------------------------------------------------------------------------------------------

def _power(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``x ** p`` with ``0 ** p := 0`` (``objective.py::power``)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = np.power(x, p)
    return np.where(x == 0, 0.0, out)


def _scaled(a, S, e, n, Z):
    """(h_e, l_e): scaled cumulative samples at the end and the start of pass e, as the code orders them."""
    return a * np.minimum(S * (e + 1), n) / Z, a * S * e / Z


def _epoch_chunks(kmax: int, *arrays) -> list[np.ndarray]:
    """Passes 1..kmax as column arrays of shape (E, 1, ..., 1), in chunks of at most ~2M elements."""
    shape = np.broadcast_shapes(*(np.shape(x) for x in arrays))
    step = max(1, _CHUNK // max(1, int(np.prod(shape))))
    return [np.arange(lo, min(lo + step, kmax + 1), dtype=float).reshape((-1,) + (1,) * len(shape))
            for lo in range(1, kmax + 1, step)]


def _utility_curve(n, S, a, b, tau, d, Z=QQT_NORMALIZER):
    K, kmax = _passes(n, S)
    h0, _ = _scaled(a, S, 0, n, Z)
    y = _power(h0, b) + d
    for e in _epoch_chunks(kmax, n, S, a, b, tau, d):  # all passes at once (chunked): one product
        h, l = _scaled(a, S, e, n, Z)
        h = np.where(e <= K, h, l)  # passes beyond K contribute a factor 1
        y = y * np.prod((h / l) ** (b * 0.5 ** (e / tau)), axis=0)
    return y


def _effective_samples(n, S, a, tau, Z=QQT_NORMALIZER):
    K, kmax = _passes(n, S)
    h0, l0 = _scaled(a, S, 0, n, Z)
    neff = (h0 - l0) * 0.5 ** (0 / tau)
    for e in _epoch_chunks(kmax, n, S, a, tau):
        h, l = _scaled(a, S, e, n, Z)
        neff = neff + np.sum(np.where(e <= K, h - l, 0.0) * 0.5 ** (e / tau), axis=0)
    return neff


def _effective_data_curve(n, S, a, b, tau, d, Z=QQT_NORMALIZER):
    return _power(_effective_samples(n, S, a, tau, Z), b) + d


def _union_utility_curve(n, S, a, b, tau, d, Z):
    p = len(b)
    S_tot = S * p
    K, kmax = _passes(n, S_tot)
    h0, _ = _scaled(a, S_tot, 0, n, Z)
    y = d + _power(h0, np.mean(b * 0.5 ** (0 / tau)))
    for e in range(1, kmax + 1):
        h, l = _scaled(a, S_tot, e, n, Z)
        h = np.where(e <= K, h, l)
        y = y * (h / l) ** np.mean(b * 0.5 ** (e / tau))
    return y


def _union_effective_data_curve(n, S, a, b, tau, d, Z):
    p = len(b)
    S_tot = S * p
    K, kmax = _passes(n, S_tot)

    def delta(e):
        return 0.5 ** (e / tau)

    def b_eff(e):
        de = delta(e)
        return np.sum(b * de) / np.sum(de)

    def grow(N, e, dn):  # the code adds each pool's share in turn
        de = delta(e)
        per_pool = dn / p
        for i in range(p):
            N = N + per_pool * de[i]
        return N

    h0, l0 = _scaled(a, S_tot, 0, n, Z)
    y = _power(h0, b_eff(0))
    N = grow(0.0, 0, h0 - l0)
    for e in range(1, kmax + 1):
        h, l = _scaled(a, S_tot, e, n, Z)
        N_new = grow(N, e, np.where(e <= K, h - l, 0.0))
        y = y * _power(N_new / N, b_eff(e))
        N = N_new
    return y + d


# ----------------------------------------------------------------------------------------------------
# Public functions
# ----------------------------------------------------------------------------------------------------

def qqt_decayed_utility(b: Any, tau: Any, k: Any) -> np.ndarray:
    """Utility during pass ``k`` (1-based): :math:`b_k = b \\cdot 0.5^{(k-1)/\\tau}` (Goyal et al. 2024,
    arXiv 2404.07177; ``locuslab/scaling_laws_data_filtering``, ``objective.py``)."""
    b = _finite("b", b, "the pool's utility")
    tau = _check_tau(tau)
    k = check_numbers(k, "qqt: pass k", lo=1.0, why="1-based index of the pass over the pool; the first pass, "
                      "k = 1, is undecayed")
    _broadcast(b=b, tau=tau, k=k)
    return b * 0.5 ** ((k - 1) / tau)


def qqt_error(n: Any, pool_size: Any, a: Any, b: Any, tau: Any, d: Any, *,
              normalizer: float = QQT_NORMALIZER) -> np.ndarray:
    """Error after ``n`` samples seen of one pool of ``pool_size`` samples, utility fit (Goyal et al. 2024).

    Exactly ``objective.py::func_effective_utility``; all arguments broadcast (e.g. an array of budgets).
    """
    n, S, a, tau = _check_budgets(n), _check_pool_size(pool_size), _check_a(a), _check_tau(tau)
    b, d = _finite("b", b, "the pool's utility"), _finite("d", d, "the irreducible error")
    _broadcast(n=n, pool_size=S, a=a, b=b, tau=tau, d=d)
    return _utility_curve(n, S, a, b, tau, d, _check_normalizer(normalizer))


def qqt_effective_samples(n: Any, pool_size: Any, a: Any, tau: Any, *,
                          normalizer: float = QQT_NORMALIZER) -> np.ndarray:
    """Scaled effective samples :math:`n_\\mathrm{eff}` of the effective-data fit (Goyal et al.
    2024; ``locuslab/scaling_laws_data_filtering``, ``objective.py::get_effective_samples``): pass ``e``
    (0-based) counts ``0.5^(e/tau)`` per sample, times ``a / Z``."""
    n, S, a, tau = _check_budgets(n), _check_pool_size(pool_size), _check_a(a), _check_tau(tau)
    _broadcast(n=n, pool_size=S, a=a, tau=tau)
    return _effective_samples(n, S, a, tau, _check_normalizer(normalizer))


def qqt_effective_data_error(n: Any, pool_size: Any, a: Any, b: Any, tau: Any, d: Any, *,
                             normalizer: float = QQT_NORMALIZER) -> np.ndarray:
    """Error after ``n`` samples of one pool, effective-data fit: :math:`n_\\mathrm{eff}^b + d` (Goyal et al.
    2024; ``locuslab/scaling_laws_data_filtering``, ``objective.py::func_effective_data``)."""
    n, S, a, tau = _check_budgets(n), _check_pool_size(pool_size), _check_a(a), _check_tau(tau)
    b, d = _finite("b", b, "the pool's utility"), _finite("d", d, "the irreducible error")
    _broadcast(n=n, pool_size=S, a=a, b=b, tau=tau, d=d)
    return _effective_data_curve(n, S, a, b, tau, d, _check_normalizer(normalizer))


def _union_params(a: Any, b: Any, tau: Any) -> tuple[float, np.ndarray, np.ndarray]:
    a, b, tau = (np.atleast_1d(check_numbers(v, f"qqt: {k}")) for k, v in (("a", a), ("b", b), ("tau", tau)))
    if b.ndim != 1 or len(b) == 0:
        raise ValidationError("qqt: a union needs at least one pool: pass b and tau as 1-D sequences with one value "
                              "per pool")
    if tau.shape != b.shape or a.shape not in ((1,), b.shape):
        raise ValidationError(f"qqt: a union needs one b and one tau per pool (and one shared a, or one per pool); "
                              f"got {len(b)} b, {tau.size} tau, {a.size} a")
    _check_a(a)
    _check_tau(tau)
    _finite("b", b, "the pools' utilities")
    if not np.all(a == a[0]):
        raise ValidationError(f"qqt: the pools of a union must share a (got a = {a.tolist()}): a rescales the samples "
                              "seen of the whole union (Goyal et al. 2024's union law; the authors' code asserts it). Refit the pools "
                              "with one shared a, as the published fits do")
    return float(a[0]), b, tau


def qqt_union_error(n: Any, pool_size: Any, a: Any, b: Any, tau: Any, d: float, *,
                    objective: str = "effective_utility", tau_scale_with_pool_count: bool = True,
                    normalizer: float = QQT_NORMALIZER) -> np.ndarray:
    """Error after ``n`` samples of a uniform union of ``len(b)`` pools of ``pool_size`` samples each
    (Goyal et al. 2024, arXiv 2404.07177; ``locuslab/scaling_laws_data_filtering``, ``objective.py``).

    ``a`` (shared; a scalar or one equal value per pool), ``b`` and ``tau`` (one per pool) are the
    pools' fitted parameters, ``d`` the irreducible error. ``objective`` picks the utility fit
    (``func_effective_utility_aggregation``: mean of the decayed utilities, ``d`` before the product)
    or the effective-data fit (``func_effective_data_aggregation``: delta-weighted mean utility,
    discounted sample growth, ``d`` at the end). ``tau_scale_with_pool_count`` multiplies every
    ``tau`` by the number of pools, as the authors' driver does (default). ``n`` may be an array of
    budgets; the result has its shape. With one pool this is :func:`qqt_error` /
    :func:`qqt_effective_data_error`.
    """
    _check_objective(objective)
    a, b, tau = _union_params(a, b, tau)
    if np.ndim(pool_size) or np.ndim(d):
        raise ValidationError("qqt: a union's pools share one pool_size and one d; pass scalars")
    n, S = _check_budgets(n), float(_check_pool_size(pool_size))
    d = float(_finite("d", d, "the irreducible error"))
    if tau_scale_with_pool_count:
        tau = tau * len(b)
    curve = _union_utility_curve if objective == "effective_utility" else _union_effective_data_curve
    return curve(n, S, a, b, tau, d, _check_normalizer(normalizer))


@dataclass(frozen=True)
class QQTBestUnion:
    """The best top-k union of pools at each budget (Goyal et al. 2024; ``estimate_best_pool.py``).

    ``order`` names the pools most useful first (``b`` ascending); union ``k`` is ``order[:k]``.
    ``errors[i, k-1]`` is the error of union ``k`` at ``budgets[i]``; ``best`` and ``runner_up``
    hold ``k`` (``runner_up`` is 0 and ``margin`` NaN when there is a single pool); ``margin`` is
    the runner-up's error minus the best error. ``crossovers`` lists ``(budget, k_before, k_after)``
    for each grid budget that is the first where a different union is best.
    """

    budgets: np.ndarray
    order: tuple[str, ...]
    errors: np.ndarray
    best: np.ndarray
    runner_up: np.ndarray
    margin: np.ndarray
    crossovers: tuple[tuple[float, int, int], ...]

    def union(self, k: int) -> tuple[str, ...]:
        """Names of the pools in union ``k`` (the ``k`` most useful)."""
        return self.order[:k]

    def regimes(self) -> list[tuple[int, float, float]]:
        """``(k, first budget, last budget)`` per run of budgets with the same best union; a regime ends
        where the next begins (the last one at the last budget), as ``qqt_best_pool_regimes.csv``."""
        starts = [float(self.budgets[0])] + [c[0] for c in self.crossovers]
        ends = [c[0] for c in self.crossovers] + [float(self.budgets[-1])]
        ks = [int(self.best[0])] + [c[2] for c in self.crossovers]
        return list(zip(ks, starts, ends))


def qqt_best_union(budgets: Any, pools: Mapping[str, Mapping[str, float]], *, pool_size: float, d: float,
                   objective: str = "effective_utility", tau_scale_with_pool_count: bool = True,
                   normalizer: float = QQT_NORMALIZER) -> QQTBestUnion:
    """Which top-k union of ``pools`` has the lowest error at each budget (``estimate_best_buckets``).

    ``pools`` maps names to ``{"a", "b", "tau"}`` (e.g. ``QQT_PUBLISHED[fit]["pools"]``); they are
    sorted by ``b`` ascending and the unions of the first ``k = 1..P`` are compared with
    :func:`qqt_union_error`. ``budgets`` is an increasing grid of samples seen (a scalar is one budget).
    """
    _check_objective(objective)
    example = "(e.g. QQT_PUBLISHED['tmars_imagenet1k_utility']['pools'])"
    if not isinstance(pools, Mapping):
        raise ValidationError(f"qqt: pools must map pool names to {{'a', 'b', 'tau'}} {example}, got "
                              f"{type(pools).__name__}")
    if len(pools) == 0:
        raise ValidationError(f"qqt: the pool list is empty; pass a mapping of pool names to {{'a', 'b', 'tau'}} "
                              f"{example}")
    names = list(pools)
    try:
        a, b, tau = (np.array([float(pools[k][p]) for k in names]) for p in ("a", "b", "tau"))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(f"qqt: every pool needs numbers 'a', 'b' and 'tau' ({exc!r}); e.g. "
                              "{'a': 0.025, 'b': -0.16, 'tau': 6.73}") from None
    n = np.atleast_1d(_check_budgets(budgets))
    if n.ndim != 1:
        raise ValidationError("qqt: budgets must be a 1-D grid of samples seen")
    if len(n) > 1 and not np.all(np.diff(n) > 0):
        raise ValidationError("qqt: budgets must be strictly increasing (a grid); sort them, e.g. np.unique(budgets)")
    order = np.argsort(b, kind="stable")
    names, a, b, tau = [names[i] for i in order], a[order], b[order], tau[order]
    P = len(names)
    errors = np.column_stack([
        qqt_union_error(n, pool_size, a[:k], b[:k], tau[:k], d, objective=objective,
                        tau_scale_with_pool_count=tau_scale_with_pool_count, normalizer=normalizer)
        for k in range(1, P + 1)])
    return rank_unions(n, names, errors)


def rank_unions(n: np.ndarray, names: Sequence[str], errors: np.ndarray) -> QQTBestUnion:
    """Best and runner-up union (1-based sizes k) per budget, the margin and where the best changes.

    ``errors[i, k-1]`` is the error of the union of the ``k`` first pools in ``names`` at budget ``n[i]``.
    """
    ranked = np.argsort(errors, axis=1, kind="stable")
    best = ranked[:, 0] + 1
    rows = np.arange(len(n))
    if errors.shape[1] > 1:
        runner_up = ranked[:, 1] + 1
        margin = errors[rows, runner_up - 1] - errors[rows, best - 1]
    else:
        runner_up, margin = np.zeros(len(n), dtype=int), np.full(len(n), np.nan)
    switch = np.flatnonzero(best[1:] != best[:-1]) + 1
    crossovers = tuple((float(n[i]), int(best[i - 1]), int(best[i])) for i in switch)
    return QQTBestUnion(budgets=n, order=tuple(names), errors=errors, best=best, runner_up=runner_up,
                        margin=margin, crossovers=crossovers)


# ----------------------------------------------------------------------------------------------------
# Fitting
# ----------------------------------------------------------------------------------------------------

def qqt_law(objective: str = "effective_utility", *, a: float | None = None, b: float | None = None,
            tau: float | None = None, d: float | None = None, normalizer: float = QQT_NORMALIZER) -> Law:
    """One pool's QQT law in the fitter's terms (:func:`mixplan.laws.fitting.fit_law`).

    Parameters given a value are held fixed; those left ``None`` are fitted. The authors share ``a``
    and ``d`` across pools and fit ``b`` and ``tau`` per pool (their ``ablations/finding_a.py`` and
    ``grid_search.py``), e.g. ``qqt_law(a=0.025, d=0.1)``. Runs need ``tokens`` (samples seen ``n``)
    and ``unique_tokens`` (pool size ``S``); the target is the error. ``a``, ``-b`` and ``tau`` are fitted on the log scale
    (``log_a``, ``log_neg_b``, ``log_tau``; ``named`` reports ``a, b, tau, d``). Bounds: ``b`` in
    [-5, -1e-6], ``tau`` in [0.05, 1000], ``d`` in [0, 100], ``a`` in [1e-6, 10]. Start grid, coarser
    than the authors' 100-point linspaces: ``b`` in linspace(-0.005, -0.5, 12), ``tau`` in
    linspace(1, 10, 10), ``a`` in geomspace(1e-3, 0.1, 5), ``d`` in linspace(0, 0.3, 4).

    Identifiability: from the first completed pass on, ``a`` and ``d`` enter the utility curve only
    through :math:`(aS/Z)^b + d` (the later factors do not depend on them), so fitting both needs runs
    inside the first pass (``tokens < unique_tokens``); otherwise fix one, as the authors do.

    ``log_predict`` evaluates the curves in log form with the per-pass sample ratios as a matrix (one
    product per evaluation); it equals ``log`` of :func:`qqt_error` / :func:`qqt_effective_data_error`
    to rounding.
    """
    _check_objective(objective)
    Z = _check_normalizer(normalizer)
    given = {"a": a, "b": b, "tau": tau, "d": d}
    fixed = {k: float(v) for k, v in given.items() if v is not None}
    if "a" in fixed:
        _check_a(fixed["a"])
    if "tau" in fixed:
        _check_tau(fixed["tau"])
    for k in ("b", "d"):
        if k in fixed:
            _finite(k, fixed[k], "a fixed parameter")
    free = [k for k in given if k not in fixed]
    if not free:
        raise ValidationError("qqt: all of a, b, tau and d are fixed, so there is nothing to fit; leave the ones to "
                              "fit as None")
    # theta name, bounds, start grid. a, -b and tau are fitted on the log scale: better conditioned
    # (fewer L-BFGS-B steps), and b < 0 holds by construction.
    spec = {"a": ("log_a", (np.log(1e-6), np.log(10.0)), tuple(np.log(np.geomspace(1e-3, 0.1, 5)))),
            "b": ("log_neg_b", (np.log(1e-6), np.log(5.0)), tuple(np.log(np.linspace(0.005, 0.5, 12)))),
            "tau": ("log_tau", (np.log(0.05), np.log(1000.0)), tuple(np.log(np.linspace(1.0, 10.0, 10)))),
            "d": ("d", (0.0, 100.0), tuple(np.linspace(0.0, 0.3, 4)))}
    logged = ("a", "b", "tau")  # b as log(-b)
    utility = objective == "effective_utility"
    fixed_log = fixed | {k: float(np.log(fixed[k])) for k in ("a", "tau") if k in fixed}  # b stays b if fixed
    cache: dict[tuple, tuple] = {}

    def passes(data: Mapping[str, np.ndarray]) -> tuple:
        """Data-only parts of the curves, per pass e as columns (m, E): log(h_e / l_e) (utility) or
        (h_e - l_e) / a (effective data). Cached: the fitter evaluates the same runs many times."""
        n, S = np.asarray(data["tokens"], dtype=float), np.asarray(data["unique_tokens"], dtype=float)
        key = (n.shape, S.shape, n.tobytes(), S.tobytes())
        if key in cache:
            return cache[key]
        shape = np.broadcast_shapes(n.shape, S.shape)
        n, S = (np.ravel(x) for x in np.broadcast_arrays(n, S))
        K, kmax = _passes(n, S)
        e = np.arange(1 if utility else 0, kmax + 1, dtype=float)[:, None]  # (E, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            if utility:
                ratio = np.where(e <= K, np.minimum(S * (e + 1), n) / (S * e), 1.0)
                per_pass = np.log(ratio).T
            else:
                per_pass = (np.where(e <= K, np.minimum(S * (e + 1), n) - S * e, 0.0) / Z).T
        first = np.log(np.minimum(S, n) / Z)[:, None]  # log(h_0 / a), (m, 1)
        if len(cache) >= 8:
            cache.clear()
        cache[key] = shape, -_LN2 * e, first, np.ascontiguousarray(per_pass)
        return cache[key]

    def log_predict(theta: np.ndarray, data: Mapping[str, np.ndarray]) -> np.ndarray:
        # qqt_error / qqt_effective_data_error in log form: one matrix product over passes.
        shape, neg_ln2_e, first, per_pass = passes(data)
        theta = np.asarray(theta)
        # Parameters: floats (fixed, or one parameter vector) or (1, G) rows of a grid block.
        p = fixed_log | {k: (theta[i] if theta.ndim == 1 else theta[i][None, :]) for i, k in enumerate(free)}
        log_a, b, log_tau, d = p["a"], (-np.exp(p["b"]) if "b" in free else p["b"]), p["tau"], p["d"]
        decay = np.exp(neg_ln2_e * np.exp(-log_tau))  # 0.5^(e / tau), (E, g)
        if utility:  # [ (a n_0/Z)^b + d ] * prod_e (h_e / l_e)^(b 0.5^(e/tau))
            log_y = np.log(np.exp(b * (log_a + first)) + d) + b * (per_pass @ decay)
        else:  # n_eff^b + d
            log_y = np.log(np.exp(b * (log_a + np.log(per_pass @ decay))) + d)
        return log_y.reshape(shape[:1] + log_y.shape[1:]) if log_y.shape[1] > 1 else log_y.reshape(shape)

    def named(theta: np.ndarray) -> dict[str, float]:
        p = fixed | {k: float(np.exp(theta[i]) if k in logged else theta[i]) for i, k in enumerate(free)}
        if "b" in free:
            p["b"] = -p["b"]
        return {k: float(p[k]) for k in ("a", "b", "tau", "d")}

    label = "qqt-utility" if objective == "effective_utility" else "qqt-effective-data"
    return Law(name=label, theta_names=tuple(spec[k][0] for k in free), log_predict=log_predict, named=named,
               bounds=tuple(spec[k][1] for k in free), grid=tuple(spec[k][2] for k in free),
               columns=("tokens", "unique_tokens"), vectorized=True, fixed=tuple(fixed))
