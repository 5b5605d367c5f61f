"""How much of a log inverse-propensity weights leave (#23's lead, measured): Kish's
effective sample size, as a share of the rows, of the per-row weights (`ips_weights`:
the current pick) and of the whole-history weights (`session_ips_weights`), at
several clips.  Needs a log with the logging policy's propensities (the default world
written with them: `ensure_synthetic_world.propensities = True`, data/default_propensity).

    python benchmarks/propensity_weights.py [--log data/default_propensity/log]
"""

import argparse
import sys

import spotisim  # noqa: F401  (first: quiets the stack at import)
from spotisim import cli
from spotisim.data.session_log import read_session_log
from user_models.propensity import effective_sample_size, ips_weights, session_ips_weights

CLIPS = (5.0, 10.0, 20.0, 100.0, float("inf"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log", default="data/default_propensity/log")
    args = ap.parse_args()
    log = read_session_log(args.log)
    print(f"{args.log}: {log.num_rows} rows")
    print(f"{'clip':>6} {'per-row ESS':>12} {'whole-history ESS':>18}")
    for clip in CLIPS:
        row = ips_weights(log, clip)
        whole = session_ips_weights(log, clip)
        print(f"{clip:>6g} {effective_sample_size(row) / len(row):>11.2%} "
              f"{effective_sample_size(whole) / len(whole):>17.2%}")


if __name__ == "__main__":
    sys.exit(cli.guarded(main))
