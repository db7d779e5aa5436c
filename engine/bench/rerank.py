"""`glimpse bench rerank`: the Slow re-ranking of K candidates, against open_clip's naive forward pass.

It times one query's Slow re-ranking of K candidates: getting their image tokens (from the
token cache's disk tier, or by decoding the photo files and running the image tower) and scoring the query
against them; and, taking turns with it query by query, the same with open_clip's naive forward pass on the same
tokens. It reports the medians over several queries and their ratio. Random weights (`NAME@random`) cost exactly what trained ones do, so the
benchmark runs offline.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click

from engine.bench.common import PHOTO_SIZE, QUERIES
from engine.commandline import emit, handles_errors

if TYPE_CHECKING:
    import numpy as np
    import torch
    from PIL import Image

    from engine.models.coca import CocaSlowScorer

TokenSource = Literal["cached", "recomputed"]


@dataclass(frozen=True)
class RerankTiming:
    """Medians over `queries` queries of one Slow re-ranking of `k` candidates."""

    model: str
    device: str
    threads: int
    #: OMP_WAIT_POLICY in effect (None: OpenMP's default, spinning).
    openmp_wait_policy: str | None
    k: int
    queries: int
    image_tokens: TokenSource
    #: Whole re-ranking of one query: image tokens + scoring.
    ms_per_query: float
    #: Getting the K candidates' image tokens, from the cache or by recomputing them.
    image_tokens_ms: float
    #: Scoring the query against the K candidates' tokens.
    score_ms: float
    #: The same re-ranking with the naive forward pass instead of the scorer's; None when not measured.
    naive_ms_per_query: float | None
    #: naive_ms_per_query / ms_per_query.
    speedup: float | None
    #: Largest difference between the scorer's and the naive pass's log-likelihoods over all queries.
    max_abs_difference: float | None
    #: Disk cost of one image's tokens in the cache (float16 .npy file).
    token_bytes_per_image: int


def time_rerank(
    model: str,
    *,
    k: int,
    queries: int,
    image_tokens: TokenSource,
    naive: bool,
    device: str = "auto",
) -> RerankTiming:
    """Time the Slow re-ranking of `k` synthetic candidates for `queries` queries (after one warm-up query)."""
    import torch

    from engine.models.coca import CocaSlowScorer, naive_log_likelihoods
    from engine.models.loader import load_slow
    from engine.token_cache import TokenCache

    scorer = load_slow(model, device)
    if not isinstance(scorer, CocaSlowScorer):
        raise TypeError(f"{model} is not a CoCa scorer")
    frame_ids = list(range(k))
    with tempfile.TemporaryDirectory(prefix="glimpse-bench-") as scratch:
        folder = Path(scratch)
        photos = _photos(k)
        # No memory tier: the command line starts a new process for every search, so its hits come from disk.
        cache = TokenCache(folder / "tokens", memory_bytes=0, disk_bytes=1 << 40)
        cache.tokens(scorer.key, frame_ids, lambda ids: scorer.image_tokens([photos[i] for i in ids]))
        token_bytes = cache.usage().disk_bytes // k
        if image_tokens == "cached":

            def fetch() -> torch.Tensor:
                return cache.tokens(scorer.key, frame_ids, _no_misses)

        else:
            paths = _photo_files(photos, folder / "photos")

            def fetch() -> torch.Tensor:
                return _recompute(scorer, paths)

        passes: dict[str, Callable[[str, torch.Tensor], np.ndarray]] = {"fast": scorer.score_tokens}
        if naive:
            passes["naive"] = lambda text, tokens: naive_log_likelihoods(scorer, text, tokens)
        runs = _time_queries(queries, fetch, passes)
        fast, reference = runs["fast"], runs.get("naive")
    ms_per_query = statistics.median(fast.totals)
    naive_ms = statistics.median(reference.totals) if reference else None
    return RerankTiming(
        model=scorer.key,
        device=scorer.device,
        threads=torch.get_num_threads(),
        openmp_wait_policy=os.environ.get("OMP_WAIT_POLICY"),
        k=k,
        queries=queries,
        image_tokens=image_tokens,
        ms_per_query=round(ms_per_query, 1),
        image_tokens_ms=round(statistics.median(fast.fetches), 1),
        score_ms=round(statistics.median(fast.scorings), 1),
        naive_ms_per_query=round(naive_ms, 1) if naive_ms is not None else None,
        speedup=round(naive_ms / ms_per_query, 2) if naive_ms is not None else None,
        max_abs_difference=(
            max(float(abs(a - b).max()) for a, b in zip(fast.scores, reference.scores, strict=True))
            if reference
            else None
        ),
        token_bytes_per_image=token_bytes,
    )


@dataclass
class _Runs:
    fetches: list[float]
    scorings: list[float]
    totals: list[float]
    scores: list[np.ndarray]


def _time_queries(
    queries: int,
    fetch: Callable[[], torch.Tensor],
    passes: dict[str, Callable[[str, torch.Tensor], np.ndarray]],
) -> dict[str, _Runs]:
    """Time each pass on each query, the passes taking turns query by query: on a machine whose load drifts,
    they then run under the same conditions, and their ratio is fair."""
    runs = {name: _Runs([], [], [], []) for name in passes}
    for score in passes.values():
        score(QUERIES[0], fetch())  # warm-up: first-call allocations and lazy initialisation
    for index in range(queries):
        text = QUERIES[index % len(QUERIES)]
        for name, score in passes.items():
            started = time.perf_counter()
            tokens = fetch()
            fetched = time.perf_counter()
            runs[name].scores.append(score(text, tokens))
            done = time.perf_counter()
            runs[name].fetches.append((fetched - started) * 1000)
            runs[name].scorings.append((done - fetched) * 1000)
            runs[name].totals.append((done - started) * 1000)
    return runs


def _no_misses(ids: list[int]) -> torch.Tensor:
    raise AssertionError(f"frames {ids} left the benchmark's token cache")


def _photos(count: int) -> list[Image.Image]:
    """Distinct pictures: smooth colour fields, seeded, so that JPEG files of them have a photo's size."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    return [
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((640, 480), Image.BICUBIC)
        for _ in range(count)
    ]


