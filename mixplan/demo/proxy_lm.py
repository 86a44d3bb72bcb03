"""A small, fast CPU proxy language model for the demo study (numpy only).

The model
---------
A hashed byte-level log-linear model trained by one pass of minibatch Adagrad. Each byte is
predicted as 8 binary decisions, most significant bit first (a binary tree over the 256 byte
values), so ``-log2 p(byte)`` is the sum of 8 logistic losses and bits per byte come out directly.
The logit of decision ``j`` (tree node ``n_j``, which encodes the bits already decided) is

.. math::

    z_j = \\sum_{f \\in \\mathcal{F}(t)} w[\\mathrm{hash}(f, n_j)]

over the context features :math:`\\mathcal{F}(t)` of position ``t``:

* byte contexts of orders ``0..orders`` (the previous ``k`` bytes),
* the current word prefix together with the previous byte, and
* the current word prefix together with the previous word

(a "word" is a run of ASCII letters, digits, ``_`` or non-ASCII bytes). Hashing is PAQ-style: a
feature owns a block of 16 slots for the high nibble and, per high nibble, a block of 16 slots for
the low nibble, so one byte touches two cache-line-sized blocks per feature. Weights start at 0;
Adagrad with a small peak step size (:data:`LEARNING_RATE`), decayed linearly to 0 over the run
as language-model schedules are, makes every weight learn gradually.

Why a learned model
-------------------
A count (n-gram) model treats a repeated epoch exactly like a doubled count, so repeated data is
worth much less than fresh data from the second epoch on and hurts after a few. A model that learns
by small gradient steps is far from fitting its data after one pass, so early repeats keep teaching
it nearly as much as fresh text, with diminishing returns later -- the pattern real language models
show (Muennighoff et al. 2023). The step size sets the trade-off: larger steps make a stronger
model on fresh data whose repeats are worth less. ``tests/benchmarks/proxy_lm_repetition.py``
measures the repeated-vs-fresh curve of the shipped settings; put its table in the study's card.
Measured (2-core x86-64, numpy 2.4): a repeated token is worth 97 / 92 / 81 / 67 % of a fresh one
at 2 / 4 / 8 / 16 epochs of a 22 kB news subset (93 / 86 / 77 / 63 % for a 100 kB wiki subset),
against about 98 / 93 / 83 / 66 % for real LMs (Muennighoff et al. 2023); repeated runs keep
improving up to 16 epochs. One run takes ~3.5 s at :data:`DEMO_TOKENS` and ~13 s at 4x.

Entry point
-----------
:func:`run_proxy` samples a training stream for a mixture (:func:`sample_stream`), fits a fresh
:class:`ProxyLM` on it in one pass and returns held-out bits per byte on every pool.

:func:`run_cpt` is continual pre-training: a base model trained on a general mixture
(:func:`train_base`, kept per process and reused), then trained further -- weights and Adagrad
state kept, a fresh decaying step size -- on ``ratio`` domain data + ``1 - ratio`` general data;
it returns the general and domain losses before and after. Model "size" for scaling studies:
``table_bits`` (:data:`CPT_TABLE_BITS`), reported as ``N = 2 ** table_bits`` weight slots
(:func:`cpt_params`); larger tables give lower losses at a fixed budget on the demo pools
(``proxies/demo_cpt/README.md``). ``examples/cpt_study.py`` generates that study.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from mixplan.demo.corpora import EVAL_ONLY, TRAIN_POOLS, DemoPool, load_pools

__all__ = [
    "DEMO_TOKENS",
    "LEARNING_RATE",
    "ProxyLM",
    "epochs",
    "limit_threads",
    "run_proxies",
    "run_proxy",
    "sample_stream",
    "validate_weights",
    "repetition_curve",
    "REPETITION_EPOCHS",
    "CPT_BASE_TOKENS",
    "CPT_GROUPS",
    "CPT_TABLE_BITS",
    "clear_base_cache",
    "cpt_params",
    "general_mixture",
    "run_cpt",
    "run_cpts",
    "train_base",
]

#: Budget B of the demo study, in byte tokens.
DEMO_TOKENS = 1_000_000
#: Peak Adagrad step size, decayed linearly to 0 over a run (chosen so that a repeated epoch is
#: worth nearly a fresh one up to ~4 epochs; see ``tests/benchmarks/proxy_lm_repetition.py``).
LEARNING_RATE = 0.04

_WEIGHT_TOL = 1e-6
_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)
_P = np.uint64(0x100000001B3)
_P_INV = np.uint64(pow(int(_P), -1, 1 << 64))

_WORD = np.zeros(256, dtype=bool)
_WORD[list(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")] = True
_WORD[128:] = True


def limit_threads(n: int = 1) -> None:
    """Cap OpenMP/BLAS threads in this process (call first thing in a worker).

    Sets the usual environment variables and, if ``threadpoolctl`` is installed, also limits
    libraries that are already loaded. The proxy model itself uses no BLAS calls.
    """
    for var in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "NUMEXPR_NUM_THREADS",
    ):
        os.environ[var] = str(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(n)


# --------------------------------------------------------------------------- weights / sampling


def _error(message: str) -> Exception:
    from mixplan.exceptions import ValidationError

    return ValidationError(message)


def validate_weights(weights: Mapping[str, float], names: Sequence[str] = TRAIN_POOLS) -> dict[str, float]:
    """Check a mixture over the training pools ``names`` and return it complete, in their order.

    Pools missing from ``weights`` get weight 0. ``names`` defaults to the demo's five pools; the
    quality-bucket study (:mod:`mixplan.demo.quality`) passes its own.

    Raises
    ------
    mixplan.exceptions.ValidationError
        (a :class:`~mixplan.exceptions.MixplanError`) naming the offending pool when a name is
        unknown or evaluation-only, a weight is negative or not finite, or the weights do not sum
        to 1 (within 1e-6).
    """
    out = {name: 0.0 for name in names}
    for name, value in weights.items():
        if name in EVAL_ONLY:
            raise _error(
                f"pool {name!r} is evaluation-only and cannot be given a mixture weight; "
                f"training pools are {', '.join(names)}"
            )
        if name not in out:
            raise _error(
                f"unknown pool {name!r} in mixture weights; "
                f"training pools are {', '.join(names)}"
            )
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise _error(f"weight of pool {name!r} is not a number: {value!r}") from None
        if not math.isfinite(v) or v < 0:
            raise _error(f"weight of pool {name!r} must be finite and >= 0, got {value!r}")
        out[name] = v
    total = math.fsum(out.values())
    if abs(total - 1.0) > _WEIGHT_TOL:
        parts = ", ".join(f"{k}={v:.6g}" for k, v in out.items() if v)
        raise _error(f"mixture weights must sum to 1, got {total:.9g} ({parts or 'all zero'})")
    return out


def _allocate(weights: Mapping[str, float], tokens: int) -> dict[str, int]:
    """Bytes per pool: ``round(w * tokens)`` with largest remainders so they sum to ``tokens``."""
    names = list(weights)
    raw = np.array([weights[n] * tokens for n in names], dtype=float)
    base = np.floor(raw).astype(np.int64)
    short = int(tokens - base.sum())
    if short > 0:
        order = np.argsort(-(raw - base), kind="stable")
        base[order[:short]] += 1
    elif short < 0:  # weights summing to a hair above 1: take the excess from the largest pools
        order = np.argsort(-base, kind="stable")
        base[order[:-short]] -= 1
    return {n: int(b) for n, b in zip(names, base)}


def epochs(
    weights: Mapping[str, float],
    tokens: int,
    pools: Mapping[str, DemoPool] | None = None,
) -> dict[str, float]:
    """Epochs of each training pool's unique training bytes that a run of ``tokens`` draws."""
    w = validate_weights(weights)
    pools = load_pools() if pools is None else pools
    alloc = _allocate(w, int(tokens))
    return {n: alloc[n] / pools[n].train_bytes for n in TRAIN_POOLS}


