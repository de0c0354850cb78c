"""A study as data: a corpus × a grid of conditions × sources, its run settings and rate limits, and its units.

Layer: runs (study). Pure: reading a study file does no audio and no network. A study file (YAML or JSON)::

    study: noise-and-telephone        # id: letters, digits, . _ -
    seed: 7                           # seeds the emulator, noise and bootstrap: same seed, same results
    corpus: {bundled: [short, monologue]}     # see rtlab.study.corpus
    conditions:
      base:                           # fields shared by every condition
        target: local                 # local | local-azure | openai | azure | azure-preview | http://HOST:PORT
        voice_model: gpt-realtime-2.1
        sidecars: [local]             # transcription[:MODEL] | local | oob
      vary:                           # grid axes: one condition per combination
        in_session_model: [gpt-realtime-whisper, gpt-4o-transcribe]
        transforms: [[], [{snr_db: 10}], [telephone]]
      include:                        # optional extra conditions (over base)
        - {name: whisper-low-delay, in_session_model: gpt-realtime-whisper, delay: low}
    run: {speed: 1, chunk_ms: 40, concurrency: 4}
    limits:                           # per target, shared by every worker of the study
      openai: {sessions: 8, audio_minutes_per_minute: 60}

A condition's fields: ``target``, ``voice_model``, ``in_session_model`` (None: no in-session transcription),
``delay`` (gpt-realtime-whisper), ``sidecars``, ``transforms`` (see :class:`rtlab.transforms.Transform`),
``input_format`` and an optional ``name``. Its id is the name, else ``c-`` and 8 hex digits of its parameters.

A *unit* is one corpus item under one condition. Its id hashes the condition's parameters and the item's key,
so it is the same in every run of the study; its seed comes from the study seed and the unit id.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..protocol.catalogue import DEFAULT_VOICE_MODEL
from ..transforms import Transform
from .corpus import CorpusItem, read_corpus

__all__ = ["TARGET_NAMES", "Condition", "RateLimit", "RunSettings", "Study", "Unit", "load_study"]

TARGET_NAMES = ("local", "local-azure", "openai", "azure", "azure-preview")
DEFAULT_SIDECARS = ("transcription:gpt-4o-transcribe", "local", "oob")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CONDITION_FIELDS = ("name", "target", "voice_model", "in_session_model", "delay", "sidecars", "transforms",
                     "input_format")


def _digest(obj: Any, n: int) -> str:
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed from any JSON-able parts (stable across processes and machines, unlike ``hash``)."""
    return int(_digest(list(parts), 8), 16) & 0x7FFFFFFF


