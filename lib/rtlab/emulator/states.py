"""The emulator's turn and response state machines, as one table of transitions (in the manner of h11's _state.py).

Two small machines run side by side in every :class:`rtlab.emulator.realtime.Session`:

``turn``
    the user's side of the input audio buffer: ``listening`` until server VAD hears speech (``speaking``), back to
    ``listening`` when speech stops (which commits the turn), when the client commits, or when it clears.
``response``
    the assistant's side, for responses in the default conversation: ``idle`` → ``responding`` on
    ``response.create`` (or automatically after a VAD turn), back to ``idle`` when the response is done, cancelled
    by the client, or interrupted by new speech (barge-in, when ``interrupt_response`` is true).
    Out-of-band responses (``conversation: "none"``) never enter this machine: they may run beside it.

A trigger that the table refuses in the current state is answered by the error of its row (``error``); a trigger
the table does not know in that state at all is a :class:`Rejected` error too (code ``invalid_state``): nothing is
silently ignored. A notebook can draw the diagram with :func:`edges`::

    >>> [(e.source, e.trigger, e.target) for e in edges("response")][:2]
    [('idle', 'create', 'responding'), ('responding', 'done', 'idle')]
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["INITIAL", "TRANSITIONS", "Machine", "Rejected", "Transition", "edges"]


@dataclass(frozen=True)
class Transition:
    """One row: in ``machine`` at ``source``, ``trigger`` leads to ``target``, or is refused with ``error``."""

    machine: str
    source: str
    trigger: str
    target: str | None  # None: refused
    error: tuple[str, str] | None = None  # (code, message template; {state} and {response_id} are filled in)
    note: str = ""


TRANSITIONS: tuple[Transition, ...] = (
    # turn ------------------------------------------------------------------------------------------------
    Transition("turn", "listening", "speech_started", "speaking", note="server VAD heard speech"),
    Transition("turn", "speaking", "speech_stopped", "listening", note="commits the turn's audio"),
    Transition("turn", "listening", "commit", "listening", note="client commit (turn_detection null)"),
    Transition("turn", "speaking", "commit", "listening", note="client commit cuts the turn short"),
    Transition("turn", "listening", "clear", "listening"),
    Transition("turn", "speaking", "clear", "listening", note="audio dropped; VAD must hear new speech"),
    # response --------------------------------------------------------------------------------------------
    Transition("response", "idle", "create", "responding"),
    Transition("response", "responding", "done", "idle", note="status completed"),
    Transition("response", "responding", "cancel", "idle", note="status cancelled, reason client_cancelled"),
    Transition("response", "responding", "speech_started", "idle",
               note="barge-in: status cancelled, reason turn_detected (when interrupt_response)"),
    Transition(
        "response", "responding", "create", None,
        error=("conversation_already_has_active_response",
               "Conversation already has an active response in progress: {response_id}. Wait until the response "
               "is finished before creating a new one."),
    ),
    Transition(
        "response", "idle", "cancel", None,
        error=("response_cancel_not_active", "Cancellation failed: no active response found."),
    ),
)

INITIAL: dict[str, str] = {"turn": "listening", "response": "idle"}

_INDEX: dict[tuple[str, str, str], Transition] = {(t.machine, t.source, t.trigger): t for t in TRANSITIONS}


def edges(machine: str) -> list[Transition]:
    """The allowed transitions of ``machine`` (``"turn"`` or ``"response"``), for drawing a diagram."""
    if machine not in INITIAL:
        raise ValueError(f"machine must be one of {sorted(INITIAL)}, got {machine!r}")
    return [t for t in TRANSITIONS if t.machine == machine and t.target is not None]


class Rejected(Exception):
    """A trigger refused by the table; ``code`` and ``message`` become a protocol error event."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class Machine:
    """The current state of one machine; :meth:`fire` moves it along the table."""

    def __init__(self, name: str):
        if name not in INITIAL:
            raise ValueError(f"machine must be one of {sorted(INITIAL)}, got {name!r}")
        self.name = name
        self.state = INITIAL[name]

    def __repr__(self) -> str:
        return f"Machine({self.name!r}, state={self.state!r})"

    def can(self, trigger: str) -> bool:
        row = _INDEX.get((self.name, self.state, trigger))
        return row is not None and row.target is not None

    def fire(self, trigger: str, **fmt: str) -> Transition:
        """Apply ``trigger``. Returns the row taken.

        Raises
        ------
        Rejected
            When the table refuses ``trigger`` in the current state (with its row's error), or has no row for it
            (``invalid_state``).
        """
        row = _INDEX.get((self.name, self.state, trigger))
        if row is None:
            raise Rejected("invalid_state", f"'{trigger}' is not allowed while the {self.name} is {self.state}.")
        if row.target is None:
            code, template = row.error or ("invalid_request_error", "{trigger} is not allowed in state {state}")
            raise Rejected(code, template.format(state=self.state, trigger=trigger, **fmt))
        self.state = row.target
        return row
