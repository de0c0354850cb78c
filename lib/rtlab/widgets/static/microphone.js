// rtlab Microphone view: Start/Stop, a level meter, seconds captured; the browser's microphone as PCM16 frames.
// getUserMedia -> MediaStreamSource -> AudioWorklet (text in the `worklet` trait) -> binary custom messages
// {type: "pcm", seq} with one ArrayBuffer each (never base64). Errors get the text of `help_texts[name]`.
// Every message carries a buffer (empty when it has no audio): in the front end, messages with buffers can be
// overtaken by messages without, and Python must see started, the frames and stopped in order.
// Plain ES module, no imports: works offline in JupyterLab 4 and VS Code.

function explain(model, name, detail) {
  const help = model.get("help_texts") || {};
  const text = help[name] || help.default || "The microphone could not start.";
  return detail ? text + " (" + name + ": " + detail + ")" : text;
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "rtl-mic";
  root.dataset.state = "idle";
  const bar = document.createElement("div");
  bar.className = "rtl-toolbar";
  const start = document.createElement("button");
  start.className = "rtl-btn rtl-mic-start";
  start.textContent = "● Start";
  start.title = "Record from the microphone and send it to Python";
  const stop = document.createElement("button");
  stop.className = "rtl-btn rtl-mic-stop";
  stop.textContent = "■ Stop";
  stop.disabled = true;
  const meter = document.createElement("div");
  meter.className = "rtl-mic-meter";
  const level = document.createElement("div");
  level.className = "rtl-mic-level";
  meter.append(level);
  const status = document.createElement("span");
  status.className = "rtl-status rtl-mic-status";
  bar.append(start, stop, meter, status);
  const message = document.createElement("div");
  message.className = "rtl-mic-message";
  message.setAttribute("role", "alert");
  root.append(bar, message);
  el.append(root);

  let cap = null; // {stream, ctx, node, source, seq, sent, stopping}

  const setState = (state) => {
    root.dataset.state = state;
    start.disabled = state === "starting" || state === "recording" || state === "stopping";
    stop.disabled = !(state === "recording");
  };
  const showStatus = () => {
    const sent = cap ? cap.sent / model.get("sample_rate") : 0;
    const got = model.get("captured_ms") / 1000;
    const state = root.dataset.state;
    status.textContent = state === "recording"
      ? "recording · " + sent.toFixed(1) + " s sent, " + got.toFixed(1) + " s in Python"
      : state === "error" ? "" : state + (got ? " · " + got.toFixed(1) + " s in Python" : "");
    root.dataset.capturedMs = String(model.get("captured_ms"));
    root.dataset.sentSamples = String(cap ? cap.sent : 0);
  };
  const fail = (name, detail) => {
    message.textContent = explain(model, name, detail);
    message.hidden = false;
    root.dataset.errorName = name;
    setState("error");
    showStatus();
    model.send({ type: "error", name, message: String(detail || "") }, undefined, [new ArrayBuffer(0)]);
  };
  const release = () => {
    if (!cap) return;
    for (const t of cap.stream.getTracks()) t.stop();
    try { cap.source.disconnect(); cap.node.disconnect(); } catch (e) { /* already disconnected */ }
    cap.ctx.close().catch(() => {});
  };

  const begin = async () => {
    message.textContent = "";
    message.hidden = true;
    delete root.dataset.errorName;
    setState("starting");
    showStatus();
    const md = navigator.mediaDevices;
    if (!window.isSecureContext || !md || !md.getUserMedia) {
      fail("InsecureContext", window.location.protocol + "//" + window.location.host);
      return;
    }
    if (typeof AudioWorkletNode === "undefined") {
      fail("NoAudioWorklet", navigator.userAgent);
      return;
    }
    let stream;
    try {
      // the raw signal: no echo cancellation, noise suppression or gain control between the speaker and the model
      stream = await md.getUserMedia({ audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false,
                                                autoGainControl: false }, video: false });
    } catch (e) {
      fail((e && e.name) || "Error", e && e.message);
      return;
    }
    let ctx = null;
    try {
      ctx = new AudioContext();
      const url = URL.createObjectURL(new Blob([model.get("worklet")], { type: "text/javascript" }));
      try { await ctx.audioWorklet.addModule(url); } finally { URL.revokeObjectURL(url); }
      const source = ctx.createMediaStreamSource(stream);
      const node = new AudioWorkletNode(ctx, "rtlab-pcm", {
        numberOfInputs: 1, numberOfOutputs: 1,
        processorOptions: { outRate: model.get("sample_rate"), frameMs: model.get("frame_ms") },
      });
      // a muted path to the destination keeps the node pulled by the graph in every browser (nothing is heard)
      const mute = ctx.createGain();
      mute.gain.value = 0;
      node.connect(mute).connect(ctx.destination);
      cap = { stream, ctx, node, source, seq: 0, sent: 0 };
      node.port.onmessage = (e) => {
        const d = e.data;
        if (d.type === "pcm") {
          model.send({ type: "pcm", seq: cap.seq++ }, undefined, [d.pcm]);
          cap.sent += d.pcm.byteLength / 2;
          level.style.width = Math.min(100, Math.round(100 * Math.sqrt(d.peak))) + "%";
          showStatus();
        } else if (d.type === "flushed") {
          // every message carries a buffer: messages with buffers and without may overtake each other
          cap.sent += d.pcm.byteLength / 2;
          model.send({ type: "stopped", seq: cap.seq++, samples: cap.sent }, undefined, [d.pcm]);
          release();
          level.style.width = "0%";
          setState("stopped");
          showStatus();
        }
      };
      const track = stream.getAudioTracks()[0];
      model.send({ type: "started", device: (track && track.label) || "", rate: ctx.sampleRate }, undefined,
                 [new ArrayBuffer(0)]);
      source.connect(node);
      if (ctx.state !== "running") await ctx.resume();
      setState("recording");
      showStatus();
    } catch (e) {
      for (const t of stream.getTracks()) t.stop();
      if (ctx) ctx.close().catch(() => {});
      fail("AudioPipelineError", (e && (e.name + ": " + e.message)) || String(e));
    }
  };
  const end = () => {
    if (!cap || root.dataset.state !== "recording") return;
    setState("stopping");
    showStatus();
    cap.node.port.postMessage({ type: "flush" });
  };

  start.addEventListener("click", begin);
  stop.addEventListener("click", end);
  const onMsg = (msg) => { if (msg && msg.type === "stop") end(); };
  const onCaptured = () => showStatus();
  model.on("msg:custom", onMsg);
  model.on("change:captured_ms", onCaptured);
  // a redrawn view (after update_static) starts from what Python last heard
  const initial = model.get("state");
  if (initial === "error" && model.get("error")) {
    message.textContent = model.get("error");
    root.dataset.errorName = model.get("error_name");
  }
  setState(initial === "stopped" || initial === "error" ? initial : "idle");
  showStatus();
  return () => {
    model.off("msg:custom", onMsg);
    model.off("change:captured_ms", onCaptured);
    if (cap && root.dataset.state === "recording") {
      model.send({ type: "stopped", seq: cap.seq++, samples: cap.sent }, undefined, [new ArrayBuffer(0)]);
      release();
    }
  };
}
export default { render };
