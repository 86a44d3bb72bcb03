"""The demo's ``wiki`` pool cut into quality buckets, as pools of a mixture (issue 17's trained demo).

Every training chunk of ``wiki`` (raw Wikipedia wikitext, ~1,500 bytes: the unit the proxy's sampler
shuffles and repeats) gets a *prose score*, a Gopher-style heuristic computed from its own text only:
the share of whitespace-separated tokens that are plain words (ASCII letters, optionally followed by
punctuation). Running prose ranks above markup, tables, templates and link lists. The chunks are
ranked by it (ties by position) and cut at cumulative top fractions :data:`BUCKET_TOPS` of chunks
(:func:`mixplan.filtering.scores.bucket_scores`): ``wiki_top10``, ``wiki_top10_30``, ... Each bucket
is a :class:`~mixplan.demo.corpora.DemoPool` of its chunks (``wiki``'s held-out text kept), so the
proxy LM trains on a mixture over the buckets and the other demo pools exactly as over whole pools:
each pool walked in its own shuffled order, a new pass (epoch) when its unique bytes run out.

The metric the study plans for is ``prose_bpb``: the mean of held-out bits per byte on news
articles (``bpb_news``) and movie-review sentences (``bpb_reviews``, never trained on).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from mixplan.data.scorers import prose_score
from mixplan.demo.corpora import EVAL_ONLY, TRAIN_POOLS, DemoPool, load_pools

__all__ = ["BUCKET_TOPS", "PROSE_POOL", "bucket_names", "bucket_table", "bucket_pools", "chunk_subset", "prose_score",
           "chunk_scores", "run_bucket_proxy", "run_bucket_proxies", "train_and_score"]

#: The pool cut into buckets.
PROSE_POOL = "wiki"
#: Cumulative top fractions of chunks at which the buckets end: every bucket a whole multiple of 10%
#: (the QQT union law of ``mixplan filter`` mixes equal-size units), the last one the rest of the pool,
#: so keeping every bucket is the whole pool.
BUCKET_TOPS = (0.1, 0.3, 0.6, 1.0)




def chunk_scores(pool: DemoPool) -> np.ndarray:
    """:func:`prose_score` of every training chunk of ``pool``, in chunk order."""
    return np.array([prose_score(c) for c in pool.chunks()])


def chunk_subset(pool: DemoPool, ids: Sequence[int], name: str | None = None) -> DemoPool:
    """A pool of the chunks ``ids`` of ``pool`` (in that order), with ``pool``'s held-out text."""
    off = pool.chunk_offsets
    parts = [pool.train[off[i]: off[i + 1]] for i in ids]
    lengths = np.array([p.size for p in parts], dtype=np.int64)
    return DemoPool(name=name or pool.name, train=np.concatenate(parts),
                    chunk_offsets=np.r_[0, np.cumsum(lengths)].astype(np.int64), heldout=pool.heldout,
                    description=f"{len(ids)} chunks of {pool.name}", source=pool.source)


@lru_cache(maxsize=4)
def _buckets(tops: tuple[float, ...]) -> tuple[Any, tuple[np.ndarray, ...]]:
    from mixplan.filtering.scores import bucket_scores

    pool = load_pools()[PROSE_POOL]
    scores = chunk_scores(pool)
    table = bucket_scores(scores, tops, tokens=np.diff(pool.chunk_offsets).astype(float))
    order = np.argsort(-scores, kind="stable")  # best first, as bucket_scores ranks (ties by position)
    ends = np.cumsum(table["documents"].to_numpy())
    members = tuple(np.sort(order[lo:hi]) for lo, hi in zip(np.r_[0, ends[:-1]], ends))
    return table, members


def bucket_table(tops: Sequence[float] = BUCKET_TOPS):
    """The buckets of ``wiki`` by prose score (:func:`mixplan.filtering.scores.bucket_scores`: one row
    per bucket with ``bucket``, ``top``, ``cutoff``, ``documents`` = chunks, ``tokens`` = bytes, ...)."""
    return _buckets(tuple(float(t) for t in tops))[0].copy()


