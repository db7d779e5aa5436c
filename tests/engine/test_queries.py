"""Any query text gets results or one clear message, never a traceback."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Library
from engine.errors import UsageError
from tests.factory import make_photo


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("queries")
    for seed in range(3):
        make_photo(root / "media" / f"p{seed}.jpg", seed=seed)
    with Library.open(root / "library", writable=True) as writer:
        writer.index([root / "media"], model="tiny-test")
    with Library.open(root / "library") as reader:
        yield reader


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.one_of(
        st.text(),
        st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp"])),
        st.text(min_size=2000, max_size=6000),
    )
)
def test_any_query_gives_results_or_a_clear_message(library, text):
    try:
        results = library.search(text, limit=5).all
    except UsageError as error:
        assert not text.strip()  # only an empty query is refused
        assert "\n" not in str(error)
        return
    assert len(results) == 3


def test_a_query_longer_than_the_text_tower_context_is_truncated_not_refused(library):
    assert len(library.search("a dog " * 500, limit=5).all) == 3
