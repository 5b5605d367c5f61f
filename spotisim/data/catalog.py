"""`TrackCatalog`: the id <-> index map of every track a log mentions, with the optional
acoustic feature matrix of the MSSD track table and its normalisation.

Downstream code only ever sees integer track indices; the catalog is how they map back
to MSSD ids and features.
"""

from __future__ import annotations

import json
import os
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from spotisim.data import readers, validation
from spotisim.data.schema import (DIVERSITY_FEATURES, TRACK_COLUMNS,
                                  TRACK_FEATURE_COLUMNS)
from spotisim.errors import DataValidationError
from spotisim.io_utils import atomic_dir

# Numeric feature columns plus 'mode' encoded as 1.0 = major.
FEATURE_NAMES: Tuple[str, ...] = TRACK_FEATURE_COLUMNS + ("mode_major",)


def feature_matrix(table: pa.Table) -> np.ndarray:
    """float32 [rows, len(FEATURE_NAMES)] from an MSSD track table."""
    cols = [table.column(c).to_numpy(zero_copy_only=False).astype(np.float32)
            for c in TRACK_FEATURE_COLUMNS]
    mode = table.column("mode").to_numpy(zero_copy_only=False) == "major"
    cols.append(mode.astype(np.float32))
    return np.stack(cols, axis=1)


