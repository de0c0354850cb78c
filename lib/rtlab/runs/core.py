"""One audio source fed to several legs on one audio clock, recorded into one event log (layer: runs).

A *run* paces an audio file (or a live source such as the browser microphone) into *legs*, each tagged with a
source label. Every leg gets the same chunks at the same moments, so every event of every leg can be placed on the
one audio clock (``audio_ms``: input audio sent so far when the event was sent or received). Legs are:

- :class:`rtlab.runs.realtime.RemoteLeg` — a Realtime WebSocket session through the official SDK (voice or
  transcription; it also drives the out-of-band transcription pattern);
- :class:`rtlab.runs.local.LocalLeg` — the local engine in-process (no server);
- the legs of other protocol families (GPT-Live, translation, Azure Speech) in their own modules.

A leg's waiting (for the session to be configured, for the server to catch up, for what it is owed at the end)
is event-driven: :meth:`Leg.notify` wakes :meth:`Leg.wait_until`; nothing polls.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from rtlab.audio import Audio, AudioClock, Chunk
from rtlab.errors import ConfigError
from rtlab.livesource import LiveSource, is_live_source
from rtlab.log import EventLog

__all__ = [
    "IN_SESSION", "SIDECAR_AZURE_SPEECH", "SIDECAR_LOCAL", "SIDECAR_OOB", "SIDECAR_TRANSCRIPTION", "Leg",
    "LegState", "Run", "RunOptions", "arun_legs", "open_log", "run_sync",
]

logger = logging.getLogger("rtlab.runs")

#: Source labels used across rtlab (tables, widgets, reports).
IN_SESSION = "in-session"
SIDECAR_TRANSCRIPTION = "sidecar:transcription"
SIDECAR_LOCAL = "sidecar:local"
SIDECAR_OOB = "sidecar:oob"
SIDECAR_AZURE_SPEECH = "sidecar:azure-speech"

T = TypeVar("T")


@dataclass
class RunOptions:
    """How audio is fed. ``speed`` > 1 feeds faster than real time (``float('inf')``: as fast as possible)."""

    chunk_ms: int = 40
    speed: float = 1.0
    tail_ms: int = 1500  # silence appended after the audio so server VAD can close the last turn
    settle_timeout_s: float = 20.0  # after the audio, give up on pending transcripts/responses after this long silent
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
    finished: bool = False  # the leg has nothing more to wait for (e.g. a closed GPT-Live/translation session)

    def settled(self, *, wants_transcripts: bool) -> bool:
        if self.closed or self.finished:
            return True
        waiting_items = wants_transcripts and any(i not in self.transcribed for i in self.committed)
        return not (waiting_items or self.active_responses or self.oob_pending)


class Leg:
    """One participant of a run. Subclasses implement :meth:`run` and set :attr:`family`."""

    source: str
    family: str = "realtime"

    def __init__(self, source: str):
        self.source = source
        self.state = LegState()
        self.queue: asyncio.Queue[Chunk | None] = asyncio.Queue()
        self.ready = asyncio.Event()  # set once the leg may receive audio (configured, or given up)
        self._changed = asyncio.Event()

    async def run(self, run: Run) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def wants_transcripts(self) -> bool:
        return True

    def describe(self) -> dict[str, Any]:
        """What the log's ``meta["sources"][label]`` records about this leg (family, model, target, timing)."""
        return {"family": self.family}

    def notify(self) -> None:
        """The leg's state changed: wake whoever waits in :meth:`wait_until`."""
        self._changed.set()

    async def wait_until(self, cond: Callable[[], bool], timeout_s: float, *, idle: bool = False,
                         cap_s: float | None = None) -> bool:
        """Wait until ``cond()`` holds, re-checked on every :meth:`notify`; False when ``timeout_s`` passes.

        With ``idle=True`` the timeout counts from the last :meth:`notify` (a server still sending is still working:
        a busy machine or endpoint falls behind, it has not failed), up to ``cap_s`` in all (default ten times
        ``timeout_s``).
        """
        now = time.monotonic()
        deadline = now + timeout_s
        cap = now + (cap_s if cap_s is not None else 10 * timeout_s) if idle else deadline
        while not cond():
            left = min(deadline, cap) - time.monotonic()
            if left <= 0:
                return False
            self._changed.clear()
            if cond():
                return True
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return cond()
            if idle:
                deadline = time.monotonic() + timeout_s
        return True

    async def drain_queue(self) -> None:
        """Take the run's chunks without using them (a leg that could not start still lets the run finish)."""
        while await self.queue.get() is not None:
            pass


