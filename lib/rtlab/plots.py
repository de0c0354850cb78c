"""Pictures of runs, studies and probes: matplotlib figures for notebooks and reports.

Layer: views. Every function takes plain data (an event frame, a turns table, a probe frame) and returns a
``matplotlib.figure.Figure`` built with the object API (no pyplot state: a notebook shows it with ``display(fig)``
or as a cell's last value, a report saves it with ``fig.savefig``). Nothing here computes a metric of its own:
WER comes from :mod:`rtlab.analysis.metrics`, percentiles are the same linear-interpolation percentiles
:func:`rtlab.analysis.metrics.latency_summary` reports, intervals come from :func:`rtlab.stats.bootstrap_ci`.

- :func:`swimlane` — one turn, every source on one clock: when speech started and stopped, when partial and final
  text arrived, when responses ran, for any protocol family (the event types are mapped to roles by
  :data:`rtlab.protocol.events.EVENT_ROLES`, so Azure Speech and translation sidecars sit on the same lanes as Realtime sources).
- :func:`latency_distributions` — per-turn latencies per source, with the median and p95 and their bootstrap
  intervals.
- :func:`wer_by_condition` — corpus WER per source and condition, with bootstrap intervals over turns.
- :func:`probe_heatmap` — the probe's model × surface matrix, coloured by outcome.

Honest labels: pass ``provenance`` (e.g. ``{"engine": "pocketsphinx (local emulator)", "timing": "modelled",
"cost_basis": "emulated"}``, or :func:`provenance_of` a run) and the figure says in a footnote which engine produced
the text, which timing model produced the latencies and what the costs are based on. Offline, every source's text
comes from the same local recognizer: a figure that compares sources should say so.

The figures display themselves as PNG in a notebook (``_repr_png_``), with or without pyplot's inline backend.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .errors import RtlabError
from .protocol.events import role_of

__all__ = [
    "OUTCOME_COLORS",
    "ROLE_STYLES",
    "PlotFigure",
    "latency_distributions",
    "probe_heatmap",
    "provenance_note",
    "provenance_of",
    "swimlane",
    "wer_by_condition",
]

#: Legend label, colour and marker of each role.
ROLE_STYLES: dict[str, tuple[str, str, str]] = {
    "speech_start": ("speech started", "#4e79a7", ">"),
    "speech_stop": ("speech stopped", "#1f3b63", "<"),
    "commit": ("committed", "#59a14f", "s"),
    "partial": ("partial text", "#f28e2b", "|"),
    "final": ("final text", "#b07aa1", "D"),
    "response_start": ("response", "#76b7b2", ""),
    "response_end": ("response", "#76b7b2", ""),
    "output": ("response output (text/audio)", "#2a7f7a", "."),
    "error": ("error / failed", "#e15759", "X"),
}

#: Colours of probe outcomes (``ok (streams)``: some text arrived before the end of speech).
OUTCOME_COLORS: dict[str, str] = {
    "ok (streams)": "#2f8f46",
    "ok": "#8cd17d",
    "no-transcript": "#d7d7d7",
    "transcription-failed": "#f1ce63",
    "error-event": "#f28e2b",
    "handshake-refused": "#e15759",
    "no-answer": "#b07aa1",
    "not-applicable": "#f4f4f4",
    "—": "#ffffff",
}

METRIC_LABELS: dict[str, str] = {
    "final_after_eos_ms": "final transcript after the true end of speech (ms)",
    "final_after_stop_ms": "final transcript after the source's own end of turn (ms)",
    "first_text_after_start_ms": "first text after the start of speech (ms)",
    "first_text_after_eos_ms": "first text after the true end of speech (ms; negative: while speaking)",
}

_PROVENANCE_LABELS = (("engine", "text"), ("timing", "latency"), ("cost_basis", "cost"))


class PlotError(RtlabError, ValueError):
    """A figure cannot be drawn from the data given (the message names what is missing)."""


def provenance_note(provenance: Mapping[str, Any] | None) -> str:
    """``"text: ENGINE · latency: TIMING · cost: BASIS"`` (plus any other keys), or ``""`` without provenance."""
    if not provenance:
        return ""
    parts = [f"{label}: {provenance[key]}" for key, label in _PROVENANCE_LABELS if provenance.get(key)]
    parts += [f"{k}: {v}" for k, v in provenance.items() if k not in dict(_PROVENANCE_LABELS) and v]
    return " · ".join(parts)


def provenance_of(log: Any, turns: pd.DataFrame | None = None) -> dict[str, str]:
    """Where a run's (or a probe's) text, latencies and costs come from, read from its own record.

    Parameters
    ----------
    log : EventLog or rtlab.probe.ProbeResult
        A recorded run: ``log.meta["sources"]`` says, per source, its protocol family and whether an emulator
        served it (``emulated``); a timing mode recorded there (``timing``) is named. A probe result: its target
        says whether the answers are an emulator's profile or a real endpoint's (observed, with the date).
    turns : pandas.DataFrame, optional
        Its turns table: the ``cost_basis`` values it holds are named.

    Returns
    -------
    dict
        ``engine`` (which engine produced the text), ``timing`` (what the latencies are) and ``cost_basis``
        (:func:`rtlab.analysis.provenance_note`; a probe: ``answers`` instead of the cost): ready for
        :func:`provenance_note` and the ``provenance=`` of every figure. Offline, every source's text
        comes from rtlab's local recognizer whatever model a row names, and the latencies are the emulator's,
        not the services'.
    """
    if hasattr(log, "frame") and hasattr(log, "target") and hasattr(log, "when"):
        return _probe_provenance(log)
    from .analysis import provenance_note

    return provenance_note(log, turns)


def _probe_provenance(result: Any) -> dict[str, str]:
    target = result.target
    if getattr(target, "is_local", False):
        from pathlib import Path

        name = Path(str(getattr(target, "provider_profile", None) or "openai")).name
        return {"answers": f"rtlab's emulator playing the '{name}' profile (its rows' evidence, not a real endpoint)",
                "engine": "pocketsphinx, rtlab's offline recognizer", "timing": "emulated by rtlab's emulator"}
    who = f"{getattr(target, 'provider', '?')} {getattr(target, 'dialect', '')}".strip()
    return {"answers": f"observed: probe of {who} on {str(result.when)[:10]}", "engine": "the services' own models",
            "timing": "measured on this machine's clock"}


def _stamp(fig: Any, provenance: Mapping[str, Any] | None) -> None:
    """The provenance footnote, in a strip the layout keeps free at the bottom of the figure."""
    note = provenance_note(provenance)
    if note:
        lines = textwrap.wrap(note, 170)
        strip = (0.08 + 0.14 * len(lines)) / fig.get_figheight()
        fig.get_layout_engine().set(rect=(0, strip, 1, 1 - strip))
        fig.text(0.01, 0.01, "\n".join(lines), fontsize=7.5, color="#57606a", va="bottom", gid="provenance")


def _need(df: Any, cols: Sequence[str], what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise PlotError(f"{what} needs a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise PlotError(f"{what}: the table lacks columns {missing}; pass "
                        + ("EventLog.to_frame()" if "t_ms" in cols else "the turns table (rtlab.analysis.turns(log, references))"))


def _lane_order(sources: Any) -> list[str]:
    """Sources in a fixed order for every figure: the voice session's own (``in-session``) first, then by name."""
    names = {str(s) for s in sources}
    return sorted(names, key=lambda s: (s != "in-session", s))


