"""compare.py: type, shape, non-finite, values (in that order), relative error, notes."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from grader.compare import compare, fmt_shape, rel_error, shape_note

TH = 1e-6


def test_identical_is_ok_and_sentence_says_matches():
    a = np.arange(6.0).reshape(2, 3)
    m = compare(a.copy(), a, TH, "dx")
    assert m.ok and m.reason == "" and m.mismatched == 0 and m.total == 6
    assert "matches" in m.sentence("Linear.backward")


def test_values_mismatch_reports_worst_entry():
    exp = np.array([[1.0, 2.0], [3.0, 4.0]])
    got = exp.copy()
    got[1, 0] = 3.3
    m = compare(got, exp, TH, "output")
    assert not m.ok and m.reason == "values"
    assert m.mismatched == 1 and m.total == 4
    assert m.worst == {"index": [1, 0], "expected": 3.0, "got": 3.3}
    assert m.max_rel_error == pytest.approx(0.3 / 3.3)
    s = m.sentence("Dense.forward")
    assert "Dense.forward output" in s and "1 of 4" in s and "[1, 0]" in s
    assert "expected 3" in s and "got 3.3" in s
    assert m.details()["worst"]["index"] == [1, 0]


def test_relative_error_is_course_formula():
    got, exp = np.array([1.0, -2.0, 10.0]), np.array([1.1, -1.0, 5.0])
    np.testing.assert_allclose(rel_error(got, exp), np.abs(got - exp) / np.maximum(np.abs(got), np.abs(exp)))


def test_both_zero_counts_as_equal():
    exp = np.array([0.0, 0.0, 2.0])
    got = np.array([0.0, 1e-15, 2.0])  # float rounding on an exact zero
    assert compare(got, exp, TH, "dx").ok
    assert rel_error(np.zeros(3), np.zeros(3)).tolist() == [0.0, 0.0, 0.0]


def test_nonzero_where_zero_expected_is_a_mismatch():
    exp = np.array([0.0, 1.0])
    m = compare(np.array([1e-3, 1.0]), exp, TH, "dx")
    assert not m.ok and m.worst["index"] == [0] and m.max_rel_error == pytest.approx(1.0)


def test_order_type_before_shape():
    m = compare([[1.0, 2.0]], np.zeros((2, 2)), TH, "dx")  # a list, not an array
    assert m.reason == "type" and "list" in m.sentence("L.backward")


def test_none_is_reported_as_nothing_returned():
    m = compare(None, np.zeros((7, 5)), TH, "dx")
    assert m.reason == "type"
    assert "nothing was returned" in m.sentence("L.backward") and "(7, 5)" in m.sentence("L.backward")


def test_order_shape_before_nonfinite():
    got = np.full((3, 2), np.nan)
    m = compare(got, np.zeros((2, 3)), TH, "dW")
    assert m.reason == "shape" and m.got_shape == (3, 2)


def test_order_nonfinite_before_values():
    exp = np.ones((2, 2))
    got = np.array([[5.0, 5.0], [np.inf, 5.0]])
    m = compare(got, exp, TH, "out")
    assert m.reason == "nonfinite" and m.note == "inf" and m.worst["index"] == [1, 0]
    assert "inf" in m.sentence("L.forward")
    got[0, 1] = np.nan
    m = compare(got, exp, TH, "out")
    assert m.note == "NaN" and m.worst["index"] == [0, 1] and m.mismatched == 2


def test_transposed_note():
    m = compare(np.zeros((3, 5)), np.zeros((5, 3)), TH, "dW")
    assert m.reason == "shape" and "transposed" in m.note
    assert "(3, 5)" in m.sentence("L.backward") and "(5, 3)" in m.sentence("L.backward")


def test_flat_vs_column_notes():
    m = compare(np.zeros(7), np.zeros((7, 1)), TH, "dz")
    assert m.reason == "shape" and "(7,)" in m.note and "(7, 1)" in m.note and "flat" in m.note
    m = compare(np.zeros((7, 1)), np.zeros(7), TH, "loss")
    assert m.reason == "shape" and "column" in m.note


def test_batch_not_summed_note():
    assert "not summed" in shape_note((7, 3), (3,))


def test_scalar_for_size_one_expected():
    assert compare(0.5, np.array(0.5), TH, "loss").ok
    assert not compare(0.25, np.array(0.5), TH, "loss").ok


def test_fmt_shape():
    assert fmt_shape((7,)) == "(7,)" and fmt_shape((7, 1)) == "(7, 1)" and fmt_shape(None) == "none"


def test_threshold_is_respected():
    exp = np.array([1.0])
    assert compare(np.array([1.0 + 1e-7]), exp, 1e-6, "x").ok
    assert not compare(np.array([1.0 + 1e-5]), exp, 1e-6, "x").ok
    assert compare(np.array([1.0 + 1e-5]), exp, 1e-4, "x").ok


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, array_shapes(min_dims=1, max_dims=3, max_side=6), elements=finite))
def test_identical_arrays_always_ok(a):
    m = compare(a.copy(), a, TH, "q")
    assert m.ok and m.mismatched == 0 and m.max_rel_error == 0.0


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, array_shapes(min_dims=1, max_dims=3, max_side=6), elements=finite),
       st.one_of(st.floats(min_value=1.01, max_value=100), st.floats(min_value=-100, max_value=0.99)))
def test_scaled_arrays_detected(a, c):
    assume(np.max(np.abs(a)) >= 1e-3)
    m = compare(c * a, a, TH, "q")
    assert not m.ok and m.reason == "values" and m.mismatched >= 1
    # the worst entry is one where the scaling shows
    w = tuple(m.worst["index"])
    assert a[w] != 0.0


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(2, 5)), elements=finite))
def test_transposed_arrays_always_shape_mismatch(a):
    assume(a.shape[0] != a.shape[1])
    m = compare(a.T.copy(), a, TH, "W")
    assert not m.ok and m.reason == "shape" and "transposed" in m.note
