"""One record of an event log, and the checks a record line must pass (layer: log)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rtlab.errors import EventLogError
from rtlab.protocol.events import canonical_event_name

__all__ = ["DIRECTIONS", "FORMAT_VERSION", "HEADER_KEY", "EventLogWarning", "Record", "check_record", "event_ids",
           "refuse_secrets"]

FORMAT_VERSION = 1
HEADER_KEY = "rtlab_eventlog"
DIRECTIONS = ("client", "server")


class EventLogWarning(UserWarning):
    """A log was readable but not intact (torn or corrupt lines were skipped)."""


@dataclass(frozen=True)
class Record:
    """One event as recorded: when (wall and audio clock), which way, from which source, and the event itself.

    ``event`` is the stored event: audio payloads are replaced by ``{"$ref": ...}`` pointers into the audio tracks.
    """

    seq: int
    t: float
    audio_ms: float | None
    direction: str
    source: str
    type: str
    item_id: str | None
    response_id: str | None
    event_id: str | None
    event: Mapping[str, Any]

    @property
    def name(self) -> str:
        """The canonical (GA) event name."""
        return canonical_event_name(self.type)

    def to_line(self) -> bytes:
        rec = {
            "seq": self.seq, "t": self.t, "audio_ms": self.audio_ms, "dir": self.direction, "src": self.source,
            "type": self.type, "item_id": self.item_id, "response_id": self.response_id,
            "event_id": self.event_id, "event": self.event,
        }
        return (json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")




def _str_or_none(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def event_ids(event: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    item_id = _str_or_none(event.get("item_id"))
    if item_id is None and isinstance(event.get("item"), Mapping):
        item_id = _str_or_none(event["item"].get("id"))
    response_id = _str_or_none(event.get("response_id"))
    if response_id is None and isinstance(event.get("response"), Mapping):
        response_id = _str_or_none(event["response"].get("id"))
    return item_id, response_id, _str_or_none(event.get("event_id"))




def check_record(obj: Any) -> str | None:
    """Why a parsed line is not a record, or None when it is one."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    if not isinstance(obj.get("type"), str):
        return "no event type"
    if obj.get("dir") not in DIRECTIONS:
        return f"bad direction {obj.get('dir')!r}"
    if not isinstance(obj.get("src"), str):
        return "no source"
    t = obj.get("t")
    if not isinstance(t, int | float) or isinstance(t, bool):
        return f"bad time {t!r}"
    for k in ("item_id", "response_id", "event_id"):
        if obj.get(k) is not None and not isinstance(obj.get(k), str):
            return f"bad {k} {obj.get(k)!r}"
    if obj.get("audio_ms") is not None and not isinstance(obj.get("audio_ms"), int | float):
        return f"bad audio_ms {obj.get('audio_ms')!r}"
    if obj.get("seq") is not None and not isinstance(obj.get("seq"), int):
        return f"bad seq {obj.get('seq')!r}"
    return None




def refuse_secrets(meta: Any, path: str = "meta") -> None:
    """Refuse meta keys that look like credentials: a log is shared, a secret must never land in it."""
    if isinstance(meta, Mapping):
        for k, v in meta.items():
            if re.search(r"api[-_]?key|secret|password|authorization|bearer", str(k), re.I) and v:
                raise EventLogError(f"{path}.{k} looks like a credential; event logs never store secrets — "
                                    "remove it from meta")
            refuse_secrets(v, f"{path}.{k}")
    elif isinstance(meta, list | tuple):
        for i, v in enumerate(meta):
            refuse_secrets(v, f"{path}[{i}]")