# --------------------------------------------------------------------------------------------------
# Conditions
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Condition:
    """One cell of the grid: where and how every file of the corpus is run (see the module docstring)."""

    target: str = "local"
    voice_model: str = DEFAULT_VOICE_MODEL
    in_session_model: str | None = "gpt-realtime-whisper"
    delay: str | None = None
    sidecars: tuple[str, ...] = DEFAULT_SIDECARS
    transforms: tuple[Transform, ...] = ()
    input_format: str = "pcm16"
    name: str | None = None

    def __post_init__(self) -> None:
        t = self.target
        if not isinstance(t, str) or not (t in TARGET_NAMES or re.match(r"^(https?|wss?)://", t)):
            raise ConfigError(f"condition target {t!r} is not known", field="target",
                              fix=f"use one of {', '.join(TARGET_NAMES)} or the URL of an `rtlab serve` emulator")
        for f in ("voice_model", "input_format"):
            if not isinstance(getattr(self, f), str) or not getattr(self, f):
                raise ConfigError(f"condition {f} must be a non-empty string, got {getattr(self, f)!r}", field=f)
        for f in ("in_session_model", "delay"):
            if getattr(self, f) is not None and not isinstance(getattr(self, f), str):
                raise ConfigError(f"condition {f} must be a string or null, got {getattr(self, f)!r}", field=f)
        sidecars = self.sidecars
        if isinstance(sidecars, str):
            sidecars = (sidecars,)
        if not isinstance(sidecars, Sequence) or not all(isinstance(s, str) for s in sidecars):
            raise ConfigError(f"condition sidecars must be a list of specs, got {sidecars!r}", field="sidecars",
                              fix="e.g. sidecars: [local, transcription:gpt-4o-transcribe, oob]")
        object.__setattr__(self, "sidecars", tuple(sidecars))
        steps = self.transforms
        if steps is None or isinstance(steps, str | Mapping):
            steps = [] if steps is None else [steps]
        object.__setattr__(self, "transforms",
                           tuple(Transform.parse(s, f"transforms[{i}]") for i, s in enumerate(steps)))
        if self.name is not None and (not isinstance(self.name, str) or not _ID.match(self.name)):
            raise ConfigError(f"condition name {self.name!r} must be 1-64 letters, digits, '.', '_' or '-'",
                              field="name")

    @classmethod
    def parse(cls, obj: Mapping[str, Any], where: str = "condition") -> Condition:
        if not isinstance(obj, Mapping):
            raise ConfigError(f"{where}: expected a mapping of condition fields, got {obj!r}", field="conditions")
        unknown = sorted(set(obj) - set(_CONDITION_FIELDS))
        if unknown:
            raise ConfigError(f"{where}: unknown condition fields {unknown}", field="conditions",
                              fix=f"use {', '.join(_CONDITION_FIELDS)}")
        try:
            return cls(**{k: v for k, v in obj.items()})
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}", field=exc.field) from None

    def params(self) -> dict[str, Any]:
        """The parameters that decide the results (everything but the name), as canonical JSON-ready data."""
        return {"target": self.target, "voice_model": self.voice_model, "in_session_model": self.in_session_model,
                "delay": self.delay, "sidecars": list(self.sidecars),
                "transforms": [t.to_json() for t in self.transforms], "input_format": self.input_format}

    @property
    def id(self) -> str:
        return self.name or f"c-{_digest(self.params(), 8)}"

    def label(self) -> str:
        """Short human-readable description: in-session model, delay, transforms, target."""
        parts = [self.in_session_model or "no in-session transcription"]
        if self.delay:
            parts.append(f"delay {self.delay}")
        parts += [t.label() for t in self.transforms] or ["clean"]
        if self.target != "local":
            parts.append(self.target)
        return " · ".join(parts)

    def n_sessions(self) -> int:
        """Remote sessions one unit opens at once: the voice session and each transcription sidecar."""
        return 1 + sum(1 for s in self.sidecars if s.split(":", 1)[0].strip().lower() in ("transcription", "ts"))


def expand_conditions(spec: Any) -> list[Condition]:
    """``conditions:`` of a study file (``base`` + ``vary`` grid + ``include``, or a plain list) as conditions."""
    if spec is None:
        return [Condition()]
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        return [Condition.parse(c, f"conditions[{i}]") for i, c in enumerate(spec)]
    if not isinstance(spec, Mapping):
        raise ConfigError(f"conditions: expected a mapping with base/vary/include or a list, got {spec!r}",
                          field="conditions")
    unknown = sorted(set(spec) - {"base", "vary", "include"})
    if unknown:
        raise ConfigError(f"conditions: unknown keys {unknown}", field="conditions", fix="use base, vary, include")
    base = dict(spec.get("base") or {})
    vary = spec.get("vary") or {}
    if not isinstance(vary, Mapping):
        raise ConfigError(f"conditions.vary must map fields to lists of options, got {vary!r}", field="vary")
    axes = []
    for key, options in vary.items():
        if not isinstance(options, Sequence) or isinstance(options, str) or not options:
            raise ConfigError(f"conditions.vary.{key} must be a non-empty list of options, got {options!r}",
                              field=f"vary.{key}", fix=f"e.g. {key}: [a, b] (each entry is one option)")
        axes.append([(key, o) for o in options])
    out = []
    for combo in itertools.product(*axes) if axes else [()]:
        out.append(Condition.parse({**base, **dict(combo)}, "conditions.vary " + ", ".join(
            f"{k}={v!r}" for k, v in combo)))
    for i, extra in enumerate(spec.get("include") or []):
        if not isinstance(extra, Mapping):
            raise ConfigError(f"conditions.include[{i}] must be a mapping, got {extra!r}", field="include")
        out.append(Condition.parse({**base, **extra}, f"conditions.include[{i}]"))
    return out


