"""GPT-Live protocol facts as data, each with its evidence, and the strict checks both sides use (layer: protocol).

GPT-Live (``gpt-live-1``, ``gpt-live-1.1``; OpenAI since 2026-10, Azure Foundry too) is a full-duplex voice API with
its own protocol, separate from the Realtime API: a WebSocket at ``/v1/live/sessions`` (Azure
``/openai/v1/live/sessions``) with no query parameters; the client sends ``session.start`` with a strict
configuration and waits for ``session.started``. The openai SDK (3.57) speaks it with ``client.live.connect()``;
its types (``openai.types.live``) are the ground truth for every shape, and this module reads them rather than
copying them.

What is here:

* :data:`PATHS`, :data:`MODELS`, :data:`PRICES`, :data:`AUDIO_FORMATS`, :data:`SESSION_FIELDS`,
  :data:`CLOSE_REASONS`, :data:`FACTS`: rows, each with an :class:`~rtlab.protocol.evidence.Evidence`;
* :data:`CLIENT_EVENTS` / :data:`SERVER_EVENTS` (read from the SDK's unions) and :data:`NOT_EMULATED`: which
  client events and session features rtlab's emulator answers, and which it refuses by name;
* :func:`api_of` / :func:`check_session_model`: which API a model belongs to (``"live"`` or ``"realtime"``), so a
  Live model never opens a Realtime session and the reverse, before anything is sent;
* :func:`validate_session_config`, :func:`parse_client_event`, :func:`validate_server_event`: the SDK's pydantic
  models made strict (they accept unknown keys; the service refuses them), raising :class:`LiveParamError` with
  the wire's error code and the parameter path.

>>> api_of("gpt-live-1"), api_of("gpt-realtime"), api_of("gpt-live-transcribe"), api_of("my-deployment")
('live', 'realtime', 'realtime', None)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any, Literal, Union, get_args

from openai.types.live.built_in_voice import BuiltInVoice
from openai.types.live.client_event import ClientEvent as _SdkClientEvent
from openai.types.live.server_event import ServerEvent as _SdkServerEvent
from openai.types.live.session_closed_event import SessionClosedEvent
from openai.types.live.session_config import SessionConfig
from openai.types.live.session_update_config import SessionUpdateConfig
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from rtlab.errors import ConfigError

from . import catalogue
from .catalogue import TRANSCRIPTION_MODELS
from .evidence import Evidence

__all__ = [
    "AUDIO_FORMATS",
    "CLIENT_EVENTS",
    "CLOSE_REASONS",
    "DEFAULT_FORMAT",
    "DEFAULT_VOICE",
    "FACTS",
    "LiveAudioFormat",
    "LiveModel",
    "LiveParamError",
    "LivePrice",
    "MODELS",
    "NOT_EMULATED",
    "NotEmulated",
    "PATHS",
    "PRICES",
    "SERVER_EVENTS",
    "SESSION_FIELDS",
    "SessionField",
    "VOICES",
    "api_of",
    "check_session_model",
    "format_key",
    "parse_client_event",
    "unknown_fields",
    "validate_server_event",
    "validate_session_config",
    "validate_session_update",
]

# --------------------------------------------------------------------------------------------------
# Sources (cited by the rows below)
# --------------------------------------------------------------------------------------------------
_SDK = "openai-python 3.57 (openai/types/live/, openai/resources/live/live.py)"
_SDK_DATE = "2026-12"
_OAI_WS = "https://developers.openai.com/api/docs/guides/voice-websockets"
_OAI_CONV = "https://developers.openai.com/api/docs/guides/live-conversations"
_OAI_COST = "https://developers.openai.com/api/docs/guides/voice-latency-cost"
_OAI_M1 = "https://developers.openai.com/api/docs/models/gpt-live-1"
_OAI_M11 = "https://developers.openai.com/api/docs/models/gpt-live-1.1"
_MS_REF = "https://learn.microsoft.com/azure/foundry/openai/gpt-live-reference"
_MS_HOWTO = "https://learn.microsoft.com/azure/foundry/openai/how-to/gpt-live"
_LITELLM = "https://docs.litellm.ai/docs/live_sessions"
_DOCS_DATE = "2026-11"


def _doc(source: str, note: str = "", date: str = _DOCS_DATE) -> Evidence:
    return Evidence("documented", source, date, note)


def _sdk(note: str = "") -> Evidence:
    return Evidence("documented", _SDK, _SDK_DATE, note)


def _assumed(note: str) -> Evidence:
    return Evidence("assumed", "rtlab emulator choice (no source found)", "2026-12", note)


# --------------------------------------------------------------------------------------------------
# Where and which models
# --------------------------------------------------------------------------------------------------
#: WebSocket path of a primary Live connection, per provider (no query parameters; the model goes in
#: ``session.start``).
PATHS: MappingProxyType[str, tuple[str, Evidence]] = MappingProxyType({
    "openai": ("/v1/live/sessions", _doc(_OAI_WS, "wss://api.openai.com/v1/live/sessions, no query parameters, "
                                                  "Authorization: Bearer KEY")),
    "azure": ("/openai/v1/live/sessions", _doc(_MS_REF, "WebSocket clients connect to /openai/v1/live/sessions on "
                                                        "the Foundry resource; a deployment of gpt-live-1")),
})


@dataclass(frozen=True)
class LiveModel:
    """A GPT-Live model and what its page says."""

    name: str
    evidence: Evidence
    note: str = ""


MODELS: MappingProxyType[str, LiveModel] = MappingProxyType({m.name: m for m in [
    LiveModel("gpt-live-1", _doc(_OAI_M1, "endpoint v1/live/sessions supported; v1/realtime not supported"),
              "full-duplex voice model with smooth interruption handling"),
    LiveModel("gpt-live-1.1", _doc(_OAI_M11, "endpoint v1/live/sessions supported; v1/realtime not supported"),
              "transcribes speech more accurately than gpt-live-1 (model page)"),
]})


@dataclass(frozen=True)
class LivePrice:
    """Voice-session price of a Live model: billed per second of session duration (not per audio or token)."""

    model: str
    usd_per_minute_active: float
    usd_per_minute_standby: float | None  # WebRTC sessions while inference is paused; None when not listed
    evidence: Evidence


PRICES: MappingProxyType[str, LivePrice] = MappingProxyType({p.model: p for p in [
    LivePrice("gpt-live-1", 0.05, None, _doc(_OAI_M1, "$0.05 per minute, billed per second, not rounded up to the "
                                                      "minute; backend Responses calls priced separately")),
    LivePrice("gpt-live-1.1", 0.05, 0.02, _doc(_OAI_M11, "active $0.05/min; standby $0.02/min applies to WebRTC "
                                                         "sessions while inference is paused")),
]})


# --------------------------------------------------------------------------------------------------
# Audio formats (chosen in session.start, shared by input and output, immutable)
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LiveAudioFormat:
    """One ``audio.format`` a primary Live WebSocket accepts."""

    type: Literal["audio/pcm", "audio/pcmu", "audio/pcma"]
    rate: int
    bytes_per_sample: int
    evidence: Evidence

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.type, "rate": self.rate}


AUDIO_FORMATS: MappingProxyType[tuple[str, int], LiveAudioFormat] = MappingProxyType({
    (f.type, f.rate): f for f in [
        LiveAudioFormat("audio/pcm", 24000, 2, _sdk("AudioPCM.rate: Literal[16000, 24000]; mono PCM16 LE")),
        LiveAudioFormat("audio/pcm", 16000, 2, _sdk("AudioPCM.rate: Literal[16000, 24000]; mono PCM16 LE")),
        LiveAudioFormat("audio/pcmu", 8000, 1, _sdk("AudioPCMU: G.711 mu-law, 'G.711 audio uses 8000 Hz'")),
        LiveAudioFormat("audio/pcma", 8000, 1, _sdk("AudioPCMA: G.711 A-law, 'G.711 audio uses 8000 Hz'")),
    ]
})
#: The format when ``session.start`` names none: the guides' examples use PCM16 at 24 kHz.
DEFAULT_FORMAT = AUDIO_FORMATS[("audio/pcm", 24000)]
DEFAULT_FORMAT_EVIDENCE = _assumed("default audio.format when omitted: PCM16 24 kHz, as in the WebSocket guide's "
                                   "example (" + _OAI_WS + "); the default itself is not documented")


def format_key(fmt: Mapping[str, Any] | None) -> tuple[str, int]:
    """``(type, rate)`` of a wire ``audio.format`` object (default: PCM16 24 kHz)."""
    if not fmt:
        return DEFAULT_FORMAT.type, DEFAULT_FORMAT.rate
    return str(fmt.get("type")), int(fmt.get("rate") or 0)


VOICES: tuple[str, ...] = get_args(BuiltInVoice)
DEFAULT_VOICE = "marin"  # SDK: "Defaults to `marin` and cannot change after startup."


# --------------------------------------------------------------------------------------------------
# The session configuration
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionField:
    """One field of ``session.start``'s ``session``: when it can be set and what rtlab's emulator does with it."""

    name: str
    when: Literal["startup", "startup+update"]
    default: Any
    emulator: Literal["emulated", "accepted-no-effect", "not-emulated"]
    evidence: Evidence
    note: str = ""


SESSION_FIELDS: MappingProxyType[str, SessionField] = MappingProxyType({f.name: f for f in [
    SessionField("model", "startup", None, "emulated", _sdk("required; not a query parameter")),
    SessionField("instructions", "startup", None, "accepted-no-effect",
                 _sdk("up to 16,384 client tokens; blank uses server defaults; immutable"),
                 "the emulator's replies are canned acknowledgements of the user's words"),
    SessionField("audio.format", "startup", {"type": "audio/pcm", "rate": 24000}, "emulated",
                 _sdk("only primary WebSockets accept it; immutable"), "default: see DEFAULT_FORMAT_EVIDENCE"),
    SessionField("audio.output.voice", "startup", DEFAULT_VOICE, "emulated",
                 _sdk("built-in voice name or {id} of a custom voice; default marin; immutable"),
                 "built-in names map to flite voices; custom voices are refused as not emulated"),
    SessionField("input", "startup", [], "accepted-no-effect",
                 _doc(_OAI_CONV, "text-only history, defaults to []; at most 128 messages"),
                 "validated, echoed, not used by the canned replies"),
    SessionField("delegation", "startup+update", None, "not-emulated",
                 _sdk("client / responses / decisions; null selects the application"),
                 "type client is accepted with an info event (the emulated model never delegates); responses and "
                 "decisions are refused"),
    SessionField("triggers", "startup+update", None, "not-emulated", _sdk("Decisions triggers on transcript events")),
    SessionField("store", "startup", False, "accepted-no-effect", _sdk("store for forking and recording download"),
                 "true is accepted with an info event: forks and recordings are not emulated"),
    SessionField("safety_identifier", "startup", None, "accepted-no-effect", _sdk("stable end-user id")),
    SessionField("client", "startup", None, "not-emulated", _sdk("WebRTC frontend data-channel permissions")),
]})

#: Why a session ended (``session.closed.reason``).
CLOSE_REASONS: tuple[str, ...] = get_args(SessionClosedEvent.model_fields["reason"].annotation)


# --------------------------------------------------------------------------------------------------
# Events (names from the SDK's unions) and what the emulator does with each client event
# --------------------------------------------------------------------------------------------------
def _members(union_alias: Any) -> tuple[type[BaseModel], ...]:
    return tuple(get_args(get_args(union_alias)[0]))


def _type_of(model: type[BaseModel]) -> str:
    return get_args(model.model_fields["type"].annotation)[0]


CLIENT_EVENTS: tuple[str, ...] = tuple(_type_of(m) for m in _members(_SdkClientEvent))
SERVER_EVENTS: tuple[str, ...] = tuple(_type_of(m) for m in _members(_SdkServerEvent))


@dataclass(frozen=True)
class NotEmulated:
    """A GPT-Live feature outside rtlab's emulated (transcription-relevant) subset: refused by name."""

    feature: str
    what: str
    evidence: Evidence


