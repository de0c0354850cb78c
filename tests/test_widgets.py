"""Python side of the widgets: payload, traits, binary transport, selection, linking, live updates, static views.

A recording comm stands in for the front end (as ipywidgets' own tests do with DummyComm): it keeps the
comm-open state and every message with its binary buffers, so the tests can check what would reach a browser.
Browser behaviour (drawing, clicking, playback) is in test_widgets_browser.py.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from pathlib import Path
from typing import Any

import comm
import numpy as np
import pandas as pd
import pytest
import traitlets

sys.path.insert(0, str(Path(__file__).resolve().parent / "browser_fixtures"))

from synthetic import MemoryEventLog, synthetic_session  # noqa: E402

from rtlab.widgets import EventInspector, LiveView, Timeline, inspect, link  # noqa: E402
from rtlab.widgets import payload as P  # noqa: E402


class RecordingComm:
    """A comm that records what the kernel would send to the front end (state, messages, buffers)."""

    kernel = "recording"

    def __init__(self, **kwargs: Any) -> None:
        self.comm_id = kwargs.get("comm_id") or f"comm-{id(self)}"
        self.opened = {"data": kwargs.get("data"), "buffers": list(kwargs.get("buffers") or [])}
        self.messages: list[dict[str, Any]] = []
        self._on_msg = None

    def open(self, *args: Any, **kwargs: Any) -> None:
        pass

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self.messages.append({"data": data, "buffers": list(buffers or [])})

    def on_msg(self, callback: Any) -> None:
        self._on_msg = callback

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.fixture(autouse=True)
def recording_comm(monkeypatch: pytest.MonkeyPatch) -> list[RecordingComm]:
    made: list[RecordingComm] = []

    def create(**kwargs: Any) -> RecordingComm:
        c = RecordingComm(**kwargs)
        made.append(c)
        return c

    monkeypatch.setattr(comm, "create_comm", create)
    return made


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("widgets")


@pytest.fixture(scope="module")
def log(log_dir: Path) -> Any:
    """A recorded 24 s session (the real rtlab.log.EventLog)."""
    return synthetic_session(seconds=24.0, turns=4, seed=11, path=log_dir / "events.jsonl")


@pytest.fixture(scope="module")
def frame(log: Any) -> pd.DataFrame:
    return log.to_frame()


def spans_of(log: Any, frame: pd.DataFrame | None = None, **kw: Any) -> P.Spans:
    """The timeline's spans of a log: its events plus its turns table."""
    from rtlab.analysis import turns

    table = log.turns() if isinstance(log, MemoryEventLog) else turns(log)
    return P.build_spans(log.to_frame() if frame is None else frame, table, **kw)


def front_end_update(widget: Any, **state: Any) -> None:
    """Deliver a state update as the browser would send it."""
    widget._handle_msg({"content": {"data": {"method": "update", "state": state, "buffer_paths": []}},
                        "buffers": []})


def front_end_custom(widget: Any, content: dict) -> None:
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


# ------------------------------------------------------------------------------------------------------------
# payload
# ------------------------------------------------------------------------------------------------------------
class TestPeaks:
    def test_pyramid_levels_shrink_and_bound_the_signal(self) -> None:
        sr = 24000
        x = np.zeros(sr * 10, dtype=np.int16)
        x[sr * 2: sr * 3] = 16000  # a loud second at 2..3 s
        x[sr * 2 + 1] = -16000
        levels, peak = P.peaks_pyramid(x, sr)
        assert peak == pytest.approx(16000 / 32768)
        assert [lv.count for lv in levels] == sorted((lv.count for lv in levels), reverse=True)
        assert levels[-1].count <= 512
        fine = np.frombuffer(levels[0].data, dtype=np.int8).reshape(-1, 2)
        t = np.arange(levels[0].count) * levels[0].bin_ms
        loud = (t >= 2000) & (t < 3000 - levels[0].bin_ms)
        assert (fine[loud, 1] == 127).all() and (fine[~loud & (t > 3100), 1] == 0).all()
        assert fine[:, 0].min() == -127  # the negative spike survives in the min column

    def test_long_audio_is_capped_in_bins(self) -> None:
        levels, _ = P.peaks_pyramid(np.zeros(16000 * 3600, dtype=np.int16), 16000)
        assert levels[0].count <= 200_000 + 1

    @pytest.mark.parametrize("bad,match", [(np.zeros((2, 10)), "mono"), (np.zeros(10), "sample_rate")])
    def test_bad_input_names_the_problem(self, bad: np.ndarray, match: str) -> None:
        with pytest.raises(ValueError, match=match):
            P.peaks_pyramid(bad, 0 if match == "sample_rate" else 16000)


