"""Table output: mixplan's CSV text is pandas' to_csv(float_format="%.10g"), made faster."""

import numpy as np
import pandas as pd
import pytest

from mixplan._io import table_csv


def _pandas(frame):
    return frame.to_csv(index=False, float_format="%.10g", lineterminator="\n")


@pytest.mark.parametrize("seed", range(5))
def test_csv_text_equals_pandas(seed):
    rng = np.random.default_rng(seed)
    n = 40
    x = rng.normal(size=n) * 10.0 ** rng.integers(-12, 12, n)
    x[::7] = np.nan
    x[3] = np.inf
    x[4] = -0.0
    frame = pd.DataFrame({
        "run_id": [f"r{i}" for i in range(n)],
        "odd, name": [["a", 'quote "q"', "comma,c", "line\nbreak", ""][i % 5] for i in range(n)],
        "x": x, "w": rng.dirichlet(np.ones(3), n)[:, 0], "k": rng.integers(-5, 5, n),
        "flag": rng.random(n) > 0.5, "f32": rng.random(n).astype(np.float32),
    })
    assert table_csv(frame) == _pandas(frame)
    assert table_csv(frame.iloc[:0]) == _pandas(frame.iloc[:0])
    mixed = frame.assign(other=[None if i % 3 else "s" for i in range(n)])  # falls back to pandas
    assert table_csv(mixed) == _pandas(mixed)
    dates = frame.assign(day=pd.date_range("2026-01-01", periods=n))
    assert table_csv(dates) == _pandas(dates)


def test_json_refuses_a_non_finite_number_and_says_where():
    from mixplan import ValidationError
    from mixplan._io import dumps_json

    assert dumps_json({"a": [1.0, 2]}) == '{\n  "a": [\n    1.0,\n    2\n  ]\n}\n'
    with pytest.raises(ValidationError, match=r"not finite at mixtures.recommended.lower\[1\] \(inf\)"):
        dumps_json({"mixtures": {"recommended": {"lower": np.array([0.5, np.inf]), "upper": 1.0}}})
    with pytest.raises(ValidationError, match=r"not finite at the top \(nan\)"):
        dumps_json(float("nan"))


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".json", ".jsonl"])
def test_a_table_is_written_in_the_format_its_suffix_names(tmp_path, suffix):
    """Issue 23: `predict --out pred.parquet` once wrote CSV text into a .parquet file."""
    from mixplan._io import read_table, write_table_atomic

    frame = pd.DataFrame({"run_id": ["007", "b"], "prediction": [0.25, np.nan], "covered": [True, False]})
    path = tmp_path / f"t{suffix}"
    write_table_atomic(path, frame)
    back = read_table(path)
    assert list(back.columns) == list(frame.columns) and back["run_id"].tolist() == ["007", "b"]
    assert back["prediction"].iloc[0] == 0.25 and np.isnan(back["prediction"].iloc[1])
    raw = path.read_bytes()
    assert raw.startswith(b"PAR1") == (suffix == ".parquet")  # Parquet's magic number, and only there
    if suffix == ".tsv":
        assert raw.splitlines()[0] == b"run_id\tprediction\tcovered"


def test_an_unknown_table_suffix_or_an_infinite_json_value_is_refused(tmp_path):
    from mixplan._io import write_table_atomic
    from mixplan.exceptions import ValidationError

    frame = pd.DataFrame({"x": [1.0, np.inf]})
    with pytest.raises(ValidationError, match=r"cannot write a table as '.txt'; name the file .csv, .tsv"):
        write_table_atomic(tmp_path / "t.txt", frame)
    with pytest.raises(ValidationError, match=r"column 'x', row 2: inf cannot be written as JSON"):
        write_table_atomic(tmp_path / "t.json", frame)
    assert list(tmp_path.iterdir()) == []  # nothing written on refusal


def test_predict_out_parquet_is_parquet_and_an_unknown_suffix_is_refused_before_the_work(capsys, tmp_path):
    from mixplan.cli import main
    from mixplan._io import read_table

    runs = tmp_path / "runs.csv"
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(3), 30)
    pd.DataFrame({"run_id": [f"r{i}" for i in range(30)], "w_a": w[:, 0], "w_b": w[:, 1], "w_c": w[:, 2],
                  "loss": 3 - w[:, 0] + 0.01 * rng.normal(size=30)}).to_csv(runs, index=False)
    assert main(["fit", str(runs), "--target", "loss", "--model", "ridge", "--out", str(tmp_path / "m")]) == 0
    assert main(["predict", str(tmp_path / "m"), str(runs), "--out", str(tmp_path / "p.parquet")]) == 0
    assert (tmp_path / "p.parquet").read_bytes()[:4] == b"PAR1"
    assert len(read_table(tmp_path / "p.parquet")) == 30
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "m"), str(runs), "--out", str(tmp_path / "p.txt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "p.txt: cannot write a table as '.txt'" in err
    assert not (tmp_path / "p.txt").exists()
