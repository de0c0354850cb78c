"""Confidence intervals for the numbers rtlab reports: bootstrap over turns.

Layer: analysis. One helper, :func:`bootstrap_ci`, wraps :func:`scipy.stats.bootstrap` (percentile method,
seeded, so a notebook shows the same interval on every run) and returns an :class:`Interval` with the point
estimate computed the same way as the resampled statistic. Two statistics rtlab reports are provided:

- :func:`percentile` — numpy's default (linear interpolation) percentile, the definition
  :func:`rtlab.analysis.metrics.latency_summary` and :func:`rtlab.analysis.metrics.summary` use for p50/p95;
- :func:`corpus_wer` — total word errors over total reference words of a set of turns (paired arrays), the
  definition of :func:`rtlab.analysis.metrics.wer` on a group of turns.

With fewer than two values an interval cannot be estimated: the bounds are NaN and the estimate is kept (one number
is an anecdote, not an estimate). When every resample gives the same value (no errors in any turn) the interval
has zero width.

Examples
--------
>>> iv = bootstrap_ci([420.0, 510.0, 480.0, 610.0, 455.0], percentile(50))
>>> iv.estimate, iv.n
(480.0, 5)
>>> iv.low <= iv.estimate <= iv.high
True
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Interval", "bootstrap_ci", "corpus_wer", "percentile"]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval (``low``/``high`` NaN when it cannot be estimated)."""

    estimate: float
    low: float
    high: float
    n: int
    confidence: float

    @property
    def defined(self) -> bool:
        """Whether the interval has bounds (at least two values and a finite spread)."""
        return math.isfinite(self.low) and math.isfinite(self.high)


def percentile(q: float) -> Callable[..., float]:
    """The ``q``-th percentile (0..100) with numpy's default linear interpolation, as rtlab.analysis.metrics uses it."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within 0..100, got {q!r}")

    def statistic(values: np.ndarray, axis: int = -1) -> float:
        return np.percentile(values, q, axis=axis)

    statistic.__name__ = f"p{q:g}"
    return statistic


def corpus_wer(word_errors: np.ndarray, ref_words: np.ndarray, axis: int = -1) -> float:
    """Total word errors over total reference words (turns resampled in pairs)."""
    total = np.sum(ref_words, axis=axis)
    return np.sum(word_errors, axis=axis) / np.where(total > 0, total, np.nan)


def bootstrap_ci(data: Sequence[float] | np.ndarray | tuple[np.ndarray, ...], statistic: Callable[..., float], *,
                 confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> Interval:
    """Point estimate and percentile-bootstrap interval of ``statistic`` over ``data``.

    Parameters
    ----------
    data : array-like, or tuple of arrays
        One sample (e.g. per-turn latencies), or a tuple of equally long arrays resampled together (paired, e.g.
        ``(word_errors, ref_words)`` for :func:`corpus_wer`). NaN and infinite values are dropped first (from all
        arrays of a pair at once).
    statistic : callable
        ``statistic(*arrays, axis=-1)``, vectorised over ``axis`` (see :func:`percentile`, :func:`corpus_wer`).
    confidence : float
        Confidence level of the interval, in (0, 1).
    n_resamples : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling (the same data gives the same interval).
    """
    from scipy.stats import DegenerateDataWarning, bootstrap

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be within (0, 1), got {confidence!r}")
    arrays = tuple(np.asarray(a, dtype=float) for a in (data if isinstance(data, tuple) else (data,)))
    if any(a.ndim != 1 for a in arrays) or len({a.size for a in arrays}) != 1:
        raise ValueError(f"bootstrap_ci needs 1-D arrays of one length, got shapes {[a.shape for a in arrays]}")
    keep = np.logical_and.reduce([np.isfinite(a) for a in arrays])
    arrays = tuple(a[keep] for a in arrays)
    n = int(arrays[0].size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, confidence)
    estimate = float(statistic(*arrays, axis=-1))
    if n < 2:
        return Interval(estimate, math.nan, math.nan, n, confidence)
    with warnings.catch_warnings():
        # every resample giving one value (e.g. no errors at all) is a zero-width interval, not a problem
        warnings.simplefilter("ignore", DegenerateDataWarning)
        res = bootstrap(arrays, statistic, paired=len(arrays) > 1, vectorized=True, confidence_level=confidence,
                        n_resamples=n_resamples, method="percentile", rng=np.random.default_rng(seed))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)) and math.isfinite(estimate):
        if np.allclose(res.bootstrap_distribution, estimate):
            low = high = estimate
    return Interval(estimate, low, high, n, confidence)
