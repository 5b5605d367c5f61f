"""Check your own MSSD files before anything else:

    python -m spotisim.data.inspect LOG_PATH [--tracks TRACKS_PATH] [--on-error drop]

Streams the log (any size), validates it and prints a summary: sessions, rows, tracks,
skip rates, context mix, session-length and skip-by-position tables, and, for a log
with listener ids, sessions per listener.  A data problem
prints one line naming file, line and column, and exits with status 1.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import sys
from typing import Dict, List, Optional

import numpy as np
import pandas as pd

from spotisim.data.catalog import TrackCatalog
from spotisim.data.schema import LISTENER_COLUMN, SKIP_COLUMNS
from spotisim.data.sessions import iter_session_tables
from spotisim.data.validation import DropReport
from spotisim import cli
from spotisim.errors import DataValidationError

MAX_POSITION = 20


@dataclasses.dataclass
class LogSummary:
    """Streaming statistics of a session log (updated chunk by chunk)."""

    sessions: int = 0
    rows: int = 0
    flag_counts: Dict[str, int] = dataclasses.field(
        default_factory=lambda: {c: 0 for c in SKIP_COLUMNS})
    length_counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    pos_rows: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(MAX_POSITION + 1, np.int64))
    pos_skips: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(MAX_POSITION + 1, np.int64))
    context_counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    premium_rows: int = 0
    shuffle_rows: int = 0
    track_hashes: set = dataclasses.field(default_factory=set)
    skip_column: str = "skip_2"
    # Sessions per listener (hash of the id -> count), for a log with listener ids.
    listener_sessions: Optional[collections.Counter] = None

    def update(self, table) -> None:
        n = table.num_rows
        pos = table.column("session_position").to_numpy()
        starts = pos == 1
        self.sessions += int(starts.sum())
        self.rows += n
        flags = {c: table.column(c).to_numpy(zero_copy_only=False) for c in SKIP_COLUMNS}
        for c in SKIP_COLUMNS:
            self.flag_counts[c] += int(flags[c].sum())
        skipped = ~flags["not_skipped"] if self.skip_column == "not_skipped" else flags[self.skip_column]
        lengths = table.column("session_length").to_numpy()[starts]
        self.length_counts.update(lengths.tolist())
        p = np.minimum(pos, MAX_POSITION)
        self.pos_rows += np.bincount(p, minlength=MAX_POSITION + 1)
        self.pos_skips += np.bincount(p, weights=skipped, minlength=MAX_POSITION + 1).astype(np.int64)
        ctx = table.column("context_type").to_numpy(zero_copy_only=False)[starts]
        self.context_counts.update(ctx.tolist())
        self.premium_rows += int(table.column("premium").to_numpy(zero_copy_only=False).sum())
        self.shuffle_rows += int(table.column("hist_user_behavior_is_shuffle")
                                 .to_numpy(zero_copy_only=False).sum())
        ids = table.column("track_id_clean").to_numpy(zero_copy_only=False)
        self.track_hashes.update(pd.util.hash_array(ids.astype(object)).tolist())
        if LISTENER_COLUMN in table.column_names:
            who = table.column(LISTENER_COLUMN).to_numpy(zero_copy_only=False)[starts]
            if self.listener_sessions is None:
                self.listener_sessions = collections.Counter()
            self.listener_sessions.update(pd.util.hash_array(who.astype(object)).tolist())

    def to_dict(self) -> dict:
        rows = max(self.rows, 1)
        sessions = max(self.sessions, 1)
        return {
            "sessions": self.sessions,
            "rows": self.rows,
            "tracks": len(self.track_hashes),
            "skip_definition": self.skip_column,
            "skip_rate": self.pos_skips[1:].sum() / rows,
            "flag_rates": {c: v / rows for c, v in self.flag_counts.items()},
            "premium_rate": self.premium_rows / rows,
            "shuffle_rate": self.shuffle_rows / rows,
            "context_share": {k: v / sessions for k, v in self.context_counts.most_common()},
            "length_share": {int(k): v / sessions for k, v in sorted(self.length_counts.items())},
            "skip_by_position": {int(p): self.pos_skips[p] / self.pos_rows[p]
                                 for p in range(1, MAX_POSITION + 1) if self.pos_rows[p]},
            **self._listener_dict(),
        }

    def _listener_dict(self) -> dict:
        """Sessions per listener, for a log with listener ids (else nothing)."""
        if not self.listener_sessions:
            return {}
        n = np.asarray(list(self.listener_sessions.values()))
        return {"listeners": int(len(n)), "sessions_per_listener": {
            "mean": float(n.mean()), "median": float(np.median(n)),
            "p90": float(np.percentile(n, 90)), "max": int(n.max()),
            "one_session_share": float((n == 1).mean())}}


def summarize(log_path: str, tracks_path: Optional[str] = None, *, skip_column: str = "skip_2",
              on_error: str = "raise", chunk_rows: int = 100_000) -> dict:
    """Validates a log (and track table) and returns its summary as a dict.

    Raises:
      DataValidationError: the first data problem (under on_error='raise').
    """
    summary = LogSummary(skip_column=skip_column)
    report = DropReport()
    catalog = TrackCatalog.from_track_table(tracks_path) if tracks_path else None
    for chunk in iter_session_tables(log_path, chunk_rows=chunk_rows, on_error=on_error,
                                     report=report):
        if catalog is not None:
            catalog.chunk_indices(chunk)
        summary.update(chunk.table)
    out = summary.to_dict()
    if not out["rows"]:
        why = ("every session was dropped as invalid" if report.total_sessions
               else "no rows (a header-only file?)")
        raise DataValidationError(f"the session log is empty: {why}", path=log_path)
    out["dropped"] = report.summary()
    out["quirks"] = report.quirk_summary()
    if catalog is not None:
        out["track_table_tracks"] = len(catalog)
    return out


def format_summary(s: dict) -> str:
    lines = [
        f"sessions          {s['sessions']:>12,}",
        f"rows              {s['rows']:>12,}",
        f"distinct tracks   {s['tracks']:>12,}",
    ]
    if "track_table_tracks" in s:
        lines.append(f"track table       {s['track_table_tracks']:>12,}")
    lines.append(f"skip rate ({s['skip_definition']})  {100 * s['skip_rate']:>8.1f}%")
    lines.append("flag rates        " + "  ".join(
        f"{k} {100 * v:.1f}%" for k, v in s["flag_rates"].items()))
    lines.append(f"premium {100 * s['premium_rate']:.1f}%   shuffle {100 * s['shuffle_rate']:.1f}%")
    if "listeners" in s:
        per = s["sessions_per_listener"]
        lines.append(f"listeners         {s['listeners']:>12,}")
        lines.append(f"sessions per listener  mean {per['mean']:.1f}  median {per['median']:.0f}"
                     f"  p90 {per['p90']:.0f}  max {per['max']}  "
                     f"one session {100 * per['one_session_share']:.1f}%")
    lines.append("context types     " + "  ".join(
        f"{k} {100 * v:.1f}%" for k, v in s["context_share"].items()))
    lines.append("")
    lines.append("session length    share")
    for k, v in s["length_share"].items():
        lines.append(f"  {k:>4}            {100 * v:5.1f}%  " + "#" * int(round(60 * v)))
    lines.append("")
    lines.append(f"position   skip rate ({s['skip_definition']})")
    for k, v in s["skip_by_position"].items():
        lines.append(f"  {k:>4}     {100 * v:5.1f}%  " + "#" * int(round(60 * v)))
    lines.append("")
    lines.append(s["dropped"])
    lines.append("quirks: " + s.get("quirks", "no quirks"))
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spotisim.data.inspect",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("log_path", help="session-log file, directory or glob (CSV, CSV.gz, Parquet)")
    parser.add_argument("--tracks", default=None, help="optional MSSD track-features table")
    parser.add_argument("--skip-column", default="skip_2", choices=SKIP_COLUMNS)
    parser.add_argument("--on-error", default="raise", choices=("raise", "drop"),
                        help="raise: stop at the first problem; drop: drop and count bad sessions")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    def body():
        s = summarize(args.log_path, args.tracks, skip_column=args.skip_column,
                      on_error=args.on_error)
        print(json.dumps(s, indent=1, default=float) if args.json else format_summary(s))
    return cli.guarded(body)


if __name__ == "__main__":
    sys.exit(main())
