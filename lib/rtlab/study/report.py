"""The study report: one self-contained HTML page with the summary, figures, provenance and failures.

Layer: views. Reads only the study folder (``study.json``, the unit statuses and the Parquet results through
:func:`rtlab.study.results`), so it can be rebuilt at any time, also while a run is going on.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..report import _CSS, LEGEND, _table, source_color
from .results import results
from .runner import study_status

__all__ = ["render_study_report", "write_report"]


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return f"<img alt='figure' src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"


def _grouped(summary: pd.DataFrame, value: str, *, lo: str | None = None, hi: str | None = None,
             ylabel: str, title: str, extra: list[tuple[str, str]] | None = None) -> str:
    """Bars per source, grouped by condition, with error bars from ``lo``/``hi`` when given."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    conds = list(dict.fromkeys(summary["condition"]))
    labels = [str(summary.loc[summary["condition"] == c, "condition_label"].iloc[0])
              if "condition_label" in summary.columns else c for c in conds]
    sources = list(dict.fromkeys(summary["source"]))
    width = 0.8 / max(1, len(sources))
    fig, ax = plt.subplots(figsize=(10, 3.6))
    x = np.arange(len(conds))
    for j, s in enumerate(sources):
        sub = summary[summary["source"] == s].set_index("condition").reindex(conds)
        vals = sub[value].to_numpy(dtype=float)
        pos = x - 0.4 + width * (j + 0.5)
        yerr = None
        if lo and hi:
            low, high = sub[lo].to_numpy(dtype=float), sub[hi].to_numpy(dtype=float)
            yerr = np.vstack([np.clip(vals - low, 0, None), np.clip(high - vals, 0, None)])
            yerr = np.where(np.isfinite(yerr), yerr, 0.0)
        ax.bar(pos, np.nan_to_num(vals), width=width * 0.9, color=source_color(s), label=s, yerr=yerr,
               capsize=3, error_kw={"lw": 1})
        for name, marker in extra or []:
            ax.plot(pos, sub[name].to_numpy(dtype=float), linestyle="none", marker=marker, color="#222", ms=5)
    ax.set_xticks(x, [lbl if len(lbl) < 40 else lbl[:37] + "…" for lbl in labels], rotation=15, ha="right",
                  fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncols=min(4, len(sources)))
    return _png(fig)


def render_study_report(out: str | Path, *, n_boot: int = 1000) -> str:
    """The report of the study folder ``out`` as one HTML string (figures inlined)."""
    from .store import StudyStore

    desc = StudyStore(out).description()
    status = study_status(out)
    title = f"rtlab study {desc.get('study', '')}"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    c = status.counts
    parts.append(f"<p>{c['done']} units done, {c['failed']} failed, {c['running']} running, {c['pending']} "
                 f"pending (of {status.total}); seed {desc.get('seed')}; speed "
                 f"{desc.get('run', {}).get('speed')}× real time.</p>")
    speed = float(desc.get("run", {}).get("speed") or 1)
    if speed != 1:
        parts.append(f"<p class='note'>Audio was fed at {speed:g}× real time: latencies "
                     "are not those of a real-time stream; compare WER and cost, or re-run at speed 1.</p>")
    try:
        res = results(out)
    except Exception as exc:  # no part yet: a report of the statuses alone
        res = None
        parts.append(f"<p class='muted'>No results yet ({html.escape(str(exc))}).</p>")
    if res is not None:
        summary = res.summary(n_boot=n_boot)
        prov = res.sql("""SELECT source, engine, timing_model, cost_basis, profile, profile_evidence, prices_as_of,
                          rtlab_version, target_desc, count(*) AS rows FROM rows GROUP BY ALL
                          ORDER BY source, rows DESC""").df()
        parts.append(
            "<p class='note'>WER/CER: corpus rates over files (each file's transcript of a source against its "
            "reference), with a bootstrap confidence interval that resamples files. Latency percentiles are over "
            "turns, per column below.</p>" + LEGEND)
        parts.append("<h2>Per condition and source</h2>")
        cols = [c for c in ("condition_label", "source", "n_units", "n_turns", "n_missed", "wer", "wer_lo",
                            "wer_hi", "cer", "final_after_eos_p50_ms", "final_after_eos_p95_ms",
                            "final_after_stop_p50_ms", "first_text_after_start_p50_ms",
                            "cost_usd", "cost_per_audio_hour_usd", "cost_basis") if c in summary.columns]
        parts.append(_table(summary[cols]))
        if len(summary):
            parts.append(_grouped(summary, "wer", lo="wer_lo", hi="wer_hi", ylabel="WER",
                                  title="Word error rate (bars) with its bootstrap interval over files"))
            parts.append(_grouped(summary, "final_after_eos_p50_ms", ylabel="ms",
                                  title="Final transcript after the true end of speech: p50 (bars), p95 (◆)",
                                  extra=[("final_after_eos_p95_ms", "D")]))
            if np.isfinite(summary["cost_per_audio_hour_usd"].to_numpy(dtype=float)).any():
                parts.append(_grouped(summary, "cost_per_audio_hour_usd", ylabel="USD per audio hour",
                                      title="Cost per hour of audio"))
        parts.append("<h2>Conditions</h2>" + _table(res.conditions(), text_cols=("transforms", "sidecars")))
        parts.append("<h2>Provenance</h2>" + _table(prov, text_cols=("engine", "timing_model", "profile_evidence", "target_desc")))
        res.close()
    if status.failures:
        fails = pd.DataFrame(list(status.failures), columns=["unit", "condition", "item", "error"])
        parts.append("<h2>Failed units</h2>" + _table(fails, text_cols=("error",)))
    parts.append(f"<h2>Study</h2><pre>{html.escape(json.dumps(desc, indent=1, default=str)[:20000])}</pre>")
    parts.append("<p class='muted'>Generated by rtlab.</p></body></html>")
    return "".join(parts)


def write_report(out: str | Path, path: str | Path | None = None, **kw: Any) -> Path:
    """Write the report of the study folder ``out`` to ``path`` (default ``out/report.html``)."""
    path = Path(path) if path is not None else Path(out) / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_study_report(out, **kw), encoding="utf-8")
    return path
