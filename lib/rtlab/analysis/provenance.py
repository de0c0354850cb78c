"""Where a run's numbers come from: which engine produced each source's text, which timing its latencies follow,
and what its costs are based on (layer: analysis).

An offline run credits nothing to a service: every transcript of an emulated source comes from rtlab's local
recognizer, whatever model name the session asked for, and its latencies follow the emulator's timing model
(``modelled``: published latency figures; ``local``: the bare local engines), so tables and figures say so. The
facts come from the log's meta (what each leg recorded about itself, :meth:`rtlab.runs.Leg.describe`) and, for
costs, from the turns table (``cost_basis``).

>>> from rtlab.analysis import provenance, provenance_note                          # doctest: +SKIP
>>> provenance(log)            # one row per source: family, emulated, engine, timing, cost_basis
>>> provenance_note(log)       # {"engine": ..., "timing": ..., "cost_basis": ...} for rtlab.plots' provenance=
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["ENGINES", "TIMINGS", "provenance", "provenance_note"]

#: What produces the text of an *emulated* source, by protocol family.
ENGINES: dict[str, str] = {
    "realtime": "pocketsphinx (the emulator's local recognizer)",
    "live": "pocketsphinx (the emulator's local recognizer)",
    "azure-speech": "pocketsphinx (the emulator's local recognizer)",
    "translation": "pocketsphinx + Apertium (the emulator's local recognizer and translator)",
    "local": "pocketsphinx (rtlab's local engine, in process)",
}

#: What an emulator's timing model means for the latencies it produced.
TIMINGS: dict[str, str] = {
    "modelled": "emulated, modelled on published latency figures",
    "local": "emulated, the local engines' own speed",
}

_COLUMNS = ["source", "family", "emulated", "engine", "timing", "cost_basis"]


def _meta_of(log: Any) -> Mapping[str, Any]:
    meta = log if isinstance(log, Mapping) else getattr(log, "meta", None)
    return meta if isinstance(meta, Mapping) else {}


def provenance(log: Any, turns: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per source of a recorded run: ``source, family, emulated, engine, timing, cost_basis``.

    Parameters
    ----------
    log : EventLog or its ``meta`` mapping
        A recorded run.
    turns : pandas.DataFrame, optional
        Its turns table (:func:`rtlab.analysis.turns`): gives each source's ``cost_basis`` and the sources that
        have no leg of their own (``sidecar:oob`` rides on the voice session and shares its provenance).
    """
    meta = _meta_of(log)
    info = meta.get("sources") if isinstance(meta.get("sources"), Mapping) else {}
    names = list(info)
    if turns is not None and "source" in turns.columns:
        names += [s for s in dict.fromkeys(turns["source"].astype(str)) if s not in info]
    rows = []
    for source in names:
        desc = info.get(source)
        if not isinstance(desc, Mapping):  # a source riding on another leg (out-of-band: the voice session)
            desc = info.get("in-session") if isinstance(info.get("in-session"), Mapping) else {}
        family = str(desc.get("family") or "realtime")
        emulated = bool(desc.get("emulated"))
        model = desc.get("transcription_model") or desc.get("model") or desc.get("session_model")
        if family == "local":
            engine = str(desc.get("engine") or ENGINES["local"])
            timing = "measured (the engine runs in this process)"
        elif emulated:
            engine = ENGINES.get(family, ENGINES["realtime"])
            mode = desc.get("timing") or meta.get("timing")
            timing = TIMINGS.get(str(mode), f"emulated ({mode})" if mode else "emulated (timing model not recorded)")
        else:
            engine = f"the service ({model})" if model else "the service"
            timing = "measured against the service"
        basis = None
        if turns is not None and {"source", "cost_basis"} <= set(turns.columns):
            bases = [b for b in dict.fromkeys(turns.loc[turns["source"] == source, "cost_basis"]) if isinstance(b, str)]
            basis = ", ".join(bases) or None
        if basis is None:
            basis = "local" if family == "local" else "emulated" if emulated else "reported"
        rows.append({"source": source, "family": family, "emulated": emulated, "engine": engine, "timing": timing,
                     "cost_basis": basis})
    return pd.DataFrame(rows, columns=_COLUMNS)


def provenance_note(log: Any, turns: pd.DataFrame | None = None) -> dict[str, str]:
    """The run's provenance in three short strings (``engine``, ``timing``, ``cost_basis``), for the ``provenance=``
    of :mod:`rtlab.plots` and for table captions. Sources that differ are named: ``"in-session: ...; sidecar:local:
    ..."``."""
    table = provenance(log, turns)
    out: dict[str, str] = {}
    for key in ("engine", "timing", "cost_basis"):
        values = list(dict.fromkeys(table[key]))
        if len(values) == 1:
            out[key] = str(values[0])
        elif values:
            groups: dict[str, list[str]] = {}
            for source, value in zip(table["source"], table[key], strict=True):
                groups.setdefault(str(value), []).append(str(source))
            out[key] = "; ".join(f"{', '.join(srcs)}: {value}" for value, srcs in groups.items())
    return out
