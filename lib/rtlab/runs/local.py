"""The local-engine sidecar: the one local pipeline in-process, with no server and no socket (layer: runs).

:class:`LocalLeg` feeds the run's chunks to a :class:`rtlab.engines.pipeline.LocalPipeline` (server-VAD turns and
the streaming recognizer) and records the pipeline's own events (``local.speech_started``, ``local.partial``,
``local.speech_stopped``, ``local.final``; names in :mod:`rtlab.protocol.events`) — not Realtime events: no service
is involved, and the analysis reads them as the ``local`` family. The audio it consumed is recorded too
(``local.audio``), so the run's input track exists even when the local engine is the only leg. Decoding runs in a
worker thread so the audio clock and the other legs keep flowing.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from rtlab.audio import Chunk
from rtlab.engines.base import EngineSet, Stability
from rtlab.engines.pipeline import (
    DEFAULT_VAD,
    LocalPipeline,
    Partial,
    PipelineEvent,
    SpeechStarted,
    SpeechStopped,
    VadParams,
)
from rtlab.protocol import events as E

from .core import SIDECAR_LOCAL, Leg, Run

__all__ = ["LocalLeg", "pipeline_event"]



#: The client event that records the audio the local engine consumed (stored in the run's input track).
LOCAL_AUDIO = "local.audio"


def pipeline_event(event: PipelineEvent) -> dict[str, Any]:
    """A pipeline event as the ``local.*`` record the local sidecar logs (item id = ``seg_<n>``)."""
    item = f"seg_{event.segment}"
    if isinstance(event, SpeechStarted):
        return {"type": E.LOCAL_SPEECH_STARTED, "item_id": item, "audio_start_ms": round(event.audio_start_ms, 1),
                "detected_ms": round(event.detected_ms, 1)}
    if isinstance(event, Partial):
        return {"type": E.LOCAL_PARTIAL, "item_id": item, "delta": event.delta, "text": event.text}
    if isinstance(event, SpeechStopped):
        return {"type": E.LOCAL_SPEECH_STOPPED, "item_id": item, "speech_end_ms": round(event.speech_end_ms, 1),
                "detected_ms": round(event.detected_ms, 1)}
    words = [{"word": w.text, "start_ms": round(w.start_ms), "end_ms": round(w.end_ms),
              "logprob": round(w.logprob, 4)} for w in event.transcript.words]
    return {"type": E.LOCAL_FINAL, "item_id": item, "start_ms": round(event.start_ms, 1),
            "end_ms": round(event.end_ms, 1), "transcript": event.transcript.text, "cause": event.cause,
            "words": words}


class LocalLeg(Leg):
    """The local engine on the run's audio, in-process.

    Parameters
    ----------
    source : str
        Label of its events (default ``sidecar:local``).
    engines : EngineSet, optional
        Default: :func:`rtlab.engines.default_engines`.
    vad : VadParams
        Server-VAD turn parameters of the pipeline.
    stability : Stability, optional
        How eagerly the recognizer calls words stable (earlier partials, lower accuracy).
    """

    family = "local"

    def __init__(self, source: str = SIDECAR_LOCAL, *, engines: EngineSet | None = None,
                 vad: VadParams = DEFAULT_VAD, stability: Stability | None = None, language: str | None = None):
        super().__init__(source)
        self.engines = engines
        self.vad = vad
        self.stability = stability
        self.language = language

    def describe(self) -> dict[str, Any]:
        return {"family": self.family, "model": "local", "engine": "pocketsphinx + webrtcvad (rtlab LocalPipeline)",
                "target": "local", "emulated": False}

    def _record(self, run: Run, events: list[PipelineEvent]) -> None:
        for event in events:
            run.log.record("server", self.source, pipeline_event(event), audio_ms=run.clock_ms())

    async def run(self, run: Run) -> None:
        from rtlab.engines import default_engines

        try:
            engines = self.engines or await asyncio.to_thread(default_engines)
            pipe = LocalPipeline(engines, vad=self.vad, stability=self.stability, language=self.language,
                                 sample_rate=run.sample_rate)
        finally:
            self.ready.set()
        try:
            while (chunk := await self.queue.get()) is not None:
                # Batch whatever has queued up meanwhile, so a slow decode does not fall further behind.
                batch = [chunk]
                while not self.queue.empty():
                    nxt = self.queue.get_nowait()
                    if nxt is None:
                        self.queue.put_nowait(None)
                        break
                    batch.append(nxt)
                for c in batch:
                    # The chunk reached the local engine when the run released it (stamped on the audio clock),
                    # not when this leg got round to it: the audio clock must not run late under load.
                    released = run.clock.wall_at(c.offset_ms + c.duration_ms)
                    run.log.record("client", self.source,
                                   {"type": LOCAL_AUDIO, "audio": base64.b64encode(c.payload).decode()},
                                   audio_ms=c.offset_ms + c.duration_ms, audio_offset=c.offset_samples,
                                   t=None if released is None else run.log.time_at(released))
                self._record(run, await asyncio.to_thread(_feed_all, pipe, run, batch))
            self._record(run, await asyncio.to_thread(pipe.flush))
        finally:
            pipe.close()
            self.state.finished = True
            self.notify()


def _feed_all(pipe: LocalPipeline, run: Run, chunks: list[Chunk]) -> list[PipelineEvent]:
    out: list[PipelineEvent] = []
    for c in chunks:
        out.extend(pipe.feed(run.decode(c.payload)))
    return out
