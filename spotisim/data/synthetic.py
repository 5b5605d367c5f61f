"""The embedded default data: a seeded synthetic listening world.

It is a small but complete world: tracks with correlated acoustic features and
popularity clustered in genres; listeners with latent tastes that drift within a session
(towards what they just listened to and towards a session mood); context types that shape
what the logging policy plays; position fatigue; skip streaks that lower patience and end
sessions; boredom with more of the same that ends them too.  It writes its logs in the
exact MSSD schema and keeps its hidden ground truth: `listen_prob(state, tracks)` answers
P(listen) for any listener state and any track.  That hidden truth is the "online" user
population for alignment studies and the Bayes limit for user-model accuracy.

`SyntheticWorld` puts the parts of `spotisim.data.world` together (catalogue, listeners,
response model, logging policy, writer: one job each) and keeps their names on itself,
so `world.listen_prob`, `world.track_latent`, ... read as before.

CLI: python -m spotisim.data.synthetic --out DIR --sessions N --seed S
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Dict, Optional, Tuple

import gin
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from spotisim.data.world.catalogue import Catalogue
from spotisim.data.world.common import sigmoid as _sigmoid, unit as _unit  # noqa: F401
from spotisim.data.world.config import CONTEXT_SHARES, WorldConfig  # noqa: F401
from spotisim.data.world.exploration import NEIGHBOURS_FROM, ExplorationPolicy
from spotisim.data.world.listeners import Listeners
from spotisim.data.world.logging_policy import LoggingPolicy, played_propensities
from spotisim.data.world.response import ListenerState, ResponseModel
from spotisim.data.world.writer import (P_NOTSKIPPED_GIVEN_FULL, P_SKIP1_GIVEN_SKIP2,  # noqa: F401
                                        P_SKIP3_GIVEN_LISTEN, SUFFIXES, session_log_table,
                                        write_table)
from spotisim.errors import ConfigError
from spotisim.io_utils import atomic_dir, atomic_file

#: The file beside an exploration log that says from which position it explores.
EXPLORATION_META = "exploration.json"

_CATALOGUE = ("genre_centroids", "track_genre", "track_latent", "track_popularity",
              "track_ids", "track_features")
_LISTENERS = ("listener_taste", "listener_bias", "listener_premium")


class SyntheticWorld:
    """Tracks, listeners and their hidden response model, built from a seed.

    Args:
      config: a `WorldConfig`; default-constructed (gin-configurable) when None.

    Parts: `catalogue`, `listeners`, `response` (the hidden truth), `logging_policy`.
    The catalogue's and the listeners' arrays (`track_latent`, `listener_taste`, ...)
    and the response model's and logging policy's methods are also read through the
    world itself.
    """

    def __init__(self, config: Optional[WorldConfig] = None):
        config = (config or WorldConfig()).validate()
        # One stream for the whole world, catalogue first: the same seed gives the same
        # world as before the world was split into parts.
        rng = np.random.default_rng([config.seed, 1])
        catalogue = Catalogue.generate(config, rng)
        self._assemble(config, catalogue, Listeners.generate(config, catalogue, rng))

    def _assemble(self, config: WorldConfig, catalogue: Catalogue, listeners: Listeners) -> None:
        self.config = config
        self.catalogue = catalogue
        self.listeners = listeners
        self.response = ResponseModel(config, catalogue, listeners)
        self.logging_policy = LoggingPolicy(config, catalogue, listeners)
        self._exploration_policy = None

    @property
    def exploration_policy(self) -> ExplorationPolicy:
        """The random-exposure slice's policy (built on first use: it indexes the
        catalogue's latent neighbours)."""
        if self._exploration_policy is None:
            self._exploration_policy = ExplorationPolicy(self.config, self.catalogue)
        return self._exploration_policy

    def __getattr__(self, name):
        # Only reached for names the world itself lacks: the parts' arrays.
        if name in _CATALOGUE:
            return getattr(self.__dict__["catalogue"], name)
        if name in _LISTENERS:
            return getattr(self.__dict__["listeners"], name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    @property
    def context_bias(self) -> np.ndarray:
        return self.response.context_bias

    # ------------------------------------------------------------------ the parts' jobs
    def track_table(self) -> pa.Table:
        """The MSSD track-features table of this world."""
        return self.catalogue.track_table()

    def new_sessions(self, rng: np.random.Generator, n: int,
                     listeners: Optional[np.ndarray] = None,
                     contexts: Optional[np.ndarray] = None) -> ListenerState:
        """Starts n sessions: draws listeners, contexts and session moods."""
        return self.listeners.new_sessions(rng, n, listeners, contexts)

    def listen_logit(self, state: ListenerState, tracks: np.ndarray) -> np.ndarray:
        return self.response.listen_logit(state, tracks)

    def listen_prob(self, state: ListenerState, tracks: np.ndarray) -> np.ndarray:
        """Ground-truth P(listen) [B, K] for each candidate track as the next play."""
        return self.response.listen_prob(state, tracks)

    def advance(self, state: ListenerState, tracks: np.ndarray, listened: np.ndarray) -> ListenerState:
        """The state after each listener heard `tracks` [B] and listened (or skipped)."""
        return self.response.advance(state, tracks, listened)

    def leave_prob(self, state: ListenerState, cap: bool = True) -> np.ndarray:
        """P(the listener ends the session now), given the state after a track."""
        return self.response.leave_prob(state, cap)

    def logging_pools(self, rng: np.random.Generator, state: ListenerState) -> np.ndarray:
        """The logging policy's line-up for each session (see `LoggingPolicy.pools`)."""
        return self.logging_policy.pools(rng, state)

    # ------------------------------------------------------------------ session log
    def simulate_sessions(self, rng: np.random.Generator, n: int,
                          explore_from: Optional[int] = None,
                          propensities: bool = False,
                          schedule: Optional[Dict[str, np.ndarray]] = None,
                          length: Optional[int] = None) -> Dict[str, np.ndarray]:
        """Plays n logged sessions: the logging policy picks, the hidden truth responds.

        With `explore_from` = h, the tracks after the first h are exposed at random by
        the exploration policy (`spotisim.data.world.exploration`) instead: the log of a
        platform's random-exposure slice.  Without it the draws are those of a world
        without exploration, byte for byte.

        With `propensities` (and no exploration), it also returns the logging policy's
        propensity of each played track (`played_propensities`): what a platform logs.
        The draws are the same with or without.

        With `schedule` (n sessions of `Listeners.schedule`: a world whose listeners
        return), each session is that listener on that day and hour, and the result
        also has listener_id, day and hour (what the log writes).

        With `length` (an exploration log only), sessions run up to that many tracks
        instead of the log's `max_length` (a platform's own exploration traffic is not
        cut at MSSD's 20): the listener leaves by the world's hazard alone until then.

        Returns a dict of padded [n, max_length] arrays (tracks, listened, prob, and
        with `explore_from` explored, with `propensities` propensity) and [n] arrays
        (length, listener, context, shuffle, mood).
        """
        c = self.config
        if propensities and explore_from is not None:
            raise ConfigError("simulate_sessions: propensities are the logging policy's; "
                              "an exploration log has none")
        state = self.new_sessions(rng, n, None if schedule is None else schedule["row"])
        scores = self.logging_policy.scores(rng, state)
        pools = self.logging_policy.draw(rng, scores)
        shuffle = rng.random(n) < 0.311
        # Shuffled sessions play a random order of the line-up instead of its ranking.
        shuffled = np.argsort(rng.random(pools.shape), axis=1)
        pools = np.where(shuffle[:, None], np.take_along_axis(pools, shuffled, axis=1), pools)
        if length is not None and (explore_from is None or not c.max_length <= length):
            raise ConfigError(f"simulate_sessions: a length ({length}) is for an "
                              f"exploration log, at least max_length ({c.max_length})")
        capped = length is None   # the log's cap ends every session at max_length
        L = c.max_length if capped else int(length)
        tracks = pools[:, :L]
        if tracks.shape[1] < L:  # explored past the line-up: filled at explore_from
            tracks = np.pad(tracks, ((0, 0), (0, L - tracks.shape[1])), constant_values=-1)
        listened = np.zeros((n, L), bool)
        prob = np.zeros((n, L))
        length = np.full(n, L, np.int64)
        alive = np.ones(n, bool)
        start = state.copy()
        explored = None
        if explore_from is not None:
            if not 1 <= explore_from < L:
                raise ConfigError(f"explore_from must be in [1, {L - 1}], got {explore_from}")
            explored = np.zeros((n, L), bool)
            explored[:, explore_from:] = True
        for t in range(L):
            if t == explore_from:
                tracks = tracks.copy()
                tracks[:, t:] = self.exploration_policy.tracks(rng, tracks[:, :t],
                                                               listened[:, :t], L - t)
            p = self.listen_prob(state, tracks[:, t:t + 1])[:, 0]
            lis = rng.random(n) < p
            prob[:, t], listened[:, t] = p, lis
            state = self.advance(state, tracks[:, t], lis)
            leave = (rng.random(n) < self.leave_prob(state, cap=capped)) & alive
            length[leave] = t + 1
            alive &= ~leave
        sim = {"tracks": tracks, "listened": listened, "prob": prob, "length": length,
               "listener": start.listener, "context": start.context, "mood": start.mood,
               "shuffle": shuffle}
        if explored is not None:
            sim["explored"] = explored
        if schedule is not None:
            sim.update(listener_id=self.listeners.listener_names(schedule["listener"]),
                       day=schedule["day"], hour=schedule["hour"])
        if propensities:
            sim["propensity"] = played_propensities(scores, tracks, shuffle, c.pool_size)
        return sim

    def session_log_table(self, sim: Dict[str, np.ndarray], rng: np.random.Generator,
                          session_prefix: str = "0") -> Tuple[pa.Table, list]:
        """Turns simulated sessions into MSSD session-log rows (and their session ids)."""
        return session_log_table(sim, rng, self.track_ids, self.listener_premium,
                                 session_prefix)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str) -> None:
        """Saves the world's hidden arrays so ground truth survives code changes."""
        with atomic_dir(directory) as tmp:
            np.savez(os.path.join(tmp, "world.npz"), track_latent=self.track_latent,
                     track_popularity=self.track_popularity, track_genre=self.track_genre,
                     listener_taste=self.listener_taste, listener_bias=self.listener_bias,
                     listener_premium=self.listener_premium,
                     genre_centroids=self.genre_centroids,
                     track_ids=self.track_ids.astype(str),
                     **{"feat_" + k: v for k, v in self.track_features.items()})
            with open(os.path.join(tmp, "world.json"), "w") as f:
                json.dump(self.config.to_json(), f, indent=1)

    @classmethod
    def load(cls, directory: str) -> "SyntheticWorld":
        with open(os.path.join(directory, "world.json")) as f:
            cfg = json.load(f)
        config = WorldConfig.from_json(cfg)
        arrays = np.load(os.path.join(directory, "world.npz"))
        features = {k[5:]: arrays[k] for k in arrays.files if k.startswith("feat_")}
        catalogue = Catalogue(config, arrays["genre_centroids"], arrays["track_genre"],
                              arrays["track_latent"], arrays["track_popularity"],
                              arrays["track_ids"].astype(object), features)
        listeners = Listeners(config, arrays["listener_taste"], arrays["listener_bias"],
                              arrays["listener_premium"])
        world = cls.__new__(cls)
        world._assemble(config, catalogue, listeners)
        return world


