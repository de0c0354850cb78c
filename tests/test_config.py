"""rtlab.config: rendering per dialect, parsing back, the rule table, diff, and SDK validation."""

from __future__ import annotations

import dataclasses
import json
import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.beta.realtime import SessionUpdateEvent as BetaSessionUpdateEvent
from openai.types.beta.realtime import TranscriptionSessionUpdate
from openai.types.realtime import (
    RealtimeSessionCreateRequest,
    RealtimeTranscriptionSessionCreateRequest,
    SessionUpdatedEvent,
)

from rtlab import ConfigError, RtlabError
from rtlab.config import (
    RULES,
    SHAPE_MAP,
    UNSET,
    Change,
    RuleViolation,
    SessionConfig,
    Transcription,
    TurnDetection,
    diff,
    diff_frame,
    parse,
    render,
    render_session,
    session_from_ga,
    session_to_ga,
    validate,
    validate_with_sdk,
    violations,
)
from rtlab.protocol import (
    DIALECTS,
    LOGPROBS_INCLUDE,
    SERVER_VAD_DEFAULTS,
    TRANSCRIPTION_MODELS,
    VOICE_MODELS,
)
from rtlab.protocol.rules import GA_ONLY_FIELDS

REALTIME_MODELS = [m.name for m in VOICE_MODELS.values() if m.api == "realtime"]

ALL_DIALECTS = list(DIALECTS)
GA_DIALECTS = [d for d, s in DIALECTS.items() if s == "ga"]
BETA_DIALECTS = [d for d, s in DIALECTS.items() if s == "beta"]


def models_with(flag: str, value: bool = True) -> list[str]:
    return [m.name for m in TRANSCRIPTION_MODELS.values() if bool(getattr(m, flag)) == value]


# ==============================================================================================================
# The logical config
# ==============================================================================================================
class TestSessionConfig:
    def test_realtime_defaults(self):
        cfg = SessionConfig.realtime()
        assert cfg.kind == "realtime" and cfg.model is None  # the target's voice model (gpt-realtime-2.1 on OpenAI)
        assert cfg.transcription == Transcription(model="gpt-realtime-whisper")
        assert cfg.turn_detection == TurnDetection(type="server_vad", **SERVER_VAD_DEFAULTS)
        assert cfg.noise_reduction is UNSET

    def test_transcription_defaults_follow_capabilities(self):
        for name, cap in TRANSCRIPTION_MODELS.items():
            cfg = SessionConfig.transcription(model=name)
            assert cfg.kind == "transcription" and cfg.model is None
            assert cfg.transcription.model == name
            if cap.vad_in_transcription_session:
                assert cfg.turn_detection == TurnDetection.server_vad()
            else:
                assert cfg.turn_detection is None  # the client commits
            validate(cfg, "openai-ga")  # the defaults are always sendable

    def test_constructor_and_field_share_the_name(self):
        cfg = SessionConfig.transcription(model="gpt-4o-transcribe", language="en", prompt="tech talk")
        assert cfg.transcription == Transcription(model="gpt-4o-transcribe", language="en", prompt="tech talk")
        assert SessionConfig().transcription is UNSET
        assert dataclasses.replace(cfg, transcription=None).transcription is None

    def test_shorthands(self):
        cfg = SessionConfig(kind="realtime", transcription="whisper-1", turn_detection="semantic_vad")
        assert cfg.transcription == Transcription(model="whisper-1")
        assert cfg.turn_detection == TurnDetection(type="semantic_vad")
        cfg = SessionConfig(transcription={"model": "whisper-1", "keywords": ["a"]}, turn_detection="server_vad")
        assert cfg.transcription.keywords == ("a",)
        assert cfg.turn_detection == TurnDetection.server_vad()

    @pytest.mark.parametrize("kwargs, field", [
        ({"kind": "voice"}, "kind"),
        ({"input_format": "pcm24"}, "input_format"),
        ({"output_format": "mp3"}, "output_format"),
        ({"noise_reduction": "studio"}, "noise_reduction"),
        ({"include": ["everything"]}, "include"),
        ({"output_modalities": ["text", "audio"]}, "output_modalities"),
        ({"pcm_rate": "24000"}, "pcm_rate"),
        ({"kind": "transcription", "voice": "alloy"}, "voice"),
        ({"kind": "transcription", "model": "gpt-realtime"}, "model"),
        ({"kind": "transcription", "instructions": "hi"}, "instructions"),
        ({"transcription": 42}, "transcription"),
        ({"turn_detection": "push_to_talk"}, "turn_detection.type"),
    ])
    def test_bad_values_name_the_field(self, kwargs, field):
        with pytest.raises(ConfigError) as info:
            SessionConfig(**kwargs)
        assert info.value.field == field
        bad = str(next(iter(kwargs.values())) if field != "voice" else "alloy")
        assert bad.strip("[]'") in str(info.value) or field in str(info.value)

    @pytest.mark.parametrize("kwargs, field", [
        ({"type": "server_vad", "eagerness": "high"}, "turn_detection.eagerness"),
        ({"type": "semantic_vad", "threshold": 0.5}, "turn_detection.threshold"),
        ({"type": "semantic_vad", "idle_timeout_ms": 5000}, "turn_detection.idle_timeout_ms"),
        ({"threshold": 1.5}, "turn_detection.threshold"),
        ({"silence_duration_ms": -1}, "turn_detection.silence_duration_ms"),
        ({"silence_duration_ms": 2.5}, "turn_detection.silence_duration_ms"),
        ({"create_response": "yes"}, "turn_detection.create_response"),
        ({"type": "semantic_vad", "eagerness": "eager"}, "turn_detection.eagerness"),
    ])
    def test_bad_turn_detection(self, kwargs, field):
        with pytest.raises(ConfigError) as info:
            TurnDetection(**kwargs)
        assert info.value.field == field

    @pytest.mark.parametrize("kwargs, field", [
        ({"delay": "instant"}, "transcription.delay"),
        ({"languages": "en"}, "transcription.languages"),
        ({"keywords": [1, 2]}, "transcription.keywords"),
        ({"model": 7}, "transcription.model"),
    ])
    def test_bad_transcription(self, kwargs, field):
        with pytest.raises(ConfigError) as info:
            Transcription(**kwargs)
        assert info.value.field == field

    def test_errors_share_one_root(self):
        with pytest.raises(RtlabError):
            SessionConfig(kind="nope")

    def test_short_repr(self):
        cfg = SessionConfig.realtime(instructions="You are a very patient teacher of phonetics.")
        text = repr(cfg)
        assert text.startswith("SessionConfig(realtime, transcription='gpt-realtime-whisper'")
        assert "turn_detection='server_vad'" in text and "..." in text and len(text) < 250


