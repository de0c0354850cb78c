"""Keep API keys out of reprs, logs, errors, notebook outputs and files.

Three pieces:

- :func:`mask` turns a key into a short hint such as ``"sk-…abcd"`` (at most the last four characters, fewer for
  short values).
- :class:`Secret` wraps a key. It *is* a ``str`` whose text is the mask, so every accidental use (``repr``,
  ``str``, f-strings, ``%``-formatting, ``json.dumps``, concatenation into a header) shows or sends the mask, never
  the key. Only :meth:`Secret.reveal` gives the value. Pickling and copying never carry the value: a pickled secret
  remembers only the environment variable it came from and re-reads it on ``reveal()``.
- :class:`RedactingFilter` is a :class:`logging.Filter` that scrubs known secrets and key-like patterns
  (``sk-…`` keys, 32+ hex-digit Azure keys, ``Bearer`` tokens, ``api-key`` headers) from log records, including
  formatted exceptions. :func:`install_redaction` attaches it to the loggers that see handshake headers.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import threading
from collections.abc import Iterable

from .errors import TargetError

__all__ = ["RedactingFilter", "Secret", "install_redaction", "mask", "redact"]

_ELLIPSIS = "…"
#: Public prefixes that say what kind of key it is; shown in masks (they carry no secret entropy).
_PUBLIC_PREFIXES = ("sk-",)


def mask(value: str | None) -> str:
    """A short hint for a secret: a public prefix, an ellipsis and at most the last 4 characters.

    Parameters
    ----------
    value
        The secret (or ``None``).

    Returns
    -------
    str
        ``"sk-…abcd"`` for an OpenAI-style key, ``"…abcd"`` for other keys of 16+ characters, fewer visible
        characters for shorter values (a quarter of the length, so an 8-character value shows 2), and
        ``"<not set>"`` for ``None`` or ``""``.

    Examples
    --------
    >>> mask("sk-" + "x" * 20 + "abcd")
    'sk-…abcd'
    >>> mask("0123456789abcdef0123456789abcdef")
    '…cdef'
    """
    if isinstance(value, Secret):
        return str.__str__(value)
    if not value:
        return "<not set>"
    value = str(value)
    prefix = next((p for p in _PUBLIC_PREFIXES if value.startswith(p)), "")
    rest = value[len(prefix):]
    keep = min(4, len(rest) // 4)
    return f"{prefix}{_ELLIPSIS}{rest[len(rest) - keep:] if keep else ''}"


# Values of every sensitive Secret created in this process: the log filter scrubs them even when they do not
# look like a key. Held as a set of strings; a secret lives as long as the process that was given it anyway.
_KNOWN: set[str] = set()
_KNOWN_LOCK = threading.Lock()
_MIN_KNOWN_LEN = 6  # shorter values would make the filter scrub ordinary words


def _remember(value: str) -> None:
    if len(value) >= _MIN_KNOWN_LEN:
        with _KNOWN_LOCK:
            _KNOWN.add(value)


class Secret(str):
    """A secret string whose text is its mask; :meth:`reveal` gives the value.

    Parameters
    ----------
    value
        The secret itself.
    source_env
        The environment variable it was read from, if any. A pickled or deep-copied-then-pickled secret keeps only
        this name and re-reads the variable on :meth:`reveal`.
    sensitive
        ``False`` for well-known placeholders (the local emulator's ``"rtlab-local"``): still masked in output, but
        pickled with its value and not added to the log filter's list.

    Examples
    --------
    >>> key = Secret("sk-" + "x" * 20 + "wxyz")
    >>> f"{key}", repr(key)
    ('sk-…wxyz', "Secret('sk-…wxyz')")
    >>> key.reveal()[-4:]
    'wxyz'
    """

    __slots__ = ("_value", "_source_env", "_sensitive")

    def __new__(cls, value: str | Secret | None, *, source_env: str | None = None, sensitive: bool = True) -> Secret:
        if isinstance(value, Secret):
            return value
        if value is not None and not isinstance(value, str):
            raise TypeError(f"Secret needs a str, got {type(value).__name__}")
        self = super().__new__(cls, mask(value))
        self._value = value
        self._source_env = source_env
        self._sensitive = sensitive
        if value and sensitive:
            _remember(value)
        return self

    # -- access ------------------------------------------------------------------------------------------------
    def reveal(self) -> str:
        """The secret value, for handing to the SDK. Never print it."""
        if self._value is None and self._source_env:
            value = os.environ.get(self._source_env)
            if not value:
                raise TargetError(
                    f"this secret was not carried through pickling and ${self._source_env} is not set here; "
                    f"set {self._source_env} or build the target again in this process"
                )
            _remember(value)
            return value
        if self._value is None:
            raise TargetError(
                "this secret was not carried through pickling (secrets never are); build the target again "
                "in this process"
            )
        return self._value

    @property
    def source_env(self) -> str | None:
        """The environment variable the secret came from, if any."""
        return self._source_env

    def __bool__(self) -> bool:
        return bool(self._value) or bool(self._source_env)

    # -- never the value ----------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"Secret({str.__str__(self)!r})"

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return format(str.__str__(self), spec)

    def __reduce__(self):  # type: ignore[override]
        # Never pickle the value of a sensitive secret: only where to find it again.
        kept = None if self._sensitive else self._value
        return (_restore, (kept, self._source_env, self._sensitive))

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict) -> Secret:
        return self

    # -- compare by value, in constant time ---------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            a, b = self._value, other._value
            if a is None or b is None:
                return a is b and self._source_env == other._source_env
            return hmac.compare_digest(a.encode(), b.encode())
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        return hash((Secret, self._value, self._source_env))


def _restore(value: str | None, source_env: str | None, sensitive: bool) -> Secret:
    obj = str.__new__(Secret, mask(value) if value else f"{_ELLIPSIS}(${source_env})" if source_env else "<redacted>")
    obj._value = value
    obj._source_env = source_env
    obj._sensitive = sensitive
    return obj


# --------------------------------------------------------------------------------------------------------------
# Log redaction
# --------------------------------------------------------------------------------------------------------------
_PATTERNS: tuple[re.Pattern[str], ...] = (
    # Authorization / api-key headers, in dicts, reprs or raw header lines: keep the name, mask the value.
    re.compile(r"(?i)((?:authorization|api-key)['\"]?\s*[:=,]\s*\(?['\"]?(?:bearer\s+)?)([^\s'\",)]{6,})"),
    re.compile(r"(?i)(bearer\s+)([A-Za-z0-9._~+/=-]{8,})"),
    # OpenAI-style keys: sk-, sk-proj-, sk-svcacct- ...
    re.compile(r"()(sk-[A-Za-z0-9_-]{16,})"),
    # Azure keys: 32 or more hex digits.
    re.compile(r"(?i)(?<![0-9a-f])()([0-9a-f]{32,})(?![0-9a-f])"),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace known secrets and key-like substrings in ``text`` by their masks."""
    with _KNOWN_LOCK:
        known = sorted(set(_KNOWN).union(s for s in secrets if s), key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, mask(value))
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + (m.group(2) if _ELLIPSIS in m.group(2) else mask(m.group(2))), text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in each record's message, arguments and formatted exception.

    Attach it to a handler (it then sees records from every logger that reaches the handler) or to a logger
    (it then sees records created on that logger only). It never drops a record.

    Parameters
    ----------
    secrets
        Extra values to scrub besides every sensitive :class:`Secret` created in this process.
    """

    def __init__(self, secrets: Iterable[str] = (), name: str = "") -> None:
        super().__init__(name)
        self._extra = tuple(s.reveal() if isinstance(s, Secret) else s for s in secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the caller's bug; still scrub what we have
            message = f"{record.msg} {record.args}"
        record.msg = redact(message, self._extra)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self._extra)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self._extra)
        return True


#: Loggers that may print handshake headers or request options (websockets logs headers at DEBUG).
REDACTED_LOGGERS: tuple[str, ...] = (
    "websockets.client",
    "websockets.server",
    "openai",
    "openai._base_client",
    "openai.agents",
    "httpx",
    "rtlab",
)


def install_redaction(loggers: Iterable[str] = REDACTED_LOGGERS, *, root_handlers: bool = True) -> None:
    """Attach one :class:`RedactingFilter` to the given loggers and to the root logger's handlers (idempotent)."""
    targets: list[logging.Filterer] = [logging.getLogger(name) for name in loggers]
    if root_handlers:
        targets.extend(logging.getLogger().handlers)
    for target in targets:
        if not any(isinstance(f, RedactingFilter) for f in target.filters):
            target.addFilter(RedactingFilter())
