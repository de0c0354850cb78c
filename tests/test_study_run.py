"""Studies that really run: in this process and on a 2-worker Dask LocalCluster with identical results, resuming
after a killed study and a killed worker, and backing off when the endpoint answers 429.

Units are short (about 3 s of speech, fed at 8× real time) with the local engine as the only sidecar, so each
takes a second or two; the cluster is started once for the module.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf

from rtlab import audio, data
from rtlab.study import results, run_study, study_status
from rtlab.study.unit import RateLimited, _raise_if_rate_limited

ROOT = Path(__file__).resolve().parents[1]
SPEED = 8
CONTENT = ["unit_id", "condition", "item", "source", "turn", "item_id", "status", "transcript", "audio_start_ms",
           "audio_end_ms", "n_deltas", "file_word_errors", "file_ref_words", "wer", "cost_usd", "unit_seed"]


# --------------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    """Two short files with their reference texts: the bundled 'short' clip and the monologue's first sentence."""
    d = tmp_path_factory.mktemp("corpus")
    short = audio.load(data.clip_path("short"), sample_rate=None)
    audio.save(short, d / "a.wav")
    (d / "a.txt").write_text(data.load_manifest()["clips"]["short"]["reference"])
    utt = data.references_for(data.clip_path("monologue"))[0]
    mono = audio.load(data.clip_path("monologue"), sample_rate=None)
    audio.save(mono.slice_ms(0, (utt["end_s"] + 0.3) * 1000), d / "b.wav")
    (d / "b.txt").write_text(utt["text"])
    return d


