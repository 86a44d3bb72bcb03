"""mixplan report: an offline HTML report of a result folder (a plan's --out folder today)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..exceptions import ValidationError
from .common import emit

HELP = "write an offline HTML report (figures, their data as CSV) of a result folder: a plan's --out folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("result", metavar="RESULT_DIR", help="a plan's --out folder (plan.json, model/, budget_sweep.csv)")
    p.add_argument("--out", metavar="FILE", help="the report to write (default RESULT_DIR/report.html)")
    p.add_argument("--force", action="store_true", help="replace an existing report")


def run(args: argparse.Namespace) -> int:
    from .._io import read_json, read_table

    folder = Path(args.result)
    if not (folder / "plan.json").is_file():
        raise ValidationError(f"{folder}: no plan.json; give a folder written by 'mixplan plan --out' (reports of "
                              "other results come with their commands' --report)")
    plan = read_json(folder / "plan.json", "a plan.json from mixplan plan --out", "not a plan")
    model = None
    if (folder / "model" / "meta.json").is_file():
        from ..models.mixture_model import load_model

        model = load_model(folder / "model")
    sweep = read_table(folder / "budget_sweep.csv") if (folder / "budget_sweep.csv").is_file() else None
    out = Path(args.out) if args.out else folder / "report.html"
    from ..report.plan import plan_report

    files = plan_report(out, plan, model, sweep, force=args.force)
    note = "" if model is not None else " (no model/ in the folder: without the held-out runs and response figures)"
    emit(args, {"report": str(out), "files": [str(f) for f in files]}, f"written: {out}{note}")
    return 0
