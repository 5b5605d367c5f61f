"""Every validation error on a small broken file names file, line and column; the
'drop' policy removes and counts the broken sessions instead."""

import os

import pytest

from spotisim.data import inspect as inspect_cli
from spotisim.data.catalog import TrackCatalog
from spotisim.data.schema import SESSION_LOG_COLUMNS
from spotisim.data.session_log import read_session_log
from spotisim.data.validation import DropReport
from spotisim.errors import DataValidationError

HEADER = [c.name for c in SESSION_LOG_COLUMNS]


def row(session, pos, length, track, skipped=False, **over):
    r = {
        "session_id": session, "session_position": pos, "session_length": length,
        "track_id_clean": track,
        "skip_1": False, "skip_2": skipped, "skip_3": skipped, "not_skipped": not skipped,
        "context_switch": 0, "no_pause_before_play": 1, "short_pause_before_play": 0,
        "long_pause_before_play": 0, "hist_user_behavior_n_seekfwd": 0,
        "hist_user_behavior_n_seekback": 0, "hist_user_behavior_is_shuffle": False,
        "hour_of_day": 16, "date": "2018-07-15", "premium": True,
        "context_type": "editorial_playlist", "hist_user_behavior_reason_start": "trackdone",
        "hist_user_behavior_reason_end": "fwdbtn" if skipped else "trackdone",
    }
    r.update(over)
    return r


def good_rows():
    """Two sessions (3 and 2 tracks), then a third (2 tracks): lines 2..8."""
    return [row("a", 1, 3, "t1"), row("a", 2, 3, "t2", True), row("a", 3, 3, "t3"),
            row("b", 1, 2, "t2"), row("b", 2, 2, "t4", True),
            row("c", 1, 2, "t1", True), row("c", 2, 2, "t3")]


def write_csv(path, rows, header=HEADER):
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(str(r.get(c, "")) for c in header) + "\n")
    return str(path)


def expect_error(path, line, column, fragment, tracks=None):
    with pytest.raises(DataValidationError) as info:
        read_session_log(path, tracks)
    err = info.value
    assert err.path == path
    assert err.line == line
    assert err.column == column
    assert fragment in str(err)
    assert f"line {line}" in str(err) and os.path.basename(path) in str(err)
    return err


def test_good_file_reads(tmp_path):
    log = read_session_log(write_csv(tmp_path / "ok.csv", good_rows()))
    assert log.num_sessions == 3 and log.num_rows == 7
    assert list(log.lengths) == [3, 2, 2]
    assert log.skipped.tolist() == [False, True, False, False, True, True, False]
    # Track ids are indexed in order of first appearance.
    assert log.catalog.track_ids.tolist() == ["t1", "t2", "t3", "t4"]
    assert log.tracks.tolist() == [0, 1, 2, 1, 3, 0, 2]


def test_missing_column(tmp_path):
    header = [h for h in HEADER if h != "skip_3"]
    path = write_csv(tmp_path / "f.csv", good_rows(), header)
    expect_error(path, 1, "skip_3", "missing required column")


def test_wrong_type(tmp_path):
    rows = good_rows()
    rows[3]["hour_of_day"] = "noon"
    path = write_csv(tmp_path / "f.csv", rows)
    expect_error(path, 5, "hour_of_day", "'noon'")


def test_bad_bool(tmp_path):
    rows = good_rows()
    rows[1]["premium"] = "maybe"
    path = write_csv(tmp_path / "f.csv", rows)
    expect_error(path, 3, "premium", "True/False")


def test_out_of_range(tmp_path):
    rows = good_rows()
    rows[4]["hour_of_day"] = 25
    path = write_csv(tmp_path / "f.csv", rows)
    expect_error(path, 6, "hour_of_day", "out of range")


def test_empty_cell(tmp_path):
    rows = good_rows()
    rows[2]["session_length"] = ""
    path = write_csv(tmp_path / "f.csv", rows)
    expect_error(path, 4, "session_length", "empty cell")


def test_unknown_context_type(tmp_path):
    rows = good_rows()
    rows[5]["context_type"] = "podcast"
    path = write_csv(tmp_path / "f.csv", rows)
    expect_error(path, 7, "context_type", "'podcast'")


def test_skip_flags_must_nest(tmp_path):
    rows = good_rows()
    rows[0]["skip_1"] = True  # skip_1 without skip_2
    path = write_csv(tmp_path / "f.csv", rows)
    expect_error(path, 2, "skip_2", "must nest")


def test_gap_in_positions(tmp_path):
    rows = good_rows()
    rows[2]["session_position"] = 4  # a: 1, 2, 4
    path = write_csv(tmp_path / "f.csv", rows)
    expect_error(path, 4, "session_position", "out of sequence")


