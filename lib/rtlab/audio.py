"""Audio in, audio out: load any file, convert to the wire formats, chunk, pace, and keep the audio clock.

The first stage of the data flow in DESIGN.md::

    file / array ──load()──► Audio (int16, explicit rate) ──chunks()──► Chunk ──pace()──► transport
                                                                         │
                                                               AudioClock.stamp(chunk)

* :func:`load` reads wav/flac/ogg/mp3 (and anything else libsndfile reads) with soundfile, other containers
  through librosa, mixes to mono and resamples with soxr. Bad input raises :class:`rtlab.errors.AudioError`
  with the path and a specific reason (missing, empty, truncated, not audio, NaN/Inf, unsupported format).
* :func:`encode` / :func:`decode` convert between :class:`Audio` and the Realtime input formats of
  :data:`rtlab.protocol.AUDIO_FORMATS` (PCM16 at 24 kHz, G.711 μ-law/A-law at 8 kHz). :func:`encode_g711` and
  :func:`decode_g711` are the ITU-T G.711 companders (the same algorithms as the reference ``g711.c``).
* :class:`AudioClock` remembers, for every chunk sent, its audio offset and the monotonic wall time it left, so
  any server event (stamped in wall time) can be placed in audio time and back.
* :func:`pace` (async) and :func:`iter_paced` (sync) release chunks at real time × ``speed`` against one start
  time, so pacing never drifts however late individual sleeps wake up.

Example
-------
>>> from rtlab import audio, data
>>> a = audio.load(data.clip_path("short"))
>>> a.sample_rate, a.samples.dtype
(24000, dtype('int16'))
>>> first = next(audio.chunks(a, chunk_ms=40))
>>> first.n_samples, first.offset_ms, len(first.payload)
(960, 0.0, 1920)
"""

from __future__ import annotations

import asyncio
import bisect
import math
import os
import re
import time
import warnings
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Union

import numpy as np

from .errors import AudioError, ConfigError
from .protocol import AUDIO_FORMATS

__all__ = [
    "Audio",
    "AudioClock",
    "Chunk",
    "chunks",
    "concat",
    "decode",
    "decode_g711", "resample", "Resampler",
    "encode",
    "encode_g711",
    "iter_paced",
    "load",
    "pace",
    "peaks",
    "save",
    "silence",
]

#: int16 full scale used for every int16 <-> float conversion (the soundfile/libsndfile convention, so an
#: int16 file read as float and written back is bit-exact).
_FULL_SCALE = 32768.0

AudioSource = Union[str, os.PathLike, "Audio", tuple]
G711Law = Literal["ulaw", "alaw"]

# Suffixes that libsndfile does not read but librosa may (through audioread: ffmpeg or GStreamer).
#: What a file that libsndfile cannot open claims to be, by its suffix (for the error message).
_SUFFIX_CONTAINERS = {".wav": "wav", ".wave": "wav", ".flac": "flac", ".ogg": "ogg", ".oga": "ogg",
                      ".aiff": "aiff", ".aif": "aiff", ".mp3": "mp3"}
_FALLBACK_SUFFIXES = frozenset(
    {".m4a", ".aac", ".mp4", ".m4b", ".webm", ".wma", ".opus", ".amr", ".3gp", ".mka"}
)


