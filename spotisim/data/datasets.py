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
from spotisim.data.streaming import ShardedLog, held_out_shards, parquet_shards, shard_catalog
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
    #: A log read from Parquet shards (`load_dataset.log_shards`): the training shards
    #: and the shards the user model validates on, streamed (`ShardedLog`); `train`,
    #: `val` and `test` are then samples of them read whole.
    train_shards: Optional[ShardedLog] = None
    val_shards: Optional[ShardedLog] = None

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
                           propensities: bool = False,
                           exploration_neighbours: str = "latent",
                           exploration_chains: bool = False,
                           exploration_length: Optional[int] = None) -> dict:
    """Generates the synthetic world into `directory` unless it is already there with
    the same settings (recorded in settings.json).  Returns the paths.

    `num_shards` > 1 writes the log as that many files (for the distributed mode, where
    each collect actor owns some); the shards are different draws, so it is a different
    world from the single-file default.  `exploration_sessions` > 0 adds a log of the
    platform's random-exposure slice (`generate`; the main log stays the same), whose
    neighbour proposals are taken on `exploration_neighbours` ('latent' or 'features'),
    in chains with `exploration_chains` (`spotisim.data.world.exploration`), up to
    `exploration_length` tracks per session (None: the log's cap)."""
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
    if exploration_neighbours != "latent":  # likewise
        settings["exploration_neighbours"] = exploration_neighbours
    if exploration_chains:  # likewise
        settings["exploration_chains"] = True
    if exploration_length is not None:  # likewise
        settings["exploration_length"] = int(exploration_length)
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
                     exploration_sessions=exploration_sessions, propensities=propensities,
                     exploration_neighbours=exploration_neighbours,
                     exploration_chains=exploration_chains,
                     exploration_length=exploration_length)
    with atomic_file(marker) as f:
        json.dump(settings, f, indent=1)
    return paths


@gin.configurable
def load_dataset(log_path: Optional[str] = None, tracks_path: Optional[str] = None,
                 hidden_path: Optional[str] = None, world_path: Optional[str] = None,
                 split: Tuple[float, float, float] = (0.8, 0.1, 0.1), split_seed: int = 0,
                 skip_column: str = "skip_2", on_error: str = "raise",
                 exposure_path: Optional[str] = None,
                 explore_from: Optional[int] = None,
                 log_shards: Optional[str] = None, held_out_every: int = 10,
                 sample_sessions: int = 20_000) -> Dataset:
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
      log_shards / held_out_every / sample_sessions: a log too large to read whole, as
        Parquet shards (`shard_dataset`), in place of `log_path`.
    """
    if log_shards is not None:
        if log_path is not None or exposure_path is not None:
            raise ConfigError("load_dataset.log_shards replaces log_path (and takes no "
                              "exposure_path): bind one of them")
        if (hidden_path is None) != (world_path is None):
            raise ConfigError("load_dataset.hidden_path and world_path go together "
                              "(both or neither)")
        return shard_dataset(log_shards, tracks_path, hidden_path, world_path,
                             held_out_every, sample_sessions, skip_column, on_error)
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


def shard_dataset(log_shards: str, tracks_path: Optional[str] = None,
                  hidden_path: Optional[str] = None, world_path: Optional[str] = None,
                  held_out_every: int = 10, sample_sessions: int = 20_000,
                  skip_column: str = "skip_2", on_error: str = "raise") -> Dataset:
    """A log as Parquet shards, for a main job whose log does not fit in memory.

    Every `held_out_every`-th shard is held out (the rule of a streamed fit's
    validation): the first, third, ... of them validate the user model, the others are
    the test shards, so no session the model or its early stopping saw is scored.  The
    rest train: the user model and item2vec stream them, the agent's episodes start
    from them a chunk at a time.  What an evaluation reads whole is a sample: the first
    `sample_sessions` sessions of the training, validation and test shards (`train`,
    `val`, `test`; `log` holds the three).  Popularity is the whole log's (one pass
    over the shards' track ids), as in memory."""
    if sample_sessions < 1:
        raise ConfigError(f"load_dataset.sample_sessions must be positive, got {sample_sessions}")
    shards = parquet_shards(log_shards)
    train_paths, held = held_out_shards(shards, held_out_every, "load_dataset.held_out_every",
                                       "a main job on shards")
    if len(held) < 2:
        raise ConfigError(f"{log_shards}: {len(shards)} shards hold out {len(held)} with "
                          f"load_dataset.held_out_every = {held_out_every}; a main job on "
                          "shards needs 2 held out (one validates the user model, one "
                          "tests): lower held_out_every or cut the log into more shards")
    catalog = shard_catalog(shards, tracks_path)
    whole = ShardedLog(shards, catalog, skip_column=skip_column, on_error=on_error)
    parts = [whole.part(train_paths), whole.part(held[0::2]), whole.part(held[1::2])]
    chunks, counts = [], []
    for part in parts:
        c, n = part.head_chunks(sample_sessions)
        chunks += c
        counts.append(n)
    log = SessionLog.from_arrow_chunks(chunks, catalog, skip_column, on_error)
    log.catalog.play_counts = whole.play_counts()
    starts = np.concatenate([[0], np.cumsum(counts)])
    train, val, test = (log.subset(np.arange(a, a + min(n, sample_sessions)))
                        for a, n in zip(starts[:-1], counts))
    world = SyntheticWorld.load(world_path) if world_path else None
    if world is not None and (len(catalog) != len(world.track_ids)
                              or not (catalog.track_ids == world.track_ids).all()):
        raise ConfigError(f"the shards' catalogue does not match the world in {world_path}: "
                          "give the world's track table (load_dataset.tracks_path)")
    return Dataset(log, train, val, test, hidden_path, world, f"shards {log_shards}",
                   log_shards, None, train_shards=parts[0], val_shards=parts[1])


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
