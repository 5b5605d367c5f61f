"""`WorldConfig`: every knob of the synthetic world, validated, saved with the world."""

from __future__ import annotations

import dataclasses
from typing import Tuple

import gin

from spotisim.data.schema import CONTEXT_TYPES
from spotisim.errors import ConfigError

# MSSD's context mix (from the 100k-row public sample).
CONTEXT_SHARES = (0.405, 0.227, 0.208, 0.127, 0.019, 0.015)


@gin.configurable
@dataclasses.dataclass(frozen=True)
class WorldConfig:
    """Every knob of the synthetic world.  Defaults are calibrated so the logs look like
    MSSD (skip_2 ~52%, 38% at position 1 rising to ~53% by position 5, half the sessions
    at the cap of 20); see docs/data.md for the side-by-side `inspect` output.

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
      listener_days / listener_activity_sd / taste_drift: listeners who return
        (0 days = the world before listener ids, byte for byte: each logged session
        draws its listener uniformly and the log does not say who listened).  With N
        days, the log spans N days and writes listener_id; each listener's share of the
        sessions is lognormal with sd `listener_activity_sd` (a heavy tail: a few
        listeners return often, many once or twice), and the listener's taste takes a
        random walk of sd `taste_drift` per day (un-normalised, then unit length), so it
        persists and drifts slowly between sessions.  Within a session everything
        (mood, boredom, leaving) is as before.
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
    # benchmarks/calibrate_world.py --fit (docs/data.md, "Listeners who leave when bored").
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
    listener_days: int = 0
    listener_activity_sd: float = 1.0
    taste_drift: float = 0.0

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
        if self.listener_days < 0 or self.listener_activity_sd < 0 or self.taste_drift < 0:
            raise ConfigError("WorldConfig needs listener_days, listener_activity_sd and "
                              f"taste_drift >= 0, got {self.listener_days}, "
                              f"{self.listener_activity_sd}, {self.taste_drift}")
        return self

    @property
    def returning(self) -> bool:
        """Whether listeners return across days (and the log says who listened)."""
        return self.listener_days > 0