# --------------------------------------------------------------------------------------------------
# The Audio value
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Audio:
    """Audio samples with their rate: int16, shape ``(n,)`` (mono) or ``(n, channels)``.

    Parameters
    ----------
    samples : np.ndarray
        int16 samples; held as a read-only view so an ``Audio`` can be shared safely.
    sample_rate : int
        Samples per second (per channel).
    path : str or None
        Where the samples came from, for messages and references (``None`` for in-memory audio).
    """

    samples: np.ndarray
    sample_rate: int
    path: str | None = None

    def __post_init__(self) -> None:
        s = self.samples
        if not isinstance(s, np.ndarray) or s.dtype != np.int16 or s.ndim not in (1, 2):
            raise TypeError(
                f"Audio.samples must be an int16 numpy array of shape (n,) or (n, channels); got "
                f"{type(s).__name__} {getattr(s, 'dtype', '')} {getattr(s, 'shape', '')}. Use rtlab.audio.load((array, sr))."
            )
        if (
            isinstance(self.sample_rate, bool)
            or not isinstance(self.sample_rate, (int, np.integer))
            or self.sample_rate <= 0
        ):
            raise ValueError(f"Audio.sample_rate must be a positive int; got {self.sample_rate!r}")
        if s.flags.writeable:
            # A read-only view: the Audio cannot change its samples, and the caller's array stays writable.
            s = s.view()
            s.flags.writeable = False
            object.__setattr__(self, "samples", s)
        object.__setattr__(self, "sample_rate", int(self.sample_rate))

    @property
    def n_samples(self) -> int:
        """Number of sample frames (per channel)."""
        return int(self.samples.shape[0])

    @property
    def channels(self) -> int:
        return 1 if self.samples.ndim == 1 else int(self.samples.shape[1])

    @property
    def duration_ms(self) -> float:
        """Duration in milliseconds."""
        return self.n_samples * 1000.0 / self.sample_rate

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sample_rate

    def pcm16(self) -> bytes:
        """Little-endian PCM16 bytes (channels interleaved), as the Realtime ``pcm16`` format expects."""
        return self.samples.astype("<i2", copy=False).tobytes()

    def to_float(self) -> np.ndarray:
        """Samples as float32 in [-1, 1)."""
        return self.samples.astype(np.float32) / np.float32(_FULL_SCALE)

    def slice_ms(self, start_ms: float, end_ms: float | None = None) -> Audio:
        """The part between ``start_ms`` and ``end_ms`` (clamped to the audio)."""
        a = max(0, int(round(start_ms * self.sample_rate / 1000.0)))
        b = self.n_samples if end_ms is None else max(a, int(round(end_ms * self.sample_rate / 1000.0)))
        return Audio(self.samples[a:b], self.sample_rate, self.path)

    def resample(self, sample_rate: int) -> Audio:
        """The same audio at ``sample_rate`` (soxr high quality); ``self`` when the rate already matches."""
        if sample_rate == self.sample_rate:
            return self
        return Audio(
            resample(self.samples, self.sample_rate, sample_rate), sample_rate, self.path
        )

    def __repr__(self) -> str:
        where = f", path={self.path!r}" if self.path else ""
        return f"Audio({self.duration_ms:.0f} ms, {self.sample_rate} Hz, {self.channels} ch{where})"


