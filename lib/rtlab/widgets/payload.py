"""Turn an event log into the compact payload the widgets ship to the browser.

Pure functions, no widgets: a peaks pyramid per audio lane, a columnar span table per source and tier, and
compressed audio bytes. Everything here is binary-first (numpy arrays serialised with ``tobytes``) so a 60-minute
session with 50,000 events fits in a few megabytes, and everything can be tested without a browser.

Span placement in audio time (the audio clock of the session):

- ``vad``: a turn a source's VAD heard (turns ending at a ``speech_stopped``), from the turns table.
- ``item``: every turn's span in audio time (from the turns table), labelled with its transcript.
- ``delta`` / ``completed``: ticks at the ``audio_ms`` where a text event arrived (by role, any protocol family);
  clicking plays the turn's window.
- ``response``: response started → done (arrival times); plays the source's output audio.
- ``output``: ticks where assistant or translated text arrived (GPT-Live answers, translation sidecars; Realtime
  answers are drawn as responses).
- ``error``: ticks for errors and failed transcriptions.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rtlab.protocol.events import OUTPUT_AUDIO_FIELDS, role_of

#: Tier names, in the order the timeline draws them within a source.
TIERS: tuple[str, ...] = ("vad", "item", "delta", "completed", "response", "output", "error")
#: Tiers drawn as ticks (instants) rather than intervals.
TICK_TIERS: frozenset[str] = frozenset({"delta", "completed", "output", "error"})
#: Human labels for the legend.
TIER_LABELS: dict[str, str] = {
    "vad": "VAD speech",
    "item": "committed item",
    "delta": "transcript delta",
    "completed": "transcript final",
    "response": "response",
    "output": "assistant / translated text",
    "error": "error / failed",
}

_LABEL_MAX = 160
#: Half-width of the window an error without an item plays, in ms.
_ERROR_PLAY_MS = 1000

# --------------------------------------------------------------------------------------------------
# Peaks
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeakLevel:
    """One level of a peaks pyramid: ``count`` (min, max) int8 pairs, each covering ``bin_ms`` of audio."""

    bin_ms: float
    count: int
    data: bytes = field(repr=False)


def peaks_pyramid(
    samples: np.ndarray, sample_rate: int, *, base_bins: int = 200_000, min_bin_ms: float = 5.0, factor: int = 4
) -> tuple[list[PeakLevel], float]:
    """Min/max peaks at several zoom levels.

    Parameters
    ----------
    samples : np.ndarray, shape (n,)
        Mono PCM16 (int16) or float samples.
    sample_rate : int
        Samples per second of ``samples``.
    base_bins : int
        At most this many bins in the finest level (bounds the payload of long sessions).
    min_bin_ms : float
        Finest bin width for short clips.
    factor : int
        Each coarser level merges ``factor`` bins of the previous one.

    Returns
    -------
    levels : list of PeakLevel
        Finest first. Each level's ``data`` is ``count`` interleaved (min, max) int8 values scaled to ±127 of
        the lane's peak amplitude.
    peak : float
        The lane's peak absolute amplitude in full-scale units (0..1), so a view can show true loudness.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate!r}")
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ValueError(f"samples must be mono (1-D), got shape {x.shape}; mix down first")
    if x.dtype != np.int16:
        x = x.astype(np.float32, copy=False)
    if x.size == 0:
        return [], 0.0
    duration_ms = x.size * 1000.0 / sample_rate
    bin_ms = max(min_bin_ms, duration_ms / base_bins)
    spb = max(1, round(sample_rate * bin_ms / 1000.0))
    bin_ms = spb * 1000.0 / sample_rate
    # min/max straight on the stored dtype (no float copy of an hour of int16); the ragged tail on its own
    full = x.size // spb
    body = x[: full * spb].reshape(full, spb)
    lo, hi = body.min(axis=1), body.max(axis=1)
    if x.size > full * spb:
        tail = x[full * spb:]
        lo, hi = np.append(lo, tail.min()), np.append(hi, tail.max())
    unit = 32768.0 if x.dtype == np.int16 else 1.0
    lo = lo.astype(np.float32) / unit
    hi = hi.astype(np.float32) / unit
    peak = float(max(abs(lo.min()), abs(hi.max())))
    scale = 127.0 / peak if peak > 0 else 0.0
    levels: list[PeakLevel] = []
    while True:
        pair = np.empty(2 * lo.size, dtype=np.int8)
        pair[0::2] = np.clip(np.floor(lo * scale), -127, 127).astype(np.int8)
        pair[1::2] = np.clip(np.ceil(hi * scale), -127, 127).astype(np.int8)
        levels.append(PeakLevel(bin_ms=bin_ms, count=int(lo.size), data=pair.tobytes()))
        if lo.size <= 512:
            break
        m = math.ceil(lo.size / factor)
        pad = m * factor - lo.size
        lo = np.concatenate([lo, np.full(pad, lo[-1])]).reshape(m, factor).min(axis=1)
        hi = np.concatenate([hi, np.full(pad, hi[-1])]).reshape(m, factor).max(axis=1)
        bin_ms *= factor
    return levels, peak


