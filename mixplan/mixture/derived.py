"""Derived pools in a plan: the raw : rewritten (or raw : synthetic) split of a pool family, and double reads.

A rewritten pool is made from part of its parent's documents (:mod:`mixplan.data.derived`). In a mixture
the family -- the parent's raw text, kept whole or by quality buckets, and every pool derived from it --
is one decision: how much raw text, how much rewritten. :func:`derived_summary` reads it off mixtures over
the plan's columns (whole pools, or a bucketed pool's buckets, :mod:`mixplan.mixture.buckets`):

* per derived pool and mixture: its weight, the parent's raw weight, the family's raw : derived split,
  and (with a budget) the tokens drawn and epochs of both;
* a **double read**: a mixture that reads a rewritten pool *and* the raw buckets it was rewritten from
  trains on the same documents twice, in two forms. Nothing is counted twice in the availability (the
  rewritten text has its own tokens, priced for repetition on its own), but the plan says so: REWIRE mixes
  the rewrite of the *rejected* part with the *kept* raw text.

Pure: manifest, columns and weights in, a JSON-ready dict out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.pools import PoolSet
from .buckets import bucket_column

__all__ = ["derived_summary", "derived_notes", "derived_table"]

#: The mixtures the report's table shows (plan.json has every one).
SHOWN = ("recommended", "threshold", "whole_pools", "proxy_scale", "repetition_aware")


def _columns_of(pool: Any, buckets: Sequence[str] | None = None) -> list[str]:
    """The plan's columns of a manifest pool: its name, or its buckets' columns (all, or ``buckets``)."""
    if pool.buckets is None:
        return [pool.name]
    return [bucket_column(pool.name, b.name) for b in pool.buckets.buckets if buckets is None or b.name in buckets]


def derived_summary(manifest: PoolSet, columns: Sequence[str], W: np.ndarray, names: Sequence[str],
                    tokens: float | None = None) -> dict[str, Any] | None:
    """Per derived pool of ``manifest`` with a parent (None when there is none): kind, parent, the part it was
    made from, and per named mixture (rows of ``W`` over ``columns``) its weight, the parent's raw weight and
    the weight of the raw part it was made from (``source_raw_weight``), the raw share of the family, and
    with ``tokens`` the tokens and epochs of the derived pool."""
    derived = [p for p in manifest if p.derivation is not None and p.derivation.parent is not None]
    if not derived:
        return None
    index = {c: i for i, c in enumerate(columns)}
    W = np.atleast_2d(np.asarray(W, dtype=float))
    out: dict[str, Any] = {}
    for pool in derived:
        d = pool.derivation
        parent = manifest.by_name(d.parent)
        raw_cols = [index[c] for c in _columns_of(parent) if c in index]
        part = d.buckets if d.buckets else None
        source_cols = [index[c] for c in _columns_of(parent, part) if c in index] if part else []
        me = index.get(pool.name)
        if me is None:
            continue
        mixtures = {}
        for i, n in enumerate(names):
            w_d, w_raw = float(W[i, me]), float(W[i, raw_cols].sum())
            entry = {"weight": w_d, "parent_raw_weight": w_raw,
                     "raw_share": None if w_d + w_raw <= 0 else w_raw / (w_d + w_raw)}
            if part:
                entry["source_raw_weight"] = float(W[i, source_cols].sum())
            if tokens is not None:
                entry["tokens"] = w_d * float(tokens)
                entry["epochs"] = w_d * float(tokens) / pool.tokens
            mixtures[n] = entry
        out[pool.name] = {"kind": d.kind, "parent": d.parent, "from_buckets": list(d.buckets),
                          "from_fraction": d.fraction, "tokens": pool.tokens, "mixtures": mixtures}
    return out or None


def derived_notes(summary: dict[str, Any] | None, mixture: str = "recommended") -> list[str]:
    """Warnings for ``mixture``: a rewritten pool read together with the raw part it was made from. (A
    synthetic pool's text is generated, not the source's documents in another form: reading both is no
    double read.)"""
    notes = []
    for name, info in (summary or {}).items():
        m = info["mixtures"].get(mixture)
        if m is None or not info["from_buckets"] or info["kind"] != "rewritten":
            continue
        if m["weight"] > 1e-6 and m.get("source_raw_weight", 0.0) > 1e-6:
            notes.append(f"the {mixture} mixture reads {info['parent']!r}'s {', '.join(info['from_buckets'])} both raw "
                         f"(weight {m['source_raw_weight']:.3f}) and {info['kind']} as {name!r} (weight "
                         f"{m['weight']:.3f}): the same documents twice in two forms; usually the {info['kind']} text "
                         "replaces the raw part a filter drops (pin one of them to 0 to compare)")
    return notes


def derived_table(summary: dict[str, Any] | None) -> str:
    """One line per derived pool and mixture: weight, parent's raw weight, raw : derived split, epochs."""
    import pandas as pd

    rows = []
    for name, info in (summary or {}).items():
        for mix, m in info["mixtures"].items():
            if mix not in SHOWN:
                continue
            share = m["raw_share"]
            rows.append({"derived pool": f"{name} ({info['kind']} from {info['parent']})", "mixture": mix,
                         "weight": f"{m['weight']:.3f}", "raw weight": f"{m['parent_raw_weight']:.3f}",
                         "raw : derived": "-" if share is None else f"{share:.2f} : {1 - share:.2f}"}
                        | ({"epochs": f"{m['epochs']:.3g}"} if "epochs" in m else {}))
    if not rows:
        return ""
    return ("derived pools (the family's raw text vs the text made from it):\n"
            + pd.DataFrame(rows).to_string(index=False))
