"""A session log streamed from Parquet shards, for fits whose log does not fit in memory.

`SessionLog` holds a whole log as arrays, and a fit adds its padded copies: measured,
about 1.9 KB per session from Parquet shards and 9 KB reading CSV, some 300 GB or more
for MSSD's 160M sessions (issue #26; docs/user_model_scale.md).  A
`ShardedLog` holds only what a fit needs whole: the shard paths, the track catalogue and
the padded width.  Its sessions come by `chunks()`, one shard's chunk at a time, each a
small `SessionLog`; a model turns each into its training arrays with the same code as
the in-memory path (`SequentialUserModel.training_arrays`), so the two paths cannot
drift apart, and `batches()` makes a `tf.data` pipeline of them (unbatched, shuffled in a
bounded buffer, batched).  Memory is one chunk, the shuffle buffer and the catalogue,
whatever the log's size.

Each shard is validated on its own (a fresh duplicate-id check per shard): the readers'
whole-log check keeps a hash per session, 100 bytes each, which at MSSD's 160M sessions
would be 16 GB.  `python -m spotisim.data.shards` writes shards whose sessions never
straddle files, which is what makes a shard self-contained.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pyarrow.parquet as pq

from spotisim.data.catalog import CatalogBuilder, TrackCatalog
from spotisim.data.readers import list_files
from spotisim.data.session_log import SessionLog
from spotisim.data.sessions import iter_session_tables
from spotisim.errors import ConfigError, DataValidationError


def parquet_shards(path: str) -> List[str]:
    """The Parquet shards at `path` (directory, glob or file), sorted; a CSV among
    them is refused with the command that converts it."""
    files = list_files(path)  # raises on a path with no data files
    other = [f for f in files if not f.lower().endswith(".parquet")]
    if other:
        raise ConfigError(f"{other[0]}: a streamed fit reads Parquet shards; convert the "
                          f"log first (python -m spotisim.data.shards --input={path} "
                          "--output=<dir>)")
    return files


def _column_range(path: str, column: str) -> Tuple[Optional[int], Optional[int]]:
    """(smallest, largest) value of an integer column of a Parquet file, from the row
    groups' statistics when they are written (no data read), else from the column
    itself; (None, None) for a file without rows."""
    pf = pq.ParquetFile(path)
    j = pf.schema_arrow.get_field_index(column)
    if j < 0:
        raise DataValidationError("column missing", path=path, line=1, column=column)
    lows, highs = [], []
    for g in range(pf.metadata.num_row_groups):
        if pf.metadata.row_group(g).num_rows == 0:
            continue
        stats = pf.metadata.row_group(g).column(j).statistics
        if stats is None or not stats.has_min_max:
            values = pf.read_row_group(g, columns=[column]).column(0).to_numpy()
            lows.append(int(values.min()))
            highs.append(int(values.max()))
        else:
            lows.append(int(stats.min))
            highs.append(int(stats.max))
    return (min(lows), max(highs)) if lows else (None, None)


def held_out_shards(shards: Sequence[str], every: int, setting: str = "held_out_every",
                    purpose: str = "holding shards out") -> Tuple[List[str], List[str]]:
    """(kept, held out): every `every`-th shard is held out (at least one), the rule a
    streamed fit validates by and the main job on shards holds its evaluation by.
    `setting` and `purpose` name the caller's knob and use in the errors."""
    if len(shards) < 2:
        raise ConfigError(f"{purpose} needs at least 2 shards (found {len(shards)}): cut "
                          "the log into more (python -m spotisim.data.shards "
                          "--rows_per_shard)")
    if every < 2:
        raise ConfigError(f"{setting} must be at least 2, got {every}")
    held = list(shards[every - 1::every]) or [shards[-1]]
    return [s for s in shards if s not in held], held


def count_sessions(shards: Sequence[str]) -> int:
    """Sessions in Parquet shards (a read of their position column alone)."""
    n = 0
    for shard in shards:
        pos = pq.read_table(shard, columns=["session_position"]).column(0)
        n += int((pos.to_numpy() == 1).sum())
    return n


def shard_catalog(shards: Sequence[str], tracks_path: Optional[str] = None) -> TrackCatalog:
    """The track table's catalogue, or else every track the shards play, in order of
    first play (as the in-memory reader numbers them), from their `track_id_clean`
    column alone."""
    if tracks_path:
        return TrackCatalog.from_track_table(tracks_path)
    builder = CatalogBuilder()
    for shard in shards:
        for batch in pq.ParquetFile(shard).iter_batches(columns=["track_id_clean"]):
            builder.indices(batch.column(0).to_numpy(zero_copy_only=False))
    return TrackCatalog(builder.track_ids())


