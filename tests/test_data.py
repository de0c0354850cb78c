"""Bundled clips: the manifest matches the audio, boundaries are true, conditions are as recorded, builds repeat."""

from __future__ import annotations

import hashlib
import itertools
import shutil

import numpy as np
import pytest
import soundfile as sf

from rtlab import audio, data
from rtlab.data import build
from rtlab.errors import AudioError
from rtlab.paths import data_dir

CONTRACT = {"short", "monologue", "dialogue", "lead_silence", "noisy", "telephone"}


@pytest.fixture(scope="module")
def manifest() -> dict:
    return data.load_manifest()


@pytest.fixture(scope="module")
def clip_audio(manifest) -> dict[str, np.ndarray]:
    """Every clip as float samples at its stored rate (read straight with soundfile)."""
    return {n: sf.read(data.clip_path(n), dtype="float64")[0] for n in manifest["clips"]}


def power(x: np.ndarray) -> float:
    return float(np.mean(x**2)) if len(x) else 0.0


def spans(entry: dict) -> list[tuple[int, int]]:
    sr = entry["sample_rate"]
    return [(round(u["start_s"] * sr), round(u["end_s"] * sr)) for u in entry["utterances"]]


def outside(x: np.ndarray, sp: list[tuple[int, int]], margin: int) -> np.ndarray:
    """Samples more than ``margin`` away from every span."""
    keep = np.ones(len(x), dtype=bool)
    for a, b in sp:
        keep[max(0, a - margin) : b + margin] = False
    return x[keep]


# --------------------------------------------------------------------------------------------------
# API
# --------------------------------------------------------------------------------------------------
class TestApi:
    def test_contract_names(self):
        assert set(data.clips()) >= CONTRACT
        assert data.clips() == sorted(data.clips())

    def test_clip_path_with_and_without_suffix(self):
        p = data.clip_path("short")
        assert p == data.clip_path("short.wav") == data_dir() / "clips" / "short.wav"
        assert p.is_file()

    def test_unknown_clip_lists_known_ones(self):
        with pytest.raises(AudioError) as info:
            data.clip_path("shrot")
        msg = str(info.value)
        assert "shrot" in msg and "not a bundled clip" in msg
        for name in CONTRACT:
            assert name in msg

    def test_references_for_paths_and_names(self, tmp_path, manifest):
        expected = manifest["clips"]["monologue"]["utterances"]
        p = data.clip_path("monologue")
        assert data.references_for(p) == expected
        assert data.references_for(str(p)) == expected
        assert data.references_for(p.parent / ".." / "clips" / "monologue.wav") == expected
        assert data.references_for("monologue.wav") == expected
        copy = tmp_path / "monologue.wav"
        shutil.copy(p, copy)
        assert data.references_for(copy) == expected
        assert data.references_for("monologue") == expected
        assert data.references_for(tmp_path / "my_recording.wav") is None
        assert data.references_for("monologue.mp3") is None

    def test_results_are_copies(self):
        refs = data.references_for("short")
        refs[0]["text"] = "changed"
        data.load_manifest()["clips"]["short"]["reference"] = "changed"
        assert data.references_for("short")[0]["text"] != "changed"
        assert data.load_manifest()["clips"]["short"]["reference"] != "changed"

    def test_rtlab_data_env_overrides(self, tmp_path, monkeypatch):
        monkeypatch.setenv("RTLAB_DATA", str(tmp_path))
        with pytest.raises(FileNotFoundError, match="make data"):
            data.clips()


