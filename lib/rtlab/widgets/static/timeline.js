// rtlab Timeline view: waveform lanes (peaks pyramid) and event tiers on a 2D canvas.
// Plain ES module, no imports: works offline in JupyterLab 4 and VS Code (anywidget front end).
// Data arrives as binary traits (DataView); event JSON is fetched on hover with {type: "get_event", seq}.

const AXIS_H = 24;
const LANE_H = 58;
const SOURCE_H = 18;
const TIER_H = 17;
const LABEL_W = 190;
const MIN_SPAN_PX = 2;
const TICK_TOL_PX = 4;

function bytesOf(dv) {
  // A fresh, aligned copy (a DataView from the comm can start at any byte offset).
  if (!dv) return new Uint8Array(0);
  if (dv instanceof ArrayBuffer) return new Uint8Array(dv.slice(0));
  return new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength).slice();
}

function decodeSpans(model) {
  const meta = model.get("span_meta") || {};
  const n = meta.n || 0;
  const raw = bytesOf(model.get("spans"));
  const cols = {};
  let off = 0;
  for (const name of meta.int_columns || []) {
    cols[name] = new Int32Array(raw.buffer, off, n);
    off += 4 * n;
  }
  for (const name of meta.byte_columns || []) {
    cols[name] = new Uint8Array(raw.buffer, off, n);
    off += n;
  }
  // Python sorts by (source, tier, start): each tier row is one contiguous range.
  const rows = new Map();
  for (let i = 0; i < n; i++) {
    const key = cols.source[i] * 256 + cols.tier[i];
    let r = rows.get(key);
    if (!r) { r = { lo: i, hi: i + 1, maxDur: 0 }; rows.set(key, r); }
    r.hi = i + 1;
    const d = cols.end_ms[i] - cols.start_ms[i];
    if (d > r.maxDur) r.maxDur = d;
  }
  return { meta, n, cols, rows };
}

function decodePeaks(model) {
  const raw = bytesOf(model.get("peaks"));
  const all = new Int8Array(raw.buffer);
  const byLane = new Map();
  for (const lvl of model.get("peaks_index") || []) {
    const arr = all.subarray(lvl.offset, lvl.offset + 2 * lvl.count);
    if (!byLane.has(lvl.lane)) byLane.set(lvl.lane, []);
    byLane.get(lvl.lane).push({ binMs: lvl.bin_ms, count: lvl.count, data: arr, peak: lvl.peak });
  }
  return byLane;
}

function niceStep(msPerPx) {
  const steps = [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 15000, 30000, 60000, 120000, 300000, 600000, 1200000];
  for (const s of steps) if (s / msPerPx >= 90) return s;
  return steps[steps.length - 1];
}

function fmtSec(ms, step) {
  const s = ms / 1000;
  const digits = step < 100 ? 2 : step < 1000 ? 1 : 0;
  return s.toFixed(digits) + " s";
}

