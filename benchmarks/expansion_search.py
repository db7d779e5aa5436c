"""Recall@10 and latency of usearch `expansion_search` values on a library built by `glimpse bench query`,
and how many frames a search for their own vector does not find (frames the graph barely reaches).

    .venv/bin/python benchmarks/expansion_search.py /tmp/qcache/frames-1000000 [OTHER.usearch ...]

The vectors, and the exact answers (float32 products of the catalogue's float16 vectors, the values the index
holds), come from the library's catalogue. The index searched is the library's own, or each OTHER file given:
the same library's graph built with other settings, moved aside. Two query sets: the benchmark's 8 texts as
the model embeds them (what `glimpse bench query` measures), and 40 off-topic queries, a topic plus as much
noise again (see hnsw_params.py).
"""

import sys
import time
from pathlib import Path

import numpy as np
from usearch.index import Index

from engine.bench.common import QUERIES
from engine.bench.synthetic import all_vectors, topics, unit
from engine.models import load_fast

MODEL = "vit-b-32@random"
EXPANSIONS = (64, 128, 160, 256, 512, 1024)
#: Frames whose own vector is searched for, drawn at random.
SELF_SEARCHES = 2000


def main(folder: Path, others: list[Path]) -> None:
    vectors = all_vectors(folder, MODEL)  # frame id = row + 1
    encoder = load_fast(MODEL, "cpu")
    rng = np.random.default_rng(5)
    directions = topics(encoder, 2000)
    query_sets = {
        "benchmark": np.stack([encoder.embed_texts([text])[0] for text in QUERIES]).astype(np.float32),
        "off-topic": unit(
            directions[rng.integers(len(directions), size=40)] + unit(rng.standard_normal((40, 512))) * 0.5
        ),
    }
    truths = {
        name: [set((np.argsort(-(vectors @ q))[:10] + 1).tolist()) for q in queries]
        for name, queries in query_sets.items()
    }
    own = np.sort(rng.choice(len(vectors), min(SELF_SEARCHES, len(vectors)), replace=False))
    for path in others or [next(folder.glob("*.usearch"))]:
        index = Index.restore(str(path), view=True)
        print(f"{path}: {len(index):,} frames")
        print(
            "expansion_search  recall@10 benchmark / off-topic  median ms (off-topic)  own vector not found"
        )
        for ef in EXPANSIONS:
            index.expansion_search = ef
            recalls = {}
            for name, queries in query_sets.items():
                for _ in range(2):  # the first pass touches the mapped pages; the second is timed
                    timings, found = [], []
                    for query, expected in zip(queries, truths[name], strict=True):
                        started = time.perf_counter()
                        keys = index.search(query, 10).keys
                        timings.append(time.perf_counter() - started)
                        found.append(len(set(keys.tolist()) & expected) / 10)
                recalls[name] = (np.mean(found), np.median(timings) * 1000)
            first = index.search(vectors[own], 1, threads=1).keys[:, 0]
            missed = np.mean(first != own + 1)
            print(
                f"{ef:16d}  {recalls['benchmark'][0]:9.3f} / {recalls['off-topic'][0]:.3f}"
                f"  {recalls['off-topic'][1]:20.2f}  {missed:20.4f}"
            )


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
