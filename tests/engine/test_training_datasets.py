"""Readers of Karpathy-format image sets and VATEX-style video sets, and evaluation over both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from engine.errors import UsageError
from engine.models.caption_scorer import CaptionScorer, SlowConfig
from engine.models.checkpoints import load_checkpoint_fast, load_checkpoint_slow, save_checkpoint
from engine.models.dual_encoder import DualEncoder, FastConfig
from engine.models.visual_trunk import TrunkConfig
from engine.models.vocabulary import Vocabulary
from engine.training.datasets import load_dataset, load_frames
from engine.training.evaluate import evaluate
from tests.factory import make_video


def _coco_like(root: Path) -> Path:
    """COCO's layout: `filepath` sub-folders, a `restval` split, captions in `sentences[].raw`."""
    entries = []
    for i, (folder, split) in enumerate(
        [("val2014", "test"), ("val2014", "restval"), ("train2014", "train")]
    ):
        (root / "coco" / folder).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), (i * 80, 0, 0)).save(root / "coco" / folder / f"{i}.jpg")
        entries.append(
            {
                "filepath": folder,
                "filename": f"{i}.jpg",
                "split": split,
                "sentences": [{"raw": f" picture {i} "}],
            }
        )
    path = root / "dataset_coco.json"
    path.write_text(json.dumps({"dataset": "coco", "images": entries}))
    return path


def test_a_karpathy_set_is_read_with_its_splits_and_an_images_folder(tmp_path: Path) -> None:
    data = load_dataset(_coco_like(tmp_path), tmp_path / "coco")
    assert data.name == "coco" and data.kind == "image"
    assert [item.split for item in data.items] == ["test", "train", "train"]
    assert [item.path.name for item in data.split("train").items] == ["1.jpg", "2.jpg"]
    assert [(q.text, q.item) for q in data.split("test").queries()] == [("picture 0", 0)]
    assert load_frames(data.items[0])[0].size == (40, 30)


def test_the_folder_holding_dataset_json_is_a_data_set(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "a.png")
    image = {"filename": "a.png", "split": "test", "sentences": [{"raw": "a black square"}]}
    (tmp_path / "dataset.json").write_text(json.dumps({"images": [image]}))
    assert load_dataset(tmp_path).items[0].path == tmp_path / "images" / "a.png"


def test_missing_images_say_how_many_and_where_to_point(tmp_path: Path) -> None:
    path = _coco_like(tmp_path)
    with pytest.raises(UsageError, match=r"3 of the 3 images .* --images"):
        load_dataset(path)
    with pytest.raises(UsageError, match="no val items"):
        load_dataset(path, tmp_path / "coco").split("val")


def test_a_folder_with_neither_format_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="neither a Karpathy"):
        load_dataset(tmp_path)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vatex")
    (root / "videos").mkdir()
    entries = []
    for i in range(3):
        video_id = f"clip{i}_000010_000014"
        make_video(root / "videos" / f"{video_id}.mp4", seconds=4, fps=5, size=(64, 48), seed=i)
        entries.append({"videoID": video_id, "enCap": [f"moving ball number {i}", "a ball"], "split": "test"})
    (root / "captions.json").write_text(json.dumps(entries))
    return root


def test_a_vatex_set_reads_videos_by_id_and_samples_their_frames(videos: Path) -> None:
    data = load_dataset(videos)
    assert data.kind == "video" and len(data.items) == 3
    assert data.items[1].path.name == "clip1_000010_000014.mp4"
    frames = load_frames(data.items[0])
    assert len(frames) >= 2 and all(frame.mode == "RGB" for frame in frames)


def _random_models(folder: Path) -> tuple[Path, Path]:
    vocabulary = Vocabulary.build(["moving ball number 0 1 2", "a ball"], min_count=1)
    trunk = TrunkConfig(image_size=32)
    fast, slow = folder / "fast.pt", folder / "slow.pt"
    save_checkpoint(fast, "fast", DualEncoder(FastConfig(trunk, len(vocabulary), 32)), vocabulary, {})
    save_checkpoint(slow, "slow", CaptionScorer(SlowConfig(trunk, len(vocabulary), 32)), vocabulary, {})
    return fast, slow


def test_video_retrieval_is_evaluated_video_by_video(videos: Path, tmp_path: Path) -> None:
    fast_path, slow_path = _random_models(tmp_path)
    data = load_dataset(videos)
    report = evaluate(
        data, load_checkpoint_fast(fast_path), load_checkpoint_slow(slow_path), (1, 2), progress=False
    )
    assert report.images == 3 and report.queries == 6
    # With three videos, every query's own video is within the first three: R@5 is complete.
    assert report.fast.r5 == 100 and report.slow is not None and report.slow.r5 == 100
    assert set(report.rerank) == {1, 2}


def test_glimpse_eval_json_has_the_documented_shape(videos: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from engine.training.commands import evaluate_command

    fast, slow = _random_models(tmp_path)
    arguments = [str(videos), "--fast", str(fast), "--slow", str(slow), "--rerank", "1,2", "--queries", "4"]
    result = CliRunner().invoke(evaluate_command, [*arguments, "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    recall = {"r1", "r5", "r10", "ms_per_query", "queries"}
    assert set(document) == {"images", "queries", "fast", "slow", "rerank"}
    assert (document["images"], document["queries"]) == (3, 6)
    assert set(document["fast"]) == recall and document["fast"]["queries"] == 6
    assert set(document["slow"]) == recall and document["slow"]["queries"] == 4
    assert set(document["rerank"]) == {"1", "2"}
    assert all(set(v) == recall and v["queries"] == 4 for v in document["rerank"].values())
    assert document["fast"]["ms_per_query"] > 0


def test_glimpse_eval_without_models_or_with_a_bad_shortlist_is_a_usage_error(
    videos: Path, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from engine.training.commands import evaluate_command

    fast, _ = _random_models(tmp_path)
    assert CliRunner().invoke(evaluate_command, [str(videos)]).exit_code == 2
    assert (
        CliRunner().invoke(evaluate_command, [str(videos), "--fast", str(fast), "--rerank", "1,x"]).exit_code
        == 2
    )