# ==============================================================================================================
# Rendering: exact shapes
# ==============================================================================================================
REALTIME = SessionConfig.realtime(
    model="gpt-realtime-2.1",
    transcription=Transcription(model="gpt-4o-transcribe", language="en", prompt="names of rivers"),
    noise_reduction="near_field", voice="marin", instructions="Be brief.", output_modalities=["audio"],
    include=None, turn_detection=TurnDetection.server_vad(silence_duration_ms=600),
)


def test_render_realtime_ga_exact():
    assert render(REALTIME, "openai-ga") == {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "model": "gpt-realtime-2.1",
            "instructions": "Be brief.",
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": {"model": "gpt-4o-transcribe", "language": "en", "prompt": "names of rivers"},
                    "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                                       "silence_duration_ms": 600},
                    "noise_reduction": {"type": "near_field"},
                },
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"},
            },
        },
    }
    assert render(REALTIME, "azure-ga") == render(REALTIME, "openai-ga")


@pytest.mark.parametrize("dialect", BETA_DIALECTS)
def test_render_realtime_beta_exact(dialect):
    assert render(REALTIME, dialect) == {
        "type": "session.update",
        "session": {
            "model": "gpt-realtime-2.1",
            "instructions": "Be brief.",
            "modalities": ["text", "audio"],
            "input_audio_format": "pcm16",
            "input_audio_transcription": {"model": "gpt-4o-transcribe", "language": "en",
                                          "prompt": "names of rivers"},
            "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                               "silence_duration_ms": 600},
            "input_audio_noise_reduction": {"type": "near_field"},
            "output_audio_format": "pcm16",
            "voice": "marin",
        },
    }


def test_render_transcription_each_shape():
    cfg = SessionConfig.transcription(model="gpt-realtime-whisper", language="en", input_format="g711_ulaw",
                                      include=[LOGPROBS_INCLUDE])
    assert render(cfg, "openai-ga") == {
        "type": "session.update",
        "session": {
            "type": "transcription",
            "audio": {"input": {"format": {"type": "audio/pcmu"},
                                "transcription": {"model": "gpt-realtime-whisper", "language": "en"},
                                "turn_detection": None}},
            "include": [LOGPROBS_INCLUDE],
        },
    }
    assert render(cfg, "azure-preview") == {
        "type": "transcription_session.update",
        "session": {
            "input_audio_format": "g711_ulaw",
            "input_audio_transcription": {"model": "gpt-realtime-whisper", "language": "en"},
            "turn_detection": None,
            "include": [LOGPROBS_INCLUDE],
        },
    }
    assert render_session(cfg, "openai-beta") == render(cfg, "openai-beta")["session"]


