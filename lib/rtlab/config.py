"""One logical session configuration, rendered into each Realtime dialect and parsed back.

A :class:`SessionConfig` says what a notebook wants from a session (kind, voice model, transcription model and
options, turn detection, noise reduction, audio formats, voice, instructions, include, output modalities). This
module turns it into the exact client event a dialect expects and reads the server's answer back, so a notebook can
put *what you asked for* beside *what the server applied*:

    SessionConfig ──render(config, dialect)──► {"type": "session.update", "session": {...}}   (sent)
    SessionConfig ◄──parse(event)──────────── session.created / session.updated / transcription_session.*
    diff(requested, applied) ──► [Change(path, requested, applied, kind)]

Dialects come from :data:`rtlab.protocol.DIALECTS`: ``openai-ga`` and ``azure-ga`` speak the GA shape (nested
``audio.input``/``audio.output``, ``session.type``), ``azure-preview`` and ``openai-beta`` the beta shape (flat
``input_audio_*`` fields, ``"pcm16"`` names, ``transcription_session.update``). The shape conversion is one table
(:data:`SHAPE_MAP`) used both ways by :func:`session_to_ga` and :func:`session_from_ga`; the emulator keeps its state
as a GA session object and uses the same two functions.

Per-model and per-provider rules live in one table, :data:`RULES`; :func:`validate` runs them before anything is
sent and raises :class:`RuleViolation` (a :class:`~rtlab.errors.ConfigError`) naming the field, the model and the fix.
Model capabilities come from :data:`rtlab.protocol.TRANSCRIPTION_MODELS`, never from names repeated here.

"Not set" and "null" differ where the protocol cares: ``turn_detection``, ``transcription`` and ``noise_reduction``
default to :data:`UNSET` (omitted from the payload: the server keeps its setting) while ``None`` sends ``null``
(``turn_detection=None`` turns VAD off: the client commits).

Examples
--------
>>> cfg = SessionConfig.realtime(model="gpt-realtime", transcription="gpt-realtime-whisper")
>>> render(cfg, "azure-preview")["session"]["input_audio_transcription"]
{'model': 'gpt-realtime-whisper'}
>>> parse(render(cfg, "openai-ga")) == cfg
True
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import functools
import html
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .errors import ConfigError
from .protocol import (
    AUDIO_FORMATS,
    DIALECTS,
    LOGPROBS_INCLUDE,
    NOT_SESSION_MODELS,
    PCM_RATE,
    SERVER_VAD_DEFAULTS,
    TRANSCRIPTION_MODELS,
    TRANSCRIPTION_SESSION_EVENTS,
    Shape,
    TranscriptionModel,
    audio_format_from_ga,
    audio_format_to_ga,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "DEFAULT_DIALECT",
    "RULES",
    "SHAPE_MAP",
    "UNSET",
    "GA_ONLY_FIELDS",
    "Change",
    "FieldMap",
    "RenderedSession",
    "Rule",
    "RuleContext",
    "RuleViolation",
    "SessionConfig",
    "Transcription",
    "TurnDetection",
    "diff",
    "diff_frame",
    "parse",
    "render",
    "render_session",
    "session_from_ga",
    "session_to_ga",
    "validate",
    "validate_with_sdk",
    "violations",
]

Kind = Literal["realtime", "transcription"]
DEFAULT_DIALECT = "openai-ga"

KINDS: tuple[str, ...] = ("realtime", "transcription")
DELAYS: tuple[str, ...] = ("minimal", "low", "medium", "high", "xhigh")
EAGERNESS: tuple[str, ...] = ("low", "medium", "high", "auto")
TURN_DETECTION_TYPES: tuple[str, ...] = ("server_vad", "semantic_vad")
NOISE_REDUCTION_TYPES: tuple[str, ...] = ("near_field", "far_field")
OUTPUT_MODALITIES: tuple[tuple[str, ...], ...] = (("audio",), ("text",))
INCLUDES: tuple[str, ...] = (LOGPROBS_INCLUDE,)


class _Unset(enum.Enum):
    """Marker for "not set": the field is left out of the payload and the server keeps its value."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET = _Unset.UNSET


