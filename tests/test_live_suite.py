"""The live suite stays runnable offline: its skip path, its collection per provider, and its conformance check.

``make live`` runs tests/live against the real account in the environment; nothing here calls a real service:
the subprocess runs have every credential variable removed (or fake ones with ``--collect-only``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIVE = ROOT / "tests" / "live"
CREDENTIAL_VARS = ("OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AUTH",
                   "AZURE_OPENAI_REALTIME_DEPLOYMENT", "AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS", "AZURE_OPENAI_AD_TOKEN",
                   "RTLAB_TARGET", "OPENAI_BASE_URL", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET")
sys.path.insert(0, str(LIVE))
from liveconfig import configured_providers, spend_line  # noqa: E402


def _pytest(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "lib"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "pytest", str(LIVE), "-p", "no:cacheprovider", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _live_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("live suite:")]


def test_make_live_without_credentials_says_so_in_one_line_and_succeeds():
    run = _pytest("-m", "live")
    assert run.returncode == 0, run.stdout + run.stderr  # "nothing to run" is success, not exit 5
    assert _live_lines(run.stdout) == ["live suite: no OPENAI_API_KEY / AZURE_OPENAI_ENDPOINT set — nothing to run"]
    assert "deselected" in run.stdout and "passed" not in run.stdout and "failed" not in run.stdout


def test_live_tests_never_run_unless_selected_even_with_credentials():
    fake = {"OPENAI_API_KEY": "sk-" + "f" * 40}
    run = _pytest(env_extra=fake)  # like `make test`: no -m live
    assert run.returncode == 5, run.stdout + run.stderr  # all deselected; make test runs them with other tests
    assert _live_lines(run.stdout) == ["live suite: not selected (run `make live` to test against the account "
                                       "in the environment)"]


def test_with_credentials_the_suite_collects_every_case_per_provider_and_states_its_spend():
    fake = {"OPENAI_API_KEY": "sk-" + "f" * 40, "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com",
            "AZURE_OPENAI_API_KEY": "0" * 32, "AZURE_OPENAI_REALTIME_DEPLOYMENT": "prod-voice",
            "AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS": "tx-whisper=gpt-realtime-whisper,tx-4o=gpt-4o-transcribe"}
    run = _pytest("-m", "live", "--collect-only", "-q", env_extra=fake)
    assert run.returncode == 0, run.stdout + run.stderr
    collected = [line for line in run.stdout.splitlines() if "::" in line]
    cases = {"test_voice_session_with_in_session_transcription", "test_transcription_session",
             "test_probe_small_model_list", "test_compare_in_session_vs_sidecars"}
    assert {f"{c}[{p}]" for c in cases for p in ("openai", "azure")} == {line.split("::")[-1] for line in collected}
    (line,) = _live_lines(run.stdout)
    assert "openai" in line and "azure (voice prod-voice, transcription tx-4o)" in line and "$" in line
    assert "f" * 40 not in run.stdout + run.stderr and "0" * 32 not in run.stdout + run.stderr


def test_providers_come_from_the_environment(monkeypatch):
    for name in CREDENTIAL_VARS:
        monkeypatch.delenv(name, raising=False)
    assert configured_providers() == ([], [])
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com")
    providers, notes = configured_providers()
    assert providers == [] and "AZURE_OPENAI_REALTIME_DEPLOYMENT" in notes[0]
    monkeypatch.setenv("AZURE_OPENAI_REALTIME_DEPLOYMENT", "prod-voice")
    monkeypatch.setenv("AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS", "tx-whisper=gpt-realtime-whisper")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + "f" * 40)
    monkeypatch.setenv("RTLAB_LIVE_PROBE_MODELS", "whisper-1")
    providers, notes = configured_providers()
    assert [(p.name, p.voice_model, p.transcribe_model, p.probe_models) for p in providers] == [
        ("openai", "gpt-realtime", "gpt-4o-mini-transcribe", ("whisper-1",)),
        ("azure", "prod-voice", "tx-whisper", ("gpt-realtime-whisper",)),
    ]
    assert providers[1].model_of("tx-whisper") == "gpt-realtime-whisper"
    line = spend_line(providers)
    assert "16 sessions" in line and "0 short replies" in line and "assumed" in line


def test_conformance_check_accepts_the_emulator_and_catches_a_bad_event(tmp_path):
    from conformance import count_server_events, server_event_problems

    from rtlab import SessionConfig, Target, run_session
    from rtlab.data import clip_path
    from rtlab.log import EventLog

    target = Target.local(seed=4)
    try:
        log = run_session(target, SessionConfig.realtime(), clip_path("short"), out=tmp_path / "ok",
                          speed=float("inf"), progress=False)
    finally:
        target.stop()
    assert count_server_events(log) > 10  # a real session: audio deltas (stored as pointers) included
    assert server_event_problems(log, "ga") == []
    # a log holding an event the SDK models reject is reported, with its sequence number
    bad = EventLog.create(tmp_path / "bad" / "events.jsonl")
    bad.record("server", "x", {"type": "input_audio_buffer.speech_started", "event_id": "e1"}, audio_ms=0.0)
    bad.record("server", "x", {"type": "rtlab.handshake_failed", "status": 401}, audio_ms=0.0)
    bad.close()
    problems = server_event_problems(EventLog.load(tmp_path / "bad" / "events.jsonl"), "ga")
    assert len(problems) == 1 and "speech_started" in problems[0]
    assert asyncio  # the module imports cleanly without an event loop running


@pytest.mark.parametrize("target", ["live"])
def test_makefile_has_a_live_target_that_runs_the_live_marker(target):
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
    assert "pytest" in recipe and "-m live" in recipe and "tests/live" in recipe
    assert "live" in (ROOT / "README.md").read_text()
