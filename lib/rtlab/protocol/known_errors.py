"""Known errors of the real Realtime services as data: how to recognise each, its cause, its fix, its source.

Layer: protocol. Each :class:`KnownError` row says how to recognise one error the OpenAI or Azure OpenAI
Realtime service returns (its ``code``, ``type``, HTTP status, WebSocket close code, event type and a pattern of
its message), why it happens and what to change (naming the rtlab setting or environment variable), with the
:class:`~rtlab.protocol.evidence.Evidence` for the row: the public issue, forum thread or document where the text
was seen, or ``assumed`` where rtlab only expects it. ``examples`` holds error texts as they were seen (or, where
the evidence note says so, built from the reported code): the tests check that every row recognises its own
examples, and nothing else claims them.

An error is matched as :class:`ErrorFacts` (the normalised fields of any error shape, built by
:func:`rtlab.analysis.diagnose.error_facts`). A row lists alternative :class:`Match` patterns; a pattern matches
when every criterion it names holds, and scores the number of criteria it names, so the most specific row wins
(``OpperationNotSupported`` with its message beats a bare HTTP 400). Ties go to the row listed first.

>>> row, score = best_match(ErrorFacts(status=404, code="DeploymentNotFound"))
>>> row.id, score
('azure_deployment_not_found', 1)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .evidence import Evidence

__all__ = ["KNOWN_ERRORS", "ErrorFacts", "KnownError", "Match", "best_match", "known_error"]


@dataclass(frozen=True)
class ErrorFacts:
    """The fields of one error, whatever shape it came in (error event, HTTP body, exception, close frame).

    ``event`` is where it was seen: ``"error"`` (an error event), the type of a failure event
    (``conversation.item.input_audio_transcription.failed``, ``response.failed``), ``"handshake"`` (an HTTP
    refusal of the WebSocket upgrade), ``"close"`` (a close frame), ``"exception"`` or ``"text"``.
    """

    event: str | None = None
    status: int | None = None  # HTTP status of a refused handshake or HTTP call
    close_code: int | None = None  # WebSocket close code
    code: str | None = None
    type: str | None = None
    message: str | None = None
    param: str | None = None
    exception: str | None = None  # class name of the exception it came from

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Match:
    """One way to recognise an error: every criterion given must hold (codes compare case-insensitively,
    ``message`` is a case-insensitive regular expression searched in the message)."""

    codes: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    statuses: tuple[int, ...] = ()
    close_codes: tuple[int, ...] = ()
    events: tuple[str, ...] = ()
    message: str | None = None
    exceptions: tuple[str, ...] = ()  # class names of the exception the error came from
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (self.codes or self.types or self.statuses or self.close_codes or self.events or self.message
                or self.exceptions):
            raise ValueError("a Match needs at least one criterion")
        if self.message is not None:
            object.__setattr__(self, "_pattern", re.compile(self.message, re.IGNORECASE))

    def score(self, facts: ErrorFacts) -> int:
        """How many criteria hold (0 when any given criterion fails)."""
        n = 0
        for wanted, have in ((self.codes, facts.code), (self.types, facts.type)):
            if wanted:
                if have is None or have.lower() not in {w.lower() for w in wanted}:
                    return 0
                n += 1
        for wanted_i, have_i in ((self.statuses, facts.status), (self.close_codes, facts.close_code)):
            if wanted_i:
                if have_i not in wanted_i:
                    return 0
                n += 1
        if self.events:
            if facts.event not in self.events:
                return 0
            n += 1
        if self.exceptions:
            if facts.exception not in self.exceptions:
                return 0
            n += 1
        if self._pattern is not None:
            if not facts.message or not self._pattern.search(facts.message):
                return 0
            n += 1
        return n


@dataclass(frozen=True)
class KnownError:
    """One known error of a real service: how to recognise it, why it happens, how to fix it, and the source."""

    id: str
    title: str
    match: tuple[Match, ...]
    cause: str
    fix: str
    evidence: tuple[Evidence, ...]
    examples: tuple[Mapping[str, Any], ...]
    providers: tuple[str, ...] = ("openai", "azure")

    def __post_init__(self) -> None:
        if not self.match or not self.evidence or not self.examples:
            raise ValueError(f"known error {self.id!r} needs match patterns, evidence and examples")

    def score(self, facts: ErrorFacts) -> int:
        return max(m.score(facts) for m in self.match)


def _ev(kind: str, source: str, date: str, note: str = "") -> Evidence:
    return Evidence(kind, source, date, note)  # type: ignore[arg-type]


_QA = "https://learn.microsoft.com/en-us/answers/"
_GH = "https://github.com/"

# Order matters only for ties of equal specificity: list specific rows before generic ones.
_ROWS: tuple[KnownError, ...] = (
    KnownError(
        "beta_api_retired", "OpenAI retired the beta Realtime interface",
        (Match(codes=("beta_api_shape_disabled",)), Match(message=r"Realtime Beta API is no longer supported"),
         Match(close_codes=(4000,), message=r"beta_api_shape_disabled")),
        cause="The session speaks the beta dialect (header 'OpenAI-Beta: realtime=v1', beta event names such as "
              "transcription_session.update). OpenAI switched the beta interface off in May 2026: it sends this "
              "error and closes the socket with code 4000.",
        fix="Use the GA dialect on OpenAI: Target.openai() (dialect 'openai-ga', the default) or RTLAB_TARGET=openai; "
            "do not pass dialect='openai-beta'. On OpenAI, skip the probe's *-beta surfaces.",
        evidence=(_ev("reported", _GH + "jsboige/CoursIA/pull/13149", "2026-08-26",
                      "raw error event and close code 4000 captured against wss://api.openai.com"),
                  _ev("reported", _GH + "infinitocloud/asterisk_to_openai_rt_community/issues/4", "2026-05-21"),
                  _ev("reported", _GH + "y0sif/whisrs/pull/34", "2026-05-16")),
        examples=({"type": "error", "error": {
            "type": "invalid_request_error", "code": "beta_api_shape_disabled",
            "message": "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API.",
            "param": None}},
            "ConnectionClosedError: received 4000 (private use) invalid_request_error.beta_api_shape_disabled"),
        providers=("openai",),
    ),
    KnownError(
        "transcription_update_on_realtime_session", "Transcription-session update sent to a voice session",
        (Match(message=r"Passing a transcription session update event to a realtime session is not allowed"),),
        cause="The socket was opened as a voice (realtime) session (?model=... in the URL) and then got "
              "session.update with session.type='transcription' (or a beta transcription_session.update). The "
              "session type is fixed by the URL at connect time.",
        fix="For a transcription session connect with intent=transcription: SessionConfig.transcription(...) with "
            "target.connect('transcription') (rtlab does this for kind='transcription'). To transcribe inside a voice "
            "session keep session.type='realtime' and set audio.input.transcription "
            "(SessionConfig.realtime(transcription=MODEL)).",
        evidence=(_ev("reported", _QA + "a/12820829", "2026-06-10", "Azure /openai/v1/realtime, code invalid_parameter"),
                  _ev("reported", _GH + "crmitchelmore/justspeaktoit/pull/427", "2026-05-08", "OpenAI GA")),
        examples=({"type": "error", "error": {
            "type": "invalid_request_error", "code": "invalid_parameter",
            "message": "Passing a transcription session update event to a realtime session is not allowed."}},),
    ),
    KnownError(
        "realtime_update_on_transcription_session", "Voice-session update sent to a transcription session",
        (Match(message=r"Passing a realtime session update event to a transcription session is not allowed"),),
        cause="The socket was opened with intent=transcription and then got a session.update with "
              "session.type='realtime' (or voice-only fields).",
        fix="Send session.update with session.type='transcription' on a transcription session "
            "(SessionConfig.transcription(...)); open a voice session (target.connect('realtime')) for voice.",
        evidence=(_ev("assumed", "mirror of the reported 'transcription session update ... realtime session' error; "
                      "wording of the rtlab emulator", "2026-12", "not seen from a real service"),),
        examples=({"type": "error", "error": {
            "type": "invalid_request_error", "code": "invalid_parameter",
            "message": "Passing a realtime session update event to a transcription session is not allowed."}},),
    ),
    KnownError(
        "turn_detection_not_supported", "This transcription model refuses server turn detection",
        (Match(message=r"Turn detection is not supported (for this transcription model|with )"),),
        cause="gpt-realtime-whisper (and gpt-live-transcribe) take no server or semantic VAD in a transcription "
              "session: turn_detection must be null and the client commits the audio buffer itself.",
        fix="Use SessionConfig.transcription(model=..., turn_detection=None); rtlab then commits each turn with its "
            "local VAD (RemoteLeg). In the probe this shows for the transcription surfaces of these models.",
        evidence=(_ev("reported", _GH + "livekit/agents/pull/5779", "2026-05-20", "gpt-realtime-whisper"),
                  _ev("reported", _GH + "y0sif/whisrs/pull/34", "2026-05-16"),
                  _ev("reported", _GH + "OpenWhispr/openwhispr/pull/2077", "2026-09-08", "gpt-live-transcribe")),
        examples=({"type": "error", "error": {
            "type": "invalid_request_error", "code": "invalid_value",
            "message": "Turn detection is not supported for this transcription model."}},),
        providers=("openai",),
    ),
    KnownError(
        "transcription_model_as_session_model", "A transcription model named as the voice session model",
        (Match(message=r"is a transcription model and cannot be used as the realtime session model"),
         Match(message=r"is not supported in realtime mode"),
         Match(codes=("invalid_model",))),
        cause="The URL's ?model= (the session model) is a transcription model (whisper-1, gpt-4o-transcribe, "
              "gpt-realtime-whisper, ...). A voice session needs a voice model; transcription models go in "
              "audio.input.transcription.model or into a transcription session.",
        fix="Connect with a voice model (default gpt-realtime; on Azure the deployment in "
            "AZURE_OPENAI_REALTIME_DEPLOYMENT) and pass the transcription model as SessionConfig.realtime("
            "transcription=MODEL), or open a transcription session (SessionConfig.transcription(model=MODEL)).",
        evidence=(_ev("reported", _GH + "y0sif/whisrs/pull/34", "2026-05-16", "OpenAI, gpt-4o-mini-transcribe"),
                  _ev("reported", "https://community.openai.com/t/missing-documentation-for-websocket-realtime-"
                      "transcription-mode/1366640", "2026-12", "OpenAI, whisper-1; thread undated, date of reading"),
                  _ev("assumed", "code invalid_model for this case: rtlab's reading of the issue brief, no capture",
                      "2026-12")),
        examples=({"message": "Model \"gpt-4o-mini-transcribe\" is a transcription model and cannot be used as the "
                              "realtime session model. Use a realtime model for the session model. Pass this "
                              "transcription model as audio.input.transcription.model instead."},
                  "Error: Model \u201cwhisper-1\u201d is not supported in realtime mode."),
        providers=("openai",),
    ),
    KnownError(
        "live_model_on_realtime", "A GPT-Live model on the Realtime endpoint",
        (Match(codes=("invalid_model",), message=r"gpt-live"),),
        cause="gpt-live-1 / gpt-live-1.1 speak their own protocol on /v1/live/sessions (session.start), not the "
              "Realtime API; /v1/realtime refuses them. (gpt-live-transcribe is a Realtime transcription model.)",
        fix="Use a Realtime voice model for /v1/realtime (SessionConfig.realtime(model='gpt-realtime')), or talk "
            "to GPT-Live through the SDK's client.live.connect(); for transcription pick a transcription model such "
            "as gpt-live-transcribe.",
        evidence=(_ev("reported", _GH + "vercel/ai/releases/tag/@ai-sdk%2Fgateway@4.0.152", "2026-11-20",
                      "Live model ids on the realtime route were 'rejected with invalid_model'; the exact message was "
                      "not published, the example message is constructed"),),
        examples=({"type": "error", "error": {"type": "invalid_request_error", "code": "invalid_model",
                                              "message": "Model 'gpt-live-1' is not supported on /v1/realtime."}},),
        providers=("openai",),
    ),
    KnownError(
        "azure_operation_not_supported", "Azure: this deployment cannot be a realtime session model",
        (Match(codes=("OperationNotSupported", "OpperationNotSupported")),
         Match(statuses=(400,), message=r"realtime operation does not work with the specified model")),
        cause="The handshake's ?model= (GA) or deployment= (preview) names a deployment whose model cannot run a "
              "realtime session: a transcription model (gpt-realtime-whisper, gpt-4o-transcribe, whisper-1) or "
              "gpt-realtime-translate. Azure answers HTTP 400 and its message does not name the model; the code has "
              "been seen misspelled 'OpperationNotSupported'.",
        fix="Connect with the voice deployment (AZURE_OPENAI_REALTIME_DEPLOYMENT, e.g. your gpt-realtime deployment) "
            "and put the transcription deployment in audio.input.transcription.model (SessionConfig.realtime("
            "transcription=DEPLOYMENT)), or open a transcription session (intent=transcription). List the "
            "resource's deployments in AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS=name=model,... so rtlab checks them.",
        evidence=(_ev("reported", _QA + "a/12820829", "2026-06-10",
                      "HTTP 400, code spelled 'OpperationNotSupported', gpt-realtime-whisper on /openai/v1/realtime"),
                  _ev("reported", _QA + "questions/5912093", "2026-06-05",
                      "code 'OperationNotSupported' for gpt-realtime-translate on the preview sessions API")),
        examples=({"type": "rtlab.handshake_failed", "status": 400, "code": "OpperationNotSupported",
                   "message": "The realtime operation does not work with the specified model. Please choose "
                              "different model and try again."},
                  {"error": {"code": "OperationNotSupported",
                             "message": "The realtime operation does not work with the specified model. Please "
                                        "choose different model and try again."}}),
        providers=("azure",),
    ),
    KnownError(
        "azure_deployment_not_found", "Azure: no deployment of that name",
        (Match(codes=("DeploymentNotFound",)),
         Match(message=r"API deployment for this resource does not exist")),
        cause="The name in ?model= / deployment= (or a transcription model name) is not a deployment of this "
              "resource; rtlab may have sent a model name where Azure wants a deployment name. A deployment created "
              "in the last minutes may not be reachable yet.",
        fix="Set AZURE_OPENAI_REALTIME_DEPLOYMENT to the voice deployment's name and "
            "AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS=name=model,... to the transcription deployments exactly as listed "
            "in the portal (Deployments blade), and check AZURE_OPENAI_ENDPOINT is that resource; wait 5 minutes "
            "after creating a deployment.",
        evidence=(_ev("reported", _GH + "Azure/openai-at-scale/issues/48", "2023-08-23"),
                  _ev("reported", _GH + "microsoft/azure-openai-in-a-day-workshop/issues/8", "2023-05-24")),
        examples=({"type": "rtlab.handshake_failed", "status": 404, "code": "DeploymentNotFound",
                   "message": "The API deployment for this resource does not exist. If you created the deployment "
                              "within the last 5 minutes, please wait a moment and try again."},),
        providers=("azure",),
    ),
    KnownError(
        "input_transcription_failed", "Every turn's input transcription fails (opaque server_error)",
        (Match(events=("conversation.item.input_audio_transcription.failed",),
               message=r"Input transcription failed for item"),
         Match(types=("server_error",), message=r"Input transcription failed for item")),
        cause="The session accepted the transcription model but each turn fails with no detail. On Azure the usual "
              "cause is that audio.input.transcription.model is not the name of a transcription deployment of this "
              "resource (a model name, or a model not deployed there); gpt-realtime-whisper as the in-session "
              "transcriber of an Azure voice session is also reported to fail. Rarely, a transient service fault.",
        fix="On Azure deploy the transcription model and use its deployment name: "
            "AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS=my-4o=gpt-4o-transcribe and SessionConfig.realtime("
            "transcription='my-4o'); try a whisper-1 or gpt-4o-transcribe deployment; run `rtlab probe --target "
            "azure` to see which deployments work on which surface.",
        evidence=(_ev("reported", _QA + "questions/5772601", "2026-02-12",
                      "a Microsoft moderator: the transcription model must be deployed to the resource"),
                  _ev("reported", _GH + "openai/openai-agents-js/issues/297", "2025-08-05", "Azure, gpt-4o-transcribe"),
                  _ev("reported", _QA + "a/12379085", "2025-11-18", "same event during a transient outage"),
                  _ev("reported", _QA + "a/12783039", "2026-05-13",
                      "moderator: gpt-realtime-whisper not supported as in-session transcriber on Azure")),
        examples=({"type": "conversation.item.input_audio_transcription.failed", "item_id": "item_D81pLGqzIyXJ3JdRHoIhD",
                   "content_index": 0, "error": {
                       "type": "server_error", "code": None, "param": None,
                       "message": "Input transcription failed for item 'item_D81pLGqzIyXJ3JdRHoIhD'."}},),
    ),
    KnownError(
        "openai_invalid_api_key", "OpenAI: the key is wrong",
        (Match(codes=("invalid_api_key",)), Match(message=r"Incorrect API key provided")),
        cause="OPENAI_API_KEY is not a valid key (mistyped, revoked, or of another organisation/project). Over a "
              "WebSocket OpenAI may accept the upgrade and then close with code 3000 "
              "'invalid_request_error.invalid_api_key'.",
        fix="Set OPENAI_API_KEY to a current key from platform.openai.com/api-keys (the project that has Realtime "
            "access); do not use an Azure key with Target.openai().",
        evidence=(_ev("reported", _GH + "stitionai/devika/issues/512", "2024-04-29", "HTTP 401 body"),
                  _ev("reported", _GH + "twilio-samples/speech-assistant-openai-realtime-api-python/issues/4",
                      "2024-10-04", "close 3000 invalid_request_error.invalid_api_key on /v1/realtime")),
        examples=({"error": {"message": "Incorrect API key provided: sk-abc***wxyz. You can find your API key at "
                                        "https://platform.openai.com/account/api-keys.",
                             "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}},
                  "received 3000 (registered) invalid_request_error.invalid_api_key; then sent 3000 (registered) "
                  "invalid_request_error.invalid_api_key"),
        providers=("openai",),
    ),
    KnownError(
        "azure_invalid_key", "Azure: key or endpoint wrong",
        (Match(message=r"invalid subscription key or wrong API endpoint"),),
        cause="AZURE_OPENAI_API_KEY does not belong to the resource at AZURE_OPENAI_ENDPOINT (or is an OpenAI key, "
              "or was regenerated).",
        fix="Copy Key 1 of the same resource (portal: Keys and Endpoint) into AZURE_OPENAI_API_KEY and its endpoint "
            "into AZURE_OPENAI_ENDPOINT; or sign in without a key: unset AZURE_OPENAI_API_KEY (or set "
            "AZURE_OPENAI_AUTH=entra) and use Entra ID.",
        evidence=(_ev("reported", _GH + "SciSharp/BotSharp/issues/386", "2024-04-02", "HTTP 401, code '401'"),
                  _ev("reported", _GH + "microsoft/semantic-kernel/issues/10337", "2025-01-29")),
        examples=({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API "
                                                       "endpoint. Make sure to provide a valid key for an active "
                                                       "subscription and use a correct regional API endpoint for "
                                                       "your resource."}},),
        providers=("azure",),
    ),
    KnownError(
        "azure_key_auth_disabled", "Azure: keys are switched off for this resource",
        (Match(codes=("AuthenticationTypeDisabled",)),
         Match(message=r"Key based authentication is disabled for this resource")),
        cause="The resource has local (key) authentication disabled (disableLocalAuth): only Entra ID tokens are "
              "accepted, and any api-key is refused with HTTP 403.",
        fix="Sign in with Entra ID: unset AZURE_OPENAI_API_KEY or set AZURE_OPENAI_AUTH=entra (rtlab then uses "
            "DefaultAzureCredential; `az login` first), or pass Target.azure(credential=...). The identity needs "
            "the role 'Cognitive Services OpenAI User'.",
        evidence=(_ev("reported", _GH + "browser-use/browser-use/issues/1295", "2025-04-05", "HTTP 403"),
                  _ev("reported", _GH + "Azure-Samples/azure-search-openai-demo/issues/1617", "2024-05-15")),
        examples=({"error": {"code": "AuthenticationTypeDisabled",
                             "message": "Key based authentication is disabled for this resource."}},
                  "Error code: 403 - {'error': {'code': 'AuthenticationTypeDisabled', 'message': 'Key based "
                  "authentication is disabled for this resource.'}}"),
        providers=("azure",),
    ),
    KnownError(
        "entra_missing_role", "Azure Entra ID: the identity has no data-plane role",
        (Match(codes=("PermissionDenied",)), Match(message=r"Principal does not have access to API/Operation")),
        cause="The Entra ID token is valid, but the signed-in user, service principal or managed identity has no "
              "data-plane role on the resource (Owner/Contributor are control-plane roles and are not enough).",
        fix="Assign the role 'Cognitive Services OpenAI User' to that identity on the resource: az role assignment "
            "create --role \"Cognitive Services OpenAI User\" --assignee <principal-id> --scope <resource-id>; "
            "wait a few minutes for it to apply. Or use a key (AZURE_OPENAI_API_KEY).",
        evidence=(_ev("reported", _GH + "Azure-Samples/rag-data-openai-python-promptflow/issues/28", "2024-08-20",
                      "HTTP 401, code PermissionDenied"),
                  _ev("reported", _QA + "questions/5847093", "2026-04-01",
                      "moderator: Entra callers need 'Cognitive Services OpenAI User' on the resource")),
        examples=({"error": {"code": "PermissionDenied", "message": "Principal does not have access to "
                                                                    "API/Operation."}},),
        providers=("azure",),
    ),
    KnownError(
        "entra_bad_token", "Azure Entra ID: token missing, expired or for the wrong audience",
        (Match(message=r"Access token is missing, invalid, audience is incorrect"),
         Match(message=r"audience is incorrect")),
        cause="The bearer token was not accepted: none was sent, it expired, or it was issued for another audience "
              "(e.g. management.azure.com) instead of Cognitive Services.",
        fix="Get tokens for the scope https://cognitiveservices.azure.com/.default (rtlab does: Target.azure() with "
            "no key or AZURE_OPENAI_AUTH=entra); pass a credential, not a fixed token string, so it refreshes; "
            "check AZURE_OPENAI_ENDPOINT is the resource's own endpoint.",
        evidence=(_ev("reported", _GH + "Azure-Samples/azure-search-openai-demo/issues/2219", "2024-12-10"),
                  _ev("reported", _GH + "run-llama/llama_index/issues/12484", "2024-04-02"),
                  _ev("reported", _QA + "questions/5847093", "2026-04-01",
                      "moderator: Azure OpenAI tokens must be requested for https://cognitiveservices.azure.com/"
                      ".default")),
        examples=({"statusCode": 401, "message": "Unauthorized. Access token is missing, invalid, audience is "
                                                 "incorrect (https://cognitiveservices.azure.com), or have expired."},),
        providers=("azure",),
    ),
    KnownError(
        "entra_no_credential", "No Entra ID credential found on this machine",
        (Match(message=r"DefaultAzureCredential failed to retrieve a token"),
         Match(message=r"CredentialUnavailableError"),
         Match(exceptions=("ClientAuthenticationError", "CredentialUnavailableError"))),
        cause="rtlab signs in to Azure without a key (no AZURE_OPENAI_API_KEY, or AZURE_OPENAI_AUTH=entra) and "
              "azure-identity could not get a token: DefaultAzureCredential found no identity (no Azure CLI login, "
              "no AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, no managed identity), or the one it found "
              "was refused by Entra ID.",
        fix="Run `az login` (then retry), or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET for a "
            "service principal, or set AZURE_OPENAI_API_KEY to use a key instead.",
        evidence=(_ev("documented", "https://raw.githubusercontent.com/Azure/azure-sdk-for-python/main/sdk/identity/"
                      "azure-identity/TROUBLESHOOTING.md", "2026-10", "azure-identity troubleshooting guide"),),
        examples=("ClientAuthenticationError: DefaultAzureCredential failed to retrieve a token from the included "
                  "credentials.\nAttempted credentials:\n\tEnvironmentCredential: EnvironmentCredential "
                  "authentication unavailable. Environment variables are not fully configured.",
                  {"type": "rtlab.handshake_failed", "status": None, "code": None,
                   "message": "ClientAuthenticationError", "exception": "ClientAuthenticationError"}),
        providers=("azure",),
    ),
    KnownError(
        "missing_key", "No key presented",
        (Match(message=r"You didn't provide an API key"), Match(statuses=(401,), message=r"missing api key")),
        cause="The handshake carried no Authorization or api-key header: the key variable is empty.",
        fix="Set OPENAI_API_KEY (OpenAI) or AZURE_OPENAI_API_KEY (Azure; or use Entra ID with "
            "AZURE_OPENAI_AUTH=entra); Target.from_env() names the missing variable.",
        evidence=(_ev("assumed", "OpenAI's HTTP error text for a request without a key; rtlab emulator wording",
                      "2026-12", "not captured on a Realtime handshake"),),
        examples=({"type": "rtlab.handshake_failed", "status": 401, "code": "invalid_api_key",
                   "message": "Missing API key. Pass it as 'Authorization: Bearer KEY' or in the 'api-key' header."},
                  {"error": {"message": "You didn't provide an API key. You need to provide your API key in an "
                                        "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                             "type": "invalid_request_error", "param": None, "code": None}}),
    ),
    KnownError(
        "forbidden", "Access forbidden (403)",
        (Match(statuses=(403,)),),
        cause="The credentials are valid but may not use this endpoint or model: on OpenAI the project or key lacks "
              "access to the Realtime model (model permissions, a restricted key); on Azure the network rules "
              "(firewall, private endpoint) refuse this client, or the identity lacks a role.",
        fix="OpenAI: allow the model for the project and put an unrestricted key of that project in "
            "OPENAI_API_KEY (platform.openai.com project settings). Azure: check Networking (allowed IPs / private "
            "endpoint) of the resource in AZURE_OPENAI_ENDPOINT and give the identity 'Cognitive Services OpenAI "
            "User'.",
        evidence=(_ev("reported", _GH + "openai/openai-realtime-api-beta/issues/2", "2024-10-02",
                      "403 on the /v1/realtime upgrade for a key without Realtime access"),),
        examples=({"type": "rtlab.handshake_failed", "status": 403, "code": None, "message": "InvalidStatus"},),
    ),
    KnownError(
        "unknown_parameter_beta_field_on_ga", "A beta (flat) session field sent to a GA session",
        (Match(codes=("unknown_parameter",), message=r"'session\.(input_audio_format|output_audio_format|"
                                                     r"input_audio_transcription|input_audio_noise_reduction|"
                                                     r"turn_detection|modalities|max_response_output_tokens)"),),
        cause="The session.update is in the beta shape (flat input_audio_format, input_audio_transcription, "
              "turn_detection, modalities) but the session speaks GA, where these live under "
              "session.audio.input.* and output_modalities. GA refuses unknown keys.",
        fix="Render the SessionConfig for the target's dialect (target.render(config) / rtlab.config.render(config, "
            "'openai-ga'|'azure-ga')) instead of hand-written payloads; use a beta dialect only with "
            "Target.azure(preview=True).",
        evidence=(_ev("reported", "OpenAI community thread on g711_ulaw with the GA API (cited in PROTOCOL.md)",
                      "2026-06", "exact text 'Unknown parameter: 'session.input_audio_format''"),
                  _ev("reported", _GH + "livekit/agents/issues/3210", "2025-08-21",
                      "GA refuses unknown session keys with unknown_parameter naming the key")),
        examples=({"type": "error", "error": {"type": "invalid_request_error", "code": "unknown_parameter",
                                              "message": "Unknown parameter: 'session.input_audio_format'.",
                                              "param": "session.input_audio_format"}},),
    ),
    KnownError(
        "unknown_parameter_ga_field_on_beta", "A GA session field sent to a beta (Azure preview) session",
        (Match(codes=("unknown_parameter",), message=r"'session\.(type|audio|output_modalities|max_output_tokens)"),),
        cause="The session speaks the beta shape (Azure preview api-version path, or OpenAI-Beta header) but got GA "
              "fields (session.type, session.audio, output_modalities).",
        fix="Use the GA path for GA payloads: Target.azure() (GA v1, /openai/v1/realtime) rather than "
            "Target.azure(preview=True); or render the config for 'azure-preview' (target.render(config)).",
        evidence=(_ev("reported", _GH + "pipecat-ai/pipecat/pull/1324", "2025-10-06",
                      "'Unknown parameter: 'session.type'.' from an Azure preview session"),),
        examples=({"type": "error", "error": {"type": "invalid_request_error", "code": "unknown_parameter",
                                              "message": "Unknown parameter: 'session.type'.",
                                              "param": "session.type"}},),
        providers=("azure",),
    ),
    KnownError(
        "unknown_parameter", "A field the service does not know",
        (Match(codes=("unknown_parameter",)), Match(message=r"^Unknown parameter:")),
        cause="The event carries a field this endpoint does not accept (a field of a newer SDK or another dialect, "
              "or a typo). The error's param names it.",
        fix="Remove the named field or render the payload with rtlab.config.render for the target's dialect; check "
            "the field exists for this model and dialect in rtlab.protocol.",
        evidence=(_ev("reported", _GH + "livekit/agents/issues/3210", "2025-08-21"),
                  _ev("reported", _GH + "openai/openai-realtime-api-beta/issues/9", "2024-10-04")),
        examples=({"type": "error", "error": {"type": "invalid_request_error", "code": "unknown_parameter",
                                              "message": "Unknown parameter: 'session.tools[0].meta'.",
                                              "param": "session.tools[0].meta"}},),
    ),
    KnownError(
        "beta_event_on_ga_session", "A beta event name sent to a GA session",
        (Match(message=r"Invalid value: 'transcription_session\.update'"),),
        cause="transcription_session.update exists only in the beta dialect; a GA session refuses the event type.",
        fix="On GA send session.update with session.type='transcription' on a socket opened with "
            "intent=transcription (SessionConfig.transcription + a GA target).",
        evidence=(_ev("reported", _GH + "crmitchelmore/justspeaktoit/pull/427", "2026-05-08"),),
        examples=({"type": "error", "error": {"type": "invalid_request_error", "code": "invalid_value",
                                              "message": "Invalid value: 'transcription_session.update'."}},),
    ),
    KnownError(
        "missing_session_type", "GA session.update without session.type",
        (Match(message=r"Missing required parameter: 'session\.type'"),),
        cause="GA session.update requires session.type ('realtime' or 'transcription').",
        fix="Render the config with rtlab (target.render(config)), which always sets session.type.",
        evidence=(_ev("documented", "openai SDK 3.57 types/realtime/realtime_session_create_request_param.py "
                      "(type: Required)", "2026-12", "message wording assumed"),),
        examples=({"type": "error", "error": {"type": "invalid_request_error", "code": "missing_required_parameter",
                                              "message": "Missing required parameter: 'session.type'.",
                                              "param": "session.type"}},),
    ),
    KnownError(
        "prompt_not_supported", "This transcription model takes no prompt",
        (Match(message=r"prompt is not supported"),),
        cause="gpt-realtime-whisper takes no transcription prompt in GA sessions (gpt-transcribe and "
              "gpt-live-transcribe take keywords/languages instead).",
        fix="Drop Transcription(prompt=...) for this model; use keywords=[...] with gpt-live-transcribe.",
        evidence=(_ev("reported", _GH + "y0sif/whisrs/pull/38", "2026-05-20",
                      "quotes the OpenAI docs: prompt not supported for gpt-realtime-whisper; message wording "
                      "assumed"),),
        examples=({"type": "error", "error": {"type": "invalid_request_error", "code": "invalid_value",
                                              "message": "prompt is not supported with gpt-realtime-whisper."}},),
        providers=("openai",),
    ),
    KnownError(
        "model_not_found", "The model does not exist for this key",
        (Match(codes=("model_not_found",)), Match(message=r"does not exist or you do not have access to it")),
        cause="The model name is misspelled, retired, or not enabled for this organisation/project (sometimes "
              "reported inside a failed response.done rather than at the handshake).",
        fix="Use a current model name (rtlab.protocol lists them) and enable it for the project; pass it as "
            "connect model / SessionConfig.realtime(model=...).",
        evidence=(_ev("reported", _GH + "openai/openai-realtime-console/issues/561", "2025-09-18",
                      "response.done status failed, code model_not_found"),
                  _ev("reported", _GH + "openai/openai-realtime-agents/issues/28", "2025-02-19")),
        examples=({"type": "response.done", "response": {"status": "failed", "status_details": {
            "type": "failed", "error": {"type": "invalid_request_error", "code": "model_not_found",
                                        "message": "The model `gpt-realtime` does not exist or you do not have "
                                                   "access to it."}}}},),
        providers=("openai",),
    ),
    KnownError(
        "insufficient_quota", "Out of credit",
        (Match(codes=("insufficient_quota",)), Match(message=r"exceeded your current quota")),
        cause="The OpenAI organisation has no credit left or hit its monthly budget.",
        fix="Add credit or raise the budget in the OpenAI billing settings, then retry.",
        evidence=(_ev("reported", _GH + "aws-samples/aws-mcp-servers-samples/issues/20", "2023-02-26",
                      "points to OpenAI help article 6891831"),),
        examples=({"error": {"message": "You exceeded your current quota, please check your plan and billing "
                                        "details.", "type": "insufficient_quota", "param": None,
                             "code": "insufficient_quota"}},),
        providers=("openai",),
    ),
    KnownError(
        "rate_limited", "Rate limit reached",
        (Match(statuses=(429,)), Match(codes=("rate_limit_exceeded", "429")),
         Match(message=r"Rate limit reached|exceeded (token|call) rate limit|have exceeded the .*rate limit")),
        cause="Too many sessions, requests or tokens per minute/day for this key or deployment (Realtime models "
              "also have requests-per-day limits; Azure limits per deployment and pricing tier).",
        fix="Wait the time the message names and retry; run fewer sessions at once (rtlab probe(..., "
            "concurrency=1)); raise the limit (OpenAI usage tier; Azure quota: aka.ms/oai/quotaincrease, or a "
            "deployment with more TPM).",
        evidence=(_ev("reported", _GH + "openai/openai-agents-js/issues/1022", "2026-02-26",
                      "realtime model, requests per day"),
                  _ev("reported", _GH + "jasonacox/TinyLLM/issues/17", "2025-02-02", "Azure 429 text"),
                  _ev("reported", _GH + "dyad-sh/dyad/issues/1849", "2025-11-23", "Azure 429 text")),
        examples=({"error": {"message": "Rate limit reached for gpt-4o-mini-realtime in organization org-xx on "
                                        "requests per day (RPD): Limit 1000, Used 1000, Requested 1. Please try again "
                                        "in 1m26.4s.", "type": "requests", "code": "rate_limit_exceeded"}},
                  {"error": {"code": "429", "message": "Requests to the ChatCompletions_Create Operation under Azure "
                                                       "OpenAI API version 2023-05-15 have exceeded token rate limit "
                                                       "of your current AIServices S0 pricing tier. Please retry "
                                                       "after 86400 seconds."}}),
    ),
    KnownError(
        "commit_empty", "Commit of an (almost) empty audio buffer",
        (Match(codes=("input_audio_buffer_commit_empty",)),
         Match(message=r"buffer too small\. Expected at least 100ms of audio")),
        cause="input_audio_buffer.commit with less than 100 ms of audio since the last commit: typically a manual "
              "commit while server VAD already committed the turn, a commit right after another, or a commit "
              "before any audio was appended.",
        fix="With server VAD (turn_detection set) do not commit yourself; with turn_detection=None commit only "
            "after at least 100 ms of new audio (rtlab's RemoteLeg does this from its local VAD).",
        evidence=(_ev("reported", _GH + "betalgo/openai/issues/674", "2024-11-17"),
                  _ev("reported", _GH + "openai/openai-agents-js/issues/748", "2025-12-10")),
        examples=({"type": "error", "error": {
            "type": "invalid_request_error", "code": "input_audio_buffer_commit_empty",
            "message": "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, "
                       "but buffer only has 0.00ms of audio."}},),
    ),
    KnownError(
        "active_response", "A response is already in progress",
        (Match(codes=("conversation_already_has_active_response",)),
         Match(message=r"Conversation already has an active response")),
        cause="response.create while another response of the conversation is still running (often one that server "
              "VAD created automatically). Only one response per conversation runs at a time.",
        fix="Wait for response.done before the next response.create, or send response.cancel first; when driving "
            "responses yourself set turn_detection create_response=false. Out-of-band responses "
            "(conversation='none', rtlab's OutOfBandSidecar) do not collide.",
        evidence=(_ev("reported", _GH + "tleyden/arty/issues/81", "2025-11-20"),
                  _ev("reported", _GH + "openai/openai-agents-python/issues/1466", "2025-08-14"),
                  _ev("reported", _GH + "livekit/agents/pull/6818", "2026-08-12")),
        examples=({"type": "error", "error": {
            "type": "invalid_request_error", "code": "conversation_already_has_active_response",
            "message": "Conversation already has an active response in progress: resp_CdulSkgwnvcvHPA8FsqBM. Wait "
                       "until the response is finished before creating a new one."}},),
    ),
    KnownError(
        "cancel_not_active", "response.cancel with no active response",
        (Match(codes=("response_cancel_not_active",)), Match(message=r"Cancellation failed: no active response")),
        cause="response.cancel arrived after the response had finished (or named another response id): a race, "
              "harmless.",
        fix="Ignore it, or cancel only between response.created and response.done of that response.",
        evidence=(_ev("assumed", "rtlab emulator wording; context/protocol-audit.md (2026-12) lists the code among "
                      "those the emulator gets right, without a citation", "2026-12"),),
        examples=({"type": "error", "error": {"type": "invalid_request_error", "code": "response_cancel_not_active",
                                              "message": "Cancellation failed: no active response found."}},),
    ),
    KnownError(
        "session_expired", "The session hit its maximum duration",
        (Match(codes=("session_expired",)), Match(message=r"hit the maximum duration")),
        cause="A Realtime session lasts at most 60 minutes (30 minutes before the GA release); the service then "
              "ends it.",
        fix="Split long audio into clips shorter than the cap and run one session per clip (rtlab.audio.chunks / "
            "several run_session calls), or reconnect and carry the context over.",
        evidence=(_ev("reported", _GH + "livekit/agents/issues/2341", "2025-05-20",
                      "'Your session hit the maximum duration of 30 minutes'"),
                  _ev("documented", "OpenAI Realtime GA guide: 60-minute session cap (PROTOCOL.md 'Defaults and "
                      "limits')", "2026-12")),
        examples=({"type": "error", "error": {"type": "invalid_request_error", "code": "session_expired",
                                              "message": "Your session hit the maximum duration of 30 minutes."}},),
        providers=("openai",),
    ),
    KnownError(
        "server_error", "Internal error of the service",
        (Match(types=("server_error",), message=r"server had an error"),
         Match(message=r"The server had an error while processing your request")),
        cause="A fault inside the service (Azure sometimes reports session expiry or backend trouble this way).",
        fix="Retry; if it repeats, note the session id from the message and contact the provider; on Azure check "
            "the session is under the duration cap.",
        evidence=(_ev("reported", _GH + "livekit/agents/issues/2341", "2025-05-20", "Azure wording"),),
        examples=({"type": "error", "error": {
            "type": "server_error", "code": None,
            "message": "The server had an error while processing your request. Sorry about that! You can retry your "
                       "request, or contact us through our help center at aoai-realtimeapi-dri@microsoft.com if the "
                       "error persists. (Please include the session ID sess_BJtlOCDH4TegSOFQWOTHw in your "
                       "message.)"}},),
    ),
    KnownError(
        "resource_not_found", "No such path on this endpoint (404)",
        (Match(statuses=(404,), message=r"Resource not found"), Match(codes=("404",))),
        cause="The URL path does not exist on this endpoint: AZURE_OPENAI_ENDPOINT carries an extra path, a GA "
              "client points at the preview path (or the reverse), or a redirect dropped '/openai'.",
        fix="Set AZURE_OPENAI_ENDPOINT to the bare resource URL (https://RES.openai.azure.com, no /openai or "
            "/openai/v1); use Target.azure() for GA v1 and Target.azure(preview=True) for the api-version path.",
        evidence=(_ev("reported", "PROTOCOL.md 'Azure deviations': preview transcription_sessions redirect drops "
                      "/openai -> 404 (forum)", "2026-12", "exact body text assumed"),),
        examples=({"type": "rtlab.handshake_failed", "status": 404, "code": "404",
                   "message": "Resource not found"},),
        providers=("azure",),
    ),
)

#: Every known error by id, in matching order.
KNOWN_ERRORS: MappingProxyType[str, KnownError] = MappingProxyType({row.id: row for row in _ROWS})
if len(KNOWN_ERRORS) != len(_ROWS):  # pragma: no cover - a duplicated id is a bug in the table
    raise ValueError("duplicate known-error id")


def known_error(row_id: str) -> KnownError:
    """The row with this id (KeyError when there is none)."""
    return KNOWN_ERRORS[row_id]


def best_match(facts: ErrorFacts, *, provider: str | None = None) -> tuple[KnownError | None, int]:
    """The most specific row recognising ``facts`` and its score; ``(None, 0)`` when none does.

    ``provider`` (``"openai"`` or ``"azure"``), when known, leaves out rows that only occur with the other one.
    """
    best: KnownError | None = None
    best_score = 0
    for row in _ROWS:
        if provider in ("openai", "azure") and provider not in row.providers:
            continue
        score = row.score(facts)
        if score > best_score:
            best, best_score = row, score
    return best, best_score
