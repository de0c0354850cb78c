"""Live audio into runs: PushSource chunking, the Microphone widget's Python side, and live runs on the emulator.

The browser side (getUserMedia, the AudioWorklet, real binary messages) is in test_microphone_browser.py; here a
recording comm stands in for the front end and the messages are the ones microphone.js sends.
"""

from __future__ import annotations

import asyncio
import base64
import sys
import threading
from pathlib import Path
from typing import Any

import comm
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rtlab import ConfigError, RtlabError, RunOptions, SessionConfig, Target  # noqa: E402
from rtlab.analysis import turns as turns_of  # noqa: E402
from rtlab.analysis.metrics import wer  # noqa: E402
from rtlab.audio import Audio, chunks, load  # noqa: E402
from rtlab.data import clip_path, references_for  # noqa: E402
from rtlab.errors import AudioError  # noqa: E402
from rtlab.livesource import LiveSource, PushSource, is_live_source  # noqa: E402
from rtlab.log import EventLog  # noqa: E402
from rtlab.runs import IN_SESSION, SIDECAR_LOCAL, LocalSidecar, arun_session, arun_sidecar  # noqa: E402  # noqa: E402
from rtlab.widgets import Microphone, MicrophoneError, MicrophoneSource  # noqa: E402
from test_widgets import RecordingComm  # noqa: E402


@pytest.fixture(autouse=True)
def recording_comm(monkeypatch: pytest.MonkeyPatch) -> list[RecordingComm]:
    made: list[RecordingComm] = []

    def create(**kwargs: Any) -> RecordingComm:
        c = RecordingComm(**kwargs)
        made.append(c)
        return c

    monkeypatch.setattr(comm, "create_comm", create)
    return made


def _collect(source: PushSource) -> list:
    async def main() -> list:
        return [c async for c in source]

    return asyncio.run(main())


def _pieces(samples: np.ndarray, seed: int) -> list[np.ndarray]:
    """Cut samples at random places, as a browser's frames and a network would."""
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, samples.size), size=samples.size // 700, replace=False))
    return np.split(samples, cuts)