def _to_int16(y: np.ndarray) -> np.ndarray:
    """float in [-1, 1] -> int16 (rounded, clipped)."""
    return np.clip(np.rint(np.asarray(y, dtype=np.float64) * _FULL_SCALE), -32768, 32767).astype(np.int16)


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample along axis 0 with soxr (high quality): the one batch resampler of rtlab.

    int16 in gives int16 out (rounded, clipped); float in gives float64 out. The output has exactly
    ``round(n * target_sr / orig_sr)`` samples, so offsets computed from durations stay exact.

    >>> resample(np.zeros(24000, np.int16), 24000, 16000).shape
    (16000,)
    """
    import soxr

    _check_rate("orig_sr", orig_sr)
    _check_rate("target_sr", target_sr)
    y = np.asarray(y)
    if orig_sr == target_sr or y.shape[0] == 0:
        return y.copy()
    as_int = y.dtype == np.int16
    x = y.astype(np.float64) / _FULL_SCALE if as_int else y.astype(np.float64, copy=False)
    out = soxr.resample(x, orig_sr, target_sr, quality="HQ")
    n_out = (y.shape[0] * target_sr + orig_sr // 2) // orig_sr
    if out.shape[0] != n_out:  # soxr rounds the length its own way: pad or cut to the exact count
        pad = [(0, max(0, n_out - out.shape[0]))] + [(0, 0)] * (out.ndim - 1)
        out = np.pad(out, pad)[:n_out]
    return _to_int16(out) if as_int else out


class Resampler:
    """Streaming soxr resampler of int16 mono audio: the one streaming resampler of rtlab.

    :meth:`process` takes any chunk and returns the resampled samples that are ready; :meth:`flush` returns the
    rest at the end of the stream. The output does not depend on how the input was chunked (soxr runs in float
    here; its int16 path rounds differently at chunk boundaries), so feeding the same audio in any chunk sizes
    gives identical samples, which the turn detector relies on.

    >>> r = Resampler(24000, 16000)
    >>> out = np.concatenate([r.process(np.zeros(480, np.int16)), r.flush()])
    >>> out.shape, out.dtype
    ((320,), dtype('int16'))
    """

    def __init__(self, orig_sr: int, target_sr: int) -> None:
        import soxr

        self.orig_sr = _check_rate("orig_sr", orig_sr)
        self.target_sr = _check_rate("target_sr", target_sr)
        self._same = orig_sr == target_sr
        self._stream = None if self._same else soxr.ResampleStream(orig_sr, target_sr, 1, dtype="float32",
                                                                     quality="HQ")

    def __repr__(self) -> str:
        return f"Resampler({self.orig_sr} -> {self.target_sr} Hz)"

    def _check(self, pcm: np.ndarray) -> np.ndarray:
        pcm = np.asarray(pcm)
        if pcm.ndim != 1 or pcm.dtype != np.int16:
            raise AudioError("<resampler input>", f"expected 1-D int16 samples, got dtype {pcm.dtype} "
                                                  f"shape {pcm.shape}")
        return pcm

    def process(self, pcm: np.ndarray, *, last: bool = False) -> np.ndarray:
        """Resample the next chunk (1-D int16); returns the int16 samples ready so far (with ``last=True``, also
        the rest still inside the filter: the stream ends)."""
        pcm = self._check(pcm)
        if self._same:
            return pcm.copy()
        out = self._stream.resample_chunk(pcm.astype(np.float32) / np.float32(_FULL_SCALE), last=last)
        return _to_int16(out)

    def flush(self) -> np.ndarray:
        """End of stream: the samples still inside the filter."""
        if self._same:
            return np.zeros(0, dtype=np.int16)
        return self.process(np.zeros(0, np.int16), last=True)


def _check_rate(name: str, rate: object) -> int:
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise AudioError(f"<{name}>", f"sample rate must be a positive integer in Hz, got {rate!r}; "
                                      "pass e.g. 24000 or 16000")
    return int(rate)


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------
def load(source: AudioSource, *, sample_rate: int | None = 24000, mono: bool = True) -> Audio:
    """Load audio from a file, an :class:`Audio`, or an in-memory ``(array, sample_rate)`` pair.

    Parameters
    ----------
    source : str, os.PathLike, Audio or tuple
        A path (wav, flac, ogg, mp3 and every other format libsndfile reads; m4a/aac/webm/... through librosa
        when an ffmpeg or GStreamer backend is present), or ``(array, sample_rate)``. An array may be int16,
        int32 or float in [-1, 1]; shape ``(n,)``, ``(n, channels)`` or ``(channels, n)`` (the channel axis is
        the shorter one).
    sample_rate : int or None
        Target rate; ``None`` keeps the native rate. Default 24000 (the Realtime PCM16 rate).
    mono : bool
        Mix all channels down to one (mean). Default True.

    Returns
    -------
    Audio
        int16 samples at ``sample_rate``.

    Raises
    ------
    AudioError
        The path and the reason: ``file not found``, ``empty file (0 bytes)``, ``contains no audio samples``,
        ``truncated ...``, ``not an audio file (soundfile: ...)``, ``contains N NaN samples ...``,
        ``unsupported format ...``.
    """
    if sample_rate is not None and (
        isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0
    ):
        raise ValueError(f"sample_rate must be a positive int or None; got {sample_rate!r}")
    if isinstance(source, Audio):
        y = source.to_float() if source.samples.ndim == 2 else source.to_float()[:, None]
        return _finish(y, source.sample_rate, source.path, sample_rate, mono, already_int16=source)
    if isinstance(source, tuple):
        y, sr, label = _from_array(source)
        return _finish(y, sr, label, sample_rate, mono)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            f"load() takes a path, an Audio or an (array, sample_rate) tuple; got {type(source).__name__}"
        )
    path = Path(source)
    y, sr = _read_file(path)
    return _finish(y, sr, str(path), sample_rate, mono)


def _finish(
    y: np.ndarray,
    sr: int,
    label: str | None,
    sample_rate: int | None,
    mono: bool,
    already_int16: Audio | None = None,
) -> Audio:
    """float (n, ch) at ``sr`` -> Audio, mixing and resampling as asked."""
    target = sr if sample_rate is None else sample_rate
    if already_int16 is not None and target == sr and (not mono or already_int16.channels == 1):
        return already_int16
    if mono:
        y = y.mean(axis=1) if y.shape[1] > 1 else y[:, 0]
    elif y.shape[1] == 1:
        y = y[:, 0]
    y = resample(y, sr, target)
    return Audio(_to_int16(y), target, label)


def _from_array(pair: tuple) -> tuple[np.ndarray, int, str | None]:
    label = "<array>"
    if len(pair) != 2:
        raise TypeError(f"an in-memory source is (array, sample_rate); got a tuple of length {len(pair)}")
    arr, sr = pair
    arr = np.asarray(arr)
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise AudioError(label, f"sample rate must be a positive int, got {sr!r}")
    if arr.ndim not in (1, 2):
        raise AudioError(label, f"expected shape (n,), (n, channels) or (channels, n); got {arr.shape}")
    if arr.ndim == 2 and arr.shape[0] < arr.shape[1]:
        arr = arr.T  # librosa's (channels, n) -> (n, channels)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.shape[0] == 0:
        raise AudioError(label, "contains no audio samples (0 frames)")
    if arr.dtype == np.int16:
        y = arr.astype(np.float64) / _FULL_SCALE
    elif arr.dtype == np.int32:
        y = arr.astype(np.float64) / 2.0**31
    elif np.issubdtype(arr.dtype, np.floating):
        y = arr.astype(np.float64)
        _check_finite(label, y)
        y = np.clip(y, -1.0, 1.0)
    else:
        raise AudioError(label, f"unsupported sample type {arr.dtype}; pass int16, int32 or float in [-1, 1]")
    return y, int(sr), label


def _check_finite(label: str, y: np.ndarray) -> None:
    flat = y.reshape(-1)
    for name, bad in (("NaN", np.isnan(flat)), ("Inf", np.isinf(flat))):
        n = int(bad.sum())
        if n:
            first = int(np.argmax(bad)) // (y.shape[1] if y.ndim == 2 else 1)
            raise AudioError(
                label, f"contains {n} {name} samples (first at frame {first}); clean or re-export the file"
            )


def _read_file(path: Path) -> tuple[np.ndarray, int]:
    """Read ``path`` as float64 (n, channels) with its native rate, or raise AudioError with the reason."""
    import soundfile as sf

    if not path.exists():
        raise AudioError(path, "file not found; check the path (bundled clips: rtlab.data.clip_path(name))")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    size = path.stat().st_size
    if size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    container = _container(path) or _SUFFIX_CONTAINERS.get(path.suffix.lower())
    if container == "wav":
        _check_truncated(path)
    try:
        with sf.SoundFile(str(path)) as f:
            declared = f.frames
            sr = f.samplerate
            y = f.read(dtype="float64", always_2d=True)
    except sf.LibsndfileError as exc:
        return _read_fallback(path, container, exc)
    except (RuntimeError, sf.SoundFileError) as exc:  # decoder errors mid-stream
        raise AudioError(
            path, f"truncated or corrupt {container or 'audio'} file (soundfile: {exc})"
        ) from None
    if y.shape[0] == 0:
        raise AudioError(path, "contains no audio samples (0 frames)")
    if declared > 0 and y.shape[0] < declared:
        raise AudioError(
            path, f"truncated: the header declares {declared} frames but only {y.shape[0]} could be decoded"
        )
    _check_finite(str(path), y)
    return np.clip(y, -1.0, 1.0), int(sr)


def _read_fallback(path: Path, container: str | None, exc: Exception) -> tuple[np.ndarray, int]:
    msg = str(exc).split(": ", 1)[-1] if "Error opening" in str(exc) else str(exc)
    suffix = path.suffix.lower()
    if "Format not recognised" in msg and suffix not in _FALLBACK_SUFFIXES:
        raise AudioError(path, f"not an audio file (soundfile: {msg})") from None
    if container is not None:
        if "unimplemented" in msg or "fmt " in msg:
            reason = f"unsupported format: a {container} file with an encoding libsndfile cannot decode (soundfile: {msg})"
        else:
            reason = f"truncated or corrupt {container} file (soundfile: {msg})"
        raise AudioError(path, reason) from None
    if suffix in _FALLBACK_SUFFIXES:
        import librosa

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y, sr = librosa.load(str(path), sr=None, mono=False, dtype=np.float64)
        except Exception as exc2:  # audioread raises many unrelated types
            detail = type(exc2).__name__ + (f": {exc2}" if str(exc2) else "")
            raise AudioError(
                path,
                f"unsupported format '{suffix}': no decoder could read it (librosa: {detail}); "
                "install ffmpeg or convert it to WAV/FLAC",
            ) from None
        y = np.atleast_2d(y).T
        if y.shape[0] == 0:
            raise AudioError(path, "contains no audio samples (0 frames)")
        _check_finite(str(path), y)
        return np.clip(y, -1.0, 1.0), int(sr)
    raise AudioError(path, f"not an audio file (soundfile: {msg})") from None


def _container(path: Path) -> str | None:
    """The container libsndfile reports for ``path`` (``"wav"``, ``"flac"``, ``"ogg"`` ...), or None."""
    import soundfile as sf

    try:
        return str(sf.info(str(path)).format).lower()
    except Exception:  # noqa: BLE001 - not a file libsndfile knows: the caller explains
        return None


_SHOULD_BE = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.M)


def _check_truncated(path: Path) -> None:
    """A WAV cut short: libsndfile reads it silently, but its log says ``data : N (should be M)``."""
    import soundfile as sf

    try:
        log = sf.info(str(path)).extra_info
    except Exception:  # noqa: BLE001
        return
    m = _SHOULD_BE.search(log)
    if m and int(m.group(2)) < int(m.group(1)):
        raise AudioError(path, f"truncated: the WAV header declares {m.group(1)} data bytes but the file holds "
                               f"{m.group(2)}")


def save(audio: Audio, path: str | os.PathLike) -> Path:
    """Write ``audio`` as a PCM16 WAV file and return the path."""
    import soundfile as sf

    path = Path(path)
    sf.write(str(path), audio.samples, audio.sample_rate, subtype="PCM_16", format="WAV")
    return path


# --------------------------------------------------------------------------------------------------
# Building audio
# --------------------------------------------------------------------------------------------------
def silence(ms: float, sample_rate: int = 24000) -> Audio:
    """``ms`` milliseconds of digital silence (mono int16)."""
    if ms < 0 or not math.isfinite(ms):
        raise ValueError(f"silence length must be a finite number of ms >= 0; got {ms!r}")
    return Audio(np.zeros(int(round(ms * sample_rate / 1000.0)), dtype=np.int16), sample_rate)


def concat(*parts: Audio | Sequence[Audio]) -> Audio:
    """Join audio end to end. All parts must share the sample rate and channel count.

    ``concat(a, b, c)`` and ``concat([a, b, c])`` are the same.
    """
    if len(parts) == 1 and not isinstance(parts[0], Audio):
        parts = tuple(parts[0])
    if not parts:
        raise ValueError("concat() needs at least one Audio")
    rates = {p.sample_rate for p in parts}
    if len(rates) > 1:
        raise ValueError(
            f"concat() parts have different sample rates {sorted(rates)}; resample first: part.resample({parts[0].sample_rate})"
        )
    chans = {p.channels for p in parts}
    if len(chans) > 1:
        raise ValueError(
            f"concat() parts have different channel counts {sorted(chans)}; load them with mono=True"
        )
    return Audio(np.concatenate([p.samples for p in parts]), parts[0].sample_rate, None)


def peaks(samples: np.ndarray | Audio, n_bins: int) -> np.ndarray:
    """Min and max of each of ``n_bins`` equal slices of a mono signal, for drawing a waveform.

    Parameters
    ----------
    samples : np.ndarray or Audio
        Mono samples, shape ``(n,)``. int16 input is scaled to [-1, 1); float input is kept as is.
    n_bins : int
        Number of bins (pixels). Bins that receive no sample (``n < n_bins``) are 0.

    Returns
    -------
    np.ndarray
        float32, shape ``(n_bins, 2)``: column 0 the minimum, column 1 the maximum of each bin.
    """
    if isinstance(samples, Audio):
        samples = samples.samples
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ValueError(
            f"peaks() takes mono samples of shape (n,); got {x.shape}. Use load(..., mono=True)."
        )
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins <= 0:
        raise ValueError(f"n_bins must be a positive int; got {n_bins!r}")
    x = (
        x.astype(np.float32) / np.float32(_FULL_SCALE)
        if np.issubdtype(x.dtype, np.integer)
        else x.astype(np.float32)
    )
    out = np.zeros((n_bins, 2), dtype=np.float32)
    n = x.shape[0]
    if n == 0:
        return out
    edges = (np.arange(n_bins + 1, dtype=np.int64) * n) // n_bins
    starts, ends = edges[:-1], edges[1:]
    full = ends > starts
    idx = starts[full]
    out[full, 0] = np.minimum.reduceat(x, idx)
    out[full, 1] = np.maximum.reduceat(x, idx)
    return out


# --------------------------------------------------------------------------------------------------
# G.711 (through libsndfile's codec)
# --------------------------------------------------------------------------------------------------
_G711_SUBTYPES = {"ulaw": "ULAW", "alaw": "ALAW"}


def _check_law(law: str) -> str:
    if law not in _G711_SUBTYPES:
        raise ValueError(f"G.711 law must be 'ulaw' or 'alaw'; got {law!r}")
    return _G711_SUBTYPES[law]


def encode_g711(pcm: np.ndarray, law: G711Law) -> bytes:
    """Compress int16 samples to G.711 bytes (one byte per sample), with libsndfile's codec.

    Parameters
    ----------
    pcm : np.ndarray
        int16 samples, shape ``(n,)`` (any rate; G.711 on the wire is 8 kHz).
    law : {"ulaw", "alaw"}
        μ-law (North America, Japan) or A-law (Europe).

    Notes
    -----
    Decoding is bit-exact with the ITU reference (Sun's g711.c, as in CPython's audioop). libsndfile's encoder
    quantizes a few input values (0.6 % of μ-law, 0.2 % of A-law inputs) into the neighbouring code; the
    difference is one quantization step and inaudible (tests/test_audio.py checks both facts).
    """
    import io

    import soundfile as sf

    subtype = _check_law(law)
    x = np.asarray(pcm)
    if x.dtype != np.int16:
        raise TypeError(f"encode_g711() takes int16 samples; got {x.dtype}. Use rtlab.audio.load() first.")
    buf = io.BytesIO()
    sf.write(buf, x.reshape(-1), 8000, format="RAW", subtype=subtype)
    return buf.getvalue()


def decode_g711(data: bytes | bytearray | memoryview, law: G711Law) -> np.ndarray:
    """Expand G.711 bytes to int16 samples (a new, writable array), with libsndfile's codec."""
    import io

    import soundfile as sf

    subtype = _check_law(law)
    raw = bytes(data)
    if not raw:
        return np.zeros(0, dtype=np.int16)
    y, _ = sf.read(io.BytesIO(raw), samplerate=8000, channels=1, format="RAW", subtype=subtype, dtype="int16")
    return np.asarray(y, dtype=np.int16).reshape(-1)


