"""Proxy-run tables: mixture weights in, measured metrics out.

The canonical layout is one table per study (CSV, TSV, Parquet or JSON lines) with

* ``run_id`` — unique identifier of the run;
* ``w_<pool>`` — one column per pool: the run's mixture weight (finite, >= 0, summing to 1);
* ``params``, ``tokens`` — optional: model size and tokens trained;
* ``unique_tokens_<pool>`` / ``subsample_fraction`` — optional: the unique tokens of a pool the run could
  read, when it trained on a subsample (repetition-matched runs, ``mixplan design --match-budget``):
  the run read that pool ``w * tokens / unique_tokens`` times (see :meth:`RunTable.unique_tokens`);
* any metric columns (losses, accuracies, ...). Other columns are kept but ignored unless named.

Two peer layouts are read as well: RegMix's (a mixture CSV with ``index`` and one column per
domain + a loss CSV keyed by ``index``) and olmix's (``ratios.csv`` + ``metrics.csv`` keyed by
``run``; its ``source:topic`` domain names become pools ``source_topic``, :func:`mixplan.data.olmix.pool_name`).
Every rule violation raises :class:`~mixplan.exceptions.ValidationError` naming the file,
the row (1-based data row, and its ``run_id``) and the column.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .._checks import show_cell
from .._io import read_table, table_columns
from ..exceptions import ValidationError
from .olmix import pool_names
from .pools import PoolSet

__all__ = ["RunTable", "read_runs", "UNIQUE_PREFIX", "SUBSAMPLE_COLUMN", "select_rows", "pool_coverage", "coverage_table", "read_regmix_layout", "read_olmix_layout", "WEIGHT_PREFIX",
           "SUM_TOLERANCE"]

WEIGHT_PREFIX = "w_"
#: How far a row's weights may sum from 1 before it is an error (or renormalised on request).
SUM_TOLERANCE = 1e-6
#: Pools a runs table may mix unless the caller raises the limit (``--max-pools``): checked from the header,
#: before the table is read. Measured (200 runs, 2-core machine): ``fit --model auto`` takes 15 s at 1,000
#: and at 2,000 pools; at 10,000 reading and checking the table alone takes 13 s, a ridge fit 21 s, and no
#: proxy study has the runs to fit that many weights (the models need about as many runs as pools).
MAX_POOLS = 2000
#: A repetition-matched run's unique tokens of each pool (it trained on a subsample of the pool) ...
UNIQUE_PREFIX = "unique_tokens_"
#: ... or the one fraction of every pool it kept (for pools without their own column).
SUBSAMPLE_COLUMN = "subsample_fraction"
_RESERVED = {"run_id", "params", "tokens", SUBSAMPLE_COLUMN}


@dataclass(frozen=True)
class RunTable:
    """A validated table of proxy runs.

    Attributes
    ----------
    frame : pandas.DataFrame
        All columns, in file order; ``w_<pool>`` columns hold weights that sum to 1.
    pools : list of str
        Pool names, in the order of the manifest (or of the columns when no manifest is given).
    source : str
        Where the table came from (for messages and reports).
    """

    frame: pd.DataFrame
    pools: list[str]
    source: str = "runs"
    #: 1-based data-row number of each run in its file (differs from the position after --where).
    row_numbers: tuple[int, ...] = ()
    #: Every run id in the file, also those --where left out (new ids must not reuse them); empty = run_ids.
    file_run_ids: tuple[str, ...] = ()

    def row(self, i: int) -> int:
        return self.row_numbers[i] if self.row_numbers else i + 1

    def describe_row(self, i: int) -> str:
        """Run ``i`` as messages name it: its row in the file and its run id."""
        return f"row {self.row(i)} (run_id {self.run_ids[i]!r})"

    @property
    def weight_columns(self) -> list[str]:
        return [WEIGHT_PREFIX + p for p in self.pools]

    @property
    def weights(self) -> np.ndarray:
        """Mixture weights, shape (n_runs, n_pools)."""
        return self.frame[self.weight_columns].to_numpy(dtype=float)

    @property
    def run_ids(self) -> list[str]:
        return self.frame["run_id"].astype(str).tolist()

    @property
    def metric_columns(self) -> list[str]:
        """Numeric columns that are neither weights nor reserved (run_id, params, tokens)."""
        skip = set(self.weight_columns) | _RESERVED | {UNIQUE_PREFIX + p for p in self.pools}
        return [c for c in self.frame.columns
                if c not in skip and pd.api.types.is_numeric_dtype(self.frame[c])]

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def subsampled(self) -> bool:
        """Whether any run trained on a subsample of a pool (``unique_tokens_<pool>`` or ``subsample_fraction``)."""
        return SUBSAMPLE_COLUMN in self.frame.columns or any(UNIQUE_PREFIX + p in self.frame.columns
                                                             for p in self.pools)

    def unique_tokens(self, pool_tokens: Sequence[float] | np.ndarray) -> np.ndarray:
        """Each run's unique tokens of each pool, (n_runs, n_pools): the pool's ``unique_tokens_<pool>``
        column where the table has one, else ``subsample_fraction`` x the pool's ``pool_tokens`` (the
        manifest's), else the whole pool. A run read pool i ``w_i * tokens / unique_tokens_i`` times.
        Values must be positive and at most the whole pool (a subsample, not more data)."""
        full = np.asarray(pool_tokens, dtype=float)
        if full.shape != (len(self.pools),):
            raise ValidationError(f"{self.source}: {len(full)} pool sizes for {len(self.pools)} pools")
        out = np.broadcast_to(full, (len(self), len(full))).copy()
        cols = [(SUBSAMPLE_COLUMN, None)] + [(UNIQUE_PREFIX + p, j) for j, p in enumerate(self.pools)]
        for col, j in cols:
            if col not in self.frame.columns:
                continue
            v = pd.to_numeric(self.frame[col], errors="coerce").to_numpy(dtype=float)
            limit = 1.0 if j is None else full[j]
            bad = np.flatnonzero(~np.isfinite(v) | (v <= 0) | (v > limit * (1 + 1e-9)))
            if bad.size:
                i = int(bad[0])
                what = "a fraction in (0, 1]" if j is None else f"in (0, {full[j]:.6g}] (the pool's tokens)"
                raise ValidationError(f"{self.source}: row {self.row(i)} (run_id {self.run_ids[i]!r}), column {col!r}: "
                                      f"{show_cell(self.frame[col].iloc[i])} must be {what}: the run's subsample of "
                                      "the pool")
            if j is None:
                own = [UNIQUE_PREFIX + p in self.frame.columns for p in self.pools]
                out[:, ~np.array(own)] = v[:, None] * full[~np.array(own)]
            else:
                out[:, j] = v
        return out

    def metric(self, column: str) -> np.ndarray:
        """One metric column as floats, checked: present, numeric, finite in every row."""
        if column not in self.frame.columns:
            close = [c for c in self.frame.columns if column.lower() in c.lower()][:5]
            hint = f"; similar: {close}" if close else f"; metric columns are {self.metric_columns[:12]}"
            raise ValidationError(f"{self.source}: no column {column!r}{hint}")
        if column in self.weight_columns or column == "run_id":
            raise ValidationError(f"{self.source}: column {column!r} is not a metric")
        values = pd.to_numeric(self.frame[column], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            i = int(bad[0])
            raw = self.frame[column].iloc[i]
            raise ValidationError(
                f"{self.source}: row {self.row(i)} (run_id {self.run_ids[i]!r}), column {column!r}: "
                f"{show_cell(raw)} is not a finite number"
                + (f" ({bad.size} such rows)" if bad.size > 1 else "")
                + "; fix the value or drop the run")
        return values

    def subset(self, mask: np.ndarray) -> "RunTable":
        mask = np.asarray(mask, bool)
        rows = tuple(r for r, keep in zip(self.row_numbers or range(1, len(self) + 1), mask) if keep)
        return replace(self, frame=self.frame.loc[mask].reset_index(drop=True), pools=list(self.pools), row_numbers=rows)


def read_runs(path: str | os.PathLike[str], pools: PoolSet | None = None, *, renormalize: bool = False,
              metrics: str | os.PathLike[str] | None = None, layout: str = "auto",
              where: Mapping[str, str] | None = None, max_pools: int | None = MAX_POOLS) -> RunTable:
    """Read and validate a proxy-run table.

    Parameters
    ----------
    path : path
        The runs table (canonical layout), or the mixture file of a two-file layout.
    pools : PoolSet, optional
        When given, the ``w_`` columns must match its pools exactly; weights are ordered like it.
    renormalize : bool
        Divide each row's weights by their sum instead of rejecting rows that do not sum to 1.
    metrics : path, optional
        The metrics file of a two-file layout (RegMix loss CSV or olmix ``metrics.csv``).
    layout : {"auto", "table", "regmix", "olmix"}
        ``auto`` picks ``table`` without ``metrics`` and detects the two-file layout otherwise.
    where : mapping, optional
        Keep only rows whose column equals the value (compared as text), e.g. ``{"split": "train"}``.
    max_pools : int or None
        Refuse, from the header alone, a table mixing more pools than this (:data:`MAX_POOLS`; None: no limit).
    """
    if layout not in {"auto", "table", "regmix", "olmix"}:
        raise ValidationError(f"unknown runs layout {layout!r}; use auto, table, regmix or olmix")
    if metrics is None and layout in {"regmix", "olmix"}:
        raise ValidationError(f"layout {layout!r} needs a metrics file (--metrics PATH)")
    header = table_columns(path) if max_pools is not None else None
    if header is not None:
        n = sum(str(c).startswith(WEIGHT_PREFIX) for c in header) if metrics is None else len(header) - 1
        if n > max_pools:
            raise ValidationError(
                f"{path}: {n} pools; mixplan handles at most {max_pools} by default (past that its models need "
                "more runs than a proxy study has, and every step takes minutes): merge related pools into at "
                f"most {max_pools} (sum their weight columns), or pass --max-pools {n} to go ahead anyway")
    if metrics is not None:
        mix, met = read_table(path), read_table(metrics)
        if layout == "auto":
            layout = "olmix" if "run" in mix.columns and "run" in met.columns else "regmix"
        join = _olmix_frame if layout == "olmix" else _regmix_frame
        frame = join(mix, met, str(path), str(metrics))
        source = f"{path} + {metrics}"
    else:
        frame, source = read_table(path), str(path)
    file_ids = tuple(frame["run_id"].astype(str)) if where and "run_id" in frame.columns else ()
    frame, source = select_rows(frame, where, source)
    table = validate_runs(frame, pools, renormalize=renormalize, source=source)
    return replace(table, file_run_ids=file_ids) if file_ids else table


def select_rows(frame: pd.DataFrame, where: Mapping[str, str] | None, source: str) -> tuple[pd.DataFrame, str]:
    """The rows whose column equals the value (compared as text) for every ``column: value`` of
    ``where`` (``--where COL=VALUE``), keeping the file's index; and ``source`` naming the selection."""
    for column, value in (where or {}).items():
        if column not in frame.columns:
            raise ValidationError(f"{source}: cannot select on {column!r}: no such column")
        frame = frame[frame[column].astype(str) == str(value)]
        if frame.empty:
            raise ValidationError(f"{source}: no row has {column} == {value!r}")
        source = f"{source} [{column}={value}]"
    return frame, source


