"""Run a study into its folder, resuming where it stopped, and say how far it got.

Layer: runs (study). :func:`run_study` checks every condition before any work (a refused configuration fails the
command, not a thousand units), records the study in ``study.json``, skips the units that are done and runs the
rest (failed ones included) on the chosen executor. :func:`study_status` counts done / failed / running /
pending units from the folder alone, so it works while a run is going on (from another shell or machine).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .executors import UnitOutcome, run_dask, run_in_process
from .spec import Study, load_study
from .store import StudyStore

__all__ = ["StudyRun", "StudyStatus", "run_study", "study_status"]


@dataclass(frozen=True)
class StudyRun:
    """What one :func:`run_study` call did."""

    out: Path
    executor: str
    n_units: int
    skipped: int  # already done before this run
    outcomes: tuple[UnitOutcome, ...] = field(repr=False)
    seconds: float = 0.0

    @property
    def done(self) -> int:
        return sum(o.state == "done" for o in self.outcomes)

    @property
    def failed(self) -> int:
        return sum(o.state == "failed" for o in self.outcomes)

    def results(self):
        """The study's results (lazy; see :func:`rtlab.study.results`)."""
        from .results import results

        return results(self.out)

    def __repr__(self) -> str:
        return (f"StudyRun({str(self.out)!r}, {self.executor}: {self.done} done, {self.failed} failed, "
                f"{self.skipped} already done, {self.seconds:.1f} s)")


def describe(study: Study) -> dict:
    """The JSON description written to ``study.json``."""
    import rtlab

    return {
        "study": study.id, "seed": study.seed, "rtlab_version": rtlab.__version__,
        "run": dataclasses.asdict(study.run),
        "limits": {k: dataclasses.asdict(v) for k, v in study.limits.items()},
        "conditions": [{"id": c.id, "name": c.name, "label": c.label(), **c.params()} for c in study.conditions],
        "corpus": {"spec": study.spec.get("corpus"), "n_items": len(study.corpus)},
        "n_units": len(study.conditions) * len(study.corpus),
    }


def _write_units(store: StudyStore, study: Study) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    units = study.units()
    table = pa.table({"unit_id": [u.unit_id for u in units], "condition": [u.condition_id for u in units],
                      "item": [u.item.key for u in units]})
    tmp = store.root / f".units.{os.getpid()}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, store.root / "units.parquet")


def run_study(study: Study | str | Path | dict, out: str | Path, *, workers: int | None = None,
              scheduler: str | None = None, client: Any = None, concurrency: int | None = None,
              progress: bool = True, compact: bool = True) -> StudyRun:
    """Run (or resume) ``study`` into the folder ``out``.

    Parameters
    ----------
    study : Study, path of a YAML/JSON study file, or a mapping
    out : path
        The study folder (see :mod:`rtlab.study.store`); re-running into it skips done units.
    workers : int, optional
        Run on a new Dask ``LocalCluster`` of this many single-threaded worker processes.
    scheduler : str, optional
        Run on the existing Dask cluster at this address (``tcp://HOST:8786``); its workers must see ``out``
        and the corpus at the same paths.
    client : distributed.Client, optional
        Run on this client's cluster (kept open).
    concurrency : int, optional
        In-process executor (the default when no cluster is named): units at once (default: the study's
        ``run.concurrency``).
    progress : bool
        Show a progress bar (tqdm) of finished units.
    compact : bool
        At the end, merge the done units' parts of each condition into one file (fewer files to read).

    Returns
    -------
    StudyRun
        Counts and per-unit outcomes; ``.results()`` opens the dataset.
    """
    from .unit import check_condition

    if not isinstance(study, Study):
        study = load_study(study)
    if sum(x is not None for x in (workers, scheduler, client)) > 1:
        raise ConfigError("give at most one of workers=, scheduler= and client=", field="executor",
                          fix="--workers N for a local cluster, or --scheduler tcp://HOST:8786 for an existing one")
    for cond in study.conditions:
        check_condition(cond)
    store = StudyStore(out)
    store.init(study, describe(study))
    _write_units(store, study)
    units = study.units()
    store.settle()
    todo = [u for u in units if not store.is_done(u)]
    if client is not None or scheduler or workers:
        executor = "dask " + (scheduler or ("client" if client is not None else f"LocalCluster({workers} workers)"))
    else:
        executor = f"in-process (concurrency {concurrency or study.run.concurrency})"
    bar = _bar(len(units), len(units) - len(todo), progress)

    def on_outcome(o: UnitOutcome) -> None:
        if bar is not None:
            bar.update(1)
            if o.state == "failed":
                bar.set_postfix_str(f"last failure: {o.unit_id}", refresh=False)

    def on_client(c: Any) -> None:
        if bar is not None and getattr(c, "dashboard_link", None):
            bar.write(f"Dask dashboard: {c.dashboard_link}")

    t0 = time.monotonic()
    store.start_run({"executor": executor, "n_units": len(units), "todo": len(todo)})
    try:
        if todo and executor.startswith("dask"):
            outcomes = run_dask(todo, store, limits=dict(study.limits), client=client, scheduler=scheduler,
                                workers=workers, on_outcome=on_outcome, on_client=on_client)
        elif todo:
            outcomes = run_in_process(todo, store, limits=dict(study.limits),
                                      concurrency=concurrency or study.run.concurrency, on_outcome=on_outcome)
        else:
            outcomes = []
        if compact:
            store.compact()
    finally:
        store.end_run()
        if bar is not None:
            bar.close()
    return StudyRun(out=Path(out), executor=executor, n_units=len(units), skipped=len(units) - len(todo),
                    outcomes=tuple(outcomes), seconds=time.monotonic() - t0)


def _bar(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="unit", desc="study", dynamic_ncols=True)


@dataclass(frozen=True)
class StudyStatus:
    """Unit counts of a study folder, and the failed units' errors."""

    out: Path
    study: str
    counts: dict[str, int]
    failures: tuple[tuple[str, str, str, str], ...]  # (unit_id, condition, item, error)
    running: dict | None  # the active run (run.json), if any

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __str__(self) -> str:
        c = self.counts
        head = (f"study {self.study}: {c.get('done', 0)} done, {c.get('failed', 0)} failed, "
                f"{c.get('running', 0)} running, {c.get('pending', 0)} pending (of {self.total} units)")
        if self.running:
            head += f" — a run is going on ({self.running.get('executor')}, pid {self.running.get('pid')})"
        elif c.get("running"):
            head += " — no run is going on: the running ones were interrupted and will run again"
        lines = [head] + [f"  failed {u} [{cond} / {item}]: {err}" for u, cond, item, err in self.failures[:20]]
        if len(self.failures) > 20:
            lines.append(f"  ... and {len(self.failures) - 20} more failures")
        return "\n".join(lines)


def study_status(out: str | Path) -> StudyStatus:
    """Count the units of the study in ``out`` by state (done / failed / running / pending)."""
    import pyarrow.parquet as pq

    store = StudyStore(out)
    desc = store.description()
    units = pq.read_table(store.root / "units.parquet").to_pylist()
    existing = store.result_files()
    counts: Counter = Counter()
    failures = []
    for u in units:
        state, s = store.state_of(u["unit_id"], existing)
        counts[state] += 1
        if state == "failed":
            failures.append((u["unit_id"], u["condition"], u["item"], str(s.get("error") or "")))
    return StudyStatus(out=Path(out), study=desc.get("study", "?"),
                       counts={k: counts.get(k, 0) for k in ("done", "failed", "running", "pending")},
                       failures=tuple(failures), running=store.active_run())
