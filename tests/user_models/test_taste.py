"""`TasteUserModel`: its logit by hand, what it learns from a log, tracks it never saw."""

import numpy as np
import pytest

from spotisim.embeddings import acoustic_embeddings
from spotisim.errors import ConfigError
from user_models.base import History
from user_models.catalog_alignment import align_to_log
from user_models.taste import TasteUserModel

EMB = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], np.float32)


def _by_hand_model():
    """Weights set by hand: P = Q = I, beta 2, decay 0.5, skip weight 0.25, intercept
    -0.1, position 3 +0.5, context 0 +0.2, 0.4 per consecutive skip."""
    m = TasteUserModel(EMB, dim=2)
    n = m.net
    n.key.assign(np.eye(2))
    n.query.assign(np.eye(2))
    n.popularity.assign(np.zeros(2))
    pos = np.zeros(n.position.shape)
    pos[2] = 0.5
    n.position.assign(pos)
    ctx = np.zeros(n.context.shape)
    ctx[0] = 0.2
    n.context.assign(ctx)
    n.streak.assign(0.4)
    n.beta.assign(2.0)
    n.decay_logit.assign(0.0)                   # sigmoid 0.5
    n.skip_logit.assign(np.log(0.25 / 0.75))    # sigmoid 0.25
    n.bias.assign(-0.1)
    return m


def test_logit_by_hand():
    """History: track 0 listened, track 1 skipped; candidate 2 = (0.6, 0.8) third.

    q = 0.5 ** 1 * (1, 0) - 0.25 * 0.5 ** 0 * (0, 1) = (0.5, -0.25), unit (0.894, -0.447)
    taste = 0.894 * 0.6 - 0.447 * 0.8 = 0.1789
    logit = -0.1 + 2 * 0.1789 + 0.5 (position 3) + 0.2 (context 0) - 0.4 (one skip)
    """
    m = _by_hand_model()
    h = History(np.array([[0, 1]], np.int32), np.array([[1.0, 0.0]], np.float32),
                np.array([2], np.int32), np.zeros(1, np.int16), np.full(1, -1))
    q = np.array([0.5, -0.25]) / np.linalg.norm([0.5, -0.25])
    logit = -0.1 + 2 * q @ [0.6, 0.8] + 0.5 + 0.2 - 0.4
    assert m.score_candidates(h, np.array([[2]]))[0, 0] == pytest.approx(
        1 / (1 + np.exp(-logit)), abs=1e-6)
    # Listened instead of skipped: no streak, and track 1 pulls the taste towards it.
    h2 = History(h.tracks, np.array([[1.0, 1.0]], np.float32), h.length, h.context, h.listener)
    q2 = np.array([0.5, 1.0]) / np.linalg.norm([0.5, 1.0])
    logit2 = -0.1 + 2 * q2 @ [0.6, 0.8] + 0.5 + 0.2
    assert m.score_candidates(h2, np.array([[2]]))[0, 0] == pytest.approx(
        1 / (1 + np.exp(-logit2)), abs=1e-6)
    # Nothing heard: no taste term (position 1, context 0).
    empty = History.empty(1, np.zeros(1, np.int16))
    assert m.score_candidates(empty, np.array([[2]]))[0, 0] == pytest.approx(
        1 / (1 + np.exp(-(-0.1 + 0.2))), abs=1e-6)


def test_the_slate_cascades():
    """Position 2 of a slate reads the response to position 1: a skip there adds to
    the streak and turns the taste away from that track."""
    m = _by_hand_model()
    h = History(np.array([[0]], np.int32), np.ones((1, 1), np.float32),
                np.array([1], np.int32), np.zeros(1, np.int16), np.full(1, -1))
    slate = np.array([[1, 2]])
    listened = m.predict(h, slate, np.array([[True, True]]))
    skipped = m.predict(h, slate, np.array([[False, True]]))
    assert listened[0, 0] == skipped[0, 0]
    assert skipped[0, 1] < listened[0, 1] - 0.05


def test_bad_configuration_is_refused(tiny_log):
    with pytest.raises(ConfigError, match="dim"):
        TasteUserModel(EMB, dim=0)
    with pytest.raises(ConfigError, match="leave_space"):
        TasteUserModel(EMB, leave_space="acoustic")
    with pytest.raises(ConfigError, match="catalogue"):  # 3 vectors, 300 tracks
        TasteUserModel(EMB).fit(tiny_log, tiny_log)


