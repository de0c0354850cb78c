"""``rtlab workshop build``: the student set keeps the lesson, hides the solutions, and runs with blank exercises.

The build is checked statically (tags, placement of check cells, no solution text left), then every student
notebook runs top to bottom in a fresh kernel against the embedded emulator with its exercises left blank: each
check cell must report "not yet" and nothing may raise. To know the checks also recognise a right answer on the
notebook's real data, the test run (not the student file) adds one cell after each check cell that runs the
teacher's solution and the same check, which must then report "pass".
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from rtlab import teach
from rtlab.workshop import CHECK_TAG, EXERCISE_TAG, SOLUTION_TAG, WorkshopError, build, student_notebook

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build(tmp_path_factory.mktemp("workshop"))


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _tagged(nb, tag: str) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if tag in c.get("metadata", {}).get("tags", [])]


def _solution_lines(cell) -> list[str]:
    """The lines of a solution that give it away: not comments, imports, short fragments, or a bare list of the
    answer variables (``event_type, noise_key``: the check cell names those too)."""
    return [ln.strip() for ln in cell.source.splitlines()
            if len(ln.strip()) >= 12 and not ln.strip().startswith(("#", "import ", "from "))
            and not re.fullmatch(r"[\w\s,]+", ln.strip())]


# ------------------------------------------------------------------------------------------------------------
# the build
# ------------------------------------------------------------------------------------------------------------
def test_every_solution_cell_is_tagged_and_checks_one_registered_exercise(built) -> None:
    for path in NOTEBOOKS:
        nb = _read(path)
        solutions = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
                     and c.source.lstrip().startswith("# Solution")]
        assert _tagged(nb, SOLUTION_TAG) == solutions and solutions, path.name
        assert len(_tagged(nb, EXERCISE_TAG)) == len(solutions), path.name
    called = sorted(n for names in built.exercises.values() for n in names)
    assert called == sorted(teach.EXERCISES)  # each exercise once, none left without its notebook cell


def test_teacher_set_is_the_notebooks_as_they_are(built) -> None:
    for path in NOTEBOOKS:
        assert (built.teacher / path.name).read_bytes() == path.read_bytes()
    assert (built.teacher / "README.md").exists() and (built.student / "README.md").exists()


def test_student_set_replaces_solutions_by_check_cells_and_keeps_the_rest(built) -> None:
    for path in NOTEBOOKS:
        teacher, student = _read(path), _read(built.student / path.name)
        assert len(student.cells) == len(teacher.cells)
        assert _tagged(student, SOLUTION_TAG) == []
        assert _tagged(student, CHECK_TAG) == _tagged(teacher, SOLUTION_TAG)
        for i, (t, s) in enumerate(zip(teacher.cells, student.cells, strict=True)):
            tags = t.get("metadata", {}).get("tags", [])
            if SOLUTION_TAG in tags:
                assert s.source.startswith("# Check your answer") and "teach.check(" in s.source
                assert s.outputs == [] and s.execution_count is None
            elif EXERCISE_TAG in tags:
                assert (s.source, s.outputs, s.execution_count) == (t.source, [], None), (path.name, i)
            else:
                assert (s.source, s.get("outputs"), s.get("execution_count")) == \
                       (t.source, t.get("outputs"), t.get("execution_count")), (path.name, i)


def test_no_solution_text_survives_in_the_student_set(built) -> None:
    for path in NOTEBOOKS:
        teacher = _read(path)
        text = (built.student / path.name).read_text()
        student_sources = json.dumps([c.source for c in _read(built.student / path.name).cells])
        solutions = _tagged(teacher, SOLUTION_TAG)
        lesson = "\n".join(c.source for j, c in enumerate(teacher.cells) if j not in solutions)
        for i in solutions:
            # lines the lesson itself has too (``if target.is_local:``) give nothing away
            lines = [ln for ln in _solution_lines(teacher.cells[i]) if ln not in lesson]
            assert lines, (path.name, i)
            leaked = [ln for ln in lines if ln in text or json.dumps(ln)[1:-1] in student_sources]
            assert not leaked, (path.name, i, leaked)


def test_a_solution_without_its_exercise_stops_the_build(tmp_path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_code_cell("# Solution\nx = 2", metadata={"tags": [SOLUTION_TAG]})]
    with pytest.raises(WorkshopError, match=r"00_demo.ipynb cell 1: no cell tagged 'exercise'"):
        student_notebook(nb, "00_demo")
    nb.cells[0].metadata["tags"] = [EXERCISE_TAG]
    with pytest.raises(WorkshopError, match=r"assigns \['x'\], which matches no exercise of 00_demo"):
        student_notebook(nb, "00_demo")
    nb.cells[1].metadata["tags"] = [SOLUTION_TAG, "check:session_wer"]
    out, names = student_notebook(nb, "00_demo")
    assert names == ["session_wer"] and "teach.check('session_wer', session_wer, turns=turns)" in out.cells[1].source
    with pytest.raises(WorkshopError, match="no notebooks"):
        build(tmp_path / "out", notebooks=tmp_path)


def test_the_cli_builds_both_sets(tmp_path) -> None:
    res = subprocess.run([sys.executable, "-m", "rtlab.cli", "workshop", "build", "--out", str(tmp_path / "ws")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "00_quickstart: 1 check cell (session_wer)" in res.stdout and f"{len(teach.EXERCISES)} exercises" in res.stdout
    assert sorted(p.name for p in (tmp_path / "ws" / "student").glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    (tmp_path / "ws" / "student" / "stray.txt").write_text("x")
    res = subprocess.run([sys.executable, "-m", "rtlab.cli", "workshop", "build", "--out", str(tmp_path / "ws")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "holds other files" in res.stderr and "Traceback" not in res.stderr


# ------------------------------------------------------------------------------------------------------------
# running the student set
# ------------------------------------------------------------------------------------------------------------
def _with_solution_probes(student, teacher) -> tuple[object, dict[int, str]]:
    """The student notebook plus, after each check cell, the teacher's solution and the same check."""
    cells, probes = [], {}
    for i, cell in enumerate(student.cells):
        cells.append(cell)
        if CHECK_TAG in cell.get("metadata", {}).get("tags", []):
            call = cell.source.splitlines()[-1]
            name = re.match(r"teach\.check\('([^']+)'", call).group(1)
            probes[len(cells)] = name
            cells.append(nbformat.v4.new_code_cell(f"{teacher.cells[i].source}\n\nfrom rtlab import teach\n{call}"))
    out = nbformat.from_dict(dict(student))
    out.cells = cells
    return out, probes


