"""The local speech engines, with the real engines: flite, WebRTC VAD, PocketSphinx (no mocks).

Audio comes from the bundled clips (data/clips + data/manifest.json) when present, else is synthesized with
flite on the spot with the same layout (utterances separated by pauses, true boundaries from trimming).
"""

from __future__ import annotations

import json
import re
import threading

import jiwer
import numpy as np
import pytest
import soundfile as sf
import soxr

from rtlab.audio import Resampler, resample
from rtlab.engines import (
    AcousticContext,
    EngineSet,
    FliteMissingError,
    FliteTts,
    LocalPipeline,
    PocketSphinxAsr,
    Stability,
    TurnDetector,
    TurnEvent,
    WebRtcVad,
    base,
    default_engines,
)
from rtlab.engines.asr import _after
from rtlab.engines.base import Word
from rtlab.engines.pipeline import Final, Partial, SpeechStarted, SpeechStopped, VadParams
from rtlab.errors import AudioError, ConfigError, RtlabError
from rtlab.paths import data_dir

SR = 24000
_norm = jiwer.Compose(
    [jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(), jiwer.Strip()]
)


def wer(ref: str, hyp: str) -> float:
    return jiwer.wer(_norm(ref), _norm(hyp) or "<empty>")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def engines() -> EngineSet:
    return default_engines()


@pytest.fixture(scope="module")
def tts(engines: EngineSet) -> FliteTts:
    return engines.tts


@pytest.fixture(scope="module")
def asr(engines: EngineSet) -> PocketSphinxAsr:
    return engines.asr