def test_unset_is_omitted_and_none_is_null():
    cfg = SessionConfig(kind="realtime", model="gpt-realtime")
    assert render(cfg)["session"] == {"type": "realtime", "model": "gpt-realtime"}
    off = SessionConfig(kind="realtime", model="gpt-realtime", transcription=None, turn_detection=None,
                        noise_reduction=None)
    audio_in = render(off)["session"]["audio"]["input"]
    assert audio_in == {"transcription": None, "turn_detection": None, "noise_reduction": None}
    beta = render(off, "azure-preview")["session"]
    assert beta["input_audio_transcription"] is None and beta["turn_detection"] is None
    assert beta["input_audio_noise_reduction"] is None
    # and back: null stays "off", absent stays "not set"
    assert parse(render(off, "azure-preview")) == off
    assert parse(render(cfg, "azure-preview")).turn_detection is UNSET


def test_render_is_session_from_ga_of_the_ga_render():
    for cfg in (REALTIME, SessionConfig.transcription(model="whisper-1")):
        ga = render(cfg, "openai-ga")["session"]
        for dialect in ALL_DIALECTS:
            assert render(cfg, dialect)["session"] == session_from_ga(ga, DIALECTS[dialect])


def test_unknown_dialect():
    with pytest.raises(ConfigError, match="azure-ga") as info:
        render(REALTIME, "azure-v2")
    assert "azure-v2" in str(info.value)


# ==============================================================================================================
# GA <-> beta conversion (the emulator's two functions)
# ==============================================================================================================
def test_session_to_ga_carries_unmapped_fields_and_nulls():
    beta = {"id": "sess_1", "object": "realtime.session", "model": "gpt-realtime", "modalities": ["text", "audio"],
            "voice": "alloy", "speed": 1.2, "temperature": 0.8, "tools": [], "max_response_output_tokens": "inf",
            "input_audio_format": "pcm16", "output_audio_format": "g711_alaw", "input_audio_transcription": None,
            "turn_detection": {"type": "server_vad", "threshold": 0.6}, "input_audio_noise_reduction": None}
    ga = session_to_ga(beta, "beta")
    assert ga == {
        "type": "realtime", "id": "sess_1", "object": "realtime.session", "model": "gpt-realtime",
        "output_modalities": ["audio"], "temperature": 0.8, "tools": [], "max_output_tokens": "inf",
        "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}, "transcription": None,
                            "turn_detection": {"type": "server_vad", "threshold": 0.6}, "noise_reduction": None},
                  "output": {"voice": "alloy", "speed": 1.2, "format": {"type": "audio/pcma"}}},
    }
    back = session_from_ga(ga, "beta")
    assert back == beta  # same fields, same values
    assert beta["turn_detection"] == {"type": "server_vad", "threshold": 0.6}  # input untouched


def test_session_to_ga_kind_from_object_and_argument():
    tx = {"object": "realtime.transcription_session", "modalities": ["text"], "input_audio_format": "pcm16"}
    assert session_to_ga(tx, "beta")["type"] == "transcription"
    assert "output_modalities" not in session_to_ga(tx, "beta")  # GA transcription sessions have none
    assert session_to_ga({"input_audio_format": "pcm16"}, "beta", kind="transcription")["type"] == "transcription"
    assert session_to_ga({"input_audio_format": "pcm16"}, "beta")["type"] == "realtime"
    ga = {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}}}}
    assert session_to_ga(ga, "ga") == ga and session_to_ga(ga, "ga") is not ga


def test_conversion_renames_but_does_not_judge_formats():
    ga = session_to_ga({"input_audio_format": "flac"}, "beta")
    assert ga["audio"]["input"]["format"] == {"type": "flac"}
    assert session_from_ga(ga, "beta") == {"input_audio_format": "flac"}
    with pytest.raises(ConfigError, match="flac"):
        parse({"type": "session.updated", "session": {"input_audio_format": "flac"}})


def test_shape_map_names_each_beta_key_once():
    keys = [m.beta_key for m in SHAPE_MAP]
    paths = [m.ga_path for m in SHAPE_MAP]
    assert len(keys) == len(set(keys)) and len(paths) == len(set(paths))


