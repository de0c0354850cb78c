"""Evidence: how rtlab knows a fact about a real service (layer: protocol).

Every statement rtlab makes about OpenAI or Azure (a profile row, a catalogue entry, a rule, a diagnosis, a price)
carries an :class:`Evidence`:

=============  =====================================================================================================
``documented``  official documentation or the official SDK (its types and docstrings)
``reported``    a public issue, pull request or forum thread where users (or staff) report the behaviour
``observed``    a probe of a real endpoint by rtlab, with its date (``source``: "probe of <endpoint> on <date>")
``assumed``     the emulator's own choice where no source says; shown as an assumption wherever it surfaces
=============  =====================================================================================================

``source`` is a URL or a short citation; ``date`` the ISO date of the source (or of the observation).

>>> Evidence.parse({"evidence": "reported", "source": "livekit/agents issue 3210", "date": "2026-06-01"}, "x")
Evidence(kind='reported', source='livekit/agents issue 3210', date='2026-06-01', note='')
"""

from __future__ import annotations

import datetime as _dt
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from rtlab.errors import ConfigError

__all__ = ["EVIDENCE_KINDS", "Evidence", "EvidenceKind", "count_by_kind"]

EvidenceKind = Literal["documented", "reported", "observed", "assumed"]
EVIDENCE_KINDS: tuple[str, ...] = ("documented", "reported", "observed", "assumed")
_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")


@dataclass(frozen=True)
class Evidence:
    """Where a fact about a real service comes from. See the module docstring for the four kinds."""

    kind: EvidenceKind
    source: str
    date: str
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in EVIDENCE_KINDS:
            raise ConfigError(f"evidence kind {self.kind!r} is not one of {', '.join(EVIDENCE_KINDS)}",
                              field="evidence", fix=f"use one of {', '.join(EVIDENCE_KINDS)}")
        if not isinstance(self.source, str) or not self.source.strip():
            raise ConfigError("evidence needs a non-empty source (a URL, a citation, or 'probe of ... on DATE')",
                              field="source")
        if not isinstance(self.date, str) or not _DATE.match(self.date):
            raise ConfigError(f"evidence date {self.date!r} is not an ISO date (YYYY-MM-DD or YYYY-MM)",
                              field="date", fix="e.g. '2026-12-01'")

    @classmethod
    def observed(cls, endpoint: str, when: str | None = None, note: str = "") -> Evidence:
        """An observation by a probe of ``endpoint`` (today, UTC, unless ``when`` is given)."""
        day = when or _dt.datetime.now(_dt.timezone.utc).date().isoformat()
        return cls("observed", f"probe of {endpoint} on {day}", day[:10], note)

    def to_json(self) -> dict[str, str]:
        out = {"evidence": self.kind, "source": self.source, "date": self.date}
        if self.note:
            out["note"] = self.note
        return out

    @classmethod
    def parse(cls, obj: Mapping[str, Any], where: str) -> Evidence:
        """Read ``{"evidence", "source", "date"[, "note"]}``; the error names ``where`` when a key is missing."""
        if not isinstance(obj, Mapping):
            raise ConfigError(f"{where}: expected an object with evidence, source and date")
        missing = [k for k in ("evidence", "source", "date") if not obj.get(k)]
        if missing:
            raise ConfigError(f"{where}: no {', '.join(missing)}: every statement about a real service carries "
                              "its evidence (documented / reported / observed / assumed), a source and a date",
                              field=missing[0], fix='add e.g. "evidence": "assumed", "source": "rtlab emulator '
                                                    'choice", "date": "2026-12-01"')
        try:
            return cls(str(obj["evidence"]), str(obj["source"]), str(obj["date"]), str(obj.get("note") or ""))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}", field=exc.field, fix=exc.fix) from None

    def __str__(self) -> str:
        return f"{self.kind} ({self.source}, {self.date})"


def count_by_kind(items: Iterable[Evidence]) -> dict[str, int]:
    """How many of ``items`` are of each kind, in the order of :data:`EVIDENCE_KINDS` (zeros included)."""
    counts = Counter(e.kind for e in items)
    return {k: counts.get(k, 0) for k in EVIDENCE_KINDS}
