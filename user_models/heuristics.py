"""Heuristic user models: the yardsticks every learned model's report is read against.

* `RepeatLastLabelUserModel` is the MSSD challenge's known heuristic: a track is skipped
  iff the previous track of the session was.  A learned model that cannot beat it has
  learned the session's momentum and nothing about the tracks.
* `PositionPriorUserModel`: P(listen) by position in the session, nothing else.
* `TrackPopularityUserModel`: P(listen) by how often the track was played in the
  training split (binned on log play count), nothing about the listener.

Each is fitted on the train split only and saves to a small JSON file, so it reloads
through `load_user_model` like any learned model.  They are registered, so
`user_models.train` and `user_models.evaluate` report them by name.
"""

from __future__ import annotations

import json
import os
from typing import Optional

import numpy as np

from spotisim.data.session_log import SessionLog
from spotisim.errors import UserModelError
from spotisim.io_utils import atomic_dir
from user_models.base import AbstractUserModel, History, read_model_meta
from user_models.catalog_alignment import read_track_ids, write_track_ids
from user_models.registry import register_user_model


def _write(directory: str, cls_name: str, state: dict, track_ids=None) -> None:
    with atomic_dir(directory) as tmp:
        with open(os.path.join(tmp, "user_model.json"), "w") as f:
            json.dump({"class": cls_name, "state": state}, f, indent=1)
        if track_ids is not None:
            write_track_ids(tmp, track_ids)


def _smoothed_rate(listens: np.ndarray, plays: np.ndarray, prior: float,
                   strength: float = 5.0) -> np.ndarray:
    """(listens + strength * prior) / (plays + strength): rates of rare cells shrink
    towards the overall rate instead of jumping to 0 or 1."""
    return (listens + strength * prior) / (plays + strength)


class _Heuristic(AbstractUserModel):
    """Shared plumbing: constructed like learned models (`embeddings` accepted and
    ignored, as `user_models.train` passes it to every model)."""

    def __init__(self, embeddings: Optional[np.ndarray] = None):
        del embeddings
        self.listen_rate = 0.5

    def save(self, directory: str) -> None:
        _write(directory, type(self).__name__, self.state(), self.track_ids)

    @classmethod
    def load(cls, directory: str):
        meta = read_model_meta(directory, cls.__name__)
        model = cls()
        model.set_state(meta["state"])
        model.track_ids = read_track_ids(directory)
        return model

    def state(self) -> dict:
        return {"listen_rate": self.listen_rate}

    def set_state(self, state: dict) -> None:
        self.listen_rate = float(state["listen_rate"])


@register_user_model("repeat_last_label")
class RepeatLastLabelUserModel(_Heuristic):
    """P(listen) = the train split's P(listen | the previous track was listened) or
    P(listen | it was skipped); before any track, the train split's first-track rate.

    Its decisions (P >= 0.5) are MSSD's "repeat the last label" heuristic exactly when
    P(listen | listened before) >= 0.5 > P(listen | skipped before), which holds on every
    log we have (`is_pure_heuristic` says so, and the report records it)."""

    cascades = True
    catalog_free = True

    def __init__(self, embeddings: Optional[np.ndarray] = None):
        super().__init__(embeddings)
        self.after_listen, self.after_skip, self.first = 0.99, 0.01, 0.5

    @property
    def is_pure_heuristic(self) -> bool:
        return self.after_listen >= 0.5 > self.after_skip

    def fit(self, train_log: SessionLog, val_log: SessionLog = None, verbose: bool = False):
        if train_log.num_rows == 0:
            raise UserModelError("repeat_last_label: the training log is empty")
        listened = ~train_log.skipped
        first = train_log.positions == 1
        prev = np.concatenate([[False], listened[:-1]])
        later = ~first
        self.listen_rate = float(listened.mean())
        self.first = float(_smoothed_rate(listened[first].sum(), first.sum(), self.listen_rate))
        self.after_listen = float(_smoothed_rate(listened[later & prev].sum(),
                                                 (later & prev).sum(), self.listen_rate))
        self.after_skip = float(_smoothed_rate(listened[later & ~prev].sum(),
                                               (later & ~prev).sum(), self.listen_rate))
        return self

    def _predict(self, history: History, slate, slate_responses):
        B, K = np.shape(slate)
        out = np.empty((B, K))
        n = history.length.astype(np.int64)
        last = np.where(n > 0, history.responses[np.arange(B), np.maximum(n - 1, 0)]
                        if history.tracks.shape[1] else 0.0, np.nan)
        for k in range(K):
            out[:, k] = np.where(np.isnan(last), self.first,
                                 np.where(last > 0.5, self.after_listen, self.after_skip))
            if slate_responses is not None:
                last = np.asarray(slate_responses[:, k], np.float64)
            else:
                last = (out[:, k] >= 0.5).astype(np.float64)
        return out

    def predict_sessions(self, log: SessionLog) -> np.ndarray:
        listened = ~log.skipped
        prev = np.concatenate([[False], listened[:-1]])
        return np.where(log.positions == 1, self.first,
                        np.where(prev, self.after_listen, self.after_skip))

    def state(self) -> dict:
        return dict(super().state(), after_listen=self.after_listen,
                    after_skip=self.after_skip, first=self.first)

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.after_listen = float(state["after_listen"])
        self.after_skip = float(state["after_skip"])
        self.first = float(state["first"])


