"""Per-model and per-dialect rules of a session configuration: one table, read by the client and the emulator
(layer: protocol).

A rule looks at a GA session object (what a client is about to send, or what the server merged) plus where it goes
(session kind, dialect shape, provider, Azure deployments). Each row says:

- ``violated``: the predicate;
- the client-side verdict: ``field`` (the :class:`rtlab.config.SessionConfig` path), ``message`` and ``fix``
  (``str.format`` templates over ``value``, ``model``, ``models``, ``dialect``, ``deployments``);
- the server-side verdict, :class:`ServerVerdict`: *where* the real service objects (an ``error`` event answering
  ``session.update``, a refused handshake, a failed transcription per turn) with the error's type, code, param and
  message, and the evidence for that wording;
- ``evidence`` for the rule itself, and ``example``: a minimal configuration that breaks it, so a test can walk
  every row and check that :func:`rtlab.config.violations` and the emulator agree.

:func:`check` returns the rows a session breaks, in table order. Rules about a model's capabilities skip unknown
models (an Azure deployment name not in the deployment map is judged by ``azure-unknown-deployment`` instead).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .catalogue import TRANSCRIPTION_MODELS, TranscriptionModel, api_of, transcription_model
from .events import Shape
from .evidence import Evidence
from .shapes import KINDS, PCM_RATE

__all__ = ["GA_ONLY_FIELDS", "RULES", "Rule", "RuleInput", "ServerVerdict", "check", "rule", "server_message", "value_at"]

Provider = Literal["openai", "azure"]


@dataclass(frozen=True)
class RuleInput:
    """What a rule sees: a GA session object and where it goes, with the transcription model resolved."""

    kind: str  # "realtime" | "transcription"
    session: Mapping[str, Any]  # GA session object
    shape: Shape  # the dialect shape it is sent in
    provider: Provider
    deployments: Mapping[str, str] | None  # Azure {deployment name: model}; None when names are models
    session_model: str | None  # the voice model behind the session's model name (deployment map applied)
    transcription_name: str | None  # the transcription model as written (an Azure deployment name)
    transcription_model: str | None  # the model behind it
    capability: TranscriptionModel | None  # its catalogue row; None for an unknown model

    @classmethod
    def build(cls, kind: str, session: Mapping[str, Any], *, shape: Shape = "ga", provider: Provider = "openai",
              deployments: Mapping[str, str] | None = None, session_model: str | None = None) -> RuleInput:
        """``session_model``: the model named at connect time when the session object has none."""
        use_map = provider == "azure" and deployments is not None
        tx = value_at(session, "audio.input.transcription")
        name = tx.get("model") if isinstance(tx, Mapping) and isinstance(tx.get("model"), str) else None
        model = deployments.get(name, name) if (use_map and name is not None) else name
        raw_session_model = session.get("model") if isinstance(session.get("model"), str) else session_model
        resolved_session = (deployments.get(raw_session_model, raw_session_model)
                            if use_map and raw_session_model else raw_session_model)
        return cls(kind, session, shape, provider, deployments if use_map else None, resolved_session, name, model,
                   transcription_model(model))

    def get(self, path: str) -> Any:
        """The value at a dotted GA path (``"audio.input.transcription.delay"``); None when absent."""
        return value_at(self.session, path)

    def has(self, path: str) -> bool:
        """True when the path is present with a non-null value."""
        return self.get(path) is not None


def value_at(node: Any, path: str) -> Any:
    """The value at dotted ``path`` in nested mappings (``"audio.input.transcription"``); None when absent."""
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


@dataclass(frozen=True)
class ServerVerdict:
    """How the real service objects to a broken rule.

    ``where``: ``"session.update"`` (an ``error`` event answers the update; the socket stays open), ``"handshake"``
    (the WebSocket upgrade is refused: the provider profile gives the status and text), ``"turn"`` (the update is
    accepted and every turn's transcription fails), ``"unknown_parameter"`` (the field does not exist in that
    shape: refused like any unknown key).
    """

    where: Literal["session.update", "handshake", "turn", "unknown_parameter"]
    code: str | None
    message: str
    evidence: Evidence
    type: str = "invalid_request_error"
    param: str | None = None


@dataclass(frozen=True)
class Rule:
    """One row of :data:`RULES` (see the module docstring)."""

    id: str
    violated: Callable[[RuleInput], bool]
    field: str  # SessionConfig path, e.g. "transcription.delay"
    param: str  # wire path, e.g. "session.audio.input.transcription.delay"
    message: str
    fix: str
    server: ServerVerdict
    evidence: Evidence
    example: Mapping[str, Any] = field(default_factory=dict, compare=False)
    #: Which model the client message names: the transcription model, the voice model, or "auto" (the voice model
    #: of a realtime session, else the transcription model).
    subject: Literal["transcription", "session", "auto"] = "transcription"
    #: Capability flag whose models the message lists as ``{models}`` (empty: none).
    allowed_by: str = ""

    def models_allowing(self) -> str:
        if not self.allowed_by:
            return ""
        return " / ".join(m.name for m in TRANSCRIPTION_MODELS.values() if getattr(m, self.allowed_by))


def check(ctx: RuleInput, *, where: tuple[str, ...] | None = None) -> list[Rule]:
    """The rows of :data:`RULES` that ``ctx`` breaks, in table order (optionally only those whose server verdict
    happens ``where``)."""
    return [r for r in RULES if (where is None or r.server.where in where) and r.violated(ctx)]


def rule(rule_id: str) -> Rule:
    """The row with id ``rule_id`` (KeyError when there is none)."""
    for r in RULES:
        if r.id == rule_id:
            return r
    raise KeyError(rule_id)


def _lacks(ctx: RuleInput, flag: str) -> bool:
    """True when the transcription model is known and lacks ``flag`` (unknown models are not judged)."""
    return ctx.capability is not None and not getattr(ctx.capability, flag)


def _vad_on(ctx: RuleInput) -> bool:
    """Turn detection is on: set, or left out (the service's default is server VAD)."""
    audio_in = ctx.get("audio.input")
    if not isinstance(audio_in, Mapping) or "turn_detection" not in audio_in:
        return True
    return audio_in["turn_detection"] is not None


def _pcm_rate_off(ctx: RuleInput) -> bool:
    for where in ("input", "output"):
        fmt = ctx.get(f"audio.{where}.format")
        if isinstance(fmt, Mapping) and fmt.get("type") == "audio/pcm" and fmt.get("rate", PCM_RATE) != PCM_RATE:
            return True
    return False


# -- evidence used by several rows ------------------------------------------------------------------------------
_SDK_TX = Evidence("documented", "openai Python SDK 3.57, openai/types/realtime/audio_transcription.py", "2026-11")
_SDK_PCM = Evidence("documented", "openai Python SDK 3.57, openai/types/realtime/realtime_audio_formats.py "
                    "(AudioPCM.rate: Literal[24000])", "2026-11")
_TEXT_ASSUMED = Evidence("assumed", "rtlab emulator choice: wording modelled on the service's invalid_value "
                         "errors (no published text for this case)", "2026-12-01")
_UNKNOWN_PARAM = Evidence("reported", "livekit/agents issue 3210; OpenAI community thread on GA session keys "
                          "('Unknown parameter: ...')", "2026-06")

#: Fields the beta (preview) shape has no place for: absent from the SDK's beta session types.
#: (SessionConfig path, GA path, beta key path, session kinds where it is missing)
GA_ONLY_FIELDS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("transcription.delay", "audio.input.transcription.delay", "input_audio_transcription.delay", KINDS),
    ("transcription.languages", "audio.input.transcription.languages", "input_audio_transcription.languages",
     KINDS),
    ("transcription.keywords", "audio.input.transcription.keywords", "input_audio_transcription.keywords", KINDS),
    ("turn_detection.idle_timeout_ms", "audio.input.turn_detection.idle_timeout_ms", "turn_detection.idle_timeout_ms",
     KINDS),
    ("include", "include", "include", ("realtime",)),
)

