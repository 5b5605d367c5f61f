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
import gin
import numpy as np

from spotisim import cli
from agents.baselines import redundancy_penalised_logit
from experiments import run as run_mod
from experiments.user_model_cache import listener_profiles, user_model_by_name
from spotisim.data.datasets import load_dataset
from spotisim.embeddings import build_embeddings
from spotisim.gin_utils import parse_gin
from user_models.ground_truth import GroundTruthUserModel
from user_models.leave_features import boredom_features

LAMBDAS = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0)


# --------------------------------------------------------------------------- playing

def play(env, policy):
    """Resets `env` and plays until every lane's first episode ended.

    Returns (listens [B], slates [B], left [B]) of each lane's first episode."""
    env.reset()
    B = env.batch_size
    listens, slates = np.zeros(B), np.zeros(B)
    left = np.zeros(B, bool)
    live = np.ones(B, bool)
    while live.any():
        res = env.step(policy(env))
        listens += np.where(live, res.reward, 0.0)
        slates += live
        left |= live & res.done & res.terminal
        live &= ~res.done
    return listens, slates, left


def _masked(scores, env):
    return np.where(env.available(), scores, -np.inf)


def greedy(model):
    def policy(env):
        p = model.score_candidates(env.history(), env.candidate_tracks())
        return np.argsort(-_masked(p, env), axis=1, kind="stable")[:, :env.slate_size]
    return policy


def truth_redundancy(truth):
    """Redundancy on the hidden track latents: max(0, z_c . centroid of recent listens),
    the centroid kept as the world's boredom recursion keeps it (also computed in a
    world without boredom, where avoiding it buys nothing: the control)."""
    cfg = truth.world.config
    latents = truth.world.track_latent

    def redundancy(env):
        h = env.history()
        _, _, centroid = boredom_features(h.tracks, h.responses, latents,
                                          cfg.boredom_decay, cfg.boredom_keep)
        return np.maximum(np.einsum("bcd,bd->bc", latents[env.candidate_tracks()], centroid), 0.0)
    return redundancy


def learned_redundancy(model):
    def redundancy(env):
        return model.leave_hazard.redundancy(env.history(), env.candidate_tracks())
    return redundancy


def redundancy_greedy(model, redundancy, lam):
    def scores(env):
        p = model.score_candidates(env.history(), env.candidate_tracks())
        return _masked(redundancy_penalised_logit(p, lambda: redundancy(env), lam), env)

    def policy(env):
        return np.argsort(-scores(env), axis=1, kind="stable")[:, :env.slate_size]
    policy.scores = scores
    return policy


def fork(env, rows, seed):
    """A new environment whose lanes are copies of `env`'s lanes `rows`
    (`PlaylistEnvironment.fork`)."""
    return env.fork(rows, seed)


def rollout_planner(base, alternatives, rollouts, horizon, seed=0):
    """One step of policy improvement over `base` (a redundancy greedy), leaving included."""
    rng = np.random.default_rng(seed)
    counter = [0]

    def policy(env):
        B, K = env.batch_size, env.slate_size
        s = base.scores(env)
        order = np.argsort(-s, axis=1, kind="stable")
        top = order[:, :2 * K + 2]
        alts = [order[:, :K]]
        for _ in range(alternatives - 1):
            pick = np.argsort(rng.random(top.shape), axis=1)[:, :K]
            alts.append(np.take_along_axis(top, pick, 1))
        alts = np.stack(alts, 1)                                      # [B, M, K]
        M = alternatives
        lanes = np.repeat(np.arange(B), M * rollouts)
        counter[0] += 1
        sim = fork(env, lanes, seed=1000 * counter[0] + seed)
        value = np.zeros(len(lanes))
        alive = np.ones(len(lanes), bool)
        res = sim.step(np.repeat(alts.reshape(B * M, K), rollouts, axis=0))
        value += res.reward
        alive &= ~res.done
        for _ in range(horizon - 1):
            if not alive.any():
                break
            res = sim.step(base(sim))
            value += np.where(alive, res.reward, 0.0)
            alive &= ~res.done
        v = value.reshape(B, M, rollouts).mean(-1)
        return alts[np.arange(B), np.argmax(v, 1)]

    return policy


# --------------------------------------------------------------------------- statistics

def paired_gain(oracle, base, resamples=2000, seed=0):
    """Relative gain mean(oracle) / mean(base) - 1 in %, with a 95% paired-bootstrap
    interval (episodes resampled together, so the pairing is kept)."""
    oracle, base = np.asarray(oracle, float), np.asarray(base, float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(base), size=(resamples, len(base)))
    boot = oracle[idx].mean(1) / base[idx].mean(1) - 1
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return 100 * (oracle.mean() / base.mean() - 1), 100 * lo, 100 * hi


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


#: The oracles read the hidden state, not the agent's observation: what the agent's
#: config adds to it is turned off (the truth's environment cannot observe leave risk).
SCRIPTED_OBSERVATION = ["PlaylistEnvironment.observe_leave_risk = False",
                        "PlaylistEnvironment.observe_scores = False",
                        "PlaylistEnvironment.score_features = False"]


def load(gin_files, bindings):
    gin.clear_config()
    parse_gin(gin_files, SCRIPTED_OBSERVATION + list(bindings), [run_mod.CONFIG_DIR])
    data = load_dataset()
    emb = build_embeddings(data.train, unlabelled=data.log).aligned_to(data.log.catalog)
    return data, emb


FLAGS = flags.FLAGS


def define_planner_flags(episodes: int, rollouts: int, horizon: int) -> None:
    """The flags every planner benchmark shares (this one and rollout_headroom.py)."""
    flags.DEFINE_integer("episodes", episodes, "episode starts scored (one lane each)")
    flags.DEFINE_integer("alternatives", 6, "candidate slates the rollout planner tries "
                         "per step (1: no planner)")
    flags.DEFINE_integer("rollouts", rollouts, "simulated futures per candidate slate")
    flags.DEFINE_integer("horizon", horizon, "slates of each simulated future")
    flags.DEFINE_multi_string("gin_file", [], "the experiment whose world and environment "
                              "to use")
    flags.DEFINE_multi_string("gin_bindings", [], "gin bindings")


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
