"""Evaluations in, runs table out: lm-evaluation-harness results, Weights & Biases run exports, and the
peers' layouts (olmix, RegMix) as one canonical runs table (``run_id``, ``w_<pool>``, metrics).

* **lm-evaluation-harness** (``lm_eval --output_path``): one results JSON per evaluation, written as
  ``<output_path>/<model_name_sanitized>/results_<time>.json`` or, for an output path ending in
  ``.json``, ``<stem>_<time>.json`` (lm-eval 0.4, ``loggers/evaluation_tracker.py``). Each task's
  ``"metric,filter"`` entries become columns ``<metric>_<task>`` (filter ``none``) or
  ``<metric>_<filter>_<task>``; their ``"<metric>_stderr,<filter>"`` become ``stderr_<metric>_<task>``
  (so that ``mean(acc_*)`` never averages a standard error). The run a file belongs to is the first
  of its model name, the last part of ``model_args``' ``pretrained=``/``path=``, its file stem (before
  ``_<time>``) and its two parent folders that names a run of the mixtures table. Several files of
  one run are merged (a value measured twice: the newest file's, reported).
* **Weights & Biases** runs table exported as CSV from the web UI: fixed columns (``Name``, ``State``,
  ``Notes``, ``User``, ``Tags``, ``Created``, ``Runtime``, ``Sweep``, ...), then config columns
  (nested keys joined with ``.``) and summary metrics, no prefixes. The mixture is the config columns
  ``<prefix><pool>`` (``--weight-prefix``, detected when one prefix's columns sum to 1 in every run).
  Runs whose ``State`` is not ``finished`` hold partial metrics: left out and listed.
* **olmix** (``ratios.csv`` + ``metrics.csv``) and **RegMix** (mixture + loss CSVs): their layouts
  (:func:`mixplan.data.runs.read_runs`).

Nothing is dropped silently: :class:`ImportReport` lists matched runs, result files or rows with no
mixture, runs with no results, and per metric the runs that lack it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import ValidationError
from .runs import WEIGHT_PREFIX

__all__ = ["ImportReport", "read_lm_eval", "read_mixtures", "read_wandb_csv"]

#: The W&B runs table's own columns (not config, not metrics), as its CSV export names them.
WANDB_FIXED = ("Name", "State", "Notes", "User", "Tags", "Created", "Runtime", "Sweep", "ID", "End Time", "Updated",
               "Hostname", "Agent", "Group", "Job Type", "GPU", "GPU Count", "Commit", "Command", "Description")
_TIME_SUFFIX = re.compile(r"_\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(\.\d+)?$")


@dataclass
class ImportReport:
    """What an import matched and what it could not (every list is reported, nothing dropped silently)."""

    source: str
    matched: dict[str, list[str]] = field(default_factory=dict)  # run_id -> files / rows it came from
    unmatched: list[str] = field(default_factory=list)  # results with no mixture
    without_results: list[str] = field(default_factory=list)  # mixtures with no results
    missing: dict[str, list[str]] = field(default_factory=dict)  # metric column -> runs without it
    replaced: list[str] = field(default_factory=list)  # a value measured twice: which one was kept
    left_out: list[str] = field(default_factory=list)  # rows left out on purpose (unfinished W&B runs)
    higher_is_better: dict[str, bool] = field(default_factory=dict)  # metric column -> direction, when known

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "runs": len(self.matched), "matched": self.matched,
                "unmatched": self.unmatched, "without_results": self.without_results, "missing": self.missing,
                "replaced": self.replaced, "left_out": self.left_out, "higher_is_better": self.higher_is_better}

    def text(self) -> str:
        lines = [f"{len(self.matched)} runs with a mixture and results ({self.source})"]
        for label, items in (("results with no mixture (not imported)", self.unmatched),
                             ("runs of the mixtures with no results", self.without_results),
                             ("left out", self.left_out), ("measured twice (newest kept)", self.replaced)):
            if items:
                lines.append(f"{label}: {len(items)}: " + "; ".join(items[:8]) + (" ..." if len(items) > 8 else ""))
        for col, runs in self.missing.items():
            lines.append(f"metric {col} missing in {len(runs)} run(s): {', '.join(runs[:8])}"
                         + (" ..." if len(runs) > 8 else ""))
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------ mixtures

def read_mixtures(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Each run's mixture: a table with ``run_id`` and ``w_<pool>`` columns (a design's ``mixtures.csv``),
    a design folder, or a folder of run configs (``<run_id>.yaml`` with a ``weights`` mapping, as
    ``mixplan design`` writes them in ``runs/``)."""
    from .._io import read_table

    path = Path(path)
    if path.is_dir():
        if (path / "mixtures.csv").is_file():
            path = path / "mixtures.csv"
        else:
            configs = sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml")) + sorted(path.glob("*.json"))
            if not configs:
                raise ValidationError(f"{path}: no mixtures.csv and no run configs (<run_id>.yaml with weights: ...)")
            return pd.DataFrame([_config_mixture(p) for p in configs])
    frame = read_table(path)
    if "run_id" not in frame.columns or not any(str(c).startswith(WEIGHT_PREFIX) for c in frame.columns):
        raise ValidationError(f"{path}: a mixtures table needs run_id and w_<pool> columns (a design's mixtures.csv)")
    ids = frame["run_id"]
    for bad, what in ((ids.isna(), "empty run id"), (ids.astype(str).duplicated(), "run id repeats an earlier row")):
        if bad.any():  # results are matched to mixtures by run id: a missing or shared one matches wrongly
            i = int(bad.to_numpy().argmax())
            raise ValidationError(f"{path}: row {i + 1}, column 'run_id': {what} ({ids.iloc[i]!r}); each mixture "
                                  "needs its own run id")
    return frame[["run_id"] + [c for c in frame.columns if str(c).startswith(WEIGHT_PREFIX)]].astype({"run_id": str})


