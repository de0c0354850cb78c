"""Provider profiles: what one endpoint accepts, as data, so the emulator can reproduce it offline.

A profile is a JSON file. ``data/profiles/openai.json`` and ``data/profiles/azure.json`` ship with rtlab (each
cites its sources and the date they were checked); the probe (``rtlab.probe``) saves a profile measured on a
real endpoint, and ``rtlab serve --profile PATH.json`` loads it.

Every behaviour row carries its evidence (``"evidence"``: documented / reported / observed / assumed, ``"source"``,
``"date"``; :class:`rtlab.protocol.evidence.Evidence`): the bundled profiles have it on every row (a test checks),
probe-saved profiles mark what the probe saw ``observed`` with the probe's date and endpoint, and
:meth:`Profile.evidence_counts` counts the rows by kind (``rtlab serve`` prints it).

Schema (every key but ``name`` is optional)::

    {
      "name": "azure",                              # shown in logs and session ids
      "source": "PROTOCOL.md; Azure realtime audio reference; forum threads",
      "date": "2026-06-30",                         # when the facts were checked / the probe ran
      "paths": ["/openai/v1/realtime", ...],        # request paths served (default: all four rtlab knows)
      "deployments": {"my-dep": "gpt-realtime"},    # Azure: deployment name -> model. null: names are models
      "session_models": {                           # outcome of the WebSocket handshake per session model
        "default": "accepted",                      #   (after mapping a deployment to its model)
        "gpt-realtime-whisper": {"outcome": "handshake_error", "status": 400,
                                 "code": "OperationNotSupported", "message": "..."}
      },
      "unknown_deployment": {"outcome": "handshake_error", "status": 404, "code": "DeploymentNotFound",
                             "message": "..."},     # handshake with a name absent from `deployments`
      "transcription": {                            # outcome of a transcription model per surface
        "<surface>": {"default": <outcome>, "models": {"<model or deployment>": <outcome>}}
      },
      "behaviour": {                                # how the endpoint behaves, one row per behaviour
        "silence_duration_ms": {"value": 200, "evidence": "reported", "source": "...", "date": "2025-12"}
      }
    }

Behaviour rows the emulator reads (:data:`BEHAVIOURS`): ``beta_interface`` (``{"outcome": "refused", "code",
"message", "close_code"}`` or ``{"outcome": "accepted"}``), ``silence_duration_ms`` (the server-VAD default shown
in ``session.created``), ``semantic_vad`` (``"implemented"`` or ``"silent"``: accepted, no turns), ``truncation``
(shown in ``session.created``), ``first_audio_ms`` (``{"p50", "p95"}``: modelled assistant audio start after the end
of speech), ``audio_pace`` (assistant audio seconds streamed per second), ``rate_limits_tokens`` (the tokens limit
shown in ``rate_limits.updated``), ``timing`` (the default ``--timing``); others document a behaviour for the
reader (e.g. ``preview_deprecated``).

Surfaces (the probe's four): ``realtime_ga`` (in-session transcription, GA ``session.update``),
``realtime_beta`` (in-session, beta/preview ``session.update``), ``transcription_ga`` (``intent=transcription``
with GA ``session.update``) and ``transcription_beta`` (beta ``transcription_session.update``). A surface absent
from the profile uses ``"*"`` when present, else accepts.

An *outcome* is a string (shorthand for ``{"outcome": <string>}``) or an object:

* ``{"outcome": "accepted", "streams": true|false|null}`` — works; ``streams`` overrides whether deltas arrive
  while audio arrives (null: the model's own behaviour, ``rtlab.protocol.TRANSCRIPTION_MODELS``);
* ``{"outcome": "error_event", "type": "invalid_request_error", "code": "...", "message": "...",
  "param": "..."}`` — the ``session.update`` that names the model is answered with this error event;
* ``{"outcome": "failed", "type": "server_error", "code": null, "message": "..."}`` — the session accepts the
  model, but every ``...input_audio_transcription`` of a turn ends in ``failed`` with this error;
* ``{"outcome": "handshake_error", "status": 400, "code": "...", "message": "..."}`` — (session models) the
  WebSocket upgrade is refused with this HTTP status and a JSON error body.

Built-in rules that the service applies whatever the endpoint (PCM rate, VAD with gpt-realtime-whisper in a
transcription session, ...) live in :mod:`rtlab.protocol.rules`; a profile only adds what differs per endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from rtlab.errors import ConfigError
from rtlab.paths import data_dir
from rtlab.protocol.evidence import Evidence, count_by_kind

__all__ = [
    "ALL_PATHS",
    "BEHAVIOURS",
    "Behaviour",
    "OUTCOMES",
    "SURFACES",
    "Outcome",
    "Profile",
    "load_profile",
    "profile_from_probe",
]

Surface = Literal["realtime_ga", "realtime_beta", "transcription_ga", "transcription_beta"]
SURFACES: tuple[str, ...] = ("realtime_ga", "realtime_beta", "transcription_ga", "transcription_beta")
OUTCOMES: tuple[str, ...] = ("accepted", "error_event", "failed", "handshake_error")
#: Request paths the emulator knows: Realtime (OpenAI, Azure GA v1, Azure preview), translation and GPT-Live
#: (OpenAI, Azure GA v1). Azure Speech paths (/speech/...) are always served: they are another service.
ALL_PATHS: tuple[str, ...] = ("/v1/realtime", "/openai/v1/realtime", "/openai/realtime",
                              "/v1/realtime/translations", "/openai/v1/realtime/translations",
                              "/v1/live/sessions", "/openai/v1/live/sessions")


#: Behaviour rows the emulator reads (others may be present: they document the endpoint).
BEHAVIOURS: tuple[str, ...] = ("beta_interface", "silence_duration_ms", "semantic_vad", "truncation",
                               "first_audio_ms", "audio_pace", "rate_limits_tokens", "timing")
_EVIDENCE_KEYS = ("evidence", "source", "date", "note")


def _evidence(raw: dict, where: str) -> Evidence | None:
    """The row's evidence when it names one (``"evidence"`` key), else None."""
    if not raw.get("evidence"):
        return None
    return Evidence.parse(raw, f"profile {where}")