@dataclasses.dataclass
class ShardedLog:
    """A log as Parquet shards, read a chunk at a time.

    Attributes:
      shards: the shard paths, in the order their sessions are read.
      catalog: the track catalogue every chunk is indexed into (the same indices as
        `read_session_log` of the same shards gives).
      skip_column: the definition of "skipped" (see `SessionLog`).
      chunk_rows: rows read at once (bounds memory with the shuffle buffer).
      on_error: 'raise' or 'drop' (see `iter_session_tables`).
    """

    shards: List[str]
    catalog: TrackCatalog
    skip_column: str = "skip_2"
    chunk_rows: int = 100_000
    on_error: str = "raise"

    @classmethod
    def open(cls, path: str, catalog: Optional[TrackCatalog] = None,
             tracks_path: Optional[str] = None, **kwargs) -> "ShardedLog":
        """The shards at `path` (a directory, glob or file of Parquet shards).

        The catalogue is `catalog`, the track table at `tracks_path`, or else built by a
        pass over the shards' `track_id_clean` column alone (tracks in order of first
        play, as the in-memory reader numbers them)."""
        shards = parquet_shards(path)
        if catalog is None:
            catalog = shard_catalog(shards, tracks_path)
        return cls(shards, catalog, **kwargs)

    def part(self, shards: Sequence[str]) -> "ShardedLog":
        """The same log restricted to some of its shards (a worker's own), sharing the
        catalogue."""
        unknown = sorted(set(shards) - set(self.shards))
        if unknown:
            raise ConfigError(f"{unknown[0]} is not a shard of this log")
        return dataclasses.replace(self, shards=list(shards))

    @functools.cached_property
    def length_range(self) -> Tuple[int, int]:
        """(shortest, longest) session, from the shards' metadata; (0, 0) for a log
        without sessions."""
        ranges = [r for r in (_column_range(s, "session_length") for s in self.shards)
                  if r[0] is not None]
        if not ranges:
            return 0, 0
        return min(r[0] for r in ranges), max(r[1] for r in ranges)

    @property
    def max_length(self) -> int:
        """The longest session (the padded width)."""
        return self.length_range[1]

    @functools.cached_property
    def num_sessions(self) -> int:
        """Sessions in the shards (one read of the position column)."""
        return count_sessions(self.shards)

    def play_counts(self) -> np.ndarray:
        """int64 [T]: how often each catalogue track is played in the shards (one pass
        over their `track_id_clean` column; memory one counter per track)."""
        counts = np.zeros(len(self.catalog), np.int64)
        for shard in self.shards:
            for batch in pq.ParquetFile(shard).iter_batches(batch_size=self.chunk_rows,
                                                            columns=["track_id_clean"]):
                idx = self.catalog.indices(batch.column(0).to_numpy(zero_copy_only=False))
                if (idx < 0).any():
                    raise DataValidationError("a track is not in the catalogue", path=shard,
                                              column="track_id_clean")
                counts += np.bincount(idx, minlength=len(counts))
        return counts

    def session_lengths(self) -> Iterator[np.ndarray]:
        """Each shard's session lengths, int [S_shard] (a read of two columns)."""
        for shard in self.shards:
            t = pq.read_table(shard, columns=["session_position", "session_length"])
            yield t.column(1).to_numpy()[t.column(0).to_numpy() == 1]

    def chunks(self, order: Optional[Sequence[int]] = None) -> Iterator[SessionLog]:
        """The log's sessions as small `SessionLog`s, shard by shard (in `order` of the
        shards when given), each indexed into the catalogue."""
        for i in (range(len(self.shards)) if order is None else order):
            for chunk in iter_session_tables(self.shards[i], chunk_rows=self.chunk_rows,
                                             on_error=self.on_error):
                # A copy: each chunk's play counts are its own, the catalogue stays put.
                yield SessionLog.from_arrow_chunks([chunk], copy.copy(self.catalog),
                                                   self.skip_column, self.on_error)

    def head_chunks(self, max_sessions: int) -> Tuple[list, int]:
        """(chunks, sessions): the shards' chunks, in order, until they hold at least
        `max_sessions` sessions (the last may hold more), and how many they hold: the
        part of a large log an evaluation reads whole (`shard_dataset`)."""
        chunks, n = [], 0
        for i in range(len(self.shards)):
            for chunk in iter_session_tables(self.shards[i], chunk_rows=self.chunk_rows,
                                             on_error=self.on_error):
                chunks.append(chunk)
                n += int((chunk.table.column("session_position").to_numpy() == 1).sum())
                if n >= max_sessions:
                    return chunks, n
        return chunks, n

    def batches(self, features: Callable[[SessionLog], tuple], signature: tuple, *,
                batch_size: int, shuffle_buffer: int = 0, seed: int = 0,
                epoch: int = 0):
        """A `tf.data.Dataset` of training batches: `features(chunk)` (a tuple of
        arrays with one row per session, `signature` its `tf.TensorSpec`s with the
        batch dimension None) for each chunk, unbatched to sessions and batched again.

        With `shuffle_buffer` > 0 the shards are read in a seeded order per `epoch`
        and the sessions shuffled in a buffer of that many; with 0 they come in the
        log's order, the batches exactly the in-memory arrays cut in `batch_size`
        rows."""
        import tensorflow as tf
        order = None
        if shuffle_buffer:
            order = np.random.default_rng([seed, epoch]).permutation(len(self.shards))

        # A component with a zero-sized axis (a model's behaviour input when it reads
        # none) crashes tf.data's unbatch (a segfault in TF 2.15): it is left out of the
        # stream and put back after batching, sized like the first component.
        empty = [0 in (spec.shape.as_list() or [None]) for spec in signature]
        kept = tuple(spec for spec, e in zip(signature, empty) if not e)

        def generate():
            for log in self.chunks(order):
                arrays = features(log)
                yield tuple(a for a, e in zip(arrays, empty) if not e)

        def restore(*parts):
            parts, out = list(parts), []
            for spec, e in zip(signature, empty):
                if not e:
                    out.append(parts.pop(0))
                    continue
                like = tf.shape(out[0] if out else parts[0])
                dims = [like[i] if d is None else d for i, d in enumerate(spec.shape.as_list())]
                out.append(tf.zeros(tf.stack(dims), spec.dtype))
            return tuple(out)

        ds = tf.data.Dataset.from_generator(generate, output_signature=kept).unbatch()
        if shuffle_buffer:
            ds = ds.shuffle(shuffle_buffer, seed=int(seed) * 1000 + int(epoch))
        ds = ds.batch(batch_size)
        if any(empty):
            ds = ds.map(restore)
        return ds.prefetch(2)
