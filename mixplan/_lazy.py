"""Public names resolved on first use (PEP 562), so that importing a package costs nothing until a
name is used: ``mixplan --help`` must not pay for scikit-learn, LightGBM, POT or pandas."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str],
                 subpackages: tuple[str, ...] = ()) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` for ``package``: ``exports`` maps each public name to the
    module (relative to ``package``, e.g. ``".data.pools"``) that defines it; ``subpackages`` are imported
    on first use too (``import mixplan; mixplan.laws.fit_law``). A public name may not also be a
    submodule's: which of the two the attribute held would depend on what was imported first."""
    clash = [n for n in exports if importlib.util.find_spec(f"{package}.{n}") is not None]
    if clash:
        raise ImportError(f"{package}: public name(s) {clash} are also submodules")

    def __getattr__(name: str) -> Any:
        if name in subpackages:
            return importlib.import_module(f".{name}", package)
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports) | set(subpackages))

    return __getattr__, __dir__