@dataclass(frozen=True)
class Behaviour:
    """One behaviour row: its value and how we know."""

    name: str
    value: Any
    evidence: Evidence | None = None

    def to_json(self) -> dict:
        return {"value": self.value, **(self.evidence.to_json() if self.evidence else {})}


@dataclass(frozen=True)
class Outcome:
    """What an endpoint does with one model on one surface (see the module docstring)."""

    outcome: str = "accepted"
    streams: bool | None = None
    status: int | None = None
    type: str | None = None
    code: str | None = None
    message: str | None = None
    param: str | None = None
    evidence: Evidence | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, raw: Any, where: str) -> Outcome:
        if isinstance(raw, str):
            raw = {"outcome": raw}
        if not isinstance(raw, dict):
            raise ConfigError(f"profile {where} must be an outcome string or object, got {raw!r}.",
                              fix=f"use one of {', '.join(OUTCOMES)} or an object with an 'outcome' key")
        kind = raw.get("outcome", "accepted")
        if kind not in OUTCOMES:
            raise ConfigError(f"profile {where}.outcome={kind!r} is not known.", fix=f"use one of {', '.join(OUTCOMES)}")
        unknown = set(raw) - {"outcome", "streams", "status", "type", "code", "message", "param", *_EVIDENCE_KEYS}
        if unknown:
            raise ConfigError(f"profile {where} has unknown keys {sorted(unknown)}.",
                              fix="allowed: outcome, streams, status, type, code, message, param, evidence, source, "
                                  "date, note")
        status = raw.get("status")
        if kind == "handshake_error" and not (isinstance(status, int) and 400 <= status <= 599):
            raise ConfigError(f"profile {where}: a handshake_error needs an HTTP status 400..599, got {status!r}.")
        streams = raw.get("streams")
        if streams is not None and not isinstance(streams, bool):
            raise ConfigError(f"profile {where}.streams must be true, false or null, got {streams!r}.")
        return cls(
            outcome=kind,
            streams=streams,
            status=status,
            type=raw.get("type"),
            code=raw.get("code"),
            message=raw.get("message"),
            param=raw.get("param"),
            evidence=_evidence(raw, where),
        )

    def to_json(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if v is not None and k != "evidence"}
        if self.evidence is not None:
            out.update(self.evidence.to_json())
        return out


ACCEPTED = Outcome()


@dataclass(frozen=True)
class _SurfaceRules:
    default: Outcome | None = ACCEPTED
    models: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    def outcome(self, model: str) -> Outcome:
        return self.models.get(model, self.default or ACCEPTED)


