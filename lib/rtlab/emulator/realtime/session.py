"""One emulated Realtime session, sans I/O: client events in, server events out, state through the table.

Layer: emulator. A :class:`Session` takes client events (JSON text or dicts) and returns what to send, in order:
event dicts, :class:`~rtlab.emulator.adapter.Later` items (modelled timing) and, for a refused connection,
:class:`~rtlab.emulator.adapter.Close`. It owns no socket and no event loop; its clock is injected (tests pass a
fake one). The concerns live in their own modules and meet here:

- :mod:`.config` — the session object and ``session.update`` (unknown keys, types, rules, unsupported settings);
- :mod:`.input` — the input audio buffer on the one :class:`~rtlab.engines.pipeline.LocalPipeline`;
- :mod:`.transcription` — the transcription model's events, asynchronous to the response;
- :mod:`.responses` — responses, speech, pacing; :mod:`.items` — conversation items; :mod:`.usage` — estimates;
- :mod:`.timing` — ``local`` or ``modelled`` timing.

Turn and response states move only through :mod:`rtlab.emulator.states`; a trigger the table does not know in a
state is a :class:`~rtlab.emulator.states.Rejected` error, never silently ignored. Every client mistake is answered
with an ``error`` event; an unexpected failure inside becomes a generic ``server_error`` event and a log line.
"""

from __future__ import annotations

import base64
import binascii
import collections
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from rtlab import protocol as P
from rtlab.engines.base import EngineSet
from rtlab.engines.pipeline import Final, Partial, SpeechStarted, SpeechStopped
from rtlab.errors import ConfigError
from rtlab.protocol.events import client_events
from rtlab.protocol.shapes import session_from_ga, session_to_ga

from ..adapter import Close
from ..profiles import Profile, load_profile
from ..states import Machine
from .base import Events, ProtocolError
from .config import apply_update, check_unknown, default_session
from .input import InputBuffer, delay_stability
from .items import Conversation
from .responses import Responses
from .timing import TimingModel
from .transcription import Transcriber

__all__ = ["SESSION_SECONDS", "Session"]

log = logging.getLogger("rtlab.emulator")

#: A session expires 60 minutes after it starts (reported: OpenAI realtime-conversations guide, quoted in
#: bitfoundation/bitplatform PR 13239); ``session.created`` shows ``expires_at`` (published GA trace).
SESSION_SECONDS = 3600