# ------------------------------------------------------------------------------------------------------------
# PushSource
# ------------------------------------------------------------------------------------------------------------
class TestPushSource:
    def test_chunks_match_rtlab_audio_chunks_for_the_same_samples(self) -> None:
        audio = load(clip_path("short"))
        src = PushSource(chunk_ms=40)
        for part in _pieces(audio.samples, seed=1):
            src.push(part.astype("<i2").tobytes())
        src.end()
        got = src.drain()
        want = list(chunks(audio, chunk_ms=40))
        assert [(c.index, c.offset_samples, c.n_samples, c.payload) for c in got] == \
               [(c.index, c.offset_samples, c.n_samples, c.payload) for c in want]
        assert got[-1].n_samples < 960  # only the last chunk is shorter
        assert np.array_equal(src.audio().samples, audio.samples) and src.audio().sample_rate == 24000

    def test_async_reader_gets_every_chunk_pushed_from_another_thread_then_stops(self) -> None:
        samples = np.arange(24000, dtype=np.int16)
        src = PushSource(chunk_ms=20)

        async def main() -> list:
            got = []
            producer = threading.Thread(target=lambda: ([src.push(p) for p in _pieces(samples, seed=2)],
                                                        src.end()))
            async for chunk in src:
                if not got:
                    producer.start()  # first chunk pushed below, before the thread runs
                got.append(chunk)
            producer.join()
            return got

        src.push(np.zeros(480, dtype=np.int16))
        got = asyncio.run(main())
        offsets = [c.offset_samples for c in got]
        assert offsets == [480 * k for k in range(len(got))]
        assert sum(c.n_samples for c in got) == 480 + samples.size
        joined = np.concatenate([np.frombuffer(c.payload, "<i2") for c in got])
        assert np.array_equal(joined[480:], samples)

    def test_fail_delivers_what_was_captured_then_raises(self) -> None:
        src = PushSource(chunk_ms=40)
        src.push(np.ones(2000, dtype=np.int16))
        src.fail(RtlabError("no microphone"))

        async def main() -> list:
            got = []
            with pytest.raises(RtlabError, match="no microphone"):
                async for chunk in src:
                    got.append(chunk)
            return got

        got = asyncio.run(main())
        assert [c.n_samples for c in got] == [960, 960, 80]
        assert src.error is not None and src.ended

    def test_stop_tells_the_producer_once_and_later_audio_is_dropped(self) -> None:
        calls: list[int] = []
        src = PushSource(on_stop=lambda: calls.append(1))
        src.push(np.ones(100, dtype=np.int16))
        src.stop()
        src.stop()
        src.push(np.ones(50, dtype=np.int16))
        assert calls == [1] and src.dropped_samples == 50
        assert [c.n_samples for c in _collect(src)] == [100]

    def test_g711_is_resampled_to_8khz_on_one_clock(self) -> None:
        audio = load(clip_path("short"))
        src = PushSource(fmt="g711_ulaw", chunk_ms=40)
        for part in _pieces(audio.samples, seed=3):
            src.push(part)
        src.end()
        got = src.drain()
        assert all(c.sample_rate == 8000 and c.fmt == "g711_ulaw" for c in got)
        assert all(c.n_samples == 320 == len(c.payload) for c in got[:-1])
        assert [c.offset_samples for c in got] == [320 * k for k in range(len(got))]
        assert sum(c.n_samples for c in got) == pytest.approx(audio.n_samples / 3, abs=2)
        assert src.audio().sample_rate == 24000  # what was captured, as captured

    def test_bad_input_names_the_problem(self) -> None:
        with pytest.raises(AudioError, match="unknown wire format 'opus'"):
            PushSource(fmt="opus")
        with pytest.raises(AudioError, match="input_rate"):
            PushSource(input_rate=0)
        with pytest.raises(AudioError, match="chunk_ms"):
            PushSource(chunk_ms=0)
        src = PushSource()
        with pytest.raises(AudioError, match="odd number of bytes"):
            src.push(b"\x00\x01\x02")
        with pytest.raises(AudioError, match="mono int16"):
            src.push(np.zeros((4, 2), dtype=np.int16))

    def test_one_source_feeds_one_reader(self) -> None:
        src = PushSource()
        src.end()
        _collect(src)
        with pytest.raises(RtlabError, match="already being read"):
            _collect(src)

    def test_protocol(self) -> None:
        src = PushSource()
        assert isinstance(src, LiveSource) and is_live_source(src)
        assert not is_live_source(load(clip_path("short"))) and not is_live_source("clip.wav")


# ------------------------------------------------------------------------------------------------------------
# Live runs (embedded emulator, SDK over real sockets)
# ------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def target():
    t = Target.local(seed=7)
    yield t
    t.stop()


def _pushed(path: Path, **kw: Any) -> PushSource:
    src = PushSource(**kw)
    for part in _pieces(load(path).samples, seed=4):
        src.push(part)
    src.end()
    return src


