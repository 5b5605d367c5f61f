"""Environment assembly for the main job: `make_builder` puts the simulator's parts
together over a log split, and the checks that keep gin bindings honest (a binding on a
part's knob that `make_builder` sets itself is refused; a run directory's checkpoint
made with another setup is refused on resume)."""

from __future__ import annotations

import os
from typing import Dict, Optional, Sequence

import gin
import numpy as np

from spotisim.builder import EnvironmentBuilder
from spotisim.environment import PlaylistEnvironment
from spotisim.episode_samplers import LogEpisodeSampler, ShardEpisodeSampler
from spotisim.errors import ConfigError
from spotisim.gin_utils import parse_gin
# (Imported so that gin knows every part a config may bind.)
from spotisim.termination import AnyOf, ConsecutiveSkips, MaxSteps, UserLeft  # noqa: F401
from spotisim.rewards import Listens, PositionDiscountedListens
from spotisim.track_samplers import (CandidateIndexTrackSampler, ContinuousWeightsTrackSampler,
                                     SlateIndicesTrackSampler)
from user_models.base import AbstractUserModel

SAMPLERS = {"weights": ContinuousWeightsTrackSampler, "index": CandidateIndexTrackSampler,
            "slate": SlateIndicesTrackSampler}



# The wiring: what `make_builder` and the runner pass to the parts in code, because
# it comes from elsewhere in the run (the data, the fitted model, the agent's sampler,
# the run's seed).  {part's gin name: {argument: where it comes from}}.  An argument
# passed in code overrides a gin binding, so a binding on one of these would be silently
# ignored: it is refused.  Every other knob of the parts is bound on the part.
PASSED_KNOBS = {
    "LogEpisodeSampler": {"hidden_sessions": "load_dataset (the log's hidden sessions)",
                          "embeddings": "build_embeddings"},
    "EnvironmentBuilder": {"user_model": "fit_or_load_user_model.model_ctor or .directory",
                           "track_sampler": "run_experiment.agent_fn (its registered sampler)",
                           "episode_sampler": "the LogEpisodeSampler.* bindings",
                           "embeddings": "build_embeddings",
                           "seed": "run_experiment.seed"},
    "PlaylistEnvironment": {"scorer": "fit_or_load_user_model (the model the agent "
                                      "trains against)",
                            "seed": "run_experiment.seed",
                            "batch_size": "EnvironmentBuilder.batch_size"},
    "Trainer": {"segment_every": "run_experiment.checkpoint_every (segments start at "
                                 "checkpoints)",
                "seed": "run_experiment.seed", "reseed_env": "run_experiment (its training "
                                                              "environment)"},
}
# The environment's parts whose bindings define a run's setup.
ENVIRONMENT_PARTS = tuple(f"{part.__name__}." for part in (
    EnvironmentBuilder, PlaylistEnvironment, LogEpisodeSampler, *SAMPLERS.values(),
    MaxSteps, ConsecutiveSkips, AnyOf, Listens, PositionDiscountedListens))
# Environments whose lanes the caller sets (an evaluation: one lane per episode start).
_LANES_SET_BY_CALLER = "the caller (an evaluation runs one lane per episode start)"


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
            if key.split("/")[-1].startswith(tuple(prefixes)):
                name, out[key] = key, value
    return out


def operative_config_text() -> str:
    """The operative config as a run directory records it: gin's operative config
    with every `import` statement of the config first, once (gin's own keeps only some
    of them), so that a finished run of an agent or user model registered in a module
    that a gin file imports (e.g. `dqn_ranked_leave.gin`, `taste_model.gin`) can be
    evaluated and resumed from its directory alone."""
    operative = gin.operative_config_str()
    known = set(operative.splitlines())  # gin keeps some imports itself: not twice
    imports = [line for line in dict.fromkeys(gin.config_str().splitlines())
               if line.startswith(("import ", "from ")) and line not in known]
    head = "\n".join(imports) + "\n\n" if imports else ""
    return head + operative


def refuse_changed_setup(saved_config: str, agent_factory: str) -> None:
    """Raises ConfigError when a run directory's checkpoint was made with another agent
    or environment than the one now configured: restoring it would silently keep the
    old iteration count (so nothing trains) and drop the variables that no longer
    match.  Compares the bindings of the agent factory and of the environment's parts
    (any scope) that both configs record; the run's length and evaluation settings may
    change on resume."""
    if not os.path.exists(saved_config):
        return
    prefixes = (f"{agent_factory}.",) + ENVIRONMENT_PARTS
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


