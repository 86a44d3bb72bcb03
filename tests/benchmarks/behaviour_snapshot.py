"""Behaviour snapshot of the ``mixplan`` CLI: prove that a refactoring changed no output.

Snapshot mode runs a fixed list of CLI commands (every command of README.md, on the shipped demo data
of a source tree, with ``--seed 0``, each once as text and once with ``--json``) in a fresh work
folder and records, per command, its argv, exit code and the SHA-256 of its stdout and of every file it
wrote. Compare mode reads two snapshots and says what differs::

    python tests/benchmarks/behaviour_snapshot.py --repo DIR --out SNAP.json [--keep WORKDIR]
    python tests/benchmarks/behaviour_snapshot.py --compare OLD.json NEW.json

Typical use: snapshot the old commit from a git worktree and the refactored tree with the same
interpreter, then compare (exit 0: identical, 1: something differs)::

    git worktree add /tmp/base 036f9b3
    python tests/benchmarks/behaviour_snapshot.py --repo /tmp/base --out /tmp/old.json --keep /tmp/old_work
    python tests/benchmarks/behaviour_snapshot.py --repo . --out /tmp/new.json --keep /tmp/new_work
    python tests/benchmarks/behaviour_snapshot.py --compare /tmp/old.json /tmp/new.json

How a tree is run: ``DIR`` goes first on ``PYTHONPATH`` and the CLI is started as
``python -c "...from mixplan.cli import main..."`` with ``cwd=DIR`` (so the installed copy of mixplan
is not used; the script checks which ``mixplan/__init__.py`` is imported), with ``OMP_NUM_THREADS=1``
(and the other BLAS thread counts) and the Hugging Face hubs offline. Inputs are the files shipped in
``DIR`` (``proxies/demo*``, ``pools/demo.toml``, ``examples/*.toml``), given as paths relative to
``DIR``, plus three small tables this script writes byte for byte the same every time (``inputs/``:
law runs for ``laws fit``, bucket runs for ``filter --runs``, document scores for
``filter --bucket-scores``; nothing of the sort is shipped). Options are the smallest that still
exercise each command (e.g. ``--bootstrap 20``) and never depend on the tree.

What is hashed: stdout and every output file, after replacing the work folder's absolute path by
``<WORK>`` and ``DIR``'s by ``<REPO>`` (outputs echo paths), and after masking the one elapsed time
the CLI prints (``ot select``: "N OT solves, 0.03 s"); the JSON lists these rules under
``normalization``. Binary files (.npz, .npy, Parquet, ...) are listed with a null hash. Files are keyed
by their path relative to the work folder (``<step>/...``, ``<step>--json/...`` for the --json run).
The JSON also records the Python version, the versions of the packages pyproject.toml names, and each
command's wall time (not compared). With ``--keep`` the work folder is kept (stdout and stderr of each
command are in ``_stdout/`` and ``_stderr/``) and its path is recorded, so that ``--compare`` can show
the first differing values of differing JSON/CSV files (numbers side by side) and text lines.

Runtime: about 2.5 minutes on 2 cores. Standard library only (the commands need the project's venv).
"""

from __future__ import annotations

import argparse
import csv
import difflib
import hashlib
import importlib.metadata
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

CLI = "import sys; from mixplan.cli import main; sys.exit(main(sys.argv[1:]))"
WORK = "<WORK>"
REPO = "<REPO>"
SEED = ("--seed", "0")
BINARY_SUFFIXES = {".npz", ".npy", ".parquet", ".pq", ".arrow", ".feather", ".pkl", ".pickle", ".bin", ".gz"}
# Elapsed times printed by the CLI: not behaviour, masked before hashing stdout.
VOLATILE = ((re.compile(r"(\d+ OT solves, )\d+(?:\.\d+)? s\b"), r"\1<SECONDS> s"),)
MAX_VALUES = 5  # differing values shown per file in compare mode
ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
       "HF_DATASETS_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}


