"""mixplan.data.reuse (old runs on a new pool set), ``mixplan runs reuse`` and ``design --next`` covering the
pools the reused runs never used."""

import json

import numpy as np
import pandas as pd
import pytest

from mixplan import Pool, PoolSet, ValidationError
from mixplan.cli import main
from mixplan.data.pools import load_pools
from mixplan.data.reuse import map_runs, parse_mapping, parse_removed_policy
from mixplan.data.runs import RunTable, read_runs, validate_runs

# Old study: pools a, b, c, d. New study: a and c kept, b split into b1 (30 tokens) + b2 (10), d removed, e added.
OLD = pd.DataFrame({"run_id": ["r1", "r2", "r3", "r4"],
                    "w_a": [0.5, 0.4, 0.2, 0.0], "w_b": [0.3, 0.2, 0.2, 0.0],
                    "w_c": [0.2, 0.36, 0.2, 0.0], "w_d": [0.0, 0.04, 0.4, 1.0],
                    "loss": [3.0, 3.1, 3.2, 3.3]})
NEW = PoolSet((Pool("a", tokens=100), Pool("b1", tokens=30), Pool("b2", tokens=10), Pool("c", tokens=50),
               Pool("e", tokens=20)), path="new.toml")
SPLIT = {"b": ("b1", "b2")}
MANIFEST = "".join(f"[pools.{p.name}]\ntokens = {p.tokens}\n" for p in NEW)


def old_table(frame=OLD):
    return validate_runs(frame, source="old.csv")


def weights(frame):
    return frame[[f"w_{n}" for n in NEW.names]].to_numpy()


def test_drop_keeps_only_runs_without_removed_weight():
    frame, rep = map_runs(old_table(), NEW, SPLIT, "drop")
    assert frame["run_id"].tolist() == ["r1"]
    # b's 0.3 shared 30:10 between b1 and b2; e (added) is 0; the metric is carried over
    assert weights(frame)[0] == pytest.approx([0.5, 0.225, 0.075, 0.2, 0.0])
    assert frame["loss"].tolist() == [3.0] and frame["reuse"].tolist() == ["exact"]
    assert (rep.runs_in, rep.kept_exact, rep.kept_renormalised, rep.dropped_over_threshold,
            rep.dropped_all_removed) == (4, 1, 0, 2, 1)
    assert rep.removed == {"d": 3} and rep.added == ["e"] and rep.carried == ["a", "c"]
    assert rep.split == {"b": {"b1": 0.75, "b2": 0.25}} and rep.dropped_ids == ["r2", "r3", "r4"]


def test_keep_below_renormalises_the_runs_under_the_threshold():
    frame, rep = map_runs(old_table(), NEW, SPLIT, "keep-below=0.05")
    assert frame["run_id"].tolist() == ["r1", "r2"]
    # r2: 0.04 on d; the rest (0.96) divided by 0.96
    assert weights(frame)[1] == pytest.approx([0.4 / 0.96, 0.15 / 0.96, 0.05 / 0.96, 0.36 / 0.96, 0.0])
    assert frame["reuse"].tolist() == ["exact", "renormalised"]
    assert frame["reuse_removed_weight"].tolist() == pytest.approx([0.0, 0.04])
    assert (rep.kept, rep.kept_renormalised, rep.dropped_over_threshold, rep.dropped_all_removed) == (2, 1, 1, 1)
    assert rep.max_removed_kept == pytest.approx(0.04)
    assert "2 kept (1 exact, 1 renormalised" in rep.text() and "removed d: used by 3 old runs" in rep.text()


def test_keep_keeps_all_but_runs_trained_on_removed_pools_only():
    frame, rep = map_runs(old_table(), NEW, SPLIT, "keep")
    assert frame["run_id"].tolist() == ["r1", "r2", "r3"]
    assert weights(frame)[2] == pytest.approx([1 / 3, 0.25, 1 / 12, 1 / 3, 0.0])  # r3: 0.6 left of 1
    assert (rep.dropped_over_threshold, rep.dropped_all_removed, rep.dropped_ids) == (0, 1, ["r4"])


