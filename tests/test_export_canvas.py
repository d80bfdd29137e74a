"""Canvas: parse the gradebook CSV back by Canvas's rules; feedback files; push dry run."""
import csv
import io
from pathlib import Path

import pytest

from builders import class_results, write_out
from grader.export import canvas
from grader.export.identity import match, read_roster

ROSTER = ('name,email,sis user id,sis login id,section,id,submission\n'
          '"Lovelace, Ada",ada@uni.edu,S001,alovelace,A,101,alice_classic\n'
          '"=HYPERLINK(""http://evil"",""x"")",mal@uni.edu,S002,mallory,B,,mallory\n'
          'Carol Syntax,carol@uni.edu,S003,csyntax,A,103,carol_syntax\n'
          'Dan Absent,dan@uni.edu,S004,dabsent,B,,\n')


@pytest.fixture
def run(tmp_path):
    out = write_out(tmp_path / "out", class_results())
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    return out, roster


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_gradebook_csv_reads_back_as_canvas_expects(run, cli):
    out, roster = run
    assert cli("export", out, "--format", "canvas", "--roster", roster,
               "--assignment", "Homework 2 (123456)") == 1  # 7 submissions are not in the roster
    rows = read_rows(out / "export" / "canvas.csv")
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Homework 2 (123456)"]
    assert rows[1][0] == "    Points Possible" and rows[1][1:5] == ["", "", "", ""]
    assert float(rows[1][5]) == 10
    by_login = {r[3]: r for r in rows[2:]}
    assert by_login["alovelace"] == ["Lovelace, Ada", "101", "S001", "alovelace", "A", "16"]
    assert by_login["mallory"][0].startswith("'=HYPERLINK(")       # neutralised free text
    assert by_login["mallory"][1] == "" and by_login["mallory"][5] == "0"  # blank ID, numeric 0
    assert by_login["csyntax"][5] == ""   # the grader failed: blank, not a quiet zero
    assert by_login["dabsent"][5] == ""   # no submission
    for r in rows[2:]:
        assert r[1] == "" or r[1].isdigit()                   # only Canvas numbers in ID
        assert r[5] == "" or float(r[5]) >= 0                 # scores parse as numbers
    assert (out / "export" / "canvas.csv").read_bytes().count(b"\r\n") == len(rows)


def test_without_a_roster_only_canvas_download_ids_go_in_id(tmp_path):
    from grader.result import CheckResult, Result
    rs = [Result("lovelaceada_12345_67890_hw2", (CheckResult("linear.forward", "pass", 3, 3),)),
          Result("alice_classic", (CheckResult("linear.forward", "fail", 0, 3),))]
    rows = canvas.gradebook_rows(match(rs, None), "HW (1)", 3)
    assert rows[2][:2] == ["lovelaceada", "12345"] and rows[3][:2] == ["alice_classic", ""]


def test_feedback_files_hold_the_comment(run):
    out, roster = run
    results = [r for r in class_results() if r.id in ("alice_classic", "mallory")]
    files = canvas.write_feedback_files(match(results, read_roster(roster)), out / "fb")
    assert sorted(p.name for p in files) == ["101.txt", "S002.txt"]
    text = (out / "fb" / "101.txt").read_text()
    assert text.startswith("nngrader: 16 / 22 points.") and "Tip 8e:" in text
    assert "Suspected mistake: dW is twice" in text


def test_dry_run_prints_each_request_and_touches_no_network(run, cli, capsys, no_network, monkeypatch):
    out, roster = run
    monkeypatch.delenv("CANVAS_TOKEN", raising=False)
    cli("export", out, "--format", "canvas", "--roster", roster, "--assignment", "HW2 (555)",
        "--canvas-push", "--dry-run", "--course", "42")
    stdout = capsys.readouterr().out
    assert "PUT /api/v1/courses/42/assignments/555/submissions/101  (Lovelace, Ada)" in stdout
    assert "submissions/sis_user_id:S002" in stdout
    first = stdout.split("\n", 1)[1].split("\nPUT ")[0].strip().splitlines()
    # the form fields canvasapi sends for submission.edit(submission={...}, comment={...})
    assert first[0] == "submission[posted_grade]=16"
    assert first[1].startswith("comment[text_comment]=nngrader: 16 / 22 points.\\n\\n")
    assert len(first) == 2 and "\n" not in first[1]
    assert "nothing was sent" in stdout and "csyntax" not in stdout


