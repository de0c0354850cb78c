"""rtlab.diagnose and rtlab.protocol.known_errors: every known error recognised from every shape it comes in.

The table tests walk every row (its examples are texts seen in the wild); the shape tests build the objects the
SDK and websockets really raise; the log test diagnoses errors the embedded emulator really sent over a socket.
"""

from __future__ import annotations

import asyncio
import json
import random
import string

import pytest
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.frames import Close
from websockets.http11 import Response

import rtlab
from rtlab.analysis.diagnose import Diagnoses, Diagnosis, diagnose, error_facts
from rtlab.config import SessionConfig
from rtlab.protocol.evidence import EVIDENCE_KINDS
from rtlab.protocol.known_errors import KNOWN_ERRORS, ErrorFacts, Match, best_match


# ==============================================================================================================
# The table
# ==============================================================================================================
@pytest.mark.parametrize("row_id", list(KNOWN_ERRORS))
def test_every_row_has_evidence_and_recognises_its_examples(row_id):
    row = KNOWN_ERRORS[row_id]
    assert row.evidence and all(e.kind in EVIDENCE_KINDS and e.source and e.date for e in row.evidence)
    assert row.cause.strip() and row.fix.strip() and row.title.strip()
    assert row.examples
    for example in row.examples:
        d = diagnose(example)
        assert d.id == row_id, (example, d.facts)
        assert d.known and d.cause == row.cause and d.fix == row.fix and d.evidence == row.evidence


def test_fixes_name_something_to_change():
    # A fix says what to set or call, not just "check your configuration".
    vague = [r.id for r in KNOWN_ERRORS.values()
             if not any(tok in r.fix for tok in ("AZURE_", "OPENAI_", "Target", "SessionConfig", "session.", "rtlab",
                                                  "az ", "retry", "Retry", "Wait", "wait", "Ignore", "credit",
                                                  "response.", "Drop", "Transcription(", "Split"))]
    assert vague == []


def test_no_row_claims_another_rows_examples_by_accident():
    # Each example's best match is its own row, and strictly: no other row scores as high.
    for row in KNOWN_ERRORS.values():
        for example in row.examples:
            facts = error_facts(example)
            scores = {other.id: other.score(facts) for other in KNOWN_ERRORS.values()}
            top = max(scores.values())
            assert scores[row.id] == top
            tied_before = [i for i, s in scores.items() if s == top]
            assert tied_before[0] == row.id, (row.id, tied_before)


def test_azure_misspelling_and_correct_spelling_both_match():
    for code in ("OpperationNotSupported", "OperationNotSupported", "opperationnotsupported"):
        d = diagnose({"type": "rtlab.handshake_failed", "status": 400, "code": code, "message": "whatever"})
        assert d.id == "azure_operation_not_supported", code
    # the message alone (no code) with HTTP 400 is enough, and says nothing about the model
    d = diagnose({"error": {"message": "The realtime operation does not work with the specified model. Please "
                                       "choose different model and try again."}, "status": 400})
    assert d.id == "azure_operation_not_supported"
    assert "AZURE_OPENAI_REALTIME_DEPLOYMENT" in d.fix


def test_specific_rows_beat_generic_ones():
    generic = diagnose({"type": "error", "error": {"code": "unknown_parameter", "message": "Unknown parameter: "
                                                                                          "'session.foo'."}})
    beta = diagnose({"type": "error", "error": {"code": "unknown_parameter", "message": "Unknown parameter: "
                                                                                       "'session.turn_detection'."}})
    assert (generic.id, beta.id) == ("unknown_parameter", "unknown_parameter_beta_field_on_ga")
    live = diagnose({"type": "error", "error": {"code": "invalid_model", "message": "gpt-live-1.1 not here"}})
    other = diagnose({"type": "error", "error": {"code": "invalid_model", "message": "nope"}})
    assert (live.id, other.id) == ("live_model_on_realtime", "transcription_model_as_session_model")


def test_provider_hint_leaves_out_the_other_providers_rows():
    facts = ErrorFacts(code="invalid_api_key", status=401, message="Incorrect API key provided.")
    assert best_match(facts)[0].id == "openai_invalid_api_key"
    assert best_match(facts, provider="azure")[0] is None


