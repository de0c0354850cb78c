"""Studies at scale (issue 13): executor throughput and result analysis (``python -m bench study``).

1. **Throughput**: one 40-unit study on the local engine (5 bundled clips × 8 conditions: clean, noise at 20 and
   10 dB SNR, telephone, speed 0.9 and 1.1, and two other in-session models; the local engine as sidecar), fed
   at ``--speed`` 4, run end to end (start-up included) in the same process run: the in-process executor at
   concurrency 1 (its default 4 is no faster for the CPU-bound local engine: 277 s vs 269 s when measured; set
   ``RTLAB_BENCH_STUDY_CONCURRENCY4=1`` to run it too), then a Dask ``LocalCluster(n_workers=2,
   threads_per_worker=1)``. Target: Dask ≥ 1.7× the throughput of the single-process run. Each run reports the
   CPU seconds it used (this process plus the Dask workers) and the load average, since other work on the
   machine takes cores from the cluster; rows are checked for one row per (unit, turn, source), and transcripts
   compared across executors.
2. **Analysis**: ``rtlab.study.results(DIR).summary()`` (WER with bootstrap CIs, latency percentiles, cost per
   condition × source) over 10,000,000 synthetic rows in Parquet (the real column set; 10 conditions × 4
   sources, 500,000 audio files of 5 turns each), each repeat in a fresh process; wall time of ``results()`` +
   ``summary()`` and that process's peak RSS. Targets: ≤ 5 s, ≤ 2 GB, on the layout ``rtlab study run`` leaves
   (compacted batches: 100 files of 100,000 rows); the same rows in 1,000 files are measured beside it.

The resume property (a killed worker, a killed study: exactly one row per (unit, turn, source)) is asserted in
``tests/test_study_run.py`` (``TestResume``). Writes ``bench/results/study.json``.
Environment: ``RTLAB_BENCH_STUDY_SPEED`` (default 4), ``RTLAB_BENCH_STUDY_ROWS`` (default 10,000,000),
``RTLAB_BENCH_STUDY_REPEATS`` (default 3), ``RTLAB_BENCH_STUDY_SKIP`` (``throughput`` or ``analysis``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "study.json"
SPEED = float(os.environ.get("RTLAB_BENCH_STUDY_SPEED", 4))
N_ROWS = int(os.environ.get("RTLAB_BENCH_STUDY_ROWS", 10_000_000))
REPEATS = int(os.environ.get("RTLAB_BENCH_STUDY_REPEATS", 3))
SKIP = os.environ.get("RTLAB_BENCH_STUDY_SKIP", "")
TARGET_RATIO, TARGET_S, TARGET_GB = 1.7, 5.0, 2.0

STUDY = {
    "study": "bench-throughput",
    "seed": 1,
    "corpus": {"bundled": ["short", "monologue", "dialogue", "noisy", "telephone"]},
    "conditions": {
        "base": {"target": "local", "sidecars": ["local"]},
        "vary": {"transforms": [[], [{"snr_db": 20}], [{"snr_db": 10}], ["telephone"], [{"speed": 0.9}],
                                [{"speed": 1.1}]]},
        "include": [{"in_session_model": "gpt-4o-transcribe"}, {"in_session_model": "gpt-live-transcribe"}],
    },
    "run": {"speed": SPEED},
}
CONTENT = ["unit_id", "source", "turn", "transcript", "file_word_errors"]


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def _worker_cpu_s(client) -> float:
    import psutil

    return sum(client.run(lambda: sum(psutil.Process().cpu_times()[:2])).values())


def _throughput(tmp: Path) -> dict:
    from distributed import Client, LocalCluster

    from rtlab.study import load_study, results, run_study

    study = load_study(STUDY)
    out: dict = {"units": len(study.units()), "speed": SPEED, "runs": {}}
    rows = {}
    plans = [("in-process, concurrency 1", {"concurrency": 1})]
    if os.environ.get("RTLAB_BENCH_STUDY_CONCURRENCY4"):
        plans.append(("in-process, concurrency 4", {"concurrency": 4}))
    plans.append(("dask LocalCluster(2 workers x 1 thread)", {"workers": 2}))
    for name, kw in plans:
        d = tmp / str(len(out["runs"]))
        load = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), _cpu_s()
        if "workers" in kw:  # our own cluster, to read its workers' CPU time before it closes
            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
            client = Client(cluster)
            try:
                run = run_study(study, d, client=client, progress=False)
                seconds = time.perf_counter() - t0
                cpu = _cpu_s() - c0 + _worker_cpu_s(client)
            finally:
                client.close()
                cluster.close()
        else:
            run = run_study(study, d, progress=False, **kw)
            seconds = time.perf_counter() - t0
            cpu = _cpu_s() - c0
        df = results(d).turns(CONTENT + ["audio_s"])
        dup = int(df.duplicated(["unit_id", "turn", "source"]).sum())
        rows[name] = df[CONTENT].sort_values(["unit_id", "source", "turn"]).reset_index(drop=True)
        out["audio_s_per_pass"] = round(float(df.drop_duplicates("unit_id")["audio_s"].sum()), 1)
        out["runs"][name] = {"seconds": round(seconds, 2), "units_per_min": round(60 * run.done / seconds, 2),
                             "done": run.done, "failed": run.failed, "duplicate_rows": dup,
                             "cpu_s": round(cpu, 1), "cores_used": round(cpu / seconds, 2),
                             "load_average_1min_at_start": round(load, 2)}
    names = [p[0] for p in plans]
    singles = [n for n in names if n.startswith("in-process")]
    best = min(singles, key=lambda n: out["runs"][n]["seconds"])
    out["ratio"] = round(out["runs"][best]["seconds"] / out["runs"][names[-1]]["seconds"], 3)
    out["ratio_vs"] = best
    ref = rows[names[0]]
    out["transcript_rows_differing"] = {k: int((ref.astype(str) != rows[k].astype(str)).any(axis=1).sum()) if len(rows[k]) == len(ref)
                                        else f"{len(rows[k])} rows vs {len(ref)}" for k in names[1:]}
    return out


# --------------------------------------------------------------------------------------------------
# 10 M synthetic rows
# --------------------------------------------------------------------------------------------------
def generate(root: Path, n_rows: int, *, seed: int = 3, rows_per_part: int = 10_000, turns: int = 5) -> dict:
    """Write ``n_rows`` study rows (the real column set) as Parquet parts under ``root/results``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rtlab.study.schema import COLUMN_TYPES

    rng = np.random.default_rng(seed)
    conditions = [f"c-{i:08x}" for i in range(10)]
    sources = ["in-session", "sidecar:transcription", "sidecar:local", "sidecar:oob"]
    words = ("the a to of and in that it is was for on are with as his they at be this from have or by one had "
             "not but what all were when we there can an your which their said if do will each about how up out").split()
    pool = np.array([" ".join(rng.choice(words, size=int(rng.integers(4, 14)))) for _ in range(2000)], dtype=object)
    per_unit = len(sources) * turns
    units_per_part = rows_per_part // per_unit
    n_parts = n_rows // (units_per_part * per_unit)
    written = 0
    for part in range(n_parts):
        cond = conditions[part % len(conditions)]
        n_units = units_per_part
        uid = np.array([f"u-{part:05d}{k:06d}" for k in range(n_units)], dtype=object)
        n = n_units * per_unit
        unit_idx = np.repeat(np.arange(n_units), per_unit)
        src_idx = np.tile(np.repeat(np.arange(len(sources)), turns), n_units)
        turn = np.tile(np.arange(turns, dtype=np.int32), n_units * len(sources))
        ref_words = rng.integers(20, 60, size=n_units * len(sources)).astype(float)
        p_err = np.array([0.08, 0.12, 0.3, 0.1])[np.arange(n_units * len(sources)) % len(sources)]
        errs = rng.binomial(ref_words.astype(int), p_err).astype(float)
        pair = unit_idx * len(sources) + src_idx
        cols = {
            "study_id": np.full(n, "bench", dtype=object), "unit_id": uid[unit_idx],
            "condition": np.full(n, cond, dtype=object), "condition_label": np.full(n, f"label {cond}", dtype=object),
            "item": uid[unit_idx], "audio_path": uid[unit_idx], "item_speaker": np.full(n, "A", dtype=object),
            "audio_s": np.repeat(rng.uniform(5, 30, n_units), per_unit),
            "source": np.array(sources, dtype=object)[src_idx], "turn": turn,
            "item_id": np.array([f"item_{i}" for i in range(n)], dtype=object),
            "audio_start_ms": turn * 3000.0, "audio_end_ms": turn * 3000.0 + 2500.0,
            "transcript": pool[rng.integers(0, len(pool), n)], "reference": pool[rng.integers(0, len(pool), n)],
            "first_text_after_eos_ms": rng.normal(-300, 200, n), "final_after_stop_ms": rng.gamma(4.0, 120.0, n),
            "final_after_eos_ms": rng.gamma(6.0, 150.0, n), "first_text_after_start_ms": rng.gamma(3.0, 200.0, n),
            "n_deltas": rng.integers(1, 20, n),
            "cost_usd": rng.uniform(0, 0.002, n), "status": np.where(rng.random(n) < 0.01, "failed", "completed"),
            "wer": rng.uniform(0, 0.5, n), "file_word_errors": errs[pair], "file_ref_words": ref_words[pair],
            "file_char_errors": errs[pair] * 4, "file_ref_chars": ref_words[pair] * 5,
            "model": np.array(["gpt-realtime-whisper", "gpt-4o-transcribe", "gpt-live-transcribe", "gpt-realtime"],
                              dtype=object)[src_idx],
            "cost_basis": np.full(n, "emulated", dtype=object), "rtlab_version": np.full(n, "0.1.0", dtype=object),
            "timing_model": np.full(n, "local", dtype=object), "seed": np.full(n, 1, dtype=np.int64),
        }
        table = pa.table({k: pa.array(v, type=COLUMN_TYPES.get(k)) for k, v in cols.items()})
        d = root / "results" / f"condition={cond}"
        d.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, d / f"part-p{part:05d}.parquet", compression="zstd")
        written += n
    return {"rows": written, "parts": n_parts, "files": written // per_unit,
            "mb": round(sum(p.stat().st_size for p in root.rglob("*.parquet")) / 1e6, 1)}


