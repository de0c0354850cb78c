"""Probe an endpoint: which transcription deployments work on which surface, which workarounds are available,
and why not (layer: views/cli — it drives :mod:`rtlab.runs` and reads :mod:`rtlab.analysis`).

The probe asks the *resource*, not the catalogue. What it tries:

==================  ================================================================================================
provider            names tried on the transcription surfaces
==================  ================================================================================================
Azure               each configured transcription deployment (``AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS``, i.e.
                    ``target.deployments``), in voice sessions on the configured voice deployment
                    (``AZURE_OPENAI_REALTIME_DEPLOYMENT``). No deployment name is ever made up from a model name. A
                    local emulator with no deployment configured is asked for its profile's deployments (a
                    resource whose names equal its models).
OpenAI              the current transcription models of :data:`rtlab.protocol.catalogue.TRANSCRIPTION_MODELS`
                    (dated snapshots left out) in voice sessions on the target's voice model.
==================  ================================================================================================

``models=`` (``--model``) replaces that list; on Azure a model name maps to the deployment serving it.

Surfaces (one session each, the short bundled clip streamed once):

=======================  ===========================================================================================
surface                  what is tried
=======================  ===========================================================================================
``session-model``        connect a voice session with the name itself as ``?model=`` (the seed question's mix-up)
``in-session-ga``        a voice session (GA dialect) with the name as its input audio transcription model
``in-session-beta``      the same in the Azure preview dialect (beta shape; deprecated by Azure)
``transcription-ga``     a transcription session (``intent=transcription``, ``session.type=transcription``)
``transcription-beta``   an Azure preview ``transcription_session.update`` session
``translation``          the translation sidecar: a ``gpt-realtime-translate`` session (Azure: its deployment) with
                         the source transcript on (:class:`rtlab.runs.translation.TranslationLeg`)
``azure-speech``         the Azure Speech sidecar: the Speech SDK's ConversationTranscriber
                         (:class:`rtlab.runs.azure_speech.AzureSpeechLeg`)
``live``                 a GPT-Live session (``gpt-live-1``; Azure: its deployment), and whether its input
                         transcript arrives (:class:`rtlab.runs.live.LiveLeg`)
=======================  ===========================================================================================

OpenAI retired the beta shape in 2026 (``beta_api_shape_disabled``, reported). On OpenAI the beta surfaces are
therefore not tried per model: one ``in-session-beta`` attempt, in the row ``beta dialect``, shows what the
service answers, and the other models' beta cells stay empty. The workaround surfaces are one row each.

Voice sessions are configured with ``create_response: false``: the probe asks about transcription, so the model
never answers (no output audio is billed, and a probe of many deployments stays short).

Each attempt is one run of :mod:`rtlab.runs` (one mechanism for probing and measuring). Results come back as a
tidy frame (one row per attempt, :data:`RESULT_COLUMNS`), with the raw error event of every failed attempt and
rtlab's diagnosis beside it (:func:`rtlab.analysis.diagnose.diagnose`), and can be saved as a capability profile
that ``rtlab serve --profile FILE`` loads to reproduce the endpoint offline.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as _dt
import json
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import ProbeError, RtlabError
from .secrets import redact

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .log import EventLog
    from .runs import Leg
    from .targets import Target

__all__ = [
    "ALL_SURFACES", "BETA_ROW", "DEFAULT_MODELS", "RESULT_COLUMNS", "SURFACES", "WORKAROUNDS", "Attempt",
    "ProbeResult", "Resource", "aprobe", "classify", "current_models", "plan", "probe", "resource_of",
]

#: Transcription surfaces: one session per (name, surface).
SURFACES: tuple[str, ...] = (
    "session-model",
    "in-session-ga",
    "in-session-beta",
    "transcription-ga",
    "transcription-beta",
)
#: The seed question's workarounds and GPT-Live: one session each.
WORKAROUNDS: tuple[str, ...] = ("translation", "azure-speech", "live")
ALL_SURFACES: tuple[str, ...] = SURFACES + WORKAROUNDS
#: Row label of the single beta-dialect attempt on OpenAI.
BETA_ROW = "beta dialect"
#: Matrix cell of a (name, surface) pair that was not tried.
NOT_TRIED = "—"
#: Transcription model of the one beta-dialect attempt on OpenAI (one the beta shape took, so the only refusal left
#: is the retirement itself).
BETA_MODEL = "whisper-1"
#: Target language of the translation attempt.
TRANSLATION_LANGUAGE = "es"

Kind = Literal["transcription", "dialect", "translation", "azure-speech", "live"]

#: Dialect each transcription surface speaks, per provider.
_SURFACE_DIALECT = {
    ("openai", "ga"): "openai-ga",
    ("openai", "beta"): "openai-beta",
    ("azure", "ga"): "azure-ga",
    ("azure", "beta"): "azure-preview",
}

RESULT_COLUMNS = [
    "name",            # what was sent: the Azure deployment, the OpenAI model, or the workaround's label
    "model",           # the model behind it (as configured), e.g. gpt-realtime-whisper for tx-whisper
    "kind",            # transcription | dialect | translation | azure-speech | live
    "surface", "dialect",
    "voice",           # the voice deployment/model of the session (in-session and session surfaces)
    "session_model",   # the model the service named in session.created/started (observed)
    "outcome", "http_status", "error_code", "error_message",
    "deltas_stream", "n_deltas", "completed", "first_delta_ms", "final_ms", "transcript",
    "error_event",     # the raw error event (redacted), as recorded: what diagnose() reads
    "diagnosis_id", "diagnosis", "fix",
]

_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def current_models() -> tuple[str, ...]:
    """The current transcription models of the catalogue (dated snapshots left out), in catalogue order."""
    from .protocol.catalogue import TRANSCRIPTION_MODELS

    return tuple(m for m in TRANSCRIPTION_MODELS if not _DATED.search(m))


DEFAULT_MODELS: tuple[str, ...] = current_models()


# ==============================================================================================================
# What to try: the resource and the plan
# ==============================================================================================================
@dataclass(frozen=True)
class Resource:
    """What the probe tries on one endpoint.

    Attributes
    ----------
    provider
        ``"openai"`` or ``"azure"`` (an emulated Azure resource counts as Azure).
    voice
        The voice deployment (Azure) or model (OpenAI) of every voice session.
    names
        ``{name sent: model behind it}`` for the transcription surfaces.
    deployments
        Azure: the resource's deployments ``{name: model}`` as configured (what a saved profile lists); None on
        OpenAI.
    translation, live
        The translation / GPT-Live deployment or model to try, or None with the reason in ``*_note``.
    origin
        Where the names came from: ``"configured"`` (environment or arguments), ``"emulator profile"`` or
        ``"catalogue"``.
    """

    provider: Literal["openai", "azure"]
    voice: str
    names: Mapping[str, str]
    deployments: Mapping[str, str] | None
    translation: str | None
    live: str | None
    translation_note: tuple[str, str] | None = None  # (cause, fix) when translation is None
    live_note: tuple[str, str] | None = None
    origin: str = "configured"


@dataclass(frozen=True)
class Attempt:
    """One session of the probe: ``name`` (model ``model``) on ``surface``."""

    name: str
    model: str | None
    kind: Kind
    surface: str
    note: tuple[str, str] | None = None  # (cause, fix): not tried, and why


def _provider_of(target: Target | None) -> str | None:
    if target is None:
        return None
    return "azure" if target.uses_deployments else "openai"


def _profile_deployments(target: Target) -> dict[str, str] | None:
    """The deployments of the emulator profile a local target plays (None when it has none or is not local)."""
    if not target.is_local:
        return None
    from .emulator.profiles import load_profile

    try:
        profile = load_profile(target.provider_profile or "openai")
    except RtlabError:
        return None
    return dict(profile.deployments) if profile.deployments is not None else None


def _api(model: str | None) -> str | None:
    from .protocol.catalogue import api_of

    return api_of(model)


def _serving(name: str, known: Mapping[str, str]) -> str | None:
    """``name`` when it is a deployment of ``known``, else the one deployment serving model ``name``, else None."""
    if name in known:
        return name
    serving = [d for d, m in known.items() if m == name]
    return serving[0] if serving else None


def resource_of(target: Target, models: Sequence[str] | None = None, *, voice_model: str | None = None,
                translation_model: str | None = None, live_model: str | None = None) -> Resource:
    """What to try on ``target`` (see the module docstring).

    Raises
    ------
    TargetError
        Azure without a voice deployment (``AZURE_OPENAI_REALTIME_DEPLOYMENT``), or a ``voice_model`` that is
        neither a deployment nor a model one serves.
    ProbeError
        Azure with no transcription deployment configured and no ``models``.
    """
    from .protocol import translation as T
    from .protocol.catalogue import DEFAULT_VOICE_MODEL
    from .runs.translation import AZURE_DEPLOYMENT_ENV

    provider = _provider_of(target)
    if provider == "openai":
        names = {m: m for m in (models or DEFAULT_MODELS)}
        return Resource("openai", target.deployment_for(voice_model, kind="voice") or DEFAULT_VOICE_MODEL, names,
                        None, translation_model or T.MODEL, live_model or "gpt-live-1", origin="catalogue")

    configured = target.deployments is not None or target.realtime_deployment is not None
    known = target.known_deployments()
    origin = "configured"
    if not configured:
        from_profile = _profile_deployments(target)
        if from_profile:
            known, origin = from_profile, "emulator profile"
    if voice_model is not None:
        voice = _serving(voice_model, known) or target.deployment_for(voice_model, kind="voice")
    elif configured or not known:
        voice = target.deployment_for(None, kind="voice")
    else:  # an emulated resource whose names equal its models: its own voice deployment
        voice = next((d for d, m in known.items() if m == DEFAULT_VOICE_MODEL), None) or next(
            (d for d, m in known.items() if _api(m) == "realtime"), None) or target.deployment_for(None, kind="voice")
    assert voice is not None
    if models:
        names = {}
        for m in models:
            name = _serving(m, known) or target.deployment_for(m, kind="transcription") or m
            names[name] = known.get(name, m)
    else:
        names = {d: m for d, m in known.items() if d != voice and _api(m) in ("transcription", None)}

    translation = None if translation_model is None else _serving(translation_model, known) or translation_model
    translation_note = None
    env_translation = os.environ.get(AZURE_DEPLOYMENT_ENV) or None
    deployments = dict(known)
    if translation is None:
        translation = env_translation or next((d for d, m in known.items() if _api(m) == "translation"), None)
        if env_translation:
            deployments.setdefault(env_translation, T.MODEL)
    if translation is None:
        translation_note = (
            f"no {T.MODEL} deployment configured",
            f"rtlab never guesses deployment names: set {AZURE_DEPLOYMENT_ENV}=NAME to the name of your {T.MODEL} "
            "deployment (or pass translation_model= / --translation-model)")
    live = None if live_model is None else _serving(live_model, known) or live_model
    live_note = None
    if live is None:
        live = next((d for d, m in known.items() if _api(m) == "live"), None)
    if live is None:
        live_note = (
            "no GPT-Live deployment configured",
            "rtlab never guesses deployment names: add NAME=gpt-live-1 for your GPT-Live deployment to "
            "AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS (rtlab reads every deployment listed there), or pass live_model= / "
            "--live-model")
    return Resource("azure", voice, names, deployments, translation, live, translation_note, live_note, origin)


def plan(resource: Resource, surfaces: Sequence[str] = ALL_SURFACES) -> list[Attempt]:
    """The attempts for ``surfaces`` on ``resource``, in order (see the module docstring)."""
    from .protocol import translation as T

    bad = [s for s in surfaces if s not in ALL_SURFACES]
    if bad:
        raise ProbeError(f"unknown probe surface(s) {bad}; use some of {', '.join(ALL_SURFACES)}")
    attempts: list[Attempt] = []
    tx_surfaces = [s for s in SURFACES if s in surfaces]
    beta_once = resource.provider == "openai" and any(s.endswith("-beta") for s in tx_surfaces)
    if resource.provider == "openai":
        tx_surfaces = [s for s in tx_surfaces if not s.endswith("-beta")]
    if tx_surfaces and not resource.names:
        raise ProbeError("no transcription deployment to probe: this Azure resource has none configured. Set "
                         "AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS=name=model,... (e.g. "
                         "'tx-whisper=gpt-realtime-whisper,tx-4o=gpt-4o-transcribe'), or name them with --model")
    for name, model in resource.names.items():
        attempts += [Attempt(name, model, "transcription", s) for s in tx_surfaces]
    if beta_once:
        attempts.append(Attempt(BETA_ROW, BETA_MODEL, "dialect", "in-session-beta"))
    if "translation" in surfaces:
        attempts.append(Attempt(resource.translation or T.MODEL, T.MODEL, "translation", "translation",
                                resource.translation_note if resource.translation is None else None))
    if "azure-speech" in surfaces:
        attempts.append(Attempt("azure-speech", "azure-speech", "azure-speech", "azure-speech"))
    if "live" in surfaces:
        model = (resource.deployments or {}).get(resource.live or "", resource.live)
        attempts.append(Attempt(resource.live or "gpt-live-1", model or "gpt-live-1", "live", "live",
                                resource.live_note if resource.live is None else None))
    return attempts


# ==============================================================================================================
# Running one attempt
# ==============================================================================================================
def surface_target(target: Target, surface: str) -> Target:
    """The target re-pointed at the dialect a surface speaks (same endpoint and credentials)."""
    provider = _provider_of(target) or "openai"
    shape = "beta" if surface.endswith("-beta") else "ga"
    dialect = _SURFACE_DIALECT[(provider, shape)]
    return target if target.dialect == dialect else target.with_dialect(dialect)


def _realtime_leg(target: Target, attempt: Attempt, voice: str) -> Leg:
    from .config import SessionConfig, Transcription, TurnDetection
    from .protocol.catalogue import TRANSCRIPTION_MODELS
    from .runs import RemoteLeg

    t = surface_target(target, attempt.surface)
    source = f"probe:{attempt.surface}"
    quiet = TurnDetection.server_vad(create_response=False)
    if attempt.surface == "session-model":
        config = SessionConfig.realtime(model=attempt.name, transcription=None, turn_detection=quiet)
        return RemoteLeg(source, t, config, validate=False, connect_model=attempt.name)
    if attempt.surface.startswith("in-session"):
        config = SessionConfig.realtime(model=voice, transcription=Transcription(model=attempt.name),
                                        turn_detection=quiet)
        return RemoteLeg(source, t, config, validate=False, connect_model=voice)
    capability = TRANSCRIPTION_MODELS.get(attempt.model or "")
    vad = capability is None or capability.vad_in_transcription_session
    config = SessionConfig.transcription(model=attempt.name,
                                         turn_detection=TurnDetection.server_vad() if vad else None)
    # The Azure preview client needs the deployment in its URL even for a transcription session.
    connect = attempt.name if t.dialect == "azure-preview" else None
    return RemoteLeg(source, t, config, validate=False, connect_model=connect)


def _ga(target: Target) -> Target:
    dialect = "azure-ga" if target.uses_deployments else "openai-ga"
    return target if target.dialect == dialect else target.with_dialect(dialect)


def _speech_target(target: Target) -> Any:
    """The Azure Speech resource to try, or (cause, fix) when there is none."""
    from .runs.azure_speech import AzureSpeechTarget

    if target.is_local:
        key = target.api_key.reveal() if target.api_key else None
        return AzureSpeechTarget.local(target.url, api_key=key)
    wanted = ("AZURE_SPEECH_REGION", "AZURE_SPEECH_ENDPOINT", "AZURE_SPEECH_KEY", "AZURE_SPEECH_RESOURCE_ID")
    if not any(os.environ.get(v) for v in wanted):
        return ("no Azure Speech resource configured",
                "Azure Speech is a separate service from Azure OpenAI: set AZURE_SPEECH_KEY and AZURE_SPEECH_REGION "
                "(or AZURE_SPEECH_ENDPOINT; keyless: AZURE_SPEECH_RESOURCE_ID with AZURE_SPEECH_REGION)")
    try:
        return AzureSpeechTarget.from_env()
    except RtlabError as exc:
        return (f"the Azure Speech settings are incomplete: {exc}", "complete the AZURE_SPEECH_* variables")


def _leg(target: Target, attempt: Attempt, voice: str) -> Leg | tuple[str, str]:
    """The leg of one attempt, or (cause, fix) when it cannot be tried."""
    if attempt.note is not None:
        return attempt.note
    source = f"probe:{attempt.surface}"
    if attempt.kind in ("transcription", "dialect"):
        return _realtime_leg(target, attempt, voice)
    if attempt.kind == "translation":
        from .runs.translation import TranslationLeg

        return TranslationLeg(source, _ga(target), language=TRANSLATION_LANGUAGE, model=attempt.name,
                              validate=False)
    if attempt.kind == "azure-speech":
        from .runs.azure_speech import AzureSpeechLeg

        speech = _speech_target(target)
        return speech if isinstance(speech, tuple) else AzureSpeechLeg(source, speech)
    from .runs.live import LiveConfig, LiveLeg

    try:
        return LiveLeg(_ga(target), LiveConfig(model=attempt.name), source=source)
    except RtlabError as exc:  # a name that is not a GPT-Live model: refused before sending
        return (str(exc), "name a GPT-Live deployment (its model gpt-live-1 or gpt-live-1.1)")


def _row(attempt: Attempt, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(RESULT_COLUMNS)
    row.update(name=attempt.name, model=attempt.model, kind=attempt.kind, surface=attempt.surface,
               deltas_stream=False, n_deltas=0, completed=False)
    row.update(values)
    return row


def _safe_dirname(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text)[:80] or "_"


async def _run_attempt(target: Target, attempt: Attempt, audio: Any, *, voice: str, out: Path | None,
                       options: Any, provider: str) -> dict:
    from .runs import arun_legs

    uses_voice = attempt.kind in ("transcription", "dialect")
    try:
        leg = _leg(target, attempt, voice)
    except RtlabError as exc:  # e.g. a name the target cannot map: the endpoint was not asked
        leg = (str(exc), "name a deployment of this resource (see AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS)")
    if isinstance(leg, tuple):
        cause, fix = leg
        return _row(attempt, outcome="not-applicable", error_message=redact(cause), diagnosis_id="not-applicable",
                    diagnosis=redact(cause), fix=fix)
    dialect = getattr(getattr(leg, "target", None), "dialect", None)
    row = _row(attempt, dialect=dialect,
               voice=voice if uses_voice and attempt.surface != "session-model" else None)
    log_dir = None if out is None else out / _safe_dirname(f"{attempt.surface}__{attempt.name}")
    try:
        log = await arun_legs(audio, [leg], out=log_dir, options=options,
                              meta={"probe": {"name": attempt.name, "model": attempt.model,
                                              "surface": attempt.surface, "dialect": dialect}})
    except RtlabError as exc:
        row.update(outcome="no-answer", error_message=redact(str(exc)))
    else:
        row.update(classify(log, leg.source, kind=attempt.kind))
    row.update(_diagnosis(row, provider))
    return row


# ==============================================================================================================
# Reading one attempt's log
# ==============================================================================================================
_ERROR_TYPE = {
    "handshake-refused": ("rtlab.handshake_failed",),
    "error-event": ("error", "azure_speech.canceled"),
    "transcription-failed": ("conversation.item.input_audio_transcription.failed",),
    "not-applicable": ("rtlab.leg_error",),
}
_TX_PREFIX = "conversation.item.input_audio_transcription."


def classify(log: EventLog, source: str | None = None, *, kind: str = "transcription") -> dict:
    """Read one probe run's log: accepted or the exact error, whether text streams, latency, the raw error event.

    ``kind`` says which family the run's source belongs to (``transcription``/``dialect``: a Realtime session;
    ``translation``, ``azure-speech``, ``live``).
    """
    frame = log.to_frame()
    if source is None:
        source = str(frame["source"].iloc[0]) if len(frame) else ""
    frame = frame[frame["source"] == source]
    if kind == "translation":
        from .analysis.translation import translation_probe_row

        out = translation_probe_row(frame, source)
    elif kind == "live":
        from .analysis.live import classify_live

        out = classify_live(frame, source)
        out["session_model"] = out.pop("model", None)
        out.pop("emulated", None)
    elif kind == "azure-speech":
        out = _classify_azure_speech(frame)
    else:
        out = _classify_realtime(frame)
    out.update(_latency(log, source))
    out["error_event"] = _error_event(frame, out.get("outcome"))
    for key in ("error_message", "transcript"):
        if isinstance(out.get(key), str):
            out[key] = redact(out[key])
    return out


def _classify_realtime(frame: pd.DataFrame) -> dict:
    server = frame[frame["direction"] == "server"]
    out: dict[str, Any] = {}
    created = server[server["type"] == "session.created"]
    if len(created):
        out["session_model"] = (created["event"].iloc[0].get("session") or {}).get("model")
    hs = server[server["type"] == "rtlab.handshake_failed"]
    if len(hs):
        ev = hs.iloc[0]["event"]
        return {"outcome": "handshake-refused", "http_status": ev.get("status"), "error_code": ev.get("code"),
                "error_message": ev.get("message"), "completed": False, "n_deltas": 0, "deltas_stream": False}
    errors = server[server["type"] == "error"]
    failed = server[server["type"] == _TX_PREFIX + "failed"]
    completed = server[server["type"] == _TX_PREFIX + "completed"]
    deltas = server[server["type"] == _TX_PREFIX + "delta"]
    out["completed"] = bool(len(completed))
    out["n_deltas"] = int(len(deltas))
    out["transcript"] = " ".join(str(e.get("transcript") or "").strip() for e in completed["event"]).strip() or None
    out["deltas_stream"] = _deltas_before_end(server)
    if len(errors):
        err = errors.iloc[0]["event"].get("error") or {}
        out.update(outcome="error-event", error_code=err.get("code"), error_message=err.get("message"))
    elif len(failed):
        err = failed.iloc[0]["event"].get("error") or {}
        out.update(outcome="transcription-failed", error_code=err.get("code") or err.get("type"),
                   error_message=err.get("message"))
    elif len(completed):
        out["outcome"] = "ok"
    else:
        out["outcome"] = "no-transcript"
    return out


def _deltas_before_end(server: pd.DataFrame) -> bool:
    """Some delta of an item arrived before that item's speech ended (before speech_stopped/commit)."""
    ends: dict[str, float] = {}
    for _, r in server[server["type"].isin(["input_audio_buffer.speech_stopped",
                                            "input_audio_buffer.committed"])].iterrows():
        ends.setdefault(r["item_id"], r["t_ms"])
    deltas = server[server["type"] == _TX_PREFIX + "delta"]
    return any(r["item_id"] in ends and r["t_ms"] < ends[r["item_id"]] for _, r in deltas.iterrows())


