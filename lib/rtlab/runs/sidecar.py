"""In-session vs sidecar transcription on one audio clock (layer: runs).

``run_sidecar(audio, voice=(target, config), sidecars=[...])`` runs a voice session with in-session
transcription and, beside it on the same paced audio, any number of sidecars, each labelled as a source:

- :class:`TranscriptionSidecar` — a parallel transcription session (``intent=transcription``), on the same or
  another target (source ``sidecar:transcription``);
- :class:`LocalSidecar` — the local engine in-process, no server (``sidecar:local``);
- :class:`OutOfBandSidecar` — ``response.create`` with ``conversation: "none"`` and text output on the voice
  session after each committed turn (``sidecar:oob``);
- :class:`AzureSpeechSidecar` — the Azure Speech SDK's ``ConversationTranscriber`` on the same audio
  (``sidecar:azure-speech``; the seed question's first workaround);
- :class:`~rtlab.runs.translation.TranslationSidecar` — a ``gpt-realtime-translate`` session whose source
  transcript is one more transcription source (``sidecar:translate:LANG``; the seed question's second workaround).

The voice session is a Realtime session, or a GPT-Live session when the voice model is a GPT-Live model
(``gpt-live-1``: :func:`voice_leg` asks the model catalogue which API a model belongs to). ``run_session`` is the
one-leg case of the same machinery.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rtlab.audio import Audio
from rtlab.errors import ConfigError, RtlabError
from rtlab.log import EventLog
from rtlab.protocol.catalogue import DEFAULT_TRANSCRIPTION_SIDECAR_MODEL

from .azure_speech import AZURE_SPEECH_SOURCE, AzureSpeechLeg, AzureSpeechTarget
from .core import (
    IN_SESSION,
    SIDECAR_LOCAL,
    SIDECAR_OOB,
    SIDECAR_TRANSCRIPTION,
    Leg,
    LiveSource,
    RunOptions,
    arun_legs,
    input_format_of,
    run_sync,
)
from .live import LiveConfig, LiveLeg
from .local import LocalLeg
from .realtime import RemoteLeg
from .translation import TranslationSidecar, parse_translate_spec

if TYPE_CHECKING:  # pragma: no cover
    from rtlab.config import SessionConfig
    from rtlab.targets import Target

__all__ = [
    "AzureSpeechSidecar", "DEFAULT_SIDECARS", "is_live_voice", "plan_sidecars", "voice_leg", "LocalSidecar", "OutOfBandSidecar", "SidecarSpec", "TranscriptionSidecar", "arun_session",
    "arun_sidecar", "build_legs", "parse_sidecar", "run_session", "run_sidecar",
]

AudioInput = Audio | LiveSource | str | Path


@dataclass(frozen=True)
class TranscriptionSidecar:
    """A parallel transcription session. ``target=None``: the voice session's target."""

    model: str = DEFAULT_TRANSCRIPTION_SIDECAR_MODEL
    target: Target | None = None
    config: SessionConfig | None = None  # a full SessionConfig(kind="transcription") overrides `model`
    source: str = SIDECAR_TRANSCRIPTION

    def session_config(self, voice_config: SessionConfig, target: Target | None = None) -> SessionConfig:
        """The transcription session: :attr:`config`, else one for :attr:`model` (on Azure a model or a
        deployment name) with turn detection as the model behind it allows."""
        from rtlab.config import SessionConfig
        from rtlab.protocol.catalogue import transcription_model

        if self.config is not None:
            return self.config
        language = getattr(getattr(voice_config, "transcription", None), "language", None)
        behind = transcription_model(target.model_of(self.model) if target is not None else self.model)
        kw: dict[str, Any] = {}
        if behind is not None and not behind.vad_in_transcription_session:
            kw["turn_detection"] = None  # the client commits (gpt-realtime-whisper, gpt-live-transcribe)
        return SessionConfig.transcription(
            model=self.model, input_format=getattr(voice_config, "input_format", "pcm16") or "pcm16",
            language=language, **kw)


@dataclass(frozen=True)
class LocalSidecar:
    """The local engine (VAD + streaming ASR), in-process."""

    source: str = SIDECAR_LOCAL


@dataclass(frozen=True)
class OutOfBandSidecar:
    """Out-of-band text responses on the voice session, one per committed turn."""

    source: str = SIDECAR_OOB


@dataclass(frozen=True)
class AzureSpeechSidecar:
    """Azure Speech conversation transcription beside the voice session. ``target=None``: the emulator's Speech
    endpoint for a local voice target, else the Speech resource in the environment (``AZURE_SPEECH_*``)."""

    target: AzureSpeechTarget | None = None
    source: str = AZURE_SPEECH_SOURCE
    intermediate_diarization: bool = False

    def leg(self, voice_target: Target, *, source: str | None = None) -> AzureSpeechLeg:
        target = self.target
        if target is None:
            if voice_target.is_local:
                target = AzureSpeechTarget.local(voice_target.url, api_key=voice_target.api_key.reveal())
            else:
                target = AzureSpeechTarget.from_env()
        return AzureSpeechLeg(source or self.source, target, intermediate_diarization=self.intermediate_diarization)


