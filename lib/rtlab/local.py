"""The local-engine sidecar: VAD + streaming ASR in-process, with no server and no socket.

It drives the emulator's sans-I/O protocol core (:class:`rtlab.emulator.core.Session`) directly, so the local
engine's turns come out as the same protocol events (speech_started/stopped, committed, transcription
delta/completed) that every other source produces, and ``EventLog.turns()`` treats all sources alike. Decoding runs
in a worker thread so the audio clock and the other legs keep flowing.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from .session import Leg, Run


class LocalLeg(Leg):
    """A transcription session of the local engine, fed the run's chunks in-process."""

    def __init__(self, source: str, *, model: str = "gpt-realtime-whisper", engines: Any = None, seed: int = 0,
                 turn_detection: dict | None = None):
        super().__init__(source)
        self.model = model
        self.engines = engines
        self.seed = seed
        self.turn_detection = turn_detection or {"type": "server_vad", "create_response": False}

    def session_update(self, fmt: str) -> dict:
        from .protocol import audio_format_to_ga

        return {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {
                    "input": {
                        "format": audio_format_to_ga(fmt),
                        "transcription": {"model": self.model},
                        "turn_detection": self.turn_detection,
                    }
                },
            },
        }

    def _record(self, run: Run, events: list[dict]) -> None:
        for event in events:
            run.log.record("server", self.source, event, audio_ms=run.clock_ms())
            self._track(event)

    def _track(self, event: dict) -> None:
        s = self.state
        etype = event.get("type", "")
        if etype == "input_audio_buffer.committed":
            s.committed.append(event.get("item_id"))
        elif etype in ("conversation.item.input_audio_transcription.completed",
                       "conversation.item.input_audio_transcription.failed"):
            s.transcribed.add(event.get("item_id"))
        elif etype == "error":
            s.errors.append(event.get("error") or {})

    async def run(self, run: Run) -> None:
        from .emulator.core import Session
        from .engines import default_engines

        engines = self.engines or await asyncio.to_thread(default_engines)
        # A realtime-kind core without responses: server VAD turns with a streaming transcription model.
        core = Session(engines=engines, kind="realtime", shape="ga", seed=f"{self.seed}:{self.source}")
        self._record(run, core.start())
        update = self.session_update(run.fmt)
        run.log.record("client", self.source, update, audio_ms=run.clock_ms())
        self._record(run, core.receive(update))
        while True:
            chunk = await self.queue.get()
            if chunk is None:
                break
            # Batch whatever has queued up meanwhile, so a slow decode does not fall further behind.
            batch = [chunk]
            while not self.queue.empty():
                nxt = self.queue.get_nowait()
                if nxt is None:
                    self.queue.put_nowait(None)
                    break
                batch.append(nxt)
            for c in batch:
                event = {"type": "input_audio_buffer.append", "audio": base64.b64encode(c.payload).decode()}
                run.log.record("client", self.source, event, audio_ms=c.offset_ms + c.duration_ms,
                               audio_offset=c.offset_samples)
            events = await asyncio.to_thread(_receive_all, core, batch)
            self._record(run, events)
        await run.settle(self)


def _receive_all(core: Any, chunks: list[Any]) -> list[dict]:
    out: list[dict] = []
    for c in chunks:
        out.extend(core.receive({"type": "input_audio_buffer.append",
                                 "audio": base64.b64encode(c.payload).decode()}))
    return out
