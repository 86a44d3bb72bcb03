"""Derived pools: text made from another pool's text (rewritten or synthetic), and which part it came from.

A manifest pool may say where its text comes from::

    [pools.wiki_rw]
    tokens = 2_100_000            # the derived text's own tokens: new text, its own unique tokens
    kind = "rewritten"            # "raw", "rewritten" or "synthetic" (default: rewritten with derived_from)
    derived_from = "wiki"         # the parent pool (required for "rewritten", optional for "synthetic")
    from_buckets = ["q4", "q5"]   # the parent's part it was made from: buckets of a bucketed parent,
    # from_fraction = 0.4         # or that share of the parent's tokens, in (0, 1],
    # from_tokens = 1.9e6         # or that many of its tokens (with buckets or a fraction: at most that part)

A rewritten pool (REWIRE, Nguyen et al. 2025: low-quality documents that filtering would drop, rewritten by
an LM; about 82% of their mixed-in text came from such documents) is made from the part of its parent a
filter rejects: using it does not shrink the parent's kept part, and its tokens are new unique tokens, so
nothing is counted twice -- the parent keeps its own ``tokens``, the derived pool has its own. A synthetic
pool may name the pool it was generated from, or none.

The checks that need the whole manifest (the parent exists, no cycle of derivations, the named buckets
exist, the part is not larger than its source) are :func:`check_derivations`; every error names the file,
the pool and the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._checks import check_number
from ..exceptions import ValidationError

__all__ = ["DERIVED_KEYS", "KINDS", "POOL_LAW_FORMS", "Derivation", "check_derivations", "parse_derivation",
           "is_pool_law", "parse_pool_law", "source_part"]

#: What a pool's text is: as collected, rewritten from another pool's documents, or generated.
KINDS = ("raw", "rewritten", "synthetic")
#: The manifest fields of a derivation (a pool table's keys besides the plain pool's).
DERIVED_KEYS = frozenset({"kind", "derived_from", "from_buckets", "from_fraction", "from_tokens"})


@dataclass(frozen=True)
class Derivation:
    """Where a pool's text comes from: its ``kind``, its ``parent`` pool (or None) and the parent's part
    (``buckets``, a token ``fraction``, or ``tokens``; none of them: the whole parent)."""

    kind: str = "raw"
    parent: str | None = None
    buckets: tuple[str, ...] = ()
    fraction: float | None = None
    tokens: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "derived_from": self.parent, "from_buckets": list(self.buckets),
                "from_fraction": self.fraction, "from_tokens": self.tokens}


def parse_derivation(spec: Mapping[str, Any], where: str) -> Derivation | None:
    """The derivation a pool table declares (None for a plain pool); checks what one table can show.
    ``where`` names the file and the pool in errors."""
    if not DERIVED_KEYS & set(spec):
        return None
    kind = spec.get("kind", "rewritten" if "derived_from" in spec else "raw")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValidationError(f"{where}, field 'kind': {kind!r} is not one of {', '.join(KINDS)}")
    parent = spec.get("derived_from")
    if parent is not None and (not isinstance(parent, str) or not parent):
        raise ValidationError(f"{where}, field 'derived_from': {parent!r} should name the pool the text comes from")
    if kind == "rewritten" and parent is None:
        raise ValidationError(f"{where}, field 'derived_from': a rewritten pool names the pool it was rewritten "
                              "from, e.g. derived_from = \"web\"")
    parts = [k for k in ("from_buckets", "from_fraction", "from_tokens") if k in spec]
    if parts and parent is None:
        raise ValidationError(f"{where}, field {parts[0]!r}: says which part of the parent the text comes from, "
                              "but no derived_from names a parent")
    if kind == "raw" and parent is not None:
        raise ValidationError(f"{where}, field 'kind': a raw pool is not derived from another; set kind = "
                              "\"rewritten\" or \"synthetic\", or remove derived_from")
    if "from_buckets" in spec and "from_fraction" in spec:
        raise ValidationError(f"{where}, field 'from_fraction': give the parent's part once, as from_buckets or "
                              "as from_fraction")
    buckets = spec.get("from_buckets", [])
    if "from_buckets" in spec and not _distinct_names(buckets):
        raise ValidationError(f"{where}, field 'from_buckets': {buckets!r} should be a list of distinct bucket "
                              "names of the parent, e.g. [\"q4\", \"q5\"]")
    fraction = _number(spec, "from_fraction", where, high=1.0)
    tokens = _number(spec, "from_tokens", where)
    return Derivation(kind=kind, parent=parent, buckets=tuple(buckets), fraction=fraction, tokens=tokens)


#: The per-pool data laws a manifest may give a pool (beyond repetition): SynthLLM's rectified law.
POOL_LAW_FORMS = ("synthetic",)
_POOL_LAW_PARAMS = {"D_l": True, "beta": True, "B": False, "E": False}  # name: required


def is_pool_law(law: Any) -> bool:
    """Whether a pool's ``law`` field is a per-pool data law (a path to a fitted law, or a table with a
    ``form``) rather than a bucketed pool's QQT law table."""
    return isinstance(law, str) or (isinstance(law, Mapping) and "form" in law)