SidecarSpec = TranscriptionSidecar | LocalSidecar | OutOfBandSidecar | AzureSpeechSidecar | TranslationSidecar

DEFAULT_SIDECARS: tuple[SidecarSpec, ...] = (TranscriptionSidecar(), LocalSidecar(), OutOfBandSidecar())


def parse_sidecar(spec: str) -> SidecarSpec:
    """Parse a CLI sidecar spec: ``transcription[:MODEL]``, ``local``, ``oob``, ``azure-speech`` or
    ``translate:LANG``."""
    translation = parse_translate_spec(spec)
    if translation is not None:
        return translation
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind in ("transcription", "ts"):
        return TranscriptionSidecar(model=arg or TranscriptionSidecar.model)
    if kind == "local" and not arg:
        return LocalSidecar()
    if kind in ("oob", "out-of-band") and not arg:
        return OutOfBandSidecar()
    if kind in ("azure-speech", "azure_speech") and not arg:
        return AzureSpeechSidecar()
    raise ConfigError(
        f"unknown sidecar spec {spec!r}", field="sidecar",
        fix="use transcription[:MODEL], local, oob, azure-speech or translate:LANG (e.g. --sidecar "
            "transcription:gpt-live-transcribe)",
    )


def is_live_voice(target: Target, config: SessionConfig) -> bool:
    """True when the voice session is a GPT-Live session (its model, or the deployment's, is a GPT-Live model)."""
    from rtlab.protocol.catalogue import api_of

    return config.kind == "realtime" and api_of(target.model_of(config.model) if config.model else None) == "live"


def plan_sidecars(target: Target, config: SessionConfig, sidecars: list[SidecarSpec | str] | None
                  ) -> list[SidecarSpec]:
    """The sidecars a run gets: the given specs parsed, or the defaults (a GPT-Live voice session has no
    out-of-band pattern, so its defaults leave it out).

    Raises
    ------
    ConfigError
        An unknown spec, or out-of-band transcripts asked of a GPT-Live voice session (before anything runs).
    """
    if sidecars is None:
        specs: list[SidecarSpec] = list(DEFAULT_SIDECARS)
        if is_live_voice(target, config):
            specs = [s for s in specs if not isinstance(s, OutOfBandSidecar)]
        return specs
    specs = [parse_sidecar(s) if isinstance(s, str) else s for s in sidecars]
    if is_live_voice(target, config) and any(isinstance(s, OutOfBandSidecar) for s in specs):
        raise ConfigError("out-of-band transcripts are a Realtime pattern (response.create with conversation "
                          "'none'); a GPT-Live session has no such request", field="sidecar",
                          fix="drop the oob sidecar, or use a Realtime voice model")
    return specs


def voice_leg(target: Target, config: SessionConfig, *, source: str = IN_SESSION, oob: bool = False) -> Leg:
    """The voice session's leg: a GPT-Live session for a GPT-Live model, else a Realtime session.

    Raises
    ------
    ConfigError
        Out-of-band transcripts asked of a GPT-Live session (they are a Realtime pattern).
    """
    if is_live_voice(target, config):
        if oob:
            raise ConfigError("out-of-band transcripts are a Realtime pattern (response.create with conversation "
                              "'none'); a GPT-Live session has no such request", field="sidecar",
                              fix="drop the oob sidecar, or use a Realtime voice model")
        wire = target.deployment_for(config.model, kind="voice")  # the Azure deployment serving it
        return LiveLeg(target, LiveConfig(model=wire, instructions=config.instructions or None), source=source)
    return RemoteLeg(source, target, config, oob=oob)


def build_legs(voice: tuple[Target, SessionConfig], sidecars: list[SidecarSpec | str]) -> list[Leg]:
    """The legs of a sidecar run: the voice session first, then one leg per sidecar (oob rides the voice leg)."""
    target, config = voice
    specs = [parse_sidecar(s) if isinstance(s, str) else s for s in sidecars]
    oob = any(isinstance(s, OutOfBandSidecar) for s in specs)
    legs: list[Leg] = [voice_leg(target, config, oob=oob)]
    seen = {IN_SESSION}
    for spec in specs:
        if isinstance(spec, OutOfBandSidecar):
            continue
        source = spec.source
        n = 2
        while source in seen:  # two transcription sidecars get distinct labels
            source = f"{spec.source}#{n}"
            n += 1
        seen.add(source)
        if isinstance(spec, TranscriptionSidecar):
            legs.append(RemoteLeg(source, spec.target or target, spec.session_config(config, spec.target or target)))
        elif isinstance(spec, LocalSidecar):
            legs.append(LocalLeg(source))
        elif isinstance(spec, (AzureSpeechSidecar, TranslationSidecar)):
            legs.append(spec.leg(target, source=source))
    return legs


