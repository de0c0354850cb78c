"""One SDK connection as a leg of a run: open, record every message both ways, close (layer: runs).

The Realtime (:mod:`rtlab.runs.realtime`), translation (:mod:`rtlab.runs.translation`) and GPT-Live
(:mod:`rtlab.runs.live`) legs differ in what they send and when, not in how they talk: each opens the SDK's async
connection manager, records a refused handshake as a result (never a crash), runs a receiver task that logs every
server message exactly as it came (``recv_bytes`` + ``json``: the SDK's ``recv()`` would parse it into models, and
the log keeps the wire), and closes the connection whatever happens. :class:`SocketLeg` is that shared part; a
subclass says how to connect (:meth:`SocketLeg.connect`), what its session does once connected
(:meth:`SocketLeg.converse`) and how it reads each server event (:meth:`SocketLeg.on_event`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from rtlab.protocol import events as E

from .core import Leg, Run

__all__ = ["SocketLeg", "handshake_error_event", "parse_server_message"]

logger = logging.getLogger("rtlab.runs")


class SocketLeg(Leg):
    """A leg over one SDK WebSocket connection. Subclasses implement :meth:`connect` and :meth:`converse`."""

    conn: Any = None

    def connect(self) -> Any:  # pragma: no cover - interface
        """The SDK's async connection manager (``client.realtime.connect(...)``, ``client.live.connect()``, ...)."""
        raise NotImplementedError

    async def converse(self, run: Run) -> None:  # pragma: no cover - interface
        """Configure, stream the run's chunks and settle; the receiver task runs meanwhile."""
        raise NotImplementedError

    async def on_event(self, run: Run, event: dict) -> None:
        """Read one server event (already recorded); update :attr:`state`. Default: nothing."""

    def source_of(self, event: dict) -> str:
        """The source label one server event is recorded under (default: the leg's own)."""
        return self.source

    def before_record(self, event: dict) -> None:
        """Hook run on each server event before it is recorded (e.g. to tag it for :meth:`source_of`)."""

    async def run(self, run: Run) -> None:
        manager = self.connect()
        try:
            self.conn = await manager.__aenter__()
        except Exception as exc:  # handshake refused: a result to record, not a crash
            run.log.record("server", self.source, handshake_error_event(exc), audio_ms=run.clock_ms())
            self.state.closed = True
            self.ready.set()
            await self.drain_queue()
            return
        receiver = asyncio.create_task(self._receive(run))
        try:
            await self.converse(run)
        finally:
            self.ready.set()
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await receiver
            with contextlib.suppress(Exception):
                await manager.__aexit__(None, None, None)

    async def send(self, run: Run, event: dict, *, audio_ms: float | None = None, audio_offset: int | None = None,
                   audio_format: tuple[str, int] | None = None, source: str | None = None) -> None:
        """Record a client event, then send it; a gone connection marks the leg closed (what was recorded stays).

        ``audio_offset`` places appended audio on the run's clock; ``audio_format`` (``(format, rate)``) says the
        payload is in another wire format, which the log puts back onto the run's clock; ``source`` records the
        event under another label than the leg's (an out-of-band request of a voice session).
        """
        run.log.record("client", source or self.source, event, audio_ms=run.clock_ms() if audio_ms is None else audio_ms,
                       audio_offset=audio_offset, audio_format=audio_format)
        try:
            await self.conn.send(event)
        except Exception as exc:  # connection gone: keep what was recorded, stop sending
            self.state.closed = True
            self.notify()
            logger.info("%s: send failed (%s)", self.source, type(exc).__name__)

    async def _receive(self, run: Run) -> None:
        try:
            while True:
                event = parse_server_message(await self.conn.recv_bytes())
                self.before_record(event)
                run.log.record("server", self.source_of(event), event, audio_ms=run.clock_ms())
                await self.on_event(run, event)
                self.notify()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a closed or broken connection ends the leg, never the run
            self.state.closed = True
            self.notify()
            logger.info("%s: connection closed (%s)", self.source, type(exc).__name__)


def parse_server_message(raw: bytes | str) -> dict[str, Any]:
    """A server message as an event dict; anything that is not a JSON object with a ``type`` is kept as
    ``rtlab.unparseable`` with its first 200 characters (a log never drops what came)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes | bytearray) else str(raw)
    try:
        event = json.loads(text)
    except ValueError:
        return {"type": E.UNPARSEABLE, "raw": text[:200]}
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return {"type": E.UNPARSEABLE, "raw": text[:200]}
    return event


def handshake_error_event(exc: BaseException) -> dict[str, Any]:
    """A handshake failure as an rtlab pseudo-event (status, code, message), with no secret in it."""
    from rtlab.secrets import redact

    status = None
    body = ""
    response = getattr(exc, "response", None)
    if response is not None:
        status = getattr(response, "status_code", None)
        raw = getattr(response, "body", b"") or b""
        body = raw.decode("utf-8", "replace") if isinstance(raw, bytes | bytearray) else str(raw)
    code = None
    message = body or type(exc).__name__
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        err = json.loads(body).get("error", {})
        code, message = err.get("code"), err.get("message") or message
    return {
        "type": E.HANDSHAKE_FAILED,
        "status": status,
        "code": code,
        "message": redact(str(message))[:500],
        "exception": type(exc).__name__,
    }
