"""User models with memory (#24): profiles built only from a listener's earlier
sessions, the correction that reads them (and leaves new listeners to the session
model), and episodes that carry them through the environment to the tracker."""

import numpy as np
import pytest

from spotisim.builder import EnvironmentBuilder, TFAgtPyEnvironment
from spotisim.data.profiles import SHRINK_ROWS, ListenerProfiles
from spotisim.data.schema import LISTENER_COLUMN
from spotisim.data.session_log import read_session_log
from spotisim.episode_samplers import LogEpisodeSampler
from spotisim.episode_tracker import EpisodeTracker
from spotisim.errors import ConfigError, DataValidationError, UserModelError
from spotisim.track_samplers import SlateIndicesTrackSampler
from tests.spotisim.data.test_validation import HEADER, row, write_csv
from user_models.base import AbstractUserModel, History
from user_models.memory import MemoryCorrection, MemoryUserModel, with_memory

WITH_ID = HEADER + [LISTENER_COLUMN]


class Constant(AbstractUserModel):
    """P(listen) = 0.5 for everything: a base whose every change is the memory's."""

    cascades = False

    def _predict(self, history, slate, slate_responses):
        return np.full(np.shape(slate), 0.5)


def hand_log(tmp_path):
    """Listener x: session a (t0 listened, t1 skipped, t2 listened) on the 15th, then
    b (t3) on the 16th; listener y: c (t0, t1) on the 15th."""
    rows = [row("a", 1, 3, "t0", date="2018-07-15"), row("a", 2, 3, "t1", True),
            row("a", 3, 3, "t2"), row("b", 1, 1, "t3", date="2018-07-16"),
            row("c", 1, 2, "t0", True), row("c", 2, 2, "t1")]
    for r in rows:
        r[LISTENER_COLUMN] = "y" if r["session_id"] == "c" else "x"
    return read_session_log(write_csv(tmp_path / "f.csv", rows, WITH_ID))


VEC = {"t0": [1.0, 0.0], "t1": [0.0, 1.0], "t2": [1.0, 1.0], "t3": [-1.0, 0.0]}


def vectors(log):
    return np.array([VEC[t] for t in log.catalog.track_ids])


def test_a_profile_reads_only_the_listeners_earlier_sessions(tmp_path):
    log = hand_log(tmp_path)
    prof = ListenerProfiles.build(log, vectors(log))
    by_id = dict(zip(log.session_ids, prof.vectors))
    assert not by_id["a"].any() and not by_id["c"].any()    # first sessions: nothing
    b = by_id["b"]
    listened = np.array([2.0, 1.0]) / np.sqrt(5)             # t0 + t2, unit length
    np.testing.assert_allclose(b[:2], listened, rtol=1e-6)
    np.testing.assert_allclose(b[2:4], [0.0, 1.0])           # t1 was skipped
    rate = 4 / 6                                             # the log's listen rate
    np.testing.assert_allclose(b[4:], [np.log(2), (2 + SHRINK_ROWS * rate) / (3 + SHRINK_ROWS)
                                       - rate, (3 - 2) / 3, 1.0], rtol=1e-6)
    assert prof.known.tolist() == [False, True, False]
    # Found by id for a part of the log; an unknown id is one clear error.
    np.testing.assert_array_equal(prof.for_log(log.subset([1])), prof.vectors[[1]])
    with pytest.raises(DataValidationError, match="not in the profiled log"):
        prof.of_ids(["zz"])
    with pytest.raises(DataValidationError, match="track vectors"):
        ListenerProfiles.build(log, np.zeros((3, 2)))


def test_anonymous_logs_have_no_profiles(tiny_log):
    prof = ListenerProfiles.build(tiny_log, np.ones((len(tiny_log.catalog), 3)))
    assert not prof.known.any() and not prof.vectors.any()


def test_memory_corrects_known_listeners_only(tmp_path):
    """logit' = a + b logit(p) + w . f: computed by hand for one known listener; a row
    without a profile (or no profile at all) keeps the base answer."""
    log = hand_log(tmp_path)
    vec = vectors(log)
    prof = ListenerProfiles.build(log, vec).vectors
    t = {name: i for i, name in enumerate(log.catalog.track_ids)}
    model = MemoryUserModel(Constant(), vec, MemoryCorrection(
        listen=(0.5, 1.0, 2.0, -1.0, 0.0, 0.0, 0.0)))
    history = History.empty(2)
    history.profile = prof[[1, 0]]                          # b's listener knows a; a: none
    slate = np.array([[t["t0"]], [t["t0"]]])
    p = model.predict(history, slate)
    cos_l = 2 / np.sqrt(5)                                  # t0 vs unit(t0 + t2)
    want = 1 / (1 + np.exp(-(0.5 + 2.0 * cos_l - 1.0 * 0.0)))
    np.testing.assert_allclose(p[:, 0], [want, 0.5], rtol=1e-6)
    np.testing.assert_allclose(model.score_candidates(history, slate), p)
    history.profile = None
    np.testing.assert_allclose(model.predict(history, slate), 0.5)
    # The log path agrees with the step path.
    rows = model.correct_log_rows(log, np.full(log.num_rows, 0.5), prof)
    assert rows[log.offsets[1]] == pytest.approx(1 / (1 + np.exp(-(0.5 + 2.0 * (-2 / np.sqrt(5))))), rel=1e-6)
    np.testing.assert_allclose(np.delete(rows, log.offsets[1]), 0.5)


