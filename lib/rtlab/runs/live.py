"""GPT-Live as a voice session of a run: :class:`LiveConfig` and :class:`LiveLeg` (layer: runs).

A GPT-Live session (``gpt-live-1``, ``gpt-live-1.1``) is a full-duplex voice session with its own protocol at
``/v1/live/sessions`` (Azure ``/openai/v1/live/sessions``): the leg opens it through the official SDK
(``client.live.connect()`` on the target's client: ``AsyncOpenAI(base_url=.../v1)`` for OpenAI and the local
emulator, the Azure GA v1 base ``.../openai/v1`` with the deployment name as the model), sends ``session.start``
built from a :class:`LiveConfig` and validated against the SDK's strict types *before* anything is sent, streams
the run's chunks as ``session.input_audio.append`` in the chosen format, and after the audio sends
``session.close`` and waits (bounded) for ``session.closed``. Every client and server event goes into the run's
event log under the leg's source label (``in-session`` by default), with the protocol's own event names.

A Realtime model given to a Live session (or a Live model given to a Realtime session) fails before sending, with
a :class:`~rtlab.errors.ConfigError` naming the fix (:func:`rtlab.protocol.live.check_session_model`).

Example
-------
>>> from rtlab.targets import Target                                                   # doctest: +SKIP
>>> from rtlab.runs import arun_legs, RunOptions                                       # doctest: +SKIP
>>> leg = LiveLeg(Target.local(), LiveConfig(model="gpt-live-1"))                      # doctest: +SKIP
>>> log = await arun_legs("data/clips/short.wav", [leg], options=RunOptions(speed=2))  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rtlab.audio import Resampler, decode, encode_g711
from rtlab.errors import ConfigError, RtlabError, TargetError
from rtlab.protocol import AUDIO_FORMATS as RUN_FORMATS
from rtlab.protocol import live as L
from rtlab.runs.core import IN_SESSION
from rtlab.runs.wire import SocketLeg

if TYPE_CHECKING:  # pragma: no cover
    from rtlab.runs.core import Run
    from rtlab.targets import Target

__all__ = ["LiveConfig", "LiveLeg"]

logger = logging.getLogger(__name__)

_DEFAULT_RATE = {"audio/pcm": 24000, "audio/pcmu": 8000, "audio/pcma": 8000}
_RUN_FORMAT = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}
_ROLES = ("developer", "user", "assistant")


@dataclass(frozen=True, kw_only=True)
class LiveConfig:
    """The ``session.start`` configuration of a GPT-Live session (the subset rtlab drives).

    Parameters
    ----------
    model : str
        ``gpt-live-1`` or ``gpt-live-1.1``; on Azure the name of a gpt-live deployment.
    instructions : str, optional
        Conversation instructions (immutable after start; blank: the server's defaults).
    audio_format : {"audio/pcm", "audio/pcmu", "audio/pcma"}
        Encoding of input and output audio, chosen at start.
    sample_rate : int, optional
        16000 or 24000 for PCM (default 24000); 8000 for G.711.
    voice : str
        A built-in voice (default ``marin``; immutable after start).
    input : tuple of (role, text)
        Text-only history before startup; roles ``developer``, ``user``, ``assistant``.
    """

    model: str = "gpt-live-1"
    instructions: str | None = None
    audio_format: Literal["audio/pcm", "audio/pcmu", "audio/pcma"] = "audio/pcm"
    sample_rate: int | None = None
    voice: str = L.DEFAULT_VOICE
    input: tuple[tuple[str, str], ...] = ()

    kind = "live"

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError(f"model must be a non-empty string, got {self.model!r}", field="model",
                              fix="e.g. model='gpt-live-1' (on Azure: your gpt-live deployment's name)")
        if self.audio_format not in _DEFAULT_RATE:
            raise ConfigError(f"audio_format {self.audio_format!r} is not one of {', '.join(_DEFAULT_RATE)}",
                              field="audio_format", fix="use 'audio/pcm' (16 or 24 kHz) or 'audio/pcmu'")
        if self.sample_rate is None:
            object.__setattr__(self, "sample_rate", _DEFAULT_RATE[self.audio_format])
        if (self.audio_format, self.sample_rate) not in L.AUDIO_FORMATS:
            rates = sorted(r for t, r in L.AUDIO_FORMATS if t == self.audio_format)
            raise ConfigError(f"sample_rate {self.sample_rate!r} is not available for {self.audio_format}",
                              field="sample_rate", fix=f"use one of {rates}")
        for k, pair in enumerate(self.input):
            if not (isinstance(pair, tuple | list) and len(pair) == 2 and pair[0] in _ROLES
                    and isinstance(pair[1], str)):
                raise ConfigError(f"input[{k}] = {pair!r} is not a (role, text) pair", field="input",
                                  fix=f"give pairs like ('user', 'Hello'); roles: {', '.join(_ROLES)}")

    @property
    def wire_format(self) -> dict[str, Any]:
        """``session.audio.format`` as sent."""
        return {"type": self.audio_format, "rate": self.sample_rate}

    @property
    def input_format(self) -> str:
        """The run's audio format that matches this session's (``pcm16`` for PCM at either rate)."""
        return _RUN_FORMAT[self.audio_format]

    def session(self, *, deployments: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The ``session`` object of ``session.start``, validated against the SDK's strict types.

        Raises
        ------
        ConfigError
            The model belongs to the Realtime API, or the object breaks the SDK's schema (the message names the
            field).
        """
        L.check_session_model(self.model, "live", deployments=deployments)
        session: dict[str, Any] = {"model": self.model,
                                   "audio": {"format": self.wire_format, "output": {"voice": self.voice}}}
        if self.instructions is not None:
            session["instructions"] = self.instructions
        if self.input:
            session["input"] = [
                {"type": "message", "role": role,
                 "content": [{"type": "output_text" if role == "assistant" else "input_text", "text": text}]}
                for role, text in self.input
            ]
        L.validate_session_config(session)
        if self.voice not in L.VOICES:
            raise ConfigError(f"voice {self.voice!r} is not a built-in GPT-Live voice", field="voice",
                              fix=f"use one of {', '.join(L.VOICES)}")
        return session


class _Converter:
    """Run chunks (``pcm16`` 24 kHz or G.711 8 kHz) to the session's wire format: one streaming resampler and
    the G.711 codec of :mod:`rtlab.audio`."""

    def __init__(self, run_fmt: str, wire: dict[str, Any]):
        self.run_fmt = run_fmt
        self.run_rate = RUN_FORMATS[run_fmt].sample_rate
        self.wire_type, self.wire_rate = wire["type"], int(wire["rate"])
        self.wire_fmt = _RUN_FORMAT[self.wire_type]
        self.passthrough = self.wire_fmt == run_fmt and self.run_rate == self.wire_rate
        self._rs = None if self.passthrough or self.run_rate == self.wire_rate else \
            Resampler(self.run_rate, self.wire_rate)

    def _decode(self, payload: bytes) -> np.ndarray:
        return decode(payload, self.run_fmt)[0]

    def _encode(self, pcm: np.ndarray) -> bytes:
        if self.wire_fmt == "pcm16":
            return pcm.astype("<i2").tobytes()
        return encode_g711(pcm, "ulaw" if self.wire_fmt == "g711_ulaw" else "alaw") if len(pcm) else b""

    def convert(self, payload: bytes, *, last: bool = False) -> bytes:
        if self.passthrough:
            return payload
        pcm = self._decode(payload) if payload else np.zeros(0, np.int16)
        if self._rs is not None:
            pcm = np.concatenate([self._rs.process(pcm), self._rs.flush()]) if last else self._rs.process(pcm)
        return self._encode(np.asarray(pcm, np.int16))


class LiveLeg(SocketLeg):
    """A GPT-Live voice session as one leg of a run.

    Parameters
    ----------
    target : rtlab.targets.Target
        OpenAI, Azure GA v1, or local (``openai-ga``/``azure-ga`` dialects; GPT-Live has no preview or beta path).
    config : LiveConfig
        The session to start; validated here, before anything is sent.
    source : str
        Label of the leg's events in the log (``in-session`` when it is the run's voice session).
    close_timeout_s : float, optional
        How long to wait for ``session.closed`` after ``session.close`` (default: the run's
        ``settle_timeout_s``).
    """

    def __init__(self, target: Target, config: LiveConfig | None = None, *, source: str = IN_SESSION,
                 close_timeout_s: float | None = None):
        super().__init__(source)
        self.target = target
        self.config = config if config is not None else LiveConfig()
        if not isinstance(self.config, LiveConfig):
            raise ConfigError(f"a LiveLeg needs a LiveConfig, got {type(self.config).__name__}", field="config",
                              fix="pass LiveConfig(model='gpt-live-1', ...)")
        if target.dialect not in ("openai-ga", "azure-ga"):
            raise TargetError(f"GPT-Live is served on the GA v1 paths only (/v1/live/sessions, "
                              f"/openai/v1/live/sessions); the target speaks {target.dialect!r}. Use "
                              f"target.with_dialect('{'azure-ga' if 'azure' in target.dialect else 'openai-ga'}')")
        self.session_config = self.config.session(deployments=target.known_deployments() or None)
        self.close_timeout_s = close_timeout_s
        self.started: dict | None = None
        self.closed_event: dict | None = None

    def __repr__(self) -> str:
        return f"LiveLeg({self.source!r}, model={self.config.model!r}, target={self.target!r})"

    family = "live"

    def wants_transcripts(self) -> bool:
        return True

    def describe(self) -> dict[str, Any]:
        return {"family": self.family, "kind": "voice", "model": self.target.model_of(self.config.model),
                "session_model": self.config.model, "target": self.target.provider,
                "dialect": self.target.dialect, "emulated": self.target.is_local,
                "timing": "local" if self.target.is_local else None}  # the emulator models Realtime timing only

    def connect(self) -> Any:
        return self.target.client().live.connect()

    async def converse(self, run: Run) -> None:
        try:
            await self.send(run, {"type": "session.start", "session": self.session_config})
            if not await self.wait_until(lambda: self.started is not None or bool(self.state.errors)
                                         or self.state.closed, run.options.ready_timeout_s):
                raise RtlabError(f"{self.source}: no session.started within {run.options.ready_timeout_s} s")
            self.ready.set()
            if self.started is None:  # refused at start: recorded; nothing to stream
                await self.drain_queue()
                return
            converter = _Converter(run.fmt, self.config.wire_format)
            while (chunk := await self.queue.get()) is not None:
                if self.state.closed:
                    continue
                await self._append(run, converter, converter.convert(chunk.payload), audio_ms=chunk.end_ms,
                                   audio_offset=chunk.offset_samples)
            if not converter.passthrough and not self.state.closed:
                await self._append(run, converter, converter.convert(b"", last=True), audio_ms=run.clock_ms())
            if not self.state.closed:
                await self.send(run, {"type": "session.close"})
                timeout = self.close_timeout_s if self.close_timeout_s is not None else run.options.settle_timeout_s
                if not await self.wait_until(lambda: self.state.closed, timeout):
                    logger.warning("%s: no session.closed within %.0f s", self.source, timeout)
            await run.settle(self)
        finally:
            self.state.closed = True

    async def _append(self, run: Run, converter: _Converter, payload: bytes, *, audio_ms: float,
                      audio_offset: int | None = None) -> None:
        if payload:
            # The log keeps input audio on the run's clock: a wire format of another rate is put back onto it.
            wire = None if converter.passthrough else (converter.wire_fmt, converter.wire_rate)
            await self.send(run, {"type": "session.input_audio.append",
                                   "audio": base64.b64encode(payload).decode("ascii")},
                             audio_ms=audio_ms, audio_offset=audio_offset if wire is None else None,
                             audio_format=wire)

    async def on_event(self, run: Run, event: dict) -> None:
        s = self.state
        etype = event.get("type")
        if etype == "session.started":
            self.started = event
            s.session = dict(event.get("session") or {})
        elif etype == "error":
            s.errors.append(event.get("error") or {})
        elif etype == "session.closed":
            self.closed_event = event
            s.closed = True

