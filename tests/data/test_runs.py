import numpy as np
import pandas as pd
import pytest

from mixplan import ValidationError, load_pools, read_runs
from mixplan.data.runs import check_enough_runs


def table(tmp_path, rows, name="runs.csv"):
    p = tmp_path / name
    pd.DataFrame(rows).to_csv(p, index=False)
    return p


BASE = [{"run_id": "r1", "w_a": 0.5, "w_b": 0.5, "loss": 2.0},
        {"run_id": "r2", "w_a": 0.2, "w_b": 0.8, "loss": 2.5}]


def test_read_good_table(tmp_path):
    runs = read_runs(table(tmp_path, BASE))
    assert runs.pools == ["a", "b"]
    assert runs.run_ids == ["r1", "r2"]
    assert runs.metric_columns == ["loss"]
    assert np.allclose(runs.weights.sum(axis=1), 1)
    assert runs.metric("loss").tolist() == [2.0, 2.5]


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "tsv"])
def test_other_formats(tmp_path, fmt):
    frame = pd.DataFrame(BASE)
    p = tmp_path / f"runs.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(p)
    elif fmt == "jsonl":
        frame.to_json(p, orient="records", lines=True)
    else:
        frame.to_csv(p, sep="\t", index=False)
    assert read_runs(p).pools == ["a", "b"]


def test_manifest_order_is_used(tmp_path):
    (tmp_path / "p.toml").write_text("[pools.b]\ntokens = 1\n[pools.a]\ntokens = 1\n")
    runs = read_runs(table(tmp_path, BASE), load_pools(tmp_path / "p.toml"))
    assert runs.pools == ["b", "a"]
    assert runs.weights[0].tolist() == [0.5, 0.5] and runs.weights[1].tolist() == [0.8, 0.2]


def test_renormalize_opt_in(tmp_path):
    rows = [dict(BASE[0], w_a=0.6), BASE[1]]
    with pytest.raises(ValidationError, match=r"row 1 \(run_id 'r1'\): weights sum to 1.1, not 1 .*--renormalize"):
        read_runs(table(tmp_path, rows))
    runs = read_runs(table(tmp_path, rows), renormalize=True)
    assert np.allclose(runs.weights[0], [0.6 / 1.1, 0.5 / 1.1])


def test_sum_within_tolerance_accepted(tmp_path):
    rows = [dict(BASE[0], w_a=0.5 + 5e-7), BASE[1]]
    assert len(read_runs(table(tmp_path, rows))) == 2


@pytest.mark.parametrize("rows, message", [
    ([{"w_a": 1.0, "loss": 1}], r"no 'run_id' column"),
    ([{"run_id": "x", "w_a": 1.0}, {"run_id": "x", "w_a": 1.0}], r"row 2, column 'run_id': 'x' repeats row 1"),
    ([{"run_id": "x", "a": 1.0}], r"no weight columns; name them w_<pool>"),
    ([{"run_id": "x", "w_a": -0.5, "w_b": 1.5}], r"row 1 \(run_id 'x'\), column 'w_a': weight -0.5 is negative"),
    ([{"run_id": "x", "w_a": "abc", "w_b": 1.0}], r"row 1 \(run_id 'x'\), column 'w_a': weight 'abc' is not a finite"),
    ([{"run_id": "x", "w_a": None, "w_b": 1.0}], r"column 'w_a': weight an empty cell is not a finite number"),
    ([{"run_id": "x", "w_a": 0.0, "w_b": 0.0}], r"row 1 \(run_id 'x'\): all weights are 0"),
    ([{"run_id": "x", "w_a": 1.0, "tokens": -3}], r"column 'tokens': -3 must be a positive number"),
    ([{"run_id": "x", "w_a": 1.0, "params": 0}], r"column 'params': 0 must be a positive number"),
    ([{"run_id": None, "w_a": 1.0}, {"run_id": "y", "w_a": 1.0}], r"row 1, column 'run_id': empty run id"),
])
def test_table_errors(tmp_path, rows, message):
    path = table(tmp_path, rows)
    with pytest.raises(ValidationError, match=message) as info:
        read_runs(path)
    assert str(path) in str(info.value)


