"""Widget scale (issue 5): a 60-minute session with about 50,000 events.

Targets: the Timeline's payload (every binary trait plus the JSON state) ≤ 10 MB, and it renders in ≤ 1 s in a
real browser (headless Debian Chromium through Playwright, when /usr/bin/chromium is present).

Measured:

- Python: time to build the Timeline's peaks and spans (no audio), to encode the playback audio (OGG/Opus for all
  lanes; encoded on a worker thread in a notebook), and to build the EventInspector; sizes of every trait.
- Browser: ``timeline.js`` rendered from the same state with a minimal model (no JupyterLab): time from
  ``render()`` to the first painted frame, then the median time of a full redraw after a zoom. The state is
  served to the page by Playwright request routing (binary as binary, no base64).

The session is generated (seeded) through ``rtlab.log.EventLog.record`` (tests/browser_fixtures/synthetic.py),
so the widgets read a real on-disk log. Run: ``python -m bench widgets``. Writes ``bench/results/widgets.json``.
Environment: ``RTLAB_BENCH_WIDGET_MINUTES`` (default 60), ``RTLAB_BENCH_WIDGET_EVENTS`` (default 50000).
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results" / "widgets.json"
CHROMIUM = Path("/usr/bin/chromium")
TARGET_BYTES = 10_000_000
TARGET_RENDER_S = 1.0


def _synthetic() -> Any:
    path = REPO / "tests" / "browser_fixtures" / "synthetic.py"
    spec = importlib.util.spec_from_file_location("rtlab_bench_synthetic", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def _browser_render(tl: Any) -> dict[str, float] | None:
    """Render timeline.js in headless Chromium from ``tl``'s state; seconds to first paint and per redraw."""
    if not CHROMIUM.exists():
        return None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    static = Path(tl._esm.path if hasattr(tl._esm, "path") else "").parent
    static = REPO / "lib" / "rtlab" / "widgets" / "static" if not static.name else static
    state = tl.get_state()
    binary = {k: bytes(v) for k, v in state.items() if isinstance(v, bytes | bytearray | memoryview)}
    plain = {k: v for k, v in state.items() if k not in binary and not k.startswith("_")}
    page_html = """<!doctype html><html><head><meta charset="utf-8"><link rel="stylesheet" href="widgets.css"></head>
<body style="width:1400px"><div id="host"></div><script type="module">
import widget from "./timeline.js";
const plain = await (await fetch("state.json")).json();
const names = __NAMES__;
const bin = {};
for (const n of names) bin[n] = new DataView(await (await fetch("bin/" + n)).arrayBuffer());
const model = {
  get: (k) => (k in bin ? bin[k] : plain[k]), set: (k, v) => { plain[k] = v; }, save_changes() {},
  on() {}, off() {}, send() {},
};
await new Promise(requestAnimationFrame);
const t0 = performance.now();
widget.render({ model, el: document.getElementById("host") });
await new Promise(requestAnimationFrame);
const t1 = performance.now();
const root = document.querySelector(".rtl-timeline");
const plus = root.querySelectorAll(".rtl-btn")[2], minus = root.querySelectorAll(".rtl-btn")[1];
const redraws = [];
for (let i = 0; i < 7; i++) {
  const s = performance.now();
  (i % 2 ? minus : plus).click();
  redraws.push(performance.now() - s);
}
window.rtlBench = { first_paint_ms: t1 - t0, redraw_ms: redraws, spans: Number(root.querySelectorAll(".rtl-row-tier").length) };
</script></body></html>""".replace("__NAMES__", json.dumps(sorted(binary)))
    routes = {
        "index.html": (page_html.encode(), "text/html"),
        "timeline.js": ((static / "timeline.js").read_bytes(), "text/javascript"),
        "widgets.css": ((static / "widgets.css").read_bytes(), "text/css"),
        "state.json": (json.dumps(plain, default=str).encode(), "application/json"),
        **{f"bin/{k}": (v, "application/octet-stream") for k, v in binary.items()},
    }
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})

            def handle(route: Any) -> None:
                name = route.request.url.split("//rtlab.bench/", 1)[1]
                body, ctype = routes[name]
                route.fulfill(status=200, body=body, headers={"content-type": ctype})

            page.route("http://rtlab.bench/**", handle)
            page.goto("http://rtlab.bench/index.html")
            page.wait_for_function("() => window.rtlBench", timeout=120_000)
            res = page.evaluate("() => window.rtlBench")
        finally:
            browser.close()
    return {"first_paint_s": res["first_paint_ms"] / 1000.0,
            "redraw_median_s": statistics.median(res["redraw_ms"]) / 1000.0}


