"""Accuracy, agreement and latency of transcripts, from the turns table (layer: analysis).

- :func:`normalize` — the text normalizer every WER/CER in rtlab goes through (jiwer transforms):
  Unicode NFKC, curly quotes to straight, lowercase, jiwer's common English contraction expansion
  (``can't`` → ``can not``, ``I'm`` → ``I am``; note jiwer also turns ``'s`` into ``is``, on both sides alike),
  hyphens and dashes to spaces, punctuation removed (apostrophes too) except ``.``/``,``/``:`` between digits,
  whitespace collapsed. Numbers are left as written: ``"3"`` and ``"three"`` differ (no number normalization),
  and fillers (``uh``, ``um``) are kept.
- :func:`wer` / :func:`cer` — corpus-level error rates (total edits / total reference words or characters),
  via jiwer; :func:`score_turns` adds per-turn ``wer``/``cer`` columns.
- :func:`agreement` — per-turn pairwise WER between sources, turns matched by audio-time overlap.
- :func:`latency_summary` — n, mean, p50, p95 of each latency column (:data:`LATENCY_METRICS`) per source.
- :func:`summary` — one row per source: turns, WER/CER, latency percentiles (each column names its anchor: see
  :mod:`rtlab.analysis.turns`), cost and its basis.

Percentiles are numpy's default (linear interpolation) over the turns that have the value.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import jiwer
import numpy as np
import pandas as pd

from .align import best_overlap

#: The latency columns of the turns table, each defined once in :mod:`rtlab.analysis.turns`. The signed
#: ``first_text_after_eos_ms`` is left out on purpose: a percentile of a number that is negative for streaming
#: turns and positive for batch ones names no anchor; :func:`summary` reports the share of turns whose first text
#: came before the end of speech instead.
LATENCY_METRICS = ("final_after_eos_ms", "final_after_stop_ms", "first_text_after_start_ms")

__all__ = [
    "normalize", "wer", "cer", "score_turns", "agreement", "latency_summary", "summary", "LATENCY_METRICS",
    "SUMMARY_COLUMNS",
]

_NORMALIZER = jiwer.Compose([
    jiwer.SubstituteRegexes({"[\u2018\u2019\u02bc]": "'", "[\u201c\u201d]": '"'}),
    jiwer.ToLowerCase(),
    jiwer.ExpandCommonEnglishContractions(),
    jiwer.SubstituteRegexes({r"[\u2010-\u2015\-]": " "}),
    # punctuation, except a decimal/thousands/time separator between two digits (3.5, 1,000, 10:30)
    jiwer.SubstituteRegexes({r"(?!(?<=\d)[.,:](?=\d))[^\w\s]|_": ""}),
    jiwer.SubstituteRegexes({r"\s+": " "}),  # any run of whitespace (tabs, newlines) -> one space
    jiwer.Strip(),
])


try:  # jiwer's own edit-distance engine; used directly for per-turn counts (same numbers, no alignment objects)
    from rapidfuzz.distance import Levenshtein as _Levenshtein
except ImportError:  # pragma: no cover - jiwer always brings rapidfuzz
    _Levenshtein = None


@lru_cache(maxsize=1 << 16)
def _normalize_cached(text: str) -> str:
    return _NORMALIZER(unicodedata.normalize("NFKC", text))


def _pair_counts(ref: str, hyp: str, *, chars: bool) -> tuple[int, int]:
    """(edits, reference length) of one normalized pair: the S+D+I and S+D+H of jiwer's alignment."""
    r, h = (ref, hyp) if chars else (ref.split(), hyp.split())
    if not r:
        return len(h), 0
    if _Levenshtein is not None:
        return int(_Levenshtein.distance(r, h)), len(r)
    out = (jiwer.process_characters if chars else jiwer.process_words)([ref], [hyp if hyp else ""])
    return out.substitutions + out.deletions + out.insertions, len(r)


def normalize(text: str | None) -> str:
    """Normalize English text for WER/CER (see the module docstring for the exact rules).

    >>> normalize("Hello, World! It's 3.5 degrees -- isn't it?")
    'hello world it is 3.5 degrees is not it'
    """
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    if not isinstance(text, str):
        raise TypeError(f"normalize() takes a string; got {type(text).__name__} {text!r}")
    return _normalize_cached(text)