@register_user_model("position_prior")
class PositionPriorUserModel(_Heuristic):
    """P(listen) by position in the session (positions past the longest trained one use
    the last); it knows neither the track nor the listener."""

    cascades = False
    catalog_free = True

    def __init__(self, embeddings: Optional[np.ndarray] = None):
        super().__init__(embeddings)
        self.by_position = np.full(1, 0.5)

    def fit(self, train_log: SessionLog, val_log: SessionLog = None, verbose: bool = False):
        if train_log.num_rows == 0:
            raise UserModelError("position_prior: the training log is empty")
        listened = ~train_log.skipped
        pos = train_log.positions
        self.listen_rate = float(listened.mean())
        plays = np.bincount(pos - 1)
        listens = np.bincount(pos - 1, weights=listened)
        self.by_position = _smoothed_rate(listens, plays, self.listen_rate)
        return self

    def _rates(self, positions: np.ndarray) -> np.ndarray:
        return self.by_position[np.clip(positions - 1, 0, len(self.by_position) - 1)]

    def _predict(self, history: History, slate, slate_responses):
        K = np.shape(slate)[1]
        return self._rates(history.length[:, None].astype(np.int64) + 1 + np.arange(K)[None, :])

    def predict_sessions(self, log: SessionLog) -> np.ndarray:
        return self._rates(log.positions.astype(np.int64))

    def state(self) -> dict:
        return dict(super().state(), by_position=self.by_position.tolist())

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.by_position = np.asarray(state["by_position"], np.float64)


@register_user_model("track_popularity")
class TrackPopularityUserModel(_Heuristic):
    """P(listen) by the track's play count in the training split, in bins of
    log2(1 + count); a track never played there falls in bin 0 (count 0).  Play counts
    come from the train split's rows only (never from validation or test plays)."""

    cascades = False
    num_bins = 12

    def __init__(self, embeddings: Optional[np.ndarray] = None):
        super().__init__(embeddings)
        self.play_counts = np.zeros(0, np.int64)
        self.by_bin = np.full(self.num_bins, 0.5)

    def _bins(self, tracks: np.ndarray) -> np.ndarray:
        tracks = np.asarray(tracks, np.int64)
        known = (tracks >= 0) & (tracks < len(self.play_counts))
        counts = np.where(known, self.play_counts[np.where(known, tracks, 0)], 0)
        return np.minimum(np.log2(1 + counts).astype(np.int64), self.num_bins - 1)

    def fit(self, train_log: SessionLog, val_log: SessionLog = None, verbose: bool = False):
        if train_log.num_rows == 0:
            raise UserModelError("track_popularity: the training log is empty")
        listened = ~train_log.skipped
        self.listen_rate = float(listened.mean())
        self.play_counts = np.bincount(train_log.tracks, minlength=len(train_log.catalog))
        self.track_ids = train_log.catalog.track_ids
        # Each play is scored with its track's count *excluding itself*, so a track
        # played once trains bin 0, as an unseen track is scored.
        counts = self.play_counts[train_log.tracks] - 1
        bins = np.minimum(np.log2(1 + counts).astype(np.int64), self.num_bins - 1)
        plays = np.bincount(bins, minlength=self.num_bins)
        listens = np.bincount(bins, weights=listened, minlength=self.num_bins)
        self.by_bin = _smoothed_rate(listens, plays, self.listen_rate)
        return self

    def _predict(self, history: History, slate, slate_responses):
        return self.by_bin[self._bins(slate)]

    def predict_sessions(self, log: SessionLog) -> np.ndarray:
        return self.by_bin[self._bins(log.tracks)]

    def state(self) -> dict:
        return dict(super().state(), by_bin=self.by_bin.tolist(),
                    play_counts=self.play_counts.tolist())

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.by_bin = np.asarray(state["by_bin"], np.float64)
        self.play_counts = np.asarray(state["play_counts"], np.int64)

    def remapped(self, rows, embeddings):
        rows = np.asarray(rows, np.int64)
        model = type(self)()
        model.set_state(self.state())
        model.play_counts = np.where(rows >= 0, self.play_counts[np.maximum(rows, 0)], 0)
        return model
