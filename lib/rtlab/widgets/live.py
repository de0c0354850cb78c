"""A live view that fills in while a session records: transcripts per source (deltas, then finals) and the count.

Every protocol family is shown alike, by the role of its events (:func:`rtlab.protocol.events.role_of`): Realtime
transcription deltas and finals, the local engine's ``local.*``, out-of-band response text, GPT-Live's and
translation's input-transcript fragments, Azure Speech's hypotheses (each replaces the last) and results.

The log calls back from whatever thread records (an asyncio task in the kernel, or a worker thread). Widget
traits are only touched on the kernel's event loop: records are queued under a lock and flushed at most
``max_rate_hz`` times per second via ``loop.call_soon_threadsafe`` → ``loop.call_later``. With no running loop
(a plain script), records are applied at once.
"""

from __future__ import annotations

import asyncio
import html
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import numpy as np
import traitlets as t

from ..protocol import canonical_event_name
from ..protocol.events import role_of
from .fallback import UpdatingStaticFallback, transcripts_png

if TYPE_CHECKING:  # pragma: no cover
    from rtlab.log import EventLog

_STATIC = Path(__file__).parent / "static"

_FAILED = "conversation.item.input_audio_transcription.failed"
_TEXT_ROLES = ("partial", "final")


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread (the kernel's, inside a notebook), or ``None``."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class LoopDispatch:
    """Runs callables on one event loop's thread, from any thread.

    Parameters
    ----------
    loop : asyncio.AbstractEventLoop, optional
        Default: the loop running in the constructing thread (the kernel's IOLoop in a notebook).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop if loop is not None else running_loop()

    def __call__(self, fn: Callable[[], None]) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            fn()
        else:
            loop.call_soon_threadsafe(fn)

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` after ``delay`` seconds on the loop (must be called on the loop's thread)."""
        if self.loop is None or self.loop.is_closed():
            fn()
        else:
            self.loop.call_later(delay, fn)


def _field(rec: Any, name: str) -> Any:
    if isinstance(rec, dict):
        return rec.get(name)
    return getattr(rec, name, None)


class LiveView(UpdatingStaticFallback, anywidget.AnyWidget):
    """Transcripts per source and an event count that fill in while a session records into ``log``.

    Parameters
    ----------
    log : EventLog
        Anything with ``subscribe(callback)`` (and optionally ``to_frame()`` to catch up on records made
        before the view was created).
    max_rate_hz : float
        Upper bound on trait updates per second (each flush sends one message per changed trait).
    loop : asyncio.AbstractEventLoop, optional
        Where updates are applied; default: the loop running now (the kernel's).

    Examples
    --------
    >>> view = LiveView(log)          # doctest: +SKIP
    >>> view                          # shows, then fills in while run_session(...) records into log
    """

    _esm = _STATIC / "live.js"
    _css = _STATIC / "widgets.css"

    transcripts = t.Dict(help="source -> list of {item_id, text, final} in arrival order").tag(sync=True)
    event_count = t.Int(0, help="records seen so far").tag(sync=True)
    last_type = t.Unicode("", help="type of the most recent record").tag(sync=True)
    done = t.Bool(False, help="True once stop() was called").tag(sync=True)

    def __init__(self, log: Any, *, max_rate_hz: float = 10.0, loop: asyncio.AbstractEventLoop | None = None,
                 **kwargs: Any) -> None:
        if not hasattr(log, "subscribe"):
            raise TypeError(f"LiveView needs an EventLog with subscribe(callback); got {type(log).__name__}")
        if not max_rate_hz > 0:
            raise ValueError(f"max_rate_hz must be > 0, got {max_rate_hz!r}")
        super().__init__(**kwargs)
        self._interval = 1.0 / float(max_rate_hz)
        self._dispatch = LoopDispatch(loop)
        self._lock = threading.Lock()
        self._pending: list[Any] = []
        self._scheduled = False
        self._last_flush = 0.0
        self._seen: set[int] = set()
        self._state: dict[str, dict[str, dict[str, Any]]] = {}
        self._count = 0
        self._last_type = ""
        self.flushes = 0  # how many times traits were updated (tests check throttling with it)
        self._unsubscribe = log.subscribe(self._on_record)
        if hasattr(log, "to_frame"):
            self._catch_up(log.to_frame())
            self._publish()

    def _catch_up(self, frame: Any) -> None:
        """Apply the records made before the view existed, decoding only the transcription events."""
        if not len(frame):
            return
        seqs = frame["seq"].to_numpy()
        types = frame["type"].astype(str).to_numpy()
        sources, items = frame["source"].tolist(), frame["item_id"].tolist()
        shown = [t == _FAILED or role_of(t, str(s)) in _TEXT_ROLES for t, s in zip(types, sources, strict=True)]
        wanted = np.array(shown, dtype=bool) & (frame["direction"].astype(str).to_numpy() == "server")
        events = frame["event"].array
        for i in range(len(frame)):
            if wanted[i]:
                self._apply({"seq": seqs[i], "type": types[i], "direction": "server", "source": sources[i],
                             "item_id": items[i], "event": events[i]})
            elif int(seqs[i]) not in self._seen:
                self._seen.add(int(seqs[i]))
                self._count += 1
                self._last_type = types[i]

    # -- called from any thread -----------------------------------------------------------------------
    def _on_record(self, record: Any) -> None:
        with self._lock:
            self._pending.append(record)
            if self._scheduled:
                return
            self._scheduled = True
        self._dispatch(self._schedule_flush)

    # -- on the loop's thread --------------------------------------------------------------------------
    def _schedule_flush(self) -> None:
        wait = self._last_flush + self._interval - time.monotonic()
        if wait > 0:
            self._dispatch.call_later(wait, self.flush)
        else:
            self.flush()

    def flush(self) -> None:
        """Apply every queued record to the traits now (on the loop's thread)."""
        with self._lock:
            batch, self._pending = self._pending, []
            self._scheduled = False
        for rec in batch:
            self._apply(rec)
        if batch:
            self._publish()
        self._last_flush = time.monotonic()

    def _apply(self, rec: Any) -> None:
        seq = _field(rec, "seq")
        if seq is not None:
            if int(seq) in self._seen:
                return
            self._seen.add(int(seq))
        self._count += 1
        event = _field(rec, "event") or {}
        typ = _field(rec, "type") or canonical_event_name(str(event.get("type", "")))
        self._last_type = typ
        source = str(_field(rec, "source") or "?")
        role = "failed" if typ == _FAILED else role_of(typ, source)
        if _field(rec, "direction") == "client" or role not in (*_TEXT_ROLES, "failed"):
            return
        raw_item = _field(rec, "item_id")
        item = raw_item if isinstance(raw_item, str) and raw_item else str(
            event.get("item_id") or event.get("offset_ticks") or "stream")
        entry = self._state.setdefault(source, {}).setdefault(item, {"item_id": item, "text": "", "final": False})
        if role == "partial" and not entry["final"]:
            if isinstance(event.get("delta"), str):
                entry["text"] += event["delta"]
            elif isinstance(event.get("text"), str):  # a hypothesis that replaces the last (Azure Speech)
                entry["text"] = event["text"]
        elif role == "final":
            text = next((event[k] for k in ("transcript", "text") if isinstance(event.get(k), str)), entry["text"])
            entry["text"], entry["final"] = str(text), True
        elif role == "failed":
            err = event.get("error") or {}
            entry["text"] = f"[failed: {err.get('code') or err.get('message') or 'unknown'}]"
            entry["final"] = True

    def _publish(self) -> None:
        self.flushes += 1
        with self.hold_sync():
            self.transcripts = {s: [dict(v) for v in items.values()] for s, items in self._state.items()}
            self.event_count = self._count
            self.last_type = self._last_type

    def stop(self) -> None:
        """Stop listening to the log and apply what is queued."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.flush()
        self.done = True
        self.update_static()  # the saved notebook keeps the final transcripts, not the empty first picture

    def __repr__(self) -> str:
        return f"<LiveView {self._count} events, {len(self._state)} sources>"

    def static_png(self) -> bytes:
        """A picture of the transcripts so far, one column per source (saved beside the widget view)."""
        return transcripts_png(self.transcripts, self.event_count, done=self.done)

    def _repr_html_(self) -> str:
        """Static rendering: the transcripts so far, one column per source."""
        return transcripts_html(self.transcripts, self.event_count)


def transcripts_html(transcripts: dict[str, list[dict[str, Any]]], event_count: int) -> str:
    """An HTML table of transcripts per source (static fallback for nbconvert and GitHub)."""
    sources = list(transcripts)
    head = "".join(f"<th style='text-align:left'>{html.escape(s)}</th>" for s in sources)
    n = max((len(v) for v in transcripts.values()), default=0)
    rows = []
    for i in range(n):
        cells = []
        for s in sources:
            v = transcripts[s][i] if i < len(transcripts[s]) else None
            if v is None:
                cells.append("<td></td>")
            else:
                style = "" if v["final"] else "color:#888;font-style:italic"
                cells.append(f"<td style='{style}'>{html.escape(v['text'])}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<div class='rtl-live-static'><div><b>{event_count}</b> events</div>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def live(log: EventLog, **kwargs: Any) -> LiveView:
    """Shortcut for :class:`LiveView` ``(log, **kwargs)``."""
    return LiveView(log, **kwargs)