@dataclass
class Lane:
    """One waveform lane: the input, or one source's assistant output."""

    name: str
    kind: str  # "input" | "output"
    source: str | None
    samples: np.ndarray = field(repr=False)
    sample_rate: int

    @property
    def duration_ms(self) -> float:
        return self.samples.size * 1000.0 / self.sample_rate if self.sample_rate else 0.0


def pack_peaks(lanes: list[Lane]) -> tuple[bytes, list[dict[str, Any]]]:
    """All lanes' pyramids in one bytes blob plus an index the JS reads (offsets in bytes)."""
    blob = bytearray()
    index: list[dict[str, Any]] = []
    for li, lane in enumerate(lanes):
        levels, peak = peaks_pyramid(lane.samples, lane.sample_rate)
        for lvl in levels:
            index.append(
                {"lane": li, "bin_ms": lvl.bin_ms, "count": lvl.count, "offset": len(blob), "peak": peak}
            )
            blob += lvl.data
    return bytes(blob), index


# --------------------------------------------------------------------------------------------------
# Spans
# --------------------------------------------------------------------------------------------------


@dataclass
class Spans:
    """A columnar table of spans (one row per drawable span).

    Columns are numpy arrays of equal length. ``start_ms``/``end_ms`` is what is drawn (equal for ticks);
    ``play_start_ms``/``play_end_ms`` is what a click plays; ``seq`` is the event that defines the span (for
    hover JSON); ``item`` and ``label`` index into ``items`` and ``labels``; ``source`` and ``tier`` index into
    ``sources`` and :data:`TIERS`.
    """

    sources: list[str]
    items: list[str]
    labels: list[str]
    start_ms: np.ndarray
    end_ms: np.ndarray
    play_start_ms: np.ndarray
    play_end_ms: np.ndarray
    seq: np.ndarray
    item: np.ndarray
    label: np.ndarray
    source: np.ndarray
    tier: np.ndarray

    _INT_COLUMNS = ("start_ms", "end_ms", "play_start_ms", "play_end_ms", "seq", "item", "label")
    _BYTE_COLUMNS = ("source", "tier")

    def __len__(self) -> int:
        return int(self.seq.size)

    def counts(self) -> dict[str, dict[str, int]]:
        """Number of spans per source and tier (only non-empty tiers)."""
        out: dict[str, dict[str, int]] = {}
        if len(self) == 0:
            return out
        keys, n = np.unique(self.source.astype(np.int32) * 256 + self.tier, return_counts=True)
        for k, c in zip(keys.tolist(), n.tolist(), strict=True):
            out.setdefault(self.sources[k // 256], {})[TIERS[k % 256]] = c
        return out

    def row(self, i: int) -> dict[str, Any]:
        """One span as a plain dict (the shape of ``Timeline.selection``)."""
        item = int(self.item[i])
        return {
            "source": self.sources[int(self.source[i])],
            "kind": TIERS[int(self.tier[i])],
            "item_id": self.items[item] if item >= 0 else None,
            "start_ms": int(self.play_start_ms[i]),
            "end_ms": int(self.play_end_ms[i]),
            "seq": int(self.seq[i]),
        }

    def find(self, *, seq: int | None = None, source: str | None = None, kind: str | None = None,
             item_id: str | None = None) -> int | None:
        """Index of the first span matching every given field, or ``None``."""
        mask = np.ones(len(self), dtype=bool)
        if seq is not None:
            mask &= self.seq == int(seq)
        if source is not None:
            if source not in self.sources:
                return None
            mask &= self.source == self.sources.index(source)
        if kind is not None:
            if kind not in TIERS:
                return None
            mask &= self.tier == TIERS.index(kind)
        if item_id is not None:
            if item_id not in self._item_index:
                return None
            mask &= self.item == self._item_index[item_id]
        hits = np.flatnonzero(mask)
        return int(hits[0]) if hits.size else None

    @property
    def _item_index(self) -> dict[str, int]:
        cache = self.__dict__.get("_item_index_cache")
        if cache is None:
            cache = {v: i for i, v in enumerate(self.items)}
            self.__dict__["_item_index_cache"] = cache
        return cache

    def pack(self) -> tuple[bytes, dict[str, Any]]:
        """Columns as one bytes blob (int32 columns, then uint8 columns) and the JSON meta the JS needs."""
        n = len(self)
        parts = [np.ascontiguousarray(getattr(self, c), dtype="<i4").tobytes() for c in self._INT_COLUMNS]
        parts += [np.ascontiguousarray(getattr(self, c), dtype=np.uint8).tobytes() for c in self._BYTE_COLUMNS]
        meta = {
            "n": n,
            "int_columns": list(self._INT_COLUMNS),
            "byte_columns": list(self._BYTE_COLUMNS),
            "sources": self.sources,
            "tiers": list(TIERS),
            "tick_tiers": sorted(TICK_TIERS),
            "items": self.items,
            "labels": self.labels,
            "counts": self.counts(),
        }
        return b"".join(parts), meta


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def build_spans(frame: pd.DataFrame, turns: pd.DataFrame, *, end_ms: float | None = None) -> Spans:
    """Spans for every source and tier, from an event frame and the turns table of the same log.

    Turn windows (``vad``: the span a source heard as speech; ``item``: its committed turn) come from the turns
    table (:func:`rtlab.analysis.turns`), so every protocol family is drawn alike; ticks come from the events by
    their role (:data:`rtlab.protocol.events.EVENT_ROLES`): a delta or final plays its turn's window, an error one
    second around it.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``EventLog.to_frame()``: needs ``seq``, ``audio_ms``, ``direction``, ``source``, ``type``, ``item_id``,
        ``response_id``, ``event``.
    turns : pandas.DataFrame
        ``rtlab.analysis.turns(log)`` of the same log.
    end_ms : float, optional
        Where open spans (a response never done) end; default: the last ``audio_ms``.
    """
    missing = {"seq", "audio_ms", "direction", "source", "type", "item_id", "response_id", "event"} - set(frame.columns)
    if missing:
        raise ValueError(f"event frame lacks columns {sorted(missing)}; pass EventLog.to_frame()")
    audio = pd.to_numeric(frame["audio_ms"], errors="coerce")
    last_ms = float(audio.max()) if audio.notna().any() else 0.0
    end_ms = last_ms if end_ms is None else float(end_ms)

    sources: list[str] = list(dict.fromkeys(frame["source"].astype(str).tolist() + turns["source"].astype(str).tolist()))
    items: list[str] = []
    item_index: dict[str, int] = {}
    labels: list[str] = []
    rows: list[tuple[int, int, int, int, int, int, int, int, int]] = []

    def item_no(item_id: Any) -> int:
        if not isinstance(item_id, str) or not item_id:
            return -1
        if item_id not in item_index:
            item_index[item_id] = len(items)
            items.append(item_id)
        return item_index[item_id]

    def label_no(text: Any) -> int:
        if not isinstance(text, str) or not text:
            return -1
        labels.append(text if len(text) <= _LABEL_MAX else text[: _LABEL_MAX - 1] + "…")
        return len(labels) - 1

    def add(src: int, tier: str, start: float, end: float, play0: float, play1: float, seq: int, item: int,
            label: int = -1) -> None:
        rows.append((round(start), round(end), round(play0), round(play1), seq, item, label, src, TIERS.index(tier)))

    # Turn windows from the turns table.
    windows: dict[tuple[str, str], tuple[float, float]] = {}
    seq_of = _first_seq(frame)
    for t in turns.itertuples(index=False):
        start, end = _num(t.audio_start_ms), _num(t.audio_end_ms)
        if start is None:
            continue
        end = end if end is not None else end_ms
        key = (str(t.source), str(t.item_id))
        windows[key] = (start, end)
        src = sources.index(str(t.source))
        seq = seq_of.get(key, -1)
        if t.end_anchor == "speech_stopped" or _num(t.audio_end_ms) is None:  # a VAD turn (or one still open)
            add(src, "vad", start, end, start, end, seq, item_no(t.item_id))
        add(src, "item", start, end, start, end, seq, item_no(t.item_id), label_no(t.transcript))

    # Ticks by role.
    server = frame[(frame["direction"] == "server").to_numpy()]
    roles = [role_of(t, s) for t, s in zip(server["type"].astype(str), server["source"].astype(str), strict=True)]
    events = server["event"].array
    server_types = server["type"].astype(str).tolist()
    responses: dict[tuple[str, str], tuple[float, int]] = {}
    finals = {(str(t.source), str(t.item_id)): t.transcript for t in turns.itertuples(index=False)}
    for i, (role, seq, at, source, item_id, rid) in enumerate(zip(
            roles, server["seq"].tolist(), server["audio_ms"].tolist(), server["source"].astype(str).tolist(),
            server["item_id"].tolist(), server["response_id"].tolist(), strict=True)):
        if not isinstance(role, str):
            continue
        at = _num(at)
        at = end_ms if at is None else at
        src = sources.index(source)
        key = (source, item_id if isinstance(item_id, str) else "")
        if role in ("partial", "final"):
            span = _timeline_span(events[i]) if server_types[i] == "session.input_transcript.delta" else None
            if span is not None:  # GPT-Live: a fragment stamped on the session timeline, no item of its own
                item_id = _window_at(windows, source, span)
                key = (source, item_id or "")
            w = span or windows.get(key) or (max(0.0, at - _ERROR_PLAY_MS), at)
            # Delta texts are not drawn (ticks) and hover fetches the JSON: no decoding of tens of thousands.
            add(src, "delta" if role == "partial" else "completed", at, at, w[0], w[1], int(seq), item_no(item_id),
                label_no(finals.get(key)) if role == "final" else -1)
        elif role == "response_start" and isinstance(rid, str):
            responses[(source, rid)] = (at, int(seq))
        elif role == "response_end" and isinstance(rid, str):
            start = responses.pop((source, rid), None)
            if start is not None:
                add(src, "response", start[0], at, start[0], at, start[1], -1)
        elif role == "output" and _session_text(server_types[i]):
            # GPT-Live's answer or a translation, as it streams (its audio is the source's output lane)
            add(src, "output", at, at, max(0.0, at - _ERROR_PLAY_MS), at, int(seq), item_no(item_id))
        elif role == "error":
            w = windows.get(key) or (max(0.0, at - _ERROR_PLAY_MS), at + _ERROR_PLAY_MS)
            ev = events[i]
            err = ev.get("error") if isinstance(ev, Mapping) else None
            msg = (err.get("message") or err.get("code")) if isinstance(err, Mapping) else \
                (ev.get("message") if isinstance(ev, Mapping) else None)
            add(src, "error", at, at, w[0], w[1], int(seq), item_no(item_id), label_no(msg))
    for (src_name, _rid), (start, seq) in responses.items():  # never done: open until the end
        add(sources.index(src_name), "response", start, end_ms, start, end_ms, seq, -1)

    arr = np.array(rows, dtype=np.int64).reshape(-1, 9)
    if arr.size:
        arr = arr[np.lexsort((arr[:, 0], arr[:, 8], arr[:, 7]))]  # by source, tier, start
    col = arr.T
    return Spans(
        sources=sources,
        items=items,
        labels=labels,
        start_ms=col[0].astype(np.int32),
        end_ms=col[1].astype(np.int32),
        play_start_ms=col[2].astype(np.int32),
        play_end_ms=col[3].astype(np.int32),
        seq=col[4].astype(np.int32),
        item=col[5].astype(np.int32),
        label=col[6].astype(np.int32),
        source=col[7].astype(np.uint8),
        tier=col[8].astype(np.uint8),
    )


def _timeline_span(event: Any) -> tuple[float, float] | None:
    """``(start_ms, end_ms)`` of an input-transcript fragment stamped on the session timeline (GPT-Live).

    The Live leg streams from the session's start, so the session timeline is the input audio clock
    (:mod:`rtlab.analysis.live` uses the same offset, 0).
    """
    if not isinstance(event, Mapping) or event.get("type") != "session.input_transcript.delta":
        return None
    start, end = _num(event.get("start_ms")), _num(event.get("end_ms"))
    return (start, end) if start is not None and end is not None else None


def _window_at(windows: Mapping[tuple[str, str], tuple[float, float]], source: str,
               span: tuple[float, float]) -> str | None:
    """The item of ``source`` whose turn window overlaps ``span`` most (None when none does)."""
    best, best_overlap = None, 0.0
    for (src, item_id), (start, end) in windows.items():
        overlap = min(end, span[1]) - max(start, span[0])
        if src == source and overlap > best_overlap:
            best, best_overlap = item_id, overlap
    return best


def _session_text(event_type: str) -> bool:
    """Assistant or translated text of a session without responses (GPT-Live, translation), not audio."""
    return event_type.startswith("session.") and event_type.endswith("transcript.delta")


def _first_seq(frame: pd.DataFrame) -> dict[tuple[str, str], int]:
    """The first record of each (source, item): what hovering a turn window shows."""
    sub = frame[frame["item_id"].notna().to_numpy() & (frame["direction"] == "server").to_numpy()]
    first = sub.groupby([sub["source"].astype(str), sub["item_id"].astype(str)], sort=False)["seq"].min()
    return {k: int(v) for k, v in first.items()}


def output_sources(frame: pd.DataFrame) -> list[str]:
    """Sources that streamed assistant audio (those get an output waveform lane)."""
    mask = (frame["direction"] == "server") & frame["type"].astype(str).isin(list(OUTPUT_AUDIO_FIELDS))
    return list(dict.fromkeys(frame.loc[mask, "source"].tolist()))


# --------------------------------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------------------------------

PLAYBACK_RATE = 16000
#: Opus bitrate bounds (bits per second) and the total audio budget a timeline may ship.
_OPUS_MIN_BPS, _OPUS_MAX_BPS = 10_000, 32_000
AUDIO_BUDGET_BYTES = 7_000_000


def opus_available() -> bool:
    """Whether the installed libsndfile can write OGG/Opus."""
    try:
        import soundfile as sf

        return "OGG" in sf.available_formats() and "OPUS" in sf.available_subtypes("OGG")
    except Exception:  # libsndfile missing or too old: fall back to WAV
        return False


#: Rates Opus encodes natively (libsndfile refuses others).
_OPUS_RATES = frozenset({8000, 12000, 16000, 24000, 48000})


def _float_mono(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples)
    return x.astype(np.float32) / 32768.0 if x.dtype == np.int16 else x.astype(np.float32, copy=False)


def _resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    from rtlab.audio import resample

    return resample(x, rate, target).astype(np.float32)


def opus_bitrate(total_seconds: float, budget_bytes: int = AUDIO_BUDGET_BYTES) -> int:
    """The Opus bitrate that fits ``total_seconds`` of audio in ``budget_bytes``, within 10..32 kbit/s."""
    if total_seconds <= 0:
        return _OPUS_MAX_BPS
    return int(min(_OPUS_MAX_BPS, max(_OPUS_MIN_BPS, budget_bytes * 8 * 0.9 / total_seconds)))


def encode_audio(samples: np.ndarray, sample_rate: int, *, fmt: str = "auto", bitrate: int | None = None
                 ) -> tuple[bytes, str]:
    """Encode mono audio for an ``<audio>`` element: OGG/Opus (at the input rate when Opus supports it, else
    16 kHz), or 16 kHz PCM16 WAV.

    Parameters
    ----------
    samples : np.ndarray, shape (n,)
        int16 PCM or float in [-1, 1].
    sample_rate : int
        Rate of ``samples``.
    fmt : {"auto", "opus", "wav"}
        ``auto`` picks Opus when libsndfile supports it.
    bitrate : int, optional
        Opus bits per second (default: :func:`opus_bitrate` of the duration).

    Returns
    -------
    data : bytes
        The encoded file.
    mime : str
        ``audio/ogg; codecs=opus`` or ``audio/wav``.
    """
    import soundfile as sf

    if fmt not in ("auto", "opus", "wav"):
        raise ValueError(f"audio format must be 'auto', 'opus' or 'wav', got {fmt!r}")
    if fmt == "auto":
        fmt = "opus" if opus_available() else "wav"
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate!r}")
    x = _float_mono(samples)
    buf = io.BytesIO()
    if fmt == "opus":
        rate = sample_rate if sample_rate in _OPUS_RATES else PLAYBACK_RATE
        x = _resample(x, sample_rate, rate)
        if x.size == 0:
            x = np.zeros(rate // 10, dtype=np.float32)  # libsndfile cannot write an empty Opus stream
        bps = bitrate or opus_bitrate(x.size / rate)
        # libsndfile maps compression_level 0..1 linearly onto 256..6 kbit/s for Opus.
        level = min(1.0, max(0.0, (256_000 - bps) / 250_000))
        _write_blocks(buf, x, rate, format="OGG", subtype="OPUS", compression_level=level)
        return buf.getvalue(), "audio/ogg; codecs=opus"
    x = _resample(x, sample_rate, PLAYBACK_RATE)
    sf.write(buf, x, PLAYBACK_RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue(), "audio/wav"


def _write_blocks(buf: io.BytesIO, x: np.ndarray, rate: int, **kwargs: Any) -> None:
    """Write in one-second blocks: libsndfile 1.2's Ogg writers crash on very large single writes."""
    import soundfile as sf

    with sf.SoundFile(buf, "w", samplerate=rate, channels=1, **kwargs) as fh:
        for i in range(0, x.size, rate):
            fh.write(x[i:i + rate])


def jsonable(obj: Any) -> Any:
    """A JSON-safe copy of an event dict (mappings → dicts, numpy scalars → Python, NaN → None)."""
    return _clean(json.loads(json.dumps(obj, default=_default)))


def _clean(v: Any) -> Any:
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def _default(o: Any) -> Any:
    if isinstance(o, Mapping):  # e.g. a lazily decoded event
        return dict(o)
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, bytes):
        return f"<{len(o)} bytes>"
    return str(o)
