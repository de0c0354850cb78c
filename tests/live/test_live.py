"""Live: conformance, probe and compare against the real account in the environment (``make live``).

Each case streams the one short bundled clip once per session; voice sessions are configured so the model never
answers (``create_response=False``), so only input audio and transcription are billed. Every received server event
must validate against the openai SDK's models. Failures print rtlab's diagnosis beside the raw error.
"""

from __future__ import annotations

import pytest
from conformance import count_server_events, server_event_problems
from liveconfig import CLIP

from rtlab.analysis import turns as turns_of
from rtlab.analysis.diagnose import diagnose
from rtlab.config import SessionConfig, TurnDetection
from rtlab.data import clip_path
from rtlab.protocol import TRANSCRIPTION_MODELS
from rtlab.runs import IN_SESSION, SIDECAR_LOCAL, SIDECAR_TRANSCRIPTION, run_session

pytestmark = pytest.mark.live

RUN = {"speed": 2.0, "progress": False}


def _no_reply_voice(provider, transcription: str) -> SessionConfig:
    return SessionConfig.realtime(model=provider.voice_model, transcription=transcription,
                                  turn_detection=TurnDetection.server_vad(create_response=False))


def _transcription_config(provider, name: str) -> SessionConfig:
    capability = TRANSCRIPTION_MODELS.get(provider.model_of(name))
    vad = capability is None or capability.vad_in_transcription_session
    return SessionConfig.transcription(model=name, turn_detection=TurnDetection.server_vad() if vad else None)


def _explain(log) -> str:
    return "\n".join(diagnose(log).lines()) or "(no error events)"


def _conforms(log, target, source=None):
    problems = server_event_problems(log, target.shape, source=source)
    assert count_server_events(log, source=source) > 0, "no server event received"
    assert problems == [], "server events the SDK models reject:\n" + "\n".join(problems)


def test_voice_session_with_in_session_transcription(provider, tmp_path):
    target = provider.target()
    log = run_session(target, _no_reply_voice(provider, provider.transcribe_model), clip_path(CLIP),
                      out=tmp_path, **RUN)
    assert len(diagnose(log)) == 0, _explain(log)
    turns = turns_of(log)
    assert len(turns) >= 1 and (turns["status"] == "completed").all(), _explain(log)
    assert turns["transcript"].str.strip().str.len().gt(0).all(), turns[["item_id", "status", "transcript"]]
    _conforms(log, target)


def test_transcription_session(provider, tmp_path):
    target = provider.target()
    log = run_session(target, _transcription_config(provider, provider.transcribe_model), clip_path(CLIP),
                      out=tmp_path, **RUN)
    assert len(diagnose(log)) == 0, _explain(log)
    turns = turns_of(log)
    assert len(turns) >= 1 and turns["transcript"].str.strip().str.len().gt(0).all(), _explain(log)
    _conforms(log, target)


def test_probe_small_model_list(provider, tmp_path):
    from rtlab.probe import probe

    target = provider.target()
    result = probe(target, provider.probe_models, surfaces=("in-session-ga", "transcription-ga"), clip=CLIP,
                   out=tmp_path / "probe", speed=RUN["speed"], concurrency=1, progress=False,
                   voice_model=provider.voice_model)
    frame = result.frame
    print(result.matrix().to_string())
    print(result.answers().to_string())
    for _, row in frame[frame["outcome"] != "ok"].iterrows():  # the raw error beside rtlab's diagnosis
        print(f"{row['name']} / {row['surface']}: {row['outcome']} {row['error_code']} {row['error_message']}\n"
              f"    diagnosis: {row['diagnosis']}\n    fix: {row['fix']}")
    assert len(frame) == len(provider.probe_models) * 2
    assert set(frame["voice"].dropna()) <= {target.deployment_for(provider.voice_model, kind="voice")}
    if provider.name == "azure":  # the resource's deployments, never a model-named guess
        assert set(frame["name"]) <= set(provider.deployments), frame[["name", "model"]]
        assert not frame["error_code"].eq("DeploymentNotFound").any(), frame[["name", "surface", "error_message"]]
    # every attempt got an answer from the service (ok, or a refusal/error it sent), none timed out
    assert not (frame["outcome"] == "no-answer").any(), frame[["name", "surface", "outcome", "error_message"]]
    assert (frame["outcome"] == "ok").any(), frame[["name", "surface", "outcome", "error_code"]]
    assert frame.loc[frame["outcome"] != "ok", "diagnosis"].notna().all()
    result.save(tmp_path / "profile.json")  # the saved profile round-trips through the emulator's loader
    from rtlab.emulator.profiles import load_profile

    profile = load_profile(tmp_path / "profile.json")
    if provider.name == "azure":
        assert set(provider.deployments) <= set(profile.deployments)


def test_compare_in_session_vs_sidecars(provider, tmp_path):
    from rtlab.compare import compare

    target = provider.target()
    sidecar_model = provider.transcribe_model
    turns, logs = compare([clip_path(CLIP)], target=target,
                          voice_config=_no_reply_voice(provider, provider.transcribe_model),
                          sidecars=[f"transcription:{sidecar_model}", "local"], out=tmp_path, **RUN)
    (_, log), = logs
    assert len(diagnose(log)) == 0, _explain(log)
    assert {IN_SESSION, SIDECAR_TRANSCRIPTION, SIDECAR_LOCAL} <= set(turns["source"]), turns[["source", "status"]]
    remote = turns[turns["source"] != SIDECAR_LOCAL]
    assert remote["transcript"].str.strip().str.len().gt(0).all(), remote[["source", "status", "transcript"]]
    for source in (IN_SESSION, SIDECAR_TRANSCRIPTION):
        _conforms(log, target, source=source)
