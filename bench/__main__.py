"""Run rtlab benchmarks: ``python -m bench`` (all) or ``python -m bench NAME [NAME ...]`` (``eventlog`` runs
``bench/bench_eventlog.py``). Each module's ``run() -> dict`` returns its results; this prints one table.

A result dict may hold ``"rows"``: a list of ``{"metric", "value", "unit", "target", "ok"}`` dicts for the table;
anything else is printed as ``key: value``. Exit status 1 when a module fails or reports ``ok: False``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"
    return "" if v is None else str(v)


def print_table(name: str, result: dict) -> None:
    rows = result.get("rows")
    print(f"\n== {name} ==")
    if rows:
        cols = ["metric", "value", "unit", "target", "ok"]
        cells = [[_fmt(r.get(c)) for c in cols] for r in rows]
        widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
        print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
        for x in cells:
            print("  ".join(v.ljust(w) for v, w in zip(x, widths, strict=True)))
    for k, v in result.items():
        if k not in ("rows",) and not isinstance(v, dict | list):
            print(f"{k}: {_fmt(v)}")


def main(argv: list[str] | None = None) -> int:
    names = available()
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help=f"benchmarks to run (default: all): {', '.join(names)}")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in names]
    if unknown:
        print(f"python -m bench: unknown benchmark(s) {unknown}; available: {names}", file=sys.stderr)
        return 2
    status = 0
    for name in args.names or names:
        t0 = time.perf_counter()
        try:
            result = importlib.import_module(f"bench.bench_{name}").run()
        except Exception:
            traceback.print_exc()
            print(f"\n== {name} == FAILED", file=sys.stderr)
            status = 1
            continue
        print_table(name, result)
        print(f"({name}: {time.perf_counter() - t0:.0f} s)")
        if result.get("ok") is False or any(r.get("ok") is False for r in result.get("rows") or []):
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
