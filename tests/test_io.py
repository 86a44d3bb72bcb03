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
