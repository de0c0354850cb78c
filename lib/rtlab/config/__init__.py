"""One logical session configuration, rendered into each Realtime dialect and parsed back (layer: config).

- :mod:`.model` — :class:`SessionConfig`, :class:`Transcription`, :class:`TurnDetection` (model names, no dialect);
- :mod:`.render` — :func:`render` into a dialect's client event, :func:`parse` server events back, SDK validation;
- :mod:`.checks` — the client's verdicts on the shared rules table (:data:`rtlab.protocol.rules.RULES`);
- :mod:`.diff` — requested vs applied; :mod:`.display` — notebook display.

>>> cfg = SessionConfig.realtime(model="gpt-realtime-2.1", transcription="gpt-realtime-whisper")
>>> parse(render(cfg, "openai-ga")) == cfg
True
"""

from __future__ import annotations

from rtlab.protocol.rules import RULES
from rtlab.protocol.shapes import SHAPE_MAP, session_from_ga, session_to_ga

from .checks import RuleViolation, validate, violations
from .diff import Change, diff, diff_frame
from .display import RenderedSession
from .model import DEFAULT_DIALECT, UNSET, SessionConfig, Transcription, TurnDetection
from .render import parse, render, render_session, validate_with_sdk

__all__ = [
    "DEFAULT_DIALECT", "RULES", "SHAPE_MAP", "UNSET", "Change", "RenderedSession", "RuleViolation",
    "SessionConfig", "Transcription", "TurnDetection", "diff", "diff_frame", "parse", "render", "render_session",
    "session_from_ga", "session_to_ga", "validate", "validate_with_sdk", "violations",
]
