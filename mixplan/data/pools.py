"""Data pools: what can be mixed, how much of it exists, and the limits on its use.

A pool manifest is a TOML file with one table per pool::

    [study]                         # optional
    name = "demo"
    token_unit = "bytes"            # what a "token" is in this study (informational)

    [pools.wiki]
    tokens = 5_290_000              # unique tokens available (required, > 0 and < 1e16)
    description = "English Wikipedia extract"
    max_epochs = 4                  # at most this many passes at the target budget (default 4)
    min_weight = 0.0                # floor on the mixture weight (default 0)
    max_weight = 1.0                # cap on the mixture weight (default 1)
    prior = 0.3                     # centre of the search (default: token share)
    group = "web"                   # free-form grouping label
    r_star = 15.4                   # repetition decay R* of this pool (default: fitted or --r-star)
    [pools.wiki.source]             # where the text is: read by mixplan scan (mixplan.data.sources)
    type = "files"                  # "files", "datasets" or "package"
    paths = ["data/wiki/*.jsonl"]

A pool may be made from another pool's text (``kind = "rewritten"`` or ``"synthetic"``, ``derived_from``,
``from_buckets`` / ``from_fraction`` / ``from_tokens``): see :mod:`mixplan.data.derived`.

Pools may be nested into groups (a ``parent = "web"`` key, or nested tables ``[pools.web.topics.science]``):
a group is the sum of its leaves, with its own floor, cap and prior; see :mod:`mixplan.data.hierarchy`.

A pool may also be cut into quality buckets by a document score (``score``, ``buckets`` or
``cutoffs`` or ``[[pools.NAME.bucket]]`` tables, ``[pools.NAME.law]``, and ``samples``, the pool's
document count); see :mod:`mixplan.data.buckets` for the form and :mod:`mixplan.filtering` for what
``mixplan filter`` does with them. Everywhere else a bucketed pool is one pool of ``tokens``.

Loading validates everything and names the file, the pool and the field in every error.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._io import read_toml
from .._checks import NAME_PATTERN, check_number
from .buckets import BUCKET_POOL_KEYS, BucketSpec, parse_buckets
from .hierarchy import PoolGroup, check_groups, flatten_nested, hierarchical_prior, make_groups, resolve_parents
from .derived import DERIVED_KEYS, Derivation, check_derivations, is_pool_law, parse_derivation, parse_pool_law
from ..exceptions import ValidationError

__all__ = ["Pool", "PoolSet", "load_pools", "DEFAULT_MAX_EPOCHS", "MAX_POOL_SIZE", "POOL_KEYS"]

#: Default repetition limit: about four epochs are nearly as good as fresh data
#: (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models").
DEFAULT_MAX_EPOCHS = 4.0
#: A pool's ``tokens`` (and ``samples``) are below this: some 100x the largest text corpora known (~1e14 tokens),
#: so a larger value is a typo, and one near 1e308 would overflow the sums of pool sizes into inf.
MAX_POOL_SIZE = 1e16

#: Fields of a pool table (a nested table of tables under any other key is a level of child pools).
POOL_KEYS = {"tokens", "description", "source", "max_epochs", "min_weight", "max_weight", "prior",
             "group", "r_star", "samples", "scan", "parent"} | BUCKET_POOL_KEYS | DERIVED_KEYS
_SOURCE_KEYS = {
    "files": ({"paths"}, {"format", "text_field", "scorers"}),
    "datasets": (set(), {"builder", "path", "data_files", "split", "text_field", "scorers"}),
    "package": ({"package", "path"}, {"reader", "format", "text_field", "scorers"}),
}


@dataclass(frozen=True, slots=True)
class Pool:
    """One data pool. Checked on construction; see the module docstring for the fields."""

    name: str
    tokens: float
    description: str = ""
    max_epochs: float = DEFAULT_MAX_EPOCHS
    min_weight: float = 0.0
    max_weight: float = 1.0
    prior: float | None = None
    group: str = ""
    source: Mapping[str, Any] = field(default_factory=dict)
    r_star: float | None = None
    #: Documents in the pool (optional; quality buckets may be sized by it).
    samples: float | None = None
    #: Quality buckets of the pool (:mod:`mixplan.data.buckets`), or None.
    buckets: BucketSpec | None = None
    #: Where the pool's text comes from if it was made from another pool's (:mod:`mixplan.data.derived`).
    derivation: Derivation | None = None
    #: The pool's own data law (:func:`mixplan.data.derived.parse_pool_law`: SynthLLM's rectified law of a
    #: synthetic pool, ``form``, ``D_l``, ``beta``, ...), priced by the budget-aware objective; or None.
    law: Mapping[str, Any] | None = None
    #: The group this pool belongs to (:mod:`mixplan.data.hierarchy`), "" at the top level.
    parent: str = ""

    def __post_init__(self) -> None:
        where = f"pool {self.name!r}"
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise ValidationError(
                f"pool name {self.name!r} is not allowed: use letters, digits, '_', '-', '.' "
                "(it becomes the column name w_<pool> in run tables)")
        check_number(self.tokens, f"{where}, field 'tokens'", lo=0.0, lo_open=True)
        check_number(self.tokens, f"{where}, field 'tokens'", hi=MAX_POOL_SIZE, hi_open=True,
                     why="more than any corpus holds, the largest about 1e14; sizes near 1e308 overflow sums",
                     fix="check the value for a typo")
        check_number(self.max_epochs, f"{where}, field 'max_epochs'", lo=0.0, lo_open=True,
                      allow_inf=True)
        check_number(self.min_weight, f"{where}, field 'min_weight'", lo=0.0, hi=1.0)
        check_number(self.max_weight, f"{where}, field 'max_weight'", lo=0.0, hi=1.0)
        if self.min_weight > self.max_weight:
            raise ValidationError(
                f"{where}: min_weight {self.min_weight} is above max_weight {self.max_weight}; "
                "lower the floor or raise the cap")
        if self.prior is not None:
            check_number(self.prior, f"{where}, field 'prior'", lo=0.0)
        if self.r_star is not None:
            check_number(self.r_star, f"{where}, field 'r_star'", lo=0.0, lo_open=True)
        if self.samples is not None:
            check_number(self.samples, f"{where}, field 'samples'", lo=0.0, lo_open=True)
            check_number(self.samples, f"{where}, field 'samples'", hi=MAX_POOL_SIZE, hi_open=True,
                         why="more documents than any corpus holds", fix="check the value for a typo")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "tokens": self.tokens, "description": self.description,
                "max_epochs": self.max_epochs if math.isfinite(self.max_epochs) else None,
                "min_weight": self.min_weight, "max_weight": self.max_weight,
                "prior": self.prior, "group": self.group, "source": dict(self.source), "r_star": self.r_star} | (
                    {} if self.samples is None else {"samples": self.samples}) | (
                    {} if self.buckets is None else {"buckets": self.buckets.to_dict()}) | (
                    {} if self.derivation is None else {"derivation": self.derivation.to_dict()}) | (
                    {} if self.law is None else {"law": dict(self.law)}) | (
                    {"parent": self.parent} if self.parent else {})


@dataclass(frozen=True)
class PoolSet(Sequence[Pool]):
    """An ordered set of pools, as read from one manifest."""

    pools: tuple[Pool, ...]
    name: str = ""
    token_unit: str = "tokens"
    path: str | None = None
    #: False for pools known only by name (no manifest): token shares are then unknown.
    tokens_known: bool = True
    #: Groups of pools (:mod:`mixplan.data.hierarchy`), parents before their children; () for a flat set.
    groups: tuple[PoolGroup, ...] = ()

    def __post_init__(self) -> None:
        if not self.pools:
            raise ValidationError(f"{self.path or 'pool set'}: no pools defined; add [pools.NAME] tables")
        seen: set[str] = set()
        for p in self.pools:
            if p.name in seen:
                raise ValidationError(f"{self.path or 'pool set'}: pool {p.name!r} is defined twice")
            seen.add(p.name)
        check_derivations(self.pools, self.path or "pool set")
        if sum(p.min_weight for p in self.pools) > 1 + 1e-12:
            raise ValidationError(
                f"{self.path or 'pool set'}: the min_weight floors add up to "
                f"{sum(p.min_weight for p in self.pools):.6g} > 1; lower some floors")
        if self.groups:
            check_groups(self.groups, self.names, self.min_weight, self.max_weight, self.path or "pool set")

    def __len__(self) -> int:
        return len(self.pools)

    def __getitem__(self, i):  # type: ignore[override]
        return self.pools[i]

    def __iter__(self) -> Iterator[Pool]:
        return iter(self.pools)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.pools]

    def by_name(self, name: str) -> Pool:
        for p in self.pools:
            if p.name == name:
                return p
        raise ValidationError(f"{self.path or 'pool set'}: no pool named {name!r}; pools are {self.names}")

    @property
    def tokens(self) -> np.ndarray:
        return np.array([p.tokens for p in self.pools], dtype=float)

    @property
    def token_share(self) -> np.ndarray:
        t = self.tokens
        return t / t.sum()

    @property
    def prior(self) -> np.ndarray:
        """Pool priors (the manifest's, else the token share), normalised to sum to 1."""
        if self.groups:  # the product of shares down each leaf's path (mixplan.data.hierarchy)
            return hierarchical_prior(self.names, self.tokens, [p.prior for p in self.pools],
                                      [p.parent for p in self.pools], self.groups, self.path or "pool set")
        share = self.token_share
        raw = np.array([share[i] if p.prior is None else p.prior for i, p in enumerate(self.pools)])
        if raw.sum() <= 0:
            raise ValidationError(f"{self.path or 'pool set'}: all priors are 0; give at least one pool a positive prior")
        return raw / raw.sum()

    def group_by_name(self, name: str) -> PoolGroup:
        for g in self.groups:
            if g.name == name:
                return g
        raise ValidationError(f"{self.path or 'pool set'}: no group named {name!r}; groups are "
                              f"{[g.name for g in self.groups]}")

    def group_matrix(self) -> np.ndarray:
        """(groups, pools) 0/1: which leaves each group sums; ``W @ M.T`` are the groups' totals."""
        index = {n: i for i, n in enumerate(self.names)}
        M = np.zeros((len(self.groups), len(self.pools)))
        for k, g in enumerate(self.groups):
            M[k, [index[m] for m in g.members]] = 1.0
        return M

    @property
    def min_weight(self) -> np.ndarray:
        return np.array([p.min_weight for p in self.pools], dtype=float)

    @property
    def max_weight(self) -> np.ndarray:
        return np.array([p.max_weight for p in self.pools], dtype=float)

    @property
    def max_epochs(self) -> np.ndarray:
        return np.array([p.max_epochs for p in self.pools], dtype=float)

    @property
    def r_star(self) -> np.ndarray:
        """Each pool's repetition decay R* from the manifest, NaN where not set."""
        return np.array([np.nan if p.r_star is None else p.r_star for p in self.pools], dtype=float)

    @property
    def synthetic(self) -> np.ndarray | None:
        """Each pool's rectified law ``(D_l, beta)`` (P, 2), NaN for pools without one; None when no pool has one
        (what :func:`mixplan.mixture.repetition.effective_mixture` takes)."""
        if all(p.law is None for p in self.pools):
            return None
        return np.array([[p.law["D_l"], p.law["beta"]] if p.law is not None else [np.nan, np.nan]
                         for p in self.pools], dtype=float)

    @property
    def bucketed(self) -> list[Pool]:
        """The pools cut into quality buckets (``pool.buckets`` is set), in manifest order."""
        return [p for p in self.pools if p.buckets is not None]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "token_unit": self.token_unit, "path": self.path,
                "pools": [p.to_dict() for p in self.pools]} | (
                    {"groups": [g.to_dict() for g in self.groups]} if self.groups else {})

    @classmethod
    def from_names(cls, names: Sequence[str], tokens: Sequence[float] | None = None) -> "PoolSet":
        """Pools known only by name (no manifest): equal token counts unless given."""
        known = tokens is not None
        tokens = [1.0] * len(names) if tokens is None else tokens
        return cls(tuple(Pool(name=n, tokens=float(t), max_epochs=math.inf) for n, t in zip(names, tokens)),
                   tokens_known=known)


