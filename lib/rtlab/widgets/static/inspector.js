// rtlab EventInspector view: filters, a virtually scrolled table over binary columns, the selected event's JSON.
// Filtering runs in Python (it sends back int32 row numbers); this module only draws the visible rows.

const ROW_H = 20;

function bytesOf(dv) {
  if (!dv) return new Uint8Array(0);
  if (dv instanceof ArrayBuffer) return new Uint8Array(dv.slice(0));
  return new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength).slice();
}

function decodeColumns(model) {
  const meta = model.get("meta") || {};
  const n = meta.n || 0;
  const raw = bytesOf(model.get("columns"));
  const cols = {};
  let off = 0;
  for (const [name, kind] of meta.layout || []) {
    if (kind === "i4") { cols[name] = new Int32Array(raw.buffer, off, n); off += 4 * n; }
    else if (kind === "f4") { cols[name] = new Float32Array(raw.buffer, off, n); off += 4 * n; }
    else { cols[name] = new Uint8Array(raw.buffer, off, n); off += n; }
  }
  return { meta, n, cols };
}

function decodeRows(model) {
  const raw = bytesOf(model.get("rows"));
  return new Int32Array(raw.buffer, 0, raw.byteLength / 4);
}

function mk(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

const fmt = (ms) => (Number.isFinite(ms) ? (ms / 1000).toFixed(3) : "");

function render({ model, el }) {
  const root = mk("div", "rtl-inspector");
  const filters = mk("div", "rtl-filters");
  const split = mk("div", "rtl-split");
  const table = mk("div", "rtl-table");
  const head = mk("div", "rtl-table-head");
  const spacer = mk("div", "rtl-spacer");
  const detail = mk("div", "rtl-detail");
  const json = mk("pre", "rtl-json", "select an event");
  const foot = mk("div", "rtl-foot");
  for (const h of ["seq", "t (s)", "audio (s)", "source", "type", "item"]) head.append(mk("span", "", h));
  table.append(head, spacer);
  detail.append(json);
  split.append(table, detail);
  root.append(filters, split, foot);
  el.append(root);

  let data = decodeColumns(model);
  let rows = decodeRows(model);
  const rendered = new Map(); // table position -> row element

  // ---------- filters ----------
  const select = (title, options, trait) => {
    const s = mk("select");
    s.title = title;
    const fill = () => {
      s.replaceChildren(mk("option", "", options().label));
      s.firstChild.value = "";
      for (const o of options().values) { const opt = mk("option", "", o); opt.value = o; s.append(opt); }
      const cur = model.get(trait);
      s.value = Array.isArray(cur) ? (cur.length === 1 ? cur[0] : "") : cur || "";
    };
    s.addEventListener("change", () => {
      model.set(trait, Array.isArray(model.get(trait)) ? (s.value ? [s.value] : []) : s.value);
      model.save_changes();
    });
    fill();
    filters.append(s);
    return fill;
  };
  const input = (cls, placeholder, title, get, set) => {
    const i = mk("input", cls);
    i.placeholder = placeholder;
    i.title = title;
    i.value = get();
    let timer = 0;
    i.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => { set(i.value); model.save_changes(); }, 250);
    });
    filters.append(i);
    return () => { if (document.activeElement !== i) i.value = get(); };
  };
  const refreshers = [
    select("source", () => ({ label: "all sources", values: data.meta.sources || [] }), "sources"),
    select("event type", () => ({ label: "all types", values: data.meta.types || [] }), "types"),
    select("direction", () => ({ label: "both directions", values: ["server", "client"] }), "direction"),
    input("rtl-item", "item id", "only events of this item", () => model.get("item_id"), (v) => model.set("item_id", v.trim())),
    input("rtl-num", "from s", "audio time from (s)", () => (model.get("start_ms") == null ? "" : model.get("start_ms") / 1000),
      (v) => model.set("start_ms", v === "" || isNaN(+v) ? null : +v * 1000)),
    input("rtl-num", "to s", "audio time to (s)", () => (model.get("end_ms") == null ? "" : model.get("end_ms") / 1000),
      (v) => model.set("end_ms", v === "" || isNaN(+v) ? null : +v * 1000)),
    input("rtl-text", "search text in JSON", "case-insensitive text the event JSON must contain", () => model.get("text"),
      (v) => model.set("text", v)),
  ];
  const clear = mk("button", "rtl-btn", "clear");
  clear.title = "clear all filters";
  clear.addEventListener("click", () => {
    for (const [k, v] of [["sources", []], ["types", []], ["direction", ""], ["item_id", ""], ["start_ms", null], ["end_ms", null], ["text", ""]]) model.set(k, v);
    model.save_changes();
  });
  filters.append(clear);

  // ---------- table ----------
  function rowEl(pos) {
    const i = rows[pos];
    const { cols, meta } = data;
    const r = mk("div", "rtl-tr");
    r.style.top = (ROW_H + pos * ROW_H) + "px";
    const seq = cols.seq[i];
    const type = meta.type_names[cols.type[i]] ?? "";
    const item = cols.item[i] >= 0 ? meta.items[cols.item[i]] : "";
    r.append(
      mk("span", "", String(seq)),
      mk("span", "", fmt(cols.t_ms[i])),
      mk("span", "", fmt(cols.audio_ms[i])),
      mk("span", "", meta.sources[cols.source[i]] ?? ""),
      mk("span", type === "error" || type.endsWith(".failed") ? "rtl-type-error" : "", type),
      mk("span", "", item),
    );
    r.title = type;
    r.dataset.seq = String(seq);
    if (!cols.server[i]) r.classList.add("rtl-client");
    if (seq === model.get("selected_seq")) r.classList.add("rtl-selected");
    r.addEventListener("click", () => { model.set("selected_seq", seq); model.save_changes(); });
    return r;
  }

  function paint(force) {
    spacer.style.height = (ROW_H + rows.length * ROW_H) + "px";
    const top = Math.max(0, Math.floor(table.scrollTop / ROW_H) - 10);
    const bottom = Math.min(rows.length, Math.ceil((table.scrollTop + table.clientHeight) / ROW_H) + 10);
    if (force) { for (const r of rendered.values()) r.remove(); rendered.clear(); }
    for (const [pos, r] of rendered) if (pos < top || pos >= bottom) { r.remove(); rendered.delete(pos); }
    for (let pos = top; pos < bottom; pos++) {
      if (!rendered.has(pos)) { const r = rowEl(pos); rendered.set(pos, r); table.append(r); }
    }
    foot.textContent = `${rows.length.toLocaleString()} of ${data.n.toLocaleString()} events`;
    root.dataset.matchCount = String(rows.length);
    root.dataset.renderedRows = String(rendered.size);
  }

  function scrollToSeq(seq) {
    if (seq < 0) return;
    const { cols } = data;
    let pos = -1;
    for (let p = 0; p < rows.length; p++) if (cols.seq[rows[p]] === seq) { pos = p; break; }
    if (pos < 0) return;
    const y = ROW_H + pos * ROW_H;
    if (y < table.scrollTop + ROW_H || y + ROW_H > table.scrollTop + table.clientHeight) {
      table.scrollTop = Math.max(0, y - table.clientHeight / 2);
    }
    paint(true);
  }

  const onSelected = () => {
    const ev = model.get("selected_event") || {};
    json.textContent = Object.keys(ev).length ? JSON.stringify(ev, null, 2) : "select an event";
    root.dataset.selectedSeq = String(model.get("selected_seq"));
    paint(true);
  };
  const onRows = () => { rows = decodeRows(model); paint(true); scrollToSeq(model.get("scroll_to")); };
  const onData = () => { data = decodeColumns(model); onRows(); };
  const onFilters = () => refreshers.forEach((f) => f());
  const onScrollTo = () => scrollToSeq(model.get("scroll_to"));
  const onHeight = () => { split.style.height = model.get("height") + "px"; paint(false); };

  table.addEventListener("scroll", () => paint(false));
  table.tabIndex = 0;
  table.addEventListener("keydown", (e) => {
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
    e.preventDefault();
    const { cols } = data;
    const cur = model.get("selected_seq");
    let pos = -1;
    for (let p = 0; p < rows.length; p++) if (cols.seq[rows[p]] === cur) { pos = p; break; }
    const next = Math.min(rows.length - 1, Math.max(0, pos + (e.key === "ArrowDown" ? 1 : -1)));
    if (next >= 0 && rows.length) {
      model.set("selected_seq", cols.seq[rows[next]]);
      model.set("scroll_to", cols.seq[rows[next]]);
      model.save_changes();
    }
  });

  model.on("change:rows", onRows);
  model.on("change:columns", onData);
  model.on("change:selected_event", onSelected);
  model.on("change:scroll_to", onScrollTo);
  model.on("change:height", onHeight);
  for (const k of ["sources", "types", "direction", "item_id", "start_ms", "end_ms", "text"]) model.on("change:" + k, onFilters);
  const ro = new ResizeObserver(() => paint(false));
  ro.observe(table);
  onHeight();
  onSelected();
  onScrollTo();

  return () => {
    ro.disconnect();
    model.off("change:rows", onRows);
    model.off("change:columns", onData);
    model.off("change:selected_event", onSelected);
    model.off("change:scroll_to", onScrollTo);
    model.off("change:height", onHeight);
    for (const k of ["sources", "types", "direction", "item_id", "start_ms", "end_ms", "text"]) model.off("change:" + k, onFilters);
  };
}

export default { render };
