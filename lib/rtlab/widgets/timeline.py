"""``Timeline``: waveform lanes and event tiers of a recorded session, with click-to-play and hover JSON.

The Python side builds a compact binary payload (:mod:`rtlab.widgets.payload`): a peaks pyramid per audio lane,
a columnar span table, and compressed audio bytes. The ES module ``static/timeline.js`` draws it on a canvas,
plays spans through one ``<audio>`` element per lane, and asks for an event's JSON only when the pointer hovers
it (custom message ``{"type": "get_event", "seq": N}``), so 50,000 events do not travel as JSON.
"""

from __future__ import annotations

import base64
import io
import os
import threading
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import numpy as np
import pandas as pd
import traitlets as t

from ..errors import RtlabError
from . import payload as P
from .fallback import StaticFallback
from .live import LoopDispatch

if TYPE_CHECKING:  # pragma: no cover
    from rtlab.log import EventLog

_STATIC = Path(__file__).parent / "static"

#: Colours per tier, shared by the JS (sent in ``span_meta``) and the static PNG.
TIER_COLORS: dict[str, str] = {
    "vad": "#4e79a7",
    "item": "#59a14f",
    "delta": "#f28e2b",
    "completed": "#b07aa1",
    "response": "#76b7b2",
    "output": "#9c755f",
    "error": "#e15759",
}
_SELECTION_KEYS = ("source", "kind", "item_id", "start_ms", "end_ms", "seq")


def _frame_of(log: Any) -> pd.DataFrame:
    if isinstance(log, pd.DataFrame):
        return log
    if not hasattr(log, "to_frame"):
        raise TypeError(f"expected an EventLog (with to_frame()), got {type(log).__name__}")
    return log.to_frame()


def _turns_of(log: Any, frame: pd.DataFrame, turns: pd.DataFrame | None) -> pd.DataFrame:
    """The turns table the turn windows come from: given, else computed from the log (restricted to the frame's
    sources); an empty table for a bare frame without a log."""
    if turns is None:
        from rtlab.analysis import turns as turns_of
        from rtlab.analysis.turns import TURN_COLUMNS

        turns = turns_of(log) if not isinstance(log, pd.DataFrame) else pd.DataFrame(columns=TURN_COLUMNS)
    return turns[turns["source"].isin(set(frame["source"].unique()))]


def collect_lanes(log: EventLog, frame: pd.DataFrame) -> list[P.Lane]:
    """The waveform lanes of a log: its input audio, then each source's assistant output audio."""
    lanes: list[P.Lane] = []
    if hasattr(log, "input_audio"):
        samples, sr = log.input_audio()
        lanes.append(P.Lane("input", "input", None, np.asarray(samples), int(sr)))
    if hasattr(log, "output_audio"):
        wanted = set(frame["source"].unique())
        listed = log.output_sources() if hasattr(log, "output_sources") else P.output_sources(frame)
        for src in [s for s in listed if s in wanted]:
            try:
                samples, sr = log.output_audio(src)
            except (KeyError, LookupError, OSError, ValueError, RtlabError):
                continue  # the log recorded deltas but no audio for this source
            if len(samples):
                lanes.append(P.Lane(f"output · {src}", "output", src, np.asarray(samples), int(sr)))
    return lanes


