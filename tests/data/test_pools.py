import math

import numpy as np
import pytest

from mixplan import PoolSet, ValidationError, load_pools

GOOD = """
[study]
name = "t"
token_unit = "bytes"

[pools.web]
tokens = 3000
description = "web"
group = "g"

[pools.code]
tokens = 1000
max_epochs = 2
min_weight = 0.1
max_weight = 0.5
[pools.code.source]
type = "files"
paths = ["a/*.jsonl"]
"""


def write(tmp_path, text):
    p = tmp_path / "pools.toml"
    p.write_text(text)
    return p


def test_load_good_manifest(tmp_path):
    pools = load_pools(write(tmp_path, GOOD))
    assert pools.names == ["web", "code"]
    assert pools.token_unit == "bytes"
    assert np.allclose(pools.token_share, [0.75, 0.25])
    assert np.allclose(pools.prior, [0.75, 0.25])
    assert pools.by_name("code").max_epochs == 2
    assert pools.by_name("web").max_epochs == 4  # documented default
    assert pools.min_weight.tolist() == [0.0, 0.1]


def test_prior_overrides_token_share(tmp_path):
    pools = load_pools(write(tmp_path, "[pools.a]\ntokens = 1\nprior = 3\n[pools.b]\ntokens = 1\nprior = 1\n"))
    assert np.allclose(pools.prior, [0.75, 0.25])


def test_infinite_epochs_allowed(tmp_path):
    pools = load_pools(write(tmp_path, "[pools.a]\ntokens = 1\nmax_epochs = inf\n"))
    assert math.isinf(pools[0].max_epochs)


@pytest.mark.parametrize("text, message", [
    ("[pools.a]\n", r"pool 'a': field 'tokens' \(unique tokens available\) is required"),
    ("[pools.a]\ntokens = 0\n", r"pool 'a', field 'tokens': 0 must be > 0"),
    ("[pools.a]\ntokens = -5\n", r"field 'tokens': -5 must be > 0"),
    ("[pools.a]\ntokens = 'many'\n", r"field 'tokens': 'many' is not a number"),
    ("[pools.a]\ntokens = nan\n", r"field 'tokens': nan is not a finite number"),
    ("[pools.a]\ntokens = 1\nmax_epochs = 0\n", r"field 'max_epochs': 0 must be > 0"),
    ("[pools.a]\ntokens = 1\nmin_weight = 1.5\n", r"field 'min_weight': 1.5 must be in \[0, 1\]"),
    ("[pools.a]\ntokens = 1\nmax_weight = -0.1\n", r"field 'max_weight': -0.1 must be in \[0, 1\]"),
    ("[pools.a]\ntokens = 1\nmin_weight = 0.6\nmax_weight = 0.5\n", r"min_weight 0.6 is above max_weight 0.5"),
    ("[pools.a]\ntokens = 1\nprior = -1\n", r"field 'prior': -1 must be >= 0"),
    ("[pools.a]\ntokens = 1\ncolour = 'red'\n", r"pool 'a': unknown field\(s\) \['colour'\]"),
    ("[pools.a]\ntokens = 1\ndescription = 3\n", r"field 'description': must be a string"),
    ("[pools.a]\ntokens = 1\nmin_weight = 0.6\n[pools.b]\ntokens = 1\nmin_weight = 0.6\n",
     r"min_weight floors add up to 1.2 > 1"),
    ('[pools."a b"]\ntokens = 1\n', r"pool name 'a b' is not allowed"),
    ("[pools.a]\ntokens = 1\n[pools.a.source]\ntype = 'ftp'\n", r"field 'source.type': 'ftp' is not one of"),
    ("[pools.a]\ntokens = 1\n[pools.a.source]\ntype = 'files'\n", r"type 'files' needs \['paths'\]"),
    ("[pools.a]\ntokens = 1\n[pools.a.source]\ntype = 'datasets'\nbuilder = 'json'\nurl = 'x'\n",
     r"unknown key\(s\) \['url'\] for type 'datasets'"),
    ("[study]\nname='x'\n", r"no pools defined"),
    ("[pool.a]\ntokens = 1\n", r"unknown top-level key\(s\) \['pool'\]"),
    ("[pools]\na = 3\n", r"pool 'a': must be a table"),
    ("[pools.a\ntokens = 1\n", r"not valid TOML"),
])
def test_manifest_errors_name_file_pool_field(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ValidationError, match=message) as info:
        load_pools(path)
    assert str(path) in str(info.value)


def test_missing_manifest(tmp_path):
    with pytest.raises(ValidationError, match="no such pool manifest"):
        load_pools(tmp_path / "nope.toml")


def test_from_names_marks_token_counts_unknown():
    pools = PoolSet.from_names(["a", "b"])
    assert not pools.tokens_known
    assert pools.names == ["a", "b"]


@pytest.mark.parametrize("value, message", [
    ("1e308", r"field 'tokens': 1e\+308 must be < 1e\+16 \(more than any corpus holds"),
    ("1e16", r"field 'tokens': 1e\+16 must be < 1e\+16"),
    ("inf", r"field 'tokens': inf is not a finite number"),
    ("-inf", r"field 'tokens': -inf is not a finite number"),
])
def test_pool_size_beyond_any_corpus_is_refused(tmp_path, value, message):
    path = write(tmp_path, f"[pools.a]\ntokens = 1\n[pools.web]\ntokens = {value}\n")
    with pytest.raises(ValidationError, match=message) as info:
        load_pools(path)
    assert f"{path}: pool 'web'" in str(info.value)
    assert load_pools(write(tmp_path, "[pools.a]\ntokens = 9.9e15\n")).tokens.tolist() == [9.9e15]