# ==============================================================================================================
# Logical configuration
# ==============================================================================================================
def _str_tuple(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise ConfigError(f"{where}: expected a list of strings, got the string {value!r}",
                          field=where, fix=f"pass a list, e.g. {where.rsplit('.', 1)[-1]}=[{value!r}]")
    items = tuple(value)
    bad = [v for v in items if not isinstance(v, str)]
    if bad:
        raise ConfigError(f"{where}: every entry must be a string, got {bad[0]!r}", field=where)
    return items


def _check_type(value: Any, types: type | tuple[type, ...], where: str, expected: str) -> None:
    if value is not None and (not isinstance(value, types) or (isinstance(value, bool) and bool not in
                                                               (types if isinstance(types, tuple) else (types,)))):
        raise ConfigError(f"{where}: expected {expected}, got {value!r}", field=where)


def _check_choice(value: Any, choices: Iterable[Any], where: str) -> None:
    choices = tuple(choices)
    if value is not None and value not in choices:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, choices))}", field=where,
                          fix=f"use one of {', '.join(map(str, choices))}")


@dataclass(frozen=True)
class Transcription:
    """Input audio transcription: which model and the options it takes.

    Parameters
    ----------
    model
        Transcription model (on Azure: the deployment name of a transcription deployment).
    language
        ISO-639-1 code of the input audio (``"en"``).
    languages
        Possible languages (``gpt-transcribe`` / ``gpt-live-transcribe`` only).
    prompt
        Free-text prompt (keywords for ``whisper-1``); not accepted by every model.
    keywords
        Words or phrases to guide transcription (``gpt-transcribe`` / ``gpt-live-transcribe`` only).
    delay
        ``minimal`` … ``xhigh``: how long the model waits before emitting text (``gpt-realtime-whisper`` only).
    """

    model: str | None = None
    language: str | None = None
    languages: tuple[str, ...] | None = None
    prompt: str | None = None
    keywords: tuple[str, ...] | None = None
    delay: str | None = None

    def __post_init__(self) -> None:
        for name in ("model", "language", "prompt"):
            _check_type(getattr(self, name), str, f"transcription.{name}", "a string")
        object.__setattr__(self, "languages", _str_tuple(self.languages, "transcription.languages"))
        object.__setattr__(self, "keywords", _str_tuple(self.keywords, "transcription.keywords"))
        _check_choice(self.delay, DELAYS, "transcription.delay")

    def to_dict(self) -> dict[str, Any]:
        """The wire object (same in both shapes): set fields only, lists as lists."""
        return {f.name: list(v) if isinstance(v, tuple) else v
                for f in dataclasses.fields(self) if (v := getattr(self, f.name)) is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Transcription:
        """Read a wire object; unknown keys and nulls are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names and v is not None})

    def __repr__(self) -> str:
        parts = [f"{k}={v!r}" for k, v in self.to_dict().items()]
        return f"Transcription({', '.join(parts)})"


_SERVER_VAD_ONLY = ("threshold", "prefix_padding_ms", "silence_duration_ms", "idle_timeout_ms")
_SEMANTIC_VAD_ONLY = ("eagerness",)


@dataclass(frozen=True)
class TurnDetection:
    """Server turn detection (VAD). ``SessionConfig(turn_detection=None)`` turns it off instead.

    Parameters
    ----------
    type
        ``server_vad`` (energy/threshold based) or ``semantic_vad`` (a model decides when the turn ends).
    threshold, prefix_padding_ms, silence_duration_ms, idle_timeout_ms
        ``server_vad`` only. Service defaults: 0.5, 300 ms, 500 ms (see :meth:`server_vad`).
    eagerness
        ``semantic_vad`` only: ``low`` (waits up to ≈8 s), ``medium`` (≈4 s), ``high`` (≈2 s) or ``auto``.
    create_response, interrupt_response
        Whether a turn end starts a response, and whether speech cancels a running response.
    """

    type: str = "server_vad"
    threshold: float | None = None
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None
    eagerness: str | None = None
    create_response: bool | None = None
    interrupt_response: bool | None = None
    idle_timeout_ms: int | None = None

    def __post_init__(self) -> None:
        if self.type not in TURN_DETECTION_TYPES:
            _check_choice(self.type, TURN_DETECTION_TYPES, "turn_detection.type")
        _check_type(self.threshold, (int, float), "turn_detection.threshold", "a number between 0 and 1")
        if self.threshold is not None:
            if not 0.0 <= float(self.threshold) <= 1.0:
                raise ConfigError(f"turn_detection.threshold: {self.threshold!r} is outside 0.0 … 1.0",
                                  field="turn_detection.threshold", fix="use a value between 0.0 and 1.0")
            object.__setattr__(self, "threshold", float(self.threshold))
        for name in ("prefix_padding_ms", "silence_duration_ms", "idle_timeout_ms"):
            value = getattr(self, name)
            _check_type(value, int, f"turn_detection.{name}", "a whole number of milliseconds")
            if value is not None and value < 0:
                raise ConfigError(f"turn_detection.{name}: {value!r} is negative", field=f"turn_detection.{name}")
        _check_choice(self.eagerness, EAGERNESS, "turn_detection.eagerness")
        for name in ("create_response", "interrupt_response"):
            _check_type(getattr(self, name), bool, f"turn_detection.{name}", "True or False")
        wrong = _SEMANTIC_VAD_ONLY if self.type == "server_vad" else _SERVER_VAD_ONLY
        for name in wrong:
            if getattr(self, name) is not None:
                other = "semantic_vad" if self.type == "server_vad" else "server_vad"
                raise ConfigError(f"turn_detection.{name} applies to {other} only, not {self.type}",
                                  field=f"turn_detection.{name}",
                                  fix=f"drop {name} or use TurnDetection(type={other!r})")

    @classmethod
    def server_vad(cls, **kw: Any) -> TurnDetection:
        """``server_vad`` with the service defaults written out (threshold 0.5, 300 ms padding, 500 ms silence)."""
        return cls(type="server_vad", **{**SERVER_VAD_DEFAULTS, **kw})

    @classmethod
    def semantic_vad(cls, eagerness: str = "auto", **kw: Any) -> TurnDetection:
        """``semantic_vad`` with the given eagerness."""
        return cls(type="semantic_vad", eagerness=eagerness, **kw)

    def to_dict(self) -> dict[str, Any]:
        """The wire object (same in both shapes): ``type`` first, then set fields."""
        return {f.name: v for f in dataclasses.fields(self) if (v := getattr(self, f.name)) is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TurnDetection:
        """Read a wire object; unknown keys and nulls are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names and v is not None})

    def __repr__(self) -> str:
        parts = [f"{k}={v!r}" for k, v in self.to_dict().items()]
        return f"TurnDetection({', '.join(parts)})"


