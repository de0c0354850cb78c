"""``rtlab workshop build``: the student and teacher notebook sets of a workshop.

Layer: views / cli. From the executed notebooks (``notebooks/`` of the repository by default) it writes:

- ``OUT/teacher/``: the notebooks as they are, solutions and outputs included;
- ``OUT/student/``: the same notebooks, where every cell tagged ``solution`` is replaced by a *check cell* that
  calls :func:`rtlab.teach.check` with the learner's variables (``teach.check("session_wer", session_wer,
  turns=turns)``, tagged ``check``), and every cell tagged ``exercise`` has its outputs cleared. Everything else
  keeps its executed outputs, so a learner reads the whole notebook before running anything.

Both sets get the notebooks' README. Which exercise a solution cell solves comes from a ``check:NAME`` tag on it
when there is one, else from the variables the exercise cell above it assigns, looked up in
:data:`rtlab.teach.EXERCISES`; a solution cell that matches no exercise stops the build with its notebook and cell.
"""

from __future__ import annotations

import argparse
import ast
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RtlabError
from .paths import REPO_DIR
from .teach import EXERCISES, Exercise, exercise_for

__all__ = ["BuildResult", "WorkshopError", "build", "check_cell_source", "student_notebook"]

SOLUTION_TAG = "solution"
EXERCISE_TAG = "exercise"
CHECK_TAG = "check"


class WorkshopError(RtlabError):
    """The notebooks cannot be turned into a workshop set (the message names the notebook and cell)."""


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build` wrote: the two folders and, per notebook, the exercises its check cells call."""

    student: Path
    teacher: Path
    exercises: dict[str, list[str]]


def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []) or [])


def _assigned(source: str) -> list[str]:
    """Names an exercise cell assigns at top level (``session_wer = None`` -> ``["session_wer"]``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names: list[str] = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign | ast.AugAssign) else []
        for t in targets:
            for n in ast.walk(t):
                if isinstance(n, ast.Name):
                    names.append(n.id)
    return names


def check_cell_source(exercise: Exercise) -> str:
    """The code of a student check cell."""
    return ("# Check your answer: run this cell after your exercise cell above.\n"
            "from rtlab import teach\n\n"
            f"{exercise.call()}")


def _exercise_of(cells: Sequence[Any], i: int, stem: str, where: str) -> Exercise:
    named = [t.split(":", 1)[1] for t in _tags(cells[i]) if t.startswith("check:")]
    if named:
        if named[0] not in EXERCISES:
            raise WorkshopError(f"{where}: tag check:{named[0]} names no exercise; known: {', '.join(EXERCISES)}")
        return EXERCISES[named[0]]
    for j in range(i - 1, -1, -1):
        if EXERCISE_TAG in _tags(cells[j]):
            found = exercise_for(stem, _assigned(cells[j].source))
            if found is None:
                raise WorkshopError(f"{where}: the exercise cell {j} assigns {_assigned(cells[j].source)}, which "
                                    f"matches no exercise of {stem} in rtlab.teach.EXERCISES; add a row there or "
                                    "tag the solution cell check:NAME")
            return found
        if SOLUTION_TAG in _tags(cells[j]):
            break
    raise WorkshopError(f"{where}: no cell tagged {EXERCISE_TAG!r} before this solution cell; tag the learner's "
                        "exercise cell (or tag the solution check:NAME)")


def student_notebook(nb: Any, stem: str) -> tuple[Any, list[str]]:
    """A student copy of one notebook (an nbformat node) and the names of the exercises its check cells call."""
    import copy

    import nbformat

    out = copy.deepcopy(nb)
    cells, names = [], []
    for i, cell in enumerate(nb.cells):
        tags = _tags(cell)
        if SOLUTION_TAG in tags:
            exercise = _exercise_of(nb.cells, i, stem, f"{stem}.ipynb cell {i}")
            check = nbformat.v4.new_code_cell(check_cell_source(exercise), metadata={"tags": [CHECK_TAG]})
            if "id" in cell:
                check["id"] = cell["id"]
            cells.append(check)
            names.append(exercise.name)
            continue
        cell = copy.deepcopy(cell)
        if EXERCISE_TAG in tags and cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cells.append(cell)
    out.cells = cells
    nbformat.validate(out)
    return out, names


def build(out: str | Path, *, notebooks: str | Path | None = None) -> BuildResult:
    """Write ``OUT/student`` and ``OUT/teacher`` from the notebooks in ``notebooks`` (default: the repository's).

    Raises
    ------
    WorkshopError
        No notebooks, a solution cell that matches no exercise, or an ``OUT`` that holds other files.
    """
    import nbformat

    src = Path(notebooks) if notebooks is not None else REPO_DIR / "notebooks"
    paths = sorted(src.glob("*.ipynb"))
    if not paths:
        raise WorkshopError(f"no notebooks (*.ipynb) in {src}; pass --notebooks DIR")
    out = Path(out)
    student, teacher = out / "student", out / "teacher"
    for d in (student, teacher):
        if d.exists() and any(p.suffix not in (".ipynb", ".md") for p in d.iterdir()):
            raise WorkshopError(f"{d} holds other files; give an empty or new --out folder")
        d.mkdir(parents=True, exist_ok=True)
    exercises: dict[str, list[str]] = {}
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        shutil.copyfile(path, teacher / path.name)
        student_nb, names = student_notebook(nb, path.stem)
        nbformat.write(student_nb, student / path.name)
        exercises[path.stem] = names
    readme = src / "README.md"
    if readme.exists():
        for d in (student, teacher):
            shutil.copyfile(readme, d / "README.md")
    return BuildResult(student, teacher, exercises)


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="write the student and teacher notebook sets",
                       description="Write OUT/student (solutions replaced by check cells, exercise outputs cleared) "
                                   "and OUT/teacher (the notebooks as they are).")
    b.add_argument("--out", type=Path, required=True, help="output folder (gets student/ and teacher/)")
    b.add_argument("--notebooks", type=Path, default=None,
                   help="folder of executed notebooks (default: the repository's notebooks/)")


def run(args: argparse.Namespace) -> int:
    result = build(args.out, notebooks=args.notebooks)
    n = sum(len(v) for v in result.exercises.values())
    for stem, names in result.exercises.items():
        print(f"{stem}: {len(names)} check cell{'s' if len(names) != 1 else ''}"
              + (f" ({', '.join(names)})" if names else ""))
    print(f"student set: {result.student}\nteacher set: {result.teacher}\n{n} exercises")
    return 0
