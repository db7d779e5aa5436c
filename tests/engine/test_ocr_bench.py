"""`bench read`: the reading pass timed against rapidocr's default call, and the words both found compared."""

import pytest

from engine.bench.read import draw_text, text_photo_folder, time_read, words


def test_words_are_case_folded_and_need_three_letters():
    assert words(["CAFÉ LUNA", "RE16 TGK", "Espresso 1.20", "ok 2019"]) == {
        "café",
        "luna",
        "re16",
        "tgk",
        "espresso",
    }


def test_a_fifth_of_the_generated_photos_have_text(tmp_path):
    written = text_photo_folder(tmp_path / "photos", 10, size=(640, 480))
    assert sorted(written) == ["photo-000000.jpg", "photo-000005.jpg"]
    assert all(lines for lines in written.values())
    assert len(list((tmp_path / "photos").iterdir())) == 10


def test_every_kind_of_text_is_drawn():
    from PIL import Image

    blank = Image.new("RGB", (1008, 756), (90, 120, 160))
    for kind in ("sign", "menu", "receipt", "screen", "plate"):
        drawn, lines = draw_text(blank, seed=1, kind=kind)
        assert lines and drawn.size == blank.size and drawn.tobytes() != blank.tobytes()
    with pytest.raises(ValueError, match="kind"):
        draw_text(blank, seed=1, kind="poster")


@pytest.mark.slow  # rapidocr's default call reads each photo for about a second
def test_time_read_reports_both_readers_and_the_words_they_found():
    result = time_read(5, runs=1, size=(1008, 756))
    assert result["photos"] == 5 and result["photos_with_text"] == 1 and result["errors"] == 0
    assert result["photos_per_second"] > 0 and result["reference_photos_per_second"] > 0
    assert 0 < result["words_found"] <= result["words_written"]
    assert result["words_lost"] == len(result["lost"])
