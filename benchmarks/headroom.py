"""Headroom, proven before any agent is trained: how much can a long-horizon policy gain
over greedy on P(listen) in a world where listeners leave when bored?  (Not a test.)

Every policy plays the *same* episode starts: one environment of `--episodes` lanes is
reset once (the starts are drawn before any response), each lane's first episode is
scored, and the responses use common random numbers (the same seeded environment).
Policies, all run on the ground truth (the oracles read the hidden listener state):

  greedy                 the K candidates of highest P(listen) as the next track;
  redundancy greedy (l)  logit P(listen) - l * redundancy, where redundancy is how much
                         the candidate would add to the listener's boredom (its match
                         with the centroid of recent listens); l is chosen on separate
                         tuning starts (validation split), then scored on the test starts;
  rollout planner        per step, M candidate slates (the redundancy greedy's and M - 1
                         drawn from its top 2K + 2), each valued by R simulated futures of
                         H slates under the redundancy greedy, leaving included; plays the
                         best.

The same comparison then runs inside the simulator driven by the *learned* user model
(the main job's sequential model with its fitted leave hazard), where redundancy comes
from observable track vectors (`LeaveHazard.redundancy`): the ordering must hold there.
And it runs in `myopic_world.gin` (no boredom, no leaving), the control, where no oracle
should gain.

    python benchmarks/headroom.py [--episodes=1000] [--tune_episodes=500]
        [--alternatives=6] [--rollouts=4] [--horizon=4] [--no_learned] [--no_myopic]
        [--user_model=sequential] [--gin_file=returning_world]

The last line is `headroom: +X% [lo, hi] (myopic control: +Y% [lo, hi])`: the best
oracle's paired gain in listens per episode over greedy on the truth, with a 95%
paired-bootstrap interval.
"""

import time

import spotisim  # noqa: F401  (first: quiets the stack at import)
from absl import flags
import numpy as np

from spotisim import cli
from experiments import run as run_mod
from experiments.scripted_policies import (define_planner_flags, greedy, learned_redundancy,
                                           load, paired_gain, play, redundancy_greedy,
                                           rollout_planner, truth_redundancy)
from experiments.user_model_cache import listener_profiles, user_model_by_name
from user_models.ground_truth import GroundTruthUserModel

LAMBDAS = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0)


# --------------------------------------------------------------------------- one world

def compare(data, emb, model, redundancy, args, label):
    """Greedy, the tuned redundancy greedy and the rollout planner on paired starts,
    responses from `model`.  Returns {policy: listens per lane} on the test starts."""
    profiles = listener_profiles(data, emb)   # a log with listener ids: memory reads them

    def env_for(log, B, seed):
        return run_mod.make_builder(log, model, emb, "slate", data.hidden_path,
                                    batch_size=B, seed=seed, scorer=model,
                                    profiles=profiles).environment

    tune = {}
    for lam in LAMBDAS:
        tune[lam] = play(env_for(data.val, args.tune_episodes, 21),
                         redundancy_greedy(model, redundancy, lam))[0].mean()
    best = max(tune, key=tune.get)
    print(f"[{label}] tuning (validation starts): " + ", ".join(
        f"l={k:g}: {v:.2f}" for k, v in tune.items()) + f"  -> l={best:g}", flush=True)
    base = redundancy_greedy(model, redundancy, best)
    policies = {"greedy": greedy(model), f"redundancy greedy (l={best:g})": base}
    if args.alternatives > 1:
        policies["rollout planner"] = rollout_planner(base, args.alternatives, args.rollouts,
                                                      args.horizon)
    out = {}
    for name, policy in policies.items():
        t0 = time.perf_counter()
        listens, slates, left = play(env_for(data.test, args.episodes, 11), policy)
        out[name] = listens
        print(f"[{label}] {name:<28} listens/episode {listens.mean():6.2f}  slates/episode "
              f"{slates.mean():5.2f}  left {left.mean():.3f}  ({len(listens)} starts, "
              f"{time.perf_counter() - t0:.0f} s)", flush=True)
    return out


def report(out, label):
    """Prints each oracle's paired gain over greedy; returns the best one's."""
    g = out["greedy"]
    best = None
    for name, v in out.items():
        if name == "greedy":
            continue
        gain = paired_gain(v, g)
        print(f"[{label}] {name:<28} vs greedy: {gain[0]:+.1f}% [{gain[1]:+.1f}, {gain[2]:+.1f}]")
        if best is None or gain[0] > best[0]:
            best = gain
    return best


FLAGS = flags.FLAGS


def define_flags() -> None:
    define_planner_flags(episodes=1000, rollouts=4, horizon=4)
    flags.DEFINE_integer("tune_episodes", 500, "validation starts the redundancy penalty "
                         "is tuned on")
    flags.DEFINE_bool("no_learned", False, "skip the learned-model check")
    flags.DEFINE_bool("no_myopic", False, "skip the myopic control")
    flags.DEFINE_string("user_model", "sequential", "the learned model of that check, by "
                        "name (e.g. sequential+memory on a log with listener ids)")


def main():
    args = FLAGS
    files = args.gin_file or ["lird_ddpg"]

    data, emb = load(files, args.gin_bindings)
    truth = GroundTruthUserModel(data.world)
    figures = {}

    def scored(out, label):
        figures[label] = {name: float(np.mean(v)) for name, v in out.items()}
        best_gain = report(out, label)
        figures[label]["best_gain_percent"] = list(map(float, best_gain))
        return best_gain

    best = scored(compare(data, emb, truth, truth_redundancy(truth), args, "truth"), "truth")
    if not args.no_learned:
        model = user_model_by_name(args.user_model, data, emb)
        scored(compare(data, emb, model, learned_redundancy(model), args, "learned"), "learned")
    control = (float("nan"),) * 3
    if not args.no_myopic:
        data, emb = load(files + ["myopic_world"], args.gin_bindings)
        truth = GroundTruthUserModel(data.world)
        control = scored(compare(data, emb, truth, truth_redundancy(truth), args, "myopic"),
                         "myopic")
    print(f"headroom: {best[0]:+.1f}% [{best[1]:+.1f}, {best[2]:+.1f}] "
          f"(myopic control: {control[0]:+.1f}% [{control[1]:+.1f}, {control[2]:+.1f}])")
    return figures


if __name__ == "__main__":
    cli.benchmark('headroom', define_flags, main)
