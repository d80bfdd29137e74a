"""Student page and dashboard without a browser: escaping, odd details, charts."""
import math
import re

from hypothesis import given, settings, strategies as st

from builders import alice, broken, class_results, mallory, training
from grader.report import evidence, svg
from grader.report.html import pass_rates, write_dashboard, write_student_html
from grader.result import CheckResult, Result


def render(tmp_path, r):
    write_student_html(r, tmp_path / "f.html")
    return (tmp_path / "f.html").read_text()


def test_markup_from_a_submission_is_escaped(tmp_path):
    page = render(tmp_path, mallory())
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>line 3</b>" not in page
    assert "script-src" not in page.split("Content-Security-Policy", 1)[1].split(">", 1)[0]  # no script allowed
    assert 'id="not-isolated"' in page and "&#39;plain&#39; tier" in page


def test_header_says_what_was_graded(tmp_path):
    page = render(tmp_path, alice())
    for text in ("alice_classic.py", "LinearTransform", "SigmoidCrossEntropy", "lines 120-168",
                 "module-level training script", "uid-pool", "netns"):
        assert text in page
    assert 'id="not-isolated"' not in page
    split = render(tmp_path, mallory())
    assert "LinearA + LinearB (split class)" in split and "not found" in split


def test_evidence_suspected_first_then_tables(tmp_path):
    page = render(tmp_path, alice())
    section = page.split('id="check-linear.backward"')[1].split("</section>")[0]
    assert section.index("Suspected mistake") < section.index("Tip 8e") < section.index("Expected vs got")
    assert "dW[2, 1]" in section and "0.12" in section and "0.24" in section
    grad = page.split('id="check-gradcheck.mlp"')[1].split("</section>")[0]
    assert re.search(r"b1</td>.*?0\.5</td>.*?off", grad, re.S)
    assert "yours ≈ 2 × numerical" in grad


def test_learning_curve_shows_chance_line_and_spikes():
    block = next(b for b in evidence.blocks(training(spike=True).details) if b.kind == "training")
    loss = str(block.charts[0])
    assert 'class="ref"' in loss and "chance (ln 2)" in loss
    assert 'class="off"' in loss                         # the spike is marked at the top edge
    plateau = next(b for b in evidence.blocks(training(plateau=True).details) if b.kind == "training")
    assert plateau.note == "plateau at chance"
    nan_curve = svg.line_chart([{"label": "s", "loss": [0.7, float("nan"), "inf", 0.1]}], "loss",
                               title="t", ref=math.log(2), cap=3)
    assert str(nan_curve).count('class="off"') == 2


def test_long_runs_are_thinned_but_keep_the_spike():
    loss = [0.5] * 5000
    loss[3210] = 2.0
    chart = str(svg.line_chart([{"loss": loss}], "loss", title="t", y_max=2.5))
    points = re.search(r'points="([^"]+)"', chart)[1].split()
    assert len(points) <= svg.MAX_POINTS + 2
    assert min(float(p.split(",")[1]) for p in points) == 46.4   # y of 2.0 on a 0..2.5 axis: the spike survived


odd = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                   lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                   max_leaves=12)
keys = st.sampled_from(["quantity", "expected_shape", "got_shape", "mismatched", "total", "worst",
                        "max_abs_diff", "threshold", "suspected", "rel_error", "ratio", "curves",
                        "chance_loss", "verdict", "other"])


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(keys, odd, max_size=8))
def test_any_details_render_without_crashing(tmp_path_factory, details):
    r = Result("odd", (CheckResult("linear.forward", "fail", 0, 1, "m", details=details),))
    page = render(tmp_path_factory.mktemp("odd"), r)
    assert 'id="check-linear.forward"' in page


def test_dashboard_content(tmp_path):
    results = class_results()
    for r in results:
        write_student_html(r, tmp_path / r.id / "feedback.html")
    page = write_dashboard(results, tmp_path, 150.0).read_text()
    assert page.count('<rect class="bar"') >= 1 and "2 min 30 s" in page
    assert 'href="alice_classic/feedback.html"' in page and "carol_syntax" in page.split('id="errored"')[1]
    rates = pass_rates(results)
    assert [r["pct"] for r in rates] == sorted(r["pct"] for r in rates)
    assert "<script>alert" not in page and "nonce-" in page
    nonce = re.search(r"nonce-([^']+)'", page)[1]
    assert f'<script nonce="{nonce}">' in page
    empty = write_dashboard([broken()], tmp_path / "e", None).read_text()
    assert "No scores to draw" in empty and "not recorded" in empty


def test_a_tier_without_its_filter_says_what_was_not_blocked(tmp_path):
    r = alice()
    warning = ("This submission ran in the 'container' tier without its seccomp filter: "
               "its network connections and new sessions were not blocked.")
    meta = {**r.meta, "sandbox": {"tier": "container", "isolated": False, "warning": warning,
                                  "protections": ["own-uid", "no seccomp: network NOT blocked"]}}
    page = render(tmp_path, Result(id=r.id, checks=r.checks, error=r.error, meta=meta))
    block = page.split('id="not-isolated"')[1].split("</div>")[0]
    assert "network connections and new sessions were not blocked" in block
    assert "no separate user" not in block  # the plain tier's sentence would be untrue here