# ==============================================================================================================
# Parsing what servers send
# ==============================================================================================================
def test_parse_ga_session_updated_with_server_extras():
    event = {
        "type": "session.updated", "event_id": "event_1",
        "session": {
            "type": "realtime", "object": "realtime.session", "id": "sess_1", "model": "gpt-realtime",
            "output_modalities": ["audio"], "instructions": "Be brief.", "tools": [], "tool_choice": "auto",
            "max_output_tokens": "inf", "tracing": None, "prompt": None, "expires_at": 0, "include": None,
            "audio": {
                "input": {"format": {"type": "audio/pcm", "rate": 24000},
                          "transcription": {"model": "gpt-realtime-whisper", "language": None, "prompt": None},
                          "noise_reduction": None,
                          "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                                             "silence_duration_ms": 500, "idle_timeout_ms": None,
                                             "create_response": True, "interrupt_response": True}},
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin", "speed": 1.0},
            },
        },
    }
    applied = parse(event)
    assert applied == SessionConfig(
        kind="realtime", model="gpt-realtime", instructions="Be brief.", output_modalities=("audio",),
        transcription=Transcription(model="gpt-realtime-whisper"), noise_reduction=None,
        turn_detection=TurnDetection.server_vad(create_response=True, interrupt_response=True),
        input_format="pcm16", output_format="pcm16", voice="marin")
    # The SDK's own (unvalidated) event objects parse the same way.
    assert parse(SessionUpdatedEvent.construct(**event)) == applied
    assert parse(SessionUpdatedEvent.model_validate(event)) == applied


def test_parse_beta_transcription_session_event():
    event = {"type": "transcription_session.updated", "event_id": "e",
             "session": {"object": "realtime.transcription_session", "id": "s", "modalities": ["text"],
                         "input_audio_format": "pcm16", "client_secret": None,
                         "input_audio_transcription": {"model": "gpt-4o-transcribe", "language": "en", "prompt": ""},
                         "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                                            "silence_duration_ms": 500},
                         "input_audio_noise_reduction": {"type": "far_field"}, "include": []}}
    cfg = parse(event)
    assert cfg == SessionConfig(kind="transcription", input_format="pcm16", noise_reduction="far_field",
                                transcription=Transcription(model="gpt-4o-transcribe", language="en", prompt=""),
                                turn_detection=TurnDetection.server_vad(), include=())


def test_parse_reads_a_non_standard_rate():
    event = {"type": "session.updated", "session": {"type": "transcription", "audio": {"input": {
        "format": {"type": "audio/pcm", "rate": 16000}}}}}
    cfg = parse(event)
    assert cfg.pcm_rate == 16000
    with pytest.raises(RuleViolation, match="24000"):
        validate(cfg)


def test_parse_refuses_other_events():
    with pytest.raises(ConfigError, match="response.done"):
        parse({"type": "response.done", "session": {}})


# ==============================================================================================================
# Round trip over generated valid configs, every dialect
# ==============================================================================================================
text = st.text(max_size=24)


@st.composite
def valid_configs(draw, dialect: str, realtime_models=REALTIME_MODELS, tx_models=None):
    shape = DIALECTS[dialect]
    kind = draw(st.sampled_from(["realtime", "transcription"]))
    tx_models = list(tx_models or TRANSCRIPTION_MODELS)
    if kind == "realtime":  # only models that may transcribe a voice session's input
        tx_models = [m for m in tx_models if m not in TRANSCRIPTION_MODELS or TRANSCRIPTION_MODELS[m].in_session]
    name = draw(st.sampled_from(tx_models))
    cap = TRANSCRIPTION_MODELS.get(name)

    def maybe(strategy):
        return draw(st.none() | strategy)

    tx_kw = {"model": name, "language": maybe(st.sampled_from(["en", "de", "ja"]))}
    if cap is None or cap.prompt:
        tx_kw["prompt"] = maybe(text)
    if shape == "ga" and cap is not None and cap.languages_keywords:
        tx_kw["languages"] = maybe(st.lists(st.sampled_from(["en", "fr"]), max_size=2))
        tx_kw["keywords"] = maybe(st.lists(text, max_size=3))
    if shape == "ga" and cap is not None and cap.delay:
        tx_kw["delay"] = maybe(st.sampled_from(["minimal", "low", "medium", "high", "xhigh"]))
    transcription = draw(st.sampled_from(["unset", "null", "set"]))
    transcription = {"unset": UNSET, "null": None, "set": Transcription(**tx_kw)}[transcription]

    server = st.builds(
        TurnDetection, type=st.just("server_vad"),
        threshold=st.none() | st.floats(0, 1), prefix_padding_ms=st.none() | st.integers(0, 2000),
        silence_duration_ms=st.none() | st.integers(0, 3000), create_response=st.none() | st.booleans(),
        interrupt_response=st.none() | st.booleans(),
        idle_timeout_ms=st.none() | (st.integers(1000, 60000) if shape == "ga" else st.nothing()))
    semantic = st.builds(TurnDetection, type=st.just("semantic_vad"),
                         eagerness=st.none() | st.sampled_from(["low", "medium", "high", "auto"]),
                         create_response=st.none() | st.booleans(), interrupt_response=st.none() | st.booleans())
    no_vad = (kind == "transcription" and isinstance(transcription, Transcription) and cap is not None
              and not cap.vad_in_transcription_session)
    turn_detection = None if no_vad else draw(st.sampled_from([UNSET, None]) | server | semantic)
    kw = dict(
        kind=kind, transcription=transcription, turn_detection=turn_detection,
        noise_reduction=draw(st.sampled_from([UNSET, None, "near_field", "far_field"])),
        input_format=maybe(st.sampled_from(["pcm16", "g711_ulaw", "g711_alaw"])),
    )
    if not (shape == "beta" and kind == "realtime"):
        kw["include"] = maybe(st.sampled_from([[], [LOGPROBS_INCLUDE]]))
    if kind == "realtime":
        kw.update(model=maybe(st.sampled_from(list(realtime_models))),
                  output_format=maybe(st.sampled_from(["pcm16", "g711_ulaw", "g711_alaw"])),
                  voice=maybe(st.sampled_from(["alloy", "marin", "cedar"])), instructions=maybe(text),
                  output_modalities=maybe(st.sampled_from([["audio"], ["text"]])))
    return SessionConfig(**kw)


PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("dialect", ALL_DIALECTS)
@PROPERTY
@given(data=st.data())
def test_render_then_parse_round_trips(dialect, data):
    cfg = data.draw(valid_configs(dialect))
    assert violations(cfg, dialect) == []
    event = render(cfg, dialect)
    wire = json.loads(json.dumps(event))  # what actually travels
    assert parse(wire, dialect) == cfg
    assert parse(wire) == cfg  # shape detected
    if cfg.kind == "realtime" or DIALECTS[dialect] == "ga":
        # A bare session object is enough, except a beta transcription session: only its event name says so.
        assert parse(wire["session"], dialect) == cfg
    assert diff(cfg, parse(wire)) == []


@pytest.mark.parametrize("dialect", GA_DIALECTS)
@PROPERTY
@given(data=st.data())
def test_ga_payloads_validate_against_the_sdk(dialect, data):
    cfg = data.draw(valid_configs(dialect))
    event = render(cfg, dialect)
    model = validate_with_sdk(event, dialect)
    session_type = RealtimeSessionCreateRequest if cfg.kind == "realtime" else \
        RealtimeTranscriptionSessionCreateRequest
    assert isinstance(model.session, session_type)
    session_type.model_validate(event["session"])


def _literals(annotation) -> list[str]:
    out: list[str] = []
    for arg in typing.get_args(annotation):
        if isinstance(arg, str):
            out.append(arg)
        else:
            out.extend(_literals(arg))
    return out


# The SDK's beta types pin model names to Literal lists: draw from those.
BETA_REALTIME_MODELS = _literals(BetaSessionUpdateEvent.model_fields["session"].annotation.model_fields["model"]
                                 .annotation)
BETA_TX_MODELS = _literals(TranscriptionSessionUpdate.model_fields["session"].annotation
                           .model_fields["input_audio_transcription"].annotation.__args__[0]
                           .model_fields["model"].annotation)


def test_beta_literal_lists_were_found():
    assert "gpt-realtime" in BETA_REALTIME_MODELS and "whisper-1" in BETA_TX_MODELS


@pytest.mark.parametrize("dialect", BETA_DIALECTS)
@PROPERTY
@given(data=st.data())
def test_beta_payloads_validate_against_the_sdk(dialect, data):
    cfg = data.draw(valid_configs(dialect, realtime_models=BETA_REALTIME_MODELS, tx_models=BETA_TX_MODELS))
    event = render(cfg, dialect)
    model = validate_with_sdk(event, dialect)
    expected = TranscriptionSessionUpdate if cfg.kind == "transcription" else BetaSessionUpdateEvent
    assert isinstance(model, expected)


def test_sdk_validation_catches_unknown_and_wrong_fields():
    event = render(REALTIME, "openai-ga")
    event["session"]["audio"]["input"]["transcription"]["temperature"] = 0.2
    with pytest.raises(ConfigError, match="temperature"):
        validate_with_sdk(event, "openai-ga")
    bad = render(SessionConfig.transcription(model="whisper-1"), "openai-ga")
    bad["session"]["audio"]["input"]["format"] = {"type": "audio/pcm", "rate": 16000}
    with pytest.raises(ConfigError, match="rate"):
        validate_with_sdk(bad, "openai-ga")


