"""Compatibility: the Realtime session moved to :mod:`rtlab.emulator.realtime` (split by concern).

``from rtlab.emulator.core import Session, reply_text`` keeps working; new code imports from
:mod:`rtlab.emulator.realtime`.
"""

from __future__ import annotations

from .realtime import ProtocolError, Session, reply_text

__all__ = ["ProtocolError", "Session", "reply_text"]
