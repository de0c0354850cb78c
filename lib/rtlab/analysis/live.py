"""Turn evidence of a GPT-Live source: :func:`live_turn_rows` (layer: analysis).

GPT-Live's input transcript has no items, turns or done events: it is a stream of append-only fragments
(``session.input_transcript.delta``) stamped with ``start_ms``/``end_ms`` on the session timeline. To compare it
with turn-based sources, the fragments are aligned to *speech turns* on the shared input-audio clock:

1. the turns given by the caller (``speech_turns``: another source's turns or the reference utterances, with
   ``audio_start_ms``/``audio_end_ms``), else
2. the turns a VAD finds in the recorded input audio (:class:`~rtlab.engines.pipeline.LocalPipeline` with
   ``recognize=False``; the audio comes from ``input_audio=`` — ``EventLog.input_audio()`` — or from the
   ``session.input_audio.append`` events themselves when they carry their audio), else
3. groups of fragments separated by more than :data:`GAP_MS` of timeline.

Each fragment goes to the turn its span overlaps most (or the nearest turn). The session timeline is taken to be
the input audio clock, shifted by ``timeline_offset_ms`` (0: the leg streams from the session's start, as
:class:`rtlab.runs.live.LiveLeg` does; rtlab's emulator makes the timeline exactly the input audio received).

Rows follow the per-source turn contract of :mod:`rtlab.analysis` (``kind="gpt-live"``, ``n_revisions=0``:
the protocol is append-only; ``t_speech_stopped_ms`` NaN: GPT-Live sends no end-of-speech event). Family columns:

=======================  =======================================================================================
``output_transcript``    what the assistant said in answer to this user turn: output fragments form utterances
                         (no timeline gap over :data:`ANSWER_GAP_MS`); an utterance answers the last turn that
                         ended before it began
``t_first_output_ms``    log time of the first of those fragments (the assistant's response latency anchor)
``output_start_ms``      their first ``start_ms`` on the session timeline
``fragments``            the turn's input fragments: ``[{"start_ms", "end_ms", "delta", "t_ms"}, ...]``
``turn_ref``             ``item_id`` of the speech turn the row is aligned to (when ``speech_turns`` has one)
``usage_basis``          how ``usage`` was derived (see below)
``usage_emulated``       True when the source was rtlab's emulator (its ``info`` event ``rtlab_emulator``)
``close_reason``         ``session.closed.reason`` (None when the session did not close)
=======================  =======================================================================================

Usage: GPT-Live bills session *duration* per second (silence included; :data:`rtlab.protocol.live.PRICES`), and
``session.usage.updated`` is cumulative for the session. The final cumulative seconds (``session.closed`` or the
last update) are split across the turns at their ends on the timeline — turn *k* gets the session time after turn
*k-1* ended up to its own end, the last turn the rest — so the rows add up to the session's billed duration.
Each row's ``usage`` is ``{"type": "duration", "seconds": S}``. An emulator's usage is emulated, not billed.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ANSWER_GAP_MS", "GAP_MS", "KIND", "classify_live", "live_turn_rows", "speech_turns_from_audio"]

KIND = "gpt-live"
GAP_MS = 1000.0  # fragment groups (no turns, no audio): a pause this long starts a new group
ANSWER_GAP_MS = 150.0  # output fragments further apart than this on the timeline belong to separate utterances
EMULATOR_INFO_CODE = "rtlab_emulator"
_LAW = {"audio/pcmu": "ULAW", "audio/pcma": "ALAW"}


def speech_turns_from_audio(samples: np.ndarray, sample_rate: int, *, engines: Any = None) -> pd.DataFrame:
    """Speech turns of ``samples`` (int16 mono) found by the local VAD: ``audio_start_ms``, ``audio_end_ms``.

    ``audio_start_ms`` includes the VAD's prefix padding (as a Realtime ``speech_started``); ``audio_end_ms`` is
    the end of the last speech frame.
    """
    from rtlab.engines import default_engines
    from rtlab.engines.pipeline import LocalPipeline, SpeechStarted, SpeechStopped

    pipe = LocalPipeline(engines or default_engines(), partials=False, recognize=False,
                         sample_rate=int(sample_rate))
    events = pipe.feed(np.asarray(samples, dtype=np.int16)) + pipe.flush()
    pipe.close()
    starts = {e.segment: e.audio_start_ms for e in events if isinstance(e, SpeechStarted)}
    rows = [{"audio_start_ms": starts[e.segment], "audio_end_ms": e.speech_end_ms}
            for e in events if isinstance(e, SpeechStopped) and e.segment in starts]
    return pd.DataFrame(rows, columns=["audio_start_ms", "audio_end_ms"])


def _decode_appends(events: list[dict], fmt: Mapping[str, Any] | None) -> tuple[np.ndarray, int] | None:
    """The input audio carried inline by ``session.input_audio.append`` events (None when it is not there)."""
    ftype = (fmt or {}).get("type", "audio/pcm")
    rate = int((fmt or {}).get("rate") or (24000 if ftype == "audio/pcm" else 8000))
    parts: list[np.ndarray] = []
    for ev in events:
        audio = ev.get("audio")
        if not isinstance(audio, str):
            return None  # stored in a track ($ref): the caller passes input_audio=
        try:
            raw = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            continue
        if ftype == "audio/pcm":
            parts.append(np.frombuffer(raw[: len(raw) - len(raw) % 2], dtype="<i2").astype(np.int16))
        elif raw:
            import soundfile as sf

            pcm, _ = sf.read(io.BytesIO(raw), format="RAW", subtype=_LAW[ftype], samplerate=rate, channels=1,
                             dtype="int16")
            parts.append(np.asarray(pcm, np.int16).reshape(-1))
    if not parts:
        return None
    return np.concatenate(parts), rate


def _groups(fragments: list[dict]) -> pd.DataFrame:
    rows: list[dict] = []
    for f in sorted(fragments, key=lambda f: f["start_ms"]):
        if rows and f["start_ms"] - rows[-1]["audio_end_ms"] <= GAP_MS:
            rows[-1]["audio_end_ms"] = max(rows[-1]["audio_end_ms"], f["end_ms"])
        else:
            rows.append({"audio_start_ms": f["start_ms"], "audio_end_ms": f["end_ms"]})
    return pd.DataFrame(rows, columns=["audio_start_ms", "audio_end_ms"])


def _assign(start: float, end: float, turns: pd.DataFrame) -> int:
    """Index of the turn whose span overlaps [start, end] most, else the nearest one."""
    s, e = turns["audio_start_ms"].to_numpy(float), turns["audio_end_ms"].to_numpy(float)
    overlap = np.minimum(e, end) - np.maximum(s, start)
    if (overlap > 0).any():
        return int(np.argmax(overlap))
    gap = np.maximum(s - end, start - e)
    return int(np.argmin(gap))


def _num(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan


def live_turn_rows(frame: pd.DataFrame, source: str, speech_turns: pd.DataFrame | None = None, *,
                   input_audio: tuple[np.ndarray, int] | None = None, timeline_offset_ms: float = 0.0,
                   engines: Any = None, **_: Any) -> list[dict]:
    """Turn evidence rows of the GPT-Live source ``source`` (see the module docstring for the columns).

    Parameters
    ----------
    frame : pandas.DataFrame
        ``EventLog.to_frame()`` (filtered to ``source`` or not).
    source : str
        The Live leg's source label (``in-session`` when it was the run's voice session).
    speech_turns : pandas.DataFrame, optional
        Turns on the shared audio clock (``audio_start_ms``, ``audio_end_ms``, optionally ``item_id``).
    input_audio : (samples, sample_rate), optional
        The run's input track (``EventLog.input_audio()``) for VAD turns when ``speech_turns`` is None.
    timeline_offset_ms : float
        Audio-clock position of the session timeline's origin.
    engines : EngineSet, optional
        For the VAD (default :func:`rtlab.engines.default_engines`).
    """
    f = frame[frame["source"] == source].sort_values("seq")
    fragments: list[dict] = []
    outputs: list[dict] = []
    appends: list[dict] = []
    usage_seconds: float | None = None
    model = fmt = close_reason = None
    started = emulated = False
    errors: list[str] = []
    for direction, etype, t_ms, ev in zip(f["direction"], f["type"], f["t_ms"], f["event"], strict=True):
        ev = ev if isinstance(ev, Mapping) else {}
        if direction == "client":
            if etype == "session.start" and model is None:
                session = ev.get("session") or {}
                model = session.get("model")
                fmt = (session.get("audio") or {}).get("format")
            elif etype == "session.input_audio.append":
                appends.append(ev)
            continue
        if etype in ("session.input_transcript.delta", "session.output_transcript.delta"):
            item = {"start_ms": _num(ev.get("start_ms")) + timeline_offset_ms,
                    "end_ms": _num(ev.get("end_ms")) + timeline_offset_ms,
                    "delta": str(ev.get("delta") or ""), "t_ms": float(t_ms)}
            (fragments if etype == "session.input_transcript.delta" else outputs).append(item)
        elif etype == "session.started":
            started = True
            session = ev.get("session") or {}
            model = session.get("model") or model
            fmt = (session.get("audio") or {}).get("format") or fmt
        elif etype in ("session.usage.updated", "session.closed"):
            seconds = _num((ev.get("usage") or {}).get("seconds"))
            if math.isfinite(seconds):
                usage_seconds = seconds
            if etype == "session.closed":
                close_reason = ev.get("reason")
        elif etype == "info" and ev.get("code") == EMULATOR_INFO_CODE:
            emulated = True
        elif etype in ("error", "rtlab.handshake_failed"):
            err = ev.get("error") if isinstance(ev.get("error"), Mapping) else ev
            errors.append(f"{err.get('code')}: {err.get('message')}")

    turns, turn_ref = _turns(speech_turns, input_audio, appends, fmt, fragments, engines)
    n = len(turns)
    if n == 0:
        if started or not errors:
            return []
        return [_row(source, "live:0", math.nan, math.nan, [], [], model, None, None, emulated, close_reason,
                     status="failed", error=errors[0])]
    owner = [_assign(fr["start_ms"], fr["end_ms"], turns) for fr in fragments]
    out_owner = _answer_owners(outputs, turns)
    shares = _usage_shares(turns["audio_end_ms"].to_numpy(float) - timeline_offset_ms, usage_seconds)
    last_owner = max(owner) if owner else -1
    rows = []
    for k in range(n):
        mine = [fr for fr, o in zip(fragments, owner, strict=True) if o == k]
        said = [o for o, w in zip(outputs, out_owner, strict=True) if w == k]
        if not started:
            status, error = "failed", (errors[0] if errors else "the session did not start")
        else:
            status = "completed" if close_reason is not None or k < last_owner else "pending"
            error = None
        usage = None if shares is None else {"type": "duration", "seconds": round(shares[k], 3)}
        rows.append(_row(source, f"live:{k}", float(turns["audio_start_ms"].iloc[k]),
                         float(turns["audio_end_ms"].iloc[k]), mine, said, model, usage, turn_ref[k], emulated,
                         close_reason, status=status, error=error))
    return rows


def _turns(speech_turns: pd.DataFrame | None, input_audio: tuple[np.ndarray, int] | None, appends: list[dict],
           fmt: Mapping[str, Any] | None, fragments: list[dict], engines: Any) -> tuple[pd.DataFrame, list]:
    if speech_turns is not None:
        missing = {"audio_start_ms", "audio_end_ms"} - set(speech_turns.columns)
        if missing:
            raise ValueError(f"speech_turns needs columns audio_start_ms and audio_end_ms; missing {sorted(missing)}")
        turns = speech_turns.sort_values("audio_start_ms").reset_index(drop=True)
        refs = list(turns["item_id"]) if "item_id" in turns.columns else [None] * len(turns)
        return turns[["audio_start_ms", "audio_end_ms"]].astype(float), refs
    audio = input_audio
    if audio is None or not len(audio[0]):
        audio = _decode_appends(appends, fmt)
    if audio is not None and len(audio[0]):
        turns = speech_turns_from_audio(audio[0], audio[1], engines=engines)
        if len(turns):
            return turns, [None] * len(turns)
    turns = _groups(fragments)
    return turns, [None] * len(turns)


def _usage_shares(ends_ms: np.ndarray, total_s: float | None) -> list[float] | None:
    if total_s is None:
        return None
    bounds = np.minimum(np.maximum(ends_ms / 1000.0, 0.0), total_s)
    bounds[-1] = total_s
    bounds = np.maximum.accumulate(bounds)
    return [float(x) for x in np.diff(np.concatenate([[0.0], bounds]))]


def _answer_owners(outputs: list[dict], turns: pd.DataFrame) -> list[int]:
    """The user turn each output fragment answers: output fragments form utterances (runs without a timeline gap
    over :data:`ANSWER_GAP_MS`); an utterance answers the last user turn that ended before it began."""
    ends = turns["audio_end_ms"].to_numpy(float)
    owners: list[int] = []
    utterance_start, prev_end = math.nan, -math.inf
    for o in outputs:
        if not o["start_ms"] - prev_end <= ANSWER_GAP_MS:
            utterance_start = o["start_ms"]
        prev_end = max(prev_end, o["end_ms"])
        owners.append(max(int(np.searchsorted(ends, utterance_start, side="right")) - 1, 0))
    return owners


def _row(source: str, item_id: str, start: float, end: float, mine: list[dict], said: list[dict], model: Any,
         usage: dict | None, turn_ref: Any, emulated: bool, close_reason: Any, *, status: str,
         error: str | None) -> dict:
    text = "".join(fr["delta"] for fr in mine).strip() if status != "failed" else None
    basis = ("session duration billed per second, final cumulative usage split across turns at their ends"
             + (" (emulated by rtlab's emulator, not billed)" if emulated else ""))
    return {
        "source": source, "item_id": item_id, "kind": KIND,
        "audio_start_ms": start, "audio_end_ms": end,
        "transcript": text, "status": status, "error": error,
        "t_speech_stopped_ms": math.nan,
        "t_first_ms": mine[0]["t_ms"] if mine else math.nan,
        "t_final_ms": mine[-1]["t_ms"] if mine else math.nan,
        "n_deltas": len(mine), "n_revisions": 0,
        "model": model, "usage": usage, "speaker": None,
        "output_transcript": "".join(o["delta"] for o in said).strip() or None,
        "t_first_output_ms": said[0]["t_ms"] if said else math.nan,
        "output_start_ms": said[0]["start_ms"] if said else math.nan,
        "fragments": [dict(fr) for fr in mine],
        "turn_ref": turn_ref,
        "usage_basis": basis if usage is not None else None,
        "usage_emulated": emulated,
        "close_reason": close_reason,
    }


def classify_live(frame: pd.DataFrame, source: str) -> dict:
    """One probe row for a GPT-Live attempt: was the session available, and did its input transcript arrive?

    Keys match :data:`rtlab.probe.RESULT_COLUMNS` where they apply: ``outcome`` (``ok``, ``handshake-refused``,
    ``error-event`` (refused at ``session.start``), ``no-transcript``), ``http_status``, ``error_code``,
    ``error_message``, ``n_deltas`` (input transcript fragments), ``deltas_stream`` (a fragment arrived while audio
    was still being sent), ``completed`` (``session.closed`` arrived), ``transcript``; plus ``model`` as the
    service resolved it and ``emulated``.
    """
    f = frame[frame["source"] == source].sort_values("seq")
    server = f[f["direction"] == "server"]
    out: dict[str, Any] = {"n_deltas": 0, "deltas_stream": False, "completed": False}
    hs = server[server["type"] == "rtlab.handshake_failed"]
    if len(hs):
        ev = hs["event"].iloc[0]
        return {**out, "outcome": "handshake-refused", "http_status": ev.get("status"), "error_code": ev.get("code"),
                "error_message": ev.get("message")}
    started = server[server["type"] == "session.started"]
    fragments = server[server["type"] == "session.input_transcript.delta"]
    appends = f[(f["direction"] == "client") & (f["type"] == "session.input_audio.append")]
    out["n_deltas"] = int(len(fragments))
    out["deltas_stream"] = bool(len(fragments) and len(appends)
                                and fragments["t_ms"].iloc[0] < appends["t_ms"].iloc[-1])
    out["completed"] = bool((server["type"] == "session.closed").any())
    out["transcript"] = "".join(str(e.get("delta") or "") for e in fragments["event"]).strip() or None
    out["emulated"] = any(e.get("code") == EMULATOR_INFO_CODE for e in server[server["type"] == "info"]["event"])
    if len(started):
        out["model"] = (started["event"].iloc[0].get("session") or {}).get("model")
    errors = server[server["type"] == "error"]
    if not len(started) and len(errors):
        err = errors["event"].iloc[0].get("error") or {}
        return {**out, "outcome": "error-event", "error_code": err.get("code"), "error_message": err.get("message")}
    out["outcome"] = "ok" if len(fragments) else "no-transcript"
    return out
