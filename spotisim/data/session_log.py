"""`SessionLog`: a validated listening log held as flat numpy arrays (CSR layout: one
row per play, `offsets` marking where each session starts), plus its `TrackCatalog`.

This is what user models, episode samplers and evaluation read.  It can be saved as
Parquet and loaded again, so a large CSV log is parsed and validated only once.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from spotisim.data.catalog import CatalogBuilder, TrackCatalog
from spotisim.data.schema import (CONTEXT_TYPES, LISTENER_COLUMN, OPTIONAL_SESSION_LOG_COLUMNS,
                                  REASONS_END, REASONS_START, SESSION_LOG_COLUMNS,
                                  SESSION_LOG_SCHEMA, SKIP_COLUMNS)
from spotisim.data.sessions import iter_session_tables
from spotisim.data.validation import DropReport
from spotisim.errors import ConfigError, DataValidationError
from spotisim.io_utils import atomic_dir

FORMAT_VERSION = 1

# Per-row columns kept as arrays (the ids, position and length are derived).
BOOL_COLUMNS = ("skip_1", "skip_2", "skip_3", "not_skipped",
                "hist_user_behavior_is_shuffle", "premium")
INT_COLUMNS = ("context_switch", "no_pause_before_play", "short_pause_before_play",
               "long_pause_before_play", "hist_user_behavior_n_seekfwd",
               "hist_user_behavior_n_seekback", "hour_of_day")
CODED_COLUMNS = ("context_type", "hist_user_behavior_reason_start",
                 "hist_user_behavior_reason_end")
ROW_COLUMNS = BOOL_COLUMNS + INT_COLUMNS + CODED_COLUMNS + ("date",)
# Beyond MSSD, kept where the log has them (`schema.OPTIONAL_SESSION_LOG_COLUMNS`).
OPTIONAL_FLOAT_COLUMNS = tuple(c.name for c in OPTIONAL_SESSION_LOG_COLUMNS
                               if c.kind == "float")
# The listener id is kept as codes into vocab[LISTENER_COLUMN], like the coded columns.
OPTIONAL_COLUMNS = OPTIONAL_FLOAT_COLUMNS + (LISTENER_COLUMN,)
_EPOCH = np.datetime64("1970-01-01", "D")


def _default_vocab() -> Dict[str, list]:
    return {"context_type": list(CONTEXT_TYPES),
            "hist_user_behavior_reason_start": list(REASONS_START),
            "hist_user_behavior_reason_end": list(REASONS_END)}


def _encode(values: np.ndarray, vocab: list, dtype=np.int16,
            lookup: Optional[dict] = None) -> np.ndarray:
    """Integer codes of `values` in `vocab`, appending unseen values to `vocab` (and to
    `lookup`, the value -> code index of `vocab`, when given: kept across chunks for a
    vocabulary as large as the listeners)."""
    codes, uniques = pd.factorize(values)
    if lookup is None:
        lookup = {v: i for i, v in enumerate(vocab)}
    mapped = np.empty(len(uniques), dtype=dtype)
    for j, v in enumerate(uniques):
        if v not in lookup:
            lookup[v] = len(vocab)
            vocab.append(v)
        mapped[j] = lookup[v]
    return mapped[codes]


class SessionLog:
    """Sessions as arrays.

    Attributes:
      session_ids: object [S] MSSD session ids.
      offsets: int64 [S + 1]; session s covers rows offsets[s]:offsets[s + 1].
      tracks: int32 [R] catalog index of each played track.
      columns: per-row arrays of the other MSSD columns (bool, small ints, category
        codes into `vocab`, `date` as days since 1970-01-01), and of the optional
        columns the log has (`logging_propensity`: float64; `listener_id`: int32 codes
        into vocab['listener_id']).
      vocab: column -> list of category names, for the coded columns.
      catalog: the `TrackCatalog` the track indices point into.
      skip_column: which flag defines "skipped" (default skip_2, as the MSSD challenge).
    """

    #: What reading the log found (`DropReport`: drops and quirks kept); None for a log
    #: built otherwise (loaded, subset).
    read_report: Optional[DropReport] = None

    def __init__(self, session_ids: np.ndarray, offsets: np.ndarray, tracks: np.ndarray,
                 columns: Dict[str, np.ndarray], vocab: Dict[str, list],
                 catalog: TrackCatalog, skip_column: str = "skip_2"):
        if skip_column not in SKIP_COLUMNS:
            raise ConfigError(f"skip_column must be one of {SKIP_COLUMNS}, got {skip_column!r}")
        self.session_ids = np.asarray(session_ids, dtype=object)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.tracks = np.asarray(tracks, dtype=np.int32)
        self.columns = columns
        self.vocab = vocab
        self.catalog = catalog
        self.skip_column = skip_column
        if len(self.offsets) != len(self.session_ids) + 1 or self.offsets[-1] != len(self.tracks):
            raise ValueError("offsets do not match session ids and rows")

    # ------------------------------------------------------------------ shape
    @property
    def num_sessions(self) -> int:
        return len(self.session_ids)

    @property
    def num_rows(self) -> int:
        return len(self.tracks)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def positions(self) -> np.ndarray:
        """1-based position of every row within its session."""
        starts = np.repeat(self.offsets[:-1], self.lengths)
        return (np.arange(self.num_rows) - starts + 1).astype(np.int32)

    @property
    def session_of_row(self) -> np.ndarray:
        return np.repeat(np.arange(self.num_sessions), self.lengths)

    @property
    def skipped(self) -> np.ndarray:
        """bool [R]: skipped under the chosen definition (`skip_column`)."""
        if self.skip_column == "not_skipped":
            return ~self.columns["not_skipped"]
        return self.columns[self.skip_column]

    @property
    def skip_rate(self) -> float:
        return float(self.skipped.mean()) if self.num_rows else float("nan")

    def session_context(self) -> np.ndarray:
        """int [S]: context_type code of each session (its first row's)."""
        return self.columns["context_type"][self.offsets[:-1]]

    def session_tracks(self, s: int) -> np.ndarray:
        return self.tracks[self.offsets[s]:self.offsets[s + 1]]

    def session_skips(self, s: int) -> np.ndarray:
        return self.skipped[self.offsets[s]:self.offsets[s + 1]]

    def padded(self, max_len: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Dense [S, L] views: (tracks, skipped, mask); padding has track -1."""
        L = int(max_len or (self.lengths.max() if self.num_sessions else 0))
        tracks = np.full((self.num_sessions, L), -1, np.int32)
        skipped = np.zeros((self.num_sessions, L), bool)
        pos = self.positions - 1
        keep = pos < L
        rows = self.session_of_row[keep]
        tracks[rows, pos[keep]] = self.tracks[keep]
        skipped[rows, pos[keep]] = self.skipped[keep]
        return tracks, skipped, tracks >= 0

    def content_digest(self) -> str:
        """A SHA-256 over everything a model could learn from: the session ids, the
        session boundaries, the catalogue's track ids and each row's track, every column
        and the skip definition (what a cache of fitted models is keyed by).  Computed once per log (the arrays are
        hashed as bytes: about 50 ms per million rows)."""
        if getattr(self, "_digest", None) is None:
            import hashlib
            h = hashlib.sha256()
            h.update("\x1f".join(map(str, self.session_ids)).encode())
            h.update(np.ascontiguousarray(self.offsets).tobytes())
            h.update("\x1f".join(map(str, self.catalog.track_ids)).encode())  # what indices mean
            h.update(np.ascontiguousarray(self.tracks).tobytes())
            h.update(self.skip_column.encode())
            for name in sorted(self.columns):
                col = self.columns[name]
                h.update(name.encode())
                h.update(np.ascontiguousarray(col).tobytes() if col.dtype != object
                         else "\x1f".join(map(str, col)).encode())
            self._digest = h.hexdigest()
        return self._digest

    # ------------------------------------------------------------------ subsets
    def subset(self, sessions: Sequence[int]) -> "SessionLog":
        """A new log with the given sessions (in that order), sharing the catalog."""
        sessions = np.asarray(sessions, dtype=np.int64)
        lengths = self.lengths[sessions]
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        starts = self.offsets[sessions]
        rows = (np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])).astype(np.int64)
        return SessionLog(self.session_ids[sessions], offsets, self.tracks[rows],
                          {k: v[rows] for k, v in self.columns.items()},
                          self.vocab, self.catalog, self.skip_column)

    def split(self, fractions: Tuple[float, float, float] = (0.8, 0.1, 0.1), *,
              seed: int = 0, new_listeners: float = 0.1
              ) -> Tuple["SessionLog", "SessionLog", "SessionLog"]:
        """Train / validation / test split by session (no session is cut in two).

        Without listener ids, sessions are assigned by a seeded permutation; the same
        seed gives the same split.

        With listener ids, the split follows time (`time_order`): the earliest sessions
        train, the next validate, the latest test, so no model trains on a session later
        than one it is scored on, and each listener's sessions keep their order.  A
        seeded share `new_listeners` of the listeners seen in the test period are kept
        out of training and validation altogether: their earlier sessions are in no
        split, so they reach the test split as new listeners (as they would in
        production).  The time cuts fall at `fractions` of all sessions; training and
        validation lose the sessions left out.  Each split lists its sessions in time
        order.
        """
        fr = np.asarray(fractions, dtype=np.float64)
        if fr.shape != (3,) or (fr < 0).any() or abs(fr.sum() - 1.0) > 1e-6:
            raise ConfigError(f"split fractions must be three non-negative numbers summing "
                              f"to 1, got {fractions}")
        if not 0.0 <= new_listeners < 1.0:
            raise ConfigError(f"split: new_listeners must be in [0, 1), got {new_listeners}")
        n_train = int(round(fr[0] * self.num_sessions))
        n_val = int(round(fr[1] * self.num_sessions))
        if not self.has_listeners:
            perm = np.random.default_rng(seed).permutation(self.num_sessions)
            parts = (perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:])
            return tuple(self.subset(np.sort(p)) for p in parts)  # type: ignore[return-value]
        order = self.time_order()
        who = self.session_listeners[order]
        test_period = np.unique(who[n_train + n_val:])
        rng = np.random.default_rng(seed)
        held = rng.permutation(test_period)[:int(round(new_listeners * len(test_period)))]
        keep = ~np.isin(who, held)
        keep[n_train + n_val:] = True       # their test-period sessions stay in test
        cuts = (slice(0, n_train), slice(n_train, n_train + n_val),
                slice(n_train + n_val, None))
        return tuple(self.subset(order[c][keep[c]]) for c in cuts)  # type: ignore[return-value]

    def with_skip_column(self, skip_column: str) -> "SessionLog":
        return SessionLog(self.session_ids, self.offsets, self.tracks, self.columns,
                          self.vocab, self.catalog, skip_column)

    # ------------------------------------------------------------------ MSSD export
    def to_arrow(self) -> pa.Table:
        """The log as a table in the exact MSSD session-log schema (then its optional
        columns)."""
        cols = {
            "session_id": pa.array(np.repeat(self.session_ids, self.lengths).tolist(),
                                   pa.string()),
            "session_position": pa.array(self.positions.astype(np.int64)),
            "session_length": pa.array(np.repeat(self.lengths, self.lengths).astype(np.int64)),
            "track_id_clean": pa.array(self.catalog.track_ids[self.tracks].tolist(),
                                       pa.string()),
        }
        for c in BOOL_COLUMNS:
            cols[c] = pa.array(self.columns[c])
        for c in INT_COLUMNS:
            cols[c] = pa.array(self.columns[c].astype(np.int64))
        for c in CODED_COLUMNS:
            names = np.asarray(self.vocab[c], dtype=object)
            cols[c] = pa.array(names[self.columns[c]].tolist(), pa.string())
        cols["date"] = pa.array((self.columns["date"].astype("timedelta64[D]") + _EPOCH))
        table = pa.table([cols[c.name] for c in SESSION_LOG_COLUMNS], schema=SESSION_LOG_SCHEMA)
        for name in self.optional_columns:
            values = self.columns[name]
            if name == LISTENER_COLUMN:
                values = np.asarray(self.vocab[name], dtype=object)[values].tolist()
                table = table.append_column(name, pa.array(values, pa.string()))
            else:
                table = table.append_column(name, pa.array(values))
        return table

    @property
    def optional_columns(self) -> Tuple[str, ...]:
        """The optional columns beyond MSSD's this log has (schema order)."""
        return tuple(c for c in OPTIONAL_COLUMNS if c in self.columns)

    # ------------------------------------------------------------------ listeners and time
    @property
    def has_listeners(self) -> bool:
        """Whether the log says who listened (a listener_id column)."""
        return LISTENER_COLUMN in self.columns

    @property
    def session_listeners(self) -> np.ndarray:
        """int [S]: each session's listener, as a code into vocab['listener_id']; in a
        log without listener ids each session is its own anonymous listener, coded
        -1 - s (never equal to another session's)."""
        if not self.has_listeners:
            return -1 - np.arange(self.num_sessions, dtype=np.int64)
        return self.columns[LISTENER_COLUMN][self.offsets[:-1]].astype(np.int64)

    @property
    def num_listeners(self) -> int:
        """Distinct listeners of the log (sessions, in a log without ids)."""
        return len(np.unique(self.session_listeners))

    def time_order(self) -> np.ndarray:
        """int [S]: the sessions in time order, as MSSD's columns give it: by date, then
        hour of day (of each session's first row), then session id."""
        first = self.offsets[:-1]
        ids = pd.factorize(self.session_ids, sort=True)[0]  # rank of the id as a string
        return np.lexsort((ids, self.columns["hour_of_day"][first],
                           self.columns["date"][first])).astype(np.int64)

    # ------------------------------------------------------------------ processed format
    def save(self, directory: str) -> None:
        """Writes the processed log (Parquet + JSON) atomically into `directory`."""
        with atomic_dir(directory) as tmp:
            rows = {"track": self.tracks}
            rows.update(self.columns)
            pq.write_table(pa.table({k: pa.array(v) for k, v in rows.items()}),
                           os.path.join(tmp, "rows.parquet"))
            pq.write_table(pa.table({"session_id": pa.array(self.session_ids.tolist(), pa.string()),
                                     "length": pa.array(self.lengths)}),
                           os.path.join(tmp, "sessions.parquet"))
            self.catalog.write_into(tmp)
            with open(os.path.join(tmp, "session_log.json"), "w") as f:
                json.dump({"format_version": FORMAT_VERSION, "vocab": self.vocab,
                           "skip_column": self.skip_column}, f)

    @classmethod
    def load(cls, directory: str) -> "SessionLog":
        meta_path = os.path.join(directory, "session_log.json")
        if not os.path.exists(meta_path):
            raise DataValidationError("not a processed session log (session_log.json "
                                      "missing); write one with SessionLog.save", path=directory)
        with open(meta_path) as f:
            meta = json.load(f)
        if meta.get("format_version") != FORMAT_VERSION:
            raise DataValidationError(f"processed log format {meta.get('format_version')} "
                                      f"is not {FORMAT_VERSION}; re-run the import",
                                      path=directory)
        rows = pq.read_table(os.path.join(directory, "rows.parquet"))
        sess = pq.read_table(os.path.join(directory, "sessions.parquet"))
        lengths = sess.column("length").to_numpy()
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        columns = {c: rows.column(c).to_numpy(zero_copy_only=False)
                   for c in ROW_COLUMNS + OPTIONAL_COLUMNS if c in rows.column_names}
        return cls(sess.column("session_id").to_numpy(zero_copy_only=False), offsets,
                   rows.column("track").to_numpy(), columns, meta["vocab"],
                   TrackCatalog.load(directory), meta["skip_column"])

    # ------------------------------------------------------------------ reading
    @classmethod
    def from_arrow_chunks(cls, chunks, catalog: Optional[TrackCatalog] = None,
                          skip_column: str = "skip_2", on_error: str = "raise",
                          report: Optional[DropReport] = None) -> "SessionLog":
        """Builds a log from an iterable of `Chunk`s of complete, validated sessions,
        each id once (as `iter_session_tables` yields them)."""
        builder = None if catalog is not None else CatalogBuilder()
        vocab = _default_vocab()
        ids, lengths, tracks = [], [], []
        cols: Dict[str, list] = {c: [] for c in ROW_COLUMNS}
        listener_lookup: dict = {}
        for chunk in chunks:
            t = chunk.table
            sid = t.column("session_id").to_numpy(zero_copy_only=False)
            pos = t.column("session_position").to_numpy()
            starts = np.nonzero(pos == 1)[0]
            if builder is not None:
                idx = builder.indices(t.column("track_id_clean").to_numpy(zero_copy_only=False))
            else:
                idx = catalog.chunk_indices(chunk)
            ids.append(sid[starts])
            lengths.append(np.diff(np.append(starts, len(pos))))
            tracks.append(idx.astype(np.int32))
            for c in BOOL_COLUMNS:
                cols[c].append(t.column(c).to_numpy(zero_copy_only=False).astype(bool))
            for c in INT_COLUMNS:
                cols[c].append(t.column(c).to_numpy().astype(np.int32))
            for c in CODED_COLUMNS:
                cols[c].append(_encode(t.column(c).to_numpy(zero_copy_only=False), vocab[c]))
            cols["date"].append(t.column("date").cast(pa.int32()).to_numpy())
            for c in OPTIONAL_FLOAT_COLUMNS:
                if c in t.column_names:
                    cols.setdefault(c, []).append(t.column(c).to_numpy().astype(np.float64))
            if LISTENER_COLUMN in t.column_names:
                cols.setdefault(LISTENER_COLUMN, []).append(_encode(
                    t.column(LISTENER_COLUMN).to_numpy(zero_copy_only=False),
                    vocab.setdefault(LISTENER_COLUMN, []), np.int32, listener_lookup))
        cat_rows = np.concatenate(tracks) if tracks else np.zeros(0, np.int32)
        if builder is not None:
            catalog = TrackCatalog(builder.track_ids())
        catalog.play_counts = np.bincount(cat_rows, minlength=len(catalog)).astype(np.int64)
        lengths_all = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths_all)]).astype(np.int64)
        columns = {c: (np.concatenate(v) if v else np.zeros(0)) for c, v in cols.items()}
        return cls(np.concatenate(ids) if ids else np.zeros(0, object), offsets, cat_rows,
                   columns, vocab, catalog, skip_column)


