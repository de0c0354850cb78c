"""rtlab — Realtime Transcription Lab.

See and measure speech transcription in OpenAI and Azure OpenAI Realtime sessions: session configuration per
dialect, in-session vs sidecar transcription on one audio clock, endpoint probes, and event replay widgets.
Runs offline against a bundled local Realtime-compatible emulator.
"""

from __future__ import annotations

from .errors import AudioError, ConfigError, EventLogError, ProbeError, RtlabError, TargetError

__version__ = "0.1.0"

__all__ = [
    "AudioError",
    "ConfigError",
    "EventLogError",
    "ProbeError",
    "RtlabError",
    "TargetError",
    "__version__",
]
