"""The Azure Speech sidecar: the official Speech SDK's ConversationTranscriber on a run's audio (layer: runs).

The seed question's first workaround: transcribe the caller's audio with Azure Speech (Conversation Transcription,
with speaker ids) beside the voice session. :class:`AzureSpeechLeg` is a :class:`~rtlab.runs.core.Leg`: it takes the
run's chunks (PCM16 at the run's rate), resamples them to 16 kHz with ``rtlab.audio.Resampler`` (push streams take
8 or 16 kHz PCM16 only), writes them to a ``PushAudioInputStream`` and records every SDK event into the run's log as
its own source (default ``sidecar:azure-speech``):

==================================  =================================================================================
type                                body (besides ``type``)
==================================  =================================================================================
``azure_speech.start`` (client)     target (masked), language, recognizer, intermediate diarization
``azure_speech.session_started``    ``session_id``
``azure_speech.speech_start_detected`` / ``azure_speech.speech_end_detected``  ``offset_ticks``
``azure_speech.transcribing``       ``result_id``, ``text`` (a cumulative snapshot of the phrase, not a delta),
                                    ``offset_ticks``, ``duration_ticks``, ``speaker_id``, ``reason``, ``result_json``
``azure_speech.transcribed``        same, for the final result of a phrase
``azure_speech.canceled``           ``reason`` (``EndOfStream`` / ``Error``), ``error_code``, ``error_details``
``azure_speech.audio_end`` (client)  ``pushed_ms``: audio written to the push stream, on the run's clock
``azure_speech.session_stopped``    ``session_id``
==================================  =================================================================================

The SDK calls back on its own threads; each event is handed to the run's event loop (``call_soon_threadsafe``)
and recorded there with ``audio_ms = run.clock_ms()``. Offsets are 100-ns ticks from the first pushed sample,
which is the first sample of the run: ``offset_ticks / 10_000`` is on the run's audio clock.

:class:`AzureSpeechTarget` says where the SDK connects: the local emulator (``host=ws://...``), a Speech resource
by key (``AZURE_SPEECH_KEY`` with ``AZURE_SPEECH_REGION`` or ``AZURE_SPEECH_ENDPOINT``), or keyless through
Microsoft Entra ID (``azure-identity``'s ``DefaultAzureCredential``): with ``AZURE_SPEECH_RESOURCE_ID`` and
``AZURE_SPEECH_REGION`` the documented ``aad#RESOURCE_ID#TOKEN`` authorization token, with a custom-domain
``AZURE_SPEECH_ENDPOINT`` alone the SDK's own ``token_credential``. Keys and tokens are
:class:`~rtlab.secrets.Secret`: masked in every repr, string, log line and error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import numpy as np

from rtlab.errors import TargetError
from rtlab.protocol.usp import PRICE_MODEL
from rtlab.runs.core import Leg, Run
from rtlab.secrets import Secret, install_redaction, redact

if TYPE_CHECKING:  # pragma: no cover
    import azure.cognitiveservices.speech as speechsdk

__all__ = ["AZURE_SPEECH_SOURCE", "ENTRA_SCOPE", "AzureSpeechLeg", "AzureSpeechTarget", "EVENT_PREFIX"]

log = logging.getLogger(__name__)

AZURE_SPEECH_SOURCE = "sidecar:azure-speech"
EVENT_PREFIX = "azure_speech."
#: The token scope for Speech resources (Microsoft Learn, "Microsoft Entra authentication with the Speech SDK").
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"
PUSH_RATE = 16000  # the push stream's rate (8000 also allowed; 16 kHz keeps the most of 24 kHz input)
Auth = Literal["none", "key", "entra"]


class _CredentialSlot:
    """Holds an Entra credential object; never pickled or shown (a copy of a target builds its own)."""

    def __init__(self, credential: Any = None) -> None:
        self.credential = credential

    def get(self) -> Any:
        if self.credential is None:
            try:
                from azure.identity import DefaultAzureCredential
            except ImportError as exc:  # pragma: no cover - the azure extra is installed by make
                raise TargetError("keyless Azure Speech needs azure-identity: pip install 'rtlab[azure]'") from exc
            self.credential = DefaultAzureCredential()
        return self.credential

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.credential = None

    def __deepcopy__(self, memo: dict) -> _CredentialSlot:
        return self

    def __repr__(self) -> str:
        return "<credential>"


@dataclass(frozen=True, repr=False)
class AzureSpeechTarget:
    """Where the Speech SDK connects, and how it authenticates. Build with :meth:`local`, :meth:`key`,
    :meth:`entra` or :meth:`from_env`.

    Attributes
    ----------
    kind : {"local", "azure"}
    auth : {"none", "key", "entra"}
    host : str or None
        ``ws://HOST:PORT`` of a local emulator (``SpeechConfig(host=...)``, as for speech containers).
    region, endpoint : str or None
        A Speech resource's region (``westeurope``) or endpoint (``https://NAME.cognitiveservices.azure.com``).
    key : Secret or None
        The resource key (``auth="key"``) or the emulator's key.
    resource_id : str or None
        The resource's ARM id, for the ``aad#RESOURCE_ID#TOKEN`` Entra form.
    language : str
        Recognition language (BCP-47).
    """

    kind: Literal["local", "azure"]
    auth: Auth
    host: str | None = None
    region: str | None = None
    endpoint: str | None = None
    key: Secret | None = None
    resource_id: str | None = None
    language: str = "en-US"
    _credential: _CredentialSlot = field(default_factory=_CredentialSlot, compare=False, hash=False)
    _local: Any = field(default=None, compare=False, hash=False)  # a Target.local() whose emulator we use

    def __post_init__(self) -> None:
        if self.key is not None and not isinstance(self.key, Secret):
            object.__setattr__(self, "key", Secret(self.key))
        if self.kind == "azure":
            if not (self.region or self.endpoint):
                raise TargetError("Azure Speech needs a region or an endpoint: set AZURE_SPEECH_REGION (e.g. "
                                  "'westeurope') or AZURE_SPEECH_ENDPOINT")
            if self.auth == "key" and not self.key:
                raise TargetError("Azure Speech key authentication needs a key: set AZURE_SPEECH_KEY")
            if self.auth == "entra" and self.resource_id and not self.region:
                raise TargetError("the aad#RESOURCE_ID#TOKEN form needs the region: set AZURE_SPEECH_REGION")
            if self.auth == "entra" and not self.resource_id and not self.endpoint:
                raise TargetError("keyless Azure Speech needs AZURE_SPEECH_RESOURCE_ID with AZURE_SPEECH_REGION, "
                                  "or a custom-domain AZURE_SPEECH_ENDPOINT (https://NAME.cognitiveservices.azure."
                                  "com)")
            if self.auth == "none":
                raise TargetError("an Azure Speech resource needs a key or Entra ID (auth='key' or 'entra')")
        if self.endpoint is not None:
            parts = urlsplit(self.endpoint)
            if parts.scheme not in ("https", "wss") or not parts.hostname or parts.query or parts.username:
                raise TargetError(f"Azure Speech endpoint {redact(self.endpoint)!r} is not an https:// or wss:// URL "
                                  "without query or credentials; expected e.g. "
                                  "'https://NAME.cognitiveservices.azure.com'")

    # ---------------------------------------------------------------------------------------------- builders
    @classmethod
    def local(cls, url: str | None = None, *, api_key: str | None = None, language: str = "en-US"
              ) -> AzureSpeechTarget:
        """The local emulator at ``url`` (``http://`` or ``ws://HOST:PORT``, e.g. from ``rtlab serve``), or the
        embedded emulator started on first use when ``url`` is None. ``api_key``: the emulator's ``--api-key``."""
        local = None
        host = None
        if url is None:
            from rtlab.targets import Target

            local = Target.local()
        else:
            host = _ws_host(url)
        key = Secret(api_key, sensitive=False) if api_key == "rtlab-local" else (Secret(api_key) if api_key else None)
        return cls("local", "key" if key else "none", host=host, key=key, language=language, _local=local)

    @classmethod
    def with_key(cls, key: str, *, region: str | None = None, endpoint: str | None = None,
                 language: str = "en-US") -> AzureSpeechTarget:
        """A Speech resource by key and region (or endpoint)."""
        if not key:
            raise TargetError("Azure Speech key is empty; pass the key or set AZURE_SPEECH_KEY")
        return cls("azure", "key", region=region, endpoint=endpoint, key=Secret(key), language=language)

    @classmethod
    def entra(cls, *, resource_id: str | None = None, region: str | None = None, endpoint: str | None = None,
              credential: Any = None, language: str = "en-US") -> AzureSpeechTarget:
        """A Speech resource through Microsoft Entra ID: ``credential`` (default ``DefaultAzureCredential()``)
        gets a token for :data:`ENTRA_SCOPE`."""
        return cls("azure", "entra", region=region, endpoint=endpoint, resource_id=resource_id, language=language,
                   _credential=_CredentialSlot(credential))

    @classmethod
    def from_env(cls, *, language: str | None = None, credential: Any = None) -> AzureSpeechTarget:
        """A Speech resource from ``AZURE_SPEECH_KEY``, ``AZURE_SPEECH_REGION``, ``AZURE_SPEECH_ENDPOINT``,
        ``AZURE_SPEECH_RESOURCE_ID`` and ``AZURE_SPEECH_AUTH`` (``key`` or ``entra``; default: ``key`` when a key
        is set, else ``entra``). ``AZURE_SPEECH_LANGUAGE`` sets the language (default ``en-US``)."""
        env = os.environ
        region = env.get("AZURE_SPEECH_REGION") or None
        endpoint = env.get("AZURE_SPEECH_ENDPOINT") or None
        key = env.get("AZURE_SPEECH_KEY") or None
        resource_id = env.get("AZURE_SPEECH_RESOURCE_ID") or None
        language = language or env.get("AZURE_SPEECH_LANGUAGE") or "en-US"
        auth = (env.get("AZURE_SPEECH_AUTH") or ("key" if key else "entra")).strip().lower()
        if auth not in ("key", "entra"):
            raise TargetError(f"AZURE_SPEECH_AUTH={auth!r} is not 'key' or 'entra'")
        if not (region or endpoint):
            raise TargetError("Azure Speech needs AZURE_SPEECH_REGION (e.g. 'westeurope') or AZURE_SPEECH_ENDPOINT, "
                              "plus AZURE_SPEECH_KEY (or Entra ID: AZURE_SPEECH_RESOURCE_ID)")
        if auth == "key":
            if not key:
                raise TargetError("AZURE_SPEECH_AUTH=key but AZURE_SPEECH_KEY is not set")
            return cls("azure", "key", region=region, endpoint=endpoint,
                       key=Secret(key, source_env="AZURE_SPEECH_KEY"), language=language)
        return cls.entra(resource_id=resource_id, region=region, endpoint=endpoint, credential=credential,
                         language=language)

    # ---------------------------------------------------------------------------------------------- the SDK
    @property
    def is_local(self) -> bool:
        return self.kind == "local"

    def host_url(self) -> str | None:
        """The ``ws://`` host of a local target (starting the embedded emulator when this target owns one)."""
        if self.kind != "local":
            return None
        if self.host is not None:
            return self.host
        return _ws_host(self._local.url)

    def entra_token(self) -> Secret:
        """A fresh Entra access token for :data:`ENTRA_SCOPE` (masked)."""
        token = self._credential.get().get_token(ENTRA_SCOPE)
        return Secret(getattr(token, "token", token))

    def speech_config(self) -> speechsdk.SpeechConfig:
        """A new ``SpeechConfig`` for this target, with the recognition language set (may fetch an Entra token)."""
        import azure.cognitiveservices.speech as speechsdk

        install_redaction()
        key = self.key.reveal() if self.key else None
        if self.kind == "local":
            cfg = speechsdk.SpeechConfig(host=self.host_url(), subscription=key) if key else \
                speechsdk.SpeechConfig(host=self.host_url())
        elif self.auth == "key":
            cfg = speechsdk.SpeechConfig(subscription=key, endpoint=self.endpoint) if self.endpoint else \
                speechsdk.SpeechConfig(subscription=key, region=self.region)
        elif self.resource_id:
            # Documented form for Entra ID: "aad#" + resource id + "#" + token, with the region.
            token = self.entra_token()
            cfg = speechsdk.SpeechConfig(auth_token=f"aad#{self.resource_id}#{token.reveal()}", region=self.region)
        else:
            cfg = speechsdk.SpeechConfig(endpoint=self.endpoint, token_credential=self._credential.get())
        cfg.speech_recognition_language = self.language
        return cfg

    # ---------------------------------------------------------------------------------------------- display
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, with the key masked and no token."""
        return {"kind": self.kind, "auth": self.auth, "host": self.host, "region": self.region,
                "endpoint": self.endpoint, "key": None if self.key is None else str(self.key),
                "resource_id": self.resource_id, "language": self.language}

    def __repr__(self) -> str:
        where = self.host or self.endpoint or self.region or "<embedded emulator>"
        key = f", key={self.key}" if self.key else ""
        return f"AzureSpeechTarget({self.kind}, {self.auth}, {where}{key}, language={self.language!r})"

    __str__ = __repr__


def _ws_host(url: str) -> str:
    parts = urlsplit(str(url))
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        raise TargetError(f"emulator URL {redact(str(url))!r} is not http(s):// or ws(s)://HOST:PORT")
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}"


# ======================================================================================================== the leg
class AzureSpeechLeg(Leg):
    """The Speech SDK's ``ConversationTranscriber`` on the run's audio (see the module docstring).

    Parameters
    ----------
    source : str
        Source label of its events (default ``sidecar:azure-speech``).
    target : AzureSpeechTarget, optional
        Default: :meth:`AzureSpeechTarget.local` (the embedded emulator).
    intermediate_diarization : bool
        Ask for speaker ids in partial results (``SpeechServiceResponse_DiarizeIntermediateResults``).
    stop_timeout_s : float, optional
        How long to wait, after the last audio, for the SDK's final results and ``session_stopped``
        (default: the run's ``settle_timeout_s``).
    """

    def __init__(self, source: str = AZURE_SPEECH_SOURCE, target: AzureSpeechTarget | None = None, *,
                 intermediate_diarization: bool = False, stop_timeout_s: float | None = None) -> None:
        super().__init__(source)
        self.target = target if target is not None else AzureSpeechTarget.local()
        self.intermediate_diarization = intermediate_diarization
        self.stop_timeout_s = stop_timeout_s
        self._stopped: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._run: Run | None = None

    family = "azure-speech"

    def wants_transcripts(self) -> bool:
        return False  # the leg waits for the SDK itself (session_stopped) before it settles

    def describe(self) -> dict:
        return {"family": self.family, "model": PRICE_MODEL, "target": repr(self.target),
                "emulated": self.target.is_local, "timing": "local" if self.target.is_local else None}

    def __repr__(self) -> str:
        return f"AzureSpeechLeg({self.source!r}, {self.target!r})"

    # ------------------------------------------------------------------------------------------- recording
    def _record(self, direction: str, event: dict) -> None:
        run = self._run
        if run is None:
            return
        try:
            run.log.record(direction, self.source, event, audio_ms=run.clock_ms())
        except Exception:  # the log closed under a late SDK callback: nothing to record into
            log.debug("%s: dropped a late %s", self.source, event.get("type"))
        etype = event["type"]
        if etype == EVENT_PREFIX + "session_stopped" or (
                etype == EVENT_PREFIX + "canceled" and event.get("reason") == "Error"):
            if self._stopped is not None:
                self._stopped.set()
        if etype == EVENT_PREFIX + "canceled" and event.get("reason") == "Error":
            self.state.errors.append({"code": event.get("error_code"), "message": event.get("error_details")})

    def _from_sdk(self, event: dict) -> None:
        """Called on an SDK thread: hand the event to the run's loop."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is gone: the run is over
            loop.call_soon_threadsafe(self._record, "server", event)

    def _connect(self, transcriber: Any) -> None:
        def result(kind: str):
            def handler(evt: Any) -> None:
                self._from_sdk(_result_event(kind, evt))
            return handler

        def session(kind: str):
            def handler(evt: Any) -> None:
                self._from_sdk({"type": EVENT_PREFIX + kind, "session_id": evt.session_id})
            return handler

        def detected(kind: str):
            def handler(evt: Any) -> None:
                self._from_sdk({"type": EVENT_PREFIX + kind, "session_id": evt.session_id,
                                "offset_ticks": int(evt.offset)})
            return handler

        def canceled(evt: Any) -> None:
            details = evt.cancellation_details
            self._from_sdk({"type": EVENT_PREFIX + "canceled", "session_id": evt.session_id,
                            "reason": _enum_name(details.reason), "error_code": _enum_name(details.code),
                            "error_details": redact(details.error_details or "")[:1000]})

        transcriber.transcribing.connect(result("transcribing"))
        transcriber.transcribed.connect(result("transcribed"))
        transcriber.session_started.connect(session("session_started"))
        transcriber.session_stopped.connect(session("session_stopped"))
        transcriber.speech_start_detected.connect(detected("speech_start_detected"))
        transcriber.speech_end_detected.connect(detected("speech_end_detected"))
        transcriber.canceled.connect(canceled)

    # ------------------------------------------------------------------------------------------- the run
    async def _give_up(self, exc: Exception) -> None:
        """The SDK could not start: record why (as the SDK's own ``canceled``), then take the run's audio unused."""
        self._record("server", {"type": EVENT_PREFIX + "canceled", "reason": "Error",
                                "error_code": type(exc).__name__, "error_details": redact(str(exc))[:1000]})
        self.ready.set()
        await self.drain_queue()

    async def run(self, run: Run) -> None:
        import azure.cognitiveservices.speech as speechsdk

        from rtlab.audio import Resampler
        from rtlab.protocol import AUDIO_FORMATS

        self._run = run
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        in_rate = AUDIO_FORMATS[run.fmt].sample_rate
        self._record("client", {"type": EVENT_PREFIX + "start", "target": self.target.to_dict(),
                                "recognizer": "ConversationTranscriber", "language": self.target.language,
                                "intermediate_diarization": self.intermediate_diarization,
                                "push_rate": PUSH_RATE})
        try:
            config = await asyncio.to_thread(self.target.speech_config)
            if self.intermediate_diarization:
                config.set_property(speechsdk.PropertyId.SpeechServiceResponse_DiarizeIntermediateResults, "true")
            stream = speechsdk.audio.PushAudioInputStream(
                speechsdk.audio.AudioStreamFormat(samples_per_second=PUSH_RATE, bits_per_sample=16, channels=1))
            transcriber = speechsdk.transcription.ConversationTranscriber(
                speech_config=config, audio_config=speechsdk.audio.AudioConfig(stream=stream))
        except Exception as exc:  # no SDK session at all: a result to record, not a crash
            await self._give_up(exc)
            return
        self._connect(transcriber)
        try:
            try:
                await asyncio.to_thread(lambda: transcriber.start_transcribing_async().get())
            except Exception as exc:  # the SDK refused to start
                await self._give_up(exc)
                return
            self.ready.set()
            resampler = None if in_rate == PUSH_RATE else Resampler(in_rate, PUSH_RATE)
            pushed = 0
            while (chunk := await self.queue.get()) is not None:
                pcm = np.ascontiguousarray(run.decode(chunk.payload), dtype=np.int16)
                if resampler is not None:
                    pcm = resampler.process(pcm)
                stream.write(pcm.tobytes())
                pushed += len(pcm)
            if resampler is not None:
                tail = resampler.flush()
                stream.write(tail.tobytes())
                pushed += len(tail)
            stream.close()
            self._record("client", {"type": EVENT_PREFIX + "audio_end", "pushed_ms": pushed * 1000.0 / PUSH_RATE})
            timeout = self.stop_timeout_s if self.stop_timeout_s is not None else run.options.settle_timeout_s
            try:
                await asyncio.wait_for(self._stopped.wait(), timeout)
            except asyncio.TimeoutError:
                log.warning("%s: no session_stopped %.0f s after the audio", self.source, timeout)
        finally:
            t0 = time.monotonic()
            with contextlib.suppress(Exception):
                await asyncio.to_thread(lambda: transcriber.stop_transcribing_async().get())
            log.debug("%s: stopped in %.2f s", self.source, time.monotonic() - t0)
            await asyncio.sleep(0)  # let callbacks queued by stop be recorded
            for signal in (transcriber.transcribing, transcriber.transcribed, transcriber.session_started,
                           transcriber.session_stopped, transcriber.speech_start_detected,
                           transcriber.speech_end_detected, transcriber.canceled):
                with contextlib.suppress(Exception):
                    signal.disconnect_all()
            self.state.closed = True
        await run.settle(self)


def _enum_name(value: Any) -> str:
    return getattr(value, "name", None) or str(value)


def _result_event(kind: str, evt: Any) -> dict:
    r = evt.result
    raw = r.json or ""
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    return {"type": EVENT_PREFIX + kind, "session_id": evt.session_id, "result_id": r.result_id,
            "text": r.text, "offset_ticks": int(r.offset), "duration_ticks": int(r.duration),
            "speaker_id": getattr(r, "speaker_id", None) or None, "reason": _enum_name(r.reason),
            "result_json": body if isinstance(body, dict) else raw[:2000]}
