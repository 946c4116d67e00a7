"""The lab notebook: executed in a real kernel, and its plumbing, the package ``warblr.lab.notebook``.

The notebook runs top to bottom in a kernel of this very interpreter on a
small generated warblrb10k-layout tree (``notebook_runs.py``: one execution
per implementation per test session, shared with the figure tests): with the
solutions (everything shown, an AUC table with both feature sets), with the
untouched stubs (it finishes and names what to implement) and with a mutant
from the gallery (the wrong result is visible). Nothing downloads.
"""

from __future__ import annotations

import ast
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest

from warblr.errors import DatasetError, InvalidArgumentError
from warblr.lab import notebook as nb
from warblr.lab.notebook import checks

import notebook_runs as runs   # beside this file (pytest puts this folder on sys.path): shared executed notebooks

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "exercises" / "lab.ipynb"


TREE_CLIPS, TREE_LIMIT = runs.TREE_CLIPS, runs.TREE_LIMIT

#: Code cells that show a figure when the student's function is right.
FIGURE_CELLS = ("resample", "stft", "mel-matrix", "log-mel", "frame-examples", "waveform-to-examples", "librosa",
                "embed", "postprocess", "scatter")
#: Code cell -> (function, module) it must name as "not attempted yet" with the untouched stubs.
STUB_CELLS = {
    "to-mono": ("to_mono", "resampling"), "resample": ("resample", "resampling"),
    "hann": ("periodic_hann", "logmel"), "stft": ("stft_magnitude", "logmel"), "mel-matrix": ("mel_matrix", "logmel"),
    "log-mel": ("log_mel_spectrogram", "logmel"), "frame-examples": ("frame_examples", "logmel"),
    "waveform-to-examples": ("waveform_to_examples", "logmel"), "model": ("build_vggish", "embedding"),
    "postprocess": ("postprocess", "embedding"), "pool": ("pool", "classify"),
    "features": ("waveform_to_examples", "logmel"),
}
#: Code cell -> the result it needs, skipped with the untouched stubs.
SKIPPED_CELLS = {"librosa": "log_mel", "embed": "model", "scatter": "features", "auc": "features"}


# --------------------------------------------------------------------------- running the notebook


@pytest.fixture(scope="session")
def notebook_runs(tmp_path_factory):
    """The session's executed notebooks (shared with ``test_notebook_figures.py``)."""
    pytest.importorskip("ipykernel")
    pytest.importorskip("nbclient")
    return runs.shared(tmp_path_factory)


@pytest.fixture(scope="session")
def lab_tree(notebook_runs):
    return notebook_runs.tree


def cell(notebook, cell_id):
    found = [c for c in notebook.cells if c.get("id") == cell_id]
    assert len(found) == 1, f"no cell {cell_id!r} in the notebook"
    return found[0]


def text_of(notebook, cell_id):
    """Everything a cell printed or displayed as text (streams, text/plain, text/markdown, errors)."""
    parts = []
    for output in cell(notebook, cell_id).get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])   # a printed line may arrive in several chunks: no separator
        elif output["output_type"] == "error":
            parts.append("\n" + "\n".join(output["traceback"]) + "\n")
        else:
            data = output.get("data", {})
            parts.append(f"\n{data.get('text/markdown', '')}\n{data.get('text/plain', '')}\n")
    return "".join(parts).strip("\n")


def count_output(notebook, cell_id, mime):
    return sum(mime in output.get("data", {}) for output in cell(notebook, cell_id).get("outputs", []))


def all_text(notebook):
    return "\n".join(text_of(notebook, c["id"]) for c in notebook.cells if c["cell_type"] == "code")


def auc_rows(notebook):
    """``{feature set: (your AUC, reference AUC, verdict)}`` from the AUC table's Markdown."""
    rows = {}
    for line in text_of(notebook, "auc").splitlines():
        match = re.match(r"\| ([^|]+?) \| \d+ \| \d+ \| ([0-9.]+|`[^`]*`) \| ([0-9.]+) \| ([^|]*) \|", line)
        if match:
            rows[match[1]] = (match[2], float(match[3]), match[4].strip())
    return rows


