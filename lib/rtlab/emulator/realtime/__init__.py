"""The emulated Realtime session, split by concern (layer: emulator).

============================  =====================================================================================
:mod:`.session`               :class:`Session`: one connection sans I/O; dispatch, turns, commits (the hub)
:mod:`.config`                the session object and ``session.update``: unknown keys, types, rules, refusals
:mod:`.input`                 the input audio buffer on the one local pipeline; semantic VAD; arrival times
:mod:`.transcription`         the transcription model's events, asynchronous to the response
:mod:`.responses`             responses: lifecycle, speech (speed), pacing, ``rate_limits.updated``
:mod:`.items`                 conversation items: create, retrieve, delete, truncate
:mod:`.usage`                 token and duration estimates (emulated)
:mod:`.timing`                ``local`` or ``modelled`` timing (published latency distributions)
:mod:`.base`                  protocol error, event building
============================  =====================================================================================
"""

from __future__ import annotations

from .base import ProtocolError
from .responses import reply_text
from .session import Session
from .timing import TIMINGS

__all__ = ["TIMINGS", "ProtocolError", "Session", "reply_text"]
