"""The shell every command line shares: quiet start-up, one line and exit status 1 for
a user's mistake (a `SpotisimError`: bad data, bad configuration), never a traceback.

absl entry points (gin flags):

    main = cli.absl_main(_main)          # _main() -> exit status or None
    if __name__ == "__main__":
        cli.start(define_flags, main)

argparse entry points wrap their body in `cli.guarded`.
"""

from __future__ import annotations

import sys
from typing import Callable, List, Optional

from spotisim.errors import SpotisimError


def guarded(body: Callable[[], Optional[int]]) -> int:
    """Runs `body`; its exit status (None: 0), or 1 with "error: ..." on stderr when it
    raises a `SpotisimError`."""
    try:
        status = body()
    except SpotisimError as exc:
        # One line, whatever the message (gin's span several: joined with "; ").
        text = "; ".join(part.strip() for part in str(exc).splitlines() if part.strip())
        print(f"error: {text}", file=sys.stderr)
        return 1
    return 0 if status is None else int(status)


def absl_main(body: Callable[[], Optional[int]]) -> Callable[[List[str]], int]:
    """An absl `main(argv)`: refuses stray positional arguments (a forgotten `--`),
    quiets the stack's own logging (`spotisim.quiet_logging`; SPOTISIM_VERBOSE=1 keeps
    it) and runs `body` under `guarded`."""
    def main(argv: List[str]) -> int:
        if len(argv) > 1:
            print(f"error: unexpected arguments {' '.join(argv[1:])!r} (every option is "
                  "a --flag)", file=sys.stderr)
            return 1
        import spotisim
        spotisim.quiet_logging()
        return guarded(body)
    main.__doc__ = body.__doc__
    return main


def parse_flags(argv: List[str]) -> List[str]:
    """absl's flag parsing, with a bad flag as one line like every other mistake
    ("error: flag --x=...: ...", exit status 1) instead of absl's two."""
    from absl import flags
    try:
        return flags.FLAGS(argv)
    except flags.Error as exc:
        text = "; ".join(part.strip() for part in str(exc).splitlines() if part.strip())
        print(f"error: {text} (--helpshort lists the flags)", file=sys.stderr)
        sys.exit(1)


def print_study_end(table: str, run_dir: str, last: str) -> None:
    """A study's end on the terminal (`experiments.alignment`, `.lird_writeup`): its
    table, where its files went, and its one-line verdict last (what scripts read)."""
    print(table)
    print(f"written to {run_dir}")
    print(last)


def start(define_flags: Callable[[], None], main: Callable[[List[str]], int]) -> None:
    """`python -m package.module`: define the module's flags, then run `main` under
    absl (which parses them, `parse_flags`, and exits with main's status)."""
    from absl import app
    define_flags()
    app.run(main, flags_parser=parse_flags)


#: Where a benchmark writes its figures unless `--json_out` says otherwise.
BENCHMARK_DIR = "runs/benchmarks"


def benchmark(name: str, define_flags: Callable[[], None],
              body: Callable[[], Optional[dict]]) -> None:
    """The one command-line form of `benchmarks/*.py`: absl flags (the script's own,
    plus `--json_out` and `--gin_bindings`), the stack quieted the one way every command
    is, a user's mistake as one line, and the figures `body` returns written as JSON
    (atomically, default `runs/benchmarks/<name>.json`, with the command line that made
    them) beside the table it prints.

    Every benchmark takes `--gin_bindings`, so any of them can be pointed at other data
    (`ensure_synthetic_world.directory = ...`, `load_dataset.log_path = ...`): that is
    how the smoke test runs each one's documented command on a tiny world.  A script
    that parses gin itself defines the flag and passes it to `parse_gin`; for the others
    the bindings are parsed here, before `body`."""
    from absl import flags

    ours = False          # whether --gin_bindings is defined (and parsed) here

    def define() -> None:
        nonlocal ours
        define_flags()
        flags.DEFINE_string("json_out", f"{BENCHMARK_DIR}/{name}.json",
                            "where the figures are written (JSON)")
        ours = "gin_bindings" not in flags.FLAGS
        if ours:
            flags.DEFINE_multi_string("gin_bindings", [], "gin bindings (the data, say: "
                                      "ensure_synthetic_world.directory = 'data/other')")

    def run() -> None:
        if ours and flags.FLAGS.gin_bindings:
            from spotisim.gin_utils import parse_gin
            parse_gin([], flags.FLAGS.gin_bindings, [])
        figures = body()
        if figures is None:
            return
        import datetime
        import json

        from spotisim.io_utils import atomic_file
        path = flags.FLAGS.json_out
        record = {"benchmark": name, "command": " ".join(sys.argv),
                  "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                      timespec="seconds"),
                  "figures": figures}
        with atomic_file(path) as f:
            json.dump(record, f, indent=1, default=_json_default)
        print(f"figures written to {path}")

    start(define, absl_main(run))


def _report_from_child(target, kwargs, queue) -> None:
    import resource
    figures = target(**kwargs)
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(figures)


def in_fresh_process(target: Callable[..., dict], **kwargs) -> dict:
    """`target(**kwargs)` (a module-level function returning a dict of figures) run in
    a fresh process, so that the peak RSS added to its figures (`peak_rss_mb`) is its
    own: what a benchmark of memory measures.  A child that dies is an error naming
    its exit status, not a wait for figures that never come."""
    import multiprocessing
    import queue as queues
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_report_from_child, args=(target, kwargs, queue))
    proc.start()
    while True:
        try:
            figures = queue.get(timeout=1.0)
            break
        except queues.Empty:
            if not proc.is_alive():
                raise SpotisimError(f"{getattr(target, '__name__', target)}'s process died "
                                    f"(exit status {proc.exitcode}) before reporting its "
                                    "figures")
    proc.join()
    return figures


def _json_default(value):
    """numpy numbers and arrays as JSON."""
    import numpy as np
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")


def parse_seeds(values, flag: str = "--seeds", what: str = "seed") -> List[int]:
    """Whole numbers from a comma-separated flag's values (seeds, or other `what`: sizes),
    or one error line naming the flag (a `ConfigError`), never a traceback."""
    from spotisim.errors import ConfigError
    try:
        seeds = [int(str(v).strip()) for v in values]
    except ValueError:
        raise ConfigError(f"{flag}: whole numbers separated by commas, got "
                          f"{','.join(map(str, values))!r}") from None
    if not seeds:
        raise ConfigError(f"{flag}: give at least one {what}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{flag}: a {what} appears twice ({','.join(map(str, seeds))})")
    return seeds