_TRANSCRIPTION_KW = ("language", "languages", "prompt", "keywords", "delay")
#: Fields a transcription session does not have (GA RealtimeTranscriptionSessionCreateRequest).
_REALTIME_ONLY = ("model", "voice", "instructions", "output_format", "output_modalities")


class _ConstructorOrField:
    """``SessionConfig.transcription(...)`` builds a transcription session; ``config.transcription`` is the field.

    A non-data descriptor: on the class it returns the constructor; an instance's own value (set by the dataclass
    ``__init__``) shadows it.
    """

    def __init__(self, func: Callable[..., SessionConfig]) -> None:
        self._func = func
        functools.update_wrapper(self, func)  # type: ignore[arg-type]

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        if obj is None:
            return functools.partial(self._func, objtype)
        return obj.__dict__["transcription"]


@dataclass(frozen=True, repr=False)
class SessionConfig:
    """What a session should be, independent of dialect.

    Parameters
    ----------
    kind
        ``"realtime"`` (voice-to-voice, optionally with in-session transcription) or ``"transcription"``.
    model
        Voice model of a realtime session (on Azure: its deployment name); ``None`` for transcription sessions.
    transcription
        A :class:`Transcription`, a model name (shorthand), ``None`` (send null: transcription off) or
        :data:`UNSET` (leave out).
    turn_detection
        A :class:`TurnDetection`, ``"server_vad"``/``"semantic_vad"`` (shorthand), ``None`` (send null: VAD off,
        the client commits) or :data:`UNSET`.
    noise_reduction
        ``"near_field"``, ``"far_field"``, ``None`` (send null: off) or :data:`UNSET`.
    input_format, output_format
        ``"pcm16"``, ``"g711_ulaw"`` or ``"g711_alaw"``; ``None`` leaves them out.
    pcm_rate
        Sample rate of ``pcm16`` audio; the service accepts only 24000.
    voice, instructions, output_modalities
        Realtime sessions only. ``output_modalities`` is ``("audio",)`` or ``("text",)``.
    include
        Extra server outputs, e.g. ``("item.input_audio_transcription.logprobs",)``.
    """

    kind: Kind = "realtime"
    model: str | None = None
    transcription: Transcription | None | _Unset = field(default=UNSET)
    turn_detection: TurnDetection | None | _Unset = UNSET
    noise_reduction: str | None | _Unset = UNSET
    input_format: str | None = None
    output_format: str | None = None
    pcm_rate: int = PCM_RATE
    voice: str | None = None
    instructions: str | None = None
    include: tuple[str, ...] | None = None
    output_modalities: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            _check_choice(self.kind, KINDS, "kind")
        # Shorthands: a model name for transcription, a type name for turn detection, dicts for both.
        tx = self.transcription
        if isinstance(tx, str):
            tx = Transcription(model=tx)
        elif isinstance(tx, Mapping):
            tx = Transcription(**tx)
        if not (tx is None or tx is UNSET or isinstance(tx, Transcription)):
            raise ConfigError(f"transcription: expected a Transcription, a model name, None or UNSET, got {tx!r}",
                              field="transcription")
        object.__setattr__(self, "transcription", tx)
        td = self.turn_detection
        if isinstance(td, str):
            td = TurnDetection.server_vad() if td == "server_vad" else TurnDetection(type=td)
        elif isinstance(td, Mapping):
            td = TurnDetection(**td)
        if not (td is None or td is UNSET or isinstance(td, TurnDetection)):
            raise ConfigError(f"turn_detection: expected a TurnDetection, 'server_vad', 'semantic_vad', None or "
                              f"UNSET, got {td!r}", field="turn_detection")
        object.__setattr__(self, "turn_detection", td)
        if self.noise_reduction is not UNSET:
            _check_choice(self.noise_reduction, NOISE_REDUCTION_TYPES, "noise_reduction")
        _check_choice(self.input_format, AUDIO_FORMATS, "input_format")
        _check_choice(self.output_format, AUDIO_FORMATS, "output_format")
        if not isinstance(self.pcm_rate, int) or isinstance(self.pcm_rate, bool) or self.pcm_rate <= 0:
            raise ConfigError(f"pcm_rate: expected a positive whole number of Hz, got {self.pcm_rate!r}",
                              field="pcm_rate", fix=f"use {PCM_RATE}")
        for name in ("model", "voice", "instructions"):
            _check_type(getattr(self, name), str, name, "a string")
        include = _str_tuple(self.include, "include")
        for value in include or ():
            _check_choice(value, INCLUDES, "include")
        object.__setattr__(self, "include", include)
        modalities = _str_tuple(self.output_modalities, "output_modalities")
        if modalities is not None and modalities not in OUTPUT_MODALITIES:
            raise ConfigError(f"output_modalities: {list(modalities)!r} is not ['audio'] or ['text'] (the service "
                              "answers with audio plus its transcript, or with text only)",
                              field="output_modalities", fix="use ['audio'] or ['text']")
        object.__setattr__(self, "output_modalities", modalities)
        if self.kind == "transcription":
            for name in _REALTIME_ONLY:
                if getattr(self, name) is not None:
                    raise ConfigError(
                        f"{name}={getattr(self, name)!r}: a transcription session has no {name} (it only "
                        "transcribes input audio)", field=name, model=self.model,
                        fix=f"drop {name}, or use kind='realtime' for a voice session")

    # -- convenience constructors -----------------------------------------------------------------------------
    @classmethod
    def realtime(cls, model: str = "gpt-realtime",
                 transcription: str | Transcription | None | _Unset = "gpt-realtime-whisper",
                 **kw: Any) -> SessionConfig:
        """A voice session with in-session transcription and server VAD at the service defaults.

        Transcription options (``language``, ``languages``, ``prompt``, ``keywords``, ``delay``) may be given as
        keywords; every other keyword is a :class:`SessionConfig` field.

        >>> SessionConfig.realtime(delay="low").transcription
        Transcription(model='gpt-realtime-whisper', delay='low')
        """
        tx_kw = {k: kw.pop(k) for k in _TRANSCRIPTION_KW if k in kw}
        if isinstance(transcription, str):
            transcription = Transcription(model=transcription, **tx_kw)
        elif tx_kw:
            if not isinstance(transcription, Transcription):
                raise ConfigError(f"{', '.join(tx_kw)} given but transcription={transcription!r}",
                                  field="transcription", fix="name a transcription model")
            transcription = dataclasses.replace(transcription, **tx_kw)
        kw.setdefault("turn_detection", TurnDetection.server_vad())
        kw.setdefault("input_format", "pcm16")
        kw.setdefault("output_format", "pcm16")
        return cls(kind="realtime", model=model, transcription=transcription, **kw)

    # -- views --------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The logical fields as plain data; unset fields are left out, nulls kept as ``None``."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is UNSET or (value is None and f.name not in _NULLABLE):
                continue
            if isinstance(value, (Transcription, TurnDetection)):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    def __repr__(self) -> str:
        parts = [self.kind]
        for name, value in self.to_dict().items():
            if name == "kind" or (name == "pcm_rate" and value == PCM_RATE):
                continue
            if name == "transcription" and value is not None and set(value) == {"model"}:
                value = value["model"]
            elif name == "turn_detection" and value is not None:
                value = value["type"]
            elif name == "instructions" and len(value) > 30:
                value = value[:27] + "..."
            parts.append(f"{name}={value!r}")
        return f"SessionConfig({', '.join(parts)})"

    def show(self, dialect: str = DEFAULT_DIALECT, *, deployments: Mapping[str, str] | None = None
             ) -> RenderedSession:
        """The exact event :func:`render` sends in ``dialect``, as an object that displays in a notebook."""
        return RenderedSession(self, dialect, deployments=deployments)

    def _repr_html_(self) -> str:
        return RenderedSession(self, DEFAULT_DIALECT)._repr_html_()


