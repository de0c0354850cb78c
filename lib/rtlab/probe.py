"""Probe an endpoint: which transcription models work on which surface, and why not.

For each model and each surface, the probe opens a real session through :mod:`rtlab.targets`, configures it,
streams a short bundled clip and records what came back:

============================  ==================================================================================
surface                       what is tried
============================  ==================================================================================
``session-model``             connect a realtime session with the model itself as ``?model=`` (the seed question)
``in-session-ga``             a voice session (GA dialect) with the model as its input audio transcription model
``in-session-beta``           the same in the beta / Azure preview dialect
``transcription-ga``          a transcription session (``intent=transcription``, ``session.type=transcription``)
``transcription-beta``        a beta ``transcription_session.update`` session
============================  ==================================================================================

Each attempt is one run of :mod:`rtlab.runs` (one mechanism for probing and measuring), so the probe also
measures first-delta and final latency. Results come back as a tidy DataFrame and can be saved as a JSON
capability profile that ``rtlab serve --profile FILE`` loads to reproduce the endpoint offline.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Any

from .errors import ProbeError, RtlabError

SURFACES: tuple[str, ...] = (
    "session-model",
    "in-session-ga",
    "in-session-beta",
    "transcription-ga",
    "transcription-beta",
)

#: Dialect each surface speaks, per provider of the target.
_SURFACE_DIALECT = {
    ("openai", "ga"): "openai-ga",
    ("openai", "beta"): "openai-beta",
    ("azure", "ga"): "azure-ga",
    ("azure", "beta"): "azure-preview",
}

DEFAULT_MODELS: tuple[str, ...] = (
    "gpt-realtime-whisper",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "whisper-1",
    "gpt-transcribe",
    "gpt-live-transcribe",
)

RESULT_COLUMNS = [
    "model", "surface", "dialect", "outcome", "http_status", "error_code", "error_message",
    "deltas_stream", "n_deltas", "completed", "first_delta_ms", "final_ms", "transcript",
]


def _provider_of(target: Any) -> str:
    provider = getattr(target, "provider", "openai")
    if provider == "local":
        from .emulator.profiles import load_profile

        # Azure-like endpoints map deployment names to models; a probed or bundled azure profile does.
        profile = load_profile(getattr(target, "provider_profile", "openai"))
        return "azure" if profile.deployments is not None or "azure" in profile.name else "openai"
    return "azure" if provider == "azure" else "openai"


def surface_target(target: Any, surface: str) -> Any:
    """The target re-pointed at the dialect a surface speaks (same endpoint and credentials)."""
    shape = "beta" if surface.endswith("-beta") else "ga"
    dialect = _SURFACE_DIALECT[(_provider_of(target), shape)]
    if getattr(target, "dialect", None) == dialect:
        return target
    with_dialect = getattr(target, "with_dialect", None)
    return with_dialect(dialect) if with_dialect else dataclasses.replace(target, dialect=dialect)


def surface_config(surface: str, model: str, *, voice_model: str = "gpt-realtime") -> tuple[Any, str | None]:
    """(SessionConfig, model to put in the connect URL) for one probe attempt."""
    from .config import SessionConfig

    if surface == "session-model":
        return SessionConfig.realtime(model=model, transcription=None), model
    if surface.startswith("in-session"):
        return SessionConfig.realtime(model=voice_model, transcription=model), voice_model
    return SessionConfig.transcription(model=model), None


async def _probe_one(target: Any, model: str, surface: str, audio: Any, *, out: Path | None, options: Any,
                     voice_model: str, deployments: dict | None) -> dict:
    from .runs import RemoteLeg, arun_legs

    row: dict[str, Any] = dict.fromkeys(RESULT_COLUMNS)
    row.update(model=model, surface=surface)
    try:
        t = surface_target(target, surface)
    except (RtlabError, KeyError, TypeError, ValueError) as exc:
        row.update(outcome="not-applicable", error_message=str(exc))
        return row
    row["dialect"] = t.dialect
    # On Azure the URL and the transcription model name are deployment names.
    wire_model = (deployments or {}).get(model, model)
    config, connect_model = surface_config(surface, wire_model, voice_model=voice_model)
    leg = RemoteLeg(f"probe:{surface}", t, config, validate=False, connect_model=connect_model)
    log_dir = None if out is None else out / f"{surface}__{model}"
    try:
        log = await arun_legs(audio, [leg], out=log_dir, options=options,
                              meta={"probe": {"model": model, "surface": surface, "dialect": t.dialect}})
    except RtlabError as exc:
        row.update(outcome="no-answer", error_message=str(exc))
        return row
    row.update(classify(log))
    return row


def classify(log: Any) -> dict:
    """Read one probe run's log: accepted or the exact error, whether deltas stream, latency."""
    frame = log.to_frame()
    server = frame[frame["direction"] == "server"]
    out: dict[str, Any] = {}
    hs = server[server["type"] == "rtlab.handshake_failed"]
    if len(hs):
        ev = hs.iloc[0]["event"]
        return {"outcome": "handshake-refused", "http_status": ev.get("status"), "error_code": ev.get("code"),
                "error_message": ev.get("message"), "completed": False, "n_deltas": 0, "deltas_stream": False}
    errors = server[server["type"] == "error"]
    failed = server[server["type"] == "conversation.item.input_audio_transcription.failed"]
    completed = server[server["type"] == "conversation.item.input_audio_transcription.completed"]
    deltas = server[server["type"] == "conversation.item.input_audio_transcription.delta"]
    from .analysis import turns as turns_of

    turns = turns_of(log)
    out["completed"] = bool(len(completed))
    out["n_deltas"] = int(len(deltas))
    if len(turns):
        first = turns.iloc[0]
        out["first_delta_ms"] = _num(first.get("first_text_after_start_ms"))
        out["final_ms"] = _num(first.get("final_after_stop_ms"))
        out["transcript"] = " ".join(str(t) for t in turns["transcript"].dropna() if str(t))
    # Streaming: some delta of an item arrived before that item's speech ended (before speech_stopped/commit).
    out["deltas_stream"] = _deltas_before_end(server)
    if len(errors):
        err = errors.iloc[0]["event"].get("error") or {}
        out.update(outcome="error-event", error_code=err.get("code"), error_message=err.get("message"))
    elif len(failed):
        err = failed.iloc[0]["event"].get("error") or {}
        out.update(outcome="transcription-failed", error_code=err.get("code") or err.get("type"),
                   error_message=err.get("message"))
    elif len(completed):
        out["outcome"] = "ok"
    else:
        out["outcome"] = "no-transcript"
    return out


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if f != f else f


