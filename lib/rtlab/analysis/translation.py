"""Turn evidence of a translation session's source transcript (layer: analysis).

A ``gpt-realtime-translate`` session has no items, no commits and no ``speech_stopped``: its source transcript
is a stream of append-only ``session.input_transcript.delta`` events, each with ``elapsed_ms`` (input audio
consumed, on a 200 ms grid). :func:`translation_turn_rows` cuts that stream into turns so it compares with
every other transcription source (first/final text times, audio span, transcript), and lays the translated
transcript (``session.output_transcript.delta``) beside each turn.

Turns come from

* the given ``speech_turns`` (a DataFrame with ``audio_start_ms``/``audio_end_ms``, e.g. another source's VAD
  turns or the references): each delta belongs to the last turn that started at or before its ``elapsed_ms``
  (its audio had been heard by then); the turn's span is that turn's;
* otherwise the gaps in ``elapsed_ms``: a gap longer than ``gap_ms`` between two deltas starts a new turn; the
  span is then when text appeared on the input clock (first and last delta's ``elapsed_ms``), late by the
  recognizer's lag at the start and by its end-of-speech wait at the end (``span_source == "elapsed_ms"``).

``elapsed_ms`` is optional in the SDK ("when available"); a delta without it is placed at the audio clock of
its record (``audio_ms``: input audio sent when it arrived).

Row keys: the shared contract (``source, item_id, kind, audio_start_ms, audio_end_ms, transcript, status,
error, t_speech_stopped_ms, t_first_ms, t_final_ms, n_deltas, n_revisions, model, usage, speaker``) plus

==========================  =========================================================================
``translation``             the translated text laid beside the turn (joined output deltas), or None
``translation_language``    ``audio.output.language`` of the session
``t_first_translation_ms``  log time of the turn's first translated text
``translation_error``       the session's error messages (e.g. a missing language pair), or None
``elapsed_first_ms``        ``elapsed_ms`` of the turn's first and final source delta
``elapsed_final_ms``
``span_source``             ``"speech_turns"`` or ``"elapsed_ms"``: where the audio span comes from
``session_model``           the translation model (the session is billed per audio minute, not per turn:
                            see :func:`translation_usage`)
==========================  =========================================================================
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from rtlab.protocol import translation as T

__all__ = ["KIND", "translation_probe_row", "translation_turn_rows", "translation_usage"]

KIND = "translation"
INPUT_DELTA = "session.input_transcript.delta"
OUTPUT_DELTA = "session.output_transcript.delta"
APPEND = "session.input_audio_buffer.append"
NAN = math.nan


@dataclass(frozen=True)
class _Delta:
    t_ms: float
    at_ms: float  # elapsed_ms, or the record's audio_ms when the event has none
    text: str


def _events(frame: pd.DataFrame, source: str) -> list[tuple[str, float, float, str, dict]]:
    """(direction, t_ms, audio_ms, type, event) of ``source``'s records, in log order."""
    f = frame[frame["source"] == source] if "source" in frame.columns else frame
    if "seq" in f.columns:
        f = f.sort_values("seq", kind="stable")
    out = []
    for direction, t_ms, audio_ms, etype, event in zip(
        f["direction"], f["t_ms"], f["audio_ms"], f["type"], f["event"], strict=True
    ):
        if isinstance(event, Mapping):
            out.append((str(direction), float(t_ms), _num(audio_ms), str(etype), dict(event)))
    return out


def _num(v: object) -> float:
    try:
        x = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return NAN
    return x if math.isfinite(x) else NAN


def _delta(t_ms: float, audio_ms: float, event: dict) -> _Delta | None:
    text = event.get("delta")
    if not isinstance(text, str) or not text:
        return None
    at = _num(event.get("elapsed_ms"))
    return _Delta(t_ms, audio_ms if math.isnan(at) else at, text)


