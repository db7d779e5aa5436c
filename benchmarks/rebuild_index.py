"""Rebuild a library's index from its catalogue through the engine's own path, and time it.

    .venv/bin/python benchmarks/rebuild_index.py /tmp/qcache/frames-1000000

Move the library's `vectors-*.usearch` and `.json` aside first (kept, they can be compared with the new graph):
`VectorIndex.open` then finds no index and rebuilds it from the catalogue with the engine's current HNSW
settings, as it does for a missing or corrupt file. Prints one JSON document; `catalogue_read_s` is a second,
separate read of every vector (the page cache warm), so inserts alone take about `rebuild_s - catalogue_read_s`.
"""

import json
import sys
import time
from pathlib import Path

import usearch

from engine import vector_index
from engine.library import Library

MODEL = "vit-b-32@random"


def main(folder: Path) -> None:
    if list(folder.glob("vectors-*")):
        sys.exit(f"{folder} still has its index: move vectors-* aside first")
    with Library.open(folder, writable=True) as library:
        space = library.catalogue.find_model(MODEL)
        if space is None:
            sys.exit(f"{folder} has no {MODEL} vectors")
        model_id, dim = space.id, space.dim
        started = time.perf_counter()
        index = library.vector_index(space)
        rebuilt = time.perf_counter()
        index.save(library.catalogue, model_id)
        saved = time.perf_counter()
        library.catalogue.vectors_since(model_id, 0, dim)
        read = time.perf_counter() - saved
    rebuild = rebuilt - started
    print(
        json.dumps(
            {
                "frames": len(index),
                "usearch": usearch.__version__,
                "connectivity": vector_index.CONNECTIVITY,
                "expansion_add": vector_index.EXPANSION_ADD,
                "rebuild_s": round(rebuild, 1),
                "save_s": round(saved - rebuilt, 1),
                "catalogue_read_s": round(read, 1),
                "frames_per_s": round(len(index) / rebuild),
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
