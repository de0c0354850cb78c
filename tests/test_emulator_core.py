"""The emulator's sans-I/O core, state table, handshake routing and profiles, with small fake engines.

The fakes make the state machine fast and exact to test: a loud tone is speech (an energy VAD under the real
TurnDetector), the recognizer "hears" one word per 300 ms of loud audio, and TTS returns 100 ms per word. The
real engines are exercised over a socket in test_emulator_server.py.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtlab.emulator import profiles as PR
from rtlab.emulator.adapter import Close, Later
from rtlab.emulator.realtime import Session, reply_text
from rtlab.emulator.server import HttpRefusal, Route, route_request
from rtlab.emulator.states import TRANSITIONS, Machine, Rejected, edges
from rtlab.emulator.validation import validate_server_event
from rtlab.engines.base import EngineSet, Transcript, Word
from rtlab.errors import ConfigError


# ------------------------------------------------------------------------------------------------ fakes
class EnergyVad:
    frame_ms = 30
    sample_rate = 16000

    def speech_prob(self, frame: np.ndarray) -> float:
        return 1.0 if np.sqrt(np.mean(frame.astype(np.float64) ** 2)) > 500 else 0.0


WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike".split()


class FakeRecognizer:
    def __init__(self, engine: FakeAsr):
        self.engine = engine
        self.loud = 0
        self.cancelled = False

    def accept(self, pcm, sample_rate):
        if self.engine.fail:
            raise RuntimeError("decoder exploded at /secret/path")
        self.loud += int(np.sum(np.abs(np.asarray(pcm, dtype=np.int32)) > 500)) * 24000 // sample_rate

    def _words(self):
        return WORDS[: min(len(WORDS), self.loud // 7200)]

    def stable_text(self):
        words = self._words()[:-1]  # the newest word may still change
        return "".join(w + " " for w in words)

    def finish(self):
        words = self._words() or ["alpha"]
        return Transcript(" ".join(words), tuple(Word(w, 0, 0, -0.25) for w in words), -0.25, self.loud / 24)

    def cancel(self):
        self.cancelled = True


class FakeAsr:
    name = "fake"

    def __init__(self):
        self.fail = False
        self.streams: list[FakeRecognizer] = []

    def stream(self, *, keywords=None, language=None):
        rec = FakeRecognizer(self)
        self.streams.append(rec)
        return rec

    def transcribe(self, pcm, sample_rate, **kw):
        rec = FakeRecognizer(self)
        rec.accept(pcm, sample_rate)
        return rec.finish()


class FakeTts:
    name = "fake"
    sample_rate = 24000

    def __init__(self):
        self.fail = False

    def synthesize(self, text, *, voice=None):
        if self.fail:
            raise RuntimeError("tts exploded")
        n = 2400 * len(text.split())
        return (3000 * np.sin(np.arange(n) / 10)).astype(np.int16)


@pytest.fixture
def engines():
    return EngineSet(vad_factory=EnergyVad, asr=FakeAsr(), tts=FakeTts())


def tone(ms: int) -> np.ndarray:
    return (8000 * np.sin(np.arange(24 * ms) * 2 * np.pi * 220 / 24000)).astype(np.int16)


def silence(ms: int) -> np.ndarray:
    return np.zeros(24 * ms, np.int16)


def append(pcm: np.ndarray) -> dict:
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm.astype("<i2").tobytes()).decode()}


def feed(session: Session, pcm: np.ndarray, chunk_ms: int = 40, pump: bool = False) -> list[dict]:
    out: list[dict] = []
    for i in range(0, len(pcm), 24 * chunk_ms):
        out += session.receive(append(pcm[i: i + 24 * chunk_ms]))
        if pump:
            out += session.drain()
    return out


def checked(session: Session, events: list) -> list:
    """Every event validates against the SDK models and none is an internal error."""
    for e in events:
        if isinstance(e, (Close, Later)):
            e = getattr(e, "out", None)
            if e is None:
                continue
        validate_server_event(e, session.shape)
        assert not (e["type"] == "error" and e["error"]["type"] == "server_error"), e
    return events


def types(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


def of(events: list[dict], etype: str) -> list[dict]:
    return [e for e in events if e["type"] == etype]


def make(engines, kind="realtime", shape="ga", transcription=None, turn_detection="default", profile=None,
         **kw) -> Session:
    # The beta dialect is Azure's preview (OpenAI retired it: the openai profile refuses it).
    profile = profile or ("azure" if shape == "beta" else "openai")
    s = Session(engines=engines, kind=kind, shape=shape, model="gpt-realtime" if kind == "realtime" else None,
                profile=profile, seed=kw.pop("seed", 1), **kw)
    checked(s, s.start())
    if transcription is not None or turn_detection != "default":
        inp: dict = {}
        if transcription is not None:
            inp["transcription"] = transcription
        if turn_detection != "default":
            inp["turn_detection"] = turn_detection
        out = s.receive({"type": "session.update", "session": {"type": kind, "audio": {"input": inp}}})
        assert types(out) == ["session.updated"], out
    return s


TWO_TURNS = np.concatenate([silence(500), tone(1500), silence(800), tone(1200), silence(900)])


# ------------------------------------------------------------------------------------------------ state table
def test_state_table_is_data_and_drives_the_machines():
    assert {t.machine for t in TRANSITIONS} == {"turn", "response"}
    assert ("idle", "create", "responding") in [(e.source, e.trigger, e.target) for e in edges("response")]
    assert all(e.target for e in edges("turn"))
    m = Machine("response")
    m.fire("create")
    with pytest.raises(Rejected) as info:
        m.fire("create", response_id="resp_1")
    assert info.value.code == "conversation_already_has_active_response" and "resp_1" in info.value.message
    m.fire("done")
    with pytest.raises(Rejected):
        m.fire("cancel")
    with pytest.raises(Rejected) as unknown:  # an unknown trigger is an error, never silently ignored
        m.fire("nonsense")
    assert unknown.value.code == "invalid_state" and m.state == "idle"
    with pytest.raises(ValueError):
        edges("nope")


def test_item_ids_do_not_depend_on_how_many_events_came_before():
    """Answers send a timing-dependent number of events; the item ids of a seeded session must not move with them."""
    from rtlab.emulator.ids import Ids

    quiet, busy = Ids(7), Ids(7)
    for _ in range(50):
        busy("event")
    assert [quiet("item") for _ in range(3)] == [busy("item") for _ in range(3)]
    assert Ids(7)("item") != Ids(8)("item") and Ids(None)("item") != Ids(None)("item")
    assert len(Ids(7).hex128("usp")) == 32


def test_reply_text_repeats_key_words():
    assert reply_text("the meeting starts at ten in the morning") == "I heard you mention meeting, starts and morning."
    assert reply_text("") == "Sorry, I did not catch that. Could you say it again?"


# ------------------------------------------------------------------------------------------------ routing
PROFILE_OPENAI = PR.load_profile("openai")
PROFILE_AZURE = PR.load_profile("azure")


@pytest.mark.parametrize("target,headers,expected", [
    ("/v1/realtime?model=gpt-realtime", {"Authorization": "Bearer k"}, Route("/v1/realtime", "realtime", "ga",
                                                                            "gpt-realtime")),
    ("/v1/realtime?intent=transcription", {"Authorization": "Bearer k"},
     Route("/v1/realtime", "transcription", "ga", None)),
    ("/v1/realtime?model=gpt-realtime", {"Authorization": "Bearer k", "OpenAI-Beta": "realtime=v1"},
     Route("/v1/realtime", "realtime", "beta", "gpt-realtime")),
    ("/openai/v1/realtime?model=gpt-realtime", {"api-key": "k"},
     Route("/openai/v1/realtime", "realtime", "ga", "gpt-realtime")),
    ("/openai/realtime?api-version=2025-04-01-preview&deployment=gpt-realtime", {"api-key": "k"},
     Route("/openai/realtime", "realtime", "beta", "gpt-realtime")),
    ("/openai/realtime?api-version=2025-04-01-preview&deployment=gpt-4o-transcribe&intent=transcription",
     {"api-key": "k"}, Route("/openai/realtime", "transcription", "beta", "gpt-4o-transcribe")),
])
def test_route_request_paths_and_dialects(target, headers, expected):
    assert route_request(target, headers, profile=PROFILE_AZURE) == expected


@pytest.mark.parametrize("target,headers,api_key,status,code", [
    ("/v1/realtime?model=m", {}, None, 401, "invalid_api_key"),
    ("/v1/realtime?model=m", {"Authorization": "Bearer "}, None, 401, "invalid_api_key"),
    ("/v1/realtime?model=m", {"Authorization": "Bearer wrong"}, "right", 401, "invalid_api_key"),
    ("/v1/realtime?model=m", {"api-key": "wrong"}, "right", 401, "invalid_api_key"),
    ("/v2/realtime?model=m", {"api-key": "k"}, None, 404, "404"),
    ("/v1/realtime", {"api-key": "k"}, None, 400, "missing_required_parameter"),
    ("/openai/realtime?deployment=d", {"api-key": "k"}, None, 400, "BadRequest"),
])
def test_route_request_refusals(target, headers, api_key, status, code):
    result = route_request(target, headers, profile=PROFILE_OPENAI, api_key=api_key)
    assert isinstance(result, HttpRefusal) and (result.status, result.code) == (status, code)
    if api_key:
        assert api_key.encode() not in result.body()


def test_route_request_right_key_in_either_header():
    for headers in ({"Authorization": "Bearer right"}, {"api-key": "right"}):
        assert isinstance(route_request("/v1/realtime?model=m", headers, profile=PROFILE_OPENAI, api_key="right"),
                          Route)


def test_azure_profile_handshake_rules():
    whisper = route_request("/openai/v1/realtime?model=gpt-realtime-whisper", {"api-key": "k"},
                            profile=PROFILE_AZURE)
    # The reported spelling (Microsoft Q&A answers/a/12820829).
    assert isinstance(whisper, HttpRefusal) and whisper.status == 400 and whisper.code == "OpperationNotSupported"
    assert json.loads(whisper.body())["error"]["code"] == "OpperationNotSupported"
    unknown = route_request("/openai/v1/realtime?model=not-a-deployment", {"api-key": "k"}, profile=PROFILE_AZURE)
    assert isinstance(unknown, HttpRefusal) and unknown.status == 404
    # A transcription session names no session model: gpt-realtime-whisper is fine there.
    ok = route_request("/openai/realtime?api-version=v&deployment=gpt-realtime-whisper&intent=transcription",
                       {"api-key": "k"}, profile=PROFILE_AZURE)
    assert isinstance(ok, Route) and ok.kind == "transcription"


# ------------------------------------------------------------------------------------------------ profiles
def test_profiles_load_and_round_trip():
    for name in ("openai", "azure"):
        p = PR.load_profile(name)
        assert p.source and p.date
        assert PR.load_profile(p.to_json()).to_json() == p.to_json()
    assert PROFILE_AZURE.resolve_model("gpt-4o-transcribe") == "gpt-4o-transcribe"
    assert PROFILE_AZURE.transcription_outcome("realtime_ga", "gpt-transcribe").outcome == "failed"
    assert PROFILE_OPENAI.transcription_outcome("realtime_ga", "no-such-model").outcome == "error_event"


@pytest.mark.parametrize("raw,fragment", [
    ({"name": ""}, "name"),
    ({"name": "x", "paths": ["/nope"]}, "unknown paths"),
    ({"name": "x", "transcription": {"moon": {}}}, "unknown surface"),
    ({"name": "x", "transcription": {"*": {"default": "maybe"}}}, "not known"),
    ({"name": "x", "session_models": {"m": {"outcome": "handshake_error"}}}, "HTTP status"),
    ({"name": "x", "deployments": {"a": 1}}, "deployments"),
])
def test_bad_profiles_raise_config_errors(raw, fragment):
    with pytest.raises(ConfigError, match=fragment):
        PR.load_profile(raw)


def test_missing_profile_file_names_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="rtlab probe"):
        PR.load_profile(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(ConfigError, match="not readable JSON"):
        PR.load_profile(bad)


def test_profile_from_probe_reproduces_outcomes():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame([
        {"model": "gpt-realtime-whisper", "surface": "session-model", "outcome": "handshake-refused",
         "http_status": 400, "error_code": "OperationNotSupported", "error_message": "no", "deltas_stream": None},
        {"model": "gpt-4o-transcribe", "surface": "in-session-ga", "outcome": "ok", "http_status": None,
         "error_code": None, "error_message": None, "deltas_stream": True},
        {"model": "gpt-x", "surface": "transcription-beta", "outcome": "error-event", "http_status": None,
         "error_code": "invalid_value", "error_message": "bad model", "deltas_stream": False},
        {"model": "gpt-y", "surface": "in-session-beta", "outcome": "no-answer", "http_status": None,
         "error_code": None, "error_message": None, "deltas_stream": None},
    ])
    profile = PR.load_profile(PR.profile_from_probe(frame, provider="openai", name="probed"))
    assert profile.session_outcome("gpt-realtime-whisper").code == "OperationNotSupported"
    assert profile.transcription_outcome("realtime_ga", "gpt-4o-transcribe").streams is True
    assert profile.transcription_outcome("transcription_beta", "gpt-x").code == "invalid_value"


# ------------------------------------------------------------------------------------------------ session basics
@pytest.mark.parametrize("kind", ["realtime", "transcription"])
@pytest.mark.parametrize("shape", ["ga", "beta"])
def test_session_created_validates_in_both_dialects(engines, kind, shape):
    s = Session(engines=engines, kind=kind, shape=shape, model="gpt-realtime" if kind == "realtime" else None,
                profile="azure" if shape == "beta" else "openai")
    [created] = checked(s, s.start())
    expected = "transcription_session.created" if (shape, kind) == ("beta", "transcription") else "session.created"
    assert created["type"] == expected


def test_session_update_echoes_applied_config_with_defaults(engines):
    s = make(engines)
    [updated] = checked(s, s.receive({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
        "transcription": {"model": "gpt-4o-transcribe"}, "turn_detection": {"type": "server_vad", "threshold": 0.7}}}}}))
    td = updated["session"]["audio"]["input"]["turn_detection"]
    # The openai profile's silence default is the 200 ms the service shows (reported trace; the SDK says 500).
    assert td == {"type": "server_vad", "threshold": 0.7, "prefix_padding_ms": 300, "silence_duration_ms": 200,
                  "idle_timeout_ms": None, "create_response": True, "interrupt_response": True}
    assert updated["session"]["audio"]["output"]["voice"] == "alloy"  # untouched fields stay


@pytest.mark.parametrize("session,code,param", [
    ({"audio": {}}, "missing_required_parameter", "session.type"),
    ({"type": "transcription"}, "invalid_parameter", "session.type"),
    ({"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": "high"}}}},
     "invalid_value", "session.audio.input.turn_detection.threshold"),
    ({"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}},
     "invalid_value", "session.audio.input.format.rate"),
    ({"type": "realtime", "audio": {"input": {"transcription": {"model": "gpt-realtime-whisper", "prompt": "x"}}}},
     "invalid_value", "session.audio.input.transcription.prompt"),
    ({"type": "realtime", "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe", "delay": "low"}}}},
     "invalid_value", "session.audio.input.transcription.delay"),
    ({"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper-1", "keywords": ["a"]}}}},
     "invalid_value", "session.audio.input.transcription.keywords"),
    ({"type": "realtime", "audio": {"input": {"transcription": {"language": "en"}}}},
     "missing_required_parameter", "session.audio.input.transcription.model"),
    ({"type": "realtime", "audio": {"input": {"transcription": {"model": "no-such-model"}}}},
     "invalid_value", "session.audio.input.transcription.model"),
])
def test_session_update_rules(engines, session, code, param):
    s = make(engines)
    before = json.dumps(s.session)
    [err] = checked(s, s.receive({"type": "session.update", "event_id": "evt_1", "session": session}))
    assert err["type"] == "error"
    assert (err["error"]["code"], err["error"]["param"]) == (code, param)
    assert err["error"]["event_id"] == "evt_1"
    assert json.dumps(s.session) == before  # a refused update changes nothing


def test_realtime_whisper_in_transcription_session_needs_no_vad(engines):
    s = make(engines, kind="transcription")
    [err] = s.receive({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
        "transcription": {"model": "gpt-realtime-whisper"}}}}})
    assert err["error"]["param"] == "session.audio.input.turn_detection"
    [ok] = s.receive({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
        "transcription": {"model": "gpt-realtime-whisper"}, "turn_detection": None}}}})
    assert ok["type"] == "session.updated"


# ------------------------------------------------------------------------------------------------ turns
def test_server_vad_turns_in_audio_time_and_streaming_deltas(engines):
    s = make(engines, kind="realtime", transcription={"model": "gpt-realtime-whisper"},
             turn_detection={"type": "server_vad", "create_response": False})
    out = checked(s, feed(s, TWO_TURNS))
    started, stopped = of(out, "input_audio_buffer.speech_started"), of(out, "input_audio_buffer.speech_stopped")
    # Tones at 500-2000 and 2800-4000 ms; 30 ms VAD frames: the first frame holding tone starts at 480 / 2790,
    # minus 300 ms prefix padding; audio_end_ms is the end of the last frame holding tone (2010 / 4020) plus the
    # 200 ms silence window, at frame boundaries (documented: it includes the silence duration).
    assert [e["audio_start_ms"] for e in started] == [180, 2490]
    assert [e["audio_end_ms"] for e in stopped] == [2220, 4230]
    committed = of(out, "input_audio_buffer.committed")
    assert [c["previous_item_id"] for c in committed] == [None, committed[0]["item_id"]]
    completed = of(out, "conversation.item.input_audio_transcription.completed")
    for done in completed:
        deltas = [d for d in of(out, "conversation.item.input_audio_transcription.delta")
                  if d["item_id"] == done["item_id"]]
        assert "".join(d["delta"] for d in deltas) == done["transcript"]
        first = out.index(deltas[0])
        stop = next(i for i, e in enumerate(out) if e["type"] == "input_audio_buffer.speech_stopped"
                    and e["item_id"] == done["item_id"])
        assert first < stop  # streaming model: deltas while the user speaks
        assert done["usage"]["type"] == "duration" and done["usage"]["seconds"] > 0
    assert types(out).count("conversation.item.added") == types(out).count("conversation.item.done") == 2


def test_batch_model_sends_deltas_after_commit(engines):
    s = make(engines, kind="transcription", transcription={"model": "gpt-4o-transcribe"})
    out = checked(s, feed(s, TWO_TURNS))
    commits = [i for i, e in enumerate(out) if e["type"] == "input_audio_buffer.committed"]
    deltas = [i for i, e in enumerate(out) if e["type"].endswith("transcription.delta")]
    assert deltas and min(deltas) > commits[0]


def test_manual_commit_clear_and_empty_commit(engines):
    s = make(engines, kind="transcription", transcription={"model": "gpt-realtime-whisper"}, turn_detection=None)
    [err] = checked(s, s.receive({"type": "input_audio_buffer.commit"}))
    assert err["error"]["code"] == "input_audio_buffer_commit_empty"
    assert "0.00ms" in err["error"]["message"]
    feed(s, tone(60))
    [err] = s.receive({"type": "input_audio_buffer.commit"})
    assert "60.00ms" in err["error"]["message"]
    assert types(s.receive({"type": "input_audio_buffer.clear"})) == ["input_audio_buffer.cleared"]
    assert engines.asr.streams[-1].cancelled  # the decoder goes back to the pool
    out = checked(s, feed(s, tone(1500)))
    assert of(out, "conversation.item.input_audio_transcription.delta")  # streams before the commit
    out += checked(s, s.receive({"type": "input_audio_buffer.commit"}))
    [done] = of(out, "conversation.item.input_audio_transcription.completed")
    assert done["usage"] == {"type": "duration", "seconds": 1.5}
    assert "".join(d["delta"] for d in of(out, "conversation.item.input_audio_transcription.delta")) == \
        done["transcript"]
    assert not of(out, "input_audio_buffer.speech_started")


def test_g711_input_is_decoded(engines):
    from rtlab.audio import encode_g711, resample

    s = make(engines, kind="transcription", transcription={"model": "gpt-4o-transcribe"})
    [ok] = s.receive({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
        "format": {"type": "audio/pcmu"}}}}})
    assert ok["type"] == "session.updated"
    low = resample(TWO_TURNS, 24000, 8000)
    data = encode_g711(low, "ulaw")
    out = []
    for i in range(0, len(data), 320):
        out += s.receive({"type": "input_audio_buffer.append", "audio": base64.b64encode(data[i:i + 320]).decode()})
    checked(s, out)
    assert len(of(out, "conversation.item.input_audio_transcription.completed")) == 2


# ------------------------------------------------------------------------------------------------ responses
def test_vad_turn_gets_a_spoken_response(engines):
    s = make(engines, transcription={"model": "gpt-4o-transcribe"})
    out = checked(s, feed(s, TWO_TURNS[: 24 * 2700], pump=True))
    [done] = of(out, "response.done")
    assert done["response"]["status"] == "completed"
    transcript = of(out, "conversation.item.input_audio_transcription.completed")[0]["transcript"]
    spoken = "".join(d["delta"] for d in of(out, "response.output_audio_transcript.delta"))
    assert spoken == reply_text(transcript) == of(out, "response.output_audio_transcript.done")[0]["transcript"]
    audio = b"".join(base64.b64decode(d["delta"]) for d in of(out, "response.output_audio.delta"))
    assert len(audio) == 2 * 2400 * len(spoken.split())
    assert done["response"]["usage"]["output_token_details"]["audio_tokens"] > 0
    order = types(out)
    assert order.index("response.created") < order.index("response.output_item.added") < \
        order.index("response.content_part.added") < order.index("response.output_audio.delta") < \
        order.index("response.output_audio.done") < order.index("response.content_part.done") < \
        order.index("response.output_item.done") < order.index("response.done")


def test_barge_in_cancels_the_active_response(engines):
    s = make(engines, transcription={"model": "gpt-4o-transcribe"})
    out = checked(s, feed(s, TWO_TURNS))  # never pumped: response 1 is still streaming when turn 2 starts
    dones = of(out, "response.done")
    assert dones[0]["response"]["status"] == "cancelled"
    assert dones[0]["response"]["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    # Barge-in: speech_started first, then the interrupted response's events (Realtime conversations guide).
    assert out.index(of(out, "input_audio_buffer.speech_started")[1]) < out.index(dones[0])
    out += checked(s, s.drain())
    assert of(out, "response.done")[-1]["response"]["status"] == "completed"
    assert len(of(out, "response.created")) == len(of(out, "response.done")) == 2


def test_no_barge_in_when_interrupt_response_is_false(engines):
    s = make(engines, turn_detection={"type": "server_vad", "interrupt_response": False})
    out = checked(s, feed(s, TWO_TURNS))
    assert all(d["response"]["status"] == "completed" for d in of(out, "response.done") + of(s.drain(),
                                                                                             "response.done"))


def test_response_create_rules_and_out_of_band(engines):
    s = make(engines, transcription={"model": "gpt-4o-transcribe"},
             turn_detection={"type": "server_vad", "create_response": False})
    out = checked(s, feed(s, TWO_TURNS[: 24 * 2700]))
    assert not of(out, "response.created")
    transcript = of(out, "conversation.item.input_audio_transcription.completed")[0]["transcript"]
    first = checked(s, s.receive({"type": "response.create"}))
    assert of(first, "response.created")
    [err] = s.receive({"type": "response.create"})
    assert err["error"]["code"] == "conversation_already_has_active_response"
    oob = checked(s, s.receive({"type": "response.create", "response": {
        "conversation": "none", "output_modalities": ["text"], "metadata": {"purpose": "transcript"}}}))
    [done] = of(oob, "response.done")
    assert done["response"]["metadata"] == {"purpose": "transcript"}
    assert of(oob, "response.output_text.done")[0]["text"] == transcript
    assert not of(oob, "conversation.item.added")  # out of band: not in the conversation
    [cancel_err] = s.receive({"type": "response.cancel", "response_id": "resp_other"})
    assert cancel_err["error"]["code"] == "response_cancel_not_active"
    cancelled = checked(s, s.receive({"type": "response.cancel"}))
    assert of(cancelled, "response.done")[0]["response"]["status_details"]["reason"] == "client_cancelled"
    [err] = s.receive({"type": "response.cancel"})
    assert err["error"]["code"] == "response_cancel_not_active"


def test_an_out_of_band_response_with_its_own_input_hears_only_that_input(engines):
    """Documented (response.create ``input``): a response with ``input`` gets a new context, so its usage counts the
    referenced turn's audio, not whatever else the conversation holds by then (which would vary with timing)."""
    s = make(engines, transcription={"model": "gpt-4o-transcribe"},
             turn_detection={"type": "server_vad", "create_response": False})
    out = checked(s, feed(s, TWO_TURNS))
    first, second = [e["item_id"] for e in of(out, "input_audio_buffer.committed")]

    def audio_tokens(**response):
        oob = checked(s, s.receive({"type": "response.create", "response": {
            "conversation": "none", "output_modalities": ["text"], **response}}))
        return of(oob, "response.done")[0]["response"]["usage"]["input_token_details"]["audio_tokens"]

    one = audio_tokens(input=[{"type": "item_reference", "id": first}])
    other = audio_tokens(input=[{"type": "item_reference", "id": second}])
    both = audio_tokens(input=[{"type": "item_reference", "id": first}, {"type": "item_reference", "id": second}])
    assert 0 < one and 0 < other and both == one + other
    assert audio_tokens() == both  # no input: the default conversation is the context