# --------------------------------------------------------------------------------------------------
# Manifest sanity
# --------------------------------------------------------------------------------------------------
class TestManifest:
    def test_generator(self, manifest):
        gen = manifest["generator"]
        assert "flite" in gen["flite_version"] and isinstance(gen["seed"], int)
        genders = {v["gender"] for v in gen["voices"].values()}
        assert genders == {"female", "male"}

    def test_entries_match_files(self, manifest, clip_audio):
        for name, e in manifest["clips"].items():
            path = data_dir() / e["file"]
            info = sf.info(path)
            assert (info.samplerate, info.channels, info.subtype) == (e["sample_rate"], 1, "PCM_16"), name
            assert info.frames == e["n_samples"] and e["duration_s"] == pytest.approx(
                info.frames / info.samplerate
            )
            assert hashlib.sha256(path.read_bytes()).hexdigest() == e["sha256"], f"{name}: run `make data`"
            assert e["reference"] == " ".join(u["text"] for u in e["utterances"])
            expected_rate = 8000 if name == "telephone" else 24000
            assert e["sample_rate"] == expected_rate

    def test_utterances_inside_clip_and_ordered(self, manifest):
        for name, e in manifest["clips"].items():
            prev_end = 0.0
            for u in e["utterances"]:
                assert {"text", "speaker", "voice", "start_s", "end_s"} <= set(u)
                assert u["text"].strip() and u["voice"] in manifest["generator"]["voices"]
                assert prev_end <= u["start_s"] < u["end_s"] <= e["duration_s"], name
                prev_end = u["end_s"]
            assert e["lead_silence_s"] == pytest.approx(e["utterances"][0]["start_s"])

    def test_clip_shapes(self, manifest):
        c = manifest["clips"]
        assert len(c["short"]["utterances"]) == 1
        assert (
            len(c["monologue"]["utterances"]) == 3
            and len({u["voice"] for u in c["monologue"]["utterances"]}) == 1
        )
        dia = c["dialogue"]["utterances"]
        assert len(dia) == 4
        assert [u["speaker"] for u in dia] == ["A", "B", "A", "B"]
        assert {u["gender"] for u in dia} == {"female", "male"}
        assert c["lead_silence"]["lead_silence_s"] == pytest.approx(10.0)
        assert len(c["telephone"]["utterances"]) == 2
        assert c["telephone"]["band_hz"] == [300.0, 3400.0] and c["telephone"]["codec"] == "g711_ulaw"
        assert c["noisy"]["snr_db"] is not None
        assert [u["text"] for u in c["noisy"]["utterances"]] == [
            u["text"] for u in c["monologue"]["utterances"]
        ]

    @pytest.mark.parametrize(
        "name, low, high", [("monologue", 0.6, 3.0), ("dialogue", 0.6, 3.0), ("noisy", 0.6, 3.0)]
    )
    def test_pauses_split_turns(self, manifest, name, low, high):
        # server VAD with silence_duration_ms=500 needs > 600 ms of silence to end each turn
        utts = manifest["clips"][name]["utterances"]
        gaps = [b["start_s"] - a["end_s"] for a, b in itertools.pairwise(utts)]
        assert all(low < g < high for g in gaps), gaps
        assert manifest["clips"][name]["duration_s"] - utts[-1]["end_s"] > 0.6

    def test_data_folder_is_small(self):
        total = sum(p.stat().st_size for p in data_dir().rglob("*") if p.is_file())
        assert total < 10_000_000


# --------------------------------------------------------------------------------------------------
# The audio agrees with the manifest
# --------------------------------------------------------------------------------------------------
class TestBoundaries:
    @pytest.mark.parametrize("name", ["short", "monologue", "dialogue", "lead_silence", "telephone"])
    def test_speech_is_inside_the_spans(self, manifest, clip_audio, name):
        e, x = manifest["clips"][name], clip_audio[name]
        sr = e["sample_rate"]
        sp = spans(e)
        win = int(0.05 * sr)
        for a, b in sp:
            inside = power(x[a:b])
            assert 10 * np.log10(inside) > -30, "speech level far too low"
            # 50 ms just before the start and just after the end are (near) silent
            for edge in (x[max(0, a - win) : a], x[b : b + win]):
                assert power(edge) < inside * 10 ** (-40 / 10)
        # ...and the first and last 10 ms frames of each span hold speech at the trim threshold or above
        # (the spans are not padded with silence: the end is the true end of speech)
        tolerance = 50 if name == "telephone" else 46  # band-pass and μ-law move levels a little
        for a, b in sp:
            db = build.frame_db(x[a:b], sr)
            assert db[0] > db.max() - tolerance and db[-1] > db.max() - tolerance
        assert power(outside(x, sp, 0)) < 1e-7

    def test_lead_silence_is_silent(self, manifest, clip_audio):
        x = clip_audio["lead_silence"]
        assert not np.any(x[: 10 * 24000])
        assert np.any(x[10 * 24000 : 10 * 24000 + 2400])

    def test_telephone_band(self, manifest, clip_audio):
        x = clip_audio["telephone"]
        spec = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(len(x), 1 / 8000)
        in_band = spec[(f >= 300) & (f <= 3400)].sum()
        below, above = spec[f < 150].sum(), spec[f > 3800].sum()
        assert below < in_band * 1e-3 and above < in_band * 1e-3

    def test_noisy_snr_matches_manifest(self, manifest, clip_audio):
        e, x = manifest["clips"]["noisy"], clip_audio["noisy"]
        sp = spans(e)
        # blind estimate: noise power from the pauses, speech power = power inside the spans minus noise
        noise = power(outside(x, sp, int(0.05 * e["sample_rate"])))
        inside = power(np.concatenate([x[a:b] for a, b in sp]))
        measured = 10 * np.log10((inside - noise) / noise)
        assert measured == pytest.approx(e["snr_db"], abs=1.0)
        # and against the clean monologue it was made from (same speech, same positions)
        clean = clip_audio["monologue"]
        assert len(clean) == len(x) and spans(manifest["clips"]["monologue"]) == sp
        exact = 10 * np.log10(power(np.concatenate([clean[a:b] for a, b in sp])) / power(x - clean))
        assert exact == pytest.approx(e["snr_db"], abs=0.2)