NOT_EMULATED: MappingProxyType[str, NotEmulated] = MappingProxyType({n.feature: n for n in [
    NotEmulated("delegation", "delegating tasks to the application, Responses or Decisions "
                "(session.delegation.created, response.event, decision.event)", _sdk()),
    NotEmulated("decisions", "Decision API items, evaluations and transcript triggers", _sdk()),
    NotEmulated("responses backend", "response.create / response.item.create on a Responses delegation", _sdk()),
    NotEmulated("thinking and commentary", "session.thinking.append / session.commentary.append", _sdk()),
    NotEmulated("audio fixtures", "session.output_audio.fixture.play", _sdk()),
    NotEmulated("custom voices", "audio.output.voice = {id: ...}", _sdk()),
    NotEmulated("WebRTC frontend config", "session.client (data-channel permissions)", _sdk()),
    NotEmulated("forks", "/v1/live/sessions/{id}/fork and POST .../fork", _sdk()),
    NotEmulated("sideband", "/v1/live/sessions/{id}/attach observers and controllers", _sdk()),
    NotEmulated("DTMF and SIP transport", "transport.dtmf.*, transport.ringing/answered/failed", _sdk()),
    NotEmulated("stored sessions", "store=true: recording download and forking", _sdk()),
    NotEmulated("WebRTC", "POST /v1/live/sessions with an SDP offer", _sdk()),
]})

