"""Experiment (not a test): how good can a policy in the LIRD action space be?  A
hand-made actor, no learning: every weight vector w_k is the observation window's mean
listened embedding (scaled to max |.| = 1), so the track sampler ranks the pool by its
match with what was listened to.  Test-split episodes of the default world, responses
from the ground truth, 256 episodes.

    python benchmarks/lird_handmade_actor.py
"""

import spotisim  # noqa: F401  (first: quiets the stack at import)
from absl import flags
import numpy as np
from tf_agents.policies import py_policy
from tf_agents.trajectories import policy_step

from agents.evaluate import run_episodes
from experiments import run as run_mod
from spotisim import cli
from spotisim.data.datasets import load_dataset
from spotisim.embeddings import build_embeddings
from spotisim.gin_utils import parse_gin
from user_models.ground_truth import GroundTruthUserModel


class MeanListenedActor(py_policy.PyPolicy):
    """w_k = the window's mean listened embedding, for every slate position k."""

    def _action(self, time_step, policy_state):
        o = time_step.observation
        w = o["responses"] * o["history_mask"]
        m = (o["history"] * w[..., None]).sum(1) / np.maximum(w.sum(1), 1)[:, None]
        m = m / np.maximum(np.abs(m).max(1, keepdims=True), 1e-8)
        k = self.action_spec.shape[0]
        return policy_step.PolicyStep(np.repeat(m[:, None, :], k, 1).astype(np.float32),
                                      policy_state, ())


def define_flags() -> None:
    flags.DEFINE_multi_string("gin_bindings", [], "gin bindings over lird_published.gin "
                              "(the data, say)")


def main():
    parse_gin(["lird_published"], flags.FLAGS.gin_bindings, [run_mod.CONFIG_DIR])
    data = load_dataset()
    emb = build_embeddings(data.train, unlabelled=data.log).aligned_to(data.log.catalog)
    builder = run_mod.make_builder(data.test, GroundTruthUserModel(data.world), emb, "weights",
                                   data.hidden_path, batch_size=256, seed=2)
    env = builder.get_tf_env()
    r = run_episodes(MeanListenedActor(env.time_step_spec(), env.action_spec()), env, 256)
    print(f"hand-made LIRD actor (w_k = mean listened embedding), online: skip rate "
          f"{r['skip_rate']:.3f}, listens/episode {r['mean_episode_reward']:.2f}")
    return {"skip_rate": r["skip_rate"], "listens_per_episode": r["mean_episode_reward"]}


if __name__ == "__main__":
    cli.benchmark("lird_handmade_actor", define_flags, main)