def _deployment_models(legs: list[Leg]) -> dict[str, str]:
    """Azure deployment name -> model of every target of the run (prices and tables speak in models)."""
    out: dict[str, str] = {}
    for leg in legs:
        target = getattr(leg, "target", None)
        if target is not None and getattr(target, "uses_deployments", False):
            out.update(target.known_deployments())
    return out


def _rendered(config: SessionConfig, target: Target, *, validate: bool = True) -> dict[str, Any]:
    try:
        return target.render(config, validate=validate)
    except RtlabError as exc:
        return {"error": str(exc)}


async def arun_sidecar(audio: AudioInput, voice: tuple[Target, SessionConfig],
                       sidecars: list[SidecarSpec | str] | None = None, *, out: str | Path | None = None,
                       log: EventLog | None = None, options: RunOptions | None = None,
                       on_log: Callable[[EventLog], Any] | None = None, **option_kw: Any) -> EventLog:
    """Awaitable form of :func:`run_sidecar` (``on_log``: see :func:`rtlab.runs.arun_legs`)."""
    options = options or RunOptions(**option_kw)
    legs = build_legs(voice, plan_sidecars(voice[0], voice[1], sidecars))
    target, config = voice
    configs = [leg.config for leg in legs if isinstance(leg, RemoteLeg)] or [config]
    sources = {leg.source: leg.describe() for leg in legs}
    voice = legs[0]
    if isinstance(voice, RemoteLeg) and voice.oob:
        # Out-of-band transcripts are voice-model responses: price them as such.
        sources[SIDECAR_OOB] = {"family": "realtime", "kind": "oob", "session_of": IN_SESSION,
                                "session_model": sources[IN_SESSION].get("session_model"),
                                "target": target.provider, "emulated": target.is_local,
                                "timing": sources[IN_SESSION].get("timing")}
    rendered = voice.session_config if isinstance(voice, LiveLeg) else _rendered(config, target)
    meta = {"target": repr(target), "voice_config": rendered, "sources": sources,
            "models": _deployment_models(legs)}
    return await arun_legs(audio, legs, out=out, log=log, options=options, fmt=input_format_of(configs), meta=meta,
                           on_log=on_log)


def run_sidecar(audio: AudioInput, voice: tuple[Target, SessionConfig], sidecars: list[SidecarSpec | str] | None = None,
                **kw: Any) -> EventLog:
    """Run a voice session and its sidecars on one audio clock; returns the event log.

    Parameters
    ----------
    audio : path, rtlab.audio.Audio or a live source
    voice : (Target, SessionConfig)
        The voice-to-voice session, with its in-session transcription model.
    sidecars : list of sidecar specs or strings
        Defaults to all three kinds: a transcription session, the local engine and out-of-band responses.

    Examples
    --------
    >>> from rtlab import Target, SessionConfig, run_sidecar, turns     # doctest: +SKIP
    >>> log = run_sidecar("data/clips/monologue.wav",                   # doctest: +SKIP
    ...                   voice=(Target.local(), SessionConfig.realtime()))
    >>> turns(log)[["source", "transcript", "final_after_eos_ms"]]      # doctest: +SKIP
    """
    return run_sync(arun_sidecar(audio, voice, sidecars, **kw))


async def arun_session(target: Target, config: SessionConfig, audio: AudioInput, *, source: str = IN_SESSION,
                       out: str | Path | None = None, log: EventLog | None = None,
                       options: RunOptions | None = None, validate: bool = True,
                       on_log: Callable[[EventLog], Any] | None = None, **option_kw: Any) -> EventLog:
    """Run one session (voice or transcription) over ``audio``; returns its event log. Awaitable form
    (``on_log``: see :func:`rtlab.runs.arun_legs`)."""
    options = options or RunOptions(**option_kw)
    if validate and config.kind == "realtime":
        leg = voice_leg(target, config, source=source)
    else:
        leg = RemoteLeg(source, target, config, validate=validate)
    rendered = _rendered(config, target, validate=validate)
    return await arun_legs(audio, [leg], out=out, log=log, options=options, fmt=input_format_of([config]),
                           meta={"target": repr(target), "config": rendered, "models": _deployment_models([leg])},
                           on_log=on_log)


def run_session(target: Target, config: SessionConfig, audio: AudioInput, **kw: Any) -> EventLog:
    """Run one session over ``audio`` and return its :class:`rtlab.log.EventLog`.

    Parameters
    ----------
    target : rtlab.targets.Target
        Where to connect (``Target.local()`` starts the embedded emulator).
    config : rtlab.config.SessionConfig
        The session to request; rendered in the target's dialect.
    audio : path, rtlab.audio.Audio or a live source
        Audio to stream, paced at ``speed`` × real time.
    validate : bool
        Check the shared rules before sending (default). ``False`` sends a Realtime session exactly as configured,
        to see what the server answers to a configuration the rules would refuse (recorded, never raised).

    In a notebook with a running event loop, prefer ``await arun_session(...)`` so live views update.
    """
    return run_sync(arun_session(target, config, audio, **kw))
