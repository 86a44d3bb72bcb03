import numpy as np
import pandas as pd
import pytest

from mixplan import ValidationError, parse_objective
from mixplan.data.runs import validate_runs


@pytest.fixture
def runs():
    return validate_runs(pd.DataFrame({"run_id": ["a", "b"], "w_x": [1.0, 0.0], "w_y": [0.0, 1.0],
                                       "loss_a": [1.0, 2.0], "loss_b": [3.0, 6.0], "acc": [0.5, 0.7]}))


def test_single_column(runs):
    obj = parse_objective("loss_a", runs)
    assert obj.columns == ("loss_a",) and obj.values(runs).tolist() == [1.0, 2.0]
    assert obj.sense == 1.0


def test_mean_glob_and_weights(runs):
    assert parse_objective("mean(loss_*)", runs).values(runs).tolist() == [2.0, 4.0]
    obj = parse_objective("0.5*loss_a + 2*acc + 1e-1*mean(loss_*)", runs)  # (warns: acc counts the wrong way)
    assert np.allclose(obj.values(runs), [0.5 + 1.0 + 0.2, 1.0 + 1.4 + 0.4])


def test_minus_between_terms_and_a_term_counted_the_wrong_way(runs):
    """Accuracies up and a loss down in one maximised objective; hyphens inside names are names."""
    import warnings

    from mixplan.exceptions import MixplanWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", MixplanWarning)  # the intended signs warn about nothing
        obj = parse_objective("acc - 0.5*loss_a", runs, maximize=True)
        assert obj.values(runs).tolist() == pytest.approx([0.5 - 0.5, 0.7 - 1.0])
        assert parse_objective("mean(loss_*)-0.25*loss_a", runs).coefficients == (0.25, 0.5)
        assert parse_objective("loss_a - -2*loss_b", runs).values(runs).tolist() == [7.0, 14.0]
    with pytest.warns(MixplanWarning, match="'loss_a' looks like a loss but the objective maximizes it"):
        parse_objective("acc + loss_a", runs, maximize=True)
    with pytest.warns(MixplanWarning, match="'acc' looks like a score but the objective minimizes it"):
        parse_objective("loss_a + acc", runs)
    hyphen = validate_runs(pd.DataFrame({"run_id": ["a", "b"], "w_x": [1.0, 0.0], "w_y": [0.0, 1.0],
                                         "acc_arc-easy": [0.5, 0.6]}))
    assert parse_objective("acc_arc-easy", hyphen, maximize=True).columns == ("acc_arc-easy",)


def test_maximize_sense(runs):
    assert parse_objective("acc", runs, maximize=True).sense == -1.0


@pytest.mark.parametrize("spec, message", [
    ("", r"the target is empty"),
    ("loss_c", r"no column 'loss_c'"),
    ("mean(ppl_*)", r"mean\(ppl_\*\) matches no metric column"),
    ("loss_a +", r"empty term around '\+'"),
    ("loss_a -", r"empty term around '\+' or '-'"),
    ("2*3*loss_a", r"cannot read the term '2\*3\*loss_a'"),
    ("w_x", r"column 'w_x' is not a metric"),
])
def test_errors(runs, spec, message):
    with pytest.raises(ValidationError, match=message):
        parse_objective(spec, runs)


def test_objective_column_of_a_plain_table():
    import pandas as pd

    from mixplan.data.objective import with_objective_column

    frame = pd.DataFrame({"tokens": [1.0, 2.0], "err_a": [0.2, 0.4], "err_b": [0.4, 0.8], "note": ["x", "y"]})
    assert with_objective_column(frame, "err_a", "t.csv") is frame  # a column: unchanged, checked by the caller
    out = with_objective_column(frame, "mean(err_*)", "t.csv")
    assert out["mean(err_*)"].tolist() == pytest.approx([0.3, 0.6]) and "mean(err_*)" not in frame
    with pytest.raises(ValidationError, match=r"t.csv: no column 'err_c' \(columns: tokens, err_a, err_b, note\)"):
        with_objective_column(frame, "err_a + err_c", "t.csv")
    bad = frame.assign(err_b=[0.4, float("nan")])
    with pytest.raises(ValidationError, match=r"t.csv: row 2, column 'err_b': nan is not a finite number"):
        with_objective_column(bad, "err_a + err_b", "t.csv")