#: Bindings that runs made before the parts became the configuration surface
#: (2026-11-26) recorded, and what each is called now (None: nothing an evaluation of
#: the run needs; the training side of the setup is in the run's checkpoints).
LEGACY_BINDINGS = {
    "make_builder.history_length": ("LogEpisodeSampler.history_length",),
    "make_builder.pool_size": ("LogEpisodeSampler.pool_size",),
    "make_builder.neighbour_share": ("LogEpisodeSampler.neighbour_share",),
    "make_builder.slate_size": ("ContinuousWeightsTrackSampler.slate_size",
                                "CandidateIndexTrackSampler.slate_size",
                                "SlateIndicesTrackSampler.slate_size"),
    "make_builder.max_steps": ("MaxSteps.max_steps",),
    "make_builder.max_skipped_slates": ("ConsecutiveSkips.max_skipped_slates",),
    "make_builder.position_discount": ("PlaylistEnvironment.position_discount",),
    "make_builder.observe_candidates": ("PlaylistEnvironment.observe_candidates",),
    "make_builder.observe_scores": ("PlaylistEnvironment.observe_scores",),
    "make_builder.score_features": ("PlaylistEnvironment.score_features",),
    "make_builder.batch_size": ("train/EnvironmentBuilder.batch_size",),
    "make_builder.expected_leaving": None,
    "make_builder.scorer": None,
    "run_experiment.expected_leaving": ("train/PlaylistEnvironment.expected_leaving",),
}


def with_current_names(config_text: str) -> str:
    """A recorded run config with the bindings of `LEGACY_BINDINGS` renamed (a binding
    the config also makes under its current name keeps that value)."""
    lines = config_text.splitlines()
    bound = {line.split("=", 1)[0].strip() for line in lines if "=" in line}
    out = []
    for line in lines:
        name = line.split("=", 1)[0].strip()
        if "=" not in line or name not in LEGACY_BINDINGS:
            out.append(line)
            continue
        value = line.split("=", 1)[1].strip()
        for new in LEGACY_BINDINGS[name] or ():
            if new not in bound:
                out.append(f"{new} = {value}")
    return "\n".join(out) + "\n"


def without_shadowed_bindings(config_text: str) -> str:
    """A gin config (a finished run's operative_config.gin) without the bindings of
    `PASSED_KNOBS`: the operative config records what each part received, including
    defaults of knobs that `make_builder` sets; re-parsed, they would be refused.
    Bindings of runs made before the parts were the configuration surface get their
    current names (`with_current_names`)."""
    keep = []
    for line in with_current_names(config_text).splitlines():
        name = line.split("=", 1)[0].strip()
        part, _, knob = name.rpartition(".")
        if "=" in line and knob in PASSED_KNOBS.get(part.split("/")[-1], {}):
            continue
        keep.append(line)
    return "\n".join(keep) + "\n"


#: The packages whose modules a run directory's config may import without trust.
PROJECT_PACKAGES = ("spotisim", "agents", "user_models", "experiments")


def checked_run_config(run_dir: str, trust: bool = False) -> str:
    """A finished run's operative_config.gin, ready to re-parse, refusing what would run
    code the run directory names: gin executes `import` lines and reads `include`d
    files, and teams share run directories.  Imports of this project's own packages
    (and gin's `from __gin__ import ...`) pass; any other import or include is a
    ConfigError naming the file and line, unless `trust` (`--trust_run_dir`)."""
    path = os.path.join(run_dir, "operative_config.gin")
    if not os.path.isfile(path):
        raise ConfigError(f"{run_dir}: not a run directory ({path} not found)")
    with open(path) as f:
        text = f.read()
    if not trust:
        for number, line in enumerate(text.splitlines(), 1):
            words = line.split()
            if not words or words[0] not in ("import", "from", "include"):
                continue
            top = words[1].strip("'\"").split(".")[0] if len(words) > 1 else ""
            if words[0] != "include" and (top in PROJECT_PACKAGES or top == "__gin__"):
                continue
            raise ConfigError(f"{path} line {number}: {line.strip()!r} would run code the run "
                              "directory names; only this project's packages are imported "
                              "from a run directory (pass --trust_run_dir if you trust it)")
    return without_shadowed_bindings(text)


