"""Analysis (not a test): how much of the gap between a learned user model and the
ground truth is hidden information?

The ground truth knows each session's listener and mood; a model of the log sees only
the tracks and responses.  This script computes a *posterior-predictive oracle*: it
knows the world's response model exactly but not the listener or mood, and averages the
ground-truth P(listen) over every listener (uniform prior) x `--moods` sampled moods,
weighted by the likelihood of the responses observed so far in the session.  It ignores
the information carried by which tracks the logging policy chose, so it slightly
understates what is observable, but it shows where the ceiling for any model of the log
lies.

    python benchmarks/observable_limit.py [--sessions=200] [--moods=32]
"""


import spotisim  # noqa: F401  (first: quiets the stack at import)
from absl import flags
import numpy as np

from spotisim import cli
from spotisim.data.datasets import load_dataset
from spotisim.data.synthetic import ListenerState, _unit
from user_models import evaluation
from user_models.ground_truth import GroundTruthUserModel


def posterior_oracle(w, tracks, skipped, mask, ctx, moods: int,
                     rng: np.random.Generator, learn: bool = True) -> np.ndarray:
    """P(listen) of every row (in `mask` order) from the world's own response model,
    averaged over every listener x `moods` sampled moods, each hypothesis weighted by the
    likelihood of the session's responses before the row (`learn`; with False the
    weights stay uniform: the prior, which learns nothing from the session)."""
    U, D = w.config.num_listeners, w.config.latent_dim
    listeners = np.repeat(np.arange(U), moods)
    n_h = len(listeners)
    oracle = np.zeros(tracks.shape)
    for s in range(len(tracks)):
        mood = _unit(rng.normal(size=(n_h, D)))
        taste = _unit(w.listener_taste[listeners] + w.config.mood_weight * mood)
        st = ListenerState(listeners, np.full(n_h, ctx[s]), mood, taste,
                           np.zeros(n_h, np.int64), np.ones(n_h, np.int64))
        logw = np.zeros(n_h)
        for t in range(int(mask[s].sum())):
            p = w.listen_prob(st, np.full((n_h, 1), tracks[s, t]))[:, 0]
            wt = np.exp(logw - logw.max())
            oracle[s, t] = (wt * p).sum() / wt.sum()
            listened = not skipped[s, t]
            if learn:
                logw += np.log(p if listened else 1 - p)
            st = w.advance(st, np.full(n_h, tracks[s, t]), np.full(n_h, listened))
    return oracle[mask]


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_integer('sessions', 200, "test sessions scored")
    flags.DEFINE_integer('moods', 32, "mood hypotheses per listener")
    flags.DEFINE_integer('seed', 0, "seed of the sessions and the moods")
    flags.DEFINE_multi_string('model', [], "saved user model directories to score on the same sessions")


def main():
    args = FLAGS
    data = load_dataset()
    w = data.world
    test = data.test.subset(np.arange(min(args.sessions, data.test.num_sessions)))
    rng = np.random.default_rng(args.seed)
    U, M = w.config.num_listeners, args.moods
    tracks, skipped, mask = test.padded()
    p_oracle = posterior_oracle(w, tracks, skipped, mask, test.session_context(), M, rng)
    y = ~test.skipped
    gt = evaluation.predict_log(GroundTruthUserModel(w), test, data.hidden(test))
    print(f"{test.num_sessions} test sessions, {len(y)} rows; hypotheses per session: "
          f"{U} listeners x {M} moods")
    rows = [("ground truth (knows listener + mood)", gt),
            ("posterior oracle (observables only)", p_oracle)]
    from user_models import load_user_model
    for d in args.model:
        m = load_user_model(d)
        rows.append((f"{type(m).__name__} ({d})", evaluation.predict_log(m, test)))
    figures = {}
    for name, p in rows:
        figures[name] = {"accuracy": float(((p >= 0.5) == y).mean()),
                         "auc": evaluation.roc_auc(y, p), "log_loss": evaluation.log_loss(y, p)}
        print(f"{name:<60} acc {((p >= 0.5) == y).mean():.4f}  AUC "
              f"{evaluation.roc_auc(y, p):.4f}  log loss {evaluation.log_loss(y, p):.4f}")
    return figures


if __name__ == "__main__":
    cli.benchmark('observable_limit', define_flags, main)