def _config_mixture(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ValidationError(f"{path}: cannot be read as a run config ({str(exc).splitlines()[0]})") from None
    weights = doc.get("weights") if isinstance(doc, dict) else None
    if not isinstance(weights, dict) or not weights:
        raise ValidationError(f"{path}: no 'weights' mapping (pool: weight), as mixplan design writes in runs/")
    return {"run_id": str(doc.get("run_id", path.stem))} | {f"{WEIGHT_PREFIX}{k}": v for k, v in weights.items()}


# ------------------------------------------------------------------------------------------ lm-eval

def _lm_eval_names(doc: Mapping[str, Any], path: Path) -> list[str]:
    """The names a results file may give its run, most specific first."""
    names = []
    if doc.get("model_name"):
        names.append(str(doc["model_name"]))
    args = (doc.get("config") or {}).get("model_args")
    if isinstance(args, str):
        args = dict(kv.split("=", 1) for kv in args.split(",") if "=" in kv)
    if isinstance(args, dict):
        for key in ("pretrained", "path", "model", "peft"):
            if args.get(key):
                names.append(str(args[key]).rstrip("/").rsplit("/", 1)[-1])
    names += [_TIME_SUFFIX.sub("", path.stem), path.parent.name, path.parent.parent.name]
    return [n for n in dict.fromkeys(names) if n]


def _lm_eval_metrics(doc: Mapping[str, Any], path: Path) -> tuple[dict[str, float], dict[str, bool]]:
    results = doc.get("results")
    if not isinstance(results, dict):
        raise ValidationError(f"{path}: no 'results' table; not an lm-evaluation-harness results JSON")
    hib = doc.get("higher_is_better") or {}
    values, better = {}, {}
    for task, entry in results.items():
        if not isinstance(entry, dict):
            continue
        for key, value in entry.items():
            metric, sep, filt = str(key).partition(",")
            if not sep or isinstance(value, bool) or not isinstance(value, int | float):
                continue  # alias, name, sample_len, "N/A" standard errors
            stderr = metric.endswith("_stderr")
            base = metric[: -len("_stderr")] if stderr else metric
            col = base if filt == "none" else f"{base}_{filt}"
            col = f"{'stderr_' if stderr else ''}{col}_{task}"
            values[col] = float(value)
            direction = (hib.get(task) or {}).get(base)
            if not stderr and isinstance(direction, bool):
                better[col] = direction
    return values, better


def read_lm_eval(folder: str | os.PathLike[str], mixtures: pd.DataFrame) -> tuple[pd.DataFrame, ImportReport]:
    """A runs table from every lm-evaluation-harness results JSON under ``folder`` (recursively) and each
    run's mixture from ``mixtures`` (:func:`read_mixtures`)."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*.json") if p.is_file())
    if not files:
        raise ValidationError(f"{folder}: no results JSON (lm_eval --output_path writes results_<time>.json files)")
    report = ImportReport(source=str(folder))
    ids = set(mixtures["run_id"].astype(str))
    per_run: dict[str, list[tuple[float, Path, dict[str, float]]]] = {}
    for path in files:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValidationError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(doc, dict) or "results" not in doc:
            report.unmatched.append(f"{path.relative_to(folder)} (not a results file)")
            continue
        values, better = _lm_eval_metrics(doc, path)
        report.higher_is_better |= better
        run = next((n for n in _lm_eval_names(doc, path) if n in ids), None)
        if run is None:
            report.unmatched.append(f"{path.relative_to(folder)} (names {', '.join(_lm_eval_names(doc, path))})")
            continue
        date = doc.get("date")
        per_run.setdefault(run, []).append((float(date) if isinstance(date, int | float) else 0.0, path, values))
    rows = {}
    for run, found in per_run.items():
        merged: dict[str, float] = {}
        origin: dict[str, Path] = {}
        for _, path, values in sorted(found, key=lambda x: (x[0], str(x[1]))):  # oldest first: newest wins
            for col, v in values.items():
                if col in merged and merged[col] != v:
                    report.replaced.append(f"{run} {col}: {v:g} from {path.relative_to(folder)} replaces {merged[col]:g} "
                                           f"from {origin[col].relative_to(folder)}")
                merged[col], origin[col] = v, path
        rows[run] = merged
        report.matched[run] = [str(p.relative_to(folder)) for _, p, _ in found]
    return _assemble(mixtures, rows, report)


def _assemble(mixtures: pd.DataFrame, rows: Mapping[str, Mapping[str, float]], report: ImportReport
              ) -> tuple[pd.DataFrame, ImportReport]:
    """Mixtures joined with each run's metrics, in the mixtures' order; runs with no results listed."""
    if not rows:
        raise ValidationError(f"{report.source}: no result matches a run of the mixtures (run ids "
                              f"{', '.join(map(str, mixtures['run_id'][:5]))}...); results name "
                              + (report.unmatched[0] if report.unmatched else "nothing"))
    mix = mixtures.assign(run_id=mixtures["run_id"].astype(str))
    report.without_results = [r for r in mix["run_id"] if r not in rows]
    metrics = pd.DataFrame.from_dict(rows, orient="index")
    metrics = metrics[sorted(metrics.columns)]
    frame = mix[mix["run_id"].isin(rows)].merge(metrics, left_on="run_id", right_index=True, how="left")
    for col in metrics.columns:
        lacking = frame.loc[frame[col].isna(), "run_id"].tolist()
        if lacking:
            report.missing[col] = lacking
    return frame.reset_index(drop=True), report


# ------------------------------------------------------------------------------------------ W&B

def _detect_prefix(frame: pd.DataFrame, source: str) -> str:
    """The config prefix whose columns are the mixture: its numeric columns sum to 1 in every run."""
    groups: dict[str, list[str]] = {}
    for c in frame.columns:
        if "." in str(c):
            groups.setdefault(str(c).rsplit(".", 1)[0] + ".", []).append(c)
    fits = []
    for prefix, cols in groups.items():
        values = frame[cols].apply(pd.to_numeric, errors="coerce")
        if len(cols) > 1 and values.notna().all().all() and np.allclose(values.sum(axis=1), 1.0, atol=1e-4):
            fits.append(prefix)
    if len(fits) != 1:
        raise ValidationError(f"{source}: {'no' if not fits else 'more than one'} config prefix holds weights that sum "
                              f"to 1 in every run{' (' + ', '.join(fits) + ')' if fits else ''}; name it with "
                              "--weight-prefix, e.g. --weight-prefix mixture.")
    return fits[0]


def read_wandb_csv(path: str | os.PathLike[str], weight_prefix: str | None = None, run_column: str = "Name",
                   include_unfinished: bool = False, mixtures: pd.DataFrame | None = None
                   ) -> tuple[pd.DataFrame, ImportReport]:
    """A runs table from a W&B runs CSV export: the mixture from config columns ``<weight_prefix><pool>``
    (detected when not given) or from ``mixtures`` (run ids = the ``run_column`` values)."""
    from .._io import read_table

    path = Path(path)
    frame = read_table(path)
    report = ImportReport(source=str(path))
    if run_column not in frame.columns:
        raise ValidationError(f"{path}: no column {run_column!r} (the run names); columns: "
                              f"{', '.join(map(str, frame.columns[:12]))}; give --run-column")
    frame = frame.assign(**{run_column: frame[run_column].astype(str)})
    if "State" in frame.columns and not include_unfinished:
        done = frame["State"].astype(str) == "finished"
        report.left_out = [f"{r} (State {s})" for r, s in zip(frame.loc[~done, run_column], frame.loc[~done, "State"])]
        frame = frame[done]
    if mixtures is None:
        prefix = weight_prefix or _detect_prefix(frame, str(path))
        wcols = [c for c in frame.columns if str(c).startswith(prefix)]
        if not wcols:
            raise ValidationError(f"{path}: no column starts with --weight-prefix {prefix!r}")
        mix = frame[[run_column] + wcols].rename(columns={run_column: "run_id"} | {
            c: WEIGHT_PREFIX + str(c)[len(prefix):] for c in wcols})
        metric_cols = [c for c in frame.columns if c not in wcols and c != run_column and c not in WANDB_FIXED]
    else:
        mix = mixtures
        metric_cols = [c for c in frame.columns if c != run_column and c not in WANDB_FIXED]
    rows = {}
    known = set(mix["run_id"].astype(str))
    # row numbers as in the file: the header is line 1 (read_table's index counts the data rows from 0)
    for i, (run, *values) in zip(frame.index + 2, frame[[run_column] + metric_cols].itertuples(index=False)):
        if run not in known:
            report.unmatched.append(f"row {i} ({run})")
            continue
        numeric = {c: float(v) for c, v in zip(metric_cols, pd.to_numeric(pd.Series(values, dtype=object),
                                                                         errors="coerce")) if np.isfinite(v)}
        rows[run] = numeric
        report.matched[run] = [f"row {i}"]
    return _assemble(mix, rows, report)
