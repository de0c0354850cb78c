"""A study's output folder: results as partitioned Parquet, event logs beside them, one status record per unit.

Layer: runs (study). Layout of ``DIR``::

    study.json                                   the study (id, seed, conditions, corpus, settings, provenance)
    run.json                                     present while a run is going (pid, host, executor, counts)
    results/condition=<id>/part-<unit>.parquet   the unit's rows (one per turn and source)
    results/condition=<id>/batch-<hash>.parquet  rows of many done units, merged by :meth:`StudyStore.compact`
    results/condition=<id>/batch-<hash>.json     the unit ids of that batch (written before it)
    logs/condition=<id>/<unit>/events.jsonl      the unit's event log (+ audio tracks)
    status/<unit>.json                           {"state": "running" | "done" | "failed", "error", "attempts", ...}

Every file is written to a temporary name and renamed into place (``os.replace``: atomic on one filesystem), so
a reader or a killed run never sees half a file, and a unit that runs twice (a retry after a lost worker)
replaces its part instead of adding rows. A unit is *done* when its status says so and the file its status names
(its part, or the batch it was merged into) exists; anything else is run again on the next ``run`` (failed units
included).

Compaction: one small part per unit is what makes writes idempotent, but a reader pays per file (DuckDB opens
every footer), so after a run the done parts of each condition are merged into one batch: the batch's unit list
is written first, then the batch (temporary name, renamed), then the units' statuses, then the parts are removed.
A run killed in the middle leaves either an unlisted temporary file or a batch whose parts still exist; the next
:meth:`StudyStore.settle` (at the start of every run and compaction) finishes or undoes it, so readers see each
row once.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import socket
import uuid
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .spec import Study, Unit

__all__ = ["StudyStore"]

STATES = ("done", "failed", "running", "pending")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class StudyStore:
    """The output folder of one study (see the module docstring). Cheap to create; safe to pickle."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"StudyStore({str(self.root)!r})"

    # -- paths -----------------------------------------------------------------------------------------------
    @property
    def study_file(self) -> Path:
        return self.root / "study.json"

    @property
    def run_file(self) -> Path:
        return self.root / "run.json"

    @property
    def results_dir(self) -> Path:
        return self.root / "results"

    def part_path(self, unit: Unit) -> Path:
        return self.results_dir / f"condition={unit.condition_id}" / f"part-{unit.unit_id}.parquet"

    def log_dir(self, unit: Unit) -> Path:
        return self.root / "logs" / f"condition={unit.condition_id}" / unit.unit_id

    def status_path(self, unit_id: str) -> Path:
        return self.root / "status" / f"{unit_id}.json"

    # -- the study -------------------------------------------------------------------------------------------
    def init(self, study: Study, description: dict) -> None:
        """Create the folder for ``study`` or check it holds the same study (id, seed, result settings).

        Raises
        ------
        ConfigError
            The folder holds another study or the same one with another seed/speed/chunking: its units would
            not be comparable.
        """
        old = _read_json(self.study_file)
        if old is not None and old.get("fingerprint") != study.fingerprint():
            raise ConfigError(
                f"{self.root} holds study {old.get('fingerprint')}, not {study.fingerprint()}: their rows would not "
                "be comparable", field="out", fix="use another --out folder, or the original seed and run settings")
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json(self.study_file, {**description, "fingerprint": study.fingerprint(),
                                      "created_utc": (old or {}).get("created_utc") or _now(), "updated_utc": _now()})

    def description(self) -> dict:
        d = _read_json(self.study_file)
        if d is None:
            raise ConfigError(f"{self.root} is not a study folder (no readable study.json)", field="out",
                              fix="give the --out folder of `rtlab study run`")
        return d

    # -- units -----------------------------------------------------------------------------------------------
    def status(self, unit_id: str) -> dict | None:
        return _read_json(self.status_path(unit_id))

    def _rows_file(self, status: dict) -> Path | None:
        cond, name = status.get("condition"), status.get("file")
        if not cond or not name:
            return None
        return self.results_dir / f"condition={cond}" / name

    def is_done(self, unit: Unit) -> bool:
        s = self.status(unit.unit_id)
        f = self._rows_file(s or {})
        return bool(s and s.get("state") == "done" and f is not None and f.exists())

    def state_of(self, unit_id: str, existing: set[str] | None = None) -> tuple[str, dict]:
        """(done | failed | running | pending, status record); ``existing``: names of the result files, if known."""
        s = self.status(unit_id) or {}
        state = s.get("state", "pending")
        if state == "done":
            f = self._rows_file(s)
            there = f is not None and (f"{f.parent.name}/{f.name}" in existing if existing is not None else f.exists())
            state = "done" if there else "pending"
        return (state if state in STATES else "pending"), s

    def result_files(self) -> set[str]:
        """``condition=<id>/<file>`` of every result file (one listing, for counting many units)."""
        return {f"{p.parent.name}/{p.name}" for p in self.results_dir.glob("condition=*/*.parquet")}

    def mark_running(self, unit: Unit, attempt: int) -> None:
        prev = self.status(unit.unit_id) or {}
        _write_json(self.status_path(unit.unit_id), {
            "unit_id": unit.unit_id, "condition": unit.condition_id, "item": unit.item.key, "state": "running",
            "attempt": attempt, "runs": int(prev.get("runs", 0)) + (attempt == 1), "host": socket.gethostname(),
            "pid": os.getpid(), "started_utc": _now()})

    def mark_done(self, unit: Unit, *, rows: int, attempts: int, seconds: float) -> None:
        prev = self.status(unit.unit_id) or {}
        _write_json(self.status_path(unit.unit_id), {
            **prev, "unit_id": unit.unit_id, "condition": unit.condition_id, "item": unit.item.key, "state": "done",
            "file": self.part_path(unit).name, "rows": rows, "attempts": attempts, "seconds": round(seconds, 3),
            "error": None, "finished_utc": _now()})

    def mark_failed(self, unit: Unit, *, error: str, attempts: int, seconds: float) -> None:
        prev = self.status(unit.unit_id) or {}
        _write_json(self.status_path(unit.unit_id), {
            **prev, "unit_id": unit.unit_id, "condition": unit.condition_id, "item": unit.item.key, "state": "failed",
            "error": error.splitlines()[0][:500] if error else "failed", "attempts": attempts,
            "seconds": round(seconds, 3), "finished_utc": _now()})

    def new_attempt_dir(self, unit: Unit) -> Path:
        """A fresh folder for one attempt's event log (kept by :meth:`keep_log` when the attempt succeeds)."""
        final = self.log_dir(unit)
        d = final.with_name(f".{unit.unit_id}.{uuid.uuid4().hex[:12]}.attempt")
        d.mkdir(parents=True)
        return d

    def keep_log(self, unit: Unit, attempt_dir: Path) -> Path:
        final = self.log_dir(unit)
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        os.replace(attempt_dir, final)
        return final

    def drop_attempt(self, attempt_dir: Path) -> None:
        shutil.rmtree(attempt_dir, ignore_errors=True)

    def write_rows(self, unit: Unit, rows: Any) -> Path:
        """Write the unit's rows as its Parquet part, atomically (replacing an older part of the same unit)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from .schema import table_schema

        path = self.part_path(unit)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(rows, preserve_index=False)
        table = table.cast(table_schema(table.schema))
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
        return path

    # -- compaction ------------------------------------------------------------------------------------------
    def compact(self, *, min_parts: int = 2) -> int:
        """Merge the done parts of each condition into one batch file (see the module docstring); returns how
        many parts were merged. Call it when no run is writing into the folder (``run_study`` does, at its end)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.settle()
        merged = 0
        for cond_dir in sorted(self.results_dir.glob("condition=*")):
            parts = sorted(cond_dir.glob("part-*.parquet"))
            done = []
            for p in parts:
                uid = p.stem[len("part-"):]
                s = self.status(uid) or {}
                if s.get("state") == "done" and s.get("file") == p.name:
                    done.append((uid, p))
            if len(done) < min_parts:
                continue
            uids = [u for u, _ in done]
            name = f"batch-{hashlib.sha256(','.join(uids).encode()).hexdigest()[:16]}"
            _write_json(cond_dir / f"{name}.json", {"units": uids, "created_utc": _now()})
            table = pa.concat_tables([pq.read_table(p) for _, p in done], promote_options="default")
            tmp = cond_dir / f".{name}.parquet.{uuid.uuid4().hex}.tmp"
            pq.write_table(table, tmp, compression="zstd", row_group_size=100_000)
            os.replace(tmp, cond_dir / f"{name}.parquet")
            self._finish_batch(cond_dir, name, uids)
            merged += len(uids)
        return merged

    def _finish_batch(self, cond_dir: Path, name: str, uids: list[str]) -> None:
        for uid in uids:
            s = self.status(uid)
            if s is not None and s.get("file") != f"{name}.parquet":
                _write_json(self.status_path(uid), {**s, "file": f"{name}.parquet"})
            (cond_dir / f"part-{uid}.parquet").unlink(missing_ok=True)

    def settle(self) -> None:
        """Finish a compaction a killed run left half done, or undo one that never wrote its batch."""
        for listing in self.results_dir.glob("condition=*/batch-*.json"):
            batch = listing.with_suffix(".parquet")
            info = _read_json(listing) or {}
            if batch.exists():
                self._finish_batch(listing.parent, listing.stem, list(info.get("units") or []))
            else:
                listing.unlink(missing_ok=True)
        for tmp in self.results_dir.glob("condition=*/.*.tmp"):
            tmp.unlink(missing_ok=True)

    # -- the run lock ----------------------------------------------------------------------------------------
    def start_run(self, info: dict) -> None:
        _write_json(self.run_file, {**info, "pid": os.getpid(), "host": socket.gethostname(), "started_utc": _now()})

    def end_run(self) -> None:
        try:
            self.run_file.unlink()
        except FileNotFoundError:
            pass

    def active_run(self) -> dict | None:
        """The run going on in this folder, if its process is alive (same host), else None."""
        info = _read_json(self.run_file)
        if not info:
            return None
        if info.get("host") == socket.gethostname():
            try:
                os.kill(int(info.get("pid", -1)), 0)
            except (OSError, ValueError):
                return None
        return info