class Session:
    """One Realtime session (``realtime`` voice or ``transcription``) in one dialect, without I/O.

    Parameters
    ----------
    engines : EngineSet
        ``vad_factory`` and ``asr`` for the session's :class:`LocalPipeline`, ``tts`` for spoken answers.
    kind : {"realtime", "transcription"}
    shape : {"ga", "beta"}
        Dialect of the events (beta: Azure preview paths; ``OpenAI-Beta: realtime=v1``, which the openai profile
        refuses as the real service does).
    model : str, optional
        Session model (realtime sessions), as the client named it (a deployment name on Azure).
    profile : Profile or str
        What the endpoint accepts and how it behaves (see :mod:`rtlab.emulator.profiles`).
    seed : int or str, optional
        Makes every id (and every modelled delay) reproducible.
    validate : bool
        Check each outgoing event against the SDK's models (debugging).
    run_async : callable, optional
        ``run_async(fn) -> concurrent.futures.Future``: where speech synthesis runs, so an adapter can keep taking
        audio while an answer is synthesized. Default: inline.
    timing : {"local", "modelled"}
        See :mod:`rtlab.emulator.realtime.timing`.
    clock, wall : callable
        Monotonic seconds (for modelled timing) and epoch seconds (for ``expires_at``); tests inject fakes.
    """

    def __init__(self, *, engines: EngineSet, kind: str = "realtime", shape: str = "ga", model: str | None = None,
                 profile: Profile | str = "openai", seed: int | str | None = None, validate: bool = False,
                 run_async: Callable[[Callable[[], Any]], Any] | None = None, timing: str = "local",
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        if kind not in ("realtime", "transcription"):
            raise ConfigError(f"kind must be 'realtime' or 'transcription', got {kind!r}.", field="kind")
        if shape not in ("ga", "beta"):
            raise ConfigError(f"shape must be 'ga' or 'beta', got {shape!r}.", field="shape")
        if timing not in ("local", "modelled"):
            raise ConfigError(f"timing must be 'local' or 'modelled', got {timing!r}.", field="timing")
        self.engines = engines
        self.kind = kind
        self.shape = shape
        self.profile = load_profile(profile)
        self.model_name = model
        self.clock = clock
        self.surface = f"{kind}_{shape}"
        self.events = Events(shape=shape, seed=seed, validate=validate)
        first = self.profile.behaviour_value("first_audio_ms", {"p50": 1120, "p95": 1680})
        self.timing = TimingModel(timing, seed, first_audio_p50_ms=float(first["p50"]),
                                  first_audio_p95_ms=float(first["p95"]),
                                  audio_pace=float(self.profile.behaviour_value("audio_pace", 2.0)))
        resolved = self.profile.resolve_model(model) if kind == "realtime" else None
        self.session: dict = default_session(kind, resolved or model or P.DEFAULT_VOICE_MODEL, self.events.id("sess"),
                                             profile=self.profile, expires_at=int(wall()) + SESSION_SECONDS)
        self.turn = Machine("turn")
        self.response = Machine("response")
        self.conversation = Conversation(self.events)
        self.input = InputBuffer(engines, clock=clock, recognize=kind == "realtime")
        self.transcriber = Transcriber(events=self.events, profile=self.profile, surface=self.surface,
                                       timing=self.timing)
        self.responses = Responses(events=self.events, conversation=self.conversation, machine=self.response,
                                   engines=engines, timing=self.timing, clock=clock, run_async=run_async)
        self.responses.on_finished = self._response_finished
        self._pending_item: str | None = None
        self._speech_end_ms: float | None = None
        self._idle_from_ms: float | None = None
        self._closed = False
        #: Arrival times (session clock) of client messages not yet handled, appended by an adapter that knows them
        #: (FIFO, one per message); without them a message counts as arriving when it is handled.
        self.arrivals: collections.deque[float] = collections.deque()
        self._configure()

    # ------------------------------------------------------------------------------------------------ api
    def __repr__(self) -> str:
        return (f"Session(kind={self.kind!r}, shape={self.shape!r}, model={self.model_name!r}, "
                f"profile={self.profile.name!r}, timing={self.timing.mode!r}, turn={self.turn.state!r}, "
                f"response={self.response.state!r})")

    @property
    def items(self) -> dict[str, dict]:
        return self.conversation.items

    @property
    def audio_ms(self) -> int:
        """Audio time of the session: everything appended so far (ms)."""
        return int(self.input.audio_ms)

    def start(self) -> list[Any]:
        """What is sent on connect: ``session.created`` (or the beta refusal and a close, on OpenAI)."""
        beta = self.profile.behaviour("beta_interface")
        if self.shape == "beta" and beta is not None and beta.value.get("outcome") == "refused":
            self._closed = True
            refusal = beta.value
            return [self.events.error(refusal.get("code"), refusal.get("message", ""), param=None),
                    Close(int(refusal.get("close_code", 4000)), str(refusal.get("close_reason", ""))[:120])]
        name = "session.created"
        if self.kind == "transcription" and self.shape == "beta":
            name = P.TRANSCRIPTION_SESSION_EVENTS["beta"]["created"]
        return [self._session_event(name)]

    def receive(self, message: str | bytes | dict) -> list[Any]:
        """Handle one client event; return every output it causes, in order."""
        return list(self.iter_receive(message))

    def iter_receive(self, message: str | bytes | dict) -> Iterator[Any]:
        """Like :meth:`receive`, yielding each output as soon as it is ready. Never raises."""
        arrived = self.arrivals.popleft() if self.arrivals else None
        if self._closed:
            return
        self.input.arrival = arrived
        client_event_id = None
        try:
            event = self._parse(message)
            client_event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
            for out in self._dispatch(event):
                if out is not None:
                    yield out
        except ProtocolError as exc:
            yield self.events.error(exc.code, exc.message, param=exc.param, type=exc.type, event_id=client_event_id)
        except Exception:  # never leak internals to the client
            log.exception("emulator: internal error while handling a client event (session %s)",
                          self.session.get("id"))
            self._recover()
            yield self.events.error(None, "The server had an error while processing your request. Please retry.",
                                    type="server_error", event_id=client_event_id)

    def pending(self) -> bool:
        """True while a response has parts left to stream: call :meth:`pump` when no client event waits."""
        return self.responses.active is not None

    def pump(self, *, block: bool = False) -> list[Any]:
        """The next due parts of the active response (``block=True``: without waiting for synthesis or time)."""
        try:
            return [e for e in self.responses.pump(self.session, block=block) if e is not None]
        except Exception:
            log.exception("emulator: internal error while streaming a response (session %s)", self.session.get("id"))
            self.responses.active = None
            self._recover()
            return [self.events.error(None, "The server had an error while processing your request. Please retry.",
                                      type="server_error")]

    def drain(self) -> list[Any]:
        """Pump until no response is active (for tests and batch use)."""
        out: list[Any] = []
        while self.pending():
            out.extend(self.pump(block=True))
        return out

    def close(self) -> None:
        """Release engine resources (a recognizer's pooled decoder). The session answers nothing afterwards."""
        self._closed = True
        self.input.close()
        self.responses.active = None

    def _recover(self) -> None:
        """After an internal error, put the machines back in a state the session can go on from."""
        if self.response.state == "responding" and self.responses.active is None:
            self.response.state = "idle"

    # -------------------------------------------------------------------------------------------- parsing
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
                raise ProtocolError("invalid_json",
                                    "The server could not parse the event as JSON: nested too deeply.") from None
        if not isinstance(event, dict):
            raise ProtocolError("invalid_json", f"Expected a JSON object as event, got {type(event).__name__}.")
        etype = event.get("type")
        if etype is None:
            raise ProtocolError("missing_required_parameter", "Missing required parameter: 'type'.", param="type")
        if not isinstance(etype, str):
            raise ProtocolError("invalid_type",
                                f"Invalid type for 'type': expected a string, got {type(etype).__name__}.",
                                param="type")
        return event

    def _dispatch(self, event: dict) -> Iterator[Any]:
        etype = event["type"]
        supported = client_events(self.kind, self.shape)  # type: ignore[arg-type]
        handler = _HANDLERS.get(etype)
        if etype == P.TRANSCRIPTION_SESSION_EVENTS["beta"]["update"] and self.shape == "beta":
            handler = Session._on_transcription_session_update
        elif etype == "session.update" and self.shape == "beta" and self.kind == "transcription":
            raise ProtocolError("invalid_parameter",
                                "Passing a realtime session update event to a transcription session is not allowed.",
                                param="type")
        elif handler is None or etype not in supported:
            names = ", ".join(f"'{e}'" for e in supported)
            raise ProtocolError("invalid_value", f"Invalid value: '{etype[:100]}'. Supported values are: {names}.",
                                param="type")
        yield from handler(self, event)

    def _session_event(self, name: str) -> dict:
        body = self.session if self.shape == "ga" else _beta_session(self.session, self.kind)
        return self.events.session_event(name, body)

    # ------------------------------------------------------------------------------------- session.update
    def _on_session_update(self, event: dict) -> Iterator[Any]:
        patch = event.get("session")
        if not isinstance(patch, dict):
            raise ProtocolError("missing_required_parameter", "Missing required parameter: 'session'.",
                                param="session")
        if self.shape == "beta":
            check_unknown(patch, kind=self.kind, shape="beta")
            patch = dict(session_to_ga(patch, "beta", kind=self.kind))
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
        if self.shape == "ga":
            check_unknown(patch, kind=self.kind, shape="ga")
        yield from self._apply_session(patch, "session.updated")

    def _on_transcription_session_update(self, event: dict) -> Iterator[Any]:
        if self.kind != "transcription":
            self._refuse_kind("transcription")
        patch = event.get("session")
        if not isinstance(patch, dict):
            raise ProtocolError("missing_required_parameter", "Missing required parameter: 'session'.",
                                param="session")
        check_unknown(patch, kind="transcription", shape="beta")
        patch = dict(session_to_ga(patch, "beta", kind="transcription"))
        patch["type"] = "transcription"
        yield from self._apply_session(patch, P.TRANSCRIPTION_SESSION_EVENTS["beta"]["updated"])

    def _refuse_kind(self, requested: object) -> None:
        if requested == "transcription":
            msg = "Passing a transcription session update event to a realtime session is not allowed."
        else:
            msg = "Passing a realtime session update event to a transcription session is not allowed."
        raise ProtocolError("invalid_parameter", msg, param="session.type")

    def _apply_session(self, patch: dict, updated_name: str) -> Iterator[Any]:
        self.session = apply_update(self.session, patch, kind=self.kind, shape=self.shape, profile=self.profile,
                                    model_name=self.model_name, surface=self.surface,
                                    audio_sent=self.responses.audio_sent)
        self._configure()
        if self.shape == "beta" and updated_name == "session.updated" and self.kind == "transcription":
            updated_name = P.TRANSCRIPTION_SESSION_EVENTS["beta"]["updated"]
        yield self._session_event(updated_name)

    def _configure(self) -> None:
        audio_in = self.session["audio"]["input"]
        self.transcriber.configure(audio_in.get("transcription"), self.session.get("include"))
        tr = self.transcriber.config or {}
        cap = self.transcriber.capability
        stability = delay_stability(tr.get("delay")) if cap is not None and cap.delay else None
        self.input.configure(audio_in, streaming=self.transcriber.streams(), stability=stability,
                             recognize=self.kind == "realtime" or self.transcriber.config is not None,
                             semantic_silent=self.profile.behaviour_value("semantic_vad", "implemented") == "silent")

    @property
    def _vad_cfg(self) -> dict:
        return self.session["audio"]["input"].get("turn_detection") or {}

    # -------------------------------------------------------------------------------------------- audio
    def _on_append(self, event: dict) -> Iterator[Any]:
        audio = event.get("audio")
        if audio is None:
            raise ProtocolError("missing_required_parameter", "Missing required parameter: 'audio'.", param="audio")
        if not isinstance(audio, str):
            raise ProtocolError("invalid_type", f"Invalid type for 'audio': expected a base64 string, got "
                                f"{type(audio).__name__}.", param="audio")
        too_big = (f"Audio content of {{n}} bytes exceeds the maximum of {P.MAX_APPEND_BYTES} bytes (15 MiB) per "
                   "input_audio_buffer.append. Send smaller chunks.")
        if len(audio) * 3 // 4 > P.MAX_APPEND_BYTES + 3:
            raise ProtocolError("invalid_value", too_big.format(n=len(audio) * 3 // 4), param="audio")
        try:
            raw = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("invalid_value", "Invalid 'audio'. Expected base64-encoded audio bytes.",
                                param="audio") from None
        if len(raw) > P.MAX_APPEND_BYTES:
            raise ProtocolError("invalid_value", too_big.format(n=len(raw)), param="audio")
        pcm = self.input.decode(raw)
        if not len(pcm):
            return
        yield from self._pipeline_events(self.input.feed(pcm), auto=True)
        if self.input.semantic_turn_end():
            yield from self._end_turn_now()
        yield from self._check_idle_timeout()

    def _pipeline_events(self, events: list, *, auto: bool) -> Iterator[Any]:
        for ev in events:
            if isinstance(ev, SpeechStarted):
                yield from self._speech_started(ev)
            elif isinstance(ev, Partial):
                if self._pending_item is None:
                    self._pending_item = self.events.id("item")
                yield self.transcriber.partial(self._pending_item, ev.delta)
            elif isinstance(ev, SpeechStopped):
                self.turn.fire("speech_stopped")
                self._speech_end_ms = ev.speech_end_ms
                if self._pending_item is None:
                    self._pending_item = self.events.id("item")
                # audio_end_ms includes the silence window (documented: SDK speech_stopped docstring).
                yield self.events.ev("input_audio_buffer.speech_stopped", audio_end_ms=int(ev.detected_ms),
                                     item_id=self._pending_item)
            elif isinstance(ev, Final):
                yield from self._commit(ev, auto=auto and ev.cause != "commit")

    def _speech_started(self, ev: SpeechStarted) -> Iterator[Any]:
        self.turn.fire("speech_started")
        self._idle_from_ms = None
        self._pending_item = self.events.id("item")
        self._speech_end_ms = None
        # Barge-in: speech_started first, then the interrupted response's events (Realtime conversations guide).
        yield self.events.ev("input_audio_buffer.speech_started", audio_start_ms=int(ev.audio_start_ms),
                             item_id=self._pending_item)
        active = self.responses.active
        if (active is not None and self.kind == "realtime" and self._vad_cfg.get("interrupt_response", True)):
            yield from self.responses.finish(self.session, active, "cancelled", reason="turn_detected",
                                             trigger="speech_started")

    def _end_turn_now(self) -> Iterator[Any]:
        """semantic_vad decided the turn is over: stop and commit it here."""
        events = self.input.commit()
        self.input.pipe.restart_vad()  # the VAD listens for the next turn at once
        self.turn.fire("speech_stopped")
        self._speech_end_ms = self.input.pipe.last_speech_end_ms
        item = self._pending_item or self.events.id("item")
        self._pending_item = item
        yield self.events.ev("input_audio_buffer.speech_stopped", audio_end_ms=int(self.input.audio_ms),
                             item_id=item)
        for ev in events:
            if isinstance(ev, Partial):
                yield self.transcriber.partial(item, ev.delta)
            elif isinstance(ev, Final):
                yield from self._commit(ev, auto=True)

    def _on_commit(self, event: dict) -> Iterator[Any]:
        n_ms = self.input.pipe.uncommitted_ms
        if n_ms < P.MIN_COMMIT_MS:
            raise ProtocolError(
                "input_audio_buffer_commit_empty",
                f"Error committing input audio buffer: buffer too small. Expected at least {P.MIN_COMMIT_MS}ms of "
                f"audio, but buffer only has {n_ms:.2f}ms of audio.",
            )
        self.turn.fire("commit")
        self._speech_end_ms = None
        yield from self._pipeline_events(self.input.commit(), auto=False)

    def _on_clear(self, event: dict) -> Iterator[Any]:
        self.turn.fire("clear")
        self.input.clear()
        self.transcriber.discard(self._pending_item)
        self._pending_item = None
        yield self.events.ev("input_audio_buffer.cleared")

    def _check_idle_timeout(self) -> Iterator[Any]:
        """server_vad ``idle_timeout_ms``: after an answer has played, silence that long prompts the user."""
        timeout = self._vad_cfg.get("idle_timeout_ms")
        if (self.kind != "realtime" or not timeout or self._idle_from_ms is None or self.responses.active is not None
                or self.input.pipe.in_speech or self.input.audio_ms - self._idle_from_ms < timeout):
            return
        start, self._idle_from_ms = self._idle_from_ms, None
        item_id = self.events.id("item")
        yield self.events.ev("input_audio_buffer.timeout_triggered", audio_start_ms=int(start),
                             audio_end_ms=int(self.input.audio_ms), item_id=item_id)
        self._pending_item = item_id
        yield from self._commit(None, auto=True, idle=True, span_ms=self.input.audio_ms - start)

    def _response_finished(self, resp: Any) -> None:
        # The idle timeout counts from when the answer's audio has finished playing (in audio time).
        self._idle_from_ms = self.input.audio_ms + resp.audio_sent_ms

    # ------------------------------------------------------------------------------------------- commit
    def _commit(self, final: Final | None, *, auto: bool, idle: bool = False, span_ms: float = 0.0
                ) -> Iterator[Any]:
        item_id = self._pending_item or self.events.id("item")
        self._pending_item = None
        previous = self.conversation.previous()
        yield self.events.ev("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        heard = final.transcript.text.strip() if final is not None else ""
        audio_ms = (final.end_ms - final.start_ms) if final is not None else span_ms
        item = self.conversation.user_audio_item(item_id, heard, audio_ms)
        yield from self.conversation.add(item, previous)
        end_wall = self.input.arrived_at(self._true_end_ms(final))
        self._speech_end_ms = None
        if (self.kind == "realtime" and auto and self._vad_cfg.get("create_response", True)
                and self.responses.active is None):
            # The response starts at the commit: it does not wait for the input transcription.
            yield from self.responses.start(self.session, {}, trigger="idle" if idle else "vad", end_wall=end_wall)
        text = final.transcript.text if final is not None else ""
        outs = self.transcriber.final(item_id, final, heard=text, audio_s=audio_ms / 1000.0, end_wall=end_wall,
                                      now=self.clock(), error=bool(final is not None and final.failed))
        for out in outs:
            payload = getattr(out, "out", out)
            if isinstance(payload, dict) and payload.get("type", "").endswith("transcription.completed"):
                self.conversation.set_transcript(item_id, payload["transcript"])
            yield out

    def _true_end_ms(self, final: Final | None) -> float:
        """Where speech really ended: the VAD's last speech frame, else the recognizer's last word, else the end."""
        if final is None:
            return self.input.audio_ms
        if self._speech_end_ms is not None:
            return self._speech_end_ms
        words = final.transcript.words
        if words:
            return min(final.start_ms + words[-1].end_ms, final.end_ms)
        return final.end_ms

    # --------------------------------------------------------------------------------------- responses
    def _on_response_create(self, event: dict) -> Iterator[Any]:
        params = event.get("response") or {}
        if not isinstance(params, dict):
            raise ProtocolError("invalid_type", "Invalid type for 'response': expected an object.", param="response")
        yield from self.responses.start(self.session, params, trigger="client")

    def _on_response_cancel(self, event: dict) -> Iterator[Any]:
        yield from self.responses.cancel(self.session, event)

    def _on_item_create(self, event: dict) -> Iterator[Any]:
        yield from self.conversation.on_create(event)

    def _on_item_retrieve(self, event: dict) -> Iterator[Any]:
        yield from self.conversation.on_retrieve(event)

    def _on_item_delete(self, event: dict) -> Iterator[Any]:
        yield from self.conversation.on_delete(event)

    def _on_item_truncate(self, event: dict) -> Iterator[Any]:
        yield from self.conversation.on_truncate(event)


_HANDLERS: dict[str, Callable[[Session, dict], Iterator[Any]]] = {
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


def _beta_session(ga: dict, kind: str) -> dict:
    """A GA session object in the beta shape (what an Azure preview client sees)."""
    beta = dict(session_from_ga(ga, "beta"))
    if kind == "transcription":
        # The SDK's beta TranscriptionSession requires client_secret (every event must validate against the SDK);
        # a WebSocket session has no ephemeral key, so it is empty.
        beta.setdefault("client_secret", {"value": "", "expires_at": 0})
    return beta