# --------------------------------------------------------------------------------------------------
# The build itself
# --------------------------------------------------------------------------------------------------
class TestBuildSteps:
    def test_speech_bounds_trims_quiet_edges(self):
        sr = 24000
        rng = np.random.default_rng(0)
        y = np.concatenate(
            [
                1e-4 * rng.standard_normal(4800),
                0.3 * rng.standard_normal(9600),
                1e-4 * rng.standard_normal(2400),
            ]
        )
        a, b = build.speech_bounds(y, sr)
        assert (a, b) == (4800, 14400)

    def test_layout_places_exact_pauses(self):
        segs = [np.ones(100), np.ones(50)]
        y, sp = build.layout(segs, 1000, lead_s=0.2, pause_s=1.5, tail_s=1.0)
        assert sp == [(200, 300), (1800, 1850)] and len(y) == 2850 and y.sum() == 150

    def test_white_noise_at_exact_snr(self):
        y = np.zeros(10000)
        y[1000:3000] = 0.1
        noisy, rms = build.add_white_noise(y, [(1000, 3000)], 20.0, np.random.default_rng(1))
        noise = noisy - y
        assert 10 * np.log10(0.01 / np.mean(noise**2)) == pytest.approx(20.0, abs=1e-9)
        again, _ = build.add_white_noise(y, [(1000, 3000)], 20.0, np.random.default_rng(1))
        np.testing.assert_array_equal(noisy, again)

    def test_unknown_clip_name(self, tmp_path):
        with pytest.raises(build.BuildError, match="unknown clip"):
            build.build(tmp_path, ["nonesuch"], quiet=True)


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")
class TestBuildDeterminism:
    def test_same_bytes_twice_and_same_as_bundled_manifest(self, tmp_path, manifest):
        first, second = tmp_path / "a", tmp_path / "b"
        m1 = build.build(first, ["short", "telephone"], quiet=True)
        m2 = build.build(second, ["short", "telephone"], quiet=True)
        for name in ("short", "telephone"):
            assert (first / "clips" / f"{name}.wav").read_bytes() == (
                second / "clips" / f"{name}.wav"
            ).read_bytes()
        assert (first / "manifest.json").read_bytes() == (second / "manifest.json").read_bytes()
        assert m1 == m2
        # the bundled manifest was produced by the same recipe: same texts, voices and boundaries
        for name in ("short", "telephone"):
            built, bundled = m1["clips"][name], manifest["clips"][name]
            assert [u["text"] for u in built["utterances"]] == [u["text"] for u in bundled["utterances"]]
            assert built["n_samples"] == bundled["n_samples"]
            assert built["utterances"] == bundled["utterances"]
        loaded = audio.load(first / "clips" / "telephone.wav", sample_rate=None)
        assert loaded.sample_rate == 8000
