"""Responses: the assistant's answers, their lifecycle (through the ``response`` state machine), speech and pacing.

Layer: emulator. A response in the default conversation moves the ``response`` machine of
:mod:`rtlab.emulator.states` (``create`` → ``done`` / ``cancel`` / ``speech_started``); an out-of-band response
(``conversation: "none"``) runs beside it. The answer's text is :func:`reply_text` of what the voice model heard
(the pipeline's own decode of the turn), never the transcription model's output. Its speech comes from the local
TTS, time-stretched (librosa) when ``audio.output.speed`` is not 1.0, and streams in 100 ms chunks; with modelled
timing the first chunk is due a modelled time after the end of speech and the rest follows at a modelled pace (the
adapter pumps the session, so a barge-in can still cancel what has not gone out). ``rate_limits.updated`` follows
``response.created`` (documented: "Emitted at the beginning of a Response").
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rtlab import protocol as P
from rtlab.audio import encode_g711, resample

from .base import SAMPLE_RATE, Events, ProtocolError, b64, copy_json
from .items import Conversation
from .timing import TimingModel
from .usage import audio_in_tokens, rate_limits, response_usage, text_tokens

__all__ = ["IDLE_REPLY", "RESPONSE_CHUNK_MS", "Response", "Responses", "reply_text"]

log = logging.getLogger("rtlab.emulator")

RESPONSE_CHUNK_MS = 100  # audio per response.output_audio.delta
IDLE_REPLY = "Are you still there?"  # the answer after server VAD's idle_timeout_ms

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


def reply_text(heard: str) -> str:
    """The emulator's deterministic spoken answer to a user turn: an acknowledgement repeating its key words."""
    words = re.findall(r"[a-z0-9']+", heard.lower())
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


@dataclass
class Response:
    """A response being streamed (default conversation) or built at once (out of band)."""

    id: str
    item_id: str
    conversation: str  # "auto" | "none"
    modality: str  # "audio" | "text"
    text: str
    metadata: dict | None
    audio_chunks: list[bytes] | None = None  # None while speech is being synthesized
    future: Any = None
    words: list[str] = field(default_factory=list)
    sent_chunks: int = 0
    sent_words: int = 0
    input_text_tokens: int = 0
    input_audio_tokens: int = 0
    voice: str = "alloy"
    fmt: dict = field(default_factory=lambda: P.audio_format_to_ga("pcm16"))
    speed: float = 1.0
    audio_s: float = 0.0
    first_due: float | None = None  # modelled timing: wall time of the first audio chunk

    @property
    def transcript_sent(self) -> str:
        return "".join(self.words[: self.sent_words])

    @property
    def audio_sent_ms(self) -> float:
        n = max(len(self.audio_chunks or []), 1)
        return 1000.0 * self.audio_s * min(self.sent_chunks, n) / n


def stretch(pcm: np.ndarray, speed: float) -> np.ndarray:
    """Speech at ``speed`` times its pace (pitch kept): librosa's phase-vocoder time stretch."""
    if speed == 1.0 or len(pcm) < 2048:
        return pcm
    import librosa

    y = librosa.effects.time_stretch(pcm.astype(np.float32) / 32768.0, rate=float(speed))
    return np.clip(np.round(y * 32768.0), -32768, 32767).astype(np.int16)


