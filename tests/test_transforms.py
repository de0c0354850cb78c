"""Audio transforms: exact SNR with seeded noise, the telephone channel, speed perturbation, steps as data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch

from rtlab import audio, data
from rtlab.data import build
from rtlab.errors import ConfigError
from rtlab.transforms import Transform, add_noise, apply, change_speed, g711_roundtrip, telephone


@pytest.fixture(scope="module")
def tone():
    """1 s of silence, 1 s of a 1 kHz + 100 Hz tone, 1 s of silence, at 24 kHz."""
    sr = 24000
    t = np.arange(sr) / sr
    y = np.zeros(3 * sr)
    y[sr:2 * sr] = 0.3 * np.sin(2 * np.pi * 1000 * t) + 0.3 * np.sin(2 * np.pi * 100 * t)
    return audio.load((y, sr), sample_rate=None)


class TestNoise:
    def test_snr_is_exact_over_the_speech_spans(self, tone):
        noisy = add_noise(tone, snr_db=10.0, seed=(1, 0), spans_s=[(1.0, 2.0)])
        x, y = tone.samples.astype(float), noisy.samples.astype(float)
        noise = y - x
        snr = 10 * np.log10(np.mean(x[24000:48000] ** 2) / np.mean(noise ** 2))
        assert snr == pytest.approx(10.0, abs=0.05)  # int16 rounding only

    def test_same_seed_same_noise_other_seed_other_noise(self, tone):
        a = add_noise(tone, snr_db=20.0, seed=5)
        b = add_noise(tone, snr_db=20.0, seed=5)
        c = add_noise(tone, snr_db=20.0, seed=6)
        np.testing.assert_array_equal(a.samples, b.samples)
        assert not np.array_equal(a.samples, c.samples)

    def test_silent_spans_are_refused_with_the_fix(self, tone):
        with pytest.raises(ConfigError, match="digital silence"):
            add_noise(tone, snr_db=10.0, seed=0, spans_s=[(0.0, 0.5)])

    def test_the_clip_build_uses_the_same_functions(self):
        import rtlab.transforms as tr

        assert build.add_white_noise is tr.add_white_noise and build.telephone_band is tr.telephone_band


class TestTelephone:
    def test_8khz_band_limited_and_g711_quantized(self, tone):
        out = telephone(tone)
        assert out.sample_rate == 8000 and out.duration_s == pytest.approx(3.0)
        f, p = welch(out.samples.astype(float)[8000:16000], fs=8000, nperseg=1024)
        at = lambda hz: p[np.argmin(np.abs(f - hz))]  # noqa: E731
        assert at(1000) > 1000 * at(100)  # 100 Hz is below the band: strongly attenuated
        # every sample is a G.711 code point: a second pass changes nothing
        np.testing.assert_array_equal(g711_roundtrip(out.samples, "ulaw"), out.samples)

    def test_alaw_differs_from_ulaw(self, tone):
        assert not np.array_equal(telephone(tone, law="alaw").samples, telephone(tone).samples)


class TestSpeed:
    def test_duration_and_spans_scale(self, tone):
        fast, spans = apply(tone, [Transform.parse({"speed": 1.25})], seed=0, spans_s=[(1.0, 2.0)])
        assert fast.duration_s == pytest.approx(3.0 / 1.25, abs=1e-3)
        assert spans == [(0.8, 1.6)]

    def test_pitch_moves_with_speed(self, tone):
        fast = change_speed(tone, 1.25)
        f, p = welch(fast.samples.astype(float)[int(0.9 * 24000):int(1.5 * 24000)], fs=24000, nperseg=4096)
        assert abs(f[np.argmax(p * (f > 500))] - 1250) < 15

    @pytest.mark.parametrize("bad", [0, -1, 5, "fast", True])
    def test_bad_factor(self, tone, bad):
        with pytest.raises(ConfigError, match="speed factor"):
            change_speed(tone, bad)


class TestSteps:
    @pytest.mark.parametrize("written, canonical", [
        ({"snr_db": 10}, {"kind": "snr", "snr_db": 10.0}),
        ("telephone", {"kind": "telephone", "law": "ulaw"}),
        ({"telephone": {"law": "alaw"}}, {"kind": "telephone", "law": "alaw"}),
        ({"speed": 0.9}, {"kind": "speed", "factor": 0.9}),
        ({"kind": "snr", "snr_db": 5}, {"kind": "snr", "snr_db": 5.0}),
    ])
    def test_written_forms_parse_to_one_canonical_form(self, written, canonical):
        t = Transform.parse(written)
        assert t.to_json() == canonical and Transform.parse(t.to_json()) == t

    @pytest.mark.parametrize("bad, message", [
        ("reverb", "not a transform"), ({"echo": 1}, "unknown audio transform 'echo'"),
        ({"snr_db": 10, "speed": 1.1}, "several keys"), ({"snr_db": "loud"}, "not a finite number"),
        ({"telephone": {"law": "gsm"}}, "law 'gsm'"),
    ])
    def test_bad_steps_name_the_value(self, bad, message):
        with pytest.raises(ConfigError, match=message):
            Transform.parse(bad)

    def test_a_chain_on_a_bundled_clip_is_reproducible(self):
        clip = audio.load(data.clip_path("short"), sample_rate=None)
        spans = [(u["start_s"], u["end_s"]) for u in data.references_for(data.clip_path("short"))]
        steps = [Transform.parse({"snr_db": 15}), Transform.parse("telephone")]
        a, sa = apply(clip, steps, seed=3, spans_s=spans)
        b, sb = apply(clip, steps, seed=3, spans_s=spans)
        np.testing.assert_array_equal(a.samples, b.samples)
        assert sa == sb == spans and a.sample_rate == 8000
