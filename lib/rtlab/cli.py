"""Command line: ``rtlab serve | compare | probe | report``.

Each subcommand lives with its module (``rtlab.emulator.cli``, ``rtlab.compare``, ...); this file only
dispatches and turns rtlab errors into one-line messages with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> module providing add_arguments(parser) and run(args) -> int
SUBCOMMANDS = {
    "serve": ("rtlab.emulator.cli", "run the local Realtime-compatible emulator"),
    "compare": ("rtlab.compare", "in-session vs sidecar transcription on one audio clock"),
    "probe": ("rtlab.probe", "find which transcription models and paths an endpoint accepts"),
    "report": ("rtlab.report", "rebuild the HTML report from a saved event log"),
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

    args = build_parser().parse_args(argv)
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except RtlabError as exc:
        print(f"rtlab {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
