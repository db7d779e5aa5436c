"""Build speed, size and recall of usearch HNSW settings on the query benchmark's synthetic frames.

    .venv/bin/python benchmarks/hnsw_params.py [FRAMES]

Frames come from `engine.bench.synthetic`'s generator (CLIP-like geometry); recall@10 is against exact search
over the same f16 vectors, for 40 query vectors drawn like frames' topics.
"""

import sys
import time

import numpy as np
from usearch.index import Index

from engine.bench.synthetic import synthetic_frames, unit


def main(frames: int = 20_000) -> None:
    rng = np.random.default_rng(1)
    dim = 512
    common = unit(rng.standard_normal(dim))
    topics = unit(common + unit(rng.standard_normal((2000, dim))))
    vectors = []
    while sum(len(v) for v in vectors) < frames:
        vectors.append(np.stack([f.vector for f in synthetic_frames(rng, topics, 60, True)]))
    data = np.concatenate(vectors)[:frames].astype(np.float16).astype(np.float32)
    queries = unit(topics[:40] + unit(rng.standard_normal((40, dim))) * 0.5)
    truth = [set(np.argsort(-(data @ q))[:10].tolist()) for q in queries]
    print("connectivity expansion_add threads  adds/s  bytes/frame  recall@10 (ef 64 / 128)")
    for connectivity, expansion_add, threads in (
        (16, 128, 0),
        (16, 64, 0),
        (16, 64, 1),
        (12, 64, 0),
        (32, 64, 0),
    ):
        index = Index(
            ndim=dim, metric="cos", dtype="f16", connectivity=connectivity, expansion_add=expansion_add
        )
        started = time.perf_counter()
        index.add(np.arange(frames), data, threads=threads)
        rate = frames / (time.perf_counter() - started)
        recalls = []
        for ef in (64, 128):
            index.expansion_search = ef
            found = [set(index.search(q, 10).keys.tolist()) for q in queries]
            recalls.append(np.mean([len(a & b) / 10 for a, b in zip(found, truth, strict=True)]))
        size = index.memory_usage / frames
        print(
            f"{connectivity:12d} {expansion_add:13d} {threads:7d} {rate:7.0f} {size:12.0f}  {recalls[0]:.3f} / {recalls[1]:.3f}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
