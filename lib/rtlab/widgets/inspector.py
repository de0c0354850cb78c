"""``EventInspector``: filter a session's events, page through them in a table, read one event's JSON.

The table travels once as binary columns (seq, times, source/type/item codes); filters run in Python with
numpy masks and send back only the matching row numbers (int32 bytes), and the browser draws the visible rows
of a virtually scrolled table. The selected event's JSON is the only JSON that travels. Stays fast at 50,000
events.

:func:`link` ties an inspector to a :class:`~rtlab.widgets.Timeline`: selecting an event highlights its span
(or its instant) in the timeline; clicking a span selects and scrolls to its event in the inspector.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import ipywidgets
import numpy as np
import pandas as pd
import traitlets as t

from . import payload as P
from .fallback import StaticFallback, figure_png, stack_png
from .timeline import Timeline, _frame_of

if TYPE_CHECKING:  # pragma: no cover
    from rtlab.log import EventLog

_STATIC = Path(__file__).parent / "static"
_FILTER_TRAITS = ("sources", "types", "item_id", "start_ms", "end_ms", "text", "direction")


def _codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes and the category list, in order of first appearance (missing → -1)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes.astype(np.int32), [str(u) for u in uniques]


class EventInspector(StaticFallback, anywidget.AnyWidget):
    """A filterable table of a session's events and the selected event's JSON.

    Parameters
    ----------
    log : EventLog or pandas.DataFrame
        The log (or its ``to_frame()``).
    timeline : Timeline, optional
        Link to this timeline (see :func:`link`).
    height : int
        Height of the table in CSS pixels.

    Attributes
    ----------
    sources, types : list of str
        Show only these sources / event types (empty: all).
    item_id, text : str
        Show only events of this item / whose JSON contains this text (case-insensitive; empty: all).
    start_ms, end_ms : float or None
        Audio-time range (``audio_ms``) of the events shown.
    direction : str
        ``"client"``, ``"server"`` or ``""`` (both).
    selected_seq : int
        The selected event (``-1``: none); ``selected_event`` holds its JSON-safe dict.
    """

    _esm = _STATIC / "inspector.js"
    _css = _STATIC / "widgets.css"

    columns = t.Bytes(b"", help="binary columns: seq int32, t_ms f32, audio_ms f32, source/type/item int32, "
                                "direction uint8; layout in meta").tag(sync=True)
    meta = t.Dict(help="n, column layout, category lists (sources, types, items)").tag(sync=True)
    rows = t.Bytes(b"", help="int32 row numbers (into columns) that pass the filters, in table order").tag(sync=True)
    match_count = t.Int(0, help="rows that pass the filters").tag(sync=True)
    sources = t.List(t.Unicode(), help="show only these sources (empty: all)").tag(sync=True)
    types = t.List(t.Unicode(), help="show only these event types (empty: all)").tag(sync=True)
    item_id = t.Unicode("", help="show only events of this item id (empty: all)").tag(sync=True)
    start_ms = t.Float(None, allow_none=True, help="earliest audio_ms shown (None: no bound)").tag(sync=True)
    end_ms = t.Float(None, allow_none=True, help="latest audio_ms shown (None: no bound)").tag(sync=True)
    text = t.Unicode("", help="case-insensitive text the event JSON must contain").tag(sync=True)
    direction = t.Unicode("", help="'client', 'server' or '' for both").tag(sync=True)
    selected_seq = t.Int(-1, help="seq of the selected event (-1: none)").tag(sync=True)
    selected_event = t.Dict(help="the selected record (fields and raw event), JSON-safe").tag(sync=True)
    scroll_to = t.Int(-1, help="seq the table scrolls into view (set with the selection)").tag(sync=True)
    height = t.Int(360, help="table height in CSS px").tag(sync=True)

    def __init__(self, log: Any, *, timeline: Timeline | None = None, height: int = 360, **kwargs: Any) -> None:
        if height <= 0:
            raise ValueError(f"height must be a positive number of pixels, got {height!r}")
        frame = _frame_of(log).reset_index(drop=True)
        self._frame = frame
        self._seq = frame["seq"].to_numpy(dtype=np.int64)
        self._pos = pd.Series(np.arange(len(frame)), index=self._seq)
        self._audio = pd.to_numeric(frame["audio_ms"], errors="coerce").to_numpy(dtype=np.float64)
        self._src_codes, src_names = _codes(frame["source"])
        self._type_codes, type_names = _codes(frame["type"])
        self._item_codes, item_names = _codes(frame["item_id"])
        self._dir = (frame["direction"] == "server").to_numpy()
        self._haystack: np.ndarray | None = None
        t_ms = pd.to_numeric(frame["t_ms"], errors="coerce").to_numpy(dtype=np.float64)
        t0 = np.nanmin(t_ms) if len(t_ms) and np.isfinite(t_ms).any() else 0.0
        n = len(frame)
        blob = b"".join([
            self._seq.astype("<i4").tobytes(),
            (t_ms - t0).astype("<f4").tobytes(),
            self._audio.astype("<f4").tobytes(),
            self._src_codes.astype("<i4").tobytes(),
            self._type_codes.astype("<i4").tobytes(),
            self._item_codes.astype("<i4").tobytes(),
            self._dir.astype(np.uint8).tobytes(),
        ])
        meta = {
            "n": n,
            "layout": [["seq", "i4"], ["t_ms", "f4"], ["audio_ms", "f4"], ["source", "i4"], ["type", "i4"],
                       ["item", "i4"], ["server", "u1"]],
            "sources": src_names,
            "types": sorted(type_names),
            "type_names": type_names,
            "items": item_names,
            "audio_max_ms": float(np.nanmax(self._audio)) if np.isfinite(self._audio).any() else 0.0,
        }
        super().__init__(columns=blob, meta=meta, height=height, **kwargs)
        self.observe(self._refilter, names=list(_FILTER_TRAITS))
        self.observe(self._on_selected, names=["selected_seq"])
        self._refilter()
        self._unlink: Callable[[], None] | None = None
        if timeline is not None:
            self._unlink = link(timeline, self)

    # -- filtering ------------------------------------------------------------------------------------
    @t.validate("direction")
    def _validate_direction(self, proposal: Any) -> str:
        v = proposal["value"]
        if v not in ("", "client", "server"):
            raise t.TraitError(f"direction must be 'client', 'server' or '' (both), got {v!r}")
        return v

    def _search_text(self) -> np.ndarray:
        if self._haystack is None:
            f = self._frame
            self._haystack = np.array(
                [f"{ty} {it} {json.dumps(ev, default=P._default, ensure_ascii=False)}".lower()
                 for ty, it, ev in zip(f["type"], f["item_id"], f["event"], strict=True)], dtype=object)
        return self._haystack

    def mask(self) -> np.ndarray:
        """Boolean mask over the log's records for the current filters."""
        n = len(self._frame)
        m = np.ones(n, dtype=bool)
        meta = self.meta
        if self.sources:
            wanted = [meta["sources"].index(s) for s in self.sources if s in meta["sources"]]
            m &= np.isin(self._src_codes, wanted)
        if self.types:
            wanted = [meta["type_names"].index(s) for s in self.types if s in meta["type_names"]]
            m &= np.isin(self._type_codes, wanted)
        if self.item_id:
            code = meta["items"].index(self.item_id) if self.item_id in meta["items"] else -2
            m &= self._item_codes == code
        if self.start_ms is not None:
            m &= self._audio >= self.start_ms
        if self.end_ms is not None:
            m &= self._audio <= self.end_ms
        if self.direction:
            m &= self._dir == (self.direction == "server")
        if self.text:
            needle = self.text.lower()
            hay = self._search_text()
            idx = np.flatnonzero(m)
            keep = np.fromiter((needle in hay[i] for i in idx), dtype=bool, count=idx.size)
            m[idx[~keep]] = False
        return m

    def _refilter(self, _change: Any = None) -> None:
        rows = np.flatnonzero(self.mask()).astype("<i4")
        with self.hold_sync():
            self.rows = rows.tobytes()
            self.match_count = int(rows.size)

    def clear_filters(self) -> None:
        """Show every event."""
        with self.hold_trait_notifications():
            self.sources, self.types, self.item_id = [], [], ""
            self.start_ms = self.end_ms = None
            self.text, self.direction = "", ""

    @property
    def filtered(self) -> pd.DataFrame:
        """The records that pass the filters (a slice of the log's frame)."""
        return self._frame[self.mask()]

    # -- selection ------------------------------------------------------------------------------------
    def record(self, seq: int) -> dict[str, Any]:
        """One record as a JSON-safe dict (the fields shown in the table plus the raw event)."""
        seq = int(seq)
        if seq not in self._pos.index:
            raise KeyError(f"no event with seq {seq} in this log (seq runs 0..{len(self._frame) - 1})")
        row = self._frame.iloc[int(self._pos[seq])]
        keys = ("seq", "t_ms", "audio_ms", "direction", "source", "type", "raw_type", "item_id", "response_id",
                "event_id", "event")
        return P.jsonable({k: (None if _isnan(row[k]) else row[k]) for k in keys if k in row.index})

    @t.validate("selected_seq")
    def _validate_selected(self, proposal: Any) -> int:
        v = int(proposal["value"])
        if v != -1 and v not in self._pos.index:
            raise t.TraitError(f"selected_seq {v} is not a seq of this log (or -1 for none)")
        return v

    def _on_selected(self, change: Any) -> None:
        seq = change["new"]
        self.selected_event = self.record(seq) if seq >= 0 else {}

    def select(self, seq: int, *, scroll: bool = True) -> None:
        """Select the event ``seq`` and scroll the table to it (clearing filters that hide it)."""
        seq = int(seq)
        if seq >= 0 and scroll and not self.mask()[int(self._pos.get(seq, 0))]:
            self.clear_filters()
        with self.hold_sync():
            self.selected_seq = seq
            if scroll:
                self.scroll_to = seq

    # -- static ---------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"<EventInspector {len(self._frame)} events, {self.match_count} shown>"

    def _repr_html_(self) -> str:
        """Static rendering: events per source and type, and the first rows of the filtered table."""
        f = self.filtered
        counts = f.groupby(["source", "type"], sort=False).size().reset_index(name="events")
        head = f.head(20)[["seq", "t_ms", "audio_ms", "source", "type", "item_id"]]
        return (f"<div class='rtl-inspector-static'><b>{len(f)}</b> of {len(self._frame)} events"
                f"{counts.to_html(index=False, border=0)}<div>first rows</div>"
                f"{head.to_html(index=False, border=0, float_format=lambda v: f'{v:.0f}')}</div>")


    def static_png(self, *, max_types: int = 24, dpi: int = 90) -> bytes:
        """A picture of the filtered events: how many of each type per source (the saved static view)."""
        return counts_png(self.filtered, total=len(self._frame), max_types=max_types, dpi=dpi)


