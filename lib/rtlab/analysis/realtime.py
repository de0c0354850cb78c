"""Turn evidence of Realtime-protocol sources: voice sessions, transcription sessions, out-of-band responses
(layer: analysis).

Vectorised over the flat columns of the whole log (a million-event log is analysed in about a second): only the
few events that carry text, usage or audio times are decoded. One :class:`Evidence` per (source, item):

- VAD: ``speech_started`` (``audio_start_ms``) and ``speech_stopped`` (``audio_end_ms``) of the item;
- commits: without VAD events, an item spans from the previous client commit/clear to the commit that produced it;
- transcription: deltas (counted and timed without decoding), then ``completed`` or ``failed`` (the first one wins);
  an item with deltas and no final keeps its text so far;
- out-of-band: a ``response.create`` whose ``metadata.rtlab_item_id`` names an item asks for a text transcript of
  it; the server echoes the metadata in ``response.created``/``response.done``, so each such response becomes a row
  for (its source, the item), with the text of ``response.output_text.done`` (or the audio transcript, or the text
  in ``response.done``), its deltas, and its usage.

The model of a row is the transcription model (out-of-band rows: the session model) of the source's last
``session.created``/``session.updated`` (else its last client ``session.update``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rtlab.log import EventLog
from rtlab.log.reader import na
from rtlab.protocol import events as E

__all__ = ["OOB_ITEM_KEY", "Evidence", "realtime_evidence", "session_models"]

#: The response metadata key that names the item an out-of-band response transcribes.
OOB_ITEM_KEY = "rtlab_item_id"


@dataclass
class Evidence:
    """What the events say about one turn of one source. Times ``t_*`` are seconds on the log clock."""

    source: str
    item_id: str
    first_row: int
    kind: str = "transcription"
    start_ms: float = np.nan
    end_ms: float = np.nan
    t_start: float = np.nan  # the source's own speech_started
    t_stop: float = np.nan  # the source's own speech_stopped
    t_first: float = np.nan  # first text
    t_final: float = np.nan  # final text (or failure)
    n_deltas: int = 0
    n_revisions: int = 0
    transcript: str | None = None
    status: str = "pending"
    error: str | None = None
    usage: Mapping[str, Any] | None = None
    model: str | None = None
    response_id: str | None = None
    speaker: str | None = None
    clock_source: str | None = None  # whose appends place this turn on the audio clock (default: its own)
    extra: dict[str, Any] = field(default_factory=dict)


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def session_models(session: Any) -> tuple[str | None, str | None]:
    """(session model, input transcription model) from a GA or beta session object."""
    if not isinstance(session, Mapping):
        return None, None
    audio = session.get("audio")
    audio_in = (audio.get("input") or {}) if isinstance(audio, Mapping) else {}
    tr = audio_in.get("transcription") if isinstance(audio_in, Mapping) else None
    if not isinstance(tr, Mapping):
        tr = session.get("input_audio_transcription")
    tr_model = tr.get("model") if isinstance(tr, Mapping) else None
    return _str(session.get("model")), _str(tr_model)


def _response_text(resp: Mapping[str, Any]) -> str | None:
    """Text (or audio transcript) of a response object's output, for response.done without a text-done event."""
    parts = []
    for item in resp.get("output") or []:
        for c in (item or {}).get("content") or [] if isinstance(item, Mapping) else []:
            if isinstance(c, Mapping):
                v = c.get("text") if c.get("text") is not None else c.get("transcript")
                if isinstance(v, str):
                    parts.append(v)
    return "".join(parts) if parts else None


