"""Does what wins in the simulator win with real listeners?  (Not a test.)

A policy trained against the learned user model is scored "offline" (that model answers)
and "online" (the synthetic world's ground truth answers).  This measures the gap with
policies that need no training, so it is the simulator's, not an agent's:

1. The redundancy-aware greedy under the learned model (logit P(listen) - l *
   redundancy from observable vectors, `benchmarks/headroom.py`), for a sweep of l,
   on the same 1,000 test starts offline and online; paired gains over greedy (l = 0).
2. Where the learned model errs: along each policy's online episodes, the learned
   model's and the truth's P(listen) of the track played first in each slate, by
   quartile of its redundancy (how like the listener's recent listens it is).
3. With `--ensemble N`: N - 1 more sequential models fitted on bootstrap resamples of
   the training sessions (different seeds); their disagreement (standard deviation of
   logit P(listen)) on those same tracks, the signal an uncertainty-penalised
   (pessimistic, MOPO-style) simulator would use.  With `--logistic`, the logistic
   model's P(listen) there as a second opinion.
4. With `--decompose`: which half of the learned simulator limits a planner online.
   The redundancy-aware greedy run on the truth (online) with each pairing of P(listen)
   (the truth's, the learned model's, or `HistoryTaste`: the truth's response form with
   the listener's taste estimated from the heard tracks alone) and redundancy (the
   truth's latents or the observable vectors), for the penalties of `--lambdas`; gains
   over the greedy of the same P(listen).  Before that, at the episodes' first step:
   how the learned and the true logit P(listen) of the candidates agree, by quartile of
   the truth's redundancy, and what the top 3 by logit P(listen) - 3 x redundancy are
   worth under the truth when the learned model or the truth scores them.

   With `--posterior` only the `SessionPosterior` (an ideal observer of the session:
   the world's priors and response form, taste and pickiness inferred from the heard
   tracks' responses) is run, as P(listen).
Sections 1-2 start with 4a's agreement line for the model they use.

`--gin_bindings` reach the data and the model, e.g. the taste model
(`--gin_bindings="import user_models.taste" --gin_bindings="fit_or_load_user_model.
model_ctor = @TasteUserModel"`) or the random-exposure log:
`--gin_bindings="ensure_synthetic_world.directory = 'data/explore4000'"
--gin_bindings="ensure_synthetic_world.exploration_sessions = 4000"`.

    python benchmarks/transfer_gap.py [--episodes=1000] [--lambdas=0,0.5,1,2]
        [--ensemble=3] [--logistic] [--decompose] [--posterior]
        [--gin_bindings="ensure_synthetic_world.exploration_sessions = 4000"]
"""


import spotisim  # noqa: F401  (first: quiets the stack at import)
from absl import flags
import numpy as np

from spotisim import cli
from experiments import run as run_mod
from experiments.scripted_policies import (learned_redundancy, load, paired_gain, play,
                                           redundancy_greedy, truth_redundancy)
from spotisim.data.world.common import unit
from spotisim.data.world.listeners import Listeners
from user_models.ground_truth import GroundTruthUserModel


def _logit(p):
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def first_picks(env, policy, models, steps=8):
    """Plays `policy` on `env` (every lane's first episode, up to `steps` slates) and
    returns, for the first track of each slate played, [P(listen) under each of
    `models`] and its redundancy (rows of live lanes only)."""
    env.reset()
    live = np.ones(env.batch_size, bool)
    probs, reds = [], []
    for _ in range(steps):
        action = policy(env)
        cands, hist = env.candidate_tracks(), env.history()
        first = np.take_along_axis(cands, action[:, :1], 1)
        probs.append(np.stack([m.score_candidates(hist, first)[:, 0] for m in models], 1)[live])
        reds.append(policy.redundancy(env)[np.arange(env.batch_size), action[:, 0]][live])
        res = env.step(action)
        live &= ~res.done
        if not live.any():
            break
    return np.concatenate(probs), np.concatenate(reds)


