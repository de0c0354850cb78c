"""When the emulated service's text and audio arrive: the bare local engine, or modelled on published measurements.

Layer: emulator. Two modes (``rtlab serve --timing``):

``local``
    every event goes out as soon as the local engines have it (the bare PocketSphinx/flite pipeline: fast, and
    nothing like the service's timing);
``modelled``
    a transcription model's final transcript arrives a random time after the true end of speech, drawn from a
    lognormal distribution fitted to the model's published p50/p95 (:class:`rtlab.protocol.Latency`, with its
    evidence; seeded per session); its deltas follow the model's documented or reported pattern (``stream``: while
    audio arrives; ``burst``: all right before the final; ``single``: one delta holding the turn). An assistant's
    audio starts a modelled time after the end of speech and then streams at a modelled pace.

Numbers drawn here are emulated: they follow the sources' distributions, they are not measurements.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from rtlab.protocol.catalogue import Latency

__all__ = ["TIMINGS", "TimingModel", "lognormal_ms"]

TIMINGS: tuple[str, ...] = ("modelled", "local")
_Z95 = 1.6448536269514722


def lognormal_ms(rng: random.Random, p50_ms: float, p95_ms: float) -> float:
    """A draw from the lognormal distribution whose median is ``p50_ms`` and 95th percentile ``p95_ms``."""
    sigma = max(math.log(max(p95_ms, p50_ms) / p50_ms), 1e-9) / _Z95
    return float(math.exp(math.log(p50_ms) + sigma * rng.gauss(0.0, 1.0)))


@dataclass
class TimingModel:
    """The timing of one session: its mode and its own seeded random source (draws do not affect ids)."""

    mode: str = "local"
    seed: int | str | None = None
    first_audio_p50_ms: float = 1120.0
    first_audio_p95_ms: float = 2330.0
    audio_pace: float = 1.0  # audio seconds streamed per wall second once it has started

    def __post_init__(self) -> None:
        if self.mode not in TIMINGS:
            raise ValueError(f"timing must be one of {TIMINGS}, got {self.mode!r}")
        self.rng = random.Random(f"timing:{self.seed}") if self.seed is not None else random.Random()

    @property
    def modelled(self) -> bool:
        return self.mode == "modelled"

    def final_after_end_ms(self, latency: Latency) -> float:
        """Final transcript time after the true end of speech (ms), drawn from the model's latency."""
        return lognormal_ms(self.rng, latency.final_p50_ms, latency.final_p95_ms)

    def first_audio_after_end_ms(self) -> float:
        """Assistant audio start after the true end of speech (ms)."""
        return lognormal_ms(self.rng, self.first_audio_p50_ms, self.first_audio_p95_ms)