# ==============================================================================================================
# Rules: one violating and one near-miss valid config per rule id
# ==============================================================================================================
AZ_DEPLOYMENTS = {"my-whisper": "gpt-realtime-whisper", "my-4o": "gpt-4o-transcribe", "my-live": "gpt-live-transcribe"}

#: rule id -> (config, dialect, deployments) that breaks exactly that rule first.
VIOLATING: dict[str, tuple[SessionConfig, str, dict | None]] = {
    "pcm-rate": (SessionConfig.transcription(model="gpt-4o-transcribe", pcm_rate=16000), "openai-ga", None),
    "transcription-model-required": (SessionConfig.realtime(transcription=Transcription(language="en")),
                                     "openai-ga", None),
    "transcription-model-as-session-model": (SessionConfig.realtime(model="gpt-realtime-whisper"), "openai-ga",
                                             None),
    "live-model-as-realtime-model": (SessionConfig.realtime(model="gpt-live-1"), "openai-ga", None),
    "azure-unknown-deployment": (SessionConfig.realtime(transcription="gpt-realtime-whisper"), "azure-ga",
                                 AZ_DEPLOYMENTS),
    "not-in-session": (SessionConfig.realtime(transcription="gpt-live-transcribe"), "openai-ga", None),
    "prompt-unsupported": (SessionConfig.realtime(prompt="Acme, Inc."), "openai-ga", None),
    "vad-in-transcription-session": (SessionConfig.transcription(model="gpt-realtime-whisper",
                                                                 turn_detection="server_vad"), "openai-ga", None),
    "delay-unsupported": (SessionConfig.realtime(transcription="gpt-4o-transcribe", delay="low"), "openai-ga",
                          None),
    "languages-unsupported": (SessionConfig.transcription(model="whisper-1", languages=["en", "fr"]), "azure-ga",
                              None),
    "keywords-unsupported": (SessionConfig.transcription(model="gpt-4o-mini-transcribe", keywords=["rtlab"]),
                             "openai-ga", None),
    "beta-has-no-delay": (SessionConfig.realtime(delay="low"), "azure-preview", None),
    "beta-has-no-languages": (SessionConfig.transcription(model="gpt-transcribe", languages=["en"]),
                              "openai-beta", None),
    "beta-has-no-keywords": (SessionConfig.transcription(model="gpt-live-transcribe", keywords=["x"]),
                             "azure-preview", None),
    "beta-has-no-idle-timeout-ms": (SessionConfig.realtime(turn_detection=TurnDetection.server_vad(
        idle_timeout_ms=8000)), "azure-preview", None),
    "beta-has-no-include": (SessionConfig.realtime(include=[LOGPROBS_INCLUDE]), "openai-beta", None),
}

#: rule id -> the closest config that is fine (same dialect unless the dialect is the point).
NEAR_MISS: dict[str, tuple[SessionConfig, str, dict | None]] = {
    "pcm-rate": (SessionConfig.transcription(model="gpt-4o-transcribe", pcm_rate=24000), "openai-ga", None),
    "transcription-model-required": (SessionConfig.realtime(transcription=Transcription(model="whisper-1",
                                                                                         language="en")),
                                     "openai-ga", None),
    "transcription-model-as-session-model": (SessionConfig.realtime(model="gpt-realtime-2.1"), "openai-ga", None),
    "live-model-as-realtime-model": (SessionConfig.realtime(model="gpt-realtime-2.1"), "openai-ga", None),
    "azure-unknown-deployment": (SessionConfig.realtime(transcription="my-whisper"), "azure-ga", AZ_DEPLOYMENTS),
    "not-in-session": (SessionConfig.transcription(model="gpt-live-transcribe"), "openai-ga", None),
    "prompt-unsupported": (SessionConfig.realtime(transcription="gpt-4o-transcribe", prompt="Acme, Inc."),
                           "openai-ga", None),
    "vad-in-transcription-session": (SessionConfig.transcription(model="gpt-4o-transcribe",
                                                                 turn_detection="server_vad"), "openai-ga", None),
    "delay-unsupported": (SessionConfig.realtime(transcription="gpt-realtime-whisper", delay="low"), "openai-ga",
                          None),
    "languages-unsupported": (SessionConfig.transcription(model="gpt-transcribe", languages=["en", "fr"]),
                              "azure-ga", None),
    "keywords-unsupported": (SessionConfig.transcription(model="gpt-live-transcribe", keywords=["rtlab"]),
                             "openai-ga", None),
    "beta-has-no-delay": (SessionConfig.realtime(delay="low"), "azure-ga", None),
    "beta-has-no-languages": (SessionConfig.transcription(model="gpt-transcribe", languages=["en"]),
                              "openai-ga", None),
    "beta-has-no-keywords": (SessionConfig.transcription(model="gpt-live-transcribe", keywords=["x"]),
                             "azure-ga", None),
    "beta-has-no-idle-timeout-ms": (SessionConfig.realtime(turn_detection=TurnDetection.server_vad(
        idle_timeout_ms=8000)), "azure-ga", None),
    "beta-has-no-include": (SessionConfig.transcription(model="whisper-1", include=[LOGPROBS_INCLUDE]),
                            "openai-beta", None),
}


