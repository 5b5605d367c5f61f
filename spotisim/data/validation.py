"""Validation of typed MSSD chunks: empty cells, ranges, vocabularies, the nesting of
the skip flags, and the structure of each session (positions 1..length, no gaps, no
duplicates, one length per session).

Every check is vectorised over the chunk.  Under the 'raise' policy the first problem
becomes a `DataValidationError` naming file, line and column; under 'drop' the sessions
that contain a problem are removed and counted per reason in a `DropReport`.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import List, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spotisim.data.readers import Chunk
from spotisim.data.schema import LISTENER_COLUMN, ColumnSpec
from spotisim.errors import ConfigError, DataValidationError

POLICIES = ("raise", "drop")
# A text cell that is only spaces, or holds an ASCII control character.
BAD_TEXT = r"^\s*$|[\x00-\x1f\x7f]"


@dataclasses.dataclass
class Problem:
    """Rows of a chunk that break one rule."""

    reason: str
    column: Optional[str]
    rows: np.ndarray  # boolean mask over the chunk's rows

    def first_error(self, chunk: Chunk, values: Optional[np.ndarray] = None) -> DataValidationError:
        i = int(np.argmax(self.rows))
        msg = self.reason
        if values is not None:
            msg = f"{msg} (found {values[i]!r})"
        return DataValidationError(msg, path=chunk.path, line=chunk.line_of(i),
                                   column=self.column)


@dataclasses.dataclass
class DropReport:
    """What reading found: the sessions and rows the 'drop' policy removed, counted per
    reason, and the quirks kept under every policy (real MSSD has rows whose skip flags
    do not nest): per quirk, its row count and the first example's file and line."""

    sessions: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    rows: int = 0
    quirks: dict = dataclasses.field(default_factory=dict)

    def add_quirk(self, problem: "Problem", chunk: Chunk) -> None:
        n = int(problem.rows.sum())
        if not n:
            return
        entry = self.quirks.setdefault(problem.reason, {"rows": 0, "example": None})
        entry["rows"] += n
        if entry["example"] is None:
            i = int(np.argmax(problem.rows))
            entry["example"] = f"{chunk.path} line {chunk.line_of(i)}"

    def quirk_summary(self) -> str:
        if not self.quirks:
            return "no quirks"
        return "kept, as logged: " + "; ".join(
            f"{q['rows']} rows where {reason} (first: {q['example']})"
            for reason, q in self.quirks.items())

    @property
    def total_sessions(self) -> int:
        return int(sum(self.sessions.values()))

    def add(self, reason: str, n_sessions: int, n_rows: int) -> None:
        if n_sessions:
            self.sessions[reason] += int(n_sessions)
        self.rows += int(n_rows)

    def summary(self) -> str:
        if not self.sessions:
            return "no sessions dropped"
        parts = ", ".join(f"{n} for {r}" for r, n in self.sessions.most_common())
        return f"dropped {self.total_sessions} sessions ({self.rows} rows): {parts}"


def check_policy(on_error: str) -> str:
    if on_error not in POLICIES:
        raise ConfigError(f"on_error must be one of {POLICIES}, got {on_error!r}")
    return on_error


def _np(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False)


def cell_problems(chunk: Chunk, columns: Sequence[ColumnSpec]) -> List[Tuple[Problem, Optional[np.ndarray]]]:
    """Empty cells, out-of-range numbers and unknown categories, column by column."""
    out = []
    table = chunk.table
    for spec in columns:
        col = table.column(spec.name)
        if col.null_count and not spec.nullable:
            out.append((Problem(f"empty cell; expected {spec.describe()}", spec.name,
                                pc.is_null(col).to_numpy(zero_copy_only=False)), None))
            continue
        if spec.kind in ("int", "float") and (spec.low is not None or spec.high is not None):
            vals = col.to_numpy(zero_copy_only=False)
            bad = np.zeros(len(vals), dtype=bool)
            if spec.kind == "float":
                bad |= ~np.isfinite(vals)
            if spec.low is not None:
                bad |= (vals <= spec.low) if spec.open_low else (vals < spec.low)
            if spec.high is not None:
                bad |= vals > spec.high
            if bad.any():
                out.append((Problem(f"value out of range; expected {spec.describe()}",
                                    spec.name, bad), vals))
        elif spec.kind in ("str", "category"):
            if spec.allowed is not None:
                inside = pc.is_in(col, value_set=pa.array(spec.allowed))
                if not pc.all(inside).as_py():
                    out.append((Problem(f"unknown value; expected {spec.describe()}",
                                        spec.name, ~inside.to_numpy(zero_copy_only=False)),
                                _np(table, spec.name)))
            else:
                lengths = pc.binary_length(col)  # from the offsets alone: no scan
                if pc.min(lengths).as_py() == 0:
                    out.append((Problem("empty string", spec.name,
                                        pc.equal(lengths, 0).to_numpy(zero_copy_only=False)),
                                None))
                    continue
                # Ids and reasons: not blank, no control characters (tab, newline, ...).
                bad = pc.match_substring_regex(col, BAD_TEXT)
                if pc.any(bad).as_py():
                    out.append((Problem("blank, or holds a control character (tab, "
                                        "newline, ...)", spec.name,
                                        bad.to_numpy(zero_copy_only=False)),
                                _np(table, spec.name)))
    return out


