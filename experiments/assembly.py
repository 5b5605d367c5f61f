"""Environment assembly for the main job: `make_builder` puts the simulator's parts
together over a log split, and the checks that keep gin bindings honest (a binding on a
part's knob that `make_builder` sets itself is refused; a run directory's checkpoint
made with another setup is refused on resume)."""

from __future__ import annotations

import os
from typing import Dict, Optional

import gin
import numpy as np

from spotisim.builder import EnvironmentBuilder
from spotisim.episode_samplers import LogEpisodeSampler
from spotisim.errors import ConfigError
from spotisim.termination import AnyOf, ConsecutiveSkips, MaxSteps
from spotisim.track_samplers import (CandidateIndexTrackSampler, ContinuousWeightsTrackSampler,
                                     SlateIndicesTrackSampler)
from user_models.base import AbstractUserModel

SAMPLERS = {"weights": ContinuousWeightsTrackSampler, "index": CandidateIndexTrackSampler,
            "slate": SlateIndicesTrackSampler}



# What `make_builder` passes to each part itself: {part's gin name: {part's knob:
# the make_builder binding that sets it}}.  An argument passed in code overrides a gin
# binding, so a binding on one of these would be silently ignored: it is refused.
_SAMPLER_KNOBS = {"slate_size": "make_builder.slate_size", "pool_size": "make_builder.pool_size",
                  "embedding_dim": "make_builder (the embeddings' width)"}
PASSED_KNOBS = {
    "ContinuousWeightsTrackSampler": _SAMPLER_KNOBS,
    "CandidateIndexTrackSampler": _SAMPLER_KNOBS,
    "SlateIndicesTrackSampler": _SAMPLER_KNOBS,
    "LogEpisodeSampler": {"history_length": "make_builder.history_length",
                          "pool_size": "make_builder.pool_size",
                          "neighbour_share": "make_builder.neighbour_share",
                          "hidden_sessions": "load_dataset (the log's hidden sessions)",
                          "embeddings": "build_embeddings"},
    "MaxSteps": {"max_steps": "make_builder.max_steps"},
    "ConsecutiveSkips": {"max_skipped_slates": "make_builder.max_skipped_slates"},
    "EnvironmentBuilder": {"user_model": "fit_or_load_user_model.model_ctor or .directory",
                           "track_sampler": "run_experiment.agent_fn (its registered sampler)",
                           "episode_sampler": "make_builder's knobs",
                           "embeddings": "build_embeddings",
                           "batch_size": "make_builder.batch_size",
                           "seed": "run_experiment.seed", "termination":
                           "make_builder.max_steps / make_builder.max_skipped_slates"},
    "PlaylistEnvironment": {"position_discount": "make_builder.position_discount",
                            "observe_candidates": "make_builder.observe_candidates",
                            "candidate_scorer": "make_builder.observe_scores",
                            "feature_scorer": "make_builder.score_features",
                            "expected_leaving": "run_experiment.expected_leaving",
                            "batch_size": "make_builder.batch_size",
                            "seed": "run_experiment.seed"},
    "Trainer": {"segment_every": "run_experiment.checkpoint_every (segments start at "
                                 "checkpoints)",
                "seed": "run_experiment.seed", "reseed_env": "run_experiment (its training "
                                                              "environment)"},
}


def _setup_bindings(config_text: str, prefixes) -> Dict[str, str]:
    """{name: value} of an operative config's bindings whose name starts with one of
    `prefixes` (continuation lines of a long value joined)."""
    out, name = {}, None
    for line in config_text.splitlines():
        if line[:1].isspace() and name is not None:
            out[name] += " " + line.strip()
            continue
        name = None
        if "=" in line and not line.startswith("#"):
            key, value = (x.strip() for x in line.split("=", 1))
            if key.startswith(tuple(prefixes)):
                name, out[key] = key, value
    return out


def refuse_changed_setup(saved_config: str, agent_factory: str) -> None:
    """Raises ConfigError when a run directory's checkpoint was made with another agent
    or environment than the one now configured: restoring it would silently keep the
    old iteration count (so nothing trains) and drop the variables that no longer
    match.  Compares the agent factory's, `make_builder`'s and `PlaylistEnvironment`'s
    bindings that both configs record; the run's length and evaluation settings may
    change on resume."""
    if not os.path.exists(saved_config):
        return
    prefixes = (f"{agent_factory}.", "make_builder.", "PlaylistEnvironment.")
    with open(saved_config) as f:
        before = _setup_bindings(f.read(), prefixes)
    now = _setup_bindings(gin.operative_config_str(), prefixes)
    # Only what both record: gin lists a parameter once a call leaves it to gin, and
    # the saved config was written after more calls (the evaluation's) than exist now.
    for key in sorted(set(before) & set(now)):
        if before[key] != now[key]:
            raise ConfigError(
                f"{os.path.dirname(saved_config)} holds a checkpoint of another setup "
                f"({key}: {before[key]} then, {now[key]} now): "
                "use another --run_dir, or --noresume to start over")


