"""Where units run: in this process (asyncio, bounded concurrency) or on a Dask cluster.

Layer: runs (study). Both executors run the same per-unit procedure, :func:`aexecute_unit`:

1. mark the unit running, take its rate-limit budget (sessions, audio minutes) for its target;
2. run it into a fresh attempt folder (:func:`rtlab.study.unit.arun_unit`);
3. on a rate-limit refusal, wait (exponential back-off with jitter) and run it again, up to ``max_attempts``;
4. write its rows (atomic rename into ``part-<unit>.parquet``), keep its event log, mark it done — or, on any
   other error, keep the attempt's log and mark it failed with the error's first line.

A unit never raises out of this procedure, so one bad file does not stop a study. Dask provides placement,
the dashboard and the retry of a task whose worker died (the scheduler's ``allowed-failures``); because every
write is an atomic replace keyed by the unit id, a retried unit replaces its rows instead of adding to them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import RtlabError
from .limits import ClusterLimiter, ProcessLimiter, backoff_delay, unit_cost
from .spec import Unit
from .store import StudyStore

__all__ = ["aexecute_unit", "run_dask", "run_in_process"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnitOutcome:
    """What became of one unit in this run."""

    unit_id: str
    state: str  # "done" | "failed"
    rows: int = 0
    attempts: int = 0
    seconds: float = 0.0
    error: str | None = None


def _error_line(exc: BaseException) -> str:
    from ..secrets import redact

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    line = text if isinstance(exc, RtlabError) else f"{type(exc).__name__}: {text}"
    return redact(line)[:500]


async def aexecute_unit(unit: Unit, store: StudyStore, *, acquire: Callable, release: Callable,
                        sleep: Callable = asyncio.sleep) -> UnitOutcome:
    """Run one unit to done or failed (see the module docstring); ``acquire``/``release``/``sleep`` are awaitables
    given by the executor (the rate limiter of this process or of the cluster)."""
    from .unit import RateLimited, arun_unit

    t0 = time.monotonic()
    target = unit.condition.target
    try:
        sessions, minutes = unit_cost(unit)
    except Exception:  # the unit reports an unreadable file itself
        sessions, minutes = unit.condition.n_sessions(), 0.0
    attempt = 0
    while True:
        attempt += 1
        store.mark_running(unit, attempt)
        attempt_dir = store.new_attempt_dir(unit)
        held = False
        try:
            await acquire(target, sessions, minutes)
            held = True
            rows = await arun_unit(unit, log_dir=attempt_dir)
        except RateLimited as exc:
            store.drop_attempt(attempt_dir)
            hint = exc.retry_after_s
            if attempt >= unit.run.max_attempts or (hint is not None and hint > unit.run.backoff_cap_s):
                why = f"gave up after {attempt} attempts" if attempt >= unit.run.max_attempts else (
                    f"the endpoint asks to wait {hint:g} s, more than run.backoff_cap_s: a quota, not a burst")
                error = f"{exc} ({why})"
                store.mark_failed(unit, error=error, attempts=attempt, seconds=time.monotonic() - t0)
                return UnitOutcome(unit.unit_id, "failed", 0, attempt, time.monotonic() - t0, error)
            delay = backoff_delay(attempt, base_s=unit.run.backoff_base_s, cap_s=unit.run.backoff_cap_s,
                                  seed=unit.unit_id, hint_s=exc.retry_after_s)
            logger.info("%s: %s; retrying in %.2f s", unit.unit_id, exc, delay)
            await sleep(delay)
            continue
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:  # a failed unit is a result: keep its log, record the reason, go on
            logger.debug("unit %s failed:\n%s", unit.unit_id, traceback.format_exc())
            store.keep_log(unit, attempt_dir)
            error = _error_line(exc)
            store.mark_failed(unit, error=error, attempts=attempt, seconds=time.monotonic() - t0)
            return UnitOutcome(unit.unit_id, "failed", 0, attempt, time.monotonic() - t0, error)
        finally:
            if held:
                release(target, sessions)
        store.write_rows(unit, rows)
        store.keep_log(unit, attempt_dir)
        seconds = time.monotonic() - t0
        store.mark_done(unit, rows=len(rows), attempts=attempt, seconds=seconds)
        return UnitOutcome(unit.unit_id, "done", len(rows), attempt, seconds)


# --------------------------------------------------------------------------------------------------
# In this process
# --------------------------------------------------------------------------------------------------
async def _arun_in_process(units: Sequence[Unit], store: StudyStore, *, limits: dict, concurrency: int,
                           on_outcome: Callable[[UnitOutcome], Any]) -> list[UnitOutcome]:
    limiter = ProcessLimiter(limits)
    gate = asyncio.Semaphore(concurrency)

    async def acquire(target: str, sessions: int, minutes: float) -> None:
        await limiter.acquire(target, sessions, minutes)

    async def one(unit: Unit) -> UnitOutcome:
        async with gate:
            outcome = await aexecute_unit(unit, store, acquire=acquire, release=limiter.release)
        on_outcome(outcome)
        return outcome

    return list(await asyncio.gather(*(one(u) for u in units)))


def run_in_process(units: Sequence[Unit], store: StudyStore, *, limits: dict, concurrency: int = 4,
                   on_outcome: Callable[[UnitOutcome], Any] = lambda o: None) -> list[UnitOutcome]:
    """Run ``units`` as tasks of one event loop, at most ``concurrency`` at once (also inside Jupyter)."""
    coro = _arun_in_process(units, store, limits=limits, concurrency=concurrency, on_outcome=on_outcome)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:  # a notebook's loop is running: run ours on a thread
        return pool.submit(asyncio.run, coro).result()


# --------------------------------------------------------------------------------------------------
# On a Dask cluster
# --------------------------------------------------------------------------------------------------
def dask_task(unit: Unit, root: str, limits: dict) -> UnitOutcome:
    """One unit as a Dask task: the same procedure, with the cluster-wide limiter (runs on a worker)."""
    limiter = ClusterLimiter(unit.study_id, limits)

    async def acquire(target: str, sessions: int, minutes: float) -> None:
        await asyncio.to_thread(limiter.acquire, target, sessions, minutes)

    return asyncio.run(aexecute_unit(unit, StudyStore(root), acquire=acquire, release=limiter.release))


def open_client(*, scheduler: str | None = None, workers: int | None = None) -> tuple[Any, Any]:
    """(client, cluster): a client of the cluster at ``scheduler``, or of a new ``LocalCluster`` of ``workers``
    single-threaded processes (the local engines hold the GIL while decoding: one process per core)."""
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=logging.ERROR)
    return Client(cluster), cluster


def run_dask(units: Sequence[Unit], store: StudyStore, *, limits: dict, client: Any = None,
             scheduler: str | None = None, workers: int | None = None,
             on_outcome: Callable[[UnitOutcome], Any] = lambda o: None,
             on_client: Callable[[Any], Any] = lambda c: None) -> list[UnitOutcome]:
    """Run ``units`` on Dask: ``client`` if given, else one for ``scheduler`` (``tcp://HOST:8786``), else a new
    ``LocalCluster`` of ``workers`` processes (closed at the end). Workers must see ``store.root`` and the audio
    files at the same paths (a shared filesystem)."""
    from distributed import as_completed

    own = client is None
    cluster = None
    if own:
        client, cluster = open_client(scheduler=scheduler, workers=workers)
    try:
        on_client(client)
        root = str(store.root.resolve())
        stamp = time.time_ns()
        futures = client.map(dask_task, list(units), root=root, limits=limits, pure=False,
                             key=[f"rtlab-unit-{u.unit_id}-{stamp}" for u in units])
        unit_of = {f.key: u for f, u in zip(futures, units, strict=True)}
        outcomes = []
        for fut in as_completed(futures):
            try:
                outcome = fut.result()
            except Exception as exc:  # e.g. KilledWorker: the task's workers kept dying; the others go on
                unit = unit_of[fut.key]
                error = f"the Dask task was lost: {_error_line(exc)}"
                store.mark_failed(unit, error=error, attempts=0, seconds=0.0)
                outcome = UnitOutcome(unit.unit_id, "failed", error=error)
            outcomes.append(outcome)
            on_outcome(outcome)
        return outcomes
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
