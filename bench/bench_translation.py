"""The emulated translation endpoint: source-transcript accuracy and latency (``python -m bench translation``;
writes bench/results/translation.json).

* **WER** of the source transcript (``session.input_transcript.delta`` joined) against the manifest reference,
  per bundled clip and pooled over all of them, with the sans-I/O
  :class:`rtlab.emulator.translation.TranslationSession` (200 ms appends, 1.5 s of trailing silence,
  ``session.close``); beside it, whether translated text and audio came out.
* **Latency** at speed 1 on the dialogue clip, through the real path: the openai SDK's translation client in a
  :class:`rtlab.runs.translation.TranslationLeg` (40 ms chunks paced in real time) against the endpoint on a
  socket. Per utterance (manifest ``start_s``/``end_s``), on the log clock: final source text after the moment
  the true end of speech was sent, first source text after the true start was sent, first translated text
  after the true end. The final text of a turn waits for the VAD's 500 ms of silence and the 200 ms frame,
  like the Realtime emulator's.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "translation.json"
SR = 24000
LATENCY_CLIP = "dialogue"
UPDATE = {
    "audio": {"input": {"transcription": {"model": "gpt-realtime-whisper"}}, "output": {"language": "es"}}
}


def _manifest() -> dict:
    return json.loads((ROOT / "data" / "manifest.json").read_text())


def _clip_pcm(clip: dict) -> np.ndarray:
    from rtlab.audio import load

    return np.frombuffer(load(ROOT / "data" / clip["file"], sample_rate=SR).pcm16(), "<i2").astype(np.int16)


def accuracy(engines) -> dict:
    from rtlab.analysis.metrics import wer
    from rtlab.emulator.translation import TranslationSession

    per_clip = {}
    refs, hyps = [], []
    for name, clip in _manifest()["clips"].items():
        s = TranslationSession(engines=engines, seed=0)
        out = s.start() + s.receive(json.dumps({"type": "session.update", "session": UPDATE}))
        pcm = np.concatenate([_clip_pcm(clip), np.zeros(SR * 3 // 2, np.int16)])
        for i in range(0, len(pcm), SR // 5):
            audio = base64.b64encode(pcm[i : i + SR // 5].astype("<i2").tobytes()).decode()
            out += s.receive(json.dumps({"type": "session.input_audio_buffer.append", "audio": audio}))
        out += s.receive(json.dumps({"type": "session.close"})) + s.drain()
        events = [e for e in out if isinstance(e, dict)]
        source = "".join(e["delta"] for e in events if e["type"] == "session.input_transcript.delta")
        spanish = "".join(e["delta"] for e in events if e["type"] == "session.output_transcript.delta")
        audio_s = (
            sum(
                len(base64.b64decode(e["delta"])) for e in events if e["type"] == "session.output_audio.delta"
            )
            / 2
            / SR
        )
        refs.append(clip["reference"])
        hyps.append(source)
        per_clip[name] = {
            "wer": round(wer(clip["reference"], source), 3),
            "source": source,
            "translation": spanish,
            "translated_audio_s": round(audio_s, 2),
        }
    return {"per_clip": per_clip, "pooled_wer": round(wer(refs, hyps), 3)}


def latency(engines) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from rtlab.analysis.translation import translation_turn_rows
    from rtlab.log import EventLog
    from rtlab.runs import RunOptions, arun_legs
    from rtlab.runs.translation import TranslationSidecar
    from rtlab.targets import Target
    from translation_harness import KEY, Harness

    clip = _manifest()["clips"][LATENCY_CLIP]
    harness = Harness(engines)
    try:
        leg = TranslationSidecar("es").leg(Target.local(harness.url, api_key=KEY))
        with tempfile.TemporaryDirectory() as out:
            log = asyncio.run(
                arun_legs(
                    ROOT / "data" / clip["file"],
                    [leg],
                    out=out,
                    options=RunOptions(speed=1.0, chunk_ms=40, progress=False),
                )
            )
            frame = EventLog.load(log.path).to_frame()
    finally:
        harness.close()
    utt = clip["utterances"]
    turns = pd.DataFrame(
        {
            "audio_start_ms": [u["start_s"] * 1000 for u in utt],
            "audio_end_ms": [u["end_s"] * 1000 for u in utt],
        }
    )
    rows = translation_turn_rows(frame, leg.source, turns)
    sent = frame[(frame["direction"] == "client") & (frame["type"] == "session.input_audio_buffer.append")]

    def sent_at(ms: float) -> float:  # log time at which the audio at position ms had been sent
        return float(sent.loc[sent["audio_ms"] >= ms, "t_ms"].iloc[0])

    per_turn = []
    for row, u in zip(rows, utt, strict=True):
        end, start = sent_at(u["end_s"] * 1000), sent_at(u["start_s"] * 1000)
        per_turn.append(
            {
                "text": u["text"],
                "transcript": row["transcript"],
                "final_after_true_end_ms": round(row["t_final_ms"] - end),
                "first_after_true_start_ms": round(row["t_first_ms"] - start),
                "translation_after_true_end_ms": round(row["t_first_translation_ms"] - end),
                "translation": row["translation"],
            }
        )
    col = pd.DataFrame(per_turn)
    return {
        "clip": LATENCY_CLIP,
        "per_turn": per_turn,
        "final_after_true_end_ms_p50": float(col["final_after_true_end_ms"].median()),
        "final_after_true_end_ms_max": float(col["final_after_true_end_ms"].max()),
        "first_after_true_start_ms_p50": float(col["first_after_true_start_ms"].median()),
        "translation_after_true_end_ms_p50": float(col["translation_after_true_end_ms"].median()),
    }


def run() -> dict:
    from rtlab.engines import default_engines

    engines = default_engines()
    acc = accuracy(engines)
    lat = latency(engines)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"accuracy": acc, "latency": lat}, indent=1, ensure_ascii=False) + "\n")
    rows = [
        {"metric": f"source WER {name}", "value": r["wer"], "unit": "", "target": "", "ok": None}
        for name, r in acc["per_clip"].items()
    ]
    rows.append(
        {
            "metric": "source WER pooled (all clips)",
            "value": acc["pooled_wer"],
            "unit": "",
            "target": "<= 0.35",
            "ok": acc["pooled_wer"] <= 0.35,
        }
    )
    rows.append(
        {
            "metric": "clips with translated text and audio",
            "value": sum(
                bool(r["translation"]) and r["translated_audio_s"] > 0 for r in acc["per_clip"].values()
            ),
            "unit": f"of {len(acc['per_clip'])}",
            "target": "all",
            "ok": all(r["translation"] and r["translated_audio_s"] > 0 for r in acc["per_clip"].values()),
        }
    )
    for key in (
        "final_after_true_end_ms_p50",
        "final_after_true_end_ms_max",
        "first_after_true_start_ms_p50",
        "translation_after_true_end_ms_p50",
    ):
        rows.append(
            {
                "metric": f"{LATENCY_CLIP} speed 1: {key}",
                "value": lat[key],
                "unit": "ms",
                "target": "",
                "ok": None,
            }
        )
    return {"rows": rows}
