r"""How much of each pool there is, in the study's tokens: ``mixplan scan`` (issue 18).

A scan is two small steps, as a data pipeline would run them (datatrove-style), and a merge:

1. :func:`scan_shard` (pure, one worker per shard): read every document of a shard
   (:mod:`mixplan.data.sources`), count its bytes and tokens (:mod:`mixplan.data.tokens`), hash its
   normalised text (Unicode NFC, whitespace runs collapsed, stripped; BLAKE2b, 64 bits), keep its
   numeric fields (scores); count empty and unreadable documents with their first locations.
2. :func:`merge_pool` (the caller, in shard order): exact duplicates across the whole pool -- every
   document whose hash was seen earlier is a duplicate; its tokens are the pool's *duplicate tokens*
   and ``unique_tokens = tokens - duplicate tokens`` is what the repetition laws call :math:`U`
   -- score quantiles (over the unique documents) and the buckets the pool's ``buckets``/``cutoffs``
   ask for (:func:`mixplan.data.buckets.bucket_scores`; over the documents the pool's tokens count).
   A composite ``score`` (``0.7*dclm + 0.3*fasttext``) is computed here, from its columns' values over
   those same documents (:func:`mixplan.data.composite.composite_values`); the shards read the columns.

Results do not depend on the number of workers or on the engine: the merge is in shard order and
every count is exact. :func:`scan_pools` runs the steps on local processes; :func:`manifest_with`
writes the scanned manifest (the input is never modified) and :class:`ScanResult` the report.
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ValidationError
from .composite import composite_values
from .sources import Shard, list_shards, read_shard
from .tokens import token_counter, token_unit_name, tokenizer_digest

__all__ = ["ShardScan", "PoolScan", "ScanResult", "scan_shard", "merge_pool", "scan_pools", "manifest_with",
           "normalise", "text_hash", "QUANTILES"]

#: Score quantiles reported per pool.
QUANTILES = (0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)
_FIRST = 5  # locations kept per kind of problem
_BATCH = 512  # documents per tokenizer call


def normalise(text: str) -> str:
    """The text exact duplicates are compared on: NFC, whitespace runs as one space, stripped."""
    # str.split() splits at exactly the characters the regex \s matches (str.isspace), in C
    return " ".join(unicodedata.normalize("NFC", text).split())


def _hash64(norm: str) -> int:
    return int.from_bytes(hashlib.blake2b(norm.encode("utf-8"), digest_size=8).digest(), "little")


def text_hash(text: str) -> int:
    """64-bit BLAKE2b hash of :func:`normalise` (``text``), as an unsigned integer."""
    return _hash64(normalise(text))


@dataclass
class ShardScan:
    """What one shard holds: per readable, non-empty document its hash, tokens, bytes and fields; the
    empty and unreadable documents counted, with their first locations."""

    shard: Shard
    hashes: np.ndarray  # uint64
    tokens: np.ndarray  # int64
    nbytes: np.ndarray  # int64
    fields: dict[str, np.ndarray]  # float, NaN where missing or not a number
    empty: int = 0
    empty_where: list[str] = field(default_factory=list)
    invalid: int = 0
    invalid_where: list[list[str]] = field(default_factory=list)
    bad_fields: dict[str, list[Any]] = field(default_factory=dict)  # field -> [count, first locations]
    sha256: str | None = None
    seconds: float = 0.0
    #: the shard's share of the seeded document sample: (key, location, text), the smallest keys
    sample: list[tuple[int, str, str]] = field(default_factory=list)
    #: each kept document's location (only when asked: per-document tables)
    where: list[str] | None = None


def _number(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        return float("nan")
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit integer
        return float("nan")
    return v


def _sample_key(seed: int, shard: Shard, i: int) -> int:
    """The document's draw for the seeded sample: a hash of (seed, shard, position), so the sample does
    not depend on how shards are spread over workers."""
    return int.from_bytes(hashlib.blake2b(f"{seed}|{shard.key or shard.path}|{i}".encode(), digest_size=8).digest(),
                          "little")


def scan_shard(shard: Shard, tokenizer: str = "bytes", *, counter: Callable[[Sequence[str]], np.ndarray] | None = None,
               samples: int = 0, seed: int = 0, keep_where: bool = False) -> ShardScan:
    """Scan one shard (see the module docstring). ``counter`` (default: :func:`token_counter` of
    ``tokenizer``) may be passed in to reuse a loaded tokenizer. ``samples``: keep the shard's ``samples``
    documents with the smallest seeded keys (a pool's sample is the smallest over its shards: a
    reservoir sample that does not depend on the workers); ``keep_where``: each document's location."""
    import heapq

    from .scorers import resolve_scorers

    t0 = time.perf_counter()
    by_bytes = counter is None and tokenizer == "bytes"  # the tokens are the bytes: counted once, below
    count = counter or token_counter(tokenizer)
    scorers = resolve_scorers(dict(shard.scorers), f"pool {shard.pool!r}: ")
    hashes: list[int] = []
    nbytes: list[int] = []
    tokens: list[np.ndarray] = []
    names = tuple(shard.fields) + tuple(scorers)
    values: dict[str, list[float]] = {f: [] for f in names}
    out = ShardScan(shard, np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64), {},
                    where=[] if keep_where else None)
    heap: list[tuple[int, str, str]] = []  # (-key, where, text): the largest kept key on top
    batch: list[str] = []
    position = 0

    def flush() -> None:
        if batch:
            tokens.append(np.asarray(count(batch), dtype=np.int64))
            batch.clear()

    for rec in read_shard(shard):
        if rec.text is None:
            out.invalid += 1
            if len(out.invalid_where) < _FIRST:
                out.invalid_where.append([rec.where, str(rec.error)])
            continue
        norm = normalise(rec.text)
        if not norm:
            out.empty += 1
            if len(out.empty_where) < _FIRST:
                out.empty_where.append(rec.where)
            continue
        hashes.append(_hash64(norm))
        text = rec.text
        nbytes.append(len(rec.raw) if rec.raw is not None else len(text) if text.isascii() else len(text.encode()))
        if out.where is not None:
            out.where.append(rec.where)
        if samples:
            key = _sample_key(seed, shard, position)
            if len(heap) < samples:
                heapq.heappush(heap, (-key, rec.where, rec.text))
            elif -heap[0][0] > key:
                heapq.heapreplace(heap, (-key, rec.where, rec.text))
        position += 1
        computed = {}
        for f, fn in scorers.items():
            try:
                computed[f] = fn(rec.text)
            except Exception as exc:  # a user's function: say where it failed
                raise ValidationError(f"pool {shard.pool!r}: scorer {f!r} failed on {rec.where}: {exc!r}") from None
        for f in names:
            raw = computed[f] if f in computed else rec.fields.get(f)
            v = _number(raw)
            if not math.isfinite(v):
                bad = out.bad_fields.setdefault(f, [0, []])
                bad[0] += 1
                if len(bad[1]) < _FIRST:
                    bad[1].append(f"{rec.where} ({repr(raw)[:40]})")
            values[f].append(v)
        if not by_bytes:
            batch.append(rec.text)
            if len(batch) >= _BATCH:
                flush()
    flush()
    out.hashes = np.array(hashes, dtype=np.uint64)
    out.nbytes = np.array(nbytes, dtype=np.int64)
    out.tokens = out.nbytes.copy() if by_bytes else np.concatenate(tokens) if tokens else np.zeros(0, np.int64)
    out.fields = {f: np.array(v, dtype=float) for f, v in values.items()}
    out.sample = sorted((-k, w, t) for k, w, t in heap)
    if shard.kind not in ("reader", "disk"):
        with open(shard.path, "rb") as fh:
            out.sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
    out.seconds = time.perf_counter() - t0
    return out