@dataclass(frozen=True)
class Step:
    """One CLI command. ``args`` may hold ``{out}`` (this run's own output folder) and ``{work}`` (the
    work folder: inputs and the outputs of earlier steps, always those of their text run)."""

    name: str
    args: tuple[str, ...]


DEMO_RUNS = "proxies/demo/runs.csv"
RUNS_HALF = "proxies/demo/runs_half.csv"
RUNS_4X = "proxies/demo/runs_4x.csv"
DEMO_POOLS = "pools/demo.toml"
DEMO_PLAN = "examples/demo_plan.toml"
CPT_RUNS = "proxies/demo_cpt/runs.csv"
QQT_POOLS = "examples/qqt_tmars.toml"
OT_STUDY = "{work}/ot_fit/study"

STEPS: tuple[Step, ...] = (
    Step("validate", ("validate", DEMO_RUNS, "--pools", DEMO_POOLS, "--target", "bpb_reviews")),
    Step("fit", ("fit", DEMO_RUNS, "--pools", DEMO_POOLS, "--target", "bpb_reviews", "--out", "{out}/model")),
    Step("predict", ("predict", "{work}/fit/model", RUNS_4X, "--out", "{out}/pred.csv")),
    Step("plan", ("plan", DEMO_PLAN, "--out", "{out}/plan")),
    Step("plan_repetition", ("plan", DEMO_PLAN, "--tokens", "16e6", "--repetition-runs", RUNS_4X,
                             "--budget-range", "2.5e5:16e6", "--budget-steps", "3", "--out", "{out}/plan")),
    Step("design", ("design", "--pools", DEMO_POOLS, "--n", "16", "--tokens", "1e6", "--out", "{out}/swarm")),
    Step("design_next", ("design", "--pools", DEMO_POOLS, "--next", "4", "--runs", DEMO_RUNS, "--target",
                         "bpb_reviews", "--tokens", "1e6", "--out", "{out}/round2")),
    Step("laws_chinchilla", ("laws", "fit", "{work}/inputs/law_runs.csv", "--law", "chinchilla", "--target", "loss",
                             "--bootstrap", "20", "--out", "{out}/fit.json")),
    Step("laws_chinchilla_demo_cpt", ("laws", "fit", CPT_RUNS, "--where", "ratio=0.0", "--law", "chinchilla",
                                      "--target", "general_loss", "--bootstrap", "20", "--out", "{out}/fit.json")),
    Step("laws_data_constrained", ("laws", "fit", "{work}/inputs/law_runs.csv", "--law", "data-constrained",
                                   "--target", "loss", "--bootstrap", "20", "--out", "{out}/fit.json")),
    Step("budget_fitted_law", ("budget", "--flops", "1e21", "--law", "{work}/laws_chinchilla/fit.json")),
    Step("budget_data_constrained", ("budget", "--flops", "1e22", "--unique-tokens", "25e9", "--law",
                                     "datablations")),
    Step("budget_pools", ("budget", "--flops", "1e15", "--tokens", "16e6", "--pools", DEMO_POOLS, "--mixture",
                          "wiki=0.2", "--mixture", "news=0.5", "--mixture", "bible=0.1", "--mixture", "code=0.1",
                          "--mixture", "docs=0.1", "--units-per-token", "1")),
    Step("filter_plan", ("filter", "--pools", QQT_POOLS, "--budget-range", "2e7:1e10", "--budget-steps", "40",
                         "--out", "{out}/filter")),
    Step("filter_fit", ("filter", "--pools", QQT_POOLS, "--runs", "{work}/inputs/bucket_runs.csv", "--target",
                        "error", "--bootstrap", "20", "--budget", "3e7,1e8,1e9", "--out", "{out}/filter")),
    Step("filter_from_fit", ("filter", "--pools", QQT_POOLS, "--fit", "{work}/filter_fit/filter/FIT.json",
                             "--budget", "1e8,1e9", "--out", "{out}/filter")),
    Step("filter_bucket_scores", ("filter", "--bucket-scores", "{work}/inputs/doc_scores.csv", "--score", "quality",
                                  "--fractions", "0.1,0.2,0.3", "--text-column", "text", "--pool-name", "web",
                                  "--out", "{out}/buckets")),
    Step("cpt_fit", ("cpt", "fit", CPT_RUNS, "--general", "general_loss", "--domain", "domain_loss",
                     "--bootstrap", "20", "--out", "{out}/dcpt.json")),
    Step("cpt_plan_usage1", ("cpt", "plan", "{work}/cpt_fit/dcpt.json", "--tokens", "1e6", "--params", "4194304",
                             "--max-general-rise", "0.02", "--relative", "--out", "{out}/plan.json")),
    Step("cpt_plan_usage2", ("cpt", "plan", "{work}/cpt_fit/dcpt.json", "--domain-tokens", "5e5", "--params",
                             "4194304", "--out", "{out}/plan.csv")),
    Step("ot_fit", ("ot", "fit", "--runs", RUNS_HALF, "--runs", DEMO_RUNS, "--pools", DEMO_POOLS, "--target",
                    "bpb_reviews", "--samples", "demo", "--validation", "demo:reviews", "--check-runs", RUNS_4X,
                    "--out", "{out}/study")),
    Step("ot_predict", ("ot", "predict", OT_STUDY, RUNS_4X, "--tokens", "4e6", "--out", "{out}/pred4x.csv")),
    Step("ot_select", ("ot", "select", OT_STUDY, "--tokens", "4e6", "--pools", DEMO_POOLS, "--out",
                       "{out}/selection.json")),
    Step("plan_ot", ("plan", DEMO_PLAN, "--tokens", "4e6", "--ot", OT_STUDY, "--out", "{out}/plan")),
    Step("plan_ot_size", ("plan", DEMO_PLAN, "--tokens", "4e6", "--ot", OT_STUDY, "--ot-mode", "size", "--out",
                          "{out}/plan")),
)

