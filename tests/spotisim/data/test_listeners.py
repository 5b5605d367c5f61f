"""Logs that say who listened (#24): the optional listener_id column read, validated,
kept through every format and summarised; splits in time with new listeners; and the
synthetic world whose listeners return."""

import os
import re

import numpy as np
import pyarrow.parquet as pq
import pytest

from spotisim.data import inspect as inspect_cli
from spotisim.data.schema import LISTENER_COLUMN
from spotisim.data.session_log import SessionLog, read_session_log
from spotisim.data.shards import convert_shard
from spotisim.data.synthetic import SyntheticWorld, generate
from spotisim.data.validation import DropReport
from spotisim.data.world.config import WorldConfig
from spotisim.errors import ConfigError, DataValidationError
from tests.spotisim.data.test_synthetic import assert_looks_like_mssd
from tests.spotisim.data.test_validation import HEADER, good_rows, row, write_csv

WITH_ID = HEADER + [LISTENER_COLUMN]


def listener_rows():
    """Sessions a, b (listener x) and c (listener y); b is a day after a.  Lines 2..8."""
    rows = good_rows()
    for r in rows:
        r[LISTENER_COLUMN] = "y" if r["session_id"] == "c" else "x"
        if r["session_id"] == "b":
            r["date"] = "2018-07-16"
    return rows


def test_listener_ids_read_and_kept(tmp_path):
    path = write_csv(tmp_path / "f.csv", listener_rows(), WITH_ID)
    log = read_session_log(path)
    assert log.has_listeners and log.optional_columns == (LISTENER_COLUMN,)
    names = np.asarray(log.vocab[LISTENER_COLUMN], dtype=object)
    assert names[log.session_listeners].tolist() == ["x", "x", "y"]
    assert log.num_listeners == 2
    # Kept by the MSSD export, the processed format and a subset.
    table = log.to_arrow()
    assert table.column(LISTENER_COLUMN).to_pylist() == ["x"] * 5 + ["y"] * 2
    log.save(str(tmp_path / "processed"))
    again = SessionLog.load(str(tmp_path / "processed"))
    assert again.content_digest() == log.content_digest()
    sub = again.subset([2, 0])
    assert np.asarray(sub.vocab[LISTENER_COLUMN])[sub.session_listeners].tolist() == ["y", "x"]


def test_a_log_without_ids_has_anonymous_listeners(tmp_path):
    log = read_session_log(write_csv(tmp_path / "f.csv", good_rows()))
    assert not log.has_listeners and log.num_listeners == 3
    assert log.session_listeners.tolist() == [-1, -2, -3]


def test_listener_changing_within_a_session_is_one_error(tmp_path):
    rows = listener_rows()
    rows[2][LISTENER_COLUMN] = "z"          # a's third row (line 4)
    path = write_csv(tmp_path / "f.csv", rows, WITH_ID)
    with pytest.raises(DataValidationError) as info:
        read_session_log(path)
    assert (info.value.line, info.value.column) == (4, LISTENER_COLUMN)
    assert "one listener" in str(info.value)
    report = DropReport()
    log = read_session_log(path, on_error="drop", report=report)
    assert log.session_ids.tolist() == ["b", "c"] and report.total_sessions == 1


@pytest.mark.parametrize("bad", [" ", "x\ty"])
def test_blank_or_control_character_id_is_one_error(tmp_path, bad):
    rows = listener_rows()
    rows[3][LISTENER_COLUMN] = bad          # line 5
    path = write_csv(tmp_path / "f.csv", rows, WITH_ID)
    with pytest.raises(DataValidationError) as info:
        read_session_log(path)
    assert (info.value.line, info.value.column) == (5, LISTENER_COLUMN)
    assert "blank, or holds a control character" in str(info.value)


