"""Conformance of rtlab's emulator over a real socket, with the official openai SDK as the client.

Every server event received is parsed from the raw frame and validated against the SDK's pydantic model for its
type (the SDK's own ``recv()`` does not validate). The bundled three-turn clip (monologue.wav) is sent as fast as
possible in 80 ms chunks, followed by trailing silence.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections import Counter
from pathlib import Path

import jiwer
import numpy as np
import openai
import pytest
import soundfile as sf
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

import rtlab.emulator as emulator
from rtlab.emulator.validation import validate_server_event
from rtlab.paths import data_dir

KEY = "test-key-123"
CHUNK_MS = 80
TIMEOUT_S = 30


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def server():
    with emulator.start(api_key=KEY, seed=7) as handle:
        yield handle


@pytest.fixture(scope="module")
def azure_server():
    with emulator.start(profile="azure", seed=7) as handle:
        yield handle


def _clip(name: str) -> tuple[np.ndarray, list[dict]]:
    pcm, sr = sf.read(data_dir() / "clips" / f"{name}.wav", dtype="int16")
    assert sr == 24000
    manifest = json.loads(Path(data_dir() / "manifest.json").read_text())
    return pcm, manifest["clips"][name]["utterances"]


@pytest.fixture(scope="module")
def monologue():
    pcm, utterances = _clip("monologue")
    assert len(utterances) == 3
    return np.concatenate([pcm, np.zeros(24000 * 3 // 2, np.int16)]), utterances


@pytest.fixture(scope="module")
def short():
    pcm, utterances = _clip("short")
    return np.concatenate([pcm, np.zeros(24000, np.int16)]), utterances


# ------------------------------------------------------------------------------------------------ helpers
class Conn:
    """An SDK connection that records every server event, validated against the SDK models."""

    def __init__(self, conn, shape: str):
        self.conn = conn
        self.shape = shape
        self.events: list[dict] = []

    async def send(self, event: dict) -> None:
        await self.conn.send(event)

    async def send_raw(self, text: str) -> None:
        await self.conn.send_raw(text)

    async def recv(self) -> dict:
        raw = await asyncio.wait_for(self.conn.recv_bytes(), TIMEOUT_S)
        event = json.loads(raw)
        validate_server_event(event, self.shape)
        self.events.append(event)
        return event

    async def until(self, pred) -> dict:
        while True:
            event = await self.recv()
            if pred(event):
                return event

    async def until_type(self, etype: str) -> dict:
        return await self.until(lambda e: e["type"] == etype)

    async def append_audio(self, pcm: np.ndarray, chunk_ms: int = CHUNK_MS) -> None:
        step = 24 * chunk_ms
        for i in range(0, len(pcm), step):
            await self.send({"type": "input_audio_buffer.append",
                             "audio": base64.b64encode(pcm[i: i + step].astype("<i2").tobytes()).decode()})

    def of(self, etype: str) -> list[dict]:
        return [e for e in self.events if e["type"] == etype]

    def index(self, pred) -> int:
        return next(i for i, e in enumerate(self.events) if pred(e))


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def _wer(refs: list[str], hyps: list[str]) -> float:
    return jiwer.wer([_norm(r) for r in refs], [_norm(h) for h in hyps])


async def _wait_turns(c: Conn, n: int, *, realtime: bool) -> None:
    """Receive until n transcriptions completed and (realtime) every response is done, after n turns."""
    while True:
        await c.recv()
        done = len(c.of("conversation.item.input_audio_transcription.completed")) + len(
            c.of("conversation.item.input_audio_transcription.failed"))
        if done < n:
            continue
        if not realtime:
            return
        created, finished = c.of("response.created"), c.of("response.done")
        if len(created) >= n and len(created) == len(finished):
            return


def _check_turns(c: Conn, utterances: list[dict], *, streaming: bool) -> float:
    """One started/stopped/committed/completed per utterance, in audio time; deltas add up; returns the WER."""
    started = c.of("input_audio_buffer.speech_started")
    stopped = c.of("input_audio_buffer.speech_stopped")
    committed = c.of("input_audio_buffer.committed")
    completed = c.of("conversation.item.input_audio_transcription.completed")
    assert len(started) == len(stopped) == len(committed) == len(completed) == len(utterances)
    added = "conversation.item.added" if c.shape == "ga" else "conversation.item.created"
    updated = [e for e in c.events if e["type"].endswith("session.updated")][-1]["session"]
    td = (updated.get("audio", {}).get("input", {}) if c.shape == "ga" else updated)["turn_detection"]
    silence = td["silence_duration_ms"]
    for u, s, e, cm in zip(utterances, started, stopped, committed, strict=False):
        # audio_start_ms includes the 300 ms prefix padding; audio_end_ms the silence window (documented).
        assert u["start_s"] * 1000 - 400 <= s["audio_start_ms"] <= u["start_s"] * 1000 + 100
        assert u["end_s"] * 1000 - 100 + silence <= e["audio_end_ms"] <= u["end_s"] * 1000 + 200 + silence
        assert s["item_id"] == e["item_id"] == cm["item_id"]
        # previous_item_id: the last item of the conversation when the turn was committed.
        at = c.events.index(cm)
        before = [ev["item"]["id"] for ev in c.events[:at] if ev["type"] == added]
        assert cm["previous_item_id"] == (before[-1] if before else None)
    for done in completed:
        item = done["item_id"]
        deltas = [e for e in c.of("conversation.item.input_audio_transcription.delta") if e["item_id"] == item]
        assert "".join(d["delta"] for d in deltas) == done["transcript"]
        assert done["usage"]["type"] in ("tokens", "duration")
        stop_at = c.index(lambda e, item=item: e["type"] == "input_audio_buffer.speech_stopped"
                          and e["item_id"] == item)
        first = c.index(lambda e, item=item: e["type"] == "conversation.item.input_audio_transcription.delta"
                        and e["item_id"] == item)
        if streaming:
            assert first < stop_at, "a streaming model sends its first delta while the user still speaks"
        else:
            assert first > stop_at, "a batch model sends its deltas after the commit"
    # Transcriptions are asynchronous: a turn's completed may arrive after the next one's; pair them by item.
    by_item = {d["item_id"]: d["transcript"] for d in completed}
    return _wer([u["text"] for u in utterances], [by_item.get(cm["item_id"], "") for cm in committed])


def _check_responses(c: Conn) -> None:
    created = [e["response"]["id"] for e in c.of("response.created")]
    done = {e["response"]["id"]: e["response"] for e in c.of("response.done")}
    assert created and set(created) == set(done), "every response.created is closed by a response.done"
    for resp in done.values():
        assert resp["status"] in ("completed", "cancelled")
        if resp["status"] == "completed":
            assert resp["usage"]["output_tokens"] > 0


def _audio_bytes(c: Conn, delta_type: str) -> int:
    return sum(len(base64.b64decode(e["delta"])) for e in c.of(delta_type))


def _client(handle, **kw) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=handle.url + kw.pop("prefix", "/v1"), api_key=kw.pop("key", KEY), **kw)


# ------------------------------------------------------------------------------------------------ GA
@pytest.mark.parametrize("model,streaming", [("gpt-realtime-whisper", True), ("gpt-4o-transcribe", False)])
def test_ga_realtime_three_turns_with_in_session_transcription(server, monologue, model, streaming):
    pcm, utterances = monologue

    async def main():
        async with _client(server).realtime.connect(model="gpt-realtime") as conn:
            c = Conn(conn, "ga")
            created = await c.until_type("session.created")
            assert created["session"]["type"] == "realtime"
            await c.send({"type": "session.update", "session": {
                "type": "realtime", "audio": {"input": {"transcription": {"model": model}}}}})
            updated = await c.until(lambda e: e["type"] in ("session.updated", "error"))
            assert updated["type"] == "session.updated"
            applied = updated["session"]["audio"]["input"]
            assert applied["transcription"]["model"] == model
            # The openai profile shows the 200 ms silence default the service shows (reported trace).
            assert applied["turn_detection"] == {**applied["turn_detection"], "type": "server_vad", "threshold": 0.5,
                                                 "prefix_padding_ms": 300, "silence_duration_ms": 200}
            await c.append_audio(pcm)
            await _wait_turns(c, 3, realtime=True)
            return c

    c = asyncio.run(main())
    wer = _check_turns(c, utterances, streaming=streaming)
    print(f"\nWER {model} in-session on monologue: {wer:.3f}")
    assert wer < 0.4
    _check_responses(c)
    assert _audio_bytes(c, "response.output_audio.delta") > 0
    assert not c.of("error")
    # GA conversation items: added then done, for the user turns and the assistant answers.
    assert len(c.of("conversation.item.added")) == len(c.of("conversation.item.done"))


@pytest.mark.parametrize("model,streaming,usage", [("gpt-4o-mini-transcribe", False, "tokens"),
                                                   ("gpt-4o-transcribe", False, "tokens"),
                                                   ("whisper-1", False, "duration")])
def test_ga_transcription_session_three_turns(server, monologue, model, streaming, usage):
    pcm, utterances = monologue

    async def main():
        client = _client(server)
        async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
            c = Conn(conn, "ga")
            created = await c.until_type("session.created")
            assert created["session"]["type"] == "transcription"
            await c.send({"type": "session.update", "session": {
                "type": "transcription", "include": ["item.input_audio_transcription.logprobs"],
                "audio": {"input": {"transcription": {"model": model, "language": "en"}}}}})
            assert (await c.until_type("session.updated"))["session"]["include"] == [
                "item.input_audio_transcription.logprobs"]
            await c.append_audio(pcm)
            await _wait_turns(c, 3, realtime=False)
            return c

    c = asyncio.run(main())
    wer = _check_turns(c, utterances, streaming=streaming)
    print(f"\nWER {model} transcription session on monologue: {wer:.3f}")
    assert wer < 0.4
    for done in c.of("conversation.item.input_audio_transcription.completed"):
        assert done["usage"]["type"] == usage
        if model.startswith("gpt-4o"):  # logprobs are documented for gpt-4o(-mini)-transcribe only
            assert done["logprobs"] and all(lp["logprob"] <= 0 for lp in done["logprobs"])
        else:
            assert "logprobs" not in done
    assert not c.of("response.created")
    assert not c.of("error")


def test_ga_transcription_session_realtime_whisper_client_commits(server, monologue):
    """gpt-realtime-whisper in a transcription session: no VAD; the client commits; deltas stream before it."""
    pcm, utterances = monologue

    async def main():
        async with _client(server).realtime.connect(extra_query={"intent": "transcription"}) as conn:
            c = Conn(conn, "ga")
            await c.until_type("session.created")
            await c.send({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
                "transcription": {"model": "gpt-realtime-whisper"}, "turn_detection": None}}}})
            updated = await c.until_type("session.updated")
            assert updated["session"]["audio"]["input"]["turn_detection"] is None
            cuts = [0] + [int((u["end_s"] + 0.6) * 24000) for u in utterances]
            for a, b in zip(cuts, cuts[1:], strict=False):
                await c.append_audio(pcm[a:b])
                await c.send({"type": "input_audio_buffer.commit"})
            await _wait_turns(c, 3, realtime=False)
            return c

    c = asyncio.run(main())
    assert not c.of("input_audio_buffer.speech_started")
    completed = c.of("conversation.item.input_audio_transcription.completed")
    assert [d["usage"]["type"] for d in completed] == ["duration"] * 3
    for done in completed:
        item = done["item_id"]
        deltas = [e for e in c.of("conversation.item.input_audio_transcription.delta") if e["item_id"] == item]
        assert "".join(d["delta"] for d in deltas) == done["transcript"]
        commit_at = c.index(lambda e, item=item: e["type"] == "input_audio_buffer.committed" and e["item_id"] == item)
        assert c.index(lambda e, item=item: e.get("item_id") == item and e["type"].endswith("delta")) < commit_at
    wer = _wer([u["text"] for u in utterances], [d["transcript"] for d in completed])
    print(f"\nWER gpt-realtime-whisper (client commits) on monologue: {wer:.3f}")
    assert wer < 0.4


def test_out_of_band_response_cancel_and_metadata(server, short):
    pcm, utterances = short

    async def main():
        async with _client(server).realtime.connect(model="gpt-realtime") as conn:
            c = Conn(conn, "ga")
            await c.until_type("session.created")
            await c.send({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
                "transcription": {"model": "gpt-4o-transcribe"},
                "turn_detection": {"type": "server_vad", "create_response": False}}}}})
            await c.until_type("session.updated")
            await c.append_audio(pcm)
            done = await c.until_type("conversation.item.input_audio_transcription.completed")
            await c.send({"type": "response.create", "response": {
                "conversation": "none", "output_modalities": ["text"], "metadata": {"source": "oob"},
                "instructions": "Transcribe the last user turn."}})
            oob = await c.until_type("response.done")
            # A default-conversation response, then a client cancel.
            await c.send({"type": "response.create"})
            await c.until_type("response.created")
            await c.send({"type": "response.cancel"})
            cancelled = await c.until_type("response.done")
            await c.send({"type": "response.cancel"})
            err = await c.until_type("error")
            return c, done, oob, cancelled, err

    c, done, oob, cancelled, err = asyncio.run(main())
    assert oob["response"]["metadata"] == {"source": "oob"}
    assert oob["response"]["conversation_id"] is None
    assert oob["response"]["output"][0]["content"][0]["text"] == done["transcript"]
    assert c.of("response.output_text.done")[0]["text"] == done["transcript"]
    assert cancelled["response"]["status"] == "cancelled"
    assert cancelled["response"]["status_details"]["reason"] == "client_cancelled"
    assert err["error"]["code"] == "response_cancel_not_active"
    _check_responses(c)


# ------------------------------------------------------------------------------------------------ errors
def _big_append() -> str:
    return json.dumps({"type": "input_audio_buffer.append",
                       "audio": base64.b64encode(b"\0" * (15 * 1024 * 1024 + 2)).decode()})


ERROR_CASES = [
    ("invalid json", "{not json", "invalid_json", None),
    ("unknown event", json.dumps({"type": "input_audio_buffer.explode"}), "invalid_value", "type"),
    ("invalid base64", json.dumps({"type": "input_audio_buffer.append", "audio": "%%%not-base64%%%"}),
     "invalid_value", "audio"),
    ("commit < 100 ms", json.dumps({"type": "input_audio_buffer.commit"}), "input_audio_buffer_commit_empty", None),
    ("append > 15 MiB", _big_append(), "invalid_value", "audio"),
    ("pcm rate", json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {
        "input": {"format": {"type": "audio/pcm", "rate": 16000}}}}}), "invalid_value",
     "session.audio.input.format.rate"),
    ("unknown parameter", json.dumps({"type": "session.update", "session": {
        "type": "realtime", "input_audio_format": "pcm16"}}), "unknown_parameter", "session.input_audio_format"),
    ("transcription update on a realtime session", json.dumps({"type": "session.update", "session": {
        "type": "transcription", "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}}}}),
     "invalid_parameter", "session.type"),
]


def test_error_rules_answer_with_error_events_and_keep_the_socket_open(server):
    async def main():
        answers = []
        async with _client(server).realtime.connect(model="gpt-realtime") as conn:
            c = Conn(conn, "ga")
            await c.until_type("session.created")
            for name, raw, code, param in ERROR_CASES:
                await c.send_raw(raw)
                err = await c.until_type("error")
                # The socket stays open: a valid event right after gets its answer.
                await c.send({"type": "input_audio_buffer.clear"})
                await c.until_type("input_audio_buffer.cleared")
                answers.append((name, err, code, param))
        return answers

    answers = asyncio.run(main())
    for name, err, code, param in answers:
        assert err["error"]["code"] == code, name
        assert err["error"]["param"] == param, name
        assert err["error"]["type"] == "invalid_request_error", name
        assert err["error"]["message"], name
    messages = {name: err["error"]["message"] for name, err, _, _ in answers}
    assert messages["transcription update on a realtime session"] == (
        "Passing a transcription session update event to a realtime session is not allowed.")


def test_server_vad_with_realtime_whisper_in_transcription_session_is_refused(server):
    async def main():
        async with _client(server).realtime.connect(extra_query={"intent": "transcription"}) as conn:
            c = Conn(conn, "ga")
            await c.until_type("session.created")
            await c.send({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
                "transcription": {"model": "gpt-realtime-whisper"},
                "turn_detection": {"type": "server_vad"}}}}})
            err = await c.until_type("error")
            await c.send({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
                "transcription": {"model": "gpt-realtime-whisper"}, "turn_detection": None}}}})
            ok = await c.until_type("session.updated")
            return err, ok

    err, ok = asyncio.run(main())
    assert err["error"]["code"] == "invalid_value"
    assert err["error"]["param"] == "session.audio.input.turn_detection"
    assert err["error"]["message"] == "Turn detection is not supported for this transcription model."  # reported text
    assert ok["session"]["audio"]["input"]["transcription"]["model"] == "gpt-realtime-whisper"


def test_wrong_or_missing_key_gets_401(server):
    async def sdk(key):
        async with _client(server, key=key).realtime.connect(model="gpt-realtime") as conn:
            await conn.recv_bytes()

    async def raw(headers):
        # The SDK refuses to connect without a key, so a bare websockets client sends the keyless handshake.
        async with ws_connect(server.ws_url + "/v1/realtime?model=gpt-realtime", additional_headers=headers):
            pass

    attempts = [sdk("wrong-key"), raw({}), raw({"Authorization": "Bearer "}), raw({"api-key": "nope"})]
    for attempt in attempts:
        with pytest.raises(InvalidStatus) as info:
            asyncio.run(attempt)
        assert info.value.response.status_code == 401
        assert KEY.encode() not in bytes(info.value.response.body)

    async def right_key_in_api_key_header():
        async with ws_connect(server.ws_url + "/v1/realtime?model=gpt-realtime",
                              additional_headers={"api-key": KEY}) as ws:
            return json.loads(await ws.recv())

    assert asyncio.run(right_key_in_api_key_header())["type"] == "session.created"


def test_any_non_empty_key_is_accepted_without_api_key(azure_server):
    async def main():
        client = openai.AsyncOpenAI(base_url=azure_server.url + "/openai/v1", api_key="anything")
        async with client.realtime.connect(model="gpt-realtime") as conn:
            return json.loads(await conn.recv_bytes())

    assert asyncio.run(main())["type"] == "session.created"


# ------------------------------------------------------------------------------------------------ beta, Azure
def test_openai_refuses_the_retired_beta_interface(server):
    """OpenAI retired OpenAI-Beta: realtime=v1: error beta_api_shape_disabled, then close 4000 (reported)."""
    from websockets.exceptions import ConnectionClosedError

    async def main():
        client = _client(server, websocket_base_url=server.ws_url + "/v1")
        async with client.beta.realtime.connect(model="gpt-realtime") as conn:
            c = Conn(conn, "beta")
            err = await c.recv()
            with pytest.raises(ConnectionClosedError) as info:
                await c.recv()
            return err, info.value

    err, closed = asyncio.run(main())
    assert err["type"] == "error" and err["error"]["code"] == "beta_api_shape_disabled"
    assert err["error"]["message"] == ("The Realtime Beta API is no longer supported. Please use /v1/realtime for the "
                                       "GA API.")
    assert closed.rcvd.code == 4000


def test_beta_client_realtime_session_on_azure_profile(azure_server, short):
    """The beta dialect (Azure's preview, deprecated) still runs where the profile accepts it."""
    pcm, utterances = short
    server = azure_server

    async def main():
        # The SDK's beta client forces wss:// unless websocket_base_url is given (checked by experiment).
        client = _client(server, websocket_base_url=server.ws_url + "/v1")
        async with client.beta.realtime.connect(model="gpt-realtime") as conn:
            c = Conn(conn, "beta")
            created = await c.until_type("session.created")
            assert "input_audio_format" in created["session"]
            await c.send({"type": "session.update", "session": {
                "input_audio_transcription": {"model": "gpt-4o-transcribe"}, "modalities": ["audio", "text"]}})
            updated = await c.until(lambda e: e["type"] in ("session.updated", "error"))
            await c.append_audio(pcm)
            await _wait_turns(c, 1, realtime=True)
            return c, updated

    c, updated = asyncio.run(main())
    assert updated["type"] == "session.updated", updated
    assert updated["session"]["input_audio_transcription"]["model"] == "gpt-4o-transcribe"
    assert updated["session"]["turn_detection"]["silence_duration_ms"] == 500  # the azure profile's default
    names = Counter(e["type"] for e in c.events)
    assert names["conversation.item.created"] >= 2 and "conversation.item.added" not in names
    assert names["response.audio.delta"] > 0 and "response.output_audio.delta" not in names
    assert names["response.audio_transcript.done"] >= 1
    wer = _wer([u["text"] for u in utterances],
               [d["transcript"] for d in c.of("conversation.item.input_audio_transcription.completed")])
    assert wer < 0.5
    _check_responses(c)


def test_azure_preview_transcription_session(azure_server, monologue):
    pcm, utterances = monologue

    async def main():
        client = openai.AsyncAzureOpenAI(azure_endpoint=azure_server.url, api_version="2025-04-01-preview",
                                         api_key="azure-key", websocket_base_url=azure_server.ws_url + "/openai")
        async with client.beta.realtime.connect(model="gpt-4o-transcribe",
                                                extra_query={"intent": "transcription"}) as conn:
            c = Conn(conn, "beta")
            created = await c.recv()
            assert created["type"] == "transcription_session.created"
            await c.send({"type": "transcription_session.update", "session": {
                "input_audio_format": "pcm16",
                "input_audio_transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}})
            updated = await c.until(lambda e: e["type"] in ("transcription_session.updated", "error"))
            assert updated["type"] == "transcription_session.updated", updated
            await c.append_audio(pcm)
            await _wait_turns(c, 3, realtime=False)
            return c

    c = asyncio.run(main())
    wer = _check_turns(c, utterances, streaming=False)
    print(f"\nWER gpt-4o-transcribe Azure preview transcription session: {wer:.3f}")
    assert wer < 0.4
    assert len(c.of("conversation.item.created")) == 3


def test_azure_preview_realtime_session(azure_server, short):
    pcm, _ = short

    async def main():
        client = openai.AsyncAzureOpenAI(azure_endpoint=azure_server.url, api_version="2025-04-01-preview",
                                         api_key="azure-key", websocket_base_url=azure_server.ws_url + "/openai")
        async with client.beta.realtime.connect(model="gpt-realtime") as conn:
            c = Conn(conn, "beta")
            await c.until_type("session.created")
            await c.send({"type": "session.update", "session": {
                "input_audio_transcription": {"model": "whisper-1"}}})
            await c.until_type("session.updated")
            await c.append_audio(pcm)
            await _wait_turns(c, 1, realtime=True)
            return c

    c = asyncio.run(main())
    assert c.of("conversation.item.input_audio_transcription.completed")[0]["usage"]["type"] == "duration"
    assert _audio_bytes(c, "response.audio.delta") > 0
    _check_responses(c)


def test_azure_ga_v1_path_and_deployment_rules(azure_server, short):
    pcm, _ = short

    async def main():
        client = openai.AsyncOpenAI(base_url=azure_server.url + "/openai/v1", api_key="azure-key")
        async with client.realtime.connect(model="gpt-realtime") as conn:
            c = Conn(conn, "ga")
            await c.until_type("session.created")
            # A transcription model that is not a deployment of the resource: accepted, then every turn fails.
            await c.send({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
                "transcription": {"model": "gpt-transcribe"}}}}})
            await c.until_type("session.updated")
            await c.append_audio(pcm)
            failed = await c.until_type("conversation.item.input_audio_transcription.failed")
            await _wait_turns(c, 1, realtime=True)
            return c, failed

    c, failed = asyncio.run(main())
    assert failed["error"]["type"] == "server_error"
    assert not c.of("conversation.item.input_audio_transcription.completed")
    _check_responses(c)  # the voice session goes on


def test_azure_refuses_realtime_whisper_as_session_model(azure_server):
    async def main():
        client = openai.AsyncOpenAI(base_url=azure_server.url + "/openai/v1", api_key="azure-key")
        async with client.realtime.connect(model="gpt-realtime-whisper") as conn:
            await conn.recv_bytes()

    with pytest.raises(InvalidStatus) as info:
        asyncio.run(main())
    assert info.value.response.status_code == 400
    # The code as reported, misspelled (Microsoft Q&A answers/a/12820829).
    assert json.loads(bytes(info.value.response.body))["error"]["code"] == "OpperationNotSupported"


# ------------------------------------------------------------------------------------------------ seeds, start
def test_seed_makes_ids_and_outputs_reproducible(short):
    pcm, _ = short

    async def run(url):
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="k")
        async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
            c = Conn(conn, "ga")
            await c.until_type("session.created")
            await c.send({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
                "transcription": {"model": "gpt-4o-transcribe"}}}}})
            await c.append_audio(pcm)
            await _wait_turns(c, 1, realtime=False)
            return c.events

    def stable(events):  # expires_at is wall time: the only field that differs between two runs
        return [{**e, "session": {**e["session"], "expires_at": None}} if "session" in e else e for e in events]

    runs = []
    for _ in range(2):
        with emulator.start(seed=123) as handle:
            runs.append(stable(asyncio.run(run(handle.url))))
    assert runs[0] == runs[1]


