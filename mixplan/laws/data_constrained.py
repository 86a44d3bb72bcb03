r"""Data-constrained scaling (Muennighoff et al., NeurIPS 2023, arXiv 2305.16264,
``huggingface/datablations``).

.. math::

    L(N, D, U_D) = E + \frac{A}{N'^\alpha} + \frac{B}{D'^\beta}

    R_D = \max(D/U_D - 1, 0), \qquad D' = U_D + U_D R_D^* \left(1 - e^{-R_D / R_D^*}\right)

    N_{opt}(U_D) = G (G U_D)^{\beta/\alpha}, \quad U_N = \min(N, N_{opt}(U_D)), \quad
    R_N = \max(N/U_N - 1, 0), \quad N' = U_N + U_N R_N^* \left(1 - e^{-R_N / R_N^*}\right)

with :math:`G = (\alpha A / (\beta B))^{1/(\alpha+\beta)}`. Repeated tokens decay in value with
"half-life" :math:`R_D^* \ln 2` repetitions; :math:`D'` is capped at :math:`U_D (1 + R_D^*)`.
Excess parameters (beyond what is Chinchilla-optimal for the unique data) decay likewise with
:math:`R_N^*`.

Fitting follows the authors (notebook cells 6 and 28): the base constants ``A, B, E, alpha, beta``
are fixed (by default the C4 refit) and :math:`R_D^*, R_N^*` are fitted by Huber(1e-3) on log-loss
from the grid :math:`(R_D^*, R_N^*) \in \mathrm{linspace}(0, 20, 4)^2` (the authors' zero is moved to
a small positive value: the law divides by it).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .chinchilla import PUBLISHED, compute_optimal
from .fitting import Law

__all__ = ["effective_data", "effective_params", "data_constrained_loss", "optimal_allocation",
           "data_constrained_law", "DATABLATIONS"]

#: Final constants of the paper (README "Parametric Fit"; notebook cell 29).
DATABLATIONS: dict[str, float] = PUBLISHED["datablations"] | {"R_D_star": 15.387756, "R_N_star": 5.309743}


def effective_data(D: np.ndarray, U: np.ndarray, R_D_star: float) -> np.ndarray:
    """:math:`D' = U + U R^*_D (1 - e^{-R_D/R^*_D})`, :math:`R_D = \\max(D/U - 1, 0)`; a pool with no
    unique tokens (``U = 0``, e.g. one a mixture leaves out) is worth 0."""
    D, U = np.asarray(D, dtype=float), np.asarray(U, dtype=float)
    D, U = np.broadcast_arrays(D, U)
    R = np.maximum(np.divide(D, U, out=np.ones_like(D), where=U > 0) - 1.0, 0.0)
    # R* (1 - e^{-R/R*}) grouped so that a huge R* (no decay: the term tends to R) neither overflows nor
    # turns into inf * 0 = nan; expm1 keeps its digits when R/R* is small.
    return U + U * (R_D_star * -np.expm1(-R / R_D_star))


def effective_params(N: np.ndarray, U: np.ndarray, p: Mapping[str, float]) -> np.ndarray:
    """:math:`N'`: parameters beyond the Chinchilla-optimal count for ``U`` unique tokens decay."""
    A, B, alpha, beta = p["A"], p["B"], p["alpha"], p["beta"]
    G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    n_opt = G * (G * np.asarray(U, dtype=float)) ** (beta / alpha)
    UN = np.minimum(np.asarray(N, dtype=float), n_opt)
    R = np.maximum(np.asarray(N, dtype=float) / UN - 1.0, 0.0)
    return UN + UN * (p["R_N_star"] * -np.expm1(-R / p["R_N_star"]))  # grouped as in effective_data


def data_constrained_loss(N: np.ndarray, D: np.ndarray, U: np.ndarray, params: Mapping[str, float]) -> np.ndarray:
    """:math:`L(N, D, U_D)` with :math:`U_D \\le D` unique tokens."""
    U = np.minimum(np.asarray(U, dtype=float), np.asarray(D, dtype=float))
    Np = effective_params(N, U, params)
    Dp = effective_data(D, U, params["R_D_star"])
    return params["E"] + params["A"] / Np ** params["alpha"] + params["B"] / Dp ** params["beta"]


def optimal_allocation(C: float, U: float, params: Mapping[str, float] = DATABLATIONS,
                       flops_per_token_param: float = 6.0) -> tuple[float, float, float]:
    """(N, D, loss) minimising the loss at compute ``C`` with ``U`` unique tokens, by the authors'
    grid search: scale the Chinchilla-optimal point by ``i`` and ``1/i`` for ``i`` in
    ``linspace(1.0001, 3, 500)`` (the unscaled point itself is not a candidate, as in the README)."""
    n0, d0 = compute_optimal(C, params, flops_per_token_param)
    i = np.linspace(1.0001, 3.0, 500)
    N = np.concatenate([n0 / i, n0 * i])
    D = np.concatenate([d0 * i, d0 / i])
    loss = data_constrained_loss(N, D, np.minimum(U, D), params)
    k = int(np.argmin(loss))
    return float(N[k]), float(D[k]), float(loss[k])


def data_constrained_law(base: Mapping[str, float] | None = DATABLATIONS,
                         start: Mapping[str, float] = DATABLATIONS) -> Law:
    """The law in the fitter's terms: ``R_D*`` and ``R_N*`` fitted with ``base``'s A, B, E, alpha,
    beta fixed (the authors' procedure), or, with ``base=None``, all seven parameters fitted (A, B, E
    in log space as in :data:`mixplan.laws.CHINCHILLA`), started around ``start``'s constants."""
    if base is None:
        return _free_law(start)
    fixed = {k: float(base[k]) for k in ("A", "B", "E", "alpha", "beta")}

    def log_predict(theta: np.ndarray, data: Mapping[str, np.ndarray]) -> np.ndarray:
        p = fixed | {"R_D_star": theta[0], "R_N_star": theta[1]}
        return np.log(data_constrained_loss(data["params"], data["tokens"], data["unique_tokens"], p))

    return Law(name="data-constrained", theta_names=("R_D_star", "R_N_star"), log_predict=log_predict,
               named=lambda t: fixed | {"R_D_star": float(t[0]), "R_N_star": float(t[1])},
               bounds=((1e-3, 1e3), (1e-3, 1e3)),
               grid=(tuple(np.linspace(0, 20, 4)), tuple(np.linspace(0, 20, 4))),
               columns=("params", "tokens", "unique_tokens"), fixed=tuple(fixed))


