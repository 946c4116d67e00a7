"""The similarity report: a planted copy ranks above every honest pair; the HTML opens in a real browser.

Honest submissions are the project's two independent implementations of the
lab (``solutions/`` and ``tests/grading/independent/``) and the untouched
stubs; the planted copy is the independent one with every local name
renamed and the functions of each module in reverse order. No grading runs.
"""

import ast
import base64
import io
import shutil
import tokenize
from pathlib import Path

import pytest

from warblr.grading.impl import EXERCISE_MODULES
from warblr.grading.similarity import (MAX_PAIRS_SHOWN, boilerplate_of, fingerprint_files, known_sources, normalised_tokens, rank_pairs,
                                       rank_sources, winnow,
                                       write_similarity_report)

ROOT = Path(__file__).resolve().parents[2]
INDEPENDENT = ROOT / "tests" / "grading" / "independent"
pytestmark = pytest.mark.skipif(not (ROOT / "solutions" / "logmel.py").is_file() or not INDEPENDENT.is_dir(),
                                reason="needs solutions/ and tests/grading/independent/")


def renamed_and_reordered(source):
    """``source`` with every argument and assigned name renamed and its top-level functions reversed."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    tokens, previous = [], None
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        text = token.string
        if token.type == tokenize.NAME and text in names and previous != ".":
            text = "copied_" + text[::-1]
        tokens.append((token.type, text))
        previous = token.string
    renamed = tokenize.untokenize(tokens)
    lines = renamed.splitlines(keepends=True)
    body = ast.parse(renamed).body

    def text(node):
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        return "".join(lines[first - 1:node.end_lineno]) + "\n"

    functions = [node for node in body if isinstance(node, ast.FunctionDef)]
    return "".join(text(node) for node in body if node not in functions) + "".join(map(text, functions[::-1]))


def package(folder):
    """The four exercise modules of ``folder`` as a submission's files."""
    return {f"{name}.py": (Path(folder) / f"{name}.py").read_bytes() for name in EXERCISE_MODULES}


@pytest.fixture(scope="module")
def course():
    submissions = {"honest_a": package(ROOT / "solutions"), "honest_b": package(INDEPENDENT),
                   "untouched": package(ROOT / "exercises")}
    submissions["planted"] = {name: renamed_and_reordered(data.decode()).encode()
                              for name, data in submissions["honest_b"].items()}
    return submissions


def test_renaming_and_reordering_leave_the_fingerprints(course):
    original, planted = course["honest_b"]["logmel.py"].decode(), course["planted"]["logmel.py"].decode()
    assert "copied_" in planted and planted != original
    compile(planted, "planted.py", "exec")
    assert [t for t, _, _ in normalised_tokens("a = b.c(1, 'x')")] == ["V", "=", "V", ".", "c", "(", "N", ",", "S",
                                                                       ")"]
    before, after = set(winnow(normalised_tokens(original))), set(winnow(normalised_tokens(planted)))
    assert len(before & after) > 0.8 * len(before)  # only the seams between reordered functions differ


def test_fingerprints_read_the_code_python_runs_whatever_the_coding_line(course):
    """Under ``# coding: utf-7`` a whole module can hide in one comment line; the fingerprints see the module."""
    plain = course["honest_a"]["logmel.py"]
    block = base64.b64encode(("\n" + plain.decode()).encode("utf-16-be")).rstrip(b"=")  # UTF-7's base64 form
    hidden = b"# coding: utf-7\n# checksum: +" + block + b"-\n"
    assert b"\n" not in hidden.split(b"\n", 1)[1].rstrip(b"\n")  # an editor shows a coding line and one comment
    prints = set(fingerprint_files("plain", {"logmel.py": plain}).prints)
    assert set(fingerprint_files("hidden", {"logmel.py": hidden}).prints) >= prints and len(prints) > 50


def test_the_planted_copy_ranks_above_every_honest_pair(course):
    boilerplate = boilerplate_of(ROOT)
    documents = [fingerprint_files(key, files, boilerplate=boilerplate) for key, files in sorted(course.items())]
    pairs = rank_pairs(documents)
    top = pairs[0]
    assert {top.a.key, top.b.key} == {"honest_b", "planted"}
    honest = [pair for pair in pairs[1:] if "planted" not in (pair.a.key, pair.b.key)]
    assert top.score > 0.8 and all(pair.score < 0.5 for pair in honest), [(p.a.key, p.b.key, p.score) for p in pairs]
    untouched = next(document for document in documents if document.key == "untouched")
    assert len(untouched.prints) < 0.05 * len(fingerprint_files("stubs", course["untouched"]).prints)