#: What rtlab's emulator does with each client event: ``"emulated"`` or the :data:`NOT_EMULATED` feature name.
CLIENT_EVENT_SUPPORT: MappingProxyType[str, str] = MappingProxyType({
    "session.start": "emulated",
    "session.update": "emulated",  # delegation/triggers changes inside it are refused as not emulated
    "session.input_audio.append": "emulated",
    "session.input_audio.mute": "emulated",
    "session.input_audio.unmute": "emulated",
    "session.instructions.append": "emulated",  # acknowledged; the canned replies ignore instructions
    "session.close": "emulated",
    "session.thinking.append": "thinking and commentary",
    "session.commentary.append": "thinking and commentary",
    "session.output_audio.fixture.play": "audio fixtures",
    "decision.create": "decisions",
    "decision.item.create": "decisions",
    "decision.item.delete": "decisions",
    "response.create": "responses backend",
    "response.item.create": "responses backend",
})


# --------------------------------------------------------------------------------------------------
# Behaviour facts (statements about the real service, and the emulator's assumptions where none is known)
# --------------------------------------------------------------------------------------------------
FACTS: MappingProxyType[str, Evidence] = MappingProxyType({
    "separate API: a Live model on /v1/realtime is refused with invalid_model": Evidence(
        "reported", _LITELLM, "2026-11-20", "LiteLLM docs: 'OpenAI rejects a Live model on /v1/realtime with "
        "invalid_model'; the model pages list v1/realtime as not supported"),
    "gpt-live-transcribe is a Realtime transcription model, not a GPT-Live model": Evidence(
        "reported", _LITELLM, "2026-11-20", "runs on /v1/realtime?intent=transcription"),
    "session.start's configuration is strict: unknown fields are refused": _doc(
        _MS_REF, "'a strict configuration object that rejects unknown fields'"),
    "errors are 'error' events with error.code (e.g. unknown_parameter) and error.param (e.g. session.voice)": _sdk(
        "openai/types/live/error.py docstrings"),
    "connect with no query parameters; session.start first; wait for session.started": _doc(_OAI_WS),
    "input transcript fragments: append-only, in delivery order, no turns, no done event, start_ms/end_ms on the "
    "session timeline (ms from the beginning of the session)": _sdk("input_transcript_delta_event.py"),
    "primary-WebSocket session.output_audio.delta carries no start_ms/end_ms and no event_id": _sdk(
        "output_audio_delta_event.py"),
    "the model can listen and speak at the same time": _doc(_OAI_CONV),
    "voice sessions are billed per second of session duration, silence included; muting does not stop billing": _doc(
        _OAI_COST),
    "session.closed carries the close reason, a final session snapshot (status still 'active') and final usage; a "
    "connection closing without it does not confirm finalization": _sdk("session_closed_event.py"),
    "session.usage.updated usage is cumulative (do not sum across events); context_window omitted when unknown":
        _sdk("session_usage_updated_event.py"),
    "muting input sends silence to the model": _sdk("input_audio_muted_event.py"),
    "emulator: the session timeline is the input audio received (ms), so fragments share the client's audio clock":
        _assumed("the real timeline origin is 'the beginning of the session'; whether it is wall time or media "
                 "time is not documented"),
    "emulator: the assistant answers each user turn when the VAD closes it and keeps speaking when talked over":
        _assumed("the real model decides on its own when to yield ('smooth interruption handling', " + _OAI_M1
                 + "); the protocol has no cancel event"),
    "emulator: session.usage.updated every 5 s of session timeline and once before session.closed": _assumed(
        "cadence not documented"),
    "emulator: usage.seconds = whole seconds of session timeline (floor)": _assumed(
        "'cumulative billable duration in whole seconds' (SDK); rounding not documented"),
    "emulator: sessions expire 60 min after start": _assumed("the Live session duration limit is not documented"),
    "emulator: the server closes the socket (1000) after session.closed": _assumed(
        "implied by 'a connection closing without this event does not confirm finalization'"),
    "emulator: error codes for ordering mistakes (session_not_started, session_already_started) and invalid_model "
    "on the Live path": _assumed("codes not documented"),
    "Azure: the model in session.start is the deployment name": _doc(_MS_HOWTO, "a deployment of gpt-live-1"),
})


