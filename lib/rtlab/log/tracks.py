"""Audio tracks beside an event log: input audio once on the shared clock, assistant audio per source (layer: log).

Raw int16 PCM is written at sample offsets and flushed per chunk (readable after a crash); :meth:`Track.close`
converts it to WAV with soundfile. A small JSON descriptor names each track's source, format and rate.
"""

from __future__ import annotations

import bisect
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from rtlab.errors import EventLogError
from rtlab.protocol.shapes import AUDIO_FORMATS

__all__ = ["Coverage", "Track", "decode_audio", "read_track", "slug"]


class Coverage:
    """Sorted, merged half-open sample intervals already written (so a chunk sent by several sources is written once)."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def missing(self, a: int, b: int) -> list[tuple[int, int]]:
        out, cur = [], a
        i = bisect.bisect_right(self.ends, a)
        while i < len(self.starts) and self.starts[i] < b and cur < b:
            if self.starts[i] > cur:
                out.append((cur, min(self.starts[i], b)))
            cur = max(cur, self.ends[i])
            i += 1
        if cur < b:
            out.append((cur, b))
        return out

    def add(self, a: int, b: int) -> None:
        i = bisect.bisect_left(self.ends, a)
        j = bisect.bisect_right(self.starts, b)
        if i < j:
            a, b = min(a, self.starts[i]), max(b, self.ends[j - 1])
        self.starts[i:j] = [a]
        self.ends[i:j] = [b]


def decode_audio(data: bytes, fmt: str) -> np.ndarray:
    if fmt == "pcm16":
        if len(data) % 2:
            raise ValueError(f"odd number of bytes ({len(data)}) for pcm16")
        return np.frombuffer(data, dtype="<i2").astype(np.int16)
    from rtlab.audio import decode_g711  # lazy: audio.py pulls in librosa

    return decode_g711(data, "ulaw" if fmt == "g711_ulaw" else "alaw")


def _write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1), encoding="utf-8")
    os.replace(tmp, path)


class Track:
    """One audio track: raw int16 PCM written at sample offsets (flushed per chunk), a JSON descriptor, WAV at close."""

    def __init__(self, stem: Path, kind: str, source: str | None, fmt: str):
        self.stem = stem  # e.g. DIR/events.input
        self.kind = kind
        self.source = source
        self.fmt = fmt
        self.rate = AUDIO_FORMATS[fmt].sample_rate
        self.coverage = Coverage()
        self.end = 0  # samples
        self._fh: Any = None

    @property
    def pcm_path(self) -> Path:
        return self.stem.with_name(self.stem.name + ".pcm")

    @property
    def wav_path(self) -> Path:
        return self.stem.with_name(self.stem.name + ".wav")

    @property
    def json_path(self) -> Path:
        return self.stem.with_name(self.stem.name + ".json")

    def descriptor(self, data: str) -> dict:
        return {"rtlab_track": 1, "kind": self.kind, "source": self.source, "format": self.fmt,
                "sample_rate": self.rate, "sample_format": "int16", "data": data}

    def write(self, offset: int, samples: np.ndarray, *, dedupe: bool) -> None:
        if self._fh is None:
            _write_json_atomic(self.json_path, self.descriptor(self.pcm_path.name))
            self._fh = open(self.pcm_path, "w+b")  # noqa: SIM115 - kept open for the life of the log
        n = len(samples)
        parts = self.coverage.missing(offset, offset + n) if dedupe else [(offset, offset + n)]
        raw = samples.astype("<i2", copy=False)
        for a, b in parts:
            self._fh.seek(a * 2)
            self._fh.write(raw[a - offset:b - offset].tobytes())
        if parts:
            self._fh.flush()
        self.coverage.add(offset, offset + n)
        self.end = max(self.end, offset + n)

    def close(self) -> None:
        if self._fh is None:
            return
        self._fh.close()
        self._fh = None
        import soundfile as sf

        samples = np.fromfile(self.pcm_path, dtype="<i2")
        tmp = self.wav_path.with_name(self.wav_path.name + ".tmp")
        sf.write(tmp, samples, self.rate, subtype="PCM_16", format="WAV")
        os.replace(tmp, self.wav_path)
        _write_json_atomic(self.json_path, self.descriptor(self.wav_path.name))
        self.pcm_path.unlink()


def read_track(json_path: Path) -> tuple[np.ndarray, int, dict]:
    try:
        desc = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EventLogError(f"{json_path}: unreadable audio track descriptor ({exc})") from None
    rate = int(desc.get("sample_rate") or 24000)
    base = json_path.with_suffix("")
    wav, pcm = base.with_name(base.name + ".wav"), base.with_name(base.name + ".pcm")
    # The .pcm is the raw truth while it exists (a crash during close leaves both; the WAV may be partial).
    if pcm.exists():
        return np.fromfile(pcm, dtype="<i2").astype(np.int16), rate, desc
    if wav.exists():
        import soundfile as sf

        samples, rate = sf.read(wav, dtype="int16", always_2d=False)
        return np.asarray(samples, dtype=np.int16), int(rate), desc
    return np.zeros(0, dtype=np.int16), rate, desc


def slug(source: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", source).strip("_") or "source"


