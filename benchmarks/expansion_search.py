"""Recall@10 and latency of usearch `expansion_search` values on a library built by `glimpse bench query`.

    .venv/bin/python benchmarks/expansion_search.py /tmp/qcache/frames-100000

The 40 queries are off-topic: a topic of the synthetic set plus as much noise again (see hnsw_params.py).
"""

import sys
import time
from pathlib import Path

import numpy as np
from usearch.index import Index

from engine.bench_pipeline import _all_vectors, _topics, _unit
from engine.models import load_fast

MODEL = "vit-b-32@random"


def main(folder: Path) -> None:
    vectors = _all_vectors(folder, MODEL)  # frame id = row + 1
    topics = _topics(load_fast(MODEL, "cpu"), 2000)
    rng = np.random.default_rng(5)
    queries = _unit(topics[rng.integers(len(topics), size=40)] + _unit(rng.standard_normal((40, 512))) * 0.5)
    truth = [set((np.argsort(-(vectors @ q))[:10] + 1).tolist()) for q in queries]
    index = Index.restore(str(next(folder.glob("*.usearch"))), view=True)
    print("expansion_search  recall@10  median ms")
    for ef in (64, 128, 256, 512, 1024):
        index.expansion_search = ef
        timings, recalls = [], []
        for query, expected in zip(queries, truth, strict=True):
            started = time.perf_counter()
            keys = index.search(query, 10).keys
            timings.append(time.perf_counter() - started)
            recalls.append(len(set(keys.tolist()) & expected) / 10)
        print(f"{ef:16d}  {np.mean(recalls):9.3f}  {np.median(timings) * 1000:9.2f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