def sample_stream(
    pools: Mapping[str, DemoPool],
    weights: Mapping[str, float],
    tokens: int,
    rng: np.random.Generator,
    names: Sequence[str] = TRAIN_POOLS,
) -> np.ndarray:
    """Draw a training stream of ``tokens`` bytes for a mixture over the pools ``names``.

    Pool ``i`` contributes ``round(w_i * tokens)`` bytes (largest remainders, so the total is
    exactly ``tokens``), taken by walking its chunks in a shuffled order; when its unique bytes run
    out a new shuffled pass (a new epoch) starts, so repetition is real. The last chunk taken is
    truncated. Pools' chunks are interleaved at random while each pool keeps its own walk order
    (epoch ``e + 1`` of a pool comes after epoch ``e``). Pools are visited in ``names`` order
    (default :data:`TRAIN_POOLS`), so the result does not depend on the order of ``weights``.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of length ``tokens``.
    """
    w = validate_weights(weights, names)
    alloc = _allocate(w, int(tokens))
    pieces: list[np.ndarray] = []
    keys: list[np.ndarray] = []
    for name in names:
        need = alloc[name]
        if need <= 0:
            continue
        pool = pools[name]
        if pool.train_bytes == 0:
            raise _error(f"pool {name!r} has no training text")
        off = pool.chunk_offsets
        lengths = np.diff(off)
        taken: list[np.ndarray] = []
        while need > 0:
            perm = rng.permutation(pool.n_chunks)
            cum = np.cumsum(lengths[perm])
            if cum[-1] <= need:
                take = perm
            else:
                k = int(np.searchsorted(cum, need)) + 1
                take = perm[:k]
            for i in take:
                n = min(int(lengths[i]), need)
                taken.append(pool.train[off[i] : off[i] + n])
                need -= n
        pieces.extend(taken)
        keys.append(np.sort(rng.random(len(taken))))
    if not pieces:
        return np.zeros(0, dtype=np.uint8)
    order = np.argsort(np.concatenate(keys), kind="stable")
    return np.concatenate([pieces[i] for i in order])


