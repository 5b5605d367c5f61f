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
from spotisim.data.exposure import ExposureLog
from spotisim.data.synthetic import EXPLORATION_META, SyntheticWorld, WorldConfig, generate
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
    exposure: Optional[ExposureLog] = None  # a random-exposure log, where there is one

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
                           num_shards: int = 1, exploration_sessions: int = 0,
                           propensities: bool = False) -> dict:
    """Generates the synthetic world into `directory` unless it is already there with
    the same settings (recorded in settings.json).  Returns the paths.

    `num_shards` > 1 writes the log as that many files (for the distributed mode, where
    each collect actor owns some); the shards are different draws, so it is a different
    world from the single-file default.  `exploration_sessions` > 0 adds a log of the
    platform's random-exposure slice (`generate`; the main log stays the same)."""
    config = config or WorldConfig(seed=seed)
    if config.seed != seed:
        config = dataclasses.replace(config, seed=seed)
    settings = {"num_sessions": int(num_sessions), "seed": int(seed),
                "config": config.to_json()}
    if num_shards != 1:  # absent for one file, so existing default worlds stay valid
        settings["num_shards"] = int(num_shards)
    if exploration_sessions:  # absent without one, likewise
        settings["exploration_sessions"] = int(exploration_sessions)
    if propensities:  # likewise
        settings["propensities"] = True
    marker = os.path.join(directory, "settings.json")
    paths = {"log": os.path.join(directory, "log"),
             "tracks": os.path.join(directory, "tracks", "tracks.csv"),
             "world": os.path.join(directory, "world"),
             "hidden": os.path.join(directory, "hidden_sessions.parquet")}
    if exploration_sessions:
        paths["exploration"] = os.path.join(directory, "exploration")
    if os.path.exists(marker):
        with open(marker) as f:
            stored = json.load(f)
        if isinstance(stored.get("config"), dict):
            stored["config"] = WorldConfig.from_json(stored["config"]).to_json()
        if stored == settings and all(os.path.exists(p) for p in paths.values()):
            return paths
    paths = generate(directory, num_sessions, seed, config, "csv", num_shards=num_shards,
                     exploration_sessions=exploration_sessions, propensities=propensities)
    with atomic_file(marker) as f:
        json.dump(settings, f, indent=1)
    return paths


@gin.configurable
def load_dataset(log_path: Optional[str] = None, tracks_path: Optional[str] = None,
                 hidden_path: Optional[str] = None, world_path: Optional[str] = None,
                 split: Tuple[float, float, float] = (0.8, 0.1, 0.1), split_seed: int = 0,
                 skip_column: str = "skip_2", on_error: str = "raise",
                 exposure_path: Optional[str] = None,
                 explore_from: Optional[int] = None) -> Dataset:
    """Loads a log (the synthetic default when `log_path` is None) and splits it.

    Args:
      log_path / tracks_path: the user's MSSD session log (file, glob, directory or a
        processed log) and optional track table.
      hidden_path / world_path: a synthetic log's hidden_sessions.parquet and world/,
        when evaluating against ground truth.
      split / split_seed: train / validation / test fractions, by session.
      skip_column / on_error: see `read_session_log`.
      exposure_path / explore_from: a log of randomly exposed tracks in the MSSD schema
        (a platform's exploration slice: in each session the tracks after position
        `explore_from` were exposed at random), read into the main log's catalogue, for
        a user model that reads it (`ExposureLog`).  The synthetic default uses its
        world's exploration log when it has one (`ensure_synthetic_world.
        exploration_sessions`), whose exploration.json gives `explore_from`.
    """
    if log_path is None:
        paths = ensure_synthetic_world()
        log_path, tracks_path = paths["log"], paths["tracks"]
        hidden_path, world_path = paths["hidden"], paths["world"]
        exposure_path = exposure_path or paths.get("exploration")
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
    exposure = None
    if exposure_path is not None:
        exposure = read_exposure_log(exposure_path, log, explore_from, skip_column, on_error)
    return Dataset(log, train, val, test, hidden_path, world, source, log_path, exposure)


def read_exposure_log(path: str, log: SessionLog, explore_from: Optional[int],
                      skip_column: str = "skip_2", on_error: str = "raise") -> ExposureLog:
    """The random-exposure log at `path`, its tracks indexed like `log`'s.

    `explore_from` comes from the argument or from the exploration.json beside the log
    (written by the synthetic world); they must agree where both are given."""
    meta_path = os.path.join(path, EXPLORATION_META) if os.path.isdir(path) else None
    if meta_path and os.path.exists(meta_path):
        with open(meta_path) as f:
            recorded = int(json.load(f)["explore_from"])
        if explore_from is not None and int(explore_from) != recorded:
            raise ConfigError(f"load_dataset.explore_from = {explore_from}, but {meta_path} "
                              f"records {recorded}")
        explore_from = recorded
    if explore_from is None:
        raise ConfigError(f"load_dataset.explore_from is needed for the exposure log {path} "
                          "(the position after which its tracks were exposed at random)")
    exposed = read_session_log(path, skip_column=skip_column, on_error=on_error,
                               catalog=log.catalog)
    return ExposureLog(exposed, int(explore_from))