@dataclass(frozen=True)
class Profile:
    """A loaded provider profile. Build with :func:`load_profile`; the fields mirror the JSON schema."""

    name: str
    source: str = ""
    date: str = ""
    paths: tuple[str, ...] = ALL_PATHS
    deployments: MappingProxyType | None = None
    session_models: _SurfaceRules = field(default_factory=_SurfaceRules)
    unknown_deployment: Outcome = Outcome(
        "handshake_error", status=404, code="DeploymentNotFound",
        message="The API deployment for this resource does not exist.",
    )
    transcription: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    behaviours: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    raw: MappingProxyType = field(default_factory=lambda: MappingProxyType({}), repr=False, compare=False)

    @property
    def provider(self) -> str:
        """``"azure"`` when the endpoint maps deployment names to models (or is named so), else ``"openai"``."""
        return "azure" if self.deployments is not None or "azure" in self.name else "openai"

    def with_deployments(self, deployments: Mapping[str, str]) -> Profile:
        """This profile as a resource with exactly ``deployments`` (``{name: model}``): rules written for models
        apply to the deployments that serve them, and every other name is an unknown deployment."""
        import dataclasses

        return dataclasses.replace(self, deployments=MappingProxyType(dict(deployments)),
                                   name=self.name if "azure" in self.name else f"{self.name}-deployments")

    def resolve_model(self, name: str | None) -> str | None:
        """The model behind a name: the mapped model for a deployment name, else the name itself."""
        if name is None or self.deployments is None:
            return name
        return self.deployments.get(name, name)

    def is_deployment(self, name: str) -> bool:
        """True when deployment names are not used (OpenAI) or ``name`` is one."""
        return self.deployments is None or name in self.deployments

    def session_outcome(self, name: str) -> Outcome:
        """Handshake outcome for a session model (or deployment) name."""
        if self.deployments is not None and name not in self.deployments:
            return self.unknown_deployment
        direct = self.session_models.models.get(name)
        if direct is not None:
            return direct
        return self.session_models.outcome(self.resolve_model(name) or name)

    def transcription_outcome(self, surface: str, name: str) -> Outcome:
        """Outcome of transcription model (or deployment) ``name`` on ``surface``: the surface's own row, else the
        ``"*"`` row (for the name as written, then for the model behind a deployment name), else the surface's
        default, else ``"*"``'s default, else accepted."""
        chain = [r for r in (self.transcription.get(surface), self.transcription.get("*")) if r is not None]
        resolved = self.resolve_model(name)
        # With a deployment map, a name that is not a deployment is judged by the default (Azure fails its turns).
        keys = (name, resolved) if self.deployments is None or name in self.deployments else ()
        for key in keys:
            for rules in chain:
                if key in rules.models:
                    return rules.models[key]
        for rules in chain:
            if rules.default is not None:
                return rules.default
        return ACCEPTED

    def behaviour(self, name: str) -> Behaviour | None:
        """The behaviour row ``name`` (None when the profile has none)."""
        return self.behaviours.get(name)

    def behaviour_value(self, name: str, default: Any = None) -> Any:
        """The value of behaviour ``name``, or ``default`` when the profile has no such row."""
        row = self.behaviours.get(name)
        return default if row is None else row.value

    def rows(self) -> list[tuple[str, Evidence | None]]:
        """Every behaviour row of the profile with its evidence (None where the row has none)."""
        out: list[tuple[str, Evidence | None]] = []
        out.append(("session_models.default", self.session_models.default.evidence))
        out += [(f"session_models.{k}", v.evidence) for k, v in self.session_models.models.items()]
        if self.deployments is not None:
            out.append(("unknown_deployment", self.unknown_deployment.evidence))
        for surface, rules in self.transcription.items():
            if rules.default is not None:
                out.append((f"transcription.{surface}.default", rules.default.evidence))
            out += [(f"transcription.{surface}.models.{k}", v.evidence) for k, v in rules.models.items()]
        out += [(f"behaviour.{k}", v.evidence) for k, v in self.behaviours.items()]
        return out

    def evidence_counts(self) -> dict[str, int]:
        """How many rows are documented / reported / observed / assumed (rows without evidence count as assumed)."""
        return count_by_kind(e if e is not None else Evidence("assumed", "no source given", "2026-12-01")
                             for _, e in self.rows())

    def evidence_line(self) -> str:
        """One line counting the rows by evidence, e.g. ``profile openai: 14 documented, 9 reported, ...``."""
        counts = self.evidence_counts()
        return f"profile {self.name}: " + ", ".join(f"{n} {kind}" for kind, n in counts.items())

    def to_json(self) -> dict:
        """The profile as JSON-ready data (round-trips through :func:`load_profile`)."""
        out: dict[str, Any] = {"name": self.name, "source": self.source, "date": self.date, "paths": list(self.paths)}
        out["deployments"] = dict(self.deployments) if self.deployments is not None else None
        out["session_models"] = {
            "default": self.session_models.default.to_json(),
            **{k: v.to_json() for k, v in self.session_models.models.items()},
        }
        out["unknown_deployment"] = self.unknown_deployment.to_json()
        out["transcription"] = {
            s: {**({"default": r.default.to_json()} if r.default is not None else {}),
                "models": {k: v.to_json() for k, v in r.models.items()}}
            for s, r in self.transcription.items()
        }
        out["behaviour"] = {k: v.to_json() for k, v in self.behaviours.items()}
        return out


