"""Streaming speech recognition with PocketSphinx 5 (its US-English model ships inside the wheel: no download).

:class:`PocketSphinxAsr` implements :class:`rtlab.engines.base.AsrEngine`. Each :meth:`~PocketSphinxAsr.stream`
gets its own ``pocketsphinx.Decoder`` and decodes while audio arrives. Decoders are expensive to build (0.2 to
0.5 s and ~90 MB each: the 27 MB language model and the 130k-word dictionary are loaded each time), so finished
streams hand theirs back to a pool and the next stream reuses it, with its cepstral-mean state reset so that
results never depend on which decoder a stream got. Several streams can run at once from different threads.

Stable text (what realtime ``delta`` events carry)
--------------------------------------------------
PocketSphinx's partial hypothesis is revised as audio arrives, but Realtime deltas can never be taken back. So
:meth:`PocketSphinxStream.stable_text` applies *LocalAgreement-2*: a word becomes stable when two consecutive
partial hypotheses (taken at least ``partial_interval_ms`` of audio apart) agree on it, on where it ends, and on
every word before it, and it ended at least ``guard_ms`` before the newest audio. Stable text is append-only. At
:meth:`~PocketSphinxStream.finish` the final hypothesis is aligned after the stable words (by text when it
repeats them, else by time) and only its remainder is appended, so ``finish().text`` always starts with the last
``stable_text()``.

Word log-probabilities
----------------------
``Word.logprob`` is the natural log of the word's posterior probability in the decoder's lattice (PocketSphinx's
``Segment.prob`` with ``bestpath`` on, which pocketsphinx converts from its log-base-1.0001 integers to a
probability), clamped at ``ln(1e-10)``. It is 0.0 for a word that only appeared in a partial hypothesis.
``Transcript.avg_logprob`` is the mean over words. These feed the emulator's ``logprobs`` output.

Example
-------
>>> asr = PocketSphinxAsr()                                     # doctest: +SKIP
>>> rec = asr.stream()                                          # doctest: +SKIP
>>> for chunk in chunks_24k: rec.accept(chunk, 24000); print(rec.stable_text())  # doctest: +SKIP
>>> rec.finish().text                                           # doctest: +SKIP
'i would like a cup of coffee please'
"""

from __future__ import annotations

import math
import re
import threading
import time

import numpy as np
import pocketsphinx

from rtlab.audio import Resampler, resample
from rtlab.engines.base import Stability, Transcript, Word
from rtlab.errors import AudioError, ConfigError, RtlabError

__all__ = ["AcousticContext", "PocketSphinxAsr", "PocketSphinxStream"]

_DECODER_RATE = 16000
_FRAME_MS = 10  # pocketsphinx's default frame rate is 100 frames/s
_MIN_PROB = 1e-10
_ALT_PRON = re.compile(r"\(\d+\)$")


def _clean_word(token: str) -> str | None:
    """The spoken word of a decoder token, or None for fillers (<s>, </s>, <sil>, [NOISE], [SPEECH], +...+)."""
    if not token or token[0] in "<[+":
        return None
    return _ALT_PRON.sub("", token).lower() or None


def _words_from_seg(decoder: pocketsphinx.Decoder, *, with_prob: bool) -> list[Word]:
    words = []
    for seg in decoder.seg():
        text = _clean_word(seg.word)
        if text is None:
            continue
        # a posterior is at most 1; a pruned lattice can round it a hair above (log > 0): clamp
        logprob = min(0.0, math.log(max(float(seg.prob), _MIN_PROB))) if with_prob else 0.0
        words.append(Word(text, seg.start_frame * _FRAME_MS, (seg.end_frame + 1) * _FRAME_MS, logprob))
    return words


def _after(stable: list[Word], hyp: list[Word]) -> list[Word]:
    """The words of ``hyp`` that come after the ``stable`` words.

    When ``hyp`` starts with the stable words (the usual case) this is the rest of it; when the decoder has since
    revised a stable word, the alignment falls back to time: words that end after the last stable word's midpoint.
    """
    n = len(stable)
    if [w.text for w in hyp[:n]] == [w.text for w in stable]:
        return hyp[n:]
    if not stable:
        return hyp
    last = stable[-1]
    mid = (last.start_ms + last.end_ms) / 2
    return [w for w in hyp if w.start_ms >= mid or (w.end_ms > last.end_ms and w.start_ms > last.start_ms)]


