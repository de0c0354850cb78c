"""Notebooks 01 and 04 work unchanged against an Azure resource whose deployment names are not model names.

A user's resource names its deployments as it likes (``prod-voice`` serves ``gpt-realtime``, ``tx-whisper`` serves
``gpt-realtime-whisper``, ``tx-4o`` serves ``gpt-4o-transcribe``). Each test starts the emulator as exactly such a
resource, with a key, sets only the documented variables (``RTLAB_TARGET=azure``, ``AZURE_OPENAI_ENDPOINT``,
``AZURE_OPENAI_API_KEY``, ``AZURE_OPENAI_REALTIME_DEPLOYMENT``, ``AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS``) and runs
the committed notebook top to bottom in a fresh kernel, as a reader who set them would: no cell may fail, no name may
come back ``DeploymentNotFound``, and the key never shows.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from rtlab import emulator
from rtlab.emulator.profiles import load_profile

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KEY = "azk-notebooks-" + "5d" * 16
DEPLOYMENTS = {"prod-voice": "gpt-realtime", "tx-whisper": "gpt-realtime-whisper", "tx-4o": "gpt-4o-transcribe"}
_CLEARED = ("OPENAI_API_KEY", "AZURE_OPENAI_AUTH", "AZURE_OPENAI_API_VERSION", "AZURE_OPENAI_TRANSLATE_DEPLOYMENT",
            "AZURE_SPEECH_KEY", "AZURE_SPEECH_REGION", "AZURE_SPEECH_ENDPOINT", "AZURE_SPEECH_RESOURCE_ID",
            "AZURE_SPEECH_AUTH")


@pytest.fixture(scope="module")
def resource():
    handle = emulator.start(profile=load_profile("azure").with_deployments(DEPLOYMENTS), api_key=KEY, seed=11)
    yield handle
    handle.stop()


@pytest.fixture()
def documented_env(resource, monkeypatch):
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RTLAB_TARGET", "azure")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", resource.url)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    monkeypatch.setenv("AZURE_OPENAI_REALTIME_DEPLOYMENT", "prod-voice")
    monkeypatch.setenv("AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS", "tx-whisper=gpt-realtime-whisper,tx-4o=gpt-4o-transcribe")


def _run(name: str):
    """Execute a committed notebook in a fresh kernel (the environment is inherited); returns the executed node."""
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()  # raises on a failing cell
    return nb


def _outputs(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            for mime, value in out.get("data", {}).items():
                if mime.startswith("text/"):
                    parts.append(value if isinstance(value, str) else json.dumps(value))
    return "\n".join(parts)


def _solutions_pass(nb) -> list[str]:
    return [line for cell in nb.cells if "solution" in cell.get("metadata", {}).get("tags", [])
            for out in cell.get("outputs", []) if out.get("output_type") == "stream"
            for line in out.get("text", "").splitlines() if ": pass — " in line]


@pytest.mark.slow
def test_notebook_01_speaks_the_resources_deployment_names(documented_env, resource):
    nb = _run("01_session_configuration.ipynb")
    text = _outputs(nb)
    assert "DeploymentNotFound" not in text and KEY not in text
    assert "Target(azure, azure-ga" in text  # the cells ran against the resource, not the embedded emulator
    # section 6: the config said gpt-realtime-whisper, the wire said the resource's names
    assert "?model=prod-voice" in text and "sent transcription model: tx-whisper" in text
    assert "'my-voice' is neither a deployment" in text and "prod-voice (voice)" in text
    assert len(_solutions_pass(nb)) == 2


@pytest.mark.slow
def test_notebook_04_probes_the_resources_deployments(documented_env, resource):
    nb = _run("04_probe_your_endpoint.ipynb")
    text = _outputs(nb)
    assert "DeploymentNotFound" not in text and KEY not in text
    assert "voice:  prod-voice" in text  # the support report: the configured voice deployment
    assert "deployments: tx-whisper (gpt-realtime-whisper), tx-4o (gpt-4o-transcribe)" in text
    matrix = next(cell for cell in nb.cells if cell.source.startswith("result = probe("))
    shown = matrix.outputs[0]["data"]["text/plain"]
    assert "\ntx-whisper " in shown and "\ntx-4o " in shown  # rows are the resource's names, never made up
    assert "\ngpt-realtime-whisper " not in shown and "\ngpt-4o-transcribe " not in shown
    # the workarounds nothing was configured for are not tried, and the report says what to set
    assert "AZURE_OPENAI_TRANSLATE_DEPLOYMENT" in text and "AZURE_SPEECH_KEY" in text
    assert len(_solutions_pass(nb)) == 2  # the replica reproduces the resource, and no key leaks
