"""Input transcription: the transcription model's events for each committed user item.

Layer: emulator. The transcription model runs beside the voice model, asynchronously to the response (documented:
the SDK docstring of ``...input_audio_transcription.completed``, "may come before or after the Response events"):
the session starts the response at the commit and hands this module the pipeline's :class:`Final` of the turn; the
events built here go out when :mod:`.timing` says.

Per model (catalogue :class:`rtlab.protocol.Latency`): ``stream`` models send the pipeline's stable text as deltas
while audio arrives, then the rest with the final; ``burst`` models send every delta right before the final;
``single`` (whisper-1) sends one delta holding the whole turn. ``logprobs`` (with ``include``) are the recognizer's
word posteriors, only for models documented to return them (catalogue ``logprobs``); diarization models
(``gpt-4o-transcribe-diarize``) send a ``segment`` per turn labelled by :class:`rtlab.engines.speakers.SpeakerTracker`.
The provider profile may make a model fail per turn (``outcome: failed``), with the message it reports.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from rtlab import protocol as P
from rtlab.engines.pipeline import Final
from rtlab.engines.speakers import SpeakerTracker

from ..adapter import Later
from ..profiles import Profile
from .base import SAMPLE_RATE, Events
from .timing import TimingModel
from .usage import transcription_usage

__all__ = ["Transcriber", "logprobs"]

log = logging.getLogger("rtlab.emulator")


def logprobs(words: list[tuple[str, float]]) -> list[dict]:
    # Log probabilities are <= 0 by definition; engines may round a near-certain word slightly above.
    return [{"token": w, "bytes": list(w.encode("utf-8")), "logprob": min(0.0, round(float(lp), 4))}
            for w, lp in words]


class Transcriber:
    """The transcription model of one session (its configuration changes with ``session.update``)."""

    def __init__(self, *, events: Events, profile: Profile, surface: str, timing: TimingModel) -> None:
        self.events = events
        self.profile = profile
        self.surface = surface
        self.timing = timing
        self.config: dict | None = None  # session.audio.input.transcription (with a model), or None
        self.include_logprobs = False
        self._emitted: dict[str, str] = {}  # streamed text per item
        self._speakers: SpeakerTracker | None = None

    # --------------------------------------------------------------------------------------------- config
    def configure(self, transcription: Any, include: Any) -> None:
        self.config = transcription if isinstance(transcription, dict) and transcription.get("model") else None
        self.include_logprobs = P.LOGPROBS_INCLUDE in (include or [])

    @property
    def model(self) -> str | None:
        """The model behind the configured name (an Azure deployment name is mapped)."""
        if self.config is None:
            return None
        return self.profile.resolve_model(self.config["model"]) or self.config["model"]

    @property
    def capability(self) -> P.TranscriptionModel | None:
        return P.transcription_model(self.model)

    def outcome(self) -> Any:
        return self.profile.transcription_outcome(self.surface, self.config["model"]) if self.config else None

    def streams(self) -> bool:
        """True when deltas go out while audio arrives."""
        outcome = self.outcome()
        if outcome is None or outcome.outcome != "accepted":
            return False
        if outcome.streams is not None:
            return outcome.streams
        cap = self.capability
        return bool(cap and cap.streaming)

    def _pattern(self) -> str:
        if self.streams():
            return "stream"
        cap = self.capability
        pattern = cap.latency.deltas if cap is not None else "burst"
        return "burst" if pattern == "stream" else pattern

    def _wants_logprobs(self) -> bool:
        cap = self.capability
        return self.include_logprobs and cap is not None and cap.logprobs

    # --------------------------------------------------------------------------------------------- events
    def partial(self, item_id: str, delta: str) -> dict | None:
        """A delta for stable text that grew while the user speaks (streaming models only)."""
        if self.config is None or not self.streams() or not delta:
            return None
        self._emitted[item_id] = self._emitted.get(item_id, "") + delta
        return self.events.ev("conversation.item.input_audio_transcription.delta", item_id=item_id,
                              content_index=0, delta=delta)

    def discard(self, item_id: str | None) -> None:
        if item_id is not None:
            self._emitted.pop(item_id, None)

    def final(self, item_id: str, final: Final | None, *, heard: str, audio_s: float, end_wall: float,
              now: float, error: bool = False) -> list[Any]:
        """The transcription events of a committed item, timed (a list of events, or :class:`Later` items).

        ``end_wall``: wall time at which the true end of speech arrived; ``now``: the session clock now.
        """
        emitted = self._emitted.pop(item_id, "")
        if self.config is None:
            return []
        text = heard if emitted else heard.strip()
        if emitted and not text.startswith(emitted):
            log.warning("emulator: ASR final text does not extend its stable text; keeping the streamed text")
            text = emitted
        outcome = self.outcome()
        out: list[dict | None] = []
        if error or outcome.outcome == "failed":
            if error:
                err = {"type": "server_error", "code": None, "param": None,
                       "message": "Input transcription failed: the transcription engine had an error."}
            else:
                err = {"type": outcome.type or "server_error", "code": outcome.code, "param": outcome.param,
                       "message": (outcome.message or "Input transcription failed for item '{item}'.")
                       .replace("{item}", item_id)}
            out.append(self.events.ev("conversation.item.input_audio_transcription.failed", item_id=item_id,
                                      content_index=0, error=err))
            return self._timed(out, end_wall, now)
        words = list(final.transcript.words) if final is not None else []
        pattern = self._pattern()
        delta_ev = "conversation.item.input_audio_transcription.delta"
        if pattern == "stream":
            rest = text[len(emitted):]
            if rest:
                out.append(self.events.ev(delta_ev, item_id=item_id, content_index=0, delta=rest))
        elif pattern == "single":
            if text:
                out.append(self.events.ev(delta_ev, item_id=item_id, content_index=0, delta=text))
        else:
            pieces = re.findall(r"\s*\S+\s*$|\s*\S+", text)
            for k, piece in enumerate(pieces):
                fields: dict[str, Any] = {"item_id": item_id, "content_index": 0, "delta": piece}
                if self._wants_logprobs():
                    lp = words[k].logprob if k < len(words) and words[k].text == piece.strip() else 0.0
                    fields["logprobs"] = logprobs([(piece, lp)])
                out.append(self.events.ev(delta_ev, **fields))
        cap = self.capability
        if cap is not None and cap.diarize and text and final is not None:
            out.append(self._segment(item_id, final, text))
        fields = {"item_id": item_id, "content_index": 0, "transcript": text,
                  "usage": transcription_usage(cap, audio_s, text, self.config)}
        if self._wants_logprobs():
            pairs = [(w.text, w.logprob) for w in words] if " ".join(w.text for w in words) == text.strip() else \
                [(tok, final.transcript.avg_logprob if final else 0.0) for tok in text.split()]
            fields["logprobs"] = logprobs(pairs)
        if cap is not None and cap.languages_keywords:
            fields["languages"] = [{"code": self.config.get("language") or ((self.config.get("languages") or
                                                                               ["en"])[0])}]
        out.append(self.events.ev("conversation.item.input_audio_transcription.completed", **fields))
        return self._timed(out, end_wall, now)

    def _segment(self, item_id: str, final: Final, text: str) -> dict | None:
        if self._speakers is None:
            self._speakers = SpeakerTracker(sample_rate=SAMPLE_RATE)
        words = final.transcript.words
        timed = bool(words) and words[-1].end_ms > words[0].start_ms
        start = words[0].start_ms / 1000 if timed else 0.0
        end = words[-1].end_ms / 1000 if timed else len(final.audio) / SAMPLE_RATE
        lo, hi = int(start * SAMPLE_RATE), max(int(end * SAMPLE_RATE), int(start * SAMPLE_RATE) + 1)
        audio = final.audio[lo:hi] if hi - lo > SAMPLE_RATE // 10 else final.audio
        try:
            speaker = self._speakers.assign(audio)
        except Exception:  # too little audio to measure: the previous (or first) speaker
            log.exception("emulator: speaker features failed")
            speaker = (self._speakers.labels or ["A"])[-1]
        return self.events.ev("conversation.item.input_audio_transcription.segment", id=self.events.id("seg"),
                              item_id=item_id, content_index=0, start=round(start, 3), end=round(end, 3),
                              speaker=speaker, text=text)

    def _timed(self, out: list[dict | None], end_wall: float, now: float) -> list[Any]:
        events = [e for e in out if e is not None]
        if not self.timing.modelled or not events:
            return events
        cap = self.capability
        latency = cap.latency if cap is not None else P.transcription_model("gpt-4o-transcribe").latency
        due = end_wall + self.timing.final_after_end_ms(latency) / 1000.0
        delay = max(0.0, due - now)
        return [Later(delay, e) for e in events]