class HistoryTaste:
    """P(listen) by the world's own response form, with what a log shows standing in for
    what it hides: the taste is the recency-weighted mean latent of the heard tracks
    (listens +1, skips -`skip_weight`, weights `decay` ** age), the listener's bias and
    the session's context and mood unknown (0).  It still reads the hidden latents and
    popularity of tracks, so it is not a bound; it shows what knowing the response form
    exactly buys when the listener's taste must be read from the session."""

    def __init__(self, world, decay: float = 0.9, skip_weight: float = 0.3):
        self.world, self.decay, self.skip_weight = world, decay, skip_weight
        z = np.asarray(world.track_latent, np.float64)
        self.z = z / np.linalg.norm(z, axis=1, keepdims=True)

    def score_candidates(self, history, candidates):
        c = self.world.config
        valid = history.tracks >= 0
        age = history.length[:, None] - 1 - np.arange(history.tracks.shape[1])[None, :]
        weight = np.where(valid, self.decay ** np.maximum(age, 0), 0.0)
        weight = weight * np.where(history.responses > 0, 1.0, -self.skip_weight)
        taste = (weight[..., None] * self.z[np.maximum(history.tracks, 0)]).sum(1)
        taste /= np.maximum(np.linalg.norm(taste, axis=1, keepdims=True), 1e-9)
        table = np.asarray(c.position_logit, np.float64)
        position = np.minimum(history.length + 1, len(table)) - 1
        logit = (c.base_logit + table[position][:, None]
                 + c.taste_weight * np.einsum("bd,bkd->bk", taste, self.z[candidates])
                 + c.popularity_weight * self.world.track_popularity[candidates])
        return 1.0 / (1.0 + np.exp(-logit))


class SessionPosterior:
    """P(listen) of an ideal observer of the session: the world's response form and
    generative priors (genre centroids, taste mixing, personal noise, pickiness, session
    mood, the taste's drift), with the listener's taste, pickiness and mood unknown and
    inferred from the heard tracks' listens and skips alone, by importance sampling over
    `particles` fresh draws from the priors (the same draws for every call).  It does
    not use which tracks the logging policy chose (which also says something about the
    taste), so it is a lower bound on what a session can tell, and no learned model of
    sessions can do better than it except through that choice.  Like `HistoryTaste`
    it reads the tracks' hidden latents and popularity."""

    def __init__(self, world, particles: int = 2000, seed: int = 0, chunk: int = 200):
        c = world.config
        rng = np.random.default_rng(seed)
        tastes = Listeners.draw_tastes(c, world.catalogue, rng, particles)
        start = Listeners(c, tastes, None, None).new_sessions(
            rng, particles, listeners=np.arange(particles), contexts=np.zeros(particles, int))
        self.mood = start.mood.astype(np.float32)
        self.taste0 = start.taste.astype(np.float32)
        self.bias = (c.listener_bias_sd * rng.normal(size=particles)).astype(np.float32)
        self.world, self.chunk = world, chunk
        self.z = np.asarray(world.track_latent, np.float32)
        self.pop = np.asarray(world.track_popularity, np.float32)

    def _fixed(self, context, position, streak):
        """The observable part of the logit [b]: base, context, position, skip streak."""
        c = self.world.config
        table = np.asarray(c.position_logit, np.float64)
        fat = -table[np.minimum(position, len(table)) - 1]
        ctx = np.asarray(c.context_bias, np.float64)[np.maximum(context, 0)]
        return (c.base_logit + ctx - fat
                - c.streak_penalty * np.minimum(streak, c.max_streak)).astype(np.float32)

    def score_candidates(self, history, candidates):
        c = self.world.config
        out = np.zeros(candidates.shape, np.float64)
        for lo in range(0, history.batch_size, self.chunk):
            h = history.take(np.arange(lo, min(lo + self.chunk, history.batch_size)))
            b = h.batch_size
            taste = np.broadcast_to(self.taste0, (b,) + self.taste0.shape).copy()
            loglik = np.zeros((b, len(self.bias)), np.float32)
            streak = np.zeros(b, np.int64)
            for t in range(h.tracks.shape[1]):
                valid = t < h.length
                if not valid.any():
                    break
                tr = np.maximum(h.tracks[:, t], 0)
                r = h.responses[:, t] > 0
                z = self.z[tr]
                logit = (self._fixed(h.context, np.full(b, t + 1), streak)[:, None]
                         + c.taste_weight * np.einsum("bmd,bd->bm", taste, z)
                         + c.popularity_weight * self.pop[tr][:, None] + self.bias[None])
                ll = -np.logaddexp(0.0, np.where(r[:, None], -logit, logit))
                loglik += np.where(valid[:, None], ll, 0.0)
                pull = (c.drift_listen * (r & valid))[:, None, None] * z[:, None, :]
                moved = unit(taste + pull + c.drift_mood * self.mood[None])
                taste = np.where(valid[:, None, None], moved, taste).astype(np.float32)
                streak = np.where(valid, np.where(r, 0, streak + 1), streak)
            w = np.exp(loglik - loglik.max(1, keepdims=True))
            w /= w.sum(1, keepdims=True)
            cand = candidates[lo:lo + b]
            logit = (self._fixed(h.context, h.length + 1, streak)[:, None, None]
                     + c.taste_weight * np.einsum("bmd,bkd->bmk", taste, self.z[cand])
                     + c.popularity_weight * self.pop[cand][:, None, :]
                     + self.bias[None, :, None])
            out[lo:lo + b] = np.einsum("bm,bmk->bk", w, 1.0 / (1.0 + np.exp(-logit)))
        return out


