"""The four user models behind one interface: shapes and ranges, batch == one by one,
save/load, training lowers the loss, the LIRD simulator by hand."""

import numpy as np
import pytest

from spotisim.embeddings import acoustic_embeddings
from spotisim.errors import UserModelError
from user_models import evaluation, load_user_model
from user_models.base import History
from user_models.ground_truth import GroundTruthUserModel
from user_models.lird import LirdSimulatorUserModel
from user_models.logistic import LogisticUserModel
from user_models.sequential import SequentialUserModel
from user_models.taste import TasteUserModel


@pytest.fixture(scope="module")
def split(tiny_log):
    return tiny_log.split((0.7, 0.15, 0.15), seed=0)


@pytest.fixture(scope="module")
def emb(tiny_log):
    return acoustic_embeddings(tiny_log.catalog).vectors


@pytest.fixture(scope="module")
def fitted(split, emb, tiny_world_dir):
    from spotisim.data.synthetic import SyntheticWorld
    train, val, _ = split
    return {
        "sequential": SequentialUserModel(emb, units=16, epochs=3, seed=0).fit(train, val),
        "taste": TasteUserModel(emb, dim=4, epochs=3).fit(train, val),
        "logistic": LogisticUserModel(emb, epochs=3).fit(train, val),
        "lird": LirdSimulatorUserModel(emb, state_length=4, slate_size=3).fit(train),
        "ground_truth": GroundTruthUserModel(SyntheticWorld.load(tiny_world_dir["world"])),
    }


def _batch(log, tiny_world_dir, n=12, t=6, K=3):
    from spotisim.episode_samplers import hidden_keys
    tracks, skipped, mask = log.padded()
    rows = np.nonzero(mask[:, t + K - 1])[0][:n]
    listener, mood = hidden_keys(log, tiny_world_dir["hidden"])
    h = History(tracks[rows, :t], (~skipped[rows, :t]).astype(np.float32),
                np.full(len(rows), t, np.int32), log.session_context()[rows].astype(np.int16),
                listener[rows], mood[rows])
    return h, tracks[rows, t:t + K], ~skipped[rows, t:t + K]


@pytest.mark.parametrize("name", ["sequential", "taste", "logistic", "lird", "ground_truth"])
def test_shapes_ranges_and_batching(fitted, tiny_log, tiny_world_dir, name):
    model = fitted[name]
    h, slate, resp = _batch(tiny_log, tiny_world_dir)
    p = model.predict(h, slate, resp)
    assert p.shape == slate.shape and ((p >= 0) & (p <= 1)).all()
    one = np.concatenate([model.predict(h.take(np.array([i])), slate[i:i + 1], resp[i:i + 1])
                          for i in range(len(slate))])
    np.testing.assert_allclose(one, p, rtol=1e-5, atol=1e-6)
    probs, r, _ = model.respond(h, slate, np.random.default_rng(0).random((len(slate), 4)))
    assert r.shape == slate.shape and r.dtype == bool
    # A cascading model answers the same when the drawn responses are fed back.
    if model.cascades:
        np.testing.assert_allclose(model.predict(h, slate, r), probs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["sequential", "taste", "logistic", "lird", "ground_truth"])
