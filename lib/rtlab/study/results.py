"""A study's results, analysed lazily with DuckDB: per-source/condition WER with bootstrap CIs, latency, cost.

Layer: analysis. :func:`results` opens the Parquet parts of a study folder (or takes a pandas DataFrame of turns
from a small in-memory run) as one DuckDB view, ``rows``; nothing is loaded into pandas until asked, and then
only the aggregate. :meth:`StudyResults.summary` gives one row per group (default: condition × source):

* ``wer`` / ``cer`` — corpus rates: total edits over total reference words (characters), per file (the whole
  file's transcript of a source against its reference, see :mod:`rtlab.study.unit`; a small run's turns table
  without file scores uses the sums of its per-turn counts). Group by columns that are constant within a file
  and source (condition, source, item, item_speaker, metadata, ...): the file scores are read from each (unit,
  source)'s first row. ``wer_lo`` / ``wer_hi`` — a percentile bootstrap confidence
  interval that resamples *files* (turns of one file are not independent). Above ``buckets`` (500) files, the files
  of a group are pooled into that many buckets by a hash of their unit id before resampling: a random partition
  keeps the variance of the total, and the cost stays fixed however large the corpus.
* ``<metric>_p50_ms`` / ``_p90_ms`` / ``_p95_ms`` for each of :data:`LATENCY_METRICS` (``final_after_eos``, ...)
  (linear interpolation, as :func:`rtlab.analysis.metrics.summary`), over the turns that have the value.
* ``cost_usd`` (sum) and ``cost_per_audio_hour_usd``; ``cost_basis`` says whether the costs are emulated.
* ``n_units``, ``n_turns``, ``n_failed`` (turns whose transcription failed), ``n_missed`` (files where the
  source produced no turn at all).

Example
-------
>>> r = results("out/study")                                       # doctest: +SKIP
>>> r.summary()[["condition_label", "source", "wer", "wer_lo", "wer_hi", "final_after_eos_p95_ms"]]   # doctest: +SKIP
>>> r.sql("SELECT item, transcript FROM rows WHERE wer > 0.5 LIMIT 10").df()                 # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError

__all__ = ["LATENCY_METRICS", "StudyResults", "bootstrap_ratio_ci", "results"]

#: The turns table's latency columns (:data:`rtlab.analysis.metrics.LATENCY_METRICS`) and the signed first-text one.
LATENCY_METRICS = ("final_after_eos_ms", "final_after_stop_ms", "first_text_after_start_ms", "first_text_after_eos_ms")
QUANTILES = (0.5, 0.9, 0.95)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Columns the summary reads; a DataFrame without some of them gets them as nulls.
_NEEDED = {
    "unit_id": "VARCHAR", "turn": "INTEGER", "condition": "VARCHAR", "source": "VARCHAR", "status": "VARCHAR", "model": "VARCHAR",
    "word_errors": "DOUBLE", "ref_words": "DOUBLE", "char_errors": "DOUBLE", "ref_chars": "DOUBLE",
    "file_word_errors": "DOUBLE", "file_ref_words": "DOUBLE", "file_char_errors": "DOUBLE",
    "file_ref_chars": "DOUBLE", "cost_usd": "DOUBLE", "audio_s": "DOUBLE", "condition_label": "VARCHAR",
    "cost_basis": "VARCHAR", **{m: "DOUBLE" for m in LATENCY_METRICS},
}


def bootstrap_ratio_ci(pairs: Sequence[tuple[np.ndarray, np.ndarray]], *, n_boot: int = 1000, ci: float = 0.95,
                       seed: Any = 0) -> list[tuple[float, float]]:
    """Percentile bootstrap CIs of ``sum(errors) / sum(words)`` for each ``(errors, words)`` pair of arrays,
    resampling their positions (files, or buckets of files) jointly, so WER and CER see the same resamples.

    A pair with fewer than two positions that have reference words gets (NaN, NaN).
    """
    n = len(pairs[0][0]) if pairs else 0
    parts = seed if isinstance(seed, list | tuple) else [seed]  # ints and strings, e.g. [seed, condition, source]
    rng = np.random.default_rng([p if isinstance(p, int) and p >= 0 else zlib.crc32(str(p).encode()) for p in parts])
    idx = rng.integers(0, n, size=(n_boot, n), dtype=np.int32) if n >= 2 else None
    alpha = (1.0 - ci) / 2.0
    out = []
    for errors, words in pairs:
        e = np.nan_to_num(np.asarray(errors, dtype=float))
        w = np.nan_to_num(np.asarray(words, dtype=float))
        if idx is None or int((w > 0).sum()) < 2:
            out.append((np.nan, np.nan))
            continue
        tot_w = w[idx].sum(axis=1)
        ratio = e[idx].sum(axis=1)[tot_w > 0] / tot_w[tot_w > 0]
        lo, hi = np.quantile(ratio, [alpha, 1.0 - alpha]) if len(ratio) else (np.nan, np.nan)
        out.append((float(lo), float(hi)))
    return out


def _names(*columns: pd.Series) -> str | None:
    """The distinct strings of some columns, sorted and joined with commas (the models or cost bases of a group:
    the first and last of each bucket, which is every one of them unless a bucket mixes more than two)."""
    names = sorted({x for col in columns for x in col.dropna().unique() if isinstance(x, str)})
    return ",".join(names) or None


class StudyResults:
    """A lazy view of study rows (one per unit, turn and source) in DuckDB; build with :func:`results`."""

    def __init__(self, source: str | os.PathLike | pd.DataFrame, *, memory_limit: str = "1GB",
                 threads: int | None = None):
        import duckdb

        self.con = duckdb.connect()
        self.con.execute(f"SET memory_limit = '{_checked_size(memory_limit)}'")
        self.con.execute("SET enable_progress_bar = false")
        self.con.execute("SET parquet_metadata_cache = true")  # every query re-binds the parts: read footers once
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self._columns: list[str] | None = None
        if isinstance(source, pd.DataFrame):
            self.path = None
            self._frame = _as_rows_frame(source)
            self.con.register("_frame", self._frame)
            self.con.execute("CREATE VIEW rows AS SELECT * FROM _frame")
        else:
            path = Path(source)
            parts = path / "results" if (path / "results").is_dir() else path
            if not any(parts.glob("condition=*/*.parquet")) and not any(parts.glob("*.parquet")):
                raise ConfigError(f"{path}: no results (results/condition=*/*.parquet)", field="path",
                                  fix="run the study first (`rtlab study run STUDY.yaml --out DIR`)")
            self.path = path
            pattern = str(parts / "condition=*" / "*.parquet") if any(parts.glob("condition=*")) else str(
                parts / "*.parquet")
            literal = "'" + pattern.replace("'", "''") + "'"  # a view cannot take a prepared parameter
            self.con.execute(f"CREATE VIEW _parts AS SELECT * FROM read_parquet({literal}, union_by_name = true, "
                             "hive_partitioning = false)")
            have = {r[0] for r in self.con.execute("DESCRIBE _parts").fetchall()}
            extra = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in _NEEDED.items() if c not in have)
            self.con.execute(f"CREATE VIEW rows AS SELECT *{', ' + extra if extra else ''} FROM _parts")

    def __repr__(self) -> str:
        where = self.path if self.path is not None else "in-memory"
        return f"StudyResults({where}, {len(self)} rows)"

    def __len__(self) -> int:
        return int(self.con.execute("SELECT count(*) FROM rows").fetchone()[0])

    @property
    def columns(self) -> list[str]:
        if self._columns is None:
            self._columns = [r[0] for r in self.con.execute("DESCRIBE rows").fetchall()]
        return self._columns

    def sql(self, query: str, params: Sequence[Any] | None = None):
        """Run SQL over the view ``rows``; returns a DuckDB relation (``.df()``, ``.fetchall()``, ...)."""
        return self.con.sql(query, params=params) if params else self.con.sql(query)

    def turns(self, columns: Sequence[str] | None = None, *, where: str | None = None,
              limit: int | None = None) -> pd.DataFrame:
        """Rows as pandas: only ``columns`` (default all), filtered by the SQL condition ``where``."""
        cols = self._check_columns(columns) if columns else self.columns
        order = [c for c in ("unit_id", "source", "turn") if c in cols]
        q = f"SELECT {', '.join(cols)} FROM rows"
        if where:
            q += f" WHERE {where}"
        if order:
            q += f" ORDER BY {', '.join(order)}"
        if limit:
            q += f" LIMIT {int(limit)}"
        return self.con.sql(q).df()

    def _check_columns(self, names: Sequence[str]) -> list[str]:
        have = set(self.columns)
        bad = [c for c in names if not isinstance(c, str) or not _IDENT.match(c) or c not in have]
        if bad:
            raise ConfigError(f"unknown result columns {bad}", field="columns",
                              fix=f"use some of {', '.join(sorted(have))}")
        return list(names)

    def summary(self, by: Sequence[str] = ("condition", "source"), *, ci: float = 0.95, n_boot: int = 1000,
                seed: int = 0, buckets: int = 500) -> pd.DataFrame:
        """One row per group (see the module docstring for the columns).

        Parameters
        ----------
        by : columns to group by (default condition × source)
        ci : confidence level of the WER/CER intervals
        n_boot : bootstrap resamples
        seed : seeds the resampling (same seed, same intervals)
        buckets : files of a group are pooled into at most this many buckets before resampling
        """
        by = self._check_columns(list(by))
        keys = ", ".join(by)
        # Files: the first row of every (unit, source) carries the file scores (turn 0, or -1 for a source that
        # produced no turn), so the file-level pass reads one row in five or so.
        n_units = "count(*)" if "source" in by else "count(DISTINCT unit_id)"  # one first row per unit and source
        label = ", any_value(condition_label) AS condition_label" if "condition" in by and \
            "condition_label" not in by else ""
        units = self.con.sql(f"""
            SELECT {keys}, hash(unit_id) % {int(buckets)} AS bucket, {n_units} AS n_units,
                   sum(file_word_errors) AS e, sum(file_ref_words) AS w, sum(file_char_errors) AS ce,
                   sum(file_ref_chars) AS cw, count(*) FILTER (WHERE status = 'no_turns') AS n_missed,
                   sum(audio_s) AS audio_s, min(model) AS model_a, max(model) AS model_b,
                   min(cost_basis) AS basis_a, max(cost_basis) AS basis_b{label}
            FROM rows WHERE turn <= 0 GROUP BY {keys}, bucket ORDER BY {keys}, bucket""").df()
        qs = ", ".join(f"quantile_cont({m}, {list(QUANTILES)}) FILTER (WHERE isfinite({m})) AS {m}"
                       for m in LATENCY_METRICS)
        lat = self.con.sql(f"""
            SELECT {keys}, {qs}, count(*) FILTER (WHERE turn >= 0) AS n_turns,
                   count(*) FILTER (WHERE status = 'failed') AS n_failed, sum(cost_usd) AS cost
            FROM rows GROUP BY {keys}""").df()
        out = []
        for key, g in units.groupby(by, sort=True, dropna=False):  # buckets in order: the resampling repeats
            key = key if isinstance(key, tuple) else (key,)
            row: dict[str, Any] = dict(zip(by, key, strict=True))
            w, cw = float(g["w"].sum()), float(g["cw"].sum())
            e, ce = float(g["e"].sum()), float(g["ce"].sum())
            (lo, hi), (clo, chi) = bootstrap_ratio_ci(
                [(g["e"].to_numpy(), g["w"].to_numpy()), (g["ce"].to_numpy(), g["cw"].to_numpy())],
                n_boot=n_boot, ci=ci, seed=[seed, *map(str, key)])
            row.update({
                "models": _names(g["model_a"], g["model_b"]), "cost_basis": _names(g["basis_a"], g["basis_b"]),
                **({"condition_label": g["condition_label"].iloc[0]} if label else {}),
                "n_units": int(g["n_units"].sum()), "n_missed": int(g["n_missed"].sum()), "ref_words": w,
                "wer": e / w if w > 0 else np.nan, "wer_lo": lo, "wer_hi": hi,
                "cer": ce / cw if cw > 0 else np.nan, "cer_lo": clo, "cer_hi": chi,
                "audio_hours": float(g["audio_s"].sum()) / 3600.0,
            })
            out.append(row)
        summary = pd.DataFrame(out)
        if summary.empty:
            return summary
        summary = summary.merge(lat, on=by, how="left")
        summary["cost_usd"] = summary.pop("cost").astype(float)
        hours = summary["audio_hours"].where(summary["audio_hours"] > 0)
        summary["cost_per_audio_hour_usd"] = summary["cost_usd"] / hours
        for m in LATENCY_METRICS:
            vals = [list(v) if isinstance(v, list | np.ndarray) and len(v) else [np.nan] * len(QUANTILES)
                    for v in summary[m]]
            for i, q in enumerate(QUANTILES):
                summary[f"{m[:-3]}_p{int(q * 100)}_ms"] = [v[i] for v in vals]
        summary = summary.drop(columns=list(LATENCY_METRICS))
        front = by + (["condition_label"] if "condition_label" in summary.columns and "condition_label" not in by
                      else [])
        return summary[front + [c for c in summary.columns if c not in front]]

    def conditions(self) -> pd.DataFrame:
        """One row per condition with its parameters."""
        cols = [c for c in ("condition", "condition_label", "target", "voice_model", "in_session_model", "delay",
                            "sidecars", "transforms", "input_format") if c in self.columns]
        return self.con.sql(f"SELECT DISTINCT {', '.join(cols)} FROM rows ORDER BY condition").df()

    def close(self) -> None:
        self.con.close()


def _checked_size(text: str) -> str:
    if not re.match(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", str(text)):
        raise ConfigError(f"memory_limit {text!r} is not a size", field="memory_limit", fix="e.g. '1GB'")
    return str(text)


def _as_rows_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A turns table (from a study, ``EventLog.turns()`` or ``rtlab.compare``) with every column the summary
    reads: a ``file`` column stands for the unit, turns are numbered per (unit, source), a file's scores are the
    sums of its turns' scores unless given, the rest are nulls."""
    out = df.copy()
    if "word_errors" not in out.columns and {"reference", "transcript"} <= set(out.columns):
        from ..analysis.metrics import score_turns

        out = score_turns(out)
    if "unit_id" not in out.columns:
        out["unit_id"] = out["file"].astype(str) if "file" in out.columns else "run"
    if "condition" not in out.columns:
        out["condition"] = "default"
    for c, t in _NEEDED.items():
        if c not in out.columns and not c.startswith("file_") and c != "turn":
            out[c] = pd.Series([None] * len(out), dtype="object" if t == "VARCHAR" else "float64", index=out.index)
    groups = out.groupby(["unit_id", "source"], sort=False, dropna=False)
    if "turn" not in out.columns:
        out["turn"] = groups.cumcount()
    for turn_col in ("word_errors", "ref_words", "char_errors", "ref_chars"):
        if f"file_{turn_col}" not in out.columns:
            out[f"file_{turn_col}"] = groups[turn_col].transform(lambda v: v.sum(min_count=1)).astype(float)
    if "usage" in out.columns:  # dicts do not map to one SQL type
        out = out.drop(columns=["usage"])
    return out


def results(source: str | os.PathLike | pd.DataFrame, **kw: Any) -> StudyResults:
    """Open a study's results lazily: a study folder (``--out`` of ``rtlab study run``), its ``results/`` folder,
    or a pandas DataFrame of turns from a small in-memory run (``EventLog.turns()``, ``rtlab.compare``).

    Keyword arguments go to :class:`StudyResults` (``memory_limit="1GB"``, ``threads``).
    """
    return StudyResults(source, **kw)
