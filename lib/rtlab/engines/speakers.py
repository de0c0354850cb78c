"""Who is speaking: per-segment voice features and an online speaker tracker (layer: engines).

A deliberately small, transparent diarization method for the local engines, used wherever an offline surface must
label speakers (the Azure Speech emulator's ``SpeakerId``, a ``gpt-4o-transcribe-diarize`` emulation):

1. :func:`speaker_features` describes one segment of speech by its median pitch (``librosa.pyin`` over voiced
   frames, in semitones above 100 Hz) and its mean MFCC vector (coefficients 1-12 over voiced frames; c0, the
   level, is left out so loudness does not split a speaker).
2. :class:`SpeakerTracker` clusters segments online: a segment joins the nearest known speaker when the distance
   (:func:`speaker_distance`: pitch in units of ``pitch_scale_st`` semitones and MFCC in units of ``mfcc_scale``,
   combined as a Euclidean norm) is below ``threshold``; otherwise it opens a new speaker, up to
   ``max_speakers``. A speaker's centroid is the running mean of its segments. Labels are ``"A"``, ``"B"``, ... in
   order of first appearance.

Everything is deterministic (no random state); the result depends only on the segments and their order. The
defaults separate the bundled flite voices with a wide margin (same voice ≤ 0.85, different voices ≥ 1.8 on the
bundled clips); they are not tuned for real recordings, where a learned speaker embedding does far better.

Example
-------
>>> import soundfile as sf                                                   # doctest: +SKIP
>>> pcm, sr = sf.read("data/clips/dialogue.wav", dtype="int16")             # doctest: +SKIP
>>> tracker = SpeakerTracker(sample_rate=sr)                                # doctest: +SKIP
>>> [tracker.assign(pcm[a:b]) for a, b in segments]                         # doctest: +SKIP
['A', 'B', 'A', 'B']
"""

from __future__ import annotations

import string
import threading
from dataclasses import dataclass, field

import numpy as np

from rtlab.errors import AudioError, ConfigError

__all__ = ["SpeakerFeatures", "SpeakerTracker", "speaker_distance", "speaker_features", "warm_up"]

_FMIN_HZ = 60.0
_FMAX_HZ = 400.0
_N_MFCC = 13  # c0 .. c12; c0 (level) is dropped
_FRAME_S = 0.085  # analysis window (~2048 samples at 24 kHz): long enough for a 60 Hz period
_HOP_S = 0.021
_MIN_VOICED_FRAMES = 5  # fewer voiced frames than this: no pitch estimate
_LABELS = string.ascii_uppercase


@dataclass(frozen=True)
class SpeakerFeatures:
    """What :func:`speaker_features` measured on one segment.

    ``pitch_st`` is the median f0 of voiced frames in semitones above 100 Hz (NaN when too few frames were voiced);
    ``mfcc`` the mean of MFCC 1-12 over voiced frames (over all frames when none was voiced); ``voiced_s`` the
    voiced duration in seconds.
    """

    pitch_st: float
    mfcc: np.ndarray = field(repr=False)
    voiced_s: float

    @property
    def pitch_hz(self) -> float:
        """The median pitch in Hz (NaN when unknown)."""
        return float(100.0 * 2.0 ** (self.pitch_st / 12.0))


def _as_float(audio: np.ndarray, what: str) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise AudioError(f"<{what}>", f"expected mono 1-D samples, got shape {audio.shape}")
    if audio.dtype == np.int16:
        return audio.astype(np.float32) / 32768.0
    if np.issubdtype(audio.dtype, np.floating):
        return audio.astype(np.float32)
    raise AudioError(f"<{what}>", f"expected int16 or float samples, got dtype {audio.dtype}; convert with "
                                  ".astype(np.int16)")


def _check_rate(sample_rate: int) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer) or sample_rate < 8000:
        raise ConfigError(f"sample_rate must be an integer of at least 8000 Hz, got {sample_rate!r}",
                          field="sample_rate", fix="pass the rate of the audio, e.g. 24000 or 16000")
    return int(sample_rate)


def speaker_features(audio: np.ndarray, sample_rate: int) -> SpeakerFeatures:
    """Pitch and timbre of one speech segment.

    Parameters
    ----------
    audio : np.ndarray, shape (n,)
        Mono samples (int16, or float in [-1, 1]) of one speaker's segment.
    sample_rate : int
        Its rate in Hz (8000 or more).

    Returns
    -------
    SpeakerFeatures
    """
    import librosa

    sr = _check_rate(sample_rate)
    y = _as_float(audio, "speaker segment")
    frame = 1 << int(np.ceil(np.log2(_FRAME_S * sr)))
    hop = max(1, int(round(_HOP_S * sr)))
    mfcc = np.zeros(_N_MFCC - 1)
    if len(y) < frame:  # too short to say anything: a neutral point, no pitch
        return SpeakerFeatures(float("nan"), mfcc, 0.0)
    f0, voiced, _ = librosa.pyin(y, fmin=_FMIN_HZ, fmax=_FMAX_HZ, sr=sr, frame_length=frame, hop_length=hop)
    coeffs = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=_N_MFCC, n_fft=frame, hop_length=hop)[1:]
    n = min(coeffs.shape[1], len(voiced))
    voiced = np.asarray(voiced[:n], dtype=bool)
    f0 = np.asarray(f0[:n], dtype=float)
    n_voiced = int(voiced.sum())
    cols = coeffs[:, :n][:, voiced] if n_voiced else coeffs[:, :n]
    if cols.shape[1]:
        mfcc = cols.mean(axis=1)
    pitch = float("nan")
    if n_voiced >= _MIN_VOICED_FRAMES:
        pitch = float(12.0 * np.log2(np.nanmedian(f0[voiced]) / 100.0))
    return SpeakerFeatures(pitch, mfcc, n_voiced * hop / sr)


