"""``Microphone``: speak into a run. The browser's microphone, as PCM16 24 kHz chunks in Python.

Layer: views (the widget) over audio (:class:`rtlab.livesource.PushSource`). The ES module
``static/microphone.js`` asks for the microphone (``getUserMedia``), runs an AudioWorklet
(``static/microphone_worklet.js``) that mixes to mono and resamples to 24 kHz with a windowed-sinc filter, and
sends every 20 ms frame as a binary custom message ``{"type": "pcm", "seq": n}`` with one buffer (never base64);
the last frame travels with ``{"type": "stopped", "seq": n, "samples": total}``.
Python cuts the frames into :class:`rtlab.audio.Chunk` objects on one sample clock (:class:`MicrophoneSource`),
which a run reads like any live source::

    mic = Microphone()
    mic                                             # shows Start / Stop
    source = mic.source()                           # fed by the next recording
    task = asyncio.ensure_future(arun_sidecar(source, voice=(target, config), log=log))
    # press Start, speak, press Stop (or call source.stop())
    log = await task                                # the recording is in the log's input track

Run the session as a background task (``asyncio.ensure_future``), not with ``await`` in the same cell: the kernel
reads the widget's messages only between cells, so a cell that waits for the run would never hear the microphone.

When the browser refuses (permission denied, no microphone, a page that is not https or localhost), the widget
shows a message saying what to do, ``Microphone.error`` / ``error_name`` hold it, and the waiting source ends
with :class:`MicrophoneError`, so the run raises it instead of waiting for audio that will never come.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets as t

from ..errors import RtlabError
from ..livesource import PushSource
from .fallback import UpdatingStaticFallback, figure_png

_STATIC = Path(__file__).parent / "static"

#: What the widget says for each browser error (``DOMException.name`` from getUserMedia, or our own names).
HELP_TEXTS: dict[str, str] = {
    "NotAllowedError": "Microphone access was denied. Allow the microphone for this page (the icon at the left "
                       "of the address bar, or the browser's site settings) and press Start again.",
    "SecurityError": "The browser does not let this page use the microphone. Allow it in the site settings and "
                     "press Start again.",
    "NotFoundError": "No microphone was found. Connect one (or choose an input device in the system's sound "
                     "settings) and press Start again.",
    "OverconstrainedError": "No microphone matches what the widget asked for. Choose another input device and "
                            "press Start again.",
    "NotReadableError": "The microphone is there but cannot be read: another application may be using it. Close "
                        "it and press Start again.",
    "AbortError": "The browser stopped the microphone while it was starting. Press Start again.",
    "InsecureContext": "Browsers allow the microphone only on https:// pages or on http://localhost. Open "
                       "Jupyter through http://localhost:PORT (or https) and press Start again.",
    "NoAudioWorklet": "This browser has no AudioWorklet, which the widget needs to convert the audio. Use a "
                      "current Chrome, Edge, Firefox or Safari.",
    "AudioPipelineError": "The browser could not set up audio processing for the microphone.",
    "default": "The microphone could not start.",
}


class MicrophoneError(RtlabError):
    """The browser could not capture audio (permission denied, no device, unsupported page or browser)."""

    def __init__(self, name: str, detail: str = ""):
        self.name = name
        self.detail = detail
        text = HELP_TEXTS.get(name, HELP_TEXTS["default"])
        super().__init__(f"{text} (browser said {name}{': ' + detail if detail else ''})")


class MicrophoneSource(PushSource):
    """The chunks of one recording of a :class:`Microphone` (a live source for :mod:`rtlab.runs`).

    Created by :meth:`Microphone.source`. ``stop()`` ends the recording and stops the browser's capture.
    ``device``, ``device_rate`` (the browser's capture rate before resampling) and ``sent_samples`` (what the
    browser says it sent, to compare with what arrived) are filled in as the recording goes.
    """

    def __init__(self, widget: Microphone, *, chunk_ms: float = 40.0, fmt: str = "pcm16"):
        super().__init__(input_rate=int(widget.sample_rate), fmt=fmt, chunk_ms=chunk_ms, on_stop=widget.stop)
        self.device: str | None = None
        self.device_rate: int | None = None
        self.sent_samples: int | None = None
        self.frames = 0
        self.started = False

    @property
    def received_samples(self) -> int:
        """Samples (at 24 kHz) that reached Python."""
        return int(round(self.captured_ms * self.input_rate / 1000.0))


class Microphone(UpdatingStaticFallback, anywidget.AnyWidget):
    """Record from the browser's microphone into Python, as PCM16 mono 24 kHz.

    Parameters
    ----------
    frame_ms : int
        How much audio each binary message carries (the run re-cuts it into its own ``chunk_ms`` chunks).

    Attributes
    ----------
    state : str
        ``"idle"``, ``"recording"``, ``"stopped"`` or ``"error"`` (as last reported by the browser).
    error, error_name : str
        The message shown in the widget and the browser's error name (empty when there is none).
    recordings : list of MicrophoneSource
        Every recording so far, oldest first; ``recordings[-1].audio()`` is the last one.

    Examples
    --------
    >>> mic = Microphone()                       # doctest: +SKIP
    >>> source = mic.source()                    # doctest: +SKIP
    >>> task = asyncio.ensure_future(arun_session(target, config, source, log=log))   # doctest: +SKIP
    """

    _esm = _STATIC / "microphone.js"
    _css = _STATIC / "widgets.css"

    sample_rate = t.Int(24000, help="rate the browser resamples to (Hz); the Realtime PCM16 rate").tag(sync=True)
    frame_ms = t.Int(20, help="audio per binary message, in ms").tag(sync=True)
    worklet = t.Unicode(help="source of the AudioWorklet module (loaded from a Blob URL: no network)").tag(sync=True)
    help_texts = t.Dict(help="message shown for each browser error name").tag(sync=True)
    state = t.Unicode("idle", help="'idle', 'recording', 'stopped' or 'error', as the browser reported").tag(sync=True)
    error = t.Unicode("", help="the message shown for the last error ('' when none)").tag(sync=True)
    error_name = t.Unicode("", help="the browser's name for the last error, e.g. NotAllowedError").tag(sync=True)
    device = t.Unicode("", help="label of the capturing device (empty until the browser names it)").tag(sync=True)
    device_rate = t.Int(0, help="the browser's capture rate before resampling (Hz)").tag(sync=True)
    captured_ms = t.Float(0.0, help="audio of the current recording that reached Python (ms)").tag(sync=True)

    def __init__(self, *, frame_ms: int = 20, **kwargs: Any) -> None:
        if not 5 <= int(frame_ms) <= 500:
            raise ValueError(f"frame_ms must be between 5 and 500 (ms per message), got {frame_ms!r}")
        super().__init__(frame_ms=int(frame_ms), worklet=(_STATIC / "microphone_worklet.js").read_text(),
                         help_texts=dict(HELP_TEXTS), **kwargs)
        self.recordings: list[MicrophoneSource] = []
        self._next: MicrophoneSource | None = None
        self._current: MicrophoneSource | None = None
        self._published_ms = 0.0
        self._expect = 0  # seq of the next frame of the current recording
        self._held: dict[int, tuple[dict, list[bytes]]] = {}
        self.on_msg(self._on_custom_msg)

    # -- sources ------------------------------------------------------------------------------------
    def source(self, *, chunk_ms: float = 40.0, fmt: str = "pcm16") -> MicrophoneSource:
        """The source the next recording feeds (the current one, if a recording is going and nothing reads it).

        Each call makes a fresh source; one made earlier that nothing reads yet is dropped (one source, one run).

        Parameters
        ----------
        chunk_ms : float
            Chunk length (the run's ``RunOptions.chunk_ms``).
        fmt : str
            Wire format of the chunks (``"pcm16"``; G.711 formats are resampled to 8 kHz with soxr).
        """
        cur = self._current
        if cur is not None and not cur.ended and not cur.in_use and (cur.chunk_ms, cur.fmt) == (chunk_ms, fmt):
            return cur
        if self._next is not None and not self._next.ended:
            if self._next.in_use:
                raise RtlabError("a run is already reading the next recording of this microphone; stop it first "
                                 "(source.stop()) or let it finish")
            self._next.end()  # replaced before any recording fed it
        self._next = MicrophoneSource(self, chunk_ms=chunk_ms, fmt=fmt)
        return self._next

    @property
    def recording(self) -> MicrophoneSource | None:
        """The source being fed now (``None`` when not recording)."""
        cur = self._current
        return cur if cur is not None and not cur.ended else None

    def stop(self) -> None:
        """Stop recording (as the Stop button does): the browser flushes what it has and ends the source."""
        self.send({"type": "stop"})

    # -- messages from the view ---------------------------------------------------------------------
    def _on_custom_msg(self, _widget: Any, content: Any, buffers: list[Any]) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "started":
            self._begin(str(content.get("device") or ""), int(content.get("rate") or 0))
        elif kind in ("pcm", "stopped"):
            # frames are numbered; put any that overtook another back in order
            seq = content.get("seq")
            self._held[int(seq) if isinstance(seq, int) else self._expect] = (content, [bytes(b) for b in buffers])
            while self._expect in self._held:
                msg, bufs = self._held.pop(self._expect)
                self._expect += 1
                self._receive(bufs)
                if msg.get("type") == "stopped":
                    self._finish(msg.get("samples"))
        elif kind == "error":
            self._fail(str(content.get("name") or "Error"), str(content.get("message") or ""))

    def _begin(self, device: str, rate: int) -> None:
        src = self._next or MicrophoneSource(self)
        self._next = None
        if self._current is not None and not self._current.ended:
            self._current.end()
        src.device, src.device_rate, src.started = device, rate, True
        self._current = src
        self.recordings.append(src)
        self._published_ms = 0.0
        self._expect, self._held = 0, {}
        with self.hold_sync():
            self.state, self.error, self.error_name = "recording", "", ""
            self.device, self.device_rate, self.captured_ms = device, rate, 0.0

    def _receive(self, buffers: list[bytes]) -> None:
        src = self._current
        if src is None or src.ended:
            return  # a frame after stop: nothing is reading it
        for buf in buffers:
            if buf:
                src.push(buf)
                src.frames += 1
        ms = src.captured_ms
        if ms - self._published_ms >= 250:  # at most 4 updates per second travel back to the view
            self._published_ms = ms
            self.captured_ms = ms

    def _finish(self, sent: Any) -> None:
        src = self._current
        if src is None:
            return
        src.sent_samples = int(sent) if isinstance(sent, int | float) else None
        src.end()
        if src.sent_samples is not None and src.sent_samples != src.received_samples:
            warnings.warn(f"Microphone: the browser sent {src.sent_samples} samples but {src.received_samples} "
                          "arrived", RuntimeWarning, stacklevel=2)
        with self.hold_sync():
            self.captured_ms = src.captured_ms
            self.state = "stopped"
        self.update_static()

    def _fail(self, name: str, detail: str) -> None:
        exc = MicrophoneError(name, detail)
        with self.hold_sync():
            self.state, self.error_name = "error", name
            self.error = HELP_TEXTS.get(name, HELP_TEXTS["default"])
        for src in (self._next, self._current):
            if src is not None and not src.ended:
                src.fail(exc)
        self._next = None
        self.update_static()

    # -- static ---------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        last = self.recordings[-1] if self.recordings else None
        took = f", last recording {last.captured_ms / 1000:.1f} s" if last is not None else ""
        err = f", error {self.error_name}" if self.error_name else ""
        return f"<Microphone {self.state}{took}{err}>"

    def static_png(self, *, width: float = 8.0, dpi: int = 90) -> bytes:
        """A picture of the last recording's waveform (or of the state, before any), saved beside the view."""
        from matplotlib.figure import Figure

        from ..audio import peaks

        last = self.recordings[-1] if self.recordings else None
        audio = last.audio() if last is not None else None
        fig = Figure(figsize=(width, 1.5), dpi=dpi)
        ax = fig.add_axes((0.01, 0.08, 0.98, 0.62))
        ax.set_axis_off()
        if audio is not None and audio.n_samples:
            env = peaks(audio.samples, 800)
            x = np.linspace(0, audio.duration_s, len(env))
            ax.fill_between(x, env[:, 0], env[:, 1], color="#444", lw=0)
            ax.set_xlim(0, max(audio.duration_s, 1e-3))
            ax.set_ylim(-1, 1)
            head = (f"Microphone · recorded {audio.duration_s:.1f} s, PCM16 mono {audio.sample_rate} Hz"
                    + (f" · {last.device}" if last.device else ""))
        else:
            head = "Microphone · nothing recorded (a live widget: run the notebook in Jupyter to record)"
        fig.text(0.01, 0.93, head, fontsize=9.5, weight="bold", va="top")
        if self.error:
            fig.text(0.01, 0.76, f"{self.error_name}: {self.error}"[:150], fontsize=8, color="#82071e", va="top")
        return figure_png(fig)
