"""Studies as data (no audio is run here): study files, corpus readers, unit ids, limits, the store, the summary."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from rtlab.errors import ConfigError
from rtlab.study import Condition, RateLimit, load_study, read_corpus, results
from rtlab.study.limits import TokenBucket, backoff_delay, unit_cost
from rtlab.study.results import bootstrap_ratio_ci
from rtlab.study.store import StudyStore

STUDY_YAML = """
study: demo
seed: 7
corpus: {bundled: [short, monologue]}
conditions:
  base: {sidecars: [local]}
  vary:
    in_session_model: [gpt-realtime-whisper, gpt-4o-transcribe]
    transforms: [[], [{snr_db: 10}], [telephone]]
  include:
    - {name: whisper-low, in_session_model: gpt-realtime-whisper, delay: low}
run: {speed: 4}
limits:
  openai: {sessions: 4, audio_minutes_per_minute: 30}
"""


@pytest.fixture
def study_file(tmp_path):
    p = tmp_path / "study.yaml"
    p.write_text(STUDY_YAML)
    return p


def _wav(path, seconds=0.5, sr=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(seconds * sr), dtype=np.int16), sr, subtype="PCM_16")


# --------------------------------------------------------------------------------------------------
class TestStudyFile:
    def test_the_grid_is_the_product_of_vary_plus_include(self, study_file):
        st = load_study(study_file)
        assert len(st.conditions) == 2 * 3 + 1 and len(st.corpus) == 2
        assert len(st.units()) == 14
        labels = {c.label() for c in st.conditions}
        assert "gpt-4o-transcribe · telephone ulaw" in labels and "gpt-realtime-whisper · delay low · clean" in labels
        assert st.conditions[-1].id == "whisper-low"
        assert st.limits["openai"] == RateLimit(sessions=4, audio_minutes_per_minute=30)

    def test_unit_ids_are_stable_and_distinct(self, study_file, tmp_path):
        a = load_study(study_file).units()
        b = load_study(study_file).units()
        assert [u.unit_id for u in a] == [u.unit_id for u in b]
        assert len({u.unit_id for u in a}) == len(a)
        # the seed changes the units' seeds, not their ids (the folder guards against mixing seeds)
        other = tmp_path / "seed.yaml"
        other.write_text(STUDY_YAML.replace("seed: 7", "seed: 8"))
        c = load_study(other).units()
        assert [u.unit_id for u in c] == [u.unit_id for u in a] and c[0].seed != a[0].seed

    def test_every_condition_of_a_file_hears_the_same_noise(self, study_file):
        units = load_study(study_file).units()
        by_item = {}
        for u in units:
            by_item.setdefault(u.item.key, set()).add(u.item_seed)
        assert all(len(seeds) == 1 for seeds in by_item.values())

    def test_condition_id_follows_its_parameters_not_the_order(self):
        a = Condition(in_session_model="gpt-4o-transcribe", sidecars=["local"])
        b = Condition(sidecars=("local",), in_session_model="gpt-4o-transcribe")
        assert a.id == b.id and a.id.startswith("c-") and a.id != Condition(sidecars=["oob"]).id

    def test_sessions_per_unit(self):
        assert Condition(sidecars=["local", "oob"]).n_sessions() == 1
        assert Condition(sidecars=["transcription:gpt-4o-transcribe", "transcription", "local"]).n_sessions() == 3

    @pytest.mark.parametrize("patch, message", [
        ({"study": "has space"}, "study id 'has space'"),
        ({"conditions": {"vary": {"target": "local"}}}, "must be a non-empty list of options"),
        ({"conditions": {"base": {"voice": "alloy"}}}, "unknown condition fields \\['voice'\\]"),
        ({"conditions": {"base": {"target": "gcp"}}}, "target 'gcp' is not known"),
        ({"conditions": {"base": {"transforms": [{"reverb": 1}]}}}, "unknown audio transform 'reverb'"),
        ({"conditions": [{"name": "a"}, {"name": "a"}]}, "appear twice"),
        ({"run": {"speed": 0}}, "run.speed must be > 0"),
        ({"run": {"fast": True}}, "unknown settings \\['fast'\\]"),
        ({"limits": {"gcp": {"sessions": 1}}}, "'gcp' is not a target"),
        ({"limits": {"openai": {"sessions": 0}}}, "sessions must be a whole number >= 1"),
        ({"extra": 1}, "unknown keys \\['extra'\\]"),
    ])
    def test_mistakes_are_named_with_their_value(self, patch, message):
        raw = {"study": "s", "corpus": {"bundled": ["short"]}, **patch}
        with pytest.raises(ConfigError, match=message):
            load_study(raw)

    def test_not_yaml(self, tmp_path):
        p = tmp_path / "bad.yaml"
        p.write_text("study: [unclosed")
        with pytest.raises(ConfigError, match="not valid YAML"):
            load_study(p)


# --------------------------------------------------------------------------------------------------
class TestCorpus:
    def test_bundled_clips_carry_their_true_spans(self):
        (item,) = read_corpus({"bundled": ["short"]})
        assert item.key == "short" and item.reference == "The weather is nice today."
        assert item.utterances[0]["end_s"] > item.utterances[0]["start_s"] > 0

    def test_folder_with_transcripts_beside_the_audio(self, tmp_path):
        _wav(tmp_path / "a" / "one.wav")
        _wav(tmp_path / "two.flac")
        (tmp_path / "two.txt").write_text("hello there\n")
        (tmp_path / "notes.md").write_text("not audio")
        items = read_corpus({"folder": str(tmp_path)})
        assert [(i.key, i.reference) for i in items] == [("a/one.wav", None), ("two.flac", "hello there")]
        assert [i.key for i in read_corpus({"folder": str(tmp_path), "pattern": "*.flac"})] == ["two.flac"]

    @pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
    def test_manifest_formats_keep_metadata_columns(self, tmp_path, fmt):
        for n in ("x.wav", "y.wav"):
            _wav(tmp_path / "audio" / n)
        df = pd.DataFrame({"audio_path": ["audio/x.wav", "audio/y.wav"], "reference": ["a b", None],
                           "speaker": ["s1", "s2"], "accent": ["scottish", "us"], "age": [31, 42]})
        path = tmp_path / f"m.{fmt}"
        {"csv": lambda: df.to_csv(path, index=False), "jsonl": lambda: df.to_json(path, orient="records", lines=True),
         "parquet": lambda: df.to_parquet(path)}[fmt]()
        items = read_corpus({"manifest": path.name}, base=tmp_path)
        assert [i.key for i in items] == ["audio/x.wav", "audio/y.wav"]
        assert items[0].audio_path == str((tmp_path / "audio" / "x.wav").resolve())
        assert items[0].reference == "a b" and items[1].reference is None and items[1].speaker == "s2"
        assert dict(items[1].metadata) == {"accent": "us", "age": 42}

    def test_manifest_without_audio_path(self, tmp_path):
        (tmp_path / "m.csv").write_text("file,reference\nx.wav,hi\n")
        with pytest.raises(ConfigError, match="no audio_path column"):
            read_corpus({"manifest": str(tmp_path / "m.csv")})

    def test_librispeech_layout(self, tmp_path):
        ch = tmp_path / "test-clean" / "1089" / "134686"
        for k in range(3):
            _wav(ch / f"1089-134686-000{k}.flac")
        (ch / "1089-134686.trans.txt").write_text(
            "1089-134686-0000 HE HOPED THERE WOULD BE STEW\n1089-134686-0001 STUFF IT INTO YOU\n"
            "1089-134686-0002 AFTER EARLY NIGHTFALL\n")
        items = read_corpus({"librispeech": str(tmp_path / "test-clean"), "limit": 2})
        assert [(i.key, i.speaker, i.reference) for i in items] == [
            ("1089-134686-0000", "1089", "HE HOPED THERE WOULD BE STEW"), ("1089-134686-0001", "1089",
                                                                           "STUFF IT INTO YOU")]
        assert dict(items[0].metadata) == {"chapter": "134686"}

    @pytest.mark.parametrize("spec, message", [
        ({"bundled": ["nope"]}, "'nope' is not a bundled clip"), ({"folder": "/nonexistent/x"}, "is not a folder"),
        ({"folder": "a", "manifest": "b"}, "exactly one of"), ({"bundled": "all", "limit": 0}, "limit"),
    ])
    def test_bad_corpus_specs(self, spec, message):
        with pytest.raises(ConfigError, match=message):
            read_corpus(spec)


# --------------------------------------------------------------------------------------------------
class TestLimits:
    def test_token_bucket_waits_for_the_missing_tokens(self):
        b = TokenBucket.per_minute(6.0, now=0.0)  # 6 audio minutes per minute: 0.1 per second
        b, wait = b.take(4.0, now=0.0)
        assert wait == 0 and b.tokens == 2.0
        b, wait = b.take(4.0, now=0.0)  # 2 left, 4 needed: 20 s of refill
        assert wait == pytest.approx(20.0) and b.tokens == pytest.approx(-2.0)
        b, wait = b.take(1.0, now=120.0)  # refilled, but never above the cap (6)
        assert wait == 0 and b.tokens == pytest.approx(5.0)

    def test_work_larger_than_the_bucket_waits_for_a_full_bucket_not_forever(self):
        b = TokenBucket.per_minute(1.0, now=0.0)
        b, wait = b.take(5.0, now=0.0)
        assert wait == 0 and b.tokens == -4.0
        _, wait = b.take(5.0, now=0.0)
        assert wait == pytest.approx(300.0)  # back to full (1.0) from -4.0 at 1/60 per second

    def test_backoff_is_exponential_jittered_bounded_and_reproducible(self):
        delays = [backoff_delay(a, base_s=1.0, cap_s=8.0, seed="u-1") for a in range(1, 9)]
        assert delays == [backoff_delay(a, base_s=1.0, cap_s=8.0, seed="u-1") for a in range(1, 9)]
        assert all(0 <= d <= min(8.0, 2 ** (a - 1)) for a, d in zip(range(1, 9), delays, strict=True))
        assert backoff_delay(1, base_s=1.0, cap_s=8.0, seed="u-1", hint_s=30.0) == 30.0

    def test_unit_cost_counts_sessions_and_tail(self):
        st = load_study({"study": "s", "corpus": {"bundled": ["short"]},
                         "conditions": [{"sidecars": ["transcription", "local"], "transforms": [{"speed": 2}]}],
                         "run": {"tail_ms": 0}})
        sessions, minutes = unit_cost(st.units()[0], audio_s=60.0)
        assert sessions == 2 and minutes == pytest.approx(2 * 0.5)


# --------------------------------------------------------------------------------------------------
class TestStore:
    def test_a_folder_refuses_another_seed(self, tmp_path, study_file):
        st = load_study(study_file)
        store = StudyStore(tmp_path / "out")
        store.init(st, {"study": st.id})
        store.init(st, {"study": st.id})  # same study: fine
        with pytest.raises(ConfigError, match="not be comparable"):
            store.init(load_study({**st.spec, "seed": 8}), {"study": st.id})

    def test_rows_are_replaced_atomically_never_appended(self, tmp_path, study_file):
        st = load_study(study_file)
        unit = st.units()[0]
        store = StudyStore(tmp_path / "out")
        rows = pd.DataFrame({"unit_id": [unit.unit_id] * 2, "source": ["a", "b"], "turn": [0, 0], "delay": [None] * 2})
        store.write_rows(unit, rows)
        store.write_rows(unit, rows)  # a retried unit
        folder = store.part_path(unit).parent
        assert [p.name for p in folder.iterdir()] == [store.part_path(unit).name]  # no temp file left
        assert len(pd.read_parquet(store.part_path(unit))) == 2
        assert not store.is_done(unit)
        store.mark_done(unit, rows=2, attempts=1, seconds=0.1)
        assert store.is_done(unit)
        store.part_path(unit).unlink()
        assert not store.is_done(unit)  # a status without its rows is not done


    def _done_parts(self, store, units):
        for k, unit in enumerate(units):
            rows = pd.DataFrame({"unit_id": [unit.unit_id] * 2, "source": ["a", "b"], "turn": [0, 0],
                                 "condition": [unit.condition_id] * 2, "file_ref_words": [10.0 + k] * 2})
            store.write_rows(unit, rows)
            store.mark_done(unit, rows=2, attempts=1, seconds=0.1)

    def test_compaction_merges_done_parts_and_keeps_them_done(self, tmp_path, study_file):
        units = [u for u in load_study(study_file).units() if u.condition_id == "whisper-low"]
        store = StudyStore(tmp_path / "out")
        self._done_parts(store, units)
        assert store.compact() == 2
        files = sorted(p.name for p in (store.results_dir / "condition=whisper-low").iterdir())
        assert len(files) == 2 and files[0].startswith("batch-") and files[0].endswith(".json")
        assert all(store.is_done(u) for u in units)
        rows = results(tmp_path / "out").turns()
        assert len(rows) == 4 and not rows.duplicated(["unit_id", "source"]).any()
        assert store.compact() == 0  # nothing left to merge

    def test_a_compaction_killed_midway_is_finished_by_the_next_run(self, tmp_path, study_file):
        units = [u for u in load_study(study_file).units() if u.condition_id == "whisper-low"]
        store = StudyStore(tmp_path / "out")
        self._done_parts(store, units)
        cond = store.results_dir / "condition=whisper-low"
        # the batch is written and renamed, then the process dies: statuses and parts are the old ones
        listing = json.dumps({"units": [u.unit_id for u in units]})
        (cond / "batch-0123456789abcdef.json").write_text(listing)
        pd.concat([pd.read_parquet(store.part_path(u)) for u in units]).to_parquet(
            cond / "batch-0123456789abcdef.parquet")
        (cond / ".batch-x.parquet.tmp").write_text("torn")
        store.settle()
        assert sorted(p.name for p in cond.iterdir()) == ["batch-0123456789abcdef.json",
                                                           "batch-0123456789abcdef.parquet"]
        assert all(store.is_done(u) for u in units)
        assert len(results(tmp_path / "out").turns()) == 4
        # a batch that never got written is forgotten, and its units stay as they were
        (cond / "batch-ffffffffffffffff.json").write_text(listing)
        store.settle()
        assert not (cond / "batch-ffffffffffffffff.json").exists() and all(store.is_done(u) for u in units)


# --------------------------------------------------------------------------------------------------
def _rows(n_units=40, seed=0):
    """Synthetic study rows: two sources, 3 turns per file, known error counts."""
    rng = np.random.default_rng(seed)
    recs = []
    for u in range(n_units):
        words = int(rng.integers(5, 30))
        for source, p in (("good", 0.05), ("bad", 0.3)):
            errs = float(rng.binomial(words, p))
            for t in range(3):
                recs.append({"unit_id": f"u{u}", "condition": "c", "source": source, "turn": t,
                             "status": "completed", "file_word_errors": errs, "file_ref_words": float(words),
                             "final_after_stop_ms": float(100 * (t + 1)), "cost_usd": 0.001, "audio_s": 10.0})
    return pd.DataFrame(recs)


class TestSummary:
    def test_wer_is_the_corpus_rate_over_files_with_a_bootstrap_interval(self):
        df = _rows()
        s = results(df).summary().set_index("source")
        files = df.drop_duplicates(["unit_id", "source"])
        for src in ("good", "bad"):
            f = files[files["source"] == src]
            assert s.loc[src, "wer"] == pytest.approx(f["file_word_errors"].sum() / f["file_ref_words"].sum())
            assert s.loc[src, "wer_lo"] < s.loc[src, "wer"] < s.loc[src, "wer_hi"]
            assert s.loc[src, "n_units"] == 40 and s.loc[src, "n_turns"] == 120
        assert s.loc["good", "wer_hi"] < s.loc["bad", "wer_lo"]  # 5 % vs 30 % is resolved
        assert s.loc["good", "final_after_stop_p50_ms"] == 200.0 and s.loc["good", "cost_usd"] == pytest.approx(0.12)
        assert s.loc["good", "audio_hours"] == pytest.approx(400 / 3600)

    def test_same_seed_same_interval_and_buckets_keep_it_close(self):
        df = _rows(400)
        a = results(df).summary(seed=1)
        b = results(df).summary(seed=1)
        pd.testing.assert_frame_equal(a, b)
        pooled = results(df).summary(seed=1, buckets=50)
        width = (a["wer_hi"] - a["wer_lo"]).to_numpy()
        assert np.allclose((pooled["wer_hi"] - pooled["wer_lo"]).to_numpy(), width, rtol=0.35)

    def test_a_missed_file_counts_as_deleted_words(self):
        df = _rows(2)
        miss = pd.DataFrame([{"unit_id": "u9", "condition": "c", "source": "good", "turn": -1, "status": "no_turns",
                              "file_word_errors": 10.0, "file_ref_words": 10.0, "audio_s": 5.0}])
        s = results(pd.concat([df, miss])).summary().set_index("source")
        assert s.loc["good", "n_missed"] == 1 and s.loc["good", "n_units"] == 3
        assert s.loc["good", "n_turns"] == 6

    def test_ratio_ci_needs_two_files(self):
        assert np.isnan(bootstrap_ratio_ci([(np.array([1.0]), np.array([10.0]))])[0][0])

    def test_a_plain_turns_table_from_a_small_run(self):
        turns = pd.DataFrame({"file": ["a.wav", "a.wav", "b.wav"], "source": ["in-session"] * 3,
                              "reference": ["the cat", "sat down", "hello"], "transcript": ["the cat", "sat", None],
                              "final_after_stop_ms": [10.0, 20.0, np.nan], "usage": [{"x": 1}, None, None]})
        s = results(turns).summary()
        assert s.loc[0, "wer"] == pytest.approx(2 / 5) and s.loc[0, "n_units"] == 2
        assert s.loc[0, "final_after_stop_p50_ms"] == 15.0

    def test_unknown_group_column(self):
        with pytest.raises(ConfigError, match="unknown result columns"):
            results(_rows(2)).summary(by=["nope"])

    def test_no_results_yet(self, tmp_path):
        with pytest.raises(ConfigError, match="run the study first"):
            results(tmp_path)


def test_study_json_is_json(tmp_path, study_file):
    from rtlab.study.runner import describe

    st = load_study(study_file)
    StudyStore(tmp_path).init(st, describe(st))
    d = json.loads((tmp_path / "study.json").read_text())
    assert d["n_units"] == 14 and d["fingerprint"] == {"study": "demo", "seed": 7, "speed": 4.0, "chunk_ms": 40,
                                                       "tail_ms": 1500}
    assert [c["id"] for c in d["conditions"]][-1] == "whisper-low"