def test_save_load_same_predictions(fitted, tiny_log, tiny_world_dir, tmp_path, name):
    model = fitted[name]
    model.save(str(tmp_path / name))
    back = load_user_model(str(tmp_path / name))
    assert type(back) is type(model)
    h, slate, resp = _batch(tiny_log, tiny_world_dir)
    np.testing.assert_allclose(back.predict(h, slate, resp), model.predict(h, slate, resp),
                               rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("cls", [SequentialUserModel, TasteUserModel, LogisticUserModel])
def test_training_lowers_the_loss(split, emb, cls):
    train, val, _ = split
    kw = {SequentialUserModel: dict(units=16, epochs=4),
          TasteUserModel: dict(dim=4, epochs=4)}.get(cls, dict(epochs=4))
    model = cls(emb, **kw)
    before = evaluation.log_loss(~train.skipped, evaluation.predict_log(model, train))
    model.fit(train, val)
    after = evaluation.log_loss(~train.skipped, evaluation.predict_log(model, train))
    assert after < before - 0.01
    assert model.history_ and model.history_[0]["val_loss"] > 0


def test_fast_session_path_equals_slate_path(fitted, tiny_log):
    """predict_sessions (one pass) == predict with teacher forcing, row by row."""
    for name in ("sequential", "taste", "logistic"):
        model = fitted[name]
        fast = model.predict_sessions(tiny_log)
        tracks, skipped, mask = tiny_log.padded()
        P = np.zeros(tracks.shape)
        P[mask] = fast
        t = 4
        rows = np.nonzero(mask[:, t + 2])[0][:20]
        h = History(tracks[rows, :t], (~skipped[rows, :t]).astype(np.float32),
                    np.full(len(rows), t, np.int32),
                    tiny_log.session_context()[rows].astype(np.int16), np.full(len(rows), -1))
        p = model.predict(h, tracks[rows, t:t + 3], ~skipped[rows, t:t + 3])
        np.testing.assert_allclose(p, P[rows, t:t + 3], rtol=1e-5, atol=1e-6)


def test_lird_simulator_by_hand():
    """d = 2, N = 1, K = 1: two patterns (skip, listen) with representatives set by hand.

    state s = e0 = (1, 0); action a = e1 = (0, 1).
    pattern 0 (skip):   s_0 = (1, 0), a_0 = (1, 0): sim = .5 * 1 + .5 * 0 = 0.5
    pattern 1 (listen): s_1 = (0, 1), a_1 = (0, 1): sim = .5 * 0 + .5 * 1 = 0.5
    -> P(listen) = 0.5.  With alpha = 0.8: sims .8 and .2 -> P(listen) = 0.2.
    """
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], np.float32)
    for alpha, expected in ((0.5, 0.5), (0.8, 0.2)):
        m = LirdSimulatorUserModel(emb, state_length=1, slate_size=1, alpha=alpha)
        m.net.state_rep.assign([[1.0, 0.0], [0.0, 1.0]])
        m.net.action_rep.assign([[1.0, 0.0], [0.0, 1.0]])
        m.net.present.assign([1.0, 1.0])
        h = History(np.array([[0]], np.int32), np.ones((1, 1), np.float32),
                    np.array([1], np.int32), np.zeros(1, np.int16), np.full(1, -1))
        p = m.predict(h, np.array([[1]]))
        assert p[0, 0] == pytest.approx(expected, abs=1e-5)
    # Action (0.6, 0.8), alpha .5: sims .5 + .5 * .6 = .8 and 0 + .5 * .8 = .4 -> 1/3.
    p = m.__class__(emb, 1, 1, 0.5)
    p.net.state_rep.assign([[1.0, 0.0], [0.0, 1.0]])
    p.net.action_rep.assign([[1.0, 0.0], [0.0, 1.0]])
    p.net.present.assign([1.0, 1.0])
    assert p.predict(h, np.array([[2]]))[0, 0] == pytest.approx(0.4 / 1.2, abs=1e-5)
    with pytest.raises(UserModelError, match="at most 1"):
        p.predict(h, np.array([[1, 2]]))


def test_lird_patterns_and_expected_reward(fitted, tiny_log, tiny_world_dir):
    m = fitted["lird"]
    assert m.patterns.shape == (8, 3) and m.record_counts.sum() > 0
    h, slate, _ = _batch(tiny_log, tiny_world_dir)
    probs = m.pattern_probs(h, slate)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    expected = m.expected_reward(h, slate, gamma=0.9)
    np.testing.assert_allclose(expected, m.predict(h, slate) @ np.array([1, 0.9, 0.81]),
                               rtol=1e-5)


@pytest.mark.parametrize("name", ["sequential", "taste", "logistic", "lird", "ground_truth"])
def test_any_user_model_swaps_into_the_environment_through_gin(fitted, tiny_log,
                                                              tiny_world_dir, emb, tmp_path, name):
    import gin
    from spotisim.builder import EnvironmentBuilder, TFAgtPyEnvironment
    from spotisim.episode_samplers import LogEpisodeSampler
    from spotisim.track_samplers import SlateIndicesTrackSampler
    from tf_agents.environments import utils as env_utils
    fitted[name].save(str(tmp_path / "um"))
    gin.clear_config()
    try:
        gin.parse_config(f"""
            load_user_model.directory = '{tmp_path / "um"}'
            EnvironmentBuilder.user_model = @load_user_model()
        """)
        builder = EnvironmentBuilder(
            track_sampler=SlateIndicesTrackSampler(3, 40, emb.shape[1]),
            episode_sampler=LogEpisodeSampler(tiny_log, 10, 40,
                                              hidden_sessions=tiny_world_dir["hidden"]),
            embeddings=emb, batch_size=3)
        assert type(builder.environment._user_model) is type(fitted[name])
        env_utils.validate_py_environment(TFAgtPyEnvironment(builder.environment), episodes=2)
    finally:
        gin.clear_config()


