"""Turn rows of an Azure Speech source: its recorded SDK events → one row per phrase (layer: analysis).

:func:`azure_speech_turn_rows` is the Azure Speech normalizer of the per-source turns table (the contract is in the
helper brief; :mod:`rtlab.runs.azure_speech` records the events). Pure: a frame in, a list of dicts out.

How the Speech SDK's events map onto turns:

* A phrase is the run of ``azure_speech.transcribing`` events that share one ``offset_ticks`` (the phrase's start,
  which the service repeats in every partial and in the final), closed by the ``azure_speech.transcribed`` with that
  offset. Result ids cannot group them: the service gives every message its own ``Id`` (the SDK's ``result_id``),
  partials included — so the row's ``item_id`` is the final result's id (the partials' offset when there is none).
* ``transcribing`` texts are cumulative snapshots of the whole phrase, and a snapshot may change words already
  shown. They are kept as recorded (``partials``); the append-only increments between consecutive snapshots are
  ``deltas`` (``n_deltas``), and every snapshot that does not extend the previous one counts as a revision
  (``n_revisions``), as does a final whose words do not extend the last partial's (compared after
  :func:`rtlab.analysis.metrics.normalize`, so the final's capitals and punctuation are not revisions).
* Times: ``t_first_ms`` is the log time of the first text of the phrase (its first partial, else its final),
  ``t_final_ms`` that of the final. ``audio_start_ms``/``audio_end_ms`` come from ``Offset``/``Duration`` (ticks of
  100 ns on the pushed-audio clock, which is the run's clock). ``t_speech_stopped_ms`` is NaN: in continuous
  recognition the service reports the end of speech once per stream, not per phrase.
* A ``transcribed`` with reason ``NoMatch`` fails the phrase it closes (it is dropped when no partial preceded it:
  silence); ``canceled`` with reason ``Error`` fails the open phrase, or adds one failed row for the session when
  none is open (a refused connection shows up in the table). A phrase still open at the end of the log is pending;
  one superseded by a phrase with another offset, without a final, failed.
* ``usage`` is ``{"type": "duration", "seconds": S}`` with S the audio from the previous phrase's end to this
  phrase's end: the service bills all streamed audio, so the sum over a source approximates the bill (silence
  after the last phrase excepted). ``model`` is ``"azure-speech"`` (its row in ``data/prices.json``).

Family columns: ``offset_ticks``, ``duration_ticks``, ``result_id``, ``reason`` (the final's SDK ResultReason),
``partials`` (list of snapshot texts), ``deltas`` (list of increments), ``t_last_partial_ms``, and
``first_audio_ms`` / ``final_audio_ms``: the run's audio clock (audio pushed so far) when the first text and the
final arrived, so ``first_audio_ms - audio_start_ms`` and ``final_audio_ms - audio_end_ms`` are the latencies in
audio time (meaningful at speed 1).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from rtlab.protocol.usp import PRICE_MODEL

from .metrics import normalize

__all__ = ["AZURE_SPEECH_KIND", "AZURE_SPEECH_MODEL", "azure_speech_turn_rows"]

AZURE_SPEECH_KIND = "azure-speech"
AZURE_SPEECH_MODEL = PRICE_MODEL
_PREFIX = "azure_speech."
_TICKS_PER_MS = 10_000
_NAN = float("nan")


@dataclass
class _Phrase:
    offset_ticks: int
    snapshots: list[tuple[float, dict]] = field(default_factory=list)  # (t_ms, event)
    final: dict | None = None
    t_final_ms: float = _NAN
    first_audio_ms: float = _NAN  # the run's audio clock when the first text arrived
    final_audio_ms: float = _NAN


def _event(value: Any) -> dict:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        try:
            obj = json.loads(value)
        except ValueError:
            return {}
        return obj if isinstance(obj, dict) else {}
    return {}


def _speaker(value: Any) -> str | None:
    return value if isinstance(value, str) and value and value != "Unknown" else None


def _ms(ticks: Any) -> float:
    return float(ticks) / _TICKS_PER_MS if isinstance(ticks, int | float) and not isinstance(ticks, bool) else _NAN


def azure_speech_turn_rows(frame: pd.DataFrame, source: str, **ctx: Any) -> list[dict]:
    """Turn evidence rows of one Azure Speech source (see the module docstring).

    Parameters
    ----------
    frame : pandas.DataFrame
        ``EventLog.to_frame()`` rows of this source (columns ``seq, t_ms, type, event``, at least); the ``event``
        column may hold dicts, lazy events or JSON strings. Rows of other types are ignored.
    source : str
        The source label, copied into every row.
    **ctx
        ``model``: the price-table name to report (default ``"azure-speech"``). Other keys are ignored.

    Returns
    -------
    list of dict
        One row per phrase, in order of the phrases' first events.
    """
    model = ctx.get("model") or AZURE_SPEECH_MODEL
    if len(frame) == 0:
        return []
    df = frame.sort_values("seq") if "seq" in frame.columns else frame
    types = df["type"].astype(str).to_numpy()
    t_ms = pd.to_numeric(df["t_ms"], errors="coerce").to_numpy(dtype=float)
    clock = (pd.to_numeric(df["audio_ms"], errors="coerce").to_numpy(dtype=float) if "audio_ms" in df.columns
             else [_NAN] * len(df))
    events = df["event"].tolist() if "event" in df.columns else [None] * len(df)
    rows: list[dict] = []
    open_: _Phrase | None = None
    prev_end_ms = 0.0

    def close(p: _Phrase, status: str, error: str | None) -> None:
        nonlocal prev_end_ms
        row = _row(p, source, model, status, error, prev_end_ms)
        if status == "completed" and math.isfinite(row["audio_end_ms"]):
            prev_end_ms = max(prev_end_ms, row["audio_end_ms"])
        rows.append(row)

    for etype, t, audio_ms, raw in zip(types, t_ms, clock, events, strict=True):
        if not etype.startswith(_PREFIX):
            continue
        kind = etype[len(_PREFIX):]
        if kind not in ("transcribing", "transcribed", "canceled"):
            continue
        e = _event(raw)
        if kind == "canceled":
            if e.get("reason") != "Error":
                continue
            message = f"{e.get('error_code') or 'Error'}: {e.get('error_details') or ''}".strip().rstrip(":")
            if open_ is not None:
                close(open_, "failed", message)
                open_ = None
            else:
                rows.append(_session_failure(source, model, message, float(t), len(rows)))
            continue
        offset = e.get("offset_ticks")
        offset = int(offset) if isinstance(offset, int | float) and not isinstance(offset, bool) else -1
        if open_ is not None and open_.offset_ticks != offset:
            close(open_, "failed", "superseded by a later phrase without a final result")
            open_ = None
        if kind == "transcribing":
            if open_ is None:
                open_ = _Phrase(offset, first_audio_ms=float(audio_ms))
            open_.snapshots.append((float(t), e))
            continue
        reason = e.get("reason")
        phrase = open_ if open_ is not None else _Phrase(offset, first_audio_ms=float(audio_ms))
        open_ = None
        phrase.final, phrase.t_final_ms, phrase.final_audio_ms = e, float(t), float(audio_ms)
        if reason == "RecognizedSpeech":
            close(phrase, "completed", None)
        elif phrase.snapshots:
            close(phrase, "failed", f"no final text ({reason})")
    if open_ is not None:
        close(open_, "pending", None)
    return rows


def _session_failure(source: str, model: str, message: str, t: float, n: int) -> dict:
    return {"source": source, "item_id": f"canceled:{n}", "kind": AZURE_SPEECH_KIND, "audio_start_ms": _NAN,
            "audio_end_ms": _NAN, "transcript": None, "status": "failed", "error": message,
            "t_speech_stopped_ms": _NAN, "t_first_ms": _NAN, "t_final_ms": t, "n_deltas": 0, "n_revisions": 0,
            "model": model, "usage": None, "speaker": None, "offset_ticks": None, "duration_ticks": None,
            "result_id": None, "reason": "Canceled", "partials": [], "deltas": [], "t_last_partial_ms": _NAN,
            "first_audio_ms": _NAN, "final_audio_ms": _NAN}


def _row(p: _Phrase, source: str, model: str, status: str, error: str | None, prev_end_ms: float) -> dict:
    partials = [str(e.get("text") or "") for _, e in p.snapshots]
    deltas: list[str] = []
    revisions = 0
    shown = ""
    for text in partials:
        if text.startswith(shown):
            if len(text) > len(shown):
                deltas.append(text[len(shown):])
        else:
            revisions += 1
        shown = text
    final = p.final if status == "completed" else None
    if final is not None and partials:
        said, heard = normalize(final.get("text") or "").split(), normalize(shown).split()
        if said[:len(heard)] != heard:
            revisions += 1
        elif len(said) > len(heard):
            deltas.append(" " + " ".join(said[len(heard):]) if heard else " ".join(said))
    last = final or (p.snapshots[-1][1] if p.snapshots else p.final or {})
    start = _ms(last.get("offset_ticks"))
    end = start + _ms(last.get("duration_ticks")) if math.isfinite(start) else _NAN
    if final is not None:
        transcript = final.get("text") or ""
    elif status == "pending":
        transcript = shown or None
    else:
        transcript = None
    usage = None
    if final is not None and math.isfinite(end):
        usage = {"type": "duration", "seconds": round(max(0.0, end - prev_end_ms) / 1000.0, 3)}
    speaker = _speaker(final.get("speaker_id")) if final is not None else None
    if speaker is None and p.snapshots:
        speaker = _speaker(p.snapshots[-1][1].get("speaker_id"))
    t_first = p.snapshots[0][0] if p.snapshots else p.t_final_ms
    result_id = (p.final or {}).get("result_id")
    return {
        "source": source,
        "item_id": str(result_id) if result_id else f"offset:{p.offset_ticks}",
        "kind": AZURE_SPEECH_KIND,
        "audio_start_ms": start,
        "audio_end_ms": end,
        "transcript": transcript,
        "status": status,
        "error": error,
        "t_speech_stopped_ms": _NAN,
        "t_first_ms": t_first,
        "t_final_ms": p.t_final_ms if final is not None else _NAN,
        "n_deltas": len(deltas),
        "n_revisions": revisions,
        "model": model,
        "usage": usage,
        "speaker": speaker,
        "offset_ticks": p.offset_ticks if p.offset_ticks >= 0 else None,
        "duration_ticks": last.get("duration_ticks"),
        "result_id": result_id,
        "reason": (p.final or {}).get("reason"),
        "partials": partials,
        "deltas": deltas,
        "t_last_partial_ms": p.snapshots[-1][0] if p.snapshots else _NAN,
        "first_audio_ms": p.first_audio_ms,
        "final_audio_ms": p.final_audio_ms if final is not None else _NAN,
    }
