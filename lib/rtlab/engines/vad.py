"""Frame-level voice activity detectors (implementations of :class:`rtlab.engines.base.Vad`).

:class:`WebRtcVad` wraps the WebRTC VAD (``webrtcvad-wheels``): a GMM classifier that says speech / not speech
for one 10, 20 or 30 ms frame at 8, 16, 32 or 48 kHz. Its answer is binary, so :meth:`WebRtcVad.speech_prob`
returns 1.0 or 0.0; the turn detector (:mod:`rtlab.engines.turns`) averages these over a short window and
compares the average with the session's ``threshold``. ``aggressiveness`` (0..3) is WebRTC's own knob: higher
rejects more non-speech (and some quiet speech).

Another detector (e.g. Silero VAD through onnxruntime, which returns a real probability) plugs in by
implementing the same two attributes and one method; none ships here because rtlab never downloads weights.
"""

from __future__ import annotations

import numpy as np
import webrtcvad

from rtlab.errors import AudioError, ConfigError

__all__ = ["WebRtcVad"]

_WEBRTC_RATES = (8000, 16000, 32000, 48000)
_WEBRTC_FRAMES = (10, 20, 30)


def _check_frame(frame: np.ndarray, n: int, who: str) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.int16 or frame.ndim != 1:
        raise AudioError(
            f"<{who} frame>", f"expected 1-D int16 samples, got dtype {frame.dtype} shape {frame.shape}"
        )
    if len(frame) != n:
        raise AudioError(f"<{who} frame>", f"expected exactly {n} samples per frame, got {len(frame)}")
    return frame


class WebRtcVad:
    """WebRTC voice activity detection on fixed frames; implements :class:`rtlab.engines.base.Vad`.

    Parameters
    ----------
    aggressiveness : int
        0 (least aggressive about filtering out non-speech) to 3 (most).
    frame_ms : int
        10, 20 or 30.
    sample_rate : int
        8000, 16000, 32000 or 48000 Hz. The turn detector resamples other rates (e.g. 24 kHz) to this one.
    """

    def __init__(self, aggressiveness: int = 2, frame_ms: int = 30, sample_rate: int = 16000) -> None:
        if aggressiveness not in (0, 1, 2, 3):
            raise ConfigError(
                f"aggressiveness must be 0, 1, 2 or 3, got {aggressiveness!r}.", field="aggressiveness"
            )
        if frame_ms not in _WEBRTC_FRAMES:
            raise ConfigError(
                f"frame_ms must be 10, 20 or 30 for WebRTC VAD, got {frame_ms!r}.", field="frame_ms"
            )
        if sample_rate not in _WEBRTC_RATES:
            raise ConfigError(
                f"sample_rate must be one of {_WEBRTC_RATES} for WebRTC VAD, got {sample_rate!r}.",
                field="sample_rate",
                fix="use 16000; TurnDetector resamples the stream to the VAD's rate",
            )
        self.aggressiveness = aggressiveness
        self.frame_ms = frame_ms
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate * frame_ms // 1000
        self._vad = webrtcvad.Vad(aggressiveness)

    def __repr__(self) -> str:
        return f"WebRtcVad(aggressiveness={self.aggressiveness}, frame_ms={self.frame_ms}, sample_rate={self.sample_rate})"

    def speech_prob(self, frame: np.ndarray) -> float:
        """1.0 if WebRTC classifies ``frame`` (``frame_ms`` of int16 at ``sample_rate``) as speech, else 0.0."""
        frame = _check_frame(frame, self.frame_samples, "WebRtcVad")
        return 1.0 if self._vad.is_speech(frame.tobytes(), self.sample_rate) else 0.0
