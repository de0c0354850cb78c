"""The thin websockets adapter around :class:`rtlab.emulator.realtime.Session`, plus handshake routing and auth.

:func:`route_request` is pure (path, query, headers → a :class:`Route` or an HTTP refusal), so the rules of the
four paths rtlab serves are unit-testable without a socket:

=========================================================  =========  ================================
request                                                    dialect    session
=========================================================  =========  ================================
``/v1/realtime?model=M``                                   GA¹        realtime, model M
``/v1/realtime?intent=transcription``                      GA¹        transcription
``/openai/v1/realtime?model=DEPLOYMENT`` (Azure GA v1)     GA¹        realtime (or ``intent=``)
``/openai/realtime?api-version=V&deployment=D``            beta       realtime (or ``&intent=transcription``)
=========================================================  =========  ================================

¹ beta when the request carries ``OpenAI-Beta: realtime=v1``.

:class:`EmulatorServer` runs one :class:`~rtlab.emulator.realtime.Session` per connection. The session's work (ASR
decoding, TTS) runs on a worker thread of its own, which takes client messages in arrival order and streams a
response's audio between them, so one busy session never blocks the event loop or the other sessions, and the
order of events within a session stays what the core decided. Keys are compared in constant time and never
logged.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from rtlab.engines.base import EngineSet
from rtlab.errors import ConfigError

from .adapter import serve_session
from .profiles import Profile, load_profile
from .realtime import TIMINGS, Session

__all__ = ["EmulatorServer", "HttpRefusal", "Route", "route_request"]

log = logging.getLogger("rtlab.emulator")

#: Largest WebSocket message accepted; above MAX_APPEND_BYTES (as base64) so an oversized append gets an error
#: event instead of a closed socket.
MAX_MESSAGE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Route:
    """Where a handshake leads: the session kind, dialect and model names."""

    path: str  # "/v1/realtime" | "/openai/v1/realtime" | "/openai/realtime"
    kind: str  # "realtime" | "transcription"
    shape: str  # "ga" | "beta"
    model: str | None  # as the client named it (a deployment name on Azure)


@dataclass(frozen=True)
class HttpRefusal:
    """A refused handshake: HTTP status and a JSON error body."""

    status: int
    code: str
    message: str
    type: str = "invalid_request_error"

    def body(self) -> bytes:
        return json.dumps({"error": {"type": self.type, "code": self.code, "message": self.message,
                                     "param": None}}).encode("utf-8")


def _presented_key(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization") or headers.get("Authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else None
    key = headers.get("api-key") or headers.get("Api-Key")
    return key.strip() if key is not None else None


#: Azure's answers to a bearer-token (Entra ID) resource: an api-key where keys are disabled (HTTP 403, reported:
#: browser-use/browser-use issue 1295, 2025-04-05) and a missing or wrong token (HTTP 401, reported:
#: Azure-Samples/azure-search-openai-demo issue 2219, 2024-12-10). See rtlab.protocol.known_errors.
_KEYS_DISABLED = HttpRefusal(403, "AuthenticationTypeDisabled",
                             "Key based authentication is disabled for this resource.", type="invalid_request_error")
_BAD_TOKEN = HttpRefusal(401, "401", "Unauthorized. Access token is missing, invalid, audience is incorrect "
                         "(https://cognitiveservices.azure.com), or have expired.", type="invalid_request_error")


def _check_bearer(headers: Mapping[str, str], bearer_token: str, api_key: str | None) -> HttpRefusal | None:
    """Entra ID emulation: only ``Authorization: Bearer <bearer_token>`` passes (or ``api_key`` when keys are
    also enabled, as a Bearer value or in ``api-key``); None when the request may go on."""
    auth = headers.get("authorization") or headers.get("Authorization") or ""
    scheme, _, value = auth.partition(" ")
    value = value.strip() if scheme.lower() == "bearer" else ""
    allowed = [bearer_token] + ([api_key] if api_key is not None else [])
    if value and any(hmac.compare_digest(value.encode(), ok.encode()) for ok in allowed):
        return None
    header_key = (headers.get("api-key") or headers.get("Api-Key") or "").strip()
    if header_key and not value:
        if api_key is None:
            return _KEYS_DISABLED
        if hmac.compare_digest(header_key.encode(), api_key.encode()):
            return None
    return _BAD_TOKEN


def _authorize(headers: Mapping[str, str], *, api_key: str | None, bearer_token: str | None) -> HttpRefusal | None:
    """The key (or Entra ID token) check every OpenAI-style path shares; None when the request may go on."""
    if bearer_token is not None:
        refusal = _check_bearer(headers, bearer_token, api_key)
        if refusal is not None:
            return refusal
        return None
    presented = _presented_key(headers)
    if not presented:
        return HttpRefusal(401, "invalid_api_key", "Missing API key. Pass it as 'Authorization: Bearer KEY' or in "
                           "the 'api-key' header.", type="invalid_request_error")
    if api_key is not None and not hmac.compare_digest(presented.encode(), api_key.encode()):
        return HttpRefusal(401, "invalid_api_key", "Incorrect API key provided.", type="invalid_request_error")
    return None


def route_any(path_and_query: str, headers: Mapping[str, str], *, profile: Profile, api_key: str | None = None,
              bearer_token: str | None = None) -> Any:
    """Route a WebSocket upgrade to one of the protocol families the emulator serves (pure: no I/O).

    Azure Speech paths (``/speech/...``) go to :func:`rtlab.emulator.usp.route_usp` (its own auth: the
    ``Ocp-Apim-Subscription-Key`` header); translation paths (``/v1/realtime/translations``) and GPT-Live paths
    (``/v1/live/sessions``, Azure ``/openai/v1/...``) are checked for the key like the Realtime paths, then routed
    by their modules; everything else is :func:`route_request`. Returns a route or an :class:`HttpRefusal`.
    """
    from .live import route_live
    from .translation import TRANSLATION_PATHS, route_translation
    from .usp import USP_PATHS, route_usp

    path = urlsplit(path_and_query).path.rstrip("/") or "/"
    if path in USP_PATHS:
        return route_usp(path_and_query, headers, api_key=api_key)
    live = path in _LIVE_PATHS
    if path in TRANSLATION_PATHS or live:
        if path not in profile.paths:
            return HttpRefusal(404, "404", f"Resource not found: {path[:120]}.", type="not_found")
        refusal = _authorize(headers, api_key=api_key, bearer_token=bearer_token)
        if refusal is not None:
            return refusal
        if live:
            routed = route_live(path_and_query)
            if isinstance(routed, tuple):
                status, code, message = routed
                return HttpRefusal(status, code, message)
            return routed
        return route_translation(path_and_query, headers, api_key=None)
    return route_request(path_and_query, headers, profile=profile, api_key=api_key, bearer_token=bearer_token)


def _live_paths() -> frozenset[str]:
    from rtlab.protocol.live import PATHS

    return frozenset(route for route, _evidence in PATHS.values())


_LIVE_PATHS = _live_paths()


def route_request(path_and_query: str, headers: Mapping[str, str], *, profile: Profile,
                  api_key: str | None = None, bearer_token: str | None = None) -> Route | HttpRefusal:
    """Decide what a WebSocket upgrade request gets (pure: no I/O).

    Parameters
    ----------
    path_and_query : str
        The request target, e.g. ``/v1/realtime?model=gpt-realtime``.
    headers : Mapping[str, str]
        Request headers (case-insensitive mapping preferred).
    profile : Profile
        Decides which paths exist and which session models the handshake accepts.
    api_key : str, optional
        The only key accepted; without it any non-empty key is accepted.
    bearer_token : str, optional
        Emulate an Entra ID-only Azure resource: only ``Authorization: Bearer <bearer_token>`` is accepted (and
        ``api_key`` too when both are given); a key in ``api-key`` is refused with 403 AuthenticationTypeDisabled.
    """
    parts = urlsplit(path_and_query)
    path = parts.path.rstrip("/") or "/"
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    known = path in ("/v1/realtime", "/openai/v1/realtime", "/openai/realtime")
    if not known or path not in profile.paths:
        return HttpRefusal(404, "404", f"Resource not found: {path[:120]}.", type="not_found")
    refusal = _authorize(headers, api_key=api_key, bearer_token=bearer_token)
    if refusal is not None:
        return refusal
    kind = "transcription" if query.get("intent") == "transcription" else "realtime"
    beta_header = (headers.get("openai-beta") or headers.get("OpenAI-Beta") or "").replace(" ", "")
    shape = "beta" if path == "/openai/realtime" or "realtime=v1" in beta_header.split(",") else "ga"
    if path == "/openai/realtime":
        if not query.get("api-version"):
            return HttpRefusal(400, "BadRequest", "Missing required query parameter 'api-version'.")
        if query["api-version"] in (profile.behaviour_value("retired_api_versions") or ()):
            return HttpRefusal(400, "BadRequest", f"The api-version '{query['api-version'][:40]}' is retired. Use "
                               "the GA path /openai/v1/realtime (or a current preview api-version).")
        model = query.get("deployment") or None
        # A preview transcription session works without deployment= (reported: the profile's
        # preview_transcription_without_deployment row); a voice session needs one.
        if model is None and not (kind == "transcription"
                                  and profile.behaviour_value("preview_transcription_without_deployment", False)):
            return HttpRefusal(400, "BadRequest", "Missing required query parameter 'deployment'.")
    else:
        model = query.get("model") or None
        if model is None and kind == "realtime":
            return HttpRefusal(400, "missing_required_parameter", "Missing required parameter: 'model'. Use "
                               "?model=NAME for a realtime session or ?intent=transcription.")
    if kind == "realtime" and model is not None:
        outcome = profile.session_outcome(model)
        if outcome.outcome == "handshake_error":
            return HttpRefusal(outcome.status or 400, outcome.code or "invalid_request_error",
                               outcome.message or f"Model {model!r} is not supported.",
                               type=outcome.type or "invalid_request_error")
        refusal = _handshake_rule(model, shape=shape, profile=profile)
        if refusal is not None:
            return refusal
    return Route(path=path, kind=kind, shape=shape, model=model)


def _handshake_rule(model: str, *, shape: str, profile: Profile) -> HttpRefusal | None:
    """The rules table's handshake rows (a model of another API as the session model), where the profile has no
    row of its own for that model; the wording is the emulator's (assumed)."""
    from rtlab.protocol import rules as R

    ctx = R.RuleInput.build("realtime", {}, shape=shape, provider=profile.provider,  # type: ignore[arg-type]
                            deployments=profile.deployments, session_model=model)
    for rule in R.check(ctx, where=("handshake",)):
        resolved = profile.resolve_model(model)
        return HttpRefusal(400, rule.server.code or "invalid_model",
                           f"Model '{str(resolved)[:80]}' is not supported for realtime sessions: "
                           + R.server_message(rule, ctx).rstrip(".") + ".", type=rule.server.type)
    return None


