"""Self-contained HTML report of a comparison: per-source WER/latency/cost table, timeline plots, turn table.

``rtlab report LOG... --out DIR`` rebuilds it from saved event logs (no network).
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import sys
from pathlib import Path
from typing import Any

from .errors import RtlabError

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2330}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #dde}
table{border-collapse:collapse;margin:.5rem 0;font-size:13px}td,th{padding:3px 8px;border-bottom:1px solid #eee;
text-align:right}th{background:#f4f6fa}td:first-child,th:first-child{text-align:left}td.t{text-align:left;
max-width:420px}img{max-width:100%}.muted{color:#667}.note{background:#f7f7ee;padding:.5rem .8rem;border-radius:4px}
"""

SOURCE_COLORS = {
    "in-session": "#1f77b4",
    "sidecar:transcription": "#2ca02c",
    "sidecar:local": "#9467bd",
    "sidecar:oob": "#ff7f0e",
}


def source_color(source: str) -> str:
    base = source.split("#", 1)[0]
    return SOURCE_COLORS.get(base, "#7f7f7f")


def timeline_png(turns_df, *, title: str = "", duration_ms: float | None = None) -> bytes:
    """A per-source timeline of one file's turns: speech span, then the final transcript's arrival."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    sources = list(dict.fromkeys(turns_df["source"])) if len(turns_df) else []
    fig, ax = plt.subplots(figsize=(10, 0.6 + 0.55 * max(1, len(sources))), dpi=100)
    for row, source in enumerate(sources):
        sub = turns_df[turns_df["source"] == source]
        color = source_color(source)
        for _, t in sub.iterrows():
            start, end = t.get("audio_start_ms"), t.get("audio_end_ms")
            if start is None or end is None or start != start or end != end:
                continue
            ax.barh(row, (end - start) / 1000, left=start / 1000, height=0.5, color=color, alpha=0.35)
            final_wall, end_wall = t.get("final_wall_ms"), t.get("end_wall_ms")
            if final_wall == final_wall and end_wall == end_wall and final_wall is not None and end_wall is not None:
                arrived = end + (final_wall - end_wall)  # the final's arrival, on the audio axis
                ax.plot([end / 1000, arrived / 1000], [row, row], color=color, lw=2)
                ax.plot(arrived / 1000, row, marker="|", color=color, ms=14, mew=2)
    ax.set_yticks(range(len(sources)), sources)
    ax.invert_yaxis()
    ax.set_xlabel("audio time (s) — bar: speech turn; line: until the final transcript arrived")
    if duration_ms:
        ax.set_xlim(0, duration_ms / 1000)
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _table(df, *, text_cols=()) -> str:
    cols = list(df.columns)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    rows = []
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if isinstance(v, float):
                s = "" if v != v else (f"{v:.3f}" if abs(v) < 10 else f"{v:.0f}")
            else:
                s = "" if v is None else str(v)
            cls = ' class="t"' if c in text_cols else ""
            cells.append(f"<td{cls}>{html.escape(s)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_report(turns_df, logs: list[tuple[str, Any]], *, summary_df=None, title: str = "rtlab comparison") -> str:
    """The report as one HTML string (images inlined)."""
    from .analysis import summary

    summary_df = summary(turns_df) if summary_df is None else summary_df
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts.append(LEGEND)
    provenance = _provenance(logs, turns_df)
    if provenance:
        parts.append(f"<p class='note'>{provenance}</p>")
    parts.append("<h2>Per source</h2>" + _table(summary_df))
    for name, log in logs:
        sub = turns_df[turns_df["file"] == name] if "file" in turns_df.columns else turns_df
        png = timeline_png(sub, title=name, duration_ms=_duration_ms(log))
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts.append(f"<img alt='timeline of {html.escape(name)}' "
                     f"src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
        cols = [c for c in ("source", "item_id", "audio_start_ms", "audio_end_ms", "final_after_eos_ms",
                            "final_after_stop_ms", "first_text_after_start_ms", "first_text_after_eos_ms",
                            "n_deltas", "wer", "cost_usd", "cost_basis", "transcript", "reference")
                if c in sub.columns]
        parts.append(_table(sub[cols], text_cols=("transcript", "reference")))
    parts.append("<p class='muted'>Generated by rtlab.</p></body></html>")
    return "".join(parts)


#: The legend every report carries: each latency column once, with its anchor (as in rtlab.analysis.turns).
LEGEND = (
    "<p class='note'><b>Latency columns</b> (one audio clock; \"sent at\" = when the client sent that audio): "
    "<b>final_after_eos</b> = final transcript after the true end of speech (the references): the same anchor for "
    "every source, compare these; <b>final_after_stop</b> = after the source's own end-of-turn anchor (its "
    "speech_stopped, which comes one VAD silence window after the speech ended, or the commit position without "
    "VAD); <b>first_text_after_start</b> = first text after the start of speech; <b>first_text_after_eos</b> = "
    "first text after the true end of speech, <i>signed</i>: negative when text arrived while the user was still "
    "speaking (streaming); the summary gives the share of such turns, never a signed median. Latencies mean "
    "something only when the audio was fed in real time (speed 1). WER uses rtlab's English normalizer. "
    "<b>cost_basis</b>: <i>reported</i> (a real service's usage), <i>emulated</i> (the local emulator's own "
    "estimate: not a real bill), <i>duration</i> (no usage: audio minutes × the listed rate), <i>local</i> "
    "(local engine, no service cost), <i>none</i>.</p>"
)


def _provenance(logs: list[tuple[str, Any]], turns_df: Any = None) -> str:
    """Which engine produced each source's text, which timing its latencies follow, what its cost is based on."""
    import pandas as pd

    from .analysis import provenance

    tables = [provenance(log, turns_df[turns_df["file"] == name] if turns_df is not None and "file" in
                         turns_df.columns else turns_df) for name, log in logs]
    if not tables:
        return ""
    table = pd.concat(tables, ignore_index=True).drop_duplicates(["source", "engine", "timing", "cost_basis"])
    lines = [f"<b>{html.escape(r.source)}</b>: text from {html.escape(r.engine)}; latency {html.escape(r.timing)}; "
             f"cost {html.escape(r.cost_basis)}" for r in table.itertuples(index=False)]
    head = ("Offline run: an emulated source's text comes from rtlab's local recognizer whatever model name a row "
            "shows, and its usage and costs are the emulator's estimates. " if table["emulated"].any() else "")
    return head + "<br>".join(lines)


