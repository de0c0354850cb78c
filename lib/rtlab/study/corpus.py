"""Corpus readers: which audio files a study runs over, with their references, speakers and metadata.

Layer: runs (study). Four ways to name a corpus in a study file (``corpus:``), each read into a sorted list of
:class:`CorpusItem`:

``{bundled: [short, monologue]}`` (or ``bundled: all``)
    rtlab's clips (``data/manifest.json``), with their true utterance spans and speakers.
``{folder: DIR, pattern: "**/*.wav"}``
    every audio file under ``DIR`` matching ``pattern`` (default: all of wav/flac/ogg/mp3/m4a/opus/webm, any
    depth); a ``NAME.txt`` beside ``NAME.wav`` is its reference text. Key: the path relative to ``DIR``.
``{manifest: FILE}``
    a CSV, Parquet or JSON Lines table with ``audio_path`` (relative paths are relative to the manifest's
    folder), optional ``reference``, ``speaker``, ``id`` (the key; default: ``audio_path``) and any metadata
    columns, kept on every result row as ``meta_<column>``.
``{librispeech: DIR}``
    the LibriSpeech layout ``SPEAKER/CHAPTER/SPEAKER-CHAPTER-NNNN.flac`` with ``SPEAKER-CHAPTER.trans.txt``
    (``UTTERANCE-ID TEXT`` per line). Key: the utterance id; speaker and chapter from the path.

Every form takes ``limit: N`` (the first N items in key order). Keys are unique within a corpus and, with the
condition, make a unit's id: keep them stable and a re-run resumes where it stopped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["AUDIO_SUFFIXES", "CorpusItem", "read_corpus"]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus", ".webm")
_KINDS = ("bundled", "folder", "manifest", "librispeech")


@dataclass(frozen=True)
class CorpusItem:
    """One audio file of a corpus.

    Attributes
    ----------
    key
        Stable id within the corpus (clip name, relative path, manifest ``id`` or LibriSpeech utterance id).
    audio_path
        Absolute path of the audio file.
    reference
        The whole file's reference text, or None.
    utterances
        True speech spans ``({"text", "start_s", "end_s", "speaker"?}, ...)`` when known (bundled clips), else None.
    speaker
        The file's speaker when there is one, else None.
    metadata
        Extra columns as ``((name, value), ...)`` with JSON scalar values.
    """

    key: str
    audio_path: str
    reference: str | None = None
    utterances: tuple[dict, ...] | None = field(default=None, compare=False)
    speaker: str | None = None
    metadata: tuple[tuple[str, Any], ...] = ()


def read_corpus(spec: Any, *, base: str | Path = ".") -> list[CorpusItem]:
    """Read a corpus spec (see the module docstring); relative paths are resolved against ``base``.

    Raises
    ------
    ConfigError
        An unknown form, a missing folder or file, a manifest without ``audio_path``, duplicate keys, or an
        empty corpus; the message names the path and the fix.
    """
    if isinstance(spec, str):
        spec = {"folder": spec}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"corpus: expected a mapping like {{folder: DIR}}, got {spec!r}", field="corpus",
                          fix="use one of: bundled, folder, manifest, librispeech")
    kinds = [k for k in _KINDS if k in spec]
    unknown = set(spec) - set(_KINDS) - {"pattern", "limit"}
    if len(kinds) != 1 or unknown:
        raise ConfigError(f"corpus: {dict(spec)!r} must name exactly one of {', '.join(_KINDS)}"
                          + (f" (unknown keys {sorted(unknown)})" if unknown else ""), field="corpus",
                          fix="e.g. corpus: {librispeech: /data/LibriSpeech/test-clean, limit: 100}")
    kind = kinds[0]
    base = Path(base)
    if kind == "bundled":
        items = _bundled(spec["bundled"])
    elif kind == "folder":
        items = _folder(_path(spec["folder"], base, "folder"), spec.get("pattern"))
    elif kind == "manifest":
        items = _manifest(_path(spec["manifest"], base, "manifest"))
    else:
        items = _librispeech(_path(spec["librispeech"], base, "librispeech"))
    keys: dict[str, int] = {}
    for it in items:
        keys[it.key] = keys.get(it.key, 0) + 1
    dup = sorted(k for k, n in keys.items() if n > 1)
    if dup:
        raise ConfigError(f"corpus: duplicate keys {dup[:5]}", field="corpus",
                          fix="give each manifest row a unique 'id' (or unique audio_path)")
    items.sort(key=lambda it: it.key)
    limit = spec.get("limit")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ConfigError(f"corpus.limit must be a positive whole number, got {limit!r}", field="corpus.limit")
        items = items[:limit]
    if not items:
        raise ConfigError(f"corpus {dict(spec)!r} has no audio files", field="corpus",
                          fix="check the path and pattern (audio: " + ", ".join(AUDIO_SUFFIXES) + ")")
    return items


def _path(value: Any, base: Path, what: str) -> Path:
    if not isinstance(value, str | Path) or not str(value):
        raise ConfigError(f"corpus.{what} must be a path, got {value!r}", field=f"corpus.{what}")
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p)


def _bundled(names: Any) -> list[CorpusItem]:
    from .. import data
    from ..paths import data_dir

    table = data.load_manifest()["clips"]
    if names in ("all", True, None):
        names = sorted(table)
    if isinstance(names, str):
        names = [names]
    out = []
    for name in names:
        if name not in table:
            raise ConfigError(f"corpus.bundled: {name!r} is not a bundled clip", field="corpus.bundled",
                              fix=f"use some of {', '.join(sorted(table))}, or all")
        e = table[name]
        speakers = sorted({u.get("speaker") for u in e["utterances"] if u.get("speaker")})
        utts = tuple({k: u[k] for k in ("text", "start_s", "end_s", "speaker") if k in u} for u in e["utterances"])
        out.append(CorpusItem(
            key=name, audio_path=str((data_dir() / e["file"]).resolve()), reference=e.get("reference"),
            utterances=utts, speaker=speakers[0] if len(speakers) == 1 else None,
            metadata=(("clip_condition", e.get("condition")),)))
    return out


def _folder(root: Path, pattern: str | None) -> list[CorpusItem]:
    if not root.is_dir():
        raise ConfigError(f"corpus.folder {str(root)!r} is not a folder", field="corpus.folder")
    files = root.glob(pattern) if pattern else (p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    out = []
    for p in files:
        if not p.is_file():
            continue
        txt = p.with_suffix(".txt")
        ref = txt.read_text(encoding="utf-8").strip() if txt.is_file() else None
        out.append(CorpusItem(key=p.relative_to(root).as_posix(), audio_path=str(p.resolve()), reference=ref or None))
    return out


def _scalar(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return None if math.isnan(v) else v
    if hasattr(v, "item"):  # numpy scalars
        return _scalar(v.item())
    return str(v)


def _manifest(path: Path) -> list[CorpusItem]:
    import pandas as pd

    if not path.is_file():
        raise ConfigError(f"corpus.manifest {str(path)!r} does not exist", field="corpus.manifest")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            df = pd.read_csv(path, dtype={"reference": "string", "speaker": "string", "id": "string"})
        elif suffix in (".parquet", ".pq"):
            df = pd.read_parquet(path)
        elif suffix in (".jsonl", ".ndjson", ".json"):
            df = pd.read_json(path, lines=True, dtype=False)
        else:
            raise ConfigError(f"corpus.manifest {str(path)!r}: unknown table format {suffix!r}",
                              field="corpus.manifest", fix="use .csv, .parquet or .jsonl")
    except (ValueError, OSError) as exc:
        raise ConfigError(f"corpus.manifest {str(path)!r} cannot be read: {exc}", field="corpus.manifest") from None
    if "audio_path" not in df.columns:
        raise ConfigError(f"corpus.manifest {str(path)!r} has no audio_path column (columns: {list(df.columns)})",
                          field="corpus.manifest", fix="name the audio column audio_path")
    known = {"audio_path", "reference", "speaker", "id"}
    extra = [c for c in df.columns if c not in known]
    out = []
    for row in df.to_dict("records"):
        raw = row["audio_path"]
        if not isinstance(raw, str) or not raw:
            raise ConfigError(f"corpus.manifest {str(path)!r}: a row has audio_path={raw!r}", field="audio_path")
        audio = Path(raw).expanduser()
        audio = audio if audio.is_absolute() else path.parent / audio
        key = _scalar(row.get("id")) if "id" in df.columns else None
        ref = _scalar(row.get("reference"))
        spk = _scalar(row.get("speaker"))
        out.append(CorpusItem(
            key=str(key) if key is not None else raw, audio_path=str(audio.resolve()),
            reference=str(ref) if ref not in (None, "") else None, speaker=str(spk) if spk is not None else None,
            metadata=tuple((c, _scalar(row[c])) for c in extra)))
    return out


def _librispeech(root: Path) -> list[CorpusItem]:
    if not root.is_dir():
        raise ConfigError(f"corpus.librispeech {str(root)!r} is not a folder", field="corpus.librispeech",
                          fix="point it at a split folder such as LibriSpeech/test-clean")
    out = []
    for trans in sorted(root.glob("*/*/*.trans.txt")):
        speaker, chapter = trans.parent.parent.name, trans.parent.name
        for line in trans.read_text(encoding="utf-8").splitlines():
            utt, _, text = line.strip().partition(" ")
            if not utt:
                continue
            audio = trans.parent / f"{utt}.flac"
            if not audio.is_file():
                raise ConfigError(f"corpus.librispeech: {trans} names {utt} but {audio.name} is missing",
                                  field="corpus.librispeech")
            out.append(CorpusItem(key=utt, audio_path=str(audio.resolve()), reference=text.strip() or None,
                                  speaker=speaker, metadata=(("chapter", chapter),)))
    return out