def realtime_evidence(log: EventLog, sources: list[str]) -> list[Evidence]:
    """Turn evidence of the Realtime-protocol ``sources`` of ``log`` (see the module docstring)."""
    b = log.columns()
    if not len(b) or not sources:
        return []
    name = b["name"]
    type_code = {c: i for i, c in enumerate(name.cat.categories)}
    codes = name.cat.codes.to_numpy()
    src_names = [str(c) for c in b["src"].cat.categories]
    wanted = np.array([s in sources for s in src_names] + [False], dtype=bool)  # index -1 (NaN) -> False
    src = b["src"].cat.codes.to_numpy().astype(np.int64)
    mine = wanted[src]
    dir_cats = list(b["dir"].cat.categories)
    is_client = (b["dir"].cat.codes.to_numpy() == dir_cats.index("client")) if "client" in dir_cats \
        else np.zeros(len(b), dtype=bool)

    def rows_of(*names: str, client: bool = False) -> np.ndarray:
        ids = [type_code[n] for n in names if n in type_code]
        if not ids:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(np.isin(codes, ids) & (is_client if client else ~is_client) & mine)

    t = b["t"].to_numpy(dtype=float)
    am = b["audio_ms"].to_numpy(dtype=float, na_value=np.nan)
    item_col, resp_col = b["item_id"], b["response_id"]

    def items_at(rows: np.ndarray) -> list:
        return [na(v) for v in item_col.iloc[rows].tolist()]

    def resps_at(rows: np.ndarray) -> list:
        return [na(v) for v in resp_col.iloc[rows].tolist()]

    turns: dict[tuple[int, str], Evidence] = {}

    def turn(s: int, item: str, row: int) -> Evidence:
        key = (s, item)
        d = turns.get(key)
        if d is None:
            d = turns[key] = Evidence(src_names[s], item, row)
        return d

    # VAD events (only their audio_start_ms / audio_end_ms are read).
    st_rows = rows_of(E.SPEECH_STARTED)
    for r, item, v in zip(st_rows, items_at(st_rows), log.numbers_at(st_rows, "audio_start_ms"), strict=True):
        if item is not None:
            d = turn(int(src[r]), item, int(r))
            if not np.isfinite(d.t_start):
                d.t_start, d.start_ms = t[r], v
    sp_rows = rows_of(E.SPEECH_STOPPED)
    for r, item, v in zip(sp_rows, items_at(sp_rows), log.numbers_at(sp_rows, "audio_end_ms"), strict=True):
        if item is not None:
            d = turn(int(src[r]), item, int(r))
            d.t_stop, d.end_ms = t[r], v

    # Commits: a client-committed item spans from the previous commit/clear to its commit. The server answers
    # a source's commits in order, each with one committed (or a commit error), so the k-th answer is the k-th
    # commit's, however late it arrives.
    cm_rows = rows_of(E.COMMITTED)
    bounds = rows_of(E.COMMIT, E.CLEAR, client=True)
    bound_is_commit = codes[bounds] == type_code.get(E.COMMIT, -1)
    err_rows = log.rows_mentioning(rows_of(E.ERROR), "input_audio_buffer_commit_empty")
    answers_by_src: dict[int, list[tuple[int, bool]]] = {}
    for r in sorted(list(cm_rows) + list(err_rows)):
        answers_by_src.setdefault(int(src[r]), []).append((int(r), r in set(cm_rows.tolist())))
    items_of = dict(zip(cm_rows.tolist(), items_at(cm_rows), strict=True))
    for s, answers in answers_by_src.items():
        own = bounds[src[bounds] == s]
        commit_idx = np.flatnonzero(bound_is_commit[src[bounds] == s])
        for k, (r, ok) in enumerate(answers):
            item = items_of.get(r) if ok else None
            if item is None:
                continue
            d = turn(s, item, r)
            if np.isfinite(d.t_stop) or np.isfinite(d.end_ms) or k >= len(commit_idx):
                continue  # a VAD turn has its own span; an answer without a commit is the server's own
            j = int(commit_idx[k])
            d.end_ms = am[own[j]]
            d.start_ms = am[own[j - 1]] if j > 0 and np.isfinite(am[own[j - 1]]) else 0.0

    # Transcription deltas: counted and timed without decoding them.
    dl_rows = rows_of(E.TR_DELTA)
    if len(dl_rows):
        g = pd.DataFrame({"s": src[dl_rows], "i": item_col.iloc[dl_rows].to_numpy(dtype=object),
                          "t": t[dl_rows], "r": dl_rows}).dropna(subset=["i"])
        agg = g.groupby(["s", "i"], sort=False).agg(n=("t", "size"), t_first=("t", "min"), r=("r", "min"))
        for (s, item), n, t_first, r in zip(agg.index, agg["n"], agg["t_first"], agg["r"], strict=True):
            d = turn(int(s), str(item), int(r))
            d.n_deltas, d.t_first = int(n), float(t_first)

    # Completed / failed (the first final of an item wins).
    co_rows = rows_of(E.TR_COMPLETED, E.TR_FAILED)
    for r, item, ev in zip(co_rows, items_at(co_rows), log.events_at(co_rows), strict=True):
        if item is None:
            continue
        d = turn(int(src[r]), item, int(r))
        if d.status == "completed":
            continue
        if E.canonical_event_name(ev.get("type", "")) == E.TR_COMPLETED:
            d.status, d.transcript, d.usage, d.t_final, d.error = \
                "completed", _str(ev.get("transcript")), ev.get("usage"), t[r], None
        else:
            err = ev.get("error") if isinstance(ev.get("error"), Mapping) else {}
            d.status, d.t_final, d.transcript = "failed", t[r], None
            d.error = f"{err.get('code') or err.get('type') or 'failed'}: {err.get('message') or ''}".strip()

    # Diarization segments: the speakers of an item, in order.
    sg_rows = rows_of(E.TR_SEGMENT)
    for r, item, ev in zip(sg_rows, items_at(sg_rows), log.events_at(sg_rows), strict=True):
        if item is not None and isinstance(ev.get("speaker"), str):
            d = turn(int(src[r]), item, int(r))
            speakers = d.extra.setdefault("speakers", [])
            if ev["speaker"] not in speakers:
                speakers.append(ev["speaker"])
            d.speaker = ",".join(speakers)

    # Items with deltas but no final transcript yet: their text so far.
    pending = {k for k, d in turns.items() if d.status == "pending" and d.n_deltas}
    if pending:
        sel = dl_rows[[(int(s), i) in pending for s, i in zip(src[dl_rows], items_at(dl_rows), strict=True)]]
        for r, item, ev in zip(sel, items_at(sel), log.events_at(sel), strict=True):
            d = turns[(int(src[r]), item)]
            d.transcript = (d.transcript or "") + str(ev.get("delta") or "")

    # Session and transcription models per source: the last server session event, else the last client update.
    models: dict[int, tuple[str | None, str | None]] = {}
    for rows in (rows_of(E.SESSION_UPDATE, client=True), rows_of(*E.SESSION_EVENTS)):  # server overrides client
        for r, ev in zip(rows, log.events_at(rows), strict=True):
            sm, tm = session_models(ev.get("session"))
            old = models.get(int(src[r]), (None, None))
            models[int(src[r])] = (sm or old[0], tm or old[1])
    for (s, _item), d in turns.items():
        d.model = models.get(s, (None, None))[1]

    _out_of_band(log, turns, rows_of, src, src_names, t, resps_at, models)
    return sorted(turns.values(), key=lambda d: d.first_row)