def test_duplicate_position(tmp_path):
    rows = good_rows()
    rows[4]["session_position"] = 1  # b: 1, 1
    path = write_csv(tmp_path / "f.csv", rows)
    expect_error(path, 6, "session_position", "out of sequence")


def test_length_mismatch(tmp_path):
    rows = good_rows()
    for r in rows[3:5]:
        r["session_length"] = 3  # b claims 3 tracks but has 2
    path = write_csv(tmp_path / "f.csv", rows)
    expect_error(path, 5, "session_length", "does not match the number of rows")


def test_session_split_across_files(tmp_path):
    d = tmp_path / "shards"
    d.mkdir()
    rows = good_rows()
    write_csv(d / "part0.csv", rows[:4])   # a, first row of b
    path1 = write_csv(d / "part1.csv", rows[4:])
    with pytest.raises(DataValidationError) as info:
        read_session_log(str(d))
    # b is cut at the end of part0: its single row claims length 2.
    assert info.value.column == "session_length"
    assert info.value.path.endswith("part0.csv") and info.value.line == 5
    assert os.path.exists(path1)


def test_session_appears_twice(tmp_path):
    rows = good_rows() + [row("a", 1, 1, "t9")]
    path = write_csv(tmp_path / "f.csv", rows)
    expect_error(path, 9, "session_id", "appears twice")


def test_track_missing_from_track_table(tmp_path, tiny_world_dir):
    import pyarrow.csv as pacsv
    table = pacsv.read_csv(tiny_world_dir["tracks"])
    ids = table.column("track_id").to_pylist()
    rows = [row("a", 1, 2, ids[0]), row("a", 2, 2, "t_unknown")]
    path = write_csv(tmp_path / "f.csv", rows)
    expect_error(path, 3, "track_id_clean", "not in the track table",
                 tracks=tiny_world_dir["tracks"])


def test_track_table_errors(tmp_path, tiny_world_dir):
    import pyarrow.csv as pacsv
    from spotisim.data.synthetic import write_table
    table = pacsv.read_csv(tiny_world_dir["tracks"])
    # A duplicate id on the 3rd data row (line 4).
    ids = table.column("track_id").to_pylist()
    ids[2] = ids[0]
    import pyarrow as pa
    dup = table.set_column(0, "track_id", pa.array(ids))
    path = str(tmp_path / "tracks.csv")
    write_table(dup, path)
    with pytest.raises(DataValidationError) as info:
        TrackCatalog.from_track_table(path)
    assert (info.value.line, info.value.column) == (4, "track_id")
    # An out-of-range acousticness on line 3.
    vals = table.column("acousticness").to_pylist()
    vals[1] = 1.7
    bad = table.set_column(table.column_names.index("acousticness"), "acousticness",
                           pa.array(vals))
    write_table(bad, path)
    with pytest.raises(DataValidationError) as info:
        TrackCatalog.from_track_table(path)
    assert (info.value.line, info.value.column) == (3, "acousticness")


def test_drop_policy_counts_and_keeps_good_sessions(tmp_path):
    rows = good_rows()
    rows[1]["hour_of_day"] = 30           # breaks session a
    rows[4]["session_position"] = 1       # breaks session b
    path = write_csv(tmp_path / "f.csv", rows)
    report = DropReport()
    log = read_session_log(path, on_error="drop", report=report)
    assert log.session_ids.tolist() == ["c"]
    assert report.total_sessions == 2 and report.rows == 5
    assert "dropped 2 sessions (5 rows)" in report.summary()


def test_parquet_errors_name_row(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    rows = good_rows()
    rows[3]["hour_of_day"] = "x"
    table = pa.table({c: [str(r[c]) for r in rows] for c in HEADER})
    path = str(tmp_path / "f.parquet")
    pq.write_table(table, path)
    with pytest.raises(DataValidationError) as info:
        read_session_log(path)
    assert (info.value.line, info.value.column) == (5, "hour_of_day")


def test_inspect_cli_error_exit(tmp_path, capsys):
    rows = good_rows()
    rows[6]["skip_2"] = "perhaps"
    path = write_csv(tmp_path / "f.csv", rows)
    assert inspect_cli.main([path]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "line 8" in err and "skip_2" in err
    assert "Traceback" not in err


def test_no_files(tmp_path):
    with pytest.raises(DataValidationError, match="no data files"):
        read_session_log(str(tmp_path))
    with pytest.raises(DataValidationError, match="no such file"):
        read_session_log(str(tmp_path / "nope.csv"))
