"""Where a session connects: the local emulator (the default), OpenAI, or Azure OpenAI (GA v1 or preview).

A :class:`Target` holds an endpoint, a key (as a :class:`~rtlab.secrets.Secret`) and the dialect it speaks, and hands
out the official SDK's client and connection manager, exactly per the connection table of PROTOCOL.md:

=====================  ==========================================================  ================================
dialect                SDK call                                                    URL (path + query)
=====================  ==========================================================  ================================
``openai-ga``          ``AsyncOpenAI(base_url=B/v1).realtime.connect(model=M)``    ``/v1/realtime?model=M``
  (transcription)      ``....realtime.connect(extra_query={"intent": ...})``       ``/v1/realtime?intent=transcription``
``openai-beta``        ``AsyncOpenAI(...).beta.realtime.connect(model=M)``         same, plus ``OpenAI-Beta: realtime=v1``
``azure-ga``           ``AsyncOpenAI(base_url=E/openai/v1).realtime.connect(...)`` ``/openai/v1/realtime?model=DEPLOYMENT``
``azure-preview``      ``AsyncAzureOpenAI(azure_endpoint=E, api_version=V,         ``/openai/realtime?api-version=V&deployment=D``
                       websocket_base_url=ws(s)://HOST/openai).beta.realtime...``  (``api-key`` header, ``OpenAI-Beta``)
=====================  ==========================================================  ================================

A local target speaks any of these dialects over plain ``ws://``; with ``url=None`` it starts the embedded emulator
(``rtlab.emulator.start``) on first use, once.

Targets are built from arguments or the environment (:meth:`Target.from_env`): ``RTLAB_TARGET``
(``local``/``openai``/``azure``/``azure-preview``), ``OPENAI_API_KEY``, ``AZURE_OPENAI_ENDPOINT``,
``AZURE_OPENAI_API_KEY``, ``AZURE_OPENAI_AUTH`` (``key``/``entra``), ``AZURE_OPENAI_API_VERSION``,
``AZURE_OPENAI_REALTIME_DEPLOYMENT`` and ``AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS`` (``name=model,name=model``). A
missing piece raises :class:`~rtlab.errors.TargetError` naming the variable to set. Keys never appear in a repr, an
error, a log line (:func:`~rtlab.secrets.install_redaction` runs when a client is made), a pickle or
``dataclasses.asdict`` output.

Azure without a key (no ``AZURE_OPENAI_API_KEY``, or ``AZURE_OPENAI_AUTH=entra``, or
``Target.azure(credential=...)``) signs in with Microsoft Entra ID: a :class:`~rtlab.auth.TokenProvider`
(``DefaultAzureCredential`` by default) hands the SDK a bearer token before each request and handshake
(``Authorization: Bearer <token>`` on both Azure paths). Tokens are masked like keys.
"""

from __future__ import annotations

import dataclasses
import html
import importlib
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode, urlsplit

from .auth import TokenProvider, TokenSource
from .errors import TargetError
from .protocol import DIALECTS
from .protocol.deployments import parse_deployments
from .secrets import Secret, install_redaction, mask, redact

if TYPE_CHECKING:  # pragma: no cover
    from openai import AsyncAzureOpenAI, AsyncOpenAI

    from .config import SessionConfig

__all__ = [
    "DEFAULT_AZURE_PREVIEW_API_VERSION",
    "LOCAL_API_KEY",
    "OPENAI_URL",
    "Target",
    "parse_deployments",
]

Provider = Literal["local", "openai", "azure"]
Kind = Literal["realtime", "transcription"]

OPENAI_URL = "https://api.openai.com"
DEFAULT_AZURE_PREVIEW_API_VERSION = "2025-04-01-preview"
#: The local emulator's key: a public placeholder, still masked like any key.
LOCAL_API_KEY = "rtlab-local"

_PROVIDER_DIALECTS: dict[str, tuple[str, ...]] = {
    "openai": ("openai-ga", "openai-beta"),
    "azure": ("azure-ga", "azure-preview"),
    "local": tuple(DIALECTS),
}
_TARGET_NAMES = ("local", "openai", "azure", "azure-preview")