def test_form_fields_are_canvasapis_flattening():
    p = canvas.Push("101", "Ada", "16", "line 1\nline 2")
    assert canvas.form_fields(p.payload()) == [("submission[posted_grade]", "16"),
                                               ("comment[text_comment]", "line 1\nline 2")]
    combine = pytest.importorskip("canvasapi.util").combine_kwargs
    assert canvas.form_fields(p.payload()) == [(k, str(v)) for k, v in combine(**p.payload())]


class FakeCanvas:
    """The slice of canvasapi that push uses, keeping what was posted like Canvas does:
    get_submission(user, include=[...]) returns a submission with its comments and score."""
    store: dict = {}

    def __init__(self, url, token):
        assert (url, token) == ("https://canvas.test", "tok")
        self.calls = FakeCanvas.calls

    def get_course(self, cid):
        assert cid == "42"
        return self

    def get_assignment(self, aid):
        assert aid == "555"
        return self

    def get_user(self, value, kind):
        return f"{kind}={value}"

    def get_submission(self, user, include=()):
        assert "submission_comments" in include     # push must ask for the comments
        return FakeSubmission(user, FakeCanvas.store.setdefault(user, {"score": None, "comments": []}))


class FakeSubmission:
    def __init__(self, user, state):
        self.user, self.state = user, state
        self.score = state["score"]
        self.submission_comments = [{"comment": c, "author_id": 1} for c in state["comments"]]

    def edit(self, **kw):
        FakeCanvas.calls.append((self.user, kw))
        if "submission" in kw:
            self.state["score"] = float(kw["submission"]["posted_grade"])
        if "comment" in kw:
            self.state["comments"].append(kw["comment"]["text_comment"].replace("\n", "\r\n"))


@pytest.fixture
def fake_canvas():
    FakeCanvas.store, FakeCanvas.calls = {}, []
    return FakeCanvas


def push_all(plan, factory):
    return canvas.push(plan, "42", "555", url="https://canvas.test", token="tok",
                       client_factory=factory, stream=io.StringIO())


def test_push_calls_submission_edit_per_student(run, fake_canvas):
    out, roster = run
    plan, _ = canvas.plan_push(match(class_results(), read_roster(roster)))
    assert push_all(plan, fake_canvas) == 0
    calls = fake_canvas.calls
    assert calls[0] == (101, {"submission": {"posted_grade": "16"},
                              "comment": {"text_comment": plan[0].comment}})
    assert calls[1][0] == "sis_user_id=S002"


def test_push_twice_posts_no_second_comment(run, fake_canvas):
    out, roster = run
    plan, _ = canvas.plan_push(match(class_results(), read_roster(roster)))
    assert push_all(plan, fake_canvas) == 0
    first = len(fake_canvas.calls)
    assert push_all(plan, fake_canvas) == 0            # the same run again: nothing to send
    assert len(fake_canvas.calls) == first
    assert all(len(s["comments"]) == 1 for s in fake_canvas.store.values())
    # a regrade changes the grade but not the comment: only the grade goes out
    changed = [canvas.Push(p.user, p.name, "17", p.comment) for p in plan[:1]]
    push_all(changed, fake_canvas)
    assert fake_canvas.calls[-1] == (101, {"submission": {"posted_grade": "17"}})
    assert len(fake_canvas.store[101]["comments"]) == 1


def test_push_without_credentials_says_what_is_missing(run, cli, capsys, monkeypatch, no_network):
    out, roster = run
    for var in ("CANVAS_URL", "CANVAS_TOKEN", "CANVAS_COURSE_ID"):
        monkeypatch.delenv(var, raising=False)
    assert cli("export", out, "--format", "canvas", "--roster", roster, "--canvas-push") == 1
    err = capsys.readouterr().err
    assert "Not pushed: set CANVAS_URL, CANVAS_TOKEN" in err
