"""rtlab.engines.speakers: segment features and the online speaker tracker, on the bundled clips."""

from __future__ import annotations

import numpy as np
import pytest

from rtlab.audio import load
from rtlab.data import clip_path, references_for
from rtlab.engines import default_engines
from rtlab.engines.pipeline import Final, LocalPipeline
from rtlab.engines.speakers import SpeakerTracker, speaker_distance, speaker_features
from rtlab.errors import AudioError, ConfigError


def _segments(name: str) -> list[Final]:
    """The clip cut into turns by the one local pipeline (VAD only)."""
    audio = load(clip_path(name), sample_rate=24000)
    pipe = LocalPipeline(default_engines(), partials=False, recognize=False)
    events = pipe.feed(np.asarray(audio.samples)) + pipe.flush()
    return [e for e in events if isinstance(e, Final)]


def _true_speakers(name: str, segments: list[Final]) -> list[str]:
    """The manifest speaker of the utterance that overlaps each segment most."""
    utts = references_for(name)
    out = []
    for seg in segments:
        overlap = [max(0.0, min(seg.end_ms, u["end_s"] * 1000) - max(seg.start_ms, u["start_s"] * 1000))
                   for u in utts]
        out.append(utts[int(np.argmax(overlap))]["speaker"])
    return out


# ----------------------------------------------------------------------------------------------- on the clips
@pytest.mark.parametrize("name", ["dialogue", "telephone"])
def test_two_voices_get_the_manifest_labels_in_order(name):
    segments = _segments(name)
    truth = _true_speakers(name, segments)
    assert len(set(truth)) == 2, truth  # the clip really alternates two voices
    tracker = SpeakerTracker(sample_rate=24000)
    labels = [tracker.assign(s.audio) for s in segments]
    assert labels == truth  # manifest labels are "A", "B" in order of appearance, as are the tracker's
    assert tracker.labels == ["A", "B"]


@pytest.mark.parametrize("name", ["monologue", "noisy"])
def test_one_voice_stays_one_speaker(name):
    segments = _segments(name)
    assert len(segments) == 3
    tracker = SpeakerTracker(sample_rate=24000)
    assert [tracker.assign(s.audio) for s in segments] == ["A", "A", "A"]


def test_the_same_clip_gives_the_same_labels_every_time():
    segments = _segments("dialogue")
    first, second = SpeakerTracker(), SpeakerTracker()
    assert [first.assign(s.audio) for s in segments] == [second.assign(s.audio) for s in segments]
    a, b = speaker_features(segments[1].audio, 24000), speaker_features(segments[1].audio.copy(), 24000)
    assert a.pitch_st == b.pitch_st and np.array_equal(a.mfcc, b.mfcc)


def test_features_separate_the_voices_by_pitch():
    segments = _segments("dialogue")
    female, male = speaker_features(segments[0].audio, 24000), speaker_features(segments[1].audio, 24000)
    assert 150 < female.pitch_hz < 200 and 85 < male.pitch_hz < 125
    assert speaker_distance(female, male) > 2 * speaker_distance(
        male, speaker_features(segments[3].audio, 24000))


# ----------------------------------------------------------------------------------------------- the method
def test_peek_does_not_change_the_speakers():
    segments = _segments("dialogue")
    tracker = SpeakerTracker()
    assert tracker.peek(segments[0].audio) is None  # nobody known yet: it would be a new speaker
    assert tracker.assign(segments[0].audio) == "A"
    assert tracker.peek(segments[2].audio) == "A"
    assert tracker.peek(segments[1].audio) is None
    assert tracker.labels == ["A"]


def test_max_speakers_bounds_the_labels():
    segments = _segments("dialogue")
    tracker = SpeakerTracker(max_speakers=1)
    assert [tracker.assign(s.audio) for s in segments] == ["A"] * len(segments)


def test_short_or_silent_segments_do_not_crash_and_have_no_pitch():
    f = speaker_features(np.zeros(100, np.int16), 24000)
    assert np.isnan(f.pitch_st) and f.voiced_s == 0.0
    f = speaker_features(np.zeros(24000, np.int16), 24000)
    assert np.isnan(f.pitch_st)
    tracker = SpeakerTracker()
    assert tracker.assign(np.zeros(24000, np.int16)) == "A"


def test_bad_arguments_name_the_value():
    with pytest.raises(ConfigError, match="sample_rate"):
        SpeakerTracker(sample_rate=100)
    with pytest.raises(ConfigError, match="max_speakers"):
        SpeakerTracker(max_speakers=27)
    with pytest.raises(ConfigError, match="threshold"):
        SpeakerTracker(threshold=0)
    with pytest.raises(AudioError, match="shape"):
        speaker_features(np.zeros((10, 2), np.int16), 24000)
    with pytest.raises(AudioError, match="dtype"):
        speaker_features(np.zeros(10, np.int64), 24000)
