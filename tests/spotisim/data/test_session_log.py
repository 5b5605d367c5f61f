"""SessionLog: schema round trip (synthetic -> files -> reader), chunk boundaries,
Parquet export/import, splits by session, the skip definition."""

import hashlib
import os

import numpy as np
import pytest

from spotisim.data.session_log import read_session_log
from spotisim.data.synthetic import SyntheticWorld, WorldConfig, generate, write_table
from spotisim.errors import ConfigError
from tests.conftest import TINY_WORLD


def test_round_trip_matches_the_simulation(tmp_path):
    """What the world simulated is exactly what the reader gives back."""
    world = SyntheticWorld(WorldConfig(seed=5, **TINY_WORLD))
    rng = np.random.default_rng(11)
    sim = world.simulate_sessions(rng, 40)
    table, sids = world.session_log_table(sim, rng)
    for suffix in (".csv", ".csv.gz", ".parquet"):
        path = str(tmp_path / f"log{suffix}")
        write_table(table, path)
        log = read_session_log(path)
        assert log.session_ids.tolist() == sids
        assert log.lengths.tolist() == sim["length"].tolist()
        for s in range(40):
            L = sim["length"][s]
            ids = log.catalog.track_ids[log.session_tracks(s)]
            assert ids.tolist() == world.track_ids[sim["tracks"][s, :L]].tolist()
            assert log.session_skips(s).tolist() == (~sim["listened"][s, :L]).tolist()
        assert log.to_arrow().equals(table)


@pytest.mark.parametrize("chunk_rows", [1, 7, 64])
def test_sessions_straddling_chunks(tiny_world_dir, tiny_log, chunk_rows):
    """Tiny chunks cut sessions anywhere; the result must not change."""
    small = read_session_log(tiny_world_dir["log"], tiny_world_dir["tracks"],
                             chunk_rows=chunk_rows)
    assert small.session_ids.tolist() == tiny_log.session_ids.tolist()
    np.testing.assert_array_equal(small.tracks, tiny_log.tracks)
    np.testing.assert_array_equal(small.offsets, tiny_log.offsets)


def test_shards_and_formats_agree(tmp_path):
    cfg = WorldConfig(seed=2, **TINY_WORLD)
    a = generate(str(tmp_path / "csv"), 90, 2, cfg, "csv", num_shards=3)
    b = generate(str(tmp_path / "pq"), 90, 2, cfg, "parquet", num_shards=3)
    assert sorted(os.listdir(a["log"])) == ["log_00000.csv", "log_00001.csv", "log_00002.csv"]
    la = read_session_log(a["log"], a["tracks"])
    lb = read_session_log(os.path.join(b["log"], "*.parquet"), b["tracks"])
    assert la.num_sessions == 90
    assert la.to_arrow().equals(lb.to_arrow())
    np.testing.assert_allclose(la.catalog.features, lb.catalog.features)


def test_processed_parquet_round_trip(tiny_log, tmp_path):
    d = str(tmp_path / "processed")
    tiny_log.save(d)
    back = read_session_log(d)
    assert back.to_arrow().equals(tiny_log.to_arrow())
    np.testing.assert_array_equal(back.catalog.features, tiny_log.catalog.features)
    np.testing.assert_array_equal(back.catalog.play_counts, tiny_log.catalog.play_counts)
    assert back.vocab == tiny_log.vocab


def test_play_counts_and_padding(tiny_log):
    assert tiny_log.catalog.play_counts.sum() == tiny_log.num_rows
    tracks, skipped, mask = tiny_log.padded()
    assert mask.sum() == tiny_log.num_rows
    s = 5
    L = tiny_log.lengths[s]
    assert tracks[s, :L].tolist() == tiny_log.session_tracks(s).tolist()
    assert (tracks[s, L:] == -1).all()
    assert skipped[mask].mean() == pytest.approx(tiny_log.skip_rate)


def test_split_is_by_session_disjoint_and_seeded(tiny_log):
    tr, va, te = tiny_log.split((0.8, 0.1, 0.1), seed=4)
    ids = [set(p.session_ids) for p in (tr, va, te)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert len(ids[0] | ids[1] | ids[2]) == tiny_log.num_sessions
    assert (tr.num_sessions, va.num_sessions, te.num_sessions) == (240, 30, 30)
    assert tr.num_rows + va.num_rows + te.num_rows == tiny_log.num_rows
    # Whole sessions move together: each part's sessions equal the originals.
    s = 0
    orig = int(np.nonzero(tiny_log.session_ids == va.session_ids[s])[0][0])
    assert va.session_tracks(s).tolist() == tiny_log.session_tracks(orig).tolist()
    again = tiny_log.split((0.8, 0.1, 0.1), seed=4)[1]
    assert again.session_ids.tolist() == va.session_ids.tolist()
    other = tiny_log.split((0.8, 0.1, 0.1), seed=5)[1]
    assert other.session_ids.tolist() != va.session_ids.tolist()
    with pytest.raises(ConfigError):
        tiny_log.split((0.5, 0.1, 0.1))


def test_skip_definition(tiny_log):
    s1 = tiny_log.with_skip_column("skip_1").skip_rate
    s2 = tiny_log.skip_rate
    s3 = tiny_log.with_skip_column("skip_3").skip_rate
    ns = tiny_log.with_skip_column("not_skipped").skip_rate
    assert s1 < s2 < s3 <= ns
    assert tiny_log.skip_column == "skip_2"
    with pytest.raises(ConfigError, match="skip_column"):
        tiny_log.with_skip_column("skip_4")


def test_same_seed_same_bytes(tmp_path):
    cfg = WorldConfig(seed=9, **TINY_WORLD)

    def digest(d):
        h = hashlib.sha256()
        for root, _, files in sorted(os.walk(d)):
            for f in sorted(files):
                with open(os.path.join(root, f), "rb") as fh:
                    h.update(f.encode() + fh.read())
        return h.hexdigest()

    generate(str(tmp_path / "a"), 50, 9, cfg, "csv.gz")
    generate(str(tmp_path / "b"), 50, 9, cfg, "csv.gz")
    generate(str(tmp_path / "c"), 50, 10, WorldConfig(seed=10, **TINY_WORLD), "csv.gz")
    assert digest(tmp_path / "a" / "log") == digest(tmp_path / "b" / "log")
    assert digest(tmp_path / "a" / "tracks") == digest(tmp_path / "b" / "tracks")
    assert digest(tmp_path / "a" / "log") != digest(tmp_path / "c" / "log")
