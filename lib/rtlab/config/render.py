"""Render a :class:`~rtlab.config.model.SessionConfig` into a dialect's client event, parse server events back, and
validate payloads against the openai SDK's own types (layer: config).

    SessionConfig ──render(config, dialect)──► {"type": "session.update", "session": {...}}   (sent)
    SessionConfig ◄──parse(event)──────────── session.created / session.updated / transcription_session.*

The GA <-> beta mapping is :mod:`rtlab.protocol.shapes`; the rules checked before sending are
:mod:`rtlab.config.checks` over :mod:`rtlab.protocol.rules`.

>>> cfg = SessionConfig.realtime(model="gpt-realtime-2.1", transcription="gpt-realtime-whisper")
>>> render(cfg, "azure-preview")["session"]["input_audio_transcription"]
{'model': 'gpt-realtime-whisper'}
>>> parse(render(cfg, "openai-ga")) == cfg
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rtlab.errors import ConfigError
from rtlab.protocol.events import TRANSCRIPTION_SESSION_EVENTS, Shape
from rtlab.protocol.shapes import (
    KINDS,
    PCM_RATE,
    audio_format_from_ga,
    audio_format_to_ga,
    session_from_ga,
    session_to_ga,
    shape_of,
    unknown_fields,
)

from .model import DEFAULT_DIALECT, UNSET, SessionConfig, Transcription, TurnDetection

__all__ = ["parse", "render", "render_session", "to_ga_session", "validate_with_sdk"]


def to_ga_session(config: SessionConfig) -> dict[str, Any]:
    """The GA session object of ``config`` (model names as written, before any dialect shaping)."""
    session: dict[str, Any] = {"type": config.kind}
    if config.kind == "realtime":
        if config.model is not None:
            session["model"] = config.model
        if config.instructions is not None:
            session["instructions"] = config.instructions
        if config.output_modalities is not None:
            session["output_modalities"] = list(config.output_modalities)
    audio_in: dict[str, Any] = {}
    if config.input_format is not None:
        audio_in["format"] = _format_object(config.input_format, config.pcm_rate)
    if config.transcription is not UNSET:
        audio_in["transcription"] = None if config.transcription is None else config.transcription.to_dict()
    if config.turn_detection is not UNSET:
        audio_in["turn_detection"] = None if config.turn_detection is None else config.turn_detection.to_dict()
    if config.noise_reduction is not UNSET:
        audio_in["noise_reduction"] = None if config.noise_reduction is None else {"type": config.noise_reduction}
    audio_out: dict[str, Any] = {}
    if config.output_format is not None:
        audio_out["format"] = _format_object(config.output_format, config.pcm_rate)
    if config.voice is not None:
        audio_out["voice"] = config.voice
    audio = {k: v for k, v in (("input", audio_in), ("output", audio_out)) if v}
    if audio:
        session["audio"] = audio
    if config.include is not None:
        session["include"] = list(config.include)
    return session


def _format_object(name: str, pcm_rate: int) -> dict[str, Any]:
    obj = audio_format_to_ga(name)
    if "rate" in obj:
        obj["rate"] = pcm_rate
    return obj


def render_session(config: SessionConfig, dialect: str = DEFAULT_DIALECT, *,
                   deployments: Mapping[str, str] | None = None, validate: bool = True) -> dict[str, Any]:
    """Just the ``session`` object of :func:`render`."""
    shape = shape_of(dialect)
    if validate:
        from .checks import validate as check_rules

        check_rules(config, dialect, deployments=deployments)
    return session_from_ga(to_ga_session(config), shape)


def render(config: SessionConfig, dialect: str = DEFAULT_DIALECT, *,
           deployments: Mapping[str, str] | None = None, validate: bool = True) -> dict[str, Any]:
    """The whole client event that configures a session in ``dialect``.

    Parameters
    ----------
    config
        The logical configuration.
    dialect
        One of :data:`rtlab.protocol.DIALECTS`.
    deployments
        Azure only: ``{deployment_name: model}`` of the resource's transcription deployments, so the rules can
        check the deployment exists and apply the mapped model's capabilities.
    validate
        Run :data:`RULES` first (default). ``False`` renders what the rules would refuse (the probe does, to see
        what an endpoint answers).

    Returns
    -------
    dict
        GA: ``{"type": "session.update", "session": {"type": ..., ...}}``; beta realtime: ``session.update`` with
        flat fields; beta transcription: ``{"type": "transcription_session.update", "session": {...}}``.

    Raises
    ------
    RuleViolation
        The first rule the config breaks in this dialect.
    """
    session = render_session(config, dialect, deployments=deployments, validate=validate)
    shape = shape_of(dialect)
    if config.kind == "transcription":
        event_type = TRANSCRIPTION_SESSION_EVENTS[shape]["update"]
    else:
        event_type = "session.update"
    return {"type": event_type, "session": session}


_SESSION_EVENT_SUFFIXES = (".created", ".updated", ".update")


def _as_plain(obj: Any) -> dict[str, Any]:
    if isinstance(obj, Mapping):
        return dict(obj)
    to_dict = getattr(obj, "to_dict", None)  # openai SDK models (recv() builds them unvalidated)
    if callable(to_dict):
        return to_dict()
    model_dump = getattr(obj, "model_dump", None)
    if callable(model_dump):
        return model_dump(exclude_unset=True)
    raise ConfigError(f"parse needs a dict or an SDK event, got {type(obj).__name__}")


def _detect_shape(session: Mapping[str, Any]) -> Shape:
    # GA sessions always carry type realtime|transcription; beta sessions never do.
    return "ga" if session.get("type") in KINDS else "beta"


def parse(event_or_session: Any, dialect: str | None = None) -> SessionConfig:
    """Read a session configuration back from a server (or client) event or a bare session object.

    Parameters
    ----------
    event_or_session
        ``session.created``/``session.updated``/``session.update`` or ``transcription_session.*`` (a dict or an
        SDK event object), or just its ``session``.
    dialect
        The dialect it was sent in; ``None`` detects the shape (GA sessions carry ``type``).

    Returns
    -------
    SessionConfig
        Fields the session does not mention are :data:`UNSET`; unknown fields are ignored. No rule is checked:
        this reads what a server applied, whatever it is.
    """
    data = _as_plain(event_or_session)
    kind: str | None = None
    shape: Shape | None = None
    session: Mapping[str, Any] = data
    if isinstance(data.get("session"), Mapping) and isinstance(data.get("type"), str):
        etype = data["type"]
        if not (etype.startswith(("session.", "transcription_session.")) and etype.endswith(_SESSION_EVENT_SUFFIXES)):
            raise ConfigError(f"parse reads session events, got {etype!r}",
                              fix="pass a session.created, session.updated or transcription_session.* event")
        session = data["session"]
        if etype.startswith("transcription_session."):
            kind, shape = "transcription", "beta"
    if dialect is not None:
        shape = shape_of(dialect)
    shape = shape or _detect_shape(session)
    ga = session_to_ga(session, shape, kind=kind) if shape == "beta" else dict(session)
    return _from_ga_session(ga, kind)


def _from_ga_session(ga: Mapping[str, Any], kind: str | None = None) -> SessionConfig:
    kind = ga.get("type") or kind or "realtime"
    if kind not in KINDS:
        raise ConfigError(f"session.type {kind!r} is not one of {', '.join(KINDS)}", field="type")
    audio = ga.get("audio") or {}
    audio_in = audio.get("input") or {}
    audio_out = audio.get("output") or {}
    kw: dict[str, Any] = {"kind": kind}
    rates = []
    for key, where in (("input_format", audio_in), ("output_format", audio_out)):
        if key == "output_format" and kind != "realtime":
            continue
        obj = where.get("format")
        if obj is not None:
            try:
                fmt = audio_format_from_ga(obj)
            except (KeyError, TypeError):
                raise ConfigError(f"{key}: unknown audio format {obj!r}", field=key) from None
            kw[key] = fmt.name
            if fmt.name == "pcm16" and obj.get("rate") is not None:
                rates.append(obj["rate"])
    odd = [r for r in rates if r != PCM_RATE]
    if rates:
        kw["pcm_rate"] = odd[0] if odd else PCM_RATE
    if "transcription" in audio_in:
        tx = audio_in["transcription"]
        kw["transcription"] = None if tx is None else Transcription.from_dict(tx)
    if "turn_detection" in audio_in:
        td = audio_in["turn_detection"]
        kw["turn_detection"] = None if td is None else TurnDetection.from_dict(td)
    if "noise_reduction" in audio_in:
        nr = audio_in["noise_reduction"]
        kw["noise_reduction"] = None if nr is None else nr.get("type")
    if ga.get("include") is not None:
        kw["include"] = ga["include"]
    if kind == "realtime":
        for key in ("model", "instructions"):
            if ga.get(key) is not None:
                kw[key] = ga[key]
        if audio_out.get("voice") is not None:
            kw["voice"] = audio_out["voice"]
        if ga.get("output_modalities") is not None:
            kw["output_modalities"] = ga["output_modalities"]
    return SessionConfig(**kw)


# ==============================================================================================================
# Validation against the SDK's own types
# ==============================================================================================================
def _sdk_event_type(event_type: str, shape: Shape) -> type:
    if shape == "ga":
        from openai.types.realtime import SessionUpdateEvent

        return SessionUpdateEvent
    if event_type == "transcription_session.update":
        from openai.types.beta.realtime import TranscriptionSessionUpdate

        return TranscriptionSessionUpdate
    from openai.types.beta.realtime import SessionUpdateEvent as BetaSessionUpdateEvent

    return BetaSessionUpdateEvent


def validate_with_sdk(event: Mapping[str, Any], dialect: str = DEFAULT_DIALECT) -> Any:
    """Validate a rendered client event against the openai SDK's pydantic model for it.

    GA: ``openai.types.realtime.SessionUpdateEvent`` (its session is a ``RealtimeSessionCreateRequest`` or
    ``RealtimeTranscriptionSessionCreateRequest``). Beta: ``openai.types.beta.realtime.SessionUpdateEvent`` or
    ``TranscriptionSessionUpdate``. Unknown fields fail too (the SDK's models would silently keep them as extras).

    Returns the validated model; raises :class:`ConfigError` listing what the SDK refused.
    """
    from pydantic import ValidationError

    shape = shape_of(dialect)
    model_type = _sdk_event_type(str(event.get("type")), shape)
    try:
        model = model_type.model_validate(event)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise ConfigError(f"{dialect} payload does not validate against {model_type.__module__}."
                          f"{model_type.__name__}: {problems}") from None
    extras = unknown_fields(model)
    if extras:
        raise ConfigError(f"{dialect} payload has fields the SDK's {model_type.__name__} does not define: "
                          f"{', '.join(extras)}")
    return model