def read_session_log(log_path: str, tracks_path: Optional[str] = None, *,
                     skip_column: str = "skip_2", on_error: str = "raise",
                     chunk_rows: int = 100_000,
                     report: Optional[DropReport] = None,
                     catalog: Optional[TrackCatalog] = None) -> SessionLog:
    """Reads, validates and indexes an MSSD session log (and optional track table).

    Args:
      log_path: file, glob or directory of session-log CSV / CSV.gz / Parquet shards, or a
        directory written by `SessionLog.save` (detected by its session_log.json).
      tracks_path: optional MSSD track-features table; every logged track must be in it.
      skip_column: the definition of "skipped" (skip_1, skip_2, skip_3 or not_skipped,
        the latter meaning "not not_skipped").
      on_error: 'raise' or 'drop' (see `iter_session_tables`).
      chunk_rows: rows read at once.
      report: filled with what 'drop' removed.
      catalog: index the tracks into this catalogue (another log's, so that two logs
        share track indices; every logged track must be in it); exclusive with
        `tracks_path`.  The log gets a copy with its own play counts.

    Raises:
      DataValidationError: naming file, line and column of the first problem (a missing
        column, an unparseable or out-of-range cell, a blank id or one with a control
        character, a duplicate session id, a broken file), or an empty log.  Quirks
        real MSSD contains (skip flags that do not nest) are kept and counted in
        `report` / `log.read_report`, not raised.
    """
    if os.path.isdir(log_path) and os.path.exists(os.path.join(log_path, "session_log.json")):
        return SessionLog.load(log_path).with_skip_column(skip_column)
    if catalog is not None and tracks_path:
        raise ConfigError("read_session_log: give tracks_path or catalog, not both")
    if catalog is not None:
        catalog = copy.copy(catalog)  # its play counts become this log's
    elif tracks_path:
        catalog = TrackCatalog.from_track_table(tracks_path)
    report = report if report is not None else DropReport()
    chunks = iter_session_tables(log_path, chunk_rows=chunk_rows, on_error=on_error,
                                 report=report)
    log = SessionLog.from_arrow_chunks(chunks, catalog, skip_column, on_error, report)
    log.read_report = report  # what was dropped, and the quirks kept
    if log.num_rows == 0:
        why = ("every session was dropped as invalid" if report.total_sessions
               else "no rows (a header-only file?)")
        raise DataValidationError(f"the session log is empty: {why}", path=log_path)
    return log