def _as_list(x: str | Iterable[str] | None, name: str) -> list[str]:
    if x is None:
        return []
    if isinstance(x, str):
        return [x]
    out = list(x)
    for i, v in enumerate(out):
        if v is not None and not isinstance(v, str) and not (isinstance(v, float) and math.isnan(v)):
            raise TypeError(f"{name}[{i}] must be a string; got {type(v).__name__} {v!r}")
    return out


def _counts(refs, hyps, *, chars: bool, norm: bool) -> tuple[int, int]:
    """(edits, reference length) summed over pairs; empty references count every hypothesis token as an insertion."""
    refs, hyps = _as_list(refs, "refs"), _as_list(hyps, "hyps")
    if len(refs) != len(hyps):
        raise ValueError(f"refs and hyps must have the same length; got {len(refs)} and {len(hyps)}")
    f = normalize if norm else (lambda s: "" if s is None or (isinstance(s, float) and math.isnan(s)) else s)
    pairs = [(f(r), f(h)) for r, h in zip(refs, hyps, strict=True)]
    edits = total = 0
    full = [(r, h) for r, h in pairs if r.strip()]
    for r, h in pairs:
        if not r.strip():
            edits += len(h) if chars else len(h.split())
    if full:
        rs, hs = [r for r, _ in full], [h for _, h in full]
        out = jiwer.process_characters(rs, hs) if chars else jiwer.process_words(rs, hs)
        edits += out.substitutions + out.deletions + out.insertions
        total += out.substitutions + out.deletions + out.hits
    return edits, total


def _rate(edits: int, total: int) -> float:
    if total == 0:
        return 0.0 if edits == 0 else math.inf
    return edits / total


def wer(refs: str | Sequence[str], hyps: str | Sequence[str], *, normalized: bool = True) -> float:
    """Word error rate: (substitutions + deletions + insertions) / reference words, over all pairs together.

    Both sides go through :func:`normalize` unless ``normalized=False``. An empty reference with a non-empty
    hypothesis counts its words as insertions; all-empty references give 0.0 (empty hypotheses) or ``inf``.

    >>> wer("the cat sat", "the cat sat down")
    0.3333333333333333
    """
    return _rate(*_counts(refs, hyps, chars=False, norm=normalized))


def cer(refs: str | Sequence[str], hyps: str | Sequence[str], *, normalized: bool = True) -> float:
    """Character error rate (spaces count as characters), over all pairs together; see :func:`wer`."""
    return _rate(*_counts(refs, hyps, chars=True, norm=normalized))


def _has_text(v: Any) -> bool:
    return isinstance(v, str)


