r"""The D-CPT law for continual pre-training (Que et al., "D-CPT Law", NeurIPS 2024, arXiv 2406.01375).

.. math::

    L(N, D, r) = E + \frac{A}{N^\alpha} + \frac{B\, r^\eta}{D^\beta} + \frac{C}{(r + \varepsilon)^\gamma}

fitted separately for the general validation loss :math:`L_g` with :math:`r = r_g` (the general
share of the continual-pre-training mixture) and for the domain loss :math:`L_d` with
:math:`r = r_d = 1 - r_g`. The form is taken from secondary summaries of the paper, not checked
against its text (no official code or data were found): it is treated here as a model to fit and
check, and every fit is checked against the design requirements the paper states, each in the loss's
*own* ratio, over the range of the data:

.. math::

    \partial L/\partial D = -\beta B r^\eta D^{-\beta-1} < 0, \qquad
    \partial L/\partial r = \eta B r^{\eta-1} D^{-\beta} - \gamma C (r+\varepsilon)^{-\gamma-1} < 0,

    \partial^2 L/\partial D\,\partial r = -\beta\eta B r^{\eta-1} D^{-\beta-1} < 0.

The first and third hold whenever :math:`B, \beta, \eta > 0` and :math:`r > 0`; the second is a
contest between the data term (which *grows* with :math:`r`) and the ratio term, and is what a fit
can get wrong. (At :math:`r = 0` the data term vanishes, :math:`0^\eta = 0`, so :math:`L` is flat in
:math:`D` by construction; the checks use the data's positive ratios.) In the domain-share
convention of a runs table, :math:`\partial L_g/\partial r_d = -\partial L_g/\partial r_g > 0`.

*Reduced form.* When every run has one model size :math:`N_0`, :math:`E + A/N_0^\alpha` is one
constant, :math:`E_N`: 7 parameters.

*Cross-domain term* (Que et al. 2024, from secondary summaries): :math:`+\,F/K^\mu` with the Domain-specific
Learnable Coefficient :math:`K = w_1/k_1 + w_2 k_2` (:math:`k_1` the base model's initial validation
loss on the domain, :math:`k_2` its early rate of decline). :math:`F` and :math:`(w_1, w_2)` share a
scale, :math:`F/K^\mu = F w_1^{-\mu} / (1/k_1 + (w_2/w_1) k_2)^\mu`, so the law fixes :math:`w_1 = 1`
and fits :math:`F, \mu` and :math:`\omega = w_2/w_1`.

Fit space (as :data:`mixplan.laws.CHINCHILLA`): :math:`\log\hat L = \mathrm{LSE}(a - \alpha\log N,\;
b + \eta\log r - \beta\log D,\; c - \gamma\log(r+\varepsilon),\; e\,[,\; f - \mu\log K])` with
:math:`A = e^a` etc. and :math:`\varepsilon = e^{\log\varepsilon}`; the Jacobian is analytic (the
soft-max weights of the terms). The fitter's columns must be positive, so the ratio is passed as
``ratio_plus_one`` :math:`= 1 + r`, which lets the paper's endpoints (0:10 and 10:0) in.

Initialisation: for fixed exponents :math:`(\alpha, \beta, \gamma, \eta, \varepsilon)` the law is
linear in :math:`(E, A, B, C)`, so :func:`dcpt_start` scans a grid of exponents, solves each for
non-negative coefficients (relative least squares, which approximates the log-loss fit), and the
law's initialisation grid is a small product grid around the best solution.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from ..exceptions import ValidationError
from .fitting import Law, LawFit, fit_law

__all__ = ["dcpt_loss", "dcpt_derivatives", "dcpt_law", "dcpt_start", "fit_dcpt", "design_violations",
           "cross_domains",
           "own_ratio", "validate_cpt_design", "DCPT_RATIOS", "LOSSES"]

#: The paper's 9 mixture ratios general:domain (Que et al. 2024, from secondary summaries), as domain shares r_d.
DCPT_RATIOS: tuple[float, ...] = (0.0, 0.1, 0.2, 1 / 3, 0.5, 2 / 3, 0.8, 0.9, 1.0)  # 10:0, 9:1, ... 3.3:6.7, ... 0:10

#: Which loss takes which ratio (Que et al. 2024): the general loss the general share, the domain loss the domain share.
LOSSES = ("general", "domain")


def own_ratio(domain_ratio: np.ndarray, loss: str) -> np.ndarray:
    """The ratio a loss's law takes: :math:`r_g = 1 - r_d` for ``"general"``, :math:`r_d` for ``"domain"``."""
    if loss not in LOSSES:
        raise ValidationError(f"loss must be 'general' or 'domain', got {loss!r}")
    r = np.asarray(domain_ratio, dtype=float)
    # 1 - r_d rounds 0.9 to 0.09999999999999998; snap to the grid the runs were written on.
    return np.round(1.0 - r, 12) if loss == "general" else r


