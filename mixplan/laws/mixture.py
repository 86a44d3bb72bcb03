r"""A mixture law across scale: the loss of a model of :math:`N` parameters trained on :math:`D` tokens of
the mixture :math:`h` (Shukor, Bethune, Busbridge, Grangier, Fini, El-Nouby, Ablin, "Scaling Laws for
Optimal Data Mixtures", arXiv 2507.09404; their *additive* law):

.. math::

    L(N, D, h) = E + \frac{A}{N^\alpha} + \frac{B}{D^\beta} + \frac{1}{\sum_i C_i\, h_i^{\gamma_i}}

The mixture term is separate from :math:`N` and :math:`D`, so the best mixture under this law does not
move with scale; what the law adds over Chinchilla is the *level* at another scale for every mixture,
which is what a plan at the big run's size needs. A pool with :math:`h_i = 0` contributes nothing
(:math:`\gamma_i > 0`).

Fitted in log space like every law here (:mod:`mixplan.laws.fitting`: Huber on log-loss, multi-start,
trust-region polish, bootstrap): :math:`\theta = (e, a, \alpha, b, \beta, c_1..c_K, \gamma_1..\gamma_K)` with
:math:`E = e^e, A = e^a, B = e^b, C_i = e^{c_i}`; the Jacobian of :math:`\log L` is analytic.
On the authors' released SlimPajama runs (7 domains; fit on 122M–680M parameters, all token
checkpoints; predict the 40 mixtures at 937M, mean of the 7 domain losses), the fit's mean relative
error is 0.94% over every checkpoint (1.38% at the final one; Spearman 0.965 over the mixtures) against
1.35% for a mixture-blind Chinchilla fit (``tests/laws/test_mixture.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..exceptions import ValidationError
from .data_constrained import DATABLATIONS, effective_data
from .fitting import Data, Law

__all__ = ["mixture_additive_loss", "mixture_additive_law", "mixture_joint_loss", "mixture_joint_law",
           "mixture_effective_loss", "mixture_effective_law",
           "mixture_effective_theta", "pool_effective_tokens"]


def mixture_additive_loss(N: np.ndarray, D: np.ndarray, W: np.ndarray, E: float, A: float, alpha: float, B: float,
                          beta: float, C: Sequence[float], gamma: Sequence[float]) -> np.ndarray:
    r""":math:`E + A/N^\alpha + B/D^\beta + 1/\sum_i C_i h_i^{\gamma_i}` for runs ``N``, ``D`` and mixtures
    ``W`` (n, K), ``C`` and ``gamma`` one per pool."""
    W = np.atleast_2d(np.asarray(W, dtype=float))
    C, gamma = np.asarray(C, dtype=float), np.asarray(gamma, dtype=float)
    if W.shape[1] != len(C) or len(C) != len(gamma):
        raise ValidationError(f"the mixture law has {len(C)} C and {len(gamma)} gamma for mixtures of {W.shape[1]} "
                              "pools; give one of each per pool")
    S = np.sum(np.where(W > 0, C * np.power(np.where(W > 0, W, 1.0), gamma), 0.0), axis=1)
    return E + A / np.power(N, alpha) + B / np.power(D, beta) + 1.0 / S


def _mixture_term(c: np.ndarray, g: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""The per-pool terms :math:`C_i h_i^{\gamma_i}` (n, K; 0 where a pool is absent) and :math:`\log h`."""
    present = H > 0
    log_h = np.log(np.where(present, H, 1.0))  # 0 where absent: those terms are masked
    return np.where(present, np.exp(c + g * log_h), 0.0), log_h


