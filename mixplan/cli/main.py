"""The ``mixplan`` command line: validate | fit | predict | plan | design | laws fit | budget | filter |
cpt fit|plan | ot fit|predict|select | scan | export | runs import | report.

Every command takes ``--json`` (one JSON document on stdout instead of the table) and ``--seed``.
Errors are one line on stderr with exit code 2 (``--debug`` shows the traceback); outputs are
written atomically and never replace an existing file without ``--force``.

Each command is a module of this package with ``HELP``, ``add_arguments(parser)`` and ``run(args)``
(optionally ``COMMON_OPTIONS = False`` when its options live on subcommands, and
``PARSER_DEFAULTS``); :data:`COMMANDS` lists them in the order ``--help`` shows.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import ModuleType

from .._version import __version__
from ..exceptions import MixplanError
from . import budget, cpt, design, export, filter, fit, laws, ot, plan, predict, report, runs, scan, validate
from .common import EXIT_ERROR, Parser, UsageError, add_common, state_ranges

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS: dict[str, ModuleType] = {
    "validate": validate, "fit": fit, "predict": predict, "plan": plan, "laws": laws, "budget": budget,
    "filter": filter, "cpt": cpt, "ot": ot, "design": design, "scan": scan, "export": export,
    "runs": runs, "report": report,
}


def build_parser() -> Parser:
    parser = Parser(prog="mixplan", description="Plan the data mixture of a pretraining run from proxy runs.")
    parser.add_argument("--version", action="version", version=f"mixplan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.HELP, description=command.HELP)
        command.add_arguments(p)
        if getattr(command, "COMMON_OPTIONS", True):
            add_common(p)
        p.set_defaults(**getattr(command, "PARSER_DEFAULTS", {}))
    state_ranges(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = parser.parse_args(argv)
        if not args.command:
            raise UsageError(f"no command given; choose one of {', '.join(COMMANDS)} (see 'mixplan --help')")
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
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("mixplan: interrupted", file=sys.stderr)
        return 130

