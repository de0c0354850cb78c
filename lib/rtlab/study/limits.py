"""Rate limits shared by every worker of a study, and the back-off after a 429.

Layer: runs (study). A target's :class:`~rtlab.study.spec.RateLimit` caps concurrent remote sessions and the audio
minutes sent per minute. The arithmetic is sans-I/O (:class:`TokenBucket`, :func:`backoff_delay`); two thin
holders apply it:

* :class:`ProcessLimiter` — asyncio primitives, for the in-process executor (one event loop, one process);
* :class:`ClusterLimiter` — ``dask.distributed`` primitives kept by the scheduler, so every worker of a cluster
  shares one budget: a named ``Semaphore`` for sessions (a lease expires if its worker dies) and a token bucket
  in a named ``Variable`` updated under a named ``Lock``.

A unit holds ``condition.n_sessions()`` session leases and takes ``audio minutes × sessions`` tokens before it
connects. Units refused with HTTP 429 or ``rate_limit_exceeded`` wait :func:`backoff_delay` (exponential with full
jitter, bounded, never shorter than the server's "try again in" hint) and run again, up to ``max_attempts``; a
hint longer than ``backoff_cap_s`` (Azure says "retry after 86400 seconds" for a spent daily quota) fails the
unit at once with that message instead of sleeping for a day.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .spec import RateLimit, Unit

__all__ = ["ClusterLimiter", "ProcessLimiter", "TokenBucket", "backoff_delay", "unit_cost"]


# --------------------------------------------------------------------------------------------------
# Sans-I/O arithmetic
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TokenBucket:
    """A token bucket as a value: ``rate`` tokens per second, at most ``capacity``; ``tokens`` at time ``t``.

    :meth:`take` returns the new bucket and how long to wait before the work may start. Work larger than the
    capacity waits for a full bucket and then drives it negative, so it is never refused forever.
    """

    rate: float
    capacity: float
    tokens: float
    t: float

    @classmethod
    def per_minute(cls, per_minute: float, now: float) -> TokenBucket:
        return cls(rate=per_minute / 60.0, capacity=float(per_minute), tokens=float(per_minute), t=now)

    def at(self, now: float) -> TokenBucket:
        """The bucket refilled up to ``now``."""
        tokens = min(self.capacity, self.tokens + max(0.0, now - self.t) * self.rate)
        return TokenBucket(self.rate, self.capacity, tokens, max(now, self.t))

    def take(self, cost: float, now: float) -> tuple[TokenBucket, float]:
        """Reserve ``cost`` tokens: (bucket after the reservation, seconds to wait before starting)."""
        b = self.at(now)
        need = min(cost, b.capacity)  # what must be in the bucket before starting
        wait = 0.0 if b.tokens >= need else (need - b.tokens) / b.rate
        return TokenBucket(b.rate, b.capacity, b.tokens - cost, b.t), wait


def backoff_delay(attempt: int, *, base_s: float, cap_s: float, seed: Any, hint_s: float | None = None) -> float:
    """Seconds to wait before attempt ``attempt + 1`` after a rate-limit refusal (``attempt`` counts from 1).

    Full jitter: uniform in [0, min(cap, base × 2^(attempt-1))], drawn from a generator seeded with
    ``(seed, attempt)`` so a unit's waits repeat; never shorter than the server's hint, never longer than
    ``cap_s`` unless the hint says so.
    """
    ceiling = min(cap_s, base_s * (2 ** max(0, attempt - 1)))
    delay = random.Random(f"{seed}:{attempt}").uniform(0.0, ceiling)
    return max(delay, hint_s or 0.0)


def unit_cost(unit: Unit, audio_s: float | None = None) -> tuple[int, float]:
    """(session leases, audio-minute tokens) a unit needs: each remote session hears the whole file once."""
    sessions = unit.condition.n_sessions()
    if audio_s is None:
        import soundfile as sf

        try:
            audio_s = sf.info(unit.item.audio_path).duration
        except Exception:  # unreadable files fail in the unit itself, with the reason
            audio_s = 0.0
    speed = unit.condition.transforms and [t.factor for t in unit.condition.transforms if t.kind == "speed"]
    for f in speed or []:
        audio_s /= f
    minutes = (audio_s + unit.run.tail_ms / 1000.0) / 60.0
    return sessions, minutes * sessions


# --------------------------------------------------------------------------------------------------
# In one process (asyncio)
# --------------------------------------------------------------------------------------------------
class ProcessLimiter:
    """Per-target limits for units running as tasks of one event loop."""

    def __init__(self, limits: Mapping[str, RateLimit], *, clock=time.monotonic):
        self.limits = dict(limits)
        self._clock = clock
        self._sessions: dict[str, asyncio.Semaphore] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = asyncio.Lock()

    async def acquire(self, target: str, sessions: int, minutes: float) -> None:
        lim = self.limits.get(target)
        if lim is None:
            return
        if lim.sessions is not None:
            sem = self._sessions.setdefault(target, asyncio.Semaphore(lim.sessions))
            async with self._lock:  # take all leases of one unit together: no two units each half-served
                for _ in range(min(sessions, lim.sessions)):
                    await sem.acquire()
        if lim.audio_minutes_per_minute is not None:
            now = self._clock()
            bucket = self._buckets.get(target) or TokenBucket.per_minute(lim.audio_minutes_per_minute, now)
            self._buckets[target], wait = bucket.take(minutes, now)
            if wait > 0:
                await asyncio.sleep(wait)

    def release(self, target: str, sessions: int) -> None:
        lim = self.limits.get(target)
        if lim is not None and lim.sessions is not None:
            sem = self._sessions[target]
            for _ in range(min(sessions, lim.sessions)):
                sem.release()


# --------------------------------------------------------------------------------------------------
# Across a Dask cluster
# --------------------------------------------------------------------------------------------------
class ClusterLimiter:
    """Per-target limits shared through the Dask scheduler (call from inside a task; blocking)."""

    def __init__(self, study_id: str, limits: Mapping[str, RateLimit]):
        self.study_id = study_id
        self.limits = dict(limits)
        self._held: dict[str, list[Any]] = {}

    def _name(self, target: str, what: str) -> str:
        return f"rtlab-study-{self.study_id}-{target}-{what}"

    def acquire(self, target: str, sessions: int, minutes: float) -> None:
        from distributed import Lock, Semaphore, Variable

        lim = self.limits.get(target)
        if lim is None:
            return
        if lim.sessions is not None:
            sem = Semaphore(max_leases=lim.sessions, name=self._name(target, "sessions"))
            with Lock(self._name(target, "sessions-gate")):  # all leases of one unit together
                for _ in range(min(sessions, lim.sessions)):
                    sem.acquire()
            self._held[target] = [sem, min(sessions, lim.sessions)]
        if lim.audio_minutes_per_minute is not None:
            var = Variable(self._name(target, "bucket"))
            with Lock(self._name(target, "bucket-lock")):
                now = time.time()  # wall clock: the workers may be different machines
                try:
                    state = var.get(timeout=0)
                    bucket = TokenBucket(**state)
                except Exception:  # first use: a full bucket
                    bucket = TokenBucket.per_minute(lim.audio_minutes_per_minute, now)
                bucket, wait = bucket.take(minutes, now)
                var.set({"rate": bucket.rate, "capacity": bucket.capacity, "tokens": bucket.tokens, "t": bucket.t})
            if wait > 0:
                time.sleep(wait)

    def release(self, target: str, sessions: int) -> None:
        held = self._held.pop(target, None)
        if held:
            sem, n = held
            for _ in range(n):
                sem.release()