@gin.configurable
def generate(out_dir: str, num_sessions: int = 10_000, seed: int = 0,
             config: Optional[WorldConfig] = None, file_format: str = "csv",
             num_shards: int = 1, block_sessions: int = 4096,
             exploration_sessions: int = 0, explore_from: int = 10,
             propensities: bool = False,
             exploration_neighbours: str = "latent",
             exploration_chains: bool = False,
             exploration_length: Optional[int] = None) -> Dict[str, str]:
    """Builds a world and writes its logs, track table and hidden truth under `out_dir`.

    Layout: log/ (session-log shards), tracks/tracks.<ext> (track table), world/ (hidden
    arrays and config), hidden_sessions.parquet (per logged session: listener, context,
    mood, i.e. the hidden key ground truth needs).  Same arguments, same bytes.

    With `exploration_sessions` > 0 it also writes exploration/: a log of that many
    sessions of the platform's random-exposure slice (the logging policy plays the first
    `explore_from` tracks, the exploration policy the rest; `explore_from` is recorded in
    exploration/exploration.json), drawn from a stream of its own, so the main log is
    the same bytes with or without it.  `exploration_neighbours`: the vectors its
    neighbour proposals are taken on, 'latent' (hidden) or 'features' (the track
    table's); `exploration_chains`: sessions that run through a neighbourhood at a
    random share (`ExplorationPolicy`); `exploration_length`: its sessions run up to
    that many tracks, past the log's cap (None: the cap).

    With `propensities` the log has one more column, logging_propensity: the logging
    policy's probability of each row's track given the session before it, as a
    platform logs it (`played_propensities`); every other byte is the same.

    In a world whose listeners return (`WorldConfig.listener_days` > 0) the log has a
    listener_id column and spans that many days; hidden_sessions.parquet's `listener`
    is then the session's listener-day row (`Listeners`).

    Returns:
      Paths: {'log': ..., 'tracks': ..., 'world': ..., 'hidden': ...} (and
      'exploration' with an exploration log).
    """
    if file_format not in SUFFIXES:
        raise ConfigError(f"file_format must be one of {sorted(SUFFIXES)}, got {file_format!r}")
    if num_sessions < 1 or num_shards < 1:
        raise ConfigError("num_sessions and num_shards must be positive")
    if exploration_neighbours not in NEIGHBOURS_FROM:
        raise ConfigError(f"generate.exploration_neighbours must be one of "
                          f"{NEIGHBOURS_FROM}, got {exploration_neighbours!r}")
    config = config or WorldConfig(seed=seed)
    if config.seed != seed:
        config = dataclasses.replace(config, seed=seed)
    if exploration_length is not None and not (
            exploration_sessions > 0 and exploration_length >= config.max_length):
        # Checked before anything is written (`simulate_sessions` checks it too).
        raise ConfigError(f"generate.exploration_length ({exploration_length}) is for an "
                          f"exploration log, at least max_length ({config.max_length})")
    world = SyntheticWorld(config)
    ext = SUFFIXES[file_format]
    paths = {"log": os.path.join(out_dir, "log"),
             "tracks": os.path.join(out_dir, "tracks", "tracks" + ext),
             "world": os.path.join(out_dir, "world"),
             "hidden": os.path.join(out_dir, "hidden_sessions.parquet")}
    os.makedirs(out_dir, exist_ok=True)
    write_table(world.track_table(), paths["tracks"])
    world.save(paths["world"])
    per_shard = -(-num_sessions // num_shards)
    hidden = {"session_id": [], "listener": [], "context": [], "shuffle": [], "mood": []}
    # Who listens when: drawn for the whole log at once (a listener's sessions span the
    # shards), from a stream of its own.
    schedule = world.listeners.schedule(np.random.default_rng([seed, 10]), num_sessions) \
        if config.returning else None
    with atomic_dir(paths["log"]) as log_tmp:
        for shard in range(num_shards):
            n_shard = min(per_shard, num_sessions - shard * per_shard)
            if n_shard <= 0:
                break
            rng = np.random.default_rng([seed, 7, shard])
            tables = []
            for start in range(0, n_shard, block_sessions):
                n = min(block_sessions, n_shard - start)
                first = shard * per_shard + start
                block = None if schedule is None else \
                    {k: v[first:first + n] for k, v in schedule.items()}
                sim = world.simulate_sessions(rng, n, propensities=propensities,
                                              schedule=block)
                table, sids = world.session_log_table(sim, rng, session_prefix=str(shard))
                tables.append(table)
                hidden["session_id"] += sids
                hidden["listener"].append(sim["listener"])
                hidden["context"].append(sim["context"])
                hidden["shuffle"].append(sim["shuffle"])
                hidden["mood"].append(sim["mood"])
            write_table(pa.concat_tables(tables),
                        os.path.join(log_tmp, f"log_{shard:05d}{ext}"))
    mood = np.concatenate(hidden["mood"])
    hid = {"session_id": pa.array(hidden["session_id"], pa.string()),
           "listener": pa.array(np.concatenate(hidden["listener"]).astype(np.int64)),
           "context": pa.array(np.concatenate(hidden["context"]).astype(np.int64)),
           "shuffle": pa.array(np.concatenate(hidden["shuffle"]))}
    for d in range(mood.shape[1]):
        hid[f"mood_{d}"] = pa.array(mood[:, d])
    with atomic_file(paths["hidden"], "wb") as f:
        pq.write_table(pa.table(hid), f)
    if exploration_sessions > 0:
        paths["exploration"] = os.path.join(out_dir, "exploration")
        write_exploration_log(world, paths["exploration"], exploration_sessions,
                              explore_from, seed, ext, block_sessions,
                              neighbours_from=exploration_neighbours,
                              chains=exploration_chains, length=exploration_length)
    return paths


def write_exploration_log(world: SyntheticWorld, directory: str, num_sessions: int,
                          explore_from: int, seed: int, ext: str = ".csv",
                          block_sessions: int = 4096, neighbours_from: str = "latent",
                          chains: bool = False, length: Optional[int] = None) -> None:
    """Writes `num_sessions` sessions of the random-exposure slice into `directory`
    (log_00000<ext> and exploration.json), atomically; its neighbours are taken on
    `neighbours_from`, in chains or not (`ExplorationPolicy`); with `length`, its
    sessions run up to that many tracks rather than the log's cap."""
    world._exploration_policy = ExplorationPolicy(world.config, world.catalogue,
                                                  neighbours_from=neighbours_from,
                                                  chains=chains)
    rng = np.random.default_rng([seed, 8])
    tables = []
    for start in range(0, num_sessions, block_sessions):
        n = min(block_sessions, num_sessions - start)
        sim = world.simulate_sessions(rng, n, explore_from=explore_from, length=length)
        tables.append(world.session_log_table(sim, rng, session_prefix=f"x{start}")[0])
    with atomic_dir(directory) as tmp:
        write_table(pa.concat_tables(tables), os.path.join(tmp, f"log_00000{ext}"))
        with open(os.path.join(tmp, EXPLORATION_META), "w") as f:
            meta = {"explore_from": int(explore_from), "sessions": int(num_sessions)}
            if neighbours_from != "latent":  # absent for the slice as first built
                meta["neighbours_from"] = neighbours_from
            if chains:
                meta["chains"] = True
            if length is not None:
                meta["length"] = int(length)
            json.dump(meta, f)


def main(argv=None) -> int:
    import argparse
    parser = argparse.ArgumentParser(
        prog="python -m spotisim.data.synthetic",
        description="Write a seeded synthetic listening world in the MSSD schema.")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", default="csv", choices=sorted(SUFFIXES))
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--tracks", type=int, default=None, help="catalogue size")
    parser.add_argument("--listeners", type=int, default=None)
    parser.add_argument("--propensities", action="store_true",
                        help="also write the logging policy's propensity of each row")
    parser.add_argument("--listener-days", type=int, default=0,
                        help="listeners return over this many days (0: anonymous sessions)")
    parser.add_argument("--taste-drift", type=float, default=0.0,
                        help="per-day drift of a returning listener's taste")
    args = parser.parse_args(argv)
    overrides = {}
    if args.listener_days:
        overrides["listener_days"] = args.listener_days
    if args.taste_drift:
        overrides["taste_drift"] = args.taste_drift
    if args.tracks:
        overrides["num_tracks"] = args.tracks
    if args.listeners:
        overrides["num_listeners"] = args.listeners
    try:
        cfg = WorldConfig(seed=args.seed, **overrides)
        paths = generate(args.out, args.sessions, args.seed, cfg, args.format, args.shards,
                         propensities=args.propensities)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.sessions} sessions: log {paths['log']}, tracks {paths['tracks']}, "
          f"hidden truth {paths['world']} + {paths['hidden']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
