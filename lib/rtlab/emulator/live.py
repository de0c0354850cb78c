"""The emulator's GPT-Live endpoint: one full-duplex Live session, sans I/O (layer: emulator).

A :class:`LiveSession` speaks the transcription-relevant subset of the GPT-Live protocol (``/v1/live/sessions``,
Azure ``/openai/v1/live/sessions``; facts and evidence in :mod:`rtlab.protocol.live`):

* ``session.start`` → ``session.started`` (the configuration validated strictly against the SDK's models: an
  unknown field is an ``error`` naming it), then ``info`` events that label what is emulated;
* ``session.input_audio.append`` in the format chosen at start (PCM16 16/24 kHz, G.711 μ/A-law decoded with
  soundfile) feeds ONE :class:`~rtlab.engines.pipeline.LocalPipeline` (VAD turns + streaming recognizer), whose
  stable text goes out as append-only ``session.input_transcript.delta`` fragments stamped with ``start_ms`` /
  ``end_ms`` on the session timeline — no items, no turns, no done event;
* full-duplex assistant speech: when the VAD closes a user turn with words in it, the emulated model answers with
  :func:`rtlab.emulator.realtime.reply_text`, spoken by the flite TTS of the engine set, as
  ``session.output_transcript.delta`` and ``session.output_audio.delta`` paced on the session timeline: each 100 ms
  chunk goes out when the input audio reaches its start, so the model speaks while the user speaks, and it does not
  stop when talked over (the protocol has no cancel; the real model decides itself when to yield);
* ``session.update`` → ``session.updated``; ``session.input_audio.mute``/``unmute`` (muted audio is heard as
  silence); ``session.instructions.append`` → ``session.instructions.appended``;
* ``session.usage.updated`` every 5 s of session timeline and before ``session.closed`` (emulated usage: the
  session timeline in whole seconds); ``session.close`` → last input fragments, ``session.closed`` with reason
  ``close_requested`` and final usage, then the socket closes (1000).

Features outside that subset (delegation to Responses/Decisions, decisions, triggers, thinking/commentary,
audio fixtures, custom voices, WebRTC frontend config, forks, sideband, DTMF) get an ``error`` with code
``not_emulated`` naming the feature, never a silent accept (:data:`rtlab.protocol.live.NOT_EMULATED`).

The **session timeline** is the input audio received, in ms (an assumption: the real origin is "the beginning of
the session"), so a client streaming from its first sample reads every ``start_ms`` on its own audio clock.

Example
-------
>>> from rtlab.engines import default_engines                                   # doctest: +SKIP
>>> s = LiveSession(engines=default_engines(), seed=1)                          # doctest: +SKIP
>>> [e["type"] for e in s.receive('{"type":"session.start","session":{"model":"gpt-live-1"}}')]  # doctest: +SKIP
['session.started', 'info']
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soundfile as sf

from rtlab.audio import Resampler, resample
from rtlab.engines.base import EngineSet
from rtlab.engines.pipeline import Final, LocalPipeline, Partial, SpeechStarted, SpeechStopped, VadParams
from rtlab.protocol import live as L

from .adapter import Close, Out
from .ids import Ids
from .realtime import reply_text

__all__ = ["ANSWER_PAUSE_MS", "LiveRoute", "LiveSession", "OUTPUT_CHUNK_MS", "USAGE_INTERVAL_MS", "route_live"]

log = logging.getLogger("rtlab.emulator")

OUTPUT_CHUNK_MS = 100  # assistant audio per session.output_audio.delta
ANSWER_PAUSE_MS = 300  # silence between two answers that queue up (the emulated model's own choice)
USAGE_INTERVAL_MS = 5000  # session.usage.updated cadence on the session timeline (assumed)
SESSION_LIMIT_S = 3600  # expires_at = start + this (assumed; not documented)
MAX_APPEND_BYTES = 15 * 1024 * 1024
DEFAULT_INSTRUCTIONS = ("rtlab emulator: acknowledge what the user said in one short sentence, repeating its key "
                        "words.")
EMULATION_NOTE = ("rtlab emulator: GPT-Live emulated locally. Input transcript from a local streaming recognizer "
                  "(PocketSphinx) on VAD turns; replies are canned acknowledgements spoken by flite; the session "
                  "timeline is the input audio received; usage is emulated (timeline seconds), not billed.")
# Built-in voices spoken by flite's male voice; the others by its female voice (the emulator's own choice).
_MALE = frozenset({"ash", "echo", "ballad", "verse", "cedar", "ripple", "vesper", "stone", "meridian", "tempo",
                   "beacon", "cinder", "shida"})
_SOUNDFILE_LAW = {"audio/pcmu": "ULAW", "audio/pcma": "ALAW"}
_DEFAULT_VAD = VadParams()


class _Refusal(Exception):
    """A client mistake (or a feature outside the emulated subset), answered with one ``error`` event."""

    def __init__(self, code: str, message: str, *, param: str | None = None, type: str = "invalid_request_error"):
        super().__init__(message)
        self.code, self.message, self.param, self.type = code, message, param, type


def _not_emulated(feature: str, param: str | None, detail: str = "") -> _Refusal:
    what = L.NOT_EMULATED[feature].what
    return _Refusal("not_emulated", f"rtlab's emulator does not emulate GPT-Live {feature} ({what}){detail}. Use "
                    "a real GPT-Live endpoint for it, or leave it out.", param=param)


@dataclass
class _Reply:
    """One spoken answer of the emulated model, placed on the session timeline from ``t0_ms``."""

    text: str
    t0_ms: float
    voice: str
    future: Any = None  # concurrent.futures.Future of the encoded chunks when synthesized elsewhere
    chunks: list[bytes] | None = None
    duration_ms: float = 0.0
    words: list[str] = field(default_factory=list)
    sent_words: int = 0
    sent_chunks: int = 0

    def ready(self, block: bool) -> bool:
        if self.chunks is not None:
            return True
        if self.future is None or (not block and not self.future.done()):
            return False
        self.chunks, self.duration_ms = self.future.result()
        return True

    def word_span(self, i: int) -> tuple[int, int]:
        n = max(len(self.words), 1)
        return (round(self.t0_ms + i * self.duration_ms / n), round(self.t0_ms + (i + 1) * self.duration_ms / n))

    @property
    def done(self) -> bool:
        return self.chunks is not None and self.sent_chunks >= len(self.chunks) and self.sent_words >= len(self.words)

    @property
    def end_ms(self) -> float:
        return self.t0_ms + self.duration_ms


class LiveSession:
    """One GPT-Live WebSocket session without I/O. No method raises: mistakes are ``error`` events.

    Parameters
    ----------
    engines : EngineSet
        ``vad_factory`` and ``asr`` for the one :class:`LocalPipeline`; ``tts`` for the assistant's speech.
    provider : {"openai", "azure"}
        Which path the client connected to; on Azure ``session.model`` is a deployment name.
    deployments : mapping, optional
        Azure ``{deployment: model}``: a deployment of a Realtime model is refused like the model itself.
    seed : int or str, optional
        Reproducible ids.
    validate : bool
        Check every outgoing event against the SDK's Live models (debugging); a mismatch raises inside and is
        answered with a ``server_error``.
    run_async : callable, optional
        ``run_async(fn) -> Future``: where speech synthesis runs, so audio keeps flowing meanwhile; the answer's
        events then come from :meth:`pump`. Default: inline.
    vad : VadParams
        Turn detection of the emulated model (when it answers; the input transcript streams regardless).
    clock : callable
        Unix time for ``expires_at``.
    """

    def __init__(self, *, engines: EngineSet, provider: str = "openai", deployments: Mapping[str, str] | None = None,
                 seed: int | str | None = None, validate: bool = False,
                 run_async: Callable[[Callable[[], Any]], Any] | None = None, vad: VadParams = _DEFAULT_VAD,
                 clock: Callable[[], float] = time.time) -> None:
        if provider not in L.PATHS:
            raise ValueError(f"provider must be one of {', '.join(L.PATHS)}, got {provider!r}")
        self.engines = engines
        self.provider = provider
        self.deployments = dict(deployments or {})
        self.validate = validate
        self._id = Ids(seed)
        self._run_async = run_async
        self._vad = vad
        self._clock = clock
        self.session: dict | None = None  # the resolved SessionResource once started
        self.closed = False
        self._fmt = L.DEFAULT_FORMAT
        self._pipe: LocalPipeline | None = None
        self._upsample: Resampler | None = None  # 8 kHz -> 16 kHz for G.711 input
        self._n_in = 0  # input samples received (at the session format's rate): the session timeline
        self._carry = b""  # odd trailing byte of PCM16 input
        self._muted = False
        self._in_text = ""
        self._out_text = ""
        self._seg_start: dict[int, float] = {}
        self._frag_end: dict[int, float] = {}
        self._stopped_at: dict[int, float] = {}
        self._replies: deque[_Reply] = deque()
        self._speaking_until = -math.inf  # end of the last scheduled answer on the timeline
        self._next_usage_ms = USAGE_INTERVAL_MS

    def __repr__(self) -> str:
        state = "closed" if self.closed else "started" if self.session else "new"
        return f"LiveSession(provider={self.provider!r}, {state}, timeline_ms={self.timeline_ms:.0f})"

    # --------------------------------------------------------------------------------------------- interface
    def start(self) -> list[Out]:
        """Nothing on connect: the client speaks first (``session.start``)."""
        return []

    def receive(self, message: str | bytes) -> list[Out]:
        """Handle one client message; every server output it causes, in order."""
        if self.closed:
            return []
        client_event_id = None
        try:
            event = self._parse(message)
            if isinstance(event.get("event_id"), str):
                client_event_id = event["event_id"]
            return list(self._dispatch(event, client_event_id))
        except _Refusal as exc:
            return [self._error(exc, client_event_id)]
        except Exception:  # never leak internals
            log.exception("emulator: internal error in a GPT-Live session")
            return [self._error(_Refusal("server_error", "The server had an error while processing your request.",
                                         type="server_error"), client_event_id)]

    def pending(self) -> bool:
        """True while an answer is being synthesized elsewhere (``run_async``): call :meth:`pump`."""
        return not self.closed and any(r.chunks is None for r in self._replies)

    def pump(self) -> list[Out]:
        """Events of answers whose speech became ready, up to the current timeline."""
        if self.closed:
            return []
        try:
            return list(self._release(block=False))
        except Exception:
            log.exception("emulator: internal error while streaming a GPT-Live answer")
            self._replies.clear()
            return [self._error(_Refusal("server_error", "The server had an error generating audio.",
                                         type="server_error"), None)]

    def close(self) -> None:
        """Release the recognizer; the session answers nothing afterwards."""
        self.closed = True
        if self._pipe is not None:
            self._pipe.close()
        self._replies.clear()
        self._upsample = None

    @property
    def timeline_ms(self) -> float:
        """The session timeline: input audio received so far (ms)."""
        return self._n_in * 1000.0 / self._fmt.rate

    # --------------------------------------------------------------------------------------------- events
    def _ev(self, etype: str, client_event_id: str | None = None, **fields: Any) -> dict:
        event: dict[str, Any] = {"type": etype}
        if etype != "session.output_audio.delta":  # primary-socket audio deltas carry no event_id (SDK)
            event["event_id"] = self._id("event")
        event.update(fields)
        if client_event_id is not None:
            event["client_event_id"] = client_event_id
        if self.validate:
            L.validate_server_event(event)
        return event

    def _error(self, exc: _Refusal, client_event_id: str | None) -> dict:
        err = {"type": exc.type, "code": exc.code, "message": exc.message, "param": exc.param}
        if client_event_id is not None:
            err["client_event_id"] = client_event_id
        return self._ev("error", client_event_id, error=err)

    def _info(self, code: str, message: str) -> dict:
        return self._ev("info", code=code, message=message)

    def _resource(self) -> dict:
        return json.loads(json.dumps(self.session))

    # --------------------------------------------------------------------------------------------- parsing
    def _parse(self, message: str | bytes) -> dict:
        try:
            event = json.loads(message)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8 text"
            raise _Refusal("invalid_json", f"The server could not parse the event as JSON: {detail}.") from None
        except RecursionError:
            raise _Refusal("invalid_json", "The server could not parse the event as JSON: nested too deeply.") \
                from None
        if not isinstance(event, dict):
            raise _Refusal("invalid_json", f"Expected a JSON object as event, got {type(event).__name__}.")
        return event

    def _dispatch(self, event: dict, client_event_id: str | None) -> Iterator[Out]:
        try:
            parsed = L.parse_client_event(event)
        except L.LiveParamError as exc:
            raise _Refusal(exc.code, exc.wire_message, param=exc.param) from None
        etype = event["type"]
        support = L.CLIENT_EVENT_SUPPORT.get(etype, "")
        if support != "emulated":
            raise _not_emulated(support, "type")
        if etype == "session.start":
            yield from self._on_start(event, parsed, client_event_id)
            return
        if self.session is None:
            raise _Refusal("session_not_started", f"Send session.start and wait for session.started before "
                           f"'{etype}'.", param="type")
        handler = {
            "session.input_audio.append": self._on_append,
            "session.update": self._on_update,
            "session.input_audio.mute": self._on_mute,
            "session.input_audio.unmute": self._on_mute,
            "session.instructions.append": self._on_instructions,
            "session.close": self._on_close,
        }[etype]
        yield from handler(event, client_event_id)

    # --------------------------------------------------------------------------------------------- start
    def _check_model(self, model: str) -> None:
        api = L.api_of(model, deployments=self.deployments)
        if self.provider == "openai" and api != "live":
            why = (" is a Realtime API model; GPT-Live sessions take " if api == "realtime"
                   else " is not a GPT-Live model; GPT-Live sessions take ")
            raise _Refusal("invalid_model", f"The model '{model[:100]}'{why}"
                           + " or ".join(f"'{m}'" for m in L.MODELS) + ".", param="session.model")
        if self.provider == "azure" and api == "realtime":
            raise _Refusal("invalid_model", f"The deployment '{model[:100]}' is not a GPT-Live deployment; name a "
                           "deployment of gpt-live-1.", param="session.model")

    def _on_start(self, event: dict, parsed: Any, client_event_id: str | None) -> Iterator[Out]:
        if self.session is not None:
            raise _Refusal("session_already_started", "The session has already started; session.start is "
                           "accepted once per connection.", param="type")
        cfg = parsed.session
        self._check_model(cfg.model)
        raw = event["session"]
        notes: list[tuple[str, str]] = []
        if cfg.client is not None:
            raise _not_emulated("WebRTC frontend config", "session.client")
        if cfg.triggers:
            raise _not_emulated("decisions", "session.triggers", ": triggers evaluate Decisions questions")
        if cfg.delegation is not None:
            if cfg.delegation.type != "client":
                raise _not_emulated("delegation", "session.delegation.type", f" to {cfg.delegation.type}")
            notes.append(("not_emulated", "delegation.type 'client' accepted, but the emulated model never "
                                          "delegates (no session.delegation.created events)."))
        if cfg.store:
            notes.append(("not_emulated", "store=true accepted, but the emulator keeps nothing: forks and recording "
                                          "download are not emulated."))
        audio = cfg.audio
        voice = (audio.output.voice if audio is not None and audio.output is not None else None) or L.DEFAULT_VOICE
        if not isinstance(voice, str):
            raise _not_emulated("custom voices", "session.audio.output.voice")
        if voice not in L.VOICES:
            raise _Refusal("invalid_value", f"Invalid value: '{voice[:100]}'. Supported values are: "
                           + ", ".join(f"'{v}'" for v in L.VOICES) + ".", param="session.audio.output.voice")
        fmt_raw = (raw.get("audio") or {}).get("format") if isinstance(raw.get("audio"), dict) else None
        key = L.format_key(fmt_raw)
        if key not in L.AUDIO_FORMATS:
            raise _Refusal("invalid_value", f"Invalid value: {key[1]}. {key[0]} audio uses 8000 Hz.",
                           param="session.audio.format.rate")
        self._fmt = L.AUDIO_FORMATS[key]
        session: dict[str, Any] = {
            "id": self._id("sess"),
            "expires_at": int(self._clock()) + SESSION_LIMIT_S,
            "model": cfg.model,
            "status": "active",
            "audio": {"format": self._fmt.to_wire(), "output": {"voice": voice}},
            "delegation": raw.get("delegation"),
            "input": raw.get("input") or [],
            "instructions": cfg.instructions if (cfg.instructions or "").strip() else DEFAULT_INSTRUCTIONS,
            "store": bool(cfg.store),
            "triggers": [],
        }
        if cfg.safety_identifier is not None:
            session["safety_identifier"] = cfg.safety_identifier
        rate = self._fmt.rate if self._fmt.rate >= 16000 else 16000
        self._upsample = None if rate == self._fmt.rate else Resampler(self._fmt.rate, rate)
        self._pipe = LocalPipeline(self.engines, vad=self._vad, partials=True, sample_rate=rate)
        self.session = session
        yield self._ev("session.started", client_event_id, session=self._resource())
        yield self._info("rtlab_emulator", EMULATION_NOTE)
        for code, message in notes:
            yield self._info(code, message)

    # --------------------------------------------------------------------------------------------- update
    def _on_update(self, event: dict, client_event_id: str | None) -> Iterator[Out]:
        try:
            upd = L.validate_session_update(event.get("session", {}))
        except L.LiveParamError as exc:
            raise _Refusal(exc.code, exc.wire_message, param=exc.param) from None
        assert self.session is not None
        if upd.delegation is not None:
            current = (self.session.get("delegation") or {}).get("type", "client")
            if upd.delegation.type != current:
                raise _Refusal("invalid_value", f"The delegation type cannot change (session: '{current}', update: "
                               f"'{upd.delegation.type}').", param="session.delegation.type")
            if upd.delegation.type != "client":
                raise _not_emulated("delegation", "session.delegation")
            self.session["delegation"] = dict(self.session.get("delegation") or {"type": "client"},
                                              **event["session"]["delegation"])
        if upd.triggers:
            raise _not_emulated("decisions", "session.triggers", ": triggers evaluate Decisions questions")
        yield self._ev("session.updated", client_event_id, session=self._resource())

    def _on_mute(self, event: dict, client_event_id: str | None) -> Iterator[Out]:
        self._muted = event["type"] == "session.input_audio.mute"
        yield self._ev("session.input_audio.muted" if self._muted else "session.input_audio.unmuted",
                       client_event_id)

    def _on_instructions(self, event: dict, client_event_id: str | None) -> Iterator[Out]:
        if event.get("delegation_id") is not None:
            raise _Refusal("invalid_value", f"No delegation '{str(event['delegation_id'])[:64]}' in this session.",
                           param="delegation_id")
        now = round(self.timeline_ms)
        yield self._ev("session.instructions.appended", client_event_id, start_ms=now, end_ms=now)

    # --------------------------------------------------------------------------------------------- audio in
    def _decode(self, raw: bytes) -> np.ndarray:
        if self._fmt.type == "audio/pcm":
            raw = self._carry + raw
            self._carry = raw[len(raw) - len(raw) % 2:]
            return np.frombuffer(raw[: len(raw) - len(raw) % 2], dtype="<i2").astype(np.int16)
        if not raw:
            return np.zeros(0, np.int16)
        pcm, _ = sf.read(io.BytesIO(raw), format="RAW", subtype=_SOUNDFILE_LAW[self._fmt.type],
                         samplerate=self._fmt.rate, channels=1, dtype="int16")
        return np.asarray(pcm, dtype=np.int16).reshape(-1)

    def _to_pipeline(self, pcm: np.ndarray, *, last: bool = False) -> np.ndarray:
        """G.711's 8 kHz goes to the recognizer at 16 kHz (rtlab.audio.Resampler): the local models are wideband, and upsampling
        once here recognizes better than inside the recognizer (measured on the bundled clips)."""
        if self._upsample is None:
            return pcm
        return self._upsample.process(np.asarray(pcm, dtype=np.int16), last=last)

    def _on_append(self, event: dict, client_event_id: str | None) -> Iterator[Out]:
        audio = event["audio"]
        if len(audio) * 3 // 4 > MAX_APPEND_BYTES + 3:
            raise _Refusal("invalid_value", f"Audio content of {len(audio) * 3 // 4} bytes exceeds the maximum of "
                           f"{MAX_APPEND_BYTES} bytes per session.input_audio.append; send smaller chunks.",
                           param="audio")
        try:
            raw = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise _Refusal("invalid_value", "Invalid 'audio'. Expected base64-encoded raw audio in the session's "
                           "format.", param="audio") from None
        pcm = self._decode(raw)
        if self._muted:
            pcm = np.zeros_like(pcm)  # "An independent input mute sends silence to the model."
        if not len(pcm):
            return
        assert self._pipe is not None
        found = self._pipe.feed(self._to_pipeline(pcm))
        self._n_in += len(pcm)
        yield from self._on_pipeline(found)
        yield from self._release(block=False)
        yield from self._usage_due()

    def _on_pipeline(self, found: list) -> Iterator[Out]:
        for ev in found:
            if isinstance(ev, SpeechStarted):
                self._seg_start[ev.segment] = ev.audio_start_ms
            elif isinstance(ev, Partial):
                yield from self._fragment(ev.segment, ev.delta, ev.audio_ms)
            elif isinstance(ev, SpeechStopped):
                self._stopped_at[ev.segment] = ev.detected_ms
            elif isinstance(ev, Final):
                rest = ev.transcript.text[len(ev.streamed):]
                self._seg_start.setdefault(ev.segment, ev.start_ms)
                if rest.strip():
                    yield from self._fragment(ev.segment, rest, ev.end_ms)
                text = ev.transcript.text.strip()
                if text and ev.cause != "flush":
                    self._answer(text, self._stopped_at.pop(ev.segment, ev.end_ms))
                self._seg_start.pop(ev.segment, None)
                self._frag_end.pop(ev.segment, None)

    def _fragment(self, seg: int, delta: str, end_ms: float) -> Iterator[Out]:
        start = self._frag_end.get(seg, self._seg_start.get(seg, end_ms))
        if not delta.strip():
            return
        if self._in_text and not delta[:1].isspace():
            delta = " " + delta
        elif not self._in_text:
            delta = delta.lstrip()
        self._in_text += delta
        self._frag_end[seg] = end_ms
        yield self._ev("session.input_transcript.delta", delta=delta, start_ms=round(start),
                       end_ms=max(round(end_ms), round(start)))

    # --------------------------------------------------------------------------------------------- speech out
    def _answer(self, heard: str, at_ms: float) -> None:
        """Schedule the emulated model's spoken answer to a user turn, from when the turn ended (or its last
        answer ends: the answers of several turns play one after another)."""
        assert self.session is not None
        text = reply_text(heard)
        start = max(at_ms, self._speaking_until + ANSWER_PAUSE_MS)
        reply = _Reply(text, start, self.session["audio"]["output"]["voice"],
                       words=text.split())
        work = self._synthesizer(text, reply.voice)
        if self._run_async is not None:
            reply.future = self._run_async(work)
        else:
            reply.chunks, reply.duration_ms = work()
        # Until the audio is ready its length is unknown: estimate for the next answer's start (≈ 80 ms per char).
        self._speaking_until = reply.t0_ms + (reply.duration_ms or 80.0 * len(text))
        self._replies.append(reply)

    def _synthesizer(self, text: str, voice: str) -> Callable[[], tuple[list[bytes], float]]:
        tts, fmt = self.engines.tts, self._fmt

        def work() -> tuple[list[bytes], float]:
            flite = "rms" if voice in _MALE else "slt"
            voices = getattr(tts, "voices", None)
            pcm = np.asarray(tts.synthesize(text, voice=flite if voices is None or flite in voices else None),
                             dtype=np.int16)
            rate = int(getattr(tts, "sample_rate", 24000))
            if rate != fmt.rate and len(pcm):
                pcm = resample(pcm, rate, fmt.rate)
            if fmt.type == "audio/pcm":
                data, per = pcm.astype("<i2").tobytes(), 2 * fmt.rate * OUTPUT_CHUNK_MS // 1000
            else:
                buf = io.BytesIO()
                sf.write(buf, pcm, fmt.rate, format="RAW", subtype=_SOUNDFILE_LAW[fmt.type])
                data, per = buf.getvalue(), fmt.rate * OUTPUT_CHUNK_MS // 1000
            return [data[i: i + per] for i in range(0, len(data), per)], len(pcm) * 1000.0 / fmt.rate

        return work

    def _release(self, *, block: bool) -> Iterator[Out]:
        """Send the answers' transcript words and audio chunks whose place on the timeline has been reached."""
        now = self.timeline_ms
        while self._replies:
            reply = self._replies[0]
            if not reply.ready(block):
                return
            if reply.t0_ms + reply.sent_chunks * OUTPUT_CHUNK_MS > now and reply.sent_chunks < len(reply.chunks):
                return
            while reply.sent_chunks < len(reply.chunks) and reply.t0_ms + reply.sent_chunks * OUTPUT_CHUNK_MS <= now:
                chunk_end = reply.t0_ms + (reply.sent_chunks + 1) * OUTPUT_CHUNK_MS
                yield from self._words(reply, until_ms=chunk_end)
                yield self._ev("session.output_audio.delta", delta=base64.b64encode(
                    reply.chunks[reply.sent_chunks]).decode("ascii"))
                reply.sent_chunks += 1
            if reply.sent_chunks >= len(reply.chunks):
                yield from self._words(reply, until_ms=math.inf)
            if not reply.done:
                return
            self._replies.popleft()
            if not self._replies:  # the estimate made while it was being synthesized, now exact
                self._speaking_until = reply.end_ms

    def _words(self, reply: _Reply, *, until_ms: float) -> Iterator[Out]:
        while reply.sent_words < len(reply.words) and reply.word_span(reply.sent_words)[0] < until_ms:
            start, end = reply.word_span(reply.sent_words)
            word = reply.words[reply.sent_words]
            delta = (" " + word) if self._out_text else word
            self._out_text += delta
            reply.sent_words += 1
            yield self._ev("session.output_transcript.delta", delta=delta, start_ms=start, end_ms=end)

    # --------------------------------------------------------------------------------------------- usage, close
    def _usage(self) -> dict:
        return {"seconds": float(math.floor(self.timeline_ms / 1000.0))}

    def _usage_due(self) -> Iterator[Out]:
        if self.timeline_ms >= self._next_usage_ms:
            while self._next_usage_ms <= self.timeline_ms:
                self._next_usage_ms += USAGE_INTERVAL_MS
            yield self._ev("session.usage.updated", usage=self._usage())

    def _on_close(self, event: dict, client_event_id: str | None) -> Iterator[Out]:
        assert self._pipe is not None
        tail = self._to_pipeline(np.zeros(0, np.int16), last=True) if self._upsample is not None else None
        yield from self._on_pipeline((self._pipe.feed(tail) if tail is not None and len(tail) else [])
                                     + self._pipe.flush())
        # Speech the timeline has reached was being spoken: it goes out (waiting for a synthesis still running);
        # speech beyond the timeline is never spoken: the session ends here.
        yield from self._release(block=True)
        self._replies.clear()
        yield self._ev("session.usage.updated", usage=self._usage())
        yield self._ev("session.closed", client_event_id, reason="close_requested", session=self._resource(),
                       usage=self._usage())
        yield Close(1000, "session closed")
        self.close()


# --------------------------------------------------------------------------------------------------
# Handshake routing (pure): what the server's route table adds for GPT-Live
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LiveRoute:
    """A handshake that leads to a :class:`LiveSession` (``provider`` "openai" or "azure")."""

    path: str
    provider: str


def route_live(path_and_query: str) -> LiveRoute | tuple[int, str, str] | None:
    """Route a WebSocket upgrade request target for GPT-Live.

    Returns a :class:`LiveRoute` for ``/v1/live/sessions`` (OpenAI) or ``/openai/v1/live/sessions`` (Azure),
    ``(status, code, message)`` to refuse it (the model given as a query parameter: it belongs in
    ``session.start``), or ``None`` when the path is not a GPT-Live path. Authentication is the server's (the same
    ``Authorization: Bearer`` / ``api-key`` check as the Realtime paths).
    """
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(path_and_query)
    path = parts.path.rstrip("/")
    provider = next((p for p, (route, _) in L.PATHS.items() if route == path), None)
    if provider is None:
        return None
    if "model" in parse_qs(parts.query, keep_blank_values=True):
        return (400, "invalid_request_error", "GPT-Live takes no query parameters: send the model in "
                "session.start (session.model).")
    return LiveRoute(path, provider)
