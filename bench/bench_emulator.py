"""Emulator latency and capacity on this machine (``python -m bench emulator``; writes bench/results/emulator.json).

The emulator runs as ``rtlab serve --workers <cores>`` in its own processes (as a user would run it for many
sessions); this process is the client side,
using the official openai SDK, pacing the bundled clips in real time (40 ms chunks) on one audio clock.

Measured, per turn (an utterance of the clip manifest, matched to the item whose VAD window overlaps it):

* ``final_after_stopped_ms``: ``...transcription.completed`` received minus ``speech_stopped`` received;
* ``final_after_true_end_ms``: ``completed`` received minus the moment the audio at the utterance's true end
  (manifest ``end_s``) was sent: this includes the 500 ms of silence server VAD waits for;
* ``first_delta_after_speech_start_ms`` (streaming models): first ``delta`` received minus the moment the audio at
  the true start of speech was sent;
* ``vad_lag_ms``: ``speech_stopped`` received minus the moment the audio that decided it (``audio_end_ms`` +
  ``silence_duration_ms``) was sent: how far the server runs behind real time.

Capacity: N pairs at once, each a voice session (gpt-realtime, in-session gpt-realtime-whisper transcription,
spoken answers) plus a transcription-session sidecar (gpt-4o-transcribe), all fed the monologue clip in real time.
N is sustained ("keeps up with real time") when every turn completes and the p95 of ``vad_lag_ms`` stays within
250 ms; the final-transcript latency at each level is reported beside it. Levels are tried in order until one
is clearly overloaded (a missing turn or a lag p95 over 2 s). Other processes running on the machine at the same
time distort every number here: run it on an otherwise idle machine.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "emulator.json"
CHUNK_MS = 40
TAIL_S = 1.5
LATENCY_CLIPS = ("monologue", "dialogue", "noisy", "short")
CAPACITY_LEVELS = (1, 2, 3, 4, 6)
SILENCE_MS = 500
# Server processes: the local engines hold the GIL while decoding, so one process uses one core.
WORKERS = int(os.environ.get("RTLAB_BENCH_WORKERS", 2 * (os.cpu_count() or 1)))


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _start_server() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtlab.cli", "serve", "--port", "0", "--workers", str(WORKERS)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=open(os.environ.get("RTLAB_BENCH_SERVER_LOG", os.devnull), "w"), text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    match = re.search(r"listening on (http://\S+)", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"rtlab serve did not start (said {line!r})")
    return proc, match.group(1)


def _load(name: str) -> tuple[np.ndarray, list[dict]]:
    manifest = json.loads((ROOT / "data" / "manifest.json").read_text())
    clip = manifest["clips"][name]
    pcm, sr = sf.read(ROOT / "data" / clip["file"], dtype="int16")
    if sr != 24000:
        raise RuntimeError(f"{name}: expected 24 kHz, got {sr}")
    return np.concatenate([pcm, np.zeros(int(24000 * TAIL_S), np.int16)]), clip["utterances"]


class Leg:
    """One SDK connection: its setup event and the (receive time, event) it got."""

    def __init__(self, url: str, kind: str, model: str):
        self.url, self.kind, self.model = url, kind, model
        self.events: list[tuple[float, dict]] = []

    def manager(self):
        import openai

        client = openai.AsyncOpenAI(base_url=self.url + "/v1", api_key="bench")
        if self.kind == "realtime":
            return client.realtime.connect(model="gpt-realtime")
        return client.realtime.connect(extra_query={"intent": "transcription"})

    def update(self) -> dict:
        return {"type": "session.update", "session": {"type": self.kind, "audio": {"input": {
            "transcription": {"model": self.model, "language": "en"}}}}}

    async def receive(self, conn, stop: asyncio.Event) -> None:
        while True:
            try:
                raw = await conn.recv_bytes()
            except Exception:
                return
            self.events.append((time.perf_counter(), json.loads(raw)))
            if stop.is_set():
                return


async def _run_group(url: str, pcm: np.ndarray, legs_spec: list[tuple[str, str]], n_turns: int) -> tuple[list[Leg], list[float]]:
    """Pace one clip in real time into every leg at once; returns the legs and the send time of every chunk."""
    from contextlib import AsyncExitStack

    legs = [Leg(url, kind, model) for kind, model in legs_spec]
    step = 24 * CHUNK_MS
    payloads = [base64.b64encode(pcm[i: i + step].tobytes()).decode() for i in range(0, len(pcm), step)]
    sent_at: list[float] = []
    stop = asyncio.Event()
    async with AsyncExitStack() as stack:
        conns = [await stack.enter_async_context(leg.manager()) for leg in legs]
        tasks = [asyncio.create_task(leg.receive(conn, stop)) for leg, conn in zip(legs, conns, strict=False)]
        for leg, conn in zip(legs, conns, strict=False):
            await conn.send(leg.update())
        await asyncio.sleep(0.2)
        t0 = time.perf_counter()
        for k, payload in enumerate(payloads):
            due = t0 + k * CHUNK_MS / 1000
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            for conn in conns:
                await conn.send({"type": "input_audio_buffer.append", "audio": payload})
            sent_at.append(time.perf_counter())
        # Wait (bounded) for every leg's last transcript and, for voice legs, the last response.
        deadline = time.perf_counter() + 10
        while time.perf_counter() < deadline:
            done = all(sum(e["type"].endswith(("transcription.completed", "transcription.failed"))
                           for _, e in leg.events) >= n_turns for leg in legs)
            responses = all(leg.kind != "realtime" or (
                sum(e["type"] == "response.done" for _, e in leg.events) >= 1
                and sum(e["type"] == "response.done" for _, e in leg.events)
                == sum(e["type"] == "response.created" for _, e in leg.events)) for leg in legs)
            if done and responses:
                break
            await asyncio.sleep(0.05)
        stop.set()
        for conn in conns:
            await conn.close()
        await asyncio.gather(*tasks, return_exceptions=True)
    return legs, sent_at


def _sent_time(sent_at: list[float], audio_ms: float) -> float:
    """Wall time at which the chunk holding audio time ``audio_ms`` had been sent."""
    k = min(max(int(np.ceil(audio_ms / CHUNK_MS)) - 1, 0), len(sent_at) - 1)
    return sent_at[k]


def _turn_metrics(leg: Leg, utterances: list[dict], sent_at: list[float], streaming: bool) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"final_after_stopped_ms": [], "final_after_true_end_ms": [],
                                   "first_delta_after_speech_start_ms": [], "vad_lag_ms": [], "missing": []}
    stopped = {e["item_id"]: (t, e) for t, e in leg.events if e["type"] == "input_audio_buffer.speech_stopped"}
    started = {e["item_id"]: e for _, e in leg.events if e["type"] == "input_audio_buffer.speech_started"}
    completed = {e["item_id"]: t for t, e in leg.events if e["type"].endswith("transcription.completed")}
    first_delta: dict[str, float] = {}
    for t, e in leg.events:
        if e["type"].endswith("transcription.delta"):
            first_delta.setdefault(e["item_id"], t)
    for u in utterances:
        s_ms, e_ms = u["start_s"] * 1000, u["end_s"] * 1000
        item = next((i for i, ev in started.items() if i in stopped
                     and ev["audio_start_ms"] < e_ms and stopped[i][1]["audio_end_ms"] > s_ms), None)
        if item is None or item not in completed:
            out["missing"].append(1.0)
            continue
        t_stop, stop_ev = stopped[item]
        out["final_after_stopped_ms"].append((completed[item] - t_stop) * 1000)
        out["final_after_true_end_ms"].append((completed[item] - _sent_time(sent_at, e_ms)) * 1000)
        out["vad_lag_ms"].append((t_stop - _sent_time(sent_at, stop_ev["audio_end_ms"] + SILENCE_MS)) * 1000)
        if streaming and item in first_delta:
            out["first_delta_after_speech_start_ms"].append((first_delta[item] - _sent_time(sent_at, s_ms)) * 1000)
    return out


def _merge(into: dict[str, list[float]], more: dict[str, list[float]]) -> None:
    for k, v in more.items():
        into.setdefault(k, []).extend(v)


async def _latency(url: str) -> dict:
    by_model: dict[str, dict[str, list[float]]] = {}
    for name in LATENCY_CLIPS:
        pcm, utterances = _load(name)
        for kind, model, streaming in (("transcription", "gpt-live-transcribe", True),
                                       ("transcription", "gpt-4o-transcribe", False),
                                       ("realtime", "gpt-realtime-whisper", True)):
            legs, sent_at = await _run_group(url, pcm, [(kind, model)], len(utterances))
            _merge(by_model.setdefault(f"{kind}:{model}", {}), _turn_metrics(legs[0], utterances, sent_at, streaming))
    return by_model


async def _capacity(url: str, n: int) -> dict:
    pcm, utterances = _load("monologue")
    spec = [("realtime", "gpt-realtime-whisper"), ("transcription", "gpt-4o-transcribe")] * n
    legs, sent_at = await _run_group(url, pcm, spec, len(utterances))
    merged: dict[str, list[float]] = {}
    for leg in legs:
        _merge(merged, _turn_metrics(leg, utterances, sent_at, leg.model == "gpt-realtime-whisper"))
    p95_lag, p95_final = _pct(merged["vad_lag_ms"], 95), _pct(merged["final_after_stopped_ms"], 95)
    ok = not merged["missing"] and p95_lag is not None and p95_lag <= 250
    return {"pairs": n, "sessions": 2 * n, "turns": len(merged["final_after_stopped_ms"]),
            "missing_turns": len(merged["missing"]), "vad_lag_p95_ms": p95_lag, "final_after_stopped_p95_ms": p95_final,
            "final_after_stopped_p50_ms": _pct(merged["final_after_stopped_ms"], 50), "sustained": ok}


def run() -> dict:
    """Run the benchmark; returns the result dict (also written to bench/results/emulator.json)."""
    load_before = os.getloadavg()
    proc, url = _start_server()
    try:
        latency = asyncio.run(_latency(url))
        capacity = []
        for n in CAPACITY_LEVELS:
            level = asyncio.run(_capacity(url, n))
            capacity.append(level)
            if level["missing_turns"] or (level["vad_lag_p95_ms"] or 0) > 2000:
                break
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    summary: dict[str, dict] = {}
    for key, m in latency.items():
        summary[key] = {
            "turns": len(m["final_after_stopped_ms"]), "missing_turns": len(m["missing"]),
            **{f"{metric}_p{q}": _pct(m[metric], q) for metric in
               ("final_after_stopped_ms", "final_after_true_end_ms", "first_delta_after_speech_start_ms",
                "vad_lag_ms") for q in (50, 95)},
        }
    final = [v for m in latency.values() for v in m["final_after_stopped_ms"]]
    first = [v for k, m in latency.items() for v in m["first_delta_after_speech_start_ms"]]
    sustained = 0
    for c in capacity:  # the largest N such that every level up to N kept up
        if not c["sustained"]:
            break
        sustained = c["pairs"]
    rows = [
        {"metric": "final transcript after speech_stopped p50", "value": _pct(final, 50), "unit": "ms",
         "target": "<= 150", "ok": (_pct(final, 50) or 1e9) <= 150},
        {"metric": "final transcript after speech_stopped p95", "value": _pct(final, 95), "unit": "ms",
         "target": "<= 250", "ok": (_pct(final, 95) or 1e9) <= 250},
        {"metric": "final transcript after true end of speech p50",
         "value": _pct([v for m in latency.values() for v in m["final_after_true_end_ms"]], 50), "unit": "ms",
         "target": "(includes 500 ms VAD silence)", "ok": None},
        {"metric": "final transcript after true end of speech p95",
         "value": _pct([v for m in latency.values() for v in m["final_after_true_end_ms"]], 95), "unit": "ms",
         "target": "", "ok": None},
        {"metric": "first delta after speech start p50 (streaming)", "value": _pct(first, 50), "unit": "ms",
         "target": "<= 500", "ok": (_pct(first, 50) or 1e9) <= 500},
        {"metric": "first delta after speech start p95 (streaming)", "value": _pct(first, 95), "unit": "ms",
         "target": "<= 500", "ok": (_pct(first, 95) or 1e9) <= 500},
        {"metric": "concurrent voice+sidecar pairs sustained in real time", "value": sustained, "unit": "pairs",
         "target": ">= 4", "ok": sustained >= 4},
    ] + [{"metric": f"  {c['pairs']} pairs: VAD lag p95 / final after stopped p50, p95",
          "value": f"{c['vad_lag_p95_ms']:.0f} / {c['final_after_stopped_p50_ms']:.0f}, "
                   f"{c['final_after_stopped_p95_ms']:.0f}" if c["vad_lag_p95_ms"] is not None else "n/a",
          "unit": "ms", "target": "", "ok": None} for c in capacity]
    result = {"cpu_count": os.cpu_count(), "server_workers": WORKERS, "chunk_ms": CHUNK_MS,
              "load_average_before": [round(x, 2) for x in load_before],
              "load_average_after": [round(x, 2) for x in os.getloadavg()], "clips": list(LATENCY_CLIPS),
              "latency": summary, "capacity": capacity, "rows": rows,
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    res = run()
    for row in res["rows"]:
        print(f"{row['metric']:<58} {row['value']!s:>10} {row['unit']:<6} {row['target']}")