def _out_of_band(log: EventLog, turns: dict[tuple[int, str], Evidence], rows_of: Any, src: np.ndarray,
                 src_names: list[str], t: np.ndarray, resps_at: Any,
                 models: dict[int, tuple[str | None, str | None]]) -> None:
    """Add one row per out-of-band response (see the module docstring)."""
    rs_rows = log.rows_mentioning(rows_of(E.RESPONSE_CREATED, E.RESPONSE_DONE), OOB_ITEM_KEY)
    oob: dict[str, dict] = {}
    for r, ev in zip(rs_rows, log.events_at(rs_rows), strict=True):
        resp = ev.get("response") if isinstance(ev.get("response"), Mapping) else {}
        rid = _str(resp.get("id"))
        meta = resp.get("metadata") if isinstance(resp.get("metadata"), Mapping) else {}
        target = _str(meta.get(OOB_ITEM_KEY))
        if rid is None:
            continue
        if target is not None:
            oob.setdefault(rid, {"item": target, "first_row": int(r)})
        if rid in oob:
            o = oob[rid]
            if E.canonical_event_name(ev.get("type", "")) == E.RESPONSE_CREATED:
                o.setdefault("session_src", int(src[r]))
            else:
                o.update(t_done=t[r], done_src=int(src[r]), usage=resp.get("usage"),
                         status=_str(resp.get("status")), done_text=_response_text(resp))
                o.setdefault("session_src", int(src[r]))
    if not oob:
        return
    b = log.columns()
    resp_col = b["response_id"]
    rids = pd.Index(list(oob))
    td_rows = rows_of(*E.TEXT_DELTAS)
    td_rows = td_rows[resp_col.iloc[td_rows].isin(rids).to_numpy(dtype=bool)] if len(td_rows) else td_rows
    if len(td_rows):
        g = pd.DataFrame({"rid": resps_at(td_rows), "t": t[td_rows], "s": src[td_rows]})
        agg = g.groupby("rid", sort=False).agg(n=("t", "size"), t_first=("t", "min"), s=("s", "first"))
        for rid, n, t_first, s in zip(agg.index, agg["n"], agg["t_first"], agg["s"], strict=True):
            oob[rid].update(n_deltas=int(n), t_first=float(t_first), delta_src=int(s))
    tx_rows = rows_of(*E.TEXT_DONES)
    tx_rows = tx_rows[resp_col.iloc[tx_rows].isin(rids).to_numpy(dtype=bool)] if len(tx_rows) else tx_rows
    for r, rid, ev in zip(tx_rows, resps_at(tx_rows), log.events_at(tx_rows), strict=True):
        text = ev.get("text") if isinstance(ev.get("text"), str) else ev.get("transcript")
        o = oob[rid]
        if "t_text" not in o:
            o.update(t_text=t[r], text=_str(text), text_src=int(src[r]))
    # The audio span of each item, from the row that has it (a VAD row first).
    spans: dict[str, Evidence] = {}
    for (_s, item), d in turns.items():
        if np.isfinite(d.end_ms) and (item not in spans or np.isfinite(d.t_stop)):
            spans[item] = d
    used = set(turns)
    for rid, o in sorted(oob.items(), key=lambda kv: kv[1]["first_row"]):
        s = o.get("text_src", o.get("done_src", o.get("delta_src", o.get("session_src"))))
        if s is None:
            continue
        label = src_names[s]
        if (s, o["item"]) in used and turns[(s, o["item"])].kind != "oob":
            label = label + ":oob"  # the source also transcribes the item itself: keep both rows apart
        d = Evidence(label, o["item"], o["first_row"], kind="oob", n_deltas=o.get("n_deltas", 0), response_id=rid,
                     clock_source=src_names[s])
        d.t_first = o.get("t_first", np.nan)
        text = o.get("text", o.get("done_text"))
        t_final = o.get("t_text", o.get("t_done"))
        if t_final is not None and (text is not None or o.get("status") == "completed"):
            d.status, d.transcript, d.t_final = "completed", text, t_final
        elif "t_done" in o:
            d.status, d.t_final, d.error = "failed", o["t_done"], f"response {o.get('status') or 'incomplete'}"
        d.usage = o.get("usage")
        span = spans.get(o["item"])
        if span is not None:
            d.start_ms, d.end_ms = span.start_ms, span.end_ms
            # The voice session that committed the item answers it: its session model is the row's model.
            d.model = models.get(src_names.index(span.source), (None, None))[0]
        if d.model is None:
            d.model = models.get(o.get("session_src", -1), (None, None))[0]
        turns[(s if label == src_names[s] else -1 - s, o["item"])] = d