# ---------------------------------------------------------------------------------------------------
# Inputs that are not shipped, written byte for byte the same every run.

# Muennighoff et al.'s data-constrained law with the datablations constants (R_D* 15.39, R_N* 5.31),
# times (1 + 0.003 z), z ~ N(0, 1) with numpy seed 1; 6 significant digits. Columns: params, tokens,
# unique_tokens, loss.
LAW_RUNS = (
    (20000000, 200000000, 200000000, 5.04014), (20000000, 400000000, 200000000, 4.67292),
    (20000000, 800000000, 200000000, 4.38672), (20000000, 1600000000, 200000000, 4.16294),
    (20000000, 3200000000, 200000000, 4.0528), (20000000, 1000000000, 1000000000, 4.25806),
    (20000000, 2000000000, 1000000000, 4.03413), (20000000, 4000000000, 1000000000, 3.88921),
    (20000000, 8000000000, 1000000000, 3.77143), (20000000, 16000000000, 1000000000, 3.69264),
    (60000000, 200000000, 200000000, 4.68835), (60000000, 400000000, 200000000, 4.32154),
    (60000000, 800000000, 200000000, 4.02649), (60000000, 1600000000, 200000000, 3.83044),
    (60000000, 3200000000, 200000000, 3.68951), (60000000, 1000000000, 1000000000, 3.81469),
    (60000000, 2000000000, 1000000000, 3.59654), (60000000, 4000000000, 1000000000, 3.4349),
    (60000000, 8000000000, 1000000000, 3.31499), (60000000, 16000000000, 1000000000, 3.24236),
    (200000000, 200000000, 200000000, 4.55407), (200000000, 400000000, 200000000, 4.17701),
    (200000000, 800000000, 200000000, 3.91655), (200000000, 1600000000, 200000000, 3.70948),
    (200000000, 3200000000, 200000000, 3.5319), (200000000, 1000000000, 1000000000, 3.50384),
    (200000000, 2000000000, 1000000000, 3.31035), (200000000, 4000000000, 1000000000, 3.14989),
    (200000000, 8000000000, 1000000000, 3.0407), (200000000, 16000000000, 1000000000, 2.96276),
)

