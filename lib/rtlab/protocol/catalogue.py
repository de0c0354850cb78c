"""The model catalogue: what each model is, where it may be used, what it allows, and how we know (layer: protocol).

One row per model. Client-side rules (:mod:`rtlab.protocol.rules`), the emulator, the probe and the notebooks all
read these rows; nothing else in rtlab keeps a list of model names or capabilities. Every row carries its
:class:`~rtlab.protocol.evidence.Evidence`, and a transcription model's :class:`Latency` carries its own: the
published measurement the emulator's modelled timing follows, or ``assumed`` where no measurement exists.

Model → API: a model belongs to one API (``realtime`` voice sessions on ``/v1/realtime``, ``live`` GPT-Live
sessions on ``/v1/live/sessions``, ``translation`` sessions on ``/v1/realtime/translations``, or ``transcription``
— a transcription model, used inside a session). :func:`api_of` answers it, so a model sent down the wrong path
fails before anything is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from .evidence import Evidence

__all__ = [
    "DELAYS", "DEFAULT_TRANSCRIPTION_MODEL", "DEFAULT_TRANSCRIPTION_SIDECAR_MODEL", "DEFAULT_VOICE_MODEL", "Latency", "MODEL_APIS", "ModelApi",
    "TRANSCRIPTION_MODELS", "TranscriptionModel", "VOICE_MODELS", "VoiceModel", "api_of", "retirement",
    "transcription_model", "voice_model",
]

ModelApi = Literal["realtime", "live", "translation", "transcription"]
MODEL_APIS: tuple[str, ...] = ("realtime", "live", "translation", "transcription")

# -- sources, cited once ----------------------------------------------------------------------------------------
_SDK = "openai Python SDK 3.57, openai/types/realtime/audio_transcription.py (AudioTranscription docstrings)"
_SDK_SESSION = "openai Python SDK 3.57, openai/types/realtime/realtime_session_create_request.py (model docstring)"
_SDK_DATE = "2026-11"
_TX_GUIDE = "https://developers.openai.com/api/docs/guides/realtime-transcription"
_LIVE_TX_PAGE = "https://developers.openai.com/api/docs/models/gpt-live-transcribe"
_PIPECAT = "pipecat-ai/stt-benchmark PR 33 (time to final segment, 1000 samples)"
_LIVE_GUIDE = "https://developers.openai.com/api/docs/guides/live-conversations"
_TRANSLATE_GUIDE = "https://developers.openai.com/api/docs/guides/realtime-translation"

#: ``delay`` values of gpt-realtime-whisper, least to most (documented: SDK AudioTranscription.delay).
DELAYS: tuple[str, ...] = ("minimal", "low", "medium", "high", "xhigh")


@dataclass(frozen=True)
class Latency:
    """How fast a transcription model's text arrives, from a published measurement (or an assumption).

    ``final_p50_ms`` / ``final_p95_ms``: final transcript after the true end of speech. ``deltas``: ``"stream"``
    (deltas while audio arrives), ``"burst"`` (all deltas right after the commit) or ``"single"`` (one delta holding
    the whole turn, then completed).
    """

    final_p50_ms: float
    final_p95_ms: float
    deltas: Literal["stream", "burst", "single"]
    evidence: Evidence


@dataclass(frozen=True)
class TranscriptionModel:
    """A transcription model (``session.audio.input.transcription.model``) and what it allows."""

    name: str
    streaming: bool  # deltas while audio arrives (True) or after the commit (False)
    prompt: bool  # accepts `prompt`
    delay: bool  # accepts `delay`
    languages_keywords: bool  # accepts `languages[]` / `keywords[]`
    vad_in_transcription_session: bool  # accepts turn_detection in a transcription session
    in_session: bool  # may transcribe the input of a realtime (voice) session
    usage: Literal["tokens", "duration"]  # shape of `usage` on completed
    evidence: Evidence
    latency: Latency
    diarize: bool = False  # sends `segment` events with speaker labels
    logprobs: bool = False  # returns logprobs with include=["item.input_audio_transcription.logprobs"]
    retirement: str | None = None  # announced shutdown date (ISO)
    note: str = ""


@dataclass(frozen=True)
class VoiceModel:
    """A session model: a Realtime voice model, a GPT-Live model or the translation model."""

    name: str
    api: Literal["realtime", "live", "translation"]
    evidence: Evidence
    retirement: str | None = None
    note: str = ""


_E_SDK = Evidence("documented", _SDK, _SDK_DATE)
_E_PIPECAT = "2026-08"


def _assumed(why: str) -> Evidence:
    return Evidence("assumed", f"rtlab emulator choice: {why}", "2026-12-01")


_LAT_4O = Latency(637, 965, "burst", Evidence("reported", _PIPECAT + ": gpt-4o-transcribe p50 637 / p95 965 ms; "
                                              "deltas in a burst after commit (PROTOCOL.md, forum)", _E_PIPECAT))
_LAT_RTW = Latency(740, 878, "stream", Evidence("reported", _PIPECAT + ": gpt-realtime-whisper p50 740 / p95 878 ms",
                                                _E_PIPECAT))
_LAT_4O_LIKE = Latency(637, 965, "burst", _assumed("no published figure; taken as gpt-4o-transcribe's (pipecat)"))
_LAT_WHISPER1 = Latency(637, 965, "single", Evidence(
    "documented", _TX_GUIDE + " (whisper-1: the delta holds the full turn transcript); latency assumed as "
    "gpt-4o-transcribe's", "2026-11"))
_LAT_STREAMING = Latency(740, 878, "stream", _assumed("no published figure; taken as gpt-realtime-whisper's"))

_RETIRE_TX = "2027-02-26"  # SDK AudioTranscription.model docstring: announced shutdown of the gpt-4o family + whisper-1

TRANSCRIPTION_MODELS: MappingProxyType[str, TranscriptionModel] = MappingProxyType({m.name: m for m in [
    TranscriptionModel("whisper-1", False, True, False, False, True, True, "duration", _E_SDK, _LAT_WHISPER1,
                       retirement=_RETIRE_TX, note="prompt is a list of keywords; one delta per turn"),
    TranscriptionModel("gpt-4o-transcribe", False, True, False, False, True, True, "tokens", _E_SDK, _LAT_4O,
                       logprobs=True, retirement=_RETIRE_TX, note="prompt is free text"),
    TranscriptionModel("gpt-4o-mini-transcribe", False, True, False, False, True, True, "tokens", _E_SDK,
                       _LAT_4O_LIKE, logprobs=True, retirement=_RETIRE_TX, note="prompt is free text"),
    TranscriptionModel("gpt-4o-mini-transcribe-2025-12-15", False, True, False, False, True, True, "tokens", _E_SDK,
                       _LAT_4O_LIKE, logprobs=True, retirement=_RETIRE_TX, note="prompt is free text"),
    TranscriptionModel("gpt-4o-transcribe-diarize", False, False, False, False, True, True, "tokens", _E_SDK,
                       _LAT_4O_LIKE, diarize=True, retirement=_RETIRE_TX, note="speaker segments; no prompt"),
    TranscriptionModel("gpt-transcribe", False, False, False, True, True, True, "tokens", _E_SDK, _LAT_4O_LIKE,
                       note="languages[] and keywords[] instead of language/prompt"),
    TranscriptionModel("gpt-live-transcribe", True, False, False, True, False, False, "tokens",
                       Evidence("documented", f"{_SDK}; {_LIVE_TX_PAGE} (supported endpoint "
                                "v1/realtime/transcription_sessions, v1/realtime not supported; refuses server and "
                                f"semantic VAD); {_TX_GUIDE} (recommended starting point)", "2026-11"),
                       _LAT_STREAMING,
                       note="streaming; languages[] and keywords[]; transcription sessions only, client commits"),
    TranscriptionModel("gpt-realtime-whisper", True, False, True, False, False, True, "duration", _E_SDK, _LAT_RTW,
                       note="streaming; delay minimal..xhigh; no prompt; no VAD in transcription sessions; not a "
                            "session model"),
]})

#: The in-session transcription model rtlab proposes by default: gpt-realtime-whisper streams inside a voice session.
DEFAULT_TRANSCRIPTION_MODEL = "gpt-realtime-whisper"
#: The transcription-session (sidecar) model rtlab proposes by default: OpenAI's recommended starting point for
#: realtime transcription (documented: realtime-transcription guide); transcription sessions only, client commits.
DEFAULT_TRANSCRIPTION_SIDECAR_MODEL = "gpt-live-transcribe"

_RETIRE_RT = "2027-01-20"  # SDK RealtimeSessionCreateRequest.model docstring
_E_SDK_SESSION = Evidence("documented", _SDK_SESSION, _SDK_DATE)

VOICE_MODELS: MappingProxyType[str, VoiceModel] = MappingProxyType({m.name: m for m in [
    VoiceModel("gpt-realtime-2.1", "realtime", _E_SDK_SESSION),
    VoiceModel("gpt-realtime-2.1-mini", "realtime", _E_SDK_SESSION),
    VoiceModel("gpt-realtime-2", "realtime", _E_SDK_SESSION),
    VoiceModel("gpt-realtime-1.5", "realtime", _E_SDK_SESSION),
    VoiceModel("gpt-realtime", "realtime", _E_SDK_SESSION, retirement=_RETIRE_RT),
    VoiceModel("gpt-realtime-2025-08-28", "realtime", _E_SDK_SESSION, retirement=_RETIRE_RT),
    VoiceModel("gpt-realtime-mini", "realtime", _E_SDK_SESSION, retirement=_RETIRE_RT),
    VoiceModel("gpt-realtime-mini-2025-10-06", "realtime", _E_SDK_SESSION),
    VoiceModel("gpt-realtime-mini-2025-12-15", "realtime", _E_SDK_SESSION, retirement=_RETIRE_RT),
    VoiceModel("gpt-4o-realtime-preview", "realtime", _E_SDK_SESSION),
    VoiceModel("gpt-4o-mini-realtime-preview", "realtime", _E_SDK_SESSION),
    VoiceModel("gpt-live-1", "live", Evidence("documented", _LIVE_GUIDE + "; openai SDK 3.57 openai/types/live",
                                              "2026-10")),
    VoiceModel("gpt-live-1.1", "live", Evidence("documented", _LIVE_GUIDE + "; openai SDK 3.57 openai/types/live",
                                                "2026-10")),
    VoiceModel("gpt-realtime-translate", "translation",
               Evidence("documented", _TRANSLATE_GUIDE + "; openai SDK 3.57 client.realtime.translations", "2026-11")),
]})

#: The voice model rtlab uses when none is named: a current (not deprecated) Realtime model.
DEFAULT_VOICE_MODEL = "gpt-realtime-2.1"


def transcription_model(name: str | None) -> TranscriptionModel | None:
    """The row of a transcription model name, or None for an unknown name (e.g. an Azure deployment name)."""
    return TRANSCRIPTION_MODELS.get(name) if name else None


def voice_model(name: str | None) -> VoiceModel | None:
    """The row of a session model name, or None for an unknown name."""
    return VOICE_MODELS.get(name) if name else None


_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")
_FAMILIES = ((re.compile(r"^gpt-live-\d"), "live"), (re.compile(r"^gpt-(4o(-mini)?-)?realtime"), "realtime"),
             (re.compile(r"^gpt-audio"), "realtime"))


def api_of(model: str | None) -> ModelApi | None:
    """Which API ``model`` belongs to: ``realtime``, ``live``, ``translation``, ``transcription``; None if unknown.

    A dated snapshot (``gpt-realtime-2025-08-28``) belongs where its base model does; unknown names of the
    gpt-live-* / gpt-realtime-* families belong to their family's API (``gpt-realtime-whisper`` and
    ``gpt-realtime-translate`` are catalogue rows, so they are not taken for voice models).
    """
    if not model:
        return None
    for name in (model, _DATED.sub("", model)):
        if name in VOICE_MODELS:
            return VOICE_MODELS[name].api
        if name in TRANSCRIPTION_MODELS:
            return "transcription"
    for pattern, api in _FAMILIES:
        if pattern.match(model):
            return api  # type: ignore[return-value]
    return None


def retirement(model: str | None) -> str | None:
    """A one-line note when ``model`` has an announced shutdown date (shown wherever the model is used)."""
    row = TRANSCRIPTION_MODELS.get(model) or VOICE_MODELS.get(model) if model else None
    if row is None or row.retirement is None:
        return None
    return f"{model}: announced shutdown {row.retirement} ({row.evidence.source})"
