"""What every command shares: the one-line-error parser, option groups, loading runs and pools, output."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._io import dumps_json
from ..exceptions import ValidationError

__all__ = ["BOOTSTRAP", "COUNT", "EXIT_ERROR", "EXIT_INFEASIBLE", "FINITE", "LEVEL", "MAX_WEIGHTS",
           "NONNEGATIVE_COUNT", "Number", "OUTPUT_OPTIONS", "POSITIVE", "Parser", "SEED", "UsageError", "WORKERS",
           "add_common", "add_fit_options", "add_report_option", "add_rounding_options", "add_runs_options",
           "beside_bars", "check_weights_size", "emit", "fit_from_args", "fit_objective", "jobs_of", "load_pools",
           "load_runs",
           "non_empty", "output_path", "parse_budget_range", "parse_named_numbers", "parse_where", "progress",
           "read_table_where", "report_path", "state_ranges", "working"]

#: Exit codes (README's table): 2 = the input is wrong; 3 = the input is valid but admits no plan (floors,
#: caps, pins or the data available cannot be met together), so a script can tell "fix the call" from
#: "loosen the constraints".
EXIT_ERROR = 2
EXIT_INFEASIBLE = 3


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
#: Counts of work with an upper bound, so that a typo (an extra digit, 2**70) is refused at once instead of
#: running for days or failing deep inside with an overflow: parallel workers, bootstrap refits.
WORKERS = Number(int, 1, 1024)
BOOTSTRAP = Number(int, 0, 10_000)  # percentile intervals are stable well before 10,000 refits
#: Mixture weights a search holds at once at most (candidates x pools): 2e8 floats, 1.6 GB.
MAX_WEIGHTS = 200_000_000


def check_weights_size(rows: int, n_pools: int, flag: str) -> None:
    """Refuse ``rows`` mixtures of ``n_pools`` pools beyond :data:`MAX_WEIGHTS`, before the memory is asked for."""
    if rows * n_pools > MAX_WEIGHTS:
        raise ValidationError(f"{flag} {rows} x {n_pools} pools is {rows * n_pools:.3g} weights "
                              f"({rows * n_pools * 8 / 1e9:.3g} GB), beyond the {MAX_WEIGHTS:.0e} a search holds at "
                              f"once; use {flag} {MAX_WEIGHTS // n_pools} or fewer")
FINITE = Number(float)


#: The options that name an output (their empty value gets :func:`output_path`'s message).
OUTPUT_OPTIONS = ("--out", "--report")


def output_path(text: str) -> str:
    """An output option's path: never empty. ``--out ''`` once meant the current folder for some commands
    and "no output" for others; refusing it makes every command read the same."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; name a file or folder (or leave the option out)")
    return text