def _classify_azure_speech(frame: pd.DataFrame) -> dict:
    """Azure Speech from its recorded SDK events: a final text is ``ok``; ``canceled`` with an error is the error."""
    server = frame[frame["direction"] == "server"].sort_values("seq")
    events = list(server["event"])
    finals = [e for e in events if e.get("type") == "azure_speech.transcribed" and str(e.get("text") or "").strip()]
    partials = server[server["type"] == "azure_speech.transcribing"]
    # Streams: partial text came before the first phrase's final, in the order the service sent them (not a race
    # with the client's own end of audio).
    first_final = next((i for i, e in enumerate(events) if e.get("type") == "azure_speech.transcribed"), math.inf)
    first_partial = next((i for i, e in enumerate(events) if e.get("type") == "azure_speech.transcribing"), math.inf)
    out: dict[str, Any] = {
        "n_deltas": int(len(partials)),
        "deltas_stream": bool(first_partial < first_final),
        "completed": bool(finals),
        "transcript": " ".join(str(e["text"]).strip() for e in finals) or None,
    }
    canceled = next((e for e in events if e.get("type") == "azure_speech.canceled" and e.get("reason") == "Error"),
                    None)
    if canceled is not None:
        out.update(outcome="error-event", error_code=canceled.get("error_code"),
                   error_message=canceled.get("error_details"))
    else:
        out["outcome"] = "ok" if finals else "no-transcript"
    return out