def _deltas_before_end(server) -> bool:
    ends: dict[str, float] = {}
    for _, r in server[server["type"].isin(["input_audio_buffer.speech_stopped",
                                            "input_audio_buffer.committed"])].iterrows():
        ends.setdefault(r["item_id"], r["t_ms"])
    deltas = server[server["type"] == "conversation.item.input_audio_transcription.delta"]
    return any(r["item_id"] in ends and r["t_ms"] < ends[r["item_id"]] for _, r in deltas.iterrows())


async def aprobe(target: Any, models: list[str] | tuple[str, ...] = DEFAULT_MODELS, *,
                 surfaces: tuple[str, ...] = SURFACES, clip: str | Path = "short", out: str | Path | None = None,
                 speed: float = 1.0, concurrency: int = 4, voice_model: str = "gpt-realtime",
                 deployments: dict | None = None, progress: bool = True):
    """Awaitable form of :func:`probe`."""
    import pandas as pd

    from .audio import load
    from .runs import RunOptions

    clip_path = Path(clip) if Path(str(clip)).suffix else _bundled(str(clip))
    audio = load(clip_path)
    out_dir = None if out is None else Path(out)
    options = RunOptions(speed=speed, progress=False, settle_timeout_s=15.0, tail_ms=1200)
    deployments = deployments if deployments is not None else getattr(target, "deployments", None)
    deployments = {v: k for k, v in dict(deployments or {}).items()}  # model -> deployment
    sem = asyncio.Semaphore(max(1, concurrency))
    jobs = [(m, s) for m in models for s in surfaces]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), unit="probe", leave=False)

    async def one(m, s):
        async with sem:
            row = await _probe_one(target, m, s, audio, out=out_dir, options=options, voice_model=voice_model,
                                   deployments=deployments)
            if bar is not None:
                bar.update()
            return row

    rows = await asyncio.gather(*(one(m, s) for m, s in jobs))
    if bar is not None:
        bar.close()
    frame = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    frame["http_status"] = frame["http_status"].astype("Int64")  # an HTTP status is an integer, or missing
    return ProbeResult(frame, target=target, clip=clip_path.name)


