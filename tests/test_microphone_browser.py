"""Speak into a run from a real browser: JupyterLab, a live kernel, headless Debian Chromium with a fake microphone.

Chromium's fake capture device plays a bundled clip (``--use-file-for-fake-audio-capture``) as if someone spoke
it into the microphone. The test clicks Start and Stop as a person would; in between, the page's AudioWorklet
resamples the capture to 24 kHz PCM16 and sends binary frames to the kernel, where a ``Microphone`` source feeds
a running ``arun_sidecar`` (a voice session with in-session transcription plus a transcription-session sidecar)
against the embedded emulator. It checks that the transcripts of both sources appear (in Python and in the
LiveView), that they are the clip's words, and that the recorded input track in the event log is the clip.

Two more browsers start without a usable microphone (permission denied, no device) and check the widget's message
and the error the waiting run ends with.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE / "browser_fixtures"))

from lab import CHROMIUM, jupyter_lab, launch_chromium, notebook_url, open_notebook  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not CHROMIUM.exists():
    pytest.skip("headless browser test needs Debian chromium at /usr/bin/chromium (apt-get install chromium; "
                "`make test` installs it)", allow_module_level=True)
playwright_sync = pytest.importorskip("playwright.sync_api", reason="pip package playwright is not installed")

CLIP = "monologue"
LEAD_S, TRAIL_S = 1.0, 1.5  # silence around the clip in the fake device's file


def fake_capture_wav(path: Path) -> tuple[Path, float]:
    """The clip as Chromium's fake capture file wants it: PCM16 mono WAV at 48 kHz, with silence around it.

    Returns the path and the time (s) in the file where the speech of the clip ends.
    """
    from rtlab.audio import concat, load, save, silence
    from rtlab.data import clip_path

    clip = load(clip_path(CLIP)).resample(48000)
    save(concat(silence(LEAD_S * 1000, 48000), clip, silence(TRAIL_S * 1000, 48000)), path)
    return path, LEAD_S + clip.duration_s


def _wait_file(path: Path, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)  # waiting for another process (the kernel) to write its result, not ordering our events
    assert path.exists(), f"the kernel wrote no {path.name} within {timeout} s"
    return json.loads(path.read_text())


def _screenshot(page: object, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=False)  # type: ignore[attr-defined]
    out = REPO / "test-output"
    out.mkdir(exist_ok=True)
    shutil.copy(path, out / name)


SETUP = """\
import asyncio, json
from pathlib import Path
from rtlab.analysis import turns as turns_of  # noqa: E402
from rtlab import SessionConfig, Target, TranscriptionSidecar, arun_sidecar
from rtlab.log import EventLog
from rtlab.widgets import LiveView, Microphone

OUT = Path({out!r})
target = Target.local(seed=7)
mic = Microphone()
mic"""

RUN = """\
# the run goes on in the background: the kernel must stay free to hear the microphone's messages
log = EventLog.create(OUT / "run" / "events.jsonl")
view = LiveView(log)
display(view)
source = mic.source()
task = asyncio.ensure_future(arun_sidecar(source, voice=(target, SessionConfig.realtime()),
                                          sidecars=[TranscriptionSidecar(model="gpt-4o-transcribe")],
                                          log=log, progress=False))

def finished(t):
    try:
        t.result()
        log.close()
        view.stop()
        turns = turns_of(log)
        result = {"turns": turns[["source", "transcript", "audio_start_ms", "audio_end_ms"]].to_dict("records"),
                  "view": view.transcripts, "captured_ms": source.captured_ms, "device_rate": source.device_rate,
                  "sent": source.sent_samples, "received": source.received_samples, "frames": source.frames}
    except BaseException as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    (OUT / "result.json").write_text(json.dumps(result, default=str))

task.add_done_callback(finished)"""

REFUSED = """\
# a run waiting for the microphone, in the background; it must end with the browser's error
log = EventLog.create(OUT / "refused" / "events.jsonl")
source = mic.source()
task = asyncio.ensure_future(arun_sidecar(source, voice=(target, SessionConfig.realtime()), sidecars=[],
                                          log=log, progress=False))

