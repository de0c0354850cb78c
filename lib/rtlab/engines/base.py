"""Small interfaces for the local speech engines (VAD, streaming ASR, TTS, text translation).

The emulator and the "local engine" sidecar talk to engines only through these, so another engine
(faster-whisper when its model is on the machine, Silero VAD, ...) can plug in by implementing them.
Audio is always mono int16 numpy arrays with an explicit sample rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Word:
    text: str
    start_ms: float  # relative to the start of the stream
    end_ms: float
    logprob: float = 0.0


@dataclass(frozen=True)
class Transcript:
    text: str
    words: tuple[Word, ...] = ()
    # Average log probability per word (for `logprobs` events); 0.0 when the engine gives none.
    avg_logprob: float = 0.0
    audio_ms: float = 0.0  # duration of audio decoded


@dataclass(frozen=True)
class Stability:
    """How eagerly a streaming recognizer calls a word stable (LocalAgreement-2, see :mod:`rtlab.engines.asr`).

    ``partial_interval_ms``: audio between two compared partial hypotheses; ``guard_ms``: a word must have ended
    this long before the newest audio. Smaller values give earlier deltas and lower accuracy.
    """

    partial_interval_ms: int = 100
    guard_ms: int = 100


@runtime_checkable
class Vad(Protocol):
    """Frame-level voice activity: the emulator's turn logic (threshold, padding, silence) sits on top."""

    frame_ms: int
    sample_rate: int

    def speech_prob(self, frame: np.ndarray) -> float:
        """Probability in [0, 1] that ``frame`` (``frame_ms`` of int16 at ``sample_rate``) holds speech."""
        ...


@runtime_checkable
class StreamingRecognizer(Protocol):
    """One utterance being decoded while audio arrives."""

    def accept(self, pcm: np.ndarray, sample_rate: int) -> None:
        """Feed more audio (any rate; the engine resamples)."""
        ...

    def stable_text(self) -> str:
        """Text that will not change any more. Append-only across calls: each result starts with the previous."""
        ...

    def finish(self) -> Transcript:
        """End of utterance. ``Transcript.text`` starts with the last ``stable_text()``."""
        ...


@runtime_checkable
class AsrEngine(Protocol):
    name: str

    def stream(self, *, keywords: list[str] | None = None, language: str | None = None) -> StreamingRecognizer: ...

    def transcribe(self, pcm: np.ndarray, sample_rate: int, **kw) -> Transcript:
        """Whole-utterance decoding (for batch models and the local-engine sidecar)."""
        ...


@runtime_checkable
class TtsEngine(Protocol):
    name: str
    sample_rate: int

    def synthesize(self, text: str, *, voice: str | None = None) -> np.ndarray:
        """Speech for ``text`` as int16 mono at ``sample_rate``."""
        ...


@runtime_checkable
class Translator(Protocol):
    """Text from one language to another (offline); one instance per language pair."""

    name: str
    source: str  # ISO 639-1 code, e.g. "en"
    target: str

    def translate(self, text: str) -> str:
        """``text`` in :attr:`target`; empty text gives ``""``."""
        ...

    def translate_many(self, texts: list[str]) -> list[str]:
        """Several independent texts at once (one engine call where the engine allows), in order."""
        ...


@dataclass
class EngineSet:
    """The engines a server or sidecar uses; built by ``rtlab.engines.default_engines()``."""

    vad_factory: object  # callable () -> Vad
    asr: AsrEngine
    tts: TtsEngine
    extra: dict = field(default_factory=dict)