class TestLiveRun:
    def test_a_live_source_feeds_the_session_and_a_sidecar_like_the_file_would(self, target, tmp_path) -> None:
        clip = clip_path("monologue")
        voice = (target, SessionConfig.realtime())
        opts = {"options": RunOptions(speed=float("inf"), progress=False)}
        file_log = asyncio.run(arun_sidecar(clip, voice=voice, sidecars=[LocalSidecar()], out=tmp_path / "file",
                                            **opts))
        source = _pushed(clip)
        live_log = asyncio.run(arun_sidecar(source, voice=voice, sidecars=[LocalSidecar()], out=tmp_path / "live",
                                            **opts))
        refs = references_for(clip)
        live, file = turns_of(live_log, refs), turns_of(file_log, refs)
        assert live.groupby("source").size().to_dict() == {IN_SESSION: 3, SIDECAR_LOCAL: 3}
        key = ["source", "audio_start_ms"]
        assert live.sort_values(key)["transcript"].tolist() == file.sort_values(key)["transcript"].tolist()
        assert wer(list(live["reference"]), list(live["transcript"])) < 0.35
        # the recording is the log's input track: the captured samples, then the run's tail of silence
        samples, rate = EventLog.load(tmp_path / "live" / "events.jsonl").input_audio()
        captured = source.audio().samples
        assert rate == 24000 and np.array_equal(samples[:captured.size], captured)
        assert samples.size == captured.size + 1500 * 24 and not samples[captured.size:].any()

    def test_live_chunks_are_not_paced_and_the_tail_is(self, target, tmp_path) -> None:
        clip = clip_path("short")
        log = asyncio.run(arun_session(target, SessionConfig.realtime(), _pushed(clip), out=tmp_path,
                                       options=RunOptions(speed=1.0, tail_ms=1000, progress=False)))
        frame = log.to_frame()
        appends = frame[(frame["direction"] == "client") & (frame["type"] == "input_audio_buffer.append")]
        clip_ms = load(clip).duration_ms
        captured = appends[appends["audio_ms"] <= clip_ms + 40]
        tail = appends[appends["audio_ms"] > clip_ms + 40]
        # the 3 s captured before the run started go out at once (paced they would take 3 s); the 1 s tail takes
        # about 1 s of wall time
        assert captured["t_ms"].max() - captured["t_ms"].min() < 0.6 * clip_ms
        assert 800 < tail["t_ms"].max() - captured["t_ms"].max() < 2500
        assert appends["audio_ms"].max() == pytest.approx(clip_ms + 1000, abs=1)
        assert turns_of(log)["transcript"].str.len().gt(0).all()

    def test_format_mismatch_is_refused_before_connecting(self, target) -> None:
        config = SessionConfig.realtime(input_format="g711_ulaw")
        with pytest.raises(ConfigError, match="live source yields 'pcm16'.*fmt='g711_ulaw'"):
            asyncio.run(arun_session(target, config, _pushed(clip_path("short"))))

    def test_a_failed_capture_ends_the_run_with_its_error(self, target, tmp_path) -> None:
        src = PushSource()
        src.fail(MicrophoneError("NotAllowedError", "Permission denied"))
        with pytest.raises(MicrophoneError, match="Microphone access was denied"):
            asyncio.run(arun_session(target, SessionConfig.realtime(), src, out=tmp_path,
                                     options=RunOptions(progress=False)))


# ------------------------------------------------------------------------------------------------------------
# The widget's Python side (messages as microphone.js sends them)
# ------------------------------------------------------------------------------------------------------------
def _from_view(widget: Microphone, content: dict, buffers: list | None = None) -> None:
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}},
                        "buffers": [memoryview(b) for b in buffers or []]})


def _record(mic: Microphone, samples: np.ndarray, *, frame: int = 480, swap: bool = False) -> None:
    """What microphone.js sends: started, numbered frames, and stopped with the last (partial) frame."""
    _from_view(mic, {"type": "started", "device": "Fake Default Audio Input", "rate": 48000}, [b""])
    starts = list(range(0, samples.size, frame))
    msgs = [({"type": "pcm", "seq": k}, samples[i:i + frame]) for k, i in enumerate(starts[:-1])]
    msgs.append(({"type": "stopped", "seq": len(starts) - 1, "samples": int(samples.size)}, samples[starts[-1]:]))
    if swap:  # the front end may deliver a frame after the next one
        msgs[1], msgs[2] = msgs[2], msgs[1]
    for content, part in msgs:
        _from_view(mic, content, [part.astype("<i2").tobytes()])