def _pow0(r: np.ndarray, eta: float | np.ndarray) -> np.ndarray:
    """:math:`r^\\eta` with :math:`0^\\eta = 0` (the limit for :math:`\\eta > 0`; kept at :math:`\\eta = 0` too,
    where it makes the data term vanish at :math:`r = 0` only - no own data, no learning from it)."""
    r = np.asarray(r, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r > 0, np.power(np.where(r > 0, r, 1.0), eta), 0.0)


def dcpt_loss(D: np.ndarray, r: np.ndarray, params: Mapping[str, float], N: np.ndarray | float | None = None,
              k1: np.ndarray | float | None = None, k2: np.ndarray | float | None = None) -> np.ndarray:
    """:math:`L(N, D, r)` for parameters by name; ``r`` is the loss's own ratio (:func:`own_ratio`).

    The reduced form (``E_N`` in ``params``, no ``A``) ignores ``N``; the cross-domain term is added
    when ``params`` has ``F`` (then ``k1``, ``k2`` are needed)."""
    p = params
    D = np.asarray(D, dtype=float)
    r = np.asarray(r, dtype=float)
    base = p["E_N"] if "E_N" in p else p["E"] + p["A"] / np.power(np.asarray(N, dtype=float), p["alpha"])
    out = base + p["B"] * _pow0(r, p["eta"]) / np.power(D, p["beta"]) + p["C"] / np.power(r + p["epsilon"], p["gamma"])
    if "F" in p:
        K = 1.0 / np.asarray(k1, dtype=float) + p["omega"] * np.asarray(k2, dtype=float)
        out = out + p["F"] / np.power(K, p["mu"])
    return out


def dcpt_derivatives(D: np.ndarray, r: np.ndarray, params: Mapping[str, float],
                     N: np.ndarray | float | None = None) -> dict[str, np.ndarray]:
    """Analytic :math:`\\partial L/\\partial D`, :math:`\\partial L/\\partial r`,
    :math:`\\partial^2 L/\\partial D\\partial r` (and :math:`\\partial L/\\partial N` for the full form)
    in the loss's own ratio ``r > 0``."""
    p = params
    D = np.asarray(D, dtype=float)
    r = np.asarray(r, dtype=float)
    B, beta, eta = p["B"], p["beta"], p["eta"]
    out = {"dL_dD": -beta * B * _pow0(r, eta) * np.power(D, -beta - 1.0),
           "dL_dr": eta * B * _pow0(r, eta - 1.0) * np.power(D, -beta)
           - p["gamma"] * p["C"] * np.power(r + p["epsilon"], -p["gamma"] - 1.0),
           "d2L_dDdr": -beta * eta * B * _pow0(r, eta - 1.0) * np.power(D, -beta - 1.0)}
    if "A" in p and N is not None:
        out["dL_dN"] = -p["alpha"] * p["A"] * np.power(np.asarray(N, dtype=float), -p["alpha"] - 1.0) + 0.0 * D
    return out


# -- the law in the fitter's terms ---------------------------------------------------------------