_GA_ONLY_EXAMPLES: dict[str, dict[str, Any]] = {
    "transcription.delay": {"kind": "realtime", "transcription": {"model": "gpt-realtime-whisper", "delay": "low"}},
    "transcription.languages": {"kind": "transcription",
                                "transcription": {"model": "gpt-transcribe", "languages": ["en"]}},
    "transcription.keywords": {"kind": "transcription",
                               "transcription": {"model": "gpt-transcribe", "keywords": ["rtlab"]}},
    "turn_detection.idle_timeout_ms": {"kind": "realtime",
                                       "turn_detection": {"type": "server_vad", "idle_timeout_ms": 6000}},
    "include": {"kind": "realtime", "include": ["item.input_audio_transcription.logprobs"]},
}


def _ga_only_rule(field_path: str, ga_path: str, beta_key: str, kinds: tuple[str, ...]) -> Rule:
    return Rule(
        id=f"beta-has-no-{field_path.rsplit('.', 1)[-1].replace('_', '-')}",
        violated=lambda c: c.shape == "beta" and c.kind in kinds and c.has(ga_path),
        field=field_path,
        param=f"session.{beta_key}",
        message="the beta shape spoken by {dialect} has no such field (GA sessions only).",
        fix="drop it, or use a GA dialect (openai-ga / azure-ga)",
        server=ServerVerdict("unknown_parameter", "unknown_parameter", f"Unknown parameter: 'session.{beta_key}'.",
                             _UNKNOWN_PARAM, param=f"session.{beta_key}"),
        evidence=Evidence("documented", "openai Python SDK 3.57: the field is absent from "
                          "openai/types/beta/realtime session types", "2026-11"),
        example={**_GA_ONLY_EXAMPLES[field_path], "dialect": "azure-preview"},
        subject="transcription" if field_path.startswith("transcription.") else "auto",
    )


