"""The event log: every client and server event of a run, on one wall clock and one audio clock.

An :class:`EventLog` is an append-only JSON Lines file (``DIR/events.jsonl``), one record per line, flushed per
event so that a crash or a dropped connection loses nothing that was received. Line 1 is a header::

    {"rtlab_eventlog": 1, "created_utc": "...", "t0_unix": 1764000000.0, "meta": {...}}

and every other line is one record, flat fields first, the raw event last::

    {"seq": 7, "t": 1.234567, "audio_ms": 1240.0, "dir": "server", "src": "in-session",
     "type": "input_audio_buffer.speech_stopped", "item_id": "item_1", "response_id": null, "event_id": "evt_9",
     "event": {...the event as sent or received...}}

``t`` is seconds since the log was created (monotonic clock); ``audio_ms`` is the audio clock: milliseconds of
input audio sent so far when the event was sent or received. For a client ``input_audio_buffer.append`` it is the
position *after* the chunk (chunk offset + chunk length), which is what ``rtlab.session`` passes.

Audio is stored once, beside the log, never inline:

- the input track ``events.input.pcm`` (raw int16 at the input format's rate, written at each chunk's sample
  offset on the shared clock and flushed per chunk; several sources appending the same chunk at the same offset
  write it once). The stored append event keeps ``{"audio": {"$ref": "input", "offset": N, "samples": M}}``.
- one output track per source, ``events.output.<source>.pcm``: assistant audio from ``response.output_audio.delta``
  (beta ``response.audio.delta``), placed at the audio-clock position where it arrived, or right after the
  previous chunk when that is later (a client plays deltas back to back). The event keeps
  ``{"delta": {"$ref": "output", "offset": N, "samples": M}}``.
- each track has a small JSON file (``events.input.json``, ``events.output.<source>.json``) naming its source,
  format and rate. :meth:`EventLog.close` converts the ``.pcm`` files to ``.wav``; :meth:`EventLog.load` reads
  either, so a crashed run's audio is as readable as a closed one's. G.711 input is stored decoded (int16, 8 kHz).

Loading is columnar: pyarrow's JSON reader parses the flat fields of every line, and the raw event of a record is
decoded from its line only when asked (``log.records[i]``, ``to_frame()['event'][i]``). A torn last line (a crash
mid-write) or a corrupt line in the middle is reported in ``log.torn`` and a warning, never fatal.

Turns and latency
-----------------
:meth:`EventLog.turns` gives one row per (source, item). Latencies are differences of wall times ``t``:

- ``ttfs_ms``: final transcript minus the *end of the turn*; ``first_delta_ms``: first transcript delta minus the
  end of the turn (negative when a streaming model sends deltas before the turn ends);
  ``first_delta_from_start_ms``: first delta minus the start of the turn.
- The end of the turn is the ``input_audio_buffer.speech_stopped`` event of that item on that source
  (``end_anchor == "speech_stopped"``). A source without one (a transcription session where the client commits,
  out-of-band responses, a local engine that records no VAD events) uses the audio clock instead
  (``end_anchor == "audio_clock"``): the wall time at which the audio position ``audio_end_ms`` was sent, i.e.
  the ``t`` of the first client append (of that source, or of any source when it sent no audio itself) whose
  chunk reaches that position. Note that ``speech_stopped`` comes one silence duration (500 ms by default)
  after the audio position it reports, so audio-clock anchors make latencies look larger by about that much;
  ``ttfs_true_ms`` (final transcript minus the moment the *true* end of speech from the references was sent)
  uses the audio clock for every source and is the one to compare across sources.
- Without VAD events, ``audio_end_ms`` is the audio position of the client ``input_audio_buffer.commit`` that
  produced the item, and ``audio_start_ms`` that of the previous commit or clear (0 for the first).

Out-of-band transcripts: a ``response.create`` on a voice session carrying
``{"response": {"metadata": {"rtlab_item_id": ITEM}}}`` asks for a text transcript of ``ITEM``. The server echoes
``metadata`` in ``response.created`` / ``response.done``; every response whose metadata names an item becomes a
turns row keyed by that item, under the source that received its text events (``sidecar:oob`` in rtlab runs; if
that source also has an input-transcription row for the item, the row's source gets a ``:oob`` suffix). Its
transcript is the ``response.output_text.done`` text (or ``output_audio_transcript.done`` transcript, or the
text in ``response.done``), its deltas the text/transcript deltas, its usage that of ``response.done``, and its
audio span that of the item it transcribes.

Model and cost: each row's model is the transcription model (or, for out-of-band rows, the session model) of the
last ``session.created``/``session.updated`` of its source (else its last client ``session.update``).
``meta["models"]`` may map a source label or an Azure deployment name to a model name for pricing. Costs come
from :func:`rtlab.metrics.cost` and ``data/prices.json``; rows of ``sidecar:local`` cost 0; unknown models NaN.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import datetime as _dt
import json
import math
import mmap
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray, ExtensionDtype, register_extension_dtype

from .errors import EventLogError
from .protocol import AUDIO_FORMATS, canonical_event_name

__all__ = ["EventArray", "EventDtype", "EventLog", "EventLogWarning", "Record", "FORMAT_VERSION"]

FORMAT_VERSION = 1
HEADER_KEY = "rtlab_eventlog"
DIRECTIONS = ("client", "server")

# Canonical (GA) event names the analysis reads.
APPEND = "input_audio_buffer.append"
COMMIT = "input_audio_buffer.commit"
CLEAR = "input_audio_buffer.clear"
SPEECH_STARTED = "input_audio_buffer.speech_started"
SPEECH_STOPPED = "input_audio_buffer.speech_stopped"
COMMITTED = "input_audio_buffer.committed"
TR_DELTA = "conversation.item.input_audio_transcription.delta"
TR_COMPLETED = "conversation.item.input_audio_transcription.completed"
TR_FAILED = "conversation.item.input_audio_transcription.failed"
OUTPUT_AUDIO_DELTA = "response.output_audio.delta"
RESPONSE_CREATE = "response.create"
RESPONSE_CREATED = "response.created"
RESPONSE_DONE = "response.done"
TEXT_DELTAS = ("response.output_text.delta", "response.output_audio_transcript.delta")
TEXT_DONES = ("response.output_text.done", "response.output_audio_transcript.done")
SESSION_EVENTS = ("session.created", "session.updated")
OOB_ITEM_KEY = "rtlab_item_id"

TURN_COLUMNS = [
    "source", "item_id", "audio_start_ms", "audio_end_ms", "transcript", "first_delta_ms", "ttfs_ms",
    "ttfs_true_ms", "n_deltas", "usage", "cost_usd", "reference", "model",
    "kind", "status", "error", "first_delta_from_start_ms", "end_anchor", "end_wall_ms", "final_wall_ms",
    "response_id", "ref_start_ms", "ref_end_ms",
]


class EventLogWarning(UserWarning):
    """A log was readable but not intact (torn or corrupt lines were skipped)."""


# ------------------------------------------------------------------------------------------------------------------
# Records
# ------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Record:
    """One event as recorded: when (wall and audio clock), which way, from which source, and the event itself.

    ``event`` is the stored event: audio payloads are replaced by ``{"$ref": ...}`` pointers into the audio tracks.
    """

    seq: int
    t: float
    audio_ms: float | None
    direction: str
    source: str
    type: str
    item_id: str | None
    response_id: str | None
    event_id: str | None
    event: Mapping[str, Any]

    @property
    def name(self) -> str:
        """The canonical (GA) event name."""
        return canonical_event_name(self.type)

    def to_line(self) -> bytes:
        rec = {
            "seq": self.seq, "t": self.t, "audio_ms": self.audio_ms, "dir": self.direction, "src": self.source,
            "type": self.type, "item_id": self.item_id, "response_id": self.response_id,
            "event_id": self.event_id, "event": self.event,
        }
        return (json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


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
        return None if r < 0 else self._log._event_at(r)

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


def _str_or_none(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _ids(event: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    item_id = _str_or_none(event.get("item_id"))
    if item_id is None and isinstance(event.get("item"), Mapping):
        item_id = _str_or_none(event["item"].get("id"))
    response_id = _str_or_none(event.get("response_id"))
    if response_id is None and isinstance(event.get("response"), Mapping):
        response_id = _str_or_none(event["response"].get("id"))
    return item_id, response_id, _str_or_none(event.get("event_id"))


# ------------------------------------------------------------------------------------------------------------------
# Audio tracks
# ------------------------------------------------------------------------------------------------------------------
class _Coverage:
    """Sorted, merged half-open sample intervals already written (so a chunk sent by several sources is written once)."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def missing(self, a: int, b: int) -> list[tuple[int, int]]:
        out, cur = [], a
        i = bisect.bisect_right(self.ends, a)
        while i < len(self.starts) and self.starts[i] < b and cur < b:
            if self.starts[i] > cur:
                out.append((cur, min(self.starts[i], b)))
            cur = max(cur, self.ends[i])
            i += 1
        if cur < b:
            out.append((cur, b))
        return out

    def add(self, a: int, b: int) -> None:
        i = bisect.bisect_left(self.ends, a)
        j = bisect.bisect_right(self.starts, b)
        if i < j:
            a, b = min(a, self.starts[i]), max(b, self.ends[j - 1])
        self.starts[i:j] = [a]
        self.ends[i:j] = [b]


