"""Plain CSV and the export CLI as a whole."""
import csv
import io
import zipfile

from builders import class_results, write_out


def read(path):
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def test_one_row_per_student_one_column_per_check(tmp_path, cli):
    out = write_out(tmp_path / "out", class_results())
    assert cli("export", out, "--format", "csv") == 0
    rows = read(out / "export" / "grades.csv")
    head = rows[0]
    assert head[:5] == ["student", "submission", "score", "max_score", "error"]
    assert {"linear.forward", "linear.backward", "train.xor", "gradcheck.mlp"} <= set(head[5:])
    assert len(rows) == 1 + len(class_results())
    by_id = {r[1]: dict(zip(head, r)) for r in rows[1:]}
    alice = by_id["alice_classic"]
    assert float(alice["score"]) == 16 and float(alice["linear.forward"]) == 3
    assert by_id["carol_syntax"]["score"] == "" and "SyntaxError" in by_id["carol_syntax"]["error"]
    assert by_id["mallory"]["relu.forward"] == ""    # a check it never ran stays blank
    for r in rows[1:]:
        for cell in r[2:4] + r[5:]:
            assert cell == "" or float(cell) >= 0     # numbers, never escaped


def test_free_text_is_neutralised_in_plain_csv(tmp_path, cli):
    out = write_out(tmp_path / "out", class_results())
    roster = tmp_path / "r.csv"
    roster.write_text('name,submission\n"=HYPERLINK(""http://evil"")",mallory\n@SUM,alice_classic\n')
    assert cli("export", out, "--format", "csv", "--roster", roster, "--out", tmp_path / "g.csv") == 1
    rows = read(tmp_path / "g.csv")
    assert rows[1][0] == "'=HYPERLINK(\"http://evil\")" and rows[2][0] == "'@SUM"
    assert float(rows[1][2]) == 0 and float(rows[2][2]) == 16


def test_export_with_no_results_says_so(tmp_path, cli, capsys):
    (tmp_path / "empty").mkdir()
    assert cli("export", tmp_path / "empty", "--format", "csv") == 2
    assert f"No result.json found under {tmp_path / 'empty'}" in capsys.readouterr().err


def test_bad_roster_stops_the_export(tmp_path, cli, capsys):
    out = write_out(tmp_path / "out", class_results())
    roster = tmp_path / "r.csv"
    roster.write_text("colour,size\nred,2\n")
    assert cli("export", out, "--format", "canvas", "--roster", roster) == 2
    assert "Nothing exported" in capsys.readouterr().err


def test_gradescope_zip_subcommand(tmp_path, cli):
    wheel = tmp_path / "nngrader-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"x")
    assert cli("gradescope-zip", "default", "-o", tmp_path / "ag.zip", "--wheel", wheel) == 0
    assert {"setup.sh", "run_autograder"} <= set(zipfile.ZipFile(tmp_path / "ag.zip").namelist())
    assert cli("gradescope-zip", "no-such-rubric", "-o", tmp_path / "x.zip", "--wheel", wheel) == 2