_CHILD = """
import json, sys, time
t0 = time.perf_counter()
from rtlab.study import results
t1, c1 = time.perf_counter(), time.process_time()
r = results(sys.argv[1])
s = r.summary()
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"import_s": t1 - t0, "summary_s": t2 - t1, "summary_cpu_s": c2 - c1, "groups": len(s), "rows": len(r),
                  "wer": s["wer"].round(4).tolist(), "wer_ci_width": (s["wer_hi"] - s["wer_lo"]).round(4).tolist()}))
"""


def _analysis(tmp: Path, rows_per_part: int) -> dict:
    t0 = time.perf_counter()
    where = tmp / f"synthetic-{rows_per_part}"
    info = generate(where, N_ROWS, rows_per_part=rows_per_part)
    info["generate_s"] = round(time.perf_counter() - t0, 1)
    runs = []
    for _ in range(REPEATS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(where)], capture_output=True, text=True,
                              check=True, env=os.environ)
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        # ru_maxrss of children is the max over all children so far: report it only when this child raised it
        res["peak_rss_gb"] = round(peak_kb / 1024 / 1024, 3) if peak_kb > before or not runs else runs[-1][
            "peak_rss_gb"]
        runs.append(res)
    info["summary_s_runs"] = [round(r["summary_s"], 3) for r in runs]
    info["summary_s_median"] = round(statistics.median(r["summary_s"] for r in runs), 3)
    # CPU seconds over wall seconds: how many of the 2 cores the summary got (other work on the machine takes some)
    info["summary_cores_used"] = [round(r["summary_cpu_s"] / r["summary_s"], 2) for r in runs]
    info["import_s_median"] = round(statistics.median(r["import_s"] for r in runs), 3)
    info["peak_rss_gb"] = max(r["peak_rss_gb"] for r in runs)
    info["groups"] = runs[-1]["groups"]
    info["rows_seen"] = runs[-1]["rows"]
    info["wer_ci_width_median"] = float(np.median(runs[-1]["wer_ci_width"]))
    shutil.rmtree(where, ignore_errors=True)
    return info


