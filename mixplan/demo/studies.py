"""What the generators of the shipped demo studies share (``examples/bucket_study.py``,
``examples/derived_study.py``): which outputs a run may write, a run table's weights as printed, and a
bucket layout from a manifest's text.

Small steps, each one pure or one write-check, so that a generator reads as its study and not as
scaffolding.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._io import check_writable
from ..data.pools import load_pools
from ..exceptions import ValidationError
from ..mixture.buckets import BucketLayout

__all__ = ["check_outputs", "layout_from_text", "printed_weights"]


def check_outputs(files: Mapping[str, Path], trained: Sequence[str], *, reuse: bool, force: bool) -> None:
    """Before a generator trains anything: with ``reuse`` the ``trained`` tables (keys of ``files``) must be
    there, as they are read instead of written; every file it will write must be new, or ``force``."""
    if reuse and not all(Path(files[k]).is_file() for k in trained):
        raise ValidationError(f"--reuse needs {', '.join(str(files[k]) for k in trained)}; run once without --reuse")
    check_writable([f for k, f in files.items() if not (reuse and k in trained)], force)


def printed_weights(row: Mapping[str, Any], names: Sequence[str]) -> dict[str, float]:
    """A run's weights ``w_NAME`` exactly as its table prints them (10 significant digits; a pool without a
    column weighs 0), so that a shipped row re-trains bit for bit."""
    return {p: float(f"{row.get(f'w_{p}', 0.0):.10g}") for p in names}


def layout_from_text(text: str) -> BucketLayout:
    """The bucket layout of a manifest given as TOML text (read through a temporary file, as a user's is)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pools.toml"
        path.write_text(text)
        return BucketLayout.from_pools(load_pools(path))
