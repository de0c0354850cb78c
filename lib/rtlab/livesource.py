"""Live audio sources: audio that arrives while a run is going (a browser microphone, a sound card, a test).

Layer: audio. A *live source* is the live counterpart of an audio file for :mod:`rtlab.runs`: instead of
being cut into chunks and paced by the run, it yields :class:`rtlab.audio.Chunk` objects as they are captured.
Its protocol is small (:class:`LiveSource`)::

    async for chunk in source: ...     # Chunk objects, in audio order, until the capture ends
    source.sample_rate, source.fmt     # the rate and wire format of the chunks ("pcm16": 24 kHz)
    source.stop()                      # end the capture (what was captured so far is still yielded)
    source.audio()                     # rtlab.audio.Audio of everything captured

:class:`PushSource` implements it for producers that *push* PCM16 in pieces of any size, from any thread:
it cuts them into chunks of exactly ``chunk_ms`` on one sample clock (the same offsets as
:func:`rtlab.audio.chunks` gives for the same samples: ``offset_samples`` of chunk k+1 is the end of chunk k;
only the last chunk may be shorter), keeps everything it received for :meth:`PushSource.audio`, and resamples
with soxr when the wire format's rate differs from the capture rate (G.711 at 8 kHz).

Examples
--------
>>> import numpy as np
>>> src = PushSource(chunk_ms=40)
>>> src.push(np.zeros(1500, dtype="<i2").tobytes()); src.end()
>>> [c.n_samples for c in src.drain()]
[960, 540]
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import AsyncIterator, Callable
from typing import Protocol, runtime_checkable

import numpy as np

from .audio import Audio, Chunk, encode
from .errors import AudioError, RtlabError
from .protocol import AUDIO_FORMATS

__all__ = ["LiveSource", "PushSource", "is_live_source"]


@runtime_checkable
class LiveSource(Protocol):
    """Audio that is captured while the run goes on; see the module docstring."""

    sample_rate: int
    fmt: str

    def __aiter__(self) -> AsyncIterator[Chunk]: ...

    def stop(self) -> None: ...

    def audio(self) -> Audio: ...


def is_live_source(obj: object) -> bool:
    """Whether ``obj`` yields chunks live (an async iterator of chunks) rather than being a file or an Audio."""
    return hasattr(obj, "__aiter__") and not hasattr(obj, "samples")


class PushSource:
    """PCM16 pushed in pieces of any size, read back as chunks of ``chunk_ms`` (a :class:`LiveSource`).

    Parameters
    ----------
    input_rate : int
        Sample rate of the PCM16 mono bytes given to :meth:`push` (24000 for the browser microphone).
    fmt : str
        Wire format of the chunks: ``"pcm16"`` (24 kHz), ``"g711_ulaw"`` or ``"g711_alaw"`` (8 kHz); see
        :data:`rtlab.protocol.AUDIO_FORMATS`.
    chunk_ms : float
        Length of every chunk but the last (the run's ``RunOptions.chunk_ms``; 40 ms by default).
    on_stop : callable, optional
        Called once by :meth:`stop` (the microphone widget uses it to stop capturing in the browser).

    Notes
    -----
    :meth:`push`, :meth:`end` and :meth:`fail` may be called from any thread; the chunks are read by one
    consumer (``async for``) on one event loop. Audio pushed after :meth:`end` or :meth:`stop` is dropped and
    counted in ``dropped_samples``.
    """

    def __init__(self, *, input_rate: int = 24000, fmt: str = "pcm16", chunk_ms: float = 40.0,
                 on_stop: Callable[[], None] | None = None) -> None:
        if fmt not in AUDIO_FORMATS:
            raise AudioError("<live source>", f"unknown wire format {fmt!r}; use one of {', '.join(AUDIO_FORMATS)}")
        if isinstance(input_rate, bool) or not isinstance(input_rate, int) or input_rate <= 0:
            raise AudioError("<live source>", f"input_rate must be a positive int (Hz), got {input_rate!r}")
        self.fmt = fmt
        self.sample_rate = int(AUDIO_FORMATS[fmt].sample_rate)
        self.input_rate = int(input_rate)
        self.chunk_ms = float(chunk_ms)
        self._per = int(round(self.chunk_ms * self.sample_rate / 1000.0))
        if not np.isfinite(self.chunk_ms) or self._per <= 0:
            raise AudioError("<live source>", f"chunk_ms must give at least one sample at {self.sample_rate} Hz; "
                                              f"got {chunk_ms!r}")
        self._resampler = None
        if self.input_rate != self.sample_rate:
            from rtlab.audio import Resampler

            self._resampler = Resampler(self.input_rate, self.sample_rate)
        self._on_stop = on_stop
        self._lock = threading.Lock()
        self._captured: list[np.ndarray] = []  # at input_rate, as pushed
        self._pending = np.zeros(0, dtype=np.int16)  # at the wire rate, not yet a full chunk
        self._ready: collections.deque[Chunk] = collections.deque()
        self._next_index = 0
        self._next_offset = 0
        self._ended = False
        self._stopped = False
        self._error: BaseException | None = None
        self._wake: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self._iterating = False
        self.dropped_samples = 0

    # -- producer side (any thread) ----------------------------------------------------------------
    def push(self, data: bytes | bytearray | memoryview | np.ndarray) -> None:
        """Add captured PCM16 (little-endian bytes, or an int16 array) at ``input_rate``."""
        if isinstance(data, np.ndarray):
            if data.dtype != np.int16 or data.ndim != 1:
                raise AudioError("<live source>", f"push() takes mono int16 samples, got {data.dtype} {data.shape}")
            samples = data.copy()
        else:
            raw = bytes(data)
            if len(raw) % 2:
                raise AudioError("<live source>", f"odd number of bytes ({len(raw)}): PCM16 needs 2 bytes per sample")
            samples = np.frombuffer(raw, dtype="<i2").astype(np.int16)
        with self._lock:
            if self._ended:
                self.dropped_samples += int(samples.size)
                return
            self._captured.append(samples)
            self._cut(self._to_wire(samples, last=False))
        self._notify()

    def end(self) -> None:
        """No more audio: the rest becomes a last (shorter) chunk and the iteration finishes after it."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
            if self._resampler is not None:
                self._cut(self._to_wire(np.zeros(0, dtype=np.int16), last=True))
            if self._pending.size:
                self._emit(self._pending)
                self._pending = np.zeros(0, dtype=np.int16)
        self._notify()

    def fail(self, exc: BaseException) -> None:
        """End the capture with an error: the consumer gets the chunks so far, then ``exc`` is raised."""
        with self._lock:
            if self._error is None and not self._ended:
                self._error = exc
        self.end()

    def stop(self) -> None:
        """Stop capturing (the consumer side's request): ends the source and tells the producer once."""
        first = not self._stopped
        self._stopped = True
        self.end()
        if first and self._on_stop is not None:
            self._on_stop()

    # -- state ----------------------------------------------------------------------------------------
    @property
    def ended(self) -> bool:
        """True once :meth:`end`, :meth:`stop` or :meth:`fail` was called."""
        return self._ended

    @property
    def in_use(self) -> bool:
        """True once a consumer started reading the chunks (a source feeds one run)."""
        return self._iterating

    @property
    def error(self) -> BaseException | None:
        """The error the capture ended with (see :meth:`fail`), or ``None``."""
        return self._error

    @property
    def captured_ms(self) -> float:
        """Milliseconds of audio received so far."""
        with self._lock:
            return sum(a.size for a in self._captured) * 1000.0 / self.input_rate

    def audio(self) -> Audio:
        """Everything captured so far, at ``input_rate`` (PCM16 mono)."""
        with self._lock:
            parts = list(self._captured)
        samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
        return Audio(samples, self.input_rate)

    def __repr__(self) -> str:
        state = "failed" if self._error else "ended" if self._ended else "open"
        return (f"<{type(self).__name__} {state}, {self.captured_ms / 1000:.1f} s captured, {self.fmt} "
                f"{self.sample_rate} Hz, {self.chunk_ms:g} ms chunks>")

    # -- consumer side (one event loop) -------------------------------------------------------------
    def drain(self) -> list[Chunk]:
        """The chunks ready now, removed from the source (for synchronous consumers and tests)."""
        with self._lock:
            out = list(self._ready)
            self._ready.clear()
        return out

    async def __aiter__(self) -> AsyncIterator[Chunk]:
        if self._iterating:
            raise RtlabError(f"{self!r} is already being read: a live source feeds one run; make a new one "
                             "for the next run")
        self._iterating = True
        event = asyncio.Event()
        with self._lock:
            self._wake = (asyncio.get_running_loop(), event)
        while True:
            with self._lock:
                batch = list(self._ready)
                self._ready.clear()
                done = self._ended and not batch
                event.clear()
            for chunk in batch:
                yield chunk
            if done:
                if self._error is not None:
                    raise self._error
                return
            if not batch:
                await event.wait()

    # -- internals (hold the lock) -------------------------------------------------------------------
    def _to_wire(self, samples: np.ndarray, *, last: bool) -> np.ndarray:
        if self._resampler is None:
            return samples
        return self._resampler.process(np.asarray(samples, dtype=np.int16).reshape(-1), last=last)

    def _cut(self, samples: np.ndarray) -> None:
        buf = np.concatenate([self._pending, samples]) if self._pending.size else samples
        n_full = buf.size // self._per
        for k in range(n_full):
            self._emit(buf[k * self._per:(k + 1) * self._per])
        self._pending = buf[n_full * self._per:].copy()

    def _emit(self, part: np.ndarray) -> None:
        payload = encode(Audio(part, self.sample_rate), self.fmt)  # at the format's rate already: no resampling
        self._ready.append(Chunk(self._next_index, self._next_offset, int(part.size), self.sample_rate, self.fmt,
                                 payload))
        self._next_index += 1
        self._next_offset += int(part.size)

    def _notify(self) -> None:
        wake = self._wake
        if wake is None:
            return
        loop, event = wake
        if loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)
