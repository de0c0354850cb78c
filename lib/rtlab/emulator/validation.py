"""Check server events against the openai SDK's own pydantic models (the ground truth for event shapes).

The SDK's ``recv()`` does not validate what it receives, so the emulator's tests (and the core, with
``validate=True``) call :func:`validate_server_event` on every event it sends.

* GA events: the discriminated union ``openai.types.realtime.RealtimeServerEvent``.
* translation sessions (:func:`validate_translation_event`): ``openai.types.realtime.RealtimeTranslationServerEvent``.
* beta events: ``openai.types.beta.realtime.RealtimeServerEvent``; ``transcription_session.created`` has no model
  of its own in the SDK, so its ``session`` is checked against the beta ``TranscriptionSession`` model.
"""

from __future__ import annotations

from typing import Annotated, Any, Union, get_args

from openai.types.beta.realtime.realtime_server_event import RealtimeServerEvent as BetaServerEvent
from openai.types.beta.realtime.transcription_session import TranscriptionSession
from openai.types.realtime.realtime_server_event import RealtimeServerEvent as GaServerEvent
from openai.types.realtime.realtime_translation_server_event import RealtimeTranslationServerEvent
from pydantic import Field, TypeAdapter

__all__ = ["validate_server_event", "validate_translation_event"]


def _discriminated(union_alias: Any) -> TypeAdapter:
    # The SDK marks its union with its own PropertyInfo; rebuild it as a pydantic discriminated union so a bad
    # event gets one precise error (its own model's) instead of one per union member.
    members = get_args(get_args(union_alias)[0])
    return TypeAdapter(Annotated[Union[members], Field(discriminator="type")])  # type: ignore[valid-type]  # noqa: UP007


# Built at import: session threads share them (building them lazily from several threads at once is unsafe).
_ADAPTERS = {"ga": _discriminated(GaServerEvent), "beta": _discriminated(BetaServerEvent)}
_BETA_TRANSCRIPTION_SESSION = TypeAdapter(TranscriptionSession)
_TRANSLATION = _discriminated(RealtimeTranslationServerEvent)


def validate_server_event(event: dict[str, Any], shape: str) -> Any:
    """Validate one server event (a dict as sent on the wire) for ``shape`` (``"ga"`` or ``"beta"``).

    Returns the parsed SDK model. Raises ``pydantic.ValidationError`` when the event does not match.
    """
    if shape == "beta" and event.get("type") == "transcription_session.created":
        if not isinstance(event.get("event_id"), str):
            raise ValueError("transcription_session.created needs a string event_id")
        return _BETA_TRANSCRIPTION_SESSION.validate_python(event.get("session"))
    adapter = _ADAPTERS.get(shape)
    if adapter is None:
        raise ValueError(f"shape must be 'ga' or 'beta', got {shape!r}")
    return adapter.validate_python(event)


def validate_translation_event(event: dict[str, Any]) -> Any:
    """Validate one server event of a translation session (``/v1/realtime/translations``); returns the SDK model.

    Raises ``pydantic.ValidationError`` when the event matches none of the ``RealtimeTranslation*`` server models
    (or ``RealtimeErrorEvent``).
    """
    return _TRANSLATION.validate_python(event)
