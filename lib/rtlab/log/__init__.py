"""The event log (layer: log): stores every event of a run and its audio, never interprets them.

- :mod:`.eventlog` — :class:`EventLog` (create/record/close, load, tables, audio tracks);
- :mod:`.record` — one record and the checks a record line passes;
- :mod:`.reader` — fast, torn-line tolerant reading of record lines;
- :mod:`.frame` — the lazily decoded ``event`` column; :mod:`.tracks` — audio tracks beside the log.
"""

from __future__ import annotations

from .eventlog import EventLog
from .frame import EventArray, EventDtype
from .record import FORMAT_VERSION, EventLogWarning, Record

__all__ = ["FORMAT_VERSION", "EventArray", "EventDtype", "EventLog", "EventLogWarning", "Record"]
