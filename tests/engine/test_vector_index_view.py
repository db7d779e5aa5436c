"""A reader's memory-mapped view of the index: it sees what the writer committed since the checkpoint."""

from pathlib import Path

import numpy as np
import pytest

from engine.catalogue import Catalogue
from engine.library import Library
from engine.vector_index import VectorIndex
from tests.engine.test_catalogue import index_file, unit


@pytest.fixture
def catalogue(tmp_path):
    c = Catalogue(tmp_path / "catalogue.sqlite")
    yield c
    c.close()


def open_index(tmp_path: Path, catalogue: Catalogue, model: int, view: bool) -> VectorIndex:
    return VectorIndex.open(tmp_path / "vectors-m.usearch", 8, catalogue, model, view=view)


def test_a_view_sees_the_checkpoint_plus_the_tail_minus_deletions(tmp_path, catalogue):
    model = catalogue.model_id("m", 8)
    media = [index_file(catalogue, f"/{i}.jpg".encode(), model, seed=i) for i in range(30)]
    writer = open_index(tmp_path, catalogue, model, view=False)
    writer.save(catalogue, model)
    index_file(catalogue, b"/new.jpg", model, seed=100)  # frame 31, after the checkpoint
    catalogue.delete_media([media[7]])  # frame 8, inside the checkpoint

    view = open_index(tmp_path, catalogue, model, view=True)
    assert view.view and len(view) == 30
    assert sorted(view.keys().tolist()) == sorted(set(range(1, 32)) - {8})
    keys, scores = view.search(unit(8, 100), 3)
    assert keys[0] == 31 and scores[0] == pytest.approx(1.0, abs=1e-2)  # the tail, scored exactly
    keys, _ = view.search(unit(8, 7), 30)
    assert 8 not in keys.tolist() and len(keys) == 30  # the deleted frame never comes back
    assert list(view.search(unit(8, 3), 5)[1]) == sorted(view.search(unit(8, 3), 5)[1], reverse=True)

    # It agrees with an index that holds everything in its graph.
    full = open_index(tmp_path, catalogue, model, view=False)
    for seed in range(5):
        assert set(view.search(unit(8, seed), 5)[0]) == set(full.search(unit(8, seed), 5)[0])


def test_a_view_follows_later_commits_and_cannot_be_saved(tmp_path, catalogue):
    model = catalogue.model_id("m", 8)
    index_file(catalogue, b"/a.jpg", model, seed=1)
    open_index(tmp_path, catalogue, model, view=False).save(catalogue, model)
    view = open_index(tmp_path, catalogue, model, view=True)
    index_file(catalogue, b"/b.jpg", model, seed=2)
    view.catch_up(catalogue, model)
    view.catch_up(catalogue, model)  # a second catch-up adds nothing twice
    assert sorted(view.keys().tolist()) == [1, 2]
    with pytest.raises(RuntimeError, match="read-only"):
        view.save(catalogue, model)


def test_a_read_only_library_searches_through_a_view(tmp_path):
    folder = tmp_path / "library"
    with Library.open(folder, writable=True) as library:
        model = library.catalogue.model_id("m", 8)
        for i in range(10):
            index_file(library.catalogue, f"/{i}.jpg".encode(), model, seed=i)
        space = library.catalogue.find_model("m")
        library.vector_index(space).save(library.catalogue, model)
        index_file(library.catalogue, b"/late.jpg", model, seed=50)
    with Library.open(folder) as reader:
        index = reader.vector_index(space)
        assert index.view
        keys, _ = index.search(unit(8, 50), 1)
        assert keys.tolist() == [11]
        assert np.isfinite(index.search(unit(8, 1), 3)[1]).all()