def test_every_file_must_say_who_listened_or_none(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    rows = listener_rows()
    write_csv(d / "a.csv", rows[:5], WITH_ID)
    second = write_csv(d / "b.csv", rows[5:], HEADER)
    with pytest.raises(DataValidationError) as info:
        read_session_log(str(d))
    assert info.value.path == second and info.value.column == LISTENER_COLUMN


def test_time_order_is_date_then_hour_then_session_id(tmp_path):
    rows = [row("s2", 1, 1, "t1", date="2018-07-15", hour_of_day=9),
            row("s1", 1, 1, "t2", date="2018-07-15", hour_of_day=9),
            row("s3", 1, 1, "t3", date="2018-07-14", hour_of_day=23),
            row("s0", 1, 1, "t4", date="2018-07-15", hour_of_day=10)]
    log = read_session_log(write_csv(tmp_path / "f.csv", rows))
    assert log.session_ids[log.time_order()].tolist() == ["s3", "s1", "s2", "s0"]


def _timed_log(tmp_path):
    """20 sessions, one an hour: listeners p (sessions 0, 2, 4, ...), q (1, 5, 9, ...),
    r (3, 11, 19), s (7, 15) and t (13, 17)."""
    who = {0: "p", 1: "q", 3: "r", 7: "s", 11: "r", 13: "t", 15: "s", 17: "t", 19: "r"}
    rows = [row(f"s{i:02d}", 1, 1, f"t{i % 4}", hour_of_day=i,
                **{LISTENER_COLUMN: who.get(i, "p" if i % 2 == 0 else "q")})
            for i in range(20)]
    return read_session_log(write_csv(tmp_path / "f.csv", rows, WITH_ID))


def test_split_follows_time_and_keeps_new_listeners_out(tmp_path):
    log = _timed_log(tmp_path)
    hour = lambda part: part.columns["hour_of_day"][part.offsets[:-1]].tolist()
    names = lambda part: set(np.asarray(part.vocab[LISTENER_COLUMN])[part.session_listeners])
    tr, va, te = log.split((0.6, 0.2, 0.2), seed=0, new_listeners=0.0)
    assert hour(tr) == list(range(12)) and hour(va) == list(range(12, 16))
    assert hour(te) == [16, 17, 18, 19]
    # The test period's listeners are p, t and r; new_listeners=0.34 holds out one of
    # them: none of its earlier sessions trains or validates, its test sessions stay.
    held_out = set()
    for seed in range(12):
        tr, va, te = log.split((0.6, 0.2, 0.2), seed=seed, new_listeners=0.34)
        held = names(te) - names(tr) - names(va)
        assert len(held) == 1 and held <= {"p", "t", "r"} and hour(te) == [16, 17, 18, 19]
        who = np.asarray(log.vocab[LISTENER_COLUMN])[log.session_listeners[:16]]
        assert tr.num_sessions + va.num_sessions == 16 - int(np.isin(who, list(held)).sum())
        held_out |= held
    assert len(held_out) > 1
    tr = log.split((0.6, 0.2, 0.2), seed=0, new_listeners=0.34)[0]
    # Same seed, same split; the fractions are checked.
    assert log.split((0.6, 0.2, 0.2), seed=0, new_listeners=0.34)[0].session_ids.tolist() \
        == tr.session_ids.tolist()
    with pytest.raises(ConfigError):
        log.split((0.6, 0.2, 0.2), new_listeners=1.0)


def test_inspect_counts_sessions_per_listener(tmp_path, capsys):
    path = write_csv(tmp_path / "f.csv", listener_rows(), WITH_ID)
    s = inspect_cli.summarize(path)
    assert s["listeners"] == 2
    per = s["sessions_per_listener"]
    assert (per["mean"], per["median"], per["max"], per["one_session_share"]) == (1.5, 1.5, 2, 0.5)
    assert inspect_cli.main([path]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^listeners +2$", out, re.M)
    assert "sessions per listener  mean 1.5  median 2  p90 2  max 2  one session 50.0%" in out
    assert "listeners" not in inspect_cli.summarize(write_csv(tmp_path / "g.csv", good_rows()))


def test_inspect_and_the_reader_count_each_session_once(tmp_path):
    """A shard copied twice, and a session repeated further down one file: inspect
    rejects them as the reader does (one validation path), or drops the later copy."""
    d = tmp_path / "d"
    d.mkdir()
    first = write_csv(d / "a.csv", good_rows())
    write_csv(d / "b.csv", good_rows())
    repeated = write_csv(tmp_path / "r.csv", good_rows() + good_rows()[:3])
    for path, line in ((str(d), 2), (repeated, 9)):
        for read in (inspect_cli.summarize, read_session_log):
            with pytest.raises(DataValidationError) as info:
                read(path)
            assert "appears twice" in str(info.value) and info.value.line == line
        assert inspect_cli.summarize(path, on_error="drop")["sessions"] == 3
    assert first in str(pytest.raises(DataValidationError, inspect_cli.summarize, str(d)).value)


def test_shards_keep_the_listener_column(tmp_path):
    src = write_csv(tmp_path / "f.csv", listener_rows(), WITH_ID)
    out = tmp_path / "shards"
    out.mkdir()
    shard, = convert_shard(src, str(out))
    assert pq.read_table(shard).column(LISTENER_COLUMN).to_pylist()[-1] == "y"
    assert read_session_log(shard).content_digest() == read_session_log(src).content_digest()


# --------------------------------------------------------------------------- the world

RETURNING = dict(num_tracks=400, num_listeners=60, listener_days=28, taste_drift=0.05,
                 seed=3)


def test_returning_listeners_keep_the_calibration_gates():
    """The gates of the default world (test_synthetic) hold with returning listeners:
    within a session nothing changed."""
    world = SyntheticWorld(WorldConfig(listener_days=28, taste_drift=0.03))
    schedule = world.listeners.schedule(np.random.default_rng(1), 3000)
    sim = world.simulate_sessions(np.random.default_rng(0), 3000, schedule=schedule)
    assert_looks_like_mssd(sim, world.config.max_length)
    assert (np.diff(schedule["day"] * 24 + schedule["hour"]) >= 0).all()
    with pytest.raises(ValueError):
        SyntheticWorld(WorldConfig(num_tracks=100, num_listeners=5)).listeners.schedule(
            np.random.default_rng(0), 3)


def test_listeners_return_with_a_heavy_tail_and_a_slowly_drifting_taste(tmp_path):
    cfg = WorldConfig(**RETURNING)
    paths = generate(str(tmp_path / "w"), 1200, 3, cfg)
    log = read_session_log(paths["log"])
    assert log.has_listeners
    counts = np.bincount(log.session_listeners)
    assert counts.max() > 4 * counts.mean()           # a heavy tail
    assert (counts == 1).any() and log.num_listeners <= 60
    days = log.columns["date"][log.offsets[:-1]]
    assert days.max() - days.min() > 20               # several weeks
    # The hidden key is the listener-day row: the same listener's taste a day apart is
    # closer than a week apart, and much closer than another listener's.
    world = SyntheticWorld.load(paths["world"])
    taste = world.listener_taste.reshape(60, 28, -1)
    day1 = np.einsum("ld,ld->l", taste[:, 0], taste[:, 1]).mean()
    day27 = np.einsum("ld,ld->l", taste[:, 0], taste[:, 27]).mean()
    other = np.einsum("ld,ld->l", taste[:, 0], np.roll(taste[:, 0], 1, axis=0)).mean()
    assert day1 > 0.99 and 0.7 < day27 < day1 and other < 0.5
    # The log's listener and day match the hidden row of each session.
    hidden = pq.read_table(paths["hidden"]).to_pandas().set_index("session_id")
    rows = hidden.loc[log.session_ids, "listener"].to_numpy()
    names = np.asarray(log.vocab["listener_id"])[log.session_listeners]
    assert (np.array([int(n[1:]) for n in names]) == rows // 28).all()
    day = days - (np.datetime64("2018-07-08") - np.datetime64("1970-01-01")).astype(int)
    assert (rows % 28 == day).all()


def test_bad_returning_config_is_one_error():
    with pytest.raises(ConfigError, match="listener_days"):
        WorldConfig(listener_days=-1).validate()
