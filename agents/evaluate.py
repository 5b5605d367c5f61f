"""Run a policy in a simulated environment for a number of whole episodes and summarise
what the listeners did: skip rate, mean episode reward and length, list diversity and
catalogue coverage.  Works for TF policies and Py policies alike."""

from __future__ import annotations

from typing import Dict

import numpy as np
from tf_agents.policies import py_policy, py_tf_eager_policy
from tf_agents.trajectories import time_step as ts

from spotisim.builder import TFAgtPyEnvironment
from spotisim.common_draws import evaluation_draws
from spotisim.termination import END_REASONS
from spotisim.episode_tracker import list_diversity, survival_weights


def logged_continuation(log, history_length: int):
    """What each logged session played after its first `history_length` tracks.

    Returns:
      (tracks [S, L] with -2, never a track, over the history and the padding;
       logged skip flags [S, L]).
    """
    tracks, skipped, _ = log.padded()
    after = np.arange(tracks.shape[1])[None, :] >= history_length
    return np.where(after & (tracks >= 0), tracks, -2), skipped


def replay_hits(keys: np.ndarray, slates: np.ndarray, log, history_length: int):
    """Per recommended track [R, K]: whether the held-out part of its logged session
    played it (counted), and whether that logged play was a skip."""
    rest, skipped = logged_continuation(log, history_length)
    rest_t, rest_s = rest[keys], skipped[keys]                     # [R, L]
    hit = slates[:, :, None] == rest_t[:, None, :]                  # [R, K, L]
    return hit.any(-1), (hit & rest_s[:, None, :]).any(-1)


def replay_skip_rate(keys: np.ndarray, slates: np.ndarray, log, history_length: int):
    """The replay metric of the source texts: a recommended track counts only where the
    held-out part of its logged session actually played it; its skip label is the
    logged one.  `keys` are session indices in `log` (what `LogEpisodeSampler` records).

    Returns:
      (skip rate over the counted recommendations, number counted).
    """
    counted, skips = replay_hits(keys, slates, log, history_length)
    n = int(counted.sum())
    return (float(skips[counted].mean()) if n else float("nan")), n


def logged_track_skip_rate(keys: np.ndarray, slates: np.ndarray, responses: np.ndarray,
                           log, history_length: int):
    """The simulated skip rate of the recommended tracks that the logged continuation
    of the episode's session holds (for the replayed logging policy: its logged part).

    Returns:
      (skip rate under the environment's user model over those tracks, number of them).
    """
    rest = logged_continuation(log, history_length)[0][keys]
    counted = (slates[:, :, None] == rest[:, None, :]).any(-1)
    n = int(counted.sum())
    return (float(1.0 - responses[counted].mean()) if n else float("nan")), n


def load_saved_policy(path: str, env: TFAgtPyEnvironment) -> py_policy.PyPolicy:
    """The SavedModel policy at `path` (a run's policy/, PolicySaver's format) as a py
    policy for the batched TF-Agents py environment `env`, as `run_episodes` plays it."""
    return py_tf_eager_policy.SavedModelPyTFEagerPolicy(
        path, env.time_step_spec(), env.action_spec(), batch_time_steps=False)