def test_every_rule_has_a_violating_and_a_valid_example():
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids)), "rule ids must be unique"
    assert set(VIOLATING) == set(ids), "a rule was added or removed: give it a violating example here"
    assert set(NEAR_MISS) == set(ids)
    assert len(RULES) == 16


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_fires_with_field_model_and_fix(rule):
    cfg, dialect, deployments = VIOLATING[rule.id]
    with pytest.raises(RuleViolation) as info:
        render(cfg, dialect, deployments=deployments)
    err = info.value
    assert isinstance(err, ConfigError) and isinstance(err, RtlabError)
    assert err.rule == rule.id and err.field == rule.field
    assert str(err).startswith(f"{rule.field}: ") and err.fix and f"Fix: {err.fix}" in str(err)
    named = cfg.model if rule.subject == "session" or (rule.subject == "auto" and cfg.kind == "realtime"
                                                        and cfg.model) else cfg.transcription.model
    assert err.model == named and (named is None or named in str(err))
    assert [v.rule for v in violations(cfg, dialect, deployments=deployments)][0] == rule.id


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_near_miss_is_sendable(rule):
    cfg, dialect, deployments = NEAR_MISS[rule.id]
    assert violations(cfg, dialect, deployments=deployments) == []
    render(cfg, dialect, deployments=deployments)


def test_render_can_skip_the_rules_for_probing():
    cfg, dialect, _ = VIOLATING["prompt-unsupported"]
    event = render(cfg, dialect, validate=False)
    assert event["session"]["audio"]["input"]["transcription"]["prompt"] == "Acme, Inc."


@pytest.mark.parametrize("name", list(TRANSCRIPTION_MODELS))
def test_rules_follow_the_capability_table(name):
    cap = TRANSCRIPTION_MODELS[name]
    checks = {
        "prompt-unsupported": (cap.prompt, SessionConfig.transcription(model=name, turn_detection=None, prompt="p")),
        "delay-unsupported": (cap.delay, SessionConfig.transcription(model=name, turn_detection=None,
                                                                     delay="high")),
        "languages-unsupported": (cap.languages_keywords,
                                  SessionConfig.transcription(model=name, turn_detection=None, languages=["en"])),
        "keywords-unsupported": (cap.languages_keywords,
                                 SessionConfig.transcription(model=name, turn_detection=None, keywords=["k"])),
        "vad-in-transcription-session": (cap.vad_in_transcription_session,
                                         SessionConfig.transcription(model=name, turn_detection="semantic_vad")),
        "not-in-session": (cap.in_session, SessionConfig.realtime(transcription=name)),
    }
    for rule_id, (allowed, cfg) in checks.items():
        fired = {v.rule for v in violations(cfg, "openai-ga")}
        assert (rule_id in fired) == (not allowed), (rule_id, name)


def test_unset_turn_detection_in_a_whisper_transcription_session_is_refused():
    cfg = SessionConfig(kind="transcription", transcription="gpt-realtime-whisper")
    with pytest.raises(RuleViolation, match="UNSET") as info:
        validate(cfg)
    assert info.value.rule == "vad-in-transcription-session"


def test_azure_deployment_map_applies_the_mapped_models_rules():
    # A deployment named after nothing: capabilities come from what it maps to.
    cfg = SessionConfig.realtime(transcription="my-whisper", prompt="Acme")
    assert violations(cfg, "azure-ga") == []  # unknown name, no map: not judged
    with pytest.raises(RuleViolation) as info:
        validate(cfg, "azure-ga", deployments=AZ_DEPLOYMENTS)
    assert info.value.rule == "prompt-unsupported"
    assert "my-whisper (deployment of gpt-realtime-whisper)" in str(info.value)
    validate(SessionConfig.realtime(transcription="my-4o", prompt="Acme"), "azure-ga", deployments=AZ_DEPLOYMENTS)
    # the map is an Azure thing: OpenAI dialects ignore it
    validate(SessionConfig.realtime(transcription="gpt-4o-transcribe"), "openai-ga", deployments=AZ_DEPLOYMENTS)
    err = violations(SessionConfig.realtime(transcription="gpt-4o-transcribe"), "azure-preview",
                     deployments=AZ_DEPLOYMENTS)[0]
    assert err.rule == "azure-unknown-deployment" and "my-4o, my-live, my-whisper" in str(err)