_FULL = ("a", "b", "c", "e", "alpha", "beta", "gamma", "eta", "log_eps")
_REDUCED = ("b", "c", "e", "beta", "gamma", "eta", "log_eps")
_CROSS = ("f", "mu", "log_omega")
# a, b are centred (see dcpt_law): the size and data terms at N0, D0, so the same range as E and C.
_BOUNDS = {"a": (-15.0, 5.0), "b": (-15.0, 5.0), "c": (-15.0, 5.0), "e": (-5.0, 3.0), "alpha": (0.0, 3.0),
           "beta": (0.0, 3.0), "gamma": (0.0, 5.0), "eta": (0.0, 5.0), "log_eps": (np.log(1e-5), np.log(10.0)),
           "f": (-15.0, 10.0), "mu": (0.0, 5.0), "log_omega": (np.log(1e-4), np.log(1e4))}
_PUBLIC = {"a": "A", "b": "B", "c": "C", "e": "E", "log_eps": "epsilon", "f": "F", "log_omega": "omega"}
_LOGGED = {"a", "b", "c", "e", "log_eps", "f", "log_omega"}


def _names(reduced: bool, cross_domain: bool) -> tuple[str, ...]:
    return (_REDUCED if reduced else _FULL) + (_CROSS if cross_domain else ())