def finished(t):
    exc = t.exception()
    (OUT / "refused.json").write_text(json.dumps({"exception": type(exc).__name__ if exc else None,
                                                  "message": str(exc) if exc else None,
                                                  "error": mic.error, "error_name": mic.error_name,
                                                  "state": mic.state}))

task.add_done_callback(finished)"""


def _notebook(*cells: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    return nb


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("miclab")
    wav, speech_end_s = fake_capture_wav(root / "fake-mic.wav")
    with jupyter_lab(root) as server:
        for name, out, cells in (("speak.ipynb", "speak", (SETUP, RUN)), ("denied.ipynb", "denied", (SETUP, REFUSED)),
                                 ("nodevice.ipynb", "nodevice", (SETUP, REFUSED))):
            (root / out).mkdir()
            nbformat.write(_notebook(*(c.format(out=str(root / out)) if "{out!r}" in c else c for c in cells)),
                           server["work"] / name)
        yield {**server, "root": root, "wav": wav, "speech_end_s": speech_end_s}


def _open(pw: object, lab: dict, name: str, *flags: str) -> tuple[object, object, list[str]]:
    browser = launch_chromium(pw, *flags)
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    open_notebook(page, notebook_url(lab, name))
    page.wait_for_selector(".rtl-mic[data-state='idle']", timeout=90_000)
    return browser, page, errors


# ------------------------------------------------------------------------------------------------------------
# Speech in the page becomes transcripts in Python
# ------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def spoken(lab: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    shots = tmp_path_factory.mktemp("micshots")
    with playwright_sync.sync_playwright() as pw:
        browser, page, errors = _open(pw, lab, "speak.ipynb", "--use-fake-ui-for-media-stream",
                                      "--use-fake-device-for-media-stream",
                                      f"--use-file-for-fake-audio-capture={lab['wav']}%noloop")
        try:
            page.wait_for_selector(".rtl-live", timeout=90_000)
            page.wait_for_function("() => document.querySelector('.jp-Notebook').querySelectorAll("
                                   "'.jp-InputArea-prompt').length >= 2 && [...document.querySelectorAll("
                                   "'.jp-InputArea-prompt')].every(p => /\\[\\d+\\]/.test(p.textContent))",
                                   timeout=90_000)  # both cells ran: the run waits for audio in the background
            page.click(".rtl-mic-start")
            page.wait_for_selector(".rtl-mic[data-state='recording']", timeout=30_000)
            # the page has sent the whole clip (and some silence after it): the fake device started at the file's
            # start when getUserMedia opened it, at most LEAD_S before the worklet listened
            need = int((lab["speech_end_s"] + 0.6) * 24000)
            page.wait_for_function(f"() => Number(document.querySelector('.rtl-mic').dataset.sentSamples) >= {need}",
                                   timeout=90_000)
            _screenshot(page, shots, "microphone-recording.png")
            page.click(".rtl-mic-stop")
            page.wait_for_selector(".rtl-mic[data-state='stopped']", timeout=30_000)
            result = _wait_file(lab["root"] / "speak" / "result.json", 120)
            page.wait_for_function("() => document.querySelectorAll('.rtl-live-col[data-source] "
                                   ".rtl-live-line:not(.rtl-partial)').length >= 6", timeout=60_000)
            view = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.rtl-live-col')].map(
                c => [c.dataset.source, [...c.querySelectorAll('.rtl-live-line:not(.rtl-partial)')]
                                         .map(l => l.textContent)]))""")
            _screenshot(page, shots, "microphone-transcripts.png")
        finally:
            browser.close()
    # the browser is gone before the tests run: the next ones start their own Playwright
    return {"result": result, "view": view, "errors": errors}