function lowerBound(arr, lo, hi, value) {
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (arr[mid] < value) lo = mid + 1; else hi = mid;
  }
  return lo;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function render({ model, el: host }) {
  const root = el("div", "rtl-timeline");
  const toolbar = el("div", "rtl-toolbar");
  const body = el("div", "rtl-body");
  const labels = el("div", "rtl-labels");
  const plot = el("div", "rtl-plot");
  const canvas = el("canvas", "rtl-canvas");
  const tip = el("div", "rtl-tip");
  const status = el("span", "rtl-status");
  plot.append(canvas);
  body.append(labels, plot);
  root.append(toolbar, body, tip);
  host.append(root);

  let spans = decodeSpans(model);
  let peaks = decodePeaks(model);
  let lanes = model.get("lanes") || [];
  let duration = Math.max(1, model.get("duration_ms") || 1);
  let view = { start: 0, end: duration };
  let rows = [];
  let hover = -1;
  let selected = -1;
  let selRange = null; // [start_ms, end_ms] of the selection
  let playing = null; // {audio, lane, endMs}
  let playheadMs = null;
  let rafId = 0;
  const audios = new Map(); // lane index -> HTMLAudioElement
  let segAudio = null; // on-demand segment while full tracks encode
  const urls = [];
  const eventCache = new Map();
  let hoverSeq = null;

  // ---------- toolbar ----------
  const btn = (label, title, fn) => {
    const b = el("button", "rtl-btn", label);
    b.title = title;
    b.addEventListener("click", fn);
    toolbar.append(b);
    return b;
  };
  const playBtn = btn("▶", "play / pause the input from the playhead", () => togglePlay());
  btn("−", "zoom out", () => zoom(2, null));
  btn("+", "zoom in", () => zoom(0.5, null));
  btn("fit", "show the whole session", () => { view = { start: 0, end: duration }; draw(); });
  toolbar.append(status);
  const legend = el("span", "rtl-legend");
  toolbar.append(legend);

  function buildLegend() {
    legend.replaceChildren();
    const meta = spans.meta;
    const present = new Set();
    for (const key of spans.rows.keys()) present.add(meta.tiers[key % 256]);
    for (const tier of meta.tiers || []) {
      if (!present.has(tier)) continue;
      const item = el("span", "rtl-legend-item");
      const sw = el("span", "rtl-swatch");
      sw.style.background = meta.colors[tier];
      if ((meta.tick_tiers || []).includes(tier)) sw.classList.add("rtl-swatch-tick");
      item.append(sw, document.createTextNode(meta.tier_labels[tier] || tier));
      legend.append(item);
    }
  }

  // ---------- layout ----------
  function layout() {
    rows = [];
    let y = AXIS_H;
    lanes.forEach((lane, i) => { rows.push({ kind: "lane", lane: i, y, h: LANE_H, name: lane.name }); y += LANE_H + 4; });
    const meta = spans.meta;
    (meta.sources || []).forEach((src, si) => {
      const tiers = (meta.tiers || []).map((t, ti) => ({ t, ti })).filter(({ ti }) => spans.rows.has(si * 256 + ti));
      if (!tiers.length) return;
      rows.push({ kind: "source", source: si, y, h: SOURCE_H, name: src });
      y += SOURCE_H;
      for (const { t, ti } of tiers) {
        rows.push({ kind: "tier", source: si, tier: ti, y, h: TIER_H, name: meta.tier_labels[t] || t, range: spans.rows.get(si * 256 + ti) });
        y += TIER_H;
      }
      y += 4;
    });
    const total = y + 4;
    labels.replaceChildren();
    labels.style.height = total + "px";
    for (const r of rows) {
      const d = el("div", "rtl-row-label rtl-row-" + r.kind);
      d.style.top = r.y + "px";
      d.style.height = r.h + "px";
      if (r.kind === "tier") {
        const t = meta.tiers[r.tier];
        const sw = el("span", "rtl-swatch");
        sw.style.background = meta.colors[t];
        const count = r.range.hi - r.range.lo;
        d.append(sw, el("span", "rtl-tier-name", r.name), el("span", "rtl-count", String(count)));
        d.dataset.source = meta.sources[r.source];
        d.dataset.tier = t;
        d.dataset.spanCount = String(count);
      } else if (r.kind === "lane") {
        d.textContent = r.name;
        d.dataset.lane = String(r.lane);
      } else {
        d.textContent = r.name;
        d.dataset.source = r.name;
      }
      labels.append(d);
    }
    const h = model.get("height");
    body.style.maxHeight = h > 0 ? h + "px" : "";
    canvas.style.height = total + "px";
    plot.style.height = total + "px";
    root.dataset.rows = String(rows.length);
  }

  // ---------- coordinates ----------
  const width = () => plot.clientWidth || 600;
  const msPerPx = () => (view.end - view.start) / width();
  const xOf = (ms) => (ms - view.start) / msPerPx();
  const msOf = (x) => view.start + x * msPerPx();

  function clampView() {
    const span = Math.min(Math.max(view.end - view.start, 20), duration * 1.02 + 1000);
    let s = Math.max(view.start, -duration * 0.01);
    if (s + span > duration * 1.01 + 500) s = duration * 1.01 + 500 - span;
    view = { start: Math.max(s, -duration * 0.01), end: Math.max(s, -duration * 0.01) + span };
  }

  function zoom(factor, centerMs) {
    const c = centerMs ?? (view.start + view.end) / 2;
    view = { start: c - (c - view.start) * factor, end: c + (view.end - c) * factor };
    clampView();
    draw();
  }

  // ---------- drawing ----------
  function drawLane(ctx, r, w) {
    ctx.fillStyle = "#f4f5f7";
    ctx.fillRect(0, r.y, w, r.h);
    ctx.strokeStyle = "#d0d4da";
    ctx.beginPath(); ctx.moveTo(0, r.y + r.h / 2 + 0.5); ctx.lineTo(w, r.y + r.h / 2 + 0.5); ctx.stroke();
    const levels = peaks.get(r.lane);
    if (!levels || !levels.length) return;
    const mpp = msPerPx();
    let lvl = levels[0];
    for (const l of levels) if (l.binMs <= mpp) lvl = l;
    const mid = r.y + r.h / 2;
    const half = r.h / 2 - 3; // peaks are normalised to the lane's loudest sample
    ctx.fillStyle = lanes[r.lane].kind === "input" ? "#3d4451" : "#2a7f7a";
    const d = lvl.data;
    for (let px = 0; px < w; px++) {
      const t0 = msOf(px), t1 = msOf(px + 1);
      let b0 = Math.floor(t0 / lvl.binMs), b1 = Math.max(b0 + 1, Math.ceil(t1 / lvl.binMs));
      if (b1 <= 0 || b0 >= lvl.count) continue;
      b0 = Math.max(0, b0); b1 = Math.min(lvl.count, b1);
      let lo = 127, hi = -127;
      for (let b = b0; b < b1; b++) {
        if (d[2 * b] < lo) lo = d[2 * b];
        if (d[2 * b + 1] > hi) hi = d[2 * b + 1];
      }
      const yTop = mid - (hi / 127) * half, yBot = mid - (lo / 127) * half;
      ctx.fillRect(px, yTop, 1, Math.max(1, yBot - yTop));
    }
  }

  function visibleRange(r) {
    const { cols } = spans;
    const lo = lowerBound(cols.start_ms, r.range.lo, r.range.hi, view.start - r.range.maxDur - msPerPx() * TICK_TOL_PX);
    const hi = lowerBound(cols.start_ms, lo, r.range.hi, view.end + msPerPx() * TICK_TOL_PX + 1);
    return [lo, hi];
  }

  function drawTier(ctx, r, w) {
    const { cols, meta } = spans;
    const tier = meta.tiers[r.tier];
    const tick = (meta.tick_tiers || []).includes(tier);
    ctx.fillStyle = r.source % 2 ? "#fafafa" : "#ffffff";
    ctx.fillRect(0, r.y, w, r.h);
    const [lo, hi] = visibleRange(r);
    const color = meta.colors[tier];
    const y = r.y + 2, h = r.h - 4;
    ctx.fillStyle = color;
    let lastPx = -10;
    for (let i = lo; i < hi; i++) {
      const x0 = xOf(cols.start_ms[i]);
      if (tick) {
        const px = Math.round(x0);
        if (px === lastPx) continue;
        lastPx = px;
        ctx.fillRect(px - 1, y, 2, h);
      } else {
        const x1 = xOf(cols.end_ms[i]);
        const ww = Math.max(MIN_SPAN_PX, x1 - x0);
        ctx.globalAlpha = 0.85;
        ctx.fillRect(x0, y, ww, h);
        ctx.globalAlpha = 1;
        const li = cols.label[i];
        if (li >= 0 && ww > 40) {
          ctx.save();
          ctx.beginPath(); ctx.rect(x0, y, ww, h); ctx.clip();
          ctx.fillStyle = "#ffffff";
          ctx.font = "10px sans-serif";
          ctx.textBaseline = "middle";
          ctx.fillText(meta.labels[li], Math.max(x0, 0) + 3, y + h / 2 + 0.5);
          ctx.restore();
          ctx.fillStyle = color;
        }
      }
    }
  }

  function spanRowY(i) {
    const { cols } = spans;
    return rows.find((r) => r.kind === "tier" && r.source === cols.source[i] && r.tier === cols.tier[i]);
  }

  function outlineSpan(ctx, i, style, widthPx) {
    const r = spanRowY(i);
    if (!r) return;
    const { cols } = spans;
    const x0 = xOf(cols.start_ms[i]), x1 = xOf(cols.end_ms[i]);
    ctx.strokeStyle = style;
    ctx.lineWidth = widthPx;
    const ww = Math.max(x1 - x0, 2);
    ctx.strokeRect(x0 - (x1 - x0 < 2 ? 2 : 0) - 1, r.y + 1, ww + (x1 - x0 < 2 ? 4 : 0) + 2, r.h - 2);
    ctx.lineWidth = 1;
  }

  function draw() {
    const w = width();
    const total = parseFloat(canvas.style.height) || 100;
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(total * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(total * dpr);
      canvas.style.width = w + "px";
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, w, total);
    for (const r of rows) {
      if (r.kind === "lane") drawLane(ctx, r, w);
      else if (r.kind === "tier") drawTier(ctx, r, w);
      else {
        ctx.fillStyle = "#eef1f5";
        ctx.fillRect(0, r.y, w, r.h);
      }
    }
    // selected play range (or instant, for an event without a span): a band across every row
    if (selRange) {
      const x0 = xOf(selRange[0]), x1 = xOf(selRange[1]);
      ctx.fillStyle = "rgba(255, 190, 0, 0.22)";
      ctx.fillRect(x0, AXIS_H, Math.max(2, x1 - x0), total - AXIS_H);
      if (selected < 0) { ctx.fillStyle = "#e0a800"; ctx.fillRect(Math.round(x0) - 1, AXIS_H, 2, total - AXIS_H); }
    }
    // time axis
    const step = niceStep(msPerPx());
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, w, AXIS_H);
    ctx.strokeStyle = "#9aa1ab";
    ctx.fillStyle = "#333";
    ctx.font = "11px sans-serif";
    ctx.textBaseline = "top";
    ctx.beginPath(); ctx.moveTo(0, AXIS_H - 0.5); ctx.lineTo(w, AXIS_H - 0.5); ctx.stroke();
    for (let t = Math.ceil(view.start / step) * step; t <= view.end; t += step) {
      const x = Math.round(xOf(t)) + 0.5;
      ctx.beginPath(); ctx.moveTo(x, AXIS_H - 6); ctx.lineTo(x, AXIS_H); ctx.stroke();
      ctx.strokeStyle = "rgba(0,0,0,0.06)";
      ctx.beginPath(); ctx.moveTo(x, AXIS_H); ctx.lineTo(x, total); ctx.stroke();
      ctx.strokeStyle = "#9aa1ab";
      ctx.fillText(fmtSec(t, step), x + 3, 5);
    }
    if (hover >= 0) outlineSpan(ctx, hover, "#222", 1);
    if (selected >= 0) outlineSpan(ctx, selected, "#000", 2);
    if (playheadMs !== null) {
      const x = xOf(playheadMs);
      ctx.fillStyle = "#d62728";
      ctx.fillRect(Math.round(x) - 1, 0, 2, total);
    }
    root.dataset.viewStart = String(view.start);
    root.dataset.viewEnd = String(view.end);
    root.dataset.ready = "1";
  }

  // ---------- hit testing ----------
  function rowAt(y) { return rows.find((r) => y >= r.y && y < r.y + r.h); }

  function spanAt(x, y) {
    const r = rowAt(y);
    if (!r || r.kind !== "tier") return -1;
    const { cols, meta } = spans;
    const ms = msOf(x), tol = TICK_TOL_PX * msPerPx();
    const tick = (meta.tick_tiers || []).includes(meta.tiers[r.tier]);
    const [lo, hi] = visibleRange(r);
    let best = -1, bestD = Infinity;
    for (let i = lo; i < hi; i++) {
      const s = cols.start_ms[i], e = cols.end_ms[i];
      const d = tick ? Math.abs(ms - s) : (ms < s ? s - ms : ms > e ? ms - e : -1 / Math.max(1, e - s));
      if (d <= tol && d < bestD) { best = i; bestD = d; }
    }
    return best;
  }

  // ---------- audio ----------
  function buildAudio() {
    for (const a of audios.values()) { a.pause(); a.remove(); }
    audios.clear();
    while (urls.length) URL.revokeObjectURL(urls.pop());
    const raw = bytesOf(model.get("audio"));
    for (const entry of model.get("audio_index") || []) {
      const blob = new Blob([raw.subarray(entry.offset, entry.offset + entry.size)], { type: entry.mime });
      const url = URL.createObjectURL(blob);
      urls.push(url);
      const a = el("audio", "rtl-audio");
      a.preload = "auto";
      a.src = url;
      a.dataset.lane = String(entry.lane);
      a.dataset.kind = lanes[entry.lane] ? lanes[entry.lane].kind : "";
      a.addEventListener("ended", () => stopPlayback());
      audios.set(entry.lane, a);
      root.append(a);
    }
    const st = model.get("audio_status");
    status.textContent = st === "encoding" ? "encoding audio… (spans play on demand)" : st === "segments" ? "audio on demand"
      : audios.size ? "" : "no audio";
    root.dataset.audioStatus = st;
  }

  function laneFor(i) {
    const { cols, meta } = spans;
    if (meta.tiers[cols.tier[i]] === "response") {
      const src = meta.sources[cols.source[i]];
      const li = lanes.findIndex((l) => l.kind === "output" && l.source === src);
      if (li >= 0 && audios.has(li)) return li;
    }
    const inp = lanes.findIndex((l) => l.kind === "input");
    return inp;
  }

  function stopPlayback() {
    if (playing) playing.audio.pause();
    playing = null;
    playBtn.textContent = "▶";
    cancelAnimationFrame(rafId);
    draw();
  }

  // While the full tracks are still encoding (long sessions), a span's audio is fetched on demand from Python
  // as a short WAV segment: {type: "get_audio", lane, start_ms, end_ms, req} → {type: "audio", ...} + buffer.
  let segReq = 0;
  const segWaiters = new Map();
  function requestSegment(lane, startMs, endMs) {
    const req = ++segReq;
    return new Promise((resolve) => {
      segWaiters.set(req, resolve);
      model.send({ type: "get_audio", lane, start_ms: startMs, end_ms: endMs, req });
    });
  }

  function startAudio(a, lane, startMs, endMs, offsetMs) {
    if (playing && playing.audio !== a) playing.audio.pause();
    playing = { audio: a, lane, endMs, offsetMs };
    const start = () => {
      a.currentTime = Math.max(0, (startMs - offsetMs) / 1000);
      const p = a.play();
      if (p && p.catch) p.catch((err) => { status.textContent = "playback blocked: " + err.message; stopPlayback(); });
    };
    if (a.readyState >= 1) start(); else a.addEventListener("loadedmetadata", start, { once: true });
    playBtn.textContent = "■";
    cancelAnimationFrame(rafId);
    const tick = () => {
      if (!playing) return;
      const ms = playing.offsetMs + playing.audio.currentTime * 1000;
      playheadMs = ms;
      if (playing.endMs !== null && ms >= playing.endMs && !playing.audio.paused) { stopPlayback(); return; }
      if (ms > view.end || ms < view.start) {
        const span = view.end - view.start;
        view = { start: ms - span * 0.1, end: ms + span * 0.9 };
      }
      draw();
      rafId = requestAnimationFrame(tick);
    };
    rafId = requestAnimationFrame(tick);
  }

  async function play(lane, startMs, endMs) {
    const a = audios.get(lane);
    if (a) { startAudio(a, lane, startMs, endMs, 0); return; }
    const st = model.get("audio_status");
    if ((st !== "encoding" && st !== "segments") || lane < 0) { status.textContent = "no audio for this lane"; return; }
    const prev = status.textContent;
    status.textContent = "loading segment…";
    const segEnd = endMs ?? Math.min(startMs + 30000, (lanes[lane] || {}).duration_ms || startMs + 30000);
    const seg = await requestSegment(lane, startMs, segEnd);
    status.textContent = prev;
    if (!seg) return;
    if (segAudio) { segAudio.pause(); segAudio.remove(); URL.revokeObjectURL(segAudio.src); }
    segAudio = el("audio", "rtl-audio");
    const thisAudio = segAudio;
    const segDurationMs = () => (Number.isFinite(thisAudio.duration) ? thisAudio.duration * 1000 : segEnd - seg.startMs);
    segAudio.dataset.lane = String(lane);
    segAudio.dataset.kind = "segment";
    segAudio.dataset.offsetMs = String(seg.startMs);
    segAudio.src = URL.createObjectURL(new Blob([seg.data], { type: seg.mime }));
    segAudio.addEventListener("ended", () => {
      // open-ended playback (the ▶ button) continues with the next segment
      const next = seg.startMs + segDurationMs();
      const more = endMs === null && next < ((lanes[lane] || {}).duration_ms || 0) - 1;
      stopPlayback();
      if (more) play(lane, next, null);
    });
    root.append(segAudio);
    startAudio(segAudio, lane, startMs, endMs, seg.startMs);
  }

  function togglePlay() {
    if (playing && !playing.audio.paused) { stopPlayback(); return; }
    const inp = lanes.findIndex((l) => l.kind === "input");
    play(inp, playheadMs ?? view.start, null);
  }

  // ---------- selection ----------
  function selectIndex(i, fromModel) {
    selected = i;
    if (i >= 0 && !fromModel) {
      const { cols, meta } = spans;
      const item = cols.item[i];
      model.set("selection", {
        source: meta.sources[cols.source[i]],
        kind: meta.tiers[cols.tier[i]],
        item_id: item >= 0 ? meta.items[item] : null,
        start_ms: cols.play_start_ms[i],
        end_ms: cols.play_end_ms[i],
        seq: cols.seq[i],
      });
      model.save_changes();
    }
    draw();
  }

  function onSelectionChange() {
    const sel = model.get("selection") || {};
    selRange = typeof sel.start_ms === "number" ? [sel.start_ms, typeof sel.end_ms === "number" ? sel.end_ms : sel.start_ms] : null;
    if (sel.seq === undefined || sel.seq === null) { selected = -1; root.dataset.selectedSeq = ""; draw(); return; }
    const { cols, meta, n } = spans;
    let found = -1;
    for (let i = 0; i < n; i++) {
      if (cols.seq[i] !== sel.seq) continue;
      if (sel.kind && meta.tiers[cols.tier[i]] !== sel.kind) continue;
      if (sel.source && meta.sources[cols.source[i]] !== sel.source) continue;
      found = i; break;
    }
    selected = found;
    if (selRange) {
      const [s, e] = selRange;
      if (e < view.start || s > view.end) {
        const span = view.end - view.start;
        view = { start: (s + e) / 2 - span / 2, end: (s + e) / 2 + span / 2 };
        clampView();
      }
    }
    root.dataset.selectedSeq = String(sel.seq);
    draw();
  }

  // ---------- tooltip ----------
  function showTip(i, clientX, clientY) {
    const { cols, meta } = spans;
    const seq = cols.seq[i];
    hoverSeq = seq;
    const tier = meta.tiers[cols.tier[i]];
    const head = `${meta.sources[cols.source[i]]} · ${meta.tier_labels[tier] || tier}  ` +
      `${(cols.start_ms[i] / 1000).toFixed(2)}–${(cols.end_ms[i] / 1000).toFixed(2)} s  (seq ${seq})`;
    tip.replaceChildren(el("div", "rtl-tip-head", head));
    const li = cols.label[i];
    if (li >= 0) tip.append(el("div", "rtl-tip-label", meta.labels[li]));
    const pre = el("pre", "rtl-tip-json", eventCache.has(seq) ? JSON.stringify(eventCache.get(seq), null, 1) : "loading…");
    tip.append(pre);
    if (!eventCache.has(seq)) model.send({ type: "get_event", seq });
    const box = root.getBoundingClientRect();
    tip.style.display = "block";
    const left = Math.min(clientX - box.left + 14, box.width - 380);
    tip.style.left = Math.max(0, left) + "px";
    tip.style.top = (clientY - box.top + 14) + "px";
  }

  function hideTip() { tip.style.display = "none"; hoverSeq = null; }

  function onCustom(msg, buffers) {
    if (msg && msg.type === "audio") {
      const resolve = segWaiters.get(msg.req);
      segWaiters.delete(msg.req);
      if (resolve) resolve(msg.error || !buffers || !buffers.length ? null
        : { data: bytesOf(buffers[0]), mime: msg.mime, startMs: msg.start_ms });
      return;
    }
    if (!msg || msg.type !== "event") return;
    eventCache.set(msg.seq, msg.event || { error: msg.error });
    if (eventCache.size > 500) eventCache.delete(eventCache.keys().next().value);
    if (hoverSeq === msg.seq) {
      const pre = tip.querySelector(".rtl-tip-json");
      if (pre) pre.textContent = JSON.stringify(eventCache.get(msg.seq), null, 1);
    }
  }

  // ---------- pointer ----------
  let drag = null;
  const local = (e) => { const b = canvas.getBoundingClientRect(); return [e.clientX - b.left, e.clientY - b.top]; };
  canvas.addEventListener("mousedown", (e) => {
    const [x] = local(e);
    drag = { x0: x, start: view.start, end: view.end, moved: false };
  });
  const onMove = (e) => {
    if (drag) {
      const [x] = local(e);
      if (Math.abs(x - drag.x0) > 3) drag.moved = true;
      if (drag.moved) {
        const dms = (x - drag.x0) * (drag.end - drag.start) / width();
        view = { start: drag.start - dms, end: drag.end - dms };
        clampView();
        hideTip();
        draw();
      }
      return;
    }
  };
  window.addEventListener("mousemove", onMove);
  canvas.addEventListener("mousemove", (e) => {
    if (drag) return;
    const [x, y] = local(e);
    const i = spanAt(x, y);
    if (i !== hover) { hover = i; draw(); }
    if (i >= 0) showTip(i, e.clientX, e.clientY); else hideTip();
    canvas.style.cursor = i >= 0 ? "pointer" : rowAt(y)?.kind === "lane" ? "text" : "grab";
  });
  canvas.addEventListener("mouseleave", () => { hover = -1; hideTip(); draw(); });
  const onUp = (e) => {
    if (!drag) return;
    const wasDrag = drag.moved;
    drag = null;
    if (wasDrag || e.target !== canvas) return;
    const [x, y] = local(e);
    const i = spanAt(x, y);
    if (i >= 0) {
      selectIndex(i, false);
      play(laneFor(i), spans.cols.play_start_ms[i], spans.cols.play_end_ms[i]);
      return;
    }
    const r = rowAt(y);
    if (r && r.kind === "lane" && audios.has(r.lane)) play(r.lane, msOf(x), null);
  };
  window.addEventListener("mouseup", onUp);
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const [x] = local(e);
    if (Math.abs(e.deltaX) > Math.abs(e.deltaY) || e.shiftKey) {
      const d = (e.shiftKey ? e.deltaY : e.deltaX) * msPerPx();
      view = { start: view.start + d, end: view.end + d };
      clampView();
      draw();
    } else {
      zoom(Math.exp(e.deltaY * 0.002), msOf(x));
    }
  }, { passive: false });

  // ---------- test and scripting hooks ----------
  root.rtl = {
    // Client-space centre of the k-th span of a tier row (for browser tests).
    spanCenter(source, tier, k) {
      const { cols, meta } = spans;
      const r = rows.find((row) => row.kind === "tier" && meta.sources[row.source] === source && meta.tiers[row.tier] === tier);
      if (!r) return null;
      const i = r.range.lo + k;
      if (i >= r.range.hi) return null;
      const b = canvas.getBoundingClientRect();
      const x0 = xOf(cols.start_ms[i]), x1 = xOf(cols.end_ms[i]);
      return { x: b.left + (x0 + x1) / 2, y: b.top + r.y + r.h / 2, start_ms: cols.play_start_ms[i], end_ms: cols.play_end_ms[i], seq: cols.seq[i] };
    },
    laneBox(lane) {
      const r = rows.find((row) => row.kind === "lane" && row.lane === lane);
      return r ? { y: r.y, h: r.h, w: width() } : null;
    },
    get view() { return { ...view }; },
  };

  // ---------- model wiring ----------
  const onData = () => {
    spans = decodeSpans(model);
    peaks = decodePeaks(model);
    lanes = model.get("lanes") || [];
    duration = Math.max(1, model.get("duration_ms") || 1);
    buildLegend();
    layout();
    draw();
  };
  model.on("change:spans", onData);
  model.on("change:peaks", onData);
  model.on("change:height", () => { layout(); draw(); });
  model.on("change:audio", buildAudio);
  model.on("change:audio_status", buildAudio);
  model.on("change:selection", onSelectionChange);
  model.on("msg:custom", onCustom);
  const ro = new ResizeObserver(() => draw());
  ro.observe(plot);

  buildLegend();
  layout();
  buildAudio();
  onSelectionChange();
  draw();

  return () => {
    ro.disconnect();
    cancelAnimationFrame(rafId);
    window.removeEventListener("mousemove", onMove);
    window.removeEventListener("mouseup", onUp);
    for (const a of audios.values()) a.pause();
    while (urls.length) URL.revokeObjectURL(urls.pop());
    model.off("change:spans", onData);
    model.off("change:peaks", onData);
    model.off("change:audio", buildAudio);
    model.off("change:audio_status", buildAudio);
    model.off("change:selection", onSelectionChange);
    model.off("msg:custom", onCustom);
  };
}

export default { render };