class PlotFigure(Figure):
    """A matplotlib ``Figure`` that shows itself as a PNG in a notebook (``_repr_png_``), so a figure returned by
    this module is a picture as a cell's last value, with or without pyplot's inline backend."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png")
        return buf.getvalue()


def _figure(width: float, height: float) -> Any:
    return PlotFigure(figsize=(width, height), dpi=100, layout="constrained")


# --------------------------------------------------------------------------------------------------
# Swimlane
# --------------------------------------------------------------------------------------------------
def _audio_clock(frame: pd.DataFrame) -> Any:
    """When each audio position was first sent, over every leg's client audio records: the turns table's own
    :class:`~rtlab.analysis.align.AudioClock`, so a figure and the table put "the true end of speech" at one time."""
    from .analysis.align import AudioClock
    from .protocol.events import INPUT_AUDIO_FIELDS

    ap = frame[(frame["direction"] == "client") & frame["type"].isin(list(INPUT_AUDIO_FIELDS))]
    pos = pd.to_numeric(ap["audio_ms"], errors="coerce").to_numpy(dtype=float)
    t = pd.to_numeric(ap["t_ms"], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(pos) & np.isfinite(t)
    return AudioClock(ap["source"].astype(str).to_numpy()[ok], pos[ok], t[ok])


def _wall_of(audio_ms: float, clock: Any) -> float:
    """Log time (ms) at which the audio up to ``audio_ms`` had first been sent by any leg; NaN when never."""
    if not math.isfinite(audio_ms):
        return math.nan
    return float(clock.sent_at(None, np.array([audio_ms]))[0])


def _turn_span(turns: pd.DataFrame, turn: int | tuple[float, float]) -> tuple[float, float, float | None]:
    """(audio start, audio end, true end of speech or None) of the chosen turn."""
    if isinstance(turn, tuple):
        start, end = map(float, turn)
        return start, end, None
    rows = turns.dropna(subset=["audio_start_ms", "audio_end_ms"])
    if not len(rows):
        raise PlotError("swimlane: the turns table has no turn with an audio span")
    first = rows.groupby("source", sort=False).size().sort_values(ascending=False, kind="stable").index[0]
    own = rows[rows["source"] == first].sort_values("audio_start_ms", kind="stable")
    if not 0 <= turn < len(own):
        raise PlotError(f"swimlane: turn {turn!r} out of range; source {first!r} has {len(own)} turns (0..{len(own) - 1})")
    row = own.iloc[turn]
    true_end = row.get("ref_end_ms")
    true_end = float(true_end) if true_end is not None and pd.notna(true_end) else None
    return float(row["audio_start_ms"]), float(row["audio_end_ms"]), true_end


def swimlane(frame: pd.DataFrame, turns: pd.DataFrame, *, turn: int | tuple[float, float] = 0,
             sources: Sequence[str] | None = None, pad_ms: float = 400.0,
             provenance: Mapping[str, Any] | None = None, width: float = 11.0) -> Any:
    """One turn's events, one lane per source, on one clock.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``EventLog.to_frame()`` (columns ``t_ms``, ``audio_ms``, ``direction``, ``source``, ``type``, ``item_id``,
        ``response_id``, ``event``).
    turns : pandas.DataFrame
        The turns table (``rtlab.analysis.turns(log, references)``): picks the turn and tells which items belong to it.
    turn : int or (start_ms, end_ms)
        The ``turn``-th turn (audio order) of the source with the most turns, or an audio span.
    sources : sequence of str, optional
        Lanes to draw, top to bottom (default: every source with events in the window, ``in-session`` first, then
        by name).
    pad_ms : float
        Time shown before the turn's audio starts and after its last final text.
    provenance : dict, optional
        ``engine``, ``timing``, ``cost_basis`` (and anything else) for the footnote.

    Returns
    -------
    matplotlib.figure.Figure
        x: ms on the log's clock, 0 = the moment the audio up to the end of the turn had been sent (the true end
        of speech from the references when the turns table has it, else the turn's ``audio_end_ms``). The shaded
        band is the turn's audio being sent. Each (source, role) is one artist labelled ``"SOURCE · ROLE"``.
    """
    _need(frame, ("t_ms", "audio_ms", "direction", "source", "type", "item_id", "response_id", "event"), "swimlane")
    _need(turns, ("source", "item_id", "audio_start_ms", "audio_end_ms"), "swimlane")
    start, end, true_end = _turn_span(turns, turn)
    sent = _audio_clock(frame)
    zero = _wall_of(true_end if true_end is not None else end, sent)
    w0, w1 = _wall_of(start, sent), _wall_of(end, sent)
    if not math.isfinite(zero):
        raise PlotError("swimlane: the frame has no client input_audio_buffer.append records to place the turn on "
                        "the clock; pass the whole EventLog.to_frame()")
    # the turn's items per source: those whose audio span overlaps most of this turn
    ov = turns[(turns["audio_start_ms"] < end) & (turns["audio_end_ms"] > start)]
    overlap = (np.minimum(ov["audio_end_ms"], end) - np.maximum(ov["audio_start_ms"], start))
    ours = ov[overlap >= 0.5 * np.minimum(ov["audio_end_ms"] - ov["audio_start_ms"], end - start)]
    mine = set(zip(ours["source"], ours["item_id"], strict=True))
    server = frame[frame["direction"] == "server"].copy()
    server["_t"] = pd.to_numeric(server["t_ms"], errors="coerce")
    server = server.sort_values("_t", kind="stable")
    server["_turn"] = _turn_keys(server, turns)
    is_mine = np.array([(s, k) in mine for s, k in zip(server["source"], server["_turn"], strict=True)])
    unowned = server["_turn"].isna().to_numpy()
    t_lo = w0 - pad_ms
    # The window runs to the last final of the turn: its events, and the final of every source's row for this turn
    # (a source whose events name no item, e.g. Azure Speech, is placed by time; its final may come last).
    finals = pd.to_numeric(ours["final_wall_ms"], errors="coerce").dropna().tolist() \
        if "final_wall_ms" in ours.columns else []
    t_hi = max([w1] + server.loc[is_mine, "_t"].dropna().tolist() + finals) + pad_ms
    in_window = ((server["_t"] >= t_lo) & (server["_t"] <= t_hi)).to_numpy()
    sel = server[is_mine | (unowned & in_window)]
    roles = [role_of(ty, str(s)) for s, ty in zip(sel["source"], sel["type"], strict=True)]
    sel = sel.assign(_role=roles, _x=sel["_t"] - zero)
    sel = sel[sel["_role"].notna()]
    lanes = list(sources) if sources is not None else _lane_order(sel["source"])
    if not lanes:
        raise PlotError("swimlane: no events of any source in this turn's window")

    fig = _figure(width, 1.3 + 0.62 * len(lanes) + (0.25 if provenance else 0))
    ax = fig.add_subplot()
    ax.axvspan(w0 - zero, w1 - zero, color="#eef1f5", zorder=0, label="turn audio being sent")
    ax.axvline(0, color="#57606a", lw=0.8, ls="--", zorder=1)
    drawn_roles: dict[str, Any] = {}
    for y, src in enumerate(reversed(lanes)):
        ev = sel[sel["source"] == src]
        by_role = {r: g for r, g in ev.groupby("_role", sort=False)}
        spans = []
        for _, g in ev[ev["_role"].isin(["response_start", "response_end"])].groupby("response_id", sort=False):
            xs = g["_x"].to_numpy(dtype=float)
            spans.append((xs.min(), max(xs.max() - xs.min(), 1.0)))
        if spans:
            bars = ax.broken_barh(spans, (y - 0.32, 0.64), facecolors=ROLE_STYLES["response_start"][1], alpha=0.55,
                                  label=f"{src} · response", zorder=2)
            drawn_roles.setdefault("response_start", bars)
        for role in ("speech_start", "speech_stop", "commit", "output", "partial", "final", "error"):
            g = by_role.get(role)
            if g is None or not len(g):
                continue
            _, color, marker = ROLE_STYLES[role]
            xs = g["_x"].to_numpy(dtype=float)
            size = {"partial": 140, "output": 18, "final": 42}.get(role, 60)
            art = ax.scatter(xs, np.full(xs.size, y), s=size, c=color, marker=marker, zorder=4,
                             linewidths=1.6 if role == "partial" else 0.5, label=f"{src} · {role}")
            drawn_roles.setdefault(role, art)
        finals = by_role.get("final")
        if finals is not None and len(finals):
            row = finals.iloc[-1]
            ev_ = row["event"]
            text = _final_text(ev_) if isinstance(ev_, Mapping) else None
            if text:
                ax.annotate(textwrap.shorten(text, 60, placeholder="…"), (row["_x"], y), xytext=(6, 7),
                            textcoords="offset points", fontsize=7.5, color=ROLE_STYLES["final"][1])
    ax.set_yticks(range(len(lanes)), list(reversed(lanes)))
    ax.set_ylim(-0.7, len(lanes) - 0.3)
    ax.set_xlabel("ms on the log's clock; 0 = " + ("true end of speech sent" if true_end is not None
                                                    else "end of the turn's audio sent"))
    ax.grid(axis="x", color="#eaeef2", lw=0.6)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(color="#eef1f5", label="turn audio being sent")]
    for role in drawn_roles:
        label, color, marker = ROLE_STYLES[role]
        handles.append(Patch(color=color, alpha=0.55, label=label) if role == "response_start"
                       else Line2D([], [], ls="", marker=marker, color=color, label=label))
    ax.legend(handles=handles, fontsize=7, loc="upper left", frameon=False, bbox_to_anchor=(1.01, 1.0))
    ax.set_title(f"Turn at {start / 1000:.2f}–{end / 1000:.2f} s of audio: events per source", fontsize=10,
                 loc="left")
    _stamp(fig, provenance)
    return fig


def _turn_keys(server: pd.DataFrame, turns: pd.DataFrame) -> list[Any]:
    """The turn (item id, as in the turns table) each server event belongs to, or None.

    An event names its item directly, or through its response: an out-of-band response is the turns row with
    that ``response_id``; any other response answers the item its source committed last before it started.
    """
    items = set(zip(turns["source"], turns["item_id"], strict=True))
    by_response: dict[tuple[str, Any], Any] = {}
    if "response_id" in turns.columns:
        for src, item, rid in zip(turns["source"], turns["item_id"], turns["response_id"], strict=True):
            if isinstance(rid, str):
                by_response[(src, rid)] = item
    last_commit: dict[str, Any] = {}
    keys: list[Any] = []
    for src, typ, item, rid in zip(server["source"], server["type"], server["item_id"], server["response_id"],
                                   strict=True):
        if typ == "input_audio_buffer.committed" and isinstance(item, str):
            last_commit[src] = item
        if isinstance(rid, str):
            if typ == "response.created" and (src, rid) not in by_response and src in last_commit:
                by_response[(src, rid)] = last_commit[src]
            keys.append(by_response.get((src, rid)))
        elif isinstance(item, str) and (src, item) in items:
            keys.append(item)
        else:
            keys.append(None)
    return keys


def _final_text(event: Mapping[str, Any]) -> str | None:
    for key in ("transcript", "text"):
        v = event.get(key)
        if isinstance(v, str) and v:
            return v
    result = event.get("result")
    if isinstance(result, Mapping) and isinstance(result.get("text"), str):
        return result["text"]
    return None


# --------------------------------------------------------------------------------------------------
# Latency distributions
# --------------------------------------------------------------------------------------------------
def latency_distributions(turns: pd.DataFrame, *, metric: str = "final_after_eos_ms", by: str | None = None,
                          sources: Sequence[str] | None = None, confidence: float = 0.95, seed: int = 0,
                          provenance: Mapping[str, Any] | None = None, width: float = 11.0) -> Any:
    """Per-turn latencies per source, with the median and p95 and their bootstrap intervals.

    Parameters
    ----------
    turns : pandas.DataFrame
        The turns table (``source`` and ``metric`` columns; ``by`` when given).
    metric : str
        A latency column of :mod:`rtlab.analysis.turns`: ``final_after_eos_ms`` (default),
        ``final_after_stop_ms``, ``first_text_after_start_ms``.
    by : str, optional
        A column (e.g. ``"condition"``): one panel per value, sharing the x axis.
    confidence, seed
        Of the percentile bootstrap (:func:`rtlab.stats.bootstrap_ci`).

    Returns
    -------
    matplotlib.figure.Figure
        Dots: one per turn (jittered vertically). Per source, an errorbar labelled ``"SOURCE · p50"`` and one
        labelled ``"SOURCE · p95"``: the marker is the percentile over all the source's turns (the value
        :func:`rtlab.analysis.metrics.latency_summary` reports), the bar its interval (none with fewer than two turns).
    """
    from .stats import bootstrap_ci, percentile

    _need(turns, ("source", metric) + ((by,) if by else ()), "latency_distributions")
    groups = list(dict.fromkeys(turns[by])) if by else [None]
    lanes = list(sources) if sources is not None else _lane_order(turns["source"])
    fig = _figure(width, 0.9 + len(groups) * (0.45 + 0.42 * len(lanes)) + (0.25 if provenance else 0))
    axes = fig.subplots(len(groups), 1, sharex=True, squeeze=False)[:, 0]
    rng = np.random.default_rng(seed)
    for ax, group in zip(axes, groups, strict=True):
        part = turns if group is None else turns[turns[by] == group]
        for y, src in enumerate(reversed(lanes)):
            v = pd.to_numeric(part.loc[part["source"] == src, metric], errors="coerce").to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            if not v.size:
                ax.text(0.01, y, "no values", transform=ax.get_yaxis_transform(), fontsize=7.5, color="#8c959f",
                        va="center")
                continue
            ax.scatter(v, y + 0.24 + rng.uniform(-0.08, 0.08, v.size), s=14, color="#8c959f", alpha=0.7, lw=0,
                       label=f"{src} · turns", zorder=2)
            for q, dy, color, marker in ((50, 0.0, "#1f3b63", "D"), (95, -0.24, "#e15759", "^")):
                iv = bootstrap_ci(v, percentile(q), confidence=confidence, seed=seed)
                err = [[iv.estimate - iv.low], [iv.high - iv.estimate]] if iv.defined else None
                ax.errorbar([iv.estimate], [y + dy], xerr=err, fmt=marker, color=color, ms=6, capsize=3, lw=1.6,
                            zorder=3, label=f"{src} · p{q}")
        ax.set_yticks(range(len(lanes)), list(reversed(lanes)))
        ax.set_ylim(-0.7, len(lanes) - 0.4)
        ax.grid(axis="x", color="#eaeef2", lw=0.6)
        ax.axvline(0, color="#57606a", lw=0.8, ls="--")
        if group is not None:
            ax.set_title(f"{by} = {group}", fontsize=9, loc="left")
    from matplotlib.lines import Line2D

    axes[-1].set_xlabel(METRIC_LABELS.get(metric, metric))
    pct = f"{confidence:.0%}"
    axes[0].legend(handles=[Line2D([], [], ls="", marker="o", color="#8c959f", label="one turn"),
                            Line2D([], [], marker="D", color="#1f3b63", label=f"median ({pct} bootstrap CI)"),
                            Line2D([], [], marker="^", color="#e15759", label=f"p95 ({pct} bootstrap CI)")],
                   fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.suptitle(f"{metric} per source", fontsize=10, x=0.01, ha="left")
    _stamp(fig, provenance)
    return fig


# --------------------------------------------------------------------------------------------------
# WER per source and condition
# --------------------------------------------------------------------------------------------------
def wer_by_condition(turns: pd.DataFrame, *, condition: str = "condition", sources: Sequence[str] | None = None,
                     confidence: float = 0.95, seed: int = 0, provenance: Mapping[str, Any] | None = None,
                     width: float = 11.0) -> Any:
    """Corpus WER per source (bars) and condition (groups), with bootstrap intervals over turns.

    Parameters
    ----------
    turns : pandas.DataFrame
        The turns table with ``reference`` and ``transcript`` (and ``condition`` when there are several; without
        that column every turn is one group, "all turns").

    Returns
    -------
    matplotlib.figure.Figure
        One bar container per source, labelled with the source; bar heights are :func:`rtlab.analysis.metrics.wer` over
        the group's scored turns (the interval resamples turns: their word errors and reference words together).
    """
    from matplotlib.ticker import PercentFormatter

    from .analysis.metrics import score_turns
    from .stats import bootstrap_ci, corpus_wer

    _need(turns, ("source", "reference", "transcript"), "wer_by_condition")
    scored = score_turns(turns) if "word_errors" not in turns.columns else turns
    if condition not in scored.columns:
        scored = scored.assign(**{condition: "all turns"})
    scored = scored[np.isfinite(pd.to_numeric(scored["ref_words"], errors="coerce").to_numpy(dtype=float))]
    if not len(scored):
        raise PlotError("wer_by_condition: no turn has a reference; pass rtlab.analysis.turns(log, references)")
    groups = list(dict.fromkeys(scored[condition]))
    lanes = list(sources) if sources is not None else _lane_order(scored["source"])
    fig = _figure(width, 3.6 + (0.25 if provenance else 0))
    ax = fig.add_subplot()
    bw = 0.8 / max(1, len(lanes))
    colors = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#e15759", "#9c755f"]
    top = 0.0
    for k, src in enumerate(lanes):
        heights, lows, highs, ns = [], [], [], []
        for grp in groups:
            g = scored[(scored["source"] == src) & (scored[condition] == grp)]
            iv = bootstrap_ci((g["word_errors"].to_numpy(dtype=float), g["ref_words"].to_numpy(dtype=float)),
                              corpus_wer, confidence=confidence, seed=seed)
            heights.append(iv.estimate)
            lows.append(iv.estimate - iv.low if iv.defined else 0.0)
            highs.append(iv.high - iv.estimate if iv.defined else 0.0)
            ns.append(iv.n)
        x = np.arange(len(groups)) - 0.4 + bw * (k + 0.5)
        h = np.nan_to_num(np.asarray(heights, dtype=float))
        bars = ax.bar(x, h, bw * 0.92, color=colors[k % len(colors)], label=src, yerr=[lows, highs], capsize=3,
                      error_kw={"lw": 1, "ecolor": "#3d4451"})
        for xi, hi, n, e in zip(x, heights, ns, highs, strict=True):
            if math.isfinite(hi):
                ax.text(xi, hi + e + 0.01, f"{hi:.0%}\nn={n}", ha="center", va="bottom", fontsize=6.5)
        top = max([top] + [a + b for a, b in zip(h, highs, strict=True)])
        bars.set_label(src)
    ax.set_xticks(range(len(groups)), [str(g) for g in groups])
    ax.set_ylim(0, max(0.1, top * 1.25 + 0.05))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set_ylabel("corpus WER")
    ax.legend(fontsize=7.5, frameon=False, ncols=min(4, len(lanes)), loc="upper left")
    ax.set_title(f"WER per source and {condition} ({confidence:.0%} bootstrap CI over turns; n = turns)",
                 fontsize=10, loc="left")
    _stamp(fig, provenance)
    return fig


# --------------------------------------------------------------------------------------------------
# Probe matrix
# --------------------------------------------------------------------------------------------------
def probe_heatmap(frame: pd.DataFrame, *, provenance: Mapping[str, Any] | None = None, width: float = 11.0) -> Any:
    """The probe's model × surface matrix, one coloured cell per attempt (``ProbeResult.frame``).

    The cell texts are :meth:`rtlab.probe.ProbeResult.matrix` (``ok (streams)``, ``handshake-refused 400``,
    ``error-event CODE``, ...); the colours are :data:`OUTCOME_COLORS` (streaming ``ok`` darker than plain ``ok``;
    ``not-applicable`` pale and ``—`` (not tried) white, so an untried cell never reads as a result).
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from .probe import ProbeResult

    _need(frame, ("model", "surface", "outcome", "deltas_stream", "http_status", "error_code"), "probe_heatmap")
    matrix = ProbeResult(frame, target=None, clip="").matrix()
    kinds = list(OUTCOME_COLORS)

    def kind(text: Any) -> int:
        if not isinstance(text, str):
            return -1
        return kinds.index("ok (streams)") if text == "ok (streams)" else next(
            (i for i, k in enumerate(kinds) if text == k or text.startswith(k + " ")), -1)

    codes = np.array([[kind(v) for v in row] for row in matrix.to_numpy()], dtype=float)
    codes[codes < 0] = np.nan
    n_models, n_surfaces = matrix.shape
    fig = _figure(width, 1.4 + 0.42 * n_models + (0.25 if provenance else 0))
    ax = fig.add_subplot()
    ax.imshow(np.ma.masked_invalid(codes), cmap=ListedColormap([OUTCOME_COLORS[k] for k in kinds]), vmin=-0.5,
              vmax=len(kinds) - 0.5, aspect="auto")
    for i in range(n_models):
        for j in range(n_surfaces):
            text = matrix.iat[i, j]
            if isinstance(text, str):
                dark = kind(text) in (kinds.index("ok (streams)"), kinds.index("handshake-refused"))
                ax.text(j, i, textwrap.fill(text, 22), ha="center", va="center", fontsize=7.5,
                        color="white" if dark else "#1f2328")
    ax.set_xticks(range(n_surfaces), list(matrix.columns))
    ax.set_yticks(range(n_models), list(matrix.index))
    ax.tick_params(axis="x", top=True, labeltop=True, bottom=False, labelbottom=False, labelsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xticks(np.arange(n_surfaces + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(n_models + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", lw=2)
    ax.tick_params(which="minor", length=0)
    present = [k for k in kinds if np.any(codes == kinds.index(k))]
    ax.legend(handles=[Patch(color=OUTCOME_COLORS[k], label=k) for k in present], fontsize=7.5, frameon=False,
              ncols=len(present), loc="upper left", bbox_to_anchor=(0, -0.02))
    ax.set_title("Probe: which model works on which surface", fontsize=10, loc="left", pad=24)
    _stamp(fig, provenance)
    return fig
