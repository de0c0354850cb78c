"""Synthesize the bundled clips with flite and write ``data/manifest.json``: ``python -m rtlab.data.build``.

Deterministic: the same flite, numpy and soxr give the same bytes on every run (noise comes from a seeded
generator; nothing depends on time or on the machine's state).

How a clip is made
------------------
1. flite speaks each utterance into a WAV (16 kHz).
2. The utterance is resampled to the clip's rate (soxr), flite's own leading and trailing near-silence is cut by
   frame energy (10 ms frames more than 45 dB under the loudest frame), and the level is set to -20 dBFS RMS.
   The cut points are therefore the *true* speech boundaries, which the manifest records as ``start_s``/``end_s``
   so "time to final transcript after the true end of speech" is measured honestly.
3. Utterances are laid out with exact pauses of digital silence; conditions (noise at a known SNR, telephone band
   and G.711 μ-law) are applied to the whole clip.

The clip names are a contract (tests, notebooks and the demo use them): short, monologue, dialogue,
lead_silence, noisy, telephone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import audio as _audio
from ..errors import RtlabError
from ..paths import data_dir

# The signal steps shared with study conditions live in the audio layer; re-exported for the build's tests.
from ..transforms import (  # noqa: F401
    TELEPHONE_BAND_HZ,
    add_white_noise,
    g711_roundtrip,
    span_power,
    telephone_band,
)
from . import MANIFEST_NAME

SEED = 20251124
LEVEL_DBFS = -20.0  # RMS of each utterance over its true span
PEAK_LIMIT = 0.89  # -1 dBFS: utterances are turned down (not clipped) when the RMS target would exceed it
TRIM_FRAME_MS = 10
TRIM_REL_DB = -45.0  # frames this far under the loudest frame count as silence
TAIL_S = 1.0  # silence after the last utterance: > 500 ms so server VAD ends the last turn
LEAD_S = 0.5
# White noise at 20 dB SNR: pocketsphinx (the offline engine) goes from 0 % to roughly 30-60 % WER on the monologue
# (per noise draw), degraded but partly readable. Measured: 15 dB ~70-80 %, 10 dB ~90 % (the engine collapses).
NOISY_SNR_DB = 20.0

VOICES = {
    "slt": {"gender": "female", "accent": "US English"},
    "rms": {"gender": "male", "accent": "US English"},
    "kal16": {"gender": "male", "accent": "US English"},
    "awb": {"gender": "male", "accent": "Scottish English"},
}


@dataclass(frozen=True)
class Utterance:
    text: str
    voice: str
    speaker: str


@dataclass(frozen=True)
class ClipSpec:
    name: str
    description: str
    utterances: tuple[Utterance, ...]
    sample_rate: int = 24000
    lead_s: float = LEAD_S
    pause_s: float | None = None
    tail_s: float = TAIL_S
    condition: str = "clean"
    snr_db: float | None = (
        None  # white noise over the whole clip at this SNR (speech power over utterance spans)
    )
    telephone: bool = False  # band-limit to TELEPHONE_BAND_HZ and pass through G.711 μ-law


_MONOLOGUE = (
    Utterance("The meeting starts at ten in the morning.", "rms", "A"),
    Utterance("Please bring the report for the team.", "rms", "A"),
    Utterance("We will meet again next week at the office.", "rms", "A"),
)

SPECS: tuple[ClipSpec, ...] = (
    ClipSpec(
        "short", "one short utterance, female voice", (Utterance("The weather is nice today.", "slt", "A"),)
    ),
    ClipSpec(
        "monologue",
        "one male speaker, three turns separated by 1.5 s pauses",
        _MONOLOGUE,
        pause_s=1.5,
    ),
    ClipSpec(
        "dialogue",
        "two speakers (female slt, male rms) alternating, four turns, 1.2 s pauses",
        (
            Utterance("Can you tell me where the train station is?", "slt", "A"),
            Utterance("Turn left at the next light and go straight.", "rms", "B"),
            Utterance("Is it far from here?", "slt", "A"),
            Utterance("No, it takes about five minutes to walk there.", "rms", "B"),
        ),
        pause_s=1.2,
    ),
    ClipSpec(
        "lead_silence",
        "10 s of digital silence, then one utterance (male voice kal16)",
        (Utterance("I need to change my address, please.", "kal16", "A"),),
        lead_s=10.0,
        condition="lead_silence",
    ),
    ClipSpec(
        "noisy",
        "the monologue's speech with seeded white noise at 20 dB SNR",
        _MONOLOGUE,
        pause_s=1.5,
        condition="noisy",
        snr_db=NOISY_SNR_DB,
    ),
    ClipSpec(
        "telephone",
        "two utterances, 300-3400 Hz band, G.711 mu-law, stored at 8 kHz",
        (
            Utterance("Hello, thank you for calling the help desk.", "slt", "A"),
            Utterance("I would like to check my account balance.", "rms", "B"),
        ),
        sample_rate=8000,
        pause_s=1.2,
        condition="telephone",
        telephone=True,
    ),
)
SPEC_BY_NAME = {s.name: s for s in SPECS}


class BuildError(RtlabError):
    """The clips cannot be built (flite missing or failing)."""


# --------------------------------------------------------------------------------------------------
# flite
# --------------------------------------------------------------------------------------------------
def flite_version() -> str:
    exe = shutil.which("flite")
    if exe is None:
        raise BuildError(
            "flite is not installed: `sudo apt-get install flite` (or `make system`), then `make data`"
        )
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        if "version:" in line:
            return line.split("version:", 1)[1].strip()
    return out.strip().splitlines()[-1] if out.strip() else "unknown"


def synthesize(text: str, voice: str) -> tuple[np.ndarray, int]:
    """flite speech for ``text`` as float64 mono and its sample rate."""
    import soundfile as sf

    exe = shutil.which("flite")
    if exe is None:
        flite_version()  # raises the install hint
    with tempfile.TemporaryDirectory(prefix="rtlab-flite-") as tmp:
        out = Path(tmp) / "utt.wav"
        proc = subprocess.run(
            [exe, "-voice", voice, "-t", text, "-o", str(out)], capture_output=True, text=True
        )
        if proc.returncode != 0 or not out.exists():
            raise BuildError(
                f"flite failed for voice {voice!r} on {text!r}: {proc.stderr.strip() or proc.returncode}"
            )
        y, sr = sf.read(str(out), dtype="float64", always_2d=False)
    return y, int(sr)


# --------------------------------------------------------------------------------------------------
# Signal steps (pure functions; tests call them directly)
# --------------------------------------------------------------------------------------------------
def frame_db(y: np.ndarray, sample_rate: int, frame_ms: float = TRIM_FRAME_MS) -> np.ndarray:
    """RMS level in dBFS of consecutive frames (a partial last frame is dropped)."""
    n = int(sample_rate * frame_ms / 1000)
    k = len(y) // n
    frames = np.asarray(y[: k * n], dtype=np.float64).reshape(k, n)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)


def speech_bounds(y: np.ndarray, sample_rate: int, *, rel_db: float = TRIM_REL_DB) -> tuple[int, int]:
    """``(start, end)`` sample indices of the speech in ``y``: first and last frame within ``rel_db`` of the loudest."""
    db = frame_db(y, sample_rate)
    if db.size == 0:
        raise BuildError("utterance shorter than one analysis frame")
    loud = np.nonzero(db >= db.max() + rel_db)[0]
    n = int(sample_rate * TRIM_FRAME_MS / 1000)
    return int(loud[0] * n), int((loud[-1] + 1) * n)


def normalize(y: np.ndarray, *, level_dbfs: float = LEVEL_DBFS, peak_limit: float = PEAK_LIMIT) -> np.ndarray:
    """Scale to ``level_dbfs`` RMS, or lower if the peak would pass ``peak_limit``."""
    rms = float(np.sqrt(np.mean(y**2)))
    gain = 10 ** (level_dbfs / 20) / rms
    gain = min(gain, peak_limit / float(np.max(np.abs(y))))
    return y * gain


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    return _audio.resample(y, orig_sr, target_sr)


def speech(text: str, voice: str, sample_rate: int) -> np.ndarray:
    """One utterance: synthesized, resampled to ``sample_rate``, trimmed to its true span, level-normalized."""
    y, sr = synthesize(text, voice)
    y = resample(y, sr, sample_rate)
    a, b = speech_bounds(y, sample_rate)
    return normalize(y[a:b])


def layout(
    segments: list[np.ndarray], sample_rate: int, *, lead_s: float, pause_s: float | None, tail_s: float
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Place segments after ``lead_s`` of silence, ``pause_s`` apart, then ``tail_s``; return signal and spans."""
    lead = int(round(lead_s * sample_rate))
    gap = int(round((pause_s or 0.0) * sample_rate))
    tail = int(round(tail_s * sample_rate))
    total = lead + sum(len(s) for s in segments) + gap * (len(segments) - 1) + tail
    y = np.zeros(total, dtype=np.float64)
    spans = []
    pos = lead
    for s in segments:
        y[pos : pos + len(s)] = s
        spans.append((pos, pos + len(s)))
        pos += len(s) + gap
    return y, spans


