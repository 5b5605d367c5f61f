"""Calibrates the default synthetic world against MSSD and checks its gates (not a test).

Fits, by damped fixed-point iteration on `SyntheticWorld.simulate_sessions`, the
per-position listen-logit offsets (`WorldConfig.position_logit`, positions 1-10) to
MSSD's skip_2 by position, and the boredom reference level (`boredom_ref`) to MSSD's
share of sessions at the 20-track cap; then prints the calibration gates of the
long-horizon issue on `--sessions` fresh sessions:

    skip_2 within 1 point of 51.7%; sessions at length 20 within 2 points of 51%;
    skip_2 at each position 1-10 within 1.5 points of MSSD's.

    python benchmarks/calibrate_world.py [--fit] [--sessions=20000]
        [--gin_bindings="WorldConfig.boredom_weight = 0.0"]

Without --fit it only checks the world the gin bindings describe (the default world
when none).  MSSD figures: ../shared/data/mssd_sample/README.md (100,000-row sample).
"""

import dataclasses

import spotisim  # noqa: F401  (first: quiets the stack at import)
from absl import flags
import gin
import numpy as np

from spotisim import cli
from spotisim.data.synthetic import SyntheticWorld, WorldConfig

MSSD_SKIP_BY_POSITION = np.array([38.1, 47.1, 50.6, 53.0, 53.9, 54.3, 54.6, 53.9, 52.9, 51.5])
MSSD_SKIP = 51.7
MSSD_AT_CAP = 51.0


def log_statistics(config: WorldConfig, sessions: int, seed: int = 0) -> dict:
    """skip_2 (%), skip_2 by position 1-10 (%), share at length 20 (%), the empirical
    hazard after tracks 10-19 (%), from `sessions` logged sessions of `config`."""
    world = SyntheticWorld(config)
    rng = np.random.default_rng([seed, 7, 0])  # the generator's own stream for shard 0
    sims = [world.simulate_sessions(rng, min(4096, sessions - s))
            for s in range(0, sessions, 4096)]
    length = np.concatenate([s["length"] for s in sims])
    listened = np.concatenate([s["listened"] for s in sims])
    heard = np.arange(listened.shape[1])[None, :] < length[:, None]
    return {"skip": 100 * (1 - listened[heard].mean()),
            "by_position": 100 * (1 - listened[:, :10].mean(0)),
            "at_cap": 100 * (length == config.max_length).mean(),
            "hazard": np.array([100 * (length == t).sum() / max((length >= t).sum(), 1)
                                for t in range(10, 20)])}


def gates(stats: dict) -> dict:
    """Each gate's measured deviation and whether it holds."""
    dev_pos = stats["by_position"] - MSSD_SKIP_BY_POSITION
    return {"skip_2": (stats["skip"] - MSSD_SKIP, abs(stats["skip"] - MSSD_SKIP) <= 1.0),
            "at_cap": (stats["at_cap"] - MSSD_AT_CAP, abs(stats["at_cap"] - MSSD_AT_CAP) <= 2.0),
            "by_position": (dev_pos[np.argmax(np.abs(dev_pos))],
                            bool(np.abs(dev_pos).max() <= 1.5))}


def _logit(p):
    return np.log(p / (1 - p))


def fit(config: WorldConfig, sessions: int, rounds: int = 8) -> WorldConfig:
    """Per-position offsets and boredom_ref, by damped fixed-point steps."""
    pos = np.arange(1, 11)
    offsets = np.asarray(config.position_logit, np.float64) if config.position_logit else \
        -config.fatigue * (1 - np.exp(-(pos - 1.0) / config.fatigue_scale))
    ref = config.boredom_ref
    for r in range(rounds):
        cfg = dataclasses.replace(config, position_logit=tuple(np.round(offsets, 3)),
                                  boredom_ref=round(float(ref), 3))
        s = log_statistics(cfg, sessions, seed=100 + r)
        listen_obs = 1 - s["by_position"] / 100
        listen_target = 1 - MSSD_SKIP_BY_POSITION / 100
        offsets = offsets + 0.8 * (_logit(listen_target) - _logit(listen_obs))
        if cfg.boredom_weight:  # more at the cap -> leaving too rare -> lower the reference
            at_cap = np.clip(s["at_cap"], 0.5, 99.5) / 100
            ref = ref + 0.8 * (_logit(MSSD_AT_CAP / 100) - _logit(at_cap)) / cfg.boredom_weight
        print(f"round {r}: skip {s['skip']:.2f}  at cap {s['at_cap']:.1f}  max position "
              f"deviation {np.abs(s['by_position'] - MSSD_SKIP_BY_POSITION).max():.2f}",
              flush=True)
    return dataclasses.replace(config, position_logit=tuple(np.round(offsets, 3)),
                               boredom_ref=round(float(ref), 3))


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_bool('fit', False, "fit the offsets and boredom_ref before the check")
    flags.DEFINE_integer('sessions', 20000, "fresh sessions simulated per check")
    flags.DEFINE_multi_string('gin_bindings', [], "the world checked (WorldConfig bindings)")


def main():
    args = FLAGS
    gin.parse_config(args.gin_bindings)
    config = WorldConfig().validate()
    if args.fit:
        config = fit(config, args.sessions)
        print(f"position_logit = {config.position_logit}\nboredom_ref = {config.boredom_ref}")
    s = log_statistics(config, args.sessions)
    print(f"skip_2 by position 1-10: {np.round(s['by_position'], 1).tolist()} "
          f"(MSSD {MSSD_SKIP_BY_POSITION.tolist()})")
    print(f"hazard after tracks 10-19 (%): {np.round(s['hazard'], 1).tolist()}")
    for name, (dev, ok) in gates(s).items():
        print(f"gate {name:<12} deviation {dev:+.2f} points  {'holds' if ok else 'FAILS'}")
    print(f"skip_2 {s['skip']:.2f}% (MSSD {MSSD_SKIP}), at length 20 {s['at_cap']:.1f}% "
          f"(MSSD {MSSD_AT_CAP}), {args.sessions} sessions")
    return {"statistics": s, "gates": {name: {"deviation": float(dev), "holds": bool(ok)}
                                       for name, (dev, ok) in gates(s).items()}}


if __name__ == "__main__":
    cli.benchmark('calibrate_world', define_flags, main)