def parse_pool_law(law: Any, where: str, base: Any = None) -> dict[str, float]:
    r"""A pool's own data law: ``[pools.NAME.law]`` with ``form = "synthetic"`` and the rectified law's ``D_l``
    and ``beta`` (``B``, ``E`` optional: they do not change what the tokens are worth), or the path (relative
    to the manifest's folder ``base``) of a ``FIT.json`` from ``mixplan laws fit --law synthetic``. Returns
    the parameters by name with ``form``. ``where`` names the file and the pool."""
    from pathlib import Path

    if isinstance(law, str):
        from ..laws.fitting import read_law_fit

        path = Path(law) if base is None or Path(law).is_absolute() else Path(base) / law
        try:
            doc = read_law_fit(path)
        except ValidationError as exc:
            raise ValidationError(f"{where}, field 'law': {exc}") from None
        if doc["law"] != "synthetic":
            raise ValidationError(f"{where}, field 'law': {law} is a fitted {doc['law']!r} law; a pool's own law is "
                                  "SynthLLM's rectified law (mixplan laws fit --law synthetic)")
        law = {"form": "synthetic"} | {k: doc["params"][k] for k in _POOL_LAW_PARAMS}
    form = law.get("form")
    if form not in POOL_LAW_FORMS:
        raise ValidationError(f"{where}, field 'law.form': {form!r} is not one of {', '.join(POOL_LAW_FORMS)}")
    extra = sorted(set(law) - set(_POOL_LAW_PARAMS) - {"form"})
    if extra:
        raise ValidationError(f"{where}, field 'law': unknown key(s) {extra}; a synthetic law has "
                              f"{', '.join(_POOL_LAW_PARAMS)}")
    out: dict[str, Any] = {"form": form}
    for key, required in _POOL_LAW_PARAMS.items():
        if key not in law:
            if required:
                raise ValidationError(f"{where}, field 'law.{key}': required for the rectified law L(D) = E + "
                                      "B/(D_l + D)^beta (fit it with mixplan laws fit --law synthetic)")
            continue
        out[key] = check_number(law[key], f"{where}, field 'law.{key}'", lo=0, lo_open=key != "E")
    return out


def _distinct_names(v: Any) -> bool:
    return (isinstance(v, list) and bool(v) and all(isinstance(b, str) and b for b in v)
            and len(set(v)) == len(v))


def _number(spec: Mapping[str, Any], key: str, where: str, high: float | None = None) -> float | None:
    if key not in spec:
        return None
    return check_number(spec[key], f"{where}, field {key!r}", lo=0, lo_open=True, hi=high)


# The pools are mixplan.data.pools.Pool objects, typed Any here: that module imports this one.
def source_part(pool: Any, pools: Mapping[str, Any]) -> float:
    """The tokens of the parent's part ``pool`` was made from (its buckets, its fraction, or all of it)."""
    d = pool.derivation
    parent = pools[d.parent]
    if d.buckets:
        return float(sum(b.tokens for b in parent.buckets.buckets if b.name in d.buckets))
    return parent.tokens * (d.fraction if d.fraction is not None else 1.0)


def check_derivations(pools: Sequence[Any], where: str) -> None:
    """What needs the whole manifest: each parent exists and is another pool, derivations form no cycle,
    ``from_buckets`` are buckets of the parent, and ``from_tokens`` fits in the part it names."""
    by_name = {p.name: p for p in pools}
    for pool in pools:
        d = pool.derivation
        if d is None or d.parent is None:
            continue
        here = f"{where}: pool {pool.name!r}"
        if d.parent not in by_name:
            raise ValidationError(f"{here}, field 'derived_from': no pool {d.parent!r} in the manifest (pools: "
                                  f"{', '.join(by_name)}); name the pool the text comes from")
        chain, step = [pool.name], by_name[d.parent]
        while True:  # parents exist (checked pool by pool), so the walk ends at a root or comes back round
            chain.append(step.name)
            if step.name == pool.name:
                raise ValidationError(f"{here}, field 'derived_from': the derivations form a cycle "
                                      f"({' -> '.join(chain)}); a pool cannot come from itself")
            if step.derivation is None or step.derivation.parent is None or step.derivation.parent not in by_name:
                break
            step = by_name[step.derivation.parent]
        parent = by_name[d.parent]
        if d.buckets:
            if parent.buckets is None:
                raise ValidationError(f"{here}, field 'from_buckets': pool {d.parent!r} is not cut into quality "
                                      "buckets; use from_fraction, or declare its buckets")
            unknown = [b for b in d.buckets if b not in parent.buckets.names]
            if unknown:
                raise ValidationError(f"{here}, field 'from_buckets': {unknown[0]!r} is not a bucket of pool "
                                      f"{d.parent!r} (its buckets: {', '.join(parent.buckets.names)})")
        if d.tokens is not None:
            part = source_part(pool, by_name)
            if d.tokens > part * (1 + 1e-9):
                what = (f"buckets {', '.join(d.buckets)}" if d.buckets else
                        f"{d.fraction:g} of it" if d.fraction is not None else "all of it")
                raise ValidationError(f"{here}, field 'from_tokens': {d.tokens:.6g} tokens is more than the part of "
                                      f"{d.parent!r} it names ({what}: {part:.6g} tokens); a derived part cannot be "
                                      "larger than its source")