def _parse(raw: Any, origin: str) -> Profile:
    if not isinstance(raw, dict):
        raise ConfigError(f"profile {origin} must be a JSON object, got {type(raw).__name__}.")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"profile {origin} needs a non-empty string 'name'.", fix='add "name": "my-endpoint"')
    paths = tuple(raw.get("paths") or ALL_PATHS)
    bad = [p for p in paths if p not in ALL_PATHS]
    if bad:
        raise ConfigError(f"profile {origin}: unknown paths {bad}.", fix=f"use some of {list(ALL_PATHS)}")
    deployments = raw.get("deployments")
    if deployments is not None:
        if not isinstance(deployments, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in deployments.items()
        ):
            raise ConfigError(f"profile {origin}: 'deployments' must map deployment names to model names.")
        deployments = MappingProxyType(dict(deployments))
    sm_raw = raw.get("session_models") or {}
    if not isinstance(sm_raw, dict):
        raise ConfigError(f"profile {origin}: 'session_models' must be an object.")
    session_models = _SurfaceRules(
        default=Outcome.parse(sm_raw.get("default", "accepted"), "session_models.default"),
        models=MappingProxyType(
            {k: Outcome.parse(v, f"session_models.{k}") for k, v in sm_raw.items() if k != "default"}
        ),
    )
    kwargs: dict[str, Any] = {}
    if "unknown_deployment" in raw:
        kwargs["unknown_deployment"] = Outcome.parse(raw["unknown_deployment"], "unknown_deployment")
    tr_raw = raw.get("transcription") or {}
    if not isinstance(tr_raw, dict):
        raise ConfigError(f"profile {origin}: 'transcription' must be an object keyed by surface.")
    surfaces = {}
    for surface, rules in tr_raw.items():
        if surface not in SURFACES and surface != "*":
            raise ConfigError(f"profile {origin}: unknown surface {surface!r}.", fix=f"use one of {SURFACES} or '*'")
        if not isinstance(rules, dict):
            raise ConfigError(f"profile {origin}: transcription.{surface} must be an object.")
        models = rules.get("models") or {}
        has_default = "default" in rules or surface == "*"
        surfaces[surface] = _SurfaceRules(
            default=Outcome.parse(rules.get("default", "accepted"), f"transcription.{surface}.default")
            if has_default else None,
            models=MappingProxyType(
                {k: Outcome.parse(v, f"transcription.{surface}.models.{k}") for k, v in models.items()}
            ),
        )
    b_raw = raw.get("behaviour") or {}
    if not isinstance(b_raw, dict):
        raise ConfigError(f"profile {origin}: 'behaviour' must be an object of rows.")
    behaviours = {}
    for key, row in b_raw.items():
        if not isinstance(row, dict) or "value" not in row:
            raise ConfigError(f"profile {origin}: behaviour.{key} must be an object with a 'value'.",
                              fix='e.g. {"value": 200, "evidence": "reported", "source": "...", "date": "2026-06"}')
        unknown = set(row) - {"value", *_EVIDENCE_KEYS}
        if unknown:
            raise ConfigError(f"profile {origin}: behaviour.{key} has unknown keys {sorted(unknown)}.")
        behaviours[key] = Behaviour(key, row["value"], _evidence(row, f"behaviour.{key}"))
    return Profile(
        name=name,
        source=str(raw.get("source", "")),
        date=str(raw.get("date", "")),
        paths=paths,
        deployments=deployments,
        session_models=session_models,
        transcription=MappingProxyType(surfaces),
        behaviours=MappingProxyType(behaviours),
        raw=MappingProxyType(raw),
        **kwargs,
    )


_BUILTIN = ("openai", "azure")
_CACHE: dict[str, Profile] = {}