def skip_flag_problems(table: pa.Table) -> List[Problem]:
    """MSSD's skip flags are meant to nest: skip_1 => skip_2 => skip_3, and not_skipped
    excludes all three.  Real MSSD has rows that break this; they are quirks, reported
    and kept (`DropReport.add_quirk`), not errors.  The rule on the training path: the
    skip definition (`SessionLog.skip_column`, skip_2 by default) is the label as
    logged, and the behaviour features read every other flag as logged."""
    s1, s2, s3, ns = (_np(table, c) for c in ("skip_1", "skip_2", "skip_3", "not_skipped"))
    out = []
    bad = s1 & ~s2
    if bad.any():
        out.append(Problem("skip_1 is True but skip_2 is False (skip flags must nest: "
                           "skip_1 => skip_2 => skip_3)", "skip_2", bad))
    bad = s2 & ~s3
    if bad.any():
        out.append(Problem("skip_2 is True but skip_3 is False (skip flags must nest: "
                           "skip_1 => skip_2 => skip_3)", "skip_3", bad))
    bad = ns & (s1 | s2 | s3)
    if bad.any():
        out.append(Problem("not_skipped is True while a skip flag is True", "not_skipped", bad))
    return out


def run_starts(session_ids: pa.ChunkedArray) -> np.ndarray:
    """Indices where a new run of equal session ids begins (always includes 0)."""
    n = len(session_ids)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    ids = session_ids.combine_chunks() if isinstance(session_ids, pa.ChunkedArray) else session_ids
    change = pc.not_equal(ids.slice(1), ids.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    return np.concatenate([[0], np.nonzero(change)[0] + 1]).astype(np.int64)


def structure_problems(table: pa.Table, starts: np.ndarray) -> List[Problem]:
    """Checks each complete session (a run of rows) for gaps, duplicates and lengths.

    Args:
      table: rows of complete sessions only.
      starts: run starts as returned by `run_starts`.
    """
    n = table.num_rows
    if n == 0:
        return []
    pos = _np(table, "session_position")
    length = _np(table, "session_length")
    run_len = np.diff(np.append(starts, n))
    run_id = np.repeat(np.arange(len(starts)), run_len)
    expected = np.arange(n) - starts[run_id] + 1
    out = []
    bad = pos != expected
    if bad.any():
        out.append(Problem("session_position out of sequence (a gap, a duplicate, an "
                           "unsorted session, or a session split across the file); "
                           "expected positions 1, 2, ... in order", "session_position", bad))
    first_len = length[starts][run_id]
    bad = length != first_len
    if bad.any():
        out.append(Problem("session_length differs within one session", "session_length", bad))
    bad_len = (first_len != run_len[run_id])
    if bad_len.any():
        out.append(Problem("session_length does not match the number of rows of the "
                           "session (rows missing or extra)", "session_length", bad_len))
    if LISTENER_COLUMN in table.column_names:  # a session belongs to one listener
        who = table.column(LISTENER_COLUMN).combine_chunks()
        first_who = who.take(pa.array(starts[run_id]))
        bad = pc.not_equal(who, first_who).to_numpy(zero_copy_only=False)
        if bad.any():
            out.append(Problem("listener_id differs within one session (a session belongs "
                               "to one listener)", LISTENER_COLUMN, bad))
    return out


def session_mask(rows: np.ndarray, starts: np.ndarray, n: int) -> np.ndarray:
    """Expands a row mask to whole runs: True for every row of a run with any True."""
    run_len = np.diff(np.append(starts, n))
    bad_runs = np.logical_or.reduceat(rows, starts) if n else np.zeros(0, bool)
    return np.repeat(bad_runs, run_len)