def test_a_match_needs_a_criterion():
    with pytest.raises(ValueError):
        Match()


# ==============================================================================================================
# Unknown and odd input: a clear answer, never an exception
# ==============================================================================================================
@pytest.mark.parametrize("odd", [
    "the flux capacitor is unhappy",
    {"type": "error", "error": {"code": "brand_new_code", "message": "Something nobody has seen."}},
    RuntimeError("socket on fire"),
    b"\xff\xfe not utf-8",
    {"error": {"code": None, "message": None}},
])
def test_unknown_errors_say_unknown(odd):
    d = diagnose(odd)
    assert isinstance(d, Diagnosis)
    assert d.id == "unknown" and not d.known and d.title == "unknown error"
    assert "no diagnosis" in d.cause and "rtlab probe" in d.fix
    assert "unknown error" in d.line() and d._repr_html_().startswith("<table")


@pytest.mark.parametrize("not_error", [{"type": "session.created", "session": {}}, 42, None, "", object(),
                                       {"type": "response.done", "response": {"status": "completed"}}])
def test_things_that_are_not_errors_are_said_to_be_so(not_error):
    d = diagnose(not_error)
    assert d.id == "unknown" and not d.is_error and d.title == "not an error"


# ==============================================================================================================
# Every input shape
# ==============================================================================================================
def _api_status_error(status: int, body: dict):
    import httpx2
    from openai import APIStatusError

    request = httpx2.Request("GET", "https://api.openai.com/v1/realtime")
    response = httpx2.Response(status, request=request, json={"error": body})
    return APIStatusError(f"Error code: {status} - {json.dumps({'error': body})}", response=response, body=body)


def test_openai_sdk_status_errors():
    exc = _api_status_error(401, {"message": "Incorrect API key provided: sk-abc***wxyz.", "type":
                                  "invalid_request_error", "param": None, "code": "invalid_api_key"})
    d = diagnose(exc)
    assert d.id == "openai_invalid_api_key"
    assert (d.facts.status, d.facts.code, d.facts.exception) == (401, "invalid_api_key", "APIStatusError")
    # the same error as its str(), the way it shows up in a log line or a traceback
    text = "Error code: 403 - {'error': {'code': 'AuthenticationTypeDisabled', 'message': 'Key based " \
           "authentication is disabled for this resource.'}}"
    d = diagnose(text)
    assert (d.id, d.facts.status) == ("azure_key_auth_disabled", 403)


def test_websockets_handshake_refusal_and_close_frames():
    body = json.dumps({"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource "
                                                                          "does not exist."}}).encode()
    refused = InvalidStatus(Response(404, "Not Found", [], body))
    d = diagnose(refused)
    assert (d.id, d.facts.status, d.facts.event) == ("azure_deployment_not_found", 404, "handshake")

    closed = ConnectionClosedError(Close(4000, "invalid_request_error.beta_api_shape_disabled"), None)
    d = diagnose(closed)
    assert (d.id, d.facts.close_code, d.facts.code) == ("beta_api_retired", 4000, "beta_api_shape_disabled")
    key = ConnectionClosedError(Close(3000, "invalid_request_error.invalid_api_key"), None)
    assert diagnose(key).id == "openai_invalid_api_key"


def test_handshake_pseudo_event_from_rtlab_session():
    from rtlab.runs import handshake_error_event

    body = json.dumps({"error": {"code": "OpperationNotSupported", "message": "The realtime operation does not "
                                                                              "work with the specified model."}})
    event = handshake_error_event(InvalidStatus(Response(400, "Bad Request", [], body.encode())))
    assert event["type"] == "rtlab.handshake_failed"
    d = diagnose(event)
    assert (d.id, d.facts.status, d.facts.event) == ("azure_operation_not_supported", 400, "handshake")


def test_azure_identity_exception():
    from azure.core.exceptions import ClientAuthenticationError

    exc = ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token from the included "
                                    "credentials.")
    assert diagnose(exc).id == "entra_no_credential"


