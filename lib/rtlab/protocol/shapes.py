"""Payload shapes: dialects, audio formats, and the GA <-> beta session and event payload mapping (layer: protocol).

One table, :data:`SHAPE_MAP`, converts session objects both ways (:func:`session_to_ga`, :func:`session_from_ga`);
the client renders with it and the emulator keeps its state as a GA session and answers beta clients with it.
:func:`beta_payload` reshapes the items and responses inside server events for the beta dialect.
:func:`unknown_fields` lists what a payload carries beyond an SDK model's fields (the SDK's models accept extras
silently; the real service refuses them with ``unknown_parameter``).

Sources: openai SDK 3.57 ``openai.types.realtime`` (GA) and ``openai.types.beta.realtime`` (beta), PROTOCOL.md.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from rtlab.errors import ConfigError

from .events import Shape

__all__ = [
    "AUDIO_FORMATS", "DIALECTS", "G711_RATE", "KINDS", "PCM_RATE", "SHAPE_MAP", "AudioFormat", "FieldMap",
    "audio_format_from_ga", "audio_format_to_ga", "beta_payload", "session_from_ga", "session_to_ga",
    "shape_of", "unknown_fields",
]

KINDS: tuple[str, ...] = ("realtime", "transcription")

#: Dialects a configuration renders into, and the payload shape each one speaks.
DIALECTS: MappingProxyType[str, Shape] = MappingProxyType(
    {
        "openai-ga": "ga",
        "azure-ga": "ga",
        "azure-preview": "beta",
        # OpenAI's beta shape (OpenAI-Beta: realtime=v1): retired by OpenAI in 2026 (see the catalogue); kept so
        # the probe can show the refusal.
        "openai-beta": "beta",
    }
)


def shape_of(dialect: str) -> Shape:
    """The payload shape of a dialect; :class:`ConfigError` for an unknown dialect."""
    try:
        return DIALECTS[dialect]
    except KeyError:
        raise ConfigError(f"unknown dialect {dialect!r}", field="dialect",
                          fix=f"use one of {', '.join(DIALECTS)}") from None


# ==============================================================================================================
# Audio formats
# ==============================================================================================================
PCM_RATE = 24000
G711_RATE = 8000


@dataclass(frozen=True)
class AudioFormat:
    name: Literal["pcm16", "g711_ulaw", "g711_alaw"]
    ga_type: str
    beta_name: str
    sample_rate: int
    bytes_per_sample: int


AUDIO_FORMATS: MappingProxyType[str, AudioFormat] = MappingProxyType(
    {
        "pcm16": AudioFormat("pcm16", "audio/pcm", "pcm16", PCM_RATE, 2),
        "g711_ulaw": AudioFormat("g711_ulaw", "audio/pcmu", "g711_ulaw", G711_RATE, 1),
        "g711_alaw": AudioFormat("g711_alaw", "audio/pcma", "g711_alaw", G711_RATE, 1),
    }
)
_GA_TYPE_TO_FORMAT = {f.ga_type: f for f in AUDIO_FORMATS.values()}


def audio_format_from_ga(obj: Mapping[str, Any]) -> AudioFormat:
    """Look up a GA format object (``{"type": "audio/pcm", "rate": 24000}``); KeyError when unknown."""
    return _GA_TYPE_TO_FORMAT[obj["type"]]


def audio_format_to_ga(name: str) -> dict[str, Any]:
    fmt = AUDIO_FORMATS[name]
    if fmt.name == "pcm16":
        return {"type": fmt.ga_type, "rate": PCM_RATE}
    return {"type": fmt.ga_type}


# ==============================================================================================================
# GA <-> beta session shape: one table, used both ways
# ==============================================================================================================
def _format_to_beta(obj: Any) -> Any:
    # Renaming only, no judging: an unknown format keeps its name so the receiver can say what is wrong with it.
    if isinstance(obj, Mapping):
        try:
            return audio_format_from_ga(obj).beta_name
        except KeyError:
            return obj.get("type", copy.deepcopy(dict(obj)))
    return copy.deepcopy(obj)


def _format_to_ga(name: Any) -> Any:
    if isinstance(name, str):
        return audio_format_to_ga(name) if name in AUDIO_FORMATS else {"type": name}
    return copy.deepcopy(name)


def _modalities_to_beta(value: Any) -> Any:
    # GA ["audio"] means audio plus its transcript, which beta spells ["text", "audio"].
    if isinstance(value, list) and "audio" in value:
        return ["text", "audio"]
    return value


def _modalities_to_ga(value: Any) -> Any:
    if isinstance(value, list) and "audio" in value:
        return ["audio"]
    return value


def _same(value: Any) -> Any:
    return copy.deepcopy(value)


@dataclass(frozen=True)
class FieldMap:
    """One session field in both shapes: its GA path, its beta key and the value conversion each way."""

    ga_path: tuple[str, ...]
    beta_key: str
    to_beta: Callable[[Any], Any] = _same
    to_ga: Callable[[Any], Any] = _same
    kinds: tuple[str, ...] = KINDS  # session kinds that carry the field


#: The GA <-> beta field-name mapping. Fields not listed have the same name and place in both shapes.
SHAPE_MAP: tuple[FieldMap, ...] = (
    FieldMap(("audio", "input", "format"), "input_audio_format", _format_to_beta, _format_to_ga),
    FieldMap(("audio", "input", "transcription"), "input_audio_transcription"),
    FieldMap(("audio", "input", "turn_detection"), "turn_detection"),
    FieldMap(("audio", "input", "noise_reduction"), "input_audio_noise_reduction"),
    FieldMap(("audio", "output", "format"), "output_audio_format", _format_to_beta, _format_to_ga, ("realtime",)),
    FieldMap(("audio", "output", "voice"), "voice", kinds=("realtime",)),
    FieldMap(("audio", "output", "speed"), "speed", kinds=("realtime",)),
    FieldMap(("output_modalities",), "modalities", _modalities_to_beta, _modalities_to_ga, ("realtime",)),
    FieldMap(("max_output_tokens",), "max_response_output_tokens", kinds=("realtime",)),
)
_GA_TOP_MAPPED = {m.ga_path[0] for m in SHAPE_MAP}  # "audio", "output_modalities", "max_output_tokens"
_BETA_MAPPED = {m.beta_key: m for m in SHAPE_MAP}
#: Objects that name a session kind in the beta shape (which has no session.type).
_BETA_OBJECT_KIND = {"realtime.session": "realtime", "realtime.transcription_session": "transcription"}


def _check_shape(shape: str) -> None:
    if shape not in ("ga", "beta"):
        raise ConfigError(f"unknown session shape {shape!r}", fix="use 'ga' or 'beta'")


def session_to_ga(session: Mapping[str, Any], shape: Shape, *, kind: str | None = None) -> dict[str, Any]:
    """A session object of either shape as a GA session object (a new dict; the input is not changed).

    Parameters
    ----------
    session
        The ``session`` of a client or server event.
    shape
        ``"ga"`` (returned as a copy, with ``type`` filled from ``kind`` when missing) or ``"beta"``.
    kind
        ``"realtime"`` or ``"transcription"``. The beta shape does not say which; when ``kind`` is None it is read
        from ``type`` or ``object`` (``realtime.transcription_session``), else ``"realtime"``.

    Fields the map does not name (``model``, ``instructions``, ``include``, ``tools``, ``id`` …) are carried over
    unchanged; a ``null`` stays ``null``, an absent field stays absent. Values are renamed, never judged: an
    unknown format name ``"x"`` becomes ``{"type": "x"}`` (and back), for the receiver to refuse.
    """
    _check_shape(shape)
    if shape == "ga":
        out = copy.deepcopy(dict(session))
        if kind is not None and "type" not in out:
            out = {"type": kind, **out}
        return out
    kind = kind or session.get("type") or _BETA_OBJECT_KIND.get(str(session.get("object")), "realtime")
    out: dict[str, Any] = {"type": kind}
    for key, value in session.items():
        if key == "type":
            continue
        mapping = _BETA_MAPPED.get(key)
        if mapping is None:
            out[key] = copy.deepcopy(value)
            continue
        if kind not in mapping.kinds:
            continue  # e.g. beta transcription sessions echo `modalities`; GA transcription sessions have none
        node = out
        for part in mapping.ga_path[:-1]:
            node = node.setdefault(part, {})
        node[mapping.ga_path[-1]] = mapping.to_ga(value)
    return out


def session_from_ga(ga_session: Mapping[str, Any], shape: Shape) -> dict[str, Any]:
    """A GA session object in ``shape`` (a new dict). Inverse of :func:`session_to_ga`.

    For ``"beta"``, ``type`` is dropped (beta sessions carry no type: the event name says it) and nested ``audio``
    fields become the flat ``input_audio_*`` fields; audio fields the map does not name are dropped.
    """
    _check_shape(shape)
    if shape == "ga":
        return copy.deepcopy(dict(ga_session))
    kind = ga_session.get("type", "realtime")
    out: dict[str, Any] = {}
    for key, value in ga_session.items():
        if key == "type":
            continue
        if key not in _GA_TOP_MAPPED:
            out[key] = copy.deepcopy(value)
            continue
        for mapping in SHAPE_MAP:
            if mapping.ga_path[0] != key or kind not in mapping.kinds:
                continue
            node: Any = ga_session
            for part in mapping.ga_path:
                if not isinstance(node, Mapping) or part not in node:
                    break
                node = node[part]
            else:
                out[mapping.beta_key] = mapping.to_beta(node)
    return out


# ==============================================================================================================
# Items and responses inside server events, for the beta dialect
# ==============================================================================================================
_BETA_CONTENT = {"output_audio": "audio", "output_text": "text"}


def _beta_item(item: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(item)
    out["content"] = [{**c, "type": _BETA_CONTENT.get(c.get("type"), c.get("type"))}
                      for c in item.get("content", [])]
    return out


def _beta_response(resp: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in resp.items() if k not in ("output_modalities", "audio")}
    out["modalities"] = _modalities_to_beta(resp.get("output_modalities"))
    audio_out = (resp.get("audio") or {}).get("output") or {}
    if isinstance(audio_out.get("format"), Mapping):
        fmt = _format_to_beta(audio_out["format"])
        out["output_audio_format"] = fmt if isinstance(fmt, str) else "pcm16"
    out["voice"] = audio_out.get("voice")
    out["output"] = [_beta_item(i) for i in resp.get("output") or []]
    return out


def beta_payload(event: dict[str, Any]) -> dict[str, Any]:
    """Reshape the ``item`` / ``response`` objects of a GA server event for the beta dialect (in place)."""
    if isinstance(event.get("item"), Mapping):
        event["item"] = _beta_item(event["item"])
    if isinstance(event.get("response"), Mapping):
        event["response"] = _beta_response(event["response"])
    return event


# ==============================================================================================================
# Fields an SDK model does not define
# ==============================================================================================================
def unknown_fields(model: Any, path: str = "") -> list[str]:
    """Dotted paths of fields a validated pydantic model accepted only as extras (unknown to the SDK's types)."""
    from pydantic import BaseModel

    found: list[str] = []
    if isinstance(model, BaseModel):
        for key in model.model_extra or {}:
            found.append(f"{path}{key}")
        for name in type(model).model_fields:
            found.extend(unknown_fields(getattr(model, name), f"{path}{name}."))
    elif isinstance(model, (list, tuple)):
        for i, item in enumerate(model):
            found.extend(unknown_fields(item, f"{path}{i}."))
    return found
