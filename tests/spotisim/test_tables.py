"""The one table renderer: widths from the cells, names left, figures right."""

import pytest

from spotisim.tables import interval, render_table


def test_columns_fit_their_widest_cell():
    out = render_table(["policy", "listens"], [["a long policy name", "8.50"], ["b", "10.25"]],
                       notes=["a note"])
    assert out.splitlines() == ["policy              listens",
                                "a long policy name     8.50",
                                "b                     10.25",
                                "a note"]


def test_a_short_row_is_an_error():
    with pytest.raises(ValueError, match="row 1 has 1 cells, the header 2"):
        render_table(["a", "b"], [["x", "y"], ["z"]])


def test_intervals():
    assert interval(0.5, 0.25, 0.75) == "0.500 [0.250, 0.750]"
    assert interval(0.01, -0.02, 0.04, 2, signed=True) == "+0.01 [-0.02, +0.04]"
