"""Accuracy, agreement, latency and cost of transcripts, from the ``turns()`` table of an event log.

- :func:`normalize` — the text normalizer every WER/CER in rtlab goes through (jiwer transforms):
  Unicode NFKC, curly quotes to straight, lowercase, jiwer's common English contraction expansion
  (``can't`` → ``can not``, ``I'm`` → ``I am``; note jiwer also turns ``'s`` into ``is``, on both sides alike),
  hyphens and dashes to spaces, punctuation removed (apostrophes too) except ``.``/``,``/``:`` between digits,
  whitespace collapsed. Numbers are left as written: ``"3"`` and ``"three"`` differ (no number normalization),
  and fillers (``uh``, ``um``) are kept.
- :func:`wer` / :func:`cer` — corpus-level error rates (total edits / total reference words or characters),
  via jiwer; :func:`score_turns` adds per-turn ``wer``/``cer`` columns.
- :func:`agreement` — per-turn pairwise WER between sources, turns matched by audio-time overlap.
- :func:`latency_summary` — n, mean, p50, p95 of ``first_delta_ms``, ``ttfs_ms``, ``ttfs_true_ms`` per source.
- :func:`cost` — USD from a ``usage`` object and a dated price table (``data/prices.json``).
- :func:`summary` — one row per source: turns, WER/CER, latency percentiles, cost.

Percentiles are numpy's default (linear interpolation) over the turns that have the value.
"""

from __future__ import annotations

import json
import math
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import pandas as pd

__all__ = [
    "normalize", "wer", "cer", "score_turns", "agreement", "latency_summary", "cost", "load_prices", "summary",
    "LATENCY_METRICS",
]

LATENCY_METRICS = ("first_delta_ms", "ttfs_ms", "ttfs_true_ms")
LOCAL_MODELS = ("local", "pocketsphinx")

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
        raise TypeError(f"{fn}() takes the DataFrame from EventLog.turns(); got {type(df).__name__}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{fn}(): the table lacks columns {missing}; pass EventLog.turns() (or its concatenation)")


