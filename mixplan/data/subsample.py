"""Which documents a subsampled pool keeps: a seeded hash rule that any training pipeline can apply.

A repetition-matched proxy run (``mixplan design --match-budget``) trains on a fraction ``f`` of each pool
so that it reads every pool as many times as the big run will. The documents kept are those whose
key (a document id, or its position) hashes below ``f``:

.. math::

    \\text{keep}(d) \\iff \\mathrm{BLAKE2b_{64}}(\\texttt{"seed|pool|key"}) / 2^{64} < f,

deterministic for a seed, independent across pools and seeds, nested in ``f`` (a larger fraction keeps
every document a smaller one keeps), and computable document by document in a streaming loader.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from .._checks import check_number

__all__ = ["SUBSAMPLE_RULE", "keep_document", "subsample_mask"]

#: The rule as written into a run file, for a loader outside mixplan.
SUBSAMPLE_RULE = ("keep a document of pool P when int.from_bytes(blake2b(f'{seed}|{P}|{key}'.encode(), digest_size=8)"
                  ".digest(), 'little') / 2**64 < fraction, key = the document's id (or its position in the pool)")


def _unit(seed: int, pool: str, key: str) -> float:
    digest = hashlib.blake2b(f"{seed}|{pool}|{key}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0 ** 64


def keep_document(key: object, pool: str, fraction: float, seed: int = 0) -> bool:
    """Whether the subsample of ``pool`` at ``fraction`` (seed ``seed``) keeps the document ``key``."""
    return _unit(seed, pool, str(key)) < fraction


def subsample_mask(keys: Iterable[object], pool: str, fraction: float, seed: int = 0) -> np.ndarray:
    """:func:`keep_document` for every key: a boolean mask."""
    check_number(fraction, "subsample fraction", lo=0.0, hi=1.0, lo_open=True)
    return np.fromiter((_unit(seed, pool, str(k)) < fraction for k in keys), dtype=bool)