def two_camp_log(tmp_path, listeners=60, sessions=4):
    """Listeners of camp A listen to tracks a* and skip b*; camp B the reverse, in every
    session: what a session-blind base cannot know and a profile can."""
    rng = np.random.default_rng(0)
    rows = []
    for l in range(listeners):
        camp = l % 2
        for s in range(sessions):
            sid = f"l{l}s{s}"
            picks = rng.choice(8, size=6, replace=False)
            for k, j in enumerate(picks):
                track = ("a" if j < 4 else "b") + str(j % 4)
                liked = (j < 4) == (camp == 0)
                skipped = (not liked) if rng.random() < 0.9 else liked
                rows.append(row(sid, k + 1, 6, track, skipped, hour_of_day=s,
                                **{LISTENER_COLUMN: f"u{l}"}))
    log = read_session_log(write_csv(tmp_path / "camps.csv", rows, WITH_ID))
    vec = np.array([[1.0, 0.0] if t.startswith("a") else [0.0, 1.0]
                    for t in log.catalog.track_ids])
    return log, vec


def test_fitted_memory_learns_the_listeners_side(tmp_path):
    log, vec = two_camp_log(tmp_path)
    prof = ListenerProfiles.build(log, vec)
    model = MemoryUserModel.fit_on(Constant(), log, prof, vec)
    sel = model.correction.selection
    assert model.correction.listen and sel["listen_memory"] < sel["listen_base"] - 0.1
    assert model.correction.listen[2] > 0                   # closer to the listens: listen
    p = model.correct_log_rows(log, np.full(log.num_rows, 0.5), prof.for_log(log))
    known = prof.for_log(log)[log.session_of_row, -1] > 0.5
    y = ~log.skipped
    assert ((p[known] >= 0.5) == y[known]).mean() > 0.8
    np.testing.assert_allclose(p[~known], 0.5)              # first sessions: the base's


def test_with_memory_needs_listener_ids(tiny_log):
    with pytest.raises(UserModelError, match="listener ids"):
        with_memory(Constant(), tiny_log, None, np.ones((len(tiny_log.catalog), 2)))


def test_episodes_carry_the_profile_and_the_tracker_the_listener(tmp_path):
    """A start is a (listener, session) pair with that listener's profile; the model
    with memory reads it in the environment; the tracker records who listened."""
    from tf_agents.environments import utils as env_utils
    log, vec = two_camp_log(tmp_path, listeners=20, sessions=3)
    prof = ListenerProfiles.build(log, vec)
    sampler = LogEpisodeSampler(log, history_length=2, pool_size=4, profiles=prof)
    start = sampler.sample(np.random.default_rng(0), 12)
    np.testing.assert_array_equal(start.profile, prof.vectors[start.key])
    np.testing.assert_array_equal(start.log_listener, log.session_listeners[start.key])
    model = MemoryUserModel(Constant(), vec, MemoryCorrection(
        listen=(0.0, 1.0, 3.0, 0.0, 0.0, 0.0, 0.0)))
    tracker = EpisodeTracker()
    builder = EnvironmentBuilder(model, SlateIndicesTrackSampler(1, 4, 2), sampler, vec,
                                 episode_tracker=tracker, batch_size=3, seed=0)
    env = builder.environment
    env.reset()
    h = env.history()
    np.testing.assert_array_equal(h.profile, prof.vectors[env.episode_keys()])
    env_utils.validate_py_environment(TFAgtPyEnvironment(env), episodes=2)
    a = tracker.arrays()
    assert (a["listener"] == log.session_listeners[a["listener_key"]]).all()


def test_memory_names(tiny_log):
    from experiments.user_model_cache import check_user_model_name
    check_user_model_name("sequential+memory")
    check_user_model_name("min(sequential+calibrated,taste+calibrated)+calibrated+memory")
    for bad in ("ground_truth+memory", "+memory", "nothing+memory"):
        with pytest.raises(ConfigError):
            check_user_model_name(bad)


def test_memory_keeps_the_base_models_track_representation(tmp_path):
    """The self-check's permutation reaches through memory to the base model."""
    log, vec = two_camp_log(tmp_path, listeners=10, sessions=2)

    class WithTracks(Constant):
        embeddings = vec

        def remapped(self, rows, embeddings):
            out = WithTracks()
            out.embeddings = embeddings
            return out

    model = MemoryUserModel(WithTracks(), vec, MemoryCorrection())
    assert model.embeddings is vec
    perm = np.arange(len(vec))[::-1]
    moved = model.remapped(perm, vec[perm])
    np.testing.assert_array_equal(moved.embeddings, vec[perm])
    np.testing.assert_array_equal(moved.track_vectors, vec[perm])
