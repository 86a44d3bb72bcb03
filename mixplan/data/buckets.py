r"""Quality-bucketed pools: a pool cut into buckets by a document score, as a manifest declares it.

Filtering a pool by a quality score ("keep the top 10%") is choosing a *union of buckets*: the best
bucket, or the best two, ... (Goyal et al., CVPR 2024, arXiv 2404.07177). This module holds the
buckets' description as the manifest declares it (:class:`Bucket`, :class:`BucketSpec`, read by
:func:`parse_buckets` from a ``[pools.NAME]`` table). Cutting real scores into buckets is
:mod:`mixplan.filtering.scores`; planning and fitting are :mod:`mixplan.filtering.planner`.

Manifest form (a pool table of ``pools.toml``)::

    [pools.web]
    tokens = 2.0e12                   # the whole pool (every scored document), as for any pool
    samples = 1.6e9                   # optional: documents in the whole pool
    score = "fasttext_hq"             # the score the buckets are cut by (higher = better), or a
                                      # composite of the scores, e.g. "0.7*fasttext_hq + 0.3*dclm"
    scores = ["fasttext_hq", "dclm"]  # optional: the scores each document carries; `score` must be one
                                      # (or a composite of them only)
    buckets = [0.1, 0.2, 0.3, 0.4]    # short form: cumulative top fractions (sizes = share x pool)

    [pools.web.law]                   # optional: the QQT law the buckets share (mixplan.laws.qqt)
    objective = "effective_utility"   # or "effective_data"
    a = 0.025                         # shared scale (default: the authors' value for the objective)
    d = 0.1                           # shared irreducible error (default 0.1, the authors' --d)
    unit = "tokens"                   # what the law counts: "tokens" or "samples" (documents)

    [[pools.web.bucket]]              # long form, one table per bucket, best first
    name = "top10"                    # optional (default top10, top10_20, ...)
    top = 0.1                         # cumulative top fraction of the pool's documents ...
    # cutoff = 0.93                   # ... or the score cut-off (documents with score >= cutoff)
    tokens = 2.0e11                   # bucket size (default: its share of the pool's tokens)
    samples = 1.6e8                   # optional: documents in the bucket
    b = -0.16                         # optional utility (< 0) ...
    tau = 6.73                        # ... and half-life in passes, e.g. from a paper or a fit
    r_star = 8.0                      # optional: R* of this bucket when repeated in a mixture (plan's law;
                                      # default the pool's r_star, else the one fitted or assumed)

``top`` fractions are of documents (score percentiles, as DataComp and DCLM define them). A bucket's
``samples`` must be its share of the pool's ``samples`` and its ``tokens`` its share of the pool's
``tokens`` within :data:`SIZE_TOLERANCE` (relative): quality scores correlate with length, so give
``size_tolerance`` in the pool table when token shares differ from document shares, or omit the
pool-level count that does not apply. Cut-offs are scores (higher is better unless
``higher_is_better = false``); buckets given by cut-offs need explicit sizes.

A composite ``score`` (:mod:`mixplan.data.composite`: the weighted sum of each column's rank-based
normal scores) is computed by ``mixplan scan`` over the pool's documents; its cut-offs are in composite
units. Without ``scores``, the columns a composite names are the pool's scores (the fields scan reads);
a ``score`` that reads as no spec and has no ``*`` is then a field name (with spaces, say). A field whose
name reads as a composite (``a+b``) must be listed in ``scores``.

Rewritten or synthetic pools (REWIRE, SynthLLM) are ordinary pools with their own parameters: they
are not buckets of another pool.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._checks import NAME_PATTERN, check_number
from ..exceptions import ValidationError
from ..laws.qqt import QQT_PUBLISHED
from .composite import Composite, parse_composite

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Bucket", "BucketSpec", "SIZE_TOLERANCE", "LAW_DEFAULTS", "parse_buckets", "percent_label", "bucket_scores",
           "score_spec"]

#: Relative mismatch allowed between a bucket's declared size and its share of the pool: rounding of
#: document counts and tokenizer differences, not a different cut.
SIZE_TOLERANCE = 0.02
#: The authors' shared constants per objective (Goyal et al. 2024, arXiv 2404.07177, as in
#: :data:`mixplan.laws.qqt.QQT_PUBLISHED`; ImageNet error of T-MARS deciles): the defaults when a
#: manifest gives no ``a`` or ``d``. They are *not* universal: fit them (``free``).
LAW_DEFAULTS: dict[str, dict[str, float]] = {fit["objective"]: {"a": fit["a"], "d": fit["d"]}
                                             for fit in QQT_PUBLISHED.values()}

_BUCKET_KEYS = {"name", "top", "cutoff", "tokens", "samples", "b", "tau", "r_star"}
_LAW_KEYS = {"objective", "a", "d", "unit"}
BUCKET_POOL_KEYS = {"score", "scores", "buckets", "cutoffs", "bucket", "law", "higher_is_better", "size_tolerance"}


@dataclass(frozen=True)
class Bucket:
    """One bucket of a pool, best first. ``top`` is the cumulative top fraction of documents it ends at
    (``None`` for buckets given by a score ``cutoff``); ``b``/``tau`` are its QQT parameters if known."""

    name: str
    tokens: float
    top: float | None = None
    cutoff: float | None = None
    samples: float | None = None
    b: float | None = None
    tau: float | None = None
    #: Muennighoff's R* of this bucket when repeated inside a mixture (the joint planner's law), if known
    r_star: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "top": self.top, "cutoff": self.cutoff, "tokens": self.tokens,
                "samples": self.samples, "b": self.b, "tau": self.tau, "r_star": self.r_star}


@dataclass(frozen=True)
class BucketSpec:
    """The buckets of one pool, best first, and the QQT law they share."""

    pool: str
    score: str
    buckets: tuple[Bucket, ...]
    objective: str = "effective_utility"
    a: float = LAW_DEFAULTS["effective_utility"]["a"]
    d: float = LAW_DEFAULTS["effective_utility"]["d"]
    unit: str = "tokens"
    scores: tuple[str, ...] = ()
    higher_is_better: bool = True
    #: Which of a, d the manifest set (the others are the authors' defaults).
    given: tuple[str, ...] = ()
    where: str = ""
    #: Relative size mismatch accepted (the pool's ``size_tolerance``).
    tolerance: float = SIZE_TOLERANCE

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.buckets]

    def sizes(self) -> np.ndarray:
        """Bucket sizes in the law's unit (``unit``: tokens or samples)."""
        return np.array([b.samples if self.unit == "samples" else b.tokens for b in self.buckets], dtype=float)

    def union_label(self, k: int) -> str:
        """Name of the union of the ``k`` best buckets: ``top_20`` (top fractions) or ``score>=0.8``."""
        last = self.buckets[k - 1]
        if last.top is not None:
            return f"top_{percent_label(last.top)}"
        op = ">=" if self.higher_is_better else "<="
        return f"{self.score}{op}{last.cutoff:g}"

    def keep_fraction(self, k: int) -> float | None:
        return self.buckets[k - 1].top

    def resolve(self, label: str, where: str = "") -> tuple[int, ...]:
        """Bucket indices (0-based) of a runs-table label: a bucket name, ``top_20`` / ``top20`` (the
        buckets down to the top 20%), or names joined by ``+``."""
        text = str(label).strip()
        names = self.names
        if text in names:
            return (names.index(text),)
        m = re.fullmatch(r"top_?(\d+(?:\.\d+)?)%?", text)
        if m:
            frac = float(m.group(1)) / 100
            for i, b in enumerate(self.buckets):
                if b.top is not None and abs(b.top - frac) < 1e-9:
                    return tuple(range(i + 1))
            tops = [f"top_{percent_label(b.top)}" for b in self.buckets if b.top is not None]
            raise ValidationError(f"{where}bucket {text!r}: no bucket ends at the top {percent_label(frac)}% of pool "
                                  f"{self.pool!r}; unions are {tops or 'not defined by top fractions'}, buckets "
                                  f"{names}")
        if "+" in text:
            parts = [t.strip() for t in text.split("+")]
            bad = [t for t in parts if t not in names]
            if not bad and len(set(parts)) == len(parts):
                return tuple(sorted(names.index(t) for t in parts))
        raise ValidationError(f"{where}bucket {text!r} is not a bucket of pool {self.pool!r}: write a bucket name "
                              f"({', '.join(names)}), a union of the best buckets as top_20, or names joined by '+'")

    def units(self, tolerance: float | None = None) -> np.ndarray:
        """Each bucket's size as an integer multiple of the smallest.

        The QQT union law (Goyal et al. 2024; :func:`mixplan.laws.qqt.qqt_union_error`) mixes
        *equal-size* pools uniformly. A bucket twice the size of the others is, in a uniform mixture
        over samples, two equal pools with the same (b, tau): it counts twice in the mean utility and
        in the pool count of the tau scaling. With equal buckets this is exactly the authors' law.
        Sizes that are not near-integer multiples cannot be mixed by the law.
        """
        tolerance = self.tolerance if tolerance is None else tolerance
        s = self.sizes()
        m = np.maximum(np.round(s / s.min()), 1)
        unit = s.sum() / m.sum()  # the common size; each bucket may miss its multiple by the tolerance
        bad = np.flatnonzero(np.abs(s - m * unit) > tolerance * m * unit)
        if len(bad):
            i = int(bad[0])
            raise ValidationError(
                f"{self.where}pool {self.pool!r}, bucket {self.buckets[i].name!r}, field {self.unit!r}: the bucket "
                f"sizes {[float(f'{x:.6g}') for x in s]} are not whole multiples of one common size (tolerance "
                f"{100 * tolerance:g}%); the QQT union law mixes equal-size buckets uniformly (Goyal et al. 2024): choose "
                "top fractions on a common step (e.g. 0.1, 0.2, 0.3, 0.5)")
        return m.astype(int)

    def to_dict(self) -> dict[str, Any]:
        return {"pool": self.pool, "score": self.score, "scores": list(self.scores), "objective": self.objective,
                "a": self.a, "d": self.d, "unit": self.unit, "higher_is_better": self.higher_is_better,
                "size_tolerance": self.tolerance,
                "buckets": [b.to_dict() for b in self.buckets]}


