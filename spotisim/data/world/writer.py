"""Logged sessions as MSSD session-log rows (the skip flags, pauses, reasons, dates
and context MSSD logs, drawn to match its rates), and MSSD tables as files."""

from __future__ import annotations

import gzip
from typing import Dict, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from spotisim.data.schema import (CONTEXT_TYPES, LISTENER_COLUMN, PROPENSITY_COLUMN,
                                  SESSION_LOG_COLUMNS, SESSION_LOG_SCHEMA)
from spotisim.data.world.common import uuid_strings
from spotisim.io_utils import atomic_file

# Conditional flag rates that reproduce MSSD's skip_1 / skip_3 / not_skipped given skip_2.
P_SKIP1_GIVEN_SKIP2 = 0.816
P_SKIP3_GIVEN_LISTEN = 0.273
P_NOTSKIPPED_GIVEN_FULL = 0.945
HOUR_WEIGHTS = np.array([2, 1.5, 1, .8, .6, .6, 1, 2, 3, 4, 4.7, 5.2, 5.7, 6.2, 7.3, 6.3,
                          6.3, 7.5, 5.6, 6.1, 4.7, 7.4, 5, 3.5])
HOUR_WEIGHTS = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()
_DAY_WEIGHTS = np.array([0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.29, 0.65])
_DAY_WEIGHTS = _DAY_WEIGHTS / _DAY_WEIGHTS.sum()


# ---------------------------------------------------------------------- writing files

def _mssd_csv_table(table: pa.Table) -> pa.Table:
    """Booleans as MSSD writes them (True/False), everything else unchanged."""
    cols = []
    for field, col in zip(table.schema, table.columns):
        if pa.types.is_boolean(field.type):
            col = pc.if_else(col, "True", "False")
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def write_table(table: pa.Table, path: str) -> None:
    """Writes an MSSD table atomically as .csv, .csv.gz or .parquet (by suffix)."""
    low = path.lower()
    if low.endswith(".parquet"):
        with atomic_file(path, "wb") as f:
            pq.write_table(table, f)
        return
    out = _mssd_csv_table(table)
    opts = pacsv.WriteOptions(include_header=False, quoting_style="none")
    header = (",".join(table.column_names) + "\n").encode()
    with atomic_file(path, "wb") as f:
        if low.endswith(".gz"):
            with gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as gz:
                gz.write(header)
                pacsv.write_csv(out, gz, write_options=opts)
        else:
            f.write(header)
            pacsv.write_csv(out, f, write_options=opts)

def session_log_table(sim: Dict[str, np.ndarray], rng: np.random.Generator,
                      track_ids: np.ndarray, listener_premium: np.ndarray,
                      session_prefix: str = "0") -> Tuple[pa.Table, list]:
    """Turns simulated sessions into MSSD session-log rows (and their session ids)."""
    n, L = sim["tracks"].shape
    length = sim["length"]
    mask = np.arange(L)[None, :] < length[:, None]
    rows = int(mask.sum())
    sid = np.array([f"{session_prefix}_{u}" for u in uuid_strings(rng, n)], dtype=object)
    sess = np.repeat(np.arange(n), length)
    pos = (np.nonzero(mask)[1] + 1).astype(np.int64)
    lis = sim["listened"][mask]
    skip2 = ~lis
    skip1 = skip2 & (rng.random(rows) < P_SKIP1_GIVEN_SKIP2)
    skip3 = skip2 | (rng.random(rows) < P_SKIP3_GIVEN_LISTEN)
    not_skipped = ~skip3 & (rng.random(rows) < P_NOTSKIPPED_GIVEN_FULL)
    first = pos == 1
    no_pause = np.where(first, rng.random(rows) < 0.3, rng.random(rows) < 0.8)
    long_p = ~no_pause & (rng.random(rows) < np.where(first, 0.75, 0.5))
    short_p = ~no_pause & ~long_p
    ctx_switch = (~first) & (rng.random(rows) < 0.04)
    if "day" in sim:  # a world whose listeners return: when each session was is given
        hour = np.asarray(sim["hour"])[sess]
        date = (np.datetime64("2018-07-08") + np.asarray(sim["day"]).astype("timedelta64[D]"))[sess]
    else:
        hour = rng.choice(24, size=n, p=HOUR_WEIGHTS)[sess]
        day = np.datetime64("2018-07-08") + rng.choice(8, size=n, p=_DAY_WEIGHTS)
        date = day[sess]
    premium = listener_premium[sim["listener"]][sess]
    shuffle = sim["shuffle"][sess]
    ctx = np.asarray(CONTEXT_TYPES, dtype=object)[sim["context"][sess]]
    last = pos == length[sess]
    reason_end = np.where(skip2, np.where(rng.random(rows) < 0.86, "fwdbtn", "backbtn"),
                          "trackdone").astype(object)
    reason_end = np.where(last & (rng.random(rows) < 0.5),
                          np.where(rng.random(rows) < 0.95, "endplay", "logout"),
                          reason_end)
    prev_end = np.concatenate([[""], reason_end[:-1]]).astype(object)
    first_reason = rng.choice(["clickrow", "appload", "playbtn", "trackdone", "fwdbtn"],
                              size=rows, p=[0.45, 0.2, 0.1, 0.15, 0.1])
    reason_start = np.where(first, first_reason, prev_end)
    reason_start = np.where(reason_start == "endplay", "trackdone", reason_start)
    reason_start = np.where(reason_start == "logout", "appload", reason_start)
    cols = {
        "session_id": pa.array(sid[sess].tolist(), pa.string()),
        "session_position": pa.array(pos),
        "session_length": pa.array(length[sess]),
        "track_id_clean": pa.array(track_ids[sim["tracks"][mask]].tolist(), pa.string()),
        "skip_1": pa.array(skip1), "skip_2": pa.array(skip2), "skip_3": pa.array(skip3),
        "not_skipped": pa.array(not_skipped),
        "context_switch": pa.array(ctx_switch.astype(np.int64)),
        "no_pause_before_play": pa.array(no_pause.astype(np.int64)),
        "short_pause_before_play": pa.array(short_p.astype(np.int64)),
        "long_pause_before_play": pa.array(long_p.astype(np.int64)),
        "hist_user_behavior_n_seekfwd": pa.array(rng.poisson(0.03, rows).astype(np.int64)),
        "hist_user_behavior_n_seekback": pa.array(rng.poisson(0.035, rows).astype(np.int64)),
        "hist_user_behavior_is_shuffle": pa.array(shuffle),
        "hour_of_day": pa.array(hour.astype(np.int64)),
        "date": pa.array(date),
        "premium": pa.array(premium),
        "context_type": pa.array(ctx.tolist(), pa.string()),
        "hist_user_behavior_reason_start": pa.array(reason_start.tolist(), pa.string()),
        "hist_user_behavior_reason_end": pa.array(reason_end.tolist(), pa.string()),
    }
    table = pa.table([cols[c.name] for c in SESSION_LOG_COLUMNS], schema=SESSION_LOG_SCHEMA)
    if "propensity" in sim:  # what the platform logged: the logging policy's propensity
        table = table.append_column(PROPENSITY_COLUMN, pa.array(sim["propensity"][mask]))
    if "listener_id" in sim:  # who listened
        table = table.append_column(
            LISTENER_COLUMN, pa.array(np.asarray(sim["listener_id"])[sess].tolist(), pa.string()))
    return table, sid.tolist()


SUFFIXES = {"csv": ".csv", "csv.gz": ".csv.gz", "parquet": ".parquet"}
