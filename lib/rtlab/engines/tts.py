"""Text to speech with the ``flite`` binary, resampled to the Realtime protocol's 24 kHz PCM16.

The emulator speaks its replies with this engine, and the bundled clips and tests are synthesized with it.
flite is deterministic (same voice and text → same samples), so results are cached in a bounded LRU keyed by
``(voice, text)``: the emulator often speaks the same reply many times.

Example
-------
>>> tts = FliteTts()                                    # doctest: +SKIP
>>> pcm = tts.synthesize("Hello there.", voice="awb")   # doctest: +SKIP
>>> pcm.dtype, tts.sample_rate                          # doctest: +SKIP
(dtype('int16'), 24000)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import soundfile as sf

from rtlab.audio import resample
from rtlab.errors import ConfigError, RtlabError

__all__ = ["FliteTts", "FliteMissingError", "flite_voices"]

_INSTALL_HINT = "install it with `sudo apt-get install flite` (Debian/Ubuntu) or `brew install flite` (macOS)"


class FliteMissingError(RtlabError):
    """The ``flite`` binary is not on PATH (or cannot run)."""


def _find_flite(binary: str = "flite") -> str:
    path = shutil.which(binary)
    if path is None:
        raise FliteMissingError(
            f"text-to-speech needs the `{binary}` program, which is not on PATH "
            f"(PATH={os.environ.get('PATH', '')!r}); {_INSTALL_HINT}"
        )
    return path


def flite_voices(binary: str = "flite") -> tuple[str, ...]:
    """The voice names the installed flite offers (``flite -lv``), e.g. ``('kal', 'awb', 'rms', 'slt', ...)``."""
    exe = _find_flite(binary)
    try:
        out = subprocess.run([exe, "-lv"], capture_output=True, text=True, timeout=30, check=False).stdout
    except OSError as exc:
        raise FliteMissingError(f"cannot run {exe!r}: {exc}; {_INSTALL_HINT}") from exc
    # "Voices available: kal awb_time kal16 awb rms slt "
    _, _, names = out.partition(":")
    return tuple(names.split())


class FliteTts:
    """Speech synthesis with flite; implements :class:`rtlab.engines.base.TtsEngine`.

    Parameters
    ----------
    default_voice : str
        Voice used when ``synthesize`` gets no ``voice``: one of ``flite -lv`` (``slt`` female, ``awb``/``rms``
        male, ``kal``/``kal16`` diphone male), or a path to a ``.flitevox`` file.
    sample_rate : int
        Output rate in Hz (24000 for the Realtime protocol).
    cache_size : int
        Number of ``(voice, text)`` results kept (least recently used are dropped). 0 disables the cache.
    binary : str
        Name or path of the flite executable.

    Raises
    ------
    FliteMissingError
        (an ``RtlabError``) when flite is not installed; the message names the package to install.
    ConfigError
        When ``default_voice`` is not a voice flite has. flite itself silently falls back to ``kal`` for an
        unknown name, so the check is done here.
    """

    name = "flite"

    def __init__(
        self,
        default_voice: str = "slt",
        *,
        sample_rate: int = 24000,
        cache_size: int = 128,
        binary: str = "flite",
    ) -> None:
        if not isinstance(sample_rate, int) or sample_rate <= 0:
            raise ConfigError(
                f"sample_rate must be a positive integer in Hz, got {sample_rate!r}.", fix="use 24000"
            )
        if not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigError(f"cache_size must be a non-negative integer, got {cache_size!r}.")
        self.sample_rate = sample_rate
        self.cache_size = cache_size
        self._binary = binary
        self._exe = _find_flite(binary)
        self.voices = flite_voices(binary)
        self.default_voice = self._check_voice(default_voice, "default_voice")
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.cache_hits = 0
        self.cache_misses = 0

    def __repr__(self) -> str:
        return f"FliteTts(default_voice={self.default_voice!r}, sample_rate={self.sample_rate})"

    def _check_voice(self, voice: str, field: str) -> str:
        if not isinstance(voice, str) or not voice:
            raise ConfigError(f"{field} must be a flite voice name, got {voice!r}.", field=field)
        if voice in self.voices or (voice.endswith(".flitevox") and Path(voice).is_file()):
            return voice
        raise ConfigError(
            f"{field}={voice!r} is not a flite voice.",
            field=field,
            fix=f"use one of {', '.join(self.voices)} or a path to an existing .flitevox file",
        )

    def synthesize(self, text: str, *, voice: str | None = None) -> np.ndarray:
        """Speech for ``text`` as int16 mono at :attr:`sample_rate`.

        Parameters
        ----------
        text : str
            What to say. Empty or whitespace-only text gives an empty array.
        voice : str, optional
            A flite voice (see :attr:`voices`); defaults to :attr:`default_voice`.

        Returns
        -------
        numpy.ndarray, shape (n_samples,), dtype int16
            A read-only array (it may be shared through the cache).
        """
        if not isinstance(text, str):
            raise ConfigError(f"text must be a str, got {type(text).__name__}.")
        voice = self.default_voice if voice is None else self._check_voice(voice, "voice")
        if not text.strip():
            return np.zeros(0, dtype=np.int16)
        key = (voice, text)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self.cache_hits += 1
                return cached
            self.cache_misses += 1
        pcm = self._run_flite(text, voice)
        pcm.setflags(write=False)
        if self.cache_size:
            with self._lock:
                self._cache[key] = pcm
                self._cache.move_to_end(key)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return pcm

    def _run_flite(self, text: str, voice: str) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix="rtlab-flite-") as tmp:
            # Text goes through a file, not argv: no length limit, and text starting with "-" stays text.
            txt = Path(tmp) / "in.txt"
            wav = Path(tmp) / "out.wav"
            txt.write_text(text, encoding="utf-8")
            cmd = [self._exe, "-voice", voice, "-f", str(txt), "-o", str(wav)]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
            except FileNotFoundError as exc:
                raise FliteMissingError(f"flite disappeared from {self._exe!r}; {_INSTALL_HINT}") from exc
            except subprocess.TimeoutExpired as exc:
                raise RtlabError(f"flite took over 120 s for {len(text)} characters of text") from exc
            if proc.returncode != 0 or not wav.is_file():
                raise RtlabError(
                    f"flite failed (exit {proc.returncode}) for voice {voice!r}: {proc.stderr.strip()[:300]!r}"
                )
            data, sr = sf.read(str(wav), dtype="float32", always_2d=True)
        y = data.mean(axis=1)
        if sr != self.sample_rate:
            y = resample(y, sr, self.sample_rate)
        return np.clip(np.rint(y * 32767.0), -32768, 32767).astype(np.int16)
