"""What a "token" is in a study: UTF-8 bytes, whitespace words, or a real tokenizer's tokens.

:func:`token_counter` returns a function from a batch of texts to their token counts.
``"bytes"`` and ``"words"`` need nothing; a path to a ``tokenizer.json`` (Hugging Face ``tokenizers``
format, the file every modern tokenizer ships) is loaded with the ``tokenizers`` library and
batch-encoded without special tokens, so the counts are what a training pipeline packs. The unit's
name (``bytes``, ``words``, or ``tokenizer:<file name>``) goes into the manifest's ``[study]
token_unit``: the planner refuses to mix studies counted in different units.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..exceptions import ValidationError

__all__ = ["counts_model_tokens", "in_manifest_unit", "token_counter", "token_unit_name", "tokenizer_digest"]

Counter = Callable[[Sequence[str]], np.ndarray]


def _bytes(texts: Sequence[str]) -> np.ndarray:
    return np.fromiter((len(t.encode("utf-8")) for t in texts), dtype=np.int64, count=len(texts))


def _words(texts: Sequence[str]) -> np.ndarray:
    return np.fromiter((len(t.split()) for t in texts), dtype=np.int64, count=len(texts))


def _load_tokenizer(path: str) -> object:
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise ValidationError("--tokenizer PATH needs the 'tokenizers' package (pip install tokenizers)") from None
    if not Path(path).is_file():
        raise ValidationError(f"--tokenizer {path}: no such file; give a tokenizer.json, or bytes / words")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # the library raises its own (Rust) exception types
        raise ValidationError(f"--tokenizer {path}: not a tokenizers tokenizer.json ({str(exc).splitlines()[0]})"
                              ) from None


def token_counter(tokenizer: str = "bytes") -> Counter:
    """Token counts of a batch of texts in the unit ``tokenizer``: ``"bytes"``, ``"words"`` or a path to
    a ``tokenizer.json``."""
    if tokenizer == "bytes":
        return _bytes
    if tokenizer == "words":
        return _words
    tok = _load_tokenizer(tokenizer)

    def count(texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=np.int64)
        enc = tok.encode_batch_fast(list(texts), add_special_tokens=False) if hasattr(tok, "encode_batch_fast") \
            else tok.encode_batch(list(texts), add_special_tokens=False)
        return np.fromiter((len(e.ids) for e in enc), dtype=np.int64, count=len(enc))

    return count


def token_unit_name(tokenizer: str) -> str:
    """The manifest's ``token_unit`` for ``tokenizer``."""
    return tokenizer if tokenizer in ("bytes", "words") else f"tokenizer:{os.path.basename(tokenizer)}"


def tokenizer_digest(tokenizer: str) -> str | None:
    """SHA-256 of a tokenizer file (None for bytes / words): which tokenizer counted, for the report."""
    if tokenizer in ("bytes", "words"):
        return None
    return hashlib.sha256(Path(tokenizer).read_bytes()).hexdigest()


def counts_model_tokens(unit: str) -> bool:
    """Whether a manifest's ``token_unit`` counts a language model's tokens: ``tokens`` (the default:
    the user's own counts) or ``tokenizer:<file>`` (a scan with a real tokenizer). Bytes, words and
    samples are not: the compute laws (C = 6 N D, Chinchilla's D) count tokens."""
    return unit == "tokens" or unit.startswith("tokenizer:")


def in_manifest_unit(tokens: float, unit: str, units_per_token: float | None, flag: str = "--flops") -> float:
    """``tokens`` (a language model's tokens, as a compute law gives them) in the manifest's ``unit``.

    Refused without ``units_per_token`` when the manifest counts something else (bytes, words): a budget
    in tokens against pools in bytes would misstate every pool's epochs by the bytes per token (about
    4 for English BPE), silently.
    """
    if counts_model_tokens(unit):
        if units_per_token is not None:
            raise ValidationError(f"--units-per-token converts a budget into a manifest counted in bytes, words or "
                                  f"samples; this manifest counts {unit}: drop --units-per-token")
        return float(tokens)
    if units_per_token is None:
        raise ValidationError(
            f"{flag} gives a budget in a language model's tokens, but the pool manifest counts {unit} ([study] "
            f"token_unit): give --units-per-token K ({unit} per token, e.g. 4.2 bytes per token for an English BPE), "
            "or scan the pools with your tokenizer (mixplan scan --tokenizer tokenizer.json)")
    if not (math.isfinite(units_per_token) and units_per_token > 0):
        raise ValidationError(f"--units-per-token: {units_per_token!r} must be a positive number")
    return float(tokens) * float(units_per_token)
