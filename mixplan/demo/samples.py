"""The demo study's revealed samples and held-out sets as OT-study samples (``--samples demo``,
``--validation demo:NAME``): 512-byte pieces of the demo pools' text, read from installed packages."""

from __future__ import annotations

from ..exceptions import ValidationError
from ..transport.study import Samples, check_per_pool
from . import corpora

__all__ = ["DEMO_PER_POOL", "is_demo_spec", "read_demo_samples"]

#: Revealed samples per pool for ``demo`` (512-byte pieces), unless ``per_pool`` says otherwise.
DEMO_PER_POOL = 200


def is_demo_spec(spec: str) -> bool:
    """``demo`` (the demo pools' revealed samples) or ``demo:NAME[,NAME...]`` (their held-out text)."""
    return spec == "demo" or spec.startswith("demo:")


def read_demo_samples(spec: str, *, pooled: bool, per_pool: int | None = None, seed: int = 0) -> Samples:
    """Revealed samples (``pooled``: ``demo``) or a validation set (``demo:NAME[,NAME...]``, the held-out
    text on which the demo's ``bpb_<NAME>`` metrics are measured)."""
    what = "revealed samples" if pooled else "validation set"
    check_per_pool(per_pool)
    if pooled:
        if spec != "demo":
            raise ValidationError(f"{what}: write 'demo' for the demo pools' revealed samples (got {spec!r})")
        frame = corpora.sample_table(per_pool or DEMO_PER_POOL, seed=seed)
    else:
        names = [n for n in spec.partition(":")[2].split(",") if n]
        if not names:
            raise ValidationError(f"{what}: write demo:NAME (e.g. demo:reviews) for a demo held-out set")
        frame = corpora.heldout_table(names, seed=seed)
    return Samples(spec, frame["pool"].to_numpy(dtype=str) if pooled else None, frame["text"].tolist())
