"""The embedded default data: a seeded synthetic listening world.

It is a small but complete world: tracks with correlated acoustic features and
popularity clustered in genres; listeners with latent tastes that drift within a session
(towards what they just listened to and towards a session mood); context types that shape
what the logging policy plays; position fatigue; skip streaks that lower patience and end
sessions.  It writes its logs in the exact MSSD schema and keeps its hidden ground truth:
`listen_prob(state, tracks)` answers P(listen) for any listener state and any track.
That hidden truth is the "online" user population for alignment studies and the Bayes
limit for user-model accuracy.

CLI: python -m spotisim.data.synthetic --out DIR --sessions N --seed S
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import sys
import uuid
from typing import Dict, Optional, Tuple

import gin
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from spotisim.data.schema import (ACOUSTIC_VECTOR_COLUMNS, CONTEXT_TYPES,
                                  SESSION_LOG_COLUMNS, SESSION_LOG_SCHEMA,
                                  TRACK_COLUMNS, TRACK_SCHEMA)
from spotisim.errors import ConfigError
from spotisim.io_utils import atomic_dir, atomic_file

# MSSD's context mix (from the 100k-row public sample).
CONTEXT_SHARES = (0.405, 0.227, 0.208, 0.127, 0.019, 0.015)
# Conditional flag rates that reproduce MSSD's skip_1 / skip_3 / not_skipped given skip_2.
P_SKIP1_GIVEN_SKIP2 = 0.816
P_SKIP3_GIVEN_LISTEN = 0.273
P_NOTSKIPPED_GIVEN_FULL = 0.945


@gin.configurable
@dataclasses.dataclass(frozen=True)
class WorldConfig:
    """Every knob of the synthetic world.  Defaults are calibrated so the logs look like
    MSSD (skip_2 ~52%, 38% at position 1 rising to ~53% by position 5, half the sessions
    at the cap of 20); see BUILD_NOTES.md for the side-by-side `inspect` output.

    Attributes:
      num_tracks / num_listeners / num_genres / latent_dim: world size.
      base_logit: global intercept of the listen logit.
      taste_weight: weight of cos(listener taste state, track latent).
      popularity_weight: weight of the track's latent popularity (standard normal).
      listener_bias_sd: spread of per-listener pickiness.
      fatigue / fatigue_scale: position fatigue, fatigue * (1 - exp(-(pos-1)/scale)).
      position_logit: when set, replaces position fatigue by a logit offset per
        position (1-based; the last value holds beyond the table).  Calibrated so the
        logged skip rate at each position 1-10 matches MSSD's (a monotone fatigue
        cannot: MSSD's skip rate peaks at position 7 and falls again by 10).
      streak_penalty / max_streak: logit penalty per consecutive skip (capped).
      context_bias: logit offset per context type, in CONTEXT_TYPES order.
      drift_listen: how far a listened track pulls the taste state towards itself.
      drift_mood: per-step pull of the taste state towards the session mood.
      mood_weight: how much the session mood shifts the starting taste.
      min_length / max_length: session length bounds (MSSD: 10..20).
      leave_base / leave_streak: logit of leaving after a track, once past min_length.
      satiation_weight / satiation_decay: a need for variety (0 = none, the default
        world).  Each listened track adds its latent to a per-session satiety vector
        that decays by `satiation_decay` per track, and a track's logit loses
        satiation_weight * max(0, satiety . track).  Playing more of the same now then
        costs listens later, which gives a planner a reason to differ from a greedy
        policy (without it, the long-term and the myopic interest point the same way).
      boredom_weight / boredom_decay / boredom_keep / boredom_ref: listeners who leave
        when bored (0 = never bored: the "myopic" world, byte for byte the world before
        boredom existed).  Each *listened* track adds its redundancy with what was
        listened to lately, rho = max(0, z . c), to a boredom level b that decays by
        `boredom_decay` per track; c is a centroid of recent listens,
        c <- unit(boredom_keep * c + (1 - boredom_keep) * z).  Boredom adds
        boredom_weight * (b - boredom_ref) to the logit of leaving after a track and
        leaves P(listen) unchanged: more of the same is as likely to be listened to
        now, but shortens the session, which the next track's P(listen) cannot show
        (the reason a long-horizon policy can beat greedy here).
      pool_size: tracks the logging policy lines up for a session.
      seed: the world's seed (tracks, listeners); session draws take their own seed.
    """

    num_tracks: int = 5000
    num_listeners: int = 2000
    num_genres: int = 16
    latent_dim: int = 8
    base_logit: float = -0.55
    taste_weight: float = 3.0
    popularity_weight: float = 0.5
    listener_bias_sd: float = 0.5
    fatigue: float = 0.78
    fatigue_scale: float = 1.5
    # benchmarks/calibrate_world.py --fit (BUILD_NOTES, "Listeners who leave when bored").
    position_logit: Tuple[float, ...] = dataclasses.field(
        default=(-0.068, -0.527, -0.702, -0.768, -0.804, -0.806, -0.802, -0.736, -0.664,
                 -0.581), metadata={"absent": ()})
    streak_penalty: float = 0.18
    max_streak: int = 5
    context_bias: Tuple[float, ...] = (0.25, 0.0, -0.15, -0.05, 0.0, -0.2)
    drift_listen: float = 0.3
    drift_mood: float = 0.12
    mood_weight: float = 0.6
    min_length: int = 10
    max_length: int = 20
    leave_base: float = -3.05
    leave_streak: float = 0.15
    pool_size: int = 40
    seed: int = 0
    satiation_weight: float = 0.0
    satiation_decay: float = 0.7
    # A saved config without a knob predates it: it means the knob's `absent` value.
    boredom_weight: float = dataclasses.field(default=0.5, metadata={"absent": 0.0})
    boredom_decay: float = 0.9
    boredom_keep: float = 0.7
    boredom_ref: float = 2.143

    @staticmethod
    def saved_with_defaults(saved: dict) -> dict:
        """A saved config (world.json, settings.json) with the knobs added since it was
        saved at their class defaults (or, for a knob whose default switches a mechanism
        on, at the value that means "off": field metadata `absent`), never at a gin
        binding meant for another world: worlds saved before a knob existed stay valid
        and keep meaning what they meant."""
        return {**{f.name: f.metadata.get("absent", f.default)
                   for f in dataclasses.fields(WorldConfig)}, **saved}

    def to_json(self) -> dict:
        """The config as JSON values (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, saved: dict) -> "WorldConfig":
        """A saved config (see `saved_with_defaults`) as a validated WorldConfig."""
        cfg = cls.saved_with_defaults(saved)
        cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}
        return cls(**cfg).validate()

    def validate(self) -> "WorldConfig":
        if self.num_tracks < self.pool_size:
            raise ConfigError(f"WorldConfig.num_tracks ({self.num_tracks}) must be at least "
                              f"pool_size ({self.pool_size})")
        if not 1 <= self.min_length <= self.max_length <= self.pool_size:
            raise ConfigError("WorldConfig needs 1 <= min_length <= max_length <= pool_size")
        if len(self.context_bias) != len(CONTEXT_TYPES):
            raise ConfigError(f"WorldConfig.context_bias needs {len(CONTEXT_TYPES)} values")
        if self.satiation_weight < 0 or not 0 <= self.satiation_decay < 1:
            raise ConfigError("WorldConfig needs satiation_weight >= 0 and "
                              f"0 <= satiation_decay < 1, got {self.satiation_weight}, "
                              f"{self.satiation_decay}")
        if self.boredom_weight < 0 or not 0 <= self.boredom_decay < 1 \
                or not 0 <= self.boredom_keep < 1:
            raise ConfigError("WorldConfig needs boredom_weight >= 0, 0 <= boredom_decay < 1 "
                              f"and 0 <= boredom_keep < 1, got {self.boredom_weight}, "
                              f"{self.boredom_decay}, {self.boredom_keep}")
        return self


