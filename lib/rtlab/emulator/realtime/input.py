"""The input audio buffer: client audio decoded, fed to the one local pipeline, turned into turn events.

Layer: emulator. Audio arrives as ``input_audio_buffer.append`` payloads (PCM16 24 kHz, or G.711 at 8 kHz), is
decoded to 24 kHz int16 and goes into ONE :class:`rtlab.engines.pipeline.LocalPipeline` per session: its VAD turns
(``server_vad``) or the client's commits (``turn_detection: null``), and its streaming recognizer, whose decode is
what the voice model "hears". The pipeline runs with ``include_silence=True``: a VAD turn's committed audio runs to
where the silence window elapsed, so ``speech_stopped.audio_end_ms`` includes it (documented: SDK
``input_audio_buffer_speech_stopped_event.py``).

``semantic_vad`` (an assumption of the emulator: the service's turn model is not public): the VAD waits up to the
eagerness's maximum (:data:`rtlab.protocol.defaults.SEMANTIC_VAD_MAX_WAIT_MS`), and ends the turn after a short
pause (:data:`SEMANTIC_PAUSE_MS`) when the stable text so far looks complete (its last word is not one that usually
continues a sentence). On a profile whose ``semantic_vad`` behaviour is ``silent`` (Azure, reported: livekit/agents
PR 6871) it is accepted but detects no turns: the client has to commit.

The buffer also remembers the wall time at which each audio position arrived (from the session's clock), so the
modelled timing can count from the true end of speech.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

import numpy as np

from rtlab import protocol as P
from rtlab.audio import Resampler, decode_g711
from rtlab.engines.base import EngineSet, Stability
from rtlab.engines.pipeline import LocalPipeline, PipelineEvent, VadParams
from rtlab.protocol.defaults import SEMANTIC_VAD_MAX_WAIT_MS

from .base import SAMPLE_RATE

__all__ = ["CONTINUATION_WORDS", "SEMANTIC_PAUSE_MS", "InputBuffer", "delay_stability"]

#: semantic_vad: the pause after which a turn whose text looks complete ends, per eagerness (assumed).
SEMANTIC_PAUSE_MS = {"high": 200, "auto": 400, "medium": 400, "low": 800}
#: Words after which a sentence usually goes on: a turn ending in one of them does not look complete (assumed).
CONTINUATION_WORDS = frozenset(
    "a an the and or but so because if then that which who to of in on at for with from by as is are was were "
    "my your our their his her its i we you they um uh er like".split()
)

#: gpt-realtime-whisper ``delay`` → the recognizer's stability: how long a word must have been stable (guard) and
#: how often hypotheses are compared. minimal streams earliest and is least accurate; xhigh waits longest (assumed
#: mapping; the SDK only says higher values trade latency for accuracy).
_DELAY_STABILITY = {
    "minimal": Stability(partial_interval_ms=40, guard_ms=0),
    "low": Stability(partial_interval_ms=80, guard_ms=100),
    "medium": Stability(partial_interval_ms=100, guard_ms=250),
    "high": Stability(partial_interval_ms=150, guard_ms=500),
    "xhigh": Stability(partial_interval_ms=200, guard_ms=900),
}


def delay_stability(delay: str | None) -> Stability | None:
    """The recognizer stability for a ``delay`` value (None: the engine's default)."""
    return _DELAY_STABILITY.get(delay) if delay else None


class InputBuffer:
    """The session's input audio: decoding, the local pipeline, arrival times, semantic VAD."""

    def __init__(self, engines: EngineSet, *, clock: Callable[[], float], recognize: bool = True) -> None:
        self.engines = engines
        self.clock = clock
        self.pipe = LocalPipeline(engines, vad=None, partials=False, sample_rate=SAMPLE_RATE, recognize=recognize,
                                  include_silence=True)
        self._g711: tuple[str, Resampler] | None = None
        self._fmt: Any = None
        self.semantic: str | None = None  # eagerness while semantic_vad decides turn ends
        # (audio_ms after an append, wall time it arrived): to find when the end of speech arrived.
        self._arrived_ms: list[float] = []
        self._arrived_at: list[float] = []
        self.arrival: float | None = None  # when the message being handled arrived (None: now)

    # -------------------------------------------------------------------------------------------- config
    def configure(self, audio_in: dict, *, streaming: bool, stability: Stability | None, recognize: bool,
                  semantic_silent: bool) -> None:
        """Apply the session's ``audio.input`` (turn detection, format) and what the transcription model needs."""
        td = audio_in.get("turn_detection") or None
        self.semantic = None
        vad: VadParams | None = None
        if td and td.get("type") == "server_vad":
            vad = VadParams(threshold=float(td.get("threshold", P.SERVER_VAD_DEFAULTS["threshold"])),
                            prefix_padding_ms=int(td.get("prefix_padding_ms",
                                                         P.SERVER_VAD_DEFAULTS["prefix_padding_ms"])),
                            silence_duration_ms=int(td.get("silence_duration_ms",
                                                           P.SERVER_VAD_DEFAULTS["silence_duration_ms"])))
        elif td and td.get("type") == "semantic_vad" and not semantic_silent:
            eagerness = str(td.get("eagerness") or "auto")
            self.semantic = eagerness
            vad = VadParams(threshold=P.SERVER_VAD_DEFAULTS["threshold"],
                            prefix_padding_ms=P.SERVER_VAD_DEFAULTS["prefix_padding_ms"],
                            silence_duration_ms=int(SEMANTIC_VAD_MAX_WAIT_MS.get(eagerness, 4000)))
        if vad != self.pipe.vad:
            self.pipe.configure(vad)
        self.pipe.partials = streaming or self.semantic is not None
        self.pipe.stability = stability
        self.pipe.recognize = recognize
        fmt = audio_in.get("format")
        if fmt != self._fmt:
            self._fmt = fmt
            self._g711 = None

    @property
    def vad_on(self) -> bool:
        return self.pipe.vad is not None

    @property
    def audio_ms(self) -> float:
        return self.pipe.audio_ms

    # --------------------------------------------------------------------------------------------- audio
    def decode(self, raw: bytes) -> np.ndarray:
        fmt = self._fmt or {}
        ftype = fmt.get("type", "audio/pcm") if isinstance(fmt, dict) else "audio/pcm"
        if ftype == "audio/pcm":
            return np.frombuffer(raw[: len(raw) - len(raw) % 2], dtype="<i2").astype(np.int16)
        law = "ulaw" if ftype == "audio/pcmu" else "alaw"
        if self._g711 is None or self._g711[0] != law:
            self._g711 = (law, Resampler(P.G711_RATE, SAMPLE_RATE))
        return self._g711[1].process(decode_g711(raw, law)).astype(np.int16)

    def feed(self, pcm: np.ndarray) -> list[PipelineEvent]:
        events = self.pipe.feed(pcm)
        self._arrived_ms.append(self.pipe.audio_ms)
        self._arrived_at.append(self.arrival if self.arrival is not None else self.clock())
        if len(self._arrived_ms) > 4096:  # keep the last minutes
            del self._arrived_ms[:2048], self._arrived_at[:2048]
        return events

    def semantic_turn_end(self) -> bool:
        """semantic_vad: True when the open turn should end now (a pause after text that looks complete)."""
        if self.semantic is None or not self.pipe.in_speech:
            return False
        last = self.pipe.last_speech_end_ms
        if last is None or self.pipe.audio_ms - last < SEMANTIC_PAUSE_MS.get(self.semantic, 400):
            return False
        words = self.pipe.stable_text.split()
        return bool(words) and words[-1].lower() not in CONTINUATION_WORDS

    def commit(self) -> list[PipelineEvent]:
        return self.pipe.commit()

    def clear(self) -> None:
        self.pipe.clear()

    def close(self) -> None:
        self.pipe.close()

    def arrived_at(self, audio_ms: float) -> float:
        """Wall time (session clock) at which the audio at ``audio_ms`` had arrived (now when unknown)."""
        k = bisect.bisect_left(self._arrived_ms, audio_ms - 1e-6)
        if k >= len(self._arrived_at):
            return self.clock()
        return self._arrived_at[k]
