"""The main job at a tiny size: the bindings the test suite and the measurements that
must run in seconds (`benchmarks/kill_and_resume.py`) share, over a small synthetic world
written by `spotisim.data.synthetic.generate` (its paths dict)."""

from __future__ import annotations

from typing import Dict, List, Sequence


def tiny_bindings(world: Dict[str, str], extra: Sequence[str] = ()) -> List[str]:
    """gin bindings: the world's log, tracks and hidden truth; the logistic user model
    (2 epochs); 4 training lanes, a pool of 30, episodes of 5 slates; evaluations and
    checkpoints every 5 iterations on 8 episodes; small agents; then `extra`."""
    return [
        f"load_dataset.log_path = '{world['log']}'",
        f"load_dataset.tracks_path = '{world['tracks']}'",
        f"load_dataset.hidden_path = '{world['hidden']}'",
        f"load_dataset.world_path = '{world['world']}'",
        "fit_or_load_user_model.model_ctor = @LogisticUserModel",
        "LogisticUserModel.epochs = 2",
        "train/EnvironmentBuilder.batch_size = 4", "LogEpisodeSampler.pool_size = 30",
        "MaxSteps.max_steps = 5",
        "run_experiment.eval_every = 5", "run_experiment.checkpoint_every = 5",
        "run_experiment.eval_episodes = 8", "run_experiment.progress = False",
        "Trainer.batch_size = 16", "Trainer.initial_collect_steps = 4",
        "create_ah_dqn_agent.units = 8",
    ] + list(extra)