def _trim_bounds(pcm: np.ndarray, sr: int) -> tuple[int, int]:
    """First and last sample of speech: 10 ms frames within 45 dB of the loudest frame (as the data builder)."""
    n = sr // 100
    frames = pcm[: len(pcm) // n * n].astype(np.float64).reshape(-1, n)
    db = 10 * np.log10((frames**2).mean(axis=1) + 1e-9)
    idx = np.flatnonzero(db > db.max() - 45)
    return idx[0] * n, (idx[-1] + 1) * n


def _synth_clip(
    tts: FliteTts, texts: list[str], voice: str, *, lead_s: float = 0.5, pause_s: float = 1.5
) -> dict:
    parts = [np.zeros(int(lead_s * SR), np.int16)]
    utts, t = [], lead_s
    for text in texts:
        pcm = tts.synthesize(text, voice=voice)
        a, b = _trim_bounds(pcm, SR)
        pcm = pcm[a:b]
        utts.append({"text": text, "start_s": t, "end_s": t + len(pcm) / SR})
        parts += [pcm, np.zeros(int(pause_s * SR), np.int16)]
        t += len(pcm) / SR + pause_s
    return {"pcm": np.concatenate(parts), "sr": SR, "utterances": utts, "reference": " ".join(texts)}


def _clip(name: str, tts: FliteTts, fallback_texts: list[str], voice: str = "slt") -> dict:
    manifest = data_dir() / "manifest.json"
    if manifest.is_file():
        clips = json.loads(manifest.read_text())["clips"]
        if name in clips and (data_dir() / clips[name]["file"]).is_file():
            c = clips[name]
            pcm, sr = sf.read(str(data_dir() / c["file"]), dtype="int16")
            return {"pcm": pcm, "sr": sr, "utterances": c["utterances"], "reference": c["reference"]}
    return _synth_clip(tts, fallback_texts, voice)


@pytest.fixture(scope="module")
def monologue(tts: FliteTts) -> dict:
    return _clip(
        "monologue",
        tts,
        [
            "The meeting starts at nine in the morning.",
            "Please bring the report for the team.",
            "We will meet again next week at the office.",
        ],
    )


@pytest.fixture(scope="module")
def sentence(tts: FliteTts) -> tuple[str, np.ndarray]:
    text = "The weather today is sunny with a chance of rain in the afternoon."
    return text, tts.synthesize(text, voice="slt")


def _events(det: TurnDetector, pcm: np.ndarray, sizes: list[int]) -> list[TurnEvent]:
    out, i, k = [], 0, 0
    while i < len(pcm):
        n = sizes[k % len(sizes)]
        out += det.feed(pcm[i : i + n])
        i, k = i + n, k + 1
    return out + det.flush()


def _turns(events: list[TurnEvent]) -> list[tuple[int, int]]:
    starts = [e.audio_ms for e in events if e.kind == "speech_started"]
    stops = [e.audio_ms for e in events if e.kind == "speech_stopped"]
    assert len(starts) == len(stops)
    assert [e.kind for e in events] == ["speech_started", "speech_stopped"] * len(starts)
    return list(zip(starts, stops, strict=True))


# --------------------------------------------------------------------------- TTS


class TestFliteTts:
    def test_speech_at_24k_int16_with_plausible_duration(self, tts: FliteTts) -> None:
        text = "Please bring the report for the team."  # 7 words
        pcm = tts.synthesize(text, voice="awb")
        assert tts.sample_rate == 24000 and pcm.dtype == np.int16 and pcm.ndim == 1
        assert 1.0 < len(pcm) / SR < 5.0
        assert np.abs(pcm).max() > 3000  # audible speech, not silence
        # flite writes 16 kHz: resampled to 24 kHz, energy sits below the old Nyquist (8 kHz)
        spec = np.abs(np.fft.rfft(pcm.astype(np.float64))) ** 2
        freqs = np.fft.rfftfreq(len(pcm), 1 / SR)
        assert spec[freqs > 8200].sum() < 1e-3 * spec.sum()

    def test_longer_text_is_longer_speech(self, tts: FliteTts) -> None:
        short = tts.synthesize("Hello.")
        long = tts.synthesize("Hello. This sentence is a good deal longer than the first one was.")
        assert len(long) > 3 * len(short)

    def test_deterministic_and_cached(self) -> None:
        a = FliteTts(cache_size=0).synthesize("Deterministic output, please.", voice="rms")
        b = FliteTts(cache_size=0).synthesize("Deterministic output, please.", voice="rms")
        assert np.array_equal(a, b)
        tts = FliteTts(cache_size=2)
        first = tts.synthesize("one")
        assert tts.synthesize("one") is first and tts.cache_hits == 1
        tts.synthesize("two")
        tts.synthesize("three")  # evicts "one", the least recently used
        assert tts.synthesize("one") is not first and tts.cache_misses == 4
        assert not first.flags.writeable

    def test_voices_differ(self, tts: FliteTts) -> None:
        assert not np.array_equal(
            tts.synthesize("Good morning.", voice="slt"), tts.synthesize("Good morning.", voice="rms")
        )

    def test_unknown_voice_is_a_config_error(self, tts: FliteTts) -> None:
        # flite itself would silently fall back to kal
        with pytest.raises(ConfigError, match="'nope'.*slt"):
            tts.synthesize("hi", voice="nope")
        with pytest.raises(ConfigError):
            FliteTts(default_voice="nope")

    def test_empty_text_is_empty_audio(self, tts: FliteTts) -> None:
        assert len(tts.synthesize("   ")) == 0

    def test_missing_flite_names_the_package(self, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
        monkeypatch.setenv("PATH", str(tmp_path))
        with pytest.raises(RtlabError, match="apt-get install flite") as info:
            FliteTts()
        assert isinstance(info.value, FliteMissingError)


# --------------------------------------------------------------------------- resampler and VAD


class TestResampler:
    """rtlab.audio.Resampler: the one streaming resampler (soxr), used by the VAD and the recognizer."""

    @pytest.mark.parametrize(("src", "dst"), [(24000, 16000), (8000, 16000), (48000, 16000), (16000, 16000)])
    def test_any_chunking_gives_the_same_samples(self, src: int, dst: int) -> None:
        rng = np.random.default_rng(7)
        x = (rng.standard_normal(src // 2) * 4000).astype(np.int16)
        outs = []
        for sizes in ([len(x)], [1, 2, 3, 5, 7], [479, 1, 1001]):
            rs, out, i, k = Resampler(src, dst), [], 0, 0
            while i < len(x):
                out.append(rs.process(x[i : i + sizes[k % len(sizes)]]))
                i, k = i + sizes[k % len(sizes)], k + 1
            out.append(rs.flush())
            outs.append(np.concatenate(out))
        assert all(np.array_equal(outs[0], o) for o in outs[1:])
        if src != dst:  # and it is soxr's high-quality filter: close to a whole-signal soxr run
            ref = soxr.resample(x.astype(np.float64) / 32768, src, dst, quality="HQ") * 32768
            n = min(len(ref), len(outs[0]))
            assert abs(len(ref) - len(outs[0])) <= 1
            assert np.max(np.abs(outs[0][:n].astype(float) - ref[:n])) <= 2.0

    def test_bad_input(self) -> None:
        with pytest.raises(AudioError, match="positive integer"):
            Resampler(0, 16000)
        with pytest.raises(AudioError, match="int16"):
            Resampler(24000, 16000).process(np.zeros(10, np.float32))


class TestWebRtcVad:
    def test_speech_and_silence_frames(self, sentence: tuple[str, np.ndarray]) -> None:
        vad = WebRtcVad()
        assert isinstance(vad, base.Vad)
        x = resample(sentence[1], 24000, 16000)
        probs = [vad.speech_prob(x[i : i + 480]) for i in range(0, len(x) - 480, 480)]
        assert set(probs) <= {0.0, 1.0} and sum(probs) > 0.5 * len(probs)
        assert WebRtcVad().speech_prob(np.zeros(480, np.int16)) == 0.0

    def test_bad_frames_and_settings(self) -> None:
        with pytest.raises(AudioError, match="480 samples"):
            WebRtcVad().speech_prob(np.zeros(100, np.int16))
        with pytest.raises(ConfigError, match="aggressiveness"):
            WebRtcVad(aggressiveness=5)
        with pytest.raises(ConfigError, match="24000"):
            WebRtcVad(sample_rate=24000)


# --------------------------------------------------------------------------- turn detection


class TestTurnDetector:
    def test_monologue_gives_three_turns_at_the_true_boundaries(self, monologue: dict) -> None:
        det = TurnDetector(sample_rate=monologue["sr"])
        turns = _turns(_events(det, monologue["pcm"], [len(monologue["pcm"])]))
        assert len(turns) == 3
        for (start, stop), utt in zip(turns, monologue["utterances"], strict=True):
            assert abs(start + 300 - utt["start_s"] * 1000) <= 150
            assert abs(stop - utt["end_s"] * 1000) <= 150

    def test_any_chunking_gives_identical_events(self, monologue: dict) -> None:
        pcm = monologue["pcm"][: int(4.5 * monologue["sr"])]  # first turn and the start of the second
        whole = _events(TurnDetector(sample_rate=monologue["sr"]), pcm, [len(pcm)])
        assert len(whole) == 4  # the second turn is closed by flush()
        for sizes in ([960], [1, 2, 3, 7], [1001, 13, 479, 1]):
            assert _events(TurnDetector(sample_rate=monologue["sr"]), pcm, sizes) == whole

    def test_events_are_timed_by_the_silence_duration(self, monologue: dict) -> None:
        events = _events(
            TurnDetector(silence_duration_ms=500, sample_rate=monologue["sr"]), monologue["pcm"], [960]
        )
        stops = [e for e in events if e.kind == "speech_stopped"]
        for e in stops:
            assert 500 <= e.detected_ms - e.audio_ms < 500 + 30
        for e in events:
            if e.kind == "speech_started":
                assert e.audio_ms + 300 < e.detected_ms <= e.audio_ms + 300 + 210 + 30

    def test_prefix_padding_moves_the_start(self, monologue: dict) -> None:
        pcm, sr = monologue["pcm"], monologue["sr"]
        t0 = _turns(_events(TurnDetector(prefix_padding_ms=0, sample_rate=sr), pcm, [len(pcm)]))
        t3 = _turns(_events(TurnDetector(prefix_padding_ms=300, sample_rate=sr), pcm, [len(pcm)]))
        assert [a - b for (a, _), (b, _) in zip(t0, t3, strict=True)] == [300, 300, 300]
        assert [e for _, e in t0] == [e for _, e in t3]

    def test_long_silence_duration_merges_turns(self, monologue: dict) -> None:
        pause_ms = min(
            (b["start_s"] - a["end_s"]) * 1000
            for a, b in zip(monologue["utterances"], monologue["utterances"][1:], strict=False)
        )
        det = TurnDetector(silence_duration_ms=int(pause_ms) + 500, sample_rate=monologue["sr"])
        assert len(_turns(_events(det, monologue["pcm"], [960]))) == 1

    def test_higher_threshold_detects_no_more_speech(self, tts: FliteTts) -> None:
        clip = _clip("noisy", tts, [])
        if "pcm" not in clip or not len(clip.get("utterances", [])):
            pytest.skip("needs data/clips/noisy.wav")
        speech = {}
        for thr in (0.1, 0.5, 0.9):
            turns = _turns(
                _events(TurnDetector(threshold=thr, sample_rate=clip["sr"]), clip["pcm"], [len(clip["pcm"])])
            )
            speech[thr] = sum(b - a for a, b in turns)
        assert speech[0.9] <= speech[0.5] <= speech[0.1]
        assert speech[0.9] < speech[0.1]  # the noise at the start opens a turn only when sensitive

    def test_threshold_gives_nested_speech_on_synthetic_noise(self) -> None:
        # White noise bursts of random length: a lower threshold must cover every frame a higher one covers.
        rng = np.random.default_rng(3)
        pcm = np.concatenate(
            [
                (rng.standard_normal(int(rng.integers(200, 5000))) * a).astype(np.int16)
                for a in rng.choice([0, 300, 3000], 80)
            ]
        )

        def speech_ms(thr: float) -> set[int]:
            covered: set[int] = set()
            for a, b in _turns(
                _events(
                    TurnDetector(threshold=thr, prefix_padding_ms=0, silence_duration_ms=200), pcm, [2400]
                )
            ):
                covered |= set(range(a, b, 10))
            return covered

        low, mid, high = speech_ms(0.15), speech_ms(0.5), speech_ms(0.95)
        assert high <= mid <= low

    def test_flush_closes_an_open_turn(self, sentence: tuple[str, np.ndarray]) -> None:
        det = TurnDetector()
        events = det.feed(np.concatenate([np.zeros(SR // 2, np.int16), sentence[1]]))
        assert [e.kind for e in events] == ["speech_started"] and det.in_speech
        (stop,) = det.flush()
        assert stop.kind == "speech_stopped" and not det.in_speech
        assert 500 + 1000 < stop.audio_ms <= det.analysed_ms
        assert det.flush() == []

    def test_silence_gives_no_turns(self) -> None:
        det = TurnDetector()
        assert det.feed(np.zeros(SR * 3, np.int16)) + det.flush() == []
        assert det.audio_ms == 3000.0

    def test_bad_settings_and_input(self) -> None:
        with pytest.raises(ConfigError, match="threshold"):
            TurnDetector(threshold=1.5)
        with pytest.raises(ConfigError, match="silence_duration_ms"):
            TurnDetector(silence_duration_ms=-1)
        with pytest.raises(AudioError, match="int16"):
            TurnDetector().feed(np.zeros(100, np.float64))
        with pytest.raises(ValueError, match="kind"):
            TurnEvent("speech_paused", 0)


# --------------------------------------------------------------------------- ASR


class TestPocketSphinxAsr:
    def test_transcribes_a_flite_sentence(
        self, asr: PocketSphinxAsr, sentence: tuple[str, np.ndarray]
    ) -> None:
        text, pcm = sentence
        tr = asr.transcribe(pcm, SR)
        assert wer(text, tr.text) <= 0.5
        assert re.fullmatch(r"[a-z' ]+", tr.text)  # lowercase, no <s>, [NOISE], word(2)
        assert tr.text == " ".join(w.text for w in tr.words)
        assert abs(tr.audio_ms - len(pcm) / 24) < 1
        ends = [w.end_ms for w in tr.words]
        assert ends == sorted(ends) and 0 <= tr.words[0].start_ms and ends[-1] <= tr.audio_ms
        assert all(w.logprob <= 0 for w in tr.words) and any(w.logprob < 0 for w in tr.words)
        assert tr.avg_logprob == pytest.approx(np.mean([w.logprob for w in tr.words]))

    def test_bundled_short_clip(self, asr: PocketSphinxAsr, tts: FliteTts) -> None:
        clip = _clip("short", tts, ["The weather is nice today."])
        assert wer(clip["reference"], asr.transcribe(clip["pcm"], clip["sr"]).text) <= 0.5

    def test_streaming_is_append_only_and_early(self, asr: PocketSphinxAsr, monologue: dict) -> None:
        pcm, sr = monologue["pcm"], monologue["sr"]
        utt = monologue["utterances"][0]
        seg = pcm[int((utt["start_s"] - 0.3) * sr) : int((utt["end_s"] + 0.1) * sr)]
        rec = asr.stream()
        assert isinstance(rec, base.StreamingRecognizer)
        step = sr * 40 // 1000
        history, first_at = [""], None
        for i in range(0, len(seg), step):
            rec.accept(seg[i : i + step], sr)
            text = rec.stable_text()
            assert text.startswith(history[-1])
            if text and first_at is None:
                first_at = i + step
            history.append(text)
        assert first_at is not None and first_at < len(seg) - sr // 2  # stable words well before the end
        final = rec.finish()
        assert final.text.startswith(history[-1])
        assert rec.stable_text() == final.text  # after finish, stable text is the final text
        assert wer(utt["text"], final.text) <= 0.5

    def test_final_keeps_stable_words_the_decoder_revised(self, asr: PocketSphinxAsr, sentence) -> None:
        text, pcm = sentence
        rec = asr.stream()
        rec.accept(pcm[: len(pcm) // 2], SR)
        # Pretend a word had already been sent as a delta that the decoder's final hypothesis will not contain.
        rec._stable = [Word("zebra", 0.0, 300.0)]
        rec.accept(pcm[len(pcm) // 2 :], SR)
        final = rec.finish()
        assert final.text.startswith("zebra ")
        assert wer(text, final.text.removeprefix("zebra ")) <= 0.5

    def test_alignment_after_stable_words(self) -> None:
        w = lambda t, a, b: Word(t, a, b)  # noqa: E731
        stable = [w("the", 0, 100), w("quicker", 100, 400)]
        assert [
            x.text for x in _after(stable, [w("the", 0, 100), w("quicker", 100, 400), w("fox", 400, 600)])
        ] == ["fox"]
        revised = [w("the", 0, 100), w("quick", 100, 300), w("brown", 300, 420), w("fox", 420, 600)]
        assert [x.text for x in _after(stable, revised)] == ["brown", "fox"]

    def test_streams_are_deterministic_with_reused_decoders(
        self, asr: PocketSphinxAsr, tts: FliteTts
    ) -> None:
        # A telephone-band utterance is sensitive to the cepstral mean a reused decoder carries over.
        clip = _clip("telephone", tts, ["I would like to check my account balance."], voice="kal16")
        sr, utt = clip["sr"], clip["utterances"][0]
        pcm = clip["pcm"][int((utt["start_s"] - 0.3) * sr) : int((utt["end_s"] + 0.1) * sr)]

        def run() -> str:
            rec = asr.stream()
            for i in range(0, len(pcm), sr // 25):
                rec.accept(pcm[i : i + sr // 25], sr)
            return rec.finish().text

        first = run()
        built = asr.decoders_built
        assert [run() for _ in range(2)] == [first] * 2
        assert asr.decoders_built == built  # the pool reused the decoder

    def test_a_noisy_stream_does_not_depend_on_what_the_pooled_decoder_heard_before(
        self, asr: PocketSphinxAsr
    ) -> None:
        # Noise removal in the front end keeps estimates across utterances unless the decoder is reset.
        from rtlab import audio, data
        from rtlab.transforms import add_noise

        mono = audio.load(data.clip_path("monologue"), sample_rate=SR)
        utt = data.references_for(data.clip_path("monologue"))[0]
        noisy = add_noise(mono.slice_ms(0, (utt["end_s"] + 0.3) * 1000), snr_db=20, seed=(5, 0),
                          spans_s=[(utt["start_s"], utt["end_s"])]).samples
        other = audio.load(data.clip_path("dialogue"), sample_rate=SR).samples

        def run(pcm: np.ndarray) -> str:
            rec = asr.stream()
            for i in range(0, len(pcm), SR // 25):
                rec.accept(pcm[i : i + SR // 25], SR)
                rec.stable_text()
            return rec.finish().text

        first = run(noisy)
        run(other)
        assert [run(noisy), run(noisy)] == [first, first]

    def test_concurrent_streams_match_sequential(self, asr: PocketSphinxAsr, tts: FliteTts) -> None:
        texts = ["Turn left at the next light.", "Is it far from here?", "Thank you very much."]
        clips = [tts.synthesize(t, voice=v) for t, v in zip(texts, ["slt", "rms", "awb"], strict=True)]
        expected = [asr.transcribe(c, SR).text for c in clips]
        results: list[str | BaseException] = [""] * len(clips)
        barrier = threading.Barrier(len(clips))

        def work(k: int) -> None:
            try:
                rec = asr.stream()
                barrier.wait()
                for i in range(0, len(clips[k]), 960):
                    rec.accept(clips[k][i : i + 960], SR)
                    rec.stable_text()
                results[k] = rec.finish().text
            except BaseException as exc:  # reported below
                results[k] = exc

        threads = [threading.Thread(target=work, args=(k,)) for k in range(len(clips))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for k, r in enumerate(results):
            assert isinstance(r, str), r
            assert wer(texts[k], r) <= 0.5
            assert wer(expected[k], r) <= 0.5

    def test_context_carries_adaptation(self, asr: PocketSphinxAsr, sentence) -> None:
        def cmn(text: str) -> np.ndarray:
            return np.array([float(v) for v in text.split(",")])

        ctx = AcousticContext()
        with asr.stream(context=ctx) as rec:
            rec.accept(sentence[1], SR)
            rec.finish()
        assert ctx.turns == 1 and ctx.cmn is not None
        assert not np.allclose(cmn(ctx.cmn), cmn(asr._initial_cmn), atol=0.1)  # it adapted to this audio
        with asr.stream(context=ctx) as rec:  # the next turn of the session starts from the adapted mean
            assert np.allclose(cmn(rec._decoder.get_cmn()), cmn(ctx.cmn), atol=1e-3)
        with asr.stream() as rec:  # a stream without a context starts from the model default
            assert np.allclose(cmn(rec._decoder.get_cmn()), cmn(asr._initial_cmn), atol=1e-3)
        assert ctx.turns == 1  # a cancelled stream does not update the context

    def test_eight_khz_input(self, asr: PocketSphinxAsr, tts: FliteTts) -> None:
        text = "I would like a cup of coffee please."
        pcm8 = resample(tts.synthesize(text, voice="kal16"), 24000, 8000)
        assert wer(text, asr.transcribe(pcm8, 8000).text) <= 0.5

    def test_misuse(self, asr: PocketSphinxAsr) -> None:
        rec = asr.stream(language="en-US")
        assert rec.finish().text == ""  # no audio → empty transcript
        with pytest.raises(RtlabError, match="after finish"):
            rec.accept(np.zeros(10, np.int16), SR)
        with pytest.raises(ConfigError, match="'fr'"):
            asr.stream(language="fr")
        rec = asr.stream()
        rec.accept(np.zeros(480, np.int16), SR)
        with pytest.raises(AudioError, match="changed from 24000 to 16000"):
            rec.accept(np.zeros(480, np.int16), 16000)
        rec.cancel()
        with pytest.raises(AudioError, match="int16"):
            asr.transcribe(np.zeros(100, np.float32), SR)
        with pytest.raises(ConfigError, match="prompt"):
            asr.transcribe(np.zeros(100, np.int16), SR, prompt="x")


# --------------------------------------------------------------------------- the engine set and the sidecar


def test_default_engines_are_shared_and_implement_the_interfaces(engines: EngineSet) -> None:
    again = default_engines()
    assert again.asr is engines.asr and again.tts is engines.tts
    v1, v2 = engines.vad_factory(), engines.vad_factory()
    assert v1 is not v2 and isinstance(v1, base.Vad)
    assert isinstance(engines.asr, base.AsrEngine) and isinstance(engines.tts, base.TtsEngine)


class TestLocalPipeline:
    """The one local pipeline: the emulator's endpoints and the local sidecar all run on it."""

    def test_monologue_turns_partials_and_finals(self, engines: EngineSet, monologue: dict) -> None:
        pcm, sr = monologue["pcm"], monologue["sr"]
        pipe = LocalPipeline(engines, sample_rate=sr)
        events = []
        for i in range(0, len(pcm), sr * 40 // 1000):
            events += pipe.feed(pcm[i : i + sr * 40 // 1000])
        events += pipe.flush()
        # the turns are the turn detector's, whatever the chunking
        starts = [e.audio_start_ms for e in events if isinstance(e, SpeechStarted)]
        stops = [e.speech_end_ms for e in events if isinstance(e, SpeechStopped)]
        assert list(zip(starts, stops, strict=True)) == [
            (float(a), float(b)) for a, b in _turns(_events(TurnDetector(sample_rate=sr), pcm, [len(pcm)]))]
        finals = [e for e in events if isinstance(e, Final)]
        assert len(finals) == 3 and all(f.cause == "vad" for f in finals)
        for final, utt in zip(finals, monologue["utterances"], strict=True):
            assert abs(final.end_ms - utt["end_s"] * 1000) <= 150
            assert wer(utt["text"], final.transcript.text) <= 0.5
            # partials are append-only and the final extends them
            streamed = "".join(e.delta for e in events if isinstance(e, Partial) and e.segment == final.segment)
            assert final.transcript.text.startswith(streamed) and final.streamed == streamed
            assert len(final.audio) == round((final.end_ms - final.start_ms) * sr / 1000)
        assert wer(monologue["reference"], " ".join(f.transcript.text for f in finals)) <= 0.3
        # each stop comes one silence window after the speech (the detected position)
        for e in events:
            if isinstance(e, SpeechStopped):
                assert 500 <= e.detected_ms - e.speech_end_ms <= 560

    def test_client_commits_without_vad(self, engines: EngineSet, monologue: dict) -> None:
        pcm, sr = monologue["pcm"], monologue["sr"]
        first = monologue["utterances"][0]
        cut = int((first["end_s"] + 0.3) * sr)
        pipe = LocalPipeline(engines, vad=None, partials=False, sample_rate=sr)
        events = pipe.feed(pcm[:cut]) + pipe.commit()
        assert not any(isinstance(e, (SpeechStarted, SpeechStopped, Partial)) for e in events)
        [final] = events
        assert final.cause == "commit" and final.start_ms == 0 and final.end_ms == pytest.approx(cut * 1000 / sr)
        assert wer(first["text"], final.transcript.text) <= 0.5
        assert pipe.commit() == []  # nothing open: nothing to commit

    def test_clear_drops_the_open_segment(self, engines: EngineSet, monologue: dict) -> None:
        pcm, sr = monologue["pcm"], monologue["sr"]
        pipe = LocalPipeline(engines, vad=None, sample_rate=sr)
        pipe.feed(pcm[: sr])
        assert pipe.in_segment and pipe.uncommitted_ms == pytest.approx(1000)
        pipe.clear()
        assert not pipe.in_segment and pipe.commit() == []

    def test_commit_mid_turn_swallows_the_vads_stop(self, engines: EngineSet, monologue: dict) -> None:
        pcm, sr = monologue["pcm"], monologue["sr"]
        mid = int((monologue["utterances"][0]["start_s"] + 0.8) * sr)
        pipe = LocalPipeline(engines, sample_rate=sr)
        events = pipe.feed(pcm[:mid]) + pipe.commit()
        assert isinstance(events[-1], Final) and events[-1].cause == "commit"
        rest = pipe.feed(pcm[mid : int((monologue["utterances"][0]["end_s"] + 1.0) * sr)])
        assert not any(isinstance(e, (SpeechStopped, Final)) for e in rest)  # the cut turn's own end is dropped

    def test_stability_trades_latency_for_text(self, engines: EngineSet, monologue: dict) -> None:
        pcm, sr = monologue["pcm"], monologue["sr"]
        utt = monologue["utterances"][0]
        first_partial = {}
        for name, stab in (("eager", Stability(60, 0)), ("careful", Stability(200, 400))):
            pipe = LocalPipeline(engines, stability=stab, sample_rate=sr)
            for i in range(0, int((utt["end_s"] + 1) * sr), sr // 50):
                events = pipe.feed(pcm[i : i + sr // 50])
                if any(isinstance(e, Partial) for e in events) and name not in first_partial:
                    first_partial[name] = i / sr
            pipe.close()
        assert first_partial["eager"] < first_partial["careful"]

    def test_bad_input(self, engines: EngineSet) -> None:
        with pytest.raises(AudioError, match="int16"):
            LocalPipeline(engines).feed(np.zeros(10, np.float32))
        with pytest.raises(ConfigError, match="sample_rate"):
            LocalPipeline(engines, sample_rate=0)
        assert VadParams().silence_duration_ms == 500
