"""Offline/online alignment of the close calls: does the simulator rank the policies a
team actually chooses between the way real listeners do?

    python -m experiments.alignment [--gin_file=alignment.gin] [--gin_bindings=...]

The policies are the main job's baselines (random, most popular, nearest neighbour,
greedy on the learned model, the logging policy), the redundancy-aware greedy at several
penalties, and trained agents (LIRD-DDPG, AH-DQN, DQN with Q-ranked slates, each at two
training lengths; trained into `<run_dir>/agents/<name>` when not there yet, reused
after).  Every policy plays the same episode starts (paired) offline, under each
simulator in `run_alignment.simulators`, and online, under the synthetic world's ground
truth.  For each simulator the study reports Kendall's tau between the offline and the
online means with a paired bootstrap 95% interval (starts resampled), tau among the
policies that beat random online (top-tau), Spearman's rho, regret@1 (what shipping the
offline favourite costs against the online best) and each policy's offline error.
Every evaluation draws its responses from common random numbers (the same luck for
every policy and scorer on a start, `spotisim.common_draws`), and the truth is scored
once more with other draws (`ceiling_stream`): the figures a perfect simulator would
get on these starts, the ceiling of every aim.

It also measures where one simulator's error comes from (`run_alignment.decompose`, the
first by default), per policy (`experiments.offline_error`): its P(listen) with the
truth's leaving, the truth's P(listen) with its leaving, and its bias along the truth's
own episodes.

The simulator the last line reports is `run_alignment.chosen`; 'auto' chooses, without
ground truth, the one whose P(listen) predicts the held-out sessions of the data's
exposure slice best.

Writes alignment.json and alignment.png (`run_alignment.output`) into the run directory
(evaluations are cached under `<run_dir>/scores/`, one file per policy group, scorer
and settings, so a stopped study resumes, a study with one more simulator scores only
that one, and a study under other settings does not reuse them).  The last printed line
is

    alignment: tau=X [lo, hi] top-tau=Z regret@1=Y% policies=N
"""

from __future__ import annotations

import functools
import json
import os
import time
from typing import Dict, List, Mapping, Optional, Sequence

import gin

import spotisim  # noqa: F401  (first: quiets the stack at import)
import numpy as np
from absl import flags

from agents.baselines import RedundancyGreedyPolicy
from experiments import offline_error
from experiments.run import CONFIG_DIR
from experiments.runner import run_experiment
from experiments.score_cache import cached_scores, evaluate_clean, settings_key, simulator_code
from experiments.user_model_cache import CALIBRATED, check_user_model_name
from spotisim import cli
from spotisim.errors import ConfigError
from spotisim.gin_utils import parse_gin
from spotisim.io_utils import atomic_file
from spotisim.stats import kendall_tau, spearman_rho
from spotisim.tables import number_or_dash, render_table

#: The main job's baselines (greedy on the learned model and the logging policy
#: included); the redundancy-aware greedy is added at each of `penalties`.
BASELINES = ("random", "most_popular", "nearest_neighbour", "greedy_user_model",
             "logging_policy")

#: name -> gin files and bindings of one trained agent (a binding has a '=').
DEFAULT_AGENTS = {
    "lird_ddpg_1500": ("lird_ddpg", "run_experiment.num_iterations = 1500"),
    "lird_ddpg_3000": ("lird_ddpg",),
    "ah_dqn_1500": ("ah_dqn_leave", "run_experiment.num_iterations = 1500"),
    "ah_dqn_3000": ("ah_dqn_leave",),
    "dqn_ranked_1500": ("dqn_ranked_leave", "run_experiment.num_iterations = 1500"),
    "dqn_ranked_3000": ("dqn_ranked_leave",),
}

#: The study's data (alignment.gin's bindings): the default world with a random-exposure
#: slice beside its log, the user model fitted on the log alone.  Benchmarks that probe
#: the study's simulators use the same.
STUDY_DATA = ["ensure_synthetic_world.directory = 'data/default_explore'",
              "ensure_synthetic_world.exploration_sessions = 4000",
              "fit_or_load_user_model.use_exposure = False"]

