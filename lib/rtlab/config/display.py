"""How a configuration shows in a notebook: the logical fields and the exact payload per dialect (layer: config)."""

from __future__ import annotations

import dataclasses
import html
import json
from collections.abc import Mapping
from typing import Any

from rtlab.errors import ConfigError

from .model import DEFAULT_DIALECT, NULLABLE, UNSET, SessionConfig, Transcription, TurnDetection
from .render import render

__all__ = ["RenderedSession"]


class RenderedSession:
    """A config rendered in one dialect, for display: a table of the logical fields and the JSON to be sent."""

    def __init__(self, config: SessionConfig, dialect: str = DEFAULT_DIALECT, *,
                 deployments: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.dialect = dialect
        self.error: ConfigError | None = None
        self.payload: dict[str, Any] | None = None
        try:
            self.payload = render(config, dialect, deployments=deployments)
        except ConfigError as exc:
            self.error = exc

    def to_json(self) -> str:
        """The payload as indented JSON (raises the rule violation when the config cannot be sent)."""
        if self.error is not None:
            raise self.error
        return json.dumps(self.payload, indent=2, ensure_ascii=False)

    def __repr__(self) -> str:
        if self.error is not None:
            return f"<{self.dialect}: not sendable: {self.error}>"
        return f"<{self.dialect}>\n{self.to_json()}"

    def _repr_html_(self) -> str:
        rows = []
        for f in dataclasses.fields(self.config):
            value = getattr(self.config, f.name)
            if value is UNSET:
                shown = '<span style="color:#888">not set</span>'
            elif value is None:
                shown = "null (off)" if f.name in NULLABLE else '<span style="color:#888">not set</span>'
            else:
                if isinstance(value, (Transcription, TurnDetection)):
                    value = value.to_dict()
                shown = html.escape(json.dumps(list(value) if isinstance(value, tuple) else value,
                                               ensure_ascii=False))
            rows.append(f"<tr><th style='text-align:left'>{html.escape(f.name)}</th><td style='text-align:left'>"
                        f"<code>{shown}</code></td></tr>")
        if self.error is not None:
            sent = (f"<p style='color:#b00'><b>Not sendable in {html.escape(self.dialect)}:</b> "
                    f"{html.escape(str(self.error))}</p>")
        else:
            sent = (f"<p><b>Sent in {html.escape(self.dialect)}:</b></p>"
                    f"<pre style='text-align:left'>{html.escape(self.to_json())}</pre>")
        return ("<div class='rtlab-session-config'><table>"
                f"<caption style='text-align:left'><b>SessionConfig</b> ({html.escape(self.config.kind)})</caption>"
                + "".join(rows) + "</table>" + sent + "</div>")