def _terms(theta: np.ndarray, data: Data) -> tuple[np.ndarray, ...]:
    """The law's four terms and what the Jacobian reuses: (E, A/N^a, B/D^b, C_i h_i^g_i (n, K), log h)."""
    K = data["weights"].shape[1]
    if len(theta) != 5 + 2 * K:
        raise ValidationError(f"the mixture law was built for {(len(theta) - 5) // 2} pools but the runs have weights "
                              f"for {K}")
    e, a, alpha, b, beta = theta[:5]
    T, log_h = _mixture_term(theta[5:5 + K], theta[5 + K:5 + 2 * K], data["weights"])
    tN = np.exp(a - alpha * np.log(data["params"]))
    tD = np.exp(b - beta * np.log(data["tokens"]))
    return np.exp(e), tN, tD, T, log_h


def _log_predict(theta: np.ndarray, data: Data) -> np.ndarray:
    E, tN, tD, T, _ = _terms(theta, data)
    with np.errstate(divide="ignore"):
        return np.log(E + tN + tD + 1.0 / T.sum(axis=1))


def _jacobian(theta: np.ndarray, data: Data) -> np.ndarray:
    """d log L / d theta: each term over L; the mixture term's derivative is -T_i / S^2 (and times log h_i)."""
    E, tN, tD, T, log_h = _terms(theta, data)
    S = T.sum(axis=1)
    L = E + tN + tD + 1.0 / S
    logN, logD = np.log(data["params"]), np.log(data["tokens"])
    dmix = -T / S[:, None] ** 2
    J = np.column_stack([np.full_like(L, E), tN, -tN * logN, tD, -tD * logD, dmix, dmix * log_h])
    return J / L[:, None]


def mixture_additive_law(pools: Sequence[str], start: Mapping[str, float] | None = None) -> Law:
    """The additive law for mixtures of ``pools`` in the fitter's terms; the data are ``params``,
    ``tokens`` and ``weights`` (an (n, K) matrix of mixture weights, rows summing to 1).

    The grid spans the scale terms (3 values each of e, a, alpha, b, beta: 243 starts, the best
    ``n_starts`` of them refined); the mixture terms start at C_i = 1, gamma_i = 0.3 (or ``start``'s
    values by name)."""
    pools = [str(p) for p in pools]
    if len(pools) < 2:
        raise ValidationError("a mixture law needs at least two pools")
    start = dict(start or {})
    names = ("e", "a", "alpha", "b", "beta") + tuple(f"c_{p}" for p in pools) + tuple(f"gamma_{p}" for p in pools)
    K = len(pools)

    def named(theta: np.ndarray) -> dict[str, float]:
        t = [float(x) for x in theta]
        out = {"E": float(np.exp(t[0])), "A": float(np.exp(t[1])), "alpha": t[2], "B": float(np.exp(t[3])),
               "beta": t[4]}
        out |= {f"C_{p}": float(np.exp(t[5 + i])) for i, p in enumerate(pools)}
        return out | {f"gamma_{p}": t[5 + K + i] for i, p in enumerate(pools)}

    grid = ((-1.0, 0.0, 0.5), (2.0, 5.0, 10.0), (0.2, 0.35, 0.5), (2.0, 5.0, 10.0), (0.2, 0.35, 0.5))
    grid += tuple((float(np.log(start.get(f"C_{p}", 1.0))),) for p in pools)
    grid += tuple((float(start.get(f"gamma_{p}", 0.3)),) for p in pools)
    return Law(name="mixture-additive", theta_names=names, log_predict=_log_predict, named=named,
               bounds=((-5.0, 3.0), (-5.0, 40.0), (0.0, 3.0), (-5.0, 40.0), (0.0, 3.0)) + ((-20.0, 20.0),) * K
               + ((0.0, 3.0),) * K,
               grid=grid, columns=("params", "tokens", "weights"), vectorized=False, jacobian=_jacobian,
               weights="weights")


# --- Shukor's joint law: the scale terms depend on the mixture ----------------------------------------

