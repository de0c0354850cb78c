"""``rtlab study run | status | report``: run a study file into a folder, watch it, draw it.

Layer: views / cli. ``run`` uses the in-process executor unless ``--workers N`` (a new Dask ``LocalCluster``)
or ``--scheduler tcp://HOST:8786`` (an existing cluster) is given; re-running into the same ``--out`` resumes.
``status`` prints done / failed / running / pending counts and, while a run is going on in that folder, follows
it with a progress bar (``--once`` prints and exits).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="study_command", required=True)
    r = sub.add_parser("run", help="run (or resume) a study", description="run (or resume) a study file")
    r.add_argument("study", type=Path, help="study file (YAML or JSON)")
    r.add_argument("--out", type=Path, required=True, help="study folder (re-use it to resume)")
    where = r.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N", help="run on a new local Dask cluster of N processes")
    where.add_argument("--scheduler", metavar="ADDR", help="run on an existing Dask cluster (tcp://HOST:8786)")
    where.add_argument("--concurrency", type=int, metavar="N", help="in-process executor: units at once")
    r.add_argument("--speed", type=float, help="override run.speed (feed audio at this multiple of real time)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    s = sub.add_parser("status", help="done / failed / pending units of a study folder",
                       description="done / failed / running / pending units; follows a run that is going on")
    s.add_argument("out", type=Path, help="study folder")
    s.add_argument("--once", action="store_true", help="print the counts and exit, even while a run goes on")
    s.add_argument("--interval", type=float, default=2.0, help="seconds between updates while following")
    rep = sub.add_parser("report", help="HTML report of a study folder", description="HTML report with figures")
    rep.add_argument("out", type=Path, help="study folder")
    rep.add_argument("--html", type=Path, help="where to write it (default OUT/report.html)")


def run(args: argparse.Namespace) -> int:
    return {"run": _run, "status": _status, "report": _report}[args.study_command](args)


def _run(args: argparse.Namespace) -> int:
    from .report import write_report
    from .results import results
    from .runner import run_study
    from .spec import load_study

    study = load_study(args.study)
    if args.speed is not None:
        study = study.with_run(speed=args.speed)
    if study.run.speed != 1:
        print(f"rtlab study: note: audio fed at {study.run.speed:g}x real time; latencies are only meaningful "
              "at 1x", file=sys.stderr)
    progress = not args.quiet and sys.stderr.isatty()
    outcome = run_study(study, args.out, workers=args.workers, scheduler=args.scheduler,
                        concurrency=args.concurrency, progress=progress)
    print(f"{outcome.executor}: {outcome.done} done, {outcome.failed} failed, {outcome.skipped} already done "
          f"({outcome.seconds:.1f} s)")
    if outcome.done + outcome.skipped:
        summary = results(args.out).summary()
        cols = [c for c in ("condition_label", "source", "n_units", "wer", "wer_lo", "wer_hi", "final_after_eos_p50_ms",
                            "cost_usd") if c in summary.columns]
        print(summary[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print(f"\nreport: {write_report(args.out)}")
    if outcome.failed:
        print(f"rtlab study: {outcome.failed} unit(s) failed; `rtlab study status {args.out}` lists them, and a "
              "re-run retries them", file=sys.stderr)
        return 1
    return 0


def _status(args: argparse.Namespace) -> int:
    from .runner import study_status

    st = study_status(args.out)
    if args.once or st.running is None or not sys.stderr.isatty():
        print(st)
        return 1 if st.counts.get("failed") else 0
    from tqdm.auto import tqdm

    finished = lambda s: s.counts["done"] + s.counts["failed"]  # noqa: E731
    with tqdm(total=st.total, initial=finished(st), unit="unit", desc=f"study {st.study}") as bar:
        while st.running is not None:
            time.sleep(args.interval)
            st = study_status(args.out)
            bar.update(finished(st) - bar.n)
            bar.set_postfix(failed=st.counts["failed"], running=st.counts["running"], refresh=False)
    print(st)
    return 1 if st.counts.get("failed") else 0


def _report(args: argparse.Namespace) -> int:
    from .report import write_report

    print(f"report: {write_report(args.out, args.html)}")
    return 0