def test_ga_only_fields_are_absent_from_the_sdk_beta_types():
    beta_session = {
        "realtime": BetaSessionUpdateEvent.model_fields["session"].annotation,
        "transcription": TranscriptionSessionUpdate.model_fields["session"].annotation,
    }
    beta_key = {m.ga_path[-1]: m.beta_key for m in SHAPE_MAP}

    def unwrap(annotation):
        return next(a for a in typing.get_args(annotation) if a is not type(None))

    for path, _ga_path, _beta_key, kinds in GA_ONLY_FIELDS:
        for kind in kinds:
            model = beta_session[kind]
            *parents, leaf = path.split(".")
            for part in parents:
                model = unwrap(model.model_fields[beta_key.get(part, part)].annotation)
            assert leaf not in model.model_fields, (path, kind)


# ==============================================================================================================
# Requested vs applied
# ==============================================================================================================
def test_diff_reports_changed_dropped_and_added():
    requested = SessionConfig.realtime(transcription=Transcription(model="gpt-realtime-whisper", language="en"),
                                       noise_reduction="far_field", voice="marin")
    applied = dataclasses.replace(
        requested,
        transcription=Transcription(model="gpt-realtime-whisper"),
        turn_detection=TurnDetection.server_vad(silence_duration_ms=200, create_response=True),
        noise_reduction=UNSET, voice="alloy", instructions="Default instructions.")
    assert diff(requested, applied) == [
        Change("transcription.language", "en", None, "dropped"),
        Change("turn_detection.silence_duration_ms", 500, 200, "changed"),
        Change("turn_detection.create_response", None, True, "added-by-server"),
        Change("noise_reduction", "far_field", None, "dropped"),
        Change("voice", "marin", "alloy", "changed"),
        Change("instructions", None, "Default instructions.", "added-by-server"),
    ]
    frame = diff_frame(requested, applied)
    assert list(frame.columns) == ["path", "kind", "requested", "applied"]
    assert frame["kind"].value_counts().to_dict() == {"dropped": 2, "changed": 2, "added-by-server": 2}


def test_diff_turning_vad_off_is_one_change():
    requested = SessionConfig.transcription(model="gpt-realtime-whisper")  # turn_detection None
    applied = dataclasses.replace(requested, turn_detection=TurnDetection.server_vad())
    assert diff(requested, applied) == [
        Change("turn_detection", None, {"type": "server_vad", **SERVER_VAD_DEFAULTS}, "changed")]
    semantic = dataclasses.replace(applied, turn_detection=TurnDetection.semantic_vad())
    assert [c.path for c in diff(applied, semantic)] == ["turn_detection"]
    assert diff(requested, requested) == []


def test_diff_of_a_parsed_server_answer():
    requested = SessionConfig.realtime(transcription="gpt-realtime-whisper", voice="marin")
    echo = render(requested)
    echo["session"]["audio"]["output"]["voice"] = "alloy"
    echo["session"]["audio"]["input"]["transcription"] = None
    echo = {"type": "session.updated", "event_id": "e1", "session": echo["session"]}
    changes = {c.path: c for c in diff(requested, parse(echo))}
    assert changes["voice"].kind == "changed" and changes["voice"].applied == "alloy"
    assert changes["transcription"] == Change("transcription", {"model": "gpt-realtime-whisper"}, None, "changed")


# ==============================================================================================================
# Display
# ==============================================================================================================
def test_repr_html_shows_fields_and_exact_json():
    cfg = SessionConfig.realtime(instructions="<b>bold</b> & brief")
    page = cfg._repr_html_()
    assert "<table>" in page and "turn_detection" in page and "not set" in page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; brief" in page and "<b>bold</b> &" not in page
    assert "openai-ga" in page and "&quot;audio/pcm&quot;" in page


def test_show_renders_other_dialects_and_explains_refusals():
    cfg = SessionConfig.transcription(model="gpt-realtime-whisper")
    shown = cfg.show("azure-preview")
    assert shown.payload["type"] == "transcription_session.update"
    assert "transcription_session.update" in shown._repr_html_() and "azure-preview" in repr(shown)
    bad = SessionConfig.transcription(model="gpt-realtime-whisper", prompt="x")
    page = bad.show("openai-ga")._repr_html_()
    assert "Not sendable" in page and "transcription.prompt" in page
    with pytest.raises(RuleViolation):
        bad.show().to_json()
