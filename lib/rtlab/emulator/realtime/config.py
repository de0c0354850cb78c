"""Session state: the session object a Realtime session starts with, and how ``session.update`` changes it.

Layer: emulator. The session object is kept in the GA shape. An update is judged in this order, and the first
problem is answered with one ``error`` event (nothing of a refused update is applied, nothing is echoed as applied):

1. keys the SDK's session type does not define (in the dialect the client spoke) → ``unknown_parameter`` naming the
   key, as the real service answers (reported: livekit/agents issue 3210; OpenAI community);
2. values of the wrong type (the SDK's pydantic models) → ``invalid_value`` naming the param;
3. the rules table (:mod:`rtlab.protocol.rules`) and the provider profile's outcome for the transcription model;
4. settings the emulator cannot honour (:data:`UNSUPPORTED`) → ``emulator_unsupported``: a refusal the real service
   never sends, so nobody mistakes it for the service's behaviour (implemented settings are not listed there);
5. a voice change after the session has answered with audio (documented: session reference, ``voice``; the error
   text and code ``cannot_update_voice`` are reported in public client code).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from openai.types.beta.realtime.session_update_event import Session as BetaRealtimeSession
from openai.types.beta.realtime.transcription_session_update import Session as BetaTranscriptionSession
from openai.types.realtime.realtime_session_create_request import RealtimeSessionCreateRequest
from openai.types.realtime.realtime_transcription_session_create_request import (
    RealtimeTranscriptionSessionCreateRequest,
)
from pydantic import TypeAdapter, ValidationError

from rtlab import protocol as P
from rtlab.protocol import rules as R
from rtlab.protocol.rules import value_at
from rtlab.protocol.shapes import unknown_fields

from ..profiles import Profile
from .base import SAMPLE_RATE, ProtocolError

__all__ = ["DEFAULT_INSTRUCTIONS", "UNSUPPORTED", "Unsupported", "apply_update", "default_session", "merge"]

DEFAULT_INSTRUCTIONS = (
    "You are rtlab's local emulator. Acknowledge what the user said in one short sentence, repeating its key words."
)
#: Session fields the service sets and a client cannot: dropped from an update (a client may echo them back).
READ_ONLY = ("id", "object", "expires_at", "client_secret")

# Keys of a session object that a session.update replaces as a whole (all others merge key by key).
_REPLACE_KEYS = frozenset(
    {"turn_detection", "transcription", "format", "noise_reduction", "tracing", "prompt", "tools", "include",
     "output_modalities", "tool_choice", "voice", "reasoning", "truncation"}
)

# Built at import: session threads share them.
_ADAPTERS: dict[tuple[str, str], TypeAdapter] = {
    ("ga", "realtime"): TypeAdapter(RealtimeSessionCreateRequest),
    ("ga", "transcription"): TypeAdapter(RealtimeTranscriptionSessionCreateRequest),
    ("beta", "realtime"): TypeAdapter(BetaRealtimeSession),
    ("beta", "transcription"): TypeAdapter(BetaTranscriptionSession),
}


@dataclass(frozen=True)
class Unsupported:
    """A setting the emulator cannot honour: refused with ``emulator_unsupported`` when ``present`` holds."""

    param: str  # GA path without "session."
    present: Callable[[Any], bool]
    why: str


#: What the emulator refuses rather than echo and ignore. noise_reduction: no local method is implemented
#: (the audio reaches the local VAD and recognizer as sent); tools, stored prompts, tracing: nothing local runs them.
UNSUPPORTED: tuple[Unsupported, ...] = (
    Unsupported("audio.input.noise_reduction", lambda v: v is not None,
                "the emulator applies no noise reduction; send noise_reduction: null (or leave it out), or use a "
                "real service"),
    Unsupported("tools", lambda v: bool(v), "the emulator calls no tools; send tools: [] or use a real service"),
    Unsupported("prompt", lambda v: v is not None, "the emulator has no stored prompts; leave prompt out"),
    Unsupported("tracing", lambda v: v is not None, "the emulator keeps no traces; leave tracing out"),
)


def default_session(kind: str, model: str | None, session_id: str, *, profile: Profile, expires_at: int) -> dict:
    """The GA session object the service starts with (``session.created``)."""
    audio_in = {
        "format": P.audio_format_to_ga("pcm16"),
        "transcription": None,
        "noise_reduction": None,
        "turn_detection": default_turn_detection(kind, profile),
    }
    if kind == "transcription":
        return {"type": "transcription", "object": "realtime.transcription_session", "id": session_id,
                "expires_at": expires_at, "audio": {"input": audio_in}, "include": None}
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "expires_at": expires_at,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "prompt": None,
        "truncation": profile.behaviour_value("truncation", "auto"),
        "include": None,
        "audio": {"input": audio_in,
                  "output": {"format": P.audio_format_to_ga("pcm16"), "voice": "alloy", "speed": 1.0}},
    }


def default_turn_detection(kind: str, profile: Profile) -> dict:
    """server_vad with the service's defaults; the silence duration is the profile's (its evidence says why)."""
    defaults = {**P.SERVER_VAD_DEFAULTS,
                "silence_duration_ms": int(profile.behaviour_value("silence_duration_ms",
                                                                   P.SERVER_VAD_DEFAULTS["silence_duration_ms"]))}
    td: dict[str, Any] = {"type": "server_vad", **defaults, "idle_timeout_ms": None}
    if kind == "realtime":
        td.update(create_response=True, interrupt_response=True)
    return td


def merge(base: dict, patch: dict) -> dict:
    """``patch`` merged into ``base`` key by key (objects in :data:`_REPLACE_KEYS` are replaced whole)."""
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in _REPLACE_KEYS:
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _fill_defaults(session: dict, kind: str, profile: Profile) -> dict:
    """Fill what the service fills in an applied configuration."""
    audio = session.setdefault("audio", {})
    if not isinstance(audio, dict):
        return session
    inp = audio.get("input")
    if isinstance(inp, dict):
        td = inp.get("turn_detection")
        if isinstance(td, dict) and td.get("type") == "server_vad":
            defaults = default_turn_detection(kind, profile)
            inp["turn_detection"] = {**defaults, **{k: v for k, v in td.items()
                                                    if v is not None or k == "idle_timeout_ms"}}
        elif isinstance(td, dict) and td.get("type") == "semantic_vad":
            filled = {"type": "semantic_vad", "eagerness": "auto"}
            if kind == "realtime":
                filled.update(create_response=True, interrupt_response=True)
            inp["turn_detection"] = {**filled, **{k: v for k, v in td.items() if v is not None}}
        fmt = inp.get("format")
        if isinstance(fmt, dict) and fmt.get("type") == "audio/pcm" and "rate" not in fmt:
            inp["format"] = {**fmt, "rate": SAMPLE_RATE}
    return session


def _param_of(err: Mapping[str, Any]) -> str:
    loc = [str(p) for p in err.get("loc", ()) if not str(p).startswith(("function-", "tagged-union"))]
    # pydantic puts union member names in loc (e.g. "ServerVad", "str"); keep the field path only.
    path = [p for p in loc if not p[:1].isupper() and p not in ("str", "int", "float", "literal", "list", "dict")
            and not p.startswith("literal[")]
    return "session." + ".".join(path) if path else "session"


def _check_types(session: dict, kind: str) -> None:
    """Type-check a merged GA session against the SDK model; the first problem becomes a ProtocolError."""
    try:
        _ADAPTERS[("ga", kind)].validate_python(session)
    except ValidationError as exc:
        err = exc.errors()[0]
        param = _param_of(err)
        value = err.get("input")
        shown = (json.dumps(value)[:80] if isinstance(value, (str, int, float, bool, type(None)))
                 else type(value).__name__)
        raise ProtocolError("invalid_value", f"Invalid value for '{param}': {shown}. {err.get('msg', '')}.",
                            param=param) from None


_MODELS = {("ga", "realtime"): RealtimeSessionCreateRequest, ("ga", "transcription"):
           RealtimeTranscriptionSessionCreateRequest, ("beta", "realtime"): BetaRealtimeSession,
           ("beta", "transcription"): BetaTranscriptionSession}


def _models_in(annotation: Any) -> list[type]:
    """The pydantic model classes an annotation allows (through Optional, Union, List)."""
    from typing import get_args

    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type] = []
    for arg in get_args(annotation):
        found += _models_in(arg)
    return found


def _unknown_keys(raw: Any, model: type, path: str = "") -> list[str]:
    """Keys of ``raw`` that ``model`` (an SDK pydantic class) does not define, without validating values."""
    if not isinstance(raw, dict):
        return []
    fields = model.model_fields
    names = {f.alias or n: f for n, f in fields.items()}
    found: list[str] = []
    for key, value in raw.items():
        field = names.get(key)
        if field is None:
            found.append(f"{path}{key}")
            continue
        members = _models_in(field.annotation)
        if not members:
            continue
        if isinstance(value, list):
            for i, item in enumerate(value):
                found += _unknown_keys(item, _pick(members, item), f"{path}{key}.{i}.")
        else:
            found += _unknown_keys(value, _pick(members, value), f"{path}{key}.")
    return found


def _pick(members: list[type], value: Any) -> type:
    """The union member whose ``type`` literal matches the value's ``type`` (else the first)."""
    from typing import get_args

    if isinstance(value, dict) and "type" in value:
        for m in members:
            field = m.model_fields.get("type")
            if field is not None and value["type"] in get_args(field.annotation):
                return m
    return members[0]