class TestMicrophoneWidget:
    def test_ships_its_worklet_and_messages(self) -> None:
        mic = Microphone()
        assert 'registerProcessor("rtlab-pcm"' in mic.worklet
        assert mic.sample_rate == 24000 and mic.frame_ms == 20
        assert "Allow the microphone" in mic.help_texts["NotAllowedError"]
        with pytest.raises(ValueError, match="frame_ms"):
            Microphone(frame_ms=0)

    def test_binary_frames_become_chunks_of_the_source(self) -> None:
        mic = Microphone()
        source = mic.source(chunk_ms=40)
        audio = load(clip_path("short"))
        _record(mic, audio.samples)
        got = _collect(source)
        assert [c.offset_samples for c in got] == [960 * k for k in range(len(got))]
        assert np.array_equal(source.audio().samples, audio.samples)
        assert (source.device, source.device_rate, source.sent_samples) == ("Fake Default Audio Input", 48000,
                                                                           audio.n_samples)
        assert mic.state == "stopped" and mic.recordings == [source]
        assert mic.captured_ms == pytest.approx(audio.duration_ms)

    def test_frames_that_overtake_each_other_are_put_back_in_order(self) -> None:
        mic = Microphone()
        samples = np.arange(4800, dtype=np.int16)
        _record(mic, samples, swap=True)
        assert np.array_equal(mic.recordings[0].audio().samples, samples)
        assert mic.recordings[0].ended and mic.state == "stopped"

    def test_python_hears_of_progress_a_few_times_a_second_not_per_frame(self, recording_comm: list) -> None:
        mic = Microphone()
        _record(mic, np.zeros(24000 * 2, dtype=np.int16))  # 100 frames of 20 ms
        updates = [m for m in recording_comm[-1].messages
                   if m["data"].get("method") == "update" and "captured_ms" in m["data"]["state"]]
        assert 5 <= len(updates) <= 12

    def test_a_recording_without_a_source_is_kept(self) -> None:
        mic = Microphone()
        _record(mic, np.ones(4800, dtype=np.int16))
        assert len(mic.recordings) == 1 and mic.recordings[0].audio().n_samples == 4800

    def test_permission_denied_is_shown_and_ends_the_waiting_run(self) -> None:
        mic = Microphone()
        source = mic.source()
        _from_view(mic, {"type": "error", "name": "NotAllowedError", "message": "Permission denied"})
        assert mic.state == "error" and mic.error_name == "NotAllowedError"
        assert mic.error.startswith("Microphone access was denied") and "press Start again" in mic.error
        with pytest.raises(MicrophoneError, match="denied.*browser said NotAllowedError: Permission denied"):
            _collect(source)
        assert isinstance(source.error, RtlabError)

    def test_no_device_is_named(self) -> None:
        mic = Microphone()
        source = mic.source()
        _from_view(mic, {"type": "error", "name": "NotFoundError", "message": "Requested device not found"})
        assert mic.error.startswith("No microphone was found")
        with pytest.raises(MicrophoneError, match="No microphone was found"):
            _collect(source)

    def test_stop_from_python_asks_the_view(self, recording_comm: list) -> None:
        mic = Microphone()
        source = mic.source()
        _from_view(mic, {"type": "started", "device": "", "rate": 24000})
        source.stop()
        customs = [m["data"]["content"] for m in recording_comm[-1].messages if m["data"].get("method") == "custom"]
        assert customs == [{"type": "stop"}] and source.ended

    def test_a_lost_frame_is_reported(self) -> None:
        mic = Microphone()
        _from_view(mic, {"type": "started", "device": "", "rate": 48000})
        _from_view(mic, {"type": "pcm", "seq": 0}, [np.zeros(480, "<i2").tobytes()])
        with pytest.warns(RuntimeWarning, match="sent 1440 samples but 960 arrived"):
            _from_view(mic, {"type": "stopped", "seq": 1, "samples": 1440}, [np.zeros(480, "<i2").tobytes()])

    def test_one_run_per_source(self) -> None:
        mic = Microphone()
        first = mic.source()
        second = mic.source()
        assert first.ended and not second.ended and first is not second
        assert isinstance(second, MicrophoneSource)

    def test_static_fallback_before_and_after_a_recording(self) -> None:
        mic = Microphone()
        data, _ = mic._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in data
        before = base64.b64decode(data["image/png"])
        assert before[:8] == b"\x89PNG\r\n\x1a\n" and data["text/plain"] == "<Microphone idle>"
        _record(mic, (np.sin(np.arange(24000) / 5) * 8000).astype(np.int16))
        data, _ = mic._repr_mimebundle_()
        assert base64.b64decode(data["image/png"]) != before
        assert data["text/plain"] == "<Microphone stopped, last recording 1.0 s>"

    def test_audio_is_an_rtlab_audio(self) -> None:
        mic = Microphone()
        _record(mic, np.ones(2400, dtype=np.int16))
        assert isinstance(mic.recordings[0].audio(), Audio)
