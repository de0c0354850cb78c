"""Install routes and the CI entry point stay honest."""

from __future__ import annotations

import re
import subprocess
import sys
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


def test_layer_contracts_are_declared_and_run_by_make_test():
    """DESIGN.md's layers are import-linter contracts, checked on every `make test`."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert {c["id"] for c in contracts} == {"client-layers", "emulator-beside", "client-never-imports-emulator"}
    layers = next(c for c in contracts if c["id"] == "client-layers")["layers"]
    order = [layer.split(" : ")[0] for layer in layers]
    assert order.index("rtlab.analysis") < order.index("rtlab.runs") < order.index("rtlab.log") \
        < order.index("rtlab.targets") < order.index("rtlab.config") < order.index("rtlab.protocol")
    assert "lint-imports" in (ROOT / "Makefile").read_text().split("\ntest:", 1)[1].split("\n\n", 1)[0]


def test_the_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_importing_the_config_layer_loads_no_engine():
    """`import rtlab.config` stays light: no pocketsphinx, librosa, webrtcvad, pandas (a fresh interpreter)."""
    code = ("import sys, rtlab, rtlab.config; heavy = ['pocketsphinx', 'librosa', 'webrtcvad', 'pandas', 'scipy', "
            "'soundfile', 'openai']; print(','.join(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == ""