def run() -> dict[str, Any]:
    from rtlab.widgets import EventInspector, Timeline
    from rtlab.widgets import payload as P

    minutes = float(os.environ.get("RTLAB_BENCH_WIDGET_MINUTES", "60"))
    events = int(os.environ.get("RTLAB_BENCH_WIDGET_EVENTS", "50000"))
    syn = _synthetic()
    with tempfile.TemporaryDirectory(prefix="rtlab-bench-widgets-") as tmp:
        turns = max(1, int(minutes * 10))  # a turn every 6 s
        appends = int(minutes * 60 * 5)  # the client streams 200 ms chunks
        t0 = time.perf_counter()
        log = syn.synthetic_session(seconds=minutes * 60, turns=turns, events=max(events - appends, turns * 40),
                                    seed=1, path=Path(tmp) / "events.jsonl", with_error=True)
        gen_s = time.perf_counter() - t0
        n_events = len(log)

        t0 = time.perf_counter()
        tl = Timeline(log)  # audio="auto": an hour is past full_audio_max_s, so spans play as on-demand segments
        build_s = time.perf_counter() - t0
        auto_status = tl.audio_status
        auto_sizes = tl.payload_bytes()
        t0 = time.perf_counter()
        for k in range(10):
            tl.audio_segment(0, 60_000 + 300_000 * k, 63_000 + 300_000 * k)
        segment_s = (time.perf_counter() - t0) / 10

        t0 = time.perf_counter()
        png = tl.to_png()
        png_s = time.perf_counter() - t0

        # the worst case for the payload target: full OGG/Opus tracks of every lane in the state
        t0 = time.perf_counter()
        blob, index = tl._encode_audio("opus")
        audio_s = time.perf_counter() - t0
        tl._set_audio(blob, index)
        sizes = tl.payload_bytes()

        t0 = time.perf_counter()
        ins = EventInspector(log)
        inspector_s = time.perf_counter() - t0
        ins_state = ins.get_state()
        ins_bytes = sum(len(v) for v in ins_state.values() if isinstance(v, bytes | bytearray | memoryview))
        ins_bytes += len(json.dumps({k: v for k, v in ins_state.items() if not isinstance(v, bytes)}, default=str))

        t0 = time.perf_counter()
        ins.text = "commit_empty"
        text_filter_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ins.text = ""
        ins.sources = ["sidecar:transcription"]
        source_filter_s = time.perf_counter() - t0

        browser = _browser_render(tl)
        n_spans = len(tl._spans)

    rows = [
        {"metric": "events in the log", "value": n_events, "unit": "", "target": f"≈{events}", "ok": None},
        {"metric": "spans drawn", "value": n_spans, "unit": "", "target": None, "ok": None},
        {"metric": f"timeline payload, audio='auto' ({auto_status})", "value": auto_sizes["total"] / 1e6,
         "unit": "MB", "target": "≤ 10", "ok": auto_sizes["total"] <= TARGET_BYTES},
        {"metric": "on-demand 3 s segment (Python side)", "value": segment_s, "unit": "s", "target": None,
         "ok": None},
        {"metric": "timeline payload, full Opus tracks", "value": sizes["total"] / 1e6, "unit": "MB",
         "target": "≤ 10", "ok": sizes["total"] <= TARGET_BYTES},
        {"metric": "  of which audio (OGG/Opus, all lanes)", "value": sizes.get("audio", 0) / 1e6, "unit": "MB",
         "target": None, "ok": None},
        {"metric": "  of which peaks", "value": sizes.get("peaks", 0) / 1e6, "unit": "MB", "target": None, "ok": None},
        {"metric": "  of which spans", "value": sizes.get("spans", 0) / 1e6, "unit": "MB", "target": None, "ok": None},
        {"metric": "  of which JSON state (labels, ES module)", "value": sizes["json"] / 1e6, "unit": "MB",
         "target": None, "ok": None},
        {"metric": "timeline build: load audio, peaks, spans (Python)", "value": build_s, "unit": "s",
         "target": None, "ok": None},
        {"metric": "full Opus encode, lanes in parallel (worker thread)", "value": audio_s, "unit": "s",
         "target": None, "ok": None},
        {"metric": f"static PNG fallback ({len(png) // 1000} kB)", "value": png_s, "unit": "s", "target": None,
         "ok": None},
        {"metric": "inspector build (Python)", "value": inspector_s, "unit": "s", "target": None, "ok": None},
        {"metric": "inspector payload", "value": ins_bytes / 1e6, "unit": "MB", "target": None, "ok": None},
        {"metric": "inspector text filter (first, builds index)", "value": text_filter_s, "unit": "s",
         "target": None, "ok": None},
        {"metric": "inspector source filter", "value": source_filter_s, "unit": "s", "target": None, "ok": None},
    ]
    if browser:
        rows += [
            {"metric": "browser render to first paint", "value": browser["first_paint_s"], "unit": "s",
             "target": "≤ 1", "ok": browser["first_paint_s"] <= TARGET_RENDER_S},
            {"metric": "browser redraw after zoom (median)", "value": browser["redraw_median_s"], "unit": "s",
             "target": None, "ok": None},
        ]
    else:
        rows.append({"metric": "browser render", "value": None, "unit": "s", "target": "≤ 1",
                     "ok": None, "note": "skipped: /usr/bin/chromium or playwright missing"})
    result = {
        "benchmark": "widgets",
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "session_minutes": minutes,
        "events": n_events,
        "spans": n_spans,
        "generate_s": round(gen_s, 2),
        "payload_bytes": sizes,
        "payload_bytes_auto": auto_sizes,
        "opus": P.opus_available(),
        "rows": rows,
        "ok": all(r["ok"] is not False for r in rows),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


if __name__ == "__main__":
    from bench.__main__ import print_table

    print_table("widgets", run())
