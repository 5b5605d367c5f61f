"""Where a simulator's offline error comes from, per policy.

A policy's offline error is its listens per episode under the learned simulator minus
its listens under the ground truth, on the same starts.  The simulator differs from the
truth in two answers, P(listen) (with the skip cascade inside a slate) and P(leave), so
each policy is also played under two hybrids (`user_models.composite`):

    listen part   = V(simulator's P(listen), truth's leaving) - V(truth)
    leave part    = V(truth's P(listen), simulator's leaving) - V(truth)
    interaction   = error - listen part - leave part

and once more under the truth with the simulator as a shadow, which gives the
simulator's bias along the truth's own episodes: mean P(listen) of the heard tracks at
slate position 1 (no cascade) and at later positions (the cascade reads the positions
before), and mean P(leave) after them, each against the truth's.

Used by `experiments.alignment` (`run_alignment.decompose`), which owns the runs.
"""

from __future__ import annotations

import os
from typing import Callable, Dict, Mapping, Sequence

from spotisim.tables import render_table
from user_models.composite import HybridUserModel, ShadowedUserModel
from user_models.ground_truth import GroundTruthUserModel

ONLINE = "ground_truth"
LISTEN = "listen_from_simulator"
LEAVE = "leave_from_simulator"
SHADOW = "truth_shadowed"


def decomposition_scorers(simulator: str, episodes_match: bool):
    """(name, factory(data, emb)) of the hybrid and shadow responders for `simulator`;
    with `episodes_match` False, the simulator and the truth themselves too."""
    from experiments.user_model_cache import user_model_by_name

    def hybrid(listen_is_sim: bool):
        def build(data, emb):
            sim, truth = user_model_by_name(simulator, data, emb), GroundTruthUserModel(data.world)
            return (HybridUserModel(sim, truth) if listen_is_sim
                    else HybridUserModel(truth, sim))
        return build

    def shadow(data, emb):
        return ShadowedUserModel(GroundTruthUserModel(data.world),
                                 user_model_by_name(simulator, data, emb))

    specs = [(LISTEN, hybrid(True)), (LEAVE, hybrid(False)), (SHADOW, shadow)]
    return specs if episodes_match else [simulator, ONLINE] + specs


def split_error(v_truth: float, v_sim: float, v_listen: float, v_leave: float
                ) -> Dict[str, float]:
    """The error and its parts (listens per episode; see the module docstring)."""
    error = v_sim - v_truth
    listen, leave = v_listen - v_truth, v_leave - v_truth
    return {"error": error, "listen_part": listen, "leave_part": leave,
            "interaction": error - listen - leave}


def decompose(run_dir: str, simulator: str, reference: str, agent_dirs: Mapping[str, str],
              baselines: Sequence[str], model_policies: Mapping[str, Callable],
              bindings: Sequence[str], episodes: int, scores: Mapping[str, dict],
              evaluate: Callable, cached: Callable, key: str = "") -> Dict[str, dict]:
    """Per policy: offline, online, the error's parts and the shadow biases.

    `scores` are the study's own ({policy: {scorer: metrics}}), reused when the
    decomposition plays as many starts as they did; `evaluate` and `cached` are the
    study's (`experiments.score_cache.evaluate_clean`, `cached_scores`), and `key` names the
    settings the cached files were computed under."""
    first = next(iter(scores.values()))
    match = int(first[ONLINE]["episodes"]) == episodes
    specs = decomposition_scorers(simulator, match)
    got: Dict[str, dict] = {}
    got.update(cached(os.path.join(run_dir, "scores", f"decompose_baselines-{key}.json"),
                      lambda: evaluate(reference, specs, bindings, episodes=episodes,
                                       baselines=list(baselines) + list(model_policies),
                                       model_policies=model_policies, with_agent=False)))
    for name, directory in agent_dirs.items():
        res = cached(os.path.join(run_dir, "scores", f"decompose_{name}-{key}.json"),
                     lambda: evaluate(directory, specs, bindings, episodes=episodes,
                                      baselines=[]))
        got[name] = next(iter(res.values()))
    return {p: policy_parts(scores[p] if match else row, row, simulator)
            for p, row in got.items()}


def policy_parts(scored: Mapping[str, dict], hybrids: Mapping[str, dict],
                 simulator: str) -> Dict[str, object]:
    """One policy's decomposition: `scored` its metrics under the truth and `simulator`,
    `hybrids` under the scorers of `decomposition_scorers` (on the same starts)."""
    v_t = scored[ONLINE]["mean_episode_reward"]
    v_s = scored[simulator]["mean_episode_reward"]
    return {"online": v_t, "offline": v_s,
            **split_error(v_t, v_s, hybrids[LISTEN]["mean_episode_reward"],
                          hybrids[LEAVE]["mean_episode_reward"]),
            "shadow": hybrids[SHADOW]["shadow"],
            "left_online": scored[ONLINE].get("end_left_rate"),
            "left_offline": scored[simulator].get("end_left_rate"),
            "skip_online": scored[ONLINE]["skip_rate"],
            "skip_offline": scored[simulator]["skip_rate"]}


def format_decomposition(dec: Mapping[str, dict]) -> str:
    """The decomposition as a table: listens per episode, then the shadow's biases."""
    rows = []
    for p, d in sorted(dec.items(), key=lambda kv: -kv[1]["error"]):
        s = d["shadow"]

        def diff(label):
            a, b = s.get(f"{label}_shadow"), s.get(f"{label}_true")
            return float("nan") if a is None or b is None else a - b
        rows.append([p] + [f"{d[k]:+.2f}" for k in ("error", "listen_part", "leave_part",
                                                     "interaction")]
                    + [f"{diff(k):+.3f}" for k in ("p_listen_first", "p_listen_later",
                                                   "p_leave")])
    return ("where the offline error comes from (listens per episode; shadow: simulator "
            "minus truth along the truth's episodes)\n"
            + render_table(["policy", "error", "listen", "leave", "inter.", "dP1", "dP2+",
                            "dLeave"], rows))
