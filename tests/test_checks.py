"""The one checker of user-given numbers (mixplan._checks): messages name values as the user wrote them."""

import numpy as np
import pandas as pd
import pytest

from mixplan import ValidationError
from mixplan._checks import check_number, show_cell


@pytest.mark.parametrize("cell, shown", [
    (np.float64(1.5), "1.5"), (np.int64(3), "3"), (np.str_("abc"), "'abc'"), ("abc", "'abc'"), (2.0, "2.0"),
    (float("nan"), "an empty cell"), (np.float64("nan"), "an empty cell"), (None, "an empty cell"),
    (pd.NA, "an empty cell"), (np.float64("inf"), "inf"),
])
def test_a_cell_is_shown_as_written_not_by_numpy_type(cell, shown):
    assert show_cell(cell) == shown


def test_check_number_names_a_numpy_scalar_plainly():
    # an all-numeric table's rows (DataFrame.iterrows) hold numpy scalars: numpy 2 would print np.float64(1.5)
    row = next(pd.DataFrame({"keep": [1.5], "loss": [float("nan")]}).iterrows())[1]
    assert isinstance(row["keep"], np.floating)
    with pytest.raises(ValidationError, match=r"^runs.csv: row 1, column 'keep': 1.5 must be in \(0, 1\]"):
        check_number(row["keep"], "runs.csv: row 1, column 'keep'", lo=0, hi=1, lo_open=True, coerce=True)
    with pytest.raises(ValidationError, match=r"column 'loss': an empty cell is not a finite number"):
        check_number(row["loss"], "runs.csv: row 1, column 'loss'", coerce=True)  # a cell: empty, not 'nan'
    with pytest.raises(ValidationError, match=r"^--level: nan is not a finite number"):
        check_number(np.float64("nan"), "--level")  # not a cell: the value as given
    with pytest.raises(ValidationError, match=r"^n: 2.5 is not an integer"):
        check_number(np.float64(2.5), "n", integer=True)
    assert check_number(np.float32(0.5), "x", lo=0, hi=1) == 0.5