ONLINE = "ground_truth"
#: The ground truth on the same starts with another draw stream: the noise ceiling.
CEILING = "ground_truth, other draws"
#: `run_alignment.chosen` for the simulator the exposure slice prefers.
AUTO = "auto"


def penalty_name(penalty: float) -> str:
    return f"redundancy_greedy_{penalty:g}"


# ---------------------------------------------------------------- the statistics


def close_call_metrics(offline: np.ndarray, online: np.ndarray,
                       beats_random: np.ndarray) -> Dict[str, float]:
    """The study's figures for one simulator from per-policy means.

    Args:
      offline, online: [P] mean listens per episode of each policy.
      beats_random: [P] bool, the policies above random online (top-tau's set).

    Returns: kendall_tau, top_tau (NaN with fewer than 2 policies in the set),
    spearman_rho, regret_at_1 (percent of the online best that the offline favourite
    loses; ties for the favourite count at their worst), max_abs_error (the largest
    |offline / online - 1|, percent).
    """
    offline, online = np.asarray(offline, float), np.asarray(online, float)
    top = np.asarray(beats_random, bool)
    favourites = np.flatnonzero(offline == offline.max())
    best = online.max()
    return {
        "kendall_tau": kendall_tau(offline, online),
        "top_tau": kendall_tau(offline[top], online[top]) if top.sum() >= 2 else float("nan"),
        "spearman_rho": spearman_rho(offline, online),
        "regret_at_1": float(100.0 * (best - online[favourites].min()) / best),
        "max_abs_error": float(100.0 * np.max(np.abs(offline / online - 1.0))),
    }


def bootstrap_close_calls(offline: np.ndarray, online: np.ndarray, beats_random: np.ndarray,
                          resamples: int = 1000, seed: int = 0) -> Dict[str, dict]:
    """`close_call_metrics` with paired bootstrap 95% intervals: the starts (columns of
    the [P, N] per-episode listens, the same starts for every policy and both sides)
    are resampled together, so each draw keeps the pairing.  top-tau's set is fixed at
    the point estimate's.  Also `policy_errors`: each policy's offline error (percent)
    with its interval, in the policies' order."""
    offline, online = np.asarray(offline, float), np.asarray(online, float)
    if offline.shape != online.shape:
        raise ValueError(f"offline {offline.shape} and online {online.shape} must be "
                         "[policies, starts] on the same starts")
    n = offline.shape[1]
    point = close_call_metrics(offline.mean(1), online.mean(1), beats_random)
    rng = np.random.default_rng(seed)
    draws: Dict[str, List[float]] = {k: [] for k in point}
    errors = []
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        off, on = offline[:, idx].mean(1), online[:, idx].mean(1)
        for k, v in close_call_metrics(off, on, beats_random).items():
            draws[k].append(v)
        errors.append(100.0 * (off / on - 1.0))
    errors = np.asarray(errors).reshape(-1, len(offline))
    lo_e, hi_e = (np.percentile(errors, [2.5, 97.5], axis=0) if resamples
                  else (np.full(len(offline), np.nan),) * 2)
    out = {"policy_errors": [
        {"value": float(100.0 * (o / m - 1.0)), "lo": float(a), "hi": float(b)}
        for o, m, a, b in zip(offline.mean(1), online.mean(1), lo_e, hi_e)]}
    for k, v in point.items():
        d = np.asarray(draws[k], float)
        d = d[np.isfinite(d)]
        lo, hi = (np.percentile(d, [2.5, 97.5]) if len(d) else (np.nan, np.nan))
        out[k] = {"value": v, "lo": float(lo), "hi": float(hi)}
    return out


# ---------------------------------------------------------------- the study