def _text(cell) -> str:
    parts = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            parts.append(o.get("text", ""))
        elif o.get("output_type") == "error":
            parts.append(f"{o.get('ename')}: {o.get('evalue')}")
    return "".join(parts)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_student_notebook_runs_top_to_bottom_with_blank_exercises(built, path, monkeypatch) -> None:
    """One case per notebook: each student notebook runs in a fresh kernel, its checks say "not yet", and the
    teacher's solution run after each check cell makes the same check say "pass"."""
    from nbclient import NotebookClient

    monkeypatch.setenv("RTLAB_TARGET", "local")
    student, teacher = _read(built.student / path.name), _read(path)
    nb, probes = _with_solution_probes(student, teacher)
    t0 = time.monotonic()
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(built.student)}}).execute()  # raises on any error
    took = round(time.monotonic() - t0, 1)
    checks = [i for i, c in enumerate(nb.cells) if CHECK_TAG in c.get("metadata", {}).get("tags", [])]
    assert checks, path.name
    for i in checks:
        out = _text(nb.cells[i])
        assert re.fullmatch(r"\w+: not yet — `\w+` is still empty: .*\n", out), (path.name, i, out)
    for i, name in probes.items():
        out = _text(nb.cells[i])
        assert out.splitlines()[-1].startswith(f"{name}: pass — "), (path.name, name, out)
    print(f"student {path.stem} ran in {took} s")