@dataclasses.dataclass
class ListenerState:
    """The hidden state of B listeners inside their sessions (all arrays [B, ...]).

    `listener`, `context` and `mood` form the episode's hidden key; `taste`, `streak`,
    `position`, `satiety`, `centroid` and `boredom` evolve as tracks are played.
    `satiety` is None until the first listen of a world with satiation (read as zeros);
    `centroid` and `boredom` are None in a world without boredom (and `centroid` until
    the first listen).
    """

    listener: np.ndarray  # int [B]
    context: np.ndarray   # int [B] code in CONTEXT_TYPES
    mood: np.ndarray      # float [B, D] unit vectors
    taste: np.ndarray     # float [B, D] unit vectors, the current taste state
    streak: np.ndarray    # int [B] consecutive skips so far
    position: np.ndarray  # int [B] 1-based position of the next track
    satiety: Optional[np.ndarray] = None  # float [B, D] decayed sum of listened latents
    centroid: Optional[np.ndarray] = None  # float [B, D] unit centroid of recent listens
    boredom: Optional[np.ndarray] = None   # float [B] decayed sum of redundancies

    def _map(self, fn) -> "ListenerState":
        return ListenerState(*(None if getattr(self, f.name) is None else fn(getattr(self, f.name))
                               for f in dataclasses.fields(self)))

    def copy(self) -> "ListenerState":
        return self._map(np.array)

    def take(self, idx: np.ndarray) -> "ListenerState":
        return self._map(lambda a: a[idx])

    @property
    def batch_size(self) -> int:
        return len(self.listener)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _uuid(rng: np.random.Generator, n: int) -> list:
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    return [str(uuid.UUID(bytes=r.tobytes())) for r in raw]