def _split(entries: Sequence[str]):
    """gin files (no '=') and bindings (with one) of an agent's entry."""
    return ([e for e in entries if "=" not in e], [e for e in entries if "=" in e])


def _train_agent(name: str, entries: Sequence[str], bindings: Sequence[str],
                 agent_dir: str) -> None:
    """Trains one agent with the main job's runner (resumes a stopped one)."""
    files, own = _split(entries)
    gin.clear_config()
    try:
        parse_gin(files, list(bindings) + own, [CONFIG_DIR])
        print(f"training {name} into {agent_dir}", flush=True)
        run_experiment(agent_dir)
    finally:
        gin.clear_config()


def _calibration_selection(run: str, simulator: str, bindings: Sequence[str]) -> dict:
    """The exposure calibration of `simulator` (fitted weights and the held-out log
    losses that chose its parts) on the reference run's data."""
    from experiments.user_model_cache import user_model_by_name
    from experiments.assembly import parse_run_config
    from spotisim.data.datasets import load_dataset
    from spotisim.embeddings import build_embeddings
    gin.clear_config()
    try:
        parse_run_config(run, bindings)
        data = load_dataset()
        emb = build_embeddings(data.train, unlabelled=data.log).aligned_to(data.log.catalog)
        cal = user_model_by_name(simulator, data, emb).calibration
    finally:
        gin.clear_config()
    return {"listen": list(cal.listen), "leave": list(cal.leave), **cal.selection}


def slice_log_losses(run: str, simulators: Sequence[str], bindings: Sequence[str],
                      holdout: float = 0.2, seed: int = 0) -> Dict[str, dict]:
    """Each simulator's log loss on the exposure-slice sessions every recalibration
    holds out (`ExposureCalibration.fit`'s 20%, the same seed): of P(listen) on their
    randomly exposed rows (`log_loss`), of P(leave) on their at-risk rows after those
    (`leave_log_loss`, `slice_leave_rows`), and both as one likelihood of the
    sessions (`joint`: every row's loss summed, per held-out session).  What a team can
    choose its simulator by, with its logs and its slice and no ground truth: the
    joint, since simulators that answer P(listen) alike may leave by different models.
    {} when the data has no slice."""
    from experiments.assembly import parse_run_config
    from experiments.user_model_cache import user_model_by_name
    from spotisim.data.datasets import load_dataset
    from spotisim.embeddings import build_embeddings
    from user_models.evaluation import predict_log
    from user_models.exposure_calibration import log_loss, row_log_loss, slice_leave_rows
    gin.clear_config()
    try:
        parse_run_config(run, bindings)
        data = load_dataset()
        if data.exposure is None:
            return {}
        emb = build_embeddings(data.train, unlabelled=data.log).aligned_to(data.log.catalog)
        log = data.exposure.log
        held = np.random.default_rng(seed).random(log.num_sessions) < holdout
        rows = held[log.session_of_row] & (log.positions > data.exposure.explore_from)
        listened = ~log.skipped[rows]
        out = {}
        for name in simulators:
            model = user_model_by_name(name, data, emb)
            p = predict_log(model, log)[rows]
            out[name] = {"log_loss": log_loss(p, listened), "rows": int(rows.sum()),
                         "mean_p": float(p.mean()), "mean_listened": float(listened.mean()),
                         "leave_log_loss": None, "joint": None}
            leave = slice_leave_rows(model, data.exposure)
            if leave is None:  # a model that never ends a session: no joint to compare
                continue
            at = held[leave["session"]]
            h, left = leave["h"][at], leave["left"][at]
            # Each held-out session's summed loss, in session order: the paired
            # differences `slice_choice` weighs against their noise.
            per_session = (np.bincount(log.session_of_row[rows], row_log_loss(p, listened),
                                       log.num_sessions)
                           + np.bincount(leave["session"][at], row_log_loss(h, left),
                                         log.num_sessions))[held]
            out[name].update({
                "leave_log_loss": log_loss(h, left), "leave_rows": int(at.sum()),
                "mean_h": float(h.mean()), "mean_left": float(left.mean()),
                "joint": (log_loss(p, listened) * rows.sum() + log_loss(h, left) * at.sum())
                / max(int(held.sum()), 1),
                "session_joint": per_session.tolist()})
        return out
    finally:
        gin.clear_config()


