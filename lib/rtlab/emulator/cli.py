"""``rtlab serve``: run the local Realtime-compatible emulator until interrupted.

Prints two lines once it accepts connections, then serves until SIGINT or SIGTERM: ``rtlab emulator listening on
http://HOST:PORT`` (the real port when ``--port 0``), then the profile's rows counted by evidence, e.g. ``profile
openai: 11 documented, 9 reported, 0 observed, 5 assumed (timing: modelled)``, so what the emulator guesses is never
hidden.

``--timing modelled`` (the default of the bundled openai and azure profiles) times transcripts and answers on
published measurements; ``--timing local`` shows the bare local engines.

``--workers N`` runs N server processes accepting on one shared socket. The local engines (PocketSphinx in
particular) hold Python's GIL while decoding, so one process uses one core; more workers let concurrent sessions
use more cores. Ids are reproducible with ``--seed`` only in a single process, so ``--seed`` needs
``--workers 1``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import time

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, loopback)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free port)")
    parser.add_argument("--api-key", default=None,
                        help="accept only this key (Bearer or api-key header); default: any non-empty key")
    parser.add_argument("--bearer-token", default=None, metavar="TOKEN",
                        help="emulate an Entra ID-only Azure resource: accept only 'Authorization: Bearer TOKEN' "
                             "(plus --api-key if given); a key in the api-key header is refused")
    parser.add_argument("--profile", default="openai",
                        help="provider profile: openai, azure, or a profile JSON saved by `rtlab probe`")
    parser.add_argument("--deployment", action="append", default=None, metavar="NAME=MODEL",
                        help="emulate an Azure resource with exactly these deployments (repeatable), e.g. "
                             "--deployment prod-voice=gpt-realtime --deployment tx-whisper=gpt-realtime-whisper")
    parser.add_argument("--seed", type=int, default=None, help="make ids and outputs reproducible")
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes sharing the port (default 1; use the number of cores for many "
                             "concurrent sessions)")
    parser.add_argument("--timing", choices=("modelled", "local"), default=None,
                        help="Realtime timing: 'modelled' (published latency measurements; the openai and azure "
                             "profiles' default) or 'local' (events as soon as the local engines have them)")
    parser.add_argument("--validate", action="store_true",
                        help="check every outgoing event against the openai SDK models (debugging)")


def _check(args: argparse.Namespace) -> None:
    from rtlab.errors import ConfigError

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, got {args.port}.")
    if args.api_key is not None and not args.api_key.strip():
        raise ConfigError("--api-key must not be empty.", fix="omit --api-key to accept any non-empty key")
    if args.bearer_token is not None and not args.bearer_token.strip():
        raise ConfigError("--bearer-token must not be empty.", fix="omit --bearer-token to accept keys")
    if not 1 <= args.workers <= 64:
        raise ConfigError(f"--workers must be between 1 and 64, got {args.workers}.")
    if args.workers > 1 and args.seed is not None:
        raise ConfigError("--seed makes ids reproducible only within one process.", fix="use --workers 1 with --seed")


def serve_engines():
    """The engines ``rtlab serve`` runs on: :func:`rtlab.engines.default_engines` (its decoder search is pruned
    for capacity, so more concurrent sessions keep up with real time)."""
    from rtlab.engines import default_engines

    return default_engines()


async def _serve(args: argparse.Namespace, profile, sock: socket.socket, on_ready) -> None:
    from .server import EmulatorServer

    engines = await asyncio.to_thread(serve_engines)
    server = EmulatorServer(engines=engines, host=args.host, port=sock.getsockname()[1], api_key=args.api_key,
                            profile=profile, seed=args.seed, validate=args.validate,
                            bearer_token=args.bearer_token, timing=args.timing)
    await server.start(sock=sock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not on the main thread / platform
            pass
    on_ready(server.port)
    await stop.wait()
    await server.close()


def _evidence_line(profile, timing: str | None) -> str:
    """The profile's rows counted by evidence, and the timing the sessions use."""
    return f"{profile.evidence_line()} (timing: {timing or profile.behaviour_value('timing', 'local')})"


def _worker(args: argparse.Namespace, profile, sock: socket.socket, ready_fd: int) -> None:  # pragma: no cover
    # A forked worker process: serve on the shared socket, tell the parent once ready, exit on SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the workers

    def ready(port: int) -> None:
        os.write(ready_fd, b"1")
        os.close(ready_fd)

    code = 0
    try:
        asyncio.run(_serve(args, profile, sock, ready))
    except BaseException:
        logging.getLogger("rtlab.emulator").exception("emulator worker failed")
        code = 1
    os._exit(code)


def run(args: argparse.Namespace) -> int:
    from rtlab.errors import ConfigError

    from .profiles import load_profile

    _check(args)
    profile = load_profile(args.profile)
    if args.deployment:
        from rtlab.protocol.deployments import parse_deployments

        profile = profile.with_deployments(parse_deployments(",".join(args.deployment), source="--deployment"))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        sock = socket.create_server((args.host, args.port), backlog=1024)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}.",
                          fix="choose another --port (0 picks a free one)") from None
    if args.workers == 1:
        def announce(port: int) -> None:
            print(f"rtlab emulator listening on http://{args.host}:{port}", flush=True)
            print(_evidence_line(profile, args.timing), flush=True)

        with sock:
            asyncio.run(_serve(args, profile, sock, announce))
        sys.stdout.flush()
        return 0
    return _run_workers(args, profile, sock)


def _run_workers(args: argparse.Namespace, profile, sock: socket.socket) -> int:
    from rtlab.errors import RtlabError

    pids: list[int] = []
    read_fds: list[int] = []
    for _ in range(args.workers):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            os.close(r)
            _worker(args, profile, sock, w)
        os.close(w)
        pids.append(pid)
        read_fds.append(r)
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for r in read_fds:
            if os.read(r, 1) != b"1":
                raise RtlabError("an emulator worker failed to start (see the log above)")
            os.close(r)
        port = sock.getsockname()[1]
        print(f"rtlab emulator listening on http://{args.host}:{port}", flush=True)
        print(_evidence_line(profile, args.timing), flush=True)
        while not stop["now"] and all(os.waitpid(p, os.WNOHANG) == (0, 0) for p in pids):
            time.sleep(0.2)
    finally:
        for p in pids:
            try:
                os.kill(p, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in pids:
            try:
                os.waitpid(p, 0)
            except ChildProcessError:
                pass
        sock.close()
    return 0