def _error_event(frame: pd.DataFrame, outcome: str | None) -> dict | None:
    """The raw event behind a failed outcome (redacted, JSON-ready), for :func:`rtlab.analysis.diagnose.diagnose`."""
    types = _ERROR_TYPE.get(outcome or "")
    if not types:
        return None
    server = frame[(frame["direction"] == "server") & frame["type"].isin(types)]
    for event in server["event"]:
        if event.get("type") == "azure_speech.canceled" and event.get("reason") != "Error":
            continue
        return json.loads(redact(json.dumps(event, default=str)))
    return None


def _latency(log: EventLog, source: str) -> dict:
    """First text after the start of speech and final after the source's own end of turn, of the first turn."""
    from .analysis import turns as turns_of

    try:
        turns = turns_of(log)
    except RtlabError:
        return {}
    turns = turns[turns["source"] == source]
    if not len(turns):
        return {}
    first = turns.iloc[0]
    return {"first_delta_ms": _num(first.get("first_text_after_start_ms")),
            "final_ms": _num(first.get("final_after_stop_ms"))}


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if f != f else f


_NO_TRANSCRIPT = ("The session accepted the configuration, but no transcript arrived before the run ended.",
                  "Look at the attempt's event log (beside the profile) for what did arrive; run it again with a "
                  "lower --speed or a longer --clip; compare with `rtlab compare CLIP --target ...`.")