@pytest.mark.slow  # executes the notebook with the solutions in a kernel (13 s); the stubs' run is in the default pass
def test_notebook_with_the_solutions_shows_every_step(notebook_runs, lab_tree):
    notebook = notebook_runs.executed("solutions")
    everything = all_text(notebook)
    for unwanted in ("not attempted", "skipped:", "note:", "✗", "Traceback"):
        assert unwanted not in everything, f"{unwanted!r} in the solutions' run:\n{everything}"
    assert "your functions: solutions/" in text_of(notebook, "setup")
    dataset = text_of(notebook, "dataset")
    assert f"{lab_tree} (WARBLR_DATA)" in dataset and f"a stratified sample of {TREE_LIMIT}" in dataset
    assert count_output(notebook, "listen", "text/html") == 2  # a bird and a no-bird player
    for cell_id in FIGURE_CELLS:
        assert count_output(notebook, cell_id, "image/png") >= 1, f"cell {cell_id} drew no figure"
    for function in ("to_mono", "resample", "periodic_hann", "stft_magnitude", "mel_matrix", "log_mel_spectrogram",
                     "frame_examples", "waveform_to_examples", "embed", "postprocess", "pool"):
        assert f"✓ `{function}`" in everything, f"no match line for {function}"
    assert "**RANDOM weights (seed 0)" in text_of(notebook, "model")   # in bold: never passes for VGGish
    assert "librosa matched" in text_of(notebook, "librosa")
    rows = auc_rows(notebook)
    assert set(rows) == {nb.LOGMEL_FEATURES, nb.EMBEDDING_FEATURES + " (RANDOM weights)"}, rows
    for yours, reference, verdict in rows.values():
        assert 0.0 <= float(yours) <= 1.0 and float(yours) == pytest.approx(reference, abs=1e-3) and verdict == "✓"


def test_notebook_with_the_untouched_stubs_finishes_and_names_what_to_implement(notebook_runs):
    notebook = notebook_runs.executed()   # WARBLR_IMPL unset: exercises/
    assert "Traceback" not in all_text(notebook)
    assert "your functions: exercises/" in text_of(notebook, "setup")
    assert count_output(notebook, "listen", "text/html") == 2  # the dataset needs no student code
    for cell_id, (function, module) in STUB_CELLS.items():
        expected = f"not attempted yet: implement `{function}` in `exercises/{module}.py`, then re-run this cell"
        assert expected in text_of(notebook, cell_id), f"cell {cell_id}: {text_of(notebook, cell_id)!r}"
    for cell_id, needed in SKIPPED_CELLS.items():
        assert text_of(notebook, cell_id).startswith(f"skipped: needs `{needed}`"), text_of(notebook, cell_id)
    assert "`build_vggish` is not attempted yet" in text_of(notebook, "embed")


@pytest.mark.slow   # a third kernel run; the default pass checks the difference panel in test_notebook_figures.py
def test_notebook_shows_a_wrong_mel_matrix_beside_the_reference(notebook_runs):
    notebook = notebook_runs.executed("mutant:mel_edges_evenly_spaced_in_hz")
    assert "not attempted" not in all_text(notebook) and "Traceback" not in all_text(notebook)
    assert "✗ `mel_matrix`: differs from the reference" in text_of(notebook, "mel-matrix")
    assert count_output(notebook, "mel-matrix", "image/png") == 1   # yours, the reference and the difference
    assert "✗ `log_mel_spectrogram`: differs" in text_of(notebook, "log-mel")
    assert "✓ `frame_examples`" in text_of(notebook, "frame-examples")   # fed the reference log-mel: still right
    assert len(auc_rows(notebook)) == 2   # the wrong features still go through to the table, not hidden


@pytest.mark.slow
@pytest.mark.parametrize("mutant, cell_id, shown", [
    ("naive_decimation", "resample", "✗ `resample`"),
    ("power_spectrum", "stft", "✗ `stft_magnitude`"),
    ("nchw_flatten", "embed", "✗ `embed`"),
    ("pca_without_centring", "postprocess", "✗ `postprocess`"),
    ("max_pooling", "pool", "✗ `pool`"),
    ("fit_on_all_data", "auc", "✗ differs from the reference"),
])
def test_notebook_shows_other_classic_mistakes(notebook_runs, mutant, cell_id, shown):
    notebook = notebook_runs.executed(f"mutant:{mutant}")
    assert shown in text_of(notebook, cell_id)
    assert "Traceback" not in all_text(notebook)


