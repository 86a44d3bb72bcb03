"""mixplan compare: which of two or more datasets (recipes) is better at a target scale, from a scaling law
fitted to each one's runs across scales (mixplan.laws.compare)."""

from __future__ import annotations

import argparse

from .._io import check_writable, write_json_atomic
from ..exceptions import ValidationError
from .common import BOOTSTRAP, LEVEL, POSITIVE, Number, emit, read_table_where

HELP = "compare datasets or recipes across scale: a law per group, P(better) at a target, crossings"


def _ratio(text: str) -> float | str:
    """--tokens-per-param: a positive number, or 'runs' (the runs' own geometric-mean ratio)."""
    if text.strip().lower() == "runs":
        return "runs"
    return POSITIVE(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..laws.compare import COMPARE_LAWS

    p.add_argument("runs", metavar="RUNS", help="table of runs: a column naming each run's dataset (--by), params, "
                   "tokens and the loss (--target)")
    p.add_argument("--by", required=True, metavar="COL", help="the column naming each run's dataset or recipe")
    p.add_argument("--target", default="loss", metavar="SPEC",
                   help="the loss: a column, or a weighted sum such as 'mean(*_loss)' (default: loss)")
    p.add_argument("--params", type=POSITIVE, metavar="N", help="target model size (parameters)")
    p.add_argument("--tokens", type=POSITIVE, metavar="D",
                   help="target tokens (default: --tokens-per-param x --params)")
    p.add_argument("--flops", type=POSITIVE, metavar="C",
                   help="target compute instead: each group at its own compute-optimal split of C = 6 N D")
    p.add_argument("--unique-tokens", type=POSITIVE, metavar="U", help="data-constrained law: unique tokens at "
                   "the target (and along the crossing path)")
    p.add_argument("--law", default="chinchilla", choices=list(COMPARE_LAWS), metavar="LAW",
                   help=f"the law fitted to each group: {', '.join(COMPARE_LAWS)} (default chinchilla: "
                        "E + A/N^alpha + B/D^beta on params, tokens; data-constrained also reads unique_tokens)")
    p.add_argument("--tokens-per-param", type=_ratio, default=20.0, metavar="R|runs",
                   help="the path searched for crossings, D = R N (default 20; 'runs': the runs' own ratio)")
    p.add_argument("--where", action="append", default=[], metavar="COL=VALUE", help="keep rows with COL == VALUE")
    p.add_argument("--huber-delta", default="1e-3", metavar="DELTA|auto",
                   help="Huber threshold on log-loss (1e-3); 'auto': 1.345 x the residuals' robust scale")
    p.add_argument("--bootstrap", type=BOOTSTRAP, default=200, help="bootstrap refits per group (200)")
    p.add_argument("--level", type=LEVEL, default=0.95, help="interval level (0.95)")
    p.add_argument("--run-column", metavar="COL", help="the column naming each row's training run (rows of one run "
                   "share its noise: checkpoints); default: a group's rows of one size are one run")
    p.add_argument("--run-noise", type=Number(float, 0), metavar="SD", help="one run's noise, sd of log-loss (from "
                   "seed replicates); default: measured one size out (each law refitted below its largest size)")
    p.add_argument("--out", metavar="FILE.json", help="also write the comparison as JSON here")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")


def run(args: argparse.Namespace) -> int:
    from ..data.objective import with_objective_column
    from ..laws import parse_delta
    from ..laws.compare import COMPARE_LAWS, compare_groups

    frame = read_table_where(args.runs, args.where)
    if args.by not in frame.columns:
        raise ValidationError(f"{args.runs}: no column {args.by!r} to group the runs by (--by); the columns are "
                              f"{', '.join(map(str, frame.columns))}")
    empty = frame[args.by].isna().to_numpy()
    if empty.any():
        raise ValidationError(f"{args.runs}: row {int(frame.index[empty.argmax()]) + 1} has no {args.by!r} value; name "
                              "its dataset or leave the row out")
    if args.run_column is not None and args.run_column not in frame.columns:
        raise ValidationError(f"{args.runs}: no column {args.run_column!r} naming the runs (--run-column); the columns "
                              f"are {', '.join(map(str, frame.columns))}")
    frame = with_objective_column(frame, args.target, str(args.runs))
    check_writable([args.out] if args.out else [], args.force)
    columns = COMPARE_LAWS[args.law].law().columns
    result = compare_groups({c: frame[c].to_numpy() for c in columns if c in frame.columns},
                            frame[args.target].to_numpy(), frame[args.by].to_numpy(), law=args.law,
                            params=args.params, tokens=args.tokens, flops=args.flops,
                            unique_tokens=args.unique_tokens, tokens_per_param=args.tokens_per_param,
                            n_bootstrap=args.bootstrap, level=args.level, seed=args.seed,
                            delta=parse_delta(args.huber_delta, "--huber-delta"), where=str(args.runs), by=args.by,
                            target=args.target, rows=(frame.index + 1).tolist(),
                            runs=None if args.run_column is None else frame[args.run_column].astype(str).to_numpy(),
                            run_sd=args.run_noise)
    doc = result.to_dict() | {"source": str(args.runs), "out": args.out}
    if args.out:
        write_json_atomic(args.out, doc, force=args.force)
    emit(args, doc, result.report() + (f"\nwritten: {args.out}" if args.out else ""))
    return 0
