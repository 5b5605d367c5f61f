"""Policies scripted on a `PlaylistEnvironment` directly (no TF-Agents): greedy on a
user model, the redundancy-aware greedy (on the truth's hidden latents or on a learned
model's observable redundancy), and a rollout planner over forked lanes; `play`, which
scores each lane's first episode on shared starts; and the paired gain with its bootstrap
interval.  The headroom benchmarks (`benchmarks/headroom.py`, `horizon_dependence.py`,
`transfer_gap.py`, `rollout_headroom.py`) share them, so they live here, tested
(tests/experiments/test_scripted_policies.py), not in one script the others import.
"""

from __future__ import annotations

import gin
import numpy as np
from absl import flags

from agents.baselines import redundancy_penalised_logit
from experiments.run import CONFIG_DIR
from spotisim.data.datasets import load_dataset
from spotisim.embeddings import build_embeddings
from spotisim.gin_utils import parse_gin
from user_models.leave_features import boredom_features


# --------------------------------------------------------------------------- playing

def play(env, policy):
    """Resets `env` and plays until every lane's first episode ended.

    Returns (listens [B], slates [B], left [B]) of each lane's first episode."""
    env.reset()
    B = env.batch_size
    listens, slates = np.zeros(B), np.zeros(B)
    left = np.zeros(B, bool)
    live = np.ones(B, bool)
    while live.any():
        res = env.step(policy(env))
        listens += np.where(live, res.reward, 0.0)
        slates += live
        left |= live & res.done & res.terminal
        live &= ~res.done
    return listens, slates, left


def _masked(scores, env):
    return np.where(env.available(), scores, -np.inf)


def greedy(model):
    """The K available candidates of highest P(listen); `policy.scores` are those
    P(listen), masked (what `rollout_planner` draws its alternatives from)."""
    def scores(env):
        return _masked(model.score_candidates(env.history(), env.candidate_tracks()), env)

    def policy(env):
        return np.argsort(-scores(env), axis=1, kind="stable")[:, :env.slate_size]
    policy.scores = scores
    return policy


def truth_redundancy(truth):
    """Redundancy on the hidden track latents: max(0, z_c . centroid of recent listens),
    the centroid kept as the world's boredom recursion keeps it (also computed in a
    world without boredom, where avoiding it buys nothing: the control)."""
    cfg = truth.world.config
    latents = truth.world.track_latent

    def redundancy(env):
        h = env.history()
        _, _, centroid = boredom_features(h.tracks, h.responses, latents,
                                          cfg.boredom_decay, cfg.boredom_keep)
        return np.maximum(np.einsum("bcd,bd->bc", latents[env.candidate_tracks()], centroid), 0.0)
    return redundancy


def learned_redundancy(model):
    def redundancy(env):
        return model.leave_hazard.redundancy(env.history(), env.candidate_tracks())
    return redundancy


def redundancy_greedy(model, redundancy, lam):
    def scores(env):
        p = model.score_candidates(env.history(), env.candidate_tracks())
        return _masked(redundancy_penalised_logit(p, lambda: redundancy(env), lam), env)

    def policy(env):
        return np.argsort(-scores(env), axis=1, kind="stable")[:, :env.slate_size]
    policy.scores = scores
    return policy


def rollout_planner(base, alternatives, rollouts, horizon, seed=0):
    """One step of policy improvement over `base` (a greedy or a redundancy greedy: a
    policy with `.scores`), leaving included: per step, `alternatives` slates (base's and
    draws from its top 2K + 2), each valued by `rollouts` futures of `horizon` slates
    under `base` on forked lanes; the best is played."""
    rng = np.random.default_rng(seed)
    counter = [0]

    def policy(env):
        B, K = env.batch_size, env.slate_size
        s = base.scores(env)
        order = np.argsort(-s, axis=1, kind="stable")
        top = order[:, :2 * K + 2]
        alts = [order[:, :K]]
        for _ in range(alternatives - 1):
            pick = np.argsort(rng.random(top.shape), axis=1)[:, :K]
            alts.append(np.take_along_axis(top, pick, 1))
        alts = np.stack(alts, 1)                                      # [B, M, K]
        M = alternatives
        lanes = np.repeat(np.arange(B), M * rollouts)
        counter[0] += 1
        sim = env.fork(lanes, seed=1000 * counter[0] + seed)
        value = np.zeros(len(lanes))
        alive = np.ones(len(lanes), bool)
        res = sim.step(np.repeat(alts.reshape(B * M, K), rollouts, axis=0))
        value += res.reward
        alive &= ~res.done
        for _ in range(horizon - 1):
            if not alive.any():
                break
            res = sim.step(base(sim))
            value += np.where(alive, res.reward, 0.0)
            alive &= ~res.done
        v = value.reshape(B, M, rollouts).mean(-1)
        return alts[np.arange(B), np.argmax(v, 1)]

    return policy


# --------------------------------------------------------------------------- statistics

def paired_gain(oracle, base, resamples=2000, seed=0):
    """Relative gain mean(oracle) / mean(base) - 1 in %, with a 95% paired-bootstrap
    interval (episodes resampled together, so the pairing is kept)."""
    oracle, base = np.asarray(oracle, float), np.asarray(base, float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(base), size=(resamples, len(base)))
    boot = oracle[idx].mean(1) / base[idx].mean(1) - 1
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return 100 * (oracle.mean() / base.mean() - 1), 100 * lo, 100 * hi


# --------------------------------------------------------------------------- set-up

#: The oracles read the hidden state, not the agent's observation: what the agent's
#: config adds to it is turned off (the truth's environment cannot observe leave risk).
SCRIPTED_OBSERVATION = ["PlaylistEnvironment.observe_leave_risk = False",
                        "PlaylistEnvironment.observe_scores = False",
                        "PlaylistEnvironment.score_features = False"]


def load(gin_files, bindings):
    """The data and embeddings of an experiment's config (its gin files, then
    `bindings`), with the agent's observation extras off (`SCRIPTED_OBSERVATION`)."""
    gin.clear_config()
    parse_gin(gin_files, SCRIPTED_OBSERVATION + list(bindings), [CONFIG_DIR])
    data = load_dataset()
    emb = build_embeddings(data.train, unlabelled=data.log).aligned_to(data.log.catalog)
    return data, emb


def define_planner_flags(episodes: int, rollouts: int, horizon: int) -> None:
    """The flags every planner benchmark shares (this one and rollout_headroom.py)."""
    flags.DEFINE_integer("episodes", episodes, "episode starts scored (one lane each)")
    flags.DEFINE_integer("alternatives", 6, "candidate slates the rollout planner tries "
                         "per step (1: no planner)")
    flags.DEFINE_integer("rollouts", rollouts, "simulated futures per candidate slate")
    flags.DEFINE_integer("horizon", horizon, "slates of each simulated future")
    flags.DEFINE_multi_string("gin_file", [], "the experiment whose world and environment "
                              "to use")
    flags.DEFINE_multi_string("gin_bindings", [], "gin bindings over those files (the "
                              "data, say)")
