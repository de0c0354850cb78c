"""The live suite: the same paths as the offline tests, against the real OpenAI / Azure account in the environment.

Run it with ``make live`` (``pytest tests/live -m live``). It never runs by accident:

- without ``-m live`` (e.g. in ``make test``) its tests are deselected, with one line saying how to run them;
- with ``-m live`` but no credentials it prints one line
  (``live suite: no OPENAI_API_KEY / AZURE_OPENAI_ENDPOINT set — nothing to run``) and exits 0;
- with credentials it first prints what it will spend, then runs one short bundled clip per case.

Which providers run: ``openai`` when ``OPENAI_API_KEY`` is set; ``azure`` when ``AZURE_OPENAI_ENDPOINT``,
``AZURE_OPENAI_REALTIME_DEPLOYMENT`` and ``AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS`` are set (key in
``AZURE_OPENAI_API_KEY``, or Entra ID). Model choices (optional): ``RTLAB_LIVE_VOICE_MODEL``,
``RTLAB_LIVE_TRANSCRIBE_MODEL``, ``RTLAB_LIVE_PROBE_MODELS`` (comma-separated) for OpenAI.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for `import liveconfig` / `import conformance`
from liveconfig import configured_providers, spend_line  # noqa: E402

HERE = Path(__file__).parent
NOTHING_TO_RUN = "live suite: no OPENAI_API_KEY / AZURE_OPENAI_ENDPOINT set — nothing to run"
NOT_SELECTED = "live suite: not selected (run `make live` to test against the account in the environment)"


def _live_selected(config: pytest.Config) -> bool:
    expr = (config.option.markexpr or "").replace(" ", "")
    return "live" in expr and "notlive" not in expr


_STATE: dict[str, str] = {}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "provider" in metafunc.fixturenames:
        providers, _ = configured_providers()
        metafunc.parametrize("provider", providers, ids=[p.name for p in providers])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    live = [i for i in items if HERE in Path(str(i.path)).parents]
    if not live:
        return
    providers, notes = configured_providers()
    if not _live_selected(config):
        _STATE["line"] = NOT_SELECTED
    elif not providers:
        _STATE["line"] = NOTHING_TO_RUN + (f" ({'; '.join(notes)})" if notes else "")
        _STATE["nothing"] = "1"
    else:
        line = spend_line(providers) + (f"; {'; '.join(notes)}" if notes else "")
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line)  # before anything runs: what this will spend
        return
    keep = [i for i in items if i not in live]
    config.hook.pytest_deselected(items=live)
    items[:] = keep


def pytest_terminal_summary(terminalreporter) -> None:
    if "line" in _STATE:
        terminalreporter.write_line(_STATE["line"])


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # `make live` with no account configured has nothing to do: that is success, not "no tests collected" (5).
    if _STATE.get("nothing") and exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK
