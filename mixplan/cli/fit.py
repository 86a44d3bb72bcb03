"""mixplan fit: fit a regressor to proxy runs and report cross-validation."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


from .._io import check_writable
from .common import add_fit_options, add_runs_options, emit, fit_from_args, load_pools, load_runs

HELP = "fit a regressor to proxy runs and report cross-validation"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_runs_options(p)
    add_fit_options(p)
    p.add_argument("--out", required=True, metavar="MODEL_DIR", help="directory to write the model into")
    p.add_argument("--force", action="store_true", help="overwrite existing model files")


def model_report(model: Any) -> list[str]:
    """Lines describing a fitted model: per column, the chosen components and every candidate's CV."""
    from ..models.mixture_model import cv_summary

    lines = []
    for t in model.targets:
        comps = " + ".join(f"{w:.2f} {m}" for m, w in t.regressor.components.items())
        lines.append(f"{t.column}: {t.regressor.model} -> {comps}; {cv_summary(t.cv.to_dict())}")
        for row in getattr(t.regressor, "selection_", []):
            if row["status"] == "skipped":
                lines.append(f"    {row['model']:<30} skipped: {row['reason']}")
            else:
                lines.append(f"    {row['model']:<30} {row['status']:<9} Spearman {_num(row['spearman'])}  "
                             f"RMSE {row['rmse']:.4g}  MAE {row['mae']:.4g}")
    if len(model.targets) > 1:
        lines.append(f"objective {model.objective.spec}: {cv_summary(model.cv)}")
    return lines


def _num(v: float | None) -> str:
    return "  n/a " if v is None else f"{v:.4f}"


def run(args: argparse.Namespace) -> int:
    pools = load_pools(args.pools)
    runs = load_runs(args, pools)
    from ..models.mixture_model import MixtureModel

    # Refuse before the (possibly long) fit if the outputs exist.
    out = Path(args.out)
    existing = [out / "meta.json", out / "train_runs.csv"] + (sorted(out.glob("target*")) if out.is_dir() else [])
    check_writable(existing, args.force)
    model: MixtureModel = fit_from_args(args, runs)
    model.save(args.out, force=args.force)
    cv = {k: v for k, v in model.cv.items() if k not in ("residuals", "scores")}
    doc = {"model_dir": str(args.out), "model": args.model, "objective": model.objective.to_dict(), "cv": cv,
           "targets": model.target_summaries()}
    q = model.interval_scale(0.9)
    how = (f"90% intervals: prediction +- {q:.3g} x GP predictive sd" if model.adaptive
           else f"90% intervals: prediction +- {q:.4g}")
    emit(args, doc, "\n".join(model_report(model) + [f"{how}; model written to {args.out}"]))
    return 0
