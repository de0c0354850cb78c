"""Runs (layer: runs): legs of sessions on one audio clock, recorded into an event log.

- :mod:`.core` — :class:`Run`, :class:`Leg`, :class:`RunOptions`, :func:`arun_legs`, source labels;
- :mod:`.realtime` — Realtime WebSocket legs (voice, transcription, out-of-band);
- :mod:`.local` — the local engine as a leg; :mod:`.sidecar` — sidecar specs, ``run_sidecar``, ``run_session``.
"""

from __future__ import annotations

from .core import (
    IN_SESSION,
    SIDECAR_AZURE_SPEECH,
    SIDECAR_LOCAL,
    SIDECAR_OOB,
    SIDECAR_TRANSCRIPTION,
    Leg,
    Run,
    RunOptions,
    arun_legs,
    run_sync,
)
from .local import LocalLeg
from .realtime import RemoteLeg
from .sidecar import (
    DEFAULT_SIDECARS,
    AzureSpeechSidecar,
    LocalSidecar,
    OutOfBandSidecar,
    TranscriptionSidecar,
    arun_session,
    arun_sidecar,
    build_legs,
    parse_sidecar,
    run_session,
    run_sidecar,
    voice_leg,
)
from .translation import TranslationSidecar
from .wire import SocketLeg, handshake_error_event

__all__ = [
    "AzureSpeechSidecar", "TranslationSidecar", "voice_leg",
    "DEFAULT_SIDECARS", "IN_SESSION", "SIDECAR_AZURE_SPEECH", "SIDECAR_LOCAL", "SIDECAR_OOB",
    "SIDECAR_TRANSCRIPTION", "Leg", "LocalLeg", "LocalSidecar", "OutOfBandSidecar", "RemoteLeg", "Run",
    "RunOptions", "SocketLeg", "TranscriptionSidecar", "arun_legs", "arun_session", "arun_sidecar", "build_legs",
    "handshake_error_event", "parse_sidecar", "run_session", "run_sidecar", "run_sync",
]