# QQT utility law with examples/qqt_tmars.toml's parameters (one 12.8M-sample bucket read 2..10 times),
# times (1 + 0.01 z), numpy seed 0; two noiseless runs on the union top_20 (checked, not fitted).
# Columns: bucket, epochs, error; samples = epochs x 12,800,000.
BUCKET_RUNS = (
    ("top10", 2, 0.842688), ("top10", 4, 0.770805), ("top10", 6, 0.745511), ("top10", 8, 0.724192),
    ("top10", 10, 0.708892), ("top10_20", 2, 0.893829), ("top10_20", 4, 0.840145), ("top10_20", 6, 0.808102),
    ("top10_20", 8, 0.778132), ("top10_20", 10, 0.762942), ("top20_30", 2, 0.925999), ("top20_30", 4, 0.886227),
    ("top20_30", 6, 0.845897), ("top20_30", 8, 0.853552), ("top20_30", 10, 0.838586), ("top30_40", 2, 0.95606),
    ("top30_40", 4, 0.930937), ("top30_40", 6, 0.924736), ("top30_40", 8, 0.928286), ("top30_40", 10, 0.932767),
    ("top_20", 2, 0.789525), ("top_20", 4, 0.722823),
)
BUCKET_SAMPLES = 12_800_000
WORDS = ("the", "model", "data", "quality", "river", "a", "of", "score", "filter", "token", "plain", "prose",
         "code", "x", "=", "1", "and", "is", "news", "review")


def table_text(header: tuple[str, ...], rows: Any) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def doc_scores() -> list[tuple[str, float, float, str]]:
    """200 documents with a quality score (distinct), a second score and a text of 3..25 words."""
    rows = []
    for i in range(200):
        quality = ((i * 7919) % 1000) / 1000
        text = " ".join(WORDS[(i * 7 + k * k) % len(WORDS)] for k in range((i * 37) % 23 + 3))
        rows.append((f"doc-{i:03d}", quality, round(1 - quality, 3), text))
    return rows


def write_inputs(folder: Path) -> dict[str, str]:
    """Write the generated inputs; return {relative path: sha256}."""
    folder.mkdir(parents=True)
    texts = {
        "law_runs.csv": table_text(("params", "tokens", "unique_tokens", "loss"), LAW_RUNS),
        "bucket_runs.csv": table_text(("bucket", "samples", "epochs", "error"),
                                      [(b, e * BUCKET_SAMPLES * (2 if b == "top_20" else 1), e, y)
                                       for b, e, y in BUCKET_RUNS]),
        "doc_scores.csv": table_text(("doc_id", "quality", "other", "text"), doc_scores()),
    }
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8", newline="")
    return {f"{folder.name}/{name}": sha256(text.encode()) for name, text in texts.items()}


# ---------------------------------------------------------------------------------------------------
# Hashing with placeholders


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def placeholders(work: Path, repo: Path) -> list[tuple[str, str]]:
    """(absolute path, placeholder) pairs, longest path first (the resolved and the given spelling)."""
    pairs = {str(work): WORK, str(work.resolve()): WORK, str(repo): REPO, str(repo.resolve()): REPO}
    return sorted(pairs.items(), key=lambda kv: -len(kv[0]))


def normalize(text: str, subs: list[tuple[str, str]]) -> str:
    for old, new in subs:
        text = text.replace(old, new)
    for pattern, repl in VOLATILE:
        text = pattern.sub(repl, text)
    return text


def is_binary(path: Path, data: bytes) -> bool:
    return path.suffix.lower() in BINARY_SUFFIXES or b"\0" in data[:8192]


def file_hash(path: Path, subs: list[tuple[str, str]]) -> str | None:
    """SHA-256 of a text file after the placeholders; None for a binary file."""
    data = path.read_bytes()
    if is_binary(path, data):
        return None
    return sha256(normalize(data.decode("utf-8", errors="surrogateescape"), subs)
                  .encode("utf-8", errors="surrogateescape"))