def _best_overlap(a_start: np.ndarray, a_end: np.ndarray, b_start: np.ndarray, b_end: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """For each span of a: the index of the span of b overlapping it most (-1: none) and the overlap (ms)."""
    order = np.argsort(b_start, kind="stable")
    bs, be = b_start[order], b_end[order]
    run_max_end = np.maximum.accumulate(be) if len(be) else be
    best = np.full(len(a_start), -1, dtype=np.int64)
    best_ov = np.zeros(len(a_start))
    for i, (s, e) in enumerate(zip(a_start, a_end, strict=True)):
        hi = np.searchsorted(bs, e, side="left")
        lo = np.searchsorted(run_max_end, s, side="right")
        if hi <= lo:
            continue
        ov = np.minimum(be[lo:hi], e) - np.maximum(bs[lo:hi], s)
        j = int(np.argmax(ov))
        if ov[j] > 0:
            best[i], best_ov[i] = order[lo + j], ov[j]
    return best, best_ov


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
                best, ov = _best_overlap(a_s, a_e, b_s, b_e)
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
        ``source, metric, n, mean_ms, p50_ms, p95_ms``; ``metric`` is one of ``first_delta_ms``, ``ttfs_ms``,
        ``ttfs_true_ms``. NaN values (no delta, no reference, ...) are left out; n counts the rest.
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
# Cost
# ------------------------------------------------------------------------------------------------------------------
def _default_prices_path() -> Path:
    from .paths import data_dir

    return data_dir() / "prices.json"


@lru_cache(maxsize=8)
def _load_prices_cached(path: str, mtime: float) -> dict:
    with open(path, encoding="utf-8") as fh:
        table = json.load(fh)
    if not isinstance(table, dict) or not isinstance(table.get("models"), dict):
        raise ValueError(f"{path}: not a price table (needs a 'models' object, like data/prices.json)")
    return table


def load_prices(path: str | os.PathLike | None = None) -> dict:
    """The price table (default ``data/prices.json``): ``as_of``, ``sources`` and per-model prices."""
    p = Path(path) if path is not None else _default_prices_path()
    if not p.exists():
        raise FileNotFoundError(f"price table {p} not found; pass prices= or restore data/prices.json")
    return _load_prices_cached(str(p), p.stat().st_mtime)


_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def _price_entry(model: str, prices: Mapping[str, Any]) -> Mapping[str, Any] | None:
    models = prices.get("models", prices)
    if model in models:
        return models[model]
    base = _DATE_SUFFIX.sub("", model)  # dated snapshots: gpt-realtime-2025-08-28 -> gpt-realtime
    return models.get(base)


def _tok(d: Any, key: str) -> float:
    v = d.get(key) if isinstance(d, Mapping) else None
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0.0


def cost(usage: Mapping[str, Any] | None, model: str, prices: Mapping[str, Any] | str | os.PathLike | None = None,
         *, audio_seconds: float | None = None) -> float:
    """USD cost of one transcript or response from its ``usage``.

    Parameters
    ----------
    usage : dict or None
        ``{"type": "duration", "seconds": S}`` (per-minute models), ``{"type": "tokens", "input_tokens",
        "output_tokens", "input_token_details": {"audio_tokens", "text_tokens"}}`` (transcription), or a
        realtime ``response.done`` usage (``input_token_details`` with ``cached_tokens_details``,
        ``output_token_details``).
    model : str
        Model name; dated snapshots fall back to the base name. ``"local"``/``"pocketsphinx"`` cost 0.
    prices : dict or path, optional
        A price table like ``data/prices.json`` (default).
    audio_seconds : float, optional
        Audio duration, used with ``per_audio_minute`` when the usage carries no duration (or is missing).

    Returns
    -------
    float
        USD; NaN when the usage cannot be priced with the model's table entry (e.g. no usage and no duration).

    Raises
    ------
    ValueError
        ``model`` has no entry in the price table.

    >>> cost({"type": "duration", "seconds": 60}, "gpt-realtime-whisper")
    0.017
    """
    if not isinstance(model, str) or not model:
        raise ValueError(f"cost() needs a model name; got {model!r}")
    if model in LOCAL_MODELS or model.startswith("local:"):
        return 0.0
    table = prices if isinstance(prices, Mapping) else load_prices(prices)
    entry = _price_entry(model, table)
    if entry is None:
        raise ValueError(f"no price for model {model!r} (as_of {table.get('as_of')}); add it to data/prices.json "
                         "or pass prices= (Azure: map deployment names to models in the log meta 'models')")
    per_min = entry.get("per_audio_minute")
    tok = entry.get("per_1m_tokens") or {}
    usage = usage if isinstance(usage, Mapping) else None
    if usage is not None and usage.get("type") == "duration":
        seconds = _tok(usage, "seconds")
        if per_min is not None:
            return seconds / 60.0 * float(per_min)
        return np.nan
    has_tokens = usage is not None and any(k in usage for k in ("input_tokens", "output_tokens", "total_tokens"))
    if has_tokens and tok:
        inp = usage.get("input_token_details")
        out = usage.get("output_token_details")
        if isinstance(inp, Mapping) and ("audio_tokens" in inp or "text_tokens" in inp):
            audio_in, text_in = _tok(inp, "audio_tokens"), _tok(inp, "text_tokens")
        else:
            audio_in, text_in = _tok(usage, "input_tokens"), 0.0  # transcription input is audio
        cached = inp.get("cached_tokens_details") if isinstance(inp, Mapping) else None
        c_audio, c_text = _tok(cached, "audio_tokens"), _tok(cached, "text_tokens")
        if isinstance(out, Mapping) and ("audio_tokens" in out or "text_tokens" in out):
            audio_out, text_out = _tok(out, "audio_tokens"), _tok(out, "text_tokens")
        else:
            audio_out, text_out = 0.0, _tok(usage, "output_tokens")

        def p(key: str, fallback: str | None = None) -> float:
            v = tok.get(key, tok.get(fallback) if fallback else None)
            return float(v) if v is not None else 0.0

        usd = ((audio_in - c_audio) * p("audio_input") + c_audio * p("cached_audio_input", "audio_input")
               + (text_in - c_text) * p("text_input") + c_text * p("cached_text_input", "text_input")
               + text_out * p("text_output") + audio_out * p("audio_output", "text_output"))
        return usd / 1e6
    if per_min is not None and audio_seconds is not None and math.isfinite(audio_seconds):
        return max(audio_seconds, 0.0) / 60.0 * float(per_min)
    return np.nan


# ------------------------------------------------------------------------------------------------------------------
# Summary
# ------------------------------------------------------------------------------------------------------------------
def summary(turns: pd.DataFrame) -> pd.DataFrame:
    """One row per source: ``source, model, n_turns, n_scored, wer, cer`` (corpus-level over scored turns),
    ``first_delta_p50_ms, first_delta_p95_ms, ttfs_p50_ms, ttfs_p95_ms, ttfs_true_p50_ms, ttfs_true_p95_ms,
    cost_usd`` (sum; NaN when no turn could be priced) and ``n_failed``."""
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
            row[f"{base}_p95_ms"] = _pct(v, 95)
        c = df["cost_usd"].to_numpy(dtype=float, na_value=np.nan) if "cost_usd" in df.columns else np.zeros(0)
        row["cost_usd"] = float(np.nansum(c)) if np.isfinite(c).any() else np.nan
        row["n_failed"] = int((df["status"] == "failed").sum()) if "status" in df.columns else 0
        rows.append(row)
    cols = ["source", "model", "n_turns", "n_scored", "wer", "cer", "first_delta_p50_ms", "first_delta_p95_ms",
            "ttfs_p50_ms", "ttfs_p95_ms", "ttfs_true_p50_ms", "ttfs_true_p95_ms", "cost_usd", "n_failed"]
    return pd.DataFrame(rows, columns=cols)