def test_text_item_and_item_operations(engines):
    s = make(engines)
    out = checked(s, s.receive({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": "book a table in paris"}]}}))
    item_id = of(out, "conversation.item.added")[0]["item"]["id"]
    assert types(checked(s, s.receive({"type": "conversation.item.retrieve", "item_id": item_id}))) == [
        "conversation.item.retrieved"]
    resp = checked(s, s.receive({"type": "response.create", "response": {"output_modalities": ["text"]}}))
    assert of(resp, "response.output_text.done")[0]["text"] == "I heard you mention book, table and paris."
    assert types(checked(s, s.receive({"type": "conversation.item.delete", "item_id": item_id}))) == [
        "conversation.item.deleted"]
    [err] = s.receive({"type": "conversation.item.delete", "item_id": item_id})
    assert err["error"]["code"] == "item_delete_invalid_item_id"


# ------------------------------------------------------------------------------------------------ failures
def test_engine_failure_becomes_transcription_failed_and_session_goes_on(engines):
    s = make(engines, kind="transcription", transcription={"model": "gpt-4o-transcribe"})
    engines.asr.fail = True
    out = checked(s, feed(s, TWO_TURNS[: 24 * 2700]))
    [failed] = of(out, "conversation.item.input_audio_transcription.failed")
    assert failed["error"]["type"] == "server_error"
    assert "/secret/path" not in json.dumps(out)
    engines.asr.fail = False
    out = checked(s, feed(s, TWO_TURNS[24 * 2700:]))
    assert of(out, "conversation.item.input_audio_transcription.completed")


def test_tts_failure_fails_the_response(engines):
    s = make(engines)
    engines.tts.fail = True
    out = checked(s, feed(s, TWO_TURNS[: 24 * 2700], pump=True))
    [done] = of(out, "response.done")
    assert done["response"]["status"] == "failed"
    assert s.response.state == "idle"


def test_internal_error_is_generic_and_logged(engines, monkeypatch, caplog):
    s = make(engines)

    def boom(self, event):
        raise KeyError("internal detail /home/user/secret")

    monkeypatch.setitem(__import__("rtlab.emulator.realtime.session", fromlist=["_HANDLERS"])._HANDLERS,
                        "input_audio_buffer.clear", boom)
    with caplog.at_level("ERROR", logger="rtlab.emulator"):
        [err] = s.receive({"type": "input_audio_buffer.clear"})
    assert err["error"]["type"] == "server_error"
    assert "internal detail" not in json.dumps(err) and "Traceback" not in json.dumps(err)
    assert "internal detail" in caplog.text
    validate_server_event(err, "ga")


def test_azure_profile_non_deployment_transcription_model_fails(engines):
    s = make(engines, kind="transcription", profile="azure", transcription={"model": "gpt-transcribe"})
    out = checked(s, feed(s, TWO_TURNS[: 24 * 2700]))
    [failed] = of(out, "conversation.item.input_audio_transcription.failed")
    assert failed["error"]["type"] == "server_error"
    assert not of(out, "conversation.item.input_audio_transcription.completed")


# ------------------------------------------------------------------------------------------------ models
def test_diarize_segments_in_ga_only(engines):
    for shape, expect in (("ga", 1), ("beta", 0)):
        s = make(engines, kind="transcription" if shape == "ga" else "realtime", shape=shape)
        update = ({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
            "transcription": {"model": "gpt-4o-transcribe-diarize"}}}}} if shape == "ga" else
            {"type": "session.update", "session": {"input_audio_transcription": {
                "model": "gpt-4o-transcribe-diarize"}}})
        assert s.receive(update)[0]["type"].endswith("updated")
        out = checked(s, feed(s, TWO_TURNS[: 24 * 2700]))
        segments = of(out, "conversation.item.input_audio_transcription.segment")
        assert len(segments) == expect
        if segments:
            assert segments[0]["end"] > segments[0]["start"] == 0.0


