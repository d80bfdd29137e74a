"""Moodle: grade-import CSV and the offline grading worksheet merge."""
import csv
import io
import html

import pytest

from builders import alice, broken, class_results, mallory
from grader.export import moodle
from grader.export.identity import match, read_roster
from grader.export.rawcsv import parse
from hypothesis import given, strategies as st

HEADER = ('Identifier,"Full name","Email address",Status,Grade,"Maximum grade","Grade can be changed",'
          '"Last modified (submission)","Online text","Last modified (grade)","Feedback comments"')
ROWS = [
    'Participant 101,"Ada Lovelace",ada@uni.edu,"Submitted for grading",,100.00,Yes,"Monday, 3 March 2025, 10:02 AM","",-,',
    'Participant 102,"Mal, Lory",MAL@uni.edu,"Submitted for grading",,100.00,Yes,"Monday, 3 March 2025, 11:40 AM","<p>see ""attached""</p>",-,""',
    'Participant 103,"Carol Syntax",carol@uni.edu,"Submitted for grading",,100.00,Yes,"Tuesday, 4 March 2025, 9:00 AM","",-,',
    'Participant 104,"Dan Absent",dan@uni.edu,"No submission",,100.00,Yes,-,"",-,',
    'Participant 105,"Locked Out",locked@uni.edu,"Submitted for grading",55.00,100.00,No,-,"",-,"old"',
]
ROSTER = ("name,email,submission\nAda Lovelace,ada@uni.edu,alice_classic\nMal Lory,mal@uni.edu,mallory\n"
          "Carol Syntax,carol@uni.edu,carol_syntax\nDan Absent,dan@uni.edu,\nLocked Out,locked@uni.edu,student00\n")


@pytest.fixture
def files(tmp_path):
    ws = tmp_path / "worksheet.csv"
    ws.write_bytes(("\ufeff" + HEADER + "\r\n" + "\r\n".join(ROWS) + "\r\n").encode())
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    return ws, roster


def matching(roster):
    return match(class_results(), read_roster(roster))


def test_worksheet_merge_changes_only_grade_and_feedback(files, tmp_path):
    ws, roster = files
    dest = tmp_path / "graded.csv"
    report = moodle.merge_worksheet(ws, matching(roster), dest)
    before, after = ws.read_bytes(), dest.read_bytes()
    assert after.startswith(b"\xef\xbb\xbf") and after.count(b"\r\n") == before.count(b"\r\n")
    old, new = parse(before.decode("utf-8-sig")), parse(after.decode("utf-8-sig"))
    assert new[0].cells == old[0].cells
    grade, fb = 4, 10
    for o, n in zip(old, new):
        assert len(o.cells) == len(n.cells)
        for i, (a, b) in enumerate(zip(o.cells, n.cells)):
            if i not in (grade, fb):
                assert a == b        # byte-for-byte, quotes included
    ada, mal, carol, dan, locked = new[1:]
    assert ada.value(grade) == "72.73"                      # 16/22 scaled to 100.00, two decimals
    assert ada.value(fb).startswith("nngrader: 16 / 22 points, 72.73 / 100 for this assignment.<br>")
    assert mal.value(grade) == "0.00" and mal.cells[fb].startswith('"')   # quoted as before
    assert "&lt;script&gt;" in mal.value(fb) and "<script>" not in mal.value(fb)
    assert carol.text() == old[3].text() and dan.text() == old[4].text()   # ungraded, absent
    assert locked.text() == old[5].text()                                  # "Grade can be changed: No"
    assert report.filled == ["Ada Lovelace", "Mal Lory"]
    notes = "\n".join(report.notes)
    assert "scaled from" in notes and "cannot be changed" in notes and "could not grade" in notes


def test_merged_worksheet_reads_back_with_csv_module(files, tmp_path):
    ws, roster = files
    dest = tmp_path / "graded.csv"
    moodle.merge_worksheet(ws, matching(roster), dest)
    rows = list(csv.DictReader(io.StringIO(dest.read_text(encoding="utf-8-sig"), newline="")))
    assert [r["Email address"] for r in rows] == ["ada@uni.edu", "MAL@uni.edu", "carol@uni.edu",
                                                  "dan@uni.edu", "locked@uni.edu"]
    assert float(rows[0]["Grade"]) == pytest.approx(72.73)
    assert rows[1]["Online text"] == '<p>see "attached"</p>'


def test_worksheet_rows_match_by_participant_without_a_roster(tmp_path):
    from grader.result import CheckResult, Result
    ws = tmp_path / "w.csv"
    ws.write_text(HEADER + "\n" + ROWS[0] + "\n")
    r = Result("x", (CheckResult("linear.forward", "pass", 3, 3),),
               meta={"source": "submissions/Ada Lovelace_101_assignsubmission_file_hw2.py"})
    report = moodle.merge_worksheet(ws, match([r], None), tmp_path / "o.csv")
    assert report.filled == ["Ada Lovelace"]
    assert parse((tmp_path / "o.csv").read_text())[1].value(4) == "100.00"


def test_grade_import_csv(files, tmp_path):
    _, roster = files
    dest = tmp_path / "m.csv"
    moodle.write_import(matching(roster), dest)
    rows = list(csv.reader(io.StringIO(dest.read_text(), newline="")))
    assert rows[0] == ["Email address", "Grade", "Feedback"]
    got = {r[0]: r for r in rows[1:]}
    assert set(got) == {"ada@uni.edu", "mal@uni.edu", "locked@uni.edu"}   # no blank rows: Moodle would clear
    assert float(got["ada@uni.edu"][1]) == 16
    assert html.unescape(got["mal@uni.edu"][2]).count("<script>alert(1)</script>") == 1


def test_grade_import_needs_an_identity_column(tmp_path):
    with pytest.raises(ValueError, match="email address or ID number"):
        moodle.import_rows(match([alice(), mallory(), broken()], None))


@given(st.lists(st.lists(st.text(alphabet='ab,"\r\n ', max_size=6), min_size=1, max_size=4), max_size=5))
def test_rawcsv_roundtrips_any_text(rows):
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    text = buf.getvalue()
    assert "".join(r.text() for r in parse(text)) == text
    values = [[r.value(i) for i in range(len(r.cells))] for r in parse(text)]
    assert values == list(csv.reader(io.StringIO(text, newline="")))