class TestSpans:
    def test_counts_match_the_recorded_session(self, log: Any, frame: pd.DataFrame) -> None:
        assert spans_of(log, frame).counts() == log._synthetic_expected

    def test_vad_and_item_spans_cover_the_speech_windows(self, log: Any, frame: pd.DataFrame) -> None:
        spans = spans_of(log, frame)
        for turn in log._synthetic_plan:
            for kind in ("vad", "item"):
                row = spans.row(spans.find(source="in-session", kind=kind, item_id=turn.item_id))
                assert (row["start_ms"], row["end_ms"]) == (turn.start_ms, turn.end_ms)

    def test_deltas_are_ticks_at_arrival_and_play_their_item(self, log: Any, frame: pd.DataFrame) -> None:
        spans = spans_of(log, frame)
        table = frame.set_index("seq")
        turn = log._synthetic_plan[1]
        deltas = np.flatnonzero((spans.tier == P.TIERS.index("delta")) & (spans.item == spans.items.index(turn.item_id)))
        assert deltas.size > 1
        for i in deltas:
            assert spans.start_ms[i] == spans.end_ms[i] == round(table.loc[int(spans.seq[i]), "audio_ms"])
            assert (spans.play_start_ms[i], spans.play_end_ms[i]) == (turn.start_ms, turn.end_ms)

    def test_responses_span_created_to_done(self, log: Any, frame: pd.DataFrame) -> None:
        spans = spans_of(log, frame)
        created = frame[frame["type"] == "response.created"]
        done = frame[frame["type"] == "response.done"]
        rows = np.flatnonzero(spans.tier == P.TIERS.index("response"))
        assert sorted(spans.start_ms[rows]) == sorted(round(v) for v in created["audio_ms"])
        assert sorted(spans.end_ms[rows]) == sorted(round(v) for v in done["audio_ms"])

    def test_open_speech_and_responses_end_at_the_log_end(self) -> None:
        log = MemoryEventLog()
        log.record("server", "s", {"type": "input_audio_buffer.speech_started", "audio_start_ms": 100,
                                    "item_id": "i1"}, audio_ms=300)
        log.record("server", "s", {"type": "response.created", "response": {"id": "r1"}}, audio_ms=400)
        log.record("server", "s", {"type": "error", "error": {"message": "boom"}}, audio_ms=900)
        spans = spans_of(log, end_ms=5000)
        assert spans.row(spans.find(kind="vad"))["end_ms"] == 5000
        assert spans.row(spans.find(kind="response"))["end_ms"] == 5000
        err = spans.find(kind="error")
        assert spans.labels[spans.label[err]] == "boom"

    def test_only_the_events_it_reads_are_decoded(self, log: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        """At 50,000 events decoding every JSON would dominate: only VAD, finals and errors are opened."""
        from rtlab.analysis import turns

        frame = log.to_frame()
        table = turns(log)
        opened: list[int] = []
        real = log.event_at
        monkeypatch.setattr(log, "event_at", lambda row: opened.append(row) or real(row))
        P.build_spans(frame, table)
        needed = frame["type"].isin(["error", "conversation.item.input_audio_transcription.failed"])
        assert len(opened) <= int(needed.sum()) < len(frame) / 4  # windows come from the turns table

    def test_pack_layout_round_trips(self, log: Any, frame: pd.DataFrame) -> None:
        spans = spans_of(log, frame)
        blob, meta = spans.pack()
        n = meta["n"]
        assert len(blob) == n * (4 * len(meta["int_columns"]) + len(meta["byte_columns"]))
        seq = np.frombuffer(blob, dtype="<i4", count=n, offset=4 * n * meta["int_columns"].index("seq"))
        assert (seq == spans.seq).all()

    def test_missing_columns_are_named(self) -> None:
        with pytest.raises(ValueError, match="audio_ms"):
            P.build_spans(pd.DataFrame({"seq": [1]}), pd.DataFrame())


class TestAudio:
    def test_opus_when_available_else_wav(self) -> None:
        x = (np.sin(np.arange(24000) / 10) * 8000).astype(np.int16)
        data, mime = P.encode_audio(x, 24000)
        if P.opus_available():
            assert mime.startswith("audio/ogg") and data[:4] == b"OggS"
        else:
            assert mime == "audio/wav" and data[:4] == b"RIFF"

    def test_wav_is_16khz_pcm16(self) -> None:
        import io

        import soundfile as sf

        data, mime = P.encode_audio(np.zeros(24000, dtype=np.int16), 24000, fmt="wav")
        info = sf.info(io.BytesIO(data))
        assert (mime, info.samplerate, info.subtype, info.frames) == ("audio/wav", 16000, "PCM_16", 16000)

    def test_bitrate_fits_an_hour_in_the_budget(self) -> None:
        bps = P.opus_bitrate(3600 * 1.3)  # an hour of input plus the assistant's share
        assert 10_000 <= bps and bps * 3600 * 1.3 / 8 <= P.AUDIO_BUDGET_BYTES

    def test_unknown_format_is_refused(self) -> None:
        with pytest.raises(ValueError, match="'mp3'"):
            P.encode_audio(np.zeros(10, np.int16), 16000, fmt="mp3")


# ------------------------------------------------------------------------------------------------------------
# Timeline
# ------------------------------------------------------------------------------------------------------------
class TestTimeline:
    def test_binary_traits_travel_as_buffers_not_base64(self, log: Any, recording_comm: list) -> None:
        tl = Timeline(log, background_audio_s=1e9)  # audio in the first state message
        c = tl.comm
        state = c.opened["data"]["state"]
        paths = c.opened["data"]["buffer_paths"]
        assert sorted(p[0] for p in paths) == ["audio", "peaks", "spans"]
        sizes = sorted(len(bytes(b)) for b in c.opened["buffers"])
        assert sizes == sorted([len(tl.audio), len(tl.peaks), len(tl.spans)])
        text = json.dumps({k: v for k, v in state.items() if k not in ("audio", "peaks", "spans")})
        assert "base64" not in text and "data:audio" not in text
        assert len(text) < 60_000  # JSON state: layout, labels and the ES module, not per-event JSON

    def test_audio_lanes_and_index(self, log: Any) -> None:
        tl = Timeline(log)  # 48 s of audio: encoded on a worker thread
        assert tl.wait_audio(60)
        assert [ln["kind"] for ln in tl.lanes] == ["input", "output"]
        assert tl.lanes[1]["source"] == "in-session"
        assert tl.audio_status == "ready"
        for entry in tl.audio_index:
            chunk = tl.audio[entry["offset"]: entry["offset"] + entry["size"]]
            assert chunk[:4] in (b"OggS", b"RIFF")
        assert tl.duration_ms == pytest.approx(24000, abs=50)

    def test_long_sessions_play_segments_on_demand(self, log: Any) -> None:
        tl = Timeline(log, full_audio_max_s=10)  # 48 s of lanes is "long" here
        assert tl.audio_status == "segments" and tl.audio == b"" and tl.audio_index == []
        assert Timeline(log, audio="segments").audio_status == "segments"
        with pytest.raises(ValueError, match="'segments'"):
            Timeline(log, audio="mp3")

    def test_failed_background_encoding_falls_back_to_segments(self, log: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
        def broken(*a: Any, **k: Any) -> Any:
            raise OSError("libsndfile is broken")

        monkeypatch.setattr(P, "encode_audio", broken)
        with pytest.warns(RuntimeWarning, match="on-demand segments"):
            tl = Timeline(log, background_audio_s=0)
            tl.wait_audio(30)
        assert tl.audio_status == "segments" and "libsndfile is broken" in tl.audio_error

    def test_no_audio_option(self, log: Any) -> None:
        tl = Timeline(log, audio=None)
        assert tl.audio == b"" and tl.audio_status == "none" and tl.peaks

    def test_sources_filter_and_bad_source(self, log: Any) -> None:
        tl = Timeline(log, sources=["sidecar:local"])
        assert tl.span_counts() == {"sidecar:local": {"completed": 4}}
        assert [ln["kind"] for ln in tl.lanes] == ["input"]
        with pytest.raises(ValueError, match="nope"):
            Timeline(log, sources=["nope"])

    def test_click_in_view_updates_selection_in_python(self, log: Any) -> None:
        tl = Timeline(log, audio=None)
        seen: list[dict] = []
        tl.observe(lambda ch: seen.append(ch["new"]), "selection")
        turn = log._synthetic_plan[0]
        i = tl._spans.find(source="in-session", kind="vad", item_id=turn.item_id)
        front_end_update(tl, selection=tl._spans.row(i))
        assert seen == [{"source": "in-session", "kind": "vad", "item_id": turn.item_id,
                         "start_ms": turn.start_ms, "end_ms": turn.end_ms, "seq": int(tl._spans.seq[i])}]

    def test_selection_from_python_is_completed_and_sent(self, log: Any, recording_comm: list) -> None:
        tl = Timeline(log, audio=None)
        c = tl.comm
        turn = log._synthetic_plan[2]
        sel = tl.select(source="sidecar:transcription", kind="item", item_id=f"tr_{turn.item_id}")
        assert (sel["start_ms"], sel["end_ms"]) == (turn.start_ms - 20, turn.end_ms + 10)
        sent = [m["data"]["state"]["selection"] for m in c.messages if "selection" in m["data"].get("state", {})]
        assert sent[-1] == sel
        with pytest.raises(traitlets.TraitError, match="no span"):
            tl.select(item_id="no-such-item")
        with pytest.raises(traitlets.TraitError, match="unknown keys"):
            tl.selection = {"seq": 1, "colour": "red"}

    def test_get_event_is_answered_on_demand(self, log: Any, frame: pd.DataFrame, recording_comm: list) -> None:
        tl = Timeline(log, audio=None)
        c = tl.comm
        err_seq = int(frame.loc[frame["type"] == "error", "seq"].iloc[0])
        front_end_custom(tl, {"type": "get_event", "seq": err_seq})
        front_end_custom(tl, {"type": "get_event", "seq": 10**9})
        replies = [m["data"]["content"] for m in c.messages if m["data"].get("method") == "custom"]
        assert replies[0]["seq"] == err_seq
        assert replies[0]["event"]["event"]["error"]["code"] == "input_audio_buffer_commit_empty"
        assert "no event with seq" in replies[1]["error"]

    def test_audio_segment_on_demand_is_a_binary_wav(self, log: Any) -> None:
        import io

        import soundfile as sf

        tl = Timeline(log, audio=None)
        turn = log._synthetic_plan[1]
        front_end_custom(tl, {"type": "get_audio", "lane": 0, "start_ms": turn.start_ms, "end_ms": turn.end_ms,
                              "req": 7})
        front_end_custom(tl, {"type": "get_audio", "lane": 9, "start_ms": 0, "end_ms": 1, "req": 8})
        msgs = [m for m in tl.comm.messages if m["data"].get("method") == "custom"]
        ok, bad = msgs[0], msgs[1]
        assert ok["data"]["content"]["req"] == 7 and len(ok["buffers"]) == 1
        assert ok["data"]["content"]["start_ms"] == pytest.approx(turn.start_ms - 250, abs=1)
        wav, rate = sf.read(io.BytesIO(bytes(ok["buffers"][0])))
        assert rate == 16000 and len(wav) == pytest.approx((turn.end_ms - turn.start_ms + 500) * 16, rel=0.01)
        assert "lane 9 out of range" in bad["data"]["content"]["error"] and not bad["buffers"]

    def test_repr_is_cheap_and_static_png_is_a_picture(self, log: Any) -> None:
        tl = Timeline(log, audio=None)
        assert repr(tl).startswith("<Timeline 24.0 s, 2 lanes,")
        data, _ = tl._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in data
        import base64

        png = base64.b64decode(data["image/png"])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
        assert tl.to_html().startswith('<img alt="<Timeline')

    def test_background_audio_arrives_on_the_loop(self, log: Any) -> None:
        async def main() -> Timeline:
            tl = Timeline(log, background_audio_s=0)  # force the worker thread
            assert tl.audio_status == "encoding" and tl.audio == b""
            done = asyncio.get_running_loop().create_future()
            tl.observe(lambda ch: done.done() or done.set_result(threading.get_ident()), "audio_status")
            thread = await asyncio.wait_for(done, 30)
            assert thread == threading.get_ident()  # the trait changed on the loop's thread
            return tl

        tl = asyncio.run(main())
        assert tl.audio_status == "ready" and tl.audio[:4] in (b"OggS", b"RIFF")


# ------------------------------------------------------------------------------------------------------------
# EventInspector and linking
# ------------------------------------------------------------------------------------------------------------
def _rows(ins: EventInspector) -> list[int]:
    return np.frombuffer(ins.rows, dtype="<i4").tolist()


class TestInspector:
    def test_columns_travel_as_one_buffer(self, log: Any, frame: pd.DataFrame, recording_comm: list) -> None:
        ins = EventInspector(log)
        c = ins.comm
        assert sorted(p[0] for p in c.opened["data"]["buffer_paths"]) == ["columns", "rows"]
        n = len(frame)
        assert len(ins.columns) == n * (4 * 6 + 1)
        assert ins.match_count == n and _rows(ins) == list(range(n))

    def test_filters(self, log: Any, frame: pd.DataFrame) -> None:
        ins = EventInspector(log)
        ins.sources = ["sidecar:local"]
        assert ins.match_count == 4 and set(ins.filtered["source"]) == {"sidecar:local"}
        ins.clear_filters()
        ins.types = ["input_audio_buffer.speech_started"]
        ins.start_ms, ins.end_ms = 6000, 11000
        assert set(ins.filtered["item_id"]) == {"item_00001", "tr_item_00001"}
        ins.clear_filters()
        ins.text = "COMMIT_EMPTY"
        assert ins.filtered["type"].tolist() == ["error"]
        ins.clear_filters()
        ins.item_id = "item_00003"
        assert set(ins.filtered["item_id"]) == {"item_00003"} and ins.match_count > 5
        ins.clear_filters()
        ins.direction = "client"
        assert set(ins.filtered["direction"]) == {"client"}
        with pytest.raises(traitlets.TraitError, match="direction"):
            ins.direction = "sideways"
        # filters set from the browser take the same path
        ins.clear_filters()
        front_end_update(ins, text="lazy dog")
        assert ins.match_count >= 2 and _rows(ins) == np.flatnonzero(ins.mask()).tolist()

    def test_selection_gives_json(self, log: Any) -> None:
        ins = EventInspector(log)
        front_end_update(ins, selected_seq=5)
        assert ins.selected_event["seq"] == 5 and "event" in ins.selected_event
        json.dumps(ins.selected_event)  # JSON-safe (no NaN, no LazyEvent)
        with pytest.raises(traitlets.TraitError, match="not a seq"):
            ins.selected_seq = 10**9

    def test_static_html(self, log: Any) -> None:
        ins = EventInspector(log)
        html = ins._repr_html_()
        assert "sidecar:local" in html and "<table" in html
        assert repr(ins).startswith("<EventInspector")


class TestLink:
    def test_inspector_selection_highlights_span(self, log: Any, frame: pd.DataFrame) -> None:
        tl = Timeline(log, audio=None)
        ins = EventInspector(log, timeline=tl)
        completed = frame[(frame["type"] == "conversation.item.input_audio_transcription.completed")
                          & (frame["source"] == "sidecar:local")]
        seq = int(completed["seq"].iloc[0])
        front_end_update(ins, selected_seq=seq)
        assert tl.selection["seq"] == seq and tl.selection["kind"] == "completed"

    def test_event_without_span_selects_its_instant_or_item(self, log: Any, frame: pd.DataFrame) -> None:
        tl = Timeline(log, audio=None)
        ins = EventInspector(log, timeline=tl)
        out = frame[frame["type"] == "response.output_audio.delta"].iloc[0]
        ins.selected_seq = int(out["seq"])
        assert tl.selection["kind"] == "event"
        assert tl.selection["start_ms"] == tl.selection["end_ms"] == int(out["audio_ms"])

    def test_timeline_click_selects_and_scrolls_inspector(self, log: Any) -> None:
        tl = Timeline(log, audio=None)
        ins = EventInspector(log, timeline=tl)
        ins.sources = ["sidecar:local"]  # hides the span's event: the link clears the filter to show it
        i = tl._spans.find(source="in-session", kind="response")
        front_end_update(tl, selection=tl._spans.row(i))
        assert ins.selected_seq == int(tl._spans.seq[i]) == ins.scroll_to
        assert ins.sources == [] and ins.mask()[ins.selected_seq]

    def test_unlink(self, log: Any) -> None:
        tl = Timeline(log, audio=None)
        ins = EventInspector(log)
        unlink = link(tl, ins)
        ins.selected_seq = 0
        assert tl.selection["seq"] == 0
        unlink()
        ins.selected_seq = 1
        assert tl.selection["seq"] == 0

    def test_inspect_builds_both_linked(self, log: Any) -> None:
        box = inspect(log, audio=None)
        assert box.children == (box.timeline, box.inspector)
        box.inspector.selected_seq = int(box.timeline._spans.seq[0])
        assert box.timeline.selection["seq"] == box.inspector.selected_seq


# ------------------------------------------------------------------------------------------------------------
# Live view
# ------------------------------------------------------------------------------------------------------------
class TestLiveView:
    def _delta(self, log: MemoryEventLog, item: str, text: str, source: str = "sidecar:transcription") -> None:
        log.record("server", source, {"type": "conversation.item.input_audio_transcription.delta",
                                      "item_id": item, "delta": text}, audio_ms=0)

    def test_catches_up_and_shows_deltas_then_finals(self) -> None:
        log = MemoryEventLog()
        self._delta(log, "i1", "hel")
        view = LiveView(log)  # no running loop: records apply at once
        self._delta(log, "i1", "lo")
        assert view.transcripts == {"sidecar:transcription": [{"item_id": "i1", "text": "hello", "final": False}]}
        log.record("server", "sidecar:transcription", {
            "type": "conversation.item.input_audio_transcription.completed", "item_id": "i1",
            "transcript": "Hello."}, audio_ms=0)
        self._delta(log, "i1", " late")  # a delta after the final does not change it
        assert view.transcripts["sidecar:transcription"] == [{"item_id": "i1", "text": "Hello.", "final": True}]
        assert view.event_count == 4
        view.stop()
        self._delta(log, "i2", "x")
        assert view.event_count == 4 and view.done
        assert "Hello." in view._repr_html_()

    def test_records_from_threads_are_applied_on_the_loop_throttled(self, recording_comm: list) -> None:
        log = MemoryEventLog()

        async def main() -> tuple[LiveView, set[int], int]:
            loop = asyncio.get_running_loop()
            view = LiveView(log, max_rate_hz=5)
            threads: set[int] = set()
            view.observe(lambda ch: threads.add(threading.get_ident()), "event_count")
            done = loop.create_future()
            view.observe(lambda ch: ch["new"] == 200 and not done.done() and done.set_result(True), "event_count")

            def producer(k: int) -> None:
                for j in range(100):
                    self._delta(log, f"item{k}", f"{j} ")

            workers = [threading.Thread(target=producer, args=(k,)) for k in range(2)]
            for w in workers:
                w.start()
            for w in workers:
                await loop.run_in_executor(None, w.join)
            await asyncio.wait_for(done, 10)
            return view, threads, threading.get_ident()

        view, threads, loop_thread = asyncio.run(main())
        assert threads == {loop_thread}  # never touched from the producer threads
        assert view.event_count == 200
        texts = {d["item_id"]: d["text"] for d in view.transcripts["sidecar:transcription"]}
        assert texts == {f"item{k}": "".join(f"{j} " for j in range(100)) for k in range(2)}
        assert view.flushes < 200  # batched, not one message per record

    def test_real_event_log_records_reach_the_view(self, tmp_path: Path) -> None:
        from rtlab.log import EventLog

        log = EventLog.create(tmp_path / "live.jsonl")
        log.record("server", "in-session", {"type": "input_audio_buffer.speech_started", "item_id": "a",
                                            "audio_start_ms": 0}, audio_ms=5)
        log.record("server", "in-session", {"type": "conversation.item.input_audio_transcription.delta",
                                            "item_id": "a", "delta": "h"}, audio_ms=8)
        view = LiveView(log)  # catches up on the two records made before it
        assert view.event_count == 2
        assert view.transcripts == {"in-session": [{"item_id": "a", "text": "h", "final": False}]}
        log.record("server", "in-session", {"type": "conversation.item.input_audio_transcription.completed",
                                            "item_id": "a", "transcript": "hi"}, audio_ms=10)
        assert view.transcripts == {"in-session": [{"item_id": "a", "text": "hi", "final": True}]}
        assert view.event_count == 3
        log.close()

    def test_every_family_shows_by_the_role_of_its_events(self) -> None:
        log = MemoryEventLog()
        view = LiveView(log)
        rec = lambda source, event: log.record("server", source, event, audio_ms=0)  # noqa: E731
        rec("sidecar:local", {"type": "local.partial", "item_id": "seg_0", "delta": "hel", "text": "hel"})
        rec("sidecar:local", {"type": "local.final", "item_id": "seg_0", "transcript": "hello"})
        rec("sidecar:oob", {"type": "response.output_text.delta", "item_id": "o1", "delta": "hi "})
        rec("sidecar:oob", {"type": "response.output_text.done", "item_id": "o1", "text": "hi there"})
        rec("in-session", {"type": "session.input_transcript.delta", "delta": "live ", "start_ms": 0, "end_ms": 300})
        rec("in-session", {"type": "session.input_transcript.delta", "delta": "words", "start_ms": 300, "end_ms": 600})
        rec("sidecar:azure-speech", {"type": "azure_speech.transcribing", "text": "the cat", "offset_ticks": 100})
        rec("sidecar:azure-speech", {"type": "azure_speech.transcribing", "text": "the cat sat", "offset_ticks": 100})
        rec("sidecar:azure-speech", {"type": "azure_speech.transcribed", "text": "The cat sat.", "offset_ticks": 100})
        rec("sidecar:oob", {"type": "response.output_audio.delta", "item_id": "o1", "delta": "AAAA"})  # not text
        assert view.transcripts == {
            "sidecar:local": [{"item_id": "seg_0", "text": "hello", "final": True}],
            "sidecar:oob": [{"item_id": "o1", "text": "hi there", "final": True}],
            "in-session": [{"item_id": "stream", "text": "live words", "final": False}],
            "sidecar:azure-speech": [{"item_id": "100", "text": "The cat sat.", "final": True}],
        }

    def test_bad_arguments(self) -> None:
        with pytest.raises(TypeError, match="subscribe"):
            LiveView(object())
        with pytest.raises(ValueError, match="max_rate_hz"):
            LiveView(MemoryEventLog(), max_rate_hz=0)


# ------------------------------------------------------------------------------------------------------------
# Static fallbacks: what GitHub and nbviewer show from a saved notebook
# ------------------------------------------------------------------------------------------------------------
def _png_of(bundle: Any) -> bytes:
    import base64

    data, _ = bundle
    assert "application/vnd.jupyter.widget-view+json" in data  # the live view is still there
    png = base64.b64decode(data["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return png


def _png_size(png: bytes) -> tuple[int, int]:
    import struct

    return struct.unpack(">II", png[16:24])  # IHDR width, height


class TestStaticFallbacks:
    def test_inspector_saves_a_picture_of_its_counts(self, log: Any) -> None:
        ins = EventInspector(log)
        data, _ = ins._repr_mimebundle_()
        png = _png_of((data, {}))
        assert data["text/plain"].startswith("<EventInspector") and len(png) > 3000
        ins.sources = ["in-session"]  # the picture follows the filters
        assert ins.static_png() != png

    def test_inspect_box_saves_both_pictures_stacked(self, log: Any) -> None:
        box = inspect(log, audio=None)
        png = _png_of(box._repr_mimebundle_())
        w, h = _png_size(png)
        tw, th = _png_size(box.timeline.to_png())
        iw, ih = _png_size(box.inspector.static_png())
        assert (w, h) == (max(tw, iw), th + ih)
        assert "<Timeline" in box._repr_mimebundle_()[0]["text/plain"]

    def test_live_view_saves_its_transcripts(self) -> None:
        log = MemoryEventLog()
        view = LiveView(log)
        empty = _png_of(view._repr_mimebundle_())
        log.record("server", "in-session", {"type": "conversation.item.input_audio_transcription.completed",
                                            "item_id": "a", "transcript": "hello there"}, audio_ms=0)
        full = _png_of(view._repr_mimebundle_())
        assert full != empty and _png_size(full)[1] >= _png_size(empty)[1]

    def test_live_view_redraws_its_saved_picture_when_it_stops(self) -> None:
        from IPython.core.interactiveshell import InteractiveShell
        from IPython.utils.capture import capture_output

        InteractiveShell.instance()
        log = MemoryEventLog()
        view = LiveView(log)
        with capture_output() as cap:
            view._ipython_display_()  # what IPython calls to show it
            log.record("server", "sidecar:local", {"type": "conversation.item.input_audio_transcription.completed",
                                                   "item_id": "a", "transcript": "the final words"}, audio_ms=0)
            view.stop()
        first, last = cap.outputs
        assert (first.update, last.update) == (False, True)
        assert first.transient["display_id"] == last.transient["display_id"]  # redrawn in place
        assert "the final words" not in first.data.get("text/html", "")
        assert "the final words" in last.data["text/html"] and "image/png" in last.data
        assert last.data["image/png"] != first.data["image/png"]

    def test_a_failing_picture_never_breaks_the_widget(self, log: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        tl = Timeline(log, audio=None)
        monkeypatch.setattr(tl, "to_png", lambda **_: (_ for _ in ()).throw(RuntimeError("no fonts")))
        data, _ = tl._repr_mimebundle_()
        assert "image/png" not in data and "static picture failed: RuntimeError: no fonts" in data["text/plain"]
        assert "application/vnd.jupyter.widget-view+json" in data


class TestLiveSpans:
    """GPT-Live's input transcript has no items: its fragments play their own span of the session timeline."""

    def test_fragments_play_their_timeline_span_and_join_their_turn(self, tmp_path: Path) -> None:
        from rtlab.analysis import turns
        from rtlab.cli import main
        from rtlab.data import clip_path
        from rtlab.log import EventLog

        out = tmp_path / "live"
        assert main(["compare", str(clip_path("monologue")), "--voice-model", "gpt-live-1", "--sidecar", "local",
                     "--speed", "4", "--quiet", "--out", str(out)]) == 0
        log = EventLog.load(out / "events.jsonl")
        frame = log.to_frame()
        table = turns(log)
        spans = P.build_spans(frame, table)
        live = spans.sources.index("in-session")
        fragments = frame[(frame["source"] == "in-session") & (frame["type"] == "session.input_transcript.delta")]
        assert len(fragments) >= 3
        by_seq = {int(s): i for i, s in enumerate(spans.seq) if spans.source[i] == live
                  and spans.tier[i] == P.TIERS.index("delta")}
        live_items = set(table.loc[table["source"] == "in-session", "item_id"])
        for seq, event in zip(fragments["seq"], fragments["event"], strict=True):
            i = by_seq[int(seq)]
            assert (spans.play_start_ms[i], spans.play_end_ms[i]) == (round(event["start_ms"]), round(event["end_ms"]))
            assert spans.items[spans.item[i]] in live_items  # linked to the turn it falls in