def test_speech_in_the_page_becomes_transcripts_in_session_and_in_the_sidecar(spoken) -> None:
    from rtlab.analysis.metrics import wer
    from rtlab.data import clip_path, references_for

    result = spoken["result"]
    assert "error" not in result, result
    by_source: dict[str, list[str]] = {}
    for turn in sorted(result["turns"], key=lambda t: t["audio_start_ms"]):
        by_source.setdefault(turn["source"], []).append(turn["transcript"] or "")
    refs = [r["text"] for r in references_for(clip_path(CLIP))]
    assert set(by_source) == {"in-session", "sidecar:transcription"}
    for source, texts in by_source.items():
        assert len(texts) == len(refs), (source, texts)
        assert wer(refs, texts) < 0.35, (source, texts, refs)


def test_the_live_view_in_the_page_shows_both_sources(spoken) -> None:
    result, view = spoken["result"], spoken["view"]
    assert set(view) == {"in-session", "sidecar:transcription"}
    for source, lines in view.items():
        python = [t["text"] for t in result["view"][source]]
        assert lines == python and len(lines) == 3


def test_audio_travelled_as_binary_frames_at_24khz_without_loss(spoken) -> None:
    result = spoken["result"]
    assert result["sent"] == result["received"] > 0
    assert result["frames"] == pytest.approx(result["received"] / 480, abs=1)  # 20 ms frames
    assert result["device_rate"] in (44100, 48000)  # the browser captured at its own rate; the worklet resampled
    assert not spoken["errors"]


def test_the_recording_is_the_clip_in_the_event_log(spoken, lab) -> None:
    from scipy.signal import correlate

    from rtlab.audio import load
    from rtlab.data import clip_path
    from rtlab.log import EventLog

    samples, rate = EventLog.load(lab["root"] / "speak" / "run" / "events.jsonl").input_audio()
    clip = load(clip_path(CLIP)).to_float()
    rec = samples.astype(np.float32) / 32768
    assert rate == 24000
    xc = correlate(rec, clip, mode="valid", method="fft")
    k = int(np.argmax(np.abs(xc)))
    window = rec[k:k + clip.size]
    similarity = abs(xc[k]) / (np.linalg.norm(window) * np.linalg.norm(clip))
    assert similarity > 0.9, similarity  # the same waveform, resampled 24k -> 48k (file) -> 24k (worklet)
    assert k / rate <= LEAD_S + 0.05  # the clip starts where the file put it, or earlier if the start was missed


# ------------------------------------------------------------------------------------------------------------
# No microphone
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("notebook", "flags", "name", "shown"), [
    ("denied.ipynb", ("--use-fake-device-for-media-stream", "--deny-permission-prompts"), "NotAllowedError",
     "Microphone access was denied"),
    ("nodevice.ipynb", ("--use-fake-ui-for-media-stream",), "NotFoundError", "No microphone was found"),
], ids=["permission-denied", "no-device"])
def test_a_refused_microphone_is_explained_in_the_widget_and_ends_the_run(lab, tmp_path, notebook, flags, name,
                                                                          shown) -> None:
    with playwright_sync.sync_playwright() as pw:
        browser, page, errors = _open(pw, lab, notebook, *flags)
        try:
            page.wait_for_function("() => [...document.querySelectorAll('.jp-InputArea-prompt')]"
                                   ".every(p => /\\[\\d+\\]/.test(p.textContent))", timeout=90_000)
            page.click(".rtl-mic-start")
            page.wait_for_selector(".rtl-mic[data-state='error']", timeout=30_000)
            message = page.locator(".rtl-mic-message").text_content()
            _screenshot(page, tmp_path, f"microphone-{name}.png")
            assert page.locator(".rtl-mic").get_attribute("data-error-name") == name
            assert message.startswith(shown) and "press Start again" in message
            out = _wait_file(lab["root"] / notebook.removesuffix(".ipynb") / "refused.json", 60)
        finally:
            browser.close()
    assert out["exception"] == "MicrophoneError" and out["message"].startswith(shown)
    assert (out["error_name"], out["state"]) == (name, "error") and out["error"].startswith(shown)
    assert not errors