def test_rename_merge_and_compounded_flag():
    new = PoolSet((Pool("ab", tokens=1), Pool("cc", tokens=1), Pool("d", tokens=1)))
    frame, rep = map_runs(old_table(), new, {"a": ("ab",), "b": ("ab",), "c": ("cc",)}, "keep")
    assert np.allclose(weights_of(frame, new), [[0.8, 0.2, 0.0], [0.6, 0.36, 0.04], [0.4, 0.2, 0.4],
                                                [0.0, 0.0, 1.0]])
    assert rep.merged == {"ab": ["a", "b"]} and rep.split["c"] == {"cc": 1.0} and rep.removed == {}
    assert (frame["reuse"] == "exact").all()
    # a table reused twice: 0.04 removed now, 0.5 before -> 1 - 0.5 * 0.96 of the original run was removed
    twice = OLD.assign(reuse="renormalised", reuse_removed_weight=0.5)
    frame, _ = map_runs(old_table(twice), NEW, SPLIT, "keep-below=0.05")
    assert frame["reuse_removed_weight"].tolist() == pytest.approx([0.5, 0.52])


def weights_of(frame, pools):
    return frame[[f"w_{n}" for n in pools.names]].to_numpy()


@pytest.mark.parametrize("mapping, message", [
    ({"x": ("b1",)}, "old.csv -> new.toml: --map x=...: 'x' is not a pool of the old runs"),
    ({"b": ("b1", "b3")}, "--map b=b1+b3: 'b3' is not a pool of the new manifest"),
])
def test_mapping_names_are_checked(mapping, message):
    with pytest.raises(ValidationError, match=message.replace("+", r"\+")):
        map_runs(old_table(), NEW, mapping)


def test_errors_name_file_row_and_pool():
    bad = OLD.copy()
    bad.loc[1, "w_a"] = 0.3  # r2 sums to 0.9 (a table built without the checks of read_runs)
    table = RunTable(bad, ["a", "b", "c", "d"], "old.csv")
    with pytest.raises(ValidationError, match=r"old.csv: row 2 \(run_id 'r2'\): weights sum to 0.9 after mapping "
                                              r"\(0.86 on new pools, 0.04 on removed"):
        map_runs(table, NEW, SPLIT, "keep")
    with pytest.raises(ValidationError, match="old.csv: column 'unique_tokens_b': .* does not carry over unchanged"):
        map_runs(old_table(OLD.assign(unique_tokens_b=5.0)), NEW, SPLIT)
    # a kept pool that also receives another's weight is not the pool its subsample column counted
    with pytest.raises(ValidationError, match="column 'unique_tokens_a': .* merged with another"):
        map_runs(old_table(OLD.assign(unique_tokens_a=5.0)), NEW, {"b": ("a",)}, "keep")
    with pytest.raises(ValidationError,
                       match=r"no old run is left: 2 have more than 0 of their weight on removed pools "
                             r"\['d'\], 1 only"):
        map_runs(old_table(OLD[OLD["w_d"] > 0]), NEW, SPLIT, "drop")
    with pytest.raises(ValidationError, match="--map 'b=': write OLD=NEW or OLD=NEW1\\+NEW2"):
        parse_mapping(["b="])
    with pytest.raises(ValidationError, match="pool 'b' is mapped twice"):
        parse_mapping(["b=b1", "b=b2"])
    assert parse_mapping(["b = b1 + b2"]) == {"b": ("b1", "b2")}
    assert [parse_removed_policy(t) for t in ("drop", "keep", "keep-below=0.05")] == [0.0, 1.0, 0.05]
    with pytest.raises(ValidationError, match="--removed 'keep-below=2': write drop, keep, or keep-below=T"):
        parse_removed_policy("keep-below=2")


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_round_trip(capsys, tmp_path):
    OLD.to_csv(tmp_path / "old.csv", index=False)
    (tmp_path / "new.toml").write_text(MANIFEST)
    out = tmp_path / "runs.csv"
    argv = ["runs", "reuse", tmp_path / "old.csv", "--pools", tmp_path / "new.toml", "--map", "b=b1+b2",
            "--removed", "keep-below=0.05", "--out", out]
    code, stdout, err = run_cli(capsys, *argv, "--json")
    assert code == 0, err
    doc = json.loads(stdout)
    assert (doc["kept_exact"], doc["kept_renormalised"], doc["dropped"], doc["added"]) == (1, 1, 2, ["e"])
    runs = read_runs(out, load_pools(tmp_path / "new.toml"))  # what fit / plan / design read
    assert runs.run_ids == ["r1", "r2"] and runs.pools == NEW.names
    assert runs.weights[1] == pytest.approx([0.4 / 0.96, 0.15 / 0.96, 0.05 / 0.96, 0.36 / 0.96, 0.0])
    first = out.read_bytes()
    code, _, err = run_cli(capsys, *argv)  # no overwrite without --force, one line
    assert code == 2 and err.strip().splitlines() == [f"mixplan: error: {out} exists; choose another output path "
                                                      "or pass --force to overwrite"]
    code, stdout, err = run_cli(capsys, *argv, "--force")
    assert code == 0 and out.read_bytes() == first and "split b -> b1 (0.75) + b2 (0.25)" in stdout
    code, _, err = run_cli(capsys, *argv[:-4], "--map", "q=b1", "--out", tmp_path / "x.csv")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "'q' is not a pool of the old runs" in err
    assert not (tmp_path / "x.csv").exists()


