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


def test_skip_flags_that_do_not_nest_are_kept_and_reported(tmp_path, capsys):
    """Real MSSD has such rows: they are a quirk (count, example with file and line),
    not a reason to reject the log; the label stays skip_2 as logged."""
    rows = good_rows()
    rows[0]["skip_1"] = True     # line 2: skip_1 without skip_2
    rows[5]["skip_3"] = False    # line 7: skip_2 without skip_3
    rows[6]["skip_1"] = True     # line 8: skip_1 without skip_2 again
    path = write_csv(tmp_path / "f.csv", rows)
    log = read_session_log(path)
    assert log.num_rows == 7
    assert log.skipped.tolist() == [False, True, False, False, True, True, False]
    quirks = log.read_report.quirks
    nest12 = [q for r, q in quirks.items() if r.startswith("skip_1 is True")][0]
    assert nest12 == {"rows": 2, "example": f"{path} line 2"}
    nest23 = [q for r, q in quirks.items() if r.startswith("skip_2 is True")][0]
    assert nest23 == {"rows": 1, "example": f"{path} line 7"}
    assert inspect_cli.main([path]) == 0
    out = capsys.readouterr().out
    assert "quirks: kept, as logged: 2 rows where skip_1 is True" in out and "line 2" in out


@pytest.mark.parametrize("case, line, column, fragment", [
    ("blank_track", 4, "track_id_clean", "blank"),
    ("control_track", 4, "track_id_clean", "control character"),
    ("control_session", 2, "session_id", "control character"),
])
def test_bad_ids(tmp_path, case, line, column, fragment):
    rows = good_rows()
    if case == "blank_track":
        rows[2]["track_id_clean"] = "   "
    elif case == "control_track":
        rows[2]["track_id_clean"] = "t\x073"
    else:
        for r in rows[:3]:
            r["session_id"] = "a\tb"
    expect_error(write_csv(tmp_path / "f.csv", rows), line, column, fragment)


def _broken_files(tmp_path):
    """Each class of broken file, with the fragment its error must hold and its line."""
    import gzip
    good = open(write_csv(tmp_path / "good.csv", good_rows() * 1), "rb").read()
    packed = gzip.compress(good * 40)
    cases = {}
    p = tmp_path / "truncated.csv.gz"
    p.write_bytes(packed[:len(packed) // 2])
    cases["truncated gzip"] = (str(p), "truncated gzip", None)
    p = tmp_path / "magic.csv.gz"
    p.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 2)
    cases["gzip header, bad stream"] = (str(p), "gzip", None)
    p = tmp_path / "binary.csv.gz"
    p.write_bytes(bytes(range(128, 256)) * 4)
    cases["binary bytes"] = (str(p), "not UTF-8", None)
    rows = good_rows()
    rows[2]["track_id_clean"] = "x" * (1 << 21)
    cases["line over 1 MiB"] = (write_csv(tmp_path / "long.csv", rows), "longer than 1 MiB", 4)
    cases["header only"] = (write_csv(tmp_path / "header.csv", []), "empty", None)
    return cases


def test_broken_files_give_one_clear_error(tmp_path, capsys):
    for name, (path, fragment, line) in _broken_files(tmp_path).items():
        with pytest.raises(DataValidationError) as info:
            read_session_log(path)
        assert fragment in str(info.value), name
        assert info.value.path == path and info.value.line == line, name
        # From the command line: one line, exit status 1, no traceback.
        assert inspect_cli.main([path]) == 1, name
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, name
        assert "Traceback" not in err and path in err, name
    os.makedirs(tmp_path / "empty")
    assert inspect_cli.main([str(tmp_path / "empty")]) == 1
    assert "no data files" in capsys.readouterr().err


def test_duplicate_session_ids_across_files(tmp_path):
    """A session id in two files is an error under 'raise'; under 'drop' the second
    copy is dropped and counted, the first kept."""
    os.makedirs(tmp_path / "d")
    first = write_csv(tmp_path / "d" / "a.csv", good_rows())
    second = write_csv(tmp_path / "d" / "b.csv", good_rows()[:3] + [row("z", 1, 1, "t9")])
    with pytest.raises(DataValidationError) as info:
        read_session_log(str(tmp_path / "d"))
    assert info.value.path == second and info.value.line == 2
    assert "appears twice" in str(info.value) and first in str(info.value)
    report = DropReport()
    log = read_session_log(str(tmp_path / "d"), on_error="drop", report=report)
    assert log.session_ids.tolist() == ["a", "b", "c", "z"]
    assert report.total_sessions == 1 and report.rows == 3


def test_parquet_numbers_in_a_flag_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    rows = good_rows()
    table = pa.table({c: [r[c] for r in rows] for c in HEADER})
    flags = [0.0, 1.0, 0.0, 0.0, 1.0, 0.5, 0.0]   # row 6 (line 7) is not a flag
    table = table.set_column(HEADER.index("skip_1"), "skip_1", pa.array(flags))
    path = str(tmp_path / "f.parquet")
    pq.write_table(table, path)
    with pytest.raises(DataValidationError) as info:
        read_session_log(path)
    assert (info.value.line, info.value.column) == (7, "skip_1") and "0.5" in str(info.value)


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


@pytest.mark.parametrize("chunk_rows", [5, 100])
def test_parquet_errors_name_the_row_in_later_batches(tmp_path, chunk_rows):
    """Row numbers stay right when the bad row is in a later row group / batch."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    rows = [row(f"s{s}", i + 1, 3, f"t{i}") for s in range(10) for i in range(3)]
    vals = [str(r["hour_of_day"]) for r in rows]
    vals[17] = "x"                      # data row 18 -> line 19
    table = pa.table({c: [r[c] for r in rows] for c in HEADER})
    table = table.set_column(HEADER.index("hour_of_day"), "hour_of_day", pa.array(vals))
    path = str(tmp_path / "multi.parquet")
    pq.write_table(table, path, row_group_size=7)
    with pytest.raises(DataValidationError) as info:
        read_session_log(path, chunk_rows=chunk_rows)
    assert (info.value.line, info.value.column) == (19, "hour_of_day")
