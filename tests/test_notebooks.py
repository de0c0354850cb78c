"""The notebooks are tested documentation: this checks they are all covered by ``make test`` and fit the rules.

``make test`` executes every notebook with nbval (``pytest tests notebooks --nbval --nbval-sanitize-with
notebooks/sanitize.cfg``); the tests here check what nbval does not: that the command really collects every
notebook in ``notebooks/`` (a notebook in a subfolder or excluded by configuration fails), that each notebook opens
with its learning goals and has an exercise with a checked solution, that committed notebooks are executed with
clean metadata (fixed kernelspec, no timestamps), that outputs carry no absolute paths or keys, that nbval markers
are spelled so nbval sees them, and that the README lists every notebook.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
NBVAL_MARKERS = {"NBVAL_IGNORE_OUTPUT", "NBVAL_CHECK_OUTPUT", "NBVAL_RAISES_EXCEPTION", "NBVAL_SKIP"}


def all_notebooks() -> list[Path]:
    """Every notebook under notebooks/, at any depth (Jupyter's checkpoint copies excepted)."""
    return sorted(p for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


NOTEBOOK_PATHS = all_notebooks()


def nb_id(path: Path) -> str:
    return str(path.relative_to(NOTEBOOKS))


@pytest.fixture(scope="module", params=NOTEBOOK_PATHS, ids=[nb_id(p) for p in NOTEBOOK_PATHS])
def notebook(request) -> tuple[Path, nbformat.NotebookNode]:
    path = request.param
    return path, nbformat.read(path, as_version=4)


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


# ------------------------------------------------------------------------------------------------ coverage
def make_test_command() -> list[str]:
    """The pytest arguments of the Makefile's ``test`` recipe (what ``make test`` really runs)."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = lines.index(next(line for line in lines if line.startswith("test:")))
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        words = shlex.split(line.strip())
        if "pytest" in words:
            return words[words.index("pytest") + 1:]
    raise AssertionError("the Makefile's test target runs no pytest command")


def test_there_are_notebooks():
    assert len(NOTEBOOK_PATHS) >= 6, [nb_id(p) for p in NOTEBOOK_PATHS]


def test_make_test_runs_nbval_with_the_sanitize_file():
    args = make_test_command()
    assert "notebooks" in args, f"make test does not name notebooks/: {args}"
    assert "--nbval" in args, args
    i = args.index("--nbval-sanitize-with")
    assert args[i + 1] == "notebooks/sanitize.cfg"


def test_make_test_collects_every_notebook():
    # Run the collection of the Makefile's command on its notebooks argument only (the tests/ argument would
    # import every test module), keeping every option, so configuration that drops a notebook shows up here.
    args = [a for a in make_test_command() if a != "tests"]
    proc = subprocess.run([sys.executable, "-m", "pytest", *args, "--collect-only", "-q"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    collected = {line.split("::", 1)[0] for line in proc.stdout.splitlines() if ".ipynb::" in line}
    expected = {str(p.relative_to(ROOT)) for p in NOTEBOOK_PATHS}
    missing = expected - collected
    assert not missing, f"make test does not run these notebooks: {sorted(missing)}\n{proc.stdout[-2000:]}"


def test_notebooks_sit_directly_in_the_notebooks_folder():
    nested = [nb_id(p) for p in NOTEBOOK_PATHS if p.parent != NOTEBOOKS]
    assert not nested, f"move these into notebooks/ (the workshop path and the README list only that): {nested}"


def test_sanitize_file_parses():
    from nbval.plugin import get_sanitize_patterns

    patterns = dict(get_sanitize_patterns((NOTEBOOKS / "sanitize.cfg").read_text()))
    assert len(patterns) >= 3
    for regex in patterns:
        re.compile(regex)
    sample = '127.0.0.1:40965 {"model_id": "0a1b2c3d4e5f"} 2026-11-24T06:27:46+00:00'
    out = sample
    for regex, replace in patterns.items():
        out = re.sub(regex, replace, out)
    assert "40965" not in out and "0a1b2c3d4e5f" not in out and "06:27:46" not in out, out


def test_readme_lists_every_notebook_once():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Notebooks", 1)[1].split("\n## ", 1)[0]
    assert "<!-- notebooks list -->" not in section
    for path in NOTEBOOK_PATHS:
        lines = [line for line in section.splitlines() if path.name in line]
        assert len(lines) == 1, f"README ## Notebooks should list {path.name} on exactly one line"


# ------------------------------------------------------------------------------------------------ structure
def test_starts_with_learning_goals(notebook):
    path, nb = notebook
    first = nb.cells[0]
    assert first.cell_type == "markdown", f"{path.name}: the first cell must be markdown"
    assert first.source.lstrip().startswith("# "), f"{path.name}: the first cell opens with the title"
    assert re.search(r"learning goals", first.source, re.I), f"{path.name}: the first cell states learning goals"
    assert len(re.findall(r"^\s*(\d+\.|[-*]) ", first.source, re.M)) >= 2, f"{path.name}: list the goals"


def test_has_an_exercise_with_a_checked_solution(notebook):
    path, nb = notebook
    exercise_at = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and
                   re.search(r"^#+ *Exercise", c.source, re.M)]
    assert exercise_at, f"{path.name}: no '### Exercise' markdown cell"
    solutions = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and
                 c.source.lstrip().startswith("# Solution")]
    assert solutions, f"{path.name}: no code cell starting with '# Solution'"
    for i in exercise_at:
        after = [j for j in solutions if j > i]
        assert after, f"{path.name}: exercise in cell {i} has no solution cell after it"
        cell = nb.cells[after[0]]
        assert re.search(r"^\s*assert ", cell.source, re.M), f"{path.name}: solution cell {after[0]} asserts nothing"
        assert "NBVAL_SKIP" not in cell.source, f"{path.name}: solution cell {after[0]} must run under nbval"


def test_chooses_its_target_in_one_cell(notebook):
    path, nb = notebook
    chooser = [c for c in code_cells(nb) if "Target.from_env()" in c.source]
    assert len(chooser) == 1, f"{path.name}: exactly one cell should choose the target with Target.from_env()"


def test_nbval_markers_are_spelled_for_nbval(notebook):
    # nbval only honours a comment line that is exactly the marker; anything else on the line disables it.
    path, nb = notebook
    for cell in code_cells(nb):
        for line in cell.source.splitlines():
            if "NBVAL_" in line:
                assert line.strip().lstrip("#").strip() in NBVAL_MARKERS, f"{path.name}: bad marker line {line!r}"


# ------------------------------------------------------------------------------------------------ committed state
def test_metadata_is_clean(notebook):
    path, nb = notebook
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec") == KERNELSPEC, f"{path.name}: kernelspec {nb.metadata.get('kernelspec')}"
    assert set(nb.metadata) <= {"kernelspec", "language_info"}, f"{path.name}: extra metadata {set(nb.metadata)}"
    assert set(nb.metadata.get("language_info", {})) <= {"name"}, f"{path.name}: language_info carries versions"
    for i, cell in enumerate(nb.cells):
        assert set(cell.metadata) <= {"tags"}, f"{path.name} cell {i}: metadata {dict(cell.metadata)}"


def test_committed_executed_in_order_without_errors(notebook):
    path, nb = notebook
    counts = [c.execution_count for c in code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: run scripts/run-notebooks ({counts})"
    for i, cell in enumerate(code_cells(nb), 1):
        kinds = {o.output_type for o in cell.outputs}
        assert "error" not in kinds, f"{path.name}: code cell {i} was committed with an error"
        for out in cell.outputs:
            if out.output_type == "stream":
                assert out.name != "stderr", f"{path.name}: code cell {i} wrote to stderr: {out.text[:200]!r}"


_DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\s]+")
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])(/(home|root|tmp|work|Users|var|private|opt|mnt)/|[A-Za-z]:\\\\?Users)")
_SECRET = re.compile(r"\b(sk-[A-Za-z0-9_-]{16,}|Bearer\s+[A-Za-z0-9._-]{16,}|api-key[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9]{20,})")
_SKIPPED_MIME = ("image/png", "image/jpeg", "application/vnd.jupyter.widget-view+json")


def output_texts(nb):
    for i, cell in enumerate(code_cells(nb), 1):
        for out in cell.outputs:
            if out.output_type == "stream":
                yield i, out.text
            elif out.output_type in ("display_data", "execute_result"):
                for mime, value in out.data.items():
                    if mime not in _SKIPPED_MIME:
                        yield i, value if isinstance(value, str) else json.dumps(value)


def test_outputs_have_no_absolute_paths_or_keys(notebook):
    path, nb = notebook
    for i, text in output_texts(nb):
        text = _DATA_URI.sub("data:…", text)
        found = _ABSOLUTE_PATH.search(text)
        assert not found, f"{path.name}: code cell {i} output shows an absolute path: …{text[max(0, found.start() - 40):found.end() + 40]}…"
        secret = _SECRET.search(text)
        assert not secret, f"{path.name}: code cell {i} output shows something like a key"


# ------------------------------------------------------------------------------------------------ run-notebooks
def load_run_notebooks():
    loader = importlib.machinery.SourceFileLoader("run_notebooks", str(ROOT / "scripts" / "run-notebooks"))
    spec = importlib.util.spec_from_loader("run_notebooks", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_run_notebooks_cleans_metadata():
    run_notebooks = load_run_notebooks()
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "venv-personal", "display_name": "me"},
                   "language_info": {"name": "python", "version": "3.11.7"},
                   "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}}}
    md = nbformat.v4.new_markdown_cell("# t", metadata={"collapsed": True})
    a = nbformat.v4.new_code_cell("1", metadata={"execution": {"iopub.execute_input": "2026-01-01T00:00:00Z"},
                                                 "tags": ["keep"], "scrolled": True}, execution_count=7)
    a.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "1"}, execution_count=7,
                                        metadata={"isolated": True})]
    b = nbformat.v4.new_code_cell("", execution_count=None)
    c = nbformat.v4.new_code_cell("print(2)", execution_count=9)
    nb.cells = [md, a, b, c]
    run_notebooks.clean(nb)
    assert nb.metadata == {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    assert md.metadata == {} and a.metadata == {"tags": ["keep"]} and b.metadata == {}
    assert (a.execution_count, b.execution_count, c.execution_count) == (1, None, 2)
    assert a.outputs[0]["execution_count"] == 1 and a.outputs[0]["metadata"] == {}
    nbformat.validate(nb)