def mixture_joint_loss(N: np.ndarray, D: np.ndarray, W: np.ndarray, E: float, A: Sequence[float], alpha: float,
                       p_A: float, B: Sequence[float], beta: float, p_B: float, C: Sequence[float],
                       gamma: Sequence[float]) -> np.ndarray:
    r""":math:`E + A_h/N^\alpha + B_h/D^\beta + 1/\sum_i C_i h_i^{\gamma_i}` with
    :math:`A_h = (\sum_i A_i h_i)^{p_A}` and :math:`B_h = (\sum_i B_i h_i)^{p_B}`; ``A``, ``B``, ``C``,
    ``gamma`` one per pool."""
    W = np.atleast_2d(np.asarray(W, dtype=float))
    A, B = np.asarray(A, dtype=float), np.asarray(B, dtype=float)
    if not W.shape[1] == len(A) == len(B):
        raise ValidationError(f"the joint mixture law has {len(A)} A and {len(B)} B for mixtures of {W.shape[1]} "
                              "pools; give one of each per pool")
    A_h, B_h = np.power(W @ A, p_A), np.power(W @ B, p_B)
    without_scale_terms = mixture_additive_loss(N, D, W, E, 0.0, alpha, 0.0, beta, C, gamma)
    return without_scale_terms + A_h / np.power(N, alpha) + B_h / np.power(D, beta)


def _joint_terms(theta: np.ndarray, data: Data) -> dict[str, np.ndarray]:
    H = data["weights"]
    K = H.shape[1]
    if len(theta) != 5 + 4 * K:
        raise ValidationError(f"the joint mixture law was built for {(len(theta) - 5) // 4} pools but the runs have "
                              f"weights for {K}")
    e, alpha, p_a, beta, p_b = theta[:5]
    a, b, c, g = (theta[5 + j * K:5 + (j + 1) * K] for j in range(4))
    logN, logD = np.log(data["params"]), np.log(data["tokens"])
    # Sums over the pools of A_i h_i and B_i h_i (> 0: the weights sum to 1 and A_i, B_i > 0).
    uA, uB = H * np.exp(a), H * np.exp(b)
    SA, SB = uA.sum(axis=1), uB.sum(axis=1)
    tN = np.exp(p_a * np.log(SA) - alpha * logN)
    tD = np.exp(p_b * np.log(SB) - beta * logD)
    T, log_h = _mixture_term(c, g, H)
    L = np.exp(e) + tN + tD + 1.0 / T.sum(axis=1)
    return {"E": np.exp(e), "tN": tN, "tD": tD, "T": T, "log_h": log_h, "L": L, "logN": logN, "logD": logD,
            "uA": uA, "uB": uB, "SA": SA, "SB": SB, "p_a": p_a, "p_b": p_b}


def _joint_jacobian(theta: np.ndarray, data: Data) -> np.ndarray:
    """d log L / d theta: d A_h / d a_i = p_A A_h A_i h_i / S_A (and d / d p_A = A_h log S_A), likewise B."""
    t = _joint_terms(theta, data)
    T = t["T"]
    dmix = -T / T.sum(axis=1)[:, None] ** 2
    tN, tD = t["tN"], t["tD"]
    J = np.column_stack([np.full_like(t["L"], t["E"]), -tN * t["logN"], tN * np.log(t["SA"]), -tD * t["logD"],
                         tD * np.log(t["SB"]), (t["p_a"] * tN / t["SA"])[:, None] * t["uA"],
                         (t["p_b"] * tD / t["SB"])[:, None] * t["uB"], dmix, dmix * t["log_h"]])
    return J / t["L"][:, None]