# --------------------------------------------------------------------------- the committed notebook


def test_committed_notebook_has_no_outputs_or_execution_counts():
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert code, "the notebook has no code cells"
    for c in code:
        assert c["outputs"] == [] and c["execution_count"] is None, f"cell {c.get('id')} was committed with outputs"
    assert "widgets" not in notebook["metadata"]


def test_committed_notebook_is_what_the_generator_writes():
    pytest.importorskip("nbformat")
    builder = runs.load_module("build_lab_notebook", ROOT / "tools" / "build_lab_notebook.py")
    assert NOTEBOOK.read_text(encoding="utf-8") == builder.render(), \
        "exercises/lab.ipynb differs from tools/build_lab_notebook.py: run python tools/build_lab_notebook.py"


# --------------------------------------------------------------------------- the plumbing


@pytest.mark.parametrize("text, expected", [(None, nb.DEFAULT_LIMIT), ("", nb.DEFAULT_LIMIT), ("all", None),
                                            ("ALL", None), ("0", None), (" 40 ", 40)])
def test_parse_limit(text, expected):
    assert nb.parse_limit(text) == expected


@pytest.mark.parametrize("text", ["-3", "many", "2.5"])
def test_parse_limit_rejects_nonsense_naming_the_variable(text):
    with pytest.raises(InvalidArgumentError, match="WARBLR_LIMIT") as caught:
        nb.parse_limit(text)
    assert caught.value.parameter == "WARBLR_LIMIT"


def test_lab_root_is_found_from_the_exercises_folder():
    assert nb.find_lab_root(ROOT / "exercises") == ROOT
    assert nb.find_lab_root(ROOT) == ROOT


def test_missing_impl_folder_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidArgumentError, match=r"WARBLR_IMPL=.*nowhere: no folder") as caught:
        nb.Lab(impl=str(tmp_path / "nowhere"), root=ROOT)
    assert caught.value.parameter == "WARBLR_IMPL"


def test_from_environment_reads_the_three_variables(tmp_path, capsys):
    environ = {"WARBLR_IMPL": "solutions", "WARBLR_DATA": str(tmp_path), "WARBLR_LIMIT": "all"}
    lab = nb.Lab.from_environment(environ, root=ROOT)
    assert lab.impl.folder == ROOT / "solutions"
    lab.describe()
    assert capsys.readouterr().out.splitlines() == [
        "your functions: solutions/ (WARBLR_IMPL=solutions; 'exercises', 'solutions' or a folder)",
        f"clips: WARBLR_DATA={tmp_path}; every clip"]


def test_demo_corpus_goes_to_the_user_cache(tmp_path):
    assert nb.default_corpus_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "warblr" / "demo-corpus"
    assert nb.default_corpus_dir({}) == Path.home() / ".cache" / "warblr" / "demo-corpus"


def _package(folder, **modules):
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (folder / f"{name}.py").write_text(source)
    return folder


STUB = "def mel_matrix():\n    raise NotImplementedError('mel_matrix')\n"


def test_step_names_the_stub_and_later_cells_skip(tmp_path, capsys):
    lab = nb.Lab(impl=_package(tmp_path / "lab" / "exercises", logmel=STUB), root=tmp_path / "lab")
    with lab.step("mel_weights"):
        lab.mel_weights = lab.impl.logmel.mel_matrix()
    assert capsys.readouterr().out.strip() == (
        "not attempted yet: implement `mel_matrix` in `exercises/logmel.py`, then re-run this cell")
    with lab.step("plot"):
        lab.mel_weights
    assert capsys.readouterr().out.strip().startswith("skipped: needs `mel_weights`, but `mel_matrix` is not attempted")
    with lab.step():
        lab.plot   # the skip propagates the first cause, not "plot"
    assert "`mel_matrix` is not attempted yet" in capsys.readouterr().out
    with lab.step():
        lab.never_made
    assert "which no cell has made yet" in capsys.readouterr().out
    assert not hasattr(lab, "mel_weights")