@dataclass
class PoolScan:
    """One pool's scan: counts over all its shards, exact duplicates, scores and buckets."""

    name: str
    documents: int
    bytes: int
    tokens: int
    duplicate_documents: int
    duplicate_tokens: int
    empty: int
    empty_where: list[str]
    invalid: int
    invalid_where: list[list[str]]
    shards: list[dict[str, Any]]
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    buckets: Any = None  # bucket table (pandas) of the pool's score
    seconds: float = 0.0
    sample: list[tuple[str, str]] = field(default_factory=list)  # (location, text), the seeded sample
    documents_table: Any = None  # per document (when asked): location, tokens, duplicate, scores

    @property
    def unique_documents(self) -> int:
        return self.documents - self.duplicate_documents

    @property
    def unique_tokens(self) -> int:
        return self.tokens - self.duplicate_tokens

    def to_dict(self) -> dict[str, Any]:
        return {"documents": self.documents, "bytes": self.bytes, "tokens": self.tokens,
                "duplicate_documents": self.duplicate_documents, "duplicate_tokens": self.duplicate_tokens,
                "unique_documents": self.unique_documents, "unique_tokens": self.unique_tokens,
                "empty_documents": self.empty, "first_empty": self.empty_where,
                "invalid_documents": self.invalid, "first_invalid": self.invalid_where, "scores": self.scores,
                "buckets": None if self.buckets is None else self.buckets.to_dict(orient="records"),
                "shards": self.shards, "seconds": self.seconds}


