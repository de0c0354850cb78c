"""The emulator's protocol core: one Realtime session, sans I/O.

A :class:`Session` takes client events (JSON text or dicts) and returns the server events to send, as dicts, in
order. It owns no socket, no event loop and no clock: the same object runs under the websockets adapter
(:mod:`rtlab.emulator.server`), in a unit test, or in a notebook cell::

    >>> s = Session(engines=fake_engines, kind="transcription", seed=1)          # doctest: +SKIP
    >>> [e["type"] for e in s.start()]                                            # doctest: +SKIP
    ['session.created']
    >>> s.receive({"type": "input_audio_buffer.append", "audio": b64})             # doctest: +SKIP

Work that takes time is still done here (ASR decoding, TTS), but in small steps so an adapter can interleave
sessions: :meth:`Session.iter_receive` yields events as soon as each is ready (a final transcript is out before
the spoken answer is synthesized), and an audio response streams chunk by chunk through :meth:`Session.pump`,
so new client audio can barge in between chunks. The turn and response states live in one table
(:mod:`rtlab.emulator.states`); the rules the service applies to a configuration are the data table
:data:`RULES`; what differs per endpoint comes from a :class:`~rtlab.emulator.profiles.Profile`.

Events are built by their GA names and renamed for the beta dialect at the edge with
:func:`rtlab.protocol.server_event_name`. Every client mistake is answered with an ``error`` event; an unexpected
failure inside the core becomes a generic ``server_error`` event and a log line, never a traceback.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import random
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from openai.types.realtime.realtime_session_create_request import RealtimeSessionCreateRequest
from openai.types.realtime.realtime_transcription_session_create_request import (
    RealtimeTranscriptionSessionCreateRequest,
)
from pydantic import TypeAdapter, ValidationError

from rtlab import protocol as P
from rtlab.audio import Resampler, decode_g711, encode_g711, resample
from rtlab.engines.base import EngineSet, Transcript
from rtlab.engines.turns import TurnDetector
from rtlab.errors import ConfigError
from rtlab.protocol import rules as R
from rtlab.protocol.events import CLIENT_EVENTS, client_events
from rtlab.protocol.shapes import beta_payload, session_from_ga, session_to_ga

from .profiles import Profile, load_profile
from .states import Machine, Rejected
from .validation import validate_server_event

# Everything is imported above, at module import: session threads importing modules for the first time at once
# can deadlock in importlib (seen under load with several sessions starting together).

__all__ = [
    "CLIENT_EVENTS",
    "Session",
    "reply_text",
]

log = logging.getLogger("rtlab.emulator")

SAMPLE_RATE = P.PCM_RATE
RESPONSE_CHUNK_MS = 100  # audio per response.output_audio.delta
IDLE_REPLY = "Are you still there?"  # the answer after server VAD's idle_timeout_ms
DEFAULT_INSTRUCTIONS = (
    "You are rtlab's local emulator. Acknowledge what the user said in one short sentence, repeating its key words."
)
# Token estimates (the emulator has no tokenizer): documented so analyses know what they compare against.
TRANSCRIBE_AUDIO_TOKENS_PER_S = 1000 / 60  # ≈ $0.006/min at $6 per 1M audio tokens (gpt-4o-transcribe)
REALTIME_AUDIO_IN_TOKENS_PER_S = 10.0
REALTIME_AUDIO_OUT_TOKENS_PER_S = 20.0

# Keys of a session object that a session.update replaces as a whole (all others merge key by key).
_REPLACE_KEYS = frozenset(
    {"turn_detection", "transcription", "format", "noise_reduction", "tracing", "prompt", "tools", "include",
     "output_modalities", "tool_choice", "voice", "reasoning", "truncation"}
)

_STOPWORDS = frozenset(
    "a an the and or but if then so to of in on at by for with from into over under about as is are was were be "
    "been being am do does did have has had i you he she it we they me him her us them my your his its our their "
    "this that these those there here what which who whom whose when where why how not no yes can could will would "
    "shall should may might must just very really also too than uh um oh okay ok well like get got".split()
)

_OPENAI_VOICE_TO_FLITE = {
    "alloy": "slt", "coral": "slt", "sage": "slt", "shimmer": "slt", "marin": "slt",
    "ash": "rms", "echo": "rms", "ballad": "awb", "verse": "awb", "cedar": "awb",
}


def reply_text(transcript: str) -> str:
    """The emulator's deterministic spoken answer to a user turn: an acknowledgement repeating its key words."""
    words = re.findall(r"[a-z0-9']+", transcript.lower())
    keys: list[str] = []
    for w in words:
        w = w.strip("'")
        if len(w) > 2 and w not in _STOPWORDS and w not in keys:
            keys.append(w)
    if not keys:
        return "Sorry, I did not catch that. Could you say it again?"
    keys = sorted(sorted(keys, key=len, reverse=True)[:3], key=keys.index)
    said = keys[0] if len(keys) == 1 else ", ".join(keys[:-1]) + " and " + keys[-1]
    return f"I heard you mention {said}."


class ProtocolError(Exception):
    """A client mistake, answered with an ``error`` event (never raised out of the core)."""

    def __init__(self, code: str | None, message: str, *, param: str | None = None,
                 type: str = "invalid_request_error"):
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.type = type


# --------------------------------------------------------------------------------------------------
# Session objects
# --------------------------------------------------------------------------------------------------
def _default_turn_detection(kind: str) -> dict:
    td: dict[str, Any] = {"type": "server_vad", **P.SERVER_VAD_DEFAULTS, "idle_timeout_ms": None}
    if kind == "realtime":
        td.update(create_response=True, interrupt_response=True)
    return td


def default_session(kind: str, model: str | None, session_id: str) -> dict:
    """The GA session object the service starts with (``session.created``)."""
    audio_in = {
        "format": P.audio_format_to_ga("pcm16"),
        "transcription": None,
        "noise_reduction": None,
        "turn_detection": _default_turn_detection(kind),
    }
    if kind == "transcription":
        return {"type": "transcription", "object": "realtime.transcription_session", "id": session_id,
                "audio": {"input": audio_in}, "include": None}
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "prompt": None,
        "include": None,
        "audio": {"input": audio_in,
                  "output": {"format": P.audio_format_to_ga("pcm16"), "voice": "alloy", "speed": 1.0}},
    }


def _merge(base: dict, patch: dict) -> dict:
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in _REPLACE_KEYS:
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _fill_defaults(session: dict, kind: str) -> dict:
    """Fill what the service fills in an applied configuration."""
    audio = session.setdefault("audio", {})
    if not isinstance(audio, dict):
        return session
    inp = audio.get("input")
    if isinstance(inp, dict):
        td = inp.get("turn_detection")
        if isinstance(td, dict) and td.get("type") == "server_vad":
            defaults = _default_turn_detection(kind)
            inp["turn_detection"] = {**defaults, **{k: v for k, v in td.items() if v is not None or k == "idle_timeout_ms"}}
        elif isinstance(td, dict) and td.get("type") == "semantic_vad":
            filled = {"type": "semantic_vad", "eagerness": "auto"}
            if kind == "realtime":
                filled.update(create_response=True, interrupt_response=True)
            inp["turn_detection"] = {**filled, **{k: v for k, v in td.items() if v is not None}}
        fmt = inp.get("format")
        if isinstance(fmt, dict) and fmt.get("type") == "audio/pcm" and "rate" not in fmt:
            inp["format"] = {**fmt, "rate": SAMPLE_RATE}
    return session


