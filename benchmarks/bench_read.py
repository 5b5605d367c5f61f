"""Benchmark (not a test): read a ~2-million-row synthetic MSSD log from CSV and from
Parquet; print rows/s and peak memory.

    python benchmarks/bench_read.py [--rows=2000000] [--chunk_rows=500000] [--repeats=3]

Each measurement runs in a fresh subprocess so its peak RSS is its own.  "stream" is the
validated streaming reader (`iter_session_tables`: parse, type, validate cells, skip
nesting and session structure); "SessionLog" also builds the in-memory indexed log;
"pyarrow" is the library alone reading the same file into numpy arrays (every column),
the yardstick.  The last lines print the ratios the aims are stated in: SessionLog from
Parquet at most 3x pyarrow's time, and the CSV stream's rows/s (aim >= 1 M) with its
ratio to pyarrow.
"""

import json
import os
import resource
import subprocess
import sys
import time

import spotisim  # noqa: F401  (first: quiets the stack at import)
from absl import flags

from spotisim import cli

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _hwm_mb() -> float:
    """Peak resident memory of this process (VmHWM: fresh at exec, unlike ru_maxrss)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(mode: str, path: str, chunk_rows: int) -> None:
    import pyarrow  # noqa: F401  (import cost is not reading cost)
    from spotisim.data.session_log import read_session_log
    from spotisim.data.sessions import iter_session_tables
    base = _hwm_mb()
    t0 = time.perf_counter()
    if mode == "stream":
        rows = sum(c.num_rows for c in iter_session_tables(path, chunk_rows=chunk_rows))
    elif mode == "pyarrow":
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq
        from spotisim.data.readers import list_files
        from spotisim.data.schema import SESSION_LOG_COLUMNS
        names = [c.name for c in SESSION_LOG_COLUMNS]
        rows = 0
        for f in list_files(path):
            table = (pq.read_table(f, columns=names) if f.endswith(".parquet")
                     else pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(
                         include_columns=names)))
            arrays = [table.column(c).to_numpy() for c in names]
            rows += len(arrays[0])
    else:
        rows = read_session_log(path, chunk_rows=chunk_rows).num_rows
    dt = time.perf_counter() - t0
    peak = _hwm_mb()
    print(json.dumps({"rows": rows, "seconds": dt, "peak_rss_mb": peak,
                      "peak_over_import_mb": peak - base}))


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_integer("rows", 2_000_000, "rows of the synthetic log read")
    flags.DEFINE_integer("chunk_rows", 100_000, "rows per chunk")
    flags.DEFINE_integer("repeats", 3, "runs per cell; the median is shown")
    flags.DEFINE_string("data", os.path.join(ROOT, "data", "bench"), "where the logs are")
    flags.DEFINE_list("child", None, "internal: MODE,PATH of one measured read")


def main():
    args = FLAGS
    if args.child:
        _child(args.child[0], args.child[1], args.chunk_rows)
        return None
    from spotisim.data.synthetic import generate
    sessions = int(args.rows / 16.4)  # ~16.4 rows per synthetic session
    paths = {}
    for fmt in ("csv", "parquet"):
        out = os.path.join(args.data, f"{args.rows}_{fmt}")
        if not os.path.exists(os.path.join(out, "hidden_sessions.parquet")):
            t0 = time.perf_counter()
            generate(out, num_sessions=sessions, seed=0, file_format=fmt)
            print(f"generated {fmt} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        paths[fmt] = os.path.join(out, "log")
    print(f"{'format':8} {'reader':10} {'rows':>10} {'s':>7} {'rows/s':>12} "
          f"{'peak RSS MB':>12} {'over import':>12}")
    seconds = {}
    for fmt, path in paths.items():
        size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
        for mode in ("pyarrow", "stream", "SessionLog"):
            runs = []
            for _ in range(args.repeats):
                out = subprocess.run([sys.executable, __file__, "--chunk_rows",
                                      str(args.chunk_rows), f"--child={mode},{path}",
                                      "--json_out=/dev/null"],
                                     capture_output=True, text=True, check=True, cwd=ROOT)
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = sorted(runs, key=lambda x: x["seconds"])[len(runs) // 2]  # median run
            seconds[fmt, mode] = (r["seconds"], r["rows"])
            print(f"{fmt:8} {mode:10} {r['rows']:>10,} {r['seconds']:>7.2f} "
                  f"{r['rows'] / r['seconds']:>12,.0f} {r['peak_rss_mb']:>12.0f} "
                  f"{r['peak_over_import_mb']:>12.0f}   ({size / 1e6:.0f} MB on disk, "
                  f"chunk_rows={args.chunk_rows})")
    pq_ratio = seconds["parquet", "SessionLog"][0] / seconds["parquet", "pyarrow"][0]
    csv_rate = seconds["csv", "stream"][1] / seconds["csv", "stream"][0]
    csv_ratio = seconds["csv", "stream"][0] / seconds["csv", "pyarrow"][0]
    print(f"Parquet -> SessionLog: {pq_ratio:.2f}x pyarrow's time (aim <= 3)")
    print(f"CSV stream: {csv_rate / 1e6:.2f} M rows/s (aim >= 1), {csv_ratio:.2f}x pyarrow's time")
    return {"rows": args.rows, "chunk_rows": args.chunk_rows,
            "seconds": {f"{fmt}/{mode}": v[0] for (fmt, mode), v in seconds.items()},
            "csv_stream_rows_per_s": csv_rate, "parquet_sessionlog_vs_pyarrow": pq_ratio}


if __name__ == "__main__":
    cli.benchmark("bench_read", define_flags, main)
