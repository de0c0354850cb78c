"""Keyless sign-in to Azure OpenAI: Microsoft Entra ID bearer tokens for the openai SDK (layer: targets).

A :class:`TokenProvider` turns an ``azure-identity`` credential (``DefaultAzureCredential`` unless you pass
another), an async credential, or any callable returning a token string into what the openai SDK wants:

- ``AsyncOpenAI(api_key=provider.aget)`` for Azure GA v1 (``/openai/v1``): the SDK awaits it before each request
  and before the WebSocket handshake and sends ``Authorization: Bearer <token>``;
- ``AsyncAzureOpenAI(azure_ad_token_provider=provider.aget)`` for the Azure preview API: the same header.

Tokens are requested for :data:`AZURE_SCOPE` through ``azure.identity.get_bearer_token_provider`` (which caches a
token and refreshes it before it expires); a synchronous credential runs on a worker thread so it never blocks
the event loop. Tokens are secrets: every token handed out is registered with :mod:`rtlab.secrets` (so the log
filter masks it), and a provider's repr, str, pickle and copies never carry one. A pickled provider keeps only
what it was: one built on ``DefaultAzureCredential`` makes a new credential when used again; one built on your own
credential cannot be rebuilt and says so.

``azure-identity`` is an optional dependency (``pip install 'rtlab[azure]'``); a callable token source needs
only itself.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from .errors import TargetError
from .secrets import Secret

__all__ = ["AZURE_SCOPE", "TokenProvider", "TokenSource"]

#: The scope Azure OpenAI data-plane tokens are issued for.
AZURE_SCOPE = "https://cognitiveservices.azure.com/.default"
_INSTALL_HINT = "install azure-identity (pip install 'rtlab[azure]')"


@runtime_checkable
class _TokenCredential(Protocol):
    """azure.core's TokenCredential / AsyncTokenCredential: ``get_token(*scopes) -> AccessToken``."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any: ...


#: What a :class:`TokenProvider` accepts: a (sync or async) azure-identity credential, or a callable returning a
#: token string (or an awaitable of one).
TokenSource = _TokenCredential | Callable[[], "str | Awaitable[str]"]


def _plain(token: Any) -> str:
    """A token as a plain ``str`` (the SDK bypasses ``str`` subclasses), registered with the log filter."""
    if isinstance(token, Secret):
        token = token.reveal()
    if not isinstance(token, str) or not token:
        raise TargetError("the Entra ID token provider returned no token (expected a non-empty string); check the "
                          "credential, or sign in again (az login)")
    Secret(token)  # registers the value with rtlab.secrets' redaction
    return str.__str__(token)


class TokenProvider:
    """Entra ID bearer tokens for Azure OpenAI, never shown.

    Parameters
    ----------
    source
        ``None`` for ``azure.identity.DefaultAzureCredential()`` (made on first use), an azure-identity credential
        (sync or ``azure.identity.aio``), or a callable returning a token string (or an awaitable of one).
    scope
        The token scope; Azure OpenAI wants :data:`AZURE_SCOPE`.

    Examples
    --------
    >>> provider = TokenProvider(lambda: "token-value-from-somewhere")
    >>> provider.get() == "token-value-from-somewhere", repr(provider)
    (True, 'TokenProvider(<lambda>)')
    """

    def __init__(self, source: TokenSource | None = None, *, scope: str = AZURE_SCOPE) -> None:
        if source is not None and not (isinstance(source, _TokenCredential) or callable(source)):
            raise TargetError(f"credential must be an azure-identity credential or a callable returning a token, got "
                              f"{type(source).__name__}")
        self._source = source
        self._scope = scope
        self._default = source is None
        self._lock = threading.Lock()
        self._sync: Callable[[], str] | None = None
        self._async: Callable[[], Awaitable[str]] | None = None
        self._unusable: str | None = None
        self._kind_name: str | None = None  # set on a provider restored from a pickle

    # -- what it is, never what it holds ------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """``"DefaultAzureCredential"``, the credential's class name, or the callable's name."""
        if self._kind_name:
            return self._kind_name
        if self._default:
            return "DefaultAzureCredential"
        src = self._source
        if isinstance(src, _TokenCredential):
            return type(src).__name__
        return getattr(src, "__name__", None) or type(src).__name__

    @property
    def scope(self) -> str:
        return self._scope

    def __repr__(self) -> str:
        return f"TokenProvider({self.kind})"

    __str__ = __repr__

    def __reduce__(self):  # never a token, never a credential object: only what to rebuild
        return (_restore, (self._default, self.kind, self._scope))

    def __copy__(self) -> TokenProvider:
        return self

    def __deepcopy__(self, memo: dict) -> TokenProvider:
        return self

    # -- tokens -------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        if self._unusable:
            raise TargetError(self._unusable)
        with self._lock:
            if self._sync is not None or self._async is not None:
                return
            src = self._source
            if src is None:
                try:
                    from azure.identity import DefaultAzureCredential
                except ImportError:
                    raise TargetError(f"keyless Azure sign-in needs azure-identity: {_INSTALL_HINT}, or set "
                                      "AZURE_OPENAI_API_KEY") from None
                src = self._source = DefaultAzureCredential()
            if isinstance(src, _TokenCredential):
                if inspect.iscoroutinefunction(src.get_token):
                    try:
                        from azure.identity.aio import get_bearer_token_provider as aio_provider
                    except ImportError:
                        raise TargetError(f"an async Azure credential needs azure-identity: {_INSTALL_HINT}") from None
                    self._async = aio_provider(src, self._scope)
                else:
                    try:
                        from azure.identity import get_bearer_token_provider
                    except ImportError:
                        raise TargetError(f"an Azure credential needs azure-identity: {_INSTALL_HINT}") from None
                    self._sync = get_bearer_token_provider(src, self._scope)
            elif inspect.iscoroutinefunction(src):
                self._async = src  # type: ignore[assignment]
            else:
                self._sync = src  # type: ignore[assignment]

    def get(self) -> str:
        """A current token (blocking; for sync code)."""
        self._build()
        if self._sync is not None:
            token = self._sync()
            if inspect.isawaitable(token):
                raise TargetError("this token source is asynchronous; use `await provider.aget()`")
            return _plain(token)
        raise TargetError("this token source is asynchronous; use `await provider.aget()`")

    async def aget(self) -> str:
        """A current token, awaitable: what the SDK calls before each request and handshake."""
        self._build()
        if self._async is not None:
            return _plain(await self._async())
        sync = self._sync
        assert sync is not None
        token = await asyncio.to_thread(sync)  # credentials may run a CLI or call IMDS: off the event loop
        if inspect.isawaitable(token):
            token = await token
        return _plain(token)


def _restore(default: bool, kind: str, scope: str) -> TokenProvider:
    provider = TokenProvider(None, scope=scope)
    if not default:
        provider._default = False
        provider._source = None
        provider._unusable = (f"this Entra ID credential ({kind}) was not carried through pickling (credentials "
                              "never are); build the target again in this process")
        provider._kind_name = kind
    return provider