def test_logprobs_only_when_included(engines):
    s = make(engines, kind="transcription", transcription={"model": "gpt-4o-transcribe"})
    out = feed(s, TWO_TURNS[: 24 * 2700])
    assert "logprobs" not in of(out, "conversation.item.input_audio_transcription.completed")[0]
    s.receive({"type": "session.update", "session": {"type": "transcription",
                                                     "include": ["item.input_audio_transcription.logprobs"]}})
    out = checked(s, feed(s, TWO_TURNS[24 * 2700:]))
    [done] = of(out, "conversation.item.input_audio_transcription.completed")
    assert [lp["token"] for lp in done["logprobs"]] == done["transcript"].split()
    assert all(lp["logprob"] == -0.25 for lp in done["logprobs"])


def test_beta_dialect_names_and_shapes(engines):
    s = make(engines, shape="beta")
    [updated] = checked(s, s.receive({"type": "session.update", "session": {
        "input_audio_transcription": {"model": "whisper-1"}, "input_audio_format": "pcm16"}}))
    assert updated["session"]["input_audio_transcription"]["model"] == "whisper-1"
    out = checked(s, feed(s, TWO_TURNS[: 24 * 2700], pump=True))
    names = set(types(out))
    assert {"conversation.item.created", "response.audio.delta", "response.audio_transcript.done"} <= names
    assert not names & {"conversation.item.added", "conversation.item.done", "response.output_audio.delta"}
    [err] = s.receive({"type": "transcription_session.update", "session": {}})
    assert err["error"]["message"] == "Passing a transcription session update event to a realtime session is not allowed."