def mixture_joint_law(pools: Sequence[str], start: Mapping[str, float] | None = None) -> Law:
    r"""Shukor et al.'s *joint* mixture law (arXiv 2507.09404), in which the scale terms depend on the mixture:

    .. math::

        L(N, D, h) = E + \frac{(\sum_i A_i h_i)^{p_A}}{N^\alpha} + \frac{(\sum_i B_i h_i)^{p_B}}{D^\beta}
                     + \frac{1}{\sum_i C_i\, h_i^{\gamma_i}}

    so the best mixture moves with :math:`N` and :math:`D` (the additive law's cannot). The form is as
    peers.md summarises the paper (the authors' code was not available here to check it against).
    Fitted as :math:`\theta = (e, \alpha, p_A, \beta, p_B, a_1..a_K, b_1..b_K, c_1..c_K, \gamma_1..\gamma_K)`
    with :math:`E = e^e, A_i = e^{a_i}, B_i = e^{b_i}, C_i = e^{c_i}`; analytic Jacobian. The overall
    size of the :math:`A_i` and :math:`p_A` trade off against each other except through how
    :math:`A_h` bends across mixtures, so :math:`p_A`'s interval is wide unless the runs vary the
    mixture at several sizes (that is the joint law's known weakness: it can overfit where the
    additive law extrapolates better). Data: ``params``, ``tokens``, ``weights``.

    The grid varies :math:`p_A, p_B` (0.4, 1, 2) with :math:`a_i = b_i = 5` -- the additive law's range of
    :math:`\log A` -- and the other scale terms as :func:`mixture_additive_law` does."""
    pools = [str(p) for p in pools]
    if len(pools) < 2:
        raise ValidationError("a mixture law needs at least two pools")
    start = dict(start or {})
    K = len(pools)
    names = (("e", "alpha", "p_a", "beta", "p_b") + tuple(f"a_{p}" for p in pools) + tuple(f"b_{p}" for p in pools)
             + tuple(f"c_{p}" for p in pools) + tuple(f"gamma_{p}" for p in pools))

    def named(theta: np.ndarray) -> dict[str, float]:
        t = [float(x) for x in theta]
        out = {"E": float(np.exp(t[0])), "alpha": t[1], "p_A": t[2], "beta": t[3], "p_B": t[4]}
        for j, sym in enumerate(("A", "B", "C")):
            out |= {f"{sym}_{p}": float(np.exp(t[5 + j * K + i])) for i, p in enumerate(pools)}
        return out | {f"gamma_{p}": t[5 + 3 * K + i] for i, p in enumerate(pools)}

    grid = ((-1.0, 0.0, 0.5), (0.2, 0.35, 0.5), (0.4, 1.0, 2.0), (0.2, 0.35, 0.5), (0.4, 1.0, 2.0))
    grid += tuple((float(np.log(start.get(f"{sym}_{p}", np.exp(5.0)))),) for sym in ("A", "B") for p in pools)
    grid += tuple((float(np.log(start.get(f"C_{p}", 1.0))),) for p in pools)
    grid += tuple((float(start.get(f"gamma_{p}", 0.3)),) for p in pools)
    bounds = ((-5.0, 3.0), (0.0, 3.0), (0.05, 5.0), (0.0, 3.0), (0.05, 5.0)) + ((-10.0, 30.0),) * (2 * K)
    bounds += ((-20.0, 20.0),) * K + ((0.0, 3.0),) * K
    return Law(name="mixture-joint", theta_names=names, log_predict=lambda th, d: np.log(_joint_terms(th, d)["L"]),
               named=named, bounds=bounds, grid=grid, columns=("params", "tokens", "weights"), vectorized=False,
               jacobian=_joint_jacobian, weights="weights")


# --- per-pool effective data ----------------------------------------------------------------------

def pool_effective_tokens(W: np.ndarray, tokens: np.ndarray | float, unique: np.ndarray,
                          r_star: float | np.ndarray) -> np.ndarray:
    r"""Each pool's effective tokens :math:`D'_i` (n, K) when a run of ``tokens`` reads :math:`w_i D` of a pool
    of :math:`U_i` unique tokens: what was read while :math:`w_i D \le U_i`, else Muennighoff et al.'s
    :math:`U_i + U_i R^* (1 - e^{-(w_i D/U_i - 1)/R^*})` (:func:`mixplan.laws.effective_data`). ``tokens``: one
    budget or one per run; ``r_star``: one, or one per pool."""
    D = np.atleast_2d(np.asarray(W, dtype=float)) * np.asarray(tokens, dtype=float).reshape(-1, 1)
    # With U = min(U_i, w_i D), a pool read at most once is worth exactly what was read (no repeats); the
    # outer min keeps rounding (1 - e^-x for tiny x/R*, e.g. R* -> infinity) from adding tokens never read.
    return np.minimum(D, effective_data(D, np.minimum(np.asarray(unique, dtype=float), D), r_star))


