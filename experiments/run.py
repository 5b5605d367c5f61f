"""The main job: one experiment, described by a gin file.

    python -m experiments.run --gin_file=lird_ddpg.gin [--gin_bindings=...] [--run_dir=...]

Data (the synthetic default, generated or reused) -> track embeddings -> user model
(fitted, or reused from a cache keyed by data + configuration) -> simulated environment
-> agent trained against the user model -> evaluation of the agent and the baselines
under that user model ("offline") and, on synthetic data, under the world's ground truth
("online") -> a run directory:

    operative_config.gin   the full configuration that ran
    metrics.json           every number of the final table, per policy
    learning_curve.png     training loss and periodic evaluation reward
    comparison.png         listens per episode and skip rate per policy
    tb/                    TensorBoard summaries
    checkpoints/           agent + replay buffer + iteration (resume from here)
    policy/                the trained greedy policy as a SavedModel (PolicySaver)
    episodes.parquet       every step of the agent's online evaluation episodes

An interrupted run started again with the same --run_dir resumes from its last
checkpoint (--noresume starts over).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import time
from typing import Callable, Dict, Optional, Sequence

import gin

import spotisim
import numpy as np
import tensorflow as tf
from absl import app, flags
from tf_agents.environments import tf_py_environment
from tf_agents.policies import policy_saver
from tf_agents.utils import common

from agents import baselines as baseline_policies
from agents.ah_dqn import create_ah_dqn_agent  # noqa: F401  (gin-configurable)
from agents.dqn import create_dqn_agent  # noqa: F401
from agents.evaluate import run_episodes
from agents.registry import agent_spec
from agents.lird_ddpg import create_lird_ddpg_agent  # noqa: F401
from agents.training import Trainer
from experiments.self_check import format_self_check, self_check
from spotisim.builder import EnvironmentBuilder
from spotisim.data.datasets import Dataset, load_dataset
from spotisim.embeddings import build_embeddings
from spotisim.episode_samplers import LogEpisodeSampler
from spotisim.errors import ConfigError, SpotisimError
from spotisim.gin_utils import parse_gin
from spotisim.io_utils import atomic_file
from spotisim.termination import AnyOf, ConsecutiveSkips, MaxSteps
from spotisim.track_samplers import (CandidateIndexTrackSampler, ContinuousWeightsTrackSampler,
                                     SlateIndicesTrackSampler)
from user_models import load_user_model
from user_models.base import AbstractUserModel
from user_models.ground_truth import GroundTruthUserModel
from user_models.leave_hazard import leave_model_class, load_leave_model
from user_models.lird import LirdSimulatorUserModel  # noqa: F401  (gin-configurable)
from user_models.logistic import LogisticUserModel  # noqa: F401  (gin-configurable)
from user_models.sequential import SequentialUserModel

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
SAMPLERS = {"weights": ContinuousWeightsTrackSampler, "index": CandidateIndexTrackSampler,
            "slate": SlateIndicesTrackSampler}


# --------------------------------------------------------------------------- user model

def _digest(*parts) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
    return h.hexdigest()[:16]


def _module_source(obj) -> str:
    """The source of the module defining `obj` ("" where Python cannot find it)."""
    import inspect
    module = inspect.getmodule(obj)
    try:
        return inspect.getsource(module) if module is not None else ""
    except (OSError, TypeError):
        return ""


@gin.configurable
def fit_or_load_user_model(data: Dataset, embeddings: np.ndarray,
                           model_ctor: Callable[..., AbstractUserModel] = SequentialUserModel,
                           directory: Optional[str] = None,
                           cache_dir: str = "runs/cache/user_models") -> AbstractUserModel:
    """The user model the agent trains against.

    Args:
      directory: a saved user model to use as is (any class: see `load_user_model`).
      model_ctor: otherwise, the class fitted on the train split (early stopping on
        validation).  A fitted model is cached under `cache_dir`, keyed by the content
        of the train and validation splits (`SessionLog.content_digest`), the
        embeddings, the class, its gin bindings and the source of its module (a cached
        model fitted on other data or by older code is not silently reused), and reused
        by later runs.
    """
    if directory:
        return attach_leave_hazard(load_user_model(directory), data, embeddings)
    name = getattr(model_ctor, "__name__", str(model_ctor))
    key = _digest(data.source, data.train.content_digest(), data.val.content_digest(),
                  np.ascontiguousarray(embeddings).tobytes(), name,
                  sorted(gin.get_bindings(model_ctor).items()) if hasattr(gin, "get_bindings") else "",
                  _module_source(model_ctor))
    path = os.path.join(cache_dir, f"{name}-{key}")
    if os.path.exists(os.path.join(path, "user_model.json")):
        model = load_user_model(path)
    else:
        model = model_ctor(embeddings=embeddings).fit(data.train, data.val)
        model.save(path)
    return attach_leave_hazard(model, data, embeddings, cache_dir=path)


def attach_leave_hazard(model: AbstractUserModel, data: Dataset, embeddings: np.ndarray,
                        cache_dir: Optional[str] = None) -> AbstractUserModel:
    """Gives a learned user model its P(leave): its class's leave model
    (`leave_model_class`: the `LeaveHazard`, or the sequential model's `LeaveHead`)
    fitted on the train split's session lengths, early stopping on the validation split
    (cached beside the model, keyed by the leave model's code).  The ground truth keeps
    its own hazard."""
    if isinstance(model, GroundTruthUserModel):
        return model
    cls = leave_model_class(getattr(model, "leave_model_class", "LeaveHazard"))
    path = None
    if cache_dir is not None:
        code = _digest(_module_source(cls), _module_source(load_leave_model))
        path = os.path.join(cache_dir, f"{cls.__name__}-{code}.json")
        if os.path.exists(path):
            model.leave_hazard = load_leave_model(path, embeddings)
            return model
    model.leave_hazard = cls(embeddings).fit(data.train, data.val)
    if path is not None:
        model.leave_hazard.save(path)
    return model


# --------------------------------------------------------------------------- environments

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


# --------------------------------------------------------------------------- plots

def _plot_learning_curve(path: str, losses: Sequence[float], evals: Sequence[tuple]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    if len(losses):
        w = max(1, len(losses) // 50)
        smooth = np.convolve(losses, np.ones(w) / w, mode="valid")
        ax[0].plot(np.arange(len(smooth)) + w, smooth)
    ax[0].set_title("training loss (moving average)")
    ax[0].set_xlabel("iteration")
    if evals:
        it, rew = zip(*evals)
        ax[1].plot(it, rew, marker="o")
    ax[1].set_title("listens per episode (offline, during training)")
    ax[1].set_xlabel("iteration")
    fig.tight_layout()
    with atomic_file(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)


def _plot_comparison(path: str, metrics: Dict[str, dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(metrics)
    fig, ax = plt.subplots(1, 2, figsize=(11, 0.5 * len(names) + 2))
    y = np.arange(len(names))
    for j, (key, title) in enumerate((("mean_episode_reward", "listens per episode"),
                                      ("skip_rate", "skip rate"))):
        for k, (mode, color) in enumerate((("offline", "tab:blue"), ("online", "tab:orange"))):
            vals = [metrics[n].get(mode, {}).get(key, np.nan) for n in names]
            if not np.all(np.isnan(vals)):
                ax[j].barh(y + (k - 0.5) * 0.38, vals, height=0.38, color=color,
                           label=f"{mode} ({'user model' if mode == 'offline' else 'ground truth'})")
        ax[j].set_yticks(y)
        ax[j].set_yticklabels(names if j == 0 else [])
        ax[j].set_title(title)
    ax[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_file(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------- experiment

def final_evaluation(data: Dataset, user_model: AbstractUserModel, emb: np.ndarray,
                     agent=None, agent_fn: Optional[Callable] = None,
                     baselines: Sequence[str] = (), eval_episodes: int = 256, seed: int = 0,
                     run_dir: Optional[str] = None,
                     info: Optional[dict] = None) -> Dict[str, dict]:
    """Scores the agent's greedy policy and the baselines on test-split episodes,
    offline (under `user_model`) and, on synthetic data, online (the ground truth).

    Returns {policy: {mode: metrics}}; writes the agent's online episodes to
    run_dir/episodes.parquet.  Shared by the main job and the distributed learner.
    """
    metrics: Dict[str, dict] = {}
    spec = agent_spec(agent_fn) if agent_fn is not None else None
    ground_truth = GroundTruthUserModel(data.world) if data.synthetic else None
    if data.log.catalog.has_features:
        div, div_source = data.log.catalog.diversity_features(), "acoustic features"
    else:  # a log without a track table: the embeddings this run learned
        div, div_source = emb, "the run's learned track embeddings (no acoustic features)"
    modes = {"offline": user_model}
    if ground_truth is not None:
        modes["online"] = ground_truth
    policies = {}
    for mode, model in modes.items():
        # One lane per evaluated episode: every policy plays the same starts (paired).
        slate_builder = make_builder(data.test, model, emb, "slate", data.hidden_path,
                                     batch_size=eval_episodes, seed=seed + 2, scorer=user_model)
        slate_env = slate_builder.get_tf_env()
        if info is not None:  # what the report calls the reward, and diversity's basis
            info["reward"] = slate_builder.environment.reward.name
            info["diversity_source"] = div_source
        tf_env = tf_py_environment.TFPyEnvironment(slate_env)
        tss, acs = tf_env.time_step_spec(), tf_env.action_spec()
        policies = {
            "random": lambda: baseline_policies.random_policy(tss, acs, seed=seed),
            "most_popular": lambda: baseline_policies.popularity_policy(
                tss, acs, data.train.catalog.play_counts),
            "nearest_neighbour": lambda: baseline_policies.nearest_neighbour_policy(tss, acs),
            "greedy_user_model": lambda: baseline_policies.GreedyUserModelPolicy(
                slate_env.time_step_spec(), slate_env.action_spec(), user_model,
                slate_builder.environment),
            "logging_policy": lambda: baseline_policies.LoggedSessionPolicy(
                slate_env.time_step_spec(), slate_env.action_spec(), data.test,
                slate_builder.environment,
                slate_builder.environment._episode_sampler.history_length,
                data.train.catalog.play_counts),
        }
        for name in baselines:
            if name not in policies:
                raise ConfigError(f"run_experiment.baselines: unknown baseline {name!r} "
                                  f"(known: {', '.join(policies)})")
            metrics.setdefault(name, {})[mode] = run_episodes(
                policies[name](), slate_env, eval_episodes, div, replay_log=data.test,
                history_length=slate_builder.environment._episode_sampler.history_length)
        if agent is not None:
            b = make_builder(data.test, model, emb, spec.sampler, data.hidden_path,
                             batch_size=eval_episodes, seed=seed + 2, scorer=user_model)
            metrics.setdefault(spec.name, {})[mode] = run_episodes(
                agent.policy, b.get_tf_env(), eval_episodes, div, replay_log=data.test,
                history_length=b.environment._episode_sampler.history_length)
            if mode == list(modes)[-1] and run_dir is not None:
                b.environment.episode_tracker.flush(os.path.join(run_dir, "episodes.parquet"))
    return metrics


def scoped_op_determinism(fn: Callable) -> Callable:
    """Runs `fn` with TensorFlow's deterministic kernels on (same seed, same metrics),
    and turns them off again afterwards if they were off: the switch is process-wide,
    so without this every later computation in the process (the next test, say) would
    run differently from how it runs alone.  TF 2.15 has no public switch-off, hence
    `tensorflow.python.framework.config`."""
    from tensorflow.python.framework import config as tf_config

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        was_on = tf_config.is_op_determinism_enabled()
        tf.config.experimental.enable_op_determinism()
        try:
            return fn(*args, **kwargs)
        finally:
            if not was_on:
                tf_config.disable_op_determinism()
    return wrapper


@gin.configurable
@scoped_op_determinism
def run_experiment(run_dir: str, agent_fn: Optional[Callable] = None,
                   num_iterations: int = 3000, eval_every: int = 1000,
                   checkpoint_every: int = 500, eval_episodes: int = 256,
                   baselines: Sequence[str] = ("random", "most_popular", "nearest_neighbour",
                                               "greedy_user_model", "logging_policy"),
                   expected_leaving: bool = True, seed: int = 0, resume: bool = True,
                   progress: bool = True) -> dict:
    """Runs one experiment end to end; returns the metrics written to metrics.json.

    Args:
      run_dir: where everything is written (and resumed from).
      agent_fn: an agent factory (gin: `@create_lird_ddpg_agent`, `@create_dqn_agent`,
        `@create_ah_dqn_agent`), or None to evaluate the baselines only.
      num_iterations: gradient steps (one batched collect step each).
      eval_every / checkpoint_every: iterations between evaluations / checkpoints.
      eval_episodes: whole episodes per policy in the final evaluation.
      baselines: baseline policies evaluated beside the agent.
      expected_leaving: the agent trains in an environment that takes leaving in
        expectation (`PlaylistEnvironment.expected_leaving`: the same expected return,
        P(leave) in the discount instead of drawn exits); evaluation always draws exits.
      seed: seeds TensorFlow and the environments (same seed, same metrics).
      resume: continue from run_dir's last checkpoint if there is one.
    """
    t_start = time.perf_counter()
    os.makedirs(run_dir, exist_ok=True)
    # Same seed, same metrics: deterministic kernels (`scoped_op_determinism`) and
    # seeded random ops.
    tf.keras.utils.set_random_seed(seed)  # Python, numpy and TF (unseeded Keras initialisers)
    data = load_dataset()
    emb_obj = build_embeddings(data.train, unlabelled=data.log)
    emb = emb_obj.aligned_to(data.log.catalog)
    user_model = fit_or_load_user_model(data, emb)
    writer = tf.summary.create_file_writer(os.path.join(run_dir, "tb"))
    metrics: Dict[str, dict] = {}
    losses, evals = [], []
    agent = None
    agent_name = None
    if agent_fn is not None:
        spec = agent_spec(agent_fn)
        agent_name, kind = spec.name, spec.sampler
        train_builder = make_builder(data.train, user_model, emb, kind, data.hidden_path,
                                     seed=seed, expected_leaving=expected_leaving)
        train_env = tf_py_environment.TFPyEnvironment(train_builder.get_tf_env())
        agent = agent_fn(train_env.time_step_spec(), train_env.action_spec())
        trainer = Trainer(agent, train_env)
        # (The Checkpointer restores as it is built: check the setup first.)
        if resume and tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints")):
            refuse_changed_setup(os.path.join(run_dir, "operative_config.gin"),
                                 agent_fn.__name__)
        ckpt = common.Checkpointer(os.path.join(run_dir, "checkpoints"), max_to_keep=2,
                                   **trainer.checkpoint_items())
        if resume:
            ckpt.initialize_or_restore()
        else:
            trainer.iteration.assign(0)
        start = int(trainer.iteration.numpy())
        eval_builder = make_builder(data.val, user_model, emb, kind, data.hidden_path,
                                    batch_size=64, seed=seed + 1)
        bar = None
        if progress and num_iterations > start:
            from tqdm import tqdm
            bar = tqdm(total=num_iterations, initial=start, desc=f"training {agent_name}",
                       unit="it", file=sys.stderr, mininterval=2.0)
        wrote_config = [False]

        def on_step(i, loss):
            losses.append(loss)
            if not wrote_config[0]:
                with atomic_file(os.path.join(run_dir, "operative_config.gin")) as f:
                    f.write(gin.operative_config_str())
                wrote_config[0] = True
            train_builder.environment.episode_tracker.clear()
            with writer.as_default(step=i + 1):
                if (i + 1) % 10 == 0:
                    tf.summary.scalar("train/loss", loss)
                if (i + 1) % eval_every == 0 or i + 1 == num_iterations:
                    r = run_episodes(agent.policy, eval_builder.get_tf_env(), 64)
                    evals.append((i + 1, r["mean_episode_reward"]))
                    tf.summary.scalar("eval_offline/listens_per_episode", r["mean_episode_reward"])
                    tf.summary.scalar("eval_offline/skip_rate", r["skip_rate"])
            if (i + 1) % checkpoint_every == 0 or i + 1 == num_iterations:
                ckpt.save(trainer.iteration)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

        trainer.run(num_iterations, on_step)
        if bar is not None:
            bar.close()
        policy_saver.PolicySaver(agent.policy, batch_size=None).save(os.path.join(run_dir, "policy"))
    info: dict = {}
    metrics.update(final_evaluation(data, user_model, emb, agent, agent_fn, baselines,
                                    eval_episodes, seed, run_dir, info))
    if agent is None:
        with atomic_file(os.path.join(run_dir, "operative_config.gin")) as f:
            f.write(gin.operative_config_str())
    check = self_check(metrics, user_model, data.test, list(baselines), seed)
    out = {"data": data.source, "user_model": type(user_model).__name__, "reward": info["reward"],
           "diversity_source": info["diversity_source"], "self_check": check,
           "data_quirks": (data.log.read_report.quirk_summary()
                           if data.log.read_report is not None else "no quirks"),
           "embeddings": emb_obj.source, "agent": agent_name,
           "iterations": num_iterations, "seconds": time.perf_counter() - t_start,
           "final_loss": float(np.mean(losses[-50:])) if losses else None,
           "offline_evaluations": evals, "policies": metrics}
    with atomic_file(os.path.join(run_dir, "metrics.json")) as f:
        json.dump(out, f, indent=1)
    _plot_learning_curve(os.path.join(run_dir, "learning_curve.png"), losses, evals)
    _plot_comparison(os.path.join(run_dir, "comparison.png"), metrics)
    return out


def format_table(out: dict) -> str:
    """The final table a person reads."""
    reward = out.get("reward", "listens per episode")
    lines = [f"data: {out['data']}   user model: {out['user_model']}   "
             f"embeddings: {out['embeddings']}   ({out['seconds']:.0f} s)",
             f"reward: {reward}"
             + (f"   data quirks {out['data_quirks']}"
                if out.get("data_quirks", "no quirks") != "no quirks" else ""),
             f"{'policy':<20} {'mode':<8} {'skip rate':>9} {'reward/ep':>9} "
             f"{'slates/ep':>9} {'left':>6} {'diversity':>9} {'coverage':>8} "
             f"{'logged skip':>11} {'replay skip (n)':>16}"]
    for name, modes in out["policies"].items():
        for mode, r in modes.items():
            lines.append(f"{name:<20} {mode:<8} {r['skip_rate']:>9.3f} "
                         f"{r['mean_episode_reward']:>9.2f} {r['mean_episode_length']:>9.2f} "
                         f"{r.get('end_left_rate', float('nan')):>6.3f} "
                         f"{r.get('diversity', float('nan')):>9.3f} {r['coverage']:>8.3f} "
                         f"{r.get('logged_track_skip_rate', float('nan')):>11.3f} "
                         f"{r.get('replay_skip_rate', float('nan')):>8.3f} "
                         f"({int(r.get('replay_count', 0))})")
    lines.append("offline = scored by the user model the agent trained against; "
                 "online = scored by the synthetic world's ground truth; reward/ep = the "
                 "reward above, summed over an episode; slates/ep = episode length; left = "
                 "share of episodes that ended because the listener left; diversity on "
                 f"{out.get('diversity_source', 'acoustic features')}; logged skip = "
                 "simulated skip rate of recommended tracks the logged session played next "
                 "(for logging_policy: its replayed part); replay skip = "
                 "logged skip rate of recommended tracks the held-out session played (n)")
    return "\n".join(lines)


FLAGS = flags.FLAGS


def define_flags() -> None:
    """Command-line flags, defined only when this module runs as the program (several
    entry points live in one test process)."""
    flags.DEFINE_multi_string("gin_file", [], "config: a path or a name in experiments/configs")
    flags.DEFINE_multi_string("gin_bindings", [], "gin bindings, e.g. 'run_experiment.num_iterations = 100'")
    flags.DEFINE_string("run_dir", None, "output directory (default runs/<config name>)")
    flags.DEFINE_bool("resume", True, "resume from the run directory's last checkpoint")


def main(argv):
    del argv
    spotisim.quiet_logging()  # SPOTISIM_VERBOSE=1 keeps the stack's own chatter
    files = FLAGS.gin_file or ["lird_ddpg"]
    try:
        paths = parse_gin(files, FLAGS.gin_bindings, [CONFIG_DIR])
        run_dir = FLAGS.run_dir or os.path.join(
            "runs", os.path.splitext(os.path.basename(paths[-1]))[0])
        out = run_experiment(run_dir, resume=FLAGS.resume)
    except SpotisimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_table(out))
    print(format_self_check(out["self_check"]))
    print(f"run directory: {run_dir}")
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