def read_regmix_layout(mixture_csv: str | os.PathLike[str], loss_csv: str | os.PathLike[str],
                       pools: PoolSet | None = None, renormalize: bool = False) -> RunTable:
    """Read RegMix's two-file layout (``train_mixture_1m.csv`` + ``train_pile_loss_1m.csv``)."""
    return read_runs(mixture_csv, pools, renormalize=renormalize, metrics=loss_csv, layout="regmix")


def read_olmix_layout(ratios_csv: str | os.PathLike[str], metrics_csv: str | os.PathLike[str],
                      pools: PoolSet | None = None, renormalize: bool = False) -> RunTable:
    """Read olmix's two-file layout (``ratios.csv`` + ``metrics.csv``, keyed by ``run``)."""
    return read_runs(ratios_csv, pools, renormalize=renormalize, metrics=metrics_csv, layout="olmix")


def validate_runs(frame: pd.DataFrame, pools: PoolSet | None = None, *, renormalize: bool = False,
                  source: str = "runs") -> RunTable:
    """Check a runs frame against the rules of the module docstring; return a :class:`RunTable`."""
    frame = frame.copy()
    if len(frame) == 0:
        raise ValidationError(f"{source}: the table has no rows")
    # Row numbers as in the file (1-based data rows), also after --where dropped some rows.
    rownum = (frame.index.to_numpy() + 1) if pd.api.types.is_integer_dtype(frame.index) else np.arange(1, len(frame) + 1)
    if "run_id" not in frame.columns:
        raise ValidationError(f"{source}: no 'run_id' column; add one with a unique id per run")
    ids = frame["run_id"]
    if ids.isna().any():
        i = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise ValidationError(f"{source}: row {rownum[i]}, column 'run_id': empty run id")
    frame["run_id"] = ids.astype(str)
    dup = frame["run_id"].duplicated(keep="first").to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero((frame["run_id"] == frame["run_id"].iloc[i]).to_numpy())[0])
        raise ValidationError(f"{source}: row {rownum[i]}, column 'run_id': {frame['run_id'].iloc[i]!r} "
                              f"repeats row {rownum[first]}; run ids must be unique")
    wcols = [c for c in frame.columns if isinstance(c, str) and c.startswith(WEIGHT_PREFIX)]
    if not wcols:
        raise ValidationError(f"{source}: no weight columns; name them {WEIGHT_PREFIX}<pool>, one per pool")
    found = [c[len(WEIGHT_PREFIX):] for c in wcols]
    if pools is not None:
        missing = [p for p in pools.names if p not in found]
        unknown = [p for p in found if p not in pools.names]
        where = f"{source} vs {pools.path or 'the pool manifest'}"
        if unknown:
            raise ValidationError(f"{where}: column(s) {[WEIGHT_PREFIX + p for p in unknown]} name no pool "
                                  f"in the manifest (pools: {pools.names}); rename the column or add the pool")
        if missing:
            raise ValidationError(f"{where}: no weight column for pool(s) {missing}; add "
                                  f"{[WEIGHT_PREFIX + p for p in missing]} (0 where a run did not use the pool)")
        names = pools.names
    else:
        names = found
    cols = [WEIGHT_PREFIX + p for p in names]
    # Columns pandas already read as floats need no conversion (setting thousands of columns one by one
    # costs seconds); the others are converted, and a cell that is not a number is named.
    converted = {}
    for c in cols:
        numeric = frame[c] if frame[c].dtype.kind == "f" else pd.to_numeric(frame[c], errors="coerce")
        bad = np.flatnonzero(~np.isfinite(numeric.to_numpy(dtype=float)))
        if bad.size:
            i = int(bad[0])
            raise ValidationError(f"{source}: row {rownum[i]} (run_id {frame['run_id'].iloc[i]!r}), column {c!r}: "
                                  f"weight {show_cell(frame[c].iloc[i])} is not a finite number")
        if numeric is not frame[c]:
            converted[c] = numeric.astype(float)
    for c, values in converted.items():
        frame[c] = values
    w = frame[cols].to_numpy(dtype=float)
    neg = np.argwhere(w < 0)
    if neg.size:
        i, j = (int(v) for v in neg[0])
        raise ValidationError(f"{source}: row {rownum[i]} (run_id {frame['run_id'].iloc[i]!r}), column {cols[j]!r}: "
                              f"weight {w[i, j]:g} is negative; weights must be >= 0")
    # Shares are in [0, 1]: a larger weight is a typo or a count (then --renormalize says so).
    high = np.argwhere(w > 1 + SUM_TOLERANCE) if not renormalize else np.empty((0, 2))
    if high.size:
        i, j = (int(v) for v in high[0])
        raise ValidationError(f"{source}: row {rownum[i]} (run_id {frame['run_id'].iloc[i]!r}), column {cols[j]!r}: "
                              f"weight {w[i, j]:g} is above 1; weights are shares in [0, 1] summing to 1 (pass "
                              "--renormalize if the rows hold counts or percentages)")
    with np.errstate(over="ignore"):
        sums = w.sum(axis=1)
    huge = np.flatnonzero(~np.isfinite(sums))
    if huge.size:  # only with --renormalize (above, weights are at most 1): every weight would become 0
        i = int(huge[0])
        j = int(np.argmax(w[i]))
        raise ValidationError(f"{source}: row {rownum[i]} (run_id {frame['run_id'].iloc[i]!r}), column {cols[j]!r}: "
                              f"weight {w[i, j]:g} makes the row's sum overflow (beyond the largest float, about "
                              "1.8e308); scale the row's weights down")
    zero = np.flatnonzero(sums <= 0)
    if zero.size:
        i = int(zero[0])
        shown = ", ".join(cols) if len(cols) <= 6 else f"{cols[0]}, ..., {cols[-1]}"
        raise ValidationError(f"{source}: row {rownum[i]} (run_id {frame['run_id'].iloc[i]!r}): all weights are 0 "
                              f"(columns {shown}); a run trains on some pool: fix its weights or drop the run")
    off = np.flatnonzero(np.abs(sums - 1.0) > SUM_TOLERANCE)
    if off.size and not renormalize:
        i = int(off[0])
        raise ValidationError(
            f"{source}: row {rownum[i]} (run_id {frame['run_id'].iloc[i]!r}): weights sum to {sums[i]:.9g}, "
            f"not 1 (tolerance {SUM_TOLERANCE:g}; {off.size} such rows); fix them or pass --renormalize "
            "to divide each row by its sum")
    if renormalize:
        frame[cols] = w / sums[:, None]
    for c in ("params", "tokens"):
        if c in frame.columns:
            v = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
            bad = np.flatnonzero(~(np.isfinite(v) & (v > 0)))
            if bad.size:
                i = int(bad[0])
                raise ValidationError(f"{source}: row {rownum[i]} (run_id {frame['run_id'].iloc[i]!r}), column {c!r}: "
                                      f"{show_cell(frame[c].iloc[i])} must be a positive number")
            frame[c] = v
    # Keep the manifest's pool order; other columns stay where they were.
    rest = [c for c in frame.columns if c not in cols]
    frame = frame[["run_id"] + cols + [c for c in rest if c != "run_id"]].reset_index(drop=True)
    return RunTable(frame, list(names), source, tuple(int(r) for r in rownum))


