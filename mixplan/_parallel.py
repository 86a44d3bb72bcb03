"""Ordered parallel map over independent tasks, deterministic for any number of workers.

Every task runs on one thread of its own (BLAS is pinned to one thread, LightGBM is given one), so a
task computes the same numbers whichever worker runs it and whenever; results come back in the order
of the tasks. Threads, not processes: the heavy parts (LAPACK, LightGBM, numpy kernels) release the
GIL, and nothing has to be pickled.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["default_jobs", "map_ordered", "resolve_jobs"]

T = TypeVar("T")
R = TypeVar("R")


def default_jobs() -> int:
    """The cores this process may use (its CPU affinity where the platform tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def resolve_jobs(jobs: int | None) -> int:
    """``None``, 0 or negative (scikit-learn's -1): every core; otherwise ``jobs``."""
    return default_jobs() if jobs is None or jobs <= 0 else int(jobs)


def map_ordered(fn: Callable[[T], R], items: Iterable[T], jobs: int = 1, progress: Any = None) -> list[R]:
    """``[fn(x) for x in items]`` on up to ``jobs`` threads; ``progress.update(1)`` after each result
    (called from this thread only)."""
    tasks: Sequence[T] = list(items)
    if jobs <= 1 or len(tasks) <= 1:
        out = []
        for x in tasks:
            out.append(fn(x))
            if progress is not None:
                progress.update(1)
        return out
    with ThreadPoolExecutor(max_workers=min(jobs, len(tasks))) as pool:
        futures = [pool.submit(fn, x) for x in tasks]
        out = []
        for f in futures:
            out.append(f.result())
            if progress is not None:
                progress.update(1)
        return out
