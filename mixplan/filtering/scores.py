r"""Bucketing real scores: cut-offs and sizes of the buckets a keep-fraction filter makes.

Pure computation (:func:`manifest_snippet`, :func:`count_tokens`; :func:`bucket_scores` lives with the
buckets in :mod:`mixplan.data.buckets`, re-exported here) and a thin reader (:func:`read_scores`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._checks import show_cell
from ..data.buckets import SIZE_TOLERANCE, bucket_scores, score_spec
from ..data.composite import composite_scores, numeric_column
from ..exceptions import ValidationError

__all__ = ["bucket_scores", "manifest_snippet", "read_documents", "read_scores", "count_tokens"]


def count_tokens(texts: Sequence[Any], how: str = "bytes") -> np.ndarray:
    """Token counts of texts: UTF-8 ``bytes`` (what the demo study counts) or whitespace ``words``."""
    if how == "bytes":
        return np.array([len(str(t).encode("utf-8")) for t in texts], dtype=float)
    if how == "words":
        return np.array([len(str(t).split()) for t in texts], dtype=float)
    raise ValidationError(f"count {how!r} is not known; use 'bytes' or 'words'")


def manifest_snippet(table: pd.DataFrame, *, pool: str, score: str, total_tokens: float | None = None,
                     total_documents: int | None = None, higher_is_better: bool = True, fit: Any = None,
                     score_note: str | None = None) -> str:
    """The ``[pools.POOL]`` TOML of a :func:`bucket_scores` table, ready to paste into a manifest.

    Bucket sizes are written as measured; ``size_tolerance`` is set just above the largest gap between
    a bucket's token share and its document share, so the manifest loads (the loader checks them).
    ``fit`` (a :class:`mixplan.filtering.planner.FilterFit` of these buckets) adds its law (``objective``,
    ``a``, ``d``, ``unit``) and each bucket's fitted ``b`` and ``tau``, which the planner's "plan, then
    filter" baseline and ``mixplan filter`` without ``--runs`` read. ``score_note`` is written as a comment
    under ``score`` (e.g. what a composite score is).
    """
    lines = [f"[pools.{pool}]"]
    if total_tokens is not None:
        lines.append(f"tokens = {total_tokens:.10g}")
    if total_documents is not None:
        lines.append(f"samples = {int(total_documents)}")
    lines.append(f'score = "{score}"')
    if score_note:
        lines.append(f"# {score}: {score_note}")
    if not higher_is_better:
        lines.append("higher_is_better = false")
    if "token_share" in table and total_tokens:
        prev = np.r_[0.0, table["top"].to_numpy()[:-1]]
        share = table["top"].to_numpy() - prev
        gap = float(np.max(np.abs(table["token_share"].to_numpy() / share - 1)))
        if gap > SIZE_TOLERANCE:
            # Quality scores correlate with length: a document share is then not the token share.
            lines.append(f"size_tolerance = {math.ceil(gap * 100 + 1) / 100:g}   # token shares differ from "
                         "document shares by up to " f"{100 * gap:.1f}%")
    fitted = {}
    if fit is not None:
        lines += ["", f"[pools.{pool}.law]", f'objective = "{fit.objective}"', f"a = {fit.a:.10g}", f"d = {fit.d:.10g}",
                  f'unit = "{fit.unit}"']
        fitted = {b.name: b for b in fit.buckets}
    for row in table.itertuples(index=False):
        lines += ["", f"[[pools.{pool}.bucket]]", f'name = "{row.bucket}"', f"top = {row.top:.10g}",
                  f"# cutoff: {score} {'>=' if higher_is_better else '<='} {row.cutoff:.10g}"]
        if "tokens" in table:
            lines.append(f"tokens = {row.tokens:.10g}")
        lines.append(f"samples = {int(row.documents)}")
        if row.bucket in fitted:
            lines += [f"b = {fitted[row.bucket].b:.10g}", f"tau = {fitted[row.bucket].tau:.10g}"]
    return "\n".join(lines) + "\n"


def read_documents(path: str | Path) -> pd.DataFrame:
    """A table of documents (CSV, TSV, Parquet, JSONL; or an Arrow file written by ``datasets``)."""
    from .._io import read_table

    path = Path(path)
    if path.suffix.lower() != ".arrow":
        return read_table(path)
    try:
        import datasets
    except ImportError:
        raise ValidationError(f"{path}: reading a datasets Arrow file needs the 'datasets' package "
                              "(pip install datasets), or export the table to Parquet") from None
    if not path.is_file():
        raise ValidationError(f"{path}: no such file")
    try:
        return datasets.Dataset.from_file(str(path)).to_pandas()
    except Exception as exc:  # noqa: BLE001 -- any reader failure is a file that is not a datasets Arrow table
        raise ValidationError(f"{path}: cannot be read as a datasets Arrow file: {exc}".splitlines()[0]) from None


def read_scores(path: str | Path, score: str, *, tokens_column: str | None = None, text_column: str | None = None,
                count: str = "bytes") -> tuple[np.ndarray, np.ndarray | None]:
    """Scores (and token counts) of the documents in a table (CSV, TSV, Parquet, JSONL; or an Arrow file
    written by ``datasets``). ``score`` is a column, or a composite spec such as ``0.7*dclm + 0.3*fasttext``
    (:func:`mixplan.data.composite.composite_scores`: a weighted sum of the columns' rank-based normal
    scores over these documents). Token counts come from ``tokens_column``, or are counted from
    ``text_column`` (:func:`count_tokens`), or are ``None``."""
    path = Path(path)
    frame = read_documents(path)
    cols = [str(c) for c in frame.columns]
    # a column (any name), else a composite spec; a lone column with weight 1 ('1*q') is that column
    comp = None if score in cols else score_spec(score, (), str(path), "--score")
    column = score if comp is None else comp.spec if comp.single else None
    for flag, col in (("--score", column), ("--tokens-column", tokens_column), ("--text-column", text_column)):
        if col is not None and col not in frame.columns:
            raise ValidationError(f"{path}: no column {col!r} ({flag}); columns are {cols}")
    if column is not None:
        values = numeric_column(frame, column, f"{path}: ")
    else:
        values = composite_scores(frame, score, f"{path}: ")  # names the unknown column and the known ones
    tokens = None
    if tokens_column is not None:
        tokens = pd.to_numeric(frame[tokens_column], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(tokens) | (tokens < 0))
        if len(bad):
            raise ValidationError(f"{path}: row {int(bad[0]) + 1}, column {tokens_column!r}: "
                                  f"{show_cell(frame[tokens_column].iloc[bad[0]])} is not a token count >= 0")
    elif text_column is not None:
        tokens = count_tokens(frame[text_column].tolist(), count)
    return values, tokens