def run() -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="rtlab-bench-study-"))
    result: dict = {"benchmark": "study: executor throughput (40 units) and 10 M-row summary",
                    "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    "cpu_count": os.cpu_count(), "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    rows = []
    try:
        if "throughput" not in SKIP:
            tp = _throughput(tmp)
            result["throughput"] = tp
            for name, r in tp["runs"].items():
                rows.append({"metric": f"{name}: 40 units ({r['units_per_min']} units/min, {r['cores_used']} "
                                       f"cores busy, load {r['load_average_1min_at_start']})",
                             "value": r["seconds"], "unit": "s", "target": "",
                             "ok": r["failed"] == 0 and r["duplicate_rows"] == 0})
            rows.append({"metric": f"Dask throughput / {tp['ratio_vs']}", "value": tp["ratio"], "unit": "x",
                         "target": f">= {TARGET_RATIO}", "ok": tp["ratio"] >= TARGET_RATIO})
            for k, v in tp["transcript_rows_differing"].items():
                rows.append({"metric": f"rows whose transcript differs from concurrency 1: {k}", "value": v,
                             "unit": "rows", "target": "0 (tests assert it on a small study)", "ok": None})
        if "analysis" not in SKIP:
            # As `rtlab study run` leaves them (compacted: row groups of 100,000 rows), then as 10x more files.
            for rows_per_part, target in ((100_000, True), (10_000, False)):
                an = _analysis(tmp, rows_per_part)
                result[f"analysis_{an['parts']}_files"] = an
                rows.append({"metric": f"summary of {an['rows_seen']:,} rows in {an['parts']} files "
                                       f"(median of {REPEATS})", "value": an["summary_s_median"], "unit": "s",
                             "target": f"<= {TARGET_S}" if target else "",
                             "ok": (an["summary_s_median"] <= TARGET_S and an["rows_seen"] == N_ROWS) if target
                             else None})
                rows.append({"metric": f"  peak memory of that process ({an['parts']} files)",
                             "value": an["peak_rss_gb"], "unit": "GB", "target": f"<= {TARGET_GB}" if target else "",
                             "ok": an["peak_rss_gb"] <= TARGET_GB if target else None})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    result["rows"] = rows
    if SKIP and RESULTS.exists():  # one part re-measured: keep the other part's last numbers beside it
        old = json.loads(RESULTS.read_text())
        kept = {k: v for k, v in old.items() if k.startswith(("throughput", "analysis")) and k not in result}
        skipped_rows = [r for r in old.get("rows", []) if ("files" in r["metric"]) == ("analysis" in SKIP)]
        result = {**result, **kept, "rows": skipped_rows + rows if "throughput" in SKIP else rows + skipped_rows}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    for row in run()["rows"]:
        print(row)
