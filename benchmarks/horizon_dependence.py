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

    python benchmarks/horizon_dependence.py [--episodes 1000] [--limits 3,5,10,20,40]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


from headroom import (learned_redundancy, load, paired_gain, play,  # noqa: E402
                      redundancy_greedy, truth_redundancy)  # (benchmarks/ is this folder)
import gin  # noqa: E402
from experiments import run as run_mod  # noqa: E402
from user_models.ground_truth import GroundTruthUserModel  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=1000)
    ap.add_argument("--limits", default="3,5,10,20,40")
    ap.add_argument("--truth_penalty", type=float, default=3.0)
    ap.add_argument("--learned_penalty", type=float, default=1.0)
    args = ap.parse_args()
    data, emb = load(["lird_ddpg"], [])
    model = run_mod.fit_or_load_user_model(data, emb)
    truth = GroundTruthUserModel(data.world)
    settings = {
        "truth": (truth, truth, truth_redundancy(truth), args.truth_penalty),
        "offline": (model, model, learned_redundancy(model), args.learned_penalty),
        "online": (truth, model, learned_redundancy(model), args.learned_penalty),
    }
    print(f"{'setting':<8} {'limit':>5} {'greedy':>7} {'aware':>7} {'slates':>7} "
          f"{'gain vs greedy, 95% paired bootstrap':>38}")
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
            print(f"{name:<8} {limit:>5} {g.mean():>7.2f} {a.mean():>7.2f} {slates.mean():>7.2f} "
                  f"{gain[0]:>+17.1f}% [{gain[1]:+.1f}, {gain[2]:+.1f}]", flush=True)


if __name__ == "__main__":
    main()
