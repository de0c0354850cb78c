"""rtlab benchmarks: ``python -m bench`` runs every ``bench/bench_*.py`` module's ``run() -> dict``.

Benchmarks are not tests: they measure, write JSON under ``bench/results/`` and print a table. Targets are
stated in each module; a missed target shows in the table (``ok`` column) and the exit status.
"""
