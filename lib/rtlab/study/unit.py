"""Run one unit (one corpus item under one condition) and return its result rows: the study's only door to runs.

Layer: runs (study). Every call into the run, log and analysis modules (targets, session configs, sidecar runs,
the event log's turns table, WER scoring, prices) is in this file, so the rest of :mod:`rtlab.study` depends on
:func:`arun_unit` / :func:`run_unit` / :func:`check_condition` only.

Rows: one per (source, turn) of the run (``item_speaker`` is the corpus's speaker of the file; ``speaker`` the
turns table's, a diarizing source's label of the turn), ``turn`` numbering a source's turns in audio order from 0. A source the
run expected (the voice session, each sidecar) that produced no turn at all still gets one row with ``turn = -1``
and ``status = "no_turns"``, so a file a source missed counts as errors instead of vanishing from the study.

Scoring: ``file_*`` columns (repeated on every row of a (unit, source)) compare the source's transcripts of the
whole file, joined in audio order, with the file's reference; corpus WER is ``sum(file_word_errors) /
sum(file_ref_words)`` over distinct (unit, source). Per-turn ``wer``/``cer`` are kept where the corpus gives
true utterance spans (the bundled clips), else NaN.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import RtlabError
from ..protocol.evidence import Evidence
from .spec import Condition, Unit

__all__ = ["RateLimited", "arun_unit", "check_condition", "run_unit", "unit_audio"]

#: The provenance and study columns every row carries, besides the turns table's own.
PROVENANCE = ("rtlab_version", "target_desc", "profile", "profile_evidence", "engine", "timing_model", "cost_basis",
              "prices_as_of", "seed", "unit_seed", "speed", "chunk_ms")
_DIALECT_OF = {"local": "openai-ga", "local-azure": "azure-ga", "openai": "openai-ga", "azure": "azure-ga",
               "azure-preview": "azure-preview"}
#: How a real endpoint says "too many": what :func:`_raise_if_rate_limited` recognizes, with its evidence.
RATE_LIMIT_EVIDENCE = (
    Evidence("reported", "Azure-Samples/aisearch-openai-rag-audio issue 9: HTTP 429 on the Realtime WebSocket "
             "handshake of an Azure gpt-4o-realtime-preview deployment", "2024-10-02"),
    Evidence("reported", "openai/codex issue 88 and Pythagora-io/gpt-pilot PR 53: OpenAI 429 bodies carry code "
             "'rate_limit_exceeded' and 'Please try again in 1.574s' / 'in 6ms'", "2025-04-16"),
    Evidence("reported", "microsoft/sample-app-aoai-chatGPT issue 406: Azure OpenAI 429 messages end 'Please retry "
             "after 9 seconds' (code '429'; a daily quota says 'after 86400 seconds')", "2023-11-21"),
    Evidence("assumed", "rtlab: a Realtime session over its limit may also get an `error` event with code "
             "rate_limit_exceeded after the handshake; not yet observed on /v1/realtime", "2026-12-01"),
)
# "Please try again in 1.574s" / "in 6ms" (OpenAI), "Please retry after 6 seconds" (Azure).
_RETRY_HINT = re.compile(r"(?:try again in|retry after)\s+(\d+(?:\.\d+)?)\s*(ms|s|sec|secs|seconds?)\b", re.I)


class RateLimited(RtlabError):
    """The endpoint refused a session for rate limiting (HTTP 429 or ``rate_limit_exceeded``): retry later."""

    def __init__(self, message: str, *, retry_after_s: float | None = None):
        self.retry_after_s = retry_after_s
        super().__init__(message)


# --------------------------------------------------------------------------------------------------
# Targets and session configs
# --------------------------------------------------------------------------------------------------
_shared_targets: dict[str, Any] = {}


def _target(condition: Condition, seed: int) -> tuple[Any, bool]:
    """(Target, owned): an embedded emulator of our own per unit (seeded: reproducible ids and outputs
    wherever the unit runs), else a target shared by the process (keys come from the worker's environment)."""
    from ..compare import make_target
    from ..targets import Target

    name = condition.target
    if name in ("local", "local-azure"):
        return make_target(name, seed=seed), True
    if name not in _shared_targets:
        if name in _DIALECT_OF:
            _shared_targets[name] = make_target(name)
        else:  # the URL of an `rtlab serve` emulator
            _shared_targets[name] = Target.local(url=name)
    return _shared_targets[name], False


def _session_config(condition: Condition) -> Any:
    from ..config import SessionConfig

    kw: dict[str, Any] = {"input_format": condition.input_format}
    if condition.delay is not None:
        kw["delay"] = condition.delay
    return SessionConfig.realtime(model=condition.voice_model, transcription=condition.in_session_model, **kw)


def check_condition(condition: Condition) -> None:
    """Raise :class:`~rtlab.errors.ConfigError` now for a condition that every unit would fail on (a sidecar spec
    that does not parse, a config the provider rules refuse), before any unit runs."""
    from ..config import render
    from ..runs import parse_sidecar

    for spec in condition.sidecars:
        parse_sidecar(spec)
    config = _session_config(condition)
    render(config, _DIALECT_OF.get(condition.target, "openai-ga"))


# --------------------------------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------------------------------
def unit_audio(unit: Unit) -> tuple[Any, list[dict] | None, str | None]:
    """(audio after the condition's transforms, true utterance spans moved with it or None, file reference)."""
    from ..audio import load
    from ..transforms import apply

    item = unit.item
    audio = load(item.audio_path, sample_rate=None)
    utts = [dict(u) for u in item.utterances] if item.utterances else None
    spans = [(u["start_s"], u["end_s"]) for u in utts] if utts else None
    audio, spans = apply(audio, unit.condition.transforms, seed=unit.item_seed, spans_s=spans)
    if utts:
        for u, (a, b) in zip(utts, spans or [], strict=True):
            u["start_s"], u["end_s"] = a, b
    reference = item.reference or (" ".join(u["text"] for u in utts) if utts else None)
    return audio, utts, reference


# --------------------------------------------------------------------------------------------------
# The unit
# --------------------------------------------------------------------------------------------------
async def arun_unit(unit: Unit, *, log_dir: str | Path) -> pd.DataFrame:
    """Run ``unit`` (its event log goes to ``log_dir``) and return its rows (see the module docstring).

    Raises
    ------
    RateLimited
        A session was refused with HTTP 429 or a ``rate_limit_exceeded`` error: the caller backs off and retries.
    RtlabError
        The unit cannot run (bad audio, a refused configuration); the message says why.
    """
    from ..analysis import turns as turns_of
    from ..runs import RunOptions, arun_sidecar

    audio, utts, reference = unit_audio(unit)
    cond = unit.condition
    target, owned = _target(cond, unit.seed)
    try:
        # A busy machine (or endpoint) can fall behind audio fed faster than real time: give the end-of-audio
        # barrier and the last transcripts at least twice the audio's duration before giving up on them.
        settle = max(float(unit.run.settle_timeout_s), 2.0 * (audio.duration_s + unit.run.tail_ms / 1000.0))
        options = RunOptions(chunk_ms=unit.run.chunk_ms, speed=float(unit.run.speed), tail_ms=unit.run.tail_ms,
                             settle_timeout_s=settle, progress=False)
        log = await arun_sidecar(audio, voice=(target, _session_config(cond)), sidecars=list(cond.sidecars),
                                 out=Path(log_dir), options=options)
        _raise_if_rate_limited(log)
        turns = turns_of(log, utts)
        meta = dict(log.meta)
    finally:
        if owned:
            target.stop()
    return _rows(unit, turns, meta, target=target, reference=reference, has_spans=bool(utts),
                 audio_s=audio.duration_s)


def run_unit(unit: Unit, *, log_dir: str | Path) -> pd.DataFrame:
    """Synchronous :func:`arun_unit` (for Dask workers and scripts; works inside Jupyter too)."""
    from ..runs import run_sync

    return run_sync(arun_unit(unit, log_dir=log_dir))


def _raise_if_rate_limited(log: Any) -> None:
    frame = log.to_frame()
    mask = frame["type"].isin(["rtlab.handshake_failed", "error"]) & (frame["direction"] == "server")
    for ev in frame.loc[mask, "event"]:
        if ev.get("type") == "rtlab.handshake_failed":
            status, code, message = ev.get("status"), ev.get("code"), ev.get("message") or ""
        else:
            err = ev.get("error") or {}
            status, code, message = None, err.get("code"), err.get("message") or ""
        if status == 429 or code in ("rate_limit_exceeded", "429"):
            hint = _RETRY_HINT.search(message)
            retry = None
            if hint:
                retry = float(hint.group(1)) / (1000.0 if hint.group(2).lower() == "ms" else 1.0)
            what = f"HTTP {status}" if status else "error event"
            raise RateLimited(f"rate limited ({what}, code {code or 'none'}): {message[:160]}", retry_after_s=retry)


def _profile(target: Any) -> tuple[str | None, str | None]:
    """(profile name, JSON evidence counts by kind) of a local target's emulator profile."""
    name = getattr(target, "provider_profile", None)
    if not getattr(target, "is_local", False) or not name:
        return None, None
    from ..emulator.profiles import load_profile

    try:
        profile = load_profile(name)
    except RtlabError:
        return str(name), None
    counts = {kind: n for kind, n in profile.evidence_counts().items() if n}
    return profile.name, json.dumps(dict(sorted(counts.items())))


def _file_scores(turns: pd.DataFrame, sources: list[str], reference: str | None) -> dict[str, dict[str, float]]:
    """Per source: the whole file's transcript (turns joined in audio order) scored against ``reference``."""
    from ..analysis.metrics import score_turns

    if not reference:
        return {}
    hyps = []
    for s in sources:
        sub = turns[turns["source"] == s]
        hyps.append(" ".join(t for t in sub["transcript"] if isinstance(t, str) and t.strip()))
    scored = score_turns(pd.DataFrame({"reference": [reference] * len(sources), "transcript": hyps}))
    keys = ("word_errors", "ref_words", "char_errors", "ref_chars")
    return {s: {f"file_{k}": float(scored[k].iloc[i]) for k in keys} for i, s in enumerate(sources)}


def _rows(unit: Unit, turns: pd.DataFrame, meta: dict, *, target: Any, reference: str | None, has_spans: bool,
          audio_s: float) -> pd.DataFrame:
    import rtlab

    from ..analysis.cost import load_prices
    from ..analysis.metrics import score_turns

    cond = unit.condition
    if has_spans:
        turns = score_turns(turns)
    else:  # a whole-file reference lands on one turn: per-turn scores would mislead
        turns = turns.assign(reference=None, **{k: np.nan for k in (
            "wer", "cer", "ref_words", "word_errors", "ref_chars", "char_errors")})
    expected = list(dict.fromkeys([*meta.get("sources", []), *(
        ["sidecar:oob"] if "sidecar:oob" in (meta.get("sidecars") or []) else [])]))
    sources = list(dict.fromkeys([*expected, *turns["source"]]))
    start = pd.to_numeric(turns["audio_start_ms"], errors="coerce").fillna(np.inf)
    end = pd.to_numeric(turns["audio_end_ms"], errors="coerce").fillna(np.inf)
    turns = turns.assign(_s=start, _e=end).sort_values(["source", "_s", "_e", "item_id"], kind="stable")
    turns = turns.drop(columns=["_s", "_e"])
    turns.insert(1, "turn", turns.groupby("source", sort=False).cumcount().astype("int32"))
    missing = [s for s in sources if s not in set(turns["source"])]
    if missing:
        empty = pd.DataFrame({"source": missing, "turn": np.int32(-1), "status": "no_turns", "n_deltas": 0})
        turns = pd.concat([turns, empty], ignore_index=True) if len(turns) else empty
    scores = _file_scores(turns, sources, reference)
    for k in ("file_word_errors", "file_ref_words", "file_char_errors", "file_ref_chars"):
        turns[k] = [scores.get(s, {}).get(k, np.nan) for s in turns["source"]]
    if "usage" in turns.columns:
        turns["usage"] = [json.dumps(u, sort_keys=True) if isinstance(u, dict) else None for u in turns["usage"]]
    profile, evidence = _profile(target)
    # Which engine wrote each source's text and which timing its latencies follow (no model is credited offline).
    from ..analysis import provenance

    prov_table = provenance(meta, turns).set_index("source")
    turns["engine"] = [prov_table["engine"].get(s) for s in turns["source"]]
    turns["timing_model"] = [prov_table["timing"].get(s) for s in turns["source"]]
    if "cost_basis" not in turns.columns:
        turns["cost_basis"] = None
    turns["cost_basis"] = turns["cost_basis"].where(turns["cost_basis"].notna(),
                                                    [prov_table["cost_basis"].get(s) for s in turns["source"]])
    with contextlib.suppress(Exception):  # a missing price table leaves the date empty, not the unit failed
        turns["prices_as_of"] = str(load_prices().get("as_of") or "")
    item = unit.item
    study = {
        "study_id": unit.study_id, "unit_id": unit.unit_id, "condition": cond.id, "condition_label": cond.label(),
        "item": item.key, "audio_path": item.audio_path, "item_speaker": item.speaker, "audio_s": float(audio_s),
        "target": cond.target, "voice_model": cond.voice_model, "in_session_model": cond.in_session_model,
        "delay": cond.delay, "sidecars": ",".join(cond.sidecars),
        "transforms": json.dumps([t.to_json() for t in cond.transforms]), "input_format": cond.input_format,
    }
    prov = {
        "rtlab_version": rtlab.__version__, "target_desc": _target_desc(target), "profile": profile,
        "profile_evidence": evidence,
        "seed": unit.study_seed, "unit_seed": unit.seed, "speed": float(unit.run.speed), "chunk_ms": unit.run.chunk_ms,
    }
    front = pd.DataFrame({k: [v] * len(turns) for k, v in study.items()}, index=turns.index)
    out = pd.concat([front, turns], axis=1)
    for k, v in prov.items():
        out[k] = v
    for k, v in item.metadata:
        out[f"meta_{k}"] = v
    return out.reset_index(drop=True)


def _target_desc(target: Any) -> str:
    """Where the unit ran, without secrets and without the per-unit emulator's port."""
    d = target.to_dict()
    if d.get("provider") == "local" and getattr(target, "_emulator", None) is not None and d.get("base_url") is None:
        where = "embedded emulator"
    else:
        where = d.get("base_url") or ""
    return f"{d.get('provider')} {d.get('dialect')} {where}".strip()
