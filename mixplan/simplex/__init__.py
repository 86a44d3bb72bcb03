"""The space of mixtures: the constrained simplex, random feasible mixtures, and the search over it.

:mod:`~mixplan.simplex.constraints` (bounds from pools, floors, caps, availability at the target
budget; the projection), :mod:`~mixplan.simplex.sampling` (Dirichlet draws, structural points),
:mod:`~mixplan.simplex.optimizer` (the search for the best mixture under a score),
:mod:`~mixplan.simplex.convex` (the exact optimum of a convex log-linear score, certified).
"""

from .constraints import (TOL, Constraints, active_constraints, active_group_constraints, build_constraints,
                          cap_redistribute, project)
from .optimizer import Score, SearchResult, best_distinct, search
from .sampling import DEFAULT_STRENGTHS, dirichlet, sample_hierarchical, sample_mixtures, structural_points

__all__ = ["Constraints", "build_constraints", "active_constraints", "active_group_constraints", "project",
           "cap_redistribute", "TOL",
           "DEFAULT_STRENGTHS", "dirichlet", "sample_mixtures", "sample_hierarchical", "structural_points",
           "Score", "SearchResult", "search", "best_distinct"]
