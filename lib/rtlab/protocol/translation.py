"""Realtime translation sessions (``gpt-realtime-translate``) as data, each fact with its evidence
(layer: protocol).

A translation session is not a Realtime session: its own WebSocket path, three client events, no conversation,
no ``response.create``. The emulator's translation endpoint and the client-side translation leg both read this
module; nothing else keeps a copy of these names.

=========================  ==========================================================================
:data:`ENDPOINTS`          where each provider serves translation sessions (path, query, auth)
:data:`CLIENT_EVENTS`      the three client events; :data:`SERVER_EVENTS` the server events
:data:`UPDATABLE_FIELDS`   what ``session.update`` may change; :func:`check_session_update` the rule
:data:`OUTPUT_LANGUAGES`   the 13 documented target languages (ISO 639-1 code → name)
:data:`ELAPSED_MS_STEP`    the 200 ms grid of ``elapsed_ms``; :data:`FRAME_MS` the input frame
:data:`FACTS`              every row above plus defaults, limits, price and availability, with evidence
=========================  ==========================================================================

Sources: the openai SDK 3.57 (``openai/types/realtime/realtime_translation_*.py``,
``openai/resources/realtime/translations/translations.py``, ``openai/lib/realtime_translation.py``), OpenAI's
realtime translation guide and cookbook, the Azure model catalog and a Microsoft Q&A report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from .evidence import Evidence

__all__ = [
    "CLIENT_EVENTS",
    "ELAPSED_MS_STEP",
    "ENDPOINTS",
    "EXPIRES_AFTER_S",
    "FACTS",
    "FRAME_MS",
    "Fact",
    "MODEL",
    "OUTPUT_LANGUAGES",
    "PRICE_USD_PER_MINUTE",
    "Problem",
    "SAMPLE_RATE",
    "SERVER_EVENTS",
    "TRANSCRIPTION_MODEL",
    "TranslationEndpoint",
    "UPDATABLE_FIELDS",
    "check_session_update",
    "merge_session_update",
]

_SDK = "openai-python 3.57"
_SDK_TYPES = f"{_SDK}: openai/types/realtime/realtime_translation_*.py"
_SDK_RESOURCE = f"{_SDK}: openai/resources/realtime/translations/translations.py"
_GUIDE = "https://developers.openai.com/api/docs/guides/realtime-translation"
_COOKBOOK = (
    "https://developers.openai.com/cookbook/examples/voice_solutions/realtime_translation_guide "
    "(openai/openai-cookbook examples/voice_solutions/realtime_translation_guide.mdx)"
)
_MODEL_PAGE = "https://developers.openai.com/api/docs/models/gpt-realtime-translate"
_READ = "2026-12"


def _doc(source: str, date: str = _READ, note: str = "") -> Evidence:
    return Evidence("documented", source, date, note)


def _assumed(note: str) -> Evidence:
    return Evidence("assumed", "rtlab emulator choice", _READ, note)


@dataclass(frozen=True)
class Fact:
    """One statement about the real translation service: a key, its value, and how rtlab knows it."""

    key: str
    value: object
    evidence: Evidence


@dataclass(frozen=True)
class TranslationEndpoint:
    """Where a provider serves translation sessions over WebSocket."""

    provider: Literal["openai", "azure"]
    path: str  # e.g. "/v1/realtime/translations"
    query: str  # the required query, e.g. "model=MODEL"
    auth: str  # the handshake header
    evidence: Evidence


#: The model name of OpenAI's translation sessions.
MODEL = "gpt-realtime-translate"
#: The transcription model the guide configures for source-language transcripts.
TRANSCRIPTION_MODEL = "gpt-realtime-whisper"
#: Input audio: PCM16 mono little-endian at this rate, nothing else, over WebSocket.
SAMPLE_RATE = 24000
#: The engine consumes input in frames of this length (shorter appends wait, longer ones are split).
FRAME_MS = 200
#: ``elapsed_ms`` of delta events advances in steps of this size (several deltas may share one value).
ELAPSED_MS_STEP = 200
#: Audio-duration price on OpenAI (USD per minute of audio).
PRICE_USD_PER_MINUTE = 0.034
#: How long a session lasts in the emulator (an assumption: the Realtime session cap).
EXPIRES_AFTER_S = 3600

ENDPOINTS: MappingProxyType[str, TranslationEndpoint] = MappingProxyType(
    {
        "openai": TranslationEndpoint(
            "openai",
            "/v1/realtime/translations",
            "model=MODEL",
            "Authorization: Bearer KEY",
            _doc(f"{_SDK_RESOURCE} (_prepare_url appends /realtime/translations; model query); {_GUIDE}"),
        ),
        "azure": TranslationEndpoint(
            "azure",
            "/openai/v1/realtime/translations",
            "model=DEPLOYMENT",
            "Authorization: Bearer KEY or api-key: KEY",
            _assumed(
                "no Microsoft document names a translation path; this is what the openai SDK opens with an "
                "AsyncOpenAI client on the GA v1 base URL (B/openai/v1), with the deployment name as model"
            ),
        ),
    }
)

CLIENT_EVENTS: tuple[str, ...] = ("session.update", "session.input_audio_buffer.append", "session.close")
SERVER_EVENTS: tuple[str, ...] = (
    "session.created",
    "session.updated",
    "session.closed",
    "session.input_transcript.delta",
    "session.output_transcript.delta",
    "session.output_audio.delta",
    "error",
)

#: Fields a ``session.update`` may carry, as dotted paths below ``session``; anything else is refused.
UPDATABLE_FIELDS: tuple[str, ...] = (
    "audio.output.language",
    "audio.input.transcription",  # null, or {"model": str}
    "audio.input.noise_reduction",  # null, or {"type": "near_field" | "far_field", "strength": number}
)
NOISE_REDUCTION_TYPES: tuple[str, ...] = ("near_field", "far_field")

#: The 13 documented output languages. The guide names them; the codes are ISO 639-1 (the guide's own demo
#: sends ``"es"``), rtlab's mapping of the names.
OUTPUT_LANGUAGES: MappingProxyType[str, str] = MappingProxyType(
    {
        "es": "Spanish",
        "pt": "Portuguese",
        "fr": "French",
        "ja": "Japanese",
        "ru": "Russian",
        "zh": "Chinese",
        "de": "German",
        "ko": "Korean",
        "hi": "Hindi",
        "id": "Indonesian",
        "vi": "Vietnamese",
        "it": "Italian",
        "en": "English",
    }
)

_FACT_ROWS: tuple[Fact, ...] = (
    Fact("model", MODEL, _doc(_MODEL_PAGE, "2026-05", "endpoint v1/realtime/translations only")),
    Fact("endpoint.openai", ENDPOINTS["openai"].path, ENDPOINTS["openai"].evidence),
    Fact("endpoint.azure", ENDPOINTS["azure"].path, ENDPOINTS["azure"].evidence),
    Fact("client_events", CLIENT_EVENTS, _doc(f"{_SDK}: realtime_translation_client_event.py")),
    Fact("server_events", SERVER_EVENTS, _doc(f"{_SDK}: realtime_translation_server_event.py")),
    Fact(
        "no_response_create", True, _doc(_GUIDE, "2026-05", "translation starts from the audio stream itself")
    ),
    Fact(
        "session_update.fields",
        UPDATABLE_FIELDS,
        _doc(
            f"{_SDK}: realtime_translation_session_update_event.py docstring",
            note="type and model are set at creation and cannot be updated",
        ),
    ),
    Fact(
        "session_update.unknown_field_error",
        "unknown_parameter",
        Evidence(
            "reported",
            "livekit/agents issue 3210; OpenAI community threads (Realtime sessions)",
            "2026-06",
            "seen on Realtime sessions; rtlab assumes translation sessions refuse unknown keys the same way",
        ),
    ),
    Fact(
        "input.format",
        "PCM16 mono little-endian, 24 kHz, base64",
        _doc(f"{_SDK}: realtime_translation_input_audio_buffer_append_event.py"),
    ),
    Fact(
        "input.frame_ms",
        FRAME_MS,
        _doc(
            f"{_SDK}: realtime_translation_input_audio_buffer_append_event.py",
            note="shorter appends are buffered to a frame, longer ones split; keep appending silence",
        ),
    ),
    Fact(
        "elapsed_ms.step",
        ELAPSED_MS_STEP,
        _doc(
            f"{_SDK}: realtime_translation_input_transcript_delta_event.py",
            note="alignment metadata; several deltas may share one value",
        ),
    ),
    Fact(
        "input_transcript.requires",
        "audio.input.transcription",
        _doc(f"{_SDK}: realtime_translation_input_transcript_delta_event.py"),
    ),
    Fact(
        "deltas.append_only",
        True,
        _doc(_SDK_TYPES, note="clients should not insert unconditional spaces between deltas"),
    ),
    Fact("output_audio.chunk_ms", 200, _doc(_COOKBOOK, "2026-05", "translated audio in 200 ms PCM16 chunks")),
    Fact("output_audio.format", "pcm16, 24 kHz", _doc(_COOKBOOK, "2026-05")),
    Fact("transcription_model", TRANSCRIPTION_MODEL, _doc(_COOKBOOK, "2026-05")),
    Fact(
        "output_languages",
        tuple(OUTPUT_LANGUAGES),
        _doc(_COOKBOOK, "2026-05", "names documented; ISO 639-1 codes are rtlab's"),
    ),
    Fact("input_languages", "over 70, detected automatically", _doc(_COOKBOOK, "2026-05")),
    Fact("same_language_speech", "may stay untranslated (silence)", _doc(_COOKBOOK, "2026-05")),
    Fact(
        "no_prompt_no_voice",
        True,
        _doc(_COOKBOOK, "2026-05", "no custom prompts, glossaries or voice selection"),
    ),
    Fact(
        "price.usd_per_minute", PRICE_USD_PER_MINUTE, _doc(_MODEL_PAGE, "2026-05", "billed by audio duration")
    ),
    Fact(
        "session.close",
        "server flushes pending input, emits remaining output, then session.closed",
        _doc(f"{_SDK}: realtime_translation_session_close_event.py"),
    ),
    Fact(
        "sdk.azure_client_refused",
        "Realtime Translation is not available through this provider.",
        _doc(
            f"{_SDK}: openai/lib/realtime_translation.py _check_connection",
            note="the TranslationSession helper refuses AzureOpenAI clients; client.realtime.translations."
            "connect on a plain client does not check",
        ),
    ),
    Fact(
        "azure.catalog",
        "gpt-realtime-translate 2026-05-07; Canada Central, France Central, India South",
        _doc("https://ai.azure.com/catalog/models/gpt-realtime-translate", "2026-05"),
    ),
    Fact(
        "azure.inference",
        "OperationNotSupported on every path tried (GlobalStandard deployment, East US 2 and Sweden Central)",
        Evidence("reported", "Microsoft Q&A questions/5912093", "2026-06-05"),
    ),
    # The emulator's own choices where no source says.
    Fact(
        "default.output_language", None, _assumed("session.created shows no output language until one is set")
    ),
    Fact(
        "default.transcription", None, _assumed("no source transcript until audio.input.transcription is set")
    ),
    Fact(
        "expires_after_s",
        EXPIRES_AFTER_S,
        _assumed("the 60-minute Realtime session cap, applied to translation sessions"),
    ),
    Fact(
        "close_after_session_closed",
        1000,
        _assumed("the server closes the socket (code 1000) after session.closed"),
    ),
    Fact(
        "unsupported_language_error",
        "invalid_value",
        _assumed("an output language outside the 13 is refused"),
    ),
)
FACTS: MappingProxyType[str, Fact] = MappingProxyType({f.key: f for f in _FACT_ROWS})


# --------------------------------------------------------------------------------------------------
# The session.update rule, shared by the emulator (error event) and client-side checks.
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """Why a client event is refused, in the service's error vocabulary."""

    code: str | None
    message: str
    param: str | None = None
    type: str = "invalid_request_error"


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _type_problem(path: str, expected: str, value: object) -> Problem:
    return Problem(
        "invalid_type",
        f"Invalid type for '{path}': expected {expected}, but got {_kind(value)} instead.",
        param=path,
    )