class SyntheticWorld:
    """Tracks, listeners and their hidden response model, built from a seed.

    Args:
      config: a `WorldConfig`; default-constructed (gin-configurable) when None.
    """

    def __init__(self, config: Optional[WorldConfig] = None):
        self.config = (config or WorldConfig()).validate()
        c = self.config
        rng = np.random.default_rng([c.seed, 1])
        D = c.latent_dim
        # Genres: centroids and Zipf-like sizes.
        self.genre_centroids = _unit(rng.normal(size=(c.num_genres, D)))
        genre_w = 1.0 / np.arange(1, c.num_genres + 1) ** 0.7
        self.track_genre = rng.choice(c.num_genres, size=c.num_tracks, p=genre_w / genre_w.sum())
        self.track_latent = _unit(self.genre_centroids[self.track_genre]
                                  + 0.55 * rng.normal(size=(c.num_tracks, D)))
        self.track_popularity = rng.normal(size=c.num_tracks)
        self.track_ids = np.array(["t_" + u for u in _uuid(rng, c.num_tracks)], dtype=object)
        self._make_track_features(rng)
        # Listeners: taste = mix of one or two genres + personal noise.
        g1 = rng.choice(c.num_genres, size=c.num_listeners, p=genre_w / genre_w.sum())
        g2 = rng.choice(c.num_genres, size=c.num_listeners)
        mix = rng.uniform(0.0, 0.5, size=(c.num_listeners, 1))
        self.listener_taste = _unit((1 - mix) * self.genre_centroids[g1]
                                    + mix * self.genre_centroids[g2]
                                    + 0.35 * rng.normal(size=(c.num_listeners, D)))
        self.listener_bias = c.listener_bias_sd * rng.normal(size=c.num_listeners)
        self.listener_premium = rng.random(c.num_listeners) < 0.81
        self.context_bias = np.asarray(c.context_bias, dtype=np.float64)

    # ------------------------------------------------------------------ tracks
    def _make_track_features(self, rng: np.random.Generator) -> None:
        c = self.config
        T, D = c.num_tracks, c.latent_dim
        z = self.track_latent
        mix = rng.normal(size=(D, 12)) * 0.9
        raw = z @ mix + 0.35 * rng.normal(size=(T, 12))
        sig = _sigmoid(raw)
        f: Dict[str, np.ndarray] = {}
        f["acousticness"] = sig[:, 0] ** 1.5
        f["energy"] = np.clip(1.0 - 0.7 * f["acousticness"] + 0.3 * sig[:, 1] - 0.15, 0, 1)
        f["danceability"] = np.clip(0.5 * sig[:, 2] + 0.4 * f["energy"], 0, 1)
        f["beat_strength"] = np.clip(0.6 * f["danceability"] + 0.3 * sig[:, 3], 0, 1)
        f["bounciness"] = np.clip(0.5 * f["beat_strength"] + 0.4 * sig[:, 4], 0, 1)
        f["valence"] = sig[:, 5]
        f["liveness"] = np.clip(0.05 + 0.6 * sig[:, 6] ** 3, 0, 1)
        f["speechiness"] = np.clip(0.02 + 0.5 * sig[:, 7] ** 4, 0, 1)
        f["instrumentalness"] = sig[:, 8] ** 3
        f["mechanism"] = np.clip(0.7 * (1 - f["acousticness"]) + 0.3 * sig[:, 9], 0, 1)
        f["organism"] = np.clip(0.7 * f["acousticness"] + 0.3 * sig[:, 10], 0, 1)
        f["flatness"] = 0.85 + 0.2 * sig[:, 11]
        f["dyn_range_mean"] = 4.0 + 8.0 * (1 - f["energy"]) + rng.gamma(2.0, 1.0, T)
        f["loudness"] = np.clip(-25.0 + 20.0 * f["energy"] + rng.normal(0, 2.0, T), -60, 0)
        f["tempo"] = np.clip(70 + 70 * f["danceability"] + 25 * rng.normal(size=T), 40, 220)
        f["duration"] = np.clip(np.exp(rng.normal(np.log(215.0), 0.3, T)), 30, 1200)
        f["release_year"] = np.clip(2018 - np.floor(rng.exponential(9.0, T)), 1950, 2018).astype(np.int64)
        f["us_popularity_estimate"] = 90.0 + 9.999 * _sigmoid(1.6 * self.track_popularity)
        f["key"] = rng.integers(0, 12, T)
        f["time_signature"] = rng.choice([3, 4, 5], size=T, p=[0.08, 0.88, 0.04])
        f["mode"] = np.where(f["valence"] + 0.2 * rng.normal(size=T) > 0.45, "major", "minor")
        proj = rng.normal(size=(D, 8)) / np.sqrt(D) * 1.5
        av = np.tanh(z @ proj + 0.1 * rng.normal(size=(T, 8)))
        for i, name in enumerate(ACOUSTIC_VECTOR_COLUMNS):
            f[name] = av[:, i]
        self.track_features = f

    def track_table(self) -> pa.Table:
        """The MSSD track-features table of this world."""
        cols = {"track_id": pa.array(self.track_ids.tolist(), pa.string())}
        for spec in TRACK_COLUMNS[1:]:
            v = self.track_features[spec.name]
            if spec.kind == "float":
                v = np.round(v.astype(np.float64), 6)
            cols[spec.name] = pa.array(v, spec.arrow_type)
        return pa.table([cols[s.name] for s in TRACK_COLUMNS], schema=TRACK_SCHEMA)

    # ------------------------------------------------------------------ hidden truth
    def new_sessions(self, rng: np.random.Generator, n: int,
                     listeners: Optional[np.ndarray] = None,
                     contexts: Optional[np.ndarray] = None) -> ListenerState:
        """Starts n sessions: draws listeners, contexts and session moods."""
        c = self.config
        if listeners is None:
            listeners = rng.integers(0, c.num_listeners, n)
        if contexts is None:
            contexts = rng.choice(len(CONTEXT_TYPES), size=n, p=np.asarray(CONTEXT_SHARES) / sum(CONTEXT_SHARES))
        mood = _unit(rng.normal(size=(n, c.latent_dim)))
        taste = _unit(self.listener_taste[listeners] + c.mood_weight * mood)
        return ListenerState(np.asarray(listeners), np.asarray(contexts), mood, taste,
                             np.zeros(n, np.int64), np.ones(n, np.int64))

    def listen_logit(self, state: ListenerState, tracks: np.ndarray) -> np.ndarray:
        """Logit of P(listen) if `tracks` [B, K] were played next (each one alone)."""
        c = self.config
        tracks = np.asarray(tracks)
        sim = np.einsum("bd,bkd->bk", state.taste, self.track_latent[tracks])
        if c.position_logit:
            table = np.asarray(c.position_logit, np.float64)
            fat = -table[np.minimum(state.position, len(table)) - 1][:, None]
        else:
            pos = state.position.astype(np.float64)[:, None]
            fat = c.fatigue * (1.0 - np.exp(-(pos - 1.0) / c.fatigue_scale))
        streak = np.minimum(state.streak, c.max_streak)[:, None]
        logit = (c.base_logit + c.taste_weight * sim
                 + c.popularity_weight * self.track_popularity[tracks]
                 + self.listener_bias[state.listener][:, None]
                 + self.context_bias[state.context][:, None]
                 - fat - c.streak_penalty * streak)
        if c.satiation_weight and state.satiety is not None:
            sated = np.einsum("bd,bkd->bk", state.satiety, self.track_latent[tracks])
            logit = logit - c.satiation_weight * np.maximum(sated, 0.0)
        return logit

    def listen_prob(self, state: ListenerState, tracks: np.ndarray) -> np.ndarray:
        """Ground-truth P(listen) [B, K] for each candidate track as the next play."""
        return _sigmoid(self.listen_logit(state, tracks))

    def advance(self, state: ListenerState, tracks: np.ndarray, listened: np.ndarray) -> ListenerState:
        """The state after each listener heard `tracks` [B] and listened (or skipped)."""
        c = self.config
        listened = np.asarray(listened, bool)
        z = self.track_latent[np.asarray(tracks)]
        pull = (c.drift_listen * listened)[:, None] * z
        taste = _unit(state.taste + pull + c.drift_mood * state.mood)
        streak = np.where(listened, 0, state.streak + 1)
        satiety = None
        if c.satiation_weight:
            before = 0.0 if state.satiety is None else state.satiety
            satiety = c.satiation_decay * before + listened[:, None] * z
        centroid, boredom = self._advance_boredom(state, z, listened)
        return ListenerState(state.listener, state.context, state.mood, taste, streak,
                             state.position + 1, satiety, centroid, boredom)

    def _advance_boredom(self, state: ListenerState, z: np.ndarray, listened: np.ndarray):
        """(centroid, boredom) after one track; (None, None) in a world without boredom.

        A listen adds its redundancy with the centroid of recent listens (0 for the first
        listen) and pulls the centroid towards itself; a skip adds nothing and leaves the
        centroid; boredom decays every track."""
        c = self.config
        if not c.boredom_weight:
            return None, None
        B = len(listened)
        b0 = np.zeros(B) if state.boredom is None else state.boredom
        if state.centroid is None:
            c0, has = np.zeros_like(z), np.zeros(B, bool)
        else:
            c0 = state.centroid
            has = np.linalg.norm(c0, axis=1) > 0
        rho = np.where(listened & has, np.maximum(np.einsum("bd,bd->b", z, c0), 0.0), 0.0)
        moved = np.where(has[:, None], _unit(c.boredom_keep * c0 + (1 - c.boredom_keep) * z), z)
        centroid = np.where(listened[:, None], moved, c0)
        return centroid, c.boredom_decay * b0 + rho

    def leave_prob(self, state: ListenerState, cap: bool = True) -> np.ndarray:
        """P(the listener ends the session now), given the state after a track.

        With `cap`, sessions end at max_length as MSSD's logs do; without it only the
        skip-driven hazard acts (what a simulator of longer episodes wants)."""
        c = self.config
        done = state.position - 1  # tracks heard so far
        logit = c.leave_base + c.leave_streak * state.streak
        if c.boredom_weight and state.boredom is not None:
            logit = logit + c.boredom_weight * (state.boredom - c.boredom_ref)
        p = _sigmoid(logit)
        p = np.where(done < c.min_length, 0.0, p)
        return np.where(cap & (done >= c.max_length), 1.0, p)

    # ------------------------------------------------------------------ logging policy
    def logging_pools(self, rng: np.random.Generator, state: ListenerState) -> np.ndarray:
        """The logging policy: per session, an ordered line-up of `pool_size` tracks.

        Each context scores the catalogue its own way (collection: the listener's own
        taste; personalised: a noisy estimate of it; radio: neighbours of a seed track;
        catalog: one tight cluster, like an album; editorial: a genre by popularity;
        charts: popularity), then draws the order by Gumbel-top-k (Plackett-Luce).
        """
        c = self.config
        B = state.batch_size
        z = self.track_latent
        taste0 = self.listener_taste[state.listener]
        scores = np.empty((B, c.num_tracks))
        ctx = state.context
        for code, name in enumerate(CONTEXT_TYPES):
            m = ctx == code
            if not m.any():
                continue
            k = int(m.sum())
            if name == "user_collection":
                s = 7.0 * taste0[m] @ z.T + 0.4 * self.track_popularity
            elif name == "personalized_playlist":
                est = _unit(taste0[m] + 0.6 * rng.normal(size=(k, c.latent_dim)))
                s = 6.0 * est @ z.T + 0.3 * self.track_popularity
            elif name == "radio":
                seed_centre = _unit(taste0[m] + 0.7 * rng.normal(size=(k, c.latent_dim)))
                s = 10.0 * seed_centre @ z.T
            elif name == "catalog":
                centre = _unit(taste0[m] + 1.0 * rng.normal(size=(k, c.latent_dim)))
                s = 16.0 * centre @ z.T
            elif name == "editorial_playlist":
                genre = rng.integers(0, c.num_genres, k)
                s = np.where(self.track_genre[None, :] == genre[:, None], 0.0, -8.0) \
                    + 1.0 * self.track_popularity
            else:  # charts
                s = np.broadcast_to(2.5 * self.track_popularity, (k, c.num_tracks))
            scores[m] = s
        gumbel = rng.gumbel(size=scores.shape)
        keyed = scores + gumbel
        top = np.argpartition(-keyed, c.pool_size - 1, axis=1)[:, :c.pool_size]
        order = np.argsort(-np.take_along_axis(keyed, top, axis=1), axis=1)
        return np.take_along_axis(top, order, axis=1)

    # ------------------------------------------------------------------ session log
    def simulate_sessions(self, rng: np.random.Generator, n: int) -> Dict[str, np.ndarray]:
        """Plays n logged sessions: the logging policy picks, the hidden truth responds.

        Returns a dict of padded [n, max_length] arrays (tracks, listened, prob) and [n]
        arrays (length, listener, context, shuffle, mood).
        """
        c = self.config
        state = self.new_sessions(rng, n)
        pools = self.logging_pools(rng, state)
        shuffle = rng.random(n) < 0.311
        # Shuffled sessions play a random order of the line-up instead of its ranking.
        shuffled = np.argsort(rng.random(pools.shape), axis=1)
        pools = np.where(shuffle[:, None], np.take_along_axis(pools, shuffled, axis=1), pools)
        L = c.max_length
        tracks = pools[:, :L]
        listened = np.zeros((n, L), bool)
        prob = np.zeros((n, L))
        length = np.full(n, L, np.int64)
        alive = np.ones(n, bool)
        start = state.copy()
        for t in range(L):
            p = self.listen_prob(state, tracks[:, t:t + 1])[:, 0]
            lis = rng.random(n) < p
            prob[:, t], listened[:, t] = p, lis
            state = self.advance(state, tracks[:, t], lis)
            leave = (rng.random(n) < self.leave_prob(state)) & alive
            length[leave] = t + 1
            alive &= ~leave
        return {"tracks": tracks, "listened": listened, "prob": prob, "length": length,
                "listener": start.listener, "context": start.context, "mood": start.mood,
                "shuffle": shuffle}

    def session_log_table(self, sim: Dict[str, np.ndarray], rng: np.random.Generator,
                          session_prefix: str = "0") -> Tuple[pa.Table, list]:
        """Turns simulated sessions into MSSD session-log rows (and their session ids)."""
        n, L = sim["tracks"].shape
        length = sim["length"]
        mask = np.arange(L)[None, :] < length[:, None]
        rows = int(mask.sum())
        sid = np.array([f"{session_prefix}_{u}" for u in _uuid(rng, n)], dtype=object)
        sess = np.repeat(np.arange(n), length)
        pos = (np.nonzero(mask)[1] + 1).astype(np.int64)
        lis = sim["listened"][mask]
        skip2 = ~lis
        skip1 = skip2 & (rng.random(rows) < P_SKIP1_GIVEN_SKIP2)
        skip3 = skip2 | (rng.random(rows) < P_SKIP3_GIVEN_LISTEN)
        not_skipped = ~skip3 & (rng.random(rows) < P_NOTSKIPPED_GIVEN_FULL)
        first = pos == 1
        no_pause = np.where(first, rng.random(rows) < 0.3, rng.random(rows) < 0.8)
        long_p = ~no_pause & (rng.random(rows) < np.where(first, 0.75, 0.5))
        short_p = ~no_pause & ~long_p
        ctx_switch = (~first) & (rng.random(rows) < 0.04)
        hour = rng.choice(24, size=n, p=_HOUR_WEIGHTS)[sess]
        day = np.datetime64("2018-07-08") + rng.choice(8, size=n, p=_DAY_WEIGHTS)
        date = day[sess]
        premium = self.listener_premium[sim["listener"]][sess]
        shuffle = sim["shuffle"][sess]
        ctx = np.asarray(CONTEXT_TYPES, dtype=object)[sim["context"][sess]]
        last = pos == length[sess]
        reason_end = np.where(skip2, np.where(rng.random(rows) < 0.86, "fwdbtn", "backbtn"),
                              "trackdone").astype(object)
        reason_end = np.where(last & (rng.random(rows) < 0.5),
                              np.where(rng.random(rows) < 0.95, "endplay", "logout"),
                              reason_end)
        prev_end = np.concatenate([[""], reason_end[:-1]]).astype(object)
        first_reason = rng.choice(["clickrow", "appload", "playbtn", "trackdone", "fwdbtn"],
                                  size=rows, p=[0.45, 0.2, 0.1, 0.15, 0.1])
        reason_start = np.where(first, first_reason, prev_end)
        reason_start = np.where(reason_start == "endplay", "trackdone", reason_start)
        reason_start = np.where(reason_start == "logout", "appload", reason_start)
        cols = {
            "session_id": pa.array(sid[sess].tolist(), pa.string()),
            "session_position": pa.array(pos),
            "session_length": pa.array(length[sess]),
            "track_id_clean": pa.array(self.track_ids[sim["tracks"][mask]].tolist(), pa.string()),
            "skip_1": pa.array(skip1), "skip_2": pa.array(skip2), "skip_3": pa.array(skip3),
            "not_skipped": pa.array(not_skipped),
            "context_switch": pa.array(ctx_switch.astype(np.int64)),
            "no_pause_before_play": pa.array(no_pause.astype(np.int64)),
            "short_pause_before_play": pa.array(short_p.astype(np.int64)),
            "long_pause_before_play": pa.array(long_p.astype(np.int64)),
            "hist_user_behavior_n_seekfwd": pa.array(rng.poisson(0.03, rows).astype(np.int64)),
            "hist_user_behavior_n_seekback": pa.array(rng.poisson(0.035, rows).astype(np.int64)),
            "hist_user_behavior_is_shuffle": pa.array(shuffle),
            "hour_of_day": pa.array(hour.astype(np.int64)),
            "date": pa.array(date),
            "premium": pa.array(premium),
            "context_type": pa.array(ctx.tolist(), pa.string()),
            "hist_user_behavior_reason_start": pa.array(reason_start.tolist(), pa.string()),
            "hist_user_behavior_reason_end": pa.array(reason_end.tolist(), pa.string()),
        }
        table = pa.table([cols[c.name] for c in SESSION_LOG_COLUMNS], schema=SESSION_LOG_SCHEMA)
        return table, sid.tolist()

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
        world = cls.__new__(cls)
        world.config = WorldConfig.from_json(cfg)
        arrays = np.load(os.path.join(directory, "world.npz"))
        world.track_features = {}
        for k in arrays.files:
            if k.startswith("feat_"):
                world.track_features[k[5:]] = arrays[k]
            else:
                setattr(world, k, arrays[k])
        world.track_ids = world.track_ids.astype(object)
        world.context_bias = np.asarray(world.config.context_bias, dtype=np.float64)
        return world


