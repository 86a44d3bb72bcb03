"""Cheap per-document quality scores computed from the text itself (``mixplan scan``'s ``scorers``).

A pool's source may ask for scores the data does not carry: ``scorers = {prose_words = "prose"}``
computes the built-in :func:`prose_score` of every document, ``{mine = "package.module:function"}``
calls a user function ``str -> float`` (imported, never evaluated). Built-ins are listed in
:data:`BUILTIN_SCORERS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from ..exceptions import ValidationError
from .sources import import_function

__all__ = ["BUILTIN_SCORERS", "prose_score", "resolve_scorers"]

_WORD = re.compile(rb"[A-Za-z]+[.,;:!?'\")]*")


def prose_score(text: str | bytes) -> float:
    """Share of whitespace-separated tokens that are plain words (ASCII letters, optionally followed by
    punctuation); 0 for an empty text. A Gopher-style heuristic: running prose scores high, markup,
    tables, code and link lists low. Computed on the UTF-8 bytes (split at ASCII whitespace), so a
    text and its bytes score the same."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    tokens = data.split()
    return sum(1 for t in tokens if _WORD.fullmatch(t)) / len(tokens) if tokens else 0.0


#: Built-in scorers by name.
BUILTIN_SCORERS: dict[str, Callable[[str], float]] = {"prose": prose_score}


def resolve_scorers(spec: Mapping[str, str] | None, where: str = "") -> dict[str, Callable[[str], float]]:
    """Score name -> function, from a source's ``scorers`` table (a built-in name or ``module:function``)."""
    out: dict[str, Callable[[str], float]] = {}
    for name, ref in (spec or {}).items():
        ref = str(ref)
        if ref in BUILTIN_SCORERS:
            out[str(name)] = BUILTIN_SCORERS[ref]
            continue
        if ":" not in ref:
            raise ValidationError(f"{where}scorer {name!r} = {ref!r}: not a built-in ({', '.join(BUILTIN_SCORERS)}) "
                                  "nor module:function")
        out[str(name)] = import_function(ref, f"{where}scorer {name!r} = {ref!r}")
    return out