def test_seeded_ids_do_not_depend_on_which_session_connected_first():
    """A voice session and a transcription sidecar connect at the same moment in a run, in either order; each
    still gets the same ids from the same seed (notebook outputs are compared by nbval)."""

    async def first_ids(url, order):
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="k")
        ids = {}
        for kind in order:
            extra = {"intent": "transcription"} if kind == "transcription" else {}
            async with client.realtime.connect(model="gpt-realtime", extra_query=extra) as conn:
                created = await conn.recv()
                ids[kind] = created.session.id if hasattr(created.session, "id") else created.event_id
                ids[kind + ":event"] = created.event_id
        return ids

    runs = []
    for order in (("realtime", "transcription"), ("transcription", "realtime")):
        with emulator.start(seed=5) as handle:
            runs.append(asyncio.run(first_ids(handle.url, order)))
    assert runs[0] == runs[1]
    assert runs[0]["realtime:event"] != runs[0]["transcription:event"]


def test_start_handle_and_stop():
    handle = emulator.start()
    assert handle.url.startswith("http://127.0.0.1:") and handle.port > 0
    assert handle.ws_url == handle.url.replace("http://", "ws://")
    assert "running" in repr(handle)
    handle.stop()
    assert not handle.running
    handle.stop()  # idempotent