class TrackCatalog:
    """Track ids, their dense indices, optional features and play counts.

    Args:
      track_ids: unique track ids; index i of this array is track index i.
      features: optional float32 [T, F] raw feature matrix (columns `feature_names`).
      feature_names: names of the feature columns.
      play_counts: optional int64 [T], how often each track was played in the log.
    """

    def __init__(self, track_ids: Sequence[str], features: Optional[np.ndarray] = None,
                 feature_names: Sequence[str] = FEATURE_NAMES,
                 play_counts: Optional[np.ndarray] = None):
        self.track_ids = np.asarray(track_ids, dtype=object)
        self._index = pd.Index(self.track_ids)
        if not self._index.is_unique:
            dup = self._index[self._index.duplicated()][0]
            raise DataValidationError(f"duplicate track id {dup!r} in the catalog",
                                      column="track_id")
        if features is not None:
            features = np.asarray(features, dtype=np.float32)
            if features.shape != (len(self.track_ids), len(feature_names)):
                raise ValueError(f"features shape {features.shape} does not match "
                                 f"{len(self.track_ids)} tracks x {len(feature_names)} names")
        self.features = features
        self.feature_names = tuple(feature_names)
        self.play_counts = (np.zeros(len(self.track_ids), np.int64) if play_counts is None
                            else np.asarray(play_counts, np.int64))

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.track_ids)

    @property
    def has_features(self) -> bool:
        return self.features is not None

    def indices(self, ids: Iterable[str]) -> np.ndarray:
        """Track indices of `ids`; -1 where an id is unknown."""
        return self._index.get_indexer(pd.Index(np.asarray(ids, dtype=object))).astype(np.int64)

    def chunk_indices(self, chunk: "readers.Chunk") -> np.ndarray:
        """Track indices of a log chunk's `track_id_clean`; every id must be known.

        Raises:
          DataValidationError: naming the line of the first id missing from the table.
        """
        ids = chunk.table.column("track_id_clean").to_numpy(zero_copy_only=False)
        idx = self.indices(ids)
        if (idx < 0).any():
            i = int(np.argmax(idx < 0))
            raise DataValidationError(f"track id {ids[i]!r} is not in the track table",
                                      path=chunk.path, line=chunk.line_of(i),
                                      column="track_id_clean")
        return idx

    def feature(self, name: str) -> np.ndarray:
        if self.features is None:
            raise DataValidationError("this catalog has no track features (no track table "
                                      "was given)")
        return self.features[:, self.feature_names.index(name)]

    def normalized_features(self) -> np.ndarray:
        """Features z-scored per column (constant columns become 0)."""
        if self.features is None:
            raise DataValidationError("this catalog has no track features (no track table "
                                      "was given)")
        mean = self.features.mean(axis=0)
        std = self.features.std(axis=0)
        std[std < 1e-8] = 1.0
        return ((self.features - mean) / std).astype(np.float32)

    def diversity_features(self) -> np.ndarray:
        """[T, 8] the eight acoustic features the LIRD diversity metric compares."""
        return np.stack([self.feature(n) for n in DIVERSITY_FEATURES], axis=1)

    def popularity(self) -> np.ndarray:
        """Play share per track in the log it was built from (sums to 1 when non-empty)."""
        total = self.play_counts.sum()
        if total == 0:
            return np.full(len(self), 1.0 / max(len(self), 1))
        return self.play_counts / total

    # ------------------------------------------------------------------ reading
    @classmethod
    def from_track_table(cls, path: str, *, chunk_rows: int = 100_000) -> "TrackCatalog":
        """Reads and validates an MSSD track-features table (file, glob or directory).

        Raises:
          DataValidationError: a missing column, bad cell or duplicate track id,
            naming file, line and column.
        """
        ids, feats = [], []
        seen: Dict[str, Tuple[str, int]] = {}
        for chunk in readers.iter_chunks(path, TRACK_COLUMNS, chunk_rows=chunk_rows):
            problems = validation.cell_problems(chunk, TRACK_COLUMNS)
            if problems:
                problem, values = problems[0]
                raise problem.first_error(chunk, values)
            t = chunk.table
            chunk_ids = t.column("track_id").to_numpy(zero_copy_only=False)
            for i, tid in enumerate(chunk_ids):
                if tid in seen:
                    raise DataValidationError(
                        f"duplicate track id {tid!r} (first at {seen[tid][0]} line "
                        f"{seen[tid][1]})", path=chunk.path, line=chunk.line_of(i),
                        column="track_id")
                seen[tid] = (chunk.path, chunk.line_of(i))
            ids.append(chunk_ids)
            feats.append(feature_matrix(t))
        return cls(np.concatenate(ids), np.concatenate(feats), FEATURE_NAMES)

    @classmethod
    def from_track_arrow(cls, table: pa.Table) -> "TrackCatalog":
        """A catalog from an in-memory MSSD track table (e.g. a synthetic world's)."""
        return cls(table.column("track_id").to_numpy(zero_copy_only=False),
                   feature_matrix(table), FEATURE_NAMES)

    # ------------------------------------------------------------------ persistence
    def to_table(self) -> pa.Table:
        cols = {"track_id": pa.array(self.track_ids.tolist(), pa.string()),
                "play_count": pa.array(self.play_counts)}
        if self.features is not None:
            for j, name in enumerate(self.feature_names):
                cols[name] = pa.array(self.features[:, j])
        return pa.table(cols)

    @classmethod
    def from_arrow(cls, table: pa.Table, has_features: bool,
                   feature_names: Sequence[str]) -> "TrackCatalog":
        ids = table.column("track_id").to_numpy(zero_copy_only=False)
        feats = None
        if has_features:
            feats = np.stack([table.column(n).to_numpy() for n in feature_names], axis=1)
        return cls(ids, feats, feature_names,
                   table.column("play_count").to_numpy())

    def save(self, directory: str) -> None:
        """Writes catalog.parquet + catalog.json into `directory` (atomically)."""
        with atomic_dir(directory) as tmp:
            self.write_into(tmp)

    def write_into(self, directory: str) -> None:
        pq.write_table(self.to_table(), os.path.join(directory, "catalog.parquet"))
        with open(os.path.join(directory, "catalog.json"), "w") as f:
            json.dump({"has_features": self.has_features,
                       "feature_names": list(self.feature_names)}, f)

    @classmethod
    def load(cls, directory: str) -> "TrackCatalog":
        with open(os.path.join(directory, "catalog.json")) as f:
            meta = json.load(f)
        table = pq.read_table(os.path.join(directory, "catalog.parquet"))
        return cls.from_arrow(table, meta["has_features"], meta["feature_names"])


class CatalogBuilder:
    """Grows a catalog while a log streams by, when there is no track table."""

    def __init__(self):
        self._ids: Dict[str, int] = {}

    def indices(self, ids: np.ndarray) -> np.ndarray:
        codes, uniques = pd.factorize(ids)
        table = self._ids
        mapped = np.empty(len(uniques), dtype=np.int64)
        for j, tid in enumerate(uniques):
            idx = table.get(tid)
            if idx is None:
                idx = table[tid] = len(table)
            mapped[j] = idx
        return mapped[codes]

    def track_ids(self) -> np.ndarray:
        return np.array(list(self._ids.keys()), dtype=object)