_NULLABLE = frozenset({"transcription", "turn_detection", "noise_reduction"})


def _transcription_session(cls: type[SessionConfig], model: str = "gpt-4o-transcribe", **kw: Any) -> SessionConfig:
    """A transcription session (no voice output) for ``model``.

    Turn detection defaults to server VAD at the service defaults, or to ``None`` (the client commits) for
    models that take no VAD in a transcription session (``gpt-realtime-whisper``). Transcription options
    (``language``, ``languages``, ``prompt``, ``keywords``, ``delay``) may be given as keywords.

    >>> SessionConfig.transcription(model="gpt-realtime-whisper").turn_detection is None
    True
    """
    tx_kw = {k: kw.pop(k) for k in _TRANSCRIPTION_KW if k in kw}
    capability = TRANSCRIPTION_MODELS.get(model)
    vad_ok = capability is None or capability.vad_in_transcription_session
    kw.setdefault("turn_detection", TurnDetection.server_vad() if vad_ok else None)
    kw.setdefault("input_format", "pcm16")
    return cls(kind="transcription", transcription=Transcription(model=model, **tx_kw), **kw)



# The dataclass decorator left the field default (UNSET) under this name; put the constructor there instead.
# Instances are unaffected: their own `transcription` value shadows this non-data descriptor.
SessionConfig.transcription = _ConstructorOrField(_transcription_session)  # type: ignore[assignment]


