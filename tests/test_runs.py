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


class TestWaiting:
    """A leg waits on its own state, woken by notify(); with idle=True the timeout counts from the last event."""

    def test_a_server_still_sending_is_waited_for_past_the_timeout(self):
        from rtlab.runs import Leg

        async def main():
            leg = Leg("s")
            seen = []

            async def server():
                for i in range(6):  # 6 events 0.1 s apart: 0.6 s in all, each well within the 0.3 s idle window
                    await asyncio.sleep(0.1)
                    seen.append(i)
                    leg.notify()

            task = asyncio.create_task(server())
            idle = await leg.wait_until(lambda: len(seen) == 6, 0.3, idle=True)
            await task
            seen.clear()
            task = asyncio.create_task(server())
            fixed = await leg.wait_until(lambda: len(seen) == 6, 0.3)
            await task
            return idle, fixed

        assert asyncio.run(main()) == (True, False)

    def test_a_silent_server_times_out_and_a_chatty_one_hits_the_cap(self):
        import time

        from rtlab.runs import Leg

        async def main():
            leg = Leg("s")
            t0 = time.monotonic()
            silent = await leg.wait_until(lambda: False, 0.2, idle=True)
            t_silent = time.monotonic() - t0

            async def chatter():
                while True:
                    await asyncio.sleep(0.05)
                    leg.notify()

            task = asyncio.create_task(chatter())
            t0 = time.monotonic()
            capped = await leg.wait_until(lambda: False, 0.2, idle=True, cap_s=0.6)
            t_capped = time.monotonic() - t0
            task.cancel()
            return silent, t_silent, capped, t_capped

        silent, t_silent, capped, t_capped = asyncio.run(main())
        assert not silent and 0.2 <= t_silent < 2.0
        assert not capped and 0.6 <= t_capped < 3.0


class TestProvenance:
    """Offline, no model is credited with text: each source says which engine wrote it and which timing it follows."""

    def test_an_emulated_run_names_the_local_recognizer_and_the_emulators_timing(self, sidecar_log, target):
        from rtlab.analysis import provenance, provenance_note

        table = provenance(sidecar_log, turns_of(sidecar_log)).set_index("source")
        assert set(table.index) == {IN_SESSION, SIDECAR_TRANSCRIPTION, SIDECAR_LOCAL, SIDECAR_OOB}
        for source in (IN_SESSION, SIDECAR_TRANSCRIPTION, SIDECAR_OOB):
            assert table.loc[source, "emulated"]
            assert "emulator's local recognizer" in table.loc[source, "engine"]
            assert table.loc[source, "timing"].startswith("emulated")
            assert table.loc[source, "cost_basis"] == "emulated"
        assert sidecar_log.meta["sources"][IN_SESSION]["timing"] == target.emulator_timing
        assert not table.loc[SIDECAR_LOCAL, "emulated"] and table.loc[SIDECAR_LOCAL, "cost_basis"] == "local"
        note = provenance_note(sidecar_log, turns_of(sidecar_log))
        assert "sidecar:local: pocketsphinx + webrtcvad" in note["engine"]  # what the local leg recorded

    def test_a_real_service_is_credited_with_its_own_model(self):
        from rtlab.analysis import provenance

        meta = {"sources": {IN_SESSION: {"family": "realtime", "session_model": "gpt-realtime-2.1",
                                         "transcription_model": "gpt-4o-transcribe", "emulated": False}}}
        row = provenance(meta).iloc[0]
        assert (row.engine, row.timing, row.cost_basis) == (
            "the service (gpt-4o-transcribe)", "measured against the service", "reported")

    def test_the_report_carries_it(self, sidecar_log, tmp_path):
        from rtlab.report import write_outputs

        written = write_outputs(turns_of(sidecar_log), [("monologue", sidecar_log)], tmp_path)
        html = written["report"].read_text()
        assert "Offline run" in html and "<b>sidecar:local</b>: text from pocketsphinx" in html


