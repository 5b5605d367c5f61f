"""What a run shows a person: the final table, the self-check under it, and the two
plots (learning curve, comparison)."""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from experiments.self_check import format_self_check  # noqa: F401  (part of the report)
from spotisim.io_utils import atomic_file
from spotisim.tables import render_table


def plot_learning_curve(path: str, losses: Sequence[float], evals: Sequence[tuple]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    if len(losses):
        w = max(1, len(losses) // 50)
        smooth = np.convolve(losses, np.ones(w) / w, mode="valid")
        ax[0].plot(np.arange(len(smooth)) + w, smooth)
    ax[0].set_title("training loss (moving average)")
    ax[0].set_xlabel("iteration")
    if evals:
        it, rew = zip(*evals)
        ax[1].plot(it, rew, marker="o")
    ax[1].set_title("listens per episode (offline, during training)")
    ax[1].set_xlabel("iteration")
    fig.tight_layout()
    with atomic_file(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)


def plot_comparison(path: str, metrics: Dict[str, dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(metrics)
    fig, ax = plt.subplots(1, 2, figsize=(11, 0.5 * len(names) + 2))
    y = np.arange(len(names))
    for j, (key, title) in enumerate((("mean_episode_reward", "listens per episode"),
                                      ("skip_rate", "skip rate"))):
        for k, (mode, color) in enumerate((("offline", "tab:blue"), ("online", "tab:orange"))):
            vals = [metrics[n].get(mode, {}).get(key, np.nan) for n in names]
            if not np.all(np.isnan(vals)):
                ax[j].barh(y + (k - 0.5) * 0.38, vals, height=0.38, color=color,
                           label=f"{mode} ({'user model' if mode == 'offline' else 'ground truth'})")
        ax[j].set_yticks(y)
        ax[j].set_yticklabels(names if j == 0 else [])
        ax[j].set_title(title)
    ax[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_file(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)


def format_table(out: dict) -> str:
    """The final table a person reads."""
    reward = out.get("reward", "listens per episode")
    lines = [f"data: {out['data']}   user model: {out['user_model']}   "
             + (f"offline evaluator: {out['offline_evaluator']}   "
                if out.get("offline_evaluator") else "")
             + f"embeddings: {out['embeddings']}   ({out['seconds']:.0f} s)",
             f"reward: {reward}"
             + (f"   data quirks {out['data_quirks']}"
                if out.get("data_quirks", "no quirks") != "no quirks" else "")]
    rows = []
    for name, modes in out["policies"].items():
        for mode, r in modes.items():
            err = offline_error_percent(modes) if mode == "offline" else None
            rows.append([name, mode, f"{r['skip_rate']:.3f}", f"{r['mean_episode_reward']:.2f}",
                         f"{r['mean_episode_length']:.2f}",
                         f"{r.get('end_left_rate', float('nan')):.3f}",
                         f"{r.get('diversity', float('nan')):.3f}", f"{r['coverage']:.3f}",
                         f"{r.get('logged_track_skip_rate', float('nan')):.3f}",
                         f"{r.get('replay_skip_rate', float('nan')):.3f} "
                         f"({int(r.get('replay_count', 0))})",
                         f"{err:+.1f}%" if err is not None else ""])
    lines.append(render_table(["policy", "mode", "skip rate", "reward/ep", "slates/ep", "left",
                               "diversity", "coverage", "logged skip", "replay skip (n)",
                               "off. error"], rows))
    lines.append("offline = scored by the user model the agent trained against (or the "
                 "offline evaluator named above); "
                 "online = scored by the synthetic world's ground truth; reward/ep = the "
                 "reward above, summed over an episode; slates/ep = episode length; left = "
                 "share of episodes that ended because the listener left; diversity on "
                 f"{out.get('diversity_source', 'acoustic features')}; logged skip = "
                 "simulated skip rate of recommended tracks the logged session played next "
                 "(for logging_policy: its replayed part); replay skip = "
                 "logged skip rate of recommended tracks the held-out session played (n); "
                 "off. error = offline / online reward - 1")
    ranking = offline_online_ranking(out["policies"])
    if ranking:
        lines.append(ranking)
    return "\n".join(lines)


def offline_error_percent(modes: dict):
    """offline / online reward - 1, in percent (None without both modes)."""
    if "offline" not in modes or "online" not in modes:
        return None
    on = modes["online"]["mean_episode_reward"]
    return 100.0 * (modes["offline"]["mean_episode_reward"] / on - 1.0) if on else None


def offline_online_ranking(policies: dict) -> str:
    """One line: the offline favourite, where it stands online, and what shipping it
    costs against the online best (regret@1); "" without online figures."""
    both = {n: m for n, m in policies.items() if "offline" in m and "online" in m}
    if len(both) < 2:
        return ""
    off = {n: m["offline"]["mean_episode_reward"] for n, m in both.items()}
    on = {n: m["online"]["mean_episode_reward"] for n, m in both.items()}
    fav = max(off, key=off.get)
    best = max(on, key=on.get)
    rank = sorted(on, key=on.get, reverse=True).index(fav) + 1
    regret = 100.0 * (on[best] - on[fav]) / on[best] if on[best] else float("nan")
    return (f"offline favourite: {fav} ({rank}{_ordinal(rank)} online); online best: "
            f"{best}; regret@1 {regret:.1f}%")


def _ordinal(n: int) -> str:
    return "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
