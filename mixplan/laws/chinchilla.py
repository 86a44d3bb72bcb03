r"""Chinchilla-style loss law and compute-optimal allocation (Hoffmann et al. 2022; Epoch AI 2024).

.. math::

    L(N, D) = E + \frac{A}{N^\alpha} + \frac{B}{D^\beta}, \qquad C = k N D \ (k = 6)

    N_{opt}(C) = G \left(\frac{C}{k}\right)^{\beta/(\alpha+\beta)}, \quad
    D_{opt}(C) = G^{-1} \left(\frac{C}{k}\right)^{\alpha/(\alpha+\beta)}, \quad
    G = \left(\frac{\alpha A}{\beta B}\right)^{1/(\alpha+\beta)}

Fitted in log space, :math:`\log \hat L = \mathrm{LSE}(a - \alpha\log N,\ b - \beta\log D,\ e)` with
:math:`A = e^a, B = e^b, E = e^e`, from the initialisation grid of Hoffmann et al. (2022, arXiv
2203.15556) as Epoch AI replicated it (Besiroglu et al. 2024, arXiv 2404.10102; 4,500 starting points).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .fitting import Law

__all__ = ["chinchilla_loss", "compute_optimal", "CHINCHILLA", "PUBLISHED"]

#: Published constants by name: Hoffmann et al. 2022 (arXiv 2203.15556); Epoch AI's replication
#: (Besiroglu et al. 2024, arXiv 2404.10102; ``epoch-research/analyzing-chinchilla``); Muennighoff et al.
#: 2023 (arXiv 2305.16264; ``huggingface/datablations``).
PUBLISHED: dict[str, dict[str, float]] = {
    # Hoffmann et al. 2022, Eq. 10 (rounded as published)
    "hoffmann": {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28},
    # Epoch AI (Besiroglu et al. 2024), Huber-likelihood MLE on 240 points
    "epoch": {"A": 482.00572, "B": 2085.4342, "E": 1.81686, "alpha": 0.34781, "beta": 0.36585},
    # Epoch AI, "replicate exactly" (Hoffmann's procedure done right)
    "epoch-replicate": {"A": 477.84171252965143, "B": 2143.8637880335505, "E": 1.817235504463726,
                        "alpha": 0.34731265761033453, "beta": 0.3671826173946711},
    # Muennighoff et al. 2023, C4 refit with alpha = beta (base of the data-constrained law)
    "datablations": {"A": 520.8249516599187, "B": 1487.716093782861, "E": 1.8691436784054858,
                     "alpha": 0.3526596, "beta": 0.3526596},
}


def chinchilla_loss(N: np.ndarray, D: np.ndarray, A: float, B: float, E: float, alpha: float,
                    beta: float) -> np.ndarray:
    """:math:`E + A/N^\\alpha + B/D^\\beta`."""
    return E + A / np.power(N, alpha) + B / np.power(D, beta)


def compute_optimal(C: float | np.ndarray, params: Mapping[str, float],
                    flops_per_token_param: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """Loss-minimising parameters and tokens for compute ``C = k N D`` (``k`` FLOPs per parameter
    per token; 6 for a dense transformer's forward + backward pass)."""
    A, B, alpha, beta = params["A"], params["B"], params["alpha"], params["beta"]
    G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    x = np.asarray(C, dtype=float) / flops_per_token_param
    return G * x ** (beta / (alpha + beta)), x ** (alpha / (alpha + beta)) / G


def _log_predict(theta: np.ndarray, data: Mapping[str, np.ndarray]) -> np.ndarray:
    a, b, e, alpha, beta = theta
    logN, logD = np.log(data["params"]), np.log(data["tokens"])
    return np.logaddexp(np.logaddexp(a - alpha * logN, b - beta * logD), e)


def _jacobian(theta: np.ndarray, data: Mapping[str, np.ndarray]) -> np.ndarray:
    """d log L / d (a, b, e, alpha, beta): the soft-max weights of the three LSE terms."""
    a, b, e, alpha, beta = theta
    logN, logD = np.log(data["params"]), np.log(data["tokens"])
    T = np.stack([a - alpha * logN, b - beta * logD, np.full_like(logN, e)], axis=1)
    P = np.exp(T - T.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    return np.column_stack([P[:, 0], P[:, 1], P[:, 2], -P[:, 0] * logN, -P[:, 1] * logD])


def _named(theta: np.ndarray) -> dict[str, float]:
    a, b, e, alpha, beta = (float(t) for t in theta)
    return {"A": float(np.exp(a)), "B": float(np.exp(b)), "E": float(np.exp(e)), "alpha": alpha, "beta": beta}


CHINCHILLA = Law(
    name="chinchilla", theta_names=("a", "b", "e", "alpha", "beta"), log_predict=_log_predict, named=_named,
    bounds=((-5.0, 40.0), (-5.0, 40.0), (-5.0, 3.0), (0.0, 3.0), (0.0, 3.0)),
    # Start grid of Hoffmann et al. as Epoch AI replicated it (arXiv 2404.10102):
    # a, b in {0, 5, ..., 25}, e in {-1, -0.5, ..., 1}, alpha, beta in {0, 0.5, ..., 2}
    grid=(tuple(np.arange(0, 26, 5.0)), tuple(np.arange(0, 26, 5.0)), tuple(np.arange(-1, 1.01, 0.5)),
          tuple(np.arange(0, 2.01, 0.5)), tuple(np.arange(0, 2.01, 0.5))),
    columns=("params", "tokens"), jacobian=_jacobian)
