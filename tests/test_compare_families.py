"""`rtlab compare` end to end with every protocol family, offline: the seed question's two workarounds as sidecars
(Azure Speech, gpt-realtime-translate), GPT-Live as the voice session, and an emulated Azure resource whose
deployments are named like real ones.

Each test runs the CLI in-process (`rtlab.cli.main`) against an emulator on a real socket, at speed 4 so the suite
stays quick; latencies are not asserted here (they mean something only at speed 1: see bench/).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from rtlab.cli import main
from rtlab.data import clip_path
from rtlab.emulator import load_profile, start
from rtlab.log import EventLog

KEY = "sk-test-rtlab-0123456789abcdefghijklmnop"


def _turns(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "turns.csv")


@pytest.fixture(scope="module")
def emulator():
    with start(seed=3) as emu:
        yield emu


def test_compare_with_the_azure_speech_and_translation_sidecars(emulator, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RTLAB_TARGET", "local")
    out = tmp_path / "both"
    code = main(["compare", str(clip_path("dialogue")), "--target", "local", "--sidecar", "azure-speech",
                 "--sidecar", "translate:es", "--speed", "4", "--quiet", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    turns = _turns(out)
    assert set(turns["source"]) == {"in-session", "sidecar:azure-speech", "sidecar:translate:es"}
    assert set(turns["family"]) == {"realtime", "azure-speech", "translation"}
    speech = turns[turns["source"] == "sidecar:azure-speech"]
    assert len(speech) == 4 and speech["speaker"].nunique() == 2  # two voices, two speaker ids
    assert (speech["speaker"].tolist()[0] == speech["speaker"].tolist()[2]) and \
        (speech["speaker"].tolist()[1] == speech["speaker"].tolist()[3])
    translated = turns[turns["source"] == "sidecar:translate:es"]
    assert translated["translation"].notna().all() and (translated["translation_language"] == "es").all()
    for source, sub in turns.groupby("source"):
        assert sub["wer"].mean() <= 0.35, source
    assert turns["cost_basis"].isin(["emulated", "duration"]).all()  # offline: never presented as a real bill
    log = EventLog.load(out / "events.jsonl")
    assert set(log.output_sources()) >= {"sidecar:translate:es"}  # translated speech is an output track
    assert log.meta["sources"]["sidecar:azure-speech"]["family"] == "azure-speech"


def test_compare_with_a_gpt_live_voice_session(tmp_path, capsys):
    out = tmp_path / "live"
    code = main(["compare", str(clip_path("short")), "--target", "local", "--voice-model", "gpt-live-1",
                 "--sidecar", "transcription:gpt-live-transcribe", "--speed", "4", "--quiet", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    log = EventLog.load(out / "events.jsonl")
    frame = log.to_frame(events="none")
    voice = frame[frame["source"] == "in-session"]
    assert {"session.start", "session.started", "session.input_transcript.delta", "session.closed"} \
        <= set(voice["type"].astype(str))  # the in-session source speaks the GPT-Live protocol
    assert not voice["type"].astype(str).str.startswith("input_audio_buffer.").any()
    turns = _turns(out)
    assert set(turns["source"]) == {"in-session", "sidecar:transcription"}
    live = turns[turns["source"] == "in-session"].iloc[0]
    assert (live["family"], live["model"]) == ("live", "gpt-live-1") and live["wer"] <= 0.35
    assert log.meta["voice_config"]["model"] == "gpt-live-1"


def test_a_live_model_with_out_of_band_transcripts_is_refused_before_anything_runs(tmp_path, capsys):
    code = main(["compare", str(clip_path("short")), "--target", "local", "--voice-model", "gpt-live-1",
                 "--sidecar", "oob", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "out-of-band transcripts are a Realtime pattern" in err and "Traceback" not in err


@pytest.fixture()
def azure_resource(monkeypatch):
    """An emulated Azure resource with deployments named like real ones, reached with only the documented env."""
    profile = load_profile("azure").with_deployments(
        {"prod-voice": "gpt-realtime", "tx-whisper": "gpt-realtime-whisper", "tx-4o": "gpt-4o-transcribe",
         "prod-live": "gpt-live-1", "tx-live": "gpt-live-transcribe"})
    with start(profile=profile, api_key=KEY, seed=5) as emu:
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", emu.url)
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
        monkeypatch.setenv("AZURE_OPENAI_REALTIME_DEPLOYMENT", "prod-voice")
        monkeypatch.setenv("AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS",
                           "tx-whisper=gpt-realtime-whisper,tx-4o=gpt-4o-transcribe,tx-live=gpt-live-transcribe")
        monkeypatch.delenv("AZURE_OPENAI_AUTH", raising=False)
        yield emu


def test_compare_on_an_azure_resource_with_deployment_names(azure_resource, tmp_path, capsys):
    out = tmp_path / "azure"
    code = main(["compare", str(clip_path("short")), "--target", "azure", "--in-session-model", "tx-4o",
                 "--sidecar", "transcription:tx-whisper", "--speed", "4", "--quiet", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "DeploymentNotFound" not in captured.err
    turns = _turns(out)
    by_source = turns.set_index("source")
    assert set(turns["source"]) == {"in-session", "sidecar:transcription"}  # an explicit --sidecar replaces the defaults
    # rows speak in models (the deployment map prices them), transcripts arrived for both Azure sources
    assert by_source.loc["in-session", "model"] == "gpt-4o-transcribe"
    assert by_source.loc["sidecar:transcription", "model"] == "gpt-realtime-whisper"
    assert turns[turns["source"].isin(["in-session", "sidecar:transcription"])]["transcript"].str.len().gt(0).all()
    log = EventLog.load(out / "events.jsonl")
    hello = next(r.event for r in log.records if r.source == "in-session" and r.type == "session.created")
    assert hello["session"]["model"] in ("prod-voice", "gpt-realtime")  # connected to the voice deployment
    text = "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file() and p.suffix in
                   (".jsonl", ".csv", ".html", ".json"))
    assert KEY not in text and KEY not in captured.out + captured.err


def test_a_name_that_is_neither_a_deployment_nor_a_model_lists_the_deployments(azure_resource, tmp_path, capsys):
    code = main(["compare", str(clip_path("short")), "--target", "azure", "--voice-model", "my-voice",
                 "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "'my-voice' is neither a deployment" in err
    assert "prod-voice (voice)" in err and "tx-4o (gpt-4o-transcribe)" in err and "Traceback" not in err


def test_gpt_live_on_the_azure_path_with_a_deployment_name(azure_resource, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_REALTIME_DEPLOYMENT", "prod-live=gpt-live-1")
    out = tmp_path / "azure-live"
    code = main(["compare", str(clip_path("short")), "--target", "azure", "--voice-model", "gpt-live-1",
                 "--sidecar", "transcription:tx-live", "--speed", "4", "--quiet", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    log = EventLog.load(out / "events.jsonl")
    start_event = next(r.event for r in log.records if r.type == "session.start")
    assert start_event["session"]["model"] == "prod-live"  # the deployment serving gpt-live-1
    turns = _turns(out)
    assert set(turns["source"]) == {"in-session", "sidecar:transcription"}
    assert json.loads(json.dumps(log.meta["sources"]["in-session"]))["family"] == "live"


def test_a_translation_deployment_is_priced_as_its_model(azure_resource, tmp_path, capsys, monkeypatch):
    """Rows speak in models: the translation sidecar's deployment name maps back to gpt-realtime-translate."""
    monkeypatch.setenv("AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS",
                       "tx-whisper=gpt-realtime-whisper,tx-translate=gpt-realtime-translate")
    monkeypatch.setenv("AZURE_OPENAI_TRANSLATE_DEPLOYMENT", "tx-translate")
    out = tmp_path / "azure-translate"
    code = main(["compare", str(clip_path("short")), "--target", "azure", "--sidecar", "translate:es",
                 "--speed", "4", "--quiet", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    log = EventLog.load(out / "events.jsonl")
    assert log.meta["sources"]["sidecar:translate:es"]["model"] == "tx-translate"  # what was sent
    row = _turns(out).set_index("source").loc["sidecar:translate:es"]
    assert row["model"] == "gpt-realtime-translate" and row["cost_basis"] != "none" and row["cost_usd"] > 0