# --------------------------------------------------------------------------------------------------
# Which API a model belongs to
# --------------------------------------------------------------------------------------------------
def api_of(model: str | None, *, deployments: Mapping[str, str] | None = None) -> Literal["live", "realtime"] | None:
    """Which API serves ``model``: ``"live"`` (GPT-Live), ``"realtime"`` (the Realtime API, including its
    transcription and translation models), or ``None`` when unknown (e.g. an Azure deployment name).

    ``deployments`` (``{deployment: model}``) resolves an Azure deployment name to its model first. The model
    catalogue (:func:`rtlab.protocol.catalogue.api_of`) is the one source of this answer.
    """
    if not isinstance(model, str) or not model:
        return None
    api = catalogue.api_of((deployments or {}).get(model, model))
    if api is None:
        return None
    return "live" if api == "live" else "realtime"


def check_session_model(model: str | None, api: Literal["live", "realtime"], *,
                        deployments: Mapping[str, str] | None = None) -> None:
    """Raise :class:`~rtlab.errors.ConfigError` when ``model`` belongs to the other API than ``api``.

    Call it before connecting: ``api="live"`` for a GPT-Live session, ``api="realtime"`` for a Realtime voice
    session (``/v1/realtime?model=``). Unknown names (deployments) pass.
    """
    if api not in ("live", "realtime"):
        raise ConfigError(f"api must be 'live' or 'realtime', got {api!r}", field="api")
    found = api_of(model, deployments=deployments)
    if found is None or found == api:
        return
    shown = model if not deployments or model not in deployments else f"{model} (deployment of {deployments[model]})"
    if api == "realtime":
        raise ConfigError(
            f"{shown!r} is a GPT-Live model: the Realtime API refuses it (invalid_model, reported) because GPT-Live "
            "is its own protocol at /v1/live/sessions.", field="model", model=model,
            fix="run it as a GPT-Live session (rtlab.runs.live.LiveLeg, or --voice-model gpt-live-1 which selects "
                "it), or pick a Realtime model such as 'gpt-realtime'")
    kind = "transcription model" if (deployments or {}).get(model, model) in TRANSCRIPTION_MODELS else "Realtime model"
    raise ConfigError(
        f"{shown!r} is a {kind} (Realtime API, /v1/realtime), not a GPT-Live model; a GPT-Live session needs "
        f"{' or '.join(repr(m) for m in MODELS)}.", field="model", model=model,
        fix="use model='gpt-live-1' (on Azure: the name of a gpt-live-1 deployment) for the Live session, or run "
            f"{model!r} as a Realtime session/sidecar")