def non_empty(text: str) -> str:
    """Any other option's text: never empty (``--pools ''`` would otherwise read as no manifest at all)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty value; give one or leave the option out")
    return text


def _actions(parser: argparse.ArgumentParser) -> Any:
    """Every action of ``parser`` and of its subcommands, depth first."""
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)


def state_ranges(parser: argparse.ArgumentParser) -> None:
    """Append every :class:`Number` option's range to its ``--help`` text, and refuse an empty value for every
    option taking text (:func:`output_path`, :func:`non_empty`), subcommands included."""
    for action in _actions(parser):
        if isinstance(action.type, Number) and action.help not in (None, argparse.SUPPRESS):
            action.help = f"{action.help} [{action.type.describe()}]"
        # Every option taking text refuses an empty one (--report alone has the const "": the report beside the
        # --out folder, see report_path).
        if action.option_strings and action.nargs != 0 and action.type is None and action.const is None:
            action.type = output_path if set(action.option_strings) & set(OUTPUT_OPTIONS) else non_empty




def add_common(p: argparse.ArgumentParser, seeded: bool = True) -> None:
    """--json and --debug; --seed only where something is random (``seeded``): offered where it changes
    nothing, it would suggest a result depends on it."""
    p.add_argument("--json", action="store_true", help="print the result as one JSON document on stdout")
    if seeded:
        p.add_argument("--seed", type=SEED, default=0, help="random seed (same inputs + seed => identical outputs)")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def add_runs_options(p: argparse.ArgumentParser, runs_required: bool = True) -> None:
    if runs_required:
        p.add_argument("runs", metavar="RUNS", help="proxy-run table (CSV, TSV, Parquet or JSONL)")
    p.add_argument("--pools", metavar="POOLS", help="pool manifest (TOML); weight columns must match it")
    p.add_argument("--metrics", metavar="FILE",
                   help="metrics file of a two-file layout (RegMix loss CSV, olmix metrics.csv); RUNS is then "
                        "the mixture file")
    p.add_argument("--layout", choices=["auto", "table", "regmix", "olmix"], default="auto",
                   help="how the runs are stored: table (one table: w_<pool> weight columns and the metrics), regmix "
                        "(RUNS a mixture CSV and --metrics a loss CSV, joined on their index column), olmix (RUNS "
                        "ratios.csv and --metrics metrics.csv, joined on run); auto (default): table without "
                        "--metrics, else olmix when both files have a run column, else regmix")
    p.add_argument("--renormalize", action=argparse.BooleanOptionalAction, default=False,
                   help="divide each run's weights by their sum instead of rejecting rows that do not sum to 1")
    p.add_argument("--where", action="append", default=[], metavar="COL=VALUE",
                   help="keep only rows whose COL equals VALUE (repeatable), e.g. --where split=train")
    p.add_argument("--max-pools", type=COUNT, metavar="N",
                   help="refuse (from its header, before reading it) a runs table mixing more than N pools "
                        "(default 2000: beyond that the models need more runs than a proxy study has)")


def _max_pools(args: argparse.Namespace) -> int:
    from ..data.runs import MAX_POOLS

    return getattr(args, "max_pools", None) or MAX_POOLS


def add_fit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", metavar="SPEC",
                   help="metric column, or a weighted sum such as 'mean(loss_*)', '0.5*a + 0.5*b' or "
                        "'family(mmlu_*, !mmlu_avg; higher):0.5 + mean(bpb_*)' (README: Targets)")
    p.add_argument("--maximize", action=argparse.BooleanOptionalAction, default=False,
                   help="larger target values are better (default: smaller)")
    p.add_argument("--model", default="auto",
                   help="regressor: auto (default: chooses and stacks the others by repeated CV), gp, gp-log, "
                        "lightgbm, regmix (LightGBM with RegMix's settings), ridge, linear, dml (Data Mixing Laws), "
                        "bimix (BiMix's per-pool power law), autoscale (AutoScale's law; needs a tokens column), "
                        "auto-wide (auto with bimix and autoscale among the candidates)")
    p.add_argument("--family-model", choices=("per-column", "shared", "auto"), default="per-column",
                   help="a family(...) term of --target: a model per column (default), one shared model of the "
                        "family's weighted sum, or auto: both, the better by CV RMSE (both scores reported)")
    p.add_argument("--cv-folds", type=Number(int, 2), default=5, help="folds of the cross-validation (default 5)")
    p.add_argument("--cv-repeats", type=Number(int, 1, 100), default=None,
                   help="repeats of the cross-validation (default: 3 below 128 runs, 2 below 256, else 1)")
    p.add_argument("--jobs", type=WORKERS, default=None, metavar="N",
                   help="parallel workers for fitting and searching (default: every core; the results are "
                        "identical for any N)")


def progress(total: int | None, desc: str, quiet: bool = False, **options: Any) -> Any:
    """A progress bar on stderr, only on a terminal (never in logs, pipes or tests); ``options`` go to tqdm."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=quiet or not sys.stderr.isatty(), file=sys.stderr,
                **options)


#: A step running longer than this shows its elapsed time on a terminal (:func:`working`).
SLOW_STEP_SECONDS = 2.0