# --------------------------------------------------------------------------------------------------
# Wire formats
# --------------------------------------------------------------------------------------------------
def _format(fmt: str):
    try:
        return AUDIO_FORMATS[fmt]
    except KeyError:
        raise ConfigError(
            f"unknown audio format {fmt!r}.", field="format", fix=f"use one of {', '.join(AUDIO_FORMATS)}."
        ) from None


def _payload(samples: np.ndarray, fmt: str) -> bytes:
    if fmt == "pcm16":
        return samples.astype("<i2", copy=False).tobytes()
    return encode_g711(samples, "ulaw" if fmt == "g711_ulaw" else "alaw")


def _mono_at(audio: Audio, rate: int) -> Audio:
    if audio.channels != 1:
        audio = load(audio, sample_rate=None, mono=True)
    return audio.resample(rate)


def encode(audio: Audio, fmt: str = "pcm16") -> bytes:
    """``audio`` as the bytes of a Realtime input format, resampled to that format's rate and mixed to mono.

    ``"pcm16"`` is little-endian int16 at 24 kHz; ``"g711_ulaw"`` / ``"g711_alaw"`` one byte per sample at 8 kHz.
    """
    f = _format(fmt)
    return _payload(_mono_at(audio, f.sample_rate).samples, fmt)


def decode(data: bytes | bytearray | memoryview, fmt: str = "pcm16") -> tuple[np.ndarray, int]:
    """Bytes of a Realtime input format -> ``(int16 samples, sample_rate)``.

    Raises
    ------
    AudioError
        ``pcm16`` data with an odd number of bytes (a torn sample).
    """
    f = _format(fmt)
    if fmt == "pcm16":
        if len(data) % 2:
            raise AudioError(
                "<pcm16 bytes>", f"odd number of bytes ({len(data)}): PCM16 needs 2 bytes per sample"
            )
        return np.frombuffer(bytes(data), dtype="<i2").astype(np.int16), f.sample_rate
    return decode_g711(data, "ulaw" if fmt == "g711_ulaw" else "alaw"), f.sample_rate


