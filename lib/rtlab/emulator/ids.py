"""Seeded ids of emulated sessions: one random stream per kind of id (layer: emulator).

An id depends only on its seed, its prefix and how many ids of that prefix the session drew before it. With one
stream for every kind, an item id would depend on how many event ids came first, and the number of events a
session sends (audio deltas of an answer, a barge-in's cancellation) varies with timing: notebook outputs that show
item ids would then change from run to run. Unseeded, ids are random as on the real services.
"""

from __future__ import annotations

import random
import string

__all__ = ["Ids"]

_ALNUM = string.ascii_letters + string.digits


class Ids:
    """Ids like the services' (``item_`` + 21 letters and digits), reproducible per prefix when seeded.

    >>> Ids(7)("item") == Ids(7)("item")
    True
    >>> ids = Ids(7); _ = ids("event"); ids("item") == Ids(7)("item")
    True
    """

    def __init__(self, seed: int | str | None) -> None:
        self.seed = seed
        self._streams: dict[str, random.Random] = {}

    def stream(self, prefix: str) -> random.Random:
        """The random stream of one kind of id."""
        rng = self._streams.get(prefix)
        if rng is None:
            rng = random.Random(f"{self.seed}:{prefix}") if self.seed is not None else random.Random()
            self._streams[prefix] = rng
        return rng

    def __call__(self, prefix: str) -> str:
        rng = self.stream(prefix)
        return f"{prefix}_" + "".join(rng.choice(_ALNUM) for _ in range(21))

    def hex128(self, prefix: str) -> str:
        """A 32-digit lowercase hex id (Azure Speech request and message ids)."""
        return f"{self.stream(prefix).getrandbits(128):032x}"