def _study(corpus_dir, name, transforms=([], [{"snr_db": 20}]), **extra) -> dict:
    spec = {"study": name, "seed": 11, "corpus": {"folder": str(corpus_dir)},
            "conditions": {"base": {"sidecars": ["local"]}, "vary": {"transforms": [list(t) for t in transforms]}},
            "run": {"speed": SPEED, "concurrency": 2}}
    for k, v in extra.items():
        spec[k] = {**spec.get(k, {}), **v} if isinstance(v, dict) else v
    return spec


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def in_process(corpus_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("inproc")
    return run_study(_study(corpus_dir, "same"), out, progress=False)


@pytest.fixture(scope="module")
def on_dask(corpus_dir, tmp_path_factory, client):
    out = tmp_path_factory.mktemp("dask")
    return run_study(_study(corpus_dir, "same"), out, client=client, progress=False)


def _rows(out) -> pd.DataFrame:
    return results(out).turns().sort_values(["unit_id", "source", "turn"]).reset_index(drop=True)


def _assert_one_row_per_key(out) -> pd.DataFrame:
    rows = _rows(out)
    assert not rows.duplicated(["unit_id", "turn", "source"]).any()
    files = [p for p in Path(out, "results").rglob("*") if p.is_file()]
    assert [p for p in files if not p.name.startswith(("part-", "batch-"))] == []  # no temporary file left
    return rows


# --------------------------------------------------------------------------------------------------
# Executors
# --------------------------------------------------------------------------------------------------
class TestExecutors:
    def test_every_unit_is_done_with_rows_for_each_source(self, in_process):
        assert (in_process.done, in_process.failed) == (4, 0)
        rows = _assert_one_row_per_key(in_process.out)
        assert set(rows["source"]) == {"in-session", "sidecar:local"}
        assert rows.groupby("unit_id")["source"].nunique().eq(2).all()
        clean = rows[rows["transforms"] == "[]"]
        assert clean["transcript"].str.len().gt(0).all()
        # provenance on every row
        timing = rows.groupby("source")["timing_model"].unique()
        assert all(t.startswith("emulated") for t in timing["in-session"]) and \
            list(timing["sidecar:local"]) == ["measured (the engine runs in this process)"]
        engine = rows.groupby("source")["engine"].unique()
        assert list(engine["in-session"]) == ["pocketsphinx (the emulator's local recognizer)"]
        basis = rows.groupby("source")["cost_basis"].unique()  # each source's own basis, from the turns table
        assert list(basis["in-session"]) == ["emulated"] and list(basis["sidecar:local"]) == ["local"]
        assert rows["profile"].eq("openai").all() and rows["target_desc"].eq("local openai-ga embedded emulator").all()
        # the unit's event log is kept beside its rows
        for uid, cond in rows[["unit_id", "condition"]].drop_duplicates().itertuples(index=False):
            assert (Path(in_process.out) / "logs" / f"condition={cond}" / uid / "events.jsonl").is_file()

    def test_dask_local_cluster_gives_identical_results(self, in_process, on_dask):
        assert (on_dask.done, on_dask.failed) == (4, 0) and on_dask.executor.startswith("dask")
        a, b = _rows(in_process.out)[CONTENT], _rows(on_dask.out)[CONTENT]
        pd.testing.assert_frame_equal(a, b)
        sa = results(in_process.out).summary()[["condition", "source", "wer", "wer_lo", "wer_hi", "n_turns"]]
        sb = results(on_dask.out).summary()[["condition", "source", "wer", "wer_lo", "wer_hi", "n_turns"]]
        pd.testing.assert_frame_equal(sa, sb)

    def test_rerun_skips_done_units(self, corpus_dir, in_process):
        again = run_study(_study(corpus_dir, "same"), in_process.out, progress=False)
        assert (again.skipped, again.done, again.failed) == (4, 0, 0)

    def test_the_run_compacts_its_parts_into_one_file_per_condition(self, in_process):
        files = sorted(p.name for p in Path(in_process.out, "results").rglob("*.parquet"))
        assert len(files) == 2 and all(f.startswith("batch-") for f in files)


# --------------------------------------------------------------------------------------------------
# Resume
# --------------------------------------------------------------------------------------------------
def _wait_for_part(out: Path, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(Path(out, "results").glob("condition=*/part-*.parquet")):
        if time.monotonic() > deadline:
            raise AssertionError(f"no unit finished within {timeout} s")
        time.sleep(0.2)


class TestResume:
    @pytest.mark.slow
    def test_a_killed_study_resumes_and_loses_only_units_in_flight(self, corpus_dir, tmp_path):
        spec = _study(corpus_dir, "killed", transforms=([], [{"snr_db": 20}], [{"speed": 1.1}]),
                      run={"concurrency": 1})
        (tmp_path / "study.json").write_text(json.dumps(spec))
        out = tmp_path / "out"
        env = {**os.environ, "PYTHONPATH": str(ROOT / "lib") + os.pathsep + os.environ.get("PYTHONPATH", "")}
        proc = subprocess.Popen([sys.executable, "-m", "rtlab.cli", "study", "run", str(tmp_path / "study.json"),
                                 "--out", str(out), "--quiet"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            _wait_for_part(out)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        before = study_status(out)
        assert before.running is None and before.counts["done"] >= 1 and before.counts["done"] < 6
        run = run_study(spec, out, progress=False)
        assert run.skipped == before.counts["done"] and run.done == 6 - before.counts["done"] and run.failed == 0
        rows = _assert_one_row_per_key(out)
        assert rows["unit_id"].nunique() == 6
        assert study_status(out).counts == {"done": 6, "failed": 0, "running": 0, "pending": 0}

    def test_a_killed_worker_is_replaced_and_its_unit_runs_again(self, corpus_dir, tmp_path, client):
        spec = _study(corpus_dir, "worker-killed", transforms=([], [{"snr_db": 20}], [{"speed": 1.1}]))
        out = tmp_path / "out"
        box: dict = {}
        thread = threading.Thread(target=lambda: box.setdefault(
            "run", run_study(spec, out, client=client, progress=False)))
        thread.start()
        _wait_for_part(out)
        pids = client.run(os.getpid)
        os.kill(next(iter(pids.values())), signal.SIGKILL)  # a unit was in flight on each worker
        thread.join(300)
        assert not thread.is_alive(), f"the study did not finish after the worker was killed: {study_status(out)}"
        run = box["run"]
        assert (run.done, run.failed) == (6, 0)
        rows = _assert_one_row_per_key(out)
        assert rows["unit_id"].nunique() == 6
        statuses = [json.loads(p.read_text()) for p in (out / "status").glob("*.json")]
        assert max(s["runs"] for s in statuses) >= 2  # the killed worker's unit was started again
        client.wait_for_workers(2, timeout=120)


# --------------------------------------------------------------------------------------------------
# Rate limits
# --------------------------------------------------------------------------------------------------
def _refusing_429(name: str, code: str, message: str) -> dict:
    """An emulator profile that refuses every session at the handshake with HTTP 429 and this error."""
    return {"name": name, "session_models": {"default": {
        "outcome": "handshake_error", "status": 429, "code": code, "message": message}}}


class RefusingProxy:
    """Test-only WebSocket proxy in front of an emulator: refuses the first ``refuse`` handshakes with HTTP 429
    (an OpenAI-style ``rate_limit_exceeded`` body) and relays the others; counts sessions open at once."""

    def __init__(self, upstream: str, *, refuse: int = 0):
        self.upstream = upstream.replace("http://", "ws://")
        self.refuse = refuse
        self.handshakes = 0
        self.open = 0
        self.max_open = 0
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        from websockets.asyncio.server import serve

        async def main() -> None:
            self._server = await serve(self._relay, "127.0.0.1", 0, process_request=self._process_request,
                                       max_size=None, compression=None)
            self.url = f"http://127.0.0.1:{next(iter(self._server.sockets)).getsockname()[1]}"
            ready.set()
            await self._server.wait_closed()

        self._loop.run_until_complete(main())

    def _process_request(self, connection, request):
        from websockets.datastructures import Headers
        from websockets.http11 import Response

        self.handshakes += 1
        if self.handshakes <= self.refuse:
            body = json.dumps({"error": {"type": "requests", "code": "rate_limit_exceeded", "param": None,
                                         "message": "Rate limit reached for sessions. Please try again in 20ms."}})
            return Response(429, "Too Many Requests", Headers([("Content-Type", "application/json")]),
                            body.encode())
        return None

    async def _relay(self, ws) -> None:
        from websockets.asyncio.client import connect

        headers = [(k, v) for k, v in ws.request.headers.raw_items() if k.lower() in ("authorization", "api-key",
                                                                                        "openai-beta")]
        async with connect(self.upstream + ws.request.path, additional_headers=headers, max_size=None,
                           compression=None) as up:
            self.open += 1
            self.max_open = max(self.max_open, self.open)
            try:
                async def pump(a, b):
                    async for message in a:
                        await b.send(message)

                done, pending = await asyncio.wait([asyncio.ensure_future(pump(ws, up)),
                                                    asyncio.ensure_future(pump(up, ws))],
                                                   return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
            finally:
                self.open -= 1

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._thread.join(10)


@pytest.fixture(scope="module")
def emulator():
    import rtlab.emulator

    with rtlab.emulator.start(seed=5) as emu:
        yield emu


class TestRateLimits:
    def test_429_handshakes_back_off_then_succeed(self, corpus_dir, tmp_path, emulator):
        proxy = RefusingProxy(emulator.url, refuse=3)
        try:
            spec = _study(corpus_dir, "limited", transforms=([],), run={"backoff_base_s": 0.05, "backoff_cap_s": 0.2},
                          conditions={"base": {"sidecars": ["local"], "target": proxy.url}})
            run = run_study(spec, tmp_path, progress=False)
        finally:
            proxy.close()
        assert (run.done, run.failed) == (2, 0)
        assert sum(o.attempts for o in run.outcomes) == 2 + 3 == proxy.handshakes
        rows = _assert_one_row_per_key(tmp_path)
        assert rows["transcript"].str.len().gt(0).any()
        # only the successful attempt's log is kept: no refused handshake in it
        for log in (tmp_path / "logs").rglob("events.jsonl"):
            assert "rtlab.handshake_failed" not in log.read_text()
        assert not list((tmp_path / "logs").rglob(".*attempt"))

    def test_a_unit_gives_up_after_max_attempts_and_says_why(self, corpus_dir, tmp_path):
        import rtlab.emulator

        profile = _refusing_429("always-429", "rate_limit_exceeded", "Rate limit reached. Please try again in 10ms.")
        with rtlab.emulator.start(profile=profile, seed=1) as emu:
            spec = _study(corpus_dir, "refused", transforms=([],),
                          run={"max_attempts": 3, "backoff_base_s": 0.01, "backoff_cap_s": 0.05},
                          conditions={"base": {"sidecars": ["local"], "target": emu.url}})
            run = run_study(spec, tmp_path, progress=False)
            assert emu.sessions_opened == 0
        assert (run.done, run.failed) == (0, 2)
        st = study_status(tmp_path)
        assert st.counts["failed"] == 2
        assert all("rate limited (HTTP 429, code rate_limit_exceeded)" in f[3] and "gave up after 3 attempts" in f[3]
                   for f in st.failures)
        assert not list((tmp_path / "results").rglob("*.parquet"))

    def test_a_quota_sized_wait_fails_at_once(self, corpus_dir, tmp_path):
        import rtlab.emulator

        profile = _refusing_429("quota", "429",
                                "Requests have exceeded the token rate limit. Please retry after 86400 seconds.")
        with rtlab.emulator.start(profile=profile, seed=1) as emu:
            spec = _study(corpus_dir, "quota", transforms=([],), corpus={"pattern": "a.wav"},
                          conditions={"base": {"sidecars": ["local"], "target": emu.url}})
            t0 = time.monotonic()
            run = run_study(spec, tmp_path, progress=False)
        assert (run.done, run.failed) == (0, 1) and run.outcomes[0].attempts == 1
        assert "asks to wait 86400 s" in run.outcomes[0].error and time.monotonic() - t0 < 60

    def test_sessions_limit_is_shared_by_all_workers(self, corpus_dir, tmp_path, emulator, client):
        proxy = RefusingProxy(emulator.url)
        try:
            spec = _study(corpus_dir, "one-at-a-time",
                          conditions={"base": {"sidecars": ["local"], "target": proxy.url}},
                          limits={proxy.url: {"sessions": 1}})
            run = run_study(spec, tmp_path, client=client, progress=False)
        finally:
            proxy.close()
        assert (run.done, run.failed) == (4, 0)
        assert proxy.handshakes == 4 and proxy.max_open == 1

    def test_retry_hint_of_an_error_event_is_read(self, tmp_path):
        from rtlab.log import EventLog

        log = EventLog.create(tmp_path / "events.jsonl")
        log.record("server", "in-session", {"type": "error", "error": {
            "type": "tokens", "code": "rate_limit_exceeded", "message": "Limit 200000. Please try again in 1.574s."}})
        log.close()
        with pytest.raises(RateLimited, match="error event, code rate_limit_exceeded") as exc:
            _raise_if_rate_limited(EventLog.load(tmp_path / "events.jsonl"))
        assert exc.value.retry_after_s == pytest.approx(1.574)


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
class TestCommandLine:
    def test_status_and_report(self, in_process, capsys):
        from rtlab.cli import main

        assert main(["study", "status", str(in_process.out), "--once"]) == 0
        assert "study same: 4 done, 0 failed, 0 running, 0 pending (of 4 units)" in capsys.readouterr().out
        assert main(["study", "report", str(in_process.out)]) == 0
        html = (Path(in_process.out) / "report.html").read_text()
        assert "rtlab study same" in html and html.count("data:image/png;base64,") >= 2
        assert "sidecar:local" in html and "emulated" in html

    def test_run_from_a_yaml_file(self, corpus_dir, tmp_path, capsys):
        from rtlab.cli import main

        (tmp_path / "s.yaml").write_text(
            f"study: cli\nseed: 1\ncorpus: {{folder: {corpus_dir}, pattern: a.wav}}\n"
            f"conditions: {{base: {{sidecars: [local]}}}}\nrun: {{speed: {SPEED}}}\n")
        assert main(["study", "run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "out"), "--quiet"]) == 0
        out = capsys.readouterr().out
        assert "1 done, 0 failed" in out and "report:" in out
        assert main(["study", "run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "out"), "--quiet"]) == 0
        assert "0 done, 0 failed, 1 already done" in capsys.readouterr().out

    def test_a_refused_condition_fails_before_any_unit(self, corpus_dir, tmp_path, capsys):
        from rtlab.cli import main

        (tmp_path / "s.yaml").write_text(
            f"study: bad\ncorpus: {{folder: {corpus_dir}}}\n"
            "conditions: {base: {sidecars: [local], in_session_model: gpt-4o-transcribe, delay: low}}\n")
        assert main(["study", "run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "out")]) == 2
        assert "delay" in capsys.readouterr().err
        assert not (tmp_path / "out").exists()


def test_corpus_files_are_real_audio(corpus_dir):
    assert sf.info(corpus_dir / "b.wav").duration < 4.0
