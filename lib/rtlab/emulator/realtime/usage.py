"""Usage the emulated session reports: token and duration counts, all of them estimates (emulated, not measured).

Layer: emulator. The emulator has no tokenizer: text tokens are estimated at 4 characters per token, audio tokens
at fixed rates per second. The shapes are the SDK's (``usage`` of ``...transcription.completed``: tokens or
duration; ``response.done``'s usage with its details); the numbers are labelled ``emulated`` wherever rtlab
surfaces them (``cost_basis`` in ``rtlab.analysis.turns``).
"""

from __future__ import annotations

import math

from rtlab.protocol.catalogue import TranscriptionModel

__all__ = [
    "REALTIME_AUDIO_IN_TOKENS_PER_S", "REALTIME_AUDIO_OUT_TOKENS_PER_S", "TRANSCRIBE_AUDIO_TOKENS_PER_S",
    "rate_limits", "response_usage", "text_tokens", "transcription_usage",
]

TRANSCRIBE_AUDIO_TOKENS_PER_S = 1000 / 60  # ≈ $0.006/min at $6 per 1M audio tokens (gpt-4o-transcribe)
REALTIME_AUDIO_IN_TOKENS_PER_S = 10.0
REALTIME_AUDIO_OUT_TOKENS_PER_S = 20.0
_TOKENS_LIMIT = 40000  # the tokens limit seen in a published GA trace (see the profiles' rate_limits row)


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / 4) if text else 0


def transcription_usage(cap: TranscriptionModel | None, audio_s: float, text: str, tr: dict) -> dict:
    """``usage`` of ``...transcription.completed``: duration for models billed per minute, else tokens."""
    if cap is not None and cap.usage == "duration":
        return {"type": "duration", "seconds": round(audio_s, 3)}
    audio_tokens = max(1, round(audio_s * TRANSCRIBE_AUDIO_TOKENS_PER_S)) if audio_s > 0 else 0
    prompt_tokens = text_tokens(tr.get("prompt") or "") + text_tokens(" ".join(tr.get("keywords") or []))
    out = text_tokens(text)
    return {"type": "tokens", "input_tokens": audio_tokens + prompt_tokens, "output_tokens": out,
            "total_tokens": audio_tokens + prompt_tokens + out,
            "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": prompt_tokens}}


def audio_in_tokens(audio_ms: float) -> int:
    return math.ceil(audio_ms / 1000 * REALTIME_AUDIO_IN_TOKENS_PER_S)


def response_usage(*, input_text_tokens: int, input_audio_tokens: int, said: str, audio_out_s: float) -> dict:
    """``usage`` of ``response.done`` (with ``cached_tokens_details``, as the service sends)."""
    text_out = text_tokens(said)
    audio_out = math.ceil(audio_out_s * REALTIME_AUDIO_OUT_TOKENS_PER_S) if audio_out_s > 0 else 0
    total_in = input_text_tokens + input_audio_tokens
    return {
        "total_tokens": total_in + text_out + audio_out,
        "input_tokens": total_in, "output_tokens": text_out + audio_out,
        "input_token_details": {"text_tokens": input_text_tokens, "audio_tokens": input_audio_tokens,
                                "cached_tokens": 0, "image_tokens": 0,
                                "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0}},
        "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
    }


def rate_limits(used_tokens: int, reserved_tokens: int, *, limit: int = _TOKENS_LIMIT) -> list[dict]:
    """``rate_limits.updated`` at the start of a response: only a ``tokens`` entry, as seen in practice."""
    remaining = max(0, limit - used_tokens - reserved_tokens)
    return [{"name": "tokens", "limit": limit, "remaining": remaining,
             "reset_seconds": round(60.0 * (limit - remaining) / limit, 3)}]
