"""Diagnose errors of the real Realtime services: what went wrong and what to change (layer: analysis).

:func:`diagnose` takes an error in whatever shape it reached you and answers with a :class:`Diagnosis`: the error
(normalised, secrets masked), the row of :data:`rtlab.protocol.known_errors.KNOWN_ERRORS` that recognises it, its
cause, its fix and the evidence behind them. Accepted inputs:

=====================================================  =============================================================
input                                                  read as
=====================================================  =============================================================
``{"type": "error", "error": {...}}``                  an error event
``{"type": "conversation.item.input_audio_...failed"}``  a failed transcription (its ``error``)
``{"type": "response.done", "response": {failed}}``    a failed response (``status_details.error``)
``{"type": "rtlab.handshake_failed", ...}``            a refused handshake, as :mod:`rtlab.runs` records it
``{"error": {...}}`` / ``{"code", "message"}``          an HTTP error body / a bare error object
an exception                                           openai ``APIStatusError``, websockets ``InvalidStatus`` and
                                                       ``ConnectionClosed``, azure-identity errors, anything else
``str`` / ``bytes``                                    JSON, ``Error code: 401 - {...}``, close frames, plain text
an :class:`~rtlab.log.EventLog` or a list           every error in it (a :class:`Diagnoses`)
=====================================================  =============================================================

It never raises: an error no row recognises gets a diagnosis with ``id == "unknown"`` that says so.

>>> d = diagnose({"type": "error", "error": {"code": "OpperationNotSupported", "message": "..."}})
>>> d.id
'azure_operation_not_supported'
>>> diagnose("something odd").id
'unknown'
"""

from __future__ import annotations

import ast
import html
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

from rtlab.protocol.evidence import Evidence
from rtlab.protocol.known_errors import ErrorFacts, KnownError, best_match
from rtlab.secrets import redact

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from rtlab.log import EventLog

__all__ = ["Diagnoses", "Diagnosis", "diagnose", "error_facts"]

#: Event types in a log that carry an error.
ERROR_EVENT_TYPES = frozenset({
    "error",
    "rtlab.handshake_failed",
    "conversation.item.input_audio_transcription.failed",
})
_TRANSCRIPTION_FAILED = "conversation.item.input_audio_transcription.failed"
_MAX_MESSAGE = 2000


# ==============================================================================================================
# Normalising: any error shape -> ErrorFacts
# ==============================================================================================================
def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return redact(text)[:_MAX_MESSAGE] if text else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _from_error_object(err: Mapping[str, Any], **extra: Any) -> ErrorFacts:
    code = _text(err.get("code"))
    status = extra.pop("status", None)
    if status is None:
        status = _int(err.get("status") or err.get("statusCode") or err.get("status_code"))
    if status is None and code and code.isdigit() and len(code) == 3:
        status = int(code)  # Azure puts the HTTP status in "code": {"code": "401", ...}
    return ErrorFacts(status=status, code=code, type=_text(err.get("type")), message=_text(err.get("message")),
                      param=_text(err.get("param")), **extra)


def _from_mapping(obj: Mapping[str, Any]) -> ErrorFacts | None:
    etype = obj.get("type")
    inner = obj.get("error")
    if etype == "error" and isinstance(inner, Mapping):
        return _from_error_object(inner, event="error")
    if etype == _TRANSCRIPTION_FAILED:
        return _from_error_object(inner if isinstance(inner, Mapping) else {}, event=_TRANSCRIPTION_FAILED)
    if etype == "rtlab.handshake_failed":
        return _from_error_object(obj, event="handshake", exception=_text(obj.get("exception")),
                                  status=_int(obj.get("status")))
    if etype == "response.done":
        response = obj.get("response") or {}
        details = (response.get("status_details") or {}) if isinstance(response, Mapping) else {}
        err = details.get("error") if isinstance(details, Mapping) else None
        if isinstance(response, Mapping) and response.get("status") == "failed" and isinstance(err, Mapping):
            return _from_error_object(err, event="response.failed")
        return None
    if isinstance(inner, Mapping):  # an HTTP error body
        return _from_error_object(inner, status=_int(obj.get("status") or obj.get("status_code")))
    if isinstance(inner, str) and inner:
        return ErrorFacts(message=_text(inner), status=_int(obj.get("status") or obj.get("statusCode")))
    if "message" in obj or "code" in obj:  # a bare error object, or Azure's {"statusCode": 401, "message": ...}
        if etype is not None and not isinstance(obj.get("message"), str):
            return None
        return _from_error_object(obj)
    return None


