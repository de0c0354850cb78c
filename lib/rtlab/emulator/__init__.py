"""rtlab's local Realtime-compatible server: the offline default target of notebooks, tests and ``make demo``.

It speaks the OpenAI Realtime WebSocket protocol (GA and beta dialects, OpenAI and Azure paths) closely enough
that the official openai SDK cannot tell it from the service for everything rtlab does, with real local engines
behind it (WebRTC VAD turns, PocketSphinx streaming ASR, flite TTS).

* :func:`start` runs it on a background thread and returns a handle (``url``, ``ws_url``, ``stop()``, context
  manager), so a notebook needs no terminal; ``rtlab serve`` runs it from the command line.
* :mod:`.realtime` is the sans-I/O Realtime session, split by concern (client event in, server events out);
  :mod:`.states` its turn and response state table; :mod:`.profiles` what an endpoint
  accepts and how it behaves, every row with its evidence; :mod:`.server` the thin websockets adapter.
* ``timing``: ``"modelled"`` (the openai and azure profiles' default: transcripts and answers arrive when published
  measurements say) or ``"local"`` (the bare local engines); :attr:`EmulatorHandle.timing` says which a run used.

Example
-------
>>> import rtlab.emulator                                                     # doctest: +SKIP
>>> with rtlab.emulator.start(seed=0) as emu:                                 # doctest: +SKIP
...     client = openai.AsyncOpenAI(base_url=emu.url + "/v1", api_key="local")
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from rtlab.engines.base import EngineSet
from rtlab.errors import RtlabError

from .adapter import Close, Later, serve_session
from .profiles import Profile, load_profile
from .realtime import TIMINGS, Session, reply_text
from .server import EmulatorServer, Route, route_request
from .states import TRANSITIONS, edges

__all__ = [
    "Close",
    "Later",
    "serve_session",
    "EmulatorHandle",
    "EmulatorServer",
    "Profile",
    "Route",
    "Session",
    "TIMINGS",
    "TRANSITIONS",
    "edges",
    "load_profile",
    "reply_text",
    "route_request",
    "start",
]


class EmulatorHandle:
    """A running emulator (returned by :func:`start`). ``url`` is the HTTP base, ``ws_url`` the WebSocket base."""

    def __init__(self, server: EmulatorServer, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        self._server = server
        self._loop = loop
        self._thread = thread
        self.host = server.host
        self.port = server.port
        self.profile = server.profile.name
        #: "modelled" or "local": record it with a run (its latencies mean different things).
        self.timing = server.timing
        self.url = f"http://{server.host}:{server.port}"
        self.ws_url = f"ws://{server.host}:{server.port}"

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<rtlab emulator {self.url} profile={self.profile} timing={self.timing} {state}>"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def sessions_opened(self) -> int:
        """How many WebSocket sessions this emulator has accepted."""
        return self._server.sessions_opened

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listening socket and every session, and end the background thread (idempotent)."""
        if not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._server.close(), self._loop)
        try:
            future.result(timeout)
        except Exception:
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def start(*, host: str = "127.0.0.1", port: int = 0, api_key: str | None = None,
          profile: str | Profile = "openai", seed: int | None = None, engines: EngineSet | None = None,
          validate: bool = False, bearer_token: str | None = None, timing: str | None = None) -> EmulatorHandle:
    """Start the emulator on a background daemon thread and return once it accepts connections.

    Parameters
    ----------
    host, port : str, int
        Listening address; port 0 (the default) picks a free port (``handle.port``).
    api_key : str, optional
        Accept only this key; None accepts any non-empty key.
    profile : {"openai", "azure"} or path or Profile
        What the endpoint accepts (see :mod:`rtlab.emulator.profiles`).
    seed : int, optional
        Reproducible ids and outputs (all but timing).
    engines : EngineSet, optional
        Defaults to :func:`rtlab.engines.default_engines` (loaded once per process and shared, so a second
        ``start()`` is fast).
    validate : bool
        Check every outgoing event against the openai SDK models inside the server (debugging).
    bearer_token : str, optional
        Emulate an Entra ID-only Azure resource: accept only ``Authorization: Bearer <bearer_token>`` (plus
        ``api_key`` when given); a key in ``api-key`` is refused (403 AuthenticationTypeDisabled).
    timing : {"modelled", "local"}, optional
        Realtime sessions' timing; default: the profile's (``modelled`` for openai and azure). ``local`` sends
        each event as soon as the local engines have it.

    Raises
    ------
    RtlabError
        When the server cannot start (e.g. the port is taken); the message says which address.
    """
    if engines is None:
        from rtlab.engines import default_engines

        engines = default_engines()
    server = EmulatorServer(engines=engines, host=host, port=port, api_key=api_key, profile=profile, seed=seed,
                            validate=validate, bearer_token=bearer_token, timing=timing)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(server.close())
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    thread = threading.Thread(target=run, name=f"rtlab-emulator-{host}:{port}", daemon=True)
    thread.start()
    ready.wait()
    if failure:
        raise RtlabError(f"the emulator could not listen on {host}:{port}: {failure[0]}") from failure[0]
    return EmulatorHandle(server, loop, thread)
