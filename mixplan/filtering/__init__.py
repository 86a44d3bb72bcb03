"""Quality filtering: the best keep-fraction per compute budget (the planner, QQT laws per bucket),
the cut of real scores into buckets, and which rating (score or composite) to filter by.

Public names are imported on first use."""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "BucketFit": ".planner", "FilterFit": ".planner", "FilterPlan": ".planner", "fit_buckets": ".planner",
    "load_fit": ".planner", "plan_filter": ".planner", "union_errors": ".planner", "FIT_KIND": ".planner",
    "A_GRID": ".planner", "D_GRID": ".planner", "bucket_scores": ".scores", "manifest_snippet": ".scores",
    "read_scores": ".scores", "read_documents": ".scores", "count_tokens": ".scores", "Composite": ".ratings",
    "RatingCandidate": ".ratings", "RatingsFit": ".ratings", "RATINGS_KIND": ".ratings",
    "composite_scores": ".ratings", "fit_ratings": ".ratings", "normal_scores": ".ratings",
    "parse_composite": ".ratings",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