def probe(target: Any, models=DEFAULT_MODELS, **kw) -> ProbeResult:
    """Probe ``target`` for each of ``models`` on each surface. Returns a :class:`ProbeResult`.

    Examples
    --------
    >>> from rtlab import Target, probe                        # doctest: +SKIP
    >>> result = probe(Target.local(provider_profile="azure"))  # doctest: +SKIP
    >>> result.matrix()                                        # doctest: +SKIP
    """
    from .runs import run_sync

    return run_sync(aprobe(target, models, **kw))


def _bundled(name: str) -> Path:
    from .data import clip_path

    return clip_path(name)


@dataclasses.dataclass
class ProbeResult:
    """The probe's tidy table plus what is needed to save it as a profile."""

    frame: Any
    target: Any
    clip: str
    when: str = dataclasses.field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))

    def matrix(self) -> Any:
        """Model × surface table of outcomes (``ok``, ``handshake-refused 400``, ``error-event CODE``...)."""
        import pandas as pd

        df = self.frame.copy()

        def cell(r):
            if r["outcome"] == "ok":
                return "ok (streams)" if r["deltas_stream"] else "ok"
            detail = r["http_status"] if r["outcome"] == "handshake-refused" else r["error_code"]
            return r["outcome"] if detail is None or pd.isna(detail) else f"{r['outcome']} {detail}"

        df["result"] = df.apply(cell, axis=1)
        return df.pivot(index="model", columns="surface", values="result").reindex(
            columns=[s for s in SURFACES if s in set(df["surface"])])

    def _repr_html_(self) -> str:
        return self.matrix()._repr_html_()

    def to_profile(self, name: str | None = None) -> dict:
        """A capability profile (see :mod:`rtlab.emulator.profiles`) reproducing this endpoint offline."""
        from .emulator.profiles import profile_from_probe

        return profile_from_probe(self.frame, provider=_provider_of(self.target), name=name,
                                  source=f"rtlab probe of {_safe_target(self.target)} on {self.when}",
                                  deployments=getattr(self.target, "deployments", None))

    def save(self, path: str | Path, *, name: str | None = None) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_profile(name), indent=2, sort_keys=True) + "\n")
        return path

    def support_report(self) -> str:
        """A plain-text report to attach to a support ticket (no secrets: targets mask their keys)."""
        lines = [
            "rtlab endpoint probe",
            f"target: {_safe_target(self.target)}",
            f"when:   {self.when}",
            f"clip:   {self.clip}",
            "",
            self.matrix().to_string(),
            "",
            "errors:",
        ]
        bad = self.frame[self.frame["outcome"] != "ok"]
        for _, r in bad.iterrows():
            lines.append(f"- {r['model']} / {r['surface']} ({r['dialect']}): {r['outcome']}"
                         f" status={r['http_status']} code={r['error_code']} message={r['error_message']}")
        from .secrets import redact

        return redact("\n".join(lines))


def _safe_target(target: Any) -> str:
    url = getattr(target, "url_for", None)
    try:
        return f"{target.provider} {target.dialect} {url('realtime', 'MODEL') if url else ''}".strip()
    except Exception:
        return repr(target)


# ---------------------------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", default="local",
                   help="local | local-azure | openai | azure | azure-preview (credentials from env vars)")
    p.add_argument("--model", action="append", dest="models", metavar="MODEL",
                   help=f"transcription model to try (repeatable; default: {', '.join(DEFAULT_MODELS)})")
    p.add_argument("--surface", action="append", dest="surfaces", choices=SURFACES, help="surfaces to try")
    p.add_argument("--clip", default="short", help="bundled clip name or audio file (default: short)")
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--out", type=Path, required=True, help="profile JSON to write (report .txt beside it)")


def run(args: argparse.Namespace) -> int:
    from .compare import make_target

    if args.out.suffix != ".json":
        raise ProbeError(f"{args.out}: --out must name a .json profile file")
    target = make_target(args.target)
    result = probe(target, tuple(args.models or DEFAULT_MODELS), surfaces=tuple(args.surfaces or SURFACES),
                   clip=args.clip, speed=args.speed, out=args.out.with_suffix(""), progress=sys.stderr.isatty())
    result.save(args.out)
    report = result.support_report()
    args.out.with_suffix(".txt").write_text(report + "\n")
    print(report)
    print(f"\nprofile: {args.out}")
    return 0