class _Stamped:
    """The connection as the adapter sees it, noting when each client message arrived (monotonic seconds).

    A Realtime session with modelled timing counts from when the end of speech *arrived*, not from when its worker
    thread got to it: a busy server must not add its own backlog to the modelled latency twice.
    """

    def __init__(self, ws: ServerConnection, stamps: Any) -> None:
        self._ws = ws
        self._stamps = stamps

    def __aiter__(self) -> Any:
        return self._messages()

    async def _messages(self) -> Any:
        async for message in self._ws:
            self._stamps.append(time.monotonic())
            yield message

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)


_WARMED: set[tuple[int, int]] = set()
_WARM_LOCK = threading.Lock()


def warm_up(engines: EngineSet) -> float:
    """Load what the engines load lazily (TTS resampler, a decoder), once per engine set; returns seconds."""
    import numpy as np

    with _WARM_LOCK:
        key = (id(engines.asr), id(engines.tts))
        if key in _WARMED:
            return 0.0
        t0 = time.perf_counter()
        try:
            engines.tts.synthesize("Ready.", voice=None)
            rec = engines.asr.stream()
            rec.accept(np.zeros(4800, np.int16), 24000)
            rec.finish()
            from rtlab.engines import speakers

            from .realtime.responses import stretch

            speakers.warm_up()  # librosa's lazy imports cost seconds: pay them before the first Speech session
            stretch(np.full(4800, 100, np.int16), 1.25)  # audio.output.speed: librosa's time stretch, once
        except Exception:  # a broken engine shows up in the first session, as a failed event
            log.exception("emulator: engine warm-up failed")
        _WARMED.add(key)
        return time.perf_counter() - t0