_HOUR_WEIGHTS = np.array([2, 1.5, 1, .8, .6, .6, 1, 2, 3, 4, 4.7, 5.2, 5.7, 6.2, 7.3, 6.3,
                          6.3, 7.5, 5.6, 6.1, 4.7, 7.4, 5, 3.5])
_HOUR_WEIGHTS = _HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()
_DAY_WEIGHTS = np.array([0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.29, 0.65])
_DAY_WEIGHTS = _DAY_WEIGHTS / _DAY_WEIGHTS.sum()


# ---------------------------------------------------------------------- writing files

def _mssd_csv_table(table: pa.Table) -> pa.Table:
    """Booleans as MSSD writes them (True/False), everything else unchanged."""
    cols = []
    for field, col in zip(table.schema, table.columns):
        if pa.types.is_boolean(field.type):
            col = pc.if_else(col, "True", "False")
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def write_table(table: pa.Table, path: str) -> None:
    """Writes an MSSD table atomically as .csv, .csv.gz or .parquet (by suffix)."""
    low = path.lower()
    if low.endswith(".parquet"):
        with atomic_file(path, "wb") as f:
            pq.write_table(table, f)
        return
    out = _mssd_csv_table(table)
    opts = pacsv.WriteOptions(include_header=False, quoting_style="none")
    header = (",".join(table.column_names) + "\n").encode()
    with atomic_file(path, "wb") as f:
        if low.endswith(".gz"):
            with gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as gz:
                gz.write(header)
                pacsv.write_csv(out, gz, write_options=opts)
        else:
            f.write(header)
            pacsv.write_csv(out, f, write_options=opts)