class Run:
    """One audio source fed to several legs on one clock, into one :class:`~rtlab.log.EventLog`."""

    def __init__(self, audio: Audio | LiveSource, legs: list[Leg], log: EventLog, options: RunOptions, *,
                 fmt: str = "pcm16"):
        self.audio = audio
        self.legs = legs
        self.log = log
        self.options = options
        self.fmt = fmt
        self.clock = AudioClock()

    def clock_ms(self) -> float:
        """The audio clock now: ms of input audio sent so far."""
        return float(self.clock.audio_ms_at(time.monotonic()))

    def decode(self, payload: bytes) -> np.ndarray:
        """A chunk's payload as int16 samples at the run's format rate."""
        from rtlab.audio import decode

        return decode(payload, self.fmt)[0]

    @property
    def sample_rate(self) -> int:
        from rtlab.protocol.shapes import AUDIO_FORMATS

        return AUDIO_FORMATS[self.fmt].sample_rate

    async def settle(self, leg: Leg) -> None:
        """Wait until the leg has every transcript and response it is owed, or nothing has come for the settle
        timeout (a server still sending is still working)."""
        if not await leg.wait_until(lambda: leg.state.settled(wants_transcripts=leg.wants_transcripts()),
                                    self.options.settle_timeout_s, idle=True):
            logger.warning("%s: gave up waiting: nothing came for %.0f s", leg.source, self.options.settle_timeout_s)

    async def _chunks(self) -> AsyncIterator[Chunk]:
        from rtlab.audio import chunks, concat, pace, silence

        if is_live_source(self.audio):
            # Chunks flow as they are captured, stamped on the clock as they arrive (no pacing); then tail_ms of
            # silence, paced, so server VAD can close the last turn.
            index = offset = 0
            async for chunk in self.audio:
                self.clock.stamp(chunk)
                index, offset = chunk.index + 1, chunk.offset_samples + chunk.n_samples
                yield chunk
            if self.options.tail_ms:
                tail = chunks(silence(self.options.tail_ms, sample_rate=self.audio.sample_rate),
                              chunk_ms=self.options.chunk_ms, fmt=self.fmt)
                after = (Chunk(index + c.index, offset + c.offset_samples, c.n_samples, c.sample_rate, c.fmt,
                               c.payload) for c in tail)
                async for chunk in pace(after, speed=self.options.speed, clock=self.clock):
                    yield chunk
            return
        audio = self.audio
        if self.options.tail_ms:
            audio = concat(audio, silence(self.options.tail_ms, sample_rate=audio.sample_rate))
        async for chunk in pace(chunks(audio, chunk_ms=self.options.chunk_ms, fmt=self.fmt),
                                speed=self.options.speed, clock=self.clock):
            yield chunk

    async def feed(self) -> None:
        # Every leg is configured before the first sample, so they all hear the audio from its start.
        await asyncio.gather(*(leg.ready.wait() for leg in self.legs))
        total = self.audio.duration_ms / 1000 if isinstance(self.audio, Audio) else None
        bar = _progress(total, self.options.progress)
        try:
            async for chunk in self._chunks():
                for leg in self.legs:
                    leg.queue.put_nowait(chunk)
                if bar is not None:
                    bar.update(round(chunk.duration_ms / 1000, 3))
                await asyncio.sleep(0)  # let the legs send as the audio flows
        finally:
            for leg in self.legs:
                leg.queue.put_nowait(None)
            if bar is not None:
                bar.close()

    async def run(self) -> None:
        tasks = [asyncio.create_task(leg.run(self), name=leg.source) for leg in self.legs]
        feeder = asyncio.create_task(self.feed(), name="feed")
        try:
            await asyncio.gather(feeder, *tasks)
        finally:
            for t in [feeder, *tasks]:
                t.cancel()


def _progress(total_s: float | None, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=None if total_s is None else round(total_s, 2), leave=False,
                bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s audio [{elapsed}<{remaining}]" if total_s
                else "{n:.1f} s audio [{elapsed}]")


def open_log(out: str | Path | None, meta: dict[str, Any]) -> EventLog:
    """A new event log at ``out`` (a folder, or a ``.jsonl`` path; a temporary folder when None)."""
    if out is None:
        out = tempfile.mkdtemp(prefix="rtlab-run-")
    out = Path(out)
    path = out if out.suffix == ".jsonl" else out / "events.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return EventLog.create(path, meta=meta, overwrite=True)


async def arun_legs(audio: Audio | LiveSource | str | Path, legs: list[Leg], *, out: str | Path | None = None,
                    log: EventLog | None = None, options: RunOptions | None = None, fmt: str = "pcm16",
                    meta: dict[str, Any] | None = None,
                    on_log: Callable[[EventLog], Any] | None = None) -> EventLog:
    """Run prepared legs over ``audio``; returns the event log (closed when this function opened it).

    ``on_log(log)`` is called once the log is open, before any audio flows (e.g. to show a live view of it); a
    ``log=`` of your own gets the run's meta (sources, engines, timing) in memory only, since its file header was
    written when you created it.
    """
    from rtlab.audio import load

    options = options or RunOptions()
    if is_live_source(audio):
        if audio.fmt != fmt:
            raise ConfigError(f"the live source yields {audio.fmt!r} audio but the sessions take {fmt!r}",
                              field="input_format", fix=f"make the source with fmt={fmt!r}")
    elif isinstance(audio, (str, Path)):
        audio = load(audio)
    meta = dict(meta or {})
    meta.setdefault("audio", str(getattr(audio, "path", "") or ""))
    meta.setdefault("sources", {leg.source: leg.describe() for leg in legs})
    meta.setdefault("input_format", fmt)
    own_log = log is None
    if own_log:
        log = open_log(out, meta)
    else:
        for key, value in meta.items():
            log.meta.setdefault(key, value)
    assert log is not None
    if on_log is not None:
        on_log(log)
    if fmt != "pcm16":
        log.set_input_format(fmt)
    try:
        await Run(audio, legs, log, options, fmt=fmt).run()
    finally:
        if own_log:
            log.close()
    return log


def input_format_of(configs: list[Any]) -> str:
    """The one input format of several session configs (a run has one audio clock and one format)."""
    formats = {getattr(c, "input_format", "pcm16") or "pcm16" for c in configs}
    if len(formats) > 1:
        from rtlab.errors import ConfigError

        raise ConfigError(
            f"sessions on one audio clock need one input format, got {sorted(formats)}",
            field="input_format", fix="give every session of the run the same input_format",
        )
    return formats.pop() if formats else "pcm16"


def run_sync(coro: Awaitable[T]) -> T:
    """Run a coroutine to completion from sync code, also inside Jupyter (where a loop is already running)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()  # type: ignore[arg-type]

