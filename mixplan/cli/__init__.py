"""The command line, ``mixplan COMMAND ...``: :mod:`~mixplan.cli.main` parses and dispatches; each
command group has a module of its own. Importing it is cheap: libraries load inside the commands."""

from .main import build_parser, main

__all__ = ["main", "build_parser"]
