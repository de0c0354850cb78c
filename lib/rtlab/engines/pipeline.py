"""The one local recognition pipeline: turn detection plus streaming recognition on one audio stream.

Every offline speech surface of rtlab runs on a :class:`LocalPipeline`: the emulator's Realtime sessions (VAD
turns or client commits), its GPT-Live, translation and Azure Speech endpoints, and the local-engine sidecar. Each
of them maps the pipeline's events onto its own protocol; none keeps a VAD/ASR loop of its own.

Audio goes in as int16 mono chunks of any size (at ``sample_rate``, 24 kHz by default); events come out in
stream order:

=========================  ==========================================================================================
event                      meaning
=========================  ==========================================================================================
:class:`SpeechStarted`     the VAD heard speech; ``audio_start_ms`` includes the prefix padding
:class:`Partial`           the append-only stable text of the open segment grew by ``delta``
:class:`SpeechStopped`     the VAD closed the turn; ``speech_end_ms`` is the end of the last speech frame,
                           ``detected_ms`` the audio position at which the silence window had elapsed
:class:`Final`             the segment's transcript (after ``SpeechStopped``, a :meth:`~LocalPipeline.commit` or
                           :meth:`~LocalPipeline.flush`), with the segment's audio
=========================  ==========================================================================================

With ``vad=None`` there is no turn detection: audio since the last commit forms the open segment, and the caller
ends it with :meth:`LocalPipeline.commit` (the Realtime protocol's ``turn_detection: null``). A commit while the VAD
is in a turn cuts the turn short there; the VAD's own end of that turn is then swallowed. :meth:`clear` drops the
open segment and its audio without a transcript.

With ``include_silence=True`` a VAD turn's segment (its :class:`Final` audio and ``end_ms``) runs to where the
silence window had elapsed (``SpeechStopped.detected_ms``) instead of the end of the last speech frame: the audio a
Realtime server commits for a turn includes the silence that ended it.

Times are stream audio time in ms from the first sample fed. ``Partial`` events come only with
``partials=True``; how eagerly words become stable is the recognizer's :class:`Stability`.

Example
-------
>>> from rtlab.engines import default_engines                          # doctest: +SKIP
>>> pipe = LocalPipeline(default_engines())                            # doctest: +SKIP
>>> events = pipe.feed(pcm_24k) + pipe.flush()                         # doctest: +SKIP
>>> [e.transcript.text for e in events if isinstance(e, Final)]        # doctest: +SKIP
['i would like a cup of coffee please']
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from rtlab.engines.base import EngineSet, Stability, StreamingRecognizer, Transcript
from rtlab.engines.turns import TurnDetector
from rtlab.errors import AudioError, ConfigError

log = logging.getLogger("rtlab.engines")

__all__ = [
    "DEFAULT_VAD",
    "Final",
    "LocalPipeline",
    "Partial",
    "PipelineEvent",
    "SpeechStarted",
    "SpeechStopped",
    "Stability",
    "VadParams",
]


@dataclass(frozen=True)
class VadParams:
    """``server_vad`` parameters (see :class:`rtlab.engines.turns.TurnDetector`)."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500


#: Server VAD at the service defaults.
DEFAULT_VAD = VadParams()


@dataclass(frozen=True)
class SpeechStarted:
    segment: int
    audio_start_ms: float  # onset minus prefix padding (where the segment's audio starts)
    detected_ms: float  # stream position when the VAD decided


@dataclass(frozen=True)
class Partial:
    segment: int
    delta: str  # appended text (with its leading space when it follows earlier words)
    text: str  # the whole stable text so far
    audio_ms: float  # stream position when it became stable


@dataclass(frozen=True)
class SpeechStopped:
    segment: int
    speech_end_ms: float  # end of the last speech frame
    detected_ms: float  # stream position when the silence window had elapsed (≈ speech_end + silence)


@dataclass(frozen=True)
class Final:
    segment: int
    start_ms: float
    end_ms: float
    transcript: Transcript
    cause: Literal["vad", "commit", "flush"]
    audio: np.ndarray = field(repr=False, compare=False)  # int16 samples of the segment at the pipeline's rate
    streamed: str = ""  # the stable text already announced by Partial events (``transcript.text`` starts with it)
    failed: bool = False  # the recognizer raised while decoding this segment (the transcript is what it had)


