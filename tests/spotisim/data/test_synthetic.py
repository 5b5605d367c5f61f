"""The synthetic world: MSSD-like statistics, a coherent hidden truth, persistence."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from spotisim.data import inspect as inspect_cli
from spotisim.data.schema import CONTEXT_TYPES
from spotisim.data.synthetic import SyntheticWorld, WorldConfig
from spotisim.data.synthetic import main as synthetic_main
from spotisim.errors import ConfigError


@pytest.fixture(scope="module")
def default_world():
    return SyntheticWorld(WorldConfig(seed=0))


def test_default_world_looks_like_mssd(default_world):
    """Calibration targets from the MSSD sample README, on 3,000 logged sessions."""
    sim = default_world.simulate_sessions(np.random.default_rng(0), 3000)
    L = default_world.config.max_length
    mask = np.arange(L)[None, :] < sim["length"][:, None]
    skip = ~sim["listened"]
    assert skip[mask].mean() == pytest.approx(0.517, abs=0.02)
    assert skip[:, 0].mean() == pytest.approx(0.381, abs=0.03)
    assert skip[:, 4].mean() == pytest.approx(0.53, abs=0.03)
    assert skip[:, 0].mean() < skip[:, 2].mean() < skip[:, 4].mean()
    assert sim["length"].min() >= 10 and sim["length"].max() == 20
    assert (sim["length"] == 20).mean() == pytest.approx(0.51, abs=0.05)
    shares = np.bincount(sim["context"], minlength=6) / 3000
    assert shares[0] == pytest.approx(0.405, abs=0.03)  # user_collection


def test_skip_streaks_end_sessions(default_world):
    """Sessions that end before the cap end after more skips than average."""
    sim = default_world.simulate_sessions(np.random.default_rng(1), 3000)
    L = sim["length"]
    early = L < 20
    last_skipped = ~sim["listened"][np.arange(len(L)), L - 1]
    assert last_skipped[early].mean() > last_skipped[~early].mean() + 0.03


def test_ground_truth_prefers_taste_and_responds_to_history(default_world):
    w = default_world
    rng = np.random.default_rng(2)
    state = w.new_sessions(rng, 64)
    sims = state.taste @ w.track_latent.T                     # [64, T]
    near = np.argsort(-sims, axis=1)[:, :5]
    far = np.argsort(sims, axis=1)[:, :5]
    p_near, p_far = w.listen_prob(state, near), w.listen_prob(state, far)
    assert ((0 < p_near) & (p_near < 1)).all()
    assert (p_near.mean(1) > p_far.mean(1)).all()
    # Listening pulls the taste towards the track; skipping grows the streak.
    t = far[:, 0]
    after_listen = w.advance(state, t, np.ones(64, bool))
    after_skip = w.advance(state, t, np.zeros(64, bool))
    z = w.track_latent[t]
    assert ((after_listen.taste * z).sum(1) > (state.taste * z).sum(1)).all()
    assert (after_skip.streak == 1).all() and (after_listen.streak == 0).all()
    assert (after_skip.position == 2).all()
    # A skip streak, all else equal, lowers P(listen) for the same candidates.
    no_streak = after_skip.copy()
    no_streak.streak[:] = 0
    assert (w.listen_prob(after_skip, near) < w.listen_prob(no_streak, near)).all()


def test_listen_prob_is_batched(default_world):
    w = default_world
    state = w.new_sessions(np.random.default_rng(3), 8)
    cand = np.random.default_rng(4).integers(0, w.config.num_tracks, (8, 6))
    batch = w.listen_prob(state, cand)
    one = np.stack([w.listen_prob(state.take(np.array([i])), cand[i:i + 1])[0]
                    for i in range(8)])
    np.testing.assert_allclose(batch, one)


def test_world_save_load_same_truth(tmp_path):
    w = SyntheticWorld(WorldConfig(seed=4, num_tracks=200, num_listeners=30))
    w.save(str(tmp_path / "w"))
    back = SyntheticWorld.load(str(tmp_path / "w"))
    state = w.new_sessions(np.random.default_rng(0), 10)
    cand = np.arange(30).reshape(10, 3)
    np.testing.assert_allclose(w.listen_prob(state, cand), back.listen_prob(state, cand))
    assert back.track_table().equals(w.track_table())


def test_hidden_sessions_match_log(tiny_world_dir, tiny_log):
    hidden = pq.read_table(tiny_world_dir["hidden"]).to_pandas()
    assert hidden["session_id"].tolist() == tiny_log.session_ids.tolist()
    ctx_names = np.asarray(CONTEXT_TYPES)[hidden["context"].to_numpy()]
    logged = np.asarray(tiny_log.vocab["context_type"])[tiny_log.session_context()]
    assert (ctx_names == logged).all()
    moods = hidden[[f"mood_{d}" for d in range(8)]].to_numpy()
    np.testing.assert_allclose(np.linalg.norm(moods, axis=1), 1.0, atol=1e-9)


def test_track_table_valid_and_correlated(tiny_world_dir):
    from spotisim.data.catalog import TrackCatalog
    cat = TrackCatalog.from_track_table(tiny_world_dir["tracks"])
    assert len(cat) == 300 and cat.has_features
    energy, acoustic = cat.feature("energy"), cat.feature("acousticness")
    assert np.corrcoef(energy, acoustic)[0, 1] < -0.5
    pop = cat.feature("us_popularity_estimate")
    assert pop.min() >= 90 and pop.max() <= 100


def test_cli(tmp_path, capsys):
    out = str(tmp_path / "cli")
    assert synthetic_main(["--out", out, "--sessions", "20", "--seed", "1",
                           "--tracks", "100", "--listeners", "10"]) == 0
    assert inspect_cli.main([out + "/log", "--tracks", out + "/tracks/tracks.csv"]) == 0
    assert "sessions                    20" in capsys.readouterr().out
    assert synthetic_main(["--out", out, "--sessions", "5", "--tracks", "10"]) == 2
    assert "pool_size" in capsys.readouterr().err


def test_bad_config():
    with pytest.raises(ConfigError, match="context_bias"):
        SyntheticWorld(WorldConfig(context_bias=(0.0,)))


def test_satiation_needs_variety_and_is_off_by_default(default_world):
    """With satiation, listening to a track lowers P(listen) of tracks like it (not of
    tracks unlike it) and the effect fades; weight 0 (the default world) is unchanged."""
    import dataclasses
    sated = SyntheticWorld(dataclasses.replace(default_world.config, satiation_weight=0.5))
    np.testing.assert_array_equal(sated.track_latent, default_world.track_latent)
    rng = np.random.default_rng(5)
    state = sated.new_sessions(rng, 32)
    z = sated.track_latent
    played = rng.integers(0, len(z), 32)
    cos = z[played] @ z.T                                      # [32, T]
    like = np.argsort(-cos, axis=1)[:, 1:4]                    # most similar, not itself
    unlike = np.argsort(cos, axis=1)[:, :3]                    # pointing away
    listened = np.ones(32, bool)
    after = sated.advance(state, played, listened)
    plain_after = default_world.advance(state, played, listened)
    assert plain_after.satiety is None
    np.testing.assert_allclose(after.taste, plain_after.taste)
    np.testing.assert_allclose(after.satiety, z[played])
    drop_like = default_world.listen_prob(plain_after, like) - sated.listen_prob(after, like)
    drop_unlike = (default_world.listen_prob(plain_after, unlike)
                   - sated.listen_prob(after, unlike))
    assert (drop_like > 0.01).all()
    np.testing.assert_allclose(drop_unlike, 0.0, atol=1e-12)   # max(0, .) spares them
    # Skips add nothing; satiety decays by satiation_decay per track.
    skipped = sated.advance(after, unlike[:, 0], np.zeros(32, bool))
    np.testing.assert_allclose(skipped.satiety, 0.7 * after.satiety)
    # copy/take carry the satiety; a state without it (session start) reads as zeros.
    np.testing.assert_allclose(after.take(np.array([3])).satiety, after.satiety[3:4])
    np.testing.assert_allclose(sated.listen_prob(state, like),
                               default_world.listen_prob(state, like))
    with pytest.raises(ConfigError, match="satiation_decay"):
        WorldConfig(satiation_decay=1.0).validate()


def test_saved_world_without_satiation_keys_loads(tmp_path):
    """A world saved before the satiation knobs existed loads with them off."""
    import json
    w = SyntheticWorld(WorldConfig(seed=4, num_tracks=200, num_listeners=30))
    w.save(str(tmp_path / "w"))
    path = tmp_path / "w" / "world.json"
    cfg = json.loads(path.read_text())
    cfg.pop("satiation_weight"), cfg.pop("satiation_decay")
    path.write_text(json.dumps(cfg))
    back = SyntheticWorld.load(str(tmp_path / "w"))
    assert back.config.satiation_weight == 0.0