class RenderedSession:
    """A config rendered in one dialect, for display: a table of the logical fields and the JSON to be sent."""

    def __init__(self, config: SessionConfig, dialect: str = DEFAULT_DIALECT, *,
                 deployments: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.dialect = dialect
        self.error: ConfigError | None = None
        self.payload: dict[str, Any] | None = None
        try:
            self.payload = render(config, dialect, deployments=deployments)
        except ConfigError as exc:
            self.error = exc

    def to_json(self) -> str:
        """The payload as indented JSON (raises the rule violation when the config cannot be sent)."""
        if self.error is not None:
            raise self.error
        return json.dumps(self.payload, indent=2, ensure_ascii=False)

    def __repr__(self) -> str:
        if self.error is not None:
            return f"<{self.dialect}: not sendable: {self.error}>"
        return f"<{self.dialect}>\n{self.to_json()}"

    def _repr_html_(self) -> str:
        rows = []
        for f in dataclasses.fields(self.config):
            value = getattr(self.config, f.name)
            if value is UNSET:
                shown = '<span style="color:#888">not set</span>'
            elif value is None:
                shown = "null (off)" if f.name in _NULLABLE else '<span style="color:#888">not set</span>'
            else:
                if isinstance(value, (Transcription, TurnDetection)):
                    value = value.to_dict()
                shown = html.escape(json.dumps(list(value) if isinstance(value, tuple) else value,
                                               ensure_ascii=False))
            rows.append(f"<tr><th style='text-align:left'>{html.escape(f.name)}</th><td style='text-align:left'>"
                        f"<code>{shown}</code></td></tr>")
        if self.error is not None:
            sent = (f"<p style='color:#b00'><b>Not sendable in {html.escape(self.dialect)}:</b> "
                    f"{html.escape(str(self.error))}</p>")
        else:
            sent = (f"<p><b>Sent in {html.escape(self.dialect)}:</b></p>"
                    f"<pre style='text-align:left'>{html.escape(self.to_json())}</pre>")
        return ("<div class='rtlab-session-config'><table>"
                f"<caption style='text-align:left'><b>SessionConfig</b> ({html.escape(self.config.kind)})</caption>"
                + "".join(rows) + "</table>" + sent + "</div>")


# ==============================================================================================================
# GA <-> beta session shape: one table, used both ways
# ==============================================================================================================
def _format_to_beta(obj: Any) -> Any:
    # Renaming only, no judging: an unknown format keeps its name so the receiver (the emulator, parse) can say
    # what is wrong with it; known ones become beta names.
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


def _shape_of(dialect: str) -> Shape:
    try:
        return DIALECTS[dialect]
    except KeyError:
        raise ConfigError(f"unknown dialect {dialect!r}", field="dialect",
                          fix=f"use one of {', '.join(DIALECTS)}") from None


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
# Render and parse
# ==============================================================================================================
def _to_ga_session(config: SessionConfig) -> dict[str, Any]:
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
    shape = _shape_of(dialect)
    if validate:
        _validate(config, dialect, deployments=deployments)
    return session_from_ga(_to_ga_session(config), shape)


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
    shape = _shape_of(dialect)
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
        shape = _shape_of(dialect)
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


def _extras(model: Any, path: str = "") -> list[str]:
    """Field paths a pydantic model accepted only as extras (the SDK's models allow unknown fields)."""
    from pydantic import BaseModel

    found: list[str] = []
    if isinstance(model, BaseModel):
        for key in model.model_extra or {}:
            found.append(f"{path}{key}")
        for name in type(model).model_fields:
            found.extend(_extras(getattr(model, name), f"{path}{name}."))
    elif isinstance(model, (list, tuple)):
        for i, item in enumerate(model):
            found.extend(_extras(item, f"{path}{i}."))
    return found


def validate_with_sdk(event: Mapping[str, Any], dialect: str = DEFAULT_DIALECT) -> Any:
    """Validate a rendered client event against the openai SDK's pydantic model for it.

    GA: ``openai.types.realtime.SessionUpdateEvent`` (its session is a ``RealtimeSessionCreateRequest`` or
    ``RealtimeTranscriptionSessionCreateRequest``). Beta: ``openai.types.beta.realtime.SessionUpdateEvent`` or
    ``TranscriptionSessionUpdate``. Unknown fields fail too (the SDK's models would silently keep them as extras).

    Returns the validated model; raises :class:`ConfigError` listing what the SDK refused.
    """
    from pydantic import ValidationError

    shape = _shape_of(dialect)
    model_type = _sdk_event_type(str(event.get("type")), shape)
    try:
        model = model_type.model_validate(event)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise ConfigError(f"{dialect} payload does not validate against {model_type.__module__}."
                          f"{model_type.__name__}: {problems}") from None
    extras = _extras(model)
    if extras:
        raise ConfigError(f"{dialect} payload has fields the SDK's {model_type.__name__} does not define: "
                          f"{', '.join(extras)}")
    return model


# ==============================================================================================================
# Rules: one table, checked before anything is sent
# ==============================================================================================================
class RuleViolation(ConfigError):
    """A :class:`ConfigError` raised by a row of :data:`RULES`; ``rule`` is the row's id."""

    def __init__(self, message: str, *, rule: str, field: str | None = None, model: str | None = None,
                 fix: str | None = None):
        self.rule = rule
        super().__init__(message, field=field, model=model, fix=fix)


@dataclass(frozen=True)
class RuleContext:
    """What a rule sees: the config, where it goes, and the transcription model's capabilities."""

    config: SessionConfig
    dialect: str
    shape: Shape
    provider: Literal["openai", "azure"]
    deployments: Mapping[str, str] | None
    #: The transcription model as written (on Azure: a deployment name); None when transcription is off/unset.
    transcription_name: str | None
    #: The model behind it (the deployment map applied on Azure).
    transcription_model: str | None
    #: Its capability row, or None when the table does not know the model (rules about capabilities then skip).
    capability: TranscriptionModel | None
    #: The voice model behind ``config.model`` (the deployment map applied on Azure).
    session_model: str | None

    @classmethod
    def build(cls, config: SessionConfig, dialect: str, deployments: Mapping[str, str] | None) -> RuleContext:
        shape = _shape_of(dialect)
        provider: Literal["openai", "azure"] = "azure" if dialect.startswith("azure") else "openai"
        use_map = provider == "azure" and deployments is not None
        tx = config.transcription if isinstance(config.transcription, Transcription) else None
        name = tx.model if tx else None
        model = deployments.get(name, name) if (use_map and name is not None) else name
        session_model = deployments.get(config.model, config.model) if (use_map and config.model) else config.model
        return cls(config, dialect, shape, provider, deployments if use_map else None, name, model,
                   TRANSCRIPTION_MODELS.get(model) if model else None, session_model)

    def value(self, path: str) -> Any:
        """The config value at a dotted path (``"transcription.delay"``); None when unset or off."""
        node: Any = self.config
        for part in path.split("."):
            node = getattr(node, part, None)
            if node is UNSET or node is None:
                return None
        return node

    def models_with(self, flag: str) -> str:
        """Transcription models whose capability ``flag`` is true, for messages."""
        return " / ".join(m.name for m in TRANSCRIPTION_MODELS.values() if getattr(m, flag))


@dataclass(frozen=True)
class Rule:
    """One row of :data:`RULES`.

    ``violated(ctx)`` is true when the config breaks the rule. ``message`` and ``fix`` are ``str.format``
    templates over: ``value`` (the field's value), ``model`` (transcription model as written, or the session model
    for session-model rules), ``models`` (the models that do allow it), ``dialect``, ``deployments``.
    """

    id: str
    violated: Callable[[RuleContext], bool]
    field: str
    message: str
    fix: str
    #: Which model the error names: the transcription model, the voice (session) model, or "auto" (the voice
    #: model of a realtime session, else the transcription model).
    subject: Literal["transcription", "session", "auto"] = "transcription"
    #: Capability flag the message's ``models`` lists (empty: none).
    allowed_by: str = ""

    def subject_model(self, config: SessionConfig) -> str | None:
        """The model this rule's error names for ``config``."""
        tx = config.transcription.model if isinstance(config.transcription, Transcription) else None
        if self.subject == "session" or (self.subject == "auto" and config.kind == "realtime" and config.model):
            return config.model
        return tx

    def error(self, ctx: RuleContext) -> RuleViolation:
        model = self.subject_model(ctx.config)
        value = ctx.config.turn_detection if self.field == "turn_detection" else ctx.value(self.field)
        if isinstance(value, TurnDetection):
            value = value.type
        elif isinstance(value, tuple):
            value = list(value)
        names = {
            "value": "UNSET (server default)" if value is None and self.field == "turn_detection" else value,
            "model": model,
            "models": ctx.models_with(self.allowed_by) if self.allowed_by else "",
            "dialect": ctx.dialect,
            "deployments": ", ".join(sorted(ctx.deployments or {})) or "(none)",
        }
        if ctx.transcription_model and ctx.transcription_model != ctx.transcription_name and \
                self.subject == "transcription":
            names["model"] = f"{model} (deployment of {ctx.transcription_model})"
        message = f"{self.field}: {self.message.format(**names)}"
        if model and model not in message:
            message += f" (model: {model})"
        return RuleViolation(message, rule=self.id, field=self.field, model=model, fix=self.fix.format(**names))


def _cap(ctx: RuleContext, flag: str) -> bool:
    """True when the model is known and lacks ``flag`` (unknown models are not judged)."""
    return ctx.capability is not None and not getattr(ctx.capability, flag)


#: Fields the beta (preview) shape has no place for: absent from the SDK's beta session types.
#: (field path, session kinds where it is missing)
GA_ONLY_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("transcription.delay", KINDS),
    ("transcription.languages", KINDS),
    ("transcription.keywords", KINDS),
    ("turn_detection.idle_timeout_ms", KINDS),
    ("include", ("realtime",)),
)