def slice_choice(selection: Mapping[str, dict]) -> str:
    """The simulator the held-out slice sessions are likeliest under: the lowest joint
    log loss (P(listen) and P(leave)), among the simulators that model leaving; by
    P(listen) alone when none does.

    The first simulator that models leaving is the incumbent: another replaces it only
    where the sessions prefer it by more than their noise (its mean per-session gain
    above twice the standard error of the paired per-session differences,
    `session_joint`), the rule `ExposureCalibration.fit` keeps a part by.  Why: a
    simulator the slice cannot tell from the incumbent is no evidence for a change.
    (It does not make the slice see everything: a simulator likelier by 2.2 standard
    errors ranked the policies worse, docs/offline_verdicts.md, "Boredom read in the
    taste space".)"""
    leaving = {s: v for s, v in selection.items() if v.get("joint") is not None}
    if not leaving:
        return min(selection, key=lambda s: selection[s]["log_loss"])
    incumbent = next(iter(leaving))
    best = min(leaving, key=lambda s: leaving[s]["joint"])
    if best == incumbent or "session_joint" not in leaving[incumbent]:
        return best
    gain = (np.asarray(leaving[incumbent]["session_joint"], np.float64)
            - np.asarray(leaving[best]["session_joint"], np.float64))
    se = gain.std(ddof=1) / np.sqrt(len(gain)) if len(gain) > 1 else np.inf
    return best if gain.mean() > 2 * se else incumbent


