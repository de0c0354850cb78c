"""A streaming integer-ratio polyphase resampler whose output does not depend on how the input is chunked.

The engines need 16 kHz audio (webrtcvad, pocketsphinx) while the Realtime protocol carries 24 kHz (or 8 kHz
telephone audio). Audio arrives in arbitrary chunks, and the turn detector must give *identical* events for any
chunking, so the resampler computes every output sample from a fixed window of input samples with a fixed filter:
output ``m`` depends only on input samples, never on where the chunk boundaries fell.

The filter is the one :func:`scipy.signal.resample_poly` designs (Kaiser-windowed sinc, beta 5, half length
``10 * max(up, down)`` taps at the upsampled rate) and the output is aligned the same way (zero delay, sample ``m``
of the output sits at time ``m / target_rate``), so the interior of a whole-signal ``resample_poly`` and of this
resampler agree to float precision. The price of zero delay is a look-ahead of ``half_len // up`` input samples
(under 1 ms at 24 kHz → 16 kHz): the newest output samples wait for that many future input samples, and
:meth:`StreamingResampler.flush` releases them at the end of a stream by assuming silence after it.

Example
-------
>>> import numpy as np
>>> rs = StreamingResampler(24000, 16000)
>>> out = np.concatenate([rs.process(np.zeros(480, np.int16)), rs.flush()])
>>> out.shape, out.dtype
((320,), dtype('int16'))
"""

from __future__ import annotations

from math import gcd

import numpy as np
from scipy.signal import firwin

from rtlab.errors import AudioError

__all__ = ["StreamingResampler"]


def _check_rate(name: str, rate: int) -> int:
    if not isinstance(rate, (int, np.integer)) or isinstance(rate, bool) or rate <= 0:
        raise AudioError(
            f"<{name}>",
            f"sample rate must be a positive integer in Hz, got {rate!r}; pass e.g. 24000 or 16000",
        )
    return int(rate)


class StreamingResampler:
    """Resample int16 mono audio from ``source_rate`` to ``target_rate`` chunk by chunk.

    Parameters
    ----------
    source_rate, target_rate : int
        Sample rates in Hz. Any pair works; the cost grows with ``max(up, down)`` of the reduced ratio
        (24000→16000 is 2/3, 8000→16000 is 2/1, 48000→16000 is 1/3).

    Notes
    -----
    Concatenating ``process()`` results for any chunking of a signal, followed by ``flush()``, gives exactly the
    same int16 samples, and ``ceil(n_in * target_rate / source_rate)`` of them in total.
    """

    def __init__(self, source_rate: int, target_rate: int) -> None:
        self.source_rate = _check_rate("source_rate", source_rate)
        self.target_rate = _check_rate("target_rate", target_rate)
        g = gcd(self.source_rate, self.target_rate)
        self.up = self.target_rate // g
        self.down = self.source_rate // g
        self.passthrough = self.up == self.down == 1
        self._n_in = 0  # input samples received so far
        self._n_out = 0  # output samples produced so far
        self._flushed = False
        if self.passthrough:
            return
        max_rate = max(self.up, self.down)
        half_len = 10 * max_rate
        h = firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0)) * self.up
        # Pad to a multiple of `up` so every phase has the same number of taps.
        n_taps = -(-len(h) // self.up) * self.up
        h = np.concatenate([h, np.zeros(n_taps - len(h))])
        self._offset = half_len  # zero-delay alignment, as in resample_poly
        self._taps = n_taps // self.up  # taps per phase
        # _phase_filters[phase][j] multiplies input sample (p // up - j); stored reversed so that a window
        # x[i0 .. i0 + taps - 1] (oldest first) is multiplied element-wise.
        self._phase_filters = np.stack([h[phase :: self.up][::-1] for phase in range(self.up)])
        # Input history (float64), starting at absolute input index `_buf_start`; the stream is zero before 0.
        self._buf = np.zeros(self._taps - 1)
        self._buf_start = -(self._taps - 1)

    @property
    def lookahead_samples(self) -> int:
        """Input samples an output sample waits for beyond its own time (0 for a pass-through)."""
        return 0 if self.passthrough else -(-(self._offset) // self.up)

    def _compute(self, n_avail: int) -> np.ndarray:
        """Produce every output sample whose whole input window lies below absolute input index ``n_avail``."""
        # Output m needs input index p // up with p = m * down + offset; it is computable when p // up < n_avail.
        # Largest m with (m * down + offset) // up <= n_avail - 1  <=>  m * down + offset <= n_avail * up - 1.
        m_end = (n_avail * self.up - 1 - self._offset) // self.down + 1
        m_end = max(m_end, self._n_out)
        if m_end == self._n_out:
            return np.zeros(0, dtype=np.int16)
        m = np.arange(self._n_out, m_end)
        p = m * self.down + self._offset
        newest = p // self.up  # absolute index of the newest input sample in each window
        phase = p % self.up
        first = newest - (self._taps - 1) - self._buf_start  # window start within the buffer
        windows = np.lib.stride_tricks.sliding_window_view(self._buf, self._taps)[first]
        # Element-wise product then a per-row sum: each row's result depends only on that row (no BLAS blocking),
        # which keeps the output bit-identical across chunkings.
        y = (windows * self._phase_filters[phase]).sum(axis=1)
        self._n_out = m_end
        # Drop input that no future output needs.
        next_first = (m_end * self.down + self._offset) // self.up - (self._taps - 1)
        drop = next_first - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start += drop
        return np.clip(np.rint(y), -32768, 32767).astype(np.int16)

    def process(self, pcm: np.ndarray) -> np.ndarray:
        """Feed ``pcm`` (int16 mono) and return the output samples that are now complete (int16)."""
        if self._flushed:
            raise AudioError("<resampler>", "process() called after flush(); create a new StreamingResampler")
        pcm = np.asarray(pcm)
        if pcm.ndim != 1:
            raise AudioError("<pcm>", f"expected mono 1-D int16 samples, got shape {pcm.shape}")
        if pcm.dtype != np.int16:
            raise AudioError(
                "<pcm>", f"expected int16 samples, got dtype {pcm.dtype}; convert with .astype(np.int16)"
            )
        self._n_in += len(pcm)
        if self.passthrough:
            self._n_out += len(pcm)
            return pcm.copy()
        self._buf = np.concatenate([self._buf, pcm.astype(np.float64)])
        return self._compute(self._n_in)

    def flush(self) -> np.ndarray:
        """End of stream: return the remaining output, treating input after the end as silence."""
        if self._flushed:
            return np.zeros(0, dtype=np.int16)
        self._flushed = True
        if self.passthrough:
            return np.zeros(0, dtype=np.int16)
        remaining = -(-self._n_in * self.up // self.down) - self._n_out
        pad = self.lookahead_samples + self._taps
        self._buf = np.concatenate([self._buf, np.zeros(pad)])
        out = self._compute(self._n_in + pad)
        return out[: max(remaining, 0)]
