// rtlab Microphone: AudioWorklet that turns the capture stream into PCM16 mono frames at the target rate.
// Loaded from a Blob URL (the text travels in the widget's `worklet` trait; no network).
//
// Resampling is band-limited interpolation: every output sample is a sum of input samples weighted by a
// Kaiser-windowed sinc whose cutoff sits below the lower Nyquist frequency (anti-aliasing when going down,
// e.g. 48 kHz -> 24 kHz). The kernel is tabulated once (KERNEL_RES points per input sample, linear
// interpolation between them). Channels are averaged to mono first.

const HALF_WIDTH = 16;   // zero crossings of the sinc on each side (at the cutoff's scale)
const KERNEL_RES = 512;  // table points per unit of the kernel argument
const KAISER_BETA = 8.0;

function besselI0(x) {
  let sum = 1, term = 1;
  for (let k = 1; k < 40; k++) {
    term *= (x / (2 * k)) * (x / (2 * k));
    sum += term;
    if (term < 1e-12 * sum) break;
  }
  return sum;
}

class RtlabPcmProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.inRate = sampleRate; // global of the AudioWorkletGlobalScope: the context's rate
    this.outRate = o.outRate || 24000;
    this.frame = Math.max(1, Math.round((o.frameMs || 20) * this.outRate / 1000));
    this.step = this.inRate / this.outRate;                  // input samples per output sample
    this.cutoff = Math.min(1, this.outRate / this.inRate) * 0.94; // fraction of the input Nyquist
    this.reach = Math.ceil(HALF_WIDTH / this.cutoff);         // input samples on each side of a point
    // kernel table over |u| in [0, HALF_WIDTH] (u in units of the cutoff's sample spacing)
    const n = HALF_WIDTH * KERNEL_RES + 2;
    this.table = new Float32Array(n);
    const i0b = besselI0(KAISER_BETA);
    for (let i = 0; i < n; i++) {
      const u = i / KERNEL_RES;
      const r = u / HALF_WIDTH;
      const w = r >= 1 ? 0 : besselI0(KAISER_BETA * Math.sqrt(1 - r * r)) / i0b;
      const s = u === 0 ? 1 : Math.sin(Math.PI * u) / (Math.PI * u);
      this.table[i] = s * w;
    }
    this.buf = new Float32Array(8192);  // input history; buf[0] is input sample number `base`
    this.len = 0;
    this.base = 0;
    this.t = 0;                          // next output position, in input samples (absolute)
    this.out = new Int16Array(this.frame);
    this.outLen = 0;
    this.peak = 0;
    this.flushing = false;
    this.done = false;
    this.port.onmessage = (e) => { if (e.data && e.data.type === "flush") this.flushing = true; };
  }

  kernel(d) { // d: distance in input samples
    const u = Math.abs(d) * this.cutoff;
    if (u >= HALF_WIDTH) return 0;
    const x = u * KERNEL_RES;
    const i = x | 0;
    const f = x - i;
    return this.table[i] + f * (this.table[i + 1] - this.table[i]);
  }

  append(mono) {
    if (this.len + mono.length > this.buf.length) {
      const bigger = new Float32Array(Math.max(this.buf.length * 2, this.len + mono.length));
      bigger.set(this.buf.subarray(0, this.len));
      this.buf = bigger;
    }
    this.buf.set(mono, this.len);
    this.len += mono.length;
  }

  emit(value) {
    const v = Math.max(-1, Math.min(1, value));
    const a = Math.abs(v);
    if (a > this.peak) this.peak = a;
    this.out[this.outLen++] = v < 0 ? Math.round(v * 32768) : Math.round(v * 32767);
    if (this.outLen === this.frame) this.post();
  }

  post() {
    if (!this.outLen) return;
    const pcm = this.out.slice(0, this.outLen);
    this.port.postMessage({ type: "pcm", pcm: pcm.buffer, peak: this.peak }, [pcm.buffer]);
    this.outLen = 0;
    this.peak = 0;
  }

  resample(final) {
    const gain = this.cutoff; // unity gain at DC for the scaled sinc
    const end = this.base + this.len;
    // an output needs input up to t + reach, unless this is the end (missing future samples count as zero)
    while (final ? this.t < end : this.t + this.reach < end) {
      const lo = Math.max(this.base, Math.ceil(this.t - this.reach));
      const hi = Math.min(end - 1, Math.floor(this.t + this.reach));
      let acc = 0;
      for (let n = lo; n <= hi; n++) acc += this.buf[n - this.base] * this.kernel(this.t - n);
      this.emit(acc * gain);
      this.t += this.step;
    }
    // drop history no future output can reach
    const keepFrom = Math.max(this.base, Math.floor(this.t - this.reach) - 1);
    const drop = keepFrom - this.base;
    if (drop > 0) {
      this.buf.copyWithin(0, drop, this.len);
      this.len -= drop;
      this.base = keepFrom;
    }
  }

  process(inputs) {
    const input = inputs[0];
    if (input && input.length) {
      const frames = input[0].length;
      const mono = new Float32Array(frames);
      for (const ch of input) for (let i = 0; i < frames; i++) mono[i] += ch[i];
      if (input.length > 1) for (let i = 0; i < frames; i++) mono[i] /= input.length;
      this.append(mono);
    }
    if (this.done) return false;
    if (this.flushing) {
      // the last samples travel with the end marker, so nothing can arrive after it
      this.resample(true);
      const pcm = this.out.slice(0, this.outLen);
      this.outLen = 0;
      this.port.postMessage({ type: "flushed", pcm: pcm.buffer }, [pcm.buffer]);
      this.done = true;
      return false; // the node may be collected once disconnected
    }
    this.resample(false);
    return true;
  }
}

registerProcessor("rtlab-pcm", RtlabPcmProcessor);