def percent_label(frac: float) -> str:
    return f"{100 * frac:.6g}"


def _share_of(top: float, prev: float, total: float) -> float:
    """Size of the top ``prev..top`` share of ``total``, in whole units: counts are integers, and
    ``0.3 - 0.2`` is not ``0.1`` in floating point (equal buckets must come out equal)."""
    return float(round(top * total) - round(prev * total)) or (top - prev) * total


def parse_buckets(spec: Mapping[str, Any], pool: str, tokens: float, samples: float | None,
                  path: str | Path = "", measured: bool = True) -> BucketSpec | None:
    """The :class:`BucketSpec` of one manifest pool table, or ``None`` if it declares no buckets.

    Every error names the file, the pool, the bucket and the field, and says how to fix it.
    ``measured=False`` reads a manifest that ``mixplan scan`` is about to measure: cut-off buckets may
    leave out their sizes (a placeholder stands in) and sizes are not checked against each other.
    """
    from ..laws.qqt import QQT_OBJECTIVES

    at = f"{path}: " if str(path) else ""
    where = f"{at}pool {pool!r}"
    has = {k for k in ("buckets", "cutoffs", "bucket") if k in spec}
    if not has:
        # ``scores`` alone is allowed: the per-document ratings ``mixplan scan`` measures (quantiles)
        stray = sorted({"score", "law", "higher_is_better", "size_tolerance"} & set(spec))
        if stray:
            raise ValidationError(f"{where}: field(s) {stray} describe buckets but the pool declares none; add "
                                  "buckets = [0.1, 0.2, ...] (top fractions) or [[pools." + pool + ".bucket]] tables")
        return None
    if "score" not in spec:
        raise ValidationError(f"{where}, field 'score': a bucketed pool must name the score its buckets are cut by, "
                              "e.g. score = \"fasttext_hq\"")
    score = spec["score"]
    if not isinstance(score, str) or not score:
        raise ValidationError(f"{where}, field 'score': {score!r} must be the name of a score (a string)")
    scores = spec.get("scores", [])
    if not isinstance(scores, list) or not all(isinstance(s, str) for s in scores):
        raise ValidationError(f"{where}, field 'scores': must be a list of score names, e.g. "
                              "[\"fasttext_hq\", \"dclm\"]")
    comp = score_spec(score, scores, where)
    score = comp.spec
    scores = scores or ([] if comp.single else comp.columns)  # a composite's columns are then the pool's scores
    hib = spec.get("higher_is_better", True)
    if not isinstance(hib, bool):
        raise ValidationError(f"{where}, field 'higher_is_better': must be true or false")
    tol = check_number(spec.get("size_tolerance", SIZE_TOLERANCE), f"{where}, field 'size_tolerance'", lo=0.0,
                       lo_open=True, fix="a relative tolerance such as 0.05")

    # --- the law the buckets share
    law = spec.get("law", {})
    if not isinstance(law, dict):
        raise ValidationError(f"{where}, field 'law': must be a table ([pools.{pool}.law])")
    extra = set(law) - _LAW_KEYS
    if extra:
        raise ValidationError(f"{where}, field 'law': unknown key(s) {sorted(extra)}; allowed: {sorted(_LAW_KEYS)}")
    objective = law.get("objective", "effective_utility")
    if objective not in QQT_OBJECTIVES:
        raise ValidationError(f"{where}, field 'law.objective': {objective!r} is not one of {list(QQT_OBJECTIVES)}")
    a = check_number(law.get("a", LAW_DEFAULTS[objective]["a"]), f"{where}, field 'law.a'", lo=0.0, lo_open=True,
                     fix="the authors use 0.025 (utility fit) and 0.022 (effective-data fit)")
    d = check_number(law.get("d", LAW_DEFAULTS[objective]["d"]), f"{where}, field 'law.d'",
                     fix="the irreducible error, >= 0 (the authors use 0.1)")
    if d < 0:
        raise ValidationError(f"{where}, field 'law.d': {d!r} must be >= 0 (the irreducible error)")
    unit = law.get("unit", "tokens")
    if unit not in ("tokens", "samples"):
        raise ValidationError(f"{where}, field 'law.unit': {unit!r} must be \"tokens\" or \"samples\" (what budgets "
                              "and bucket sizes count)")

    # --- the buckets
    if "bucket" in has and has & {"buckets", "cutoffs"}:
        raise ValidationError(f"{where}: give the buckets once, either as buckets = [...] / cutoffs = [...] or as "
                              f"[[pools.{pool}.bucket]] tables, not both")
    if has == {"buckets", "cutoffs"}:
        raise ValidationError(f"{where}: give either 'buckets' (top fractions) or 'cutoffs' (scores), not both")
    if "bucket" in spec:
        raw = spec["bucket"]
        if not isinstance(raw, list) or not raw or not all(isinstance(r, dict) for r in raw):
            raise ValidationError(f"{where}, field 'bucket': write one [[pools.{pool}.bucket]] table per bucket")
    else:
        key = "buckets" if "buckets" in spec else "cutoffs"
        values = spec[key]
        if not isinstance(values, list) or not values:
            raise ValidationError(f"{where}, field {key!r}: must be a non-empty list, e.g. {key} = "
                                  + ("[0.1, 0.2, 0.3, 0.4]" if key == "buckets" else "[0.9, 0.8, 0.7]"))
        raw = [{"top" if key == "buckets" else "cutoff": v} for v in values]
    for i, r in enumerate(raw):
        extra = set(r) - _BUCKET_KEYS
        if extra:
            raise ValidationError(f"{where}, bucket {i + 1}: unknown field(s) {sorted(extra)}; allowed: "
                                  f"{sorted(_BUCKET_KEYS)}")
    by_top = ["top" in r for r in raw]
    by_cut = ["cutoff" in r for r in raw]
    for i, r in enumerate(raw):
        if by_top[i] == by_cut[i]:
            raise ValidationError(f"{where}, bucket {i + 1}: give exactly one of 'top' (cumulative top fraction) "
                                  "and 'cutoff' (score)")
    if any(by_top) and any(by_cut):
        raise ValidationError(f"{where}: every bucket must be given the same way, all by 'top' or all by 'cutoff'")

    buckets: list[Bucket] = []
    prev_top, prev_cut = 0.0, None
    for i, r in enumerate(raw):
        top = r.get("top")
        if top is not None:
            top = check_number(top, f"{where}, bucket {i + 1}, field 'top'", lo=0.0, lo_open=True, hi=1.0,
                               fix="a cumulative top fraction such as 0.1")
        label = str(r.get("name", "")) or (f"top{percent_label(top)}" if i == 0 and top is not None else
                                           f"top{percent_label(prev_top)}_{percent_label(top)}" if top is not None else f"bucket{i + 1}")
        bw = f"{where}, bucket {label!r}"
        if not NAME_PATTERN.match(label):
            raise ValidationError(f"{bw}, field 'name': use letters, digits, '_', '-', '.' (it names runs and unions)")
        if any(b.name == label for b in buckets):
            raise ValidationError(f"{bw}, field 'name': defined twice; give each bucket its own name")
        cutoff = None
        if top is not None:
            if top <= prev_top:
                raise ValidationError(
                    f"{bw}, field 'top': {top:g} is not above the previous bucket's {prev_top:g}; top fractions "
                    "are cumulative and strictly increasing (buckets may not overlap): e.g. [0.1, 0.2, 0.3, 0.4]")
        else:
            cutoff = check_number(r["cutoff"], f"{bw}, field 'cutoff'", fix="a score value")
            if prev_cut is not None and ((cutoff >= prev_cut) if hib else (cutoff <= prev_cut)):
                raise ValidationError(
                    f"{bw}, field 'cutoff': {cutoff:g} is not {'below' if hib else 'above'} the previous cut-off "
                    f"{prev_cut:g}; cut-offs go from the best bucket down and must be strictly "
                    f"{'decreasing' if hib else 'increasing'} (buckets may not overlap)"
                    + ("" if hib else " with higher_is_better = false"))
        share = None if top is None else top - prev_top
        b_tokens = r.get("tokens")
        if b_tokens is None and share is None and not measured:
            b_tokens = tokens  # a placeholder: the scan measures it
        if b_tokens is None:
            if share is None:
                raise ValidationError(f"{bw}, field 'tokens': a bucket given by a score cut-off needs its size "
                                      "(tokens = ...); compute it with 'mixplan filter --bucket-scores'")
            b_tokens = _share_of(top, prev_top, tokens)
        b_tokens = check_number(b_tokens, f"{bw}, field 'tokens'", lo=0.0, lo_open=True,
                                fix="the bucket's size in tokens")
        b_samples = r.get("samples")
        if b_samples is None and share is not None and samples is not None:
            b_samples = _share_of(top, prev_top, samples)
        if b_samples is not None:
            b_samples = check_number(b_samples, f"{bw}, field 'samples'", lo=0.0, lo_open=True,
                                     fix="the bucket's number of documents")
        if share is not None and measured:
            for fld, have, total in (("tokens", b_tokens, tokens), ("samples", b_samples, samples)):
                if have is None or total is None or fld not in r:
                    continue
                want = share * total
                if abs(have - want) > tol * want:
                    raise ValidationError(
                        f"{bw}, field {fld!r}: {have:.6g} is not the {share:.4g} share of the pool's {fld} it claims "
                        f"(top {percent_label(prev_top)}-{percent_label(top)}% of {total:.6g} = {want:.6g}, tolerance "
                        f"{100 * tol:g}%): fix the size or the fraction, or raise size_tolerance if the token "
                        "share of a score cut really differs from its document share")
        b = r.get("b")
        if b is not None:
            b = check_number(b, f"{bw}, field 'b'", hi=0.0, hi_open=True, why="a utility lowers the error",
                             fix="e.g. b = -0.16")
        tau = r.get("tau")
        if tau is not None:
            tau = check_number(tau, f"{bw}, field 'tau'", lo=0.0, lo_open=True,
                               fix="the half-life in passes, e.g. tau = 6.7")
        if (b is None) != (tau is None):
            raise ValidationError(f"{bw}: give both 'b' and 'tau' (or neither, and fit them with 'mixplan filter "
                                  "--runs')")
        r_star = r.get("r_star")
        if r_star is not None:
            r_star = check_number(r_star, f"{bw}, field 'r_star'", lo=0.0, lo_open=True,
                                  fix="Muennighoff's R*, the repetitions over which a repeat's value decays by e, "
                                      "e.g. 15.4")
        buckets.append(Bucket(name=label, tokens=b_tokens, top=top, cutoff=cutoff, samples=b_samples, b=b, tau=tau,
                              r_star=r_star))
        prev_top = top if top is not None else prev_top
        prev_cut = cutoff
    for fld, total in (("tokens", tokens), ("samples", samples)):
        vals = [getattr(bk, fld) for bk in buckets]
        if total is None or any(v is None for v in vals) or not measured:
            continue
        if sum(vals) > total * (1 + tol):
            raise ValidationError(f"{where}, field {fld!r}: the buckets hold {sum(vals):.6g} {fld}, more than the "
                                  f"pool's {total:.6g}; buckets cannot cover more than the pool: fix the sizes")
    if unit == "samples" and any(bk.samples is None for bk in buckets):
        missing = next(bk.name for bk in buckets if bk.samples is None)
        raise ValidationError(f"{where}, bucket {missing!r}, field 'samples': law.unit = \"samples\" needs every "
                              f"bucket's document count (or the pool's 'samples' with top fractions)")
    out = BucketSpec(pool=pool, score=score, buckets=tuple(buckets), objective=objective, a=a, d=d, unit=unit,
                     scores=tuple(scores), higher_is_better=hib, given=tuple(k for k in ("a", "d") if k in law),
                     where=at, tolerance=tol)
    # Sizes that are not whole multiples of one size are checked where the QQT union law needs them
    # (mixplan filter: BucketSpec.units), not here: the joint planner reads each bucket as a pool of its
    # own size, and cut-off buckets measured by a scan rarely come out as multiples.
    return out


