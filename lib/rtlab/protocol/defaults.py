"""Service defaults and limits of Realtime sessions, with their evidence (layer: protocol).

A provider profile may override a default (e.g. the server-VAD silence duration a provider shows in
``session.created``); the values here are what the SDK documents.
"""

from __future__ import annotations

from types import MappingProxyType

from .evidence import Evidence

__all__ = ["DEFAULTS_EVIDENCE", "LOGPROBS_INCLUDE", "MAX_APPEND_BYTES", "MIN_COMMIT_MS", "SEMANTIC_VAD_MAX_WAIT_MS",
           "SERVER_VAD_DEFAULTS"]

#: server_vad defaults (SDK: openai/types/realtime/realtime_audio_input_turn_detection.py docstrings).
SERVER_VAD_DEFAULTS = MappingProxyType({"threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500})
#: semantic_vad: the longest the service waits for the user to go on, per eagerness (PROTOCOL.md, approximate).
SEMANTIC_VAD_MAX_WAIT_MS = MappingProxyType({"low": 8000, "medium": 4000, "auto": 4000, "high": 2000})
#: A commit needs at least this much audio, else ``input_audio_buffer_commit_empty``.
MIN_COMMIT_MS = 100
#: Largest ``input_audio_buffer.append`` payload.
MAX_APPEND_BYTES = 15 * 1024 * 1024
#: The ``include`` value that asks for transcription logprobs.
LOGPROBS_INCLUDE = "item.input_audio_transcription.logprobs"

DEFAULTS_EVIDENCE = MappingProxyType({
    "SERVER_VAD_DEFAULTS": Evidence("documented", "openai SDK 3.57 realtime_audio_input_turn_detection.py "
                                    "(threshold 0.5, prefix_padding_ms 300, silence_duration_ms 500)", "2026-11"),
    "SEMANTIC_VAD_MAX_WAIT_MS": Evidence("documented", "OpenAI Realtime VAD guide (eagerness low/medium/high: max "
                                         "8 s / 4 s / 2 s), via PROTOCOL.md", "2026-06"),
    "MIN_COMMIT_MS": Evidence("reported", "error text 'buffer too small. Expected at least 100ms of audio' "
                              "(OpenAI community)", "2025-10"),
    "MAX_APPEND_BYTES": Evidence("documented", "openai SDK 3.57 input_audio_buffer_append_event.py (15 MiB)",
                                 "2026-11"),
    "LOGPROBS_INCLUDE": Evidence("documented", "openai SDK 3.57 realtime_session_create_request.py (include)",
                                 "2026-11"),
})
