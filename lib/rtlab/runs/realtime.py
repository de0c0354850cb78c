"""A Realtime WebSocket session as a leg of a run: voice or transcription, through the official SDK (layer: runs).

:class:`RemoteLeg` connects through :mod:`rtlab.targets`, sends the rendered :class:`~rtlab.config.SessionConfig`,
streams the run's chunks, and records every client and server event. Without server VAD it commits each turn
itself, cut by the local pipeline's VAD. With ``oob=True`` it also asks the voice model for an out-of-band text
transcript of every committed turn (``response.create`` with ``conversation: "none"`` and
``metadata.rtlab_item_id``), recorded under the ``sidecar:oob`` source.
"""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING, Any

from rtlab.errors import RtlabError
from rtlab.protocol import events as E
from rtlab.protocol.shapes import DIALECTS

from .core import SIDECAR_OOB, Run
from .wire import SocketLeg, handshake_error_event

if TYPE_CHECKING:  # pragma: no cover
    from rtlab.config import SessionConfig
    from rtlab.targets import Target

__all__ = ["OOB_INSTRUCTIONS", "RemoteLeg", "handshake_error_event"]  # handshake_error_event: from .wire

logger = logging.getLogger("rtlab.runs")

OOB_INSTRUCTIONS = (
    "Transcribe the user's last audio turn verbatim. Output only the words that were spoken, nothing else."
)