def mixture_effective_loss(W: np.ndarray, tokens: np.ndarray, unique: Sequence[float], E: float,
                           C: Sequence[float], gamma: Sequence[float], r_star: float = DATABLATIONS["R_D_star"], *,
                           reference: float = 1e9, params: np.ndarray | None = None, A: float = 0.0,
                           alpha: float = 0.0, B: float = 0.0, beta: float = 0.0) -> np.ndarray:
    r""":math:`E + A/N^\alpha + B/(D'/D_0)^\beta + 1/\sum_i C_i (D'_i/D_0)^{\gamma_i}` with :math:`D'_i` each
    pool's effective tokens (:func:`pool_effective_tokens`), :math:`D' = \sum_i D'_i` and :math:`D_0` the
    ``reference`` (the :math:`N` term only with ``params``, the :math:`B` term only when ``B > 0``)."""
    Dp = pool_effective_tokens(W, tokens, unique, r_star) / reference
    C, gamma = np.asarray(C, dtype=float), np.asarray(gamma, dtype=float)
    S = np.sum(np.where(Dp > 0, C * np.power(np.where(Dp > 0, Dp, 1.0), gamma), 0.0), axis=1)
    out = E + 1.0 / S
    if B > 0:
        out = out + B / np.power(Dp.sum(axis=1), beta)
    if params is not None:
        out = out + A / np.power(np.asarray(params, dtype=float), alpha)
    return out


@dataclass(frozen=True)
class _EffectiveLayout:
    """Where each part of the per-pool effective-data law sits in its parameter vector. ``group[k]`` is
    column k's term (0..G-1; each column its own term unless buckets of one pool share one), ``lead``
    marks the first column of each term (its quality is 1; the others' log-qualities are fitted)."""

    K: int
    params: bool
    generic: bool
    fit_r_star: bool
    r_star: float
    unique: np.ndarray
    #: per pool, a fixed R* (given), or NaN where the shared R* (``r_star``, or fitted) applies
    r_fixed: np.ndarray
    reference: float
    group: np.ndarray
    lead: np.ndarray

    @property
    def G(self) -> int:
        return int(self.group.max()) + 1

    @property
    def n_quality(self) -> int:
        return int((~self.lead).sum())

    @property
    def size(self) -> int:
        return 1 + 2 * self.params + 2 * self.generic + 2 * self.G + self.n_quality + self.fit_r_star


def _unique(data: Data, lay: _EffectiveLayout) -> np.ndarray:
    """Each pool's unique tokens: per run (the ``unique`` column of runs on subsampled pools) or the law's."""
    U = data.get("unique")
    return lay.unique if U is None else np.asarray(U, dtype=float)


