"""A small server for the emulated translation endpoint, for tests and the translation benchmark.

The main emulator server does not route ``/v1/realtime/translations`` yet; until it does, this harness serves
it the way it will: ``websockets.asyncio.server.serve`` on 127.0.0.1:0, handshakes decided by
:func:`rtlab.emulator.translation.route_translation`, one
:class:`~rtlab.emulator.translation.TranslationSession` per connection driven by
:func:`rtlab.emulator.adapter.serve_session`, on a thread of its own.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

import openai
from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response

from rtlab.emulator.adapter import serve_session
from rtlab.emulator.server import HttpRefusal
from rtlab.emulator.translation import TranslationSession, route_translation

KEY = "translate-test-key"


class Harness:
    """The translation endpoint on a real socket, on a thread of its own (like ``rtlab.emulator.start``)."""

    def __init__(self, engines, *, api_key: str | None = KEY) -> None:
        self.engines = engines
        self.api_key = api_key
        self.sessions = 0
        self.finished = 0  # handlers that returned (the adapter ended the connection's work)
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="translate-test")
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Future | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(30)

    def _process(self, connection, request):
        route = route_translation(request.path, request.headers, api_key=self.api_key)
        if route is None:
            route = HttpRefusal(404, "404", "Resource not found.", type="not_found")
        if isinstance(route, HttpRefusal):
            return Response(
                route.status,
                HTTPStatus(route.status).phrase,
                Headers([("Content-Type", "application/json")]),
                route.body(),
            )
        connection.translation_route = route
        return None

    async def _handle(self, ws) -> None:
        self.sessions += 1
        session = TranslationSession(
            engines=self.engines,
            model=ws.translation_route.model,
            seed=f"7:{self.sessions}",
            validate=True,
            run_async=self._pool.submit,
        )
        await serve_session(ws, session, name=f"translate-test-{self.sessions}")
        self.finished += 1

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            async with serve(
                self._handle, "127.0.0.1", 0, process_request=self._process, max_size=2**25, compression=None
            ) as server:
                self.port = next(iter(server.sockets)).getsockname()[1]
                self._stop = self._loop.create_future()
                self._ready.set()
                await self._stop

        self._loop.run_until_complete(main())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, *, key: str = KEY, azure: bool = False) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(api_key=key, base_url=self.url + ("/openai/v1" if azure else "/v1"))

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(10)
        self._pool.shutdown(wait=False)