def bucket_names(tops: Sequence[float] = BUCKET_TOPS) -> tuple[str, ...]:
    """The mixture's pools: ``wiki``'s buckets (``wiki_top10``, ...) then the other training pools."""
    from mixplan.mixture.buckets import bucket_column

    return tuple(bucket_column(PROSE_POOL, b) for b in bucket_table(tops)["bucket"]) + tuple(
        n for n in TRAIN_POOLS if n != PROSE_POOL)


def bucket_pools(tops: Sequence[float] = BUCKET_TOPS) -> dict[str, DemoPool]:
    """The pools of :func:`bucket_names` (buckets as :func:`chunk_subset` pools of their chunks, the
    chunks in pool order) and the evaluation-only sets."""
    tops = tuple(float(t) for t in tops)
    pools = load_pools()
    out = {name: chunk_subset(pools[PROSE_POOL], ids, name)
           for name, ids in zip(bucket_names(tops), _buckets(tops)[1])}
    out.update({n: pools[n] for n in TRAIN_POOLS + EVAL_ONLY if n != PROSE_POOL})
    return out


@lru_cache(maxsize=4)
def _cached_pools(tops: tuple[float, ...]) -> dict[str, DemoPool]:
    return bucket_pools(tops)  # a worker process builds the buckets once (read only afterwards)


def run_bucket_proxy(weights: Mapping[str, float], tokens: int, seed: int,
                     tops: Sequence[float] = BUCKET_TOPS) -> dict[str, float]:
    """Train one proxy LM on a mixture over :func:`bucket_names` and return held-out bits per byte.

    As :func:`mixplan.demo.proxy_lm.run_proxy` (same sampler, model and seeding), over the bucket pools:
    ``bpb_<set>`` on every held-out set of the demo (``wiki``, ``news``, ``bible``, ``code``, ``docs``,
    ``reviews``), ``bpb_mean`` over the five training pools' sets and ``prose_bpb`` = mean of
    ``bpb_news`` and ``bpb_reviews``. Deterministic: the same arguments give identical floats.
    """
    tops = tuple(float(t) for t in tops)
    return train_and_score(_cached_pools(tops), bucket_names(tops), weights, tokens, seed)


def train_and_score(pools: Mapping[str, DemoPool], names: Sequence[str], weights: Mapping[str, float],
                    tokens: int, seed: int) -> dict[str, float]:
    """Train the proxy LM on a mixture over ``names`` (pools from ``pools``) and score it on the demo's
    held-out sets: the body of :func:`run_bucket_proxy`, shared by every study over pools built from the
    demo's (:mod:`mixplan.demo.derived`)."""
    from mixplan.demo.proxy_lm import ProxyLM, heldout_bpb, sample_stream, validate_weights
    from mixplan.exceptions import ValidationError

    w = validate_weights(weights, names)
    if int(tokens) < 1:
        raise ValidationError(f"tokens must be >= 1, got {tokens}")
    rng = np.random.default_rng([int(seed), 0x6D78])
    model = ProxyLM().fit(sample_stream(pools, w, int(tokens), rng, names))
    out = heldout_bpb(model, load_pools())
    out["prose_bpb"] = 0.5 * (out["bpb_news"] + out["bpb_reviews"])
    return out


def _bucket_job(job: tuple[Mapping[str, float], int, int]) -> dict[str, float]:
    weights, tokens, seed = job
    return run_bucket_proxy(weights, tokens, seed)


def run_bucket_proxies(jobs: Iterable[tuple[Mapping[str, float], int, int]], processes: int = 2,
                       progress: bool = True) -> list[dict[str, float]]:
    """:func:`run_bucket_proxy` for many ``(weights, tokens, seed)`` jobs, in job order, on ``processes``
    spawned single-thread workers (results do not depend on their number)."""
    from mixplan.demo.proxy_lm import run_jobs, validate_weights

    jobs = [(dict(w), int(t), int(s)) for w, t, s in jobs]
    names = bucket_names()
    for w, _, _ in jobs:  # fail before any worker starts
        validate_weights(w, names)
    return run_jobs(_bucket_job, jobs, processes, progress, "bucket runs")
