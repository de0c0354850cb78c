"""Cost of a transcript or response, with its basis (layer: analysis).

- :func:`cost` — USD from a ``usage`` object and a dated price table (``data/prices.json``);
- :func:`cost_basis` — where a row's usage came from: ``"reported"`` (a real service sent it), ``"emulated"``
  (the local emulator made it up: token counts are estimates), ``"duration"`` (no usage: priced from the turn's
  audio duration at the model's per-minute rate), ``"local"`` (a local engine: no service cost) or ``"none"``
  (nothing to price with: NaN).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = ["COST_BASES", "LOCAL_MODELS", "CostBasis", "cost", "cost_basis", "load_prices"]

LOCAL_MODELS = ("local", "pocketsphinx")
CostBasis = Literal["reported", "emulated", "duration", "local", "none"]
COST_BASES: tuple[str, ...] = ("reported", "emulated", "duration", "local", "none")


def _default_prices_path() -> Path:
    from rtlab.paths import data_dir

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



def cost_basis(usage: Mapping[str, Any] | None, model: str | None, *, emulated: bool, priced: bool) -> CostBasis:
    """Where a row's cost comes from (see the module docstring).

    ``emulated``: the usage was produced by rtlab's emulator (a local target); ``priced``: :func:`cost` gave a
    number.
    """
    if model is not None and (model in LOCAL_MODELS or model.startswith("local:")):
        return "local"
    if not priced:
        return "none"
    if isinstance(usage, Mapping) and usage:
        return "emulated" if emulated else "reported"
    return "duration"