def load_profile(spec: str | Path | dict | Profile = "openai") -> Profile:
    """Load a profile: a bundled name (``"openai"``, ``"azure"``), a path to a JSON file, or a dict.

    Raises
    ------
    ConfigError
        When the file is missing, is not JSON, or breaks the schema; the message names the file and the fix.
    """
    if isinstance(spec, Profile):
        return spec
    if isinstance(spec, dict):
        return _parse(spec, "<dict>")
    key = str(spec)
    if key in _CACHE:
        return _CACHE[key]
    path = data_dir() / "profiles" / f"{key}.json" if key in _BUILTIN else Path(key)
    if not path.is_file():
        raise ConfigError(
            f"profile {key!r} not found (looked for {path}).",
            fix=f"use one of {', '.join(_BUILTIN)} or the path of a profile JSON file saved by `rtlab probe`",
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"profile {path} is not readable JSON: {exc}.") from None
    profile = _parse(raw, str(path))
    if key in _BUILTIN:  # files the user edits are re-read every time
        _CACHE[key] = profile
    return profile


#: Probe surface name (``rtlab.probe.SURFACES``) -> profile surface.
_PROBE_SURFACES = {
    "in-session-ga": "realtime_ga",
    "in-session-beta": "realtime_beta",
    "transcription-ga": "transcription_ga",
    "transcription-beta": "transcription_beta",
}


def _outcome_from_row(row: Any) -> dict | None:
    def get(key: str) -> Any:
        value = row.get(key) if hasattr(row, "get") else None
        return None if value != value else value  # NaN -> None

    kind = get("outcome")
    if kind == "ok":
        streams = get("deltas_stream")
        return {"outcome": "accepted", "streams": bool(streams) if streams is not None else None}
    if kind == "handshake-refused":
        status = get("http_status")
        return {"outcome": "handshake_error", "status": int(status) if status is not None else 400,
                "code": get("error_code"), "message": get("error_message")}
    if kind == "error-event":
        return {"outcome": "error_event", "type": "invalid_request_error", "code": get("error_code"),
                "message": get("error_message")}
    if kind == "transcription-failed":
        code = get("error_code")
        return {"outcome": "failed", "type": "server_error", "code": None if code == "server_error" else code,
                "message": get("error_message")}
    return None  # no-answer, not-applicable, no-transcript: nothing learnt


def profile_from_probe(frame: Any, *, provider: str = "openai", name: str | None = None, source: str = "",
                       deployments: Mapping[str, str] | None = None, date: str | None = None) -> dict:
    """A profile (JSON-ready dict) that reproduces a probed endpoint.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``rtlab.probe`` results: one row per (model, surface) with ``outcome``, ``http_status``, ``error_code``,
        ``error_message`` and ``deltas_stream``.
    provider : {"openai", "azure"}
        Bundled profile to start from (its defaults apply to models the probe did not try).
    name, source, date : str
        Written into the profile; ``date`` defaults to today (UTC). Every row the probe measured is ``observed``:
        its evidence source is "probe of <source or provider endpoint> on <date>".
    deployments : Mapping[str, str], optional
        Azure deployment name -> model of the probed resource.
    """
    import datetime as _dt

    base = load_profile(provider if provider in _BUILTIN else "openai").to_json()
    out = json.loads(json.dumps(base))
    out["name"] = name or f"{provider}-probed"
    out["source"] = source or f"rtlab probe ({provider})"
    out["date"] = date or _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    if deployments:
        out["deployments"] = {**(out.get("deployments") or {}), **dict(deployments)}
    seen = Evidence.observed(source or f"{provider} endpoint", out["date"]).to_json()
    star = out["transcription"].get("*", {"default": "accepted", "models": {}})
    rows = frame.to_dict("records") if hasattr(frame, "to_dict") else list(frame)
    for row in rows:
        outcome = _outcome_from_row(row)
        if outcome is None:
            continue
        outcome = {**{k: v for k, v in outcome.items() if v is not None}, **seen}
        model = str(row.get("model"))
        surface = row.get("surface")
        if surface == "session-model":
            if outcome["outcome"] != "handshake_error":
                outcome = {"outcome": "accepted", **seen}
            out["session_models"][model] = outcome
            continue
        target = _PROBE_SURFACES.get(str(surface))
        if target is None:
            continue
        if outcome["outcome"] == "handshake_error":  # a transcription model is not part of a handshake
            outcome = {"outcome": "error_event", "type": "invalid_request_error", "code": outcome.get("code"),
                       "message": outcome.get("message"), **seen}
        rules = out["transcription"].setdefault(target, json.loads(json.dumps(star)))
        rules.setdefault("models", {})[model] = outcome
    _parse(out, "<probe>")  # the result must load
    return out
