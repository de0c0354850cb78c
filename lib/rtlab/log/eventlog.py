"""The event log: every client and server event of a run, on one wall clock and one audio clock (layer: log).

An :class:`EventLog` is an append-only JSON Lines file (``DIR/events.jsonl``), one record per line, flushed per
event so that a crash or a dropped connection loses nothing that was received. Line 1 is a header::

    {"rtlab_eventlog": 1, "created_utc": "...", "t0_unix": 1764000000.0, "meta": {...}}

and every other line is one record, flat fields first, the raw event last::

    {"seq": 7, "t": 1.234567, "audio_ms": 1240.0, "dir": "server", "src": "in-session",
     "type": "input_audio_buffer.speech_stopped", "item_id": "item_1", "response_id": null, "event_id": "evt_9",
     "event": {...the event as sent or received...}}

``t`` is seconds since the log was created (monotonic clock); ``audio_ms`` is the audio clock: milliseconds of
input audio sent so far when the event was sent or received. For a client append it is the position *after* the
chunk (chunk offset + chunk length), which is what the runs pass.

Audio is stored once, beside the log, never inline (:mod:`rtlab.log.tracks`): the input track
``events.input.pcm`` (written at each chunk's sample offset on the shared clock; several sources appending the same
chunk at the same offset write it once; the stored append event keeps ``{"$ref": "input", "offset", "samples"}``),
and one output track per source, ``events.output.<source>.pcm``, for assistant audio (placed at the audio-clock
position where it arrived, or right after the previous chunk when that is later). Which events carry audio is
:data:`rtlab.protocol.events.INPUT_AUDIO_FIELDS` / ``OUTPUT_AUDIO_FIELDS``. :meth:`EventLog.close` converts the
``.pcm`` files to ``.wav``; :meth:`EventLog.load` reads either, so a crashed run's audio is as readable as a
closed one's. G.711 input is stored decoded (int16, 8 kHz).

Loading is columnar (:mod:`rtlab.log.reader`): pyarrow's JSON reader parses the flat fields of every line, and the
raw event of a record is decoded from its line only when asked (``log.records[i]``, ``to_frame()['event'][i]``).
A torn last line (a crash mid-write) or a corrupt line in the middle is reported in ``log.torn`` and a warning,
never fatal. The log stores and never interprets: turns, latency and cost are :mod:`rtlab.analysis`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
import math
import mmap
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from rtlab.errors import EventLogError
from rtlab.protocol.events import INPUT_AUDIO_FIELDS, OUTPUT_AUDIO_FIELDS, canonical_event_name
from rtlab.protocol.shapes import AUDIO_FORMATS

from .frame import EventArray
from .reader import flat_from_arrow, flat_from_objs, line_starts, na, num, number_pattern, read_flat
from .record import (
    DIRECTIONS,
    FORMAT_VERSION,
    HEADER_KEY,
    EventLogWarning,
    Record,
    check_record,
    event_ids,
    refuse_secrets,
)
from .tracks import Track, decode_audio, read_track, slug

__all__ = ["EventLog"]


class EventLog:
    """Timestamped record of every event of a run. Create with :meth:`create` (recording) or :meth:`load`.

    Examples
    --------
    >>> with EventLog.create(tmp / "events.jsonl", meta={"audio": "clip.wav"}) as log:   # doctest: +SKIP
    ...     log.record("client", "in-session", {"type": "input_audio_buffer.append", "audio": b64},
    ...                audio_offset=0)
    >>> turns(EventLog.load(tmp / "events.jsonl"))            # rtlab.analysis.turns     # doctest: +SKIP
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
        self._input: Track | None = None
        self._outputs: dict[str, Track] = {}
        self._cursor: dict[str, int] = {}
        self._wire_resamplers: dict[str, Any] = {}
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
        refuse_secrets(meta)
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
               audio_offset: int | None = None, t: float | None = None,
               audio_format: tuple[str, int] | None = None) -> Record:
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
        audio_format : (format, rate), optional
            The wire format and rate of this event's input audio when it differs from the log's input format (a
            GPT-Live session sending PCM at 16 kHz): the audio is resampled onto the input track (whose clock
            ``audio_offset`` counts in) with one streaming resampler per source, and the stored reference keeps
            the wire format so :meth:`as_sent` can give it back.
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
            audio_field = (INPUT_AUDIO_FIELDS if direction == "client" else OUTPUT_AUDIO_FIELDS).get(name)
            if audio_field is not None and isinstance(event.get(audio_field), str):
                if direction == "client":
                    stored, audio_ms = self._store_input(source, event, audio_field, audio_ms, audio_offset,
                                                         audio_format)
                else:
                    stored = self._store_output(source, event, audio_field, audio_ms)
            item_id, response_id, event_id = event_ids(stored)
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

    def _store_input(self, source, event, field, audio_ms, audio_offset, audio_format=None):
        fmt = self._input_format
        wire_fmt, wire_rate = audio_format or (fmt, AUDIO_FORMATS[fmt].sample_rate)
        try:
            samples = decode_audio(base64.b64decode(event[field], validate=True), wire_fmt)
        except (binascii.Error, ValueError):
            return event, audio_ms  # not decodable audio: keep the event exactly as sent (nothing lost)
        track_rate = AUDIO_FORMATS[fmt].sample_rate
        if wire_rate != track_rate:
            from rtlab.audio import Resampler

            if source not in self._wire_resamplers:
                self._wire_resamplers[source] = Resampler(int(wire_rate), track_rate)
            samples = self._wire_resamplers[source].process(samples)
        if self._input is None:
            self._input = Track(self.path.with_name(self.path.stem + ".input"), "input", None, fmt)
        offset = self._cursor.get(source, 0) if audio_offset is None else int(audio_offset)
        if offset < 0:
            raise EventLogError(f"audio_offset must be >= 0; got {audio_offset!r}")
        n = len(samples)
        self._input.write(offset, samples, dedupe=True)
        self._cursor[source] = offset + n
        if audio_ms is None:
            audio_ms = (offset + n) * 1000.0 / self._input.rate
        stored = dict(event)
        stored[field] = {"$ref": "input", "offset": offset, "samples": n}
        if audio_format is not None:
            stored[field].update(format=wire_fmt, rate=int(wire_rate))
        return stored, audio_ms

    def _store_output(self, source, event, field, audio_ms):
        fmt = self._output_formats.get(source) or self._output_formats.get(None) or "pcm16"
        try:
            samples = decode_audio(base64.b64decode(event[field], validate=True), fmt)
        except (binascii.Error, ValueError):
            return event
        track = self._outputs.get(source)
        if track is None:
            taken = {t.stem.name for t in self._outputs.values()}
            stem_name, k = f"{self.path.stem}.output.{slug(source)}", 2
            while stem_name in taken:
                stem_name, k = f"{self.path.stem}.output.{slug(source)}-{k}", k + 1
            track = self._outputs[source] = Track(self.path.with_name(stem_name), "output", source, fmt)
        arrival = track.end if audio_ms is None else round(audio_ms * track.rate / 1000.0)
        offset = max(arrival, track.end)
        track.write(offset, samples, dedupe=False)
        stored = dict(event)
        stored[field] = {"$ref": "output", "offset": offset, "samples": len(samples)}
        return stored

    def time_at(self, monotonic: float) -> float:
        """A ``time.monotonic()`` reading as this log's clock ``t`` (seconds since the log was created)."""
        return round(float(monotonic) - self._t0, 6)

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
        starts = line_starts(buf)
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
                why = check_record(obj)
            except ValueError:
                why = "torn last line (no newline, incomplete JSON)"
            if why is None:
                tail_rows.append((last, obj))
            elif raw.strip():
                log._report(last, int(starts[last]), why, raw)
        flat, row_line = log._parse_body(mm, starts, first, last)
        if tail_rows:
            extra = flat_from_objs([o for _, o in tail_rows])
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
            return flat_from_objs([]), np.zeros(0, dtype=np.int64)
        lengths = np.diff(starts[first:last + 1])
        nonblank = np.flatnonzero(lengths > 1) + first  # a blank line is just "\n"
        try:
            table = read_flat(memoryview(mm)[starts[first]:starts[last]])
            if table.num_rows != len(nonblank):
                raise ValueError("row count mismatch")
            flat = flat_from_arrow(table)
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
                    table = read_flat(memoryview(mm)[s:e])
                    f = flat_from_arrow(table)
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
                why = check_record(obj)
                if why is not None:
                    self._report(int(ln), int(starts[ln]), f"not a record ({why})", raw)
                    continue
                objs.append(obj)
                good.append(ln)
            frames.append(flat_from_objs(objs))
            lines.append(np.array(good, dtype=np.int64))
        frames = [f for f in frames if len(f)] or [flat_from_objs([])]
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
        src = self.columns()["src"]
        codes, first = np.unique(src.cat.codes.to_numpy(), return_index=True)
        cats = src.cat.categories
        return [str(cats[c]) for c in codes[np.argsort(first)] if c >= 0]

    def event_at(self, row: int) -> dict:
        if self._live:
            return dict(self._records[row].event)
        ln = int(self._row_line[row])
        raw = bytes(self._mm[self._line_start[ln]:self._line_start[ln + 1]])
        ev = json.loads(raw).get("event")
        return ev if isinstance(ev, dict) else {}

    def rows_mentioning(self, rows: np.ndarray, needle: str) -> np.ndarray:
        """The rows whose raw line contains ``needle`` (a cheap pre-filter before decoding JSON)."""
        if self._live:
            return np.array([r for r in rows if needle in json.dumps(self._records[int(r)].event)], dtype=np.int64)
        nb = needle.encode()
        ls, rl, mm = self._line_start, self._row_line, self._mm
        return np.array([r for r in rows if mm.find(nb, int(ls[rl[r]]), int(ls[rl[r] + 1])) >= 0], dtype=np.int64)

    def numbers_at(self, rows: np.ndarray, key: str) -> np.ndarray:
        """The top-level number ``event[key]`` of each row (NaN when absent), without decoding whole events.

        Only for flat events (the VAD events) whose key cannot occur nested; the flat record fields never hold it.
        """
        out = np.full(len(rows), np.nan)
        if self._live:
            for i, r in enumerate(rows):
                out[i] = num(self._records[int(r)].event.get(key))
            return out
        pat = number_pattern(key)
        ls, rl, mm = self._line_start, self._row_line, self._mm
        for i, r in enumerate(rows):
            ln = rl[r]
            m = pat.search(mm, int(ls[ln]), int(ls[ln + 1]))
            if m is not None:
                out[i] = float(m.group(1))
        return out

    def events_at(self, rows: Iterable[int]) -> list[dict]:
        return [self.event_at(int(r)) for r in rows]

    def _record_at(self, row: int) -> Record:
        if self._live:
            return self._records[row]
        f = self._flat
        am = f["audio_ms"].iat[row]
        seq = f["seq"].iat[row]
        return Record(
            int(seq) if pd.notna(seq) else row, float(f["t"].iat[row]), None if pd.isna(am) else float(am),
            str(f["dir"].iat[row]), str(f["src"].iat[row]), str(f["type"].iat[row]),
            na(f["item_id"].iat[row]), na(f["response_id"].iat[row]), na(f["event_id"].iat[row]),
            self.event_at(row),
        )

    def columns(self) -> pd.DataFrame:
        """Flat columns of every record: seq, t, audio_ms, dir, src, type, item_id, response_id, event_id, name."""
        with self._lock:
            n = len(self)
            if self._base_cache is not None and self._base_cache[0] == n:
                return self._base_cache[1]
            flat = self._flat if not self._live else flat_from_objs(
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
        b = self.columns()
        df = pd.DataFrame({
            "seq": b["seq"].to_numpy(), "t_ms": b["t"].to_numpy() * 1000.0, "audio_ms": b["audio_ms"].to_numpy(),
            "direction": b["dir"], "source": b["src"], "type": b["name"], "raw_type": b["type"],
            "item_id": b["item_id"], "response_id": b["response_id"], "event_id": b["event_id"],
        })
        n = len(df)
        if events == "lazy":
            df["event"] = pd.Series(EventArray(self, np.arange(n, dtype=np.int64)), index=df.index)
        elif events == "dict":
            df["event"] = pd.Series(self.events_at(range(n)), dtype=object, index=df.index)
        elif events == "json":
            df["event"] = pd.Series([json.dumps(e, ensure_ascii=False) for e in self.events_at(range(n))],
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
        samples, rate, _ = read_track(jp)
        return samples, rate

    def as_sent(self, event: Mapping[str, Any], source: str | None = None) -> dict[str, Any]:
        """A stored event with its audio put back as base64 (as it went over the wire), e.g. to validate it
        against the SDK's models. ``source`` names whose output track an output ``$ref`` points into."""
        out = dict(event)
        for key, value in event.items():
            if not (isinstance(value, Mapping) and value.get("$ref") in ("input", "output")):
                continue
            if value["$ref"] == "input":
                samples, _ = self.input_audio()
                fmt = self._input_format
            else:
                if source is None:
                    raise EventLogError("as_sent() needs the source of an output-audio event")
                samples, _ = self.output_audio(source)
                fmt = (self._output_formats.get(source) or self._output_formats.get(None) or "pcm16")
            part = samples[int(value["offset"]): int(value["offset"]) + int(value["samples"])]
            from rtlab.audio import encode_g711, resample

            if "rate" in value:  # sent in another format than the track's: give back that format
                fmt = value.get("format", fmt)
                part = resample(part, AUDIO_FORMATS[self._input_format].sample_rate, int(value["rate"]))
            data = part.astype("<i2").tobytes() if fmt == "pcm16" else \
                encode_g711(part, "ulaw" if fmt == "g711_ulaw" else "alaw")
            out[key] = base64.b64encode(data).decode("ascii")
        return out

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
        samples, rate, _ = read_track(tracks[source])
        return samples, rate





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


