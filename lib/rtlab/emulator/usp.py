"""The Azure Speech service's WebSocket protocol (USP), emulated sans I/O (layer: emulator).

The unmodified Speech SDK (``azure-cognitiveservices-speech``) works against rtlab when pointed at it the way
Azure's speech containers are addressed, ``SpeechConfig(host="ws://127.0.0.1:PORT")``:

* :func:`route_usp` decides a handshake (pure): ``/speech/universal/v2`` (``ConversationTranscriber``),
  ``/speech/recognition/conversation/cognitiveservices/v1`` (``SpeechRecognizer``, continuous),
  ``.../interactive/...`` (``recognize_once``: the turn ends after its first phrase) and ``.../dictation/...`` are
  served; any other path is refused 404, a missing or wrong key 401 (when the emulator has a key). :func:`select_subprotocol` negotiates
  ``USP`` when the client asks for it and nothing otherwise, so the same server also serves Realtime clients.
* :class:`SpeechSession` is one connection (the interface of :mod:`rtlab.emulator.adapter`): it parses USP frames
  (:mod:`rtlab.protocol.usp`), feeds the request's audio (PCM16 at 8 or 16 kHz, resampled with
  ``rtlab.audio.Resampler`` to the pipeline rate) into one :class:`~rtlab.engines.pipeline.LocalPipeline` (VAD turns,
  partials on) and answers as the service does:

  ====================================  =========================================================================
  when                                  service messages (``X-RequestId`` of the request)
  ====================================  =========================================================================
  first ``audio`` frame (RIFF header)   ``turn.start``
  the VAD hears the first speech        ``speech.startDetected`` (once per request)
  the stable text of a phrase grows     ``speech.hypothesis`` (cumulative text; ``SpeakerId: "Unknown"`` unless
                                        ``diarizeIntermediates``)
  the VAD closes a phrase               ``speech.phrase`` (``Success``, display text, ``SpeakerId: "Guest-N"``
                                        from :class:`~rtlab.engines.speakers.SpeakerTracker` in conversation
                                        mode; ``NoMatch`` when nothing was recognised)
  the empty ``audio`` frame             last phrase, ``speech.endDetected``, ``speech.phrase`` with
                                        ``EndOfDictation``, ``turn.end``
  ====================================  =========================================================================

Each of these choices is a row of :data:`rtlab.protocol.usp.SERVICE_BEHAVIOUR` with its evidence (several are
assumptions). A client message that breaks the protocol (bad binary header, no header separator, no ``Path``, a malformed
request id, audio before ``speech.config``, an unknown path, a RIFF header the service would not take) ends the
connection with the close code and reason the service documents (:data:`rtlab.protocol.usp.VIOLATIONS`); the
server stays up. What the emulator makes up, and says so: the display form of the text (first letter capitalised,
a final period), ``Confidence`` in ``NBest`` (the recognizer's mean word probability), the speaker method.

Example
-------
>>> from rtlab.engines import default_engines                                      # doctest: +SKIP
>>> route = route_usp("/speech/universal/v2?language=en-US", {}, api_key=None)     # doctest: +SKIP
>>> session = SpeechSession(route, engines=default_engines(), seed=0)              # doctest: +SKIP
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from rtlab.audio import Resampler
from rtlab.engines.base import EngineSet
from rtlab.engines.pipeline import Final, LocalPipeline, Partial, SpeechStarted, VadParams
from rtlab.engines.speakers import SpeakerTracker, warm_up
from rtlab.protocol import usp as U

from .adapter import Close, Out
from .ids import Ids
from .server import HttpRefusal

__all__ = ["USP_PATHS", "SpeechSession", "UspRoute", "display_text", "route_usp", "select_subprotocol"]

log = logging.getLogger("rtlab.emulator")

#: The paths the emulator serves: (conversation transcriber? single-shot?) per path.
USP_PATHS: Mapping[str, tuple[bool, bool]] = {
    "/speech/universal/v2": (True, False),  # ConversationTranscriber
    "/speech/recognition/conversation/cognitiveservices/v1": (False, False),  # SpeechRecognizer, continuous
    "/speech/recognition/interactive/cognitiveservices/v1": (False, True),  # SpeechRecognizer.recognize_once
    "/speech/recognition/dictation/cognitiveservices/v1": (False, False),
}
#: Intermediate diarization waits for this much of the phrase before naming its speaker.
INTERMEDIATE_DIARIZATION_MIN_MS = 1000
_PEEK_EVERY_MS = 500
#: Phrase segmentation: the Realtime emulator's server-VAD defaults (the service's own silence timeout differs).
DEFAULT_VAD = VadParams()


@dataclass(frozen=True)
class UspRoute:
    """An accepted Speech handshake: the endpoint, the recognition language and whether it is conversation mode."""

    path: str
    language: str
    conversation: bool  # the conversation transcriber's endpoint (speaker ids by default)
    single_shot: bool = False  # the turn ends after its first phrase (recognize_once)
    query: Mapping[str, str] = field(default_factory=dict)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return value


def route_usp(path_and_query: str, headers: Mapping[str, str], *, api_key: str | None) -> UspRoute | HttpRefusal:
    """Decide what a Speech WebSocket upgrade gets (pure: no I/O).

    Parameters
    ----------
    path_and_query : str
        The request target, e.g. ``/speech/universal/v2?language=en-US``.
    headers : Mapping[str, str]
        Request headers (any case).
    api_key : str, optional
        The only key accepted, as ``Ocp-Apim-Subscription-Key: KEY`` or ``Authorization: Bearer TOKEN`` (a token
        equal to the key, or an Entra form ``aad#RESOURCE#KEY``). ``None`` accepts anything, including no
        credentials at all, as a speech container does.

    Returns
    -------
    UspRoute or HttpRefusal
        404 for a path the emulator does not serve, 401 for a missing or wrong key, 400 for a language other than
        English (the local recognizer's only language).
    """
    parts = urlsplit(path_and_query)
    path = parts.path.rstrip("/") or "/"
    if path not in USP_PATHS:
        return HttpRefusal(404, "404", f"Resource not found: {path[:120]}.", type="not_found")
    if api_key is not None:
        key = _header(headers, "Ocp-Apim-Subscription-Key")
        auth = _header(headers, "Authorization") or ""
        scheme, _, token = auth.partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        presented = key if key is not None else (token.rsplit("#", 1)[-1] if token else None)
        if not presented:
            return HttpRefusal(401, "401", "Access denied due to missing subscription key. Make sure to include "
                               "subscription key when making requests to an API.", type="unauthorized")
        if not hmac.compare_digest(presented.encode(), api_key.encode()):
            return HttpRefusal(401, "401", "Access denied due to invalid subscription key or wrong API endpoint. "
                               "Make sure to provide a valid key for an active subscription and use a correct "
                               "regional API endpoint for your resource.", type="unauthorized")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    language = query.get("language") or "en-US"
    if not language.lower().startswith("en"):
        return HttpRefusal(400, "400", f"rtlab emulator: the local recognizer speaks English only; got "
                           f"language={language[:40]!r}. Use en-US, or a real Speech resource.",
                           type="invalid_request_error")
    conversation, single_shot = USP_PATHS[path]
    return UspRoute(path=path, language=language, conversation=conversation, single_shot=single_shot, query=query)


def select_subprotocol(connection: Any, subprotocols: Sequence[str]) -> str | None:
    """``websockets`` ``select_subprotocol`` hook: ``USP`` when offered, else none (Realtime clients offer none)."""
    return U.SUBPROTOCOL if U.SUBPROTOCOL in subprotocols else None


def display_text(lexical: str) -> str:
    """The emulator's display form of recognised words: first letter capitalised, a final period (assumed)."""
    text = " ".join(lexical.split())
    if not text:
        return ""
    return text[0].upper() + text[1:] + ("" if text[-1] in ".?!" else ".")


@dataclass
class _Turn:
    """One request (X-RequestId) of a connection: its audio stream and recognition state."""

    request_id: str
    in_rate: int
    pipeline: LocalPipeline
    resampler: Resampler | None  # None when the rates match
    diarize: bool
    intermediate_diarization: bool
    detailed: bool
    carry: bytes = b""
    start_sent: bool = False
    onset_ms: float | None = None  # Offset of the open phrase
    phrase_speaker: str = U.SPEAKER_UNKNOWN  # in partials
    peeked_at_ms: float = -1e9
    phrases: int = 0


class SpeechSession:
    """One emulated Speech service connection, sans I/O (see the module docstring).

    Parameters
    ----------
    route : UspRoute
        From :func:`route_usp` (which path, which language).
    engines : EngineSet
        The local engines (``vad_factory`` and ``asr``), shared with the Realtime emulator.
    seed : int or str, optional
        Reproducible result ids and service tags.
    pipeline_rate : int
        The rate the audio is resampled to before the :class:`LocalPipeline` (24 kHz: the rate of the Realtime
        emulator's pipeline, so both surfaces hear the same signal).
    vad : VadParams
        The turn detection that ends phrases (the service's segmentation silence is its own; 500 ms here).
    max_speakers : int
        Upper bound of distinct ``Guest-N`` ids.
    """

    def __init__(self, route: UspRoute, *, engines: EngineSet, seed: int | str | None = None,
                 pipeline_rate: int = 24000, vad: VadParams = DEFAULT_VAD, max_speakers: int = 8) -> None:
        self.route = route
        self.engines = engines
        self.pipeline_rate = pipeline_rate
        self.vad = vad
        self._ids = Ids(seed)
        self._speakers = SpeakerTracker(sample_rate=pipeline_rate, max_speakers=max_speakers)
        self._configured = False
        self._contexts: dict[str, dict] = {}
        self._finished: set[str] = set()
        self._turn: _Turn | None = None
        self._closed = False
        self.closed_with: Close | None = None

    def __repr__(self) -> str:
        return (f"SpeechSession(path={self.route.path!r}, conversation={self.route.conversation}, "
                f"turn={self._turn.request_id if self._turn else None}, closed={self._closed})")

    # ----------------------------------------------------------------------------------------- interface
    def start(self) -> list[Out]:
        if self.route.conversation:
            warm_up()  # librosa's first use costs seconds: pay it before the audio, not at the first phrase
        return []

    def pending(self) -> bool:
        return False

    def pump(self) -> list[Out]:
        return []

    def close(self) -> None:
        self._end_turn()

    def receive(self, message: str | bytes) -> list[Out]:
        """One client frame → the service frames it causes (text frames), or a :class:`Close`."""
        if self._closed:
            return []
        try:
            return self._receive(message)
        except U.UspProtocolError as exc:
            return self._close(Close(exc.close_code, exc.reason))
        except Exception:  # never a traceback to the peer: the service's generic server error
            log.exception("emulator: speech session failed")
            return self._close(Close(1011, "Internal server error."))

    # ----------------------------------------------------------------------------------------- messages
    def _close(self, close: Close) -> list[Out]:
        self._closed = True
        self.closed_with = close
        self._end_turn()
        return [close]

    def _receive(self, message: str | bytes) -> list[Out]:
        msg = U.parse_message(message)
        path = msg.path.lower()
        spec = next((m for p, m in U.MESSAGES.items() if p.lower() == path and m.sender == "client"), None)
        if spec is None:
            raise U.UspProtocolError("unknown_path", path=msg.path[:60])
        if path == "speech.config":
            msg.json()
            self._configured = True
            return []
        if not self._configured:
            raise U.UspProtocolError("config_first", path=spec.path)
        rid = msg.request_id
        if not rid:
            raise U.UspProtocolError("missing_header", header="X-RequestId")
        if not U.is_request_id(rid):
            raise U.UspProtocolError("request_id_format")
        if path == "telemetry":
            return []
        if rid.lower() in self._finished:
            if path == "audio" and msg.binary and bytes(msg.body[:4]) != b"RIFF":
                return []  # audio the client sent before it saw turn.end: the turn is over, drop it
            raise U.UspProtocolError("request_id_reuse")
        if path == "speech.context":
            self._contexts[rid.lower()] = msg.json()
            return []
        if not msg.binary:
            raise U.UspProtocolError("audio_format", detail="Audio must travel in binary messages.")
        return self._audio(rid, bytes(msg.body))

    def _audio(self, rid: str, body: bytes) -> list[Out]:
        out: list[Out] = []
        turn = self._turn
        if turn is None or turn.request_id.lower() != rid.lower():
            # A new request id starts a new turn; the service drops what belonged to the previous one.
            self._end_turn()
            fmt = U.parse_wave_header(body)
            if fmt.subtype != "PCM_16" or fmt.channels != 1 or fmt.sample_rate not in U.PUSH_STREAM_RATES:
                raise U.UspProtocolError("audio_format", detail=(
                    f"Expected 16-bit mono PCM at 8000 or 16000 Hz, got {fmt.subtype} with {fmt.channels} "
                    f"channel(s) at {fmt.sample_rate} Hz."))
            turn = self._turn = self._new_turn(rid, fmt.sample_rate)
            out.append(self._text("turn.start", {"context": {"serviceTag": self._hex()}}))
            body = body[fmt.header_bytes:]
            if not body:
                return out
        elif not body:
            return out + self._finish_turn(turn)
        out += self._feed(turn, body, last=False)
        return out

    # ----------------------------------------------------------------------------------------- recognition
    def _new_turn(self, rid: str, in_rate: int) -> _Turn:
        context = self._contexts.get(rid.lower(), {})
        detection = context.get("phraseDetection") if isinstance(context.get("phraseDetection"), dict) else {}
        diar = detection.get("speakerDiarization") if isinstance(detection, dict) else None
        diarize = isinstance(diar, dict) or (not context and self.route.conversation)
        intermediate = isinstance(diar, dict) and str(diar.get("diarizeIntermediates", "")).lower() == "true"
        output = context.get("phraseOutput") if isinstance(context.get("phraseOutput"), dict) else {}
        detailed = str(output.get("format", "")).lower() == "detailed"
        resampler = None
        if in_rate != self.pipeline_rate:
            resampler = Resampler(in_rate, self.pipeline_rate)
        pipeline = LocalPipeline(self.engines, vad=self.vad, partials=True, sample_rate=self.pipeline_rate)
        return _Turn(rid, in_rate, pipeline, resampler, diarize, intermediate, detailed)

    def _feed(self, turn: _Turn, data: bytes, *, last: bool) -> list[Out]:
        data = turn.carry + data
        cut = len(data) - len(data) % 2
        turn.carry = data[cut:]
        pcm = np.frombuffer(data[:cut], dtype="<i2").astype(np.int16)
        if turn.resampler is not None:
            pcm = turn.resampler.process(pcm, last=last)
        events = turn.pipeline.feed(np.ascontiguousarray(pcm, dtype=np.int16)) if len(pcm) else []
        if last:
            events += turn.pipeline.flush()
        out: list[Out] = []
        for ev in events:
            if isinstance(ev, SpeechStarted):
                turn.onset_ms = self._onset_ms(ev.audio_start_ms, turn)
                turn.phrase_speaker = U.SPEAKER_UNKNOWN
                turn.peeked_at_ms = -1e9
                if not turn.start_sent:
                    turn.start_sent = True
                    out.append(self._text("speech.startDetected", {"Offset": U.ms_to_ticks(turn.onset_ms)}))
            elif isinstance(ev, Partial):
                out.append(self._hypothesis(turn, ev))
            elif isinstance(ev, Final):
                phrase = self._phrase(turn, ev)
                turn.phrases += 1
                if self.route.single_shot and not last:  # recognize_once: the first phrase ends the turn
                    end = U.ms_to_ticks(ev.end_ms)
                    return out + [self._text("speech.endDetected", {"Offset": end}), phrase,
                                  *self._close_turn(turn)]
                out.append(phrase)
                turn.onset_ms = None
        return out

    def _onset_ms(self, segment_start_ms: float, turn: _Turn) -> float:
        # The pipeline's segment starts prefix_padding_ms before the speech onset (less only at the stream start).
        return segment_start_ms + self.vad.prefix_padding_ms if segment_start_ms > 0 else 0.0

    def _hypothesis(self, turn: _Turn, ev: Partial) -> str:
        onset = turn.onset_ms if turn.onset_ms is not None else 0.0
        body: dict[str, Any] = {"Id": self._hex(), "Text": ev.text.strip(), "Offset": U.ms_to_ticks(onset),
                                "Duration": U.ms_to_ticks(max(0.0, ev.audio_ms - onset))}
        if turn.diarize:
            body["SpeakerId"] = self._partial_speaker(turn, ev.audio_ms)
        body["Channel"] = 0
        return self._text("speech.hypothesis", body)

    def _partial_speaker(self, turn: _Turn, audio_ms: float) -> str:
        if not turn.intermediate_diarization or turn.onset_ms is None:
            return U.SPEAKER_UNKNOWN
        if audio_ms - turn.onset_ms >= INTERMEDIATE_DIARIZATION_MIN_MS and \
                audio_ms - turn.peeked_at_ms >= _PEEK_EVERY_MS:
            turn.peeked_at_ms = audio_ms
            label = self._speakers.peek(turn.pipeline.segment_audio())
            turn.phrase_speaker = self._guest(label) if label else U.SPEAKER_UNKNOWN
        return turn.phrase_speaker

    def _guest(self, label: str) -> str:
        return U.guest_speaker_id(self._speakers.labels.index(label) + 1)

    def _phrase(self, turn: _Turn, ev: Final) -> str:
        onset = turn.onset_ms if turn.onset_ms is not None else ev.start_ms
        lexical = " ".join(ev.transcript.text.split())
        body: dict[str, Any] = {"Id": self._hex(), "RecognitionStatus": "Success" if lexical else "NoMatch",
                                "Offset": U.ms_to_ticks(onset), "Duration": U.ms_to_ticks(max(0.0, ev.end_ms - onset)),
                                "Channel": 0, "DisplayText": display_text(lexical)}
        if lexical and turn.diarize:
            body["SpeakerId"] = self._guest(self._speakers.assign(ev.audio))
        if lexical and turn.detailed:
            confidence = float(np.exp(ev.transcript.avg_logprob)) if ev.transcript.avg_logprob else 0.0
            body["NBest"] = [{"Confidence": round(confidence, 4), "Lexical": lexical, "ITN": lexical,
                              "MaskedITN": lexical, "Display": body["DisplayText"]}]
        return self._text("speech.phrase", body)

    def _finish_turn(self, turn: _Turn) -> list[Out]:
        out = self._feed(turn, b"", last=True)
        end = U.ms_to_ticks(turn.pipeline.audio_ms)
        out.append(self._text("speech.endDetected", {"Offset": end}))
        if not self.route.single_shot:
            out.append(self._text("speech.phrase", {"Id": self._hex(), "RecognitionStatus": "EndOfDictation",
                                                     "Offset": end, "Duration": 0, "Channel": 0}))
        elif not turn.phrases:  # recognize_once heard nothing
            out.append(self._text("speech.phrase", {"Id": self._hex(), "RecognitionStatus": "InitialSilenceTimeout",
                                                     "Offset": 0, "Duration": end, "Channel": 0}))
        return out + self._close_turn(turn)

    def _close_turn(self, turn: _Turn) -> list[Out]:
        out: list[Out] = [self._text("turn.end", None)]
        self._finished.add(turn.request_id.lower())
        self._contexts.pop(turn.request_id.lower(), None)
        self._end_turn()
        return out

    def _end_turn(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            turn.pipeline.close()

    # ----------------------------------------------------------------------------------------- framing
    def _hex(self) -> str:
        return self._ids.hex128("usp")

    def _text(self, path: str, body: dict | None) -> str:
        assert self._turn is not None
        return U.encode_text(path, body, request_id=self._turn.request_id)
