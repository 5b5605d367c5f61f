"""The one plain-text table every report prints.

Why one: each study used to pad its own columns by hand (seven formatters, each with
widths that broke on a long policy or model name).  Here the widths come from the cells:
the first column (names) is left-aligned, the others (figures) right-aligned, and notes
follow the table as they are.
"""

from __future__ import annotations

from typing import Optional, Sequence


def number_or_dash(value: Optional[float], digits: int) -> str:
    """`value` to `digits` decimals, or "-" where there is none (None)."""
    return "-" if value is None else f"{value:.{digits}f}"


def render_table(header: Sequence[str], rows: Sequence[Sequence[object]],
                 notes: Sequence[str] = ()) -> str:
    """`header` and `rows` (cells already formatted, or anything `str` takes) as
    aligned columns, two spaces apart, then `notes`, one line each.

    Raises:
      ValueError: a row with another number of cells than the header.
    """
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    n = len(header)
    for i, r in enumerate(cells[1:]):
        if len(r) != n:
            raise ValueError(f"row {i} has {len(r)} cells, the header {n}")
    widths = [max(len(r[j]) for r in cells) for j in range(n)]
    lines = ["  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                       for j, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in cells]
    return "\n".join(lines + [str(note) for note in notes])


def interval(mean: float, lo: float, hi: float, digits: int = 3, signed: bool = False) -> str:
    """'m [lo, hi]' with `digits` decimals (signs shown with `signed`)."""
    f = f"{{:{'+' if signed else ''}.{digits}f}}"
    return f"{f.format(mean)} [{f.format(lo)}, {f.format(hi)}]"


def over_seeds_line(label: str, figures: dict, seeds: int, policies: int) -> str:
    """`<label>: tau=X [lo, hi] top-tau=Z [lo, hi] regret@1=Y% [lo, hi] seeds=K
    policies=N` from t-intervals over seeds (`spotisim.stats.mean_interval`'s form) of
    `kendall_tau`, `top_tau` and `regret_at_1`: the last line of every summary over
    seeds (the study's, `alignment_seeds`; the main job's, `seeds`)."""
    t, top, r = figures["kendall_tau"], figures["top_tau"], figures["regret_at_1"]
    return (f"{label}: tau={t['mean']:.3f} [{t['lo']:.3f}, {t['hi']:.3f}] "
            f"top-tau={top['mean']:.3f} [{top['lo']:.3f}, {top['hi']:.3f}] "
            f"regret@1={r['mean']:.2f}% [{r['lo']:.2f}, {r['hi']:.2f}] "
            f"seeds={seeds} policies={policies}")