def test_design_next_covers_the_added_pool(capsys, tmp_path):
    """Runs reused from a 4-pool study (p4 added since): design --next proposes runs that use p4."""
    from mixplan.demo.synthetic import make_study

    study = make_study(5, seed=1)
    frame = study.runs(40, seed=2, noise=0.005)
    old = frame.drop(columns=["w_p4"])
    w = old.filter(like="w_")
    old[w.columns] = w.to_numpy() / w.to_numpy().sum(axis=1, keepdims=True)
    old.to_csv(tmp_path / "old.csv", index=False)
    (tmp_path / "pools.toml").write_text("".join(f"[pools.{n}]\ntokens = 1e6\n" for n in study.names))
    code, _, err = run_cli(capsys, "runs", "reuse", tmp_path / "old.csv", "--pools", tmp_path / "pools.toml",
                           "--out", tmp_path / "runs.csv")
    assert code == 0, err
    code, stdout, err = run_cli(capsys, "design", "--pools", tmp_path / "pools.toml", "--next", 4, "--runs",
                                tmp_path / "runs.csv", "--target", "loss", "--model", "gp", "--cv-repeats", 1,
                                "--out", tmp_path / "next", "--json")
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["uncovered"] == {"p4": pytest.approx(0.1)}  # half of its prior, 1/5
    p4 = [p["weights"]["p4"] for p in doc["proposals"]]
    assert all(v >= 0.1 for v in p4[:2]), p4  # the first ceil(4/2) picks cover it
    assert doc["settings"]["covering_picks"] == 2


def test_cli_reuses_a_bucketed_study_on_its_buckets(capsys, tmp_path):
    # The old runs' columns are the buckets of 'web' (w_web_top50, w_web_rest): they are the new study's pools too.
    manifest = tmp_path / "b.toml"
    manifest.write_text('[pools.web]\ntokens = 100\nscore = "q"\n[[pools.web.bucket]]\nname = "top50"\ntop = 0.5\n'
                        'tokens = 50\n[[pools.web.bucket]]\nname = "rest"\ntop = 1.0\ntokens = 50\n'
                        '[pools.code]\ntokens = 40\n[pools.math]\ntokens = 10\n')
    old = tmp_path / "old.csv"
    pd.DataFrame({"run_id": ["r1", "r2"], "w_web_top50": [0.5, 0.2], "w_web_rest": [0.3, 0.2], "w_code": [0.2, 0.6],
                  "loss": [3.0, 3.1]}).to_csv(old, index=False)
    out = tmp_path / "runs.csv"
    code, stdout, err = run_cli(capsys, "runs", "reuse", old, "--pools", manifest, "--out", out)
    assert code == 0, err
    frame = pd.read_csv(out)
    assert len(frame) == 2 and frame["w_math"].tolist() == [0.0, 0.0] and frame["w_web_top50"].tolist() == [0.5, 0.2]