def output_files(work: Path, folder: str, subs: list[tuple[str, str]]) -> dict[str, str | None]:
    root = work / folder
    return {p.relative_to(work).as_posix(): file_hash(p, subs)
            for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------------
# Snapshot mode


def child_env(repo: Path) -> dict[str, str]:
    env = dict(os.environ) | ENV
    env["PYTHONPATH"] = os.pathsep.join([str(repo), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def check_import(repo: Path, env: dict[str, str]) -> str:
    """The mixplan/__init__.py that the commands import; it must be the one in ``repo``."""
    proc = subprocess.run([sys.executable, "-c", "import mixplan; print(mixplan.__file__)"], cwd=repo, env=env,
                          capture_output=True, text=True)
    path = Path(proc.stdout.strip()).resolve() if proc.returncode == 0 else None
    if path is None or not path.is_relative_to(repo.resolve()):
        sys.exit(f"behaviour_snapshot: {repo} does not provide mixplan (imported {proc.stdout.strip() or '-'}; "
                 f"{proc.stderr.strip()[-300:]})")
    return path.relative_to(repo.resolve()).as_posix()


def expand(args: tuple[str, ...], work: str, out: str) -> list[str]:
    return [a.replace("{out}", out).replace("{work}", work) for a in args] + list(SEED)


def run_one(step: Step, as_json: bool, repo: Path, work: Path, env: dict[str, str],
            subs: list[tuple[str, str]]) -> dict[str, Any]:
    """Run one command (text or --json) and return its record."""
    folder = f"{step.name}--json" if as_json else step.name
    name = f"{step.name} --json" if as_json else step.name
    (work / folder).mkdir()
    extra = ["--json"] if as_json else []
    argv = expand(step.args, str(work), str(work / folder)) + extra
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CLI, *argv], cwd=repo, env=env, capture_output=True)
    seconds = time.perf_counter() - t0
    stdout = normalize(proc.stdout.decode("utf-8", errors="surrogateescape"), subs)
    stdout_file = f"_stdout/{folder}.{'json' if as_json else 'txt'}"
    (work / stdout_file).write_text(stdout, encoding="utf-8", errors="surrogateescape", newline="")
    (work / "_stderr" / f"{folder}.txt").write_bytes(proc.stderr)
    return {"name": name, "argv": expand(step.args, WORK, f"{WORK}/{folder}") + extra,
            "returncode": proc.returncode,
            "stdout_sha256": sha256(stdout.encode("utf-8", errors="surrogateescape")),
            "files": output_files(work, folder, subs), "stdout_file": stdout_file, "seconds": round(seconds, 2)}


def package_versions(repo: Path) -> dict[str, str | None]:
    """Installed versions of the packages that DIR's pyproject.toml names (dependencies and demo extra)."""
    project = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8")).get("project", {})
    specs = [*project.get("dependencies", []), *project.get("optional-dependencies", {}).get("demo", [])]
    names = sorted({re.match(r"[A-Za-z0-9_.\-]+", s).group(0).lower() for s in specs})
    versions: dict[str, str | None] = {"mixplan (DIR)": project.get("version")}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def repo_commit(repo: Path) -> str | None:
    """HEAD of DIR (read only: rev-parse never touches the index or work tree)."""
    proc = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def make_work(keep: str | None) -> Path:
    if keep is None:
        return Path(tempfile.mkdtemp(prefix="mixplan_snapshot_"))
    work = Path(keep).absolute()
    if work.exists() and any(work.iterdir()):
        sys.exit(f"behaviour_snapshot: --keep {work} exists and is not empty; give a new folder")
    work.mkdir(parents=True, exist_ok=True)
    return work


def print_table(commands: list[dict[str, Any]]) -> None:
    print(f"{'command':<34} {'exit':>4} {'files':>5} {'seconds':>8}")
    for c in commands:
        print(f"{c['name']:<34} {c['returncode']:>4} {len(c['files']):>5} {c['seconds']:>8.1f}")


def snapshot(repo: Path, out: Path, keep: str | None) -> int:
    repo = repo.absolute()
    env = child_env(repo)
    mixplan_file = check_import(repo, env)
    work = make_work(keep)
    subs = placeholders(work, repo)
    t0 = time.perf_counter()
    try:
        inputs = write_inputs(work / "inputs")
        (work / "_stdout").mkdir()
        (work / "_stderr").mkdir()
        commands = []
        for step in STEPS:
            for as_json in (False, True):
                commands.append(run_one(step, as_json, repo, work, env, subs))
                print(f"  {commands[-1]['name']}: exit {commands[-1]['returncode']}, {commands[-1]['seconds']} s",
                      file=sys.stderr, flush=True)
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
    doc = {"commands": commands, "python": sys.version, "executable": sys.executable,
           "packages": package_versions(repo), "repo": str(repo), "commit": repo_commit(repo),
           "mixplan_file": mixplan_file, "work": str(work) if keep is not None else None, "inputs": inputs,
           "environment": ENV, "seed": SEED[1],
           "normalization": {"paths": {WORK: "the work folder", REPO: "DIR"},
                             "masked": [p.pattern for p, _ in VOLATILE]},
           "seconds_total": round(time.perf_counter() - t0, 1)}
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print_table(commands)
    failed = [c["name"] for c in commands if c["returncode"] != 0]
    print(f"{len(commands)} commands in {doc['seconds_total']} s; snapshot written to {out}"
          + (f"; work folder kept in {work}" if keep is not None else ""))
    if failed:
        print(f"warning: non-zero exit: {', '.join(failed)} (see _stderr/ with --keep)")
    return 0


# ---------------------------------------------------------------------------------------------------
# Compare mode


def as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def show_pair(a: Any, b: Any) -> str:
    x, y = as_number(a), as_number(b)
    if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
        return f"{a!r}  |  {b!r}"
    rel = abs(y - x) / max(abs(x), abs(y)) if max(abs(x), abs(y)) > 0 else 0.0
    return f"{a!r:>24}  |  {b!r:<24} diff {y - x:+.3g} (rel {rel:.2g})"


def json_diffs(a: Any, b: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, description) of differing leaves of two JSON values, in document order."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            if key not in b:
                yield f"{path}.{key}", "only in old"
            elif key not in a:
                yield f"{path}.{key}", "only in new"
            else:
                yield from json_diffs(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            yield path or ".", f"length {len(a)} | {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            yield from json_diffs(x, y, f"{path}[{i}]")
    elif a != b or type(a) is not type(b):
        yield path or ".", show_pair(a, b)


def csv_diffs(a: str, b: str, delimiter: str = ",") -> Iterator[tuple[str, str]]:
    """(row/column, description) of differing cells of two CSV (or TSV) texts."""
    ra, rb = (list(csv.reader(io.StringIO(t), delimiter=delimiter)) for t in (a, b))
    header = ra[0] if ra else []
    if len(ra) != len(rb):
        yield "rows", f"{len(ra)} | {len(rb)}"
    for i, (x, y) in enumerate(zip(ra, rb)):
        if len(x) != len(y):
            yield f"line {i + 1}", f"{len(x)} | {len(y)} fields"
        for j, (u, v) in enumerate(zip(x, y)):
            if u != v:
                col = header[j] if i > 0 and j < len(header) else f"field {j + 1}"
                yield f"line {i + 1}, {col}", show_pair(u, v)


def text_diffs(a: str, b: str) -> Iterator[tuple[str, str]]:
    for line in difflib.unified_diff(a.splitlines(), b.splitlines(), "old", "new", n=0, lineterm=""):
        if not line.startswith(("---", "+++", "@@")):
            yield "", line


def value_diffs(rel: str, a: str, b: str) -> Iterator[tuple[str, str]]:
    suffix = Path(rel).suffix.lower()
    if suffix == ".json":
        try:
            yield from json_diffs(json.loads(a), json.loads(b))
            return
        except json.JSONDecodeError:
            pass
    if suffix in (".csv", ".tsv"):
        yield from csv_diffs(a, b, "\t" if suffix == ".tsv" else ",")
        return
    yield from text_diffs(a, b)


def kept_text(snap: dict[str, Any], rel: str) -> str | None:
    """A kept file of a snapshot, with its placeholders applied; None when not kept."""
    if not snap.get("work"):
        return None
    path = Path(snap["work"]) / rel
    if not path.is_file():
        return None
    text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    return normalize(text, placeholders(Path(snap["work"]), Path(snap["repo"])))


def explain(old: dict[str, Any], new: dict[str, Any], rel: str) -> None:
    a, b = kept_text(old, rel), kept_text(new, rel)
    if a is None or b is None:
        return
    shown = 0
    for where, what in value_diffs(rel, a, b):
        print(f"        {where}: {what}" if where else f"        {what}")
        shown += 1
        if shown == MAX_VALUES:
            print("        ...")
            break


def command_differences(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(message, relative path to explain or None) for one command present in both snapshots."""
    out: list[tuple[str, str | None]] = []
    if a["argv"] != b["argv"]:
        out.append((f"argv differs: {a['argv']} | {b['argv']}", None))
    if a["returncode"] != b["returncode"]:
        out.append((f"exit code {a['returncode']} | {b['returncode']}", None))
    if a["stdout_sha256"] != b["stdout_sha256"]:
        out.append(("stdout differs", a.get("stdout_file")))
    fa, fb = a["files"], b["files"]
    for rel in sorted(set(fa) | set(fb)):
        if rel not in fb:
            out.append((f"removed file {rel}", None))
        elif rel not in fa:
            out.append((f"added file {rel}", None))
        elif fa[rel] != fb[rel]:
            out.append((f"file differs {rel}", rel))
    return out


def environment_notes(old: dict[str, Any], new: dict[str, Any]) -> None:
    if old.get("python") != new.get("python"):
        print(f"note: Python {old.get('python')} | {new.get('python')}")
    pa, pb = old.get("packages", {}), new.get("packages", {})
    for name in sorted(set(pa) | set(pb)):
        if pa.get(name) != pb.get(name) and not name.startswith("mixplan"):
            print(f"note: package {name} {pa.get(name)} | {pb.get(name)}")


def compare(old_path: Path, new_path: Path) -> int:
    old, new = (json.loads(Path(p).read_text(encoding="utf-8")) for p in (old_path, new_path))
    environment_notes(old, new)
    ca, cb = ({c["name"]: c for c in s["commands"]} for s in (old, new))
    differing = 0
    for name in [*ca, *(n for n in cb if n not in ca)]:
        if name not in cb or name not in ca:
            print(f"{name}: only in {'old' if name in ca else 'new'} snapshot")
            differing += 1
            continue
        problems = command_differences(ca[name], cb[name])
        if not problems:
            continue
        differing += 1
        print(f"{name}:")
        for message, rel in problems:
            print(f"    {message}")
            if rel is not None:
                explain(old, new, rel)
    total = len(set(ca) | set(cb))
    if differing:
        print(f"{differing} of {total} commands differ")
        return 1
    print(f"identical: all {total} commands (exit codes, stdout, {sum(len(c['files']) for c in ca.values())} files)")
    return 0


# ---------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", type=Path, metavar="DIR", help="source tree to snapshot")
    p.add_argument("--out", type=Path, metavar="SNAP.json", help="where to write the snapshot")
    p.add_argument("--keep", metavar="WORKDIR", help="run in this (new or empty) folder and keep it")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("OLD.json", "NEW.json"), help="compare two snapshots")
    args = p.parse_args(argv)
    if args.compare:
        if args.repo or args.out or args.keep:
            p.error("--compare takes no --repo, --out or --keep")
        return compare(*args.compare)
    if not args.repo or not args.out:
        p.error("give --repo DIR --out SNAP.json (snapshot) or --compare OLD.json NEW.json")
    if not (args.repo / "mixplan" / "__init__.py").is_file():
        p.error(f"--repo {args.repo}: no mixplan/__init__.py there")
    return snapshot(args.repo, args.out, args.keep)


if __name__ == "__main__":
    sys.exit(main())