def check_unknown(raw: dict, *, kind: str, shape: str) -> None:
    """Refuse keys the SDK's session type of this dialect does not define (``unknown_parameter``)."""
    body = {k: v for k, v in raw.items() if k not in READ_ONLY}
    if shape == "ga":
        body.setdefault("type", kind)
    try:
        extra = unknown_fields(_ADAPTERS[(shape, kind)].validate_python(body))
    except ValidationError:  # a wrongly typed value somewhere: walk the raw keys against the model's fields
        extra = _unknown_keys(body, _MODELS[(shape, kind)])
    if extra:
        param = "session." + extra[0].rstrip(".")
        raise ProtocolError("unknown_parameter", f"Unknown parameter: '{param}'.", param=param)


def apply_update(current: dict, patch: dict, *, kind: str, shape: str, profile: Profile, model_name: str | None,
                 surface: str, audio_sent: bool) -> dict:
    """The session object after a GA ``patch`` (already converted from the client's dialect), or ProtocolError."""
    patch = {k: v for k, v in patch.items() if k not in READ_ONLY}
    if kind == "realtime" and "model" in patch and patch["model"] != current.get("model"):
        patch.pop("model")  # the session model is fixed at connect time
    merged = _fill_defaults(merge(current, patch), kind, profile)
    _check_types(merged, kind)
    ctx = R.RuleInput.build(kind, merged, shape=shape, provider=profile.provider,  # type: ignore[arg-type]
                            deployments=profile.deployments, session_model=model_name)
    for rule in R.check(ctx, where=("session.update",)):
        raise ProtocolError(rule.server.code, R.server_message(rule, ctx), param=rule.server.param,
                            type=rule.server.type)
    tr = value_at(merged, "audio.input.transcription")
    name = tr.get("model") if isinstance(tr, dict) else None
    if name:
        outcome = profile.transcription_outcome(surface, name)
        if outcome.outcome == "error_event":
            raise ProtocolError(outcome.code, outcome.message or f"Transcription model {name!r} is not supported.",
                                param=outcome.param or "session.audio.input.transcription.model",
                                type=outcome.type or "invalid_request_error")
    for row in UNSUPPORTED:
        if row.present(value_at(merged, row.param)) and row.present(value_at(patch, row.param)):
            raise ProtocolError("emulator_unsupported", f"The rtlab emulator cannot honour 'session.{row.param}': "
                                f"{row.why}.", param=f"session.{row.param}")
    old_voice = value_at(current, "audio.output.voice")
    new_voice = value_at(merged, "audio.output.voice")
    if kind == "realtime" and audio_sent and new_voice != old_voice:
        # Reported text and code (public client code and captures of the OpenAI service, e.g. a test report
        # quoting code cannot_update_voice, param null); the session reference documents the rule.
        raise ProtocolError("cannot_update_voice", "Cannot update a conversation's voice if assistant audio is "
                            "present.", param=None)
    return merged