@pytest.mark.parametrize("extra", [["--seed", "1"], ["--workers", "2"]])
def test_rtlab_serve_prints_one_line_and_stops_on_sigterm(extra):
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "rtlab.cli", "serve", "--port", "0", "--api-key", "cli-key",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        match = re.fullmatch(r"rtlab emulator listening on (http://127\.0\.0\.1:(\d+))\n", line)
        assert match, line
        # Right after it: the profile's rows counted by evidence, and the timing.
        evidence = proc.stdout.readline()
        assert re.fullmatch(r"profile openai: \d+ documented, \d+ reported, \d+ observed, \d+ assumed "
                            r"\(timing: modelled\)\n", evidence), evidence
        url = match.group(1)

        async def hello(key):
            async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=key).realtime.connect(
                    model="gpt-realtime") as conn:
                return json.loads(await conn.recv_bytes())["type"]

        assert asyncio.run(hello("cli-key")) == "session.created"
        with pytest.raises(InvalidStatus):
            asyncio.run(hello("other"))
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert out == ""  # exactly two lines in all
    assert "cli-key" not in err


def test_rtlab_serve_bad_arguments_exit_with_one_line():
    import subprocess
    import sys

    for args, start in ((["--profile", "/nonexistent/p.json"], "rtlab serve: profile"),
                        (["--workers", "2", "--seed", "3"], "rtlab serve: --seed")):
        proc = subprocess.run([sys.executable, "-m", "rtlab.cli", "serve", *args],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2
        assert proc.stderr.startswith(start) and "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------------------------ fidelity (issue 10)
def test_voice_session_order_barge_in_truncate_and_voice_lock(server, monologue):
    """Modelled timing over a real socket: the response does not wait for the transcript, barge-in announces
    speech_started before the cancelled response's events, truncate is checked against the audio sent, and the
    voice is locked once audio went out."""
    pcm, utterances = monologue

    async def main():
        async with _client(server).realtime.connect(model="gpt-realtime") as conn:
            c = Conn(conn, "ga")
            await c.until_type("session.created")
            await c.send({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
                "transcription": {"model": "gpt-4o-transcribe"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}}}})
            await c.until_type("session.updated")
            await c.append_audio(pcm)
            await _wait_turns(c, 3, realtime=True)
            done = [e for e in c.of("response.done") if e["response"]["status"] == "completed"][-1]["response"]
            item = done["output"][0]["id"]
            await c.send({"type": "conversation.item.truncate", "item_id": item, "content_index": 0,
                          "audio_end_ms": 600_000})
            too_far = await c.until_type("error")
            await c.send({"type": "conversation.item.truncate", "item_id": item, "content_index": 0,
                          "audio_end_ms": 100})
            truncated = await c.until_type("conversation.item.truncated")
            await c.send({"type": "session.update", "session": {"type": "realtime", "audio": {"output": {
                "voice": "cedar"}}}})
            locked = await c.until_type("error")
            return c, too_far, truncated, locked

    c, too_far, truncated, locked = asyncio.run(main())
    for done in c.of("conversation.item.input_audio_transcription.completed"):
        committed = c.index(lambda e, i=done["item_id"]: e["type"] == "input_audio_buffer.committed"
                            and e["item_id"] == i)
        created = next(k for k, e in enumerate(c.events) if k > committed and e["type"] == "response.created")
        assert created < c.events.index(done)  # the response starts without waiting for the transcript
    assert c.of("rate_limits.updated")
    cancelled = [e for e in c.of("response.done") if e["response"]["status"] == "cancelled"]
    for e in cancelled:  # barge-in: the speech_started of the new turn comes first
        assert e["response"]["status_details"]["reason"] == "turn_detected"
        at = c.events.index(e)
        assert c.events[:at][-1]["type"] != "input_audio_buffer.committed"
        assert any(ev["type"] == "input_audio_buffer.speech_started" for ev in c.events[at - 8:at])
    assert (too_far["error"]["code"], too_far["error"]["param"]) == ("invalid_value", "audio_end_ms")
    assert truncated["audio_end_ms"] == 100
    assert locked["error"]["code"] == "cannot_update_voice"
    _check_responses(c)


