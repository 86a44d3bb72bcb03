"""mixplan validate: check a proxy-run table (and its pool manifest)."""

from __future__ import annotations

import argparse
from typing import Any


from .common import add_runs_options, emit, load_pools, load_runs

HELP = "check a proxy-run table (and its pool manifest)"
SEEDED = False  # nothing random: no --seed


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_runs_options(p)
    p.add_argument("--target", metavar="SPEC", help="also check that this objective can be computed")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    pools = load_pools(args.pools)
    runs = load_runs(args, pools)
    from ..data.runs import coverage_table, pool_coverage

    W = runs.weights
    doc: dict[str, Any] = {
        "source": runs.source, "runs": len(runs), "pools": runs.pools, "metrics": runs.metric_columns,
        "has_params": "params" in runs.frame, "has_tokens": "tokens" in runs.frame,
        "coverage": pool_coverage(W, runs.pools),
        "nonzero_pools_per_run": {"min": int((W > 0).sum(1).min()), "mean": float((W > 0).sum(1).mean()),
                                  "max": int((W > 0).sum(1).max())},
    }
    notes: list[str] = []
    if args.target:
        import warnings

        from ..data.objective import parse_objective
        from ..exceptions import MixplanWarning

        with warnings.catch_warnings(record=True) as caught:  # shown with the result (text and JSON) instead
            warnings.simplefilter("always", MixplanWarning)
            obj = parse_objective(args.target, runs)
        notes = [str(w.message) for w in caught if issubclass(w.category, MixplanWarning)]
        for w in caught:
            if not issubclass(w.category, MixplanWarning):  # not ours to hold back
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        y = obj.values(runs)
        doc["target"] = obj.to_dict() | {"min": float(np.min(y)), "max": float(np.max(y)), "mean": float(np.mean(y))}
    doc["warnings"] = notes
    lines = [f"{runs.source}: OK - {len(runs)} runs over {len(runs.pools)} pools, "
             f"{len(runs.metric_columns)} metric columns", "", *coverage_table(doc["coverage"])]
    if "target" in doc:
        t = doc["target"]
        lines += ["", f"target {t['spec']}: min {t['min']:.6g}, mean {t['mean']:.6g}, max {t['max']:.6g}",
                  *obj.matched_lines()]
    lines += [f"warning: {n}" for n in notes]
    emit(args, doc, "\n".join(lines))
    return 0