class AcousticContext:
    """Channel adaptation carried from one stream to the next of the same audio source (one per session).

    PocketSphinx normalises features by a running cepstral mean (CMN) that adapts to the microphone, level and
    noise of the audio. A stream started without a context begins from the model's default mean, which suits
    clean speech near -20 dBFS; for telephone or noisy audio recognition improves as the mean adapts. Passing
    the same context to each ``asr.stream(context=...)`` of a session lets every turn start from the mean the
    previous turn of that session ended with, as a long-running live decoder would, while keeping results
    deterministic (they depend only on that session's own audio, never on other sessions).
    """

    def __init__(self) -> None:
        self.cmn: str | None = None  # pocketsphinx's comma-separated cepstral mean; None = the model default
        self.turns = 0  # streams that finished with this context

    def __repr__(self) -> str:
        return f"AcousticContext(turns={self.turns}, adapted={self.cmn is not None})"


def _check_language(language: str | None) -> None:
    if language is None:
        return
    if not isinstance(language, str) or not re.fullmatch(r"(?i)(en|eng|english)([-_][a-z0-9]+)*", language):
        raise ConfigError(
            f"the local PocketSphinx engine only knows English, got language={language!r}.",
            field="language",
            fix="use language='en' or None, or a service model for other languages",
        )


class PocketSphinxStream:
    """One utterance being decoded while audio arrives; implements :class:`rtlab.engines.base.StreamingRecognizer`.

    Get one from :meth:`PocketSphinxAsr.stream`. Use from one thread at a time (calls are serialized by a lock).
    Call :meth:`finish` (or :meth:`cancel`) to hand the decoder back to the engine's pool; it also works as a
    context manager that cancels an unfinished stream.
    """

    def __init__(
        self,
        engine: PocketSphinxAsr,
        decoder: pocketsphinx.Decoder,
        *,
        partial_interval_ms: int,
        guard_ms: int,
        keywords: list[str] | None,
        language: str | None,
        context: AcousticContext | None = None,
    ) -> None:
        self._engine = engine
        self.context = context
        self._decoder: pocketsphinx.Decoder | None = decoder
        self._lock = threading.Lock()
        self.partial_interval_ms = partial_interval_ms
        self.guard_ms = guard_ms
        self.boundary_tolerance_ms = engine.boundary_tolerance_ms
        self.keywords = list(keywords or [])
        self.language = language
        self._resampler: Resampler | None = None
        self._source_rate: int | None = None
        self._n16 = 0  # 16 kHz samples given to the decoder
        self._partial_at_ms = -math.inf  # audio time of the last partial hypothesis
        self._prev_hyp: list[Word] | None = None
        self._stable: list[Word] = []
        self._final: Transcript | None = None
        self.decode_seconds = 0.0  # CPU-side time spent in the decoder (process_raw + hypotheses)
        decoder.start_utt()

    def __enter__(self) -> PocketSphinxStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()

    @property
    def audio_ms(self) -> float:
        """Audio decoded so far (ms)."""
        return self._n16 * 1000.0 / _DECODER_RATE

    @property
    def finished(self) -> bool:
        return self._final is not None or self._decoder is None

    def accept(self, pcm: np.ndarray, sample_rate: int) -> None:
        """Feed more audio: 1-D int16 at ``sample_rate`` (the same rate for the whole stream)."""
        with self._lock:
            if self.finished:
                raise RtlabError("accept() after finish() or cancel(); start a new stream with asr.stream()")
            pcm = np.asarray(pcm)
            if pcm.ndim != 1 or pcm.dtype != np.int16:
                raise AudioError(
                    "<asr stream>", f"expected 1-D int16 samples, got dtype {pcm.dtype} shape {pcm.shape}"
                )
            if self._resampler is None:
                self._resampler = Resampler(sample_rate, _DECODER_RATE)
                self._source_rate = sample_rate
            elif sample_rate != self._source_rate:
                raise AudioError(
                    "<asr stream>",
                    f"sample rate changed from {self._source_rate} to {sample_rate} Hz within one stream; "
                    "use one rate per stream",
                )
            self._process(self._resampler.process(pcm))

    def _process(self, pcm16: np.ndarray) -> None:
        if len(pcm16) == 0:
            return
        t0 = time.perf_counter()
        self._decoder.process_raw(pcm16.tobytes())
        self.decode_seconds += time.perf_counter() - t0
        self._n16 += len(pcm16)

    def stable_text(self) -> str:
        """Words that will not change any more (append-only across calls). See the module docstring."""
        with self._lock:
            if self._final is not None:
                return self._final.text
            if self._decoder is None:
                return self._text(self._stable)
            now_ms = self.audio_ms
            if now_ms - self._partial_at_ms >= self.partial_interval_ms:
                self._partial_at_ms = now_ms
                t0 = time.perf_counter()
                hyp = (
                    _words_from_seg(self._decoder, with_prob=False) if self._decoder.hyp() is not None else []
                )
                self.decode_seconds += time.perf_counter() - t0
                if self._prev_hyp is not None:
                    self._agree(self._prev_hyp, hyp, now_ms)
                self._prev_hyp = hyp
            return self._text(self._stable)

    def _agree(self, prev: list[Word], cur: list[Word], now_ms: float) -> None:
        for a, b in zip(_after(self._stable, prev), _after(self._stable, cur), strict=False):
            if a.text != b.text or abs(a.end_ms - b.end_ms) > self.boundary_tolerance_ms:
                break
            if b.end_ms > now_ms - self.guard_ms:
                break
            self._stable.append(b)

    @staticmethod
    def _text(words: list[Word]) -> str:
        return " ".join(w.text for w in words)

    def finish(self) -> Transcript:
        """End of utterance: decode the rest and return the transcript (its text starts with the stable text)."""
        with self._lock:
            if self._final is not None:
                return self._final
            if self._decoder is None:
                raise RtlabError("finish() after cancel(); start a new stream with asr.stream()")
            if self._resampler is not None:
                self._process(self._resampler.flush())
            t0 = time.perf_counter()
            self._decoder.end_utt()
            final = _words_from_seg(self._decoder, with_prob=True) if self._decoder.hyp() is not None else []
            self.decode_seconds += time.perf_counter() - t0
            if self.context is not None:
                self.context.cmn = self._decoder.get_cmn()
                self.context.turns += 1
            self._engine._release(self._decoder)
            self._decoder = None
            words = [_rescore(w, final) for w in self._stable] + _after(self._stable, final)
            self._final = _transcript(words, self.audio_ms)
            return self._final

    def cancel(self) -> None:
        """Abandon the utterance (e.g. ``input_audio_buffer.clear``) and return the decoder to the pool."""
        with self._lock:
            if self._decoder is None or self._final is not None:
                return
            try:
                self._decoder.end_utt()
            finally:
                self._engine._release(self._decoder)
                self._decoder = None