@pytest.mark.parametrize("name", ["sequential", "taste", "logistic", "ground_truth"])
def test_score_candidates_equals_one_track_predictions(fitted, tiny_log, tiny_world_dir, name):
    """score_candidates (the sequential model encodes each history once) gives each
    candidate's P(listen) as the next track, as predict does for a one-track slate."""
    model = fitted[name]
    h, _, _ = _batch(tiny_log, tiny_world_dir, n=5)
    cands = np.random.default_rng(1).integers(0, len(tiny_log.catalog), (h.batch_size, 7))
    scores = model.score_candidates(h, cands)
    rows = np.repeat(np.arange(h.batch_size), 7)
    slow = model.predict(h.take(rows), cands.reshape(-1, 1))[:, 0].reshape(cands.shape)
    assert scores.shape == cands.shape
    np.testing.assert_allclose(scores, slow, rtol=1e-5, atol=1e-6)
    assert scores.std() > 0  # not a constant
    with pytest.raises(Exception, match="batch"):
        model.score_candidates(h, cands[:2])


def test_a_directory_whose_files_are_another_classs_is_one_error(fitted, tmp_path):
    """user_model.json naming one class over another class's files (or damaged
    files) is a UserModelError naming the directory and the class, not a traceback."""
    import json
    import os

    from spotisim.errors import UserModelError
    from user_models import load_user_model
    d = str(tmp_path / "m")
    fitted["logistic"].save(d)
    meta = os.path.join(d, "user_model.json")
    with open(meta) as f:
        m = json.load(f)
    m["class"] = "SequentialUserModel"
    with open(meta, "w") as f:
        json.dump(m, f)
    with pytest.raises(UserModelError, match="names SequentialUserModel, but the files"):
        load_user_model(d)
    with open(meta, "w") as f:
        f.write("{not json")
    with pytest.raises(UserModelError, match="not a readable user-model description"):
        load_user_model(d)



def test_logistic_reads_no_position_past_its_logs_longest_session(fitted, split, tmp_path):
    """The position term is linear: carried past the fitted range it kept moving P(listen)
    (docs/offline_verdicts.md).  Past the logs' longest session every position reads as
    that one; a model saved before the cap was kept reads positions up to 60 as before."""
    model = fitted["logistic"]
    train, val, _ = split
    cap = int(max(train.lengths.max(), val.lengths.max()))
    assert model.position_cap == cap
    assert model.coefficients()[0]["position"] != 0  # the fit reads the position
    window = model.config["max_history"]
    rng = np.random.default_rng(0)
    tail = rng.integers(0, len(model.embeddings), (4, window))
    slate = rng.integers(0, len(model.embeddings), (4, 3))
    before_tail = rng.integers(0, len(model.embeddings), (4, 2 * cap))

    def p_after(m, length):  # the same last `window` tracks, at another position
        tracks = np.concatenate([before_tail[:, :max(length - window, 0)],
                                 tail[:, max(window - length, 0):]], 1)
        h = History(tracks, np.ones(tracks.shape, np.float32), np.full(4, length, np.int32),
                    np.zeros(4, np.int16), np.full(4, -1))
        return m.predict(h, slate, np.ones(slate.shape, bool))

    np.testing.assert_allclose(p_after(model, cap + 5), p_after(model, 2 * cap), rtol=1e-6)
    model.save(str(tmp_path / "m"))
    with np.load(str(tmp_path / "m" / "model.npz")) as a:
        kept = {k: a[k] for k in a.files if k != "position_cap"}
    np.savez(str(tmp_path / "m" / "model.npz"), **kept)
    before = LogisticUserModel.load(str(tmp_path / "m"))
    assert before.position_cap == 60.0
    np.testing.assert_allclose(p_after(before, cap - 3), p_after(model, cap - 3), rtol=1e-6)
    assert np.abs(p_after(before, 2 * cap) - p_after(model, 2 * cap)).min() > 1e-4