def write_outputs(turns_df: Any, logs: list[tuple[str, Any]], out: Path) -> dict[str, Path]:
    """``turns.csv``, ``summary.csv`` and ``report.html`` in ``out``; returns their paths."""
    from .analysis import summary

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summ = summary(turns_df)
    written = {"turns": out / "turns.csv", "summary": out / "summary.csv"}
    turns_df.drop(columns=[c for c in ("usage",) if c in turns_df.columns]).to_csv(written["turns"], index=False)
    summ.to_csv(written["summary"], index=False)
    written["report"] = write_report(turns_df, logs, out / "report.html", summary_df=summ)
    return written


def _duration_ms(log: Any) -> float | None:
    try:
        samples, rate = log.input_audio()
        return 1000 * len(samples) / rate if rate else None
    except Exception:
        return None


def write_report(turns_df, logs, path: Path, *, summary_df=None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(turns_df, logs, summary_df=summary_df), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("logs", nargs="+", type=Path, help="events.jsonl files (or folders holding one)")
    p.add_argument("--references", type=Path, help="references JSON (bundled clips are found automatically)")
    p.add_argument("--out", type=Path, required=True, help="output folder")


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from .analysis import score_turns, turns
    from .data import load_references, references_for
    from .log import EventLog

    given = load_references(args.references)
    frames, logs, failed = [], [], 0
    for p in args.logs:
        path = p / "events.jsonl" if p.is_dir() else p
        try:
            log = EventLog.load(path)
        except (RtlabError, OSError) as exc:
            print(f"rtlab report: {path}: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
            failed += 1
            continue
        audio_name = Path(str(log.meta.get("audio") or path.parent.name)).name
        table = turns(log, references_for(Path(audio_name), given))
        table.insert(0, "file", audio_name)
        frames.append(table)
        logs.append((audio_name, log))
    if not logs:
        print("rtlab report: no log could be read", file=sys.stderr)
        return 1
    written = write_outputs(score_turns(pd.concat(frames, ignore_index=True)), logs, args.out)
    print(f"report: {written['report']}")
    return 1 if failed else 0
