"""Sessions and sidecars on one audio clock, against the embedded emulator over real sockets (the SDK as client)."""

from __future__ import annotations

import asyncio
import json

import pytest

from rtlab import RunOptions, SessionConfig, Target, arun_session, run_session, run_sidecar
from rtlab.analysis import turns as turns_of
from rtlab.analysis.metrics import score_turns
from rtlab.data import clip_path, references_for
from rtlab.log import EventLog
from rtlab.runs import (
    IN_SESSION,
    SIDECAR_LOCAL,
    SIDECAR_OOB,
    SIDECAR_TRANSCRIPTION,
    LocalSidecar,
    OutOfBandSidecar,
    TranscriptionSidecar,
    parse_sidecar,
)

FAST = {"speed": float("inf"), "progress": False}


@pytest.fixture(scope="module")
def target():
    t = Target.local(seed=7)
    yield t
    t.stop()


@pytest.fixture(scope="module")
def sidecar_log(target, tmp_path_factory):
    out = tmp_path_factory.mktemp("sidecar")
    return run_sidecar(clip_path("monologue"), voice=(target, SessionConfig.realtime()), out=out, speed=4,
                       progress=False)


def test_a_voice_session_transcribes_each_turn_of_the_monologue(target, tmp_path):
    log = run_session(target, SessionConfig.realtime(), clip_path("monologue"), out=tmp_path, **FAST)
    turns = turns_of(log, references=references_for(clip_path("monologue")))
    assert list(turns["source"].unique()) == [IN_SESSION]
    assert len(turns) == 3
    scored = score_turns(turns)
    assert scored["wer"].mean() < 0.35
    # The log on disk holds the same thing as the object we got back.
    again = EventLog.load(tmp_path / "events.jsonl")
    assert len(again) == len(log)


def test_sidecar_run_has_every_source_on_one_clock(sidecar_log):
    turns = turns_of(sidecar_log, references=references_for(clip_path("monologue")))
    by_source = turns.groupby("source").size().to_dict()
    assert by_source == {IN_SESSION: 3, SIDECAR_TRANSCRIPTION: 3, SIDECAR_LOCAL: 3, SIDECAR_OOB: 3}
    # One audio clock: every source places the three turns at (nearly) the same audio times.
    for source, sub in turns.groupby("source"):
        if source in (SIDECAR_OOB, IN_SESSION):
            continue  # oob rows take their times from the voice session's items; in-session is the reference
        ends = sorted(sub["audio_end_ms"])
        # The in-session turn ends at speech_stopped.audio_end_ms, which includes the server VAD's silence window
        # (documented: SDK speech_stopped docstring; the emulator follows it since issue 10): take it off to compare
        # speech ends. SessionConfig.realtime() sends the 500 ms default.
        ref = sorted(turns[turns["source"] == IN_SESSION]["audio_end_ms"] - 500)
        if source == SIDECAR_TRANSCRIPTION:
            # gpt-live-transcribe takes no server VAD: the client commits once its own VAD has heard the silence
            # window, so the committed turn ends about one silence duration after the speech.
            assert set(sub["end_anchor"]) == {"audio_clock"}
            assert all(400 <= a - b <= 800 for a, b in zip(ends, ref, strict=True)), (source, ends, ref)
        else:
            assert all(abs(a - b) <= 100 for a, b in zip(ends, ref, strict=True)), (source, ends, ref)
    assert (turns["transcript"].str.len() > 0).all()


def test_input_audio_is_stored_once_not_inline(sidecar_log, tmp_path):
    text = sidecar_log.path.read_text()
    appends = [json.loads(line) for line in text.splitlines() if '"input_audio_buffer.append"' in line]
    assert appends and all("$ref" in json.dumps(a) for a in appends)
    samples, rate = sidecar_log.input_audio()
    # The clip plus the tail silence, once (not once per source).
    assert rate == 24000
    assert 11.0 < len(samples) / rate < 14.0


