"""Interactive views of a recorded (or recording) session, built on anywidget.

- :class:`Timeline` — waveform lanes (input, assistant output) and event tiers per source on one audio clock;
  click a span to play exactly that span, hover for the event's JSON, zoom and pan; ``timeline.selection``.
- :class:`EventInspector` — filter events by source, type, item, time and text; a table and the selected JSON.
- :func:`inspect` — both, linked: select in one, highlight in the other.
- :class:`LiveView` / :func:`live` — transcripts and the event count filling in while a session records.
- :class:`Microphone` — record from the browser's microphone into a running session (PCM16 24 kHz chunks).

The ES modules and CSS ship in ``rtlab/widgets/static/`` (no CDN): the views work offline in JupyterLab 4 and
VS Code. Every widget's display also carries a static PNG (:mod:`rtlab.widgets.fallback`) for nbconvert,
nbviewer and GitHub.
"""

from __future__ import annotations

from .inspector import EventInspector, InspectBox, inspect, link
from .live import LiveView, live
from .microphone import Microphone, MicrophoneError, MicrophoneSource
from .timeline import Timeline

__all__ = ["EventInspector", "InspectBox", "LiveView", "Microphone", "MicrophoneError", "MicrophoneSource",
           "Timeline", "inspect", "link", "live"]