@gin.configurable
def run_alignment(run_dir: str, simulators: Sequence[str] = ("sequential",),
                  chosen: Optional[str] = None,
                  agents: Mapping[str, Sequence[str]] = DEFAULT_AGENTS,
                  penalties: Sequence[float] = (0.5, 1.0, 2.0),
                  baselines: Sequence[str] = BASELINES,
                  bindings: Sequence[str] = (), episodes: int = 2048,
                  resamples: int = 1000, decompose: Optional[str] = "",
                  decompose_episodes: Optional[int] = None,
                  ceiling_stream: Optional[int] = 1,
                  output: str = "alignment") -> dict:
    """Trains the agents that are missing, scores every policy offline and online on
    the same starts, and computes the alignment figures.

    Args:
      simulators: learned user models (registered names) whose offline verdicts are
        tested; `chosen` (default the first) is the one the last line reports, or
        'auto': the one whose P(listen) predicts the held-out exposure-slice sessions
        best (`slice_selection` in the output; no ground truth involved).
      agents: name -> gin files and bindings of each trained agent; the first one's run
        also fixes the baselines' environment (the main job's, by default).
      penalties: the redundancy-aware greedy's penalties, one policy each.
      bindings: gin bindings for every agent's training and every evaluation (the
        data, say).  Bindings given on the command line are added here.
      episodes: paired episode starts per policy and scorer.
      resamples: bootstrap resamples of the starts.
      decompose: a simulator whose error is decomposed (`experiments.offline_error`;
        "" for the first of `simulators`, None for none).
      decompose_episodes: starts for the decomposition (default `episodes`).
      ceiling_stream: the draw stream (`evaluation_draws.stream`, not 0) of a second
        online scoring on the same starts, reported as the simulator CEILING: the
        figures a perfect simulator would get, given the noise of the online figures
        themselves on these starts.  None: not scored.
      output: the name of the figures' files in `run_dir` (<output>.json, .png), so
        studies that share the agents keep their own.
    """
    t0 = time.perf_counter()
    if not agents:
        raise ConfigError("run_alignment.agents: at least one agent (its run also fixes "
                          "the baselines' environment)")
    chosen = chosen or simulators[0]
    settings = [("decompose", decompose or simulators[0])]
    if chosen != AUTO:
        settings.append(("chosen", chosen))
    for setting, name in settings:
        if name not in simulators:
            raise ConfigError(f"run_alignment.{setting}: {name!r} is not one of "
                              f"run_alignment.simulators {list(simulators)}")
    for name in simulators:
        check_user_model_name(name, "run_alignment.simulators:")
    if ceiling_stream is not None and int(ceiling_stream) <= 0:
        raise ConfigError(f"run_alignment.ceiling_stream: a draw stream other than the "
                          f"evaluations' 0, got {ceiling_stream}")
    if "random" not in baselines:
        raise ConfigError("run_alignment.baselines must include 'random' (top-tau ranks "
                          "the policies that beat it)")
    bad = [p for p in penalties if not np.isfinite(p) or p < 0]
    if bad:
        raise ConfigError(f"run_alignment.penalties: each must be a finite number >= 0, "
                          f"got {bad}")
    os.makedirs(os.path.join(run_dir, "scores"), exist_ok=True)
    agent_dirs = {}
    for name, entries in agents.items():
        agent_dirs[name] = os.path.join(run_dir, "agents", name)
        if not os.path.exists(os.path.join(agent_dirs[name], "metrics.json")):
            _train_agent(name, entries, bindings, agent_dirs[name])
    reference = agent_dirs[next(iter(agents))]
    model_policies = {penalty_name(p): functools.partial(RedundancyGreedyPolicy, penalty=p)
                      for p in penalties}
    scores: Dict[str, Dict[str, dict]] = {}

    def score(scorer: str, label: str, scorer_bindings: Sequence[str]) -> None:
        """Every policy under `scorer`, kept as `label` (one cache per scorer and
        settings: a study with one more scores only it)."""
        code = simulator_code(scorer)
        key = settings_key(scorer, episodes, list(scorer_bindings), *([code] if code else []))
        base_key = settings_key(key, list(baselines), list(penalties), reference)
        print(f"scoring the baselines under {label}", flush=True)
        got = cached_scores(
            os.path.join(run_dir, "scores", f"baselines-{base_key}.json"),
            lambda: evaluate_clean(reference, [scorer], scorer_bindings, episodes=episodes,
                                   baselines=list(baselines) + list(model_policies),
                                   model_policies=model_policies, with_agent=False))
        for policy, by_scorer in got.items():
            scores.setdefault(policy, {})[label] = by_scorer[scorer]
        for name, directory in agent_dirs.items():
            print(f"scoring {name} under {label}", flush=True)
            got = cached_scores(os.path.join(run_dir, "scores", f"{name}-{key}.json"),
                                lambda: evaluate_clean(directory, [scorer], scorer_bindings,
                                                       episodes=episodes, baselines=[]))
            # The run's agent, under its own name.
            scores.setdefault(name, {})[label] = next(iter(got.values()))[scorer]

    # The online figures first (every simulator is measured against them), then the
    # truth once more on the same starts with independent luck (how well the online
    # ranking agrees with itself: the most any simulator can show), then the simulators.
    score(ONLINE, ONLINE, bindings)
    if ceiling_stream is not None:
        score(ONLINE, CEILING, list(bindings) + [f"evaluation_draws.stream = {ceiling_stream}"])
    for scorer in simulators:
        score(scorer, scorer, bindings)
    selection = (slice_log_losses(reference, simulators, bindings)
                 if chosen == AUTO or len(simulators) > 1 else {})
    if chosen == AUTO:
        if not selection:
            raise ConfigError("run_alignment.chosen = 'auto' needs data with an exposure "
                              "slice (exposure_slice.gin) to choose the simulator by")
        chosen = slice_choice(selection)
    names = list(scores)
    online = np.array([scores[p][ONLINE]["episode_rewards"] for p in names], float)
    if len({len(r) for r in online}) != 1:
        raise ConfigError("the policies did not all play the same number of starts")
    beats_random = online.mean(1) > online[names.index("random")].mean()
    per_sim = {}
    for sim in list(simulators) + ([CEILING] if ceiling_stream is not None else []):
        offline = np.array([scores[p][sim]["episode_rewards"] for p in names], float)
        per_sim[sim] = bootstrap_close_calls(offline, online, beats_random, resamples)
        per_sim[sim]["offline_favourite"] = names[int(np.argmax(offline.mean(1)))]
    out = {"policies": names, "online_best": names[int(np.argmax(online.mean(1)))],
           "beats_random": [n for n, b in zip(names, beats_random) if b],
           "table": {p: {s: scores[p][s]["mean_episode_reward"] for s in scores[p]}
                     for p in names},
           "alignment": per_sim, "chosen": chosen, "slice_selection": selection,
           "episodes": episodes,
           "agents": {k: list(v) for k, v in agents.items()}, "bindings": list(bindings)}
    calibrated_sims = [s for s in simulators if s.endswith("+" + CALIBRATED)]
    if calibrated_sims:
        out["calibration"] = _calibration_selection(reference, calibrated_sims[0], bindings)
    if decompose is not None:
        target = decompose or simulators[0]
        print(f"decomposing {target}'s error", flush=True)
        out["decomposed"] = target
        out["decomposition"] = offline_error.decompose(
            run_dir, target, reference, agent_dirs, baselines, model_policies, bindings,
            decompose_episodes or episodes, scores, evaluate_clean, cached_scores,
            settings_key(target, decompose_episodes or episodes, list(bindings),
                         list(baselines), list(penalties), reference))
    out["seconds"] = time.perf_counter() - t0
    with atomic_file(os.path.join(run_dir, output + ".json")) as f:
        json.dump(out, f, indent=1)
    _plot(os.path.join(run_dir, output + ".png"), out)
    return out