def merge_pool(name: str, parts: Sequence[ShardScan], *, score: str | None = None,
               fractions: Sequence[float] | None = None, cutoffs: Sequence[float] | None = None,
               higher_is_better: bool = True, samples: int = 0, dedup: bool = False) -> PoolScan:
    """Merge a pool's shard scans (in shard order): duplicates, score quantiles, buckets (``fractions``:
    cumulative top fractions, or ``cutoffs``: score cut-offs, of ``score``; over every document, or with
    ``dedup`` over the unique ones, as the pool's tokens are counted), the ``samples`` documents with the
    smallest keys over all shards, and the per-document table when the shards kept locations.

    ``score`` is a field of the shards, or a composite of them (``0.7*dclm + 0.3*fasttext``): each
    document's ``sum_j w_j z_j``, ``z_j`` the rank-based normal scores of field ``j`` over the documents
    bucketed (:func:`mixplan.data.composite.composite_values`). Its buckets' cut-offs (given or measured)
    are then in composite units; the quantiles and the per-document table keep the fields themselves."""
    h = np.concatenate([p.hashes for p in parts]) if parts else np.zeros(0, np.uint64)
    t = np.concatenate([p.tokens for p in parts]) if parts else np.zeros(0, np.int64)
    b = np.concatenate([p.nbytes for p in parts]) if parts else np.zeros(0, np.int64)
    first = np.zeros(len(h), dtype=bool)
    if len(h):
        _, idx = np.unique(h, return_index=True)  # the first occurrence of every hash, in shard order
        first[idx] = True
    pool = PoolScan(name=name, documents=int(len(h)), bytes=int(b.sum()), tokens=int(t.sum()),
                    duplicate_documents=int((~first).sum()), duplicate_tokens=int(t[~first].sum()),
                    empty=sum(p.empty for p in parts), empty_where=[w for p in parts for w in p.empty_where][:_FIRST],
                    invalid=sum(p.invalid for p in parts),
                    invalid_where=[w for p in parts for w in p.invalid_where][:_FIRST],
                    shards=[p.shard.to_dict() | {"sha256": p.sha256, "documents": int(len(p.hashes)),
                                                 "seconds": round(p.seconds, 3)} for p in parts],
                    seconds=float(sum(p.seconds for p in parts)))
    if samples:
        pool.sample = [(w, t) for _, w, t in sorted(x for p in parts for x in p.sample)[:samples]]
    values = {f: np.concatenate([p.fields[f] for p in parts]) for f in (parts[0].fields if parts else ())}
    if parts and all(p.where is not None for p in parts):
        import pandas as pd

        pool.documents_table = pd.DataFrame({"where": [w for p in parts for w in p.where or []], "tokens": t,
                                             "bytes": b, "duplicate": ~first} | values)
    for f, all_v in values.items():
        v = all_v[first]
        ok = np.isfinite(v)
        bad = sum(p.bad_fields.get(f, [0])[0] for p in parts)
        where = [w for p in parts for w in p.bad_fields.get(f, [0, []])[1]][:_FIRST]
        if not ok.any():
            raise ValidationError(f"pool {name!r}: score {f!r} is not a number in any of its {len(v)} documents "
                                  f"(first: {', '.join(where[:2]) or 'none'}); check the field name and its values")
        with np.errstate(over="ignore"):
            mean = float(np.mean(v[ok]))
        pool.scores[f] = {"documents": int(ok.sum()), "not_numeric": int(bad), "first_not_numeric": where,
                          "quantiles": {f"{q:g}": float(x) for q, x in zip(QUANTILES, np.quantile(v[ok], QUANTILES))},
                          "mean": mean if np.isfinite(mean) else None}  # None: the values overflow a float's sum
    if score is not None and (fractions is not None or cutoffs is not None):
        from .buckets import score_spec

        comp = None
        if score not in values:  # a field (any name the shards read), else a composite of fields
            comp = score_spec(score, (), f"pool {name!r}")
            if comp.single:  # '1*q' is the field q itself (its own units); a name no spec reads: checked below
                score, comp = comp.spec, None
        columns = [score] if comp is None else comp.columns
        for f in columns:
            if f not in pool.scores:
                raise ValidationError(f"pool {name!r}: its buckets are cut by score {f!r}, which the scan did not "
                                      "read; name it in the pool's score/scores")
        counted = first if dedup else np.ones(len(h), dtype=bool)
        for f in columns:
            ok = np.isfinite(values[f][counted])
            if not ok.all():
                raise ValidationError(f"pool {name!r}: its buckets are cut by score {f!r}, which {int((~ok).sum())} of "
                                      f"its documents lack (first: {pool.scores[f]['first_not_numeric'][0]}); every "
                                      "document of a bucketed pool needs a numeric score")
        # a composite's normal scores are over the documents bucketed: those the pool's tokens count
        v = values[score][counted] if comp is None else composite_values({f: values[f][counted] for f in columns},
                                                                            comp)
        pool.buckets = _buckets(v, t[counted], fractions, cutoffs, higher_is_better, name)
    return pool


