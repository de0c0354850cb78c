"""Text to speech in many languages with the ``espeak-ng`` program, as 24 kHz PCM16 (layer: engines).

The emulator's translation endpoint speaks its translations with this engine: flite (:mod:`rtlab.engines.tts`)
has English voices only, espeak-ng has a voice for every output language of the translation model. espeak-ng
is deterministic (same voice and text → same samples), so results are cached in a bounded LRU keyed by
``(voice, text)``. Its 22.05 kHz output is resampled to 24 kHz with ``soxr``.

Example
-------
>>> tts = EspeakTts()                                              # doctest: +SKIP
>>> pcm = tts.synthesize("¿Dónde está la estación?", voice="es")   # doctest: +SKIP
>>> pcm.dtype, tts.sample_rate                                     # doctest: +SKIP
(dtype('int16'), 24000)
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
import threading
from collections import OrderedDict
from types import MappingProxyType

import numpy as np
import soundfile as sf
import soxr

from rtlab.errors import ConfigError, RtlabError

__all__ = ["EspeakMissingError", "EspeakTts", "espeak_voices", "voice_for_language"]

_INSTALL_HINT = (
    "install it with `apt-get install espeak-ng` (Debian/Ubuntu) or `brew install espeak-ng` (macOS)"
)

#: ISO 639-1 language → espeak-ng voice where the language code alone is not a voice name.
_LANGUAGE_VOICES: MappingProxyType[str, str] = MappingProxyType({"en": "en-us", "zh": "cmn", "pt": "pt-br"})


class EspeakMissingError(RtlabError):
    """The ``espeak-ng`` program is not on PATH (or cannot run)."""


def _find(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise EspeakMissingError(
            f"multilingual speech needs the `{binary}` program, which is not on PATH "
            f"(PATH={os.environ.get('PATH', '')!r}); {_INSTALL_HINT}"
        )
    return path


@functools.lru_cache(maxsize=4)
def _voices(exe: str) -> frozenset[str]:
    try:
        out = subprocess.run(
            [exe, "--voices"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EspeakMissingError(f"cannot run {exe!r} --voices: {exc}; {_INSTALL_HINT}") from exc
    names: set[str] = set()
    for line in out.splitlines()[1:]:
        cols = line.split()
        # Pty Language Age/Gender VoiceName File [Other languages]; mbrola voices need the mbrola program.
        if len(cols) >= 5 and not cols[4].startswith("mb/"):
            names.update({cols[1], cols[3], cols[4], cols[4].rsplit("/", 1)[-1]})
    return frozenset(names)


def espeak_voices(binary: str = "espeak-ng") -> frozenset[str]:
    """Names ``espeak-ng -v`` accepts: language codes (``es``, ``es-419``), voice names and voice files."""
    return _voices(_find(binary))


def voice_for_language(language: str) -> str:
    """The espeak-ng voice for an ISO 639-1 code: ``"es"`` → ``"es"``, ``"zh"`` → ``"cmn"``, ``"en"`` →
    ``"en-us"``."""
    code = language.strip().lower()
    return _LANGUAGE_VOICES.get(code, code)


class EspeakTts:
    """Speech synthesis with espeak-ng; implements :class:`rtlab.engines.base.TtsEngine`.

    Parameters
    ----------
    default_voice : str
        Voice used when ``synthesize`` gets none: an ISO 639-1 language code (mapped by
        :func:`voice_for_language`) or any name of :func:`espeak_voices`.
    sample_rate : int
        Output rate in Hz (24000 for the Realtime protocols).
    cache_size : int
        ``(voice, text)`` results kept (least recently used dropped); 0 disables the cache.
    binary : str
        Name or path of the espeak-ng program.

    Raises
    ------
    EspeakMissingError
        (an ``RtlabError``) when espeak-ng is not installed; the message names the package.
    ConfigError
        When a voice is not one espeak-ng has (espeak-ng itself falls back to English silently).
    """

    name = "espeak-ng"

    def __init__(
        self,
        default_voice: str = "en",
        *,
        sample_rate: int = 24000,
        cache_size: int = 128,
        binary: str = "espeak-ng",
    ) -> None:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise ConfigError(
                f"sample_rate must be a positive integer in Hz, got {sample_rate!r}.", fix="use 24000"
            )
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigError(f"cache_size must be a non-negative integer, got {cache_size!r}.")
        self.sample_rate = sample_rate
        self.cache_size = cache_size
        self._exe = _find(binary)
        self.voices = _voices(self._exe)
        self.default_voice = self.voice(default_voice)
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EspeakTts(default_voice={self.default_voice!r}, sample_rate={self.sample_rate})"

    def voice(self, voice_or_language: str) -> str:
        """The espeak-ng voice for a language code or voice name; ``ConfigError`` when espeak-ng has none."""
        if not isinstance(voice_or_language, str) or not voice_or_language.strip():
            raise ConfigError(
                f"voice must be a language code or an espeak-ng voice name, got {voice_or_language!r}.",
                field="voice",
            )
        for name in (voice_or_language.strip(), voice_for_language(voice_or_language)):
            if name in self.voices:
                return name
        raise ConfigError(
            f"espeak-ng has no voice {voice_or_language!r}.",
            field="voice",
            fix="use a language code such as 'es' or 'fr' (`espeak-ng --voices` lists them)",
        )

    def synthesize(self, text: str, *, voice: str | None = None) -> np.ndarray:
        """Speech for ``text`` as int16 mono at :attr:`sample_rate` (read-only: the cache may share it).

        Parameters
        ----------
        text : str
            What to say; empty or whitespace-only text gives an empty array.
        voice : str, optional
            A language code (``"es"``) or espeak-ng voice name; default :attr:`default_voice`.

        Returns
        -------
        numpy.ndarray, shape (n_samples,), dtype int16
        """
        if not isinstance(text, str):
            raise ConfigError(f"text must be a str, got {type(text).__name__}.")
        name = self.default_voice if voice is None else self.voice(voice)
        if not text.strip():
            return np.zeros(0, dtype=np.int16)
        key = (name, text)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        pcm = self._run(text, name)
        pcm.setflags(write=False)
        if self.cache_size:
            with self._lock:
                self._cache[key] = pcm
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return pcm

    def _run(self, text: str, voice: str) -> np.ndarray:
        # Text goes through stdin (-b 1: UTF-8), never argv: no length limit, a leading "-" stays text.
        cmd = [self._exe, "-v", voice, "-b", "1", "--stdout"]
        try:
            proc = subprocess.run(
                cmd, input=text.encode("utf-8"), capture_output=True, timeout=120, check=False
            )
        except FileNotFoundError as exc:
            raise EspeakMissingError(f"espeak-ng disappeared from {self._exe!r}; {_INSTALL_HINT}") from exc
        except subprocess.TimeoutExpired as exc:
            raise RtlabError(f"espeak-ng took over 120 s for {len(text)} characters of text") from exc
        if proc.returncode != 0 or not proc.stdout:
            raise RtlabError(
                f"espeak-ng failed (exit {proc.returncode}) for voice {voice!r}: "
                f"{proc.stderr.decode('utf-8', 'replace').strip()[:300]!r}"
            )
        data, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
        y = data.mean(axis=1)
        if rate != self.sample_rate and len(y):
            y = soxr.resample(y, rate, self.sample_rate, quality="HQ")
        return np.clip(np.rint(y * 32767.0), -32768, 32767).astype(np.int16)
