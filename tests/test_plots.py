"""Figures from real runs: what each artist shows must be what the log and the turns table say.

Runs against the embedded emulator (seeded): a monologue with every sidecar kind (real latencies, speed 4), a
noisy clip (WER per condition), and a small probe of the emulator's Azure profile.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rtlab import (
    LocalSidecar,
    SessionConfig,
    Target,
    TranscriptionSidecar,
    metrics,
    plots,
    probe,
    run_sidecar,
)
from rtlab.analysis import turns as turns_of  # noqa: E402
from rtlab.data import clip_path, references_for
from rtlab.stats import bootstrap_ci, corpus_wer, percentile

PROV = {"engine": "pocketsphinx (local emulator)", "timing": "modelled", "cost_basis": "emulated"}


@pytest.fixture(scope="module")
def target():
    t = Target.local(seed=7)
    yield t
    t.stop()


@pytest.fixture(scope="module")
def recorded(target, tmp_path_factory):
    return run_sidecar(clip_path("monologue"), voice=(target, SessionConfig.realtime()),
                       out=tmp_path_factory.mktemp("plots"), speed=4, progress=False)


@pytest.fixture(scope="module")
def run(recorded):
    return recorded.to_frame(), turns_of(recorded, references_for(clip_path("monologue")))


@pytest.fixture(scope="module")
def conditions(target, tmp_path_factory, run):
    """Turns of a clean and a noisy clip, labelled by condition."""
    parts = [run[1].assign(condition="clean")]
    log = run_sidecar(clip_path("noisy"), voice=(target, SessionConfig.realtime()),
                      sidecars=[TranscriptionSidecar(model="gpt-4o-transcribe"), LocalSidecar()],
                      out=tmp_path_factory.mktemp("noisy"), speed=float("inf"), progress=False)
    parts.append(turns_of(log, references_for(clip_path("noisy"))).assign(condition="noisy"))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def probed():
    t = Target.local(provider_profile="azure", seed=7)
    try:
        return probe(t, ["gpt-realtime-whisper", "gpt-live-transcribe"], surfaces=("session-model", "in-session-ga"),
                     speed=4, progress=False)
    finally:
        t.stop()


def _artists(ax, label: str) -> list:
    return [a for a in ax.collections + ax.containers if a.get_label() == label]


def _footnote(fig) -> str | None:
    notes = [t.get_text() for t in fig.texts if t.get_gid() == "provenance"]
    return notes[0] if notes else None


# ------------------------------------------------------------------------------------------------------------
# bootstrap
# ------------------------------------------------------------------------------------------------------------
class TestBootstrap:
    def test_percentile_matches_the_metrics_definition(self, run) -> None:
        turns = run[1]
        summary = metrics.latency_summary(turns).set_index(["source", "metric"])
        for source, part in turns.groupby("source"):
            v = part["final_after_eos_ms"].to_numpy(dtype=float)
            for q in (50, 95):
                iv = bootstrap_ci(v, percentile(q))
                assert iv.estimate == pytest.approx(summary.loc[(source, "final_after_eos_ms"), f"p{q}_ms"])
                assert iv.low <= iv.estimate <= iv.high and iv.n == 3

    def test_corpus_wer_matches_metrics_wer_and_resamples_pairs(self, run) -> None:
        scored = metrics.score_turns(run[1])
        iv = bootstrap_ci((scored["word_errors"].to_numpy(float), scored["ref_words"].to_numpy(float)), corpus_wer)
        assert iv.estimate == pytest.approx(metrics.wer(list(scored["reference"]), list(scored["transcript"])))
        assert 0 <= iv.low <= iv.estimate <= iv.high <= 1

    def test_small_and_constant_samples(self) -> None:
        assert not bootstrap_ci([5.0], percentile(50)).defined
        one = bootstrap_ci([np.nan, 7.0], percentile(50))  # NaN values are dropped first
        assert (one.estimate, one.n, one.defined) == (7.0, 1, False) and math.isnan(one.low)
        flat = bootstrap_ci([3.0, 3.0, 3.0], percentile(95))
        assert (flat.low, flat.estimate, flat.high) == (3.0, 3.0, 3.0)
        assert bootstrap_ci([], percentile(50)).n == 0

    def test_same_seed_same_interval(self) -> None:
        v = np.random.default_rng(1).normal(500, 80, 40)
        assert bootstrap_ci(v, percentile(50), seed=3) == bootstrap_ci(v, percentile(50), seed=3)

    def test_bad_arguments(self) -> None:
        with pytest.raises(ValueError, match="percentile q"):
            percentile(120)
        with pytest.raises(ValueError, match="confidence"):
            bootstrap_ci([1.0, 2.0], percentile(50), confidence=95)
        with pytest.raises(ValueError, match="one length"):
            bootstrap_ci((np.ones(3), np.ones(4)), corpus_wer)


# ------------------------------------------------------------------------------------------------------------
# swimlane
# ------------------------------------------------------------------------------------------------------------
class TestSwimlane:
    def test_one_lane_per_source_and_finals_at_their_ttfs(self, run) -> None:
        frame, turns = run
        fig = plots.swimlane(frame, turns, turn=1, provenance=PROV)
        ax = fig.axes[0]
        lanes = [t.get_text() for t in ax.get_yticklabels()][::-1]
        assert lanes == ["in-session", "sidecar:local", "sidecar:oob", "sidecar:transcription"]
        second = turns.sort_values("audio_start_ms").groupby("source").nth(1).set_index("source")
        # 0 on the x axis: when the audio up to the true end of speech had first been sent (by any leg, the local
        # engine's feed included: the turns table's clock)
        from rtlab.protocol.events import INPUT_AUDIO_FIELDS

        appends = frame[(frame["direction"] == "client") & frame["type"].isin(list(INPUT_AUDIO_FIELDS))]
        zero = appends.loc[appends["audio_ms"] >= second["ref_end_ms"].iloc[0], "t_ms"].min()
        server = frame[frame["direction"] == "server"]
        for y, source in enumerate(reversed(lanes)):
            (final,) = _artists(ax, f"{source} · final")
            x, yy = final.get_offsets()[0]
            row = second.loc[source]
            if source == "sidecar:oob":
                done = server[(server["response_id"] == row["response_id"])
                              & (server["type"] == "response.output_text.done")]
            elif source == "sidecar:local":  # the local engine records its own events (local.*)
                done = server[(server["item_id"] == row["item_id"]) & (server["type"] == "local.final")]
            else:
                done = server[(server["item_id"] == row["item_id"])
                              & (server["type"] == "conversation.item.input_audio_transcription.completed")]
            assert yy == y and x == pytest.approx(done["t_ms"].iloc[0] - zero)
            assert len(final.get_offsets()) == 1  # this turn's final only, no neighbour's
            # (the turns table anchors each source on its own append of the chunk reaching *its* turn's true end;
            # the swimlane puts every lane on the first send by any leg, so, on the same end, it can only read longer)
            own_zero = appends.loc[appends["audio_ms"] >= row["ref_end_ms"], "t_ms"].min()
            assert x + (zero - own_zero) >= row["final_after_eos_ms"] - 1, source
        texts = {a.get_text() for a in ax.texts}
        assert set(second["transcript"].map(lambda t: t[:60])) <= {t.rstrip("…") for t in texts} | texts

    def test_partials_and_speech_events_are_the_turns_events(self, run) -> None:
        frame, turns = run
        fig = plots.swimlane(frame, turns, turn=0)
        ax = fig.axes[0]
        row = turns[turns["source"] == "in-session"].sort_values("audio_start_ms").iloc[0]
        own = frame[(frame["source"] == "in-session") & (frame["item_id"] == row["item_id"])
                    & (frame["direction"] == "server")]
        t = own.set_index("type")["t_ms"]
        (partials,) = _artists(ax, "in-session · partial")
        (final,) = _artists(ax, "in-session · final")
        (stopped,) = _artists(ax, "in-session · speech_stop")
        deltas = own[own["type"] == "conversation.item.input_audio_transcription.delta"]["t_ms"].to_numpy()
        assert len(partials.get_offsets()) == len(deltas) == row["n_deltas"]
        # one clock: distances between markers are distances between the events' log times
        x_final = final.get_offsets()[0][0]
        assert np.allclose(np.sort(partials.get_offsets()[:, 0]) - x_final,
                           np.sort(deltas) - t["conversation.item.input_audio_transcription.completed"])
        assert stopped.get_offsets()[0][0] - x_final == pytest.approx(
            t["input_audio_buffer.speech_stopped"] - t["conversation.item.input_audio_transcription.completed"])
        assert _artists(ax, "in-session · response")  # the answer to this turn
        assert _footnote(fig) is None

    def test_provenance_is_in_the_footnote(self, run) -> None:
        fig = plots.swimlane(*run, turn=2, provenance=PROV)
        assert _footnote(fig) == "text: pocketsphinx (local emulator) · latency: modelled · cost: emulated"

    def test_azure_speech_and_translation_sidecars_share_the_lanes(self, run) -> None:
        frame, turns = run
        row = turns[turns["source"] == "in-session"].sort_values("audio_start_ms").iloc[0]
        t_end = float(row["final_wall_ms"])

        def rec(source: str, typ: str, dt: float, event: dict) -> dict:
            return {"seq": -1, "t_ms": t_end + dt, "audio_ms": np.nan, "direction": "server", "source": source,
                    "type": typ, "raw_type": typ, "item_id": None, "response_id": None, "event_id": None,
                    "event": {"type": typ, **event}}

        extra = pd.DataFrame([
            rec("azure-speech", "azure_speech.speech_start_detected", -2000, {}),
            rec("azure-speech", "azure_speech.transcribing", -900, {"text": "the meeting"}),
            rec("azure-speech", "azure_speech.transcribing", -500, {"text": "the meeting starts"}),
            rec("azure-speech", "azure_speech.speech_end_detected", 50, {}),
            rec("azure-speech", "azure_speech.transcribed", 120, {"text": "The meeting starts at ten."}),
            rec("translation", "session.input_transcript.delta", -700, {"delta": "the meeting"}),
            rec("translation", "session.output_transcript.delta", -400, {"delta": "la réunion"}),
            rec("translation", "session.output_audio.delta", -350, {"delta": "AAAA"}),
        ])
        fig = plots.swimlane(pd.concat([frame, extra], ignore_index=True), turns, turn=0)
        ax = fig.axes[0]
        lanes = [t.get_text() for t in ax.get_yticklabels()]
        assert {"azure-speech", "translation"} <= set(lanes)
        for label, n in (("azure-speech · speech_start", 1), ("azure-speech · partial", 2),
                         ("azure-speech · speech_stop", 1), ("azure-speech · final", 1),
                         ("translation · partial", 1), ("translation · output", 2)):
            (art,) = _artists(ax, label)
            assert len(art.get_offsets()) == n, label
        assert "The meeting starts at ten." in {a.get_text() for a in ax.texts}

    def test_a_source_placed_by_time_shows_its_final_even_when_it_comes_last(self, run) -> None:
        frame, turns = run
        row = turns[turns["source"] == "in-session"].sort_values("audio_start_ms").iloc[1]
        late = float(turns["final_wall_ms"].max()) + 2500  # after every other source's final of every turn
        speech = row.copy()
        speech[["source", "item_id", "final_wall_ms"]] = ["sidecar:azure-speech", "result-1", late]
        event = {"seq": -1, "t_ms": late, "audio_ms": np.nan, "direction": "server", "source": "sidecar:azure-speech",
                 "type": "azure_speech.transcribed", "raw_type": "azure_speech.transcribed", "item_id": None,
                 "response_id": None, "event_id": None,
                 "event": {"type": "azure_speech.transcribed", "text": "Please bring the report."}}
        fig = plots.swimlane(pd.concat([frame, pd.DataFrame([event])], ignore_index=True),
                             pd.concat([turns, speech.to_frame().T], ignore_index=True), turn=1)
        ax = fig.axes[0]
        (final,) = _artists(ax, "sidecar:azure-speech · final")
        assert len(final.get_offsets()) == 1
        assert "Please bring the report." in {a.get_text() for a in ax.texts}

    def test_roles_table(self) -> None:
        from rtlab.protocol.events import role_of

        assert role_of("response.output_text.delta", "sidecar:oob") == "partial"
        assert role_of("response.output_text.delta", "in-session") == "output"  # an answer, not a transcript
        assert role_of("session.updated", "x") is None

    def test_bad_input_names_the_problem(self, run) -> None:
        frame, turns = run
        with pytest.raises(plots.PlotError, match="turn 9 out of range"):
            plots.swimlane(frame, turns, turn=9)
        with pytest.raises(plots.PlotError, match="lacks columns"):
            plots.swimlane(frame.drop(columns=["t_ms"]), turns)
        with pytest.raises(plots.PlotError, match="no client input_audio_buffer.append"):
            plots.swimlane(frame[frame["direction"] == "server"], turns)


# ------------------------------------------------------------------------------------------------------------
# latency, WER, probe
# ------------------------------------------------------------------------------------------------------------
class TestLatency:
    def test_markers_are_the_reported_percentiles_inside_their_intervals(self, run) -> None:
        turns = run[1]
        fig = plots.latency_distributions(turns, provenance=PROV)
        ax = fig.axes[0]
        summary = metrics.latency_summary(turns).set_index(["source", "metric"])
        for source in turns["source"].unique():
            (dots,) = _artists(ax, f"{source} · turns")
            assert len(dots.get_offsets()) == turns.loc[turns["source"] == source, "final_after_eos_ms"].notna().sum()
            for q in (50, 95):
                (bar,) = _artists(ax, f"{source} · p{q}")
                x = bar.lines[0].get_xdata()[0]
                assert x == pytest.approx(summary.loc[(source, "final_after_eos_ms"), f"p{q}_ms"])
                seg = bar.lines[2][0].get_segments()[0]
                assert seg[0][0] <= x <= seg[1][0]
        assert "engine" not in _footnote(fig) and "pocketsphinx (local emulator)" in _footnote(fig)

    def test_one_panel_per_condition(self, conditions) -> None:
        fig = plots.latency_distributions(conditions, metric="final_after_stop_ms", by="condition")
        assert [ax.get_title(loc="left") for ax in fig.axes] == ["condition = clean", "condition = noisy"]
        assert fig.axes[-1].get_xlabel() == plots.METRIC_LABELS["final_after_stop_ms"]


class TestWer:
    def test_bars_are_corpus_wer_per_source_and_condition(self, conditions) -> None:
        fig = plots.wer_by_condition(conditions, provenance=PROV)
        ax = fig.axes[0]
        groups = [t.get_text() for t in ax.get_xticklabels()]
        assert groups == ["clean", "noisy"]
        for container in ax.containers:
            if not hasattr(container, "patches"):
                continue
            source = container.get_label()
            for grp, patch in zip(groups, container.patches, strict=True):
                g = conditions[(conditions["source"] == source) & (conditions["condition"] == grp)]
                want = metrics.wer(list(g["reference"]), list(g["transcript"].fillna(""))) if len(g) else 0.0
                assert patch.get_height() == pytest.approx(want), (source, grp)
        assert {c.get_label() for c in ax.containers if hasattr(c, "patches")} == set(conditions["source"])
        assert _footnote(fig).startswith("text: pocketsphinx")

    def test_without_a_condition_column_all_turns_are_one_group(self, run) -> None:
        fig = plots.wer_by_condition(run[1])
        assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["all turns"]

    def test_turns_without_references_are_refused(self, run) -> None:
        with pytest.raises(plots.PlotError, match="no turn has a reference"):
            plots.wer_by_condition(run[1].assign(reference=None))


class TestProbeHeatmap:
    def test_cells_show_the_matrix_in_outcome_colours(self, probed) -> None:
        from matplotlib.colors import to_rgba

        fig = plots.probe_heatmap(probed.frame, provenance=PROV)
        ax = fig.axes[0]
        matrix = probed.matrix()
        assert [t.get_text() for t in ax.get_yticklabels()] == list(matrix.index)
        assert [t.get_text() for t in ax.get_xticklabels()] == list(matrix.columns)
        texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text().replace("\n", " ")
                 for t in ax.texts}
        image = ax.images[0]
        rgba = image.cmap(image.norm(image.get_array()))
        for i, model in enumerate(matrix.index):
            for j, surface in enumerate(matrix.columns):
                cell = matrix.loc[model, surface]
                assert texts[(i, j)] == cell
                outcome = next(k for k in plots.OUTCOME_COLORS if cell == k or cell.startswith(k + " "))
                assert tuple(rgba[i, j]) == pytest.approx(to_rgba(plots.OUTCOME_COLORS[outcome]))
        assert matrix.loc["gpt-realtime-whisper", "session-model"] == "handshake-refused 400"
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "handshake-refused" in legend


# ------------------------------------------------------------------------------------------------------------
# provenance and display
# ------------------------------------------------------------------------------------------------------------
class TestProvenance:
    def test_an_offline_run_names_the_local_recognizer_the_emulator_and_its_cost_bases(self, recorded, run) -> None:
        turns = run[1]
        prov = plots.provenance_of(recorded, turns)
        assert "pocketsphinx" in prov["engine"] and "the service" not in prov["engine"]
        assert "emulated" in prov["timing"]
        assert all(b in prov["cost_basis"] for b in set(turns["cost_basis"].dropna()))
        note = plots.provenance_note(prov)
        assert note.startswith("text: ") and "pocketsphinx" in note and " · latency: " in note

    def test_a_recorded_timing_mode_is_named_and_a_real_run_says_measured(self, recorded) -> None:
        import copy
        import types

        from rtlab.analysis.provenance import TIMINGS

        meta = copy.deepcopy(recorded.meta)
        meta["sources"]["in-session"]["timing"] = "modelled"
        assert TIMINGS["modelled"] in plots.provenance_of(types.SimpleNamespace(meta=meta))["timing"]
        real = {"sources": {s: {**i, "emulated": False} for s, i in meta["sources"].items() if i["family"] != "local"}}
        prov = plots.provenance_of(types.SimpleNamespace(meta=real))
        assert "the service (gpt-realtime-whisper)" in prov["engine"] and "pocketsphinx" not in prov["engine"]
        assert prov["timing"] == "measured against the service" and prov["cost_basis"] == "reported"

    def test_a_probe_says_whose_answers_they_are(self, probed) -> None:
        prov = plots.provenance_of(probed)
        assert "'azure' profile" in prov["answers"] and "not a real endpoint" in prov["answers"]
        import dataclasses

        real = dataclasses.replace(probed, target=Target.azure(endpoint="https://contoso.openai.azure.com",
                                                               api_key="azk-" + "0" * 32), when="2026-12-01T10:00:00")
        assert plots.provenance_of(real)["answers"] == "observed: probe of azure azure-ga on 2026-12-01"


class TestDisplay:
    def test_figures_show_as_png_without_pyplot(self, probed) -> None:
        fig = plots.probe_heatmap(probed.frame)
        assert isinstance(fig, plots.PlotFigure)
        png = fig._repr_png_()
        assert png.startswith(b"\x89PNG") and len(png) > 1000