def _rescore(word: Word, final: list[Word]) -> Word:
    """A stable word with the log-probability (and times) of the same word in the final hypothesis, if present."""
    for f in final:
        if f.text == word.text and f.start_ms < word.end_ms and f.end_ms > word.start_ms:
            return f
    return word


def _transcript(words: list[Word], audio_ms: float) -> Transcript:
    avg = sum(w.logprob for w in words) / len(words) if words else 0.0
    return Transcript(" ".join(w.text for w in words), tuple(words), avg, audio_ms)


class PocketSphinxAsr:
    """PocketSphinx 5 (bundled en-us acoustic model, 3-gram LM, CMU dictionary); implements ``AsrEngine``.

    Parameters
    ----------
    partial_interval_ms : int
        Minimum audio between two partial hypotheses compared by LocalAgreement-2 (smaller → earlier stable
        words, more CPU).
    guard_ms : int
        A word becomes stable only once it ended at least this long before the newest audio (the decoder often
        still extends the last word of a partial hypothesis).
    boundary_tolerance_ms : int
        The two agreeing hypotheses must also place the word's end within this many ms of each other (0: the
        same 10 ms frame); a word whose end still moves is not settled yet.
    max_idle_decoders : int
        Decoders kept for reuse after streams finish (each holds about 90 MB: its own copy of the language
        model and dictionary).
    prewarm : int
        Decoders built right away, so the first streams do not wait for one.
    **config
        Extra ``pocketsphinx.Config`` options (e.g. ``hmm=``, ``lm=``, ``dict=`` for another model on disk, or
        ``fwdflat=True`` to add the second search pass: slightly more accurate, slower ``finish()``).

    Notes
    -----
    ``keywords`` passed to :meth:`stream` / :meth:`transcribe` are accepted and ignored: the bundled n-gram
    model cannot be biased per stream without rebuilding the decoder. ``language`` must be English (``en``,
    ``en-US``, ...) or None; anything else raises :class:`~rtlab.errors.ConfigError`.
    """

    name = "pocketsphinx"

    def __init__(
        self,
        *,
        partial_interval_ms: int = 100,
        guard_ms: int = 100,
        boundary_tolerance_ms: int = 0,
        max_idle_decoders: int = 8,
        prewarm: int = 1,
        **config: object,
    ) -> None:
        for field, value in (
            ("partial_interval_ms", partial_interval_ms),
            ("guard_ms", guard_ms),
            ("boundary_tolerance_ms", boundary_tolerance_ms),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10_000:
                raise ConfigError(
                    f"{field} must be an integer between 0 and 10000 ms, got {value!r}.", field=field
                )
        self.partial_interval_ms = partial_interval_ms
        self.guard_ms = guard_ms
        self.boundary_tolerance_ms = boundary_tolerance_ms
        self.max_idle_decoders = max_idle_decoders
        # fwdflat (a second search pass run at end of utterance) costs ~30 ms per second of speech at finish()
        # for a small accuracy gain; off by default so final transcripts follow speech_stopped quickly.
        self._config = {"loglevel": "FATAL", "fwdflat": False, **config}
        self._idle: list[pocketsphinx.Decoder] = []
        self._lock = threading.Lock()
        self._initial_cmn: str | None = None
        self.decoders_built = 0
        self.build_seconds: list[float] = []  # construction time of each decoder built
        for _ in range(prewarm):
            self._idle.append(self._build())

    def __repr__(self) -> str:
        return f"PocketSphinxAsr(partial_interval_ms={self.partial_interval_ms}, guard_ms={self.guard_ms})"

    def _build(self) -> pocketsphinx.Decoder:
        t0 = time.perf_counter()
        try:
            decoder = pocketsphinx.Decoder(pocketsphinx.Config(**self._config))
        except (RuntimeError, ValueError, KeyError) as exc:
            raise RtlabError(
                f"cannot build a PocketSphinx decoder with options {self._config!r}: {exc}"
            ) from exc
        with self._lock:
            self.build_seconds.append(time.perf_counter() - t0)
            self.decoders_built += 1
            if self._initial_cmn is None:
                self._initial_cmn = decoder.get_cmn()
        return decoder

    def _acquire(self, context: AcousticContext | None = None) -> pocketsphinx.Decoder:
        with self._lock:
            decoder = self._idle.pop() if self._idle else None
        if decoder is None:
            decoder = self._build()
        # The front end adapts during an utterance (its noise-removal estimates, the cepstral mean): start it
        # afresh (reinit_feat: ~0.1 ms), then from the session's mean (or the model default), so a stream never
        # depends on whatever another stream left in a pooled decoder (a study's units must repeat exactly).
        decoder.reinit_feat()
        decoder.set_cmn(context.cmn if context is not None and context.cmn else self._initial_cmn)
        return decoder

    def _release(self, decoder: pocketsphinx.Decoder) -> None:
        with self._lock:
            if len(self._idle) < self.max_idle_decoders:
                self._idle.append(decoder)

    def stream(
        self,
        *,
        keywords: list[str] | None = None,
        language: str | None = None,
        context: AcousticContext | None = None,
        stability: Stability | None = None,
    ) -> PocketSphinxStream:
        """Start decoding one utterance; feed it with ``accept()``.

        ``keywords`` is ignored (see class notes). ``context`` (one :class:`AcousticContext` per session)
        carries channel adaptation from this session's previous turns. ``stability`` overrides the engine's
        ``partial_interval_ms``/``guard_ms`` for this stream (e.g. a ``delay`` setting).
        """
        _check_language(language)
        if context is not None and not isinstance(context, AcousticContext):
            raise ConfigError(f"context must be an AcousticContext, got {type(context).__name__}.")
        return PocketSphinxStream(
            self,
            self._acquire(context),
            context=context,
            partial_interval_ms=self.partial_interval_ms if stability is None else stability.partial_interval_ms,
            guard_ms=self.guard_ms if stability is None else stability.guard_ms,
            keywords=keywords,
            language=language,
        )

    def new_context(self) -> AcousticContext:
        """A fresh per-stream :class:`AcousticContext` (channel adaptation carried across one stream's turns)."""
        return AcousticContext()

    def transcribe(self, pcm: np.ndarray, sample_rate: int, **kw: object) -> Transcript:
        """Decode a whole utterance (1-D int16 at ``sample_rate``). Accepts ``keywords=`` and ``language=``."""
        unknown = set(kw) - {"keywords", "language"}
        if unknown:
            raise ConfigError(
                f"transcribe() got unknown options {sorted(unknown)}; it takes keywords= and language=."
            )
        _check_language(kw.get("language"))  # type: ignore[arg-type]
        pcm = np.asarray(pcm)
        if pcm.ndim != 1 or pcm.dtype != np.int16:
            raise AudioError(
                "<asr input>", f"expected 1-D int16 samples, got dtype {pcm.dtype} shape {pcm.shape}"
            )
        pcm16 = resample(pcm, sample_rate, _DECODER_RATE)
        decoder = self._acquire()
        try:
            decoder.start_utt()
            if len(pcm16):
                decoder.process_raw(pcm16.tobytes(), full_utt=True)
            decoder.end_utt()
            words = _words_from_seg(decoder, with_prob=True) if decoder.hyp() is not None else []
        finally:
            self._release(decoder)
        return _transcript(words, len(pcm16) * 1000.0 / _DECODER_RATE)