@contextmanager
def working(desc: str) -> Iterator[Any]:
    """A step that may be slow: on a terminal, after :data:`SLOW_STEP_SECONDS` a line ``DESC: elapsed``
    appears and ticks every half second until the step ends (then it is cleared). Steps with a measurable
    amount of work (fit's folds, scan's bytes) show their own bar beneath it."""
    import threading

    bar = progress(None, desc, bar_format="{desc}: {elapsed}", delay=SLOW_STEP_SECONDS)
    stop = threading.Event()

    def tick() -> None:  # tqdm redraws only when told: this thread tells it, so that the time moves on
        if stop.wait(SLOW_STEP_SECONDS):
            return  # a fast step shows nothing
        while not stop.wait(0.5):
            bar.refresh()

    ticker = None if bar.disable else threading.Thread(target=tick, daemon=True)
    if ticker is not None:
        ticker.start()
    try:
        yield bar
    finally:
        stop.set()
        if ticker is not None:
            ticker.join()
        bar.close()


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
                     where=parse_where(args.where), max_pools=_max_pools(args))


def read_other_runs(args: argparse.Namespace, path: str, pools: Any) -> Any:
    """A runs table beside --runs (--repetition-runs, --scale-runs): one mixplan table, so --metrics, --layout
    and --where (which describe --runs) do not apply to it."""
    from ..data.runs import read_runs

    return read_runs(path, pools, renormalize=args.renormalize, max_pools=_max_pools(args))


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
    with beside_bars():
        if args.json:
            sys.stdout.write(dumps_json(doc))
        else:
            print(text)


def beside_bars() -> Any:
    """A context for writing to the terminal while :func:`working`'s line or a progress bar shows there: they
    are cleared first and drawn again after, so that the text is not written over them."""
    if not sys.stderr.isatty():
        from contextlib import nullcontext

        return nullcontext()
    from tqdm import tqdm

    return tqdm.external_write_mode()


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


def parse_budget_range(text: str, example: str) -> tuple[float, float]:
    """``--budget-range LO:HI`` (0 < LO < HI, finite), checked (``--budget-steps``' type checks the steps)."""
    lo, sep, hi = text.partition(":")
    try:
        a, b = float(lo), float(hi)
    except ValueError:
        sep = ""
    if not sep or not (0 < a < b < math.inf):
        raise ValidationError(f"--budget-range {text!r}: write LO:HI with 0 < LO < HI, e.g. {example}")
    return a, b


def read_table_where(path: str, where: Sequence[str]) -> Any:
    """A table with only the rows selected by ``--where COL=VALUE`` (as ``read_runs`` selects them)."""
    from .._io import read_table
    from ..data.runs import select_rows

    return select_rows(read_table(path), parse_where(where), str(path))[0]


def fit_from_args(args: argparse.Namespace, runs: Any) -> Any:
    from ..data.objective import parse_objective

    if not args.target:
        raise ValidationError("no target given; pass --target COLUMN (e.g. --target loss_pile_cc)")
    return fit_objective(args, runs, parse_objective(args.target, runs, maximize=args.maximize))


def fit_objective(args: argparse.Namespace, runs: Any, objective: Any) -> Any:
    """The model the options ask for (--model, --seed, --cv-folds, --cv-repeats, --jobs, ...) of ``objective``
    on ``runs``."""
    from ..models.mixture_model import fit_model

    with progress(None, f"fitting {args.model}", delay=SLOW_STEP_SECONDS) as bar:
        return fit_model(runs, objective, args.model, seed=args.seed, cv_folds=args.cv_folds,
                         cv_repeats=args.cv_repeats, progress=bar, jobs=jobs_of(args),
                         family_model=getattr(args, "family_model", "per-column"))


def jobs_of(args: argparse.Namespace) -> int:
    """The workers ``--jobs`` asks for (every core by default; its type refuses fewer than 1)."""
    from .._parallel import resolve_jobs

    return resolve_jobs(getattr(args, "jobs", None))
