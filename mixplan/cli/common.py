"""What every command shares: the one-line-error parser, option groups, loading runs and pools, output."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._io import dumps_json
from ..exceptions import ValidationError

__all__ = ["COUNT", "EXIT_ERROR", "FINITE", "LEVEL", "NONNEGATIVE_COUNT", "Number", "POSITIVE", "Parser", "SEED",
           "UsageError", "state_ranges", "add_common", "add_fit_options", "add_rounding_options",
           "add_report_option", "add_runs_options", "emit", "report_path",
           "fit_from_args", "load_pools", "load_runs", "parse_budget_range", "parse_named_numbers",
           "jobs_of", "parse_where", "progress", "read_table_where"]

EXIT_ERROR = 2


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (like every other error) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        # A subcommand names itself; the top-level parser's name is already the message's prefix.
        where = f"{self.prog}: " if " " in self.prog else ""
        raise UsageError(f"{where}{message} (see '{self.prog} --help')")


class UsageError(Exception):
    pass


class Number:
    """An option's or config key's number: finite, of ``kind`` (int or float), within a range that
    ``--help`` states (:func:`state_ranges`). As an argparse ``type`` a bad value is a one-line usage
    error; :meth:`check` validates a value read from a config file."""

    def __init__(self, kind: type = float, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False) -> None:
        self.kind, self.low, self.high, self.low_open, self.high_open = kind, low, high, low_open, high_open

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        lo, hi = (None if v is None else (str(int(v)) if float(v).is_integer() else f"{v:g}")
                  for v in (self.low, self.high))
        if lo is not None and hi is not None:
            return f"{what} in {'(' if self.low_open else '['}{lo}, {hi}{')' if self.high_open else ']'}"
        if lo is not None:
            return f"{what} {'>' if self.low_open else '>='} {lo}"
        if hi is not None:
            return f"{what} {'<' if self.high_open else '<='} {hi}"
        return f"a finite {'integer' if self.kind is int else 'number'}"

    def __call__(self, text: str) -> int | float:
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"'{text}' is not {self.describe()}") from None
        return self._checked(value, text)

    def check(self, value: Any, where: str) -> int | float:
        """``value`` from a config file (``where`` names the file and key)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError(f"{where}: {value!r} should be {self.describe()}")
        try:
            return self._checked(float(value), repr(value))
        except argparse.ArgumentTypeError as exc:
            raise ValidationError(f"{where}: {exc}") from None

    def _checked(self, value: float, shown: str) -> int | float:
        bad = not math.isfinite(value) or (self.kind is int and value != int(value))
        if not bad and self.low is not None:
            bad = value <= self.low if self.low_open else value < self.low
        if not bad and self.high is not None:
            bad = value >= self.high if self.high_open else value > self.high
        if bad:
            raise argparse.ArgumentTypeError(f"{shown} is not {self.describe()}")
        return int(value) if self.kind is int else value


#: Shared ranges: a seed numpy accepts, an interval level, positive sizes and counts.
SEED = Number(int, 0, 2 ** 32 - 1)
LEVEL = Number(float, 0, 1, low_open=True, high_open=True)
POSITIVE = Number(float, 0, low_open=True)
COUNT = Number(int, 1)
NONNEGATIVE_COUNT = Number(int, 0)
FINITE = Number(float)


def state_ranges(parser: argparse.ArgumentParser) -> None:
    """Append every :class:`Number` option's range to its ``--help`` text (subcommands included)."""
    for action in parser._actions:
        if isinstance(action.type, Number) and action.help not in (None, argparse.SUPPRESS):
            action.help = f"{action.help} [{action.type.describe()}]"
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                state_ranges(sub)




def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as one JSON document on stdout")
    p.add_argument("--seed", type=SEED, default=0, help="random seed (same inputs + seed => identical outputs)")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def add_runs_options(p: argparse.ArgumentParser, runs_required: bool = True) -> None:
    if runs_required:
        p.add_argument("runs", metavar="RUNS", help="proxy-run table (CSV, TSV, Parquet or JSONL)")
    p.add_argument("--pools", metavar="POOLS", help="pool manifest (TOML); weight columns must match it")
    p.add_argument("--metrics", metavar="FILE",
                   help="metrics file of a two-file layout (RegMix loss CSV, olmix metrics.csv); RUNS is then "
                        "the mixture file")
    p.add_argument("--layout", choices=["auto", "table", "regmix", "olmix"], default="auto")
    p.add_argument("--renormalize", action=argparse.BooleanOptionalAction, default=False,
                   help="divide each run's weights by their sum instead of rejecting rows that do not sum to 1")
    p.add_argument("--where", action="append", default=[], metavar="COL=VALUE",
                   help="keep only rows whose COL equals VALUE (repeatable), e.g. --where split=train")


def add_fit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", metavar="SPEC",
                   help="metric column, or a weighted sum such as 'mean(loss_*)' or '0.5*a + 0.5*b'")
    p.add_argument("--maximize", action=argparse.BooleanOptionalAction, default=False,
                   help="larger target values are better (default: smaller)")
    p.add_argument("--model", default="auto",
                   help="regressor: auto (default: chooses and stacks the others by repeated CV), gp, gp-log, "
                        "lightgbm, regmix (LightGBM with RegMix's settings), ridge, linear, dml (Data Mixing Laws)")
    p.add_argument("--cv-folds", type=Number(int, 2), default=5, help="folds of the cross-validation (default 5)")
    p.add_argument("--cv-repeats", type=COUNT, default=None,
                   help="repeats of the cross-validation (default: 3 below 128 runs, 2 below 256, else 1)")
    p.add_argument("--jobs", type=COUNT, default=None, metavar="N",
                   help="parallel workers for fitting and searching (default: every core; the results are "
                        "identical for any N)")


