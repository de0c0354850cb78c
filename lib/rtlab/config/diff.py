"""Requested vs applied: every field the server changed, dropped or added (layer: config)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .model import NULLABLE, UNSET, SessionConfig, Transcription, TurnDetection

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Change", "diff", "diff_frame"]


@dataclass(frozen=True)
class Change:
    """One difference between the requested and the applied configuration.

    ``kind`` is ``"changed"`` (both set, different), ``"dropped"`` (requested, absent from what was applied) or
    ``"added-by-server"`` (not requested, set by the server). Values are plain data (objects as dicts).
    """

    path: str
    requested: Any
    applied: Any
    kind: Literal["changed", "dropped", "added-by-server"]


def _plain(value: Any) -> Any:
    if isinstance(value, (Transcription, TurnDetection)):
        return value.to_dict()
    if isinstance(value, tuple):
        return list(value)
    return value


def _diff_values(path: str, requested: Any, applied: Any, nullable: bool) -> list[Change]:
    def is_set(v: Any) -> bool:
        return v is not UNSET and (v is not None or nullable)

    r_set, a_set = is_set(requested), is_set(applied)
    if not r_set and not a_set:
        return []
    if r_set and not a_set:
        return [Change(path, _plain(requested), None, "dropped")]
    if a_set and not r_set:
        return [Change(path, None, _plain(applied), "added-by-server")]
    if requested == applied:
        return []
    if type(requested) is type(applied) and dataclasses.is_dataclass(requested):
        if isinstance(requested, TurnDetection) and requested.type != applied.type:
            return [Change(path, _plain(requested), _plain(applied), "changed")]
        out: list[Change] = []
        for f in dataclasses.fields(requested):
            out.extend(_diff_values(f"{path}.{f.name}", getattr(requested, f.name), getattr(applied, f.name), False))
        return out
    return [Change(path, _plain(requested), _plain(applied), "changed")]


def diff(requested: SessionConfig, applied: SessionConfig) -> list[Change]:
    """Every field the server changed, dropped or added, comparing logical configs (e.g. from :func:`parse`).

    Nested objects are compared field by field (``turn_detection.silence_duration_ms``); a whole object is
    reported when it was turned off or on (``turn_detection``: requested ``None``, applied server_vad) or its
    turn-detection type changed.

    >>> asked = SessionConfig.transcription(model="gpt-4o-transcribe", language="en")
    >>> got = dataclasses.replace(asked, transcription=Transcription(model="gpt-4o-transcribe"))
    >>> diff(asked, got)
    [Change(path='transcription.language', requested='en', applied=None, kind='dropped')]
    """
    out: list[Change] = []
    for f in dataclasses.fields(SessionConfig):
        out.extend(_diff_values(f.name, getattr(requested, f.name), getattr(applied, f.name), f.name in NULLABLE))
    return out


def diff_frame(requested: SessionConfig, applied: SessionConfig) -> pd.DataFrame:
    """:func:`diff` as a pandas DataFrame with columns ``path, kind, requested, applied``."""
    import pandas as pd

    rows = [{"path": c.path, "kind": c.kind, "requested": c.requested, "applied": c.applied}
            for c in diff(requested, applied)]
    return pd.DataFrame(rows, columns=["path", "kind", "requested", "applied"])