def _diagnosis(row: Mapping[str, Any], provider: str) -> dict:
    """``diagnosis_id``, ``diagnosis`` (the cause) and ``fix`` of a non-ok row."""
    outcome = row.get("outcome")
    if outcome == "ok" or outcome == "not-applicable":
        return {}
    if outcome == "no-transcript":
        return {"diagnosis_id": "no-transcript", "diagnosis": _NO_TRANSCRIPT[0], "fix": _NO_TRANSCRIPT[1]}
    from .analysis.diagnose import diagnose

    event = row.get("error_event")
    if isinstance(event, Mapping) and event.get("type") == "azure_speech.canceled":
        event = {"code": event.get("error_code"), "message": event.get("error_details")}
    elif isinstance(event, Mapping) and event.get("type") == "rtlab.leg_error":
        event = {"message": event.get("message")}
    d = diagnose(event if event is not None else (row.get("error_message") or str(outcome)), provider=provider)
    return {"diagnosis_id": d.id, "diagnosis": d.cause, "fix": d.fix}


# ==============================================================================================================
# The probe
# ==============================================================================================================
async def aprobe(target: Target, models: Sequence[str] | None = None, *, surfaces: Sequence[str] = ALL_SURFACES,
                 clip: str | Path = "short", out: str | Path | None = None, speed: float = 1.0,
                 concurrency: int = 4, voice_model: str | None = None, translation_model: str | None = None,
                 live_model: str | None = None, progress: bool = True) -> ProbeResult:
    """Awaitable form of :func:`probe`."""
    import pandas as pd

    from .audio import load
    from .runs import RunOptions

    resource = resource_of(target, models, voice_model=voice_model, translation_model=translation_model,
                           live_model=live_model)
    attempts = plan(resource, tuple(surfaces))
    clip_path = Path(clip) if Path(str(clip)).suffix else _bundled(str(clip))
    audio = load(clip_path)
    out_dir = None if out is None else Path(out)
    options = RunOptions(speed=speed, progress=False, settle_timeout_s=8.0, tail_ms=1200)
    sem = asyncio.Semaphore(max(1, int(concurrency)))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(attempts), unit="session", leave=False)

    async def one(attempt: Attempt) -> dict:
        async with sem:
            row = await _run_attempt(target, attempt, audio, voice=resource.voice, out=out_dir, options=options,
                                     provider=resource.provider)
        if bar is not None:
            bar.update()
        return row

    try:
        rows = await asyncio.gather(*(one(a) for a in attempts))
    finally:
        if bar is not None:
            bar.close()
    frame = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    frame["http_status"] = frame["http_status"].astype("Int64")  # an HTTP status is an integer, or missing
    return ProbeResult(frame, target=target, clip=clip_path.name, provider=resource.provider, voice=resource.voice,
                       deployments=None if resource.deployments is None else dict(resource.deployments))