_SDK_STATUS = re.compile(r"Error code: (\d{3}) - (\{.*\})\s*$", re.DOTALL)
_CLOSE = re.compile(r"received (\d{4})\b(?: \([^)]*\))?\s*([A-Za-z_]+_error)?\.?([A-Za-z0-9_]+)?")
_DOTTED = re.compile(r"\b([a-z_]+_error)\.([a-z0-9_]+)\b")
_HTTP = re.compile(r"(?:HTTP|status code|response code:?|rejected WebSocket connection: HTTP)\s*(\d{3})\b",
                   re.IGNORECASE)


def _parse_literal(text: str) -> Any:
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return None


def _from_text(text: str, *, event: str = "text", exception: str | None = None) -> ErrorFacts:
    stripped = text.strip()
    if stripped[:1] in "{[":
        parsed = _parse_literal(stripped)
        if isinstance(parsed, Mapping):
            facts = _from_mapping(parsed)
            if facts is not None:
                return _with(facts, exception=exception)
    m = _SDK_STATUS.search(stripped)
    if m:  # str() of an openai APIStatusError: "Error code: 401 - {'error': {...}}"
        parsed = _parse_literal(m.group(2))
        if isinstance(parsed, Mapping):
            facts = _from_mapping(parsed) or ErrorFacts()
            return _with(facts, status=int(m.group(1)), event=facts.event or event, exception=exception)
    close = _CLOSE.search(stripped)
    if close:  # str() of a websockets ConnectionClosed: "received 4000 (private use) type.code; then sent ..."
        return ErrorFacts(event="close", close_code=int(close.group(1)), type=close.group(2), code=close.group(3),
                          message=_text(stripped), exception=exception)
    dotted = _DOTTED.search(stripped)
    http = _HTTP.search(stripped)
    return ErrorFacts(event=event, message=_text(stripped), exception=exception,
                      type=dotted.group(1) if dotted else None, code=dotted.group(2) if dotted else None,
                      status=int(http.group(1)) if http else None)


def _with(facts: ErrorFacts, **changes: Any) -> ErrorFacts:
    values = facts.__dict__ | {k: v for k, v in changes.items() if v is not None}
    return ErrorFacts(**values)


def _from_exception(exc: BaseException) -> ErrorFacts:
    name = type(exc).__name__
    # openai APIStatusError (and subclasses): status_code plus the parsed "error" body
    status = _int(getattr(exc, "status_code", None))
    body = getattr(exc, "body", None)
    if status is not None or isinstance(body, Mapping):
        facts = _from_mapping(body) if isinstance(body, Mapping) else None
        if facts is None and isinstance(body, Mapping):
            facts = _from_error_object(body)
        facts = facts or ErrorFacts(message=_text(getattr(exc, "message", None) or exc))
        return _with(facts, status=status, event="handshake" if status else "exception", exception=name)
    # websockets InvalidStatus: the HTTP response of the refused upgrade
    response = getattr(exc, "response", None)
    if response is not None and _int(getattr(response, "status_code", None)) is not None:
        raw = getattr(response, "body", b"") or b""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes | bytearray) else str(raw)
        facts = _from_text(text) if text.strip() else ErrorFacts(message=name)
        return _with(facts, status=int(response.status_code), event="handshake", exception=name)
    # websockets ConnectionClosed: the close frame the server sent
    rcvd = getattr(exc, "rcvd", None)
    if rcvd is not None and _int(getattr(rcvd, "code", None)) is not None:
        reason = str(getattr(rcvd, "reason", "") or "")
        dotted = _DOTTED.search(reason)
        return ErrorFacts(event="close", close_code=int(rcvd.code), message=_text(reason) or None,
                          type=dotted.group(1) if dotted else None, code=dotted.group(2) if dotted else None,
                          exception=name)
    text = str(exc) or name
    return _from_text(f"{name}: {text}" if name not in text else text, event="exception", exception=name)


def error_facts(error: Any) -> ErrorFacts | None:
    """The normalised fields of one error (see the module docstring for the shapes); None when ``error`` is not
    an error (e.g. a ``session.created`` event). Messages are redacted: no key survives."""
    if isinstance(error, ErrorFacts):
        return error
    if isinstance(error, Mapping):
        return _from_mapping(error)
    if isinstance(error, BaseException):
        return _from_exception(error)
    if isinstance(error, bytes | bytearray):
        error = error.decode("utf-8", "replace")
    if isinstance(error, str):
        return _from_text(error) if error.strip() else None
    return None


