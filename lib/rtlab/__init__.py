"""rtlab — Realtime Transcription Lab.

See and measure speech transcription in OpenAI and Azure OpenAI Realtime sessions: session configuration per
dialect, in-session vs sidecar transcription on one audio clock, endpoint probes, and event replay widgets.
Runs offline against a bundled local Realtime-compatible emulator.

The names below are imported lazily, so ``import rtlab`` stays cheap.
"""

from __future__ import annotations

import importlib

from .errors import AudioError, ConfigError, EventLogError, ProbeError, RtlabError, TargetError

__version__ = "0.1.0"

_LAZY = {
    "SessionConfig": "rtlab.config",
    "Transcription": "rtlab.config",
    "TurnDetection": "rtlab.config",
    "Target": "rtlab.targets",
    "EventLog": "rtlab.log",
    "run_session": "rtlab.runs",
    "arun_session": "rtlab.runs",
    "RunOptions": "rtlab.runs",
    "run_sidecar": "rtlab.runs",
    "arun_sidecar": "rtlab.runs",
    "TranscriptionSidecar": "rtlab.runs",
    "LocalSidecar": "rtlab.runs",
    "OutOfBandSidecar": "rtlab.runs",
    "turns": "rtlab.analysis",
    "summary": "rtlab.analysis",
    "probe": "rtlab.probe",
    "aprobe": "rtlab.probe",
    "diagnose": "rtlab.analysis.diagnose",
}
#: Modules importable as attributes (``from rtlab import metrics``).
_MODULES = {"metrics": "rtlab.analysis.metrics", "analysis": "rtlab.analysis", "audio": "rtlab.audio",
            "data": "rtlab.data", "subtitles": "rtlab.analysis.subtitles"}


def __getattr__(name: str):
    if name in _MODULES:
        module = importlib.import_module(_MODULES[name])
        globals()[name] = module
        return module
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rtlab' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))


__all__ = [
    "AudioError",
    "ConfigError",
    "EventLogError",
    "ProbeError",
    "RtlabError",
    "TargetError",
    "__version__",
    *_LAZY,
]