def _buckets(s: np.ndarray, tokens: np.ndarray, fractions: Sequence[float] | None, cutoffs: Sequence[float] | None,
             higher_is_better: bool, name: str) -> Any:
    from .buckets import bucket_scores

    if fractions is not None:
        return bucket_scores(s, fractions, tokens=tokens.astype(float), higher_is_better=higher_is_better)
    import pandas as pd

    rows, prev = [], None
    for i, c in enumerate(cutoffs or ()):
        inside = (s >= c) if higher_is_better else (s <= c)
        if prev is not None:
            inside &= (s < prev) if higher_is_better else (s > prev)
        if not inside.any():
            raise ValidationError(f"pool {name!r}: no document between cut-offs {prev} and {c}; choose other cut-offs")
        rows.append({"bucket": f"bucket{i + 1}", "cutoff": float(c), "documents": int(inside.sum()),
                     "tokens": float(tokens[inside].sum()), "token_share": float(tokens[inside].sum() / tokens.sum())})
        prev = c
    return pd.DataFrame(rows)


@dataclass
class ScanResult:
    """Every scanned pool, the unit, the skipped pools and the time taken."""

    pools: dict[str, PoolScan]
    tokenizer: str
    token_unit: str
    skipped: dict[str, str]
    workers: int
    seconds: float
    tokenizer_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer, "tokenizer_sha256": self.tokenizer_sha256,
                "token_unit": self.token_unit, "workers": self.workers, "seconds": round(self.seconds, 3),
                "skipped": self.skipped, "pools": {n: p.to_dict() for n, p in self.pools.items()}}

    def report(self) -> str:
        import pandas as pd

        rows = [{"pool": n, "documents": p.documents, "bytes": p.bytes, f"tokens ({self.token_unit})": p.tokens,
                 "duplicates": p.duplicate_documents, "dup. tokens": p.duplicate_tokens,
                 "unique tokens": p.unique_tokens, "empty": p.empty, "invalid": p.invalid}
                for n, p in self.pools.items()]
        lines = [pd.DataFrame(rows).to_string(index=False)]
        for n, p in self.pools.items():
            if p.invalid:
                lines.append(f"pool {n}: {p.invalid} unreadable document{'s' if p.invalid > 1 else ''} skipped, first: "
                             + "; ".join(f"{w} ({why})" for w, why in p.invalid_where[:3]))
            for f, s in p.scores.items():
                q = s["quantiles"]
                lines.append(f"pool {n}: score {f}: median {q['0.5']:.4g}, 10-90% [{q['0.1']:.4g}, {q['0.9']:.4g}]"
                             + (f"; {s['not_numeric']} not numeric (first: {s['first_not_numeric'][0]})"
                                if s["not_numeric"] else ""))
        for n, why in self.skipped.items():
            lines.append(f"pool {n}: not scanned ({why})")
        lines.append(f"{sum(p.bytes for p in self.pools.values()):,} bytes in {self.seconds:.1f} s on "
                     f"{self.workers} worker{'s' if self.workers > 1 else ''}")
        return "\n".join(lines)