@pytest.fixture(scope="module")
def fitted(tiny_log):
    train, val, _ = tiny_log.split((0.7, 0.15, 0.15), seed=0)
    emb = acoustic_embeddings(tiny_log.catalog).vectors
    return TasteUserModel(emb, dim=4, epochs=8, seed=0).fit(train, val), emb


def test_it_learns_that_listens_pull_and_skips_push(fitted, tiny_log):
    """Fitted on the tiny world: a track like the ones listened to scores higher than
    after the same tracks were skipped, and higher than a track unlike them."""
    model, emb = fitted
    assert model.net.beta.numpy() > 0 and 0 < model.decay < 1 and 0 < model.skip_weight < 1
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    rng = np.random.default_rng(0)
    seeds = rng.choice(len(emb), 40, replace=False)
    sims = unit[seeds] @ unit.T
    np.fill_diagonal(sims[:, seeds], -np.inf)
    near = np.argmax(np.where(np.isin(np.arange(len(emb)), seeds)[None], -np.inf, sims), 1)
    far = np.argmin(np.where(np.isin(np.arange(len(emb)), seeds)[None], np.inf, sims), 1)
    tracks = np.repeat(seeds[:, None], 3, 1).astype(np.int32)  # one track heard 3 times
    ctx = np.zeros(40, np.int16)

    def score(resp, cand):
        h = History(tracks, np.full((40, 3), resp, np.float32), np.full(40, 3, np.int32),
                    ctx, np.full(40, -1))
        return model.score_candidates(h, cand[:, None])[:, 0]
    assert (score(1.0, near) > score(0.0, near)).mean() > 0.9
    assert (score(1.0, near) > score(1.0, far)).mean() > 0.9


def test_a_track_it_never_saw_is_scored_from_its_vector(fitted, tiny_log):
    """No per-track parameter: mapped onto a catalogue where track 0 is new (rows -1),
    the model gives it the P(listen) its vector gives, and every other track the same
    P(listen) as before."""
    model, emb = fitted
    T = len(emb)
    rows = np.arange(T)
    rows[0] = -1
    mapped = model.remapped(rows, emb)
    h = History(np.array([[3, 4, 5]], np.int32), np.array([[1, 0, 1]], np.float32),
                np.array([3], np.int32), np.zeros(1, np.int16), np.full(1, -1))
    cands = np.arange(10)[None]
    np.testing.assert_allclose(mapped.score_candidates(h, cands), model.score_candidates(h, cands),
                               rtol=1e-6)
    # Aligned to its own log it is the same model.
    same, info = align_to_log(model, tiny_log)
    assert info["unseen_tracks"] == 0
    np.testing.assert_allclose(same.score_candidates(h, cands), model.score_candidates(h, cands),
                               rtol=1e-6)


def test_its_leave_model_may_read_boredom_in_its_taste_space(fitted, tiny_log, tmp_path):
    """`leave_space='taste'`: the leave head is fitted on the track vectors through the
    model's key projection (by hand: e P), reloads from the cache in that space with the
    same hazards, and the option survives a save; by default the head reads the run's
    vectors as they are."""
    from types import SimpleNamespace

    from experiments.user_model_cache import attach_leave_hazard
    model, emb = fitted
    assert model.leave_vectors(emb) is emb

    def in_taste_space():
        m = TasteUserModel(emb, dim=4, epochs=8, seed=0, leave_space="taste")
        for mine, theirs in zip(m.net.weights, model.net.weights):
            mine.assign(theirs)
        return m
    taste = in_taste_space()
    space = taste.leave_vectors(emb)
    np.testing.assert_allclose(space, emb.astype(np.float64) @ model.net.key.numpy(), rtol=1e-6)
    train, val, _ = tiny_log.split((0.7, 0.15, 0.15), seed=0)
    data = SimpleNamespace(train=train, val=val)
    fitted_head = attach_leave_hazard(taste, data, emb, cache_dir=str(tmp_path)).leave_hazard
    assert fitted_head.embeddings.shape == (len(emb), 4)
    reloaded = attach_leave_hazard(in_taste_space(), data, emb,
                                   cache_dir=str(tmp_path)).leave_hazard
    tracks, skipped, _ = val.padded()
    listened = (~skipped).astype(np.float32)
    np.testing.assert_allclose(reloaded.hazards(tracks, listened),
                               fitted_head.hazards(tracks, listened), rtol=1e-6)
    taste.save(str(tmp_path / "model"))
    assert TasteUserModel.load(str(tmp_path / "model")).config["leave_space"] == "taste"