# --------------------------------------------------------------------------------------------------
# Strict validation with the SDK's models
# --------------------------------------------------------------------------------------------------
class LiveParamError(ConfigError):
    """A Live client payload breaks the SDK's schema or the strict configuration rule.

    ``code`` is the wire error code (``unknown_parameter``, ``missing_required_parameter``, ``invalid_type``,
    ``invalid_value``), ``param`` the dotted path (``session.audio.format.rate``).
    """

    def __init__(self, code: str, message: str, *, param: str | None, fix: str | None = None):
        self.code = code
        self.param = param
        self.wire_message = message
        shown = f"{param}: {message}" if param and f"'{param}'" not in message else message
        super().__init__(shown, field=param, fix=fix)


def _discriminated(union_alias: Any) -> TypeAdapter:
    # The SDK marks unions with its own PropertyInfo; rebuild them as pydantic discriminated unions so a bad event
    # gets the errors of its own model.
    return TypeAdapter(Annotated[Union[_members(union_alias)], Field(discriminator="type")])  # type: ignore[valid-type]  # noqa: UP007


# Built at import: emulator session threads share them.
_CLIENT = _discriminated(_SdkClientEvent)
_SERVER = _discriminated(_SdkServerEvent)
_SESSION = TypeAdapter(SessionConfig)
_UPDATE = TypeAdapter(SessionUpdateConfig)