def test_out_of_band_responses_are_labelled_and_matched_to_their_turn(sidecar_log):
    frame = sidecar_log.to_frame()
    oob = frame[frame["source"] == SIDECAR_OOB]
    creates = oob[(oob["direction"] == "client") & (oob["type"] == "response.create")]
    assert len(creates) == 3
    for ev in creates["event"]:
        assert ev["response"]["conversation"] == "none"
        assert ev["response"]["output_modalities"] == ["text"]
    # Their server events never leak into the in-session source.
    inses = frame[(frame["source"] == IN_SESSION) & (frame["type"] == "response.output_text.delta")]
    assert len(inses) == 0


def test_client_commits_when_turn_detection_is_off(target, tmp_path):
    config = SessionConfig.transcription(model="gpt-realtime-whisper")
    assert config.turn_detection is None
    log = run_session(target, config, clip_path("monologue"), out=tmp_path, **FAST)
    frame = log.to_frame()
    commits = frame[(frame["direction"] == "client") & (frame["type"] == "input_audio_buffer.commit")]
    assert len(commits) == 3
    assert not (frame["type"] == "input_audio_buffer.speech_started").any()
    assert len(turns_of(log)) == 3


def test_sidecar_specs_parse_and_reject_unknown():
    assert parse_sidecar("transcription:whisper-1") == TranscriptionSidecar(model="whisper-1")
    assert parse_sidecar("local") == LocalSidecar()
    assert parse_sidecar("oob") == OutOfBandSidecar()
    with pytest.raises(Exception, match="unknown sidecar spec"):
        parse_sidecar("carrier-pigeon")


def test_handshake_refusal_is_recorded_not_raised(tmp_path):
    """Azure refuses gpt-realtime-whisper as a session model at the handshake: the run records it and ends."""
    from rtlab.runs import RemoteLeg, arun_legs, run_sync

    t = Target.local(provider_profile="azure", seed=1)
    try:
        config = SessionConfig.realtime(model="gpt-realtime-whisper", transcription=None)
        leg = RemoteLeg("probe", t, config, validate=False)  # rtlab's own rules would refuse it before sending
        log = run_sync(arun_legs(clip_path("short"), [leg], out=tmp_path, options=RunOptions(**FAST)))
        frame = log.to_frame()
        hs = frame[frame["type"] == "rtlab.handshake_failed"]
        assert len(hs) == 1
        assert hs.iloc[0]["event"]["status"] == 400
        assert hs.iloc[0]["event"]["code"] == "OpperationNotSupported"  # Azure's reported spelling (Q&A 12820829)
    finally:
        t.stop()


def test_a_killed_connection_loses_nothing_received(tmp_path, monkeypatch):
    """Stop the server mid-session: the run ends cleanly and every message the SDK received is in the log."""
    from openai.resources.realtime.realtime import AsyncRealtimeConnection

    import rtlab.emulator

    received: list[dict] = []
    original = AsyncRealtimeConnection.recv_bytes

    async def tap(self):
        raw = await original(self)
        received.append(json.loads(raw))
        return raw

    monkeypatch.setattr(AsyncRealtimeConnection, "recv_bytes", tap)
    emu = rtlab.emulator.start(seed=3)
    target = Target.local(url=emu.url)
    path = tmp_path / "events.jsonl"

    async def main():
        task = asyncio.create_task(arun_session(target, SessionConfig.realtime(), clip_path("monologue"),
                                                out=tmp_path, speed=2, progress=False))
        for _ in range(3000):  # until the first turn is transcribed
            await asyncio.sleep(0.01)
            if any(e.get("type", "").endswith("input_audio_transcription.completed") for e in received):
                break
        await asyncio.to_thread(emu.stop)
        return await asyncio.wait_for(task, 60)

    asyncio.run(main())
    logged = EventLog.load(path).to_frame()
    logged_ids = set(logged.loc[logged["direction"] == "server", "event_id"])
    assert received, "the SDK received nothing"
    missing = [e["type"] for e in received if e.get("event_id") not in logged_ids]
    assert missing == []
    completed = (logged["type"] == "conversation.item.input_audio_transcription.completed").sum()
    assert 1 <= completed < 3  # cut short after the first turn
