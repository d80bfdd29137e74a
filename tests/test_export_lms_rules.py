"""The rules that make an export import as it is: blank for ungradable work, LMS download
names, Moodle plugin folders, --points, worksheets in Moodle's languages, the unmatched
summary and exit status, and a Canvas push that is safe to repeat (through canvasapi itself,
with its HTTP requester faked)."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from builders import alice, class_results, write_out
from grader import load
from grader.export import canvas, moodle
from grader.export.common import Grading
from grader.export.identity import match, parse_download_name, read_roster
from grader.export.rawcsv import parse
from grader.result import CheckResult, Result


def ungradable(rid: str = "py2") -> Result:
    """What the pipeline writes when a file cannot be graded: error set, every check skipped."""
    checks = (CheckResult("linear.forward", "skipped", 0, 3, "not run: Python 2"),
              CheckResult("relu.forward", "skipped", 0, 2, "not run: Python 2"))
    return Result(rid, checks, error="py2.py is written in Python 2 (a print statement on line 3)",
                  meta={"graded_file": f"{rid}.py"})


def graded(rid: str, score: float, top: float = 5, source: str | None = None) -> Result:
    checks = (CheckResult("linear.forward", "pass" if score == top else "fail", score, top,
                          "" if score == top else "off"),)
    return Result(rid, checks, meta={"source": source or f"submissions/{rid}.py"})


def rows_of(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))


# ---- ungradable work: blank, or zero when asked ----------------------------------------------

def test_ungradable_work_is_blank_everywhere_unless_zero_is_asked(tmp_path, cli):
    out = write_out(tmp_path / "out", [graded("ada", 4), ungradable("py2")])
    roster = tmp_path / "r.csv"
    roster.write_text("name,email,id,submission\nAda,ada@uni.edu,1,ada\nPy Two,py2@uni.edu,2,py2\n")
    for flag, expect in ((), ""), (("--ungradable", "zero"), "0"):
        assert cli("export", out, "--format", "canvas", "--roster", roster, *flag) == 0
        by_name = {r[0]: r for r in rows_of(out / "export" / "canvas.csv")}
        assert by_name["Py Two"][5] == expect and by_name["Ada"][5] == "4"
        assert cli("export", out, "--format", "moodle", "--roster", roster, *flag) == 0
        emails = {r[0]: r[1] for r in rows_of(out / "export" / "moodle.csv")[1:]}
        assert emails.get("py2@uni.edu") == (expect or None)   # no row at all: Moodle would clear it
        assert cli("export", out, "--format", "csv", "--roster", roster, *flag) == 0
        plain = {r[1]: r for r in rows_of(out / "export" / "grades.csv")}
        assert plain["py2"][2] == expect and "Python 2" in plain["py2"][4]
    plan, _ = canvas.plan_push(match([ungradable()], read_roster(roster)))
    assert plan == []                                              # nothing pushed for it


# ---- Canvas download names ---------------------------------------------------------------

@pytest.mark.parametrize("name", ["lovelaceada_LATE_12345_67890_hw2.py", "lovelaceada_late_12345_67890_hw2.py",
                                  "lovelaceada_Late_12345_67890_hw2.ipynb", "lovelaceada_12345_67890_hw2.py"])
def test_canvas_names_in_any_case_of_the_late_marker(name):
    d = parse_download_name(name)
    assert (d.lms, d.name, d.canvas_id) == ("canvas", "lovelaceada", "12345")
    assert d.late == ("late" in name.lower())


def test_a_late_canvas_download_gets_its_canvas_id_in_the_csv(tmp_path, cli):
    out = write_out(tmp_path / "out", [graded("lovelaceada_LATE_12345_67890_hw2", 5,
                                              source="dl/lovelaceada_LATE_12345_67890_hw2.py")])
    assert cli("export", out, "--format", "canvas", "--assignment", "HW2 (9)") == 0
    assert rows_of(out / "export" / "canvas.csv")[2][:2] == ["lovelaceada", "12345"]


# ---- Moodle: one participant's plugin folders are one submission ---------------------------

FILE = "Ada Lovelace_123456_assignsubmission_file_"
TEXT = "Ada Lovelace_123456_assignsubmission_onlinetext_"


def test_a_batch_folder_grades_the_file_submission_of_a_participant(tmp_path):
    (tmp_path / FILE).mkdir()
    (tmp_path / FILE / "hw2.py").write_text("x = 1\n")
    (tmp_path / TEXT).mkdir()
    (tmp_path / TEXT / "onlinetext.html").write_text("<p>see my file</p>")
    (tmp_path / "Grace Hopper_777_assignsubmission_onlinetext_").mkdir()   # only online text
    found, notes = load.discover(tmp_path)
    assert [p.name for p in found] == [FILE, "Grace Hopper_777_assignsubmission_onlinetext_"]
    assert any(TEXT in n and "file submission" in n for n in notes)


def test_worksheet_gets_the_file_submission_not_the_online_text(tmp_path, cli):
    # as an older run left them: a result for each plugin folder of one participant
    results = [Result(TEXT, (CheckResult("linear.forward", "skipped", 0, 35.5, "not run"),),
                      error=f"{TEXT} holds no .py or .ipynb file", meta={"source": f"dl/{TEXT}"}),
               graded(FILE, 34.5, 35.5, source=f"dl/{FILE}")]
    out = write_out(tmp_path / "out", results)
    ws = tmp_path / "ws.csv"
    ws.write_text('Identifier,"Full name","Email address",Status,Grade,"Maximum grade",'
                  '"Grade can be changed","Feedback comments"\n'
                  'Participant 123456,"Ada Lovelace",ada@uni.edu,Submitted,,35.50,Yes,\n')
    assert cli("export", out, "--format", "moodle", "--worksheet", ws, "--out", tmp_path / "o.csv") == 0
    assert parse((tmp_path / "o.csv").read_text())[1].value(4) == "34.50"
    m = match(results, None)
    assert [r.id for _, r in m.pairs] == [FILE] and "is exported" in m.report()[0]


# ---- --points ---------------------------------------------------------------------------

def test_points_scale_canvas_moodle_and_csv(tmp_path, cli):
    out = write_out(tmp_path / "out", [graded("ada", 4), graded("bob", 5)])
    roster = tmp_path / "r.csv"
    roster.write_text("name,email,id,submission\nAda,ada@uni.edu,1,ada\nBob,bob@uni.edu,2,bob\n")
    assert cli("export", out, "--format", "canvas", "--roster", roster, "--points", "100") == 0
    rows = rows_of(out / "export" / "canvas.csv")
    assert rows[1][5] == "100" and rows[2][5] == "80" and rows[3][5] == "100"
    assert "4 / 5 points, 80 / 100 for this assignment" in (out / "export" / "canvas_feedback" / "1.txt").read_text()
    assert cli("export", out, "--format", "moodle", "--roster", roster, "--points", "10") == 0
    assert rows_of(out / "export" / "moodle.csv")[1][:2] == ["ada@uni.edu", "8"]
    assert cli("export", out, "--format", "csv", "--roster", roster, "--points", "20") == 0
    plain = rows_of(out / "export" / "grades.csv")
    assert plain[0][-1] == "grade_of_20" and plain[1][2] == "4" and plain[1][-1] == "16"
    assert cli("export", out, "--format", "csv", "--points", "0") == 2     # refused, one line


def test_the_worksheets_own_maximum_wins_over_points(tmp_path):
    ws = tmp_path / "w.csv"
    ws.write_text("Identifier,Email address,Grade,Maximum grade,Feedback comments\n"
                  "Participant 1,ada@uni.edu,,50.0,\n")
    m = match([graded("ada", 4)], [read_roster_row("Ada", "ada@uni.edu", "ada")])
    report = moodle.merge_worksheet(ws, m, tmp_path / "o.csv", Grading(points=100))
    assert parse((tmp_path / "o.csv").read_text())[1].value(2) == "40.0"
    assert any("differs from the worksheet's maximum grade 50" in n for n in report.notes)


def read_roster_row(name, email, submission):
    from grader.export.identity import Student
    return Student(name=name, email=email, submission=submission)


# ---- worksheets in the languages Moodle ships ------------------------------------------------

# The offline grading worksheet's header row as Moodle writes it in each language (strings
# of Moodle's language packs: assign/recordid, core grade, assign/maxgrade,
# assign/gradecanbechanged, assignfeedback_comments/pluginname), with the participant
# prefix (assign/hiddenuser) in the identifier cells.
WORKSHEETS = {
    "de": ("ID", "Vollständiger Name", "E-Mail-Adresse", "Status", "Bewertung", "Bestwertung",
           "Bewertung kann geändert werden", "Feedback als Kommentar", "Teilnehmer/in", "Nein"),
    "fr": ("Identifiant", "Nom complet", "Adresse de courriel", "Statut", "Note", "Note maximale",
           "La note peut être modifiée", "Feedback par commentaires", "Participant", "Non"),
    "es": ("Identificador", "Nombre completo", "Dirección de correo", "Estatus", "Calificación",
           "Calificación máxima", "La calificación puede cambiarse", "Comentarios de retroalimentación",
           "Participante", "No"),
    "it": ("Identificativo", "Nome completo", "Indirizzo email", "Stato", "Valutazione",
           "Valutazione massima", "La valutazione può essere cambiata", "Commenti", "Partecipante", "No"),
    "nl": ("Identificatie", "Volledige naam", "E-mailadres", "Status", "Cijfer", "Maximaal cijfer",
           "Het cijfer kan gewijzigd worden", "Feedback", "Deelnemer", "Nee"),
    "pt": ("Número de identificação", "Nome completo", "Endereço de email", "Estado", "Nota",
           "Nota Máxima", "A nota pode ser alterada.", "Comentários de feedback", "Participante", "Não"),
    "en": ("Identifier", "Full name", "Email address", "Status", "Grade", "Maximum grade",
           "Grade can be changed", "Feedback comments", "Participant", "No"),
}


@pytest.mark.parametrize("lang", sorted(WORKSHEETS))
def test_worksheet_columns_are_found_in_each_language(tmp_path, lang):
    ident, full, email, status, grade, top, changeable, feedback, who, no = WORKSHEETS[lang]
    ws = tmp_path / f"ws-{lang}.csv"
    header = ",".join(f'"{h}"' for h in (ident, full, email, status, grade, top, changeable, feedback))
    ws.write_text("\ufeff" + header + "\r\n"
                  f'{who} 101,"Ada Lovelace",ada@uni.edu,x,,"10,00",Ja,\r\n'     # decimal comma kept
                  f'{who} 102,"Bob",bob@uni.edu,x,3,"10,00",{no},old\r\n', encoding="utf-8")
    results = [graded("ada", 4), graded("bob", 5)]
    roster = [read_roster_row("Ada Lovelace", "ada@uni.edu", "ada"), read_roster_row("Bob", "bob@uni.edu", "bob")]
    report = moodle.merge_worksheet(ws, match(results, roster), tmp_path / "o.csv")
    new = parse((tmp_path / "o.csv").read_text(encoding="utf-8-sig"))
    assert new[1].value(4) == "8,00" and new[1].value(7).startswith("nngrader: 4 / 5 points")
    assert new[2].value(4) == "3" and new[2].value(7) == "old"     # "grade can be changed: no"
    assert report.filled == ["Ada Lovelace"]


def test_worksheet_rows_match_by_participant_when_emails_are_hidden(tmp_path):
    ws = tmp_path / "w.csv"
    ws.write_text("Identifikator,ID,Bewertung,Feedback als Kommentar\nx,Teilnehmer/in 77,,\n")
    r = graded("x", 5, source="dl/Grace Hopper_77_assignsubmission_file_hw2.py")
    moodle.merge_worksheet(ws, match([r], None), tmp_path / "o.csv")
    assert parse((tmp_path / "o.csv").read_text())[1].value(2) == "5.00"


def test_a_worksheet_nngrader_cannot_read_is_named_with_its_columns(tmp_path, cli, capsys):
    out = write_out(tmp_path / "out", [alice()])
    ws = tmp_path / "sheet.csv"
    ws.write_text("Kennung,Punkte,Bemerkung\nTeilnehmer/in 1,,\n")
    assert cli("export", out, "--format", "moodle", "--worksheet", ws) == 2
    err = capsys.readouterr().err
    assert str(ws) in err and "'Kennung', 'Punkte', 'Bemerkung'" in err
    assert "no identifier / grade / feedback column" in err and "'Bewertung'" in err
    ws.write_text("Identifier,Email address,Grade\nParticipant 1,a@b.c,\n")
    assert cli("export", out, "--format", "moodle", "--worksheet", ws) == 2
    assert "Enable 'Feedback comments'" in capsys.readouterr().err


# ---- unmatched rows: a summary and a non-zero exit ---------------------------------------

def test_unmatched_submissions_are_summed_up_and_fail_the_export(tmp_path, cli, capsys):
    out = write_out(tmp_path / "out", class_results())
    roster = tmp_path / "r.csv"
    roster.write_text("name,submission\nAlice,alice_classic\nMal,mallory\nCarol,carol_syntax\n")
    assert cli("export", out, "--format", "csv", "--roster", roster) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("Not exported: 7 submission(s) matched no student: student00, student01")
    assert "--allow-unmatched" in last
    assert cli("export", out, "--format", "csv", "--roster", roster, "--allow-unmatched") == 0
    assert "Accepted (--allow-unmatched)" in capsys.readouterr().err


def test_a_graded_student_missing_from_the_worksheet_fails_the_export(tmp_path, cli, capsys):
    out = write_out(tmp_path / "out", [graded("ada", 4), graded("bob", 5)])
    roster = tmp_path / "r.csv"
    roster.write_text("name,email,submission\nAda,ada@uni.edu,ada\nBob,bob@uni.edu,bob\n")
    ws = tmp_path / "w.csv"
    ws.write_text("Identifier,Email address,Grade,Feedback comments\nParticipant 1,ada@uni.edu,,\n"
                  "Participant 3,cy@uni.edu,,\n")
    assert cli("export", out, "--format", "moodle", "--roster", roster, "--worksheet", ws) == 1
    err = capsys.readouterr().err
    assert "Bob (bob) has no row in the worksheet" in err and "Not exported: 1 submission(s)" in err
    assert "1 worksheet row(s) matched no submission here" in err
    assert cli("export", out, "--format", "moodle", "--roster", roster, "--worksheet", ws,
               "--allow-unmatched") == 0


def test_canvas_rows_canvas_cannot_match_count_as_unmatched(tmp_path, cli, capsys):
    out = write_out(tmp_path / "out", [graded("alice_classic", 4)])
    assert cli("export", out, "--format", "canvas") == 1
    assert "Canvas cannot match them" in capsys.readouterr().err


# ---- Canvas push through canvasapi itself -----------------------------------------------

class FakeCanvasServer:
    """Canvas's REST API as canvasapi's Requester sees it: records every request."""

    def __init__(self):
        self.requests, self.subs = [], {}

    def request(self, method, endpoint=None, headers=None, use_auth=True, _url=None,
                _kwargs=None, json=False, **kwargs):
        self.requests.append((method, endpoint, list(_kwargs or [])))
        parts = endpoint.split("/")
        if method == "GET" and len(parts) == 2:
            body = {"id": int(parts[1])}
        elif method == "GET" and parts[2] == "users":
            body = {"id": 202}
        elif method == "GET" and len(parts) == 4:
            body = {"id": int(parts[3]), "course_id": int(parts[1])}
        else:
            uid = int(parts[5])
            state = self.subs.setdefault(uid, {"score": None, "comments": []})
            if method == "PUT":
                fields = dict(_kwargs or [])
                if "submission[posted_grade]" in fields:
                    state["score"] = float(fields["submission[posted_grade]"])
                if "comment[text_comment]" in fields:
                    state["comments"].append({"comment": fields["comment[text_comment]"]})
            body = {"id": uid, "user_id": uid, "assignment_id": int(parts[3]), "course_id": int(parts[1]),
                    "score": state["score"], "submission_comments": list(state["comments"])}
        return type("Response", (), {"json": lambda self, b=body: b, "status_code": 200})()


def test_push_sends_the_dry_runs_fields_and_never_a_comment_twice(tmp_path, monkeypatch, capsys, no_network):
    requester = pytest.importorskip("canvasapi.requester")
    server = FakeCanvasServer()
    monkeypatch.setattr(requester.Requester, "request",
                        lambda self, *a, **kw: server.request(*a, **kw))
    roster = tmp_path / "r.csv"
    roster.write_text("name,id,sis user id,submission\nAda,101,S1,ada\nBob,,S2,bob\n")
    plan, problems = canvas.plan_push(match([graded("ada", 4), graded("bob", 5)], read_roster(roster)))
    assert problems == []
    canvas.dry_run(plan, "42", "555")
    dry = [line for line in capsys.readouterr().out.splitlines() if "=" in line and not line.startswith("PUT")]

    assert canvas.push(plan, "42", "555", url="https://canvas.test", token="tok", stream=io.StringIO()) == 0
    puts = [(e, f) for m, e, f in server.requests if m == "PUT"]
    assert [e for e, _ in puts] == ["courses/42/assignments/555/submissions/101",
                                    "courses/42/assignments/555/submissions/202"]
    sent = [f"{k}={v}".replace("\n", "\\n") for _, fields in puts for k, v in fields]
    assert sent == dry                                   # the dry run shows exactly what goes out
    gets = [f for m, e, f in server.requests if m == "GET" and "submissions" in e]
    assert all(("include[]", "submission_comments") in f for f in gets)

    canvas.push(plan, "42", "555", url="https://canvas.test", token="tok", stream=io.StringIO())
    assert len([1 for m, *_ in server.requests if m == "PUT"]) == 2    # nothing new to send
    assert all(len(s["comments"]) == 1 for s in server.subs.values())
