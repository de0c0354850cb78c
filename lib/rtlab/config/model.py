"""The logical session configuration: what a notebook wants from a session, independent of dialect (layer: config).

A :class:`SessionConfig` names the session kind, voice model, transcription model and options, turn detection,
noise reduction, audio formats, voice, instructions, include and output modalities. It speaks in **model names**;
rendering for Azure maps them to the resource's deployments (:mod:`rtlab.config.render`).

"Not set" and "null" differ where the protocol cares: ``turn_detection``, ``transcription`` and ``noise_reduction``
default to :data:`UNSET` (omitted from the payload: the server keeps its setting) while ``None`` sends ``null``
(``turn_detection=None`` turns VAD off: the client commits).

>>> SessionConfig.realtime(delay="low").transcription
Transcription(model='gpt-realtime-whisper', delay='low')
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from rtlab.errors import ConfigError
from rtlab.protocol.catalogue import (
    DEFAULT_TRANSCRIPTION_MODEL,
    DEFAULT_TRANSCRIPTION_SIDECAR_MODEL,
    DELAYS,
    TRANSCRIPTION_MODELS,
)
from rtlab.protocol.defaults import LOGPROBS_INCLUDE, SERVER_VAD_DEFAULTS
from rtlab.protocol.shapes import AUDIO_FORMATS, KINDS, PCM_RATE

if TYPE_CHECKING:  # pragma: no cover
    from .display import RenderedSession

__all__ = ["DEFAULT_DIALECT", "NULLABLE", "UNSET", "SessionConfig", "Transcription", "TurnDetection"]

Kind = Literal["realtime", "transcription"]
DEFAULT_DIALECT = "openai-ga"

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
    def realtime(cls, model: str | None = None,
                 transcription: str | Transcription | None | _Unset = DEFAULT_TRANSCRIPTION_MODEL,
                 **kw: Any) -> SessionConfig:
        """A voice session with in-session transcription and server VAD at the service defaults.

        ``model=None`` (the default) leaves the voice model to the target: ``gpt-realtime-2.1`` on OpenAI (see
        :data:`rtlab.protocol.catalogue.DEFAULT_VOICE_MODEL`), the configured voice deployment on Azure.
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
            if value is UNSET or (value is None and f.name not in NULLABLE):
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
        """The exact event :func:`rtlab.config.render` sends in ``dialect``, as an object that displays in a
        notebook."""
        from .display import RenderedSession

        return RenderedSession(self, dialect, deployments=deployments)

    def _repr_html_(self) -> str:
        return self.show()._repr_html_()


NULLABLE = frozenset({"transcription", "turn_detection", "noise_reduction"})


def _transcription_session(cls: type[SessionConfig], model: str = DEFAULT_TRANSCRIPTION_SIDECAR_MODEL, **kw: Any
                           ) -> SessionConfig:
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