# ==============================================================================================================
# Diagnoses
# ==============================================================================================================
def _raw(error: Any) -> Any:
    """The input as JSON-ready data with secrets masked (the original object may hold a key in a message)."""
    if isinstance(error, Mapping):
        try:
            return json.loads(redact(json.dumps(error, default=str)))
        except (TypeError, ValueError):
            return redact(repr(error))
    if isinstance(error, BaseException):
        return redact(f"{type(error).__name__}: {error}")[:_MAX_MESSAGE]
    if isinstance(error, bytes | bytearray):
        return redact(error.decode("utf-8", "replace"))[:_MAX_MESSAGE]
    if isinstance(error, ErrorFacts):
        return error.to_dict()
    return redact(str(error))[:_MAX_MESSAGE]


_UNKNOWN_CAUSE = "rtlab has no diagnosis for this error yet."
_UNKNOWN_FIX = ("Read the raw error (code and message); search the exact message in the provider's docs and forums; "
                "run `rtlab probe` against the endpoint to see which surfaces work. If it is a real service error, "
                "add it to rtlab.protocol.known_errors with its source.")
_NOT_AN_ERROR = "This is not an error (no error event, error body or exception was found in it)."


@dataclass(frozen=True)
class Diagnosis:
    """One error and what rtlab knows about it.

    Attributes
    ----------
    facts
        The error's normalised fields (status, close code, code, type, message, param), secrets masked.
    row
        The matching :class:`~rtlab.protocol.known_errors.KnownError`, or None for an unknown error.
    raw
        The input, JSON-ready and redacted.
    where
        For errors found in an event log: ``source``, ``seq``, ``t_ms``, ``audio_ms``.
    """

    facts: ErrorFacts
    row: KnownError | None
    raw: Any = None
    where: Mapping[str, Any] = field(default_factory=dict)
    is_error: bool = True

    @property
    def id(self) -> str:
        """The known-error row id, or ``"unknown"``."""
        return self.row.id if self.row is not None else "unknown"

    @property
    def known(self) -> bool:
        return self.row is not None

    @property
    def title(self) -> str:
        return self.row.title if self.row is not None else ("not an error" if not self.is_error
                                                           else "unknown error")

    @property
    def cause(self) -> str:
        if self.row is not None:
            return self.row.cause
        return _UNKNOWN_CAUSE if self.is_error else _NOT_AN_ERROR

    @property
    def fix(self) -> str:
        return self.row.fix if self.row is not None else (_UNKNOWN_FIX if self.is_error else "")

    @property
    def evidence(self) -> tuple[Evidence, ...]:
        return self.row.evidence if self.row is not None else ()

    def error_text(self) -> str:
        """The raw error in one short line: ``status/close code/code: message``."""
        f = self.facts
        head = [str(x) for x in (f.status, f.close_code) if x is not None]
        if f.code and f.code != str(f.status):
            head.append(f.code)
        message = " ".join((f.message or "").split())
        if len(message) > 160:
            message = message[:157] + "..."
        left = " ".join(head)
        return f"{left}: {message}" if left and message else (left or message or "(no message)")

    def line(self) -> str:
        """One line to print beside the raw error, e.g. in a probe matrix or a support report."""
        kinds = sorted({e.kind for e in self.evidence})
        basis = f" [{'/'.join(kinds)}]" if kinds else ""
        if self.row is None:
            return f"{self.error_text()} -> {self.title}: {self.cause}"
        return f"{self.error_text()} -> {self.title}{basis}. Fix: {self.fix}"

    def to_dict(self) -> dict[str, Any]:
        """A flat, JSON-ready record (one row of :meth:`Diagnoses.to_frame`)."""
        f = self.facts
        return {
            **{k: self.where.get(k) for k in ("source", "seq", "t_ms", "audio_ms")},
            "event": f.event, "status": f.status, "close_code": f.close_code, "code": f.code, "type": f.type,
            "message": f.message, "diagnosis": self.id, "title": self.title, "cause": self.cause, "fix": self.fix,
            "evidence": "; ".join(str(e) for e in self.evidence),
        }

    def __str__(self) -> str:
        return self.line()

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = [("error", self.error_text()), ("diagnosis", f"{self.title} ({self.id})"), ("cause", self.cause),
                ("fix", self.fix)]
        rows += [("evidence", f"{e.kind}: {e.source} ({e.date})" + (f" — {e.note}" if e.note else ""))
                 for e in self.evidence]
        body = "".join(f"<tr><th style='text-align:left;vertical-align:top'>{esc(k)}</th>"
                       f"<td style='text-align:left'>{_linked(v)}</td></tr>" for k, v in rows if v)
        return f"<table><caption style='text-align:left'><b>rtlab diagnosis</b></caption>{body}</table>"


def _linked(text: str) -> str:
    out = html.escape(text)
    return re.sub(r"(https?://[^\s<)&]+)", r"<a href='\1' target='_blank'>\1</a>", out)


