"""Azure deployment maps, ``name=model,name=model`` (layer: protocol).

On Azure a session names *deployments*, each serving one model; rtlab speaks in models and maps them with a
``{deployment name: model}`` table read from ``AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS`` / ``--deployment`` options.
"""

from __future__ import annotations

from collections.abc import Mapping

from rtlab.errors import ConfigError, TargetError

__all__ = ["DeploymentSpecError", "parse_deployments"]


class DeploymentSpecError(TargetError, ConfigError):
    """A deployment map that cannot be read (the message shows the bad entry and the expected form)."""


def parse_deployments(spec: str | Mapping[str, str] | None, *, source: str = "deployments") -> dict[str, str] | None:
    """``"name=model,name2=model2"`` (or a mapping) as ``{deployment_name: model}``; None stays None.

    A bare ``name`` maps to itself (a deployment named after its model).
    """
    if spec is None:
        return None
    if isinstance(spec, Mapping):
        items = list(spec.items())
    else:
        items = []
        for part in str(spec).split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, model = part.partition("=")
            if not name.strip() or (sep and not model.strip()):
                raise DeploymentSpecError(f"{source}: {part!r} is not 'deployment=model'; expected e.g. "
                                  "'my-whisper=gpt-realtime-whisper,my-4o=gpt-4o-transcribe'")
            items.append((name.strip(), (model if sep else name).strip()))
    out: dict[str, str] = {}
    for name, model in items:
        if not isinstance(name, str) or not isinstance(model, str) or not name or not model:
            raise DeploymentSpecError(f"{source}: deployment names and models must be non-empty strings, got {name!r}: "
                              f"{model!r}")
        out[name] = model
    return out
