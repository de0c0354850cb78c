"""The turns table: one row per (source, turn) for every source of a run, on one audio clock (layer: analysis).

:func:`turns` is a pure function of an event log. Each protocol family contributes its *evidence* (what its events
say about each turn: span, text, times) through a normalizer — :mod:`.realtime` (voice and transcription sessions,
out-of-band responses), :mod:`.local` (the local engine) and the normalizers of other families registered in
:data:`NORMALIZERS` — and the shared code below turns evidence into the same columns for every source: latency
anchors, reference assignment, model and cost.

Latency columns (every latency in rtlab is one of these; ms)
--------------------------------------------------------------
All are differences of log times ``t`` (the client's wall clock). "Sent at" an audio position means: the time the
client sent the input chunk that reaches that position (the audio clock).

``final_after_eos_ms``
    Final transcript minus the time the **true end of speech** was sent (the end of the reference utterances
    assigned to the turn). The headline: the same anchor for every source. NaN without references.
``final_after_stop_ms``
    Final transcript minus the source's **own end-of-turn anchor** (``end_anchor``): its ``speech_stopped`` event
    (server VAD; it comes one VAD silence window after the speech ended), or, for a source without VAD events
    (client commits, out-of-band responses), the time the turn's end position was sent (``audio_clock``).
``first_text_after_start_ms``
    First text (delta, partial, or the final when there is no delta) minus the time the **start of speech** was
    sent (the reference start when known, else the turn's ``audio_start_ms``).
``first_text_after_eos_ms``
    First text minus the time the true end of speech was sent. **Signed**: negative when text arrived while the
    user was still speaking (a streaming model). Never summarised as a percentile (see
    :func:`rtlab.analysis.metrics.summary`, which reports the share of negative values).

Cost columns: ``cost_usd`` from the row's usage and ``data/prices.json``, and ``cost_basis`` saying what it rests
on (:func:`rtlab.analysis.cost.cost_basis`: ``reported``, ``emulated``, ``duration``, ``local`` or ``none``). The
emulator's usage is its own invention: rows from an emulated session say ``emulated``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from rtlab.errors import EventLogError
from rtlab.log import EventLog
from rtlab.protocol import events as E

from .align import AudioClock, best_overlap
from .cost import LOCAL_MODELS, cost, cost_basis, load_prices
from .local import local_evidence
from .realtime import Evidence, realtime_evidence

__all__ = ["FAMILIES", "NORMALIZERS", "TURN_COLUMNS", "Evidence", "families", "register", "turns"]

TURN_COLUMNS = [
    "source", "item_id", "kind", "family", "model", "status", "error", "transcript", "reference",
    "audio_start_ms", "audio_end_ms", "ref_start_ms", "ref_end_ms",
    "final_after_eos_ms", "final_after_stop_ms", "first_text_after_start_ms", "first_text_after_eos_ms",
    "n_deltas", "n_revisions", "end_anchor", "end_wall_ms", "final_wall_ms",
    "usage", "cost_usd", "cost_basis", "speaker", "response_id",
]

#: Protocol families a source can belong to.
FAMILIES: tuple[str, ...] = ("realtime", "local", "live", "translation", "azure-speech")

_ROW_KEYS = frozenset({"source", "item_id", "kind", "audio_start_ms", "audio_end_ms", "transcript", "status",
                       "error", "t_speech_stopped_ms", "t_first_ms", "t_final_ms", "n_deltas", "n_revisions",
                       "model", "usage", "speaker"})


def _nan(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return np.nan
    return f


def evidence_from_rows(rows: list[Mapping[str, Any]], first_row: int = 0) -> list[Evidence]:
    """Turn evidence from the rows of a family normalizer written to the row contract (times in ms on the log
    clock: ``t_speech_stopped_ms``, ``t_first_ms``, ``t_final_ms``; extra keys become extra columns)."""
    out = []
    for k, r in enumerate(rows):
        d = Evidence(str(r["source"]), str(r["item_id"]), first_row + k, kind=str(r.get("kind") or "transcription"))
        d.start_ms, d.end_ms = _nan(r.get("audio_start_ms")), _nan(r.get("audio_end_ms"))
        d.t_stop = _nan(r.get("t_speech_stopped_ms")) / 1000.0
        d.t_first = _nan(r.get("t_first_ms")) / 1000.0
        d.t_final = _nan(r.get("t_final_ms")) / 1000.0
        d.transcript = r.get("transcript")
        d.status = str(r.get("status") or "pending")
        d.error = r.get("error")
        d.n_deltas, d.n_revisions = int(r.get("n_deltas") or 0), int(r.get("n_revisions") or 0)
        d.model, d.usage, d.speaker = r.get("model"), r.get("usage"), r.get("speaker")
        d.extra = {key: v for key, v in r.items() if key not in _ROW_KEYS}
        out.append(d)
    return out


def _speech_turns(log: EventLog, references: list[dict]) -> pd.DataFrame | None:
    """The speech turns a family without per-turn events is aligned to: the reference utterances when known."""
    if not references:
        return None
    return pd.DataFrame([{"item_id": f"ref{k + 1}", "audio_start_ms": r["start_ms"], "audio_end_ms": r["end_ms"]}
                         for k, r in enumerate(references)])


def _per_source(rows_of: Callable[..., list[Mapping[str, Any]]]) -> Callable[..., list[Evidence]]:
    """A normalizer over (log, sources) from a per-source row function ``rows_of(frame, source, log=, refs=)``."""

    def normalize(log: EventLog, sources: list[str], references: list[dict] | None = None) -> list[Evidence]:
        frame = log.to_frame()
        out: list[Evidence] = []
        for source in sources:
            sub = frame[(frame["source"] == source).to_numpy()]
            first = int(sub.index[0]) if len(sub) else 0
            out += evidence_from_rows(rows_of(sub, source, log=log, refs=references or []), first)
        return out

    return normalize


def _live_rows(frame: pd.DataFrame, source: str, *, log: EventLog, refs: list[dict]) -> list[Mapping[str, Any]]:
    from .live import live_turn_rows

    return live_turn_rows(frame, source, _speech_turns(log, refs), input_audio=log.input_audio())


def _translation_rows(frame: pd.DataFrame, source: str, *, log: EventLog, refs: list[dict]
                      ) -> list[Mapping[str, Any]]:
    from .translation import translation_turn_rows

    return translation_turn_rows(frame, source, _speech_turns(log, refs))


def _azure_speech_rows(frame: pd.DataFrame, source: str, *, log: EventLog, refs: list[dict]
                       ) -> list[Mapping[str, Any]]:
    from .azure_speech import azure_speech_turn_rows

    return azure_speech_turn_rows(frame, source)


#: family -> normalizer(log, sources[, references]) -> list of Evidence.
NORMALIZERS: dict[str, Callable[..., list[Evidence]]] = {
    "realtime": realtime_evidence,
    "local": local_evidence,
    "live": _per_source(_live_rows),
    "translation": _per_source(_translation_rows),
    "azure-speech": _per_source(_azure_speech_rows),
}
#: Families whose turns are aligned to the speech turns of the run (they have no per-turn events of their own).
_ALIGNED = frozenset({"live", "translation"})


def register(family: str, normalizer: Callable[[EventLog, list[str]], list[Evidence]]) -> None:
    """Register the normalizer of a protocol family (``normalizer(log, sources) -> [Evidence, ...]``)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; one of {', '.join(FAMILIES)}")
    NORMALIZERS[family] = normalizer


