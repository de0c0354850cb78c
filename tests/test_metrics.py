"""Metrics (normalizer, WER/CER, agreement, latency, cost, summary), the price table, and subtitles."""

from __future__ import annotations

import datetime as dt
import json
import random
import re

import jiwer
import numpy as np
import pandas as pd
import pytest

from rtlab import metrics
from rtlab.analysis.cost import cost
from rtlab.analysis.metrics import agreement, latency_summary, normalize, score_turns, summary, wer
from rtlab.analysis.subtitles import to_srt, to_webvtt, write_subtitles
from rtlab.log import EventLog
from rtlab.paths import data_dir
from rtlab.protocol import TRANSCRIPTION_MODELS, VOICE_MODELS


def turns_df(rows):
    cols = ["source", "item_id", "audio_start_ms", "audio_end_ms", "transcript", "reference",
            "first_text_after_eos_ms", "first_text_after_start_ms", "final_after_stop_ms", "final_after_eos_ms",
            "cost_usd", "model", "status"]
    return pd.DataFrame([{c: r.get(c, np.nan) for c in cols} for r in rows], columns=cols)


class TestNormalize:
    @pytest.mark.parametrize("raw, expected", [
        ("Hello, World!", "hello world"),
        ("I can't do it.", "i can not do it"),
        ("It\u2019s twenty-one -- isn't it?", "it is twenty one is not it"),
        ("Pay $3.50, or 1,000 at 10:30.", "pay 3.50 or 1,000 at 10:30"),
        ("  spaced\tout \n text ", "spaced out text"),
        ("Three 3", "three 3"),  # numbers are left as written
        (None, ""),
    ])
    def test_rules(self, raw, expected):
        assert normalize(raw) == expected

    def test_type_error_names_the_value(self):
        with pytest.raises(TypeError, match="got int 5"):
            normalize(5)


class TestErrorRates:
    def test_wer_hand_computed(self):
        # ref 6 words; hyp: "sat"->"sit" substitution, "the" deleted => 2 / 6
        assert wer("the cat sat on the mat", "the cat sit on mat") == pytest.approx(2 / 6)
        assert wer("The cat.", "the CAT") == 0.0  # normalized
        assert wer("The cat.", "the CAT", normalized=False) == 1.0

    def test_corpus_level_aggregation(self):
        # 1 error in 2 words + 1 insertion against 4 words = 2 errors / 6 words (not the mean of rates)
        assert wer(["a b", "c d e f"], ["a x", "c d e f g"]) == pytest.approx(2 / 6)

    def test_cer_hand_computed(self):
        assert metrics.cer("abc", "abd") == pytest.approx(1 / 3)
        assert metrics.cer("ab cd", "abcd") == pytest.approx(1 / 5)  # the space counts

    def test_empty_references(self):
        assert wer("", "") == 0.0
        assert wer("", "two words") == float("inf")
        assert wer(["", "a b"], ["x", "a b"]) == pytest.approx(1 / 2)
        with pytest.raises(ValueError, match="same length"):
            wer(["a"], ["a", "b"])

    def test_per_turn_counts_equal_jiwer(self):
        rng = random.Random(3)
        vocab = "alpha beta gamma delta eps zeta eta theta".split()
        for _ in range(200):
            ref = " ".join(rng.choices(vocab, k=rng.randint(1, 9)))
            hyp = " ".join(w if rng.random() > 0.3 else rng.choice(vocab) for w in ref.split()
                           if rng.random() > 0.1) + rng.choice(["", " eta"])
            got = score_turns(turns_df([{"source": "s", "reference": ref, "transcript": hyp}])).iloc[0]
            words = jiwer.process_words(normalize(ref), normalize(hyp) or "")
            chars = jiwer.process_characters(normalize(ref), normalize(hyp) or "")
            assert got.wer == pytest.approx(words.wer) and got.cer == pytest.approx(chars.cer)

    def test_score_turns(self):
        df = turns_df([
            {"source": "a", "reference": "hello world", "transcript": "hello word"},
            {"source": "a", "reference": "good morning", "transcript": np.nan},  # never arrived: all deleted
            {"source": "a", "transcript": "no reference"},
        ])
        out = score_turns(df)
        assert out["wer"].iloc[0] == 0.5 and out["wer"].iloc[1] == 1.0 and np.isnan(out["wer"].iloc[2])
        assert out["cer"].iloc[0] == pytest.approx(1 / 11)
        assert out["ref_words"].tolist()[:2] == [2, 2] and "wer" not in df.columns
        with pytest.raises(ValueError, match="lacks columns"):
            score_turns(df.drop(columns=["reference"]))