def _unknown(path: str) -> Problem:
    return Problem("unknown_parameter", f"Unknown parameter: '{path}'.", param=path)


def _object(
    value: object, path: str, allowed: tuple[str, ...], *, nullable: bool = False
) -> tuple[Problem | None, Mapping[str, object] | None]:
    if value is None and nullable:
        return None, None
    if not isinstance(value, Mapping):
        return _type_problem(path, "an object", value), None
    for key in value:
        if key not in allowed:
            return _unknown(f"{path}.{key}"), None
    return None, value


def check_session_update(
    session: object, *, languages: Mapping[str, str] = OUTPUT_LANGUAGES
) -> Problem | None:
    """The first reason the ``session`` object of a translation ``session.update`` is refused, else None.

    Unknown keys anywhere give ``unknown_parameter`` naming the dotted path (``session.audio.output.voice``);
    a wrong JSON type ``invalid_type``; a missing required key ``missing_required_parameter``; an enum or
    language outside the allowed values ``invalid_value``.
    """
    problem, s = _object(session, "session", ("audio",))
    if problem or s is None or "audio" not in s:
        return problem
    problem, audio = _object(s["audio"], "session.audio", ("input", "output"))
    if problem or audio is None:
        return problem
    if "output" in audio:
        problem, output = _object(audio["output"], "session.audio.output", ("language",))
        if problem:
            return problem
        if output is not None and "language" in output:
            lang = output["language"]
            if not isinstance(lang, str):
                return _type_problem("session.audio.output.language", "a string", lang)
            if lang not in languages:
                listed = ", ".join(f"'{c}'" for c in sorted(languages))
                return Problem(
                    "invalid_value",
                    f"Invalid value: '{lang[:40]}'. Supported values are: {listed}.",
                    param="session.audio.output.language",
                )
    if "input" in audio:
        problem, inp = _object(audio["input"], "session.audio.input", ("transcription", "noise_reduction"))
        if problem or inp is None:
            return problem
        if "transcription" in inp:
            path = "session.audio.input.transcription"
            problem, tr = _object(inp["transcription"], path, ("model",), nullable=True)
            if problem:
                return problem
            if tr is not None:
                if "model" not in tr:
                    return Problem(
                        "missing_required_parameter",
                        f"Missing required parameter: '{path}.model'.",
                        param=f"{path}.model",
                    )
                if not isinstance(tr["model"], str) or not tr["model"]:
                    return _type_problem(f"{path}.model", "a string", tr["model"])
        if "noise_reduction" in inp:
            path = "session.audio.input.noise_reduction"
            problem, nr = _object(inp["noise_reduction"], path, ("type", "strength"), nullable=True)
            if problem:
                return problem
            if nr is not None:
                if "type" not in nr:
                    return Problem(
                        "missing_required_parameter",
                        f"Missing required parameter: '{path}.type'.",
                        param=f"{path}.type",
                    )
                if nr["type"] not in NOISE_REDUCTION_TYPES:
                    return Problem(
                        "invalid_value",
                        f"Invalid value: '{str(nr['type'])[:40]}'. Supported values are: "
                        "'near_field' and 'far_field'.",
                        param=f"{path}.type",
                    )
                strength = nr.get("strength")
                if "strength" in nr and (isinstance(strength, bool) or not isinstance(strength, int | float)):
                    return _type_problem(f"{path}.strength", "a number", strength)
    return None