# --------------------------------------------------------------------------------------------------
# Chunks
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Chunk:
    """One piece of audio ready to send: where it sits in the audio and its encoded bytes.

    ``offset_samples`` and ``n_samples`` count samples at ``sample_rate`` (the format's rate).
    """

    index: int
    offset_samples: int
    n_samples: int
    sample_rate: int
    fmt: str
    payload: bytes

    @property
    def offset_ms(self) -> float:
        return self.offset_samples * 1000.0 / self.sample_rate

    @property
    def duration_ms(self) -> float:
        return self.n_samples * 1000.0 / self.sample_rate

    @property
    def end_ms(self) -> float:
        return (self.offset_samples + self.n_samples) * 1000.0 / self.sample_rate

    def __repr__(self) -> str:
        return f"Chunk(#{self.index}, {self.offset_ms:.1f}–{self.end_ms:.1f} ms, {self.fmt}, {len(self.payload)} bytes)"


def chunks(audio: Audio, *, chunk_ms: float = 40, fmt: str = "pcm16") -> Iterator[Chunk]:
    """Cut ``audio`` into consecutive chunks of ``chunk_ms`` in format ``fmt`` (the last one may be shorter).

    The audio is mixed to mono and resampled to the format's rate once, then sliced, so offsets are exact
    sample counts at that rate: ``chunk.offset_samples`` of chunk k+1 is the end of chunk k.
    """
    f = _format(fmt)
    per = int(round(chunk_ms * f.sample_rate / 1000.0))
    if not math.isfinite(chunk_ms) or per <= 0:
        raise ValueError(f"chunk_ms must give at least one sample at {f.sample_rate} Hz; got {chunk_ms!r}")
    samples = _mono_at(audio, f.sample_rate).samples
    for i, start in enumerate(range(0, samples.shape[0], per)):
        part = samples[start : start + per]
        yield Chunk(i, start, int(part.shape[0]), f.sample_rate, fmt, _payload(part, fmt))