def _scan_job(job: tuple[Shard, str, dict[str, Any]]) -> ShardScan:
    shard, tokenizer, options = job
    return scan_shard(shard, tokenizer, **options)


def _progress(jobs: list[tuple[Shard, str, dict[str, Any]]]) -> Any:
    """A bar of bytes scanned (rate, ETA) on a terminal only; shards of unknown size count as none."""
    import sys

    from tqdm.auto import tqdm

    return tqdm(total=sum(s.size for s, _, _ in jobs), unit="B", unit_scale=True, desc="scan", leave=False,
                disable=not sys.stderr.isatty())


def _run_local(jobs: list[tuple[Shard, str, dict[str, Any]]], workers: int,
               counter: Callable[[Sequence[str]], np.ndarray] | None = None) -> list[ShardScan]:
    """:func:`scan_shard` for every job in order, on ``workers`` spawned processes (1: in this one, with
    ``counter``, the jobs' tokenizer loaded once; None for bytes, counted as they are read)."""
    out: list[ShardScan] = []
    with _progress(jobs) as bar:
        if workers <= 1 or len(jobs) <= 1:
            for s, tok, opt in jobs:
                out.append(scan_shard(s, tok, counter=counter, **opt))
                bar.update(s.size)
            return out
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as ex:
            try:
                for res in ex.map(_scan_job, jobs, chunksize=1):
                    out.append(res)
                    bar.update(res.shard.size)
            except BaseException:
                ex.shutdown(wait=False, cancel_futures=True)  # the first bad shard ends the scan: stop the queue
                raise
    return out


def _run_ray(jobs: list[tuple[Shard, str, dict[str, Any]]], workers: int, address: str | None) -> list[ShardScan]:
    """:func:`scan_shard` for every job as Ray tasks (one CPU each), results in job order: the same steps as
    the local engine, so the same result. ``address``: an existing cluster (``auto``, ``ray://host:10001``),
    else a local Ray instance of ``workers`` CPUs, shut down afterwards."""
    import os

    try:
        import ray
    except ImportError:
        raise ValidationError("--engine ray needs Ray: pip install 'mixplan[ray]'") from None
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # Ray >= 2.60 would otherwise write a token file
    started = not ray.is_initialized()
    if started:
        kwargs: dict[str, Any] = {"address": address} if address else {"num_cpus": workers}
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, **kwargs)
    try:
        task = ray.remote(num_cpus=1)(_scan_job)
        try:
            return list(ray.get([task.remote(job) for job in jobs]))
        except ray.exceptions.RayTaskError as exc:  # its text is the remote traceback: keep the cause's message
            cause = getattr(exc, "cause", None)
            if isinstance(cause, ValidationError):
                raise ValidationError(str(cause)) from None
            raise ValidationError(f"a Ray scan task failed: {type(cause).__name__}: "
                                  f"{(str(cause).splitlines() or [''])[0]}") from None
    finally:
        if started:
            ray.shutdown()


