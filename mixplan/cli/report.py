"""mixplan report: an offline HTML report of a result folder (a plan, a model, a filter plan, a design)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..exceptions import ValidationError
from .common import emit

HELP = ("write an offline HTML report (figures, their data as CSV) of a result folder: a plan's, a fitted "
        "model's, a filter plan's or a design's --out folder")
SEEDED = False  # nothing random: no --seed


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("result", metavar="RESULT_DIR",
                   help="a --out folder of plan (plan.json), fit (meta.json), filter (filter.json) or design "
                        "(mixtures.csv)")
    p.add_argument("--out", metavar="FILE", help="the report to write (default RESULT_DIR/report.html)")
    p.add_argument("--force", action="store_true", help="replace an existing report")


def run(args: argparse.Namespace) -> int:
    from .._io import read_json, read_table, saved_artefact
    from ..report import results
    from .export import read_plan_json

    folder = Path(args.result)
    out = Path(args.out) if args.out else folder / "report.html"
    note = ""
    if (folder / "plan.json").is_file():
        plan = read_plan_json(folder / "plan.json")
        model = None
        if (folder / "model" / "meta.json").is_file():
            from ..models.mixture_model import load_model

            model = load_model(folder / "model")
        else:
            note = " (no model/ in the folder: without the held-out runs and response figures)"
        sweep = read_table(folder / "budget_sweep.csv") if (folder / "budget_sweep.csv").is_file() else None
        ot = None
        if plan.get("ot_study") and (folder / plan["ot_study"]).is_dir():
            from ..transport.study import load_ot_study

            ot = load_ot_study(folder / plan["ot_study"])
        from ..report.plan import plan_report

        # what the report trips over in plan.json is damage to it
        with saved_artefact(folder / "plan.json", "plan", "write it again with 'mixplan plan --out'"):
            files = plan_report(out, plan, model, sweep, ot=ot, force=args.force)
    elif (folder / "meta.json").is_file():
        from ..models.mixture_model import load_model

        files = results.fit_report(out, load_model(folder), force=args.force)
    elif (folder / "ot_model.json").is_file():
        from ..transport.study import load_ot_study

        files = results.ot_fit_report(out, load_ot_study(folder), force=args.force)
    elif (folder / "filter.json").is_file() and (folder / "curve.csv").is_file():
        plan = read_json(folder / "filter.json", "a filter.json from mixplan filter --out", "not a filter plan")
        curve = read_table(folder / "curve.csv")
        with saved_artefact(folder / "filter.json", "filter plan", "write it again with 'mixplan filter --out'"):
            files = results.filter_report(out, plan, curve, force=args.force)
    elif (folder / "mixtures.csv").is_file():
        frame = read_table(folder / "mixtures.csv")
        files = results.design_report(out, frame, [str(c)[2:] for c in frame.columns if str(c).startswith("w_")],
                                      force=args.force)
        note = " (without the caps: design --report knows the manifest)"
    else:
        raise ValidationError(f"{folder}: no result to report (plan.json, meta.json, ot_model.json, filter.json + "
                              "curve.csv, or mixtures.csv); give a --out folder of plan, fit, ot fit, filter or design")
    emit(args, {"report": str(out), "files": [str(f) for f in files]}, f"written: {out}{note}")
    return 0