class EmulatorServer:
    """The emulator on a real socket. Use :func:`rtlab.emulator.start` (thread) or ``rtlab serve`` (CLI).

    Parameters
    ----------
    engines : EngineSet
        Shared by every session (the ASR engine pools its decoders; the TTS engine caches).
    host, port : str, int
        Where to listen; port 0 picks a free port (see :attr:`port` after :meth:`start`).
    api_key : str, optional
        The only key accepted at the handshake; None accepts any non-empty key.
    bearer_token : str, optional
        Require ``Authorization: Bearer <bearer_token>`` (Entra ID emulation; see :func:`route_request`).
    profile : Profile or str
    seed : int, optional
        Each session's seed is ``"{seed}:{k}"`` for Realtime voice sessions and ``"{seed}:{route}:{k}"`` for the
        others, ``k`` counting the connections of the same route (family, kind, dialect, model): ids and modelled
        draws are reproducible even when a voice session and its sidecars connect in either order.
    validate : bool
        Validate every outgoing event against the SDK models in the core (debugging).
    timing : {"modelled", "local"}, optional
        Realtime sessions' timing (:mod:`rtlab.emulator.realtime.timing`); default: the profile's ``timing`` row.
    """

    def __init__(self, *, engines: EngineSet, host: str = "127.0.0.1", port: int = 8765,
                 api_key: str | None = None, profile: Profile | str = "openai", seed: int | None = None,
                 validate: bool = False, bearer_token: str | None = None, timing: str | None = None) -> None:
        self.engines = engines
        self.host = host
        self.port = port
        self._api_key = api_key
        self._bearer_token = bearer_token
        self.profile = load_profile(profile)
        self.timing = timing or str(self.profile.behaviour_value("timing", "local"))
        if self.timing not in TIMINGS:
            raise ConfigError(f"timing must be one of {', '.join(TIMINGS)}, got {self.timing!r}.", field="timing")
        self.seed = seed
        self.validate = validate
        self._counters: dict[str, itertools.count] = {}
        self._server: Any = None
        self.sessions_opened = 0
        # Speech synthesis runs here, off the session workers, so a session keeps taking audio meanwhile.
        self._tts_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rtlab-tts")

    def __repr__(self) -> str:
        return (f"EmulatorServer(host={self.host!r}, port={self.port}, profile={self.profile.name!r}, "
                f"timing={self.timing!r}, "
                f"api_key={'set' if self._api_key else 'any'}"
                + (", bearer_token=set" if self._bearer_token else "") + ")")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self, *, sock: Any = None) -> None:
        """Warm the engines (once per engine set), bind, and accept connections (sets :attr:`port` when 0).

        ``sock``: an already listening socket to accept on instead of binding ``host:port`` (``rtlab serve
        --workers N`` shares one socket between worker processes).
        """
        await asyncio.to_thread(warm_up, self.engines)
        where = {"sock": sock} if sock is not None else {"host": self.host, "port": self.port}
        from .usp import select_subprotocol

        # select_subprotocol (not subprotocols=["USP"]): Azure Speech clients offer "USP"; Realtime clients offer
        # none and must not be refused for it.
        self._server = await serve(
            self._handle, **where, process_request=self._process_request, select_subprotocol=select_subprotocol,
            max_size=MAX_MESSAGE_BYTES, compression=None, server_header="rtlab-emulator",
        )
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self._tts_pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------------------------------ handshake
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path in ("/healthz", "/"):
            return connection.respond(HTTPStatus.OK, "rtlab emulator\n")
        result = route_any(request.path, request.headers, profile=self.profile, api_key=self._api_key,
                           bearer_token=self._bearer_token)
        if isinstance(result, HttpRefusal):
            log.info("emulator: refused handshake %s -> %d %s", urlsplit(request.path).path, result.status,
                     result.code)
            headers = Headers([("Content-Type", "application/json")])
            return Response(result.status, HTTPStatus(result.status).phrase, headers, result.body())
        connection.rtlab_route = result  # type: ignore[attr-defined]
        return None

    # ------------------------------------------------------------------------------------------ sessions
    async def _handle(self, ws: ServerConnection) -> None:
        route = ws.rtlab_route  # type: ignore[attr-defined]
        key = ":".join(str(getattr(route, f, "") or "") for f in ("kind", "shape", "model"))
        key = f"{type(route).__name__}:{key}"
        k = next(self._counters.setdefault(key, itertools.count()))
        self.sessions_opened += 1
        voice = isinstance(route, Route) and route.kind == "realtime"
        seed = None if self.seed is None else f"{self.seed}:{k}" if voice else f"{self.seed}:{key}:{k}"
        session = self._session_for(route, seed)
        arrivals = getattr(session, "arrivals", None)
        conn = _Stamped(ws, arrivals) if arrivals is not None else ws
        await serve_session(conn, session, name=f"rtlab-session-{self.sessions_opened}")

    def _session_for(self, route: Any, seed: str | None) -> Any:
        """The sans-I/O session of a route's protocol family."""
        from .live import LiveRoute, LiveSession
        from .translation import TranslationRoute, TranslationSession
        from .usp import SpeechSession, UspRoute

        if isinstance(route, UspRoute):
            return SpeechSession(route, engines=self.engines, seed=seed)
        if isinstance(route, TranslationRoute):
            return TranslationSession(engines=self.engines, model=route.model, seed=seed, validate=self.validate,
                                      run_async=self._tts_pool.submit)
        if isinstance(route, LiveRoute):
            return LiveSession(engines=self.engines, provider=route.provider,
                               deployments=self.profile.deployments, seed=seed, validate=self.validate,
                               run_async=self._tts_pool.submit)
        return Session(engines=self.engines, kind=route.kind, shape=route.shape, model=route.model,
                       profile=self.profile, seed=seed, validate=self.validate, run_async=self._tts_pool.submit,
                       timing=self.timing)
