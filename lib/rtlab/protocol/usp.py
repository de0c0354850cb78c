"""The Azure Speech service WebSocket protocol ("USP") as data, plus its message codec (layer: protocol).

The Speech SDK (``azure-cognitiveservices-speech``) talks to the Speech service over one WebSocket per recognizer,
subprotocol ``USP``. Every message carries HTTP-like header lines (``Path``, ``X-RequestId``, ``X-Timestamp``,
``Content-Type``) and a body:

* text frames: ``header CRLF header CRLF ... CRLF CRLF body`` (UTF-8; JSON bodies);
* binary frames: a 2-byte big-endian header length, the header block (US-ASCII), then the payload. The first
  ``audio`` frame of a request carries a RIFF/WAVE header (the SDK sends one with zero sizes), later ones raw PCM;
  an ``audio`` frame with an empty payload ends the audio stream.

A session goes: handshake (key in ``Ocp-Apim-Subscription-Key``, or ``Authorization: Bearer TOKEN``) →
client ``speech.config`` (no request id), ``speech.context`` and ``audio`` (request id R) → service ``turn.start``,
``speech.startDetected``, ``speech.hypothesis``\\*, ``speech.phrase``\\*, ``speech.endDetected``, ``turn.end``
(all with ``X-RequestId: R``) → client ``telemetry``. Times in result bodies (``Offset``, ``Duration``) are in
100-ns ticks (:data:`TICKS_PER_MS` per ms) from the start of the request's audio.

Every fact here carries its :class:`~rtlab.protocol.evidence.Evidence`. Three kinds of source:

* the Speech SDK for Python 1.53 pointed at a logging WebSocket server by rtlab (what the official client sends,
  and what it needs back before it raises events) — ``observed``, client side, not a probe of the service;
* Microsoft's documentation (the Speech Service WebSocket protocol page of 2017 for the retired Bing Speech
  endpoint, whose framing and error rules today's SDK still speaks; the Speech SDK quickstarts) and the open-source
  Speech SDK for JavaScript — ``documented``;
* public issue threads with traces of the real service — ``reported``.

The codec (:func:`parse_message`, :func:`encode_text`, :func:`encode_binary`, :func:`parse_wave_header`) is pure;
a malformed message raises :class:`UspProtocolError` carrying the close code and reason the service documents.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import soundfile as sf

from rtlab.errors import RtlabError

from .evidence import Evidence

__all__ = [
    "CLIENT_MESSAGES",
    "ENDPOINTS",
    "HANDSHAKE",
    "HEADERS",
    "MESSAGES",
    "PUSH_STREAM_RATES",
    "RECOGNITION_STATUSES",
    "RESULT_FIELDS",
    "SDK_NEEDS",
    "SERVICE_BEHAVIOUR",
    "SERVICE_MESSAGES",
    "SPEAKER_UNKNOWN",
    "SUBPROTOCOL",
    "TICKS_PER_MS",
    "VIOLATIONS",
    "Endpoint",
    "MessageSpec",
    "UspMessage",
    "UspProtocolError",
    "Violation",
    "WaveFormat",
    "encode_binary",
    "encode_text",
    "guest_speaker_id",
    "is_request_id",
    "ms_to_ticks",
    "parse_message",
    "parse_wave_header",
    "ticks_to_ms",
]

# ------------------------------------------------------------------------------------------------------ sources
_SDK_PROBE = Evidence(
    "observed", "Speech SDK for Python 1.53.0 (azure-cognitiveservices-speech) pointed by rtlab at a logging "
    "websockets server with SpeechConfig(host='ws://127.0.0.1:PORT')", "2026-12-01",
    "client side: what the official SDK sends and what it needs back; not a probe of the Azure service")
_BING_DOC = Evidence(
    "documented", "Microsoft Docs, 'Speech Service WebSocket protocol' (ms.date 2017-09-15), "
    "https://docs.microsoft.com/en-us/azure/cognitive-services/Speech/api-reference-rest/websocketprotocol",
    "2017-09-15", "written for the retired Bing Speech endpoint; today's SDK speaks the same framing")
_JS_SDK = Evidence(
    "documented", "microsoft/cognitive-services-speech-sdk-js @9e88223 (src/common.speech: "
    "WebsocketMessageFormatter.ts, ServiceRecognizerBase.ts, ServiceMessages/*.ts, HeaderNames.ts, "
    "ConversationTranscriberConnectionFactory.ts, EnumTranslation.ts)", "2026-07-13")
_DIARIZATION_QS = Evidence(
    "documented", "Microsoft Learn, 'Quickstart: Create real-time diarization' (Python), "
    "https://learn.microsoft.com/azure/ai-services/speech-service/get-started-stt-diarization", "2025-07-16")
_JS_ISSUE_856 = Evidence(
    "reported", "microsoft/cognitive-services-speech-sdk-js issue 856 (service traces of speech.phrase bodies)",
    "2024-09-04")
_ASSUMED = Evidence("assumed", "rtlab emulator choice (no source found that says what the service does)",
                    "2026-12-01")

#: Result times are 100-ns ticks.
TICKS_PER_MS = 10_000
#: The name Azure Speech rows carry as their model (the row of ``data/prices.json`` that prices them).
PRICE_MODEL = "azure-speech"
#: The WebSocket subprotocol the SDK asks for (``Sec-WebSocket-Protocol: USP``).
SUBPROTOCOL = "USP"
SUBPROTOCOL_EVIDENCE = _SDK_PROBE


def ticks_to_ms(ticks: float) -> float:
    """100-ns ticks → milliseconds."""
    return float(ticks) / TICKS_PER_MS


def ms_to_ticks(ms: float) -> int:
    """Milliseconds → 100-ns ticks (rounded to an integer, as the service sends them)."""
    return int(round(float(ms) * TICKS_PER_MS))


# ------------------------------------------------------------------------------------------------------ endpoints
@dataclass(frozen=True)
class Endpoint:
    """A WebSocket path of the Speech service and the SDK recognizer that connects to it."""

    path: str
    recognizer: str  # the SDK class (or "-" when no current SDK class uses it)
    mode: Literal["conversation", "interactive", "dictation"]
    evidence: Evidence
    note: str = ""


ENDPOINTS: MappingProxyType[str, Endpoint] = MappingProxyType({e.path: e for e in [
    Endpoint("/speech/universal/v2", "ConversationTranscriber", "conversation", _SDK_PROBE,
             "speech.context asks phraseDetection.mode 'Conversation' and speakerDiarization (mode 'Anonymous')"),
    Endpoint("/speech/recognition/conversation/cognitiveservices/v1", "SpeechRecognizer", "conversation",
             _SDK_PROBE, "continuous recognition"),
    Endpoint("/speech/recognition/interactive/cognitiveservices/v1", "SpeechRecognizer", "interactive", _SDK_PROBE,
             "recognize_once: the service ends the turn after the first phrase"),
    Endpoint("/speech/recognition/dictation/cognitiveservices/v1", "-", "dictation", _BING_DOC),
]})

#: Query parameters the SDK puts on the URL (``language`` always; the others when the property is set).
QUERY_PARAMETERS: MappingProxyType[str, Evidence] = MappingProxyType({
    "language": _SDK_PROBE,  # ?language=en-US from speech_recognition_language
    "format": _JS_SDK, "profanity": _JS_SDK, "cid": _JS_SDK, "lidEnabled": _JS_SDK,
    "initialSilenceTimeoutMs": _JS_SDK, "endSilenceTimeoutMs": _JS_SDK, "segmentationSilenceTimeoutMs": _JS_SDK,
    "stableIntermediateThreshold": _JS_SDK, "storeAudio": _JS_SDK,
})


@dataclass(frozen=True)
class HandshakeFact:
    name: str
    value: str
    evidence: Evidence


HANDSHAKE: MappingProxyType[str, HandshakeFact] = MappingProxyType({f.name: f for f in [
    HandshakeFact("key_header", "Ocp-Apim-Subscription-Key", _SDK_PROBE),  # SpeechConfig(subscription=KEY)
    HandshakeFact("token_header", "Authorization: Bearer TOKEN", _SDK_PROBE),  # SpeechConfig(auth_token=TOKEN)
    HandshakeFact("no_credentials", "no auth header (SpeechConfig(host=...) alone, as for containers)",
                  _SDK_PROBE),
    HandshakeFact("connection_id_header", "X-ConnectionId (32 hex digits, no dashes)", _SDK_PROBE),
    HandshakeFact("entra_token", "aad#RESOURCE_ID#ENTRA_TOKEN as the authorization token, with the region",
                  Evidence("documented", "Microsoft Learn, 'Microsoft Entra authentication with the Speech SDK', "
                           "https://learn.microsoft.com/azure/ai-services/speech-service/how-to-configure-azure-"
                           "ad-auth", "2026-12-01", "page as read on that date")),
    HandshakeFact("refused_unauthorized", "401 when the key or token is missing or invalid", _BING_DOC),
    HandshakeFact("refused_forbidden", "403 when the authorization is invalid or expired", _BING_DOC),
    HandshakeFact("refused_not_found", "404 for a path the service does not serve", _BING_DOC),
]})

#: Header names of USP messages (``Path`` and the ``X-`` headers are matched case-insensitively).
HEADERS: MappingProxyType[str, Evidence] = MappingProxyType({
    "Path": _BING_DOC, "X-RequestId": _BING_DOC, "X-Timestamp": _BING_DOC, "Content-Type": _BING_DOC,
    "X-StreamId": _SDK_PROBE, "X-ConnectionId": _BING_DOC,
})

#: Push streams of the SDK take PCM16 mono at these rates.
PUSH_STREAM_RATES: tuple[int, ...] = (8000, 16000)
PUSH_STREAM_EVIDENCE = Evidence("documented", "Microsoft Learn, 'How to use the audio input stream', "
                                "https://learn.microsoft.com/azure/ai-services/speech-service/how-to-use-audio-input-"
                                "streams: PCM int16, one channel, 8000 or 16000 samples per second", "2026-12-01",
                                "page as read on that date")


# ------------------------------------------------------------------------------------------------------ messages
@dataclass(frozen=True)
class MessageSpec:
    """One message path: who sends it, in which frame type, and what its body holds."""

    path: str
    sender: Literal["client", "service"]
    frame: Literal["text", "binary"]
    request_id: bool  # carries X-RequestId
    body: str
    evidence: Evidence


MESSAGES: MappingProxyType[str, MessageSpec] = MappingProxyType({m.path: m for m in [
    MessageSpec("speech.config", "client", "text", False,
                "JSON context: system (SDK name/version/lang), os, audio.source (type, samplerate, bitspersample, "
                "channelcount); sent once per connection, before any audio", _SDK_PROBE),
    MessageSpec("speech.context", "client", "text", True,
                "JSON: phraseDetection (mode 'Conversation' and speakerDiarization for ConversationTranscriber; "
                "language), phraseOutput (format 'Detailed' when asked), audio.streams", _SDK_PROBE),
    MessageSpec("audio", "client", "binary", True,
                "first frame of a request: RIFF/WAVE header (Content-Type audio/x-wav, X-StreamId); then PCM; an "
                "empty payload ends the audio", _SDK_PROBE),
    MessageSpec("telemetry", "client", "text", True, "JSON: ReceivedMessages time stamps and Metrics, after turn.end",
                _SDK_PROBE),
    MessageSpec("turn.start", "service", "text", True, '{"context": {"serviceTag": "..."}}; the first response of '
                "a request: without it the SDK raises no result events", _BING_DOC),
    MessageSpec("speech.startDetected", "service", "text", True, '{"Offset": TICKS}', _BING_DOC),
    MessageSpec("speech.hypothesis", "service", "text", True,
                '{"Id", "Text", "Offset", "Duration", "SpeakerId"?, "Channel"?}: a snapshot of the phrase so far '
                "(may change earlier words); raised as `transcribing`/`recognizing`", _BING_DOC),
    MessageSpec("speech.phrase", "service", "text", True,
                '{"Id", "RecognitionStatus", "DisplayText", "Offset", "Duration", "Channel", "SpeakerId"?, '
                '"NBest"? (Detailed)}; raised as `transcribed`/`recognized`', _BING_DOC),
    MessageSpec("speech.endDetected", "service", "text", True, '{"Offset": TICKS}', _BING_DOC),
    MessageSpec("turn.end", "service", "text", True, "empty body; the last response of a request: without it the "
                "SDK's stop waits 10 s and raises canceled (ServiceTimeout)", _BING_DOC),
]})
CLIENT_MESSAGES: frozenset[str] = frozenset(p for p, m in MESSAGES.items() if m.sender == "client")
SERVICE_MESSAGES: frozenset[str] = frozenset(p for p, m in MESSAGES.items() if m.sender == "service")

#: What the SDK needs back (observed): responses carry the request's X-RequestId (others are ignored), turn.start
#: comes before results, and turn.end after the end of audio (else stop waits 10 s, then ServiceTimeout).
SDK_NEEDS: MappingProxyType[str, Evidence] = MappingProxyType({
    "responses echo the request's X-RequestId": _SDK_PROBE,
    "turn.start before any result": _SDK_PROBE,
    "turn.end after the empty audio frame": _SDK_PROBE,
    "a speech.phrase with RecognitionStatus EndOfDictation after the end of audio is raised as canceled "
    "(reason EndOfStream, no error)": _SDK_PROBE,
    "result_id is the body's Id": _SDK_PROBE,
})

#: How the service answers a request in continuous recognition; the emulator (:mod:`rtlab.emulator.usp`) follows
#: each row, so an assumption here is an assumption there.
SERVICE_BEHAVIOUR: MappingProxyType[str, Evidence] = MappingProxyType({
    "partials carry the lexical text (lower case, no punctuation); finals the display text": _DIARIZATION_QS,
    "SpeakerId 'Guest-1', 'Guest-2', ... in order of appearance": _DIARIZATION_QS,
    "SpeakerId 'Unknown' in partials unless intermediate diarization is on (then early partials may still be "
    "'Unknown')": _DIARIZATION_QS,
    "every result message has its own Id (32 hex digits)": _JS_ISSUE_856,
    "end of audio: the last phrase, speech.endDetected, a speech.phrase with RecognitionStatus EndOfDictation, "
    "turn.end": Evidence("reported", "live-probe notes in a public client's test file (azureSpeechFrames tests: "
                         "'turn.start, speech.phrase, speech.endDetected, speech.phrase, turn.end'), and the JS SDK's "
                         "EndOfDictation handling (EnumTranslation.ts)", "2026-12-01"),
    "speech.startDetected once per request, at the first speech": _ASSUMED,
    "the partials and the final of a phrase share its Offset (the start of its speech)": _ASSUMED,
    "hypotheses whenever the stable text grows (the 2017 page says about every 300 ms)": Evidence(
        "assumed", "rtlab: the emulator's streaming recognizer decides; cadence documented in the 2017 protocol "
        "page", "2026-12-01"),
})

#: Fields of result bodies as the service sends them.
RESULT_FIELDS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType({
    "speech.hypothesis": ("Id", "Text", "Offset", "Duration", "SpeakerId", "Channel", "PrimaryLanguage"),
    "speech.phrase": ("Id", "RecognitionStatus", "DisplayText", "Offset", "Duration", "Channel", "SpeakerId",
                      "NBest", "PrimaryLanguage"),
    "NBest[]": ("Confidence", "Lexical", "ITN", "MaskedITN", "Display", "Words"),
})
RESULT_FIELDS_EVIDENCE = (_JS_SDK, _JS_ISSUE_856)

#: RecognitionStatus values, in the SDK's enum order.
RECOGNITION_STATUSES: tuple[str, ...] = ("Success", "NoMatch", "InitialSilenceTimeout", "BabbleTimeout", "Error",
                                         "EndOfDictation", "TooManyRequests", "BadRequest", "Forbidden")

#: Speaker id of a partial result before (or without) intermediate diarization.
SPEAKER_UNKNOWN = "Unknown"
SPEAKER_EVIDENCE = _DIARIZATION_QS  # "Guest-1", "Guest-2", ...; "Unknown" in partials unless diarized


def guest_speaker_id(n: int) -> str:
    """The ``SpeakerId`` of the ``n``-th speaker (1-based) in conversation transcription: ``Guest-n``."""
    return f"Guest-{int(n)}"


# ------------------------------------------------------------------------------------------------------ errors
@dataclass(frozen=True)
class Violation:
    """A protocol violation and how the service ends the connection for it."""

    key: str
    close_code: int
    reason: str
    evidence: Evidence


VIOLATIONS: MappingProxyType[str, Violation] = MappingProxyType({v.key: v for v in [
    Violation("binary_header_size_prefix", 1007,
              "Incorrect message format. Binary message has invalid header size prefix.", _BING_DOC),
    Violation("binary_header_size", 1007, "Incorrect message format. Binary message has invalid header size.",
              _BING_DOC),
    Violation("binary_header_utf8", 1007,
              "Incorrect message format. Binary message headers decoding into UTF-8 failed.", _BING_DOC),
    Violation("text_no_data", 1007, "Incorrect message format. Text message contains no data.", _BING_DOC),
    Violation("text_no_separator", 1007, "Incorrect message format. Text message contains no header separator.",
              _BING_DOC),
    Violation("missing_header", 1002, "Missing/Empty header. {header}.", _BING_DOC),
    Violation("request_id_format", 1002,
              "Invalid request. X-RequestId header value was not specified in no-dash UUID format.", _BING_DOC),
    Violation("request_id_reuse", 1002, "Invalid request. Reuse of request identifiers is not allowed.", _BING_DOC),
    Violation("audio_format", 1007, "Invalid audio format. {detail}", Evidence(
        "documented", _BING_DOC.source, _BING_DOC.date, "close code documented; the reason text is rtlab's")),
    Violation("config_first", 1002, "Invalid request. speech.config must be sent before {path}.", Evidence(
        "assumed", "rtlab: the protocol page says speech.config comes first but not what happens otherwise",
        "2026-12-01")),
    Violation("unknown_path", 1002, "Invalid request. Unknown message path '{path}'.", _ASSUMED),
    Violation("bad_json", 1007, "Incorrect message format. {path} body is not a JSON object.", _ASSUMED),
]})


class UspProtocolError(RtlabError):
    """A client message broke the protocol; ``close_code`` and ``reason`` are what the service closes with."""

    def __init__(self, key: str, **fields: Any) -> None:
        v = VIOLATIONS[key]
        self.key = key
        self.close_code = v.close_code
        self.reason = v.reason.format(**fields) if fields else v.reason
        super().__init__(f"{self.reason} (WebSocket close {self.close_code})")


# ------------------------------------------------------------------------------------------------------ codec
_REQUEST_ID = re.compile(r"^[0-9a-fA-F]{32}$")
_CRLF = "\r\n"
_MAX_HEADER_BYTES = 8192  # documented maximum of a binary message's header section


def is_request_id(value: str | None) -> bool:
    """True for a UUID in no-dash form (32 hex digits), the only form X-RequestId may take."""
    return isinstance(value, str) and bool(_REQUEST_ID.match(value))


@dataclass(frozen=True)
class UspMessage:
    """One parsed USP message. ``headers`` has lower-case names; ``body`` is ``str`` (text) or ``bytes`` (binary)."""

    path: str
    headers: Mapping[str, str]
    body: str | bytes
    binary: bool

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-requestid") or None

    def json(self) -> dict:
        """The body as a JSON object; :class:`UspProtocolError` (``bad_json``) otherwise."""
        try:
            obj = json.loads(self.body) if isinstance(self.body, str) and self.body.strip() else None
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            raise UspProtocolError("bad_json", path=self.path)
        return obj


def _parse_headers(block: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.split(_CRLF):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def parse_message(raw: str | bytes) -> UspMessage:
    """Parse one WebSocket message of the protocol.

    Raises
    ------
    UspProtocolError
        For a frame the service would refuse: a binary frame shorter than its header-length prefix or with a
        header that is not text, a text frame without the blank line after its headers or with no data, or a
        message without ``Path``.
    """
    if isinstance(raw, bytes | bytearray | memoryview):
        raw = bytes(raw)
        if len(raw) < 2:
            raise UspProtocolError("binary_header_size_prefix")
        n = int.from_bytes(raw[:2], "big")
        if n > _MAX_HEADER_BYTES or len(raw) < 2 + n:
            raise UspProtocolError("binary_header_size")
        try:
            block = raw[2:2 + n].decode("utf-8")
        except UnicodeDecodeError:
            raise UspProtocolError("binary_header_utf8") from None
        headers = _parse_headers(block)
        body: str | bytes = raw[2 + n:]
        binary = True
    else:
        if not raw:
            raise UspProtocolError("text_no_data")
        block, sep, body = raw.partition(_CRLF + _CRLF)
        if not sep:
            raise UspProtocolError("text_no_separator")
        headers = _parse_headers(block)
        binary = False
    path = headers.get("path", "")
    if not path:
        raise UspProtocolError("missing_header", header="Path")
    return UspMessage(path, MappingProxyType(headers), body, binary)


def _timestamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _header_block(path: str, request_id: str | None, content_type: str | None, timestamp: str | None,
                  extra: Mapping[str, str] | None) -> str:
    lines = [f"Path:{path}"]
    if request_id is not None:
        lines.append(f"X-RequestId:{request_id}")
    lines.append(f"X-Timestamp:{timestamp or _timestamp()}")
    if content_type:
        lines.append(f"Content-Type:{content_type}")
    lines += [f"{k}:{v}" for k, v in (extra or {}).items()]
    return _CRLF.join(lines) + _CRLF


def encode_text(path: str, body: Mapping[str, Any] | str | None, *, request_id: str | None,
                content_type: str | None = "application/json; charset=utf-8", timestamp: str | None = None,
                headers: Mapping[str, str] | None = None) -> str:
    """A text message: header lines, a blank line, then the body (a dict is JSON-encoded; None: empty)."""
    if body is None:
        text, content_type = "", None
    elif isinstance(body, str):
        text = body
    else:
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return _header_block(path, request_id, content_type, timestamp, headers) + _CRLF + text


def encode_binary(path: str, payload: bytes, *, request_id: str | None, content_type: str | None = None,
                  timestamp: str | None = None, headers: Mapping[str, str] | None = None) -> bytes:
    """A binary message: 2-byte big-endian header length, the header block, the payload."""
    block = _header_block(path, request_id, content_type, timestamp, headers).encode("ascii")
    return len(block).to_bytes(2, "big") + block + bytes(payload)


@dataclass(frozen=True)
class WaveFormat:
    """What a RIFF/WAVE header at the start of an audio request declares."""

    sample_rate: int
    channels: int
    subtype: str  # libsndfile's name, e.g. "PCM_16"
    header_bytes: int  # where the samples start in the first frame


def parse_wave_header(data: bytes) -> WaveFormat:
    """Read the RIFF/WAVE header that starts the first ``audio`` frame (streaming headers with zero sizes too).

    Raises
    ------
    UspProtocolError
        ``audio_format`` when ``data`` does not start with a readable RIFF/WAVE header.
    """
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise UspProtocolError("audio_format", detail="The first audio message must start with a RIFF/WAVE header.")
    chunk = data.find(b"data", 12)
    if chunk < 0:
        raise UspProtocolError("audio_format", detail="The RIFF header has no data chunk.")
    try:
        with sf.SoundFile(io.BytesIO(data[:chunk + 8])) as f:
            return WaveFormat(int(f.samplerate), int(f.channels), str(f.subtype), chunk + 8)
    except (RuntimeError, sf.LibsndfileError, ValueError) as exc:
        raise UspProtocolError("audio_format", detail=f"Unreadable RIFF header ({exc}).") from None