PipelineEvent = SpeechStarted | Partial | SpeechStopped | Final


class LocalPipeline:
    """VAD turns (or caller commits) plus one streaming recognizer per segment.

    Parameters
    ----------
    engines : EngineSet
        ``vad_factory`` and ``asr`` are used (``tts`` is not).
    vad : VadParams or None
        Server-VAD turn detection; ``None``: the caller commits.
    partials : bool
        Emit :class:`Partial` events as stable text grows (streaming models); else only :class:`Final`.
    stability : Stability, optional
        Per-stream override of the recognizer's stability (engines that cannot take it ignore it).
    language, keywords
        Passed to the recognizer.
    sample_rate : int
        Rate of the audio fed.
    recognize : bool
        False: turn events only, no recognizer (``Final`` carries an empty transcript).
    include_silence : bool
        End VAD segments where the silence window elapsed (the turn's audio includes it) instead of at the end of
        the last speech frame.
    """

    def __init__(self, engines: EngineSet, *, vad: VadParams | None = DEFAULT_VAD, partials: bool = True,
                 stability: Stability | None = None, language: str | None = None,
                 keywords: list[str] | None = None, sample_rate: int = 24000, recognize: bool = True,
                 include_silence: bool = False) -> None:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise ConfigError(f"sample_rate must be a positive integer in Hz, got {sample_rate!r}.")
        self.engines = engines
        self.sample_rate = sample_rate
        self.partials = partials
        self.stability = stability
        self.language = language
        self.keywords = list(keywords) if keywords else None
        self.recognize = recognize
        self.include_silence = include_silence
        self._context = _new_context(engines)
        self._n = 0  # samples fed
        self._buf = np.zeros(0, dtype=np.int16)  # audio kept from sample _buf0 (history or the open segment)
        self._buf0 = 0
        self._seg: int | None = None  # open segment number
        self._seg_start = 0  # its first sample
        self._fed = 0  # samples of the open segment given to the recognizer (absolute index)
        self._rec: StreamingRecognizer | None = None
        self._stable = ""
        self._segments = 0
        self._swallow = False  # a commit/clear cut the VAD's turn short: drop its SpeechStopped
        self._rec_failed = False  # the open segment's recognizer raised: its Final says failed
        self._detector: TurnDetector | None = None
        self._detector_offset = 0
        self.vad = vad
        self.configure(vad)

    def __repr__(self) -> str:
        return (f"LocalPipeline(vad={self.vad!r}, partials={self.partials}, audio_ms={self.audio_ms:.0f}, "
                f"open={self._seg is not None})")

    # ---------------------------------------------------------------------------------------------- state
    @property
    def audio_ms(self) -> float:
        """Stream audio fed so far (ms)."""
        return self._n * 1000.0 / self.sample_rate

    @property
    def in_segment(self) -> bool:
        """True while a segment is open (VAD in speech, or uncommitted audio without VAD)."""
        return self._seg is not None

    @property
    def in_speech(self) -> bool:
        """True between the VAD's SpeechStarted and SpeechStopped (always False without VAD)."""
        return self._detector is not None and self._detector.in_speech and not self._swallow

    @property
    def stable_text(self) -> str:
        """The stable text of the open segment so far (with ``partials=True``; else "")."""
        return self._stable

    @property
    def last_speech_end_ms(self) -> float | None:
        """Stream time (ms) of the end of the last speech frame the VAD heard in the open turn; None without VAD."""
        if self._detector is None:
            return None
        return self._detector_offset * 1000.0 / self.sample_rate + self._detector.last_speech_end_ms

    @property
    def uncommitted_ms(self) -> float:
        """Audio of the open segment (ms); what a commit would end."""
        return 0.0 if self._seg is None else (self._n - self._seg_start) * 1000.0 / self.sample_rate

    def configure(self, vad: VadParams | None) -> None:
        """Switch turn detection on, off, or change its parameters mid-stream (an open segment stays open)."""
        self.vad = vad
        if vad is None:
            self._detector = None
            return
        if self._detector is not None:
            self._detector.configure(threshold=vad.threshold, prefix_padding_ms=vad.prefix_padding_ms,
                                     silence_duration_ms=vad.silence_duration_ms)
            return
        self._detector = TurnDetector(self.engines.vad_factory(), threshold=vad.threshold,
                                      prefix_padding_ms=vad.prefix_padding_ms,
                                      silence_duration_ms=vad.silence_duration_ms, sample_rate=self.sample_rate)
        self._detector_offset = self._n  # a detector made mid-stream counts from here

    def restart_vad(self) -> None:
        """Start turn detection afresh at the current position (after a caller ended a VAD turn early)."""
        self._detector = None
        self._swallow = False
        self.configure(self.vad)

    def segment_audio(self) -> np.ndarray:
        """Samples of the open segment so far (empty when none is open)."""
        if self._seg is None:
            return np.zeros(0, dtype=np.int16)
        return self._buf[self._seg_start - self._buf0:].copy()

    # ---------------------------------------------------------------------------------------------- input
    def feed(self, pcm: np.ndarray) -> list[PipelineEvent]:
        """Add audio (1-D int16 at ``sample_rate``) and return the events it caused."""
        pcm = np.asarray(pcm)
        if pcm.ndim != 1 or pcm.dtype != np.int16:
            raise AudioError("<local pipeline input>",
                             f"expected 1-D int16 samples at {self.sample_rate} Hz, got dtype {pcm.dtype} "
                             f"shape {pcm.shape}")
        events: list[PipelineEvent] = []
        start = self._n
        self._buf = np.concatenate([self._buf, pcm]) if len(self._buf) else pcm.copy()
        self._n += len(pcm)
        if self._detector is None:
            if len(pcm) and self._seg is None:
                self._open(start, events, announce=False)
            self._advance(self._n, events)
            return events
        for te in self._detector.feed(pcm):
            at = self._detector_offset + self._samples(te.audio_ms)
            detected = self._detector_offset + self._samples(te.detected_ms)
            if te.kind == "speech_started":
                self._swallow = False
                if self._seg is None:
                    self._open(max(at, self._buf0), events, announce=True, detected=detected)
            elif self._swallow:
                self._swallow = False
            elif self._seg is not None:
                end = min(max(detected, at), self._n) if self.include_silence else at
                self._advance(end, events)
                events.append(SpeechStopped(self._seg, self._ms(at), self._ms(detected)))
                self._close(end, "vad", events)
        if self._seg is not None:
            self._advance(self._n, events)
        else:
            self._trim_history()
        return events

    def commit(self) -> list[PipelineEvent]:
        """End the open segment at the current position (a client commit); [] when nothing is open."""
        if self._seg is None:
            return []
        if self.in_speech:
            self._swallow = True
        events: list[PipelineEvent] = []
        self._advance(self._n, events)
        self._close(self._n, "commit", events)
        return events

    def clear(self) -> None:
        """Drop the open segment and the audio so far, without a transcript."""
        if self.in_speech:
            self._swallow = True
        self._discard()
        self._seg = None
        self._buf = np.zeros(0, dtype=np.int16)
        self._buf0 = self._n

    def flush(self) -> list[PipelineEvent]:
        """End of stream: close an open VAD turn (or commit pending audio without VAD)."""
        events: list[PipelineEvent] = []
        if self._detector is not None:
            for te in self._detector.flush():
                at = self._detector_offset + self._samples(te.audio_ms)
                if self._swallow or self._seg is None:
                    self._swallow = False
                    continue
                end = self._n if self.include_silence else at
                self._advance(end, events)
                events.append(SpeechStopped(self._seg, self._ms(at), self._ms(self._n)))
                self._close(end, "flush", events)
        elif self._seg is not None and self._n > self._seg_start:
            self._advance(self._n, events)
            self._close(self._n, "flush", events)
        return events

    def close(self) -> None:
        """Release the recognizer (its pooled decoder); the pipeline takes no more audio afterwards."""
        self._discard()
        self._seg = None

    # --------------------------------------------------------------------------------------------- inside
    def _samples(self, ms: float) -> int:
        return int(round(ms * self.sample_rate / 1000))

    def _ms(self, samples: int) -> float:
        return samples * 1000.0 / self.sample_rate

    def _open(self, at: int, events: list[PipelineEvent], *, announce: bool, detected: int | None = None) -> None:
        self._segments += 1
        self._seg = self._segments
        self._seg_start = at
        self._fed = at
        self._stable = ""
        self._rec_failed = False
        self._rec = None
        if self.recognize:
            try:
                self._rec = self._new_recognizer()
            except Exception:  # an engine failure fails this segment's transcript, never the stream
                log.exception("local pipeline: the recognizer could not start a stream")
                self._rec_failed = True
        if at > self._buf0:  # drop history before the segment
            self._buf = self._buf[at - self._buf0:]
            self._buf0 = at
        if announce:
            events.append(SpeechStarted(self._seg, self._ms(at), self._ms(detected if detected is not None else at)))

    def _new_recognizer(self) -> StreamingRecognizer:
        kw: dict[str, object] = {"language": self.language}
        if self.keywords:
            kw["keywords"] = self.keywords
        if self._context is not None:
            kw["context"] = self._context
        if self.stability is not None and _takes(self.engines.asr, "stability"):
            kw["stability"] = self.stability
        return self.engines.asr.stream(**kw)

    def _advance(self, upto: int, events: list[PipelineEvent]) -> None:
        """Give the recognizer the open segment's audio up to absolute sample ``upto``; emit stable growth."""
        if self._rec is None or upto <= self._fed:
            return
        lo, hi = self._fed - self._buf0, upto - self._buf0
        self._fed = upto
        try:
            self._rec.accept(self._buf[lo:hi], self.sample_rate)
            stable = self._rec.stable_text() if self.partials else ""
        except Exception:
            log.exception("local pipeline: the recognizer failed while decoding")
            self._fail_recognizer()
            return
        if not self.partials:
            return
        if len(stable) > len(self._stable) and stable.startswith(self._stable):
            delta = stable[len(self._stable):]
            self._stable = stable
            events.append(Partial(self._seg, delta, stable, self._ms(upto)))

    def _close(self, end: int, cause: Literal["vad", "commit", "flush"], events: list[PipelineEvent]) -> None:
        seg, start = self._seg, self._seg_start
        audio = self._buf[start - self._buf0:end - self._buf0].copy()
        transcript = Transcript("", audio_ms=self._ms(end - start))
        if self._rec is not None:
            try:
                transcript = self._rec.finish()
            except Exception:
                log.exception("local pipeline: the recognizer failed to finish a segment")
                self._rec_failed = True
            self._rec = None
        streamed = self._stable
        if streamed and not transcript.text.startswith(streamed):  # an engine broke append-only: keep the stream
            transcript = Transcript(streamed, transcript.words, transcript.avg_logprob, transcript.audio_ms)
        events.append(Final(seg, self._ms(start), self._ms(end), transcript, cause, audio, streamed,
                            failed=self._rec_failed))
        self._rec_failed = False
        self._seg = None
        self._stable = ""
        self._buf = self._buf[end - self._buf0:]
        self._buf0 = end

    def _fail_recognizer(self) -> None:
        rec, self._rec = self._rec, None
        self._rec_failed = True
        cancel = getattr(rec, "cancel", None)
        if cancel is not None:
            try:
                cancel()
            except Exception:
                log.exception("local pipeline: the recognizer failed to cancel")

    def _discard(self) -> None:
        rec, self._rec = self._rec, None
        cancel = getattr(rec, "cancel", None)
        if cancel is not None:
            cancel()
        self._stable = ""

    def _trim_history(self) -> None:
        """Outside a segment keep only what the next turn's prefix padding can reach back to."""
        pad = self.vad.prefix_padding_ms if self.vad is not None else 0
        keep = self._samples(pad + 1000)
        drop = max(0, len(self._buf) - keep)
        if drop:
            self._buf = self._buf[drop:]
            self._buf0 += drop


def _new_context(engines: EngineSet) -> object | None:
    make = getattr(engines.asr, "new_context", None)
    return make() if callable(make) else None


def _takes(asr: object, name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(asr.stream).parameters  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return False