def test_validate_false_sends_what_the_rules_refuse_and_records_the_servers_answer(target, tmp_path):
    """The rules refuse a prompt for gpt-realtime-whisper before sending; validate=False sends it, the server answers
    with an error event, the socket stays open, and the run does not wait for transcripts that cannot come."""
    from rtlab.config import RuleViolation
    from rtlab.runs import RemoteLeg, arun_legs, run_sync

    config = SessionConfig.realtime(transcription="gpt-realtime-whisper", prompt="Names: rtlab")
    with pytest.raises(RuleViolation, match="prompt"):
        run_session(target, config, clip_path("short"), **FAST)
    log = run_session(target, config, clip_path("short"), validate=False, out=tmp_path / "a", **FAST)
    frame = log.to_frame()
    sent = frame[(frame["direction"] == "client") & (frame["type"] == "session.update")]["event"].iloc[0]
    assert sent["session"]["audio"]["input"]["transcription"]["prompt"] == "Names: rtlab"
    errors = frame[frame["type"] == "error"]["event"].tolist()
    assert [e["error"]["code"] for e in errors] == ["invalid_value"]
    assert "input_audio_buffer.committed" in set(frame["type"])  # the session went on after the refusal
    assert log.meta["config"] == sent
    # the refused update left transcription off: no transcript is owed, so the leg is settled once the audio is in
    leg = RemoteLeg(IN_SESSION, target, config, validate=False)
    run_sync(arun_legs(clip_path("short"), [leg], out=tmp_path / "b", options=RunOptions(**FAST)))
    assert leg.state.committed and not leg.state.transcribed
    assert leg.wants_transcripts() is False and leg.state.settled(wants_transcripts=leg.wants_transcripts())


def test_a_local_azure_target_with_deployment_names_runs_on_those_names(tmp_path):
    """An embedded emulator started by a target that names its deployments serves exactly those names."""
    from rtlab.runs import RemoteLeg, arun_legs, run_sync

    t = Target.local(provider_profile="azure", seed=2, realtime_deployment="prod-voice=gpt-realtime",
                     deployments={"tx-4o": "gpt-4o-transcribe"})
    try:
        log = run_session(t, SessionConfig.realtime(transcription="gpt-4o-transcribe"), clip_path("short"),
                          out=tmp_path / "ok", **FAST)
        frame = log.to_frame()
        sent = frame[(frame["direction"] == "client") & (frame["type"] == "session.update")]["event"].iloc[0]
        assert sent["session"]["audio"]["input"]["transcription"]["model"] == "tx-4o"
        turns = turns_of(log)
        assert list(turns["status"]) == ["completed"] and list(turns["model"]) == ["gpt-4o-transcribe"]
        # the model's own name is not a deployment of this resource (a target that knows no deployments sends the
        # name as written)
        unaware = Target.local(t.url, provider_profile="azure")
        leg = RemoteLeg("named-after-the-model", unaware, SessionConfig.realtime(transcription=None),
                        connect_model="gpt-realtime")
        log = run_sync(arun_legs(clip_path("short"), [leg], out=tmp_path / "404", options=RunOptions(**FAST)))
        refused = log.to_frame().query("type == 'rtlab.handshake_failed'")["event"].iloc[0]
        assert (refused["status"], refused["code"]) == (404, "DeploymentNotFound")
    finally:
        t.stop()



def test_on_log_sees_the_open_log_with_its_meta_before_audio_flows(target, tmp_path):
    seen = {}

    def watch(log):
        seen["records"] = len(log)
        seen["sources"] = sorted(log.meta["sources"])

    log = run_sidecar(clip_path("short"), voice=(target, SessionConfig.realtime()), sidecars=["local"],
                      out=tmp_path, on_log=watch, **FAST)
    assert seen == {"records": 0, "sources": [IN_SESSION, SIDECAR_LOCAL]}
    assert EventLog.load(tmp_path / "events.jsonl").meta["sources"].keys() == log.meta["sources"].keys()


def test_a_log_of_your_own_gets_the_run_meta_in_memory(target, tmp_path):
    own = EventLog.create(tmp_path / "own.jsonl", meta={"note": "mine"})
    run_sidecar(clip_path("short"), voice=(target, SessionConfig.realtime()), sidecars=["local"], log=own, **FAST)
    own.close()
    assert own.meta["note"] == "mine" and set(own.meta["sources"]) == {IN_SESSION, SIDECAR_LOCAL}