def merge_session_update(current: Mapping[str, object], session: Mapping[str, object]) -> dict:
    """``current`` (a session object's ``audio`` part and the rest) with a checked update applied.

    Only the updatable fields change; an omitted ``noise_reduction.strength`` keeps its value (documented), a
    newly enabled one starts at 1.0.
    """
    merged: dict = {
        **current,
        "audio": {
            "input": dict(_get(current, "audio", "input") or {}),
            "output": dict(_get(current, "audio", "output") or {}),
        },
    }
    audio = session.get("audio") or {}
    out = audio.get("output") or {}  # type: ignore[union-attr]
    if "language" in out:
        merged["audio"]["output"]["language"] = out["language"]
    inp = audio.get("input") or {}  # type: ignore[union-attr]
    if "transcription" in inp:
        tr = inp["transcription"]
        merged["audio"]["input"]["transcription"] = None if tr is None else {"model": tr["model"]}
    if "noise_reduction" in inp:
        nr = inp["noise_reduction"]
        if nr is None:
            merged["audio"]["input"]["noise_reduction"] = None
        else:
            old = merged["audio"]["input"].get("noise_reduction") or {}
            strength = nr.get("strength", old.get("strength", 1.0))
            merged["audio"]["input"]["noise_reduction"] = {"type": nr["type"], "strength": float(strength)}
    return merged


def _get(obj: Mapping[str, object], *keys: str) -> object:
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)  # type: ignore[assignment]
    return obj
