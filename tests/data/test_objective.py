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
    with pytest.raises(ValidationError, match=r"t.csv: row 2, column 'err_b': an empty cell is not a finite number"):
        with_objective_column(bad, "err_a + err_b", "t.csv")


def _bpb_runs(n=8):
    """Three bpb columns and their mean as a fourth (as an evaluation harness writes it)."""
    rng = np.random.default_rng(0)
    w = rng.dirichlet([1.0, 1.0], size=n)
    cols = {f"bpb_{k}": 1.0 + rng.random(n) for k in ("code", "news", "reviews")}
    frame = pd.DataFrame({"run_id": [f"r{i}" for i in range(n)], "w_x": w[:, 0], "w_y": w[:, 1], **cols})
    return validate_runs(frame.assign(bpb_mean=frame[list(cols)].mean(axis=1)))


def test_glob_records_its_columns_and_warns_about_an_aggregate_among_them():
    import warnings

    from mixplan.data.objective import Objective
    from mixplan.exceptions import MixplanWarning

    runs = _bpb_runs()
    with pytest.warns(MixplanWarning, match=r"mean\(bpb_\*\) matched 'bpb_mean', which equals the mean of the other 3 "
                                            r"matched columns .* leave it out with mean\(bpb_\*, !bpb_mean\)"):
        obj = parse_objective("mean(bpb_*)", runs)
    assert obj.matched == (("bpb_*", ("bpb_code", "bpb_news", "bpb_reviews", "bpb_mean")),)
    assert obj.to_dict()["matched"] == {"bpb_*": ["bpb_code", "bpb_news", "bpb_reviews", "bpb_mean"]}
    assert Objective.from_dict(obj.to_dict()) == obj
    assert obj.matched_lines() == ["target mean(bpb_*) matched 4 columns: bpb_code, bpb_news, bpb_reviews, bpb_mean"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", MixplanWarning)  # the exclusion the warning suggests: no warning
        clean = parse_objective("mean(bpb_*, !bpb_mean)", runs)
    assert clean.columns == ("bpb_code", "bpb_news", "bpb_reviews")
    assert np.allclose(clean.values(runs), runs.metric("bpb_mean"))
    # a sum is an aggregate too; a name saying so with a close correlation is enough
    summed = runs.frame.assign(bpb_mean=runs.frame[["bpb_code", "bpb_news", "bpb_reviews"]].sum(axis=1))
    with pytest.warns(MixplanWarning, match="'bpb_mean', which equals the sum of the other 3"):
        parse_objective("mean(bpb_*)", validate_runs(summed))
    noisy = runs.frame.assign(bpb_mean=runs.frame["bpb_mean"] * (1 + 1e-3 * np.arange(len(runs))))
    with pytest.warns(MixplanWarning, match=r"'bpb_mean', which looks like an aggregate \(its name; correlation 0.9"):
        parse_objective("mean(bpb_*)", validate_runs(noisy))
    with pytest.raises(ValidationError, match=r"mean\(!bpb_mean\) needs at least one pattern"):
        parse_objective("mean(!bpb_mean)", runs)


def test_objective_that_overflows_is_refused_naming_term_and_row(runs):
    with pytest.raises(ValidationError, match=r"target '1e400\*loss_a': the coefficient 1e400 of the term "
                                              r"'1e400\*loss_a' is not a finite number"):
        parse_objective("1e400*loss_a", runs)
    with pytest.raises(ValidationError, match=r"the objective overflows on row 1 \(run_id 'a'\) and 1 more row "
                                              r"\(its term 1e\+308\*loss_b is inf\): the sum of the terms is beyond"):
        parse_objective("1e308*loss_a + 1e308*loss_b", runs)
    big = validate_runs(runs.frame.assign(loss_b=[3.0, 1.7e308]))
    with pytest.raises(ValidationError, match=r"column 'loss_b' is 1.7e\+308 on row 2 \(run_id 'b'\): beyond 1e\+150"):
        parse_objective("0.5*loss_a + 0.5*loss_b", big)
    inf = runs.frame.assign(loss_b=[3.0, np.inf])  # a non-finite column is refused as it is read
    with pytest.raises(ValidationError, match=r"row 2 \(run_id 'b'\), column 'loss_b': inf is not a finite number"):
        parse_objective("loss_a + loss_b", validate_runs(inf))