def _source_info(log: EventLog) -> dict[str, Mapping[str, Any]]:
    info = log.meta.get("sources")
    return {str(k): v for k, v in info.items() if isinstance(v, Mapping)} if isinstance(info, Mapping) else {}


def families(log: EventLog) -> dict[str, str]:
    """The protocol family of each source: as the run recorded it (``meta["sources"][label]["family"]``), else
    told from its event types."""
    info = _source_info(log)
    b = log.columns()
    out: dict[str, str] = {}
    if not len(b):
        return out
    pairs = pd.DataFrame({"src": b["src"].astype(str), "name": b["name"].astype(str)}).drop_duplicates()
    names_by_src = pairs.groupby("src", sort=False)["name"].agg(set)
    for src in log.sources:
        recorded = info.get(src, {}).get("family")
        if isinstance(recorded, str) and recorded in FAMILIES:
            out[src] = recorded
            continue
        names = names_by_src.get(src, set())
        if any(n.startswith("local.") for n in names):
            out[src] = "local"
        elif any(n.startswith("azure_speech.") for n in names):
            out[src] = "azure-speech"
        elif "session.started" in names or "session.input_audio.append" in names:
            out[src] = "live"
        elif "session.output_transcript.delta" in names or "session.input_transcript.delta" in names:
            out[src] = "translation"
        else:
            out[src] = "realtime"
    return out