def progress(total: int | None, desc: str, quiet: bool = False) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=quiet or not sys.stderr.isatty(), file=sys.stderr)


def parse_where(items: Sequence[str]) -> dict[str, str]:
    """``--where COL=VALUE`` options as a mapping (see :func:`mixplan.data.runs.select_rows`)."""
    where = {}
    for item in items:
        col, sep, value = item.partition("=")
        if not sep or not col:
            raise ValidationError(f"--where {item!r}: write COLUMN=VALUE, e.g. --where split=train")
        where[col] = value
    return where


def load_runs(args: argparse.Namespace, pools: Any = None) -> Any:
    from ..data.runs import read_runs

    return read_runs(args.runs, pools, renormalize=args.renormalize, metrics=args.metrics, layout=args.layout,
                     where=parse_where(args.where))


def read_other_runs(args: argparse.Namespace, path: str, pools: Any) -> Any:
    """A runs table beside --runs (--repetition-runs, --scale-runs): one mixplan table, so --metrics, --layout
    and --where (which describe --runs) do not apply to it."""
    from ..data.runs import read_runs

    return read_runs(path, pools, renormalize=args.renormalize)


def bucket_space(args: argparse.Namespace, pools: Any) -> tuple[Any, Any]:
    """With a manifest of bucketed pools and runs (``--runs``) whose weight columns are their buckets
    (``w_wiki_top10``, ...: :func:`mixplan.mixture.buckets.bucket_column`), the buckets as pools and
    their layout; otherwise ``pools`` unchanged and None."""
    if pools is None or not pools.bucketed or not getattr(args, "runs", None):
        return pools, None
    from ..mixture.buckets import BucketLayout

    layout = BucketLayout.from_pools(pools)
    found = set(load_runs(args, None).pools)
    if not found & (set(layout.names) - set(pools.names)):
        return pools, None  # the runs mix the pools whole
    return layout.bucket_pools(), layout


def add_rounding_options(p: argparse.ArgumentParser) -> None:
    """--round / --min-weight: mixtures a person would type (mixplan.simplex.rounding)."""
    p.add_argument("--round", type=Number(int, 0, 15), metavar="D",
                   help="round the weights to D decimals, summing to exactly 1 (largest remainder)")
    p.add_argument("--min-weight", type=Number(float, 0, 1, high_open=True), metavar="W",
                   help="drop pools under weight W and renormalise the rest (pinned pools keep their weight)")


def add_report_option(p: argparse.ArgumentParser) -> None:
    """--report [FILE]: an offline HTML report of the result (mixplan.report)."""
    p.add_argument("--report", nargs="?", const="", metavar="FILE",
                   help="also write an offline HTML report with figures (--report alone: report.html in --out)")


def report_path(args: argparse.Namespace, folder: str | None) -> Path | None:
    """--report FILE, or --report alone: report.html in ``folder`` (the command's --out folder)."""
    if getattr(args, "report", None) is None:
        return None
    if args.report == "":
        if not folder:
            raise ValidationError("--report without a file name writes into the --out folder; give --report FILE")
        return Path(folder) / "report.html"
    return Path(args.report)


def load_pools(path: str | None) -> Any:
    from ..data.pools import load_pools

    return load_pools(path) if path else None


def emit(args: argparse.Namespace, doc: dict[str, Any], text: str) -> None:
    if args.json:
        sys.stdout.write(dumps_json(doc))
    else:
        print(text)


def parse_named_numbers(items: Sequence[str], flag: str = "--pin", form: str = "POOL=WEIGHT",
                example: str = "code=0.1") -> dict[str, float]:
    pins = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            pins[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValidationError(f"{flag} {item!r}: write {form}, e.g. {flag} {example}")
    return pins


def parse_budget_range(text: str, steps: int, example: str) -> tuple[float, float]:
    """``--budget-range LO:HI`` (0 < LO < HI, finite) and ``--budget-steps`` (>= 2), checked."""
    lo, sep, hi = text.partition(":")
    try:
        a, b = float(lo), float(hi)
    except ValueError:
        sep = ""
    if not sep or not (0 < a < b < math.inf):
        raise ValidationError(f"--budget-range {text!r}: write LO:HI with 0 < LO < HI, e.g. {example}")
    if steps < 2:
        raise ValidationError(f"--budget-steps must be at least 2, got {steps}")
    return a, b


def read_table_where(path: str, where: Sequence[str]) -> Any:
    """A table with only the rows selected by ``--where COL=VALUE`` (as ``read_runs`` selects them)."""
    from .._io import read_table
    from ..data.runs import select_rows

    return select_rows(read_table(path), parse_where(where), str(path))[0]


def fit_from_args(args: argparse.Namespace, runs: Any) -> Any:
    from ..models.mixture_model import fit_model
    from ..data.objective import parse_objective

    if not args.target:
        raise ValidationError("no target given; pass --target COLUMN (e.g. --target loss_pile_cc)")
    objective = parse_objective(args.target, runs, maximize=args.maximize)
    with progress(None, f"fitting {args.model}") as bar:
        return fit_model(runs, objective, args.model, seed=args.seed, cv_folds=args.cv_folds,
                         cv_repeats=args.cv_repeats, progress=bar, jobs=jobs_of(args))


def jobs_of(args: argparse.Namespace) -> int:
    """The workers ``--jobs`` asks for (every core by default; its type refuses fewer than 1)."""
    from .._parallel import resolve_jobs

    return resolve_jobs(getattr(args, "jobs", None))