def _within(a, b):
    """Mean over episodes of the correlation across one episode's candidates."""
    return np.nanmean([np.corrcoef(x, y)[0, 1] for x, y in zip(a, b)])


def candidate_agreement(env, model, truth, truth_red, lam=3.0, others=()):
    """The first step's candidates: learned vs true logit P(listen) by redundancy
    quartile, and the true worth of each one's top 3 by logit - lam x redundancy;
    `others` ((name, model) pairs): their within-episode agreement too."""
    env.restart_rng()
    env.reset()
    hist, cands = env.history(), env.candidate_tracks()
    learned = _logit(model.score_candidates(hist, cands))
    true = _logit(truth.score_candidates(hist, cands))
    red = truth_red(env)
    print(f"4a. first-step candidates: learned vs true logit P(listen); correlation within "
          f"an episode's candidates {_within(learned, true):.3f} (mean over {len(learned)} "
          f"starts), overall {np.corrcoef(learned.ravel(), true.ravel())[0, 1]:.3f}; by "
          "redundancy quartile")
    for name, other in others:
        print(f"  {name}: correlation within an episode's candidates "
              f"{_within(_logit(other.score_candidates(hist, cands)), true):.3f}")
    edges = np.quantile(red, [0, 0.25, 0.5, 0.75, 1.0])
    for q in range(4):
        m = (red >= edges[q]) & (red <= edges[q + 1])
        print(f"  redundancy [{edges[q]:.2f}, {edges[q + 1]:.2f}]: correlation "
              f"{np.corrcoef(learned[m], true[m])[0, 1]:.3f}, mean P learned "
              f"{np.mean(1 / (1 + np.exp(-learned[m]))):.3f} truth "
              f"{np.mean(1 / (1 + np.exp(-true[m]))):.3f}")
    p_true = 1 / (1 + np.exp(-true))
    for name, score in (("learned", learned), ("truth", true)):
        top = np.argsort(-(score - lam * red), axis=1)[:, :3]
        print(f"  top 3 by {name} logit - {lam:g} x redundancy: true P(listen) "
              f"{np.take_along_axis(p_true, top, 1).mean():.3f}, redundancy "
              f"{np.take_along_axis(red, top, 1).mean():.2f}")


def decompose(online, model, truth, learned_red, truth_red, lambdas, sources=None):
    """Online listens of the redundancy-aware greedy for each pairing of P(listen) and
    redundancy (section 4 of the module docstring)."""
    if sources is None:
        history_taste = HistoryTaste(truth.world)
        candidate_agreement(online, model, truth, truth_red, others=(
            ("history taste", history_taste),
            ("session posterior", SessionPosterior(truth.world))))
        sources = (("truth", truth), ("learned", model), ("history taste", history_taste))
    print("4. online listens per episode: P(listen) from / redundancy from / penalty")
    for p_name, p_model in sources:
        online.restart_rng()
        base = play(online, redundancy_greedy(p_model, truth_red, 0.0))[0]
        print(f"  P {p_name}: greedy {base.mean():.2f}", flush=True)
        for r_name, red in (("truth latents", truth_red), ("observable vectors", learned_red)):
            for lam in (x for x in lambdas if x):
                online.restart_rng()
                x = play(online, redundancy_greedy(p_model, red, lam))[0]
                g = paired_gain(x, base)
                print(f"  P {p_name} / R {r_name} / l={lam:g}: {x.mean():.2f}  vs greedy "
                      f"{g[0]:+.1f}% [{g[1]:+.1f}, {g[2]:+.1f}]", flush=True)


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_integer('episodes', 1000, "episode starts per policy")
    flags.DEFINE_string('lambdas', "0,0.5,1,2", "redundancy penalties (comma-separated)")
    flags.DEFINE_integer('ensemble', 1, "fits of the learned model (pessimistic ensemble when > 1)")
    flags.DEFINE_bool('logistic', False, "the logistic model instead of the GRU")
    flags.DEFINE_bool('decompose', False, "decompose the gap into P(listen) and P(leave)")
    flags.DEFINE_bool('posterior', False, "with --decompose: only the session posterior (ideal observer)")
    flags.DEFINE_multi_string('gin_bindings', [], "gin bindings (the data, say)")