_TYPE_LOC = re.compile(r"^(str|int|float|bool|none|nullable|literal\[.*|list\[.*|dict\[.*|function-.*|tagged-union.*|"
                       r"union\[.*|[A-Z].*)$")


def _path(prefix: str, loc: tuple[Any, ...]) -> str:
    """A pydantic error location as the wire's dotted parameter path (type-name parts of unions dropped)."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part and not _TYPE_LOC.match(str(part)):
            out = f"{out}.{part}" if out else str(part)
    return out


def _rank(err: Mapping[str, Any]) -> int:
    # The most telling error first: a bad discriminator, a bad literal 'type', a missing field, anything else.
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return 0
    if _is_type_mismatch(err):
        return 1
    return 2 if err["type"] == "missing" else 3


def _is_type_mismatch(err: Mapping[str, Any]) -> bool:
    return err["type"] == "literal_error" and bool(err["loc"]) and err["loc"][-1] in ("type", "role")


def _from_validation(exc: ValidationError, prefix: str, *, tagged: bool = False) -> LiveParamError:
    errs = exc.errors(include_url=False)
    # In a union, the member whose own 'type' matched tells what is wrong; the other members only say "wrong type".
    wrong_members = [tuple(e["loc"][:-1]) for e in errs if _is_type_mismatch(e)]
    inside_match = [e for e in errs if not any(tuple(e["loc"][:len(m)]) == m for m in wrong_members)]
    err = sorted(inside_match or errs, key=_rank)[0]
    loc = tuple(err["loc"])[1:] if tagged else tuple(err["loc"])  # a tagged union's first loc is the tag
    param = _path(prefix, loc)
    kind = err["type"]
    if kind == "missing":
        return LiveParamError("missing_required_parameter", f"Missing required parameter: '{param}'.", param=param)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = err.get("ctx", {}).get("tag", "")
        expected = err.get("ctx", {}).get("expected_tags", "")
        return LiveParamError("invalid_value", f"Invalid value: '{str(tag)[:100]}'. Supported values are: "
                              f"{expected}.", param=f"{param}.type" if param else "type")
    if _is_type_mismatch(err):  # no member matched: list every member's type
        parent = tuple(err["loc"][:-2])
        expected = [str(e.get("ctx", {}).get("expected", "")) for e in errs
                    if _is_type_mismatch(e) and tuple(e["loc"][:-2]) == parent]
        return LiveParamError("invalid_value", f"Invalid value: '{str(err.get('input'))[:100]}'. Supported values "
                              f"are: {', '.join(dict.fromkeys(expected))}.", param=param)
    if kind in ("literal_error", "enum"):
        got = str(err.get("input"))[:100]
        return LiveParamError("invalid_value", f"Invalid value: '{got}'. Supported values are: "
                              f"{err.get('ctx', {}).get('expected', '')}.", param=param)
    return LiveParamError("invalid_type", f"Invalid type for '{param}': {err['msg']}.", param=param)


def unknown_fields(model: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every key a validated SDK model tree accepted only as an *extra* (an unknown field)."""
    found: list[str] = []
    if isinstance(model, BaseModel):
        for key in (model.model_extra or {}):
            found.append(f"{prefix}.{key}" if prefix else str(key))
        for name in type(model).model_fields:
            value = getattr(model, name, None)
            found += unknown_fields(value, f"{prefix}.{name}" if prefix else name)
    elif isinstance(model, list | tuple):
        for i, value in enumerate(model):
            found += unknown_fields(value, f"{prefix}[{i}]")
    return found


