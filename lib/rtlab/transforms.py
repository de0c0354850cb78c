"""Audio conditions as pure functions: noise at a known SNR, the telephone channel, speed perturbation.

Layer: audio. Every function takes audio (or a float signal with its rate) and returns new audio; nothing is
changed in place, nothing depends on time or global state (noise comes from a seeded generator), so a study
condition applied twice gives the same samples.

* :func:`add_white_noise` / :func:`span_power` — white Gaussian noise whose power is exactly the speech power over
  the given spans divided by 10^(SNR/10) (float signals; the bundled clips' ``noisy`` condition uses them too).
* :func:`telephone_band` — zero-phase 4th-order Butterworth band-pass (300–3400 Hz by default; scipy).
* :func:`add_noise`, :func:`telephone`, :func:`change_speed` — the same on :class:`rtlab.audio.Audio`:
  ``telephone`` resamples to 8 kHz (soxr), band-limits and passes the samples through G.711 (μ-law or A-law);
  :func:`g711_roundtrip` is the codec's quantization alone; ``change_speed`` is speed perturbation (tempo and pitch together, as ``sox speed``): the signal is read as if
  recorded at ``rate × factor`` and resampled back to ``rate`` with soxr, so it lasts ``1 / factor`` as long.
* :class:`Transform` — one step as data (``{"snr_db": 10}``, ``"telephone"``, ``{"speed": 1.1}``), and
  :func:`apply` — a list of steps over audio and its speech spans (spans move with ``speed``).

Example
-------
>>> from rtlab import audio, data, transforms
>>> a = audio.load(data.clip_path("short"))
>>> b, spans = transforms.apply(a, [transforms.Transform.parse("telephone")], seed=0, spans_s=[(0.5, 2.0)])
>>> b.sample_rate, spans
(8000, [(0.5, 2.0)])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .audio import Audio, decode_g711, encode_g711, load
from .errors import ConfigError

__all__ = [
    "TELEPHONE_BAND_HZ",
    "TRANSFORM_KINDS",
    "Transform",
    "add_noise",
    "add_white_noise",
    "apply",
    "change_speed",
    "g711_roundtrip",
    "span_power",
    "telephone",
    "telephone_band",
]

TELEPHONE_BAND_HZ = (300.0, 3400.0)
TELEPHONE_RATE = 8000
TRANSFORM_KINDS = ("snr", "telephone", "speed")
_FULL_SCALE = 32768.0


# --------------------------------------------------------------------------------------------------
# Float signals
# --------------------------------------------------------------------------------------------------
def span_power(y: np.ndarray, spans: Sequence[tuple[int, int]]) -> float:
    """Mean power of ``y`` over the samples inside ``spans`` (``(start, end)`` sample indices)."""
    inside = np.concatenate([y[a:b] for a, b in spans])
    return float(np.mean(inside**2))


def add_white_noise(
    y: np.ndarray, spans: Sequence[tuple[int, int]], snr_db: float, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """``y`` plus white Gaussian noise whose power is exactly speech power / 10^(snr/10); returns (signal, noise RMS)."""
    noise = rng.standard_normal(len(y))
    target = span_power(y, spans) / 10 ** (snr_db / 10)
    noise *= np.sqrt(target / np.mean(noise**2))
    return y + noise, float(np.sqrt(target))


def telephone_band(
    y: np.ndarray, sample_rate: int, band_hz: tuple[float, float] = TELEPHONE_BAND_HZ
) -> np.ndarray:
    """Zero-phase 4th-order Butterworth band-pass (zero phase keeps the speech boundaries in place)."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, band_hz, btype="bandpass", fs=sample_rate, output="sos")
    return sosfiltfilt(sos, y)


# --------------------------------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------------------------------
def _float(audio: Audio) -> np.ndarray:
    if not isinstance(audio, Audio):
        raise TypeError(f"expected an rtlab.audio.Audio, got {type(audio).__name__}; use rtlab.audio.load() first")
    if audio.channels != 1:
        audio = load(audio, sample_rate=None, mono=True)
    return audio.samples.astype(np.float64) / _FULL_SCALE