class RemoteLeg(SocketLeg):
    """A Realtime session through the official SDK: a voice session or a transcription session.

    Parameters
    ----------
    source : str
        Label of the leg's events.
    target : Target
        Where to connect.
    config : SessionConfig
        The session to request, rendered in the target's dialect (model names mapped to Azure deployments).
    oob : bool
        Also request out-of-band transcripts of each committed turn (voice sessions).
    validate : bool
        Check the shared rules before sending (the probe turns it off to see what an endpoint answers).
    connect_model : str, optional
        The model (or Azure deployment) in the connect URL, when it differs from ``config.model``.
    """

    family = "realtime"

    def __init__(self, source: str, target: Target, config: SessionConfig, *, oob: bool = False,
                 validate: bool = True, connect_model: str | None = None):
        super().__init__(source)
        self.target = target
        self.config = config
        self.oob = oob
        self.validate = validate
        self.connect_model = connect_model
        self._configured = False

    def wants_transcripts(self) -> bool:
        """Transcripts are owed when the config asks for them, unless the server's session says transcription is
        off (a refused ``session.update`` leaves the session as it was: then no transcript will come)."""
        if getattr(self.config, "transcription", None) is None:
            return False
        return not _transcription_off(self.state.session)

    @property
    def client_commits(self) -> bool:
        return getattr(self.config, "turn_detection", None) is None

    @property
    def shape(self) -> str:
        return DIALECTS.get(self.target.dialect, "ga")

    def describe(self) -> dict[str, Any]:
        tx = getattr(self.config, "transcription", None)
        model = getattr(tx, "model", None) if self.config.kind == "transcription" else self.config.model
        return {"family": self.family, "kind": self.config.kind, "session_model": model, "transcription_model": getattr(tx, "model", None),
                "target": self.target.provider, "dialect": self.target.dialect, "emulated": self.target.is_local,
                "timing": self.target.emulator_timing}

    def source_of(self, event: dict) -> str:
        rid = event.get("response_id") or (event.get("response") or {}).get("id")
        if rid and rid in self.state.oob_responses:
            return SIDECAR_OOB
        return self.source

    def connect(self) -> Any:
        model = self.connect_model or getattr(self.config, "model", None)
        return self.target.connect(kind=self.config.kind, model=model)

    async def converse(self, run: Run) -> None:
        if not await self.wait_until(lambda: self.state.session is not None or self.state.closed,
                                     run.options.ready_timeout_s):
            raise RtlabError(f"{self.source}: no session.created within {run.options.ready_timeout_s} s")
        await self.send(run, self.target.render(self.config, validate=self.validate))
        if not await self.wait_until(self._updated, run.options.ready_timeout_s):
            raise RtlabError(f"{self.source}: no session.updated within {run.options.ready_timeout_s} s")
        self.ready.set()
        await self._stream(run)
        await self._barrier(run)
        await run.settle(self)

    async def _stream(self, run: Run) -> None:
        """Send the run's chunks; without server VAD, commit at the end of each turn the local VAD hears."""
        from rtlab.engines import default_engines
        from rtlab.engines.pipeline import LocalPipeline, SpeechStopped

        commits = None
        if self.client_commits:
            commits = LocalPipeline(default_engines(), recognize=False, sample_rate=run.sample_rate)
        while (chunk := await self.queue.get()) is not None:
            if self.state.closed:
                continue
            await self.send(run, {"type": E.APPEND, "audio": base64.b64encode(chunk.payload).decode()},
                             audio_ms=chunk.offset_ms + chunk.duration_ms, audio_offset=chunk.offset_samples)
            if commits is not None and any(isinstance(e, SpeechStopped) for e in commits.feed(run.decode(chunk.payload))):
                await self.send(run, {"type": E.COMMIT})
        if commits is not None and any(isinstance(e, SpeechStopped) for e in commits.flush()):
            await self.send(run, {"type": E.COMMIT})

    async def _barrier(self, run: Run) -> None:
        """Wait until the server has processed everything sent so far.

        The server handles client events in order, so the answer to an empty session update arrives after every
        event caused by the audio before it (VAD turns, commits). Without it a fast feed would end the run before
        the server has even heard the audio.
        """
        if self.state.closed:
            return
        if self.shape == "ga":
            event = {"type": E.SESSION_UPDATE, "session": {"type": self.config.kind}}
        elif self.config.kind == "transcription":
            event = {"type": E.TRANSCRIPTION_SESSION_EVENTS["beta"]["update"], "session": {}}
        else:
            event = {"type": E.SESSION_UPDATE, "session": {}}
        expected, n_errors = self.state.n_updated + 1, len(self.state.errors)
        await self.send(run, event)
        if not await self.wait_until(lambda: self.state.closed or self.state.n_updated >= expected
                                     or len(self.state.errors) > n_errors, run.options.settle_timeout_s,
                                     idle=True):
            logger.warning("%s: the server did not answer the end-of-audio barrier", self.source)

    def _updated(self) -> bool:
        s = self.state
        return s.closed or bool(s.errors) or (s.session is not None and s.session.get("_updated", False))

    def before_record(self, event: dict) -> None:
        """Tag an out-of-band response by its metadata before its first event is recorded."""
        if event.get("type") == E.RESPONSE_CREATED:
            resp = event.get("response") or {}
            item = (resp.get("metadata") or {}).get("rtlab_item_id")
            if item and resp.get("id"):
                self.state.oob_responses[resp["id"]] = item

    async def on_event(self, run: Run, event: dict) -> None:
        s = self.state
        etype = E.canonical_event_name(event.get("type", ""))
        if etype == E.SESSION_CREATED:
            s.session = dict(event.get("session") or {})
        elif etype == E.SESSION_UPDATED:
            s.session = dict(event.get("session") or {}, _updated=True)
            s.n_updated += 1
        elif etype == E.ERROR:
            s.errors.append(event.get("error") or {})
        elif etype == E.COMMITTED:
            item = event.get("item_id")
            if item:
                s.committed.append(item)
                if self.oob:
                    await self._request_oob(run, item)
        elif etype in (E.TR_COMPLETED, E.TR_FAILED):
            s.transcribed.add(event.get("item_id"))
        elif etype == E.RESPONSE_CREATED:
            rid = (event.get("response") or {}).get("id")  # oob responses were tagged by before_record
            if rid:
                s.active_responses.add(rid)
        elif etype == E.RESPONSE_DONE:
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
        if self.shape == "beta":
            response["modalities"] = ["text"]
        else:
            response["output_modalities"] = ["text"]
        await self.send(run, {"type": E.RESPONSE_CREATE, "response": response}, source=SIDECAR_OOB)


def _transcription_off(session: dict | None) -> bool:
    """True when a server's session object (either shape) says input transcription is off (an explicit null)."""
    if not session:
        return False
    audio_in = (session.get("audio") or {}).get("input") if isinstance(session.get("audio"), dict) else None
    if isinstance(audio_in, dict) and "transcription" in audio_in:
        return audio_in["transcription"] is None
    if "input_audio_transcription" in session:
        return session["input_audio_transcription"] is None
    return False