def probe(target: Target, models: Sequence[str] | None = None, **kw: Any) -> ProbeResult:
    """Probe ``target``: each transcription deployment (Azure) or current model (OpenAI) on each surface, plus the
    translation sidecar, Azure Speech and GPT-Live. Returns a :class:`ProbeResult`.

    Parameters
    ----------
    target : Target
        The endpoint. On Azure its configured deployments are tried (``AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS``) with
        its voice deployment (``AZURE_OPENAI_REALTIME_DEPLOYMENT``).
    models : sequence of str, optional
        Names to try instead (models or deployments; on Azure a model maps to the deployment serving it).
    surfaces : sequence of str
        Some of :data:`ALL_SURFACES` (default: all).
    clip : str or path
        Bundled clip name or audio file (default ``short``).
    out : path, optional
        Folder for one event log per attempt.
    speed : float
        Feed speed (``4``: four times real time; latencies then say little).
    concurrency : int
        Sessions at once.
    voice_model, translation_model, live_model : str, optional
        Override the voice deployment/model, the translation and the GPT-Live deployment/model.
    progress : bool
        Show a progress bar.

    Examples
    --------
    >>> from rtlab import Target, probe                        # doctest: +SKIP
    >>> result = probe(Target.local(provider_profile="azure"))  # doctest: +SKIP
    >>> result.answers()                                       # doctest: +SKIP
    """
    from .runs import run_sync

    return run_sync(aprobe(target, models, **kw))


