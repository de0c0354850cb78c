"""Offline text translation with Apertium (layer: engines).

The emulator's translation endpoint (``/v1/realtime/translations``) turns the source transcript into the
target language with the ``apertium`` program and the language-pair data Debian packages (``apertium-eng-spa``
for English→Spanish). Apertium is rule-based: deterministic (same text → same translation), no model weights,
no network.

Language pairs are discovered, not listed: :func:`apertium_pairs` asks the installed ``apertium`` which modes
it has (``apertium -l``), so any pair installed later is picked up. Apertium names modes with ISO 639-3 codes
(``eng-spa``) in current data and ISO 639-1 codes in older data (``en-gl``); both are exposed under ISO 639-1
codes (``("en", "es")``), the codes the translation API uses for ``audio.output.language``.

=================================  =========================================================================
:class:`ApertiumTranslator`        one language pair; ``translate``/``translate_many``, cached, batched
:func:`apertium_pairs`             installed pairs → Apertium mode names
:func:`debian_package`             the Debian package that provides a pair (for error messages)
:class:`ApertiumMissingError`      the ``apertium`` program is not installed (names package ``apertium``)
:class:`LanguagePairMissingError`  the pair is not installed (names the package to install)
=================================  =========================================================================

Example
-------
>>> tr = ApertiumTranslator("en", "es")                                   # doctest: +SKIP
>>> tr.translate("i would like a cup of coffee please")                   # doctest: +SKIP
'Gustaría una taza de café complace'
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Mapping
from types import MappingProxyType

from rtlab.errors import ConfigError, RtlabError

__all__ = [
    "ApertiumMissingError",
    "ApertiumTranslator",
    "DEBIAN_PAIR_PACKAGES",
    "LanguagePairMissingError",
    "apertium_pairs",
    "debian_package",
    "forget_pairs",
    "iso639_1",
]

#: ISO 639-3 (and Apertium's own) codes → ISO 639-1, for the languages of Debian's Apertium pairs and of the
#: translation model's output languages. Codes without a two-letter form (``ast``, ``arg``) stay as they are.
_ISO3_TO_1: MappingProxyType[str, str] = MappingProxyType(
    {
        "afr": "af",
        "arg": "an",
        "bel": "be",
        "bre": "br",
        "bul": "bg",
        "cat": "ca",
        "dan": "da",
        "deu": "de",
        "eng": "en",
        "epo": "eo",
        "eus": "eu",
        "fra": "fr",
        "glg": "gl",
        "hbs": "sh",
        "hin": "hi",
        "ind": "id",
        "isl": "is",
        "ita": "it",
        "jpn": "ja",
        "kor": "ko",
        "mkd": "mk",
        "nld": "nl",
        "nno": "nn",
        "nob": "nb",
        "nor": "no",
        "oci": "oc",
        "pol": "pl",
        "por": "pt",
        "ron": "ro",
        "rus": "ru",
        "slv": "sl",
        "spa": "es",
        "srd": "sc",
        "swe": "sv",
        "ukr": "uk",
        "urd": "ur",
        "vie": "vi",
        "zho": "zh",
        "zlm": "ms",
    }
)

#: Debian (12, bookworm) packages of the Apertium pairs that involve English, by unordered pair of ISO 639-1
#: codes (``apt-cache search apertium-``, 2026-12). A pair absent here is not packaged by Debian.
DEBIAN_PAIR_PACKAGES: MappingProxyType[frozenset[str], str] = MappingProxyType(
    {
        frozenset({"en", "es"}): "apertium-eng-spa",
        frozenset({"en", "ca"}): "apertium-eng-cat",
        frozenset({"en", "gl"}): "apertium-en-gl",
        frozenset({"en", "eo"}): "apertium-eo-en",
        frozenset({"en", "eu"}): "apertium-eu-en",
        frozenset({"en", "sh"}): "apertium-hbs-eng",
        frozenset({"en", "is"}): "apertium-isl-eng",
        frozenset({"en", "mk"}): "apertium-mkd-eng",
        frozenset({"es", "pt"}): "apertium-es-pt",
        frozenset({"es", "fr"}): "apertium-fr-es",
        frozenset({"es", "it"}): "apertium-spa-ita",
        frozenset({"es", "ca"}): "apertium-spa-cat",
        frozenset({"es", "gl"}): "apertium-es-gl",
        frozenset({"es", "ro"}): "apertium-es-ro",
    }
)

_MODE = re.compile(r"^([a-z]{2,3})-([a-z]{2,3})(?:_([A-Za-z0-9_]+))?$")
_INSTALL = "apt-get install"


class ApertiumMissingError(RtlabError):
    """Offline translation cannot run: no ``apertium`` program. ``package`` names the package to install."""

    def __init__(self, message: str, *, package: str = "apertium") -> None:
        super().__init__(message)
        self.package = package


class LanguagePairMissingError(ApertiumMissingError):
    """The pair ``source``→``target`` is not installed; ``package`` is the Debian package that adds it."""

    def __init__(self, source: str, target: str, *, installed: Mapping[tuple[str, str], str]) -> None:
        self.source = source
        self.target = target
        self.installed = dict(installed)
        package = debian_package(source, target)
        packaged = frozenset({source, target}) in DEBIAN_PAIR_PACKAGES
        have = ", ".join(f"{a}-{b}" for a, b in sorted(self.installed)) or "none"
        hint = (
            f"install it with `{_INSTALL} {package}`"
            if packaged
            else f"Debian does not package it: install the Apertium pair {package} from apertium.org"
        )
        super().__init__(
            f"no Apertium language pair {source}->{target} is installed (installed pairs: {have}); {hint}",
            package=package,
        )


def iso639_1(code: str) -> str:
    """``"eng"`` → ``"en"``, ``"en"`` → ``"en"`` (lower-cased; unknown three-letter codes stay as given)."""
    code = code.strip().lower()
    return _ISO3_TO_1.get(code, code)


def debian_package(source: str, target: str) -> str:
    """The Debian package of the pair (either direction), else Apertium's name pattern
    ``apertium-SRC-TGT``."""
    source, target = iso639_1(source), iso639_1(target)
    return DEBIAN_PAIR_PACKAGES.get(frozenset({source, target}), f"apertium-{source}-{target}")


def _find(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise ApertiumMissingError(
            f"offline translation needs the `{binary}` program, which is not on PATH "
            f"(PATH={os.environ.get('PATH', '')!r}); install it with `{_INSTALL} apertium apertium-eng-spa`"
        )
    return path


@functools.lru_cache(maxsize=16)
def _list_modes(exe: str, datadir: str | None) -> tuple[str, ...]:
    cmd = [exe, *(["-d", datadir] if datadir else []), "-l"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ApertiumMissingError(
            f"cannot run {exe!r} -l: {exc}; reinstall with `{_INSTALL} apertium`"
        ) from exc
    return tuple(name for name in out.split() if _MODE.match(name))


def apertium_pairs(*, binary: str = "apertium", datadir: str | None = None) -> dict[tuple[str, str], str]:
    """Installed pairs: ``{(source, target): mode}`` in ISO 639-1 codes, e.g. ``{("en", "es"): "eng-spa"}``.

    Regional variants (``spa-eng_US``) are used only when the plain mode is absent. The answer is cached per
    ``(binary, datadir)`` for the process; call :func:`forget_pairs` after installing a pair.

    Raises
    ------
    ApertiumMissingError
        When the ``apertium`` program is not installed.
    """
    modes = _list_modes(_find(binary), datadir)
    pairs: dict[tuple[str, str], str] = {}
    for name in sorted(modes, key=lambda m: ("_" in m, m)):  # plain modes first
        m = _MODE.match(name)
        if m is None:
            continue
        pairs.setdefault((iso639_1(m.group(1)), iso639_1(m.group(2))), name)
    return pairs


def forget_pairs() -> None:
    """Drop the cached answer of :func:`apertium_pairs` (after installing or removing a pair)."""
    _list_modes.cache_clear()


class ApertiumTranslator:
    """Translation of one language pair with Apertium; implements :class:`rtlab.engines.base.Translator`.

    Parameters
    ----------
    source, target : str
        ISO 639-1 (or 639-3) language codes, e.g. ``"en"``, ``"es"``.
    binary : str
        Name or path of the ``apertium`` program.
    datadir : str, optional
        Apertium data directory (``apertium -d``); default: the program's own.
    cache_size : int
        Translations kept (least recently used dropped); 0 disables the cache.
    timeout_s : float
        Longest one ``apertium`` call may take.

    Raises
    ------
    ApertiumMissingError
        When ``apertium`` is not installed.
    LanguagePairMissingError
        When the pair is not installed; ``.package`` names the Debian package to install.

    Notes
    -----
    One ``apertium`` process costs about a third of a second to start, whatever the text length, so
    :meth:`translate_many` sends all texts in one call (one text per line, ``-f line``). Unknown words pass
    through unmarked (``-u``); whitespace is normalised.
    """

    name = "apertium"

    def __init__(
        self,
        source: str = "en",
        target: str = "es",
        *,
        binary: str = "apertium",
        datadir: str | None = None,
        cache_size: int = 256,
        timeout_s: float = 60.0,
    ) -> None:
        for field, value in (("source", source), ("target", target)):
            if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{2,3}", value.strip()):
                raise ConfigError(
                    f"{field} must be an ISO 639-1 language code such as 'en' or 'es', got {value!r}.",
                    field=field,
                )
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigError(
                f"cache_size must be a non-negative integer, got {cache_size!r}.", field="cache_size"
            )
        self.source, self.target = iso639_1(source), iso639_1(target)
        self._exe = _find(binary)
        self._datadir = datadir
        pairs = apertium_pairs(binary=binary, datadir=datadir)
        mode = pairs.get((self.source, self.target))
        if mode is None:
            raise LanguagePairMissingError(self.source, self.target, installed=pairs)
        self.mode = mode
        self.cache_size = cache_size
        self.timeout_s = timeout_s
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self.calls = 0  # apertium processes started (for tests and benchmarks)

    def __repr__(self) -> str:
        return f"ApertiumTranslator({self.source!r}, {self.target!r}, mode={self.mode!r})"

    def translate(self, text: str) -> str:
        """``text`` in the target language (``""`` for empty text)."""
        return self.translate_many([text])[0]

    def translate_many(self, texts: list[str]) -> list[str]:
        """Independent texts in the target language, in order; one ``apertium`` call for all uncached ones."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ConfigError("translate_many takes a list of str.")
        clean = [" ".join(t.split()) for t in texts]  # one text per line: no newlines inside
        with self._lock:
            known = {t: self._cache[t] for t in set(clean) if t in self._cache}
            for t in known:
                self._cache.move_to_end(t)
        todo = sorted({t for t in clean if t and t not in known})
        if todo:
            known.update(zip(todo, self._run(todo), strict=True))
            with self._lock:
                for src in todo:
                    self._remember(src, known[src])
        return [known[t] if t else "" for t in clean]

    def _remember(self, src: str, out: str) -> None:
        if not self.cache_size:
            return
        self._cache[src] = out
        self._cache.move_to_end(src)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def _run(self, texts: list[str]) -> list[str]:
        lines = self._call("\n".join(texts) + "\n").split("\n")
        lines = lines[:-1] if lines and lines[-1] == "" else lines
        if len(lines) != len(texts):  # apertium merged or split a line: translate one by one
            return [self._call(t + "\n").strip() for t in texts] if len(texts) > 1 else [" ".join(lines)]
        return [_tidy(line) for line in lines]

    def _call(self, data: str) -> str:
        cmd = [self._exe, *(["-d", self._datadir] if self._datadir else []), "-u", "-f", "line", self.mode]
        self.calls += 1
        try:
            proc = subprocess.run(
                cmd,
                input=data,
                capture_output=True,
                text=True,
                encoding="utf-8",
                timeout=self.timeout_s,
                check=False,
            )
        except FileNotFoundError as exc:
            raise ApertiumMissingError(
                f"apertium disappeared from {self._exe!r}; reinstall with `{_INSTALL} apertium`"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise RtlabError(
                f"apertium {self.mode} took over {self.timeout_s} s for {len(data)} characters"
            ) from exc
        if proc.returncode != 0:
            raise RtlabError(
                f"apertium {self.mode} failed (exit {proc.returncode}): {proc.stderr.strip()[:300]!r}"
            )
        return proc.stdout


def _tidy(line: str) -> str:
    # '#' and '@' mark Apertium's generation/transfer gaps in front of a word; the word itself is kept.
    return " ".join(re.sub(r"(?<!\S)[#@](?=\w)", "", line).split())
