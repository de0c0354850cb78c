"""The command line: compare, report and probe, run as a user runs them (subprocesses, real emulator)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pandas as pd
import pytest

from rtlab.data import clip_path


def rtlab(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "rtlab.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    bad = out / "not-audio.wav"
    bad.write_text("this is not a wav file")
    missing = out / "missing.wav"
    res = rtlab("compare", clip_path("short"), bad, clip_path("monologue"), missing, "--speed", "inf", "--quiet",
                "--out", out / "run")
    return res, out / "run", bad, missing


def test_compare_writes_events_turns_and_a_self_contained_report(compared):
    res, run, _, _ = compared
    for clip in ("short", "monologue"):
        assert (run / clip / "events.jsonl").exists()
        assert (run / clip / "events.input.wav").exists()
    turns = pd.read_csv(run / "turns.csv")
    assert {"file", "source", "item_id", "audio_start_ms", "audio_end_ms", "transcript", "first_text_after_start_ms",
            "final_after_stop_ms", "final_after_eos_ms", "n_deltas", "cost_usd", "cost_basis", "wer"} <= set(turns.columns)
    assert set(turns["file"]) == {"short.wav", "monologue.wav"}
    assert set(turns["source"]) == {"in-session", "sidecar:transcription", "sidecar:local", "sidecar:oob"}
    # Every turn of both clips, from every source, was scored against the bundled references.
    assert len(turns) == 4 * (1 + 3)
    assert turns["wer"].notna().all() and turns["wer"].mean() < 0.3
    html = (run / "report.html").read_text()
    assert "<img" in html and "data:image/png;base64," in html
    assert not re.search(r"""(src|href)=["']https?://""", html), "the report must not load anything remote"
    # The summary table is printed.
    assert "in-session" in res.stdout and "sidecar:oob" in res.stdout


def test_compare_reports_each_bad_file_in_one_line_and_goes_on(compared):
    res, _, bad, missing = compared
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if ln.strip() and "note:" not in ln]
    assert "Traceback" not in res.stderr
    assert any(str(bad) in ln and "not an audio file" in ln for ln in lines), res.stderr
    assert any(str(missing) in ln and "not found" in ln for ln in lines), res.stderr
    assert len(lines) == 2, res.stderr


def test_report_rebuilds_from_saved_logs(compared, tmp_path):
    _, run, _, _ = compared
    res = rtlab("report", run / "short", run / "monologue" / "events.jsonl", "--out", tmp_path)
    assert res.returncode == 0, res.stderr
    rebuilt = pd.read_csv(tmp_path / "turns.csv")
    original = pd.read_csv(run / "turns.csv")
    cols = ["file", "source", "audio_start_ms", "audio_end_ms", "transcript", "wer"]
    key = ["file", "source", "audio_start_ms"]
    pd.testing.assert_frame_equal(rebuilt[cols].sort_values(key).reset_index(drop=True),
                                  original[cols].sort_values(key).reset_index(drop=True))
    assert (tmp_path / "report.html").exists()


def test_report_on_a_torn_log_still_works(compared, tmp_path):
    _, run, _, _ = compared
    src = run / "short" / "events.jsonl"
    torn = tmp_path / "torn" / "events.jsonl"
    torn.parent.mkdir()
    for f in (run / "short").iterdir():
        if f.is_file():
            (torn.parent / f.name).write_bytes(f.read_bytes())
    data = src.read_bytes()
    torn.write_bytes(data[: len(data) - 40])  # cut the last line in half
    res = rtlab("report", torn, "--out", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out" / "report.html").exists()


def test_report_on_a_missing_log_is_one_line(tmp_path):
    res = rtlab("report", tmp_path / "nope.jsonl", "--out", tmp_path / "out")
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    assert str(tmp_path / "nope.jsonl") in res.stderr


def test_compare_rejects_a_bad_sidecar_spec_in_one_line(tmp_path):
    res = rtlab("compare", clip_path("short"), "--sidecar", "pigeon", "--out", tmp_path)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert "unknown sidecar spec 'pigeon'" in res.stderr


def test_probe_cli_writes_a_profile_the_emulator_loads(tmp_path):
    out = tmp_path / "azure.json"
    res = rtlab("probe", "--target", "local-azure", "--model", "gpt-realtime-whisper", "--model",
                "gpt-4o-transcribe", "--surface", "session-model", "--surface", "in-session-ga",
                "--speed", "inf", "--out", out)
    assert res.returncode == 0, res.stderr
    profile = json.loads(out.read_text())
    assert profile["session_models"]["gpt-realtime-whisper"]["status"] == 400
    from rtlab.emulator.profiles import load_profile

    assert load_profile(out).session_outcome("gpt-realtime-whisper").outcome == "handshake_error"
    report = out.with_suffix(".txt").read_text()
    assert "OpperationNotSupported" in report  # Azure's reported spelling (Microsoft Q&A answers/a/12820829)