#: Every rule, in order. Add a rule here and nowhere else: the client and the emulator both read this table.
RULES: tuple[Rule, ...] = (
    Rule("pcm-rate", _pcm_rate_off, "pcm_rate", "session.audio.input.format.rate",
         f"PCM audio must be {PCM_RATE} Hz, got {{value}} Hz.",
         f"resample the audio to {PCM_RATE} Hz mono (rtlab.audio does) and keep pcm_rate={PCM_RATE}",
         ServerVerdict("session.update", "invalid_value", "Invalid value: {value}. Supported values are: 24000.",
                       _TEXT_ASSUMED, param="session.audio.input.format.rate"),
         _SDK_PCM, example={"kind": "realtime", "input_format": "pcm16", "pcm_rate": 16000}, subject="auto"),
    Rule("transcription-model-required",
         lambda c: isinstance(c.get("audio.input.transcription"), Mapping) and not c.transcription_name,
         "transcription.model", "session.audio.input.transcription.model",
         "a transcription object needs a model.", "name a transcription model, or set transcription=None",
         ServerVerdict("session.update", "missing_required_parameter",
                       "Missing required parameter: 'session.audio.input.transcription.model'.", _TEXT_ASSUMED,
                       param="session.audio.input.transcription.model"),
         Evidence("assumed", "rtlab emulator choice: the SDK types leave model optional; rtlab requires it so a "
                  "session never depends on an unstated server default", "2026-12-01"),
         example={"kind": "realtime", "transcription": {"model": None, "language": "en"}}),
    Rule("transcription-model-as-session-model",
         lambda c: c.kind == "realtime" and api_of(c.session_model) == "transcription",
         "model", "model",
         "{value} cannot be the model of a realtime (voice) session; it is a transcription model.",
         "use a voice model (e.g. model='gpt-realtime-2.1') with transcription={value!r}, or open a transcription "
         "session: SessionConfig.transcription(model={value!r})",
         ServerVerdict("handshake", "invalid_model", "the provider profile gives the status and text",
                       Evidence("reported", "Azure: HTTP 400 OperationNotSupported (forum, 2026-06; Microsoft Q&A "
                                "answers/a/12820829); OpenAI: refused as a session model (SDK docstrings)",
                                "2026-06")),
         Evidence("documented", "openai SDK 3.57: gpt-realtime-whisper is a transcription model, not a "
                  "RealtimeSessionCreateRequest.model value", "2026-11"),
         example={"kind": "realtime", "model": "gpt-realtime-whisper", "transcription": None}, subject="session"),
    Rule("live-model-as-realtime-model",
         lambda c: c.kind == "realtime" and api_of(c.session_model) in ("live", "translation"),
         "model", "model",
         "{value} is not a Realtime model: it belongs to another API (GPT-Live or translation sessions).",
         "for GPT-Live use a Live session (rtlab selects it for gpt-live-* voice models); for translation use a "
         "translation sidecar (translate:LANG); a Realtime voice session needs e.g. model='gpt-realtime-2.1'",
         ServerVerdict("handshake", "invalid_model", "the provider profile gives the status and text",
                       Evidence("reported", "LiteLLM docs: a GPT-Live model on /v1/realtime is an invalid_model "
                                "error", "2026-10")),
         Evidence("documented", "https://developers.openai.com/api/docs/guides/live-conversations (GPT-Live has its "
                  "own protocol at /v1/live/sessions)", "2026-10"),
         example={"kind": "realtime", "model": "gpt-live-1", "transcription": None}, subject="session"),
    Rule("azure-unknown-deployment",
         lambda c: c.deployments is not None and c.transcription_name is not None
         and c.transcription_name not in c.deployments,
         "transcription.model", "session.audio.input.transcription.model",
         "{value!r} is not a transcription deployment of this Azure resource (Azure needs the deployment name, "
         "not the model name).",
         "use one of the deployment names: {deployments} (or add it to AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS)",
         ServerVerdict("turn", None, "Input transcription failed for item '{item}'.",
                       Evidence("reported", "Microsoft Q&A 5772601 (transcription.failed, server_error, message "
                                "without the cause)", "2026-05"), type="server_error"),
         Evidence("documented", "Azure OpenAI realtime audio reference: the transcription model is the deployment "
                  "name", "2026-05"),
         example={"kind": "realtime", "transcription": {"model": "gpt-4o-transcribe"}, "dialect": "azure-ga",
                  "deployments": {"tx-whisper": "gpt-realtime-whisper"}}),
    Rule("not-in-session",
         lambda c: c.kind == "realtime" and _lacks(c, "in_session"),
         "transcription.model", "session.audio.input.transcription.model",
         "{model} transcribes in transcription sessions only, not inside a realtime (voice) session.",
         "run it as a transcription sidecar (TranscriptionSidecar(model={model!r})), or use an in-session model: "
         "{models}",
         ServerVerdict("session.update", "invalid_value",
                       "Invalid value: '{model}'. This model is not supported for input audio transcription in "
                       "realtime sessions.", _TEXT_ASSUMED, param="session.audio.input.transcription.model"),
         Evidence("documented", "https://developers.openai.com/api/docs/models/gpt-live-transcribe (supported "
                  "endpoint v1/realtime/transcription_sessions; v1/realtime not supported)", "2026-11"),
         example={"kind": "realtime", "transcription": {"model": "gpt-live-transcribe"}}, allowed_by="in_session"),
    Rule("prompt-unsupported",
         lambda c: c.has("audio.input.transcription.prompt") and _lacks(c, "prompt"),
         "transcription.prompt", "session.audio.input.transcription.prompt",
         "{model} does not accept a transcription prompt.",
         "drop prompt (gpt-transcribe / gpt-live-transcribe take keywords=[...] instead); models that take a "
         "prompt: {models}",
         ServerVerdict("session.update", "invalid_value", "prompt is not supported with {model}.", _TEXT_ASSUMED,
                       param="session.audio.input.transcription.prompt"),
         _SDK_TX, example={"kind": "realtime", "transcription": {"model": "gpt-realtime-whisper", "prompt": "x"}},
         allowed_by="prompt"),
    Rule("vad-in-transcription-session",
         lambda c: c.kind == "transcription" and _vad_on(c) and _lacks(c, "vad_in_transcription_session"),
         "turn_detection", "session.audio.input.turn_detection",
         "{model} takes no turn detection (VAD) in a transcription session, got turn_detection={value}.",
         "set turn_detection=None: the client commits the input audio buffer at the end of each utterance",
         ServerVerdict("session.update", "invalid_value",
                       "Turn detection is not supported for this transcription model.",
                       Evidence("reported", "PROTOCOL.md 'Real error texts seen' (OpenAI community)", "2026-06"),
                       param="session.audio.input.turn_detection"),
         Evidence("documented", f"{_SDK_TX.source}; https://developers.openai.com/api/docs/models/"
                  "gpt-live-transcribe", "2026-11"),
         example={"kind": "transcription", "transcription": {"model": "gpt-realtime-whisper"},
                  "turn_detection": {"type": "server_vad"}},
         allowed_by="vad_in_transcription_session"),
    Rule("delay-unsupported",
         lambda c: c.has("audio.input.transcription.delay") and _lacks(c, "delay"),
         "transcription.delay", "session.audio.input.transcription.delay",
         "delay={value!r} is supported only by {models}, not by {model}.",
         "drop delay, or use transcription model {models}",
         ServerVerdict("session.update", "invalid_value", "delay is only supported with gpt-realtime-whisper.",
                       _TEXT_ASSUMED, param="session.audio.input.transcription.delay"),
         _SDK_TX, example={"kind": "realtime", "transcription": {"model": "gpt-4o-transcribe", "delay": "low"}},
         allowed_by="delay"),
    Rule("languages-unsupported",
         lambda c: c.has("audio.input.transcription.languages") and _lacks(c, "languages_keywords"),
         "transcription.languages", "session.audio.input.transcription.languages",
         "languages=[...] is supported only by {models}, not by {model}.",
         "use language='xx' (one ISO-639-1 code), or transcription model {models}",
         ServerVerdict("session.update", "invalid_value",
                       "languages is only supported with gpt-transcribe and gpt-live-transcribe.", _TEXT_ASSUMED,
                       param="session.audio.input.transcription.languages"),
         _SDK_TX, example={"kind": "realtime", "transcription": {"model": "whisper-1", "languages": ["en"]}},
         allowed_by="languages_keywords"),
    Rule("keywords-unsupported",
         lambda c: c.has("audio.input.transcription.keywords") and _lacks(c, "languages_keywords"),
         "transcription.keywords", "session.audio.input.transcription.keywords",
         "keywords=[...] are supported only by {models}, not by {model}.",
         "use prompt='...' where the model takes one, or transcription model {models}",
         ServerVerdict("session.update", "invalid_value",
                       "keywords is only supported with gpt-transcribe and gpt-live-transcribe.", _TEXT_ASSUMED,
                       param="session.audio.input.transcription.keywords"),
         _SDK_TX, example={"kind": "realtime", "transcription": {"model": "gpt-4o-transcribe", "keywords": ["x"]}},
         allowed_by="languages_keywords"),
    *(_ga_only_rule(*row) for row in GA_ONLY_FIELDS),
)


def server_message(r: Rule, ctx: RuleInput, **extra: Any) -> str:
    """The real service's message for a broken rule, filled from the session it judged (``extra``: e.g. ``item``)."""
    path = (r.server.param or r.param).removeprefix("session.")
    names = {"value": ctx.get(path), "model": ctx.transcription_name or ctx.session_model, **extra}
    try:
        return r.server.message.format(**names)
    except (KeyError, IndexError):
        return r.server.message