def test_seeded_sessions_are_reproducible(engines):
    runs = []
    for _ in range(2):
        eng = EngineSet(vad_factory=EnergyVad, asr=FakeAsr(), tts=FakeTts())
        s = make(eng, transcription={"model": "gpt-realtime-whisper"}, seed="abc:0")
        runs.append(feed(s, TWO_TURNS, pump=True))
    assert runs[0] == runs[1]


# ------------------------------------------------------------------------------------------------ fuzz
CLIENT_TYPES = ["session.update", "transcription_session.update", "input_audio_buffer.append",
                "input_audio_buffer.commit", "input_audio_buffer.clear", "conversation.item.create",
                "conversation.item.retrieve", "conversation.item.delete", "conversation.item.truncate",
                "response.create", "response.cancel", "bogus.event"]
json_scalars = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
session_objects = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["realtime", "transcription", "other"]) | json_values,
    "audio": st.fixed_dictionaries({}, optional={"input": st.fixed_dictionaries({}, optional={
        "format": st.sampled_from([{"type": "audio/pcm", "rate": 24000}, {"type": "audio/pcmu"},
                                   {"type": "audio/pcm", "rate": 8000}]) | json_values,
        "transcription": st.none() | st.fixed_dictionaries({}, optional={
            "model": st.sampled_from(["gpt-4o-transcribe", "gpt-realtime-whisper", "whisper-1",
                                      "gpt-4o-transcribe-diarize", "x"]) | json_values,
            "prompt": json_values, "language": json_values, "delay": json_values}),
        "turn_detection": st.none() | st.fixed_dictionaries({"type": st.sampled_from(["server_vad", "semantic_vad"])},
                                                            optional={"threshold": json_values,
                                                                      "silence_duration_ms": json_values}),
    })}),
    "include": json_values, "output_modalities": json_values, "instructions": json_values,
    "input_audio_transcription": json_values, "turn_detection": json_values, "input_audio_format": json_values,
})
audio_payloads = st.one_of(
    st.binary(max_size=4000).map(lambda b: base64.b64encode(b).decode()),
    st.just(base64.b64encode(tone(300).tobytes()).decode()),
    st.just(base64.b64encode(np.concatenate([tone(400), silence(700)]).tobytes()).decode()),  # a whole turn
    st.text(max_size=20), json_values,
)
client_events = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(CLIENT_TYPES)}, optional={
        "event_id": json_values, "session": session_objects | json_values, "audio": audio_payloads,
        "item_id": st.text(max_size=10) | json_values, "item": json_values,
        "response": json_values | st.fixed_dictionaries({}, optional={
            "conversation": st.sampled_from(["auto", "none", "x"]), "output_modalities": json_values,
            "metadata": json_values, "input": json_values}),
        "response_id": json_values, "audio_end_ms": json_values, "content_index": json_values,
    }),
    json_values,
    st.text(max_size=40),
)


