"""rtlab.probe: it asks the resource (its configured deployments), rows for the workarounds and GPT-Live, a diagnosis
beside every error, a profile that lists exactly the resource's deployments, and no secret in any output.

Every run goes over real sockets to the emulator with the SDK as the client; each emulated Azure resource has
exactly the deployments a test names (``Profile.with_deployments``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rtlab import emulator
from rtlab.cli import main
from rtlab.emulator.profiles import load_profile
from rtlab.errors import ProbeError, TargetError
from rtlab.probe import (
    ALL_SURFACES,
    BETA_ROW,
    DEFAULT_MODELS,
    NOT_TRIED,
    RESULT_COLUMNS,
    SURFACES,
    ProbeResult,
    plan,
    probe,
    resource_of,
)
from rtlab.protocol.catalogue import DEFAULT_VOICE_MODEL, TRANSCRIPTION_MODELS
from rtlab.targets import Target

KEY = "azk-probe-" + "7a" * 16
TOKEN = "entra-probe-token-" + "9b" * 16
WRONG_KEY = "azk-wrong-" + "3c" * 16
#: The resource of issue 11: deployments named like real ones, not after their models.
DEPLOYMENTS = {"prod-voice": "gpt-realtime", "tx-whisper": "gpt-realtime-whisper", "tx-4o": "gpt-4o-transcribe"}
TX_ENV = "tx-whisper=gpt-realtime-whisper,tx-4o=gpt-4o-transcribe"
FAST = {"speed": 4.0, "concurrency": 3, "progress": False}

_ENV_VARS = ("RTLAB_TARGET", "OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AUTH",
             "AZURE_OPENAI_API_VERSION", "AZURE_OPENAI_REALTIME_DEPLOYMENT", "AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS",
             "AZURE_OPENAI_TRANSLATE_DEPLOYMENT", "AZURE_SPEECH_KEY", "AZURE_SPEECH_REGION", "AZURE_SPEECH_ENDPOINT",
             "AZURE_SPEECH_RESOURCE_ID", "AZURE_SPEECH_AUTH")


def _clean_env(mp: pytest.MonkeyPatch) -> None:
    for name in _ENV_VARS:
        mp.delenv(name, raising=False)


def _documented_env(mp: pytest.MonkeyPatch, url: str, *, transcribe: str = TX_ENV, voice: str = "prod-voice") -> None:
    """Only the documented variables of issue 11."""
    _clean_env(mp)
    mp.setenv("AZURE_OPENAI_ENDPOINT", url)
    mp.setenv("AZURE_OPENAI_API_KEY", KEY)
    mp.setenv("AZURE_OPENAI_REALTIME_DEPLOYMENT", voice)
    mp.setenv("AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS", transcribe)


@pytest.fixture(scope="module")
def resource():
    """An emulated Azure resource with exactly DEPLOYMENTS, a key and an Entra ID bearer token."""
    handle = emulator.start(profile=load_profile("azure").with_deployments(DEPLOYMENTS), api_key=KEY,
                            bearer_token=TOKEN, seed=11)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def probed(resource, tmp_path_factory):
    """The full probe of that resource through the API, configured by the documented variables only."""
    out = tmp_path_factory.mktemp("probe-api")
    with pytest.MonkeyPatch.context() as mp:
        _documented_env(mp, resource.url)
        result = probe(Target.azure(), out=out / "logs", **FAST)
    return result, out


# ==============================================================================================================
# What is tried: the resource, not the catalogue (no network)
# ==============================================================================================================
class TestPlan:
    def test_azure_tries_each_configured_deployment_with_the_voice_deployment(self, monkeypatch):
        _documented_env(monkeypatch, "https://res.openai.azure.com")
        res = resource_of(Target.azure())
        assert (res.provider, res.voice, res.origin) == ("azure", "prod-voice", "configured")
        assert dict(res.names) == {"tx-whisper": "gpt-realtime-whisper", "tx-4o": "gpt-4o-transcribe"}
        attempts = plan(res)
        tx = [(a.name, a.surface) for a in attempts if a.kind == "transcription"]
        assert tx == [(n, s) for n in ("tx-whisper", "tx-4o") for s in SURFACES]
        # nothing model-named is made up: the workarounds without a deployment are not tried, and say what to set
        extra = {a.kind: a for a in attempts if a.kind != "transcription"}
        assert set(extra) == {"translation", "azure-speech", "live"}
        assert "AZURE_OPENAI_TRANSLATE_DEPLOYMENT" in extra["translation"].note[1]
        assert "AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS" in extra["live"].note[1]
        assert extra["azure-speech"].note is None  # decided when it runs (local emulator or AZURE_SPEECH_*)

    def test_azure_names_the_workaround_deployments_it_is_given(self, monkeypatch):
        _documented_env(monkeypatch, "https://res.openai.azure.com",
                        transcribe=TX_ENV + ",my-live=gpt-live-1")
        monkeypatch.setenv("AZURE_OPENAI_TRANSLATE_DEPLOYMENT", "my-translate")
        res = resource_of(Target.azure())
        assert (res.live, res.translation) == ("my-live", "my-translate")
        assert "my-live" not in res.names  # a GPT-Live deployment is not a transcription deployment
        assert res.deployments["my-translate"] == "gpt-realtime-translate"
        live = next(a for a in plan(res) if a.kind == "live")
        assert (live.name, live.model, live.note) == ("my-live", "gpt-live-1", None)

    def test_models_map_to_the_deployments_serving_them(self, monkeypatch):
        _documented_env(monkeypatch, "https://res.openai.azure.com")
        res = resource_of(Target.azure(), ["gpt-4o-transcribe", "tx-whisper"])
        assert dict(res.names) == {"tx-4o": "gpt-4o-transcribe", "tx-whisper": "gpt-realtime-whisper"}

    def test_azure_without_transcription_deployments_says_what_to_set(self, monkeypatch):
        _documented_env(monkeypatch, "https://res.openai.azure.com")
        monkeypatch.delenv("AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS")
        res = resource_of(Target.azure())
        with pytest.raises(ProbeError, match="AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS"):
            plan(res)
        assert [a.kind for a in plan(res, ("azure-speech",))] == ["azure-speech"]  # workarounds alone still run

    def test_a_voice_model_maps_to_the_deployment_serving_it(self, monkeypatch):
        _documented_env(monkeypatch, "https://res.openai.azure.com", voice="prod-voice=gpt-realtime")
        assert resource_of(Target.azure(), voice_model="gpt-realtime").voice == "prod-voice"
        with pytest.raises(TargetError, match="prod-voice"):  # neither a deployment nor a model one serves
            resource_of(Target.azure(), voice_model="gpt-realtime-mini")

    def test_azure_without_a_voice_deployment_says_what_to_set(self, monkeypatch):
        _documented_env(monkeypatch, "https://res.openai.azure.com")
        monkeypatch.delenv("AZURE_OPENAI_REALTIME_DEPLOYMENT")
        with pytest.raises(TargetError, match="AZURE_OPENAI_REALTIME_DEPLOYMENT"):
            resource_of(Target.azure())

    def test_an_emulated_resource_without_configuration_is_asked_for_its_profile(self):
        res = resource_of(Target.local(provider_profile="azure"))
        profile = load_profile("azure")
        assert (res.voice, res.origin) == (DEFAULT_VOICE_MODEL, "emulator profile")  # its deployment of the default
        assert dict(res.deployments) == dict(profile.deployments)
        assert set(res.names) == {d for d, m in profile.deployments.items() if m in TRANSCRIPTION_MODELS}

    def test_openai_tries_the_current_models_and_the_beta_shape_once(self):
        res = resource_of(Target.openai("sk-" + "p" * 40))
        assert (res.provider, res.voice, res.deployments) == ("openai", DEFAULT_VOICE_MODEL, None)
        assert tuple(res.names) == DEFAULT_MODELS
        assert "gpt-live-transcribe" in DEFAULT_MODELS
        assert not any(re.search(r"-\d{4}-\d{2}-\d{2}$", m) for m in DEFAULT_MODELS)  # no dated snapshots
        attempts = plan(res)
        assert not [a for a in attempts if a.kind == "transcription" and a.surface.endswith("-beta")]
        (beta,) = [a for a in attempts if a.kind == "dialect"]
        assert (beta.name, beta.surface) == (BETA_ROW, "in-session-beta")
        assert [a.surface for a in attempts if a.kind == "transcription"] == \
            [s for _ in DEFAULT_MODELS for s in SURFACES if not s.endswith("-beta")]

    def test_unknown_surfaces_are_refused(self):
        with pytest.raises(ProbeError, match="pigeon"):
            plan(resource_of(Target.openai("sk-" + "p" * 40)), ("pigeon",))


# ==============================================================================================================
# Issue 11's resource: deployment names that are not model names
# ==============================================================================================================
class TestConfiguredResource:
    def test_no_deployment_is_missing_and_every_name_tried_is_the_resources(self, probed):
        result, _ = probed
        frame = result.frame
        assert list(frame.columns) == RESULT_COLUMNS
        assert not frame["error_code"].eq("DeploymentNotFound").any(), frame[["name", "surface", "error_code"]]
        tx = frame[frame["kind"] == "transcription"]
        assert set(tx["name"]) == {"tx-whisper", "tx-4o"}
        assert dict(zip(tx["name"], tx["model"], strict=False)) == {"tx-whisper": "gpt-realtime-whisper",
                                                                     "tx-4o": "gpt-4o-transcribe"}
        in_session = tx[tx["surface"].str.startswith("in-session")]
        assert set(in_session["voice"]) == {"prod-voice"} and set(in_session["session_model"]) == {"gpt-realtime"}
        # The azure profile follows the reports: gpt-realtime-whisper is not an in-session transcriber on Azure
        # (every turn fails, Microsoft Q&A answers/a/12783039); gpt-4o-transcribe is (documented).
        outcomes = in_session.groupby("name")["outcome"].unique().map(list).to_dict()
        assert outcomes == {"tx-whisper": ["transcription-failed"], "tx-4o": ["ok"]}, outcomes

    def test_the_matrix_has_one_row_per_deployment_and_per_workaround(self, probed):
        result, _ = probed
        m = result.matrix()
        assert list(m.index) == ["tx-whisper", "tx-4o", "gpt-realtime-translate", "azure-speech", "gpt-live-1"]
        assert list(m.columns) == list(ALL_SURFACES)
        assert m.loc["tx-whisper", "session-model"] == "handshake-refused 400"
        assert m.loc["tx-whisper", "in-session-ga"] == "transcription-failed server_error"
        assert m.loc["tx-whisper", "transcription-ga"] == "ok (streams)"
        assert m.loc["tx-4o", "translation"] == NOT_TRIED
        assert m.loc["gpt-realtime-translate", "translation"] == "not-applicable"
        assert m.loc["azure-speech", "azure-speech"] == "not-applicable"  # Azure Speech needs AZURE_SPEECH_*

    def test_answers_give_the_seed_question_one_line_per_deployment(self, probed):
        result, _ = probed
        answers = result.answers()
        assert answers.loc["tx-whisper", "model"] == "gpt-realtime-whisper"
        line = answers.loc["tx-whisper", "answer"]
        assert line.startswith("in-session: accepted but every turn fails (Input transcription failed for item"), line
        assert "transcription session: works (streams)" in line
        assert "as the session model: refused (400 OpperationNotSupported)" in line  # Azure's reported spelling
        assert "announced shutdown 2027-02-26" in answers.loc["tx-4o", "answer"]
        assert answers.loc["azure-speech", "answer"].startswith("Azure Speech ConversationTranscriber: not tried")

    def test_every_error_has_its_raw_event_and_a_diagnosis(self, probed):
        result, _ = probed
        frame = result.frame
        refused = frame[frame["surface"] == "session-model"]
        assert len(refused) == 2
        for _, row in refused.iterrows():
            assert row["error_event"]["type"] == "rtlab.handshake_failed" and row["error_event"]["status"] == 400
            assert row["diagnosis_id"] == "azure_operation_not_supported"
            assert "AZURE_OPENAI_REALTIME_DEPLOYMENT" in row["fix"]
        bad = frame[frame["outcome"] != "ok"]
        assert bad["diagnosis"].notna().all() and bad["fix"].notna().all()
        assert frame.loc[frame["outcome"] == "ok", ["diagnosis", "fix", "error_event"]].isna().all().all()
        diag = result.diagnoses()
        assert len(diag) == len(bad) and {"error_message", "diagnosis", "fix"} <= set(diag.columns)

    def test_the_support_report_carries_the_raw_error_and_its_diagnosis(self, probed):
        report = probed[0].support_report()
        assert "deployments: tx-whisper (gpt-realtime-whisper), tx-4o (gpt-4o-transcribe)" in report
        assert "voice:  prod-voice" in report
        block = report[report.index("- tx-whisper / session-model"):]
        first, diagnosis, fix = block.splitlines()[:3]
        assert "status=400 code=OpperationNotSupported" in first
        assert diagnosis.strip().startswith("diagnosis: ") and fix.strip().startswith("fix: ")
        assert "- tx-whisper (gpt-realtime-whisper): in-session: accepted but every turn fails" in report

    def test_the_profile_lists_exactly_the_resources_deployments_and_reproduces_it(self, probed, tmp_path):
        result, _ = probed
        path = result.save(tmp_path / "probed.json")
        profile = json.loads(path.read_text())
        assert profile["deployments"] == DEPLOYMENTS  # the voice deployment's model as its sessions named it
        assert profile["date"] == result.when[:10]
        assert {"tx-whisper", "tx-4o"} <= set(profile["transcription"]["realtime_ga"]["models"])  # keyed by deployment
        replica = emulator.start(profile=str(path), api_key=KEY, seed=11)
        try:
            with pytest.MonkeyPatch.context() as mp:
                _documented_env(mp, replica.url)
                again = probe(Target.azure(), surfaces=SURFACES, **FAST)
        finally:
            replica.stop()
        assert again.matrix().equals(result.matrix()[list(SURFACES)].loc[["tx-whisper", "tx-4o"]])


class TestCommandLine:
    def test_rtlab_probe_with_only_the_documented_variables(self, resource, monkeypatch, tmp_path, capsys):
        _documented_env(monkeypatch, resource.url)
        out = tmp_path / "P.json"
        code = main(["probe", "--target", "azure", "--out", str(out), "--speed", "4", "--concurrency", "3"])
        printed = capsys.readouterr()
        assert code == 0, printed.err
        assert "DeploymentNotFound" not in printed.out
        profile = json.loads(out.read_text())
        assert profile["deployments"] == DEPLOYMENTS
        assert profile["date"] == dt.datetime.now(dt.timezone.utc).date().isoformat()
        assert set(profile["session_models"]) >= {"tx-whisper", "tx-4o"}
        report = out.with_suffix(".txt").read_text()
        assert report.strip() in printed.out
        assert "diagnosis: " in printed.out and "fix: " in printed.out
        logs = {p.parent.name for p in out.with_suffix("").rglob("events.jsonl")}
        assert logs == {f"{s}__{n}" for n in ("tx-whisper", "tx-4o") for s in SURFACES}

    def test_a_resource_whose_deployments_are_named_after_their_models(self, monkeypatch, tmp_path, capsys):
        same = {"gpt-realtime": "gpt-realtime", "gpt-realtime-whisper": "gpt-realtime-whisper",
                "gpt-4o-transcribe": "gpt-4o-transcribe"}
        handle = emulator.start(profile=load_profile("azure").with_deployments(same), api_key=KEY, seed=5)
        try:
            _documented_env(monkeypatch, handle.url, voice="gpt-realtime",
                            transcribe="gpt-realtime-whisper,gpt-4o-transcribe")
            out = tmp_path / "same.json"
            code = main(["probe", "--target", "azure", "--out", str(out), "--speed", "4", "--concurrency", "3",
                         "--surface", "session-model", "--surface", "in-session-ga", "--surface", "transcription-ga"])
        finally:
            handle.stop()
        printed = capsys.readouterr()
        assert code == 0, printed.err
        assert "DeploymentNotFound" not in printed.out
        assert json.loads(out.read_text())["deployments"] == same
        assert "- gpt-realtime-whisper: in-session: accepted but every turn fails" in printed.out
        assert "transcription session: works (streams)" in printed.out

    def test_as_a_user_runs_it_against_the_bundled_azure_profile(self, tmp_path):
        """A subprocess, no configuration: the embedded emulator's azure profile (deployments named after models)."""
        out = tmp_path / "azure.json"
        env = {k: v for k, v in os.environ.items() if k not in _ENV_VARS}
        res = subprocess.run([sys.executable, "-m", "rtlab.cli", "probe", "--target", "local-azure", "--model",
                              "gpt-realtime-whisper", "--model", "gpt-4o-transcribe", "--surface", "session-model",
                              "--surface", "in-session-ga", "--speed", "inf", "--out", str(out)],
                             capture_output=True, text=True, timeout=300, env=env)
        assert res.returncode == 0, res.stderr
        profile = json.loads(out.read_text())
        assert profile["session_models"]["gpt-realtime-whisper"]["status"] == 400
        assert profile["deployments"] == dict(load_profile("azure").deployments)
        assert load_profile(out).session_outcome("gpt-realtime-whisper").outcome == "handshake_error"
        report = out.with_suffix(".txt").read_text()
        assert "OpperationNotSupported" in report and f"voice:  {DEFAULT_VOICE_MODEL}" in report
        assert "Traceback" not in res.stderr

    def test_a_resource_without_transcription_deployments_is_one_line(self, monkeypatch, tmp_path, capsys):
        _documented_env(monkeypatch, "https://res.openai.azure.com")
        monkeypatch.delenv("AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS")
        assert main(["probe", "--target", "azure", "--out", str(tmp_path / "p.json")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS=name=model" in err

    def test_bad_output_path_is_one_line(self, tmp_path, capsys):
        assert main(["probe", "--out", str(tmp_path / "p.yaml")]) == 2
        assert "--out must name a .json" in capsys.readouterr().err


# ==============================================================================================================
# Errors and their diagnoses
# ==============================================================================================================
class TestDiagnoses:
    def test_a_configured_deployment_the_resource_lacks(self, resource, monkeypatch):
        _documented_env(monkeypatch, resource.url, transcribe="tx-4o=gpt-4o-transcribe,tx-gone=gpt-4o-mini-transcribe")
        result = probe(Target.azure(), ["tx-gone"], surfaces=("session-model", "in-session-ga"), **FAST)
        rows = result.frame.set_index("surface")
        assert rows.loc["session-model", "error_code"] == "DeploymentNotFound"
        assert rows.loc["session-model", "diagnosis_id"] == "azure_deployment_not_found"
        assert rows.loc["in-session-ga", "outcome"] == "transcription-failed"
        assert rows.loc["in-session-ga", "error_event"]["type"] == \
            "conversation.item.input_audio_transcription.failed"
        assert rows.loc["in-session-ga", "diagnosis"] and rows.loc["in-session-ga", "fix"]
        assert result.answers().loc["tx-gone", "answer"].startswith("in-session: accepted but every turn fails (")

    def test_a_wrong_key_refuses_every_surface_and_azure_speech_too(self, resource):
        target = Target.local(resource.url, provider_profile="azure", api_key=WRONG_KEY,
                              realtime_deployment="prod-voice", deployments=TX_ENV)
        result = probe(target, ["tx-4o"], surfaces=("in-session-ga", "azure-speech"), **FAST)
        rows = result.frame.set_index("surface")
        assert (rows.loc["in-session-ga", "outcome"], rows.loc["in-session-ga", "http_status"]) == \
            ("handshake-refused", 401)
        assert rows.loc["in-session-ga", "diagnosis_id"] != "unknown"
        speech = rows.loc["azure-speech"]
        assert speech["outcome"] == "error-event" and speech["error_event"]["type"] == "azure_speech.canceled"
        assert speech["diagnosis"] and speech["fix"]


# ==============================================================================================================
# The workarounds and GPT-Live, offline
# ==============================================================================================================
class TestWorkarounds:
    def test_translation_azure_speech_and_gpt_live_each_get_a_row(self, tmp_path):
        target = Target.local(seed=3)
        try:
            result = probe(target, surfaces=("in-session-ga", "in-session-beta", *("translation", "azure-speech",
                                                                                   "live")),
                           models=["gpt-4o-transcribe"], out=tmp_path, **FAST)
        finally:
            target.stop()
        frame = result.frame.set_index("kind")
        for kind in ("translation", "azure-speech", "live"):
            row = frame.loc[kind]
            assert row["outcome"] == "ok", (kind, row["error_message"])
            assert row["n_deltas"] > 0 and "weather" in row["transcript"].lower()
        assert frame.loc["live", "session_model"] == "gpt-live-1"
        answers = result.answers()["answer"]
        assert answers["gpt-live-1"].startswith("GPT-Live: works, its input transcript arrives")
        assert answers["gpt-realtime-translate"].startswith("translation sidecar: works")
        assert answers["azure-speech"].startswith("Azure Speech ConversationTranscriber: works")
        # OpenAI: the beta shape is tried once, in its own row; no model has a beta cell of its own
        m = result.matrix()
        assert m.loc["gpt-4o-transcribe", "in-session-beta"] == NOT_TRIED
        assert m.loc[BETA_ROW, "in-session-beta"] != NOT_TRIED
        assert (frame.loc["dialect", "name"], frame.loc["dialect", "model"]) == (BETA_ROW, "whisper-1")
        dirs = {p.parent.name for p in Path(tmp_path).rglob("events.jsonl")}
        assert {"translation__gpt-realtime-translate", "azure-speech__azure-speech", "live__gpt-live-1"} <= dirs


# ==============================================================================================================
# Frames built elsewhere (teaching exercises, plots) still read
# ==============================================================================================================
def test_a_frame_with_only_the_original_columns_still_makes_a_matrix():
    import pandas as pd

    frame = pd.DataFrame([{"model": "m1", "surface": "session-model", "outcome": "handshake-refused",
                           "http_status": 400, "error_code": "X", "deltas_stream": False},
                          {"model": "m1", "surface": "in-session-ga", "outcome": "ok", "http_status": None,
                           "error_code": None, "deltas_stream": True}])
    result = ProbeResult(frame, target=None, clip="")
    assert result.matrix().to_dict("index") == {"m1": {"session-model": "handshake-refused 400",
                                                       "in-session-ga": "ok (streams)"}}
    assert result.answers().loc["m1", "answer"] == "in-session: works (streams); as the session model: refused (400 X)"


# ==============================================================================================================
# Secrets never appear
# ==============================================================================================================
def _leaks(text: str, secret: str) -> bool:
    return secret in text or secret[6:24] in text


def test_no_key_or_token_in_any_output(resource, monkeypatch, tmp_path, capsys):
    """Key (CLI, environment), Entra ID token (API) and a wrong key: in no file the probe writes, nor in what it
    prints, its frame or its report."""
    from rtlab.auth import TokenProvider

    _documented_env(monkeypatch, resource.url)
    cli_out = tmp_path / "cli" / "P.json"
    assert main(["probe", "--target", "azure", "--out", str(cli_out), "--speed", "4", "--concurrency", "3",
                 "--surface", "session-model", "--surface", "in-session-ga", "--surface", "azure-speech"]) == 0
    printed = capsys.readouterr()

    monkeypatch.delenv("AZURE_OPENAI_API_KEY")
    token_target = Target.azure(credential=TokenProvider(lambda: TOKEN))
    token_result = probe(token_target, ["tx-4o"], surfaces=("in-session-ga", "in-session-beta", "live"),
                         out=tmp_path / "token", **FAST)
    token_result.save(tmp_path / "token.json")
    wrong = Target.local(resource.url, provider_profile="azure", api_key=WRONG_KEY, realtime_deployment="prod-voice",
                         deployments=TX_ENV)
    wrong_result = probe(wrong, ["tx-4o"], surfaces=("in-session-ga", "azure-speech"), out=tmp_path / "wrong", **FAST)
    wrong_result.save(tmp_path / "wrong.json")
    assert (token_result.frame.set_index("surface").loc["in-session-ga", "outcome"]) == "ok"  # the token worked
    assert set(wrong_result.frame["outcome"]) == {"handshake-refused", "error-event"}  # the wrong key did not

    texts = [printed.out, printed.err]
    for result in (token_result, wrong_result):
        texts += [result.support_report(), result.frame.to_json(), repr(result), result.matrix().to_string(),
                  result.answers().to_string()]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 10
    texts += [p.read_bytes().decode("utf-8", "replace") for p in files]
    for secret in (KEY, TOKEN, WRONG_KEY):
        assert not any(_leaks(t, secret) for t in texts), secret[:6]