#: Type-checkers of merged session objects, one per session kind (built at import: they are shared by threads).
_SESSION_ADAPTERS: dict[str, TypeAdapter] = {
    "realtime": TypeAdapter(RealtimeSessionCreateRequest),
    "transcription": TypeAdapter(RealtimeTranscriptionSessionCreateRequest),
}


def _check_session_types(session: dict, kind: str) -> None:
    """Type-check a merged session against the SDK model; the first problem becomes a ProtocolError."""
    try:
        _SESSION_ADAPTERS[kind].validate_python(session)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err.get("loc", ()) if not str(p).startswith(("function-", "tagged-union"))]
        # pydantic puts union member names in loc (e.g. "ServerVad", "str"); keep the field path only.
        path = [p for p in loc if not p[:1].isupper() and p not in ("str", "int", "float", "literal", "list", "dict")
                and not p.startswith("literal[")]
        param = "session." + ".".join(path) if path else "session"
        value = err.get("input")
        shown = json.dumps(value)[:80] if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
        raise ProtocolError("invalid_value", f"Invalid value for '{param}': {shown}. {err.get('msg', '')}.",
                            param=param) from None


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------
_ALNUM = string.ascii_letters + string.digits


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _ms(samples: int) -> int:
    return int(samples * 1000 // SAMPLE_RATE)


def _samples(ms: float) -> int:
    return int(round(ms * SAMPLE_RATE / 1000))


def _text_tokens(text: str) -> int:
    return math.ceil(len(text) / 4) if text else 0


def _logprobs(words: list[tuple[str, float]]) -> list[dict]:
    # Log probabilities are <= 0 by definition; engines may round a near-certain word slightly above.
    return [{"token": w, "bytes": list(w.encode("utf-8")), "logprob": min(0.0, round(float(lp), 4))}
            for w, lp in words]


@dataclass
class _Response:
    """A response being streamed (default conversation) or built at once (out of band)."""

    id: str
    item_id: str
    conversation: str  # "auto" | "none"
    modality: str  # "audio" | "text"
    text: str
    metadata: dict | None
    audio_chunks: list[bytes] | None = None  # None while speech is being synthesized
    future: Any = None  # the synthesis running off the session's thread (see Session(run_async=...))
    words: list[str] = field(default_factory=list)
    sent_chunks: int = 0
    sent_words: int = 0
    input_tokens: int = 0
    voice: str = "alloy"
    fmt: dict = field(default_factory=lambda: P.audio_format_to_ga("pcm16"))
    audio_s: float = 0.0

    @property
    def transcript_sent(self) -> str:
        return "".join(self.words[: self.sent_words])


class Session:
    """One Realtime session (``realtime`` voice or ``transcription``) in one dialect, without I/O.

    Parameters
    ----------
    engines : EngineSet
        ``vad_factory`` (one VAD per turn detector), ``asr`` (streaming recognizer), ``tts``.
    kind : {"realtime", "transcription"}
    shape : {"ga", "beta"}
        Dialect of the events (beta: Azure preview paths and ``OpenAI-Beta: realtime=v1``).
    model : str, optional
        Session model (realtime sessions), as the client named it (a deployment name on Azure).
    profile : Profile or str
        What the endpoint accepts (see :mod:`rtlab.emulator.profiles`).
    seed : int, optional
        Makes every id reproducible.
    validate : bool
        Check each outgoing event against the SDK's models (debugging); a mismatch is logged, then raised.
    turn_detector_factory : callable, optional
        ``(vad, threshold=, prefix_padding_ms=, silence_duration_ms=) -> TurnDetector``; tests inject fakes.
    run_async : callable, optional
        ``run_async(fn) -> concurrent.futures.Future``: where speech synthesis runs, so an adapter can keep
        taking audio while an answer is synthesized (:meth:`pump` then returns nothing until it is ready).
        Default: synthesis runs inline. Either way the events and their content are the same.
    """

    def __init__(
        self,
        *,
        engines: EngineSet,
        kind: str = "realtime",
        shape: str = "ga",
        model: str | None = None,
        profile: Profile | str = "openai",
        seed: int | str | None = None,
        validate: bool = False,
        turn_detector_factory: Callable[..., Any] | None = None,
        run_async: Callable[[Callable[[], Any]], Any] | None = None,
    ) -> None:
        if kind not in ("realtime", "transcription"):
            raise ConfigError(f"kind must be 'realtime' or 'transcription', got {kind!r}.", field="kind")
        if shape not in ("ga", "beta"):
            raise ConfigError(f"shape must be 'ga' or 'beta', got {shape!r}.", field="shape")
        self.engines = engines
        self.kind = kind
        self.shape = shape
        self.profile = load_profile(profile)
        self.model_name = model
        self.validate = validate
        self._rng = random.Random(seed) if seed is not None else random.Random()
        self._td_factory = turn_detector_factory
        self._run_async = run_async
        self.surface = f"{kind}_{shape}"
        resolved = self.profile.resolve_model(model) if kind == "realtime" else None
        self.session: dict = default_session(kind, resolved or model or "gpt-realtime", self._id("sess"))
        self.turn = Machine("turn")
        self.response = Machine("response")
        self.items: dict[str, dict] = {}
        self._order: list[str] = []
        self._transcripts: dict[str, str] = {}
        # Audio: a session-wide sample clock, the uncommitted buffer and what the recognizer has been fed.
        self._n = 0  # samples appended in the session (24 kHz)
        self._buf = bytearray()  # int16 LE samples from sample index _buf0
        self._buf0 = 0
        self._commit_point = 0  # samples before this are committed or cleared
        self._turn_start = 0  # speech_started audio, as a sample index
        self._swallow_stop = False  # the client committed/cleared mid-turn: drop the VAD's speech_stopped
        self._pending_item: str | None = None
        self._rec: Any = None
        self._rec_fed = 0
        self._rec_failed: Exception | None = None
        self._emitted = ""  # streamed transcription text for the pending item
        self._td: Any = None
        self._td_offset = 0  # session sample index where the current turn detector's clock starts
        self._g711 = None  # (law, resampler) for G.711 input
        self._active: _Response | None = None
        self._last_user_transcript = ""
        self._audio_ms_by_item: dict[str, float] = {}  # committed user audio, for response usage
        self._idle_from: int | None = None  # audio time (samples) the idle timeout counts from, when armed
        self._configure_turns()

    # ---------------------------------------------------------------------------------------------- api
    def __repr__(self) -> str:
        return (f"Session(kind={self.kind!r}, shape={self.shape!r}, model={self.model_name!r}, "
                f"profile={self.profile.name!r}, turn={self.turn.state!r}, response={self.response.state!r})")

    def start(self) -> list[dict]:
        """The events sent on connect (``session.created`` / ``transcription_session.created``)."""
        name = "session.created"
        if self.kind == "transcription" and self.shape == "beta":
            name = P.TRANSCRIPTION_SESSION_EVENTS["beta"]["created"]
        return [self._session_event(name)]

    def receive(self, message: str | bytes | dict) -> list[dict]:
        """Handle one client event; return every server event it causes, in order."""
        return list(self.iter_receive(message))

    def iter_receive(self, message: str | bytes | dict) -> Iterator[dict]:
        """Like :meth:`receive`, yielding each event as soon as it is ready. Never raises."""
        client_event_id = None
        try:
            event = self._parse(message)
            client_event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
            yield from self._dispatch(event)
        except ProtocolError as exc:
            yield self._error(exc.code, exc.message, param=exc.param, type=exc.type, event_id=client_event_id)
        except Exception:  # never leak internals to the client
            log.exception("emulator: internal error while handling a client event (session %s)",
                          self.session.get("id"))
            self._recover()
            yield self._error(None, "The server had an error while processing your request. Please retry.",
                              type="server_error", event_id=client_event_id)

    def _recover(self) -> None:
        """After an internal error, put the machines back in a state the session can go on from."""
        if self.response.state == "responding" and self._active is None:
            self.response.state = "idle"

    def pending(self) -> bool:
        """True while a response has audio left to stream: call :meth:`pump` when no client event waits."""
        return self._active is not None

    def pump(self, *, block: bool = False) -> list[dict]:
        """Stream the next chunk of the active response (and close it after the last one).

        With ``block=False`` it returns ``[]`` while the answer's speech is still being synthesized elsewhere
        (see ``run_async``); ``block=True`` waits for it.
        """
        try:
            return list(self._pump(block=block))
        except Exception:
            log.exception("emulator: internal error while streaming a response (session %s)", self.session.get("id"))
            self._active = None
            self._recover()
            return [self._error(None, "The server had an error while processing your request. Please retry.",
                                type="server_error")]

    def drain(self) -> list[dict]:
        """Pump until no response is active (for tests and batch use)."""
        out: list[dict] = []
        while self.pending():
            out.extend(self.pump(block=True))
        return out

    def close(self) -> None:
        """Release engine resources (a recognizer's pooled decoder). The session answers nothing afterwards."""
        self._discard_recognizer()
        self._active = None

    @property
    def audio_ms(self) -> int:
        """Audio time of the session: everything appended so far (ms)."""
        return _ms(self._n)

    # ----------------------------------------------------------------------------------------- parsing
    def _parse(self, message: str | bytes | dict) -> dict:
        if isinstance(message, dict):
            event = message
        else:
            try:
                event = json.loads(message)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8 text"
                raise ProtocolError("invalid_json", f"The server could not parse the event as JSON: {detail}.") from None
            except RecursionError:
                raise ProtocolError("invalid_json", "The server could not parse the event as JSON: nested too deeply.") from None
        if not isinstance(event, dict):
            raise ProtocolError("invalid_json", f"Expected a JSON object as event, got {type(event).__name__}.")
        etype = event.get("type")
        if etype is None:
            raise ProtocolError("missing_required_parameter", "Missing required parameter: 'type'.", param="type")
        if not isinstance(etype, str):
            raise ProtocolError("invalid_type", f"Invalid type for 'type': expected a string, got {type(etype).__name__}.",
                                param="type")
        return event

    def _supported(self) -> tuple[str, ...]:
        return client_events(self.kind, self.shape)  # type: ignore[arg-type]

    def _dispatch(self, event: dict) -> Iterator[dict]:
        etype = event["type"]
        handler = _HANDLERS.get(etype)
        if etype == P.TRANSCRIPTION_SESSION_EVENTS["beta"]["update"] and self.shape == "beta":
            handler = Session._on_transcription_session_update
        elif etype == "session.update" and self.shape == "beta" and self.kind == "transcription":
            raise ProtocolError("invalid_parameter",
                                "Passing a realtime session update event to a transcription session is not allowed.",
                                param="type")
        elif handler is None or etype not in self._supported():
            supported = ", ".join(f"'{e}'" for e in self._supported())
            raise ProtocolError("invalid_value", f"Invalid value: '{etype[:100]}'. Supported values are: {supported}.",
                                param="type")
        yield from handler(self, event)

    # ----------------------------------------------------------------------------------------- events
    def _id(self, prefix: str) -> str:
        return f"{prefix}_" + "".join(self._rng.choice(_ALNUM) for _ in range(21))

    def _ev(self, ga_type: str, **fields: Any) -> dict | None:
        name = P.server_event_name(ga_type, self.shape)  # type: ignore[arg-type]
        if name is None:
            return None
        event = {"type": name, "event_id": self._id("event"), **fields}
        if self.shape == "beta":
            event = beta_payload(event)
        if self.validate:
            validate_server_event(event, self.shape)
        return event

    def _error(self, code: str | None, message: str, *, param: str | None = None, type: str = "invalid_request_error",
               event_id: str | None = None) -> dict:
        return self._ev("error", error={"type": type, "code": code, "message": message, "param": param,
                                        "event_id": event_id})  # type: ignore[return-value]

    def _session_event(self, name: str) -> dict:
        if self.shape == "ga":
            body: dict = self.session
        else:
            body = _beta_session(self.session, self.kind)
        event = {"type": name, "event_id": self._id("event"), "session": json.loads(json.dumps(body))}
        if self.validate:
            validate_server_event(event, self.shape)
        return event

    def _emit(self, events: list[dict | None]) -> Iterator[dict]:
        for e in events:
            if e is not None:
                yield e

    # ------------------------------------------------------------------------------------ session.update
    def _on_session_update(self, event: dict) -> Iterator[dict]:
        patch = event.get("session")
        if not isinstance(patch, dict):
            raise ProtocolError("missing_required_parameter", "Missing required parameter: 'session'.", param="session")
        if self.shape == "beta":
            patch = _beta_patch_to_ga(patch, self.kind)
            if patch.get("type") not in (None, self.kind):
                self._refuse_kind(patch.get("type"))
            patch["type"] = self.kind
        stype = patch.get("type")
        if stype is None:
            raise ProtocolError("missing_required_parameter", "Missing required parameter: 'session.type'.",
                                param="session.type")
        if stype not in ("realtime", "transcription"):
            raise ProtocolError("invalid_value", f"Invalid value: '{str(stype)[:80]}'. Supported values are: "
                                "'realtime' and 'transcription'.", param="session.type")
        if stype != self.kind:
            self._refuse_kind(stype)
        yield from self._apply_session(patch, "session.updated")

    def _on_transcription_session_update(self, event: dict) -> Iterator[dict]:
        if self.kind != "transcription":
            self._refuse_kind("transcription")
        patch = event.get("session")
        if not isinstance(patch, dict):
            raise ProtocolError("missing_required_parameter", "Missing required parameter: 'session'.", param="session")
        patch = _beta_patch_to_ga(patch, "transcription")
        patch["type"] = "transcription"
        yield from self._apply_session(patch, P.TRANSCRIPTION_SESSION_EVENTS["beta"]["updated"])

    def _refuse_kind(self, requested: object) -> None:
        if requested == "transcription":
            msg = "Passing a transcription session update event to a realtime session is not allowed."
        else:
            msg = "Passing a realtime session update event to a transcription session is not allowed."
        raise ProtocolError("invalid_parameter", msg, param="session.type")

    def _apply_session(self, patch: dict, updated_name: str) -> Iterator[dict]:
        patch = {k: v for k, v in patch.items() if k not in ("id", "object", "expires_at", "client_secret")}
        if self.kind == "realtime" and "model" in patch and patch["model"] != self.session.get("model"):
            patch.pop("model")  # the session model is fixed at connect time
        merged = _fill_defaults(_merge(self.session, patch), self.kind)
        _check_session_types(merged, self.kind)
        tr = ((merged.get("audio") or {}).get("input") or {}).get("transcription")
        name = tr.get("model") if isinstance(tr, dict) else None
        ctx = R.RuleInput.build(self.kind, merged, shape=self.shape, provider=self.profile.provider,
                                deployments=self.profile.deployments, session_model=self.model_name)
        for rule in R.check(ctx, where=("session.update",)):
            raise ProtocolError(rule.server.code, R.server_message(rule, ctx), param=rule.server.param,
                                type=rule.server.type)
        if name:
            outcome = self.profile.transcription_outcome(self.surface, name)
            if outcome.outcome == "error_event":
                raise ProtocolError(outcome.code, outcome.message or f"Transcription model {name!r} is not supported.",
                                    param=outcome.param or "session.audio.input.transcription.model",
                                    type=outcome.type or "invalid_request_error")
        old_td = ((self.session.get("audio") or {}).get("input") or {}).get("turn_detection")
        old_fmt = ((self.session.get("audio") or {}).get("input") or {}).get("format")
        self.session = merged
        new_input = merged["audio"]["input"]
        if new_input.get("turn_detection") != old_td:
            self._configure_turns()
        if new_input.get("format") != old_fmt:
            self._g711 = None
        if self.shape == "beta" and updated_name == "session.updated" and self.kind == "transcription":
            updated_name = P.TRANSCRIPTION_SESSION_EVENTS["beta"]["updated"]
        yield self._session_event(updated_name)

    # ------------------------------------------------------------------------------------ turn detection
    def _configure_turns(self) -> None:
        """(Re)build turn detection from the session's ``turn_detection`` (None: the client commits).

        semantic_vad is approximated by server VAD with the default parameters (no turn-end model here).
        Switched off mid-turn, the open turn stays open until the client commits.
        """
        td = self.session["audio"]["input"].get("turn_detection")
        if not td:
            self._td = None
            return
        params = {
            "threshold": float(td.get("threshold", P.SERVER_VAD_DEFAULTS["threshold"]) if td.get("type") == "server_vad"
                               else P.SERVER_VAD_DEFAULTS["threshold"]),
            "prefix_padding_ms": int(td.get("prefix_padding_ms", P.SERVER_VAD_DEFAULTS["prefix_padding_ms"])
                                     if td.get("type") == "server_vad" else P.SERVER_VAD_DEFAULTS["prefix_padding_ms"]),
            "silence_duration_ms": int(td.get("silence_duration_ms", P.SERVER_VAD_DEFAULTS["silence_duration_ms"])
                                       if td.get("type") == "server_vad"
                                       else P.SERVER_VAD_DEFAULTS["silence_duration_ms"]),
        }
        if self._td is not None and hasattr(self._td, "configure"):
            self._td.configure(**params)
            return
        factory = self._td_factory or TurnDetector
        self._td = factory(self.engines.vad_factory(), sample_rate=SAMPLE_RATE, **params)
        self._td_offset = self._n  # a detector made mid-session counts from here

    @property
    def _vad_cfg(self) -> dict:
        return self.session["audio"]["input"].get("turn_detection") or {}

    # ------------------------------------------------------------------------------------------- audio
    def _on_append(self, event: dict) -> Iterator[dict]:
        audio = event.get("audio")
        if audio is None:
            raise ProtocolError("missing_required_parameter", "Missing required parameter: 'audio'.", param="audio")
        if not isinstance(audio, str):
            raise ProtocolError("invalid_type", f"Invalid type for 'audio': expected a base64 string, got "
                                f"{type(audio).__name__}.", param="audio")
        if len(audio) * 3 // 4 > P.MAX_APPEND_BYTES + 3:
            raise ProtocolError("invalid_value", f"Audio content of {len(audio) * 3 // 4} bytes exceeds the maximum of "
                                f"{P.MAX_APPEND_BYTES} bytes (15 MiB) per input_audio_buffer.append. Send smaller chunks.",
                                param="audio")
        try:
            raw = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("invalid_value", "Invalid 'audio'. Expected base64-encoded audio bytes.",
                                param="audio") from None
        if len(raw) > P.MAX_APPEND_BYTES:
            raise ProtocolError("invalid_value", f"Audio content of {len(raw)} bytes exceeds the maximum of "
                                f"{P.MAX_APPEND_BYTES} bytes (15 MiB) per input_audio_buffer.append. Send smaller chunks.",
                                param="audio")
        pcm = self._decode_input(raw)
        if len(pcm):
            yield from self._ingest(pcm)

    def _decode_input(self, raw: bytes) -> np.ndarray:
        fmt = self.session["audio"]["input"].get("format") or {}
        ftype = fmt.get("type", "audio/pcm")
        if ftype == "audio/pcm":
            return np.frombuffer(raw[: len(raw) - len(raw) % 2], dtype="<i2").astype(np.int16)
        law = "ulaw" if ftype == "audio/pcmu" else "alaw"

        if self._g711 is None or self._g711[0] != law:
            self._g711 = (law, Resampler(P.G711_RATE, SAMPLE_RATE))
        return self._g711[1].process(decode_g711(raw, law)).astype(np.int16)

    def _slice(self, start: int, end: int) -> np.ndarray:
        """Samples [start, end) of the session clock that are still in the buffer."""
        lo = max(start, self._buf0) - self._buf0
        hi = max(min(end, self._buf0 + len(self._buf) // 2) - self._buf0, lo)
        return np.frombuffer(bytes(self._buf[2 * lo: 2 * hi]), dtype="<i2").astype(np.int16)

    def _drop_before(self, sample: int) -> None:
        k = min(max(sample - self._buf0, 0), len(self._buf) // 2)
        if k:
            del self._buf[: 2 * k]
            self._buf0 += k

    def _ingest(self, pcm: np.ndarray) -> Iterator[dict]:
        self._buf += pcm.astype("<i2").tobytes()
        self._n += len(pcm)
        if self._td is None:
            if self._need_asr():
                yield from self._ensure_recognizer(self._commit_point)
                yield from self._feed_recognizer(self._n)
            return
        for te in self._td.feed(pcm):
            at = _samples(te.audio_ms) + self._td_offset
            if te.kind == "speech_started":
                yield from self._speech_started(_ms(at), at)
            else:
                yield from self._speech_stopped(_ms(at), at)
        if self.turn.state == "speaking" and not self._swallow_stop:
            yield from self._feed_recognizer(self._n)
        elif self.turn.state == "listening":
            yield from self._check_idle_timeout()
            # Idle: keep only what a next turn's prefix padding could reach back to.
            keep = _samples(int(self._vad_cfg.get("prefix_padding_ms") or 0) + 1000)
            self._drop_before(self._n - keep)
            self._commit_point = max(self._commit_point, self._buf0)

    def _check_idle_timeout(self) -> Iterator[dict]:
        """server_vad ``idle_timeout_ms``: after an answer has played, silence that long prompts the user."""
        timeout = self._vad_cfg.get("idle_timeout_ms")
        if (self.kind != "realtime" or not timeout or self._idle_from is None or self._active is not None
                or self._n - self._idle_from < _samples(timeout)):
            return
        start, self._idle_from = self._idle_from, None
        self._pending_item = self._id("item")
        yield from self._emit([self._ev("input_audio_buffer.timeout_triggered", audio_start_ms=_ms(start),
                                        audio_end_ms=_ms(self._n), item_id=self._pending_item)])
        yield from self._commit(max(self._commit_point, self._buf0), self._n, auto=True, idle=True)

    def _speech_started(self, audio_ms: int, at: int) -> Iterator[dict]:
        self.turn.fire("speech_started")
        self._idle_from = None
        self._swallow_stop = False
        if self._active is not None and self._vad_cfg.get("interrupt_response", True) and self.kind == "realtime":
            yield from self._finish_response(self._active, "cancelled", reason="turn_detected",
                                             trigger="speech_started")
        self._discard_recognizer()
        self._pending_item = self._id("item")
        self._turn_start = max(at, self._commit_point)
        yield from self._emit([self._ev("input_audio_buffer.speech_started", audio_start_ms=int(audio_ms),
                                        item_id=self._pending_item)])
        if self._need_asr():
            yield from self._ensure_recognizer(self._turn_start)

    def _speech_stopped(self, audio_ms: int, at: int) -> Iterator[dict]:
        self.turn.fire("speech_stopped")
        if self._swallow_stop:
            self._swallow_stop = False
            return
        item_id = self._pending_item or self._id("item")
        self._pending_item = item_id
        yield from self._emit([self._ev("input_audio_buffer.speech_stopped", audio_end_ms=int(audio_ms),
                                        item_id=item_id)])
        if self._need_asr():
            yield from self._feed_recognizer(at)
        yield from self._commit(self._turn_start, at, auto=True)

    def _on_commit(self, event: dict) -> Iterator[dict]:
        n_ms = (self._n - self._commit_point) * 1000 / SAMPLE_RATE
        if n_ms < P.MIN_COMMIT_MS:
            raise ProtocolError(
                "input_audio_buffer_commit_empty",
                f"Error committing input audio buffer: buffer too small. Expected at least {P.MIN_COMMIT_MS}ms of "
                f"audio, but buffer only has {n_ms:.2f}ms of audio.",
            )
        if self.turn.state == "speaking":
            self._swallow_stop = True
        self.turn.fire("commit")
        if self._need_asr():
            yield from self._feed_recognizer(self._n)
        yield from self._commit(self._commit_point, self._n, auto=False)

    def _on_clear(self, event: dict) -> Iterator[dict]:
        if self.turn.state == "speaking":
            self._swallow_stop = True
        self.turn.fire("clear")
        self._discard_recognizer()
        self._pending_item = None
        self._drop_before(self._n)
        self._commit_point = self._n
        yield from self._emit([self._ev("input_audio_buffer.cleared")])

    # ------------------------------------------------------------------------------------ transcription
    def _transcription_cfg(self) -> dict | None:
        tr = self.session["audio"]["input"].get("transcription")
        return tr if isinstance(tr, dict) and tr.get("model") else None

    def _need_asr(self) -> bool:
        return self.kind == "realtime" or self._transcription_cfg() is not None

    def _streams(self) -> bool:
        tr = self._transcription_cfg()
        if tr is None:
            return False
        outcome = self.profile.transcription_outcome(self.surface, tr["model"])
        if outcome.outcome != "accepted":
            return False
        if outcome.streams is not None:
            return outcome.streams
        cap = P.transcription_model(self.profile.resolve_model(tr["model"]) or "")
        return bool(cap and cap.streaming)

    def _ensure_recognizer(self, start: int) -> Iterator[dict]:
        if self._rec is None and self._rec_failed is None:
            tr = self._transcription_cfg() or {}
            keywords = tr.get("keywords")
            if keywords is None and tr.get("prompt") and (self.profile.resolve_model(tr.get("model")) == "whisper-1"):
                keywords = [k.strip() for k in re.split(r"[,;\n]", tr["prompt"]) if k.strip()]
            language = tr.get("language") or ((tr.get("languages") or [None])[0])
            try:
                self._rec = self.engines.asr.stream(keywords=keywords or None, language=language)
            except Exception as exc:  # the engine failed: the item's transcription fails, the session goes on
                log.exception("emulator: ASR engine could not start a stream")
                self._rec_failed = exc
            self._rec_fed = start
            self._emitted = ""
            if self._pending_item is None:
                self._pending_item = self._id("item")
        return
        yield  # pragma: no cover - makes this a generator

    def _feed_recognizer(self, until: int) -> Iterator[dict]:
        if self._rec is None or until <= self._rec_fed:
            return
        pcm = self._slice(self._rec_fed, until)
        self._rec_fed = until
        try:
            self._rec.accept(pcm, SAMPLE_RATE)
            stable = self._rec.stable_text() if self._streams() else ""
        except Exception as exc:
            log.exception("emulator: ASR engine failed while decoding")
            self._rec_failed, self._rec = exc, None
            return
        if stable.startswith(self._emitted) and len(stable) > len(self._emitted):
            delta = stable[len(self._emitted):]
            self._emitted = stable
            yield from self._emit([self._delta(self._pending_item, delta)])

    def _delta(self, item_id: str | None, delta: str) -> dict | None:
        fields: dict[str, Any] = {"item_id": item_id, "content_index": 0, "delta": delta}
        if self._wants_logprobs():
            fields["logprobs"] = _logprobs([(tok, -0.1) for tok in re.findall(r"\s*\S+", delta)])
        return self._ev("conversation.item.input_audio_transcription.delta", **fields)

    def _wants_logprobs(self) -> bool:
        return P.LOGPROBS_INCLUDE in (self.session.get("include") or [])

    def _discard_recognizer(self) -> None:
        if self._rec is not None and hasattr(self._rec, "cancel"):
            try:
                self._rec.cancel()  # hands a pooled decoder back to the engine
            except Exception:
                log.exception("emulator: ASR engine failed to cancel a stream")
        self._rec = None
        self._rec_failed = None
        self._emitted = ""

    def _finish_recognizer(self, audio: np.ndarray) -> Transcript:
        """Final text of the pending item (streamed recognizer, or whole-utterance decoding as a fallback)."""
        if self._rec_failed is not None:
            raise self._rec_failed
        if self._rec is None:
            return self.engines.asr.transcribe(audio, SAMPLE_RATE)
        return self._rec.finish()

    def _transcribe(self, item_id: str, audio: np.ndarray) -> Iterator[dict]:
        tr = self._transcription_cfg()
        emitted = self._emitted
        try:
            result = self._finish_recognizer(audio) if self._need_asr() else Transcript("")
            error: Exception | None = None
        except Exception as exc:
            log.exception("emulator: ASR engine failed to finish an utterance")
            result, error = Transcript(""), exc
        finally:
            self._discard_recognizer()
        text = result.text.strip() if not emitted else result.text
        if emitted and not text.startswith(emitted):
            log.warning("emulator: ASR final text does not extend its stable text; keeping the streamed text")
            text = emitted
        self._transcripts[item_id] = text
        if self.kind == "realtime":
            self._last_user_transcript = text
        if tr is None:
            return
        outcome = self.profile.transcription_outcome(self.surface, tr["model"])
        if outcome.outcome == "failed" or error is not None:
            err = ({"type": outcome.type or "server_error", "code": outcome.code, "message": outcome.message,
                    "param": outcome.param} if error is None else
                   {"type": "server_error", "code": None,
                    "message": "Input transcription failed: the transcription engine had an error.", "param": None})
            yield from self._emit([self._ev("conversation.item.input_audio_transcription.failed", item_id=item_id,
                                            content_index=0, error=err)])
            return
        if self._streams():
            rest = text[len(emitted):]
            if rest:
                yield from self._emit([self._delta(item_id, rest)])
        else:
            for piece in re.findall(r"\s*\S+\s*$|\s*\S+", text):
                yield from self._emit([self._delta(item_id, piece)])
        resolved = self.profile.resolve_model(tr["model"]) or tr["model"]
        cap = P.transcription_model(resolved)
        audio_s = len(audio) / SAMPLE_RATE
        if cap is not None and cap.diarize and text:
            yield from self._emit([self._ev("conversation.item.input_audio_transcription.segment",
                                            id=self._id("seg"), item_id=item_id, content_index=0,
                                            start=0.0, end=round(audio_s, 3), speaker="A", text=text)])
        fields: dict[str, Any] = {"item_id": item_id, "content_index": 0, "transcript": text,
                                  "usage": self._transcription_usage(cap, audio_s, text, tr)}
        if self._wants_logprobs():
            words = [(w.text, w.logprob) for w in result.words] or [
                (tok, result.avg_logprob) for tok in re.findall(r"\s*\S+", text)]
            fields["logprobs"] = _logprobs(words)
        if cap is not None and cap.languages_keywords:
            fields["languages"] = [{"code": tr.get("language") or ((tr.get("languages") or ["en"])[0])}]
        item = self.items.get(item_id)
        if item is not None:
            item["content"][0]["transcript"] = text
        yield from self._emit([self._ev("conversation.item.input_audio_transcription.completed", **fields)])

    @staticmethod
    def _transcription_usage(cap: P.TranscriptionModel | None, audio_s: float, text: str, tr: dict) -> dict:
        if cap is not None and cap.usage == "duration":
            return {"type": "duration", "seconds": round(audio_s, 3)}
        audio_tokens = max(1, round(audio_s * TRANSCRIBE_AUDIO_TOKENS_PER_S)) if audio_s > 0 else 0
        prompt_tokens = _text_tokens(tr.get("prompt") or "") + _text_tokens(" ".join(tr.get("keywords") or []))
        out = _text_tokens(text)
        return {"type": "tokens", "input_tokens": audio_tokens + prompt_tokens, "output_tokens": out,
                "total_tokens": audio_tokens + prompt_tokens + out,
                "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": prompt_tokens}}

    # ------------------------------------------------------------------------------------------ commit
    def _previous_item(self) -> str | None:
        return self._order[-1] if self._order else None

    def _add_item(self, item: dict, previous: str | None) -> Iterator[dict]:
        self.items[item["id"]] = item
        self._order.append(item["id"])
        if self.shape == "ga":
            yield from self._emit([self._ev("conversation.item.added", previous_item_id=previous, item=_copy(item))])
            if item.get("status") == "completed":
                yield from self._emit([self._ev("conversation.item.done", previous_item_id=previous,
                                                item=_copy(item))])
        else:
            yield from self._emit([self._ev("conversation.item.added", previous_item_id=previous, item=_copy(item))])

    def _commit(self, start: int, end: int, *, auto: bool, idle: bool = False) -> Iterator[dict]:
        item_id = self._pending_item or self._id("item")
        self._pending_item = None
        audio = self._slice(start, end)
        previous = self._previous_item()
        self._commit_point = max(self._commit_point, end)
        self._drop_before(end)
        yield from self._emit([self._ev("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)])
        item = {"id": item_id, "type": "message", "object": "realtime.item", "status": "completed", "role": "user",
                "content": [{"type": "input_audio", "transcript": None}]}
        yield from self._add_item(item, previous)
        self._audio_ms_by_item[item_id] = len(audio) * 1000 / SAMPLE_RATE
        yield from self._transcribe(item_id, audio)
        if self.kind == "realtime" and auto and self._vad_cfg.get("create_response", True) and self._active is None:
            yield from self._start_response({}, trigger="idle" if idle else "vad")

    # --------------------------------------------------------------------------------------- responses
    def _on_response_create(self, event: dict) -> Iterator[dict]:
        params = event.get("response") or {}
        if not isinstance(params, dict):
            raise ProtocolError("invalid_type", "Invalid type for 'response': expected an object.", param="response")
        yield from self._start_response(params, trigger="client")

    def _start_response(self, params: dict, *, trigger: str) -> Iterator[dict]:
        conversation = params.get("conversation", "auto") or "auto"
        if conversation not in ("auto", "none"):
            raise ProtocolError("invalid_value", f"Invalid value: '{str(conversation)[:80]}'. Supported values are: "
                                "'auto' and 'none'.", param="response.conversation")
        modalities = params.get("output_modalities") or params.get("modalities") or self.session.get(
            "output_modalities") or ["audio"]
        if not isinstance(modalities, list) or not modalities or any(m not in ("audio", "text") for m in modalities):
            raise ProtocolError("invalid_value", f"Invalid value for 'response.output_modalities': {modalities!r}. "
                                "Supported values are: ['audio'] and ['text'].", param="response.output_modalities")
        metadata = params.get("metadata")
        if metadata is not None and (not isinstance(metadata, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
            raise ProtocolError("invalid_type", "Invalid type for 'response.metadata': expected an object of strings.",
                                param="response.metadata")
        in_default = conversation == "auto"
        rid = self._id("resp")
        if in_default:
            try:
                self.response.fire("create", response_id=self._active.id if self._active else "")
            except Rejected as exc:
                raise ProtocolError(exc.code, exc.message) from None
        if conversation == "none":
            text = self._input_text(params.get("input")) if params.get("input") else self._last_user_transcript
        elif trigger == "idle":
            text = IDLE_REPLY
        else:
            text = reply_text(self._last_user_transcript)
        out_cfg = (self.session.get("audio") or {}).get("output") or {}
        audio_params = ((params.get("audio") or {}).get("output") or {}) if isinstance(params.get("audio"), dict) else {}
        resp = _Response(
            id=rid, item_id=self._id("item"), conversation=conversation,
            modality="audio" if "audio" in modalities else "text", text=text, metadata=metadata,
            words=re.findall(r"\S+\s*", text), voice=audio_params.get("voice") or out_cfg.get("voice") or "alloy",
            fmt=audio_params.get("format") or out_cfg.get("format") or P.audio_format_to_ga("pcm16"),
            input_tokens=sum(math.ceil(ms / 1000 * REALTIME_AUDIO_IN_TOKENS_PER_S)
                             for ms in self._audio_ms_by_item.values())
            + _text_tokens(self.session.get("instructions") or ""),
        )
        yield from self._emit([self._ev("response.created", response=self._response_obj(resp, "in_progress"))])
        item = {"id": resp.item_id, "type": "message", "object": "realtime.item", "status": "in_progress",
                "role": "assistant", "content": []}
        yield from self._emit([self._ev("response.output_item.added", response_id=rid, output_index=0,
                                        item=_copy(item))])
        if in_default:
            previous = self._previous_item()
            self.items[item["id"]] = item
            self._order.append(item["id"])
            yield from self._emit([self._ev("conversation.item.added", previous_item_id=previous, item=_copy(item))])
        part = {"type": "audio", "transcript": ""} if resp.modality == "audio" else {"type": "text", "text": ""}
        yield from self._emit([self._ev("response.content_part.added", response_id=rid, item_id=resp.item_id,
                                        output_index=0, content_index=0, part=part)])
        if resp.modality == "text":
            resp.audio_chunks = []
        elif in_default and self._run_async is not None:
            resp.future = self._run_async(lambda: self._synthesize(resp))
        else:
            try:
                resp.audio_chunks = self._synthesize(resp)
            except Exception:
                log.exception("emulator: TTS engine failed")
                yield from self._tts_failed(resp)
                return
        if in_default and resp.modality == "audio":
            self._active = resp
            yield from self._pump(block=False)  # the first chunk goes out at once when it is ready
        else:
            while True:
                batch = list(self._step(resp))
                yield from batch
                if resp.sent_chunks >= len(resp.audio_chunks or []) and resp.sent_words >= len(resp.words):
                    break
            yield from self._finish_response(resp, "completed")

    def _input_text(self, items: Any) -> str:
        """Text of the ``input`` items of an out-of-band response (text, or referenced items' transcripts)."""
        texts: list[str] = []
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "item_reference" and item.get("id") in self._transcripts:
                texts.append(self._transcripts[item["id"]])
                continue
            for c in item.get("content") or []:
                if isinstance(c, dict):
                    if c.get("type") in ("input_text", "text", "output_text") and isinstance(c.get("text"), str):
                        texts.append(c["text"])
                    elif c.get("type") == "item_reference" and c.get("id") in self._transcripts:
                        texts.append(self._transcripts[c["id"]])
        return " ".join(t for t in texts if t) or self._last_user_transcript

    def _synthesize(self, resp: _Response) -> list[bytes]:
        tts = self.engines.tts
        voice = _OPENAI_VOICE_TO_FLITE.get(resp.voice, resp.voice)
        voices = getattr(tts, "voices", None)
        if voices is not None and voice not in voices:
            voice = None
        pcm = np.asarray(tts.synthesize(resp.text, voice=voice), dtype=np.int16) if resp.text.strip() else \
            np.zeros(0, np.int16)
        rate = int(getattr(tts, "sample_rate", SAMPLE_RATE))
        if rate != SAMPLE_RATE and len(pcm):
            pcm = resample(pcm, rate, SAMPLE_RATE)
        resp.audio_s = len(pcm) / SAMPLE_RATE
        ftype = resp.fmt.get("type", "audio/pcm") if isinstance(resp.fmt, dict) else "audio/pcm"
        if ftype == "audio/pcm":
            data, per_chunk = pcm.astype("<i2").tobytes(), 2 * _samples(RESPONSE_CHUNK_MS)
        else:
            low = resample(pcm, SAMPLE_RATE, P.G711_RATE)
            data = encode_g711(low, "ulaw" if ftype == "audio/pcmu" else "alaw")
            per_chunk = P.G711_RATE * RESPONSE_CHUNK_MS // 1000
        return [data[i: i + per_chunk] for i in range(0, len(data), per_chunk)]

    def _step(self, resp: _Response) -> Iterator[dict]:
        """One chunk of a response: its share of transcript words, then its audio (or all text at once)."""
        common = {"response_id": resp.id, "item_id": resp.item_id, "output_index": 0, "content_index": 0}
        if resp.modality == "text":
            for w in resp.words[resp.sent_words:]:
                yield from self._emit([self._ev("response.output_text.delta", delta=w, **common)])
            resp.sent_words = len(resp.words)
            return
        chunks = resp.audio_chunks or []
        n_chunks = max(len(chunks), 1)
        upto = min(len(resp.words), math.ceil((resp.sent_chunks + 1) * len(resp.words) / n_chunks))
        for w in resp.words[resp.sent_words: upto]:
            yield from self._emit([self._ev("response.output_audio_transcript.delta", delta=w, **common)])
        resp.sent_words = max(resp.sent_words, upto)
        if resp.sent_chunks < len(chunks):
            chunk = chunks[resp.sent_chunks]
            resp.sent_chunks += 1
            yield from self._emit([self._ev("response.output_audio.delta", delta=_b64(chunk), **common)])
        elif not chunks:
            resp.sent_chunks = 1

    def _tts_failed(self, resp: _Response) -> Iterator[dict]:
        yield from self._finish_response(resp, "failed", error={
            "type": "server_error", "code": None, "message": "The server had an error generating audio."})

    def _pump(self, *, block: bool) -> Iterator[dict]:
        resp = self._active
        if resp is None:
            return
        if resp.audio_chunks is None:
            if not block and not resp.future.done():
                return
            try:
                resp.audio_chunks = resp.future.result()
            except Exception:
                log.exception("emulator: TTS engine failed")
                yield from self._tts_failed(resp)
                return
        yield from self._step(resp)
        if resp.sent_chunks >= len(resp.audio_chunks or []) and resp.sent_words >= len(resp.words):
            yield from self._finish_response(resp, "completed")

    def _on_response_cancel(self, event: dict) -> Iterator[dict]:
        rid = event.get("response_id")
        if self._active is not None and rid is not None and rid != self._active.id:
            raise ProtocolError("response_cancel_not_active",
                                f"Cancellation failed: no active response found with id '{str(rid)[:64]}'.",
                                param="response_id")
        if self._active is None:
            try:
                self.response.fire("cancel")
            except Rejected as exc:
                raise ProtocolError(exc.code, exc.message) from None
            return
        yield from self._finish_response(self._active, "cancelled", reason="client_cancelled", trigger="cancel")

    def _finish_response(self, resp: _Response, status: str, *, reason: str | None = None,
                         error: dict | None = None, trigger: str = "done") -> Iterator[dict]:
        common = {"response_id": resp.id, "item_id": resp.item_id, "output_index": 0, "content_index": 0}
        said = resp.transcript_sent if status != "completed" else resp.text
        if status != "failed":
            if resp.modality == "audio":
                yield from self._emit([self._ev("response.output_audio.done", **common),
                                       self._ev("response.output_audio_transcript.done", transcript=said, **common)])
                part = {"type": "audio", "transcript": said}
            else:
                yield from self._emit([self._ev("response.output_text.done", text=said, **common)])
                part = {"type": "text", "text": said}
            yield from self._emit([self._ev("response.content_part.done", part=part, **common)])
        content = ([{"type": "output_audio", "transcript": said}] if resp.modality == "audio"
                   else [{"type": "output_text", "text": said}]) if status != "failed" else []
        item = {"id": resp.item_id, "type": "message", "object": "realtime.item",
                "status": "completed" if status == "completed" else "incomplete", "role": "assistant",
                "content": content}
        yield from self._emit([self._ev("response.output_item.done", response_id=resp.id, output_index=0,
                                        item=_copy(item))])
        if resp.conversation == "auto" and resp.item_id in self.items:
            self.items[resp.item_id] = item
            idx = self._order.index(resp.item_id)
            previous = self._order[idx - 1] if idx > 0 else None
            yield from self._emit([self._ev("conversation.item.done", previous_item_id=previous, item=_copy(item))])
        details: dict[str, Any] | None = None
        if status == "cancelled":
            details = {"type": "cancelled", "reason": reason}
        elif status == "failed":
            details = {"type": "failed", "error": error}
        obj = self._response_obj(resp, status, output=[item], details=details)
        if self._active is resp:
            self._active = None
        if resp.conversation == "auto":
            self.response.fire(trigger)
            # The idle timeout counts from when the answer's audio has finished playing (in audio time).
            self._idle_from = self._n + int(resp.audio_s * SAMPLE_RATE * resp.sent_chunks
                                            / max(len(resp.audio_chunks or []), 1))
        yield from self._emit([self._ev("response.done", response=obj)])

    def _response_obj(self, resp: _Response, status: str, *, output: list | None = None,
                      details: dict | None = None) -> dict:
        obj: dict[str, Any] = {
            "id": resp.id, "object": "realtime.response", "status": status, "status_details": details,
            "output": [_copy(o) for o in (output or [])], "conversation_id": None if resp.conversation == "none"
            else "conv_" + self.session["id"][5:],
            "output_modalities": [resp.modality], "max_output_tokens": "inf", "metadata": resp.metadata,
            "audio": {"output": {"format": resp.fmt, "voice": resp.voice}}, "usage": None,
        }
        if status != "in_progress":
            said = resp.transcript_sent if status != "completed" else resp.text
            text_out = _text_tokens(said)
            audio_out = math.ceil(resp.audio_s * (resp.sent_chunks / max(len(resp.audio_chunks or []), 1))
                                  * REALTIME_AUDIO_OUT_TOKENS_PER_S) if resp.modality == "audio" else 0
            text_in = _text_tokens(self.session.get("instructions") or "")
            obj["usage"] = {
                "total_tokens": resp.input_tokens + text_out + audio_out,
                "input_tokens": resp.input_tokens, "output_tokens": text_out + audio_out,
                "input_token_details": {"text_tokens": text_in, "audio_tokens": resp.input_tokens - text_in,
                                        "cached_tokens": 0, "image_tokens": 0},
                "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
            }
        return obj

    # ----------------------------------------------------------------------------------- conversation
    def _item_arg(self, event: dict) -> str:
        item_id = event.get("item_id")
        if not isinstance(item_id, str):
            raise ProtocolError("missing_required_parameter", "Missing required parameter: 'item_id'.",
                                param="item_id")
        return item_id

    def _on_item_create(self, event: dict) -> Iterator[dict]:
        item = event.get("item")
        if not isinstance(item, dict):
            raise ProtocolError("missing_required_parameter", "Missing required parameter: 'item'.", param="item")
        if item.get("type", "message") != "message" or item.get("role") not in ("user", "system", "assistant"):
            raise ProtocolError("invalid_value", "Only message items with role 'user', 'system' or 'assistant' are "
                                "supported by the emulator.", param="item.type")
        content = item.get("content")
        if not isinstance(content, list):
            raise ProtocolError("missing_required_parameter", "Missing required parameter: 'item.content'.",
                                param="item.content")
        item_id = item.get("id") if isinstance(item.get("id"), str) else self._id("item")
        if item_id in self.items:
            raise ProtocolError("item_create_duplicate_id", f"Item with id '{item_id[:64]}' already exists.",
                                param="item.id")
        ctype = {"user": "input_text", "system": "input_text", "assistant": "output_text"}[item["role"]]
        parts = [{"type": ctype, "text": str(c.get("text", ""))} for c in content if isinstance(c, dict)]
        stored = {"id": item_id, "type": "message", "object": "realtime.item", "status": "completed",
                  "role": item["role"], "content": parts}
        if item["role"] == "user":
            text = " ".join(p["text"] for p in parts).strip()
            self._transcripts[item_id] = text
            self._last_user_transcript = text
        yield from self._add_item(stored, self._previous_item())

    def _on_item_retrieve(self, event: dict) -> Iterator[dict]:
        item_id = self._item_arg(event)
        if item_id not in self.items:
            raise ProtocolError("item_retrieve_invalid_item_id",
                                f"Error retrieving item: the item with id '{item_id[:64]}' does not exist.",
                                param="item_id")
        yield from self._emit([self._ev("conversation.item.retrieved", item=_copy(self.items[item_id]))])

    def _on_item_delete(self, event: dict) -> Iterator[dict]:
        item_id = self._item_arg(event)
        if item_id not in self.items:
            raise ProtocolError("item_delete_invalid_item_id",
                                f"Error deleting item: the item with id '{item_id[:64]}' does not exist.",
                                param="item_id")
        del self.items[item_id]
        self._order.remove(item_id)
        yield from self._emit([self._ev("conversation.item.deleted", item_id=item_id)])

    def _on_item_truncate(self, event: dict) -> Iterator[dict]:
        item_id = self._item_arg(event)
        item = self.items.get(item_id)
        if item is None or item.get("role") != "assistant":
            raise ProtocolError("item_truncate_invalid_item_id",
                                f"Error truncating item: the assistant item with id '{item_id[:64]}' does not exist.",
                                param="item_id")
        end = event.get("audio_end_ms")
        if isinstance(end, bool) or not isinstance(end, int) or end < 0:
            raise ProtocolError("invalid_value", "Invalid value for 'audio_end_ms': expected a non-negative integer.",
                                param="audio_end_ms")
        yield from self._emit([self._ev("conversation.item.truncated", item_id=item_id,
                                        content_index=int(event.get("content_index") or 0), audio_end_ms=end)])


_HANDLERS: dict[str, Callable[[Session, dict], Iterator[dict]]] = {
    "session.update": Session._on_session_update,
    "input_audio_buffer.append": Session._on_append,
    "input_audio_buffer.commit": Session._on_commit,
    "input_audio_buffer.clear": Session._on_clear,
    "conversation.item.create": Session._on_item_create,
    "conversation.item.retrieve": Session._on_item_retrieve,
    "conversation.item.delete": Session._on_item_delete,
    "conversation.item.truncate": Session._on_item_truncate,
    "response.create": Session._on_response_create,
    "response.cancel": Session._on_response_cancel,
}


def _copy(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


# --------------------------------------------------------------------------------------------------
# The beta dialect at the edge: payload shapes come from rtlab.protocol.shapes.
# --------------------------------------------------------------------------------------------------
def _beta_session(ga: dict, kind: str) -> dict:
    """A GA session object in the beta shape."""
    beta = dict(session_from_ga(ga, "beta"))
    if kind == "transcription":
        # The SDK's beta TranscriptionSession requires client_secret; a WebSocket session has no ephemeral key.
        beta.setdefault("client_secret", {"value": "", "expires_at": 0})
    return beta


def _beta_patch_to_ga(patch: dict, kind: str) -> dict:
    """A beta session(-update) object in the GA shape."""
    return dict(session_to_ga(patch, "beta", kind=kind))