def pool_coverage(W: np.ndarray, names: list[str]) -> dict[str, dict[str, float]]:
    """How much a set of runs exercises each pool: runs with a non-zero weight, mean and max weight."""
    return {p: {"runs_nonzero": int((W[:, i] > 0).sum()), "mean_weight": float(W[:, i].mean()),
                "max_weight": float(W[:, i].max())} for i, p in enumerate(names)}


def coverage_table(coverage: dict[str, dict[str, float]]) -> list[str]:
    """:func:`pool_coverage` as text lines."""
    lines = [f"{'pool':<24} {'runs > 0':>9} {'mean w':>8} {'max w':>8}"]
    lines += [f"{p:<24} {c['runs_nonzero']:>9} {c['mean_weight']:>8.4f} {c['max_weight']:>8.4f}"
              for p, c in coverage.items()]
    return lines


def check_enough_runs(n_runs: int, n_params: int, per_param: float, what: str, where: str,
                      hint: str = "add proxy runs or choose a model with fewer parameters") -> None:
    """Refuse to fit ``n_params`` parameters from fewer than ``per_param`` runs each."""
    need = int(np.ceil(per_param * n_params))
    if n_runs < need:
        raise ValidationError(
            f"{where} {n_runs} runs: too few to fit {what} ({n_params} parameters need at least "
            f"{need} runs, {per_param:g} per parameter); {hint}")


