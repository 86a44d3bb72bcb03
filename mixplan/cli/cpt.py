"""``mixplan cpt``: fit the D-CPT law to continual pre-training runs and choose the domain ratio.

::

    # RUNS: params (optional: one size or none -> the reduced law), tokens, ratio (domain share) + two losses
    mixplan cpt fit RUNS --general COL --domain COL [--target-params N] [--huber-delta auto] --out FIT.json
    # several domains: + the cross-domain term F/K^mu, K = 1/k1 + omega k2 (then 'plan' needs --k1 V --k2 V)
    mixplan cpt fit RUNS --general COL --domain COL --k1 COL --k2 COL --out FIT.json

    # Usage 1: the largest domain share whose general-loss rise stays within T (absolute, or --relative)
    mixplan cpt plan FIT.json --tokens D [--params N] --max-general-rise T [--relative] [--base-general-loss L]
    # Usage 2: limited domain data D_d; total tokens D_d / r (optionally capped by --tokens)
    mixplan cpt plan FIT.json --domain-tokens D_d [--tokens D] [--params N] [--out PLAN.json|PLAN.csv]

``add_arguments`` declares the subcommands; each subcommand parser gets ``--json``, ``--seed`` and
``--debug`` from :func:`mixplan.cli.common.add_common` (as ``laws`` and ``ot`` do; ``COMMON_OPTIONS =
False`` tells :func:`mixplan.cli.main.build_parser` not to add them to the command itself).
``run`` runs it and returns 0; errors are :class:`mixplan.MixplanError` (one line on stderr,
exit 2, via ``mixplan.cli.main``). Thin layer over :mod:`mixplan.cpt`.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import show_cell
from .._io import check_writable, table_format_out, write_json_atomic, write_table_atomic
from ..exceptions import ValidationError
from .common import Parser, add_common, emit, read_table_where
from .common import BOOTSTRAP, FINITE, LEVEL, Number, POSITIVE

__all__ = ["HELP", "add_arguments", "run"]

#: Its options live on its subcommands.
COMMON_OPTIONS = False

HELP = "continual pretraining: fit the D-CPT law (cpt fit) and choose the domain:general ratio (cpt plan)"


def add_arguments(p: argparse.ArgumentParser) -> None:

    sub = p.add_subparsers(dest="cpt_command", metavar="fit|plan", parser_class=Parser)
    f = sub.add_parser("fit", help="fit the D-CPT law to both losses (Huber on log-loss, L-BFGS-B, bootstrap)",
                       description="Fit the D-CPT law to the general and the domain loss of continual pre-training "
                                   "runs (Huber on log-loss, L-BFGS-B, bootstrap intervals); the fit (--out FIT.json) "
                                   "is what 'mixplan cpt plan' reads.")
    f.add_argument("runs", metavar="RUNS", help="runs table: tokens, the ratio column (domain share in [0, 1]), "
                   "the two loss columns, and params (model size; optional when every run has one size)")
    f.add_argument("--general", required=True, metavar="COL", help="the general validation loss column")
    f.add_argument("--domain", required=True, metavar="COL", help="the domain validation loss column")
    f.add_argument("--ratio-column", default="ratio", metavar="COL",
                   help="the domain share column (default 'ratio'; general:domain 8:2 is 0.2)")
    f.add_argument("--k1", metavar="COL", help="cross-domain term: column of each run's domain's base-model initial "
                   "domain loss (with --k2; runs from 3 or more domains)")
    f.add_argument("--k2", metavar="COL", help="cross-domain term: column of each run's domain's early loss decline")
    f.add_argument("--target-params", type=POSITIVE, metavar="N",
                   help="the model size to plan for (stored as the default of 'cpt plan --params')")
    f.add_argument("--where", action="append", default=[], metavar="COL=VALUE", help="keep rows with COL == VALUE")
    f.add_argument("--bootstrap", type=BOOTSTRAP, default=200, help="bootstrap refits per loss for the intervals (200)")
    f.add_argument("--huber-delta", default="auto", metavar="DELTA|auto",
                   help="Huber threshold on log-loss (default auto: 1.345 x the residuals' robust scale; 1e-3 is "
                        "the Chinchilla recipe, a median fit when runs are noisier than ~0.1%%)")
    f.add_argument("--level", type=LEVEL, default=0.95, help="interval level (0.95)")
    f.add_argument("--out", metavar="FIT.json", help="write the fit here")
    f.add_argument("--force", action="store_true", help="overwrite an existing output")
    add_common(f)
    q = sub.add_parser("plan", help="choose the domain share: Usage 1 (--max-general-rise) or 2 (--domain-tokens)",
                       description="Choose the domain share of continual pre-training from a D-CPT fit: Usage 1, the "
                                   "largest share whose general-loss rise stays within --max-general-rise; Usage 2, "
                                   "the share that minimises the domain loss with --domain-tokens of domain data.")
    q.add_argument("fit", metavar="FIT.json", help="a fit from 'mixplan cpt fit'")
    q.add_argument("--tokens", type=POSITIVE, metavar="D", help="continual pre-training tokens (Usage 1: required; "
                   "Usage 2: a cap on the total D_d / r)")
    q.add_argument("--params", type=POSITIVE, metavar="N", help="model size (default: the fit's --target-params, or its "
                   "one size)")
    q.add_argument("--max-general-rise", type=Number(float, 0), metavar="T",
                   help="Usage 1: largest domain share with L_g - L_g0 <= T (with --relative: <= T * L_g0)")
    q.add_argument("--relative", action="store_true", help="T is a fraction of the base general loss (0.03 = 3%%)")
    q.add_argument("--base-general-loss", type=POSITIVE, metavar="L_g0",
                   help="the base model's general loss before continual pre-training (default: the law's "
                        "prediction at general share 1, i.e. continuing on general data only)")
    q.add_argument("--domain-tokens", type=POSITIVE, metavar="D_d",
                   help="Usage 2: domain tokens available; minimises the domain loss at total tokens D_d / r")
    q.add_argument("--k1", type=FINITE, metavar="K1", help="cross-domain fit: the target domain's base-model initial "
                   "loss")
    q.add_argument("--k2", type=FINITE, metavar="K2", help="cross-domain fit: the target domain's early loss decline "
                   "(measured on about 1%% of a run)")
    q.add_argument("--ratios", metavar="R1,R2,...", help="domain shares of the table (default: the paper's 9 and "
                   "every 0.05)")
    q.add_argument("--out", metavar="PLAN.json|PLAN.csv",
                   help="write the plan (.json) or its table (.csv, .tsv, .parquet or .jsonl)")
    q.add_argument("--report", metavar="FILE", help="also write an offline HTML report: both losses against the "
                   "domain share, the limit, the chosen share and its interval, the nearest run")
    q.add_argument("--force", action="store_true", help="overwrite an existing output")
    add_common(q, seeded=False)  # the plan evaluates a saved fit: nothing random


def run(args: argparse.Namespace) -> int:
    command = getattr(args, "cpt_command", None)
    if command not in ("fit", "plan"):
        raise ValidationError("mixplan cpt: choose a subcommand: fit or plan")
    return _fit(args) if command == "fit" else _plan(args)


def _column(frame: Any, col: str, source: str) -> np.ndarray:
    import pandas as pd

    if col not in frame.columns:
        raise ValidationError(f"{source}: no column {col!r} (columns: {', '.join(map(str, frame.columns))})")
    values = pd.to_numeric(frame[col], errors="coerce")
    bad = np.flatnonzero(values.isna().to_numpy() & frame[col].notna().to_numpy())
    if len(bad):
        raise ValidationError(f"{source}: column {col!r}, row {int(frame.index[bad[0]]) + 1}: "
                              f"{show_cell(frame[col].iloc[bad[0]])} is not a number")
    return values.to_numpy(dtype=float)


def _fit(args: argparse.Namespace) -> int:
    from ..cpt.planner import fit_cpt

    from ..laws import parse_delta

    delta = parse_delta(args.huber_delta, "--huber-delta")
    source = str(args.runs)

    frame = read_table_where(args.runs, args.where)
    if len(frame) == 0:  # an empty --where selection is refused by read_table_where
        raise ValidationError(f"{source}: no rows")
    cols = {k: _column(frame, c, source) for k, c in (("tokens", "tokens"), ("ratio", args.ratio_column),
                                                         ("general", args.general), ("domain", args.domain))}
    params = _column(frame, "params", source) if "params" in frame.columns else None
    k = {name: _column(frame, col, source) for name, col in (("k1", args.k1), ("k2", args.k2)) if col is not None}
    if args.out:
        check_writable([args.out], args.force)
    fit = fit_cpt(cols["tokens"], cols["ratio"], cols["general"], cols["domain"], params,
                  general_column=args.general, domain_column=args.domain, target_params=args.target_params,
                  n_bootstrap=args.bootstrap, level=args.level, seed=args.seed, delta=delta, **k, where=source,
                  rows=(frame.index + 1).tolist())
    doc = fit.to_dict() | {"source": source, "seed": args.seed}
    if args.out:
        fit.save(args.out, force=args.force, source=source, seed=args.seed)
    short = {k: v for k, v in doc.items() if k not in ("general", "domain", "runs")}  # the runs are in FIT.json
    for loss in ("general", "domain"):
        short[loss] = {k: v for k, v in doc[loss].items() if k not in ("bootstrap", "report")}

    emit(args, short | {"out": args.out}, fit.report() + (f"\nwritten: {args.out}" if args.out else ""))
    return 0


def _plan(args: argparse.Namespace) -> int:
    from ..cpt.planner import CPTFit, plan_cpt

    ratios = None
    if args.ratios:
        try:
            ratios = [float(v) for v in args.ratios.split(",")]
        except ValueError:
            raise ValidationError(f"--ratios {args.ratios!r}: write domain shares separated by commas, e.g. "
                                  "0,0.1,0.5") from None
        if any(not 0 <= r <= 1 for r in ratios):
            raise ValidationError(f"--ratios {args.ratios!r}: every domain share must be in [0, 1]")
    # --out PLAN.json is the whole plan; any other name is its table, in the format its suffix names.
    as_table = bool(args.out) and Path(args.out).suffix.lower() != ".json"
    if as_table:
        table_format_out(args.out)
    check_writable([p for p in (args.out, args.report) if p], args.force)
    fit = CPTFit.load(args.fit)
    plan = plan_cpt(fit, tokens=args.tokens, params=args.params, max_general_rise=args.max_general_rise,
                    relative=args.relative, base_general_loss=args.base_general_loss,
                    domain_tokens=args.domain_tokens, ratios=ratios, k1=args.k1, k2=args.k2)
    # The fit's warnings are the general law's then the domain law's: a bound both laws hit (e.g. "parameter
    # e = -5 is at its lower bound") reads the same twice. Each distinct warning once, in order.
    plan = replace(plan, warnings=list(dict.fromkeys(plan.warnings)))
    doc = plan.to_dict() | {"fit": str(args.fit)}
    if args.out:
        if as_table:
            import pandas as pd

            write_table_atomic(args.out, pd.DataFrame(plan.table), force=args.force)
        else:
            write_json_atomic(args.out, doc, force=args.force)
    if args.report:
        from ..report.results import cpt_report

        cpt_report(args.report, doc, force=args.force)
    written = [p for p in (args.out, args.report) if p]
    emit(args, doc | {"out": args.out, "report": args.report},
         plan.report() + (f"\nwritten: {', '.join(written)}" if written else ""))
    return 0
