"""mixplan fit: fit a regressor to proxy runs and report cross-validation."""

from __future__ import annotations

import argparse
from pathlib import Path


from .._io import check_writable
from .common import (add_fit_options, add_report_option, add_runs_options, emit, fit_from_args, load_pools, load_runs,
                     report_path)

HELP = "fit a regressor to proxy runs and report cross-validation"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_runs_options(p)
    add_fit_options(p)
    p.add_argument("--out", required=True, metavar="MODEL_DIR", help="directory to write the model into")
    add_report_option(p)
    p.add_argument("--force", action="store_true", help="overwrite existing model files")


def run(args: argparse.Namespace) -> int:
    pools = load_pools(args.pools)
    runs = load_runs(args, pools)
    from ..models.mixture_model import MixtureModel

    # Refuse before the (possibly long) fit if the outputs exist.
    out = Path(args.out)
    existing = [out / "meta.json", out / "train_runs.csv"] + (sorted(out.glob("target*")) if out.is_dir() else [])
    report = report_path(args, args.out)
    check_writable(existing + ([report] if report else []), args.force)
    model: MixtureModel = fit_from_args(args, runs)
    model.save(args.out, force=args.force)
    doc = {"model_dir": str(args.out), "model": args.model} | model.to_dict()
    text = model.report() + f"; model written to {args.out}"
    if report:
        from ..report.results import fit_report

        fit_report(report, model, force=args.force)
        doc["report"], text = str(report), text + f"\nwritten: {report}"
    emit(args, doc, text)
    return 0