def _audio(y: np.ndarray, sample_rate: int, path: str | None) -> Audio:
    out = load((y, sample_rate), sample_rate=None)  # float -> int16, rounded and clipped
    return Audio(out.samples, sample_rate, path)


def add_noise(audio: Audio, *, snr_db: float, seed: int | Sequence[int],
              spans_s: Sequence[tuple[float, float]] | None = None) -> Audio:
    """``audio`` plus seeded white noise at ``snr_db`` dB SNR.

    Parameters
    ----------
    audio : Audio
        Mono (other channel counts are mixed down).
    snr_db : float
        Speech power over noise power, in dB.
    seed : int or sequence of int
        Seeds ``numpy.random.default_rng``: the same seed gives the same noise.
    spans_s : list of (start_s, end_s), optional
        Where the speech is: the SNR is measured over these spans (the clip manifest's definition). Without
        spans, over the whole signal (silences included, so the noise is quieter than over speech alone).
    """
    if not isinstance(snr_db, int | float) or isinstance(snr_db, bool) or not math.isfinite(snr_db):
        raise ConfigError(f"snr_db must be a finite number of dB, got {snr_db!r}", field="snr_db",
                          fix="e.g. snr_db: 10")
    y = _float(audio)
    sr = audio.sample_rate
    spans = [(max(0, int(round(a * sr))), min(len(y), int(round(b * sr)))) for a, b in spans_s or []]
    spans = [(a, b) for a, b in spans if b > a] or [(0, len(y))]
    if span_power(y, spans) == 0.0:
        raise ConfigError(f"{audio.path or 'audio'}: the speech spans are digital silence, so no SNR can be set",
                          field="snr_db", fix="check the corpus references' start_s/end_s, or drop the snr step")
    noisy, _ = add_white_noise(y, spans, float(snr_db), np.random.default_rng(seed))
    return _audio(noisy, sr, audio.path)


def telephone(audio: Audio, *, law: Literal["ulaw", "alaw"] = "ulaw",
              band_hz: tuple[float, float] = TELEPHONE_BAND_HZ) -> Audio:
    """The telephone channel: resampled to 8 kHz (soxr), band-limited to ``band_hz``, through G.711 ``law``.

    Returns 8 kHz audio; a session resamples it to its input format's rate when it sends it.
    """
    if law not in ("ulaw", "alaw"):
        raise ConfigError(f"telephone law must be 'ulaw' or 'alaw', got {law!r}", field="law", fix="law: ulaw")
    mono = audio if audio.channels == 1 else load(audio, sample_rate=None, mono=True)
    narrow = mono.resample(TELEPHONE_RATE)
    y = telephone_band(narrow.samples.astype(np.float64) / _FULL_SCALE, TELEPHONE_RATE, band_hz)
    pcm = load((y, TELEPHONE_RATE), sample_rate=None).samples
    return Audio(g711_roundtrip(pcm, law), TELEPHONE_RATE, audio.path)


def g711_roundtrip(pcm: np.ndarray, law: Literal["ulaw", "alaw"] = "ulaw") -> np.ndarray:
    """int16 samples compressed to G.711 ``law`` and expanded back: the codec's quantization, nothing else."""
    return decode_g711(encode_g711(pcm, law), law)


def change_speed(audio: Audio, factor: float) -> Audio:
    """Speed perturbation by ``factor`` (1.1: 10 % faster and higher), resampled with soxr.

    The result lasts ``duration / factor``; a time ``t`` in the input is at ``t / factor`` in the output.
    """
    import soxr

    if not isinstance(factor, int | float) or isinstance(factor, bool) or not 0.25 <= factor <= 4.0:
        raise ConfigError(f"speed factor must be a number in [0.25, 4], got {factor!r}", field="speed",
                          fix="e.g. speed: 1.1 (10 % faster) or speed: 0.9")
    if factor == 1.0:
        return audio
    y = _float(audio)
    sr = audio.sample_rate
    out = soxr.resample(y, sr * float(factor), sr, quality="HQ")
    return _audio(out, sr, audio.path)


