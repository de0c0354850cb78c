"""Install routes and the CI entry point stay honest."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_requirements() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = list(data["project"]["dependencies"])
    for extra in data["project"].get("optional-dependencies", {}).values():
        reqs += extra
    return {_name(r): r.replace(" ", "") for r in reqs}


def _conda_pip_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_lists = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_lists) == 1, "environment.yml must have exactly one pip: section"
    return {_name(r): r.replace(" ", "") for r in pip_lists[0]}


def test_environment_yml_lists_the_same_python_dependencies_as_pyproject():
    assert _conda_pip_requirements() == _pyproject_requirements()


def test_environment_yml_carries_the_system_packages():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_pkgs = {d.split("=")[0] for d in env["dependencies"] if isinstance(d, str)}
    assert "flite" in conda_pkgs


def test_ci_runs_make_test_and_fails_when_it_fails():
    script = (ROOT / ".ci" / "run").read_text()
    assert "make test" in script
    assert "|| true" not in script


def test_make_test_does_not_hide_an_empty_suite():
    # pytest exits 5 when nothing is collected; make propagates any non-zero status, so nothing may mask it.
    makefile = (ROOT / "Makefile").read_text()
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "pytest" in test_recipe and "|| true" not in test_recipe and "-" not in test_recipe.split("\n")[1][:2]