@settings(max_examples=int(__import__("os").environ.get("RTLAB_FUZZ_EXAMPLES", 150)), deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["realtime", "transcription"]), shape=st.sampled_from(["ga", "beta"]),
       timing=st.sampled_from(["local", "modelled"]), events=st.lists(client_events, min_size=1, max_size=8))
def test_fuzz_arbitrary_client_events_never_raise(engines, kind, shape, timing, events):
    s = Session(engines=engines, kind=kind, shape=shape, model="gpt-realtime" if kind == "realtime" else None,
                seed=0, profile="azure" if shape == "beta" else "openai", timing=timing)
    checked(s, s.start())
    for event in events:
        message = event if isinstance(event, str) else json.dumps(event)
        out = s.receive(message)
        checked(s, out)  # every event valid; no internal server_error
        if not isinstance(event, dict) or event.get("type") == "bogus.event":
            assert [e["type"] for e in out] == ["error"]
        out = s.drain()
        checked(s, out)


def test_synthesis_off_thread_gives_the_same_events(engines):
    """With run_async the session keeps taking audio while speech is synthesized; the events are the same."""
    from concurrent.futures import Future

    pending: list[tuple[Future, object]] = []

    def run_async(fn):
        fut: Future = Future()
        pending.append((fut, fn))
        return fut

    inline = make(engines, transcription={"model": "gpt-4o-transcribe"}, seed=5)
    expected = feed(inline, TWO_TURNS[: 24 * 2700], pump=True)
    s = make(engines, transcription={"model": "gpt-4o-transcribe"}, seed=5, run_async=run_async)
    out = feed(s, TWO_TURNS[: 24 * 2700])
    assert s.pending() and s.pump() == []  # still synthesizing: nothing to stream yet
    fut, fn = pending.pop()
    fut.set_result(fn())
    out += s.drain()
    # The transcription does not wait for the answer's speech: with synthesis elsewhere it goes out first. Each
    # stream of events (the response's, the transcription's) is the same, in the same order.
    checked(s, out)
    def stream(events, prefix):
        return [json.dumps({**e, "event_id": None}, sort_keys=True) for e in events if e["type"].startswith(prefix)]
    for prefix in ("response.", "conversation.item.input_audio_transcription.", "input_audio_buffer."):
        assert stream(out, prefix) == stream(expected, prefix)
    assert len(out) == len(expected)


