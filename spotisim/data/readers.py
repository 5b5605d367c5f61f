"""Streaming readers for MSSD tables: one file, a glob or a directory of CSV (plain or
gzip) or Parquet shards, read in bounded chunks with typed columns.

The fast path lets Arrow parse and type each block.  When Arrow refuses a block (a bad
cell), the file is read again as text and checked cell by cell, so the error names the
file, the line and the column instead of Arrow's "conversion error".
"""

from __future__ import annotations

import dataclasses
import glob
import gzip
import os
import zlib
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from spotisim.data.schema import ColumnSpec
from spotisim.errors import DataValidationError

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
TRUE_VALUES = ["True", "true", "TRUE", "1"]
FALSE_VALUES = ["False", "false", "FALSE", "0"]
CSV_BLOCK_BYTES = 1 << 20


@dataclasses.dataclass
class Chunk:
    """A typed block of rows from one file.

    Attributes:
      path: the file it came from.
      first_line: the 1-based line of its first row in that file (header = line 1).
      table: Arrow table with exactly the schema's columns, in schema order.
    """

    path: str
    first_line: int
    table: pa.Table
    lines: Optional[np.ndarray] = None  # set once rows were dropped: line of each row

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    def line_of(self, i: int) -> int:
        """The file line of row i of this chunk."""
        return int(self.lines[i]) if self.lines is not None else self.first_line + int(i)

    def all_lines(self) -> np.ndarray:
        if self.lines is not None:
            return self.lines
        return np.arange(self.first_line, self.first_line + self.num_rows, dtype=np.int64)

    def take(self, rows: np.ndarray) -> "Chunk":
        """The chunk restricted to `rows`, keeping each row's line number."""
        return Chunk(self.path, self.first_line, self.table.take(pa.array(rows)),
                     self.all_lines()[rows])

    def slice(self, start: int, stop: Optional[int] = None) -> "Chunk":
        stop = self.num_rows if stop is None else stop
        lines = None if self.lines is None else self.lines[start:stop]
        return Chunk(self.path, self.first_line + start,
                     self.table.slice(start, stop - start), lines)


def _is_data_file(name: str) -> bool:
    low = name.lower()
    return low.endswith(CSV_SUFFIXES) or low.endswith(PARQUET_SUFFIXES)


def list_files(path: str) -> List[str]:
    """Expands a file, a directory or a glob into a sorted list of data files.

    Raises:
      DataValidationError: nothing readable matches.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path) if _is_data_file(f))
    elif any(ch in path for ch in "*?["):
        files = sorted(f for f in glob.glob(path) if os.path.isfile(f))
    elif os.path.isfile(path):
        files = [path]
    else:
        raise DataValidationError("no such file or directory", path=path)
    if not files:
        raise DataValidationError(
            "no data files found (expected .csv, .csv.gz or .parquet)", path=path)
    for f in files:
        if not _is_data_file(f):
            raise DataValidationError(
                "unknown file type: expected .csv, .csv.gz or .parquet", path=f)
    return files


def files_digest(path: str) -> str:
    """A SHA-256 over the data files `path` expands to (`list_files`): each file's name,
    size and modification time.  Cheap (no file is read), and it changes when a file is
    replaced, rewritten, added or removed: what a prepared directory records of the
    data it was prepared from."""
    import hashlib
    h = hashlib.sha256()
    for f in list_files(path):
        st = os.stat(f)
        h.update(f"{os.path.abspath(f)}\x1f{st.st_size}\x1f{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _is_parquet(path: str) -> bool:
    return path.lower().endswith(PARQUET_SUFFIXES)


def _open_text(path: str):
    raw = open(path, "rb")
    head = raw.read(2)
    raw.seek(0)
    if head == b"\x1f\x8b":  # gzip magic, whatever the suffix says
        return gzip.GzipFile(fileobj=raw)
    return raw


def _arrow_input(path: str) -> pa.NativeFile:
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return pa.input_stream(path, compression="gzip" if gz else None)


def _broken_file(path: str, exc: BaseException, after_line: Optional[int] = None
                 ) -> DataValidationError:
    """One clear error for a file whose bytes cannot be read as text CSV: a truncated or
    corrupt gzip stream, binary bytes, or a line longer than the reader's block."""
    where = f" after line {after_line}" if after_line and after_line > 1 else ""
    if isinstance(exc, UnicodeDecodeError):
        why = "not UTF-8 text (binary bytes? a compressed file without the gzip header?)"
    elif isinstance(exc, (EOFError, gzip.BadGzipFile, zlib.error)) or \
            "compressed" in str(exc).lower() or "gzip" in str(exc).lower():
        why = f"a broken or truncated gzip stream{where} ({exc})"
    elif "straddl" in str(exc):
        long_line = _first_long_line(path)
        return DataValidationError(
            f"a line longer than {CSV_BLOCK_BYTES >> 20} MiB (an unclosed quote, or "
            "not a session log?)", path=path, line=long_line)
    else:
        why = f"unreadable{where} ({exc})"
    return DataValidationError(f"cannot read the file: {why}", path=path)


