"""A study's results, analysed lazily with DuckDB: per-source/condition WER with bootstrap CIs, latency, cost.

Layer: analysis. :func:`results` opens the Parquet parts of a study folder (or takes a pandas DataFrame of turns
from a small in-memory run) as one DuckDB view, ``rows``; nothing is loaded into pandas until asked, and then
only the aggregate. :meth:`StudyResults.summary` gives one row per group (default: condition × source):

* ``wer`` / ``cer`` — corpus rates: total edits over total reference words (characters), per file (the whole
  file's transcript of a source against its reference, see :mod:`rtlab.study.unit`; rows without file scores fall
  back to the sum of their per-turn counts). ``wer_lo`` / ``wer_hi`` — a percentile bootstrap confidence
  interval that resamples *files* (turns of one file are not independent). Above ``buckets`` files, the files
  of a group are pooled into that many buckets by a hash of their unit id before resampling: a random partition
  keeps the variance of the total, and the cost stays fixed however large the corpus.
* ``<metric>_p50_ms`` / ``_p90_ms`` / ``_p95_ms`` for ``first_delta_ms``, ``ttfs_ms`` and ``ttfs_true_ms``
  (linear interpolation, as :func:`rtlab.metrics.summary`), over the turns that have the value.
* ``cost_usd`` (sum) and ``cost_per_audio_hour_usd``; ``cost_basis`` says whether the costs are emulated.
* ``n_units``, ``n_turns``, ``n_failed`` (turns whose transcription failed), ``n_missed`` (files where the
  source produced no turn at all).

Example
-------
>>> r = results("out/study")                                       # doctest: +SKIP
>>> r.summary()[["condition_label", "source", "wer", "wer_lo", "wer_hi", "ttfs_p95_ms"]]   # doctest: +SKIP
>>> r.sql("SELECT item, transcript FROM rows WHERE wer > 0.5 LIMIT 10").df()                 # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError

__all__ = ["LATENCY_METRICS", "StudyResults", "bootstrap_ratio_ci", "results"]

LATENCY_METRICS = ("first_delta_ms", "ttfs_ms", "ttfs_true_ms")
QUANTILES = (0.5, 0.9, 0.95)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Columns the summary reads; a DataFrame without some of them gets them as nulls.
_NEEDED = {
    "unit_id": "VARCHAR", "condition": "VARCHAR", "source": "VARCHAR", "status": "VARCHAR", "model": "VARCHAR",
    "word_errors": "DOUBLE", "ref_words": "DOUBLE", "char_errors": "DOUBLE", "ref_chars": "DOUBLE",
    "file_word_errors": "DOUBLE", "file_ref_words": "DOUBLE", "file_char_errors": "DOUBLE",
    "file_ref_chars": "DOUBLE", "cost_usd": "DOUBLE", "audio_s": "DOUBLE", "condition_label": "VARCHAR",
    "cost_basis": "VARCHAR", **{m: "DOUBLE" for m in LATENCY_METRICS},
}


def bootstrap_ratio_ci(errors: np.ndarray, words: np.ndarray, *, n_boot: int = 1000, ci: float = 0.95,
                       seed: Any = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of ``sum(errors) / sum(words)`` resampling the (file or bucket) pairs.

    Returns (NaN, NaN) with fewer than two pairs that have reference words.
    """
    e = np.asarray(errors, dtype=float)
    w = np.asarray(words, dtype=float)
    keep = np.isfinite(e) & np.isfinite(w)
    e, w = e[keep], w[keep]
    if int((w > 0).sum()) < 2:
        return np.nan, np.nan
    from .spec import derive_seed

    rng = np.random.default_rng(derive_seed(seed) if not isinstance(seed, int) else seed)
    idx = rng.integers(0, len(e), size=(n_boot, len(e)))
    tot_w = w[idx].sum(axis=1)
    ratio = e[idx].sum(axis=1) / np.where(tot_w > 0, tot_w, np.nan)
    ratio = ratio[np.isfinite(ratio)]
    alpha = (1.0 - ci) / 2.0
    lo, hi = np.quantile(ratio, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


class StudyResults:
    """A lazy view of study rows (one per unit, turn and source) in DuckDB; build with :func:`results`."""

    def __init__(self, source: str | os.PathLike | pd.DataFrame, *, memory_limit: str = "1GB",
                 threads: int | None = None):
        import duckdb

        self.con = duckdb.connect()
        self.con.execute(f"SET memory_limit = '{_checked_size(memory_limit)}'")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if isinstance(source, pd.DataFrame):
            self.path = None
            self._frame = _as_rows_frame(source)
            self.con.register("_frame", self._frame)
            self.con.execute("CREATE VIEW rows AS SELECT * FROM _frame")
        else:
            path = Path(source)
            parts = path / "results" if (path / "results").is_dir() else path
            if not any(parts.glob("condition=*/part-*.parquet")) and not any(parts.glob("*.parquet")):
                raise ConfigError(f"{path}: no result parts (results/condition=*/part-*.parquet)", field="path",
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
        return [r[0] for r in self.con.execute("DESCRIBE rows").fetchall()]

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
                seed: int = 0, buckets: int = 1000) -> pd.DataFrame:
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
        units = self.con.sql(f"""
            WITH per_unit AS (
                SELECT {keys}, unit_id,
                       coalesce(max(file_word_errors), sum(word_errors)) AS e,
                       coalesce(max(file_ref_words), sum(ref_words)) AS w,
                       coalesce(max(file_char_errors), sum(char_errors)) AS ce,
                       coalesce(max(file_ref_chars), sum(ref_chars)) AS cw,
                       count(*) FILTER (WHERE coalesce(status, '') <> 'no_turns') AS n_turns,
                       count(*) FILTER (WHERE status = 'failed') AS n_failed,
                       bool_or(status = 'no_turns') AS missed,
                       sum(cost_usd) AS cost, max(audio_s) AS audio_s
                FROM rows GROUP BY {keys}, unit_id)
            SELECT {keys}, hash(unit_id) % {int(buckets)} AS bucket, count(*) AS n_units,
                   sum(e) AS e, sum(w) AS w, sum(ce) AS ce, sum(cw) AS cw, sum(n_turns) AS n_turns,
                   sum(n_failed) AS n_failed, count(*) FILTER (WHERE missed) AS n_missed, sum(cost) AS cost,
                   sum(audio_s) AS audio_s
            FROM per_unit GROUP BY {keys}, bucket ORDER BY {keys}, bucket""").df()
        qs = ", ".join(
            f"quantile_cont({m}, {list(QUANTILES)}) FILTER (WHERE isfinite({m})) AS {m}" for m in LATENCY_METRICS)
        label = ", any_value(condition_label) AS condition_label" if "condition" in by and \
            "condition_label" not in by else ""
        lat = self.con.sql(f"""
            SELECT {keys}, {qs}, string_agg(DISTINCT model, ',' ORDER BY model) AS models,
                   string_agg(DISTINCT cost_basis, ',' ORDER BY cost_basis) AS cost_basis{label}
            FROM rows GROUP BY {keys}""").df()
        out = []
        for key, g in units.groupby(by, sort=True, dropna=False):  # buckets in order: the resampling repeats
            key = key if isinstance(key, tuple) else (key,)
            row: dict[str, Any] = dict(zip(by, key, strict=True))
            w, cw = float(g["w"].sum()), float(g["cw"].sum())
            e, ce = float(g["e"].sum()), float(g["ce"].sum())
            lo, hi = bootstrap_ratio_ci(g["e"].to_numpy(), g["w"].to_numpy(), n_boot=n_boot, ci=ci,
                                        seed=[seed, *map(str, key)])
            clo, chi = bootstrap_ratio_ci(g["ce"].to_numpy(), g["cw"].to_numpy(), n_boot=n_boot, ci=ci,
                                          seed=[seed, "cer", *map(str, key)])
            audio_h = float(g["audio_s"].sum()) / 3600.0
            cost = float(g["cost"].sum()) if g["cost"].notna().any() else np.nan
            row.update({
                "n_units": int(g["n_units"].sum()), "n_turns": int(g["n_turns"].sum()),
                "n_failed": int(g["n_failed"].sum()), "n_missed": int(g["n_missed"].sum()), "ref_words": w,
                "wer": e / w if w > 0 else np.nan, "wer_lo": lo, "wer_hi": hi,
                "cer": ce / cw if cw > 0 else np.nan, "cer_lo": clo, "cer_hi": chi,
                "cost_usd": cost, "audio_hours": audio_h,
                "cost_per_audio_hour_usd": cost / audio_h if audio_h > 0 and np.isfinite(cost) else np.nan,
            })
            out.append(row)
        summary = pd.DataFrame(out)
        if summary.empty:
            return summary
        for m in LATENCY_METRICS:
            vals = [list(v) if isinstance(v, list | np.ndarray) and len(v) else [np.nan] * len(QUANTILES)
                    for v in lat[m]]
            for i, q in enumerate(QUANTILES):
                lat[f"{m[:-3]}_p{int(q * 100)}_ms"] = [v[i] for v in vals]
        lat = lat.drop(columns=list(LATENCY_METRICS))
        summary = summary.merge(lat, on=by, how="left")
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
    reads: a ``file`` column stands for the unit, missing scores are computed, the rest are nulls."""
    out = df.copy()
    if "word_errors" not in out.columns and {"reference", "transcript"} <= set(out.columns):
        from ..metrics import score_turns

        out = score_turns(out)
    if "unit_id" not in out.columns:
        out["unit_id"] = out["file"].astype(str) if "file" in out.columns else "run"
    if "condition" not in out.columns:
        out["condition"] = "default"
    for c, t in _NEEDED.items():
        if c not in out.columns:
            out[c] = pd.Series([None] * len(out), dtype="object" if t == "VARCHAR" else "float64", index=out.index)
    if "usage" in out.columns:  # dicts do not map to one SQL type
        out = out.drop(columns=["usage"])
    return out


def results(source: str | os.PathLike | pd.DataFrame, **kw: Any) -> StudyResults:
    """Open a study's results lazily: a study folder (``--out`` of ``rtlab study run``), its ``results/`` folder,
    or a pandas DataFrame of turns from a small in-memory run (``EventLog.turns()``, ``rtlab.compare``).

    Keyword arguments go to :class:`StudyResults` (``memory_limit="1GB"``, ``threads``).
    """
    return StudyResults(source, **kw)
