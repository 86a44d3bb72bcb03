r"""Random feasible mixtures: Dirichlet draws centred on a tempered prior (as RegMix), drawn for the
*free* mass above the floors so floors never cause rejection (RegMix issue #10), then capped by
redistributing excess mass over the head-room of the other pools; and the structural points
(vertices and edge mid-points) that such draws never reach.
"""

from __future__ import annotations

import numpy as np

from .constraints import TOL, Constraints, cap_redistribute, project

__all__ = ["DEFAULT_STRENGTHS", "dirichlet", "sample_mixtures", "structural_points"]

#: RegMix's concentration grid: 15 values log-spaced from 0.1 (near one-hot) to 5 (near the prior).
DEFAULT_STRENGTHS = tuple(float(s) for s in np.geomspace(0.1, 5.0, 15))


def dirichlet(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rows ~ Dirichlet(alpha[row]) for a 2-D ``alpha``, robust to tiny concentrations.

    Uses :math:`G_a = G_{a+1} U^{1/a}` in log space, so that small ``alpha`` (near one-hot draws)
    never underflows to an all-zero row.
    """
    alpha = np.asarray(alpha, dtype=float)
    log_g = np.log(rng.standard_gamma(alpha + 1.0)) + np.log(rng.random(alpha.shape)) / alpha
    log_g -= log_g.max(axis=1, keepdims=True)
    g = np.exp(log_g)
    return g / g.sum(axis=1, keepdims=True)


def sample_mixtures(n: int, prior: np.ndarray, c: Constraints, rng: np.random.Generator,
                    temperature: float = 0.5, strengths: tuple[float, ...] = DEFAULT_STRENGTHS) -> np.ndarray:
    r"""``n`` feasible mixtures: floors + free mass :math:`\times` Dirichlet(:math:`s\,q`), then capped.

    :math:`q \propto \text{prior}^{\,t}` over the free pools (temperature :math:`t`, RegMix uses 0.5)
    and :math:`s` is drawn uniformly from ``strengths`` for each row.
    """
    if n <= 0:
        return np.empty((0, len(prior)))
    free = c.free
    W = np.tile(c.lower, (n, 1))
    mass = 1.0 - c.lower.sum()
    if free.any() and mass > TOL:
        q = np.power(np.maximum(prior[free], 1e-12), temperature)
        q /= q.sum()
        s = rng.choice(np.asarray(strengths, dtype=float), size=n)
        W[:, free] += mass * dirichlet(s[:, None] * q[None, :], rng)
    return cap_redistribute(W, c.lower, c.upper)


def structural_points(c: Constraints) -> np.ndarray:
    """Vertices and edge mid-points of the simplex, projected onto the feasible set.

    Dirichlet draws around a good point never reach one-hot or two-pool mixtures; these do.
    """
    idx = np.flatnonzero(c.free)
    P = len(c.names)
    pts = [np.eye(P)[i] for i in idx]
    pts += [0.5 * (np.eye(P)[i] + np.eye(P)[j]) for a, i in enumerate(idx) for j in idx[a + 1:]]
    if not pts:
        return project(c.lower[None, :], c.lower, c.upper)
    return project(np.array(pts), c.lower, c.upper)