def test_diarization_gives_two_speakers_on_the_dialogue(server):
    pcm, utterances = _clip("dialogue")
    pcm = np.concatenate([pcm, np.zeros(24000, np.int16)])

    async def main():
        async with _client(server).realtime.connect(extra_query={"intent": "transcription"}) as conn:
            c = Conn(conn, "ga")
            await c.until_type("session.created")
            await c.send({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
                "transcription": {"model": "gpt-4o-transcribe-diarize"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}}}})
            await c.until_type("session.updated")
            await c.append_audio(pcm)
            await _wait_turns(c, len(utterances), realtime=False)
            return c

    c = asyncio.run(main())
    segments = c.of("conversation.item.input_audio_transcription.segment")
    assert len(segments) == len(utterances) == 4
    assert [s["speaker"] for s in segments] == [u["speaker"] for u in utterances]  # A, B, A, B


def test_rules_agree_over_a_socket(server):
    """A few rows of rtlab.protocol.rules over a real socket with the SDK: the handshake row and two update rows
    get the row's verdict (the sans-I/O test in test_emulator_fidelity.py walks every row)."""
    from rtlab.config import SessionConfig, render, violations
    from rtlab.protocol.rules import rule

    async def handshake():
        async with _client(server).realtime.connect(model="gpt-live-1") as conn:
            await conn.recv_bytes()

    with pytest.raises(InvalidStatus) as info:
        asyncio.run(handshake())
    assert json.loads(bytes(info.value.response.body))["error"]["code"] == rule("live-model-as-realtime-model").server.code

    cases = [("delay-unsupported", SessionConfig.realtime(transcription="gpt-4o-transcribe", delay="low")),
             ("prompt-unsupported", SessionConfig.realtime(transcription="gpt-realtime-whisper", prompt="x"))]

    async def updates():
        answers = []
        async with _client(server).realtime.connect(model="gpt-realtime") as conn:
            c = Conn(conn, "ga")
            await c.until_type("session.created")
            for rule_id, cfg in cases:
                assert rule_id in [v.rule for v in violations(cfg, "openai-ga")]
                await c.send(render(cfg, "openai-ga", validate=False))
                answers.append((rule_id, await c.until_type("error")))
        return answers

    for rule_id, err in asyncio.run(updates()):
        row = rule(rule_id).server
        assert (err["error"]["code"], err["error"]["param"]) == (row.code, row.param)
