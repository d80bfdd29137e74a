"""grader/similarity: fingerprints that survive disguises, the pairs they flag, the CLI.

Fixtures in tests/fixtures/similarity/: template.py is the skeleton handed out; class/
holds ana's solution and four disguised copies of it (exact, renamed with rewritten
comments, methods and classes reordered with changed constants, turned into a notebook),
two solutions written independently from the same template, and the unmodified template.
"""
from __future__ import annotations

import csv
import io
import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURES, run_cli
from grader.rubric import RubricError, load_rubric
from grader.similarity import compare, csv_text, folder_entries
from grader.similarity.pairs import MIN_FINGERPRINTS, own_kgrams, score
from grader.similarity.tokens import units
from grader.similarity.winnow import K, W, kgram_hashes, winnow

SIM = FIXTURES / "similarity"
CLASS = SIM / "class"
TEMPLATE = SIM / "template.py"
COPIES = {"ana_original", "ben_exact_copy", "cleo_renamed", "dan_reordered", "eva_notebook"}
INDEPENDENT = {"finn_independent", "gita_independent"}


def tokens_of(source: str) -> list[str]:
    return [t for u in units(source, "x.py") for t in u.tokens]


def fingerprints_of(source: str) -> set[int]:
    out = set()
    for u in units(source, "x.py"):
        h = kgram_hashes(u.tokens)
        out |= set(h[winnow(h)].tolist())
    return out


LAYER = '''
import numpy as np

class Linear:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        # remember the input
        self.x = x
        return np.dot(x, self.W) + self.b

    def backward(self, grad, lr=0.1):
        """Gradient step."""
        dW = np.dot(self.x.T, grad)
        db = np.sum(grad, axis=0)
        dx = np.dot(grad, self.W.T)
        self.W -= lr * dW
        self.b -= lr * db
        return dx
'''


# ---------------------------------------------------------------- tokens

def test_renaming_comments_docstrings_and_layout_do_not_change_the_tokens():
    disguised = (LAYER.replace("self.x", "self.cache").replace("dW", "grad_weights")
                 .replace("grad", "g").replace("# remember the input", "# cache it!")
                 .replace('"""Gradient step."""', '"""SGD, by hand."""')
                 .replace("import numpy as np", "import numpy as jnp").replace("np.", "jnp.")
                 .replace("lr=0.1", "lr=0.5").replace("        return dx", "\n\n        return dx"))
    assert disguised != LAYER
    assert tokens_of(disguised) == tokens_of(LAYER)


def test_names_the_language_and_numpy_chose_are_kept():
    toks = tokens_of(LAYER)
    for kept in ("numpy", "dot", "sum", "axis", "T", "self", "return"):
        assert kept in toks
    for renamed in ("dW", "grad", "Linear", "forward", "x", "W"):
        assert renamed not in toks
    assert "S" not in toks  # the docstring is gone, not a string token


def test_units_are_functions_so_order_does_not_matter():
    names = [u.name for u in units(LAYER, "x.py")]
    assert names == ["<module>", "Linear", "Linear.__init__", "Linear.forward", "Linear.backward"]
    cls = LAYER[LAYER.index("class Linear"):]
    methods = cls.split("\n    def ")
    reordered = "import numpy as np\n" + "\n    def ".join([methods[0]] + methods[1:][::-1])
    assert reordered != LAYER
    assert fingerprints_of(reordered) == fingerprints_of(LAYER)


def test_a_function_header_is_not_fingerprinted():
    body = {u.name: u.tokens for u in units(LAYER, "x.py")}["Linear.backward"]
    assert "def" not in body and body[:3] == ("V", "=", "numpy")


def test_python2_and_broken_files_still_tokenize():
    py2 = "class A:\n    def f(self, x):\n        print x\n        return x * 2\n"
    assert tokens_of(py2)[:3] == ["class", "V", ":"]
    assert tokens_of("def f(:\n  x = (1, 2\n")  # the tokenizer gives up; what came before is kept


# ---------------------------------------------------------------- winnowing

def test_kgram_hashes_are_stable_and_position_free():
    toks = tokens_of(LAYER)
    h = kgram_hashes(toks)
    assert len(h) == len(toks) - K + 1 and h.dtype == np.uint64
    assert kgram_hashes(toks[5:5 + K])[0] == h[5]     # a k-gram hashes the same anywhere
    assert kgram_hashes(toks[:K - 1]).size == 0


def test_winnowing_keeps_one_fingerprint_per_window_at_least():
    rng = np.random.default_rng(1)
    h = rng.integers(0, 2**63, size=200, dtype=np.uint64)
    picks = winnow(h)
    assert all(any(i <= p < i + W for p in picks) for i in range(len(h) - W + 1))
    for i in range(len(h) - W + 1):                   # the minimum of each window is picked
        window = h[i:i + W]
        assert i + int(np.flatnonzero(window == window.min())[-1]) in set(picks.tolist())


