"""Analysis (layer: analysis): what a recorded run says, computed from its event log and nothing else.

- :mod:`.turns` — :func:`turns`, one row per (source, turn) with the latency columns defined once;
- :mod:`.realtime`, :mod:`.local` (and other families' normalizers) — each protocol family's turn evidence;
- :mod:`.align` — matching spans in audio time (references to turns, sources to sources), the audio clock;
- :mod:`.metrics` — WER/CER, agreement, latency summaries, the per-source summary;
- :mod:`.cost` — prices, cost and its basis; :mod:`.subtitles` — WebVTT/SRT;
- :mod:`.provenance` — which engine produced each source's text, which timing its latencies follow.
"""

from __future__ import annotations

from .cost import cost, cost_basis, load_prices
from .metrics import LATENCY_METRICS, agreement, cer, latency_summary, normalize, score_turns, summary, wer
from .provenance import provenance, provenance_note
from .turns import TURN_COLUMNS, families, turns

__all__ = [
    "LATENCY_METRICS", "TURN_COLUMNS", "agreement", "cer", "cost", "cost_basis", "families", "latency_summary",
    "load_prices", "normalize", "provenance", "provenance_note", "score_turns", "summary", "turns", "wer",
]
