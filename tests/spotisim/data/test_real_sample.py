"""The real-data path on the MSSD slice in ../shared (log only, no track table)."""

import numpy as np
import pytest

from spotisim.data import inspect as inspect_cli
from spotisim.data.session_log import read_session_log


def test_reads_real_slice(mssd_sample_path):
    log = read_session_log(mssd_sample_path)
    assert log.num_sessions == 1000
    assert log.num_rows == 16723
    assert len(log.catalog) == 8609
    assert not log.catalog.has_features
    assert log.skip_rate == pytest.approx(8697 / 16723)
    assert set(log.lengths.tolist()) <= set(range(10, 21))
    assert (log.lengths == 20).sum() == 509
    assert log.session_ids[0] == "0_00006f66-33e5-4de7-a324-2d18e439fc1e"
    ctx = np.asarray(log.vocab["context_type"])[log.columns["context_type"]]
    assert (ctx == "user_collection").sum() == 6829


def test_inspect_real_slice(mssd_sample_path, capsys):
    assert inspect_cli.main([mssd_sample_path]) == 0
    out = capsys.readouterr().out
    assert "sessions                 1,000" in out
    assert "skip rate (skip_2)      52.0%" in out
    s = inspect_cli.summarize(mssd_sample_path)
    assert s["skip_by_position"][1] == pytest.approx(0.394)
    assert s["length_share"][20] == pytest.approx(0.509)
    assert s["flag_rates"]["skip_1"] == pytest.approx(7099 / 16723)
