"""Turn evidence of the local-engine sidecar: the pipeline's own events, recorded as ``local.*`` (layer: analysis).

One turn per pipeline segment: ``local.speech_started`` / ``local.speech_stopped`` give the VAD window (the
``speech_stopped`` record's time is the turn's end anchor, as for a Realtime source with server VAD), every
``local.partial`` is one append-only delta, and ``local.final`` carries the transcript and the segment's span.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rtlab.log import EventLog
from rtlab.log.reader import na
from rtlab.protocol import events as E

from .realtime import Evidence

__all__ = ["local_evidence"]


def local_evidence(log: EventLog, sources: list[str]) -> list[Evidence]:
    """Turn evidence of the local-engine ``sources`` of ``log``."""
    b = log.columns()
    if not len(b) or not sources:
        return []
    names = b["name"].astype(str).to_numpy()
    srcs = b["src"].astype(str).to_numpy()
    rows = np.flatnonzero(np.isin(srcs, sources) & np.char.startswith(names.astype(str), "local."))
    t = b["t"].to_numpy(dtype=float)
    items = [na(v) for v in b["item_id"].iloc[rows].tolist()]
    out: dict[tuple[str, str], Evidence] = {}
    for r, item, ev in zip(rows, items, log.events_at(rows), strict=True):
        if item is None or not isinstance(ev, Mapping):
            continue
        key = (srcs[r], item)
        d = out.get(key)
        if d is None:
            d = out[key] = Evidence(srcs[r], item, int(r), kind="local")
        name = names[r]
        if name == E.LOCAL_SPEECH_STARTED:
            d.t_start, d.start_ms = t[r], float(ev.get("audio_start_ms", np.nan))
        elif name == E.LOCAL_SPEECH_STOPPED:
            d.t_stop, d.end_ms = t[r], float(ev.get("speech_end_ms", np.nan))
        elif name == E.LOCAL_PARTIAL:
            d.n_deltas += 1
            if not np.isfinite(d.t_first):
                d.t_first = t[r]
            d.transcript = ev.get("text") if isinstance(ev.get("text"), str) else d.transcript
        elif name == E.LOCAL_FINAL:
            d.status, d.t_final = "completed", t[r]
            d.transcript = ev.get("transcript") if isinstance(ev.get("transcript"), str) else ""
            d.start_ms = float(ev.get("start_ms", d.start_ms))
            d.end_ms = float(ev.get("end_ms", d.end_ms))
            d.model = "local"
            if not np.isfinite(d.t_first) and d.transcript:
                d.t_first = t[r]  # a batch result: the first text is the final
    return sorted(out.values(), key=lambda d: d.first_row)
