"""Realtime event names, per dialect (layer: protocol).

rtlab speaks of server events by their GA names everywhere (analysis, widgets, runs, the emulator) and renames at
the edge with :func:`server_event_name` / :func:`canonical_event_name`. The constants below are the GA names rtlab
reads or writes; nothing else in the package spells an event name as a string literal.

Sources: the openai SDK 3.57 types (``openai.types.realtime`` for GA, ``openai.types.beta.realtime`` for beta) and
PROTOCOL.md "GA vs beta dialect".
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal

__all__ = [
    "APPEND", "BETA_TO_GA_SERVER", "CLEAR", "CLEARED", "CLIENT_EVENTS", "COMMIT", "COMMITTED", "ERROR", "EVENT_ROLES",
    "GA_ONLY_SERVER", "GA_TO_BETA_SERVER", "HANDSHAKE_FAILED", "INPUT_AUDIO_FIELDS", "LOCAL_FINAL", "LOCAL_PARTIAL", "LOCAL_SPEECH_STARTED", "LOCAL_SPEECH_STOPPED", "OUTPUT_AUDIO_FIELDS", "ITEM_ADDED", "ITEM_CREATE", "ITEM_DELETE",
    "ITEM_DELETED", "ITEM_DONE", "ITEM_RETRIEVE", "ITEM_RETRIEVED", "ITEM_TRUNCATE", "ITEM_TRUNCATED",
    "OUTPUT_AUDIO_DELTA", "OUTPUT_AUDIO_DONE", "OUTPUT_AUDIO_TRANSCRIPT_DELTA", "OUTPUT_AUDIO_TRANSCRIPT_DONE",
    "OUTPUT_TEXT_DELTA", "OUTPUT_TEXT_DONE", "RATE_LIMITS_UPDATED", "RESPONSE_CANCEL", "RESPONSE_CONTENT_PART_ADDED",
    "RESPONSE_CONTENT_PART_DONE", "RESPONSE_CREATE", "RESPONSE_CREATED", "RESPONSE_DONE", "RESPONSE_ITEM_ADDED",
    "RESPONSE_ITEM_DONE", "SESSION_CREATED", "SESSION_UPDATE", "SESSION_UPDATED", "SESSION_EVENTS", "Shape",
    "SPEECH_STARTED", "SPEECH_STOPPED", "TEXT_DELTAS", "TEXT_DONES", "TIMEOUT_TRIGGERED", "TR_COMPLETED", "TR_DELTA",
    "TR_FAILED", "TR_SEGMENT", "TRANSCRIPTION_EVENTS", "TRANSCRIPTION_SESSION_EVENTS", "UNPARSEABLE",
    "canonical_event_name", "client_events", "server_event_name",
]

Shape = Literal["ga", "beta"]

# -- client events (same name in both shapes, except transcription_session.update) ------------------------------
SESSION_UPDATE = "session.update"
APPEND = "input_audio_buffer.append"
COMMIT = "input_audio_buffer.commit"
CLEAR = "input_audio_buffer.clear"
ITEM_CREATE = "conversation.item.create"
ITEM_RETRIEVE = "conversation.item.retrieve"
ITEM_TRUNCATE = "conversation.item.truncate"
ITEM_DELETE = "conversation.item.delete"
RESPONSE_CREATE = "response.create"
RESPONSE_CANCEL = "response.cancel"

# -- server events (GA names) -----------------------------------------------------------------------------------
ERROR = "error"
SESSION_CREATED = "session.created"
SESSION_UPDATED = "session.updated"
SPEECH_STARTED = "input_audio_buffer.speech_started"
SPEECH_STOPPED = "input_audio_buffer.speech_stopped"
COMMITTED = "input_audio_buffer.committed"
CLEARED = "input_audio_buffer.cleared"
TIMEOUT_TRIGGERED = "input_audio_buffer.timeout_triggered"
ITEM_ADDED = "conversation.item.added"
ITEM_DONE = "conversation.item.done"
ITEM_RETRIEVED = "conversation.item.retrieved"
ITEM_TRUNCATED = "conversation.item.truncated"
ITEM_DELETED = "conversation.item.deleted"
TR_DELTA = "conversation.item.input_audio_transcription.delta"
TR_COMPLETED = "conversation.item.input_audio_transcription.completed"
TR_FAILED = "conversation.item.input_audio_transcription.failed"
TR_SEGMENT = "conversation.item.input_audio_transcription.segment"
RESPONSE_CREATED = "response.created"
RESPONSE_DONE = "response.done"
RESPONSE_ITEM_ADDED = "response.output_item.added"
RESPONSE_ITEM_DONE = "response.output_item.done"
RESPONSE_CONTENT_PART_ADDED = "response.content_part.added"
RESPONSE_CONTENT_PART_DONE = "response.content_part.done"
OUTPUT_AUDIO_DELTA = "response.output_audio.delta"
OUTPUT_AUDIO_DONE = "response.output_audio.done"
OUTPUT_AUDIO_TRANSCRIPT_DELTA = "response.output_audio_transcript.delta"
OUTPUT_AUDIO_TRANSCRIPT_DONE = "response.output_audio_transcript.done"
OUTPUT_TEXT_DELTA = "response.output_text.delta"
OUTPUT_TEXT_DONE = "response.output_text.done"
RATE_LIMITS_UPDATED = "rate_limits.updated"

TEXT_DELTAS = (OUTPUT_TEXT_DELTA, OUTPUT_AUDIO_TRANSCRIPT_DELTA)
TEXT_DONES = (OUTPUT_TEXT_DONE, OUTPUT_AUDIO_TRANSCRIPT_DONE)
SESSION_EVENTS = (SESSION_CREATED, SESSION_UPDATED)
TRANSCRIPTION_EVENTS = (TR_DELTA, TR_COMPLETED, TR_FAILED, TR_SEGMENT)

#: Events that carry base64 audio and the field that holds it, per direction (GA names; beta names canonicalize
#: to these); the local sidecar records what it consumed as ``local.audio``; GPT-Live sends
#: ``session.input_audio.append``, translation sessions ``session.input_audio_buffer.append``, and both receive
#: ``session.output_audio.delta``. The event log stores this audio in tracks.
INPUT_AUDIO_FIELDS: MappingProxyType[str, str] = MappingProxyType(
    {APPEND: "audio", "session.input_audio.append": "audio", "session.input_audio_buffer.append": "audio",
     "local.audio": "audio"})
OUTPUT_AUDIO_FIELDS: MappingProxyType[str, str] = MappingProxyType(
    {OUTPUT_AUDIO_DELTA: "delta", "session.output_audio.delta": "delta"})

# -- rtlab's own pseudo-events in event logs (never on the wire) --------------------------------------------------
HANDSHAKE_FAILED = "rtlab.handshake_failed"
UNPARSEABLE = "rtlab.unparseable"

#: Events of the local engine (rtlab.engines.pipeline.LocalPipeline) as the local sidecar records them: the
#: pipeline's own events, not Realtime events (no server is involved). Every one carries ``item_id`` (its segment).
LOCAL_SPEECH_STARTED = "local.speech_started"  # audio_start_ms, detected_ms
LOCAL_PARTIAL = "local.partial"  # delta, text
LOCAL_SPEECH_STOPPED = "local.speech_stopped"  # speech_end_ms, detected_ms
LOCAL_FINAL = "local.final"  # start_ms, end_ms, transcript, cause, words

# -- GA <-> beta --------------------------------------------------------------------------------------------------
#: GA name -> beta name, for every server event whose name differs. Names absent here are the same in both.
GA_TO_BETA_SERVER: MappingProxyType[str, str] = MappingProxyType(
    {
        ITEM_ADDED: "conversation.item.created",
        OUTPUT_AUDIO_DELTA: "response.audio.delta",
        OUTPUT_AUDIO_DONE: "response.audio.done",
        OUTPUT_AUDIO_TRANSCRIPT_DELTA: "response.audio_transcript.delta",
        OUTPUT_AUDIO_TRANSCRIPT_DONE: "response.audio_transcript.done",
        OUTPUT_TEXT_DELTA: "response.text.delta",
        OUTPUT_TEXT_DONE: "response.text.done",
    }
)
BETA_TO_GA_SERVER: MappingProxyType[str, str] = MappingProxyType({v: k for k, v in GA_TO_BETA_SERVER.items()})

#: GA server events with no beta counterpart (not in the SDK's beta server-event union).
GA_ONLY_SERVER: frozenset[str] = frozenset({ITEM_DONE, TR_SEGMENT, TIMEOUT_TRIGGERED})

#: Session lifecycle events of a transcription session, per shape.
TRANSCRIPTION_SESSION_EVENTS: MappingProxyType[str, MappingProxyType[str, str]] = MappingProxyType(
    {
        "ga": MappingProxyType({"update": SESSION_UPDATE, "created": SESSION_CREATED, "updated": SESSION_UPDATED}),
        "beta": MappingProxyType(
            {
                "update": "transcription_session.update",
                "created": "transcription_session.created",
                "updated": "transcription_session.updated",
            }
        ),
    }
)

#: Client events each session kind understands (GA names).
CLIENT_EVENTS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "realtime": (SESSION_UPDATE, APPEND, COMMIT, CLEAR, ITEM_CREATE, ITEM_RETRIEVE, ITEM_TRUNCATE, ITEM_DELETE,
                     RESPONSE_CREATE, RESPONSE_CANCEL),
        "transcription": (SESSION_UPDATE, APPEND, COMMIT, CLEAR, ITEM_RETRIEVE, ITEM_DELETE),
    }
)


def client_events(kind: str, shape: Shape) -> tuple[str, ...]:
    """The client event names a session of ``kind`` accepts in ``shape`` (beta transcription sessions are
    configured with ``transcription_session.update``)."""
    events = CLIENT_EVENTS[kind]
    if shape == "beta" and kind == "transcription":
        return tuple(TRANSCRIPTION_SESSION_EVENTS["beta"]["update"] if e == SESSION_UPDATE else e for e in events)
    return events


def server_event_name(ga_name: str, shape: Shape) -> str | None:
    """The name of a GA server event in ``shape``; ``None`` when that shape does not send it."""
    if shape == "ga":
        return ga_name
    if ga_name in GA_ONLY_SERVER:
        return None
    return GA_TO_BETA_SERVER.get(ga_name, ga_name)


def canonical_event_name(name: str) -> str:
    """The GA name of a server event given in either shape (beta names map to GA, GA names stay)."""
    if name.startswith("transcription_session."):
        return "session." + name.split(".", 1)[1]
    return BETA_TO_GA_SERVER.get(name, name)


# -- roles: what an event means for a timeline, whatever its protocol family --------------------------------------
#: event type (canonical name) -> role. Views (widgets, plots) draw by role, so every family shows the same way:
#: ``speech_start`` / ``speech_stop`` (the source's own VAD), ``commit``, ``partial`` (a piece of input
#: transcript), ``final`` (a turn's final input transcript), ``error`` (errors and failed transcriptions),
#: ``response_start`` / ``response_end`` (assistant output), ``output`` (assistant audio or transcript).
EVENT_ROLES: MappingProxyType[str, str] = MappingProxyType({
    # Realtime sessions (voice and transcription)
    SPEECH_STARTED: "speech_start",
    SPEECH_STOPPED: "speech_stop",
    COMMITTED: "commit",
    TR_DELTA: "partial",
    TR_COMPLETED: "final",
    TR_FAILED: "error",
    RESPONSE_CREATED: "response_start",
    RESPONSE_DONE: "response_end",
    OUTPUT_AUDIO_DELTA: "output",
    OUTPUT_AUDIO_TRANSCRIPT_DELTA: "output",
    OUTPUT_TEXT_DELTA: "output",
    ERROR: "error",
    HANDSHAKE_FAILED: "error",
    # the local engine (rtlab.engines.pipeline, as the local sidecar records it)
    LOCAL_SPEECH_STARTED: "speech_start",
    LOCAL_SPEECH_STOPPED: "speech_stop",
    LOCAL_PARTIAL: "partial",
    LOCAL_FINAL: "final",
    # Azure Speech (the SDK's ConversationTranscriber / SpeechRecognizer events, as rtlab records them)
    "azure_speech.speech_start_detected": "speech_start",
    "azure_speech.speech_end_detected": "speech_stop",
    "azure_speech.transcribing": "partial",
    "azure_speech.recognizing": "partial",
    "azure_speech.transcribed": "final",
    "azure_speech.recognized": "final",
    "azure_speech.canceled": "error",
    # translation sessions and GPT-Live (openai SDK 3.57: realtime translations, openai.types.live)
    "session.input_transcript.delta": "partial",
    "session.output_transcript.delta": "output",
    "session.output_audio.delta": "output",
})

#: Out-of-band transcripts arrive as response text: for out-of-band sources these rows win over EVENT_ROLES.
OOB_ROLES: MappingProxyType[str, str] = MappingProxyType({
    OUTPUT_TEXT_DELTA: "partial",
    OUTPUT_TEXT_DONE: "final",
})


def role_of(event_type: str, source: str = "") -> str | None:
    """The role of an event type (``None``: not drawn); out-of-band sources read their text as transcript."""
    if source.endswith("oob") and event_type in OOB_ROLES:
        return OOB_ROLES[event_type]
    return EVENT_ROLES.get(event_type)
