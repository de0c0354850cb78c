"""Subtitles from transcripts: one WebVTT / SRT file per source, cues in audio time (layer: analysis).

Each turn with a transcript and an audio span (``audio_start_ms``..``audio_end_ms`` from ``rtlab.analysis.turns(log)``)
becomes one cue, so subtitles line up with the recorded input audio (``events.input.wav``) when played together.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pandas as pd

from rtlab.log import EventLog

__all__ = ["to_webvtt", "to_srt", "write_subtitles"]


def _stamp(ms: float, sep: str) -> str:
    ms = max(0, int(round(ms)))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, milli = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{milli:03d}"


def _cues(turns: pd.DataFrame, source: str) -> list[tuple[float, float, str]]:
    if not isinstance(turns, pd.DataFrame):
        raise TypeError(f"subtitles take the DataFrame from rtlab.analysis.turns(log); got {type(turns).__name__}")
    missing = {"source", "audio_start_ms", "audio_end_ms", "transcript"} - set(turns.columns)
    if missing:
        raise ValueError(f"the turns table lacks columns {sorted(missing)}; pass rtlab.analysis.turns(log)")
    if source not in set(turns["source"]):
        raise ValueError(f"no turns for source {source!r}; sources: {list(dict.fromkeys(turns['source']))}")
    df = turns[turns["source"] == source]
    cues = []
    for start, end, text in zip(df["audio_start_ms"], df["audio_end_ms"], df["transcript"], strict=True):
        if not isinstance(text, str) or not text.strip():
            continue
        try:
            start, end = float(start), float(end)
        except (TypeError, ValueError):
            continue
        if not (math.isfinite(start) and math.isfinite(end)):
            continue
        end = max(end, start + 1)  # a cue must not end before it starts
        cues.append((start, end, " ".join(text.split())))
    return sorted(cues)


def to_webvtt(turns: pd.DataFrame, source: str) -> str:
    """The transcripts of ``source`` as a WebVTT document (``HH:MM:SS.mmm`` cue times in audio time).

    >>> df = pd.DataFrame({"source": ["s"], "audio_start_ms": [1500.0], "audio_end_ms": [3200.0],
    ...                    "transcript": ["hello <world>"]})
    >>> print(to_webvtt(df, "s"))
    WEBVTT
    <BLANKLINE>
    1
    00:00:01.500 --> 00:00:03.200
    hello &lt;world&gt;
    <BLANKLINE>
    """
    out = ["WEBVTT", ""]
    for i, (start, end, text) in enumerate(_cues(turns, source), 1):
        # WebVTT cue text is HTML-like: escape markup characters; "-->" may not appear in a cue.
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        out += [str(i), f"{_stamp(start, '.')} --> {_stamp(end, '.')}", text, ""]
    return "\n".join(out)


def to_srt(turns: pd.DataFrame, source: str) -> str:
    """The transcripts of ``source`` as SubRip (``HH:MM:SS,mmm`` cue times in audio time)."""
    out = []
    for i, (start, end, text) in enumerate(_cues(turns, source), 1):
        out += [str(i), f"{_stamp(start, ',')} --> {_stamp(end, ',')}", text, ""]
    return "\n".join(out)


def write_subtitles(log: EventLog, out_dir: str | os.PathLike, *, turns: pd.DataFrame | None = None) -> list[Path]:
    """Write ``<source>.vtt`` and ``<source>.srt`` for every source of ``log`` that has transcripts.

    Parameters
    ----------
    log : rtlab.log.EventLog
    out_dir : path
        Created when missing.
    turns : DataFrame, optional
        A precomputed ``rtlab.analysis.turns(log)`` (default: computed here).

    Returns
    -------
    list of Path
        The files written, two per source.
    """
    if turns is None:
        from .turns import turns as turns_of

        turns = turns_of(log)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for source in dict.fromkeys(turns["source"]):
        if not _cues(turns, source):
            continue
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(source)).strip("_") or "source"
        for ext, fn in (("vtt", to_webvtt), ("srt", to_srt)):
            p = out / f"{stem}.{ext}"
            p.write_text(fn(turns, source), encoding="utf-8")
            written.append(p)
    return written
