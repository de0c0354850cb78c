"""In-session vs sidecar transcription on one audio clock.

``run_sidecar(audio, voice=(target, config), sidecars=[...])`` runs a voice session with in-session
transcription and, beside it on the same paced audio, any number of sidecars, each labelled as a source:

- :class:`TranscriptionSidecar` — a parallel transcription session (``intent=transcription``), on the same or
  another target (source ``sidecar:transcription``);
- :class:`LocalSidecar` — the local engine (VAD + streaming ASR) in-process, no server (``sidecar:local``);
- :class:`OutOfBandSidecar` — ``response.create`` with ``conversation: "none"`` and text output on the voice
  session after each committed turn (``sidecar:oob``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .session import (
    IN_SESSION,
    SIDECAR_LOCAL,
    SIDECAR_OOB,
    SIDECAR_TRANSCRIPTION,
    Leg,
    RemoteLeg,
    RunOptions,
    arun_legs,
    input_format_of,
    run_sync,
)


@dataclass(frozen=True)
class TranscriptionSidecar:
    """A parallel transcription session. ``target=None``: the voice session's target."""

    model: str = "gpt-4o-transcribe"
    target: Any = None
    config: Any = None  # a full SessionConfig(kind="transcription") overrides `model`
    source: str = SIDECAR_TRANSCRIPTION

    def session_config(self, voice_config: Any) -> Any:
        from .config import SessionConfig

        if self.config is not None:
            return self.config
        language = getattr(getattr(voice_config, "transcription", None), "language", None)
        return SessionConfig.transcription(
            model=self.model, input_format=getattr(voice_config, "input_format", "pcm16"), language=language
        )


@dataclass(frozen=True)
class LocalSidecar:
    """The local engine (VAD + streaming ASR), in-process."""

    source: str = SIDECAR_LOCAL
    model: str = "gpt-realtime-whisper"  # which model's event behaviour the local engine mimics (streaming)


@dataclass(frozen=True)
class OutOfBandSidecar:
    """Out-of-band text responses on the voice session, one per committed turn."""

    source: str = SIDECAR_OOB


SidecarSpec = TranscriptionSidecar | LocalSidecar | OutOfBandSidecar

DEFAULT_SIDECARS: tuple[SidecarSpec, ...] = (TranscriptionSidecar(), LocalSidecar(), OutOfBandSidecar())


def parse_sidecar(spec: str) -> SidecarSpec:
    """Parse a CLI sidecar spec: ``transcription[:MODEL]``, ``local`` or ``oob``."""
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind in ("transcription", "ts"):
        return TranscriptionSidecar(model=arg or TranscriptionSidecar.model)
    if kind == "local" and not arg:
        return LocalSidecar()
    if kind in ("oob", "out-of-band") and not arg:
        return OutOfBandSidecar()
    raise ConfigError(
        f"unknown sidecar spec {spec!r}", field="sidecar",
        fix="use transcription[:MODEL], local or oob (e.g. --sidecar transcription:gpt-4o-transcribe)",
    )


def build_legs(voice: tuple[Any, Any], sidecars: list[SidecarSpec | str]) -> list[Leg]:
    """The legs of a sidecar run: the voice session first, then one leg per sidecar (oob rides the voice leg)."""
    from .local import LocalLeg

    target, config = voice
    specs = [parse_sidecar(s) if isinstance(s, str) else s for s in sidecars]
    oob = any(isinstance(s, OutOfBandSidecar) for s in specs)
    legs: list[Leg] = [RemoteLeg(IN_SESSION, target, config, oob=oob)]
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
            legs.append(RemoteLeg(source, spec.target or target, spec.session_config(config)))
        elif isinstance(spec, LocalSidecar):
            legs.append(LocalLeg(source, model=spec.model))
    return legs


async def arun_sidecar(audio: Any, voice: tuple[Any, Any], sidecars: list[SidecarSpec | str] | None = None, *,
                       out=None, log=None, options: RunOptions | None = None, **option_kw):
    """Awaitable form of :func:`run_sidecar`."""
    options = options or RunOptions(**option_kw)
    legs = build_legs(voice, list(DEFAULT_SIDECARS if sidecars is None else sidecars))
    configs = [leg.config for leg in legs if isinstance(leg, RemoteLeg)]
    target, config = voice
    from .config import render

    meta = {
        "target": repr(target),
        "voice_config": render(config, target.dialect),
        "sidecars": [leg.source for leg in legs[1:]] + ([SIDECAR_OOB] if legs[0].oob else []),
        # Out-of-band transcripts are voice-model responses: price them as such.
        "models": {SIDECAR_OOB: getattr(config, "model", None)} if legs[0].oob else {},
    }
    return await arun_legs(audio, legs, out=out, log=log, options=options, fmt=input_format_of(configs), meta=meta)


def run_sidecar(audio: Any, voice: tuple[Any, Any], sidecars: list[SidecarSpec | str] | None = None, **kw):
    """Run a voice session and its sidecars on one audio clock; returns the EventLog.

    Parameters
    ----------
    audio : path or rtlab.audio.Audio
    voice : (Target, SessionConfig)
        The voice-to-voice session, with its in-session transcription model.
    sidecars : list of sidecar specs or strings
        Defaults to all three kinds: a transcription session, the local engine and out-of-band responses.

    Examples
    --------
    >>> from rtlab import Target, SessionConfig, run_sidecar            # doctest: +SKIP
    >>> log = run_sidecar("data/clips/monologue.wav",                   # doctest: +SKIP
    ...                   voice=(Target.local(), SessionConfig.realtime()))
    >>> log.turns()[["source", "transcript", "ttfs_ms"]]                # doctest: +SKIP
    """
    return run_sync(arun_sidecar(audio, voice, sidecars, **kw))