def _first_long_line(path: str) -> Optional[int]:
    """1-based number of the first line over the CSV block size (error path only)."""
    try:
        with _open_text(path) as f:
            n = 0
            while True:
                line = f.readline(CSV_BLOCK_BYTES + 1)
                if not line:
                    return None
                n += 1
                if len(line) > CSV_BLOCK_BYTES:
                    return n
                while not line.endswith(b"\n") and len(line) == CSV_BLOCK_BYTES + 1:
                    line = f.readline(CSV_BLOCK_BYTES + 1)  # pragma: no cover
    except (OSError, EOFError, zlib.error):
        return None


def read_csv_header(path: str) -> List[str]:
    try:
        with _open_text(path) as f:
            line = f.readline(CSV_BLOCK_BYTES).decode("utf-8-sig").rstrip("\r\n")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise _broken_file(path, exc) from None
    if not line:
        raise DataValidationError("file is empty (no header line)", path=path, line=1)
    return [c.strip() for c in line.split(",")]


def _check_columns(present: Sequence[str], columns: Sequence[ColumnSpec], path: str) -> None:
    present_set = set(present)
    for spec in columns:
        if spec.name not in present_set:
            raise DataValidationError(
                f"missing required column (found: {', '.join(present) or 'none'})",
                path=path, line=1, column=spec.name)


# --------------------------------------------------------------------------- cell checks

def _string_cell_errors(arr: np.ndarray, spec: ColumnSpec) -> Tuple[np.ndarray, np.ndarray]:
    """Parses a column of text cells.  Returns (values, bad_mask)."""
    s = np.asarray(arr, dtype=object)
    empty = np.array([v is None or v == "" for v in s], dtype=bool)
    if spec.kind == "bool":
        ok = np.isin(s, TRUE_VALUES + FALSE_VALUES)
        vals = np.isin(s, TRUE_VALUES)
        return vals, ~ok
    if spec.kind in ("int", "float"):
        out = np.zeros(len(s), dtype=np.float64)
        bad = np.zeros(len(s), dtype=bool)
        for i, v in enumerate(s):
            try:
                if spec.kind == "int":
                    out[i] = int(v)
                else:
                    out[i] = float(v)
            except (TypeError, ValueError):
                bad[i] = True
        return out, bad
    if spec.kind == "date":
        vals = np.array(s, dtype=object)
        bad = np.zeros(len(s), dtype=bool)
        for i, v in enumerate(s):
            try:
                np.datetime64(v, "D")
                bad[i] = v is None or len(v) != 10
            except (TypeError, ValueError):
                bad[i] = True
        return vals, bad
    return s, empty


def locate_bad_cell(path: str, columns: Sequence[ColumnSpec]) -> DataValidationError:
    """Reads a CSV file as text and returns an error for its first unparseable cell.

    Only called after the typed fast path failed, so speed does not matter here.
    """
    opts = pacsv.ConvertOptions(
        column_types={c.name: pa.string() for c in columns},
        include_columns=[c.name for c in columns], strings_can_be_null=True)
    reader = pacsv.open_csv(_arrow_input(path), convert_options=opts)
    line = 2
    for batch in reader:
        for spec in columns:
            vals = batch.column(spec.name).to_numpy(zero_copy_only=False)
            _, bad = _string_cell_errors(vals, spec)
            if bad.any():
                i = int(np.argmax(bad))
                return DataValidationError(
                    f"cannot read {vals[i]!r} as {spec.describe()}",
                    path=path, line=line + i, column=spec.name)
        line += batch.num_rows
    return DataValidationError("Arrow could not parse this file, but every cell looks "
                               "valid; is a row missing a field?", path=path)


# --------------------------------------------------------------------------- readers

def _iter_csv(path: str, columns: Sequence[ColumnSpec], chunk_rows: int) -> Iterator[Chunk]:
    header = read_csv_header(path)
    _check_columns(header, columns, path)
    # Arrow parses small blocks several times faster than large ones (they stay in
    # cache); the batches are then gathered, without copying, into chunks of chunk_rows.
    read_opts = pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=True)
    conv_opts = pacsv.ConvertOptions(
        column_types={c.name: c.arrow_type for c in columns},
        include_columns=[c.name for c in columns],
        true_values=TRUE_VALUES, false_values=FALSE_VALUES,
        strings_can_be_null=False)
    line = 2
    batches, pending = [], 0
    try:
        reader = pacsv.open_csv(_arrow_input(path), read_options=read_opts,
                                convert_options=conv_opts)
        for batch in reader:
            if batch.num_rows == 0:
                continue
            batches.append(batch)
            pending += batch.num_rows
            if pending >= chunk_rows:
                yield Chunk(path, line, pa.Table.from_batches(batches))
                line += pending
                batches, pending = [], 0
    except pa.ArrowInvalid as exc:
        if "straddl" in str(exc):
            raise _broken_file(path, exc) from None
        try:
            err = locate_bad_cell(path, columns)
        except (OSError, EOFError, zlib.error, UnicodeDecodeError, pa.ArrowInvalid) as exc2:
            raise _broken_file(path, exc2, line + pending) from None
        if err.line is None:
            err = DataValidationError(f"unreadable CSV: {exc}", path=path)
        raise err from None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise _broken_file(path, exc, line + pending - 1) from None
    if batches:
        yield Chunk(path, line, pa.Table.from_batches(batches))