def _check_references(references: Any) -> list[dict]:
    if references is None:
        return []
    if isinstance(references, Mapping) and "utterances" in references:
        references = references["utterances"]
    if isinstance(references, pd.DataFrame):
        references = references.to_dict("records")
    out = []
    for i, r in enumerate(references):
        try:
            text, start, end = str(r["text"]), float(r["start_s"]), float(r["end_s"])
        except (KeyError, TypeError, ValueError):
            raise EventLogError(f"references[{i}] = {str(r)[:80]!r}: each reference needs 'text', 'start_s' and "
                                "'end_s' (seconds in the audio), like the utterances in data/manifest.json") from None
        if not (math.isfinite(start) and math.isfinite(end)) or end < start:
            raise EventLogError(f"references[{i}]: start_s={start} end_s={end} is not a time span")
        out.append({"text": text, "start_ms": start * 1000.0, "end_ms": end * 1000.0})
    return sorted(out, key=lambda r: (r["start_ms"], r["end_ms"]))


def _audio_clock(log: EventLog) -> AudioClock:
    b = log.columns()
    is_client = (b["dir"].astype(str) == "client").to_numpy()
    is_append = b["name"].astype(str).isin(list(E.INPUT_AUDIO_FIELDS)).to_numpy()
    am = b["audio_ms"].to_numpy(dtype=float, na_value=np.nan)
    rows = np.flatnonzero(is_client & is_append & np.isfinite(am))
    return AudioClock(b["src"].astype(str).to_numpy()[rows], am[rows], b["t"].to_numpy(dtype=float)[rows])


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in TURN_COLUMNS})


def turns(log: EventLog, references: Sequence[Mapping[str, Any]] | Mapping[str, Any] | pd.DataFrame | None = None
          ) -> pd.DataFrame:
    """One row per (source, turn): span, transcript, latencies, deltas, usage, cost and its basis.

    Parameters
    ----------
    log : EventLog
        A recorded run (loaded or still recording).
    references : list of dict, optional
        Manifest utterances ``[{"text", "start_s", "end_s"}, ...]`` of the audio (true speech spans). Each is given
        to the turn of each source that overlaps it most in audio time; a turn's ``reference`` is the text of the
        utterances given to it.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TURN_COLUMNS`; latency columns are defined in the module docstring.

    Examples
    --------
    >>> from rtlab.analysis import turns                                   # doctest: +SKIP
    >>> turns(log, references)[["source", "transcript", "final_after_eos_ms"]]   # doctest: +SKIP
    """
    if not isinstance(log, EventLog):
        raise EventLogError(f"turns() takes an EventLog (from a run or EventLog.load), got {type(log).__name__}")
    refs = _check_references(references)
    fam = families(log)
    evidence: list[Evidence] = []
    for family in dict.fromkeys(fam.values()):
        normalizer = NORMALIZERS.get(family)
        if normalizer is not None:
            members = [s for s, f in fam.items() if f == family]
            evidence += normalizer(log, members, refs) if family in _ALIGNED else normalizer(log, members)
    if not evidence:
        return _empty()
    order = {s: i for i, s in enumerate(log.sources)}
    evidence.sort(key=lambda d: (order.get(d.source, order.get(d.clock_source or "", len(order))), d.first_row))
    return _table(log, evidence, refs, fam)