def run_episodes(policy, env: TFAgtPyEnvironment, num_episodes: int,
                 diversity_features: np.ndarray = None, max_steps: int = 100_000,
                 replay_log=None, history_length: int = 10) -> Dict[str, float]:
    """Resets `env` (batched, B >= num_episodes lanes) and scores the first episode of
    each of its first `num_episodes` lanes, stepping until all of them have ended.

    Why each lane's first episode: the starts are drawn at reset, before any response,
    and the environment's random stream is restarted from its seed first
    (`restart_rng`), so every policy evaluated on an environment built with the same
    seed, the same one or a new one, plays the *same* episode starts (paired
    comparisons), and long episodes count as much as short ones (counting the first N
    episodes to finish would favour short ones).  The responses are drawn from common
    random numbers (`PlaylistEnvironment.use_keyed_draws`, stream
    `evaluation_draws.stream`): lane i at step t meets the same uniforms under every
    policy and every user model, so paired differences keep only the policies' own.
    In an environment that takes leaving in expectation, an episode's reward is the
    sum of its slates' rewards, each weighted by the chance that the listener was still
    there (`survival_weights`): the same expected reward without the variance of when
    the listener left; its per-track figures (skip rate, length) are then those of the
    trajectory played to its end.
    With `replay_log` (the log the episodes were drawn from), the replay skip rate is
    added: `replay_skip_rate` and `replay_count`.

    Raises:
      ValueError: the environment runs fewer lanes than `num_episodes`.
    """
    if not isinstance(policy, py_policy.PyPolicy):
        policy = py_tf_eager_policy.PyTFEagerPolicy(policy, use_tf_function=True,
                                                    batch_time_steps=False)
    if env.env.batch_size < num_episodes:
        raise ValueError(f"run_episodes needs an environment of at least {num_episodes} "
                         f"lanes (one episode each), got {env.env.batch_size}")
    tracker = env.env.episode_tracker
    tracker.clear()
    if hasattr(env.env, "restart_rng"):
        env.env.restart_rng()
    keyed = hasattr(env.env, "use_keyed_draws")
    if keyed:   # common random numbers: the same luck for every policy on a start
        previous = env.env.use_keyed_draws(evaluation_draws())
    try:
        time_step = env.reset()
        first = env.env.episodes_started - env.env.batch_size   # ids of the reset's episodes
        wanted = np.arange(first, first + num_episodes)          # lane i plays episode first + i
        ended = np.zeros(num_episodes, bool)
        for _ in range(max_steps):
            if ended.all():
                break
            time_step = env.step(policy.action(time_step).action)
            ended |= np.atleast_1d(time_step.step_type)[:num_episodes] == ts.StepType.LAST
    finally:
        if keyed:
            env.env.use_keyed_draws(previous)
    a = tracker.arrays()
    done_eps = np.intersect1d(wanted, a["episode_id"][a["done"]])
    keep = np.isin(a["episode_id"], done_eps)
    ep = a["episode_id"][keep]
    _, inverse = np.unique(ep, return_inverse=True)   # episode order = lane order
    # Leaving in expectation (`PlaylistEnvironment.expected_leaving`): each slate's
    # reward counts with the chance that the listener was still there.
    survival = survival_weights(ep, a["step"][keep], a["stay"][keep])
    rewards = np.bincount(inverse, weights=a["reward"][keep] * survival)
    lengths = np.bincount(inverse)
    heard = a["heard"][keep]
    listened = a["responses"][keep] & heard
    reasons = a["end_reason"][keep][a["done"][keep]]
    out = {
        "episodes": float(len(done_eps)),
        "skip_rate": float(1.0 - a["responses"][keep][heard].mean()),
        "mean_episode_reward": float(rewards.mean()),
        "episode_reward_sd": float(rewards.std()),
        "episode_rewards": rewards.tolist(),   # per start, in lane order: for paired tests
        # Per start too: tracks heard and listened (skip-rate intervals, `self_check`).
        "episode_heard": np.bincount(inverse, weights=heard.sum(1)).astype(int).tolist(),
        "episode_listens": np.bincount(inverse, weights=listened.sum(1)).astype(int).tolist(),
        "mean_episode_length": float(lengths.mean()),
        **{f"episode_length_p{q}": float(np.percentile(lengths, q)) for q in (10, 50, 90)},
        "tracks_heard_per_episode": float(heard.sum() / len(done_eps)),
        **{f"end_{name}_rate": float((reasons == code).mean())
           for code, name in END_REASONS.items()},
        "coverage": float(len(np.unique(a["slate"][keep])) / env.env.embeddings.shape[0]),
    }
    if diversity_features is not None:
        out["diversity"] = float(np.nanmean(list_diversity(diversity_features[a["slate"][keep]])))
    if replay_log is not None:
        counted, skips = replay_hits(a["listener_key"][keep], a["slate"][keep], replay_log,
                                     history_length)
        n = int(counted.sum())
        out["replay_skip_rate"] = float(skips[counted].mean()) if n else float("nan")
        out["replay_count"] = float(n)
        out["episode_replay_counted"] = np.bincount(
            inverse, weights=counted.sum(1)).astype(int).tolist()
        out["episode_replay_skips"] = np.bincount(
            inverse, weights=(skips & counted).sum(1)).astype(int).tolist()
        rate, n = logged_track_skip_rate(a["listener_key"][keep], a["slate"][keep],
                                         a["responses"][keep], replay_log, history_length)
        out["logged_track_skip_rate"], out["logged_track_count"] = rate, float(n)
    return out