def test_step_names_the_innermost_stub_a_finished_function_calls(tmp_path, capsys):
    source = STUB + "def log_mel():\n    return mel_matrix() + 1\n"
    lab = nb.Lab(impl=_package(tmp_path / "lab" / "exercises", logmel=source), root=tmp_path / "lab")
    with lab.step():
        lab.impl.logmel.log_mel()
    assert "implement `mel_matrix` in `exercises/logmel.py`" in capsys.readouterr().out


def test_step_reports_an_error_in_student_code_with_file_and_line(tmp_path, capsys):
    source = "def pool(x):\n    return x.mean(axis=7)\n"
    lab = nb.Lab(impl=_package(tmp_path / "lab" / "exercises", classify=source), root=tmp_path / "lab")
    with lab.step("pooled"):
        lab.pooled = lab.impl.classify.pool(np.zeros((2, 3)))
    out = capsys.readouterr().out
    assert out.startswith("✗ `pool` raised AxisError: ")
    assert "(exercises/classify.py, line 2): fix it, then re-run this cell" in out and "raise lab.last_error" in out
    assert isinstance(lab.last_error, np.exceptions.AxisError)
    with lab.step():
        lab.pooled
    assert "`pool` raised AxisError (exercises/classify.py, line 2)" in capsys.readouterr().out


def test_step_reports_a_module_that_does_not_import(tmp_path, capsys):
    lab = nb.Lab(impl=_package(tmp_path / "impl", logmel="def broken(:\n"), root=tmp_path)
    with lab.step():
        lab.impl.logmel.mel_matrix()
    assert capsys.readouterr().out.startswith("✗ could not import your logmel.py: SyntaxError")


def test_step_reports_other_failures_and_lets_interrupts_through(tmp_path, capsys):
    lab = nb.Lab(impl=_package(tmp_path / "impl"), root=tmp_path)
    with lab.step():
        raise ValueError("plumbing")
    assert capsys.readouterr().out.startswith("✗ this cell failed: ValueError: plumbing")
    with pytest.raises(KeyboardInterrupt):
        with lab.step():
            raise KeyboardInterrupt


def test_a_failing_rerun_removes_the_stale_result(tmp_path, capsys):
    lab = nb.Lab(impl=_package(tmp_path / "impl"), root=tmp_path)
    with lab.step("value"):
        lab.value = 1
    assert lab.value == 1
    with lab.step("value"):
        raise ValueError("now broken")
    assert not hasattr(lab, "value")
    with pytest.raises(AttributeError, match="cannot be set"):
        lab.impl = None


def test_edited_files_are_imported_again(tmp_path):
    folder = _package(tmp_path / "impl", logmel=STUB, resampling="def to_mono(x):\n    return 1\n")
    lab = nb.Lab(impl=folder, root=tmp_path)
    with pytest.raises(NotImplementedError):
        lab.impl.logmel.mel_matrix()
    assert lab.impl.resampling.to_mono(None) == 1
    (folder / "logmel.py").write_text("from .resampling import to_mono\n\n"
                                      "def mel_matrix():\n    return to_mono(0) + 41\n")
    os.utime(folder / "logmel.py", ns=(time.time_ns() + 10**9,) * 2)   # a later mtime, even on coarse clocks
    assert lab.impl.logmel.mel_matrix() == 42


@pytest.fixture
def offline_weights(tmp_path, monkeypatch):
    """No released weights anywhere: the torch hub folder is empty and the env vars are unset."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for name in ("WARBLR_VGGISH_WEIGHTS", "WARBLR_VGGISH_PCA"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def shown_markdown(monkeypatch):
    """What the notebook displays as Markdown, as text (IPython's display, captured)."""
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(getattr(obj, "data", obj)))
    return shown


def test_weights_load_into_the_students_network_and_random_ones_are_said_in_bold(offline_weights, shown_markdown):
    import torch

    shown = shown_markdown
    lab = nb.Lab(impl="solutions", root=ROOT)
    model = lab.load_weights(lab.impl.embedding.build_vggish())
    assert not model.training and not lab.weights.pretrained
    assert shown[-1].startswith("**RANDOM weights (seed 0)")
    reference = lab.reference_model.state_dict()
    assert all(torch.equal(value, reference[key]) for key, value in model.state_dict().items())
    lab.pca_params()
    assert shown[-1].startswith("**RANDOM PCA parameters")


