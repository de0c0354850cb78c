// rtlab LiveView: transcripts per source (partial deltas in grey, finals in black) and the event count.
function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "rtl-live";
  el.append(root);
  const draw = () => {
    const head = document.createElement("div");
    head.className = "rtl-live-head";
    const count = document.createElement("span");
    count.className = "rtl-live-count";
    count.textContent = String(model.get("event_count"));
    const label = document.createElement("span");
    label.textContent = "events" + (model.get("done") ? " (done)" : "") + (model.get("last_type") ? " · last: " + model.get("last_type") : "");
    head.append(count, label);
    const cols = document.createElement("div");
    cols.className = "rtl-live-cols";
    const tr = model.get("transcripts") || {};
    for (const [source, lines] of Object.entries(tr)) {
      const col = document.createElement("div");
      col.className = "rtl-live-col";
      col.dataset.source = source;
      const h = document.createElement("h4");
      h.textContent = source;
      col.append(h);
      for (const line of lines) {
        const p = document.createElement("div");
        p.className = "rtl-live-line" + (line.final ? "" : " rtl-partial");
        p.textContent = line.text;
        p.title = line.item_id;
        col.append(p);
      }
      cols.append(col);
      col.scrollTop = col.scrollHeight;
    }
    root.replaceChildren(head, cols);
    root.dataset.eventCount = String(model.get("event_count"));
  };
  model.on("change:transcripts", draw);
  model.on("change:event_count", draw);
  model.on("change:done", draw);
  draw();
  return () => {
    model.off("change:transcripts", draw);
    model.off("change:event_count", draw);
    model.off("change:done", draw);
  };
}
export default { render };