def _ga_only_rule(path: str, kinds: tuple[str, ...]) -> Rule:
    return Rule(
        id=f"beta-has-no-{path.rsplit('.', 1)[-1].replace('_', '-')}",
        violated=lambda c: c.shape == "beta" and c.config.kind in kinds and c.value(path) is not None,
        field=path,
        message="the beta shape spoken by {dialect} has no such field (GA sessions only).",
        fix="drop it, or use a GA dialect (openai-ga / azure-ga)",
        subject="transcription" if path.startswith("transcription.") else "auto",
    )


#: Every rule checked before a config is sent, in order. Add a rule here and nowhere else.
RULES: tuple[Rule, ...] = (
    Rule("pcm-rate",
         lambda c: c.config.pcm_rate != PCM_RATE,
         "pcm_rate", f"PCM audio must be {PCM_RATE} Hz, got {{value}} Hz.",
         f"resample the audio to {PCM_RATE} Hz mono (rtlab.audio does) and keep pcm_rate={PCM_RATE}",
         subject="auto"),
    Rule("not-a-session-model",
         lambda c: c.config.kind == "realtime" and c.session_model in NOT_SESSION_MODELS,
         "model", "{value} cannot be the model of a realtime (voice) session; it is a transcription model.",
         "use a voice model (e.g. model='gpt-realtime') with transcription={value!r}, or open a transcription "
         "session: SessionConfig.transcription(model={value!r})",
         subject="session"),
    Rule("azure-unknown-deployment",
         lambda c: c.deployments is not None and c.transcription_name is not None
         and c.transcription_name not in c.deployments,
         "transcription.model",
         "{value!r} is not a transcription deployment of this Azure resource (Azure needs the deployment name, "
         "not the model name).",
         "use one of the deployment names: {deployments} (or add it to AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS)"),
    Rule("prompt-unsupported",
         lambda c: c.value("transcription.prompt") is not None and _cap(c, "prompt"),
         "transcription.prompt", "{model} does not accept a transcription prompt.",
         "drop prompt (gpt-transcribe / gpt-live-transcribe take keywords=[...] instead); models that take a "
         "prompt: {models}",
         allowed_by="prompt"),
    Rule("vad-in-transcription-session",
         lambda c: c.config.kind == "transcription" and c.config.turn_detection is not None
         and _cap(c, "vad_in_transcription_session"),
         "turn_detection",
         "{model} takes no turn detection (VAD) in a transcription session, got turn_detection={value}.",
         "set turn_detection=None: the client commits the input audio buffer at the end of each utterance",
         allowed_by="vad_in_transcription_session"),
    Rule("delay-unsupported",
         lambda c: c.value("transcription.delay") is not None and _cap(c, "delay"),
         "transcription.delay", "delay={value!r} is supported only by {models}, not by {model}.",
         "drop delay, or use transcription model {models}",
         allowed_by="delay"),
    Rule("languages-unsupported",
         lambda c: c.value("transcription.languages") is not None and _cap(c, "languages_keywords"),
         "transcription.languages", "languages=[...] is supported only by {models}, not by {model}.",
         "use language='xx' (one ISO-639-1 code), or transcription model {models}",
         allowed_by="languages_keywords"),
    Rule("keywords-unsupported",
         lambda c: c.value("transcription.keywords") is not None and _cap(c, "languages_keywords"),
         "transcription.keywords", "keywords=[...] are supported only by {models}, not by {model}.",
         "use prompt='...' where the model takes one, or transcription model {models}",
         allowed_by="languages_keywords"),
    *(_ga_only_rule(path, kinds) for path, kinds in GA_ONLY_FIELDS),
)


