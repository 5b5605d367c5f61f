"""How much do the long-horizon results depend on the horizon?  (Not a test.)

Episodes in the simulator run up to `max_steps` slates after a 10-track history, while
logged sessions stop at 20 tracks, so every figure past about 3 slates rests on the user
models' extrapolation.  This replays headroom's paired comparison (greedy against the
redundancy-aware greedy, on the same starts, `benchmarks/headroom.py`) for several step
limits, with responses from
  * the ground truth ("truth": latent redundancy, the world's penalty 3),
  * the learned model trained against ("offline": redundancy from observable vectors,
    penalty 1), and
  * the ground truth answering the learned model's policies ("online").

    python benchmarks/horizon_dependence.py [--episodes=1000] [--limits=3,5,10,20,40]
        [--gin_bindings="SequentialUserModel.epochs = 5"]
"""

import spotisim  # noqa: F401  (first: quiets the stack at import)
from absl import flags
import gin

from spotisim import cli
from experiments import run as run_mod
from experiments.scripted_policies import (learned_redundancy, load, paired_gain, play,
                                           redundancy_greedy, truth_redundancy)
from user_models.ground_truth import GroundTruthUserModel


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_integer('episodes', 1000, "episode starts per step limit")
    flags.DEFINE_string('limits', "3,5,10,20,40", "step limits (comma-separated)")
    flags.DEFINE_float('truth_penalty', 3.0, "redundancy penalty of the greedy on the truth")
    flags.DEFINE_float('learned_penalty', 1.0,
                       "redundancy penalty of the greedy on the learned model")
    flags.DEFINE_multi_string('gin_bindings', [], "gin bindings over lird_ddpg.gin (the "
                              "data, the user model's fit)")


def main():
    args = FLAGS
    data, emb = load(["lird_ddpg"], args.gin_bindings)
    model = run_mod.fit_or_load_user_model(data, emb)
    truth = GroundTruthUserModel(data.world)
    settings = {
        "truth": (truth, truth, truth_redundancy(truth), args.truth_penalty),
        "offline": (model, model, learned_redundancy(model), args.learned_penalty),
        "online": (truth, model, learned_redundancy(model), args.learned_penalty),
    }
    print(f"{'setting':<8} {'limit':>5} {'greedy':>7} {'aware':>7} {'slates':>7} "
          f"{'gain vs greedy, 95% paired bootstrap':>38}")
    figures = {}
    for limit in (int(x) for x in args.limits.split(",")):
        for name, (responder, scorer, redundancy, lam) in settings.items():
            def env():
                # The horizon is the MaxSteps part's knob, bound for this limit.
                with gin.unlock_config():
                    gin.bind_parameter("MaxSteps.max_steps", limit)
                return run_mod.make_builder(data.test, responder, emb, "slate",
                                            data.hidden_path, batch_size=args.episodes,
                                            seed=11, scorer=scorer).environment
            g, _, _ = play(env(), redundancy_greedy(scorer, redundancy, 0.0))
            a, slates, _ = play(env(), redundancy_greedy(scorer, redundancy, lam))
            gain = paired_gain(a, g)
            figures.setdefault(name, {})[str(limit)] = {
                "greedy": float(g.mean()), "aware": float(a.mean()),
                "gain_percent": list(map(float, gain))}
            print(f"{name:<8} {limit:>5} {g.mean():>7.2f} {a.mean():>7.2f} {slates.mean():>7.2f} "
                  f"{gain[0]:>+17.1f}% [{gain[1]:+.1f}, {gain[2]:+.1f}]", flush=True)
    return figures


if __name__ == "__main__":
    cli.benchmark('horizon_dependence', define_flags, main)