SUFFIXES = {"csv": ".csv", "csv.gz": ".csv.gz", "parquet": ".parquet"}


@gin.configurable
def generate(out_dir: str, num_sessions: int = 10_000, seed: int = 0,
             config: Optional[WorldConfig] = None, file_format: str = "csv",
             num_shards: int = 1, block_sessions: int = 4096) -> Dict[str, str]:
    """Builds a world and writes its logs, track table and hidden truth under `out_dir`.

    Layout: log/ (session-log shards), tracks/tracks.<ext> (track table), world/ (hidden
    arrays and config), hidden_sessions.parquet (per logged session: listener, context,
    mood, i.e. the hidden key ground truth needs).  Same arguments, same bytes.

    Returns:
      Paths: {'log': ..., 'tracks': ..., 'world': ..., 'hidden': ...}.
    """
    if file_format not in SUFFIXES:
        raise ConfigError(f"file_format must be one of {sorted(SUFFIXES)}, got {file_format!r}")
    if num_sessions < 1 or num_shards < 1:
        raise ConfigError("num_sessions and num_shards must be positive")
    config = config or WorldConfig(seed=seed)
    if config.seed != seed:
        config = dataclasses.replace(config, seed=seed)
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
    with atomic_dir(paths["log"]) as log_tmp:
        for shard in range(num_shards):
            n_shard = min(per_shard, num_sessions - shard * per_shard)
            if n_shard <= 0:
                break
            rng = np.random.default_rng([seed, 7, shard])
            tables = []
            for start in range(0, n_shard, block_sessions):
                n = min(block_sessions, n_shard - start)
                sim = world.simulate_sessions(rng, n)
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
    return paths


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
    args = parser.parse_args(argv)
    overrides = {}
    if args.tracks:
        overrides["num_tracks"] = args.tracks
    if args.listeners:
        overrides["num_listeners"] = args.listeners
    try:
        cfg = WorldConfig(seed=args.seed, **overrides)
        paths = generate(args.out, args.sessions, args.seed, cfg, args.format, args.shards)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.sessions} sessions: log {paths['log']}, tracks {paths['tracks']}, "
          f"hidden truth {paths['world']} + {paths['hidden']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