# --------------------------------------------------------------------------------------------------
# Steps as data
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Transform:
    """One audio transform step of a condition.

    Written in a study file as ``{"snr_db": 10}``, ``"telephone"``, ``{"telephone": {"law": "alaw"}}`` or
    ``{"speed": 1.1}``; :meth:`parse` reads those and :meth:`to_json` writes the canonical form
    (``{"kind": "snr", "snr_db": 10.0}``, ...).
    """

    kind: Literal["snr", "telephone", "speed"]
    snr_db: float | None = None
    law: str | None = None
    factor: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in TRANSFORM_KINDS:
            raise ConfigError(f"unknown audio transform {self.kind!r}", field="transforms",
                              fix=f"use one of {', '.join(TRANSFORM_KINDS)}")
        need = {"snr": "snr_db", "speed": "factor"}.get(self.kind)
        if need and getattr(self, need) is None:
            raise ConfigError(f"transform {self.kind!r} needs {need}", field="transforms")

    @classmethod
    def parse(cls, obj: Any, where: str = "transforms") -> Transform:
        """Read one step (see the class docstring); the error names ``where`` and the bad value."""
        if isinstance(obj, Transform):
            return obj
        if isinstance(obj, str):
            if obj == "telephone":
                return cls("telephone", law="ulaw")
            raise ConfigError(f"{where}: {obj!r} is not a transform", field="transforms",
                              fix="use telephone, {snr_db: 10} or {speed: 1.1}")
        if not isinstance(obj, Mapping):
            raise ConfigError(f"{where}: {obj!r} is not a transform", field="transforms",
                              fix="use telephone, {snr_db: 10} or {speed: 1.1}")
        if "kind" in obj:  # the canonical form
            kind = obj["kind"]
            try:
                return cls(kind, snr_db=_num(obj.get("snr_db"), where), law=obj.get("law"),
                           factor=_num(obj.get("factor"), where))
            except TypeError:
                raise ConfigError(f"{where}: {dict(obj)!r} is not a transform", field="transforms") from None
        if len(obj) != 1:
            raise ConfigError(f"{where}: {dict(obj)!r} has several keys; give one transform per list entry",
                              field="transforms", fix="e.g. [{snr_db: 10}, telephone]")
        (key, value), = obj.items()
        if key in ("snr_db", "snr"):
            return cls("snr", snr_db=_num(value, where))
        if key == "speed":
            return cls("speed", factor=_num(value, where))
        if key == "telephone":
            law = (value or {}).get("law", "ulaw") if isinstance(value, Mapping | type(None)) else value
            if law not in ("ulaw", "alaw"):
                raise ConfigError(f"{where}: telephone law {law!r} is not ulaw or alaw", field="transforms",
                                  fix="telephone: {law: alaw}")
            return cls("telephone", law=law)
        raise ConfigError(f"{where}: unknown audio transform {key!r}", field="transforms",
                          fix="use snr_db, telephone or speed")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for k in ("snr_db", "law", "factor"):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        return out

    def label(self) -> str:
        if self.kind == "snr":
            return f"snr {self.snr_db:g} dB"
        if self.kind == "speed":
            return f"speed ×{self.factor:g}"
        return f"telephone {self.law}"


def _num(v: Any, where: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ConfigError(f"{where}: {v!r} is not a finite number", field="transforms")
    return float(v)


def apply(audio: Audio, steps: Sequence[Transform], *, seed: int,
          spans_s: Sequence[tuple[float, float]] | None = None
          ) -> tuple[Audio, list[tuple[float, float]] | None]:
    """Apply ``steps`` in order; returns the new audio and the speech spans moved with it.

    Step ``i`` that draws noise is seeded with ``(seed, i)``, so the same seed gives the same audio and two
    conditions that share a step on the same file hear the same noise.
    """
    spans = [(float(a), float(b)) for a, b in spans_s] if spans_s is not None else None
    for i, step in enumerate(steps):
        step = Transform.parse(step)
        if step.kind == "snr":
            audio = add_noise(audio, snr_db=float(step.snr_db), seed=(int(seed), i), spans_s=spans)
        elif step.kind == "telephone":
            audio = telephone(audio, law=step.law or "ulaw")
        elif step.kind == "speed":
            audio = change_speed(audio, float(step.factor))
            if spans is not None:
                spans = [(a / step.factor, b / step.factor) for a, b in spans]
    return audio, spans
