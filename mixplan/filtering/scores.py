r"""Bucketing real scores: cut-offs and sizes of the buckets a keep-fraction filter makes.

Pure computation (:func:`bucket_scores`, :func:`manifest_snippet`, :func:`count_tokens`) and a thin
reader (:func:`read_scores`); the buckets a manifest declares are :mod:`mixplan.data.buckets`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.buckets import SIZE_TOLERANCE, percent_label
from ..exceptions import ValidationError

__all__ = ["bucket_scores", "manifest_snippet", "read_scores", "count_tokens"]


def count_tokens(texts: Sequence[Any], how: str = "bytes") -> np.ndarray:
    """Token counts of texts: UTF-8 ``bytes`` (what the demo study counts) or whitespace ``words``."""
    if how == "bytes":
        return np.array([len(str(t).encode("utf-8")) for t in texts], dtype=float)
    if how == "words":
        return np.array([len(str(t).split()) for t in texts], dtype=float)
    raise ValidationError(f"count {how!r} is not known; use 'bytes' or 'words'")


def bucket_scores(scores: Any, fractions: Sequence[float], *, tokens: Any = None,
                  higher_is_better: bool = True) -> pd.DataFrame:
    """Cut documents into buckets by score: bucket ``i`` holds the documents ranked in the top
    ``fractions[i-1]..fractions[i]`` (cumulative fractions of documents, increasing, in (0, 1]).

    Ranking is by score (best first), ties broken by position so that the cut is exact and
    deterministic. Returns one row per bucket: ``bucket``, ``top``, ``cutoff`` (the lowest score kept,
    for ``higher_is_better``), ``documents``, ``tokens`` (if ``tokens`` is given), ``token_share`` of the
    whole pool, ``score_max`` and ``tied_at_cutoff`` (documents outside the bucket with exactly its
    cut-off score: a filter by ``score >= cutoff`` alone would also keep them).
    """
    s = np.asarray(scores, dtype=float)
    if s.ndim != 1 or s.size == 0:
        raise ValidationError("bucket_scores: scores must be a non-empty 1-D array (one score per document)")
    bad = np.flatnonzero(~np.isfinite(s))
    if len(bad):
        raise ValidationError(f"bucket_scores: score of document {int(bad[0]) + 1} is {s[bad[0]]!r}; every document "
                              "needs a finite score (drop or re-score the others first)")
    f = np.asarray(fractions, dtype=float)
    if f.ndim != 1 or f.size == 0 or not np.all(np.isfinite(f)) or np.any(f <= 0) or np.any(f > 1):
        raise ValidationError(f"fractions {list(fractions)} must be cumulative top fractions in (0, 1], e.g. "
                              "0.1,0.2,0.3")
    if np.any(np.diff(f) <= 0):
        raise ValidationError(f"fractions {list(fractions)} must be strictly increasing (cumulative: top 10%, top "
                              "20%, ...); buckets may not overlap")
    t = None
    if tokens is not None:
        t = np.asarray(tokens, dtype=float)
        if t.shape != s.shape:
            raise ValidationError("bucket_scores: tokens must have one count per document")
        bad = np.flatnonzero(~np.isfinite(t) | (t < 0))
        if len(bad):
            raise ValidationError(f"bucket_scores: token count of document {int(bad[0]) + 1} is {t[bad[0]]!r}; counts "
                                  "must be finite and >= 0")
    n = s.size
    key = -s if higher_is_better else s
    order = np.argsort(key, kind="stable")  # best first; ties in document order
    ends = np.round(f * n).astype(int)
    starts = np.r_[0, ends[:-1]]
    rows = []
    for i, (lo, hi, top) in enumerate(zip(starts, ends, f)):
        if hi <= lo:
            raise ValidationError(f"fractions: bucket {i + 1} (top {percent_label(starts[i] / n)}-{percent_label(top)}%) holds no "
                                  f"document of {n}; use coarser fractions or more documents")
        idx = order[lo:hi]
        cut = float(s[idx].min() if higher_is_better else s[idx].max())
        rest = order[hi:]
        row = {"bucket": f"top{percent_label(top)}" if i == 0 else f"top{percent_label(f[i - 1])}_{percent_label(top)}", "top": float(top),
               "cutoff": cut, "documents": int(hi - lo),
               "score_max": float(s[idx].max() if higher_is_better else s[idx].min()),
               "tied_at_cutoff": int(np.sum(s[rest] == cut))}
        if t is not None:
            row["tokens"] = float(t[idx].sum())
            row["token_share"] = float(t[idx].sum() / t.sum()) if t.sum() > 0 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def manifest_snippet(table: pd.DataFrame, *, pool: str, score: str, total_tokens: float | None = None,
                     total_documents: int | None = None, higher_is_better: bool = True, fit: Any = None) -> str:
    """The ``[pools.POOL]`` TOML of a :func:`bucket_scores` table, ready to paste into a manifest.

    Bucket sizes are written as measured; ``size_tolerance`` is set just above the largest gap between
    a bucket's token share and its document share, so the manifest loads (the loader checks them).
    ``fit`` (a :class:`mixplan.filtering.planner.FilterFit` of these buckets) adds its law (``objective``,
    ``a``, ``d``, ``unit``) and each bucket's fitted ``b`` and ``tau``, which the planner's "plan, then
    filter" baseline and ``mixplan filter`` without ``--runs`` read.
    """
    lines = [f"[pools.{pool}]"]
    if total_tokens is not None:
        lines.append(f"tokens = {total_tokens:.10g}")
    if total_documents is not None:
        lines.append(f"samples = {int(total_documents)}")
    lines.append(f'score = "{score}"')
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


def read_scores(path: str | Path, score: str, *, tokens_column: str | None = None, text_column: str | None = None,
                count: str = "bytes") -> tuple[np.ndarray, np.ndarray | None]:
    """Scores (and token counts) of the documents in a table (CSV, TSV, Parquet, JSONL; or an Arrow file
    written by ``datasets``). Token counts come from ``tokens_column``, or are counted from ``text_column``
    (:func:`count_tokens`), or are ``None``."""
    from .._io import read_table

    path = Path(path)
    if path.suffix.lower() == ".arrow":
        try:
            import datasets
        except ImportError:
            raise ValidationError(f"{path}: reading a datasets Arrow file needs the 'datasets' package "
                                  "(pip install datasets), or export the table to Parquet") from None
        frame = datasets.Dataset.from_file(str(path)).to_pandas()
    else:
        frame = read_table(path)
    cols = [str(c) for c in frame.columns]
    for flag, col in (("--score", score), ("--tokens-column", tokens_column), ("--text-column", text_column)):
        if col is not None and col not in frame.columns:
            raise ValidationError(f"{path}: no column {col!r} ({flag}); columns are {cols}")
    values = pd.to_numeric(frame[score], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise ValidationError(f"{path}: row {int(bad[0]) + 1}, column {score!r}: {frame[score].iloc[bad[0]]!r} is "
                              "not a finite number; every document needs a numeric score (drop unscored rows first)")
    tokens = None
    if tokens_column is not None:
        tokens = pd.to_numeric(frame[tokens_column], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(tokens) | (tokens < 0))
        if len(bad):
            raise ValidationError(f"{path}: row {int(bad[0]) + 1}, column {tokens_column!r}: "
                                  f"{frame[tokens_column].iloc[bad[0]]!r} is not a token count >= 0")
    elif text_column is not None:
        tokens = count_tokens(frame[text_column].tolist(), count)
    return values, tokens
