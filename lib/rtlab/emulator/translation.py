"""The emulator's translation endpoint (``/v1/realtime/translations``): one translation session, sans I/O.

A :class:`TranslationSession` plays ``gpt-realtime-translate`` offline for the part rtlab studies: the source
transcript a translation session streams beside its translation (the seed question's second workaround). It
takes client events (JSON text) and returns server events (dicts), with the same small interface as every
emulated endpoint (:class:`rtlab.emulator.adapter.SessionLike`), so
:func:`rtlab.emulator.adapter.serve_session` puts it on a socket.

What happens to the audio
-------------------------
``session.input_audio_buffer.append`` audio (24 kHz PCM16) is cut into 200 ms frames, as the service does;
each complete frame goes through one :class:`rtlab.engines.pipeline.LocalPipeline` (WebRTC VAD turns,
streaming PocketSphinx with partials). ``elapsed_ms`` of every event is the input audio consumed so far, a
multiple of 200.

* stable text of the pipeline → ``session.input_transcript.delta`` (append-only; a space opens each new turn),
  only while ``audio.input.transcription`` is set;
* each finished piece of source text (a turn's end, or ``piece_words`` stable words mid-turn) is translated
  with Apertium (:class:`rtlab.engines.translate.ApertiumTranslator`) → ``session.output_transcript.delta``,
  and spoken with espeak-ng (:class:`rtlab.engines.espeak.EspeakTts`) → ``session.output_audio.delta`` in
  200 ms chunks of 24 kHz PCM16. Translation and speech run in :meth:`TranslationSession.pump`, so a slow
  translation never holds back the source transcript;
* ``session.close`` flushes the last partial frame and the open turn, sends what is left, then
  ``session.closed`` and closes the socket.

Rules: ``session.update`` is strict (:func:`rtlab.protocol.translation.check_session_update`): an unknown key
is an ``error`` with code ``unknown_parameter`` naming it, the socket stays open. A target language whose
Apertium pair is not installed is accepted (the real service supports it) and answered with an ``error`` event
(code ``rtlab_language_pair_missing``) that names the Debian package to install; the source transcript still
flows. Speech already in the target language is not translated (the service may stay silent for it).

Emulated, not measured: the source language is English (PocketSphinx en-us), there is no language detection,
no voice adaptation, ``noise_reduction`` is accepted and shown but not applied, and the timing is the local
engines' own (a turn's last words wait for the VAD's 500 ms of silence; a translation waits for Apertium,
about 0.3 s).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from rtlab.engines.base import EngineSet, Translator, TtsEngine
from rtlab.engines.pipeline import Final, LocalPipeline, Partial, VadParams
from rtlab.errors import RtlabError
from rtlab.protocol import translation as T

from .adapter import Close, Out
from .ids import Ids

if TYPE_CHECKING:  # pragma: no cover
    from .server import HttpRefusal

__all__ = ["TRANSLATION_PATHS", "TranslationRoute", "TranslationSession", "route_translation"]

log = logging.getLogger("rtlab.emulator")

_FRAME_SAMPLES = T.SAMPLE_RATE * T.FRAME_MS // 1000
_OUT_CHUNK_SAMPLES = T.SAMPLE_RATE * 200 // 1000  # translated audio goes out in 200 ms chunks (documented)
_MAX_APPEND_BYTES = 15 * 1024 * 1024
_VAD = VadParams()  # the server_vad defaults; the service's own segmentation is not documented
PAIR_MISSING = "rtlab_language_pair_missing"
TTS_MISSING = "rtlab_tts_missing"


#: Handshake paths of translation sessions: OpenAI's, and the Azure GA v1 equivalent (assumed, see
#: :data:`rtlab.protocol.translation.ENDPOINTS`).
TRANSLATION_PATHS: tuple[str, ...] = tuple(e.path for e in T.ENDPOINTS.values())


@dataclass(frozen=True)
class TranslationRoute:
    """An accepted translation handshake: its path and the model it names (on Azure a deployment name)."""

    path: str
    model: str


def route_translation(
    path_and_query: str, headers: Mapping[str, str], *, api_key: str | None = None
) -> TranslationRoute | HttpRefusal | None:
    """Decide a WebSocket upgrade to a translation path (pure): a route, a refusal, or None for another path.

    Same auth as the Realtime paths (``Authorization: Bearer KEY`` or ``api-key: KEY``; with ``api_key`` only
    that key); ``?model=`` is required, ``intent`` is refused (the SDK refuses it too).
    """
    from .server import HttpRefusal

    parts = urlsplit(path_and_query)
    path = parts.path.rstrip("/") or "/"
    if path not in TRANSLATION_PATHS:
        return None
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    if api_key is not None:  # the server checks keys for every path (rtlab.emulator.server.route_any)
        from .server import _authorize

        refusal = _authorize(headers, api_key=api_key, bearer_token=None)
        if refusal is not None:
            return refusal
    if "intent" in query:
        return HttpRefusal(
            400, "invalid_request_error", "Realtime translation sessions take no 'intent' query parameter."
        )
    model = query.get("model") or None
    if model is None:
        return HttpRefusal(
            400, "missing_required_parameter", f"Missing required parameter: 'model'. Use ?model={T.MODEL}."
        )
    return TranslationRoute(path, model)


@dataclass
class _Piece:
    """A finished piece of source text on its way to the target language."""

    text: str
    elapsed_ms: int
    target: str
    work: Future | None = None  # (translation, chunks) when run_async is given
    result: tuple[str, list[bytes]] | None = None
    text_sent: bool = False
    chunks_sent: int = 0
    errors: list[dict] = field(default_factory=list)


class TranslationSession:
    """One emulated translation session (sans I/O); see the module docstring for what it does.

    Parameters
    ----------
    engines : EngineSet
        ``vad_factory`` and ``asr`` feed the session's one :class:`LocalPipeline`.
    model : str
        The model named in the handshake (``?model=``), shown in the session object.
    seed : int or str, optional
        Reproducible ids.
    validate : bool
        Check every outgoing event against the SDK's ``RealtimeTranslation*`` models (raises on a mismatch).
    translator : callable, optional
        ``translator(source, target) -> Translator``; default
        :class:`~rtlab.engines.translate.ApertiumTranslator` (built once per target language; a missing pair
        raises :class:`~rtlab.engines.translate.LanguagePairMissingError`).
    tts : TtsEngine, optional
        Speaks translations (``voice`` = target language code); default
        :class:`~rtlab.engines.espeak.EspeakTts`.
    source_language : str
        Language of the input audio (the local recognizer's): ``"en"``.
    vad : VadParams
        Turn detection of the pipeline (the service's own segmentation is not documented).
    piece_words : int
        Translate mid-turn once this many stable words are waiting (a turn's end always translates).
    run_async : callable, optional
        ``run_async(fn, *args) -> Future`` (e.g. ``ThreadPoolExecutor.submit``) to translate and speak off the
        session's thread; default: inline, inside :meth:`pump`.
    clock : callable
        Wall clock in seconds (``expires_at``).
    """

    def __init__(
        self,
        *,
        engines: EngineSet,
        model: str = T.MODEL,
        seed: int | str | None = None,
        validate: bool = False,
        translator: Callable[[str, str], Translator] | None = None,
        tts: TtsEngine | None = None,
        source_language: str = "en",
        vad: VadParams = _VAD,
        piece_words: int = 12,
        run_async: Callable[..., Future] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engines = engines
        self.validate = validate
        self.source_language = source_language
        self.piece_words = piece_words
        self._id = Ids(seed)
        self._make_translator = translator
        self._tts = tts
        self._tts_error: RtlabError | None = None
        self._tts_reported = False
        self._run_async = run_async
        self._translators: dict[str, Translator | RtlabError] = {}
        self._vad = vad
        self._pipe: LocalPipeline | None = None
        self.session: dict[str, Any] = {
            "id": self._id("sess"),
            "type": "translation",
            "model": model,
            "expires_at": int(clock()) + T.EXPIRES_AFTER_S,
            "audio": {
                "input": {"transcription": None, "noise_reduction": None},
                "output": {"language": None},
            },
        }
        self._pending_pcm = b""
        self._frames = 0
        self._said_source = False  # any source transcript sent (a new turn then opens with a space)
        self._said_target = False
        self._seg_said = ""  # source text of the open turn already sent as deltas
        self._untranslated = ""  # stable source text of the open turn not yet sent for translation
        self._pieces: deque[_Piece] = deque()
        self._closing = False
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"TranslationSession(id={self.session['id']!r}, language={self.language!r}, "
            f"elapsed_ms={self.elapsed_ms}, pieces={len(self._pieces)})"
        )

    # ------------------------------------------------------------------------------------------ interface
    @property
    def elapsed_ms(self) -> int:
        """Input audio consumed by the engine (whole 200 ms frames)."""
        return self._frames * T.FRAME_MS

    @property
    def language(self) -> str | None:
        return self.session["audio"]["output"]["language"]

    @property
    def transcribing(self) -> bool:
        return self.session["audio"]["input"]["transcription"] is not None

    def start(self) -> list[Out]:
        """``session.created`` with the default configuration."""
        return [self._session_event("session.created")]

    def receive(self, message: str | bytes) -> list[Out]:
        """One client message → the events it causes, in order. Never raises."""
        if self._closing or self._closed:
            return []
        try:
            event = self._parse(message)
            if isinstance(event, T.Problem):
                return [self._error(event)]
            etype = event["type"]
            if etype == "session.update":
                return self._on_update(event)
            if etype == "session.input_audio_buffer.append":
                return self._on_append(event)
            if etype == "session.close":
                return self._on_close()
            listed = ", ".join(f"'{e}'" for e in T.CLIENT_EVENTS)
            return [
                self._error(
                    T.Problem(
                        "invalid_value",
                        f"Invalid value: '{etype[:100]}'. Supported values are: {listed}.",
                        param="type",
                    ),
                    event,
                )
            ]
        except Exception:  # a bug here must not reach the peer as a traceback
            log.exception("translation session %s: internal error", self.session["id"])
            return [self._server_error()]

    def pending(self) -> bool:
        """True while translated output is still to be sent (or the close is still to be answered)."""
        return bool(self._pieces) or (self._closing and not self._closed)

    def pump(self) -> list[Out]:
        """The next translated output: a piece's transcript delta and its next audio chunk, then the close."""
        try:
            out: list[Out] = []
            while self._pieces:
                piece = self._pieces[0]
                if not self._ready(piece):
                    return out
                out += self._emit(piece)
                if piece.chunks_sent < len(piece.result[1]):  # type: ignore[index]
                    return out
                self._pieces.popleft()
            if self._closing and not self._closed:
                self._closed = True
                out += [self._ev("session.closed"), Close(1000, "session closed")]
            return out
        except Exception:
            log.exception("translation session %s: internal error while sending output", self.session["id"])
            self._pieces.clear()
            return [self._server_error()]

    def drain(self) -> list[Out]:
        """Pump until nothing is pending (tests and batch use; waits for asynchronous work)."""
        out: list[Out] = []
        while self.pending():
            step = self.pump()
            if not step and self._pieces and self._pieces[0].work is not None:
                self._pieces[0].work.result()
            out += step
        return out

    def close(self) -> None:
        """Release the recognizer; the session answers nothing afterwards."""
        self._closed = True
        if self._pipe is not None:
            self._pipe.close()

    # ------------------------------------------------------------------------------------------ parsing
    def _parse(self, message: str | bytes) -> dict | T.Problem:
        try:
            event = json.loads(message)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8 text"
            return T.Problem("invalid_json", f"The server could not parse the event as JSON: {detail}.")
        except RecursionError:
            return T.Problem(
                "invalid_json", "The server could not parse the event as JSON: nested too deeply."
            )
        if not isinstance(event, dict):
            return T.Problem("invalid_json", f"Expected a JSON object as event, got {type(event).__name__}.")
        etype = event.get("type")
        if etype is None:
            return T.Problem(
                "missing_required_parameter", "Missing required parameter: 'type'.", param="type"
            )
        if not isinstance(etype, str):
            return T.Problem(
                "invalid_type",
                f"Invalid type for 'type': expected a string, got {type(etype).__name__}.",
                param="type",
            )
        return event

    # ------------------------------------------------------------------------------------------ events
    def _on_update(self, event: dict) -> list[Out]:
        extra = [k for k in event if k not in ("type", "session", "event_id")]
        if extra:
            return [
                self._error(
                    T.Problem("unknown_parameter", f"Unknown parameter: '{extra[0]}'.", param=extra[0]), event
                )
            ]
        if "session" not in event:
            return [
                self._error(
                    T.Problem(
                        "missing_required_parameter",
                        "Missing required parameter: 'session'.",
                        param="session",
                    ),
                    event,
                )
            ]
        problem = T.check_session_update(event["session"])
        if problem is not None:
            return [self._error(problem, event)]
        self.session = T.merge_session_update(self.session, event["session"])
        out: list[Out] = [self._session_event("session.updated")]
        lang = self.language
        if lang is not None and lang != self.source_language:
            failure = self._translator(lang)
            if isinstance(failure, RtlabError):
                out.append(
                    self._error(
                        T.Problem(
                            PAIR_MISSING,
                            f"The offline emulator cannot translate into {lang!r}: {failure}",
                            param="session.audio.output.language",
                            type="server_error",
                        ),
                        event,
                    )
                )
        return out

    def _on_append(self, event: dict) -> list[Out]:
        audio = event.get("audio")
        if audio is None:
            return [
                self._error(
                    T.Problem(
                        "missing_required_parameter", "Missing required parameter: 'audio'.", param="audio"
                    ),
                    event,
                )
            ]
        if not isinstance(audio, str):
            return [
                self._error(
                    T.Problem(
                        "invalid_type",
                        f"Invalid type for 'audio': expected a base64 string, got {type(audio).__name__}.",
                        param="audio",
                    ),
                    event,
                )
            ]
        if len(audio) * 3 // 4 > _MAX_APPEND_BYTES + 3:
            return [
                self._error(
                    T.Problem(
                        "invalid_value",
                        f"Audio content of {len(audio) * 3 // 4} bytes exceeds "
                        f"the maximum of {_MAX_APPEND_BYTES} bytes per append.",
                        param="audio",
                    ),
                    event,
                )
            ]
        try:
            raw = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            return [
                self._error(
                    T.Problem(
                        "invalid_value",
                        "Invalid 'audio'. Expected base64-encoded 24 kHz PCM16 mono audio bytes.",
                        param="audio",
                    ),
                    event,
                )
            ]
        data = self._pending_pcm + raw
        usable = len(data) - len(data) % (2 * _FRAME_SAMPLES)
        self._pending_pcm = data[usable:]
        out: list[Out] = []
        for i in range(0, usable, 2 * _FRAME_SAMPLES):
            out += self._frame(np.frombuffer(data[i : i + 2 * _FRAME_SAMPLES], dtype="<i2").astype(np.int16))
        return out

    def _on_close(self) -> list[Out]:
        out: list[Out] = []
        tail = self._pending_pcm[: len(self._pending_pcm) // 2 * 2]
        self._pending_pcm = b""
        if tail:  # the last partial frame, padded with silence to a whole frame
            tail += b"\0" * (2 * _FRAME_SAMPLES - len(tail))
            out += self._frame(np.frombuffer(tail, dtype="<i2").astype(np.int16))
        if self._pipe is not None:
            out += self._recognized(self._pipe.flush())
        self._closing = True
        return out + self.pump()

    # ------------------------------------------------------------------------------------------ audio → text
    def _frame(self, pcm: np.ndarray) -> list[Out]:
        if self._pipe is None:
            self._pipe = LocalPipeline(
                self.engines, vad=self._vad, partials=True, language=None, sample_rate=T.SAMPLE_RATE
            )
        events = self._pipe.feed(pcm)
        self._frames += 1
        return self._recognized(events)

    def _recognized(self, events: list) -> list[Out]:
        out: list[Out] = []
        for ev in events:
            if isinstance(ev, Partial):
                out += self._source_text(ev.delta)
                if len(self._untranslated.split()) >= self.piece_words:
                    self._finish_piece()
            elif isinstance(ev, Final):
                rest = (
                    ev.transcript.text[len(ev.streamed) :]
                    if ev.transcript.text.startswith(ev.streamed)
                    else ""
                )
                out += self._source_text(rest)
                self._finish_piece()
                self._seg_said = ""
        return out

    def _source_text(self, text: str) -> list[Out]:
        if not text.strip():
            return []
        if self._seg_said:
            delta = text if text.startswith(" ") else " " + text
        else:
            delta = (" " if self._said_source else "") + text.lstrip()
        self._seg_said += delta
        self._untranslated += delta
        self._said_source = True
        if not self.transcribing:
            return []
        return [self._ev("session.input_transcript.delta", delta=delta, elapsed_ms=self.elapsed_ms)]

    def _finish_piece(self) -> None:
        text, self._untranslated = " ".join(self._untranslated.split()), ""
        lang = self.language
        if not text or lang is None or lang == self.source_language:
            return  # nothing to say, no target yet, or speech already in the target language
        if isinstance(self._translator(lang), RtlabError):
            return  # reported once, at the session.update that chose the language
        piece = _Piece(text, self.elapsed_ms, lang)
        self._speaker()  # made here, on the session's thread, not by two workers at once
        if self._run_async is not None:
            piece.work = self._run_async(self._render, text, lang)
        self._pieces.append(piece)

    # ------------------------------------------------------------------------------------------ text → speech
    def _translator(self, lang: str) -> Translator | RtlabError:
        found = self._translators.get(lang)
        if found is None:
            try:
                if self._make_translator is not None:
                    found = self._make_translator(self.source_language, lang)
                else:
                    from rtlab.engines.translate import ApertiumTranslator

                    found = ApertiumTranslator(self.source_language, lang)
            except RtlabError as exc:  # missing program or pair: reported as an error event, never raised
                found = exc
            self._translators[lang] = found
        return found

    def _speaker(self) -> TtsEngine | RtlabError:
        if self._tts is None and self._tts_error is None:
            try:
                from rtlab.engines.espeak import EspeakTts

                self._tts = EspeakTts()
            except RtlabError as exc:
                self._tts_error = exc
        return self._tts if self._tts is not None else self._tts_error  # type: ignore[return-value]

    def _render(self, text: str, lang: str) -> tuple[str, list[bytes], list[T.Problem]]:
        """Translate and speak one piece (runs inline or on ``run_async``'s thread)."""
        translator = self._translator(lang)
        translated = translator.translate(text)  # type: ignore[union-attr]
        problems: list[T.Problem] = []
        tts = self._speaker()
        chunks: list[bytes] = []
        if isinstance(tts, RtlabError):
            problems.append(
                T.Problem(
                    TTS_MISSING,
                    f"The offline emulator cannot speak the translation: {tts}",
                    type="server_error",
                )
            )
        elif translated.strip():
            try:
                pcm = np.asarray(tts.synthesize(translated, voice=lang), dtype=np.int16)
            except RtlabError as exc:  # e.g. no espeak-ng voice for this language
                problems.append(
                    T.Problem(
                        TTS_MISSING, f"The offline emulator cannot speak {lang!r}: {exc}", type="server_error"
                    )
                )
            else:
                data = pcm.astype("<i2").tobytes()
                step = 2 * _OUT_CHUNK_SAMPLES
                chunks = [data[i : i + step] for i in range(0, len(data), step)]
        return translated, chunks, problems

    def _ready(self, piece: _Piece) -> bool:
        if piece.result is not None:
            return True
        if piece.work is not None and not piece.work.done():
            return False
        try:
            translated, chunks, problems = (
                piece.work.result() if piece.work is not None else self._render(piece.text, piece.target)
            )
        except RtlabError as exc:
            translated, chunks, problems = (
                "",
                [],
                [T.Problem("server_error", f"Translation failed: {exc}", type="server_error")],
            )
        piece.result = (translated, chunks)
        piece.errors = [self._error(p) for p in problems if p.code != TTS_MISSING or self._note_tts_problem()]
        return True

    def _note_tts_problem(self) -> bool:
        """Report a speech problem once per session, not once per piece."""
        first = not self._tts_reported
        self._tts_reported = True
        return first

    def _emit(self, piece: _Piece) -> list[Out]:
        translated, chunks = piece.result  # type: ignore[misc]
        out: list[Out] = []
        if not piece.text_sent:
            piece.text_sent = True
            out += piece.errors
            if translated.strip():
                delta = (" " if self._said_target else "") + translated.strip()
                self._said_target = True
                out.append(
                    self._ev("session.output_transcript.delta", delta=delta, elapsed_ms=piece.elapsed_ms)
                )
        if piece.chunks_sent < len(chunks):
            chunk = chunks[piece.chunks_sent]
            piece.chunks_sent += 1
            out.append(
                self._ev(
                    "session.output_audio.delta",
                    delta=base64.b64encode(chunk).decode("ascii"),
                    elapsed_ms=piece.elapsed_ms,
                    sample_rate=T.SAMPLE_RATE,
                    channels=1,
                    format="pcm16",
                )
            )
        return out

    # ---------------------------------------------------------------------------------------- building events
    def _ev(self, etype: str, **fields: Any) -> dict:
        event = {"type": etype, "event_id": self._id("event"), **fields}
        if self.validate:
            from .validation import validate_translation_event

            validate_translation_event(event)
        return event

    def _session_event(self, etype: str) -> dict:
        return self._ev(etype, session=json.loads(json.dumps(self.session)))

    def _error(self, problem: T.Problem, event: dict | None = None) -> dict:
        client_id = event.get("event_id") if isinstance(event, dict) else None
        return self._ev(
            "error",
            error={
                "type": problem.type,
                "code": problem.code,
                "message": problem.message,
                "param": problem.param,
                "event_id": client_id if isinstance(client_id, str) else None,
            },
        )

    def _server_error(self) -> dict:
        return self._error(
            T.Problem(
                None,
                "The server had an error while processing your request. Please retry.",
                type="server_error",
            )
        )