class TestAgreement:
    def test_turns_matched_by_audio_overlap(self):
        df = turns_df([
            {"source": "a", "item_id": "a1", "audio_start_ms": 0, "audio_end_ms": 1000, "transcript": "one two"},
            {"source": "a", "item_id": "a2", "audio_start_ms": 2000, "audio_end_ms": 3000, "transcript": "three"},
            {"source": "a", "item_id": "a3", "audio_start_ms": 5000, "audio_end_ms": 5500, "transcript": "solo"},
            {"source": "b", "item_id": "b1", "audio_start_ms": 100, "audio_end_ms": 1100, "transcript": "One, two!"},
            {"source": "b", "item_id": "b2", "audio_start_ms": 900, "audio_end_ms": 2200, "transcript": "x"},
            {"source": "b", "item_id": "b3", "audio_start_ms": 2100, "audio_end_ms": 3100, "transcript": "tree"},
        ])
        ag = agreement(df)
        assert ag["item_a"].tolist() == ["a1", "a2", "a3"]
        assert ag["item_b"].tolist()[:2] == ["b1", "b3"] and pd.isna(ag["item_b"].iloc[2])
        assert ag["overlap_ms"].tolist() == [900.0, 900.0, 0.0]
        assert ag["agree"].tolist() == [True, False, False]
        assert ag["wer"].iloc[1] == 1.0 and np.isnan(ag["wer"].iloc[2])

    def test_per_file(self):
        rows = [{"source": s, "item_id": f"{s}{f}", "audio_start_ms": 0, "audio_end_ms": 500, "transcript": f}
                for f in ("x", "y") for s in ("a", "b")]
        df = turns_df(rows)
        df.insert(0, "file", ["f1", "f1", "f2", "f2"])
        ag = agreement(df)
        assert ag["file"].tolist() == ["f1", "f2"] and ag["item_b"].tolist() == ["bx", "by"]


class TestLatency:
    def test_percentiles(self):
        vals = [100, 200, 300, 400, 1000]
        df = turns_df([{"source": "a", "final_after_stop_ms": v, "first_text_after_start_ms": -v} for v in vals]
                      + [{"source": "b", "final_after_stop_ms": 50.0}, {"source": "b"}])
        ls = latency_summary(df).set_index(["source", "metric"])
        row = ls.loc[("a", "final_after_stop_ms")]
        assert (row.n, row.mean_ms, row.p50_ms) == (5, 400.0, 300.0)
        assert row.p95_ms == pytest.approx(400 + 0.8 * 600)  # linear interpolation at rank 3.8
        assert ls.loc[("a", "first_text_after_start_ms")].p50_ms == -300
        assert ls.loc[("b", "final_after_stop_ms")].n == 1 and ls.loc[("b", "final_after_eos_ms")].n == 0
        assert np.isnan(ls.loc[("b", "final_after_eos_ms")].p50_ms)
        assert "first_text_after_eos_ms" not in set(ls.index.get_level_values("metric"))  # signed: no percentile


class TestCost:
    def test_per_minute(self):
        assert cost({"type": "duration", "seconds": 60}, "gpt-realtime-whisper") == pytest.approx(0.017)
        assert cost({"type": "duration", "seconds": 90}, "whisper-1") == pytest.approx(0.009)
        assert cost(None, "gpt-realtime-whisper", audio_seconds=30) == pytest.approx(0.0085)
        assert np.isnan(cost(None, "gpt-realtime-whisper"))

    def test_transcription_tokens(self):
        usage = {"type": "tokens", "input_tokens": 1000, "output_tokens": 50, "total_tokens": 1050,
                 "input_token_details": {"audio_tokens": 900, "text_tokens": 100}}
        expected = (900 * 6.0 + 100 * 2.5 + 50 * 10.0) / 1e6
        assert cost(usage, "gpt-4o-transcribe") == pytest.approx(expected)
        # without details, the input is audio
        assert cost({"input_tokens": 1000, "output_tokens": 0}, "gpt-4o-mini-transcribe") == pytest.approx(0.003)

    def test_realtime_usage_with_cache(self):
        usage = {"input_tokens": 1100, "output_tokens": 300,
                 "input_token_details": {"audio_tokens": 1000, "text_tokens": 100, "cached_tokens": 500,
                                         "cached_tokens_details": {"audio_tokens": 400, "text_tokens": 100}},
                 "output_token_details": {"audio_tokens": 250, "text_tokens": 50}}
        expected = (600 * 32 + 400 * 0.4 + 0 * 4 + 100 * 0.4 + 250 * 64 + 50 * 16) / 1e6
        assert cost(usage, "gpt-realtime") == pytest.approx(expected)
        assert cost(usage, "gpt-realtime-2025-08-28") == pytest.approx(expected)  # dated snapshot

    def test_local_and_unknown(self):
        assert cost({"type": "duration", "seconds": 60}, "pocketsphinx") == 0.0
        assert cost(None, "local") == 0.0
        with pytest.raises(ValueError, match="no price for model 'my-deployment'"):
            cost({"type": "duration", "seconds": 1}, "my-deployment")
        custom = {"models": {"my-deployment": {"per_audio_minute": 1.2}}}
        assert cost({"type": "duration", "seconds": 30}, "my-deployment", custom) == pytest.approx(0.6)


