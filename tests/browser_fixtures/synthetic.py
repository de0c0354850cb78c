"""A deterministic synthetic session for widget tests and the widget bench.

``synthetic_session(...)`` records a plausible multi-source session (in-session voice + transcription-session
sidecar + local engine) into an event log following the EventLog contract: ``to_frame()``, ``input_audio()``,
``output_audio(source)``, ``subscribe(callback)``. With a ``path`` the real :class:`rtlab.log.EventLog` is used
(``EventLog.create`` + ``record``); otherwise :class:`MemoryEventLog`, a small stand-in with the same surface (and
a ``turns()`` with the turns-table columns the widgets read).
"""

from __future__ import annotations

import base64
import json
import pickle
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SR_IN = 24000
SR_OUT = 24000


@dataclass(frozen=True)
class Turn:
    item_id: str
    start_ms: int
    end_ms: int
    text: str


class MemoryEventLog:
    """In-memory stand-in for ``rtlab.log.EventLog`` (same public surface the widgets read)."""

    def __init__(self, meta: dict[str, Any] | None = None) -> None:
        self.meta = meta or {}
        self._rows: list[dict[str, Any]] = []
        self._subs: list[Callable[[dict[str, Any]], None]] = []
        self._lock = threading.Lock()
        self._input: tuple[np.ndarray, int] = (np.zeros(0, np.int16), SR_IN)
        self._output: dict[str, tuple[np.ndarray, int]] = {}

    # recording ---------------------------------------------------------------------------------
    def record(self, direction: str, source: str, event: dict[str, Any], *, audio_ms: float | None = None,
               t: float | None = None) -> dict[str, Any]:
        from rtlab.protocol import canonical_event_name

        with self._lock:
            seq = len(self._rows)
            raw = event.get("type", "")
            resp = event.get("response_id") or (event.get("response") or {}).get("id")
            row = {
                "seq": seq,
                "t_ms": float(t * 1000.0) if t is not None else float(seq),
                "audio_ms": float(audio_ms) if audio_ms is not None else np.nan,
                "direction": direction,
                "source": source,
                "type": canonical_event_name(raw),
                "raw_type": raw,
                "item_id": event.get("item_id") or (event.get("item") or {}).get("id"),
                "response_id": resp,
                "event_id": event.get("event_id"),
                "event": event,
            }
            self._rows.append(row)
            subs = list(self._subs)
        for cb in subs:
            cb(row)
        return row

    def subscribe(self, callback: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        with self._lock:
            self._subs.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subs:
                    self._subs.remove(callback)

        return unsubscribe

    def set_input_audio(self, samples: np.ndarray, sample_rate: int) -> None:
        self._input = (samples, sample_rate)

    def set_output_audio(self, source: str, samples: np.ndarray, sample_rate: int) -> None:
        self._output[source] = (samples, sample_rate)

    # reading -----------------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        cols = ["seq", "t_ms", "audio_ms", "direction", "source", "type", "raw_type", "item_id", "response_id",
                "event_id", "event"]
        return pd.DataFrame(self._rows, columns=cols)

    def turns(self) -> pd.DataFrame:
        f = self.to_frame()
        out = []
        for (src, item), g in f[f["item_id"].notna()].groupby(["source", "item_id"], sort=False):
            st = g[g["type"] == "input_audio_buffer.speech_started"]
            sp = g[g["type"] == "input_audio_buffer.speech_stopped"]
            co = g[g["type"] == "conversation.item.input_audio_transcription.completed"]
            de = g[g["type"] == "conversation.item.input_audio_transcription.delta"]
            if co.empty and st.empty:
                continue
            out.append({
                "source": src, "item_id": item,
                "audio_start_ms": st["event"].iloc[0]["audio_start_ms"] if len(st) else np.nan,
                "audio_end_ms": sp["event"].iloc[0]["audio_end_ms"] if len(sp) else np.nan,
                "transcript": co["event"].iloc[-1]["transcript"] if len(co) else None,
                "end_anchor": "speech_stopped" if len(sp) else None,
                "n_deltas": len(de),
            })
        return pd.DataFrame(out, columns=["source", "item_id", "audio_start_ms", "audio_end_ms", "transcript",
                                          "end_anchor", "n_deltas"])

    def input_audio(self) -> tuple[np.ndarray, int]:
        return self._input

    def output_audio(self, source: str) -> tuple[np.ndarray, int]:
        if source not in self._output:
            raise KeyError(f"no output audio for source {source!r}")
        return self._output[source]

    def __len__(self) -> int:
        return len(self._rows)

    # persistence (for the browser test's notebook) --------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        with path.open("wb") as fh:
            pickle.dump({"meta": self.meta, "rows": self._rows, "input": self._input, "output": self._output}, fh)
        return path

    @classmethod
    def load(cls, path: str | Path) -> MemoryEventLog:
        with Path(path).open("rb") as fh:
            d = pickle.load(fh)  # noqa: S301 - our own test fixture file
        log = cls(d["meta"])
        log._rows, log._input, log._output = d["rows"], d["input"], d["output"]
        return log