def _bundled(name: str) -> Path:
    from .data import clip_path

    return clip_path(name)


# ==============================================================================================================
# The result
# ==============================================================================================================
def _verdict(row: Mapping[str, Any]) -> str:
    """One short phrase for one attempt: works / refused (code) / accepted but every turn fails (message)."""
    clean = _present
    outcome = row.get("outcome")
    code, status = clean(row.get("error_code")), clean(row.get("http_status"))
    if isinstance(status, float) and status.is_integer():
        status = int(status)
    message = " ".join(str(clean(row.get("error_message")) or "").split())
    if len(message) > 90:
        message = message[:87] + "..."
    if outcome == "ok":
        return "works" + (" (streams)" if clean(row.get("deltas_stream")) else "")
    if outcome == "handshake-refused":
        return f"refused ({' '.join(str(x) for x in (status, code) if x is not None) or message})"
    if outcome == "error-event":
        return f"refused ({code or message})"
    if outcome == "transcription-failed":
        if clean(row.get("completed")):
            return f"works on some turns, others fail ({message or code})"
        return f"accepted but every turn fails ({message or code})"
    if outcome == "no-transcript":
        return "accepted, but no transcript arrived"
    if outcome == "no-answer":
        return f"no answer ({message})"
    if outcome == "not-applicable":
        return f"not tried ({message})"
    return str(outcome)


def _present(v: Any) -> Any:
    """``v``, or None for a missing value (None, NaN, pandas NA)."""
    import pandas as pd

    if v is None or isinstance(v, (dict, list)):
        return v
    try:
        return None if pd.isna(v) else v
    except (TypeError, ValueError):
        return v


#: How :meth:`ProbeResult.answers` names each transcription surface, in the order it lists them.
_SURFACE_WORDS = {
    "in-session-ga": "in-session",
    "in-session-beta": "in-session (preview)",
    "transcription-ga": "transcription session",
    "transcription-beta": "transcription session (preview)",
    "session-model": "as the session model",
}


