"""Reading record lines fast and tolerantly: pyarrow's JSON reader for the flat fields, line offsets for the rest
(layer: log)."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["flat_from_arrow", "flat_from_objs", "flat_schema", "line_starts", "na", "num", "number_pattern", "read_flat"]

_NUMBER_PATTERNS: dict[str, re.Pattern] = {}


def number_pattern(key: str) -> re.Pattern:
    if key not in _NUMBER_PATTERNS:
        _NUMBER_PATTERNS[key] = re.compile(rb'"' + re.escape(key.encode()) + rb'"\s*:\s*(-?[0-9][0-9.eE+-]*)')
    return _NUMBER_PATTERNS[key]


_FLAT_SCHEMA = None


def flat_schema():
    global _FLAT_SCHEMA
    if _FLAT_SCHEMA is None:
        import pyarrow as pa

        _FLAT_SCHEMA = pa.schema([
            ("seq", pa.int64()), ("t", pa.float64()), ("audio_ms", pa.float64()), ("dir", pa.string()),
            ("src", pa.string()), ("type", pa.string()), ("item_id", pa.string()), ("response_id", pa.string()),
            ("event_id", pa.string()),
        ])
    return _FLAT_SCHEMA


def read_flat(buf: memoryview | bytes):
    """Parse the flat fields of many record lines with pyarrow (multi-threaded); raises on any invalid line."""
    import pyarrow as pa
    import pyarrow.json as pj

    return pj.read_json(
        pa.BufferReader(pa.py_buffer(buf)),
        read_options=pj.ReadOptions(block_size=4 << 20),
        parse_options=pj.ParseOptions(explicit_schema=flat_schema(), unexpected_field_behavior="ignore",
                                      newlines_in_values=False),
    )




def line_starts(buf: np.ndarray) -> np.ndarray:
    """Byte offsets where each line starts, plus len(buf) at the end (chunked to stay in cache)."""
    parts = [np.zeros(1, dtype=np.int64)]
    step = 1 << 22
    for s in range(0, len(buf), step):
        nl = np.flatnonzero(buf[s:s + step] == 10)
        if len(nl):
            parts.append(nl.astype(np.int64) + (s + 1))
    starts = np.concatenate(parts)
    if starts[-1] != len(buf):
        starts = np.append(starts, len(buf))
    return starts




def na(v: Any) -> str | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else str(v)


def flat_from_arrow(table) -> pd.DataFrame:
    import pyarrow as pa

    cols = {}
    for name in table.column_names:
        col = table.column(name)
        if name in ("dir", "src", "type"):
            col = col.dictionary_encode()
        cols[name] = col
    df = pa.table(cols).to_pandas()
    df["seq"] = df["seq"].astype("Int64") if df["seq"].isna().any() else df["seq"].astype(np.int64)
    return df


def flat_from_objs(objs: list[dict]) -> pd.DataFrame:
    import pyarrow as pa

    table = pa.Table.from_pylist(
        [{k: o.get(k) for k in flat_schema().names} for o in objs], schema=flat_schema())
    return flat_from_arrow(table)




def num(v: Any) -> float:
    """A JSON value as a float; NaN for anything that is not a number (booleans included)."""
    if isinstance(v, bool) or v is None:
        return np.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return np.nan
