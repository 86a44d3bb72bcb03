"""Choosing mixtures: the plan at the target budget, a first swarm of proxy runs, the next runs, and
the price of repetition at the big run's budget.

Public names are imported on first use."""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "Plan": ".plan", "make_plan": ".plan", "Design": ".design", "design_swarm": ".design",
    "NextRuns": ".sequential", "propose_next": ".sequential", "expected_improvement": ".sequential",
    "next_run_ids": ".sequential", "RepetitionModel": ".repetition", "effective_mixture": ".repetition",
    "fit_repetition": ".repetition",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