def main():
    args = FLAGS
    data, emb = load(["lird_ddpg"], args.gin_bindings)
    model = run_mod.fit_or_load_user_model(data, emb)
    truth = GroundTruthUserModel(data.world)
    redundancy = learned_redundancy(model)
    lambdas = [float(x) for x in args.lambdas.split(",")]

    def env(responder):
        return run_mod.make_builder(data.test, responder, emb, "slate", data.hidden_path,
                                    batch_size=args.episodes, seed=11, scorer=model).environment

    if args.decompose:
        sources = None
        if args.posterior:
            sources = (("session posterior", SessionPosterior(truth.world)),)
        decompose(env(truth), model, truth, redundancy, truth_redundancy(truth), lambdas,
                  sources)
        return None   # the decomposition's figures are its printed table
    print(f"the learned model: {type(model).__name__}")
    candidate_agreement(env(truth), model, truth, truth_redundancy(truth))
    print("1. redundancy-aware greedy under the learned model (listens per episode)")
    listens = {}
    for lam in lambdas:
        policy = redundancy_greedy(model, redundancy, lam)
        for mode, responder in (("offline", model), ("online", truth)):
            listens[(lam, mode)] = play(env(responder), policy)[0]
        line = f"  l={lam:g}: offline {listens[(lam, 'offline')].mean():.2f}  online " \
               f"{listens[(lam, 'online')].mean():.2f}"
        if lam != lambdas[0]:
            for mode in ("offline", "online"):
                g = paired_gain(listens[(lam, mode)], listens[(lambdas[0], mode)])
                line += f"   {mode} vs l={lambdas[0]:g}: {g[0]:+.1f}% [{g[1]:+.1f}, {g[2]:+.1f}]"
        print(line, flush=True)

    figures = {"listens": {f"{lam:g}/{mode}": float(v.mean())
                           for (lam, mode), v in listens.items()}, "first_picks": {}}
    members = [model]
    if args.ensemble > 1:
        from user_models.sequential import SequentialUserModel
        for i in range(1, args.ensemble):
            rng = np.random.default_rng(i)
            rows = np.sort(rng.integers(0, data.train.num_sessions, data.train.num_sessions))
            members.append(SequentialUserModel(emb, seed=i).fit(data.train.subset(rows), data.val))
    extra = []
    if args.logistic:
        from user_models.logistic import LogisticUserModel
        extra = [LogisticUserModel(emb).fit(data.train, data.val)]
    print("2. P(listen) of the first track of each slate, online episodes: learned model "
          "vs truth, by redundancy quartile")
    for lam in lambdas:
        policy = redundancy_greedy(model, redundancy, lam)
        policy.redundancy = redundancy
        p, red = first_picks(env(truth), policy, members + extra + [truth])
        learned, true = p[:, 0], p[:, -1]
        line = f"  l={lam:g}: {len(red)} tracks, learned {learned.mean():.3f} truth " \
               f"{true.mean():.3f} (gap {learned.mean() - true.mean():+.3f})"
        figures["first_picks"][f"{lam:g}"] = {"learned": float(learned.mean()),
                                              "truth": float(true.mean())}
        if args.ensemble > 1:
            sd = _logit(p[:, :args.ensemble]).std(1)
            line += f"; ensemble logit sd {sd.mean():.3f}"
        if extra:
            line += f"; logistic {p[:, args.ensemble].mean():.3f}"
        print(line)
        edges = np.quantile(red, [0, 0.25, 0.5, 0.75, 1.0])
        for q in range(4):
            m = (red >= edges[q]) & (red <= edges[q + 1])
            part = f"    redundancy [{edges[q]:.2f}, {edges[q + 1]:.2f}]: learned " \
                   f"{learned[m].mean():.3f} truth {true[m].mean():.3f} gap " \
                   f"{learned[m].mean() - true[m].mean():+.3f}"
            if args.ensemble > 1:
                part += f"  ensemble sd {_logit(p[m, :args.ensemble]).std(1).mean():.3f}"
            print(part, flush=True)
    return figures


if __name__ == "__main__":
    cli.benchmark('transfer_gap', define_flags, main)
