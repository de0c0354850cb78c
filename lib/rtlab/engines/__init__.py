"""Local speech engines (layer: engines): voice activity, turn detection, streaming recognition, synthesis.

Everything here runs offline with what the package installs (webrtcvad-wheels, the pocketsphinx wheel's en-us
model) plus the ``flite`` program (and, for translation, ``apertium`` and ``espeak-ng``); nothing downloads
weights. Names are imported lazily, so importing a module that
only needs :mod:`.base` or :mod:`.pipeline` types does not load pocketsphinx.

==================================  =====================================================================
:class:`~.vad.WebRtcVad`             frame-level speech / non-speech (WebRTC), one per stream
:class:`~.turns.TurnDetector`        server-VAD turns (threshold, prefix padding, silence duration)
:class:`~.asr.PocketSphinxAsr`       streaming ASR with append-only stable text; whole-utterance ``transcribe``
:class:`~.tts.FliteTts`              text to 24 kHz PCM16 speech, cached
:class:`~.espeak.EspeakTts`          text to 24 kHz PCM16 speech in many languages (espeak-ng), cached
:class:`~.translate.ApertiumTranslator`  offline text translation (Apertium), one language pair, batched
:class:`~.pipeline.LocalPipeline`    THE local pipeline: VAD turns (or caller commits) + streaming recognition,
                                     used by the emulator's endpoints and by the local sidecar alike
==================================  =====================================================================

Example
-------
>>> from rtlab.engines import default_engines, LocalPipeline          # doctest: +SKIP
>>> eng = default_engines()                                           # doctest: +SKIP
>>> pcm = eng.tts.synthesize("Hello there. How are you?")             # doctest: +SKIP
>>> events = LocalPipeline(eng).feed(pcm)                             # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .base import EngineSet

__all__ = [
    "ApertiumMissingError", "ApertiumTranslator", "EspeakMissingError", "EspeakTts", "LanguagePairMissingError",
    "Translator",
    "AcousticContext", "AsrEngine", "EngineSet", "FliteMissingError", "FliteTts", "LocalPipeline", "PocketSphinxAsr",
    "PocketSphinxStream", "Stability", "StreamingRecognizer", "Transcript", "TtsEngine", "TurnDetector", "TurnEvent",
    "Vad", "VadParams", "WebRtcVad", "Word", "default_engines", "flite_voices",
]

_LAZY = {
    "AcousticContext": "asr", "PocketSphinxAsr": "asr", "PocketSphinxStream": "asr",
    "AsrEngine": "base", "EngineSet": "base", "Stability": "base", "StreamingRecognizer": "base",
    "Transcript": "base", "TtsEngine": "base", "Vad": "base", "Word": "base",
    "FliteMissingError": "tts", "FliteTts": "tts", "flite_voices": "tts",
    "TurnDetector": "turns", "TurnEvent": "turns", "WebRtcVad": "vad",
    "LocalPipeline": "pipeline", "VadParams": "pipeline", "Translator": "base",
    "EspeakMissingError": "espeak", "EspeakTts": "espeak",
    "ApertiumMissingError": "translate", "ApertiumTranslator": "translate", "LanguagePairMissingError": "translate",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"rtlab.engines.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rtlab.engines' has no attribute {name!r}")


_lock = threading.Lock()
_shared: dict[str, Any] = {}


def default_engines() -> EngineSet:
    """The default engine set: a WebRTC VAD factory, PocketSphinx ASR (search pruned for capacity) and flite TTS.

    The ASR engine (its decoder pool) and the TTS engine (its cache) are built once per process and shared by
    every caller; a fresh ``EngineSet`` wrapper is returned each time. ``vad_factory()`` makes a new
    :class:`WebRtcVad` (VADs keep per-stream state).

    Raises
    ------
    FliteMissingError
        When the ``flite`` program is not installed (the message names the package).
    """
    from .asr import PocketSphinxAsr
    from .base import EngineSet
    from .tts import FliteTts
    from .vad import WebRtcVad

    with _lock:
        if "asr" not in _shared:
            # The decoder's search pruned (active HMMs and distinct words per frame): 35-65 % less CPU per stream
            # than PocketSphinx's defaults at the same WER on the bundled clips (bench emulator, issue 10).
            _shared["asr"] = PocketSphinxAsr(maxhmmpf=3000, maxwpf=5)
        if "tts" not in _shared:
            _shared["tts"] = FliteTts()
        return EngineSet(vad_factory=WebRtcVad, asr=_shared["asr"], tts=_shared["tts"])