def test_idle_timeout_prompts_after_the_answer_has_played(engines):
    s = make(engines, turn_detection={"type": "server_vad", "idle_timeout_ms": 2000})
    out = feed(s, TWO_TURNS[: 24 * 2700], pump=True)  # the first turn only
    [done] = of(out, "response.done")
    played_ms = sum(len(base64.b64decode(d["delta"])) for d in of(out, "response.output_audio.delta")) // 48
    out = checked(s, feed(s, silence(played_ms + 2200), pump=True))
    [timeout] = of(out, "input_audio_buffer.timeout_triggered")
    assert timeout["audio_end_ms"] - timeout["audio_start_ms"] >= 2000
    assert of(out, "input_audio_buffer.committed")[0]["item_id"] == timeout["item_id"]
    assert of(out, "response.output_audio_transcript.done")[0]["transcript"] == "Are you still there?"
    assert len(of(out, "input_audio_buffer.timeout_triggered")) == 1  # armed again only after this answer


def test_g711_output_audio(engines):
    s = make(engines)
    [ok] = s.receive({"type": "session.update", "session": {"type": "realtime", "audio": {"output": {
        "format": {"type": "audio/pcma"}}}}})
    assert ok["session"]["audio"]["output"]["format"] == {"type": "audio/pcma"}
    out = checked(s, feed(s, TWO_TURNS[: 24 * 2700], pump=True))
    audio = b"".join(base64.b64decode(d["delta"]) for d in of(out, "response.output_audio.delta"))
    words = len(of(out, "response.output_audio_transcript.done")[0]["transcript"].split())
    assert abs(len(audio) - 800 * words) <= 16  # 100 ms per fake word at 8 kHz, one byte per sample
