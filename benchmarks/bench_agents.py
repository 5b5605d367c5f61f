"""Benchmark (not a test): training throughput of each agent on this machine —
environment steps collected per second and gradient steps per second — with the
train loop of `agents.training` (B parallel episodes, one batched collect step and one
gradient step of 64 transitions per iteration), against the ground-truth user model on
the default synthetic world.  `lird_slate` is LIRD-DDPG with the slate critic
(`lird_slate_critic.gin`), which needs the pool in the observation.

    python benchmarks/bench_agents.py [--iterations=300] [--batch=32] [--warmup=20]
        [--agents=lird_ddpg --agents=lird_slate --agents=dqn --agents=ah_dqn]
"""

import time

import spotisim  # noqa: F401  (first: quiets the stack at import)
from absl import flags
from spotisim import cli
from agents.ah_dqn import AhDqnAgent
from agents.dqn import create_dqn_agent
from agents.lird_ddpg import create_lird_ddpg_agent
from agents.networks import CandidateQNetwork
from agents.training import train_agent
from spotisim.builder import EnvironmentBuilder
from spotisim.data.catalog import TrackCatalog
from spotisim.data.synthetic import SyntheticWorld
from spotisim.embeddings import acoustic_embeddings
from spotisim.episode_samplers import SyntheticEpisodeSampler
from spotisim.termination import AnyOf, ConsecutiveSkips, MaxSteps
from spotisim.track_samplers import (CandidateIndexTrackSampler,
                                     ContinuousWeightsTrackSampler, SlateIndicesTrackSampler)
from user_models.ground_truth import GroundTruthUserModel


FLAGS = flags.FLAGS
AGENTS = ("lird_ddpg", "lird_slate", "dqn", "ah_dqn")


def define_flags() -> None:
    flags.DEFINE_integer('iterations', 300, "timed training iterations of each agent",
                         lower_bound=1)
    flags.DEFINE_integer('batch', 32, "parallel episodes (lanes)", lower_bound=1)
    flags.DEFINE_integer('warmup', 20, "untimed iterations first (they trace the graphs)",
                         lower_bound=1)
    flags.DEFINE_multi_enum('agents', list(AGENTS), list(AGENTS),
                            "the agents measured (repeat the flag for several)")


def main():
    args = FLAGS
    world = SyntheticWorld()
    emb = acoustic_embeddings(TrackCatalog.from_track_arrow(world.track_table())).vectors
    d = emb.shape[1]
    print(f"B={args.batch} parallel episodes, pool 100, K=3, {args.iterations} iterations "
          f"(after a {args.warmup}-iteration warm-up that traces the graphs)")
    print(f"{'agent':<12} {'env steps/s':>12} {'gradient steps/s':>17}")
    figures = {}
    for name in dict.fromkeys(args.agents):
        sampler = {"lird_ddpg": ContinuousWeightsTrackSampler(3, 100, d),
                   "lird_slate": ContinuousWeightsTrackSampler(3, 100, d),
                   "dqn": CandidateIndexTrackSampler(3, 100, d),
                   "ah_dqn": SlateIndicesTrackSampler(3, 100, d)}[name]
        builder = EnvironmentBuilder(GroundTruthUserModel(world), sampler,
                                     SyntheticEpisodeSampler(world, 10, 100), emb,
                                     batch_size=args.batch, seed=0,
                                     termination=AnyOf([MaxSteps(20), ConsecutiveSkips(6)]),
                                     observe_candidates=name != "lird_ddpg")
        env = builder.get_tf_py_environment()
        tss, acs = env.time_step_spec(), env.action_spec()
        if name.startswith("lird"):
            agent = create_lird_ddpg_agent(tss, acs, slate_critic=name == "lird_slate",
                                           history_prior=2.0 if name == "lird_slate" else 0.0)
        elif name == "dqn":
            agent = create_dqn_agent(tss, acs)
        else:
            agent = AhDqnAgent(tss, acs, CandidateQNetwork(env.observation_spec()))
            agent.initialize()
        marks = {}

        def mark(i, loss, marks=marks):
            if i == args.warmup - 1:
                marks["start"] = time.perf_counter()
            builder.environment.episode_tracker.clear()

        train_agent(agent, env, num_iterations=args.iterations + args.warmup, callback=mark)
        dt = time.perf_counter() - marks["start"]
        figures[name] = {"transitions_per_s": args.iterations * args.batch / dt,
                         "train_steps_per_s": args.iterations / dt}
        print(f"{name:<12} {args.iterations * args.batch / dt:>12,.0f} "
              f"{args.iterations / dt:>17,.1f}")
    return figures


if __name__ == "__main__":
    cli.benchmark('bench_agents', define_flags, main)
