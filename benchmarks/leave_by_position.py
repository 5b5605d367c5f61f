"""Where the learned leave model parts from the listeners: P(leave) and P(listen) along
the ground truth's own episodes, by position in the session, against the truth's, and
P(leave) by position after a listen and after a skip.

    python benchmarks/leave_by_position.py --run_dir=runs/lird_ddpg [--episodes=256]
        [--policy=random --policy=greedy_user_model --policy=most_popular]
        [--policy=lird_ddpg]
        [--user_model=sequential]

Each policy plays the run's evaluation starts online; the learned model shadows the
truth (`user_models.composite.ShadowedUserModel`: same draws, same episodes) and each
heard track's P(leave) after it and P(listen) are averaged by the track's position
(11-20 lies within the log's 20-track sessions, later positions past anything logged).
"""

from __future__ import annotations

import collections
import json
import os

from absl import flags
import spotisim  # noqa: F401  (first: quiets the stack, portable fits)
import numpy as np

from experiments.evaluate import evaluate_run
from experiments.policy_evaluation import BASELINES, MODEL_POLICIES
from experiments.user_model_cache import user_model_by_name
from spotisim import cli
from spotisim.errors import ConfigError
from user_models.composite import ShadowedUserModel
from user_models.ground_truth import GroundTruthUserModel


class ByPosition(ShadowedUserModel):
    """A shadow that also sums its answers and the truth's per position bucket, and
    P(leave) per position bucket after a listen and after a skip (`by_response`)."""

    def __init__(self, responder, shadow, width: int = 10):
        super().__init__(responder, shadow)
        self.width = width
        self.buckets = collections.defaultdict(lambda: np.zeros(5))
        self.by_response = collections.defaultdict(lambda: np.zeros(3))

    def record(self, history, slate, answer, heard, shadow_p, true_h, shadow_h):
        super().record(history, slate, answer, heard, shadow_p, true_h, shadow_h)
        listened = np.asarray(answer[1], bool)
        for k in range(slate.shape[1]):
            pos = history.length + k + 1
            bucket = np.minimum((pos - 1) // self.width * self.width + 1, 41)
            for b in np.unique(bucket[heard[:, k]]):
                rows = heard[:, k] & (bucket == b)
                self.buckets[int(b)] += [rows.sum(), true_h[rows, k].sum(),
                                         shadow_h[rows, k].sum(), answer[0][rows, k].sum(),
                                         shadow_p[rows, k].sum()]
                for response in (True, False):
                    r = rows & (listened[:, k] == response)
                    self.by_response[(int(b), response)] += [r.sum(), true_h[r, k].sum(),
                                                             shadow_h[r, k].sum()]


def run_agent(run_dir: str):
    """The name of the run's agent (None: a run of baselines, or not a finished run,
    which `evaluate_run` then refuses)."""
    try:
        with open(os.path.join(run_dir, "metrics.json")) as f:
            return json.load(f).get("agent")
    except (OSError, ValueError):
        return None


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string('run_dir', None, "the finished run whose evaluation starts are played")
    flags.DEFINE_integer('episodes', 256, "episode starts per policy")
    flags.DEFINE_multi_string('policy', [], "the run's policies played, its agent by its name "
                              "(repeatable; default three baselines)")
    flags.DEFINE_string('user_model', "sequential", "the learned model that shadows the truth")


def main() -> int:
    args = FLAGS
    policies = args.policy or ["random", "greedy_user_model", "most_popular"]
    agent_name = run_agent(args.run_dir)
    for policy in policies:  # before anything plays: a misspelt name is one line
        if policy not in BASELINES and policy not in MODEL_POLICIES and policy != agent_name:
            raise ConfigError(f"--policy={policy}: not a baseline, a policy on the model or "
                              f"this run's agent ({agent_name})")
    out = {}
    for policy in policies:
        probe = {}

        def factory(data, emb):
            probe["m"] = ByPosition(GroundTruthUserModel(data.world),
                                    user_model_by_name(args.user_model, data, emb))
            return probe["m"]
        agent = policy == agent_name
        evaluate_run(args.run_dir, [("probe", factory)], episodes=args.episodes,
                     baselines=[] if agent else [policy], with_agent=agent)
        print(f"{policy} (shadow: {args.user_model})")
        print(f"  {'positions':<10} {'tracks':>7} {'P(leave) true':>14} {'learned':>8} "
              f"{'P(listen) true':>15} {'learned':>8}")
        rows = {}
        for b in sorted(probe["m"].buckets):
            n, ht, hs, pt, ps = probe["m"].buckets[b]
            label = f"{b}-{b + 9}" if b < 41 else f"{b}+"
            rows[label] = {"tracks": int(n), "leave_true": ht / n, "leave_learned": hs / n,
                           "listen_true": pt / n, "listen_learned": ps / n}
            print(f"  {label:<10} {int(n):>7} {ht / n:>14.4f} {hs / n:>8.4f} {pt / n:>15.3f} "
                  f"{ps / n:>8.3f}")
        print(f"  {'positions':<10} {'after a listen: tracks':>22} {'true':>7} {'learned':>8} "
              f"{'after a skip: tracks':>21} {'true':>7} {'learned':>8}")
        for b in sorted(probe["m"].buckets):
            label = f"{b}-{b + 9}" if b < 41 else f"{b}+"
            cells = []
            for response, name in ((True, "after_listen"), (False, "after_skip")):
                n, ht, hs = probe["m"].by_response[(b, response)]
                rows[label][name] = {"tracks": int(n), "leave_true": ht / max(n, 1),
                                     "leave_learned": hs / max(n, 1)}
                cells.append(f"{int(n):>7} {ht / max(n, 1):>7.4f} {hs / max(n, 1):>8.4f}")
            print(f"  {label:<10} {cells[0]:>38} {cells[1]:>37}")
        out[policy] = rows
    return out


if __name__ == "__main__":
    cli.benchmark("leave_by_position", define_flags, main)