WORDS = ("the quick brown fox jumps over a lazy dog while seven bright birds sing near the old river bank "
         "under a pale morning sky and nobody hears them").split()


def _speechy(rng: np.random.Generator, n: int, sr: int, f0: float) -> np.ndarray:
    """A voiced, syllable-modulated tone: looks and sounds like speech on a waveform."""
    t = np.arange(n) / sr
    env = 0.5 * (1 + np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6))) * np.minimum(1, np.minimum(t, t[::-1]) * 20)
    tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 5))
    return (0.35 * env * tone + 0.02 * rng.standard_normal(n)).astype(np.float32)


def synthetic_session(*, seconds: float = 30.0, turns: int = 4, events: int | None = None, seed: int = 7,
                      path: str | Path | None = None, with_error: bool = True, memory: bool = False) -> Any:
    """Record a synthetic session and return the log.

    ``turns`` user turns spread over ``seconds`` of audio; each is seen by three sources:
    ``in-session`` (VAD, commit, streaming deltas, completed, a spoken response), ``sidecar:transcription``
    (VAD, commit, deltas after commit, completed) and ``sidecar:local`` (completed only). ``events`` pads the
    number of transcript deltas so the log reaches about that many records (for the bench).
    """
    rng = np.random.default_rng(seed)
    n_in = int(seconds * SR_IN)
    audio_in = (0.003 * rng.standard_normal(n_in)).astype(np.float32)
    audio_out = np.zeros(int(seconds * SR_OUT), dtype=np.float32)
    slot = seconds * 1000.0 / turns
    plan: list[Turn] = []
    for k in range(turns):
        s = int(k * slot + 0.08 * slot)
        e = int(s + 0.38 * slot)
        words = [WORDS[(k * 3 + j) % len(WORDS)] for j in range(3 + k % 4)]
        plan.append(Turn(f"item_{k:05d}", s, e, " ".join(words).capitalize() + "."))
        a, b = s * SR_IN // 1000, e * SR_IN // 1000
        audio_in[a:b] += _speechy(rng, b - a, SR_IN, 140 + 40 * (k % 3))
    base_events_per_turn = 25
    deltas_per_turn = 6
    if events:
        deltas_per_turn = max(2, (events // max(1, turns) - base_events_per_turn) // 2)

    log: Any
    try:
        if memory or path is None:
            raise ImportError("in-memory log requested")
        from rtlab.log import EventLog  # type: ignore[attr-defined]

        log = EventLog.create(path, meta={"synthetic": True, "seed": seed}, overwrite=True)
    except ImportError:
        log = MemoryEventLog({"synthetic": True, "seed": seed})
    real = not isinstance(log, MemoryEventLog)

    pending: list[tuple[float, int, str, str, dict[str, Any], float]] = []

    def rec(direction: str, source: str, event: dict[str, Any], *, audio_ms: float, t: float) -> None:
        pending.append((t, len(pending), direction, source, event, audio_ms))

    eid = iter(range(10**9))

    def ev(type_: str, **kw: Any) -> dict[str, Any]:
        return {"type": type_, "event_id": f"event_{next(eid):07d}", **kw}

    for k, turn in enumerate(plan):
        words = turn.text.split()
        dur = turn.end_ms - turn.start_ms
        # in-session: streaming deltas during speech, then a spoken response
        src = "in-session"
        rec("server", src, ev("input_audio_buffer.speech_started", audio_start_ms=turn.start_ms,
                              item_id=turn.item_id), audio_ms=turn.start_ms + 200, t=(turn.start_ms + 210) / 1000)
        pieces = _split(turn.text, deltas_per_turn)
        for j, piece in enumerate(pieces):
            at = turn.start_ms + 300 + (dur - 300) * j / max(1, len(pieces))
            rec("server", src, ev("conversation.item.input_audio_transcription.delta", item_id=turn.item_id,
                                  content_index=0, delta=piece), audio_ms=at, t=at / 1000)
        stop = turn.end_ms + 500
        rec("server", src, ev("input_audio_buffer.speech_stopped", audio_end_ms=turn.end_ms, item_id=turn.item_id),
            audio_ms=stop, t=stop / 1000)
        rec("server", src, ev("input_audio_buffer.committed", item_id=turn.item_id,
                              previous_item_id=plan[k - 1].item_id if k else None), audio_ms=stop + 5, t=stop / 1000)
        rec("server", src, ev("conversation.item.input_audio_transcription.completed", item_id=turn.item_id,
                              content_index=0, transcript=turn.text,
                              usage={"type": "duration", "seconds": dur / 1000}), audio_ms=stop + 120,
            t=(stop + 120) / 1000)
        rid = f"resp_{k:05d}"
        r0, r1 = stop + 150, min(int(seconds * 1000) - 10, stop + 150 + int(0.3 * slot))
        rec("server", src, ev("response.created", response={"id": rid, "status": "in_progress"}),
            audio_ms=r0, t=r0 / 1000)
        a, b = r0 * SR_OUT // 1000, r1 * SR_OUT // 1000
        seg = _speechy(rng, b - a, SR_OUT, 210)
        audio_out[a:b] += seg
        cuts = np.linspace(0, b - a, 9).astype(int)
        for j in range(8):
            at = r0 + (r1 - r0) * j / 8
            chunk = np.clip(seg[cuts[j]:cuts[j + 1]] * 32767, -32768, 32767).astype("<i2").tobytes()
            payload = base64.b64encode(chunk).decode() if real else {"$ref": f"out:{k}:{j}"}
            rec("server", src, ev("response.output_audio.delta", response_id=rid, item_id=f"out_{k:05d}",
                                  output_index=0, content_index=0, delta=payload),
                audio_ms=at, t=at / 1000)
        for j, w in enumerate(words):
            at = r0 + (r1 - r0) * j / len(words)
            rec("server", src, ev("response.output_audio_transcript.delta", response_id=rid,
                                  item_id=f"out_{k:05d}", output_index=0, content_index=0, delta=w + " "),
                audio_ms=at, t=at / 1000)
        rec("server", src, ev("response.done", response={"id": rid, "status": "completed",
                                                          "usage": {"total_tokens": 40 + k}}), audio_ms=r1, t=r1 / 1000)
        # transcription-session sidecar: deltas in a burst after commit
        src = "sidecar:transcription"
        rec("server", src, ev("input_audio_buffer.speech_started", audio_start_ms=turn.start_ms - 20,
                              item_id=f"tr_{turn.item_id}"), audio_ms=turn.start_ms + 220, t=(turn.start_ms + 220) / 1000)
        rec("server", src, ev("input_audio_buffer.speech_stopped", audio_end_ms=turn.end_ms + 10,
                              item_id=f"tr_{turn.item_id}"), audio_ms=stop + 15, t=(stop + 15) / 1000)
        rec("server", src, ev("input_audio_buffer.committed", item_id=f"tr_{turn.item_id}"), audio_ms=stop + 20,
            t=(stop + 20) / 1000)
        for j, piece in enumerate(pieces):
            at = stop + 60 + 25 * j
            rec("server", src, ev("conversation.item.input_audio_transcription.delta", item_id=f"tr_{turn.item_id}",
                                  content_index=0, delta=piece), audio_ms=at, t=at / 1000)
        alt = turn.text if k % 3 else turn.text.replace(words[-1].rstrip("."), "word")
        rec("server", src, ev("conversation.item.input_audio_transcription.completed", item_id=f"tr_{turn.item_id}",
                              content_index=0, transcript=alt, usage={"type": "duration", "seconds": dur / 1000}),
            audio_ms=stop + 60 + 25 * len(pieces), t=(stop + 60 + 25 * len(pieces)) / 1000)
        # local engine: a final transcript per turn
        src = "sidecar:local"
        rec("server", src, ev("conversation.item.input_audio_transcription.completed", item_id=f"loc_{turn.item_id}",
                              content_index=0, transcript=turn.text.lower()), audio_ms=stop + 40,
            t=(stop + 40) / 1000)
        if with_error and k == 1:
            rec("server", "sidecar:transcription", ev("error", error={
                "type": "invalid_request_error", "code": "input_audio_buffer_commit_empty",
                "message": "buffer too small", "param": None}), audio_ms=stop + 300, t=(stop + 300) / 1000)

    pcm_in = np.clip(audio_in * 32767, -32768, 32767).astype(np.int16)
    pcm_out = np.clip(audio_out * 32767, -32768, 32767).astype(np.int16)
    if real:  # the client streams the input in 200 ms chunks; the log stores it as its input track
        step = SR_IN // 5
        for off in range(0, pcm_in.size, step):
            chunk = pcm_in[off:off + step]
            end_ms = (off + chunk.size) * 1000 / SR_IN
            rec("client", "in-session", {"type": "input_audio_buffer.append",
                                         "audio": base64.b64encode(chunk.astype("<i2").tobytes()).decode()},
                audio_ms=end_ms, t=end_ms / 1000 - 0.0005)
    pending.sort(key=lambda p: (p[0], p[1]))
    for t_s, _, direction, source, event, audio_ms in pending:
        if real and event["type"] == "input_audio_buffer.append":
            off = round((audio_ms / 1000) * SR_IN) - len(base64.b64decode(event["audio"])) // 2
            log.record(direction, source, event, audio_ms=audio_ms, audio_offset=off, t=t_s)
        else:
            log.record(direction, source, event, audio_ms=audio_ms, t=t_s)
    if real:
        log.close()
        log = type(log).load(log.path)
    else:
        log.set_input_audio(pcm_in, SR_IN)
        log.set_output_audio("in-session", pcm_out, SR_OUT)
    log._synthetic_plan = plan  # the ground truth a test compares against
    log._synthetic_expected = expected_counts(plan, deltas_per_turn, with_error=with_error)
    return log


def _split(text: str, n: int) -> list[str]:
    """``text`` cut into ``n`` append-only pieces that concatenate back to it."""
    n = max(1, min(n, len(text)))
    cuts = np.linspace(0, len(text), n + 1).astype(int)
    return [text[cuts[i]:cuts[i + 1]] for i in range(n)]


def expected_counts(plan: list[Turn], deltas_per_turn: int, *, with_error: bool = True) -> dict[str, dict[str, int]]:
    """The span counts the timeline must show for a plan recorded by :func:`synthetic_session`."""
    n = len(plan)
    n_deltas = sum(len(_split(t.text, deltas_per_turn)) for t in plan)
    out = {
        "in-session": {"vad": n, "item": n, "delta": n_deltas, "completed": n, "response": n},
        "sidecar:transcription": {"vad": n, "item": n, "delta": n_deltas, "completed": n},
        "sidecar:local": {"completed": n},
    }
    if with_error and n > 1:
        out["sidecar:transcription"]["error"] = 1
    return out


def dump_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)


def write_fixture_log(directory: str | Path, **kwargs: Any) -> tuple[Any, str]:
    """Record a synthetic session under ``directory`` and return ``(log, code)``.

    ``code`` is Python that loads the saved log back as ``log`` in another process (a notebook kernel).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    log = synthetic_session(path=directory / "events.jsonl", **kwargs)
    here = str(Path(__file__).resolve().parent)
    if isinstance(log, MemoryEventLog):
        saved = log.save(directory / "events.pkl")
        code = f"import sys\nsys.path.insert(0, {here!r})\nfrom synthetic import MemoryEventLog\n" \
               f"log = MemoryEventLog.load({str(saved)!r})"
    else:
        code = f"from rtlab.log import EventLog\nlog = EventLog.load({str(directory / 'events.jsonl')!r})"
    return log, code