def test_template_kgrams_and_those_touching_them_are_dropped():
    toks = tokens_of(LAYER)
    h = kgram_hashes(toks)
    template = h[10:11]                                # one template k-gram: tokens 10..10+K-1
    kept = own_kgrams(h, template)
    touching = range(10 - K + 1, 10 + K)               # every k-gram sharing a token with it
    assert all(kept[i] == np.uint64(2**64 - 1) for i in touching)
    assert all(kept[i] == h[i] for i in range(len(h)) if i not in touching)


def test_similarity_is_over_the_smaller_submission_with_a_floor():
    assert score(50, 50, 400) == 1.0                   # a copy padded with extra code
    assert score(5, 5, 5) == 5 / MIN_FINGERPRINTS       # a few lines cannot score high
    assert score(30, 60, 90) == score(30, 90, 60) == 0.5


# ---------------------------------------------------------------- the class

@pytest.fixture(scope="module")
def comparison():
    entries, _ = folder_entries(CLASS)
    return compare(entries, [TEMPLATE], 0.5, minimum=0.0)


def sim(c, a, b) -> float:
    a, b = sorted((a, b))
    return next(p.similarity for p in c.pairs if (p.a, p.b) == (a, b))


def test_every_disguised_copy_is_flagged(comparison):
    for a, b in itertools.combinations(sorted(COPIES), 2):
        assert sim(comparison, a, b) >= 0.9, (a, b)
    assert {(p.a, p.b) for p in comparison.flagged} == set(itertools.combinations(sorted(COPIES), 2))


def test_independent_solutions_and_the_template_are_not_flagged(comparison):
    ids = {d.id for d in comparison.docs}
    for a in INDEPENDENT | {"hugo_template_only"}:
        for b in ids - {a}:
            assert sim(comparison, a, b) < 0.3, (a, b)
    assert len(comparison.doc("hugo_template_only").fingerprints) == 0


def test_pairs_are_every_pair_sorted_highest_first(comparison):
    n = len(comparison.docs)
    assert n == 8 and len(comparison.pairs) == n * (n - 1) // 2
    sims = [p.similarity for p in comparison.pairs]
    assert sims == sorted(sims, reverse=True) and all(0 <= s <= 1 for s in sims)
    assert all(p.a < p.b for p in comparison.pairs)


def test_without_the_template_the_skeleton_itself_looks_shared():
    """Why the template matters (and that the test above can fail): the skeleton's
    training script is in every submission."""
    entries, _ = folder_entries(CLASS)
    c = compare(entries, [], 0.5)
    assert any("hugo_template_only" in (p.a, p.b) for p in c.flagged)


def test_independent_correct_fixtures_are_not_flagged(tmp_path):
    """Fourteen solutions written independently (tests/fixtures/correct) plus ana's, with
    ana's exact copy: only the copy is flagged."""
    folder = tmp_path / "class"
    shutil.copytree(FIXTURES / "correct", folder)
    shutil.copy(CLASS / "ana_original.py", folder)
    shutil.copy(CLASS / "ben_exact_copy.py", folder)
    entries, _ = folder_entries(folder)
    c = compare(entries, [TEMPLATE], 0.5)
    assert [(p.a, p.b) for p in c.flagged] == [("ana_original", "ben_exact_copy")]


def test_unreadable_submissions_are_named_and_skipped(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copy(CLASS / "ana_original.py", folder)
    shutil.copy(CLASS / "ben_exact_copy.py", folder)
    (folder / "empty.py").write_text("")
    (folder / "broken.ipynb").write_text("{not json")
    entries, _ = folder_entries(folder)
    c = compare(entries, [tmp_path / "missing_template.py"], 0.5)
    assert [d.id for d in c.docs] == ["ana_original", "ben_exact_copy"]
    assert len(c.flagged) == 1
    text = " ".join(c.notes)
    assert "empty.py is empty" in text and "broken.ipynb" in text and "missing_template.py" in text


def test_csv_text_format(comparison):
    rows = list(csv.reader(io.StringIO(csv_text(comparison))))
    assert rows[0] == ["a", "b", "similarity", "flagged"]
    assert rows[1][2] == "1.000" and rows[1][3] == "true"
    assert rows[-1][3] == "false" and float(rows[-1][2]) < 0.5


def test_parallel_reading_gives_the_same_pairs(monkeypatch):
    import grader.similarity.pairs as pairs
    entries, _ = folder_entries(CLASS)
    one = compare(entries, [TEMPLATE], 0.5, 0.0)
    monkeypatch.setattr(pairs, "PARALLEL_FROM", 2)
    two = compare(entries, [TEMPLATE], 0.5, 0.0, jobs=2)
    assert one.pairs == two.pairs


def test_submissions_read_while_grading_are_not_read_again(monkeypatch):
    """`grade` hands each submission to a Reader as soon as it is graded: the comparison at
    the end reads only the ones it was not given, and finds the same pairs."""
    import grader.similarity.pairs as pairs
    entries, _ = folder_entries(CLASS)
    alone = compare(entries, [TEMPLATE], 0.5, 0.0)
    reader = pairs.Reader([TEMPLATE])
    for path, sid in entries[1:]:
        reader.add(path, sid)
    read = []
    real = pairs.read_doc
    monkeypatch.setattr(pairs, "read_doc", lambda p, sid, *a, **k: read.append(sid) or real(p, sid, *a, **k))
    helped = compare(entries, [TEMPLATE], 0.5, 0.0, reader=reader)
    assert read == [entries[0][1]]
    assert helped.pairs == alone.pairs and helped.notes == alone.notes
    other = compare(entries, [], 0.5, 0.0, reader=reader)  # read with other templates: not used
    assert len(read) == 1 + len(entries)
    assert other.pairs == compare(entries, [], 0.5, 0.0).pairs


# ---------------------------------------------------------------- the command

def test_cli_flags_the_copies_and_writes_the_csv(tmp_path):
    out = tmp_path / "sim.csv"
    proc = run_cli("similarity", CLASS, "--template", TEMPLATE, "--out", out)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open(newline="", encoding="utf-8")))
    assert {(r["a"], r["b"]) for r in rows} == set(itertools.combinations(sorted(COPIES), 2))
    assert all(r["flagged"] == "true" for r in rows)
    assert "10 pairs share 50% or more" in proc.stdout
    assert "ana_original" in proc.stdout and "finn_independent" not in proc.stdout