def _effective_terms(theta: np.ndarray, data: Data, lay: _EffectiveLayout) -> dict[str, np.ndarray]:
    if len(theta) != lay.size or data["weights"].shape[1] != lay.K:
        raise ValidationError(f"the effective-data mixture law was built for {lay.K} pools but the runs have weights "
                              f"for {data['weights'].shape[1]}")
    k = 1
    out: dict[str, Any] = {"E": np.exp(theta[0])}
    tN = 0.0
    if lay.params:
        out["logN"] = np.log(data["params"])
        tN = np.exp(theta[k] - theta[k + 1] * out["logN"])
        k += 2
    out["tN"] = tN
    gen = None
    if lay.generic:
        gen = theta[k:k + 2]
        k += 2
    G = lay.G
    c, g = theta[k:k + G], theta[k + G:k + 2 * G]
    log_q = np.zeros(lay.K)
    log_q[~lay.lead] = theta[k + 2 * G:k + 2 * G + lay.n_quality]
    shared = float(np.exp(theta[-1])) if lay.fit_r_star else lay.r_star
    R = np.where(np.isnan(lay.r_fixed), shared, lay.r_fixed)  # per pool
    D = data["weights"] * data["tokens"][:, None]
    Dp = pool_effective_tokens(data["weights"], data["tokens"], _unique(data, lay), R)
    qu = np.exp(log_q) * Dp / lay.reference  # each column's quality-weighted effective tokens
    X = np.zeros((len(qu), G))
    np.add.at(X.T, lay.group, qu.T)  # each term's
    present = X > 0
    log_x = np.log(np.where(present, X, 1.0))
    T = np.where(present, np.exp(c + g * log_x), 0.0)
    tD = 0.0
    if gen is not None:
        log_sum = np.log((Dp / lay.reference).sum(axis=1))
        tD = np.exp(gen[0] - gen[1] * log_sum)
        out["log_sum"] = log_sum
    out |= {"T": T, "log_x": log_x, "X": X, "qu": qu, "q": np.exp(log_q), "g": g, "R": R, "D": D, "Dp": Dp,
            "tD": tD}
    out["L"] = out["E"] + tN + tD + 1.0 / T.sum(axis=1)
    return out


def _effective_jacobian(theta: np.ndarray, data: Data, lay: _EffectiveLayout) -> np.ndarray:
    """d log L / d theta. A term's derivative in its quality-weighted tokens X is gamma T / X, so
    d / d log q_k = dmix gamma qu_k / X and, through R*, the pools' effective tokens move:
    dD'_k/d log R* = R* U_k (1 - e^{-x/R*} - (x/R*) e^{-x/R*}) with x = w_k D / U_k - 1 (0 for a pool read at
    most once; only the pools that use the shared R*)."""
    t = _effective_terms(theta, data, lay)
    T, L = t["T"], t["L"]
    S = T.sum(axis=1)
    dmix = -T / S[:, None] ** 2  # (n, G)
    cols = [np.full_like(L, t["E"])]
    if lay.params:
        cols += [t["tN"], -t["tN"] * t["logN"]]
    if lay.generic:
        cols += [t["tD"], -t["tD"] * t["log_sum"]]
    cols += [dmix, dmix * t["log_x"]]
    X = np.where(t["X"] > 0, t["X"], 1.0)
    per_x = dmix * t["g"] / X  # dL / dX_g, (n, G)
    if lay.n_quality:
        cols.append((per_x[:, lay.group] * t["qu"])[:, ~lay.lead])
    if lay.fit_r_star:
        R, U = t["R"], _unique(data, lay)
        x = np.maximum(t["D"] / U - 1.0, 0.0)
        e = np.exp(-x / R)
        dDp = np.where(np.isnan(lay.r_fixed), R * U * (1.0 - e - (x / R) * e), 0.0)  # d D'_k / d log R*
        d = np.sum(per_x[:, lay.group] * t["q"] * dDp / lay.reference, axis=1)
        if lay.generic:
            beta = theta[1 + 2 * lay.params + 1]
            d = d - beta * t["tD"] * dDp.sum(axis=1) / t["Dp"].sum(axis=1)
        cols.append(d)
    return np.column_stack(cols) / L[:, None]


def mixture_effective_theta(names: Sequence[str], values: np.ndarray) -> np.ndarray:
    """The fit-space parameter vectors (rows) of :func:`mixture_effective_law` from its named values (as
    ``LawFit.params`` / ``LawFit.bootstrap`` hold them): E, A, B, C_i, q_k and R_star are fitted as logs."""
    values = np.array(values, dtype=float)
    logged = [n in ("E", "A", "B", "R_star") or n.startswith(("C_", "q_")) for n in names]
    values[..., logged] = np.log(values[..., logged])
    return values


