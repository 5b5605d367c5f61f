"""Sharded logs for scale-out: CSV shards become Parquet shards once, in parallel across
files, and each collect actor reads only the shards it owns.

    python -m spotisim.data.shards --input=logs/ --output=logs_parquet/ [--workers=8]

Why shards of whole files: a session never straddles files (the readers rely on it), so
a shard is a self-contained set of sessions that one actor can own, and the conversion
parallelises by file with nothing to merge (`--rows_per_shard` also cuts a big file into
several shards, at session boundaries).  "Once": a file whose shards are newer than it is
not converted again, so re-running after adding files only does the new ones.  Outputs
are written atomically (a crash leaves no half-written shard).
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import sys
from typing import List, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from spotisim.data.readers import list_files
from spotisim.data.schema import SESSION_LOG_SCHEMA
from spotisim.data.sessions import iter_session_tables
from spotisim.errors import ConfigError, SpotisimError
from spotisim.io_utils import atomic_file

PARQUET = ".parquet"
#: 2: shards keep the optional columns (propensity, listener id); 1 (or none) dropped them.
SHARD_FORMAT = 2


def shard_stem(path: str) -> str:
    """The shard name stem of a log file: log_00003.csv.gz -> log_00003."""
    base = os.path.basename(path)
    for suffix in (".csv.gz", ".csv", ".parquet"):
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return base


def _manifest(output_dir: str, stem: str) -> str:
    return os.path.join(output_dir, f".{stem}.shards.json")


def _up_to_date(src: str, output_dir: str, stem: str, rows_per_shard: Optional[int]):
    """The shard paths written for `src` earlier, if they are newer than it and were cut
    with the same `rows_per_shard`; else None."""
    path = _manifest(output_dir, stem)
    if not os.path.exists(path) or os.path.getmtime(path) < os.path.getmtime(src):
        return None
    with open(path) as f:
        meta = json.load(f)
    shards = [os.path.join(output_dir, n) for n in meta["shards"]]
    if meta.get("rows_per_shard") != rows_per_shard or not all(map(os.path.exists, shards)) \
            or meta.get("format") != SHARD_FORMAT:
        return None
    return shards


def convert_shard(src: str, output_dir: str, rows_per_shard: Optional[int] = None,
                  on_error: str = "raise") -> List[str]:
    """Validates one session-log file and writes it as Parquet shards in `output_dir`.

    One shard per file, or, with `rows_per_shard`, a new shard each time that many rows
    are reached (cut at a session boundary, so no session is split): one big CSV then
    still feeds several actors.  Each shard is written atomically, and a manifest
    (.<stem>.shards.json) written last records the set, so a crash part-way leaves the
    file to be converted again rather than a silently short log.

    Returns the shard paths ('<stem>.parquet', or '<stem>-00000.parquet', ...).
    """
    stem = shard_stem(src)
    done = _up_to_date(src, output_dir, stem, rows_per_shard)
    if done is not None:
        return done
    names: List[str] = []
    batch: List = []
    rows = 0

    def write():
        name = f"{stem}-{len(names):05d}{PARQUET}" if rows_per_shard else stem + PARQUET
        with atomic_file(os.path.join(output_dir, name), "wb") as f:
            pq.write_table(pa.concat_tables(batch) if batch else SESSION_LOG_SCHEMA.empty_table(), f)
        names.append(name)

    for chunk in iter_session_tables(src, on_error=on_error,
                                     chunk_rows=min(rows_per_shard or 100_000, 100_000)):
        # MSSD's columns, then the optional ones the log has (`iter_chunks` reads them).
        table = chunk.table.cast(pa.schema(
            list(SESSION_LOG_SCHEMA) + list(chunk.table.schema)[len(SESSION_LOG_SCHEMA):]))
        if rows_per_shard:  # cut at the first session start at or after the limit
            starts = np.nonzero(table.column("session_position").to_numpy() == 1)[0]
            while True:
                cut = starts[starts >= rows_per_shard - rows]
                if not len(cut) or (cut[0] == 0 and not rows):
                    break
                batch.append(table.slice(0, int(cut[0])))
                write()
                table, starts, batch, rows = table.slice(int(cut[0])), starts - cut[0], [], 0
                starts = starts[starts >= 0]
        batch.append(table)
        rows += table.num_rows
    if batch or not names:
        write()
    with atomic_file(_manifest(output_dir, stem)) as f:
        json.dump({"source": os.path.abspath(src), "rows_per_shard": rows_per_shard,
                   "shards": names, "format": SHARD_FORMAT}, f)
    return [os.path.join(output_dir, n) for n in names]


def preprocess_shards(input_path: str, output_dir: str, workers: Optional[int] = None,
                      rows_per_shard: Optional[int] = None,
                      on_error: str = "raise") -> List[str]:
    """Converts every log file under `input_path` (file, glob or directory) into Parquet
    shards in `output_dir`, `workers` files at a time (default: one per core).

    Returns the shard paths, sorted.  Two inputs with the same stem (a.csv and a.csv.gz)
    are refused rather than silently overwriting each other.

    Raises:
      DataValidationError: from the first bad file (its file, line and column).
    """
    files = list_files(input_path)
    stems = [shard_stem(f) for f in files]
    if len(set(stems)) != len(stems):
        dup = sorted({n for n in stems if stems.count(n) > 1})
        raise ConfigError(f"{input_path}: several log files map to the same shard {dup[0]}")
    if rows_per_shard is not None and rows_per_shard < 1:
        raise ConfigError(f"rows_per_shard must be positive, got {rows_per_shard}")
    os.makedirs(output_dir, exist_ok=True)
    shards: List[str] = []
    jobs = []
    for f, stem in zip(files, stems):
        done = _up_to_date(f, output_dir, stem, rows_per_shard)
        if done is None:
            jobs.append(f)
        else:
            shards += done
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    if workers == 1:
        for f in jobs:
            shards += convert_shard(f, output_dir, rows_per_shard, on_error)
    else:
        # spawn: the caller may have TensorFlow loaded, which does not survive fork.
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            futures = [pool.submit(convert_shard, f, output_dir, rows_per_shard, on_error)
                       for f in jobs]
            for fut in futures:
                shards += fut.result()
    return sorted(shards)


def assign_shards(shards: Sequence[str], index: int, count: int) -> List[str]:
    """The shards actor `index` of `count` owns: every count-th one, from `index`.

    Raises:
      ConfigError: an index out of range, or more actors than shards (an actor with
        no data would collect nothing).
    """
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"actor index {index} is not in [0, {count})")
    if len(shards) < count:
        raise ConfigError(f"{count} actors but only {len(shards)} log shards: give each "
                          "actor at least one shard (write the log in more files)")
    return list(shards[index::count])


def main(argv: Optional[Sequence[str]] = None) -> int:
    import argparse
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, help="log file, glob or directory (CSV/CSV.gz)")
    p.add_argument("--output", required=True, help="directory for the Parquet shards")
    p.add_argument("--workers", type=int, default=None, help="files converted at once")
    p.add_argument("--rows_per_shard", type=int, default=None,
                   help="cut big files into shards of about this many rows")
    p.add_argument("--on_error", default="raise", choices=["raise", "drop"])
    args = p.parse_args(argv)
    try:
        shards = preprocess_shards(args.input, args.output, args.workers,
                                   args.rows_per_shard, args.on_error)
    except SpotisimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(shards)} Parquet shards in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