def _answer(rows: pd.DataFrame) -> str:
    first = rows.iloc[0]
    kind = first.get("kind")
    if kind == "translation":
        v = _verdict(first)
        return f"translation sidecar: {v}" + (", source transcript arrives" if first["outcome"] == "ok" else "")
    if kind == "azure-speech":
        return f"Azure Speech ConversationTranscriber: {_verdict(first)}"
    if kind == "live":
        if first["outcome"] == "ok":
            return "GPT-Live: works, its input transcript arrives" + (" while the user speaks"
                                                                     if first["deltas_stream"] else "")
        if first["outcome"] == "no-transcript":
            return "GPT-Live: the session starts, but no input transcript arrived"
        return f"GPT-Live: {_verdict(first)}"
    if kind == "dialect":
        return f"beta dialect: {_verdict(first)} (OpenAI retired the beta shape in 2026; speak GA)"
    by_surface = {r["surface"]: r for _, r in rows.iterrows()}
    return "; ".join(f"{words}: {_verdict(by_surface[s])}" for s, words in _SURFACE_WORDS.items() if s in by_surface)


@dataclass
class ProbeResult:
    """The probe's tidy table plus what is needed to save it as a profile.

    Attributes
    ----------
    frame
        One row per attempt, columns :data:`RESULT_COLUMNS`.
    target
        The endpoint probed (its key masked everywhere).
    clip, when
        The clip streamed and the time of the probe (UTC, ISO).
    provider, voice, deployments
        ``"openai"``/``"azure"``, the voice deployment or model used, and (Azure) the resource's deployments.
    """

    frame: Any
    target: Any
    clip: str
    when: str = dataclasses.field(
        default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    provider: str | None = None
    voice: str | None = None
    deployments: dict[str, str] | None = None

    def _labels(self) -> Any:
        df = self.frame
        return df["name"].fillna(df["model"]) if "name" in df.columns else df["model"]

    def matrix(self) -> pd.DataFrame:
        """Name × surface table of outcomes (``ok (streams)``, ``handshake-refused 400``, ``error-event CODE``...);
        ``—`` where a name was not tried on a surface (the workaround rows, the one beta row on OpenAI)."""
        import pandas as pd

        df = self.frame.copy()
        df["_label"] = self._labels()

        def cell(r: Any) -> str:
            if r["outcome"] == "ok":
                return "ok (streams)" if r["deltas_stream"] is True or r["deltas_stream"] == 1 else "ok"
            detail = _present(r["http_status"] if r["outcome"] == "handshake-refused" else r["error_code"])
            if isinstance(detail, float) and detail.is_integer():
                detail = int(detail)  # an HTTP status read from a float column
            return str(r["outcome"]) if detail is None else f"{r['outcome']} {detail}"

        df["result"] = df.apply(cell, axis=1) if len(df) else pd.Series(dtype=str)
        rows = list(dict.fromkeys(df["_label"]))
        cols = [s for s in ALL_SURFACES if s in set(df["surface"])]
        out = df.pivot(index="_label", columns="surface", values="result").reindex(index=rows, columns=cols)
        out = out.fillna(NOT_TRIED)
        out.index.name = "name"
        out.columns.name = "surface"
        return out

    def answers(self) -> pd.DataFrame:
        """The seed question answered in one line per deployment (or model) and one per workaround.

        Columns ``model`` and ``answer``, e.g. ``tx-whisper`` (gpt-realtime-whisper): ``in-session: accepted but
        every turn fails (Input transcription failed for item ...); transcription session: works (streams)``.
        """
        import pandas as pd

        from .protocol.catalogue import retirement

        df = self.frame.copy()
        df["_label"] = self._labels()
        out = []
        for label, rows in df.groupby("_label", sort=False):
            model = rows["model"].iloc[0]
            answer = _answer(rows)
            note = retirement(model) if isinstance(model, str) else None
            if note:
                answer += f" [{note.split(' (')[0]}]"
            out.append({"name": label, "model": model, "answer": answer})
        return pd.DataFrame(out, columns=["name", "model", "answer"]).set_index("name")

    def diagnoses(self) -> pd.DataFrame:
        """The failed attempts: raw error beside rtlab's diagnosis (``diagnosis``: the cause; ``fix``)."""
        df = self.frame
        bad = df[df["outcome"] != "ok"]
        cols = ["name", "surface", "outcome", "http_status", "error_code", "error_message", "diagnosis_id",
                "diagnosis", "fix"]
        return bad[[c for c in cols if c in bad.columns]].reset_index(drop=True)

    def _repr_html_(self) -> str:
        return self.matrix()._repr_html_()

    def _profile_deployments(self) -> dict[str, str] | None:
        """The resource's deployments for a saved profile: as configured, plus the voice deployment with the model
        its sessions named (observed in ``session.created``) when its model was not configured."""
        if self.deployments is None:
            return None
        out = dict(self.deployments)
        if self.voice and self.voice not in out:
            df = self.frame
            seen = df.loc[(df["kind"] == "transcription") & df["surface"].isin(["in-session-ga", "in-session-beta"])
                          & df["session_model"].notna(), "session_model"] if "session_model" in df.columns else []
            out[self.voice] = str(next(iter(seen), self.voice))
        return out

    def to_profile(self, name: str | None = None) -> dict:
        """A capability profile (see :mod:`rtlab.emulator.profiles`) reproducing this endpoint offline.

        The transcription rows are keyed by the names tried (the deployment names on Azure); on Azure the profile
        lists exactly the resource's deployments."""
        from .emulator.profiles import load_profile, profile_from_probe

        df = self.frame
        rows = df[df["kind"].fillna("transcription") == "transcription"].copy() if "kind" in df.columns else df.copy()
        if "name" in rows.columns:
            rows["model"] = rows["name"].fillna(rows["model"])
        provider = self.provider or _provider_of(self.target) or "openai"
        deployments = self._profile_deployments()
        out = profile_from_probe(rows, provider=provider, name=name,
                                 source=f"rtlab probe of {_safe_target(self.target)} on {self.when}",
                                 deployments=deployments, date=self.when[:10])
        if deployments is not None and out.get("deployments") != deployments:
            out["deployments"] = dict(deployments)  # exactly the resource's, never the bundled profile's
            load_profile(out)  # it must still load
        return out

    def save(self, path: str | Path, *, name: str | None = None) -> Path:
        """Write :meth:`to_profile` as JSON to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(redact(json.dumps(self.to_profile(name), indent=2, sort_keys=True)) + "\n")
        return path

    def support_report(self) -> str:
        """A plain-text report to attach to a support ticket: the matrix, one answer per deployment, and every raw
        error beside its diagnosis (no secrets: targets mask their keys, and the text is redacted once more)."""
        shown = _present
        lines = [
            "rtlab endpoint probe",
            f"target: {_safe_target(self.target)}",
            f"when:   {self.when}",
            f"clip:   {self.clip}",
        ]
        if self.voice:
            lines.append(f"voice:  {self.voice}")
        if self.deployments is not None:
            lines.append("deployments: " + (", ".join(f"{d} ({m})" for d, m in self.deployments.items()) or "none"))
        lines += ["", self.matrix().to_string(), "", "answers:"]
        for label, r in self.answers().iterrows():
            model = f" ({r['model']})" if isinstance(r["model"], str) and r["model"] != label else ""
            lines.append(f"- {label}{model}: {r['answer']}")
        lines += ["", "errors:"]
        bad = self.frame[self.frame["outcome"] != "ok"]
        for _, r in bad.iterrows():
            label = shown(r.get("name")) or r["model"]
            lines.append(f"- {label} / {r['surface']} ({shown(r.get('dialect')) or '-'}): {r['outcome']}"
                         f" status={shown(r['http_status'])} code={shown(r['error_code'])}"
                         f" message={shown(r['error_message'])}")
            if shown(r.get("diagnosis")):
                lines.append(f"    diagnosis: {r['diagnosis']}")
            if shown(r.get("fix")):
                lines.append(f"    fix: {r['fix']}")
        if not len(bad):
            lines.append("- none")
        return redact("\n".join(lines))


def _safe_target(target: Any) -> str:
    """Provider, dialect and the voice session's WebSocket URL (no key: keys travel in headers).

    The URL names the target's voice model or deployment; ``MODEL`` stands for it when the target has none (an
    Azure resource without a configured voice deployment)."""
    url = getattr(target, "url_for", None)
    if url is None:
        return repr(target)
    for voice in (None, "MODEL"):
        try:
            return f"{target.provider} {target.dialect} {url('realtime', voice)}"
        except Exception:  # noqa: BLE001 - e.g. a name the target cannot map: try the placeholder, then the repr
            continue
    return repr(target)


# ---------------------------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", default="local",
                   help="local | local-azure | openai | azure | azure-preview (credentials from env vars)")
    p.add_argument("--model", action="append", dest="models", metavar="NAME",
                   help="transcription model or deployment to try (repeatable; default: Azure: the deployments in "
                        "AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS; OpenAI: " + ", ".join(DEFAULT_MODELS) + ")")
    p.add_argument("--surface", action="append", dest="surfaces", choices=ALL_SURFACES,
                   help="surfaces to try (repeatable; default: all)")
    p.add_argument("--voice-model", default=None, metavar="NAME",
                   help="voice deployment or model (default: AZURE_OPENAI_REALTIME_DEPLOYMENT on Azure)")
    p.add_argument("--translation-model", default=None, metavar="NAME",
                   help="gpt-realtime-translate deployment (default on Azure: AZURE_OPENAI_TRANSLATE_DEPLOYMENT)")
    p.add_argument("--live-model", default=None, metavar="NAME", help="GPT-Live deployment or model")
    p.add_argument("--clip", default="short", help="bundled clip name or audio file (default: short)")
    p.add_argument("--speed", type=float, default=1.0, help="feed speed (default 1: real time)")
    p.add_argument("--concurrency", type=int, default=4, help="sessions at once (default 4)")
    p.add_argument("--out", type=Path, required=True, help="profile JSON to write (report .txt beside it)")


def run(args: argparse.Namespace) -> int:
    from .compare import make_target

    if args.out.suffix != ".json":
        raise ProbeError(f"{args.out}: --out must name a .json profile file")
    target = make_target(args.target)
    try:
        result = probe(target, tuple(args.models) if args.models else None,
                       surfaces=tuple(args.surfaces or ALL_SURFACES), clip=args.clip, speed=args.speed,
                       concurrency=args.concurrency, voice_model=args.voice_model,
                       translation_model=args.translation_model, live_model=args.live_model,
                       out=args.out.with_suffix(""), progress=sys.stderr.isatty())
        result.save(args.out)
    finally:
        target.stop()
    report = result.support_report()
    args.out.with_suffix(".txt").write_text(report + "\n")
    print(report)
    print(f"\nprofile: {args.out}")
    return 0
