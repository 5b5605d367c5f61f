"""How good is a user model?  Metrics on a held-out log: accuracy, ROC AUC, log loss,
expected calibration error, per-position accuracy (teacher forcing: each track predicted
from everything before it), and the MSSD challenge's mean average accuracy and
first-prediction accuracy (the second half of each session predicted from the first half,
outcomes of the second half unknown).

"Listened" is the positive class; the challenge metrics predict skips, which is the same
decision (skip iff P(listen) < 0.5).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from spotisim.data.behaviour import padded_behaviour
from spotisim.data.session_log import SessionLog
from spotisim.tables import interval, render_table
from user_models.base import AbstractUserModel, History


# --------------------------------------------------------------------------- metrics

def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    y = np.asarray(y, bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(np.asarray(p, np.float64)).rank(method="average").to_numpy()
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(y: np.ndarray, p: np.ndarray, eps: float = 1e-7) -> float:
    p = np.clip(np.asarray(p, np.float64), eps, 1 - eps)
    y = np.asarray(y, np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-width probability bins."""
    p = np.asarray(p, np.float64)
    y = np.asarray(y, np.float64)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() * abs(p[m].mean() - y[m].mean())
    return float(total / max(len(p), 1))


def session_accuracies(correct: np.ndarray, mask: np.ndarray
                       ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-session MSSD scores of the predicted half.

    Args:
      correct: bool [S, T] prediction i of session s was right.
      mask: bool [S, T] position i exists (left-aligned).

    Returns:
      (average accuracy [S], first prediction right [S], scored [S]): with T_s
      predictions, AA_s = (1/T_s) sum_i [correct_i] * (correct up to i) / i; sessions
      with nothing to predict are not scored.
    """
    c = (np.asarray(correct, bool) & mask).astype(np.float64)
    T = mask.sum(axis=1)
    i = np.arange(1, c.shape[1] + 1)[None, :]
    aa = (c * np.cumsum(c, axis=1) / i).sum(axis=1) / np.maximum(T, 1)
    first = c[:, 0] if c.shape[1] else np.zeros(len(c))
    return aa, first, T > 0


def average_accuracy(correct: np.ndarray, mask: np.ndarray) -> Tuple[float, float]:
    """MSSD challenge scores (mean average accuracy, first-prediction accuracy),
    averaged over sessions (see `session_accuracies`)."""
    aa, first, keep = session_accuracies(correct, mask)
    return float(aa[keep].mean()), float(first[keep].mean())


# --------------------------------------------------------------------------- predictions

def log_histories(log: SessionLog, hidden: Optional[Tuple[np.ndarray, np.ndarray]] = None,
                  behaviour: bool = False):
    """Padded arrays of a log plus the per-session context/listener/hidden keys and, with
    `behaviour`, the logged behaviour of every row (`spotisim.data.behaviour`)."""
    tracks, skipped, mask = log.padded()
    context = log.session_context().astype(np.int16)
    listener = np.full(log.num_sessions, -1, np.int64) if hidden is None else hidden[0]
    mood = None if hidden is None else hidden[1]
    beh = padded_behaviour(log, tracks.shape[1]) if behaviour else None
    return tracks, skipped, mask, context, listener, mood, beh


def _reads_behaviour(model) -> bool:
    """Whether `model` reads logged behaviour (only then is it laid out)."""
    return bool(getattr(model, "behaviour_dim", 0))


def _history(tracks, skipped, context, listener, mood, behaviour, rows, t):
    return History(tracks[rows, :t].astype(np.int32),
                   (~skipped[rows, :t]).astype(np.float32),
                   np.full(len(rows), t, np.int32), context[rows], listener[rows],
                   None if mood is None else mood[rows],
                   None if behaviour is None else behaviour[rows, :t])


def predict_log(model: AbstractUserModel, log: SessionLog,
                hidden: Optional[Tuple[np.ndarray, np.ndarray]] = None,
                profiles: Optional[np.ndarray] = None) -> np.ndarray:
    """Teacher-forced P(listen) for every row of `log` (aligned with `log.tracks`):
    each track is predicted from everything heard before it in its session.

    Models with a faster whole-session path (`predict_sessions`) use it.  A model with
    memory (`user_models.memory`) reads `profiles` [S, P], the listeners' profiles of
    the log's sessions (`ListenerProfiles.for_log`), and corrects its base model's.
    """
    if hasattr(model, "correct_log_rows"):
        return model.correct_log_rows(log, predict_log(model.base, log, hidden), profiles)
    if hasattr(model, "predict_sessions"):
        return model.predict_sessions(log)
    tracks, skipped, mask, context, listener, mood, behaviour = log_histories(
        log, hidden, _reads_behaviour(model))
    probs = np.zeros(tracks.shape)
    for t in range(tracks.shape[1]):
        rows = np.nonzero(mask[:, t])[0]
        if len(rows) == 0:
            continue
        h = _history(tracks, skipped, context, listener, mood, behaviour, rows, t)
        probs[rows, t] = model.predict(h, tracks[rows, t:t + 1])[:, 0]
    return probs[mask]


def predict_second_half(model: AbstractUserModel, log: SessionLog,
                        hidden: Optional[Tuple[np.ndarray, np.ndarray]] = None
                        ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The challenge task: P(listen) for the second half of each session (positions with
    2 * position > length) given only the first half.  Models that score short slates
    only get it in pieces, each conditioned on their own likely outcomes of the last.

    Returns:
      (probs [S, T], labels listened [S, T], mask [S, T]), left-aligned.
    """
    tracks, skipped, mask, context, listener, mood, behaviour = log_histories(
        log, hidden, _reads_behaviour(model))
    L = log.lengths
    half = L // 2
    T = int((L - half).max()) if len(L) else 0
    probs = np.zeros((len(L), T))
    labels = np.zeros((len(L), T), bool)
    out_mask = np.arange(T)[None, :] < (L - half)[:, None]
    step = model.max_slate_size or T
    for h in np.unique(half):
        rows = np.nonzero(half == h)[0]
        n_pred = L[rows] - h
        width = int(n_pred.max())
        hist = _history(tracks, skipped, context, listener, mood, behaviour, rows, int(h))
        for start in range(0, width, step):
            stop = min(start + step, width)
            slate = tracks[rows, h + start:h + stop]
            # Sessions shorter than the widest one: pad with their first track (ignored).
            slate = np.where(slate >= 0, slate, tracks[rows, :1])
            p = model.predict(hist, slate)
            probs[rows, start:stop] = p
            hist = hist.extended(slate, p >= 0.5)
        labels[rows] = ~skipped[rows, h:h + T]  # h + T <= the padded width, always
    return probs, labels & out_mask, out_mask


def evaluate(model: AbstractUserModel, log: SessionLog,
             hidden: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> Dict[str, object]:
    """Every metric of a user model on a (test) log, as a JSON-ready dict."""
    return evaluate_with_details(model, log, hidden)[0]


def evaluate_with_details(model: AbstractUserModel, log: SessionLog,
                          hidden: Optional[Tuple[np.ndarray, np.ndarray]] = None
                          ) -> Tuple[Dict[str, object], Dict[str, np.ndarray]]:
    """`evaluate`'s report plus what paired comparisons need: the per-row P(listen)
    ("p") and the per-session MSSD scores ("aa", "first", "scored")."""
    p = predict_log(model, log, hidden)
    y = ~log.skipped
    pos = log.positions
    per_pos = {int(k): float(((p[pos == k] >= 0.5) == y[pos == k]).mean())
               for k in np.unique(pos)}
    hp, hy, hm = predict_second_half(model, log, hidden)
    aa_s, first_s, scored = session_accuracies((hp >= 0.5) == hy, hm)
    report = {
        "rows": int(len(y)),
        "sessions": int(log.num_sessions),
        "accuracy": float(((p >= 0.5) == y).mean()),
        "auc": roc_auc(y, p),
        "log_loss": log_loss(y, p),
        "calibration_error": calibration_error(y, p),
        "mean_predicted": float(p.mean()),
        "listen_rate": float(y.mean()),
        "mssd_average_accuracy": float(aa_s[scored].mean()),
        "mssd_first_prediction_accuracy": float(first_s[scored].mean()),
        "accuracy_by_position": per_pos,
    }
    return report, {"p": p, "aa": aa_s, "first": first_s, "scored": scored}


PAIRED_METRICS = ("auc", "mssd_average_accuracy", "mssd_first_prediction_accuracy")
#: Every report's paired differences are taken against MSSD's known heuristic.
REFERENCE = "repeat_last_label"


def _rows_of_sessions(offsets: np.ndarray, sessions: np.ndarray) -> np.ndarray:
    """Row indices of `sessions` (repeats allowed), in order."""
    starts, lengths = offsets[sessions], offsets[sessions + 1] - offsets[sessions]
    shift = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return shift + np.arange(int(lengths.sum()))


def paired_difference(details: Dict[str, np.ndarray], reference: Dict[str, np.ndarray],
                      log: SessionLog, *, resamples: int = 200, seed: int = 0
                      ) -> Dict[str, Dict[str, float]]:
    """Model minus reference, paired on the same test sessions, with 95% intervals:
    t-intervals over sessions for the MSSD scores (means of per-session values), a
    session bootstrap for AUC (not a mean)."""
    from spotisim.stats import bootstrap_interval, mean_interval
    y = ~log.skipped
    scored = details["scored"]
    out = {
        "mssd_average_accuracy": mean_interval((details["aa"] - reference["aa"])[scored]),
        "mssd_first_prediction_accuracy": mean_interval(
            (details["first"] - reference["first"])[scored]),
    }

    def auc_gap(sessions: np.ndarray) -> float:
        rows = _rows_of_sessions(log.offsets, sessions)
        return roc_auc(y[rows], details["p"][rows]) - roc_auc(y[rows], reference["p"][rows])

    out["auc"] = bootstrap_interval(auc_gap, log.num_sessions, resamples=resamples, seed=seed)
    return out


def evaluate_models(models: Dict[str, AbstractUserModel], log: SessionLog,
                    hidden: Optional[Tuple[np.ndarray, np.ndarray]] = None,
                    reference: Optional[str] = REFERENCE,
                    hidden_for: Sequence[str] = ()) -> Dict[str, Dict[str, object]]:
    """`evaluate` for each model on the same log; each report also holds
    `vs_<reference>`: its paired differences from the reference model on AUC, average
    accuracy and first-prediction accuracy (`paired_difference`).  Only the models
    named in `hidden_for` (the ground truth) read the synthetic world's hidden keys."""
    reports, details = {}, {}
    for name, model in models.items():
        reports[name], details[name] = evaluate_with_details(
            model, log, hidden if name in hidden_for else None)
    if reference is not None and reference in models:
        for name in models:
            if name != reference:
                reports[name][f"vs_{reference}"] = paired_difference(
                    details[name], details[reference], log)
    return reports


def format_table(reports: Dict[str, Dict[str, object]]) -> str:
    """A side-by-side table of several models' reports, then each model's paired
    difference from the reference (when the reports carry one)."""
    cols = [("accuracy", "acc"), ("auc", "AUC"), ("log_loss", "log loss"),
            ("calibration_error", "ECE"), ("mssd_average_accuracy", "MSSD AA"),
            ("mssd_first_prediction_accuracy", "first acc")]
    parts = [render_table(["model"] + [h for _, h in cols],
                          [[name] + [f"{r[k]:.4f}" for k, _ in cols]
                           for name, r in reports.items()])]
    refs = sorted({k for r in reports.values() for k in r if k.startswith("vs_")})
    for ref in refs:
        parts.append(f"\nminus {ref[3:]}, paired on the same test sessions (95% interval):")
        parts.append(render_table(
            ["model", "AUC", "MSSD AA", "first acc"],
            [[name] + [interval(c["mean"], c["lo"], c["hi"], 4, signed=True)
                       for c in (r[ref][m] for m in PAIRED_METRICS)]
             for name, r in reports.items() if ref in r]))
    return "\n".join(parts)