# --------------------------------------------------------------------------- features


def _byte_context_hashes(x: np.ndarray, orders: int) -> list[np.ndarray]:
    """``h[k][t]``: 64-bit hash of ``x[t-k:t]`` for ``k = 0..orders`` (zero-padded at the start)."""
    t = x.size
    xp = np.concatenate([np.zeros(orders, np.uint64), x.astype(np.uint64)])
    h = np.full(t, np.uint64(0x1234567), np.uint64)
    out = [h]
    with np.errstate(over="ignore"):
        for k in range(1, orders + 1):
            h = (h ^ (xp[orders - k : orders - k + t] + np.uint64(1))) * _M1
            h ^= h >> np.uint64(29)
            out.append(h)
    return out


def _word_hashes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the current word prefix (word bytes just before ``t``) and of the previous word.

    Polynomial prefix hashes modulo 2**64 make both a few vectorised passes.
    """
    t = x.size
    with np.errstate(over="ignore"):
        v = x.astype(np.uint64) + np.uint64(1)
        pw = np.empty(t + 1, np.uint64)
        pw[0] = 1
        pw[1:] = _P
        pw = np.cumprod(pw, dtype=np.uint64)  # P**i
        ip = np.empty(t + 1, np.uint64)
        ip[0] = 1
        ip[1:] = _P_INV
        ip = np.cumprod(ip, dtype=np.uint64)  # P**-i
        pref = np.zeros(t + 1, np.uint64)
        pref[1:] = np.cumsum(v * pw[:t], dtype=np.uint64)
        is_word = _WORD[x]
        # start[t]: first position of the word run that ends at t - 1 (t itself if none)
        breaks = np.zeros(t + 1, np.int64)
        breaks[1:] = np.where(is_word, 0, np.arange(1, t + 1))
        start = np.maximum.accumulate(breaks)[:t]
        cur = (pref[:t] - pref[start]) * ip[start]
        cur = cur * _M3 + np.uint64(0x51)
        # previous complete word: the last word ending before `start`
        ends = np.zeros(t, dtype=bool)
        ends[1:] = is_word[:-1] & ~is_word[1:]
        last_end = np.maximum.accumulate(np.where(ends, np.arange(t), -1))
        j = start - 1
        pe = np.where(j >= 0, last_end[np.maximum(j, 0)], -1)
        prev = np.where(pe >= 0, cur[np.maximum(pe, 0)], np.uint64(0))
    return cur, prev


class ProxyLM:
    """Hashed byte log-linear language model trained by one pass of minibatch Adagrad.

    Parameters
    ----------
    orders : int
        Highest byte-context order (orders ``0..orders`` are used).
    word_features : bool
        Add the two word-level context features (see the module docstring).
    table_bits : int
        ``log2`` of the number of weight slots shared by all features (4 bytes each, plus 4 for
        the Adagrad accumulator).
    learning_rate : float
        Peak Adagrad step size.
    decay : bool
        Decay the step size linearly from ``learning_rate`` to 0 over the stream given to
        :meth:`fit` (the schedule is set by the run's length, as an LM's is by its budget).
    batch_size : int
        Bytes per minibatch (gradients within a batch use the weights from its start).
    eps : float
        Initial Adagrad accumulator.
    """

    def __init__(
        self,
        orders: int = 4,
        word_features: bool = True,
        table_bits: int = 22,
        learning_rate: float = LEARNING_RATE,
        decay: bool = True,
        batch_size: int = 2048,
        eps: float = 1e-2,
    ) -> None:
        if orders < (1 if word_features else 0):
            raise _error(f"orders must be >= 1 (>= 0 without word features), got {orders}")
        if not 8 <= table_bits <= 30:
            raise _error(f"table_bits must be in [8, 30], got {table_bits}")
        if learning_rate <= 0 or batch_size < 1 or eps <= 0:
            raise _error("learning_rate, batch_size and eps must be positive")
        self.orders = int(orders)
        self.word_features = bool(word_features)
        self.table_bits = int(table_bits)
        self.learning_rate = float(learning_rate)
        self.decay = bool(decay)
        self.batch_size = int(batch_size)
        self.eps = float(eps)
        self.n_features = self.orders + 1 + (2 if self.word_features else 0)
        size = 1 << self.table_bits
        self.weights_ = np.zeros(size, np.float32)
        self.accum_ = np.full(size, self.eps, np.float32)
        self.tokens_seen_ = 0

    # -- features -------------------------------------------------------------------------------

    def _blocks(self, x: np.ndarray):
        """Block bases of both nibbles ``(F, T)``, in-block node offsets and target bits ``(T, 8)``."""
        x = np.ascontiguousarray(x, dtype=np.uint8)
        hashes = _byte_context_hashes(x, self.orders)
        if self.word_features:
            cur, prev = _word_hashes(x)
            with np.errstate(over="ignore"):
                hashes.append(cur ^ hashes[1])
                hashes.append((cur + prev * _M3) ^ hashes[1])
        t, f = x.size, self.n_features
        shift = np.uint64(64 - (self.table_bits - 4))
        hi = (x >> 4).astype(np.uint64) + np.uint64(1)
        hi *= _M1
        base_a = np.empty((f, t), np.int32)
        base_b = np.empty((f, t), np.int32)
        with np.errstate(over="ignore"):
            for k, h in enumerate(hashes):
                base_a[k] = (((h ^ np.uint64(2 * k + 1)) * _M2) >> shift).astype(np.int32)
                base_b[k] = ((((h + hi) ^ np.uint64(2 * k + 2)) * _M2) >> shift).astype(np.int32)
        base_a <<= 4
        base_b <<= 4
        xi = x.astype(np.int32)
        node = np.empty((t, 8), np.int32)
        for j in range(4):
            node[:, j] = (16 | (xi >> 4)) >> (4 - j)
            node[:, 4 + j] = (16 | (xi & 15)) >> (4 - j)
        bits = ((xi[:, None] >> (7 - np.arange(8, dtype=np.int32))) & 1).astype(np.float32)
        return base_a, base_b, node, bits

    @staticmethod
    def _indices(base_a, base_b, node, out):
        """Slot indices ``(F, n, 8)`` of every feature for every decision of ``n`` bytes."""
        np.add(base_a[:, :, None], node[None, :, :4], out=out[:, :, :4])
        np.add(base_b[:, :, None], node[None, :, 4:], out=out[:, :, 4:])
        return out

    # -- training / evaluation -------------------------------------------------------------------

    def fit(self, stream: np.ndarray) -> "ProxyLM":
        """One pass of minibatch Adagrad over ``stream`` (``uint8`` bytes); returns ``self``."""
        x = np.asarray(stream)
        if x.dtype != np.uint8 or x.ndim != 1:
            raise _error("stream must be a 1-D uint8 array of bytes")
        base_a, base_b, node, bits = self._blocks(x)
        t, f, n_batch = x.size, self.n_features, self.batch_size
        w, acc = self.weights_, self.accum_
        buf = np.empty((f, n_batch, 8), np.int32)
        for s0 in range(0, t, n_batch):
            n = min(n_batch, t - s0)
            frac = 1.0 - (s0 + 0.5 * n) / t if self.decay else 1.0
            neg_lr = np.float32(-self.learning_rate * frac)
            sl = slice(s0, s0 + n)
            idx = self._indices(base_a[:, sl], base_b[:, sl], node[sl], buf[:, :n]).ravel()
            wf = w[idx].reshape(f, n, 8)
            z = wf[0].copy()
            for k in range(1, f):
                z += wf[k]
            np.clip(z, -30.0, 30.0, out=z)
            g = 1.0 / (1.0 + np.exp(-z))
            g -= bits[sl]  # d loss / d z  (natural-log loss)
            gg = g * g
            np.add.at(acc, idx, np.broadcast_to(gg, (f, n, 8)).ravel())
            step = np.sqrt(acc[idx])
            np.divide(np.broadcast_to(g * neg_lr, (f, n, 8)).ravel(), step, out=step)
            np.add.at(w, idx, step)
        self.tokens_seen_ += t
        return self

    def bits_per_byte(self, text: np.ndarray) -> float:
        """Mean ``-log2 p(byte)`` of ``text`` (``uint8``) under the current weights."""
        x = np.asarray(text)
        if x.dtype != np.uint8 or x.ndim != 1:
            raise _error("text must be a 1-D uint8 array of bytes")
        if x.size == 0:
            raise _error("cannot evaluate bits per byte on empty text")
        base_a, base_b, node, bits = self._blocks(x)
        f, step = self.n_features, 16384
        buf = np.empty((f, step, 8), np.int32)
        total = 0.0
        for s0 in range(0, x.size, step):
            n = min(step, x.size - s0)
            sl = slice(s0, s0 + n)
            idx = self._indices(base_a[:, sl], base_b[:, sl], node[sl], buf[:, :n])
            z = self.weights_[idx].sum(axis=0, dtype=np.float64)
            total += float(np.logaddexp(0.0, np.where(bits[sl] > 0, -z, z)).sum())
        return total / math.log(2.0) / x.size


# --------------------------------------------------------------------------- entry point


def run_proxy(weights: Mapping[str, float], tokens: int, seed: int, subsample: float | None = None,
              subsample_seed: int = 0) -> dict[str, float]:
    """Train one proxy model on a mixture and return held-out bits per byte.

    Parameters
    ----------
    weights : mapping of str to float
        Mixture weights over the training pools (:data:`~mixplan.demo.corpora.TRAIN_POOLS`);
        missing pools get 0; they must sum to 1.
    tokens : int
        Training budget in byte tokens (e.g. :data:`DEMO_TOKENS` or ``4 * DEMO_TOKENS``).
    seed : int
        Seeds the stream sampling; the model has no other randomness, so the same arguments give
        identical floats.
    subsample : float, optional
        Train on every training pool subsampled to this fraction of its chunks
        (:func:`subsampled_pools`, ``subsample_seed``): a repetition-matched run, which reads each pool
        ``1 / subsample`` times as often as the same run on the whole pools.

    Returns
    -------
    dict
        ``bpb_<pool>`` for every training pool and evaluation-only set, and ``bpb_mean``, the mean
        over the training pools.
    """
    w = validate_weights(weights)
    tokens = int(tokens)
    if tokens < 1:
        raise _error(f"tokens must be >= 1, got {tokens}")
    pools = load_pools()
    train = pools if subsample is None else subsampled_pools(pools, subsample, subsample_seed)
    rng = np.random.default_rng([int(seed), 0x6D78])
    stream = sample_stream(train, w, tokens, rng)
    return heldout_bpb(ProxyLM().fit(stream), pools)


def subsampled_pools(pools: Mapping[str, DemoPool], fraction: float, seed: int = 0) -> dict[str, DemoPool]:
    """Every training pool cut to the chunks that :func:`mixplan.data.subsample.keep_document` keeps at
    ``fraction`` (the key of a chunk is its position in the pool): the rule ``mixplan design
    --match-budget`` writes into its run files. Held-out text and evaluation-only sets are unchanged."""
    from ..data.subsample import subsample_mask

    out = dict(pools)
    for name in TRAIN_POOLS:
        pool = pools[name]
        keep = np.flatnonzero(subsample_mask(range(pool.n_chunks), name, fraction, seed))
        if not len(keep):
            raise _error(f"a subsample of {fraction:g} keeps none of pool {name!r}'s {pool.n_chunks} chunks; use a "
                         "larger fraction")
        off = pool.chunk_offsets
        out[name] = _pool_of_chunks(pool, [pool.train[off[i]:off[i + 1]] for i in keep],
                                    f"{fraction:g} subsample of {name} (seed {seed})")
    return out


def _pool_of_chunks(pool: DemoPool, parts: Sequence[np.ndarray], description: str) -> DemoPool:
    """A training pool made of ``parts`` (its chunks, in order), with ``pool``'s name and held-out text."""
    lengths = np.array([p.size for p in parts], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return DemoPool(name=pool.name, train=np.concatenate(parts), chunk_offsets=offsets, heldout=pool.heldout,
                    description=description)


def heldout_bpb(model: ProxyLM, pools: Mapping[str, DemoPool]) -> dict[str, float]:
    """``bpb_<set>`` on the held-out text of every training pool and evaluation-only set of the demo, and
    ``bpb_mean`` over the training pools'."""
    out = {f"bpb_{name}": model.bits_per_byte(pools[name].heldout) for name in TRAIN_POOLS + EVAL_ONLY}
    out["bpb_mean"] = float(np.mean([out[f"bpb_{name}"] for name in TRAIN_POOLS]))
    return out


def _run_job(job: tuple) -> dict[str, float]:
    """(weights, tokens, seed) or (weights, tokens, seed, subsample fraction, subsample seed)."""
    return run_proxy(*job)


def run_jobs(fn: Callable[[Any], dict[str, float]], jobs: Sequence[Any], processes: int, progress: bool,
              desc: str) -> list[dict[str, float]]:
    """``[fn(job) for job in jobs]``, in job order, on ``processes`` spawned workers.

    Shared by :func:`run_proxies`, :func:`run_cpts` and ``examples/filter_demo.py``. ``fn`` must be
    picklable (a module-level function). Workers are spawned (not forked) and capped to one
    OpenMP/BLAS thread each, so a run does the same work whatever the parent has loaded;
    ``processes <= 1`` (or a single job) runs in this process. ``progress`` shows a bar on a
    terminal only (never in logs or pipes).
    """
    import multiprocessing
    import sys
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    out: list[dict[str, float]] = []
    with tqdm(total=len(jobs), desc=desc, disable=not progress or not sys.stderr.isatty(),
              leave=False) as bar:
        if processes <= 1 or len(jobs) <= 1:
            results: Iterable[dict[str, float]] = map(fn, jobs)
            for res in results:
                out.append(res)
                bar.update(1)
            return out
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=processes, mp_context=ctx, initializer=limit_threads) as ex:
            for res in ex.map(fn, jobs, chunksize=1):
                out.append(res)
                bar.update(1)
    return out


