"""Streams a session log as tables of complete, validated sessions.

Chunk boundaries: MSSD files list each session's rows contiguously and in position
order, so a session may straddle the chunks *of one file*: the rows of the last, still
open session of a chunk are held back and prepended to the next chunk.  A session may
NOT straddle files (shards): at the end of a file every open session is closed, and a
continuation in the next file fails the position check.  Peak memory is one chunk plus
one session, and about 100 bytes per session for the ids seen so far (a dict of their
64-bit hashes and first places).

Every reader of a log (`read_session_log`, `python -m spotisim.data.inspect`, the shard
converter) goes through here, so they all validate a log the same way: a session id seen
before (a shard copied twice, a session repeated further down) is an error, or under
'drop' a later copy dropped and counted.
"""

from __future__ import annotations

from typing import Dict, Iterator, Optional, Tuple

import numpy as np
import pandas as pd
import pyarrow as pa

from spotisim.data import readers, validation
from spotisim.data.readers import Chunk
from spotisim.data.schema import OPTIONAL_SESSION_LOG_COLUMNS, SESSION_LOG_COLUMNS
from spotisim.data.validation import DropReport
from spotisim.errors import DataValidationError


class SeenSessions:
    """The session ids read so far, as 64-bit hashes with the file and line of each
    first copy: a later copy of an id is an error under 'raise' (naming both places),
    dropped and counted under 'drop'."""

    def __init__(self):
        self._first: Dict[int, Tuple[int, int]] = {}
        self._paths: Dict[str, int] = {}

    def check(self, chunk: Chunk, on_error: str, report: DropReport) -> Chunk:
        table = chunk.table
        starts = validation.run_starts(table.column("session_id"))
        if not len(starts):
            return chunk
        ids = table.column("session_id").take(pa.array(starts)).to_numpy(zero_copy_only=False)
        keys = pd.util.hash_array(ids.astype(object)).tolist()
        file_no = self._paths.setdefault(chunk.path, len(self._paths))
        dup = np.zeros(len(starts), bool)
        for j, key in enumerate(keys):
            first = self._first.get(key)
            if first is None:
                self._first[key] = (file_no, chunk.line_of(int(starts[j])))
                continue
            if on_error != "drop":
                paths = list(self._paths)
                raise DataValidationError(
                    f"session {ids[j]!r} appears twice (first at {paths[first[0]]} line "
                    f"{first[1]})", path=chunk.path, line=chunk.line_of(int(starts[j])),
                    column="session_id")
            dup[j] = True
        if not dup.any():
            return chunk
        marked = np.zeros(table.num_rows, bool)
        marked[starts[dup]] = True
        drop = validation.session_mask(marked, starts, table.num_rows)
        report.add("session id appears twice", int(dup.sum()), int(drop.sum()))
        return chunk.take(np.nonzero(~drop)[0])


def _drop(chunk: Chunk, problems, report: DropReport) -> Chunk:
    """Removes every session that has a row in any of `problems`; counts per reason."""
    table = chunk.table
    n = table.num_rows
    starts = validation.run_starts(table.column("session_id"))
    bad_rows = np.zeros(n, dtype=bool)
    for p in problems:
        sess = validation.session_mask(p.rows, starts, n)
        new = sess & ~bad_rows
        report.add(p.reason.split(";")[0].split(" (")[0], int(new[starts].sum()),
                   int(new.sum()))
        bad_rows |= sess
    return chunk.take(np.nonzero(~bad_rows)[0])


def _validate(chunk: Chunk, on_error: str, report: DropReport) -> Chunk:
    """Checks a chunk of complete sessions; returns it (bad sessions dropped under 'drop').

    Cell checks come first: the nesting and structure checks need well-formed cells.
    """
    present = set(chunk.table.column_names)
    found = validation.cell_problems(chunk, SESSION_LOG_COLUMNS + tuple(
        spec for spec in OPTIONAL_SESSION_LOG_COLUMNS if spec.name in present))
    if found:
        if on_error == "raise":
            raise found[0][0].first_error(chunk, found[0][1])
        chunk = _drop(chunk, [p for p, _ in found], report)
    table = chunk.table
    starts = validation.run_starts(table.column("session_id"))
    for quirk in validation.skip_flag_problems(table):
        report.add_quirk(quirk, chunk)
    problems = validation.structure_problems(table, starts)
    if not problems:
        return chunk
    if on_error == "raise":
        raise problems[0].first_error(chunk)
    return _drop(chunk, problems, report)


def iter_session_tables(path: str, *, chunk_rows: int = 100_000, on_error: str = "raise",
                        report: Optional[DropReport] = None) -> Iterator[Chunk]:
    """Yields chunks that hold only whole sessions, validated.

    Args:
      path: a session-log file, glob or directory (CSV, CSV.gz or Parquet).
      chunk_rows: approximate rows read at once; bounds memory.
      on_error: 'raise' (first problem -> DataValidationError naming file, line, column)
        or 'drop' (drop sessions with problems; counted in `report`).
      report: receives the drop counts under 'drop'.
    """
    validation.check_policy(on_error)
    report = report if report is not None else DropReport()
    seen = SeenSessions()
    current_path = None
    carry: Optional[Chunk] = None
    for chunk in readers.iter_chunks(path, SESSION_LOG_COLUMNS,
                                     optional=OPTIONAL_SESSION_LOG_COLUMNS,
                                     chunk_rows=chunk_rows):
        if chunk.path != current_path:
            if carry is not None and carry.num_rows:
                out = seen.check(_validate(carry, on_error, report), on_error, report)
                if out.num_rows:
                    yield out
            carry, current_path = None, chunk.path
        if carry is not None:
            chunk = Chunk(chunk.path, carry.first_line,
                          pa.concat_tables([carry.table, chunk.table]))
        starts = validation.run_starts(chunk.table.column("session_id"))
        last = int(starts[-1]) if len(starts) else 0
        complete, carry = chunk.slice(0, last), chunk.slice(last)
        if complete.num_rows:
            out = seen.check(_validate(complete, on_error, report), on_error, report)
            if out.num_rows:
                yield out
    if carry is not None and carry.num_rows:
        out = seen.check(_validate(carry, on_error, report), on_error, report)
        if out.num_rows:
            yield out
