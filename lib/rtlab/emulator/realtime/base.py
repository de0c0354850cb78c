"""What every part of the emulated Realtime session shares: the protocol error, event building, small helpers.

Layer: emulator. :class:`Events` builds server events by their GA names for one session's dialect (renamed and
reshaped for the beta dialect at the edge, optionally validated against the SDK's models), with ids from the
session's seeded random source; :class:`ProtocolError` is a client mistake answered with an ``error`` event.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from rtlab import protocol as P
from rtlab.protocol.shapes import beta_payload

from ..ids import Ids
from ..validation import validate_server_event

__all__ = ["SAMPLE_RATE", "Events", "ProtocolError", "b64", "copy_json"]

SAMPLE_RATE = P.PCM_RATE


class ProtocolError(Exception):
    """A client mistake, answered with an ``error`` event (never raised out of the session)."""

    def __init__(self, code: str | None, message: str, *, param: str | None = None,
                 type: str = "invalid_request_error"):
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.type = type


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def copy_json(obj: Any) -> Any:
    """A deep copy through JSON (what the client will see)."""
    return json.loads(json.dumps(obj))


class Events:
    """Server events of one session: ids from a seeded source, names and payloads in the session's dialect."""

    def __init__(self, *, shape: str, seed: int | str | None, validate: bool) -> None:
        self.shape = shape
        self.validate = validate
        self.id = Ids(seed)  # ids, one seeded stream per prefix

    def ev(self, ga_type: str, **fields: Any) -> dict | None:
        """The event ``ga_type`` in this dialect, or None when the dialect has no such event."""
        name = P.server_event_name(ga_type, self.shape)  # type: ignore[arg-type]
        if name is None:
            return None
        event = {"type": name, "event_id": self.id("event"), **fields}
        if self.shape == "beta":
            event = beta_payload(event)
        if self.validate:
            validate_server_event(event, self.shape)
        return event

    def error(self, code: str | None, message: str, *, param: str | None = None,
              type: str = "invalid_request_error", event_id: str | None = None) -> dict:
        return self.ev("error", error={"type": type, "code": code, "message": message, "param": param,  # type: ignore[return-value]
                                       "event_id": event_id})

    def session_event(self, name: str, body: dict) -> dict:
        event = {"type": name, "event_id": self.id("event"), "session": copy_json(body)}
        if self.validate:
            validate_server_event(event, self.shape)
        return event
