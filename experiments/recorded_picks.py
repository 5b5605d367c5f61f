"""What each policy of the alignment study plays under the ground truth: every
(history, slate) the truth is asked about, per policy.

The probes that measure the policies' picks (`benchmarks/support_probe.py`: the log's
support of each pick; `benchmarks/redundancy_selection.py`: its redundancy) share this,
so the policies and their starts are one list: the study's baselines, the redundancy
greedy at 0.5, 1 and 2, and the agent of each finished run.
"""

from __future__ import annotations

import functools
from typing import Iterator, List, Sequence, Tuple

import numpy as np

from agents.baselines import RedundancyGreedyPolicy
from experiments.alignment import BASELINES
from experiments.score_cache import evaluate_clean
from user_models.ground_truth import GroundTruthUserModel

#: (history tracks [B, H], history responses [B, H], slate [B, K]) of one step.
Record = Tuple[np.ndarray, np.ndarray, np.ndarray]


class RecordingTruth(GroundTruthUserModel):
    """The ground truth, keeping every (history, slate) it answers."""

    def __init__(self, world, records: List[Record]):
        super().__init__(world)
        self.records = records

    def respond(self, history, slate, uniforms, *args, **kwargs):
        self.records.append((np.array(history.tracks), np.array(history.responses),
                             np.array(slate)))
        return super().respond(history, slate, uniforms, *args, **kwargs)


def recorded_picks(run_dir: str, agent_runs: Sequence[str], bindings: Sequence[str],
                   episodes: int, penalties: Sequence[float] = (0.5, 1.0, 2.0)
                   ) -> Iterator[Tuple[str, List[Record]]]:
    """(policy name, its records) for the baselines and the redundancy greedy on the
    environment of `run_dir`, then the agent of each of `agent_runs` (named by its
    directory), each playing `episodes` starts under the truth."""
    records: List[Record] = []

    def truth(data, embeddings):
        return RecordingTruth(data.world, records)

    jobs = [(run_dir, [b], {}) for b in BASELINES]
    jobs += [(run_dir, [f"redundancy_greedy_{p:g}"],
              {f"redundancy_greedy_{p:g}": functools.partial(RedundancyGreedyPolicy,
                                                             penalty=p)})
             for p in penalties]
    jobs += [(run, None, {}) for run in agent_runs]
    for run, baselines, extra in jobs:
        records.clear()
        if baselines is None:
            evaluate_clean(run, [("truth", truth)], bindings, episodes=episodes,
                           baselines=[])
            name = run.rstrip("/").split("/")[-1]
        else:
            evaluate_clean(run, [("truth", truth)], bindings, episodes=episodes,
                           baselines=baselines, model_policies=extra, with_agent=False)
            name = baselines[0]
        yield name, list(records)
