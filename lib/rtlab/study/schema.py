"""The Parquet schema of study result rows: one type per known column, so every part of a study reads as one table.

Layer: runs (study). A column that happens to be all-null in one unit (``delay``, ``error``, a metadata column)
would otherwise be written with Arrow's ``null`` type there and ``string`` elsewhere.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["COLUMN_TYPES", "table_schema"]

_S, _F, _I = pa.string(), pa.float64(), pa.int64()

COLUMN_TYPES: dict[str, pa.DataType] = {
    # the study
    "study_id": _S, "unit_id": _S, "condition": _S, "condition_label": _S, "item": _S, "audio_path": _S,
    "item_speaker": _S, "audio_s": _F, "target": _S, "voice_model": _S, "in_session_model": _S, "delay": _S,
    "sidecars": _S, "transforms": _S, "input_format": _S,
    # the turn (rtlab.analysis.turns TURN_COLUMNS + scores)
    "source": _S, "turn": pa.int32(), "item_id": _S, "kind": _S, "family": _S, "model": _S, "status": _S,
    "error": _S, "transcript": _S, "reference": _S, "audio_start_ms": _F, "audio_end_ms": _F,
    "final_after_eos_ms": _F, "final_after_stop_ms": _F, "first_text_after_start_ms": _F,
    "first_text_after_eos_ms": _F, "n_deltas": _I, "n_revisions": _I, "usage": _S, "cost_usd": _F,
    "speaker": _S, "end_anchor": _S, "end_wall_ms": _F, "final_wall_ms": _F, "response_id": _S, "ref_start_ms": _F,
    "ref_end_ms": _F, "wer": _F, "cer": _F, "ref_words": _F, "word_errors": _F, "ref_chars": _F, "char_errors": _F,
    "file_word_errors": _F, "file_ref_words": _F, "file_char_errors": _F, "file_ref_chars": _F,
    # provenance
    "cost_basis": _S, "prices_as_of": _S, "rtlab_version": _S, "target_desc": _S, "profile": _S,
    "profile_evidence": _S, "engine": _S, "timing_model": _S, "seed": _I, "unit_seed": _I, "speed": _F, "chunk_ms": _I,
}


def table_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with the known columns at their declared types and all-null unknown columns as strings."""
    fields = []
    for f in schema:
        t = COLUMN_TYPES.get(f.name)
        if t is None:
            t = pa.string() if pa.types.is_null(f.type) else f.type
        fields.append(pa.field(f.name, t))
    return pa.schema(fields)