def load_pools(path: str | os.PathLike[str], *, measured: bool = True) -> PoolSet:
    """Read and validate a pool manifest (TOML). Errors name the file, the pool and the field.

    ``measured=False`` reads a manifest that ``mixplan scan`` is about to measure: a pool's ``tokens``
    and its cut-off buckets' sizes may be left out (placeholders stand in until the scan writes them).
    """
    path = Path(path)
    doc = read_toml(path, "pool manifest")
    unknown = set(doc) - {"study", "pools"}
    if unknown:
        raise ValidationError(f"{path}: unknown top-level key(s) {sorted(unknown)}; "
                              "a manifest has [study] and [pools.NAME] tables")
    study = doc.get("study", {})
    if not isinstance(study, dict):
        raise ValidationError(f"{path}: 'study' must be a table")
    raw_pools = doc.get("pools")
    if not isinstance(raw_pools, dict) or not raw_pools:
        raise ValidationError(f"{path}: no pools defined; add one [pools.NAME] table per pool")
    raw_pools = flatten_nested(raw_pools, str(path), POOL_KEYS)
    parents = resolve_parents({k: v for k, v in raw_pools.items() if isinstance(v, dict)}, str(path))
    group_names = set(parents.values())
    pools = []
    for name, spec in raw_pools.items():
        where = f"{path}: pool {name!r}"
        if not isinstance(spec, dict):
            raise ValidationError(f"{where}: must be a table ([pools.{name}])")
        if name in group_names:
            continue  # a group: its leaves are the columns (make_groups below checks its table)
        extra = set(spec) - POOL_KEYS
        if extra:
            raise ValidationError(f"{where}: unknown field(s) {sorted(extra)}; allowed: {sorted(POOL_KEYS)}")
        if "tokens" not in spec and measured:
            raise ValidationError(f"{where}: field 'tokens' (unique tokens available) is required")
        source = spec.get("source", {})
        _check_source(source, where)
        for key in ("description", "group"):
            if key in spec and not isinstance(spec[key], str):
                raise ValidationError(f"{where}, field {key!r}: must be a string")
        derivation = parse_derivation(spec, where)  # its errors name the file already
        law = None
        if is_pool_law(spec.get("law")):
            if any(k in spec for k in ("buckets", "cutoffs", "bucket")):
                raise ValidationError(f"{where}, field 'law': a bucketed pool's law is its buckets' QQT law "
                                      "(objective, a, d); a per-pool law (form = \"synthetic\") belongs to a pool "
                                      "without buckets")
            law = parse_pool_law(spec["law"], where, path.parent)
            spec = {k: v for k, v in spec.items() if k != "law"}
        try:
            pool = Pool(
                name=name, tokens=spec.get("tokens", 1.0), description=spec.get("description", ""),
                max_epochs=spec.get("max_epochs", DEFAULT_MAX_EPOCHS),
                min_weight=spec.get("min_weight", 0.0), max_weight=spec.get("max_weight", 1.0),
                prior=spec.get("prior"), group=spec.get("group", ""), source=source, r_star=spec.get("r_star"),
                samples=spec.get("samples"), derivation=derivation, law=law, parent=parents.get(name, ""))
        except ValidationError as exc:
            raise ValidationError(f"{path}: {exc}") from None
        # Bucket errors name the file themselves; the pool's tokens and samples are checked by now.
        buckets = parse_buckets(spec, name, float(pool.tokens), None if pool.samples is None else float(pool.samples),
                                path, measured=measured)
        pools.append(pool if buckets is None else replace(pool, buckets=buckets))
    groups = make_groups(raw_pools, parents, {p.name: float(p.tokens) for p in pools}, str(path), measured)
    return PoolSet(tuple(pools), name=str(study.get("name", path.stem)),
                   token_unit=str(study.get("token_unit", "tokens")), path=str(path), groups=groups)


def _check_source(source: Any, where: str) -> None:
    if source == {}:
        return
    if not isinstance(source, dict):
        raise ValidationError(f"{where}, field 'source': must be a table")
    kind = source.get("type")
    if not isinstance(kind, str) or kind not in _SOURCE_KEYS:
        raise ValidationError(f"{where}, field 'source.type': {kind!r} is not one of {sorted(_SOURCE_KEYS)}")
    required, optional = _SOURCE_KEYS[kind]
    missing = required - set(source)
    if missing:
        raise ValidationError(f"{where}, field 'source': type {kind!r} needs {sorted(missing)}")
    extra = set(source) - required - optional - {"type"}
    if extra:
        raise ValidationError(f"{where}, field 'source': unknown key(s) {sorted(extra)} for type {kind!r}")
    if kind == "datasets" and ("path" in source) == ("builder" in source):
        raise ValidationError(f"{where}, field 'source': a datasets source needs either path (a save_to_disk folder) "
                              "or builder (with data_files), not both")