class Timeline(StaticFallback, anywidget.AnyWidget):
    """Waveforms and event tiers of a session on one audio clock.

    Parameters
    ----------
    log : EventLog
        A recorded (or loaded) event log: ``to_frame()``, ``input_audio()``, ``output_audio(source)``.
    turns : pandas.DataFrame, optional
        ``rtlab.analysis.turns(log)`` when already computed (the turn windows come from it); computed otherwise.
    sources : iterable of str, optional
        Only these sources' tiers (default: every source in the log, in order of first appearance).
    height : int
        Canvas height in CSS pixels (default: fits the lanes and tiers).
    audio : {"auto", "opus", "wav", "segments", None}
        How playback audio travels (always as binary buffers, never base64):

        - ``"opus"``: every lane as one OGG/Opus file in the ``audio`` trait (bitrate chosen so an hour fits in
          about 7 MB); ``"wav"``: 16 kHz PCM16 WAV instead (large);
        - ``"segments"``: no full tracks; a click fetches just that span as a short WAV (custom message), so
          any length of session plays at once;
        - ``"auto"`` (default): ``"opus"`` (``"wav"`` without Opus support) when all lanes together hold at most
          ``full_audio_max_s`` seconds, else ``"segments"``;
        - ``None``: no audio (waveform and tiers only).
    background_audio_s : float
        Full tracks longer than this (seconds, all lanes together) are encoded on a worker thread so the widget
        shows at once; until they arrive, clicks play on-demand segments. Shorter audio is encoded before the
        constructor returns.
    full_audio_max_s : float
        The ``"auto"`` limit for shipping full tracks (Opus encodes at about 40× real time on a small machine).

    Attributes
    ----------
    selection : dict
        The selected span ``{source, kind, item_id, start_ms, end_ms, seq}`` (set by a click in the view, or
        from Python to highlight a span; a dict with only ``seq`` is completed from the span table).

    Examples
    --------
    >>> tl = Timeline(EventLog.load("out/demo/events.jsonl"))   # doctest: +SKIP
    >>> tl.observe(lambda ch: print(ch["new"]), "selection")    # doctest: +SKIP
    """

    _esm = _STATIC / "timeline.js"
    _css = _STATIC / "widgets.css"

    lanes = t.List(help="waveform lanes: [{name, kind, source, duration_ms}]").tag(sync=True)
    peaks = t.Bytes(b"", help="all lanes' peak pyramids, int8 (min, max) pairs; see peaks_index").tag(sync=True)
    peaks_index = t.List(help="[{lane, bin_ms, count, offset, peak}] per pyramid level, finest first").tag(sync=True)
    spans = t.Bytes(b"", help="columnar span table: int32 columns then uint8 columns; see span_meta").tag(sync=True)
    span_meta = t.Dict(help="span table layout, sources, tiers, item ids, labels, counts, colours").tag(sync=True)
    audio = t.Bytes(b"", help="encoded audio of every lane, concatenated; see audio_index").tag(sync=True)
    audio_index = t.List(help="[{lane, mime, offset, size}] per lane with audio").tag(sync=True)
    audio_status = t.Unicode("none", help="'ready' (full tracks), 'encoding' (full tracks on their way; segments meanwhile), "
                                              "'segments' (on demand only) or 'none'").tag(sync=True)
    duration_ms = t.Float(0.0, help="length of the session on the audio clock").tag(sync=True)
    height = t.Int(0, help="canvas height in CSS px; 0 = fit lanes and tiers").tag(sync=True)
    selection = t.Dict(help="selected span: {source, kind, item_id, start_ms, end_ms, seq}").tag(sync=True)

    def __init__(self, log: Any, *, turns: pd.DataFrame | None = None, sources: Iterable[str] | None = None,
                 height: int = 0,
                 audio: str | None = "auto", background_audio_s: float = 20.0, full_audio_max_s: float = 600.0,
                 **kwargs: Any) -> None:
        if audio not in ("auto", "opus", "wav", "segments", None):
            raise ValueError(f"audio must be 'auto', 'opus', 'wav', 'segments' or None, got {audio!r}")
        if height < 0:
            raise ValueError(f"height must be >= 0 (0 fits the content), got {height!r}")
        frame = _frame_of(log)
        if sources is not None:
            sources = list(sources)
            unknown = sorted(set(sources) - set(frame["source"].unique()))
            if unknown:
                known = sorted(frame["source"].unique())
                raise ValueError(f"unknown sources {unknown}; this log has {known}")
            frame = frame[frame["source"].isin(sources)]
        self._frame = frame
        self._png_cache: tuple[tuple[float, int], bytes] | None = None
        self._by_seq = pd.Series(np.arange(len(frame)), index=frame["seq"].to_numpy())
        lane_list = collect_lanes(log, frame)
        self._lanes = lane_list
        audio_ms = pd.to_numeric(frame["audio_ms"], errors="coerce")
        duration = max([ln.duration_ms for ln in lane_list] + [float(audio_ms.max()) if audio_ms.notna().any() else 0.0])
        self._spans = P.build_spans(frame, _turns_of(log, frame, turns), end_ms=duration)
        peaks, peaks_index = P.pack_peaks(lane_list)
        span_bytes, meta = self._spans.pack()
        meta["colors"] = TIER_COLORS
        meta["tier_labels"] = P.TIER_LABELS
        audio_state: dict[str, Any] = {}
        background = False
        total_s = sum(ln.duration_ms for ln in lane_list) / 1000.0
        if audio == "auto":
            audio = "auto" if total_s <= full_audio_max_s else "segments"
        if audio == "segments" and lane_list:
            audio_state = {"audio_status": "segments"}
        elif audio is not None and lane_list:
            background = total_s > background_audio_s
            if background:
                audio_state = {"audio_status": "encoding"}
            else:  # part of the first state message: no extra round trip
                blob, index = self._encode_audio(audio)
                audio_state = {"audio": blob, "audio_index": index, "audio_status": "ready"}
        super().__init__(
            lanes=[{"name": ln.name, "kind": ln.kind, "source": ln.source, "duration_ms": ln.duration_ms}
                   for ln in lane_list],
            peaks=peaks,
            peaks_index=peaks_index,
            spans=span_bytes,
            span_meta=meta,
            duration_ms=float(duration),
            height=int(height),
            **audio_state,
            **kwargs,
        )
        self.on_msg(self._on_custom_msg)
        self._audio_thread: threading.Thread | None = None
        self.audio_error: str | None = None
        if background:
            self._audio_thread = threading.Thread(
                target=self._encode_audio_bg, args=(audio, LoopDispatch()), name="rtlab-timeline-audio", daemon=True
            )
            self._audio_thread.start()

    # -- audio ------------------------------------------------------------------------------------------
    def _encode_audio(self, fmt: str) -> tuple[bytes, list[dict[str, Any]]]:
        total_s = sum(ln.duration_ms for ln in self._lanes) / 1000.0
        bps = P.opus_bitrate(total_s)
        # libsndfile releases the GIL while encoding: the lanes encode side by side on separate cores.
        with ThreadPoolExecutor(max_workers=max(1, min(len(self._lanes), os.cpu_count() or 1))) as pool:
            encoded = list(pool.map(lambda ln: P.encode_audio(ln.samples, ln.sample_rate, fmt=fmt, bitrate=bps),
                                    self._lanes))
        blob = bytearray()
        index = []
        for i, (data, mime) in enumerate(encoded):
            index.append({"lane": i, "mime": mime, "offset": len(blob), "size": len(data)})
            blob += data
        return bytes(blob), index

    def _set_audio(self, blob: bytes, index: list[dict[str, Any]]) -> None:
        with self.hold_sync():
            self.audio = blob
            self.audio_index = index
            self.audio_status = "ready"

    def _encode_audio_bg(self, fmt: str, dispatch: LoopDispatch) -> None:
        try:
            blob, index = self._encode_audio(fmt)
        except Exception as exc:  # keep the view usable: spans still play as on-demand segments
            self.audio_error = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"Timeline: encoding the full audio tracks failed ({self.audio_error}); spans play as "
                          "on-demand segments instead", RuntimeWarning, stacklevel=1)
            dispatch(lambda: setattr(self, "audio_status", "segments"))
            return
        dispatch(lambda: self._set_audio(blob, index))

    def wait_audio(self, timeout: float | None = None) -> bool:
        """Block until background audio encoding finished (``True``) or ``timeout`` passed (``False``).

        Only useful outside a running event loop (scripts, benchmarks): in a notebook the audio arrives by
        itself.
        """
        if self._audio_thread is not None:
            self._audio_thread.join(timeout)
            if self._audio_thread.is_alive():
                return False
        return True

    # -- events and selection -----------------------------------------------------------------------
    def event(self, seq: int) -> dict[str, Any]:
        """One record of the log as JSON-safe dict: its fields and the raw event."""
        seq = int(seq)
        if seq not in self._by_seq.index:
            raise KeyError(f"no event with seq {seq} in this timeline (seq ranges over the log's records)")
        row = self._frame.iloc[int(self._by_seq[seq])]
        return P.jsonable({k: row[k] for k in ("seq", "t_ms", "audio_ms", "direction", "source", "type", "item_id",
                                                "response_id", "event") if k in row.index})

    def audio_segment(self, lane: int, start_ms: float, end_ms: float) -> tuple[bytes, float]:
        """A short 16 kHz WAV of one lane between ``start_ms`` and ``end_ms`` (plus 250 ms either side, at most
        120 s), and the audio time where it starts. Used for playback while the full tracks still encode."""
        if not 0 <= int(lane) < len(self._lanes):
            raise ValueError(f"lane {lane!r} out of range; this timeline has {len(self._lanes)} lanes")
        ln = self._lanes[int(lane)]
        start = max(0.0, float(start_ms) - 250.0)
        end = min(ln.duration_ms, max(float(end_ms), float(start_ms)) + 250.0, start + 120_000.0)
        a, b = int(start * ln.sample_rate / 1000), int(end * ln.sample_rate / 1000)
        data, _ = P.encode_audio(ln.samples[a:b], ln.sample_rate, fmt="wav")
        return data, a * 1000.0 / ln.sample_rate

    def _on_custom_msg(self, _widget: Any, content: Any, _buffers: list[bytes]) -> None:
        if not isinstance(content, dict):
            return
        if content.get("type") == "get_audio":
            req = content.get("req")
            try:
                data, start = self.audio_segment(content["lane"], content["start_ms"], content["end_ms"])
            except (KeyError, TypeError, ValueError) as exc:
                self.send({"type": "audio", "req": req, "error": str(exc)})
                return
            self.send({"type": "audio", "req": req, "lane": content["lane"], "start_ms": start,
                       "mime": "audio/wav"}, buffers=[data])
            return
        if content.get("type") != "get_event":
            return
        seq = content.get("seq")
        try:
            reply = {"type": "event", "seq": seq, "event": self.event(int(seq))}
        except (KeyError, TypeError, ValueError) as exc:
            reply = {"type": "event", "seq": seq, "error": str(exc)}
        self.send(reply)

    @t.validate("selection")
    def _validate_selection(self, proposal: Any) -> dict[str, Any]:
        sel = dict(proposal["value"] or {})
        if not sel:
            return {}
        extra = set(sel) - set(_SELECTION_KEYS)
        if extra:
            raise t.TraitError(f"selection has unknown keys {sorted(extra)}; allowed: {list(_SELECTION_KEYS)}")
        if "start_ms" not in sel or "end_ms" not in sel:
            i = self._spans.find(seq=sel.get("seq"), source=sel.get("source"), kind=sel.get("kind"),
                                 item_id=sel.get("item_id"))
            if i is None:
                raise t.TraitError(f"no span matches selection {sel}; give start_ms and end_ms, or a seq/item_id "
                                   "that has a span")
            sel = {**self._spans.row(i), **{k: v for k, v in sel.items() if v is not None}}
        return {k: sel.get(k) for k in _SELECTION_KEYS}

    def select(self, **fields: Any) -> dict[str, Any]:
        """Select (highlight) a span by any of ``seq``, ``source``, ``kind``, ``item_id``; returns the selection."""
        self.selection = fields
        return self.selection

    @property
    def span_table(self) -> pd.DataFrame:
        """Every span as a DataFrame (source, kind, item_id, start_ms, end_ms, play range, seq)."""
        s = self._spans
        items = np.array(s.items + [None], dtype=object)
        return pd.DataFrame({
            "source": np.array(s.sources, dtype=object)[s.source] if len(s) else [],
            "kind": np.array(P.TIERS, dtype=object)[s.tier] if len(s) else [],
            "item_id": items[s.item] if len(s) else [],
            "start_ms": s.start_ms, "end_ms": s.end_ms,
            "play_start_ms": s.play_start_ms, "play_end_ms": s.play_end_ms, "seq": s.seq,
        })

    def span_counts(self) -> dict[str, dict[str, int]]:
        """Spans per source and tier, as the view labels them (``data-span-count``)."""
        return self._spans.counts()

    def payload_bytes(self) -> dict[str, int]:
        """Size in bytes of what this widget sends to the browser: each binary trait and the JSON state."""
        import json

        state = self.get_state()
        binary = {k: len(v) for k, v in state.items() if isinstance(v, bytes | bytearray | memoryview)}
        rest = {k: v for k, v in state.items() if k not in binary}
        return {**binary, "json": len(json.dumps(rest, default=str).encode()),
                "total": sum(binary.values()) + len(json.dumps(rest, default=str).encode())}

    # -- static renderings ------------------------------------------------------------------------------
    def __repr__(self) -> str:
        n = len(self._spans)
        return (f"<Timeline {self.duration_ms / 1000:.1f} s, {len(self._lanes)} lanes, {n} spans, "
                f"{len(self._spans.sources)} sources>")

    def to_png(self, *, width: float = 11.0, dpi: int = 90) -> bytes:
        """A static picture of the waveforms and tiers (for nbconvert, GitHub and reports)."""
        key = (width, dpi)
        if self._png_cache is None or self._png_cache[0] != key:
            self._png_cache = (key, render_png(self._lanes, self._spans, self.duration_ms, width=width, dpi=dpi))
        return self._png_cache[1]

    def static_png(self) -> bytes:
        """The picture saved beside the widget view (see :class:`~rtlab.widgets.fallback.StaticFallback`)."""
        return self.to_png()

    def to_html(self) -> str:
        """Static fallback: the PNG as an inline ``<img>`` (for reports and HTML exports)."""
        b64 = base64.b64encode(self.to_png()).decode()
        return f'<img alt="{self!r}" src="data:image/png;base64,{b64}"/>'


