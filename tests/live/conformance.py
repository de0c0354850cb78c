"""Conformance of recorded server events: every event a service sent must parse as the openai SDK's model.

Used by the live suite on real sessions (a real event the SDK's models reject is a finding), and tested offline
on the emulator's logs (tests/test_live_suite.py). Reuses :func:`rtlab.emulator.validation.validate_server_event`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rtlab.emulator.validation import validate_server_event

#: Pseudo-events rtlab records itself (not sent by a server).
RTLAB_TYPES = ("rtlab.",)


def _restore_audio(event: Mapping[str, Any]) -> dict:
    """Event logs store audio once, beside the log: put an empty base64 string back where a pointer sits."""
    out = dict(event)
    for key in ("delta", "audio"):
        if isinstance(out.get(key), Mapping) and "$ref" in out[key]:
            out[key] = ""
    return out


def server_event_problems(log: Any, shape: str, *, source: str | None = None) -> list[str]:
    """One line per recorded server event (of ``source``, or all) that does not validate for ``shape``."""
    frame = log.to_frame()
    rows = frame[frame["direction"] == "server"]
    if source is not None:
        rows = rows[rows["source"] == source]
    problems: list[str] = []
    for _, row in rows.iterrows():
        event = row["event"]
        etype = str(event.get("type", ""))
        if etype.startswith(RTLAB_TYPES):
            continue
        try:
            validate_server_event(_restore_audio(event), shape)
        except Exception as exc:  # pydantic.ValidationError and friends: the finding itself
            first = str(exc).splitlines()
            problems.append(f"seq {row['seq']} {etype}: {' | '.join(first[:3])}")
    return problems


def count_server_events(log: Any, *, source: str | None = None) -> int:
    frame = log.to_frame()
    rows = frame[(frame["direction"] == "server") & ~frame["type"].str.startswith("rtlab.")]
    return int(len(rows if source is None else rows[rows["source"] == source]))
