"""The emulator behaves like the real services (issue 10), checked on the sans-I/O session with fake engines.

Each test names the behaviour and its source. Modelled timing runs on a fake clock: the harness below plays the
adapter's part (an output is due when emitted, a :class:`Later` after its delay) and paces the audio in real time,
so the order of events on the wire is a deterministic function of the seed.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from rtlab.emulator import profiles as PR
from rtlab.emulator.adapter import Close, Later
from rtlab.emulator.realtime import Session
from rtlab.emulator.realtime.input import delay_stability
from rtlab.emulator.server import HttpRefusal, Route, route_request
from rtlab.engines.base import EngineSet
from rtlab.protocol import TRANSCRIPTION_MODELS, VOICE_MODELS
from rtlab.protocol.evidence import Evidence
from test_emulator_core import (
    TWO_TURNS,
    EnergyVad,
    FakeAsr,
    FakeTts,
    append,
    checked,
    feed,
    make,
    of,
    silence,
    tone,
)


@pytest.fixture
def engines():
    return EngineSet(vad_factory=EnergyVad, asr=FakeAsr(), tts=FakeTts())


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def play(session: Session, clock: Clock, pcm: np.ndarray, *, chunk_ms: int = 40, tail_s: float = 4.0,
         before: list | None = None) -> list[dict]:
    """Feed ``pcm`` in real time on the fake clock, pump like the adapter, return events in wire order."""
    wire: list[tuple[float, int, dict]] = []
    seq = 0

    def take(outs):
        nonlocal seq
        for out in outs:
            due, event = (clock.t + out.delay_s, out.out) if isinstance(out, Later) else (clock.t, out)
            if isinstance(event, dict):
                wire.append((due, seq, event))
                seq += 1

    take(before or [])
    step = 24 * chunk_ms
    for i in range(0, len(pcm), step):
        take(session.receive(append(pcm[i: i + step])))
        for _ in range(chunk_ms // 10):
            clock.t += 0.01
            take(session.pump())
    end = clock.t + tail_s
    while clock.t < end:
        clock.t += 0.01
        take(session.pump())
    events = [e for _, _, e in sorted(wire, key=lambda w: (w[0], w[1]))]
    return checked(session, events)


def modelled(engines, clock, *, seed=1, kind="realtime", transcription="gpt-4o-transcribe", turn_detection=None,
             profile="openai", **extra) -> Session:
    s = Session(engines=engines, kind=kind, model="gpt-realtime" if kind == "realtime" else None, profile=profile,
                seed=seed, timing="modelled", clock=clock)
    checked(s, s.start())
    inp: dict = {"transcription": {"model": transcription}}
    if turn_detection is not None:
        inp["turn_detection"] = turn_detection
    out = s.receive({"type": "session.update", "session": {"type": kind, "audio": {"input": inp}, **extra}})
    assert out[0]["type"] == "session.updated", out
    return s


# ------------------------------------------------------------------------------------------------ provenance
def test_every_profile_row_and_catalogue_row_carries_evidence():
    for name in ("openai", "azure"):
        profile = PR.load_profile(name)
        missing = [where for where, ev in profile.rows() if ev is None]
        assert not missing, f"profile {name}: rows without evidence: {missing}"
        assert sum(profile.evidence_counts().values()) == len(profile.rows())
        assert profile.evidence_line().startswith(f"profile {name}: ")
        assert set(PR.BEHAVIOURS) - {"beta_interface"} <= set(profile.behaviours) | {"first_audio_ms"}
    for row in [*TRANSCRIPTION_MODELS.values(), *VOICE_MODELS.values()]:
        assert isinstance(row.evidence, Evidence), row.name
    for row in TRANSCRIPTION_MODELS.values():
        assert isinstance(row.latency.evidence, Evidence), row.name


def test_a_row_without_evidence_is_found():
    profile = PR.load_profile({"name": "x", "session_models": {"gpt-y": {"outcome": "handshake_error",
                                                                        "status": 400}}})
    assert ("session_models.gpt-y", None) in profile.rows()
    with pytest.raises(Exception, match="evidence"):
        PR.load_profile({"name": "x", "behaviour": {"silence_duration_ms": {"value": 1, "evidence": "guessed",
                                                                            "source": "me", "date": "2026-01-01"}}})


def test_probe_saved_profile_rows_are_observed():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame([{"model": "gpt-4o-transcribe", "surface": "in-session-ga", "outcome": "ok",
                           "http_status": None, "error_code": None, "error_message": None, "deltas_stream": False}])
    raw = PR.profile_from_probe(frame, provider="openai", source="wss://api.openai.com/v1/realtime",
                                date="2026-12-02")
    profile = PR.load_profile(raw)
    outcome = profile.transcription_outcome("realtime_ga", "gpt-4o-transcribe")
    assert outcome.evidence.kind == "observed" and outcome.evidence.date == "2026-12-02"
    assert "probe of wss://api.openai.com/v1/realtime on 2026-12-02" == outcome.evidence.source
    assert profile.evidence_counts()["observed"] == 1


# ------------------------------------------------------------------------------------------------ session.update
@pytest.mark.parametrize("shape,session,param", [
    ("ga", {"type": "realtime", "input_audio_format": "pcm16"}, "session.input_audio_format"),
    ("ga", {"type": "realtime", "voice": "alloy"}, "session.voice"),
    ("ga", {"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper-1", "enabled": True}}}},
     "session.audio.input.transcription.enabled"),
    ("beta", {"audio": {"input": {"format": {"type": "audio/pcm"}}}}, "session.audio"),
    ("beta", {"input_audio_transcription": {"model": "gpt-realtime-whisper", "delay": "low"}},
     "session.input_audio_transcription.delay"),
])
def test_unknown_and_wrong_dialect_keys_are_refused(engines, shape, session, param):
    """Reported: livekit/agents issue 3210 ('Unknown parameter: ...', code unknown_parameter)."""
    s = make(engines, shape=shape)
    before = json.dumps(s.session)
    [err] = checked(s, s.receive({"type": "session.update", "session": session}))
    assert (err["error"]["code"], err["error"]["param"]) == ("unknown_parameter", param)
    assert err["error"]["message"] == f"Unknown parameter: '{param}'."
    assert json.dumps(s.session) == before  # nothing applied, nothing echoed


@pytest.mark.parametrize("audio_in,param", [
    ({"noise_reduction": {"type": "near_field"}}, "session.audio.input.noise_reduction"),
])
def test_settings_the_emulator_cannot_honour_are_refused_clearly(engines, audio_in, param):
    s = make(engines)
    [err] = s.receive({"type": "session.update", "session": {"type": "realtime", "audio": {"input": audio_in}}})
    assert (err["error"]["code"], err["error"]["param"]) == ("emulator_unsupported", param)
    assert "rtlab emulator cannot honour" in err["error"]["message"]
    [ok] = s.receive({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
        "noise_reduction": None}}}})
    assert ok["type"] == "session.updated"


def test_session_created_shows_expires_at_and_truncation(engines):
    s = Session(engines=engines, kind="realtime", model="gpt-realtime", wall=lambda: 1_800_000_000.0)
    [created] = checked(s, s.start())
    assert created["session"]["expires_at"] == 1_800_000_000 + 3600
    assert created["session"]["truncation"] == "auto"
    assert created["session"]["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 200
    azure = Session(engines=engines, kind="realtime", model="gpt-realtime", profile="azure")
    assert azure.start()[0]["session"]["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 500


def test_beta_interface_is_refused_on_openai_and_kept_on_azure(engines):
    s = Session(engines=engines, kind="realtime", shape="beta", model="gpt-realtime", profile="openai")
    err, close = s.start()
    assert err["error"]["code"] == "beta_api_shape_disabled" and isinstance(close, Close) and close.code == 4000
    assert s.receive({"type": "session.update", "session": {}}) == []  # closed: nothing more
    ok = Session(engines=engines, kind="realtime", shape="beta", model="gpt-realtime", profile="azure")
    assert ok.start()[0]["type"] == "session.created"


# ------------------------------------------------------------------------------------------------ turns, responses
def test_rate_limits_updated_at_the_beginning_of_each_response(engines):
    s = make(engines, transcription={"model": "gpt-4o-transcribe"})
    out = checked(s, [e for e in s.receive(append(TWO_TURNS[: 24 * 2700])) if isinstance(e, dict)] + s.drain())
    names = [e["type"] for e in out]
    assert names.index("rate_limits.updated") == names.index("response.created") + 1
    [limits] = of(out, "rate_limits.updated")
    assert [r["name"] for r in limits["rate_limits"]] == ["tokens"]
    assert "cached_tokens_details" in of(out, "response.done")[0]["response"]["usage"]["input_token_details"]
    assert all("object" not in e["item"] for e in of(out, "conversation.item.added"))


def test_truncate_checks_the_audio_sent_and_removes_the_transcript(engines):
    s = make(engines)
    out = checked(s, [e for e in s.receive(append(TWO_TURNS[: 24 * 2700]))] + s.drain())
    item = of(out, "response.output_item.done")[0]["item"]["id"]
    sent_ms = sum(len(base64.b64decode(d["delta"])) for d in of(out, "response.output_audio.delta")) // 48
    [err] = s.receive({"type": "conversation.item.truncate", "item_id": item, "content_index": 0,
                       "audio_end_ms": sent_ms + 100})
    assert (err["error"]["code"], err["error"]["param"]) == ("invalid_value", "audio_end_ms")
    [ok] = checked(s, s.receive({"type": "conversation.item.truncate", "item_id": item, "content_index": 0,
                                 "audio_end_ms": 200}))
    assert ok["type"] == "conversation.item.truncated" and ok["audio_end_ms"] == 200
    [got] = s.receive({"type": "conversation.item.retrieve", "item_id": item})
    assert got["item"]["content"][0]["transcript"] == ""


def test_voice_cannot_change_after_audio_was_sent(engines):
    s = make(engines)
    [ok] = s.receive({"type": "session.update", "session": {"type": "realtime", "audio": {"output": {
        "voice": "marin"}}}})
    assert ok["type"] == "session.updated"  # before any audio: fine
    s.receive(append(TWO_TURNS[: 24 * 2700]))
    s.drain()
    [err] = s.receive({"type": "session.update", "session": {"type": "realtime", "audio": {"output": {
        "voice": "cedar"}}}})
    assert err["error"]["code"] == "cannot_update_voice"
    assert err["error"]["message"] == "Cannot update a conversation's voice if assistant audio is present."
    [same] = s.receive({"type": "session.update", "session": {"type": "realtime", "audio": {"output": {
        "voice": "marin"}}}})
    assert same["type"] == "session.updated"


def test_speed_time_stretches_the_answer(engines):
    lengths = {}
    for speed in (1.0, 1.5):
        s = make(engines)
        s.receive({"type": "session.update", "session": {"type": "realtime", "audio": {"output": {"speed": speed}}}})
        out = [e for e in s.receive(append(TWO_TURNS[: 24 * 2700])) if isinstance(e, dict)] + s.drain()
        lengths[speed] = sum(len(base64.b64decode(d["delta"])) for d in of(out, "response.output_audio.delta"))
    assert lengths[1.5] == pytest.approx(lengths[1.0] / 1.5, rel=0.05)


def test_semantic_vad_ends_a_complete_turn_after_a_short_pause(engines):
    """Assumed behaviour (documented as such): pause + complete-looking text ends the turn well before the max."""
    s = make(engines, transcription={"model": "gpt-4o-transcribe"},
             turn_detection={"type": "semantic_vad", "eagerness": "high", "create_response": False})
    out = checked(s, feed(s, np.concatenate([silence(300), tone(1500), silence(1500)])))
    [stopped] = of(out, "input_audio_buffer.speech_stopped")
    assert 1800 + 150 <= stopped["audio_end_ms"] <= 1800 + 400  # the high-eagerness pause, not the 2 s max
    assert of(out, "conversation.item.input_audio_transcription.completed")


def test_semantic_vad_on_azure_is_accepted_but_silent(engines):
    """Reported: livekit/agents PR 6871 (Azure accepts semantic_vad and never emits speech_started)."""
    s = make(engines, profile="azure", transcription={"model": "whisper-1"},
             turn_detection={"type": "semantic_vad"})
    out = checked(s, s.receive(append(TWO_TURNS)))
    assert not of(out, "input_audio_buffer.speech_started")
    out = checked(s, s.receive({"type": "input_audio_buffer.commit"}))
    assert of(out, "input_audio_buffer.committed")


# ------------------------------------------------------------------------------------------------ transcription
def test_transcription_is_asynchronous_to_the_response_in_both_orders():
    """Documented (SDK): completed 'may come before or after the Response events'; both orders occur."""
    orders = set()
    for model in ("gpt-4o-transcribe", "gpt-realtime-whisper", "whisper-1"):
        for seed in range(40):
            clock = Clock()
            eng = EngineSet(vad_factory=EnergyVad, asr=FakeAsr(), tts=FakeTts())
            s = modelled(eng, clock, seed=seed, transcription=model, output_modalities=["text"])
            out = play(s, clock, TWO_TURNS[: 24 * 2700], tail_s=5)
            names = [e["type"] for e in out]
            created = names.index("response.created")
            completed = names.index("conversation.item.input_audio_transcription.completed")
            assert created < completed  # the response never waits for the transcript
            orders.add("before" if completed < names.index("response.done") else "after")
    assert orders == {"before", "after"}


def test_modelled_final_follows_the_published_latency():
    """The final's delay after the true end of speech follows the model's p50 (pipecat stt-benchmark)."""
    delays = []
    for seed in range(60):
        clock = Clock()
        eng = EngineSet(vad_factory=EnergyVad, asr=FakeAsr(), tts=FakeTts())
        s = modelled(eng, clock, seed=seed, kind="transcription", transcription="gpt-4o-transcribe",
                     turn_detection={"type": "server_vad", "silence_duration_ms": 200})
        step, t_end = 24 * 40, None
        pcm = np.concatenate([silence(500), tone(1500), silence(1500)])
        for i in range(0, len(pcm), step):
            for out in s.receive(append(pcm[i: i + step])):
                if isinstance(out, Later) and out.out["type"].endswith("transcription.completed"):
                    delays.append((clock.t + out.delay_s - t_end) * 1000)
            clock.t += 0.04
            if t_end is None and i + step >= 24 * 2000:
                t_end = clock.t  # the chunk holding the end of the tone arrived
    assert len(delays) == 60
    assert np.median(delays) == pytest.approx(TRANSCRIPTION_MODELS["gpt-4o-transcribe"].latency.final_p50_ms,
                                              rel=0.15)


def test_local_timing_sends_events_at_once(engines):
    s = make(engines, transcription={"model": "gpt-4o-transcribe"})
    assert not any(isinstance(e, Later) for e in s.receive(append(TWO_TURNS)))


def test_deltas_per_model_pattern(engines):
    """whisper-1: one delta holding the turn (documented); gpt-4o-transcribe: a burst right before the final."""
    for model, n_deltas in (("whisper-1", 1), ("gpt-4o-transcribe", None)):
        s = make(engines, kind="transcription", transcription={"model": model})
        out = checked(s, s.receive(append(TWO_TURNS[: 24 * 2700])))
        deltas = of(out, "conversation.item.input_audio_transcription.delta")
        [done] = of(out, "conversation.item.input_audio_transcription.completed")
        if n_deltas == 1:
            assert [d["delta"] for d in deltas] == [done["transcript"]]
        else:
            assert len(deltas) == len(done["transcript"].split()) > 1


@pytest.mark.parametrize("model,expect", [("gpt-4o-transcribe", True), ("gpt-4o-mini-transcribe", True),
                                          ("whisper-1", False), ("gpt-realtime-whisper", False)])
def test_logprobs_only_for_models_documented_to_return_them(engines, model, expect):
    kw = {"turn_detection": None} if model == "gpt-realtime-whisper" else {}
    s = make(engines, kind="transcription", transcription={"model": model}, **kw)
    s.receive({"type": "session.update", "session": {"type": "transcription",
                                                     "include": ["item.input_audio_transcription.logprobs"]}})
    out = s.receive(append(TWO_TURNS[: 24 * 2700]))
    if model == "gpt-realtime-whisper":
        out += s.receive({"type": "input_audio_buffer.commit"})
    [done] = of(checked(s, out), "conversation.item.input_audio_transcription.completed")
    assert ("logprobs" in done) is expect
    if expect:  # the recognizer's word posteriors (the fake gives -0.25 per word)
        assert [lp["logprob"] for lp in done["logprobs"]] == [-0.25] * len(done["transcript"].split())


def test_delay_maps_to_the_recognizer_stability(engines):
    """delay is accepted for gpt-realtime-whisper in a transcription session with client commits (SDK)."""
    guards = []
    for delay in ("minimal", "low", "medium", "high", "xhigh"):
        s = make(engines, kind="transcription", turn_detection=None,
                 transcription={"model": "gpt-realtime-whisper", "delay": delay})
        assert s.input.pipe.stability == delay_stability(delay)
        guards.append(s.input.pipe.stability.guard_ms)
    assert guards == sorted(guards) and guards[0] < guards[-1]


# ------------------------------------------------------------------------------------------------ Azure
def test_azure_in_session_realtime_whisper_fails_each_turn_with_the_opaque_text(engines):
    """Reported unsupported (Microsoft Q&A answers/a/12783039): accepted, then every turn fails."""
    s = make(engines, profile="azure", transcription={"model": "gpt-realtime-whisper"})
    out = checked(s, s.receive(append(TWO_TURNS[: 24 * 2700])) + s.drain())
    [failed] = of(out, "conversation.item.input_audio_transcription.failed")
    assert failed["error"]["type"] == "server_error"
    assert failed["error"]["message"] == f"Input transcription failed for item '{failed['item_id']}'."
    assert of(out, "response.done")  # the voice session goes on: the voice model heard the audio


def test_azure_undeployed_transcription_model_fails_with_the_opaque_text(engines):
    s = make(engines, kind="transcription", profile="azure", transcription={"model": "gpt-transcribe"})
    [failed] = of(s.receive(append(TWO_TURNS[: 24 * 2700])), "conversation.item.input_audio_transcription.failed")
    assert failed["error"] == {"type": "server_error", "code": None, "param": None,
                               "message": f"Input transcription failed for item '{failed['item_id']}'."}


def test_azure_preview_transcription_works_without_deployment():
    azure = PR.load_profile("azure")
    route = route_request("/openai/realtime?api-version=2025-04-01-preview&intent=transcription", {"api-key": "k"},
                          profile=azure)
    assert isinstance(route, Route) and route.kind == "transcription" and route.model is None
    voice = route_request("/openai/realtime?api-version=2025-04-01-preview", {"api-key": "k"}, profile=azure)
    assert isinstance(voice, HttpRefusal) and voice.status == 400


def test_azure_retired_api_version_is_refused():
    refusal = route_request("/openai/realtime?api-version=2024-10-01-preview&deployment=gpt-realtime",
                            {"api-key": "k"}, profile=PR.load_profile("azure"))
    assert isinstance(refusal, HttpRefusal) and refusal.status == 400 and "retired" in refusal.message


def test_live_models_on_realtime_are_refused_with_invalid_model():
    refusal = route_request("/v1/realtime?model=gpt-live-1", {"api-key": "k"}, profile=PR.load_profile("openai"))
    assert isinstance(refusal, HttpRefusal) and refusal.code == "invalid_model"


# ------------------------------------------------------------------------------------------------ rules agreement
def _config_of(example: dict):
    from rtlab.config import SessionConfig, Transcription, TurnDetection

    kw: dict = {"kind": example.get("kind", "realtime")}
    if "model" in example:
        kw["model"] = example["model"]
    if "transcription" in example:
        tx = example["transcription"]
        kw["transcription"] = None if tx is None else Transcription(**tx)
    if "turn_detection" in example:
        kw["turn_detection"] = TurnDetection(**example["turn_detection"])
    for key in ("pcm_rate", "include", "input_format"):
        if key in example:
            kw[key] = example[key]
    return SessionConfig(**kw)


@pytest.mark.parametrize("rule", __import__("rtlab.protocol.rules", fromlist=["RULES"]).RULES, ids=lambda r: r.id)
def test_every_rule_gets_the_same_verdict_from_the_client_and_the_emulator(engines, rule):
    """issue 9 item 1: for each row, rtlab.config.violations() flags it and the emulator answers as the row says."""
    from rtlab.config import render, violations
    from rtlab.protocol.shapes import shape_of

    example = dict(rule.example)
    dialect = example.pop("dialect", "openai-ga")
    deployments = example.pop("deployments", None)
    cfg = _config_of(example)
    assert rule.id in [v.rule for v in violations(cfg, dialect, deployments=deployments)]
    profile = PR.load_profile("azure" if dialect.startswith("azure") else "openai")
    if deployments:
        profile = profile.with_deployments(deployments)
    shape = shape_of(dialect)
    model = cfg.model or ("gpt-realtime" if cfg.kind == "realtime" else None)
    verdict = rule.server
    if verdict.where == "handshake":
        path = "/openai/v1/realtime" if dialect == "azure-ga" else "/v1/realtime"
        refusal = route_request(f"{path}?model={model}", {"api-key": "k"}, profile=profile)
        assert isinstance(refusal, HttpRefusal) and refusal.status == 400
        own = profile.session_outcome(model)
        assert refusal.code == (own.code if own.outcome == "handshake_error" else verdict.code)
        return
    s = Session(engines=engines, kind=cfg.kind, shape=shape, model=model, profile=profile, seed=3)
    assert s.start()[0]["type"].endswith("session.created")
    event = render(cfg, dialect, deployments=deployments, validate=False)
    out = checked(s, s.receive(event))
    if verdict.where in ("session.update", "unknown_parameter"):
        [err] = out
        assert err["type"] == "error", out
        assert err["error"]["code"] == verdict.code
        if verdict.param:
            assert err["error"]["param"] == verdict.param
        return
    assert verdict.where == "turn"
    assert out[0]["type"].endswith("session.updated")
    out = s.receive(append(TWO_TURNS[: 24 * 2700])) + s.drain()
    [failed] = of(checked(s, out), "conversation.item.input_audio_transcription.failed")
    assert failed["error"]["type"] == verdict.type
    assert failed["error"]["message"] == verdict.message.format(item=failed["item_id"])


def test_importing_the_config_loads_no_engine_and_no_emulator():
    import subprocess
    import sys

    code = ("import sys, rtlab.config; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pocketsphinx', 'librosa', 'webrtcvad') or m.startswith(('rtlab.emulator', 'rtlab.engines'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------------ the pipeline
def test_pipeline_turns_include_the_silence_window_and_survive_a_failing_recognizer(engines):
    from rtlab.engines.pipeline import Final, LocalPipeline, SpeechStopped, VadParams

    pipe = LocalPipeline(engines, vad=VadParams(silence_duration_ms=300), partials=False, include_silence=True)
    events = pipe.feed(np.concatenate([silence(500), tone(1000), silence(800)]))
    [stop] = [e for e in events if isinstance(e, SpeechStopped)]
    [final] = [e for e in events if isinstance(e, Final)]
    assert final.end_ms == stop.detected_ms >= stop.speech_end_ms + 300
    assert len(final.audio) == round((final.end_ms - final.start_ms) * 24) and not final.failed
    engines.asr.fail = True
    events = pipe.feed(np.concatenate([tone(1000), silence(800)]))
    [final] = [e for e in events if isinstance(e, Final)]
    assert final.failed  # the segment's transcript failed, the stream goes on
    engines.asr.fail = False
    assert [e for e in pipe.feed(np.concatenate([tone(1000), silence(800)])) if isinstance(e, Final)][0].failed \
        is False