# --------------------------------------------------------------------------------------------------
# The audio clock
# --------------------------------------------------------------------------------------------------
class AudioClock:
    """Which audio had been sent by when: one (audio start, audio end, wall time) record per chunk.

    Wall times are ``time.monotonic()`` seconds (or whatever ``time_fn`` returns). Several sessions fed from
    the same chunks share one clock, so their events line up in audio time.

    Parameters
    ----------
    time_fn : callable
        Source of wall time for :meth:`stamp` when no explicit time is given (inject a fake one in tests).
    """

    def __init__(self, *, time_fn: Callable[[], float] = time.monotonic) -> None:
        self._time_fn = time_fn
        self._start_ms: list[float] = []
        self._end_ms: list[float] = []
        self._wall: list[float] = []

    def stamp(self, chunk: Chunk, wall: float | None = None) -> float:
        """Record that ``chunk`` is being sent now (or at ``wall``); returns the wall time recorded.

        Chunks must be stamped in audio order and in time order; anything else is a bug in the caller.
        """
        t = self._time_fn() if wall is None else float(wall)
        if self._wall:
            if chunk.offset_ms < self._end_ms[-1] - 1e-9:
                raise ValueError(
                    f"chunk #{chunk.index} starts at {chunk.offset_ms:.3f} ms, before the end of the audio already "
                    f"sent ({self._end_ms[-1]:.3f} ms): stamp chunks in order, once each"
                )
            if t < self._wall[-1]:
                raise ValueError(f"wall time went backwards ({t} < {self._wall[-1]}): use a monotonic clock")
        self._start_ms.append(chunk.offset_ms)
        self._end_ms.append(chunk.end_ms)
        self._wall.append(t)
        return t

    def __len__(self) -> int:
        return len(self._wall)

    @property
    def start_wall(self) -> float | None:
        """Wall time of the first chunk sent (``None`` before any)."""
        return self._wall[0] if self._wall else None

    @property
    def sent_ms(self) -> float:
        """Audio sent so far, in ms (the end of the last chunk)."""
        return self._end_ms[-1] if self._end_ms else 0.0

    def audio_ms_at(self, wall: float | np.ndarray) -> float | np.ndarray:
        """Audio position (ms) sent by wall time ``wall``: the end of the last chunk sent at or before it.

        0.0 before the first chunk. Accepts an array of wall times (vectorised) as well as a float.
        """
        ends = np.asarray(self._end_ms, dtype=np.float64)
        walls = np.asarray(self._wall, dtype=np.float64)
        t = np.asarray(wall, dtype=np.float64)
        k = np.searchsorted(walls, t, side="right")
        out = np.where(k > 0, ends[np.maximum(k - 1, 0)] if ends.size else 0.0, 0.0)
        return float(out) if out.ndim == 0 else out

    def wall_at(self, audio_ms: float) -> float | None:
        """Earliest wall time by which the audio up to ``audio_ms`` had been sent.

        The send time of the first chunk whose end is at or past ``audio_ms``; ``None`` when that audio has not
        been sent (yet). The inverse of :meth:`audio_ms_at`: ``audio_ms_at(wall_at(x)) >= x``.
        """
        if not self._end_ms:
            return None
        k = bisect.bisect_left(self._end_ms, float(audio_ms) - 1e-9)
        return self._wall[k] if k < len(self._wall) else None

    def records(self) -> list[tuple[float, float, float]]:
        """``(audio_start_ms, audio_end_ms, wall)`` for every chunk stamped, in order."""
        return list(zip(self._start_ms, self._end_ms, self._wall, strict=True))

    def __repr__(self) -> str:
        return f"AudioClock({len(self)} chunks, {self.sent_ms:.0f} ms sent)"