def test_bare_bodies_and_failure_events():
    assert diagnose({"statusCode": 401, "message": "Unauthorized. Access token is missing, invalid, audience is "
                                                   "incorrect (https://cognitiveservices.azure.com), or have "
                                                   "expired."}).facts.status == 401
    d = diagnose({"code": "input_audio_buffer_commit_empty", "message": "buffer too small"})
    assert d.id == "commit_empty"
    d = diagnose('{"type": "error", "error": {"code": "session_expired", "message": "x"}}')
    assert d.id == "session_expired"


def test_secrets_in_errors_are_masked_everywhere():
    rng = random.Random(3)
    key = "sk-" + "proj-" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(40))
    error = {"type": "error", "error": {"code": "invalid_api_key", "message": f"Incorrect API key provided: {key}"}}
    d = diagnose(error)
    outputs = [d.line(), d._repr_html_(), json.dumps(d.raw), json.dumps(d.to_dict()), repr(d), str(d),
               Diagnoses([d]).to_frame().to_csv(), Diagnoses([d])._repr_html_()]
    for out in outputs:
        assert key not in out and key[8:30] not in out


def test_lists_give_diagnoses_with_a_frame_and_lines():
    many = diagnose([{"type": "error", "error": {"code": "conversation_already_has_active_response"}},
                     "nothing known"])
    assert isinstance(many, Diagnoses) and [d.id for d in many] == ["active_response", "unknown"]
    frame = many.to_frame()
    assert list(frame["diagnosis"]) == ["active_response", "unknown"]
    assert {"cause", "fix", "evidence", "status", "code", "message"} <= set(frame.columns)
    assert len(many.lines()) == 2 and all("\n" not in line for line in many.lines())
    assert [d.id for d in many.unknown] == ["unknown"]
    assert "<table" in many._repr_html_()


def test_line_is_one_line_with_raw_error_diagnosis_fix_and_evidence_kind():
    d = diagnose({"type": "conversation.item.input_audio_transcription.failed", "item_id": "item_1",
                  "error": {"type": "server_error", "code": None,
                            "message": "Input transcription failed for item 'item_1'."}})
    line = d.line()
    assert "\n" not in line
    assert line.startswith("Input transcription failed for item 'item_1'.")
    assert "[reported]" in line and "AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS" in line


def test_rtlab_diagnose_is_exported_lazily():
    assert rtlab.diagnose is diagnose
    assert "diagnose" in dir(rtlab)


# ==============================================================================================================
# A real event log from the embedded emulator
# ==============================================================================================================
def test_errors_the_emulator_sent_over_a_socket_are_diagnosed(tmp_path):
    from rtlab.data import clip_path
    from rtlab.emulator import start
    from rtlab.runs import RemoteLeg, RunOptions, arun_legs
    from rtlab.targets import Target

    with start(seed=5, api_key="the-right-key-123") as emu:
        good = Target.local(emu.url, api_key="the-right-key-123")
        bad_key = Target.local(emu.url, api_key="a-wrong-key-456")
        legs = [
            # refused by the emulator's rule: gpt-realtime-whisper takes no VAD in a transcription session
            RemoteLeg("whisper-vad", good, SessionConfig.transcription(model="gpt-realtime-whisper",
                                                                       turn_detection="server_vad"),
                      validate=False),
            # refused at the handshake
            RemoteLeg("bad-key", bad_key, SessionConfig.realtime()),
        ]
        log = asyncio.run(arun_legs(clip_path("short"), legs, out=tmp_path,
                                    options=RunOptions(speed=float("inf"), progress=False, settle_timeout_s=5)))
    found = diagnose(log)
    assert isinstance(found, Diagnoses)
    by_source = {d.where["source"]: d for d in found}
    assert by_source["whisper-vad"].id == "turn_detection_not_supported"
    assert by_source["bad-key"].id == "openai_invalid_api_key"
    assert by_source["bad-key"].facts.status == 401
    assert all(d.where["seq"] is not None and d.where["t_ms"] is not None for d in found)
    frame = found.to_frame()
    assert set(frame["source"]) == {"whisper-vad", "bad-key"}
    # the same log, loaded from disk, gives the same diagnoses
    from rtlab.log import EventLog

    again = diagnose(EventLog.load(tmp_path / "events.jsonl"))
    assert [d.id for d in again] == [d.id for d in found]