def score_spec(score: str, scores: Sequence[str] = (), where: str = "", label: str = "field 'score'") -> Composite:
    """The spec a pool's buckets are cut by (``where``: ``"FILE: pool 'NAME'"``, for the errors): one of the
    pool's ``scores`` (any name), or a composite of them (:func:`mixplan.data.composite.parse_composite`;
    canonical text). Without ``scores`` any column is accepted: a composite's columns, or a ``score`` that
    reads as no spec and has no ``*``, taken as one field's name. ``label`` names the setting in the errors
    (``--score`` for a flag)."""
    prefix = f"{where}, {label}: " if where else f"{label}: "
    if score in scores:
        return Composite(score, ((score, 1.0),))
    fix = "name one of them, add it to 'scores', or write a weighted sum of them such as \"0.7*dclm + 0.3*fasttext\""
    try:
        comp = parse_composite(score, None, prefix)
    except ValidationError:
        if scores:
            raise ValidationError(f"{prefix}{score!r} is not one of the pool's scores {list(scores)} "
                                  f"nor a weighted sum of them; {fix}") from None
        if "*" in score:  # meant as a composite: say what cannot be read
            raise
        return Composite(score, ((score, 1.0),))  # a field whose name no spec reads (spaces, brackets)
    missing = [c for c in comp.columns if c not in scores]
    if scores and missing:
        if comp.single:
            raise ValidationError(f"{prefix}{score!r} is not one of the pool's scores "
                                  f"{list(scores)}; {fix}")
        raise ValidationError(f"{prefix}the composite {comp.spec!r} names {missing[0]!r}, which is "
                              f"not one of the pool's scores {list(scores)}; add it to 'scores' or drop it from the "
                              "composite")
    return comp