def counts_png(frame: pd.DataFrame, *, total: int, max_types: int = 24, dpi: int = 90) -> bytes:
    """Events per type (rows) and source (columns) as a table picture, busiest types first."""
    from matplotlib.figure import Figure

    counts = frame.groupby(["type", "source"], sort=False).size().unstack(fill_value=0)
    if len(counts):
        counts = counts.loc[counts.sum(axis=1).sort_values(ascending=False, kind="stable").index]
    more = max(0, len(counts) - max_types)
    counts = counts.head(max_types)
    n_rows = len(counts) + 1
    fig = Figure(figsize=(11, 0.7 + 0.21 * n_rows), dpi=dpi)
    title = f"EventInspector: {len(frame)} of {total} events shown"
    fig.text(0.01, 1 - 0.12 / fig.get_figheight(), title, fontsize=10, weight="bold", va="top")
    if len(counts):
        bottom = 0.3 / fig.get_figheight() if more else 0.1 / fig.get_figheight()
        ax = fig.add_axes((0.37, bottom, 0.62, 1 - 0.42 / fig.get_figheight() - bottom))
        ax.axis("off")
        # the row labels (event types) sit left of the axes, the counts fill them exactly
        table = ax.table(cellText=counts.to_numpy().astype(str).tolist(), rowLabels=list(counts.index),
                         colLabels=[str(c) for c in counts.columns], cellLoc="right", bbox=(0, 0, 1, 1))
        table.auto_set_font_size(False)
        table.set_fontsize(7.5)
    if more:
        fig.text(0.01, 0.01, f"… and {more} more event types", fontsize=8, color="#6e7781")
    return figure_png(fig)


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and v != v


