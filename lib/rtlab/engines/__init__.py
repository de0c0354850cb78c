"""Local speech engines: voice activity, turn detection, streaming recognition, synthesis.

Everything here runs offline with what the package installs (webrtcvad-wheels, the pocketsphinx wheel's en-us
model) plus the ``flite`` program (and, for translation, ``apertium`` and ``espeak-ng``); nothing downloads
weights. The emulator and the local-engine sidecar use :func:`default_engines`; other engines plug in through the
interfaces of :mod:`rtlab.engines.base`.

=========================================  ==========================================================================
:class:`~.vad.WebRtcVad`                   frame-level speech / non-speech (WebRTC), one per stream
:class:`~.turns.TurnDetector`              server-VAD turns (threshold, prefix padding, silence duration) on a stream
:class:`~.asr.PocketSphinxAsr`             streaming ASR with append-only stable text; whole-utterance ``transcribe``
:class:`~.tts.FliteTts`                    text to 24 kHz PCM16 speech, cached
:class:`~.espeak.EspeakTts`                text to 24 kHz PCM16 speech in many languages (espeak-ng), cached
:class:`~.translate.ApertiumTranslator`    offline text translation (Apertium), one language pair, batched
:class:`LocalTranscriber`                  turns + transcripts of a clip or stream: the "local engine" sidecar
=========================================  ==========================================================================

Example
-------
>>> from rtlab.engines import default_engines, LocalTranscriber   # doctest: +SKIP
>>> eng = default_engines()                                        # doctest: +SKIP
>>> pcm = eng.tts.synthesize("Hello there. How are you?")          # doctest: +SKIP
>>> [(t.start_ms, t.end_ms, t.transcript.text) for t in LocalTranscriber(eng).transcribe_clip(pcm)]  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rtlab.engines.asr import AcousticContext, PocketSphinxAsr, PocketSphinxStream
from rtlab.engines.base import (
    AsrEngine,
    EngineSet,
    StreamingRecognizer,
    Transcript,
    Translator,
    TtsEngine,
    Vad,
    Word,
)
from rtlab.engines.espeak import EspeakMissingError, EspeakTts
from rtlab.engines.resample import StreamingResampler
from rtlab.engines.translate import ApertiumMissingError, ApertiumTranslator, LanguagePairMissingError
from rtlab.engines.tts import FliteMissingError, FliteTts, flite_voices
from rtlab.engines.turns import TurnDetector, TurnEvent
from rtlab.engines.vad import WebRtcVad
from rtlab.errors import AudioError, ConfigError

__all__ = [
    "AcousticContext",
    "ApertiumMissingError",
    "ApertiumTranslator",
    "AsrEngine",
    "EngineSet",
    "EspeakMissingError",
    "EspeakTts",
    "FliteMissingError",
    "FliteTts",
    "LanguagePairMissingError",
    "LocalTranscriber",
    "LocalTurn",
    "PocketSphinxAsr",
    "PocketSphinxStream",
    "StreamingRecognizer",
    "StreamingResampler",
    "Transcript",
    "Translator",
    "TtsEngine",
    "TurnDetector",
    "TurnEvent",
    "Vad",
    "WebRtcVad",
    "Word",
    "default_engines",
    "flite_voices",
]

_lock = threading.Lock()
_asr: PocketSphinxAsr | None = None
_tts: FliteTts | None = None


def default_engines() -> EngineSet:
    """The default engine set: a WebRTC VAD factory, PocketSphinx ASR and flite TTS.

    The ASR engine (its decoder pool) and the TTS engine (its cache) are built once per process and shared by
    every caller; a fresh ``EngineSet`` wrapper is returned each time. ``vad_factory()`` makes a new
    :class:`WebRtcVad` (VADs keep per-stream state).

    Raises
    ------
    FliteMissingError
        When the ``flite`` program is not installed (the message names the package).
    """
    global _asr, _tts
    with _lock:
        if _asr is None:
            _asr = PocketSphinxAsr()
        if _tts is None:
            _tts = FliteTts()
        return EngineSet(vad_factory=WebRtcVad, asr=_asr, tts=_tts)


@dataclass(frozen=True)
class LocalTurn:
    """One turn found by :class:`LocalTranscriber`: its span in stream audio time and its transcript.

    ``start_ms`` includes the prefix padding (as ``speech_started.audio_start_ms``); ``end_ms`` is the end of
    speech (as ``speech_stopped.audio_end_ms``); ``detected_ms`` is when the end was detected. Word times in
    ``transcript.words`` are relative to ``start_ms``.
    """

    start_ms: int
    end_ms: int
    transcript: Transcript
    detected_ms: int = 0

    def __iter__(self) -> Iterator[object]:  # (start_ms, end_ms, transcript) unpacking
        return iter((self.start_ms, self.end_ms, self.transcript))


class LocalTranscriber:
    """Turn detection plus recognition on one audio stream: the "local engine" sidecar.

    Audio is fed in chunks of any size (or a whole clip at once); turns come out as the turn detector closes
    them. Each turn is transcribed by a streaming recognizer that receives exactly the audio the service would
    commit: from ``speech_started.audio_ms`` (onset minus prefix padding) to ``speech_stopped.audio_ms``.

    Parameters
    ----------
    engines : EngineSet, optional
        Default: :func:`default_engines`.
    sample_rate : int
        Rate of the audio fed (24000 for the Realtime protocol).
    threshold, prefix_padding_ms, silence_duration_ms
        ``server_vad`` parameters, as in :class:`TurnDetector`.
    language : str, optional
        Passed to the ASR engine.
    """

    def __init__(
        self,
        engines: EngineSet | None = None,
        *,
        sample_rate: int = 24000,
        threshold: float = 0.5,
        prefix_padding_ms: int = 300,
        silence_duration_ms: int = 500,
        language: str | None = None,
    ) -> None:
        self.engines = engines if engines is not None else default_engines()
        self.sample_rate = sample_rate
        self.language = language
        self.detector = TurnDetector(
            self.engines.vad_factory(),
            threshold=threshold,
            prefix_padding_ms=prefix_padding_ms,
            silence_duration_ms=silence_duration_ms,
            sample_rate=sample_rate,
        )
        # Channel adaptation carried across this stream's turns (PocketSphinx only).
        self.context = AcousticContext()
        # audio not yet given to a recognizer (kept for the prefix padding)
        self._history = np.zeros(0, dtype=np.int16)
        self._history_start = 0  # absolute sample index of _history[0]
        self._n = 0  # samples fed
        self._rec: StreamingRecognizer | None = None
        self._turn_start_ms = 0

    def _ms_to_sample(self, ms: int) -> int:
        return ms * self.sample_rate // 1000

    def feed(self, pcm: np.ndarray) -> list[LocalTurn]:
        """Add audio and return the turns completed by it."""
        pcm = np.asarray(pcm)
        if pcm.ndim != 1 or pcm.dtype != np.int16:
            raise AudioError(
                "<local transcriber>", f"expected 1-D int16 samples, got dtype {pcm.dtype} shape {pcm.shape}"
            )
        self._n += len(pcm)
        self._history = np.concatenate([self._history, pcm])
        turns: list[LocalTurn] = []
        for ev in self.detector.feed(pcm):
            if ev.kind == "speech_started":
                self._start_turn(ev.audio_ms)
            else:
                turns.append(self._end_turn(ev))
        if self._rec is not None:
            self._forward(self._n)
        else:
            # Keep only what prefix padding (plus detection delay) can still reach back to.
            keep = self._ms_to_sample(self.detector.prefix_padding_ms + 1000)
            drop = max(0, len(self._history) - keep)
            self._history = self._history[drop:]
            self._history_start += drop
        return turns

    def _start_turn(self, start_ms: int) -> None:
        if isinstance(self.engines.asr, PocketSphinxAsr):
            self._rec = self.engines.asr.stream(language=self.language, context=self.context)
        else:
            self._rec = self.engines.asr.stream(language=self.language)
        self._turn_start_ms = start_ms
        start = max(self._ms_to_sample(start_ms), self._history_start)
        self._history = self._history[start - self._history_start :]
        self._history_start = start

    def _forward(self, upto: int) -> None:
        """Give the recognizer the audio of the open turn up to absolute sample ``upto``."""
        n = upto - self._history_start
        if n > 0:
            self._rec.accept(self._history[:n], self.sample_rate)
            self._history = self._history[n:]
            self._history_start = upto

    def _end_turn(self, ev: TurnEvent) -> LocalTurn:
        end = self._ms_to_sample(ev.audio_ms)
        self._forward(max(end, self._history_start))
        transcript = self._rec.finish()
        self._rec = None
        return LocalTurn(self._turn_start_ms, ev.audio_ms, transcript, ev.detected_ms)

    def flush(self) -> list[LocalTurn]:
        """End of stream: close and transcribe an open turn."""
        return [self._end_turn(ev) for ev in self.detector.flush()]

    def transcribe_clip(self, pcm: np.ndarray, *, chunk_ms: int = 0) -> list[LocalTurn]:
        """All turns of a whole clip (fed at once, or in ``chunk_ms`` chunks), then :meth:`flush`."""
        if isinstance(chunk_ms, bool) or not isinstance(chunk_ms, int) or chunk_ms < 0:
            raise ConfigError(f"chunk_ms must be a non-negative integer, got {chunk_ms!r}.")
        pcm = np.asarray(pcm)
        step = self._ms_to_sample(chunk_ms) if chunk_ms else max(len(pcm), 1)
        turns: list[LocalTurn] = []
        for i in range(0, len(pcm), step):
            turns += self.feed(pcm[i : i + step])
        return turns + self.flush()