# --------------------------------------------------------------------------------------------------
# Run settings and limits
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSettings:
    """How units are fed and retried.

    ``speed``, ``chunk_ms`` and ``tail_ms`` change the results (latencies are only meaningful at speed 1);
    ``concurrency`` (in-process units at once), ``max_attempts`` and the back-off bounds do not.
    """

    speed: float = 1.0
    chunk_ms: int = 40
    tail_ms: int = 1500
    settle_timeout_s: float = 20.0
    concurrency: int = 4
    max_attempts: int = 6
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0

    def __post_init__(self) -> None:
        if not isinstance(self.speed, int | float) or not self.speed > 0:
            raise ConfigError(f"run.speed must be > 0, got {self.speed!r}", field="run.speed")
        for f in ("chunk_ms", "tail_ms", "concurrency", "max_attempts"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < (0 if f == "tail_ms" else 1):
                raise ConfigError(f"run.{f} must be a whole number >= {0 if f == 'tail_ms' else 1}, got {v!r}",
                                  field=f"run.{f}")
        for f in ("settle_timeout_s", "backoff_base_s", "backoff_cap_s"):
            v = getattr(self, f)
            if not isinstance(v, int | float) or isinstance(v, bool) or v < 0:
                raise ConfigError(f"run.{f} must be a number >= 0, got {v!r}", field=f"run.{f}")

    def result_params(self) -> dict[str, Any]:
        return {"speed": float(self.speed), "chunk_ms": self.chunk_ms, "tail_ms": self.tail_ms}


@dataclass(frozen=True)
class RateLimit:
    """A target's budget, shared by every worker of a study: concurrent remote sessions and audio minutes sent
    per minute (a token bucket holding one minute's worth). None: no limit."""

    sessions: int | None = None
    audio_minutes_per_minute: float | None = None

    def __post_init__(self) -> None:
        if self.sessions is not None and (not isinstance(self.sessions, int) or self.sessions < 1):
            raise ConfigError(f"limits: sessions must be a whole number >= 1, got {self.sessions!r}",
                              field="limits.sessions")
        a = self.audio_minutes_per_minute
        if a is not None and (not isinstance(a, int | float) or isinstance(a, bool) or not a > 0):
            raise ConfigError(f"limits: audio_minutes_per_minute must be > 0, got {a!r}",
                              field="limits.audio_minutes_per_minute")


# --------------------------------------------------------------------------------------------------
# Study and units
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Unit:
    """One corpus item under one condition: the smallest piece of work, run and written as a whole."""

    study_id: str
    unit_id: str
    seed: int  # this unit's emulator seed
    item_seed: int  # the item's noise seed: every condition hears the same noise on the same file
    study_seed: int
    condition: Condition
    item: CorpusItem
    run: RunSettings

    @property
    def condition_id(self) -> str:
        return self.condition.id


@dataclass(frozen=True)
class Study:
    """A loaded study: id, seed, corpus items, conditions, run settings and per-target limits."""

    id: str
    seed: int
    corpus: tuple[CorpusItem, ...]
    conditions: tuple[Condition, ...]
    run: RunSettings = RunSettings()
    limits: Mapping[str, RateLimit] = field(default_factory=dict)
    spec: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _ID.match(self.id):
            raise ConfigError(f"study id {self.id!r} must be 1-64 letters, digits, '.', '_' or '-'", field="study")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"study seed must be a whole number, got {self.seed!r}", field="seed")
        ids = [c.id for c in self.conditions]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ConfigError(f"conditions {dup} appear twice (same name, or the same parameters)",
                              field="conditions", fix="give each condition different parameters or a unique name")
        for name in self.limits:
            if name not in TARGET_NAMES and not re.match(r"^(https?|wss?)://", name):
                raise ConfigError(f"limits: {name!r} is not a target", field="limits",
                                  fix=f"key limits by target: {', '.join(TARGET_NAMES)} or an emulator URL")

    def units(self) -> list[Unit]:
        """Every (condition, item) pair, conditions in study order and items in key order."""
        out = []
        for cond in self.conditions:
            for item in self.corpus:
                uid = "u-" + _digest({"condition": cond.params(), "item": item.key}, 16)
                out.append(Unit(study_id=self.id, unit_id=uid, seed=derive_seed(self.seed, uid),
                                item_seed=derive_seed(self.seed, "item", item.key), study_seed=self.seed,
                                condition=cond, item=item, run=self.run))
        return out

    def fingerprint(self) -> dict[str, Any]:
        """What must not change between runs into one folder: the seed and the settings that change results."""
        return {"study": self.id, "seed": self.seed, **self.run.result_params()}

    def with_run(self, **changes: Any) -> Study:
        return replace(self, run=replace(self.run, **changes))


