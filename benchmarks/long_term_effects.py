"""Experiment (not a test): does the learned user model reproduce the ground truth's
long-term effects, the ones a long-horizon agent could exploit?

From test-split episode starts of the default world (history of 10 logged tracks), for a
candidate c of the pool it measures how P(listen to c) moves when one more track is heard
first:
  * taste pull: the track is c's nearest neighbour (cosine of the acoustic embeddings),
    listened, versus a random catalogue track, listened.  In the ground truth, a
    listened track pulls the listener's taste towards itself.
  * skip streak: one random track skipped versus listened.  In the ground truth each
    consecutive skip lowers P(listen) of what comes next.
Each effect is the mean difference of logit P(listen to c), under the ground truth and
under the learned sequential user model (and the logistic one).

    python benchmarks/long_term_effects.py [--episodes=2000]
"""


import spotisim  # noqa: F401  (first: quiets the stack at import)
from absl import flags
import gin
import numpy as np

from spotisim import cli
from experiments import run as run_mod
from spotisim.data.datasets import load_dataset
from spotisim.embeddings import build_embeddings
from spotisim.episode_samplers import LogEpisodeSampler
from spotisim.gin_utils import parse_gin
from user_models.base import History
from user_models.ground_truth import GroundTruthUserModel
from user_models.logistic import LogisticUserModel
from user_models.sequential import SequentialUserModel


def logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def effects(model, history: History, cand, neighbour, rand):
    """Per episode start, the change of logit P(listen to `cand`) when one more track is
    heard first: taste pull (the neighbour listened minus a random track listened) and
    skip (the random track skipped minus listened)."""
    B = history.batch_size
    ones, zeros = np.ones((B, 1), np.float32), np.zeros((B, 1), np.float32)

    def p_after(track, resp):
        return model.score_candidates(history.extended(track[:, None], resp),
                                      cand[:, None])[:, 0]
    pull = logit(p_after(neighbour, ones)) - logit(p_after(rand, ones))
    skip = logit(p_after(rand, zeros)) - logit(p_after(rand, ones))
    return pull, skip


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_integer('episodes', 2000, "test-split episode starts, one candidate each",
                         lower_bound=1)
    flags.DEFINE_multi_string('gin_bindings', [], "gin bindings over ah_dqn.gin (the data, "
                              "the user model's fit)")


def main():
    args = FLAGS
    gin.clear_config()
    parse_gin(["ah_dqn"], args.gin_bindings, [run_mod.CONFIG_DIR])
    data = load_dataset()
    emb = build_embeddings(data.train, unlabelled=data.log).aligned_to(data.log.catalog)
    models = {"ground truth": GroundTruthUserModel(data.world),
              "sequential": run_mod.fit_or_load_user_model(data, emb),
              "logistic": run_mod.fit_or_load_user_model(data, emb,
                                                         model_ctor=LogisticUserModel)}
    assert isinstance(models["sequential"], SequentialUserModel)
    rng = np.random.default_rng(0)
    start = LogEpisodeSampler(data.test, 10, 100, hidden_sessions=data.hidden_path,
                              embeddings=emb, neighbour_share=0.5).sample(rng, args.episodes)
    h = History(start.history_tracks, start.history_responses, start.history_length,
                start.context, start.listener, start.hidden)
    B = h.batch_size
    cand = start.candidates[np.arange(B), rng.integers(0, start.candidates.shape[1], B)]
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-8)
    sims = unit[cand] @ unit.T
    sims[np.arange(B), cand] = -np.inf
    sims[np.arange(B)[:, None], np.maximum(start.history_tracks, 0)] = -np.inf
    neighbour = np.argmax(sims, 1)
    rand = rng.integers(0, len(emb), B)
    print(f"{B} episode starts, one pool candidate each; mean change of logit P(listen)")
    print(f"{'model':<14} {'taste pull (neighbour - random, listened)':>42} "
          f"{'skip (skipped - listened)':>26}")
    figures = {}
    for name, m in models.items():
        pull, skip = effects(m, h, cand, neighbour, rand)
        ci = lambda x: 1.96 * x.std() / np.sqrt(len(x))  # noqa: E731
        figures[name] = {"taste_pull": [float(pull.mean()), float(ci(pull))],
                         "skip_effect": [float(skip.mean()), float(ci(skip))]}
        print(f"{name:<14} {pull.mean():>+34.3f} +- {ci(pull):.3f} "
              f"{skip.mean():>+18.3f} +- {ci(skip):.3f}", flush=True)
    return figures


if __name__ == "__main__":
    cli.benchmark('long_term_effects', define_flags, main)
