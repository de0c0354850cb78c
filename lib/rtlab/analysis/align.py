"""Matching spans in audio time: references to turns, turns of one source to turns of another (layer: analysis).

One mechanism, :func:`best_overlap`, serves both the reference assignment of :func:`rtlab.analysis.turns` and the
per-turn :func:`rtlab.analysis.metrics.agreement` between sources.
"""

from __future__ import annotations

import numpy as np

__all__ = ["AudioClock", "best_overlap"]


def best_overlap(a_start: np.ndarray, a_end: np.ndarray, b_start: np.ndarray, b_end: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """For each span of a: the index of the span of b overlapping it most (-1: none) and the overlap (ms)."""
    order = np.argsort(b_start, kind="stable")
    bs, be = b_start[order], b_end[order]
    run_max_end = np.maximum.accumulate(be) if len(be) else be
    best = np.full(len(a_start), -1, dtype=np.int64)
    best_ov = np.zeros(len(a_start))
    for i, (s, e) in enumerate(zip(a_start, a_end, strict=True)):
        hi = np.searchsorted(bs, e, side="left")
        lo = np.searchsorted(run_max_end, s, side="right")
        if hi <= lo:
            continue
        ov = np.minimum(be[lo:hi], e) - np.maximum(bs[lo:hi], s)
        j = int(np.argmax(ov))
        if ov[j] > 0:
            best[i], best_ov[i] = order[lo + j], ov[j]
    return best, best_ov




class AudioClock:
    """When was audio position ``p`` (ms) sent? The log time of the first client append whose chunk reaches ``p``.

    Built from the client appends of a log (per source, and all sources together for sources that sent no audio
    themselves, e.g. a local engine fed by the same run).
    """

    def __init__(self, src: np.ndarray, pos_ms: np.ndarray, t: np.ndarray):
        self.by_source = {str(s): self._prep(pos_ms[src == s], t[src == s]) for s in np.unique(src)}
        self.shared = self._prep(pos_ms, t)

    @staticmethod
    def _prep(pos: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(pos, kind="stable")
        # earliest send time of any chunk that reaches at least this far
        return pos[order], np.minimum.accumulate(t[order][::-1])[::-1] if len(order) else t[order]

    def sent_at(self, source: str | None, pos_ms: np.ndarray) -> np.ndarray:
        """Log times (same unit as ``t``) at which the positions ``pos_ms`` were sent (NaN where never)."""
        pos_sorted, t_min = self.by_source.get(source, self.shared) if source is not None else self.shared
        pos_ms = np.asarray(pos_ms, dtype=float)
        out = np.full(pos_ms.shape, np.nan)
        if not len(pos_sorted):
            return out
        idx = np.searchsorted(pos_sorted, pos_ms - 1e-3, side="left")
        ok = np.isfinite(pos_ms) & (idx < len(pos_sorted))
        out[ok] = t_min[idx[ok]]
        return out