def _strip_common_prefix(names: Sequence[str]) -> list[str]:
    prefix = os.path.commonprefix(list(names)) if len(names) > 1 else ""
    prefix = prefix[: prefix.rfind("_") + 1] if "_" in prefix else ""
    return [n[len(prefix):] for n in names]


_REGMIX_LOSS = re.compile(r"^(?:metric/)?(?:the_pile_)?(.+?)_val_loss$")


def _regmix_frame(mix: pd.DataFrame, met: pd.DataFrame, mix_path: str, met_path: str) -> pd.DataFrame:
    for frame, p in ((mix, mix_path), (met, met_path)):
        if "index" not in frame.columns:
            raise ValidationError(f"{p}: RegMix layout needs an 'index' column joining mixtures and losses")
    domains = [c for c in mix.columns if c != "index"]
    mix = mix.rename(columns=dict(zip(domains, [WEIGHT_PREFIX + d for d in _strip_common_prefix(domains)])))
    met = met.rename(columns={c: f"loss_{m.group(1)}" for c in met.columns
                              if (m := _REGMIX_LOSS.match(str(c)))})
    return _join(mix, met, "index", mix_path, met_path).rename(columns={"index": "run_id"})


def _olmix_frame(mix: pd.DataFrame, met: pd.DataFrame, mix_path: str, met_path: str) -> pd.DataFrame:
    meta = {"run", "name", "index"} | {c for c in mix.columns if str(c).startswith("Unnamed")}
    domains = [c for c in mix.columns if c not in meta]
    # olmix joins the levels of a domain with ':' (source:topic); pool names cannot hold it (see .olmix)
    mix = mix.rename(columns={d: WEIGHT_PREFIX + p for d, p in pool_names(map(str, domains), mix_path).items()})
    mix = mix.drop(columns=[c for c in mix.columns if str(c).startswith("Unnamed")])
    met = met.drop(columns=[c for c in met.columns if str(c).startswith("Unnamed") or c in {"name", "index"}])
    frame = _join(mix, met, "run", mix_path, met_path)
    frame.insert(0, "run_id", frame["name"] if "name" in frame and frame["name"].is_unique else frame["run"])
    return frame


def _join(mix: pd.DataFrame, met: pd.DataFrame, key: str, mix_path: str, met_path: str) -> pd.DataFrame:
    if key not in met.columns:
        raise ValidationError(f"{met_path}: no {key!r} column to join with {mix_path}")
    for frame, path in ((mix, mix_path), (met, met_path)):
        dup = frame[key].astype(str).duplicated().to_numpy()
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            raise ValidationError(f"{path}: row {i + 1}, column {key!r}: {show_cell(frame[key].iloc[i])} appears "
                                  "twice; each run needs exactly one row in each file")
    only = sorted(set(mix[key].astype(str)) ^ set(met[key].astype(str)))
    if only:
        raise ValidationError(f"{mix_path} and {met_path}: {len(only)} {key} value(s) appear in only one "
                              f"file (first: {only[0]!r}); both files must list the same runs")
    mix = mix.assign(**{key: mix[key].astype(str)})
    met = met.assign(**{key: met[key].astype(str)})
    return mix.merge(met, on=key, how="inner", validate="one_to_one")
