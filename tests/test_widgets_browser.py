"""The widgets in a real browser: JupyterLab on loopback, a live kernel, headless Debian Chromium via Playwright.

One notebook shows a Timeline and a linked EventInspector on a recorded (synthetic) log. The test checks what a
person would see and do: the waveform is drawn, every tier shows the expected number of spans, a click on a span
plays exactly that span and reaches Python as ``timeline.selection``, hovering fetches the event's JSON, and
selecting a row in the inspector highlights the event in the timeline (through the Python link).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE / "browser_fixtures"))

from lab import CHROMIUM, jupyter_lab, launch_chromium, notebook_url, open_notebook  # noqa: E402

pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    pytest.skip("headless browser test needs Debian chromium at /usr/bin/chromium (apt-get install chromium; "
                "`make test` installs it)", allow_module_level=True)
playwright_sync = pytest.importorskip("playwright.sync_api", reason="pip package playwright is not installed")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    from synthetic import write_fixture_log

    root = tmp_path_factory.mktemp("lab")
    log, load_code = write_fixture_log(root / "log", seconds=24.0, turns=4, seed=3)
    sel_path = root / "selection.json"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell(load_code),
        nbformat.v4.new_code_cell(
            "import json\nfrom rtlab.widgets import Timeline, EventInspector\n"
            "tl = Timeline(log)\n"
            f"tl.observe(lambda ch: open({str(sel_path)!r}, 'w').write(json.dumps(ch['new'])), 'selection')\n"
            "tl"),
        nbformat.v4.new_code_cell("ins = EventInspector(log, timeline=tl, height=220)\nins"),
        nbformat.v4.new_code_cell("tl2 = Timeline(log, sources=['in-session'], audio='segments')\ntl2"),
    ]
    with jupyter_lab(root) as server:
        nbformat.write(nb, server["work"] / "widgets.ipynb")
        yield {"url": notebook_url(server, "widgets.ipynb"), "log": log, "selection_path": sel_path, "root": root}


@pytest.fixture(scope="module")
def page(lab: dict) -> Iterator[object]:
    with playwright_sync.sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            pg = browser.new_page(viewport={"width": 1500, "height": 1100})
            errors: list[str] = []
            pg.on("pageerror", lambda exc: errors.append(str(exc)))
            open_notebook(pg, lab["url"])
            pg.wait_for_selector(".rtl-timeline[data-ready='1']", timeout=90_000)
            pg.wait_for_selector(".rtl-inspector[data-match-count]", timeout=60_000)
            pg.wait_for_function("() => document.querySelectorAll('.rtl-timeline').length === 2 "
                                 "&& document.querySelectorAll('.rtl-timeline')[0].querySelector('audio')",
                                 timeout=60_000)
            pg.rtl_errors = errors  # type: ignore[attr-defined]
            yield pg
        finally:
            browser.close()


def _screenshot(page: object, tmp_path: Path, name: str = "widgets.png") -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=False)  # type: ignore[attr-defined]
    out = REPO / "test-output"
    out.mkdir(exist_ok=True)
    shutil.copy(path, out / name)
    return path


def test_waveform_canvas_has_drawn_pixels(page, tmp_path) -> None:
    _screenshot(page, tmp_path, "widgets-initial.png")
    drawn = page.evaluate("""() => {
        const root = document.querySelector('.rtl-timeline');
        const canvas = root.querySelector('canvas');
        const box = root.rtl.laneBox(0);
        const dpr = window.devicePixelRatio || 1;
        const img = canvas.getContext('2d').getImageData(0, box.y * dpr, canvas.width, box.h * dpr).data;
        let dark = 0;
        for (let i = 0; i < img.length; i += 4) if (img[i] < 120 && img[i+1] < 120 && img[i+2] < 140) dark++;
        return {dark, total: img.length / 4};
    }""")
    # the fixture has 4 utterances covering ~38% of the clip: a good share of the lane is ink
    assert drawn["dark"] > 0.05 * drawn["total"], drawn


def test_tiers_show_expected_span_counts(page, lab) -> None:
    shown = page.evaluate("""() => {
        const out = {};
        for (const d of document.querySelectorAll('.rtl-timeline .rtl-row-tier')) {
            (out[d.dataset.source] ||= {})[d.dataset.tier] = Number(d.dataset.spanCount);
        }
        return out;
    }""")
    assert shown == lab["log"]._synthetic_expected


def test_click_on_span_plays_that_span_and_selects_it_in_python(page, lab, tmp_path) -> None:
    plan = lab["log"]._synthetic_plan
    page.locator(".rtl-timeline canvas").first.scroll_into_view_if_needed()
    target = page.evaluate("() => document.querySelector('.rtl-timeline').rtl.spanCenter('in-session', 'vad', 2)")
    assert target["start_ms"] == plan[2].start_ms
    page.mouse.click(target["x"], target["y"])
    page.wait_for_function("""() => { const a = document.querySelector('.rtl-timeline audio[data-kind="input"]');
                                      return a && !a.paused && a.currentTime > 0; }""", timeout=15_000)
    state = page.evaluate("""() => { const a = document.querySelector('.rtl-timeline audio[data-kind="input"]');
                                     return {t: a.currentTime, paused: a.paused}; }""")
    assert not state["paused"]
    assert abs(state["t"] - plan[2].start_ms / 1000) < 0.5, (state, plan[2])
    _screenshot(page, tmp_path, "widgets-hover.png")
    page.mouse.move(5, 5)  # hide the hover tooltip for the main picture
    _screenshot(page, tmp_path)
    # the selection travelled to the kernel (the notebook's observer writes it to a file)
    page.wait_for_function(f"() => document.querySelector('.rtl-timeline').dataset.selectedSeq === '{target['seq']}'")
    deadline = time.monotonic() + 20
    while not lab["selection_path"].exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # waiting for another process's file, not ordering our own events
    sel = json.loads(lab["selection_path"].read_text())
    assert sel == {"source": "in-session", "kind": "vad", "item_id": plan[2].item_id,
                   "start_ms": plan[2].start_ms, "end_ms": plan[2].end_ms, "seq": target["seq"]}
    # playback stops at the span's end
    page.wait_for_function("""() => document.querySelector('.rtl-timeline audio[data-kind="input"]').paused""",
                           timeout=15_000)
    t_end = page.evaluate("() => document.querySelector('.rtl-timeline audio[data-kind=\"input\"]').currentTime")
    assert plan[2].end_ms / 1000 - 0.05 <= t_end < plan[2].end_ms / 1000 + 0.4


def test_hover_fetches_event_json_on_demand(page) -> None:
    target = page.evaluate("() => document.querySelector('.rtl-timeline').rtl.spanCenter('sidecar:transcription', "
                           "'error', 0)")
    page.mouse.move(target["x"], target["y"])
    page.wait_for_function("() => (document.querySelector('.rtl-tip-json')?.textContent || '').includes("
                           "'input_audio_buffer_commit_empty')", timeout=15_000)
    text = page.locator(".rtl-tip-json").text_content()
    assert json.loads(text)["seq"] == target["seq"]


def test_segments_mode_fetches_and_plays_the_span_on_demand(page, lab) -> None:
    plan = lab["log"]._synthetic_plan
    root = page.locator(".rtl-timeline").nth(1)
    root.scroll_into_view_if_needed()
    assert root.get_attribute("data-audio-status") == "segments"
    target = page.evaluate("() => document.querySelectorAll('.rtl-timeline')[1].rtl.spanCenter('in-session', "
                           "'item', 3)")
    page.mouse.click(target["x"], target["y"])
    js = "document.querySelectorAll('.rtl-timeline')[1].querySelector('audio[data-kind=\"segment\"]')"
    page.wait_for_function(f"() => {{ const a = {js}; return a && !a.paused && a.currentTime > 0; }}",
                           timeout=15_000)
    state = page.evaluate(f"() => {{ const a = {js}; return {{t: a.currentTime, off: Number(a.dataset.offsetMs)}}; }}")
    assert abs(state["off"] + 1000 * state["t"] - plan[3].start_ms) < 500, (state, plan[3])


def test_inspector_row_selects_span_in_timeline(page, lab, tmp_path) -> None:
    n = len(lab["log"].to_frame())
    assert page.locator(".rtl-inspector").get_attribute("data-match-count") == str(n)
    # the table was scrolled to the span clicked earlier; pick a visible row of another event
    current = page.locator(".rtl-inspector").get_attribute("data-selected-seq")
    row = page.locator(f".rtl-inspector .rtl-tr:not([data-seq='{current}'])").nth(2)
    row.scroll_into_view_if_needed()
    seq = row.get_attribute("data-seq")
    row.click()
    # inspector → Python link → timeline.selection → timeline view
    page.wait_for_function(f"() => document.querySelector('.rtl-timeline').dataset.selectedSeq === '{seq}'",
                           timeout=15_000)
    page.wait_for_function("() => (document.querySelector('.rtl-inspector .rtl-json').textContent || '')"
                           f".includes('\"seq\": {seq}')", timeout=15_000)
    assert page.locator(".rtl-inspector .rtl-tr.rtl-selected").get_attribute("data-seq") == seq
    _screenshot(page, tmp_path, "widgets-inspector.png")
    assert not page.rtl_errors  # no uncaught errors in the page
