"""The package's shape: layers (import-linter contract in pyproject.toml), no import cycles, no private
names across modules, and commands that start without the heavy libraries."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mixplan"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(module: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, names, line) of every import statement, relative ones resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            out.append((target, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
    return out


def test_layers_contract_is_kept(repo):
    linter = Path(sys.executable).parent / "lint-imports"
    if not linter.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]' installs it)")
    proc = subprocess.run([str(linter), "--config", str(repo / "pyproject.toml"), "--no-cache"], cwd=repo,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "0 broken" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_no_import_cycles_between_modules():
    # Every import statement counts, also those inside functions (a lazy import is still an arrow).
    modules = _modules()
    graph = {m: set() for m in modules}
    for m, path in modules.items():
        for target, names, _ in _imports(m, path):
            for t in [f"{target}.{n}" for n in names] + [target]:
                if t in modules and t != m:
                    graph[m].add(t)
                    break
    # A package's __init__ that re-exports its own modules is not a cycle with them (Python resolves it).
    graph = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_no_private_name_is_imported_from_another_module():
    modules = _modules()
    bad = []
    for m, path in modules.items():
        for target, names, line in _imports(m, path):
            if target.startswith("mixplan") and target != m:
                bad += [f"{path.relative_to(PACKAGE.parent)}:{line} imports {n} from {target}" for n in names
                        if n.startswith("_") and n != "__version__"]
    assert not bad, bad


def test_commands_start_without_the_heavy_libraries(repo):
    # `mixplan --help` and `mixplan validate` must stay fast (tests/benchmarks/startup.py measures them):
    # importing the CLI loads none of these; validating a run table loads no model library.
    code = ("import sys; from mixplan.cli import main; import mixplan; "
            "heavy = ('sklearn', 'lightgbm', 'ot', 'datasets', 'scipy', 'pandas'); "
            "print(','.join(m for m in heavy if m in sys.modules)); "
            "main(['validate', 'proxies/demo/runs.csv', '--pools', 'pools/demo.toml']); "
            "print(','.join(m for m in heavy if m in sys.modules), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "", proc.stdout.splitlines()[0]
    assert set(proc.stderr.strip().split(",")) <= {"pandas"}, proc.stderr


def test_subpackages_and_public_names_resolve_on_first_use():
    # `import mixplan` loads almost nothing, yet every documented way of reaching a name works, and a
    # public name never shadows a submodule of the same package.
    code = ("import inspect, mixplan; assert mixplan.laws.fit_law.__name__ == 'fit_law'; "
            "from mixplan.models import MixingLaw; import mixplan.models.mixing_law as m; assert inspect.ismodule(m); "
            "assert callable(mixplan.make_plan) and 'laws' in dir(mixplan); "
            "import importlib; [getattr(importlib.import_module(f'mixplan.{p}'), n) for p in "
            "('data', 'models', 'mixture', 'filtering', 'cpt', 'transport', 'simplex') "
            "for n in importlib.import_module(f'mixplan.{p}').__all__]")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