def _free_law(start: Mapping[str, float]) -> Law:
    def params(theta: np.ndarray) -> dict[str, float | np.ndarray]:
        a, b, e, alpha, beta, rd, rn = theta
        return {"A": np.exp(a), "B": np.exp(b), "E": np.exp(e), "alpha": alpha, "beta": beta,
                "R_D_star": rd, "R_N_star": rn}

    def log_predict(theta: np.ndarray, data: Mapping[str, np.ndarray]) -> np.ndarray:
        with np.errstate(all="ignore"):  # grid points far from the data may overflow; they are discarded
            return np.log(data_constrained_loss(data["params"], data["tokens"], data["unique_tokens"],
                                                params(theta)))

    a, b, e = (float(np.log(start[k])) for k in ("A", "B", "E"))
    # Around the starting constants (a, b one unit either side, exponents +-0.05), times the authors'
    # R* grid: 3 x 3 x 1 x 3 x 3 x 16 = 1,296 starting points, L-BFGS-B from the best.
    return Law(name="data-constrained (all parameters)",
               theta_names=("a", "b", "e", "alpha", "beta", "R_D_star", "R_N_star"), log_predict=log_predict,
               named=lambda t: {k: float(v) for k, v in params(t).items()},
               bounds=((-5.0, 40.0), (-5.0, 40.0), (-5.0, 3.0), (0.01, 3.0), (0.01, 3.0), (1e-3, 1e3), (1e-3, 1e3)),
               grid=((a - 1, a, a + 1), (b - 1, b, b + 1), (e,),
                     tuple(start["alpha"] + d for d in (-0.05, 0.0, 0.05)),
                     tuple(start["beta"] + d for d in (-0.05, 0.0, 0.05)),
                     tuple(np.linspace(0, 20, 4)), tuple(np.linspace(0, 20, 4))),
               columns=("params", "tokens", "unique_tokens"))