def mixture_effective_law(pools: Sequence[str], unique_tokens: Sequence[float], *, params: bool = False,
                          generic: bool = False, r_star: float | None = None, reference: float = 1e9,
                          start: Mapping[str, float] | None = None, groups: Sequence[str] | None = None,
                          r_star_pools: Sequence[float | None] | None = None, per_run_unique: bool = False) -> Law:
    r"""A per-pool effective-data mixture law (mixplan's construction, after Sedova et al.'s
    repetition-aware mixture law, arXiv 2605.12715, whose exact form is not reproduced here):

    .. math::

        L(N, D, w) = E + \frac{A}{N^\alpha} + \frac{B}{(D'/D_0)^\beta}
                     + \Big(\sum_i C_i \big(D'_i / D_0\big)^{\gamma_i}\Big)^{-1}

    Each pool's term is a power law in its *own* effective tokens :math:`D'_i` (what the run read of
    it, repeated tokens discounted with Muennighoff's :math:`R^*`), so a pool whose term keeps falling
    with data gains weight as the budget grows and a small pool loses it once it repeats: the best
    mixture moves with the budget, which the additive law cannot express. At one budget the law is a
    mixture model (the :math:`w_i D` vary with :math:`w_i`), which is why runs at a single budget
    already pin down the :math:`C_i, \gamma_i`; the :math:`N` term (``params``) and the generic data
    term (``generic``, on the total effective tokens :math:`D'`) need runs at several sizes / budgets.

    ``unique_tokens``: each pool's :math:`U_i`. ``r_star``: fixed :math:`R^*`, or None to fit
    :math:`\log R^*` (identified only by runs that repeat a pool several times). ``reference``:
    :math:`D_0`, in the runs' token unit (the proxy budget is a good choice: the :math:`C_i` are then
    the pools' values there). The data are ``tokens``, ``weights`` and with ``params`` ``params``.

    ``groups`` (one name per pool, e.g. the pool each quality bucket was cut from): pools of one group
    share one term, a power law in their *quality-weighted* effective tokens,
    :math:`C_g \big(\sum_{k \in g} q_k D'_k / D_0\big)^{\gamma_g}` with :math:`q = 1` for the group's first
    pool (its best bucket) and the others' :math:`q_k` fitted (QQT's view of a bucket: its tokens are
    worth :math:`q_k` of the best bucket's). Buckets of one pool are then substitutes, not separate
    domains; read in proportion to their sizes with equal qualities they are exactly the whole pool.

    ``r_star_pools`` (one per pool, ``None`` where unknown): a pool's own fixed :math:`R^*` (e.g. from the
    manifest: a top-quality bucket whose repeats lose value sooner); the other pools share ``r_star`` (or
    the fitted one, which is then fitted on them alone; nothing is fitted when every pool has its own).

    ``per_run_unique``: the data also hold ``unique``, each run's unique tokens of each pool (n, K), for runs
    trained on subsamples of the pools (repetition-matched runs: the same epochs as a bigger run at a
    smaller budget); data without it (e.g. a prediction for the whole pools) use ``unique_tokens``.
    """
    pools = [str(p) for p in pools]
    if len(pools) < 2:
        raise ValidationError("a mixture law needs at least two pools")
    U = np.asarray(unique_tokens, dtype=float)
    if U.shape != (len(pools),) or not np.all(np.isfinite(U) & (U > 0)):
        raise ValidationError(f"the effective-data mixture law needs one positive unique-token count per pool "
                              f"({len(pools)}); got {np.asarray(unique_tokens).tolist()}")
    K = len(pools)
    labels = pools if groups is None else [str(g) for g in groups]
    if len(labels) != K:
        raise ValidationError(f"groups: one group name per pool ({K}), got {len(labels)}")
    terms = list(dict.fromkeys(labels))  # group names in order of first appearance
    group = np.array([terms.index(g) for g in labels])
    lead = np.array([labels.index(g) == k for k, g in enumerate(labels)])
    fixed = np.full(K, np.nan)
    if r_star_pools is not None:
        if len(r_star_pools) != K:
            raise ValidationError(f"r_star_pools: one R* (or None) per pool ({K}), got {len(r_star_pools)}")
        for k, v in enumerate(r_star_pools):
            if v is not None:
                if not (np.isfinite(float(v)) and float(v) > 0):
                    raise ValidationError(f"pool {pools[k]!r}: R* must be a positive number, got {v!r}")
                fixed[k] = float(v)
    fit_r_star = r_star is None and bool(np.isnan(fixed).any())
    lay = _EffectiveLayout(K=K, params=params, generic=generic, fit_r_star=fit_r_star,
                           r_star=float(DATABLATIONS["R_D_star"] if r_star is None else r_star), unique=U,
                           reference=float(reference), group=group, lead=lead, r_fixed=fixed)
    G, followers = len(terms), [p for p, first in zip(pools, lead) if not first]
    start = dict(start or {})
    names = (("e",) + (("a", "alpha") if params else ()) + (("b", "beta") if generic else ())
             + tuple(f"c_{p}" for p in terms) + tuple(f"gamma_{p}" for p in terms)
             + tuple(f"log_q_{p}" for p in followers) + (("log_r_star",) if lay.fit_r_star else ()))

    def named(theta: np.ndarray) -> dict[str, float]:
        t = [float(x) for x in theta]
        out = {"E": float(np.exp(t[0]))}
        k = 1
        if params:
            out |= {"A": float(np.exp(t[k])), "alpha": t[k + 1]}
            k += 2
        if generic:
            out |= {"B": float(np.exp(t[k])), "beta": t[k + 1]}
            k += 2
        out |= {f"C_{p}": float(np.exp(t[k + i])) for i, p in enumerate(terms)}
        out |= {f"gamma_{p}": t[k + G + i] for i, p in enumerate(terms)}
        out |= {f"q_{p}": float(np.exp(t[k + 2 * G + i])) for i, p in enumerate(followers)}
        if lay.fit_r_star:
            out["R_star"] = float(np.exp(t[-1]))
        return out

    grid: tuple[tuple[float, ...], ...] = ((-1.0, 0.0, 0.5),)
    bounds: tuple[tuple[float, float], ...] = ((-5.0, 3.0),)
    if params:
        grid += ((2.0, 5.0, 10.0), (0.2, 0.35, 0.5))
        bounds += ((-5.0, 40.0), (0.0, 3.0))
    if generic:
        grid += ((-3.0, -1.0), (0.2, 0.5))
        bounds += ((-20.0, 20.0), (0.0, 3.0))
    grid += tuple((float(np.log(start.get(f"C_{p}", 1.0))),) for p in terms)
    grid += tuple((float(start.get(f"gamma_{p}", 0.3)),) for p in terms)
    grid += tuple((float(np.log(start.get(f"q_{p}", 1.0))),) for p in followers)
    bounds += ((-20.0, 20.0),) * G + ((0.0, 3.0),) * G + ((-12.0, 5.0),) * len(followers)
    if lay.fit_r_star:
        grid += ((float(np.log(lay.r_star)),),)
        bounds += ((0.0, float(np.log(1e4))),)  # R* from 1 to 10,000 repetitions
    return Law(name="mixture-effective", theta_names=names,
               log_predict=lambda th, d: np.log(_effective_terms(th, d, lay)["L"]), named=named, bounds=bounds,
               grid=grid, columns=("tokens", "weights") + (("params",) if params else ())
               + (("unique",) if per_run_unique else ()), vectorized=False,
               jacobian=lambda th, d: _effective_jacobian(th, d, lay), weights="weights")