def _root_url(url: str, *, what: str, env: str | None, strip: tuple[str, ...] = ()) -> str:
    """Validate an http(s)/ws(s) endpoint and return it as ``scheme://host[:port][/prefix]`` without a trailing /."""
    hint = f" (from ${env})" if env else ""
    shown = redact(str(url))
    parts = urlsplit(str(url).strip())
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        raise TargetError(f"{what} {shown!r}{hint} is not an http(s) URL; expected e.g. "
                          "'https://my-resource.openai.azure.com'" + (f"; set {env}" if env else ""))
    if parts.query or parts.fragment or parts.username or parts.password:
        raise TargetError(f"{what} {shown!r}{hint} must not carry a query, fragment or credentials; give the key "
                          "separately")
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/")
    for suffix in strip:
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return f"{scheme}://{parts.netloc}{path}"


def _ws(root: str) -> str:
    return "ws" + root[len("http"):]  # http://… -> ws://…, https://… -> wss://…


class _EmulatorSlot:
    """The embedded emulator a local target started, shared by copies of the target (``with_dialect``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.handle: Any = None

    def ensure(self, profile: str, seed: int | None, deployments: Mapping[str, str] | None = None,
               timing: str | None = None) -> str:
        """Start the emulator once (playing ``profile``; with ``deployments``: a resource with exactly those;
        ``timing``: ``"modelled"`` or ``"local"``, default the profile's)."""
        with self._lock:
            if self.handle is None:
                # Imported here: the emulator is only needed when a local target is actually used.
                emulator = importlib.import_module("rtlab.emulator")
                played = emulator.load_profile(profile).with_deployments(dict(deployments)) if deployments \
                    else profile
                self.handle = emulator.start(profile=played, seed=seed, timing=timing)
            return str(self.handle.url)

    def stop(self) -> None:
        with self._lock:
            handle, self.handle = self.handle, None
        if handle is not None:
            handle.stop()

    # A copy or a pickle of a target does not own the running emulator.
    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def __deepcopy__(self, memo: dict) -> _EmulatorSlot:
        return self

    def __repr__(self) -> str:
        return "<emulator running>" if self.handle is not None else "<emulator not started>"


@dataclass(frozen=True, repr=False)
class Target:
    """A Realtime endpoint, its key and its dialect. Build with :meth:`local`, :meth:`openai`, :meth:`azure` or
    :meth:`from_env`.

    Attributes
    ----------
    provider
        ``"local"``, ``"openai"`` or ``"azure"``.
    dialect
        One of :data:`rtlab.protocol.DIALECTS`; decides the client, the URL and the payload shape.
    base_url
        The endpoint root (``https://api.openai.com``, ``https://RES.openai.azure.com``, ``http://127.0.0.1:PORT``);
        ``None`` for a local target whose emulator starts on first use.
    api_key
        The key, masked everywhere (:class:`~rtlab.secrets.Secret`); unset when :attr:`token_provider` is.
    api_version
        Azure preview only.
    realtime_deployment
        Azure: the voice deployment (``AZURE_OPENAI_REALTIME_DEPLOYMENT``): what a voice session connects to when
        no model is named, or when the named model is the one it serves.
    realtime_model
        Azure: the model behind :attr:`realtime_deployment` when known (``AZURE_OPENAI_REALTIME_DEPLOYMENT=
        name=model``), so the rules can judge it.
    deployments
        Azure: ``{deployment_name: model}`` of the transcription deployments (``AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS``).
        A :class:`~rtlab.config.SessionConfig` speaks in model names; :meth:`render` and :meth:`connect` send the
        deployment that serves each model (:meth:`deployment_for`).
    provider_profile
        Local only: the emulator profile (``"openai"``, ``"azure"`` or a path to a probe-saved profile).
    seed
        Local only: the emulator's seed (reproducible ids and outputs).
    timing
        Local only: the embedded emulator's Realtime timing, ``"modelled"`` (transcripts and answers arrive when
        published measurements say; the bundled profiles' default) or ``"local"`` (the bare local engines).
    token_provider
        Azure only: Entra ID bearer tokens instead of a key (:class:`~rtlab.auth.TokenProvider`).
    """

    provider: Provider
    dialect: str
    base_url: str | None
    api_key: Secret
    api_version: str | None = None
    realtime_deployment: str | None = None
    deployments: dict[str, str] | None = field(default=None, hash=False)
    realtime_model: str | None = None
    provider_profile: str | None = None
    seed: int | None = None
    timing: str | None = None
    token_provider: TokenProvider | None = field(default=None, compare=False, hash=False)
    _emulator: _EmulatorSlot = field(default_factory=_EmulatorSlot, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.provider not in _PROVIDER_DIALECTS:
            raise TargetError(f"provider {self.provider!r} is not one of {', '.join(_PROVIDER_DIALECTS)}")
        if self.dialect not in _PROVIDER_DIALECTS[self.provider]:
            raise TargetError(f"dialect {self.dialect!r} is not spoken by provider {self.provider!r}; use one of "
                              f"{', '.join(_PROVIDER_DIALECTS[self.provider])}")
        if not isinstance(self.api_key, Secret):
            object.__setattr__(self, "api_key", Secret(self.api_key))
        if self.token_provider is not None:
            if not isinstance(self.token_provider, TokenProvider):
                raise TargetError(f"token_provider must be a rtlab.auth.TokenProvider, got "
                                  f"{type(self.token_provider).__name__}")
            if self.provider == "openai":
                raise TargetError("Entra ID tokens apply to Azure (and local Azure emulators), not OpenAI; give "
                                  "OpenAI an API key")
            if self.api_key:
                raise TargetError("give an Azure target a key or an Entra ID credential, not both")
        elif not self.api_key:
            raise TargetError(f"{self.provider} target has no API key")
        if self.base_url is None and self.provider != "local":
            raise TargetError(f"{self.provider} target needs an endpoint URL")
        if self.base_url is not None:
            object.__setattr__(self, "base_url", _root_url(self.base_url, what="endpoint", env=None))
        if self.dialect == "azure-preview" and not self.api_version:
            raise TargetError("azure-preview needs an api_version (e.g. "
                              f"{DEFAULT_AZURE_PREVIEW_API_VERSION!r}); set AZURE_OPENAI_API_VERSION")
        if self.deployments is not None:
            object.__setattr__(self, "deployments", parse_deployments(self.deployments))
        if self.realtime_deployment and "=" in self.realtime_deployment:  # "name=model"
            (name, model), = parse_deployments(self.realtime_deployment,
                                               source="AZURE_OPENAI_REALTIME_DEPLOYMENT").items()
            object.__setattr__(self, "realtime_deployment", name)
            object.__setattr__(self, "realtime_model", self.realtime_model or model)

    # ==========================================================================================================
    # Constructors
    # ==========================================================================================================
    @classmethod
    def local(cls, url: str | None = None, *, provider_profile: str = "openai", dialect: str | None = None,
              api_key: str = LOCAL_API_KEY, seed: int | None = None, api_version: str | None = None,
              deployments: Mapping[str, str] | str | None = None,
              realtime_deployment: str | None = None, timing: str | None = None) -> Target:
        """The local emulator: at ``url`` (e.g. ``"http://127.0.0.1:8765"`` from ``rtlab serve``), or started
        in-process on first use when ``url`` is None.

        Parameters
        ----------
        provider_profile
            Which provider the emulator plays: ``"openai"``, ``"azure"`` or a probe-saved profile path.
        dialect
            Default: ``azure-ga`` for an azure profile, else ``openai-ga``. Any dialect works locally.
        api_key
            The key to present; the default ``"rtlab-local"`` is accepted by an emulator started without
            ``--api-key``.
        timing
            ``"modelled"`` or ``"local"`` for the embedded emulator (default: the profile's; see :attr:`timing`);
            :attr:`emulator_timing` says which one ran.
        deployments, realtime_deployment
            Azure deployment names, as for :meth:`azure` (``{name: model}``; ``"name=model"``). Without ``url``,
            the embedded emulator then plays a resource with exactly these deployments (like ``rtlab serve
            --deployment NAME=MODEL``), so names that differ from the models can be rehearsed offline.
        """
        azure = "azure" in str(provider_profile).lower()
        dialect = dialect or ("azure-ga" if azure else "openai-ga")
        if dialect == "azure-preview":
            api_version = api_version or DEFAULT_AZURE_PREVIEW_API_VERSION
        key = Secret(api_key, sensitive=api_key != LOCAL_API_KEY)
        if timing is not None and timing not in ("modelled", "local"):
            raise TargetError(f"timing {timing!r} is not 'modelled' or 'local'")
        if timing is not None and url is not None:
            raise TargetError("timing= applies to the embedded emulator; an `rtlab serve` at a URL chose its own "
                              "(rtlab serve --timing modelled|local)")
        return cls("local", dialect, url, key, api_version=api_version, realtime_deployment=realtime_deployment,
                   deployments=parse_deployments(deployments), provider_profile=str(provider_profile), seed=seed,
                   timing=timing)

    @classmethod
    def openai(cls, api_key: str | None = None, *, dialect: str = "openai-ga", base_url: str | None = None
               ) -> Target:
        """OpenAI. ``api_key`` defaults to ``$OPENAI_API_KEY``; ``base_url`` to ``https://api.openai.com``."""
        key = _key(api_key, "OPENAI_API_KEY", "OpenAI")
        root = _root_url(base_url, what="base_url", env=None, strip=("/v1",)) if base_url else OPENAI_URL
        return cls("openai", dialect, root, key)

    @classmethod
    def azure(cls, endpoint: str | None = None, api_key: str | None = None, api_version: str | None = None, *,
              preview: bool = False, deployments: Mapping[str, str] | str | None = None,
              realtime_deployment: str | None = None,
              credential: TokenSource | TokenProvider | None = None) -> Target:
        """Azure OpenAI: GA v1 (``/openai/v1/realtime``, no api-version) or, with ``preview=True``, the preview
        API (``/openai/realtime?api-version=…``, beta shape).

        Missing arguments come from ``AZURE_OPENAI_ENDPOINT``, ``AZURE_OPENAI_API_KEY``,
        ``AZURE_OPENAI_API_VERSION`` (preview only; default ``2025-04-01-preview``),
        ``AZURE_OPENAI_REALTIME_DEPLOYMENT`` and ``AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS``.

        Sign-in: a key (``api_key`` or ``AZURE_OPENAI_API_KEY``), or Microsoft Entra ID when ``credential`` is
        given (an azure-identity credential, a callable returning a token, or a
        :class:`~rtlab.auth.TokenProvider`), when ``AZURE_OPENAI_AUTH=entra``, or when no key is set
        (``DefaultAzureCredential``: ``az login``, a service principal in ``AZURE_CLIENT_ID``/``AZURE_TENANT_ID``/
        ``AZURE_CLIENT_SECRET``, or a managed identity; the identity needs the role "Cognitive Services OpenAI
        User"). ``AZURE_OPENAI_AUTH=key`` insists on a key.
        """
        env_endpoint = endpoint is None
        endpoint = endpoint if endpoint is not None else os.environ.get("AZURE_OPENAI_ENDPOINT")
        if not endpoint:
            raise TargetError("Azure needs an endpoint: set AZURE_OPENAI_ENDPOINT (e.g. "
                              "'https://my-resource.openai.azure.com') or pass endpoint=")
        root = _root_url(endpoint, what="Azure endpoint", env="AZURE_OPENAI_ENDPOINT" if env_endpoint else None,
                         strip=("/openai/v1", "/openai"))
        key, tokens = _azure_auth(api_key, credential)
        if preview:
            api_version = api_version or os.environ.get("AZURE_OPENAI_API_VERSION") or \
                DEFAULT_AZURE_PREVIEW_API_VERSION
        elif api_version is not None:
            raise TargetError(f"api_version={api_version!r} applies to the Azure preview API only; Azure GA v1 "
                              "takes no api-version. Drop it, or pass preview=True")
        if deployments is None:
            deployments = parse_deployments(os.environ.get("AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS") or None,
                                            source="AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS")
        realtime_deployment = realtime_deployment or os.environ.get("AZURE_OPENAI_REALTIME_DEPLOYMENT") or None
        return cls("azure", "azure-preview" if preview else "azure-ga", root, key, api_version=api_version,
                   realtime_deployment=realtime_deployment, deployments=parse_deployments(deployments),
                   token_provider=tokens)

    @classmethod
    def from_env(cls, name: str = "auto") -> Target:
        """A target chosen by name, or by ``$RTLAB_TARGET`` when ``name="auto"`` (default: ``local``).

        ``local`` starts the embedded emulator; ``openai`` needs ``OPENAI_API_KEY``; ``azure`` (GA v1) and
        ``azure-preview`` need ``AZURE_OPENAI_ENDPOINT`` and ``AZURE_OPENAI_API_KEY`` or Entra ID (see
        :meth:`azure`). A real service is never chosen implicitly, so a notebook spends nothing unless
        ``RTLAB_TARGET`` says so.
        """
        if name == "auto":
            name = (os.environ.get("RTLAB_TARGET") or "local").strip().lower()
            source = " (from $RTLAB_TARGET)"
        else:
            source = ""
        if name not in _TARGET_NAMES:
            raise TargetError(f"target {name!r}{source} is not one of {', '.join(_TARGET_NAMES)}; set RTLAB_TARGET "
                              "to one of them")
        if name == "local":
            return cls.local()
        if name == "openai":
            return cls.openai()
        return cls.azure(preview=name == "azure-preview")

    def with_dialect(self, dialect: str) -> Target:
        """The same endpoint and key speaking another dialect (a local emulator already running is shared)."""
        api_version = self.api_version
        if dialect == "azure-preview" and not api_version:
            api_version = os.environ.get("AZURE_OPENAI_API_VERSION") or DEFAULT_AZURE_PREVIEW_API_VERSION
        return dataclasses.replace(self, dialect=dialect, api_version=api_version)

    # ==========================================================================================================
    # Where, and with which client
    # ==========================================================================================================
    @property
    def url(self) -> str:
        """The endpoint root over http(s). For a local target without URL this starts the emulator."""
        if self.base_url is not None:
            return self.base_url
        return _root_url(self._emulator.ensure(self.provider_profile or "openai", self.seed,
                                               self._emulated_deployments(), self.timing),
                         what="emulator URL", env=None)

    def _emulated_deployments(self) -> dict[str, str] | None:
        """The deployments an embedded emulator plays for this local target: exactly those the target names (its
        voice deployment, as ``gpt-realtime-2.1`` when its model is not stated), or None (the profile's own)."""
        if self.deployments is None and not self.realtime_deployment:
            return None
        from .protocol.catalogue import DEFAULT_VOICE_MODEL

        out = dict(self.deployments or {})
        if self.realtime_deployment:
            out[self.realtime_deployment] = self.realtime_model or DEFAULT_VOICE_MODEL
        return out

    @property
    def shape(self) -> str:
        """``"ga"`` or ``"beta"``: the payload shape of :attr:`dialect`."""
        return DIALECTS[self.dialect]

    @property
    def is_local(self) -> bool:
        return self.provider == "local"

    @property
    def emulator_timing(self) -> str | None:
        """The Realtime timing model of the embedded emulator (``"modelled"`` or ``"local"``; starts it), or None:
        not a local target, or an ``rtlab serve`` at a URL (its start-up line says which timing it uses)."""
        if not self.is_local or self.base_url is not None:
            return None
        _ = self.url  # started on first use
        return getattr(self._emulator.handle, "timing", None)

    @property
    def auth(self) -> str:
        """How the target signs in: ``"key"`` or ``"entra"`` (Microsoft Entra ID bearer tokens)."""
        return "entra" if self.token_provider is not None else "key"

    def _ws_base(self) -> str | None:
        """The SDK's ``websocket_base_url``, or None to let it derive one from ``base_url``."""
        root = self.url
        if self.dialect == "azure-preview":
            return _ws(root) + "/openai"
        if self.dialect == "openai-beta" and root.startswith("http://"):
            # The beta connection manager always uses wss:// unless told otherwise.
            return _ws(root) + "/v1"
        return None

    def client(self) -> AsyncOpenAI | AsyncAzureOpenAI:
        """A new official SDK client for this target (``AsyncAzureOpenAI`` for azure-preview, else ``AsyncOpenAI``)."""
        from openai import AsyncAzureOpenAI, AsyncOpenAI

        install_redaction()
        root = self.url
        if self.token_provider is not None:
            # Entra ID: the SDK awaits the provider before every request and handshake and sends
            # "Authorization: Bearer <token>" (GA v1: as its api_key provider; preview: azure_ad_token_provider).
            if self.dialect == "azure-preview":
                return AsyncAzureOpenAI(azure_endpoint=root, api_version=self.api_version,
                                        azure_ad_token_provider=self.token_provider.aget,
                                        websocket_base_url=self._ws_base())
            prefix = "/openai/v1" if self.dialect == "azure-ga" else "/v1"
            return AsyncOpenAI(api_key=self.token_provider.aget, base_url=root + prefix,
                               websocket_base_url=self._ws_base())
        key = self.api_key.reveal()
        if self.dialect == "azure-preview":
            return AsyncAzureOpenAI(azure_endpoint=root, api_version=self.api_version, api_key=key,
                                    websocket_base_url=self._ws_base())
        prefix = "/openai/v1" if self.dialect == "azure-ga" else "/v1"
        return AsyncOpenAI(api_key=key, base_url=root + prefix, websocket_base_url=self._ws_base())

    # ==========================================================================================================
    # Models and deployments
    # ==========================================================================================================
    @property
    def uses_deployments(self) -> bool:
        """True when names on the wire are Azure deployment names (an Azure target or an emulated Azure one)."""
        return self.provider == "azure" or self.dialect.startswith("azure")

    def known_deployments(self) -> dict[str, str]:
        """``{deployment name: model}`` of every deployment whose model is known (voice and transcription)."""
        out = dict(self.deployments or {})
        if self.realtime_deployment and self.realtime_model:
            out[self.realtime_deployment] = self.realtime_model
        return out

    def _deployment_list(self) -> str:
        names = [f"{d} ({m})" for d, m in self.known_deployments().items()]
        if self.realtime_deployment and not self.realtime_model:
            names.insert(0, f"{self.realtime_deployment} (voice)")
        return ", ".join(names) or "none configured (set AZURE_OPENAI_REALTIME_DEPLOYMENT and " \
            "AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS)"

    def deployment_for(self, name: str | None, *, kind: Literal["voice", "transcription"]) -> str | None:
        """The name to send for ``name`` (a model or a deployment): the deployment serving it on Azure, the model
        itself elsewhere.

        Voice: ``None`` means the target's voice model (``gpt-realtime-2.1`` on OpenAI, the configured
        :attr:`realtime_deployment` on Azure). A model name maps to the deployment that serves it, or to the voice
        deployment when its model is not stated. Transcription: a model name maps to the deployment that serves
        it; an unknown name is sent as written (the rules say what is wrong with it).

        Raises
        ------
        TargetError
            Azure voice: a name that is neither a deployment nor a model one serves (the message lists them).
        """
        from .protocol.catalogue import DEFAULT_VOICE_MODEL, api_of

        if not self.uses_deployments:
            return (name or DEFAULT_VOICE_MODEL) if kind == "voice" else name
        known = self.known_deployments()
        if kind == "voice":
            if name is None or name == self.realtime_deployment:
                if self.realtime_deployment:
                    return self.realtime_deployment
                if self.provider == "azure":
                    raise TargetError("an Azure voice session needs the name of your voice deployment: set "
                                      "AZURE_OPENAI_REALTIME_DEPLOYMENT (or pass realtime_deployment=)")
                return DEFAULT_VOICE_MODEL  # an emulated resource whose deployments are named after their models
            if name in known:
                return name
            serving = [d for d, m in known.items() if m == name]
            if len(serving) == 1:
                return serving[0]
            if not self.realtime_deployment:
                return name  # no voice deployment configured: deployments named after their models
            if not self.realtime_model and api_of(name) == "realtime":
                return self.realtime_deployment  # the resource's voice deployment, whose model is not stated
            return self._unknown(name)
        if name is None or name in known:
            return name
        serving = [d for d, m in (self.deployments or {}).items() if m == name]
        return serving[0] if len(serving) == 1 else name

    def _unknown(self, name: str) -> str:
        raise TargetError(f"{name!r} is neither a deployment of this Azure resource nor a model one of its "
                          f"deployments serves; deployments: {self._deployment_list()}. Name a deployment, or add "
                          "yours to AZURE_OPENAI_REALTIME_DEPLOYMENT / AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS "
                          "(name=model)")

    def model_of(self, name: str | None) -> str | None:
        """The model behind a deployment name (the name itself when it is a model or unknown)."""
        if name is None:
            return None
        return self.known_deployments().get(name, name)

    def wire_config(self, config: SessionConfig) -> SessionConfig:
        """``config`` with the names this target sends: Azure deployment names for the voice and transcription
        models (unchanged elsewhere)."""
        import dataclasses as _dc

        from .config import Transcription

        if not self.uses_deployments:
            return config
        changes: dict[str, Any] = {}
        if config.kind == "realtime" and config.model is not None:
            changes["model"] = self.deployment_for(config.model, kind="voice")
        tx = config.transcription
        if isinstance(tx, Transcription) and tx.model:
            wire = self.deployment_for(tx.model, kind="transcription")
            if wire != tx.model:
                changes["transcription"] = _dc.replace(tx, model=wire)
        return _dc.replace(config, **changes) if changes else config

    def _connect_args(self, kind: str, model: str | None) -> tuple[bool, dict[str, Any]]:
        """(beta client?, keyword arguments for ``connect``) per the connection table."""
        if kind not in ("realtime", "transcription"):
            raise TargetError(f"kind {kind!r} is not 'realtime' or 'transcription'")
        beta = self.shape == "beta"
        if kind == "realtime":
            return beta, {"model": self.deployment_for(model, kind="voice")}
        query = {"intent": "transcription"}
        if self.dialect == "azure-preview":
            # The Azure client needs a deployment for the URL even for a transcription session.
            return True, {"model": self._transcription_deployment(model), "extra_query": query}
        if model is not None:
            raise TargetError(f"a {self.dialect} transcription session connects with intent=transcription and no "
                              f"model (got model={model!r}); put the transcription model in the SessionConfig")
        if beta:
            from openai import omit

            return True, {"model": omit, "extra_query": query}
        return False, {"extra_query": query}

    def _transcription_deployment(self, model: str | None) -> str:
        if model:
            return self.deployment_for(model, kind="transcription") or model
        if self.deployments:
            return next(iter(self.deployments))
        if self.realtime_deployment:
            return self.realtime_deployment
        if self.provider == "local":
            from .protocol.catalogue import DEFAULT_VOICE_MODEL

            return DEFAULT_VOICE_MODEL
        raise TargetError("an Azure preview transcription session needs a deployment name for the URL: set "
                          "AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS (name=model,...) or pass model=")

    def connect(self, kind: Kind = "realtime", model: str | None = None, **options: Any) -> Any:
        """The SDK's async connection manager for a session (use with ``async with``).

        Parameters
        ----------
        kind
            ``"realtime"`` (voice session; ``model`` is the voice model or Azure deployment, default
            ``gpt-realtime`` / ``$AZURE_OPENAI_REALTIME_DEPLOYMENT``) or ``"transcription"`` (``intent=transcription``;
            no model except on azure-preview, where it is the deployment in the URL).
        options
            Passed to the SDK's ``connect`` (``extra_headers``, ``websocket_connection_options``, ...);
            ``extra_query`` is merged.
        """
        beta, kwargs = self._connect_args(kind, model)
        if "extra_query" in options:
            kwargs["extra_query"] = {**kwargs.get("extra_query", {}), **options.pop("extra_query")}
        client = self.client()
        realtime = client.beta.realtime if beta else client.realtime
        return realtime.connect(**kwargs, **options)

    def url_for(self, kind: Kind = "realtime", model: str | None = None) -> str:
        """The WebSocket URL the SDK opens for :meth:`connect` (no key in it: keys travel in headers)."""
        _, kwargs = self._connect_args(kind, model)
        root = _ws(self.url)
        query: dict[str, str] = {}
        model_arg = kwargs.get("model")
        if self.dialect == "azure-preview":
            query.update(kwargs.get("extra_query", {}))
            query.update({"api-version": str(self.api_version), "deployment": str(model_arg)})
            return f"{root}/openai/realtime?{urlencode(query)}"
        if isinstance(model_arg, str):
            query["model"] = model_arg
        query.update(kwargs.get("extra_query", {}))
        prefix = "/openai/v1" if self.dialect == "azure-ga" else "/v1"
        return f"{root}{prefix}/realtime?{urlencode(query)}"

    def headers_for(self) -> dict[str, str]:
        """The auth and dialect headers the SDK sends on the handshake, with the key masked."""
        if self.token_provider is not None:
            headers = {"Authorization": "Bearer <Entra ID token>"}
        elif self.dialect == "azure-preview":
            headers = {"api-key": mask(self.api_key)}
        else:
            headers = {"Authorization": f"Bearer {mask(self.api_key)}"}
        if self.shape == "beta":
            headers["OpenAI-Beta"] = "realtime=v1"
        return headers

    def render(self, config: SessionConfig, *, validate: bool = True) -> dict[str, Any]:
        """The client event that configures ``config`` on this target: its dialect, and on Azure the deployment
        names serving its models (the rules judge the models behind them)."""
        from .config import render

        deployments = (self.known_deployments() or None) if self.uses_deployments and (
            self.deployments is not None or self.realtime_model) else None
        return render(self.wire_config(config), self.dialect, deployments=deployments, validate=validate)

    def stop(self) -> None:
        """Stop the embedded emulator this target started (no-op otherwise)."""
        self._emulator.stop()

    # ==========================================================================================================
    # Display: never the key
    # ==========================================================================================================
    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready description with the key masked."""
        return {
            "provider": self.provider,
            "dialect": self.dialect,
            "base_url": self.base_url,
            "api_key": str(self.api_key),
            "auth": "key" if self.token_provider is None else f"entra ({self.token_provider.kind})",
            "api_version": self.api_version,
            "realtime_deployment": self.realtime_deployment,
            "realtime_model": self.realtime_model,
            "deployments": dict(self.deployments) if self.deployments is not None else None,
            "provider_profile": self.provider_profile,
            "seed": self.seed,
            "timing": self.timing,
        }

    def __repr__(self) -> str:
        where = self.base_url or ("<embedded emulator, " + ("running" if self._emulator.handle else "not started")
                                  + ">")
        extra = f", profile={self.provider_profile!r}" if self.provider == "local" else ""
        extra += f", timing={self.timing!r}" if self.timing else ""
        auth = f"key={self.api_key}" if self.token_provider is None else f"auth={self.token_provider!r}"
        return f"Target({self.provider}, {self.dialect}, {where}, {auth}{extra})"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'><code>"
            f"{html.escape('' if v is None else str(v))}</code></td></tr>"
            for k, v in self.to_dict().items() if v is not None
        )
        return f"<table><caption style='text-align:left'><b>Target</b></caption>{rows}</table>"


_AZURE_AUTH_VALUES = ("key", "entra")


def _azure_auth(api_key: str | None, credential: TokenSource | TokenProvider | None
                ) -> tuple[Secret, TokenProvider | None]:
    """(key, token provider) for an Azure target: a key, or Entra ID (see :meth:`Target.azure`)."""
    mode = (os.environ.get("AZURE_OPENAI_AUTH") or "").strip().lower() or None
    if mode is not None and mode not in _AZURE_AUTH_VALUES:
        raise TargetError(f"AZURE_OPENAI_AUTH={mode!r} is not one of {', '.join(_AZURE_AUTH_VALUES)}; set 'key' to "
                          "sign in with AZURE_OPENAI_API_KEY or 'entra' for Microsoft Entra ID")
    if credential is not None:
        if api_key is not None:
            raise TargetError("pass api_key= or credential=, not both")
        provider = credential if isinstance(credential, TokenProvider) else TokenProvider(credential)
        return Secret(None), provider
    if mode == "entra":
        if api_key is not None:
            raise TargetError("AZURE_OPENAI_AUTH=entra signs in with Entra ID: do not pass api_key= (or unset "
                              "AZURE_OPENAI_AUTH)")
        return Secret(None), TokenProvider()
    if mode == "key" or api_key is not None or os.environ.get("AZURE_OPENAI_API_KEY"):
        return _key(api_key, "AZURE_OPENAI_API_KEY", "Azure"), None
    # No key anywhere: keyless sign-in, if azure-identity is there to do it.
    try:
        importlib.import_module("azure.identity")
    except ImportError:
        raise TargetError("Azure needs an API key or Entra ID: set AZURE_OPENAI_API_KEY, or install azure-identity "
                          "(pip install 'rtlab[azure]') and sign in (az login)") from None
    return Secret(None), TokenProvider()


def _key(value: str | None, env: str, who: str) -> Secret:
    if value is not None:
        if not value:
            raise TargetError(f"{who} api_key is empty; pass the key or set {env}")
        return Secret(value)
    found = os.environ.get(env)
    if not found:
        raise TargetError(f"{who} needs an API key: set {env} (or pass api_key=)")
    return Secret(found, source_env=env)