def _decode_audio(data: bytes, fmt: str) -> np.ndarray:
    if fmt == "pcm16":
        if len(data) % 2:
            raise ValueError(f"odd number of bytes ({len(data)}) for pcm16")
        return np.frombuffer(data, dtype="<i2").astype(np.int16)
    from .audio import decode_g711  # lazy: audio.py pulls in librosa

    return decode_g711(data, "ulaw" if fmt == "g711_ulaw" else "alaw")


def _write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1), encoding="utf-8")
    os.replace(tmp, path)


class _Track:
    """One audio track: raw int16 PCM written at sample offsets (flushed per chunk), a JSON descriptor, WAV at close."""

    def __init__(self, stem: Path, kind: str, source: str | None, fmt: str):
        self.stem = stem  # e.g. DIR/events.input
        self.kind = kind
        self.source = source
        self.fmt = fmt
        self.rate = AUDIO_FORMATS[fmt].sample_rate
        self.coverage = _Coverage()
        self.end = 0  # samples
        self._fh: Any = None

    @property
    def pcm_path(self) -> Path:
        return self.stem.with_name(self.stem.name + ".pcm")

    @property
    def wav_path(self) -> Path:
        return self.stem.with_name(self.stem.name + ".wav")

    @property
    def json_path(self) -> Path:
        return self.stem.with_name(self.stem.name + ".json")

    def descriptor(self, data: str) -> dict:
        return {"rtlab_track": 1, "kind": self.kind, "source": self.source, "format": self.fmt,
                "sample_rate": self.rate, "sample_format": "int16", "data": data}

    def write(self, offset: int, samples: np.ndarray, *, dedupe: bool) -> None:
        if self._fh is None:
            _write_json_atomic(self.json_path, self.descriptor(self.pcm_path.name))
            self._fh = open(self.pcm_path, "w+b")  # noqa: SIM115 - kept open for the life of the log
        n = len(samples)
        parts = self.coverage.missing(offset, offset + n) if dedupe else [(offset, offset + n)]
        raw = samples.astype("<i2", copy=False)
        for a, b in parts:
            self._fh.seek(a * 2)
            self._fh.write(raw[a - offset:b - offset].tobytes())
        if parts:
            self._fh.flush()
        self.coverage.add(offset, offset + n)
        self.end = max(self.end, offset + n)

    def close(self) -> None:
        if self._fh is None:
            return
        self._fh.close()
        self._fh = None
        import soundfile as sf

        samples = np.fromfile(self.pcm_path, dtype="<i2")
        tmp = self.wav_path.with_name(self.wav_path.name + ".tmp")
        sf.write(tmp, samples, self.rate, subtype="PCM_16", format="WAV")
        os.replace(tmp, self.wav_path)
        _write_json_atomic(self.json_path, self.descriptor(self.wav_path.name))
        self.pcm_path.unlink()


def _read_track(json_path: Path) -> tuple[np.ndarray, int, dict]:
    try:
        desc = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EventLogError(f"{json_path}: unreadable audio track descriptor ({exc})") from None
    rate = int(desc.get("sample_rate") or 24000)
    base = json_path.with_suffix("")
    wav, pcm = base.with_name(base.name + ".wav"), base.with_name(base.name + ".pcm")
    # The .pcm is the raw truth while it exists (a crash during close leaves both; the WAV may be partial).
    if pcm.exists():
        return np.fromfile(pcm, dtype="<i2").astype(np.int16), rate, desc
    if wav.exists():
        import soundfile as sf

        samples, rate = sf.read(wav, dtype="int16", always_2d=False)
        return np.asarray(samples, dtype=np.int16), int(rate), desc
    return np.zeros(0, dtype=np.int16), rate, desc


_NUMBER_PATTERNS: dict[str, re.Pattern] = {}


def _number_pattern(key: str) -> re.Pattern:
    if key not in _NUMBER_PATTERNS:
        _NUMBER_PATTERNS[key] = re.compile(rb'"' + re.escape(key.encode()) + rb'"\s*:\s*(-?[0-9][0-9.eE+-]*)')
    return _NUMBER_PATTERNS[key]