class Diagnoses(tuple):
    """Several diagnoses (of a log, or of a list of errors), in order; a tuple of :class:`Diagnosis`."""

    __slots__ = ()

    def to_frame(self) -> pd.DataFrame:
        """One row per error: where, the raw fields, the diagnosis id, cause, fix and evidence."""
        import pandas as pd

        columns = ["source", "seq", "t_ms", "audio_ms", "event", "status", "close_code", "code", "type", "message",
                   "diagnosis", "title", "cause", "fix", "evidence"]
        frame = pd.DataFrame([d.to_dict() for d in self], columns=columns)
        for col in ("seq", "status", "close_code"):
            frame[col] = frame[col].astype("Int64")
        return frame

    def lines(self) -> list[str]:
        return [d.line() for d in self]

    @property
    def unknown(self) -> Diagnoses:
        return Diagnoses(d for d in self if not d.known)

    def __repr__(self) -> str:
        return f"Diagnoses({len(self)} errors: {', '.join(d.id for d in self) or 'none'})"

    def _repr_html_(self) -> str:
        if not self:
            return "<p>rtlab: no errors found.</p>"
        frame = self.to_frame()[["source", "event", "status", "code", "message", "title", "fix", "evidence"]]
        return frame.dropna(axis=1, how="all").to_html(index=False, escape=True)


# ==============================================================================================================
# Entry point
# ==============================================================================================================
def _one(error: Any, *, provider: str | None, where: Mapping[str, Any] | None = None) -> Diagnosis:
    try:
        facts = error_facts(error)
    except Exception as exc:  # an input we cannot read is itself an unknown error, never a crash
        facts = ErrorFacts(event="exception", message=_text(f"could not read the error: {type(exc).__name__}"))
    if facts is None:
        return Diagnosis(ErrorFacts(), None, _raw(error), dict(where or {}), is_error=False)
    row, _ = best_match(facts, provider=provider)
    return Diagnosis(facts, row, _raw(error), dict(where or {}))


def _from_log(log: EventLog, *, provider: str | None) -> Diagnoses:
    # Through the documented frame (seq, t_ms, audio_ms, direction, source, type, event): only the rows that
    # may hold an error are decoded.
    frame = log.to_frame()
    wanted = frame["type"].isin(ERROR_EVENT_TYPES | {"response.done"}) & (frame["direction"] == "server")
    out: list[Diagnosis] = []
    for _, row in frame[wanted].iterrows():
        event = row["event"]
        if not isinstance(event, Mapping):
            continue
        if row["type"] == "response.done" and (event.get("response") or {}).get("status") != "failed":
            continue
        where = {"source": row["source"], "seq": _int(row["seq"]), "t_ms": _num(row["t_ms"]),
                 "audio_ms": _num(row["audio_ms"])}
        out.append(_one(event, provider=provider, where=where))
    return Diagnoses(out)


def _num(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if f != f else round(f, 3)


def _is_log(x: Any) -> bool:
    return hasattr(x, "records") and hasattr(x, "to_frame") and not isinstance(x, Mapping)


@overload
def diagnose(error: EventLog | list | tuple, *, provider: str | None = None) -> Diagnoses: ...
@overload
def diagnose(error: Any, *, provider: str | None = None) -> Diagnosis: ...


def diagnose(error: Any, *, provider: str | None = None) -> Diagnosis | Diagnoses:
    """Diagnose one error, or every error of an event log or list.

    Parameters
    ----------
    error
        An error event, a failure event, an ``rtlab.handshake_failed`` record, an HTTP error body, an exception,
        a string, an :class:`~rtlab.log.EventLog` or a list/tuple of any of these.
    provider : {"openai", "azure"}, optional
        When known, rows that only occur with the other provider are left out.

    Returns
    -------
    Diagnosis or Diagnoses
        A :class:`Diagnosis` for one error (``.id == "unknown"`` when no row recognises it); a
        :class:`Diagnoses` (one per error, in order) for a log or a list. Never raises for odd input.

    Examples
    --------
    >>> diagnose({"type": "rtlab.handshake_failed", "status": 404, "code": "DeploymentNotFound",
    ...           "message": "The API deployment for this resource does not exist."}).id
    'azure_deployment_not_found'
    """
    if _is_log(error):
        return _from_log(error, provider=provider)
    if isinstance(error, list | tuple) and not isinstance(error, Diagnoses):
        return Diagnoses(_one(e, provider=provider) for e in error)
    return _one(error, provider=provider)


def diagnose_all(errors: Iterable[Any], *, provider: str | None = None) -> Diagnoses:
    """:func:`diagnose` for any iterable of errors (always a :class:`Diagnoses`)."""
    return Diagnoses(_one(e, provider=provider) for e in errors)
