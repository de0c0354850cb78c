"""The translation sidecar: a ``gpt-realtime-translate`` session beside the others, on the run's audio clock
(layer: runs).

The seed question's second workaround: run a translation session in parallel, with
``audio.input.transcription`` on, and read its source-language transcript (``session.input_transcript.delta``)
as one more transcription source. :class:`TranslationLeg` is a :class:`rtlab.runs.core.Leg`: it opens the
session through the official SDK (``client.realtime.translations.connect(model=...)``, path
``/v1/realtime/translations``; Azure GA v1: ``/openai/v1/realtime/translations`` with the deployment name as
model), sets the target language, streams the run's chunks (``session.input_audio_buffer.append``), ends with
``session.close`` and waits, bounded, for the last deltas and ``session.closed``. Every client and server
event goes into the run's EventLog under the source label ``sidecar:translate:LANG``.

:class:`TranslationSidecar` is the spec (``--sidecar translate:es``); :func:`parse_translate_spec` parses it.

Example
-------
>>> from rtlab.runs import arun_legs, RunOptions                                 # doctest: +SKIP
>>> leg = TranslationSidecar("es").leg(Target.local("http://127.0.0.1:8765"))    # doctest: +SKIP
>>> log = await arun_legs("data/clips/short.wav", [leg], options=RunOptions(speed=2))   # doctest: +SKIP
"""

from __future__ import annotations

import base64
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rtlab.errors import ConfigError, RtlabError, TargetError
from rtlab.protocol import translation as T
from rtlab.runs.core import Run
from rtlab.runs.wire import SocketLeg

if TYPE_CHECKING:  # pragma: no cover
    from rtlab.targets import Target

__all__ = [
    "SIDECAR_TRANSLATE",
    "TranslationLeg",
    "TranslationSidecar",
    "parse_translate_spec",
    "translate_source",
]

logger = logging.getLogger(__name__)

#: Source label prefix of translation sidecars; the full label ends with the target language.
SIDECAR_TRANSLATE = "sidecar:translate"
#: Environment variable naming an Azure deployment of gpt-realtime-translate (default: a deployment named
#: after the model).
AZURE_DEPLOYMENT_ENV = "AZURE_OPENAI_TRANSLATE_DEPLOYMENT"


def translate_source(language: str) -> str:
    """The source label of a translation sidecar into ``language``: ``"sidecar:translate:es"``."""
    return f"{SIDECAR_TRANSLATE}:{language}"


def _check_language(language: object, *, validate: bool) -> str:
    if not isinstance(language, str) or not language.strip():
        raise ConfigError(
            f"a translation sidecar needs a target language code, got {language!r}.",
            field="language",
            fix="e.g. translate:es",
        )
    language = language.strip().lower()
    if validate and language not in T.OUTPUT_LANGUAGES:
        raise ConfigError(
            f"gpt-realtime-translate does not list {language!r} as an output language.",
            field="language",
            fix="use one of " + ", ".join(sorted(T.OUTPUT_LANGUAGES)),
        )
    return language


@dataclass(frozen=True)
class TranslationSidecar:
    """A translation session as a sidecar: into ``language``, on ``target`` (None: the voice session's).

    ``model`` defaults to ``gpt-realtime-translate`` (on Azure: ``$AZURE_OPENAI_TRANSLATE_DEPLOYMENT``, else a
    deployment named after the model); ``transcription_model`` is the source-transcript model.
    """

    language: str = "es"
    model: str | None = None
    transcription_model: str = T.TRANSCRIPTION_MODEL
    target: Target | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "language", _check_language(self.language, validate=True))

    @property
    def source(self) -> str:
        return translate_source(self.language)

    def leg(self, target: Target, *, source: str | None = None) -> TranslationLeg:
        """The leg that runs this sidecar on ``target`` (``self.target`` wins when set)."""
        return TranslationLeg(
            source or self.source,
            self.target or target,
            language=self.language,
            model=self.model,
            transcription_model=self.transcription_model,
        )


def parse_translate_spec(spec: str) -> TranslationSidecar | None:
    """``"translate:LANG"`` → :class:`TranslationSidecar`; None for a spec of another kind.

    Raises
    ------
    ConfigError
        ``translate`` without a language, or a language gpt-realtime-translate does not list.
    """
    kind, sep, arg = spec.partition(":")
    if kind.strip().lower() not in ("translate", "translation"):
        return None
    if not arg.strip():
        raise ConfigError(
            f"sidecar spec {spec!r} has no target language.",
            field="sidecar",
            fix="use translate:LANG, e.g. --sidecar translate:es",
        )
    return TranslationSidecar(language=arg)


