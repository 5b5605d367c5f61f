"""One gin-configurable way to get the data an experiment runs on: the user's own MSSD
files, or the embedded default (the synthetic world, generated once and reused while its
settings are unchanged)."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional, Tuple

import gin
import numpy as np

from spotisim.data.hidden import hidden_keys
from spotisim.data.session_log import SessionLog, read_session_log
from spotisim.data.synthetic import SyntheticWorld, WorldConfig, generate
from spotisim.errors import ConfigError
from spotisim.io_utils import atomic_file


@dataclasses.dataclass
class Dataset:
    """A log split by session, with the synthetic world's extras when there is one.

    `hidden_path` and `world` are None for real data: there is no ground truth.
    """

    log: SessionLog
    train: SessionLog
    val: SessionLog
    test: SessionLog
    hidden_path: Optional[str] = None
    world: Optional[SyntheticWorld] = None
    source: str = ""
    log_path: Optional[str] = None   # where the log was read from

    @property
    def synthetic(self) -> bool:
        return self.world is not None

    def hidden(self, log: SessionLog) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """(listener, mood) per session of `log` (a part of this dataset), or None."""
        if self.hidden_path is None:
            return None
        return hidden_keys(log, self.hidden_path)


@gin.configurable
def ensure_synthetic_world(directory: str = "data/default", num_sessions: int = 20_000,
                           seed: int = 0, config: Optional[WorldConfig] = None,
                           num_shards: int = 1) -> dict:
    """Generates the synthetic world into `directory` unless it is already there with
    the same settings (recorded in settings.json).  Returns the paths.

    `num_shards` > 1 writes the log as that many files (for the distributed mode, where
    each collect actor owns some); the shards are different draws, so it is a different
    world from the single-file default."""
    config = config or WorldConfig(seed=seed)
    if config.seed != seed:
        config = dataclasses.replace(config, seed=seed)
    settings = {"num_sessions": int(num_sessions), "seed": int(seed),
                "config": config.to_json()}
    if num_shards != 1:  # absent for one file, so existing default worlds stay valid
        settings["num_shards"] = int(num_shards)
    marker = os.path.join(directory, "settings.json")
    paths = {"log": os.path.join(directory, "log"),
             "tracks": os.path.join(directory, "tracks", "tracks.csv"),
             "world": os.path.join(directory, "world"),
             "hidden": os.path.join(directory, "hidden_sessions.parquet")}
    if os.path.exists(marker):
        with open(marker) as f:
            stored = json.load(f)
        if isinstance(stored.get("config"), dict):
            stored["config"] = WorldConfig.from_json(stored["config"]).to_json()
        if stored == settings and all(os.path.exists(p) for p in paths.values()):
            return paths
    paths = generate(directory, num_sessions, seed, config, "csv", num_shards=num_shards)
    with atomic_file(marker) as f:
        json.dump(settings, f, indent=1)
    return paths


@gin.configurable
def load_dataset(log_path: Optional[str] = None, tracks_path: Optional[str] = None,
                 hidden_path: Optional[str] = None, world_path: Optional[str] = None,
                 split: Tuple[float, float, float] = (0.8, 0.1, 0.1), split_seed: int = 0,
                 skip_column: str = "skip_2", on_error: str = "raise") -> Dataset:
    """Loads a log (the synthetic default when `log_path` is None) and splits it.

    Args:
      log_path / tracks_path: the user's MSSD session log (file, glob, directory or a
        processed log) and optional track table.
      hidden_path / world_path: a synthetic log's hidden_sessions.parquet and world/,
        when evaluating against ground truth.
      split / split_seed: train / validation / test fractions, by session.
      skip_column / on_error: see `read_session_log`.
    """
    if log_path is None:
        paths = ensure_synthetic_world()
        log_path, tracks_path = paths["log"], paths["tracks"]
        hidden_path, world_path = paths["hidden"], paths["world"]
        source = f"synthetic world {os.path.dirname(paths['log'])}"
    else:
        source = log_path
    if (hidden_path is None) != (world_path is None):
        raise ConfigError("load_dataset.hidden_path and world_path go together (both or neither)")
    log = read_session_log(log_path, tracks_path, skip_column=skip_column, on_error=on_error)
    train, val, test = log.split(split, seed=split_seed)
    world = SyntheticWorld.load(world_path) if world_path else None
    if world is not None and (len(log.catalog) != len(world.track_ids)
                              or not (log.catalog.track_ids == world.track_ids).all()):
        raise ConfigError(f"the log's catalogue does not match the world in {world_path}: "
                          "read the log with the world's track table (tracks_path)")
    return Dataset(log, train, val, test, hidden_path, world, source, log_path)