def scan_pools(pools: Any, raw: Mapping[str, Any], root: str | Path, *, tokenizer: str = "bytes", workers: int = 1,
               only: Iterable[str] | None = None, samples: int = 0, seed: int = 0,
               per_document: bool = False, dedup: bool = False, engine: str = "local",
               address: str | None = None) -> ScanResult:
    """Scan every pool of ``pools`` (a :class:`~mixplan.data.pools.PoolSet`, whose buckets say which to
    measure; ``raw`` its manifest's tables, for the score fields) that has a source; ``root``: the manifest's folder.
    ``samples``: a seeded sample of that many documents per pool (``PoolScan.sample``);
    ``per_document``: each document's location, tokens, duplicate flag and scores
    (``PoolScan.documents_table``); ``dedup``: buckets over the unique documents (as
    :func:`manifest_with` then counts the pool). ``engine``: ``"local"`` (``workers`` processes) or
    ``"ray"`` (Ray tasks; on the cluster at ``address``, else a local instance of ``workers`` CPUs)."""
    t0 = time.perf_counter()
    if engine not in ("local", "ray"):
        raise ValidationError(f"engine {engine!r} is not known; use local or ray")
    counter = token_counter(tokenizer)  # a bad tokenizer fails here, before any worker starts
    wanted = set(only) if only is not None else None
    plan: dict[str, tuple[list[Shard], Any]] = {}  # pool -> its shards and buckets (BucketSpec or None)
    skipped: dict[str, str] = {}
    for pool in pools:
        if wanted is not None and pool.name not in wanted:
            continue
        if not pool.source:
            skipped[pool.name] = "no source table"
            continue
        spec = raw.get("pools", {}).get(pool.name, {})
        fields = _score_fields(spec, pool.name)
        shards = list_shards(pool.name, pool.source, root, fields=fields)
        plan[pool.name] = (shards, pool.buckets)
    if not plan:
        raise ValidationError("no pool to scan: " + ("; ".join(f"{n}: {why}" for n, why in skipped.items())
                                                     or "the manifest lists none") + " (add [pools.NAME.source] tables)")
    options = {"samples": int(samples), "seed": int(seed), "keep_where": bool(per_document)}
    jobs = [(s, tokenizer, options) for shards, _ in plan.values() for s in shards]
    workers = max(1, int(workers))
    run = (_run_local(jobs, workers, None if tokenizer == "bytes" else counter) if engine == "local"
           else _run_ray(jobs, workers, address))
    results = iter(run)
    scanned = {}
    for name, (shards, spec) in plan.items():
        parts = [next(results) for _ in shards]
        # the buckets the manifest asks for, as its loader read them: top fractions or score cut-offs
        tops = None if spec is None else [b.top for b in spec.buckets if b.top is not None] or None
        cuts = None if spec is None else [b.cutoff for b in spec.buckets if b.cutoff is not None] or None
        scanned[name] = merge_pool(name, parts, score=None if spec is None else spec.score, fractions=tops,
                                   cutoffs=cuts, higher_is_better=True if spec is None else spec.higher_is_better,
                                   samples=int(samples), dedup=dedup)
        if scanned[name].documents == 0:
            raise ValidationError(f"pool {name!r}: its source holds no readable document ({scanned[name].invalid} "
                                  f"unreadable, {scanned[name].empty} empty); check the source table")
    return ScanResult(pools=scanned, tokenizer=tokenizer, token_unit=token_unit_name(tokenizer), skipped=skipped,
                      workers=workers, seconds=time.perf_counter() - t0,
                      tokenizer_sha256=tokenizer_digest(tokenizer))


def _score_fields(spec: Mapping[str, Any], pool: str = "") -> tuple[str, ...]:
    """The fields the shards read for pool table ``spec``: its ``scores`` and the columns of its ``score`` (a
    field, or each field a composite names: the composite itself is computed by :func:`merge_pool`)."""
    from .buckets import score_spec

    names = [str(s) for s in spec.get("scores", [])]
    if "score" in spec:
        comp = score_spec(str(spec["score"]), names, f"pool {pool!r}")
        names = [c for c in comp.columns if c not in names] + names
    return tuple(names)


