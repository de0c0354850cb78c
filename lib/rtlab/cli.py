"""Command line: ``rtlab serve | compare | probe | report | study | workshop``.

Each subcommand lives with its module (``rtlab.emulator.cli``, ``rtlab.compare``, ...); this file only
dispatches and turns rtlab errors into one-line messages with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# subcommand -> module providing add_arguments(parser) and run(args) -> int
SUBCOMMANDS = {
    "serve": ("rtlab.emulator.cli", "run the local Realtime-compatible emulator"),
    "compare": ("rtlab.compare", "in-session vs sidecar transcription on one audio clock"),
    "probe": ("rtlab.probe", "find which transcription models and paths an endpoint accepts"),
    "report": ("rtlab.report", "rebuild the HTML report from a saved event log"),
    "study": ("rtlab.study.cli", "run a corpus x conditions study (in process or on Dask), its status and report"),
    "workshop": ("rtlab.workshop", "build the student and teacher notebook sets of a workshop"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rtlab", description="Realtime Transcription Lab")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import RtlabError
    from .secrets import redact

    args = build_parser().parse_args(argv)
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except RtlabError as exc:
        print(f"rtlab {args.command}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"rtlab {args.command}: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: say so in one line; the traceback only on request
        if os.environ.get("RTLAB_DEBUG"):
            raise
        print(f"rtlab {args.command}: unexpected error ({type(exc).__name__}: {redact(str(exc))}); "
              "set RTLAB_DEBUG=1 to see the traceback", file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
