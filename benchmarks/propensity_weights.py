"""How much of a log inverse-propensity weights leave (#23's lead, measured): Kish's
effective sample size, as a share of the rows, of the per-row weights (`ips_weights`:
the current pick) and of the whole-history weights (`session_ips_weights`), at
several clips.  Needs a log with the logging policy's propensities (the default world
written with them: `ensure_synthetic_world.propensities = True`, data/default_propensity).

    python benchmarks/propensity_weights.py [--log=data/default_propensity/log]
"""

import spotisim  # noqa: F401  (first: quiets the stack at import)
from absl import flags

from spotisim import cli
from spotisim.data.session_log import read_session_log
from user_models.propensity import effective_sample_size, ips_weights, session_ips_weights

CLIPS = (5.0, 10.0, 20.0, 100.0, float("inf"))


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string("log", "data/default_propensity/log",
                        "a session log with a logging_propensity column")


def main() -> dict:
    log = read_session_log(FLAGS.log)
    print(f"{FLAGS.log}: {log.num_rows} rows")
    print(f"{'clip':>6} {'per-row ESS':>12} {'whole-history ESS':>18}")
    out = {}
    for clip in CLIPS:
        row = ips_weights(log, clip)
        whole = session_ips_weights(log, clip)
        out[f"{clip:g}"] = {"per_row": effective_sample_size(row) / len(row),
                            "whole_history": effective_sample_size(whole) / len(whole)}
        print(f"{clip:>6g} {out[f'{clip:g}']['per_row']:>11.2%} "
              f"{out[f'{clip:g}']['whole_history']:>17.2%}")
    return {"log": FLAGS.log, "rows": log.num_rows, "effective_share_by_clip": out}


if __name__ == "__main__":
    cli.benchmark("propensity_weights", define_flags, main)