def manifest_with(raw: Mapping[str, Any], result: ScanResult, source: str = "", dedup: bool = False
                  ) -> dict[str, Any]:
    """The manifest's tables with the scan's numbers: per scanned pool ``tokens`` and ``samples`` (every
    readable document's, or with ``dedup`` the unique ones': for a pool deduplicated before training), a
    ``[pools.NAME.scan]`` table with every count, and its buckets written out (top fraction or cut-off,
    tokens, documents) when it asks for them; ``[study] token_unit`` = the scan's unit. ``raw`` is not
    modified. A pool bucketed by a composite ``score`` keeps it as written: its cut-offs (written for
    cut-off buckets; the report's for every bucket) are in composite units, the weighted normal scores
    over the documents scanned (the unique ones with ``dedup``), not in any one score's units
    (``mixplan scan`` says so in a comment at the top of the manifest it writes)."""
    out = copy.deepcopy(dict(raw))
    if isinstance(out.get("pools"), dict):  # nested groups written in the parent form (the same meaning)
        from .hierarchy import flatten_nested
        from .pools import POOL_KEYS

        out["pools"] = flatten_nested(out["pools"], "pool manifest", POOL_KEYS)
    groups = {v.get("parent") for v in out.get("pools", {}).values() if isinstance(v, dict)}
    study = dict(out.get("study", {}))
    old = study.get("token_unit")
    kept = [n for n in out.get("pools", {}) if n not in result.pools and n not in groups]
    sizeless = [n for n in kept if "tokens" not in out["pools"][n]]
    if sizeless:
        raise ValidationError(f"pool {sizeless[0]!r} has no 'tokens' and this scan does not read it (it has no "
                              "source table, or --only leaves it out): give it a source, or type its size")
    if kept and (old or "tokens") != result.token_unit:
        raise ValidationError(f"pool{'s' if len(kept) > 1 else ''} {', '.join(kept)} keep{'' if len(kept) > 1 else 's'} "
                              f"their typed sizes, counted in {old or 'tokens (the default unit)'}, but this scan counts "
                              f"{result.token_unit}: one manifest cannot mix units; scan every pool, or set [study] "
                              f"token_unit = \"{result.token_unit}\" if the typed sizes are in that unit")
    study["token_unit"] = result.token_unit
    out["study"] = study
    for name, p in result.pools.items():
        spec = out["pools"][name]
        spec["tokens"] = int(p.unique_tokens if dedup else p.tokens)
        spec["samples"] = int(p.unique_documents if dedup else p.documents)
        spec["scan"] = {"documents": p.documents, "bytes": p.bytes, "tokens": p.tokens,
                        "duplicate_documents": p.duplicate_documents, "duplicate_tokens": p.duplicate_tokens,
                        "unique_tokens": p.unique_tokens, "deduplicated": dedup, "empty_documents": p.empty, "invalid_documents": p.invalid, "token_unit": result.token_unit,
                        **({"from": source} if source else {}),
                        **({"previous_token_unit": old} if old and old != result.token_unit else {})}
        if p.buckets is not None:
            spec.pop("buckets", None)
            spec.pop("cutoffs", None)
            given = list(spec.pop("bucket", []))  # the long form's tables, best first: names and b, tau, r_star kept
            tables = []
            for i, row in enumerate(p.buckets.to_dict(orient="records")):
                kept = given[i] if i < len(given) else {}
                t = {"name": kept.get("name", row["bucket"])}
                t |= {"top": row["top"]} if "top" in row else {"cutoff": row["cutoff"]}
                t |= {"tokens": int(row["tokens"]), "samples": int(row["documents"])}
                t |= {k: kept[k] for k in ("b", "tau", "r_star") if k in kept}
                tables.append(t)
            spec["bucket"] = tables
            if "top" in p.buckets:
                share = p.buckets["top"].diff().fillna(p.buckets["top"]).to_numpy()
                gap = float(np.max(np.abs(p.buckets["token_share"].to_numpy() / share - 1)))
                from .buckets import SIZE_TOLERANCE

                if gap > float(spec.get("size_tolerance", SIZE_TOLERANCE)):  # token shares differ from documents'
                    spec["size_tolerance"] = float(np.ceil(gap * 100 + 1) / 100)
    return out