class Responses:
    """The responses of one session."""

    def __init__(self, *, events: Events, conversation: Conversation, machine: Any, engines: Any,
                 timing: TimingModel, clock: Callable[[], float],
                 run_async: Callable[[Callable[[], Any]], Any] | None) -> None:
        self.events = events
        self.conversation = conversation
        self.machine = machine
        self.engines = engines
        self.timing = timing
        self.clock = clock
        self.run_async = run_async
        self.active: Response | None = None
        self.audio_sent = False  # any assistant audio went out (the voice is fixed from then on)
        self.tokens_used = 0
        self.on_finished: Callable[[Response], None] | None = None

    # ------------------------------------------------------------------------------------------------ start
    def start(self, session: dict, params: dict, *, trigger: str, end_wall: float | None = None) -> Iterator[dict]:
        """Begin a response (``trigger``: ``client``, ``vad``, ``idle``); events until its first audio chunk."""
        conversation = params.get("conversation", "auto") or "auto"
        if conversation not in ("auto", "none"):
            raise ProtocolError("invalid_value", f"Invalid value: '{str(conversation)[:80]}'. Supported values are: "
                                "'auto' and 'none'.", param="response.conversation")
        modalities = params.get("output_modalities") or params.get("modalities") or session.get(
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
        if in_default:
            from ..states import Rejected

            try:
                self.machine.fire("create", response_id=self.active.id if self.active else "")
            except Rejected as exc:
                raise ProtocolError(exc.code, exc.message) from None
        rid = self.events.id("resp")
        conv = self.conversation
        if conversation == "none":
            text = conv.as_reference_text(params.get("input")) if params.get("input") else conv.last_heard
        elif trigger == "idle":
            text = IDLE_REPLY
        else:
            text = reply_text(conv.last_heard)
        out_cfg = (session.get("audio") or {}).get("output") or {}
        audio_params = ((params.get("audio") or {}).get("output") or {}) if isinstance(params.get("audio"), dict) \
            else {}
        text_in = text_tokens(session.get("instructions") or "")
        resp = Response(
            id=rid, item_id=self.events.id("item"), conversation=conversation,
            modality="audio" if "audio" in modalities else "text", text=text, metadata=metadata,
            words=re.findall(r"\S+\s*", text), voice=audio_params.get("voice") or out_cfg.get("voice") or "alloy",
            fmt=audio_params.get("format") or out_cfg.get("format") or P.audio_format_to_ga("pcm16"),
            speed=float(out_cfg.get("speed") or 1.0), input_text_tokens=text_in,
            input_audio_tokens=sum(audio_in_tokens(ms) for ms in conv.input_audio_ms(
                params.get("input") if isinstance(params.get("input"), list) else None)),
        )
        if self.timing.modelled:
            base = end_wall if end_wall is not None else self.clock()
            resp.first_due = base + self.timing.first_audio_after_end_ms() / 1000.0
        yield self.events.ev("response.created", response=self.response_obj(session, resp, "in_progress"))  # type: ignore[misc]
        reserve = resp.input_text_tokens + resp.input_audio_tokens + 4096
        yield self.events.ev("rate_limits.updated", rate_limits=rate_limits(self.tokens_used, reserve))  # type: ignore[misc]
        item = {"id": resp.item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
        yield self.events.ev("response.output_item.added", response_id=rid, output_index=0,  # type: ignore[misc]
                             item=copy_json(item))
        if in_default:
            previous = conv.previous()
            conv.items[item["id"]] = item
            conv.order.append(item["id"])
            conv.audio_ms[item["id"]] = 0.0
            ev = self.events.ev("conversation.item.added", previous_item_id=previous, item=copy_json(item))
            if ev is not None:
                yield ev
        part = {"type": "audio", "transcript": ""} if resp.modality == "audio" else {"type": "text", "text": ""}
        yield self.events.ev("response.content_part.added", response_id=rid, item_id=resp.item_id,  # type: ignore[misc]
                             output_index=0, content_index=0, part=part)
        if resp.modality == "text":
            resp.audio_chunks = []
        elif in_default and self.run_async is not None:
            resp.future = self.run_async(lambda: self._synthesize(resp))
        else:
            try:
                resp.audio_chunks = self._synthesize(resp)
            except Exception:
                log.exception("emulator: TTS engine failed")
                yield from self._tts_failed(session, resp)
                return
        if in_default and (resp.modality == "audio" or self.timing.modelled):
            self.active = resp
            yield from self.pump(session, block=False)
        else:
            while not self._complete(resp):
                yield from self._step(resp)
            yield from self.finish(session, resp, "completed")

    # ------------------------------------------------------------------------------------------------ audio
    def _synthesize(self, resp: Response) -> list[bytes]:
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
        pcm = stretch(pcm, resp.speed)
        resp.audio_s = len(pcm) / SAMPLE_RATE
        ftype = resp.fmt.get("type", "audio/pcm") if isinstance(resp.fmt, dict) else "audio/pcm"
        if ftype == "audio/pcm":
            data, per_chunk = pcm.astype("<i2").tobytes(), 2 * SAMPLE_RATE * RESPONSE_CHUNK_MS // 1000
        else:
            low = resample(pcm, SAMPLE_RATE, P.G711_RATE)
            data = encode_g711(low, "ulaw" if ftype == "audio/pcmu" else "alaw")
            per_chunk = P.G711_RATE * RESPONSE_CHUNK_MS // 1000
        return [data[i: i + per_chunk] for i in range(0, len(data), per_chunk)]

    def _complete(self, resp: Response) -> bool:
        return resp.sent_chunks >= len(resp.audio_chunks or []) and resp.sent_words >= len(resp.words)

    def _due(self, resp: Response) -> bool:
        """Modelled timing: the next chunk (or the text) may go out now."""
        if resp.first_due is None:
            return True
        pace = max(self.timing.audio_pace, 1e-3)
        return self.clock() >= resp.first_due + resp.sent_chunks * RESPONSE_CHUNK_MS / 1000.0 / pace

    def _step(self, resp: Response) -> Iterator[dict]:
        """One chunk of a response: its share of transcript words, then its audio (or all text at once)."""
        common = {"response_id": resp.id, "item_id": resp.item_id, "output_index": 0, "content_index": 0}
        if resp.modality == "text":
            for w in resp.words[resp.sent_words:]:
                yield self.events.ev("response.output_text.delta", delta=w, **common)  # type: ignore[misc]
            resp.sent_words = len(resp.words)
            return
        chunks = resp.audio_chunks or []
        n_chunks = max(len(chunks), 1)
        upto = min(len(resp.words), math.ceil((resp.sent_chunks + 1) * len(resp.words) / n_chunks))
        for w in resp.words[resp.sent_words: upto]:
            yield self.events.ev("response.output_audio_transcript.delta", delta=w, **common)  # type: ignore[misc]
        resp.sent_words = max(resp.sent_words, upto)
        if resp.sent_chunks < len(chunks):
            chunk = chunks[resp.sent_chunks]
            resp.sent_chunks += 1
            self.audio_sent = True
            if resp.conversation == "auto":
                self.conversation.audio_ms[resp.item_id] = resp.audio_sent_ms
            yield self.events.ev("response.output_audio.delta", delta=b64(chunk), **common)  # type: ignore[misc]
        elif not chunks:
            resp.sent_chunks = 1

    def _tts_failed(self, session: dict, resp: Response) -> Iterator[dict]:
        yield from self.finish(session, resp, "failed", error={
            "type": "server_error", "code": None, "message": "The server had an error generating audio."})

    def pump(self, session: dict, *, block: bool) -> Iterator[dict]:
        """The next due part of the active response (and its end after the last one)."""
        resp = self.active
        if resp is None:
            return
        if resp.audio_chunks is None:
            if not block and not resp.future.done():
                return
            try:
                resp.audio_chunks = resp.future.result()
            except Exception:
                log.exception("emulator: TTS engine failed")
                yield from self._tts_failed(session, resp)
                return
        if not block and not self._due(resp):
            return
        yield from self._step(resp)
        if self._complete(resp):
            yield from self.finish(session, resp, "completed")

    def next_due_in(self) -> float | None:
        """Seconds until the active response's next part is due (modelled timing), or None."""
        resp = self.active
        if resp is None or resp.first_due is None:
            return None
        pace = max(self.timing.audio_pace, 1e-3)
        return max(0.0, resp.first_due + resp.sent_chunks * RESPONSE_CHUNK_MS / 1000.0 / pace - self.clock())

    # ------------------------------------------------------------------------------------------------- end
    def cancel(self, session: dict, event: dict) -> Iterator[dict]:
        from ..states import Rejected

        rid = event.get("response_id")
        if self.active is not None and rid is not None and rid != self.active.id:
            raise ProtocolError("response_cancel_not_active",
                                f"Cancellation failed: no active response found with id '{str(rid)[:64]}'.",
                                param="response_id")
        if self.active is None:
            try:
                self.machine.fire("cancel")
            except Rejected as exc:
                raise ProtocolError(exc.code, exc.message) from None
            return
        yield from self.finish(session, self.active, "cancelled", reason="client_cancelled", trigger="cancel")

    def finish(self, session: dict, resp: Response, status: str, *, reason: str | None = None,
               error: dict | None = None, trigger: str = "done") -> Iterator[dict]:
        common = {"response_id": resp.id, "item_id": resp.item_id, "output_index": 0, "content_index": 0}
        said = resp.transcript_sent if status != "completed" else resp.text
        if status != "failed":
            if resp.modality == "audio":
                yield self.events.ev("response.output_audio.done", **common)  # type: ignore[misc]
                yield self.events.ev("response.output_audio_transcript.done", transcript=said, **common)  # type: ignore[misc]
                part = {"type": "audio", "transcript": said}
            else:
                yield self.events.ev("response.output_text.done", text=said, **common)  # type: ignore[misc]
                part = {"type": "text", "text": said}
            yield self.events.ev("response.content_part.done", part=part, **common)  # type: ignore[misc]
        content = ([{"type": "output_audio", "transcript": said}] if resp.modality == "audio"
                   else [{"type": "output_text", "text": said}]) if status != "failed" else []
        item = {"id": resp.item_id, "type": "message", "status": "completed" if status == "completed" else
                "incomplete", "role": "assistant", "content": content}
        yield self.events.ev("response.output_item.done", response_id=resp.id, output_index=0,  # type: ignore[misc]
                             item=copy_json(item))
        conv = self.conversation
        if resp.conversation == "auto" and resp.item_id in conv.items:
            conv.items[resp.item_id] = item
            ev = self.events.ev("conversation.item.done", previous_item_id=conv.previous_of(resp.item_id),
                                item=copy_json(item))
            if ev is not None:
                yield ev
        details: dict[str, Any] | None = None
        if status == "cancelled":
            details = {"type": "cancelled", "reason": reason}
        elif status == "failed":
            details = {"type": "failed", "error": error}
        obj = self.response_obj(session, resp, status, output=[item], details=details)
        if self.active is resp:
            self.active = None
        if resp.conversation == "auto":
            self.machine.fire(trigger)
            if self.on_finished is not None:
                self.on_finished(resp)
        self.tokens_used += (obj.get("usage") or {}).get("total_tokens", 0)
        yield self.events.ev("response.done", response=obj)  # type: ignore[misc]

    def response_obj(self, session: dict, resp: Response, status: str, *, output: list | None = None,
                     details: dict | None = None) -> dict:
        obj: dict[str, Any] = {
            "id": resp.id, "object": "realtime.response", "status": status, "status_details": details,
            "output": [copy_json(o) for o in (output or [])],
            "conversation_id": None if resp.conversation == "none" else "conv_" + str(session.get("id", ""))[5:],
            "output_modalities": [resp.modality], "max_output_tokens": "inf", "metadata": resp.metadata,
            "audio": {"output": {"format": resp.fmt, "voice": resp.voice}}, "usage": None,
        }
        if status != "in_progress":
            said = resp.transcript_sent if status != "completed" else resp.text
            audio_out_s = resp.audio_sent_ms / 1000.0 if resp.modality == "audio" else 0.0
            obj["usage"] = response_usage(input_text_tokens=resp.input_text_tokens,
                                          input_audio_tokens=resp.input_audio_tokens, said=said,
                                          audio_out_s=audio_out_s)
        return obj