def test_pool_names_must_match_manifest(tmp_path):
    (tmp_path / "p.toml").write_text("[pools.a]\ntokens = 1\n[pools.c]\ntokens = 1\n")
    with pytest.raises(ValidationError, match=r"column\(s\) \['w_b'\] name no pool in the manifest"):
        read_runs(table(tmp_path, BASE), load_pools(tmp_path / "p.toml"))
    (tmp_path / "q.toml").write_text("[pools.a]\ntokens = 1\n[pools.b]\ntokens = 1\n[pools.c]\ntokens = 1\n")
    with pytest.raises(ValidationError, match=r"no weight column for pool\(s\) \['c'\]"):
        read_runs(table(tmp_path, BASE), load_pools(tmp_path / "q.toml"))


def test_metric_must_be_numeric_and_present(tmp_path):
    rows = [dict(BASE[0], acc="n/a", acc2=0.1), dict(BASE[1], acc=0.3, acc2="high")]
    runs = read_runs(table(tmp_path, rows))
    with pytest.raises(ValidationError, match=r"row 1 \(run_id 'r1'\), column 'acc': an empty cell is not a finite number"):
        runs.metric("acc")
    with pytest.raises(ValidationError, match=r"row 2 \(run_id 'r2'\), column 'acc2': 'high' is not a finite number"):
        runs.metric("acc2")
    with pytest.raises(ValidationError, match=r"no column 'los'; similar: \['loss'\]"):
        runs.metric("los")


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(ValidationError, match=r"unknown table format '.xlsx'"):
        read_runs(tmp_path / "r.xlsx")
    with pytest.raises(ValidationError, match=r"no such file"):
        read_runs(tmp_path / "r.csv")
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(ValidationError, match=r"bad.parquet: cannot be read as parquet"):
        read_runs(bad)


def test_where_filter(tmp_path):
    rows = [dict(BASE[0], split="train"), dict(BASE[1], split="test")]
    assert read_runs(table(tmp_path, rows), where={"split": "test"}).run_ids == ["r2"]
    with pytest.raises(ValidationError, match=r"cannot select on 'fold': no such column"):
        read_runs(table(tmp_path, rows), where={"fold": "1"})
    with pytest.raises(ValidationError, match=r"no row has split == 'dev'"):
        read_runs(table(tmp_path, rows), where={"split": "dev"})


def test_minimum_runs_per_parameter():
    with pytest.raises(ValidationError, match=r"src 10 runs: too few to fit X \(6 parameters need at least 12 runs"):
        check_enough_runs(10, 6, 2, "X", "src")
    check_enough_runs(12, 6, 2, "X", "src")


def test_run_ids_stay_text(tmp_path):
    rows = [dict(BASE[0], run_id="007"), dict(BASE[1], run_id="7")]
    assert read_runs(table(tmp_path, rows)).run_ids == ["007", "7"]


def test_rows_are_numbered_as_in_the_file_after_where(tmp_path):
    rows = [dict(BASE[0], split="test"), dict(BASE[1], split="train"), dict(BASE[1], run_id="r3", split="train",
                                                                           w_a=0.9)]
    with pytest.raises(ValidationError, match=r"row 3 \(run_id 'r3'\): weights sum to 1.7"):
        read_runs(table(tmp_path, rows), where={"split": "train"})


def test_json_array_file(tmp_path):
    p = tmp_path / "runs.json"
    pd.DataFrame(BASE).to_json(p, orient="records")
    assert read_runs(p).run_ids == ["r1", "r2"]


@pytest.mark.parametrize("rows, message", [
    ([], r"the table has no rows"),
])
def test_empty_table(tmp_path, rows, message):
    p = tmp_path / "e.csv"
    p.write_text("run_id,w_a\n")
    with pytest.raises(ValidationError, match=message):
        read_runs(p)


