"""How a candidate track relates to what the listener heard: the one implementation of
the listened/skipped similarity features that the sequential model's memory read, the
logistic model's features and the agents' candidate networks all use.

Given the cosine similarity of each candidate to each heard track and which heard tracks
were listened to, it returns, per candidate: the mean similarity to the listened tracks,
the mean similarity to the skipped ones, the largest similarity to a listened track (-1
when none was listened to), and the counts of listened and skipped tracks.  Written with
TensorFlow ops, which also take numpy arrays (the logistic model calls it on numpy and
reads `.numpy()`).
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf


class HistoryMatch(NamedTuple):
    mean_listened: tf.Tensor   # [..., C]
    mean_skipped: tf.Tensor    # [..., C]
    max_listened: tf.Tensor    # [..., C]; -1 where nothing was listened to
    n_listened: tf.Tensor      # [..., C]
    n_skipped: tf.Tensor       # [..., C]


def history_match(sims, valid, responses) -> HistoryMatch:
    """Listened/skipped similarity features.

    Args:
      sims: [..., C, M] cosine similarity of candidate c to heard track m.
      valid: [..., C, M] or broadcastable: 1 where heard track m counts for candidate c
        (heard before it; not padding).
      responses: [..., 1, M] or broadcastable: 1 listened, 0 skipped.
    """
    sims = tf.convert_to_tensor(sims, tf.float32)
    valid = tf.cast(tf.convert_to_tensor(valid), tf.float32)
    r = tf.cast(tf.convert_to_tensor(responses), tf.float32)
    w_l, w_s = valid * r, valid * (1.0 - r)
    n_l, n_s = tf.reduce_sum(w_l, -1), tf.reduce_sum(w_s, -1)
    return HistoryMatch(
        tf.reduce_sum(sims * w_l, -1) / tf.maximum(n_l, 1.0),
        tf.reduce_sum(sims * w_s, -1) / tf.maximum(n_s, 1.0),
        tf.reduce_max(tf.where(w_l > 0, sims, -1.0), -1),
        n_l, n_s)
