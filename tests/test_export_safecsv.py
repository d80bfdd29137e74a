import csv
import io

import pytest
from hypothesis import given, strategies as st

from grader.export import safecsv


@pytest.mark.parametrize("cell", ["=1+1", "+33 6", "-2", "@SUM(A1)", "\tx", "\rx",
                                  '=HYPERLINK("http://evil","x")'])
def test_formula_starts_are_neutralised(cell):
    assert safecsv.text(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["Lovelace, Ada", "", "O'Brien", "a=b", "ζ"])
def test_plain_text_is_left_alone(cell):
    assert safecsv.text(cell) == cell


@given(st.text())
def test_no_free_text_cell_can_start_a_formula(s):
    out = safecsv.text(s)
    assert not out.startswith(safecsv.FORMULA_START)
    assert out.endswith(s)


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_scores_stay_numbers(x):
    cell = safecsv.score(x)
    assert abs(float(cell) - round(x, 2)) < 1e-9
    assert not cell.startswith("'")


def test_scores_and_ids_are_validated_not_escaped():
    assert safecsv.score(17.5) == "17.5" and safecsv.score(20) == "20" and safecsv.score(-0.0) == "0"
    assert safecsv.score(None) == ""
    for bad in ("=1", "17", float("nan"), float("inf"), True):
        with pytest.raises(safecsv.CellError):
            safecsv.score(bad)
    assert safecsv.identifier("ada.l@uni.edu") == "ada.l@uni.edu"
    assert safecsv.integer("12345") == "12345"
    for bad in ("=cmd", "a b", "-x"):
        with pytest.raises(safecsv.CellError):
            safecsv.identifier(bad)
    with pytest.raises(safecsv.CellError):
        safecsv.integer("S0012")


def test_a_guarded_row_reads_back_through_csv():
    buf = io.StringIO()
    csv.writer(buf).writerow([safecsv.text("=cmd|' /C calc'!A0"), safecsv.score(3.25)])
    name, score = next(csv.reader(io.StringIO(buf.getvalue())))
    assert name.startswith("'=") and float(score) == 3.25