@pytest.mark.parametrize("model, problem", [("a string", "returned str, not a torch.nn.Module"),
                                            (None, "returned NoneType, not a torch.nn.Module")])
def test_a_network_that_is_not_a_module_is_named(offline_weights, model, problem, capsys):
    lab = nb.Lab(impl="solutions", root=ROOT)
    with lab.step("model"):
        lab.model = lab.load_weights(model)
    assert capsys.readouterr().out.startswith(f"✗ `build_vggish`: {problem}; fix it in `solutions/embedding.py`")


def test_a_network_with_other_layers_is_named(offline_weights, capsys):
    import torch

    lab = nb.Lab(impl="solutions", root=ROOT)
    with lab.step("model"):
        lab.model = lab.load_weights(torch.nn.Sequential(torch.nn.Linear(2, 2)))
    out = capsys.readouterr().out
    assert out.startswith("✗ `build_vggish`: its layers do not match torchvggish's VGG") and "Missing key" in out
    with lab.step():
        lab.model
    assert "`build_vggish` returned something unusable (`solutions/embedding.py`)" in capsys.readouterr().out


def test_load_dataset_uses_a_stratified_sample_of_warblr_data(lab_tree, capsys):
    lab = nb.Lab(impl="solutions", data=lab_tree, limit=8, root=ROOT)
    dataset = lab.load_dataset()
    out = capsys.readouterr().out
    assert len(dataset.items) == 8 and set(dataset.labels.tolist()) == {0, 1}
    assert f"dataset: {lab_tree} (WARBLR_DATA)" in out and f"{TREE_CLIPS} usable clips" in out
    assert "a stratified sample of 8" in out


def test_load_dataset_rejects_a_missing_folder(tmp_path):
    lab = nb.Lab(impl="solutions", data=tmp_path / "absent", root=ROOT)
    with pytest.raises(DatasetError, match="WARBLR_DATA=.*absent: not a folder"):
        lab.load_dataset()


def test_load_dataset_generates_the_demo_corpus_once(tmp_path, capsys):
    lab = nb.Lab(impl="solutions", root=ROOT, corpus_dir=tmp_path / "demo", corpus_size=4)
    assert len(lab.load_dataset().items) == 4
    assert "the embedded demo corpus" in capsys.readouterr().out.replace("\n", " ")
    capsys.readouterr()
    lab.load_dataset()
    assert "generated earlier" in capsys.readouterr().out


@pytest.mark.parametrize("yours, verdict", [
    ([1.0, 2.0], "✓ `f`: matches the reference"),
    ([1.0, 2.5], "✗ `f`: differs from the reference (shape (2,), max difference 0.5 at index (1,))"),
    ([1.0, 2.0, 3.0], "✗ `f`: shape (3,), the reference has shape (2,)"),
    ([1.0, np.nan], "✗ `f`: your result holds NaN or inf"),
    (None, "✗ `f`: returned NoneType, not an array of real numbers"),
    (np.array([1 + 1j, 2]), "✗ `f`: returned complex128 ndarray, not an array of real numbers"),
])
def test_compare_states_the_verdict(yours, verdict, capsys):
    assert nb.compare("f", yours, [1.0, 2.0]) == verdict.startswith("✓")
    assert capsys.readouterr().out.startswith(verdict)


def test_cross_validation_folds_fit_a_small_sample():
    assert checks.cv_folds(np.array([1] * 12 + [0] * 4)) == 4
    assert checks.cv_folds(np.array([1] * 300 + [0] * 100)) == checks.FOLDS
    with pytest.raises(DatasetError, match="at least 2 items of each class.*raise WARBLR_LIMIT"):
        checks.cv_folds(np.array([1, 1, 1, 0]))


def test_wrong_shapes_from_student_functions_are_named():
    with pytest.raises(nb.WrongResultError, match=r"returned shape \[3, 64\], expected \[N, 96, 64\]") as caught:
        checks.checked(np.zeros((3, 64)), "waveform_to_examples", "logmel", (None, 96, 64))
    assert (caught.value.function, caught.value.module) == ("waveform_to_examples", "logmel")