@pytest.fixture(scope="module")
def class_copying_the_engine(course):
    """12 submissions: 8 paste warblr's log-mel engine (renamed) into logmel.py, one hands in the lab's answers
    renamed, the rest are the independent implementation and untouched stubs."""
    engine = renamed_and_reordered((ROOT / "warblr" / "features.py").read_text())
    stubs = course["untouched"]
    submissions = {f"copier_{number}": dict(stubs, **{"logmel.py": stubs["logmel.py"] + engine.encode()})
                   for number in range(8)}
    submissions["leaked_answers"] = {name: renamed_and_reordered(data.decode()).encode()
                                     for name, data in package(ROOT / "solutions").items()}
    submissions["honest"] = course["honest_b"]
    submissions["untouched_1"] = submissions["untouched_2"] = stubs
    return submissions


ENGINE = "warblr (engine, lab and grader)"


def test_code_from_known_sources_is_flagged_even_when_most_of_the_class_copied_it(class_copying_the_engine,
                                                                                   tmp_path):
    boilerplate = boilerplate_of(ROOT)
    sources = [fingerprint_files(label, files, boilerplate=boilerplate) for label, files in known_sources(ROOT).items()]
    assert {"the lab's solutions/", ENGINE, "torchvggish", "resampy", "librosa"} <= {s.key for s in sources}
    documents = [fingerprint_files(key, files, boilerplate=boilerplate)
                 for key, files in sorted(class_copying_the_engine.items())]
    found = rank_sources(documents, sources)
    best = {}
    for pair in found:  # sorted by share: the first pair of a submission is its largest
        best.setdefault(pair.a.key, (pair.b.key, pair.share_a))
    for number in range(8):
        source, share = best[f"copier_{number}"]
        assert source == ENGINE and share > 0.6, best
    assert best["leaked_answers"][0] == "the lab's solutions/" and best["leaked_answers"][1] > 0.8, best
    assert best["honest"][1] < 0.4, best  # the independent implementation shares common idioms only
    # Between submissions the copy is common code (8 of 12): the pair ranking alone would not show it.
    pairs = rank_pairs(documents)
    assert not [pair for pair in pairs if pair.a.key.startswith("copier") and pair.b.key.startswith("copier")]
    written = write_similarity_report(class_copying_the_engine, tmp_path, lab=ROOT)
    rows = written["similarity_sources"].read_text().splitlines()
    assert rows[0] == "submission,known_source,share_of_submission_in_source,shared_fingerprints"
    assert rows[1].startswith(("copier_", "leaked_answers")), rows[:3]
    page = written["similarity_report"].read_text()
    assert "Code found in known sources" in page and page.count("<tr class='source'>") == min(len(rows) - 1, MAX_PAIRS_SHOWN)


def chromium_options(profile):
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return options


@pytest.mark.slow  # a headless browser; the fingerprints and ranking are tested in the default pass
def test_the_html_report_shows_the_matched_passages_side_by_side_in_a_browser(course, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    driver_path = shutil.which("chromedriver")
    if driver_path is None or shutil.which("chromium") is None:
        pytest.fail("chromium and chromedriver are needed: apt-get install -y chromium chromium-driver")
    written = write_similarity_report(course, tmp_path, lab=ROOT)
    assert written["similarity_pairs"].read_text().splitlines()[1].startswith("honest_b,planted,")
    driver = webdriver.Chrome(service=Service(driver_path), options=chromium_options(tmp_path / "profile"))
    try:
        driver.get(written["similarity_report"].as_uri())
        first_rank = driver.find_elements(By.CSS_SELECTOR, "tr.rank")[0].text.split()
        assert first_rank[:3] == ["1", "honest_b", "planted"]
        section = driver.find_element(By.ID, "pair1")
        passages = section.find_elements(By.CSS_SELECTOR, "div.passage")
        assert len(passages) >= 4
        left = "\n".join(p.find_elements(By.CSS_SELECTOR, "pre.match")[0].text for p in passages)
        right = "\n".join(p.find_elements(By.CSS_SELECTOR, "pre.match")[1].text for p in passages)
        assert "copied_" not in left and "copied_" in right  # the original beside its renamed copy
        assert "np.fft.rfft" in left.replace(" ", "") and "np.fft.rfft" in right.replace(" ", "")
        box_a, box_b = (side.rect for side in passages[0].find_elements(By.CSS_SELECTOR, "div.side"))
        assert box_b["x"] >= box_a["x"] + box_a["width"] and abs(box_a["y"] - box_b["y"]) < 1  # side by side
    finally:
        driver.quit()
