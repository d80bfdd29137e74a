from pathlib import Path

from builders import alice, mallory
from grader.export.identity import match, name_keys, parse_download_name, read_roster
from grader.result import CheckResult, Result


def named(rid: str, source: str) -> Result:
    return Result(rid, (CheckResult("linear.forward", "pass", 3, 3),),
                  meta={"graded_file": source, "source": f"submissions/{source}"})


def test_canvas_and_moodle_download_names():
    d = parse_download_name("submissions/lovelaceada_12345_67890_hw2.py")
    assert (d.lms, d.name, d.canvas_id, d.late) == ("canvas", "lovelaceada", "12345", False)
    d = parse_download_name("lovelaceada_late_12345_67890_hw2.py")
    assert d.late and d.canvas_id == "12345"
    d = parse_download_name("Ada Lovelace_12345_assignsubmission_file_hw2.py")
    assert (d.lms, d.name, d.participant) == ("moodle", "Ada Lovelace", "12345")
    assert parse_download_name("alice_classic.py") is None
    assert "lovelaceada" in name_keys("Lovelace, Ada") and "lovelaceada" in name_keys("Ada Lovelace")


def test_without_a_roster_the_download_name_says_who():
    m = match([named("x", "lovelaceada_late_12345_67890_hw2.py"),
               named("y", "Grace Hopper_777_assignsubmission_file_hw2.py"), alice()], None)
    students = [s for s, _ in m.pairs]
    assert students[0].canvas_id == "12345" and students[0].name == "lovelaceada"
    assert students[1].participant == "777" and students[1].name == "Grace Hopper"
    assert students[2].name == "alice_classic" and students[2].canvas_id == ""


def test_roster_matching_reports_unmatched_and_missing(tmp_path: Path):
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "name,email,id,sis user id,submission\n"
        '"Lovelace, Ada",ada@uni.edu,12345,S1,\n'          # by Canvas id from the file name
        "Grace Hopper,grace@uni.edu,,S2,\n"                 # by Moodle full name
        "Alice Classic,alice@uni.edu,,S3,alice_classic\n"   # by explicit submission id
        "Dan Absent,dan@uni.edu,,S4,\n", encoding="utf-8")
    results = [named("a", "lovelaceada_12345_67890_hw2.py"),
               named("g", "Grace Hopper_9_assignsubmission_file_hw2.py"), alice(), mallory()]
    m = match(results, read_roster(roster))
    got = {s.name: (r.id if r else None) for s, r in m.pairs}
    assert got == {"Lovelace, Ada": "a", "Grace Hopper": "g", "Alice Classic": "alice_classic",
                   "Dan Absent": None}
    assert [r.id for r in m.unmatched] == ["mallory"]
    report = "\n".join(m.report())
    assert "mallory matches no student" in report and "Dan Absent has no submission" in report


def test_a_canvas_gradebook_export_works_as_a_roster(tmp_path: Path):
    roster = tmp_path / "export.csv"
    roster.write_text("\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,HW1 (1)\n"
                      "    Points Possible,,,,,10\n"
                      '"Lovelace, Ada",12345,S1,alove,Sec A,8\n', encoding="utf-8")
    [s] = read_roster(roster)
    assert (s.name, s.canvas_id, s.sis_user_id, s.sis_login_id, s.section) == \
        ("Lovelace, Ada", "12345", "S1", "alove", "Sec A")


def test_ambiguous_match_is_refused(tmp_path: Path):
    roster = tmp_path / "r.csv"
    roster.write_text("name\nAda Lovelace\nAda Lovelace\n")
    m = match([named("a", "lovelaceada_1_2_hw2.py")], read_roster(roster))
    assert m.unmatched and "matches 2 students" in m.report()[0]


def test_moodle_participants_list_with_first_and_last_name(tmp_path: Path):
    roster = tmp_path / "p.csv"
    roster.write_text("First name,Last name,ID number,Email address\nAda,Lovelace,A-1,ada@uni.edu\n")
    [s] = read_roster(roster)
    assert (s.name, s.id_number, s.email) == ("Ada Lovelace", "A-1", "ada@uni.edu")