def _slug(source: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", source).strip("_") or "source"


# ------------------------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------------------------
_FLAT_SCHEMA = None


def _flat_schema():
    global _FLAT_SCHEMA
    if _FLAT_SCHEMA is None:
        import pyarrow as pa

        _FLAT_SCHEMA = pa.schema([
            ("seq", pa.int64()), ("t", pa.float64()), ("audio_ms", pa.float64()), ("dir", pa.string()),
            ("src", pa.string()), ("type", pa.string()), ("item_id", pa.string()), ("response_id", pa.string()),
            ("event_id", pa.string()),
        ])
    return _FLAT_SCHEMA


def _read_flat(buf: memoryview | bytes):
    """Parse the flat fields of many record lines with pyarrow (multi-threaded); raises on any invalid line."""
    import pyarrow as pa
    import pyarrow.json as pj

    return pj.read_json(
        pa.BufferReader(pa.py_buffer(buf)),
        read_options=pj.ReadOptions(block_size=4 << 20),
        parse_options=pj.ParseOptions(explicit_schema=_flat_schema(), unexpected_field_behavior="ignore",
                                      newlines_in_values=False),
    )


def _check_record(obj: Any) -> str | None:
    """Why a parsed line is not a record, or None when it is one."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    if not isinstance(obj.get("type"), str):
        return "no event type"
    if obj.get("dir") not in DIRECTIONS:
        return f"bad direction {obj.get('dir')!r}"
    if not isinstance(obj.get("src"), str):
        return "no source"
    t = obj.get("t")
    if not isinstance(t, int | float) or isinstance(t, bool):
        return f"bad time {t!r}"
    for k in ("item_id", "response_id", "event_id"):
        if obj.get(k) is not None and not isinstance(obj.get(k), str):
            return f"bad {k} {obj.get(k)!r}"
    if obj.get("audio_ms") is not None and not isinstance(obj.get("audio_ms"), int | float):
        return f"bad audio_ms {obj.get('audio_ms')!r}"
    if obj.get("seq") is not None and not isinstance(obj.get("seq"), int):
        return f"bad seq {obj.get('seq')!r}"
    return None


def _line_starts(buf: np.ndarray) -> np.ndarray:
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


# ------------------------------------------------------------------------------------------------------------------
# The log
# ------------------------------------------------------------------------------------------------------------------
class EventLog:
    """Timestamped record of every event of a run. Create with :meth:`create` (recording) or :meth:`load`.

    Examples
    --------
    >>> with EventLog.create(tmp / "events.jsonl", meta={"audio": "clip.wav"}) as log:   # doctest: +SKIP
    ...     log.record("client", "in-session", {"type": "input_audio_buffer.append", "audio": b64},
    ...                audio_offset=0)
    >>> EventLog.load(tmp / "events.jsonl").turns()                                        # doctest: +SKIP
    """

    def __init__(self, path: Path, meta: dict, *, live: bool):
        self.path = Path(path)
        self.meta: dict = meta
        self.torn: list[dict] = []
        self.callback_errors: list[BaseException] = []
        self._live = live
        self._lock = threading.RLock()
        self._records: list[Record] = []
        self._subscribers: list[Callable[[Record], Any]] = []
        self._fh: Any = None
        self._closed = not live
        self._t0 = time.monotonic()
        self._input_format = "pcm16"
        self._output_formats: dict[str | None, str] = {}
        self._input: _Track | None = None
        self._outputs: dict[str, _Track] = {}
        self._cursor: dict[str, int] = {}
        self._base_cache: tuple[int, pd.DataFrame] | None = None
        # loaded logs
        self._mm: Any = None
        self._line_start: np.ndarray | None = None
        self._row_line: np.ndarray | None = None
        self._flat: pd.DataFrame | None = None

    # ---------------------------------------------------------------- create / record
    @classmethod
    def create(cls, path: str | os.PathLike, *, meta: dict | None = None, overwrite: bool = False) -> EventLog:
        """Start a new log at ``path`` (``DIR/events.jsonl``; a directory means ``DIR/events.jsonl``).

        Parameters
        ----------
        meta : dict, optional
            JSON-serializable run description (audio path, configs, sources). Must hold no secrets.
        overwrite : bool
            Replace an existing log and its audio files; otherwise an existing file is an error.
        """
        path = Path(path)
        if path.is_dir():
            path = path / "events.jsonl"
        meta = dict(meta or {})
        _refuse_secrets(meta)
        try:
            header = json.dumps({
                HEADER_KEY: FORMAT_VERSION,
                "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "t0_unix": round(time.time(), 6),
                "clock": "t: seconds since t0 (monotonic); audio_ms: input audio sent so far",
                "meta": meta,
            }, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise EventLogError(f"event log meta is not JSON-serializable ({exc}); pass plain dicts, lists, "
                                "strings and numbers") from None
        if path.exists() and not overwrite:
            raise EventLogError(f"{path} already exists; choose another path or pass overwrite=True")
        path.parent.mkdir(parents=True, exist_ok=True)
        if overwrite:
            for old in path.parent.glob(path.stem + ".input.*"):
                old.unlink()
            for old in path.parent.glob(path.stem + ".output.*"):
                old.unlink()
        log = cls(path, meta, live=True)
        log._fh = open(path, "wb")  # noqa: SIM115 - closed by close()
        log._fh.write(header.encode("utf-8") + b"\n")
        log._fh.flush()
        return log

    def set_input_format(self, fmt: str) -> None:
        """Input audio format of the run: ``"pcm16"`` (24 kHz, default), ``"g711_ulaw"`` or ``"g711_alaw"`` (8 kHz)."""
        if fmt not in AUDIO_FORMATS:
            raise EventLogError(f"unknown input format {fmt!r}; use one of {', '.join(AUDIO_FORMATS)}")
        if self._input is not None and self._input.fmt != fmt:
            raise EventLogError(f"input audio already recorded as {self._input.fmt!r}; set_input_format({fmt!r}) "
                                "must come before the first append")
        self._input_format = fmt

    def set_output_format(self, fmt: str, source: str | None = None) -> None:
        """Output audio format of one source (or, with ``source=None``, of every source): pcm16 or G.711."""
        if fmt not in AUDIO_FORMATS:
            raise EventLogError(f"unknown output format {fmt!r}; use one of {', '.join(AUDIO_FORMATS)}")
        if source is not None and source in self._outputs and self._outputs[source].fmt != fmt:
            raise EventLogError(f"output audio of {source!r} already recorded as {self._outputs[source].fmt!r}")
        self._output_formats[source] = fmt

    def record(self, direction: str, source: str, event: Mapping[str, Any], *, audio_ms: float | None = None,
               audio_offset: int | None = None, t: float | None = None) -> Record:
        """Append one event (written and flushed before this returns) and notify subscribers.

        Parameters
        ----------
        direction : {"client", "server"}
        source : str
            Source label, e.g. ``"in-session"``, ``"sidecar:transcription"``, ``"sidecar:local"``, ``"sidecar:oob"``.
        event : dict
            The event as sent or received (a dict with a string ``type``; pydantic models are dumped).
        audio_ms : float, optional
            Audio clock when the event was sent/received: ms of input audio sent so far. For an append it is the
            position after the chunk; it defaults to that when ``audio_offset`` is known.
        audio_offset : int, optional
            For ``input_audio_buffer.append``: the chunk's first sample on the shared clock (samples at the input
            format's rate). Default: right after this source's previous append.
        t : float, optional
            Seconds since the log started; default: now.
        """
        if direction not in DIRECTIONS:
            raise EventLogError(f"direction must be 'client' or 'server'; got {direction!r}")
        if not isinstance(source, str) or not source:
            raise EventLogError(f"source must be a non-empty label such as 'in-session'; got {source!r}")
        if hasattr(event, "model_dump") and not isinstance(event, Mapping):
            event = event.model_dump(mode="json", exclude_none=True)
        if not isinstance(event, Mapping) or not isinstance(event.get("type"), str):
            raise EventLogError(f"event must be a dict with a string 'type'; got {str(event)[:80]!r}")
        with self._lock:
            if self._closed:
                raise EventLogError(f"{self.path}: the log is closed (or loaded read-only); record into a log "
                                    "from EventLog.create()")
            now = time.monotonic() - self._t0 if t is None else float(t)
            if audio_ms is not None and not math.isfinite(audio_ms):
                audio_ms = None
            etype = event["type"]
            name = canonical_event_name(etype)
            stored: Mapping[str, Any] = event
            if direction == "client" and name == APPEND and isinstance(event.get("audio"), str):
                stored, audio_ms = self._store_input(source, event, audio_ms, audio_offset)
            elif direction == "server" and name == OUTPUT_AUDIO_DELTA and isinstance(event.get("delta"), str):
                stored = self._store_output(source, event, audio_ms)
            item_id, response_id, event_id = _ids(stored)
            rec = Record(len(self._records), round(now, 6), None if audio_ms is None else round(float(audio_ms), 3),
                         direction, source, etype, item_id, response_id, event_id, stored)
            try:
                line = rec.to_line()
            except (TypeError, ValueError) as exc:
                raise EventLogError(f"event {etype!r} is not JSON-serializable ({exc})") from None
            self._fh.write(line)
            self._fh.flush()
            self._records.append(rec)
            subscribers = list(self._subscribers)
        for cb in subscribers:
            try:
                cb(rec)
            except Exception as exc:  # the record is safe on disk; a broken view must not stop the run
                self.callback_errors.append(exc)
                warnings.warn(f"event log subscriber {cb!r} raised {type(exc).__name__}: {exc}",
                              RuntimeWarning, stacklevel=2)
        return rec

    def _store_input(self, source, event, audio_ms, audio_offset):
        fmt = self._input_format
        try:
            samples = _decode_audio(base64.b64decode(event["audio"], validate=True), fmt)
        except (binascii.Error, ValueError):
            return event, audio_ms  # not decodable audio: keep the event exactly as sent (nothing lost)
        if self._input is None:
            self._input = _Track(self.path.with_name(self.path.stem + ".input"), "input", None, fmt)
        offset = self._cursor.get(source, 0) if audio_offset is None else int(audio_offset)
        if offset < 0:
            raise EventLogError(f"audio_offset must be >= 0; got {audio_offset!r}")
        n = len(samples)
        self._input.write(offset, samples, dedupe=True)
        self._cursor[source] = offset + n
        if audio_ms is None:
            audio_ms = (offset + n) * 1000.0 / self._input.rate
        stored = dict(event)
        stored["audio"] = {"$ref": "input", "offset": offset, "samples": n}
        return stored, audio_ms

    def _store_output(self, source, event, audio_ms):
        fmt = self._output_formats.get(source) or self._output_formats.get(None) or "pcm16"
        try:
            samples = _decode_audio(base64.b64decode(event["delta"], validate=True), fmt)
        except (binascii.Error, ValueError):
            return event
        track = self._outputs.get(source)
        if track is None:
            taken = {t.stem.name for t in self._outputs.values()}
            stem_name, k = f"{self.path.stem}.output.{_slug(source)}", 2
            while stem_name in taken:
                stem_name, k = f"{self.path.stem}.output.{_slug(source)}-{k}", k + 1
            track = self._outputs[source] = _Track(self.path.with_name(stem_name), "output", source, fmt)
        arrival = track.end if audio_ms is None else round(audio_ms * track.rate / 1000.0)
        offset = max(arrival, track.end)
        track.write(offset, samples, dedupe=False)
        stored = dict(event)
        stored["delta"] = {"$ref": "output", "offset": offset, "samples": len(samples)}
        return stored

    def subscribe(self, callback: Callable[[Record], Any]) -> Callable[[], None]:
        """Call ``callback(record)`` after every record; returns a function that unsubscribes it.

        A callback that raises does not stop recording: the error goes to ``log.callback_errors`` and a warning.
        """
        if not callable(callback):
            raise EventLogError(f"subscribe() needs a callable; got {callback!r}")
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def close(self) -> None:
        """Finish the log: close the JSONL and convert the audio tracks to WAV. Idempotent."""
        with self._lock:
            if self._closed:  # loaded logs keep their file mapping: frames still decode events from it
                return
            self._closed = True
            if self._fh is not None:
                self._fh.close()
            for track in [self._input, *self._outputs.values()]:
                if track is not None:
                    track.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # ---------------------------------------------------------------- load
    @classmethod
    def load(cls, path: str | os.PathLike) -> EventLog:
        """Read a log written by :meth:`create` (closed or not). Torn/corrupt lines are reported, not fatal.

        ``log.torn`` lists each skipped line as ``{"line": N (1-based), "offset": byte, "reason": ..., "excerpt": ...}``
        and an :class:`EventLogWarning` says how many there were.
        """
        path = Path(path)
        if path.is_dir():
            path = path / "events.jsonl"
        if not path.exists():
            raise EventLogError(f"{path}: no such event log; pass the events.jsonl written by a run")
        size = path.stat().st_size
        if size == 0:
            raise EventLogError(f"{path}: empty file, not an rtlab event log")
        with open(path, "rb") as fh:
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        buf = np.frombuffer(mm, dtype=np.uint8)
        starts = _line_starts(buf)
        n_lines = len(starts) - 1
        log = cls(path, {}, live=False)
        log._mm = mm
        log._line_start = starts
        first = 0
        try:
            head = json.loads(bytes(mm[starts[0]:starts[1]]))
        except ValueError:
            head = None
        if isinstance(head, dict) and HEADER_KEY in head:
            log.meta = dict(head.get("meta") or {})
            log.header = {k: v for k, v in head.items() if k != "meta"}
            first = 1
        else:
            log.header = {}
        # The last line is torn when it does not end in a newline (a crash mid-write) and is not valid.
        last = n_lines
        tail_rows: list[tuple[int, dict]] = []
        if n_lines > first and buf[-1] != 10:
            last = n_lines - 1
            raw = bytes(mm[starts[last]:starts[last + 1]])
            try:
                obj = json.loads(raw)
                why = _check_record(obj)
            except ValueError:
                why = "torn last line (no newline, incomplete JSON)"
            if why is None:
                tail_rows.append((last, obj))
            elif raw.strip():
                log._report(last, int(starts[last]), why, raw)
        flat, row_line = log._parse_body(mm, starts, first, last)
        if tail_rows:
            extra = _flat_from_objs([o for _, o in tail_rows])
            flat = pd.concat([flat, extra], ignore_index=True) if len(flat) else extra
            row_line = np.concatenate([row_line, np.array([ln for ln, _ in tail_rows], dtype=np.int64)])
        log._flat = flat
        log._row_line = row_line
        if log.torn:
            first_few = "; ".join("line {}: {}".format(d["line"], d["reason"]) for d in log.torn[:3])
            warnings.warn(f"{path}: skipped {len(log.torn)} unreadable line(s) ({first_few}); "
                          "the other records were loaded (see log.torn)", EventLogWarning, stacklevel=2)
        return log

    def _report(self, line: int, offset: int, reason: str, raw: bytes) -> None:
        self.torn.append({"line": line + 1, "offset": offset, "reason": reason,
                          "excerpt": raw[:80].decode("utf-8", "replace")})

    def _parse_body(self, mm, starts: np.ndarray, first: int, last: int) -> tuple[pd.DataFrame, np.ndarray]:
        """Flat fields of lines [first, last) and the line number of each resulting row."""
        if last <= first:
            return _flat_from_objs([]), np.zeros(0, dtype=np.int64)
        lengths = np.diff(starts[first:last + 1])
        nonblank = np.flatnonzero(lengths > 1) + first  # a blank line is just "\n"
        try:
            table = _read_flat(memoryview(mm)[starts[first]:starts[last]])
            if table.num_rows != len(nonblank):
                raise ValueError("row count mismatch")
            flat = _flat_from_arrow(table)
            bad = flat["type"].isna().to_numpy() | flat["src"].isna().to_numpy() | ~flat["dir"].isin(DIRECTIONS)
            bad |= flat["t"].isna().to_numpy()
            if bad.any():
                raise ValueError("non-record lines")
            return flat, nonblank
        except Exception:  # noqa: BLE001 - any invalid line: find it block by block
            pass
        frames, lines = [], []
        block = 20000
        for b0 in range(0, len(nonblank), block):
            idx = nonblank[b0:b0 + block]
            s, e = int(starts[idx[0]]), int(starts[idx[-1] + 1])
            ok = False
            if idx[-1] - idx[0] + 1 == len(idx):  # contiguous lines: try the fast reader first
                try:
                    table = _read_flat(memoryview(mm)[s:e])
                    f = _flat_from_arrow(table)
                    ok = table.num_rows == len(idx) and not (
                        f["type"].isna().any() or f["src"].isna().any() or (~f["dir"].isin(DIRECTIONS)).any()
                        or f["t"].isna().any())
                except Exception:  # noqa: BLE001
                    ok = False
            if ok:
                frames.append(f)
                lines.append(idx)
                continue
            objs, good = [], []
            for ln in idx:
                raw = bytes(mm[starts[ln]:starts[ln + 1]])
                try:
                    obj = json.loads(raw)
                except ValueError:
                    self._report(int(ln), int(starts[ln]), "corrupt line (invalid JSON)", raw)
                    continue
                why = _check_record(obj)
                if why is not None:
                    self._report(int(ln), int(starts[ln]), f"not a record ({why})", raw)
                    continue
                objs.append(obj)
                good.append(ln)
            frames.append(_flat_from_objs(objs))
            lines.append(np.array(good, dtype=np.int64))
        frames = [f for f in frames if len(f)] or [_flat_from_objs([])]
        return pd.concat(frames, ignore_index=True), np.concatenate(lines) if lines else np.zeros(0, np.int64)

    # ---------------------------------------------------------------- access
    def __len__(self) -> int:
        return len(self._records) if self._live else len(self._row_line)

    def __repr__(self) -> str:
        state = "recording" if (self._live and not self._closed) else ("closed" if self._live else "loaded")
        return f"<EventLog {str(self.path)!r} {len(self)} records, {state}>"

    @property
    def records(self) -> Sequence[Record]:
        """The records, list-like (indexing decodes one record; iteration decodes them one by one)."""
        return _Records(self)

    @property
    def sources(self) -> list[str]:
        """Source labels in order of first appearance."""
        src = self._base()["src"]
        codes, first = np.unique(src.cat.codes.to_numpy(), return_index=True)
        cats = src.cat.categories
        return [str(cats[c]) for c in codes[np.argsort(first)] if c >= 0]

    def _event_at(self, row: int) -> dict:
        if self._live:
            return dict(self._records[row].event)
        ln = int(self._row_line[row])
        raw = bytes(self._mm[self._line_start[ln]:self._line_start[ln + 1]])
        ev = json.loads(raw).get("event")
        return ev if isinstance(ev, dict) else {}

    def _rows_mentioning(self, rows: np.ndarray, needle: str) -> np.ndarray:
        """The rows whose raw line contains ``needle`` (a cheap pre-filter before decoding JSON)."""
        if self._live:
            return np.array([r for r in rows if needle in json.dumps(self._records[int(r)].event)], dtype=np.int64)
        nb = needle.encode()
        ls, rl, mm = self._line_start, self._row_line, self._mm
        return np.array([r for r in rows if mm.find(nb, int(ls[rl[r]]), int(ls[rl[r] + 1])) >= 0], dtype=np.int64)

    def _numbers_at(self, rows: np.ndarray, key: str) -> np.ndarray:
        """The top-level number ``event[key]`` of each row (NaN when absent), without decoding whole events.

        Only for flat events (the VAD events) whose key cannot occur nested; the flat record fields never hold it.
        """
        out = np.full(len(rows), np.nan)
        if self._live:
            for i, r in enumerate(rows):
                out[i] = _num(self._records[int(r)].event.get(key))
            return out
        pat = _number_pattern(key)
        ls, rl, mm = self._line_start, self._row_line, self._mm
        for i, r in enumerate(rows):
            ln = rl[r]
            m = pat.search(mm, int(ls[ln]), int(ls[ln + 1]))
            if m is not None:
                out[i] = float(m.group(1))
        return out

    def _events_at(self, rows: Iterable[int]) -> list[dict]:
        return [self._event_at(int(r)) for r in rows]

    def _record_at(self, row: int) -> Record:
        if self._live:
            return self._records[row]
        f = self._flat
        am = f["audio_ms"].iat[row]
        seq = f["seq"].iat[row]
        return Record(
            int(seq) if pd.notna(seq) else row, float(f["t"].iat[row]), None if pd.isna(am) else float(am),
            str(f["dir"].iat[row]), str(f["src"].iat[row]), str(f["type"].iat[row]),
            _na(f["item_id"].iat[row]), _na(f["response_id"].iat[row]), _na(f["event_id"].iat[row]),
            self._event_at(row),
        )

    def _base(self) -> pd.DataFrame:
        """Flat columns of every record: seq, t, audio_ms, dir, src, type, item_id, response_id, event_id, name."""
        with self._lock:
            n = len(self)
            if self._base_cache is not None and self._base_cache[0] == n:
                return self._base_cache[1]
            flat = self._flat if not self._live else _flat_from_objs(
                [{"seq": r.seq, "t": r.t, "audio_ms": r.audio_ms, "dir": r.direction, "src": r.source,
                  "type": r.type, "item_id": r.item_id, "response_id": r.response_id, "event_id": r.event_id}
                 for r in self._records])
            base = flat.copy()
            for col in ("dir", "src", "type"):
                if not isinstance(base[col].dtype, pd.CategoricalDtype):
                    base[col] = base[col].astype("category")
            types = base["type"].cat
            canon = np.array([canonical_event_name(str(c)) for c in types.categories], dtype=object)
            names, inverse = np.unique(canon, return_inverse=True) if len(canon) else (np.array([], object), [])
            codes = types.codes.to_numpy()
            new_codes = np.where(codes >= 0, np.asarray(inverse, dtype=np.int64)[np.maximum(codes, 0)]
                                 if len(canon) else -1, -1)
            base["name"] = pd.Categorical.from_codes(new_codes, categories=list(names))
            self._base_cache = (n, base)
            return base

    # ---------------------------------------------------------------- tables
    def to_frame(self, *, events: Literal["lazy", "dict", "json", "none"] = "lazy") -> pd.DataFrame:
        """One row per record.

        Columns: ``seq, t_ms, audio_ms, direction, source, type`` (canonical GA name), ``raw_type``, ``item_id``,
        ``response_id``, ``event_id``, ``event``. ``events`` chooses the ``event`` column: ``"lazy"`` (default:
        an :class:`EventArray` that decodes each event to a dict when accessed), ``"dict"`` (decoded now), ``"json"`` (strings) or ``"none"``.
        """
        if events not in ("lazy", "dict", "json", "none"):
            raise EventLogError(f"events must be 'lazy', 'dict', 'json' or 'none'; got {events!r}")
        b = self._base()
        df = pd.DataFrame({
            "seq": b["seq"].to_numpy(), "t_ms": b["t"].to_numpy() * 1000.0, "audio_ms": b["audio_ms"].to_numpy(),
            "direction": b["dir"], "source": b["src"], "type": b["name"], "raw_type": b["type"],
            "item_id": b["item_id"], "response_id": b["response_id"], "event_id": b["event_id"],
        })
        n = len(df)
        if events == "lazy":
            df["event"] = pd.Series(EventArray(self, np.arange(n, dtype=np.int64)), index=df.index)
        elif events == "dict":
            df["event"] = pd.Series(self._events_at(range(n)), dtype=object, index=df.index)
        elif events == "json":
            df["event"] = pd.Series([json.dumps(e, ensure_ascii=False) for e in self._events_at(range(n))],
                                    dtype=object, index=df.index)
        return df

    def to_parquet(self, path: str | os.PathLike) -> Path:
        """Write ``to_frame(events="json")`` as Parquet (the event column holds JSON strings); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        df = self.to_frame(events="json")
        for col in ("direction", "source", "type", "raw_type"):
            df[col] = df[col].astype(str)
        df.to_parquet(path, index=False)
        return path

    def input_audio(self) -> tuple[np.ndarray, int]:
        """The input track (int16 mono) and its sample rate; empty when no audio was appended."""
        if self._live and self._input is not None and self._input._fh is not None:
            self._input._fh.flush()
        jp = self.path.with_name(self.path.stem + ".input.json")
        if not jp.exists():
            return np.zeros(0, dtype=np.int16), AUDIO_FORMATS[self._input_format].sample_rate
        samples, rate, _ = _read_track(jp)
        return samples, rate

    def output_sources(self) -> list[str]:
        """Sources that have an output (assistant audio) track."""
        return sorted(self._output_tracks())

    def _output_tracks(self) -> dict[str, Path]:
        out = {}
        for jp in sorted(self.path.parent.glob(self.path.stem + ".output.*.json")):
            try:
                desc = json.loads(jp.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(desc, dict) and isinstance(desc.get("source"), str):
                out[desc["source"]] = jp
        return out

    def output_audio(self, source: str) -> tuple[np.ndarray, int]:
        """The output (assistant audio) track of ``source`` and its rate (24 kHz for pcm16)."""
        track = self._outputs.get(source)
        if track is not None and track._fh is not None:
            track._fh.flush()
        tracks = self._output_tracks()
        if source not in tracks:
            if source in self.sources:
                return np.zeros(0, dtype=np.int16), AUDIO_FORMATS["pcm16"].sample_rate
            raise EventLogError(f"no source {source!r} in {self.path}; sources: {self.sources}")
        samples, rate, _ = _read_track(tracks[source])
        return samples, rate

    def turns(self, references: Sequence[Mapping[str, Any]] | None = None) -> pd.DataFrame:
        """One row per (source, item): audio span, transcript, latencies, deltas, usage and cost.

        Parameters
        ----------
        references : list of dict, optional
            Manifest utterances ``[{"text", "start_s", "end_s"}, ...]`` of the audio (true speech spans). Each is
            given to the turn of each source that overlaps it most in audio time; a turn's ``reference`` is the
            text of the utterances given to it, and ``ttfs_true_ms`` is measured from the end of the last one.

        Returns
        -------
        pandas.DataFrame
            Columns ``source, item_id, audio_start_ms, audio_end_ms, transcript, first_delta_ms, ttfs_ms,
            ttfs_true_ms, n_deltas, usage, cost_usd, reference, model`` and ``kind`` ("transcription" | "oob"),
            ``status`` ("completed" | "failed" | "pending"), ``error``, ``first_delta_from_start_ms``,
            ``end_anchor`` ("speech_stopped" | "audio_clock"), ``end_wall_ms``, ``final_wall_ms`` (log wall
            clock), ``response_id``, ``ref_start_ms``, ``ref_end_ms``. See the module docstring for definitions.
        """
        return _build_turns(self, references)


def _na(v: Any) -> str | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else str(v)


def _flat_from_arrow(table) -> pd.DataFrame:
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


def _flat_from_objs(objs: list[dict]) -> pd.DataFrame:
    import pyarrow as pa

    table = pa.Table.from_pylist(
        [{k: o.get(k) for k in _flat_schema().names} for o in objs], schema=_flat_schema())
    return _flat_from_arrow(table)


def _refuse_secrets(meta: Any, path: str = "meta") -> None:
    """Refuse meta keys that look like credentials: a log is shared, a secret must never land in it."""
    if isinstance(meta, Mapping):
        for k, v in meta.items():
            if re.search(r"api[-_]?key|secret|password|authorization|bearer", str(k), re.I) and v:
                raise EventLogError(f"{path}.{k} looks like a credential; event logs never store secrets — "
                                    "remove it from meta")
            _refuse_secrets(v, f"{path}.{k}")
    elif isinstance(meta, list | tuple):
        for i, v in enumerate(meta):
            _refuse_secrets(v, f"{path}[{i}]")


class _Records(Sequence):
    def __init__(self, log: EventLog):
        self._log = log

    def __len__(self) -> int:
        return len(self._log)

    def __getitem__(self, i):  # type: ignore[override]
        n = len(self)
        if isinstance(i, slice):
            return [self._log._record_at(j) for j in range(*i.indices(n))]
        if not isinstance(i, int | np.integer):
            raise TypeError(f"record index must be an int or slice; got {type(i).__name__}")
        j = int(i) + n if i < 0 else int(i)
        if not 0 <= j < n:
            raise IndexError(f"record {i} out of range ({n} records)")
        return self._log._record_at(j)

    def __iter__(self) -> Iterator[Record]:
        for j in range(len(self)):
            yield self._log._record_at(j)


# ------------------------------------------------------------------------------------------------------------------
# turns(): vectorised over the flat columns; only the few events that carry text, usage or audio times are decoded
# ------------------------------------------------------------------------------------------------------------------
class _AudioClock:
    """When was audio position p (ms) sent? The ``t`` of the first append whose chunk reaches p (per source)."""

    def __init__(self, src: np.ndarray, pos_ms: np.ndarray, t: np.ndarray):
        self.by_source = {int(s): self._prep(pos_ms[src == s], t[src == s]) for s in np.unique(src)}
        self.shared = self._prep(pos_ms, t)

    @staticmethod
    def _prep(pos: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(pos, kind="stable")
        # earliest send time of any chunk that reaches at least this far
        return pos[order], np.minimum.accumulate(t[order][::-1])[::-1]

    def sent_at(self, source_code: int, pos_ms: np.ndarray) -> np.ndarray:
        pos_sorted, t_min = self.by_source.get(source_code, self.shared)
        pos_ms = np.asarray(pos_ms, dtype=float)
        out = np.full(pos_ms.shape, np.nan)
        if not len(pos_sorted):
            return out
        idx = np.searchsorted(pos_sorted, pos_ms - 1e-3, side="left")
        ok = np.isfinite(pos_ms) & (idx < len(pos_sorted))
        out[ok] = t_min[idx[ok]]
        return out


def _check_references(references: Any) -> list[dict]:
    if references is None:
        return []
    if isinstance(references, Mapping) and "utterances" in references:
        references = references["utterances"]
    if isinstance(references, pd.DataFrame):
        references = references.to_dict("records")
    out = []
    for i, r in enumerate(references):
        try:
            text, start, end = str(r["text"]), float(r["start_s"]), float(r["end_s"])
        except (KeyError, TypeError, ValueError):
            raise EventLogError(f"references[{i}] = {str(r)[:80]!r}: each reference needs 'text', 'start_s' and "
                                "'end_s' (seconds in the audio), like the utterances in data/manifest.json") from None
        if not (math.isfinite(start) and math.isfinite(end)) or end < start:
            raise EventLogError(f"references[{i}]: start_s={start} end_s={end} is not a time span")
        out.append({"text": text, "start_ms": start * 1000.0, "end_ms": end * 1000.0})
    return sorted(out, key=lambda r: (r["start_ms"], r["end_ms"]))


def _session_models(session: Any) -> tuple[str | None, str | None]:
    """(session model, input transcription model) from a GA or beta session object."""
    if not isinstance(session, Mapping):
        return None, None
    audio_in = ((session.get("audio") or {}).get("input") or {}) if isinstance(session.get("audio"), Mapping) else {}
    tr = audio_in.get("transcription") if isinstance(audio_in, Mapping) else None
    if not isinstance(tr, Mapping):
        tr = session.get("input_audio_transcription")
    tr_model = tr.get("model") if isinstance(tr, Mapping) else None
    return _str_or_none(session.get("model")), _str_or_none(tr_model)


def _base_source(source: str) -> str:
    return source.split("#", 1)[0]


def _response_text(resp: Mapping[str, Any]) -> str | None:
    """Text (or audio transcript) of a response object's output, for response.done without a text-done event."""
    parts = []
    for item in resp.get("output") or []:
        for c in (item or {}).get("content") or [] if isinstance(item, Mapping) else []:
            if isinstance(c, Mapping):
                v = c.get("text") if c.get("text") is not None else c.get("transcript")
                if isinstance(v, str):
                    parts.append(v)
    return "".join(parts) if parts else None


def _empty_turns() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in TURN_COLUMNS})


def _build_turns(log: EventLog, references: Any) -> pd.DataFrame:
    refs = _check_references(references)
    b = log._base()
    if not len(b):
        return _empty_turns()
    name = b["name"]
    type_code = {c: i for i, c in enumerate(name.cat.categories)}
    codes = name.cat.codes.to_numpy()

    def rows_of(*names: str, client: bool = False) -> np.ndarray:
        ids = [type_code[n] for n in names if n in type_code]
        if not ids:
            return np.zeros(0, dtype=np.int64)
        m = np.isin(codes, ids)
        return np.flatnonzero(m & (is_client if client else ~is_client))

    is_client = (b["dir"].cat.codes.to_numpy() == list(b["dir"].cat.categories).index("client")) \
        if "client" in list(b["dir"].cat.categories) else np.zeros(len(b), dtype=bool)
    t = b["t"].to_numpy(dtype=float)
    am = b["audio_ms"].to_numpy(dtype=float, na_value=np.nan)
    src = b["src"].cat.codes.to_numpy().astype(np.int64)
    src_names = [str(c) for c in b["src"].cat.categories]
    item_col, resp_col = b["item_id"], b["response_id"]

    def items_at(rows: np.ndarray) -> list:
        return [_na(v) for v in item_col.iloc[rows].tolist()]

    def resps_at(rows: np.ndarray) -> list:
        return [_na(v) for v in resp_col.iloc[rows].tolist()]

    # The audio clock, from client appends.
    app = rows_of(APPEND, client=True)
    app = app[np.isfinite(am[app])]
    clock = _AudioClock(src[app], am[app], t[app])

    turns: dict[tuple[int, str], dict] = {}

    def turn(s: int, item: str, row: int) -> dict:
        key = (s, item)
        d = turns.get(key)
        if d is None:
            d = turns[key] = {"first_row": row, "kind": "transcription", "n_deltas": 0}
        return d

    # VAD events (only their audio_start_ms / audio_end_ms are read).
    st_rows = rows_of(SPEECH_STARTED)
    for r, item, v in zip(st_rows, items_at(st_rows), log._numbers_at(st_rows, "audio_start_ms"), strict=True):
        if item is not None:
            d = turn(int(src[r]), item, int(r))
            if "t_start" not in d:
                d["t_start"], d["start_ms"] = t[r], v
    sp_rows = rows_of(SPEECH_STOPPED)
    for r, item, v in zip(sp_rows, items_at(sp_rows), log._numbers_at(sp_rows, "audio_end_ms"), strict=True):
        if item is not None:
            d = turn(int(src[r]), item, int(r))
            d["t_stop"], d["end_ms"] = t[r], v

    # Commits: a client-committed item spans from the previous commit/clear to its commit.
    cm_rows = rows_of(COMMITTED)
    bounds = rows_of(COMMIT, CLEAR, client=True)
    bound_is_commit = codes[bounds] == type_code.get(COMMIT, -1)
    for r, item in zip(cm_rows, items_at(cm_rows), strict=True):
        if item is None:
            continue
        s = int(src[r])
        d = turn(s, item, int(r))
        d.setdefault("t_committed", t[r])
        if "t_stop" in d or "end_ms" in d:
            continue
        m = (src[bounds] == s) & (bounds < r)
        mine, mine_commit = bounds[m], bound_is_commit[m]
        if mine_commit.any():
            k = int(np.flatnonzero(mine_commit)[-1])  # the last client commit before the server's committed
            d["end_ms"] = am[mine[k]]
            d["start_ms"] = am[mine[k - 1]] if k > 0 and np.isfinite(am[mine[k - 1]]) else 0.0

    # Transcription deltas: counted and timed without decoding them.
    dl_rows = rows_of(TR_DELTA)
    if len(dl_rows):
        g = pd.DataFrame({"s": src[dl_rows], "i": item_col.iloc[dl_rows].to_numpy(dtype=object),
                          "t": t[dl_rows], "r": dl_rows}).dropna(subset=["i"])
        agg = g.groupby(["s", "i"], sort=False).agg(n=("t", "size"), t_first=("t", "min"), r=("r", "min"))
        for (s, item), n, t_first, r in zip(agg.index, agg["n"], agg["t_first"], agg["r"], strict=True):
            d = turn(int(s), str(item), int(r))
            d["n_deltas"], d["t_first"] = int(n), float(t_first)

    # Completed / failed.
    co_rows = rows_of(TR_COMPLETED, TR_FAILED)
    for r, item, ev in zip(co_rows, items_at(co_rows), log._events_at(co_rows), strict=True):
        if item is None:
            continue
        d = turn(int(src[r]), item, int(r))
        if d.get("status") == "completed":
            continue  # keep the first final transcript of an item
        if canonical_event_name(ev.get("type", "")) == TR_COMPLETED:
            d.update(status="completed", transcript=_str_or_none(ev.get("transcript")), usage=ev.get("usage"),
                     t_final=t[r], error=None)
        else:
            err = ev.get("error") if isinstance(ev.get("error"), Mapping) else {}
            d.update(status="failed", t_final=t[r], transcript=None,
                     error=f"{err.get('code') or err.get('type') or 'failed'}: {err.get('message') or ''}".strip())

    # Items with deltas but no final transcript yet: their text so far.
    pending = {k for k, d in turns.items() if "status" not in d and d["n_deltas"]}
    if pending:
        sel = dl_rows[[(int(s), i) in pending for s, i in zip(src[dl_rows], items_at(dl_rows), strict=True)]]
        for r, item, ev in zip(sel, items_at(sel), log._events_at(sel), strict=True):
            d = turns[(int(src[r]), item)]
            d["transcript"] = (d.get("transcript") or "") + str(ev.get("delta") or "")

    # Session models per source: the last server session event, else the last client session.update.
    models: dict[int, tuple[str | None, str | None]] = {}
    ss_rows = rows_of(*SESSION_EVENTS)
    su_rows = rows_of("session.update", client=True)
    for rows in (su_rows, ss_rows):  # server events override client requests
        for r, ev in zip(rows, log._events_at(rows), strict=True):
            sm, tm = _session_models(ev.get("session"))
            old = models.get(int(src[r]), (None, None))
            models[int(src[r])] = (sm or old[0], tm or old[1])

    # Out-of-band responses: response_id -> the item they transcribe (metadata echoed by the server).
    rs_rows = log._rows_mentioning(rows_of(RESPONSE_CREATED, RESPONSE_DONE), OOB_ITEM_KEY)
    oob: dict[str, dict] = {}
    for r, ev in zip(rs_rows, log._events_at(rs_rows), strict=True):
        resp = ev.get("response") if isinstance(ev.get("response"), Mapping) else {}
        rid = _str_or_none(resp.get("id"))
        meta = resp.get("metadata") if isinstance(resp.get("metadata"), Mapping) else {}
        target = _str_or_none(meta.get(OOB_ITEM_KEY))
        if rid is None:
            continue
        if target is not None:
            oob.setdefault(rid, {"item": target, "first_row": int(r)})
        if rid in oob:
            o = oob[rid]
            if canonical_event_name(ev.get("type", "")) == RESPONSE_CREATED:
                o.setdefault("session_src", int(src[r]))
            else:
                o.update(t_done=t[r], done_src=int(src[r]), usage=resp.get("usage"),
                         status=_str_or_none(resp.get("status")), done_text=_response_text(resp))
                o.setdefault("session_src", int(src[r]))
    if oob:
        rids = pd.Index(list(oob))
        td_rows = rows_of(*TEXT_DELTAS)
        td_rows = td_rows[resp_col.iloc[td_rows].isin(rids).to_numpy(dtype=bool)] if len(td_rows) else td_rows
        if len(td_rows):
            g = pd.DataFrame({"rid": resps_at(td_rows), "t": t[td_rows], "s": src[td_rows]})
            agg = g.groupby("rid", sort=False).agg(n=("t", "size"), t_first=("t", "min"), s=("s", "first"))
            for rid, n, t_first, s in zip(agg.index, agg["n"], agg["t_first"], agg["s"], strict=True):
                oob[rid].update(n_deltas=int(n), t_first=float(t_first), delta_src=int(s))
        tx_rows = rows_of(*TEXT_DONES)
        tx_rows = tx_rows[resp_col.iloc[tx_rows].isin(rids).to_numpy(dtype=bool)] if len(tx_rows) else tx_rows
        for r, rid, ev in zip(tx_rows, resps_at(tx_rows), log._events_at(tx_rows), strict=True):
            text = ev.get("text") if isinstance(ev.get("text"), str) else ev.get("transcript")
            o = oob[rid]
            if "t_text" not in o:
                o.update(t_text=t[r], text=_str_or_none(text), text_src=int(src[r]))
        # Each OOB response becomes a row for (its source, the item it transcribes); a retry replaces an earlier one.
        spans = {}
        for (_s, item), d in turns.items():
            if "end_ms" in d and (item not in spans or "t_stop" in d):
                spans[item] = d
        used = set(turns)
        for rid, o in sorted(oob.items(), key=lambda kv: kv[1]["first_row"]):
            s = o.get("text_src", o.get("done_src", o.get("delta_src", o.get("session_src"))))
            if s is None:
                continue
            label = src_names[s]
            if (s, o["item"]) in used and turns[(s, o["item"])].get("kind") != "oob":
                label = label + ":oob"
                if label not in src_names:
                    src_names.append(label)
                s = src_names.index(label)
            d = {"first_row": o["first_row"], "kind": "oob", "n_deltas": o.get("n_deltas", 0),
                 "response_id": rid, "clock_src": s if s < len(src_names) else -1}
            if "t_first" in o:
                d["t_first"] = o["t_first"]
            text = o.get("text", o.get("done_text"))
            t_final = o.get("t_text", o.get("t_done"))
            if t_final is not None and (text is not None or o.get("status") == "completed"):
                d.update(status="completed", transcript=text, t_final=t_final)
            elif "t_done" in o:
                d.update(status="failed", t_final=o["t_done"], error=f"response {o.get('status') or 'incomplete'}")
            d["usage"] = o.get("usage")
            span = spans.get(o["item"])
            if span is not None:
                d["start_ms"], d["end_ms"] = span.get("start_ms"), span.get("end_ms")
            sess = o.get("session_src")
            d["model"] = models.get(sess, (None, None))[0] if sess is not None else None
            turns[(s, o["item"])] = d

    if not turns:
        return _empty_turns()

    keys = sorted(turns, key=lambda k: (k[0] if k[0] < len(src_names) else 1 << 30, turns[k]["first_row"]))
    n = len(keys)

    def col(field: str, default: Any = np.nan) -> list:
        return [turns[k].get(field, default) for k in keys]

    source = [src_names[s] for s, _ in keys]
    start_ms = np.array([_num(v) for v in col("start_ms")], dtype=float)
    end_ms = np.array([_num(v) for v in col("end_ms")], dtype=float)
    t_stop = np.array(col("t_stop"), dtype=float)
    t_start = np.array(col("t_start"), dtype=float)
    t_first = np.array(col("t_first"), dtype=float)
    t_final = np.array(col("t_final"), dtype=float)
    # Audio-clock anchors where the source has no VAD events, per clock source.
    clock_src = np.array([turns[k].get("clock_src", k[0]) if turns[k]["kind"] == "oob" else k[0] for k in keys])
    t_end_clock = np.full(n, np.nan)
    t_start_clock = np.full(n, np.nan)
    for s in np.unique(clock_src):
        m = clock_src == s
        t_end_clock[m] = clock.sent_at(int(s), end_ms[m])
        t_start_clock[m] = clock.sent_at(int(s), start_ms[m])
    has_stop = np.isfinite(t_stop)
    t_end = np.where(has_stop, t_stop, t_end_clock)
    t_begin = np.where(np.isfinite(t_start), t_start, t_start_clock)
    anchor = np.where(has_stop, "speech_stopped", np.where(np.isfinite(t_end_clock), "audio_clock", None))

    # References: each utterance goes to the overlapping turn with the largest overlap, per source.
    reference = [None] * n
    ref_start = np.full(n, np.nan)
    ref_end = np.full(n, np.nan)
    t_true = np.full(n, np.nan)
    if refs:
        by_source: dict[str, list[int]] = {}
        for i, s in enumerate(source):
            if np.isfinite(start_ms[i]) and np.isfinite(end_ms[i]):
                by_source.setdefault(s, []).append(i)
        assigned: dict[int, list[dict]] = {}
        for idx in by_source.values():
            idx = np.array(sorted(idx, key=lambda i: start_ms[i]))
            st, en = start_ms[idx], end_ms[idx]
            run_max_end = np.maximum.accumulate(en)
            for ref in refs:
                hi = np.searchsorted(st, ref["end_ms"], side="left")
                lo = np.searchsorted(run_max_end, ref["start_ms"], side="right")
                if hi <= lo:
                    continue
                ov = np.minimum(en[lo:hi], ref["end_ms"]) - np.maximum(st[lo:hi], ref["start_ms"])
                j = int(np.argmax(ov))
                if ov[j] > 0:
                    assigned.setdefault(int(idx[lo + j]), []).append(ref)
        for i, rs in assigned.items():
            reference[i] = " ".join(r["text"] for r in rs)
            ref_start[i] = min(r["start_ms"] for r in rs)
            ref_end[i] = max(r["end_ms"] for r in rs)
        for s in np.unique(clock_src):
            m = clock_src == s
            t_true[m] = clock.sent_at(int(s), ref_end[m])

    # Model and cost.
    from .metrics import cost as _cost
    from .metrics import load_prices

    prices = load_prices()
    meta_models = log.meta.get("models") if isinstance(log.meta.get("models"), Mapping) else {}
    model_col, cost_col = [], []
    for i, k in enumerate(keys):
        d = turns[k]
        label = source[i]
        model = d.get("model") if d["kind"] == "oob" else models.get(k[0], (None, None))[1]
        # meta "models": {source label or Azure deployment name: model name}, for pricing deployments
        model = meta_models.get(label) or (meta_models.get(model, model) if model else model)
        model_col.append(model)
        if _base_source(label) == "sidecar:local":
            cost_col.append(0.0)
            continue
        dur = (end_ms[i] - start_ms[i]) / 1000.0 if np.isfinite(end_ms[i] - start_ms[i]) else None
        try:
            cost_col.append(_cost(d.get("usage"), model, prices, audio_seconds=dur) if model else np.nan)
        except (ValueError, KeyError, TypeError):
            cost_col.append(np.nan)

    ms = 1000.0
    df = pd.DataFrame({
        "source": source,
        "item_id": [k[1] for k in keys],
        "audio_start_ms": start_ms,
        "audio_end_ms": end_ms,
        "transcript": col("transcript", None),
        "first_delta_ms": (t_first - t_end) * ms,
        "ttfs_ms": (t_final - t_end) * ms,
        "ttfs_true_ms": (t_final - t_true) * ms,
        "n_deltas": np.array(col("n_deltas", 0), dtype=np.int64),
        "usage": col("usage", None),
        "cost_usd": np.array(cost_col, dtype=float),
        "reference": reference,
        "model": model_col,
        "kind": col("kind", None),
        "status": [v or "pending" for v in col("status", None)],
        "error": col("error", None),
        "first_delta_from_start_ms": (t_first - t_begin) * ms,
        "end_anchor": anchor,
        "end_wall_ms": t_end * ms,
        "final_wall_ms": t_final * ms,
        "response_id": col("response_id", None),
        "ref_start_ms": ref_start,
        "ref_end_ms": ref_end,
    })
    return df[TURN_COLUMNS]


def _num(v: Any) -> float:
    if isinstance(v, bool) or v is None:
        return np.nan
    try:
        f = float(v)
    except (TypeError, ValueError):
        return np.nan
    return f