def run_proxies(
    jobs: Iterable[tuple[Mapping[str, float], int, int]],
    processes: int = 2,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Run :func:`run_proxy` for many ``(weights, tokens, seed)`` jobs (or ``(weights, tokens, seed,
    subsample, subsample_seed)``), in job order.

    Uses ``processes`` spawned worker processes (each capped to one OpenMP/BLAS thread and loading
    the pools once); ``processes <= 1`` runs in this process. Results do not depend on the number
    of processes. ``progress`` shows a bar on a terminal (never in logs or pipes).
    """
    jobs = [(dict(w), int(t), int(s), *rest) for w, t, s, *rest in jobs]
    for w, *_ in jobs:  # fail before any worker starts
        validate_weights(w)
    return run_jobs(_run_job, jobs, processes, progress, "proxy runs")


# ------------------------------------------------------------------------------ repetition curve

#: Epoch counts of the repeated-vs-fresh measurement (as measured for mixplan; see
#: ``tests/benchmarks/proxy_lm_repetition.py``).
REPETITION_EPOCHS = (1, 2, 4, 8, 16)


def subset_pool(pool: DemoPool, sub_bytes: int, rng: np.random.Generator) -> DemoPool:
    """A pool made of the first whole chunks of a shuffled order, truncated to ``sub_bytes``."""
    off = pool.chunk_offsets
    perm = rng.permutation(pool.n_chunks)
    parts, total = [], 0
    for i in perm:
        if total >= sub_bytes:
            break
        piece = pool.train[off[i] : off[i + 1]][: sub_bytes - total]
        parts.append(piece)
        total += piece.size
    return _pool_of_chunks(pool, parts, f"{sub_bytes}-byte subset of {pool.name}")


def effective_multiple(rep: float, fresh: Sequence[float], es: Sequence[int] = REPETITION_EPOCHS) -> float:
    """Fresh-token multiple whose (interpolated) loss equals ``rep``."""
    le = np.log2(np.asarray(es, dtype=float))
    f = np.asarray(fresh)
    if rep >= f[0]:
        return float(2 ** le[0])
    if rep <= f[-1]:
        return float(2 ** le[-1])
    j = int(np.argmax(f <= rep))
    t = (f[j - 1] - rep) / (f[j - 1] - f[j])
    return float(2 ** (le[j - 1] + t * (le[j] - le[j - 1])))


def repetition_curve(pools: Mapping[str, DemoPool], pool: str, sub_bytes: int,
                     es: Sequence[int] = REPETITION_EPOCHS, seeds: Sequence[int] = (0, 1, 2)) -> dict:
    """Held-out bpb of a ``sub_bytes`` subset of ``pool`` repeated ``e`` times vs ``e x sub_bytes`` fresh bytes.

    Median over ``seeds``; ``effective_fresh_multiple`` is the fresh-token multiple that reaches the
    repeated run's loss (log-linear interpolation), so ``value_of_repeated_token`` = multiple / e.
    """
    full = pools[pool]
    if max(es) * sub_bytes > full.train_bytes:
        raise _error(f"{pool}: {max(es)} x {sub_bytes} bytes exceeds its {full.train_bytes} training bytes; "
                              "use a smaller subset")
    rows = []
    for e in es:
        rep, fresh = [], []
        for s in seeds:
            rng = np.random.default_rng([1000 + s, e])
            sub = subset_pool(full, sub_bytes, np.random.default_rng(1000 + s))
            x_rep = sample_stream({pool: sub}, {pool: 1.0}, e * sub_bytes, rng)
            x_fresh = sample_stream({pool: full}, {pool: 1.0}, e * sub_bytes, rng)
            rep.append(ProxyLM().fit(x_rep).bits_per_byte(full.heldout))
            fresh.append(ProxyLM().fit(x_fresh).bits_per_byte(full.heldout))
        rows.append(
            {
                "epochs": e,
                "tokens": e * sub_bytes,
                "repeated_bpb": float(np.median(rep)),
                "fresh_bpb": float(np.median(fresh)),
                "repeated_bpb_seeds": rep,
                "fresh_bpb_seeds": fresh,
            }
        )
    fresh_curve = [r["fresh_bpb"] for r in rows]
    for r in rows:
        r["effective_fresh_multiple"] = effective_multiple(r["repeated_bpb"], fresh_curve, es)
        r["value_of_repeated_token"] = r["effective_fresh_multiple"] / r["epochs"]
    return {"pool": pool, "subset_bytes": sub_bytes, "seeds": list(seeds), "rows": rows}


# ------------------------------------------------------------------------------ continual pre-training

#: Model "sizes" of the continual-pre-training study: ``table_bits`` of :class:`ProxyLM`. The
#: parameter count reported for a size is ``N = 2 ** table_bits``, the number of weight slots (every
#: feature of every byte shares them through the hash, so a smaller table means more collisions:
#: fewer effective parameters). Orders, word features and step size stay at the defaults.
CPT_TABLE_BITS = (18, 20, 22)
#: Bytes the base model is trained on before continual pre-training.
CPT_BASE_TOKENS = 1_000_000
#: Most base models a process keeps (each holds two float32 tables of ``2 ** table_bits`` slots).
_BASE_CACHE_SIZE = 4
_BASE_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray, int, dict[str, float]]] = {}


def cpt_params(table_bits: int) -> int:
    """The parameter count reported for a proxy size: ``2 ** table_bits`` weight slots."""
    return 1 << int(table_bits)


#: Kinds of the training pools (as ``group`` in ``pools/demo.toml``): the general mixture of a
#: continual-pre-training run leaves out the domain's whole group, so that ``docs`` (Python's
#: documentation, prose about code that code training helps a lot) is neither general data nor
#: general loss when the domain is ``code``.
CPT_GROUPS = {"wiki": "text", "news": "text", "bible": "text", "code": "code", "docs": "code"}


def _check_domain(domain: str) -> None:
    """The domain of a continual-pre-training run must be a training pool (it is trained on)."""
    if domain not in TRAIN_POOLS:
        raise _error(f"domain must be a training pool ({', '.join(TRAIN_POOLS)}), got {domain!r}")


def general_mixture(domain: str, pools: Mapping[str, DemoPool] | None = None) -> dict[str, float]:
    """The general mixture of a continual-pre-training run on ``domain``: the training pools outside
    the domain's group (:data:`CPT_GROUPS`) in proportion to their unique training bytes (for
    ``code``: wiki, news and bible, token-proportional)."""
    _check_domain(domain)
    pools = load_pools() if pools is None else pools
    size = {n: pools[n].train_bytes for n in TRAIN_POOLS if CPT_GROUPS[n] != CPT_GROUPS[domain]}
    total = sum(size.values())
    return {n: size[n] / total for n in size}


def _cpt_mixture(general: Mapping[str, float], domain: str, ratio: float) -> dict[str, float]:
    """``ratio`` of the domain pool + ``1 - ratio`` of the general mixture."""
    out = {n: (1.0 - ratio) * w for n, w in general.items() if n != domain}
    out[domain] = ratio
    return validate_weights(out)


def _evaluate(model: ProxyLM, pools: Mapping[str, DemoPool], domain: str,
              general: Mapping[str, float]) -> dict[str, float]:
    out = {f"bpb_{name}": model.bits_per_byte(pools[name].heldout) for name in TRAIN_POOLS + EVAL_ONLY}
    out["general_loss"] = float(np.mean([out[f"bpb_{n}"] for n in TRAIN_POOLS if general.get(n, 0.0) > 0]))
    out["domain_loss"] = out[f"bpb_{domain}"]
    return out


def _check_cpt(general_weights: Mapping[str, float], domain: str, ratio: float) -> dict[str, float]:
    _check_domain(domain)
    g = validate_weights(general_weights)
    if g[domain] > 0:
        raise _error(f"the general mixture gives the domain pool {domain!r} weight {g[domain]:g}; "
                     "continual pre-training needs a general mixture without it")
    r = float(ratio)
    if not (math.isfinite(r) and 0.0 <= r <= 1.0):
        raise _error(f"ratio (the domain share) must be in [0, 1], got {ratio!r}")
    return g


def train_base(general_weights: Mapping[str, float], domain: str, base_tokens: int, seed: int,
               table_bits: int = 22, pools: Mapping[str, DemoPool] | None = None) -> tuple[ProxyLM, dict[str, float]]:
    """Train the base model of a continual-pre-training run: a fresh :class:`ProxyLM` of size
    ``table_bits``, one decaying-step pass over ``base_tokens`` bytes of the general mixture.

    The base stream depends on ``seed`` and ``base_tokens`` only (not on the size), so every size
    sees the same base data. Returns the model and its held-out losses (as :func:`run_cpt`)."""
    g = _check_cpt(general_weights, domain, 0.0)
    pools = load_pools() if pools is None else pools
    base_tokens = int(base_tokens)
    if base_tokens < 1:
        raise _error(f"base_tokens must be >= 1, got {base_tokens}")
    rng = np.random.default_rng([int(seed), 0x6D78, 0xBA5E])
    model = ProxyLM(table_bits=table_bits).fit(sample_stream(pools, g, base_tokens, rng))
    return model, _evaluate(model, pools, domain, g)


def _cached_base(g: dict[str, float], domain: str, base_tokens: int, seed: int, table_bits: int,
                 pools: Mapping[str, DemoPool]) -> tuple[ProxyLM, dict[str, float]]:
    """A copy of the base model (trained once per process and key, then restored from its state)."""
    key = (tuple(sorted(g.items())), domain, int(base_tokens), int(seed), int(table_bits))
    hit = _BASE_CACHE.get(key)
    if hit is None:
        model, losses = train_base(g, domain, base_tokens, seed, table_bits, pools)
        while len(_BASE_CACHE) >= _BASE_CACHE_SIZE:
            _BASE_CACHE.pop(next(iter(_BASE_CACHE)))
        hit = (model.weights_.copy(), model.accum_.copy(), model.tokens_seen_, dict(losses))
        _BASE_CACHE[key] = hit
    else:  # most recently used last
        _BASE_CACHE[key] = _BASE_CACHE.pop(key)
    model = ProxyLM(table_bits=table_bits)
    model.weights_[:] = hit[0]
    model.accum_[:] = hit[1]
    model.tokens_seen_ = hit[2]
    return model, dict(hit[3])


def clear_base_cache() -> None:
    """Forget the base models :func:`run_cpt` keeps in this process."""
    _BASE_CACHE.clear()


def run_cpt(general_weights: Mapping[str, float], domain: str, ratio: float, base_tokens: int, tokens: int,
            seed: int, table_bits: int = 22, cache: bool = True) -> dict[str, float]:
    """One continual-pre-training run: a base model, continued on domain + general data.

    The base model (:func:`train_base`: ``base_tokens`` bytes of ``general_weights``, size
    ``table_bits``) is trained once per process for each ``(general_weights, domain, base_tokens,
    seed, table_bits)`` and reused (``cache=False`` retrains it; the result is identical). It is
    then trained further -- same weights, same Adagrad accumulators -- by one more pass with a fresh
    step size decaying linearly from :data:`LEARNING_RATE` to 0 over the continuation (CPT re-warms
    the schedule), on ``tokens`` bytes of the mixture ``ratio x domain + (1 - ratio) x general``.
    The continuation stream depends on ``(seed, ratio, tokens)``, not on the size.

    Returns
    -------
    dict
        ``general_loss`` (mean held-out bits per byte over the pools of the general mixture, those
        with a positive weight in ``general_weights``), ``domain_loss`` (held-out bpb of ``domain``), ``bpb_<pool>`` for every pool
        and the evaluation-only set after continual pre-training, ``base_general_loss`` and
        ``base_domain_loss`` (the base model's), and ``params`` (:func:`cpt_params`).
    """
    g = _check_cpt(general_weights, domain, ratio)
    tokens = int(tokens)
    if tokens < 1:
        raise _error(f"tokens must be >= 1, got {tokens}")
    pools = load_pools()
    if cache:
        model, base = _cached_base(g, domain, base_tokens, seed, table_bits, pools)
    else:
        model, base = train_base(g, domain, base_tokens, seed, table_bits, pools)
    mix = _cpt_mixture(g, domain, float(ratio))
    rng = np.random.default_rng([int(seed), 0x6D78, 0xC097, int(round(float(ratio) * 1e9)), tokens])
    model.fit(sample_stream(pools, mix, tokens, rng))
    out = _evaluate(model, pools, domain, g)
    out["base_general_loss"] = base["general_loss"]
    out["base_domain_loss"] = base["domain_loss"]
    out["params"] = float(cpt_params(table_bits))
    return out


def _run_cpt_job(job: tuple) -> dict[str, float]:
    return run_cpt(*job)


def run_cpts(jobs: Iterable[tuple], processes: int = 2, progress: bool = True) -> list[dict[str, float]]:
    """Run :func:`run_cpt` for many ``(general_weights, domain, ratio, base_tokens, tokens, seed,
    table_bits)`` jobs, in job order, on ``processes`` spawned workers (each keeps its own base
    models; order the jobs by size and seed so that they are reused). Results do not depend on the
    number of processes."""
    jobs = [(dict(g), str(d), float(r), int(b), int(t), int(s), int(tb)) for g, d, r, b, t, s, tb in jobs]
    for g, d, r, *_ in jobs:  # fail before any worker starts
        _check_cpt(g, d, r)
    return run_jobs(_run_cpt_job, jobs, processes, progress, "cpt runs")