# --------------------------------------------------------------------------------------------------
# Clips and manifest
# --------------------------------------------------------------------------------------------------
def _seed_for(name: str) -> int:
    return SEED ^ zlib.crc32(name.encode())


def render(spec: ClipSpec) -> tuple[np.ndarray, dict]:
    """The clip's int16 samples and its manifest entry (without ``file``/``sha256``)."""
    sr = spec.sample_rate
    segments = [speech(u.text, u.voice, sr) for u in spec.utterances]
    y, spans = layout(segments, sr, lead_s=spec.lead_s, pause_s=spec.pause_s, tail_s=spec.tail_s)
    entry: dict = {"description": spec.description, "condition": spec.condition}
    noise_rms = None
    if spec.snr_db is not None:
        y, noise_rms = add_white_noise(y, spans, spec.snr_db, np.random.default_rng(_seed_for(spec.name)))
    codec = None
    if spec.telephone:
        y = telephone_band(y, sr)
        codec = "g711_ulaw"
        pcm = g711_roundtrip(_to_int16(y), "ulaw")
    else:
        pcm = _to_int16(y)
    utterances = [
        {
            "text": u.text,
            "speaker": u.speaker,
            "voice": u.voice,
            "gender": VOICES[u.voice]["gender"],
            "start_s": round(a / sr, 6),
            "end_s": round(b / sr, 6),
        }
        for u, (a, b) in zip(spec.utterances, spans, strict=True)
    ]
    entry.update(
        {
            "sample_rate": sr,
            "channels": 1,
            "n_samples": int(len(pcm)),
            "duration_s": round(len(pcm) / sr, 6),
            "lead_silence_s": round(spans[0][0] / sr, 6),
            "pause_s": spec.pause_s,
            "snr_db": spec.snr_db,
            "noise": None
            if spec.snr_db is None
            else {
                "kind": "white",
                "rms_dbfs": round(20 * np.log10(noise_rms), 2),
                "seed": _seed_for(spec.name),
                "snr_definition": "mean speech power over the utterance spans / noise power",
            },
            "band_hz": list(TELEPHONE_BAND_HZ) if spec.telephone else None,
            "codec": codec,
            "speakers": sorted({u.speaker for u in spec.utterances}),
            "reference": " ".join(u.text for u in spec.utterances),
            "utterances": utterances,
        }
    )
    return pcm, entry