def link(timeline: Timeline, inspector: EventInspector) -> Callable[[], None]:
    """Link a timeline and an inspector both ways; returns a function that unlinks them.

    - inspector selects an event → ``timeline.selection`` becomes the event's span (or its instant, for events
      without a span such as audio deltas);
    - timeline selection changes → the inspector selects that event and scrolls to it.
    """
    busy = False

    def from_inspector(change: Any) -> None:
        nonlocal busy
        if busy:
            return
        seq = change["new"]
        busy = True
        try:
            if seq < 0:
                timeline.selection = {}
                return
            i = timeline._spans.find(seq=seq)
            if i is not None:
                timeline.selection = timeline._spans.row(i)
                return
            rec = inspector.record(seq)
            at = rec.get("audio_ms")
            if at is None:
                return
            item = rec.get("item_id")
            j = timeline._spans.find(source=rec.get("source"), kind="item", item_id=item) if item else None
            start, end = (timeline._spans.row(j)["start_ms"], timeline._spans.row(j)["end_ms"]) if j is not None \
                else (int(at), int(at))
            timeline.selection = {"source": rec.get("source"), "kind": "event", "item_id": item,
                                  "start_ms": start, "end_ms": end, "seq": seq}
        finally:
            busy = False

    def from_timeline(change: Any) -> None:
        nonlocal busy
        if busy:
            return
        seq = (change["new"] or {}).get("seq")
        busy = True
        try:
            if seq is None:
                return
            inspector.select(int(seq))
        finally:
            busy = False

    inspector.observe(from_inspector, names=["selected_seq"])
    timeline.observe(from_timeline, names=["selection"])

    def unlink() -> None:
        inspector.unobserve(from_inspector, names=["selected_seq"])
        timeline.unobserve(from_timeline, names=["selection"])

    return unlink


