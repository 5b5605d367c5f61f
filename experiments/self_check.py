"""Can this simulator separate policies at all?  Checks every report carries beside its
ranking, so that a table of near-equal numbers is read as what it is.

* **Track permutation**: the user model's test AUC with every track given another
  track's representation (embedding and per-track parameters).  If it barely falls,
  the model ignores which track is played, and policy comparisons under it say little.
* **Offline spread**: the best baseline's offline skip rate against random's, paired on
  the same episode starts, with a 95% interval.  If the interval holds 0, the simulator
  cannot tell a good policy from a random one.
* **Offline vs replay** (real logs, where nothing else gives a real outcome): Kendall's
  tau between the policies' offline skip rates and their replay skip rates (logged
  outcomes of recommended tracks the held-out session played), with a 95% interval from
  resampling episode starts.

Per-policy skip rates get 95% intervals from the same resampling (`skip_rate_ci`).
"""

from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from spotisim.stats import kendall_tau, mean_interval
from user_models import evaluation

#: AUC lost to shuffling the tracks below which the report warns.
MIN_PERMUTATION_DROP = 0.01
RESAMPLES = 400


def permutation_check(user_model, test_log, seed: int = 0) -> dict:
    """Test AUC of `user_model` as is and with the tracks' representations permuted."""
    auc = evaluation.roc_auc(~test_log.skipped, evaluation.predict_log(user_model, test_log))
    out = {"auc": auc}
    emb = getattr(user_model, "embeddings", None)
    try:
        perm = np.random.default_rng(seed).permutation(len(emb) if emb is not None else 0)
        shuffled = user_model.remapped(perm, emb[perm]) if emb is not None else None
    except Exception as exc:  # a model that cannot be remapped: say so, do not guess
        shuffled, out["skipped"] = None, f"{type(user_model).__name__}: {exc}"
    if shuffled is None:
        out.setdefault("skipped", f"{type(user_model).__name__} has no track representation")
        return out
    out["auc_tracks_permuted"] = evaluation.roc_auc(
        ~test_log.skipped, evaluation.predict_log(shuffled, test_log))
    out["auc_drop"] = out["auc"] - out["auc_tracks_permuted"]
    out["uses_tracks"] = bool(out["auc_drop"] >= MIN_PERMUTATION_DROP)
    return out


def _rates(m: dict, idx: np.ndarray) -> float:
    heard = np.asarray(m["episode_heard"])[idx].sum()
    return 1.0 - np.asarray(m["episode_listens"])[idx].sum() / max(heard, 1)


def _replay(m: dict, idx: np.ndarray) -> float:
    n = np.asarray(m["episode_replay_counted"])[idx].sum()
    return np.asarray(m["episode_replay_skips"])[idx].sum() / n if n else np.nan


def skip_rate_ci(metrics: Dict[str, dict], mode: str, seed: int = 0) -> Dict[str, dict]:
    """Per policy: its skip rate in `mode` with a 95% interval from resampling episode
    starts (the same resample for every policy: they played the same starts)."""
    names = [n for n, modes in metrics.items() if mode in modes and
             "episode_heard" in modes[mode]]
    if not names:
        return {}
    n_ep = len(metrics[names[0]][mode]["episode_heard"])
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, n_ep, n_ep) for _ in range(RESAMPLES)]
    out = {}
    for name in names:
        m = metrics[name][mode]
        boot = [_rates(m, d) for d in draws]
        lo, hi = np.percentile(boot, [2.5, 97.5])
        out[name] = {"mean": float(_rates(m, np.arange(n_ep))), "lo": float(lo), "hi": float(hi)}
    return out


