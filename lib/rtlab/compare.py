"""``rtlab compare``: in-session vs sidecar transcription on the same audio, with a report.

For each audio file: one run (voice session + sidecars on one audio clock) recorded to an event log, then
``turns()`` scored against references (bundled clips find theirs in ``data/manifest.json``), and one report for
all files. Output layout (``--out DIR``)::

    DIR/events.jsonl (+ audio)    one file given
    DIR/<clip>/events.jsonl       several files given, one folder each
    DIR/turns.csv                 one row per turn and source, with file and wer columns
    DIR/summary.csv               one row per source
    DIR/report.html               self-contained report (tables + timeline plot)

Bad files are reported on stderr, one line each (file and reason), and the other files are still processed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import RtlabError

if TYPE_CHECKING:  # pragma: no cover
    from .config import SessionConfig
    from .runs.sidecar import SidecarSpec
    from .targets import Target

TARGETS = ("local", "local-azure", "openai", "azure", "azure-preview")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("audio", nargs="+", help="audio files (wav/flac/ogg/mp3); bundled clips find their references")
    p.add_argument("--target", choices=TARGETS, default="local",
                   help="where to connect (default: the embedded emulator)")
    p.add_argument("--in-session-model", default="gpt-realtime-whisper",
                   help="transcription model inside the voice session (on Azure: a model or a deployment name; "
                        "default: gpt-realtime-whisper)")
    p.add_argument("--voice-model", default=None,
                   help="voice session model or Azure deployment (default: gpt-realtime-2.1 on OpenAI, "
                        "$AZURE_OPENAI_REALTIME_DEPLOYMENT on Azure); a GPT-Live model (gpt-live-1) runs a GPT-Live "
                        "session")
    p.add_argument("--sidecar", action="append", metavar="SPEC",
                   help="transcription[:MODEL] | local | oob | azure-speech | translate:LANG (repeatable; default: "
                        "transcription, local and oob)")
    p.add_argument("--references", type=Path, help="JSON {file name: [{text, start_s, end_s}, ...] or text}")
    p.add_argument("--speed", type=float, default=1.0, help="feed audio at this multiple of real time (default 1)")
    p.add_argument("--chunk-ms", type=int, default=40)
    p.add_argument("--seed", type=int, default=0, help="emulator seed (local targets)")
    p.add_argument("--timing", choices=("modelled", "local"), default=None,
                   help="local targets: the emulator's timing, 'modelled' on published latency measurements (the "
                        "default) or 'local' (the bare local engines)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def make_target(name: str, *, seed: int | None = 0, timing: str | None = None) -> Any:
    from .targets import Target

    if name in ("local", "local-azure"):
        return Target.local(provider_profile="azure" if name == "local-azure" else "openai", seed=seed,
                            timing=timing)
    if timing is not None:
        raise RtlabError(f"--timing applies to the local targets (the embedded emulator), not {name!r}")
    if name == "openai":
        return Target.openai()
    if name == "azure":
        return Target.azure()
    if name == "azure-preview":
        return Target.azure(preview=True)
    raise RtlabError(f"unknown target {name!r}; choose one of {', '.join(TARGETS)}")


def compare(audio_paths: list[Path | str], *, target: Target, voice_config: SessionConfig,
            sidecars: list[SidecarSpec | str] | None = None, out: Path,
            references: dict[str, list[dict]] | None = None, speed: float = 1.0, chunk_ms: int = 40,
            progress: bool = True, on_error=None):
    """Run the comparison over several files. Returns (turns DataFrame, list of (name, EventLog)).

    ``on_error(path, exc)`` is called for a file that cannot be processed (default: re-raise).
    """
    import pandas as pd

    from .analysis import score_turns, turns
    from .audio import load
    from .data import references_for
    from .runs import run_sidecar

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    references = references or {}
    paths = [Path(p) for p in audio_paths]
    frames, logs = [], []
    for path in paths:
        try:
            audio = load(path)
            run_dir = out if len(paths) == 1 else out / _unique_stem(path, paths)
            log = run_sidecar(audio, voice=(target, voice_config), sidecars=sidecars, out=run_dir,
                              speed=speed, chunk_ms=chunk_ms, progress=progress)
        except RtlabError as exc:
            if on_error is None:
                raise
            on_error(path, exc)
            continue
        table = turns(log, references_for(path, references))
        table.insert(0, "file", path.name)
        frames.append(table)
        logs.append((path.name, log))
    if not frames:
        return pd.DataFrame(), logs
    return score_turns(pd.concat(frames, ignore_index=True)), logs


def _unique_stem(path: Path, paths: list[Path]) -> str:
    same = [p for p in paths if p.stem == path.stem]
    return path.stem if len(same) == 1 else f"{path.stem}-{same.index(path) + 1}"


def model_notes(target: Target, voice_config: SessionConfig, sidecars: list[SidecarSpec | str] | None
                ) -> list[str]:
    """What to know about the models a comparison uses, before it runs: a voice name that is neither a deployment
    nor a model fails here (the message lists the deployments), and every announced shutdown date is shown."""
    from .protocol.catalogue import retirement
    from .runs import DEFAULT_SIDECARS, TranscriptionSidecar

    voice = target.model_of(target.deployment_for(voice_config.model, kind="voice"))  # raises for an unknown name
    models = [voice, target.model_of(getattr(voice_config.transcription, "model", None))]
    for spec in (DEFAULT_SIDECARS if sidecars is None else sidecars):
        if isinstance(spec, TranscriptionSidecar):
            models.append(target.model_of(spec.model))
    return [note for m in dict.fromkeys(models) if (note := retirement(m))]


def format_summary(summary_df) -> str:
    cols = [c for c in ("source", "model", "n_turns", "wer", "final_after_eos_p50_ms", "final_after_eos_p95_ms",
                        "first_text_after_start_p50_ms", "first_text_before_eos_share", "cost_usd", "cost_basis")
            if c in summary_df.columns]
    return summary_df[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}" if abs(v) < 10 else f"{v:.0f}")


def run(args: argparse.Namespace) -> int:
    from .analysis import summary
    from .config import SessionConfig
    from .data import load_references
    from .report import write_outputs

    failures: list[str] = []

    def report_error(path, exc):
        failures.append(str(path))
        print(f"rtlab compare: {exc}" if str(path) in str(exc) else f"rtlab compare: {path}: {exc}", file=sys.stderr)

    if args.speed != 1:
        print(f"rtlab compare: note: audio fed at {args.speed:g}x real time; latencies are only meaningful at 1x",
              file=sys.stderr)
    from .runs import parse_sidecar

    sidecars = [parse_sidecar(s) for s in args.sidecar] if args.sidecar else None  # fail before any work
    references = load_references(args.references)
    target = make_target(args.target, seed=args.seed, timing=args.timing)
    voice_config = SessionConfig.realtime(model=args.voice_model, transcription=args.in_session_model)
    from .runs.sidecar import plan_sidecars

    sidecars = plan_sidecars(target, voice_config, sidecars)  # refuses what cannot run, before any work
    for note in model_notes(target, voice_config, sidecars):
        print(f"rtlab compare: note: {note}", file=sys.stderr)
    turns, logs = compare(args.audio, target=target, voice_config=voice_config, sidecars=sidecars,
                          out=args.out, references=references, speed=args.speed, chunk_ms=args.chunk_ms,
                          progress=not args.quiet and sys.stderr.isatty(), on_error=report_error)
    if not logs:
        print("rtlab compare: no file could be processed", file=sys.stderr)
        return 1
    from .analysis.diagnose import diagnose

    for name, log in logs:
        for line in diagnose(log).lines():
            print(f"rtlab compare: {name}: {line}", file=sys.stderr)
    written = write_outputs(turns, logs, args.out)
    print(format_summary(summary(turns)))
    print(f"\nreport: {written['report']}\nturns:  {written['turns']}")
    return 1 if failures else 0