def _table(log: EventLog, ev: list[Evidence], refs: list[dict], fam: dict[str, str]) -> pd.DataFrame:
    n = len(ev)
    source = [d.source for d in ev]
    clock_src = [d.clock_source or d.source for d in ev]
    start_ms = np.array([d.start_ms for d in ev], dtype=float)
    end_ms = np.array([d.end_ms for d in ev], dtype=float)
    t_stop = np.array([d.t_stop for d in ev], dtype=float)
    t_first = np.array([d.t_first for d in ev], dtype=float)
    t_final = np.array([d.t_final for d in ev], dtype=float)
    # A turn with a final text but no delta: its first text is the final.
    t_first = np.where(np.isfinite(t_first), t_first, np.where(
        np.array([d.status == "completed" and bool(d.transcript) for d in ev]), t_final, np.nan))

    clock = _audio_clock(log)

    def sent(pos: np.ndarray) -> np.ndarray:
        out = np.full(n, np.nan)
        for s in dict.fromkeys(clock_src):
            m = np.array([c == s for c in clock_src])
            out[m] = clock.sent_at(s if s in clock.by_source else None, pos[m])
        return out

    t_end_clock = sent(end_ms)
    has_stop = np.isfinite(t_stop)
    t_end = np.where(has_stop, t_stop, t_end_clock)
    anchor = np.where(has_stop, "speech_stopped", np.where(np.isfinite(t_end_clock), "audio_clock", None))

    # References: each utterance goes to the overlapping turn with the largest overlap, per source.
    reference: list[str | None] = [None] * n
    ref_start = np.full(n, np.nan)
    ref_end = np.full(n, np.nan)
    if refs:
        r_start = np.array([r["start_ms"] for r in refs])
        r_end = np.array([r["end_ms"] for r in refs])
        for s in dict.fromkeys(source):
            idx = np.array([i for i in range(n) if source[i] == s and np.isfinite(start_ms[i])
                            and np.isfinite(end_ms[i])], dtype=np.int64)
            if not len(idx):
                continue
            best, _ = best_overlap(r_start, r_end, start_ms[idx], end_ms[idx])
            assigned: dict[int, list[int]] = {}
            for k, j in enumerate(best):
                if j >= 0:
                    assigned.setdefault(int(idx[j]), []).append(k)
            for i, ks in assigned.items():
                reference[i] = " ".join(refs[k]["text"] for k in ks)
                ref_start[i] = min(refs[k]["start_ms"] for k in ks)
                ref_end[i] = max(refs[k]["end_ms"] for k in ks)
    t_eos = sent(ref_end)
    t_sos = sent(np.where(np.isfinite(ref_start), ref_start, start_ms))

    models, costs, bases = _costs(log, ev, start_ms, end_ms)
    ms = 1000.0
    df = pd.DataFrame({
        "source": source,
        "item_id": [d.item_id for d in ev],
        "kind": [d.kind for d in ev],
        "family": [fam.get(d.clock_source or d.source, fam.get(d.source, "realtime")) for d in ev],
        "model": models,
        "status": [d.status for d in ev],
        "error": [d.error for d in ev],
        "transcript": [d.transcript for d in ev],
        "reference": reference,
        "audio_start_ms": start_ms,
        "audio_end_ms": end_ms,
        "ref_start_ms": ref_start,
        "ref_end_ms": ref_end,
        "final_after_eos_ms": (t_final - t_eos) * ms,
        "final_after_stop_ms": (t_final - t_end) * ms,
        "first_text_after_start_ms": (t_first - t_sos) * ms,
        "first_text_after_eos_ms": (t_first - t_eos) * ms,
        "n_deltas": np.array([d.n_deltas for d in ev], dtype=np.int64),
        "n_revisions": np.array([d.n_revisions for d in ev], dtype=np.int64),
        "end_anchor": anchor,
        "end_wall_ms": t_end * ms,
        "final_wall_ms": t_final * ms,
        "usage": [d.usage for d in ev],
        "cost_usd": np.array(costs, dtype=float),
        "cost_basis": bases,
        "speaker": [d.speaker for d in ev],
        "response_id": [d.response_id for d in ev],
    })
    extra = sorted({k for d in ev for k in d.extra if k not in df.columns})
    for k in extra:
        df[k] = [d.extra.get(k) for d in ev]
    return df[TURN_COLUMNS + extra]


def _emulated(log: EventLog, source: str) -> bool:
    info = _source_info(log).get(source, {})
    if "emulated" in info:
        return bool(info["emulated"])
    return str(log.meta.get("target", "")).startswith("Target(local")


def _costs(log: EventLog, ev: list[Evidence], start_ms: np.ndarray, end_ms: np.ndarray
           ) -> tuple[list[str | None], list[float], list[str]]:
    prices = load_prices()
    meta_models = log.meta.get("models") if isinstance(log.meta.get("models"), Mapping) else {}
    info = _source_info(log)
    models, costs, bases = [], [], []
    for i, d in enumerate(ev):
        model = d.model
        # meta "models": {source label or Azure deployment name: model name}, for pricing deployments
        recorded = info.get(d.source, {}).get("model") if d.kind != "oob" else None
        model = meta_models.get(d.source) or recorded or model
        model = meta_models.get(model, model) if model else model  # an Azure deployment name -> its model
        models.append(model)
        if model in LOCAL_MODELS:
            costs.append(0.0)
            bases.append("local")
            continue
        dur = (end_ms[i] - start_ms[i]) / 1000.0 if np.isfinite(end_ms[i] - start_ms[i]) else None
        try:
            usd = cost(d.usage, model, prices, audio_seconds=dur) if model else np.nan
        except (ValueError, KeyError, TypeError):
            usd = np.nan
        costs.append(usd)
        bases.append(cost_basis(d.usage, model, emulated=_emulated(log, d.clock_source or d.source),
                                priced=bool(np.isfinite(usd))))
    return models, costs, bases