class TranslationLeg(SocketLeg):
    """A translation session through the SDK, fed the run's chunks, recorded as ``sidecar:translate:LANG``.

    Parameters
    ----------
    source : str
        Source label in the EventLog.
    target : rtlab.targets.Target
        Where to connect: OpenAI, Azure GA v1, or a local emulator (``Target.local(url)``).
    language : str
        Target language (``audio.output.language``).
    model : str, optional
        The translation model (Azure: the deployment); see :class:`TranslationSidecar`.
    transcription_model : str
        ``audio.input.transcription.model``: the source transcript is what this leg is for.
    validate : bool
        Refuse, before connecting, a language the model does not list (the probe turns it off to see what the
        endpoint says).
    """

    def __init__(
        self,
        source: str,
        target: Target,
        *,
        language: str,
        model: str | None = None,
        transcription_model: str = T.TRANSCRIPTION_MODEL,
        validate: bool = True,
    ) -> None:
        super().__init__(source)
        self.target = target
        self.language = _check_language(language, validate=validate)
        self.model = model or _default_model(target)
        self.transcription_model = transcription_model
        self.conn: object = None

    def __repr__(self) -> str:
        return f"TranslationLeg({self.source!r}, language={self.language!r}, model={self.model!r})"

    family = "translation"

    def wants_transcripts(self) -> bool:
        return False  # nothing is committed: the leg is settled once the session is closed

    def describe(self) -> dict:
        return {"family": self.family, "model": self.model, "language": self.language,
                "transcription_model": self.transcription_model, "target": getattr(self.target, "provider", None),
                "emulated": bool(getattr(self.target, "is_local", False)),
                "timing": "local" if getattr(self.target, "is_local", False) else None}

    def session_update(self) -> dict:
        """The ``session.update`` this leg sends: source transcript on, output in :attr:`language`."""
        return {
            "type": "session.update",
            "session": {
                "audio": {
                    "input": {"transcription": {"model": self.transcription_model}},
                    "output": {"language": self.language},
                }
            },
        }

    def manager(self) -> object:
        """The SDK's connection manager (``client.realtime.translations.connect``) for :attr:`target`."""
        if getattr(self.target, "dialect", None) == "azure-preview":
            raise TargetError(
                "translation sessions are a GA v1 surface; the Azure preview API has none. Use "
                "Target.azure() (GA v1, /openai/v1) for the translation sidecar"
            )
        return self.target.client().realtime.translations.connect(model=self.model)

    async def run(self, run: Run) -> None:
        if run.fmt != "pcm16":
            run.log.record(
                "server",
                self.source,
                {
                    "type": "rtlab.leg_error",
                    "message": f"translation sessions take 24 kHz PCM16 only; this run sends "
                    f"{run.fmt}. Run the translation sidecar with pcm16 input.",
                },
                audio_ms=run.clock_ms(),
            )
            return await self._give_up()
        try:
            self.manager()  # a target this leg cannot use: recorded with its message, not raised
        except RtlabError as exc:
            run.log.record(
                "server",
                self.source,
                {"type": "rtlab.leg_error", "message": str(exc)},
                audio_ms=run.clock_ms(),
            )
            return await self._give_up()
        await super().run(run)

    def connect(self) -> object:
        return self.manager()

    async def converse(self, run: Run) -> None:
        if await self._configure(run):
            await self._stream(run)
            await self._finish(run)
        else:
            self.ready.set()
            await self.drain_queue()
        await run.settle(self)

    # ------------------------------------------------------------------------------------------ steps
    async def _configure(self, run: Run) -> bool:
        """Wait for ``session.created``, send the update, wait for ``session.updated``; False if it failed."""
        s = self.state
        if not await self._wait(
            lambda: s.session is not None or s.closed or bool(s.errors),
            run.options.ready_timeout_s,
            "session.created",
        ):
            return False
        if s.closed or s.session is None:
            return False
        n_errors = len(s.errors)
        await self.send(run, self.session_update())
        return (
            await self._wait(
                lambda: s.n_updated > 0 or s.closed or len(s.errors) > n_errors,
                run.options.ready_timeout_s,
                "session.updated",
            )
            and s.n_updated > 0
        )

    async def _stream(self, run: Run) -> None:
        self.ready.set()
        while (chunk := await self.queue.get()) is not None:
            if self.state.closed:
                continue
            await self.send(
                run,
                {
                    "type": "session.input_audio_buffer.append",
                    "audio": base64.b64encode(chunk.payload).decode("ascii"),
                },
                audio_ms=chunk.offset_ms + chunk.duration_ms,
                audio_offset=chunk.offset_samples,
            )

    async def _finish(self, run: Run) -> None:
        """``session.close``, then the remaining output until ``session.closed`` (or the settle timeout)."""
        if self.state.closed:
            return
        await self.send(run, {"type": "session.close"})
        if not await self._wait(lambda: self.state.closed, run.options.settle_timeout_s, "session.closed"):
            self.state.closed = True

    async def _give_up(self) -> None:
        self.state.closed = True
        self.ready.set()
        await self.drain_queue()

    async def _wait(self, cond, timeout_s: float, what: str) -> bool:
        if await self.wait_until(cond, timeout_s):
            return True
        logger.warning("%s: no %s within %.0f s", self.source, what, timeout_s)
        return False

    async def on_event(self, run: Run, event: dict) -> None:
        s = self.state
        etype = event["type"]
        if etype == "session.created":
            s.session = dict(event.get("session") or {})
        elif etype == "session.updated":
            s.session = dict(event.get("session") or {})
            s.n_updated += 1
        elif etype == "error":
            s.errors.append(event.get("error") or {})
        elif etype == "session.closed":
            s.closed = True


def _default_model(target: object) -> str:
    if getattr(target, "provider", None) == "azure":
        return os.environ.get(AZURE_DEPLOYMENT_ENV) or T.MODEL
    return T.MODEL
