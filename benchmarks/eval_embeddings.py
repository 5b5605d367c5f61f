"""Quality check (not a test): do item2vec neighbours share the synthetic world's hidden
genre?  Prints the share of tracks whose nearest neighbour (cosine) has the same genre,
next to chance.

    python benchmarks/eval_embeddings.py [--sessions=20000] [--dim=32] [--epochs=5]
"""

import os
import tempfile
import time

import spotisim  # noqa: F401  (first: quiets the stack at import)
from absl import flags
import numpy as np

from spotisim import cli
from spotisim.data.catalog import TrackCatalog
from spotisim.data.session_log import read_session_log
from spotisim.data.synthetic import SyntheticWorld, generate
from spotisim.embeddings import Item2VecTrainer


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_integer('sessions', 20_000, "sessions of the synthetic log the embedding trains on")
    flags.DEFINE_integer('dim', 32, "embedding dimension")
    flags.DEFINE_integer('epochs', 5, "item2vec epochs")
    flags.DEFINE_integer('seed', 0, "seed of the world and the fit")


def main() -> None:
    args = FLAGS
    with tempfile.TemporaryDirectory() as tmp:
        paths = generate(os.path.join(tmp, "w"), args.sessions, args.seed)
        log = read_session_log(paths["log"])
        world = SyntheticWorld.load(paths["world"])
    t0 = time.perf_counter()
    emb = Item2VecTrainer(dim=args.dim, epochs=args.epochs, seed=args.seed).fit(log)
    secs = time.perf_counter() - t0
    genre = world.track_genre[TrackCatalog(world.track_ids).indices(log.catalog.track_ids)]
    v = emb.normalized()
    sim = v @ v.T
    np.fill_diagonal(sim, -np.inf)
    same = (genre[sim.argmax(1)] == genre).mean()
    shares = np.bincount(genre) / len(genre)
    print(f"item2vec dim={args.dim} epochs={args.epochs} on {log.num_sessions} sessions "
          f"({secs:.1f}s): nearest neighbour shares the hidden genre for {same:.1%} of "
          f"tracks; chance {np.sum(shares ** 2):.1%}")
    return {"dim": args.dim, "epochs": args.epochs, "sessions": log.num_sessions,
            "seconds": secs, "same_genre_share": float(same),
            "chance": float(np.sum(shares ** 2))}


if __name__ == "__main__":
    cli.benchmark('eval_embeddings', define_flags, main)