def speaker_distance(a: SpeakerFeatures, b: SpeakerFeatures, *, pitch_scale_st: float = 3.0,
                     mfcc_scale: float = 40.0) -> float:
    """Distance between two segments' features (or centroids); the pitch term drops out when either is NaN."""
    timbre = float(np.linalg.norm(a.mfcc - b.mfcc)) / mfcc_scale
    if np.isnan(a.pitch_st) or np.isnan(b.pitch_st):
        return timbre
    return float(np.hypot((a.pitch_st - b.pitch_st) / pitch_scale_st, timbre))


@dataclass
class _Speaker:
    label: str
    pitch_sum: float = 0.0
    n_pitch: int = 0
    mfcc_sum: np.ndarray = field(default_factory=lambda: np.zeros(_N_MFCC - 1))
    n: int = 0

    def centroid(self) -> SpeakerFeatures:
        pitch = self.pitch_sum / self.n_pitch if self.n_pitch else float("nan")
        return SpeakerFeatures(pitch, self.mfcc_sum / max(self.n, 1), 0.0)

    def add(self, f: SpeakerFeatures) -> None:
        if not np.isnan(f.pitch_st):
            self.pitch_sum += f.pitch_st
            self.n_pitch += 1
        self.mfcc_sum = self.mfcc_sum + f.mfcc
        self.n += 1


class SpeakerTracker:
    """Online speaker labels for a stream of speech segments (see the module docstring for the method).

    Parameters
    ----------
    sample_rate : int
        Rate of the segments given to :meth:`assign` and :meth:`peek`.
    threshold : float
        A segment farther than this from every known speaker opens a new one (while fewer than ``max_speakers``).
    max_speakers : int
        At most this many labels (1-26); beyond it a segment joins the nearest speaker.
    pitch_scale_st, mfcc_scale : float
        Units of the two distance terms (see :func:`speaker_distance`).

    Notes
    -----
    Thread-safe: a lock serializes :meth:`assign` and :meth:`peek`.
    """

    def __init__(self, sample_rate: int = 24000, *, threshold: float = 1.3, max_speakers: int = 8,
                 pitch_scale_st: float = 3.0, mfcc_scale: float = 40.0) -> None:
        self.sample_rate = _check_rate(sample_rate)
        if isinstance(max_speakers, bool) or not isinstance(max_speakers, int) or not 1 <= max_speakers <= 26:
            raise ConfigError(f"max_speakers must be an integer from 1 to 26, got {max_speakers!r}",
                              field="max_speakers")
        for name, value in (("threshold", threshold), ("pitch_scale_st", pitch_scale_st),
                            ("mfcc_scale", mfcc_scale)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"{name} must be a positive number, got {value!r}", field=name)
        self.threshold = float(threshold)
        self.max_speakers = max_speakers
        self.pitch_scale_st = float(pitch_scale_st)
        self.mfcc_scale = float(mfcc_scale)
        self._speakers: list[_Speaker] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"SpeakerTracker(sample_rate={self.sample_rate}, threshold={self.threshold}, "
                f"speakers={self.labels})")

    @property
    def labels(self) -> list[str]:
        """Labels handed out so far, in order of first appearance."""
        return [s.label for s in self._speakers]

    def features(self, audio: np.ndarray) -> SpeakerFeatures:
        """:func:`speaker_features` at this tracker's rate."""
        return speaker_features(audio, self.sample_rate)

    def _nearest(self, f: SpeakerFeatures) -> tuple[_Speaker | None, float]:
        best, best_d = None, float("inf")
        for s in self._speakers:  # first-appearance order breaks ties: deterministic
            d = speaker_distance(f, s.centroid(), pitch_scale_st=self.pitch_scale_st, mfcc_scale=self.mfcc_scale)
            if d < best_d:
                best, best_d = s, d
        return best, best_d

    def assign(self, audio: np.ndarray) -> str:
        """The label of the speaker of ``audio`` (one segment, int16 or float mono); updates the speakers."""
        return self.assign_features(self.features(audio))

    def assign_features(self, f: SpeakerFeatures) -> str:
        """:meth:`assign` for features already measured."""
        with self._lock:
            best, d = self._nearest(f)
            if best is None or (d > self.threshold and len(self._speakers) < self.max_speakers):
                best = _Speaker(_LABELS[len(self._speakers)])
                self._speakers.append(best)
            best.add(f)
            return best.label

    def peek(self, audio: np.ndarray) -> str | None:
        """The label :meth:`assign` would give now, without updating anything; None if it would be a new speaker."""
        f = self.features(audio)
        with self._lock:
            best, d = self._nearest(f)
            if best is None or (d > self.threshold and len(self._speakers) < self.max_speakers):
                return None
            return best.label

    def reset(self) -> None:
        """Forget every speaker."""
        with self._lock:
            self._speakers.clear()


_warm = threading.Event()
_warm_lock = threading.Lock()


def warm_up() -> None:
    """Import and compile what :func:`speaker_features` needs (librosa's lazy modules), once per process.

    The first call otherwise costs seconds, which would delay the first speaker-labelled result of a live session;
    and the lock keeps session threads from importing librosa's lazy modules at the same time.
    """
    if _warm.is_set():
        return
    with _warm_lock:
        if _warm.is_set():
            return
        t = np.arange(int(0.5 * 16000)) / 16000
        speaker_features((0.1 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), 16000)
        _warm.set()
