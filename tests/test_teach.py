"""Learner checks: the solution passes, a blank says "not yet", each common mistake gets its hint, nothing raises.

The contexts come from a real run on the embedded emulator where the exercise needs one (turns, events); tables
that only feed a lookup (a probe frame, a turns table with conditions) are built here as input data. That every
check passes on its notebook's own solution, with the notebook's real data, is tested by test_workshop.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from rtlab import SessionConfig, Target, TranscriptionSidecar, metrics, run_sidecar, teach
from rtlab.analysis import turns as turns_of  # noqa: E402
from rtlab.analysis.subtitles import to_srt
from rtlab.data import clip_path, references_for
from rtlab.probe import RESULT_COLUMNS, ProbeResult


@pytest.fixture(scope="module")
def sidecar_run(tmp_path_factory):
    target = Target.local(seed=7)
    try:
        log = run_sidecar(clip_path("monologue"), voice=(target, SessionConfig.realtime()),
                          sidecars=[TranscriptionSidecar(model="gpt-4o-transcribe")],
                          out=tmp_path_factory.mktemp("teach"), speed=float("inf"), progress=False)
    finally:
        target.stop()
    turns = turns_of(log, references_for(clip_path("monologue")))
    events = log.to_frame()
    server = events[(events["direction"] == "server") & (events["source"] == "in-session")]
    return turns, server


def _verdict(name: str, *answers, **context) -> teach.Verdict:
    return teach.check(name, *answers, quiet=True, **context)


class Evil:
    """An answer that raises whenever it is looked at."""

    def __eq__(self, other):
        raise RuntimeError("no comparing me")

    def __len__(self):
        raise RuntimeError("no length")

    def __iter__(self):
        raise RuntimeError("no iterating")

    def __float__(self):
        raise RuntimeError("no float")

    __hash__ = None  # type: ignore[assignment]


# ------------------------------------------------------------------------------------------------------------
# the mechanism
# ------------------------------------------------------------------------------------------------------------
class TestMechanism:
    def test_every_exercise_of_the_notebooks_is_registered(self) -> None:
        assert sorted((e.notebook[:2], e.name) for e in teach.EXERCISES.values()) == [
            ("00", "session_wer"), ("01", "fixed_whisper_config"), ("01", "preview_noise_key"),
            ("02", "event_order"), ("03", "srt_cues"), ("04", "no_secret_leaks"),
            ("04", "replica_matches"), ("05", "condition_ratios"), ("06", "seed_outcomes")]

    def test_check_prints_one_line_and_returns_a_verdict(self, capsys) -> None:
        v = teach.check("preview_noise_key", "transcription_session.update", "input_audio_noise_reduction")
        out = capsys.readouterr().out
        assert out.count("\n") == 1 and out.startswith("preview_noise_key: pass — ")
        assert v and v.status == "pass" and str(v) == out.strip()

    @pytest.mark.parametrize("blank", [None, ..., "", [], {}, ()])
    def test_blank_answers_are_not_yet(self, blank) -> None:
        v = _verdict("fixed_whisper_config", blank)
        assert (v.status, bool(v)) == ("not yet", False) and "`fixed` is still empty" in v.message

    @pytest.mark.parametrize("weird", [Evil(), object(), 3.5, "text", pd.DataFrame({"a": [1]}), np.arange(3)])
    def test_any_wrong_value_is_a_hint_never_an_exception(self, sidecar_run, weird) -> None:
        turns, server = sidecar_run
        for name, args, ctx in (("session_wer", (weird,), {"turns": turns}),
                                ("event_order", (weird,), {"server": server, "turns": turns}),
                                ("srt_cues", (weird, weird), {"turns": turns}),
                                ("preview_noise_key", (weird, weird), {}),
                                ("fixed_whisper_config", (weird,), {})):
            v = _verdict(name, *args, **ctx)
            assert v.status in ("hint", "not yet"), (name, weird, v)

    def test_author_mistakes_raise_with_the_fix(self) -> None:
        with pytest.raises(teach.TeachError, match="no exercise 'nope'; known: session_wer"):
            teach.check("nope", 1)
        with pytest.raises(teach.TeachError, match=r"takes 2 answers \(event_type, noise_key\), got 1"):
            teach.check("preview_noise_key", "x")
        with pytest.raises(teach.TeachError, match=r"needs turns: call teach.check\('session_wer', session_wer, "
                                                   r"turns=turns\)"):
            teach.check("session_wer", 0.1)

    def test_exercises_are_found_by_notebook_and_variables(self) -> None:
        assert teach.exercise_for("01_session_configuration", ["event_type", "noise_key"]).name == "preview_noise_key"
        assert teach.exercise_for("01_session_configuration", ["fixed"]).name == "fixed_whisper_config"
        assert teach.exercise_for("00_quickstart", ["fixed"]) is None
        assert teach.exercise_for("06_the_seed_question", ["as_session_model", "as_transcription_model"]).name == \
            "seed_outcomes"
        assert teach.EXERCISES["seed_outcomes"].call() == \
            "teach.check('seed_outcomes', as_session_model, as_transcription_model, frame=seed.frame)"


# ------------------------------------------------------------------------------------------------------------
# one class per exercise: the solution, and the mistakes people make
# ------------------------------------------------------------------------------------------------------------
class TestSessionWer:
    def test_solution_and_mistakes(self, sidecar_run) -> None:
        turns = sidecar_run[0]
        refs, hyps = list(turns["reference"]), list(turns["transcript"].fillna(""))
        right = metrics.wer(refs, hyps)
        assert right > 0  # the local recognizer makes some errors: the hints below can be told apart
        assert _verdict("session_wer", right, turns=turns).status == "pass"
        per_turn = float(np.mean([metrics.wer(r, h) for r, h in zip(refs, hyps, strict=True)]))
        cases = [(100 * right, "percentage"), (list(turns["transcript"]), "one number"),
                 (True, "should be a number"), (0.9, "not the WER")]
        # these mistakes give the right number on some data (equal turn lengths, substitutions only)
        if not np.isclose(per_turn, right):
            cases.append((per_turn, "mean of per-turn WERs"))
        if not np.isclose(metrics.wer(hyps, refs), right):
            cases.append((metrics.wer(hyps, refs), "references first"))
        for answer, hint in cases:
            v = _verdict("session_wer", answer, turns=turns)
            assert v.status == "hint" and hint in v.message, (answer, v)
        v = _verdict("session_wer", pd.Series([0.1, 0.2]), turns=turns)
        assert "you have a Series of 2 values" in v.message

    def test_swapped_arguments_and_per_turn_mean(self) -> None:
        turns = _condition_turns()  # deletions and an empty transcript: the mistakes give other numbers
        refs, hyps = list(turns["reference"]), list(turns["transcript"].fillna(""))
        swapped = metrics.wer(hyps, refs)
        mean = float(np.mean([metrics.wer(r, h) for r, h in zip(refs, hyps, strict=True)]))
        assert len({round(swapped, 6), round(mean, 6), round(metrics.wer(refs, hyps), 6)}) == 3
        assert "references first" in _verdict("session_wer", swapped, turns=turns).message
        assert "mean of per-turn WERs" in _verdict("session_wer", mean, turns=turns).message


class TestPreviewNoiseKey:
    @pytest.mark.parametrize(("event_type", "noise_key", "hint"), [
        ("session.update", "input_audio_noise_reduction", "GA event"),
        ("transcription_session.updated", "input_audio_noise_reduction", "what the server answers"),
        ("transcription_session.update", "audio.input.noise_reduction", "where GA puts it"),
        ("transcription_session.update", "session.input_audio_noise_reduction", "without the 'session.' prefix"),
        ("transcription_session.update", "noise", "no key 'noise'"),
        (42, "x", "type string"),
    ])
    def test_mistakes(self, event_type, noise_key, hint) -> None:
        v = _verdict("preview_noise_key", event_type, noise_key)
        assert v.status == "hint" and hint in v.message

    def test_solution(self) -> None:
        from rtlab.config import render

        rendered = render(SessionConfig.transcription(model="gpt-4o-mini-transcribe", noise_reduction="near_field"),
                          "azure-preview")
        key = [k for k in rendered["session"] if "noise" in k][0]
        assert _verdict("preview_noise_key", rendered["type"], key).status == "pass"


class TestFixedWhisperConfig:
    def test_solution_and_mistakes(self) -> None:
        ok = SessionConfig.transcription(model="gpt-realtime-whisper", turn_detection=None)
        assert _verdict("fixed_whisper_config", ok).status == "pass"
        for config, hint in (
            (SessionConfig.transcription(model="gpt-realtime-whisper", turn_detection=None, prompt="Names"),
             "no transcription prompt"),
            (SessionConfig.transcription(model="gpt-realtime-whisper", turn_detection="server_vad"),
             "set turn_detection=None"),
            (SessionConfig.transcription(model="gpt-4o-transcribe"), "keep gpt-realtime-whisper"),
            (SessionConfig.realtime(transcription="gpt-realtime-whisper"), "keep it a transcription session"),
        ):
            v = _verdict("fixed_whisper_config", config)
            assert v.status == "hint" and hint in v.message, (config, v)


def _probe_frame(rows: list[tuple[str, str, str, int | None]]) -> pd.DataFrame:
    frame = pd.DataFrame([{"model": m, "surface": s, "dialect": "azure-ga", "outcome": o, "http_status": st,
                           "error_code": None, "error_message": None, "deltas_stream": o == "ok", "n_deltas": 0,
                           "completed": o == "ok", "first_delta_ms": None, "final_ms": None, "transcript": None}
                          for m, s, o, st in rows], columns=RESULT_COLUMNS)
    frame["http_status"] = frame["http_status"].astype("Int64")
    return frame


SEED = _probe_frame([("gpt-realtime-whisper", "session-model", "handshake-refused", 400),
                     ("gpt-realtime-whisper", "in-session-ga", "ok", None),
                     ("gpt-live-transcribe", "session-model", "handshake-refused", 404),
                     ("gpt-live-transcribe", "in-session-ga", "transcription-failed", None),
                     ("gpt-4o-transcribe", "session-model", "ok", None),
                     ("gpt-4o-transcribe", "in-session-ga", "ok", None)])


class TestSeedOutcomes:
    @pytest.mark.parametrize(("answers", "status", "text"), [
        (("handshake-refused", "ok"), "pass", "as the session model it is handshake-refused"),
        (("ok", "handshake-refused"), "hint", "you swapped them"),
        (("handshake-refused 400", "ok"), "hint", "not the matrix text"),
        (("ok", "ok"), "hint", "another model's outcomes"),
        ((SEED["outcome"], "ok"), "hint", "pick it with .loc"),
        (("no-transcript", "ok"), "hint", "read the `outcome` column"),
    ])
    def test_answers(self, answers, status, text) -> None:
        v = _verdict("seed_outcomes", *answers, frame=SEED)
        assert v.status == status and text in v.message, v


class TestEventOrder:
    def test_solution_and_mistakes(self, sidecar_run) -> None:
        turns, server = sidecar_run
        items = list(turns.loc[turns["source"] == "in-session", "item_id"])
        # transcription runs beside the answer: read each turn's order off the events (seq of the two events)
        seq = server.reset_index()
        solution = {}
        for i in items:
            completed = seq.loc[(seq["type"] == "conversation.item.input_audio_transcription.completed")
                                & (seq["item_id"] == i), "seq"].iloc[0]
            committed = seq.loc[(seq["type"] == "input_audio_buffer.committed") & (seq["item_id"] == i), "seq"].iloc[0]
            rid = seq.loc[(seq["seq"] > committed) & (seq["type"] == "response.created"), "response_id"].iloc[0]
            done = seq.loc[(seq["type"] == "response.done") & (seq["response_id"] == rid), "seq"].iloc[0]
            solution[i] = "before" if completed < done else "after"
        assert _verdict("event_order", solution, server=server, turns=turns).status == "pass"
        flipped = {**solution, items[1]: "after" if solution[items[1]] == "before" else "before"}
        every = {i: "before" for i in turns["item_id"]}
        cases = [(every, "only the in-session turns"), (dict(list(solution.items())[:2]), "one entry per in-session"),
                 ({i: True for i in items}, "'before' or 'after'"), (flipped, items[1]),
                 ([("a", "before")], "should be a dict")]
        for answer, hint in cases:
            v = _verdict("event_order", answer, server=server, turns=turns)
            assert v.status == "hint" and hint in v.message, (answer, v)


class TestSrtCues:
    def test_solution_and_mistakes(self, sidecar_run) -> None:
        turns = sidecar_run[0].copy()
        # offline both sources come from one recognizer; make the in-session text differ, as a service's would
        inses = turns["source"] == "in-session"
        turns.loc[inses, "transcript"] = turns.loc[inses, "transcript"].str.upper()
        srt = to_srt(turns, "sidecar:transcription")
        n = srt.count(" --> ")
        assert _verdict("srt_cues", srt, n, turns=turns).status == "pass"
        for answers, hint in (((to_srt(turns, "in-session"), n), "that is the SRT of in-session"),
                              ((srt, len(srt.splitlines())), "that counts lines"),
                              ((srt, n + 1), "count the cues"), ((srt, str(n)), "a whole number"),
                              ((srt.encode(), n), "a str")):
            v = _verdict("srt_cues", *answers, turns=turns)
            assert v.status == "hint" and hint in v.message, (answers, v)


@dataclasses.dataclass
class _Matrices:
    table: pd.DataFrame

    def matrix(self) -> pd.DataFrame:
        return self.table


class TestReplicaMatches:
    def test_solution_and_mistakes(self) -> None:
        a = _Matrices(pd.DataFrame({"x": ["ok", "ok"], "y": ["ok", "refused 400"]}))
        b = _Matrices(pd.DataFrame({"x": ["ok", "ok"], "y": ["ok", "ok"]}))
        assert _verdict("replica_matches", 1, result=a, again=b).status == "pass"
        assert _verdict("replica_matches", 0, result=a, again=a).status == "pass"
        for answer, hint in ((a.table != b.table, "count its True cells"), (True, "not whether they differ"),
                             (3, "compare the cells both matrices have"), ("1", "should be a number")):
            v = _verdict("replica_matches", answer, result=a, again=b)
            assert v.status == "hint" and hint in v.message, (answer, v)

    def test_a_replica_probed_on_fewer_surfaces_is_compared_on_the_cells_it_has(self) -> None:
        # the endpoint has a workaround row and column the replica (a saved profile) does not reproduce
        endpoint = _Matrices(pd.DataFrame({"in-session-ga": ["ok", "ok", "—"], "live": ["—", "—", "ok"]},
                                          index=["tx-whisper", "tx-4o", "prod-live"]))
        replica = _Matrices(pd.DataFrame({"in-session-ga": ["ok", "refused 404"]}, index=["tx-whisper", "tx-4o"]))
        v = _verdict("replica_matches", 1, result=endpoint, again=replica)
        assert v.status == "pass" and "1 of the 2 cells" in v.message
        assert _verdict("replica_matches", 0, result=endpoint, again=replica).status == "hint"


class TestNoSecretLeaks:
    def test_solution_and_mistakes(self) -> None:
        fake_key = "azk-0123456789abcdef0123456789abcdef"
        result = ProbeResult(SEED, target=Target.local(provider_profile="azure"), clip="short.wav")
        contoso = Target.azure(endpoint="https://contoso.openai.azure.com", api_key=fake_key)
        ticket = dataclasses.replace(result, target=contoso).support_report()
        assert _verdict("no_secret_leaks", ticket, fake_key=fake_key, result=result).status == "pass"
        for answer, hint in ((result.support_report(), "about the original target"),
                             (ticket + fake_key, "shows (part of) the key"),
                             (["report"], "should be the text"), ("contoso", "should be a probe support report")):
            v = _verdict("no_secret_leaks", answer, fake_key=fake_key, result=result)
            assert v.status == "hint" and hint in v.message, (answer, v)


def _condition_turns() -> pd.DataFrame:
    rows = []
    for source, noisy_hyp in (("in-session", "the meeting starts at them"), ("sidecar:transcription", "meeting")):
        rows += [{"source": source, "condition": "clean", "reference": "the meeting starts at ten",
                  "transcript": "the meeting starts at tan"},
                 {"source": source, "condition": "noisy", "reference": "the meeting starts at ten",
                  "transcript": noisy_hyp},
                 {"source": source, "condition": "telephone", "reference": "please bring the report",
                  "transcript": None}]
    return pd.DataFrame(rows)


class TestConditionRatios:
    def test_solution_and_mistakes(self) -> None:
        turns = _condition_turns()

        def wer(g):
            return metrics.wer(list(g["reference"]), list(g["transcript"].fillna("")))

        solution, inverse = {}, {}
        for source, part in turns.groupby("source"):
            clean = wer(part[part["condition"] == "clean"])
            for condition in ("noisy", "telephone"):
                w = wer(part[part["condition"] == condition])
                solution[source, condition] = w / max(clean, 0.01)
                inverse[source, condition] = clean / max(w, 0.01)
        v = _verdict("condition_ratios", solution, turns=turns)
        assert v.status == "pass" and "telephone" in v.message
        cases = [({"noisy": 2.0}, "keys are tuples"), ({k: v for k, v in list(solution.items())[:3]}, "missing"),
                 ({**solution, ("in-session", "lead_silence"): 1.0}, "unexpected keys"),
                 (inverse, "not the other way round"), ({k: v * 1.1 for k, v in solution.items()}, "corpus WER"),
                 ({k: "high" for k in solution}, "should be a number")]
        for answer, hint in cases:
            v = _verdict("condition_ratios", answer, turns=turns)
            assert v.status == "hint" and hint in v.message, (answer, v)
