"""Derived pools in a plan (mixplan.mixture.derived): the raw : rewritten split of a family of pools, and
the warning when a mixture reads the same documents raw and rewritten."""

import numpy as np
import pytest

from mixplan.data.pools import load_pools
from mixplan.mixture.buckets import BucketLayout
from mixplan.mixture.derived import derived_notes, derived_summary, derived_table


@pytest.fixture
def layout(repo, tmp_path):
    path = tmp_path / "pools.toml"
    path.write_text((repo / "pools" / "demo_buckets.toml").read_text()
                    + '\n[pools.wiki_rw]\ntokens = 636989\nkind = "rewritten"\nderived_from = "wiki"\n'
                      'from_buckets = ["top60_100"]\n')
    return BucketLayout.from_pools(load_pools(path))


def test_the_family_split_and_a_double_read(layout):
    cols = list(layout.names)
    assert cols[-1] == "wiki_rw" and layout.bucket_pools().by_name("wiki_rw").derivation.kind == "rewritten"
    W = np.zeros((2, len(cols)))
    W[0, [cols.index("wiki_top10"), cols.index("wiki_top10_30"), cols.index("wiki_rw"), cols.index("news")]] = \
        [0.3, 0.1, 0.2, 0.4]  # REWIRE's use: the kept raw part plus the rewrite of the rejected part
    W[1, [cols.index("wiki_top60_100"), cols.index("wiki_rw"), cols.index("news")]] = [0.2, 0.3, 0.5]
    info = derived_summary(layout.pools, cols, W, ["recommended", "other"], tokens=5e6)["wiki_rw"]
    assert info["parent"] == "wiki" and info["kind"] == "rewritten" and info["from_buckets"] == ["top60_100"]
    rec, other = info["mixtures"]["recommended"], info["mixtures"]["other"]
    assert rec["parent_raw_weight"] == pytest.approx(0.4) and rec["raw_share"] == pytest.approx(0.4 / 0.6)
    assert rec["source_raw_weight"] == 0.0 and rec["epochs"] == pytest.approx(0.2 * 5e6 / 636989)
    assert other["source_raw_weight"] == pytest.approx(0.2)
    assert derived_notes({"wiki_rw": info}) == []
    note = derived_notes({"wiki_rw": info}, "other")
    assert len(note) == 1 and "reads 'wiki''s top60_100 both raw (weight 0.200) and rewritten as 'wiki_rw'" in note[0]
    # Generated text is not the source's documents again: a synthetic pool read beside its source warns nothing.
    assert derived_notes({"synth": info | {"kind": "synthetic"}}, "other") == []
    table = derived_table({"wiki_rw": info})
    assert "wiki_rw (rewritten from wiki)" in table and "0.67 : 0.33" in table and "other" not in table
    assert derived_summary(load_pools_without_derived(layout), cols[:-1], W[:, :-1], ["a", "b"]) is None


def load_pools_without_derived(layout):
    from mixplan.data.pools import PoolSet

    return PoolSet(tuple(p for p in layout.pools if p.derivation is None))