def _photo_files(photos: Sequence[Image.Image], folder: Path) -> list[bytes]:
    from PIL import Image

    folder.mkdir()
    paths = []
    for index, photo in enumerate(photos):
        path = folder / f"photo-{index}.jpg"
        photo.resize(PHOTO_SIZE, Image.BICUBIC).save(path, quality=90)
        paths.append(bytes(path))
    return paths


def _recompute(scorer: CocaSlowScorer, paths: Sequence[bytes]) -> torch.Tensor:
    """What re-ranking without a cache does: decode each file and run the image tower."""
    from engine.media.images import decode_image

    return scorer.image_tokens([decode_image(path, min_side=scorer.image_size).image for path in paths])


@click.command("rerank")
@click.option(
    "--model",
    default="coca-vit-b-32@random",
    show_default=True,
    help="Slow preset; NAME@random times the architecture offline.",
)
@click.option(
    "--k", type=click.IntRange(1, 10_000), default=32, show_default=True, help="Candidates re-ranked."
)
@click.option("--queries", type=click.IntRange(1, 1000), default=5, show_default=True, help="Timed queries.")
@click.option(
    "--image-tokens",
    type=click.Choice(["cached", "recomputed"]),
    default="cached",
    show_default=True,
    help="Read the candidates' tokens from the disk cache, or decode the photos and run the image tower.",
)
@click.option("--naive/--no-naive", default=True, show_default=True, help="Also time the naive forward pass.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "--threads",
    type=click.IntRange(0, 1024),
    default=1,
    show_default=True,
    help="Torch CPU threads; 0: torch's choice (one per core), whose timings swing with other processes' load.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def command(
    model: str,
    k: int,
    queries: int,
    image_tokens: TokenSource,
    naive: bool,
    device: str,
    threads: int,
    as_json: bool,
) -> None:
    """Time the Slow re-ranking of K candidates for one query, against the naive forward pass."""

    # With more than one thread, OpenMP threads that spin while they wait for a core another process holds turn
    # each of the Slow pass's several hundred small operations into a wait for the scheduler (docs/benchmarks.md,
    # "Threads on a shared CPU"); sleeping waiters cost microseconds. OpenMP reads this once, when torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    @handles_errors
    def run() -> None:
        if threads:
            import torch

            torch.set_num_threads(threads)
        timing = time_rerank(
            model, k=k, queries=queries, image_tokens=image_tokens, naive=naive, device=device
        )
        if as_json:
            emit(asdict(timing))
            return
        click.echo(
            f"{timing.model} on {timing.device} ({timing.threads} threads), K = {timing.k}, "
            f"image tokens {timing.image_tokens}: {timing.ms_per_query:.0f} ms per query "
            f"({timing.image_tokens_ms:.0f} ms tokens + {timing.score_ms:.0f} ms scoring)"
        )
        if timing.naive_ms_per_query is not None:
            click.echo(
                f"naive forward pass: {timing.naive_ms_per_query:.0f} ms per query, {timing.speedup:.1f}x slower; "
                f"largest score difference {timing.max_abs_difference:.2g}"
            )

    run()