class _Evaluator:
    """Log-loss and its Jacobian in one pass, for one parameter vector or a (P, G) block.

    Within the bounds every term is below :math:`e^{70}`, so the sum is formed in linear space (no
    log-sum-exp needed) and the Jacobian is each term's share of the loss times the derivative of
    its log. L-BFGS-B asks for the value and then the Jacobian at the same point: the second call
    is served from the first (the cache holds the data arrays, so a new data set never matches)."""

    def __init__(self, names: tuple[str, ...], log_n0: float, log_d0: float):
        self.names, self.log_n0, self.log_d0 = names, log_n0, log_d0
        self._data: tuple = (None, None)  # (tokens array, derived columns)
        self._last: tuple = (None, None, None)  # (theta bytes, tokens array, (log L, J))

    def _columns(self, data: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._data[0] is not data["tokens"]:
            r = np.asarray(data["ratio_plus_one"], dtype=float) - 1.0
            pos = r > 0
            cols = {"r": r, "pos": pos, "logr": np.log(np.where(pos, r, 1.0)), "logD": np.log(data["tokens"]) - self.log_d0}
            if "params" in data:
                cols["logN"] = np.log(data["params"]) - self.log_n0
            if "k1" in data:
                cols |= {"inv_k1": 1.0 / np.asarray(data["k1"], dtype=float), "k2": np.asarray(data["k2"], dtype=float)}
            self._data = (data["tokens"], cols)
        return self._data[1]

    def __call__(self, theta: np.ndarray, data: Mapping[str, np.ndarray], jac: bool) -> tuple[np.ndarray, np.ndarray | None]:
        theta = np.asarray(theta, dtype=float)
        key = theta.tobytes() if theta.ndim == 1 else None
        if key is not None and self._last[0] == key and self._last[1] is data["tokens"]:
            return self._last[2]
        x = self._columns(data)
        t = dict(zip(self.names, theta))
        eps = np.exp(t["log_eps"])
        re = x["r"] + eps
        log_re = np.log(re)
        vB = np.where(x["pos"], np.exp(t["b"] + t["eta"] * x["logr"] - t["beta"] * x["logD"]), 0.0)
        vC = np.exp(t["c"] - t["gamma"] * log_re)
        vE = np.exp(t["e"]) + 0.0 * vC
        total = vB + vC + vE
        if "a" in t:
            vA = np.exp(t["a"] - t["alpha"] * x["logN"])
            total = total + vA
        if "f" in t:
            omega = np.exp(t["log_omega"])
            K = x["inv_k1"] + omega * x["k2"]
            logK = np.log(K)
            vF = np.exp(t["f"] - t["mu"] * logK)
            total = total + vF
        out = np.log(total)
        J = None
        if jac and theta.ndim == 1:
            pB, pC = vB / total, vC / total
            cols = {"b": pB, "eta": pB * x["logr"], "beta": -pB * x["logD"], "c": pC, "gamma": -pC * log_re,
                    "log_eps": -pC * t["gamma"] * eps / re, "e": vE / total}
            if "a" in t:
                pA = vA / total
                cols |= {"a": pA, "alpha": -pA * x["logN"]}
            if "f" in t:
                pF = vF / total
                cols |= {"f": pF, "mu": -pF * logK, "log_omega": -pF * t["mu"] * omega * x["k2"] / K}
            J = np.column_stack([cols[nm] for nm in self.names])
            self._last = (key, data["tokens"], (out, J))
        return out, J


def dcpt_law(reduced: bool = False, cross_domain: bool = False, start: Mapping[str, float] | None = None,
             loss: str = "loss", centre: tuple[float, float] = (1e9, 1e10)) -> Law:
    """The D-CPT law for :func:`mixplan.laws.fit_law`.

    Columns: ``tokens``, ``ratio_plus_one`` (1 + the loss's own ratio), ``params`` (full form),
    ``k1`` and ``k2`` (cross-domain). The coefficients are fitted centred, :math:`a = \\log A - \\alpha
    \\log N_0` and :math:`b = \\log B - \\beta \\log D_0` with ``centre`` :math:`= (N_0, D_0)` inside the
    data (the geometric means): uncentred, :math:`\\log A` and :math:`\\alpha` are almost collinear and
    L-BFGS-B crawls along the valley. ``start`` (public names, e.g. from :func:`dcpt_start`) centres
    the initialisation grid: 3 values of each exponent (x0.75, x1, x1.3) and of epsilon (/3, x1, x3)
    with the coefficients at the start (243 points; 3 x 3 x 3 for the cross-domain F, mu, omega)."""
    names = _names(reduced, cross_domain)
    start = dict(_DEFAULT_START) | dict(start or {})
    log_n0, log_d0 = np.log(centre[0]), np.log(centre[1])
    evaluate = _Evaluator(names, log_n0, log_d0)

    def log_predict(theta: np.ndarray, data: Mapping[str, np.ndarray]) -> np.ndarray:
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return evaluate(theta, data, jac=True)[0]

    def jacobian(theta: np.ndarray, data: Mapping[str, np.ndarray]) -> np.ndarray:
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return evaluate(theta, data, jac=True)[1]

    def public(nm: str) -> str:
        key = _PUBLIC.get(nm, nm)
        return "E_N" if reduced and key == "E" else key

    def named(theta: np.ndarray) -> dict[str, float]:
        t = dict(zip(names, theta))
        # Undo the centring: A = e^a N0^alpha, B = e^b D0^beta.
        shift = {"a": t.get("alpha", 0.0) * log_n0, "b": t["beta"] * log_d0}
        return {public(nm): float(np.exp(v + shift.get(nm, 0.0))) if nm in _LOGGED else float(v)
                for nm, v in t.items()}

    def around(nm: str) -> tuple[float, ...]:
        v = float(start[public(nm)])
        if nm in ("a", "b"):  # centred coefficients: A / N0^alpha, B / D0^beta
            expo = start["alpha"] if nm == "a" else start["beta"]
            return (float(np.log(max(v, 1e-12)) - expo * (log_n0 if nm == "a" else log_d0)),)
        if nm == "log_eps":
            return tuple(np.log(v) + d for d in (-np.log(3.0), 0.0, np.log(3.0)))
        if nm in ("f", "log_omega"):
            return tuple(np.log(v) + d for d in (-2.0, 0.0, 2.0))
        if nm in _LOGGED:
            return (float(np.log(max(v, 1e-12))),)
        return tuple(max(v, 0.05) * f for f in (0.75, 1.0, 1.3))

    kind = ("reduced " if reduced else "") + ("cross-domain " if cross_domain else "")
    columns = ("tokens", "ratio_plus_one") + (() if reduced else ("params",)) + (("k1", "k2") if cross_domain else ())
    return Law(name=f"D-CPT ({kind}{loss} loss)", theta_names=names, log_predict=log_predict, named=named,
               bounds=tuple(_BOUNDS[nm] for nm in names), grid=tuple(around(nm) for nm in names),
               columns=columns, jacobian=jacobian)


_DEFAULT_START = {"A": 100.0, "alpha": 0.3, "B": 100.0, "beta": 0.3, "C": 0.1, "gamma": 0.5, "eta": 0.3,
                  "epsilon": 0.05, "E": 1.5, "E_N": 2.0, "F": 0.1, "mu": 1.0, "omega": 1.0}

# Exponent grid of the variable-projection start: 5 x 5 x 5 x 4 x 4 = 2,000 small NNLS solves.
_VP_GRID = {"alpha": (0.1, 0.2, 0.3, 0.45, 0.7), "beta": (0.1, 0.2, 0.3, 0.45, 0.7),
            "gamma": (0.1, 0.3, 0.6, 1.0, 1.6), "eta": (0.05, 0.2, 0.5, 1.0), "epsilon": (0.003, 0.02, 0.1, 0.5)}


def dcpt_start(data: Mapping[str, np.ndarray], loss: np.ndarray, reduced: bool = False) -> dict[str, float]:
    """A starting point by variable projection: for each exponent tuple on a grid, non-negative
    least squares of :math:`L/L_i` on the terms (relative error, close to the log-loss fit), and the
    best tuple with its coefficients. Cross-domain parameters are not scanned (default start)."""
    from scipy.optimize import nnls  # ~0.3 s to import: not for every command that reads a manifest

    loss = np.asarray(loss, dtype=float)
    D = np.asarray(data["tokens"], dtype=float)
    r = np.asarray(data["ratio_plus_one"], dtype=float) - 1.0
    w = 1.0 / loss
    best, best_sse = None, np.inf
    alphas = (None,) if reduced else _VP_GRID["alpha"]
    for alpha in alphas:
        colN = None if reduced else np.power(np.asarray(data["params"], dtype=float), -alpha)
        for beta in _VP_GRID["beta"]:
            Dm = np.power(D, -beta)
            for eta in _VP_GRID["eta"]:
                colB = _pow0(r, eta) * Dm
                for gamma in _VP_GRID["gamma"]:
                    for eps in _VP_GRID["epsilon"]:
                        cols = [np.ones_like(D), colB, np.power(r + eps, -gamma)] + ([] if reduced else [colN])
                        X = np.column_stack(cols) * w[:, None]
                        coef, res = nnls(X, np.ones_like(D))
                        if res < best_sse:
                            best_sse, best = res, (alpha, beta, eta, gamma, eps, coef)
    alpha, beta, eta, gamma, eps, coef = best
    floor = 1e-4 * float(np.mean(loss))  # a zero coefficient has no log; start it small instead
    coef = np.maximum(coef, floor)
    out = {"E_N" if reduced else "E": coef[0], "B": coef[1], "C": coef[2], "beta": beta, "eta": eta,
           "gamma": gamma, "epsilon": eps}
    if not reduced:
        out |= {"A": coef[3], "alpha": alpha}
    return {k: float(v) for k, v in out.items()}


# -- validation, fitting, checks -------------------------------------------------------------------

def validate_cpt_design(tokens: np.ndarray, domain_ratio: np.ndarray, params: np.ndarray | None = None,
                        where: str = "runs", rows: list[int] | None = None) -> None:
    """Refuse data the law cannot be fitted to: ratios outside [0, 1] or non-finite, a single ratio,
    a single budget, non-positive tokens or sizes, two model sizes (three are needed for E, A, α)."""
    row = (lambda i: rows[i]) if rows is not None else (lambda i: i + 1)
    ratio = np.asarray(domain_ratio, dtype=float)
    bad = np.flatnonzero(~np.isfinite(ratio) | (ratio < 0) | (ratio > 1))
    if len(bad):
        raise ValidationError(f"{where}: column 'ratio', row {row(bad[0])}: {float(ratio[bad[0]])!r} is not a "
                              "domain share in [0, 1] (write general:domain 8:2 as ratio 0.2)")
    for col, v in (("tokens", tokens), ("params", params)):
        if v is None:
            continue
        v = np.asarray(v, dtype=float)
        bad = np.flatnonzero(~np.isfinite(v) | (v <= 0))
        if len(bad):
            raise ValidationError(f"{where}: column {col!r}, row {row(bad[0])}: {float(v[bad[0]])!r} is not a positive "
                                  "finite number")
    if len(np.unique(ratio)) < 2:
        raise ValidationError(f"{where}: every run has the same ratio ({float(ratio[0]):g}); the D-CPT law needs "
                              "runs at several ratios (the paper uses 9, from 0 to 1)")
    if len(np.unique(np.asarray(tokens, dtype=float))) < 2:
        raise ValidationError(f"{where}: every run has the same token budget ({float(np.asarray(tokens)[0]):g}); the "
                              "D-CPT law needs several budgets per ratio (e.g. intermediate checkpoints)")
    if params is not None and len(np.unique(np.asarray(params, dtype=float))) == 2:
        raise ValidationError(f"{where}: the runs have 2 model sizes; E, A and alpha need at least 3 (or fit one size "
                              "at a time: the reduced law)")


def cross_domains(k1: np.ndarray | None, k2: np.ndarray | None, where: str = "runs") -> tuple[tuple[float, float], ...]:
    """The distinct (k1, k2) pairs of the runs (empty without the cross-domain term); refuses one
    without the other and fewer than 3 domains (F, mu and omega cannot be told apart with fewer).
    The values themselves are checked by the fitter (positive, finite; file, column and row)."""
    if k1 is None and k2 is None:
        return ()
    if k1 is None or k2 is None:
        raise ValidationError("the cross-domain term needs both k1 (the base model's initial domain loss) and k2 "
                              "(its early decline), one value per run")
    domains = tuple(sorted({(float(a), float(b)) for a, b in zip(np.ravel(k1), np.ravel(k2))}))
    if len(domains) < 3:
        raise ValidationError(f"{where}: the runs have {len(domains)} distinct (k1, k2); the cross-domain term's F, mu "
                              "and omega need runs from at least 3 domains (or drop k1/k2: one domain's law)")
    return domains


def design_violations(params: Mapping[str, float], tokens: np.ndarray, ratio: np.ndarray,
                      sizes: np.ndarray | None = None, loss: str = "loss") -> list[str]:
    """Where, over the data's range, the fitted law breaks the design requirements.

    ``ratio`` is the loss's own ratio; the range is a 41 x 25 grid (r from the smallest positive
    ratio to the largest, log D from the smallest budget to the largest), at each model size."""
    r_pos = np.asarray(ratio, dtype=float)
    r_pos = r_pos[r_pos > 0]
    if len(r_pos) == 0:
        return []
    r = np.linspace(r_pos.min(), r_pos.max(), 41)
    tokens = np.asarray(tokens, dtype=float)
    D = np.geomspace(tokens.min(), tokens.max(), 25)
    R, DD = np.meshgrid(r, D, indexing="ij")
    Ns = [None] if sizes is None else list(np.unique(sizes))
    out = []
    labels = {"dL_dD": "dL/dD < 0", "dL_dr": "dL/dr < 0", "d2L_dDdr": "d2L/dDdr < 0"}
    own = "r_g (general share)" if loss == "general" else "r_d (domain share)" if loss == "domain" else "r"
    for key, label in labels.items():
        fail = np.zeros_like(R, dtype=bool)
        for N in Ns:
            fail |= ~(dcpt_derivatives(DD, R, params, N)[key] < 0)
        if fail.any():
            rr, dd = R[fail], DD[fail]
            worst = max(float(np.max(dcpt_derivatives(DD, R, params, N)[key][fail])) for N in Ns)
            if key == "dL_dr":
                knob = ("the ratio term is too weak against the data term there (more of this loss's own data raises "
                        "it): add runs at those ratios, or drop them from the runs")
            elif key == "d2L_dDdr" and params["eta"] <= 1e-9 and params["B"] > 0 and params["beta"] > 0:
                knob = ("eta = 0: the data term B/D^beta does not grow with the ratio, so more of this loss's own "
                        "data does not speed learning; the runs may want learning to follow r*D (eta < 0), which "
                        "the law's eta >= 0 rules out - compare with a per-ratio fit before trusting the ratio")
            else:
                knob = ("a data exponent or coefficient (B, beta, eta) is at zero: the runs do not show learning "
                        "with D; add budgets over a wider range")
            out.append(f"{loss} loss: design requirement {label} fails at {int(fail.sum())} of {fail.size} points "
                       f"of the data's range (in {own} {rr.min():.3g}..{rr.max():.3g}, D {dd.min():.3g}.."
                       f"{dd.max():.3g}; largest value {worst + 0.0:.3g}); {knob}")
    if "A" in params and sizes is not None and not (params["alpha"] > 0 and params["A"] > 0):
        out.append(f"{loss} loss: design requirement dL/dN < 0 fails (alpha = {params['alpha']:.3g}); the runs' "
                   "sizes do not show a size effect: add sizes or fit one size (reduced law)")
    return out


def fit_dcpt(tokens: np.ndarray, domain_ratio: np.ndarray, loss: np.ndarray, which: str,
             params: np.ndarray | None = None, *, k1: np.ndarray | None = None, k2: np.ndarray | None = None,
             n_bootstrap: int = 200, level: float = 0.95, seed: int = 0, n_starts: int = 8, delta: float | str = "auto",
             where: str = "runs", rows: list[int] | None = None) -> LawFit:
    """Fit the D-CPT law to one loss (``which``: ``"general"`` or ``"domain"``) of runs at
    ``tokens`` with domain share ``domain_ratio`` (the general loss is fitted in ``1 - ratio``).

    ``params`` None, or one model size throughout, fits the reduced form (``E_N``); ``k1``, ``k2``
    add the cross-domain term. Same fitter as every law (:func:`mixplan.laws.fit_law`); the
    report's warnings add the design-requirement checks of :func:`design_violations`.

    ``delta`` defaults to ``"auto"`` (Huber's threshold at 1.345 x the residuals' robust scale),
    not the Chinchilla recipe's 1e-3: runs of a continual pre-training grid are typically noisier
    than 0.1%, where 1e-3 makes the fit a median fit. Measured on the law-sampled recovery design
    (1% noise, 50 trials, tests/benchmarks/dcpt_recovery.py): the Usage-1 ratio's RMS error 0.0207
    at 1e-3, 0.0171 auto (least squares 0.0167), close to the sqrt(pi/2) the theory gives."""
    validate_cpt_design(tokens, domain_ratio, params, where, rows)
    r = own_ratio(domain_ratio, which)
    reduced = params is None or len(np.unique(np.asarray(params, dtype=float))) == 1
    data = {"tokens": np.asarray(tokens, dtype=float), "ratio_plus_one": 1.0 + r}
    if not reduced:
        data["params"] = np.asarray(params, dtype=float)
    cross = bool(cross_domains(k1, k2, where))
    if cross:
        data |= {"k1": np.asarray(k1, dtype=float), "k2": np.asarray(k2, dtype=float)}
    loss = np.asarray(loss, dtype=float)
    ok = np.isfinite(loss) & (loss > 0)
    start = dcpt_start(data, np.where(ok, loss, 1.0), reduced) if ok.all() else None  # fit_law names the bad row
    centre = (float(np.exp(np.mean(np.log(data["params"])))) if not reduced else 1e9,
              float(np.exp(np.mean(np.log(data["tokens"])))))
    law = dcpt_law(reduced, cross, start, which, centre)
    fit = fit_law(law, data, loss, delta=delta, n_starts=n_starts, n_bootstrap=n_bootstrap, level=level, seed=seed,
                  where=where, rows=rows)
    checks = design_violations(fit.params, data["tokens"], r, None if reduced else data["params"], which)
    if len(np.unique(r)) < 4:
        checks.append(f"{which} loss: only {len(np.unique(r))} distinct ratios for the ratio shape's 4 parameters "
                      "(B's eta, C, gamma, epsilon); add ratios")
    return replace(fit, warnings=fit.warnings + checks)
