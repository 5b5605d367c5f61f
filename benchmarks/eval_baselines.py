"""Where do simple policies land in the simulator?  Baselines on test-split episodes of
the default synthetic world, scored by the ground truth (not a test).

    python benchmarks/eval_baselines.py [--episodes=256] [--neighbour_share=0.5]
"""


import spotisim  # noqa: F401  (first: quiets the stack at import)
from absl import flags
from tf_agents.environments import tf_py_environment

from spotisim import cli
from agents.baselines import (GreedyUserModelPolicy, nearest_neighbour_policy,
                              popularity_policy, random_policy)
from agents.evaluate import run_episodes
from spotisim.builder import EnvironmentBuilder
from spotisim.data.datasets import load_dataset
from spotisim.embeddings import acoustic_embeddings
from spotisim.episode_samplers import LogEpisodeSampler
from spotisim.termination import AnyOf, ConsecutiveSkips, MaxSteps
from spotisim.track_samplers import SlateIndicesTrackSampler
from user_models.ground_truth import GroundTruthUserModel


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_integer('episodes', 256, "test-split episode starts")
    flags.DEFINE_float('neighbour_share', 0.5, "share of each pool drawn from the history's neighbours")


def main():
    args = FLAGS
    data = load_dataset()
    emb = acoustic_embeddings(data.log.catalog).vectors
    gt = GroundTruthUserModel(data.world)
    builder = EnvironmentBuilder(
        gt, SlateIndicesTrackSampler(3, 100, emb.shape[1]),
        LogEpisodeSampler(data.test, 10, 100, hidden_sessions=data.hidden_path,
                          embeddings=emb, neighbour_share=args.neighbour_share),
        emb, batch_size=args.episodes, seed=5, termination=AnyOf([MaxSteps(20), ConsecutiveSkips(6)]))
    env = builder.get_tf_env()
    tf_env = tf_py_environment.TFPyEnvironment(env)
    tss, acs = tf_env.time_step_spec(), tf_env.action_spec()
    policies = {
        "random": random_policy(tss, acs),
        "most popular": popularity_policy(tss, acs, data.train.catalog.play_counts),
        "nearest neighbour": nearest_neighbour_policy(tss, acs),
        "greedy ground truth (oracle)": GreedyUserModelPolicy(
            env.time_step_spec(), env.action_spec(), gt, builder.environment),
    }
    div = data.log.catalog.diversity_features()
    print(f"{'policy':<30} {'skip rate':>9} {'listens/ep':>10} {'length':>7} "
          f"{'diversity':>9} {'coverage':>8}")
    figures = {}
    for name, policy in policies.items():
        r = figures[name] = run_episodes(policy, env, args.episodes, div)
        print(f"{name:<30} {r['skip_rate']:>9.3f} {r['mean_episode_reward']:>10.2f} "
              f"{r['mean_episode_length']:>7.2f} {r['diversity']:>9.3f} {r['coverage']:>8.3f}")
    return figures


if __name__ == "__main__":
    cli.benchmark('eval_baselines', define_flags, main)