def test_a_transposed_mel_matrix_is_named_and_the_reference_still_drawn(capsys):
    from warblr.features import mel_matrix

    figure = nb.show_mel_matrix(mel_matrix().T, mel_matrix())
    assert "✗ `mel_matrix`: shape (64, 257), the reference has shape (257, 64)" in capsys.readouterr().out
    yours, reference = figure.axes[:2]
    assert "cannot be drawn like the reference" in yours.texts[0].get_text() and not yours.axison
    assert len(reference.lines) == 64


def test_auc_table_sets_yours_beside_warblr_analyse_at_the_best_pca_size_of_its_grid(shown_markdown):
    from types import SimpleNamespace

    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from warblr.lab.analyse import PCA_SIZES

    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 15)
    values = rng.standard_normal((30, 8)) + labels[:, None] * np.linspace(0.2, 1.5, 8)
    features = nb.Features(sets={nb.LOGMEL_FEATURES: values}, labels=labels, item_ids=[f"c{k}" for k in range(30)])
    honest = nb.Lab(impl="solutions", root=ROOT).impl.classify
    [row] = nb.auc_table(features, honest)
    # Independently: scikit-learn's own cross-validation of the same pipeline, at every size of analyse's grid
    # that fits 8 features and 24-clip training folds; the table must have taken the best one.
    splits = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    independent = {size: float(np.mean(cross_val_score(
        make_pipeline(StandardScaler(), PCA(n_components=size, random_state=0),
                      LogisticRegression(max_iter=5000, random_state=0)),
        values, labels, cv=splits, scoring="roc_auc"))) for size in PCA_SIZES if size <= 8}
    assert row["folds"] == 5 and row["pca"] == max(independent, key=lambda size: (independent[size], -size))
    assert row["reference"] == pytest.approx(independent[row["pca"]], abs=1e-9)
    assert row["matches"] and row["yours"] == pytest.approx(row["reference"])
    assert "`warblr analyse`" in shown_markdown[-1] and "| ✓ |" in shown_markdown[-1]
    leaky = SimpleNamespace(cross_validated_auc=lambda *args, **kwargs: 0.999)
    [row] = nb.auc_table(features, leaky)
    assert not row["matches"] and "| 0.999 |" in shown_markdown[-1] and "✗ differs from the reference" in shown_markdown[-1]


def _imports(source, module):
    """``(line, absolute module name)`` of every import in ``source``, the code of module ``module``.

    Relative imports are resolved against ``module``'s package; strings (``importlib.import_module("...")``)
    count as imports.
    """
    package = module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            base = ".".join(base + (node.module.split(".") if node.module else []))
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def _importers(package, *, of):
    """``["warblr/x/y.py:12", ...]``: where a module under ``package`` imports anything under ``of``."""
    found = []
    for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found += sorted({f"{path.relative_to(ROOT)}:{line}" for line, name in _imports(path.read_text(), module)
                         if name == of or name.startswith(of + ".")})
    return found


def test_the_import_resolver_sees_every_form():
    module = "warblr.grading.batch"
    for source in ("from ..lab import notebook\n", "from .. import lab\n", "import warblr.lab.analyse\n",
                   "importlib.import_module('warblr.lab.store')\n"):
        assert {name for _, name in _imports(source, module)} & {"warblr.lab", "warblr.lab.notebook",
                                                                 "warblr.lab.analyse", "warblr.lab.store"}, source
    assert ("1", "warblr.grading.impl") in {(str(line), name) for line, name in
                                            _imports("from ...grading.impl import x\n", "warblr.lab.notebook.live")}
    assert not [name for _, name in _imports("from . import labels\n", module) if name.startswith("warblr.lab")]


def test_grading_never_imports_the_lab():
    """The lab uses the grader's loader; the grader must not depend on the lab (issue 20: one direction)."""
    offenders = _importers("warblr.grading", of="warblr.lab")
    assert not offenders, f"warblr.grading imports warblr.lab: {offenders}"


def test_the_lab_reaches_the_grader_through_one_module():
    assert {place.split(":")[0] for place in _importers("warblr.lab", of="warblr.grading")} == {
        "warblr/lab/notebook/live.py"}
