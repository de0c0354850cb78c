"""Studies at corpus scale: a corpus × a grid of conditions × sources, from a laptop to a Dask cluster.

A study file names a corpus (a folder, a manifest, a LibriSpeech split or the bundled clips), a grid of
conditions (target, voice model, in-session model, sidecars, audio transforms such as noise at a known SNR, the
telephone channel or speed, ``delay``) and run settings; :func:`run_study` runs every (file, condition) *unit*
into a folder of partitioned Parquet with each unit's event log beside it, resuming where a previous run
stopped; :func:`results` analyses that folder lazily (DuckDB); :func:`write_report` draws it.

Modules: :mod:`.spec` (the study as data), :mod:`.corpus` (readers), :mod:`.unit` (one unit: the only door to
the run and log modules), :mod:`.store` (the folder), :mod:`.limits` (shared rate limits, back-off),
:mod:`.executors` (in-process asyncio, Dask), :mod:`.runner`, :mod:`.results`, :mod:`.report`, :mod:`.cli`.

Example
-------
>>> from rtlab import study                                                        # doctest: +SKIP
>>> run = study.run_study("study.yaml", out="out/study")                            # in this process
>>> run = study.run_study("study.yaml", out="out/study", workers=2)                 # a local Dask cluster
>>> run = study.run_study("study.yaml", out="out/study", scheduler="tcp://HOST:8786")   # an existing one
>>> study.results("out/study").summary()
"""

from __future__ import annotations

import importlib

from .corpus import CorpusItem, read_corpus
from .spec import Condition, RateLimit, RunSettings, Study, Unit, load_study

_LAZY = {
    "run_study": "rtlab.study.runner",
    "study_status": "rtlab.study.runner",
    "StudyRun": "rtlab.study.runner",
    "StudyStatus": "rtlab.study.runner",
    "results": "rtlab.study.results",
    "StudyResults": "rtlab.study.results",
    "write_report": "rtlab.study.report",
    "run_unit": "rtlab.study.unit",
    "arun_unit": "rtlab.study.unit",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rtlab.study' has no attribute {name!r}")


__all__ = ["Condition", "CorpusItem", "RateLimit", "RunSettings", "Study", "Unit", "load_study", "read_corpus",
           *_LAZY]