def offline_spread(metrics: Dict[str, dict], baselines: List[str]) -> Optional[dict]:
    """The best baseline (lowest offline skip rate) minus random, per episode start:
    the mean difference of per-episode skip rates with its t-interval."""
    have = [b for b in baselines if b in metrics and "offline" in metrics[b]
            and "episode_heard" in metrics[b]["offline"]]
    if "random" not in have or len(have) < 2:
        return None
    rates = {b: 1.0 - np.asarray(metrics[b]["offline"]["episode_listens"], float)
             / np.maximum(np.asarray(metrics[b]["offline"]["episode_heard"], float), 1)
             for b in have}
    best = min((b for b in have if b != "random"), key=lambda b: rates[b].mean())
    d = mean_interval(rates[best] - rates["random"])
    return {"best_baseline": best, "best_minus_random": d,
            "separates": bool(d["hi"] < 0)}


def replay_alignment(metrics: Dict[str, dict], seed: int = 0) -> Optional[dict]:
    """Kendall's tau between offline and replay skip rates over the policies with replay
    outcomes, and its 95% interval from resampling episode starts."""
    names = [n for n, modes in metrics.items() if "offline" in modes
             and modes["offline"].get("replay_count", 0) > 0
             and "episode_replay_counted" in modes["offline"]]
    if len(names) < 3:
        return None
    ms = [metrics[n]["offline"] for n in names]
    n_ep = len(ms[0]["episode_heard"])
    every = np.arange(n_ep)
    tau = kendall_tau([_rates(m, every) for m in ms], [_replay(m, every) for m in ms])
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(RESAMPLES):
        d = rng.integers(0, n_ep, n_ep)
        r = [_replay(m, d) for m in ms]
        if np.isfinite(r).all():
            boot.append(kendall_tau([_rates(m, d) for m in ms], r))
    boot = [b for b in boot if np.isfinite(b)]
    lo, hi = (np.percentile(boot, [2.5, 97.5]) if boot else (np.nan, np.nan))
    return {"policies": names, "tau": tau, "lo": float(lo), "hi": float(hi)}


def self_check(metrics: Dict[str, dict], user_model, test_log, baselines: List[str],
               seed: int = 0) -> dict:
    """Every check above, as a JSON-ready dict."""
    return {
        "track_permutation": permutation_check(user_model, test_log, seed),
        "offline_skip_rate_ci": skip_rate_ci(metrics, "offline", seed),
        "online_skip_rate_ci": skip_rate_ci(metrics, "online", seed),
        "offline_spread": offline_spread(metrics, baselines),
        "offline_vs_replay": replay_alignment(metrics, seed),
    }


def format_self_check(check: dict) -> str:
    """The lines the main job prints under its table, warnings first."""
    lines = ["simulator self-check:"]
    perm = check.get("track_permutation", {})
    if "auc_drop" in perm:
        lines.append(f"  user model test AUC {perm['auc']:.3f}; with the tracks' "
                     f"representations permuted {perm['auc_tracks_permuted']:.3f} "
                     f"(drop {perm['auc_drop']:+.3f})")
        if not perm["uses_tracks"]:
            lines.append("  WARNING: the user model barely uses which track is played; "
                         "policy comparisons under it say little")
    elif perm:
        lines.append(f"  track permutation not run: {perm.get('skipped')}")
    spread = check.get("offline_spread")
    if spread:
        d = spread["best_minus_random"]
        lines.append(f"  offline skip rate, {spread['best_baseline']} minus random: "
                     f"{d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}] per episode start")
        if not spread["separates"]:
            lines.append("  WARNING: offline, the best baseline is not told apart from "
                         "random; the simulator cannot rank these policies")
    ci = check.get("offline_skip_rate_ci") or {}
    if ci:
        lines.append("  offline skip rate, 95% interval over episode starts: " + ", ".join(
            f"{n} {c['mean']:.3f} [{c['lo']:.3f}, {c['hi']:.3f}]" for n, c in ci.items()))
    rep = check.get("offline_vs_replay")
    if rep:
        lines.append(f"  Kendall's tau, offline vs replay skip rate over "
                     f"{len(rep['policies'])} policies: {rep['tau']:+.2f} "
                     f"[{rep['lo']:+.2f}, {rep['hi']:+.2f}]")
    return "\n".join(lines)