class TestPriceTable:
    def test_covers_known_models_and_marks_provenance(self):
        table = json.loads((data_dir() / "prices.json").read_text())
        dt.date.fromisoformat(table["as_of"])
        for name in [*TRANSCRIPTION_MODELS, *(m.name for m in VOICE_MODELS.values() if m.api == "realtime")]:
            entry = table["models"].get(name) or table["models"][re.sub(r"-\d{4}-\d{2}-\d{2}$", "", name)]
            assert entry.get("per_audio_minute") is not None or entry.get("per_1m_tokens"), name
            assert set(entry["provenance"].values()) <= {"published", "estimate", "exact"}, name
            assert set(entry["provenance"]) <= {"per_audio_minute", "per_1m_tokens"}, name
            src = table["sources"][entry["source"]]
            if "published" in entry["provenance"].values():
                assert src["url"].startswith("https://"), name
        assert table["models"]["gpt-realtime-whisper"]["per_audio_minute"] == 0.017
        assert table["models"]["whisper-1"]["per_audio_minute"] == 0.006


class TestSummary:
    def test_one_row_per_source(self):
        df = turns_df([
            {"source": "a", "reference": "hello world", "transcript": "hello word", "final_after_stop_ms": 100,
             "final_after_eos_ms": 600, "first_text_after_eos_ms": -50, "cost_usd": 0.01, "model": "m1",
             "status": "completed"},
            {"source": "a", "reference": "good morning all", "transcript": "good morning all",
             "final_after_stop_ms": 300, "final_after_eos_ms": 800, "first_text_after_eos_ms": 20, "cost_usd": 0.02,
             "model": "m1", "status": "completed"},
            {"source": "b", "reference": "hello world", "transcript": np.nan, "status": "failed"},
        ])
        s = summary(df).set_index("source")
        assert s.loc["a", "n_turns"] == 2 and s.loc["a", "wer"] == pytest.approx(1 / 5)
        assert s.loc["a", "final_after_stop_p50_ms"] == 200 and s.loc["a", "final_after_eos_p95_ms"] == pytest.approx(790)
        assert s.loc["a", "first_text_before_eos_share"] == 0.5 and s.loc["a", "cost_usd"] == pytest.approx(0.03)
        assert not any("first_text_after_eos" in c for c in s.columns)  # no signed headline
        assert s.loc["a", "model"] == "m1"
        assert s.loc["b", "wer"] == 1.0 and s.loc["b", "n_failed"] == 1 and np.isnan(s.loc["b", "cost_usd"])


class TestSubtitles:
    DF = turns_df([
        {"source": "s", "audio_start_ms": 3_725_040.4, "audio_end_ms": 3_726_500, "transcript": "second"},
        {"source": "s", "audio_start_ms": 1500, "audio_end_ms": 3200, "transcript": "a <b> & c\n d"},
        {"source": "s", "audio_start_ms": 4000, "audio_end_ms": 4500, "transcript": np.nan},
        {"source": "t", "audio_start_ms": 0, "audio_end_ms": 10, "transcript": "other"},
    ])

    def test_webvtt(self):
        assert to_webvtt(self.DF, "s") == (
            "WEBVTT\n\n"
            "1\n00:00:01.500 --> 00:00:03.200\na &lt;b&gt; &amp; c d\n\n"
            "2\n01:02:05.040 --> 01:02:06.500\nsecond\n")

    def test_srt(self):
        assert to_srt(self.DF, "s") == (
            "1\n00:00:01,500 --> 00:00:03,200\na <b> & c d\n\n"
            "2\n01:02:05,040 --> 01:02:06,500\nsecond\n")

    def test_unknown_source(self):
        with pytest.raises(ValueError, match="no turns for source 'x'"):
            to_srt(self.DF, "x")

    def test_write_subtitles_from_a_log(self, tmp_path):
        with EventLog.create(tmp_path / "events.jsonl") as log:
            for t, ev in [
                (0.1, {"type": "input_audio_buffer.speech_started", "item_id": "i1", "audio_start_ms": 250}),
                (0.9, {"type": "input_audio_buffer.speech_stopped", "item_id": "i1", "audio_end_ms": 1250}),
                (1.0, {"type": "conversation.item.input_audio_transcription.completed", "item_id": "i1",
                       "transcript": "Hi there"}),
            ]:
                log.record("server", "sidecar:transcription", ev, t=t)
        paths = write_subtitles(EventLog.load(tmp_path / "events.jsonl"), tmp_path / "subs")
        assert sorted(p.name for p in paths) == ["sidecar_transcription.srt", "sidecar_transcription.vtt"]
        assert "00:00:00.250 --> 00:00:01.250\nHi there" in (tmp_path / "subs/sidecar_transcription.vtt").read_text()


def test_docstring_examples_run():
    import doctest

    from rtlab import subtitles

    for mod in (metrics, subtitles):
        result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0, mod.__name__