def render_png(lanes: list[P.Lane], spans: P.Spans, duration_ms: float, *, width: float = 11.0,
               dpi: int = 90) -> bytes:
    """Draw lanes (min/max envelope) and tiers with matplotlib (Agg) into PNG bytes."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    counts = spans.counts()
    rows: list[tuple[str, str]] = [(s, tier) for s in spans.sources for tier in P.TIERS if tier in counts.get(s, {})]
    n_lanes = len(lanes)
    height = 0.5 + 0.8 * n_lanes + 0.22 * len(rows)
    fig = Figure(figsize=(width, height), dpi=dpi)
    ratios = [0.8] * n_lanes + ([0.22 * len(rows)] if rows else [])
    axes = fig.subplots(len(ratios), 1, sharex=True, gridspec_kw={"height_ratios": ratios, "hspace": 0.08}) \
        if ratios else []
    axes = np.atleast_1d(axes)
    dur_s = max(duration_ms, 1.0) / 1000.0
    for ax, lane in zip(axes, lanes, strict=False):
        levels, peak = P.peaks_pyramid(lane.samples, lane.sample_rate)
        lvl = next((lv for lv in reversed(levels) if lv.count >= 2000), levels[0]) if levels else None
        if lvl is not None:
            arr = np.frombuffer(lvl.data, dtype=np.int8).reshape(-1, 2) / 127.0 * peak
            x = np.arange(lvl.count) * lvl.bin_ms / 1000.0
            ax.fill_between(x, arr[:, 0], arr[:, 1], color="#444" if lane.kind == "input" else "#2a7f7a", lw=0)
        ax.set_ylabel(lane.name, rotation=0, ha="right", va="center", fontsize=8)
        ax.set_yticks([])
        ax.set_ylim(-1, 1)
    if rows:
        ax = axes[-1]
        for r, (src, tier) in enumerate(rows):
            y = len(rows) - 1 - r
            mask = (spans.source == spans.sources.index(src)) & (spans.tier == P.TIERS.index(tier))
            s0, s1 = spans.start_ms[mask] / 1000.0, spans.end_ms[mask] / 1000.0
            col = TIER_COLORS[tier]
            if tier in P.TICK_TIERS:
                ax.vlines(s0, y + 0.15, y + 0.85, colors=col, lw=1)
            else:
                ax.broken_barh(list(zip(s0, np.maximum(s1 - s0, dur_s / 2000), strict=True)), (y + 0.15, 0.7),
                               facecolors=col)
        ax.set_yticks([len(rows) - 1 - r + 0.5 for r in range(len(rows))])
        ax.set_yticklabels([f"{s} · {P.TIER_LABELS[tier]}" for s, tier in rows], fontsize=7)
        ax.set_ylim(0, len(rows))
        present = [tier for tier in P.TIERS if any(tier == tr for _, tr in rows)]
        fig.legend(handles=[Patch(color=TIER_COLORS[tr], label=P.TIER_LABELS[tr]) for tr in present],
                   loc="upper center", ncol=len(present), fontsize=7, frameon=False)
    if len(axes):
        axes[-1].set_xlim(0, dur_s)
        axes[-1].set_xlabel("audio time (s)", fontsize=8)
        axes[-1].tick_params(axis="x", labelsize=7)
    fig.subplots_adjust(left=0.2, right=0.99, top=1 - 0.35 / height, bottom=0.45 / height)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