def parse_run_config(run_dir: str, bindings: Sequence[str] = (), trust: bool = False) -> None:
    """Parses a finished run's configuration (`checked_run_config`), then `bindings`.

    Every built-in user model and agent module is imported first: a run's config names
    them by reference (`@LogisticUserModel`), and a script that evaluates a run need not
    have imported the ones that run used (`benchmarks/leave_by_position.py` had not)."""
    from agents.registry import load_builtin_agents
    from user_models.registry import learned_user_models
    learned_user_models()
    load_builtin_agents()
    gin.parse_config(checked_run_config(run_dir, trust), skip_unknown=True)
    parse_gin([], bindings, [])  # a bad binding: one ConfigError line naming it


def exposure_run_data(run_dir: str, bindings: Sequence[str] = ()):
    """(data, embeddings aligned to its catalogue) of a finished run whose data has a
    random-exposure slice, under the run's config plus `bindings` (gin cleared first):
    what the slice probes read (`benchmarks/leave_calibration_probe.py`,
    `benchmarks/support_probe.py`)."""
    from spotisim.data.datasets import load_dataset
    from spotisim.embeddings import build_embeddings
    gin.clear_config()
    parse_run_config(run_dir, bindings)
    data = load_dataset()
    if data.exposure is None:
        raise ConfigError(f"{run_dir}: its data has no exposure slice (exposure_slice.gin)")
    return data, build_embeddings(data.train, unlabelled=data.log).aligned_to(data.log.catalog)


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


def make_builder(log, user_model: AbstractUserModel, embeddings: np.ndarray, sampler_kind: str,
                 hidden_path: Optional[str], seed: int = 0,
                 scorer: Optional[AbstractUserModel] = None,
                 batch_size: Optional[int] = None,
                 profiles=None, shards=None) -> EnvironmentBuilder:
    """The simulated environment over a log split, wired from the run: the log, the
    model, the embeddings, the agent's track-sampler kind, the seed.  Every knob is a
    gin binding on the part that owns it, under the caller's scope (`train/` for the
    agent's training environment, `eval/` for evaluations), for example
    `LogEpisodeSampler.pool_size`, `SlateIndicesTrackSampler.slate_size`,
    `MaxSteps.max_steps`, `PlaylistEnvironment.position_discount`,
    `train/EnvironmentBuilder.batch_size` (see experiments/configs/environment.gin).
    A binding on what is wired here (`PASSED_KNOBS`) is refused.

    Args:
      scorer: the learned model whose answers the observation shows
        (`PlaylistEnvironment.observe_scores`, `.score_features`), passed unchanged
        when `user_model` is swapped for evaluation (default: `user_model`).
      batch_size: lanes, when the caller sets them (an evaluation); None: the
        `EnvironmentBuilder.batch_size` binding.
      profiles: the `ListenerProfiles` of the whole log `log` is a split of
        (`user_model_cache.listener_profiles`): each episode then starts with its
        listener's profile, which a user model with memory reads.
      shards: a `ShardedLog` the episodes start from, a chunk at a time
        (`ShardEpisodeSampler.like` the configured sampler over `log`, a sample of it;
        without listener profiles).
    """
    if sampler_kind not in SAMPLERS:
        raise ConfigError(f"make_builder.sampler_kind must be one of {sorted(SAMPLERS)}")
    refuse_shadowed_bindings()
    lanes = {}
    if batch_size is not None:
        refuse_bound("EnvironmentBuilder", "batch_size", _LANES_SET_BY_CALLER,
                     "bind train/EnvironmentBuilder.batch_size for the training environment")
        lanes["batch_size"] = int(batch_size)
    episodes = LogEpisodeSampler(log, hidden_sessions=hidden_path, embeddings=embeddings,
                                 profiles=None if shards is not None else profiles)
    if shards is not None:
        episodes = ShardEpisodeSampler.like(episodes, shards, seed=seed)
    return EnvironmentBuilder(user_model, SAMPLERS[sampler_kind](), episodes, embeddings,
                              seed=seed, scorer=scorer, **lanes)


def refuse_bound(part: str, knob: str, set_by: str, instead: str) -> None:
    """Raises ConfigError if `part.knob` is bound in the current gin scope (scoped or
    not) although the caller sets it in code, so the binding would be ignored here."""
    try:
        bound = gin.get_bindings(part)
    except (ValueError, KeyError):
        return
    if knob in bound:
        scope = gin.current_scope_str()
        raise ConfigError(f"{part}.{knob} is set by {set_by}"
                          f"{' in scope ' + repr(scope) if scope else ''}, so this binding "
                          f"would be ignored there: {instead}")
