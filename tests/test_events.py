"""EventLog: recording, audio stored once, crash safety, torn logs, frames and turns on hand-built sequences."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest

from rtlab.analysis import turns as turns_of
from rtlab.errors import EventLogError
from rtlab.log import EventArray, EventLog, EventLogWarning

S, T, L, OOB = "in-session", "sidecar:transcription", "sidecar:local", "sidecar:oob"
CHUNK = 2400  # 100 ms at 24 kHz


def pcm(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-20000, 20000, n).astype(np.int16)


def b64(samples: np.ndarray) -> str:
    return base64.b64encode(samples.astype("<i2").tobytes()).decode()


def append(log, source, k, *, t, audio=None):
    """Append chunk k (100 ms) of the shared clock from ``source`` at wall time t."""
    audio = pcm(CHUNK, k) if audio is None else audio
    return log.record("client", source, {"type": "input_audio_buffer.append", "audio": b64(audio)},
                      audio_offset=k * CHUNK, audio_ms=(k + 1) * 100.0, t=t)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "run" / "events.jsonl"


# ----------------------------------------------------------------------------------------------------------------
# Round trip and storage
# ----------------------------------------------------------------------------------------------------------------
class TestRoundTrip:
    def test_records_and_meta_survive_load(self, path):
        with EventLog.create(path, meta={"audio": "clip.wav", "sources": [S]}) as log:
            log.record("client", S, {"type": "session.update", "session": {"type": "realtime"}}, t=0.0)
            log.record("server", S, {"type": "session.updated", "event_id": "e1", "session": {"model": "m"}},
                       t=0.25, audio_ms=0.0)
            log.record("server", S, {"type": "response.audio_transcript.delta", "response_id": "r1",
                                     "item_id": "i9", "delta": "hé"}, t=0.5, audio_ms=40.0)
        loaded = EventLog.load(path)
        assert len(loaded) == 3 and loaded.meta == {"audio": "clip.wav", "sources": [S]}
        assert loaded.torn == []
        for a, b in zip(log.records, loaded.records, strict=True):
            assert (a.seq, a.t, a.audio_ms, a.direction, a.source, a.type, a.item_id, a.response_id) == (
                b.seq, b.t, b.audio_ms, b.direction, b.source, b.type, b.item_id, b.response_id)
            assert dict(a.event) == dict(b.event)
        assert loaded.records[-1].event["delta"] == "hé"
        assert loaded.records[1].event_id == "e1"
        assert loaded.sources == [S]

    def test_frame_columns_and_canonical_names(self, path):
        with EventLog.create(path) as log:
            log.record("server", S, {"type": "response.audio_transcript.delta", "response_id": "r1",
                                     "item_id": "i9", "delta": "x"}, t=0.5, audio_ms=40.0)
            log.record("server", T, {"type": "transcription_session.updated", "session": {}}, t=0.75)
        for lg in (log, EventLog.load(path)):
            df = lg.to_frame()
            assert list(df.columns) == ["seq", "t_ms", "audio_ms", "direction", "source", "type", "raw_type",
                                        "item_id", "response_id", "event_id", "event"]
            assert list(df["type"].astype(str)) == ["response.output_audio_transcript.delta", "session.updated"]
            assert list(df["raw_type"].astype(str)) == ["response.audio_transcript.delta",
                                                        "transcription_session.updated"]
            assert df["t_ms"].tolist() == [500.0, 750.0]
            assert df["item_id"].iloc[0] == "i9" and df["response_id"].iloc[0] == "r1"
            assert df["event"].iloc[0]["delta"] == "x"

    def test_event_column_is_lazy_but_behaves_like_dicts(self, path):
        with EventLog.create(path) as log:
            for i in range(5):
                log.record("server", S if i % 2 else T, {"type": "x.y", "n": i}, t=i)
        df = EventLog.load(path).to_frame()
        assert isinstance(df["event"].array, EventArray)
        sub = df[df["source"] == S]
        assert [e["n"] for e in sub["event"]] == [1, 3]
        assert sub["event"].tolist() == [{"type": "x.y", "n": 1}, {"type": "x.y", "n": 3}]
        both = pd.concat([sub, sub])
        assert [e["n"] for e in both["event"]] == [1, 3, 1, 3]
        assert df.sort_values("seq", ascending=False)["event"].iloc[0]["n"] == 4
        assert "x.y" in repr(df.head(2))
        assert EventLog.load(path).to_frame(events="dict")["event"].iloc[2] == {"type": "x.y", "n": 2}
        assert json.loads(EventLog.load(path).to_frame(events="json")["event"].iloc[3])["n"] == 3
        assert "event" not in EventLog.load(path).to_frame(events="none").columns

    def test_parquet_export(self, path, tmp_path):
        with EventLog.create(path) as log:
            log.record("server", S, {"type": "input_audio_buffer.speech_started", "item_id": "i1",
                                     "audio_start_ms": 100}, t=1.0, audio_ms=400.0)
        out = EventLog.load(path).to_parquet(tmp_path / "events.parquet")
        df = pd.read_parquet(out)
        assert df["type"].tolist() == ["input_audio_buffer.speech_started"]
        assert json.loads(df["event"].iloc[0])["audio_start_ms"] == 100

    def test_pydantic_events_are_dumped(self, path):
        from openai.types.realtime import InputAudioBufferSpeechStartedEvent

        ev = InputAudioBufferSpeechStartedEvent(type="input_audio_buffer.speech_started", event_id="e",
                                                item_id="i", audio_start_ms=5)
        with EventLog.create(path) as log:
            rec = log.record("server", S, ev, t=0)
        assert rec.item_id == "i" and EventLog.load(path).records[0].event["audio_start_ms"] == 5


class TestAudioStoredOnce:
    def test_two_sources_same_chunk_written_once_and_no_base64_in_log(self, path):
        chunks = [pcm(CHUNK, k) for k in range(4)]
        with EventLog.create(path) as log:
            for k, c in enumerate(chunks):
                append(log, S, k, t=0.1 * k, audio=c)
                append(log, T, k, t=0.1 * k + 0.001, audio=c)
            # mid-run the input track is the raw .pcm, readable already
            live, rate = log.input_audio()
            assert rate == 24000 and np.array_equal(live, np.concatenate(chunks))
        text = path.read_text()
        assert all(b64(c)[:64] not in text for c in chunks)
        assert path.stat().st_size < 8 * 400  # 8 small records, not 8 x 6.4 kB of base64
        assert (path.parent / "events.input.wav").exists() and not (path.parent / "events.input.pcm").exists()
        rec = EventLog.load(path).records[2]
        assert rec.event["audio"] == {"$ref": "input", "offset": CHUNK, "samples": CHUNK}
        samples, rate = EventLog.load(path).input_audio()
        assert rate == 24000 and np.array_equal(samples, np.concatenate(chunks))

    def test_overlapping_chunks_and_gaps(self, path):
        a = pcm(3 * CHUNK, 1)
        with EventLog.create(path) as log:
            log.record("client", S, {"type": "input_audio_buffer.append", "audio": b64(a[:2 * CHUNK])},
                       audio_offset=0)
            # another source sends the second and third chunk: only the third is new
            log.record("client", T, {"type": "input_audio_buffer.append", "audio": b64(a[CHUNK:])},
                       audio_offset=CHUNK)
            # default offset: right after this source's previous append
            log.record("client", S, {"type": "input_audio_buffer.append", "audio": b64(a[2 * CHUNK:])})
            tail = pcm(100, 9)
            log.record("client", S, {"type": "input_audio_buffer.append", "audio": b64(tail)},
                       audio_offset=5 * CHUNK)
        samples, _ = EventLog.load(path).input_audio()
        assert np.array_equal(samples[:3 * CHUNK], a)
        assert not samples[3 * CHUNK:5 * CHUNK].any()  # a gap nobody sent stays silent
        assert np.array_equal(samples[5 * CHUNK:], tail)
        rec = EventLog.load(path).records[2]
        assert rec.event["audio"]["offset"] == 2 * CHUNK and rec.audio_ms == 300.0

    def test_output_audio_placed_on_audio_clock_per_source(self, path):
        d1, d2, d3 = pcm(CHUNK, 1), pcm(CHUNK, 2), pcm(CHUNK, 3)
        with EventLog.create(path) as log:
            log.record("server", S, {"type": "response.output_audio.delta", "response_id": "r", "delta": b64(d1)},
                       audio_ms=1000.0)
            # arrives in a burst, at nearly the same audio time: played right after the first
            log.record("server", S, {"type": "response.output_audio.delta", "response_id": "r", "delta": b64(d2)},
                       audio_ms=1010.0)
            log.record("server", "other", {"type": "response.audio.delta", "response_id": "q", "delta": b64(d3)},
                       audio_ms=500.0)
        lg = EventLog.load(path)
        out, rate = lg.output_audio(S)
        assert rate == 24000 and len(out) == 24000 + 2 * CHUNK
        assert not out[:24000].any() and np.array_equal(out[24000:], np.concatenate([d1, d2]))
        assert lg.records[1].event["delta"] == {"$ref": "output", "offset": 24000 + CHUNK, "samples": CHUNK}
        other, _ = lg.output_audio("other")
        assert np.array_equal(other[12000:], d3)
        assert lg.output_sources() == ["in-session", "other"]
        with pytest.raises(EventLogError, match="no source 'nope'"):
            lg.output_audio("nope")

    def test_g711_input_is_stored_decoded_at_8khz(self, path):
        audio = pytest.importorskip("rtlab.audio")
        x = pcm(800, 4)
        payload = audio.encode_g711(x, "ulaw")
        with EventLog.create(path) as log:
            log.set_input_format("g711_ulaw")
            log.record("client", S, {"type": "input_audio_buffer.append",
                                     "audio": base64.b64encode(payload).decode()}, audio_offset=0)
            with pytest.raises(EventLogError, match="before the first append"):
                log.set_input_format("pcm16")
        samples, rate = EventLog.load(path).input_audio()
        assert rate == 8000 and np.array_equal(samples, audio.decode_g711(payload, "ulaw"))
        assert EventLog.load(path).records[0].audio_ms == 100.0

    def test_undecodable_audio_is_kept_verbatim(self, path):
        with EventLog.create(path) as log:
            rec = log.record("client", S, {"type": "input_audio_buffer.append", "audio": "***not base64***"})
        assert rec.event["audio"] == "***not base64***"
        assert EventLog.load(path).records[0].event["audio"] == "***not base64***"


# ----------------------------------------------------------------------------------------------------------------
# Damaged logs
# ----------------------------------------------------------------------------------------------------------------
def _write_simple(path, n=6):
    with EventLog.create(path) as log:
        for i in range(n):
            log.record("server", S, {"type": "conversation.item.input_audio_transcription.delta",
                                     "item_id": "i1", "delta": f"w{i} "}, t=0.1 * i)


class TestDamagedLogs:
    def test_torn_last_line_is_reported_and_the_rest_kept(self, path):
        _write_simple(path)
        with open(path, "ab") as fh:
            fh.write(b'{"seq":6,"t":0.7,"audio_ms":null,"dir":"server","src":"in-se')
        with pytest.warns(EventLogWarning, match="line 8: torn last line"):
            lg = EventLog.load(path)
        assert len(lg) == 6 and [r.event["delta"] for r in lg.records][-1] == "w5 "
        assert lg.torn[0]["line"] == 8 and "torn" in lg.torn[0]["reason"]
        assert turns_of(lg)["n_deltas"].tolist() == [6]

    def test_corrupt_middle_line_is_reported_and_later_records_stay_aligned(self, path):
        _write_simple(path)
        lines = path.read_bytes().splitlines(keepends=True)
        lines.insert(3, b'{"seq": 99, "t": \x00garbage\n')
        lines.insert(5, b'{"just": "json"}\n')
        path.write_bytes(b"".join(lines))
        with pytest.warns(EventLogWarning) as rec:
            lg = EventLog.load(path)
        assert "skipped 2" in str(rec[0].message)
        assert [d["line"] for d in lg.torn] == [4, 6]
        assert "invalid JSON" in lg.torn[0]["reason"] and "not a record" in lg.torn[1]["reason"]
        assert [r.event["delta"] for r in lg.records] == [f"w{i} " for i in range(6)]
        assert lg.to_frame()["event"].iloc[4]["delta"] == "w4 "

    def test_complete_last_line_without_newline_is_kept(self, path):
        _write_simple(path, 2)
        path.write_bytes(path.read_bytes().rstrip(b"\n"))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            lg = EventLog.load(path)
        assert len(lg) == 2 and lg.records[1].event["delta"] == "w1 "

    def test_blank_lines_are_ignored(self, path):
        _write_simple(path, 3)
        lines = path.read_bytes().splitlines(keepends=True)
        path.write_bytes(b"".join([lines[0], b"\n", *lines[1:], b"\n"]))
        lg = EventLog.load(path)
        assert len(lg) == 3 and lg.torn == [] and lg.records[2].event["delta"] == "w2 "

    def test_crash_without_close_loses_nothing_recorded(self, path):
        script = textwrap.dedent(f"""
            import base64, os
            import numpy as np
            from rtlab.log import EventLog
            log = EventLog.create({str(path)!r}, meta={{"run": "crash"}})
            for k in range(5):
                x = np.full(2400, k + 1, dtype=np.int16)
                log.record("client", "in-session", {{"type": "input_audio_buffer.append",
                           "audio": base64.b64encode(x.tobytes()).decode()}}, audio_offset=k * 2400)
                log.record("server", "in-session", {{"type": "response.output_audio.delta", "response_id": "r",
                           "delta": base64.b64encode(x.tobytes()).decode()}}, audio_ms=100.0 * k)
            log.record("server", "in-session", {{"type": "conversation.item.input_audio_transcription.completed",
                       "item_id": "i1", "transcript": "last words"}})
            os._exit(3)  # no close(), no flush at exit, no atexit handlers
        """)
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 3, proc.stderr
        assert (path.parent / "events.input.pcm").exists() and not (path.parent / "events.input.wav").exists()
        lg = EventLog.load(path)
        assert len(lg) == 11 and lg.meta == {"run": "crash"} and lg.torn == []
        assert lg.records[-1].event["transcript"] == "last words"
        samples, rate = lg.input_audio()
        assert rate == 24000 and np.array_equal(samples, np.repeat(np.arange(1, 6, dtype=np.int16), 2400))
        out, _ = lg.output_audio(S)
        assert len(out) == 5 * 2400 and out[-1] == 5

    def test_errors_name_the_problem(self, path, tmp_path):
        with pytest.raises(EventLogError, match="no such event log"):
            EventLog.load(tmp_path / "missing.jsonl")
        (tmp_path / "empty.jsonl").write_bytes(b"")
        with pytest.raises(EventLogError, match="empty file"):
            EventLog.load(tmp_path / "empty.jsonl")
        log = EventLog.create(path)
        with pytest.raises(EventLogError, match="already exists"):
            EventLog.create(path)
        with pytest.raises(EventLogError, match="direction must be"):
            log.record("up", S, {"type": "x"})
        with pytest.raises(EventLogError, match="string 'type'"):
            log.record("client", S, {"no": "type"})
        with pytest.raises(EventLogError, match="non-empty label"):
            log.record("client", "", {"type": "x"})
        with pytest.raises(EventLogError, match="unknown input format 'mp3'"):
            log.set_input_format("mp3")
        log.close()
        with pytest.raises(EventLogError, match="closed"):
            log.record("client", S, {"type": "x"})
        with pytest.raises(EventLogError, match="read-only|closed"):
            EventLog.load(path).record("client", S, {"type": "x"})
        with pytest.raises(EventLogError, match="api_key looks like a credential"):
            EventLog.create(tmp_path / "k.jsonl", meta={"target": {"api_key": "sk-123"}})
        with pytest.raises(EventLogError, match="JSON-serializable"):
            EventLog.create(tmp_path / "m.jsonl", meta={"x": object()})
        EventLog.create(path, overwrite=True).close()
        assert len(EventLog.load(path)) == 0


class TestSubscribe:
    def test_callbacks_see_every_record_and_errors_do_not_stop_recording(self, path):
        seen = []
        with EventLog.create(path) as log:
            unsubscribe = log.subscribe(seen.append)

            def broken(rec):
                raise RuntimeError("widget bug")

            log.subscribe(broken)
            with pytest.warns(RuntimeWarning, match="widget bug"):
                log.record("server", S, {"type": "a"})
            unsubscribe()
            with pytest.warns(RuntimeWarning):
                log.record("server", S, {"type": "b"})
        assert [r.type for r in seen] == ["a"]
        assert len(log.callback_errors) == 2 and len(EventLog.load(path)) == 2


# ----------------------------------------------------------------------------------------------------------------
# turns() on hand-built sequences with known times
# ----------------------------------------------------------------------------------------------------------------
def build_session(path) -> EventLog:
    """Two seconds of audio (20 chunks of 100 ms, chunk k sent at t = 0.1 k + 0.05) on four sources.

    in-session (server VAD, streaming): item A speech 300..1200 ms, speech_stopped at t=1.75,
    deltas at t=0.9 and 1.3, completed at t=2.05 — after response.done (t=1.95) of the voice response.
    sidecar:transcription (client commits, no VAD): commit after chunk 13 (audio 1400 ms), completed t=1.8.
    sidecar:oob: a text response for item A, deltas t=1.85/1.9, done t=2.0.
    sidecar:local: the local engine's own events (one finished segment, one open); item C of the transcription
    session fails.
    """
    log = EventLog.create(path, meta={"audio": "x.wav"})
    ev = []  # (t, direction, source, event, kwargs)
    for k in range(20):
        ev.append((0.1 * k + 0.05, "client", S, None, {"k": k}))
        ev.append((0.1 * k + 0.051, "client", T, None, {"k": k}))
    ev += [
        (0.0, "server", S, {"type": "session.updated", "session": {
            "type": "realtime", "model": "gpt-realtime",
            "audio": {"input": {"transcription": {"model": "gpt-realtime-whisper"}}}}}, {}),
        (0.0, "server", T, {"type": "session.updated", "session": {
            "type": "transcription", "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}}}}, {}),
        (0.45, "server", S, {"type": "input_audio_buffer.speech_started", "item_id": "A", "audio_start_ms": 300}, {}),
        (0.9, "server", S, {"type": "conversation.item.input_audio_transcription.delta", "item_id": "A",
                            "delta": "Hello "}, {}),
        (1.3, "server", S, {"type": "conversation.item.input_audio_transcription.delta", "item_id": "A",
                            "delta": "world"}, {}),
        (1.75, "server", S, {"type": "input_audio_buffer.speech_stopped", "item_id": "A", "audio_end_ms": 1200}, {}),
        (1.76, "server", S, {"type": "input_audio_buffer.committed", "item_id": "A"}, {}),
        (1.77, "server", S, {"type": "response.created", "response": {"id": "R1", "status": "in_progress"}}, {}),
        (1.78, "client", OOB, {"type": "response.create", "response": {
            "conversation": "none", "output_modalities": ["text"], "metadata": {"rtlab_item_id": "A"}}}, {}),
        (1.8, "server", S, {"type": "response.created", "response": {
            "id": "R2", "metadata": {"rtlab_item_id": "A"}}}, {}),
        (1.85, "server", OOB, {"type": "response.output_text.delta", "response_id": "R2", "item_id": "X",
                             "delta": "Hello"}, {}),
        (1.9, "server", OOB, {"type": "response.output_text.delta", "response_id": "R2", "item_id": "X",
                            "delta": " world."}, {}),
        (1.95, "server", S, {"type": "response.done", "response": {"id": "R1", "status": "completed"}}, {}),
        (2.0, "server", OOB, {"type": "response.output_text.done", "response_id": "R2", "item_id": "X",
                            "text": "Hello world."}, {}),
        (2.01, "server", OOB, {"type": "response.done", "response": {
            "id": "R2", "status": "completed", "metadata": {"rtlab_item_id": "A"},
            "usage": {"input_tokens": 100, "output_tokens": 4,
                      "input_token_details": {"audio_tokens": 90, "text_tokens": 10},
                      "output_token_details": {"text_tokens": 4, "audio_tokens": 0}}}}, {}),
        (2.05, "server", S, {"type": "conversation.item.input_audio_transcription.completed", "item_id": "A",
                             "transcript": "hello world", "usage": {"type": "duration", "seconds": 1.2}}, {}),
        # client-commit transcription session
        (1.4505, "client", T, {"type": "input_audio_buffer.commit"}, {}),
        (1.5, "server", T, {"type": "input_audio_buffer.committed", "item_id": "B"}, {}),
        (1.6, "server", T, {"type": "conversation.item.input_audio_transcription.delta", "item_id": "B",
                            "delta": "hello"}, {}),
        (1.8, "server", T, {"type": "conversation.item.input_audio_transcription.completed", "item_id": "B",
                            "transcript": "Hello, world!", "usage": {
                                "type": "tokens", "input_tokens": 200, "output_tokens": 10, "total_tokens": 210,
                                "input_token_details": {"audio_tokens": 200, "text_tokens": 0}}}, {}),
        # the local engine's own events: one finished segment, one still open
        (0.4, "server", L, {"type": "local.speech_started", "item_id": "L1", "audio_start_ms": 320}, {}),
        (1.0, "server", L, {"type": "local.partial", "item_id": "L1", "delta": "hello", "text": "hello"}, {}),
        (1.3, "server", L, {"type": "local.speech_stopped", "item_id": "L1", "speech_end_ms": 1180}, {}),
        (1.4, "server", L, {"type": "local.final", "item_id": "L1", "start_ms": 320, "end_ms": 1180,
                            "transcript": "hello word", "cause": "vad"}, {}),
        (1.6, "server", L, {"type": "local.speech_started", "item_id": "L2", "audio_start_ms": 1500}, {}),
        (1.9, "server", L, {"type": "local.speech_stopped", "item_id": "L2", "speech_end_ms": 1800}, {}),
        # a failed transcription on the transcription session
        (1.96, "server", T, {"type": "conversation.item.input_audio_transcription.failed", "item_id": "C",
                             "error": {"type": "server_error", "code": "engine", "message": "boom"}}, {}),
    ]
    ev.sort(key=lambda e: e[0])
    for t, d, src, event, kw in ev:
        if event is None:
            append(log, src, kw["k"], t=t)
        else:
            log.record(d, src, event, t=t, audio_ms=min(2000.0, 100.0 * int(t * 10)))
    return log


REFS = [{"text": "Hello world", "start_s": 0.35, "end_s": 1.15}]


class TestTurns:
    def test_known_latencies_deltas_and_transcripts(self, path):
        with build_session(path):
            pass
        tu = turns_of(EventLog.load(path), references=REFS).set_index(["source", "item_id"])
        a = tu.loc[(S, "A")]
        assert a.audio_start_ms == 300 and a.audio_end_ms == 1200
        assert a.transcript == "hello world"  # completed matched by item_id, though after response.done
        assert a.n_deltas == 2 and a.status == "completed" and a.end_anchor == "speech_stopped"
        # true end 1150 ms is in chunk 11 (1100..1200 ms), sent at t = 1.15; true start 350 ms in chunk 3 (t = 0.35)
        assert a.first_text_after_eos_ms == pytest.approx((0.9 - 1.15) * 1000)  # negative: streamed during speech
        assert a.first_text_after_start_ms == pytest.approx((0.9 - 0.35) * 1000)
        assert a.final_after_stop_ms == pytest.approx((2.05 - 1.75) * 1000)
        assert a.final_after_eos_ms == pytest.approx((2.05 - 1.15) * 1000)
        assert a.reference == "Hello world" and a.ref_end_ms == 1150
        assert a.model == "gpt-realtime-whisper" and a.cost_usd == pytest.approx(1.2 / 60 * 0.017)
        assert a.usage == {"type": "duration", "seconds": 1.2}

    def test_client_commit_session_uses_the_audio_clock(self, path):
        with build_session(path):
            pass
        b = turns_of(EventLog.load(path), references=REFS).set_index(["source", "item_id"]).loc[(T, "B")]
        # committed after chunk 13 was sent (audio 1400 ms); no earlier commit -> starts at 0
        assert b.audio_start_ms == 0 and b.audio_end_ms == 1400
        assert b.end_anchor == "audio_clock"
        # audio position 1400 ms was sent by this source with chunk 13 at t = 1.351
        assert b.final_after_stop_ms == pytest.approx((1.8 - 1.351) * 1000)
        assert b.first_text_after_eos_ms == pytest.approx((1.6 - 1.151) * 1000)
        assert b.final_after_eos_ms == pytest.approx((1.8 - 1.151) * 1000)
        assert b.model == "gpt-4o-transcribe" and b.cost_usd == pytest.approx(200 * 6.0 / 1e6 + 10 * 10.0 / 1e6)
        assert b.reference == "Hello world"

    def test_out_of_band_row_keyed_by_the_item_it_transcribes(self, path):
        with build_session(path):
            pass
        tu = turns_of(EventLog.load(path), references=REFS)
        oob = tu[tu["source"] == OOB]
        assert len(oob) == 1 and len(tu[tu["response_id"] == "R1"]) == 0  # the voice answer is no turn
        o = oob.iloc[0]
        assert (o.item_id, o.kind, o.response_id, o.transcript) == ("A", "oob", "R2", "Hello world.")
        assert o.audio_start_ms == 300 and o.audio_end_ms == 1200 and o.n_deltas == 2
        assert o.end_anchor == "audio_clock"  # position 1200 ms sent with chunk 11 at t = 1.15 (in-session)
        assert o.final_after_stop_ms == pytest.approx((2.0 - 1.15) * 1000)
        assert o.first_text_after_eos_ms == pytest.approx((1.85 - 1.15) * 1000)
        assert o.model == "gpt-realtime"  # the voice session's model: out-of-band text is a voice-model response
        assert o.cost_usd == pytest.approx((90 * 32 + 10 * 4 + 4 * 16) / 1e6)
        assert o.cost_basis == "reported"  # usage sent by the server; this log's meta names no emulated target

    def test_failed_local_and_row_order(self, path):
        with build_session(path):
            pass
        tu = turns_of(EventLog.load(path), references=REFS)
        assert list(tu["source"]) == [S, T, T, L, L, OOB]
        l1, l2 = tu[tu["source"] == L].itertuples()
        assert (l1.family, l1.kind, l1.model, l1.n_deltas) == ("local", "local", "local", 1)
        assert l1.cost_usd == 0.0 and l1.cost_basis == "local" and l1.final_after_stop_ms == pytest.approx(100.0)
        assert l1.reference == "Hello world"
        assert l2.status == "pending" and pd.isna(l2.transcript)
        assert pd.isna(l2.reference) and np.isnan(l2.final_after_eos_ms)  # no reference overlaps 1500..1800 ms
        c = tu.set_index(["source", "item_id"]).loc[(T, "C")]
        assert c.status == "failed" and pd.isna(c.transcript) and "boom" in c.error

    def test_live_and_loaded_logs_agree(self, path):
        with build_session(path) as log:
            live = turns_of(log, references=REFS)
        loaded = turns_of(EventLog.load(path), references=REFS)
        pd.testing.assert_frame_equal(live, loaded)
        assert log.sources == EventLog.load(path).sources == [S, T, L, OOB]

    def test_pending_item_text_from_deltas(self, path):
        with EventLog.create(path) as log:
            for i, w in enumerate(["one ", "two"]):
                log.record("server", S, {"type": "conversation.item.input_audio_transcription.delta",
                                         "item_id": "P", "delta": w}, t=i)
        row = turns_of(EventLog.load(path)).iloc[0]
        assert (row.status, row.transcript, row.n_deltas) == ("pending", "one two", 2)
        assert np.isnan(row.final_after_stop_ms)

    def test_bad_references_are_named(self, path):
        with build_session(path) as log:
            with pytest.raises(EventLogError, match=r"references\[0\].*start_s"):
                turns_of(log, references=[{"text": "x"}])

    def test_empty_log(self, path):
        EventLog.create(path).close()
        tu = turns_of(EventLog.load(path))
        assert len(tu) == 0 and "final_after_eos_ms" in tu.columns

    def test_azure_deployment_priced_through_meta_models(self, path):
        with EventLog.create(path, meta={"models": {"my-dep": "gpt-4o-transcribe"}}) as log:
            log.record("server", T, {"type": "session.updated", "session": {
                "type": "transcription", "audio": {"input": {"transcription": {"model": "my-dep"}}}}}, t=0)
            log.record("server", T, {"type": "conversation.item.input_audio_transcription.completed",
                                     "item_id": "i", "transcript": "x",
                                     "usage": {"type": "tokens", "input_tokens": 1000, "output_tokens": 0}}, t=1)
        row = turns_of(EventLog.load(path)).iloc[0]
        assert row.model == "gpt-4o-transcribe" and row.cost_usd == pytest.approx(0.006)

    def test_reference_goes_to_the_turn_overlapping_it_most(self, path):
        with EventLog.create(path) as log:
            for i, (a, b) in enumerate([(0, 900), (1000, 3000)]):
                log.record("server", S, {"type": "input_audio_buffer.speech_started", "item_id": f"i{i}",
                                         "audio_start_ms": a}, t=i)
                log.record("server", S, {"type": "input_audio_buffer.speech_stopped", "item_id": f"i{i}",
                                         "audio_end_ms": b}, t=i + 0.5)
        refs = [{"text": "first", "start_s": 0.1, "end_s": 0.8}, {"text": "second", "start_s": 0.85, "end_s": 2.0},
                {"text": "third", "start_s": 2.1, "end_s": 2.9}]
        tu = turns_of(EventLog.load(path), references=refs)
        assert tu["reference"].tolist() == ["first", "second third"]
        assert tu["ref_end_ms"].tolist() == [800.0, 2900.0]