def score_turns(turns: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``turns`` with per-turn ``wer`` and ``cer`` (NaN where there is no reference), and the counts
    behind them (``ref_words``, ``word_errors``, ``ref_chars``, ``char_errors``) so that sums give corpus rates.

    A turn with a reference and no transcript (failed, or never arrived) scores 1.0: every word deleted.
    """
    _need(turns, ("reference", "transcript"), "score_turns")
    out = turns.copy()
    n = len(out)
    cols = {k: np.full(n, np.nan) for k in ("wer", "cer", "ref_words", "word_errors", "ref_chars", "char_errors")}
    for i, (ref, hyp) in enumerate(zip(out["reference"], out["transcript"], strict=True)):
        if _has_text(ref):
            r, h = normalize(ref), normalize(hyp if _has_text(hyp) else "")
            we, wn = _pair_counts(r, h, chars=False)
            ce, cn = _pair_counts(r, h, chars=True)
            cols["word_errors"][i], cols["ref_words"][i], cols["wer"][i] = we, wn, _rate(we, wn)
            cols["char_errors"][i], cols["ref_chars"][i], cols["cer"][i] = ce, cn, _rate(ce, cn)
    for k, v in cols.items():
        out[k] = v
    return out


def _need(df: Any, cols: Iterable[str], fn: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{fn}() takes the DataFrame from rtlab.analysis.turns(log); got {type(df).__name__}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{fn}(): the table lacks columns {missing}; pass rtlab.analysis.turns(log) (or a "
                         "concatenation of such tables)")


def agreement(turns: pd.DataFrame) -> pd.DataFrame:
    """Per-turn agreement between sources: for every pair of sources (a, b) and every turn of a, the turn of b
    that overlaps it most in audio time, and the WER/CER of b's transcript against a's.

    Item ids differ between sessions, so turns are matched by ``audio_start_ms``/``audio_end_ms`` overlap (within
    the same ``file`` when that column is present). Turns of a with no overlapping turn of b are listed with
    ``item_b`` None and ``wer`` NaN.

    Returns
    -------
    pandas.DataFrame
        ``source_a, source_b, item_a, item_b, audio_start_ms, audio_end_ms, overlap_ms, transcript_a,
        transcript_b, wer, cer, agree`` (``agree``: identical after normalization), plus ``file`` when given.
    """
    _need(turns, ("source", "item_id", "audio_start_ms", "audio_end_ms", "transcript"), "agreement")
    has_file = "file" in turns.columns
    cols = (["file"] if has_file else []) + [
        "source_a", "source_b", "item_a", "item_b", "audio_start_ms", "audio_end_ms", "overlap_ms",
        "transcript_a", "transcript_b", "wer", "cer", "agree"]
    groups = turns.groupby("file", sort=False) if has_file else [(None, turns)]
    frames = []
    for file, df in groups:
        st = df["audio_start_ms"].to_numpy(dtype=float, na_value=np.nan)
        en = df["audio_end_ms"].to_numpy(dtype=float, na_value=np.nan)
        df = df[np.isfinite(st) & np.isfinite(en)]
        sources = list(dict.fromkeys(df["source"]))
        by = {}
        for s in sources:
            sub = df[df["source"] == s]
            by[s] = (sub["item_id"].to_numpy(dtype=object), sub["audio_start_ms"].to_numpy(dtype=float),
                     sub["audio_end_ms"].to_numpy(dtype=float),
                     [normalize(t) if _has_text(t) else "" for t in sub["transcript"]],
                     sub["transcript"].to_numpy(dtype=object))
        for ia, a in enumerate(sources):
            ia_items, a_s, a_e, a_norm, a_text = by[a]
            for b in sources[ia + 1:]:
                ib_items, b_s, b_e, b_norm, b_text = by[b]
                best, ov = best_overlap(a_s, a_e, b_s, b_e)
                w = np.full(len(best), np.nan)
                c = np.full(len(best), np.nan)
                agree = np.zeros(len(best), dtype=bool)
                for i, j in enumerate(best):
                    if j >= 0:
                        w[i] = _rate(*_pair_counts(a_norm[i], b_norm[j], chars=False))
                        c[i] = _rate(*_pair_counts(a_norm[i], b_norm[j], chars=True))
                        agree[i] = a_norm[i] == b_norm[j]
                has = best >= 0
                frame = pd.DataFrame({
                    "source_a": a, "source_b": b, "item_a": ia_items,
                    "item_b": np.where(has, ib_items[np.maximum(best, 0)] if len(ib_items) else None, None),
                    "audio_start_ms": a_s, "audio_end_ms": a_e, "overlap_ms": ov, "transcript_a": a_text,
                    "transcript_b": np.where(has, b_text[np.maximum(best, 0)] if len(b_text) else None, None),
                    "wer": w, "cer": c, "agree": agree})
                if has_file:
                    frame.insert(0, "file", file)
                frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=cols)
    return pd.concat(frames, ignore_index=True)[cols]


def _pct(v: np.ndarray, q: float) -> float:
    return float(np.percentile(v, q)) if len(v) else np.nan


def latency_summary(turns: pd.DataFrame) -> pd.DataFrame:
    """n, mean, p50 and p95 of each latency column per source (tidy: one row per source and metric).

    Returns
    -------
    pandas.DataFrame
        ``source, metric, n, mean_ms, p50_ms, p95_ms``; ``metric`` is one of :data:`LATENCY_METRICS`. NaN values (no delta, no reference, ...) are left out; n counts the rest.
    """
    _need(turns, ("source",), "latency_summary")
    rows = []
    for source, df in turns.groupby("source", sort=False):
        for m in LATENCY_METRICS:
            v = df[m].to_numpy(dtype=float, na_value=np.nan) if m in df.columns else np.zeros(0)
            v = v[np.isfinite(v)]
            rows.append({"source": source, "metric": m, "n": int(len(v)),
                         "mean_ms": float(v.mean()) if len(v) else np.nan, "p50_ms": _pct(v, 50),
                         "p95_ms": _pct(v, 95)})
    return pd.DataFrame(rows, columns=["source", "metric", "n", "mean_ms", "p50_ms", "p95_ms"])


# ------------------------------------------------------------------------------------------------------------------
# Summary
# ------------------------------------------------------------------------------------------------------------------
def summary(turns: pd.DataFrame) -> pd.DataFrame:
    """One row per source.

    Columns: ``source, model, n_turns, n_scored, wer, cer`` (corpus-level over scored turns);
    ``final_after_eos_p50_ms / _p95_ms`` (final transcript after the true end of speech: the comparable headline),
    ``final_after_stop_p50_ms / _p95_ms`` (after the source's own end-of-turn anchor),
    ``first_text_after_start_p50_ms`` (first text after the start of speech), ``first_text_before_eos_share``
    (share of turns whose first text arrived while the user was still speaking: streaming);
    ``cost_usd`` (sum; NaN when no turn could be priced), ``cost_basis`` (the bases of the summed rows, e.g.
    ``emulated``) and ``n_failed``. Every latency column is defined in :mod:`rtlab.analysis.turns`.
    """
    _need(turns, ("source",), "summary")
    rows = []
    for source, df in turns.groupby("source", sort=False):
        row: dict[str, Any] = {"source": source}
        models = [m for m in dict.fromkeys(df["model"]) if isinstance(m, str)] if "model" in df.columns else []
        row["model"] = ",".join(models) if models else None
        row["n_turns"] = int(len(df))
        if "reference" in df.columns and "transcript" in df.columns:
            if "word_errors" not in df.columns:
                df = score_turns(df)
            scored = df[np.isfinite(df["ref_words"].to_numpy(dtype=float, na_value=np.nan))]
            row["n_scored"] = int(len(scored))
            row["wer"] = _rate(scored["word_errors"].sum(), scored["ref_words"].sum()) if len(scored) else np.nan
            row["cer"] = _rate(scored["char_errors"].sum(), scored["ref_chars"].sum()) if len(scored) else np.nan
        else:
            row.update(n_scored=0, wer=np.nan, cer=np.nan)
        for m in LATENCY_METRICS:
            v = df[m].to_numpy(dtype=float, na_value=np.nan) if m in df.columns else np.zeros(0)
            v = v[np.isfinite(v)]
            base = m[:-3]
            row[f"{base}_p50_ms"] = _pct(v, 50)
            if m != "first_text_after_start_ms":
                row[f"{base}_p95_ms"] = _pct(v, 95)
        early = df["first_text_after_eos_ms"].to_numpy(dtype=float, na_value=np.nan) \
            if "first_text_after_eos_ms" in df.columns else np.zeros(0)
        early = early[np.isfinite(early)]
        row["first_text_before_eos_share"] = float((early < 0).mean()) if len(early) else np.nan
        c = df["cost_usd"].to_numpy(dtype=float, na_value=np.nan) if "cost_usd" in df.columns else np.zeros(0)
        row["cost_usd"] = float(np.nansum(c)) if np.isfinite(c).any() else np.nan
        bases = [b for b, v in zip(df["cost_basis"], c, strict=True) if np.isfinite(v)] \
            if "cost_basis" in df.columns else []
        row["cost_basis"] = "+".join(dict.fromkeys(bases)) if bases else "none"
        row["n_failed"] = int((df["status"] == "failed").sum()) if "status" in df.columns else 0
        rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


SUMMARY_COLUMNS = ["source", "model", "n_turns", "n_scored", "wer", "cer", "final_after_eos_p50_ms",
                   "final_after_eos_p95_ms", "final_after_stop_p50_ms", "final_after_stop_p95_ms",
                   "first_text_after_start_p50_ms", "first_text_before_eos_share", "cost_usd", "cost_basis",
                   "n_failed"]