def _session_config(
    events: list[tuple[str, float, float, str, dict]],
) -> tuple[str | None, str | None, str | None]:
    """(transcription model, output language, session model): the last server session event's, else the
    client's."""
    model = language = session_model = None
    for direction, _, _, etype, event in events:
        if etype not in ("session.created", "session.updated", "session.update"):
            continue
        if direction == "client" and etype != "session.update":
            continue
        session = event.get("session") if isinstance(event.get("session"), Mapping) else {}
        audio = session.get("audio") if isinstance(session.get("audio"), Mapping) else {}
        inp = audio.get("input") if isinstance(audio.get("input"), Mapping) else {}
        out = audio.get("output") if isinstance(audio.get("output"), Mapping) else {}
        server = direction == "server"
        if "transcription" in inp and (server or model is None):
            tr = inp["transcription"]
            model = tr.get("model") if isinstance(tr, Mapping) else None
        if "language" in out and (server or language is None):
            language = out["language"]
        if server and isinstance(session.get("model"), str):
            session_model = session["model"]
    return model, language, session_model


def _group_by_gaps(deltas: list[_Delta], gap_ms: float) -> list[list[_Delta]]:
    groups: list[list[_Delta]] = []
    for d in deltas:
        if groups and d.at_ms - groups[-1][-1].at_ms <= gap_ms:
            groups[-1].append(d)
        else:
            groups.append([d])
    return groups


def _owner(starts: list[float], at_ms: float) -> int:
    """Index of the last turn that started at or before ``at_ms`` (the first turn for earlier text)."""
    k = 0
    for i, start in enumerate(starts):
        if start <= at_ms:
            k = i
    return k


def translation_turn_rows(
    frame: pd.DataFrame, source: str, speech_turns: pd.DataFrame | None = None, *, gap_ms: float = 1000.0
) -> list[dict]:
    """Turn evidence rows for one translation source (see the module docstring for the row keys).

    Parameters
    ----------
    frame : pandas.DataFrame
        ``EventLog.to_frame()`` (rows of other sources are ignored).
    source : str
        The translation leg's source label, e.g. ``"sidecar:translate:es"``.
    speech_turns : pandas.DataFrame, optional
        Turns to group by (``audio_start_ms``, ``audio_end_ms``); one row per turn, with an empty transcript
        for a turn that got no source text.
    gap_ms : float
        Without ``speech_turns``: a pause in ``elapsed_ms`` longer than this starts a new turn.

    Returns
    -------
    list of dict
        One row per turn, in audio order.
    """
    events = _events(frame, source)
    inputs = [
        d for dr, t, a, et, ev in events if dr == "server" and et == INPUT_DELTA if (d := _delta(t, a, ev))
    ]
    outputs = [
        d for dr, t, a, et, ev in events if dr == "server" and et == OUTPUT_DELTA if (d := _delta(t, a, ev))
    ]
    closed = any(dr == "server" and et == "session.closed" for dr, _, _, et, _ in events)
    errors = [
        ev.get("error", {}).get("message")
        for dr, _, _, et, ev in events
        if dr == "server" and et == "error" and isinstance(ev.get("error"), Mapping)
    ]
    error_text = "; ".join(dict.fromkeys(str(m) for m in errors if m)) or None
    model, language, session_model = _session_config(events)

    if speech_turns is not None and len(speech_turns):
        spans = sorted(
            zip(
                speech_turns["audio_start_ms"].astype(float),
                speech_turns["audio_end_ms"].astype(float),
                strict=True,
            )
        )
        starts = [s for s, _ in spans]
        groups: list[list[_Delta]] = [[] for _ in spans]
        for d in inputs:
            groups[_owner(starts, d.at_ms)].append(d)
        span_source = "speech_turns"
    else:
        groups = _group_by_gaps(inputs, gap_ms)
        spans = [(g[0].at_ms, g[-1].at_ms) for g in groups]
        starts = [s for s, _ in spans]
        span_source = "elapsed_ms"
    translated: list[list[_Delta]] = [[] for _ in groups]
    for d in outputs:
        if groups:
            translated[_owner(starts, d.at_ms)].append(d)

    last_with_text = max((i for i, g in enumerate(groups) if g), default=-1)
    rows = []
    for k, (group, (start, end)) in enumerate(zip(groups, spans, strict=True)):
        text = "".join(d.text for d in group).strip()
        out_text = "".join(d.text for d in translated[k]).strip()
        done = closed or k < last_with_text
        rows.append(
            {
                "source": source,
                "item_id": f"{source}#turn{k + 1}",
                "kind": KIND,
                "audio_start_ms": float(start),
                "audio_end_ms": float(end),
                "transcript": text,
                "status": "completed" if done else "pending",
                "error": None,
                "t_speech_stopped_ms": NAN,
                "t_first_ms": group[0].t_ms if group else NAN,
                "t_final_ms": group[-1].t_ms if group else NAN,
                "n_deltas": len(group),
                "n_revisions": 0,
                "model": model,
                "usage": None,
                "speaker": None,
                "translation": out_text or None,
                "translation_language": language,
                "t_first_translation_ms": translated[k][0].t_ms if translated[k] else NAN,
                "translation_error": error_text,
                "elapsed_first_ms": group[0].at_ms if group else NAN,
                "elapsed_final_ms": group[-1].at_ms if group else NAN,
                "span_source": span_source,
                "session_model": session_model,
            }
        )
    return rows