def inspect(log: EventLog, *, sources: list[str] | None = None, height: int = 320, **timeline_kwargs: Any
            ) -> InspectBox:
    """A :class:`Timeline` above an :class:`EventInspector`, linked; ``box.timeline`` / ``box.inspector``."""
    frame = _frame_of(log) if not hasattr(log, "input_audio") else None
    timeline = Timeline(log, sources=sources, **timeline_kwargs)
    inspector = EventInspector(frame if frame is not None else log, timeline=timeline, height=height)
    if sources:
        inspector.sources = list(sources)
    return InspectBox(timeline, inspector)


class InspectBox(StaticFallback, ipywidgets.VBox):
    """A :class:`Timeline` above its linked :class:`EventInspector` (``box.timeline``, ``box.inspector``); its
    saved picture is both widgets' pictures, one above the other."""

    def __init__(self, timeline: Timeline, inspector: EventInspector, **kwargs: Any) -> None:
        super().__init__([timeline, inspector], **kwargs)
        self.timeline = timeline
        self.inspector = inspector

    def static_png(self) -> bytes:
        return stack_png([self.timeline.to_png(), self.inspector.static_png()])

    def static_text(self) -> str:
        return f"{self.timeline!r}\n{self.inspector!r}"

    def __repr__(self) -> str:
        return f"<InspectBox {self.timeline!r} + {self.inspector!r}>"
