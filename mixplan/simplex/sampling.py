r"""Random feasible mixtures: Dirichlet draws centred on a tempered prior (as RegMix), drawn for the
*free* mass above the floors so floors never cause rejection (RegMix issue #10), then capped by
redistributing excess mass over the head-room of the other pools; and the structural points
(vertices and edge mid-points) that such draws never reach.
"""

from __future__ import annotations

import numpy as np

from .constraints import TOL, Constraints, group_depth, leaf_group, cap_redistribute

__all__ = ["DEFAULT_STRENGTHS", "MAX_EDGES", "dirichlet", "sample_mixtures", "sample_hierarchical", "structural_points"]

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
                    temperature: float = 0.5, strengths: tuple[float, ...] = DEFAULT_STRENGTHS,
                    group_strengths: tuple[float, ...] | None = None) -> np.ndarray:
    r"""``n`` feasible mixtures: floors + free mass :math:`\times` Dirichlet(:math:`s\,q`), then capped.

    :math:`q \propto \text{prior}^{\,t}` over the free pools (temperature :math:`t`, RegMix uses 0.5)
    and :math:`s` is drawn uniformly from ``strengths`` for each row. With groups (``c.group_names``) the draw
    is hierarchical instead (:func:`sample_hierarchical`; ``group_strengths`` for the levels above the leaves).
    """
    if n <= 0:
        return np.empty((0, len(prior)))
    if c.group_names:
        return sample_hierarchical(n, prior, c, rng, temperature, strengths, group_strengths or strengths)
    free = c.free
    W = np.tile(c.lower, (n, 1))
    mass = 1.0 - c.lower.sum()
    if free.any() and mass > TOL:
        q = np.power(np.maximum(prior[free], 1e-12), temperature)
        q /= q.sum()
        s = rng.choice(np.asarray(strengths, dtype=float), size=n)
        W[:, free] += mass * dirichlet(s[:, None] * q[None, :], rng)
    return cap_redistribute(W, c.lower, c.upper)


#: The most edge mid-points :func:`structural_points` makes: all of them up to 64 free pools (2,016);
#: beyond, a seeded random choice of this many pairs (400 pools have 79,800 pairs, four times the
#: search's Dirichlet draws).
MAX_EDGES = 2_016


def structural_points(c: Constraints, max_edges: int = MAX_EDGES,
                      rng: np.random.Generator | None = None) -> np.ndarray:
    """Vertices and edge mid-points of the simplex, projected onto the feasible set.

    Dirichlet draws around a good point never reach one-hot or two-pool mixtures; these do. With more
    than ``max_edges`` pairs of free pools, ``max_edges`` of them drawn with ``rng`` (the search's; default
    seed 0).
    """
    idx = np.flatnonzero(c.free)
    P = len(c.names)
    if not len(idx):
        return c.project(c.lower[None, :])
    a, b = np.triu_indices(len(idx), k=1)
    if len(a) > max_edges:
        pick = np.sort((rng or np.random.default_rng(0)).choice(len(a), max_edges, replace=False))
        a, b = a[pick], b[pick]
    pts = np.zeros((len(idx) + len(a), P))
    pts[np.arange(len(idx)), idx] = 1.0
    rows = len(idx) + np.arange(len(a))
    pts[rows, idx[a]] = 0.5
    pts[rows, idx[b]] = 0.5
    return c.project(pts)




def sample_hierarchical(n: int, prior: np.ndarray, c: Constraints, rng: np.random.Generator,
                        temperature: float = 0.5, strengths: tuple[float, ...] = DEFAULT_STRENGTHS,
                        group_strengths: tuple[float, ...] = DEFAULT_STRENGTHS) -> np.ndarray:
    r"""``n`` mixtures drawn level by level, then made feasible (:meth:`Constraints.project`).

    At each node (the top, then every group) the children's shares of the node's total are
    :math:`\mathrm{Dirichlet}(s_d\, q)`, :math:`q \propto` (the children's prior mass)\ :math:`^{t}`; a child's
    prior mass is the sum of its leaves' ``prior``. One strength :math:`s_d` per row and depth :math:`d`, from
    ``strengths`` where the children are all leaves, else from ``group_strengths``: a weak strength at the top
    gives runs dominated by one source, a weak one inside gives runs that read few topics of each, independently
    (a flat Dirichlet ties the two).
    """
    P = len(prior)
    parent_of, depth = leaf_group(c), group_depth(c)
    mass = c.group_members @ np.asarray(prior, dtype=float)
    W = np.zeros((n, P))
    n_depth = int(depth.max()) + 2 if len(depth) else 1
    s_group = rng.choice(np.asarray(group_strengths, dtype=float), size=(n, n_depth))
    s_leaf = rng.choice(np.asarray(strengths, dtype=float), size=(n, n_depth))

    def level(g: int, total: np.ndarray, d: int) -> None:
        leaves = np.flatnonzero(parent_of == g)
        subs = c.subgroups(g)
        q = np.concatenate([prior[leaves], mass[subs]])
        q = np.power(np.maximum(q / max(q.sum(), 1e-300), 1e-12), temperature)
        q /= q.sum()
        s = (s_leaf if not subs else s_group)[:, d]
        share = dirichlet(s[:, None] * q[None, :], rng) if len(q) > 1 else np.ones((n, 1))
        W[:, leaves] = total[:, None] * share[:, :len(leaves)]
        for k, h in enumerate(subs):
            level(h, total * share[:, len(leaves) + k], d + 1)

    level(-1, np.ones(n), 0)
    return c.project(W)
