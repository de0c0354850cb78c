"""Server-VAD turn segmentation: where speech starts and stops in an audio stream.

:class:`TurnDetector` reproduces the semantics of the Realtime API's ``server_vad`` turn detection on top of a
frame-level :class:`~rtlab.engines.base.Vad`, so the emulator and the local-engine sidecar cut turns the way the
service does, and a notebook can replay the same decision offline.

How the three ``server_vad`` parameters map
-------------------------------------------
``threshold`` (0..1, default 0.5)
    Each VAD frame (30 ms for :class:`~rtlab.engines.vad.WebRtcVad`) gets a speech probability ``p`` (WebRTC
    gives 0 or 1). The *smoothed* probability is the mean of ``p`` over the last ``smoothing_ms`` (default 210 ms,
    i.e. 7 frames; frames before the stream count as 0). A frame is *speech* when the smoothed probability is
    ``>= threshold`` (and > 0). With WebRTC and 7 frames, speech needs at least ``ceil(7 * threshold)`` speech
    frames among the last seven: threshold ≤ 1/7 → any one; the default 0.5 → four; > 6/7 → all seven. Higher
    threshold → less sensitive (short bursts of noise, WebRTC's false alarms while it adapts to a new stream's
    noise floor, no longer open a turn); the set of speech frames for a higher threshold is always a subset of the
    set for a lower one. Onsets are still placed at the first speech frame, not where the mean crossed.
``prefix_padding_ms`` (default 300)
    ``speech_started.audio_ms`` is the start of the first VAD frame that carried speech (the onset) minus the
    padding, clamped at 0 and at the end of the previous turn: it is where the committed audio of the turn starts.
``silence_duration_ms`` (default 500)
    After the last speech, a turn ends once ``silence_duration_ms`` of audio has followed the end of the last
    speech frame (measured at frame boundaries, so detection happens at most one frame later; with a
    ``silence_duration_ms`` shorter than the smoothing window, once the smoothed probability has fallen).
    ``speech_stopped.audio_ms`` is the end of the last frame whose own probability was ``>= threshold`` inside a
    speech window, so it is frame-accurate (0..30 ms after the true end of speech for WebRTC; no extra hangover).

All times are stream audio time: milliseconds since the first sample fed, at the stream's ``sample_rate``. Audio
at other rates than the VAD's (24 kHz for the Realtime protocol) is resampled with :class:`rtlab.audio.Resampler`
(soxr, chunking-independent), so feeding the same audio in any chunk sizes yields identical events.

Example
-------
>>> det = TurnDetector(silence_duration_ms=500)                 # doctest: +SKIP
>>> events = det.feed(pcm_24k) + det.flush()                    # doctest: +SKIP
>>> [(e.kind, e.audio_ms) for e in events]                      # doctest: +SKIP
[('speech_started', 210), ('speech_stopped', 2340)]
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

from rtlab.audio import Resampler
from rtlab.engines.base import Vad
from rtlab.engines.vad import WebRtcVad
from rtlab.errors import AudioError, ConfigError

__all__ = ["TurnDetector", "TurnEvent"]

TurnKind = Literal["speech_started", "speech_stopped"]


@dataclass(frozen=True)
class TurnEvent:
    """A turn boundary.

    Attributes
    ----------
    kind : {"speech_started", "speech_stopped"}
    audio_ms : int
        Stream audio time of the boundary (``audio_start_ms`` / ``audio_end_ms`` of the Realtime events).
    detected_ms : int
        Stream audio time at which the detector could decide it (the end of the frame that triggered it). The
        emulator sends the event once this much audio has arrived; ``detected_ms - audio_ms`` of a
        ``speech_stopped`` is about ``silence_duration_ms``.
    """

    kind: TurnKind
    audio_ms: int
    detected_ms: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("speech_started", "speech_stopped"):
            raise ValueError(
                f"TurnEvent.kind must be 'speech_started' or 'speech_stopped', got {self.kind!r}"
            )
        if self.audio_ms < 0:
            raise ValueError(f"TurnEvent.audio_ms must be >= 0, got {self.audio_ms!r}")


def _check_ms(name: str, value: object, *, upper: int = 60_000) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= upper:
        raise ConfigError(
            f"turn_detection.{name} must be an integer between 0 and {upper} ms, got {value!r}.", field=name
        )
    return int(value)


def _check_threshold(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.floating))
        or not 0.0 <= float(value) <= 1.0
    ):
        raise ConfigError(
            f"turn_detection.threshold must be a number between 0.0 and 1.0, got {value!r}.",
            field="threshold",
        )
    return float(value)


class TurnDetector:
    """Incremental server-VAD turn detection on an int16 mono stream.

    Parameters
    ----------
    vad : Vad, optional
        A frame-level detector owned by this turn detector (WebRTC VADs keep state across frames: use one per
        stream). Default: ``WebRtcVad()`` (aggressiveness 2, 30 ms frames, 16 kHz).
    threshold, prefix_padding_ms, silence_duration_ms
        The ``server_vad`` parameters; see the module docstring for how each maps.
    sample_rate : int
        Rate of the audio passed to :meth:`feed` (24000 for the Realtime protocol).
    smoothing_ms : int
        Length of the window the speech probability is averaged over before comparing with ``threshold``
        (rounded to whole VAD frames, at least one).
    """

    def __init__(
        self,
        vad: Vad | None = None,
        *,
        threshold: float = 0.5,
        prefix_padding_ms: int = 300,
        silence_duration_ms: int = 500,
        sample_rate: int = 24000,
        smoothing_ms: int = 210,
    ) -> None:
        self.vad: Vad = vad if vad is not None else WebRtcVad()
        if not isinstance(self.vad, Vad):
            raise ConfigError(
                f"vad must implement rtlab.engines.base.Vad (frame_ms, sample_rate, speech_prob), got {vad!r}."
            )
        self.configure(
            threshold=threshold, prefix_padding_ms=prefix_padding_ms, silence_duration_ms=silence_duration_ms
        )
        if (
            isinstance(sample_rate, bool)
            or not isinstance(sample_rate, (int, np.integer))
            or sample_rate <= 0
        ):
            raise ConfigError(
                f"sample_rate must be a positive integer in Hz, got {sample_rate!r}.", fix="use 24000"
            )
        self.sample_rate = int(sample_rate)
        smoothing_ms = _check_ms("smoothing_ms", smoothing_ms, upper=2000)
        self.frame_ms = int(self.vad.frame_ms)
        self._frame_samples = int(self.vad.sample_rate) * self.frame_ms // 1000
        self._window_frames = max(1, round(smoothing_ms / self.frame_ms))
        self._resampler = Resampler(self.sample_rate, int(self.vad.sample_rate))
        self._pending = np.zeros(0, dtype=np.int16)  # VAD-rate samples not yet framed
        self._n_in = 0  # input samples fed
        self._n_frames = 0  # VAD frames analysed
        self._window: deque[float] = deque(maxlen=self._window_frames)
        self._in_turn = False
        self._last_speech_end_ms = 0  # end of the last speech frame of the open (or last) turn
        # audio_ms of the last speech_stopped: the next turn cannot start before it
        self._last_turn_end_ms = 0

    def __repr__(self) -> str:
        return (
            f"TurnDetector(vad={self.vad!r}, threshold={self.threshold}, prefix_padding_ms={self.prefix_padding_ms}, "
            f"silence_duration_ms={self.silence_duration_ms}, sample_rate={self.sample_rate})"
        )

    def configure(
        self,
        *,
        threshold: float | None = None,
        prefix_padding_ms: int | None = None,
        silence_duration_ms: int | None = None,
    ) -> None:
        """Change the ``server_vad`` parameters mid-stream (e.g. after a ``session.update``); None keeps a value."""
        if threshold is not None:
            self.threshold = _check_threshold(threshold)
        if prefix_padding_ms is not None:
            self.prefix_padding_ms = _check_ms("prefix_padding_ms", prefix_padding_ms)
        if silence_duration_ms is not None:
            self.silence_duration_ms = _check_ms("silence_duration_ms", silence_duration_ms)

    @property
    def in_speech(self) -> bool:
        """True between a ``speech_started`` and its ``speech_stopped``."""
        return self._in_turn

    @property
    def last_speech_end_ms(self) -> int:
        """End of the last speech frame of the open (or last) turn, in stream audio time (ms)."""
        return self._last_speech_end_ms

    @property
    def audio_ms(self) -> float:
        """Stream audio time fed so far (ms)."""
        return self._n_in * 1000.0 / self.sample_rate

    @property
    def analysed_ms(self) -> int:
        """Stream audio time up to which frames have been analysed (ms); lags :attr:`audio_ms` by < 1 frame."""
        return self._n_frames * self.frame_ms

    def feed(self, pcm: np.ndarray) -> list[TurnEvent]:
        """Add audio (1-D int16 at ``sample_rate``, any length) and return the turn events it completed."""
        pcm = np.asarray(pcm)
        if pcm.ndim != 1 or pcm.dtype != np.int16:
            raise AudioError(
                "<turn detector input>",
                f"expected 1-D int16 samples at {self.sample_rate} Hz, got dtype {pcm.dtype} shape {pcm.shape}",
            )
        self._n_in += len(pcm)
        samples = self._resampler.process(pcm)
        if len(self._pending):
            samples = np.concatenate([self._pending, samples])
        n_full = len(samples) // self._frame_samples
        events: list[TurnEvent] = []
        for k in range(n_full):
            self._analyse(samples[k * self._frame_samples : (k + 1) * self._frame_samples], events)
        self._pending = samples[n_full * self._frame_samples :].copy()
        return events

    def flush(self) -> list[TurnEvent]:
        """End of stream (or of a server-VAD run): close an open turn at the end of its last speech frame.

        The detector stays usable; later audio continues on the same clock. The unanalysed tail (less than one
        VAD frame) does not count as speech.
        """
        # Analyse what the resampler still holds (soxr keeps ~20 ms back for its filter); later audio starts a
        # fresh resampler on the same clock.
        events: list[TurnEvent] = []
        tail = self._resampler.flush()
        self._resampler = Resampler(self.sample_rate, int(self.vad.sample_rate))
        samples = np.concatenate([self._pending, tail]) if len(self._pending) else tail
        n_full = len(samples) // self._frame_samples
        for k in range(n_full):
            self._analyse(samples[k * self._frame_samples : (k + 1) * self._frame_samples], events)
        self._pending = samples[n_full * self._frame_samples :].copy()
        if not self._in_turn:
            return events
        self._in_turn = False
        self._last_turn_end_ms = self._last_speech_end_ms
        self._window.clear()
        return events + [
            TurnEvent(
                "speech_stopped", self._last_speech_end_ms, max(self.analysed_ms, self._last_speech_end_ms)
            )
        ]

    def _analyse(self, frame: np.ndarray, events: list[TurnEvent]) -> None:
        index = self._n_frames
        self._n_frames += 1
        start_ms = index * self.frame_ms
        end_ms = start_ms + self.frame_ms
        prob = float(self.vad.speech_prob(frame))
        self._window.append(prob)
        smoothed = sum(self._window) / self._window_frames
        if smoothed > 0.0 and smoothed >= self.threshold:
            # Frames in the window whose own probability passes the threshold (the mean passing implies one does).
            backs = [back for back, p in enumerate(reversed(self._window)) if p >= self.threshold]
            latest_back, first_back = min(backs), max(backs)  # frames back from the current one
            latest_end = end_ms - latest_back * self.frame_ms
            if not self._in_turn:
                onset_ms = max(end_ms - (first_back + 1) * self.frame_ms, self._last_turn_end_ms)
                start = max(onset_ms - self.prefix_padding_ms, self._last_turn_end_ms, 0)
                events.append(TurnEvent("speech_started", start, end_ms))
                self._in_turn = True
                self._last_speech_end_ms = latest_end
            else:
                self._last_speech_end_ms = max(self._last_speech_end_ms, latest_end)
        elif self._in_turn and end_ms - self._last_speech_end_ms >= self.silence_duration_ms:
            self._in_turn = False
            self._last_turn_end_ms = self._last_speech_end_ms
            events.append(TurnEvent("speech_stopped", self._last_speech_end_ms, end_ms))
