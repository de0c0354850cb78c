"""Conversation items: the ordered list of a session's items and the client events that act on them.

Layer: emulator. Items are stored in the GA shape without ``object`` (published GA traces show none on
``conversation.item.added``/``done``); the beta dialect reshapes them at the edge. ``conversation.item.truncate``
checks ``audio_end_ms`` against the audio actually sent for the item and removes the item's text transcript
(documented: SDK ``conversation_item_truncate_event.py``: the server errors when ``audio_end_ms`` is past the
audio, and truncating deletes the server-side transcript so no unheard text stays in the context).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .base import Events, ProtocolError, copy_json

__all__ = ["Conversation"]


class Conversation:
    """The items of the default conversation, in order."""

    def __init__(self, events: Events) -> None:
        self.events = events
        self.items: dict[str, dict] = {}
        self.order: list[str] = []
        self.heard: dict[str, str] = {}  # user item -> what the voice model heard (its reply input)
        self.audio_ms: dict[str, float] = {}  # user item -> committed audio; assistant item -> audio sent
        self.last_heard = ""

    def previous(self) -> str | None:
        return self.order[-1] if self.order else None

    def previous_of(self, item_id: str) -> str | None:
        idx = self.order.index(item_id)
        return self.order[idx - 1] if idx > 0 else None

    def add(self, item: dict, previous: str | None) -> Iterator[dict]:
        """Store ``item`` and announce it (GA: added, then done when completed; beta: created)."""
        self.items[item["id"]] = item
        self.order.append(item["id"])
        ev = self.events.ev("conversation.item.added", previous_item_id=previous, item=copy_json(item))
        if ev is not None:
            yield ev
        if self.events.shape == "ga" and item.get("status") == "completed":
            yield self.events.ev("conversation.item.done", previous_item_id=previous,  # type: ignore[misc]
                                 item=copy_json(item))

    def user_audio_item(self, item_id: str, heard: str, audio_ms: float) -> dict:
        self.heard[item_id] = heard
        self.audio_ms[item_id] = audio_ms
        self.last_heard = heard
        return {"id": item_id, "type": "message", "status": "completed", "role": "user",
                "content": [{"type": "input_audio", "transcript": None}]}

    def set_transcript(self, item_id: str, text: str) -> None:
        item = self.items.get(item_id)
        if item is not None and item.get("role") == "user" and item["content"]:
            item["content"][0]["transcript"] = text

    # -------------------------------------------------------------------------------------------- events
    @staticmethod
    def _item_arg(event: dict) -> str:
        item_id = event.get("item_id")
        if not isinstance(item_id, str):
            raise ProtocolError("missing_required_parameter", "Missing required parameter: 'item_id'.",
                                param="item_id")
        return item_id

    def on_create(self, event: dict) -> Iterator[dict]:
        item = event.get("item")
        if not isinstance(item, dict):
            raise ProtocolError("missing_required_parameter", "Missing required parameter: 'item'.", param="item")
        if item.get("type", "message") != "message" or item.get("role") not in ("user", "system", "assistant"):
            raise ProtocolError("invalid_value", "Only message items with role 'user', 'system' or 'assistant' are "
                                "supported by the emulator.", param="item.type")
        content = item.get("content")
        if not isinstance(content, list):
            raise ProtocolError("missing_required_parameter", "Missing required parameter: 'item.content'.",
                                param="item.content")
        item_id = item.get("id") if isinstance(item.get("id"), str) else self.events.id("item")
        if item_id in self.items:
            raise ProtocolError("item_create_duplicate_id", f"Item with id '{item_id[:64]}' already exists.",
                                param="item.id")
        ctype = {"user": "input_text", "system": "input_text", "assistant": "output_text"}[item["role"]]
        parts = [{"type": ctype, "text": str(c.get("text", ""))} for c in content if isinstance(c, dict)]
        stored = {"id": item_id, "type": "message", "status": "completed", "role": item["role"], "content": parts}
        if item["role"] == "user":
            text = " ".join(p["text"] for p in parts).strip()
            self.heard[item_id] = text
            self.last_heard = text
        yield from self.add(stored, self.previous())

    def on_retrieve(self, event: dict) -> Iterator[dict]:
        item_id = self._item_arg(event)
        if item_id not in self.items:
            raise ProtocolError("item_retrieve_invalid_item_id",
                                f"Error retrieving item: the item with id '{item_id[:64]}' does not exist.",
                                param="item_id")
        yield self.events.ev("conversation.item.retrieved", item=copy_json(self.items[item_id]))  # type: ignore[misc]

    def on_delete(self, event: dict) -> Iterator[dict]:
        item_id = self._item_arg(event)
        if item_id not in self.items:
            raise ProtocolError("item_delete_invalid_item_id",
                                f"Error deleting item: the item with id '{item_id[:64]}' does not exist.",
                                param="item_id")
        del self.items[item_id]
        self.order.remove(item_id)
        yield self.events.ev("conversation.item.deleted", item_id=item_id)  # type: ignore[misc]

    def on_truncate(self, event: dict) -> Iterator[dict]:
        item_id = self._item_arg(event)
        item = self.items.get(item_id)
        if item is None or item.get("role") != "assistant":
            raise ProtocolError("item_truncate_invalid_item_id",
                                f"Error truncating item: the assistant item with id '{item_id[:64]}' does not exist.",
                                param="item_id")
        end = event.get("audio_end_ms")
        if isinstance(end, bool) or not isinstance(end, int) or end < 0:
            raise ProtocolError("invalid_value", "Invalid value for 'audio_end_ms': expected a non-negative integer.",
                                param="audio_end_ms")
        index = event.get("content_index", 0)
        if isinstance(index, bool) or not isinstance(index, int) or index != 0:
            raise ProtocolError("invalid_value", f"Invalid value for 'content_index': {index!r}. The item has one "
                                "content part (index 0).", param="content_index")
        sent = int(self.audio_ms.get(item_id, 0))
        if end > sent:
            # Wording assumed (the SDK documents the refusal, no published text): it names both numbers.
            raise ProtocolError("invalid_value", f"Audio content of {sent}ms is shorter than the requested "
                                f"audio_end_ms of {end}ms.", param="audio_end_ms")
        for part in item.get("content") or []:
            if isinstance(part, dict) and "transcript" in part:
                part["transcript"] = ""
        yield self.events.ev("conversation.item.truncated", item_id=item_id, content_index=0,  # type: ignore[misc]
                             audio_end_ms=end)

    @staticmethod
    def referenced(items: Any) -> list[str]:
        """Ids of the items an out-of-band response's ``input`` refers to (``item_reference``, at the top or as
        content)."""
        ids: list[Any] = []
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "item_reference":
                ids.append(item.get("id"))
                continue
            ids += [c.get("id") for c in item.get("content") or []
                    if isinstance(c, dict) and c.get("type") == "item_reference"]
        return [i for i in ids if isinstance(i, str)]

    def input_audio_ms(self, items: Any = None) -> list[float]:
        """Audio a response hears: every item of the conversation, or only those ``items`` refer to (a response
        with its own ``input`` has a new context: documented, ``response.create`` ``input``)."""
        if items is None:
            return [ms for ms in self.audio_ms.values() if ms > 0]
        return [ms for i in self.referenced(items) if (ms := self.audio_ms.get(i, 0)) > 0]

    def as_reference_text(self, items: Any) -> str:
        """Text of the ``input`` items of an out-of-band response (text, or referenced items' heard text)."""
        texts: list[str] = []
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "item_reference" and item.get("id") in self.heard:
                texts.append(self.heard[item["id"]])
                continue
            for c in item.get("content") or []:
                if isinstance(c, dict):
                    if c.get("type") in ("input_text", "text", "output_text") and isinstance(c.get("text"), str):
                        texts.append(c["text"])
                    elif c.get("type") == "item_reference" and c.get("id") in self.heard:
                        texts.append(self.heard[c["id"]])
        return " ".join(t for t in texts if t) or self.last_heard