def study_from_dict(raw: Mapping[str, Any], *, base: str | Path = ".") -> Study:
    """Build a :class:`Study` from the parsed study file (see the module docstring)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"a study file must be a mapping, got {type(raw).__name__}", field="study")
    unknown = sorted(set(raw) - {"study", "seed", "corpus", "conditions", "run", "limits", "description"})
    if unknown:
        raise ConfigError(f"study file: unknown keys {unknown}", field="study",
                          fix="use study, seed, corpus, conditions, run, limits, description")
    if "study" not in raw or "corpus" not in raw:
        raise ConfigError("a study file needs at least `study:` (its id) and `corpus:`", field="study",
                          fix="e.g. study: my-study\ncorpus: {bundled: [short]}")
    run_raw = raw.get("run") or {}
    if not isinstance(run_raw, Mapping):
        raise ConfigError(f"run: expected a mapping, got {run_raw!r}", field="run")
    try:
        run = RunSettings(**run_raw)
    except TypeError:
        raise ConfigError(f"run: unknown settings {sorted(set(run_raw) - set(RunSettings.__dataclass_fields__))}",
                          field="run", fix=f"use {', '.join(RunSettings.__dataclass_fields__)}") from None
    limits = {}
    for name, lim in (raw.get("limits") or {}).items():
        if not isinstance(lim, Mapping) or set(lim) - {"sessions", "audio_minutes_per_minute"}:
            raise ConfigError(f"limits.{name}: expected {{sessions: N, audio_minutes_per_minute: M}}, got {lim!r}",
                              field="limits")
        limits[str(name)] = RateLimit(**lim)
    return Study(id=raw["study"], seed=raw.get("seed", 0), corpus=tuple(read_corpus(raw["corpus"], base=base)),
                 conditions=tuple(expand_conditions(raw.get("conditions"))), run=run, limits=limits,
                 spec=dict(raw))


def load_study(source: str | Path | Mapping[str, Any]) -> Study:
    """Load a study from a YAML/JSON file or a mapping (relative corpus paths: against the file's folder).

    Raises
    ------
    ConfigError
        The file is missing or not YAML, or the study breaks a rule; the message names the field and the fix.
    """
    if isinstance(source, Mapping):
        return study_from_dict(source)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"study file {str(path)!r} cannot be read ({exc.strerror})", field="study") from None
    import yaml

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"study file {str(path)!r} is not valid YAML: {exc}", field="study") from None
    return study_from_dict(raw, base=path.parent)