def bucket_scores(scores: Any, fractions: Sequence[float], *, tokens: Any = None,
                  higher_is_better: bool = True) -> "pd.DataFrame":
    """Cut documents into buckets by score: bucket ``i`` holds the documents ranked in the top
    ``fractions[i-1]..fractions[i]`` (cumulative fractions of documents, increasing, in (0, 1]).

    Ranking is by score (best first), ties broken by position so that the cut is exact and
    deterministic. Returns one row per bucket: ``bucket``, ``top``, ``cutoff`` (the lowest score kept,
    for ``higher_is_better``), ``documents``, ``tokens`` (if ``tokens`` is given), ``token_share`` of the
    whole pool, ``score_max`` and ``tied_at_cutoff`` (documents outside the bucket with exactly its
    cut-off score: a filter by ``score >= cutoff`` alone would also keep them).
    """
    import pandas as pd

    s = np.asarray(scores, dtype=float)
    if s.ndim != 1 or s.size == 0:
        raise ValidationError("bucket_scores: scores must be a non-empty 1-D array (one score per document)")
    bad = np.flatnonzero(~np.isfinite(s))
    if len(bad):
        raise ValidationError(f"bucket_scores: score of document {int(bad[0]) + 1} is {float(s[bad[0]])!r}; every "
                              "document needs a finite score (drop or re-score the others first)")
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
            raise ValidationError(f"bucket_scores: token count of document {int(bad[0]) + 1} is {float(t[bad[0]])!r}; "
                                  "counts must be finite and >= 0")
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