def _iter_parquet(path: str, columns: Sequence[ColumnSpec], chunk_rows: int) -> Iterator[Chunk]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataValidationError(f"not a readable Parquet file ({exc})", path=path) from None
    _check_columns(pf.schema_arrow.names, columns, path)
    target = pa.schema([pa.field(c.name, c.arrow_type) for c in columns])
    line = 2
    for batch in pf.iter_batches(batch_size=chunk_rows, columns=[c.name for c in columns]):
        table = pa.Table.from_batches([batch])
        if not table.schema.equals(target):
            table = _cast_parquet(table, columns, path, line)
        yield Chunk(path, line, table)
        line += table.num_rows


def _cast_parquet(table: pa.Table, columns: Sequence[ColumnSpec], path: str,
                  first_line: int) -> pa.Table:
    arrays = []
    for spec in columns:
        col = table.column(spec.name)
        if col.type == spec.arrow_type:
            arrays.append(col)
            continue
        if spec.kind == "bool" and (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
            # Numbers are flags only when 0 or 1 (a cast would read 0.5 as True).
            ok = pc.fill_null(pc.is_in(col, value_set=pa.array([0, 1], col.type)), True)
            ok = ok.to_numpy(zero_copy_only=False)
            if not ok.all():
                i = int(np.argmax(~ok))
                raise DataValidationError(
                    f"column has type {col.type}; cannot read {col[i].as_py()!r} as "
                    f"{spec.describe()}", path=path, line=first_line + i, column=spec.name)
        try:
            arrays.append(col.cast(spec.arrow_type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            vals, bad = _string_cell_errors(
                np.array([None if v is None else str(v) for v in col.to_pylist()],
                         dtype=object), spec)
            i = int(np.argmax(bad)) if bad.any() else 0
            raise DataValidationError(
                f"column has type {col.type}; cannot read {col[i].as_py()!r} as "
                f"{spec.describe()}", path=path, line=first_line + i,
                column=spec.name) from None
    return pa.Table.from_arrays(arrays, names=[c.name for c in columns])


def iter_chunks(path: str, columns: Sequence[ColumnSpec], *,
                optional: Sequence[ColumnSpec] = (),
                chunk_rows: int = 100_000) -> Iterator[Chunk]:
    """Streams typed chunks of one MSSD table from a file, glob or directory.

    Args:
      path: a file, a directory (every .csv/.csv.gz/.parquet in it, sorted) or a glob.
      columns: the schema to read (extra columns in the files are ignored).
      optional: columns read too where the files have them (after `columns`, in this
        order); every file of the log must have the same ones.
      chunk_rows: rows per chunk (a chunk may exceed it by one 1 MiB CSV block).

    Raises:
      DataValidationError: a missing column, an optional column some files lack, or a
        cell that does not parse.
    """
    chunk_rows = max(1, int(chunk_rows))
    first: Optional[Tuple[str, List[str]]] = None   # the first file and its optional columns
    for f in list_files(path):
        extra = [spec for spec in optional if spec.name in _file_columns(f)] if optional else []
        names = [spec.name for spec in extra]
        if first is None:
            first = (f, names)
        elif names != first[1]:
            odd = sorted(set(names) ^ set(first[1]))[0]
            raise DataValidationError(
                f"column {'missing' if odd in first[1] else 'present'} here but "
                f"{'present' if odd in first[1] else 'missing'} in {first[0]}: every file "
                "of a log must have the same optional columns", path=f, line=1, column=odd)
        schema = list(columns) + extra
        if _is_parquet(f):
            yield from _iter_parquet(f, schema, chunk_rows)
        else:
            yield from _iter_csv(f, schema, chunk_rows)


def _file_columns(path: str) -> List[str]:
    """The column names of a data file (its CSV header or Parquet schema)."""
    if not _is_parquet(path):
        return read_csv_header(path)
    try:
        return pq.ParquetFile(path).schema_arrow.names
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataValidationError(f"not a readable Parquet file ({exc})", path=path) from None
