"""CSV shards -> Parquet shards: same log back, converted once, cut at session
boundaries, split between actors, and bad input named."""

import os
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from spotisim.data.session_log import read_session_log
from spotisim.data.shards import assign_shards, preprocess_shards
from spotisim.errors import ConfigError, DataValidationError


@pytest.fixture(scope="module")
def four_file_world(tmp_path_factory):
    from spotisim.data.synthetic import WorldConfig, generate
    from tests.conftest import TINY_WORLD
    out = str(tmp_path_factory.mktemp("w4"))
    return generate(out, num_sessions=200, seed=2, config=WorldConfig(seed=2, **TINY_WORLD),
                    num_shards=4)


def same_log(a, b):
    return (a.num_rows == b.num_rows and (a.tracks == b.tracks).all()
            and (a.session_ids == b.session_ids).all()
            and all((a.columns[k] == b.columns[k]).all() for k in a.columns))


def test_parallel_conversion_gives_the_same_log_once(four_file_world, tmp_path):
    out = str(tmp_path / "shards")
    shards = preprocess_shards(four_file_world["log"], out, workers=2)
    assert [os.path.basename(s) for s in shards] == [f"log_{i:05d}.parquet" for i in range(4)]
    csv = read_session_log(four_file_world["log"], four_file_world["tracks"])
    assert same_log(csv, read_session_log(out, four_file_world["tracks"]))
    # Once: a second call converts nothing (the shards are not rewritten) ...
    mtimes = [os.path.getmtime(s) for s in shards]
    assert preprocess_shards(four_file_world["log"], out, workers=2) == shards
    assert [os.path.getmtime(s) for s in shards] == mtimes
    # ... until a source file changes.
    src = os.path.join(four_file_world["log"], "log_00002.csv")
    later = time.time() + 5
    os.utime(src, (later, later))
    preprocess_shards(four_file_world["log"], out, workers=1)
    changed = [os.path.getmtime(s) != m for s, m in zip(shards, mtimes)]
    assert changed == [False, False, True, False]


def test_rows_per_shard_cuts_at_session_boundaries(four_file_world, tmp_path):
    shards = preprocess_shards(four_file_world["log"], str(tmp_path / "s"), workers=1,
                               rows_per_shard=300)
    assert len(shards) > 4
    rows = []
    for s in shards:
        t = pq.read_table(s)
        pos = t.column("session_position").to_numpy()
        assert pos[0] == 1                      # every shard starts a session
        rows.append(t.num_rows)
        ids = t.column("session_id").to_numpy(zero_copy_only=False)
        last = ids[-1]
        # ... and ends one: the last session is complete (its length rows are all here).
        assert (ids == last).sum() == t.column("session_length").to_numpy()[-1]
    assert max(rows) < 300 + 25                 # a session has at most 20 rows
    csv = read_session_log(four_file_world["log"], four_file_world["tracks"])
    assert same_log(csv, read_session_log(str(tmp_path / "s"), four_file_world["tracks"]))


def test_assign_shards_splits_without_overlap():
    shards = [f"s{i}" for i in range(7)]
    parts = [assign_shards(shards, i, 3) for i in range(3)]
    assert parts == [["s0", "s3", "s6"], ["s1", "s4"], ["s2", "s5"]]
    with pytest.raises(ConfigError, match="actor index 3"):
        assign_shards(shards, 3, 3)
    with pytest.raises(ConfigError, match="8 actors but only 7"):
        assign_shards(shards, 0, 8)


def test_bad_file_is_named_and_leaves_no_shard(four_file_world, tmp_path):
    src = tmp_path / "logs"
    src.mkdir()
    lines = open(os.path.join(four_file_world["log"], "log_00000.csv")).read().splitlines()
    cols = lines[0].split(",")
    bad = lines[3].split(",")
    bad[cols.index("session_position")] = "x"
    (src / "a.csv").write_text("\n".join(lines[:3] + [",".join(bad)] + lines[4:]) + "\n")
    with pytest.raises(DataValidationError) as err:
        preprocess_shards(str(src), str(tmp_path / "out"), workers=1)
    assert "a.csv" in str(err.value) and "line 4" in str(err.value)
    assert not [f for f in os.listdir(tmp_path / "out") if f.endswith(".parquet")]
