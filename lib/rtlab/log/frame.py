"""The ``event`` column of an event frame: events decoded from the log file only when accessed (layer: log).

Why not ``pd.ArrowDtype(pa.string())``: holding the events as Arrow strings means cutting every event's JSON out of
its record line up front. Measured on this project's machine, finding the event boundaries alone costs 0.68 s per
40 MB of log (vectorised numpy search), about 5 s for the 305 MB, 1,000,000-event benchmark log, which is the whole
budget for load + turns + metrics. This array keeps row numbers into the memory-mapped file instead and decodes an
event when it is touched, so selecting, filtering, sorting and concatenating rows parse no JSON at all.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray, ExtensionDtype, register_extension_dtype

if TYPE_CHECKING:  # pragma: no cover
    from .eventlog import EventLog

__all__ = ["EventArray", "EventDtype"]


@register_extension_dtype
class EventDtype(ExtensionDtype):
    """pandas dtype of ``to_frame()['event']``: raw events decoded from the log file on access."""

    name = "rtlab.event"
    type = dict
    kind = "O"
    na_value = None

    @classmethod
    def construct_array_type(cls) -> type[EventArray]:
        return EventArray


class EventArray(ExtensionArray):
    """The ``event`` column of ``EventLog.to_frame()``: row numbers into a log, decoded to dicts on access.

    Selecting, filtering, sorting and concatenating rows costs no JSON parsing; ``frame["event"].iloc[i]``,
    iteration and ``.tolist()`` decode the events they touch. Built from plain dicts it just holds them.
    """

    def __init__(self, log: EventLog | None, rows: np.ndarray | None = None, values: np.ndarray | None = None):
        self._log = log
        self._rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self._values = values  # materialized mode: object array of dicts/None

    # construction
    @classmethod
    def _from_sequence(cls, scalars, *, dtype=None, copy=False) -> EventArray:
        if isinstance(scalars, EventArray):
            return scalars.copy() if copy else scalars
        vals = np.empty(len(scalars), dtype=object)
        for i, v in enumerate(scalars):
            vals[i] = None if v is None or (isinstance(v, float) and math.isnan(v)) else dict(v)
        return cls(None, values=vals)

    @classmethod
    def _from_factorized(cls, values, original) -> EventArray:
        return cls._from_sequence(values)

    @classmethod
    def _concat_same_type(cls, to_concat) -> EventArray:
        arrs = list(to_concat)
        logs = {id(a._log) for a in arrs}
        if all(a._values is None for a in arrs) and len(logs) == 1:
            return cls(arrs[0]._log, np.concatenate([a._rows for a in arrs]))
        return cls(None, values=np.concatenate([a._materialize() for a in arrs]))

    # access
    def _one(self, i: int) -> dict | None:
        if self._values is not None:
            return self._values[i]
        r = int(self._rows[i])
        return None if r < 0 else self._log.event_at(r)

    def _materialize(self) -> np.ndarray:
        if self._values is not None:
            return self._values
        out = np.empty(len(self), dtype=object)
        for i in range(len(self)):
            out[i] = self._one(i)
        return out

    def __getitem__(self, key):
        if isinstance(key, int | np.integer):
            n = len(self)
            k = int(key) + n if key < 0 else int(key)
            if not 0 <= k < n:
                raise IndexError(f"index {key} out of range ({n} events)")
            return self._one(k)
        key = pd.api.indexers.check_array_indexer(self, key) if not isinstance(key, slice) else key
        if self._values is not None:
            return EventArray(None, values=self._values[key])
        return EventArray(self._log, self._rows[key])

    def __len__(self) -> int:
        return len(self._values) if self._values is not None else len(self._rows)

    def __iter__(self):
        for i in range(len(self)):
            yield self._one(i)

    def __array__(self, dtype=None, copy=None):
        return self._materialize()

    @property
    def dtype(self) -> EventDtype:
        return EventDtype()

    @property
    def nbytes(self) -> int:
        return int(self._values.nbytes if self._values is not None else self._rows.nbytes)

    def isna(self) -> np.ndarray:
        if self._values is not None:
            return np.array([v is None for v in self._values], dtype=bool)
        return self._rows < 0

    def take(self, indices, allow_fill: bool = False, fill_value=None) -> EventArray:
        indices = np.asarray(indices, dtype=np.int64)
        if self._values is not None:
            from pandas.api.extensions import take

            return EventArray(None, values=take(self._values, indices, allow_fill=allow_fill, fill_value=None))
        if allow_fill:
            if fill_value is not None:
                raise TypeError("EventArray.take can only fill with None")
            if (indices < -1).any():
                raise ValueError("invalid take indices (< -1)")
            rows = np.where(indices == -1, -1, self._rows[np.maximum(indices, 0)] if len(self._rows) else -1)
            return EventArray(self._log, rows)
        return EventArray(self._log, self._rows[indices])

    def copy(self) -> EventArray:
        if self._values is not None:
            return EventArray(None, values=self._values.copy())
        return EventArray(self._log, self._rows.copy())

    def _formatter(self, boxed: bool = False):
        return lambda v: "None" if v is None else (json.dumps(v, ensure_ascii=False)[:120])

    def _values_for_factorize(self):
        return np.array([json.dumps(v, sort_keys=True) if v is not None else None for v in self]), None

    def __eq__(self, other):  # type: ignore[override]
        vals = self._materialize()
        if isinstance(other, EventArray | np.ndarray | list):
            return np.array([a == b for a, b in zip(vals, other, strict=True)], dtype=bool)
        return np.array([v == other for v in vals], dtype=bool)