def without_shadowed_bindings(config_text: str) -> str:
    """A gin config (a finished run's operative_config.gin) without the bindings of
    `PASSED_KNOBS`: the operative config records what each part received, including
    defaults of knobs that `make_builder` sets; re-parsed, they would be refused."""
    keep = []
    for line in config_text.splitlines():
        name = line.split("=", 1)[0].strip()
        part, _, knob = name.rpartition(".")
        if "=" in line and knob in PASSED_KNOBS.get(part.split("/")[-1], {}):
            continue
        keep.append(line)
    return "\n".join(keep) + "\n"


def refuse_shadowed_bindings() -> None:
    """Raises ConfigError for a gin binding on a part's knob that `make_builder` sets
    itself (it would be silently ignored), naming the binding to use instead."""
    for part, knobs in PASSED_KNOBS.items():
        try:
            bound = gin.get_bindings(part)
        except (ValueError, KeyError):  # not a registered configurable in this process
            continue
        for knob in sorted(set(bound) & set(knobs)):
            raise ConfigError(f"{part}.{knob} is set by the main job itself, so this binding "
                              f"would be ignored: bind {knobs[knob]} instead")


@gin.configurable
def make_builder(log, user_model: AbstractUserModel, embeddings: np.ndarray, sampler_kind: str,
                 hidden_path: Optional[str], batch_size: int = 32, seed: int = 0,
                 history_length: int = 10, pool_size: int = 100, slate_size: int = 3,
                 neighbour_share: float = 0.5, max_steps: int = 20,
                 max_skipped_slates: int = 6, position_discount: float = 1.0,
                 observe_candidates: Optional[bool] = None, observe_scores: bool = False,
                 score_features: bool = False,
                 scorer: Optional[AbstractUserModel] = None,
                 expected_leaving: bool = False) -> EnvironmentBuilder:
    """The simulated environment over a log split (all knobs gin-configurable; a
    binding on a part's knob that this function sets itself is refused, see
    `PASSED_KNOBS`; the parts' other knobs, e.g. `PlaylistEnvironment.reward` or
    `PlaylistEnvironment.observe_leave_risk`, are bound on the part).

    With `observe_scores`, the observation also holds `scorer`'s P(listen) of every
    candidate (`candidate_scores`); `scorer` is the learned user model the agent trains
    against, passed unchanged when `user_model` is swapped for evaluation.  With
    `score_features` (the "weights" sampler), LIRD's weight vectors also score that
    model's logit P(listen) and P(leave) of each candidate (see
    `PlaylistEnvironment.feature_scorer`).  `expected_leaving` is for environments
    that train an agent (`run_experiment.expected_leaving`; see
    `PlaylistEnvironment.expected_leaving`), never for evaluation.
    """
    if sampler_kind not in SAMPLERS:
        raise ConfigError(f"make_builder.sampler_kind must be one of {sorted(SAMPLERS)}")
    refuse_shadowed_bindings()
    if observe_candidates is None:
        observe_candidates = sampler_kind != "weights"
    # Only LIRD's weights score candidate features; the baselines' and the other agents'
    # environments in the same run are built without them.
    feature_scorer = (scorer or user_model) if score_features and sampler_kind == "weights" \
        else None
    dim = embeddings.shape[1] + (2 if feature_scorer is not None else 0)
    return EnvironmentBuilder(
        user_model, SAMPLERS[sampler_kind](slate_size, pool_size, dim),
        LogEpisodeSampler(log, history_length, pool_size, hidden_sessions=hidden_path,
                          embeddings=embeddings, neighbour_share=neighbour_share),
        embeddings, batch_size=batch_size, seed=seed,
        termination=AnyOf([MaxSteps(max_steps), ConsecutiveSkips(max_skipped_slates)]),
        position_discount=position_discount, observe_candidates=observe_candidates,
        candidate_scorer=(scorer or user_model) if observe_scores and observe_candidates else None,
        feature_scorer=feature_scorer, expected_leaving=expected_leaving)