def violations(config: SessionConfig, dialect: str = DEFAULT_DIALECT, *,
               deployments: Mapping[str, str] | None = None) -> list[RuleViolation]:
    """Every rule of :data:`RULES` that ``config`` breaks in ``dialect``, in table order (empty when sendable)."""
    if not isinstance(config, SessionConfig):
        raise ConfigError(f"expected a SessionConfig, got {type(config).__name__}")
    ctx = RuleContext.build(config, dialect, deployments)
    return [rule.error(ctx) for rule in RULES if rule.violated(ctx)]


def validate(config: SessionConfig, dialect: str = DEFAULT_DIALECT, *,
             deployments: Mapping[str, str] | None = None) -> None:
    """Raise the first :class:`RuleViolation` of ``config`` in ``dialect``; return None when it may be sent.

    Parameters
    ----------
    deployments
        Azure: ``{deployment_name: model}``. When given, the transcription model must be one of its names, and the
        capability rules judge the model it maps to. Ignored for OpenAI dialects.
    """
    found = violations(config, dialect, deployments=deployments)
    if found:
        raise found[0]


_validate = validate  # render()'s keyword `validate` shadows the function inside it


# ==============================================================================================================
# Requested vs applied
# ==============================================================================================================
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
        out.extend(_diff_values(f.name, getattr(requested, f.name), getattr(applied, f.name), f.name in _NULLABLE))
    return out


def diff_frame(requested: SessionConfig, applied: SessionConfig) -> pd.DataFrame:
    """:func:`diff` as a pandas DataFrame with columns ``path, kind, requested, applied``."""
    import pandas as pd

    rows = [{"path": c.path, "kind": c.kind, "requested": c.requested, "applied": c.applied}
            for c in diff(requested, applied)]
    return pd.DataFrame(rows, columns=["path", "kind", "requested", "applied"])