def _plot(path: str, out: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sims = list(out["alignment"])
    fig, axes = plt.subplots(1, len(sims), figsize=(6 * len(sims), 5), squeeze=False)
    names = out["policies"]
    online = [out["table"][p][ONLINE] for p in names]
    for ax, sim in zip(axes[0], sims):
        offline = [out["table"][p][sim] for p in names]
        ax.scatter(offline, online)
        lo, hi = min(offline + online), max(offline + online)
        ax.plot([lo, hi], [lo, hi], lw=0.8, color="grey")   # offline = online
        for x, y, n in zip(offline, online, names):
            ax.annotate(n, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        a = out["alignment"][sim]
        ax.set_title(f"{sim}: tau {a['kendall_tau']['value']:+.2f}, top-tau "
                     f"{a['top_tau']['value']:+.2f}, regret@1 {a['regret_at_1']['value']:.1f}%")
        ax.set_xlabel("offline listens / episode (simulator)")
        ax.set_ylabel("online listens / episode (ground truth)")
    fig.tight_layout()
    with atomic_file(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)


def format_table(out: dict) -> str:
    sims = list(out["alignment"])
    labels = ["ceiling" if s == CEILING else s if len(s) <= 14 else f"simulator {i + 1}"
              for i, s in enumerate(sims)]
    rows = [[p, f"{out['table'][p][ONLINE]:.2f}"] + [
        c for s in sims for c in (f"{out['table'][p][s]:.2f}",
                                  f"{100 * (out['table'][p][s] / out['table'][p][ONLINE] - 1):+.1f}%")]
        for p in sorted(out["policies"], key=lambda p: -out["table"][p][ONLINE])]
    lines = [render_table(["policy", "online"] + [c for label in labels
                                                  for c in (label, "error")], rows)]
    lines.append(f"(mean listens per episode on {out['episodes']} paired starts; error = "
                 "offline / online - 1; online best: " + out["online_best"] + ")")
    lines += [f"{label} = {s}" for label, s in zip(labels, sims) if label != s]
    selection = out.get("slice_selection") or {}
    if selection:
        lines.append("held-out exposure slice, log loss of P(listen) / of P(leave) / "
                     "joint per session (the joint is the choice without ground truth): "
                     + ", ".join(f"{s} {v['log_loss']:.4f} / "
                                 f"{number_or_dash(v.get('leave_log_loss'), 4)} / "
                                 f"{number_or_dash(v.get('joint'), 3)}"
                                 for s, v in selection.items())
                     + f"; chosen: {out['chosen']}")
    for s, a in out["alignment"].items():
        f = {k: a[k] for k in ("kendall_tau", "top_tau", "spearman_rho", "regret_at_1",
                               "max_abs_error")}
        lines.append(
            f"{s}: tau {f['kendall_tau']['value']:+.3f} [{f['kendall_tau']['lo']:+.3f}, "
            f"{f['kendall_tau']['hi']:+.3f}]  top-tau {f['top_tau']['value']:+.3f} "
            f"[{f['top_tau']['lo']:+.3f}, {f['top_tau']['hi']:+.3f}]  rho "
            f"{f['spearman_rho']['value']:+.3f}  regret@1 {f['regret_at_1']['value']:.2f}% "
            f"[{f['regret_at_1']['lo']:.2f}, {f['regret_at_1']['hi']:.2f}]  largest |error| "
            f"{f['max_abs_error']['value']:.1f}%  offline favourite {a['offline_favourite']}")
    if "calibration" in out:
        c = out["calibration"]
        lines.append(
            f"exposure calibration (held-out slice, log loss base -> calibrated): P(listen) "
            f"{c['listen_log_loss_base']:.4f} -> {c['listen_log_loss_calibrated']:.4f} "
            f"({'kept' if c['listen_kept'] else 'not kept'}), P(leave) "
            f"{c['leave_log_loss_base']:.4f} -> {c['leave_log_loss_calibrated']:.4f} "
            f"({'kept' if c['leave_kept'] else 'not kept'})")
    if "decomposition" in out:
        lines.append(f"{out['decomposed']}: " +
                     offline_error.format_decomposition(out["decomposition"]))
    return "\n".join(lines)


def last_line(out: dict) -> str:
    """`alignment: tau=X [lo, hi] top-tau=Z regret@1=Y% policies=N` for the chosen
    simulator."""
    a = out["alignment"][out["chosen"]]
    t, top, r = a["kendall_tau"], a["top_tau"], a["regret_at_1"]
    return (f"alignment: tau={t['value']:.3f} [{t['lo']:.3f}, {t['hi']:.3f}] "
            f"top-tau={top['value']:.3f} regret@1={r['value']:.2f}% "
            f"policies={len(out['policies'])}")


FLAGS = flags.FLAGS


def define_flags() -> None:
    """Command-line flags, defined only when this module runs as the program (several
    entry points live in one test process)."""
    flags.DEFINE_multi_string("gin_file", [], "config: a path or a name in experiments/configs")
    flags.DEFINE_multi_string("gin_bindings", [], "gin bindings (also passed to every "
                              "agent's training and evaluation)")
    flags.DEFINE_string("run_dir", "runs/alignment", "output directory")


def _main() -> None:
    parse_gin(FLAGS.gin_file or ["alignment"], FLAGS.gin_bindings, [CONFIG_DIR])
    try:
        extra = list(gin.query_parameter("run_alignment.bindings") or ())
    except ValueError:
        extra = []
    own = [b for b in FLAGS.gin_bindings if not b.strip().startswith("run_alignment.")]
    out = run_alignment(FLAGS.run_dir, bindings=extra + own)
    cli.print_study_end(format_table(out), FLAGS.run_dir, last_line(out))


main = cli.absl_main(_main)

if __name__ == "__main__":
    cli.start(define_flags, main)
