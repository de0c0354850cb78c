"""GPT-Live: protocol facts, the emulated session over a real socket with the SDK as client, the leg, the normalizer.

The server here is a small ``websockets`` harness serving :class:`rtlab.emulator.live.LiveSession` through
``serve_session`` on the two GPT-Live paths (the main server wires the same route). Every server event received
over the socket is parsed from the raw frame and validated against ``openai.types.live`` (strictly: no key the
SDK model does not define).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import openai
import pandas as pd
import pytest
import soundfile as sf
import soxr
from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response

from rtlab import audio as rt_audio
from rtlab.analysis.live import classify_live, live_turn_rows, speech_turns_from_audio
from rtlab.analysis.metrics import wer
from rtlab.emulator.adapter import Close, serve_session
from rtlab.emulator.live import ANSWER_PAUSE_MS, LiveRoute, LiveSession, route_live
from rtlab.engines import default_engines
from rtlab.errors import ConfigError, TargetError
from rtlab.paths import data_dir
from rtlab.protocol import live as L
from rtlab.runs import RunOptions, arun_legs
from rtlab.runs.live import LiveConfig, LiveLeg, _Converter
from rtlab.targets import Target

TIMEOUT_S = 120  # the machine is shared: generous bounds, never sleeps for ordering
CHUNK_MS = 40
MANIFEST = json.loads((data_dir() / "manifest.json").read_text())["clips"]
CLIPS = sorted(MANIFEST)
#: Clips the local recognizer (PocketSphinx, wideband en-us) transcribes poorly whatever the protocol: babble noise
#: and 8 kHz telephone band (measured: WER 0.79 and 0.75-0.81). Their bound only says that words come through.
HARD_FOR_LOCAL_ASR = {"noisy": 0.9, "telephone": 0.9}


# ------------------------------------------------------------------------------------------------ harness
class LiveServer:
    """The GPT-Live routes on 127.0.0.1:0 in a background thread (auth: any non-empty key, or ``api_key``)."""

    def __init__(self, *, api_key: str | None = None, seed: int = 5):
        self.api_key = api_key
        self.seed = seed
        self.engines = default_engines()
        self.pool = ThreadPoolExecutor(2, thread_name_prefix="live-tts")
        self.sessions: list[LiveSession] = []
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _process(self, connection, request):
        route = route_live(request.path)
        headers = Headers([("Content-Type", "application/json")])
        if route is None:
            return Response(404, "Not Found", headers, b'{"error": {"code": "404"}}')
        if isinstance(route, tuple):
            status, code, message = route
            return Response(status, "Bad Request", headers, json.dumps({"error": {"code": code,
                                                                                  "message": message}}).encode())
        auth = request.headers.get("Authorization", "")
        key = auth.partition(" ")[2] if auth.lower().startswith("bearer ") else request.headers.get("api-key", "")
        if not key or (self.api_key is not None and key != self.api_key):
            return Response(401, "Unauthorized", headers, b'{"error": {"code": "invalid_api_key"}}')
        connection.live_route = route
        return None

    async def _handle(self, ws):
        route: LiveRoute = ws.live_route
        session = LiveSession(engines=self.engines, provider=route.provider, seed=f"{self.seed}:{len(self.sessions)}",
                              run_async=self.pool.submit)
        self.sessions.append(session)
        await serve_session(ws, session)

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def main():
            async with serve(self._handle, "127.0.0.1", 0, process_request=self._process, max_size=None) as srv:
                self.port = next(iter(srv.sockets)).getsockname()[1]
                self._stop = asyncio.Event()
                self._ready.set()
                await self._stop.wait()

        self.loop.run_until_complete(main())

    def __enter__(self) -> LiveServer:
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self, timeout_s: float = 3.0) -> bool:
        """Stop serving; True when the server thread ended within ``timeout_s`` (every handler returned)."""
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout_s)
        self.pool.shutdown(wait=False, cancel_futures=True)
        return not self._thread.is_alive()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def server():
    with LiveServer(api_key="live-key") as s:
        yield s


@pytest.fixture(scope="module")
def engines():
    return default_engines()


def _clip(name: str) -> np.ndarray:
    return rt_audio.load(data_dir() / "clips" / f"{name}.wav").samples


def _reference(name: str) -> str:
    return MANIFEST[name]["reference"]


def _encode(pcm24: np.ndarray, fmt: dict) -> bytes:
    """24 kHz int16 → the wire format (soxr; soundfile for G.711)."""
    rate = fmt["rate"]
    pcm = pcm24 if rate == 24000 else soxr.resample(pcm24, 24000, rate, quality="HQ").astype(np.int16)
    if fmt["type"] == "audio/pcm":
        return pcm.astype("<i2").tobytes()
    buf = io.BytesIO()
    sf.write(buf, pcm, rate, format="RAW", subtype={"audio/pcmu": "ULAW", "audio/pcma": "ALAW"}[fmt["type"]])
    return buf.getvalue()


class Conn:
    """An SDK Live connection recording every server event as received on the wire, validated strictly."""

    def __init__(self, conn):
        self.conn = conn
        self.events: list[dict] = []

    async def recv(self) -> dict:
        raw = await asyncio.wait_for(self.conn.recv_bytes(), TIMEOUT_S)
        event = json.loads(raw)
        L.validate_server_event(event)
        self.events.append(event)
        return event

    async def until(self, etype: str) -> dict:
        while (event := await self.recv())["type"] != etype:
            pass
        return event

    async def rest(self) -> None:
        """Everything until the server closes the socket."""
        try:
            while True:
                await self.recv()
        except openai.OpenAIError:
            pass
        except Exception as exc:  # ConnectionClosedOK after session.closed
            assert type(exc).__name__.startswith("ConnectionClosed"), exc

    def of(self, etype: str) -> list[dict]:
        return [e for e in self.events if e["type"] == etype]

    def text(self, etype: str) -> str:
        return "".join(e["delta"] for e in self.of(etype))


async def _stream(conn, payload: bytes, bytes_per_chunk: int) -> None:
    for i in range(0, len(payload), bytes_per_chunk):
        await conn.session.input_audio.append(audio=base64.b64encode(payload[i: i + bytes_per_chunk]).decode())


def _fmt_for(clip: str) -> dict:
    return {"type": "audio/pcmu", "rate": 8000} if MANIFEST[clip]["codec"] == "g711_ulaw" else \
        {"type": "audio/pcm", "rate": 24000}


async def _session_over_clip(base_url: str, clip: str, *, model: str = "gpt-live-1", key: str = "live-key",
                             fmt: dict | None = None) -> Conn:
    fmt = fmt or _fmt_for(clip)
    pcm = np.concatenate([_clip(clip), np.zeros(24000 * 3 // 2, np.int16)])  # a tail so the VAD closes the turn
    payload = _encode(pcm, fmt)
    per_chunk = L.AUDIO_FORMATS[(fmt["type"], fmt["rate"])].bytes_per_sample * fmt["rate"] * CHUNK_MS // 1000
    client = openai.AsyncOpenAI(api_key=key, base_url=base_url)
    async with client.live.connect() as raw:
        c = Conn(raw)
        await raw.session.start(session={"model": model, "audio": {"format": fmt, "output": {"voice": "cedar"}}},
                                event_id="start-1")
        started = await c.until("session.started")
        assert started["client_event_id"] == "start-1"
        await _stream(raw, payload, per_chunk)
        await raw.session.close(event_id="close-1")
        await c.rest()
    return c


# ------------------------------------------------------------------------------------------------ protocol facts
def test_every_fact_row_carries_evidence():
    rows = [*L.PATHS.values(), *L.MODELS.values(), *L.PRICES.values(), *L.AUDIO_FORMATS.values(),
            *L.SESSION_FIELDS.values(), *L.NOT_EMULATED.values()]
    for row in rows:
        ev = row[1] if isinstance(row, tuple) else row.evidence
        assert isinstance(ev, L.Evidence) and ev.source and ev.date
    assert {e.kind for e in L.FACTS.values()} >= {"documented", "reported", "assumed"}
    assert L.PRICES["gpt-live-1"].usd_per_minute_active == 0.05


def test_client_event_support_covers_the_sdk_union_and_names_known_features():
    assert set(L.CLIENT_EVENT_SUPPORT) == set(L.CLIENT_EVENTS)
    for support in L.CLIENT_EVENT_SUPPORT.values():
        assert support == "emulated" or support in L.NOT_EMULATED


@pytest.mark.parametrize("model,api", [("gpt-live-1", "live"), ("gpt-live-1.1", "live"), ("gpt-realtime", "realtime"),
                                       ("gpt-realtime-2", "realtime"), ("gpt-live-transcribe", "realtime"),
                                       ("gpt-realtime-whisper", "realtime"), ("my-deployment", None), (None, None)])
def test_api_of_says_which_api_serves_a_model(model, api):
    assert L.api_of(model) == api


def test_check_session_model_refuses_the_other_api_with_the_fix():
    with pytest.raises(ConfigError, match="GPT-Live model.*invalid_model.*Fix: run it as a GPT-Live session"):
        L.check_session_model("gpt-live-1", "realtime")
    with pytest.raises(ConfigError, match="transcription model.*Fix: use model='gpt-live-1'"):
        L.check_session_model("gpt-live-transcribe", "live")
    with pytest.raises(ConfigError, match=r"deployment of gpt-realtime"):
        L.check_session_model("voice-dep", "live", deployments={"voice-dep": "gpt-realtime"})
    L.check_session_model("my-live-dep", "live")  # unknown names (deployments) pass
    L.check_session_model("gpt-realtime", "realtime")


@pytest.mark.parametrize("session,code,param", [
    ({"model": "gpt-live-1", "voice": "marin"}, "unknown_parameter", "session.voice"),
    ({"model": "gpt-live-1", "audio": {"format": {"type": "audio/pcm", "rate": 24000, "channels": 1}}},
     "unknown_parameter", "session.audio.format.channels"),
    ({"model": "gpt-live-1", "input": [{"role": "user", "content": [{"text": "hi", "lang": "en"}]}]},
     "unknown_parameter", "session.input[0].content[0].lang"),
    ({"audio": {}}, "missing_required_parameter", "session.model"),
    ({"model": "gpt-live-1", "audio": {"format": {"type": "audio/pcm", "rate": 8000}}}, "invalid_value",
     "session.audio.format.rate"),
    ({"model": "gpt-live-1", "audio": {"format": {"type": "audio/mp3"}}}, "invalid_value",
     "session.audio.format.type"),
])
def test_strict_session_config_names_the_bad_field(session, code, param):
    with pytest.raises(L.LiveParamError) as info:
        L.validate_session_config(session)
    assert (info.value.code, info.value.param) == (code, param)
    assert param in str(info.value)


def test_server_event_validation_is_strict():
    ok = {"type": "info", "event_id": "e", "code": "c", "message": "m"}
    L.validate_server_event(ok)
    with pytest.raises(ValueError, match="extra"):
        L.validate_server_event({**ok, "extra": 1})
    with pytest.raises(Exception, match="end_ms"):
        L.validate_server_event({"type": "session.input_transcript.delta", "event_id": "e", "delta": "x",
                                 "start_ms": 0})


def test_route_live_paths_and_refusals():
    assert route_live("/v1/live/sessions") == LiveRoute("/v1/live/sessions", "openai")
    assert route_live("/openai/v1/live/sessions") == LiveRoute("/openai/v1/live/sessions", "azure")
    assert route_live("/v1/realtime?model=gpt-realtime") is None
    status, _, message = route_live("/v1/live/sessions?model=gpt-live-1")
    assert status == 400 and "session.start" in message


# ------------------------------------------------------------------------------------------------ over a socket
@pytest.mark.parametrize("clip", CLIPS)
def test_sdk_session_over_bundled_clip(server, clip):
    """gpt-live-1 on /v1/live/sessions: transcript fragments (WER ≤ 0.35), assistant audio and transcript, usage,
    session.closed after session.close; every event validates (Conn.recv)."""
    c = asyncio.run(_session_over_clip(server.url + "/v1", clip))
    fragments = c.of("session.input_transcript.delta")
    assert fragments and wer(_reference(clip), c.text("session.input_transcript.delta")) <= \
        HARD_FOR_LOCAL_ASR.get(clip, 0.35)
    for f in fragments:
        assert 0 <= f["start_ms"] <= f["end_ms"] and set(f) == {"type", "event_id", "delta", "start_ms", "end_ms"}
    assert [f["start_ms"] for f in fragments] == sorted(f["start_ms"] for f in fragments)
    assert c.of("session.output_audio.delta") and c.text("session.output_transcript.delta").startswith("I heard")
    closed = c.of("session.closed")[-1]
    assert c.events[-1] is closed and closed["reason"] == "close_requested"
    assert closed["client_event_id"] == "close-1"
    duration_s = (len(_clip(clip)) / 24000) + 1.5
    assert closed["usage"]["seconds"] == pytest.approx(duration_s, abs=1.0)
    assert c.of("session.usage.updated")[-1]["usage"] == closed["usage"]
    info = c.of("info")[0]
    assert info["code"] == "rtlab_emulator" and "emulated" in info["message"]


def test_azure_path_with_deployment_name_and_16khz(server):
    c = asyncio.run(_session_over_clip(server.url + "/openai/v1", "short", model="my-live-deployment",
                                       fmt={"type": "audio/pcm", "rate": 16000}))
    started = c.of("session.started")[0]
    assert started["session"]["model"] == "my-live-deployment"
    assert started["session"]["audio"]["format"] == {"type": "audio/pcm", "rate": 16000}
    assert wer(_reference("short"), c.text("session.input_transcript.delta")) <= 0.35
    chunks = [base64.b64decode(e["delta"]) for e in c.of("session.output_audio.delta")]
    assert all(len(b) == 2 * 1600 for b in chunks[:-1])  # 100 ms of 16 kHz PCM16 per delta
    assert c.of("session.closed")


def test_unknown_field_is_refused_and_the_socket_stays_open(server):
    async def main():
        client = openai.AsyncOpenAI(api_key="live-key", base_url=server.url + "/v1")
        async with client.live.connect() as raw:
            c = Conn(raw)
            await raw.send_raw(json.dumps({"type": "session.start", "event_id": "bad",
                                           "session": {"model": "gpt-live-1", "voice": "marin"}}))
            err = await c.recv()
            await raw.session.start(session={"model": "gpt-live-1"})
            started = await c.until("session.started")
            await raw.session.close()
            await c.rest()
            return err, started, c

    err, started, c = asyncio.run(main())
    assert err["type"] == "error" and err["client_event_id"] == "bad"
    assert (err["error"]["code"], err["error"]["param"]) == ("unknown_parameter", "session.voice")
    assert "session.voice" in err["error"]["message"]
    assert started["session"]["audio"] == {"format": {"type": "audio/pcm", "rate": 24000},
                                           "output": {"voice": "marin"}}
    assert c.of("session.closed")


def test_not_emulated_feature_is_an_error_over_the_socket(server):
    async def main():
        client = openai.AsyncOpenAI(api_key="live-key", base_url=server.url + "/v1")
        async with client.live.connect() as raw:
            c = Conn(raw)
            await raw.session.start(session={"model": "gpt-live-1"})
            await c.until("session.started")
            await raw.decision.create(event_id="d1")
            err = await c.until("error")
            await raw.session.close()
            await c.rest()
            return err

    err = asyncio.run(main())
    assert err["error"]["code"] == "not_emulated" and "decisions" in err["error"]["message"]


def test_connection_handler_returns_after_the_session_closes_the_socket():
    s = LiveServer().__enter__()
    c = asyncio.run(_session_over_clip(s.url + "/v1", "short", key="any"))
    assert c.of("session.closed")
    assert s.stop(timeout_s=5.0)


def test_wrong_key_and_query_model_are_refused_at_the_handshake(server):
    async def attempt(key, base):
        client = openai.AsyncOpenAI(api_key=key, base_url=base, max_retries=0)
        async with client.live.connect():
            pass

    for key, base in [("wrong", server.url + "/v1"), ("live-key", server.url + "/v2")]:
        with pytest.raises(Exception, match="40[14]"):
            asyncio.run(attempt(key, base))


# ------------------------------------------------------------------------------------------------ sans I/O
def _start(engines, session: dict | None = None, **kw) -> tuple[LiveSession, list]:
    s = LiveSession(engines=engines, seed=1, validate=True, **kw)
    out = s.receive(json.dumps({"type": "session.start", "session": session or {"model": "gpt-live-1"}}))
    return s, out


def _send(s: LiveSession, event: dict) -> list:
    out = s.receive(json.dumps(event))
    for e in out:
        if isinstance(e, dict):
            L.validate_server_event(e)
    return out


def _feed(s: LiveSession, pcm: np.ndarray, fmt: dict | None = None) -> list:
    fmt = fmt or {"type": "audio/pcm", "rate": 24000}
    payload = _encode(pcm, fmt)
    per = L.AUDIO_FORMATS[(fmt["type"], fmt["rate"])].bytes_per_sample * fmt["rate"] * CHUNK_MS // 1000
    out = []
    for i in range(0, len(payload), per):
        out += _send(s, {"type": "session.input_audio.append",
                         "audio": base64.b64encode(payload[i: i + per]).decode()})
    return out


@pytest.mark.parametrize("session,event,feature", [
    ({"model": "gpt-live-1", "delegation": {"type": "responses", "responses": {"model": "gpt-5.5"}}}, None,
     "delegation"),
    ({"model": "gpt-live-1", "triggers": [{"type": "decisions", "event_type": "session.input_transcript.delta",
                                           "decisions": {"questions": []}}]}, None, "decisions"),
    ({"model": "gpt-live-1", "audio": {"output": {"voice": {"id": "voice_123"}}}}, None, "custom voices"),
    ({"model": "gpt-live-1", "client": {"data_channel": {"allowed_client_events": "all"}}}, None,
     "WebRTC frontend config"),
    (None, {"type": "response.create"}, "responses backend"),
    (None, {"type": "session.thinking.append", "content": "x", "delegation_id": None}, "thinking and commentary"),
    (None, {"type": "session.output_audio.fixture.play", "audio": ""}, "audio fixtures"),
    (None, {"type": "decision.item.delete", "item_id": "i"}, "decisions"),
    (None, {"type": "session.update", "session": {"triggers": [{"type": "decisions", "event_type":
            "session.output_transcript.delta", "decisions": {"questions": []}}]}}, "decisions"),
])
def test_features_outside_the_subset_are_refused_by_name(engines, session, event, feature):
    s, out = _start(engines, session)
    if event is not None:
        assert out[0]["type"] == "session.started"
        out = _send(s, event)
    assert [e["type"] for e in out] == ["error"]
    assert out[0]["error"]["code"] == "not_emulated" and feature in out[0]["error"]["message"]


def test_accepted_but_inert_features_are_announced(engines):
    s, out = _start(engines, {"model": "gpt-live-1", "delegation": {"type": "client"}, "store": True,
                              "input": [{"role": "user", "content": [{"text": "Hello"}]}],
                              "safety_identifier": "u1"})
    assert [e["type"] for e in out] == ["session.started", "info", "info", "info"]
    assert [e["code"] for e in out[1:]] == ["rtlab_emulator", "not_emulated", "not_emulated"]
    assert out[0]["session"]["delegation"] == {"type": "client"} and out[0]["session"]["store"] is True


def test_ordering_mistakes_and_wrong_models(engines):
    s = LiveSession(engines=engines, seed=1)
    assert s.start() == []
    assert _send(s, {"type": "session.input_audio.append", "audio": ""})[0]["error"]["code"] == "session_not_started"
    for model in ("gpt-realtime", "gpt-live-transcribe", "whatever"):
        err = _send(s, {"type": "session.start", "session": {"model": model}})[0]
        assert (err["error"]["code"], err["error"]["param"]) == ("invalid_model", "session.model")
    assert _send(s, {"type": "session.start", "session": {"model": "gpt-live-1"}})[0]["type"] == "session.started"
    assert _send(s, {"type": "session.start", "session": {"model": "gpt-live-1"}})[0]["error"]["code"] == \
        "session_already_started"
    assert _send(s, {"type": "session.input_audio.append", "audio": "@@"})[0]["error"]["param"] == "audio"
    assert _send(s, {"type": "nope"})[0]["error"]["code"] == "invalid_value"
    assert s.receive(b"\xff")[0]["error"]["code"] == "invalid_json"
    azure = LiveSession(engines=engines, provider="azure", deployments={"rt-dep": "gpt-realtime"})
    assert _send(azure, {"type": "session.start", "session": {"model": "rt-dep"}})[0]["error"]["code"] == \
        "invalid_model"
    assert _send(azure, {"type": "session.start", "session": {"model": "live-dep"}})[0]["type"] == \
        "session.started"


def test_update_mute_and_instructions(engines):
    s, _ = _start(engines)
    assert _send(s, {"type": "session.update", "session": {}})[0]["type"] == "session.updated"
    err = _send(s, {"type": "session.update", "session": {"instructions": "x"}})[0]["error"]
    assert (err["code"], err["param"]) == ("unknown_parameter", "session.instructions")
    err = _send(s, {"type": "session.update", "session": {"delegation": {"type": "responses"}}})[0]["error"]
    assert err["param"] == "session.delegation.type" and "cannot change" in err["message"]
    upd = _send(s, {"type": "session.update", "session": {"delegation": {"type": "client",
                                                                         "acknowledgement_delay_ms": 200}}})
    assert upd[0]["session"]["delegation"] == {"type": "client", "acknowledgement_delay_ms": 200}
    ack = _send(s, {"type": "session.input_audio.mute", "event_id": "m"})[0]
    assert ack["type"] == "session.input_audio.muted" and ack["client_event_id"] == "m"
    muted = _feed(s, _clip("short"))
    assert not [e for e in muted if e["type"] == "session.input_transcript.delta"]  # the model heard silence
    assert _send(s, {"type": "session.input_audio.unmute"})[0]["type"] == "session.input_audio.unmuted"
    heard = _feed(s, np.concatenate([_clip("short"), np.zeros(24000, np.int16)]))
    assert wer(_reference("short"), "".join(e["delta"] for e in heard
                                            if e["type"] == "session.input_transcript.delta")) <= 0.35
    app = _send(s, {"type": "session.instructions.append", "content": "Be brief.", "delegation_id": None})[0]
    assert app["type"] == "session.instructions.appended" and app["start_ms"] == app["end_ms"] == round(
        s.timeline_ms)
    assert _send(s, {"type": "session.instructions.append", "content": "x", "delegation_id": "d"})[0]["type"] \
        == "error"


def test_full_duplex_assistant_keeps_speaking_over_the_user(engines):
    """The answer to turn 1 plays on the timeline while the user speaks turn 2, and is not cut short."""
    s, _ = _start(engines)
    out = _feed(s, np.concatenate([_clip("dialogue"), np.zeros(24000 * 4, np.int16)]))
    out += _send(s, {"type": "session.close"})
    inputs = [e for e in out if isinstance(e, dict) and e["type"] == "session.input_transcript.delta"]
    outputs = [e for e in out if isinstance(e, dict) and e["type"] == "session.output_transcript.delta"]
    overlapping = [(o, i) for o in outputs for i in inputs
                   if o["start_ms"] < i["end_ms"] and i["start_ms"] < o["end_ms"]]
    assert overlapping, "the assistant never spoke while the user spoke"
    # Delivery interleaves: assistant audio goes out before later user fragments arrive.
    kinds = [e["type"] for e in out if isinstance(e, dict)]
    first_audio = kinds.index("session.output_audio.delta")
    assert "session.input_transcript.delta" in kinds[first_audio:]
    # Every answer is complete (four turns, four sentences), none cancelled by the user talking over it.
    said = "".join(o["delta"] for o in outputs)
    assert said.count("I heard you mention") == 4 and said.count(".") == 4
    # Answers that queue up are separated by a pause, in order on the timeline.
    starts = [o["start_ms"] for o in outputs]
    assert starts == sorted(starts)
    assert isinstance(out[-1], Close) and out[-2]["type"] == "session.closed"


@pytest.mark.parametrize("fmt,chunk_bytes", [({"type": "audio/pcm", "rate": 24000}, 4800),
                                             ({"type": "audio/pcmu", "rate": 8000}, 800),
                                             ({"type": "audio/pcma", "rate": 8000}, 800)])
def test_formats_in_and_out(engines, fmt, chunk_bytes):
    s, out = _start(engines, {"model": "gpt-live-1", "audio": {"format": fmt}})
    assert out[0]["session"]["audio"]["format"] == fmt
    pcm = np.concatenate([_clip("short"), np.zeros(24000, np.int16)])
    got = _feed(s, pcm, fmt)
    heard = "".join(e["delta"] for e in got if e["type"] == "session.input_transcript.delta")
    assert heard.strip()
    if fmt["type"] == "audio/pcm":
        assert wer(_reference("short"), heard) <= 0.35
    else:  # the 8 kHz audio is decoded with the right law: G.711 quantization noise only (SNR > 30 dB)
        sent = soxr.resample(pcm, 24000, 8000, quality="HQ").astype(np.int16)
        decoded = LiveSession(engines=engines)
        decoded._fmt = L.AUDIO_FORMATS[(fmt["type"], 8000)]
        back = decoded._decode(_encode(pcm, fmt)).astype(float)
        snr = 10 * np.log10(np.sum(sent.astype(float) ** 2) / np.sum((back - sent) ** 2))
        assert snr > 30
    audio = [base64.b64decode(e["delta"]) for e in got if e["type"] == "session.output_audio.delta"]
    assert audio and {len(a) for a in audio[:-1]} == {chunk_bytes}


def test_answers_queue_with_a_pause(engines):
    s, _ = _start(engines)
    s._answer("first turn words", 1000.0)
    s._answer("second turn", 1200.0)
    first, second = s._replies
    assert second.t0_ms == pytest.approx(first.end_ms + ANSWER_PAUSE_MS)


# ------------------------------------------------------------------------------------------------ the leg
def test_leg_refuses_realtime_models_and_preview_targets_before_sending():
    target = Target.local("http://127.0.0.1:9")  # never contacted
    with pytest.raises(ConfigError, match="Realtime model"):
        LiveLeg(target, LiveConfig(model="gpt-realtime"))
    with pytest.raises(ConfigError, match="voice"):
        LiveLeg(target, LiveConfig(voice="nobody"))
    with pytest.raises(ConfigError, match="sample_rate"):
        LiveConfig(audio_format="audio/pcmu", sample_rate=16000)
    with pytest.raises(TargetError, match="GA v1"):
        LiveLeg(Target.local("http://127.0.0.1:9", dialect="azure-preview"), LiveConfig())
    cfg = LiveConfig(instructions="Be brief.", input=(("user", "Hi"), ("assistant", "Hello!")), sample_rate=16000)
    assert cfg.input_format == "pcm16"
    assert cfg.session()["input"][1]["content"][0] == {"type": "output_text", "text": "Hello!"}


@pytest.mark.parametrize("run_fmt,wire", [("pcm16", {"type": "audio/pcm", "rate": 16000}),
                                           ("pcm16", {"type": "audio/pcmu", "rate": 8000}),
                                           ("g711_ulaw", {"type": "audio/pcm", "rate": 24000})])
def test_leg_converts_run_chunks_to_the_session_format(run_fmt, wire):
    """Chunk by chunk (soxr stream, soundfile G.711), the whole clip arrives in the wire format, intact."""
    clip = rt_audio.load(data_dir() / "clips" / "short.wav")
    conv = _Converter(run_fmt, wire)
    assert not conv.passthrough
    sent = b"".join(conv.convert(c.payload) for c in rt_audio.chunks(clip, chunk_ms=40, fmt=run_fmt))
    sent += conv.convert(b"", last=True)
    fmt = L.AUDIO_FORMATS[(wire["type"], wire["rate"])]
    assert len(sent) // fmt.bytes_per_sample == pytest.approx(clip.duration_ms * wire["rate"] / 1000, abs=2)
    decoder = LiveSession(engines=None)
    decoder._fmt = fmt
    got = decoder._decode(sent).astype(float)
    want = soxr.resample(clip.samples, 24000, wire["rate"], quality="HQ").astype(float)
    snr = 10 * np.log10(np.sum(want ** 2) / np.sum((got - want) ** 2))
    assert snr > 15  # resampling twice and G.711 quantization, no gross error (a wrong law or rate is < 0 dB)
    assert _Converter("pcm16", {"type": "audio/pcm", "rate": 24000}).passthrough


@pytest.mark.parametrize("clip,dialect,cfg", [
    ("dialogue", "openai-ga", LiveConfig()),
    ("monologue", "azure-ga", LiveConfig(model="my-live-deployment", sample_rate=16000)),
    ("telephone", "openai-ga", LiveConfig(audio_format="audio/pcmu")),
])
def test_leg_and_normalizer_on_a_bundled_clip(server, tmp_path, clip, dialect, cfg):
    target = Target.local(server.url, dialect=dialect, api_key="live-key")
    leg = LiveLeg(target, cfg)
    log = asyncio.run(arun_legs(data_dir() / "clips" / f"{clip}.wav", [leg], out=tmp_path,
                                options=RunOptions(speed=4, progress=False, settle_timeout_s=TIMEOUT_S),
                                fmt=cfg.input_format))
    frame = log.to_frame(events="dict")
    client = frame[frame.direction == "client"]["type"].tolist()
    assert client[0] == "session.start" and client[-1] == "session.close"
    assert set(client[1:-1]) == {"session.input_audio.append"}
    server_types = frame[frame.direction == "server"]["type"].tolist()
    assert server_types[0] == "session.started" and server_types[-1] == "session.closed"
    server = frame[frame.direction == "server"]
    for ev, source in zip(server["event"], server["source"].astype(str), strict=True):
        L.validate_server_event(log.as_sent(ev, source))  # audio is stored in tracks: put it back to validate

    utterances = MANIFEST[clip]["utterances"]
    refs = pd.DataFrame([{"audio_start_ms": u["start_s"] * 1000, "audio_end_ms": u["end_s"] * 1000,
                          "item_id": f"ref{i}"} for i, u in enumerate(utterances)])
    rows = live_turn_rows(frame, "in-session", refs)
    assert [r["turn_ref"] for r in rows] == list(refs["item_id"])
    assert wer([u["text"] for u in utterances], [r["transcript"] for r in rows]) <= HARD_FOR_LOCAL_ASR.get(clip, 0.35)
    for r in rows:
        assert r["kind"] == "gpt-live" and r["status"] == "completed" and r["n_revisions"] == 0
        assert r["model"] == cfg.model and r["usage_emulated"] and r["close_reason"] == "close_requested"
        assert r["n_deltas"] == len(r["fragments"]) > 0 and r["t_first_ms"] <= r["t_final_ms"]
    total = frame[frame.type == "session.closed"]["event"].iloc[-1]["usage"]["seconds"]
    assert sum(r["usage"]["seconds"] for r in rows) == pytest.approx(total)
    assert any(r["output_transcript"] for r in rows)

    probe = classify_live(frame, "in-session")
    assert probe["outcome"] == "ok" and probe["completed"] and probe["emulated"] and probe["deltas_stream"]
    assert probe["model"] == cfg.model and probe["n_deltas"] == sum(r["n_deltas"] for r in rows)

    vad_rows = live_turn_rows(frame, "in-session", input_audio=log.input_audio())  # no turns: VAD of the input track
    assert len(vad_rows) == len(utterances)
    for r, u in zip(vad_rows, utterances, strict=True):
        assert r["audio_start_ms"] <= u["start_s"] * 1000 + 100 and r["audio_end_ms"] >= u["end_s"] * 1000 - 300


def test_normalizer_without_turns_or_audio_groups_fragments_and_reports_a_failed_start():
    def frame(events):
        return pd.DataFrame({"seq": range(len(events)), "t_ms": [10.0 * i for i in range(len(events))],
                             "direction": [d for d, _ in events], "source": "live",
                             "type": [e["type"] for _, e in events], "event": [e for _, e in events]})

    def frag(start, end, text):
        return ("server", {"type": "session.input_transcript.delta", "delta": text, "start_ms": start,
                           "end_ms": end})

    rows = live_turn_rows(frame([("server", {"type": "session.started", "session": {"model": "gpt-live-1"}}),
                                 frag(100, 400, "hello"), frag(400, 700, " there"), frag(3000, 3300, " again")]),
                          "live")
    assert [(r["audio_start_ms"], r["audio_end_ms"], r["transcript"], r["status"]) for r in rows] == [
        (100, 700, "hello there", "completed"), (3000, 3300, "again", "pending")]
    assert rows[0]["usage"] is None and not rows[0]["usage_emulated"]
    failed = live_turn_rows(frame([("client", {"type": "session.start", "session": {"model": "gpt-live-1"}}),
                                   ("server", {"type": "error", "error": {"code": "invalid_model",
                                                                          "message": "no"}})]), "live")
    assert failed[0]["status"] == "failed" and failed[0]["error"] == "invalid_model: no"


def test_probe_rows_for_refused_sessions(server, tmp_path):
    async def attempt(target, cfg):
        return await arun_legs(data_dir() / "clips" / "short.wav", [LiveLeg(target, cfg)], out=tmp_path,
                               options=RunOptions(speed=8, progress=False))

    refused = asyncio.run(attempt(Target.local(server.url, api_key="wrong"), LiveConfig()))
    row = classify_live(refused.to_frame(), "in-session")
    assert (row["outcome"], row["http_status"]) == ("handshake-refused", 401)
    # A name the client cannot classify, refused by the server at session.start: recorded, nothing streamed.
    bad = asyncio.run(attempt(Target.local(server.url, api_key="live-key"), LiveConfig(model="gpt-voice-x")))
    row = classify_live(bad.to_frame(), "in-session")
    assert (row["outcome"], row["error_code"], row["n_deltas"]) == ("error-event", "invalid_model", 0)
    frame = bad.to_frame()
    assert "session.input_audio.append" not in set(frame["type"])


def test_speech_turns_from_audio_finds_the_utterances():
    turns = speech_turns_from_audio(_clip("monologue"), 24000)
    assert len(turns) == len(MANIFEST["monologue"]["utterances"])


# ------------------------------------------------------------------------------------------------ real service
@pytest.mark.live
@pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="needs OPENAI_API_KEY")
def test_real_openai_gpt_live_session(tmp_path):
    leg = LiveLeg(Target.openai(), LiveConfig(model="gpt-live-1"))
    log = asyncio.run(arun_legs(data_dir() / "clips" / "short.wav", [leg], out=tmp_path,
                                options=RunOptions(speed=1, progress=False)))
    frame = log.to_frame(events="dict")
    types = frame[frame.direction == "server"]["type"].tolist()
    assert "session.started" in types, frame[frame.type == "error"]["event"].tolist()
    for ev in frame[frame.direction == "server"]["event"]:
        L.validate_server_event(ev, strict=False)  # the service may add keys newer than the SDK
    assert "session.input_transcript.delta" in types and "session.closed" in types
    rows = live_turn_rows(frame, "in-session")
    assert rows and wer(MANIFEST["short"]["reference"], " ".join(r["transcript"] for r in rows)) <= 0.35
    assert Path(tmp_path / "events.jsonl").exists()