def test_cli_min_zero_lists_every_pair(tmp_path):
    out = tmp_path / "all.csv"
    proc = run_cli("similarity", CLASS, "--template", TEMPLATE, "--min", "0", "--out", out)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open(newline="", encoding="utf-8")))
    assert len(rows) == 28
    assert {r["flagged"] for r in rows} == {"true", "false"}


@pytest.mark.parametrize("args, message", [
    (["no-such-folder"], "no-such-folder: no such folder"),
    ([str(CLASS), "--template", "nope.py"], "--template nope.py: no such file"),
    ([str(CLASS), "--threshold", "5"], "--threshold is a fraction"),
])
def test_cli_misuse_is_one_line(tmp_path, args, message):
    proc = run_cli("similarity", *args, "--out", tmp_path / "x.csv")
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


# ---------------------------------------------------------------- the rubric table

def rubric_with(tmp_path, table: str) -> Path:
    from grader.rubric import default_path
    p = tmp_path / "rubric.toml"
    p.write_text(default_path().read_text(encoding="utf-8") + "\n" + table, encoding="utf-8")
    return p


def test_rubric_similarity_table_is_read_and_templates_are_relative(tmp_path):
    shutil.copy(TEMPLATE, tmp_path / "skeleton.py")
    r = load_rubric(rubric_with(tmp_path, '[similarity]\nthreshold = 0.7\ntemplates = ["skeleton.py"]\n'))
    assert r.similarity.threshold == 0.7 and r.similarity.enabled
    assert r.similarity.templates == (tmp_path / "skeleton.py",)
    assert load_rubric().similarity.enabled and load_rubric().similarity.templates == ()


@pytest.mark.parametrize("table, words", [
    ("[similarity]\ntreshold = 0.5\n", "similarity has unknown key 'treshold'"),
    ("[similarity]\nthreshold = 2\n", "similarity.threshold is a fraction"),
    ("[similarity]\nenabled = \"yes\"\n", "similarity.enabled must be true or false"),
    ("[similarity]\ntemplates = [\"gone.py\"]\n", "similarity.templates: gone.py not found"),
    ("[similarity]\ntemplates = 3\n", "similarity.templates must be a list"),
])
def test_rubric_similarity_mistakes_name_the_key(tmp_path, table, words):
    with pytest.raises(RubricError, match=words.replace(".", r"\.").replace("'", ".")):
        load_rubric(rubric_with(tmp_path, table))


def test_similarity_settings_do_not_change_the_grading_digest(tmp_path):
    a = load_rubric(rubric_with(tmp_path, "[similarity]\nthreshold = 0.5\n"))
    b = load_rubric(rubric_with(tmp_path, "[similarity]\nthreshold = 0.8\nenabled = false\n"))
    reseeded = rubric_with(tmp_path, "[similarity]\nthreshold = 0.5\n")
    text = reseeded.read_text(encoding="utf-8")
    assert "seed = 20261124" in text
    reseeded.write_text(text.replace("seed = 20261124", "seed = 7"), encoding="utf-8")
    assert a.digest == b.digest != load_rubric(reseeded).digest   # grading settings still count


def test_a_whole_submission_fingerprints_the_same_in_any_order():
    from grader.similarity.pairs import fingerprints
    us = units(LAYER, "x.py")
    none = np.zeros(0, dtype=np.uint64)
    forward = fingerprints(us, none)
    assert len(forward) > 10
    assert np.array_equal(forward, fingerprints(us[::-1], none))
    assert fingerprints_of(LAYER) <= set(forward.tolist())   # every unit's own picks are kept