def translation_usage(frame: pd.DataFrame, source: str) -> dict:
    """What the session is billed on: ``{"type": "duration", "seconds": S}``, the input audio appended.

    Price it with ``rtlab.analysis.cost.cost(usage, "gpt-realtime-translate")`` (per audio minute). Appends stored
    as references to the log's input track (``{"$ref": "input", "samples": N}``) and appends still carrying
    base64 audio are both counted (24 kHz PCM16).
    """
    samples = 0
    for direction, _, _, etype, event in _events(frame, source):
        if direction != "client" or etype != APPEND:
            continue
        audio = event.get("audio")
        if isinstance(audio, Mapping):
            samples += int(audio.get("samples") or 0)
        elif isinstance(audio, str):
            try:
                samples += len(base64.b64decode(audio, validate=True)) // 2
            except (binascii.Error, ValueError):
                continue
    return {"type": "duration", "seconds": samples / T.SAMPLE_RATE}


def translation_probe_row(frame: pd.DataFrame, source: str) -> dict:
    """One probe result for a translation attempt, in the probe's columns (``rtlab.probe.RESULT_COLUMNS``).

    ``outcome``: ``not-applicable`` (the target has no translation surface, e.g. the Azure preview API),
    ``handshake-refused`` (HTTP status and body of the refused upgrade), ``error-event`` (the first
    ``error`` event), ``ok`` (source transcript deltas and ``session.closed``), ``no-transcript`` (the session
    ran, no source text came). ``deltas_stream`` is True when source text arrived while audio was still being
    sent (before the client's ``session.close``). Latency columns are left to the turns table.
    """
    events = _events(frame, source)
    row: dict = {
        "outcome": None,
        "http_status": None,
        "error_code": None,
        "error_message": None,
        "deltas_stream": False,
        "n_deltas": 0,
        "completed": False,
        "first_delta_ms": None,
        "final_ms": None,
        "transcript": None,
    }
    for direction, _, _, etype, event in events:
        if (
            direction == "server" and etype == "rtlab.leg_error"
        ):  # the target cannot take a translation session
            row.update(outcome="not-applicable", error_message=event.get("message"))
            return row
        if direction == "server" and etype == "rtlab.handshake_failed":
            row.update(
                outcome="handshake-refused",
                http_status=event.get("status"),
                error_code=event.get("code"),
                error_message=event.get("message"),
            )
            return row
    close_t = next((t for d, t, _, et, _ in events if d == "client" and et == "session.close"), math.inf)
    inputs = [(t, ev) for d, t, _, et, ev in events if d == "server" and et == INPUT_DELTA]
    closed = any(d == "server" and et == "session.closed" for d, _, _, et, _ in events)
    text = "".join(str(ev.get("delta") or "") for _, ev in inputs).strip()
    row.update(
        n_deltas=len(inputs),
        completed=bool(text) and closed,
        transcript=text or None,
        deltas_stream=any(t < close_t for t, _ in inputs),
    )
    error = next((ev.get("error") for d, _, _, et, ev in events if d == "server" and et == "error"), None)
    if isinstance(error, Mapping):
        row.update(outcome="error-event", error_code=error.get("code"), error_message=error.get("message"))
    else:
        row["outcome"] = "ok" if text else "no-transcript"
    return row
