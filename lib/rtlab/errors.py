"""The one exception root of rtlab and its few subclasses.

    RtlabError
    ├── ConfigError      a session configuration breaks a provider or model rule (raised before sending)
    ├── TargetError      a target cannot be built (missing endpoint, key, deployment)
    ├── AudioError       an audio file cannot be used (names the path and the reason)
    ├── EventLogError    an event log cannot be read or written
    └── ProbeError       a probe cannot run

Messages name the bad value and the fix. They never contain a secret.
"""

from __future__ import annotations


class RtlabError(Exception):
    """Root of every error rtlab raises on purpose."""


class ConfigError(RtlabError, ValueError):
    """A configuration breaks a rule; ``field``, ``model`` and ``fix`` say which and how to mend it."""

    def __init__(self, message: str, *, field: str | None = None, model: str | None = None, fix: str | None = None):
        self.field = field
        self.model = model
        self.fix = fix
        parts = [message]
        if fix:
            parts.append(f"Fix: {fix}")
        super().__init__(" ".join(parts))


class TargetError(RtlabError):
    """A connection target cannot be built from the given arguments or environment."""


class AudioError(RtlabError, ValueError):
    """An audio input cannot be used. The message names the path and the reason."""

    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class EventLogError(RtlabError):
    """An event log cannot be read or written."""


class ProbeError(RtlabError):
    """A probe cannot run at all (individual probe failures are results, not errors)."""
