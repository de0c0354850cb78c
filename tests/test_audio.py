"""rtlab.audio: loading and its errors, resampling, wire formats, G.711, chunks, the audio clock and pacing."""

from __future__ import annotations

import asyncio
import struct
import warnings

import numpy as np
import pytest
import soundfile as sf

from rtlab import audio as A
from rtlab.errors import AudioError, ConfigError, RtlabError


def tone(freq: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return amp * np.sin(2 * np.pi * freq * t)


def dominant_hz(samples: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.argmax(spec) * sr / len(samples))


def assert_audio_error(path, *fragments: str):
    """load(path) raises AudioError naming the path and every fragment of the reason."""
    with pytest.raises(AudioError) as info:
        A.load(path)
    err = info.value
    assert isinstance(err, RtlabError)
    assert err.path == str(path)
    assert str(path) in str(err)
    for frag in fragments:
        assert frag in err.reason, f"{frag!r} not in {err.reason!r}"
    return err


# --------------------------------------------------------------------------------------------------
# Bad files: one specific reason each
# --------------------------------------------------------------------------------------------------
class TestBadFiles:
    def test_missing_file(self, tmp_path):
        assert_audio_error(tmp_path / "nope.wav", "file not found")

    def test_directory(self, tmp_path):
        assert_audio_error(tmp_path, "directory")

    def test_empty_file(self, tmp_path):
        p = tmp_path / "empty.wav"
        p.write_bytes(b"")
        assert_audio_error(p, "empty file (0 bytes)")

    def test_zero_samples(self, tmp_path):
        p = tmp_path / "zero.wav"
        sf.write(p, np.zeros(0, dtype=np.int16), 24000)
        assert_audio_error(p, "no audio samples", "0 frames")

    def test_truncated_wav_detected_from_header(self, tmp_path):
        # libsndfile silently reads what is there: the RIFF header check must catch it.
        good = tmp_path / "good.wav"
        sf.write(good, (tone(440, 24000, 1.0) * 32767).astype(np.int16), 24000)
        data = good.read_bytes()
        p = tmp_path / "cut.wav"
        p.write_bytes(data[: len(data) // 2])
        err = assert_audio_error(p, "truncated", "declares 48000 data bytes")
        assert "holds 23978" in err.reason

    def test_truncated_wav_inside_header(self, tmp_path):
        good = tmp_path / "good.wav"
        sf.write(good, np.ones(100, dtype=np.int16), 24000)
        p = tmp_path / "cut.wav"
        p.write_bytes(good.read_bytes()[:30])
        assert_audio_error(p, "truncated or corrupt wav file", "soundfile:")

    def test_truncated_flac(self, tmp_path):
        good = tmp_path / "good.flac"
        sf.write(good, (tone(440, 24000, 1.0) * 32767).astype(np.int16), 24000)
        p = tmp_path / "cut.flac"
        p.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
        assert_audio_error(p, "flac", "soundfile:")

    def test_not_an_audio_file(self, tmp_path):
        p = tmp_path / "notes.wav"
        p.write_text("these are meeting notes, not audio\n" * 20)
        assert_audio_error(p, "not an audio file (soundfile: Format not recognised")

    def test_nan_samples(self, tmp_path):
        x = np.zeros(1000, dtype=np.float32)
        x[[10, 20, 30]] = np.nan
        p = tmp_path / "nan.wav"
        sf.write(p, x, 24000, subtype="FLOAT")
        assert_audio_error(p, "contains 3 NaN samples", "first at frame 10")

    def test_inf_samples(self, tmp_path):
        x = np.zeros((1000, 2), dtype=np.float32)
        x[500, 1] = np.inf
        p = tmp_path / "inf.wav"
        sf.write(p, x, 24000, subtype="FLOAT")
        assert_audio_error(p, "contains 1 Inf samples", "first at frame 500")

    def test_unsupported_wav_encoding(self, tmp_path):
        payload = b"\x00\x01" * 1000
        fmt = struct.pack("<HHIIHH", 0x1234, 1, 8000, 16000, 2, 16)
        body = (
            b"WAVE"
            + b"fmt "
            + struct.pack("<I", len(fmt))
            + fmt
            + b"data"
            + struct.pack("<I", len(payload))
            + payload
        )
        p = tmp_path / "odd.wav"
        p.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
        assert_audio_error(p, "unsupported format", "a wav file with an encoding libsndfile cannot decode",
                           "Malformed 'fmt ' chunk")

    def test_unsupported_container_without_decoder(self, tmp_path, monkeypatch):
        import librosa

        def no_backend(*a, **k):
            raise RuntimeError("no backend available")

        monkeypatch.setattr(librosa, "load", no_backend)
        p = tmp_path / "voice.m4a"
        p.write_bytes(b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 200)
        assert_audio_error(p, "unsupported format '.m4a'", "install ffmpeg")

    def test_in_memory_errors(self):
        with pytest.raises(AudioError, match="contains 1 NaN"):
            A.load((np.array([0.0, np.nan, 0.1]), 16000))
        with pytest.raises(AudioError, match="no audio samples"):
            A.load((np.zeros(0), 16000))
        with pytest.raises(AudioError, match="sample rate must be a positive int"):
            A.load((np.zeros(10), 0))
        with pytest.raises(AudioError, match="unsupported sample type"):
            A.load((np.zeros(10, dtype=np.uint8), 8000))


# --------------------------------------------------------------------------------------------------
# Good files: formats, mixing, resampling
# --------------------------------------------------------------------------------------------------
class TestLoad:
    @pytest.mark.parametrize("sr", [8000, 44100])
    def test_resamples_to_24k_and_keeps_pitch(self, tmp_path, sr):
        p = tmp_path / f"tone{sr}.wav"
        sf.write(p, tone(440, sr, 1.0), sr, subtype="PCM_16")
        a = A.load(p)
        assert a.sample_rate == 24000 and a.samples.dtype == np.int16 and a.samples.ndim == 1
        assert a.n_samples == 24000
        assert abs(a.duration_ms - 1000.0) < 1e-9
        assert abs(dominant_hz(a.samples, 24000) - 440) <= 1.0
        assert 0.45 < np.abs(a.to_float()).max() < 0.55
        assert a.path == str(p)

    def test_stereo_is_mixed_to_mono(self, tmp_path):
        left, right = tone(440, 44100, 0.5, 0.4), tone(1000, 44100, 0.5, 0.4)
        p = tmp_path / "stereo.flac"
        sf.write(p, np.stack([left, right], axis=1), 44100)
        a = A.load(p)
        assert a.channels == 1 and a.sample_rate == 24000 and a.n_samples == 12000
        spec = np.abs(np.fft.rfft(a.to_float()))
        f = np.fft.rfftfreq(a.n_samples, 1 / 24000)
        # both channels present, each at half amplitude
        for hz in (440, 1000):
            assert spec[np.argmin(np.abs(f - hz))] > 0.3 * spec.max()
        keep = A.load(p, mono=False, sample_rate=None)
        assert keep.channels == 2 and keep.sample_rate == 44100 and keep.samples.shape == (22050, 2)

    @pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3"])
    def test_reads_common_formats(self, tmp_path, ext):
        p = tmp_path / f"t.{ext}"
        sf.write(p, tone(440, 24000, 1.0), 24000)
        a = A.load(p)
        assert abs(a.duration_ms - 1000) < 80  # mp3 adds encoder padding
        assert abs(dominant_hz(a.samples, 24000) - 440) <= 2

    def test_int16_wav_at_native_rate_is_bit_exact(self, tmp_path):
        x = np.random.default_rng(0).integers(-32768, 32767, 5000, dtype=np.int16)
        p = tmp_path / "x.wav"
        sf.write(p, x, 24000, subtype="PCM_16")
        a = A.load(p)
        np.testing.assert_array_equal(a.samples, x)
        assert a.pcm16() == x.astype("<i2").tobytes()

    def test_in_memory_array_layouts(self):
        x = tone(300, 16000, 0.25)
        mono = A.load((x, 16000))
        chans_first = A.load((np.stack([x, x]), 16000))  # librosa layout (channels, n)
        chans_last = A.load((np.stack([x, x], axis=1), 16000))  # soundfile layout (n, channels)
        assert mono.n_samples == chans_first.n_samples == chans_last.n_samples == 6000
        np.testing.assert_array_equal(chans_first.samples, mono.samples)
        np.testing.assert_array_equal(chans_last.samples, mono.samples)
        as_int = A.load(((x * 32767).astype(np.int16), 16000), sample_rate=None)
        assert as_int.sample_rate == 16000 and as_int.n_samples == 4000

    def test_audio_is_read_only_and_repr_is_cheap(self):
        x = np.zeros(2400, dtype=np.int16)
        a = A.Audio(x, 24000, "somewhere.wav")
        with pytest.raises(ValueError):
            a.samples[0] = 1
        x[0] = 5  # the caller's array stays writable
        assert repr(a) == "Audio(100 ms, 24000 Hz, 1 ch, path='somewhere.wav')"
        with pytest.raises(TypeError, match="int16"):
            A.Audio(np.zeros(10, dtype=np.float32), 24000)

    def test_silence_concat_slice(self):
        s = A.silence(250)
        assert s.n_samples == 6000 and not s.samples.any()
        t = A.load((tone(440, 24000, 0.5), 24000))
        joined = A.concat(s, t, s)
        assert joined.n_samples == 6000 + 12000 + 6000
        assert A.concat([s, t]).n_samples == 18000
        np.testing.assert_array_equal(joined.slice_ms(250, 750).samples, t.samples)
        with pytest.raises(ValueError, match="different sample rates"):
            A.concat(s, A.silence(10, 8000))


# --------------------------------------------------------------------------------------------------
# G.711 and wire formats
# --------------------------------------------------------------------------------------------------
ALL_PCM = np.arange(-32768, 32768, dtype=np.int16)


class TestG711:
    @pytest.mark.parametrize(
        "law, codes",
        [
            # ITU-T G.711 μ-law: 0xFF/0x7F are +0/-0, 0x80/0x00 the extremes ±32124
            ("ulaw", {0xFF: 0, 0x7F: 0, 0x80: 32124, 0x00: -32124, 0xF0: 120, 0xEF: 132}),
            # A-law: 0xD5/0x55 the smallest magnitudes ±8, 0xAA/0x2A the extremes ±32256
            ("alaw", {0xD5: 8, 0x55: -8, 0xAA: 32256, 0x2A: -32256}),
        ],
    )
    def test_known_code_points(self, law, codes):
        decoded = A.decode_g711(bytes(codes), law)
        assert decoded.tolist() == list(codes.values())
        assert decoded.dtype == np.int16

    def test_encoder_known_values(self):
        assert A.encode_g711(np.array([0, 32767, -32768], dtype=np.int16), "ulaw") == bytes(
            [0xFF, 0x80, 0x00]
        )
        assert A.encode_g711(np.array([0, 32767, -32768], dtype=np.int16), "alaw") == bytes(
            [0xD5, 0xAA, 0x2A]
        )

    @pytest.mark.parametrize("law", ["ulaw", "alaw"])
    def test_round_trip_error_is_within_the_segment_step(self, law):
        back = A.decode_g711(A.encode_g711(ALL_PCM, law), law).astype(np.int32)
        x = ALL_PCM.astype(np.int32)
        err = np.abs(back - x)
        # The quantizer step doubles per segment, so the error stays a few percent of the magnitude
        # (3.5 %, plus a small absolute step near zero and the clip above the largest code).
        top = 32256 if law == "alaw" else 32124  # largest magnitude a code decodes to
        limit = 0.035 * np.abs(x) + 12 + np.maximum(np.abs(x) - top, 0)
        assert (err <= limit).all(), int(np.argmax(err - limit))
        # every code decodes to a value that encodes back to the same code
        codes = bytes(range(256))
        again = A.encode_g711(A.decode_g711(codes, law), law)
        if law == "ulaw":  # -0 (0x7F) decodes to 0, which encodes as +0 (0xFF)
            assert again == codes.replace(b"\x7f", b"\xff")
        else:
            assert again == codes

    @pytest.mark.parametrize("law", ["ulaw", "alaw"])
    def test_matches_the_reference_implementation(self, law):
        audioop = pytest.importorskip("audioop")  # CPython <= 3.12 ships the reference g711.c algorithms
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            enc = audioop.lin2ulaw if law == "ulaw" else audioop.lin2alaw
            dec = audioop.ulaw2lin if law == "ulaw" else audioop.alaw2lin
            ref_codes = np.frombuffer(enc(ALL_PCM.tobytes(), 2), dtype=np.uint8)
            ref = np.frombuffer(dec(bytes(range(256)), 2), dtype=np.int16)
        # Decoding is bit-exact with the reference.
        np.testing.assert_array_equal(A.decode_g711(bytes(range(256)), law), ref)
        # libsndfile's encoder picks the neighbouring code for a few inputs: never more than one quantization
        # level away from the reference, for under 1 % of all int16 values.
        codes = np.frombuffer(A.encode_g711(ALL_PCM, law), dtype=np.uint8)
        differ = codes != ref_codes
        assert differ.mean() < 0.01
        ours, theirs = ref[codes[differ]].astype(np.int32), ref[ref_codes[differ]].astype(np.int32)
        x = ALL_PCM[differ].astype(np.int32)
        step = np.abs(ours - theirs)
        assert (np.abs(ours - x) <= step).all() and (np.abs(theirs - x) <= step).all()

    def test_bad_law(self):
        with pytest.raises(ValueError, match="'ulaw' or 'alaw'"):
            A.encode_g711(np.zeros(3, dtype=np.int16), "mulaw")


class TestFormats:
    def test_pcm16_round_trip(self):
        a = A.load((tone(440, 24000, 0.1), 24000))
        data = A.encode(a, "pcm16")
        assert len(data) == 2 * a.n_samples
        samples, rate = A.decode(data, "pcm16")
        assert rate == 24000
        np.testing.assert_array_equal(samples, a.samples)

    @pytest.mark.parametrize("fmt", ["g711_ulaw", "g711_alaw"])
    def test_g711_is_8k_one_byte_per_sample(self, fmt):
        a = A.load((tone(440, 24000, 1.0, 0.3), 24000))
        data = A.encode(a, fmt)
        assert len(data) == 8000
        samples, rate = A.decode(data, fmt)
        assert rate == 8000 and samples.dtype == np.int16
        assert abs(dominant_hz(samples, 8000) - 440) <= 1
        ref = a.resample(8000).samples.astype(np.float64)
        snr = 10 * np.log10(np.sum(ref**2) / np.sum((samples - ref) ** 2))
        assert snr > 30  # G.711 gives ~38 dB on a tone

    def test_bad_format_and_torn_pcm(self):
        with pytest.raises(ConfigError, match="unknown audio format 'opus'"):
            A.encode(A.silence(10), "opus")
        with pytest.raises(AudioError, match="odd number of bytes"):
            A.decode(b"\x00\x01\x02", "pcm16")


# --------------------------------------------------------------------------------------------------
# Chunks
# --------------------------------------------------------------------------------------------------
class TestChunks:
    @pytest.mark.parametrize(
        "fmt, rate, width", [("pcm16", 24000, 2), ("g711_ulaw", 8000, 1), ("g711_alaw", 8000, 1)]
    )
    def test_offsets_add_up(self, fmt, rate, width):
        a = A.load((tone(440, 24000, 1.01), 24000))  # 1010 ms: the last chunk is short
        parts = list(A.chunks(a, chunk_ms=40, fmt=fmt))
        assert len(parts) == 26
        pos = 0
        for i, c in enumerate(parts):
            assert c.index == i and c.offset_samples == pos and c.sample_rate == rate
            assert len(c.payload) == c.n_samples * width
            assert c.offset_ms == pytest.approx(i * 40)
            pos += c.n_samples
        assert pos == round(1.01 * rate)
        assert parts[-1].duration_ms == pytest.approx(10)
        assert parts[-1].end_ms == pytest.approx(1010)
        assert b"".join(c.payload for c in parts) == A.encode(a, fmt)

    def test_bad_chunk_size(self):
        with pytest.raises(ValueError, match="chunk_ms"):
            list(A.chunks(A.silence(100), chunk_ms=0))


# --------------------------------------------------------------------------------------------------
# Peaks
# --------------------------------------------------------------------------------------------------
class TestPeaks:
    def test_min_max_per_bin(self):
        x = np.array([0, 5, -3, 2, 9, -8, 1, 1], dtype=np.float32)
        p = A.peaks(x, 4)
        assert p.shape == (4, 2) and p.dtype == np.float32
        np.testing.assert_array_equal(p, [[0, 5], [-3, 2], [-8, 9], [1, 1]])

    def test_int16_scaled_and_uneven_bins(self):
        x = np.array([-32768, 0, 16384, 0, 0, 0, 0, 0, 0, 32767], dtype=np.int16)
        p = A.peaks(x, 3)  # bins of 3, 3 and 4 samples
        assert p[0].tolist() == [-1.0, 0.5] and p[1].tolist() == [0.0, 0.0]
        assert p[2].tolist() == [0.0, pytest.approx(32767 / 32768)]

    def test_fewer_samples_than_bins_and_empty(self):
        p = A.peaks(np.array([0.5, -0.5]), 4)
        np.testing.assert_array_equal(p, [[0, 0], [0.5, 0.5], [0, 0], [-0.5, -0.5]])  # empty bins are 0
        assert not A.peaks(np.zeros(0), 3).any()


# --------------------------------------------------------------------------------------------------
# The audio clock and pacing (no real sleeping)
# --------------------------------------------------------------------------------------------------
class FakeTime:
    """A monotonic clock that only moves when something sleeps; each sleep oversleeps by ``late`` seconds."""

    def __init__(self, late: float = 0.0):
        self.now = 100.0
        self.late = late
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds + self.late

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def make_chunks(ms: int = 400, chunk_ms: int = 40) -> list[A.Chunk]:
    return list(A.chunks(A.silence(ms), chunk_ms=chunk_ms))


class TestAudioClock:
    def test_mapping_both_ways(self):
        clock = A.AudioClock()
        for i, c in enumerate(make_chunks(200)):
            clock.stamp(c, wall=10.0 + 0.04 * i)  # chunk i covers [40 i, 40 i + 40) ms, sent at 10 + 0.04 i
        assert len(clock) == 5 and clock.sent_ms == pytest.approx(200)
        assert clock.audio_ms_at(9.0) == 0.0  # before anything was sent
        assert clock.audio_ms_at(10.0) == pytest.approx(40)
        assert clock.audio_ms_at(10.05) == pytest.approx(80)
        assert clock.audio_ms_at(99.0) == pytest.approx(200)
        np.testing.assert_allclose(clock.audio_ms_at(np.array([9.0, 10.0, 10.121])), [0, 40, 160])
        assert clock.wall_at(0) == pytest.approx(10.0)
        assert clock.wall_at(40) == pytest.approx(10.0)  # audio up to 40 ms left with chunk 0
        assert clock.wall_at(40.5) == pytest.approx(10.04)
        assert clock.wall_at(200) == pytest.approx(10.16)
        assert clock.wall_at(201) is None  # never sent
        for x in (0.0, 13.0, 80.0, 199.0):
            assert clock.audio_ms_at(clock.wall_at(x)) >= x
        assert clock.records()[1] == pytest.approx((40.0, 80.0, 10.04))

    def test_rejects_out_of_order(self):
        clock = A.AudioClock()
        c0, c1 = make_chunks(80)
        clock.stamp(c1, wall=1.0)
        with pytest.raises(ValueError, match="in order"):
            clock.stamp(c0, wall=2.0)
        clock2 = A.AudioClock()
        clock2.stamp(c0, wall=5.0)
        with pytest.raises(ValueError, match="backwards"):
            clock2.stamp(c1, wall=4.0)


class TestPacing:
    def test_infinite_speed_keeps_order_and_stamps(self):
        clock = A.AudioClock()
        src = make_chunks(400)

        async def collect():
            return [c async for c in A.pace(src, speed=float("inf"), clock=clock)]

        got = asyncio.run(collect())
        assert [c.index for c in got] == list(range(10))
        assert len(clock) == 10 and clock.sent_ms == pytest.approx(400)

    def test_async_source_is_accepted(self):
        async def gen():
            for c in make_chunks(120):
                yield c

        async def collect():
            return [c.index async for c in A.pace(gen(), speed=float("inf"))]

        assert asyncio.run(collect()) == [0, 1, 2]

    @pytest.mark.parametrize("speed", [1.0, 4.0])
    def test_no_drift_when_sleeps_wake_late(self, speed):
        fake = FakeTime(late=0.007)  # every sleep wakes 7 ms late
        clock = A.AudioClock()
        src = make_chunks(4000)  # 100 chunks
        got = list(A.iter_paced(src, speed=speed, clock=clock, time_fn=fake, sleep=fake.sleep))
        assert len(got) == 100
        start = 100.0
        for _, end_ms, wall in clock.records():
            due = start + end_ms / 1000 / speed
            # each release is at most one late wake-up behind its schedule: lateness never accumulates
            assert due - 1e-9 <= wall <= due + 0.007 + 1e-9
        # a naive sleep(chunk) per chunk would end 100 * 7 ms = 0.7 s late
        assert fake.now - (start + 4.0 / speed) <= 0.007 + 1e-9

    def test_async_pacing_matches_schedule(self):
        fake = FakeTime(late=0.003)
        clock = A.AudioClock(time_fn=fake)

        async def collect():
            return [
                c
                async for c in A.pace(
                    make_chunks(400), clock=clock, align="start", time_fn=fake, sleep=fake.asleep
                )
            ]

        asyncio.run(collect())
        walls = [w for _, _, w in clock.records()]
        assert walls[0] == 100.0  # align="start": the first chunk leaves at once
        for i, w in enumerate(walls):
            assert 100.0 + 0.04 * i - 1e-9 <= w <= 100.0 + 0.04 * i + 0.003 + 1e-9

    def test_bad_speed(self):
        with pytest.raises(ValueError, match="speed must be > 0"):
            list(A.iter_paced(make_chunks(80), speed=0))
