"""Protocol facts as data: the one place that knows GA vs beta names, audio formats and model capabilities.

Every other module (config rendering, the emulator, event analysis, probe) reads these tables instead of
keeping its own copy. Sources: ../shared/PROTOCOL.md and the openai SDK's types (``openai.types.realtime``,
``openai.types.beta.realtime``).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Shape = Literal["ga", "beta"]

#: Dialects a configuration renders into, and the event/session shape each one speaks.
DIALECTS: MappingProxyType[str, Shape] = MappingProxyType(
    {
        "openai-ga": "ga",
        "azure-ga": "ga",
        "azure-preview": "beta",
        # The OpenAI beta shape (OpenAI-Beta: realtime=v1), used by the probe and old clients.
        "openai-beta": "beta",
    }
)

# --------------------------------------------------------------------------------------------------
# Event names. GA name -> beta name, for every event whose name differs. Names absent here are the same
# in both dialects (input_audio_buffer.*, conversation.item.input_audio_transcription.*, response.created, ...).
# --------------------------------------------------------------------------------------------------
GA_TO_BETA_SERVER: MappingProxyType[str, str] = MappingProxyType(
    {
        "conversation.item.added": "conversation.item.created",
        "response.output_audio.delta": "response.audio.delta",
        "response.output_audio.done": "response.audio.done",
        "response.output_audio_transcript.delta": "response.audio_transcript.delta",
        "response.output_audio_transcript.done": "response.audio_transcript.done",
        "response.output_text.delta": "response.text.delta",
        "response.output_text.done": "response.text.done",
    }
)
#: GA events that have no beta counterpart (the beta server does not send them).
GA_ONLY_SERVER: frozenset[str] = frozenset(
    {
        "conversation.item.done",
        # Not in the SDK's beta server-event union: diarization segments and idle timeouts are GA features.
        "conversation.item.input_audio_transcription.segment",
        "input_audio_buffer.timeout_triggered",
    }
)

#: Session lifecycle events of a transcription session, per shape.
TRANSCRIPTION_SESSION_EVENTS: MappingProxyType[Shape, MappingProxyType[str, str]] = MappingProxyType(
    {
        "ga": MappingProxyType(
            {"update": "session.update", "created": "session.created", "updated": "session.updated"}
        ),
        "beta": MappingProxyType(
            {
                "update": "transcription_session.update",
                "created": "transcription_session.created",
                "updated": "transcription_session.updated",
            }
        ),
    }
)

BETA_TO_GA_SERVER: MappingProxyType[str, str] = MappingProxyType({v: k for k, v in GA_TO_BETA_SERVER.items()})


def server_event_name(ga_name: str, shape: Shape) -> str | None:
    """The name of a GA server event in ``shape``; ``None`` when that shape does not send it."""
    if shape == "ga":
        return ga_name
    if ga_name in GA_ONLY_SERVER:
        return None
    return GA_TO_BETA_SERVER.get(ga_name, ga_name)


def canonical_event_name(name: str) -> str:
    """The GA name of a server event given in either shape (beta names map to GA, GA names stay)."""
    if name.startswith("transcription_session."):
        return "session." + name.split(".", 1)[1]
    return BETA_TO_GA_SERVER.get(name, name)


# --------------------------------------------------------------------------------------------------
# Audio formats: logical name -> GA object and beta string.
# --------------------------------------------------------------------------------------------------
PCM_RATE = 24000
G711_RATE = 8000


@dataclass(frozen=True)
class AudioFormat:
    name: Literal["pcm16", "g711_ulaw", "g711_alaw"]
    ga_type: str
    beta_name: str
    sample_rate: int
    bytes_per_sample: int


AUDIO_FORMATS: MappingProxyType[str, AudioFormat] = MappingProxyType(
    {
        "pcm16": AudioFormat("pcm16", "audio/pcm", "pcm16", PCM_RATE, 2),
        "g711_ulaw": AudioFormat("g711_ulaw", "audio/pcmu", "g711_ulaw", G711_RATE, 1),
        "g711_alaw": AudioFormat("g711_alaw", "audio/pcma", "g711_alaw", G711_RATE, 1),
    }
)
_GA_TYPE_TO_FORMAT = {f.ga_type: f for f in AUDIO_FORMATS.values()}


def audio_format_from_ga(obj: dict) -> AudioFormat:
    """Look up a GA format object (``{"type": "audio/pcm", "rate": 24000}``); KeyError when unknown."""
    return _GA_TYPE_TO_FORMAT[obj["type"]]


def audio_format_to_ga(name: str) -> dict:
    fmt = AUDIO_FORMATS[name]
    if fmt.name == "pcm16":
        return {"type": fmt.ga_type, "rate": PCM_RATE}
    return {"type": fmt.ga_type}


# --------------------------------------------------------------------------------------------------
# Transcription models and what each allows. One row per model; config rules and the emulator read it.
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TranscriptionModel:
    name: str
    streaming: bool  # deltas while audio arrives (True) or a burst after commit (False)
    prompt: bool  # accepts `prompt`
    delay: bool  # accepts `delay` (GA realtime sessions only)
    languages_keywords: bool  # accepts `languages[]` / `keywords[]`
    vad_in_transcription_session: bool  # accepts turn_detection in a transcription session
    usage: Literal["tokens", "duration"]  # shape of `usage` on completed
    diarize: bool = False  # sends `segment` events
    deprecated: str | None = None  # announced shutdown date
    #: USD; per audio minute when usage == "duration", else per 1M audio input tokens (text output per 1M).
    note: str = ""


TRANSCRIPTION_MODELS: MappingProxyType[str, TranscriptionModel] = MappingProxyType(
    {
        m.name: m
        for m in [
            TranscriptionModel("whisper-1", False, True, False, False, True, "duration",
                               deprecated="2027-02-26", note="prompt is a list of keywords"),
            TranscriptionModel("gpt-4o-transcribe", False, True, False, False, True, "tokens",
                               deprecated="2027-02-26", note="prompt is free text"),
            TranscriptionModel("gpt-4o-mini-transcribe", False, True, False, False, True, "tokens",
                               deprecated="2027-02-26", note="prompt is free text"),
            TranscriptionModel("gpt-4o-mini-transcribe-2025-12-15", False, True, False, False, True, "tokens",
                               deprecated="2027-02-26", note="prompt is free text"),
            TranscriptionModel("gpt-4o-transcribe-diarize", False, False, False, False, True, "tokens",
                               diarize=True, deprecated="2027-02-26", note="speaker segments; no prompt"),
            TranscriptionModel("gpt-transcribe", False, False, False, True, True, "tokens",
                               note="languages[] and keywords[] instead of language/prompt"),
            TranscriptionModel("gpt-live-transcribe", True, False, False, True, True, "tokens",
                               note="streaming; languages[] and keywords[]"),
            TranscriptionModel("gpt-realtime-whisper", True, False, True, False, False, "duration",
                               note="streaming; delay; no prompt; no VAD in transcription sessions; "
                                    "not a /v1/realtime?model= session model"),
        ]
    }
)

#: Realtime (voice-to-voice) session models known to the kit; any string is accepted on the wire.
REALTIME_MODELS: tuple[str, ...] = (
    "gpt-realtime",
    "gpt-realtime-mini",
    "gpt-realtime-2",
    "gpt-4o-realtime-preview",
    "gpt-4o-mini-realtime-preview",
)

#: Models that may not be the `model` of a /v1/realtime?model= (voice) session.
NOT_SESSION_MODELS: frozenset[str] = frozenset({"gpt-realtime-whisper"})


def transcription_model(name: str) -> TranscriptionModel | None:
    """The capability row for a transcription model name, or None for an unknown name (e.g. a deployment)."""
    return TRANSCRIPTION_MODELS.get(name)


# Defaults the service applies (PROTOCOL.md "Defaults and limits").
SERVER_VAD_DEFAULTS = MappingProxyType({"threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500})
MIN_COMMIT_MS = 100
MAX_APPEND_BYTES = 15 * 1024 * 1024
LOGPROBS_INCLUDE = "item.input_audio_transcription.logprobs"
