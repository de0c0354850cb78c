"""Run Realtime sessions over one audio source, on one audio clock, recording every event.

A *run* paces an audio file into one or more *legs*, each tagged with a source label:

- a remote leg is one WebSocket session opened through :mod:`rtlab.targets` (the official openai SDK), either a
  voice session (``kind="realtime"``, optionally also driving the out-of-band transcription pattern) or a
  transcription session (``intent=transcription``);
- a local leg runs the local engine in-process, with no server (see :mod:`rtlab.sidecar`).

Every leg gets the same chunks at the same moments, so every server event of every leg can be placed on the
one audio clock (``audio_ms``: input audio sent so far when the event arrived). ``run_session`` is the one-leg
case of the same machinery that :func:`rtlab.sidecar.run_sidecar` uses.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RtlabError

logger = logging.getLogger(__name__)

#: Source labels used across rtlab (tables, widgets, reports).
IN_SESSION = "in-session"
SIDECAR_TRANSCRIPTION = "sidecar:transcription"
SIDECAR_LOCAL = "sidecar:local"
SIDECAR_OOB = "sidecar:oob"

OOB_INSTRUCTIONS = (
    "Transcribe the user's last audio turn verbatim. Output only the words that were spoken, nothing else."
)


@dataclass
class RunOptions:
    """How audio is fed. ``speed`` > 1 feeds faster than real time (``float('inf')``: as fast as possible)."""

    chunk_ms: int = 40
    speed: float = 1.0
    tail_ms: int = 1500  # silence appended after the audio so server VAD can close the last turn
    settle_timeout_s: float = 20.0  # wait at most this long after the audio for pending transcripts/responses
    ready_timeout_s: float = 15.0  # wait at most this long for session.created/updated
    progress: bool = True


@dataclass
class LegState:
    """What a leg is still waiting for; the run ends when every leg is settled."""

    committed: list[str] = field(default_factory=list)
    transcribed: set[str] = field(default_factory=set)
    active_responses: set[str] = field(default_factory=set)
    oob_pending: set[str] = field(default_factory=set)
    oob_responses: dict[str, str] = field(default_factory=dict)  # response_id -> item_id
    errors: list[dict] = field(default_factory=list)
    session: dict | None = None
    n_updated: int = 0  # session.updated (or transcription_session.updated) events seen
    closed: bool = False
    last_event_at: float = 0.0

    def settled(self, *, wants_transcripts: bool) -> bool:
        if self.closed:
            return True
        waiting_items = wants_transcripts and any(i not in self.transcribed for i in self.committed)
        return not (waiting_items or self.active_responses or self.oob_pending)


class Leg:
    """One participant of a run. Subclasses implement :meth:`run`."""

    source: str

    def __init__(self, source: str):
        self.source = source
        self.state = LegState()
        self.queue: asyncio.Queue = asyncio.Queue()

    async def run(self, run: Run) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def wants_transcripts(self) -> bool:
        return True


class RemoteLeg(Leg):
    """A WebSocket session through the official SDK: a voice session or a transcription session."""

    def __init__(self, source: str, target: Any, config: Any, *, oob: bool = False, validate: bool = True,
                 connect_model: str | None = None):
        super().__init__(source)
        self.target = target
        self.config = config
        self.oob = oob
        # The probe sends what rtlab's own rules would refuse, to see what the endpoint says.
        self.validate = validate
        self.connect_model = connect_model
        self.conn: Any = None
        self.ready = asyncio.Event()
        self._oob_seq = 0

    def wants_transcripts(self) -> bool:
        return getattr(self.config, "transcription", None) is not None

    @property
    def client_commits(self) -> bool:
        return getattr(self.config, "turn_detection", None) is None

    def _source_of(self, event: dict) -> str:
        rid = event.get("response_id") or (event.get("response") or {}).get("id")
        if rid and rid in self.state.oob_responses:
            return SIDECAR_OOB
        return self.source

    async def run(self, run: Run) -> None:
        from .config import render

        model = self.connect_model or getattr(self.config, "model", None)
        manager = self.target.connect(kind=self.config.kind, model=model)
        try:
            self.conn = await manager.__aenter__()
        except Exception as exc:  # handshake refused: a result to record, not a crash
            run.log.record("server", self.source, handshake_error_event(exc), audio_ms=run.clock_ms())
            self.state.closed = True
            self.ready.set()
            await self._drain_queue()
            return
        receiver = asyncio.create_task(self._receive(run))
        try:
            await self._wait_for(lambda: self.state.session is not None or self.state.closed, run)
            update = render(self.config, self.target.dialect, validate=self.validate,
                            deployments=getattr(self.target, "deployments", None) or None)
            await self._send(run, update)
            await self._wait_for(self._updated, run)
            self.ready.set()
            detector = run.new_turn_detector() if self.client_commits else None
            while True:
                chunk = await self.queue.get()
                if chunk is None:
                    break
                if self.state.closed:
                    continue
                await self._send(
                    run,
                    {"type": "input_audio_buffer.append", "audio": base64.b64encode(chunk.payload).decode()},
                    audio_ms=chunk.offset_ms + chunk.duration_ms,
                    audio_offset=chunk.offset_samples,
                )
                if detector is not None:
                    for turn in detector.feed(run.decode(chunk.payload)):
                        if turn.kind == "speech_stopped":
                            await self._send(run, {"type": "input_audio_buffer.commit"})
            if detector is not None and any(t.kind == "speech_stopped" for t in detector.flush()):
                await self._send(run, {"type": "input_audio_buffer.commit"})
            await self._barrier(run)
            await run.settle(self)
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await receiver
            with contextlib.suppress(Exception):
                await manager.__aexit__(None, None, None)

    async def _barrier(self, run: Run) -> None:
        """Wait until the server has processed everything sent so far.

        The server handles client events in order, so the answer to an empty session update arrives after every
        event caused by the audio before it (VAD turns, commits). Without it a fast feed would end the run before
        the server has even heard the audio.
        """
        from .protocol import DIALECTS, TRANSCRIPTION_SESSION_EVENTS

        if self.state.closed:
            return
        shape = DIALECTS.get(self.target.dialect, "ga")
        if shape == "ga":
            event = {"type": "session.update", "session": {"type": self.config.kind}}
        elif self.config.kind == "transcription":
            event = {"type": TRANSCRIPTION_SESSION_EVENTS["beta"]["update"], "session": {}}
        else:
            event = {"type": "session.update", "session": {}}
        expected = self.state.n_updated + 1
        n_errors = len(self.state.errors)
        await self._send(run, event)
        deadline = time.monotonic() + run.options.settle_timeout_s
        while not (self.state.closed or self.state.n_updated >= expected or len(self.state.errors) > n_errors):
            if time.monotonic() > deadline:
                logger.warning("%s: the server did not answer the end-of-audio barrier", self.source)
                return
            await asyncio.sleep(0.005)

    def _updated(self) -> bool:
        s = self.state
        return s.closed or bool(s.errors) or (s.session is not None and s.session.get("_updated", False))

    async def _wait_for(self, cond: Callable[[], bool], run: Run) -> None:
        deadline = time.monotonic() + run.options.ready_timeout_s
        while not cond():
            if time.monotonic() > deadline:
                raise RtlabError(f"{self.source}: no session.created/updated within {run.options.ready_timeout_s} s")
            await asyncio.sleep(0.005)

    async def _drain_queue(self) -> None:
        while await self.queue.get() is not None:
            pass

    async def _send(self, run: Run, event: dict, *, audio_ms: float | None = None, audio_offset: int | None = None):
        source = SIDECAR_OOB if event.get("type") == "response.create" and event.get("_oob") else self.source
        event = {k: v for k, v in event.items() if k != "_oob"}
        run.log.record(
            "client", source, event, audio_ms=run.clock_ms() if audio_ms is None else audio_ms,
            audio_offset=audio_offset,
        )
        try:
            await self.conn.send(event)
        except Exception as exc:  # connection gone: keep what was recorded, stop sending
            self.state.closed = True
            logger.info("%s: send failed (%s)", self.source, type(exc).__name__)

    async def _receive(self, run: Run) -> None:
        s = self.state
        try:
            while True:
                raw = await self.conn.recv_bytes()
                try:
                    event = json.loads(raw)
                except ValueError:
                    event = {"type": "rtlab.unparseable", "raw": raw[:200].decode("utf-8", "replace")}
                self._register_oob(event)
                run.log.record("server", self._source_of(event), event, audio_ms=run.clock_ms())
                s.last_event_at = time.monotonic()
                await self._on_event(run, event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            s.closed = True
            logger.info("%s: connection closed (%s)", self.source, type(exc).__name__)

    def _register_oob(self, event: dict) -> None:
        """Tag an out-of-band response by its metadata before its first event is recorded."""
        if event.get("type") == "response.created":
            resp = event.get("response") or {}
            item = (resp.get("metadata") or {}).get("rtlab_item_id")
            if item and resp.get("id"):
                self.state.oob_responses[resp["id"]] = item

    async def _on_event(self, run: Run, event: dict) -> None:
        from .protocol import canonical_event_name

        s = self.state
        etype = canonical_event_name(event.get("type", ""))
        if etype == "session.created":
            s.session = dict(event.get("session") or {})
        elif etype == "session.updated":
            s.session = dict(event.get("session") or {}, _updated=True)
            s.n_updated += 1
        elif etype == "error":
            s.errors.append(event.get("error") or {})
        elif etype == "input_audio_buffer.committed":
            item = event.get("item_id")
            if item:
                s.committed.append(item)
                if self.oob:
                    await self._request_oob(run, item)
        elif etype in (
            "conversation.item.input_audio_transcription.completed",
            "conversation.item.input_audio_transcription.failed",
        ):
            s.transcribed.add(event.get("item_id"))
        elif etype == "response.created":
            rid = (event.get("response") or {}).get("id")  # oob responses were tagged by _register_oob
            if rid:
                s.active_responses.add(rid)
        elif etype == "response.done":
            resp = event.get("response") or {}
            rid = resp.get("id")
            s.active_responses.discard(rid)
            item = s.oob_responses.get(rid) or (resp.get("metadata") or {}).get("rtlab_item_id")
            if item:
                s.oob_pending.discard(item)

    async def _request_oob(self, run: Run, item_id: str) -> None:
        """The out-of-band pattern: ask the voice model for a text transcript of the turn, outside the conversation."""
        self.state.oob_pending.add(item_id)
        response: dict[str, Any] = {
            "conversation": "none",
            "instructions": OOB_INSTRUCTIONS,
            "metadata": {"rtlab_item_id": item_id},
            "input": [{"type": "item_reference", "id": item_id}],
        }
        if run.shape_of(self) == "beta":
            response["modalities"] = ["text"]
        else:
            response["output_modalities"] = ["text"]
        await self._send(run, {"type": "response.create", "response": response, "_oob": True})


def handshake_error_event(exc: BaseException) -> dict:
    """A handshake failure as an rtlab pseudo-event (status, code, message), with no secret in it."""
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
    from .secrets import redact

    return {
        "type": "rtlab.handshake_failed",
        "status": status,
        "code": code,
        "message": redact(str(message))[:500],
        "exception": type(exc).__name__,
    }


class Run:
    """One audio source fed to several legs on one clock, into one EventLog."""

    def __init__(self, audio: Any, legs: list[Leg], log: Any, options: RunOptions, *, fmt: str = "pcm16"):
        self.audio = audio
        self.legs = legs
        self.log = log
        self.options = options
        self.fmt = fmt
        from .audio import AudioClock

        self.clock = AudioClock()

    def clock_ms(self) -> float:
        return self.clock.audio_ms_at(time.monotonic())

    def shape_of(self, leg: Leg) -> str:
        from .protocol import DIALECTS

        target = getattr(leg, "target", None)
        return DIALECTS.get(getattr(target, "dialect", "openai-ga"), "ga")

    def decode(self, payload: bytes):
        from .audio import decode

        return decode(payload, self.fmt)[0]

    def new_turn_detector(self):
        from .engines.turns import TurnDetector
        from .protocol import AUDIO_FORMATS

        return TurnDetector(sample_rate=AUDIO_FORMATS[self.fmt].sample_rate)

    async def settle(self, leg: Leg) -> None:
        """Wait until the leg has every transcript and response it is owed, or the settle timeout passes."""
        deadline = time.monotonic() + self.options.settle_timeout_s
        while time.monotonic() < deadline:
            if leg.state.settled(wants_transcripts=leg.wants_transcripts()):
                return
            await asyncio.sleep(0.01)
        logger.warning("%s: gave up waiting after %.0f s", leg.source, self.options.settle_timeout_s)

    async def feed(self) -> None:
        from .audio import chunks, concat, pace, silence
        from .livesource import is_live_source

        if is_live_source(self.audio):
            return await self._feed_live()
        audio = self.audio
        if self.options.tail_ms:
            audio = concat(audio, silence(self.options.tail_ms, sample_rate=audio.sample_rate))
        # Wait for every remote leg to be configured, so they all hear the audio from its first sample.
        await asyncio.gather(*(leg.ready.wait() for leg in self.legs if isinstance(leg, RemoteLeg)))
        bar = _progress(audio.duration_ms / 1000, self.options.progress)
        async for chunk in pace(chunks(audio, chunk_ms=self.options.chunk_ms, fmt=self.fmt),
                                speed=self.options.speed, clock=self.clock):
            for leg in self.legs:
                leg.queue.put_nowait(chunk)
            if bar is not None:
                bar.update(round(chunk.duration_ms / 1000, 3))
            await asyncio.sleep(0)  # let the legs send as the audio flows
        for leg in self.legs:
            leg.queue.put_nowait(None)
        if bar is not None:
            bar.close()

    async def _feed_live(self) -> None:
        """Feed a live source (a microphone): chunks go to the legs as they are captured, stamped on arrival;
        then ``tail_ms`` of silence, paced, so server VAD can close the last turn."""
        from .audio import Chunk, chunks, pace, silence

        await asyncio.gather(*(leg.ready.wait() for leg in self.legs if isinstance(leg, RemoteLeg)))
        index = offset = 0
        try:
            async for chunk in self.audio:
                self.clock.stamp(chunk)
                for leg in self.legs:
                    leg.queue.put_nowait(chunk)
                index, offset = chunk.index + 1, chunk.offset_samples + chunk.n_samples
                await asyncio.sleep(0)
            tail = chunks(silence(self.options.tail_ms, sample_rate=self.audio.sample_rate),
                          chunk_ms=self.options.chunk_ms, fmt=self.fmt) if self.options.tail_ms else ()
            after = (Chunk(index + c.index, offset + c.offset_samples, c.n_samples, c.sample_rate, c.fmt, c.payload)
                     for c in tail)
            async for chunk in pace(after, speed=self.options.speed, clock=self.clock):
                for leg in self.legs:
                    leg.queue.put_nowait(chunk)
        finally:
            for leg in self.legs:
                leg.queue.put_nowait(None)

    async def run(self) -> None:
        tasks = [asyncio.create_task(leg.run(self), name=leg.source) for leg in self.legs]
        feeder = asyncio.create_task(self.feed(), name="feed")
        try:
            await asyncio.gather(feeder, *tasks)
        finally:
            for t in [feeder, *tasks]:
                t.cancel()


def _progress(total_s: float, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=round(total_s, 2), leave=False,
                bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s audio [{elapsed}<{remaining}]")


def open_log(out: str | Path | None, meta: dict) -> Any:
    from .events import EventLog

    if out is None:
        out = tempfile.mkdtemp(prefix="rtlab-run-")
    out = Path(out)
    path = out if out.suffix == ".jsonl" else out / "events.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return EventLog.create(path, meta=meta, overwrite=True)


def input_format_of(configs: list[Any]) -> str:
    formats = {getattr(c, "input_format", "pcm16") or "pcm16" for c in configs}
    if len(formats) > 1:
        from .errors import ConfigError

        raise ConfigError(
            f"sessions on one audio clock need one input format, got {sorted(formats)}",
            field="input_format", fix="give every session of the run the same input_format",
        )
    return formats.pop()


async def arun_legs(audio: Any, legs: list[Leg], *, out=None, log=None, options: RunOptions | None = None,
                    fmt: str = "pcm16", meta: dict | None = None):
    """Run prepared legs over ``audio``; returns the (closed) EventLog."""
    from .audio import load
    from .livesource import is_live_source

    options = options or RunOptions()
    if is_live_source(audio):
        if audio.fmt != fmt:
            from .errors import ConfigError

            raise ConfigError(f"the live source yields {audio.fmt!r} audio but the sessions take {fmt!r}",
                              field="input_format", fix=f"make the source with fmt={fmt!r}")
    elif not hasattr(audio, "samples"):
        audio = load(audio)
    meta = dict(meta or {})
    meta.setdefault("audio", str(getattr(audio, "path", "") or ""))
    meta.setdefault("sources", [leg.source for leg in legs])
    meta.setdefault("input_format", fmt)
    own_log = log is None
    if own_log:
        log = open_log(out, meta)
    if fmt != "pcm16" and hasattr(log, "set_input_format"):
        log.set_input_format(fmt)
    try:
        await Run(audio, legs, log, options, fmt=fmt).run()
    finally:
        if own_log:
            log.close()
    return log


async def arun_session(target: Any, config: Any, audio: Any, *, source: str = IN_SESSION, out=None, log=None,
                       options: RunOptions | None = None, **option_kw):
    """Run one session (voice or transcription) over ``audio``; returns its EventLog. Awaitable form."""
    options = options or RunOptions(**option_kw)
    leg = RemoteLeg(source, target, config)
    return await arun_legs(audio, [leg], out=out, log=log, options=options, fmt=input_format_of([config]),
                           meta={"target": repr(target), "config": _config_meta(config, target)})


def run_session(target: Any, config: Any, audio: Any, **kw):
    """Run one session over ``audio`` and return its :class:`rtlab.events.EventLog`.

    Parameters
    ----------
    target : rtlab.targets.Target
        Where to connect (``Target.local()`` starts the embedded emulator).
    config : rtlab.config.SessionConfig
        The session to request; rendered in the target's dialect.
    audio : path or rtlab.audio.Audio
        Audio to stream, paced at ``speed`` × real time.

    In a notebook with a running event loop, prefer ``await arun_session(...)`` so live views update.
    """
    return run_sync(arun_session(target, config, audio, **kw))


def _config_meta(config: Any, target: Any) -> dict:
    from .config import render

    try:
        return render(config, target.dialect)
    except RtlabError as exc:
        return {"error": str(exc)}


def run_sync(coro: Awaitable):
    """Run a coroutine to completion from sync code, also inside Jupyter (where a loop is already running)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
