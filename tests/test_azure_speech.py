"""Azure Speech: the USP codec and facts, the emulated Speech service driven by the real Speech SDK over a real
socket, the ConversationTranscriber leg on a real run, its turn rows, and the target's secrets."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import pickle
import threading
import time
from http import HTTPStatus
from typing import Any

import numpy as np
import pytest

speechsdk = pytest.importorskip("azure.cognitiveservices.speech")

from websockets.asyncio.client import connect  # noqa: E402
from websockets.asyncio.server import serve  # noqa: E402
from websockets.datastructures import Headers  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402
from websockets.http11 import Response  # noqa: E402

from rtlab.analysis.azure_speech import azure_speech_turn_rows  # noqa: E402
from rtlab.analysis.metrics import wer  # noqa: E402
from rtlab.audio import load  # noqa: E402
from rtlab.data import clip_path, load_manifest  # noqa: E402
from rtlab.emulator.adapter import Close, serve_session  # noqa: E402
from rtlab.emulator.server import HttpRefusal  # noqa: E402
from rtlab.emulator.usp import SpeechSession, UspRoute, display_text, route_usp, select_subprotocol  # noqa: E402
from rtlab.engines import default_engines  # noqa: E402
from rtlab.engines.speakers import warm_up  # noqa: E402
from rtlab.errors import TargetError  # noqa: E402
from rtlab.protocol import usp as U  # noqa: E402
from rtlab.protocol.evidence import Evidence  # noqa: E402
from rtlab.runs import RunOptions, arun_legs  # noqa: E402
from rtlab.runs.azure_speech import AzureSpeechLeg, AzureSpeechTarget  # noqa: E402
from rtlab.secrets import install_redaction  # noqa: E402

RID = "0123456789abcdef0123456789abcdef"
KEY = "0123456789abcdef" * 2 + "feedbeef"  # Azure-like 40 hex digits: must never show
MANIFEST = load_manifest()["clips"]
CONVERSATION = "/speech/universal/v2?language=en-US"
RECOGNITION = "/speech/recognition/conversation/cognitiveservices/v1?language=en-US"


def riff(rate: int = 16000, channels: int = 1, bits: int = 16) -> bytes:
    """The streaming RIFF header the SDK sends first (sizes zero)."""
    block = channels * bits // 8
    fmt = (b"fmt " + (16).to_bytes(4, "little") + (1).to_bytes(2, "little") + channels.to_bytes(2, "little")
           + rate.to_bytes(4, "little") + (rate * block).to_bytes(4, "little") + block.to_bytes(2, "little")
           + bits.to_bytes(2, "little"))
    return b"RIFF" + bytes(4) + b"WAVE" + fmt + b"data" + bytes(4)


def pcm16k(name: str) -> bytes:
    return np.asarray(load(clip_path(name), sample_rate=16000).samples).tobytes()


def frames_of(out: list) -> list[tuple[str, dict | None, str | None]]:
    """(path, json body or None, request id) of each text frame a session returned."""
    result = []
    for o in out:
        if isinstance(o, str):
            m = U.parse_message(o)
            result.append((m.path, json.loads(m.body) if m.body else None, m.request_id))
    return result


@pytest.fixture(scope="module")
def engines():
    return default_engines()


# ==============================================================================================================
# The protocol as data, and its codec
# ==============================================================================================================
class TestProtocol:
    def test_every_fact_carries_evidence(self):
        rows = [*U.ENDPOINTS.values(), *U.MESSAGES.values(), *U.VIOLATIONS.values(), *U.HANDSHAKE.values()]
        assert all(isinstance(r.evidence, Evidence) for r in rows)
        assert all(isinstance(e, Evidence) for e in [*U.HEADERS.values(), *U.SDK_NEEDS.values(),
                                                     *U.QUERY_PARAMETERS.values(), *U.SERVICE_BEHAVIOUR.values()])
        assert any(e.kind == "assumed" for e in U.SERVICE_BEHAVIOUR.values())  # assumptions are marked as such
        assert U.ENDPOINTS["/speech/universal/v2"].recognizer == "ConversationTranscriber"
        assert {"turn.start", "speech.hypothesis", "speech.phrase", "turn.end"} <= U.SERVICE_MESSAGES
        assert U.CLIENT_MESSAGES == {"speech.config", "speech.context", "audio", "telemetry"}

    def test_text_and_binary_messages_round_trip(self):
        text = U.encode_text("speech.phrase", {"Offset": 1, "DisplayText": "Hi."}, request_id=RID)
        m = U.parse_message(text)
        assert (m.path, m.request_id, m.json(), m.binary) == ("speech.phrase", RID, {"Offset": 1, "DisplayText": "Hi."},
                                                              False)
        assert text.split("\r\n\r\n")[0].splitlines()[0] == "Path:speech.phrase"
        data = U.encode_binary("audio", b"\x01\x02", request_id=RID, content_type="audio/x-wav")
        assert int.from_bytes(data[:2], "big") == data.index(b"\x01\x02") - 2  # 2-byte big-endian header length
        m = U.parse_message(data)
        assert (m.path, m.body, m.binary, m.headers["content-type"]) == ("audio", b"\x01\x02", True, "audio/x-wav")
        assert U.parse_message(U.encode_text("turn.end", None, request_id=RID)).body == ""

    @pytest.mark.parametrize("raw, key, code", [
        (b"\x00", "binary_header_size_prefix", 1007),
        (b"\x00\x40Path:audio", "binary_header_size", 1007),
        (b"\x00\x02\xff\xfe", "binary_header_utf8", 1007),
        ("", "text_no_data", 1007),
        ("Path:speech.config{}", "text_no_separator", 1007),
        ("X-RequestId:" + RID + "\r\n\r\n{}", "missing_header", 1002),
    ])
    def test_malformed_messages_get_the_documented_close(self, raw, key, code):
        with pytest.raises(U.UspProtocolError) as info:
            U.parse_message(raw)
        assert (info.value.key, info.value.close_code) == (key, code)
        assert info.value.reason.startswith(("Incorrect message format.", "Missing/Empty header."))

    def test_wave_header(self):
        fmt = U.parse_wave_header(riff(8000) + b"\x00\x00")
        assert (fmt.sample_rate, fmt.channels, fmt.subtype, fmt.header_bytes) == (8000, 1, "PCM_16", 44)
        with pytest.raises(U.UspProtocolError, match="RIFF"):
            U.parse_wave_header(b"\x00" * 44)

    def test_ticks_and_ids(self):
        assert U.ms_to_ticks(1.5) == 15_000 and U.ticks_to_ms(25_000_000) == 2500.0
        assert U.is_request_id(RID) and not U.is_request_id("0123-4567") and not U.is_request_id(None)
        assert U.guest_speaker_id(2) == "Guest-2"
        assert display_text("is it far from here") == "Is it far from here."
        assert display_text("") == ""


# ==============================================================================================================
# Handshake routing (pure)
# ==============================================================================================================
class TestRoute:
    def test_the_two_sdk_paths_are_served(self):
        ct = route_usp(CONVERSATION, {}, api_key=None)
        sr = route_usp(RECOGNITION, {}, api_key=None)
        assert isinstance(ct, UspRoute) and ct.conversation and ct.language == "en-US"
        assert isinstance(sr, UspRoute) and not sr.conversation

    def test_unknown_path_is_404(self):
        r = route_usp("/speech/translation/cognitiveservices/v1", {}, api_key=None)
        assert isinstance(r, HttpRefusal) and r.status == 404

    @pytest.mark.parametrize("headers, ok", [
        ({"Ocp-Apim-Subscription-Key": KEY}, True),
        ({"authorization": f"Bearer {KEY}"}, True),
        ({"Authorization": f"Bearer aad#/subscriptions/s/resourceGroups/g#{KEY}"}, True),
        ({}, False),
        ({"Ocp-Apim-Subscription-Key": "wrong"}, False),
        ({"Authorization": "Basic " + KEY}, False),
    ])
    def test_keys(self, headers, ok):
        r = route_usp(CONVERSATION, headers, api_key=KEY)
        assert isinstance(r, UspRoute) if ok else (isinstance(r, HttpRefusal) and r.status == 401)
        if not ok:
            assert KEY not in r.message and "subscription key" in r.message

    def test_without_a_key_anything_goes_like_a_container(self):
        assert isinstance(route_usp(CONVERSATION, {}, api_key=None), UspRoute)

    def test_other_languages_are_refused_with_the_reason(self):
        r = route_usp("/speech/universal/v2?language=de-DE", {}, api_key=None)
        assert isinstance(r, HttpRefusal) and r.status == 400 and "English only" in r.message

    def test_subprotocol_only_when_offered(self):
        assert select_subprotocol(None, ["USP"]) == "USP"
        assert select_subprotocol(None, []) is None
        assert select_subprotocol(None, ["realtime"]) is None


# ==============================================================================================================
# The session, sans I/O
# ==============================================================================================================
def _session(engines, path=CONVERSATION, **kw) -> SpeechSession:
    route = route_usp(path, {}, api_key=None)
    assert isinstance(route, UspRoute)
    s = SpeechSession(route, engines=engines, seed=7, **kw)
    assert s.start() == []
    return s


def _drive(s: SpeechSession, pcm: bytes, *, context: dict | None = None, step: int = 3200) -> list:
    out = s.receive(U.encode_text("speech.config", {"context": {"system": {"name": "test"}}}, request_id=None))
    if context is not None:
        out += s.receive(U.encode_text("speech.context", context, request_id=RID))
    out += s.receive(U.encode_binary("audio", riff(), request_id=RID, content_type="audio/x-wav"))
    for i in range(0, len(pcm), step):
        out += s.receive(U.encode_binary("audio", pcm[i:i + step], request_id=RID))
    out += s.receive(U.encode_binary("audio", b"", request_id=RID))
    return out


CT_CONTEXT = {"phraseDetection": {"mode": "Conversation", "language": "en-US",
                                  "speakerDiarization": {"mode": "Anonymous", "audioSessionId": "x"}}}


class TestSession:
    def test_a_dialogue_turn_speaks_the_protocol(self, engines):
        s = _session(engines)
        frames = frames_of(_drive(s, pcm16k("dialogue"), context=CT_CONTEXT))
        paths = [p for p, _, _ in frames]
        assert paths[0] == "turn.start" and paths[1] == "speech.startDetected"
        assert paths[-3:] == ["speech.endDetected", "speech.phrase", "turn.end"]
        assert all(rid == RID for _, _, rid in frames)  # every response echoes the request id
        phrases = [b for p, b, _ in frames if p == "speech.phrase" and b["RecognitionStatus"] == "Success"]
        assert [p["SpeakerId"] for p in phrases] == ["Guest-1", "Guest-2", "Guest-1", "Guest-2"]
        assert frames[-2][1]["RecognitionStatus"] == "EndOfDictation"
        refs = [u["text"] for u in MANIFEST["dialogue"]["utterances"]]
        assert wer(refs, [p["DisplayText"] for p in phrases]) <= 0.35
        # Offsets (100-ns ticks) sit on the true utterances.
        for phrase, u in zip(phrases, MANIFEST["dialogue"]["utterances"], strict=True):
            assert abs(phrase["Offset"] / 1e7 - u["start_s"]) < 0.35
            assert abs((phrase["Offset"] + phrase["Duration"]) / 1e7 - u["end_s"]) < 0.35
        assert len({b["Id"] for p, b, _ in frames if b and "Id" in b}) == sum(1 for _, b, _ in frames if b and "Id" in b)

    def test_hypotheses_are_cumulative_with_unknown_speakers(self, engines):
        s = _session(engines)
        frames = frames_of(_drive(s, pcm16k("short"), context=CT_CONTEXT))
        hyps = [b for p, b, _ in frames if p == "speech.hypothesis"]
        assert len(hyps) >= 2
        assert all(b["Text"].startswith(a["Text"]) for a, b in zip(hyps, hyps[1:], strict=False))
        assert {h["SpeakerId"] for h in hyps} == {U.SPEAKER_UNKNOWN}
        assert len({h["Offset"] for h in hyps}) == 1  # one phrase, one offset
        phrase = next(b for p, b, _ in frames if p == "speech.phrase")
        assert phrase["Offset"] == hyps[0]["Offset"]

    def test_intermediate_diarization_names_speakers_in_partials(self, engines):
        context = json.loads(json.dumps(CT_CONTEXT))
        context["phraseDetection"]["speakerDiarization"]["diarizeIntermediates"] = "True"
        frames = frames_of(_drive(_session(engines), pcm16k("dialogue"), context=context))
        named = [b["SpeakerId"] for p, b, _ in frames if p == "speech.hypothesis"]
        assert U.SPEAKER_UNKNOWN in named and "Guest-1" in named  # early partials unknown, later named

    def test_speech_recognizer_results_have_no_speaker_and_detailed_has_nbest(self, engines):
        context = {"phraseDetection": {"language": "en-US"}, "phraseOutput": {"format": "Detailed"}}
        frames = frames_of(_drive(_session(engines, RECOGNITION), pcm16k("short"), context=context))
        phrase = next(b for p, b, _ in frames if p == "speech.phrase")
        assert "SpeakerId" not in phrase and phrase["NBest"][0]["Lexical"] == phrase["NBest"][0]["ITN"]
        assert phrase["NBest"][0]["Display"] == phrase["DisplayText"]

    def test_single_shot_ends_the_turn_after_the_first_phrase(self, engines):
        s = _session(engines, "/speech/recognition/interactive/cognitiveservices/v1?language=en-US")
        frames = frames_of(_drive(s, pcm16k("monologue")))
        paths = [p for p, _, _ in frames]
        assert paths[-3:] == ["speech.endDetected", "speech.phrase", "turn.end"] and paths.count("turn.end") == 1
        assert sum(p == "speech.phrase" for p in paths) == 1  # later audio of the finished request is dropped
        silent = frames_of(_drive(_session(engines, "/speech/recognition/interactive/cognitiveservices/v1"),
                                  b"\x00\x00" * 8000))
        assert [b["RecognitionStatus"] for p, b, _ in silent if p == "speech.phrase"] == ["InitialSilenceTimeout"]

    def test_8khz_audio_is_accepted(self, engines):
        s = _session(engines)
        pcm = np.asarray(load(clip_path("short"), sample_rate=8000).samples).tobytes()
        s.receive(U.encode_text("speech.config", {"context": {}}, request_id=None))
        out = s.receive(U.encode_binary("audio", riff(8000) + pcm, request_id=RID))
        out += s.receive(U.encode_binary("audio", b"", request_id=RID))
        phrase = next(b for p, b, _ in frames_of(out) if p == "speech.phrase")
        assert phrase["RecognitionStatus"] == "Success" and phrase["DisplayText"]

    @pytest.mark.parametrize("first, code, reason", [
        ([U.encode_binary("audio", riff(), request_id=RID)], 1002, "speech.config must be sent before audio"),
        ([b"\x00\xffPath:audio"], 1007, "invalid header size"),
        (["Path:speech.config\r\n{}"], 1007, "no header separator"),
        ([U.encode_text("speech.config", {}, request_id=None), U.encode_text("speech.nonsense", {}, request_id=RID)],
         1002, "Unknown message path 'speech.nonsense'"),
        ([U.encode_text("speech.config", {}, request_id=None), U.encode_text("speech.context", {}, request_id="1-2")],
         1002, "no-dash UUID"),
        ([U.encode_text("speech.config", "not json", request_id=None)], 1007, "not a JSON object"),
        ([U.encode_text("speech.config", {}, request_id=None), U.encode_binary("audio", riff(44100), request_id=RID)],
         1007, "44100 Hz"),
        ([U.encode_text("speech.config", {}, request_id=None), U.encode_binary("audio", riff(16000, 2),
                                                                             request_id=RID)], 1007, "2 channel"),
        ([U.encode_text("speech.config", {}, request_id=None), U.encode_binary("audio", b"\x01" * 44,
                                                                             request_id=RID)], 1007, "RIFF"),
    ])
    def test_protocol_violations_close_with_the_service_code(self, engines, first, code, reason):
        s = _session(engines)
        out: list[Any] = []
        for message in first:
            out += s.receive(message)
        assert isinstance(out[-1], Close) and out[-1].code == code and reason in out[-1].reason
        assert s.receive(U.encode_text("speech.config", {}, request_id=None)) == []  # closed: nothing more
        s.close()

    def test_a_finished_request_id_cannot_be_reused(self, engines):
        s = _session(engines)
        _drive(s, b"\x00\x00" * 1600)
        out = s.receive(U.encode_binary("audio", riff(), request_id=RID))
        assert out == [Close(1002, "Invalid request. Reuse of request identifiers is not allowed.")]

    def test_silence_gives_a_turn_without_phrases(self, engines):
        frames = frames_of(_drive(_session(engines), b"\x00\x00" * 16000))
        assert [p for p, _, _ in frames] == ["turn.start", "speech.endDetected", "speech.phrase", "turn.end"]


# ==============================================================================================================
# The real Speech SDK against the emulated service, over a real socket
# ==============================================================================================================
class UspHarness:
    """A websockets server on 127.0.0.1:0 that serves SpeechSession through the emulator's adapter."""

    def __init__(self, engines, *, api_key: str | None = None) -> None:
        warm_up()  # as a server warms its engines before it listens: the first session should not pay for it
        self.engines = engines
        self.api_key = api_key
        self.handshakes: list[tuple[str, dict, str | None]] = []
        self.closes: list[tuple[int | None, str | None]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _process_request(self, connection, request):
        headers = {k: v for k, v in request.headers.raw_items()}
        self.handshakes.append((request.path, headers, None))
        route = route_usp(request.path, request.headers, api_key=self.api_key)
        if isinstance(route, HttpRefusal):
            return Response(route.status, HTTPStatus(route.status).phrase,
                            Headers([("Content-Type", "application/json")]), route.body())
        connection.usp_route = route
        return None

    async def _handler(self, ws):
        self.handshakes[-1] = (*self.handshakes[-1][:2], ws.subprotocol)
        await serve_session(ws, SpeechSession(ws.usp_route, engines=self.engines, seed=1))
        self.closes.append((ws.close_code, ws.close_reason))

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def main():
            self._stop = asyncio.Event()
            async with serve(self._handler, "127.0.0.1", 0, process_request=self._process_request,
                             select_subprotocol=select_subprotocol, compression=None) as server:
                self.port = server.sockets[0].getsockname()[1]
                self._ready.set()
                await self._stop.wait()

        self._loop.run_until_complete(main())

    @property
    def host(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture(scope="module")
def harness(engines):
    h = UspHarness(engines)
    yield h
    h.close()


def sdk_transcribe(host: str, pcm: bytes, *, recognizer: str = "conversation", key: str | None = None,
                   speed: float | None = None, chunk: int = 3200, timeout: float = 60) -> dict:
    """Run the SDK recognizer on 16 kHz PCM pushed at ``speed`` × real time (None: all at once)."""
    cfg = speechsdk.SpeechConfig(host=host, subscription=key) if key else speechsdk.SpeechConfig(host=host)
    cfg.speech_recognition_language = "en-US"
    stream = speechsdk.audio.PushAudioInputStream(
        speechsdk.audio.AudioStreamFormat(samples_per_second=16000, bits_per_sample=16, channels=1))
    audio = speechsdk.audio.AudioConfig(stream=stream)
    events: list[tuple[float, str, Any]] = []
    stopped = threading.Event()
    t0 = time.monotonic()

    def add(kind):
        return lambda evt: events.append((time.monotonic() - t0, kind, evt))

    if recognizer == "conversation":
        rec = speechsdk.transcription.ConversationTranscriber(speech_config=cfg, audio_config=audio)
        rec.transcribing.connect(add("partial"))
        rec.transcribed.connect(add("final"))
        start, stop = rec.start_transcribing_async, rec.stop_transcribing_async
    else:
        rec = speechsdk.SpeechRecognizer(speech_config=cfg, audio_config=audio)
        rec.recognizing.connect(add("partial"))
        rec.recognized.connect(add("final"))
        start, stop = rec.start_continuous_recognition_async, rec.stop_continuous_recognition_async
    rec.session_started.connect(add("session_started"))
    rec.session_stopped.connect(add("session_stopped"))
    rec.session_stopped.connect(lambda evt: stopped.set())
    rec.canceled.connect(add("canceled"))
    rec.canceled.connect(lambda evt: stopped.set() if evt.cancellation_details.reason ==
                         speechsdk.CancellationReason.Error else None)
    start().get()
    t_push = time.monotonic() - t0
    if speed is None:
        stream.write(pcm)
    else:
        for i in range(0, len(pcm), chunk):
            stream.write(pcm[i:i + chunk])
            time.sleep(max(0.0, t0 + t_push + (i + chunk) / 32000 / speed - time.monotonic()))
    t_pushed = time.monotonic() - t0
    stream.close()
    stopped.wait(timeout)
    stop().get()
    for signal in (rec.session_started, rec.session_stopped, rec.canceled):
        signal.disconnect_all()
    finals = [(t, e.result) for t, k, e in events if k == "final"
              and e.result.reason == speechsdk.ResultReason.RecognizedSpeech]
    return {"events": events, "t_push": t_push, "t_pushed": t_pushed, "finals": finals,
            "partials": [(t, e.result) for t, k, e in events if k == "partial"],
            "kinds": [k for _, k, _ in events]}


@pytest.mark.slow
class TestSdkAgainstTheEmulator:
    def test_conversation_transcriber_gets_partials_finals_and_two_speakers(self, harness):
        got = sdk_transcribe(harness.host, pcm16k("dialogue"), speed=4)
        assert got["kinds"][0] == "session_started" and "session_stopped" in got["kinds"]
        texts = [r.text for _, r in got["finals"]]
        assert [r.speaker_id for _, r in got["finals"]] == ["Guest-1", "Guest-2", "Guest-1", "Guest-2"]
        assert wer(MANIFEST["dialogue"]["reference"], " ".join(texts)) <= 0.35
        assert len(got["partials"]) >= 8 and all(r.speaker_id == "Unknown" for _, r in got["partials"])
        path, headers, subprotocol = harness.handshakes[-1]
        assert path.startswith("/speech/universal/v2?") and subprotocol == "USP"
        assert "X-ConnectionId" in headers and "Ocp-Apim-Subscription-Key" not in headers

    def test_partials_arrive_while_the_audio_is_pushed_in_real_time(self, harness):
        utterance = MANIFEST["monologue"]["utterances"][0]  # 2.3 s of speech from 0.5 s
        got = sdk_transcribe(harness.host, pcm16k("monologue")[:4 * 32000], speed=1.0)
        speech_end = got["t_push"] + utterance["end_s"]
        first_partial = got["partials"][0][0]
        assert first_partial < speech_end, (first_partial, speech_end)  # text during speech, not after it
        assert got["finals"] and got["finals"][0][0] - speech_end < 2.5  # the final soon after the end

    def test_speech_recognizer_works_on_its_path(self, harness):
        got = sdk_transcribe(harness.host, pcm16k("monologue"), recognizer="speech")
        assert harness.handshakes[-1][0].startswith("/speech/recognition/conversation/cognitiveservices/v1")
        assert len(got["finals"]) == 3 and "session_stopped" in got["kinds"]
        assert wer(MANIFEST["monologue"]["reference"], " ".join(r.text for _, r in got["finals"])) <= 0.35

    def test_recognize_once_gets_the_first_phrase(self, harness):
        cfg = speechsdk.SpeechConfig(host=harness.host)
        stream = speechsdk.audio.PushAudioInputStream(
            speechsdk.audio.AudioStreamFormat(samples_per_second=16000, bits_per_sample=16, channels=1))
        rec = speechsdk.SpeechRecognizer(speech_config=cfg, audio_config=speechsdk.audio.AudioConfig(stream=stream))
        stream.write(pcm16k("monologue"))
        result = rec.recognize_once_async().get()
        stream.close()
        assert harness.handshakes[-1][0].startswith("/speech/recognition/interactive/cognitiveservices/v1")
        assert result.reason == speechsdk.ResultReason.RecognizedSpeech
        first = MANIFEST["monologue"]["utterances"][0]["text"]
        assert wer(first, result.text) <= 0.35 and result.offset / 1e7 == pytest.approx(0.5, abs=0.35)

    def test_wer_over_the_bundled_clips(self, harness):
        refs, hyps = [], []
        for name, clip in MANIFEST.items():
            got = sdk_transcribe(harness.host, pcm16k(name))
            refs.append(clip["reference"])
            hyps.append(" ".join(r.text for _, r in got["finals"]))
        assert wer(refs, hyps) <= 0.35, list(zip(refs, hyps, strict=True))

    def test_bad_input_closes_that_connection_and_the_server_stays_up(self, harness):
        async def send(first: list) -> tuple[int | None, str | None]:
            async with connect(f"{harness.host}/speech/universal/v2", subprotocols=["USP"]) as ws:
                for m in first:
                    await ws.send(m)
                with pytest.raises(ConnectionClosed):
                    while True:
                        await asyncio.wait_for(ws.recv(), 10)
                return ws.close_code, ws.close_reason

        config = U.encode_text("speech.config", {}, request_id=None)
        assert asyncio.run(send([b"\x00"])) == (1007, U.VIOLATIONS["binary_header_size_prefix"].reason)
        assert asyncio.run(send([U.encode_binary("audio", riff(), request_id=RID)]))[0] == 1002
        code, reason = asyncio.run(send([config, "Path:bogus\r\nX-RequestId:" + RID + "\r\n\r\n{}"]))
        assert code == 1002 and "bogus" in reason

        async def refused(path: str) -> int:
            with pytest.raises(InvalidStatus) as info:
                async with connect(f"{harness.host}{path}", subprotocols=["USP"]):
                    pass
            return info.value.response.status_code

        assert asyncio.run(refused("/speech/nowhere")) == 404
        got = sdk_transcribe(harness.host, pcm16k("short"))  # still serving
        assert got["finals"]

    def test_keys_are_checked_and_a_refusal_reaches_the_sdk_as_canceled(self, engines):
        h = UspHarness(engines, api_key=KEY)
        try:
            good = sdk_transcribe(h.host, pcm16k("short"), key=KEY)
            assert good["finals"] and h.handshakes[-1][1]["Ocp-Apim-Subscription-Key"] == KEY
            bad = sdk_transcribe(h.host, pcm16k("short"), key="f" * 32, timeout=20)
            canceled = [e for _, k, e in bad["events"] if k == "canceled"]
            assert not bad["finals"] and canceled
            details = canceled[0].cancellation_details
            assert details.reason == speechsdk.CancellationReason.Error and "401" in details.error_details
        finally:
            h.close()


# ==============================================================================================================
# The leg on a real run, and its turn rows
# ==============================================================================================================
@pytest.mark.slow
class TestLeg:
    def test_dialogue_run_records_sdk_events_and_normalizes_to_turns(self, harness, tmp_path):
        leg = AzureSpeechLeg(target=AzureSpeechTarget.local(harness.host))
        log = asyncio.run(arun_legs(clip_path("dialogue"), [leg], out=tmp_path,
                                    options=RunOptions(speed=3, progress=False, settle_timeout_s=60)))
        frame = log.to_frame()
        assert set(frame["source"]) == {"sidecar:azure-speech"}
        types = list(frame["type"])
        assert types[0] == "azure_speech.start" and "azure_speech.session_started" in types
        assert "azure_speech.audio_end" in types and types[-1] == "azure_speech.session_stopped"
        assert {"azure_speech.transcribing", "azure_speech.transcribed"} <= set(types)
        first = frame[frame["type"] == "azure_speech.transcribed"]["event"].iloc[0]
        assert first["result_json"]["Id"] == first["result_id"] and first["speaker_id"] == "Guest-1"

        rows = azure_speech_turn_rows(frame, "sidecar:azure-speech")
        assert [r["status"] for r in rows] == ["completed"] * 4
        assert [r["speaker"] for r in rows] == ["Guest-1", "Guest-2", "Guest-1", "Guest-2"]
        utts = MANIFEST["dialogue"]["utterances"]
        assert wer([u["text"] for u in utts], [r["transcript"] for r in rows]) <= 0.35
        for r, u in zip(rows, utts, strict=True):
            assert abs(r["audio_start_ms"] - u["start_s"] * 1000) < 350  # ticks → the run's audio clock
            assert abs(r["audio_end_ms"] - u["end_s"] * 1000) < 350
            assert r["t_first_ms"] <= r["t_final_ms"] and r["n_deltas"] >= 2 and r["n_revisions"] == 0
            assert r["kind"] == "azure-speech" and r["model"] == "azure-speech" and r["usage"]["seconds"] > 0
        assert sum(r["usage"]["seconds"] for r in rows) == pytest.approx(rows[-1]["audio_end_ms"] / 1000, abs=0.01)

    def test_a_refused_connection_is_a_failed_row_not_a_crash(self, engines, tmp_path):
        h = UspHarness(engines, api_key=KEY)
        try:
            leg = AzureSpeechLeg(target=AzureSpeechTarget.local(h.host, api_key="not-the-key"))
            log = asyncio.run(arun_legs(clip_path("short"), [leg], out=tmp_path,
                                        options=RunOptions(speed=8, progress=False, settle_timeout_s=30)))
        finally:
            h.close()
        rows = azure_speech_turn_rows(log.to_frame(), leg.source)
        assert len(rows) == 1 and rows[0]["status"] == "failed" and "401" in rows[0]["error"]
        assert "not-the-key" not in json.dumps([r.event for r in log.records])


# ==============================================================================================================
# Turn rows from hand-made events: snapshots, revisions, failures
# ==============================================================================================================
def _frame(events: list[dict]):
    import pandas as pd

    return pd.DataFrame({"seq": range(len(events)), "t_ms": [100.0 * (i + 1) for i in range(len(events))],
                         "type": [e["type"] for e in events], "event": events})


def _ev(kind: str, text: str, offset: int, duration: int = 5_000_000, speaker: str = "Unknown",
        reason: str | None = None, rid: str | None = None) -> dict:
    return {"type": f"azure_speech.{kind}", "text": text, "offset_ticks": offset, "duration_ticks": duration,
            "speaker_id": speaker, "result_id": rid or f"id{text}{offset}",
            "reason": reason or ("RecognizingSpeech" if kind == "transcribing" else "RecognizedSpeech")}


class TestTurnRows:
    def test_snapshots_become_deltas_and_rewrites_count_as_revisions(self):
        rows = azure_speech_turn_rows(_frame([
            _ev("transcribing", "fine", 10_000_000),
            _ev("transcribing", "fine fun", 10_000_000),
            _ev("transcribing", "find funny", 10_000_000),  # changes words already shown
            _ev("transcribing", "find funny things", 10_000_000),
            _ev("transcribed", "Find funny things, too.", 10_000_000, 20_000_000, "Guest-1", rid="final1"),
        ]), "s")
        (r,) = rows
        assert r["partials"] == ["fine", "fine fun", "find funny", "find funny things"]
        assert r["deltas"] == ["fine", " fun", " things", " too"] and r["n_deltas"] == 4 and r["n_revisions"] == 1
        assert (r["item_id"], r["transcript"], r["speaker"], r["status"]) == ("final1", "Find funny things, too.",
                                                                             "Guest-1", "completed")
        assert (r["audio_start_ms"], r["audio_end_ms"]) == (1000.0, 3000.0)
        assert (r["t_first_ms"], r["t_final_ms"], r["t_last_partial_ms"]) == (100.0, 500.0, 400.0)
        assert r["usage"] == {"type": "duration", "seconds": 3.0}

    def test_a_final_that_changes_the_last_partial_is_a_revision(self):
        (r,) = azure_speech_turn_rows(_frame([_ev("transcribing", "recognize speech", 0),
                                              _ev("transcribed", "Wreck a nice beach.", 0)]), "s")
        assert r["n_revisions"] == 1 and r["n_deltas"] == 1

    def test_final_without_partials_and_unknown_speaker(self):
        (r,) = azure_speech_turn_rows(_frame([_ev("transcribed", "Hello.", 5_000_000)]), "s")
        assert r["t_first_ms"] == r["t_final_ms"] == 100.0 and r["n_deltas"] == 0 and r["speaker"] is None

    def test_nomatch_pending_superseded_and_errors(self):
        rows = azure_speech_turn_rows(_frame([
            {"type": "azure_speech.session_started", "session_id": "x"},
            _ev("transcribed", "", 0, reason="NoMatch"),  # silence: no row
            _ev("transcribing", "lost words", 10_000_000),
            _ev("transcribing", "new", 50_000_000),  # another phrase began: the first never got a final
            _ev("transcribed", "", 50_000_000, reason="NoMatch"),
            _ev("transcribing", "still open", 90_000_000),
            {"type": "azure_speech.canceled", "reason": "Error", "error_code": "ConnectionFailure",
             "error_details": "Connection was closed by the remote host. Error code: 1011."},
            {"type": "azure_speech.canceled", "reason": "EndOfStream", "error_code": "NoError"},
            _ev("transcribing", "after", 120_000_000),
        ]), "s")
        assert [(r["status"], r["transcript"]) for r in rows] == [
            ("failed", None), ("failed", None), ("failed", None), ("pending", "after")]
        assert "superseded" in rows[0]["error"] and "NoMatch" in rows[1]["error"]
        assert rows[2]["error"].startswith("ConnectionFailure: Connection was closed")
        assert all(r["usage"] is None for r in rows)

    def test_a_session_error_without_a_phrase_is_one_failed_row(self):
        rows = azure_speech_turn_rows(_frame([
            {"type": "azure_speech.canceled", "reason": "Error", "error_code": "ConnectionFailure",
             "error_details": "WebSocket upgrade failed: Authentication error (401)."}]), "s")
        assert len(rows) == 1 and rows[0]["status"] == "failed" and "401" in rows[0]["error"]

    def test_json_string_events_and_other_types_are_fine(self):
        frame = _frame([_ev("transcribed", "Hi.", 0), {"type": "input_audio_buffer.append"}])
        frame["event"] = [json.dumps(e) for e in frame["event"]]
        assert [r["transcript"] for r in azure_speech_turn_rows(frame, "s")] == ["Hi."]
        assert azure_speech_turn_rows(_frame([])[:0], "s") == []


# ==============================================================================================================
# Targets: where the SDK connects, and no secret ever shows
# ==============================================================================================================
class _FakeCredential:
    """An azure-identity-like credential (get_token(scope) -> AccessToken-like)."""

    TOKEN = "eyJ0eXAiOiJKV1QifQ.secret-entra-token-" + "x" * 40

    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kw: Any):
        self.scopes.extend(scopes)
        return type("AccessToken", (), {"token": self.TOKEN, "expires_on": 0})()


class TestTarget:
    def test_local_targets(self, harness):
        t = AzureSpeechTarget.local(f"http://127.0.0.1:{harness.port}")
        assert t.host == harness.host and t.auth == "none" and t.is_local
        cfg = t.speech_config()
        assert cfg.speech_recognition_language == "en-US"
        assert AzureSpeechTarget.local(harness.host, api_key=KEY).auth == "key"

    def test_from_env_key_and_region(self, monkeypatch):
        monkeypatch.setenv("AZURE_SPEECH_KEY", KEY)
        monkeypatch.setenv("AZURE_SPEECH_REGION", "westeurope")
        monkeypatch.delenv("AZURE_SPEECH_ENDPOINT", raising=False)
        monkeypatch.delenv("AZURE_SPEECH_AUTH", raising=False)
        t = AzureSpeechTarget.from_env()
        assert (t.kind, t.auth, t.region) == ("azure", "key", "westeurope") and t.key.reveal() == KEY
        cfg = t.speech_config()
        assert cfg.region == "westeurope" and cfg.subscription_key == KEY

    def test_entra_uses_the_documented_aad_token_form(self, monkeypatch):
        for var in ("AZURE_SPEECH_KEY", "AZURE_SPEECH_ENDPOINT"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("AZURE_SPEECH_REGION", "swedencentral")
        rid = "/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/a"
        monkeypatch.setenv("AZURE_SPEECH_RESOURCE_ID", rid)
        cred = _FakeCredential()
        t = AzureSpeechTarget.from_env(credential=cred)
        assert t.auth == "entra"
        cfg = t.speech_config()
        assert cred.scopes == ["https://cognitiveservices.azure.com/.default"]
        assert cfg.authorization_token == f"aad#{rid}#{cred.TOKEN}"
        assert cred.TOKEN not in repr(t) + json.dumps(t.to_dict()) and "token" not in t.to_dict()

    def test_entra_with_a_custom_domain_endpoint_hands_the_credential_to_the_sdk(self, monkeypatch):
        monkeypatch.setenv("AZURE_SPEECH_AUTH", "entra")
        monkeypatch.setenv("AZURE_SPEECH_KEY", KEY)  # ignored: entra asked for
        monkeypatch.setenv("AZURE_SPEECH_ENDPOINT", "https://my-speech.cognitiveservices.azure.com")
        for var in ("AZURE_SPEECH_REGION", "AZURE_SPEECH_RESOURCE_ID"):
            monkeypatch.delenv(var, raising=False)
        t = AzureSpeechTarget.from_env(credential=_FakeCredential())
        assert (t.auth, t.key, t.endpoint) == ("entra", None, "https://my-speech.cognitiveservices.azure.com")

    @pytest.mark.parametrize("env, needle", [
        ({}, "AZURE_SPEECH_REGION"),
        ({"AZURE_SPEECH_REGION": "x", "AZURE_SPEECH_AUTH": "key"}, "AZURE_SPEECH_KEY"),
        ({"AZURE_SPEECH_REGION": "x", "AZURE_SPEECH_AUTH": "magic"}, "'key' or 'entra'"),
        ({"AZURE_SPEECH_REGION": "x"}, "AZURE_SPEECH_RESOURCE_ID"),
        ({"AZURE_SPEECH_KEY": KEY, "AZURE_SPEECH_ENDPOINT": f"https://x.example/?key={KEY}"}, "https://"),
    ])
    def test_missing_pieces_name_the_variable(self, monkeypatch, env, needle):
        for var in ("AZURE_SPEECH_KEY", "AZURE_SPEECH_REGION", "AZURE_SPEECH_ENDPOINT", "AZURE_SPEECH_RESOURCE_ID",
                    "AZURE_SPEECH_AUTH"):
            monkeypatch.delenv(var, raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        with pytest.raises(TargetError, match=needle) as info:
            AzureSpeechTarget.from_env()
        assert KEY not in str(info.value)

    def test_a_key_never_leaks(self, monkeypatch, caplog):
        monkeypatch.setenv("AZURE_SPEECH_KEY", KEY)
        monkeypatch.setenv("AZURE_SPEECH_REGION", "westeurope")
        for var in ("AZURE_SPEECH_ENDPOINT", "AZURE_SPEECH_AUTH", "AZURE_SPEECH_RESOURCE_ID"):
            monkeypatch.delenv(var, raising=False)
        targets = [AzureSpeechTarget.with_key(KEY, region="westeurope"), AzureSpeechTarget.from_env(),
                   AzureSpeechTarget.local("ws://127.0.0.1:1", api_key=KEY)]
        for t in targets:
            outputs: list[str | bytes] = [
                repr(t), str(t), f"{t}", "%s %r" % (t, t), repr(t.key), str(t.key),  # noqa: UP031
                json.dumps(t.to_dict()), json.dumps(dataclasses.asdict(t), default=str),
                repr(dataclasses.asdict(t)), pickle.dumps(t), repr(AzureSpeechLeg(target=t)),
            ]
            assert all(KEY not in (o.decode("latin-1") if isinstance(o, bytes) else o) for o in outputs)
            assert t.key.reveal() == KEY  # the SDK still gets it
        caplog.set_level(logging.DEBUG)
        install_redaction()
        logging.getLogger("rtlab.test").warning("headers {'Ocp-Apim-Subscription-Key': '%s'}", KEY)
        assert KEY not in caplog.text


@pytest.mark.live
def test_live_azure_speech_transcribes_a_clip(tmp_path):
    import os

    if not (os.environ.get("AZURE_SPEECH_REGION") or os.environ.get("AZURE_SPEECH_ENDPOINT")):
        pytest.skip("set AZURE_SPEECH_KEY and AZURE_SPEECH_REGION (or AZURE_SPEECH_ENDPOINT) to run")
    leg = AzureSpeechLeg(target=AzureSpeechTarget.from_env())
    log = asyncio.run(arun_legs(clip_path("dialogue"), [leg], out=tmp_path,
                                options=RunOptions(speed=1, progress=False, settle_timeout_s=60)))
    rows = azure_speech_turn_rows(log.to_frame(), leg.source)
    assert rows and all(r["status"] == "completed" for r in rows)
    assert wer(MANIFEST["dialogue"]["reference"], " ".join(r["transcript"] for r in rows)) <= 0.35
