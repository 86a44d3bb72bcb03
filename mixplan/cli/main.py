"""The ``mixplan`` command line: validate | fit | predict | plan | design | laws fit | budget | filter |
cpt fit|plan | ot fit|predict|select | scan | export | runs import|reuse | report.

Every command takes ``--json`` (one JSON document on stdout instead of the table); those with anything
random take ``--seed``.
Errors are one line on stderr with exit code 2 (3 when valid input admits no feasible plan: see
:data:`EXIT_INFEASIBLE`; ``--debug`` shows the traceback); warnings are one line each (``mixplan: warning:
...``), shown once the command has finished (a failed one shows only its error); outputs are written
atomically and never replace an existing file without ``--force``.

Each command is a module of this package with ``HELP``, ``add_arguments(parser)`` and ``run(args)``
(optionally ``COMMON_OPTIONS = False`` when its options live on subcommands, ``SEEDED = False`` when
nothing in it is random, so it offers no ``--seed``, and ``PARSER_DEFAULTS``); :data:`COMMANDS` lists
them in the order ``--help`` shows.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from .._version import __version__
from ..exceptions import InfeasibleError, MixplanError, MixplanWarning
from . import budget, compare, cpt, design, export, filter, fit, laws, ot, plan, predict, report, runs, scan, validate
from .common import EXIT_ERROR, EXIT_INFEASIBLE, Parser, UsageError, add_common, state_ranges, working

__all__ = ["COMMANDS", "build_parser", "format_warning", "main", "show_warnings"]

COMMANDS: dict[str, ModuleType] = {
    "validate": validate, "fit": fit, "predict": predict, "plan": plan, "laws": laws, "budget": budget,
    "filter": filter, "cpt": cpt, "ot": ot, "design": design, "scan": scan, "export": export,
    "runs": runs, "report": report, "compare": compare,
}


def build_parser() -> Parser:
    parser = Parser(prog="mixplan", description="Plan the data mixture of a pretraining run from proxy runs.")
    parser.add_argument("--version", action="version", version=f"mixplan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.HELP, description=command.HELP)
        command.add_arguments(p)
        if getattr(command, "COMMON_OPTIONS", True):
            add_common(p, seeded=getattr(command, "SEEDED", True))
        p.set_defaults(**getattr(command, "PARSER_DEFAULTS", {}))
    state_ranges(parser)
    return parser


def format_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                   line: str | None = None) -> str:
    """A warning as one line on stderr, like an error: ``mixplan: warning: ...`` (a library's own warnings
    name their kind and origin; ``--debug`` keeps Python's format with the source line). Replacing
    ``formatwarning``, not ``showwarning``, leaves recording warnings (``catch_warnings(record=True)``) as is."""
    text = " ".join(str(message).split())
    if not issubclass(category, MixplanWarning):
        text = f"{category.__name__}: {text} ({Path(filename).name}:{lineno})"
    return f"mixplan: warning: {text}\n"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    # Warnings are held until the command ends: a failed command says one line, its error (a warning on the
    # way there would only be a second line, often about the same fault); a finished one shows each once.
    with warnings.catch_warnings(record=True) as caught:
        # Each distinct one once per place (a loop's thousand overflows is one); the filters in force at the
        # caller choose among them when they are issued again.
        warnings.simplefilter("default")
        code = _main(argv, debug)
    if code == 0 or debug:
        show_warnings(caught, one_line=not debug)
    return code


def show_warnings(caught: Sequence[warnings.WarningMessage], one_line: bool = True) -> None:
    """Issue ``caught`` again, each distinct one once, under the filters in force (so that a caller recording
    warnings, like pytest, still sees them), printed by :func:`format_warning` when ``one_line``."""
    formatwarning = warnings.formatwarning  # catch_warnings puts back showwarning, not formatwarning
    try:
        if one_line:
            warnings.formatwarning = format_warning
        seen = set()
        for w in caught:
            if (w.category, str(w.message)) not in seen:
                seen.add((w.category, str(w.message)))
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    finally:
        warnings.formatwarning = formatwarning


def _main(argv: list[str], debug: bool) -> int:
    parser = build_parser()
    try:
        nul = next((a for a in argv if "\x00" in a), None)
        if nul is not None:  # no file name or value holds one; the operating system would refuse it deep inside
            raise UsageError(f"argument {nul!r} contains a NUL character (\\x00); remove it")
        args = parser.parse_args(argv)
        if not args.command:
            raise UsageError(f"no command given; choose one of {', '.join(COMMANDS)} (see 'mixplan --help')")
        with working(f"mixplan {args.command}"):
            return COMMANDS[args.command].run(args)
    except BrokenPipeError:  # stdout closed early (e.g. `| head`): not an error of the command
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return 0
    except (MixplanError, UsageError, OSError) as exc:
        if debug:
            raise
        msg = " ".join(str(exc).split()) if not isinstance(exc, OSError) or not exc.filename else \
            f"{exc.filename}: {exc.strerror}"
        print(f"mixplan: error: {msg}", file=sys.stderr)
        return EXIT_INFEASIBLE if isinstance(exc, InfeasibleError) else EXIT_ERROR
    except KeyboardInterrupt:
        print("mixplan: interrupted", file=sys.stderr)
        return 130