def _strict(adapter: TypeAdapter, data: Any, prefix: str, *, tagged: bool = False) -> Any:
    try:
        parsed = adapter.validate_python(data)
    except ValidationError as exc:
        raise _from_validation(exc, prefix, tagged=tagged) from None
    extra = unknown_fields(parsed, prefix)
    if extra:
        raise LiveParamError("unknown_parameter", f"Unknown parameter: '{extra[0]}'.", param=extra[0],
                             fix=f"remove '{extra[0]}'; GPT-Live refuses fields its schema does not define")
    return parsed


def validate_session_config(session: Mapping[str, Any]) -> SessionConfig:
    """The ``session`` object of ``session.start``, validated strictly; raises :class:`LiveParamError`."""
    if not isinstance(session, Mapping):
        raise LiveParamError("invalid_type", f"Invalid type for 'session': expected an object, got "
                             f"{type(session).__name__}.", param="session")
    return _strict(_SESSION, dict(session), "session")


def validate_session_update(session: Mapping[str, Any]) -> SessionUpdateConfig:
    """The ``session`` object of ``session.update`` (only ``delegation`` and ``triggers`` exist there)."""
    if not isinstance(session, Mapping):
        raise LiveParamError("invalid_type", f"Invalid type for 'session': expected an object, got "
                             f"{type(session).__name__}.", param="session")
    return _strict(_UPDATE, dict(session), "session")


def parse_client_event(event: Mapping[str, Any]) -> BaseModel:
    """A Live client event validated strictly against the SDK's ``ClientEvent`` union."""
    etype = event.get("type")
    if etype is None:
        raise LiveParamError("missing_required_parameter", "Missing required parameter: 'type'.", param="type")
    if not isinstance(etype, str):
        raise LiveParamError("invalid_type", f"Invalid type for 'type': expected a string, got "
                             f"{type(etype).__name__}.", param="type")
    if etype not in CLIENT_EVENTS:
        raise LiveParamError("invalid_value", f"Invalid value: '{etype[:100]}'. Supported values are: "
                             + ", ".join(f"'{e}'" for e in CLIENT_EVENTS) + ".", param="type")
    return _strict(_CLIENT, dict(event), "", tagged=True)


def validate_server_event(event: Mapping[str, Any], *, strict: bool = True) -> BaseModel:
    """Validate one server event (a dict as sent on the wire) against the SDK's Live ``ServerEvent`` union.

    Returns the parsed model; raises ``pydantic.ValidationError`` when the event does not match its model, and
    (``strict``) ``ValueError`` when it carries a key its model does not define.
    """
    parsed = _SERVER.validate_python(dict(event))
    extra = unknown_fields(parsed) if strict else []
    if extra:
        raise ValueError(f"{event.get('type')}: keys the SDK model does not define: {extra}")
    return parsed
