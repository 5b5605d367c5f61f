"""What a run shows a person: the final table, the self-check under it, and the two
plots (learning curve, comparison)."""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from experiments.self_check import format_self_check  # noqa: F401  (part of the report)
from spotisim.io_utils import atomic_file


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
             f"embeddings: {out['embeddings']}   ({out['seconds']:.0f} s)",
             f"reward: {reward}"
             + (f"   data quirks {out['data_quirks']}"
                if out.get("data_quirks", "no quirks") != "no quirks" else ""),
             f"{'policy':<28} {'mode':<8} {'skip rate':>9} {'reward/ep':>9} "
             f"{'slates/ep':>9} {'left':>6} {'diversity':>9} {'coverage':>8} "
             f"{'logged skip':>11} {'replay skip (n)':>16}"]
    for name, modes in out["policies"].items():
        for mode, r in modes.items():
            lines.append(f"{name:<28} {mode:<8} {r['skip_rate']:>9.3f} "
                         f"{r['mean_episode_reward']:>9.2f} {r['mean_episode_length']:>9.2f} "
                         f"{r.get('end_left_rate', float('nan')):>6.3f} "
                         f"{r.get('diversity', float('nan')):>9.3f} {r['coverage']:>8.3f} "
                         f"{r.get('logged_track_skip_rate', float('nan')):>11.3f} "
                         f"{r.get('replay_skip_rate', float('nan')):>8.3f} "
                         f"({int(r.get('replay_count', 0))})")
    lines.append("offline = scored by the user model the agent trained against; "
                 "online = scored by the synthetic world's ground truth; reward/ep = the "
                 "reward above, summed over an episode; slates/ep = episode length; left = "
                 "share of episodes that ended because the listener left; diversity on "
                 f"{out.get('diversity_source', 'acoustic features')}; logged skip = "
                 "simulated skip rate of recommended tracks the logged session played next "
                 "(for logging_policy: its replayed part); replay skip = "
                 "logged skip rate of recommended tracks the held-out session played (n)")
    return "\n".join(lines)
