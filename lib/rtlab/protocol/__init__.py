"""Protocol facts as data (layer: protocol, the bottom of the client stack and of the emulator).

The single home of what rtlab knows about the Realtime protocol and the models behind it; every other module reads
these tables instead of keeping its own copy:

- :mod:`.events` — event names per dialect (GA <-> beta), the client events of each session kind;
- :mod:`.shapes` — dialects, audio formats, the GA <-> beta session mapping, beta payload shaping, unknown fields;
- :mod:`.catalogue` — the model catalogue (what each model is, which API and surfaces take it, its options,
  retirement dates, latency measurements), each row with its evidence;
- :mod:`.rules` — the rules table (client message and fix, the real service's error, evidence, an example);
- :mod:`.defaults` — service defaults and limits; :mod:`.evidence` — how each fact is known.

Sources: ../shared/PROTOCOL.md and the openai SDK's types (``openai.types.realtime``, ``openai.types.beta.realtime``).
"""

from __future__ import annotations

from .catalogue import (
    DEFAULT_TRANSCRIPTION_MODEL,
    DEFAULT_VOICE_MODEL,
    DELAYS,
    TRANSCRIPTION_MODELS,
    VOICE_MODELS,
    Latency,
    TranscriptionModel,
    VoiceModel,
    api_of,
    retirement,
    transcription_model,
    voice_model,
)
from .defaults import LOGPROBS_INCLUDE, MAX_APPEND_BYTES, MIN_COMMIT_MS, SERVER_VAD_DEFAULTS
from .events import (
    GA_ONLY_SERVER,
    GA_TO_BETA_SERVER,
    TRANSCRIPTION_SESSION_EVENTS,
    Shape,
    canonical_event_name,
    client_events,
    server_event_name,
)
from .evidence import Evidence
from .shapes import (
    AUDIO_FORMATS,
    DIALECTS,
    G711_RATE,
    KINDS,
    PCM_RATE,
    AudioFormat,
    audio_format_from_ga,
    audio_format_to_ga,
    session_from_ga,
    session_to_ga,
    shape_of,
)

__all__ = [
    "AUDIO_FORMATS", "DEFAULT_TRANSCRIPTION_MODEL", "DEFAULT_VOICE_MODEL", "DELAYS", "DIALECTS", "G711_RATE",
    "GA_ONLY_SERVER", "GA_TO_BETA_SERVER", "KINDS", "LOGPROBS_INCLUDE", "MAX_APPEND_BYTES", "MIN_COMMIT_MS",
    "PCM_RATE", "SERVER_VAD_DEFAULTS", "TRANSCRIPTION_MODELS", "TRANSCRIPTION_SESSION_EVENTS", "VOICE_MODELS",
    "AudioFormat", "Evidence", "Latency", "Shape", "TranscriptionModel", "VoiceModel", "api_of",
    "audio_format_from_ga", "audio_format_to_ga", "canonical_event_name", "client_events", "retirement",
    "server_event_name", "session_from_ga", "session_to_ga", "shape_of", "transcription_model", "voice_model",
]
