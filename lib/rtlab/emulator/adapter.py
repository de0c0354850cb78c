"""Run one sans-I/O emulated session over one WebSocket connection (layer: emulator, I/O edge).

Every endpoint the emulator serves (Realtime, translation, GPT-Live, Azure Speech) is a sans-I/O session object
with the same small interface, :class:`SessionLike`; :func:`serve_session` is the only code that moves its output
onto a socket. What a session may return:

=====================  ==============================================================================
``dict``               a JSON event, sent as a text frame
``str`` / ``bytes``    a raw text / binary frame (e.g. Azure Speech's USP messages)
:class:`Close`         close the connection with this code and reason (after what came before it)
:class:`Later`         send ``out`` once ``delay_s`` seconds of wall time have passed (modelled latency);
                       among outputs due at the same time, the order of emission is kept
=====================  ==============================================================================

The session's work (speech recognition, synthesis) runs on a worker thread of its own, which takes client messages
in arrival order and, between them, pumps the session's pending work; the event loop only moves frames, so one busy
session never blocks another. An exception inside the session is logged and ends that connection with close code
1011; it never reaches the peer as a traceback.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

__all__ = ["Close", "Later", "Out", "SessionLike", "serve_session"]

log = logging.getLogger("rtlab.emulator")


@dataclass(frozen=True)
class Close:
    """Close the WebSocket with ``code`` and ``reason`` once everything emitted before it is sent."""

    code: int = 1000
    reason: str = ""


@dataclass(frozen=True)
class Later:
    """Send ``out`` when ``delay_s`` seconds of wall time have passed since it was emitted."""

    delay_s: float
    out: Any


Out = dict | str | bytes | Close | Later


@runtime_checkable
class SessionLike(Protocol):
    """One emulated connection, sans I/O. None of these methods raises: errors are protocol output."""

    def start(self) -> list[Out]: ...

    def receive(self, message: str | bytes) -> Iterable[Out]: ...

    def pending(self) -> bool: ...

    def pump(self) -> list[Out]: ...

    def close(self) -> None: ...


_END = object()
_STOP = object()
_PUMP_WAIT_S = 0.005  # how long a session with pending work waits for a client message between pumps


class _Outbox:
    """What the worker thread hands to the event loop, with :class:`Later` outputs held until due."""

    def __init__(self, loop: asyncio.AbstractEventLoop, frames: asyncio.Queue) -> None:
        self._loop = loop
        self._frames = frames
        self._held: list[tuple[float, int, Any]] = []
        self._seq = itertools.count()
        self.closed = False

    def put(self, out: Any) -> None:
        if isinstance(out, Later):
            heapq.heappush(self._held, (time.monotonic() + max(0.0, float(out.delay_s)), next(self._seq), out.out))
            return
        if self.closed and out is not _STOP:  # after a Close nothing more is sent, but the sender must still end
            return
        if isinstance(out, Close):
            self.closed = True
        elif isinstance(out, dict):
            out = json.dumps(out)
        self._loop.call_soon_threadsafe(self._frames.put_nowait, out)

    def release_due(self) -> None:
        now = time.monotonic()
        while self._held and self._held[0][0] <= now:
            self.put(heapq.heappop(self._held)[2])

    def next_due_in(self) -> float | None:
        return max(0.0, self._held[0][0] - time.monotonic()) if self._held else None

    def flush_all(self) -> None:
        """Send whatever is still held (the client closed: nothing is dropped that was already decided)."""
        while self._held:
            self.put(heapq.heappop(self._held)[2])


def _work(session: Any, inbox: queue.Queue, outbox: _Outbox) -> None:
    try:
        for out in session.start():
            outbox.put(out)
        iter_receive = getattr(session, "iter_receive", None)
        while not outbox.closed:
            outbox.release_due()
            waits = [w for w in (_PUMP_WAIT_S if session.pending() else None, outbox.next_due_in())
                     if w is not None]
            try:
                message = inbox.get(timeout=min(waits)) if waits else inbox.get()
            except queue.Empty:
                if session.pending():
                    for out in session.pump():
                        outbox.put(out)
                continue
            if message is _END:
                break
            # iter_receive (when a session has it) yields each output as soon as it is ready.
            for out in (iter_receive(message) if iter_receive is not None else session.receive(message)):
                outbox.put(out)
        if not outbox.closed:
            outbox.flush_all()
    except RuntimeError:  # the event loop closed under us (server stopping)
        pass
    except Exception:
        log.exception("emulator: session worker crashed")
        try:
            outbox.put(Close(1011, "internal error"))
        except RuntimeError:
            pass
    finally:
        try:
            session.close()
        finally:
            try:
                outbox.put(_STOP)
            except RuntimeError:
                pass


async def serve_session(ws: ServerConnection, session: Any, *, name: str = "rtlab-session") -> None:
    """Drive ``session`` (a :class:`SessionLike`) over ``ws`` until either side closes."""
    loop = asyncio.get_running_loop()
    frames: asyncio.Queue[Any] = asyncio.Queue()
    outbox = _Outbox(loop, frames)
    inbox: queue.Queue[Any] = queue.Queue()
    worker = threading.Thread(target=_work, args=(session, inbox, outbox), daemon=True, name=name)
    worker.start()

    async def send() -> None:
        peer_gone = False
        while (frame := await frames.get()) is not _STOP:
            if peer_gone:
                continue
            try:
                if isinstance(frame, Close):
                    await ws.close(frame.code, frame.reason)
                    peer_gone = True
                else:
                    await ws.send(frame)
            except ConnectionClosed:
                peer_gone = True  # keep draining until the worker is done

    sender = asyncio.create_task(send())
    try:
        async for message in ws:
            inbox.put(message)
    except ConnectionClosed:
        pass
    finally:
        inbox.put(_END)
        await sender
        await asyncio.to_thread(worker.join)