def _to_int16(y: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(y * 32768.0), -32768, 32767).astype(np.int16)


def build(out_dir: str | Path | None = None, names: list[str] | None = None, *, quiet: bool = False) -> dict:
    """Build clips into ``out_dir`` (default: the data folder) and write its manifest; returns the manifest.

    Parameters
    ----------
    out_dir : path, optional
        Folder that receives ``clips/*.wav`` and ``manifest.json``. Default :func:`rtlab.paths.data_dir`.
    names : list of str, optional
        Build only these clips (others already in the folder's manifest are kept).
    """
    out = Path(out_dir) if out_dir is not None else data_dir()
    unknown = [n for n in names or [] if n not in SPEC_BY_NAME]
    if unknown:
        raise BuildError(f"unknown clip(s) {unknown}; known: {', '.join(SPEC_BY_NAME)}")
    specs = [SPEC_BY_NAME[n] for n in names] if names else list(SPECS)
    version = flite_version()
    (out / "clips").mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST_NAME
    clips: dict = {}
    if names and manifest_path.exists():
        clips = json.loads(manifest_path.read_text(encoding="utf-8")).get("clips", {})
    for spec in specs:
        pcm, entry = render(spec)
        rel = f"clips/{spec.name}.wav"
        path = out / rel
        _audio.save(_audio.Audio(pcm, spec.sample_rate), path)
        entry = {"file": rel, **entry, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        clips[spec.name] = entry
        if not quiet:
            print(
                f"{rel:24s} {entry['duration_s']:6.2f} s  {spec.sample_rate} Hz  {path.stat().st_size / 1e3:7.1f} kB  "
                f"{len(entry['utterances'])} utt  {spec.condition}"
            )
    manifest = {
        "schema": 1,
        "generator": {
            "script": "python -m rtlab.data.build",
            "tool": "flite",
            "flite_version": version,
            "voices": {v: VOICES[v] for v in sorted({u.voice for s in SPECS for u in s.utterances})},
            "seed": SEED,
            "level_dbfs": LEVEL_DBFS,
            "trim": {"frame_ms": TRIM_FRAME_MS, "threshold_db_below_peak_frame": -TRIM_REL_DB},
            "resampler": "soxr HQ (rtlab.audio.resample)",
        },
        "clips": {k: clips[k] for k in sorted(clips)},
    }
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rtlab.data.build", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: the repository's data/)"
    )
    parser.add_argument(
        "clips", nargs="*", help=f"clips to build (default: all of {', '.join(SPEC_BY_NAME)})"
    )
    args = parser.parse_args(argv)
    try:
        build(args.out, args.clips or None)
    except BuildError as exc:
        print(f"rtlab data build: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