# --------------------------------------------------------------------------------------------------
# Pacing
# --------------------------------------------------------------------------------------------------
def _check_speed(speed: float) -> None:
    if not (speed > 0):  # also rejects NaN
        raise ValueError(
            f"speed must be > 0 (1.0 = real time, float('inf') = as fast as possible); got {speed!r}"
        )


def _due(chunk: Chunk, first_offset_ms: float, start: float, speed: float, align: str) -> float:
    """Wall time at which ``chunk`` is released: a live microphone releases a chunk once its last sample exists."""
    at_ms = (chunk.end_ms if align == "end" else chunk.offset_ms) - first_offset_ms
    return start + at_ms / 1000.0 / speed


async def pace(
    source: Iterable[Chunk] | AsyncIterable[Chunk],
    *,
    speed: float = 1.0,
    clock: AudioClock | None = None,
    align: Literal["end", "start"] = "end",
    time_fn: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = asyncio.sleep,
) -> AsyncIterator[Chunk]:
    """Yield chunks at real time × ``speed``, stamping ``clock`` just before each is yielded.

    Every release time is computed from one start time (no drift: a late wake-up does not delay later chunks).

    Parameters
    ----------
    source : iterable or async iterable of Chunk
    speed : float
        1.0 is real time, 2.0 twice as fast, ``float("inf")`` never sleeps.
    clock : AudioClock, optional
        Stamped with each chunk at the moment it is released.
    align : {"end", "start"}
        ``"end"`` (default) releases a chunk when its last sample would have been captured (like a live
        microphone); ``"start"`` releases it at its first sample (streaming a file one chunk ahead).
    time_fn, sleep
        Wall clock and async sleep; injectable for tests.
    """
    _check_speed(speed)
    start: float | None = None
    first_ms = 0.0
    async for chunk in _aiter(source):
        if start is None:
            start, first_ms = time_fn(), chunk.offset_ms
        if math.isfinite(speed):
            delay = _due(chunk, first_ms, start, speed, align) - time_fn()
            if delay > 0:
                await sleep(delay)
        if clock is not None:
            clock.stamp(chunk, time_fn())
        yield chunk


def iter_paced(
    source: Iterable[Chunk],
    *,
    speed: float = 1.0,
    clock: AudioClock | None = None,
    align: Literal["end", "start"] = "end",
    time_fn: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> Iterator[Chunk]:
    """Synchronous :func:`pace` (for threads and scripts)."""
    _check_speed(speed)
    start: float | None = None
    first_ms = 0.0
    for chunk in source:
        if start is None:
            start, first_ms = time_fn(), chunk.offset_ms
        if math.isfinite(speed):
            delay = _due(chunk, first_ms, start, speed, align) - time_fn()
            if delay > 0:
                sleep(delay)
        if clock is not None:
            clock.stamp(chunk, time_fn())
        yield chunk


async def _aiter(source: Iterable[Chunk] | AsyncIterable[Chunk]) -> AsyncIterator[Chunk]:
    if hasattr(source, "__aiter__"):
        async for c in source:  # type: ignore[union-attr]
            yield c
    else:
        for c in source:  # type: ignore[union-attr]
            yield c