def test_layout_errors(tmp_path):
    mix = table(tmp_path, [{"index": 1, "a": 1.0}, {"index": 1, "a": 1.0}], "mix.csv")
    loss = table(tmp_path, [{"index": 1, "loss": 1.0}], "loss.csv")
    with pytest.raises(ValidationError, match=r"mix.csv: row 2, column 'index': 1 appears twice"):
        read_runs(mix, metrics=loss)
    noidx = table(tmp_path, [{"a": 1.0}], "noidx.csv")
    with pytest.raises(ValidationError, match=r"noidx.csv: RegMix layout needs an 'index' column"):
        read_runs(noidx, metrics=loss, layout="regmix")
    with pytest.raises(ValidationError, match=r"layout 'olmix' needs a metrics file"):
        read_runs(mix, layout="olmix")
    with pytest.raises(ValidationError, match=r"unknown runs layout 'csv'"):
        read_runs(mix, layout="csv")


def test_regmix_layout(tmp_path):
    mix = table(tmp_path, [{"index": 1, "train_the_pile_arxiv": 0.25, "train_the_pile_pile_cc": 0.75},
                           {"index": 2, "train_the_pile_arxiv": 1.0, "train_the_pile_pile_cc": 0.0}], "mix.csv")
    loss = table(tmp_path, [{"index": 2, "metric/the_pile_pile_cc_val_loss": 6.0},
                            {"index": 1, "metric/the_pile_pile_cc_val_loss": 5.0}], "loss.csv")
    runs = read_runs(mix, metrics=loss)
    assert runs.pools == ["arxiv", "pile_cc"]
    assert runs.run_ids == ["1", "2"]
    assert runs.metric("loss_pile_cc").tolist() == [5.0, 6.0]
    short = table(tmp_path, [{"index": 1, "metric/the_pile_pile_cc_val_loss": 5.0}], "short.csv")
    with pytest.raises(ValidationError, match=r"1 index value\(s\) appear in only one file \(first: '2'\)"):
        read_runs(mix, metrics=short)


def test_olmix_layout(tmp_path):
    ratios = tmp_path / "ratios.csv"
    ratios.write_text(",run,name,index,web,code\n0,aa,exp-0000,0,0.7000000000000001,0.3\n1,bb,exp-0001,1,0.2,0.8\n")
    metrics = tmp_path / "metrics.csv"
    metrics.write_text(",run,name,index,arc:rc::olmes,hellaswag:rc::olmes\n0,bb,exp-0001,1,1.5,2.5\n"
                       "1,aa,exp-0000,0,1.0,2.0\n")
    runs = read_runs(ratios, metrics=metrics)
    assert runs.pools == ["web", "code"]
    assert runs.run_ids == ["exp-0000", "exp-0001"]
    assert runs.metric("arc:rc::olmes").tolist() == [1.0, 1.5]


@pytest.mark.parametrize("rows, renormalize, message", [
    ([dict(BASE[0], w_a=1e308), BASE[1]], False,
     r"row 1 \(run_id 'r1'\), column 'w_a': weight 1e\+308 is above 1; weights are shares in \[0, 1\]"),
    ([dict(BASE[0], w_a=1e308, w_b=1e308), BASE[1]], True,
     r"row 1 \(run_id 'r1'\), column 'w_a': weight 1e\+308 makes the row's sum overflow"),
    ([BASE[0], dict(BASE[1], w_a=0.0, w_b=0.0)], True,
     r"row 2 \(run_id 'r2'\): all weights are 0 \(columns w_a, w_b\)"),
])
def test_weights_beyond_a_share_or_summing_to_nothing_are_refused(tmp_path, rows, renormalize, message):
    with pytest.raises(ValidationError, match=message) as info:
        read_runs(table(tmp_path, rows), renormalize=renormalize)
    assert str(tmp_path / "runs.csv") in str(info.value) and "\n" not in str(info.value)
    assert read_runs(table(tmp_path, [dict(BASE[0], w_a=30, w_b=70), BASE[1]]), renormalize=True).weights[0].tolist() \
        == pytest.approx([0.3, 0.7])  # counts or percentages are fine with --renormalize
